//! The JSON lines of `log.format = "json"`, written straight into the line.
//!
//! The members are those of tracing-subscriber's own JSON format, in its order: `timestamp`,
//! `level`, `fields`, `target`, and for a line inside a span `span` (the span's fields, then
//! its `name`). That format writes the span's fields, which it keeps as JSON text, by parsing
//! them back into a tree for every line (its issue #391), and writes every value through an
//! `io::Write` adaptor that checks each piece is UTF-8. With a line a request, those were
//! about 4 % of the service's CPU for a user's licenses read (perf). Here the span's fields
//! are copied as they are, and strings are escaped exactly as serde_json escapes them.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format of JSON logs; spans' fields must be formatted with [`JsonFields`].
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        writer.write_str(r#"{"timestamp":""#)?;
        SystemTime.format_time(&mut writer)?;
        write!(writer, r#"","level":"{}","fields":{{"#, meta.level())?;
        let mut fields = Fields {
            out: &mut writer,
            first: true,
            scratch: String::new(),
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str(r#"},"target":"#)?;
        json_str(&mut writer, meta.target())?;
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            writer.write_str(r#","span":{"#)?;
            let extensions = span.extensions();
            // The span's fields as JsonFields wrote them: one JSON object.
            let recorded = extensions
                .get::<FormattedFields<JsonFields>>()
                .map(|f| f.fields.as_str())
                .and_then(|f| f.strip_prefix('{')?.strip_suffix('}'))
                .unwrap_or_default();
            if !recorded.is_empty() {
                writer.write_str(recorded)?;
                writer.write_char(',')?;
            }
            writer.write_str(r#""name":"#)?;
            json_str(&mut writer, span.name())?;
            writer.write_char('}')?;
        }
        writer.write_str("}\n")
    }
}

/// Writes an event's fields as the members of a JSON object, as tracing-serde writes them:
/// numbers and booleans as such, everything else as a string (`Debug`, or `Display` for an
/// error).
struct Fields<'a, 'w> {
    out: &'a mut Writer<'w>,
    first: bool,
    /// Where a `Debug` value is formatted before it is escaped.
    scratch: String,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn member(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let separator = if self.first { "" } else { "," };
        self.first = false;
        self.result = self
            .out
            .write_str(separator)
            .and_then(|()| json_str(self.out, field.name()))
            .and_then(|()| self.out.write_char(':'))
            .and_then(|()| value(self.out));
    }
}

impl Visit for Fields<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        if write!(scratch, "{value:?}").is_err() {
            self.result = Err(fmt::Error);
        }
        self.member(field, |out| json_str(out, &scratch));
        self.scratch = scratch;
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |out| json_str(out, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |out| write!(out, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |out| write!(out, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // serde_json's rendering: shortest round-trip digits, `null` when not finite.
        self.member(field, |out| {
            out.write_str(&serde_json::to_string(&value).map_err(|_| fmt::Error)?)
        });
    }
}

/// `s` as a JSON string, escaped as serde_json escapes it.
fn json_str(out: &mut Writer<'_>, s: &str) -> fmt::Result {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.write_char('"')?;
        out.write_str(s)?;
        out.write_char('"')
    } else {
        out.write_str(&serde_json::to_string(s).map_err(|_| fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io;
    use std::sync::{Arc, Mutex};

    use serde_json::Value;
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Lines {
        /// Each line, its time cut out (checked first): `{"timestamp":"…Z",` is 44 bytes.
        fn untimed(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(|l| {
                    let line: Value =
                        serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
                    let time = line["timestamp"].as_str().unwrap();
                    assert!(time.ends_with('Z') && time.len() == 27, "{time}");
                    assert!(l.starts_with(&format!(r#"{{"timestamp":"{time}","#)), "{l}");
                    l[44..].to_owned()
                })
                .collect()
        }
    }

    /// The events the service logs, in the shapes it logs them: a request's span with an
    /// optional field, the answered line, an error with odd characters, numbers of every
    /// kind, and a line outside any span.
    fn log_everything() {
        let odd = "quote \" backslash \\ newline \n tab \t nul \u{0} é";
        let request_id: Option<&str> = Some("r-\"1\"");
        let span = tracing::info_span!(
            "request",
            method = %"GET",
            path = %"/api/license/v4/users/u-1/licenses",
            request_id = request_id.map(tracing::field::display),
        );
        let entered = span.enter();
        let elapsed_ms: Option<String> = Some("4.7".into());
        tracing::info!(status = 200_u16, elapsed_ms, "answered");
        let error = std::io::Error::other(odd);
        tracing::error!(%error, status = 500_u16, "answered");
        tracing::warn!(
            n = -3_i64,
            big = u64::MAX,
            ratio = 1.5_f64,
            nan = f64::NAN,
            yes = true,
            text = odd,
            debug = ?vec![odd],
            "odd {}",
            "message"
        );
        drop(entered);
        let quiet = tracing::info_span!("empty");
        quiet.in_scope(|| tracing::info!("in a span without fields"));
        tracing::info!(target: "licenses::other", "outside");
    }

    #[test]
    fn lines_are_those_of_tracing_subscribers_json_format_but_the_time() {
        let ours = Lines::default();
        let theirs = Lines::default();
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .fmt_fields(JsonFields::new())
                    .event_format(JsonLines)
                    .with_writer(ours.clone()),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(theirs.clone()),
            );
        tracing::subscriber::with_default(subscriber, log_everything);
        let (ours, theirs) = (ours.untimed(), theirs.untimed());
        assert_eq!(ours.len(), 5);
        // The same bytes: members, their order, escapes and numbers.
        assert_eq!(ours, theirs);
        // Worth knowing the cases are there.
        assert!(ours[0].contains(r#""request_id":"r-\"1\"""#), "{}", ours[0]);
        assert!(ours[2].contains(r#""nan":null"#), "{}", ours[2]);
        assert!(!ours[4].contains(r#""span""#), "{}", ours[4]);
    }
}
