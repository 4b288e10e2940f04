//! `attnx compare --until-decided`: looks taken from the records, decided at the first look
//! whose repeated confidence interval says so, and the same verdict when run again.

mod common;
use common::{attnx, records, write};

/// Small E1 models: the baseline echoes a few sequences in a hundred, attention most.
const BASE: &str = r#"{"name": "NAME", "task": {"kind": "echo", "train_steps": 3000, "eval_samples": 50},
  "model": {"kind": "KIND", "hidden": 64}, "repeats": 10, "seed": 3}"#;

/// `a.json` (the baseline) and `b.json` (attention) in `dir`.
fn write_configs(dir: &std::path::Path) {
    write(
        dir,
        "a.json",
        &BASE.replace("NAME", "sa").replace("KIND", "baseline"),
    );
    write(
        dir,
        "b.json",
        &BASE.replace("NAME", "sb").replace("KIND", "attention"),
    );
}

#[test]
fn a_large_difference_is_decided_early_and_stays_decided() {
    let dir = tempfile::tempdir().unwrap();
    write_configs(dir.path());
    let run = || {
        let out = attnx(dir.path())
            .args([
                "compare",
                "a.json",
                "b.json",
                "--until-decided",
                "--max-repeats",
                "8",
                "--out",
                "res",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(out.status.success(), "{stderr}");
        (String::from_utf8(out.stdout).unwrap(), stderr)
    };
    let (first, log) = run();
    // Decided at an early look (with 3 repeats each Student's t has about 2 degrees of freedom,
    // and O'Brien-Fleming's first boundary is strict: look 2 decides such a difference), and
    // only that look's repeats were trained.
    let decided = first
        .lines()
        .find_map(|l| l.strip_prefix("decided at look "))
        .unwrap_or_else(|| panic!("{first}"));
    let repeats: usize = decided
        .split(" with ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        decided.contains(" of at most 8 repeats each: "),
        "{decided}"
    );
    assert!(repeats == 3 || repeats == 5, "{decided}");
    assert!(first.contains("different (higher)"), "{first}");
    assert!(log.contains("sb - sa: look 1 (3 repeats each)"), "{log}");
    assert_eq!(records(&dir.path().join("res")).len(), 2 * repeats);
    assert!(
        first.contains(&format!(
            "Compute: {} repeats in all (sa {repeats}, sb {repeats}), against 16",
            2 * repeats
        )),
        "{first}"
    );

    // Again: nothing trained, the same looks and verdict from the records.
    let (second, _) = run();
    assert_eq!(records(&dir.path().join("res")).len(), 2 * repeats);
    assert_eq!(first, second);
}

#[test]
fn bad_designs_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    write_configs(dir.path());
    for (args, expected) in [
        (
            vec!["--until-decided", "--max-repeats", "2"],
            "--until-decided: max_repeats must be at least 3",
        ),
        (
            vec!["--until-decided", "--margin", "0"],
            "--until-decided: margin must be a positive number of points",
        ),
        (
            vec!["--until-decided", "--repeats", "5"],
            "--until-decided chooses the repeats itself",
        ),
        (
            vec!["--until-decided", "--at", "best"],
            "sa: its records have no best epoch figure (an echo repeat has no epochs nor classes)",
        ),
    ] {
        let out = attnx(dir.path())
            .args(["compare", "a.json", "b.json", "--out", "res", "-q"])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// A Slurm job until decided: its tasks run the same design (and wait for each other's
/// repeats of a look), sized by the first look's missing repeats.
#[test]
fn a_slurm_job_until_decided_runs_the_design_in_every_task() {
    let dir = tempfile::tempdir().unwrap();
    write_configs(dir.path());
    let out = attnx(dir.path())
        .args([
            "slurm",
            "a.json",
            "b.json",
            "--until-decided",
            "--max-repeats",
            "8",
        ])
        .args(["--at", "final", "--out", "res", "--dry-run"])
        .output()
        .unwrap();
    let (script, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert!(out.status.success(), "{stderr}");
    let command = script.lines().last().unwrap();
    assert!(command.contains(" compare "), "{command}");
    assert!(
        command.ends_with("--until-decided --max-repeats 8 --margin 1 --alpha 0.05 --at final"),
        "{command}"
    );
    assert!(!command.contains("--no-wait"), "{command}");
    assert!(script.contains("#SBATCH --array=0-5"), "{script}");
    assert!(stderr.contains("6 repeat(s) missing"), "{stderr}");
}

/// `--until-decided` on an experiment runs the experiment's own design; options given on the
/// command line change only their own fields (it once took every field's default instead, and
/// ran E2's best-epoch question at the final epoch).
#[test]
fn an_experiments_design_is_kept_and_options_override_only_their_fields() {
    let dir = tempfile::tempdir().unwrap();
    write_configs(dir.path());
    write(
        dir.path(),
        "e.json",
        r#"{"name": "e", "title": "t", "metric": "m", "configs": ["a.json", "b.json"],
            "sequential": {"max_repeats": 5, "margin": 30.0}}"#,
    );
    let header = |extra: &[&str]| {
        let out = attnx(dir.path())
            .args([
                "compare",
                "--experiment",
                "e.json",
                "--until-decided",
                "--out",
                "res",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        stdout
            .lines()
            .find(|l| l.starts_with("Run until decided"))
            .unwrap_or_else(|| panic!("{stdout}"))
            .to_string()
    };
    let own = header(&[]);
    assert!(
        own.contains("(at most 5)") && own.contains("±30 point"),
        "{own}"
    );
    let changed = header(&["--max-repeats", "3"]);
    assert!(
        changed.contains("(at most 3)") && changed.contains("±30 point"),
        "{changed}"
    );
}

/// `attnx ARGS --until-decided --max-repeats 3 --out res` in `dir`, which must succeed: its
/// standard output and error.
fn succeeds(dir: &std::path::Path, args: &[&str]) -> (String, String) {
    let out = attnx(dir)
        .args(args)
        .args(["--until-decided", "--max-repeats", "3", "--out", "res"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

/// `--margin` is the margin of every line the run prints: the looks and the fixed-n comparison
/// under them (which once tested equivalence at ±1 point whatever the margin given).
#[test]
fn the_margin_given_is_used_by_every_line_of_the_run() {
    let dir = tempfile::tempdir().unwrap();
    write_configs(dir.path());
    let (stdout, stderr) = succeeds(
        dir.path(),
        &["compare", "a.json", "b.json", "--margin", "3"],
    );
    assert!(stdout.contains("±3 points"), "{stdout}");
    assert!(stdout.contains("; TOST ±3 points: "), "{stdout}");
    assert!(
        !stdout.contains("±1 point") && !stderr.contains("±1 point"),
        "{stdout}\n{stderr}"
    );
}

/// An experiment has one margin: `sequential.margin` alone is the claims' too, and two
/// different margins are refused.
#[test]
fn an_experiment_gives_its_margin_once() {
    let dir = tempfile::tempdir().unwrap();
    write_configs(dir.path());
    write(
        dir.path(),
        "two.json",
        r#"{"name": "two", "title": "t", "metric": "m", "configs": ["a.json", "b.json"],
            "margin": 2.0, "sequential": {"max_repeats": 5, "margin": 30.0}}"#,
    );
    let out = attnx(dir.path())
        .args(["compare", "--experiment", "two.json", "--out", "res"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.trim(),
        "error: two.json: sequential.margin (30) differs from margin (2): give the margin once"
    );
}

/// `--until-decided` on an experiment without a design of its own judges within the file's
/// margin, and says nothing of `--margin`, which was not given.
#[test]
fn an_experiments_own_margin_holds_without_a_design() {
    let dir = tempfile::tempdir().unwrap();
    write_configs(dir.path());
    write(
        dir.path(),
        "m.json",
        r#"{"name": "m", "title": "t", "metric": "m", "configs": ["a.json", "b.json"],
            "margin": 30.0}"#,
    );
    let (stdout, stderr) = succeeds(dir.path(), &["compare", "--experiment", "m.json"]);
    assert!(stdout.contains("±30 points"), "{stdout}");
    assert!(!stdout.contains("±1 point"), "{stdout}");
    assert!(!stderr.contains("--margin"), "{stderr}");
}
