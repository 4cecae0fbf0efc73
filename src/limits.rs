//! Slow request bodies: a client that stops sending its body for longer than
//! `server.client_timeout_ms` is answered 408 `body_timeout` by the handler reading it
//! ([`licenses_http::read_body`]). actix-web's own timeouts cover the request head and idle
//! connections, not a body trickled in; this middleware wraps every request's payload so
//! that each chunk must come within the timeout.

use std::io;
use std::pin::Pin;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, web};
use futures_util::{Stream, StreamExt};

/// The longest wait for the next chunk of a request body, as application data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyIdleTimeout(pub Duration);

/// Middleware: bounds the wait for each chunk of the request body.
pub(crate) async fn body_idle_timeout(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(idle) = req.app_data::<web::Data<BodyIdleTimeout>>().map(|t| t.0) {
        let payload = req.take_payload();
        req.set_payload(with_idle_timeout(payload, idle));
    }
    next.call(req).await
}

/// `payload`, ending with a `TimedOut` error when no chunk comes within `idle`.
fn with_idle_timeout(payload: Payload, idle: Duration) -> Payload {
    let chunks = futures_util::stream::unfold(Some(payload), move |state| async move {
        let mut payload = state?;
        match actix_web::rt::time::timeout(idle, payload.next()).await {
            Ok(Some(chunk)) => Some((chunk, Some(payload))),
            Ok(None) => None,
            Err(_) => Some((
                Err(PayloadError::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client stopped sending the request body",
                ))),
                None,
            )),
        }
    });
    let boxed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(chunks);
    Payload::from(boxed)
}
