//! Use cases of the user API: the catalogue, a user's licenses, purchase and entitlements.

use std::sync::Arc;

use licenses_domain::{
    Activation, Entitlements, License, LicenseDraft, LicenseStatus, Product, ProductId,
    PurchaseDraft, Timestamp, UserId, resolve,
};

use crate::error::{AppError, Problem};
use crate::idempotency::{IdempotencyKey, earlier_answer, settle_conflict};
use crate::licenses::creation_refused;
use crate::ports::{Actor, Change, LicenseQuery, StoredResponse};
use crate::{App, Snapshot};

/// The only payment method there is (seed 002): the operator's billing system charges.
pub const BILLING: &str = "billing";

/// Licenses read per store call while gathering all of a user's licenses.
const USER_PAGE: u32 = 1_000;

/// A purchase as the user's app asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseRequest {
    pub user: UserId,
    /// Whether the user's token carries `LICENSE_PURCHASE_RESTRICTED`.
    pub restricted: bool,
    pub product: Option<String>,
    pub payment_method: Option<String>,
    pub order_id: Option<String>,
}

/// A user's licenses, and the catalogue snapshot their products come from.
#[derive(Debug)]
pub struct UserLicenses {
    pub licenses: Vec<License>,
    /// The catalogue in memory; `None` when there is no license, so no product to read.
    pub catalogue: Option<Arc<Snapshot>>,
    /// The time the licenses' statuses are read at.
    pub now: Timestamp,
}

impl UserLicenses {
    /// The products the licenses refer to, each once, in id order.
    pub fn products(&self) -> Vec<&Product> {
        self.catalogue
            .as_ref()
            .map_or_else(Vec::new, |c| c.products_of(&self.licenses))
    }
}

impl App {
    /// The products users may see, in id order (from the catalogue in memory).
    pub async fn catalogue(&self) -> Result<Vec<Product>, AppError> {
        Ok(self
            .catalogue_snapshot()
            .await?
            .visible()
            .cloned()
            .collect())
    }

    /// The catalogue in memory: every product at one version. No database access unless
    /// there has never been a snapshot (then it is loaded, or the store's error answers).
    pub async fn catalogue_snapshot(&self) -> Result<Arc<Snapshot>, AppError> {
        Ok(self.catalogue.snapshot().await?)
    }

    /// Reloads the catalogue in memory if the store's change marker moved: the refresher's
    /// call, every `catalogue.refresh_ms`. Whether it reloaded; on an error the snapshot in
    /// hand is kept.
    pub async fn refresh_catalogue(&self) -> Result<bool, AppError> {
        Ok(self.catalogue.refresh().await?)
    }

    /// The products `licenses` refer to, in id order, from the catalogue in memory (the
    /// user API's reads; the management API reads the store).
    pub async fn user_products_of(&self, licenses: &[License]) -> Result<Vec<Product>, AppError> {
        if licenses.is_empty() {
            return Ok(Vec::new());
        }
        let snapshot = self.catalogue_snapshot().await?;
        Ok(snapshot
            .products_of(licenses)
            .into_iter()
            .cloned()
            .collect())
    }

    /// All of a user's licenses with any of `statuses` (all when empty), with the catalogue
    /// their products are read from ([`UserLicenses::products`]).
    pub async fn user_licenses(
        &self,
        user: &UserId,
        statuses: Vec<LicenseStatus>,
    ) -> Result<UserLicenses, AppError> {
        let now = self.ports.clock.now();
        let licenses = self.all_licenses(user, statuses, None, now).await?;
        let catalogue = if licenses.is_empty() {
            None
        } else {
            Some(self.catalogue_snapshot().await?)
        };
        Ok(UserLicenses {
            licenses,
            catalogue,
            now,
        })
    }

    pub(crate) async fn all_licenses(
        &self,
        user: &UserId,
        statuses: Vec<LicenseStatus>,
        active_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Vec<License>, AppError> {
        let mut query = LicenseQuery {
            user: Some(user.clone()),
            product: None,
            statuses,
            active_at,
            now,
            after: None,
            limit: USER_PAGE,
        };
        let mut all = Vec::new();
        loop {
            let page = self.ports.licenses.find(&query).await?;
            let full = page.len() == USER_PAGE as usize;
            query.after = page.last().map(|l| l.id().clone());
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }

    /// What the user may watch now: for each channel, the services and until when.
    pub async fn entitlements(&self, user: &UserId) -> Result<(Entitlements, Timestamp), AppError> {
        let now = self.ports.clock.now();
        let licenses = self.all_licenses(user, Vec::new(), Some(now), now).await?;
        if licenses.is_empty() {
            return Ok((resolve(&licenses, |_| None, now), now));
        }
        let catalogue = self.catalogue_snapshot().await?;
        Ok((resolve(&licenses, |id| catalogue.get(id), now), now))
    }

    /// A user buys a product (PurchaseUserLicense). The idempotency key is required, and is
    /// the order id when the app sends none: a retried purchase never bills twice.
    ///
    /// The key is not looked up first: its record is written in the purchase's transaction,
    /// which a used key refuses, and only then is the earlier answer read (one store call
    /// per purchase, not two). A request that is refused before it reaches the store is
    /// also checked against its key: a retry answers as its first use did, even when the
    /// product has since been withdrawn.
    pub async fn purchase(
        &self,
        request: PurchaseRequest,
        key: IdempotencyKey,
        render: impl FnOnce(&License, &Product, Timestamp) -> StoredResponse + Send,
    ) -> Result<StoredResponse, AppError> {
        if request.restricted {
            return Err(AppError::Forbidden(Problem::new(
                None,
                "purchase_restricted",
                "this user may not purchase (LICENSE_PURCHASE_RESTRICTED)",
            )));
        }
        let idem = self.ports.idempotency.as_ref();
        let now = self.ports.clock.now();
        let user = request.user.clone();
        let (license, product) = match self.granted(request, &key, now).await {
            Ok(granted) => granted,
            Err(refused) => {
                return match earlier_answer(idem, Some(&key)).await? {
                    Some(answer) => Ok(answer),
                    None => Err(refused),
                };
            }
        };
        let response = render(&license, &product, now);
        let change = Change {
            actor: Actor::User(user),
            at: now,
            idempotency: Some(key.record(&response, now)),
        };
        match self
            .store_new_licenses(std::slice::from_ref(&license), &change)
            .await
        {
            Ok(()) => Ok(response),
            Err(e) => settle_conflict(idem, Some(&key), e, |e| creation_refused(e, false)).await,
        }
    }

    /// The license a purchase grants, and its product; or why the purchase is refused.
    async fn granted(
        &self,
        request: PurchaseRequest,
        key: &IdempotencyKey,
        now: Timestamp,
    ) -> Result<(License, Product), AppError> {
        match request.payment_method.as_deref() {
            Some(BILLING) => {}
            None => {
                return Err(AppError::invalid(
                    "/data/attributes/payment_method",
                    "required",
                    "a purchase names its payment_method: billing",
                ));
            }
            Some(_) => {
                return Err(AppError::invalid(
                    "/data/attributes/payment_method",
                    "unsupported_payment_method",
                    "the only payment method is billing",
                ));
            }
        }
        let Some(product) = request.product.as_deref() else {
            return Err(AppError::invalid(
                "/data/relationships/product",
                "required",
                "a purchase names the product it buys",
            ));
        };
        let product_id = ProductId::parse(product).map_err(|e| {
            AppError::invalid(
                "/data/relationships/product/data/id",
                "invalid_id",
                format!("product id {e}"),
            )
        })?;
        // From memory: a product deleted since is caught by the store's reference check
        // (Conflict::ProductGone) when the license is written.
        let snapshot = self.catalogue_snapshot().await?;
        let product = snapshot.get(&product_id).cloned().ok_or_else(|| {
            AppError::NotFound(Problem::new(
                Some("/data/relationships/product".to_owned()),
                "product_not_found",
                "no product has this id",
            ))
        })?;
        if !product.is_buyable() {
            return Err(AppError::invalid(
                "/data/relationships/product",
                "product_not_buyable",
                "this product cannot be purchased",
            ));
        }
        let draft = LicenseDraft {
            user: Some(request.user.to_string()),
            product: Some(product_id.to_string()),
            order_id: Some(request.order_id.unwrap_or_else(|| key.key.clone())),
            purchase_record: Some(PurchaseDraft {
                payment_method: Some(BILLING.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let activation = if self.needs_entitlement(Some(&product)) {
            Activation::AwaitEntitlement
        } else {
            Activation::Immediate
        };
        let license = License::grant(
            self.ports.ids.license_id(),
            draft,
            Some(&product),
            now,
            activation,
        )
        .map_err(|v| AppError::Invalid(v.into_iter().map(|v| Problem::at("/data", v)).collect()))?;
        Ok((license, product))
    }
}

#[cfg(test)]
mod tests {
    use licenses_domain::{LicenseId, LicenseState, Service};

    use super::*;
    use crate::ports::{Conflict, IdempotencyRecord, StoreError};
    use crate::testing::{Mocks, NOW, channel_product_draft, key, response};

    fn product(id: &str, visible: bool, buyable: bool) -> Product {
        let mut d = channel_product_draft(id);
        d.is_user_visible = Some(visible);
        d.is_buyable = Some(buyable);
        Product::new(ProductId::parse(id).expect("id"), d).expect("valid")
    }

    fn request(product: &str) -> PurchaseRequest {
        PurchaseRequest {
            user: UserId::parse("41").expect("id"),
            restricted: false,
            product: Some(product.into()),
            payment_method: Some(BILLING.into()),
            order_id: None,
        }
    }

    /// The store's catalogue, at version 1: what the catalogue in memory loads.
    fn catalogue(m: &mut Mocks, products: Vec<Product>) {
        m.products.expect_version().returning(|| Ok(1));
        m.products
            .expect_list()
            .times(1)
            .returning(move || Ok(products.clone()));
    }

    fn no_key_yet(m: &mut Mocks) {
        m.idempotency.expect_find().returning(|_, _| Ok(None));
    }

    #[tokio::test]
    async fn the_catalogue_shows_only_visible_products() {
        let mut m = Mocks::new();
        catalogue(
            &mut m,
            vec![product("a", true, true), product("b", false, true)],
        );
        let app = m.app();
        let shown = app.catalogue().await.expect("ok");
        assert_eq!(
            shown.iter().map(|p| p.id().as_str()).collect::<Vec<_>>(),
            ["a"]
        );
        // Again: from memory, the store's list is not read a second time (times(1)).
        assert_eq!(app.catalogue().await.expect("ok").len(), 1);
    }

    #[tokio::test]
    async fn a_purchase_is_billed_once_under_its_key_as_order_id() {
        let mut m = Mocks::new();
        // One store call: the key is taken in the purchase's transaction, not looked up.
        m.idempotency.expect_find().never();
        catalogue(&mut m, vec![product("a", true, true)]);
        m.licenses
            .expect_create()
            .withf(|ls, _, c| {
                let l = &ls[0];
                l.order_id().map(|o| o.as_str()) == Some("key-1")
                    && l.purchase_record().payment_method() == Some(BILLING)
                    && l.state() == &LicenseState::Active
                    && c.actor == Actor::User(UserId::parse("41").expect("id"))
                    && c.idempotency.as_ref().is_some_and(|r| r.key == "key-1")
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        let answer = m
            .app()
            .purchase(request("a"), key("key-1", "f"), |l, _, _| {
                response(201, l.id().as_str())
            })
            .await;
        assert_eq!(answer, Ok(response(201, "l-1")));
    }

    #[tokio::test]
    async fn restricted_users_unbuyable_and_unknown_products_and_other_payments_are_refused() {
        let app = || {
            let mut m = Mocks::new();
            no_key_yet(&mut m);
            m.products.expect_version().returning(|| Ok(1));
            m.products.expect_list().returning(|| {
                Ok(vec![
                    product("gift", true, false),
                    product("shop", true, true),
                ])
            });
            m.app()
        };
        let render = |_: &License, _: &Product, _| response(201, "");
        let mut restricted = request("shop");
        restricted.restricted = true;
        assert!(matches!(
            app().purchase(restricted, key("k", "f"), render).await,
            Err(AppError::Forbidden(_))
        ));
        assert!(matches!(
            app().purchase(request("gone"), key("k", "f"), render).await,
            Err(AppError::NotFound(_))
        ));
        let err = app().purchase(request("gift"), key("k", "f"), render).await;
        assert!(matches!(err, Err(AppError::Invalid(p)) if p[0].code == "product_not_buyable"));
        let mut card = request("shop");
        card.payment_method = Some("card".into());
        let err = app().purchase(card, key("k", "f"), render).await;
        assert!(
            matches!(err, Err(AppError::Invalid(p)) if p[0].pointer.as_deref() == Some("/data/attributes/payment_method"))
        );
    }

    #[tokio::test]
    async fn a_racing_purchase_that_loses_on_the_order_id_replays_the_winner() {
        let mut m = Mocks::new();
        m.idempotency
            .expect_find()
            .times(1)
            .returning(|_, _| Ok(Some(winner())));
        catalogue(&mut m, vec![product("a", true, true)]);
        m.licenses
            .expect_create()
            .returning(|_, _, _| Err(StoreError::Conflict(Conflict::DuplicateOrders(vec![]))));
        let answer = m
            .app()
            .purchase(request("a"), key("k", "f"), |_, _, _| response(201, "mine"))
            .await;
        assert_eq!(answer, Ok(response(201, "winner")));
    }

    fn winner() -> IdempotencyRecord {
        IdempotencyRecord {
            scope: "key:test".into(),
            key: "k".into(),
            fingerprint: "f".into(),
            response: response(201, "winner"),
            created_at: NOW,
        }
    }

    #[tokio::test]
    async fn a_retry_answers_as_its_first_use_though_the_product_is_withdrawn_since() {
        let mut m = Mocks::new();
        m.idempotency
            .expect_find()
            .times(1)
            .returning(|_, _| Ok(Some(winner())));
        catalogue(&mut m, vec![product("a", true, false)]);
        let answer = m
            .app()
            .purchase(request("a"), key("k", "f"), |_, _, _| response(201, "mine"))
            .await;
        assert_eq!(answer, Ok(response(201, "winner")));
    }

    #[tokio::test]
    async fn a_key_used_with_another_request_is_refused_before_the_request_is_judged() {
        let mut m = Mocks::new();
        m.idempotency
            .expect_find()
            .returning(|_, _| Ok(Some(winner())));
        catalogue(&mut m, vec![product("a", true, false)]);
        let err = m
            .app()
            .purchase(request("a"), key("k", "other"), |_, _, _| response(201, ""))
            .await;
        assert!(matches!(err, Err(AppError::Invalid(p)) if p[0].code == "idempotency_key_reused"));
    }

    #[tokio::test]
    async fn an_order_id_taken_by_another_purchase_is_a_conflict() {
        let mut m = Mocks::new();
        no_key_yet(&mut m);
        catalogue(&mut m, vec![product("a", true, true)]);
        m.licenses
            .expect_create()
            .returning(|_, _, _| Err(StoreError::Conflict(Conflict::DuplicateOrders(vec![0]))));
        let err = m
            .app()
            .purchase(request("a"), key("k", "f"), |_, _, _| response(201, ""))
            .await;
        assert!(matches!(err, Err(AppError::Conflict(p)) if p[0].code == "order_id_taken"));
    }

    #[tokio::test]
    async fn a_malformed_product_id_is_pointed_at_and_never_looked_up() {
        let mut m = Mocks::new();
        no_key_yet(&mut m);
        // No expectation on the product store: looking the id up would fail the test.
        let err = m
            .app()
            .purchase(request("has space"), key("k", "f"), |_, _, _| {
                response(201, "")
            })
            .await;
        assert!(matches!(err, Err(AppError::Invalid(p))
            if p[0].code == "invalid_id"
                && p[0].pointer.as_deref() == Some("/data/relationships/product/data/id")));
    }

    #[tokio::test]
    async fn entitlements_resolve_the_licenses_effective_now() {
        let mut m = Mocks::new();
        m.licenses
            .expect_find()
            .withf(|q| {
                q.active_at == Some(NOW) && q.user.as_ref().map(UserId::as_str) == Some("41")
            })
            .returning(|_| {
                let p = product("a", true, true);
                let d = LicenseDraft {
                    user: Some("41".into()),
                    product: Some("a".into()),
                    ..Default::default()
                };
                Ok(vec![
                    License::grant(
                        LicenseId::parse("l").expect("id"),
                        d,
                        Some(&p),
                        NOW,
                        Activation::Immediate,
                    )
                    .expect("ok"),
                ])
            });
        catalogue(
            &mut m,
            vec![product("a", true, true), product("b", true, true)],
        );
        let (e, at) = m
            .app()
            .entitlements(&UserId::parse("41").expect("id"))
            .await
            .expect("ok");
        assert_eq!(at, NOW);
        assert!(e.allows(
            &licenses_domain::ChannelId::parse("42").expect("id"),
            Service::Live
        ));
    }
}
