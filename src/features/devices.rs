//! The devices this process extracts on when a run names several
//! (`epic run --device cuda:0,cuda:1`): one backbone replica per device, fed its
//! own batches by the one loader. A config's `dataloader.devices` takes
//! precedence; one device (the default) is the network's own.
use std::sync::Mutex;
use tch::Device;

static DEVICES: Mutex<Vec<Device>> = Mutex::new(Vec::new());

/// Makes every extraction of this process run on `devices` (empty: the network's own).
pub fn set_host_devices(devices: Vec<Device>) {
    if let Ok(mut d) = DEVICES.lock() {
        *d = devices;
    }
}

/// The devices set by [`set_host_devices`].
pub fn host_devices() -> Vec<Device> {
    DEVICES.lock().map(|d| d.clone()).unwrap_or_default()
}
