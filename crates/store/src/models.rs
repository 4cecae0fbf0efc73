//! Row structs and their mapping to and from domain values. A row that no longer validates
//! becomes [`StoreError::Internal`](licenses_app::ports::StoreError::Internal), never a panic.

use diesel::prelude::*;
use licenses_app::ports::{
    AuditEntry, IdempotencyRecord, JobKind, NewEntitlementJob, StoredResponse,
};
use licenses_domain::{
    ChannelId, Currency, License, LicenseDefaultsDraft, LicenseId, LicenseState, OrderId, Price,
    PriceDraft, Product, ProductDraft, ProductId, Service, StoredParts, Timestamp, UserId,
};

use crate::error::{Error, corrupt};
use crate::schema::{audit_log, entitlement_jobs, idempotency_keys, licenses, products};

/// Also an event's snapshot of a product (serde: the store's own JSON of it).
#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize, serde::Deserialize)]
#[diesel(table_name = products, treat_none_as_default_value = false)]
pub(crate) struct ProductRow {
    pub id: String,
    pub title: String,
    pub description: String,
    pub product_type: String,
    pub is_premium: bool,
    pub is_user_visible: bool,
    pub is_buyable: bool,
    pub auto_grant_on_signup: bool,
    pub price_amount: Option<i64>,
    pub price_currency: Option<String>,
    pub license_duration: Option<i64>,
    pub license_auto_renew: bool,
    pub irdeto_product_id: Option<String>,
    pub live_channels: String,
    pub npvr_channels: String,
    pub catchup_channels: String,
    pub startover_channels: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The columns an update replaces (not `id`, not `created_at`).
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = products, treat_none_as_null = true)]
pub(crate) struct ProductChanges {
    pub title: String,
    pub description: String,
    pub product_type: String,
    pub is_premium: bool,
    pub is_user_visible: bool,
    pub is_buyable: bool,
    pub auto_grant_on_signup: bool,
    pub price_amount: Option<i64>,
    pub price_currency: Option<String>,
    pub license_duration: Option<i64>,
    pub license_auto_renew: bool,
    pub irdeto_product_id: Option<String>,
    pub live_channels: String,
    pub npvr_channels: String,
    pub catchup_channels: String,
    pub startover_channels: String,
    pub updated_at: i64,
}

fn channel_list(product: &Product, service: Service) -> String {
    let ids: Vec<&str> = product
        .channels()
        .channels(service)
        .iter()
        .map(ChannelId::as_str)
        .collect();
    // Serialising a list of strings cannot fail.
    serde_json::to_string(&ids).unwrap_or_else(|_| "[]".to_owned())
}

impl ProductRow {
    pub(crate) fn from_domain(p: &Product, at: Timestamp) -> Self {
        let c = ProductChanges::from_domain(p, at);
        Self {
            id: p.id().as_str().to_owned(),
            title: c.title,
            description: c.description,
            product_type: c.product_type,
            is_premium: c.is_premium,
            is_user_visible: c.is_user_visible,
            is_buyable: c.is_buyable,
            auto_grant_on_signup: c.auto_grant_on_signup,
            price_amount: c.price_amount,
            price_currency: c.price_currency,
            license_duration: c.license_duration,
            license_auto_renew: c.license_auto_renew,
            irdeto_product_id: c.irdeto_product_id,
            live_channels: c.live_channels,
            npvr_channels: c.npvr_channels,
            catchup_channels: c.catchup_channels,
            startover_channels: c.startover_channels,
            created_at: at.unix(),
            updated_at: at.unix(),
        }
    }

    pub(crate) fn into_domain(self) -> Result<Product, Error> {
        let id = ProductId::parse(&self.id).map_err(|e| corrupt(format!("product id: {e}")))?;
        let list = |json: &str| -> Result<Vec<String>, Error> {
            serde_json::from_str(json)
                .map_err(|e| corrupt(format!("product {id}: channel list: {e}")))
        };
        let draft = ProductDraft {
            title: Some(self.title),
            description: Some(self.description),
            product_type: Some(self.product_type),
            is_premium: Some(self.is_premium),
            is_user_visible: Some(self.is_user_visible),
            is_buyable: Some(self.is_buyable),
            auto_grant_on_signup: Some(self.auto_grant_on_signup),
            price_record: match (self.price_amount, self.price_currency) {
                (None, None) => None,
                (amount, currency) => Some(PriceDraft { amount, currency }),
            },
            license_defaults: Some(LicenseDefaultsDraft {
                duration: self.license_duration,
                auto_renew: Some(self.license_auto_renew),
            }),
            irdeto_product_id: self.irdeto_product_id,
            channels: [
                list(&self.live_channels)?,
                list(&self.npvr_channels)?,
                list(&self.catchup_channels)?,
                list(&self.startover_channels)?,
            ],
        };
        Product::new(id.clone(), draft).map_err(|v| corrupt(format!("product {id}: {v}")))
    }
}

impl ProductChanges {
    pub(crate) fn from_domain(p: &Product, at: Timestamp) -> Self {
        let price = p.price_record();
        let defaults = p.license_defaults();
        Self {
            title: p.title().to_owned(),
            description: p.description().to_owned(),
            product_type: p.product_type().as_str().to_owned(),
            is_premium: p.is_premium(),
            is_user_visible: p.is_user_visible(),
            is_buyable: p.is_buyable(),
            auto_grant_on_signup: p.auto_grant_on_signup(),
            price_amount: price.map(|p| p.amount()),
            price_currency: price.map(|p| p.currency().code().to_owned()),
            license_duration: defaults
                .duration()
                .map(|d| i64::try_from(d).unwrap_or(i64::MAX)),
            license_auto_renew: defaults.auto_renew(),
            irdeto_product_id: p.irdeto_product_id().map(str::to_owned),
            live_channels: channel_list(p, Service::Live),
            npvr_channels: channel_list(p, Service::Npvr),
            catchup_channels: channel_list(p, Service::Catchup),
            startover_channels: channel_list(p, Service::Startover),
            updated_at: at.unix(),
        }
    }
}

/// Also an event's snapshot of a license (serde: the store's own JSON of it).
#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize, serde::Deserialize)]
#[diesel(table_name = licenses, treat_none_as_default_value = false)]
pub(crate) struct LicenseRow {
    pub id: String,
    pub user_id: String,
    pub product_id: String,
    pub status: String,
    pub requested_status: Option<String>,
    pub status_reason: Option<String>,
    pub start_date: i64,
    pub stop_date: Option<i64>,
    pub order_id: Option<String>,
    pub price_amount: Option<i64>,
    pub price_currency: Option<String>,
    pub purchase_timestamp: i64,
    pub payment_method: Option<String>,
    pub recurring: bool,
    pub expiry_date: Option<i64>,
    pub created_at: i64,
}

/// Columns of [`LicenseRow`]: sixteen bind parameters per row in an INSERT.
pub(crate) const LICENSE_COLUMNS: usize = 16;

impl LicenseRow {
    pub(crate) fn from_domain(l: &License, at: Timestamp) -> Self {
        let state = l.state();
        let purchase = l.purchase_record();
        let price = purchase.price();
        let renew = l.renew_record();
        Self {
            id: l.id().as_str().to_owned(),
            user_id: l.user().as_str().to_owned(),
            product_id: l.product().as_str().to_owned(),
            status: state.status().as_str().to_owned(),
            requested_status: state.requested().map(|r| r.status().as_str().to_owned()),
            status_reason: state.reason().map(str::to_owned),
            start_date: l.start_date().unix(),
            stop_date: l.stop_date().map(Timestamp::unix),
            order_id: l.order_id().map(|o| o.as_str().to_owned()),
            price_amount: price.map(|p| p.amount()),
            price_currency: price.map(|p| p.currency().code().to_owned()),
            purchase_timestamp: purchase.purchase_timestamp().unix(),
            payment_method: purchase.payment_method().map(str::to_owned),
            recurring: renew.recurring(),
            expiry_date: renew.expiry_date().map(Timestamp::unix),
            created_at: at.unix(),
        }
    }

    pub(crate) fn into_domain(self) -> Result<License, Error> {
        let id = LicenseId::parse(self.id).map_err(|e| corrupt(format!("license id: {e}")))?;
        let bad =
            |what: &str, e: &dyn std::fmt::Display| corrupt(format!("license {id}: {what}: {e}"));
        let user = UserId::parse(self.user_id).map_err(|e| bad("user id", &e))?;
        let product = ProductId::parse(self.product_id).map_err(|e| bad("product id", &e))?;
        let state = LicenseState::from_parts(
            &self.status,
            self.requested_status.as_deref(),
            self.status_reason,
        )
        .map_err(|e| bad("status", &e))?;
        let order_id = self
            .order_id
            .map(OrderId::parse)
            .transpose()
            .map_err(|e| bad("order id", &e))?;
        let price = match (self.price_amount, self.price_currency) {
            (None, None) => None,
            (Some(amount), Some(code)) => {
                let currency = Currency::parse(&code).ok_or_else(|| bad("currency", &code))?;
                Some(Price::new(amount, currency).map_err(|e| bad("price", &e))?)
            }
            _ => return Err(bad("price", &"amount without currency or the reverse")),
        };
        License::restore(StoredParts {
            id: id.clone(),
            user,
            product,
            state,
            start_date: Timestamp::from_unix(self.start_date),
            stop_date: self.stop_date.map(Timestamp::from_unix),
            order_id,
            price,
            purchase_timestamp: Timestamp::from_unix(self.purchase_timestamp),
            payment_method: self.payment_method,
            recurring: self.recurring,
            expiry_date: self.expiry_date.map(Timestamp::from_unix),
        })
        .map_err(|v| bad("row", &v))
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = idempotency_keys, treat_none_as_default_value = false)]
pub(crate) struct IdempotencyRow {
    pub scope: String,
    pub key: String,
    pub fingerprint: String,
    pub response_status: i32,
    pub response_body: Vec<u8>,
    pub created_at: i64,
}

impl IdempotencyRow {
    pub(crate) fn from_domain(r: &IdempotencyRecord) -> Self {
        Self {
            scope: r.scope.clone(),
            key: r.key.clone(),
            fingerprint: r.fingerprint.clone(),
            response_status: i32::from(r.response.status),
            response_body: r.response.body.clone(),
            created_at: r.created_at.unix(),
        }
    }

    pub(crate) fn into_domain(self) -> Result<IdempotencyRecord, Error> {
        let status = u16::try_from(self.response_status)
            .map_err(|e| corrupt(format!("idempotency response status: {e}")))?;
        Ok(IdempotencyRecord {
            scope: self.scope,
            key: self.key,
            fingerprint: self.fingerprint,
            response: StoredResponse {
                status,
                body: self.response_body,
            },
            created_at: Timestamp::from_unix(self.created_at),
        })
    }
}

/// The audit trail's verbs: the application's, stored as their codes.
pub(crate) use licenses_app::ports::AuditAction as Action;

/// What the audit trail names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    Product,
    License,
}

impl Resource {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Product => "product",
            Self::License => "license",
        }
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = audit_log, treat_none_as_default_value = false)]
pub(crate) struct NewAuditRow {
    pub action: &'static str,
    pub resource_type: &'static str,
    pub resource_id: String,
    pub occurred_at: i64,
    pub actor: String,
    /// The other license of a replacement (suspension, reinstatement).
    pub related_id: Option<String>,
}

/// Columns of [`NewAuditRow`].
pub(crate) const AUDIT_COLUMNS: usize = 6;

impl NewAuditRow {
    pub(crate) fn new(
        action: Action,
        resource: Resource,
        id: &str,
        at: Timestamp,
        actor: &str,
    ) -> Self {
        Self {
            action: action.as_str(),
            resource_type: resource.as_str(),
            resource_id: id.to_owned(),
            occurred_at: at.unix(),
            actor: actor.to_owned(),
            related_id: None,
        }
    }

    /// The row of a license replaced by (or replacing) `related`.
    pub(crate) fn related(self, related: &str) -> Self {
        Self {
            related_id: Some(related.to_owned()),
            ..self
        }
    }
}

/// An audit row as read back, for a license's trail.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub(crate) struct AuditRow {
    pub action: String,
    pub occurred_at: i64,
    pub actor: String,
    pub related_id: Option<String>,
}

impl AuditRow {
    pub(crate) fn into_entry(self) -> Result<AuditEntry, Error> {
        let action = Action::parse(&self.action)
            .ok_or_else(|| corrupt(format!("unknown audit action {:?}", self.action)))?;
        let related = self
            .related_id
            .map(|id| LicenseId::parse(id).map_err(|e| corrupt(format!("audit related id {e}"))))
            .transpose()?;
        Ok(AuditEntry {
            at: Timestamp::from_unix(self.occurred_at),
            action,
            actor: self.actor,
            related,
        })
    }
}

/// Job states, as stored.
pub(crate) const JOB_PENDING: &str = "PENDING";

pub(crate) fn job_kind_code(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Grant => "GRANT",
        JobKind::Revoke => "REVOKE",
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = entitlement_jobs, treat_none_as_default_value = false)]
pub(crate) struct NewJobRow {
    pub kind: &'static str,
    pub license_id: String,
    pub user_id: String,
    pub irdeto_product: String,
    pub valid_from: i64,
    pub valid_until: Option<i64>,
    pub state: &'static str,
    pub attempts: i32,
    pub due_at: i64,
    pub created_at: i64,
}

/// Columns of [`NewJobRow`].
pub(crate) const JOB_COLUMNS: usize = 10;

impl NewJobRow {
    pub(crate) fn new(job: &NewEntitlementJob, at: Timestamp) -> Self {
        Self {
            kind: job_kind_code(job.kind),
            license_id: job.license.as_str().to_owned(),
            user_id: job.user.as_str().to_owned(),
            irdeto_product: job.irdeto_product.clone(),
            valid_from: job.valid_from.unix(),
            valid_until: job.valid_until.map(Timestamp::unix),
            state: JOB_PENDING,
            attempts: 0,
            due_at: at.unix(),
            created_at: at.unix(),
        }
    }
}
