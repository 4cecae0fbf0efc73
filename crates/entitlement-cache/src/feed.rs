//! Following `GET /api/license/management/v4/events` (docs/events.md, "The pull feed"):
//! pages in position order, `links.next` always present, and a resync from the current state
//! when the cursor has expired (`410 cursor_expired`).

use std::time::Duration;

use licenses_domain::{License, Product};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use crate::cache::{Applied, EntitlementCache};
use crate::wire::{EventPage, Invalid, LicenseResource, Listing, ProductResource};

const API: &str = "/api/license/management/v4";

/// Events asked for per page (the feed allows 1 to 1000).
pub const PAGE_SIZE: u32 = 500;

/// Why the feed could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The service did not answer, or not in time.
    #[error("the management API cannot be reached: {0}")]
    Http(#[from] reqwest::Error),
    /// The service answered with an unexpected status (401 for a wrong key, 503, …).
    #[error("{url} answered {status}: {body}")]
    Status {
        url: String,
        status: StatusCode,
        body: String,
    },
    /// A document that is not what the management API renders.
    #[error("{url} answered a document the cache cannot read: {why}")]
    Document { url: String, why: String },
    /// A resource the domain refuses.
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

/// What one [`Feed::poll`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Polled {
    /// Events applied.
    pub applied: usize,
    /// Events skipped as already applied.
    pub duplicates: usize,
    /// Whether the cursor had expired and the cache was rebuilt from the current state.
    pub resynced: bool,
}

/// A reader of the event feed of one service, with a management API key (`read` scope).
#[derive(Debug, Clone)]
pub struct Feed {
    client: reqwest::Client,
    base: String,
    key: String,
    /// Where to read next: the last page's `links.next`.
    next: String,
}

impl Feed {
    /// Follows the service whose management API listens at `base` (e.g.
    /// `http://127.0.0.1:8081`, no trailing path), from the oldest event kept.
    pub fn new(base: impl Into<String>, key: impl Into<String>) -> Self {
        let base = base.into().trim_end_matches('/').to_owned();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            next: first_page(&base),
            client,
            base,
            key: key.into(),
        }
    }

    /// Follows from after `position` (a position kept from [`EntitlementCache::position`]
    /// after a restart, with the cache state saved at that position).
    #[must_use]
    pub fn after(mut self, position: i64) -> Self {
        self.next = format!("{}&page%5Bafter%5D={position}", first_page(&self.base));
        self
    }

    /// Uses `client` for every request (proxy settings, TLS roots, timeouts).
    #[must_use]
    pub fn with_client(mut self, client: reqwest::Client) -> Self {
        self.client = client;
        self
    }

    /// Where the next page will be read from.
    pub fn next_url(&self) -> &str {
        &self.next
    }

    /// Reads every page from the cursor until one comes back empty, applying each event to
    /// `cache` in order, and keeps the last `links.next` as the cursor. On `410
    /// cursor_expired` (events were pruned before they were read) it rebuilds `cache` from
    /// `GET /products` and `GET /licenses` and reads the feed again from its oldest event.
    ///
    /// # Errors
    /// [`FeedError`] when a request fails or a document cannot be read. Events applied
    /// before the error stay applied and the cursor stays at the last page fully applied, so
    /// the next call goes on from there (duplicates are skipped by position).
    pub async fn poll(&mut self, cache: &mut EntitlementCache) -> Result<Polled, FeedError> {
        let mut polled = Polled::default();
        loop {
            let url = self.next.clone();
            let response = self.get(&url).await?;
            if response.status() == StatusCode::GONE {
                let body = response.text().await.unwrap_or_default();
                if !body.contains("cursor_expired") {
                    return Err(FeedError::Status {
                        url,
                        status: StatusCode::GONE,
                        body,
                    });
                }
                self.resync(cache).await?;
                polled.resynced = true;
                continue;
            }
            let page: EventPage = read(&url, response).await?;
            for event in &page.data {
                match cache.apply(event)? {
                    Applied::Applied => polled.applied += 1,
                    Applied::Duplicate => polled.duplicates += 1,
                }
            }
            let Some(next) = page.links.next else {
                return Err(FeedError::Document {
                    url,
                    why: "no links.next".into(),
                });
            };
            self.next = next;
            if page.data.is_empty() {
                return Ok(polled);
            }
        }
    }

    /// Rebuilds `cache` from the current state (every product, every license) and moves the
    /// cursor to the oldest event kept, as docs/events.md says to after `cursor_expired`.
    ///
    /// # Errors
    /// [`FeedError`] when a listing cannot be read; `cache` is left as it was then.
    pub async fn resync(&mut self, cache: &mut EntitlementCache) -> Result<(), FeedError> {
        let url = format!("{}{API}/products", self.base);
        let response = self.get(&url).await?;
        let listing: Listing<ProductResource> = read(&url, response).await?;
        let products = listing
            .data
            .iter()
            .map(ProductResource::to_domain)
            .collect::<Result<Vec<Product>, _>>()?;
        let mut licenses: Vec<License> = Vec::new();
        let mut url = format!("{}{API}/licenses?page%5Bsize%5D=1000", self.base);
        loop {
            let response = self.get(&url).await?;
            let listing: Listing<LicenseResource> = read(&url, response).await?;
            for l in &listing.data {
                licenses.extend(l.to_domain()?);
            }
            match listing.links.and_then(|l| l.next) {
                Some(next) if !listing.data.is_empty() => url = next,
                _ => break,
            }
        }
        cache.reset_to(products, licenses);
        self.next = first_page(&self.base);
        Ok(())
    }

    async fn get(&self, url: &str) -> Result<reqwest::Response, FeedError> {
        Ok(self
            .client
            .get(url)
            .header("Authorization", format!("Apikey {}", self.key))
            .header("Accept", "application/vnd.api+json")
            .send()
            .await?)
    }
}

fn first_page(base: &str) -> String {
    format!("{base}{API}/events?page%5Bsize%5D={PAGE_SIZE}")
}

async fn read<T: DeserializeOwned>(url: &str, response: reqwest::Response) -> Result<T, FeedError> {
    let status = response.status();
    let body = response.text().await?;
    if status != StatusCode::OK {
        return Err(FeedError::Status {
            url: url.to_owned(),
            status,
            body,
        });
    }
    serde_json::from_str(&body).map_err(|e| FeedError::Document {
        url: url.to_owned(),
        why: e.to_string(),
    })
}
