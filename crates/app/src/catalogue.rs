//! The catalogue in memory: a snapshot of every product, read by the user API's use cases
//! without a database round trip, and reloaded when the store's change marker moves.
//!
//! Freshness: a refresher (the binary's task) calls [`ProductCatalogue::refresh`] every
//! `catalogue.refresh_ms`; each call is one one-row read ([`ProductStore::version`]) and a
//! reload of the products only when that number moved. This instance's own product writes
//! refresh at once. When the store is down, the last snapshot keeps being served; when there
//! has never been one, the first reader loads it (and fails with the store when it is down).
//! Readers never wait for a refresh: the snapshot is an `Arc` swapped under a lock held only
//! for the pointer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use licenses_domain::{License, Product, ProductId};

use crate::ports::{ProductStore, StoreError};

/// Every product at one version of the catalogue, in id order.
#[derive(Debug)]
pub struct Snapshot {
    version: i64,
    generation: u64,
    products: Vec<Product>,
    index: HashMap<ProductId, usize>,
}

impl Snapshot {
    fn new(version: i64, generation: u64, products: Vec<Product>) -> Self {
        let index = products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id().clone(), i))
            .collect();
        Self {
            version,
            generation,
            products,
            index,
        }
    }

    /// The store's change marker this snapshot was read at.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// A number unique to this snapshot in this process: equal generations, equal products.
    /// Front-ends key what they derive from a snapshot (a rendered body) by it.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Every product, in id order.
    pub fn products(&self) -> &[Product] {
        &self.products
    }

    /// The products users may see, in id order.
    pub fn visible(&self) -> impl Iterator<Item = &Product> {
        self.products.iter().filter(|p| p.is_user_visible())
    }

    pub fn get(&self, id: &ProductId) -> Option<&Product> {
        self.index.get(id).map(|&i| &self.products[i])
    }

    /// The products `licenses` refer to, each once, in id order.
    pub fn products_of(&self, licenses: &[License]) -> Vec<&Product> {
        let mut at: Vec<usize> = licenses
            .iter()
            .filter_map(|l| self.index.get(l.product()).copied())
            .collect();
        // The products are in id order: so are their positions.
        at.sort_unstable();
        at.dedup();
        at.into_iter().map(|i| &self.products[i]).collect()
    }
}

/// The current [`Snapshot`], behind the [`ProductStore`] port.
pub struct ProductCatalogue {
    store: Arc<dyn ProductStore>,
    /// Held only to clone or swap the pointer, never across an await.
    current: RwLock<Option<Arc<Snapshot>>>,
    /// Numbers refreshes in the order they start: a refresh that started later read a later
    /// version, so an earlier one finishing last never replaces its snapshot.
    tickets: AtomicU64,
}

impl std::fmt::Debug for ProductCatalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProductCatalogue")
            .field("version", &self.current().map(|s| s.version))
            .finish_non_exhaustive()
    }
}

impl ProductCatalogue {
    /// An empty catalogue: the first [`ProductCatalogue::snapshot`] loads it.
    pub fn new(store: Arc<dyn ProductStore>) -> Self {
        Self {
            store,
            current: RwLock::new(None),
            tickets: AtomicU64::new(0),
        }
    }

    /// The snapshot in hand, if any; never touches the store.
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The snapshot in hand, or, when there has never been one, one loaded now.
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>, StoreError> {
        if let Some(snapshot) = self.current() {
            return Ok(snapshot);
        }
        self.refresh().await?;
        self.current()
            .ok_or_else(|| StoreError::Internal("the catalogue was not loaded".into()))
    }

    /// Reads the store's change marker and reloads the products when it moved since the
    /// snapshot in hand. Whether it reloaded; on a store error the snapshot in hand stays.
    pub async fn refresh(&self) -> Result<bool, StoreError> {
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed) + 1;
        let version = self.store.version().await?;
        if self.current().is_some_and(|s| s.version == version) {
            return Ok(false);
        }
        let products = self.store.list().await?;
        let fresh = Arc::new(Snapshot::new(version, ticket, products));
        let mut current = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.as_ref().is_none_or(|s| s.generation < ticket) {
            *current = Some(fresh);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicI64;

    use licenses_domain::ProductId;

    use super::*;
    use crate::ports::MockProductStore;
    use crate::testing::channel_product_draft;

    fn product(id: &str) -> Product {
        Product::new(ProductId::parse(id).expect("id"), channel_product_draft(id)).expect("valid")
    }

    fn ids(s: &Snapshot) -> Vec<&str> {
        s.products().iter().map(|p| p.id().as_str()).collect()
    }

    #[tokio::test]
    async fn products_are_reloaded_only_when_the_version_moves() {
        let version = Arc::new(AtomicI64::new(7));
        let lists = Arc::new(AtomicI64::new(0));
        let mut store = MockProductStore::new();
        let v = Arc::clone(&version);
        store
            .expect_version()
            .returning(move || Ok(v.load(Ordering::SeqCst)));
        let l = Arc::clone(&lists);
        store.expect_list().returning(move || {
            let n = l.fetch_add(1, Ordering::SeqCst);
            Ok(if n == 0 {
                vec![product("a")]
            } else {
                vec![product("a"), product("b")]
            })
        });
        let catalogue = ProductCatalogue::new(Arc::new(store));

        let first = catalogue.snapshot().await.expect("loaded");
        assert_eq!((first.version(), ids(&first)), (7, vec!["a"]));
        assert_eq!(catalogue.refresh().await, Ok(false));
        assert_eq!(catalogue.refresh().await, Ok(false));
        assert_eq!(
            lists.load(Ordering::SeqCst),
            1,
            "unchanged version, no reload"
        );
        let same = catalogue.snapshot().await.expect("in hand");
        assert_eq!(same.generation(), first.generation());

        version.store(8, Ordering::SeqCst);
        assert_eq!(catalogue.refresh().await, Ok(true));
        let second = catalogue.snapshot().await.expect("in hand");
        assert_eq!((second.version(), ids(&second)), (8, vec!["a", "b"]));
        assert_ne!(second.generation(), first.generation());
        assert_eq!(lists.load(Ordering::SeqCst), 2);
        assert!(second.get(&ProductId::parse("b").expect("id")).is_some());
        assert!(second.get(&ProductId::parse("c").expect("id")).is_none());
    }

    #[tokio::test]
    async fn the_last_snapshot_is_kept_while_the_store_fails() {
        let calls = Arc::new(AtomicI64::new(0));
        let mut store = MockProductStore::new();
        let c = Arc::clone(&calls);
        store.expect_version().returning(move || {
            if c.fetch_add(1, Ordering::SeqCst) == 0 {
                Ok(1)
            } else {
                Err(StoreError::Unavailable("down".into()))
            }
        });
        store
            .expect_list()
            .times(1)
            .returning(|| Ok(vec![product("a")]));
        let catalogue = ProductCatalogue::new(Arc::new(store));
        let first = catalogue.snapshot().await.expect("loaded");

        assert_eq!(
            catalogue.refresh().await,
            Err(StoreError::Unavailable("down".into()))
        );
        let kept = catalogue.snapshot().await.expect("kept");
        assert_eq!(kept.generation(), first.generation());
        assert_eq!(ids(&kept), vec!["a"]);
    }

    #[tokio::test]
    async fn a_reload_that_fails_keeps_the_snapshot_and_tries_again_next_time() {
        let mut store = MockProductStore::new();
        let mut versions = [1, 2, 2].into_iter();
        store
            .expect_version()
            .returning(move || Ok(versions.next().expect("three calls")));
        let mut lists = 0;
        store.expect_list().times(3).returning(move || {
            lists += 1;
            match lists {
                2 => Err(StoreError::Unavailable("down".into())),
                _ => Ok(vec![product(if lists == 1 { "a" } else { "b" })]),
            }
        });
        let catalogue = ProductCatalogue::new(Arc::new(store));
        catalogue.snapshot().await.expect("loaded");
        assert!(catalogue.refresh().await.is_err());
        assert_eq!(ids(&catalogue.current().expect("kept")), vec!["a"]);
        assert_eq!(catalogue.refresh().await, Ok(true));
        assert_eq!(ids(&catalogue.current().expect("new")), vec!["b"]);
    }

    #[test]
    fn the_products_of_licenses_come_once_each_in_id_order() {
        use licenses_domain::{LicenseId, LicenseState, StoredParts, Timestamp, UserId};

        let snapshot = Snapshot::new(1, 1, vec![product("a"), product("b"), product("c")]);
        let license = |id: &str, product: &str| {
            License::restore(StoredParts {
                id: LicenseId::parse(id).expect("id"),
                user: UserId::parse("41").expect("id"),
                product: ProductId::parse(product).expect("id"),
                state: LicenseState::Active,
                start_date: Timestamp::from_unix(0),
                stop_date: None,
                order_id: None,
                price: None,
                purchase_timestamp: Timestamp::from_unix(0),
                payment_method: None,
                recurring: false,
                expiry_date: None,
            })
            .expect("valid")
        };
        let licenses = [
            license("1", "c"),
            license("2", "a"),
            license("3", "c"),
            license("4", "gone"),
        ];
        let ids: Vec<&str> = snapshot
            .products_of(&licenses)
            .iter()
            .map(|p| p.id().as_str())
            .collect();
        assert_eq!(
            ids,
            ["a", "c"],
            "once each, in id order, unknown ones left out"
        );
        assert!(snapshot.products_of(&[]).is_empty());
    }

    #[tokio::test]
    async fn without_a_snapshot_a_store_error_is_the_answer() {
        let mut store = MockProductStore::new();
        store
            .expect_version()
            .returning(|| Err(StoreError::Unavailable("down".into())));
        let catalogue = ProductCatalogue::new(Arc::new(store));
        assert_eq!(
            catalogue.snapshot().await.map(|s| s.version()),
            Err(StoreError::Unavailable("down".into()))
        );
        assert!(catalogue.current().is_none());
    }
}
