//! The user's own labelled text: reading it from CSV, TSV, JSON Lines or a folder per class,
//! streamed row by row, every bad row reported as one line naming the file, the line and the
//! problem.
//!
//! Rows are handed to a callback as they are read, so that a caller keeps only what it needs
//! (the text task keeps interned token ids, `attnx data info` counts).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::InputError;

/// How a file of texts is laid out, from its extension (or a folder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Tsv,
    JsonLines,
    /// A subfolder of `.txt` files per class: `<folder>/<label>/*.txt`.
    Folder,
}

impl Format {
    /// The format of an existing file or folder.
    pub fn of(path: &Path) -> Result<Self, InputError> {
        let meta = std::fs::metadata(path).map_err(|e| {
            InputError(format!(
                "{}: cannot read: {e} (a relative path is from the current folder)",
                path.display()
            ))
        })?;
        if meta.is_dir() {
            return Ok(Format::Folder);
        }
        Self::of_file_name(path).ok_or_else(|| {
            InputError(format!(
                "{}: unknown format: expected a .csv, .tsv or .jsonl file, or a folder with a \
                 subfolder of .txt files per class",
                path.display()
            ))
        })
    }

    /// The format a file's extension names (`.csv`, `.tsv`/`.tab`, `.jsonl`/`.ndjson`).
    pub fn of_file_name(path: &Path) -> Option<Self> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("csv") => Some(Format::Csv),
            Some("tsv" | "tab") => Some(Format::Tsv),
            Some("jsonl" | "ndjson") => Some(Format::JsonLines),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "CSV",
            Format::Tsv => "TSV",
            Format::JsonLines => "JSON Lines",
            Format::Folder => "folder per class",
        }
    }
}

/// Which columns (CSV, TSV) or keys (JSON Lines) hold what.
#[derive(Debug, Clone, Copy)]
pub struct Columns<'a> {
    pub text: &'a str,
    pub label: &'a str,
    /// The column saying each row's split (`train` or `test`), if any.
    pub split: Option<&'a str>,
}

/// One labelled text, as read.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub text: &'a str,
    pub label: &'a str,
    pub split: Option<&'a str>,
    /// Where the row is, for messages: `reviews.csv:12` (the file and line), or the text's
    /// own file (folders).
    pub place: &'a str,
}

/// What reading a file gave, beside its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRead {
    pub path: PathBuf,
    pub format: Format,
    pub rows: usize,
    /// sha256 of the file's bytes; for a folder, of its `.txt` files' relative paths and bytes
    /// in name order.
    pub sha256: String,
    pub bytes: u64,
}

/// Reads every row of `path`, handing each to `on_row`; an error `on_row` returns is reported
/// at the row's place. Fails on the first bad row, and on a file without rows.
pub fn read_rows(
    path: &Path,
    columns: Columns<'_>,
    on_row: &mut dyn FnMut(Row<'_>) -> Result<(), String>,
) -> Result<FileRead, InputError> {
    let format = Format::of(path)?;
    let (rows, sha256, bytes) = match format {
        Format::Csv => read_delimited(path, b',', columns, on_row)?,
        Format::Tsv => read_delimited(path, b'\t', columns, on_row)?,
        Format::JsonLines => read_json_lines(path, columns, on_row)?,
        Format::Folder => read_folder(path, columns, on_row)?,
    };
    if rows == 0 {
        return Err(InputError(format!(
            "{}: no texts in it{}",
            path.display(),
            if format == Format::Folder {
                ""
            } else {
                " (an empty file)"
            }
        )));
    }
    Ok(FileRead {
        path: path.to_path_buf(),
        format,
        rows,
        sha256,
        bytes,
    })
}

/// A reader that hashes the bytes it passes on and counts them.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

fn open(path: &Path) -> Result<Hashing<File>, InputError> {
    let file = File::open(path)
        .map_err(|e| InputError(format!("{}: cannot open: {e}", path.display())))?;
    Ok(Hashing {
        inner: file,
        hasher: Sha256::new(),
        bytes: 0,
    })
}

/// A CSV (`,`) or TSV (tab) file with a header row, quoted as RFC 4180 has it.
fn read_delimited(
    path: &Path,
    delimiter: u8,
    columns: Columns<'_>,
    on_row: &mut dyn FnMut(Row<'_>) -> Result<(), String>,
) -> Result<(usize, String, u64), InputError> {
    let at = |line: u64, message: &str| InputError(format!("{}:{line}: {message}", path.display()));
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(false)
        .buffer_capacity(1 << 20)
        .from_reader(open(path)?);
    let header = reader
        .byte_headers()
        .map_err(|e| csv_error(path, delimiter, &e))?
        .clone();
    if header.is_empty() {
        return Err(InputError(format!(
            "{}: an empty file (expected a header row naming the columns)",
            path.display()
        )));
    }
    let header: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, name)| {
            std::str::from_utf8(name)
                .map(|n| n.trim_start_matches('\u{feff}').to_string())
                .map_err(|_| at(1, &format!("column {} of the header is not UTF-8", i + 1)))
        })
        .collect::<Result<_, _>>()?;
    let find = |name: &str, what: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| {
            at(
                1,
                &format!(
                    "no {what} column {name:?} (the header has {}); name it with task.{what}_column",
                    quoted_list(&header)
                ),
            )
        })
    };
    let text_at = find(columns.text, "text")?;
    let label_at = find(columns.label, "label")?;
    let split_at = columns.split.map(|c| find(c, "split")).transpose()?;
    let mut record = csv::ByteRecord::new();
    let mut rows = 0;
    let (mut last_start, mut last_line) = (0, 0);
    // Each row's place is "FILE:LINE"; the path is formatted once, not per row.
    let shown = path.display().to_string();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(path, delimiter, &e)),
        }
        let position = record.position().expect("a read record has a position");
        let line = position.line();
        (last_start, last_line) = (position.byte(), line);
        let field = |i: usize, what: &str| {
            std::str::from_utf8(&record[i]).map_err(|e| {
                at(
                    line,
                    &format!(
                        "the {what} is not UTF-8 (byte {} of the field); save the file as UTF-8",
                        e.valid_up_to()
                    ),
                )
            })
        };
        let text = field(text_at, "text")?;
        let label = field(label_at, "label")?;
        let split = split_at.map(|i| field(i, "split")).transpose()?;
        let place = format!("{shown}:{line}");
        on_row(Row {
            text,
            label,
            split,
            place: &place,
        })
        .map_err(|m| at(line, &m))?;
        rows += 1;
    }
    let mut hashing = reader.into_inner();
    // The csv reader takes a quote left open as running to the end of the file, as the last
    // record: read by CSV's rules from that record's start, the file must not end in a quote.
    if rows > 0 && open_quote_after(path, last_start, delimiter)? {
        return Err(at(last_line, UNCLOSED));
    }
    std::io::copy(&mut hashing, &mut std::io::sink())
        .map_err(|e| InputError(format!("{}: cannot read: {e}", path.display())))?;
    Ok((
        rows,
        crate::fsutil::hex(&hashing.hasher.finalize()),
        hashing.bytes,
    ))
}

const UNCLOSED: &str =
    "a quoted field is never closed (an unmatched \") and runs to the end of the file";

/// Whether the file, read from the start of a record at `start`, ends inside a quoted field: a
/// quote opens one only at the start of a field (elsewhere it is a character of the text), a
/// doubled quote inside is one quote, and a quote followed by anything else closes it.
fn open_quote_after(path: &Path, start: u64, delimiter: u8) -> Result<bool, InputError> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let read = |e: std::io::Error| InputError(format!("{}: cannot read: {e}", path.display()));
    let mut file = File::open(path).map_err(read)?;
    file.seek(SeekFrom::Start(start)).map_err(read)?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).map_err(read)?;
    let end_of_field = |b: u8| b == delimiter || b == b'\n';
    let state = tail
        .iter()
        .fold(State::FieldStart, |state, &b| match state {
            State::FieldStart if b == b'"' => State::Quoted,
            State::FieldStart | State::Unquoted if end_of_field(b) => State::FieldStart,
            State::FieldStart | State::Unquoted => State::Unquoted,
            State::Quoted if b == b'"' => State::QuoteInQuoted,
            State::Quoted => State::Quoted,
            State::QuoteInQuoted if b == b'"' => State::Quoted,
            State::QuoteInQuoted if end_of_field(b) => State::FieldStart,
            State::QuoteInQuoted => State::Unquoted,
        });
    Ok(state == State::Quoted)
}

fn csv_error(path: &Path, delimiter: u8, error: &csv::Error) -> InputError {
    let line = error.position().map(|p| p.line());
    let message = match error.kind() {
        // A quote left open swallows the rest of the file into one record, which then has too
        // few fields: say so rather than count them.
        csv::ErrorKind::UnequalLengths { pos: Some(pos), .. }
            if open_quote_after(path, pos.byte(), delimiter).unwrap_or(false) =>
        {
            UNCLOSED.to_string()
        }
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} field(s) where the header has {expected_len}"),
        csv::ErrorKind::Io(e) => format!("cannot read: {e}"),
        _ => error.to_string(),
    };
    match line {
        Some(line) => InputError(format!("{}:{line}: {message}", path.display())),
        None => InputError(format!("{}: {message}", path.display())),
    }
}

fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One JSON object per line; blank lines are skipped. A label may be a string or a number.
fn read_json_lines(
    path: &Path,
    columns: Columns<'_>,
    on_row: &mut dyn FnMut(Row<'_>) -> Result<(), String>,
) -> Result<(usize, String, u64), InputError> {
    use std::io::BufRead;
    let mut reader = BufReader::with_capacity(1 << 20, open(path)?);
    let mut bytes = Vec::new();
    let (mut line, mut rows) = (0u64, 0usize);
    let shown = path.display().to_string();
    loop {
        bytes.clear();
        let n = reader
            .read_until(b'\n', &mut bytes)
            .map_err(|e| InputError(format!("{}: cannot read: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        line += 1;
        let at = |message: String| InputError(format!("{}:{line}: {message}", path.display()));
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            at(format!(
                "not UTF-8 (byte {} of the line); save the file as UTF-8",
                e.valid_up_to()
            ))
        })?;
        let text = text.trim_start_matches('\u{feff}');
        if text.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| at(format!("not a JSON object: {}", tidy_json_error(&e))))?;
        let serde_json::Value::Object(object) = value else {
            return Err(at("not a JSON object (one per line)".into()));
        };
        let key = |name: &str, what: &str| -> Result<String, InputError> {
            match object.get(name) {
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(serde_json::Value::Number(n)) if what != "text" => Ok(n.to_string()),
                Some(other) => Err(at(format!(
                    "key {name:?} holds {}, not a {}",
                    json_kind(other),
                    if what == "text" {
                        "string"
                    } else {
                        "string or number"
                    }
                ))),
                None => Err(at(format!(
                    "no key {name:?} (this object has {}); name the {what} key with task.{what}_column",
                    quoted_list(&object.keys().cloned().collect::<Vec<_>>())
                ))),
            }
        };
        let text = key(columns.text, "text")?;
        let label = key(columns.label, "label")?;
        let split = columns.split.map(|c| key(c, "split")).transpose()?;
        let place = format!("{shown}:{line}");
        on_row(Row {
            text: &text,
            label: &label,
            split: split.as_deref(),
            place: &place,
        })
        .map_err(at)?;
        rows += 1;
    }
    let hashing = reader.into_inner();
    Ok((
        rows,
        crate::fsutil::hex(&hashing.hasher.finalize()),
        hashing.bytes,
    ))
}

fn tidy_json_error(error: &serde_json::Error) -> String {
    let message = error.to_string();
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message,
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// `<folder>/<label>/*.txt`, classes and files in name order; other files are skipped.
fn read_folder(
    root: &Path,
    columns: Columns<'_>,
    on_row: &mut dyn FnMut(Row<'_>) -> Result<(), String>,
) -> Result<(usize, String, u64), InputError> {
    if columns.split.is_some() {
        return Err(InputError(format!(
            "{}: a folder has no split column; give the test texts with task.test or task.test_fraction",
            root.display()
        )));
    }
    let list = |dir: &Path| -> Result<Vec<PathBuf>, InputError> {
        let mut paths = std::fs::read_dir(dir)
            .map_err(|e| InputError(format!("{}: cannot list: {e}", dir.display())))?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| InputError(format!("{}: cannot list: {e}", dir.display())))?;
        paths.sort();
        Ok(paths)
    };
    let classes: Vec<PathBuf> = list(root)?.into_iter().filter(|p| p.is_dir()).collect();
    if classes.is_empty() {
        return Err(InputError(format!(
            "{}: no class folders (expected {}/<label>/*.txt, one folder per class)",
            root.display(),
            root.display()
        )));
    }
    let mut hasher = Sha256::new();
    let (mut rows, mut bytes) = (0usize, 0u64);
    for class in classes {
        let label = class
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| {
                InputError(format!(
                    "{}: the folder name is not UTF-8 (it is the class label)",
                    class.display()
                ))
            })?
            .to_string();
        for file in list(&class)? {
            if file.extension().is_none_or(|x| x != "txt") || !file.is_file() {
                continue;
            }
            let content = std::fs::read(&file)
                .map_err(|e| InputError(format!("{}: cannot read: {e}", file.display())))?;
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            let relative = format!("{label}/{name}");
            hasher.update((relative.len() as u64).to_le_bytes());
            hasher.update(relative.as_bytes());
            hasher.update((content.len() as u64).to_le_bytes());
            hasher.update(&content);
            bytes += content.len() as u64;
            let text = std::str::from_utf8(&content).map_err(|e| {
                InputError(format!(
                    "{}: not UTF-8 (byte {}); save the file as UTF-8",
                    file.display(),
                    e.valid_up_to()
                ))
            })?;
            on_row(Row {
                text,
                label: &label,
                split: None,
                place: &file.display().to_string(),
            })
            .map_err(|m| InputError(format!("{}: {m}", file.display())))?;
            rows += 1;
        }
    }
    Ok((rows, crate::fsutil::hex(&hasher.finalize()), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(path: &Path, columns: Columns<'_>) -> Result<Vec<(String, String)>, String> {
        let mut rows = Vec::new();
        read_rows(path, columns, &mut |row| {
            rows.push((row.label.to_string(), row.text.to_string()));
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        Ok(rows)
    }

    const COLUMNS: Columns<'static> = Columns {
        text: "text",
        label: "label",
        split: None,
    };

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn csv_tsv_and_json_lines_give_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let csv = write(
            dir.path(),
            "a.csv",
            b"label,text\npos,\"Great, \"\"really\"\"\nfilm\"\nneg,Bad\n",
        );
        let tsv = write(
            dir.path(),
            "a.tsv",
            b"text\tlabel\n\"Great, \"\"really\"\"\nfilm\"\tpos\nBad\tneg\n",
        );
        let jsonl = write(
            dir.path(),
            "a.jsonl",
            b"{\"text\": \"Great, \\\"really\\\"\\nfilm\", \"label\": \"pos\"}\n\n{\"label\": \"neg\", \"text\": \"Bad\"}\n",
        );
        let expected = vec![
            ("pos".to_string(), "Great, \"really\"\nfilm".to_string()),
            ("neg".to_string(), "Bad".to_string()),
        ];
        for path in [csv, tsv, jsonl] {
            assert_eq!(rows_of(&path, COLUMNS).unwrap(), expected, "{path:?}");
        }
        let numbers = write(dir.path(), "n.jsonl", b"{\"text\": \"x\", \"label\": 3}\n");
        assert_eq!(rows_of(&numbers, COLUMNS).unwrap()[0].0, "3");
    }

    #[test]
    fn a_folder_per_class_reads_its_txt_files_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in [
            ("pos/b.txt", "two"),
            ("pos/a.txt", "one"),
            ("neg/c.txt", "three"),
            ("neg/notes.md", "skipped"),
        ] {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let rows = rows_of(dir.path(), COLUMNS).unwrap();
        let labels: Vec<_> = rows.iter().map(|(l, t)| format!("{l}:{t}")).collect();
        assert_eq!(labels, ["neg:three", "pos:one", "pos:two"]);
    }

    /// Every kind of bad file gives one line naming the file, the line and the problem.
    #[test]
    fn bad_files_are_named_with_their_line_and_problem() {
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<(&str, &[u8], &str)> = vec![
            (
                "fields.csv",
                b"text,label\na,pos\nb,neg,extra\n",
                "fields.csv:3: 3 field(s) where the header has 2",
            ),
            (
                "quote.csv",
                b"text,label\na,pos\n\"b,neg\nc,pos\n",
                "quote.csv:3: a quoted field is never closed",
            ),
            (
                "column.csv",
                b"review,label\na,pos\n",
                "column.csv:1: no text column \"text\" (the header has \"review\", \"label\")",
            ),
            (
                "utf8.csv",
                b"text,label\na,pos\nb\xff,neg\n",
                "utf8.csv:3: the text is not UTF-8",
            ),
            (
                "empty.csv",
                b"",
                "empty.csv: an empty file (expected a header row",
            ),
            (
                "header.csv",
                b"text,label\n",
                "header.csv: no texts in it (an empty file)",
            ),
            (
                "key.jsonl",
                b"{\"text\": \"a\", \"label\": \"pos\"}\n{\"text\": \"b\"}\n",
                "key.jsonl:2: no key \"label\" (this object has \"text\")",
            ),
            (
                "json.jsonl",
                b"{\"text\": \"a\", \"label\": \"pos\"\n",
                "json.jsonl:1: not a JSON object: EOF while parsing an object",
            ),
            (
                "type.jsonl",
                b"{\"text\": 5, \"label\": \"pos\"}\n",
                "type.jsonl:1: key \"text\" holds a number, not a string",
            ),
            (
                "bytes.jsonl",
                b"{\"text\": \"a\xc3\", \"label\": \"pos\"}\n",
                "bytes.jsonl:1: not UTF-8",
            ),
            (
                "data.xlsx",
                b"PK",
                "data.xlsx: unknown format: expected a .csv, .tsv or .jsonl file",
            ),
        ];
        for (name, bytes, expected) in cases {
            let path = write(dir.path(), name, bytes);
            let error = rows_of(&path, COLUMNS).unwrap_err();
            assert!(
                error.contains(expected),
                "{name}: expected {expected:?} in {error:?}"
            );
            assert!(!error.contains('\n'), "{name}: one line: {error:?}");
        }
        let empty_folder = dir.path().join("folder");
        std::fs::create_dir(&empty_folder).unwrap();
        let error = rows_of(&empty_folder, COLUMNS).unwrap_err();
        assert!(error.contains("folder: no class folders"), "{error}");
    }

    /// A quote inside an unquoted field is a character of the text, in the last row too; only
    /// a quoted field left open is refused.
    #[test]
    fn a_literal_quote_is_text_and_only_an_open_quoted_field_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let literal = write(
            dir.path(),
            "l.csv",
            b"text,label\n12\" vinyl,pos\nit's \"fine\",neg\n",
        );
        let rows = rows_of(&literal, COLUMNS).unwrap();
        assert_eq!(rows[0].1, "12\" vinyl");
        assert_eq!(rows[1].1, "it's \"fine\"");
        let closed = write(
            dir.path(),
            "c.csv",
            b"text,label\nok,pos\n\"a \"\"b\"\"\nc\",neg\n",
        );
        assert_eq!(rows_of(&closed, COLUMNS).unwrap()[1].1, "a \"b\"\nc");
        let open = write(dir.path(), "o.csv", b"text,label\nok,pos\nfine,\"neg\n");
        let error = rows_of(&open, COLUMNS).unwrap_err();
        assert!(
            error.contains("o.csv:3: a quoted field is never closed"),
            "{error}"
        );
    }

    #[test]
    fn a_rows_own_error_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "a.csv", b"text,label\na,pos\n ,neg\n");
        let error = read_rows(&path, COLUMNS, &mut |row| {
            if row.text.trim().is_empty() {
                Err("an empty text".into())
            } else {
                Ok(())
            }
        })
        .unwrap_err()
        .to_string();
        assert!(error.ends_with("a.csv:3: an empty text"), "{error}");
    }

    #[test]
    fn the_checksum_is_the_files_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = b"text,label\na,pos\nb,neg\n";
        let path = write(dir.path(), "a.csv", bytes);
        let read = read_rows(&path, COLUMNS, &mut |_| Ok(())).unwrap();
        assert_eq!(read.sha256, crate::fsutil::sha256_hex(bytes));
        assert_eq!((read.rows, read.bytes), (2, bytes.len() as u64));
    }
}
