//! The sandbox for shared scripts (`epic run --sandbox`): which folders a run
//! may read and write.
//!
//! With no [`Policy`] installed (the default) every path is allowed. With one,
//! each place where epic opens a file asks first — [`check_read`] before a
//! weights file, a tensor file, a config, an image or a script module is read,
//! [`check_write`] before an artifact, a cache chunk, a checkpoint or a claim is
//! written (every write goes through [`crate::io::write_atomic`]) — and a path
//! outside the allowed folders is [`Denied`], naming the path and the flag that
//! would allow it.
//!
//! Paths are compared after resolving `.`, `..` and symbolic links (of the
//! longest part that exists), so `out/../../etc` is not under `out`.
use std::path::{Component, Path, PathBuf};
use std::sync::RwLock;

/// The folders a sandboxed run may read and write (writable ones are readable).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Folders whose files may be read.
    pub read: Vec<PathBuf>,
    /// Folders whose files may be written.
    pub write: Vec<PathBuf>,
}

/// A path outside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sandbox: this script may not {access} {path}; if it should, run again with `{flag} {folder}`")]
pub struct Denied {
    /// `read` or `write`.
    pub access: &'static str,
    /// The path, as resolved.
    pub path: PathBuf,
    /// The flag that allows it (`--allow-read` or `--allow-write`).
    pub flag: &'static str,
    /// The folder to name with the flag.
    pub folder: PathBuf,
}

static POLICY: RwLock<Option<Policy>> = RwLock::new(None);

/// Puts `policy` in force for this process (`None`: everything allowed again).
pub fn install(policy: Option<Policy>) {
    let policy = policy.map(|p| Policy {
        read: p.read.iter().map(|d| resolve(d)).collect(),
        write: p.write.iter().map(|d| resolve(d)).collect(),
    });
    *POLICY.write().unwrap_or_else(|p| p.into_inner()) = policy;
}

/// Whether a sandbox is in force.
pub fn active() -> bool {
    POLICY.read().unwrap_or_else(|p| p.into_inner()).is_some()
}

/// Adds folders a sandboxed run may read (and, with `write`, write): those its
/// config names. No-op without a sandbox.
pub fn grant(dir: &Path, write: bool) {
    if let Some(p) = POLICY.write().unwrap_or_else(|p| p.into_inner()).as_mut() {
        let d = resolve(dir);
        if write {
            p.write.push(d);
        } else {
            p.read.push(d);
        }
    }
}

/// `path` with `.`, `..` and links resolved, as far as it exists, and absolute.
pub fn resolve(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")).join(path)
    };
    // The longest existing ancestor is canonicalised; the rest is normalised by hand.
    let mut rest = Vec::new();
    let mut base = abs.as_path();
    loop {
        if let Ok(c) = base.canonicalize() {
            let mut out = c;
            for part in rest.iter().rev() {
                match part {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::Normal(p) => out.push(p),
                    _ => {}
                }
            }
            return out;
        }
        match (base.parent(), base.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last);
                base = parent;
            }
            _ => return abs,
        }
    }
}

fn allowed(path: &Path, roots: &[PathBuf]) -> bool {
    roots.iter().any(|r| path.starts_with(r))
}

/// Whether `path` may be read.
pub fn check_read(path: &Path) -> Result<(), Denied> {
    let guard = POLICY.read().unwrap_or_else(|p| p.into_inner());
    let Some(p) = guard.as_ref() else { return Ok(()) };
    let r = resolve(path);
    if allowed(&r, &p.read) || allowed(&r, &p.write) {
        return Ok(());
    }
    let folder = if r.is_dir() { r.clone() } else { r.parent().map_or_else(|| r.clone(), Path::to_path_buf) };
    Err(Denied { access: "read", path: r, flag: "--allow-read", folder })
}

/// Whether `path` may be written (or created).
pub fn check_write(path: &Path) -> Result<(), Denied> {
    let guard = POLICY.read().unwrap_or_else(|p| p.into_inner());
    let Some(p) = guard.as_ref() else { return Ok(()) };
    let r = resolve(path);
    if allowed(&r, &p.write) {
        return Ok(());
    }
    let folder = r.parent().map_or_else(|| r.clone(), Path::to_path_buf);
    Err(Denied { access: "write", path: r, flag: "--allow-write", folder })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_dot_and_links_do_not_escape_a_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let roots = [resolve(&out)];
        assert!(allowed(&resolve(&out.join("a/b.png")), &roots));
        assert!(!allowed(&resolve(&out.join("../secret.txt")), &roots));
        assert!(!allowed(&resolve(&out.join("new/../../x")), &roots));
        std::os::unix::fs::symlink(tmp.path(), out.join("up")).unwrap();
        assert!(!allowed(&resolve(&out.join("up/secret.txt")), &roots));
    }
}
