//! The IMDB Large Movie Review Dataset (aclImdb v1.0): reading it and turning reviews into the
//! id sequences Keras' `imdb.load_data` gives the articles.
//!
//! The reader takes the official layout, `aclImdb/{train,test}/{pos,neg}/ID_RATING.txt`,
//! straight from a `.tar.gz` (streamed, nothing unpacked) or from an unpacked folder, and skips
//! everything else the official archive holds (`train/unsup/`, `*.feat`, `urls_*.txt`).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path};

use crate::error::InputError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Split {
    Train,
    Test,
}

/// One labelled review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// 1 for a positive review, 0 for a negative one.
    pub label: u8,
    /// The file's `ID_RATING` stem, kept to order reviews deterministically.
    pub name: String,
    pub text: String,
}

/// The labelled reviews of both splits, each in a fixed order (label, then file name), so that
/// the same data gives the same sequences whatever order the archive lists its files in.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImdbReviews {
    pub train: Vec<Review>,
    pub test: Vec<Review>,
}

impl ImdbReviews {
    /// Reads a `.tar.gz` archive or an unpacked folder in the official layout.
    pub fn read(path: &Path) -> Result<Self, InputError> {
        let meta = std::fs::metadata(path)
            .map_err(|e| InputError(format!("{}: cannot read IMDB data: {e}", path.display())))?;
        let mut reviews = if meta.is_dir() {
            Self::read_folder(path)?
        } else {
            Self::read_archive(path)?
        };
        for (split, name) in [(&mut reviews.train, "train"), (&mut reviews.test, "test")] {
            if split.is_empty() {
                return Err(InputError(format!(
                    "{}: no {name}/ reviews found (expected aclImdb/{name}/pos/*.txt and aclImdb/{name}/neg/*.txt)",
                    path.display()
                )));
            }
            split.sort_by(|a, b| (a.label, &a.name).cmp(&(b.label, &b.name)));
        }
        Ok(reviews)
    }

    fn push(&mut self, split: Split, label: u8, name: String, text: String) {
        let review = Review { label, name, text };
        match split {
            Split::Train => self.train.push(review),
            Split::Test => self.test.push(review),
        }
    }

    fn read_archive(path: &Path) -> Result<Self, InputError> {
        let corrupt = |e: std::io::Error| {
            InputError(format!(
                "{}: corrupt or truncated archive ({e}); fetch it again or point --data at a good copy",
                path.display()
            ))
        };
        let file = File::open(path)
            .map_err(|e| InputError(format!("{}: cannot open: {e}", path.display())))?;
        let gz = flate2::read::GzDecoder::new(BufReader::with_capacity(1 << 20, file));
        let mut archive = tar::Archive::new(gz);
        let mut reviews = Self::default();
        for entry in archive.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let entry_path = entry.path().map_err(corrupt)?.into_owned();
            let Some((split, label, name)) = classify(&entry_path) else {
                continue;
            };
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut bytes).map_err(corrupt)?;
            reviews.push(
                split,
                label,
                name,
                String::from_utf8_lossy(&bytes).into_owned(),
            );
        }
        Ok(reviews)
    }

    fn read_folder(root: &Path) -> Result<Self, InputError> {
        // Accept the folder that holds `aclImdb/` as well as `aclImdb/` itself.
        let base = if root.join("aclImdb").is_dir() {
            root.join("aclImdb")
        } else {
            root.to_path_buf()
        };
        let mut reviews = Self::default();
        for (split, split_name) in [(Split::Train, "train"), (Split::Test, "test")] {
            for (label, label_name) in [(1u8, "pos"), (0u8, "neg")] {
                let dir = base.join(split_name).join(label_name);
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries {
                    let path = entry
                        .map_err(|e| InputError(format!("{}: {e}", dir.display())))?
                        .path();
                    if path.extension().is_none_or(|x| x != "txt") {
                        continue;
                    }
                    let text = std::fs::read(&path)
                        .map_err(|e| InputError(format!("{}: cannot read: {e}", path.display())))?;
                    let name = path
                        .file_stem()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned();
                    reviews.push(
                        split,
                        label,
                        name,
                        String::from_utf8_lossy(&text).into_owned(),
                    );
                }
            }
        }
        Ok(reviews)
    }
}

/// `.../{train,test}/{pos,neg}/NAME.txt` -> (split, label, NAME); anything else -> `None`.
fn classify(path: &Path) -> Option<(Split, u8, String)> {
    let parts: Vec<&str> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    let [.., split, label, file] = parts.as_slice() else {
        return None;
    };
    let split = match *split {
        "train" => Split::Train,
        "test" => Split::Test,
        _ => return None,
    };
    let label = match *label {
        "pos" => 1,
        "neg" => 0,
        _ => return None,
    };
    let name = file.strip_suffix(".txt")?;
    Some((split, label, name.to_string()))
}

/// Lowercased word tokens: `<br />` line breaks removed, then runs of letters and digits, with
/// apostrophes inside a word kept (`don't` is one token). All other punctuation separates.
pub fn tokenize(text: &str) -> Vec<String> {
    let text = text
        .replace("<br />", " ")
        .replace("<br/>", " ")
        .to_lowercase();
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let inner_apostrophe = c == '\''
            && !current.is_empty()
            && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        if c.is_alphanumeric() || inner_apostrophe {
            current.push(c);
        } else if !current.is_empty() {
            tokens.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// Id of the padding value.
pub const PAD: u32 = 0;
/// Id that starts every review.
pub const START: u32 = 1;
/// Id of a word outside the vocabulary.
pub const OOV: u32 = 2;
/// Id of the most frequent word.
pub const FIRST_WORD: u32 = 3;

/// Word ids by frequency rank over the training split, as Keras' `imdb.load_data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocabulary {
    ids: HashMap<String, u32>,
    num_words: u32,
}

impl Vocabulary {
    /// Ranks words by count (ties by the word itself, so that ids are deterministic), the most
    /// frequent getting id 3; only ids below `num_words` are kept.
    pub fn build<'a>(
        training_tokens: impl IntoIterator<Item = &'a [String]>,
        num_words: usize,
    ) -> Self {
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for tokens in training_tokens {
            for token in tokens {
                *counts.entry(token.as_str()).or_default() += 1;
            }
        }
        Self::from_counts(counts, num_words)
    }

    /// [`build`](Self::build) from each training word's count (words of count 0 are left out).
    pub fn from_counts<'a>(
        counts: impl IntoIterator<Item = (&'a str, u64)>,
        num_words: usize,
    ) -> Self {
        let mut ranked: Vec<(&str, u64)> = counts.into_iter().filter(|c| c.1 > 0).collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let keep = num_words.saturating_sub(FIRST_WORD as usize);
        let ids = ranked
            .into_iter()
            .take(keep)
            .enumerate()
            .map(|(rank, (word, _))| (word.to_string(), FIRST_WORD + rank as u32))
            .collect();
        Self {
            ids,
            num_words: num_words as u32,
        }
    }

    /// Words with an id (the padding, start and out-of-vocabulary ids excluded).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The words by id: entry `i` has id `i + 3`.
    pub fn words(&self) -> Vec<String> {
        let mut words = vec![String::new(); self.ids.len()];
        for (word, &id) in &self.ids {
            words[(id - FIRST_WORD) as usize] = word.clone();
        }
        words
    }

    pub fn id(&self, word: &str) -> u32 {
        self.ids.get(word).copied().unwrap_or(OOV)
    }

    /// `[START, id(token)...]`.
    pub fn encode(&self, tokens: &[String]) -> Vec<u32> {
        std::iter::once(START)
            .chain(tokens.iter().map(|t| self.id(t)))
            .collect()
    }
}

/// Keras `pad_sequences` with `padding='pre'`, `truncating='pre'`: zeros in front of a short
/// sequence; the last `maxlen` ids of a long one.
pub fn pad_pre(ids: &[u32], maxlen: usize) -> Vec<u32> {
    if ids.len() >= maxlen {
        ids[ids.len() - maxlen..].to_vec()
    } else {
        let mut out = vec![PAD; maxlen - ids.len()];
        out.extend_from_slice(ids);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn tokenizer_lowercases_drops_breaks_and_punctuation() {
        assert_eq!(
            tokenize("This movie was GREAT!<br /><br />I don't know... 10/10, 'really'."),
            [
                "this", "movie", "was", "great", "i", "don't", "know", "10", "10", "really"
            ]
        );
        assert_eq!(tokenize("  "), Vec::<String>::new());
        assert_eq!(tokenize("Café crème"), ["café", "crème"]);
    }

    fn tokens(texts: &[&str]) -> Vec<Vec<String>> {
        texts.iter().map(|t| tokenize(t)).collect()
    }

    #[test]
    fn vocabulary_ranks_by_frequency_then_word_and_cuts_at_num_words() {
        let train = tokens(&["b a c", "a b", "a d"]);
        // a: 3, b: 2, c: 1, d: 1 -> a=3, b=4, c=5 (c before d), d cut at num_words = 6.
        let vocab = Vocabulary::build(train.iter().map(Vec::as_slice), 6);
        assert_eq!((vocab.id("a"), vocab.id("b"), vocab.id("c")), (3, 4, 5));
        assert_eq!(vocab.id("d"), OOV);
        assert_eq!(vocab.id("never-seen"), OOV);
        assert_eq!(vocab.len(), 3);
        assert_eq!(vocab.encode(&tokenize("A d b")), [START, 3, OOV, 4]);
    }

    #[test]
    fn padding_and_truncation_are_at_the_front() {
        assert_eq!(pad_pre(&[1, 5, 6], 5), [0, 0, 1, 5, 6]);
        assert_eq!(pad_pre(&[1, 5, 6, 7, 8, 9], 4), [6, 7, 8, 9]);
        assert_eq!(pad_pre(&[1, 5], 2), [1, 5]);
    }

    /// Files of a tiny data set in the official layout, with the parts attnx must skip.
    fn tiny_files() -> Vec<(&'static str, &'static str)> {
        vec![
            ("aclImdb/README", "not a review"),
            ("aclImdb/imdb.vocab", "the\nand\n"),
            ("aclImdb/train/pos/1_9.txt", "Great film.<br />Loved it"),
            ("aclImdb/train/pos/0_10.txt", "Wonderful"),
            ("aclImdb/train/neg/2_1.txt", "Awful film"),
            ("aclImdb/train/unsup/3_0.txt", "unlabelled, must be skipped"),
            ("aclImdb/train/labeledBow.feat", "0:1 1:2"),
            ("aclImdb/train/urls_pos.txt", "http://example.com"),
            ("aclImdb/test/pos/4_8.txt", "Good"),
            ("aclImdb/test/neg/5_2.txt", "Bad"),
        ]
    }

    fn write_archive(path: &Path, files: &[(&str, &str)]) {
        let gz =
            flate2::write::GzEncoder::new(File::create(path).unwrap(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        for (name, text) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, name, text.as_bytes())
                .unwrap();
        }
        builder
            .into_inner()
            .unwrap()
            .finish()
            .unwrap()
            .flush()
            .unwrap();
    }

    fn check_tiny(reviews: &ImdbReviews) {
        let names = |s: &[Review]| {
            s.iter()
                .map(|r| (r.label, r.name.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&reviews.train),
            [
                (0, "2_1".to_string()),
                (1, "0_10".to_string()),
                (1, "1_9".to_string())
            ]
        );
        assert_eq!(
            names(&reviews.test),
            [(0, "5_2".to_string()), (1, "4_8".to_string())]
        );
        assert_eq!(reviews.train[2].text, "Great film.<br />Loved it");
    }

    #[test]
    fn reads_the_official_layout_from_an_archive_and_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("imdb.tar.gz");
        write_archive(&archive, &tiny_files());
        let from_archive = ImdbReviews::read(&archive).unwrap();
        check_tiny(&from_archive);

        let folder = dir.path().join("unpacked");
        for (name, text) in tiny_files() {
            let path = folder.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        assert_eq!(ImdbReviews::read(&folder).unwrap(), from_archive);
        assert_eq!(
            ImdbReviews::read(&folder.join("aclImdb")).unwrap(),
            from_archive
        );
    }

    #[test]
    fn bad_data_gives_one_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("imdb.tar.gz");
        write_archive(&archive, &tiny_files());

        let bytes = std::fs::read(&archive).unwrap();
        let truncated = dir.path().join("truncated.tar.gz");
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        let e = ImdbReviews::read(&truncated).unwrap_err().to_string();
        assert!(
            e.contains("truncated.tar.gz: corrupt or truncated archive"),
            "{e}"
        );

        let garbage = dir.path().join("garbage.tar.gz");
        std::fs::write(&garbage, b"this is not gzip at all").unwrap();
        let e = ImdbReviews::read(&garbage).unwrap_err().to_string();
        assert!(
            e.contains("garbage.tar.gz: corrupt or truncated archive"),
            "{e}"
        );

        let no_test = dir.path().join("no_test.tar.gz");
        let files: Vec<_> = tiny_files()
            .into_iter()
            .filter(|(n, _)| !n.contains("/test/"))
            .collect();
        write_archive(&no_test, &files);
        let e = ImdbReviews::read(&no_test).unwrap_err().to_string();
        assert!(e.contains("no_test.tar.gz: no test/ reviews found"), "{e}");

        let e = ImdbReviews::read(&dir.path().join("missing.tar.gz"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.tar.gz: cannot read IMDB data"), "{e}");
        assert!(!e.contains('\n'));
    }
}

/// The real data, wherever `archive_for_tests` finds it.
#[cfg(test)]
mod shared_archive {
    use super::*;

    #[test]
    #[ignore = "needs the IMDB archive ($ATTNX_DATA or `attnx data fetch imdb`)"]
    fn reads_the_real_archive() {
        let path = crate::data::prepare::archive_for_tests();
        let reviews = ImdbReviews::read(&path).unwrap();
        assert_eq!(reviews.train.len(), 25_000);
        assert_eq!(reviews.test.len(), 25_000);
        let positives = reviews.train.iter().filter(|r| r.label == 1).count();
        assert_eq!(positives, 12_500);

        let tokens: Vec<Vec<String>> = reviews.train.iter().map(|r| tokenize(&r.text)).collect();
        let vocab = Vocabulary::build(tokens.iter().map(Vec::as_slice), 20_000);
        assert_eq!(vocab.len(), 20_000 - 3);
        assert_eq!(vocab.id("the"), FIRST_WORD, "the most frequent word");
    }
}
