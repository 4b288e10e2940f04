//! IMDB end to end: data location errors, and a tiny real run on the shared archive.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn shared_archive() -> Option<PathBuf> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/aclImdb_v1_labeled.tar.gz");
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have {}",
        path.display()
    );
    eprintln!("skipped: {} not found", path.display());
    None
}

/// attnx with its cache in `dir` and no data named by the environment.
fn attnx(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("attnx").unwrap();
    cmd.current_dir(dir)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env_remove("ATTNX_DATA");
    cmd
}

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
    let first = attnx(dir.path())
        .env("ATTNX_DATA", &archive)
        .args(["run", "tiny.json", "--out", "res"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "500 training and 400 test reviews",
        ))
        .get_output()
        .clone();
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
    let second = attnx(dir.path())
        .env("ATTNX_DATA", &archive)
        .args(["run", "tiny.json", "--out", "res", "--quiet"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(first.status.code(), second.status.code());
    let again: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        again["epochs"][1]["test_loss"],
        record["epochs"][1]["test_loss"]
    );
}
