//! `licenses import` of a legacy file against psql's `\copy` of the same rows into the
//! licenses table, each into a fresh database of the benchmark's cluster with the service's
//! schema (indexes, constraints and the unique `(user_id, order_id)` index included). The
//! bar: the import at 0.6 of COPY's rate or better. `scripts/import-bench.sh` measures the
//! same on any PostgreSQL server, with a re-run and the import's peak RSS.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::psql;
use crate::service::licenses;

/// Rows a transaction of the import, as `scripts/import-bench.sh` and docs/migration.md.
const BATCH: u32 = 1_000;

/// The product every legacy row maps to.
const PRODUCT: &str = "INSERT INTO products (id, title, description, product_type, is_premium, \
    is_user_visible, is_buyable, auto_grant_on_signup, price_amount, price_currency, \
    license_duration, license_auto_renew, irdeto_product_id, live_channels, npvr_channels, \
    catchup_channels, startover_channels, created_at, updated_at) VALUES ('p-sport', 'Sport', \
    '', 'CHANNEL', false, true, true, false, 999, 'EUR', NULL, false, NULL, '[\"42\"]', '[]', \
    '[]', '[]', 0, 0)";

/// What one import and one COPY of the same rows took.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ImportFigures {
    pub rows: u64,
    /// From starting `licenses import` until it exited.
    pub import_ms: f64,
    /// From starting psql until it exited.
    pub copy_ms: f64,
}

/// Imports `rows` legacy rows with `binary` into one fresh database of `server`, copies the
/// same rows into another, checks both hold them all, and drops both.
pub fn import_against_copy(
    binary: &Path,
    config_dir: &Path,
    server: &str,
    rows: u64,
    work: &Path,
) -> Result<ImportFigures> {
    println!("licenses import of {rows} legacy rows against psql COPY of the same rows");
    let legacy = work.join("import-legacy.csv");
    let mapping = work.join("import-products.csv");
    let copied = work.join("import-copy.csv");
    write_files(rows, &legacy, &mapping, &copied)?;
    let (import_db, copy_db) = (
        format!("{server}/bench_import"),
        format!("{server}/bench_copy"),
    );
    for (name, url) in [("bench_import", &import_db), ("bench_copy", &copy_db)] {
        psql(
            &format!("{server}/postgres"),
            &format!("DROP DATABASE IF EXISTS {name}"),
        )?;
        psql(
            &format!("{server}/postgres"),
            &format!("CREATE DATABASE {name}"),
        )?;
        let migrate = licenses(binary, config_dir, url).arg("migrate").output()?;
        if !migrate.status.success() {
            bail!(
                "licenses migrate failed: {}",
                String::from_utf8_lossy(&migrate.stderr)
            );
        }
        psql(url, PRODUCT)?;
    }

    let started = Instant::now();
    let out = licenses(binary, config_dir, &import_db)
        .arg("import")
        .arg(&legacy)
        .arg("--products")
        .arg(&mapping)
        .args(["--batch", &BATCH.to_string(), "--report"])
        .arg(work.join("import-refused.csv"))
        .env("RUST_LOG", "warn")
        .output()?;
    let import_ms = started.elapsed().as_secs_f64() * 1000.0;
    let summary = String::from_utf8_lossy(&out.stdout);
    let want = format!("read {rows}, imported {rows}, already present 0, refused 0");
    if !out.status.success() || summary.trim() != want {
        bail!(
            "licenses import answered {summary:?}, not {want:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    println!("  licenses import: {:.1} s", import_ms / 1000.0);

    let copied_str = copied.to_str().context("a non UTF-8 work directory")?;
    let started = Instant::now();
    psql(
        &copy_db,
        &format!(
            "\\copy licenses (id, user_id, product_id, status, requested_status, \
             status_reason, start_date, stop_date, order_id, price_amount, price_currency, \
             purchase_timestamp, payment_method, recurring, expiry_date, created_at) FROM \
             '{copied_str}' WITH (FORMAT csv)"
        ),
    )?;
    let copy_ms = started.elapsed().as_secs_f64() * 1000.0;
    println!("  psql COPY:       {:.1} s", copy_ms / 1000.0);

    for url in [&import_db, &copy_db] {
        let stored = psql(url, "SELECT count(*) FROM licenses")?;
        if stored != rows.to_string() {
            bail!("{url} holds {stored} licenses, not {rows}");
        }
    }
    for name in ["bench_import", "bench_copy"] {
        psql(
            &format!("{server}/postgres"),
            &format!("DROP DATABASE {name}"),
        )?;
    }
    for file in [&legacy, &mapping, &copied] {
        std::fs::remove_file(file)?;
    }
    Ok(ImportFigures {
        rows,
        import_ms,
        copy_ms,
    })
}

/// The legacy file (user-N, order LEG-N), its product mapping, and the same rows as the
/// licenses table holds them, for COPY.
fn write_files(rows: u64, legacy: &Path, mapping: &Path, copied: &Path) -> Result<()> {
    std::fs::write(mapping, "legacy_code,product_id\nSPORT,p-sport\n")?;
    let mut file = String::from(
        "user_id,product_code,start_date,stop_date,order_id,price_amount,currency,\
         payment_method,recurring\n",
    );
    let mut copy = String::new();
    for i in 1..=rows {
        let _ = writeln!(
            file,
            "user-{i},SPORT,1704067200,1735689600,LEG-{i},999,EUR,card,true"
        );
        let _ = writeln!(
            copy,
            "lic-{i},user-{i},p-sport,ACTIVE,,,1704067200,1735689600,LEG-{i},999,EUR,\
             1700000000,card,true,1735689600,1700000000"
        );
    }
    std::fs::write(legacy, file)?;
    std::fs::write(copied, copy)?;
    Ok(())
}
