//! One delivery attempt: a signed `POST`, its answer kept short for the attempt log and
//! classified for the retry loop.

use std::error::Error as _;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use url::Url;

use crate::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, WebhookSecret, sign};

/// The most of an answer (or of a transport error's text) an [`Attempt`] keeps, in bytes: a
/// receiver's error page helps whoever debugs the endpoint, its whole HTML does not.
pub const MAX_ANSWER_LEN: usize = 1024;

/// Sent on every request, so a receiver's logs and firewall rules can tell our calls.
pub const USER_AGENT: &str = concat!("aminotv-licenses-webhooks/", env!("CARGO_PKG_VERSION"));

/// What the service does next with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A 2xx: done.
    Delivered,
    /// Anything else but 410: 5xx, 429, 408, other 4xx and 3xx (redirects are not followed),
    /// timeouts, connection and TLS errors. Tried again on the schedule of
    /// [`retry_delay`](crate::retry_delay): a misconfigured receiver is often fixed within it.
    Retry,
    /// A 410 Gone: the receiver asks us to stop sending to this endpoint (Standard Webhooks'
    /// convention); the service disables it rather than retry.
    Gone,
}

/// The record of one attempt, for the attempt log and the retry loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The answer's status; `None` when none came (connection refused, timeout, TLS).
    pub status: Option<u16>,
    /// The answer's body, at most [`MAX_ANSWER_LEN`] bytes cut at a character boundary
    /// (invalid UTF-8 replaced); or, without an answer, the transport error's text.
    pub answer: String,
    pub outcome: Outcome,
}

/// Sends signed webhooks. One per service: its client keeps connections to receivers alive.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    allow_private_networks: bool,
}

impl WebhookSender {
    /// A sender whose every attempt is bounded by `timeout` as a whole (connect, send, answer),
    /// so a slow receiver holds a worker no longer than that.
    ///
    /// Redirects are not followed: the endpoint is the URL that was validated and registered,
    /// and a redirect would carry the signed event to a host nobody checked (a 3xx is retried,
    /// and shows in the attempt log for the receiver to fix).
    ///
    /// Unless `allow_private_networks`, it sends to public addresses only: a literal private
    /// address is refused before connecting, and host names resolve to their public
    /// addresses only (see [`check_public_host`](crate::check_public_host)).
    ///
    /// # Panics
    ///
    /// When the TLS backend cannot start (rustls with bundled roots: no system state to miss).
    pub fn new(timeout: Duration, allow_private_networks: bool) -> Self {
        let builder = reqwest::Client::builder();
        let builder = if allow_private_networks {
            builder
        } else {
            // Direct connections only: through an HTTP(S)_PROXY the proxy would resolve the
            // name, past the resolver's check.
            builder
                .no_proxy()
                .dns_resolver(std::sync::Arc::new(crate::network::PublicResolver))
        };
        let client = builder
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(USER_AGENT)
            .build()
            .expect("the webhook HTTP client (rustls) builds");
        Self {
            client,
            allow_private_networks,
        }
    }

    /// Sends `body` (JSON) to `url`, signed with `secret` for `msg_id` at `timestamp` (unix
    /// seconds, now: receivers refuse a timestamp more than a few minutes off).
    ///
    /// `msg_id` must be a valid header value (the service's ids are); one that is not fails
    /// before anything is sent, as a [`Outcome::Retry`] whose answer says so.
    pub async fn send(
        &self,
        url: &Url,
        secret: &WebhookSecret,
        msg_id: &str,
        timestamp: i64,
        body: &[u8],
    ) -> Attempt {
        if !self.allow_private_networks
            && let Err(refused) = crate::check_public_host(url)
        {
            return Attempt {
                status: None,
                answer: refused.to_string(),
                outcome: Outcome::Retry,
            };
        }
        let request = self
            .client
            .post(url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(HEADER_ID, msg_id)
            .header(HEADER_TIMESTAMP, timestamp.to_string())
            .header(HEADER_SIGNATURE, sign(secret, msg_id, timestamp, body))
            .body(body.to_vec());
        match request.send().await {
            Ok(mut response) => {
                let status = response.status();
                Attempt {
                    status: Some(status.as_u16()),
                    answer: read_answer(&mut response).await,
                    outcome: classify(status),
                }
            }
            Err(e) => Attempt {
                status: None,
                answer: truncate(error_text(e)),
                outcome: Outcome::Retry,
            },
        }
    }
}

fn classify(status: StatusCode) -> Outcome {
    if status.is_success() {
        Outcome::Delivered
    } else if status == StatusCode::GONE {
        Outcome::Gone
    } else {
        Outcome::Retry
    }
}

/// Reads at most a little more than [`MAX_ANSWER_LEN`] bytes of the body (a receiver cannot
/// make us buffer a large answer) and keeps what came before an error or the timeout: the
/// status is what decides the outcome.
async fn read_answer(response: &mut reqwest::Response) -> String {
    // 3 bytes over the limit: a character that straddles it still decodes whole, then is cut.
    const READ: usize = MAX_ANSWER_LEN + 3;
    let mut bytes = Vec::new();
    while bytes.len() < READ {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = READ - bytes.len();
                bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    truncate(String::from_utf8_lossy(&bytes).into_owned())
}

/// The error and its causes on one line, without the URL (the attempt is recorded with its
/// endpoint already, and a URL's query may hold a receiver's token).
fn error_text(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Cuts `text` to at most [`MAX_ANSWER_LEN`] bytes, at a character boundary.
fn truncate(mut text: String) -> String {
    if text.len() > MAX_ANSWER_LEN {
        let mut end = MAX_ANSWER_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_statuses() {
        let of = |s: u16| classify(StatusCode::from_u16(s).expect("status"));
        for s in [200, 201, 202, 204, 299] {
            assert_eq!(of(s), Outcome::Delivered, "{s}");
        }
        assert_eq!(of(410), Outcome::Gone);
        for s in [
            301, 302, 307, 308, 400, 401, 403, 404, 408, 413, 429, 500, 502, 503,
        ] {
            assert_eq!(of(s), Outcome::Retry, "{s}");
        }
    }

    #[test]
    fn truncates_at_a_character_boundary() {
        assert_eq!(truncate("short".into()), "short");
        let exact = "a".repeat(MAX_ANSWER_LEN);
        assert_eq!(truncate(exact.clone()), exact);
        // "é" is 2 bytes: 1023 ASCII bytes then "é" straddles the limit.
        let straddling = format!("{}é and more", "a".repeat(MAX_ANSWER_LEN - 1));
        let cut = truncate(straddling);
        assert_eq!(cut.len(), MAX_ANSWER_LEN - 1);
        assert!(cut.chars().all(|c| c == 'a'));
        let emoji = "🦀".repeat(MAX_ANSWER_LEN);
        let cut = truncate(emoji);
        assert_eq!(cut.len(), MAX_ANSWER_LEN);
        assert!(cut.chars().all(|c| c == '🦀'));
    }
}
