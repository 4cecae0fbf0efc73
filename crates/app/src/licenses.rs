//! License use cases of the management API: list, get, create (one or a batch), delete.

use std::collections::{HashMap, HashSet};

use licenses_domain::{
    Activation, License, LicenseDraft, LicenseId, LicenseStatus, Product, ProductId, Timestamp,
    UserId, Violation, Violations,
};

use crate::App;
use crate::error::{AppError, Problem};
use crate::idempotency::{IdempotencyKey, earlier_answer, settle_conflict};
use crate::ports::{Actor, Change, Conflict, LicenseQuery, StoreError, StoredResponse};

/// The code of a license's product that does not exist (see [`License::grant`]).
const PRODUCT_NOT_FOUND: &str = "product_not_found";

/// Most licenses one batch may create or delete.
pub const MAX_BATCH: usize = 10_000;
/// Largest page of a license listing.
pub const MAX_PAGE_SIZE: u32 = 1_000;

/// Which licenses a listing shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LicenseFilter {
    pub user: Option<UserId>,
    pub product: Option<ProductId>,
    /// Any of these (EXPIRED derived); empty: all.
    pub statuses: Vec<LicenseStatus>,
    /// Only licenses effective at this time.
    pub active_at: Option<Timestamp>,
}

/// Which page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// 1 ..= [`MAX_PAGE_SIZE`].
    pub size: u32,
    /// The id of the last license of the previous page.
    pub after: Option<LicenseId>,
}

/// One page of licenses, in id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicensePage {
    pub licenses: Vec<License>,
    /// The cursor of the next page, when there is one.
    pub next: Option<LicenseId>,
    /// When the statuses were derived.
    pub now: Timestamp,
}

/// Where a request document puts item `i`: `/data` for a single resource, `/data/i` in a batch.
fn base(batch: bool, i: usize) -> String {
    if batch {
        format!("/data/{i}")
    } else {
        "/data".to_owned()
    }
}

impl App {
    /// A page of the licenses matching `filter`.
    pub async fn list_licenses(
        &self,
        filter: LicenseFilter,
        page: PageRequest,
    ) -> Result<LicensePage, AppError> {
        let now = self.ports.clock.now();
        let size = page.size.clamp(1, MAX_PAGE_SIZE);
        let query = LicenseQuery {
            user: filter.user,
            product: filter.product,
            statuses: filter.statuses,
            active_at: filter.active_at,
            now,
            after: page.after,
            limit: size + 1,
        };
        let mut licenses = self.ports.licenses.find(&query).await?;
        let next = if licenses.len() > size as usize {
            licenses.truncate(size as usize);
            licenses.last().map(|l| l.id().clone())
        } else {
            None
        };
        Ok(LicensePage {
            licenses,
            next,
            now,
        })
    }

    /// One license, and the time its status is read at.
    pub async fn get_license(&self, id: &LicenseId) -> Result<(License, Timestamp), AppError> {
        let license = self
            .ports
            .licenses
            .get(id)
            .await?
            .ok_or_else(|| AppError::not_found("license"))?;
        Ok((license, self.ports.clock.now()))
    }

    /// The products of `licenses`, each once, in id order.
    pub async fn products_of(&self, licenses: &[License]) -> Result<Vec<Product>, AppError> {
        let mut ids: Vec<ProductId> = licenses.iter().map(|l| l.product().clone()).collect();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.ports.products.get_many(&ids).await?)
    }

    /// Grants licenses as `drafts` ask, all or nothing: when any draft is bad, nothing is
    /// written and every problem is reported with the pointer of its item. `batch` says how
    /// the request document holds the drafts (`/data/i` or `/data`).
    pub async fn create_licenses(
        &self,
        actor: Actor,
        drafts: Vec<LicenseDraft>,
        batch: bool,
        key: Option<IdempotencyKey>,
        render: impl FnOnce(&[License], Timestamp) -> StoredResponse + Send,
    ) -> Result<StoredResponse, AppError> {
        check_batch_size(drafts.len(), batch)?;
        let idem = self.ports.idempotency.as_ref();
        if let Some(answer) = earlier_answer(idem, key.as_ref()).await? {
            return Ok(answer);
        }

        let now = self.ports.clock.now();
        let mut problems = Vec::new();
        let mut licenses = Vec::with_capacity(drafts.len());
        for (i, granted) in self
            .prepare_licenses(drafts, now)
            .await?
            .into_iter()
            .enumerate()
        {
            match granted {
                Ok(license) => licenses.push(license),
                Err(violations) => problems.extend(
                    violations
                        .into_iter()
                        .map(|v| Problem::at(&base(batch, i), v)),
                ),
            }
        }
        if !problems.is_empty() {
            // JSON:API 1.0: a request that names a related resource that does not exist is a
            // 404, here with the pointer of each such relationship (and, 422 each, whatever
            // else is wrong).
            let (missing, invalid): (Vec<_>, Vec<_>) = problems
                .into_iter()
                .partition(|p| p.code == PRODUCT_NOT_FOUND);
            if missing.is_empty() {
                return Err(AppError::Invalid(invalid));
            }
            return Err(AppError::RelatedNotFound { missing, invalid });
        }

        let response = render(&licenses, now);
        let change = Change {
            actor,
            at: now,
            idempotency: key.as_ref().map(|k| k.record(&response, now)),
        };
        match self.store_new_licenses(&licenses, &change).await {
            Ok(()) => Ok(response),
            Err(e) => settle_conflict(idem, key.as_ref(), e, |e| creation_refused(e, batch)).await,
        }
    }

    /// Grants each draft at `now` with its product (looked up once per product), each to its
    /// own result: the license, or every rule the draft breaks (pointers relative to the
    /// item). A second draft with the user and order id of an earlier one is refused too. The
    /// path of every new license, from the API or an import, goes through here and
    /// [`Self::store_new_licenses`].
    pub async fn prepare_licenses(
        &self,
        drafts: Vec<LicenseDraft>,
        now: Timestamp,
    ) -> Result<Vec<Result<License, Violations>>, AppError> {
        let mut wanted: Vec<ProductId> =
            drafts.iter().filter_map(LicenseDraft::product_id).collect();
        wanted.sort();
        wanted.dedup();
        let products: HashMap<ProductId, Product> = if wanted.is_empty() {
            HashMap::new()
        } else {
            self.ports
                .products
                .get_many(&wanted)
                .await?
                .into_iter()
                .map(|p| (p.id().clone(), p))
                .collect()
        };
        let mut orders = HashSet::new();
        Ok(drafts
            .into_iter()
            .map(|draft| {
                let product = draft.product_id().and_then(|id| products.get(&id));
                let activation = if self.needs_entitlement(product) {
                    Activation::AwaitEntitlement
                } else {
                    Activation::Immediate
                };
                let license =
                    License::grant(self.ports.ids.license_id(), draft, product, now, activation)?;
                match license.order_id() {
                    Some(order) if !orders.insert((license.user().clone(), order.clone())) => {
                        Err(Violation::new(
                            "/attributes/order_id",
                            "duplicate_order_id",
                            "an earlier item has the same user and order_id",
                        )
                        .into())
                    }
                    _ => Ok(license),
                }
            })
            .collect())
    }

    /// Stores new licenses, all or nothing, with what they queue (the outbox): the GRANT job
    /// of every PROCESSING license, in the same transaction. Workers are woken once it
    /// committed; no call to Irdeto happens here.
    pub async fn store_new_licenses(
        &self,
        licenses: &[License],
        change: &Change,
    ) -> Result<(), StoreError> {
        let jobs = self.grant_jobs(licenses).await?;
        self.ports.licenses.create(licenses, &jobs, change).await?;
        self.jobs_written(jobs.len());
        self.events_written();
        Ok(())
    }

    /// Deletes licenses, all or nothing: when any id is unknown, nothing is deleted and every
    /// unknown id is reported (404 for a single license).
    pub async fn delete_licenses(
        &self,
        actor: Actor,
        ids: Vec<LicenseId>,
        batch: bool,
        key: Option<IdempotencyKey>,
        render: impl FnOnce(&[LicenseId]) -> StoredResponse + Send,
    ) -> Result<StoredResponse, AppError> {
        check_batch_size(ids.len(), batch)?;
        let idem = self.ports.idempotency.as_ref();
        if let Some(answer) = earlier_answer(idem, key.as_ref()).await? {
            return Ok(answer);
        }
        // A license listed twice is deleted once (its identifiers may differ only by their
        // free-form `meta`, which no schema can tell apart); `origin` maps each distinct id
        // back to its first place in the document, for the pointers of unknown ids.
        let mut seen = HashSet::new();
        let mut origin = Vec::with_capacity(ids.len());
        let mut distinct = Vec::with_capacity(ids.len());
        for (i, id) in ids.into_iter().enumerate() {
            if seen.insert(id.clone()) {
                origin.push(i);
                distinct.push(id);
            }
        }
        let ids = distinct;

        let at = self.ports.clock.now();
        let response = render(&ids);
        let change = Change {
            actor,
            at,
            idempotency: key.as_ref().map(|k| k.record(&response, at)),
        };
        // The REVOKE jobs need the licenses' products: read them first. A license deleted
        // meanwhile makes the delete below refuse the whole request, as it would anyway.
        let jobs = if self.entitlements_enabled() {
            let doomed = self.ports.licenses.find_by_ids(&ids).await?;
            self.revoke_jobs(&doomed).await?
        } else {
            Vec::new()
        };
        match self.ports.licenses.delete(&ids, &jobs, &change).await {
            Ok(()) => {
                self.jobs_written(jobs.len());
                self.events_written();
                Ok(response)
            }
            Err(e) => {
                let e = match e {
                    StoreError::MissingItems(positions) => StoreError::MissingItems(
                        positions
                            .into_iter()
                            .map(|p| origin.get(p).copied().unwrap_or(p))
                            .collect(),
                    ),
                    e => e,
                };
                settle_conflict(idem, key.as_ref(), e, |e| deletion_refused(e, batch)).await
            }
        }
    }
}

fn check_batch_size(n: usize, batch: bool) -> Result<(), AppError> {
    if !batch {
        return Ok(());
    }
    if n == 0 {
        return Err(AppError::invalid(
            "/data",
            "empty_batch",
            "a batch holds at least one license",
        ));
    }
    if n > MAX_BATCH {
        return Err(AppError::invalid(
            "/data",
            "batch_too_large",
            format!("a batch holds at most {MAX_BATCH} licenses, not {n}"),
        ));
    }
    Ok(())
}

/// What a refused license creation means for the client.
pub(crate) fn creation_refused(e: StoreError, batch: bool) -> AppError {
    match e {
        StoreError::Conflict(Conflict::DuplicateOrders(positions)) => {
            AppError::Conflict(order_conflicts(batch, &positions))
        }
        StoreError::Conflict(Conflict::ProductGone) => AppError::Conflict(vec![Problem::new(
            None,
            "product_gone",
            "a product named by the request was deleted meanwhile",
        )]),
        e => e.into(),
    }
}

fn deletion_refused(e: StoreError, batch: bool) -> AppError {
    match e {
        StoreError::MissingItems(_) | StoreError::NotFound if !batch => {
            AppError::not_found("license")
        }
        // Licenses named by a batch that do not exist: 404 (as for a single license, and
        // as JSON:API answers a request naming resources that do not exist), each at its
        // pointer.
        StoreError::MissingItems(positions) => AppError::RelatedNotFound {
            missing: positions
                .into_iter()
                .map(|i| {
                    Problem::new(
                        Some(format!("/data/{i}/id")),
                        "license_not_found",
                        "no license has this id",
                    )
                })
                .collect(),
            invalid: Vec::new(),
        },
        e => e.into(),
    }
}

fn order_conflicts(batch: bool, positions: &[usize]) -> Vec<Problem> {
    const DETAIL: &str = "this user already has a license with this order_id";
    if positions.is_empty() {
        return vec![Problem::new(None, "order_id_taken", DETAIL)];
    }
    positions
        .iter()
        .map(|&i| {
            Problem::new(
                Some(format!("{}/attributes/order_id", base(batch, i))),
                "order_id_taken",
                DETAIL,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use licenses_domain::{LicenseState, LicenseStatus, ProductId};

    use super::*;
    use crate::testing::{Mocks, NOW, channel_product_draft, response};

    fn product(id: &str) -> Product {
        let mut d = channel_product_draft("p");
        d.license_defaults = Some(licenses_domain::LicenseDefaultsDraft {
            duration: Some(100),
            auto_renew: None,
        });
        Product::new(ProductId::parse(id).expect("id"), d).expect("valid")
    }

    fn draft(user: &str, product: &str, order: Option<&str>) -> LicenseDraft {
        LicenseDraft {
            user: Some(user.into()),
            product: Some(product.into()),
            order_id: order.map(Into::into),
            ..Default::default()
        }
    }

    fn known_products(m: &mut Mocks) {
        m.products.expect_get_many().returning(|ids| {
            Ok(ids
                .iter()
                .filter(|id| id.as_str().starts_with('p'))
                .map(|id| product(id.as_str()))
                .collect())
        });
    }

    #[tokio::test]
    async fn a_batch_is_granted_with_defaults_and_stored_in_one_call() {
        let mut m = Mocks::new();
        known_products(&mut m);
        m.licenses
            .expect_create()
            .withf(|ls, jobs, c| {
                ls.len() == 2
                    && jobs.is_empty()
                    && c.at == NOW
                    && ls.iter().all(|l| {
                        l.state() == &LicenseState::Active
                            && l.stop_date() == Some(NOW.plus_seconds(100))
                    })
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        let drafts = vec![draft("u1", "p1", None), draft("u2", "p1", Some("o"))];
        let answer = m
            .app()
            .create_licenses(Actor::System("t"), drafts, true, None, |ls, _| {
                response(201, &ls.len().to_string())
            })
            .await;
        assert_eq!(answer, Ok(response(201, "2")));
    }

    #[tokio::test]
    async fn one_bad_item_writes_nothing_and_every_bad_item_has_its_pointer() {
        let mut m = Mocks::new();
        known_products(&mut m);
        let mut bad_dates = draft("u1", "p1", None);
        bad_dates.start_date = Some(10);
        bad_dates.stop_date = Some(5);
        let drafts = vec![
            draft("u1", "p1", Some("same")),
            draft("u1", "missing", None),
            bad_dates,
            draft("u1", "p1", Some("same")),
        ];
        let err = m
            .app()
            .create_licenses(Actor::System("t"), drafts, true, None, |_, _| {
                response(201, "")
            })
            .await
            .expect_err("invalid");
        let AppError::RelatedNotFound { missing, invalid } = err else {
            panic!("expected RelatedNotFound")
        };
        let found = |problems: &[Problem]| -> Vec<(String, &'static str)> {
            problems
                .iter()
                .map(|p| (p.pointer.clone().unwrap_or_default(), p.code))
                .collect()
        };
        assert_eq!(
            found(&missing),
            [(
                "/data/1/relationships/product".to_owned(),
                "product_not_found"
            )]
        );
        assert_eq!(
            found(&invalid),
            [
                (
                    "/data/2/attributes/stop_date".to_owned(),
                    "stop_before_start"
                ),
                (
                    "/data/3/attributes/order_id".to_owned(),
                    "duplicate_order_id"
                ),
            ]
        );
    }

    #[tokio::test]
    async fn stored_order_ids_are_conflicts_with_pointers() {
        let mut m = Mocks::new();
        known_products(&mut m);
        m.licenses
            .expect_create()
            .returning(|_, _, _| Err(StoreError::Conflict(Conflict::DuplicateOrders(vec![1]))));
        let drafts = vec![draft("u1", "p1", Some("a")), draft("u1", "p1", Some("b"))];
        let err = m
            .app()
            .create_licenses(Actor::System("t"), drafts, true, None, |_, _| {
                response(201, "")
            })
            .await;
        let Err(AppError::Conflict(p)) = err else {
            panic!("expected a conflict")
        };
        assert_eq!(p[0].pointer.as_deref(), Some("/data/1/attributes/order_id"));
        assert_eq!(p[0].code, "order_id_taken");
    }

    #[tokio::test]
    async fn batch_sizes_are_bounded() {
        let app = Mocks::new().app();
        let empty = app
            .create_licenses(Actor::System("t"), vec![], true, None, |_, _| {
                response(201, "")
            })
            .await;
        assert!(matches!(empty, Err(AppError::Invalid(p)) if p[0].code == "empty_batch"));
        let many = vec![draft("u", "p", None); MAX_BATCH + 1];
        let big = app
            .create_licenses(Actor::System("t"), many, true, None, |_, _| {
                response(201, "")
            })
            .await;
        assert!(matches!(big, Err(AppError::Invalid(p)) if p[0].code == "batch_too_large"));
    }

    #[tokio::test]
    async fn unknown_ids_in_a_batch_delete_are_reported_and_a_single_one_is_404() {
        let mut m = Mocks::new();
        m.licenses
            .expect_delete()
            .returning(|_, _, _| Err(StoreError::MissingItems(vec![0, 2])));
        let app = m.app();
        let ids: Vec<LicenseId> = ["a", "b", "c"]
            .iter()
            .map(|s| LicenseId::parse(*s).expect("id"))
            .collect();
        let err = app
            .delete_licenses(Actor::System("t"), ids.clone(), true, None, |_| {
                response(200, "")
            })
            .await;
        let Err(AppError::RelatedNotFound {
            missing: p,
            invalid,
        }) = err
        else {
            panic!("expected RelatedNotFound")
        };
        assert!(invalid.is_empty());
        assert!(p.iter().all(|p| p.code == "license_not_found"));
        let pointers: Vec<_> = p.iter().filter_map(|p| p.pointer.as_deref()).collect();
        assert_eq!(pointers, ["/data/0/id", "/data/2/id"]);

        let single = app
            .delete_licenses(Actor::System("t"), ids[..1].to_vec(), false, None, |_| {
                response(204, "")
            })
            .await;
        assert!(matches!(single, Err(AppError::NotFound(_))));
    }

    #[tokio::test]
    async fn a_license_listed_twice_is_deleted_once_and_unknown_ids_keep_their_place() {
        let mut m = Mocks::new();
        m.licenses
            .expect_delete()
            .withf(|ids, _, _| ids.iter().map(LicenseId::as_str).eq(["a", "b"]))
            .returning(|_, _, _| Err(StoreError::MissingItems(vec![1])));
        let ids: Vec<LicenseId> = ["a", "a", "b"]
            .iter()
            .map(|s| LicenseId::parse(*s).expect("id"))
            .collect();
        let err = m
            .app()
            .delete_licenses(Actor::System("t"), ids, true, None, |ids| {
                response(200, &ids.len().to_string())
            })
            .await;
        let Err(AppError::RelatedNotFound { missing, .. }) = err else {
            panic!("expected RelatedNotFound")
        };
        assert_eq!(missing[0].pointer.as_deref(), Some("/data/2/id"));
    }

    #[tokio::test]
    async fn a_page_asks_one_more_to_know_whether_there_is_a_next() {
        let mut m = Mocks::new();
        m.licenses
            .expect_find()
            .withf(|q| q.limit == 3 && q.now == NOW && q.statuses == [LicenseStatus::Expired])
            .returning(|q| {
                let p = product("p1");
                Ok((0..q.limit)
                    .map(|i| {
                        License::grant(
                            LicenseId::parse(format!("l{i}")).expect("id"),
                            draft("u", "p1", None),
                            Some(&p),
                            NOW,
                            Activation::Immediate,
                        )
                        .expect("valid")
                    })
                    .collect())
            });
        let filter = LicenseFilter {
            statuses: vec![LicenseStatus::Expired],
            ..Default::default()
        };
        let page = m
            .app()
            .list_licenses(
                filter,
                PageRequest {
                    size: 2,
                    after: None,
                },
            )
            .await
            .expect("page");
        assert_eq!(page.licenses.len(), 2);
        assert_eq!(page.next.as_ref().map(LicenseId::as_str), Some("l1"));
    }
}
