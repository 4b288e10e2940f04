//! `attnx bench`'s echo cases: training throughput of each E1 model on each backend, at batch
//! size 1.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;

use super::{BenchArgs, Peak, Results, peak};
use crate::backend;
use crate::config::{ExperimentConfig, OptimizerConfig, Study, resolve_config_path};
use crate::error::InputError;
use crate::train::{self, EchoStudy};

/// The echo study of `name` (a config in `configs/`, or a path: `baseline`, `attention`, E4's
/// `attention_dot`, ...) with `steps` training steps.
fn echo_study(name: &str, steps: usize) -> Result<EchoStudy> {
    let config = ExperimentConfig::load(&resolve_config_path(name)?)?;
    let Study::Echo { mut task, model } = config.study else {
        return Err(InputError(format!(
            "--models: {name} is not an echo config (IMDB configs go to --imdb)"
        ))
        .into());
    };
    task.train_steps = steps;
    task.eval_samples = 1;
    Ok(EchoStudy { task, model })
}

/// Seconds to train `stack` repeats of `study`, on one thread: the burn ops and the fused
/// Adam that split large tensors over the cores run in a one-thread pool, as they effectively
/// do when every core already trains its own repeat (`attnx run`'s workers).
fn time_training(study: &EchoStudy, stack: usize, device: &burn::tensor::Device) -> f64 {
    let indices: Vec<usize> = (0..stack).collect();
    let seeds: Vec<u64> = indices.iter().map(|&i| i as u64).collect();
    let adam = OptimizerConfig::default();
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    one_thread.install(|| {
        let started = Instant::now();
        train::echo::train_echo_stack(study, &adam, &indices, &seeds, device, Arc::new(|_, _| {}))
            .expect("training a bench model");
        started.elapsed().as_secs_f64()
    })
}

/// Checks every config `--models` names before anything is timed.
pub fn check(args: &BenchArgs) -> Result<()> {
    for model in &args.models {
        echo_study(model, args.steps)?;
    }
    Ok(())
}

/// `attnx bench` on the echo models (their configs checked by [`check`]).
pub fn run(args: &BenchArgs, peak: &Peak) -> Result<()> {
    let mut results = Results::new(&[
        "model",
        "backend",
        "stack",
        "ms/step",
        "repeat-steps/s",
        "vs first",
        "s/E1 repeat",
        "GFLOP/s",
        "of 1-core peak",
        "cores",
    ]);
    let mut reference: Option<f64> = None;
    eprintln!(
        "timing {} steps per case at batch size 1 (one thread; each config's own sizes)",
        args.steps
    );
    for model in &args.models {
        for &backend_choice in &args.backends {
            let device = backend::device(backend_choice, None)?;
            for &stack in &args.stacks {
                time_training(&echo_study(model, 10)?, stack, &device);
                let study = echo_study(model, args.steps)?;
                let cpu_before = peak::cpu_seconds();
                let seconds = time_training(&study, stack, &device);
                let cpu = cpu_before.and_then(|b| Some(peak::cpu_seconds()? - b));
                let repeat_steps_per_s = (stack * args.steps) as f64 / seconds;
                let gflops = crate::models::flops::echo_step(&study.task, &study.model)
                    * repeat_steps_per_s
                    / 1e9;
                let reference = *reference.get_or_insert(repeat_steps_per_s);
                let row = vec![
                    model.clone(),
                    backend_choice.to_string(),
                    stack.to_string(),
                    format!("{:.2}", 1e3 * seconds / args.steps as f64),
                    format!("{repeat_steps_per_s:.0}"),
                    format!("{:.2}x", repeat_steps_per_s / reference),
                    format!("{:.0}", 5000.0 / repeat_steps_per_s),
                    format!("{gflops:.2}"),
                    format!("{:.1}%", 100.0 * gflops / peak.one_core),
                    cpu.map_or("-".into(), |c| format!("{:.2}", c / seconds)),
                ];
                results.push(row);
            }
        }
    }
    results.print(
        "repeat-steps/s: training steps per second summed over the stacked repeats; \
         s/E1 repeat: seconds of one core per 5000-step repeat; GFLOP/s: the matrix products a \
         step needs, forward and backward (models::flops), per second of training; of 1-core \
         peak: against a large product's GFLOP/s on one core (each case runs on one); cores: \
         CPU time over wall time.",
    );
    Ok(())
}
