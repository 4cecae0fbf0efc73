//! Logging: `tracing` to standard output, filtered by `RUST_LOG` (default `info`), one line
//! per HTTP request; human-readable text, or JSON lines (`log.format`, `json` under
//! `APP_ENV=production`). Every request carries a request id: the caller's `X-Request-Id` when
//! it is sane, else a new one; it is in the request's span (so in every line logged for it)
//! and in the `X-Request-Id` header of the answer.
//!
//! Standard error is kept for the one-line error a failed command ends with, so that scripts
//! can read it alone.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use licenses_http::redact_query;
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

use crate::log_buffer::LogBuffer;
use crate::log_json::JsonLines;
use crate::settings::LogFormat;

/// The filter when `RUST_LOG` is unset or does not parse.
pub const DEFAULT_FILTER: &str = "info,actix_server=warn";

/// The header a request id comes in and goes out with.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest request id taken from a caller.
pub const REQUEST_ID_MAX: usize = 128;

type Filtered = tracing_subscriber::layer::Layered<EnvFilter, Registry>;
type Output = Box<dyn Layer<Filtered> + Send + Sync>;

/// Switches the output of the subscriber [`init`] installed.
static OUTPUT: OnceLock<reload::Handle<Output, Filtered>> = OnceLock::new();

/// The buffer of [`Lines::Buffered`], once made: [`flush`] writes what it holds.
static BUFFER: OnceLock<LogBuffer> = OnceLock::new();

/// How log lines reach standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// Each line as it is logged: commands, whose lines mix with what they print.
    Direct,
    /// Lines gathered and written together within [`crate::log_buffer::PERIOD`]: `serve`, which
    /// logs a line a request ([`crate::log_buffer`]).
    Buffered,
}

/// Installs the global subscriber, writing text line by line until [`set_output`] says
/// otherwise (and the bridge from the `log` crate, which actix uses). A second call does
/// nothing.
pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let (output, handle) = reload::Layer::new(output(LogFormat::Text, Lines::Direct));
    // Fails only when a subscriber is already installed, e.g. by a test harness: keep that one.
    if tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init()
        .is_ok()
    {
        let _ = OUTPUT.set(handle);
    }
}

/// Writes the logs in `format`, `lines` as said, from now on (`log.format`, once the settings
/// are loaded). Does nothing unless [`init`] installed the subscriber.
pub fn set_output(format: LogFormat, lines: Lines) {
    if let Some(handle) = OUTPUT.get()
        && let Err(error) = handle.reload(output(format, lines))
    {
        tracing::warn!(%error, "cannot switch the log output");
    }
}

/// Writes every log line still buffered: before the process exits, and when a thread panics
/// (the panic's message goes to standard error; the lines before it must not wait).
pub fn flush() {
    if let Some(buffer) = BUFFER.get() {
        buffer.flush();
    }
}

fn output(format: LogFormat, lines: Lines) -> Output {
    match lines {
        Lines::Direct => formatted(format, std::io::stdout),
        Lines::Buffered => {
            let buffer = BUFFER.get_or_init(|| {
                let previous = std::panic::take_hook();
                std::panic::set_hook(Box::new(move |info| {
                    flush();
                    previous(info);
                }));
                LogBuffer::stdout()
            });
            formatted(format, buffer.clone())
        }
    }
}

fn formatted<W>(format: LogFormat, writer: W) -> Output
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Text => Box::new(layer.with_ansi(std::io::stdout().is_terminal())),
        // One object a line: the event's fields, and the request span's (request_id, method,
        // path) under `span`; spans' fields kept as JSON, which the lines copy (log_json).
        LogFormat::Json => Box::new(layer.fmt_fields(JsonFields::new()).event_format(JsonLines)),
    }
}

/// The id of a request, in its extensions: the caller's `X-Request-Id` or a new UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The caller's id when sane: 1 to [`REQUEST_ID_MAX`] visible ASCII characters (so it can
/// neither forge a log line nor bloat one).
pub fn sane_request_id(value: &HeaderValue) -> Option<&str> {
    let id = value.to_str().ok()?;
    (!id.is_empty() && id.len() <= REQUEST_ID_MAX && id.bytes().all(|b| b.is_ascii_graphic()))
        .then_some(id)
}

/// Middleware, outermost: gives the request its id (before [`RequestSpans`] opens its span)
/// and returns it in `X-Request-Id` on every answer, errors included.
pub(crate) async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(sane_request_id)
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    req.extensions_mut().insert(RequestId(id.clone()));
    // Inside, errors are answered as responses (handlers and middleware alike), so every
    // answer passes here. (The request cannot be kept aside to answer an `Err`: a clone
    // would stop the router from recording its match.)
    let mut response = next.call(req).await?.map_into_boxed_body();
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}

/// The span of each request: method, path, query (when there is one, the values of secret
/// parameters redacted: [`licenses_http::redact`]) and request id, and an event when the
/// response is ready with its status and duration (at debug level for a successful health
/// probe or metrics scrape, info otherwise). Headers other than `X-Request-Id` are never
/// recorded, so an `Authorization` header cannot reach the logs.
#[derive(Debug)]
pub(crate) struct RequestSpans;

/// When the request arrived, kept in its extensions.
#[derive(Clone, Copy)]
struct Arrived(Instant);

impl RootSpanBuilder for RequestSpans {
    fn on_request_start(request: &ServiceRequest) -> Span {
        request.extensions_mut().insert(Arrived(Instant::now()));
        let request_id = request.extensions().get::<RequestId>().cloned();
        let span = tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.path(),
            query = tracing::field::Empty,
            request_id = request_id.map(|id| tracing::field::display(id.0)),
        );
        // The query only when there is one, its secrets redacted (`?api_key=REDACTED`).
        let query = request.query_string();
        if !query.is_empty() {
            span.record("query", tracing::field::display(redact_query(query)));
        }
        span
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        let _entered = span.enter();
        match outcome {
            Ok(response) => {
                let status = response.status().as_u16();
                let elapsed_ms = response
                    .request()
                    .extensions()
                    .get::<Arrived>()
                    .map(|arrived| arrived.0.elapsed().as_secs_f64() * 1000.0);
                let elapsed_ms = elapsed_ms.map(|ms| format!("{ms:.1}"));
                let path = response.request().path();
                let probe = path.starts_with("/health/") || path == "/metrics";
                match response.response().error() {
                    Some(error) if status >= 500 => {
                        tracing::error!(status, elapsed_ms, %error, "answered");
                    }
                    // Probes and scrapes come every few seconds: only their failures are news.
                    _ if probe && status < 300 => {
                        tracing::debug!(status, elapsed_ms, "answered");
                    }
                    _ => tracing::info!(status, elapsed_ms, "answered"),
                }
            }
            Err(error) => tracing::error!(%error, "failed"),
        }
    }
}
