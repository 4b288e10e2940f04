//! A text task's data: the user's labelled texts read ([`super::text`]), split into training
//! and test texts, tokenized and encoded as the IMDB reviews are (the same tokenizer, the same
//! vocabulary by frequency over the training texts, the same padding), ready to batch.
//!
//! Texts are not kept: each is tokenized as it is read and its words interned, so that memory
//! holds one id per token rather than the text.

use std::collections::HashMap;
use std::path::Path;

use super::imdb::{START, Vocabulary, tokenize};
use super::prepare::{Batchable, Encoded, ImdbData, stratified_split};
use super::text::{Columns, FileRead, Row, read_rows};
use crate::config::{ImdbTask, TestSplit, TextSource};
use crate::error::InputError;
use serde::{Deserialize, Serialize};

/// The labelled texts a text task read, as its records name them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextData {
    pub files: Vec<DataFile>,
    /// Every class, in the order of the model's outputs, with its texts in each split.
    pub classes: Vec<ClassCount>,
}

/// One file (or folder) of texts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    /// As the config names it.
    pub path: String,
    /// sha256 of its bytes (of a folder: its `.txt` files' names and bytes, in name order).
    pub sha256: String,
    pub rows: usize,
}

/// A class and how many texts of it each split has (after `train_limit`/`test_limit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCount {
    pub label: String,
    pub train: usize,
    pub test: usize,
}

/// The most classes a text task may have (labels are bytes).
pub const MAX_CLASSES: usize = 256;

/// Words interned as they are read: each distinct word once, texts as word numbers.
#[derive(Debug, Default)]
struct Words {
    numbers: HashMap<String, u32>,
    words: Vec<String>,
}

impl Words {
    fn intern(&mut self, text: &str) -> Vec<u32> {
        tokenize(text)
            .into_iter()
            .map(|word| {
                if let Some(&n) = self.numbers.get(&word) {
                    return n;
                }
                let n = self.words.len() as u32;
                self.words.push(word.clone());
                self.numbers.insert(word, n);
                n
            })
            .collect()
    }
}

/// One split as read: each text's word numbers, its label's number (in order of first
/// appearance) and its place.
#[derive(Debug, Default)]
struct ReadSplit {
    texts: Vec<Vec<u32>>,
    labels: Vec<usize>,
    places: Vec<String>,
}

/// Everything read from a source, before the classes are numbered.
#[derive(Debug, Default)]
pub struct ReadTexts {
    words: Words,
    /// Labels by number of first appearance.
    labels: Vec<String>,
    label_numbers: HashMap<String, usize>,
    train: ReadSplit,
    test: ReadSplit,
    files: Vec<(FileRead, String)>,
    /// Hashes of each text's bytes, for `attnx data info` (train, test).
    pub text_hashes: (Vec<u64>, Vec<u64>),
    /// Whether empty texts are counted (`attnx data info`) rather than refused.
    lenient: bool,
    /// Empty texts counted (and left out) when lenient.
    pub empty: usize,
}

/// Which split rows of a file go to.
#[derive(Clone, Copy, PartialEq)]
enum Destination {
    Train,
    Test,
    /// As the split column says.
    Column,
}

impl ReadTexts {
    /// Reads the source's files: the training file (with its test rows under a split column),
    /// and the test file if there is one. An empty text fails at its place.
    pub fn read(source: &TextSource) -> Result<Self, InputError> {
        let split_column = match &source.test {
            TestSplit::Column(column) => Some(column.as_str()),
            _ => None,
        };
        let test_file = match &source.test {
            TestSplit::File(path) => Some(path.as_path()),
            _ => None,
        };
        Self::read_parts(source, test_file, split_column, false)
    }

    /// Reads `source.train` (its rows split by `split_column` if given) and `test_file`;
    /// `lenient` counts empty texts instead of failing on the first.
    pub fn read_parts(
        source: &TextSource,
        test_file: Option<&Path>,
        split_column: Option<&str>,
        lenient: bool,
    ) -> Result<Self, InputError> {
        let mut read = ReadTexts {
            lenient,
            ..ReadTexts::default()
        };
        let columns = Columns {
            text: &source.text_column,
            label: &source.label_column,
            split: split_column,
        };
        let into = if split_column.is_some() {
            Destination::Column
        } else {
            Destination::Train
        };
        read.read_file(&source.train, columns, into)?;
        if let Some(test) = test_file {
            read.read_file(
                test,
                Columns {
                    split: None,
                    ..columns
                },
                Destination::Test,
            )?;
        }
        if split_column.is_some() && read.test.texts.is_empty() {
            return Err(InputError(format!(
                "{}: no row has \"test\" in the split column {:?}",
                source.train.display(),
                split_column.unwrap_or_default()
            )));
        }
        Ok(read)
    }

    fn read_file(
        &mut self,
        path: &Path,
        columns: Columns<'_>,
        into: Destination,
    ) -> Result<(), InputError> {
        let mut on_row = |row: Row<'_>| -> Result<(), String> {
            if row.text.trim().is_empty() {
                if self.lenient {
                    self.empty += 1;
                    return Ok(());
                }
                return Err("an empty text".into());
            }
            let label = row.label.trim();
            if label.is_empty() {
                return Err("an empty label".into());
            }
            let test = match into {
                Destination::Train => false,
                Destination::Test => true,
                Destination::Column => match row.split.map(str::trim) {
                    Some("train") => false,
                    Some("test") => true,
                    other => {
                        return Err(format!(
                            "split {:?} is neither \"train\" nor \"test\"",
                            other.unwrap_or_default()
                        ));
                    }
                },
            };
            let next = self.labels.len();
            let number = *self.label_numbers.entry(label.to_string()).or_insert(next);
            if number == next {
                self.labels.push(label.to_string());
            }
            let hash = text_hash(row.text);
            let (split, hashes) = if test {
                (&mut self.test, &mut self.text_hashes.1)
            } else {
                (&mut self.train, &mut self.text_hashes.0)
            };
            split.texts.push(self.words.intern(row.text));
            split.labels.push(number);
            split.places.push(row.place.to_string());
            hashes.push(hash);
            Ok(())
        };
        let read = read_rows(path, columns, &mut on_row)?;
        self.files.push((read, path.display().to_string()));
        Ok(())
    }

    /// Training texts, test texts.
    pub fn counts(&self) -> (usize, usize) {
        (self.train.texts.len(), self.test.texts.len())
    }

    /// The files read, as records name them.
    pub fn files(&self) -> Vec<DataFile> {
        self.files
            .iter()
            .map(|(read, path)| DataFile {
                path: path.clone(),
                sha256: read.sha256.clone(),
                rows: read.rows,
            })
            .collect()
    }

    /// Bytes read in all.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|(read, _)| read.bytes).sum()
    }

    /// Each text's length in tokens (train, test).
    pub fn lengths(&self) -> (Vec<usize>, Vec<usize>) {
        let lengths = |s: &ReadSplit| s.texts.iter().map(Vec::len).collect();
        (lengths(&self.train), lengths(&self.test))
    }

    /// Distinct words in the training texts.
    pub fn distinct_training_words(&self) -> usize {
        let mut seen = vec![false; self.words.words.len()];
        for text in &self.train.texts {
            for &w in text {
                seen[w as usize] = true;
            }
        }
        seen.iter().filter(|&&s| s).count()
    }

    /// Texts that repeat an earlier one of their split (training, test), and test texts that
    /// are also training texts (compared by a 64-bit hash of their bytes).
    pub fn duplicates(&self) -> (usize, usize, usize) {
        let repeats = |hashes: &[u64]| {
            let mut seen = std::collections::HashSet::new();
            hashes.iter().filter(|h| !seen.insert(**h)).count()
        };
        let training: std::collections::HashSet<u64> = self.text_hashes.0.iter().copied().collect();
        let shared = self
            .text_hashes
            .1
            .iter()
            .filter(|h| training.contains(h))
            .count();
        (
            repeats(&self.text_hashes.0),
            repeats(&self.text_hashes.1),
            shared,
        )
    }

    /// The share of training tokens (and of test tokens) a vocabulary of `num_words` covers.
    pub fn coverage(&self, num_words: usize) -> (f64, f64) {
        let lookup = self.vocabulary(num_words).1;
        let share = |s: &ReadSplit| {
            let (mut known, mut all) = (0usize, 0usize);
            for text in &s.texts {
                all += text.len();
                known += text
                    .iter()
                    .filter(|&&w| lookup[w as usize] != super::imdb::OOV)
                    .count();
            }
            known as f64 / all.max(1) as f64
        };
        (share(&self.train), share(&self.test))
    }

    /// The vocabulary of the training texts, and each word number's id in it.
    fn vocabulary(&self, num_words: usize) -> (Vocabulary, Vec<u32>) {
        let mut counts = vec![0u64; self.words.words.len()];
        for text in &self.train.texts {
            for &w in text {
                counts[w as usize] += 1;
            }
        }
        let vocabulary = Vocabulary::from_counts(
            self.words.words.iter().map(String::as_str).zip(counts),
            num_words,
        );
        let lookup = self.words.words.iter().map(|w| vocabulary.id(w)).collect();
        (vocabulary, lookup)
    }

    /// The classes in order: by value when every label is a number (`1` < `2` < `10`), else
    /// by text.
    pub fn classes(&self) -> Vec<String> {
        let mut classes = self.labels.clone();
        let numbers: Option<Vec<f64>> = classes.iter().map(|l| l.parse::<f64>().ok()).collect();
        match numbers {
            Some(_) => classes.sort_by(|a, b| {
                let (x, y) = (a.parse::<f64>().unwrap(), b.parse::<f64>().unwrap());
                x.total_cmp(&y).then_with(|| a.cmp(b))
            }),
            None => classes.sort(),
        }
        classes
    }

    /// Class counts per split as read (before limits): label, train, test.
    pub fn class_counts(&self) -> Vec<(String, usize, usize)> {
        let classes = self.classes();
        let id: HashMap<&str, usize> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        let mut counts = vec![(0usize, 0usize); classes.len()];
        for &l in &self.train.labels {
            counts[id[self.labels[l].as_str()]].0 += 1;
        }
        for &l in &self.test.labels {
            counts[id[self.labels[l].as_str()]].1 += 1;
        }
        classes
            .into_iter()
            .zip(counts)
            .map(|(c, (train, test))| (c, train, test))
            .collect()
    }
}

impl ReadSplit {
    /// Moves the rows `rows` (and their hashes) out, in that order.
    fn take_rows(&mut self, rows: &[usize], hashes: &[u64]) -> (ReadSplit, Vec<u64>) {
        let split = ReadSplit {
            texts: rows
                .iter()
                .map(|&r| std::mem::take(&mut self.texts[r]))
                .collect(),
            labels: rows.iter().map(|&r| self.labels[r]).collect(),
            places: rows
                .iter()
                .map(|&r| std::mem::take(&mut self.places[r]))
                .collect(),
        };
        (split, rows.iter().map(|&r| hashes[r]).collect())
    }
}

/// A 64-bit hash of a text's bytes (FNV-1a: fixed, so that duplicates count the same anywhere).
fn text_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl ImdbData {
    /// A text task's data: its files read, the test split taken (from its file, its split
    /// column, or `test_fraction` of the training texts stratified by class from `seed`), the
    /// classes numbered, the texts encoded with the training texts' vocabulary, and
    /// `train_limit`/`test_limit` applied as for IMDB.
    pub fn prepare_text(
        task: &ImdbTask,
        source: &TextSource,
        seed: u64,
    ) -> Result<Self, InputError> {
        let read = ReadTexts::read(source)?;
        Self::from_read(task, source, seed, read)
    }

    fn from_read(
        task: &ImdbTask,
        source: &TextSource,
        seed: u64,
        mut read: ReadTexts,
    ) -> Result<Self, InputError> {
        let train_file = source.train.display().to_string();
        let classes = read.classes();
        if classes.len() > MAX_CLASSES {
            return Err(InputError(format!(
                "{train_file}: {} classes, more than the {MAX_CLASSES} a text task can have (is the label column {:?} right?)",
                classes.len(),
                source.label_column
            )));
        }
        let class_of: HashMap<&str, u8> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i as u8))
            .collect();
        let label_class: Vec<u8> = read.labels.iter().map(|l| class_of[l.as_str()]).collect();
        if let TestSplit::Fraction(fraction) = source.test {
            let labels: Vec<u8> = read.train.labels.iter().map(|&l| label_class[l]).collect();
            let fraction = fraction.get();
            let held = (fraction * labels.len() as f64).round() as usize;
            let mut rng = crate::rng::rng(seed, crate::rng::Stream::TestSplit);
            let (test_rows, train_rows) = stratified_split(&labels, classes.len(), held, &mut rng);
            if test_rows.is_empty() || train_rows.len() < 2 {
                return Err(InputError(format!(
                    "{train_file}: task.test_fraction {fraction} of {} texts leaves {} for testing and {} for training",
                    labels.len(),
                    test_rows.len(),
                    train_rows.len()
                )));
            }
            let mut all = std::mem::take(&mut read.train);
            let hashes = std::mem::take(&mut read.text_hashes.0);
            let (train, train_hashes) = all.take_rows(&train_rows, &hashes);
            let (test, test_hashes) = all.take_rows(&test_rows, &hashes);
            (read.train, read.test) = (train, test);
            read.text_hashes = (train_hashes, test_hashes);
        }
        let mut training_has = vec![false; classes.len()];
        for &l in &read.train.labels {
            training_has[usize::from(label_class[l])] = true;
        }
        let trained = training_has.iter().filter(|&&h| h).count();
        if trained < 2 {
            return Err(InputError(format!(
                "{train_file}: the training texts have {trained} class{} ({}); a classifier needs at least 2",
                if trained == 1 { "" } else { "es" },
                classes
                    .iter()
                    .zip(&training_has)
                    .filter(|(_, h)| **h)
                    .map(|(c, _)| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if let Some(i) = read
            .test
            .labels
            .iter()
            .position(|&l| !training_has[usize::from(label_class[l])])
        {
            let trained: Vec<&str> = classes
                .iter()
                .zip(&training_has)
                .filter(|(_, has)| **has)
                .map(|(c, _)| c.as_str())
                .collect();
            return Err(InputError(format!(
                "{}: label {:?} is never seen in training (training has {})",
                read.test.places[i],
                read.labels[read.test.labels[i]],
                trained.join(", ")
            )));
        }
        let lookup = read.vocabulary(task.num_words).1;
        // Each text's ids replace its word numbers as they are made (the word numbers freed
        // text by text), so that the texts are held about once.
        let encode = |split: ReadSplit| Encoded {
            ids: split
                .texts
                .into_iter()
                .map(|text| {
                    let mut ids = Vec::with_capacity(text.len() + 1);
                    ids.push(START);
                    ids.extend(text.iter().map(|&w| lookup[w as usize]));
                    ids
                })
                .collect(),
            labels: split.labels.iter().map(|&l| label_class[l]).collect(),
            names: split.places,
        };
        let files = read.files();
        let train = encode(std::mem::take(&mut read.train));
        let test = encode(std::mem::take(&mut read.test));
        drop(read);
        let k = classes.len();
        let per_class = |labels: &[u8]| {
            let mut n = vec![0usize; k];
            for &l in labels {
                n[usize::from(l)] += 1;
            }
            n
        };
        let (train_before, test_before) = (per_class(&train.labels), per_class(&test.labels));
        let train = Batchable::limited(&train, task.maxlen, k, task.train_limit);
        let test = Batchable::limited(&test, task.maxlen, k, task.test_limit);
        let (train_after, test_after) = (per_class(&train.labels), per_class(&test.labels));
        // The limits sample each class in proportion: one too small leaves a class out.
        for (limit, field, before, after) in [
            (task.train_limit, "train_limit", &train_before, &train_after),
            (task.test_limit, "test_limit", &test_before, &test_after),
        ] {
            if let Some(c) = (0..k).find(|&c| before[c] > 0 && after[c] == 0) {
                return Err(InputError(format!(
                    "{train_file}: task.{field} {} leaves class {:?} without a text; raise it (the data has {k} classes)",
                    limit.unwrap_or_default(),
                    classes[c]
                )));
            }
        }
        let text = TextData {
            files,
            classes: classes
                .iter()
                .enumerate()
                .map(|(c, label)| ClassCount {
                    label: label.clone(),
                    train: train_after[c],
                    test: test_after[c],
                })
                .collect(),
        };
        Ok(ImdbData {
            train,
            test,
            checksum: None,
            classes,
            text: Some(text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn source(train: PathBuf, test: TestSplit) -> TextSource {
        TextSource {
            train,
            test,
            text_column: "text".into(),
            label_column: "label".into(),
        }
    }

    fn task() -> ImdbTask {
        let (num_words, maxlen) = ImdbTask::default_sizes();
        ImdbTask {
            num_words,
            maxlen,
            epochs: 1,
            batch_size: 4,
            train_limit: None,
            test_limit: None,
            validation_split: None,
            early_stopping: None,
        }
    }

    fn csv(dir: &Path, name: &str, rows: &[(&str, &str)]) -> PathBuf {
        let mut text = String::from("text,label\n");
        for (t, l) in rows {
            text.push_str(&format!("{t},{l}\n"));
        }
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Numbers order by value (`1 < 2 < 10`), anything else by text; the model's outputs and
    /// the records follow that order.
    #[test]
    fn classes_are_ordered_by_value_when_every_label_is_a_number() {
        let dir = tempfile::tempdir().unwrap();
        let numbers = csv(
            dir.path(),
            "n.csv",
            &[("a", "10"), ("b", "2"), ("c", "1"), ("d", "2")],
        );
        let read = ReadTexts::read(&source(
            numbers,
            TestSplit::Fraction(crate::config::task::Fraction::new(0.5)),
        ))
        .unwrap();
        assert_eq!(read.classes(), ["1", "2", "10"]);
        let words = csv(
            dir.path(),
            "w.csv",
            &[("a", "pos"), ("b", "10"), ("c", "neg")],
        );
        let read = ReadTexts::read(&source(
            words,
            TestSplit::Fraction(crate::config::task::Fraction::new(0.5)),
        ))
        .unwrap();
        assert_eq!(read.classes(), ["10", "neg", "pos"]);
    }

    /// `test_fraction` holds out each class in proportion, the same rows for the same seed and
    /// other rows for another; the vocabulary comes from the training part only.
    #[test]
    fn a_test_fraction_is_stratified_and_drawn_from_the_seed() {
        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<(String, &str)> = (0..40)
            .map(|i| (format!("word{i} common"), if i < 30 { "a" } else { "b" }))
            .collect();
        let rows: Vec<(&str, &str)> = rows.iter().map(|(t, l)| (t.as_str(), *l)).collect();
        let path = csv(dir.path(), "t.csv", &rows);
        let held_out = TestSplit::Fraction(crate::config::task::Fraction::new(0.25));
        let data = |seed| {
            ImdbData::prepare_text(&task(), &source(path.clone(), held_out.clone()), seed).unwrap()
        };
        let one = data(1);
        let counts: Vec<(usize, usize)> = one
            .text
            .as_ref()
            .unwrap()
            .classes
            .iter()
            .map(|c| (c.train, c.test))
            .collect();
        // 10 of 40 held out: 7.5 and 2.5 by proportion; the tie goes to the later class.
        assert_eq!(counts, [(23, 7), (7, 3)]);
        // Every held-out text encodes alike (its own word is out of vocabulary): the split
        // shows in the training texts.
        assert_eq!(
            data(1).train.ids,
            one.train.ids,
            "the same seed, the same split"
        );
        assert_ne!(
            data(2).train.ids,
            one.train.ids,
            "another seed, another split"
        );
        // Each held-out text's own word is out of vocabulary: it appears in no training text.
        let t = one.test.maxlen;
        for row in one.test.ids.chunks(t) {
            assert_eq!(row[t - 2], crate::data::imdb::OOV, "{row:?}");
        }
    }

    #[test]
    fn more_classes_than_labels_can_hold_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let labels: Vec<String> = (0..=MAX_CLASSES).map(|i| format!("c{i}")).collect();
        let rows: Vec<(&str, &str)> = labels.iter().map(|l| ("some text", l.as_str())).collect();
        let path = csv(dir.path(), "many.csv", &rows);
        let test = csv(dir.path(), "test.csv", &[("x", "c0")]);
        let error = ImdbData::prepare_text(&task(), &source(path, TestSplit::File(test)), 0)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("many.csv: 257 classes, more than the 256"),
            "{error}"
        );
    }
}
