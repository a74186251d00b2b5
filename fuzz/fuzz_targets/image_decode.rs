//! Image bytes to RGB and through a network's eval transform (EfficientNet-Lite0's:
//! resize 256, crop 224): any input must decode or be refused with an error, never
//! panic, abort in libtorch, or allocate beyond the documented limits.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = epic::data::image::decode_rgb(data, Path::new("fuzz.img")) {
        let _ = epic::data::transform::preprocess(&img, &epic::model::Preprocess::LITE);
    }
});
