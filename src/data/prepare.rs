//! Finding the IMDB data, and turning it into id sequences once: the tokenized data set is
//! cached on disk, keyed by the archive's checksum and the vocabulary size, so that a second run
//! starts training within seconds.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::imdb::{ImdbReviews, Review, Vocabulary, pad_pre, tokenize};
use super::labelled::TextData;
use crate::config::{Corpus, ImdbTask, TestSplit, TextSource};
use crate::error::InputError;

/// The environment variable that may name the data.
pub const DATA_ENV: &str = "ATTNX_DATA";
/// The official archive's name in the cache folder.
pub const ARCHIVE_NAME: &str = "aclImdb_v1.tar.gz";

/// attnx's cache folder: `$XDG_CACHE_HOME/attnx` (usually `~/.cache/attnx`).
pub fn cache_dir() -> PathBuf {
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("attnx")
}

/// Where the IMDB data is, in order: `--data`, the config's `data`, `$ATTNX_DATA`, the cache.
/// Each place names how the data was found, for `attnx data info`.
pub fn locate(
    cli: Option<&Path>,
    config: Option<&Path>,
) -> Result<(PathBuf, &'static str), InputError> {
    let env = std::env::var_os(DATA_ENV).map(PathBuf::from);
    let cached = cache_dir().join(ARCHIVE_NAME);
    let candidates = [
        (cli.map(Path::to_path_buf), "--data"),
        (config.map(Path::to_path_buf), "the config's data field"),
        (env, "$ATTNX_DATA"),
    ];
    for (path, origin) in candidates {
        if let Some(path) = path {
            // A place the user named must exist: falling back would hide their mistake.
            if !path.exists() {
                return Err(InputError(format!(
                    "{}: IMDB data not found (named by {origin})",
                    path.display()
                )));
            }
            return Ok((path, origin));
        }
    }
    if cached.exists() {
        return Ok((cached, "the cache"));
    }
    Err(InputError(format!(
        "IMDB data not found: run `attnx data fetch imdb` to download it into {} (84 MB), or name an aclImdb archive or folder with --data PATH or ${DATA_ENV}",
        cache_dir().display()
    )))
}

/// The IMDB archive for tests that need the real data, found as the binary finds it without
/// `--data` or a config's field (`$ATTNX_DATA`, then `attnx data fetch`'s cache), and then as
/// the project's own machines carry it, beside the checkout. Panics, naming all three, where
/// none has it: such tests are `#[ignore = "needs the IMDB archive ..."]`, and CI runs them.
#[doc(hidden)]
pub fn archive_for_tests() -> PathBuf {
    let beside =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/aclImdb_v1_labeled.tar.gz");
    let named = std::env::var_os(DATA_ENV).is_some();
    match locate(None, None) {
        Ok((path, _)) => path,
        // $ATTNX_DATA naming a missing path is an error, as it is for the binary.
        Err(_) if !named && beside.exists() => beside,
        Err(not_found) => panic!(
            "this test needs the IMDB archive, and it is not at {}: {not_found}",
            beside.display()
        ),
    }
}

/// Where a classifier's data comes from, found before it is read: the IMDB data where
/// [`locate`] finds it, or a text task's files (split by the config's seed).
#[derive(Debug)]
pub enum DataSource<'a> {
    Imdb {
        path: PathBuf,
        /// How it was found, for messages.
        origin: &'static str,
    },
    Text {
        source: &'a TextSource,
        seed: u64,
    },
}

impl<'a> DataSource<'a> {
    /// The source of `corpus`; IMDB's is located through `--data` (`cli`), the config's `data`
    /// field, `$ATTNX_DATA` or the cache.
    pub fn locate(
        corpus: &'a Corpus,
        seed: u64,
        cli: Option<&Path>,
        config: Option<&Path>,
    ) -> Result<Self, InputError> {
        Ok(match corpus {
            Corpus::Imdb => {
                let (path, origin) = locate(cli, config)?;
                DataSource::Imdb { path, origin }
            }
            Corpus::Text(source) => DataSource::Text { source, seed },
        })
    }

    /// Reads and shapes the data for `task`.
    pub fn prepare(&self, task: &ImdbTask) -> Result<ImdbData, InputError> {
        match self {
            DataSource::Imdb { path, .. } => ImdbData::prepare(task, path),
            DataSource::Text { source, seed } => ImdbData::prepare_text(task, source, *seed),
        }
    }

    /// The files or folders read.
    pub fn paths(&self) -> Vec<&Path> {
        match self {
            DataSource::Imdb { path, .. } => vec![path],
            DataSource::Text { source, .. } => {
                let mut paths = vec![source.train.as_path()];
                if let TestSplit::File(test) = &source.test {
                    paths.push(test);
                }
                paths
            }
        }
    }

    /// What the data's rows are, in words, for `data`'s line once it is ready.
    pub fn rows_of(&self, data: &ImdbData) -> String {
        match self {
            DataSource::Imdb { .. } => "reviews".into(),
            DataSource::Text { .. } => format!("texts of {} classes", data.classes.len()),
        }
    }

    /// Where the data comes from, in words.
    pub fn describe(&self) -> String {
        match self {
            DataSource::Imdb { path, origin } => {
                format!("IMDB data from {} ({origin})", path.display())
            }
            DataSource::Text { source, .. } => format!("texts from {}", source.train.display()),
        }
    }
}

/// Reviews as ids (`[START, word ids...]`, unpadded) with their labels and file names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Encoded {
    pub ids: Vec<Vec<u32>>,
    pub labels: Vec<u8>,
    /// Each review's `ID_RATING` file stem.
    pub names: Vec<String>,
}

/// Both splits, encoded with the training split's vocabulary, and that vocabulary's words.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EncodedImdb {
    pub train: Encoded,
    pub test: Encoded,
    /// The vocabulary's words by id: entry `i` has id `i + FIRST_WORD`.
    pub words: Vec<String>,
}

/// Bump when tokenizing or encoding changes, so that old caches are not used.
/// 2: the vocabulary's words are cached too (`attnx attention` draws them).
const CACHE_VERSION: u32 = 2;
const MAGIC: &[u8; 8] = b"ATTNXIMD";

impl EncodedImdb {
    /// Reads, tokenizes and encodes the data (no cache).
    pub fn build(path: &Path, num_words: usize) -> Result<Self, InputError> {
        let reviews = ImdbReviews::read(path)?;
        let tokens = |split: &[Review]| split.iter().map(|r| tokenize(&r.text)).collect::<Vec<_>>();
        let labels = |split: &[Review]| split.iter().map(|r| r.label).collect::<Vec<u8>>();
        let names = |split: &[Review]| split.iter().map(|r| r.name.clone()).collect();
        let train_tokens = tokens(&reviews.train);
        let vocab = Vocabulary::build(train_tokens.iter().map(Vec::as_slice), num_words);
        let encode = |tokens: &[Vec<String>]| tokens.iter().map(|t| vocab.encode(t)).collect();
        Ok(Self {
            train: Encoded {
                ids: encode(&train_tokens),
                labels: labels(&reviews.train),
                names: names(&reviews.train),
            },
            test: Encoded {
                ids: encode(&tokens(&reviews.test)),
                labels: labels(&reviews.test),
                names: names(&reviews.test),
            },
            words: vocab.words(),
        })
    }

    /// [`build`](Self::build), through the on-disk cache when the data is an archive (whose
    /// checksum names it); an unpacked folder is read every time.
    pub fn load(path: &Path, checksum: Option<&str>, num_words: usize) -> Result<Self, InputError> {
        let Some(checksum) = checksum else {
            return Self::build(path, num_words);
        };
        let cache = cache_dir().join("imdb").join(format!(
            "{}-{num_words}-v{CACHE_VERSION}.bin",
            &checksum[..16]
        ));
        if let Ok(bytes) = std::fs::read(&cache)
            && let Some(data) = Self::decode(&bytes)
        {
            return Ok(data);
        }
        let data = Self::build(path, num_words)?;
        // A cache that cannot be written only costs time next run: warn, do not fail.
        let written = std::fs::create_dir_all(cache.parent().expect("cache file has a folder"))
            .map_err(anyhow::Error::from)
            .and_then(|()| crate::fsutil::write_atomic(&cache, &data.encode()));
        if let Err(e) = written {
            eprintln!(
                "warning: {}: cannot cache the tokenized data: {e:#}",
                cache.display()
            );
        }
        Ok(data)
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&CACHE_VERSION.to_le_bytes());
        for split in [&self.train, &self.test] {
            out.extend_from_slice(&(split.ids.len() as u32).to_le_bytes());
            for ((ids, &label), name) in split.ids.iter().zip(&split.labels).zip(&split.names) {
                out.push(label);
                put_text(&mut out, name);
                out.extend_from_slice(&(ids.len() as u32).to_le_bytes());
                for id in ids {
                    out.extend_from_slice(&id.to_le_bytes());
                }
            }
        }
        out.extend_from_slice(&(self.words.len() as u32).to_le_bytes());
        for word in &self.words {
            put_text(&mut out, word);
        }
        out
    }

    /// `None` for anything but a complete cache file of this version.
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut cursor = Cursor { bytes, at: 0 };
        if cursor.take(8)? != MAGIC || cursor.u32()? != CACHE_VERSION {
            return None;
        }
        let mut split = || -> Option<Encoded> {
            let count = cursor.u32()? as usize;
            let mut split = Encoded::default();
            for _ in 0..count {
                split.labels.push(cursor.take(1)?[0]);
                split.names.push(cursor.text()?);
                let len = cursor.u32()? as usize;
                let raw = cursor.take(4 * len)?;
                let ids = raw
                    .chunks_exact(4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                split.ids.push(ids.collect());
            }
            Some(split)
        };
        let train = split()?;
        let test = split()?;
        let count = cursor.u32()? as usize;
        let mut words = Vec::with_capacity(count);
        for _ in 0..count {
            words.push(cursor.text()?);
        }
        (cursor.at == bytes.len()).then_some(Self { train, test, words })
    }
}

/// Reads a cache file front to back.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A string written by [`put_text`].
    fn text(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

/// A length-prefixed UTF-8 string, as [`Cursor::text`] reads it.
fn put_text(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// One split ready for a model: `maxlen` ids per review, pre-padded, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Batchable {
    pub ids: Vec<u32>,
    pub labels: Vec<u8>,
    pub maxlen: usize,
}

impl Batchable {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// [`from_encoded`](Self::from_encoded) keeping a fixed stratified sample of `limit` rows
    /// (all rows without a limit or when it is no smaller).
    pub(crate) fn limited(
        split: &Encoded,
        maxlen: usize,
        classes: usize,
        limit: Option<usize>,
    ) -> Self {
        let chosen = limit
            .filter(|&n| n < split.labels.len())
            .map(|n| fixed_sample(&split.labels, classes, n));
        Self::from_encoded(split, maxlen, chosen)
    }

    /// Pads and truncates (Keras `pre`), keeping only the reviews `chosen` (all if `None`).
    fn from_encoded(split: &Encoded, maxlen: usize, chosen: Option<Vec<usize>>) -> Self {
        let chosen = chosen.unwrap_or_else(|| (0..split.labels.len()).collect());
        let mut ids = Vec::with_capacity(chosen.len() * maxlen);
        let mut labels = Vec::with_capacity(chosen.len());
        for i in chosen {
            ids.extend(pad_pre(&split.ids[i], maxlen));
            labels.push(split.labels[i]);
        }
        Self {
            ids,
            labels,
            maxlen,
        }
    }
}

/// A fixed sample of `limit` rows, stratified by class (the same for every repeat and run).
fn fixed_sample(labels: &[u8], classes: usize, limit: usize) -> Vec<usize> {
    stratified_split(
        labels,
        classes,
        limit,
        &mut StdRng::seed_from_u64(0x1ab_e11ed),
    )
    .0
}

/// `count` of the rows of `labels` (class ids below `classes`), each class in proportion to its
/// rows, drawn with `rng`, and the rows left over; both in order.
///
/// Each class gets its proportional share rounded down, and the rows still missing go to the
/// largest remainders, later classes first on ties: two classes of equal size get `count / 2`
/// and the rest, as IMDB's label-balanced splits always had.
pub fn stratified_split(
    labels: &[u8],
    classes: usize,
    count: usize,
    rng: &mut StdRng,
) -> (Vec<usize>, Vec<usize>) {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &label) in labels.iter().enumerate() {
        by_class[usize::from(label)].push(i);
    }
    let rows = labels.len().max(1);
    let mut want: Vec<usize> = by_class.iter().map(|g| count * g.len() / rows).collect();
    let mut order: Vec<usize> = (0..classes).collect();
    // Largest remainder first, later class first on a tie.
    order.sort_by_key(|&c| std::cmp::Reverse(((count * by_class[c].len()) % rows, c)));
    let short = count.saturating_sub(want.iter().sum());
    for &c in order.iter().take(short) {
        want[c] += 1;
    }
    let mut chosen = Vec::with_capacity(count);
    let mut rest = Vec::with_capacity(labels.len().saturating_sub(count));
    for (group, want) in by_class.iter_mut().zip(want) {
        group.shuffle(rng);
        let (taken, left) = group.split_at(want.min(group.len()));
        chosen.extend_from_slice(taken);
        rest.extend_from_slice(left);
    }
    chosen.sort_unstable();
    rest.sort_unstable();
    (chosen, rest)
}

/// A classifier's data (IMDB's, or a text task's), ready to batch.
#[derive(Debug, Clone)]
pub struct ImdbData {
    pub train: Batchable,
    pub test: Batchable,
    /// sha256 of the archive, when the data came from one.
    pub checksum: Option<String>,
    /// The class labels by id (IMDB: `neg`, `pos`).
    pub classes: Vec<String>,
    /// A text task's files and class counts, for its records.
    pub text: Option<TextData>,
}

impl ImdbData {
    /// Reads (through the cache) and shapes the data for an IMDB task.
    pub fn prepare(task: &ImdbTask, path: &Path) -> Result<Self, InputError> {
        Ok(Self::prepare_encoded(task, path)?.0)
    }

    /// [`prepare`](Self::prepare), and the whole encoded data set with its vocabulary.
    pub fn prepare_encoded(
        task: &ImdbTask,
        path: &Path,
    ) -> Result<(Self, EncodedImdb), InputError> {
        let ImdbTask {
            num_words,
            maxlen,
            train_limit,
            test_limit,
            ..
        } = *task;
        let checksum = if path.is_file() {
            Some(crate::fsutil::sha256_file(path).map_err(|e| {
                InputError(format!("{}: cannot read IMDB data: {e}", path.display()))
            })?)
        } else {
            None
        };
        let encoded = EncodedImdb::load(path, checksum.as_deref(), num_words)?;
        let classes = vec!["neg".to_string(), "pos".to_string()];
        let data = Self {
            train: Batchable::limited(&encoded.train, maxlen, classes.len(), train_limit),
            test: Batchable::limited(&encoded.test, maxlen, classes.len(), test_limit),
            checksum,
            classes,
            text: None,
        };
        Ok((data, encoded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_format_round_trips_and_rejects_damage() {
        let data = EncodedImdb {
            train: Encoded {
                ids: vec![vec![1, 5, 9], vec![1]],
                labels: vec![1, 0],
                names: vec!["3_7".into(), "12_1".into()],
            },
            test: Encoded {
                ids: vec![vec![1, 2, 2, 7]],
                labels: vec![0],
                names: vec!["0_2".into()],
            },
            words: vec!["the".into(), "café".into()],
        };
        let bytes = data.encode();
        assert_eq!(EncodedImdb::decode(&bytes), Some(data));
        assert_eq!(EncodedImdb::decode(&bytes[..bytes.len() - 1]), None);
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(EncodedImdb::decode(&longer), None);
        assert_eq!(EncodedImdb::decode(b"garbage"), None);
    }

    /// Two classes of equal size split as IMDB's label-balanced splits did (the smaller half to
    /// class 0), so that IMDB records keep their bits; more classes split in proportion.
    #[test]
    fn stratified_shares_round_as_the_balanced_split_did() {
        let count_of = |rows: &[usize], labels: &[u8], class: u8| {
            rows.iter().filter(|&&i| labels[i] == class).count()
        };
        let even: Vec<u8> = (0..40).map(|i| u8::from(i % 2 == 1)).collect();
        let (held, _) = stratified_split(&even, 2, 7, &mut StdRng::seed_from_u64(1));
        assert_eq!(
            (count_of(&held, &even, 0), count_of(&held, &even, 1)),
            (3, 4)
        );
        // 50, 30 and 20 rows; 10% is 5, 3 and 2; 11 rows give the 11th to the largest remainder.
        let three: Vec<u8> = (0..100)
            .map(|i| u8::from(i >= 50) + u8::from(i >= 80))
            .collect();
        let (held, rest) = stratified_split(&three, 3, 11, &mut StdRng::seed_from_u64(1));
        let shares: Vec<usize> = (0..3).map(|c| count_of(&held, &three, c)).collect();
        assert_eq!(shares, [6, 3, 2]);
        assert_eq!(held.len() + rest.len(), 100);
    }

    /// 0.9's label-balanced split, as it was: what IMDB's samples and validation splits drew.
    fn balanced_split_of_0_9(
        labels: &[u8],
        count: usize,
        rng: &mut StdRng,
    ) -> (Vec<usize>, Vec<usize>) {
        let mut by_label: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
        for (i, &label) in labels.iter().enumerate() {
            by_label[usize::from(label != 0)].push(i);
        }
        let mut chosen = Vec::new();
        let mut rest = Vec::new();
        for (k, group) in by_label.iter_mut().enumerate() {
            group.shuffle(rng);
            let want = if k == 0 { count / 2 } else { count - count / 2 };
            let (taken, left) = group.split_at(want.min(group.len()));
            chosen.extend_from_slice(taken);
            rest.extend_from_slice(left);
        }
        chosen.sort_unstable();
        rest.sort_unstable();
        (chosen, rest)
    }

    /// On two classes of equal size (IMDB's), the stratified split draws exactly the rows the
    /// balanced split drew, for even and odd counts and any generator: IMDB records keep their
    /// bits.
    #[test]
    fn on_imdbs_equal_classes_the_rows_are_the_balanced_splits() {
        let labels: Vec<u8> = (0..200).map(|i| u8::from(i % 3 == 0 || i >= 150)).collect();
        let ones = labels.iter().filter(|&&l| l == 1).count();
        assert_eq!(ones, 100, "two equal classes, interleaved");
        for seed in 0..20 {
            for count in [1, 2, 7, 40, 99, 100, 199] {
                let new = stratified_split(&labels, 2, count, &mut StdRng::seed_from_u64(seed));
                let old = balanced_split_of_0_9(&labels, count, &mut StdRng::seed_from_u64(seed));
                assert_eq!(new, old, "seed {seed}, count {count}");
            }
        }
    }

    #[test]
    fn samples_are_stratified_and_fixed() {
        let labels: Vec<u8> = (0..100).map(|i| u8::from(i >= 30)).collect();
        let a = fixed_sample(&labels, 2, 20);
        assert_eq!(a.len(), 20);
        assert_eq!(
            a.iter().filter(|&&i| labels[i] == 1).count(),
            14,
            "70% of 20"
        );
        assert_eq!(a, fixed_sample(&labels, 2, 20));

        let (held, rest) = stratified_split(&labels, 2, 20, &mut StdRng::seed_from_u64(9));
        assert_eq!(held.iter().filter(|&&i| labels[i] == 1).count(), 14);
        let mut all: Vec<usize> = held.iter().chain(&rest).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>(), "a partition of the rows");
        let (other, _) = stratified_split(&labels, 2, 20, &mut StdRng::seed_from_u64(10));
        assert_ne!(held, other, "another generator holds out other rows");
    }
}
