//! The benchmark's data, written through the management API as the BSS writes it: products
//! one by one, licenses in `batch_create`s of 10,000, with a progress bar.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{StreamExt, stream};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::service::{MANAGEMENT_KEY, TOKEN_SECRET};

pub const MANAGEMENT: &str = "/api/license/management/v4";
/// Licenses a `batch_create` takes (the API's maximum).
pub const BATCH: usize = 10_000;
/// Batches in flight while seeding: one being parsed while the other commits.
const IN_FLIGHT: usize = 2;

/// A client of the management API.
#[derive(Debug, Clone)]
pub struct Bss {
    client: reqwest::Client,
    base: String,
}

impl Bss {
    pub fn new(management_url: &str) -> Result<Bss> {
        Ok(Bss {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(300))
                .build()?,
            base: format!("{management_url}{MANAGEMENT}"),
        })
    }

    /// POSTs `doc`; the status and the document answered.
    pub async fn post(&self, path: &str, doc: &Value) -> Result<(u16, Value)> {
        let response = self.send(reqwest::Method::POST, path, doc).await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// PATCHes `doc`; the status.
    pub async fn patch(&self, path: &str, doc: &Value) -> Result<u16> {
        let response = self.send(reqwest::Method::PATCH, path, doc).await?;
        Ok(response.status().as_u16())
    }

    /// DELETEs `path`; the status.
    pub async fn delete(&self, path: &str) -> Result<u16> {
        let response = self
            .client
            .delete(format!("{}{path}", self.base))
            .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
            .send()
            .await
            .with_context(|| format!("DELETE {path}"))?;
        Ok(response.status().as_u16())
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        doc: &Value,
    ) -> Result<reqwest::Response> {
        self.client
            .request(method.clone(), format!("{}{path}", self.base))
            .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
            .header("Content-Type", "application/vnd.api+json")
            .body(serde_json::to_vec(doc)?)
            .send()
            .await
            .with_context(|| format!("{method} {path}"))
    }

    /// A `batch_create` of `licenses`, timed from the request sent to the answer read.
    pub async fn batch_create(&self, licenses: Vec<Value>) -> Result<Duration> {
        let doc = json!({ "data": licenses });
        let started = Instant::now();
        let (status, body) = self.post("/licenses/batch_create", &doc).await?;
        let took = started.elapsed();
        if status != 201 {
            bail!("batch_create answered {status}: {body}");
        }
        Ok(took)
    }
}

/// The catalogue: which products there are, and which a user may buy.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub all: Vec<String>,
    pub buyable: Vec<String>,
}

/// `count` products: nine in ten visible and buyable, one in ten hidden from users; single
/// channels and groups of 2 to 8 live channels (some with catch-up), half of them sold for
/// 30 days.
pub async fn products(bss: &Bss, count: u32, rng: &mut StdRng) -> Result<Catalogue> {
    let bar = bar(u64::from(count), "products");
    let mut catalogue = Catalogue {
        all: Vec::new(),
        buyable: Vec::new(),
    };
    for n in 0..count {
        let visible = n % 10 != 9;
        // One channel in five sold alone; the rest are groups, a third with catch-up.
        let single = n % 5 == 0;
        let count = if single { 1 } else { rng.random_range(2..=8) };
        let channels: Vec<Value> = sample(rng, 400, count)
            .into_iter()
            .map(|c| json!({"type": "Channel", "id": (c + 1).to_string()}))
            .collect();
        let catchup = if !single && n % 3 == 0 {
            channels.clone()
        } else {
            Vec::new()
        };
        let defaults = if n % 2 == 0 {
            json!({"duration": 30 * 86_400})
        } else {
            Value::Null
        };
        let doc = json!({"data": {"type": "Product", "attributes": {
                "title": format!("Bundle {n}"),
                "description": format!("Benchmark bundle {n}"),
                "type": if single { "CHANNEL" } else { "CHANNEL_GROUP" },
                "is_premium": n % 4 == 0,
                "is_user_visible": visible,
                "is_buyable": visible,
                "price_record": {"amount": 100 + n * 10, "currency": "EUR"},
                "license_defaults": defaults},
            "relationships": {
                "live": {"data": channels},
                "catchup": {"data": catchup}}}});
        let (status, body) = bss.post("/products", &doc).await?;
        if status != 201 {
            bail!("creating a product answered {status}: {body}");
        }
        let id = body["data"]["id"]
            .as_str()
            .context("a product without id")?
            .to_owned();
        if visible {
            catalogue.buyable.push(id.clone());
        }
        catalogue.all.push(id);
        bar.inc(1);
    }
    bar.finish();
    Ok(catalogue)
}

/// The id of user number `n`.
pub fn user_id(n: u64) -> String {
    format!("u{n:07}")
}

/// One license of `user` for `product`, as the BSS sends it in a batch.
pub fn license(user: &str, product: &str, order: &str) -> Value {
    json!({"type": "License", "attributes": {"order_id": order},
        "relationships": {
            "user": {"data": {"type": "User", "id": user}},
            "product": {"data": {"type": "Product", "id": product}}}})
}

/// `per_user` licenses of distinct products for each user numbered `first..last`, in
/// batches of [`BATCH`], two in flight.
pub async fn licenses(
    bss: &Bss,
    catalogue: &Catalogue,
    users: std::ops::Range<u64>,
    per_user: usize,
    seed: u64,
) -> Result<()> {
    let total = (users.end - users.start) * per_user as u64;
    let bar = bar(total, "licenses");
    let users_per_batch = (BATCH / per_user) as u64;
    let batches = (users.start..users.end)
        .step_by(users_per_batch as usize)
        .map(|first| first..(first + users_per_batch).min(users.end));
    let products = &catalogue.all;
    let mut sent = stream::iter(batches)
        .map(|range| {
            let mut rng = StdRng::seed_from_u64(seed ^ range.start);
            let data: Vec<Value> = range
                .flat_map(|u| {
                    let user = user_id(u);
                    sample(&mut rng, products.len(), per_user)
                        .into_iter()
                        .enumerate()
                        .map(|(k, p)| license(&user, &products[p], &format!("seed-{k}")))
                        .collect::<Vec<_>>()
                })
                .collect();
            let count = data.len() as u64;
            async move { bss.batch_create(data).await.map(|_| count) }
        })
        .buffer_unordered(IN_FLIGHT);
    while let Some(done) = sent.next().await {
        bar.inc(done?);
    }
    bar.finish();
    Ok(())
}

/// The id of buyer number `n`: a user with no license yet, for the purchase scenario (so
/// that the GET scenarios keep reading 10 licenses a user).
pub fn buyer_id(n: u64) -> String {
    format!("b{n:07}")
}

/// Writes `USER_ID TOKEN` lines for `users` (what bench/lua/scenario.lua reads), each user
/// with a token of their own, valid for a day.
pub fn tokens(path: &Path, users: impl Iterator<Item = String>) -> Result<usize> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut n = 0;
    for user in users {
        let token = licenses_api_user::mint_token(TOKEN_SECRET, &user, &[], 86_400, None, None)
            .map_err(|e| anyhow::anyhow!("cannot mint a token: {e}"))?;
        writeln!(out, "{user} {token}")?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "  {what:<9} [{{elapsed_precise}}] {{wide_bar}} {{human_pos}}/{{human_len}} \
             ({{per_sec}}, {{eta}} left)"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_sort_in_number_order() {
        assert_eq!(user_id(42), "u0000042");
        assert!(user_id(9) < user_id(10));
    }

    #[test]
    fn a_license_names_its_user_product_and_order() {
        let l = license("u1", "p1", "o1");
        assert_eq!(l["relationships"]["user"]["data"]["id"], "u1");
        assert_eq!(l["relationships"]["product"]["data"]["id"], "p1");
        assert_eq!(l["attributes"]["order_id"], "o1");
    }

    #[test]
    fn every_user_gets_a_token_of_their_own() {
        let dir = tempfile_dir();
        let path = dir.join("users.txt");
        assert_eq!(tokens(&path, (5..8).map(user_id)).expect("written"), 3);
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once(' ')).collect();
        assert_eq!(
            lines.iter().map(|(u, _)| *u).collect::<Vec<_>>(),
            ["u0000005", "u0000006", "u0000007"]
        );
        assert_ne!(lines[0].1, lines[1].1);
        std::fs::remove_dir_all(dir).expect("removed");
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("licenses-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }
}
