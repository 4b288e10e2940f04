//! `attnx data export imdb FILE`: the IMDB archive as one CSV, TSV or JSON Lines file that a
//! text task reads, each review with its split, polarity label, star rating and id.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::imdb::{ImdbReviews, Review};
use super::text::Format;
use crate::error::InputError;

/// One exported review; the fields in the order of the CSV's columns.
#[derive(Debug, Serialize)]
struct Exported<'a> {
    split: &'static str,
    /// `neg` or `pos`: the text task's classes in the IMDB task's order.
    label: &'static str,
    /// The star rating from the file name (`ID_RATING.txt`): 1-4 negative, 7-10 positive.
    rating: u8,
    /// The file name's stem, `ID_RATING`.
    id: &'a str,
    text: &'a str,
}

/// Rows written, per split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportSummary {
    pub train: usize,
    pub test: usize,
}

/// The rating in a review's `ID_RATING` name.
fn rating(review: &Review) -> Result<u8, InputError> {
    review
        .name
        .rsplit_once('_')
        .and_then(|(_, r)| r.parse().ok())
        .ok_or_else(|| {
            InputError(format!(
                "review {:?}: no rating in its name (expected ID_RATING.txt)",
                review.name
            ))
        })
}

/// Writes the reviews of `archive` to `out` (atomically), in the order the IMDB task reads
/// them (training reviews, then test reviews; each by label, then name), so that a text task
/// on the file sees the reviews in the IMDB task's order.
pub fn export_imdb(archive: &Path, out: &Path) -> Result<ExportSummary> {
    let Some(format) = Format::of_file_name(out) else {
        return Err(InputError(format!(
            "{}: name a .csv, .tsv or .jsonl file to export to",
            out.display()
        ))
        .into());
    };
    let reviews = ImdbReviews::read(archive)?;
    crate::fsutil::write_atomic_with(out, "", |tmp| {
        let file = std::fs::File::create(tmp)?;
        let buffered = std::io::BufWriter::with_capacity(1 << 20, file);
        let all = reviews
            .train
            .iter()
            .map(|r| ("train", r))
            .chain(reviews.test.iter().map(|r| ("test", r)));
        match format {
            Format::JsonLines => {
                use std::io::Write;
                let mut writer = buffered;
                for (split, review) in all {
                    serde_json::to_writer(&mut writer, &exported(split, review)?)?;
                    writer.write_all(b"\n")?;
                }
                writer.flush()?;
            }
            _ => {
                let delimiter = if format == Format::Tsv { b'\t' } else { b',' };
                let mut writer = csv::WriterBuilder::new()
                    .delimiter(delimiter)
                    .from_writer(buffered);
                for (split, review) in all {
                    writer.serialize(exported(split, review)?)?;
                }
                writer.flush()?;
            }
        }
        Ok(())
    })
    .with_context(|| format!("exporting {}", archive.display()))?;
    Ok(ExportSummary {
        train: reviews.train.len(),
        test: reviews.test.len(),
    })
}

fn exported<'a>(split: &'static str, review: &'a Review) -> Result<Exported<'a>, InputError> {
    Ok(Exported {
        split,
        label: if review.label == 1 { "pos" } else { "neg" },
        rating: rating(review)?,
        id: &review.name,
        text: &review.text,
    })
}
