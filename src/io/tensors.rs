//! Named tensors in safetensors files: the format of test vectors, feature-bank
//! chunks, training checkpoints and the learned U.
//!
//! epic reads and writes the format itself (8-byte header length, a JSON header,
//! the tensor bytes), so that every file it writes carries a CRC-32 of its
//! tensor bytes in the header's `__metadata__` (`epic.crc32`), and every read
//! checks it. A file whose bytes changed on disk — a bad copy, bit rot, a
//! truncated transfer — is [`Error::Damaged`], never silently used. Files
//! without the checksum (written by other tools, or by epic before it wrote one)
//! read as [`Integrity::Unchecked`]; the callers that own a kind of file decide
//! what that means for it. The reader trusts nothing in the header: offsets,
//! shapes and sizes are checked against the file before any tensor is made.
use crate::error::{Error, Result};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// The `__metadata__` key holding the CRC-32 (IEEE, hex) of the tensor bytes.
pub const CHECKSUM_KEY: &str = "epic.crc32";

/// The largest header epic reads (100 MB, the safetensors library's own limit).
const MAX_HEADER: u64 = 100_000_000;

/// Whether a file's tensor bytes were checked against a checksum it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrity {
    /// The file carries `epic.crc32`, and its tensor bytes match it.
    Verified,
    /// The file carries no checksum: written by another tool, or by epic
    /// before its files carried one.
    Unchecked,
}

/// The tensors of one file, in file order, and whether they were verified.
#[derive(Debug)]
pub struct TensorFile {
    /// Named tensors on the CPU, in the order of their bytes in the file.
    pub tensors: Vec<(String, Tensor)>,
    /// Whether a checksum vouched for them.
    pub integrity: Integrity,
}

/// Reads every tensor of a safetensors file, in file order, onto the CPU; a
/// checksum the file carries is verified.
///
/// Errors name the file: missing, unreadable, not safetensors, or damaged.
pub fn load_tensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    Ok(read_tensors(path)?.tensors)
}

/// [`load_tensors`], saying whether a checksum vouched for the tensors.
pub fn read_tensors(path: &Path) -> Result<TensorFile> {
    super::access::check_read(path)?;
    if !path.is_file() {
        let source = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file; check the path");
        return Err(Error::Io { action: "read", path: path.to_path_buf(), source });
    }
    let bytes = std::fs::read(path).map_err(|source| Error::Io { action: "read", path: path.to_path_buf(), source })?;
    parse_tensors(&bytes, path)
}

/// A safetensors file's tensors from its bytes; `path` labels errors.
pub fn parse_tensors(bytes: &[u8], path: &Path) -> Result<TensorFile> {
    let format = |why: String| Error::TensorFile { path: path.to_path_buf(), message: why };
    let Some(len) = bytes.get(..8) else {
        return Err(format(format!("{} bytes, shorter than the 8-byte header length", bytes.len())));
    };
    let header_len = u64::from_le_bytes(len.try_into().expect("8 bytes"));
    let rest = (bytes.len() - 8) as u64;
    if header_len > MAX_HEADER || header_len > rest {
        return Err(format(format!("the header claims {header_len} bytes, the file has {rest} after the length")));
    }
    let (header, data) = bytes[8..].split_at(header_len as usize);
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|e| format(format!("the header is not a JSON object ({e})")))?;

    let mut checksum = None;
    let mut entries = Vec::with_capacity(header.len());
    for (name, info) in &header {
        if name == "__metadata__" {
            let meta = info.as_object().ok_or_else(|| format("__metadata__ is not a map".into()))?;
            if let Some(v) = meta.get(CHECKSUM_KEY) {
                let hex = v.as_str().ok_or_else(|| format(format!("{CHECKSUM_KEY} is not a string")))?;
                checksum = Some(u32::from_str_radix(hex, 16).map_err(|_| format(format!("{CHECKSUM_KEY} {hex:?}")))?);
            }
            continue;
        }
        entries.push(entry(name, info, data.len()).map_err(|why| format(format!("tensor {name:?}: {why}")))?);
    }
    entries.sort_by_key(|e| e.start);
    for pair in entries.windows(2) {
        if pair[1].start < pair[0].end {
            return Err(format(format!("tensors {:?} and {:?} overlap", pair[0].name, pair[1].name)));
        }
    }

    let integrity = match checksum {
        None => Integrity::Unchecked,
        Some(want) => {
            let got = crc32fast::hash(data);
            if got != want {
                return Err(Error::Damaged {
                    path: path.to_path_buf(),
                    why: format!(
                        "its tensor bytes have CRC-32 {got:08x}, the file was written with {want:08x} \
                         (a bad copy, a failing disk or a truncated transfer)"
                    ),
                    fix: "restore it from a good copy, or delete it and run again to recompute it".into(),
                });
            }
            Integrity::Verified
        }
    };
    let mut tensors = Vec::with_capacity(entries.len());
    for e in entries {
        let t = Tensor::f_from_data_size(&data[e.start..e.end], &e.shape, e.kind)?;
        tensors.push((e.name, t));
    }
    Ok(TensorFile { tensors, integrity })
}

/// One tensor's place in the data section, checked against it.
struct Entry {
    name: String,
    kind: Kind,
    shape: Vec<i64>,
    start: usize,
    end: usize,
}

fn entry(name: &str, info: &serde_json::Value, data_len: usize) -> std::result::Result<Entry, String> {
    let dtype = info.get("dtype").and_then(|d| d.as_str()).ok_or("no dtype")?;
    let (kind, size) = kind_of(dtype).ok_or_else(|| format!("unsupported dtype {dtype:?}"))?;
    let shape: Vec<i64> = info
        .get("shape")
        .and_then(|s| s.as_array())
        .ok_or("no shape")?
        .iter()
        .map(|d| d.as_u64().filter(|&d| d <= i64::MAX as u64).map(|d| d as i64))
        .collect::<Option<_>>()
        .ok_or("a dimension that is not a non-negative integer")?;
    let offsets = info.get("data_offsets").and_then(|o| o.as_array()).ok_or("no data_offsets")?;
    let [start, end] = offsets.as_slice() else { return Err("data_offsets is not [start, end]".into()) };
    let (start, end) = (start.as_u64().ok_or("bad start offset")?, end.as_u64().ok_or("bad end offset")?);
    if start > end || end > data_len as u64 {
        return Err(format!("bytes {start}..{end} lie outside the {data_len} bytes of tensor data"));
    }
    let bytes = shape
        .iter()
        .try_fold(size as u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or("a shape too large to address")?;
    if bytes != end - start {
        return Err(format!("shape {shape:?} of {dtype} needs {bytes} bytes, the offsets give {}", end - start));
    }
    Ok(Entry { name: name.to_string(), kind, shape, start: start as usize, end: end as usize })
}

/// libtorch's kind and element size of a safetensors dtype.
fn kind_of(dtype: &str) -> Option<(Kind, usize)> {
    Some(match dtype {
        "F64" => (Kind::Double, 8),
        "F32" => (Kind::Float, 4),
        "F16" => (Kind::Half, 2),
        "BF16" => (Kind::BFloat16, 2),
        "I64" => (Kind::Int64, 8),
        "I32" => (Kind::Int, 4),
        "I16" => (Kind::Int16, 2),
        "I8" => (Kind::Int8, 1),
        "U8" => (Kind::Uint8, 1),
        "BOOL" => (Kind::Bool, 1),
        _ => return None,
    })
}

fn dtype_of(kind: Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::Double => "F64",
        Kind::Float => "F32",
        Kind::Half => "F16",
        Kind::BFloat16 => "BF16",
        Kind::Int64 => "I64",
        Kind::Int => "I32",
        Kind::Int16 => "I16",
        Kind::Int8 => "I8",
        Kind::Uint8 => "U8",
        Kind::Bool => "BOOL",
        _ => return None,
    })
}

/// The bytes of a safetensors file holding `tensors` in the given order, with
/// the CRC-32 of the tensor bytes in its metadata. Names must be unique.
pub fn encode_tensors<S: AsRef<str>>(tensors: &[(S, &Tensor)], label: &Path) -> Result<Vec<u8>> {
    let mut seen = std::collections::HashSet::new();
    let mut data = Vec::new();
    let mut header = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let name = name.as_ref();
        if !seen.insert(name) || name == "__metadata__" {
            return Err(Error::invalid(label.display().to_string(), format!("tensor name {name:?} appears twice")));
        }
        let dtype = dtype_of(t.kind()).ok_or_else(|| {
            Error::invalid(label.display().to_string(), format!("tensor {name:?}: {:?} cannot be saved", t.kind()))
        })?;
        let host = t.f_to_device(Device::Cpu)?.f_contiguous()?;
        let start = data.len();
        if host.numel() > 0 {
            let flat = host.f_reshape([-1])?;
            let flat = if host.kind() == Kind::Bool { flat.f_to_kind(Kind::Uint8)? } else { flat };
            let bytes = Vec::<u8>::try_from(flat.f_view_dtype(Kind::Uint8)?)?;
            data.extend_from_slice(&bytes);
        }
        let entry = serde_json::json!({ "dtype": dtype, "shape": host.size(), "data_offsets": [start, data.len()] });
        header.push(format!("{}:{entry}", serde_json::Value::from(name)));
    }
    let meta = serde_json::json!({ CHECKSUM_KEY: format!("{:08x}", crc32fast::hash(&data)) });
    let mut text = format!("{{\"__metadata__\":{meta}");
    for h in header {
        text.push(',');
        text.push_str(&h);
    }
    text.push('}');
    while text.len() % 8 != 0 {
        text.push(' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + data.len());
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&data);
    Ok(out)
}

/// Writes named tensors to a safetensors file atomically, with a checksum;
/// tensors on any device, copied to the CPU and made contiguous first. Names
/// must be unique.
pub fn save_tensors<S: AsRef<str>>(tensors: &[(S, &Tensor)], path: &Path) -> Result<()> {
    let bytes = encode_tensors(tensors, path)?;
    super::atomic::write_bytes_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_of_every_dtype_with_a_verified_checksum() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.safetensors");
        let a = Tensor::from_slice(&[1.5f32, -2.0, 3.25, 0.0]).reshape([2, 2]);
        let b = Tensor::from_slice(&[true, false, true]);
        let c = Tensor::from_slice(&[7i64, -9]);
        let d = Tensor::from_slice(&[0.1f64]).to_kind(Kind::Half);
        let e = Tensor::zeros([0, 3], (Kind::Float, Device::Cpu));
        save_tensors(&[("a", &a), ("b", &b), ("c", &c), ("d", &d), ("e", &e)], &path).unwrap();
        let f = read_tensors(&path).unwrap();
        assert_eq!(f.integrity, Integrity::Verified);
        let names: Vec<&str> = f.tensors.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d", "e"]);
        for ((_, got), want) in f.tensors.iter().zip([&a, &b, &c, &d, &e]) {
            assert_eq!((got.size(), got.kind()), (want.size(), want.kind()));
            assert!(got.equal(want));
        }
    }

    #[test]
    fn a_flipped_tensor_byte_is_damage_and_a_file_without_checksum_is_unchecked() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.safetensors");
        let a = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
        save_tensors(&[("a", &a)], &path).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x10;
        let e = parse_tensors(&bytes, &path).unwrap_err().to_string();
        assert!(e.contains("t.safetensors") && e.contains("damaged") && e.contains("CRC-32"), "{e}");
        // tch's own writer puts no checksum.
        Tensor::write_safetensors(&[("a", &a)], &path).unwrap();
        let f = read_tensors(&path).unwrap();
        assert_eq!(f.integrity, Integrity::Unchecked);
        assert!(f.tensors[0].1.equal(&a));
    }
}
