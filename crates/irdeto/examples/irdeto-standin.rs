//! The stand-in Irdeto as a process, for scripts that drive the whole service (the console's
//! browser test, scripts/console-browser.sh): serves on a free loopback port, prints
//! `irdeto-standin url=http://127.0.0.1:PORT` once it listens, then obeys one command per line
//! on standard input, answering `ok` (or `error: …`) on standard output:
//!
//! - `down` / `up`: answer every request 503 / serve again;
//! - `refuse PRODUCT`: refuse grants of that Irdeto product with 422;
//! - `counts`: print what it was sent, as `created=N revoked=N unavailable=N …`.
//!
//! It stops at the end of its standard input.
//!
//!     cargo run -p licenses-irdeto --example irdeto-standin -- API_KEY

use std::io::BufRead;
use std::sync::Arc;

use licenses_irdeto::standin::StandIn;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let Some(api_key) = std::env::args().nth(1) else {
        eprintln!("usage: irdeto-standin API_KEY");
        std::process::exit(2);
    };
    let standin = Arc::new(StandIn::start(&api_key)?);
    println!("irdeto-standin url={}", standin.url());

    let commands = Arc::clone(&standin);
    let stdin = tokio::task::spawn_blocking(move || obey(&commands));
    stdin.await.map_err(std::io::Error::other)?
}

/// Reads commands until standard input ends.
fn obey(standin: &StandIn) -> std::io::Result<()> {
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let mut words = line.split_whitespace();
        let answer = match (words.next(), words.next()) {
            (None, _) => continue,
            (Some("down"), None) => {
                standin.set_unavailable(true);
                "ok".to_owned()
            }
            (Some("up"), None) => {
                standin.set_unavailable(false);
                "ok".to_owned()
            }
            (Some("refuse"), Some(product)) => {
                standin.refuse_product(product);
                "ok".to_owned()
            }
            (Some("counts"), None) => {
                let c = standin.counts();
                format!(
                    "created={} duplicates={} revoked={} revoked_missing={} unavailable={} refused={} unauthorized={}",
                    c.created,
                    c.duplicates,
                    c.revoked,
                    c.revoked_missing,
                    c.unavailable,
                    c.refused,
                    c.unauthorized
                )
            }
            _ => format!("error: unknown command {line:?} (down, up, refuse PRODUCT, counts)"),
        };
        println!("{answer}");
    }
    Ok(())
}
