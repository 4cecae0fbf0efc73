//! Dates as the console shows and reads them, in UTC, with the `time` crate's calendar.

use licenses_domain::Timestamp;
use time::macros::{format_description, time};
use time::{Date, OffsetDateTime};

/// `2026-12-06 03:51 UTC`; a time beyond the calendar's years 1..=9999 (never stored: the API
/// refuses such dates) as its unix seconds.
pub fn show(t: Timestamp) -> String {
    OffsetDateTime::from_unix_timestamp(t.unix())
        .ok()
        .and_then(|at| {
            at.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| format!("unix time {}", t.unix()))
}

/// The last second (23:59:59 UTC) of a `YYYY-MM-DD` date, as a date input sends it: a license
/// granted "until" that day includes it. `None` for anything else, or a day the calendar does
/// not have (2026-02-30).
pub fn end_of_day(date: &str) -> Option<Timestamp> {
    let day = Date::parse(date.trim(), format_description!("[year]-[month]-[day]")).ok()?;
    Some(Timestamp::from_unix(
        day.with_time(time!(23:59:59)).assume_utc().unix_timestamp(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_show_as_utc_minutes() {
        assert_eq!(show(Timestamp::from_unix(0)), "1970-01-01 00:00 UTC");
        assert_eq!(
            show(Timestamp::from_unix(1_700_000_000)),
            "2023-11-14 22:13 UTC"
        );
        assert_eq!(
            show(Timestamp::from_unix(951_782_400)),
            "2000-02-29 00:00 UTC"
        );
    }

    #[test]
    fn a_date_is_read_as_its_last_second() {
        assert_eq!(
            end_of_day("2000-02-29"),
            Some(Timestamp::from_unix(951_782_400 + 86_399))
        );
        assert_eq!(end_of_day("1970-01-01"), Some(Timestamp::from_unix(86_399)));
        for bad in ["", "2026-02-30", "2026-13-01", "2026-1-01", "26-01-01", "x"] {
            assert_eq!(end_of_day(bad), None, "{bad}");
        }
    }
}
