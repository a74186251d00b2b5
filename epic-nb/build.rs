//! The same link arrangements as epic's own binaries (../build.rs): an rpath to
//! libtorch, and libtorch_cuda kept linked under --as-needed. Link arguments of
//! a dependency's build script reach only that package's own targets, so without
//! this the notebook dylib would drop libtorch_cuda and a notebook on a GPU
//! machine would never see CUDA (tests/notebooks.rs checks its NEEDED entries).
include!("../build.rs");
