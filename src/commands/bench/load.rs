//! `attnx bench --load CONFIG...`: how long a classifier's data takes to read and prepare (for
//! a text task: read, tokenize, split, encode), and the process's peak memory after it.

use anyhow::Result;

use super::Results;
use crate::config::{ExperimentConfig, Study, resolve_config_path};
use crate::data::prepare;
use crate::error::InputError;

/// The process's peak resident memory so far, in bytes: `VmHWM` of `/proc/self/status`
/// (Linux; `None` elsewhere).
fn peak_rss() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// The bytes of a file, or of every file under a folder.
fn size_of(path: &std::path::Path) -> u64 {
    match std::fs::read_dir(path) {
        Ok(entries) => entries.flatten().map(|e| size_of(&e.path())).sum(),
        Err(_) => std::fs::metadata(path).map_or(0, |m| m.len()),
    }
}

pub fn run(names: &[String], data: Option<&std::path::Path>) -> Result<()> {
    let mut results = Results::new(&[
        "config",
        "MB read",
        "texts",
        "seconds",
        "MB/s",
        "peak memory (MB)",
    ]);
    for name in names {
        let config = ExperimentConfig::load(&resolve_config_path(name)?)?;
        let Study::Imdb { task, corpus, .. } = &config.study else {
            return Err(
                InputError(format!("{name}: not a classifier (an imdb or text config)")).into(),
            );
        };
        let started = std::time::Instant::now();
        let source =
            prepare::DataSource::locate(corpus, config.seed, data, config.data.as_deref())?;
        let prepared = source.prepare(task)?;
        let seconds = started.elapsed().as_secs_f64();
        // Measured after the clock stops: a folder's size is a stat per file.
        let bytes: u64 = source.paths().into_iter().map(size_of).sum();
        let mb = bytes as f64 / 1e6;
        results.push(vec![
            config.name().to_string(),
            format!("{mb:.1}"),
            (prepared.train.len() + prepared.test.len()).to_string(),
            format!("{seconds:.1}"),
            format!("{:.1}", mb / seconds),
            peak_rss().map_or("-".into(), |b| format!("{:.0}", b / 1e6)),
        ]);
    }
    results.print(
        "seconds: reading, tokenizing, splitting and encoding the data as `attnx run` does before \
         training (IMDB: through its cache when warm); peak memory: the process's largest \
         resident size so far (VmHWM), so measure one config per run for its own figure.",
    );
    Ok(())
}
