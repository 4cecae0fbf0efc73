//! What an endpoint URL may be, checked when it is registered rather than found out at the
//! first delivery.

use url::Url;

/// The longest endpoint taken, as given and as normalized: a bound on what is stored and
/// shown, well above any real receiver's URL.
pub const MAX_ENDPOINT_LEN: usize = 2048;

/// An endpoint URL that is refused. Codes are stable, for a JSON:API error's `code`; messages
/// are one line, for its `detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("the endpoint URL is longer than {MAX_ENDPOINT_LEN} characters")]
    TooLong,
    #[error("the endpoint is not a URL: {0}")]
    Invalid(String),
    #[error("the endpoint must be an https URL")]
    NotHttps,
    #[error("the endpoint URL must not hold a user name or password")]
    Credentials,
    #[error("the endpoint URL has no host")]
    NoHost,
    #[error("the endpoint is a private address: webhooks go to the public internet")]
    PrivateAddress,
}

impl EndpointError {
    /// The stable short code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            EndpointError::TooLong => "endpoint_too_long",
            EndpointError::Invalid(_) => "endpoint_invalid",
            EndpointError::NotHttps => "endpoint_not_https",
            EndpointError::Credentials => "endpoint_credentials",
            EndpointError::NoHost => "endpoint_no_host",
            EndpointError::PrivateAddress => "endpoint_private_address",
        }
    }
}

/// Checks and normalizes an endpoint: `https` (events and signatures are not sent in clear
/// text), or `http` too when `allow_http` (development, and receivers on loopback in tests);
/// no credentials (they would be stored and shown with the URL, and receivers authenticate
/// us by the signature); a host; at most [`MAX_ENDPOINT_LEN`] characters.
///
/// The host is not resolved here: what it points to can change after registration (see
/// [`check_public_host`](crate::check_public_host) for what is checked of it).
pub fn validate_endpoint(url: &str, allow_http: bool) -> Result<Url, EndpointError> {
    if url.len() > MAX_ENDPOINT_LEN {
        return Err(EndpointError::TooLong);
    }
    let parsed = Url::parse(url).map_err(|e| match e {
        url::ParseError::EmptyHost => EndpointError::NoHost,
        e => EndpointError::Invalid(e.to_string()),
    })?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_http => {}
        _ => return Err(EndpointError::NotHttps),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(EndpointError::Credentials);
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(EndpointError::NoHost);
    }
    // Normalizing (punycode, percent-encoding) can lengthen what was given.
    if parsed.as_str().len() > MAX_ENDPOINT_LEN {
        return Err(EndpointError::TooLong);
    }
    Ok(parsed)
}
