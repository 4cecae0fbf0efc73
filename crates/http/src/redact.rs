//! Secrets in query strings. A caller may put a credential in a URL (`?api_key=…`,
//! `?access_token=…`, `?password=…`) even though neither API reads one there; wherever this
//! service logs or echoes a URL (the access log's `query`, a `links.self` that repeats the
//! request's query) the value of such a parameter is replaced by [`REDACTED`], so that it
//! never reaches a log collector or a response.
//!
//! A parameter is secret when a word of its name (split on anything but letters and digits,
//! compared without case, after percent-decoding) is one of [`SECRET_WORDS`], or the whole
//! name is one of [`SECRET_NAMES`]: `api_key`, `X-Api-Key`, `access_token`, `client_secret`,
//! `Password`, `apiKey`, `filter[token]` all are; `page[after]` and `filter[user]` are not.

use std::borrow::Cow;

/// What a secret value is replaced with.
pub const REDACTED: &str = "REDACTED";

/// Words that make a parameter secret wherever they appear in its name.
pub const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "pass",
    "passphrase",
    "secret",
    "token",
    "key",
    "apikey",
    "auth",
    "authorization",
    "credential",
    "credentials",
    "signature",
    "sig",
    "session",
    "sessionid",
    "jwt",
    "bearer",
    "otp",
    "code",
];

/// Whole names (compared without case) that are secret though no word of theirs is:
/// camel-cased compounds.
pub const SECRET_NAMES: &[&str] = &[
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "clientsecret",
    "privatekey",
    "secretkey",
    "accesskey",
    "authtoken",
    "sessiontoken",
];

/// Whether the query parameter `name` (as sent, maybe percent-encoded) names a secret.
pub fn is_secret_name(name: &str) -> bool {
    let decoded: String = url::form_urlencoded::parse(name.as_bytes())
        .next()
        .map_or_else(|| name.to_owned(), |(n, _)| n.into_owned());
    let lower = decoded.to_ascii_lowercase();
    SECRET_NAMES.contains(&lower.as_str())
        || lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| SECRET_WORDS.contains(&word))
}

/// `query` (without its `?`) with the value of every secret parameter replaced by
/// [`REDACTED`]; every other byte as it was. Borrowed when nothing is secret.
pub fn redact_query(query: &str) -> Cow<'_, str> {
    let secret = |pair: &str| {
        pair.split_once('=')
            .is_some_and(|(name, value)| !value.is_empty() && is_secret_name(name))
    };
    if !query.split('&').any(secret) {
        return Cow::Borrowed(query);
    }
    let mut out = String::with_capacity(query.len());
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((name, _)) if secret(pair) => {
                out.push_str(name);
                out.push('=');
                out.push_str(REDACTED);
            }
            _ => out.push_str(pair),
        }
    }
    Cow::Owned(out)
}

/// A path with its query (`/a/b?x=1`), the query redacted as [`redact_query`] does.
pub fn redact_path_and_query(path_and_query: &str) -> Cow<'_, str> {
    match path_and_query.split_once('?') {
        None => Cow::Borrowed(path_and_query),
        Some((path, query)) => match redact_query(query) {
            Cow::Borrowed(_) => Cow::Borrowed(path_and_query),
            Cow::Owned(q) => Cow::Owned(format!("{path}?{q}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_found_whatever_their_case_or_shape() {
        for name in [
            "password",
            "PASSWORD",
            "api_key",
            "API-KEY",
            "apiKey",
            "x-api-key",
            "token",
            "access_token",
            "accessToken",
            "refresh_token",
            "id_token",
            "secret",
            "client_secret",
            "key",
            "Key",
            "filter[token]",
            "auth",
            "X-Amz-Signature",
            "api%5Fkey",
            "pass%77ord",
        ] {
            assert!(is_secret_name(name), "{name} is a secret");
        }
        for name in [
            "page[after]",
            "page[size]",
            "filter[user]",
            "filter[status]",
            "include",
            "monkey",
            "tokens_left_unrelated_but_plural",
            "keyboard",
        ] {
            assert!(!is_secret_name(name), "{name} is not a secret");
        }
    }

    #[test]
    fn only_secret_values_are_replaced_and_the_rest_is_kept_byte_for_byte() {
        assert_eq!(
            redact_query("filter%5Buser%5D=u-1&api_key=S3cr3t&page[size]=5"),
            "filter%5Buser%5D=u-1&api_key=REDACTED&page[size]=5"
        );
        assert_eq!(
            redact_query("Password=hunter2&access_token=eyJhbGciOi.x.y&token="),
            "Password=REDACTED&access_token=REDACTED&token="
        );
        assert!(matches!(redact_query("a=1&b=2"), Cow::Borrowed("a=1&b=2")));
        assert!(matches!(redact_query(""), Cow::Borrowed("")));
        assert_eq!(redact_query("key=a=b"), "key=REDACTED");
        assert_eq!(redact_query("token"), "token", "no value, nothing to hide");
    }

    #[test]
    fn a_path_keeps_its_path() {
        assert_eq!(
            redact_path_and_query("/api/license/v4/products?secret=x&include=product"),
            "/api/license/v4/products?secret=REDACTED&include=product"
        );
        assert_eq!(redact_path_and_query("/a/b"), "/a/b");
        assert_eq!(redact_path_and_query("/a?b=1"), "/a?b=1");
    }
}
