//! License-event webhooks as the Standard Webhooks specification has them
//! (<https://www.standardwebhooks.com>), so a receiver verifies ours with any of its reference
//! libraries instead of code written for us.
//!
//! - every request is a `POST` of the event's JSON with the headers `webhook-id` (the message
//!   id, the same on every retry so receivers can drop duplicates), `webhook-timestamp` (unix
//!   seconds, of this attempt: receivers refuse old ones against replays) and
//!   `webhook-signature`: `v1,` then the base64 of HMAC-SHA256(secret, `{id}.{timestamp}.{body}`);
//! - a secret is `whsec_` then the base64 of 24 to 64 random bytes ([`WebhookSecret`]);
//! - an endpoint is an `https` URL without credentials ([`validate_endpoint`]), on the
//!   public internet unless the service allows private networks ([`check_public_host`], and
//!   at each connection the sender's resolver);
//! - an answer is classified into [`Outcome`]: 2xx delivered, 410 stop, anything else retried
//!   on the schedule of [`retry_delay`], about three days in all.
//!
//! The crate is standalone: it signs and sends opaque bytes. Which events exist, how they are
//! rendered and where attempts are recorded belong to the service. Without its default
//! feature `send` it has no HTTP client (no reqwest, no tokio): what the use cases need to
//! register an endpoint (its checks and secret) and nothing that does I/O.

mod endpoint;
mod network;
mod retry;
mod secret;
#[cfg(feature = "send")]
mod send;

pub use endpoint::{EndpointError, MAX_ENDPOINT_LEN, validate_endpoint};
pub use network::{check_public_host, is_public};
pub use retry::{MAX_ATTEMPTS, retry_delay};
pub use secret::{SecretError, WebhookSecret};
#[cfg(feature = "send")]
pub use send::{Attempt, MAX_ANSWER_LEN, Outcome, USER_AGENT, WebhookSender};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header of the message id.
pub const HEADER_ID: &str = "webhook-id";
/// The header of the attempt's time, unix seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// The header of the signature(s).
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// The value of `webhook-signature` for one message: `v1,<base64 HMAC-SHA256>` over
/// `{msg_id}.{timestamp}.{body}`. The body is signed as the exact bytes sent: a receiver must
/// verify the raw body, before any JSON parsing.
pub fn sign(secret: &WebhookSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.key())
        .expect("HMAC takes a key of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the reference library's own tests (standardwebhooks, Rust).
    #[test]
    fn signs_the_reference_example() {
        let secret = WebhookSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
            .expect("the reference secret (24 bytes)");
        assert_eq!(
            sign(
                &secret,
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                br#"{"email":"test@example.com","username":"test_user"}"#,
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }
}
