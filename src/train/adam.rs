//! Adam in one pass over each parameter on the CPU backends, with burn's Adam's exact numbers.
//!
//! burn's Adam updates a parameter with thirteen tensor ops (scale and add the two moments,
//! square, square root, divide, ...), each a pass over the whole tensor into a fresh buffer:
//! 12% of an IMDB training step (2.56M parameters, most in the embedding) and 15% of an E1
//! step in perf. On flex this optimizer moves the gradient's and the moments' buffers out of
//! their tensors (no copy: it owns them alone), updates the moments in one loop that turns the
//! gradient into the updated parameter (split over the cores for large parameters), and moves
//! them back. The parameter is read in place, never moved out: burn-train's `Learner` keeps a
//! clone of the model while the optimizer runs, so moving it out would copy every parameter,
//! twice (10% of an E1 step). (Leaving the subtraction to flex cost one more pass over every
//! parameter, on one core: for the IMDB embedding's 2.56 million, a millisecond per step.)
//!
//! The loop performs burn's f32 operations in burn's order and rounding, element by element,
//! so the trained models are bit for bit the ones burn's Adam gives (tested): records need no
//! new attnx version. The state is burn's `AdamState`, so checkpoints of either load in the
//! other. On ndarray and wgpu, and for anything but plain f32 Adam, burn's own Adam runs.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::optim::{
    Adam, AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer,
};
use burn::prelude::*;
use burn::tensor::DType;
use burn_dispatch::{BackendTensor, DispatchDevice, DispatchTensorKind};
use rayon::prelude::*;

use crate::kernels::Floats;
use crate::kernels::simd::simd_fn;

/// Parameters at least this large are updated on all cores; smaller ones (all of E1's) in the
/// calling thread, which is one of several workers already.
const PARALLEL_ELEMENTS: usize = 1 << 18;
/// Elements per parallel task: a few tasks per core for the embedding, each long enough to
/// amortise the hand-off.
const CHUNK: usize = 1 << 16;

/// Adam with the given betas and epsilon (no weight decay, no AMSGrad): see the module docs.
#[derive(Clone)]
pub struct FusedAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    /// burn's Adam with the same settings, for the tensors the fused loop does not handle.
    fallback: Adam,
}

impl FusedAdam {
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32) -> Self {
        let fallback = AdamConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .build();
        Self {
            beta_1,
            beta_2,
            epsilon,
            fallback,
        }
    }

    /// The optimizer for a whole module.
    pub fn init(self) -> ModuleOptimizer {
        ModuleOptimizer::from(self)
    }
}

/// Whether the fused loop can take this tensor: f32 on flex, whose tensors hand over their
/// buffers without a copy. (On ndarray the round trip through `TensorData` made an E1 step
/// 2.7x slower in `attnx bench`; on a GPU it would be a device-host copy.)
fn fusable<const D: usize>(tensor: &Tensor<D>) -> bool {
    tensor.dtype() == DType::F32 && matches!(tensor.device().as_dispatch(), DispatchDevice::Flex(_))
}

/// The flex tensor inside a float tensor on flex (which [`fusable`] checked).
fn flex_float<const D: usize>(tensor: Tensor<D>) -> FlexTensor {
    match tensor.into_dispatch().kind {
        DispatchTensorKind::Flex(BackendTensor::Float(tensor)) => tensor,
        _ => unreachable!("fusable() admits only float tensors on flex"),
    }
}

/// A buffer moved out of its tensor by `into_data` (flex copies it only when another tensor
/// shares it), as f32s to update in place; `from_data` moves it back. Converting it to a
/// `Vec<f32>` and back would copy it twice more (burn keeps buffers aligned for u128, a `Vec`
/// for f32): 12% of an IMDB step in perf.
fn floats(data: &mut TensorData) -> &mut [f32] {
    data.as_mut_slice::<f32>()
        .expect("an f32 tensor reads back as f32")
}

/// The scalars of one step, computed as burn's Adam computes them (in f32).
struct Coefficients {
    beta_1: f32,
    beta_2: f32,
    /// `1 - beta_1`, `1 - beta_2`.
    rest_1: f32,
    rest_2: f32,
    /// `sqrt(1 - beta_2^t) / (1 - beta_1^t)`.
    combined: f32,
    /// `epsilon * sqrt(1 - beta_2^t)`.
    epsilon: f32,
    lr: f32,
    /// The first step: the moments start from the gradient alone (burn does not add a zero).
    first: bool,
}

simd_fn! {
    /// One chunk: `m` and `v` updated in place from the gradient `g`, which becomes the updated
    /// parameter `p - step * lr`. Each float operation is IEEE-rounded whatever the vector
    /// width (Rust does not fuse a multiply and an add), so every width gives the same bits.
    fn update(k: &Coefficients, p: &[f32], g: &mut [f32], m: &mut [f32], v: &mut [f32]) =
        update_portable;
}

#[inline(always)]
fn update_portable(k: &Coefficients, p: &[f32], g: &mut [f32], m: &mut [f32], v: &mut [f32]) {
    assert_eq!(p.len(), g.len());
    for (((g, m), v), p) in g.iter_mut().zip(m).zip(v).zip(p) {
        // burn: moment_1.mul_scalar(b1).add(grad.mul_scalar(1 - b1)), and so on.
        let m1 = if k.first {
            *g * k.rest_1
        } else {
            *m * k.beta_1 + *g * k.rest_1
        };
        let v1 = if k.first {
            (*g * *g) * k.rest_2
        } else {
            *v * k.beta_2 + (*g * *g) * k.rest_2
        };
        let step = (m1 * k.combined) / (v1.sqrt() + k.epsilon);
        // burn: tensor.sub(step.mul_scalar(lr)).
        *g = *p - step * k.lr;
        *m = m1;
        *v = v1;
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        // AMSGrad's extra moment, or a state that does not fit the parameter (a checkpoint of
        // another model), goes to burn's Adam, which handles or reports it.
        let unusual = state.as_ref().is_some_and(|s| {
            let m = &s.momentum;
            m.max_moment_2.is_some()
                || m.moment_1.shape() != tensor.shape()
                || m.moment_2.shape() != tensor.shape()
                || !fusable(&m.moment_1)
                || !fusable(&m.moment_2)
        });
        if unusual || !fusable(&tensor) || !fusable(&grad) || grad.shape() != tensor.shape() {
            return self.fallback.step(lr, tensor, grad, state);
        }
        let device = tensor.device();
        let shape = tensor.shape();
        let time = state.as_ref().map_or(1, |s| s.momentum.time + 1);
        let mut g = grad.into_data();
        let (mut m, mut v) = match state {
            Some(s) => (
                s.momentum.moment_1.into_data(),
                s.momentum.moment_2.into_data(),
            ),
            None => (
                TensorData::zeros::<f32, _>(shape.clone()),
                TensorData::zeros::<f32, _>(shape.clone()),
            ),
        };
        let bias_correction2_sqrt = (1.0 - self.beta_2.powi(time as i32)).sqrt();
        let k = Coefficients {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            rest_1: 1.0 - self.beta_1,
            rest_2: 1.0 - self.beta_2,
            combined: bias_correction2_sqrt / (1.0 - self.beta_1.powi(time as i32)),
            epsilon: self.epsilon * bias_correction2_sqrt,
            lr: lr as f32,
            first: time == 1,
        };
        // The parameter, read in place (burn-train's learner holds it too, so moving it out
        // would copy it).
        let param = Floats::<Flex>::new(flex_float(tensor));
        let ps = param.as_slice();
        let (gs, ms, vs) = (floats(&mut g), floats(&mut m), floats(&mut v));
        if gs.len() >= PARALLEL_ELEMENTS {
            gs.par_chunks_mut(CHUNK)
                .zip(ms.par_chunks_mut(CHUNK))
                .zip(vs.par_chunks_mut(CHUNK))
                .zip(ps.par_chunks(CHUNK))
                .for_each(|(((g, m), v), p)| update(&k, p, g, m, v));
        } else {
            update(&k, ps, gs, ms, vs);
        }
        let tensor_of = |data: TensorData| Tensor::<D>::from_data(data, &device);
        let momentum = AdaptiveMomentumState::new(time, tensor_of(m), tensor_of(v));
        // The gradient's buffer now holds the updated parameter.
        (tensor_of(g), Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        <Adam as Optimizer>::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::nn::Linear;
    use burn::optim::GradientsParams;

    /// Trains the same linear layer with burn's Adam and with the fused one and returns the
    /// weights after each step, as bits.
    fn train(device: &Device, fused: bool, steps: usize, width: usize) -> Vec<Vec<u32>> {
        let init = Tensor::<2>::from_data(
            TensorData::new(
                (0..width * width)
                    .map(|i| ((i * 37 % 101) as f32 - 50.0) / 97.0)
                    .collect::<Vec<_>>(),
                [width, width],
            ),
            device,
        );
        let mut layer = Linear {
            weight: Param::from_tensor(init),
            bias: Some(Param::from_tensor(Tensor::<1>::full([width], 0.1, device))),
        };
        let mut optim = if fused {
            FusedAdam::new(0.9, 0.999, 1e-7).init()
        } else {
            AdamConfig::new().with_epsilon(1e-7).init()
        };
        let x = Tensor::<2>::from_data(
            TensorData::new(
                (0..4 * width)
                    .map(|i| ((i * 13 % 29) as f32 - 14.0) / 7.0)
                    .collect::<Vec<_>>(),
                [4, width],
            ),
            device,
        );
        let mut out = Vec::new();
        for _ in 0..steps {
            let loss = layer.forward(x.clone()).powf_scalar(2.0).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &layer);
            layer = optim.step(1e-2, layer, grads);
            let bits = layer
                .weight
                .val()
                .into_data()
                .try_into_vec::<f32>()
                .unwrap()
                .iter()
                .map(|w| w.to_bits())
                .collect();
            out.push(bits);
        }
        out
    }

    fn same_as_burn(device: Device, width: usize) {
        let fused = train(&device, true, 5, width);
        let reference = train(&device, false, 5, width);
        assert_ne!(fused[0], fused[4], "the weights move");
        for (step, (a, b)) in fused.iter().zip(&reference).enumerate() {
            let differing = a.iter().zip(b).filter(|(a, b)| a != b).count();
            let ulps = a.iter().zip(b).map(|(a, b)| a.abs_diff(*b)).max();
            assert_eq!(
                differing, 0,
                "step {step}: {differing} weights differ, by up to {ulps:?} ulps"
            );
        }
    }

    #[test]
    fn fused_adam_is_bit_identical_to_burns_adam_on_flex() {
        same_as_burn(Device::flex().autodiff(), 24);
    }

    #[test]
    fn ndarray_gets_burns_adam() {
        #[allow(deprecated)]
        same_as_burn(Device::ndarray().autodiff(), 24);
    }

    /// A parameter above the parallel threshold takes the multi-threaded path: still exact.
    #[test]
    fn fused_adam_splits_large_parameters_exactly() {
        same_as_burn(Device::flex().autodiff(), 520);
    }
}
