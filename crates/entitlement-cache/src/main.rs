//! `licenses-entitlement-cache`: follows a Licenses service's event feed and answers queries
//! read from standard input, one a line: `USER CHANNEL SERVICE [AT]` (`AT` in unix seconds,
//! now by default), answered `USER CHANNEL SERVICE: until T`, `…: without end` or `…: no`.

use std::io::BufRead;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use licenses_domain::{ChannelId, Service, Timestamp, UserId};
use licenses_entitlement_cache::{EntitlementCache, Feed};
use tokio::sync::RwLock;

/// Follows a Licenses service's event feed and answers "may USER watch CHANNEL with SERVICE"
/// from memory, one query a line on standard input.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The management listener of the service, e.g. http://127.0.0.1:8081.
    #[arg(long, env = "LICENSES_MANAGEMENT_URL")]
    management_url: String,
    /// A management API key with the `read` scope.
    #[arg(long, env = "LICENSES_API_KEY", hide_env_values = true)]
    api_key: String,
    /// How often to ask the feed for new events, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
}

fn now() -> Timestamp {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Timestamp::from_unix(i64::try_from(seconds).unwrap_or(i64::MAX))
}

/// The answer to one query line.
fn answer(cache: &EntitlementCache, line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (user, channel, service, at) = match words.as_slice() {
        [u, c, s] => (*u, *c, *s, None),
        [u, c, s, at] => (*u, *c, *s, Some(*at)),
        _ => return "expected: USER CHANNEL SERVICE [AT]".to_owned(),
    };
    let (Ok(user_id), Ok(channel_id)) = (UserId::parse(user), ChannelId::parse(channel)) else {
        return "a user and a channel id are 1 to 255 visible characters".to_owned();
    };
    let Some(service_kind) = Service::parse(service) else {
        return "SERVICE is live, npvr, catchup or startover".to_owned();
    };
    let at = match at.map(str::parse::<i64>) {
        None => now(),
        Some(Ok(seconds)) => Timestamp::from_unix(seconds),
        Some(Err(_)) => return "AT is unix seconds".to_owned(),
    };
    let verdict = match cache.may_watch(&user_id, &channel_id, service_kind, at) {
        Some(grant) => match grant.until {
            Some(until) => format!("until {}", until.unix()),
            None => "without end".to_owned(),
        },
        None => "no".to_owned(),
    };
    format!("{user} {channel} {service}: {verdict}")
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let cache = Arc::new(RwLock::new(EntitlementCache::new()));
    let mut feed = Feed::new(args.management_url, args.api_key);
    {
        let mut c = cache.write().await;
        match feed.poll(&mut c).await {
            Ok(polled) => eprintln!(
                "caught up: {} events applied, position {:?}",
                polled.applied,
                c.position()
            ),
            Err(e) => eprintln!("cannot read the feed yet: {e}"),
        }
    }
    let polling = Arc::clone(&cache);
    let interval = Duration::from_millis(args.interval_ms);
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            tokio::time::sleep(interval).await;
            let result = feed.poll(&mut *polling.write().await).await;
            match result {
                Ok(_) if failing => {
                    failing = false;
                    eprintln!("the feed answers again");
                }
                Ok(_) => {}
                Err(e) if !failing => {
                    failing = true;
                    eprintln!("cannot read the feed: {e}; retrying");
                }
                Err(_) => {}
            }
        }
    });
    let queries = tokio::task::spawn_blocking(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line.trim().is_empty() {
                continue;
            }
            println!("{}", answer(&cache.blocking_read(), &line));
        }
    });
    let _ = queries.await;
}
