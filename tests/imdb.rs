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
fn a_tiny_imdb_run_records_every_epoch() {
    let Some(archive) = shared_archive() else {
        return;
    };
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
