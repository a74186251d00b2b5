//! Request handlers for the shell and control channels.
//!
//! Every request is bracketed on iopub by `status: busy` ... `status: idle`,
//! both children of the request (clients such as nbclient consider a request
//! finished only when they have the shell reply AND the idle status whose
//! `parent_header.msg_id` matches). Order for an execute_request:
//!
//! ```text
//! iopub: status busy -> execute_input -> stream* -> execute_result | error
//! shell: execute_reply
//! iopub: status idle
//! ```
//!
//! Shell requests are served strictly one at a time (an execution blocks the
//! shell queue, as in ipykernel); control runs in its own task so shutdown /
//! interrupt / kernel_info are answered while a cell is running.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jupyter_protocol::{
    CodeMirrorMode, CommInfoReply, CompleteReply, ErrorOutput, ExecuteInput, ExecuteReply, ExecuteRequest,
    ExecuteResult, ExecutionCount, HelpLink, HistoryReply, InspectReply, InterruptReply, IsCompleteReply,
    IsCompleteReplyStatus, JupyterMessage, JupyterMessageContent, KernelInfoReply, LanguageInfo, Media, MediaType,
    ReplyError, ReplyStatus, ShutdownReply, Status, StreamContent, UnknownMessage,
};
use jupyter_zmq_client::{Connection, RuntimeError};
use serde_json::json;
use tokio::sync::{mpsc, oneshot, Notify};

use super::channels::Iopub;
use super::engine::{Completion, EngineHandle, ExecEvent, IsComplete, Job};
use super::wire;

type RouterConn = Connection<zeromq::RouterSocket>;

/// State shared by the shell and control tasks.
#[derive(Clone)]
pub struct Ctx {
    pub iopub: Iopub,
    pub engine: EngineHandle,
    /// Notified once a shutdown_request has been answered.
    pub shutdown: Arc<Notify>,
}

/// What the loop should do after a request.
enum Flow {
    Continue,
    Shutdown,
}

// ---------------------------------------------------------------------------
// Reading: never let one bad message kill a channel
// ---------------------------------------------------------------------------

/// Read the next well-formed, correctly signed message from a ROUTER socket.
///
/// Bad signatures and malformed frames are logged and skipped (a kernel must
/// not reply to an unauthenticated message). Content that doesn't fit the
/// typed structs arrives as `UnknownMessage` (see `wire::read`).
async fn next_message(conn: &mut RouterConn, channel: &str) -> JupyterMessage {
    loop {
        match wire::read(conn).await {
            Ok(msg) => {
                trace!("{channel} <- {}", msg.header.msg_type);
                return msg;
            }
            Err(RuntimeError::ZmqError(e)) => {
                log!("{channel}: zmq error {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => log!("{channel}: dropped invalid message: {e}"),
        }
    }
}

async fn send(conn: &mut RouterConn, channel: &str, msg: JupyterMessage) {
    trace!("{channel} -> {}", msg.header.msg_type);
    if let Err(e) = conn.send(msg).await {
        log!("{channel}: send error: {e}");
    }
}

// ---------------------------------------------------------------------------
// Shell
// ---------------------------------------------------------------------------

pub async fn run_shell(mut conn: RouterConn, ctx: Ctx) {
    let mut execution_count = ExecutionCount::new(0);
    loop {
        let msg = next_message(&mut conn, "shell").await;
        ctx.iopub.publish(Status::busy(), Some(&msg));
        let flow = handle_shell(&mut conn, &ctx, &mut execution_count, &msg).await;
        ctx.iopub.publish(Status::idle(), Some(&msg));
        if let Flow::Shutdown = flow {
            ctx.iopub.flush().await;
            ctx.shutdown.notify_one();
            return;
        }
    }
}

async fn handle_shell(
    conn: &mut RouterConn,
    ctx: &Ctx,
    execution_count: &mut ExecutionCount,
    msg: &JupyterMessage,
) -> Flow {
    let reply: JupyterMessageContent = match &msg.content {
        JupyterMessageContent::KernelInfoRequest(_) => kernel_info().into(),
        JupyterMessageContent::ExecuteRequest(req) => execute(ctx, execution_count, req, msg).await.into(),
        JupyterMessageContent::CompleteRequest(req) => {
            let (tx, rx) = oneshot::channel();
            let job = Job::Complete { code: req.code.clone(), cursor_pos: req.cursor_pos, reply: tx };
            let c = ask(ctx, job, rx).await.unwrap_or(Completion {
                matches: vec![],
                cursor_start: req.cursor_pos,
                cursor_end: req.cursor_pos,
            });
            CompleteReply {
                matches: c.matches,
                cursor_start: c.cursor_start,
                cursor_end: c.cursor_end,
                ..Default::default()
            }
            .into()
        }
        JupyterMessageContent::InspectRequest(req) => {
            let (tx, rx) = oneshot::channel();
            let job = Job::Inspect { code: req.code.clone(), cursor_pos: req.cursor_pos, reply: tx };
            match ask(ctx, job, rx).await.flatten() {
                Some(text) => {
                    InspectReply { found: true, data: Media::from(MediaType::Plain(text)), ..Default::default() }
                }
                None => InspectReply::default(),
            }
            .into()
        }
        JupyterMessageContent::IsCompleteRequest(req) => {
            let (tx, rx) = oneshot::channel();
            let job = Job::IsComplete { code: req.code.clone(), reply: tx };
            match ask(ctx, job, rx).await {
                Some(IsComplete::Complete) => IsCompleteReply::complete(),
                Some(IsComplete::Incomplete(indent)) => IsCompleteReply::incomplete(indent),
                Some(IsComplete::Invalid) => IsCompleteReply::invalid(),
                None => IsCompleteReply::new(IsCompleteReplyStatus::Unknown, String::new()),
            }
            .into()
        }
        JupyterMessageContent::HistoryRequest(_) => HistoryReply::default().into(),
        JupyterMessageContent::CommInfoRequest(_) => {
            CommInfoReply { status: ReplyStatus::Ok, comms: HashMap::new(), error: None }.into()
        }
        JupyterMessageContent::ShutdownRequest(req) => {
            let reply = ShutdownReply { restart: req.restart, ..Default::default() };
            send(conn, "shell", wire::reply(reply, msg)).await;
            return Flow::Shutdown;
        }
        JupyterMessageContent::UnknownMessage(unknown) => match unknown_reply(unknown) {
            Some(reply) => reply,
            None => return Flow::Continue,
        },
        other => {
            // comm_open/comm_msg etc.: no reply expected.
            log!("shell: unhandled msg_type {}", other.message_type());
            return Flow::Continue;
        }
    };
    send(conn, "shell", wire::reply(reply, msg)).await;
    Flow::Continue
}

/// Reply for a request we could not decode or don't implement, so the client
/// gets an answer instead of a timeout. `None` for non-requests (comm_*).
fn unknown_reply(unknown: &UnknownMessage) -> Option<JupyterMessageContent> {
    let t = unknown.msg_type.as_str();
    if t == "history_request" {
        // jupyter_client's default history() omits fields jupyter-protocol
        // requires; we keep no history anyway.
        return Some(unknown.reply(json!({"status": "ok", "history": []})));
    }
    if !t.ends_with("_request") {
        log!("unhandled msg_type {t}");
        return None;
    }
    log!("unsupported or malformed {t}: replying with an error");
    Some(unknown.reply(json!({
        "status": "error",
        "ename": "UnsupportedRequest",
        "evalue": format!("epic kernel cannot handle this {t}"),
        "traceback": [],
    })))
}

/// Send a query job to the engine and await its answer (None if the engine
/// thread is gone).
async fn ask<T>(ctx: &Ctx, job: Job, rx: oneshot::Receiver<T>) -> Option<T> {
    ctx.engine.submit(job).ok()?;
    rx.await.ok()
}

async fn execute(
    ctx: &Ctx,
    execution_count: &mut ExecutionCount,
    req: &ExecuteRequest,
    msg: &JupyterMessage,
) -> ExecuteReply {
    let silent = req.silent;
    if req.store_history && !silent {
        execution_count.increment();
    }
    let count = *execution_count;
    if !silent {
        ctx.iopub.publish(ExecuteInput { code: req.code.clone(), execution_count: count }, Some(msg));
    }

    let (tx, mut rx) = mpsc::unbounded_channel();
    let outcome = if ctx.engine.submit(Job::Execute { code: req.code.clone(), events: tx }).is_err() {
        Err(engine_dead())
    } else {
        loop {
            match rx.recv().await {
                Some(ExecEvent::Stdout(text)) if !silent => ctx.iopub.publish(StreamContent::stdout(&text), Some(msg)),
                Some(ExecEvent::Stderr(text)) if !silent => ctx.iopub.publish(StreamContent::stderr(&text), Some(msg)),
                Some(ExecEvent::Stdout(_)) | Some(ExecEvent::Stderr(_)) => {}
                Some(ExecEvent::Done(r)) => break r,
                None => break Err(engine_dead()), // engine thread panicked
            }
        }
    };

    // Like ipykernel: an empty user_expressions dict rather than null.
    let user_expressions = Some(HashMap::new());
    match outcome {
        Ok(value) => {
            if let (Some(v), false) = (value, silent) {
                let media = v.media;
                ctx.iopub.publish(ExecuteResult::new(count, media.into()), Some(msg));
            }
            ExecuteReply { status: ReplyStatus::Ok, execution_count: count, user_expressions, ..Default::default() }
        }
        Err(e) => {
            if !silent {
                ctx.iopub.publish(
                    ErrorOutput { ename: e.ename.clone(), evalue: e.evalue.clone(), traceback: e.traceback.clone() },
                    Some(msg),
                );
            }
            // ipykernel also answers execute requests already queued behind a
            // failed cell with "aborted" (stop_on_error); here they run.
            ExecuteReply {
                status: ReplyStatus::Error,
                execution_count: count,
                user_expressions,
                error: Some(Box::new(ReplyError { ename: e.ename, evalue: e.evalue, traceback: e.traceback })),
                ..Default::default()
            }
        }
    }
}

fn engine_dead() -> super::engine::ExecError {
    super::engine::ExecError {
        ename: "KernelError".into(),
        evalue: "the Rhai engine thread has stopped".into(),
        traceback: vec!["KernelError: the Rhai engine thread has stopped".into()],
    }
}

pub fn kernel_info() -> KernelInfoReply {
    KernelInfoReply {
        status: ReplyStatus::Ok,
        protocol_version: "5.3".into(),
        implementation: "epic".into(),
        implementation_version: env!("CARGO_PKG_VERSION").into(),
        language_info: LanguageInfo {
            name: "rhai".into(),
            version: "1".into(),
            mimetype: Some("text/x-rhai".into()),
            file_extension: Some(".rhai".into()),
            // No Rhai lexer in Pygments/CodeMirror; Rust is the closest.
            pygments_lexer: Some("rust".into()),
            codemirror_mode: Some(CodeMirrorMode::Simple("rust".into())),
            nbconvert_exporter: None,
        },
        banner: format!("epic {} — EPIC experiment cells in Rhai", env!("CARGO_PKG_VERSION")),
        help_links: vec![HelpLink { text: "Rhai book".into(), url: "https://rhai.rs/book/".into() }],
        debugger: false,
        error: None,
    }
}

// ---------------------------------------------------------------------------
// Control
// ---------------------------------------------------------------------------

pub async fn run_control(mut conn: RouterConn, ctx: Ctx) {
    loop {
        let msg = next_message(&mut conn, "control").await;
        ctx.iopub.publish(Status::busy(), Some(&msg));
        let mut shutdown = false;
        let reply: Option<JupyterMessageContent> = match &msg.content {
            JupyterMessageContent::KernelInfoRequest(_) => Some(kernel_info().into()),
            JupyterMessageContent::InterruptRequest(_) => {
                crate::interrupt::request();
                Some(InterruptReply::new().into())
            }
            JupyterMessageContent::ShutdownRequest(req) => {
                shutdown = true;
                Some(ShutdownReply { restart: req.restart, ..Default::default() }.into())
            }
            JupyterMessageContent::UnknownMessage(unknown) => unknown_reply(unknown),
            other => {
                log!("control: unhandled msg_type {}", other.message_type());
                None
            }
        };
        if let Some(reply) = reply {
            send(&mut conn, "control", wire::reply(reply, &msg)).await;
        }
        ctx.iopub.publish(Status::idle(), Some(&msg));
        if shutdown {
            // A cell may still be running on the engine thread; stop it so
            // nothing is left half-done, then let main exit the process.
            crate::interrupt::request();
            ctx.iopub.flush().await;
            ctx.shutdown.notify_one();
            return;
        }
    }
}
