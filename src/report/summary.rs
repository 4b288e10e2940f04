//! A config's summary row and table, and an IMDB config's per-epoch table: the report's
//! blocks built from a scan's groups.

use super::document::{Block, Row};
use super::scan::{Group, Status};
use super::table::fixed;
use crate::experiment::Published;
use crate::stats::Summary;

pub(super) fn row(experiment: &str, group: &Group, published: Option<&Published>) -> Row {
    let s = Summary::of(&group.accuracies());
    let best = group.best_epoch();
    // For IMDB the comparable number is the best epoch's test accuracy.
    let attnx = if group.is_imdb() {
        best.map(|b| b.1)
    } else {
        s.map(|s| s.mean)
    };
    let published = published.and_then(Published::headline);
    Row {
        experiment: experiment.to_string(),
        config: group.name.clone(),
        label: group.label(),
        config_hash: group.hash.clone(),
        status: match &group.status {
            Status::Current => "current".into(),
            Status::Changed(d) => format!("changed: {d}"),
            Status::NoConfig => "no config".into(),
        },
        attnx_versions: group.versions.iter().cloned().collect::<Vec<_>>().join(" "),
        backend: group.config.backend.to_string(),
        n: group.records.len(),
        mean: s.map(|s| s.mean),
        std: s.and_then(|s| s.std),
        ci95_low: s.and_then(|s| s.ci95).map(|c| c.0),
        ci95_high: s.and_then(|s| s.ci95).map(|c| c.1),
        min: s.map(|s| s.min),
        max: s.map(|s| s.max),
        published,
        difference: attnx.zip(published).map(|(a, p)| a - p),
        best_epoch: best.map(|b| b.0),
        best_epoch_accuracy: best.map(|b| b.1),
    }
}

fn ci(row: &Row) -> String {
    match (row.ci95_low, row.ci95_high) {
        (Some(lo), Some(hi)) => format!("{lo:.2} to {hi:.2}"),
        _ => "n too small".into(),
    }
}

pub(super) fn summary_table(rows: &[Row], imdb: bool, with_published: bool) -> Block {
    let mut header: Vec<String> = [
        "config", "backend", "n", "mean", "std", "95% CI", "min", "max",
    ]
    .map(String::from)
    .to_vec();
    if imdb {
        header.extend(["best epoch", "best acc"].map(String::from));
    }
    if with_published {
        header.extend(["published", "difference"].map(String::from));
    }
    let rows = rows
        .iter()
        .map(|r| {
            let mut cells = vec![
                r.label.clone(),
                r.backend.clone(),
                r.n.to_string(),
                fixed(r.mean),
                fixed(r.std),
                ci(r),
                fixed(r.min),
                fixed(r.max),
            ];
            if imdb {
                cells.push(r.best_epoch.map_or("-".into(), |e| e.to_string()));
                cells.push(fixed(r.best_epoch_accuracy));
            }
            if with_published {
                cells.push(fixed(r.published));
                cells.push(r.difference.map_or("-".into(), |d| format!("{d:+.2}")));
            }
            cells
        })
        .collect();
    Block::Table { header, rows }
}

/// Macro-F1 per config, for text tasks of more than two classes (`None` when no group has
/// any).
pub(super) fn classes_block(groups: &[&Group]) -> Option<Block> {
    let rows: Vec<Vec<String>> = groups
        .iter()
        .filter_map(|g| {
            let (labels, _) = g.summed_confusion()?;
            let f1 = g.macro_f1s();
            let s = Summary::of(&f1)?;
            (labels.len() > 2).then(|| {
                vec![
                    g.label(),
                    labels.len().to_string(),
                    f1.len().to_string(),
                    fixed(Some(s.mean)),
                    fixed(s.std),
                    s.ci95.map_or("n too small".into(), |(lo, hi)| {
                        format!("{lo:.2} to {hi:.2}")
                    }),
                ]
            })
        })
        .collect();
    (!rows.is_empty()).then(|| Block::Table {
        header: ["config", "classes", "n", "macro-F1", "std", "95% CI"]
            .map(String::from)
            .to_vec(),
        rows,
    })
}

/// Per-epoch means of one IMDB config, beside the published run (`published`: `None` for no
/// published columns, `Some(None)` for a config the article did not run).
pub(super) fn epoch_block(group: &Group, published: Option<Option<&Published>>) -> Block {
    let with_published = published.is_some();
    let published = published.flatten();
    let train = group.epoch_means(|m| m.train_accuracy);
    let test = group.epoch_means(|m| m.held_out.accuracy());
    let seconds = group.epoch_means(|m| m.seconds);
    let pub_test = published
        .and_then(|p| p.test_accuracy.clone())
        .unwrap_or_default();
    let pub_train = published
        .and_then(|p| p.train_accuracy.clone())
        .unwrap_or_default();
    let epochs = test.len().max(pub_test.len());
    let rows = (0..epochs)
        .map(|e| {
            let mut cells = vec![
                format!("{} ep {}", group.label(), e + 1),
                fixed(train.get(e).map(|s| s.mean)),
                fixed(test.get(e).map(|s| s.mean)),
                fixed(test.get(e).and_then(|s| s.std)),
            ];
            if with_published {
                cells.push(fixed(pub_train.get(e).copied()));
                cells.push(fixed(pub_test.get(e).copied()));
            }
            cells.push(fixed(seconds.get(e).map(|s| s.mean)));
            cells
        })
        .collect();
    let split = group.held_out_split();
    let (acc, std) = (format!("{split} acc"), format!("{split} std"));
    let mut header = vec!["epoch", "train acc", acc.as_str(), std.as_str()];
    if with_published {
        header.extend(["published train", "published test"]);
    }
    header.push("seconds");
    Block::Table {
        header: header.into_iter().map(String::from).collect(),
        rows,
    }
}

/// Echo configs' mean share of pairs right at each output position (`None` when no group has
/// the counts): where a model goes wrong, which exact match hides.
pub(super) fn positions_block(groups: &[&Group]) -> Option<Block> {
    let found: Vec<(&Group, Vec<Vec<f64>>)> = groups
        .iter()
        .filter_map(|g| Some((*g, g.position_accuracies()?)))
        .collect();
    let width = found
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(Vec::len))
        .max()?;
    let mut header: Vec<String> = vec!["config".into(), "n".into()];
    header.extend((1..=width).map(|p| format!("position {p}")));
    let rows = found
        .iter()
        .map(|(g, rows)| {
            let mut cells = vec![g.label(), rows.len().to_string()];
            cells.extend((0..width).map(|p| {
                let column: Vec<f64> = rows.iter().filter_map(|r| r.get(p).copied()).collect();
                fixed(Summary::of(&column).map(|s| s.mean))
            }));
            cells
        })
        .collect();
    Some(Block::Table { header, rows })
}
