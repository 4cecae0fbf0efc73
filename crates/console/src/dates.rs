//! Dates as the console shows and reads them, in UTC, without a date library (Howard
//! Hinnant's civil calendar algorithms).

use licenses_domain::Timestamp;

/// `(year, month, day)` of a day counted from 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-12-06 03:51 UTC`.
pub fn show(t: Timestamp) -> String {
    let secs = t.unix();
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3_600,
        rem % 3_600 / 60
    )
}

/// The last second (23:59:59 UTC) of a `YYYY-MM-DD` date, as a date input sends it: a license
/// granted "until" that day includes it.
pub fn end_of_day(date: &str) -> Option<Timestamp> {
    let mut parts = date.trim().splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&m) || d < 1 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // 2026-02-30 would be March 2nd: refused.
    if civil_from_days(days) != (y, m, d) {
        return None;
    }
    Some(Timestamp::from_unix(days * 86_400 + 86_399))
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
