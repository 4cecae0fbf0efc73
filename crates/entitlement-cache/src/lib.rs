//! An entitlement cache, as another service of the AminoTV platform (playback, nPVR,
//! catch-up) would run it: it follows the license event feed of the Licenses service and
//! answers "may user U watch channel C with service S now, and until when" from memory.
//!
//! It is an example of reusing `licenses-domain`: the licenses and products of the events
//! are rebuilt as the domain's [`License`](licenses_domain::License) and
//! [`Product`](licenses_domain::Product) values, and every answer is the domain's
//! [`resolve`](licenses_domain::resolve), the same function the service runs for
//! `GET /users/{id}/entitlements`. No rule is written again here.
//!
//! - [`EntitlementCache`]: the state (products, each user's licenses, the last position) and
//!   the answers ([`EntitlementCache::may_watch`], [`EntitlementCache::entitlements`]); pure,
//!   no I/O.
//! - [`Feed`]: reads `GET /api/license/management/v4/events` with a management API key,
//!   page after page, and resyncs from the current state on `410 cursor_expired`.
//!
//! ```no_run
//! use licenses_domain::{ChannelId, Service, Timestamp, UserId};
//! use licenses_entitlement_cache::{EntitlementCache, Feed};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut cache = EntitlementCache::new();
//! let mut feed = Feed::new("http://licenses-management.internal:8081", "KEY");
//! feed.poll(&mut cache).await?; // and again every second or so
//! let user = UserId::parse("41")?;
//! let channel = ChannelId::parse("42")?;
//! let now = Timestamp::from_unix(1_765_000_800);
//! match cache.may_watch(&user, &channel, Service::Live, now) {
//!     Some(grant) => println!("yes, until {:?}", grant.until), // None: without end
//!     None => println!("no"),
//! }
//! # Ok(())
//! # }
//! ```

mod cache;
mod feed;
pub mod wire;

pub use cache::{Applied, EntitlementCache};
pub use feed::{Feed, FeedError, PAGE_SIZE, Polled};
