//! Progress reporting: indicatif bars on a terminal, plain lines otherwise, nothing if quiet.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bars,
    Lines,
    Quiet,
}

impl Mode {
    /// Bars when stderr is a terminal, plain lines when it is not (logs, CI).
    pub fn detect(quiet: bool) -> Self {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        }
    }
}

/// The progress of a whole run: an overall bar, one bar per running stack. A cheap handle:
/// clones share the bars (burn-train's renderer holds one).
#[derive(Clone)]
pub struct Progress {
    mode: Mode,
    multi: MultiProgress,
    /// Counts training steps summed over repeats, so that its ETA covers the whole run.
    overall: ProgressBar,
    repeats_total: usize,
    repeats_done: Arc<AtomicUsize>,
}

impl Progress {
    /// `total_repeat_steps`: the training steps of every repeat to run, added up.
    pub fn new(mode: Mode, total_repeats: usize, total_repeat_steps: usize) -> Self {
        let target = match mode {
            Mode::Bars => ProgressDrawTarget::stderr(),
            _ => ProgressDrawTarget::hidden(),
        };
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(total_repeat_steps as u64));
        overall.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:30}] {percent:>3}%  {msg}  {elapsed_precise} (ETA {eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        overall.set_prefix("total");
        overall.set_message(format!("0/{total_repeats} repeats"));
        overall.enable_steady_tick(Duration::from_millis(500));
        Self {
            mode,
            multi,
            overall,
            repeats_total: total_repeats,
            repeats_done: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A message that stays: above the bars, or a plain line on stderr.
    pub fn println(&self, message: &str) {
        match self.mode {
            Mode::Bars => {
                let _ = self.multi.println(message);
            }
            Mode::Lines => eprintln!("{message}"),
            Mode::Quiet => {}
        }
    }

    /// Progress of a stack of `repeats` repeats over `steps` training steps.
    pub fn stack(&self, label: String, steps: usize, repeats: usize) -> StackProgress {
        let bar = self.multi.add(ProgressBar::new(steps as u64));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:30}] {pos}/{len} steps  loss {msg:7}  (ETA {eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(label.clone());
        if self.mode == Mode::Lines {
            eprintln!("{label}: training ({steps} steps)");
        }
        StackProgress {
            progress: self.clone(),
            bar,
            label,
            steps,
            repeats,
            shown: AtomicUsize::new(0),
            reported_quarter: AtomicUsize::new(0),
        }
    }

    /// Marks `n` repeats as done.
    pub fn repeats_done(&self, n: usize) {
        let done = self.repeats_done.fetch_add(n, Ordering::Relaxed) + n;
        self.overall
            .set_message(format!("{done}/{} repeats", self.repeats_total));
    }

    pub fn finish(&self) {
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}

pub struct StackProgress {
    progress: Progress,
    bar: ProgressBar,
    label: String,
    steps: usize,
    repeats: usize,
    /// Steps already added to the overall bar.
    shown: AtomicUsize,
    reported_quarter: AtomicUsize,
}

impl StackProgress {
    /// Called after every training step with the mean loss of that step.
    pub fn step(&self, done: usize, loss: f32) {
        match self.progress.mode {
            Mode::Bars => {
                // Drawing is rate-limited by indicatif; formatting the loss is not, so thin it.
                if done.is_multiple_of(10) || done == self.steps {
                    self.bar.set_position(done as u64);
                    self.bar.set_message(format!("{loss:.4}"));
                    let new = done - self.shown.swap(done, Ordering::Relaxed);
                    self.progress.overall.inc((new * self.repeats) as u64);
                }
            }
            Mode::Lines => {
                let quarter = 4 * done / self.steps.max(1);
                if quarter > self.reported_quarter.load(Ordering::Relaxed) && quarter < 4 {
                    self.reported_quarter.store(quarter, Ordering::Relaxed);
                    eprintln!("{}: step {done}/{} loss {loss:.4}", self.label, self.steps);
                }
            }
            Mode::Quiet => {}
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
        self.progress.multi.remove(&self.bar);
    }
}
