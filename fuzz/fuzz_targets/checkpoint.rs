//! Training checkpoints as a resuming run reads them: the safetensors container,
//! then the fingerprint, state, A, Adam's moments and the history, any of which
//! may be missing, mis-shaped or of another dtype.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = epic::disentangle::inspect_checkpoint(data, Path::new("fuzz_checkpoint.safetensors"));
});
