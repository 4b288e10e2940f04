//! Every shipped config runs end to end: each one from `configs/`, shortened to a few steps
//! (the model, its switches and sizes as shipped), trained, evaluated, recorded, and its
//! attention read back from the saved model where it has attention.

use std::fs;
use std::path::Path;

use serde_json::Value;

mod common;
use common::{attnx, shared_archive};

fn shipped_configs() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut configs: Vec<(String, Value)> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().to_string();
            (
                name,
                serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap(),
            )
        })
        .collect();
    configs.sort_by(|a, b| a.0.cmp(&b.0));
    configs
}

/// Writes `configs` (shortened) into `dir/configs/`, runs them in one `attnx compare`, and
/// checks each one's records and attention read-out.
fn run_shortened(dir: &Path, configs: &[(String, Value)], data: Option<&Path>) {
    fs::create_dir_all(dir.join("configs")).unwrap();
    for (name, config) in configs {
        fs::write(
            dir.join("configs").join(format!("{name}.json")),
            serde_json::to_string_pretty(config).unwrap(),
        )
        .unwrap();
    }
    let names: Vec<&str> = configs.iter().map(|(n, _)| n.as_str()).collect();
    let mut cmd = attnx(dir);
    cmd.arg("compare")
        .args(&names)
        .args(["--quiet", "--save-model", "--out", "res"]);
    if let Some(data) = data {
        cmd.env("ATTNX_DATA", data);
    }
    cmd.assert().success();

    for (name, config) in configs {
        let folder = fs::read_dir(dir.join("res").join(name))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let record: Value =
            serde_json::from_str(&fs::read_to_string(folder.join("repeat-000.json")).unwrap())
                .unwrap();
        let accuracy = record["accuracy"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&accuracy), "{name}: {accuracy}");
        if config["task"]["kind"] == "echo" {
            // Per output position, the pairs right there: at least the exactly matched ones
            // (right everywhere), at most all of them.
            let positions = record["position_correct"].as_array().unwrap();
            let correct = record["correct"].as_u64().unwrap();
            let total = record["total"].as_u64().unwrap();
            assert_eq!(
                positions.len() as u64,
                config["task"]["n_in"].as_u64().unwrap_or(5)
            );
            for n in positions.iter().map(|n| n.as_u64().unwrap()) {
                assert!(n >= correct && n <= total, "{name}: {record}");
            }
        }
        assert!(folder.join("repeat-000.model.bpk").is_file(), "{name}");

        let model = &config["model"];
        let has_attention = match model["kind"].as_str().unwrap() {
            "baseline" => false,
            "lstm" => model["pooling"] == "attention",
            _ => true,
        };
        let mut cmd = attnx(dir);
        cmd.args(["attention", name, "--results", "res"]);
        if let Some(data) = data {
            cmd.env("ATTNX_DATA", data);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.success(), has_attention, "{name}: {stderr}");
        if has_attention {
            let svg = dir.join(format!("res/plots/{name}_attention_0.svg"));
            roxmltree::Document::parse(&fs::read_to_string(&svg).unwrap()).unwrap();
        } else {
            assert!(stderr.contains("no attention to draw"), "{name}: {stderr}");
        }
    }
}

#[test]
fn every_echo_config_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let configs: Vec<(String, Value)> = shipped_configs()
        .into_iter()
        .filter(|(_, c)| c["task"]["kind"] == "echo")
        .map(|(name, mut c)| {
            c["task"]["train_steps"] = 30.into();
            c["task"]["eval_samples"] = 20.into();
            c["model"]["hidden"] = 32.into();
            c["repeats"] = 2.into();
            (name, c)
        })
        .collect();
    assert!(configs.len() >= 6, "E1's two configs and E4's four");
    run_shortened(dir.path(), &configs, None);
}

#[test]
#[ignore = "needs the IMDB archive ($ATTNX_DATA or `attnx data fetch imdb`)"]
fn every_imdb_config_runs_end_to_end() {
    let archive = shared_archive();
    let dir = tempfile::tempdir().unwrap();
    let configs: Vec<(String, Value)> = shipped_configs()
        .into_iter()
        .filter(|(_, c)| c["task"]["kind"] == "imdb")
        .map(|(name, mut c)| {
            c["task"]["epochs"] = 1.into();
            c["task"]["train_limit"] = 64.into();
            c["task"]["test_limit"] = 64.into();
            (name, c)
        })
        .collect();
    assert!(configs.len() >= 8, "E2/E3's three configs and E4's five");
    run_shortened(dir.path(), &configs, Some(&archive));
}
