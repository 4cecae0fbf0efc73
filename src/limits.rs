//! Slow request bodies. actix-web's own timeouts cover the request head and idle
//! connections, not a body trickled in; this middleware wraps every request's payload so
//! that:
//! - each chunk must come within `server.client_timeout_ms` (a client that stops sending is
//!   answered 408 `body_timeout`);
//! - the whole body must have come within `server.body_deadline_ms` of the request's head,
//!   however steadily it trickles (a byte a second would otherwise hold a connection, a
//!   worker's buffer and maybe a database slot for hours): 408 `body_deadline`.
//!
//! The handler reading the body answers those ([`licenses_http::read_body`]); the
//! middleware then closes the connection, whose unread rest of a body could not be told
//! from the next request.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, web};
use futures_util::{Stream, StreamExt};
use licenses_http::BodyDeadlineExceeded;
use tokio::time::{Instant, timeout_at};

/// The bounds of a request body, as application data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyTimeouts {
    /// The longest wait for the next chunk (`server.client_timeout_ms`).
    pub idle: Duration,
    /// The longest the whole body may take (`server.body_deadline_ms`).
    pub deadline: Duration,
}

/// Middleware: bounds the wait for each chunk of the request body and for all of it, and
/// closes the connection of a request whose body ran out of time.
pub(crate) async fn body_timeouts(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(bounds) = req
        .app_data::<web::Data<BodyTimeouts>>()
        .map(|t| *t.get_ref())
    else {
        return next.call(req).await;
    };
    let timed_out = Arc::new(AtomicBool::new(false));
    let payload = req.take_payload();
    req.set_payload(bounded(
        payload,
        bounds,
        Instant::now() + bounds.deadline,
        Arc::clone(&timed_out),
    ));
    let mut response = next.call(req).await?;
    if timed_out.load(Ordering::Relaxed) {
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(response)
}

/// `payload`, ending with a `TimedOut` error when no chunk comes within `bounds.idle` or the
/// body is not whole by `deadline` (that error caused by [`BodyDeadlineExceeded`]); either
/// sets `timed_out`.
fn bounded(
    payload: Payload,
    bounds: BodyTimeouts,
    deadline: Instant,
    timed_out: Arc<AtomicBool>,
) -> Payload {
    let chunks = futures_util::stream::unfold(Some(payload), move |state| {
        let timed_out = Arc::clone(&timed_out);
        async move {
            let mut payload = state?;
            let idle_until = Instant::now() + bounds.idle;
            let until = idle_until.min(deadline);
            match timeout_at(until, payload.next()).await {
                Ok(Some(chunk)) => Some((chunk, Some(payload))),
                Ok(None) => None,
                Err(_) => {
                    timed_out.store(true, Ordering::Relaxed);
                    let error = if until == deadline {
                        io::Error::new(io::ErrorKind::TimedOut, BodyDeadlineExceeded)
                    } else {
                        io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the client stopped sending the request body",
                        )
                    };
                    Some((Err(PayloadError::Io(error)), None))
                }
            }
        }
    });
    let boxed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(chunks);
    Payload::from(boxed)
}
