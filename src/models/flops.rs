//! The arithmetic of a training step, counted from a config's shapes: what `attnx bench` divides
//! by the time to report the speed reached against the machine's peak.
//!
//! Counted: the matrix products (2 floating-point operations per multiply-add), forward and
//! backward. A product `Y = X W` costs `2 m n k` forward and twice that backward (`dX = dY W^T`
//! and `dW = X^T dY`), so a step is three times its forward products, whatever the backward
//! recomputes (that is overhead, not work the step needs). An embedding's lookup and its
//! gradient are copies and sums; element-wise work (activations, softmax, Adam) is a few
//! operations per element, bound by memory, not arithmetic: neither is counted. The peak they
//! are set against is a large matrix product's, the most any of this could reach.

use crate::config::{
    EchoModel, EchoTask, ImdbTask, LstmModel, Pooling, Score, SelfAttentionModel, TextModel,
};

/// `2 m n k`: the floating-point operations of an `m x k` by `k x n` product.
fn product(m: usize, n: usize, k: usize) -> f64 {
    2.0 * (m * n * k) as f64
}

/// Forward and backward: three times the forward products.
fn step(forward: f64) -> f64 {
    3.0 * forward
}

/// The forward products of one echo sequence (batch 1).
fn echo_forward(task: &EchoTask, model: &EchoModel) -> f64 {
    let (t, v) = (task.n_in, task.cardinality);
    let h = model.hidden();
    let gates = 4 * h;
    // The encoder: every step's input projection, and the recurrent product from step 2 on.
    let encoder = product(t, gates, v) + product(t - 1, gates, h);
    match model {
        EchoModel::Baseline(_) => {
            // The decoder projects its one repeated input once, then recurs; a dense layer per
            // step.
            let decoder = product(1, gates, h) + product(t - 1, gates, h);
            encoder + decoder + product(t, v, h)
        }
        EchoModel::Attention(m) => {
            let u = h;
            let keys = match m.score {
                // `[U_a | W_s]` over every encoder state.
                Score::Additive => product(t, 2 * u, h),
                _ => product(t, u, h),
            };
            let query = match m.score {
                Score::Additive => u,
                Score::General => h,
                Score::Dot | Score::Cosine => 0,
            };
            // Per decoder step: the state's `[U_r | U_z | W_a | U_o]`, the scores and the
            // context over the encoder states, `[y; c]`'s kernels, and the proposal's `U_p`.
            let scores = match m.score {
                Score::Additive => product(t, 1, u),
                _ => product(t, 1, h),
            };
            let per_step = product(1, 2 * u + query + v, u)
                + scores
                + product(1, h, t)
                + product(1, 3 * u + v, v + h)
                + product(1, u, u);
            encoder + keys + t as f64 * per_step
        }
    }
}

/// Floating-point operations of one echo training step (one pair, forward and backward).
pub fn echo_step(task: &EchoTask, model: &EchoModel) -> f64 {
    step(echo_forward(task, model))
}

/// The forward products of a batch of `b` reviews.
fn imdb_forward(task: &ImdbTask, model: &TextModel, b: usize) -> f64 {
    let t = task.maxlen;
    match model {
        TextModel::SelfAttention(m) => self_attention_forward(m, b, t),
        TextModel::Lstm(m) => lstm_forward(m, b, t),
    }
}

fn self_attention_forward(m: &SelfAttentionModel, b: usize, t: usize) -> f64 {
    let width = m.heads * m.head_dim;
    let outputs = match m.output {
        crate::config::Output::Sigmoid => 1,
        crate::config::Output::Softmax => 2,
    };
    let mut total = 0.0;
    for layer in 0..m.layers {
        let input = if layer == 0 { m.embed } else { width };
        // Q, K, V, then per review and head `Q K^T` and `P V`.
        total += product(b * t, 3 * width, input)
            + (b * m.heads) as f64 * (product(t, t, m.head_dim) + product(t, m.head_dim, t));
    }
    total + product(b, outputs, width)
}

fn lstm_forward(m: &LstmModel, b: usize, t: usize) -> f64 {
    let (h, gates) = (m.hidden, 4 * m.hidden);
    let outputs = match m.output {
        crate::config::Output::Sigmoid => 1,
        crate::config::Output::Softmax => 2,
    };
    let recurrence = product(b * t, gates, m.embed) + (t - 1) as f64 * product(b, gates, h);
    let (pooling, pooled) = match m.pooling {
        Pooling::Last | Pooling::Mean => (0.0, h),
        // `H W` over every state, the scores against `h_T`, the context, `[c; h_T] W_c`.
        Pooling::Attention => {
            let u = m.units();
            (
                product(b * t, h, h)
                    + b as f64 * (product(t, 1, h) + product(1, h, t))
                    + product(b, u, 2 * h),
                u,
            )
        }
    };
    recurrence + pooling + product(b, outputs, pooled)
}

/// Floating-point operations of one IMDB training step (a batch, forward and backward).
pub fn imdb_step(task: &ImdbTask, model: &TextModel) -> f64 {
    step(imdb_forward(task, model, task.batch_size))
}

/// Floating-point operations of evaluating `reviews` test reviews (forward only).
pub fn imdb_evaluation(task: &ImdbTask, model: &TextModel, reviews: usize) -> f64 {
    imdb_forward(task, model, reviews)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(json: &str) -> T {
        serde_json::from_str(json).unwrap()
    }

    /// E2's step by hand: Q, K, V of 32 x 80 rows (2 x 2560 x 384 x 128 = 251.7 M), the two
    /// per-head products (2 x 80 x 80 x 16 x 256 each = 52.4 M), the output (8 k): 356.5 M
    /// forward, 1.07 G a step, 0.84 T an epoch of 782 batches.
    #[test]
    fn e2s_step_counted_by_hand() {
        let task: ImdbTask = parse("{}");
        let model = TextModel::SelfAttention(parse(r#"{"position": "sinusoidal"}"#));
        let forward = 2.0 * 2560.0 * 384.0 * 128.0
            + 2.0 * (2.0 * 80.0 * 80.0 * 16.0 * 256.0)
            + 2.0 * 32.0 * 128.0;
        assert_eq!(imdb_step(&task, &model), 3.0 * forward);
        let epoch = imdb_step(&task, &model) * 782.0;
        assert!((epoch / 1e12 - 0.836).abs() < 0.001, "{epoch:e}");
    }

    /// E1's baseline by hand (T = 5, V = 50, H = 150): the encoder 2 x 5 x 600 x 50 + 2 x 4 x
    /// 600 x 150, the decoder 2 x 600 x 150 + 2 x 4 x 600 x 150, the outputs 2 x 5 x 50 x 150.
    #[test]
    fn e1s_baseline_counted_by_hand() {
        let task: EchoTask = parse("{}");
        let model: EchoModel = parse(r#"{"kind": "baseline"}"#);
        let forward = 2.0 * 5.0 * 600.0 * 50.0
            + 2.0 * 4.0 * 600.0 * 150.0
            + 2.0 * 600.0 * 150.0
            + 2.0 * 4.0 * 600.0 * 150.0
            + 2.0 * 5.0 * 50.0 * 150.0;
        assert_eq!(echo_step(&task, &model), 3.0 * forward);
        let attention: EchoModel = parse(r#"{"kind": "attention"}"#);
        assert!(echo_step(&task, &attention) > echo_step(&task, &model));
    }
}
