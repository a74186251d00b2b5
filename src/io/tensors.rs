//! Named tensors in safetensors files: the format of test vectors, feature banks
//! and the learned U.
use super::atomic::write_atomic;
use crate::error::{Error, Result};
use std::path::Path;
use tch::{Device, Tensor};

/// Reads every tensor of a safetensors file, in file order, onto the CPU.
///
/// Errors name the file: missing, unreadable, or not safetensors.
pub fn load_tensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    if !path.is_file() {
        let source = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file; check the path");
        return Err(Error::Io { action: "read", path: path.to_path_buf(), source });
    }
    Tensor::read_safetensors(path).map_err(|e| Error::TensorFile { path: path.to_path_buf(), message: e.to_string() })
}

/// Writes named tensors to a safetensors file atomically; tensors on any device,
/// copied to the CPU and made contiguous first. Names must be unique.
pub fn save_tensors<S: AsRef<str>>(tensors: &[(S, &Tensor)], path: &Path) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    let mut host = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let name = name.as_ref();
        if !seen.insert(name) {
            return Err(Error::invalid(path.display().to_string(), format!("tensor name {name:?} appears twice")));
        }
        host.push((name, t.f_to_device(Device::Cpu)?.f_contiguous()?));
    }
    write_atomic(path, |tmp| {
        Tensor::write_safetensors(&host, tmp)
            .map_err(|e| Error::TensorFile { path: path.to_path_buf(), message: e.to_string() })
    })
}
