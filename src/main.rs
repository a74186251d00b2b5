//! The `epic` command line: `epic run SCRIPT.rhai [key=value …]` runs an experiment
//! script; `epic predict MODEL IMAGE…` classifies images; `epic doc` prints the
//! script reference.
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "epic",
    version,
    about = "Explain pretrained image classifiers with prototypes (EPIC), scripted in Rhai"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an experiment script; `key=value` arguments reach it as the map `args`.
    Run {
        /// The Rhai script.
        script: PathBuf,
        /// `key=value` arguments; dotted keys nest (model.name=resnet50).
        args: Vec<String>,
        /// Where tensors go: auto (CUDA when available), cpu, cuda, cuda:N.
        #[arg(long, default_value = "auto")]
        device: String,
        /// A folder of Rhai modules for `import` (repeatable; also $EPIC_LIB).
        #[arg(long = "lib", value_name = "DIR")]
        lib: Vec<PathBuf>,
    },
    /// Print the top classes of images: `epic predict efficientnet_lite0 photo.jpg`.
    Predict {
        /// Architecture name: a row of the registry (efficientnet_lite0, resnet18 … convnext_large, swin_t … swin_v2_b).
        model: String,
        /// Image files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Weights file (.pth, checkpoint, .safetensors); default: the installed ones.
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Classes of the checkpoint's head.
        #[arg(long, default_value_t = 1000)]
        num_classes: i64,
        /// How many classes to show per image.
        #[arg(short, long, default_value_t = 5)]
        k: i64,
        /// Where to run: auto, cpu, cuda, cuda:N.
        #[arg(long, default_value = "auto")]
        device: String,
    },
    /// Print the Markdown reference of every script function.
    Doc,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes, joined by ": ", leaving out a cause whose text the
/// message already quotes (epic's errors include their source's text).
fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Doc => {
            print!("{}", epic::script::docs::markdown());
            Ok(ExitCode::SUCCESS)
        }
        Command::Predict { model, images, weights, num_classes, k, device } => {
            let mut spec =
                epic::model::ModelSpec::new(&model, epic::device::parse_device(&device).context("--device")?);
            spec.weights = weights;
            spec.num_classes = num_classes;
            let net = epic::model::load(&spec)?;
            let mut failed = 0;
            for path in &images {
                match epic::explain::predict_file(&net, path, k) {
                    Ok(preds) => {
                        println!("{}", path.display());
                        for p in preds {
                            println!("  {:>5}  {:<28} {:.4}", p.class, p.name, p.prob);
                        }
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                eprintln!("{failed} of {} images could not be read", images.len());
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { script, args, device, lib } => {
            let overrides = args.clone();
            let args = epic::script::args::parse_args(&args).map_err(anyhow::Error::msg)?;
            let device = epic::device::parse_device(&device).context("--device")?;
            let options = epic::script::HostOptions { device, overrides, lib_dirs: lib };
            epic::interrupt::install();
            match epic::script::run_file(&script, args, &options) {
                Ok(_) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("error: {e}");
                    // 130: stopped by Ctrl-C, as shells report it.
                    Ok(ExitCode::from(if epic::interrupt::requested() { 130 } else { 1 }))
                }
            }
        }
    }
}
