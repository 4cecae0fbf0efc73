//! The legacy import adapter: `licenses import FILE --products MAPPING`, the migration from
//! the legacy system.
//!
//! Reads the legacy licenses (CSV or JSON Lines) row by row, a batch at a time, so memory does
//! not grow with the file; turns each row into a [`LicenseDraft`] (the legacy product code
//! through the mapping file); hands each batch to [`App::import_batch`], which applies the
//! rules of the API and stores the batch in one transaction (two batches at once, their
//! outcomes taken in the order of the file); writes every refused row to the report; shows
//! progress on standard error; and returns the summary. See docs/migration.md.
//!
//! It drives the use case of `licenses-app` and knows nothing of the store or the settings:
//! the binary opens the [`App`] and hands it to [`Import::run`].
//!
//! A row's path through the modules: `source` reads it from the file, with its line, as
//! values by column (`row`); `mapping` turns the values into a draft (the product through the
//! mapping file); this module hands the drafts to the use case a batch at a time, two in
//! flight; `report` writes each refused row's problems, and `progress` shows how far the file
//! has been read.
//!
//! [`LicenseDraft`]: licenses_domain::LicenseDraft

mod mapping;
mod progress;
mod report;
mod row;
mod source;

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use licenses_app::{App, AppError, ImportMode, ImportOutcome, RowOutcome};
use licenses_domain::LicenseDraft;

use crate::mapping::{load_mapping, to_draft};
use crate::progress::Progress;
use crate::report::Report;
use crate::row::{Problem, field_of};
use crate::source::{Source, open_source};

/// Rows per transaction unless `--batch` says otherwise.
pub const DEFAULT_BATCH: usize = 1_000;
/// Most rows per transaction (the API's batch limit).
pub const MAX_BATCH: usize = licenses_app::MAX_BATCH;

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

pub(crate) fn count(n: usize) -> u64 {
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

/// The licenses' planner statistics, refreshed each time the rows imported so far doubled
/// (from [`Statistics::FIRST`] on): a million rows cost seven `ANALYZE`s. The order check of
/// each batch is planned from them; without them (a new database, or autovacuum off or
/// behind) PostgreSQL reads the whole table for every batch (docs/migration.md, "Figures").
struct Statistics {
    next: u64,
}

impl Default for Statistics {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

impl Statistics {
    const FIRST: u64 = 10_000;

    async fn after(&mut self, app: &App, imported: u64) {
        if imported < self.next {
            return;
        }
        self.next = imported.saturating_mul(2);
        // Only the speed of the next batches depends on it: a failure is said, not fatal
        // (a database that went away fails the next batch anyway).
        match app.refresh_license_statistics().await {
            Ok(()) => tracing::debug!(imported, "licenses' statistics refreshed"),
            Err(e) => {
                tracing::warn!(imported, error = %e, "cannot refresh the licenses' statistics")
            }
        }
    }
}

/// Batches written at once. The database does most of an import's work, a core per
/// connection that writes: a second batch written while the first is keeps a second core
/// busy (docs/migration.md, "Figures"). More would only queue on a small server.
const WRITERS: usize = 2;

/// A batch as read from the file: its drafts, the line of each, the rows refused while
/// reading, and how far the file had been read after it.
#[derive(Default)]
struct Batch {
    lines: Vec<u64>,
    drafts: Vec<LicenseDraft>,
    refusals: Vec<(u64, Vec<Problem>)>,
    position: u64,
    /// The last row of the file was read.
    end: bool,
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
    let mut statistics = Statistics::default();
    // Up to WRITERS batches at once, their outcomes taken in the order of the file.
    let mut writing = FuturesOrdered::new();
    // Whether the last batch found orders stored already: a re-run, where reading first
    // which are costs less than a refused write per batch.
    let mut read_first = false;
    loop {
        let batch = read_batch(&mut source, mapping, args, batch_size, &mut summary)?;
        let end = batch.end;
        let mode = if args.dry_run {
            ImportMode::DryRun
        } else if read_first {
            ImportMode::ReadFirst
        } else {
            ImportMode::WriteFirst
        };
        writing.push_back(async move {
            let Batch {
                lines,
                drafts,
                refusals,
                position,
                ..
            } = batch;
            let outcome = if drafts.is_empty() {
                Ok(ImportOutcome::default())
            } else {
                app.import_batch(drafts, mode).await
            };
            (lines, refusals, position, outcome)
        });
        while writing.len() >= WRITERS || (end && !writing.is_empty()) {
            let Some((lines, mut refusals, position, outcome)) = writing.next().await else {
                break;
            };
            let outcome = outcome.map_err(|e| ImportError::Store {
                line: lines.first().copied().unwrap_or_default(),
                reason: store_failure(&e),
            })?;
            read_first = outcome.already_present() > 0;
            summary.add(&outcome);
            statistics.after(app, summary.imported).await;
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
            // In line order, the rows refused while reading with those refused by the rules.
            refusals.sort_by_key(|(line, _)| *line);
            for (line, problems) in refusals {
                report.write(line, &problems)?;
            }
            progress.update(position, &summary);
        }
        if end {
            break;
        }
    }
    progress.finish(&summary);
    Ok(summary)
}

/// The next `size` good rows of the file, with those refused on the way.
fn read_batch(
    source: &mut Source,
    mapping: &HashMap<String, String>,
    args: &ImportArgs,
    size: usize,
    summary: &mut Summary,
) -> Result<Batch, ImportError> {
    let mut batch = Batch {
        lines: Vec::with_capacity(size),
        drafts: Vec::with_capacity(size),
        ..Batch::default()
    };
    while batch.drafts.len() < size {
        let Some(row) = source.next_row().map_err(|e| ImportError::File {
            path: args.file.clone(),
            reason: format!("cannot read after line {}: {e}", source.line()),
        })?
        else {
            batch.end = true;
            break;
        };
        summary.read += 1;
        match row.fields.and_then(|f| to_draft(f, mapping)) {
            Ok(draft) => {
                batch.lines.push(row.line);
                batch.drafts.push(draft);
            }
            Err(problems) => {
                summary.refused += 1;
                batch.refusals.push((row.line, problems));
            }
        }
    }
    batch.position = source.position();
    Ok(batch)
}

/// A failed batch, for the operator, without internals beyond the store's own message.
fn store_failure(e: &AppError) -> String {
    match e {
        AppError::Unavailable => "the database is unavailable".to_owned(),
        AppError::RelatedNotFound { missing, invalid } => missing
            .iter()
            .chain(invalid)
            .map(|p| p.detail.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        AppError::Conflict(problems) | AppError::Invalid(problems) => problems
            .iter()
            .map(|p| p.detail.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}
