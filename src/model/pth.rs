//! PyTorch `.pth` checkpoints, both containers, through the restricted unpickler:
//! - the zip format of `torch.save` since PyTorch 1.6: `<prefix>/data.pkl` plus one
//!   entry `<prefix>/data/<key>` per storage;
//! - the legacy format: five pickles in a row (magic number, protocol version,
//!   system info, the object, the storage keys), then each storage as an int64
//!   element count and its raw bytes.
//!
//! tch's own `Tensor::loadz_multi` cannot read a state dict saved by torch 2.13
//! ("Expected GenericDict but got None"), hence this reader. Tensors are rebuilt
//! with their storage offsets and strides, so views and transposes load as saved.
use super::pickle::{self, StorageRef, TensorRef, Value};
use super::{Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// The legacy format's magic number 0x1950a86a20f9469cfc6c, as LONG1 bytes.
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// A decoded checkpoint: the pickled object and the storages it points into.
pub struct Checkpoint {
    path: PathBuf,
    /// The unpickled object; tensors in it are tensor references.
    pub root: Value,
    storages: HashMap<String, Tensor>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Checkpoint({}, {} storages)", self.path.display(), self.storages.len())
    }
}

/// Parses a pickle stream without executing it, as a checkpoint's `data.pkl`
/// is read: `Ok` when epic can read it, else why not (a refused global such as
/// `posix.system`, a malformed or bomb-like stream). For checking and fuzzing.
pub fn parse_pickle(data: &[u8]) -> std::result::Result<(), pickle::PickleError> {
    pickle::read(data).map(|_| ())
}

/// Reads a `.pth` file (zip or legacy) without executing any pickle.
pub fn read_pth(path: &Path) -> Result<Checkpoint> {
    crate::io::access::check_read(path)?;
    let data = std::fs::read(path).map_err(|source| Error::Io { path: path.into(), source })?;
    read_pth_bytes(&data, path)
}

/// Reads a `.pth` checkpoint held in memory; `path` (its file) labels errors.
/// Never panics on any input.
pub fn read_pth_bytes(data: &[u8], path: &Path) -> Result<Checkpoint> {
    if data.starts_with(b"PK\x03\x04") {
        read_zip(path, data)
    } else if data.first() == Some(&0x80) {
        read_legacy(path, data)
    } else {
        Err(damaged(path, "neither a zip nor a legacy PyTorch checkpoint (wrong file, or truncated at the start?)"))
    }
}

fn format_err(path: &Path, why: impl Into<String>) -> Error {
    Error::Format { path: path.into(), why: why.into() }
}

/// A checkpoint that is cut short, corrupt or something else: what was found,
/// and what to do.
fn damaged(path: &Path, why: impl Into<String>) -> Error {
    format_err(path, format!("{}; download or save the checkpoint again", why.into()))
}

fn unpickle(path: &Path, data: &[u8]) -> Result<(Value, usize)> {
    pickle::read(data).map_err(|source| Error::Pickle { path: path.into(), source })
}

/// Every storage a value refers to, by key.
fn storage_refs(v: &Value, out: &mut BTreeMap<String, StorageRef>) {
    match v {
        Value::Storage(s) => {
            out.insert(s.key.clone(), s.clone());
        }
        Value::Tensor(t) => {
            out.insert(t.storage.key.clone(), t.storage.clone());
        }
        Value::Tuple(items) | Value::List(items) => items.iter().for_each(|x| storage_refs(x, out)),
        Value::Dict(pairs) => pairs.iter().for_each(|(k, x)| {
            storage_refs(k, out);
            storage_refs(x, out)
        }),
        _ => {}
    }
}

/// Deflate's largest expansion: an entry claiming more is lying about its size.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// A storage's bytes, `len`, are its element count times its element size.
fn check_storage_size(path: &Path, s: &StorageRef, len: u64) -> Result<()> {
    let want = (s.numel as u64).checked_mul(s.kind.elt_size_in_bytes() as u64);
    if want != Some(len) {
        let want = want.map_or_else(|| "more than addressable".to_string(), |w| w.to_string());
        return Err(damaged(
            path,
            format!(
                "storage {} holds {} bytes, expected {want} ({} × {:?}); the file is truncated or corrupt",
                s.key, len, s.numel, s.kind
            ),
        ));
    }
    Ok(())
}

fn storage_tensor(path: &Path, s: &StorageRef, bytes: &[u8]) -> Result<Tensor> {
    check_storage_size(path, s, bytes.len() as u64)?;
    Ok(Tensor::f_from_data_size(bytes, &[s.numel], s.kind)?)
}

fn read_zip(path: &Path, data: &[u8]) -> Result<Checkpoint> {
    let zerr =
        |e: zip::result::ZipError| damaged(path, format!("unreadable zip checkpoint ({e}); the file may be truncated"));
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(data)).map_err(zerr)?;
    let pkl = archive
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .find(|n| n == "data.pkl" || n.ends_with("/data.pkl"))
        .ok_or_else(|| format_err(path, "zip file without data.pkl: not a torch.save checkpoint"))?;
    let prefix = pkl.strip_suffix("data.pkl").unwrap_or("").to_string();
    // An entry's size comes from the zip directory, which the file itself writes:
    // it is checked against what compression can produce (and, for a storage,
    // against the pickle's element count) before anything is allocated.
    let mut entry = |name: &str, want: Option<&StorageRef>| -> Result<Vec<u8>> {
        let f = archive.by_name(name).map_err(|e| damaged(path, format!("entry {name}: {e}")))?;
        let size = f.size();
        if size > f.compressed_size().saturating_mul(MAX_DEFLATE_RATIO).max(1024) {
            return Err(damaged(
                path,
                format!("entry {name} claims {size} bytes from {} compressed bytes", f.compressed_size()),
            ));
        }
        if let Some(s) = want {
            check_storage_size(path, s, size)?;
        }
        let mut buf = Vec::with_capacity(size.min(data.len() as u64) as usize);
        f.take(size.saturating_add(1)).read_to_end(&mut buf).map_err(|e| {
            if e.to_string().contains("checksum") {
                // The zip format's CRC-32 of the entry, checked as it is read.
                damaged(path, format!("entry {name} does not match its CRC-32: the file is damaged (a bad copy, a failing disk or a truncated transfer)"))
            } else {
                damaged(path, format!("entry {name}: {e} (truncated?)"))
            }
        })?;
        if buf.len() as u64 != size {
            return Err(damaged(
                path,
                format!("entry {name} holds {} bytes, the zip directory says {size}", buf.len()),
            ));
        }
        Ok(buf)
    };
    if let Ok(order) = entry(&format!("{prefix}byteorder"), None) {
        if order != b"little" {
            return Err(format_err(path, "big-endian checkpoint; re-save it on a little-endian machine"));
        }
    }
    let (root, _) = unpickle(path, &entry(&pkl, None)?)?;
    let mut refs = BTreeMap::new();
    storage_refs(&root, &mut refs);
    let mut storages = HashMap::new();
    for (key, s) in refs {
        let bytes = entry(&format!("{prefix}data/{key}"), Some(&s))?;
        storages.insert(key, storage_tensor(path, &s, &bytes)?);
    }
    Ok(Checkpoint { path: path.into(), root, storages })
}

fn read_legacy(path: &Path, data: &[u8]) -> Result<Checkpoint> {
    let mut pos = 0;
    let mut next = |what: &str| -> Result<Value> {
        let (v, n) = unpickle(path, &data[pos..]).map_err(|e| match e {
            Error::Pickle { source, .. } if matches!(source, pickle::PickleError::Malformed { .. }) => damaged(
                path,
                format!("legacy checkpoint: cannot read the {what} ({source}); the file is truncated or corrupt"),
            ),
            other => other,
        })?;
        pos += n;
        Ok(v)
    };
    if next("magic number")? != Value::BigInt(LEGACY_MAGIC.to_vec()) {
        return Err(damaged(path, "not a PyTorch checkpoint (legacy magic number missing)"));
    }
    match next("protocol version")? {
        Value::Int(1001) => {}
        v => {
            return Err(format_err(
                path,
                format!("unsupported legacy protocol version {v}; re-save it with torch.save in a recent PyTorch"),
            ))
        }
    }
    if let Value::Dict(info) = next("system info")? {
        if info.iter().any(|(k, v)| *k == Value::Str("little_endian".into()) && *v == Value::Bool(false)) {
            return Err(format_err(path, "big-endian checkpoint; re-save it on a little-endian machine"));
        }
    }
    let root = next("object")?;
    let Value::List(keys) = next("storage keys")? else {
        return Err(damaged(path, "legacy checkpoint: storage keys are not a list"));
    };
    let mut refs = BTreeMap::new();
    storage_refs(&root, &mut refs);
    let mut storages = HashMap::new();
    for key in keys {
        let key = match key {
            Value::Str(s) => s,
            Value::Int(i) => i.to_string(),
            other => return Err(damaged(path, format!("legacy checkpoint: storage key {other}"))),
        };
        let s = refs.get(&key).ok_or_else(|| damaged(path, format!("storage {key} is listed but not used")))?;
        let head = data.get(pos..pos + 8).ok_or_else(|| damaged(path, format!("truncated before storage {key}")))?;
        let mut word = [0u8; 8];
        word.copy_from_slice(head);
        let numel = i64::from_le_bytes(word);
        pos += 8;
        if numel != s.numel {
            return Err(damaged(path, format!("storage {key}: {numel} elements on disk, {} in the pickle", s.numel)));
        }
        let n = (numel as usize)
            .checked_mul(s.kind.elt_size_in_bytes())
            .ok_or_else(|| damaged(path, format!("storage {key}: {numel} elements is not a size")))?;
        let bytes = pos
            .checked_add(n)
            .and_then(|end| data.get(pos..end))
            .ok_or_else(|| damaged(path, format!("truncated inside storage {key}")))?;
        pos += n;
        storages.insert(key, storage_tensor(path, s, bytes)?);
    }
    Ok(Checkpoint { path: path.into(), root, storages })
}

impl Checkpoint {
    /// The tensor a reference describes, as saved (offset and strides honoured), contiguous.
    pub fn tensor(&self, r: &TensorRef) -> Result<Tensor> {
        let storage = self
            .storages
            .get(&r.storage.key)
            .ok_or_else(|| damaged(&self.path, format!("storage {} is missing", r.storage.key)))?;
        if r.size.len() != r.stride.len() || r.offset < 0 || r.size.iter().chain(&r.stride).any(|&x| x < 0) {
            return Err(damaged(&self.path, format!("invalid tensor view {r:?}")));
        }
        let last = r
            .size
            .iter()
            .zip(&r.stride)
            .try_fold(r.offset, |acc, (s, st)| acc.checked_add((s - 1).max(0).checked_mul(*st)?));
        let Some(last) = last else {
            return Err(damaged(&self.path, format!("tensor view {r:?} overflows")));
        };
        if r.size.iter().all(|&s| s > 0) && last >= r.storage.numel {
            return Err(damaged(
                &self.path,
                format!("tensor view reaches element {last} of a storage of {}", r.storage.numel),
            ));
        }
        // A view with more elements than its storage (stride 0) would be
        // materialised in full: a 16-byte storage could ask for terabytes.
        let numel = r.size.iter().try_fold(1i64, |acc, &s| acc.checked_mul(s));
        if numel.is_none_or(|n| n > r.storage.numel) {
            return Err(damaged(
                &self.path,
                format!(
                    "a tensor view of shape {:?} has more elements than its storage ({}); \
                     if it is an expanded tensor, save it with .contiguous()",
                    r.size, r.storage.numel
                ),
            ));
        }
        Ok(storage.f_as_strided(r.size.as_slice(), r.stride.as_slice(), r.offset)?.f_contiguous()?)
    }

    /// The state dict, as (name, tensor) in file order.
    ///
    /// `key` picks an entry of a checkpoint dict (`{"model": state_dict, …}`); with
    /// `None`, the root is used if it maps names to tensors, else its `model` or
    /// `state_dict` entry. Non-tensor entries are skipped.
    pub fn state_dict(&self, key: Option<&str>) -> Result<Vec<(String, Tensor)>> {
        let Value::Dict(root) = &self.root else {
            return Err(format_err(&self.path, "the checkpoint is not a dict of tensors"));
        };
        let lookup = |k: &str| root.iter().find(|(name, _)| *name == Value::Str(k.into())).map(|(_, v)| v);
        let keys = || root.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>().join(", ");
        let dict = match key {
            Some(k) => lookup(k)
                .ok_or_else(|| format_err(&self.path, format!("no entry {k:?}; the checkpoint has {}", keys())))?,
            None if root.iter().any(|(_, v)| matches!(v, Value::Tensor(_))) => &self.root,
            None => lookup("model").or_else(|| lookup("state_dict")).ok_or_else(|| {
                format_err(
                    &self.path,
                    format!(
                        "no tensors at the top level and no \"model\" or \"state_dict\" entry; the checkpoint has {}",
                        keys()
                    ),
                )
            })?,
        };
        let Value::Dict(pairs) = dict else {
            return Err(format_err(&self.path, format!("entry {key:?} is not a dict of tensors")));
        };
        let mut out = Vec::with_capacity(pairs.len());
        for (name, v) in pairs {
            if let (Value::Str(name), Value::Tensor(r)) = (name, v) {
                out.push((name.clone(), self.tensor(r)?));
            }
        }
        Ok(out)
    }
}

/// Writes a state dict of f32 tensors as `torch.save` does (zip format, pickle
/// protocol 2, one storage per tensor), atomically: the file `torch.load` reads
/// back as an OrderedDict, like the reference's `<type>.pt` files of U.
pub fn write_pth(tensors: &[(&str, &Tensor)], path: &Path) -> Result<()> {
    use std::io::Write;
    let mut pkl: Vec<u8> = vec![0x80, 0x02];
    let global = |p: &mut Vec<u8>, module: &str, name: &str| {
        p.push(b'c');
        p.extend_from_slice(format!("{module}\n{name}\n").as_bytes());
    };
    let unicode = |p: &mut Vec<u8>, s: &str| {
        p.push(b'X');
        p.extend_from_slice(&(s.len() as u32).to_le_bytes());
        p.extend_from_slice(s.as_bytes());
    };
    let int = |p: &mut Vec<u8>, v: i64| -> Result<()> {
        let v = i32::try_from(v).map_err(|_| format_err(path, format!("dimension {v} too large for this writer")))?;
        p.push(b'J');
        p.extend_from_slice(&v.to_le_bytes());
        Ok(())
    };
    let ints_tuple = |p: &mut Vec<u8>, v: &[i64]| -> Result<()> {
        p.push(b'(');
        for &x in v {
            int(p, x)?;
        }
        p.push(b't');
        Ok(())
    };
    global(&mut pkl, "collections", "OrderedDict");
    pkl.extend_from_slice(b")R(");
    let mut storages = Vec::new();
    for (i, (name, t)) in tensors.iter().enumerate() {
        let t = t.f_to_device(tch::Device::Cpu)?.f_to_kind(tch::Kind::Float)?.f_contiguous()?;
        let size = t.size();
        let mut stride = vec![1i64; size.len()];
        for d in (0..size.len().saturating_sub(1)).rev() {
            stride[d] = stride[d + 1] * size[d + 1];
        }
        unicode(&mut pkl, name);
        global(&mut pkl, "torch._utils", "_rebuild_tensor_v2");
        pkl.extend_from_slice(b"((");
        unicode(&mut pkl, "storage");
        global(&mut pkl, "torch", "FloatStorage");
        unicode(&mut pkl, &i.to_string());
        unicode(&mut pkl, "cpu");
        int(&mut pkl, t.numel() as i64)?;
        pkl.extend_from_slice(b"tQ");
        int(&mut pkl, 0)?;
        ints_tuple(&mut pkl, &size)?;
        ints_tuple(&mut pkl, &stride)?;
        pkl.push(0x89); // False: requires_grad
        global(&mut pkl, "collections", "OrderedDict");
        pkl.extend_from_slice(b")RtR");
        storages.push(Vec::<u8>::try_from(t.f_view_dtype(tch::Kind::Uint8)?.f_reshape([-1])?)?);
    }
    pkl.extend_from_slice(b"u.");

    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "archive".into());
    // The archive is assembled in memory and written by epic's atomic writer:
    // a full disk is then epic's error, naming the file, and the zip crate never
    // touches the disk (nor prints from a destructor).
    let zerr = |e: zip::result::ZipError| format_err(path, format!("cannot assemble the zip archive ({e})"));
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    // A fixed timestamp: the same state dict gives the same bytes.
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    let mut entry = |name: String, bytes: &[u8]| -> Result<()> {
        zip.start_file(name, opts).map_err(zerr)?;
        zip.write_all(bytes).map_err(|e| format_err(path, format!("cannot assemble the zip archive ({e})")))?;
        Ok(())
    };
    entry(format!("{stem}/data.pkl"), &pkl)?;
    entry(format!("{stem}/byteorder"), b"little")?;
    for (i, bytes) in storages.iter().enumerate() {
        entry(format!("{stem}/data/{i}"), bytes)?;
    }
    entry(format!("{stem}/version"), b"3\n")?;
    let bytes = zip.finish().map_err(zerr)?.into_inner();
    crate::io::atomic::write_bytes_atomic(path, &bytes).map_err(|e| Error::Write(Box::new(e)))
}
