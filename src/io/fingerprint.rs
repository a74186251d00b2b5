//! Stable content hashes for cache keys: 128-bit FNV-1a, the same on every
//! machine and Rust version (unlike `std`'s hasher), printed as 32 hex digits.

/// An incremental 128-bit FNV-1a hash.
#[derive(Debug, Clone)]
pub struct Fingerprint(u128);

const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
const PRIME: u128 = 0x0000000001000000000000000000013B;

impl Default for Fingerprint {
    fn default() -> Self {
        Self::new()
    }
}

impl Fingerprint {
    /// An empty fingerprint.
    pub fn new() -> Self {
        Fingerprint(OFFSET)
    }

    /// Adds raw bytes.
    pub fn add_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u128;
            self.0 = self.0.wrapping_mul(PRIME);
        }
    }

    /// Adds bulk data 8 bytes per step (faster than [`add_bytes`](Self::add_bytes)
    /// for tensors; a different hash of the same bytes).
    pub fn add_words(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.0 ^= u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as u128;
            self.0 = self.0.wrapping_mul(PRIME);
        }
        self.add_bytes(chunks.remainder());
    }

    /// Adds a tensor's raw bytes (as [`add_words`](Self::add_words); copied to the
    /// CPU and made contiguous first). Shape and dtype are the caller's to add.
    pub fn add_tensor_bytes(&mut self, t: &tch::Tensor) -> Result<(), tch::TchError> {
        let host = t.f_to_device(tch::Device::Cpu)?.f_contiguous()?;
        self.add_words(&Vec::<u8>::try_from(host.f_view_dtype(tch::Kind::Uint8)?.f_reshape([-1])?)?);
        Ok(())
    }

    /// Adds a string with its length, so that ("ab","c") ≠ ("a","bc").
    pub fn add_str(&mut self, s: &str) {
        self.add_u64(s.len() as u64);
        self.add_bytes(s.as_bytes());
    }

    /// Adds a number.
    pub fn add_u64(&mut self, v: u64) {
        self.add_bytes(&v.to_le_bytes());
    }

    /// 32 lowercase hex digits.
    pub fn hex(&self) -> String {
        format!("{:032x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector_and_separation() {
        // FNV-1a 128 of "a" (published test vector).
        let mut h = Fingerprint::new();
        h.add_bytes(b"a");
        assert_eq!(h.hex(), "d228cb696f1a8caf78912b704e4a8964");
        let (mut a, mut b) = (Fingerprint::new(), Fingerprint::new());
        a.add_str("ab");
        a.add_str("c");
        b.add_str("a");
        b.add_str("bc");
        assert_ne!(a.hex(), b.hex());
    }
}
