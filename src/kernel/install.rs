//! `epic kernel install`: the kernelspec "Rhai (epic)" (`epic-rhai/kernel.json`)
//! in a Jupyter data folder, pointing at this binary. Jupyter starts it as
//! `epic kernel -f {connection_file}` and interrupts it with SIGINT.
use std::path::{Path, PathBuf};

/// The kernel's name in Jupyter (`--kernel epic-rhai`, a notebook's `kernelspec.name`).
pub const NAME: &str = "epic-rhai";

/// Where a kernelspec goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// The user's Jupyter data folder: `$JUPYTER_DATA_DIR`, else
    /// `$XDG_DATA_HOME/jupyter`, else `~/.local/share/jupyter`.
    User,
    /// The active Python environment's `share/jupyter` (`$VIRTUAL_ENV`, else
    /// `$CONDA_PREFIX`, else `python3`'s `sys.prefix`).
    SysPrefix,
    /// `PREFIX/share/jupyter`.
    Prefix(PathBuf),
}

/// The Jupyter data folder of `place`.
pub fn data_dir(place: &Place) -> crate::Result<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    Ok(match place {
        Place::User => env("JUPYTER_DATA_DIR")
            .or_else(|| env("XDG_DATA_HOME").map(|d| d.join("jupyter")))
            .or_else(|| env("HOME").map(|h| h.join(".local/share/jupyter")))
            .ok_or_else(|| crate::Error::Kernel("no HOME: use --prefix DIR".into()))?,
        Place::SysPrefix => {
            let prefix = match env("VIRTUAL_ENV").or_else(|| env("CONDA_PREFIX")) {
                Some(p) => p,
                None => python_prefix()?,
            };
            prefix.join("share/jupyter")
        }
        Place::Prefix(p) => p.join("share/jupyter"),
    })
}

fn python_prefix() -> crate::Result<PathBuf> {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.prefix)"])
        .output()
        .map_err(|e| crate::Error::Kernel(format!("--sys-prefix needs python3 ({e}); use --prefix DIR")))?;
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// The kernelspec for `binary`: argv, display name, language, SIGINT interrupts.
pub fn kernel_json(binary: &Path) -> serde_json::Value {
    serde_json::json!({
        "argv": [binary.display().to_string(), "kernel", "-f", "{connection_file}"],
        "display_name": "Rhai (epic)",
        "language": "rhai",
        "interrupt_mode": "signal",
        "metadata": { "debugger": false },
    })
}

/// Writes `<data dir>/kernels/epic-rhai/kernel.json` for `binary`; returns the folder.
pub fn install(place: &Place, binary: &Path) -> crate::Result<PathBuf> {
    let dir = data_dir(place)?.join("kernels").join(NAME);
    std::fs::create_dir_all(&dir).map_err(|source| crate::Error::Io { action: "create", path: dir.clone(), source })?;
    let text = serde_json::to_string_pretty(&kernel_json(binary)).unwrap_or_default();
    crate::io::atomic::write_bytes_atomic(&dir.join("kernel.json"), text.as_bytes())?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernelspec_starts_this_binary_and_takes_sigint() {
        let dir = tempfile::tempdir().unwrap();
        let at = install(&Place::Prefix(dir.path().into()), Path::new("/opt/epic/bin/epic")).unwrap();
        assert_eq!(at, dir.path().join("share/jupyter/kernels/epic-rhai"));
        let spec: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(at.join("kernel.json")).unwrap()).unwrap();
        assert_eq!(spec["argv"], serde_json::json!(["/opt/epic/bin/epic", "kernel", "-f", "{connection_file}"]));
        assert_eq!(
            (spec["display_name"].as_str(), spec["interrupt_mode"].as_str()),
            (Some("Rhai (epic)"), Some("signal"))
        );
    }
}
