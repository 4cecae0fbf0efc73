//! The report of refused rows: each problem of a refused row as CSV `line,field,code,reason`
//! in the `--report` file, or as a line on standard error without one.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;

use crate::ImportError;
use crate::row::Problem;

/// The refused rows: CSV `line,field,code,reason` in the `--report` file, or lines on
/// standard error without one.
#[derive(Debug)]
pub(crate) enum Report {
    File {
        path: PathBuf,
        writer: Box<csv::Writer<File>>,
    },
    /// With the progress bar, when there is one, so that the lines do not tear it.
    Stderr(Option<ProgressBar>),
}

impl Report {
    pub(crate) fn create(path: Option<&Path>) -> Result<Report, ImportError> {
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

    pub(crate) fn write(&mut self, line: u64, problems: &[Problem]) -> Result<(), ImportError> {
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

    pub(crate) fn finish(self) -> Result<(), ImportError> {
        if let Report::File { path, mut writer } = self {
            writer
                .flush()
                .map_err(|source| ImportError::Report { path, source })?;
        }
        Ok(())
    }
}
