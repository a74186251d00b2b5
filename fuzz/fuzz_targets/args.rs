//! `epic run`'s `key=value` arguments, one per line: parsed into the script's
//! `args` map (dotted keys nest, values typed as YAML), and applied as overrides
//! to the demo's config, as `epic run` does with both.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

const DEMO: &str = include_str!("../../configs/demo_fashion_lite0.yaml");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let _ = epic::script::args::parse_args(&lines);
    let Ok(mut config) = epic::config::parse_str(DEMO, Path::new("demo.yaml")) else { return };
    for line in &lines {
        let _ = epic::config::apply_override(&mut config, line);
    }
});
