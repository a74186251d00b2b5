//! What the CUDA runtime says about a GPU: its name, compute capability and
//! memory. tch binds none of it, so these are looked up, by symbol, in the
//! `libcudart` and `libcuda` that libtorch_cuda has already loaded into the
//! process (`dlopen` with `RTLD_NOLOAD`: nothing new is loaded). On a machine
//! without them, or with no GPU, every answer is `None`.
//!
//! Only C functions whose signatures have not changed since CUDA 11 are used:
//! `cudaMemGetInfo`, `cudaDeviceGetAttribute`, `cudaGetDevice`/`cudaSetDevice`,
//! `cuDeviceGet` and `cuDeviceGetName`.
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;

/// One GPU as the CUDA runtime describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpu {
    /// Its ordinal, as in `cuda:N`.
    pub index: usize,
    /// The marketing name, e.g. `NVIDIA H200`.
    pub name: String,
    /// Compute capability (major, minor), e.g. (9, 0) for Hopper.
    pub capability: (i32, i32),
    /// Its memory, at the time of asking.
    pub memory: GpuMemory,
}

/// A GPU's memory in bytes, as `nvidia-smi` counts it: what every process uses,
/// libtorch's caching allocator included (it keeps what it once reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuMemory {
    /// Free bytes.
    pub free: u64,
    /// Total bytes.
    pub total: u64,
}

impl GpuMemory {
    /// Bytes in use, in MiB.
    pub fn used_mib(&self) -> f64 {
        (self.total - self.free.min(self.total)) as f64 / (1u64 << 20) as f64
    }
}

type MemGetInfo = unsafe extern "C" fn(*mut usize, *mut usize) -> c_int;
type DeviceGetAttribute = unsafe extern "C" fn(*mut c_int, c_int, c_int) -> c_int;
type GetDevice = unsafe extern "C" fn(*mut c_int) -> c_int;
type SetDevice = unsafe extern "C" fn(c_int) -> c_int;
type CuDeviceGet = unsafe extern "C" fn(*mut c_int, c_int) -> c_int;
type CuDeviceGetName = unsafe extern "C" fn(*mut c_char, c_int, c_int) -> c_int;

/// `cudaDevAttrComputeCapabilityMajor` / `Minor`.
const CAPABILITY_MAJOR: c_int = 75;
const CAPABILITY_MINOR: c_int = 76;

struct Runtime {
    mem_get_info: MemGetInfo,
    attribute: DeviceGetAttribute,
    get_device: GetDevice,
    set_device: SetDevice,
    name: Option<(CuDeviceGet, CuDeviceGetName)>,
}

/// A library already in the process, by any of `names`.
fn loaded(names: &[&str]) -> Option<*mut c_void> {
    names.iter().find_map(|name| {
        let name = std::ffi::CString::new(*name).ok()?;
        // SAFETY: RTLD_NOLOAD only returns a handle to a library already loaded.
        let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
        (!handle.is_null()).then_some(handle)
    })
}

fn symbol(handle: *mut c_void, name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym on a valid handle; a null result is handled.
    let f = unsafe { libc::dlsym(handle, name.as_ptr()) };
    (!f.is_null()).then_some(f)
}

fn runtime() -> Option<&'static Runtime> {
    static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            if !tch::Cuda::is_available() {
                return None;
            }
            let rt = loaded(&["libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0", "libcudart.so"])?;
            let driver = loaded(&["libcuda.so.1", "libcuda.so"]);
            // SAFETY: each symbol has the C signature of the CUDA runtime/driver API
            // that its type spells (unchanged since CUDA 11).
            unsafe {
                Some(Runtime {
                    mem_get_info: std::mem::transmute::<*mut c_void, MemGetInfo>(symbol(rt, c"cudaMemGetInfo")?),
                    attribute: std::mem::transmute::<*mut c_void, DeviceGetAttribute>(symbol(
                        rt,
                        c"cudaDeviceGetAttribute",
                    )?),
                    get_device: std::mem::transmute::<*mut c_void, GetDevice>(symbol(rt, c"cudaGetDevice")?),
                    set_device: std::mem::transmute::<*mut c_void, SetDevice>(symbol(rt, c"cudaSetDevice")?),
                    name: driver.and_then(|d| {
                        Some((
                            std::mem::transmute::<*mut c_void, CuDeviceGet>(symbol(d, c"cuDeviceGet")?),
                            std::mem::transmute::<*mut c_void, CuDeviceGetName>(symbol(d, c"cuDeviceGetName")?),
                        ))
                    }),
                })
            }
        })
        .as_ref()
}

/// Runs `f` with `index` as the calling thread's current CUDA device, then
/// restores the previous one.
fn on_device<T>(rt: &Runtime, index: usize, f: impl FnOnce() -> Option<T>) -> Option<T> {
    let mut previous: c_int = 0;
    // SAFETY: plain CUDA runtime calls with valid out-pointers.
    unsafe {
        if (rt.get_device)(&mut previous) != 0 || (rt.set_device)(index as c_int) != 0 {
            return None;
        }
    }
    let out = f();
    // SAFETY: as above.
    unsafe { (rt.set_device)(previous) };
    out
}

/// Free and total memory of GPU `index`, or `None` without CUDA.
pub fn memory(index: usize) -> Option<GpuMemory> {
    let rt = runtime()?;
    on_device(rt, index, || {
        let (mut free, mut total) = (0usize, 0usize);
        // SAFETY: valid out-pointers.
        (unsafe { (rt.mem_get_info)(&mut free, &mut total) } == 0)
            .then_some(GpuMemory { free: free as u64, total: total as u64 })
    })
}

/// GPU `index`: name, compute capability, memory; `None` without CUDA or past
/// the last device.
pub fn gpu(index: usize) -> Option<Gpu> {
    let rt = runtime()?;
    if index >= tch::Cuda::device_count() as usize {
        return None;
    }
    let attribute = |what| {
        let mut v: c_int = 0;
        // SAFETY: valid out-pointer; the attribute ids are the runtime's enum values.
        (unsafe { (rt.attribute)(&mut v, what, index as c_int) } == 0).then_some(v)
    };
    let capability = (attribute(CAPABILITY_MAJOR)?, attribute(CAPABILITY_MINOR)?);
    let name = rt
        .name
        .and_then(|(get, get_name)| {
            let (mut dev, mut buf) = (0 as c_int, [0 as c_char; 256]);
            // SAFETY: valid out-pointers; the name is NUL-terminated within the buffer.
            unsafe {
                (get(&mut dev, index as c_int) == 0 && get_name(buf.as_mut_ptr(), buf.len() as c_int, dev) == 0)
                    .then(|| CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned())
            }
        })
        .unwrap_or_else(|| format!("CUDA device {index}"));
    Some(Gpu { index, name, capability, memory: memory(index)? })
}
