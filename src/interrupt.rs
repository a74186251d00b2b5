//! Ctrl-C (SIGINT) as a request to stop at the next safe point.
//!
//! `epic run` calls [`install`]; long loops (extraction, training) call
//! [`requested`] between units of work and, when it is set, finish what keeps
//! the run resumable (a complete cache chunk, a checkpoint of the last completed
//! schedule step), then return [`Error::Interrupted`](crate::Error::Interrupted),
//! whose message says how to resume. A second Ctrl-C exits at once (status 130).
//! Library users who never call [`install`] keep the default behaviour.
use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

#[cfg(unix)]
extern "C" fn on_sigint(_: libc::c_int) {
    if REQUESTED.swap(true, Ordering::SeqCst) {
        // Second Ctrl-C: leave now (async-signal-safe).
        unsafe { libc::_exit(130) };
    }
    let msg = b"\nepic: interrupted; stopping at the next safe point (Ctrl-C again to quit now)\n";
    // write(2) may set errno under the interrupted code's feet: keep it.
    unsafe {
        let errno = *libc::__errno_location();
        libc::write(2, msg.as_ptr().cast(), msg.len());
        *libc::__errno_location() = errno;
    }
}

#[cfg(unix)]
extern "C" fn on_sigint_in_kernel(_: libc::c_int) {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Routes SIGINT to [`requested`] for a process that lives on after it: every
/// SIGINT (a notebook's stop button, the one Jupyter sends before a shutdown)
/// only asks the running cell to stop, and nothing is printed (the cell's error
/// says it). `epic kernel` clears the request before each cell.
pub fn install_for_kernel() {
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGINT, on_sigint_in_kernel as extern "C" fn(libc::c_int) as libc::sighandler_t);
    }
}

/// Routes SIGINT to [`requested`] (Unix; elsewhere nothing changes).
pub fn install() {
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t);
    }
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Asks for a stop, as Ctrl-C does (for tests and embedding programs).
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Withdraws a request (after handling it, in long-lived processes).
pub fn clear() {
    REQUESTED.store(false, Ordering::SeqCst);
}
