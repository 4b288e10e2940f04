//! Results as tables and plots. This module: the terminal tables that `attnx run` and
//! `attnx compare` print and the comparison lines (difference, CI, Welch, Hedges' g) both
//! paths share; [`summary`]: `attnx report` over a whole results folder (Markdown, CSV,
//! JSON); [`plots`]: its SVG figures.

pub mod plots;
pub mod summary;

/// The file name of the heatmap `attnx attention` draws for a repeat, in the results' `plots/`.
pub fn heatmap_file(config: &str, repeat: usize) -> String {
    format!("{config}_attention_{repeat}.svg")
}

/// Whether `file` is a heatmap of `config` (of any repeat), as [`heatmap_file`] names them.
pub fn is_heatmap_of(file: &str, config: &str) -> bool {
    file.strip_prefix(config)
        .and_then(|rest| rest.strip_prefix("_attention_"))
        .and_then(|rest| rest.strip_suffix(".svg"))
        .is_some_and(|repeat| repeat.parse::<usize>().is_ok())
}

use std::fmt::Write;

use crate::record::{ConfigRecords, EpochMetrics, RepeatRecord};
use crate::stats::{Summary, Welch};

/// Left-aligns the first column, right-aligns the others (numbers).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    table_aligned(header, rows, &[0])
}

/// Left-aligns the columns `left` (text), right-aligns the others.
pub fn table_aligned(header: &[&str], rows: &[Vec<String>], left: &[usize]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate().take(columns) {
            let gap = if i == 0 { "" } else { "  " };
            if left.contains(&i) {
                let _ = write!(text, "{gap}{cell:<w$}", w = widths[i]);
            } else {
                let _ = write!(text, "{gap}{cell:>w$}", w = widths[i]);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    for row in rows {
        line(row);
    }
    out
}

/// Whole percentages (echo: 100 pairs) without decimals, others with two.
pub(crate) fn percent(a: f64) -> String {
    if a.fract() == 0.0 {
        format!("{a:.0}")
    } else {
        format!("{a:.2}")
    }
}

pub(crate) fn fixed(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |x| format!("{x:.2}"))
}

/// The accuracy table of one or more configs, every config compared with the first, and the
/// per-repeat values.
pub fn accuracy_report(results: &[ConfigRecords]) -> String {
    let mut rows = Vec::new();
    for r in results {
        let acc = r.accuracies();
        let s = Summary::of(&acc);
        rows.push(vec![
            r.config.name().to_string(),
            r.config.backend.to_string(),
            acc.len().to_string(),
            fixed(s.map(|s| s.mean)),
            fixed(s.and_then(|s| s.std)),
            fixed(s.map(|s| s.min)),
            fixed(s.map(|s| s.max)),
        ]);
    }
    let metric = match results.first().map(|r| r.config.study.is_imdb()) {
        Some(true) => "test accuracy after the last epoch (%)",
        _ => "exact-match accuracy (%)",
    };
    let mut out = format!("{metric}\n");
    out.push_str(&table(
        &["config", "backend", "n", "mean", "std", "min", "max"],
        &rows,
    ));

    if let [first, rest @ ..] = results
        && !rest.is_empty()
    {
        let others: Vec<(String, Vec<f64>)> = rest
            .iter()
            .map(|r| (r.config.name().to_string(), r.accuracies()))
            .collect();
        out.push('\n');
        for line in comparisons(first.config.name(), &first.accuracies(), &others) {
            out.push_str(&line);
            out.push('\n');
        }
    }

    for r in results {
        if let Some(table) = epoch_table(r) {
            out.push('\n');
            out.push_str(&table);
        }
    }

    out.push_str("\nper-repeat accuracy (%)\n");
    let width = results
        .iter()
        .map(|r| r.config.name().len())
        .max()
        .unwrap_or(0);
    for r in results {
        let values: Vec<String> = r.accuracies().iter().map(|&a| percent(a)).collect();
        let _ = writeln!(out, "{:<width$}  {}", r.config.name(), values.join(" "));
    }
    out
}

/// Mean over repeats of a per-epoch figure, per epoch (records of IMDB runs).
pub fn epoch_means(records: &[RepeatRecord], pick: fn(&EpochMetrics) -> f64) -> Vec<Summary> {
    let epochs = records.iter().map(|r| r.epochs.len()).max().unwrap_or(0);
    (0..epochs)
        .filter_map(|e| {
            let values: Vec<f64> = records
                .iter()
                .filter_map(|r| r.epochs.get(e).map(pick))
                .collect();
            Summary::of(&values)
        })
        .collect()
}

/// The epoch (1-based) with the best mean test accuracy, and that accuracy.
pub fn best_epoch(records: &[RepeatRecord]) -> Option<(usize, f64)> {
    epoch_means(records, |m| m.test_accuracy)
        .iter()
        .enumerate()
        .map(|(i, s)| (i + 1, s.mean))
        .reduce(|a, b| if b.1 > a.1 { b } else { a })
}

/// Mean train and test accuracy per epoch over a config's repeats, and the best epoch.
fn epoch_table(results: &ConfigRecords) -> Option<String> {
    let records = &results.records;
    let test = epoch_means(records, |m| m.test_accuracy);
    if test.is_empty() {
        return None;
    }
    let train = epoch_means(records, |m| m.train_accuracy);
    let loss = epoch_means(records, |m| m.test_loss);
    let seconds = epoch_means(records, |m| m.seconds);
    let rows: Vec<Vec<String>> = (0..test.len())
        .map(|e| {
            vec![
                (e + 1).to_string(),
                fixed(train.get(e).map(|s| s.mean)),
                fixed(Some(test[e].mean)),
                loss.get(e)
                    .map_or_else(|| "-".into(), |s| format!("{:.4}", s.mean)),
                fixed(seconds.get(e).map(|s| s.mean)),
            ]
        })
        .collect();
    let mut out = format!(
        "{}: per epoch, mean of {} repeat(s)\n",
        results.config.name(),
        records.len()
    );
    out.push_str(&table(
        &["epoch", "train acc %", "test acc %", "test loss", "seconds"],
        &rows,
    ));
    if let Some((epoch, acc)) = best_epoch(records) {
        let _ = writeln!(out, "best epoch: {epoch} ({acc:.2}%)");
    }
    Some(out)
}

/// Every config in `others` against `control`, one line each (see [`comparison`]). With more
/// than one comparison, each line adds its Holm-adjusted p-value: testing several variants
/// against one control at 5% each would find a "significant" difference by chance too often.
pub fn comparisons(control: &str, a: &[f64], others: &[(String, Vec<f64>)]) -> Vec<String> {
    let tests: Vec<Option<Welch>> = others.iter().map(|(_, b)| Welch::test(a, b)).collect();
    let tested: Vec<f64> = tests.iter().flatten().map(|w| w.p).collect();
    let mut adjusted = crate::stats::holm(&tested).into_iter();
    others
        .iter()
        .zip(&tests)
        .map(|((name, b), test)| {
            let line = comparison(control, a, name, b);
            match test {
                Some(_) if tested.len() > 1 => {
                    let p = adjusted.next().expect("one adjusted p per test");
                    let line = line.strip_suffix(')').unwrap_or(&line).to_string();
                    format!(
                        "{line}; Holm-adjusted over {} comparisons: {})",
                        tested.len(),
                        format_p(p)
                    )
                }
                _ => line,
            }
        })
        .collect()
}

/// `b - a` in points: the difference of means with its 95% CI, Welch's test and Hedges' g, or
/// why there is no interval.
pub fn comparison(name_a: &str, a: &[f64], name_b: &str, b: &[f64]) -> String {
    let head = format!("{name_b} - {name_a}");
    match Welch::test(a, b) {
        Some(w) => format!(
            "{head}: {:+.2} points (95% CI {:+.2} to {:+.2}; Welch t = {:.2}, df = {:.1}, {}; Hedges' g = {:.2})",
            w.difference,
            w.ci95.0,
            w.ci95.1,
            w.t,
            w.df,
            format_p(w.p),
            w.hedges_g
        ),
        None => {
            let diff = Summary::of(b)
                .zip(Summary::of(a))
                .map(|(sb, sa)| sb.mean - sa.mean);
            format!(
                "{head}: {} points (n too small, or no spread, for a confidence interval or test: {} and {} repeats)",
                diff.map_or("-".into(), |d| format!("{d:+.2}")),
                a.len(),
                b.len()
            )
        }
    }
}

/// `p = ...` to 4 decimals, in scientific notation below 0.001, or a bound where double
/// precision runs out.
pub fn format_p(p: f64) -> String {
    if p < 1e-12 {
        "p < 1e-12".to_string()
    } else if p < 1e-3 {
        format!("p = {p:.2e}")
    } else {
        format!("p = {p:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["config", "n"],
            &[
                vec!["attention".into(), "10".into()],
                vec!["b".into(), "2".into()],
            ],
        );
        assert_eq!(t, "config      n\nattention  10\nb           2\n");
    }

    /// Several variants against one control: each line carries its Holm-adjusted p-value; a
    /// single comparison carries none.
    #[test]
    fn comparisons_against_a_control_adjust_for_multiplicity() {
        let control = [99.0, 100.0, 98.0, 97.0, 100.0];
        let others = vec![
            ("close".to_string(), vec![98.0, 99.0, 97.0, 99.0, 100.0]),
            ("far".to_string(), vec![90.0, 88.0, 93.0, 85.0, 91.0]),
            ("one".to_string(), vec![50.0]),
        ];
        let lines = comparisons("control", &control, &others);
        assert_eq!(lines.len(), 3);
        let raw: Vec<f64> = others[..2]
            .iter()
            .map(|(_, b)| Welch::test(&control, b).unwrap().p)
            .collect();
        let adjusted = crate::stats::holm(&raw);
        for (line, p) in lines.iter().zip(&adjusted) {
            let want = format!("Holm-adjusted over 2 comparisons: {})", format_p(*p));
            assert!(line.ends_with(&want), "{line}");
        }
        assert!(lines[2].contains("n too small"), "{}", lines[2]);
        let single = comparisons("control", &control, &others[..1]);
        assert!(!single[0].contains("Holm"), "{}", single[0]);
    }

    #[test]
    fn heatmap_names_belong_to_their_config_only() {
        let file = heatmap_file("imdb_pe", 3);
        assert_eq!(file, "imdb_pe_attention_3.svg");
        assert!(is_heatmap_of(&file, "imdb_pe"));
        assert!(!is_heatmap_of(&file, "imdb"));
        assert!(!is_heatmap_of("imdb_pe_attention_x.svg", "imdb_pe"));
        assert!(!is_heatmap_of("e2_accuracy.svg", "e2"));
    }
}
