//! Query parameters: only the known ones are accepted, each at most once, so that a typo
//! (`filter[stauts]`) is a 400 naming the parameter rather than a silently ignored filter.
//!
//! The parameters a route knows are types ([`QueryParams`]): their `IntoParams` derive is the
//! route's OpenAPI description, and their [`QueryParams::NAMES`] are what [`Query::parse`]
//! accepts (a test holds the two to the same names).

use licenses_app::events::{EventQuery, EventType, MAX_EVENT_PAGE};
use licenses_app::webhooks::{DeliveryQuery, DeliveryState, MAX_DELIVERY_PAGE};
use licenses_app::{LicenseFilter, MAX_PAGE_SIZE, PageRequest};
use licenses_domain::{ChannelId, LicenseId, LicenseStatus, ProductId, Service, Timestamp, UserId};

use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::jsonapi::ApiError;

const DEFAULT_PAGE_SIZE: u32 = 100;
/// The last second of the year 9999: the largest time any document or filter takes.
const MAX_TIMESTAMP: i64 = Timestamp::MAX.unix();

/// The query parameters of a request, checked against the ones its endpoint knows.
#[derive(Debug, Clone, Default)]
pub struct Query {
    params: Vec<(String, String)>,
}

impl Query {
    /// Parses `query_string`, refusing parameters that are not in one of the `known` lists
    /// (each a [`QueryParams::NAMES`]) and repeated ones.
    pub fn parse(query_string: &str, known: &[&[&str]]) -> Result<Self, ApiError> {
        let mut params: Vec<(String, String)> = Vec::new();
        for (name, value) in url::form_urlencoded::parse(query_string.as_bytes()) {
            if !known.iter().any(|names| names.contains(&name.as_ref())) {
                let known: Vec<&str> = known
                    .iter()
                    .flat_map(|names| names.iter().copied())
                    .collect();
                let (code, what) = if name.starts_with("filter[") {
                    ("unknown_filter", "filter")
                } else {
                    ("unknown_parameter", "query parameter")
                };
                let hint = if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                };
                return Err(ApiError::parameter(
                    &name,
                    code,
                    format!("unknown {what} {name}; this endpoint knows: {hint}"),
                ));
            }
            if params.iter().any(|(n, _)| n == name.as_ref()) {
                return Err(ApiError::parameter(
                    &name,
                    "repeated_parameter",
                    format!("{name} is given more than once"),
                ));
            }
            params.push((name.into_owned(), value.into_owned()));
        }
        Ok(Self { params })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `include=product` asked for; any other include is refused.
    pub fn include_product(&self) -> Result<bool, ApiError> {
        match self.get("include") {
            None => Ok(false),
            Some("product") => Ok(true),
            Some(_) => Err(ApiError::parameter(
                "include",
                "unsupported_include",
                "the only include is product",
            )),
        }
    }

    /// The parameters of this query (other than `page[after]`) in URL form, for pagination
    /// links.
    pub fn without_cursor(&self) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (n, v) in self.params.iter().filter(|(n, _)| n != "page[after]") {
            out.append_pair(n, v);
        }
        out.finish()
    }
}

/// The query parameters of a route, as a type: documented by its `IntoParams` derive, and
/// accepted by [`Query::parse`] by these names.
pub trait QueryParams: IntoParams {
    /// The parameters' names, as the query string gives them.
    const NAMES: &'static [&'static str];
}

/// `filter[status]` alone (the user API's listing).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusFilter {
    /// Only licenses in one of these statuses: a comma-separated list, without spaces
    /// (EXPIRED is derived from `stop_date`).
    #[param(
        rename = "filter[status]",
        pattern = r"^(PROCESSING|ACTIVE|SUSPENDED|EXPIRED|ORDER_ERROR|CHECK_INVALID|SUSPENDEDADMIN)(,(PROCESSING|ACTIVE|SUSPENDED|EXPIRED|ORDER_ERROR|CHECK_INVALID|SUSPENDEDADMIN))*$",
        example = "ACTIVE,SUSPENDED"
    )]
    pub status: Option<String>,
}

/// `filter[user]` (the management listing of every license).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFilter {
    /// Only the licenses of this user.
    #[param(
        rename = "filter[user]",
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$",
        example = "41"
    )]
    pub user: Option<String>,
}

/// The management listings' filters, pages and include (but `filter[user]`).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LicenseListParams {
    /// Only the licenses of this product.
    #[param(
        rename = "filter[product]",
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$",
        example = "41"
    )]
    pub product: Option<String>,
    /// Only licenses in one of these statuses: a comma-separated list, without spaces
    /// (EXPIRED is derived from `stop_date`).
    #[param(
        rename = "filter[status]",
        pattern = r"^(PROCESSING|ACTIVE|SUSPENDED|EXPIRED|ORDER_ERROR|CHECK_INVALID|SUSPENDEDADMIN)(,(PROCESSING|ACTIVE|SUSPENDED|EXPIRED|ORDER_ERROR|CHECK_INVALID|SUSPENDEDADMIN))*$",
        example = "ACTIVE"
    )]
    pub status: Option<String>,
    /// Only licenses active at this time (unix seconds): started, and not stopped.
    #[param(
        rename = "filter[active_at]",
        minimum = 0,
        maximum = 253402300799_i64,
        example = 1523268666
    )]
    pub active_at: Option<i64>,
    /// `product`: the licenses' products in `included`.
    #[param(rename = "include", inline)]
    pub include: Option<Include>,
    /// Licenses per page, 1 to 1000 (default 100).
    #[param(rename = "page[size]", minimum = 1, maximum = 1000, example = 100)]
    pub size: Option<u32>,
    /// The cursor of `links.next`: the page after this license.
    #[param(
        rename = "page[after]",
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$"
    )]
    pub after: Option<String>,
}

/// `include` alone (one license).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncludeParam {
    /// `product`: the license's product in `included`.
    #[param(rename = "include", inline)]
    pub include: Option<Include>,
}

/// The only related resource a license document can include.
#[derive(Debug, Serialize, ToSchema)]
pub enum Include {
    #[serde(rename = "product")]
    Product,
}

/// `channel` and `service`, both required: what the explain call is asked about.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccessParams {
    /// The channel to explain.
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$",
        example = "42"
    )]
    pub channel: String,
    /// The service on that channel.
    #[param(inline)]
    pub service: ServiceName,
}

/// A service, as products name their channel lists.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceName {
    Live,
    Npvr,
    Catchup,
    Startover,
}

impl QueryParams for AccessParams {
    const NAMES: &'static [&'static str] = &["channel", "service"];
}

impl QueryParams for StatusFilter {
    const NAMES: &'static [&'static str] = &["filter[status]"];
}

impl QueryParams for UserFilter {
    const NAMES: &'static [&'static str] = &["filter[user]"];
}

impl QueryParams for LicenseListParams {
    const NAMES: &'static [&'static str] = &[
        "filter[product]",
        "filter[status]",
        "filter[active_at]",
        "include",
        "page[size]",
        "page[after]",
    ];
}

impl QueryParams for IncludeParam {
    const NAMES: &'static [&'static str] = &["include"];
}

/// The event feed's filters and page (docs/events.md).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFeedParams {
    /// Only the events of this user's licenses.
    #[param(
        rename = "filter[user]",
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$",
        example = "41"
    )]
    pub user: Option<String>,
    /// Only events of these types: a comma-separated list, without spaces.
    #[param(
        rename = "filter[type]",
        pattern = r"^(license\.(created|deleted|activated|order_error|updated|expired|expiring_soon)|product\.(created|updated|deleted))(,(license\.(created|deleted|activated|order_error|updated|expired|expiring_soon)|product\.(created|updated|deleted)))*$",
        example = "license.created,license.deleted"
    )]
    pub types: Option<String>,
    /// Events per page, 1 to 1000 (default 100).
    #[param(rename = "page[size]", minimum = 1, maximum = 1000, example = 100)]
    pub size: Option<u32>,
    /// The cursor of `links.next`: the events after this position. Without it, the feed
    /// starts at the oldest event kept.
    #[param(rename = "page[after]", pattern = "^[0-9]{1,18}$", example = "1234")]
    pub after: Option<String>,
}

impl QueryParams for EventFeedParams {
    const NAMES: &'static [&'static str] =
        &["filter[user]", "filter[type]", "page[size]", "page[after]"];
}

/// The feed's query: `filter[user]`, `filter[type]`, `page[size]` (default 100, 1 ..= 1000)
/// and `page[after]` (a position).
pub fn event_query(q: &Query) -> Result<EventQuery, ApiError> {
    let types = match q.get("filter[type]") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|name| {
                EventType::parse(name).ok_or_else(|| {
                    ApiError::parameter(
                        "filter[type]",
                        "invalid_parameter",
                        format!(
                            "unknown event type {name:?}; types: {}",
                            EventType::ALL.map(EventType::as_str).join(", ")
                        ),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let limit = page_size(q, MAX_EVENT_PAGE)?;
    let after = page_after(q, "page[after] is the position of links.next: digits only")?;
    Ok(EventQuery {
        after,
        user: id(q, "filter[user]", UserId::parse)?,
        types,
        limit,
    })
}

/// `page[size]`: 1 to `max`, [`DEFAULT_PAGE_SIZE`] when absent.
fn page_size(q: &Query, max: u32) -> Result<u32, ApiError> {
    match q.get("page[size]") {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|s| (1..=max).contains(s))
            .ok_or_else(|| {
                ApiError::parameter(
                    "page[size]",
                    "invalid_parameter",
                    format!("page[size] is 1 to {max}"),
                )
            }),
    }
}

/// `page[after]`: a cursor of digits.
fn page_after(q: &Query, detail: &'static str) -> Result<Option<i64>, ApiError> {
    q.get("page[after]")
        .map(|v| {
            v.parse::<i64>()
                .ok()
                .filter(|p| *p >= 0 && v.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| ApiError::parameter("page[after]", "invalid_parameter", detail))
        })
        .transpose()
}

/// The query of an endpoint's deliveries.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Only the deliveries in this state: `pending`, `delivered` or `failed`.
    #[param(
        rename = "filter[status]",
        pattern = "^(pending|delivered|failed)$",
        example = "failed"
    )]
    pub status: Option<String>,
    /// Deliveries per page, 1 to 1000 (default 100).
    #[param(rename = "page[size]", minimum = 1, maximum = 1000, example = 100)]
    pub size: Option<u32>,
    /// The cursor of `links.next`: the deliveries after this id, oldest first.
    #[param(rename = "page[after]", pattern = "^[0-9]{1,18}$", example = "42")]
    pub after: Option<String>,
}

impl QueryParams for DeliveryParams {
    const NAMES: &'static [&'static str] = &["filter[status]", "page[size]", "page[after]"];
}

/// An endpoint's deliveries to list: `filter[status]`, `page[size]`, `page[after]`.
pub fn delivery_query(q: &Query, endpoint_id: &str) -> Result<DeliveryQuery, ApiError> {
    let state = q
        .get("filter[status]")
        .map(|v| {
            DeliveryState::parse(v).ok_or_else(|| {
                ApiError::parameter(
                    "filter[status]",
                    "invalid_parameter",
                    "filter[status] is pending, delivered or failed",
                )
            })
        })
        .transpose()?;
    Ok(DeliveryQuery {
        endpoint_id: endpoint_id.to_owned(),
        state,
        after: page_after(q, "page[after] is the id of links.next: digits only")?,
        limit: page_size(q, MAX_DELIVERY_PAGE)?,
    })
}

/// No query parameter.
#[derive(Debug, IntoParams)]
pub struct NoParams {}

impl QueryParams for NoParams {
    const NAMES: &'static [&'static str] = &[];
}

fn id<T>(
    q: &Query,
    name: &str,
    parse: fn(String) -> Result<T, licenses_domain::IdError>,
) -> Result<Option<T>, ApiError> {
    q.get(name)
        .map(|v| {
            parse(v.to_owned()).map_err(|e| {
                ApiError::parameter(name, "invalid_parameter", format!("{name}: id {e}"))
            })
        })
        .transpose()
}

/// `filter[user]`, `filter[product]`, `filter[status]` (comma list, no spaces: `ACTIVE, EXPIRED`
/// is refused as the documented pattern refuses it; EXPIRED is derived) and
/// `filter[active_at]` (unix seconds, up to the year 9999 as every timestamp).
pub fn license_filter(q: &Query) -> Result<LicenseFilter, ApiError> {
    let statuses = match q.get("filter[status]") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|s| {
                s.parse::<LicenseStatus>().map_err(|_| {
                    ApiError::parameter(
                        "filter[status]",
                        "invalid_parameter",
                        format!(
                            "unknown status {s:?}; statuses: {}",
                            LicenseStatus::ALL.map(|s| s.as_str()).join(", ")
                        ),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let active_at = q
        .get("filter[active_at]")
        .map(|v| {
            v.parse::<i64>()
                .ok()
                .filter(|t| (0..=MAX_TIMESTAMP).contains(t))
                .map(Timestamp::from_unix)
                .ok_or_else(|| {
                    ApiError::parameter(
                        "filter[active_at]",
                        "invalid_parameter",
                        format!("filter[active_at] is unix seconds, 0 to {MAX_TIMESTAMP}"),
                    )
                })
        })
        .transpose()?;
    Ok(LicenseFilter {
        user: id(q, "filter[user]", UserId::parse)?,
        product: id(q, "filter[product]", ProductId::parse)?,
        statuses,
        active_at,
    })
}

/// `channel` (a channel id) and `service` (`live`, `npvr`, `catchup`, `startover`), both
/// required: 400 `missing_parameter` without one, `invalid_parameter` for a bad value, each
/// naming its parameter.
pub fn access_query(q: &Query) -> Result<(ChannelId, Service), ApiError> {
    let required = |name: &'static str| {
        q.get(name).ok_or_else(|| {
            ApiError::parameter(name, "missing_parameter", format!("{name} is required"))
        })
    };
    let channel = ChannelId::parse(required("channel")?).map_err(|e| {
        ApiError::parameter("channel", "invalid_parameter", format!("channel: id {e}"))
    })?;
    let service = Service::parse(required("service")?).ok_or_else(|| {
        ApiError::parameter(
            "service",
            "invalid_parameter",
            format!(
                "service is one of {}",
                Service::ALL.map(Service::as_str).join(", ")
            ),
        )
    })?;
    Ok((channel, service))
}

/// `page[size]` (default 100, 1 ..= 1000) and `page[after]` (the cursor of `links.next`).
pub fn page_request(q: &Query) -> Result<PageRequest, ApiError> {
    let size = match q.get("page[size]") {
        None => DEFAULT_PAGE_SIZE,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|s| (1..=MAX_PAGE_SIZE).contains(s))
            .ok_or_else(|| {
                ApiError::parameter(
                    "page[size]",
                    "invalid_parameter",
                    format!("page[size] is 1 to {MAX_PAGE_SIZE}"),
                )
            })?,
    };
    Ok(PageRequest {
        size,
        after: id(q, "page[after]", LicenseId::parse)?,
    })
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;

    use super::*;

    const KNOWN: &[&str] = &[
        "filter[status]",
        "filter[user]",
        "filter[active_at]",
        "page[size]",
        "page[after]",
        "include",
    ];

    /// The names a route's parameters type documents.
    fn documented<P: IntoParams>() -> Vec<String> {
        P::into_params(|| None)
            .into_iter()
            .map(|p| p.name)
            .collect()
    }

    #[test]
    fn each_parameters_type_accepts_the_names_it_documents() {
        assert_eq!(documented::<StatusFilter>(), StatusFilter::NAMES);
        assert_eq!(documented::<UserFilter>(), UserFilter::NAMES);
        assert_eq!(documented::<LicenseListParams>(), LicenseListParams::NAMES);
        assert_eq!(documented::<AccessParams>(), AccessParams::NAMES);
        assert_eq!(documented::<IncludeParam>(), IncludeParam::NAMES);
        assert_eq!(documented::<NoParams>(), NoParams::NAMES);
        assert_eq!(documented::<EventFeedParams>(), EventFeedParams::NAMES);
    }

    #[test]
    fn the_documented_status_list_is_the_statuses_the_filter_accepts() {
        let params = StatusFilter::into_params(|| None);
        let schema = serde_json::to_value(&params[0].schema).unwrap_or_default();
        let pattern = schema["pattern"].as_str().unwrap_or_default();
        let alternatives = pattern
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(list, _)| list)
            .unwrap_or_default();
        let mut documented: Vec<&str> = alternatives.split('|').collect();
        documented.sort_unstable();
        let mut accepted: Vec<&str> = LicenseStatus::ALL.map(|s| s.as_str()).to_vec();
        accepted.sort_unstable();
        assert_eq!(documented, accepted, "{pattern}");
        for status in accepted {
            let q = Query::parse(
                &format!("filter%5Bstatus%5D={status}"),
                &[StatusFilter::NAMES],
            )
            .expect("known");
            assert!(license_filter(&q).is_ok(), "{status}");
        }
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused_by_name() {
        let e = Query::parse("filter%5Bstauts%5D=ACTIVE", &[KNOWN]).expect_err("typo");
        assert_eq!(
            (e.status(), e.errors()[0].code),
            (StatusCode::BAD_REQUEST, "unknown_filter")
        );
        let e = Query::parse("sort=id", &[KNOWN]).expect_err("unknown");
        assert_eq!(e.errors()[0].code, "unknown_parameter");
        let e = Query::parse("include=product&include=product", &[KNOWN]).expect_err("twice");
        assert_eq!(e.errors()[0].code, "repeated_parameter");
    }

    #[test]
    fn a_refused_parameter_is_named_and_its_value_never_echoed() {
        for query in [
            "api_key=S3CRET-VALUE",
            "include=product&password=S3CRET-VALUE",
            "access_token=S3CRET-VALUE&access_token=S3CRET-VALUE",
            "filter%5Btoken%5D=S3CRET-VALUE",
        ] {
            let e = Query::parse(query, &[KNOWN]).expect_err("refused");
            let body = String::from_utf8(e.body()).expect("utf8");
            assert!(!body.contains("S3CRET-VALUE"), "{query}: {body}");
            assert!(e.to_string().contains("unknown"), "{query}: {e}");
        }
    }

    #[test]
    fn filters_and_pages_parse() {
        let q = Query::parse("filter[status]=ACTIVE,EXPIRED&filter[user]=41&filter[active_at]=100&page[size]=5&page[after]=x", &[KNOWN])
            .expect("ok");
        let f = license_filter(&q).expect("filter");
        assert_eq!(f.statuses, [LicenseStatus::Active, LicenseStatus::Expired]);
        assert_eq!(f.user.as_ref().map(UserId::as_str), Some("41"));
        assert_eq!(f.active_at, Some(Timestamp::from_unix(100)));
        let p = page_request(&q).expect("page");
        assert_eq!(
            (p.size, p.after.as_ref().map(LicenseId::as_str)),
            (5, Some("x"))
        );
        assert_eq!(
            q.without_cursor(),
            "filter%5Bstatus%5D=ACTIVE%2CEXPIRED&filter%5Buser%5D=41&filter%5Bactive_at%5D=100&page%5Bsize%5D=5"
        );
    }

    /// The status list is read exactly as its documented pattern admits it: no white space
    /// anywhere, no empty item.
    #[test]
    fn the_status_filter_takes_no_white_space() {
        for (qs, ok) in [
            ("filter[status]=ACTIVE", true),
            ("filter[status]=ACTIVE,EXPIRED", true),
            ("filter[status]=ACTIVE,%20EXPIRED", false),
            ("filter[status]=ACTIVE+", false),
            ("filter[status]=%09ACTIVE", false),
            ("filter[status]=ACTIVE%C2%A0", false),
            ("filter[status]=ACTIVE,", false),
            ("filter[status]=", false),
            ("filter[status]=active", false),
        ] {
            let q = Query::parse(qs, &[KNOWN]).expect("known");
            assert_eq!(license_filter(&q).is_ok(), ok, "{qs}");
        }
        let q = Query::parse("filter[active_at]=253402300800", &[KNOWN]).expect("known");
        assert!(license_filter(&q).is_err(), "after the year 9999");
        let q = Query::parse("filter[active_at]=253402300799", &[KNOWN]).expect("known");
        assert!(license_filter(&q).is_ok());
    }

    #[test]
    fn bad_values_name_their_parameter() {
        for (qs, param) in [
            ("filter[status]=GONE", "filter[status]"),
            ("filter[active_at]=soon", "filter[active_at]"),
            ("page[size]=0", "page[size]"),
            ("page[size]=1001", "page[size]"),
            ("filter[user]=", "filter[user]"),
        ] {
            let q = Query::parse(qs, &[KNOWN]).expect("known");
            let e = license_filter(&q)
                .and_then(|_| page_request(&q))
                .expect_err(qs);
            assert_eq!(e.status(), StatusCode::BAD_REQUEST);
            assert_eq!(
                e.errors()[0].source,
                Some(crate::jsonapi::Source::Parameter(param.to_owned())),
                "{qs}"
            );
        }
        assert_eq!(page_request(&Query::default()).map(|p| p.size), Ok(100));
    }

    #[test]
    fn the_explain_call_needs_a_channel_and_a_service() {
        let parse =
            |qs: &str| Query::parse(qs, &[AccessParams::NAMES]).and_then(|q| access_query(&q));
        let (channel, service) = parse("channel=42&service=npvr").expect("valid");
        assert_eq!((channel.as_str(), service), ("42", Service::Npvr));
        for (qs, parameter, code) in [
            ("service=live", "channel", "missing_parameter"),
            ("channel=42", "service", "missing_parameter"),
            ("", "channel", "missing_parameter"),
            ("channel=&service=live", "channel", "invalid_parameter"),
            ("channel=a%20b&service=live", "channel", "invalid_parameter"),
            ("channel=42&service=LIVE", "service", "invalid_parameter"),
            ("channel=42&service=", "service", "invalid_parameter"),
            (
                "channel=42&channel=43&service=live",
                "channel",
                "repeated_parameter",
            ),
        ] {
            let e = parse(qs).expect_err(qs);
            assert_eq!(
                (e.status(), e.errors()[0].code),
                (StatusCode::BAD_REQUEST, code),
                "{qs}"
            );
            assert_eq!(
                e.errors()[0].source,
                Some(crate::jsonapi::Source::Parameter(parameter.to_owned())),
                "{qs}"
            );
        }
    }
}
