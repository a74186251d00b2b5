//! The `epic` command line: `epic run SCRIPT.rhai [key=value …]` runs an experiment
//! script; `epic doc` prints the script reference.
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
    },
    /// Print the Markdown reference of every script function.
    Doc,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Doc => {
            print!("{}", epic::script::docs::markdown());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { script, args, device } => {
            let args = epic::script::args::parse_args(&args).map_err(anyhow::Error::msg)?;
            let device = epic::device::parse_device(&device).context("--device")?;
            let options = epic::script::HostOptions { device };
            match epic::script::run_file(&script, args, &options) {
                Ok(_) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}
