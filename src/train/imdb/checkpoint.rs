//! Checkpoints of a running IMDB repeat, one set per finished epoch, in the folder the runner
//! gives (under the results folder): burn-train's model, optimizer and scheduler records, each
//! written atomically by [`AtomicCheckpointer`], and attnx's [`RepeatState`] beside them. A
//! repeat resumes from the last epoch whose set is complete.

use std::path::{Path, PathBuf};

use burn::train::checkpoint::{Checkpoint, Checkpointer, CheckpointerError};

use super::history::RepeatState;
use crate::fsutil;

/// burn-train's checkpoint records, written with a temporary file, fsync and rename, so that a
/// kill leaves either the whole file or none.
pub struct AtomicCheckpointer {
    dir: PathBuf,
    name: &'static str,
}

impl AtomicCheckpointer {
    pub fn new(dir: &Path, name: &'static str) -> Self {
        Self {
            dir: dir.to_path_buf(),
            name,
        }
    }

    fn path(&self, epoch: usize) -> PathBuf {
        file(&self.dir, self.name, epoch, "bpk")
    }
}

fn file(dir: &Path, name: &str, epoch: usize, ext: &str) -> PathBuf {
    dir.join(format!("{name}-{epoch}.{ext}"))
}

impl<R: Checkpoint> Checkpointer<R> for AtomicCheckpointer {
    fn save(&self, epoch: usize, record: R) -> Result<(), CheckpointerError> {
        let bytes = record
            .checkpoint_into_bytes()
            .map_err(CheckpointerError::Record)?;
        fsutil::write_atomic(&self.path(epoch), &bytes)
            .map_err(|e| CheckpointerError::IOError(std::io::Error::other(e.to_string())))
    }

    fn delete(&self, epoch: usize) -> Result<(), CheckpointerError> {
        match std::fs::remove_file(self.path(epoch)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(CheckpointerError::IOError(e))
            }
            _ => Ok(()),
        }
    }

    fn restore(&self, epoch: usize) -> Result<R, CheckpointerError> {
        let bytes = std::fs::read(self.path(epoch)).map_err(CheckpointerError::IOError)?;
        R::checkpoint_from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(CheckpointerError::Record)
    }
}

/// The checkpoint folder of one repeat.
pub struct RepeatCheckpoints {
    pub dir: PathBuf,
}

/// burn-train's three records per epoch.
pub const RECORDS: [&str; 3] = ["model", "optim", "scheduler"];
const STATE: &str = "state";

impl RepeatCheckpoints {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn checkpointer(&self, name: &'static str) -> AtomicCheckpointer {
        AtomicCheckpointer::new(&self.dir, name)
    }

    /// Writes attnx's state after `epochs` finished epochs, and drops the state files older
    /// than the epoch before (burn-train keeps its records of the last two epochs likewise).
    pub fn save_state(&self, state: &RepeatState) -> anyhow::Result<()> {
        let epoch = state.epochs.len();
        fsutil::write_atomic(
            &file(&self.dir, STATE, epoch, "json"),
            &serde_json::to_vec(state)?,
        )?;
        if epoch > 2 {
            let _ = std::fs::remove_file(file(&self.dir, STATE, epoch - 2, "json"));
        }
        Ok(())
    }

    /// The last epoch with every record and the state written, and that state.
    pub fn resume_point(&self) -> Option<(usize, RepeatState)> {
        let mut epochs: Vec<usize> = fsutil::files_named(&self.dir, "state-", ".json")
            .unwrap_or_default()
            .iter()
            .filter_map(|p| {
                let name = p.file_name()?.to_str()?;
                name.strip_prefix("state-")?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()
            })
            .collect();
        epochs.sort_unstable();
        epochs.into_iter().rev().find_map(|epoch| {
            let complete = RECORDS
                .iter()
                .all(|name| file(&self.dir, name, epoch, "bpk").is_file());
            let text = std::fs::read(file(&self.dir, STATE, epoch, "json")).ok()?;
            let state: RepeatState = serde_json::from_slice(&text).ok()?;
            (complete && state.epochs.len() == epoch).then_some((epoch, state))
        })
    }
}
