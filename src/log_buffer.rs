//! Standard output for the log lines of `licenses serve`, written in chunks instead of one
//! `write(2)` a line.
//!
//! A busy instance logs one line a request. Written one by one, those lines cost a system call
//! each on the request's worker thread: about 4 % of the service's CPU for a user's licenses
//! read (perf, docs/architecture.md). Here lines gather in memory and are written together by a
//! flusher thread every [`PERIOD`], or at once by the line that fills [`CAPACITY`] (lines
//! logged meanwhile wait for that write, as they would for their own): a line reaches
//! standard output at most [`PERIOD`] after it is logged, the memory held is bounded, and no
//! line is ever dropped. [`LogBuffer::flush`] writes what is pending; the binary calls
//! it before it exits and when a thread panics, so only a process killed outright (SIGKILL)
//! can lose the last [`PERIOD`] of lines.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Pending bytes that make the line adding them write everything at once.
pub const CAPACITY: usize = 64 * 1024;

/// How long a line waits at most before the flusher thread writes it.
pub const PERIOD: Duration = Duration::from_millis(100);

/// Log lines waiting to be written to an output (standard output, but in tests).
#[derive(Clone)]
pub struct LogBuffer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LogBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogBuffer")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

struct Shared {
    /// Lines logged and not yet written.
    pending: Mutex<Vec<u8>>,
    /// The output, with a spare buffer: held while writing, so that chunks are written in the
    /// order they were taken; the spare is swapped with `pending`, so nothing is allocated.
    out: Mutex<(Box<dyn Write + Send>, Vec<u8>)>,
    capacity: usize,
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding either lock leaves bytes, at worst a partial chunk: still bytes to
    // write, so the state is usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LogBuffer {
    /// Lines for standard output, with a flusher thread writing them every [`PERIOD`].
    pub fn stdout() -> Self {
        let buffer = Self::new(Box::new(io::stdout()), CAPACITY);
        let flusher = buffer.clone();
        // The thread ends with the process; [`LogBuffer::flush`] writes what it left.
        let spawned = std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(PERIOD);
                    flusher.flush();
                }
            });
        match spawned {
            Ok(_) => buffer,
            // No thread to write them later: each line is written as it comes.
            Err(_) => Self::new(Box::new(io::stdout()), 0),
        }
    }

    /// Lines for `out`, written by [`LogBuffer::flush`] or by the line that makes `capacity`
    /// bytes pending (0: every line at once).
    pub fn new(out: Box<dyn Write + Send>, capacity: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                pending: Mutex::new(Vec::with_capacity(capacity)),
                out: Mutex::new((out, Vec::with_capacity(capacity))),
                capacity,
            }),
        }
    }

    /// Writes every line pending. A failed write (standard output closed) loses those lines,
    /// as an unbuffered write would: logging never stops the service.
    pub fn flush(&self) {
        let mut out = lock(&self.shared.out);
        let (output, spare) = &mut *out;
        std::mem::swap(&mut *lock(&self.shared.pending), spare);
        if spare.is_empty() {
            return;
        }
        let _ = output.write_all(spare).and_then(|()| output.flush());
        spare.clear();
    }

    /// Adds one line (or any bytes) and writes everything when the capacity is reached.
    fn push(&self, bytes: &[u8]) {
        let full = {
            let mut pending = lock(&self.shared.pending);
            pending.extend_from_slice(bytes);
            pending.len() >= self.shared.capacity
        };
        if full {
            self.flush();
        }
    }
}

/// What the log formatter writes an event to: the buffer.
#[derive(Debug)]
pub struct Line<'a>(&'a LogBuffer);

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogBuffer {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output whose bytes the test reads.
    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<u8>>>);

    impl Write for Seen {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            lock(&self.0).extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Seen {
        fn text(&self) -> String {
            String::from_utf8(lock(&self.0).clone()).unwrap_or_default()
        }
    }

    fn log(buffer: &LogBuffer, line: &str) {
        buffer
            .make_writer()
            .write_all(line.as_bytes())
            .unwrap_or_default();
    }

    #[test]
    fn lines_wait_for_a_flush_and_come_out_in_order() {
        let seen = Seen::default();
        let buffer = LogBuffer::new(Box::new(seen.clone()), CAPACITY);
        log(&buffer, "one\n");
        log(&buffer, "two\n");
        assert_eq!(seen.text(), "");
        buffer.flush();
        assert_eq!(seen.text(), "one\ntwo\n");
        log(&buffer, "three\n");
        buffer.flush();
        buffer.flush();
        assert_eq!(seen.text(), "one\ntwo\nthree\n");
    }

    #[test]
    fn the_line_that_fills_the_buffer_writes_it_all() {
        let seen = Seen::default();
        let buffer = LogBuffer::new(Box::new(seen.clone()), 10);
        log(&buffer, "12345\n");
        assert_eq!(seen.text(), "");
        log(&buffer, "6789\n");
        assert_eq!(seen.text(), "12345\n6789\n");
    }

    #[test]
    fn without_capacity_each_line_is_written_as_it_comes() {
        let seen = Seen::default();
        let buffer = LogBuffer::new(Box::new(seen.clone()), 0);
        log(&buffer, "now\n");
        assert_eq!(seen.text(), "now\n");
    }

    #[test]
    fn lines_of_many_threads_are_never_lost_nor_cut() {
        let seen = Seen::default();
        let buffer = LogBuffer::new(Box::new(seen.clone()), 256);
        std::thread::scope(|s| {
            for t in 0..4 {
                let buffer = &buffer;
                s.spawn(move || {
                    for i in 0..500 {
                        log(buffer, &format!("thread {t} line {i}\n"));
                    }
                });
            }
            s.spawn(|| {
                for _ in 0..50 {
                    buffer.flush();
                }
            });
        });
        buffer.flush();
        let text = seen.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2000);
        for t in 0..4 {
            let own: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| l.starts_with(&format!("thread {t} ")))
                .collect();
            let expected: Vec<String> = (0..500).map(|i| format!("thread {t} line {i}")).collect();
            assert_eq!(own, expected, "each thread's lines whole and in order");
        }
    }
}
