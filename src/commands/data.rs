//! `attnx data fetch`, `attnx data export` and `attnx data info`: get the IMDB archive, write
//! it as one file of labelled texts, and see what a data set holds.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Download a data set into attnx's cache folder, verified by its sha256.
    Fetch {
        /// The data set.
        #[arg(value_enum)]
        dataset: Dataset,
        /// Download from this address instead (a mirror).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// The sha256 the download must have [default: the official archive's].
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
        /// Download again even if the archive is already in the cache.
        #[arg(long)]
        force: bool,
    },
    /// Write the IMDB reviews as one CSV, TSV or JSON Lines file (by FILE's extension) with
    /// columns split, label (neg/pos), rating (1-10 stars), id and text: data for a text task.
    Export {
        /// The data set.
        #[arg(value_enum)]
        dataset: Dataset,
        /// The file to write (.csv, .tsv or .jsonl).
        file: PathBuf,
        /// An aclImdb archive or folder to read instead of the usual places.
        #[arg(long, value_name = "PATH")]
        data: Option<PathBuf>,
    },
    /// Say where the IMDB data is found and what it holds.
    Info {
        /// An aclImdb archive or folder to look at instead of the usual places.
        #[arg(long, value_name = "PATH")]
        data: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Dataset {
    /// The IMDB Large Movie Review Dataset v1.0 (84 MB).
    Imdb,
}

pub fn run(command: DataCommand) -> Result<()> {
    use crate::data::{fetch, imdb::ImdbReviews, prepare};
    match command {
        DataCommand::Fetch {
            dataset: Dataset::Imdb,
            url,
            sha256,
            force,
        } => {
            let dest = fetch::imdb_destination();
            if dest.exists() && !force {
                eprintln!(
                    "{} is already there (--force downloads it again)",
                    dest.display()
                );
                return Ok(());
            }
            let url = url.as_deref().unwrap_or(fetch::IMDB_URL);
            let sha256 = sha256.as_deref().unwrap_or(fetch::IMDB_SHA256);
            eprintln!("downloading {url} to {}", dest.display());
            fetch::download(
                url,
                &dest,
                sha256,
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
            )?;
            eprintln!("saved {} (sha256 verified)", dest.display());
            Ok(())
        }
        DataCommand::Export {
            dataset: Dataset::Imdb,
            file,
            data,
        } => {
            let (path, origin) = prepare::locate(data.as_deref(), None)?;
            eprintln!("reading {} (found through {origin})", path.display());
            let started = std::time::Instant::now();
            let written = crate::data::export::export_imdb(&path, &file)?;
            eprintln!(
                "wrote {}: {} training and {} test reviews in {:.1} s",
                file.display(),
                written.train,
                written.test,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        DataCommand::Info { data } => {
            let (path, origin) = prepare::locate(data.as_deref(), None)?;
            println!("IMDB data: {} (found through {origin})", path.display());
            if path.is_file() {
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                println!(
                    "archive: {size} bytes, sha256 {}",
                    crate::fsutil::sha256_file(&path)?
                );
            }
            let reviews = ImdbReviews::read(&path)?;
            for (name, split) in [("train", &reviews.train), ("test", &reviews.test)] {
                let positive = split.iter().filter(|r| r.label == 1).count();
                println!(
                    "{name}: {} reviews ({positive} positive, {} negative)",
                    split.len(),
                    split.len() - positive
                );
            }
            println!("cache folder: {}", prepare::cache_dir().display());
            Ok(())
        }
    }
}
