//! epic in evcxr Jupyter notebooks (`examples/notebooks/`). This crate is only a
//! `dylib` face of the library, so that one copy of epic — its types, its Rhai
//! engine, libtorch's state — serves every cell:
//!
//! ```text
//! :dep epic_nb = { path = "../../epic-nb" }
//! use epic_nb::{epic, tch, Session};
//! let mut s = Session::with_overrides(["dataset.per_class=3"]);
//! s.run(r#"let cfg = config("configs/demo_fashion_lite0.yaml"); cfg.dataset"#)?
//! ```
//!
//! Call epic's functions rather than tch's generic ones in cells: a generic
//! function (`Vec::<f64>::try_from(tensor)`, `Tensor::from_slice`) is compiled
//! into the cell, where libtorch's C glue, linked inside this library and not
//! exported by it, is missing: the cell then fails to load ("dlopen failed",
//! undefined symbol `at_…`). [`values`] and epic's own functions are compiled
//! here and work.
//!
//! With the `notebook` feature on, explanations, prototype grids, pictures,
//! purity plots and purity tables end a cell as pictures (`image/png`) or
//! tables (`text/html`); see [`epic::notebook`].
pub use epic;
pub use epic::script::{ScriptError, ScriptValue, Session};
pub use rhai;
pub use tch;

/// The epic checkout these notebooks belong to (configs/, scripts/ …): cells
/// use paths relative to it after `std::env::set_current_dir(epic_nb::checkout())`.
pub fn checkout() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(std::path::Path::new("."))
}

/// A tensor's values as f64, flattened (compiled in this library, so cells can
/// call it; see the crate's documentation).
pub fn values(t: &tch::Tensor) -> Result<Vec<f64>, tch::TchError> {
    Vec::<f64>::try_from(t.f_to_kind(tch::Kind::Double)?.f_reshape([-1])?)
}
