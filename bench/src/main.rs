//! The performance benchmark (issue 8): the service against the machine's own ceilings,
//! measured in one run. `bench/run` builds the release binaries and runs this; see
//! docs/performance.md for what it measures and writes.
//! (Over 600 lines: one command's whole run, step after step, read top to bottom; the
//! seeding, the load and the report are modules of their own.)

mod events;
mod import;
mod load;
mod report;
mod seed;
mod service;
mod webhooks;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use licenses_testkit::PrivateCluster;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::index::sample;
use serde_json::json;

use load::{Pgbench, Point, Wrk};
use report::{Batch, Results, Scale, Series, median, thousands};
use seed::{BATCH, Bss, Catalogue, buyer_id, user_id};
use service::{Launch, Service};

/// The PostgreSQL settings of the benchmark's cluster, after the testkit's: durable (every
/// commit flushed, as in production), room for 128 pgbench clients beside the service, and
/// a buffer cache a production server of this size would have.
const CLUSTER_SETTINGS: &str = "fsync = on\nsynchronous_commit = on\nfull_page_writes = on\n\
    max_connections = 300\nshared_buffers = 2GB\n";

/// pgbench's scale: 50 branches (5,000,000 accounts), so that TPC-B's branch updates do not
/// all queue on a handful of rows at 32 clients.
const PGBENCH_SCALE: u32 = 50;

/// The users whose tokens a load draws from: a random sample of this many (all of them
/// when there are fewer).
const TOKEN_USERS: usize = 100_000;

/// Measures the service against pgbench, its own /health/live and psql COPY, at each
/// connection count, and writes docs/performance.md and docs/performance.svg.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// The `licenses` release binary (bench/run builds it).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Seconds each load runs at each connection count (after a warm-up of 2 s).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Measured runs of each load at the targets' connection count (32), the median run
    /// kept: a target's two sides are each less at the mercy of one slow run.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Connection counts of every load.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,128")]
    connections: Vec<u32>,
    /// Products in the catalogue.
    #[arg(long, default_value_t = 200)]
    products: u32,
    /// Users, each with `--licenses-per-user` licenses.
    #[arg(long, default_value_t = 100_000)]
    users: u64,
    #[arg(long, default_value_t = 10)]
    licenses_per_user: usize,
    /// batch_create and COPY runs (the medians are compared).
    #[arg(long, default_value_t = 5)]
    batch_runs: usize,
    /// Legacy rows `licenses import` loads, against COPY of the same rows (0: skipped).
    #[arg(long, default_value_t = 1_000_000)]
    import_rows: u64,
    /// Also run the GET scenarios again after seeding up to `--scale-licenses` licenses.
    #[arg(long)]
    scale: bool,
    #[arg(long, default_value_t = 10_000_000)]
    scale_licenses: u64,
    /// The service's `database.pool_size` (default: its configuration's).
    #[arg(long)]
    pool_size: Option<u32>,
    /// Where docs/performance.md and docs/performance.svg go.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs"))]
    out: PathBuf,
    /// Scratch files: tokens, logs, results.json.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench"))]
    work_dir: PathBuf,
    /// Only redraw the page and the plot from the work directory's results.json.
    #[arg(long)]
    report_only: bool,
    /// Seed, then keep the service and its database running (until interrupted) instead of
    /// loading them: for profiling a scenario by hand.
    #[arg(long)]
    hold: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.work_dir)?;
    let results_path = args.work_dir.join("results.json");
    let results = if args.report_only {
        let text = std::fs::read_to_string(&results_path)
            .with_context(|| format!("no results to redraw at {}", results_path.display()))?;
        serde_json::from_str(&text)?
    } else {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let results = runtime.block_on(run(&args))?;
        std::fs::write(&results_path, serde_json::to_vec_pretty(&results)?)?;
        results
    };
    std::fs::create_dir_all(&args.out)?;
    let svg = args.out.join("performance.svg");
    results.plot(&svg)?;
    let md = args.out.join("performance.md");
    std::fs::write(&md, results.markdown("performance.svg"))?;
    println!("\nTargets at {} connections:", report::TARGET_CONNECTIONS);
    for t in results.targets() {
        println!(
            "  {:<58} {:>6.2} (goal {}) {}",
            t.what,
            t.ratio,
            t.goal,
            if t.met() { "met" } else { "MISSED" }
        );
    }
    println!("Wrote {} and {}", md.display(), svg.display());
    Ok(())
}

async fn run(args: &Args) -> Result<Results> {
    for tool in ["wrk", "pgbench", "psql", "curl"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            bail!("{tool} is missing: bench/run installs it (Debian: wrk, postgresql, curl)");
        }
    }
    let binary = match &args.binary {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no directory")?
            .join("licenses"),
    };
    if !binary.is_file() {
        bail!(
            "no service binary at {}: run bench/run, which builds it",
            binary.display()
        );
    }
    let work = args.work_dir.as_path();
    let script = work.join("scenario.lua");
    std::fs::write(&script, include_str!("../lua/scenario.lua"))?;

    println!("PostgreSQL: a cluster of the benchmark's own (initdb, durable settings)");
    let cluster = PrivateCluster::with_settings(CLUSTER_SETTINGS);
    let server = cluster
        .url()
        .rsplit_once('/')
        .map(|(server, _)| server.to_owned())
        .context("a cluster URL without database")?;
    psql(cluster.url(), "CREATE DATABASE licenses")?;
    psql(cluster.url(), "CREATE DATABASE pgbench")?;
    let database = format!("{server}/licenses");
    let pgbench_db = format!("{server}/pgbench");

    let launch = Launch {
        binary: &binary,
        config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("../config"),
        database_url: &database,
        pool_size: args.pool_size,
        log: work.join("service.log"),
        nats_url: None,
        replica_url: None,
    };
    let service = Service::start(&launch)?;
    let bss = Bss::new(&service.management_url)?;
    let mut rng = StdRng::seed_from_u64(20_261_123);

    let licenses_total = args.users * args.licenses_per_user as u64;
    println!(
        "Seeding through the management API: {} products, {} users, {} licenses",
        args.products,
        thousands(args.users),
        thousands(licenses_total)
    );
    let catalogue = seed::products(&bss, args.products, &mut rng).await?;
    service.reset_peak_rss()?;
    let started = Instant::now();
    seed::licenses(&bss, &catalogue, 0..args.users, args.licenses_per_user, 1).await?;
    let seed_seconds = started.elapsed().as_secs_f64();
    let seeding_peak_rss_mib = service.peak_rss_mib()?;
    quiesce(&database)?;

    let users_file = work.join("users.txt");
    tokens_for(&users_file, args.users, &mut rng, user_id)?;
    let buyers_file = work.join("buyers.txt");
    seed::tokens(&buyers_file, (0..TOKEN_USERS as u64).map(buyer_id))?;
    let etag = catalogue_etag(&service.user_url, &users_file)?;
    if args.hold {
        println!(
            "Holding: user API {}, management API {}, database {database}, service pid {}, \
             tokens in {} and {}, wrk script {}; interrupt to end",
            service.user_url,
            service.management_url,
            service.pid(),
            users_file.display(),
            buyers_file.display(),
            script.display()
        );
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }

    let loads = Loads {
        args,
        service: &service,
        script: &script,
    };
    let run_id = std::process::id().to_string();
    let purchase_extra = std::iter::once(run_id.as_str())
        .chain(catalogue.buyable.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(",");
    let mut series = vec![loads.wrk(
        "health",
        "GET /health/live (HTTP ceiling)",
        true,
        "health",
        &users_file,
        None,
    )?];
    prewarm(&database)?;
    series.extend(loads.reads(&users_file)?);
    series.extend([
        loads.wrk(
            "catalogue_304",
            "GET the catalogue, If-None-Match (304)",
            false,
            "catalogue304",
            &users_file,
            Some(etag),
        )?,
        loads.wrk(
            "purchase",
            "purchase",
            false,
            "purchase",
            &buyers_file,
            Some(purchase_extra),
        )?,
    ]);

    println!("pgbench -i -s {PGBENCH_SCALE}");
    let init = Command::new("pgbench")
        .args(["-i", "-q", "-s", &PGBENCH_SCALE.to_string(), &pgbench_db])
        .output()?;
    if !init.status.success() {
        bail!(
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
    }
    psql(&pgbench_db, "VACUUM ANALYZE")?;
    series.push(loads.pgbench(
        "pgbench_select",
        "pgbench -S (select only)",
        Pgbench::SelectOnly,
        &pgbench_db,
    )?);
    series.push(loads.pgbench(
        "pgbench_tpcb",
        "pgbench (TPC-B-like)",
        Pgbench::TpcB,
        &pgbench_db,
    )?);

    series.extend(replica_reads(&cluster, &launch, &loads, &users_file)?);

    let batch = batch_against_copy(args, &bss, &service, &catalogue, &database, work).await?;
    let import = if args.import_rows > 0 {
        import::import_against_copy(&binary, &launch.config_dir, &server, args.import_rows, work)?
    } else {
        import::ImportFigures::default()
    };
    let freshness_ms = freshness(&launch, &service, &bss, &catalogue, &users_file).await?;
    let events = events::events(&launch, &database, &catalogue.buyable[0]).await?;
    let webhooks = webhooks::webhooks(&bss, &catalogue.buyable[0]).await?;

    let scale = if args.scale {
        Some(scale_run(args, &loads, &bss, &catalogue, &database, &mut rng, work).await?)
    } else {
        None
    };

    let pg_version = psql(&database, "SHOW server_version")?;
    service.stop()?;
    Ok(Results {
        date: today(),
        machine: machine(),
        setup: vec![
            (
                "Data".to_owned(),
                format!(
                    "{} products, {} users, {} licenses ({} a user), seeded through the \
                     management API in {seed_seconds:.0} s ({:.0} licenses/s)",
                    args.products,
                    thousands(args.users),
                    thousands(licenses_total),
                    args.licenses_per_user,
                    licenses_total as f64 / seed_seconds
                ),
            ),
            (
                "PostgreSQL".to_owned(),
                format!(
                    "{pg_version}, a cluster of the benchmark's own: {}; pgbench scale \
                     {PGBENCH_SCALE}",
                    CLUSTER_SETTINGS.trim().replace('\n', ", ")
                ),
            ),
            (
                "Service".to_owned(),
                format!(
                    "release build, APP_ENV=local with the benchmark's database, log.format \
                     json; database.pool_size {}",
                    args.pool_size
                        .map_or("from config/default.toml".to_owned(), |n| n.to_string())
                ),
            ),
            (
                "Loads".to_owned(),
                format!(
                    "wrk ({}), 2 threads (1 at 1 connection), {} s a point after 2 s of \
                     warm-up (at {} connections, the median of {} runs, pgbench's too); \
                     connections {}; users drawn at random from {}, each request with \
                     that user's own token and `Accept-Encoding: gzip, deflate`; purchases \
                     by users without licenses, each with a new Idempotency-Key",
                    version_of("wrk", &["-v"]),
                    args.duration,
                    report::TARGET_CONNECTIONS,
                    args.runs.max(1),
                    args.connections
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    thousands(args.users.min(TOKEN_USERS as u64))
                ),
            ),
        ],
        series,
        batch,
        import,
        scale,
        freshness_ms,
        events,
        webhooks,
        seeding_peak_rss_mib,
    })
}

/// The GET scenarios again, on a second service that reads from a streaming replica of the
/// benchmark's cluster (`pg_basebackup -R`, `database.replicas`): the figures of a deployment
/// that moves its reads off the primary.
fn replica_reads(
    cluster: &PrivateCluster,
    launch: &Launch<'_>,
    loads: &Loads<'_>,
    users: &Path,
) -> Result<Vec<Series>> {
    println!(
        "A streaming replica of the cluster (pg_basebackup -R), and a service reading from it"
    );
    let replica = PrivateCluster::replica_of(cluster, "");
    let replica_db = replica
        .url()
        .rsplit_once('/')
        .map(|(server, _)| format!("{server}/licenses"))
        .context("a replica URL without database")?;
    let primary_db = launch.database_url;
    let count = "SELECT count(*) FROM licenses";
    let deadline = Instant::now() + Duration::from_secs(600);
    while psql(&replica_db, count).ok() != Some(psql(primary_db, count)?) {
        if Instant::now() > deadline {
            bail!("the replica did not catch up within 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    prewarm(&replica_db)?;
    let service = Service::start(&Launch {
        replica_url: Some(replica_db.clone()),
        log: launch.log.with_file_name("service-replica.log"),
        ..launch.clone()
    })?;
    let on_replica = Loads {
        args: loads.args,
        service: &service,
        script: loads.script,
    };
    let series = vec![
        on_replica.wrk(
            "licenses_replica",
            "GET a user's licenses, on a replica",
            false,
            "licenses",
            users,
            None,
        )?,
        on_replica.wrk(
            "entitlements_replica",
            "GET entitlements, on a replica",
            false,
            "entitlements",
            users,
            None,
        )?,
    ];
    let served = service.replica_reads()?;
    println!("  reads served by the replica: {served}");
    if served == 0 {
        bail!("the replica served no read: the figures would be the primary's");
    }
    service.stop()?;
    drop(replica);
    Ok(series)
}

/// Runs the loads of one run at every connection count.
struct Loads<'a> {
    args: &'a Args,
    service: &'a Service,
    script: &'a Path,
}

impl Loads<'_> {
    /// The GET scenarios of a user's app: their licenses, their entitlements, the catalogue.
    fn reads(&self, users: &Path) -> Result<Vec<Series>> {
        Ok(vec![
            self.wrk(
                "licenses",
                "GET a user's licenses",
                false,
                "licenses",
                users,
                None,
            )?,
            self.wrk(
                "entitlements",
                "GET entitlements",
                false,
                "entitlements",
                users,
                None,
            )?,
            self.wrk(
                "catalogue",
                "GET the catalogue",
                false,
                "catalogue",
                users,
                None,
            )?,
        ])
    }

    /// Measured runs at `connections`: `--runs` at the targets' count, one elsewhere.
    fn runs_at(&self, connections: u32) -> usize {
        if connections == report::TARGET_CONNECTIONS {
            self.args.runs.max(1)
        } else {
            1
        }
    }

    fn wrk(
        &self,
        key: &str,
        label: &str,
        ceiling: bool,
        mode: &str,
        users: &Path,
        extra: Option<String>,
    ) -> Result<Series> {
        let wrk = Wrk {
            base_url: &self.service.user_url,
            script: self.script,
            mode,
            users,
            extra,
        };
        let mut points = Vec::new();
        for &c in &self.args.connections {
            wrk.run(c, 2)?;
            let mut runs = Vec::new();
            for _ in 0..self.runs_at(c) {
                self.service.reset_peak_rss()?;
                let mut run = wrk.run(c, self.args.duration)?;
                run.peak_rss_mib = Some(self.service.peak_rss_mib()?);
                runs.push(run);
            }
            let point = Point::median_of(runs).context("no run")?;
            print_point(label, &point);
            points.push(point);
        }
        Ok(Series {
            key: key.to_owned(),
            label: label.to_owned(),
            ceiling,
            points,
        })
    }

    fn pgbench(&self, key: &str, label: &str, kind: Pgbench, url: &str) -> Result<Series> {
        let logs = self.args.work_dir.join("pgbench-log");
        let mut points = Vec::new();
        for &c in &self.args.connections {
            kind.run(url, c, 2, &logs)?;
            let runs = (0..self.runs_at(c))
                .map(|_| kind.run(url, c, self.args.duration, &logs))
                .collect::<Result<Vec<_>>>()?;
            let point = Point::median_of(runs).context("no run")?;
            print_point(label, &point);
            points.push(point);
        }
        std::fs::remove_dir_all(&logs)?;
        Ok(Series {
            key: key.to_owned(),
            label: label.to_owned(),
            ceiling: true,
            points,
        })
    }
}

fn print_point(label: &str, p: &Point) {
    println!(
        "  {label:<40} c={:<4} {:>9.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  rss {}  errors {}",
        p.connections,
        p.throughput,
        p.p50_ms,
        p.p99_ms,
        p.peak_rss_mib
            .map_or("-".to_owned(), |r| format!("{r:.1} MiB")),
        p.errors
    );
}

/// Tokens for a random sample of the users numbered `0..users`.
fn tokens_for(path: &Path, users: u64, rng: &mut StdRng, id: fn(u64) -> String) -> Result<()> {
    let population = usize::try_from(users)?;
    let drawn = sample(rng, population, population.min(TOKEN_USERS));
    seed::tokens(path, drawn.into_iter().map(|u| id(u as u64)))?;
    Ok(())
}

/// The catalogue's current ETag, as a client would have it.
fn catalogue_etag(user_url: &str, users: &Path) -> Result<String> {
    let first = std::fs::read_to_string(users)?;
    let token = first
        .lines()
        .next()
        .and_then(|l| l.split_once(' '))
        .map(|(_, t)| t.to_owned())
        .context("no user token")?;
    let out = Command::new("curl")
        .args(["-fsS", "-o", "/dev/null", "-D", "-"])
        .args(["-H", "Accept-Encoding: gzip, deflate", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!("{user_url}/api/license/v4/products"))
        .output()?;
    let headers = String::from_utf8_lossy(&out.stdout);
    headers
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("etag")
                .then(|| value.trim().to_owned())
        })
        .with_context(|| format!("the catalogue has no ETag: {headers}"))
}

/// batch_create of 10,000 licenses (new users) against psql `\copy` of the same rows.
async fn batch_against_copy(
    args: &Args,
    bss: &Bss,
    service: &Service,
    catalogue: &Catalogue,
    database: &str,
    work: &Path,
) -> Result<Batch> {
    println!("batch_create of {BATCH} licenses, {} runs", args.batch_runs);
    let mut batch = Batch::default();
    service.reset_peak_rss()?;
    let mut last = String::new();
    for run in 0..args.batch_runs {
        last = format!("batch{run}-");
        let licenses = (0..BATCH)
            .map(|i| {
                seed::license(
                    &format!("{last}{i:05}"),
                    &catalogue.all[i % catalogue.all.len()],
                    &format!("order-{i}"),
                )
            })
            .collect();
        let took = bss.batch_create(licenses).await?;
        batch.create_ms.push(took.as_secs_f64() * 1000.0);
        println!("  batch_create: {:.0} ms", took.as_secs_f64() * 1000.0);
    }
    batch.create_peak_rss_mib = service.peak_rss_mib()?;

    let rows = work.join("copy-rows.csv");
    let rows_str = rows.to_str().context("a non UTF-8 work directory")?;
    let of_last = format!("user_id LIKE '{last}%'");
    psql(
        database,
        &format!(
            "\\copy (SELECT * FROM licenses WHERE {of_last}) TO '{rows_str}' WITH (FORMAT csv)"
        ),
    )?;
    for _ in 0..args.batch_runs {
        psql(database, &format!("DELETE FROM licenses WHERE {of_last}"))?;
        let out = Command::new("psql")
            .args(["-X", "-v", "ON_ERROR_STOP=1", "-c", "\\timing on", "-c"])
            .arg(format!(
                "\\copy licenses FROM '{rows_str}' WITH (FORMAT csv)"
            ))
            .arg(database)
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !stdout.contains(&format!("COPY {BATCH}")) {
            bail!(
                "psql COPY failed: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let ms = parse_timing_ms(&stdout).with_context(|| format!("no timing in {stdout}"))?;
        batch.copy_ms.push(ms);
        println!("  psql COPY:    {ms:.0} ms");
    }
    Ok(batch)
}

/// `Time: 123.456 ms` (psql's `\timing`); a longer one reads `Time: 1234.567 ms (00:01.235)`.
fn parse_timing_ms(stdout: &str) -> Option<f64> {
    stdout.lines().find_map(|l| {
        l.strip_prefix("Time: ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// How long a product change takes to show in a second instance's catalogue: a title
/// changed through the first instance, the second's catalogue polled every 10 ms.
async fn freshness(
    launch: &Launch<'_>,
    first: &Service,
    bss: &Bss,
    catalogue: &Catalogue,
    users: &Path,
) -> Result<Vec<f64>> {
    let mut second_launch = launch.clone();
    second_launch.log = launch.log.with_file_name("service-2.log");
    let second = Service::start(&second_launch)?;
    let token = std::fs::read_to_string(users)?
        .lines()
        .next()
        .and_then(|l| l.split_once(' '))
        .map(|(_, t)| t.to_owned())
        .context("no user token")?;
    let client = reqwest::Client::new();
    let product = &catalogue.buyable[0];
    let mut delays = Vec::new();
    println!("Catalogue freshness across two instances");
    for n in 0..20 {
        let title = format!("Renamed {n} {}", first.pid());
        let status = bss
            .patch(
                &format!("/products/{product}"),
                &json!({"data": {"type": "Product", "id": product, "attributes": {"title": title}}}),
            )
            .await?;
        if status != 200 {
            bail!("renaming a product answered {status}");
        }
        let changed = Instant::now();
        loop {
            let body = client
                .get(format!("{}/api/license/v4/products", second.user_url))
                .bearer_auth(&token)
                .send()
                .await?
                .text()
                .await?;
            if body.contains(&title) {
                break;
            }
            if changed.elapsed() > Duration::from_secs(10) {
                bail!("the second instance did not show a product change within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        delays.push(changed.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "  median {:.0} ms, worst {:.0} ms",
        median(&delays),
        delays.iter().copied().fold(0.0, f64::max)
    );
    second.stop()?;
    Ok(delays)
}

/// Seeds up to `--scale-licenses` and runs the GET scenarios again, on users drawn from all.
async fn scale_run(
    args: &Args,
    loads: &Loads<'_>,
    bss: &Bss,
    catalogue: &Catalogue,
    database: &str,
    rng: &mut StdRng,
    work: &Path,
) -> Result<Scale> {
    let users = args.scale_licenses / args.licenses_per_user as u64;
    println!(
        "Scale run: seeding up to {} licenses ({} users)",
        thousands(args.scale_licenses),
        thousands(users)
    );
    let started = Instant::now();
    seed::licenses(bss, catalogue, args.users..users, args.licenses_per_user, 2).await?;
    let seed_seconds = started.elapsed().as_secs_f64();
    quiesce(database)?;
    let users_file = work.join("users-scale.txt");
    tokens_for(&users_file, users, rng, user_id)?;
    prewarm(database)?;
    let series = loads.reads(&users_file)?;
    Ok(Scale {
        licenses: args.scale_licenses,
        users,
        seed_seconds,
        series,
    })
}

/// After a seeding, lets the database settle before anything is measured, as pgbench does
/// before its own runs: waits until the service's sequencer has numbered every event the
/// seeding wrote, then `VACUUM ANALYZE` and a `CHECKPOINT`, so that neither the sequencer,
/// autovacuum nor the checkpointer's write-back of the seeding's pages runs under a load.
/// At 10,000,000 licenses they did: GET a user's licenses measured 0.65 of its 1,000,000
/// figure at 8 connections, 0.90 at 32 and 0.97 at 128, one run.
fn quiesce(database: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        let unsequenced = psql(
            database,
            "SELECT count(*) FROM events WHERE position IS NULL",
        )?;
        if unsequenced == "0" {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("{unsequenced} events still unsequenced after 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    psql(database, "VACUUM ANALYZE")?;
    psql(database, "CHECKPOINT")?;
    println!(
        "  settled in {:.1} s: every event sequenced, VACUUM ANALYZE, CHECKPOINT",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Reads the licenses table and its user index into PostgreSQL's buffer cache (pg_prewarm),
/// before the read scenarios of both sizes: the reads are then measured against a cache as a
/// running service has it, not against the pages the seeding happened to leave there. At
/// 10,000,000 licenses the first scenario otherwise paid for warming the cache alone (0.82
/// of its figure at 1,000,000, while the entitlements, the same statement run second, were at
/// 0.97). The heap first, then the index, which stays whole where both do not fit.
fn prewarm(database: &str) -> Result<()> {
    // A replica has the extension from its primary, and refuses to create anything.
    if psql(database, "SELECT pg_is_in_recovery()")? != "t" {
        psql(database, "CREATE EXTENSION IF NOT EXISTS pg_prewarm")?;
    }
    let blocks = psql(
        database,
        "SELECT pg_prewarm('licenses') + pg_prewarm('licenses_user_id_id_idx')",
    )?;
    println!("  pg_prewarm: {blocks} blocks of licenses and its user index");
    Ok(())
}

/// Runs one statement (or psql meta-command) with psql; its output, trimmed.
fn psql(url: &str, sql: &str) -> Result<String> {
    let out = Command::new("psql")
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, url])
        .output()
        .context("cannot run psql")?;
    if !out.status.success() {
        bail!(
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn version_of(tool: &str, args: &[&str]) -> String {
    Command::new(tool)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            text.lines()
                .next()
                .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "unknown version".to_owned())
}

fn today() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// CPU, cores, memory, kernel: what the figures were measured on.
fn machine() -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim())
        })
        .unwrap_or("unknown")
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
        })
        .map_or("unknown".to_owned(), |kib| {
            format!("{:.0} GiB", kib / 1024.0 / 1024.0)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or("unknown".to_owned(), |k| k.trim().to_owned());
    vec![(
        "Machine".to_owned(),
        format!(
            "{cpu}, {cores} cores, {memory}, Linux {kernel}; the load generators run on the same cores as the service and the database"
        ),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psql_timings_are_read_in_ms() {
        assert_eq!(
            parse_timing_ms("Timing is on.\nCOPY 10000\nTime: 85.123 ms\n"),
            Some(85.123)
        );
        assert_eq!(
            parse_timing_ms("Time: 1234.500 ms (00:01.235)\n"),
            Some(1234.5)
        );
        assert_eq!(parse_timing_ms("COPY 10000\n"), None);
    }

    #[test]
    fn the_command_line_has_the_issue_defaults() {
        let args = Args::parse_from(["licenses-bench"]);
        assert_eq!(args.connections, [1, 8, 32, 128]);
        assert_eq!(
            (args.products, args.users, args.licenses_per_user),
            (200, 100_000, 10)
        );
        assert!(!args.scale);
        assert_eq!(args.scale_licenses, 10_000_000);
    }
}
