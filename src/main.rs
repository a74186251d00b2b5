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
        /// Where tensors go: auto (CUDA when available), cpu, cuda, cuda:N; a list
        /// (cuda:0,cuda:1) runs one backbone replica per device in extraction.
        #[arg(long, default_value = "auto")]
        device: String,
        /// A folder of Rhai modules for `import` (repeatable; also $EPIC_LIB).
        #[arg(long = "lib", value_name = "DIR")]
        lib: Vec<PathBuf>,
        /// Run a shared script in a sandbox: writes only under the config's
        /// output_path and cache and --allow-write folders; reads only under the
        /// script's, config's and data's folders and --allow-read folders; Rhai's
        /// limits on operations, call depth and sizes set.
        #[arg(long)]
        sandbox: bool,
        /// With --sandbox: a folder the script may also read (repeatable).
        #[arg(long = "allow-read", value_name = "DIR", requires = "sandbox")]
        allow_read: Vec<PathBuf>,
        /// With --sandbox: a folder the script may also write (repeatable).
        #[arg(long = "allow-write", value_name = "DIR", requires = "sandbox")]
        allow_write: Vec<PathBuf>,
        /// With --sandbox: most Rhai operations the script may take.
        #[arg(long = "max-operations", value_name = "N", requires = "sandbox")]
        max_operations: Option<u64>,
        /// Compute only shard I of N of the bank's chunks into the shared cache,
        /// then stop (exit 0): one task of `epic slurm`'s array job.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
    },
    /// Run a script on a SLURM cluster: an array job of N extraction shards,
    /// then the script on the complete bank (--dependency=afterok).
    Slurm {
        /// The Rhai script.
        script: PathBuf,
        /// `key=value` arguments for the script (after `--` when they could be read as options).
        args: Vec<String>,
        /// Extraction shards (array tasks).
        #[arg(long, default_value_t = 4)]
        shards: usize,
        /// `--device` of the jobs.
        #[arg(long, default_value = "auto")]
        device: String,
        /// `#SBATCH --partition`.
        #[arg(long)]
        partition: Option<String>,
        /// `#SBATCH --gpus-per-task`.
        #[arg(long = "gpus-per-task")]
        gpus_per_task: Option<u32>,
        /// `#SBATCH --cpus-per-task`.
        #[arg(long = "cpus-per-task")]
        cpus_per_task: Option<u32>,
        /// `#SBATCH --time`.
        #[arg(long)]
        time: Option<String>,
        /// Where the sbatch scripts go.
        #[arg(long, default_value = "slurm")]
        dir: PathBuf,
        /// Where SLURM writes the jobs' output (default: --dir).
        #[arg(long)]
        logs: Option<PathBuf>,
        /// Only write the sbatch scripts.
        #[arg(long = "dry-run")]
        dry_run: bool,
    },
    /// A Jupyter kernel of Rhai cells: `epic kernel install`, then pick
    /// "Rhai (epic)" in Jupyter (which starts `epic kernel -f FILE`).
    Kernel {
        /// The connection file Jupyter passes.
        #[arg(short = 'f', long = "connection-file", value_name = "FILE")]
        connection_file: Option<PathBuf>,
        /// Where the cells' tensors go: auto (CUDA when available), cpu, cuda, cuda:N.
        #[arg(long, default_value = "auto")]
        device: String,
        /// A folder of Rhai modules for `import` (repeatable; also $EPIC_LIB).
        #[arg(long = "lib", value_name = "DIR")]
        lib: Vec<PathBuf>,
        #[command(subcommand)]
        command: Option<KernelCommand>,
    },
    /// Feature banks in a cache folder.
    Bank {
        #[command(subcommand)]
        command: BankCommand,
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
    /// Explain images with a finished run: `epic explain outputs/demo photo.jpg`
    /// (one figure per image and explanations.json), or a class: `--class NAME`.
    Explain {
        /// The run folder (its .epic/run.json, U file and cached bank).
        run: PathBuf,
        /// Image files.
        images: Vec<PathBuf>,
        /// 1: the prediction; 2: why the top class and not the second; K > 2:
        /// the top-K classes side by side.
        #[arg(long, default_value_t = 1)]
        classes: i64,
        /// Channels per class (or per side of a contrast).
        #[arg(long, default_value_t = 4)]
        channels: i64,
        /// Prototypes per channel.
        #[arg(long, default_value_t = 5)]
        prototypes: i64,
        /// A class view instead: the class's top channels over its training
        /// images (an index or a name).
        #[arg(long = "class", value_name = "NAME_OR_INDEX")]
        class: Option<String>,
        /// With --class: show each channel's negative prototypes too.
        #[arg(long, requires = "class")]
        negative: bool,
        /// Where the figures and JSON go (default: RUN/explain).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where to run: auto, cpu, cuda, cuda:N.
        #[arg(long, default_value = "auto")]
        device: String,
    },
    /// Evaluate a finished run on its held-out images: accuracy of both heads and
    /// their agreement, deletion faithfulness, prototype consistency, coverage
    /// (RUN/evaluation.json and a table).
    Evaluate {
        /// The run folder.
        run: PathBuf,
        /// Prototypes per channel for consistency and coverage.
        #[arg(long, default_value_t = 5)]
        prototypes: i64,
        /// Seed of the random channels of the deletion test.
        #[arg(long, default_value_t = 0)]
        seed: i64,
        /// Where to run: auto, cpu, cuda, cuda:N.
        #[arg(long, default_value = "auto")]
        device: String,
    },
    /// Write a static site of a finished run: RUN/report/index.html (summary,
    /// a page per channel, a gallery of explanations), no server needed.
    Report {
        /// The run folder.
        run: PathBuf,
        /// Channels per page of the channel lists.
        #[arg(long = "per-page", default_value_t = 100)]
        per_page: usize,
        /// Held-out images explained in the gallery.
        #[arg(long, default_value_t = 12)]
        explanations: usize,
        /// Prototypes per channel.
        #[arg(long, default_value_t = 5)]
        prototypes: i64,
        /// Where to run: auto, cpu, cuda, cuda:N.
        #[arg(long, default_value = "auto")]
        device: String,
    },
    /// Print the Markdown reference of every script function.
    Doc,
}

#[derive(Subcommand)]
enum KernelCommand {
    /// Write the kernelspec "Rhai (epic)" for this binary (default: --user).
    Install {
        /// Into the user's Jupyter data folder (~/.local/share/jupyter).
        #[arg(long, conflicts_with_all = ["sys_prefix", "prefix"])]
        user: bool,
        /// Into the active Python environment's (a venv's share/jupyter).
        #[arg(long = "sys-prefix", conflicts_with = "prefix")]
        sys_prefix: bool,
        /// Into PREFIX/share/jupyter.
        #[arg(long, value_name = "PREFIX")]
        prefix: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum BankCommand {
    /// Which chunks of each bank in a cache folder are there, and with --shards,
    /// which shards are done: `epic bank status outputs/cache --shards 4`.
    Status {
        /// A cache folder (`dataloader.cache`), or one bank's folder in it.
        dir: PathBuf,
        /// Shards to report on.
        #[arg(long)]
        shards: Option<usize>,
    },
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
        Command::Explain { run, images, classes, channels, prototypes, class, negative, out, device } => {
            let device = epic::device::parse_device(&device).context("--device")?;
            if images.is_empty() && class.is_none() {
                anyhow::bail!("give image files to explain, or --class NAME_OR_INDEX for a class view");
            }
            let opened = epic::explain::Run::open(&run, device, false)?;
            let out = out.unwrap_or_else(|| run.join("explain"));
            std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
            let request = epic::render::explain_run::ExplainRequest { classes, channels, prototypes, gray: false };
            if let Some(class) = class {
                let index = epic::render::explain_run::resolve_class(&class, &opened.study.class_names())?;
                let v = epic::render::explain_run::class_view_files(&opened, index, &request, negative, &out)?;
                println!("{}: {} channels {}", v["name"], v["channels"], v["figure"]);
            }
            if !images.is_empty() {
                let doc = epic::render::explain_run::explain_images(&opened, &images, &request, &out)?;
                for e in doc["images"].as_array().into_iter().flatten() {
                    println!(
                        "{}: {} (p = {}) -> {}",
                        e["image"], e["predicted"]["name"], e["predicted"]["probability"], e["figure"]
                    );
                }
                println!("wrote {}", out.join("explanations.json").display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { run, per_page, explanations, prototypes, device } => {
            let device = epic::device::parse_device(&device).context("--device")?;
            let opened = epic::explain::Run::open(&run, device, false)?;
            let options =
                epic::render::report::ReportOptions { per_page, explanations, prototypes, ..Default::default() };
            let r = epic::render::report::write_report(&opened, &options)?;
            println!("wrote {} ({} pages, {} pictures)", r.index.display(), r.pages, r.images);
            Ok(ExitCode::SUCCESS)
        }
        Command::Slurm {
            script,
            args,
            shards,
            device,
            partition,
            gpus_per_task,
            cpus_per_task,
            time,
            dir,
            logs,
            dry_run,
        } => {
            let absolute =
                |p: PathBuf| if p.is_absolute() { p } else { std::env::current_dir().unwrap_or_default().join(p) };
            let job = epic::study::slurm::SlurmJob {
                epic: std::env::current_exe().context("the epic binary's path")?,
                script,
                args,
                shards: shards.max(1),
                device,
                partition,
                gpus_per_task,
                cpus_per_task,
                time,
                dir: absolute(dir),
                logs: logs.map(absolute),
                workdir: std::env::current_dir().context("the working folder")?,
            };
            if dry_run {
                let (a, b) = job.write()?;
                println!("wrote {} and {} (not submitted)", a.display(), b.display());
            } else {
                let (array, training) = job.submit()?;
                println!(
                    "submitted the extraction array {array} ({} shards) and the training job {training} (after it); logs in {}",
                    job.shards,
                    job.logs.as_ref().unwrap_or(&job.dir).display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Kernel { command: Some(KernelCommand::Install { user: _, sys_prefix, prefix }), .. } => {
            let place = match (sys_prefix, prefix) {
                (_, Some(p)) => epic::kernel::Place::Prefix(p),
                (true, None) => epic::kernel::Place::SysPrefix,
                (false, None) => epic::kernel::Place::User,
            };
            let binary = std::env::current_exe().context("the path of this binary")?;
            let dir = epic::kernel::install(&place, &binary)?;
            println!("installed the kernel \"Rhai (epic)\" ({}) in {}", epic::kernel::install::NAME, dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Kernel { connection_file, device, lib, command: None } => {
            let Some(file) = connection_file else {
                anyhow::bail!(
                    "epic kernel is started by Jupyter with -f CONNECTION_FILE; \
                     run `epic kernel install` once, then pick \"Rhai (epic)\" in Jupyter"
                );
            };
            let device = epic::device::parse_device(&device).context("--device")?;
            let options = epic::script::HostOptions { device, lib_dirs: lib, ..Default::default() };
            epic::kernel::serve(&file, options)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bank { command: BankCommand::Status { dir, shards } } => {
            let banks = epic::features::bank_status(&dir)?;
            if banks.is_empty() {
                println!("no bank in {} (a bank's folder holds bank.json)", dir.display());
            }
            for b in &banks {
                let l = &b.layout;
                println!(
                    "{}: {} on {}, {} images, {}/{} chunks{}",
                    b.folder.display(),
                    l.model,
                    l.dataset,
                    l.images,
                    b.done(),
                    l.chunks(),
                    if b.done() == l.chunks() { " (complete)" } else { "" }
                );
                if let Some(n) = shards {
                    for (i, (done, owned)) in b.shards(n).into_iter().enumerate() {
                        println!("  shard {i}/{n}: {done}/{owned} chunks{}", if done == owned { ", done" } else { "" });
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Evaluate { run, prototypes, seed, device } => {
            let device = epic::device::parse_device(&device).context("--device")?;
            let opened = epic::explain::Run::open(&run, device, false)?;
            let e = opened.evaluate(prototypes, seed, false)?;
            println!("{}", e.table());
            println!("wrote {}", e.save(&run)?.display());
            if !e.disagreements.is_empty() {
                eprintln!("{} image(s) where the heads disagree:", e.disagreements.len());
                for d in &e.disagreements {
                    eprintln!("  #{}: {} vs {} (margin {:.2e})", d.image, d.classes[0], d.classes[1], d.margin);
                }
            }
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
        Command::Run { script, args, device, lib, sandbox, allow_read, allow_write, max_operations, shard } => {
            // Several devices: one backbone replica on each; tensors live on the first.
            let devices = epic::device::parse_devices(&device).context("--device")?;
            if devices.len() > 1 {
                epic::features::set_host_devices(devices);
            }
            let device = device.split(',').next().unwrap_or("auto").to_string();
            if let Some(s) = &shard {
                epic::features::set_shard(Some(s.parse().context("--shard")?));
            }
            let overrides = args.clone();
            let config_arg = args.iter().find_map(|a| a.strip_prefix("config=")).map(PathBuf::from);
            let args = epic::script::args::parse_args(&args).map_err(anyhow::Error::msg)?;
            let device = epic::device::parse_device(&device).context("--device")?;
            let sandbox = sandbox.then(|| epic::script::Sandbox {
                policy: epic::study::script_policy(&script, config_arg.as_deref(), &lib, &allow_read, &allow_write),
                max_operations: max_operations.unwrap_or(epic::script::Sandbox::MAX_OPERATIONS),
            });
            let options = epic::script::HostOptions { device, overrides, lib_dirs: lib, sandbox };
            epic::interrupt::install();
            let result = epic::script::run_file(&script, args, &options);
            // The run's output folders are free again.
            epic::io::claim::release_all();
            if let Some(done) = epic::features::shard_done() {
                // A shard stops after its share of the bank, by design.
                println!("{done}");
                return Ok(ExitCode::SUCCESS);
            }
            match result {
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
