//! The restricted unpickler and both `.pth` containers (zip and legacy), then the
//! state dict with every tensor view materialised: any input must give a value
//! or an error, never a panic, an abort or an unbounded allocation.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = epic::model::pth::parse_pickle(data);
    if let Ok(ckpt) = epic::model::pth::read_pth_bytes(data, Path::new("fuzz.pth")) {
        let _ = ckpt.state_dict(None);
        let _ = ckpt.state_dict(Some("model"));
    }
});
