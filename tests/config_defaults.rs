//! The paper's values are written once, as the `Default` of each typed option,
//! and `configs/config_base.yaml` + `configs/train_base.yaml` (the keys of the
//! reference's config_base.yaml and config_train.yaml) say the same: reading
//! the composed configs gives exactly the defaults.
use epic::config::Section;
use epic::disentangle::TrainConfig;
use epic::explain::ExplainOptions;
use epic::features::ExtractOptions;
use epic::model::ModelSpec;
use epic::render::figures::Visualization;
use std::path::Path;
use tch::Device;

fn composed() -> serde_yaml::Value {
    let dir = tempfile::tempdir().unwrap();
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    for name in ["config_base.yaml", "train_base.yaml"] {
        std::fs::copy(configs.join(name), dir.path().join(name)).unwrap();
    }
    std::fs::write(dir.path().join("both.yaml"), "defaults:\n  - config_base\n  - train_base\n  - _self_\n").unwrap();
    epic::config::load(&dir.path().join("both.yaml")).unwrap()
}

#[test]
fn the_base_configs_hold_the_code_defaults() {
    let v = composed();
    let root = Section::root(&v).unwrap();

    let extract = ExtractOptions::from_config(&root.section("dataloader").unwrap()).unwrap();
    assert_eq!(extract, ExtractOptions::default());

    let mut train = TrainConfig::from_config(&root).unwrap();
    // The one value a config adds: where its checkpoints go.
    assert_eq!(train.checkpoint.take(), Some(Path::new("outputs/resnet34/.epic/train_checkpoint.safetensors").into()));
    assert_eq!(train, TrainConfig::default());
    assert_eq!(train.schedule.values(), [100, 89, 79, 68, 58, 47, 37, 26, 16, 5]);
    assert_eq!((train.epochs_per_step, train.batch_size, train.seed), (2, 512, 42));
    assert_eq!((train.adam.lr, train.adam.weight_decay), (1e-3, 1e-5));

    let vis = root.section("visualization").unwrap();
    assert_eq!(ExplainOptions::from_config(&vis).unwrap(), ExplainOptions::default());
    assert_eq!(Visualization::from_config(&vis).unwrap(), Visualization::default());

    let model = ModelSpec::from_config(&root.section("model").unwrap(), Device::Cpu).unwrap();
    assert_eq!(model, ModelSpec::new("resnet34", Device::Cpu));
}

#[test]
fn pairs_per_adam_step_follow_the_dataloader_as_in_the_reference() {
    let read = |yaml: &str| {
        let v: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
        TrainConfig::from_config(&Section::root(&v).unwrap()).unwrap().batch_size
    };
    assert_eq!(read("dataloader: {batch_size: 128}"), 128);
    assert_eq!(read("dataloader: {batch_size: 128}\ntraining: {batch_size: 4096}"), 4096);
    assert_eq!(read("dataloader: {batch_size: auto}"), 512);
    assert_eq!(read("{}"), 512);
}

#[test]
fn a_checkpoint_of_null_or_false_means_none() {
    let read = |yaml: &str| {
        let v: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
        TrainConfig::from_config(&Section::root(&v).unwrap()).unwrap().checkpoint
    };
    let default = Some(Path::new("o/.epic/train_checkpoint.safetensors").to_path_buf());
    assert_eq!(read("output_path: o"), default);
    assert_eq!(read("output_path: o\ntraining: {checkpoint: true}"), default);
    assert_eq!(read("output_path: o\ntraining: {checkpoint: null}"), None);
    assert_eq!(read("output_path: o\ntraining: {checkpoint: false}"), None);
    assert_eq!(read("output_path: o\ntraining: {checkpoint: c.safetensors}"), Some("c.safetensors".into()));
}

#[test]
fn a_mistyped_option_names_its_full_key() {
    let v: serde_yaml::Value = serde_yaml::from_str("training: {lr: fast}\ndataloader: {batch_size: 0}").unwrap();
    let root = Section::root(&v).unwrap();
    let e = TrainConfig::from_config(&root).unwrap_err().to_string();
    assert_eq!(e, "config key training.lr: expected a number, got a string");
    let e = ExtractOptions::from_config(&root.section("dataloader").unwrap()).unwrap_err().to_string();
    assert_eq!(e, "config key dataloader.batch_size: 0 must be >= 1");
}
