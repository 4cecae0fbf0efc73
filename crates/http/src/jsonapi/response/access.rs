//! Why a user may or may not watch a service on a channel, as a document: one `Access`
//! resource (id `{user}:{channel}:{service}`), its reasons, and the licenses that decided it.
//!
//! Each audience has its own types. The management API shows everything, with the deciding
//! licenses and their products in `included`. The user API shows less: each reason's code,
//! license, product and time, but neither the DRM job (its state, attempts and errors are the
//! operator's) nor the `detail` sentence (it quotes the DRM's refusal and internal ids);
//! nothing is included (the user reads their licenses with the licenses call).

use licenses_domain::{DrmJobState, Explanation, Reason, ReasonCode, Service, Timestamp, UserId};
use serde::Serialize;
use utoipa::ToSchema;

use super::license::{License, license_resource};
use super::product::{ManagementProduct, management_product};
use super::{Audience, Links};
use crate::jsonapi::resource_type::{AccessType, LicenseType};
use crate::query::ServiceName;

/// The open DRM (Irdeto) job of a license waiting for its entitlement.
#[derive(Debug, Serialize, ToSchema)]
pub struct DrmJobView<'a> {
    pub state: DrmJobState,
    /// Deliveries tried so far.
    pub attempts: u32,
    /// Why the last try failed (`null`: it did not, or was not tried yet).
    #[schema(required = true)]
    pub last_error: Option<&'a str>,
}

/// One reason the user may not watch, with the license and product that decided it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManagementReason<'a> {
    pub code: ReasonCode,
    /// The license (`null` only for `no_license`).
    #[schema(required = true)]
    pub license: Option<&'a str>,
    /// The license's product (`null` only for `no_license`).
    #[schema(required = true)]
    pub product: Option<&'a str>,
    /// Unix seconds: the stop date (`license_expired`) or the start date (`not_started_yet`).
    #[schema(required = true)]
    pub at: Option<i64>,
    /// The open DRM job (`waiting_for_drm`, when one is known).
    #[schema(required = true)]
    pub drm: Option<DrmJobView<'a>>,
    /// The reason in a sentence, for people; not stable.
    pub detail: &'a str,
}

/// One reason the user may not watch, with the license and product that decided it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserReason<'a> {
    pub code: ReasonCode,
    /// The license (`null` only for `no_license`).
    #[schema(required = true)]
    pub license: Option<&'a str>,
    /// The license's product (`null` only for `no_license`).
    #[schema(required = true)]
    pub product: Option<&'a str>,
    /// Unix seconds: the stop date (`license_expired`) or the start date (`not_started_yet`).
    #[schema(required = true)]
    pub at: Option<i64>,
}

/// Whether the user may watch, until when, and why not.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManagementAccessAttributes<'a> {
    pub user: &'a str,
    pub channel: &'a str,
    pub service: ServiceName,
    /// When it was decided (unix seconds).
    pub at: i64,
    pub allowed: bool,
    /// When allowed, until when (unix seconds; `null`: no end). `null` when not allowed.
    #[schema(required = true)]
    pub until: Option<i64>,
    /// Why not: at least one reason when not allowed, none when allowed.
    pub reasons: Vec<ManagementReason<'a>>,
}

/// Whether the user may watch, until when, and why not.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserAccessAttributes<'a> {
    pub user: &'a str,
    pub channel: &'a str,
    pub service: ServiceName,
    /// When it was decided (unix seconds).
    pub at: i64,
    pub allowed: bool,
    /// When allowed, until when (unix seconds; `null`: no end). `null` when not allowed.
    #[schema(required = true)]
    pub until: Option<i64>,
    /// Why not: at least one reason when not allowed, none when allowed.
    pub reasons: Vec<UserReason<'a>>,
}

#[derive(Debug, Serialize, ToSchema)]
/// A license that decided the answer, by id.
pub struct DecidingLicense<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: LicenseType,
}

/// The licenses that decided: those granting it when allowed, else those the reasons name.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecidingLicenses<'a> {
    pub data: Vec<DecidingLicense<'a>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessRelationships<'a> {
    pub licenses: DecidingLicenses<'a>,
}

/// Whether a user may watch a service on a channel, and why (management API).
#[derive(Debug, Serialize, ToSchema)]
pub struct ManagementAccess<'a> {
    /// `{user}:{channel}:{service}`.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: AccessType,
    pub attributes: ManagementAccessAttributes<'a>,
    pub relationships: AccessRelationships<'a>,
}

/// Whether the user may watch a service on a channel, and why (user API).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserAccess<'a> {
    /// `{user}:{channel}:{service}`.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: AccessType,
    pub attributes: UserAccessAttributes<'a>,
    pub relationships: AccessRelationships<'a>,
}

/// A resource an access document includes: a deciding license or its product.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum AccessIncluded<'a> {
    License(License<'a>),
    Product(ManagementProduct<'a>),
}

/// The explain call's answer on the management API: the deciding licenses, then their
/// products, in `included`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"data": {"id": "41:42:live", "type": "Access", "attributes": {
    "user": "41", "channel": "42", "service": "live", "at": 1523268670, "allowed": false,
    "until": null, "reasons": [{"code": "waiting_for_drm", "license": "43", "product": "44",
    "at": null, "drm": {"state": "retrying", "attempts": 3, "last_error": "HTTP 503"},
    "detail": "license 43 (product 44) waits for its DRM entitlement: job retrying, 3 attempt(s), last error: HTTP 503"}]},
    "relationships": {"licenses": {"data": [{"id": "43", "type": "License"}]}}}, "included": []}))]
pub struct ManagementAccessDocument<'a> {
    pub data: ManagementAccess<'a>,
    pub included: Vec<AccessIncluded<'a>>,
}

/// The explain call's answer on the user API.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"data": {"id": "41:42:live", "type": "Access", "attributes": {
    "user": "41", "channel": "42", "service": "live", "at": 1523268670, "allowed": false,
    "until": null, "reasons": [{"code": "license_expired", "license": "43", "product": "44",
    "at": 1523268666}]}, "relationships": {"licenses": {"data": [{"id": "43", "type":
    "License"}]}}}}))]
pub struct UserAccessDocument<'a> {
    pub data: UserAccess<'a>,
}

/// What was asked and answered, for both audiences.
#[derive(Debug, Clone, Copy)]
pub struct AccessQuestion<'a> {
    pub user: &'a UserId,
    pub channel: &'a licenses_domain::ChannelId,
    pub service: Service,
    pub at: Timestamp,
    pub explanation: &'a Explanation,
}

impl<'a> AccessQuestion<'a> {
    fn id(&self) -> String {
        format!("{}:{}:{}", self.user, self.channel, self.service)
    }

    fn service(&self) -> ServiceName {
        match self.service {
            Service::Live => ServiceName::Live,
            Service::Npvr => ServiceName::Npvr,
            Service::Catchup => ServiceName::Catchup,
            Service::Startover => ServiceName::Startover,
        }
    }

    fn relationships(&self) -> AccessRelationships<'a> {
        AccessRelationships {
            licenses: DecidingLicenses {
                data: self
                    .explanation
                    .deciding_licenses()
                    .into_iter()
                    .map(|id| DecidingLicense {
                        id: id.as_str(),
                        kind: LicenseType::License,
                    })
                    .collect(),
            },
        }
    }
}

fn ids(r: &Reason) -> (Option<&str>, Option<&str>, Option<i64>) {
    (
        r.license.as_ref().map(|l| l.as_str()),
        r.product.as_ref().map(|p| p.as_str()),
        r.at.map(Timestamp::unix),
    )
}

/// The management API's document: every reason in full, and `licenses` (the deciding ones)
/// with their `products` in `included`.
pub fn management_access_document<'a>(
    q: AccessQuestion<'a>,
    licenses: &'a [licenses_domain::License],
    products: &'a [licenses_domain::Product],
    links: &Links,
) -> ManagementAccessDocument<'a> {
    let e = q.explanation;
    let reasons = e
        .reasons
        .iter()
        .map(|r| {
            let (license, product, at) = ids(r);
            ManagementReason {
                code: r.code,
                license,
                product,
                at,
                drm: r.drm.as_ref().map(|d| DrmJobView {
                    state: d.state,
                    attempts: d.attempts,
                    last_error: d.last_error.as_deref(),
                }),
                detail: &r.detail,
            }
        })
        .collect();
    let included = licenses
        .iter()
        .map(|l| {
            let link = links.resource("/licenses/", l.id().as_str());
            AccessIncluded::License(license_resource(l, q.at, Audience::Management, Some(link)))
        })
        .chain(products.iter().map(|p| {
            let link = links.resource("/products/", p.id().as_str());
            AccessIncluded::Product(management_product(p, link))
        }))
        .collect();
    ManagementAccessDocument {
        data: ManagementAccess {
            id: q.id(),
            kind: AccessType::Access,
            attributes: ManagementAccessAttributes {
                user: q.user.as_str(),
                channel: q.channel.as_str(),
                service: q.service(),
                at: q.at.unix(),
                allowed: e.allowed,
                until: e.until.map(Timestamp::unix),
                reasons,
            },
            relationships: q.relationships(),
        },
        included,
    }
}

/// The user API's document: each reason's code, license, product and time only.
pub fn user_access_document(q: AccessQuestion<'_>) -> UserAccessDocument<'_> {
    let e = q.explanation;
    let reasons = e
        .reasons
        .iter()
        .map(|r| {
            let (license, product, at) = ids(r);
            UserReason {
                code: r.code,
                license,
                product,
                at,
            }
        })
        .collect();
    UserAccessDocument {
        data: UserAccess {
            id: q.id(),
            kind: AccessType::Access,
            attributes: UserAccessAttributes {
                user: q.user.as_str(),
                channel: q.channel.as_str(),
                service: q.service(),
                at: q.at.unix(),
                allowed: e.allowed,
                until: e.until.map(Timestamp::unix),
                reasons,
            },
            relationships: q.relationships(),
        },
    }
}

#[cfg(test)]
mod tests {
    use licenses_domain::{ChannelId, DrmJob, LicenseId, ProductId};

    use super::*;

    #[test]
    fn the_user_document_hides_the_drm_job_and_the_detail() {
        let user = UserId::parse("u1").expect("id");
        let channel = ChannelId::parse("42").expect("id");
        let explanation = Explanation {
            allowed: false,
            until: None,
            granted_by: vec![],
            reasons: vec![Reason {
                code: ReasonCode::WaitingForDrm,
                license: Some(LicenseId::parse("l1").expect("id")),
                product: Some(ProductId::parse("p1").expect("id")),
                at: None,
                drm: Some(DrmJob {
                    state: DrmJobState::Failed,
                    attempts: 10,
                    last_error: Some("secret upstream error".into()),
                }),
                detail: "license l1 waits: secret upstream error".into(),
            }],
        };
        let q = AccessQuestion {
            user: &user,
            channel: &channel,
            service: Service::Catchup,
            at: Timestamp::from_unix(7),
            explanation: &explanation,
        };
        let user_doc = serde_json::to_value(user_access_document(q)).expect("json");
        assert_eq!(
            user_doc,
            serde_json::json!({"data": {"id": "u1:42:catchup", "type": "Access", "attributes": {
                "user": "u1", "channel": "42", "service": "catchup", "at": 7, "allowed": false,
                "until": null, "reasons": [{"code": "waiting_for_drm", "license": "l1",
                "product": "p1", "at": null}]},
                "relationships": {"licenses": {"data": [{"id": "l1", "type": "License"}]}}}})
        );
        assert!(!user_doc.to_string().contains("secret"));
        let req = actix_web::test::TestRequest::default().to_http_request();
        let links = Links::new(&req, "/m");
        let doc =
            serde_json::to_value(management_access_document(q, &[], &[], &links)).expect("json");
        let reason = &doc["data"]["attributes"]["reasons"][0];
        assert_eq!(
            reason["drm"],
            serde_json::json!({"state": "failed", "attempts": 10, "last_error": "secret upstream error"})
        );
        assert_eq!(reason["detail"], "license l1 waits: secret upstream error");
        assert_eq!(doc["included"], serde_json::json!([]));
    }
}
