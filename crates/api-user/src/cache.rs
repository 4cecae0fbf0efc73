//! The catalogue as the user API renders it, once per catalogue snapshot: each product's
//! resource (a user's licenses include them), and the catalogue document, the most requested
//! document of the platform, with its conditional GET: a strong `ETag` (the SHA-256 of the
//! body, so equal bytes always get equal tags, on every instance) and `If-None-Match`
//! answered with 304 and no body.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use licenses_app::Snapshot;
use licenses_domain::{Product, ProductId};
use licenses_http::{JSONAPI, encoding};
use serde_json::value::RawValue;
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

/// A catalogue snapshot rendered: every product's resource, and the catalogue's answer made
/// of the visible ones: the body and its tag, and the same body gzipped with its own tag (a
/// strong tag names one representation: the identity tag with `-gzip` in its quotes). About
/// 88 KB of JSON for 200 products, 8 KB gzipped: served from memory, the bytes are the cost,
/// so the copy is made once here.
#[derive(Debug)]
pub(crate) struct Rendered {
    products: HashMap<ProductId, Box<RawValue>>,
    body: Bytes,
    tag: HeaderValue,
    gzip: Bytes,
    gzip_tag: HeaderValue,
}

/// The last rendered catalogue and the snapshot it was rendered from (compared by pointer:
/// a new snapshot, a new rendering). Requests only clone an `Arc` under the lock.
#[derive(Debug, Default)]
pub(crate) struct RenderedCatalogue {
    last: RwLock<Option<(Arc<Snapshot>, Arc<Rendered>)>>,
}

/// How the API renders: a product's resource, and the catalogue document from the visible
/// products' resources, in id order.
pub(crate) struct Renderer {
    pub(crate) product: fn(&Product) -> Box<RawValue>,
    pub(crate) catalogue: fn(Vec<&RawValue>) -> Vec<u8>,
}

impl Rendered {
    /// The resource of `product`, rendered with the snapshot it belongs to.
    pub(crate) fn product(&self, product: &ProductId) -> Option<&RawValue> {
        self.products.get(product).map(AsRef::as_ref)
    }
}

impl RenderedCatalogue {
    /// The rendering of `snapshot`, made with `renderer` only when `snapshot` is not the one
    /// rendered last.
    pub(crate) fn get(&self, snapshot: &Arc<Snapshot>, renderer: &Renderer) -> Arc<Rendered> {
        if let Some((s, r)) = self
            .last
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            && Arc::ptr_eq(s, snapshot)
        {
            return Arc::clone(r);
        }
        let products: HashMap<ProductId, Box<RawValue>> = snapshot
            .products()
            .iter()
            .map(|p| (p.id().clone(), (renderer.product)(p)))
            .collect();
        let body = (renderer.catalogue)(
            snapshot
                .visible()
                .filter_map(|p| products.get(p.id()).map(AsRef::as_ref))
                .collect(),
        );
        let tag = etag(&body);
        let gzip_tag = gzip_tag(&tag);
        let header =
            |t: &str| HeaderValue::from_str(t).expect("a hex digest in quotes is a header");
        let rendered = Arc::new(Rendered {
            products,
            gzip: Bytes::from(encoding::gzip(&body)),
            body: Bytes::from(body),
            tag: header(&tag),
            gzip_tag: header(&gzip_tag),
        });
        *self.last.write().unwrap_or_else(PoisonError::into_inner) =
            Some((Arc::clone(snapshot), Arc::clone(&rendered)));
        rendered
    }
}

/// The tag of the gzip representation whose identity representation has `tag` (quoted).
fn gzip_tag(tag: &str) -> String {
    format!("{}-gzip\"", tag.trim_end_matches('"'))
}

/// The cached catalogue with its `ETag` and `cache_control`, gzipped when the request accepts
/// gzip; or 304 when the request's `If-None-Match` names either representation's tag (or
/// `*`): both stand for the same catalogue.
pub(crate) fn conditional_rendered(
    req: &HttpRequest,
    rendered: &Rendered,
    cache_control: &'static str,
) -> HttpResponse {
    let gzip = encoding::accepts_gzip(req);
    let (tag, body) = if gzip {
        (&rendered.gzip_tag, &rendered.gzip)
    } else {
        (&rendered.tag, &rendered.body)
    };
    let tags = [
        rendered.tag.to_str().unwrap_or_default(),
        rendered.gzip_tag.to_str().unwrap_or_default(),
    ];
    let matched = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .any(|v| tags.iter().any(|t| none_match(v, t)));
    let mut response = if matched {
        HttpResponse::build(StatusCode::NOT_MODIFIED)
    } else {
        HttpResponse::build(StatusCode::OK)
    };
    response
        .insert_header((header::ETAG, tag.clone()))
        .insert_header((header::VARY, HeaderValue::from_static("Accept-Encoding")))
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        ));
    if matched {
        return response.finish();
    }
    response.insert_header((header::CONTENT_TYPE, JSONAPI));
    if gzip {
        response.insert_header((header::CONTENT_ENCODING, HeaderValue::from_static("gzip")));
    }
    response.body(body.clone())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gzip_tag_is_the_identity_tag_marked() {
        assert_eq!(gzip_tag("\"abc\""), "\"abc-gzip\"");
    }

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
