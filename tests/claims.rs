//! Two `attnx run` processes started at once on one results folder share the work: every
//! repeat is trained by exactly one of them, and both end with the whole table.

use std::process::{Command, Stdio};

mod common;

#[test]
fn two_processes_on_one_folder_train_each_repeat_once() {
    let dir = tempfile::tempdir().unwrap();
    common::write(
        dir.path(),
        "two.json",
        r#"{"name": "two", "task": {"kind": "echo", "train_steps": 600}, "model": {"kind": "baseline", "hidden": 16}, "repeats": 6}"#,
    );
    let spawn = || {
        Command::new(assert_cmd::cargo::cargo_bin!("attnx"))
            .current_dir(dir.path())
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .args(["run", "two.json", "--jobs", "1", "--stack", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success());
    let trained = |out: &std::process::Output| -> Vec<String> {
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.contains(": done, accuracy"))
            .map(|l| l.split(':').next().unwrap().to_string())
            .collect()
    };
    let (mine, theirs) = (trained(&a), trained(&b));
    let mut all: Vec<String> = mine.iter().chain(&theirs).cloned().collect();
    all.sort();
    let expected: Vec<String> = (0..6).map(|i| format!("two #{i}")).collect();
    assert_eq!(all, expected, "each repeat once: {mine:?} + {theirs:?}");
    // Both print the whole table: the other's records are read back.
    for out in [&a, &b] {
        let table = String::from_utf8_lossy(&out.stdout).to_string();
        let row = table
            .lines()
            .rfind(|l| l.starts_with("two "))
            .unwrap()
            .to_string();
        assert_eq!(row.split_whitespace().count(), 1 + 6, "{table}");
    }
    assert_eq!(common::records(&dir.path().join("results")).len(), 6);
    eprintln!("process A trained {mine:?}, process B {theirs:?}");
}
