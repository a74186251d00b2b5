//! Files epic reads and writes: named tensors in safetensors, each with a
//! checksum ([`tensors`]), the rule that every artifact appears whole or not at
//! all ([`atomic`]), claims that keep runs sharing a folder apart ([`claim`]),
//! the sandbox's folders ([`access`]), and stable content hashes for cache keys
//! ([`fingerprint`]).
pub mod access;
pub mod atomic;
pub mod claim;
pub mod fingerprint;
pub mod tensors;

pub use atomic::write_atomic;
pub use fingerprint::Fingerprint;
pub use tensors::{load_tensors, read_tensors, save_tensors, Integrity};

/// The time now in UTC as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}
