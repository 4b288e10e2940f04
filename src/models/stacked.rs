//! Layers with a leading repeat dimension: `R` independent copies of a layer, each with its own
//! weights, evaluated in one batched op.
//!
//! At batch size 1 these models are bound by per-operation overhead, not arithmetic, so training
//! the `R` repeats of a config as one stacked model costs little more than training one. The
//! maths stays exact: every op acts on each repeat's slice alone, and the training loss is the
//! sum of the repeats' losses, so each repeat gets exactly its own gradient (and, Adam being
//! elementwise, its own optimiser state). burn's own `Linear` and `Lstm` have no such repeat
//! dimension, which is why these are written here.

use burn::module::{ModuleMapper, Param};
use burn::prelude::*;
use rand::rngs::StdRng;

use crate::config::GateActivation;
use crate::kernels::lstm_sequence::lstm_sequence;
use crate::kernels::matmul::Products;
use crate::kernels::product::matmul;

/// Keeps one repeat of a stacked model: every parameter's slice `repeat` of its leading
/// dimension, so that each repeat can be saved (and loaded) as a model of its own.
pub struct TakeRepeat(pub usize);

impl ModuleMapper for TakeRepeat {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let r = self.0;
        param.map(|t| t.slice_dim(0, r..r + 1))
    }
}

/// Builds an `[R, a, b]` parameter from one `a * b` block per repeat, each drawn from that
/// repeat's own generator.
pub fn stacked_param(
    rngs: &mut [StdRng],
    [a, b]: [usize; 2],
    device: &Device,
    mut init: impl FnMut(&mut StdRng) -> Vec<f32>,
) -> Param<Tensor<3>> {
    let mut data = Vec::with_capacity(rngs.len() * a * b);
    for rng in rngs.iter_mut() {
        let block = init(rng);
        debug_assert_eq!(block.len(), a * b);
        data.extend(block);
    }
    Param::from_data(TensorData::new(data, [rngs.len(), a, b]), device)
}

/// An `[R, a, b]` parameter whose every repeat holds the same constant block (biases).
pub fn stacked_const(
    repeats: usize,
    block: &[f32],
    [a, b]: [usize; 2],
    device: &Device,
) -> Param<Tensor<3>> {
    debug_assert_eq!(block.len(), a * b);
    let data: Vec<f32> = block
        .iter()
        .copied()
        .cycle()
        .take(repeats * a * b)
        .collect();
    Param::from_data(TensorData::new(data, [repeats, a, b]), device)
}

/// Horizontally concatenates row-major `[rows, cols_i]` blocks into one `[rows, sum cols_i]`.
pub fn concat_columns(rows: usize, blocks: &[(usize, Vec<f32>)]) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows * blocks.iter().map(|(c, _)| c).sum::<usize>());
    for r in 0..rows {
        for (cols, block) in blocks {
            out.extend_from_slice(&block[r * cols..(r + 1) * cols]);
        }
    }
    out
}

/// `R` dense layers: `x W + b` for inputs `[R, N, in]`.
#[derive(Module, Debug)]
pub struct StackedLinear {
    /// `[R, in, out]`, Keras `glorot_uniform`.
    pub weight: Param<Tensor<3>>,
    /// `[R, 1, out]`, zeros.
    pub bias: Param<Tensor<3>>,
    /// The kernels of its products (see [`Products`]).
    #[module(skip)]
    products: Products,
}

impl StackedLinear {
    pub fn new(
        rngs: &mut [StdRng],
        (d_in, d_out): (usize, usize),
        products: Products,
        device: &Device,
    ) -> Self {
        Self {
            products,
            weight: stacked_param(rngs, [d_in, d_out], device, |rng| {
                crate::models::init::glorot_uniform(rng, d_in, d_out)
            }),
            bias: stacked_const(rngs.len(), &vec![0.0; d_out], [1, d_out], device),
        }
    }

    /// `[R, N, in] -> [R, N, out]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        matmul(x, self.weight.val(), self.products) + self.bias.val()
    }
}

/// `R` Keras-style LSTM layers (gate order i, f, c, o; sigmoid or hard-sigmoid gates; tanh
/// cell), with zero initial state.
#[derive(Module, Debug)]
pub struct StackedLstm {
    /// Input kernel `[R, in, 4H]`, Keras `glorot_uniform` over the whole fused kernel.
    pub kernel: Param<Tensor<3>>,
    /// Recurrent kernel `[R, H, 4H]`, Keras `orthogonal` over the whole fused kernel.
    pub recurrent: Param<Tensor<3>>,
    /// `[R, 1, 4H]`: zeros, with the forget gate's quarter at 1 (Keras `unit_forget_bias`).
    pub bias: Param<Tensor<3>>,
    /// Keras 2's hard-sigmoid gates (`recurrent_activation: "hard_sigmoid"`) instead of sigmoid.
    #[module(skip)]
    hard: bool,
    /// The kernels of its input projection (see [`Products`]).
    #[module(skip)]
    products: Products,
}

impl StackedLstm {
    pub fn new(
        rngs: &mut [StdRng],
        d_in: usize,
        hidden: usize,
        activation: GateActivation,
        products: Products,
        device: &Device,
    ) -> Self {
        let gates = 4 * hidden;
        let kernel = stacked_param(rngs, [d_in, gates], device, |rng| {
            crate::models::init::glorot_uniform(rng, d_in, gates)
        });
        let recurrent = stacked_param(rngs, [hidden, gates], device, |rng| {
            crate::models::init::orthogonal(rng, hidden, gates)
        });
        let mut bias = vec![0.0; gates];
        bias[hidden..2 * hidden].fill(1.0);
        let bias = stacked_const(rngs.len(), &bias, [1, gates], device);
        Self {
            kernel,
            recurrent,
            bias,
            hard: activation == GateActivation::HardSigmoid,
            products,
        }
    }

    pub fn hidden(&self) -> usize {
        self.recurrent.dims()[1]
    }

    /// The input's contribution to every gate at every step, bias included: `[R, B, T, in]
    /// -> [R, B, T, 4H]`. Done once for the whole sequence, outside the recurrence.
    pub fn project_inputs(&self, x: Tensor<4>) -> Tensor<4> {
        let [r, b, t, d] = x.dims();
        let projected =
            matmul(x.reshape([r, b * t, d]), self.kernel.val(), self.products) + self.bias.val();
        projected.reshape([r, b, t, 4 * self.hidden()])
    }

    /// Runs the whole sequence `[R, B, T, in]`; returns every hidden state `[R, B, T, H]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.run(self.project_inputs(x))
    }

    /// Runs the recurrence over projected inputs `[R, B, T, 4H]` (see
    /// [`project_inputs`](Self::project_inputs)); returns every hidden state `[R, B, T, H]`:
    /// on the CPU backends one op ([`lstm_sequence`]), on a GPU burn's ops step by step.
    pub fn run(&self, projected: Tensor<4>) -> Tensor<4> {
        lstm_sequence(projected, self.recurrent.val(), self.hard)
    }
}
