//! The results of a run, and what is made of them: docs/performance.md (the tables, the
//! targets and their ratios) and docs/performance.svg (throughput against connections).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::load::Point;

/// Everything one run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub date: String,
    pub machine: Vec<(String, String)>,
    pub setup: Vec<(String, String)>,
    /// The service's scenarios and the ceilings, at each connection count.
    pub series: Vec<Series>,
    pub batch: Batch,
    /// `licenses import` against COPY (absent from the results of older runs).
    #[serde(default)]
    pub import: crate::import::ImportFigures,
    /// The GET scenarios again on the larger table, when asked for.
    pub scale: Option<Scale>,
    /// How long a product change took to show in another instance's catalogue, in ms.
    pub freshness_ms: Vec<f64>,
    /// License events to NATS JetStream (absent from the results of older runs).
    #[serde(default)]
    pub events: crate::events::EventFigures,
    /// License events to a webhook receiver (absent from the results of older runs).
    #[serde(default)]
    pub webhooks: crate::webhooks::WebhookFigures,
    /// The service's peak RSS while seeding (10,000-license batches), in MiB.
    pub seeding_peak_rss_mib: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Series {
    /// Stable key: `licenses`, `catalogue`, `catalogue_304`, `entitlements`, `purchase`,
    /// `health`, `pgbench_select`, `pgbench_tpcb`, and the reads on a replica
    /// `licenses_replica`, `entitlements_replica`.
    pub key: String,
    pub label: String,
    pub ceiling: bool,
    pub points: Vec<Point>,
}

/// batch_create of [`crate::seed::BATCH`] licenses against psql COPY of the same rows.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Batch {
    pub create_ms: Vec<f64>,
    pub copy_ms: Vec<f64>,
    pub create_peak_rss_mib: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scale {
    pub licenses: u64,
    pub users: u64,
    pub seed_seconds: f64,
    pub series: Vec<Series>,
}

/// The connection count the targets are judged at.
pub const TARGET_CONNECTIONS: u32 = 32;

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if !n.is_multiple_of(2) => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Results {
    fn series(&self, key: &str) -> Option<&Series> {
        self.series.iter().find(|s| s.key == key)
    }

    fn at(&self, key: &str, connections: u32) -> Option<&Point> {
        self.series(key)?
            .points
            .iter()
            .find(|p| p.connections == connections)
    }

    /// The largest peak RSS seen under any load of the run, seeding and batches included.
    pub fn peak_rss_mib(&self) -> f64 {
        let loads = self
            .series
            .iter()
            .chain(self.scale.iter().flat_map(|s| s.series.iter()))
            .flat_map(|s| s.points.iter())
            .filter_map(|p| p.peak_rss_mib);
        loads
            .chain([self.seeding_peak_rss_mib, self.batch.create_peak_rss_mib])
            .fold(0.0, f64::max)
    }

    /// The targets of issue 8, judged on this run.
    pub fn targets(&self) -> Vec<Target> {
        let c = TARGET_CONNECTIONS;
        let mut targets = Vec::new();
        let mut versus = |what: &str, key: &str, ceiling_key: &str, goal: f64| {
            if let (Some(service), Some(ceiling)) = (self.at(key, c), self.at(ceiling_key, c)) {
                let label = |k: &str| {
                    self.series(k)
                        .map_or_else(|| k.to_owned(), |s| s.label.clone())
                };
                targets.push(Target {
                    what: what.to_owned(),
                    measured: format!("{:.0} /s", service.throughput),
                    against: format!("{}: {:.0} /s", label(ceiling_key), ceiling.throughput),
                    ratio: service.throughput / ceiling.throughput,
                    goal: Goal::AtLeast(goal),
                });
            }
        };
        // Issue 20's bars: the hot reads at 0.8 of pgbench -S, on the primary and on a
        // replica, purchase at 0.75 of TPC-B, batch_create within 1.5 of COPY.
        versus("GET a user's licenses", "licenses", "pgbench_select", 0.8);
        versus("GET entitlements", "entitlements", "pgbench_select", 0.8);
        versus(
            "GET a user's licenses, on a replica",
            "licenses_replica",
            "pgbench_select",
            0.8,
        );
        versus(
            "GET entitlements, on a replica",
            "entitlements_replica",
            "pgbench_select",
            0.8,
        );
        versus("GET the catalogue", "catalogue", "health", 0.5);
        versus("purchase", "purchase", "pgbench_tpcb", 0.75);
        if !self.batch.create_ms.is_empty() && !self.batch.copy_ms.is_empty() {
            let create = median(&self.batch.create_ms);
            let copy = median(&self.batch.copy_ms);
            targets.push(Target {
                what: "batch_create of 10,000 licenses (median wall time)".to_owned(),
                measured: format!("{create:.0} ms"),
                against: format!("psql COPY of the same rows: {copy:.0} ms"),
                ratio: create / copy,
                goal: Goal::AtMost(1.5),
            });
        }
        if self.import.rows > 0 {
            let rate = |ms: f64| self.import.rows as f64 / ms * 1000.0;
            targets.push(Target {
                what: format!(
                    "licenses import of {} legacy rows",
                    thousands(self.import.rows)
                ),
                measured: format!("{:.0} rows/s", rate(self.import.import_ms)),
                against: format!(
                    "psql COPY of the same rows: {:.0} rows/s",
                    rate(self.import.copy_ms)
                ),
                ratio: self.import.copy_ms / self.import.import_ms,
                goal: Goal::AtLeast(0.6),
            });
        }
        if let Some(scale) = &self.scale {
            for key in ["licenses", "entitlements", "catalogue"] {
                let big = scale
                    .series
                    .iter()
                    .find(|s| s.key == key)
                    .and_then(|s| s.points.iter().find(|p| p.connections == c));
                if let (Some(big), Some(small)) = (big, self.at(key, c)) {
                    targets.push(Target {
                        what: format!(
                            "{} at {} licenses",
                            self.series(key).map_or(key, |s| s.label.as_str()),
                            thousands(scale.licenses)
                        ),
                        measured: format!("{:.0} /s", big.throughput),
                        against: format!("at 1,000,000: {:.0} /s", small.throughput),
                        ratio: big.throughput / small.throughput,
                        goal: Goal::AtLeast(0.95),
                    });
                }
            }
        }
        targets.push(Target {
            what: "peak RSS of the service, under every load of the run".to_owned(),
            measured: format!("{:.1} MiB", self.peak_rss_mib()),
            against: "100 MiB".to_owned(),
            ratio: self.peak_rss_mib() / 100.0,
            goal: Goal::AtMost(1.0),
        });
        targets
    }

    /// docs/performance.md.
    pub fn markdown(&self, svg_name: &str) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# Performance\n\nMeasured by `bench/run` on {}; this page and \
             [{svg_name}]({svg_name}) are its output (see [How to run](#how-to-run)). Every \
             target is a ratio to a ceiling measured in the same run, on the same machine, at \
             the same concurrency, so the figures of another machine are comparable by \
             their ratios, not by their absolute values.\n",
            self.date
        );
        md.push_str("## Machine and setup\n\n| | |\n|---|---|\n");
        for (k, v) in self.machine.iter().chain(&self.setup) {
            let _ = writeln!(md, "| {k} | {v} |");
        }
        let _ = writeln!(
            md,
            "\n## Targets, at {TARGET_CONNECTIONS} connections\n\n| target | measured | \
             against | ratio | goal | met |\n|---|---:|---:|---:|---:|:---:|"
        );
        for t in self.targets() {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.2} | {} | {} |",
                t.what,
                t.measured,
                t.against,
                t.ratio,
                t.goal,
                if t.met() { "yes" } else { "**no**" }
            );
        }
        let _ = writeln!(
            md,
            "\n## Every load\n\nThroughput in requests (pgbench: transactions) a second; \
             latencies as the load generator saw them; peak RSS of the service during the \
             load (VmHWM, reset before each); errors are answers >= 400 and failed requests. \
             The ratio is to the scenario's ceiling at the same connection count.\n\n\
             ![Throughput against connections]({svg_name})\n"
        );
        table(&mut md, &self.series, |s, p| {
            self.ratio_of(s, p.connections)
        });
        let _ = writeln!(
            md,
            "\n## batch_create against COPY\n\n10,000 licenses for 10,000 new users in one \
             `POST /licenses/batch_create` (request sent to answer read), against \
             `\\copy licenses FROM` of the same rows through psql (psql's `\\timing`), into \
             the same table.\n\n| | runs (ms) | median (ms) |\n|---|---|---:|"
        );
        for (what, runs) in [
            ("batch_create", &self.batch.create_ms),
            ("psql COPY", &self.batch.copy_ms),
        ] {
            let list: Vec<String> = runs.iter().map(|v| format!("{v:.0}")).collect();
            let _ = writeln!(md, "| {what} | {} | {:.0} |", list.join(", "), median(runs));
        }
        if self.import.rows > 0 {
            let i = &self.import;
            let rate = |ms: f64| i.rows as f64 / ms * 1000.0;
            let _ = writeln!(
                md,
                "\n## licenses import against COPY\n\n`licenses import` of a legacy CSV of {} \
                 rows (one product, every row good, `--batch 1000`) into a fresh database of \
                 the cluster with the service's schema, against `\\copy licenses FROM` of \
                 the same rows through psql into another; each from starting the program \
                 until it exited ([migration.md](migration.md#figures)).\n\n| | time | \
                 rows/s |\n|---|---:|---:|\n| licenses import | {:.1} s | {:.0} |\n| psql \
                 COPY | {:.1} s | {:.0} |",
                thousands(i.rows),
                i.import_ms / 1000.0,
                rate(i.import_ms),
                i.copy_ms / 1000.0,
                rate(i.copy_ms),
            );
        }
        if !self.freshness_ms.is_empty() {
            let worst = self.freshness_ms.iter().copied().fold(0.0, f64::max);
            let _ = writeln!(
                md,
                "\n## Catalogue freshness across instances\n\nA product renamed through \
                 one instance's management API, then the catalogue of a second instance \
                 polled every 10 ms until it shows the new title: {} changes, median {:.0} ms, \
                 worst {worst:.0} ms (the bound is 1,000 ms).",
                self.freshness_ms.len(),
                median(&self.freshness_ms)
            );
        }
        if !self.events.delays_ms.is_empty() {
            let e = &self.events;
            let mut delays = e.delays_ms.clone();
            delays.sort_by(f64::total_cmp);
            let median = median(&delays);
            let p90 = delays[delays.len() * 9 / 10];
            let worst = delays[delays.len() - 1];
            let rate = |n: u64, ms: f64| n as f64 / ms * 1000.0;
            let _ = writeln!(
                md,
                "\n## License events to NATS JetStream\n\nA second instance with \
                 `events.nats.url` set, publishing to a `nats-server -js` (file storage) on \
                 loopback ([events.md](events.md#nats-jetstream)).\n\n| | events | time | \
                 events/s |\n|---|---:|---:|---:|\n| the run's backlog, from the \
                 publisher's start until JetStream held it | {} | {:.1} s | {:.0} |\n| one \
                 batch_create, from its answer (the commit) until JetStream acknowledged its \
                 last event | {} | {:.0} ms | {:.0} |\n\nFrom sending `POST /licenses` to a \
                 JetStream consumer's receipt of its `license.created` (an ordered pull \
                 consumer; one license at a time): {} licenses, median {median:.1} ms, p90 \
                 {p90:.1} ms, worst {worst:.1} ms; the goal is a median of 50 ms or less: {}.",
                thousands(e.backlog),
                e.backlog_ms / 1000.0,
                rate(e.backlog, e.backlog_ms),
                thousands(e.batch),
                e.batch_ms,
                rate(e.batch, e.batch_ms),
                delays.len(),
                if median <= 50.0 { "met" } else { "**not met**" },
            );
        }
        if !self.webhooks.delays_ms.is_empty() {
            let w = &self.webhooks;
            let mut delays = w.delays_ms.clone();
            delays.sort_by(f64::total_cmp);
            let median = median(&delays);
            let p90 = delays[delays.len() * 9 / 10];
            let worst = delays[delays.len() - 1];
            let _ = writeln!(
                md,
                "\n## License events to a webhook receiver\n\nAn endpoint registered on the \
                 service for `license.created`, pointing at a receiver on loopback that \
                 verifies every request with the Standard Webhooks reference library \
                 ([events.md](events.md#webhooks)); {} requests failed verification.\n\n| | \
                 events | time | events/s |\n|---|---:|---:|---:|\n| one batch_create, from \
                 its answer (the commit) until the receiver had its last event | {} | {:.0} ms \
                 | {:.0} |\n\nFrom sending `POST /licenses` to the receiver's receipt of its \
                 `license.created`: {} licenses, median {median:.1} ms, p90 {p90:.1} ms, worst \
                 {worst:.1} ms; the goal is a median of 50 ms or less: {}.",
                w.unverified,
                thousands(w.batch),
                w.batch_ms,
                w.batch as f64 / w.batch_ms * 1000.0,
                delays.len(),
                if median <= 50.0 { "met" } else { "**not met**" },
            );
        }
        if let Some(scale) = &self.scale {
            let _ = writeln!(
                md,
                "\n## Scale run: {} licenses\n\nThe same GET scenarios after seeding up to {} \
                 licenses for {} users (10 each; {:.0} s through the management API), and \
                 the same settling and pg_prewarm. Users are drawn at random from all of \
                 them. The ratio is to the same scenario at 1,000,000 licenses.\n",
                thousands(scale.licenses),
                thousands(scale.licenses),
                thousands(scale.users),
                scale.seed_seconds
            );
            table(&mut md, &scale.series, |s, p| {
                let small = self.at(&s.key, p.connections)?;
                Some(p.throughput / small.throughput)
            });
        }
        md.push_str(HOW_TO_RUN);
        md
    }

    fn ratio_of(&self, series: &Series, connections: u32) -> Option<f64> {
        let ceiling = match series.key.as_str() {
            "licenses" | "entitlements" | "licenses_replica" | "entitlements_replica" => {
                "pgbench_select"
            }
            "catalogue" | "catalogue_304" => "health",
            "purchase" => "pgbench_tpcb",
            _ => return None,
        };
        let service = series
            .points
            .iter()
            .find(|p| p.connections == connections)?;
        Some(service.throughput / self.at(ceiling, connections)?.throughput)
    }

    /// docs/performance.svg: throughput against connections, log-log, service solid and
    /// ceilings dashed.
    pub fn plot(&self, path: &Path) -> Result<()> {
        let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let all = self.series.iter().flat_map(|s| s.points.iter());
        let (lo, hi) = all.fold((f64::MAX, 0.0_f64), |(lo, hi), p| {
            (lo.min(p.throughput), hi.max(p.throughput))
        });
        let (lo, hi) = if hi > 0.0 {
            (lo.max(1.0) / 1.5, hi * 1.5)
        } else {
            (1.0, 10.0)
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Throughput against connections ({})", self.date),
                ("sans-serif", 20),
            )
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d((0.8_f64..170.0).log_scale(), (lo..hi).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("connections")
            .y_desc("requests (transactions) / s")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        for (n, s) in self.series.iter().enumerate() {
            let color = Palette99::pick(n).to_rgba();
            let points: Vec<(f64, f64)> = s
                .points
                .iter()
                .map(|p| (f64::from(p.connections), p.throughput))
                .collect();
            let style = color.stroke_width(if s.ceiling { 1 } else { 2 });
            let drawn = if s.ceiling {
                chart.draw_series(DashedLineSeries::new(points.clone(), 6, 4, style))?
            } else {
                chart.draw_series(LineSeries::new(points.clone(), style))?
            };
            drawn
                .label(&s.label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color));
            chart.draw_series(
                points
                    .iter()
                    .map(|&(x, y)| Circle::new((x, y), 3, color.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }
}

fn table(md: &mut String, series: &[Series], ratio: impl Fn(&Series, &Point) -> Option<f64>) {
    md.push_str(
        "| scenario | connections | throughput (/s) | p50 (ms) | p99 (ms) | peak RSS (MiB) | \
         errors | ratio |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for s in series {
        for p in &s.points {
            let _ = writeln!(
                md,
                "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {} | {} |",
                s.label,
                p.connections,
                p.throughput,
                p.p50_ms,
                p.p99_ms,
                p.peak_rss_mib.map_or("–".to_owned(), |r| format!("{r:.1}")),
                p.errors,
                ratio(s, p).map_or("–".to_owned(), |r| format!("{r:.2}"))
            );
        }
    }
}

/// A target of issue 8 and how this run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub what: String,
    pub measured: String,
    pub against: String,
    pub ratio: f64,
    pub goal: Goal,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

impl std::fmt::Display for Goal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Goal::AtLeast(r) => write!(f, ">= {r:.2}"),
            Goal::AtMost(r) => write!(f, "<= {r:.2}"),
        }
    }
}

impl Target {
    pub fn met(&self) -> bool {
        match self.goal {
            Goal::AtLeast(r) => self.ratio >= r,
            Goal::AtMost(r) => self.ratio <= r,
        }
    }
}

/// 1234567 as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const HOW_TO_RUN: &str = "
## How to run

```sh
bench/run                # about 12 minutes: build, seed 1,000,000 licenses, every load
bench/run --scale        # and the GET scenarios again at 10,000,000 licenses (9 more on 2 cores)
bench/run --help         # durations, connection counts, sizes
```

`bench/run` installs wrk, PostgreSQL's client tools and nats-server where missing (Debian), builds the
release binary, creates a PostgreSQL cluster of its own (initdb in a temporary directory,
durable settings, removed at the end), seeds it through the management API, starts
`licenses serve` on it, and loads it with wrk at each connection count after a warm-up.
After each seeding it waits until every event the seeding wrote is sequenced, then runs
`VACUUM ANALYZE` and a `CHECKPOINT` (as pgbench settles its own tables), so that no write-back
of the seeding runs under a load. Before the read scenarios of each size, `pg_prewarm` reads
the licenses table and its user index into PostgreSQL's cache, so that both sizes are
measured against a warm cache. The ceilings come from the same cluster: `pgbench -S` and `pgbench` (TPC-B-like) with prepared
statements on a `pgbench -i` database, and the service's own `/health/live` through the same
wrk script as the scenarios. The script builds each user's request once, before the load
(wrk's own advice: a request built in Lua each time costs wrk about as much CPU as the service
spends answering it, on the same cores); each request goes to a random user with that user's
own token, and each purchase is built with a fresh `Idempotency-Key`. After the loads,
`licenses import` loads 1,000,000 legacy rows into a fresh database against psql's COPY of
the same rows into another (`--import-rows`); a
second instance publishing to a `nats-server -js` of its own measures the license events to
NATS, then a webhook endpoint registered on the service, pointing at a receiver on loopback
that verifies every request with the Standard Webhooks reference library, measures them to a
webhook receiver. It writes this page and the plot, and the raw figures to
`target/bench/results.json` (`bench/run --report-only` redraws the page from them).
";

#[cfg(test)]
mod tests {
    use super::*;

    fn point(connections: u32, throughput: f64) -> Point {
        Point {
            connections,
            throughput,
            p50_ms: 1.0,
            p99_ms: 2.0,
            peak_rss_mib: Some(40.0),
            errors: 0,
            requests: 100,
        }
    }

    fn series(key: &str, ceiling: bool, throughput: f64) -> Series {
        Series {
            key: key.to_owned(),
            label: key.to_owned(),
            ceiling,
            points: vec![point(1, throughput / 4.0), point(32, throughput)],
        }
    }

    fn results() -> Results {
        Results {
            date: "2026-11-23".to_owned(),
            machine: vec![("CPU".to_owned(), "2 cores".to_owned())],
            setup: vec![],
            series: vec![
                series("licenses", false, 6_000.0),
                series("pgbench_select", true, 10_000.0),
                series("catalogue", false, 4_000.0),
                series("health", true, 10_000.0),
                series("purchase", false, 900.0),
                series("pgbench_tpcb", true, 1_000.0),
            ],
            batch: Batch {
                create_ms: vec![300.0, 500.0, 400.0],
                copy_ms: vec![100.0, 90.0, 110.0],
                create_peak_rss_mib: 120.0,
            },
            import: crate::import::ImportFigures::default(),
            scale: None,
            freshness_ms: vec![],
            events: crate::events::EventFigures::default(),
            webhooks: crate::webhooks::WebhookFigures::default(),
            seeding_peak_rss_mib: 160.0,
        }
    }

    #[test]
    fn targets_are_ratios_at_32_connections_and_judged_by_their_goal() {
        let targets = results().targets();
        let by = |w: &str| {
            targets
                .iter()
                .find(|t| t.what.starts_with(w))
                .expect(w)
                .clone()
        };
        let licenses = by("GET a user's");
        assert!(
            (licenses.ratio - 0.6).abs() < 1e-9 && !licenses.met(),
            "the bar is 0.8"
        );
        let catalogue = by("GET the catalogue");
        assert!((catalogue.ratio - 0.4).abs() < 1e-9 && !catalogue.met());
        assert!(by("purchase").met(), "0.9 of TPC-B meets 0.75");
        let batch = by("batch_create");
        assert!(
            (batch.ratio - 4.0).abs() < 1e-9 && !batch.met(),
            "the bar is 1.5"
        );
        let rss = by("peak RSS");
        assert!(!rss.met(), "160 MiB while seeding is over 100");
    }

    #[test]
    fn the_page_has_every_load_and_the_unmet_targets_stand_out() {
        let md = results().markdown("performance.svg");
        assert!(md.contains("| licenses | 32 | 6000 |"), "{md}");
        assert!(md.contains("**no**"));
        assert!(md.contains("![Throughput against connections](performance.svg)"));
        assert!(md.contains("| batch_create | 300, 500, 400 | 400 |"));
    }

    #[test]
    fn the_import_is_judged_by_its_rate_against_copys() {
        let mut run = results();
        assert!(
            !run.targets().iter().any(|t| t.what.contains("import")),
            "no import measured, no target"
        );
        run.import = crate::import::ImportFigures {
            rows: 1_000_000,
            import_ms: 25_000.0,
            copy_ms: 15_000.0,
        };
        let import = run
            .targets()
            .into_iter()
            .find(|t| t.what == "licenses import of 1,000,000 legacy rows")
            .expect("a target");
        assert!(
            (import.ratio - 0.6).abs() < 1e-9 && import.met(),
            "0.6 meets 0.6"
        );
        assert_eq!(import.measured, "40000 rows/s");
        let md = run.markdown("p.svg");
        assert!(md.contains("| licenses import | 25.0 s | 40000 |"), "{md}");
        assert!(md.contains("| psql COPY | 15.0 s | 66667 |"), "{md}");
        run.import.import_ms = 30_000.0;
        assert!(
            !run.targets()
                .iter()
                .any(|t| t.what.contains("import") && t.met())
        );
    }

    #[test]
    fn the_events_section_shows_rates_and_judges_the_median_delay() {
        let mut run = results();
        assert!(
            !run.markdown("p.svg").contains("## License events"),
            "no figures, no section"
        );
        run.events = crate::events::EventFigures {
            backlog: 1_000_000,
            backlog_ms: 20_000.0,
            batch: 10_000,
            batch_ms: 250.0,
            delays_ms: vec![60.0, 4.0, 5.0, 6.0, 3.0],
        };
        let md = run.markdown("p.svg");
        assert!(md.contains("| 1,000,000 | 20.0 s | 50000 |"), "{md}");
        assert!(md.contains("| 10,000 | 250 ms | 40000 |"), "{md}");
        assert!(
            md.contains("median 5.0 ms, p90 60.0 ms, worst 60.0 ms"),
            "{md}"
        );
        assert!(md.contains(": met."), "{md}");
        run.events.delays_ms = vec![80.0, 51.0, 20.0];
        assert!(run.markdown("p.svg").contains("**not met**"));
    }

    #[test]
    fn the_webhooks_section_shows_the_rate_and_judges_the_median_delay() {
        let mut run = results();
        assert!(
            !run.markdown("p.svg")
                .contains("## License events to a webhook"),
            "no figures, no section"
        );
        run.webhooks = crate::webhooks::WebhookFigures {
            batch: 10_000,
            batch_ms: 2_000.0,
            delays_ms: vec![9.0, 7.0, 8.0, 30.0, 6.0],
            unverified: 0,
        };
        let md = run.markdown("p.svg");
        assert!(md.contains("| 10,000 | 2000 ms | 5000 |"), "{md}");
        assert!(
            md.contains("median 8.0 ms, p90 30.0 ms, worst 30.0 ms"),
            "{md}"
        );
        assert!(md.contains("0 requests failed verification"), "{md}");
        assert!(md.contains(": met."), "{md}");
        run.webhooks.delays_ms = vec![80.0, 51.0, 20.0];
        assert!(run.markdown("p.svg").contains("**not met**"));
    }

    #[test]
    fn the_plot_is_an_svg_with_every_series() {
        let path = std::env::temp_dir().join(format!("bench-plot-{}.svg", std::process::id()));
        results().plot(&path).expect("drawn");
        let svg = std::fs::read_to_string(&path).expect("read");
        std::fs::remove_file(&path).expect("removed");
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        for key in ["licenses", "pgbench_select", "health", "purchase"] {
            assert!(svg.contains(key), "{key} missing");
        }
    }

    #[test]
    fn medians_and_thousands() {
        assert!((median(&[3.0, 1.0, 2.0]) - 2.0).abs() < 1e-9);
        assert!((median(&[4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < 1e-9);
        assert!(median(&[]).is_nan());
        assert_eq!(thousands(10_000_000), "10,000,000");
        assert_eq!(thousands(999), "999");
    }
}
