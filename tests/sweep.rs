//! Overrides (`--set`) and sweeps through the binary: errors, hashes, a small grid end to end,
//! and a sweep experiment's section and plot in the report.

use predicates::prelude::*;
use serde_json::Value;

mod common;
use common::attnx;

const BASE: &str = r#"{"name": "tiny", "task": {"kind": "echo", "train_steps": 200}, "model": {"kind": "baseline", "hidden": 8}, "repeats": 2}"#;

#[test]
fn a_bad_override_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    common::write(dir.path(), "tiny.json", BASE);
    for (set, says) in [
        (
            "task.n_inn=3",
            "tiny.json with --set task.n_inn=3: task: unknown field \"n_inn\"",
        ),
        (
            "task.n_in=many",
            "task: invalid type: string \"many\", expected usize",
        ),
        (
            "task.n_out=9",
            "task.n_out: must not exceed task.n_in (5), got 9",
        ),
        ("repeats.x=1", "--set repeats.x=1: repeats is not an object"),
        ("task.n_in", "expected PATH=VALUE"),
    ] {
        attnx(dir.path())
            .args(["run", "tiny.json", "--set", set])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(says).and(predicate::str::contains("\n").count(1)));
    }
    assert!(!dir.path().join("results").exists());
}

/// A two-axis grid runs every point once (a second run trains nothing), each point recorded
/// under its own hash with its settings in the config; a point equal to the file shares the
/// file's hash and records.
#[test]
fn a_sweep_runs_its_grid_once_and_records_each_point() {
    let dir = tempfile::tempdir().unwrap();
    common::write(dir.path(), "tiny.json", BASE);
    attnx(dir.path())
        .args(["run", "tiny.json", "--quiet"])
        .assert()
        .success();
    let sweep = || {
        attnx(dir.path())
            .args([
                "sweep",
                "tiny.json",
                "--set",
                "task.n_in=5,6",
                "--set",
                "model.hidden=8,12",
            ])
            .assert()
            .success()
    };
    let first = sweep();
    let table = String::from_utf8_lossy(&first.get_output().stdout).to_string();
    for label in [
        "tiny [task.n_in=5, model.hidden=8]",
        "tiny [task.n_in=6, model.hidden=12]",
    ] {
        assert!(table.contains(label), "{table}");
    }
    // Every other point is set against the first.
    for other in [
        "tiny [task.n_in=5, model.hidden=12]",
        "tiny [task.n_in=6, model.hidden=8]",
    ] {
        let line = format!("{other} - tiny [task.n_in=5, model.hidden=8]:");
        assert!(table.contains(&line), "{line}\n{table}");
    }
    let records = common::records(&dir.path().join("results"));
    // 4 points x 2 repeats; the (5, 8) point is the file's config, recorded by the plain run.
    assert_eq!(records.len(), 8);
    let hashes: std::collections::BTreeSet<&str> = records
        .iter()
        .map(|r| r["config_hash"].as_str().unwrap())
        .collect();
    assert_eq!(hashes.len(), 4);
    assert!(
        records
            .iter()
            .any(|r| r["config"]["task"]["n_in"] == 6 && r["config"]["model"]["hidden"] == 12)
    );
    let again = sweep();
    let log = String::from_utf8_lossy(&again.get_output().stderr).to_string();
    assert!(
        !log.contains("training"),
        "nothing is trained twice:\n{log}"
    );
}

/// A sweep written as an experiment: `compare --experiment` runs it and `attnx report` shows
/// it as its own section with an accuracy-against-axis plot.
#[test]
fn a_sweep_experiment_is_reported_with_its_plot() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("configs")).unwrap();
    std::fs::create_dir_all(dir.path().join("experiments")).unwrap();
    common::write(&dir.path().join("configs"), "tiny.json", BASE);
    common::write(
        &dir.path().join("experiments"),
        "grid.json",
        r#"{"name": "grid", "title": "Tiny grid", "metric": "exact match (%)",
            "configs": ["tiny"],
            "sweep": {"axes": ["task.train_steps=100:300:100", "model.hidden=8,12"], "repeats": 3}}"#,
    );
    attnx(dir.path())
        .args(["compare", "--experiment", "grid", "--quiet"])
        .assert()
        .success();
    assert_eq!(
        common::records(&dir.path().join("results")).len(),
        3 * 2 * 3
    );
    let report = attnx(dir.path())
        .args(["report", "results", "--format", "terminal,markdown,json"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&report.get_output().stdout).to_string();
    assert!(text.contains("Tiny grid"), "{text}");
    assert!(
        text.contains("tiny [task.train_steps=300, model.hidden=12]"),
        "{text}"
    );
    assert!(
        !text.contains("Other results"),
        "the sweep's records belong to its section:\n{text}"
    );
    let svg = std::fs::read_to_string(dir.path().join("results/plots/grid_sweep.svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
    assert!(
        texts.iter().any(|t| t.contains("task.train_steps")),
        "{texts:?}"
    );
    for series in ["tiny [model.hidden=8]", "tiny [model.hidden=12]"] {
        assert!(
            texts.iter().any(|t| t.contains(series)),
            "{series}: {texts:?}"
        );
    }
    // Two axes: a heatmap of the config's mean accuracy, one cell per point.
    let heatmap =
        std::fs::read_to_string(dir.path().join("results/plots/grid_tiny_heatmap.svg")).unwrap();
    let heatmap = roxmltree::Document::parse(&heatmap).unwrap();
    assert!(
        heatmap
            .descendants()
            .filter(|n| n.has_tag_name("rect"))
            .count()
            >= 6
    );
    assert!(text.contains("plots/grid_tiny_heatmap.svg"), "{text}");
    // Every repeat is a dot: 18 circles at least.
    assert!(
        doc.descendants()
            .filter(|n| n.has_tag_name("circle"))
            .count()
            >= 18
    );
    let _: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("results/summary.json")).unwrap(),
    )
    .unwrap();
}

/// `attnx slurm` takes the same `--set`: a sweep becomes array tasks that run `attnx sweep`.
#[test]
fn a_sweep_submits_to_slurm_as_a_sweep() {
    let dir = tempfile::tempdir().unwrap();
    common::write(dir.path(), "tiny.json", BASE);
    let out = attnx(dir.path())
        .args([
            "slurm",
            "tiny.json",
            "--set",
            "task.n_in=5,6",
            "--set",
            "model.hidden=12",
        ])
        .args(["--dry-run", "--tasks", "2"])
        .assert()
        .success();
    let script = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(script.contains("#SBATCH --array=0-1"), "{script}");
    let exec = script.lines().find(|l| l.starts_with("exec ")).unwrap();
    assert!(
        exec.contains(" sweep ") && exec.contains("--set task.n_in=5,6 --set model.hidden=12"),
        "{exec}"
    );
    let log = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(log.contains("4 repeat(s) missing"), "{log}");
    assert!(
        !dir.path().join("results").exists(),
        "a dry run writes nothing"
    );
}
