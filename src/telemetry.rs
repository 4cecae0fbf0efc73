//! Logging: `tracing` to standard output, human-readable, filtered by `RUST_LOG` (default
//! `info`), and one line per HTTP request.
//!
//! Standard error is kept for the one-line error a failed command ends with, so that scripts
//! can read it alone.

use std::io::IsTerminal;
use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};
use tracing_subscriber::EnvFilter;

/// The filter when `RUST_LOG` is unset or does not parse.
pub const DEFAULT_FILTER: &str = "info,actix_server=warn";

/// Installs the global subscriber (and the bridge from the `log` crate, which actix uses).
/// A second call does nothing.
pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // Fails only when a subscriber is already installed, e.g. by a test harness: keep that one.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal())
        .with_writer(std::io::stdout)
        .try_init();
}

/// The span of each request: method, path (without the query) and request id, and an event
/// when the response is ready with its status and duration (at debug level for a successful
/// health probe, info otherwise). Headers are never recorded, so an
/// `Authorization` header cannot reach the logs.
#[derive(Debug)]
pub(crate) struct RequestSpans;

/// When the request arrived, kept in its extensions.
#[derive(Clone, Copy)]
struct Arrived(Instant);

impl RootSpanBuilder for RequestSpans {
    fn on_request_start(request: &ServiceRequest) -> Span {
        request.extensions_mut().insert(Arrived(Instant::now()));
        let request_id = request.extensions().get::<RequestId>().copied();
        tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.path(),
            request_id = request_id.map(tracing::field::display),
        )
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
                let probe = response.request().path().starts_with("/health/");
                match response.response().error() {
                    Some(error) if status >= 500 => {
                        tracing::error!(status, elapsed_ms, %error, "answered");
                    }
                    // Probes come every few seconds: only their failures are news.
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
