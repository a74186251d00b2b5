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

/// Parses a comma-separated list of devices (`cuda:0,cuda:1`, or `cpu,cpu` for
/// two CPU replicas): each as [`parse_device`].
pub fn parse_devices(names: &str) -> Result<Vec<Device>> {
    names.split(',').map(parse_device).collect()
}

/// A short name for `device`: `cpu` or `cuda:N`.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

mod cuda;
pub use cuda::{gpu, memory, Gpu, GpuMemory};

/// `device` for people: `cpu`, or `cuda:0 (NVIDIA H200, capability 9.0, 140.4 GiB)`.
pub fn describe(device: Device) -> String {
    match device {
        Device::Cuda(i) => match gpu(i) {
            Some(g) => format!(
                "cuda:{i} ({}, capability {}.{}, {:.1} GiB)",
                g.name,
                g.capability.0,
                g.capability.1,
                g.memory.total as f64 / (1u64 << 30) as f64
            ),
            None => device_name(device),
        },
        _ => device_name(device),
    }
}
