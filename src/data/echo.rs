//! E1's synthetic echo task: `n_in` random values in; the first `n_out` of them, then zeros, out.

use rand::RngExt;
use rand::rngs::StdRng;

pub use crate::config::EchoTask;

/// One drawn example: the input sequence and its target, both of length `n_in`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoPair {
    pub input: Vec<usize>,
    pub target: Vec<usize>,
}

/// The task's data: the config's sizes draw the pairs and encode them for the models.
impl EchoTask {
    /// Draws one pair: values uniform in `[0, cardinality)`, target = first `n_out` values then
    /// zeros (so 0 doubles as "nothing to echo", as in the article).
    pub fn draw(&self, rng: &mut StdRng) -> EchoPair {
        let input: Vec<usize> = (0..self.n_in)
            .map(|_| rng.random_range(0..self.cardinality))
            .collect();
        let target = (0..self.n_in)
            .map(|t| if t < self.n_out { input[t] } else { 0 })
            .collect();
        EchoPair { input, target }
    }

    /// Appends the one-hot encoding of `sequence` (`len x cardinality`, row-major) to `out`.
    pub fn one_hot_into(&self, sequence: &[usize], out: &mut Vec<f32>) {
        for &value in sequence {
            let start = out.len();
            out.resize(start + self.cardinality, 0.0);
            out[start + value] = 1.0;
        }
    }

    /// Inverse of the one-hot encoding: the argmax of each `cardinality`-wide row.
    pub fn decode(&self, scores: &[f32]) -> Vec<usize> {
        scores
            .chunks(self.cardinality)
            .map(|row| {
                row.iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |best, (i, &x)| {
                        if x > best.1 { (i, x) } else { best }
                    })
                    .0
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Stream, rng};

    const TASK: EchoTask = EchoTask {
        n_in: 5,
        n_out: 2,
        cardinality: 50,
        train_steps: 5000,
        eval_samples: 100,
    };

    #[test]
    fn target_is_first_n_out_values_then_zeros() {
        let mut rng = rng(0, Stream::TrainData);
        for _ in 0..200 {
            let pair = TASK.draw(&mut rng);
            assert_eq!(pair.input.len(), 5);
            assert!(pair.input.iter().all(|&v| v < 50));
            assert_eq!(&pair.target[..2], &pair.input[..2]);
            assert_eq!(&pair.target[2..], &[0, 0, 0]);
        }
    }

    #[test]
    fn draws_cover_the_whole_range() {
        let mut rng = rng(1, Stream::TrainData);
        let mut seen = [false; 50];
        for _ in 0..400 {
            TASK.draw(&mut rng)
                .input
                .iter()
                .for_each(|&v| seen[v] = true);
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn one_hot_round_trips() {
        let sequence = [12, 20, 36, 40, 12];
        let mut encoded = Vec::new();
        TASK.one_hot_into(&sequence, &mut encoded);
        assert_eq!(encoded.len(), 5 * 50);
        assert_eq!(encoded.iter().sum::<f32>(), 5.0);
        assert_eq!(encoded[50 + 20], 1.0);
        assert_eq!(TASK.decode(&encoded), sequence);
    }
}
