//! `epic slurm SCRIPT.rhai [key=value …] --shards n`: a run on a SLURM cluster
//! that uses SLURM itself. Two sbatch scripts are written, and submitted unless
//! `--dry-run`:
//! - `extract.sbatch`, an array job of n tasks, each `epic run … --shard
//!   $SLURM_ARRAY_TASK_ID/n`: every task computes its share of the bank's chunks
//!   into the shared cache and stops;
//! - `train.sbatch`, submitted with `--dependency=afterok:<array>`, which runs the
//!   script on the complete bank (it computes any chunk still missing).
//!
//! Logs go where SLURM users expect them: `slurm-%A_%a.out` and `slurm-%j.out` in
//! the folder given (`--logs`, default the sbatch folder).
use std::path::{Path, PathBuf};
use std::process::Command;

/// What to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmJob {
    /// The epic binary the jobs run.
    pub epic: PathBuf,
    /// The experiment script.
    pub script: PathBuf,
    /// Its `key=value` arguments.
    pub args: Vec<String>,
    /// Array tasks of the extraction.
    pub shards: usize,
    /// `--device` of both jobs.
    pub device: String,
    /// `#SBATCH --partition`, when given.
    pub partition: Option<String>,
    /// `#SBATCH --gpus-per-task`, when given.
    pub gpus_per_task: Option<u32>,
    /// `#SBATCH --cpus-per-task`, when given.
    pub cpus_per_task: Option<u32>,
    /// `#SBATCH --time`, when given.
    pub time: Option<String>,
    /// Where the sbatch scripts go.
    pub dir: PathBuf,
    /// Where SLURM writes the jobs' output (default: `dir`).
    pub logs: Option<PathBuf>,
    /// The folder the jobs start in.
    pub workdir: PathBuf,
}

/// `s` as one shell word.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-=+:,@%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

impl SlurmJob {
    fn header(&self, name: &str, output: &str) -> String {
        let logs = self.logs.clone().unwrap_or_else(|| self.dir.clone());
        let mut s = format!(
            "#!/bin/bash\n# Written by epic slurm; submit with sbatch.\n#SBATCH --job-name={name}\n#SBATCH --output={}\n",
            shell_quote(&logs.join(output).display().to_string())
        );
        if let Some(p) = &self.partition {
            s.push_str(&format!("#SBATCH --partition={}\n", shell_quote(p)));
        }
        if let Some(g) = self.gpus_per_task {
            s.push_str(&format!("#SBATCH --gpus-per-task={g}\n"));
        }
        if let Some(c) = self.cpus_per_task {
            s.push_str(&format!("#SBATCH --cpus-per-task={c}\n"));
        }
        if let Some(t) = &self.time {
            s.push_str(&format!("#SBATCH --time={}\n", shell_quote(t)));
        }
        s
    }

    fn command(&self, shard: Option<&str>) -> String {
        let mut words = vec![self.epic.display().to_string(), "run".into(), "--device".into(), self.device.clone()];
        if let Some(s) = shard {
            words.push("--shard".into());
            words.push(s.into());
        }
        words.push(self.script.display().to_string());
        words.extend(self.args.iter().cloned());
        words
            .iter()
            .map(|w| if w.starts_with("\"$") { w.clone() } else { shell_quote(w) })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The array job's script.
    pub fn extract_script(&self) -> String {
        let n = self.shards.max(1);
        format!(
            "{}#SBATCH --array=0-{}\nset -euo pipefail\ncd {}\nexec {}\n",
            self.header("epic-extract", "slurm-%A_%a.out"),
            n - 1,
            shell_quote(&self.workdir.display().to_string()),
            self.command(Some(&format!("\"$SLURM_ARRAY_TASK_ID/{n}\"")))
        )
    }

    /// The training job's script.
    pub fn train_script(&self) -> String {
        format!(
            "{}set -euo pipefail\ncd {}\nexec {}\n",
            self.header("epic-train", "slurm-%j.out"),
            shell_quote(&self.workdir.display().to_string()),
            self.command(None)
        )
    }

    /// Writes `dir/extract.sbatch` and `dir/train.sbatch`; returns their paths.
    pub fn write(&self) -> crate::Result<(PathBuf, PathBuf)> {
        for d in [Some(&self.dir), self.logs.as_ref()].into_iter().flatten() {
            std::fs::create_dir_all(d).map_err(|source| crate::Error::Io {
                action: "create",
                path: d.clone(),
                source,
            })?;
        }
        let extract = self.dir.join("extract.sbatch");
        let train = self.dir.join("train.sbatch");
        crate::io::atomic::write_bytes_atomic(&extract, self.extract_script().as_bytes())?;
        crate::io::atomic::write_bytes_atomic(&train, self.train_script().as_bytes())?;
        Ok((extract, train))
    }

    /// Writes both scripts and submits them: the array job, then the training
    /// job after it. Returns the two job ids.
    pub fn submit(&self) -> crate::Result<(String, String)> {
        let (extract, train) = self.write()?;
        let array = sbatch(&extract, None)?;
        let training = sbatch(&train, Some(&format!("--dependency=afterok:{array}")))?;
        Ok((array, training))
    }
}

/// `sbatch --parsable [extra] script` → the job id.
fn sbatch(script: &Path, extra: Option<&str>) -> crate::Result<String> {
    let mut c = Command::new("sbatch");
    c.arg("--parsable");
    if let Some(e) = extra {
        c.arg(e);
    }
    let o = c.arg(script).output().map_err(|e| {
        crate::Error::invalid(
            "sbatch",
            format!("{e}: is SLURM installed and on PATH? (--dry-run only writes the scripts)"),
        )
    })?;
    if !o.status.success() {
        return Err(crate::Error::invalid(
            format!("sbatch {}", script.display()),
            String::from_utf8_lossy(&o.stderr).trim().to_string(),
        ));
    }
    let out = String::from_utf8_lossy(&o.stdout);
    let id = out.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() {
        return Err(crate::Error::invalid(format!("sbatch {}", script.display()), "printed no job id"));
    }
    Ok(id)
}
