//! `attnx data fetch imdb`: downloads the official archive into the cache, verified.
//!
//! The download goes to a temporary file beside the destination; only a complete file whose
//! sha256 matches is renamed into place. A failed, cut or tampered download leaves nothing that
//! a later run would trust.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};

/// The official IMDB archive (Maas et al., ACL 2011).
pub const IMDB_URL: &str = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz";
/// Its sha256, the one other dataset libraries pin too.
pub const IMDB_SHA256: &str = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe";

/// Downloads `url` to `dest`, checking the body's sha256 against `sha256`.
pub fn download(url: &str, dest: &Path, sha256: &str, show_progress: bool) -> Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut response = ureq::get(url)
        .call()
        .with_context(|| format!("download of {url} failed"))?;
    let length = response.body().content_length();

    let bar = ProgressBar::with_draw_target(
        length,
        if show_progress {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} (ETA {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix("downloading");

    // Dropped (and so deleted) on every early return below.
    let mut partial = tempfile::Builder::new()
        .prefix(".download-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let mut hasher = Sha256::new();
    let mut reader = response.body_mut().as_reader();
    let mut buffer = vec![0u8; 1 << 16];
    let mut received: u64 = 0;
    loop {
        let n = reader
            .read(&mut buffer)
            .with_context(|| format!("download of {url} broke off after {received} bytes"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        partial.write_all(&buffer[..n])?;
        received += n as u64;
        bar.set_position(received);
    }
    bar.finish_and_clear();
    if let Some(length) = length
        && received != length
    {
        bail!("download of {url} broke off: {received} of {length} bytes");
    }
    let digest = crate::fsutil::hex(&hasher.finalize());
    if digest != sha256 {
        bail!(
            "download of {url} is corrupt or not the expected file: sha256 {digest}, expected {sha256}; nothing was saved"
        );
    }
    partial.as_file().sync_all()?;
    partial
        .persist(dest)
        .with_context(|| format!("cannot write {}", dest.display()))?;
    Ok(())
}

/// The default destination of the IMDB archive.
pub fn imdb_destination() -> PathBuf {
    super::prepare::cache_dir().join(super::prepare::ARCHIVE_NAME)
}
