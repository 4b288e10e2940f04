//! IMDB batches for burn's `DataLoader`: a dataset of review indices, and a batcher that turns
//! them into token ids, labels and (in training) a dropout keep-mask from attnx's own
//! generator.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderIterator};
use burn::prelude::*;
use rand::RngExt;

use crate::data::prepare::{Batchable, ImdbData};
use crate::rng::{self, Stream};

/// One batch of reviews.
#[derive(Debug, Clone)]
pub struct ImdbBatch {
    /// Token ids `[B, T]`.
    pub ids: Tensor<2, Int>,
    /// Labels (0 negative, 1 positive), for the loss.
    pub labels: Vec<u8>,
    /// The same labels as a tensor `[B]`, for burn's metrics.
    pub targets: Tensor<1, Int>,
    /// Dropout keep-mask `[B, pooled width]`, scaled by 1/keep; `None` at evaluation.
    pub keep_mask: Option<Tensor<2>>,
}

/// Dropout as attnx draws it: batch `n` of a repeat has its own generator, so that a resumed
/// repeat draws exactly the masks an uninterrupted one would (burn's dropout draws from one
/// process-wide generator, which parallel repeats would share).
#[derive(Debug)]
pub struct DropoutMasks {
    pub rate: f64,
    pub width: usize,
    pub seed: u64,
    /// Training batches drawn so far (a resumed repeat starts past the finished epochs).
    pub batches: AtomicU64,
}

impl DropoutMasks {
    fn next(&self, rows: usize, device: &Device) -> Tensor<2> {
        let n = self.batches.fetch_add(1, Ordering::Relaxed);
        let mut rng = rng::rng_numbered(self.seed, Stream::Dropout, n);
        let keep = 1.0 - self.rate;
        let scale = (1.0 / keep) as f32;
        let mask: Vec<f32> = (0..rows * self.width)
            .map(|_| {
                if rng.random::<f64>() < keep {
                    scale
                } else {
                    0.0
                }
            })
            .collect();
        Tensor::from_data(TensorData::new(mask, [rows, self.width]), device)
    }
}

/// Which of the data's two splits a batcher reads (a validation split is training reviews).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Train,
    Test,
}

/// Turns review indices of one split into batches.
pub struct ImdbBatcher {
    pub data: Arc<ImdbData>,
    pub part: Part,
    /// Training: dropout masks. Evaluation: `None`.
    pub dropout: Option<Arc<DropoutMasks>>,
}

impl ImdbBatcher {
    /// Batches of `part` for evaluation, without dropout.
    pub fn evaluation(data: Arc<ImdbData>, part: Part) -> Self {
        Self {
            data,
            part,
            dropout: None,
        }
    }

    fn split(&self) -> &Batchable {
        match self.part {
            Part::Train => &self.data.train,
            Part::Test => &self.data.test,
        }
    }
}

impl Batcher<usize, ImdbBatch> for ImdbBatcher {
    fn batch(&self, rows: Vec<usize>, device: &Device) -> ImdbBatch {
        let split = self.split();
        let t = split.maxlen;
        let mut ids = Vec::with_capacity(rows.len() * t);
        for &row in &rows {
            ids.extend(
                split.ids[row * t..(row + 1) * t]
                    .iter()
                    .map(|&id| i64::from(id)),
            );
        }
        let labels: Vec<u8> = rows.iter().map(|&r| split.labels[r]).collect();
        let targets: Vec<i64> = labels.iter().map(|&l| i64::from(l)).collect();
        ImdbBatch {
            ids: Tensor::from_data(TensorData::new(ids, [rows.len(), t]), device),
            targets: Tensor::from_data(TensorData::new(targets, [rows.len()]), device),
            labels,
            keep_mask: self
                .dropout
                .as_ref()
                .filter(|d| d.rate > 0.0)
                .map(|d| d.next(rows.len(), device)),
        }
    }
}

/// A training loader resumed after `epochs` finished epochs: burn's loader draws a fresh
/// shuffle from its generator at every epoch, so the finished epochs' shuffles are drawn (and
/// dropped) again to bring the generator where an uninterrupted run has it.
pub struct ResumedLoader<B> {
    pub inner: Arc<dyn DataLoader<B>>,
    pub epochs: usize,
}

impl<B: Send + 'static> DataLoader<B> for ResumedLoader<B> {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<B> + 'a> {
        self.inner.iter()
    }

    fn num_items(&self) -> usize {
        self.inner.num_items()
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<B>> {
        // burn-train moves the loader to the training device once, forking its generator;
        // the replay must happen on that copy.
        let moved = self.inner.to_device(device);
        for _ in 0..self.epochs {
            drop(moved.iter());
        }
        moved
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<B>> {
        self.inner.slice(start, end)
    }
}
