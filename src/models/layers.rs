//! The layers both IMDB classifiers share: a Keras-initialised embedding, and the output head
//! (the dropout mask, then a Keras `Dense` to one sigmoid unit or a softmax unit per class).

use burn::module::Param;
use burn::nn::{Embedding, Linear};
use burn::prelude::*;
use rand::rngs::StdRng;

use crate::config::Output;
use crate::models::init::{glorot_uniform, uniform};

/// burn's `Embedding`, Keras-initialised: uniform in [-0.05, 0.05].
pub fn keras_embedding(
    rng: &mut StdRng,
    num_words: usize,
    width: usize,
    device: &Device,
) -> Embedding {
    Embedding {
        weight: Param::from_data(
            TensorData::new(uniform(rng, num_words * width, 0.05), [num_words, width]),
            device,
        ),
    }
}

/// A Keras `Dense` layer: glorot-uniform kernel, zero bias.
pub fn dense(rng: &mut StdRng, d_in: usize, d_out: usize, device: &Device) -> Linear {
    Linear {
        weight: Param::from_data(
            TensorData::new(glorot_uniform(rng, d_in, d_out), [d_in, d_out]),
            device,
        ),
        bias: Some(Param::from_data(
            TensorData::new(vec![0.0f32; d_out], [d_out]),
            device,
        )),
    }
}

/// The output layer for `output` on pooled vectors of `d_in`: one sigmoid unit (two classes),
/// or a softmax unit per class.
pub fn output_layer(
    rng: &mut StdRng,
    d_in: usize,
    output: Output,
    classes: usize,
    device: &Device,
) -> Linear {
    let units = match output {
        Output::Sigmoid => 1,
        Output::Softmax => classes,
    };
    dense(rng, d_in, units, device)
}

/// Logits from pooled vectors `[B, d]`: `keep_mask` (`[B, d]`, already scaled by 1/keep) is
/// the dropout mask, `None` at evaluation.
pub fn output_head(output: &Linear, pooled: Tensor<2>, keep_mask: Option<Tensor<2>>) -> Tensor<2> {
    let pooled = match keep_mask {
        Some(mask) => pooled * mask,
        None => pooled,
    };
    output.forward(pooled)
}
