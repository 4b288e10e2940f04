//! `attnx report` on a fixed set of records: the tables (as a snapshot), the files it writes,
//! the plots, and a corrupt record.

use std::path::Path;

use assert_cmd::Command;

mod common;
use attnx::config::ExperimentConfig;
use attnx::machine::SimdLevel;
use attnx::record::{EpochMetrics, HeldOut, LossCurve, Machine, RepeatRecord};
use attnx::store::ResultStore;
use predicates::prelude::*;

const ECHO: &str =
    r#"{"task": {"kind": "echo", "train_steps": 300}, "model": {"kind": "KIND", "hidden": 8}}"#;
const IMDB: &str =
    r#"{"task": {"kind": "imdb", "epochs": 3}, "model": {"kind": "self_attention"}}"#;
const IMDB_VALIDATED: &str = r#"{"task": {"kind": "imdb", "epochs": 3, "validation_split": 0.2,
    "early_stopping": {"metric": "validation_loss"}}, "model": {"kind": "self_attention"}}"#;

fn config(dir: &Path, name: &str, text: &str) -> ExperimentConfig {
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, text).unwrap();
    ExperimentConfig::load(&path).unwrap()
}

fn record(
    config: &ExperimentConfig,
    repeat: usize,
    accuracy: f64,
    epochs: Vec<EpochMetrics>,
) -> RepeatRecord {
    RepeatRecord {
        device: "flex: test".into(),
        accuracy,
        correct: accuracy as usize,
        total: 100,
        loss_curve: LossCurve {
            every: 100,
            values: vec![
                2.0 - repeat as f32 * 0.1,
                1.0,
                0.5 / (1.0 + accuracy as f32 / 50.0),
            ],
        },
        epochs,
        train_seconds: 1.0,
        eval_seconds: 0.1,
        // Not this machine's: the snapshot must not depend on where the test runs.
        machine: None,
        ..RepeatRecord::new(config, repeat, repeat as u64)
    }
}

fn epoch(epoch: usize, train: f64, test: f64) -> EpochMetrics {
    EpochMetrics {
        epoch,
        train_loss: 0.5,
        train_accuracy: train,
        held_out: HeldOut::new(false, 0.4, test),
        seconds: 10.0,
    }
}

/// configs/, experiments/ and results/ in `root`, with records of E1-like and E3-like runs.
fn fixture(root: &Path) {
    let configs = root.join("configs");
    let experiments = root.join("experiments");
    std::fs::create_dir_all(&configs).unwrap();
    std::fs::create_dir_all(&experiments).unwrap();
    let base = config(&configs, "base", &ECHO.replace("KIND", "baseline"));
    let attn = config(&configs, "attn", &ECHO.replace("KIND", "attention"));
    let imdb = config(&configs, "imdbx", IMDB);
    let validated = config(&configs, "imdbv", IMDB_VALIDATED);
    std::fs::write(
        experiments.join("ex.json"),
        r#"{"name": "ex", "title": "EX: base against attn", "metric": "exact match (%)",
            "configs": ["base", "attn"],
            "published": {"base": {"source": "test", "repeats": [20, 22, 24]},
                          "attn": {"source": "test", "repeats": [90, 95, 97]}},
            "claims": [
              {"claim": "attn beats base.", "test": {"kind": "difference", "control": "base",
               "variant": "attn", "direction": "higher"}},
              {"claim": "attn scores 94.", "test": {"kind": "level", "config": "attn"}}]}"#,
    )
    .unwrap();
    std::fs::write(
        experiments.join("ey.json"),
        r#"{"name": "ey", "title": "EY: one IMDB config", "metric": "test accuracy (%)",
            "configs": ["imdbx", "imdbv"],
            "published": {"imdbx": {"source": "test", "test_accuracy": [82.0, 83.5, 83.0],
                                    "train_accuracy": [75.0, 85.0, 90.0]}}}"#,
    )
    .unwrap();

    let store = ResultStore::new(root.join("results"));
    for (i, acc) in [18.0, 25.0, 21.0, 16.0].into_iter().enumerate() {
        let mut r = record(&base, i, acc, vec![]);
        r.machine = Some(Machine {
            cpu: if i == 3 { "CPU B" } else { "CPU A" }.into(),
            simd: if i == 3 {
                SimdLevel::Avx2
            } else {
                SimdLevel::Avx512
            },
            threads: 2,
        });
        store.save(&r).unwrap();
    }
    for (i, acc) in [99.0, 97.0, 100.0, 98.0].into_iter().enumerate() {
        store.save(&record(&attn, i, acc, vec![])).unwrap();
    }
    // A run of `base` with another seed, by an older attnx: reported, marked as both.
    let mut other = base.clone();
    other.seed = 5;
    let mut old = record(&other, 0, 30.0, vec![]);
    old.attnx_version = "0.0.9".into();
    store.save(&old).unwrap();
    let epochs = vec![
        epoch(1, 74.0, 82.5),
        epoch(2, 86.0, 83.9),
        epoch(3, 91.0, 82.2),
    ];
    store.save(&record(&imdb, 0, 82.2, epochs)).unwrap();
    // Epochs evaluated on a validation split; the test accuracy is that of the picked epoch.
    for (repeat, (picked, test)) in [(2, 83.1), (1, 82.7)].into_iter().enumerate() {
        let epochs = (1..=picked + 1)
            .map(|e| EpochMetrics {
                held_out: HeldOut::new(true, 0.4, 84.0 - (e as f64 - 2.0).abs()),
                ..epoch(e, 70.0 + 5.0 * e as f64, 0.0)
            })
            .collect();
        let mut r = record(&validated, repeat, test, epochs);
        r.stopped_at = Some(picked + 1);
        r.selected_epoch = Some(picked);
        store.save(&r).unwrap();
    }
}

fn report(root: &Path) -> Command {
    let mut cmd = common::attnx(root);
    cmd.args(["report", "results"]);
    cmd
}

/// What `attnx report results --format terminal` prints in `root`.
fn terminal_report(root: &Path) -> String {
    let out = report(root)
        .args(["--format", "terminal"])
        .assert()
        .success()
        .get_output()
        .clone();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn report_tables_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    insta::assert_snapshot!(terminal_report(dir.path()));
    assert!(
        !dir.path().join("results/REPORT.md").exists(),
        "terminal only"
    );
}

/// An experiment's margin is its report's everywhere: the verdict rule, the claims and the
/// comparison lines (which once tested at ±1 point whatever the experiment said).
#[test]
fn an_experiments_margin_is_used_by_every_line_of_its_report() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let ex = dir.path().join("experiments/ex.json");
    let text = std::fs::read_to_string(&ex).unwrap().replacen(
        r#""name": "ex","#,
        r#""name": "ex", "margin": 2.0,"#,
        1,
    );
    std::fs::write(&ex, text).unwrap();
    let text = terminal_report(dir.path());
    let ex = &text[..text.find("EY:").unwrap_or(text.len())];
    assert!(ex.contains("within ±2 points"), "{ex}");
    assert!(ex.contains("; TOST ±2 points: "), "{ex}");
    assert!(!ex.contains("±1 point"), "{ex}");
}

#[test]
fn report_writes_markdown_csv_json_and_plots_that_parse() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    report(dir.path()).args(["--out", "out"]).assert().success();
    let out = dir.path().join("out");
    let markdown = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    assert!(
        markdown.contains("| config | backend | n | mean |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("![EX: training loss](plots/ex_loss.svg)"),
        "{markdown}"
    );

    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        1 + 5,
        "header and one line per config:\n{csv}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let rows = json.as_array().unwrap();
    let base = rows.iter().find(|r| r["label"] == "base").unwrap();
    assert_eq!(base["n"], 4);
    assert_eq!(base["mean"], 20.0);
    assert!((base["published"].as_f64().unwrap() - 22.0).abs() < 1e-9);
    assert!(
        rows.iter().any(
            |r| r["label"] == "base [seed=5] (attnx 0.0.9)" && r["status"] == "changed: seed=5"
        )
    );

    for (file, series) in [
        ("ex_loss.svg", vec!["base (mean of 4", "attn (mean of 4"]),
        (
            "ey_accuracy.svg",
            // One legend entry per config; the title says which line is which.
            vec![
                "imdbx (n = 1)",
                "solid: test, dotted: train, dashed: published",
            ],
        ),
    ] {
        let svg = std::fs::read_to_string(out.join("plots").join(file)).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{file}: {e}"));
        let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
        for label in series {
            assert!(
                texts.iter().any(|t| t.contains(label)),
                "{file} lacks {label}: {texts:?}"
            );
        }
        assert!(
            doc.descendants()
                .any(|n| n.has_tag_name("polyline") || n.has_tag_name("path"))
        );
    }
}

#[test]
fn a_corrupt_record_is_named_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let attn_dir = std::fs::read_dir(dir.path().join("results/attn"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(attn_dir.join("repeat-002.json"), "{ not json").unwrap();
    let out = report(dir.path())
        .args(["--format", "terminal"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "repeat-002.json: unreadable record, skipped",
        ))
        .get_output()
        .clone();
    let text = String::from_utf8(out.stdout).unwrap();
    let attn_line = text
        .lines()
        .find(|l| l.starts_with("attn ") && l.contains(" flex "))
        .unwrap();
    let cells: Vec<&str> = attn_line.split_whitespace().collect();
    assert_eq!(&cells[..4], ["attn", "flex", "3", "98.00"], "{attn_line}");
}

/// The pages are the same bytes for the same records, wherever the folder lies and however
/// often they are made; the index opens with every claim and links each config's page of
/// repeats, which names each repeat's seed and machine.
#[test]
fn the_pages_are_the_same_bytes_for_the_same_records_wherever_they_lie() {
    let pages = |root: &Path| -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let dir = root.join("results/report");
        let mut files: Vec<_> = common::walk(&dir)
            .into_iter()
            .map(|p| {
                (
                    p.strip_prefix(&dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for root in [a.path(), b.path(), b.path()] {
        fixture(root);
        report(root).args(["--format", "html"]).assert().success();
    }
    let (first, second) = (pages(a.path()), pages(b.path()));
    assert_eq!(first.len(), second.len());
    for ((name, x), (other, y)) in first.iter().zip(&second) {
        assert_eq!(name, other);
        assert!(x == y, "{} differs between two folders", name.display());
    }

    let index = std::fs::read_to_string(a.path().join("results/report/index.html")).unwrap();
    let overview = &index[..index.find("<h2").unwrap()];
    for claim in ["attn beats base.", "attn scores 94."] {
        assert!(overview.contains(claim), "{claim} is not in the overview");
    }
    assert!(overview.contains("class=\"mark reproduced\""), "{overview}");
    let base_hash = std::fs::read_dir(a.path().join("results/base"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .find(|h| {
            common::records(&a.path().join("results/base").join(h))
                .iter()
                .all(|r| r["config"]["seed"] != 5)
        })
        .unwrap();
    let page = format!("configs/base-{base_hash}.html");
    assert!(
        index.contains(&format!("href=\"{page}\"")),
        "no link to {page}"
    );
    let base = std::fs::read_to_string(a.path().join("results/report").join(&page)).unwrap();
    assert!(
        base.contains("CPU B (avx2)"),
        "the page names each repeat's machine"
    );
    assert_eq!(
        base.matches("<svg class=\"curve\"").count(),
        4,
        "a curve per repeat"
    );
}

/// A results folder with one config's records gives a page whose overview says which
/// experiments were not run yet, and names a record it could not read.
#[test]
fn a_partial_results_folder_gives_a_page_that_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    std::fs::remove_dir_all(dir.path().join("results/imdbx")).unwrap();
    std::fs::remove_dir_all(dir.path().join("results/imdbv")).unwrap();
    let attn = std::fs::read_dir(dir.path().join("results/attn"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let record = std::fs::read_to_string(attn.join("repeat-001.json")).unwrap();
    std::fs::write(attn.join("repeat-001.json"), &record[..record.len() / 3]).unwrap();
    report(dir.path())
        .args(["--format", "html"])
        .assert()
        .success();
    let index = std::fs::read_to_string(dir.path().join("results/report/index.html")).unwrap();
    let ey_row = index
        .lines()
        .find(|l| l.contains("href=\"#ey-one-imdb-config\""))
        .expect("EY's row in the overview");
    assert!(ey_row.contains("not run yet"), "{ey_row}");
    assert!(index.contains("repeat-001.json: unreadable record, skipped"));
}

/// The committed results/REPORT.md and README.md's results are what the committed records give:
/// no figure in them is typed by hand, and a change of the report's code or of a record that
/// is not carried into them fails here.
#[test]
fn the_committed_report_and_readme_are_what_the_committed_records_give() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The files git tracks under results/ (as the working tree has them): a developer's own
    // runs into results/ are not the README's. Outside a git checkout (a source archive),
    // results/ is all there is.
    let copy = tempfile::tempdir().unwrap();
    let results = match std::process::Command::new("git")
        .args(["ls-files", "-z", "results"])
        .current_dir(root)
        .output()
    {
        Ok(listed) if listed.status.success() && !listed.stdout.is_empty() => {
            for file in listed.stdout.split(|&b| b == 0).filter(|f| !f.is_empty()) {
                let file = std::str::from_utf8(file).unwrap();
                let to = copy.path().join(file);
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(root.join(file), &to)
                    .unwrap_or_else(|e| panic!("{file}: tracked, but {e}: restore or commit it"));
            }
            copy.path().join("results")
        }
        _ => root.join("results"),
    };
    let gathered = attnx::report::gather(
        &results,
        &root.join("configs"),
        &root.join("experiments"),
        None,
    )
    .unwrap();
    let records: usize = gathered.scan.groups.iter().map(|g| g.records.len()).sum();
    assert!(
        records > 300,
        "only {records} records under {}",
        results.display()
    );
    let how = "run `cargo run --release -- report results --readme README.md` and commit what it \
               writes (with only the committed records in results/)";
    let first_difference = |a: &str, b: &str| {
        a.lines()
            .zip(b.lines())
            .position(|(x, y)| x != y)
            .map_or(a.lines().count().min(b.lines().count()), |i| i + 1)
    };

    let built = gathered.build();
    let report = built.markdown();
    let committed = std::fs::read_to_string(root.join("results/REPORT.md")).unwrap();
    assert!(
        committed == report,
        "results/REPORT.md differs from the records from line {}: {how}",
        first_difference(&committed, &report)
    );

    // The pages: the index and every config's page of repeats, and no page of records that
    // are gone.
    let pages = root.join("results/report");
    let mut want = vec![(pages.join("index.html"), attnx::report::html::index(&built))];
    for page in &built.pages {
        want.push((
            pages.join(&page.file),
            attnx::report::html::repeats_page(page),
        ));
    }
    for (path, html) in &want {
        let committed = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{}: {e}: {how}", path.display()));
        assert!(
            &committed == html,
            "{} differs from the records from line {}: {how}",
            path.display(),
            first_difference(&committed, html)
        );
    }
    let wanted: Vec<&std::path::PathBuf> = want.iter().map(|(p, _)| p).collect();
    for file in common::walk(&pages.join("configs")) {
        assert!(
            wanted.contains(&&file),
            "{} is a page of no record: remove it ({how})",
            file.display()
        );
    }

    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let generated = attnx::report::readme::markdown(&gathered.scan, &gathered.experiments);
    let want = attnx::report::readme::splice("README.md", &readme, &generated).unwrap();
    assert!(
        readme == want,
        "README.md's results differ from the records from line {}: {how}",
        first_difference(&readme, &want)
    );
}
