//! A config's repeats, one row each, for its page of the HTML report: what every repeat
//! scored, where it ran, and its training curve.

use super::scan::{Group, Status};
use super::table::{fixed, percent};
use crate::record::{At, RepeatRecord};

/// The page of one config's records (one name and hash).
#[derive(Debug, Clone)]
pub struct RepeatsPage {
    /// The page's path under the report folder, `configs/<name>-<hash>.html`.
    pub file: String,
    /// The config's label (with what sets it apart from the current config).
    pub label: String,
    /// Lines that describe the records: hash, status, versions, backend.
    pub facts: Vec<(String, String)>,
    /// The config the records were made with, as JSON.
    pub config: String,
    pub header: Vec<String>,
    pub rows: Vec<RepeatRow>,
    /// What the curves are.
    pub curve: Curve,
}

/// One repeat: its cells, and its curve's points.
#[derive(Debug, Clone)]
pub struct RepeatRow {
    pub cells: Vec<String>,
    pub curve: Vec<f64>,
}

/// The curve each row draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// Training loss per window of steps (echo), drawn on a log scale.
    Loss,
    /// Held-out accuracy per epoch (IMDB and text tasks).
    Accuracy,
}

impl Curve {
    pub fn describe(self) -> &'static str {
        match self {
            Curve::Loss => "training loss (log scale)",
            Curve::Accuracy => "held-out accuracy per epoch",
        }
    }
}

/// The page file of the records of config `name` with hash `hash`.
pub fn page_file(name: &str, hash: &str) -> String {
    format!("configs/{name}-{hash}.html")
}

/// The page of `group`'s records.
pub fn page(group: &Group) -> RepeatsPage {
    let imdb = group.is_imdb();
    let text = group.records.iter().any(|r| r.confusion.is_some());
    let positions = group.records.iter().any(|r| r.position_correct.is_some());
    let mut header: Vec<String> = ["repeat", "seed", "accuracy", "correct"]
        .map(String::from)
        .to_vec();
    if imdb {
        header.extend(["best epoch", "best acc", "epochs"].map(String::from));
    }
    if text {
        header.push("macro-F1".into());
    }
    if positions {
        header.push("right per position (%)".into());
    }
    header.extend(["train s", "eval s", "device", "machine", "attnx", "curve"].map(String::from));
    let curve = if imdb { Curve::Accuracy } else { Curve::Loss };
    let rows = group
        .records
        .iter()
        .map(|r| row(r, imdb, text, positions, curve))
        .collect();
    let status = match &group.status {
        Status::Current => "recorded with the config as it is now".to_string(),
        Status::Changed(diff) => {
            format!("recorded with other settings than the config now: {diff}")
        }
        Status::NoConfig => "no config of this name exists now".to_string(),
    };
    let facts = vec![
        ("config".to_string(), group.name.clone()),
        ("hash".to_string(), group.hash.clone()),
        ("status".to_string(), status),
        ("repeats".to_string(), group.records.len().to_string()),
        ("backend".to_string(), group.config.backend.to_string()),
        (
            "attnx".to_string(),
            group
                .versions
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ];
    RepeatsPage {
        file: page_file(&group.name, &group.hash),
        label: group.label(),
        facts,
        config: serde_json::to_string_pretty(&group.config).unwrap_or_default(),
        header,
        rows,
        curve,
    }
}

fn row(r: &RepeatRecord, imdb: bool, text: bool, positions: bool, curve: Curve) -> RepeatRow {
    let mut cells = vec![
        r.repeat.to_string(),
        r.seed.to_string(),
        percent(r.accuracy),
        format!("{} / {}", r.correct, r.total),
    ];
    if imdb {
        let best = r
            .epochs
            .iter()
            .map(|m| (m.epoch, m.held_out.accuracy()))
            .reduce(|a, b| if b.1 > a.1 { b } else { a });
        cells.push(best.map_or("-".into(), |b| b.0.to_string()));
        cells.push(fixed(best.map(|b| b.1)));
        let mut epochs = r.epochs.len().to_string();
        if let Some(stopped) = r.stopped_at {
            epochs.push_str(&format!(" (stopped after {stopped})"));
        }
        if let Some(selected) = r.selected_epoch {
            epochs.push_str(&format!(" (tested epoch {selected})"));
        }
        cells.push(epochs);
    }
    if text {
        cells.push(fixed(r.figure(At::MacroF1)));
    }
    if positions {
        cells.push(r.position_accuracy().map_or("-".into(), |shares| {
            let shares: Vec<String> = shares.into_iter().map(percent).collect();
            shares.join(" ")
        }));
    }
    cells.extend([
        format!("{:.1}", r.train_seconds),
        format!("{:.1}", r.eval_seconds),
        r.device.clone(),
        r.machine
            .as_ref()
            .map_or("not recorded".into(), |m| m.to_string()),
        r.attnx_version.clone(),
    ]);
    let points = match curve {
        Curve::Loss => r.loss_curve.values.iter().map(|&v| f64::from(v)).collect(),
        Curve::Accuracy => r.epochs.iter().map(|m| m.held_out.accuracy()).collect(),
    };
    RepeatRow {
        cells,
        curve: points,
    }
}
