//! IMDB end to end: data location errors, and a tiny real run on the shared archive.

use predicates::prelude::*;
use serde_json::Value;

mod common;
use common::{attnx, shared_archive};

const TINY: &str = r#"{"name": "imdb_tiny",
  "task": {"kind": "imdb", "epochs": 2, "train_limit": 500, "test_limit": 400},
  "model": {"kind": "self_attention", "position": "sinusoidal"}}"#;

#[test]
fn missing_data_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tiny.json"), TINY).unwrap();
    attnx(dir.path())
        .args(["run", "tiny.json", "--out", "res"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("attnx data fetch imdb")
                .and(predicate::str::contains("--data")),
        );
    attnx(dir.path())
        .args([
            "run",
            "tiny.json",
            "--out",
            "res",
            "--data",
            "nowhere.tar.gz",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "nowhere.tar.gz: IMDB data not found (named by --data)",
        ));
    attnx(dir.path())
        .env("ATTNX_DATA", "gone")
        .args(["data", "info"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "gone: IMDB data not found (named by $ATTNX_DATA)",
        ));
    assert!(!dir.path().join("res").exists());
}

#[test]
#[ignore = "needs the IMDB archive ($ATTNX_DATA or `attnx data fetch imdb`)"]
fn a_tiny_imdb_run_records_every_epoch() {
    let archive = shared_archive();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tiny.json"), TINY).unwrap();
    attnx(dir.path())
        .env("ATTNX_DATA", &archive)
        .args(["run", "tiny.json", "--out", "res"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "500 training and 400 test reviews",
        ));
    let path = std::fs::read_dir(dir.path().join("res/imdb_tiny"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("repeat-000.json");
    let record: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        record["data_sha256"],
        "603c5d5cc4794499feb065962a7f3807825f99b40ccf54ba6cbdfbae48477577"
    );
    assert_eq!(record["total"], 400);
    let epochs = record["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    for (i, epoch) in epochs.iter().enumerate() {
        assert_eq!(epoch["epoch"], i + 1);
        for key in [
            "train_loss",
            "train_accuracy",
            "test_loss",
            "test_accuracy",
            "seconds",
        ] {
            let value = epoch[key].as_f64().unwrap();
            assert!(value.is_finite() && value >= 0.0, "{key} = {value}");
        }
    }
    assert_eq!(epochs[1]["test_accuracy"], record["accuracy"]);
    // It learns: the second epoch's training loss is below the first's.
    assert!(
        epochs[1]["train_loss"].as_f64() < epochs[0]["train_loss"].as_f64(),
        "{epochs:?}"
    );

    // The tokenized data is cached, and the same seed trains to the same numbers.
    assert!(
        dir.path()
            .join("cache/attnx/imdb")
            .read_dir()
            .unwrap()
            .next()
            .is_some()
    );
    std::fs::remove_dir_all(dir.path().join("res")).unwrap();
    attnx(dir.path())
        .env("ATTNX_DATA", &archive)
        .args(["run", "tiny.json", "--out", "res", "--quiet"])
        .assert()
        .success();
    let again: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (a, b) in again["epochs"].as_array().unwrap().iter().zip(epochs) {
        for key in ["train_loss", "train_accuracy", "test_loss", "test_accuracy"] {
            assert_eq!(a[key], b[key], "epoch {}: {key}", b["epoch"]);
        }
    }
}

const RESUMABLE: &str = r#"{"name": "imdb_resume",
  "task": {"kind": "imdb", "epochs": 3, "train_limit": 2000, "test_limit": 500},
  "model": {"kind": "self_attention", "position": "sinusoidal"}}"#;

/// A repeat killed (SIGKILL) after its first epoch resumes from that epoch's checkpoint and
/// ends with the record an uninterrupted run writes: every per-epoch figure and the whole loss
/// curve, to the last digit. Its checkpoints are gone once the record is written.
#[test]
#[ignore = "needs the IMDB archive ($ATTNX_DATA or `attnx data fetch imdb`)"]
fn a_killed_repeat_resumes_to_the_same_record() {
    killed_after_epoch_resumes_to_the_same_record(RESUMABLE, 1);
}

/// The same with a validation split and early stopping, killed after the epoch validation
/// picks: the resumed run stops one epoch later and tests the model of the checkpoint written
/// before the kill.
#[test]
#[ignore = "needs the IMDB archive ($ATTNX_DATA or `attnx data fetch imdb`)"]
fn a_killed_repeat_with_a_validation_split_resumes_to_the_same_record() {
    killed_after_epoch_resumes_to_the_same_record(RESUMABLE_VALIDATED, 2);
}

const RESUMABLE_VALIDATED: &str = r#"{"name": "imdb_resume",
  "task": {"kind": "imdb", "epochs": 8, "train_limit": 1000, "test_limit": 400,
           "validation_split": 0.2,
           "early_stopping": {"metric": "validation_loss", "patience": 1}},
  "model": {"kind": "self_attention", "position": "sinusoidal"},
  "optimizer": {"kind": "adam", "lr": 0.01}}"#;

fn killed_after_epoch_resumes_to_the_same_record(config: &str, kill_after: usize) {
    let archive = shared_archive();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("resume.json"), config).unwrap();
    let run = |out: &str| {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin!("attnx"));
        cmd.current_dir(dir.path())
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .env("ATTNX_DATA", &archive)
            .args(["run", "resume.json", "--out", out, "--quiet"]);
        cmd
    };
    assert!(run("whole").status().unwrap().success());
    let whole = common::records(&dir.path().join("whole"));

    // Kill the second run as soon as epoch `kill_after` is checkpointed (all four files).
    let mut child = run("killed").spawn().unwrap();
    let started = std::time::Instant::now();
    let epoch_saved = || {
        let Ok(folders) = std::fs::read_dir(dir.path().join("killed/imdb_resume")) else {
            return false;
        };
        folders.flatten().any(|f| {
            let c = f.path().join("checkpoints/repeat-000");
            ["model", "optim", "scheduler"]
                .iter()
                .all(|name| c.join(format!("{name}-{kill_after}.bpk")).is_file())
                && c.join(format!("state-{kill_after}.json")).is_file()
        })
    };
    while !epoch_saved() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        assert!(
            started.elapsed().as_secs() < 120,
            "no checkpoint after 2 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(common::records(&dir.path().join("killed")).is_empty());

    let resumed = run("killed")
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(resumed.status.success());
    let resumed_records = common::records(&dir.path().join("killed"));
    assert_eq!(resumed_records.len(), 1);
    for key in [
        "accuracy",
        "correct",
        "epochs",
        "loss_curve",
        "seed",
        "config_hash",
        "stopped_at",
        "selected_epoch",
    ] {
        let strip_seconds = |v: &Value| {
            let mut v = v.clone();
            if let Some(epochs) = v.as_array_mut() {
                for e in epochs {
                    e.as_object_mut().unwrap().remove("seconds");
                }
            }
            v
        };
        assert_eq!(
            strip_seconds(&resumed_records[0][key]),
            strip_seconds(&whole[0][key]),
            "{key}"
        );
    }
    let left: Vec<_> = common::walk(&dir.path().join("killed"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("checkpoints"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// `task.early_stopping` stops a repeat once the test loss has not improved for `patience`
/// epochs, and the record says after which epoch.
#[test]
#[ignore = "needs the IMDB archive ($ATTNX_DATA or `attnx data fetch imdb`)"]
fn early_stopping_ends_a_repeat_and_says_when() {
    let archive = shared_archive();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("stop.json"),
        r#"{"name": "imdb_stop",
  "task": {"kind": "imdb", "epochs": 8, "train_limit": 500, "test_limit": 400,
           "early_stopping": {"metric": "test_loss", "patience": 1}},
  "model": {"kind": "self_attention", "position": "sinusoidal"}}"#,
    )
    .unwrap();
    attnx(dir.path())
        .env("ATTNX_DATA", &archive)
        .args(["run", "stop.json", "--out", "res", "--quiet"])
        .assert()
        .success();
    let record = &common::records(&dir.path().join("res"))[0];
    let epochs = record["epochs"].as_array().unwrap();
    let stopped = record["stopped_at"].as_u64().expect("stopped early") as usize;
    assert_eq!(epochs.len(), stopped);
    assert!(stopped < 8, "{stopped}");
    // It stopped because the last epoch's test loss did not improve on the best before it.
    let loss = |e: &Value| e["test_loss"].as_f64().unwrap();
    let best_before = epochs[..stopped - 1]
        .iter()
        .map(loss)
        .fold(f64::MAX, f64::min);
    assert!(loss(&epochs[stopped - 1]) >= best_before, "{epochs:?}");
    assert_eq!(record["accuracy"], epochs[stopped - 1]["test_accuracy"]);
}

/// `task.validation_split` holds out training reviews: every epoch is evaluated on them, early
/// stopping watches them, and the test set is evaluated once, on the model of the best
/// validation epoch, restored from its checkpoint. The same repeat trained only up to that
/// epoch ends with that very model, so both records give the same test figures. (The quick
/// learning rate makes it learn, then overfit, in a few epochs: the models differ.)
#[test]
#[ignore = "needs the IMDB archive ($ATTNX_DATA or `attnx data fetch imdb`)"]
fn a_validation_split_picks_the_epoch_whose_model_is_tested() {
    let archive = shared_archive();
    let dir = tempfile::tempdir().unwrap();
    let config = |name: &str, epochs: usize| {
        format!(
            r#"{{"name": "{name}",
  "task": {{"kind": "imdb", "epochs": {epochs}, "train_limit": 1000, "test_limit": 400,
           "validation_split": 0.2,
           "early_stopping": {{"metric": "validation_loss", "patience": 1}}}},
  "model": {{"kind": "self_attention", "position": "sinusoidal"}},
  "optimizer": {{"kind": "adam", "lr": 0.01}}}}"#
        )
    };
    let run = |name: &str, epochs: usize| {
        std::fs::write(
            dir.path().join(format!("{name}.json")),
            config(name, epochs),
        )
        .unwrap();
        attnx(dir.path())
            .env("ATTNX_DATA", &archive)
            .args(["run", &format!("{name}.json"), "--out", name, "--quiet"])
            .assert()
            .success();
        common::records(&dir.path().join(name)).remove(0)
    };
    let stopped = run("stopped", 8);
    let epochs = stopped["epochs"].as_array().unwrap();
    let loss = |e: &Value| e["validation_loss"].as_f64().expect("validation figures");
    assert!(
        epochs.iter().all(|e| e.get("test_loss").is_none()),
        "{epochs:?}"
    );
    let best = (1..=epochs.len())
        .reduce(|b, e| {
            if loss(&epochs[e - 1]) < loss(&epochs[b - 1]) {
                e
            } else {
                b
            }
        })
        .unwrap();
    assert_eq!(stopped["selected_epoch"].as_u64(), Some(best as u64));
    assert_eq!(stopped["stopped_at"].as_u64(), Some(epochs.len() as u64));
    assert!(
        best < epochs.len(),
        "patience 1 stops one epoch after the best"
    );
    assert_eq!(stopped["total"], 400);
    let correct = stopped["correct"].as_f64().unwrap();
    assert_eq!(
        stopped["accuracy"].as_f64().unwrap(),
        100.0 * correct / 400.0
    );

    let trained_to_best = run("to_best", best);
    assert_eq!(
        trained_to_best["selected_epoch"].as_u64(),
        Some(best as u64)
    );
    let figures = |epochs: &[Value]| -> Vec<Value> {
        let mut epochs = epochs.to_vec();
        for e in &mut epochs {
            e.as_object_mut().unwrap().remove("seconds");
        }
        epochs
    };
    assert_eq!(
        figures(trained_to_best["epochs"].as_array().unwrap()),
        figures(&epochs[..best])
    );
    assert_eq!(trained_to_best["correct"], stopped["correct"]);
}
