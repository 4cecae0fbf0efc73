//! Conditional GET for the catalogue, the most requested document of the platform: a strong
//! `ETag` (the SHA-256 of the body, so equal bytes always get equal tags, on every instance)
//! and `If-None-Match` answered with 304 and no body.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use licenses_app::ports::StoredResponse;
use licenses_http::stored;
use sha2::{Digest, Sha256};

/// `private`: the answer is to an authorized request, so shared caches (proxies, CDNs) must
/// not keep it and hand it to clients that did not authenticate. `max-age=60`: the catalogue
/// changes rarely, so an app may reuse it for a minute without asking, which bounds how long
/// a catalogue change takes to show; after that it revalidates with `If-None-Match` and gets
/// a bodiless 304 while nothing changed.
pub(crate) const CATALOGUE_CACHE_CONTROL: &str = "private, max-age=60";

/// The strong entity tag of `body`, quoted.
pub(crate) fn etag(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(Sha256::digest(body)))
}

/// Whether an `If-None-Match` value matches `tag` (quoted). The comparison is the weak one,
/// as RFC 9110 §13.1.2 requires for `If-None-Match`: `W/"x"` matches `"x"`. An unparsable
/// value matches nothing.
pub(crate) fn none_match(value: &str, tag: &str) -> bool {
    let mut rest = value.trim();
    if rest == "*" {
        return true;
    }
    while !rest.is_empty() {
        let candidate = rest.strip_prefix("W/").unwrap_or(rest);
        let Some(quoted) = candidate.strip_prefix('"') else {
            return false;
        };
        let Some(end) = quoted.find('"') else {
            return false;
        };
        if &candidate[..end + 2] == tag {
            return true;
        }
        rest = quoted[end + 1..].trim_start();
        match rest.strip_prefix(',') {
            Some(after) => rest = after.trim_start(),
            None if rest.is_empty() => {}
            None => return false,
        }
    }
    false
}

/// `answer` with its `ETag` and `cache_control`, or 304 when the request's `If-None-Match`
/// names that tag (or `*`).
pub(crate) fn conditional(
    req: &HttpRequest,
    answer: StoredResponse,
    cache_control: &'static str,
) -> HttpResponse {
    let tag = etag(&answer.body);
    let matched = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .any(|v| none_match(v, &tag));
    let mut response = if matched {
        HttpResponse::build(StatusCode::NOT_MODIFIED).finish()
    } else {
        stored(answer)
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_is_strong_and_follows_the_bytes() {
        let a = etag(b"{}");
        assert!(
            a.starts_with('"') && a.ends_with('"') && a.len() == 66,
            "{a}"
        );
        assert_eq!(a, etag(b"{}"));
        assert_ne!(a, etag(b"{ }"));
    }

    #[test]
    fn if_none_match_lists_wildcards_and_weak_tags_match() {
        let tag = "\"abc\"";
        for (value, expected) in [
            ("\"abc\"", true),
            ("*", true),
            (" * ", true),
            ("W/\"abc\"", true),
            ("\"x\", \"abc\"", true),
            ("\"x\",W/\"abc\"", true),
            ("\"x\"", false),
            ("\"ab\"", false),
            ("abc", false),
            ("\"abc", false),
            ("\"x\" \"abc\"", false),
            ("", false),
        ] {
            assert_eq!(none_match(value, tag), expected, "{value}");
        }
    }
}
