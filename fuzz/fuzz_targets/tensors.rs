//! The safetensors reader that bank chunks, checkpoints and U files go through:
//! any bytes must give tensors or an error (a header that lies about offsets,
//! shapes, dtypes or its own length; a checksum that does not match), never a
//! panic, an abort or an allocation beyond the input's size. The tensors read are
//! then summed, as the bank's checks do.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = epic::io::tensors::parse_tensors(data, Path::new("fuzz.safetensors")) {
        for (_, t) in &file.tensors {
            if t.kind() != tch::Kind::Bool {
                let _ = t.f_sum(tch::Kind::Double);
            }
        }
    }
});
