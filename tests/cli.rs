//! End-to-end tests of the `attnx` binary.

mod common;

use std::fs;

use predicates::prelude::*;

use common::{attnx, records, refused, walk, write};

/// A short E1-style config: real models and sizes, few steps.
fn tiny_config(name: &str, model: &str) -> String {
    format!(
        r#"{{
  "name": "{name}",
  "task": {{"kind": "echo", "train_steps": 300, "eval_samples": 50}},
  "model": {{"kind": "{model}", "hidden": 32}},
  "repeats": 2,
  "seed": 7
}}"#
    )
}

#[test]
fn bad_configs_fail_with_one_line_and_exit_2_writing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "malformed.json",
            r#"{"task": {"kind": "echo"}"#,
            "malformed.json: malformed JSON",
        ),
        (
            "unknown_field.json",
            r#"{"task": {"kind": "echo"}, "model": {"kind": "baseline"}, "epochs": 3}"#,
            "unknown_field.json: epochs: unknown field \"epochs\", expected one of",
        ),
        (
            "unknown_model.json",
            r#"{"task": {"kind": "echo"}, "model": {"kind": "lstmm"}}"#,
            "unknown_model.json: model.kind: unknown variant \"lstmm\", expected one of \"baseline\", \"attention\", \"self_attention\"",
        ),
        (
            "zero_repeats.json",
            r#"{"task": {"kind": "echo"}, "model": {"kind": "baseline"}, "repeats": 0}"#,
            "zero_repeats.json: repeats: must be at least 1, got 0",
        ),
        (
            "n_out.json",
            r#"{"task": {"kind": "echo", "n_in": 3, "n_out": 4}, "model": {"kind": "attention"}}"#,
            "n_out.json: task.n_out: must not exceed task.n_in (3), got 4",
        ),
        (
            // Once accepted, then killed by the kernel (exit 137, no message).
            "huge.json",
            r#"{"task": {"kind": "echo"}, "model": {"kind": "baseline", "hidden": 4000000000}, "repeats": 1}"#,
            "huge: training needs about ",
        ),
        (
            "huge_imdb.json",
            r#"{"task": {"kind": "imdb", "maxlen": 100000000}, "model": {"kind": "self_attention"}}"#,
            "huge_imdb: training needs about ",
        ),
    ];
    for (file, text, expected) in cases {
        write(dir.path(), file, text);
        let stderr = refused(dir.path(), &["run", file, "--out", "res"]);
        assert!(stderr.contains(expected), "{file}: {stderr}");
        // The panic hook turns a panic into "internal error: ..."; bad input is never one.
        assert!(!stderr.contains("internal error"), "{file}: {stderr}");
    }
    assert!(!dir.path().join("res").exists(), "nothing may be written");

    attnx(dir.path())
        .args(["run", "no_such_config"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no_such_config: no such config"));

    // Command-line overrides obey the config's rules too.
    write(dir.path(), "tiny.json", &tiny_config("tiny", "baseline"));
    attnx(dir.path())
        .args(["run", "tiny.json", "--device", "cpu", "--out", "res"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "tiny: device cpu needs the wgpu backend, and this run is on flex",
        ));
    assert!(!dir.path().join("res").exists(), "nothing may be written");
}

#[test]
fn run_records_every_repeat_and_a_second_run_skips_them() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tiny.json", &tiny_config("tiny", "attention"));

    let first = attnx(dir.path())
        .args(["run", "tiny.json", "--out", "res", "--jobs", "2"])
        .assert()
        .success()
        .get_output()
        .clone();
    let table = String::from_utf8(first.stdout).unwrap();
    assert!(table.contains("tiny"), "{table}");

    let recs = records(&dir.path().join("res"));
    assert_eq!(recs.len(), 2);
    for (i, rec) in recs.iter().enumerate() {
        assert_eq!(rec["repeat"], i);
        assert_eq!(rec["experiment"], "tiny");
        assert_eq!(rec["backend"], "flex");
        assert_eq!(rec["config"]["task"]["train_steps"], 300);
        assert_eq!(rec["config"]["model"]["hidden"], 32);
        assert_eq!(rec["loss_curve"]["every"], 100);
        let loss = rec["loss_curve"]["values"].as_array().unwrap();
        assert_eq!(loss.len(), 3);
        // It learns: the mean loss of the last 100 steps is below that of the first 100 (a NaN
        // loss is written as null, and fails here).
        let loss: Vec<f64> = loss
            .iter()
            .map(|l| l.as_f64().expect("a finite loss"))
            .collect();
        assert!(loss.iter().all(|l| l.is_finite() && *l > 0.0), "{loss:?}");
        assert!(loss[2] < loss[0], "{loss:?}");
        let acc = rec["accuracy"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&acc));
        assert_eq!(rec["total"], 50);
    }
    // The config sits beside its records, and no temporary file is left behind.
    let files = walk(&dir.path().join("res"));
    assert!(files.iter().any(|p| p.ends_with("config.json")));
    assert!(
        files
            .iter()
            .all(|p| !p.file_name().unwrap().to_string_lossy().starts_with(".tmp"))
    );

    let second = attnx(dir.path())
        .args(["run", "tiny.json", "--out", "res"])
        .assert()
        .success()
        .stderr(predicate::str::contains("2 of 2 repeats already recorded"))
        .get_output()
        .clone();
    assert_eq!(
        String::from_utf8(second.stdout).unwrap(),
        table,
        "same records, same table"
    );
    assert_eq!(records(&dir.path().join("res")), recs, "records untouched");

    // Raising the repeat count runs only the new repeat.
    attnx(dir.path())
        .args(["run", "tiny.json", "--out", "res", "--repeats", "3"])
        .assert()
        .success()
        .stderr(predicate::str::contains("2 of 3 repeats already recorded"));
    assert_eq!(records(&dir.path().join("res")).len(), 3);
}

#[test]
fn same_seed_gives_same_results_whatever_the_jobs_and_stacking() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tiny.json", &tiny_config("tiny", "baseline"));
    // One stack of two repeats on one thread, against two stacks of one on two threads.
    for (jobs, stack, out) in [("1", "2", "one"), ("2", "1", "two")] {
        attnx(dir.path())
            .args([
                "run",
                "tiny.json",
                "--quiet",
                "--jobs",
                jobs,
                "--stack",
                stack,
                "--out",
                out,
            ])
            .assert()
            .success();
    }
    let one = records(&dir.path().join("one"));
    let two = records(&dir.path().join("two"));
    assert_eq!(one.len(), 2);
    for (a, b) in one.iter().zip(&two) {
        assert_eq!(a["stack_size"], 2);
        assert_eq!(b["stack_size"], 1);
        assert_eq!(a["seed"], b["seed"]);
        assert_eq!(a["accuracy"], b["accuracy"]);
        assert_eq!(a["loss_curve"], b["loss_curve"]);
    }
    assert_ne!(one[0]["seed"], one[1]["seed"]);

    // Another seed is another experiment: other records, other numbers.
    attnx(dir.path())
        .args(["run", "tiny.json", "--quiet", "--seed", "8", "--out", "one"])
        .assert()
        .success();
    let both = records(&dir.path().join("one"));
    assert_eq!(both.len(), 4);
}

#[test]
fn compare_prints_one_table_with_the_difference_and_every_repeat() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("configs")).unwrap();
    write(
        &dir.path().join("configs"),
        "small_base.json",
        &tiny_config("small_base", "baseline"),
    );
    write(
        &dir.path().join("configs"),
        "small_attn.json",
        &tiny_config("small_attn", "attention"),
    );
    let out = attnx(dir.path())
        .args([
            "compare",
            "small_base",
            "small_attn",
            "--repeats",
            "2",
            "--out",
            "res",
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("Metric: exact-match accuracy (%)."),
        "{text}"
    );
    let header = text.lines().find(|l| l.starts_with("config")).unwrap();
    for column in ["backend", "n", "mean", "std", "95% CI", "min", "max"] {
        assert!(header.contains(column), "{text}");
    }
    assert!(text.contains("small_attn - small_base:"), "{text}");
    assert!(text.contains("per-repeat accuracy"), "{text}");
    assert_eq!(records(&dir.path().join("res")).len(), 4);

    let list = attnx(dir.path())
        .arg("list")
        .assert()
        .success()
        .get_output()
        .clone();
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(
        list.contains("small_attn") && list.contains("small_base"),
        "{list}"
    );

    attnx(dir.path())
        .args(["compare", "small_base"])
        .assert()
        .code(2);
    attnx(dir.path())
        .args(["compare", "small_base", "small_base", "--out", "res"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("small_base: named twice"));
}

#[test]
fn help_describes_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    attnx(dir.path()).arg("--help").assert().success().stdout(
        predicate::str::is_match(r"(?m)^  run +\S")
            .unwrap()
            .and(predicate::str::is_match(r"(?m)^  compare +\S").unwrap())
            .and(predicate::str::is_match(r"(?m)^  report +\S").unwrap()),
    );
    attnx(dir.path())
        .args(["run", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--repeats").and(predicate::str::contains("--jobs")));
}

#[test]
fn saved_models_reproduce_their_accuracy_and_draw_attention() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tiny.json", &tiny_config("tiny", "attention"));
    // Two repeats as one stack: each is saved as a model of its own.
    attnx(dir.path())
        .args([
            "run",
            "tiny.json",
            "--quiet",
            "--out",
            "res",
            "--save-model",
            "--stack",
            "2",
        ])
        .assert()
        .success();
    let recs = records(&dir.path().join("res"));
    assert_eq!(recs[1]["model_file"], "repeat-001.model.bpk");
    let out = attnx(dir.path())
        .args([
            "attention",
            "tiny.json",
            "--results",
            "res",
            "--repeat",
            "1",
            "--out",
            "att.svg",
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    let text = String::from_utf8(out.stdout).unwrap();
    let recorded = recs[1]["accuracy"].as_f64().unwrap();
    assert!(
        text.contains(&format!(
            "evaluates to {recorded:.2}% (recorded: {recorded:.2}%)"
        )),
        "{text}"
    );
    let svg = fs::read_to_string(dir.path().join("att.svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert!(doc.descendants().filter(|n| n.has_tag_name("rect")).count() >= 4 * 25);

    // Without --save-model, a run of several repeats keeps no weights.
    attnx(dir.path())
        .args(["run", "tiny.json", "--quiet", "--out", "res2"])
        .assert()
        .success();
    assert!(
        records(&dir.path().join("res2"))[0]
            .get("model_file")
            .is_none()
    );
    attnx(dir.path())
        .args(["attention", "tiny.json", "--results", "res2"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "tiny: no saved model for repeat 0 in res2/tiny/",
        ));

    // A record whose model file is gone (saved models are not committed: a fresh clone):
    // one sentence that says how to get the model back, no debug value.
    let model = common::config_folder(&dir.path().join("res"), "tiny").join("repeat-001.model.bpk");
    fs::remove_file(model).unwrap();
    let stderr = refused(
        dir.path(),
        &[
            "attention",
            "tiny.json",
            "--results",
            "res",
            "--repeat",
            "1",
        ],
    );
    assert!(
        stderr.contains("no saved model for repeat 1")
            && stderr.contains("`attnx run tiny.json --repeats 2 --save-model --force --out res`"),
        "{stderr}"
    );
    assert!(!stderr.contains("Io("), "{stderr}");
}

/// A CPU-only attnx (the default build) refuses the GPU backend at once, in one line that says
/// how to get it, from a config, from `--backend` and from `attnx slurm --gpus`; `attnx info`
/// names the backends it has.
#[test]
#[cfg_attr(feature = "wgpu", ignore = "checks the build without the wgpu feature")]
fn a_cpu_only_build_refuses_wgpu_and_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let rebuild = "this attnx was built without the wgpu backend: rebuild with `cargo build --release --features wgpu`";
    write(
        dir.path(),
        "gpu.json",
        r#"{"task": {"kind": "echo"}, "model": {"kind": "baseline"}, "backend": "wgpu"}"#,
    );
    write(dir.path(), "tiny.json", &tiny_config("tiny", "baseline"));
    for args in [
        vec!["run", "gpu.json", "--out", "res"],
        vec!["run", "tiny.json", "--backend", "wgpu", "--out", "res"],
        vec![
            "slurm",
            "tiny.json",
            "--gpus",
            "1",
            "--out",
            "res",
            "--dry-run",
        ],
        vec!["slurm", "gpu.json", "--out", "res", "--dry-run"],
    ] {
        let stderr = refused(dir.path(), &args);
        assert!(stderr.contains(rebuild), "{args:?}: {stderr}");
    }
    assert!(!dir.path().join("res").exists(), "nothing may be written");
    attnx(dir.path())
        .arg("info")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "backends in this build: ndarray, flex\n",
        ))
        .stdout(predicate::str::contains(
            "wgpu     not in this build (rebuild with `cargo build --release --features wgpu`)",
        ));
}

/// `attnx bench` times any echo config (E4's decoders too) and reports each case's share of the
/// measured peak; an IMDB config given as an echo model is a one-line error.
#[test]
fn bench_times_echo_configs_against_the_peak() {
    let dir = tempfile::tempdir().unwrap();
    let dot = tiny_config("dot", "attention")
        .replace(r#""hidden": 32"#, r#""hidden": 32, "score": "dot""#);
    write(dir.path(), "dot.json", &dot);
    let out = attnx(dir.path())
        .args([
            "bench", "--models", "dot.json", "--steps", "5", "--stacks", "1",
        ])
        .args(["--backends", "flex"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    let row = out
        .lines()
        .find(|l| l.contains("dot") && l.contains("flex"))
        .unwrap_or_else(|| panic!("no row for the config:\n{out}"));
    assert!(row.contains('%'), "no share of the peak: {row}");
    // The peak is measured again after the cases, to tell a busy host from a slow binary.
    assert!(
        out.lines().any(|l| l.starts_with("peak after the cases: ")),
        "no second peak:\n{out}"
    );

    write(
        dir.path(),
        "text.json",
        r#"{"task": {"kind": "imdb"}, "model": {"kind": "self_attention"}}"#,
    );
    // A config of the wrong kind is refused before the peak is measured: the error is all
    // that is printed.
    for (arguments, message) in [
        (
            ["bench", "--models", "text.json"],
            "--models: text.json is not an echo config",
        ),
        (
            ["bench", "--imdb", "dot.json"],
            "dot.json: not a classifier",
        ),
    ] {
        let stderr = refused(dir.path(), &arguments);
        assert!(stderr.contains(message), "{arguments:?}: {stderr}");
    }
}

/// `attnx bench --against OTHER` runs the same cases with both binaries in alternating rounds
/// and reads the other's output as its own: here the other is a copy of this binary, so every
/// case is found in both and compared, and each run's peaks are shown. Bad uses are one line,
/// exit 2.
#[test]
fn bench_against_another_build_compares_case_by_case() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tiny.json", &tiny_config("tiny", "baseline"));
    let other = dir.path().join("other-attnx");
    fs::copy(assert_cmd::cargo::cargo_bin("attnx"), &other).unwrap();
    let case = [
        "bench",
        "--models",
        "tiny.json",
        "--steps",
        "5",
        "--stacks",
        "1",
    ];
    let out = attnx(dir.path())
        .args(case)
        .args(["--backends", "flex", "--rounds", "2", "--against"])
        .arg(&other)
        .assert()
        .success()
        .stderr(predicate::str::contains("cannot reach 5%"))
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    // Both rounds of the one case, the other first in the second.
    let rounds: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("tiny.json flex 1") && l.split_whitespace().count() == 9)
        .collect();
    assert_eq!(rounds.len(), 2, "{out}");
    assert_eq!(rounds[1].split_whitespace().nth(5), Some("other"), "{out}");
    let verdict = out
        .lines()
        .find(|l| l.starts_with("tiny.json flex 1") && l.contains(" to "))
        .unwrap_or_else(|| panic!("no comparison row:\n{out}"));
    // Two rounds cannot decide (the smallest two-sided p of two pairs is 0.5).
    assert!(verdict.ends_with("no difference detected"), "{verdict}");
    let peaks = out
        .lines()
        .filter(|l| l.contains("this ") || l.contains("other "));
    assert!(peaks.filter(|l| l.contains(" / ")).count() >= 4, "{out}");

    attnx(dir.path())
        .args(case)
        .args(["--against", "no-such-attnx"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--against no-such-attnx: no such file",
        ));
    attnx(dir.path())
        .args(case)
        .args(["--rounds", "1", "--against"])
        .arg(&other)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--rounds 1: at least 2 rounds"));
}

/// `attnx bench --attention` times the self-attention kernel on a config's batch shape both
/// ways a training step can run it (keeping the weights, recomputing them) and compares them;
/// `--against` compares two builds on it. A config it cannot time, or `--rounds` without a
/// mode that has rounds, is one line, exit 2.
#[test]
fn bench_attention_times_the_kernel_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "small.json",
        r#"{"task": {"kind": "imdb", "maxlen": 12, "batch_size": 3},
            "model": {"kind": "self_attention", "embed": 8, "heads": 2, "head_dim": 4}}"#,
    );
    let case = ["bench", "--attention", "small.json", "--steps", "2"];
    let out = attnx(dir.path())
        .args(case)
        .args(["--rounds", "2"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    let row = out
        .lines()
        .find(|l| l.starts_with("small.json"))
        .unwrap_or_else(|| panic!("no row for the config:\n{out}"));
    assert!(
        row.contains("3 x 12, 2 x 4") && row.contains("yes"),
        "{row}"
    );
    // Two rounds cannot decide (the smallest two-sided p of two pairs is 0.5).
    assert!(row.ends_with("no difference detected"), "{row}");
    assert!(
        out.lines().any(|l| l.starts_with("peak after the cases: ")),
        "no second peak:\n{out}"
    );

    let other = dir.path().join("other-attnx");
    fs::copy(assert_cmd::cargo::cargo_bin("attnx"), &other).unwrap();
    let out = attnx(dir.path())
        .args(case)
        .args(["--rounds", "2", "--against"])
        .arg(&other)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    // One comparison row per timed column: the step both ways and the evaluation batch.
    let compared: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("small.json") && l.contains(" to "))
        .collect();
    assert_eq!(compared.len(), 3, "{out}");
    assert!(compared[1].contains(" ms/step recomputing "), "{out}");
    assert!(compared[2].contains(" ms/eval batch "), "{out}");

    write(
        dir.path(),
        "lstm.json",
        r#"{"task": {"kind": "imdb"}, "model": {"kind": "lstm", "pooling": "last"}}"#,
    );
    write(
        dir.path(),
        "masked.json",
        r#"{"task": {"kind": "imdb"}, "model": {"kind": "self_attention", "mask_padding": true}}"#,
    );
    let uses: [(&[&str], &str); 6] = [
        (
            &["--attention", "lstm.json"],
            "lstm.json: not a self-attention classifier",
        ),
        (
            &["--attention", "masked.json"],
            "masked.json: its scores are masked",
        ),
        (
            &["--attention", "small.json", "--steps", "0"],
            "--steps 0: --attention times at least one batch",
        ),
        (
            &["--attention", "small.json", "--rounds", "1"],
            "--rounds 1: at least 2 rounds are needed",
        ),
        (
            &["--models", "small.json", "--rounds", "3"],
            "--rounds counts the rounds of --against or --attention",
        ),
        (
            &["--load", "small.json", "--rounds", "3"],
            "--rounds counts the rounds of --against or --attention",
        ),
    ];
    // Refused before the peak is measured: the error is all it prints.
    for (arguments, message) in uses {
        let stderr = refused(dir.path(), &[&["bench"], arguments].concat());
        assert!(stderr.contains(message), "{arguments:?}: {stderr}");
    }
}
