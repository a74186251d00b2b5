//! The connection file Jupyter starts a kernel with (`epic kernel -f FILE`):
//!
//! ```json
//! { "ip": "127.0.0.1", "transport": "tcp",
//!   "shell_port": 5001, "iopub_port": 5002, "stdin_port": 5003,
//!   "control_port": 5004, "hb_port": 5005,
//!   "key": "a0436f6c-…", "signature_scheme": "hmac-sha256", "kernel_name": "epic-rhai" }
//! ```
//!
//! The kernel binds all five ports (the client connects); `key` signs every
//! message (an empty key: no signatures). Extra keys are ignored.
use jupyter_protocol::ConnectionInfo;
use std::path::Path;

/// The connection file at `path`, checked: errors name the file and what is wrong.
pub fn load(path: &Path) -> crate::Result<ConnectionInfo> {
    let text = std::fs::read_to_string(path).map_err(|source| crate::Error::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let info: ConnectionInfo = serde_json::from_str(&text)
        .map_err(|e| crate::Error::Kernel(format!("{} is not a Jupyter connection file: {e}", path.display())))?;
    // Only HMAC-SHA256 is implemented: refuse rather than sign wrongly.
    if !info.key.is_empty() && info.signature_scheme != "hmac-sha256" {
        return Err(crate::Error::Kernel(format!(
            "{}: signature_scheme {:?} is not supported; use hmac-sha256",
            path.display(),
            info.signature_scheme
        )));
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_jupyter_client_file_loads_and_a_bad_one_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.json");
        std::fs::write(
            &p,
            r#"{"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5,
                "ip": "127.0.0.1", "key": "k", "transport": "tcp", "signature_scheme": "hmac-sha256",
                "kernel_name": "epic-rhai"}"#,
        )
        .unwrap();
        let info = super::load(&p).unwrap();
        assert_eq!((info.shell_url().as_str(), info.key.as_str()), ("tcp://127.0.0.1:1", "k"));
        std::fs::write(&p, "{}").unwrap();
        assert!(super::load(&p).unwrap_err().to_string().contains("c.json is not a Jupyter connection file"));
        let md5 = r#"{"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5,
            "ip": "127.0.0.1", "key": "k", "transport": "tcp", "signature_scheme": "hmac-md5"}"#;
        std::fs::write(&p, md5).unwrap();
        assert!(super::load(&p).unwrap_err().to_string().contains("hmac-md5"));
    }
}
