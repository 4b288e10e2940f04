//! ndarray and wgpu agree: the same weights (built from one seed by attnx's own generators, so
//! identical on both devices) give the same outputs and the same loss gradients, for every
//! model. On a machine without a GPU, wgpu runs on Mesa's lavapipe (CI installs it). Without the
//! `wgpu` feature the test is ignored (`cargo test` lists it so); with it, a missing adapter
//! fails it.
//!
//! Tolerance: |wgpu - ndarray| <= 1e-5 * (1 + |ndarray|) for every element. Both compute in
//! f32 but sum in different orders (tiled GPU kernels against CPU loops), so bit equality is not
//! to be had; measured on lavapipe, the largest difference over all outputs and gradients was
//! about 1.6e-7, a few f32 ulps of values near 1. 1e-5 leaves two orders of magnitude for other
//! GPUs and drivers while any real error (a wrong index, a missing term) is far larger.

use attnx::config::{Backend, ExperimentConfig, Study, TextModel};
use attnx::models::classifier::TextClassifier;
use attnx::rng::{Stream, rng};
use attnx::train::echo::{build_model, per_repeat_loss};
use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::Gradients;

const TOLERANCE: f32 = 1e-5;

/// A model's outputs and the gradients of its parameters, flattened.
type Outputs = (Vec<f32>, Vec<Vec<f32>>);

/// A model (its config's `model` object) run on a device.
type Case = (&'static str, fn(&str, &Device) -> Outputs, &'static str);

/// The wgpu device; a missing adapter fails the test.
fn wgpu() -> Device {
    attnx::backend::device(Backend::Wgpu, None)
        .unwrap_or_else(|e| panic!("this test needs a wgpu adapter (lavapipe will do): {e}"))
}

#[allow(deprecated)]
fn ndarray() -> Device {
    Device::ndarray()
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().unwrap()
}

/// Max absolute difference, and max difference scaled by (1 + |ndarray|); panics past the
/// tolerance.
fn agree(what: &str, gpu: &[f32], cpu: &[f32]) -> (f32, f32) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    let (mut abs, mut rel) = (0.0f32, 0.0f32);
    for (i, (&g, &c)) in gpu.iter().zip(cpu).enumerate() {
        let diff = (g - c).abs();
        assert!(
            diff <= TOLERANCE * (1.0 + c.abs()),
            "{what}[{i}]: wgpu {g} vs ndarray {c}"
        );
        abs = abs.max(diff);
        rel = rel.max(diff / (1.0 + c.abs()));
    }
    (abs, rel)
}

/// Every parameter's gradient, in visiting order.
struct CollectGrads<'a> {
    grads: &'a Gradients,
    out: Vec<Vec<f32>>,
}

impl ModuleVisitor for CollectGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let grad = param
            .val()
            .grad(self.grads)
            .expect("every parameter has a gradient");
        self.out.push(values(grad));
    }
}

fn grads_of<M: Module>(model: &M, grads: &Gradients) -> Vec<Vec<f32>> {
    let mut visitor = CollectGrads {
        grads,
        out: Vec::new(),
    };
    model.visit(&mut visitor);
    visitor.out
}

fn config(task: &str, model: &str) -> ExperimentConfig {
    let text = format!(r#"{{"task": {task}, "model": {model}}}"#);
    ExperimentConfig::parse(&text, std::path::Path::new("agreement.json")).unwrap()
}

fn text_model(config: &ExperimentConfig) -> TextModel {
    match config.study {
        Study::Imdb { model, .. } => model,
        Study::Echo { .. } => panic!("an IMDB config"),
    }
}

fn echo_batch(device: &Device) -> (Tensor<4>, Tensor<4>) {
    let task = attnx::config::EchoTask {
        n_in: 5,
        n_out: 2,
        cardinality: 50,
        train_steps: 1,
        eval_samples: 4,
    };
    let mut r = rng(11, Stream::EvalData);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        let pair = task.draw(&mut r);
        task.one_hot_into(&pair.input, &mut x);
        task.one_hot_into(&pair.target, &mut y);
    }
    let shape = [1, 4, 5, 50];
    (
        Tensor::from_data(TensorData::new(x, shape), device),
        Tensor::from_data(TensorData::new(y, shape), device),
    )
}

fn echo_outputs(model: &str, device: &Device) -> Outputs {
    let device = device.clone().autodiff();
    let Study::Echo { task, model } = config(r#"{"kind": "echo"}"#, model).study else {
        panic!("an echo config")
    };
    let model = build_model(&task, &model, &[42], &device);
    let (x, y) = echo_batch(&device);
    // Fixed Gumbel noise, so that hard attention is differentiable here too (soft ignores it).
    let noise: Vec<f32> = (0..4 * 5 * 5)
        .map(|i| ((i * 17) % 11) as f32 / 5.0 - 1.0)
        .collect();
    let noise = Tensor::<4>::from_data(TensorData::new(noise, [1, 4, 5, 5]), &device);
    let logits = model.forward_train(x, Some(noise));
    let loss = per_repeat_loss(logits.clone(), y).sum();
    let grads = loss.backward();
    (values(logits), grads_of(&model, &grads))
}

fn imdb_outputs(model: &str, device: &Device) -> Outputs {
    let device = device.clone().autodiff();
    let config = config(r#"{"kind": "imdb", "num_words": 300, "maxlen": 12}"#, model);
    let model = TextClassifier::new(
        &text_model(&config),
        300,
        12,
        2,
        &mut rng(7, Stream::Init),
        &device,
    );
    // Two reviews padded in front, one not.
    let ids: Vec<i64> = (0..3 * 12)
        .map(|i| {
            if i < 5 || (12..15).contains(&i) {
                0
            } else {
                (i * 37 % 300) as i64
            }
        })
        .collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [3, 12]), &device);
    let logits = model.forward(ids, None);
    let (output, _) = text_model(&config).head();
    let loss =
        attnx::train::imdb::per_review_loss(output, logits.clone(), &[1, 0, 1], &device).mean();
    let grads = loss.backward();
    (values(logits), grads_of(&model, &grads))
}

#[test]
#[cfg_attr(
    not(feature = "wgpu"),
    ignore = "needs the wgpu feature: cargo test --release --features wgpu"
)]
fn ndarray_and_wgpu_agree_on_outputs_and_gradients() {
    let gpu = wgpu();
    let cpu = ndarray();
    // Every model and every E4 variant. On ndarray a self-attention layer without a mask or a
    // window runs as attnx's fused kernel (`kernels::attention`), and the IMDB LSTMs' steps
    // as its fused cell (`models::lstm_cell`); on wgpu both are burn's ops.
    let cases: [Case; 12] = [
        (
            "echo baseline",
            echo_outputs,
            r#"{"kind": "baseline", "hidden": 32}"#,
        ),
        (
            "echo attention",
            echo_outputs,
            r#"{"kind": "attention", "hidden": 32}"#,
        ),
        (
            "echo dot",
            echo_outputs,
            r#"{"kind": "attention", "hidden": 32, "score": "dot"}"#,
        ),
        (
            "echo general",
            echo_outputs,
            r#"{"kind": "attention", "hidden": 32, "score": "general"}"#,
        ),
        (
            "echo cosine",
            echo_outputs,
            r#"{"kind": "attention", "hidden": 32, "score": "cosine"}"#,
        ),
        (
            "echo hard",
            echo_outputs,
            r#"{"kind": "attention", "hidden": 32, "attention": "hard"}"#,
        ),
        (
            "imdb self-attention",
            imdb_outputs,
            r#"{"kind": "self_attention", "position": "sinusoidal"}"#,
        ),
        (
            "imdb self-attention, one head, learned, 2 layers",
            imdb_outputs,
            r#"{"kind": "self_attention", "heads": 1, "head_dim": 32, "position": "learned", "layers": 2}"#,
        ),
        (
            "imdb self-attention masked, window 2, learned, 2 layers",
            imdb_outputs,
            r#"{"kind": "self_attention", "position": "learned", "mask_padding": true, "window": 2, "layers": 2}"#,
        ),
        (
            "imdb lstm last",
            imdb_outputs,
            r#"{"kind": "lstm", "hidden": 16, "pooling": "last"}"#,
        ),
        (
            "imdb lstm mean",
            imdb_outputs,
            r#"{"kind": "lstm", "hidden": 16, "pooling": "mean"}"#,
        ),
        (
            "imdb lstm attention",
            imdb_outputs,
            r#"{"kind": "lstm", "hidden": 16, "pooling": "attention"}"#,
        ),
    ];
    for (name, run, model) in cases {
        let (out_gpu, grads_gpu) = run(model, &gpu);
        let (out_cpu, grads_cpu) = run(model, &cpu);
        let (abs, rel) = agree(&format!("{name} outputs"), &out_gpu, &out_cpu);
        assert_eq!(grads_gpu.len(), grads_cpu.len());
        let (mut gabs, mut grel) = (0.0f32, 0.0f32);
        for (i, (g, c)) in grads_gpu.iter().zip(&grads_cpu).enumerate() {
            let (a, r) = agree(&format!("{name} gradient {i}"), g, c);
            (gabs, grel) = (gabs.max(a), grel.max(r));
        }
        eprintln!(
            "{name}: outputs max abs {abs:.2e} scaled {rel:.2e}; gradients ({} tensors) max abs {gabs:.2e} scaled {grel:.2e}",
            grads_cpu.len()
        );
    }
}
