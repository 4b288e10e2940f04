//! attnx as a tool for the user's own question: the installed binary in an empty folder, text
//! tasks on labelled texts of k classes in every format, bad data refused with one line, and
//! the text path checked against the IMDB one.

use std::path::Path;

use predicates::prelude::*;
use serde_json::Value;

mod common;
use common::{attnx, records, shared_archive, write};

/// The installed binary needs nothing of the checkout: from an empty folder it lists, shows
/// and runs the built-in configs, and reports them.
#[test]
fn the_binary_runs_its_built_in_configs_in_an_empty_folder() {
    let dir = tempfile::tempdir().unwrap();
    attnx(dir.path()).arg("list").assert().success().stdout(
        predicate::str::is_match(r"baseline +echo +baseline +flex +10 +built in")
            .unwrap()
            .and(predicate::str::is_match(r"\ne1 +2 +3 +built in").unwrap()),
    );
    let shown = attnx(dir.path())
        .args(["show", "attention", "--set", "task.train_steps=150"])
        .output()
        .unwrap();
    assert!(shown.status.success());
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["task"]["train_steps"], 150);
    assert_eq!(shown["model"]["hidden"], 150, "defaults filled in");
    assert!(
        shown.get("name").is_none(),
        "saved, it runs under its own name"
    );

    attnx(dir.path())
        .args(["compare", "baseline", "attention"])
        .args(["--set", "task.train_steps=150", "--repeats", "2"])
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"baseline \[task.train_steps=150\] +flex +2 ").unwrap());
    assert_eq!(records(&dir.path().join("results")).len(), 4);
    attnx(dir.path()).arg("report").assert().success();
    let report = std::fs::read_to_string(dir.path().join("results/REPORT.md")).unwrap();
    assert!(report.contains("E1: echo task"), "{report}");

    // A file of the same name in ./configs/ takes precedence, and `list` says so.
    std::fs::create_dir(dir.path().join("configs")).unwrap();
    write(
        &dir.path().join("configs"),
        "baseline.json",
        r#"{"task": {"kind": "echo", "train_steps": 150}, "model": {"kind": "baseline"}, "repeats": 2}"#,
    );
    attnx(dir.path()).arg("list").assert().success().stdout(
        predicate::str::is_match(r"baseline +echo +baseline +flex +2 +configs/baseline.json")
            .unwrap(),
    );
    attnx(dir.path())
        .args(["show", "baseline"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"train_steps\": 150"));
}

/// Three classes whose texts lean on words of their own, split into training and test rows,
/// class by class.
fn texts() -> Vec<(&'static str, &'static str, String)> {
    let classes = ["red", "green", "blue"];
    let mut rows = Vec::new();
    for i in 0..150usize {
        let class = classes[i % 3];
        let words: Vec<String> = (0..10)
            .map(|j| {
                let k = (i * 7 + j * 13) % 11;
                if (i + j) % 3 == 0 {
                    format!("shared{k}")
                } else {
                    format!("{class}{k}")
                }
            })
            .collect();
        let split = if i % 5 == 0 { "test" } else { "train" };
        rows.push((split, class, words.join(" ")));
    }
    // In the order a folder per class is read: class by class.
    rows.sort_by_key(|(_, class, _)| *class);
    rows
}

fn csv_of(rows: &[(&str, &str, String)], split: Option<&str>, delimiter: char) -> String {
    let mut out = format!("label{delimiter}text\n");
    for (s, label, text) in rows {
        if split.is_none_or(|want| want == *s) {
            out.push_str(&format!("{label}{delimiter}\"{text}\"\n"));
        }
    }
    out
}

fn jsonl_of(rows: &[(&str, &str, String)], split: &str) -> String {
    rows.iter()
        .filter(|(s, ..)| *s == split)
        .map(|(_, label, text)| format!("{}\n", serde_json::json!({"text": text, "label": label})))
        .collect()
}

fn folder_of(dir: &Path, rows: &[(&str, &str, String)], split: &str) {
    for (i, (s, label, text)) in rows.iter().enumerate() {
        if *s == split {
            let class = dir.join(split).join(label);
            std::fs::create_dir_all(&class).unwrap();
            std::fs::write(class.join(format!("{i:04}.txt")), text).unwrap();
        }
    }
}

/// A small text config: `source` is the task's data fields.
fn text_config(name: &str, source: &str, output: &str) -> String {
    format!(
        r#"{{"name": "{name}",
  "task": {{"kind": "text", {source}, "num_words": 60, "maxlen": 12, "epochs": 8, "batch_size": 16}},
  "model": {{"kind": "self_attention", "embed": 16, "heads": 2, "head_dim": 8, "position": "sinusoidal", "output": "{output}"}},
  "repeats": 1}}"#
    )
}

/// The figures of a record that training gives (not the data's names and checksums).
fn trained(record: &Value) -> Value {
    serde_json::json!({
        "accuracy": record["accuracy"],
        "epochs": record["epochs"].as_array().unwrap().iter().map(|e| {
            serde_json::json!([e["train_loss"], e["train_accuracy"], e["test_loss"], e["test_accuracy"]])
        }).collect::<Vec<_>>(),
        "loss_curve": record["loss_curve"],
        "confusion": record["confusion"],
    })
}

/// The same texts as CSV, TSV, JSON Lines and folders train to the same record, with three
/// classes, a confusion matrix and the data named; a sigmoid output is refused for them.
#[test]
fn every_format_of_the_same_texts_trains_to_the_same_record() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rows = texts();
    write(d, "train.csv", &csv_of(&rows, Some("train"), ','));
    write(d, "test.csv", &csv_of(&rows, Some("test"), ','));
    write(d, "train.tsv", &csv_of(&rows, Some("train"), '\t'));
    write(d, "test.tsv", &csv_of(&rows, Some("test"), '\t'));
    write(d, "train.jsonl", &jsonl_of(&rows, "train"));
    write(d, "test.jsonl", &jsonl_of(&rows, "test"));
    folder_of(&d.join("folders"), &rows, "train");
    folder_of(&d.join("folders"), &rows, "test");
    let mut with_split = String::from("split,label,text\n");
    for (s, label, text) in &rows {
        with_split.push_str(&format!("{s},{label},\"{text}\"\n"));
    }
    write(d, "all.csv", &with_split);
    let sources = [
        ("csv", r#""train": "train.csv", "test": "test.csv""#),
        ("tsv", r#""train": "train.tsv", "test": "test.tsv""#),
        ("jsonl", r#""train": "train.jsonl", "test": "test.jsonl""#),
        (
            "folders",
            r#""train": "folders/train", "test": "folders/test""#,
        ),
        ("column", r#""train": "all.csv", "split_column": "split""#),
    ];
    let mut figures = Vec::new();
    for (name, source) in sources {
        write(
            d,
            &format!("{name}.json"),
            &text_config(name, source, "softmax"),
        );
        attnx(d)
            .args(["run", &format!("{name}.json")])
            .assert()
            .success();
        let [record] = &records(&d.join("results").join(name))[..] else {
            panic!("{name}: one record");
        };
        let classes: Vec<&str> = record["data"]["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["label"].as_str().unwrap())
            .collect();
        assert_eq!(classes, ["blue", "green", "red"], "{name}: classes by name");
        assert_eq!(record["data"]["classes"][0]["test"], 10, "{name}");
        assert_eq!(
            record["data"]["files"][0]["rows"],
            if name == "column" { 150 } else { 120 }
        );
        let confusion: Vec<Vec<u64>> = serde_json::from_value(record["confusion"].clone()).unwrap();
        let total: u64 = confusion.iter().flatten().sum();
        let hits: u64 = (0..3).map(|c| confusion[c][c]).sum();
        assert_eq!(
            (total, hits),
            (30, record["correct"].as_u64().unwrap()),
            "{name}"
        );
        figures.push((name, trained(record)));
    }
    for (name, figure) in &figures[1..] {
        assert_eq!(figure, &figures[0].1, "{name} trains as csv does");
    }
    // The report shows macro-F1 for more than two classes.
    attnx(d)
        .args(["report", "--format", "terminal"])
        .assert()
        .success()
        .stdout(predicate::str::contains("macro-F1"));

    // A sigmoid output is refused for three classes, alone or beside a config that loaded the
    // same data first.
    write(
        d,
        "sigmoid.json",
        &text_config("sigmoid", sources[0].1, "sigmoid"),
    );
    for run in [
        &["run", "sigmoid.json"][..],
        &["compare", "csv.json", "sigmoid.json"],
    ] {
        attnx(d).args(run).assert().code(2).stderr(predicate::str::contains(
            "sigmoid: model.output: \"sigmoid\" is one unit for two classes, and the data has 3",
        ));
    }

    // The same path with other bytes is other data: refused before it joins the records.
    let mut changed = csv_of(&rows, Some("train"), ',');
    changed.push_str("red,\"one more red text\"\n");
    write(d, "train.csv", &changed);
    attnx(d)
        .args(["run", "csv.json", "--repeats", "2"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "csv: train.csv has changed since repeat 0 was recorded",
        ));
    assert_eq!(records(&d.join("results/csv")).len(), 1);
}

/// Each kind of bad data: exit 2, one line naming the file, the line and the problem, and
/// nothing recorded.
#[test]
fn bad_data_is_refused_in_one_line_and_nothing_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "good.csv", "text,label\nfine film,pos\nawful film,neg\n");
    let cases: Vec<(&str, &[u8], &str, &str)> = vec![
        (
            "quote.csv",
            b"text,label\ngood,pos\n\"bad,neg\nugly,neg\n",
            r#""test_fraction": 0.5"#,
            "quote.csv:3: a quoted field is never closed",
        ),
        (
            "fields.csv",
            b"text,label\ngood,pos\nbad,neg,oops\n",
            r#""test_fraction": 0.5"#,
            "fields.csv:3: 3 field(s) where the header has 2",
        ),
        (
            "column.csv",
            b"review,label\ngood,pos\nbad,neg\n",
            r#""test_fraction": 0.5"#,
            "column.csv:1: no text column \"text\"",
        ),
        (
            "key.jsonl",
            b"{\"text\": \"good\", \"label\": \"pos\"}\n{\"txt\": \"bad\", \"label\": \"neg\"}\n",
            r#""test_fraction": 0.5"#,
            "key.jsonl:2: no key \"text\"",
        ),
        (
            "empty_text.csv",
            b"text,label\ngood,pos\n  ,neg\n",
            r#""test_fraction": 0.5"#,
            "empty_text.csv:3: an empty text",
        ),
        (
            "one_class.csv",
            b"text,label\ngood,pos\nfine,pos\ngreat,pos\n",
            r#""test": "good.csv""#,
            "one_class.csv: the training texts have 1 class (pos); a classifier needs at least 2",
        ),
        (
            "unseen.csv",
            b"text,label\ngood,pos\nbad,neg\nso so,meh\n",
            r#""train": "good.csv""#,
            "unseen.csv:4: label \"meh\" is never seen in training",
        ),
        (
            "latin1.csv",
            b"text,label\ngood,pos\ncaf\xe9,neg\n",
            r#""test_fraction": 0.5"#,
            "latin1.csv:3: the text is not UTF-8",
        ),
        (
            "empty.csv",
            b"",
            r#""test_fraction": 0.5"#,
            "empty.csv: an empty file",
        ),
    ];
    for (file, bytes, source, expected) in cases {
        std::fs::write(d.join(file), bytes).unwrap();
        // A case whose source names its own `train` reads the bad file as the test file.
        let source = if source.contains("\"train\"") {
            format!(r#"{source}, "test": "{file}""#)
        } else {
            format!(r#""train": "{file}", {source}"#)
        };
        write(d, "bad.json", &text_config("bad", &source, "softmax"));
        let out = attnx(d).args(["run", "bad.json"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        let last = stderr.trim_end().lines().last().unwrap_or_default();
        assert!(
            last.contains(expected),
            "{file}: expected {expected:?}, got {stderr:?}"
        );
        assert!(!stderr.contains("panicked"), "{file}: {stderr}");
    }
    std::fs::create_dir(d.join("no_classes")).unwrap();
    write(
        &d.join("no_classes"),
        "a.txt",
        "a text outside any class folder",
    );
    write(
        d,
        "bad.json",
        &text_config(
            "bad",
            r#""train": "no_classes", "test_fraction": 0.5"#,
            "softmax",
        ),
    );
    attnx(d)
        .args(["run", "bad.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no_classes: no class folders"));
    assert!(records(&d.join("results")).is_empty(), "nothing recorded");
}

/// `data info` counts what a config would read: classes per split, lengths against maxlen,
/// the vocabulary's coverage, empty and duplicate texts, texts in both splits.
#[test]
fn data_info_describes_labelled_texts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "t.csv",
        "split,label,text\ntrain,a,one two three\ntrain,b,four five\ntrain,a,one two three\ntrain,b, \ntest,a,four five\ntest,b,six\n",
    );
    write(
        d,
        "t.json",
        &text_config(
            "t",
            r#""train": "t.csv", "split_column": "split""#,
            "softmax",
        )
        .replace("\"maxlen\": 12", "\"maxlen\": 3"),
    );
    attnx(d)
        .args(["data", "info", "--config", "t.json"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("3 training texts, 2 test texts (by the column \"split\")")
                .and(predicate::str::contains("classes: 2 (training/test texts): a 2/1, b 1/1"))
                .and(predicate::str::contains("max 3; maxlen 3 cuts 2 of 3 texts"))
                .and(predicate::str::contains("5 distinct training words"))
                .and(predicate::str::contains("66.7% of test tokens"))
                .and(predicate::str::contains(
                    "empty texts: 1 (a config refuses them); duplicates: 1 training and 0 test texts repeat one before them; 1 test texts are also training texts",
                )),
        );
}

/// The text path against the articles' one: the IMDB archive exported to CSV and read by a
/// text config gives the records of the IMDB config it mirrors, figure for figure.
#[test]
#[ignore = "needs the IMDB archive ($ATTNX_DATA or `attnx data fetch imdb`)"]
fn a_text_config_on_the_exported_archive_trains_as_the_imdb_config() {
    let archive = shared_archive();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    attnx(d)
        .env("ATTNX_DATA", &archive)
        .args(["data", "export", "imdb", "imdb.csv"])
        .assert()
        .success();
    let model = r#""model": {"kind": "self_attention", "position": "sinusoidal"}"#;
    let sizes = r#""epochs": 2, "train_limit": 600, "test_limit": 400"#;
    write(
        d,
        "imdb.json",
        &format!(r#"{{"task": {{"kind": "imdb", {sizes}}}, {model}}}"#),
    );
    write(
        d,
        "text.json",
        &format!(
            r#"{{"task": {{"kind": "text", "train": "imdb.csv", "split_column": "split", {sizes}}}, {model}}}"#
        ),
    );
    for config in ["imdb.json", "text.json"] {
        attnx(d)
            .env("ATTNX_DATA", &archive)
            .args(["run", config])
            .assert()
            .success();
    }
    let imdb = &records(&d.join("results/imdb"))[0];
    let text = &records(&d.join("results/text"))[0];
    let without_confusion = |v: &Value| {
        let mut v = trained(v);
        v["confusion"] = Value::Null;
        v
    };
    assert_eq!(without_confusion(text), without_confusion(imdb));
    assert_eq!(text["data"]["files"][0]["rows"], 50_000);
}

/// Macro-F1 is a text task's figure: a design on it refuses other configs before training, and
/// a claim on it says which records lack it.
#[test]
fn macro_f1_is_asked_of_text_tasks_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for dir in ["configs", "experiments"] {
        std::fs::create_dir(d.join(dir)).unwrap();
    }
    for name in ["a", "b"] {
        write(
            &d.join("configs"),
            &format!("{name}.json"),
            r#"{"task": {"kind": "echo", "train_steps": 100, "eval_samples": 20}, "model": {"kind": "baseline", "hidden": 8}, "repeats": 2}"#,
        );
    }
    write(
        &d.join("experiments"),
        "x.json",
        r#"{"name": "x", "title": "X", "metric": "m", "configs": ["a", "b"],
            "claims": [{"claim": "the same", "test": {"kind": "difference", "control": "a", "variant": "b", "direction": "same", "at": "macro_f1"}}]}"#,
    );
    attnx(d)
        .args([
            "compare",
            "--experiment",
            "x",
            "--until-decided",
            "--at",
            "macro_f1",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "a: its records have no macro-F1 figure (an echo repeat has no epochs nor classes)",
        ));
    assert!(records(&d.join("results")).is_empty(), "nothing trained");
    attnx(d).args(["compare", "a", "b"]).assert().success();
    attnx(d)
        .args(["report", "--format", "terminal"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "a's records have no macro-F1 figure",
        ));
}
