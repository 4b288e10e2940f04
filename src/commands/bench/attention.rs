//! `attnx bench --attention`: the self-attention kernel alone, called as a config's training
//! step calls it (random inputs: its speed does not depend on the values), in the two ways a
//! step can run it: the forward pass keeping the weights and the backward pass reading them
//! (what attnx does while one call's weights take at most
//! [`KEEP_BYTES`](crate::kernels::attention::KEEP_BYTES)), and the backward pass recomputing
//! them. Alternating rounds within one process, compared as `--against` compares two builds,
//! so that the choice can be checked on any machine; and the forward pass alone (evaluation).

use std::time::Instant;

use anyhow::Result;

use super::{Results, compared};
use crate::config::{ExperimentConfig, Study, TextModel, resolve_config_path};
use crate::error::InputError;
use crate::kernels::attention::{Geometry, backward, forward};
use crate::models::TEXT_PRODUCTS;
use crate::stats::median;

/// The configs measured when `--attention` names none: E2 (8 heads of 16) and E3 (one of 128).
const DEFAULT_CONFIGS: [&str; 2] = ["imdb_pe", "imdb_single"];

/// The attention geometry of a self-attention classifier config's batches (its first layer:
/// every layer has the same).
fn geometry(name: &str) -> Result<Geometry> {
    let config = ExperimentConfig::load(&resolve_config_path(name)?)?;
    let Study::Imdb {
        task,
        model: TextModel::SelfAttention(model),
        ..
    } = &config.study
    else {
        return Err(InputError(format!("{name}: not a self-attention classifier")).into());
    };
    if model.masks_scores() {
        return Err(InputError(format!(
            "{name}: its scores are masked (mask_padding or window), so it trains on burn's \
             composed attention, not this kernel"
        ))
        .into());
    }
    Ok(Geometry {
        batch: task.batch_size,
        time: task.maxlen,
        heads: model.heads,
        head_dim: model.head_dim,
        scale: model.scale_or_default() as f32,
        products: TEXT_PRODUCTS,
    })
}

/// How a training step on the CPU calls the kernel for a batch of `g`: on each half of the
/// batch at once, on two threads (`train::imdb::step`), or on the whole of a batch of one.
fn halves(g: Geometry) -> Vec<Geometry> {
    if g.batch < 2 {
        return vec![g];
    }
    let half = g.batch / 2;
    vec![
        Geometry { batch: half, ..g },
        Geometry {
            batch: g.batch - half,
            ..g
        },
    ]
}

/// Milliseconds per call of `pass`, over `batches` calls.
fn per_batch(batches: usize, mut pass: impl FnMut()) -> f64 {
    let started = Instant::now();
    for _ in 0..batches {
        pass();
    }
    started.elapsed().as_secs_f64() * 1e3 / batches as f64
}

/// One config's three timings per round: a training step's attention keeping the weights, the
/// same recomputing them, and the forward pass on the whole batch alone.
fn time(g: Geometry, batches: usize, rounds: usize) -> [Vec<f64>; 3] {
    let inputs = |g: Geometry| {
        let (rows, width) = (g.batch * g.time, g.heads * g.head_dim);
        // Spread, reproducible inputs of the projections' size (about ±0.05, as trained ones).
        let qkv: Vec<f32> = (0..rows * 3 * width)
            .map(|i| ((i * 7919 % 1009) as f32 / 1009.0 - 0.5) * 0.1)
            .collect();
        let grad: Vec<f32> = (0..rows * width)
            .map(|i| ((i * 104_729 % 997) as f32 / 997.0 - 0.5) * 0.01)
            .collect();
        (g, qkv, grad)
    };
    let calls: Vec<_> = halves(g).into_iter().map(inputs).collect();
    let whole = inputs(g);
    // One call of a step's attention, forward then backward, keeping the weights where asked
    // and where the kernel would (without them the backward pass recomputes them).
    let call = |(g, qkv, grad): &(Geometry, Vec<f32>, Vec<f32>), keep: bool| {
        let mut out = vec![0.0f32; grad.len()];
        let kept = forward(qkv, *g, &mut out, keep && g.keeps_weights());
        let mut dqkv = vec![0.0f32; qkv.len()];
        backward(qkv, grad, *g, kept.as_deref(), &mut dqkv);
    };
    let step = |keep: bool| match &calls[..] {
        [a, b] => {
            rayon::join(|| call(a, keep), || call(b, keep));
        }
        calls => calls.iter().for_each(|c| call(c, keep)),
    };
    let mut out = vec![0.0f32; whole.2.len()];
    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..=rounds {
        // Round 0 warms the caches and the allocator up, and is not kept.
        let keep_first = round % 2 == 1;
        let mut steps = [0.0; 2];
        for keep in [keep_first, !keep_first] {
            steps[usize::from(!keep)] = per_batch(batches, || step(keep));
        }
        let eval = per_batch(batches, || {
            forward(&whole.1, whole.0, &mut out, false);
        });
        if round > 0 {
            times[0].push(steps[0]);
            times[1].push(steps[1]);
            times[2].push(eval);
        }
    }
    times
}

/// The configs `--attention` names (or the defaults) and their geometries, checked before
/// anything is timed.
pub fn geometries(names: &[String]) -> Result<Vec<(String, Geometry)>> {
    let names: Vec<String> = if names.is_empty() {
        DEFAULT_CONFIGS.iter().map(|s| s.to_string()).collect()
    } else {
        names.to_vec()
    };
    names
        .iter()
        .map(|name| Ok((name.clone(), geometry(name)?)))
        .collect()
}

/// `attnx bench --attention` (the configs checked by [`geometries`]).
pub fn run(geometries: Vec<(String, Geometry)>, batches: usize, rounds: usize) -> Result<()> {
    eprintln!(
        "timing the attention kernel: {batches} batches per way and round, {rounds} rounds \
         alternating which way runs first"
    );
    let mut results = Results::new(&[
        "config",
        "batch x tokens, heads x dims",
        "attnx keeps",
        "ms/step",
        "ms/step recomputing",
        "ms/eval batch",
        "recomputing/keeping (95% CI)",
        "Wilcoxon",
        "verdict",
    ]);
    for (name, g) in geometries {
        let [kept, recomputed, eval] = time(g, batches, rounds);
        let median = |v: &[f64]| format!("{:.3}", median(v).unwrap_or(f64::NAN));
        let keeps = halves(g).iter().all(Geometry::keeps_weights);
        results.push(
            [
                name,
                format!("{} x {}, {} x {}", g.batch, g.time, g.heads, g.head_dim),
                if keeps { "yes" } else { "no" }.to_string(),
                median(&kept),
                median(&recomputed),
                median(&eval),
            ]
            .into_iter()
            .chain(compared(&kept, &recomputed, "keeping"))
            .collect(),
        );
    }
    results.print(
        "ms/step: one training batch's attention as a step runs it (each half of the batch on a \
         thread of its own, forward then backward), keeping the weights for the backward pass \
         where attnx does ('attnx keeps'); ms/step recomputing: the backward pass recomputing \
         them instead; ms/eval batch: the forward pass on the whole batch, on all cores; \
         medians over the rounds. recomputing/keeping: the geometric mean of the rounds' ratios \
         with its 95% interval (t on the log ratios); above 1, keeping is faster. Wilcoxon: the \
         signed-rank test of the rounds' paired differences, two-sided; a verdict needs p < \
         0.05. Forward and backward run back to back here, so the kept weights may still be in \
         the cache, as in a real step they need not be.",
    );
    Ok(())
}
