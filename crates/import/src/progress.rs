//! The import's progress on standard error: a bar with rate and ETA on a terminal, a plain
//! line every few seconds otherwise, and the time taken at the end.

use std::io::{self, IsTerminal};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Summary;

/// How often plain progress lines are printed when standard error is not a terminal.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// A progress bar with rate and ETA on a terminal; a plain line every few seconds otherwise.
/// Both on standard error.
pub(crate) struct Progress {
    /// Shared with the report on standard error, so that its lines do not tear the bar.
    pub(crate) bar: Option<ProgressBar>,
    total: u64,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    pub(crate) fn new(total: u64) -> Progress {
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

    pub(crate) fn update(&mut self, position: u64, s: &Summary) {
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

    pub(crate) fn finish(self, s: &Summary) {
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
