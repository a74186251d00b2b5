//! The five kernel sockets.
//!
//! | channel | kernel socket | role                                             |
//! |---------|---------------|--------------------------------------------------|
//! | shell   | ROUTER        | requests/replies, served one at a time           |
//! | control | ROUTER        | shutdown/interrupt/kernel_info, served while a   |
//! |         |               | shell request is still running                   |
//! | stdin   | ROUTER        | input_request -> frontend (bound, unused here)   |
//! | iopub   | XPUB          | broadcast: status, execute_input, stream, result |
//! | hb      | REP           | echo bytes back verbatim                         |
//!
//! The kernel binds; the client connects. Signed framing is done by
//! `jupyter_zmq_client::Connection` (see `wire.rs`).
//!
//! IOPub has several producers (shell handler, control handler, startup), so
//! it is owned by one task fed by an mpsc queue ([`Iopub`]). That keeps
//! per-producer ordering (busy -> execute_input -> stream -> result -> idle)
//! and lets a producer wait until everything queued so far was written
//! ([`Iopub::flush`]) — needed before exiting on shutdown.
//!
//! IOPub is an XPUB socket (JEP 65, as in ipykernel 7): a plain PUB drops
//! everything published before the client's SUBSCRIBE arrives ("slow
//! joiner"), so the busy/idle of the client's first kernel_info_request is
//! lost and `wait_for_ready` loops (measured: ~0.4 s extra at startup). With
//! XPUB the kernel sees the subscription and answers with `iopub_welcome`,
//! which both tells the client iopub is live and satisfies jupyter_client's
//! "any iopub message after kernel_info_reply" readiness check.

use anyhow::{Context, Result};
use jupyter_protocol::IoPubWelcome;
use jupyter_protocol::{ConnectionInfo, JupyterMessage, JupyterMessageContent};
use jupyter_zmq_client::{
    create_kernel_control_connection, create_kernel_heartbeat_connection, create_kernel_iopub_xpub_connection,
    create_kernel_shell_connection, create_kernel_stdin_connection, KernelControlConnection, KernelIoPubXPubConnection,
    KernelShellConnection, KernelStdinConnection, SubscriptionEvent,
};
use tokio::sync::{mpsc, oneshot};
use zeromq::{SocketRecv, SocketSend};

use super::wire::{self, KernelIdentity};

/// All bound sockets, before their tasks are started.
pub struct Channels {
    pub shell: KernelShellConnection,
    pub control: KernelControlConnection,
    /// Kept alive so the port stays bound; `input_request` is not implemented.
    pub stdin: KernelStdinConnection,
    pub iopub: KernelIoPubXPubConnection,
}

/// Bind shell/control/stdin/iopub and start the heartbeat echo task.
pub async fn bind(info: &ConnectionInfo, session_id: &str) -> Result<Channels> {
    // Heartbeat first: it is what "is the kernel alive" checks look at.
    let hb = create_kernel_heartbeat_connection(info)
        .await
        .with_context(|| format!("binding heartbeat {}", info.hb_url()))?;
    tokio::spawn(heartbeat_echo(hb.socket));

    let shell = create_kernel_shell_connection(info, session_id)
        .await
        .with_context(|| format!("binding shell {}", info.shell_url()))?;
    let control = create_kernel_control_connection(info, session_id)
        .await
        .with_context(|| format!("binding control {}", info.control_url()))?;
    let stdin = create_kernel_stdin_connection(info, session_id)
        .await
        .with_context(|| format!("binding stdin {}", info.stdin_url()))?;
    let iopub = create_kernel_iopub_xpub_connection(info, session_id)
        .await
        .with_context(|| format!("binding iopub {}", info.iopub_url()))?;
    Ok(Channels { shell, control, stdin, iopub })
}

/// Heartbeat: echo every message back unchanged (the spec says "echo";
/// `KernelHeartbeatConnection::single_heartbeat` answers a fixed `pong`,
/// which jupyter_client accepts too, but echo is the documented behaviour).
async fn heartbeat_echo(mut socket: zeromq::RepSocket) {
    loop {
        match socket.recv().await {
            Ok(msg) => {
                if let Err(e) = socket.send(msg).await {
                    log!("heartbeat send error: {e}");
                }
            }
            Err(e) => {
                // A client that went away (a reset connection) is not the end:
                // the next one connects to the same socket.
                trace!("heartbeat recv error: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

enum IopubCmd {
    Send(Box<JupyterMessage>),
    Flush(oneshot::Sender<()>),
}

/// Cheap, cloneable handle for publishing on iopub.
#[derive(Clone)]
pub struct Iopub {
    tx: mpsc::UnboundedSender<IopubCmd>,
    id: KernelIdentity,
}

impl Iopub {
    /// Start the publisher task that owns the PUB socket.
    pub fn start(mut conn: KernelIoPubXPubConnection, id: KernelIdentity) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<IopubCmd>();
        let task_id = id.clone();
        tokio::spawn(async move {
            loop {
                // Wait for either something to publish or a (un)subscription.
                // Both futures borrow `conn`; the losing one is dropped before
                // we send, so the borrow checker is happy.
                let msg = tokio::select! {
                    cmd = rx.recv() => match cmd {
                        Some(IopubCmd::Send(msg)) => *msg,
                        Some(IopubCmd::Flush(done)) => { let _ = done.send(()); continue; }
                        None => return,
                    },
                    sub = conn.recv_subscription() => match sub {
                        Ok(SubscriptionEvent::Subscribe(topic)) => {
                            trace!("iopub subscription {topic:?}");
                            wire::iopub(&task_id, IoPubWelcome::new(topic), None)
                        }
                        Ok(SubscriptionEvent::Unsubscribe(_)) => continue,
                        Err(e) => {
                            log!("iopub subscription error: {e}");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                trace!("iopub -> {}", msg.header.msg_type);
                if let Err(e) = conn.send(msg).await {
                    log!("iopub send error: {e}");
                }
            }
        });
        Self { tx, id }
    }

    /// Publish `content` as a child of `parent` (or with an empty parent).
    pub fn publish(&self, content: impl Into<JupyterMessageContent>, parent: Option<&JupyterMessage>) {
        let msg = wire::iopub(&self.id, content, parent);
        let _ = self.tx.send(IopubCmd::Send(Box::new(msg)));
    }

    /// Wait until everything published so far has been handed to the socket.
    pub async fn flush(&self) {
        let (done_tx, done_rx) = oneshot::channel();
        if self.tx.send(IopubCmd::Flush(done_tx)).is_ok() {
            let _ = done_rx.await;
        }
    }
}
