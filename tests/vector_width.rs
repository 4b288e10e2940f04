//! Which operations of E1's training give other bits on a CPU with other vector widths.
//!
//! Not a pass/fail test: it prints a hash of the bits of each operation E1's training runs (on
//! fixed inputs of E1's sizes, forward and backward), and of whole training steps, on flex and
//! on ndarray. Run it on two machines, or on one machine natively and under QEMU with a CPU
//! without AVX-512 (`qemu-x86_64 -cpu max`, which has AVX2 and FMA), and compare the lines:
//!
//! ```sh
//! cargo test --release --test vector_width -- --ignored --nocapture > native.txt
//! qemu-x86_64 -cpu max target/release/deps/vector_width-* --ignored --nocapture > avx2.txt
//! diff native.txt avx2.txt
//! ```
//!
//! `docs/reproducibility.md` gives what it found.

use attnx::config::{EchoModel, EchoTask};
use attnx::machine::simd_level;
use attnx::train::echo::{build_model, per_repeat_loss};
use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::Gradients;
use burn::tensor::activation::{log_softmax, softmax};

/// FNV-1a over the bits of every value.
fn hash(values: &[f32]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in values {
        for byte in v.to_bits().to_le_bytes() {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// Deterministic inputs in [-2, 2): a fixed linear congruential sequence, the same everywhere.
fn inputs(len: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

fn tensor<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
    let len = shape.iter().product();
    Tensor::from_data(TensorData::new(inputs(len, seed), shape), device)
}

/// One op forward, and the gradient of `sum(op(x) * w)` with respect to each input.
fn probe<const D: usize, const E: usize>(
    name: &str,
    device: &Device,
    shapes: &[[usize; D]],
    op: impl Fn(&[Tensor<D>]) -> Tensor<E>,
) {
    let ad = device.clone().autodiff();
    let xs: Vec<Tensor<D>> = shapes
        .iter()
        .enumerate()
        .map(|(i, &s)| tensor(s, 10 + i as u64, &ad).require_grad())
        .collect();
    let out = op(&xs);
    let w = tensor(out.dims(), 99, &ad);
    let grads = (out.clone() * w).sum().backward();
    let mut line = format!("{name:<28} forward {}", hash(&values(out)));
    for (i, x) in xs.iter().enumerate() {
        let g = x.grad(&grads).expect("a gradient");
        line.push_str(&format!("  d{i} {}", hash(&values(g))));
    }
    println!("{line}");
}

/// Loss and every parameter gradient of one training step of an E1 model, and the loss after
/// `steps` Adam steps on fixed pairs.
fn step(name: &str, model: &EchoModel, device: &Device) {
    let task: EchoTask = serde_json::from_str("{}").unwrap(); // E1's defaults
    let ad = device.clone().autodiff();
    let net = build_model(&task, model, &[7], &ad);
    let x = Tensor::<4>::from_data(
        TensorData::new(one_hot(&[12, 20, 36, 40, 12], 50), [1, 1, 5, 50]),
        &ad,
    );
    let y = Tensor::<4>::from_data(
        TensorData::new(one_hot(&[12, 20, 0, 0, 0], 50), [1, 1, 5, 50]),
        &ad,
    );
    let loss = per_repeat_loss(net.forward_train(x, None), y).sum();
    let grads = loss.backward();
    let mut visitor = CollectGrads {
        grads: &grads,
        out: Vec::new(),
    };
    net.visit(&mut visitor);
    let gradient_bits = visitor.out;
    println!(
        "{name:<28} loss {}  gradients {}",
        hash(&values(loss)),
        hash(&gradient_bits)
    );
}

struct CollectGrads<'a> {
    grads: &'a Gradients,
    out: Vec<f32>,
}

impl ModuleVisitor for CollectGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let grad = param.val().grad(self.grads).expect("a gradient");
        self.out.extend(values(grad));
    }
}

fn one_hot(ids: &[usize], width: usize) -> Vec<f32> {
    let mut out = vec![0.0; ids.len() * width];
    for (i, &id) in ids.iter().enumerate() {
        out[i * width + id] = 1.0;
    }
    out
}

#[test]
#[ignore = "diagnostic: prints hashes to compare between machines"]
fn print_the_bits_of_e1s_operations() {
    println!("simd level: {}", simd_level());
    #[allow(deprecated)]
    let backends = [("flex", Device::flex()), ("ndarray", Device::ndarray())];
    for (backend, device) in backends {
        println!("== {backend}");
        probe("log_softmax [1,1,5,50]", &device, &[[1, 1, 5, 50]], |x| {
            log_softmax(x[0].clone(), 3)
        });
        probe("softmax [1,1,5,50]", &device, &[[1, 1, 5, 50]], |x| {
            softmax(x[0].clone(), 3)
        });
        probe("sum_dim last [1,1,5,50]", &device, &[[1, 1, 5, 50]], |x| {
            x[0].clone().sum_dim(3)
        });
        probe("mean_dim [1,5]", &device, &[[1, 5]], |x| {
            x[0].clone().mean_dim(1)
        });
        probe(
            "attnx cross_entropy [1,5,50]",
            &device,
            &[[1, 5, 50]],
            |x| {
                let [r, m, v] = x[0].dims();
                let mut targets = vec![0.0f32; r * m * v];
                for row in 0..r * m {
                    targets[row * v + (row * 7) % v] = 1.0;
                }
                let targets =
                    Tensor::from_data(TensorData::new(targets, [r, m, v]), &x[0].device());
                attnx::kernels::cross_entropy::cross_entropy(x[0].clone(), targets)
            },
        );
        probe("exp [1,1,5,50]", &device, &[[1, 1, 5, 50]], |x| {
            x[0].clone().exp()
        });
        probe("tanh [1,1,5,600]", &device, &[[1, 1, 5, 600]], |x| {
            x[0].clone().tanh()
        });
        probe(
            "matmul [1,5,50]x[1,50,600]",
            &device,
            &[[1, 5, 50], [1, 50, 600]],
            |x| x[0].clone().matmul(x[1].clone()),
        );
        probe(
            "matmul [1,5,150]x[1,150,50]",
            &device,
            &[[1, 5, 150], [1, 150, 50]],
            |x| x[0].clone().matmul(x[1].clone()),
        );
        probe(
            "matmul [1,5,150]x[1,150,300]",
            &device,
            &[[1, 5, 150], [1, 150, 300]],
            |x| x[0].clone().matmul(x[1].clone()),
        );
        probe(
            "add bias [1,5,50]+[1,1,50]",
            &device,
            &[[1, 5, 50], [1, 1, 50]],
            |x| x[0].clone() + x[1].clone(),
        );
        for kind in ["baseline", "attention"] {
            let model: EchoModel =
                serde_json::from_str(&format!(r#"{{"kind": "{kind}"}}"#)).unwrap();
            step(&format!("{kind} step"), &model, &device);
        }
    }
}
