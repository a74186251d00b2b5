//! The folders a shared script may touch under `epic run --sandbox`: where its
//! [`crate::io::access::Policy`] starts, before its config adds the folders it
//! names ([`super::open_config`]).
use crate::io::access::Policy;
use std::path::{Path, PathBuf};

/// The policy a sandboxed script starts with.
///
/// - Read: the script's folder, the `config=` argument's folder, the `--lib`
///   folders, `allow_read`, and what epic itself installs: the checkout's
///   `scripts/lib` and `configs`, Debian's Fashion-MNIST and the default weights.
/// - Write: `allow_write` only; the config's `output_path` and
///   `dataloader.cache` are added when the script opens it.
pub fn script_policy(
    script: &Path,
    config_arg: Option<&Path>,
    lib_dirs: &[PathBuf],
    allow_read: &[PathBuf],
    allow_write: &[PathBuf],
) -> Policy {
    let folder = |p: &Path| {
        p.parent().filter(|d| !d.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    };
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut read = vec![folder(script)];
    read.extend(config_arg.map(folder));
    read.extend(lib_dirs.iter().cloned());
    read.extend(allow_read.iter().cloned());
    read.push(checkout.join("scripts/lib"));
    read.push(checkout.join("configs"));
    read.push(PathBuf::from(crate::data::FASHION_MNIST_DIR));
    if let Some(w) = crate::model::default_weights("efficientnet_lite0") {
        read.push(folder(&w));
    }
    Policy { read, write: allow_write.to_vec() }
}
