//! File-system helpers that every writer shares: atomic writes and sha256 digests.
//!
//! attnx never leaves a half-written file where a reader (or a later run) could take it for a
//! whole one: each file is written to a temporary name in its final folder, synced to disk,
//! then renamed over the final name, which POSIX makes atomic.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// Writes `bytes` to `path` so that readers see the old file or the whole new one, never a
/// part: a temporary file in the same folder, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, "", |tmp| {
        let mut file = File::create(tmp)?;
        file.write_all(bytes)?;
        Ok(())
    })
}

/// Atomic write for files that another library writes by path (burn's model files): `write`
/// fills a temporary file named `.tmp-*<suffix>` in `path`'s folder, which is then synced and
/// renamed over `path`. On any error the temporary file is removed and `path` is untouched.
pub fn write_atomic_with(
    path: &Path,
    suffix: &str,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tmp-").suffix(suffix);
    // A temporary file is the owner's alone (0600); the file it becomes is an ordinary one,
    // made as `File::create` makes it (0666 less the umask): records in a folder shared by a
    // group, an exported data set, a report.
    #[cfg(unix)]
    builder.permissions(std::fs::Permissions::from_mode(0o666));
    let tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?
        .into_temp_path();
    write(&tmp).with_context(|| format!("cannot write {}", path.display()))?;
    File::open(&tmp)
        .and_then(|file| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Lower-case hex of a sha256 digest.
/// `create_dir_all` that holds against a concurrent removal of an emptied parent: the store
/// removes a `checkpoints/` or `claims/` folder once its last entry goes, and a worker creating
/// an entry there at that moment sees `NotFound`; it creates the path again.
pub fn create_dir_all(path: &Path) -> std::io::Result<()> {
    let mut tries = 0;
    loop {
        match std::fs::create_dir_all(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 5 => tries += 1,
            done => return done,
        }
    }
}

pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The hex sha256 of a file, read in 1 MiB pieces.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// The files in `dir` whose names start with `prefix` and end with `suffix`, sorted by name.
/// A missing folder has none.
pub fn files_named(dir: &Path, prefix: &str, suffix: &str) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read {}", dir.display()))?
            .path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with(prefix) && name.ends_with(suffix) && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    /// An atomically written file gets the permissions `File::create` gives, not a temporary
    /// file's owner-only ones.
    #[cfg(unix)]
    #[test]
    fn an_atomic_write_gives_an_ordinary_files_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        File::create(&plain).unwrap();
        let atomic = dir.path().join("atomic");
        write_atomic(&atomic, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&atomic), mode(&plain));
    }

    use super::*;

    #[test]
    fn atomic_write_replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.bpk");
        write_atomic(&path, b"old").unwrap();
        let err = write_atomic_with(&path, ".bpk", |tmp| {
            std::fs::write(tmp, b"half")?;
            anyhow::bail!("disk full")
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("disk full"), "{err:#}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn sha256_of_a_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(sha256_file(&path).unwrap(), sha256_hex(b"abc"));
    }

    #[test]
    fn files_named_filters_and_sorts() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "repeat-002.json",
            "repeat-000.json",
            "config.json",
            "repeat-001.bpk",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let names: Vec<_> = files_named(dir.path(), "repeat-", ".json")
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["repeat-000.json", "repeat-002.json"]);
        assert!(
            files_named(&dir.path().join("none"), "", "")
                .unwrap()
                .is_empty()
        );
    }
}
