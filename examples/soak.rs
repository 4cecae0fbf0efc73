//! The load driver of `scripts/soak.sh` (run that, not this): mixed traffic against a running
//! `licenses serve` for a given duration, an optional database outage in the middle (it runs
//! the commands it is given to stop and start PostgreSQL), then a report and a consistency
//! check against the database itself (through `psql`).
//! (Over 600 lines: one self-contained driver, its scenarios side by side.)
//!
//! Traffic, by weight: the catalogue (30), a user's licenses (30), purchases (15), BSS license
//! creates (12) and 5-license batch creates (3), BSS deletes (8) and 5-license batch deletes
//! (2) of licenses created earlier. Once a client has `--live-per-client` licenses alive, it
//! deletes instead of creating: the data set reaches a steady size, as in production, so
//! that memory growth is the service's, not the answers'.
//! Each client is a task looping over random operations with a random user among `--users`,
//! each with a token of their own.
//!
//! It reports requests by operation and status, throughput, p50/p99 latency, the service's
//! RSS (VmRSS of `--pid`) after the warm-up and at the end, and exits 1 when:
//! - a license answered 201/200 is missing from the database, or stored twice;
//! - a license answered 204 to its DELETE is still there;
//! - a license is in the database that no request of ours was answered success for (and
//!   whose request did not fail with 503 or a transport error, whose outcome is unknown);
//! - a 5xx other than 503 was answered, or a 503 outside the outage window (from the stop
//!   command to `--recovery-grace` seconds after the start command), or a request got no
//!   answer at all (timeout, reset);
//! - RSS grew by 10 % or more between the end of the warm-up and the end.

use std::collections::{HashMap, HashSet};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::Mutex;

const USER_API: &str = "/api/license/v4";
const MANAGEMENT_API: &str = "/api/license/management/v4";
const JSONAPI: &str = "application/vnd.api+json";

#[derive(Parser, Debug, Clone)]
#[command(about = "Load driver of scripts/soak.sh")]
struct Args {
    /// `http://HOST:PORT` of the user API listener.
    #[arg(long)]
    user_url: String,
    /// `http://HOST:PORT` of the management API listener.
    #[arg(long)]
    management_url: String,
    /// Seconds of traffic.
    #[arg(long, default_value_t = 600)]
    duration: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Distinct users (one token each).
    #[arg(long, default_value_t = 2_000)]
    users: usize,
    /// Products created before the traffic starts.
    #[arg(long, default_value_t = 20)]
    products: usize,
    /// Seconds the database is stopped for (0: no outage).
    #[arg(long, default_value_t = 0)]
    outage: u64,
    /// When the outage starts, in seconds from the start of the traffic (default: halfway).
    #[arg(long)]
    outage_at: Option<u64>,
    /// Shell command stopping the database.
    #[arg(long)]
    stop_database: Option<String>,
    /// Shell command starting the database again.
    #[arg(long)]
    start_database: Option<String>,
    /// Seconds after the database is back during which 503s are still expected.
    #[arg(long, default_value_t = 15)]
    recovery_grace: u64,
    /// The service's process, for its RSS.
    #[arg(long)]
    pid: Option<u32>,
    /// Seconds of warm-up before the RSS baseline (default: a tenth of the duration, at most 60).
    #[arg(long)]
    warmup: Option<u64>,
    /// The service's database, for the consistency check (`psql URL`).
    #[arg(long)]
    database_url: String,
    #[arg(long, default_value = "psql")]
    psql: String,
    #[arg(
        long,
        env = "SOAK_MANAGEMENT_KEY",
        default_value = "dev-management-key-change-me"
    )]
    management_key: String,
    #[arg(
        long,
        env = "SOAK_TOKEN_SECRET",
        default_value = "dev-token-secret-change-me-0123456789abcdef"
    )]
    token_secret: String,
    /// Licenses each client keeps alive at most: once it has that many, it deletes instead of
    /// creating, so that the data set (and the size of the answers) stops growing.
    #[arg(long, default_value_t = 250)]
    live_per_client: usize,
    /// Seed of the random traffic.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Op {
    Catalogue,
    MyLicenses,
    Purchase,
    BssCreate,
    BssBatch,
    BssDelete,
    BssBatchDelete,
}

const MIX: &[(Op, u32)] = &[
    (Op::Catalogue, 30),
    (Op::MyLicenses, 30),
    (Op::Purchase, 15),
    (Op::BssCreate, 12),
    (Op::BssBatch, 3),
    (Op::BssDelete, 8),
    (Op::BssBatchDelete, 2),
];

/// One request: when it was sent (ms from the start), what, its status (0: no answer), how
/// long it took.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at_ms: u64,
    op: Op,
    status: u16,
    latency_us: u64,
}

/// What one client saw and did.
#[derive(Debug, Default)]
struct Outcome {
    samples: Vec<Sample>,
    /// Licenses answered 201/200: id → order id.
    created: HashMap<String, String>,
    /// Answered 204 to their DELETE.
    deleted: HashSet<String>,
    /// Creates answered 503 or not at all: their order ids (outcome unknown).
    uncertain_orders: HashSet<String>,
    /// Deletes answered 503 or not at all (outcome unknown).
    uncertain_deletes: HashSet<String>,
    /// A DELETE of a license we were answered 201 for answered 404, or a batch delete of
    /// such licenses refused: a lost license.
    deletes_not_found: Vec<String>,
    /// Requests without an answer: what, when, why.
    failures: Vec<String>,
    /// A license id answered twice for two different creates.
    ids_answered_twice: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Window {
    stop_ms: u64,
    started_ms: u64,
}

struct Shared {
    args: Args,
    client: reqwest::Client,
    tokens: Vec<String>,
    products: Vec<String>,
    start: Instant,
    stop: AtomicBool,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("soak: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .pool_max_idle_per_host(args.clients)
        // Below the server's keep-alive (actix: 5 s), so that the client never reuses a
        // connection the server is closing at that very moment ("connection closed before
        // message completed"), a race of HTTP/1.1 keep-alive, not an answer of the service.
        .pool_idle_timeout(Duration::from_secs(2))
        .no_proxy()
        .build()?;
    let tokens = (0..args.users)
        .map(|u| {
            licenses_api_user::mint_token(
                &args.token_secret,
                &user_id(u),
                &[],
                args.duration + 3_600,
                None,
                None,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut products = Vec::new();
    for p in 0..args.products {
        products.push(create_product(&client, &args, p).await?);
    }
    println!(
        "soak: {} clients, {} users, {} products, {} s{}",
        args.clients,
        args.users,
        products.len(),
        args.duration,
        if args.outage > 0 {
            format!(
                ", database outage of {} s at {} s",
                args.outage,
                outage_at(&args)
            )
        } else {
            String::new()
        }
    );

    let shared = Arc::new(Shared {
        args: args.clone(),
        client,
        tokens,
        products,
        start: Instant::now(),
        stop: AtomicBool::new(false),
    });
    let window = Arc::new(Mutex::new(None::<Window>));
    let outage = tokio::spawn(run_outage(shared.clone(), window.clone()));
    let rss = tokio::spawn(sample_rss(shared.clone()));
    let clients: Vec<_> = (0..args.clients)
        .map(|c| tokio::spawn(client_loop(shared.clone(), c)))
        .collect();
    let end = shared.start + Duration::from_secs(args.duration);
    loop {
        let next = (Instant::now() + Duration::from_secs(30)).min(end);
        tokio::time::sleep_until(next.into()).await;
        if Instant::now() >= end {
            break;
        }
        println!(
            "soak: {:>4} s, RSS {} kB, {} threads",
            shared.start.elapsed().as_secs(),
            args.pid.and_then(vm_rss_kb).unwrap_or(0),
            args.pid
                .and_then(|p| proc_status(p, "Threads:"))
                .unwrap_or(0)
        );
    }
    shared.stop.store(true, Ordering::SeqCst);
    let mut outcomes = Vec::new();
    for c in clients {
        outcomes.push(c.await?);
    }
    let elapsed = shared.start.elapsed();
    outage.await??;
    let rss = rss.await?;
    let window = *window.lock().await;
    let db = read_database(&args)?;
    Ok(report(&args, &outcomes, elapsed, window, &rss, &db))
}

fn user_id(u: usize) -> String {
    format!("soak-user-{u}")
}

fn outage_at(args: &Args) -> u64 {
    args.outage_at.unwrap_or(args.duration / 2)
}

async fn create_product(client: &reqwest::Client, args: &Args, n: usize) -> anyhow::Result<String> {
    let doc = json!({"data": {"type": "Product", "attributes": {
        "title": format!("Soak channel {n}"), "description": "soak", "type": "CHANNEL",
        "is_premium": true, "price_record": {"amount": 499, "currency": "EUR"},
        "license_defaults": {"duration": 2_592_000, "auto_renew": false}},
        "relationships": {"live": {"data": [{"type": "Channel", "id": format!("soak-{n}")}]}}}});
    let r = client
        .post(format!("{}{MANAGEMENT_API}/products", args.management_url))
        .header("Authorization", format!("Apikey {}", args.management_key))
        .header("Content-Type", JSONAPI)
        .body(serde_json::to_vec(&doc)?)
        .send()
        .await?;
    let status = r.status();
    let body: Value = r.json().await?;
    anyhow::ensure!(
        status.as_u16() == 201,
        "creating a product: {status} {body}"
    );
    Ok(body["data"]["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("a product without an id: {body}"))?
        .to_owned())
}

fn pick(rng: &mut StdRng) -> Op {
    let total: u32 = MIX.iter().map(|(_, w)| w).sum();
    let mut n = rng.random_range(0..total);
    for (op, w) in MIX {
        if n < *w {
            return *op;
        }
        n -= w;
    }
    Op::Catalogue
}

async fn client_loop(shared: Arc<Shared>, client_no: usize) -> Outcome {
    let mut rng = StdRng::seed_from_u64(shared.args.seed ^ ((client_no as u64) << 20));
    let mut out = Outcome::default();
    // Licenses this client created and may delete.
    let mut mine: Vec<String> = Vec::new();
    let mut n = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        n += 1;
        let user = rng.random_range(0..shared.args.users);
        let product = shared.products[rng.random_range(0..shared.products.len())].clone();
        let mut op = pick(&mut rng);
        let creates = matches!(op, Op::Purchase | Op::BssCreate | Op::BssBatch);
        if creates && mine.len() >= shared.args.live_per_client {
            op = if n.is_multiple_of(4) {
                Op::BssBatchDelete
            } else {
                Op::BssDelete
            };
        }
        if op == Op::BssBatchDelete && mine.len() < 5 {
            op = Op::BssDelete;
        }
        if op == Op::BssDelete && mine.is_empty() {
            op = Op::BssCreate;
        }
        let order = format!("soak-{client_no}-{n}");
        let started = Instant::now();
        let at_ms = shared.now_ms();
        let answer = match op {
            Op::Catalogue => user_get(&shared, user, "/products").await,
            Op::MyLicenses => {
                let path = format!("/users/{}/licenses", user_id(user));
                user_get(&shared, user, &path).await
            }
            Op::Purchase => {
                let doc = json!({"data": {"type": "License",
                    "attributes": {"payment_method": "billing", "order_id": order},
                    "relationships": {"product": {"data": {"type": "Product", "id": product}}}}});
                let path = format!("{USER_API}/users/{}/licenses", user_id(user));
                let req = shared
                    .client
                    .post(format!("{}{path}", shared.args.user_url))
                    .header("Authorization", format!("Bearer {}", shared.tokens[user]));
                send_document(req, &doc, &order).await
            }
            Op::BssCreate => {
                let doc = json!({"data": license(&user_id(user), &product, &order)});
                send_document(
                    management(&shared, reqwest::Method::POST, "/licenses"),
                    &doc,
                    &order,
                )
                .await
            }
            Op::BssBatch => {
                let data: Vec<Value> = (0..5)
                    .map(|i| {
                        let u = (user + i) % shared.args.users;
                        license(&user_id(u), &product, &format!("{order}-{i}"))
                    })
                    .collect();
                let req = management(&shared, reqwest::Method::POST, "/licenses/batch_create");
                send_document(req, &json!({ "data": data }), &order).await
            }
            Op::BssDelete => {
                let id = mine.swap_remove(rng.random_range(0..mine.len()));
                let req = management(&shared, reqwest::Method::DELETE, &format!("/licenses/{id}"));
                let answer = match req.send().await {
                    Ok(r) => Ok((r.status().as_u16(), Value::Null)),
                    Err(e) => Err(describe(&e)),
                };
                match answer.as_ref().ok().map(|(s, _)| *s) {
                    Some(204) => {
                        out.deleted.insert(id);
                    }
                    Some(404) => out.deletes_not_found.push(id),
                    Some(s) if s >= 500 => {
                        out.uncertain_deletes.insert(id);
                    }
                    None => {
                        out.uncertain_deletes.insert(id);
                    }
                    // Refused (4xx other than 404): still there.
                    Some(_) => mine.push(id),
                }
                answer
            }
            Op::BssBatchDelete => {
                let ids: Vec<String> = (0..5)
                    .map(|_| mine.swap_remove(rng.random_range(0..mine.len())))
                    .collect();
                let data: Vec<Value> = ids
                    .iter()
                    .map(|id| json!({"type": "License", "id": id}))
                    .collect();
                let req = management(&shared, reqwest::Method::POST, "/licenses/batch_delete");
                let answer = send_document(req, &json!({ "data": data }), &order).await;
                match answer.as_ref().ok().map(|(s, _)| *s) {
                    Some(200 | 204) => out.deleted.extend(ids),
                    Some(s) if s < 500 => out.deletes_not_found.extend(ids),
                    _ => out.uncertain_deletes.extend(ids),
                }
                answer
            }
        };
        let latency_us = started.elapsed().as_micros() as u64;
        let status = answer.as_ref().map_or(0, |(s, _)| *s);
        if let Err(e) = &answer {
            out.failures.push(format!(
                "{op:?} sent at {:.1} s: {e}",
                at_ms as f64 / 1000.0
            ));
        }
        out.samples.push(Sample {
            at_ms,
            op,
            status,
            latency_us,
        });
        if matches!(op, Op::Purchase | Op::BssCreate | Op::BssBatch) {
            let orders: Vec<String> = if op == Op::BssBatch {
                (0..5).map(|i| format!("{order}-{i}")).collect()
            } else {
                vec![order.clone()]
            };
            match answer {
                Ok((200 | 201, body)) => {
                    for (id, order) in created_ids(&body, &orders) {
                        if out.created.insert(id.clone(), order).is_some() {
                            out.ids_answered_twice.push(id.clone());
                        }
                        mine.push(id);
                    }
                }
                Ok((s, _)) if s < 500 => {}
                _ => out.uncertain_orders.extend(orders),
            }
        }
    }
    out
}

fn license(user: &str, product: &str, order: &str) -> Value {
    json!({"type": "License", "attributes": {"order_id": order}, "relationships": {
        "user": {"data": {"type": "User", "id": user}},
        "product": {"data": {"type": "Product", "id": product}}}})
}

/// The ids of the licenses of a 201/200 document, with their order ids (from the answer, or
/// by position).
fn created_ids(body: &Value, orders: &[String]) -> Vec<(String, String)> {
    let one = |l: &Value, i: usize| {
        let id = l["id"].as_str()?.to_owned();
        let order = l["attributes"]["order_id"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| orders.get(i).cloned())?;
        Some((id, order))
    };
    match &body["data"] {
        Value::Array(ls) => ls
            .iter()
            .enumerate()
            .filter_map(|(i, l)| one(l, i))
            .collect(),
        l @ Value::Object(_) => one(l, 0).into_iter().collect(),
        _ => Vec::new(),
    }
}

fn management(shared: &Shared, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    shared
        .client
        .request(
            method,
            format!("{}{MANAGEMENT_API}{path}", shared.args.management_url),
        )
        .header(
            "Authorization",
            format!("Apikey {}", shared.args.management_key),
        )
}

/// What a request got: its status and document, or why there was no answer.
type Answer = Result<(u16, Value), String>;

fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    };
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

async fn user_get(shared: &Shared, user: usize, path: &str) -> Answer {
    let r = shared
        .client
        .get(format!("{}{USER_API}{path}", shared.args.user_url))
        .header("Authorization", format!("Bearer {}", shared.tokens[user]))
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let status = r.status().as_u16();
    // Read the body: the latency is the whole answer's.
    r.bytes().await.map_err(|e| describe(&e))?;
    Ok((status, Value::Null))
}

async fn send_document(req: reqwest::RequestBuilder, doc: &Value, key: &str) -> Answer {
    let r = req
        .header("Content-Type", JSONAPI)
        .header("Idempotency-Key", key)
        .body(serde_json::to_vec(doc).map_err(|e| e.to_string())?)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let status = r.status().as_u16();
    let bytes = r.bytes().await.map_err(|e| describe(&e))?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

async fn run_outage(shared: Arc<Shared>, window: Arc<Mutex<Option<Window>>>) -> anyhow::Result<()> {
    let args = &shared.args;
    if args.outage == 0 {
        return Ok(());
    }
    let (Some(stop), Some(start)) = (args.stop_database.clone(), args.start_database.clone())
    else {
        anyhow::bail!("--outage needs --stop-database and --start-database");
    };
    tokio::time::sleep_until((shared.start + Duration::from_secs(outage_at(args))).into()).await;
    let stop_ms = shared.now_ms();
    println!("soak: {:>4} s, stopping the database", stop_ms / 1000);
    shell(&stop).await?;
    tokio::time::sleep(Duration::from_secs(args.outage)).await;
    println!(
        "soak: {:>4} s, starting the database",
        shared.now_ms() / 1000
    );
    shell(&start).await?;
    let started_ms = shared.now_ms();
    println!("soak: {:>4} s, the database is back", started_ms / 1000);
    *window.lock().await = Some(Window {
        stop_ms,
        started_ms,
    });
    Ok(())
}

async fn shell(command: &str) -> anyhow::Result<()> {
    let command = command.to_owned();
    let status =
        tokio::task::spawn_blocking(move || Command::new("sh").arg("-c").arg(&command).status())
            .await??;
    anyhow::ensure!(status.success(), "the outage command failed: {status}");
    Ok(())
}

#[derive(Debug, Default)]
struct Rss {
    boot_kb: u64,
    baseline_kb: u64,
    end_kb: u64,
    max_kb: u64,
}

/// A number of `/proc/PID/status` (`VmRSS:` in kB, `Threads:`).
fn proc_status(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn vm_rss_kb(pid: u32) -> Option<u64> {
    proc_status(pid, "VmRSS:")
}

async fn sample_rss(shared: Arc<Shared>) -> Rss {
    let Some(pid) = shared.args.pid else {
        return Rss::default();
    };
    let warmup = Duration::from_secs(
        shared
            .args
            .warmup
            .unwrap_or((shared.args.duration / 10).min(60)),
    );
    let mut rss = Rss {
        boot_kb: vm_rss_kb(pid).unwrap_or(0),
        ..Rss::default()
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !shared.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let Some(now) = vm_rss_kb(pid) else { continue };
        rss.max_kb = rss.max_kb.max(now);
        if rss.baseline_kb == 0 && shared.start.elapsed() >= warmup {
            rss.baseline_kb = now;
        }
        rss.end_kb = now;
    }
    rss
}

/// Every license row: id → order id (empty when none).
fn read_database(args: &Args) -> anyhow::Result<Vec<(String, String)>> {
    let out = Command::new(&args.psql)
        .arg(&args.database_url)
        .args([
            "-At",
            "-F",
            "\t",
            "-c",
            "SELECT id, coalesce(order_id, '') FROM licenses",
        ])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(id, order)| (id.to_owned(), order.to_owned()))
        .collect())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn report(
    args: &Args,
    outcomes: &[Outcome],
    elapsed: Duration,
    window: Option<Window>,
    rss: &Rss,
    db: &[(String, String)],
) -> bool {
    let mut ok = true;
    let samples: Vec<&Sample> = outcomes.iter().flat_map(|o| &o.samples).collect();
    // A request is in the outage when its answer came between the stop command and the
    // recovery grace after the start command.
    let in_window = |s: &Sample| {
        let answered_ms = s.at_ms + s.latency_us / 1000;
        window.is_some_and(|w| {
            answered_ms >= w.stop_ms && answered_ms <= w.started_ms + args.recovery_grace * 1000
        })
    };

    println!("\n== requests by operation and status");
    let mut by: HashMap<(Op, u16), u64> = HashMap::new();
    for s in &samples {
        *by.entry((s.op, s.status)).or_default() += 1;
    }
    let mut keys: Vec<_> = by.keys().copied().collect();
    keys.sort();
    for (op, status) in keys {
        let label = if status == 0 {
            "no answer".to_owned()
        } else {
            status.to_string()
        };
        println!(
            "{:<12} {:<9} {:>9}",
            format!("{op:?}"),
            label,
            by[&(op, status)]
        );
    }
    let mut by_status: HashMap<u16, u64> = HashMap::new();
    for s in &samples {
        *by_status.entry(s.status).or_default() += 1;
    }
    let mut statuses: Vec<_> = by_status.into_iter().collect();
    statuses.sort();
    println!(
        "all          {}",
        statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    println!("\n== throughput and latency");
    let secs = elapsed.as_secs_f64();
    println!(
        "{} requests in {:.1} s: {:.1} requests/s",
        samples.len(),
        secs,
        samples.len() as f64 / secs
    );
    let mut ops: Vec<Op> = MIX.iter().map(|(op, _)| *op).collect();
    ops.sort();
    let latencies = |filter: &dyn Fn(&Sample) -> bool| {
        let mut l: Vec<u64> = samples
            .iter()
            .filter(|s| s.status != 0 && filter(s))
            .map(|s| s.latency_us)
            .collect();
        l.sort_unstable();
        l
    };
    println!(
        "{:<12} {:>9} {:>10} {:>10} {:>10}",
        "operation", "answered", "p50 ms", "p99 ms", "max ms"
    );
    for op in ops {
        let l = latencies(&|s| s.op == op);
        println!(
            "{:<12} {:>9} {:>10.2} {:>10.2} {:>10.2}",
            format!("{op:?}"),
            l.len(),
            percentile(&l, 50.0),
            percentile(&l, 99.0),
            percentile(&l, 100.0)
        );
    }
    let l = latencies(&|_| true);
    println!(
        "{:<12} {:>9} {:>10.2} {:>10.2} {:>10.2}",
        "all",
        l.len(),
        percentile(&l, 50.0),
        percentile(&l, 99.0),
        percentile(&l, 100.0)
    );
    if window.is_some() {
        let l = latencies(&|s| !in_window(s));
        println!(
            "{:<12} {:>9} {:>10.2} {:>10.2} {:>10.2}",
            "off-outage",
            l.len(),
            percentile(&l, 50.0),
            percentile(&l, 99.0),
            percentile(&l, 100.0)
        );
    }

    println!("\n== errors");
    let server_errors_outside: Vec<_> = samples
        .iter()
        .filter(|s| s.status >= 500 && !in_window(s))
        .collect();
    let non_503: Vec<_> = samples
        .iter()
        .filter(|s| s.status >= 500 && s.status != 503)
        .collect();
    let unanswered = samples.iter().filter(|s| s.status == 0).count();
    println!(
        "5xx outside the outage window: {}",
        server_errors_outside.len()
    );
    println!("5xx other than 503 (anywhere): {}", non_503.len());
    println!("requests without an answer (timeout, reset): {unanswered}");
    for f in outcomes.iter().flat_map(|o| &o.failures).take(10) {
        println!("  {f}");
    }
    for s in server_errors_outside.iter().chain(&non_503).take(10) {
        println!(
            "  e.g. {:?} {} at {:.1} s",
            s.op,
            s.status,
            s.at_ms as f64 / 1000.0
        );
    }
    if !server_errors_outside.is_empty() || !non_503.is_empty() || unanswered > 0 {
        ok = false;
    }

    if let Some(w) = window {
        println!("\n== database outage");
        let during: Vec<_> = samples
            .iter()
            .filter(|s| s.at_ms >= w.stop_ms && s.at_ms <= w.started_ms)
            .collect();
        let unavailable = during.iter().filter(|s| s.status == 503).count();
        let answered_ok = during
            .iter()
            .filter(|s| (200..300).contains(&s.status))
            .count();
        let slowest_503 = samples
            .iter()
            .filter(|s| s.status == 503)
            .map(|s| s.latency_us)
            .max()
            .unwrap_or(0);
        println!(
            "stopped at {:.1} s, back at {:.1} s ({:.1} s down)",
            w.stop_ms as f64 / 1000.0,
            w.started_ms as f64 / 1000.0,
            (w.started_ms - w.stop_ms) as f64 / 1000.0
        );
        println!(
            "while down: {} requests, {unavailable} answered 503, {answered_ok} answered 2xx \
             (served without the database), slowest 503 {:.0} ms",
            during.len(),
            slowest_503 as f64 / 1000.0
        );
        let last_503 = samples
            .iter()
            .filter(|s| s.status == 503)
            .map(|s| s.at_ms + s.latency_us / 1000)
            .max();
        let first_write_after = samples
            .iter()
            .filter(|s| {
                s.at_ms >= w.started_ms
                    && matches!(s.op, Op::Purchase | Op::BssCreate | Op::BssBatch)
                    && (200..300).contains(&s.status)
            })
            .map(|s| s.at_ms + s.latency_us / 1000)
            .min();
        match first_write_after {
            Some(t) => println!(
                "recovered without a restart: first successful write {:.1} s after the database was back",
                (t.saturating_sub(w.started_ms)) as f64 / 1000.0
            ),
            None => {
                println!("NOT RECOVERED: no successful write after the database came back");
                ok = false;
            }
        }
        if let Some(t) = last_503 {
            println!(
                "last 503 answered at {:.1} s ({:+.1} s from the database being back)",
                t as f64 / 1000.0,
                (t as f64 - w.started_ms as f64) / 1000.0
            );
        }
    }

    println!("\n== service RSS (VmRSS)");
    if args.pid.is_some() {
        let growth = if rss.baseline_kb > 0 {
            (rss.end_kb as f64 / rss.baseline_kb as f64 - 1.0) * 100.0
        } else {
            f64::NAN
        };
        println!(
            "at boot {} kB, after the warm-up {} kB, at the end {} kB, max {} kB: growth {:+.1} %",
            rss.boot_kb, rss.baseline_kb, rss.end_kb, rss.max_kb, growth
        );
        if growth.is_nan() || growth >= 10.0 {
            println!("RSS grew by 10 % or more");
            ok = false;
        }
    } else {
        println!("not measured (no --pid)");
    }

    println!("\n== consistency (the database, read with psql)");
    let mut created: HashMap<&str, &str> = HashMap::new();
    let mut deleted: HashSet<&str> = HashSet::new();
    let mut uncertain_orders: HashSet<&str> = HashSet::new();
    let mut uncertain_deletes: HashSet<&str> = HashSet::new();
    let mut twice = 0usize;
    let mut not_found = 0usize;
    for o in outcomes {
        for (id, order) in &o.created {
            if created.insert(id, order).is_some() {
                twice += 1;
            }
        }
        deleted.extend(o.deleted.iter().map(String::as_str));
        uncertain_orders.extend(o.uncertain_orders.iter().map(String::as_str));
        uncertain_deletes.extend(o.uncertain_deletes.iter().map(String::as_str));
        twice += o.ids_answered_twice.len();
        not_found += o.deletes_not_found.len();
    }
    let mut rows: HashMap<&str, u32> = HashMap::new();
    let mut orders: HashMap<&str, u32> = HashMap::new();
    for (id, order) in db {
        *rows.entry(id).or_default() += 1;
        if !order.is_empty() {
            *orders.entry(order).or_default() += 1;
        }
    }
    let expected: Vec<(&str, &str)> = created
        .iter()
        .filter(|(id, _)| !deleted.contains(**id) && !uncertain_deletes.contains(**id))
        .map(|(id, o)| (*id, *o))
        .collect();
    let lost = expected
        .iter()
        .filter(|(id, _)| !rows.contains_key(id))
        .count();
    let duplicated = expected
        .iter()
        .filter(|(id, order)| {
            rows.get(id).copied().unwrap_or(0) > 1 || orders.get(order).copied().unwrap_or(0) > 1
        })
        .count();
    let still_there = deleted.iter().filter(|id| rows.contains_key(**id)).count();
    let ours = |order: &str| order.starts_with("soak-");
    let phantoms = db
        .iter()
        .filter(|(id, order)| {
            ours(order)
                && !created.contains_key(id.as_str())
                && !uncertain_orders.contains(order.as_str())
        })
        .count();
    let uncertain_stored = db
        .iter()
        .filter(|(_, order)| uncertain_orders.contains(order.as_str()))
        .count();
    println!(
        "answered 201/200: {} licenses; deleted (204): {}; rows in the database: {}",
        created.len(),
        deleted.len(),
        db.len()
    );
    println!("expected in the database: {}", expected.len());
    println!("lost (answered 201/200, not deleted, missing): {lost}");
    println!(
        "duplicated (stored twice, or one id answered twice): {}",
        duplicated + twice
    );
    println!("deleted (204) but still there: {still_there}");
    println!("DELETE of a created license answered 404: {not_found}");
    println!("stored without a success answer (phantoms): {phantoms}");
    println!(
        "creates answered 503/no answer: {} licenses, of which committed anyway: {uncertain_stored}; \
         deletes answered 503/no answer: {}",
        uncertain_orders.len(),
        uncertain_deletes.len()
    );
    if lost + duplicated + twice + still_there + not_found + phantoms > 0 {
        ok = false;
    }
    println!("\nsoak: {}", if ok { "PASS" } else { "FAIL" });
    ok
}
