//! `attnx slurm` on a real one-node Slurm cluster (CI starts one with `.ci/slurm-cluster`):
//! an array job is cancelled mid-run, submitted again, and ends with exactly the records of a
//! plain local run, no repeat trained twice.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::attnx;

/// Fails unless a Slurm controller answers (`.ci/slurm-cluster start` runs one here).
fn require_cluster() {
    let up = Command::new("sinfo")
        .arg("-h")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        up,
        "this test needs a Slurm cluster: start one with .ci/slurm-cluster (as root)"
    );
}

const CONFIGS: [(&str, &str); 2] = [
    (
        "a.json",
        r#"{"name": "sa", "task": {"kind": "echo", "train_steps": 4000}, "model": {"kind": "baseline", "hidden": 32}, "repeats": 4}"#,
    ),
    (
        "b.json",
        r#"{"name": "sb", "task": {"kind": "echo", "train_steps": 4000}, "model": {"kind": "attention", "hidden": 32}, "repeats": 4}"#,
    ),
];

/// Every log line of the array tasks in `shared/slurm` that contains `needle`.
fn log_lines(shared: &Path, needle: &str) -> Vec<String> {
    common::walk(&shared.join("slurm"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "out"))
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .filter(|l| l.contains(needle))
        .collect()
}

/// How many repeats a "done" line reports: one accuracy each (`sa #0,2-3: done, accuracy %
/// [2.00, 1.00, 1.00]`).
fn repeats_named(line: &str) -> usize {
    let list = line.rsplit('[').next().unwrap_or_default();
    list.trim_end_matches(']').split(',').count()
}

fn job_running(job: &str) -> bool {
    Command::new("squeue")
        .args(["-h", "-j", job])
        .output()
        .is_ok_and(|o| !String::from_utf8_lossy(&o.stdout).trim().is_empty())
}

#[test]
#[ignore = "needs a Slurm cluster (.ci/slurm-cluster starts one)"]
fn a_cancelled_array_job_resubmitted_gives_the_local_records() {
    require_cluster();
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in CONFIGS {
        common::write(dir.path(), name, text);
    }
    attnx(dir.path())
        .args(["compare", "a.json", "b.json", "--out", "local", "--quiet"])
        .assert()
        .success();
    let local = common::records(&dir.path().join("local"));
    assert_eq!(local.len(), 8);

    // Three array tasks on the shared folder; cancel them all once the first record is in,
    // while the others are mid-repeat.
    let submit = || {
        let mut cmd = attnx(dir.path());
        cmd.args([
            "slurm",
            "a.json",
            "b.json",
            "--tasks",
            "3",
            "--cpus-per-task",
            "1",
        ])
        .args(["--out", "shared", "--job-name", "attnx-test"]);
        cmd
    };
    let submitted = submit().assert().success();
    let job = String::from_utf8_lossy(&submitted.get_output().stdout)
        .trim()
        .to_string();
    let shared = dir.path().join("shared");
    let started = Instant::now();
    while common::records(&shared).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "no record after 3 minutes"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        Command::new("scancel")
            .arg(&job)
            .status()
            .unwrap()
            .success()
    );
    while job_running(&job) {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "job {job} does not end"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let before = common::records(&shared).len();
    let claims_left = common::walk(&shared)
        .iter()
        .filter(|p| p.parent().is_some_and(|d| d.ends_with("claims")))
        .count();
    assert!(before < 8, "the job ended before it was cancelled");

    // Submitted again: only what is missing runs, and the table comes back.
    let finished = submit().arg("--wait").assert().success();
    let table = String::from_utf8_lossy(&finished.get_output().stdout).to_string();
    assert!(table.contains("per-repeat accuracy"), "{table}");

    let remote = common::records(&shared);
    assert_eq!(remote.len(), 8);
    let key = |r: &Value| (r["experiment"].to_string(), r["repeat"].as_u64());
    for (a, b) in local.iter().zip(&remote) {
        assert_eq!(key(a), key(b));
        for field in ["seed", "accuracy", "correct", "loss_curve", "config_hash"] {
            assert_eq!(a[field], b[field], "{field} of {:?}", key(a));
        }
    }
    // Each repeat was finished once over both jobs' logs: a "done" line reports one repeat or
    // a stack of them.
    let done = log_lines(&shared, ": done, accuracy");
    let finished: usize = done.iter().map(|l| repeats_named(l)).sum();
    assert_eq!(finished, 8, "{done:#?}");
    // The cancelled tasks' claims were taken over (or cleared, for a repeat whose record was
    // written just before the cancel), and none is left.
    let taken = log_lines(&shared, "claim taken over");
    assert!(taken.len() <= claims_left, "{taken:#?}");
    assert!(
        !common::walk(&shared)
            .iter()
            .any(|p| p.to_string_lossy().contains("claims"))
    );
    // Repeats finished per array task (log file), for the record.
    let per_task: Vec<String> = common::walk(&shared.join("slurm"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "out"))
        .map(|p| {
            let log = std::fs::read_to_string(p).unwrap_or_default();
            let done: usize = log
                .lines()
                .filter(|l| l.contains(": done, accuracy"))
                .map(repeats_named)
                .sum();
            format!("{}: {done}", p.file_stem().unwrap().to_string_lossy())
        })
        .collect();
    eprintln!(
        "slurm: {before} of 8 records before the cancel, {} claim(s) taken over, {} s; repeats per task {per_task:?}",
        taken.len(),
        started.elapsed().as_secs()
    );
}
