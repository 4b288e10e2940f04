//! How much memory training a config needs, estimated from the config alone, so that an
//! impossible size (`"hidden": 4000000000`) is refused with a message up front instead of the
//! kernel killing the process half-way.
//!
//! The estimate is deliberately rough (within a small factor): parameters times four (weights,
//! gradients, Adam's two moments), plus the activations autodiff keeps for one step, plus the
//! tokenized data set. It is computed in `f64`, since impossible sizes overflow `usize`.

use crate::config::{EchoModel, ExperimentConfig, Position, Study, TextModel};

/// Bytes per value: every backend computes in f32.
const F32: f64 = 4.0;
/// Weights, gradients and Adam's first and second moments.
const COPIES_IN_TRAINING: f64 = 4.0;
/// Reviews in IMDB's two splits, each held as `maxlen` token ids.
const IMDB_REVIEWS: f64 = 50_000.0;

/// Estimated parameters and bytes of one repeat of `config` in training, with `eval_batch`
/// test reviews per evaluation batch (IMDB).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Footprint {
    pub parameters: f64,
    pub bytes: f64,
}

/// The estimate for one repeat; a stack of `n` repeats needs `n` times the model part.
pub fn estimate(config: &ExperimentConfig, eval_batch: usize) -> Footprint {
    let eval_batch = eval_batch as f64;
    match &config.study {
        Study::Echo { task, model } => {
            let (task, model) = (*task, *model);
            let (n_in, n_out) = (task.n_in, task.n_out);
            let v = task.cardinality as f64;
            let steps = (n_in + n_out) as f64;
            let h = model.hidden() as f64;
            let lstm = |input: f64| 4.0 * h * (input + h + 1.0);
            let parameters = match model {
                EchoModel::Attention(_) => lstm(v) + lstm(v + h) + 4.0 * h * h + 3.0 * h * v,
                EchoModel::Baseline(_) => lstm(v) + lstm(h) + h * v + v,
            };
            // Batch 1: a few gate vectors and an attention row per step.
            let activations = steps * (16.0 * h + 4.0 * v + n_in as f64);
            Footprint {
                parameters,
                bytes: F32 * (COPIES_IN_TRAINING * parameters + 4.0 * activations),
            }
        }
        Study::Imdb { task, model, .. } => {
            let (task, model) = (*task, *model);
            let words = task.num_words as f64;
            let len = task.maxlen as f64;
            let batch = task.batch_size as f64;
            let data = IMDB_REVIEWS * len * 8.0;
            let (parameters, per_review) = match model {
                TextModel::SelfAttention(crate::config::SelfAttentionModel {
                    embed,
                    heads,
                    head_dim,
                    position,
                    layers,
                    ..
                }) => {
                    let e = embed as f64;
                    let width = heads as f64 * head_dim as f64;
                    let layers = layers as f64;
                    let positions = if position == Position::Learned {
                        len * e
                    } else {
                        0.0
                    };
                    let parameters = words * e
                        + positions
                        + 3.0 * width * (e + (layers - 1.0) * width)
                        + 2.0 * width
                        + 2.0;
                    // Per layer: Q, K, V and the heads' output per position, and the score
                    // and softmax matrices per head.
                    let per_review =
                        len * e + layers * (4.0 * len * width + 2.0 * heads as f64 * len * len);
                    (parameters, per_review)
                }
                TextModel::Lstm(lstm) => {
                    let e = lstm.embed as f64;
                    let h = lstm.hidden as f64;
                    let u = lstm.units() as f64;
                    let parameters =
                        words * e + 4.0 * h * (e + h + 1.0) + h * h + 2.0 * h * u + 2.0 * u + 2.0;
                    (parameters, len * (e + 6.0 * h))
                }
            };
            // Training keeps the forward activations and their gradients; evaluation runs
            // without autodiff, on larger batches.
            let activations = (3.0 * batch).max(eval_batch) * per_review;
            Footprint {
                parameters,
                bytes: F32 * (COPIES_IN_TRAINING * parameters + activations) + data,
            }
        }
    }
}

/// The memory this machine can give a new process, from `/proc/meminfo` (Linux); `None`
/// where that cannot be read.
pub fn available_bytes() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// `bytes` for people: `1.4 GiB`, `3.2e9 GiB`.
pub fn human(bytes: f64) -> String {
    let gib = bytes / (1u64 << 30) as f64;
    if gib >= 1e5 {
        format!("{gib:.1e} GiB")
    } else if gib >= 0.1 {
        format!("{gib:.1} GiB")
    } else {
        format!("{:.0} MiB", bytes / (1u64 << 20) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(text: &str) -> ExperimentConfig {
        ExperimentConfig::parse(text, Path::new("x.json")).unwrap()
    }

    #[test]
    fn article_models_are_small_and_impossible_ones_are_not() {
        let e1 = estimate(
            &config(r#"{"task": {"kind": "echo"}, "model": {"kind": "attention"}}"#),
            500,
        );
        assert!(e1.bytes < 64e6, "{e1:?}");
        // E3's model has 2,609,410 parameters; the estimate is within a few percent.
        let e3 = estimate(
            &config(
                r#"{"task": {"kind": "imdb"}, "model": {"kind": "self_attention", "heads": 1, "head_dim": 128, "output": "softmax"}}"#,
            ),
            500,
        );
        assert!((e3.parameters / 2_609_410.0 - 1.0).abs() < 0.05, "{e3:?}");
        assert!(e3.bytes < 2e9, "{e3:?}");
        let huge = estimate(
            &config(
                r#"{"task": {"kind": "echo"}, "model": {"kind": "baseline", "hidden": 4000000000}}"#,
            ),
            500,
        );
        assert!(huge.bytes > 1e20, "{huge:?}");
        assert_eq!(human(1.5 * (1u64 << 30) as f64), "1.5 GiB");
    }
}
