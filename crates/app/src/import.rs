//! Migration from legacy: one batch of an import of licenses (`licenses import`).
//!
//! Every row goes through [`App::prepare_licenses`] and [`App::store_new_licenses`], the path
//! of every new license from the API, so an import applies exactly the rules of
//! `batch_create`. An import is idempotent by `(user, order_id)`: a row whose order id is
//! already stored for its user is skipped and counted as already present, so a re-run after a
//! crash continues where the last committed batch ended. A row without an order id cannot be
//! recognised on a re-run: it is refused.

use licenses_domain::{License, LicenseDraft, OrderId, UserId, Violation, Violations};

use crate::App;
use crate::error::AppError;
use crate::ports::{Actor, Change, Conflict, StoreError};

/// How often a batch is tried again when the store reports a duplicate order it cannot place
/// (a concurrent writer stored one of its orders meanwhile).
const RACE_RETRIES: usize = 5;

/// How [`App::import_batch`] finds the orders already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Reads which orders are stored, then writes the others: the cheaper way where many are
    /// (a re-run after a crash, where a batch stored already costs one read and no write).
    ReadFirst,
    /// Writes at once: the store refuses a batch with a stored order, and the batch is
    /// written again without the orders it then names. The cheaper way where none are (a
    /// first run: no read at all).
    WriteFirst,
    /// Reads which orders are stored, and writes nothing.
    DryRun,
}

/// What became of one row of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowOutcome {
    /// Stored now (on a dry run: would be stored).
    Imported,
    /// Its `(user, order_id)` was already stored: skipped.
    AlreadyPresent,
    /// Breaks a rule: every violation, with pointers into the license document
    /// (`/attributes/stop_date`, `/relationships/product`, …).
    Refused(Violations),
}

/// What became of each row of a batch, in the order of the rows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportOutcome {
    pub rows: Vec<RowOutcome>,
}

impl ImportOutcome {
    /// How many rows were imported (or would be, on a dry run).
    pub fn imported(&self) -> usize {
        self.count(|r| matches!(r, RowOutcome::Imported))
    }

    /// How many rows were already present.
    pub fn already_present(&self) -> usize {
        self.count(|r| matches!(r, RowOutcome::AlreadyPresent))
    }

    /// How many rows were refused.
    pub fn refused(&self) -> usize {
        self.count(|r| matches!(r, RowOutcome::Refused(_)))
    }

    fn count(&self, f: impl Fn(&RowOutcome) -> bool) -> usize {
        self.rows.iter().filter(|r| f(r)).count()
    }
}

impl App {
    /// Brings the planner's statistics of the licenses up to date, for a bulk writer (an
    /// import) after it wrote many: see [`crate::ports::LicenseStore::refresh_statistics`].
    pub async fn refresh_license_statistics(&self) -> Result<(), AppError> {
        Ok(self.ports.licenses.refresh_statistics().await?)
    }

    /// Imports one batch of legacy licenses, each row to its own [`RowOutcome`]: validated and
    /// granted by [`Self::prepare_licenses`] (a row without `order_id` is refused first), then
    /// the valid ones stored in one transaction by [`Self::store_new_licenses`] as
    /// `Actor::System("import")`, in `(user, order_id)` order. Rows whose `(user, order_id)`
    /// is already stored (asked first with a read in [`ImportMode::ReadFirst`], or named by
    /// the store when it refuses the batch) are dropped from the batch and reported
    /// [`RowOutcome::AlreadyPresent`]; the rest are stored. In [`ImportMode::DryRun`] nothing
    /// is written: the store is only asked which orders exist.
    ///
    /// Batches may be imported at once: the order makes two that share orders wait for each
    /// other in the same order (never in a cycle, a deadlock), and the later one is then
    /// told which orders the first stored.
    ///
    /// Errors: [`AppError::Unavailable`] or [`AppError::Internal`] when the store fails, and
    /// [`AppError::Conflict`] when a product is deleted during the import. Nothing of this
    /// batch is then written; the batches before it are.
    pub async fn import_batch(
        &self,
        drafts: Vec<LicenseDraft>,
        mode: ImportMode,
    ) -> Result<ImportOutcome, AppError> {
        let now = self.ports.clock.now();
        let mut rows: Vec<RowOutcome> = Vec::with_capacity(drafts.len());
        // Rows with an order id go on to the rules; their positions in `rows`.
        let mut positions = Vec::with_capacity(drafts.len());
        let mut checked = Vec::with_capacity(drafts.len());
        for draft in drafts {
            if draft.order_id.is_none() {
                rows.push(RowOutcome::Refused(order_id_required()));
            } else {
                positions.push(rows.len());
                rows.push(RowOutcome::Imported);
                checked.push(draft);
            }
        }

        // The licenses to store, each with its position in `rows`.
        let mut granted: Vec<(usize, License)> = Vec::with_capacity(checked.len());
        for (at, result) in positions
            .into_iter()
            .zip(self.prepare_licenses(checked, now).await?)
        {
            match result {
                Ok(license) => granted.push((at, license)),
                Err(violations) => rows[at] = RowOutcome::Refused(violations),
            }
        }

        // Every granted license has an order id.
        fn order(l: &License) -> (&str, Option<&str>) {
            (l.user().as_str(), l.order_id().map(OrderId::as_str))
        }
        granted.sort_by(|(_, a), (_, b)| order(a).cmp(&order(b)));
        if mode != ImportMode::WriteFirst {
            let orders: Vec<(UserId, OrderId)> = granted
                .iter()
                .filter_map(|(_, l)| Some((l.user().clone(), l.order_id()?.clone())))
                .collect();
            let present = self.ports.licenses.existing_orders(&orders).await?;
            drop_present(&mut granted, &mut rows, &present);
        }
        if mode == ImportMode::DryRun {
            return Ok(ImportOutcome { rows });
        }

        let change = Change {
            actor: Actor::System("import"),
            at: now,
            idempotency: None,
        };
        let mut races = 0;
        while !granted.is_empty() {
            let licenses: Vec<License> = granted.iter().map(|(_, l)| l.clone()).collect();
            match self.store_new_licenses(&licenses, &change).await {
                Ok(()) => break,
                Err(StoreError::Conflict(Conflict::DuplicateOrders(present)))
                    if !present.is_empty() =>
                {
                    // Stored meanwhile by another writer.
                    drop_present(&mut granted, &mut rows, &present);
                }
                Err(StoreError::Conflict(Conflict::DuplicateOrders(_))) if races < RACE_RETRIES => {
                    races += 1;
                    tracing::debug!(
                        races,
                        "an order of the batch was stored meanwhile: retrying"
                    );
                }
                Err(StoreError::Conflict(Conflict::ProductGone)) => {
                    return Err(AppError::Conflict(vec![crate::Problem::new(
                        None,
                        "product_gone",
                        "a product of this batch was deleted during the import",
                    )]));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(ImportOutcome { rows })
    }
}

/// Removes the licenses at positions `present` (ascending) of `granted`, marking their rows
/// already present.
fn drop_present(granted: &mut Vec<(usize, License)>, rows: &mut [RowOutcome], present: &[usize]) {
    let mut i = 0;
    granted.retain(|(at, _)| {
        let keep = present.binary_search(&i).is_err();
        if !keep {
            rows[*at] = RowOutcome::AlreadyPresent;
        }
        i += 1;
        keep
    });
}

fn order_id_required() -> Violations {
    Violation::new(
        "/attributes/order_id",
        "required",
        "an imported license needs its order id: without it a re-run could not tell that the \
         row was imported already",
    )
    .into()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use licenses_domain::{Product, ProductId, PurchaseDraft};

    use super::*;
    use crate::testing::{Mocks, channel_product_draft};

    fn product() -> Product {
        Product::new(
            ProductId::parse("p1").expect("id"),
            channel_product_draft("Sport"),
        )
        .expect("valid")
    }

    fn draft(user: &str, order: Option<&str>) -> LicenseDraft {
        LicenseDraft {
            user: Some(user.into()),
            product: Some("p1".into()),
            order_id: order.map(Into::into),
            start_date: Some(1_600_000_000),
            stop_date: Some(1_800_000_000),
            ..Default::default()
        }
    }

    fn with_product(m: &mut Mocks) {
        m.products
            .expect_get_many()
            .returning(|_| Ok(vec![product()]));
    }

    fn none_stored(m: &mut Mocks) {
        m.licenses
            .expect_existing_orders()
            .returning(|_| Ok(Vec::new()));
    }

    fn codes(outcome: &RowOutcome) -> Vec<(String, &'static str)> {
        match outcome {
            RowOutcome::Refused(v) => v.iter().map(|v| (v.pointer.clone(), v.code)).collect(),
            _ => Vec::new(),
        }
    }

    #[tokio::test]
    async fn good_rows_are_stored_in_one_call_as_the_import_and_bad_ones_refused() {
        let mut m = Mocks::new();
        with_product(&mut m);
        none_stored(&mut m);
        m.licenses
            .expect_create()
            .times(1)
            .withf(|licenses, jobs, change| {
                let orders: Vec<_> = licenses
                    .iter()
                    .filter_map(|l| l.order_id().map(|o| o.as_str().to_owned()))
                    .collect();
                orders == ["o1", "o4"]
                    && jobs.is_empty()
                    && change.actor == Actor::System("import")
                    && change.idempotency.is_none()
            })
            .returning(|_, _, _| Ok(()));
        let mut bad_currency = draft("u1", Some("o3"));
        bad_currency.purchase_record = Some(PurchaseDraft {
            price_currency_amount: Some(100),
            price_currency_iso4217: Some("XXZ".into()),
            ..Default::default()
        });
        let outcome = m
            .app()
            .import_batch(
                vec![
                    draft("u1", Some("o1")),
                    draft("u1", None),
                    bad_currency,
                    draft("u2", Some("o4")),
                    draft("u2", Some("o4")),
                ],
                ImportMode::ReadFirst,
            )
            .await
            .expect("imported");
        assert_eq!(outcome.rows[0], RowOutcome::Imported);
        assert_eq!(
            codes(&outcome.rows[1]),
            [("/attributes/order_id".to_owned(), "required")]
        );
        assert_eq!(
            codes(&outcome.rows[2]).first().map(|(p, _)| p.as_str()),
            Some("/attributes/purchase_record/price_currency_iso4217")
        );
        assert_eq!(outcome.rows[3], RowOutcome::Imported);
        assert_eq!(
            codes(&outcome.rows[4]),
            [("/attributes/order_id".to_owned(), "duplicate_order_id")]
        );
        assert_eq!(
            (
                outcome.imported(),
                outcome.already_present(),
                outcome.refused()
            ),
            (2, 0, 3)
        );
    }

    #[tokio::test]
    async fn stored_orders_are_dropped_and_the_rest_stored() {
        let mut m = Mocks::new();
        with_product(&mut m);
        // o1 is stored before the batch; o3 meanwhile, by another writer.
        m.licenses
            .expect_existing_orders()
            .times(1)
            .returning(|_| Ok(vec![0]));
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&calls);
        m.licenses
            .expect_create()
            .times(2)
            .returning(
                move |licenses, _, _| match seen.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(StoreError::Conflict(Conflict::DuplicateOrders(vec![1]))),
                    _ => {
                        let orders: Vec<_> = licenses
                            .iter()
                            .filter_map(|l| l.order_id().map(|o| o.as_str().to_owned()))
                            .collect();
                        assert_eq!(orders, ["o2"]);
                        Ok(())
                    }
                },
            );
        let outcome = m
            .app()
            .import_batch(
                vec![
                    draft("u1", Some("o1")),
                    draft("u1", None),
                    draft("u1", Some("o2")),
                    draft("u1", Some("o3")),
                ],
                ImportMode::ReadFirst,
            )
            .await
            .expect("imported");
        assert_eq!(outcome.rows[0], RowOutcome::AlreadyPresent);
        assert!(matches!(outcome.rows[1], RowOutcome::Refused(_)));
        assert_eq!(outcome.rows[2], RowOutcome::Imported);
        assert_eq!(outcome.rows[3], RowOutcome::AlreadyPresent);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_race_retries_the_batch_and_a_persistent_one_gives_up() {
        let mut m = Mocks::new();
        with_product(&mut m);
        none_stored(&mut m);
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&calls);
        m.licenses.expect_create().returning(move |_, _, _| {
            match seen.fetch_add(1, Ordering::SeqCst) {
                0 => Err(StoreError::Conflict(Conflict::DuplicateOrders(vec![]))),
                _ => Ok(()),
            }
        });
        let outcome = m
            .app()
            .import_batch(vec![draft("u1", Some("o1"))], ImportMode::ReadFirst)
            .await
            .expect("imported");
        assert_eq!(outcome.rows, [RowOutcome::Imported]);
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        let mut m = Mocks::new();
        with_product(&mut m);
        none_stored(&mut m);
        m.licenses
            .expect_create()
            .times(RACE_RETRIES + 1)
            .returning(|_, _, _| Err(StoreError::Conflict(Conflict::DuplicateOrders(vec![]))));
        let err = m
            .app()
            .import_batch(vec![draft("u1", Some("o1"))], ImportMode::ReadFirst)
            .await
            .expect_err("gives up");
        assert!(matches!(err, AppError::Internal(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_dry_run_asks_which_orders_exist_and_writes_nothing() {
        let mut m = Mocks::new();
        with_product(&mut m);
        m.licenses
            .expect_existing_orders()
            .times(1)
            .withf(|orders| {
                orders
                    .iter()
                    .map(|(u, o)| (u.as_str(), o.as_str()))
                    .eq([("u1", "o1"), ("u2", "o2")])
            })
            .returning(|_| Ok(vec![1]));
        // No expect_create: a write would fail the test.
        let outcome = m
            .app()
            .import_batch(
                vec![
                    draft("u1", Some("o1")),
                    draft("u9", None),
                    draft("u2", Some("o2")),
                ],
                ImportMode::DryRun,
            )
            .await
            .expect("checked");
        assert_eq!(outcome.rows[0], RowOutcome::Imported);
        assert!(matches!(outcome.rows[1], RowOutcome::Refused(_)));
        assert_eq!(outcome.rows[2], RowOutcome::AlreadyPresent);
    }

    #[tokio::test]
    async fn a_store_outage_fails_the_batch() {
        let mut m = Mocks::new();
        with_product(&mut m);
        none_stored(&mut m);
        m.licenses
            .expect_create()
            .returning(|_, _, _| Err(StoreError::Unavailable("down".into())));
        let err = m
            .app()
            .import_batch(vec![draft("u1", Some("o1"))], ImportMode::ReadFirst)
            .await
            .expect_err("fails");
        assert_eq!(err, AppError::Unavailable);
    }

    #[tokio::test]
    async fn written_first_a_batch_reads_nothing_and_drops_what_the_store_names() {
        let mut m = Mocks::new();
        with_product(&mut m);
        // No expect_existing_orders: a read would fail the test.
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&calls);
        m.licenses
            .expect_create()
            .times(2)
            .returning(move |licenses, _, _| {
                let orders: Vec<_> = licenses
                    .iter()
                    .map(|l| {
                        let order = l.order_id().map_or("", |o| o.as_str());
                        format!("{}/{order}", l.user().as_str())
                    })
                    .collect();
                match seen.fetch_add(1, Ordering::SeqCst) {
                    // In (user, order) order, whatever the order of the rows.
                    0 => {
                        assert_eq!(orders, ["u1/o1", "u1/o2", "u2/o1"]);
                        Err(StoreError::Conflict(Conflict::DuplicateOrders(vec![1])))
                    }
                    _ => {
                        assert_eq!(orders, ["u1/o1", "u2/o1"]);
                        Ok(())
                    }
                }
            });
        let outcome = m
            .app()
            .import_batch(
                vec![
                    draft("u2", Some("o1")),
                    draft("u1", Some("o2")),
                    draft("u1", Some("o1")),
                ],
                ImportMode::WriteFirst,
            )
            .await
            .expect("imported");
        assert_eq!(
            outcome.rows,
            [
                RowOutcome::Imported,
                RowOutcome::AlreadyPresent,
                RowOutcome::Imported
            ]
        );
    }
}
