//! Where a running cell's output goes: `print` to its stdout stream, and
//! everything the process writes to its standard error (epic's progress lines,
//! warnings and notes, libtorch's messages) to its stderr stream, as well as to
//! the kernel's own stderr (the Jupyter server's log).
//!
//! Standard error is a pipe for the kernel's lifetime ([`capture_stderr`]): a
//! thread reads it and hands each piece to the [`Sink`], which forwards it to the
//! cell running now, if any. Before a cell's result is sent, [`flush_stderr`]
//! waits until everything written so far has been read, so that a cell's
//! progress lines come before its result.
use super::engine::ExecEvent;
use std::io::{Read, Write};
use std::sync::{Arc, Condvar, Mutex};
use tokio::sync::mpsc::UnboundedSender;

/// The running cell's event channel, shared by the engine thread and the
/// stderr reader.
#[derive(Clone, Default)]
pub struct Sink(Arc<Mutex<Option<UnboundedSender<ExecEvent>>>>);

impl Sink {
    /// Output from now on goes to `events` (a cell starts).
    pub fn attach(&self, events: UnboundedSender<ExecEvent>) {
        if let Ok(mut s) = self.0.lock() {
            *s = Some(events);
        }
    }

    /// Output from now on goes nowhere but the kernel's log (the cell ended).
    pub fn detach(&self) {
        if let Ok(mut s) = self.0.lock() {
            *s = None;
        }
    }

    /// Sends `event` to the running cell; false when no cell runs.
    pub fn send(&self, event: ExecEvent) -> bool {
        match self.0.lock() {
            Ok(s) => s.as_ref().is_some_and(|tx| tx.send(event).is_ok()),
            Err(_) => false,
        }
    }
}

/// Written to the pipe by [`flush_stderr`]; the reader drops it and wakes the writer.
const MARKER: &[u8] = b"\x00epic-kernel-flush\x00";

struct Capture {
    /// The kernel's original standard error.
    log: Mutex<std::fs::File>,
    /// Markers written and markers seen.
    flushes: Mutex<(u64, u64)>,
    seen: Condvar,
}

static CAPTURE: Mutex<Option<Arc<Capture>>> = Mutex::new(None);

/// A line for the kernel's own log (the original standard error), never a cell's.
pub fn log_line(text: &str) {
    let capture = CAPTURE.lock().ok().and_then(|c| c.clone());
    match capture {
        Some(c) => {
            if let Ok(mut f) = c.log.lock() {
                let _ = writeln!(f, "{text}");
            }
        }
        None => eprintln!("{text}"),
    }
}

/// Makes standard error a pipe read by a thread that forwards to `sink` and
/// copies to the original standard error. Unix only; elsewhere nothing changes.
pub fn capture_stderr(sink: Sink) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::fd::FromRawFd;
        let mut fds = [0; 2];
        // SAFETY: plain POSIX calls on descriptors this function owns.
        let original = unsafe {
            if libc::pipe(fds.as_mut_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let original = libc::dup(2);
            if original < 0 || libc::dup2(fds[1], 2) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(fds[1]);
            original
        };
        // SAFETY: both descriptors were just created and are owned here alone.
        let (mut reader, log) = unsafe { (std::fs::File::from_raw_fd(fds[0]), std::fs::File::from_raw_fd(original)) };
        let capture = Arc::new(Capture { log: Mutex::new(log), flushes: Mutex::new((0, 0)), seen: Condvar::new() });
        if let Ok(mut c) = CAPTURE.lock() {
            *c = Some(capture.clone());
        }
        std::thread::Builder::new().name("epic-stderr".into()).spawn(move || {
            let mut buf = vec![0u8; 8192];
            let mut pending: Vec<u8> = Vec::new();
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                pending.extend_from_slice(&buf[..n]);
                let mut markers = 0;
                while let Some(at) = pending.windows(MARKER.len()).position(|w| w == MARKER) {
                    pending.drain(at..at + MARKER.len());
                    markers += 1;
                }
                // Whole lines go out (a cell shows "step 1/2: 1/1 (0.3s)" as one
                // line, not two pieces); at a flush, whatever is left too.
                let upto = if markers > 0 {
                    pending.len()
                } else {
                    pending.iter().rposition(|&b| b == b'\n').map_or(0, |at| at + 1)
                };
                let text: Vec<u8> = pending.drain(..upto).collect();
                if !text.is_empty() {
                    if let Ok(mut f) = capture.log.lock() {
                        let _ = f.write_all(&text);
                    }
                    sink.send(ExecEvent::Stderr(String::from_utf8_lossy(&text).into_owned()));
                }
                if markers > 0 {
                    if let Ok(mut f) = capture.flushes.lock() {
                        f.1 += markers;
                        capture.seen.notify_all();
                    }
                }
            }
        })?;
    }
    #[cfg(not(unix))]
    let _ = sink;
    Ok(())
}

/// Waits (at most a second) until the reader has forwarded everything written
/// to standard error so far.
pub fn flush_stderr() {
    let capture = CAPTURE.lock().ok().and_then(|c| c.clone());
    let Some(c) = capture else { return };
    let target = match c.flushes.lock() {
        Ok(mut f) => {
            f.0 += 1;
            f.0
        }
        Err(_) => return,
    };
    let _ = std::io::stderr().write_all(MARKER);
    let Ok(guard) = c.flushes.lock() else { return };
    let _ = c.seen.wait_timeout_while(guard, std::time::Duration::from_secs(1), |f| f.1 < target);
}
