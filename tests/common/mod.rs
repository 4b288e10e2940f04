//! Helpers shared by the integration tests (each test file includes this with `mod common;`).
#![allow(dead_code)] // each test file uses its own part of these helpers

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

/// The attnx binary, run in `dir`, with its cache in `dir/cache` and no data named by the
/// environment: a test sees neither the developer's cache nor their `ATTNX_DATA`.
pub fn attnx(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("attnx").unwrap();
    cmd.current_dir(dir)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env_remove("ATTNX_DATA");
    cmd
}

/// The standard error of `attnx ARGS` in `dir`, which must exit with code 2 after one line (a
/// refused input's error, and nothing before it).
pub fn refused(dir: &Path, args: &[&str]) -> String {
    let out = attnx(dir).args(args).assert().code(2).get_output().clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    stderr
}

/// The IMDB archive, found as the binary finds it (`$ATTNX_DATA`, the fetch cache) or beside
/// the checkout; a test that needs it fails without it (such tests are `#[ignore = "needs the
/// IMDB archive ..."]`: `cargo test --release -- --ignored` runs them, as CI does).
pub fn shared_archive() -> PathBuf {
    attnx::data::prepare::archive_for_tests()
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

/// Every record (`repeat-*.json`) under `dir`, parsed, in path order.
pub fn records(dir: &Path) -> Vec<Value> {
    let mut paths: Vec<PathBuf> = walk(dir)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("repeat-") && name.ends_with(".json")
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| serde_json::from_str(&fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

/// Every file under `dir`, recursively.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// The one config-hash folder of config `name` under the results folder `results`.
pub fn config_folder(results: &Path, name: &str) -> PathBuf {
    let mut folders: Vec<PathBuf> = fs::read_dir(results.join(name))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(folders.len(), 1, "{name}: {folders:?}");
    folders.pop().unwrap()
}
