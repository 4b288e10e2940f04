//! The shipped configs and experiments, built into the binary, so that an installed attnx runs
//! them from any folder.
//!
//! A built-in file has a path of its own, `attnx:configs/baseline.json`, that every loader
//! reads through [`read`]: the loaders, messages and Slurm scripts keep working with paths,
//! and a message names where a config came from. A file of the same name in `./configs/` or
//! `./experiments/`, or a path, takes precedence (see [`crate::config::resolve_named`]).

use std::path::{Path, PathBuf};

/// The prefix of a built-in file's path.
pub const PREFIX: &str = "attnx:";

/// `configs/*.json`, by name.
static CONFIGS: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/configs.rs"));
/// `experiments/*.json`, by name.
static EXPERIMENTS: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/experiments.rs"));

/// The built-in files of a folder (`configs` or `experiments`), by name.
fn folder(dir: &str) -> &'static [(&'static str, &'static str)] {
    match dir {
        "configs" => CONFIGS,
        "experiments" => EXPERIMENTS,
        _ => &[],
    }
}

/// The path of built-in `<dir>/<name>.json`, if there is one.
pub fn path(dir: &str, name: &str) -> Option<PathBuf> {
    folder(dir)
        .iter()
        .any(|(n, _)| *n == name)
        .then(|| PathBuf::from(format!("{PREFIX}{dir}/{name}.json")))
}

/// The built-in text a path names, if it names one.
fn text(path: &Path) -> Option<&'static str> {
    let rest = path.to_str()?.strip_prefix(PREFIX)?;
    let (dir, file) = rest.split_once('/')?;
    let name = file.strip_suffix(".json")?;
    folder(dir)
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// Whether `path` names a built-in file.
pub fn is_builtin(path: &Path) -> bool {
    text(path).is_some()
}

/// A file's text: a built-in one's, or the file system's.
pub fn read(path: &Path) -> std::io::Result<String> {
    match text(path) {
        Some(text) => Ok(text.to_string()),
        None => std::fs::read_to_string(path),
    }
}

/// Every `.json` file in `dir` on disk, and every built-in one of `builtin_dir` that no file
/// on disk shadows, by name: (name, path).
pub fn merged(dir: &Path, builtin_dir: &str) -> Vec<(String, PathBuf)> {
    let mut files: Vec<(String, PathBuf)> = crate::fsutil::files_named(dir, "", ".json")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| Some((p.file_stem()?.to_str()?.to_string(), p)))
        .collect();
    for (name, _) in folder(builtin_dir) {
        if !files.iter().any(|(n, _)| n == name) {
            files.extend(path(builtin_dir, name).map(|p| (name.to_string(), p)));
        }
    }
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shipped file is built in, byte for byte, and read back through its path.
    #[test]
    fn the_shipped_files_are_built_in() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for dir in ["configs", "experiments"] {
            let on_disk = crate::fsutil::files_named(&root.join(dir), "", ".json").unwrap();
            assert_eq!(on_disk.len(), folder(dir).len(), "{dir}");
            for file in on_disk {
                let name = file.file_stem().unwrap().to_str().unwrap();
                let builtin = path(dir, name).unwrap();
                assert!(is_builtin(&builtin));
                assert_eq!(
                    read(&builtin).unwrap(),
                    std::fs::read_to_string(&file).unwrap()
                );
            }
        }
        assert_eq!(path("configs", "no_such_config"), None);
        assert!(!is_builtin(Path::new("configs/baseline.json")));
    }
}
