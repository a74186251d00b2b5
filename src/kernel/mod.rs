//! `epic kernel`: a Jupyter kernel whose cells are EPIC script (Rhai), over the
//! Jupyter messaging protocol 5.3.
//!
//! Jupyter starts it from the kernelspec [`install()`] writes, as `epic kernel -f
//! {connection_file}`. One [`crate::script::Session`] serves every cell: the
//! engine `epic run` uses, with the same functions, `import` path and config
//! conventions, on the device `epic run --device auto` picks. A cell's value
//! shows as the notebook shows it ([`crate::notebook::Output`]: pictures as
//! `image/png`, tables as `text/html`, always `text/plain`); `print` goes to the
//! cell's stdout and epic's progress lines and warnings to its stderr.
//!
//! One file per idea: `connection` (the connection file), `wire` (signed
//! messages, replies and iopub children), `channels` (the five sockets, the
//! heartbeat, the iopub publisher), `handlers` (shell and control requests),
//! `engine` (the session on its own thread: execution, completion,
//! inspection), `output` (where a cell's output goes), `install` (the
//! kernelspec).
//!
//! Threads: a two-worker tokio runtime runs the sockets' tasks; the session runs
//! on a thread of its own; a thread forwards standard error.

/// A line for the kernel's log (its original standard error, the Jupyter
/// server's terminal), never a cell's output.
macro_rules! log {
    ($($arg:tt)*) => { $crate::kernel::output::log_line(&format!("[epic kernel] {}", format!($($arg)*))) };
}

/// Per-message tracing in the kernel's log, with `EPIC_KERNEL_TRACE=1`.
macro_rules! trace {
    ($($arg:tt)*) => {
        if std::env::var_os("EPIC_KERNEL_TRACE").is_some() {
            $crate::kernel::output::log_line(&format!("[epic kernel trace] {}", format!($($arg)*)))
        }
    };
}

mod channels;
mod connection;
mod engine;
mod handlers;
pub mod install;
mod output;
mod wire;

pub use install::{install, Place};

use crate::script::HostOptions;
use jupyter_protocol::Status;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::Notify;

/// Serves the kernel described by `connection_file` until a shutdown request,
/// with cells run by a session set up as `options` say (device, `--lib`).
pub fn serve(connection_file: &Path, options: HostOptions) -> crate::Result<()> {
    let info = connection::load(connection_file)?;
    // Before anything can send SIGINT: Jupyter's interrupt, and the one
    // jupyter_client sends at every shutdown.
    crate::interrupt::install_for_kernel();
    let sink = output::Sink::default();
    if let Err(e) = output::capture_stderr(sink.clone()) {
        log!("standard error stays the kernel's own (cannot make a pipe: {e})");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| crate::Error::Kernel(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(run(info, options, sink))?;
    Ok(())
}

async fn run(info: jupyter_protocol::ConnectionInfo, options: HostOptions, sink: output::Sink) -> crate::Result<()> {
    let device = crate::device::device_name(options.device);
    let engine = engine::EngineHandle::spawn(options, sink)
        .map_err(|e| crate::Error::Kernel(format!("cannot start the cells' thread: {e}")))?;
    let session_id = uuid::Uuid::new_v4().to_string();
    let ch = channels::bind(&info, &session_id).await.map_err(|e| crate::Error::Kernel(format!("{e:#}")))?;
    let iopub = channels::Iopub::start(ch.iopub, wire::KernelIdentity::new());
    iopub.publish(Status::starting(), None);
    let ctx = handlers::Ctx { iopub: iopub.clone(), engine, shutdown: Arc::new(Notify::new()) };
    tokio::spawn(handlers::run_shell(ch.shell, ctx.clone()));
    tokio::spawn(handlers::run_control(ch.control, ctx.clone()));
    let _stdin = ch.stdin; // bound for the kernel's lifetime; input_request is not used
    log!("ready on {} (cells on {device})", info.shell_url());
    ctx.shutdown.notified().await;
    iopub.flush().await;
    // Let the sockets' tasks put the last frames on the wire.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    log!("shut down");
    Ok(())
}
