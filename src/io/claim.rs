//! Claims: how runs that share folders divide work and keep out of each other's
//! way.
//!
//! A claim is a small file (`pid host time`) held under an exclusive `flock`
//! for as long as its [`Claim`] lives. The kernel drops the lock when the
//! holder exits or is killed, so a claim file whose lock can be taken is stale
//! whatever it says: it is taken over, with a note naming the gone pid. A live
//! holder is reported by pid, host and start time ([`Attempt::Busy`]).
//!
//! Two uses: a feature-bank chunk (`chunk_<start>.claim`, so that two processes
//! extracting one bank each compute the chunks the other has not claimed), and a
//! run's `output_path` ([`hold_on_first_write`]: held from the run's first write
//! there until the process ends).
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Who holds a claim, as its file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The holder's process id.
    pub pid: u32,
    /// The holder's host name.
    pub host: String,
    /// When it took the claim (UTC, ISO 8601).
    pub since: String,
}

/// An exclusive claim, released (and its file removed) when dropped.
#[derive(Debug)]
pub struct Claim {
    /// Held open for its lock: closing it releases the claim.
    _file: File,
    path: PathBuf,
    /// The holder whose stale claim this one took over, if any.
    pub took_over: Option<Holder>,
}

/// The outcome of [`try_claim`].
#[derive(Debug)]
pub enum Attempt {
    /// This process holds the claim now.
    Held(Claim),
    /// A live process holds it.
    Busy(Holder),
}

/// This host's name (`/proc/sys/kernel/hostname`; `localhost` when unreadable).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether process `pid` exists on this host.
pub fn pid_alive(pid: u32) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists()
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::Io { action, path: path.to_path_buf(), source }
}

fn parse_holder(text: &str) -> Option<Holder> {
    let mut it = text.split_whitespace();
    let pid = it.next()?.parse().ok()?;
    let host = it.next()?.to_string();
    let since = it.next().unwrap_or("?").to_string();
    Some(Holder { pid, host, since })
}

/// Takes the claim at `path` without waiting: [`Attempt::Held`] when no live
/// process holds it (a stale file is taken over), else [`Attempt::Busy`] with
/// the holder. Creates missing parent folders.
pub fn try_claim(path: &Path) -> Result<Attempt> {
    super::access::check_write(path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io_error("create", dir, e))?;
    }
    loop {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io_error("open", path, e))?;
        // SAFETY: flock on a descriptor this function owns; no memory is shared.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        if !locked {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(io_error("lock", path, err));
            }
            match parse_holder(&text) {
                Some(h) => return Ok(Attempt::Busy(h)),
                // The holder has not written its line yet.
                None => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    continue;
                }
            }
        }
        // The file may have been removed by a holder that released it between
        // our open and our lock: then the lock is on a dead inode; start again.
        let same = match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if !same {
            continue;
        }
        let took_over = parse_holder(&text).filter(|h| h.pid != std::process::id() || h.host != host_name());
        let me = format!("{} {} {}\n", std::process::id(), host_name(), crate::io::utc_now());
        file.set_len(0).and_then(|()| file.write_all_at(me.as_bytes(), 0)).map_err(|e| io_error("write", path, e))?;
        return Ok(Attempt::Held(Claim { _file: file, path: path.to_path_buf(), took_over }));
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Remove first; the lock goes when `file` closes right after. A process
        // that locks the old inode then sees that it is gone and opens afresh.
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Claim {
    /// The claim file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Folders this process holds until it ends, by canonical path.
static HELD: Mutex<Option<HashMap<PathBuf, Claim>>> = Mutex::new(None);

/// Holds `dir` (a run's `output_path`; `what` names it in messages) for the rest
/// of this process through `dir/.epic/run.lock`. Another live run holding it is
/// [`Error::Busy`], naming its pid and the folder; a killed run's lock is taken
/// over with a note. Holding a folder twice is a no-op.
pub fn hold_folder(dir: &Path, what: &str) -> Result<()> {
    super::access::check_write(dir)?;
    std::fs::create_dir_all(dir).map_err(|e| io_error("create", dir, e))?;
    let key = dir.canonicalize().map_err(|e| io_error("open", dir, e))?;
    let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
    let held = held.get_or_insert_with(|| {
        // Statics are not dropped at exit: release the folders when the process
        // exits normally (a notebook kernel, a script host), so that only a
        // killed run leaves a lock for the next one to take over.
        extern "C" fn at_exit() {
            release_all();
        }
        // SAFETY: registers a plain function with the C runtime, once.
        unsafe { libc::atexit(at_exit) };
        HashMap::new()
    });
    if held.contains_key(&key) {
        return Ok(());
    }
    match try_claim(&key.join(".epic").join("run.lock"))? {
        Attempt::Busy(h) => {
            Err(Error::Busy { path: dir.to_path_buf(), what: what.into(), pid: h.pid, host: h.host, since: h.since })
        }
        Attempt::Held(claim) => {
            if let Some(old) = &claim.took_over {
                eprintln!(
                    "note: {} was held by run {} on {}, which is gone; this run takes it over",
                    dir.display(),
                    old.pid,
                    old.host
                );
            }
            held.insert(key, claim);
            Ok(())
        }
    }
}

/// Folders to hold at the first write into them: (resolved path, path as
/// given, what it is).
static PENDING: Mutex<Vec<(PathBuf, PathBuf, String)>> = Mutex::new(Vec::new());

/// Holds `dir` ([`hold_folder`]) when this process first writes a file under it
/// ([`before_write`]): a run's `output_path`, taken when the run starts to write
/// there, so that merely reading a config creates nothing.
pub fn hold_on_first_write(dir: &Path, what: &str) {
    let resolved = super::access::resolve(dir);
    let mut pending = PENDING.lock().unwrap_or_else(|p| p.into_inner());
    if !pending.iter().any(|(r, _, _)| *r == resolved) {
        pending.push((resolved, dir.to_path_buf(), what.to_string()));
    }
}

/// Called by the atomic writer before it writes `path`: holds the pending folder
/// that contains it, if any; [`Error::Busy`] when another live run holds it.
pub fn before_write(path: &Path) -> Result<()> {
    let due: Vec<(PathBuf, PathBuf, String)> = {
        let pending = PENDING.lock().unwrap_or_else(|p| p.into_inner());
        if pending.is_empty() {
            return Ok(());
        }
        let target = super::access::resolve(path);
        pending.iter().filter(|(r, _, _)| target.starts_with(r)).cloned().collect()
    };
    for (resolved, dir, what) in due {
        hold_folder(&dir, &what)?;
        PENDING.lock().unwrap_or_else(|p| p.into_inner()).retain(|(r, _, _)| *r != resolved);
    }
    Ok(())
}

/// Releases every folder taken by [`hold_folder`] (at the end of a run).
pub fn release_all() {
    // At exit the lock may be held by a thread that is gone: then leave it.
    if let Ok(mut held) = HELD.try_lock() {
        if let Some(held) = held.as_mut() {
            held.clear();
        }
    }
}

/// Releases a folder taken by [`hold_folder`] (a notebook that is done with it).
pub fn release_folder(dir: &Path) {
    if let Ok(key) = dir.canonicalize() {
        if let Some(held) = HELD.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            held.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_exclusive_within_a_process_and_released_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.claim");
        let Attempt::Held(first) = try_claim(&path).unwrap() else { panic!("free claim") };
        assert!(first.took_over.is_none());
        // flock locks belong to the open file description: a second open is refused.
        match try_claim(&path).unwrap() {
            Attempt::Busy(h) => assert_eq!((h.pid, h.host), (std::process::id(), host_name())),
            Attempt::Held(_) => panic!("claimed twice"),
        }
        drop(first);
        assert!(!path.exists());
        assert!(matches!(try_claim(&path).unwrap(), Attempt::Held(_)));
    }

    #[test]
    fn a_stale_claim_file_is_taken_over_and_names_its_gone_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("b.claim");
        std::fs::write(&path, "4000000 elsewhere 2026-01-01T00:00:00Z\n").unwrap();
        let Attempt::Held(c) = try_claim(&path).unwrap() else { panic!("stale claim kept") };
        assert_eq!(c.took_over.as_ref().map(|h| (h.pid, h.host.as_str())), Some((4000000, "elsewhere")));
        assert!(std::fs::read_to_string(&path).unwrap().starts_with(&format!("{} ", std::process::id())));
    }
}
