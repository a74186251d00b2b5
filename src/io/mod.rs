//! Files epic reads and writes: named tensors in safetensors ([`tensors`]), and the
//! rule that every artifact appears whole or not at all ([`atomic`]), and stable
//! content hashes for cache keys ([`fingerprint`]).
pub mod atomic;
pub mod fingerprint;
pub mod tensors;

pub use atomic::write_atomic;
pub use fingerprint::Fingerprint;
pub use tensors::{load_tensors, save_tensors};
