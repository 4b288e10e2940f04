//! Claims on repeats: a results folder shared by many writers (worker threads, two `attnx run`
//! processes, Slurm array tasks on a shared file system) never trains a repeat twice.
//!
//! A repeat is claimed before it is trained by creating `claims/repeat-NNN.claim` in its
//! config's folder with `O_EXCL` (atomic on local file systems and on NFS v3+), holding who
//! claimed it. The owner's heartbeat keeps the file's modification time fresh; a claim whose
//! owner died (kill -9, a lost node, a Slurm preemption or time limit) is taken over once it is
//! stale, or at once when the owner was a process on this host that no longer exists. Taking
//! over renames the stale file away first: of several processes that saw it stale, one wins.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// How long a claim lives without a heartbeat: `ATTNX_CLAIM_STALE_SECS`, or 10 minutes.
pub fn stale_after() -> Duration {
    let secs = std::env::var("ATTNX_CLAIM_STALE_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|&s| s > 0)
        .unwrap_or(600);
    Duration::from_secs(secs)
}

/// Who holds a claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub host: String,
    pub pid: u32,
    /// `$SLURM_ARRAY_JOB_ID` (or `$SLURM_JOB_ID`) and `$SLURM_ARRAY_TASK_ID`, inside Slurm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_task: Option<String>,
    /// Unix time the claim was made.
    pub since: u64,
}

impl Owner {
    /// This process.
    pub fn me() -> Self {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Owner {
            host: hostname(),
            pid: std::process::id(),
            slurm_job: env("SLURM_ARRAY_JOB_ID").or_else(|| env("SLURM_JOB_ID")),
            slurm_task: env("SLURM_ARRAY_TASK_ID"),
            since: unix_now(),
        }
    }

    /// A process of this host that is gone (its pid is free, or is this process, which never
    /// claims a repeat it holds).
    fn is_dead_here(&self) -> bool {
        let me = Owner::me();
        self.host == me.host
            && (self.pid == me.pid || !Path::new(&format!("/proc/{}", self.pid)).exists())
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} pid {}", self.host, self.pid)?;
        match (&self.slurm_job, &self.slurm_task) {
            (Some(job), Some(task)) => write!(f, " (Slurm job {job}_{task})"),
            (Some(job), None) => write!(f, " (Slurm job {job})"),
            _ => Ok(()),
        }
    }
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What trying to claim a repeat gave.
#[derive(Debug)]
pub enum Attempt {
    /// This process now holds it.
    Claimed(Claim),
    /// Another live owner holds it.
    Held(Owner),
}

/// A held claim; dropping it releases the repeat (removes the file).
#[derive(Debug)]
pub struct Claim {
    path: PathBuf,
    /// Whether it was taken over from a dead or stale owner, and from whom.
    pub took_over: Option<String>,
    book: Arc<Mutex<HashSet<PathBuf>>>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.book.lock().unwrap().remove(&self.path);
        let _ = fs::remove_file(&self.path);
        if let Some(dir) = self.path.parent().filter(|d| d.ends_with("claims")) {
            // Fails while other repeats are claimed there, as it should.
            let _ = fs::remove_dir(dir);
        }
    }
}

/// The claims of one process, kept alive by a heartbeat thread while the book lives.
pub struct ClaimBook {
    held: Arc<Mutex<HashSet<PathBuf>>>,
    stale_after: Duration,
    stop: Arc<AtomicBool>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

impl ClaimBook {
    /// A book whose claims go stale after `stale_after` without a heartbeat; the heartbeat
    /// touches every held claim ten times in that span.
    pub fn new(stale_after: Duration) -> Self {
        let held: Arc<Mutex<HashSet<PathBuf>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let beat = stale_after / 10;
        let heartbeat = {
            let (held, stop) = (held.clone(), stop.clone());
            std::thread::spawn(move || {
                let tick = Duration::from_millis(100).min(beat);
                let mut waited = Duration::ZERO;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    waited += tick;
                    if waited >= beat {
                        waited = Duration::ZERO;
                        let now = SystemTime::now();
                        for path in held.lock().unwrap().iter() {
                            let _ = File::options()
                                .append(true)
                                .open(path)
                                .and_then(|f| f.set_modified(now));
                        }
                    }
                }
            })
        };
        ClaimBook {
            held,
            stale_after,
            stop,
            heartbeat: Some(heartbeat),
        }
    }

    /// Claims the repeat whose claim file is `path`, taking over a dead or stale claim.
    pub fn try_claim(&self, path: &Path) -> io::Result<Attempt> {
        if let Some(dir) = path.parent() {
            crate::fsutil::create_dir_all(dir)?;
        }
        let mut took_over = None;
        // A takeover frees the name, then it is created like any claim; a round is also
        // repeated when another process's release removed the empty folder meanwhile.
        for _ in 0..5 {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut file) => {
                    file.write_all(&serde_json::to_vec(&Owner::me())?)?;
                    file.sync_all()?;
                    self.held.lock().unwrap().insert(path.to_path_buf());
                    return Ok(Attempt::Claimed(Claim {
                        path: path.to_path_buf(),
                        took_over,
                        book: self.held.clone(),
                    }));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if let Some(dir) = path.parent() {
                        crate::fsutil::create_dir_all(dir)?;
                    }
                    continue;
                }
                Err(e) => return Err(e),
            }
            let (owner, age) = match read_claim(path) {
                Some(found) => found,
                // Released between the two calls: try again.
                None => continue,
            };
            let dead = owner.as_ref().is_some_and(Owner::is_dead_here);
            if !dead && age < self.stale_after {
                if let Some(owner) = owner {
                    return Ok(Attempt::Held(owner));
                }
                // Being written right now by its owner: held.
                return Ok(Attempt::Held(Owner {
                    host: "?".into(),
                    pid: 0,
                    slurm_job: None,
                    slurm_task: None,
                    since: 0,
                }));
            }
            // Move it aside; only one of several contenders can move the same file.
            let aside = path.with_extension(format!(
                "stale-{}-{}-{}",
                hostname(),
                std::process::id(),
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            ));
            match fs::rename(path, &aside) {
                Ok(()) => {
                    let _ = fs::remove_file(&aside);
                    took_over = Some(match owner {
                        Some(owner) if dead => format!("{owner}, gone"),
                        Some(owner) => format!("{owner}, silent for {} s", age.as_secs()),
                        None => format!("an unreadable claim, silent for {} s", age.as_secs()),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        // Another contender took it over first.
        Ok(match read_claim(path) {
            Some((Some(owner), _)) => Attempt::Held(owner),
            _ => Attempt::Held(Owner::me()),
        })
    }
}

impl Drop for ClaimBook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(heartbeat) = self.heartbeat.take() {
            let _ = heartbeat.join();
        }
    }
}

/// The owner written in a claim file (`None` if it cannot be parsed yet) and the time since
/// its last heartbeat; `None` if the file is gone.
fn read_claim(path: &Path) -> Option<(Option<Owner>, Duration)> {
    let modified = fs::metadata(path).ok()?.modified().ok()?;
    let owner = fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let age = SystemTime::now()
        .duration_since(modified)
        .unwrap_or(Duration::ZERO);
    Some((owner, age))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_claim_per_repeat_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("claims/repeat-000.claim");
        let book = ClaimBook::new(Duration::from_secs(600));
        let Attempt::Claimed(claim) = book.try_claim(&path).unwrap() else {
            panic!("first claim")
        };
        // A second process would find it held; in this process the owner is this pid, which
        // counts as gone, so pretend the claim is another live process's.
        let mut other = Owner::me();
        other.pid = 1; // init: alive on any Linux host
        fs::write(&path, serde_json::to_vec(&other).unwrap()).unwrap();
        match book.try_claim(&path).unwrap() {
            Attempt::Held(owner) => assert_eq!(owner.pid, 1),
            Attempt::Claimed(_) => panic!("claimed twice"),
        }
        drop(claim);
        assert!(!path.exists(), "released");
        assert!(matches!(
            book.try_claim(&path).unwrap(),
            Attempt::Claimed(_)
        ));
    }

    #[test]
    fn dead_or_silent_owners_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("claims/repeat-001.claim");
        let book = ClaimBook::new(Duration::from_secs(600));
        // A process of this host that no longer exists.
        let mut gone = Owner::me();
        gone.pid = u32::MAX - 7;
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, serde_json::to_vec(&gone).unwrap()).unwrap();
        let Attempt::Claimed(claim) = book.try_claim(&path).unwrap() else {
            panic!("a dead owner's claim is taken over")
        };
        assert!(claim.took_over.as_deref().unwrap().ends_with("gone"));
        drop(claim);

        assert!(
            !path.parent().unwrap().exists(),
            "the empty claims folder goes too"
        );

        // A live owner on another host whose heartbeat stopped.
        let mut silent = Owner::me();
        silent.host = "elsewhere".into();
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, serde_json::to_vec(&silent).unwrap()).unwrap();
        assert!(matches!(book.try_claim(&path).unwrap(), Attempt::Held(_)));
        let short = ClaimBook::new(Duration::from_millis(200));
        std::thread::sleep(Duration::from_millis(300));
        let Attempt::Claimed(claim) = short.try_claim(&path).unwrap() else {
            panic!("a stale claim is taken over")
        };
        assert!(claim.took_over.as_deref().unwrap().contains("silent"));
    }

    #[test]
    fn the_heartbeat_keeps_a_claim_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repeat-002.claim");
        let book = ClaimBook::new(Duration::from_millis(500));
        let Attempt::Claimed(_claim) = book.try_claim(&path).unwrap() else {
            panic!()
        };
        std::thread::sleep(Duration::from_millis(900));
        let (_, age) = read_claim(&path).unwrap();
        assert!(age < Duration::from_millis(300), "{age:?}");
    }
}
