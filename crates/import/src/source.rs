//! Where the rows come from: the legacy file opened as CSV (its header checked) or JSON Lines
//! (`.jsonl`, `.ndjson`), read a row at a time, each row with its line number and its values
//! by column, or the problems that kept them from being read.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use crate::ImportError;
use crate::row::{Column, Fields, Problem, Row};

/// Where the rows come from: a CSV file or a JSON Lines file (`.jsonl`, `.ndjson`).
#[derive(Debug)]
pub(crate) enum Source {
    Csv {
        reader: csv::Reader<BufReader<File>>,
        /// The column of each field of a record, from the header.
        columns: Vec<Column>,
        record: csv::ByteRecord,
        len: u64,
    },
    JsonLines {
        reader: BufReader<File>,
        buf: Vec<u8>,
        line: u64,
        position: u64,
        len: u64,
    },
}

/// Opens `path`: JSON Lines by its extension, CSV otherwise, its header read and checked (known
/// columns, none twice, the required ones present).
pub(crate) fn open_source(path: &Path) -> Result<Source, ImportError> {
    let fail = |reason: String| ImportError::File {
        path: path.to_owned(),
        reason,
    };
    let file = File::open(path).map_err(|e| fail(e.to_string()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let reader = BufReader::with_capacity(1 << 16, file);
    let json = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jsonl" | "ndjson"));
    if json {
        return Ok(Source::JsonLines {
            reader,
            buf: Vec::new(),
            line: 0,
            position: 0,
            len,
        });
    }
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let header = reader
        .byte_headers()
        .map_err(|e| fail(format!("cannot read the header: {e}")))?;
    let mut columns = Vec::with_capacity(header.len());
    for name in header {
        let name = String::from_utf8_lossy(name);
        let name = name.trim().trim_start_matches('\u{feff}');
        let column = Column::named(name).ok_or_else(|| {
            fail(format!(
                "unknown column {name:?} in the header; the columns are {}",
                Column::ALL.map(Column::name).join(",")
            ))
        })?;
        if columns.contains(&column) {
            return Err(fail(format!("column {name:?} twice in the header")));
        }
        columns.push(column);
    }
    if let Some(missing) = Column::REQUIRED.iter().find(|c| !columns.contains(c)) {
        return Err(fail(format!(
            "the header has no {} column (required: user_id, product_code, order_id)",
            missing.name()
        )));
    }
    Ok(Source::Csv {
        reader,
        columns,
        record: csv::ByteRecord::new(),
        len,
    })
}

impl Source {
    /// The file's size in bytes.
    pub(crate) fn len(&self) -> u64 {
        match self {
            Self::Csv { len, .. } | Self::JsonLines { len, .. } => *len,
        }
    }

    /// Bytes read so far.
    pub(crate) fn position(&self) -> u64 {
        match self {
            Self::Csv { reader, .. } => reader.position().byte(),
            Self::JsonLines { position, .. } => *position,
        }
    }

    /// The line last read.
    pub(crate) fn line(&self) -> u64 {
        match self {
            Self::Csv { reader, .. } => reader.position().line(),
            Self::JsonLines { line, .. } => *line,
        }
    }

    /// The next row, `None` at the end; an error only when the file cannot be read.
    pub(crate) fn next_row(&mut self) -> io::Result<Option<Row>> {
        match self {
            Self::Csv {
                reader,
                columns,
                record,
                ..
            } => match reader.read_byte_record(record) {
                Ok(false) => Ok(None),
                Ok(true) => Ok(Some(Row {
                    line: record.position().map_or(0, csv::Position::line),
                    fields: csv_fields(record, columns),
                })),
                Err(e) => {
                    let line = e.position().map_or(0, csv::Position::line);
                    match e.into_kind() {
                        csv::ErrorKind::Io(e) => Err(e),
                        other => Ok(Some(Row {
                            line,
                            fields: Err(vec![Problem::new(
                                "",
                                "malformed",
                                format!("not a CSV record: {other:?}"),
                            )]),
                        })),
                    }
                }
            },
            Self::JsonLines {
                reader,
                buf,
                line,
                position,
                ..
            } => loop {
                buf.clear();
                let n = reader.read_until(b'\n', buf)?;
                if n == 0 {
                    return Ok(None);
                }
                *line += 1;
                *position += crate::count(n);
                if buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(Row {
                    line: *line,
                    fields: json_fields(buf),
                }));
            },
        }
    }
}

fn csv_fields(record: &csv::ByteRecord, columns: &[Column]) -> Result<Fields, Vec<Problem>> {
    if record.len() != columns.len() {
        return Err(vec![Problem::new(
            "",
            "malformed",
            format!(
                "{} values where the header has {} columns",
                record.len(),
                columns.len()
            ),
        )]);
    }
    let mut fields: Fields = Default::default();
    let mut problems = Vec::new();
    for (raw, column) in record.iter().zip(columns) {
        match std::str::from_utf8(raw) {
            Ok(value) => {
                let value = value.trim();
                if !value.is_empty() {
                    fields[column.index()] = Some(value.to_owned());
                }
            }
            Err(_) => problems.push(Problem::new(
                column.name(),
                "invalid_encoding",
                "not valid UTF-8",
            )),
        }
    }
    if problems.is_empty() {
        Ok(fields)
    } else {
        Err(problems)
    }
}

fn json_fields(raw: &[u8]) -> Result<Fields, Vec<Problem>> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| vec![Problem::new("", "invalid_encoding", "not valid UTF-8")])?;
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| {
            vec![Problem::new(
                "",
                "malformed",
                format!("not a JSON object: {e}"),
            )]
        })?;
    let mut fields: Fields = Default::default();
    let mut problems = Vec::new();
    for (key, value) in object {
        let Some(column) = Column::named(&key) else {
            problems.push(Problem::new(
                key,
                "unknown_field",
                format!(
                    "not a column; the columns are {}",
                    Column::ALL.map(Column::name).join(",")
                ),
            ));
            continue;
        };
        let text = match value {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::Bool(b) => Some(b.to_string()),
            _ => {
                problems.push(Problem::new(
                    key,
                    "invalid_value",
                    "a string, number, boolean or null is expected",
                ));
                None
            }
        };
        fields[column.index()] = text;
    }
    if problems.is_empty() {
        Ok(fields)
    } else {
        Err(problems)
    }
}
