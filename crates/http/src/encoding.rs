//! Content coding for documents served from memory: a gzip copy made once, and whether a
//! request accepts it. The catalogue is about 90 KB of JSON for 200 products and about 8 KB
//! gzipped; compressing it once per catalogue change, rather than per request (or never),
//! is what lets it be served at the rate of a trivial endpoint.

use std::io::Write;

use actix_web::HttpRequest;
use actix_web::http::header;
use flate2::Compression;
use flate2::write::GzEncoder;

/// `body` gzipped, at the best compression: it is done once per change, not per request.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 8), Compression::best());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

/// Whether the request's `Accept-Encoding` accepts gzip (RFC 9110 §12.5.3): `gzip`,
/// `x-gzip` or `*` listed with a non-zero weight. No header: identity only.
pub fn accepts_gzip(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .any(accepts_gzip_value)
}

fn accepts_gzip_value(value: &str) -> bool {
    let mut gzip = None;
    let mut any = None;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let weight = parts
            .find_map(|p| {
                let (k, v) = p.split_once('=')?;
                (k.trim().eq_ignore_ascii_case("q")).then(|| v.trim().parse::<f32>().ok())?
            })
            .unwrap_or(1.0);
        match coding.as_str() {
            "gzip" | "x-gzip" => gzip = Some(weight > 0.0),
            "*" => any = Some(weight > 0.0),
            _ => {}
        }
    }
    gzip.or(any).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn gzip_round_trips() {
        let body = br#"{"data":[]}"#.repeat(100);
        let packed = gzip(&body);
        assert!(packed.len() < body.len() / 10, "{}", packed.len());
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut unpacked)
            .expect("gzip");
        assert_eq!(unpacked, body);
    }

    #[test]
    fn accept_encoding_is_read_with_its_weights() {
        for (value, expected) in [
            ("gzip", true),
            ("gzip, deflate, br", true),
            ("br;q=1.0, gzip;q=0.8", true),
            ("GZIP", true),
            ("x-gzip", true),
            ("*", true),
            ("gzip;q=0", false),
            ("gzip;q=0.0, *", false),
            ("*;q=0", false),
            ("br, *;q=0", false),
            ("deflate, br", false),
            ("identity", false),
            ("", false),
        ] {
            assert_eq!(accepts_gzip_value(value), expected, "{value}");
        }
    }
}
