//! `attnx data fetch`, `attnx data export` and `attnx data info`: get the IMDB archive, write
//! it as one file of labelled texts, and see what a data set holds.

use std::path::PathBuf;

use anyhow::Result;

use crate::error::InputError;
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
    /// Say what a data set holds: labelled texts (rows, classes, token lengths against maxlen,
    /// the vocabulary's coverage, empty and duplicate texts, texts in both splits), or, without
    /// PATH, where the IMDB data is found.
    Info {
        /// A CSV, TSV or JSON Lines file or a folder per class [default: the IMDB data; with
        /// --config, the config's texts].
        path: Option<PathBuf>,
        /// Read the texts as this text config does (columns, test split) and measure them
        /// against its num_words and maxlen.
        #[arg(long, value_name = "CONFIG")]
        config: Option<String>,
        /// The column (key) of the texts, without --config.
        #[arg(long, value_name = "NAME", default_value = "text")]
        text_column: String,
        /// The column (key) of the labels, without --config.
        #[arg(long, value_name = "NAME", default_value = "label")]
        label_column: String,
        /// The column (key) saying each row's split (train or test), without --config.
        #[arg(long, value_name = "NAME")]
        split_column: Option<String>,
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
        DataCommand::Info { path: Some(_), .. }
        | DataCommand::Info {
            config: Some(_), ..
        } => text_info(command),
        DataCommand::Info { data, .. } => {
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

/// `attnx data info PATH [--config C]`: what a text task would read.
fn text_info(command: DataCommand) -> Result<()> {
    use crate::config::{Corpus, ExperimentConfig, Study, TestSplit, TextSource};
    use crate::data::labelled::ReadTexts;
    let DataCommand::Info {
        path,
        config,
        text_column,
        label_column,
        split_column,
        ..
    } = command
    else {
        unreachable!("called for info only")
    };
    // The source, its test texts (a file, or a split column) and sizes: the config's (its
    // texts replaced by PATH if given), or the columns given with the IMDB task's default sizes.
    let (mut source, test_file, split, sizes, test_fraction) = match &config {
        Some(name) => {
            let config_path = crate::config::resolve_config_path(name)?;
            let loaded = ExperimentConfig::load(&config_path)?;
            let Study::Imdb {
                task,
                corpus: Corpus::Text(source),
                ..
            } = loaded.study
            else {
                return Err(InputError(format!(
                    "{}: not a text task (data info --config reads a text config's texts)",
                    config_path.display()
                ))
                .into());
            };
            let (test_file, split, fraction) = match &source.test {
                TestSplit::File(path) => (Some(path.clone()), None, None),
                TestSplit::Column(column) => (None, Some(column.clone()), None),
                TestSplit::Fraction(fraction) => (None, None, Some(fraction.get())),
            };
            let sizes = (task.num_words, task.maxlen);
            (*source, test_file, split, sizes, fraction)
        }
        None => {
            let source = TextSource {
                train: PathBuf::new(),
                // Read only through `split` below (the source's own test is not consulted).
                test: TestSplit::Column(String::new()),
                text_column,
                label_column,
            };
            let sizes = crate::config::ImdbTask::default_sizes();
            (source, None, split_column, sizes, None)
        }
    };
    if let Some(path) = path {
        source.train = path;
    }
    let started = std::time::Instant::now();
    let read = ReadTexts::read_parts(&source, test_file.as_deref(), split.as_deref(), true)?;
    let seconds = started.elapsed().as_secs_f64();
    for file in read.files() {
        println!(
            "file: {} ({} rows, sha256 {})",
            file.path, file.rows, file.sha256
        );
    }
    let (train, test) = read.counts();
    println!(
        "read: {:.1} MB in {seconds:.1} s; {train} training texts, {test} test texts{}",
        read.bytes() as f64 / 1e6,
        match (&test_file, &split, test_fraction) {
            (Some(path), _, _) => format!(" (from {})", path.display()),
            (_, Some(column), _) => format!(" (by the column {column:?})"),
            (_, _, Some(f)) => format!(
                " ({:.0}% held out for testing when a config trains)",
                f * 100.0
            ),
            _ => " (no test split given: all are training texts)".into(),
        }
    );
    let counts = read.class_counts();
    let classes: Vec<String> = counts
        .iter()
        .map(|(label, tr, te)| {
            if test > 0 {
                format!("{label} {tr}/{te}")
            } else {
                format!("{label} {tr}")
            }
        })
        .collect();
    println!(
        "classes: {}{}: {}",
        counts.len(),
        if test > 0 {
            " (training/test texts)"
        } else {
            ""
        },
        classes.join(", ")
    );
    let (num_words, maxlen) = sizes;
    let (mut lengths, _) = read.lengths();
    lengths.sort_unstable();
    if let Some(&longest) = lengths.last() {
        let at = |q: f64| lengths[((lengths.len() - 1) as f64 * q).round() as usize];
        // A text is `[START, tokens...]`: it fits when its tokens are fewer than maxlen.
        let cut = lengths.iter().filter(|&&n| n + 1 > maxlen).count();
        println!(
            "tokens per training text: median {}, 90% {}, 99% {}, max {longest}; maxlen {maxlen} cuts {} of {} texts ({:.1}%)",
            at(0.5),
            at(0.9),
            at(0.99),
            cut,
            lengths.len(),
            100.0 * cut as f64 / lengths.len() as f64
        );
    }
    let (train_cover, test_cover) = read.coverage(num_words);
    println!(
        "vocabulary: {} distinct training words; num_words {num_words} covers {:.1}% of training tokens{}",
        read.distinct_training_words(),
        100.0 * train_cover,
        if test > 0 {
            format!(" and {:.1}% of test tokens", 100.0 * test_cover)
        } else {
            String::new()
        }
    );
    let (train_dup, test_dup, shared) = read.duplicates();
    println!(
        "empty texts: {} (a config refuses them); duplicates: {train_dup} training and {test_dup} test texts repeat one before them; {shared} test texts are also training texts",
        read.empty
    );
    Ok(())
}
