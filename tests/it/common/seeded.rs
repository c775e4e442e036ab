//! The one seeded generator of the tests: the same sequence for the same seed on every machine,
//! fast enough for fixtures of tens of MiB, and kill points or byte streams alike.

use sha2::Digest;

/// SplitMix64: tiny, and the same sequence everywhere for a seed.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` for picking kill points.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `len` deterministic, incompressible bytes from a numeric seed.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = SplitMix64(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `len` deterministic, incompressible bytes from a text seed (a repo and file name, say).
pub fn pseudo_random(seed: &str, len: usize) -> Vec<u8> {
    let digest = sha2::Sha256::digest(seed.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    noise(u64::from_le_bytes(first), len)
}
