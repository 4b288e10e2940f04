//! E1's bits do not depend on the CPU's vector width: the promise of docs/reproducibility.md.
//!
//! The test hashes the bits of each operation E1's training runs (on fixed inputs of E1's
//! sizes, forward and backward) and of whole training steps, on flex and on ndarray, and
//! compares every hash with `tests/golden/vector_width.txt`, which holds them as AVX-512 and
//! AVX2 machines compute them: the products are E1's, on gemm's AVX2 kernels whatever the CPU
//! (`models::ECHO_PRODUCTS`; burn's own matmul takes gemm's AVX-512 kernels where the CPU has
//! them, in other bits). CPUs without AVX2 and FMA compute gemm's products in other bits:
//! their hashes are `vector_width_portable.txt`'s. A change that moves these bits fails
//! here, on any x86-64 machine; if the move is meant, the docs change with it and the goldens are
//! rewritten, natively and under QEMU for the portable file:
//!
//! ```sh
//! ATTNX_BLESS=1 cargo test --release --test vector_width   # writes, then fails on purpose
//! bin=$(ls -t target/release/deps/vector_width-* | grep -v '\.d$' | head -1)
//! ATTNX_BLESS=1 qemu-x86_64 -cpu Nehalem $bin
//! ```
//!
//! The same test is the diagnostic for another machine or width: `--nocapture` prints every
//! line, including burn-flex's three reductions that are known to differ by width and that E1
//! no longer runs (so they are printed, not compared). Natively and under QEMU:
//!
//! ```sh
//! cargo test --release --test vector_width -- --nocapture > native.txt
//! bin=$(ls -t target/release/deps/vector_width-* | grep -v '\.d$' | head -1)
//! qemu-x86_64 -cpu max $bin --nocapture > avx2.txt
//! diff native.txt avx2.txt
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use attnx::config::{EchoModel, EchoTask};
use attnx::kernels::product::matmul;
use attnx::machine::{SimdLevel, simd_level};
use attnx::models::ECHO_PRODUCTS;
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
    out: &mut Vec<(String, String)>,
    (backend, device): (&str, &Device),
    name: &str,
    shapes: &[[usize; D]],
    op: impl Fn(&[Tensor<D>]) -> Tensor<E>,
) {
    let ad = device.clone().autodiff();
    let xs: Vec<Tensor<D>> = shapes
        .iter()
        .enumerate()
        .map(|(i, &s)| tensor(s, 10 + i as u64, &ad).require_grad())
        .collect();
    let result = op(&xs);
    let w = tensor(result.dims(), 99, &ad);
    let grads = (result.clone() * w).sum().backward();
    let mut line = format!("forward {}", hash(&values(result)));
    for (i, x) in xs.iter().enumerate() {
        let g = x.grad(&grads).expect("a gradient");
        line.push_str(&format!("  d{i} {}", hash(&values(g))));
    }
    out.push((format!("{backend} {name}"), line));
}

/// Loss and every parameter gradient of one training step of an E1 model, and the loss after
/// `steps` Adam steps on fixed pairs.
fn step(model: &EchoModel, device: &Device) -> String {
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
    format!(
        "loss {}  gradients {}",
        hash(&values(loss)),
        hash(&gradient_bits)
    )
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

/// burn-flex's SIMD reductions, which sum in as many lanes as the CPU's vectors: their bits
/// differ between widths (docs/reproducibility.md), and E1 no longer runs them.
const WIDTH_DEPENDENT: [&str; 3] = [
    "flex log_softmax [1,1,5,50]",
    "flex softmax [1,1,5,50]",
    "flex sum_dim last [1,1,5,50]",
];

/// Every probe's hashes, keyed `backend op`, in the order they run.
fn bits_of_e1s_operations() -> Vec<(String, String)> {
    let mut lines = Vec::new();
    #[allow(deprecated)]
    let backends = [("flex", Device::flex()), ("ndarray", Device::ndarray())];
    for (backend, device) in backends {
        let on = (backend, &device);
        probe(
            &mut lines,
            on,
            "log_softmax [1,1,5,50]",
            &[[1, 1, 5, 50]],
            |x| log_softmax(x[0].clone(), 3),
        );
        probe(
            &mut lines,
            on,
            "softmax [1,1,5,50]",
            &[[1, 1, 5, 50]],
            |x| softmax(x[0].clone(), 3),
        );
        probe(
            &mut lines,
            on,
            "sum_dim last [1,1,5,50]",
            &[[1, 1, 5, 50]],
            |x| x[0].clone().sum_dim(3),
        );
        probe(&mut lines, on, "mean_dim [1,5]", &[[1, 5]], |x| {
            x[0].clone().mean_dim(1)
        });
        probe(
            &mut lines,
            on,
            "attnx cross_entropy [1,5,50]",
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
        probe(&mut lines, on, "exp [1,1,5,50]", &[[1, 1, 5, 50]], |x| {
            x[0].clone().exp()
        });
        probe(&mut lines, on, "tanh [1,1,5,600]", &[[1, 1, 5, 600]], |x| {
            x[0].clone().tanh()
        });
        probe(
            &mut lines,
            on,
            "matmul [1,5,50]x[1,50,600]",
            &[[1, 5, 50], [1, 50, 600]],
            |x| matmul(x[0].clone(), x[1].clone(), ECHO_PRODUCTS),
        );
        probe(
            &mut lines,
            on,
            "matmul [1,5,150]x[1,150,50]",
            &[[1, 5, 150], [1, 150, 50]],
            |x| matmul(x[0].clone(), x[1].clone(), ECHO_PRODUCTS),
        );
        probe(
            &mut lines,
            on,
            "matmul [1,5,150]x[1,150,300]",
            &[[1, 5, 150], [1, 150, 300]],
            |x| matmul(x[0].clone(), x[1].clone(), ECHO_PRODUCTS),
        );
        probe(
            &mut lines,
            on,
            "add bias [1,5,50]+[1,1,50]",
            &[[1, 5, 50], [1, 1, 50]],
            |x| x[0].clone() + x[1].clone(),
        );
        for kind in ["baseline", "attention"] {
            let model: EchoModel =
                serde_json::from_str(&format!(r#"{{"kind": "{kind}"}}"#)).unwrap();
            lines.push((format!("{backend} {kind} step"), step(&model, &device)));
        }
    }
    lines
}

/// The committed hashes for this CPU: one file for AVX2 and AVX-512 machines (the promise),
/// one for CPUs without AVX2 and FMA, where gemm's products run other kernels (no fused
/// multiply-add) and give other bits (docs/reproducibility.md).
fn golden_file() -> &'static str {
    match simd_level() {
        SimdLevel::Portable => "tests/golden/vector_width_portable.txt",
        SimdLevel::Avx2 | SimdLevel::Avx512 => "tests/golden/vector_width.txt",
    }
}

/// `key = hashes` lines, for the golden file and the printout.
fn render<'a>(lines: impl IntoIterator<Item = &'a (String, String)>) -> String {
    lines
        .into_iter()
        .map(|(key, hashes)| format!("{key:<40} = {hashes}\n"))
        .collect()
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "needs x86-64: the promise and its hashes are x86-64's"
)]
fn e1s_operations_give_the_committed_bits_at_every_vector_width() {
    let lines = bits_of_e1s_operations();
    println!("simd level: {}", simd_level());
    print!("{}", render(&lines));

    let promised: Vec<&(String, String)> = lines
        .iter()
        .filter(|(key, _)| !WIDTH_DEPENDENT.contains(&key.as_str()))
        .collect();
    assert_eq!(
        promised.len(),
        lines.len() - 3,
        "only flex's reductions are exempt"
    );
    let golden_file = golden_file();
    let golden_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(golden_file);
    if std::env::var_os("ATTNX_BLESS").is_some() {
        std::fs::write(&golden_path, render(promised)).unwrap();
        // Never a pass: blessing is a deliberate act, not a way through.
        panic!("wrote {golden_file}; run again without ATTNX_BLESS");
    }
    let golden_text = std::fs::read_to_string(&golden_path)
        .unwrap_or_else(|e| panic!("{}: {e} (ATTNX_BLESS=1 writes it)", golden_path.display()));
    let golden: BTreeMap<&str, &str> = golden_text
        .lines()
        .map(|line| {
            let (key, hashes) = line.split_once(" = ").expect("`key = hashes`");
            (key.trim_end(), hashes)
        })
        .collect();
    let mut moved = Vec::new();
    for (key, hashes) in &promised {
        match golden.get(key.as_str()) {
            Some(want) if want == hashes => {}
            Some(want) => moved.push(format!("{key}: {hashes}, committed {want}")),
            None => moved.push(format!("{key}: not in {golden_file}")),
        }
    }
    assert!(
        moved.is_empty(),
        "bits moved on {} against {golden_file} (docs/reproducibility.md):\n{}",
        simd_level(),
        moved.join("\n")
    );
    assert_eq!(
        golden.len(),
        promised.len(),
        "{golden_file} has other operations"
    );
}
