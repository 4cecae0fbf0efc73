//! The cache itself: the products and each user's licenses as the events left them, and the
//! answers, resolved by the domain's own [`resolve`] — the function behind the service's
//! `GET /users/{id}/entitlements`. No I/O here: [`crate::Feed`] brings the events.

use std::collections::{BTreeMap, HashMap};

use licenses_domain::{
    ChannelId, Entitlements, Grant, License, LicenseId, Product, ProductId, Service, Timestamp,
    UserId, resolve,
};

use crate::wire::{Event, Invalid, LicenseResource, ProductResource, Resource};

/// What [`EntitlementCache::apply`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event changed (or confirmed) what the cache holds.
    Applied,
    /// An event at or before the last position applied: already seen (a page read twice, a
    /// message delivered again), left alone.
    Duplicate,
}

/// The products and every user's licenses, as the license events describe them, and the last
/// position applied.
///
/// Feed it events in position order with [`EntitlementCache::apply`] (or
/// [`crate::Feed::poll`]); ask it with [`EntitlementCache::may_watch`] and
/// [`EntitlementCache::entitlements`].
#[derive(Debug, Clone, Default)]
pub struct EntitlementCache {
    products: HashMap<ProductId, Product>,
    licenses: HashMap<UserId, BTreeMap<LicenseId, License>>,
    /// The position of the last event applied.
    position: Option<i64>,
    /// The last `user_seq` seen per user, to notice a missed event.
    user_seq: HashMap<UserId, i64>,
    gaps: u64,
}

impl EntitlementCache {
    /// An empty cache, to be fed from the start of the feed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one event of the feed (or of the NATS stream: the same resource).
    ///
    /// - a `license.deleted` removes the license;
    /// - every other license event (`created`, `activated`, `order_error`, `updated`,
    ///   `expiring_soon`, `expired`, and any type added later) carries the license as it is
    ///   now: it replaces what the cache holds;
    /// - `product.deleted` removes the product, any other product event replaces it.
    ///
    /// Events are deduplicated by position: one at or before the last position applied is a
    /// [`Applied::Duplicate`] (the same event always has the same position and id).
    ///
    /// # Errors
    /// [`Invalid`] when the resource is not a valid domain value (the cache and the service
    /// disagree on the rules); the cache is left as it was, its position not moved.
    pub fn apply(&mut self, event: &Event) -> Result<Applied, Invalid> {
        let a = &event.attributes;
        if self.position.is_some_and(|p| a.position <= p) {
            return Ok(Applied::Duplicate);
        }
        let deleted = a.event_type.ends_with(".deleted");
        match &a.resource {
            Resource::License(l) => {
                self.apply_license(l, deleted)?;
                if let Some(seq) = a.user_seq {
                    self.note_user_seq(&l.relationships.user.data.id, seq);
                }
            }
            Resource::Product(p) => self.apply_product(p, deleted)?,
        }
        self.position = Some(a.position);
        Ok(Applied::Applied)
    }

    fn apply_license(&mut self, l: &LicenseResource, deleted: bool) -> Result<(), Invalid> {
        if deleted {
            let (user, id) = ids_of(l)?;
            if let Some(licenses) = self.licenses.get_mut(&user) {
                licenses.remove(&id);
                if licenses.is_empty() {
                    self.licenses.remove(&user);
                }
            }
            return Ok(());
        }
        // `None`: rendered EXPIRED, its stored state not shown. The copy the cache holds (if
        // any) has the same stop date, so it grants nothing from now on either; one the
        // cache never held grants nothing at or after this event.
        if let Some(license) = l.to_domain()? {
            self.insert_license(license);
        }
        Ok(())
    }

    fn apply_product(&mut self, p: &ProductResource, deleted: bool) -> Result<(), Invalid> {
        if deleted {
            let id = ProductId::parse(&p.id).map_err(|e| Invalid {
                what: "product",
                id: p.id.clone(),
                why: e.to_string(),
            })?;
            self.products.remove(&id);
        } else {
            let product = p.to_domain()?;
            self.products.insert(product.id().clone(), product);
        }
        Ok(())
    }

    fn insert_license(&mut self, license: License) {
        self.licenses
            .entry(license.user().clone())
            .or_default()
            .insert(license.id().clone(), license);
    }

    fn note_user_seq(&mut self, user: &str, seq: i64) {
        let Ok(user) = UserId::parse(user) else {
            return;
        };
        if let Some(last) = self.user_seq.insert(user, seq)
            && seq != last + 1
        {
            self.gaps += 1;
        }
    }

    /// Replaces everything with the current state read from the management API (a resync
    /// after `410 cursor_expired`), and forgets the position: the feed is then read again from
    /// its oldest kept event, which brings every resource to its latest state again.
    pub fn reset_to(&mut self, products: Vec<Product>, licenses: Vec<License>) {
        *self = Self {
            gaps: self.gaps,
            ..Self::default()
        };
        for p in products {
            self.products.insert(p.id().clone(), p);
        }
        for l in licenses {
            self.insert_license(l);
        }
    }

    /// The position of the last event applied (`None`: none yet): where to resume the feed
    /// (`page[after]`) after a restart, once kept durably.
    pub fn position(&self) -> Option<i64> {
        self.position
    }

    /// How many times a user's `user_seq` did not follow the last one seen: events of that
    /// user were missed (0 while the cache follows the whole feed).
    pub fn gaps(&self) -> u64 {
        self.gaps
    }

    /// The products held, in no particular order.
    pub fn products(&self) -> impl Iterator<Item = &Product> {
        self.products.values()
    }

    /// The licenses held for `user`, in license id order.
    pub fn licenses_of(&self, user: &UserId) -> impl Iterator<Item = &License> {
        self.licenses
            .get(user)
            .into_iter()
            .flat_map(BTreeMap::values)
    }

    /// Every user the cache holds a license of.
    pub fn users(&self) -> impl Iterator<Item = &UserId> {
        self.licenses.keys()
    }

    /// What `user` may watch at `at`: the domain's [`resolve`] over the user's licenses and
    /// the products held, exactly as the service answers `GET /users/{id}/entitlements`.
    pub fn entitlements(&self, user: &UserId, at: Timestamp) -> Entitlements {
        resolve(self.licenses_of(user), |id| self.products.get(id), at)
    }

    /// Whether `user` may watch `channel` with `service` at `at`, and until when: `None` when
    /// not, `Some(Grant { until: None })` without end, `Some(Grant { until: Some(t) })` until
    /// `t` (exclusive: the license's `stop_date`).
    pub fn may_watch(
        &self,
        user: &UserId,
        channel: &ChannelId,
        service: Service,
        at: Timestamp,
    ) -> Option<Grant> {
        self.entitlements(user, at).get(channel, service)
    }
}

fn ids_of(l: &LicenseResource) -> Result<(UserId, LicenseId), Invalid> {
    let invalid = |why: String| Invalid {
        what: "license",
        id: l.id.clone(),
        why,
    };
    Ok((
        UserId::parse(&l.relationships.user.data.id).map_err(|e| invalid(e.to_string()))?,
        LicenseId::parse(&l.id).map_err(|e| invalid(e.to_string()))?,
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn event(position: i64, kind: &str, resource: Value) -> Event {
        serde_json::from_value(json!({"type": "Event", "id": format!("e{position}"),
            "attributes": {"event_type": kind, "occurred_at": 100, "position": position,
                "user_seq": null, "resource": resource}}))
        .expect("an event")
    }

    fn product(id: &str, live: &[&str]) -> Value {
        let data: Vec<Value> = live
            .iter()
            .map(|c| json!({"type": "Channel", "id": c}))
            .collect();
        json!({"id": id, "type": "Product", "attributes": {"title": "t", "description": "",
            "type": "CHANNEL_GROUP", "is_premium": false, "price_record": null,
            "is_user_visible": true, "is_buyable": true, "auto_grant_on_signup": false,
            "license_defaults": {"duration": null, "auto_renew": false},
            "irdeto_product_id": null},
            "relationships": {"live": {"data": data}, "npvr": {"data": []},
                "catchup": {"data": []}, "startover": {"data": []}},
            "links": {"self": "http://x/products/p"}})
    }

    fn license(id: &str, status: &str, stop: Option<i64>) -> Value {
        json!({"id": id, "type": "License", "attributes": {"status": status, "start_date": 50,
            "stop_date": stop, "order_id": null, "purchase_record": {"price_currency_amount":
            null, "price_currency_iso4217": null, "purchase_timestamp": 50,
            "payment_method": null}, "renew_record": {"recurring": false, "expiry_date": stop}},
            "relationships": {"user": {"data": {"type": "User", "id": "41"}},
                "product": {"data": {"type": "Product", "id": "p"}}}})
    }

    fn live(cache: &EntitlementCache, at: i64) -> Option<Grant> {
        cache.may_watch(
            &UserId::parse("41").expect("id"),
            &ChannelId::parse("c").expect("id"),
            Service::Live,
            Timestamp::from_unix(at),
        )
    }

    #[test]
    fn licenses_and_products_follow_their_events() {
        let mut cache = EntitlementCache::new();
        let apply = |c: &mut EntitlementCache, e| c.apply(&e).expect("applied");
        apply(
            &mut cache,
            event(1, "product.created", product("p", &["c"])),
        );
        apply(
            &mut cache,
            event(2, "license.created", license("l", "ACTIVE", Some(200))),
        );
        let until = Some(Timestamp::from_unix(200));
        assert_eq!(live(&cache, 100), Some(Grant { until }));
        assert_eq!(live(&cache, 200), None, "ended at its stop date");
        assert_eq!(live(&cache, 10), None, "not started");

        apply(
            &mut cache,
            event(3, "product.updated", product("p", &["d"])),
        );
        assert_eq!(live(&cache, 100), None, "the channel left the product");
        apply(
            &mut cache,
            event(4, "product.updated", product("p", &["c"])),
        );
        apply(
            &mut cache,
            event(5, "license.deleted", license("l", "ACTIVE", Some(200))),
        );
        assert_eq!(live(&cache, 100), None, "revoked");
        assert_eq!(cache.position(), Some(5));
    }

    #[test]
    fn events_already_applied_are_skipped_by_position() {
        let mut cache = EntitlementCache::new();
        let p = event(1, "product.created", product("p", &["c"]));
        let l = event(2, "license.created", license("l", "ACTIVE", None));
        assert_eq!(cache.apply(&p), Ok(Applied::Applied));
        assert_eq!(cache.apply(&l), Ok(Applied::Applied));
        let deleted = event(2, "license.deleted", license("l", "ACTIVE", None));
        assert_eq!(cache.apply(&deleted), Ok(Applied::Duplicate));
        assert_eq!(live(&cache, 100), Some(Grant { until: None }));
    }

    #[test]
    fn suspended_processing_and_expired_licenses_grant_nothing() {
        for status in [
            "SUSPENDED",
            "SUSPENDEDADMIN",
            "PROCESSING",
            "ORDER_ERROR",
            "EXPIRED",
        ] {
            let mut cache = EntitlementCache::new();
            cache
                .apply(&event(1, "product.created", product("p", &["c"])))
                .expect("applied");
            cache
                .apply(&event(2, "license.created", license("l", status, Some(90))))
                .expect("applied");
            assert_eq!(live(&cache, 60), None, "{status}");
        }
    }

    #[test]
    fn an_expired_event_keeps_the_license_it_ends() {
        let mut cache = EntitlementCache::new();
        cache
            .apply(&event(1, "product.created", product("p", &["c"])))
            .expect("applied");
        cache
            .apply(&event(
                2,
                "license.created",
                license("l", "ACTIVE", Some(90)),
            ))
            .expect("applied");
        cache
            .apply(&event(
                3,
                "license.expired",
                license("l", "EXPIRED", Some(90)),
            ))
            .expect("applied");
        let user = UserId::parse("41").expect("id");
        assert_eq!(cache.licenses_of(&user).count(), 1);
        assert_eq!(
            live(&cache, 89).map(|g| g.until),
            Some(Some(Timestamp::from_unix(90)))
        );
        assert_eq!(live(&cache, 90), None);
    }

    #[test]
    fn a_resource_the_domain_refuses_is_an_error_and_changes_nothing() {
        let mut cache = EntitlementCache::new();
        let bad = event(1, "license.created", license("l", "BOUGHT", None));
        assert!(cache.apply(&bad).is_err());
        assert_eq!(cache.position(), None);
    }

    #[test]
    fn a_gap_in_a_users_sequence_is_counted() {
        let mut cache = EntitlementCache::new();
        let mut e = |position, seq| {
            let mut ev = event(position, "license.created", license("l", "ACTIVE", None));
            ev.attributes.user_seq = Some(seq);
            cache.apply(&ev).expect("applied");
        };
        e(1, 1);
        e(2, 2);
        e(4, 4);
        assert_eq!(cache.gaps(), 1);
    }
}
