//! Files epic reads and writes: named tensors in safetensors ([`tensors`]), and the
//! rule that every artifact appears whole or not at all ([`atomic`]).
pub mod atomic;
pub mod tensors;

pub use atomic::write_atomic;
pub use tensors::{load_tensors, save_tensors};
