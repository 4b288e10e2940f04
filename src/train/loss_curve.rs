//! The recorded training-loss curve: the mean loss over each window of [`LOSS_WINDOW`] steps,
//! kept for every repeat a loop trains (one for IMDB, a stack for the echo task).

use serde::{Deserialize, Serialize};

/// Steps per point of the recorded loss curve.
pub const LOSS_WINDOW: usize = 100;

/// Accumulates one loss per repeat per step into windowed means. Serializable, so that a
/// checkpoint taken mid-window resumes to the same curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossWindows {
    curves: Vec<Vec<f32>>,
    sums: Vec<f64>,
    /// Steps in the open window.
    open: usize,
}

impl LossWindows {
    pub fn new(repeats: usize) -> Self {
        LossWindows {
            curves: vec![Vec::new(); repeats],
            sums: vec![0.0; repeats],
            open: 0,
        }
    }

    /// Adds one step's loss of each repeat; a full window becomes a point of each curve.
    pub fn push(&mut self, losses: &[f32]) {
        debug_assert_eq!(losses.len(), self.sums.len());
        for (sum, &loss) in self.sums.iter_mut().zip(losses) {
            *sum += f64::from(loss);
        }
        self.open += 1;
        if self.open == LOSS_WINDOW {
            self.close_window();
        }
    }

    fn close_window(&mut self) {
        for (curve, sum) in self.curves.iter_mut().zip(self.sums.iter_mut()) {
            curve.push((*sum / self.open as f64) as f32);
            *sum = 0.0;
        }
        self.open = 0;
    }

    /// The curves, the last (shorter) window included.
    pub fn finish(mut self) -> Vec<Vec<f32>> {
        if self.open > 0 {
            self.close_window();
        }
        self.curves
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_average_their_steps_and_the_last_may_be_shorter() {
        let mut windows = LossWindows::new(2);
        for step in 0..LOSS_WINDOW + 3 {
            let x = step as f32;
            windows.push(&[x, 2.0 * x]);
        }
        let curves = windows.finish();
        let first = (0..LOSS_WINDOW).sum::<usize>() as f32 / LOSS_WINDOW as f32;
        let last = (LOSS_WINDOW..LOSS_WINDOW + 3).sum::<usize>() as f32 / 3.0;
        assert_eq!(
            curves,
            vec![vec![first, last], vec![2.0 * first, 2.0 * last]]
        );
        assert_eq!(LossWindows::new(1).finish(), vec![Vec::<f32>::new()]);
    }
}
