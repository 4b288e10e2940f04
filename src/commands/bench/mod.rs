//! `attnx bench`: training speed measured side by side in one run, so that the ratios are fair.
//! The echo models (E1, batch 1) by default; the IMDB configs (E2/E3/E4) with `--imdb`.

mod against;
mod attention;
mod echo;
mod imdb;
mod load;
pub mod peak;

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::config::Backend;
use crate::error::InputError;
use crate::report::format_p;
use crate::stats::{SignedRank, ratio};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Timed training steps per case (after a short warm-up).
    #[arg(long, default_value_t = 300)]
    pub steps: usize,
    /// Backends to measure.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Backend::Ndarray, Backend::Flex])]
    pub backends: Vec<Backend>,
    /// Echo configs to measure (names in configs/ or paths: E1's `baseline` and `attention`,
    /// E4's `attention_dot`, `attention_general`, `attention_cosine`, `attention_hard`, ...).
    #[arg(long, value_delimiter = ',', default_values_t = ["baseline".to_string(), "attention".to_string()])]
    pub models: Vec<String>,
    /// Stack sizes (echo): how many repeats train together as one stacked model.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 10])]
    pub stacks: Vec<usize>,
    /// Measure these IMDB configs instead of the echo models (names in configs/ or paths;
    /// without a value: imdb, imdb_pe, imdb_single, imdb_lstm_attention): ms per training step
    /// and seconds per epoch, through the real training loop. `--steps` counts batches.
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    pub imdb: Option<Vec<String>>,
    /// Test reviews evaluated per IMDB case (the full pass is extrapolated from them).
    #[arg(long, default_value_t = 5000)]
    pub test_reviews: usize,
    /// Measure how long these classifier configs' data takes to prepare, and the memory it
    /// takes, instead of training speed (no peak measured).
    #[arg(long, value_delimiter = ',', value_name = "CONFIG")]
    pub load: Option<Vec<String>>,
    /// The IMDB data (an aclImdb archive or folder); else $ATTNX_DATA or the cache.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Time the same cases with this binary and another attnx build (0.9 or later), in
    /// alternating rounds, and compare them case by case: ratio with its interval, Wilcoxon's
    /// signed-rank test, and each run's peak before and after.
    #[arg(long, value_name = "OTHER_ATTNX")]
    pub against: Option<PathBuf>,
    /// Time the self-attention kernel alone, called as these configs' training steps call it
    /// (names in configs/ or paths; without a value: imdb_pe, imdb_single): a batch's attention
    /// keeping the weights for the backward pass against recomputing them, in alternating
    /// rounds, and the forward pass alone. `--steps` counts batches per way and round.
    #[arg(long, value_delimiter = ',', num_args = 0.., value_name = "CONFIG", conflicts_with_all = ["imdb", "load"])]
    pub attention: Option<Vec<String>>,
    /// Rounds of `--against` (each runs both binaries once) or of `--attention`; 6 or more can
    /// reach 5% [default: 6]. With both, the rounds of `--against`; each build then times the
    /// attention in 6 rounds of its own (the other build needs `--attention`: 0.12.1 or later).
    #[arg(long)]
    pub rounds: Option<usize>,
}

/// The measured rows, printed as they come (stderr) and as one table at the end, with a note
/// on the columns.
struct Results {
    header: &'static [&'static str],
    rows: Vec<Vec<String>>,
}

impl Results {
    fn new(header: &'static [&'static str]) -> Self {
        Self {
            header,
            rows: Vec::new(),
        }
    }

    fn push(&mut self, row: Vec<String>) {
        eprintln!("{}", row.join("  "));
        self.rows.push(row);
    }

    fn print(&self, note: &str) {
        println!();
        print!("{}", crate::report::table(self.header, &self.rows));
        println!("\n{note}");
    }
}

/// The machine's peak: GFLOP/s of a large matrix product on one core and on all of them,
/// measured before the cases (what the shares of peak are against) and again after them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Peak {
    pub one_core: f64,
    pub all_cores: f64,
    pub cores: usize,
}

/// How `this` compares with `other`, times of the same rounds (`this_name` names `this` in
/// the verdict): the other's time over this one's, the geometric mean of the rounds' ratios
/// with its 95% interval; Wilcoxon's signed-rank test of the paired differences; the verdict.
fn compared(this: &[f64], other: &[f64], this_name: &str) -> [String; 3] {
    let differences: Vec<f64> = other.iter().zip(this).map(|(b, a)| b - a).collect();
    let test = SignedRank::test(&differences);
    let (r, ci) = ratio(this, other).unwrap_or((f64::NAN, None));
    let verdict = match test {
        Some(t) if t.p < crate::stats::ALPHA && r > 1.0 => {
            format!("{this_name} is faster ({r:.2}x)")
        }
        Some(t) if t.p < crate::stats::ALPHA && r < 1.0 => {
            format!("{this_name} is slower ({:.2}x)", 1.0 / r)
        }
        _ => "no difference detected".into(),
    };
    [
        match ci {
            Some((lo, hi)) => format!("{r:.3} ({lo:.3} to {hi:.3})"),
            None => format!("{r:.3}"),
        },
        test.map_or("-".into(), |t| format!("{}, n = {}", format_p(t.p), t.n)),
        verdict,
    ]
}

/// What a bench run times, its configs checked before anything runs.
enum Cases {
    Attention(Vec<(String, crate::kernels::attention::Geometry)>),
    Imdb(Vec<(crate::config::ExperimentConfig, crate::config::ImdbTask)>),
    Echo,
}

/// Warns that `rounds` pairs are too few for Wilcoxon's test to reach 5%.
fn warn_if_undecidable(rounds: usize) {
    if rounds < against::LEAST_DECISIVE_ROUNDS {
        eprintln!(
            "warning: with {rounds} rounds Wilcoxon's test cannot reach 5%; {} rounds can",
            against::LEAST_DECISIVE_ROUNDS
        );
    }
}

pub fn run(args: &BenchArgs) -> Result<()> {
    // Every option is checked before anything runs (with --against, before the other build
    // is started).
    if args.rounds.is_some() && args.against.is_none() && args.attention.is_none() {
        return Err(
            InputError("--rounds counts the rounds of --against or --attention".into()).into(),
        );
    }
    let rounds = args.rounds.unwrap_or(against::LEAST_DECISIVE_ROUNDS);
    if rounds < 2 {
        return Err(InputError(format!(
            "--rounds {rounds}: at least 2 rounds are needed for an interval"
        ))
        .into());
    }
    if let Some(configs) = &args.load {
        return load::run(configs, args.data.as_deref());
    }
    let cases = match (&args.attention, &args.imdb) {
        (Some(_), _) if args.steps == 0 => {
            return Err(InputError(
                "--steps 0: --attention times at least one batch per way and round".into(),
            )
            .into());
        }
        (Some(configs), _) => Cases::Attention(attention::geometries(configs)?),
        (None, Some(names)) => Cases::Imdb(imdb::configs(args, names)?),
        (None, None) => {
            echo::check(args)?;
            Cases::Echo
        }
    };
    if let Some(other) = &args.against {
        return against::run(other, rounds);
    }
    let cores = super::default_jobs();
    eprintln!(
        "measuring the peak: a {0}x{0} f32 matrix product through gemm",
        peak::SIDE
    );
    let before = peak::measure(cores);
    println!(
        "peak (large f32 matrix products, gemm): {:.1} GFLOP/s on one core, {:.1} GFLOP/s on \
         {cores} cores; SIMD level {}",
        before.one_core,
        before.all_cores,
        crate::machine::simd_level()
    );
    println!("peak kernels: {}", peak::kernels());
    match cases {
        Cases::Attention(geometries) => {
            warn_if_undecidable(rounds);
            attention::run(geometries, args.steps, rounds)?
        }
        Cases::Imdb(configs) => imdb::run(args, configs, &before)?,
        Cases::Echo => echo::run(args, &before)?,
    }
    // A host shared with other work runs everything slower while it is busy, the peak too:
    // measured again, it tells whether the cases ran on the machine the first one measured.
    eprintln!("measuring the peak again");
    let after = peak::measure(cores);
    println!(
        "peak after the cases: {:.1} GFLOP/s on one core, {:.1} GFLOP/s on {cores} cores",
        after.one_core, after.all_cores
    );
    if let Some(warning) = peak::busy_host(&before, &after) {
        eprintln!("warning: {warning}");
    }
    Ok(())
}
