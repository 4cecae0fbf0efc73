//! When a failed delivery is tried again: quickly at first (a blip, a deploy), then hours
//! apart (an outage), giving up after about three days, long enough for a receiver down over
//! a weekend.

use std::time::Duration;

const SECOND: u64 = 1;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;

/// The wait after each failed attempt, in seconds: Svix's schedule (the authors of Standard
/// Webhooks: 5 s, 5 min, 30 min, 2 h, 5 h, then 10 h) kept up to about three days; the last
/// wait is 5 h so the whole is 72 h 35 min.
const DELAYS: [u64; 12] = [
    5 * SECOND,
    5 * MINUTE,
    30 * MINUTE,
    2 * HOUR,
    5 * HOUR,
    10 * HOUR,
    10 * HOUR,
    10 * HOUR,
    10 * HOUR,
    10 * HOUR,
    10 * HOUR,
    5 * HOUR,
];

/// Attempts of one message, the first included; after the last failed one the message is
/// given up (`retry_delay` answers `None`).
pub const MAX_ATTEMPTS: u32 = DELAYS.len() as u32 + 1;

/// How long to wait before the next attempt, `attempts` having been made and failed; `None`
/// when they are exhausted (and `Duration::ZERO` for a message not tried yet).
///
/// `jitter` (0 to 1, from the caller's RNG, so tests are deterministic) spreads the wait over
/// ±20 %: retries of many messages that failed together (a receiver's outage) do not come
/// back together. 0.5 is the nominal wait; values outside 0..1 are clamped, NaN is 0.5.
pub fn retry_delay(attempts: u32, jitter: f64) -> Option<Duration> {
    let Some(index) = attempts.checked_sub(1) else {
        return Some(Duration::ZERO);
    };
    let base = *DELAYS.get(usize::try_from(index).ok()?)?;
    let jitter = if jitter.is_nan() {
        0.5
    } else {
        jitter.clamp(0.0, 1.0)
    };
    Some(Duration::from_secs(base).mul_f64(0.8 + 0.4 * jitter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spans_about_three_days() {
        let total: Duration = (1..MAX_ATTEMPTS)
            .map(|n| retry_delay(n, 0.5).expect("within the attempts"))
            .sum();
        let hours = total.as_secs_f64() / 3600.0;
        assert!((70.0..=76.0).contains(&hours), "{hours} h");
    }

    #[test]
    fn starts_at_once_then_grows_then_stops() {
        assert_eq!(retry_delay(0, 0.9), Some(Duration::ZERO));
        assert_eq!(retry_delay(1, 0.5), Some(Duration::from_secs(5)));
        assert_eq!(retry_delay(2, 0.5), Some(Duration::from_secs(300)));
        assert_eq!(retry_delay(3, 0.5), Some(Duration::from_secs(1800)));
        assert_eq!(retry_delay(MAX_ATTEMPTS, 0.5), None);
        assert_eq!(retry_delay(MAX_ATTEMPTS + 1, 0.5), None);
        assert_eq!(retry_delay(u32::MAX, 0.5), None);
        assert!(retry_delay(MAX_ATTEMPTS - 1, 0.5).is_some());
    }

    #[test]
    fn jitter_is_twenty_percent_either_way() {
        for n in 1..MAX_ATTEMPTS {
            let nominal = retry_delay(n, 0.5).expect("delay").as_secs_f64();
            let low = retry_delay(n, 0.0).expect("delay").as_secs_f64();
            let high = retry_delay(n, 1.0).expect("delay").as_secs_f64();
            assert!(
                (low - nominal * 0.8).abs() < 1e-6,
                "{n}: {low} vs {nominal}"
            );
            assert!(
                (high - nominal * 1.2).abs() < 1e-6,
                "{n}: {high} vs {nominal}"
            );
            for j in [0.1, 0.33, 0.77, 0.99] {
                let d = retry_delay(n, j).expect("delay").as_secs_f64();
                assert!(low <= d && d <= high);
            }
        }
    }

    #[test]
    fn jitter_out_of_range_is_clamped() {
        assert_eq!(retry_delay(1, -3.0), retry_delay(1, 0.0));
        assert_eq!(retry_delay(1, 7.0), retry_delay(1, 1.0));
        assert_eq!(retry_delay(1, f64::NAN), retry_delay(1, 0.5));
        assert_eq!(retry_delay(1, f64::INFINITY), retry_delay(1, 1.0));
    }

    #[test]
    fn waits_never_shrink_but_for_the_last() {
        let waits: Vec<Duration> = (1..MAX_ATTEMPTS)
            .map(|n| retry_delay(n, 0.5).expect("delay"))
            .collect();
        for pair in waits[..waits.len() - 1].windows(2) {
            assert!(pair[0] <= pair[1]);
        }
    }
}
