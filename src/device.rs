//! Where tensors live: `auto` (CUDA when a GPU is visible, else CPU), `cpu`,
//! `cuda` or `cuda:N`.
use crate::error::{Error, Result};
use tch::Device;

/// Parses a device name: `auto`, `cpu`, `cuda`, `cuda:N`.
///
/// `cuda` on a machine without a usable GPU is an error that says so, rather than
/// a libtorch failure at the first tensor.
pub fn parse_device(name: &str) -> Result<Device> {
    let bad = |why: String| Error::invalid(format!("device {name:?}"), why);
    let device = match name.trim() {
        "auto" => Device::cuda_if_available(),
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        s => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => Device::Cuda(i),
            _ => return Err(bad("use auto, cpu, cuda or cuda:N".into())),
        },
    };
    if let Device::Cuda(i) = device {
        let n = tch::Cuda::device_count() as usize;
        if i >= n {
            return Err(bad(format!(
                "{n} CUDA device(s) visible; use --device cpu, or check nvidia-smi and that libtorch_cuda is linked"
            )));
        }
    }
    Ok(device)
}

/// A short name for `device`: `cpu` or `cuda:N`.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}
