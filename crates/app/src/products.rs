//! Catalogue use cases (management API; the user API reads the same catalogue).

use licenses_domain::{Product, ProductDraft, ProductId, ProductPatch};

use crate::App;
use crate::error::{AppError, Problem};
use crate::idempotency::{IdempotencyKey, earlier_answer, settle_conflict};
use crate::ports::{Actor, Change, Conflict, StoreError, StoredResponse};

impl App {
    /// After this instance's own product write: the catalogue in memory catches up at once
    /// rather than at the next poll. The write stands whatever happens here; a failed
    /// refresh is retried by the refresher.
    async fn catalogue_changed(&self) {
        if let Err(error) = self.catalogue.refresh().await {
            tracing::warn!(%error, "cannot refresh the catalogue after a product write");
        }
    }

    /// Every product, in id order.
    pub async fn list_products(&self) -> Result<Vec<Product>, AppError> {
        Ok(self.ports.products.list().await?)
    }

    pub async fn get_product(&self, id: &ProductId) -> Result<Product, AppError> {
        self.ports
            .products
            .get(id)
            .await?
            .ok_or_else(|| AppError::not_found("product"))
    }

    /// Creates a product from `draft`; `render` turns it into the answer to give (and to
    /// replay for a repeated idempotency key).
    pub async fn create_product(
        &self,
        actor: Actor,
        draft: ProductDraft,
        key: Option<IdempotencyKey>,
        render: impl FnOnce(&Product) -> StoredResponse + Send,
    ) -> Result<StoredResponse, AppError> {
        let idem = self.ports.idempotency.as_ref();
        if let Some(answer) = earlier_answer(idem, key.as_ref()).await? {
            return Ok(answer);
        }
        let product = Product::new(self.ports.ids.product_id(), draft).map_err(|v| {
            AppError::Invalid(v.into_iter().map(|v| Problem::at("/data", v)).collect())
        })?;
        let response = render(&product);
        let at = self.ports.clock.now();
        let change = Change {
            actor,
            at,
            idempotency: key.as_ref().map(|k| k.record(&response, at)),
        };
        match self.ports.products.create(&product, &change).await {
            Ok(()) => {
                self.events_written();
                self.catalogue_changed().await;
                Ok(response)
            }
            Err(e) => settle_conflict(idem, key.as_ref(), e, AppError::from).await,
        }
    }

    /// Applies `patch` to a product; the product's rules must hold afterwards.
    pub async fn update_product(
        &self,
        actor: Actor,
        id: &ProductId,
        patch: ProductPatch,
    ) -> Result<Product, AppError> {
        let current = self.get_product(id).await?;
        let updated = current.patch(patch).map_err(|v| {
            let problems: Vec<Problem> = v.into_iter().map(|v| Problem::at("/data", v)).collect();
            // A type and channels that do not fit each other once merged with the stored
            // product conflict with its current state (409): the same patch fits another
            // product, and no schema of the patch alone can tell. Any other rule is the
            // patch's own (422).
            if problems.iter().all(|p| p.code == "type_mismatch") {
                AppError::Conflict(problems)
            } else {
                AppError::Invalid(problems)
            }
        })?;
        let change = Change {
            actor,
            at: self.ports.clock.now(),
            idempotency: None,
        };
        match self.ports.products.update(&updated, &change).await {
            Ok(()) => {
                self.events_written();
                self.catalogue_changed().await;
                Ok(updated)
            }
            Err(StoreError::NotFound) => Err(AppError::not_found("product")),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a product that no license refers to.
    pub async fn delete_product(&self, actor: Actor, id: &ProductId) -> Result<(), AppError> {
        let change = Change {
            actor,
            at: self.ports.clock.now(),
            idempotency: None,
        };
        match self.ports.products.delete(id, &change).await {
            Ok(()) => {
                self.events_written();
                self.catalogue_changed().await;
                Ok(())
            }
            Err(StoreError::NotFound) => Err(AppError::not_found("product")),
            Err(StoreError::Conflict(Conflict::ProductInUse { licenses })) => {
                Err(AppError::Conflict(vec![Problem::new(
                    None,
                    "product_in_use",
                    format!(
                        "{licenses} license{} still refer to this product; delete them first",
                        if licenses == 1 { "" } else { "s" }
                    ),
                )]))
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use licenses_domain::ProductDraft;

    use super::*;
    use crate::ports::IdempotencyRecord;
    use crate::testing::{Mocks, NOW, channel_product_draft, key, response};

    #[tokio::test]
    async fn a_valid_product_is_stored_with_a_new_id_and_rendered() {
        let mut m = Mocks::new();
        m.products
            .expect_create()
            .withf(|p, c| {
                p.id().as_str() == "p-1"
                    && p.title() == "News"
                    && c.at == NOW
                    && c.idempotency.is_none()
            })
            .times(1)
            .returning(|_, _| Ok(()));
        // This instance's own write refreshes its catalogue in memory at once.
        m.products.expect_version().times(1).returning(|| Ok(2));
        m.products.expect_list().times(1).returning(|| Ok(vec![]));
        let answer = m
            .app()
            .create_product(
                Actor::System("test"),
                channel_product_draft("News"),
                None,
                |p| response(201, p.id().as_str()),
            )
            .await;
        assert_eq!(answer, Ok(response(201, "p-1")));
    }

    #[tokio::test]
    async fn an_invalid_product_reports_every_problem_and_writes_nothing() {
        let m = Mocks::new();
        let err = m
            .app()
            .create_product(Actor::System("test"), ProductDraft::default(), None, |_| {
                response(201, "")
            })
            .await
            .expect_err("invalid");
        let AppError::Invalid(problems) = err else {
            panic!("expected Invalid, got {err:?}")
        };
        let pointers: Vec<_> = problems
            .iter()
            .filter_map(|p| p.pointer.as_deref())
            .collect();
        assert!(pointers.contains(&"/data/attributes/title"));
        assert!(pointers.contains(&"/data/attributes/type"));
    }

    #[tokio::test]
    async fn a_repeated_key_replays_the_first_answer_without_writing() {
        let mut m = Mocks::new();
        m.idempotency.expect_find().returning(|scope, k| {
            Ok(Some(IdempotencyRecord {
                scope: scope.into(),
                key: k.into(),
                fingerprint: "f".into(),
                response: response(201, "first"),
                created_at: NOW,
            }))
        });
        let app = m.app();
        let replay = app
            .create_product(
                Actor::System("t"),
                channel_product_draft("x"),
                Some(key("k", "f")),
                |_| response(201, "second"),
            )
            .await;
        assert_eq!(replay, Ok(response(201, "first")));
        let other = app
            .create_product(
                Actor::System("t"),
                channel_product_draft("x"),
                Some(key("k", "other")),
                |_| response(201, "x"),
            )
            .await;
        assert!(
            matches!(other, Err(AppError::Invalid(p)) if p[0].code == "idempotency_key_reused")
        );
    }

    #[tokio::test]
    async fn a_key_taken_by_a_concurrent_request_replays_its_answer() {
        let mut m = Mocks::new();
        let mut calls = 0;
        m.idempotency.expect_find().times(2).returning(move |_, _| {
            calls += 1;
            Ok((calls == 2).then(|| IdempotencyRecord {
                scope: "s".into(),
                key: "k".into(),
                fingerprint: "f".into(),
                response: response(201, "winner"),
                created_at: NOW,
            }))
        });
        m.products
            .expect_create()
            .withf(|_, c| {
                c.idempotency
                    .as_ref()
                    .is_some_and(|r| r.response == response(201, "mine"))
            })
            .returning(|_, _| Err(StoreError::Conflict(Conflict::IdempotencyKeyTaken)));
        let answer = m
            .app()
            .create_product(
                Actor::System("t"),
                channel_product_draft("x"),
                Some(key("k", "f")),
                |_| response(201, "mine"),
            )
            .await;
        assert_eq!(answer, Ok(response(201, "winner")));
    }

    #[tokio::test]
    async fn a_patch_is_validated_against_the_whole_product() {
        let mut m = Mocks::new();
        m.products.expect_get().returning(|_| {
            Ok(Some(
                Product::new(
                    ProductId::parse("p").expect("id"),
                    channel_product_draft("x"),
                )
                .expect("valid"),
            ))
        });
        let patch = ProductPatch {
            product_type: Some("PVR".into()),
            ..Default::default()
        };
        let err = m
            .app()
            .update_product(
                Actor::System("t"),
                &ProductId::parse("p").expect("id"),
                patch,
            )
            .await;
        assert!(
            matches!(err, Err(AppError::Conflict(p)) if p.iter().all(|p| p.code == "type_mismatch"))
        );
    }

    #[tokio::test]
    async fn a_product_in_use_is_not_deleted_and_the_count_is_said() {
        let mut m = Mocks::new();
        m.products
            .expect_delete()
            .returning(|_, _| Err(StoreError::Conflict(Conflict::ProductInUse { licenses: 3 })));
        let err = m
            .app()
            .delete_product(Actor::System("t"), &ProductId::parse("p").expect("id"))
            .await;
        let Err(AppError::Conflict(p)) = err else {
            panic!("expected a conflict")
        };
        assert_eq!(p[0].code, "product_in_use");
        assert!(p[0].detail.starts_with("3 licenses"));
    }

    #[tokio::test]
    async fn an_unreachable_store_is_unavailable_not_internal() {
        let mut m = Mocks::new();
        m.products
            .expect_list()
            .returning(|| Err(StoreError::Unavailable("down".into())));
        assert_eq!(m.app().list_products().await, Err(AppError::Unavailable));
    }
}
