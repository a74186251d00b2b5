//! Wire messages: framing, signing, and how replies are derived from requests.
//!
//! # Wire format (Jupyter messaging v5.3)
//!
//! Every message on shell/control/stdin/iopub is one ZeroMQ multipart message:
//!
//! ```text
//! [ident_0, ..., ident_n, b"<IDS|MSG>", hmac_hex, header, parent_header, metadata, content, buffers...]
//! ```
//!
//! * `ident_*` — ROUTER routing envelope on shell/control/stdin (the frames the
//!   ROUTER socket prepended for the requesting DEALER). A reply MUST carry the
//!   request's identities or ZeroMQ drops it silently. On iopub (PUB) the same
//!   slot holds the *topic* (we use `kernel.<id>.<msg_type>`); clients
//!   subscribe to `""`, so any topic works.
//! * `hmac_hex` — lowercase hex HMAC-SHA256, keyed with the connection file's
//!   `key`, over the four JSON frames header|parent_header|metadata|content
//!   concatenated (buffers are NOT signed). Empty key => empty signature and no
//!   verification.
//! * `parent_header` — the full header of the request that caused this message
//!   (`{}` if none). Clients route iopub output to cells by
//!   `parent_header.msg_id`, so every iopub message must carry it.
//!
//! Framing, the delimiter, signature creation and constant-time verification
//! (via `ring`) are done by `jupyter-zmq-client`: `Connection::send` for
//! outgoing messages (it also overwrites `header.session` with the kernel's
//! session id) and `RawMessage::from_multipart` for incoming ones.
//!
//! We do NOT use `Connection::read` for incoming requests: it parses content
//! into the typed enum and, if that fails (e.g. jupyter_client's default
//! `history_request` has no `start`/`stop`, which jupyter-protocol 2.0.3
//! requires), returns an error that has already thrown away the header and
//! routing envelope — the kernel can't reply and the client hangs. [`read`]
//! below verifies the signature the same way but degrades undecodable
//! content to `UnknownMessage`, so a handler can still answer.

use bytes::Bytes;
use jupyter_protocol::{Header, JupyterMessage, JupyterMessageContent, UnknownMessage};
use jupyter_zmq_client::{Connection, RawMessage, RuntimeError};

/// `header.username` used on every message the kernel creates.
pub const USERNAME: &str = "epic-kernel";

/// Identity of this kernel process, used for iopub topics.
#[derive(Clone, Debug)]
pub struct KernelIdentity {
    pub kernel_id: String,
}

impl KernelIdentity {
    pub fn new() -> Self {
        Self { kernel_id: uuid::Uuid::new_v4().to_string() }
    }
}

/// Receive one message: signature verified, content decoded leniently.
///
/// Errors: transport errors, missing `<IDS|MSG>` delimiter, too few frames,
/// bad signature (`RuntimeError::VerifyError`), undecodable header JSON.
/// Those messages must simply be dropped (never answer an unauthenticated
/// message).
pub async fn read<S: zeromq::SocketRecv>(conn: &mut Connection<S>) -> Result<JupyterMessage, RuntimeError> {
    let frames = conn.socket.recv().await?;
    let raw = RawMessage::from_multipart(frames, &conn.mac)?;
    decode(raw)
}

fn decode(raw: RawMessage) -> Result<JupyterMessage, RuntimeError> {
    let j = &raw.jparts; // from_multipart guarantees >= 4 frames
    let header: Header = serde_json::from_slice(&j[0])?;
    // `{}` means "no parent" and fails to parse as Header -> None.
    let parent_header: Option<Header> = serde_json::from_slice(&j[1]).ok();
    let metadata = serde_json::from_slice(&j[2]).unwrap_or_else(|_| serde_json::json!({}));
    let content_json: serde_json::Value = serde_json::from_slice(&j[3])?;
    let content =
        JupyterMessageContent::from_type_and_content(&header.msg_type, content_json.clone()).unwrap_or_else(|e| {
            log!("lenient decode of {}: {e}", header.msg_type);
            JupyterMessageContent::UnknownMessage(UnknownMessage {
                msg_type: header.msg_type.clone(),
                content: content_json,
            })
        });
    Ok(JupyterMessage {
        zmq_identities: raw.zmq_identities,
        header,
        parent_header,
        metadata,
        content,
        buffers: j[4..].to_vec(),
        channel: None,
    })
}

/// A reply to `parent` on the socket it came from (shell/control/stdin).
///
/// `JupyterMessage::new(_, Some(parent))` copies the parent's zmq identities
/// (routing envelope), sets `parent_header = parent.header`, a fresh `msg_id`,
/// and derives `msg_type` from the content variant (e.g. `execute_reply`).
pub fn reply(content: impl Into<JupyterMessageContent>, parent: &JupyterMessage) -> JupyterMessage {
    let mut msg = JupyterMessage::new(content, Some(parent));
    msg.header.username = USERNAME.to_string();
    msg
}

/// A message for the iopub (PUB) socket, child of `parent` if given.
///
/// The routing envelope copied from the parent would be meaningless on PUB
/// (it would become the topic), so it is replaced with a proper topic frame.
pub fn iopub(
    id: &KernelIdentity,
    content: impl Into<JupyterMessageContent>,
    parent: Option<&JupyterMessage>,
) -> JupyterMessage {
    let mut msg = JupyterMessage::new(content, parent);
    msg.header.username = USERNAME.to_string();
    let topic = format!("kernel.{}.{}", id.kernel_id, msg.header.msg_type);
    msg.with_zmq_identities(vec![Bytes::from(topic.into_bytes())])
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupyter_protocol::{ExecuteReply, ExecuteRequest, Status};

    #[test]
    fn reply_keeps_envelope_and_parent() {
        let mut req = JupyterMessage::new(ExecuteRequest::new("1".into()), None);
        req.zmq_identities = vec![Bytes::from_static(b"client-1")];
        let r = reply(ExecuteReply::default(), &req);
        assert_eq!(r.zmq_identities, req.zmq_identities);
        assert_eq!(r.parent_header.as_ref().unwrap().msg_id, req.header.msg_id);
        assert_eq!(r.header.msg_type, "execute_reply");
        assert_ne!(r.header.msg_id, req.header.msg_id);
    }

    #[test]
    fn decode_is_lenient_but_keeps_envelope() {
        let header = r#"{"msg_id":"m1","username":"u","session":"s","date":"2024-01-01T00:00:00Z",
                         "msg_type":"history_request","version":"5.3"}"#;
        let raw = RawMessage {
            zmq_identities: vec![Bytes::from_static(b"peer")],
            jparts: vec![
                Bytes::from(header),
                Bytes::from_static(b"{}"),
                Bytes::from_static(b"{}"),
                // jupyter_client's default history(): no start/stop
                Bytes::from_static(br#"{"raw":true,"output":false,"hist_access_type":"range"}"#),
            ],
        };
        let m = decode(raw).unwrap();
        assert!(m.parent_header.is_none());
        assert_eq!(m.zmq_identities[0], Bytes::from_static(b"peer"));
        match m.content {
            JupyterMessageContent::UnknownMessage(u) => assert_eq!(u.msg_type, "history_request"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn iopub_uses_topic_not_envelope() {
        let id = KernelIdentity::new();
        let mut req = JupyterMessage::new(ExecuteRequest::new("1".into()), None);
        req.zmq_identities = vec![Bytes::from_static(b"client-1")];
        let m = iopub(&id, Status::busy(), Some(&req));
        assert_eq!(m.zmq_identities.len(), 1);
        assert_eq!(&m.zmq_identities[0][..], format!("kernel.{}.status", id.kernel_id).as_bytes());
        assert_eq!(m.parent_header.as_ref().unwrap().msg_id, req.header.msg_id);
    }
}
