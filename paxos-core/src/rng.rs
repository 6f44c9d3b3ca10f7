//! [`Rng`]: the one seeded generator of the `no_std` crates (SplitMix64).
//! The core has no randomness source of its own: the replica's election
//! jitter draws from one seeded by its config, and `paxos-embedded`'s
//! test support (its fault-injecting flash) draws from it too. Std tests
//! use `paxos_tests::rng::TestRng`, seeded through the same mixing.

/// SplitMix64: small, fast, deterministic; not for secrets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub const fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next_u64() % bound
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_bounded() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..100 {
            let x = a.below(1000);
            assert_eq!(x, b.below(1000));
            assert!(x < 1000);
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
        assert_eq!(Rng::new(3).below(0), 0);
    }

    /// The published SplitMix64 outputs for seed 0, so a change to the
    /// mixing (and to every node's election timing) cannot pass unnoticed.
    #[test]
    fn matches_the_splitmix64_reference_sequence() {
        let mut r = Rng::new(0);
        let first = [r.next_u64(), r.next_u64(), r.next_u64()];
        assert_eq!(
            first,
            [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F]
        );
        let mut r = Rng::new(0);
        assert_eq!(r.below(1_000), 0xE220_A839_7B1D_CDAF % 1_000);
    }
}
