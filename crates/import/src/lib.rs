//! The legacy import adapter: `licenses import FILE --products MAPPING`, the migration from
//! the legacy system.
//!
//! Reads the legacy licenses (CSV or JSON Lines) row by row, a batch at a time, so memory does
//! not grow with the file; turns each row into a [`LicenseDraft`] (the legacy product code
//! through the mapping file); hands each batch to [`App::import_batch`], which applies the
//! rules of the API and stores the batch in one transaction; writes every refused row to the
//! report; shows progress on standard error; and returns the summary. See docs/migration.md.
//!
//! It drives the use case of `licenses-app` and knows nothing of the store or the settings:
//! the binary opens the [`App`] and hands it to [`Import::run`].

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use licenses_app::{App, AppError, ImportOutcome, RowOutcome};
use licenses_domain::{LicenseDraft, PurchaseDraft, RenewDraft};

/// Rows per transaction unless `--batch` says otherwise.
pub const DEFAULT_BATCH: usize = 1_000;
/// Most rows per transaction (the API's batch limit).
pub const MAX_BATCH: usize = licenses_app::MAX_BATCH;
/// How often plain progress lines are printed when standard error is not a terminal.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// What `licenses import` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportArgs {
    pub file: PathBuf,
    pub products: PathBuf,
    pub dry_run: bool,
    pub batch: usize,
    pub report: Option<PathBuf>,
}

/// Why an import stopped before the end of its file. Batches committed before stay committed:
/// running the same command again continues after them.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{}: {reason}", .path.display())]
    File { path: PathBuf, reason: String },
    #[error("--products {}: {reason}", .path.display())]
    Mapping { path: PathBuf, reason: String },
    #[error("--report {}: {source}", .path.display())]
    Report {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "import stopped in the batch from line {line}: {reason}; the batches before it are \
         stored: run the same command again to continue"
    )]
    Store { line: u64, reason: String },
}

/// The counts printed at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub read: u64,
    pub imported: u64,
    pub already_present: u64,
    pub refused: u64,
}

impl Summary {
    fn add(&mut self, outcome: &ImportOutcome) {
        self.imported += count(outcome.imported());
        self.already_present += count(outcome.already_present());
    }

    /// The line printed on standard output at the end.
    pub fn line(&self, dry_run: bool) -> String {
        let Summary {
            read,
            imported,
            already_present,
            refused,
        } = *self;
        if dry_run {
            format!(
                "dry run, nothing written: read {read}, would import {imported}, already present \
                 {already_present}, refused {refused}"
            )
        } else {
            format!(
                "read {read}, imported {imported}, already present {already_present}, refused \
                 {refused}"
            )
        }
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// An import ready to run: its mapping read, its file open (the header checked), its report
/// created, so that a mistake in any of them is reported before the database is opened.
#[derive(Debug)]
pub struct Import {
    args: ImportArgs,
    mapping: HashMap<String, String>,
    source: Source,
    report: Report,
}

impl Import {
    /// Reads the mapping of `args.products`, opens `args.file` and creates `args.report`.
    pub fn open(args: ImportArgs) -> Result<Import, ImportError> {
        let mapping = load_mapping(&args.products)?;
        let source = open_source(&args.file)?;
        let report = Report::create(args.report.as_deref())?;
        Ok(Import {
            args,
            mapping,
            source,
            report,
        })
    }

    /// Imports the file through `app`'s import use case, prints the summary on standard output
    /// and returns it.
    pub async fn run(self, app: &App) -> Result<Summary, ImportError> {
        let Import {
            args,
            mapping,
            source,
            mut report,
        } = self;
        tracing::info!(
            file = %args.file.display(),
            dry_run = args.dry_run,
            batch = args.batch,
            "importing legacy licenses"
        );
        let summary = import(app, source, &mapping, &args, &mut report).await?;
        report.finish()?;
        println!("{}", summary.line(args.dry_run));
        Ok(summary)
    }
}

async fn import(
    app: &App,
    mut source: Source,
    mapping: &HashMap<String, String>,
    args: &ImportArgs,
    report: &mut Report,
) -> Result<Summary, ImportError> {
    let mut summary = Summary::default();
    let mut progress = Progress::new(source.len());
    if let Report::Stderr(bar) = report {
        bar.clone_from(&progress.bar);
    }
    let batch_size = args.batch.clamp(1, MAX_BATCH);
    let mut lines = Vec::with_capacity(batch_size);
    let mut drafts = Vec::with_capacity(batch_size);
    let mut refusals: Vec<(u64, Vec<Problem>)> = Vec::new();
    loop {
        lines.clear();
        let mut end = false;
        while drafts.len() < batch_size {
            let Some(row) = source.next_row().map_err(|e| ImportError::File {
                path: args.file.clone(),
                reason: format!("cannot read after line {}: {e}", source.line()),
            })?
            else {
                end = true;
                break;
            };
            summary.read += 1;
            match row.fields.and_then(|f| to_draft(f, mapping)) {
                Ok(draft) => {
                    lines.push(row.line);
                    drafts.push(draft);
                }
                Err(problems) => {
                    summary.refused += 1;
                    refusals.push((row.line, problems));
                }
            }
        }
        if !drafts.is_empty() {
            let last = lines.last().copied().unwrap_or_default();
            let outcome = app
                .import_batch(std::mem::take(&mut drafts), args.dry_run)
                .await
                .map_err(|e| ImportError::Store {
                    line: lines.first().copied().unwrap_or(last),
                    reason: store_failure(&e),
                })?;
            summary.add(&outcome);
            for (line, row) in lines.iter().zip(&outcome.rows) {
                if let RowOutcome::Refused(violations) = row {
                    summary.refused += 1;
                    let problems: Vec<Problem> = violations
                        .iter()
                        .map(|v| Problem {
                            field: field_of(&v.pointer).to_owned(),
                            code: v.code,
                            reason: v.detail.clone(),
                        })
                        .collect();
                    refusals.push((*line, problems));
                }
            }
        }
        // In line order, the rows refused while reading with those refused by the rules.
        refusals.sort_by_key(|(line, _)| *line);
        for (line, problems) in refusals.drain(..) {
            report.write(line, &problems)?;
        }
        progress.update(source.position(), &summary);
        if end {
            break;
        }
    }
    progress.finish(&summary);
    Ok(summary)
}

/// A failed batch, for the operator, without internals beyond the store's own message.
fn store_failure(e: &AppError) -> String {
    match e {
        AppError::Unavailable => "the database is unavailable".to_owned(),
        AppError::Conflict(problems) | AppError::Invalid(problems) => problems
            .iter()
            .map(|p| p.detail.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

// -----------------------------------------------------------------------------------------
// The format

/// The columns of a legacy license (CSV header names, JSON Lines keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    UserId,
    ProductCode,
    StartDate,
    StopDate,
    OrderId,
    PriceAmount,
    Currency,
    PaymentMethod,
    Recurring,
    Status,
    PurchaseDate,
}

impl Column {
    const ALL: [Column; 11] = [
        Self::UserId,
        Self::ProductCode,
        Self::StartDate,
        Self::StopDate,
        Self::OrderId,
        Self::PriceAmount,
        Self::Currency,
        Self::PaymentMethod,
        Self::Recurring,
        Self::Status,
        Self::PurchaseDate,
    ];
    const REQUIRED: [Column; 3] = [Self::UserId, Self::ProductCode, Self::OrderId];

    fn name(self) -> &'static str {
        match self {
            Self::UserId => "user_id",
            Self::ProductCode => "product_code",
            Self::StartDate => "start_date",
            Self::StopDate => "stop_date",
            Self::OrderId => "order_id",
            Self::PriceAmount => "price_amount",
            Self::Currency => "currency",
            Self::PaymentMethod => "payment_method",
            Self::Recurring => "recurring",
            Self::Status => "status",
            Self::PurchaseDate => "purchase_date",
        }
    }

    fn named(name: &str) -> Option<Column> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The report column of a domain violation's pointer.
fn field_of(pointer: &str) -> &str {
    match pointer {
        "/relationships/user" => Column::UserId.name(),
        "/relationships/product" => Column::ProductCode.name(),
        "/attributes/start_date" => Column::StartDate.name(),
        "/attributes/stop_date" => Column::StopDate.name(),
        "/attributes/order_id" => Column::OrderId.name(),
        "/attributes/status" => Column::Status.name(),
        "/attributes/purchase_record/price_currency_amount" => Column::PriceAmount.name(),
        "/attributes/purchase_record/price_currency_iso4217" => Column::Currency.name(),
        "/attributes/purchase_record/payment_method" => Column::PaymentMethod.name(),
        "/attributes/purchase_record/purchase_timestamp" => Column::PurchaseDate.name(),
        "/attributes/renew_record/recurring" => Column::Recurring.name(),
        other => other,
    }
}

/// One problem of a refused row: a report line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Problem {
    /// The column at fault; empty for the row as a whole.
    field: String,
    code: &'static str,
    reason: String,
}

impl Problem {
    fn new(field: impl Into<String>, code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            reason: reason.into(),
        }
    }
}

/// The values of one row, by [`Column::index`]; blank values are `None`.
type Fields = [Option<String>; Column::ALL.len()];

/// One row of the file: its line and its values, or why they could not be read.
struct Row {
    line: u64,
    fields: Result<Fields, Vec<Problem>>,
}

/// Turns a row's values into a draft, or every problem with them.
fn to_draft(f: Fields, mapping: &HashMap<String, String>) -> Result<LicenseDraft, Vec<Problem>> {
    let mut problems = Vec::new();
    let [
        user,
        code,
        start,
        stop,
        order,
        amount,
        currency,
        method,
        recurring,
        status,
        purchased,
    ] = f;
    let product = match code {
        None => None, // the domain reports the missing product
        Some(code) => match mapping.get(&code) {
            Some(id) => Some(id.clone()),
            None => {
                problems.push(Problem::new(
                    Column::ProductCode.name(),
                    "unknown_product_code",
                    format!("the product mapping has no legacy code {code:?}"),
                ));
                None
            }
        },
    };
    let mut date = |value: Option<String>, column: Column| {
        value.and_then(|v| match parse_date(&v) {
            Some(t) => Some(t),
            None => {
                problems.push(Problem::new(
                    column.name(),
                    "invalid_date",
                    format!(
                        "{v:?} is neither unix seconds nor a date like 2024-01-31 or \
                         2024-01-31T12:00:00Z"
                    ),
                ));
                None
            }
        })
    };
    let start_date = date(start, Column::StartDate);
    let stop_date = date(stop, Column::StopDate);
    let purchase_timestamp = date(purchased, Column::PurchaseDate);
    let price_currency_amount = amount.and_then(|v| match v.parse::<i64>() {
        Ok(n) => Some(n),
        Err(_) => {
            problems.push(Problem::new(
                Column::PriceAmount.name(),
                "invalid_amount",
                format!("{v:?} is not a whole number of minor units (cents)"),
            ));
            None
        }
    });
    let recurring = recurring.and_then(|v| match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" => Some(true),
        "false" | "0" | "no" | "n" => Some(false),
        _ => {
            problems.push(Problem::new(
                Column::Recurring.name(),
                "invalid_boolean",
                format!("{v:?} is none of true, false, 1, 0, yes, no"),
            ));
            None
        }
    });
    if user.is_none() {
        problems.push(Problem::new(
            Column::UserId.name(),
            "required",
            "the user id is required",
        ));
    }
    if product.is_none() && !problems.iter().any(|p| p.code == "unknown_product_code") {
        problems.push(Problem::new(
            Column::ProductCode.name(),
            "required",
            "the legacy product code is required",
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let purchase = PurchaseDraft {
        price_currency_amount,
        price_currency_iso4217: currency,
        purchase_timestamp,
        payment_method: method,
    };
    Ok(LicenseDraft {
        user,
        product,
        status,
        start_date,
        stop_date,
        order_id: order,
        purchase_record: Some(purchase),
        renew_record: Some(RenewDraft {
            recurring,
            expiry_date: None,
        }),
    })
}

/// Unix seconds (`1706659200`), a date (`2024-01-31`, midnight UTC) or a UTC date and time
/// (`2024-01-31T12:00:00Z`, also with a space instead of `T`).
fn parse_date(v: &str) -> Option<i64> {
    if let Ok(n) = v.parse::<i64>() {
        return Some(n);
    }
    let b = v.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = v.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, m, d) = match b.len() {
        10 | 20 if b[4] == b'-' && b[7] == b'-' => (digits(0..4)?, digits(5..7)?, digits(8..10)?),
        _ => return None,
    };
    let secs = if b.len() == 20 {
        let ok = matches!(b[10], b'T' | b' ') && b[13] == b':' && b[16] == b':' && b[19] == b'Z';
        let (hh, mm, ss) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
        if !ok || hh > 23 || mm > 59 || ss > 59 {
            return None;
        }
        hh * 3600 + mm * 60 + ss
    } else {
        0
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let month_days = *days_in_month.get(usize::try_from(m.checked_sub(1)?).ok()?)?;
    if d < 1 || d > month_days {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 + secs)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The mapping file: CSV `legacy_code,product_id` with that header.
fn load_mapping(path: &Path) -> Result<HashMap<String, String>, ImportError> {
    let fail = |reason: String| ImportError::Mapping {
        path: path.to_owned(),
        reason,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| fail(e.to_string()))?;
    let headers = reader.headers().map_err(|e| fail(e.to_string()))?.clone();
    if headers.iter().collect::<Vec<_>>() != ["legacy_code", "product_id"] {
        return Err(fail(
            "the header must be exactly legacy_code,product_id".to_owned(),
        ));
    }
    let mut mapping = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| fail(e.to_string()))?;
        let line = record.position().map_or(0, csv::Position::line);
        let (Some(code), Some(id)) = (record.get(0), record.get(1)) else {
            return Err(fail(format!("line {line}: two values expected")));
        };
        if code.is_empty() || id.is_empty() {
            return Err(fail(format!("line {line}: a value is blank")));
        }
        if let Some(earlier) = mapping.insert(code.to_owned(), id.to_owned())
            && earlier != id
        {
            return Err(fail(format!(
                "line {line}: legacy code {code:?} is mapped twice"
            )));
        }
    }
    Ok(mapping)
}

// -----------------------------------------------------------------------------------------
// Reading, row by row

/// Where the rows come from: a CSV file or a JSON Lines file (`.jsonl`, `.ndjson`).
#[derive(Debug)]
enum Source {
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

fn open_source(path: &Path) -> Result<Source, ImportError> {
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
    fn len(&self) -> u64 {
        match self {
            Self::Csv { len, .. } | Self::JsonLines { len, .. } => *len,
        }
    }

    /// Bytes read so far.
    fn position(&self) -> u64 {
        match self {
            Self::Csv { reader, .. } => reader.position().byte(),
            Self::JsonLines { position, .. } => *position,
        }
    }

    /// The line last read.
    fn line(&self) -> u64 {
        match self {
            Self::Csv { reader, .. } => reader.position().line(),
            Self::JsonLines { line, .. } => *line,
        }
    }

    /// The next row, `None` at the end; an error only when the file cannot be read.
    fn next_row(&mut self) -> io::Result<Option<Row>> {
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
                *position += count(n);
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

// -----------------------------------------------------------------------------------------
// Report and progress

/// The refused rows: CSV `line,field,code,reason` in the `--report` file, or lines on
/// standard error without one.
#[derive(Debug)]
enum Report {
    File {
        path: PathBuf,
        writer: Box<csv::Writer<File>>,
    },
    /// With the progress bar, when there is one, so that the lines do not tear it.
    Stderr(Option<ProgressBar>),
}

impl Report {
    fn create(path: Option<&Path>) -> Result<Report, ImportError> {
        let Some(path) = path else {
            return Ok(Report::Stderr(None));
        };
        let fail = |source: io::Error| ImportError::Report {
            path: path.to_owned(),
            source,
        };
        let mut writer = Box::new(csv::Writer::from_writer(File::create(path).map_err(fail)?));
        writer
            .write_record(["line", "field", "code", "reason"])
            .map_err(|e| fail(e.into()))?;
        Ok(Report::File {
            path: path.to_owned(),
            writer,
        })
    }

    fn write(&mut self, line: u64, problems: &[Problem]) -> Result<(), ImportError> {
        match self {
            Report::File { path, writer } => {
                for p in problems {
                    writer
                        .write_record([&line.to_string(), &p.field, p.code, &p.reason])
                        .map_err(|e| ImportError::Report {
                            path: path.clone(),
                            source: e.into(),
                        })?;
                }
            }
            Report::Stderr(bar) => {
                let print = || {
                    let mut err = io::stderr().lock();
                    for p in problems {
                        // Nothing better to do when standard error is gone.
                        let _ = writeln!(
                            err,
                            "refused line {line}: {}: {}: {}",
                            if p.field.is_empty() { "-" } else { &p.field },
                            p.code,
                            p.reason
                        );
                    }
                };
                match bar {
                    Some(bar) => bar.suspend(print),
                    None => print(),
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<(), ImportError> {
        if let Report::File { path, mut writer } = self {
            writer
                .flush()
                .map_err(|source| ImportError::Report { path, source })?;
        }
        Ok(())
    }
}

/// A progress bar with rate and ETA on a terminal; a plain line every few seconds otherwise.
/// Both on standard error.
struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    fn new(total: u64) -> Progress {
        let bar = io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            total,
            started: now,
            last_line: now,
        }
    }

    fn rate(&self, rows: u64) -> u64 {
        let secs = self.started.elapsed().as_secs_f64();
        if secs > 0.0 {
            // Rounded rows per second, for display.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let rate = (rows as f64 / secs) as u64;
            rate
        } else {
            0
        }
    }

    fn update(&mut self, position: u64, s: &Summary) {
        let rate = self.rate(s.read);
        match &self.bar {
            Some(bar) => {
                bar.set_position(position);
                bar.set_message(format!(
                    "{} rows ({} imported, {} present, {} refused) {rate} rows/s",
                    s.read, s.imported, s.already_present, s.refused
                ));
            }
            None if self.last_line.elapsed() >= PLAIN_PROGRESS_EVERY => {
                self.last_line = Instant::now();
                let elapsed = self.started.elapsed().as_secs_f64();
                let eta = if position > 0 && self.total > position {
                    #[allow(clippy::cast_precision_loss)]
                    let left = elapsed * (self.total - position) as f64 / position as f64;
                    format!("{left:.0}s")
                } else {
                    "-".to_owned()
                };
                eprintln!(
                    "import: {} rows read ({}%), {} imported, {} already present, {} refused, \
                     {rate} rows/s, ETA {eta}",
                    s.read,
                    position.saturating_mul(100) / self.total.max(1),
                    s.imported,
                    s.already_present,
                    s.refused,
                );
            }
            None => {}
        }
    }

    fn finish(self, s: &Summary) {
        let rate = self.rate(s.read);
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
        eprintln!(
            "import: done in {:.1}s, {rate} rows/s",
            self.started.elapsed().as_secs_f64()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_unix_seconds_or_utc_dates() {
        assert_eq!(parse_date("1706659200"), Some(1_706_659_200));
        assert_eq!(parse_date("2024-01-31"), Some(1_706_659_200));
        assert_eq!(
            parse_date("2024-01-31T12:00:01Z"),
            Some(1_706_659_200 + 43_201)
        );
        assert_eq!(
            parse_date("2024-01-31 12:00:01Z"),
            Some(1_706_659_200 + 43_201)
        );
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2000-02-29"), Some(951_782_400));
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-01-32",
            "2024-01-31T24:00:00Z",
            "2024-01-31T12:00:00+01:00",
            "31/01/2024",
            "soon",
            "",
            "2024-1-31",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_domain_pointer_is_reported_as_its_column() {
        for column in Column::ALL {
            assert_eq!(Column::named(column.name()), Some(column));
        }
        assert_eq!(field_of("/attributes/stop_date"), "stop_date");
        assert_eq!(field_of("/relationships/product"), "product_code");
        assert_eq!(
            field_of("/attributes/purchase_record/price_currency_iso4217"),
            "currency"
        );
        assert_eq!(field_of("/elsewhere"), "/elsewhere");
    }

    #[test]
    fn a_row_becomes_a_draft_through_the_mapping() {
        let mapping = HashMap::from([("SVOD-1".to_owned(), "p-41".to_owned())]);
        let mut f: Fields = Default::default();
        f[Column::UserId.index()] = Some("u1".into());
        f[Column::ProductCode.index()] = Some("SVOD-1".into());
        f[Column::OrderId.index()] = Some("o1".into());
        f[Column::StartDate.index()] = Some("2024-01-31".into());
        f[Column::PriceAmount.index()] = Some("999".into());
        f[Column::Recurring.index()] = Some("yes".into());
        let d = to_draft(f.clone(), &mapping).expect("valid");
        assert_eq!(d.product.as_deref(), Some("p-41"));
        assert_eq!(d.start_date, Some(1_706_659_200));
        assert_eq!(
            d.purchase_record.and_then(|p| p.price_currency_amount),
            Some(999)
        );
        assert_eq!(d.renew_record.and_then(|r| r.recurring), Some(true));

        f[Column::ProductCode.index()] = Some("TVOD-9".into());
        f[Column::PriceAmount.index()] = Some("9.99".into());
        f[Column::Recurring.index()] = Some("maybe".into());
        let codes: Vec<_> = to_draft(f, &mapping)
            .expect_err("bad")
            .into_iter()
            .map(|p| (p.field, p.code))
            .collect();
        assert_eq!(
            codes,
            [
                ("product_code".to_owned(), "unknown_product_code"),
                ("price_amount".to_owned(), "invalid_amount"),
                ("recurring".to_owned(), "invalid_boolean"),
            ]
        );
    }
}
