//! attnx's own randomness: per-repeat seeds, and one generator per purpose of a repeat.
//!
//! burn's CPU backends draw parameter initialisation (and dropout) from one process-wide
//! generator, so repeats trained on parallel threads would interleave draws and lose
//! reproducibility. attnx therefore never uses burn's generator: every repeat owns `StdRng`s
//! derived from (config seed, repeat index, purpose).

use rand::SeedableRng;
use rand::rngs::StdRng;
/// What a generator is used for; each purpose gets an independent stream.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    Init = 1,
    TrainData = 2,
    EvalData = 3,
    Dropout = 4,
    Validation = 5,
    /// A text task's `test_fraction` split, from the config's seed (the same for every repeat).
    TestSplit = 6,
}

/// SplitMix64 finaliser: a cheap, well-mixed hash of a 64-bit value.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of repeat `index` of an experiment with base seed `base`.
pub fn repeat_seed(base: u64, index: usize) -> u64 {
    mix(mix(base) ^ (index as u64).wrapping_add(1))
}

/// A generator for one purpose of one repeat.
pub fn rng(repeat_seed: u64, stream: Stream) -> StdRng {
    StdRng::seed_from_u64(mix(repeat_seed ^ mix(stream as u64)))
}

/// The `n`-th generator of one purpose of one repeat (IMDB: one dropout stream per training
/// batch, so that a resumed repeat can start at any batch without replaying the ones before).
pub fn rng_numbered(repeat_seed: u64, stream: Stream, n: u64) -> StdRng {
    StdRng::seed_from_u64(mix(
        mix(repeat_seed ^ mix(stream as u64)) ^ mix(n.wrapping_add(1))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn seeds_differ_by_repeat_and_stream_and_are_stable() {
        assert_ne!(repeat_seed(0, 0), repeat_seed(0, 1));
        assert_ne!(repeat_seed(0, 0), repeat_seed(1, 0));
        assert_eq!(repeat_seed(7, 3), repeat_seed(7, 3));
        let a: f32 = rng(5, Stream::Init).random();
        let b: f32 = rng(5, Stream::TrainData).random();
        assert_ne!(a, b);
    }
}
