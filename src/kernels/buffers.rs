//! A backend tensor's f32s as a slice, for the kernels: borrowed from flex's or ndarray's own
//! buffer where it is contiguous, copied otherwise.

use burn::backend::Backend;
use burn::backend::tensor::FloatTensor;
use burn::prelude::*;
use burn::tensor::try_read_sync;

/// A tensor's values (flex hands its buffer over without a copy when nothing else holds it).
fn read<B: Backend>(tensor: FloatTensor<B>) -> TensorData {
    let data = try_read_sync(B::float_into_data(tensor))
        .expect("the CPU backends read synchronously")
        .expect("a CPU tensor reads back");
    data.convert::<f32>()
}

/// A tensor's f32 values as a slice: the backend's own buffer where it holds them contiguously
/// (no copy: the ops' inputs are parameters and checkpointed tensors that autodiff also holds,
/// so reading them out would copy every one, and burn-ndarray copies a shared array element by
/// element), else a copy.
pub enum Floats<B: Backend> {
    Borrowed(FloatTensor<B>),
    Copied(TensorData),
}

impl<B: Backend> Floats<B> {
    pub fn new(tensor: FloatTensor<B>) -> Self {
        if cpu_slice::<B>(&tensor).is_some() {
            Self::Borrowed(tensor)
        } else {
            Self::Copied(read::<B>(tensor))
        }
    }

    pub fn as_slice(&self) -> &[f32] {
        match self {
            Self::Borrowed(tensor) => cpu_slice::<B>(tensor).expect("checked in new"),
            Self::Copied(data) => data.as_slice::<f32>().expect("f32 data"),
        }
    }
}

/// The f32 slice of a contiguous flex or ndarray tensor; `None` for other backends and layouts.
fn cpu_slice<B: Backend>(tensor: &FloatTensor<B>) -> Option<&[f32]> {
    use burn::backend::{flex::FlexTensor, ndarray::NdArrayTensor};
    let any: &dyn std::any::Any = tensor;
    if let Some(tensor) = any.downcast_ref::<FlexTensor>() {
        return tensor.as_slice::<f32>();
    }
    match any.downcast_ref::<NdArrayTensor>()? {
        NdArrayTensor::F32(storage) => storage.view().to_slice(),
        _ => None,
    }
}
