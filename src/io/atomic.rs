//! Atomic file writes: write to a temporary file beside the target, flush, then
//! rename over it. A crash or kill leaves the old file or none, never half a file
//! posing as a whole one.
use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The temporary sibling `dir/.name.<pid>.tmp` that `path` is written through.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes `path` atomically: `fill` writes the content to a temporary file which
/// is synced and renamed over `path`. Creates missing parent folders. On error the
/// temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    super::access::check_write(path)?;
    super::claim::before_write(path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| folder_error(dir, source))?;
    }
    remove_stale_temporaries(path);
    let tmp = temp_path(path);
    let result = fill(&tmp).and_then(|()| {
        let file = std::fs::OpenOptions::new().write(true).open(&tmp);
        file.and_then(|f| f.sync_all()).map_err(|source| write_error(path, source))?;
        std::fs::rename(&tmp, path).map_err(|source| match path.is_dir() {
            true => Error::Folder {
                path: path.to_path_buf(),
                why: "a folder has this name, where the file should go".into(),
            },
            false => Error::Io { action: "rename into", path: path.to_path_buf(), source },
        })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes `.name.<pid>.tmp` siblings of `path` left by killed processes (their
/// pid is gone), so that a rerun leaves no trace of a kill.
fn remove_stale_temporaries(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let prefix = format!(".{}.", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = n.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".tmp")) else { continue };
        if pid.parse::<u32>().is_ok_and(|p| p != std::process::id() && !super::claim::pid_alive(p)) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Why `dir` cannot be created: a file in the way (named), or the OS's reason.
fn folder_error(dir: &Path, source: std::io::Error) -> Error {
    let blocker = dir.ancestors().find(|a| !a.as_os_str().is_empty() && a.exists() && !a.is_dir());
    let why = match blocker {
        Some(file) => format!("{} is a file, not a folder", file.display()),
        None => source.to_string(),
    };
    Error::Folder { path: dir.to_path_buf(), why: format!("cannot create the folder ({why})") }
}

/// Writes `bytes` to `path` atomically.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |tmp| {
        let mut f = std::fs::File::create(tmp).map_err(|source| write_error(path, source))?;
        f.write_all(bytes).map_err(|source| write_error(path, source))
    })
}

/// Writing `path` failed: [`Error::DiskFull`] when the disk (or the file-size
/// limit) is the reason, else the OS's error, naming the file the user asked
/// for rather than its temporary sibling.
pub fn write_error(path: &Path, source: std::io::Error) -> Error {
    match source.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG) => {
            Error::DiskFull { path: path.to_path_buf(), source }
        }
        _ => Error::Io { action: "write", path: path.to_path_buf(), source },
    }
}
