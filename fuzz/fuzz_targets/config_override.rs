//! Configs and their `key=value` overrides: the input is a YAML config, a line
//! `===`, then one override per line (without that line: the overrides alone, on
//! a config with the reference's keys). Each override is applied and type-checked,
//! the result resolved (`${…}`), and the lines also parsed as script arguments.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

const BASE: &str = "seed: 42\noutput_path: outputs/run\nmodel: {name: resnet34, custom_weights_path: null, num_classes: 1000}\n\
training: {lr: 0.001, num_epochs_per_prototypes: 2, shuffle: true}\nprototypes: {scheduler: {type: lin, num_prototypes_start: 100}}\n\
hydra: {run: {dir: '${output_path}/train'}}\nlist: [1, 2]\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (yaml, overrides) = match text.split_once("\n===\n") {
        Some((y, o)) => (y, o),
        None => (BASE, text),
    };
    let Ok(mut config) = epic::config::parse_str(yaml, Path::new("fuzz.yaml")) else { return };
    let lines: Vec<&str> = overrides.lines().collect();
    for line in &lines {
        let _ = epic::config::apply_override(&mut config, line);
        let _ = epic::config::parse_value(line);
    }
    let _ = epic::config::resolve(config, Path::new("fuzz.yaml"));
    let _ = epic::script::args::parse_args(&lines);
});
