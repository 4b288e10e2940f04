//! `attnx bench --against OTHER_ATTNX`: the same cases timed by this binary and another build,
//! in alternating rounds (this first in odd rounds, the other first in even ones, so that a
//! drift of the machine falls on both), each run a process of its own. Per case: both times per
//! round, the ratio with its 95% interval and Wilcoxon's signed-rank test of the pairs; per run:
//! the peak measured before and after its cases, so that a busy host shows.
//!
//! The other build is read from what `attnx bench` prints (the table and the peak lines), which
//! attnx 0.9 and later print alike: an older build is compared as it is.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::{Peak, Results, compared, peak};
use crate::error::InputError;
use crate::stats::median;

/// The rounds below which Wilcoxon's test cannot reach 5% (six pairs all one way: p = 0.031).
pub const LEAST_DECISIVE_ROUNDS: usize = 6;

/// What one `attnx bench` run printed.
#[derive(Debug, Clone, PartialEq)]
pub struct Printed {
    pub before: Peak,
    pub after: Peak,
    /// Per case (its key columns joined), the timed columns' values.
    pub cases: Vec<(String, Vec<(String, f64)>)>,
}

/// One round: what each binary printed, and which ran first.
struct Round {
    this: Printed,
    other: Printed,
    this_first: bool,
}

impl Round {
    /// The peaks measured first and last in the round.
    fn first_and_last(&self) -> (&Peak, &Peak) {
        if self.this_first {
            (&self.this.before, &self.other.after)
        } else {
            (&self.other.before, &self.this.after)
        }
    }
}

/// The columns compared: an IMDB table's epoch times, the attention kernel's times, an echo
/// table's step time.
fn timed_columns(header: &[&str]) -> Vec<String> {
    let columns: &[&str] = if header.contains(&"s/epoch") {
        &["s/train epoch", "s/test pass", "s/epoch"]
    } else if header.contains(&"ms/step recomputing") {
        &["ms/step", "ms/step recomputing", "ms/eval batch"]
    } else {
        &["ms/step"]
    };
    columns.iter().map(|c| c.to_string()).collect()
}

/// "X GFLOP/s on one core, Y GFLOP/s on N cores" in `line`.
fn peak_of(line: &str) -> Option<Peak> {
    let numbers: Vec<f64> = line
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == ':')
        .filter_map(|w| w.parse::<f64>().ok())
        .collect();
    // One core's GFLOP/s, all cores' GFLOP/s, the cores.
    let [one_core, all_cores, cores, ..] = numbers[..] else {
        return None;
    };
    Some(Peak {
        one_core,
        all_cores,
        cores: cores as usize,
    })
}

/// Reads `attnx bench`'s standard output; `who` names the binary in errors.
pub fn parse(who: &str, stdout: &str) -> Result<Printed, String> {
    let mut lines = stdout.lines();
    let peak_line = |prefix: &str, lines: &mut std::str::Lines| {
        lines
            .by_ref()
            .find(|l| l.starts_with(prefix))
            .and_then(peak_of)
            .ok_or_else(|| format!("{who}: its bench output has no \"{prefix}...\" line"))
    };
    let before = peak_line("peak (", &mut lines)?;
    let header_line = lines
        .by_ref()
        .find(|l| l.contains("ms/step"))
        .ok_or_else(|| format!("{who}: its bench output has no table with ms/step"))?;
    let split = |l: &str| -> Vec<String> {
        l.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    };
    let header = split(header_line);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let keys = header.iter().position(|h| *h == "ms/step").unwrap_or(1);
    let timed = timed_columns(&header);
    let mut cases = Vec::new();
    for line in lines.by_ref().take_while(|l| !l.trim().is_empty()) {
        let cells = split(line);
        if cells.len() != header.len() {
            return Err(format!(
                "{who}: a row of its table does not fit the header: {line}"
            ));
        }
        let values = timed
            .iter()
            .map(|column| {
                let i = header
                    .iter()
                    .position(|h| h == column)
                    .expect("a timed column");
                cells[i]
                    .parse::<f64>()
                    .map(|v| (column.clone(), v))
                    .map_err(|_| format!("{who}: {column} is not a number: {}", cells[i]))
            })
            .collect::<Result<Vec<_>, _>>()?;
        cases.push((cells[..keys].join(" "), values));
    }
    if cases.is_empty() {
        return Err(format!("{who}: its bench table has no rows"));
    }
    let after = peak_line("peak after the cases", &mut lines)?;
    Ok(Printed {
        before,
        after,
        cases,
    })
}

/// The arguments this process was given, less `--against` and `--rounds`: the same cases for
/// both binaries.
fn case_arguments() -> Vec<OsString> {
    let mut out = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        if text == "--against" || text == "--rounds" {
            args.next();
        } else if !(text.starts_with("--against=") || text.starts_with("--rounds=")) {
            out.push(arg);
        }
    }
    out
}

/// Runs `binary` with `arguments` and reads what it printed.
fn run_once(binary: &Path, arguments: &[OsString], who: &str) -> Result<Printed> {
    let output = Command::new(binary)
        .args(arguments)
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        bail!(
            "{who} ({}) failed: {}",
            binary.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        );
    }
    parse(who, &stdout).map_err(|e| anyhow::anyhow!(e))
}

/// The version line `binary --version` prints, or its path.
fn describe(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .map_or_else(
            || binary.display().to_string(),
            |v| format!("{v} ({})", binary.display()),
        )
}

/// `attnx bench --against OTHER --rounds N` (at least 2 rounds, checked by the caller).
pub fn run(other: &Path, rounds: usize) -> Result<()> {
    if !other.is_file() {
        return Err(InputError(format!("--against {}: no such file", other.display())).into());
    }
    let this: PathBuf = std::env::current_exe().context("cannot find this binary")?;
    let arguments = case_arguments();
    println!("this:  {}", describe(&this));
    println!("other: {}", describe(other));
    println!(
        "{rounds} rounds, alternating (this first in odd rounds, the other in even ones), each \
         run a process of its own: attnx {}",
        arguments
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    super::warn_if_undecidable(rounds);
    // (this, other) per round.
    let mut runs: Vec<Round> = Vec::new();
    for round in 1..=rounds {
        let this_first = round % 2 == 1;
        let time = |binary: &Path, who: &str| {
            eprintln!("round {round}/{rounds}: {who}");
            run_once(binary, &arguments, who)
        };
        let (this, other) = if this_first {
            let a = time(&this, "this")?;
            (a, time(other, "other")?)
        } else {
            let b = time(other, "other")?;
            (time(&this, "this")?, b)
        };
        runs.push(Round {
            this,
            other,
            this_first,
        });
    }
    let timed = paired(&runs)?;
    print_rounds(&runs, &timed);
    print_comparison(&timed);
    print_peaks(&runs);
    Ok(())
}

/// One timed column of one case: both binaries' values, a round each.
struct Timed {
    case: String,
    column: String,
    this: Vec<f64>,
    other: Vec<f64>,
}

/// Every (case, column) the first round's run of this binary timed, with both binaries' values
/// per round; an error, before anything is printed, when the other build did not time one.
fn paired(runs: &[Round]) -> Result<Vec<Timed>> {
    measured(runs)
        .into_iter()
        .map(|(case, column)| {
            let Some((this, other)) = series(runs, &case, &column) else {
                bail!("the other build did not time {case} ({column}): are the cases the same?");
            };
            Ok(Timed {
                case,
                column,
                this,
                other,
            })
        })
        .collect()
}

/// Each case's value of `column` per round, for this binary and the other.
fn series(runs: &[Round], case: &str, column: &str) -> Option<(Vec<f64>, Vec<f64>)> {
    let value = |p: &Printed| {
        p.cases
            .iter()
            .find(|(c, _)| c == case)?
            .1
            .iter()
            .find(|(col, _)| col == column)
            .map(|(_, v)| *v)
    };
    runs.iter()
        .map(|r| Some((value(&r.this)?, value(&r.other)?)))
        .collect::<Option<Vec<_>>>()
        .map(|pairs| pairs.into_iter().unzip())
}

/// The (case, column) pairs of the first round's run of this binary.
fn measured(runs: &[Round]) -> Vec<(String, String)> {
    runs[0]
        .this
        .cases
        .iter()
        .flat_map(|(case, values)| values.iter().map(|(col, _)| (case.clone(), col.clone())))
        .collect()
}

fn print_rounds(runs: &[Round], timed: &[Timed]) {
    let mut table = Results::new(&[
        "case",
        "time",
        "round",
        "first",
        "this",
        "other",
        "other/this",
    ]);
    for t in timed {
        for (i, ((a, b), round)) in t.this.iter().zip(&t.other).zip(runs).enumerate() {
            table.rows.push(vec![
                t.case.clone(),
                t.column.clone(),
                (i + 1).to_string(),
                if round.this_first { "this" } else { "other" }.into(),
                format!("{a:.3}"),
                format!("{b:.3}"),
                format!("{:.3}", b / a),
            ]);
        }
    }
    table.print("Each round: both binaries' times of each case, in the unit the column names.");
}

fn print_comparison(timed: &[Timed]) {
    let mut table = Results::new(&[
        "case",
        "time",
        "this (median)",
        "other (median)",
        "other/this (95% CI)",
        "Wilcoxon",
        "verdict",
    ]);
    for Timed {
        case,
        column,
        this,
        other,
    } in timed
    {
        table.rows.push(
            [
                case.clone(),
                column.clone(),
                format!("{:.3}", median(this).unwrap_or(f64::NAN)),
                format!("{:.3}", median(other).unwrap_or(f64::NAN)),
            ]
            .into_iter()
            .chain(compared(this, other, "this"))
            .collect(),
        );
    }
    table.print(
        "other/this: how many times as long the other build took, the geometric mean of the \
         rounds' ratios with its 95% interval (t on the log ratios); above 1, this binary is \
         faster. Wilcoxon: the signed-rank test of the rounds' paired differences, two-sided; \
         a verdict needs p < 0.05.",
    );
}

fn print_peaks(runs: &[Round]) {
    let mut table = Results::new(&["round", "binary", "peak before", "peak after"]);
    let mut warnings = Vec::new();
    let shown = |p: &Peak| format!("{:.1} / {:.1}", p.one_core, p.all_cores);
    for (i, round) in runs.iter().enumerate() {
        for (who, run) in [("this", &round.this), ("other", &round.other)] {
            table.rows.push(vec![
                (i + 1).to_string(),
                who.into(),
                shown(&run.before),
                shown(&run.after),
            ]);
            if let Some(warning) = peak::busy_host(&run.before, &run.after) {
                warnings.push(format!("round {}, {who}: {warning}", i + 1));
            }
        }
    }
    let (first, _) = runs[0].first_and_last();
    let (_, last) = runs[runs.len() - 1].first_and_last();
    if let Some(warning) = peak::busy_host(first, last) {
        warnings.push(format!("from the first run to the last: {warning}"));
    }
    table.print(
        "peak: GFLOP/s of a large f32 product on one core / on all cores, measured by each run \
         before and after its cases.",
    );
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What attnx 0.9.3 printed for `bench --models baseline --stacks 1 --steps 50` (stdout).
    const ECHO_093: &str = "peak (large f32 matrix products, gemm): 107.2 GFLOP/s on one core, 212.9 GFLOP/s on 2 cores; SIMD level avx2

model     backend  stack  ms/step  repeat-steps/s  vs first  s/E1 repeat  GFLOP/s  of 1-core peak  cores
baseline  ndarray      1     6.10             164     1.00x           30     4.12            3.8%   1.00
baseline  flex         1     4.02             249     1.52x           20     6.26            5.8%   1.00

repeat-steps/s: training steps per second summed over the stacked repeats.
peak after the cases: 106.9 GFLOP/s on one core, 213.5 GFLOP/s on 2 cores
";

    #[test]
    fn an_older_builds_bench_output_is_read() {
        let printed = parse("other", ECHO_093).unwrap();
        assert_eq!(printed.before.one_core, 107.2);
        assert_eq!(printed.before.all_cores, 212.9);
        assert_eq!(printed.before.cores, 2);
        assert_eq!(printed.after.one_core, 106.9);
        assert_eq!(
            printed.cases,
            vec![
                (
                    "baseline ndarray 1".to_string(),
                    vec![("ms/step".to_string(), 6.10)]
                ),
                (
                    "baseline flex 1".to_string(),
                    vec![("ms/step".to_string(), 4.02)]
                ),
            ]
        );
        let broken = ECHO_093.replace("4.02", "fast");
        assert!(
            parse("other", &broken)
                .unwrap_err()
                .contains("ms/step is not a number")
        );
        let no_table = parse(
            "other",
            "peak (x): 1 GFLOP/s on one core, 2 GFLOP/s on 2 cores\n",
        );
        assert!(no_table.unwrap_err().contains("no table"));
    }
}
