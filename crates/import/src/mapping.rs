//! From the legacy values to a draft: the mapping file (legacy product code to v4 product id),
//! and a row's values into a [`LicenseDraft`], its dates (unix seconds or UTC dates) included.

use std::collections::HashMap;
use std::path::Path;

use licenses_domain::{LicenseDraft, PurchaseDraft, RenewDraft};

use crate::ImportError;
use crate::row::{Column, Fields, Problem};

/// The mapping file: CSV `legacy_code,product_id` with that header.
pub(crate) fn load_mapping(path: &Path) -> Result<HashMap<String, String>, ImportError> {
    let fail = |reason: String| ImportError::Mapping {
        path: path.to_owned(),
        reason,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| fail(e.to_string()))?;
    let headers = reader.headers().map_err(|e| fail(e.to_string()))?.clone();
    if headers.iter().collect::<Vec<_>>() != ["legacy_code", "product_id"] {
        return Err(fail(
            "the header must be exactly legacy_code,product_id".to_owned(),
        ));
    }
    let mut mapping = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| fail(e.to_string()))?;
        let line = record.position().map_or(0, csv::Position::line);
        let (Some(code), Some(id)) = (record.get(0), record.get(1)) else {
            return Err(fail(format!("line {line}: two values expected")));
        };
        if code.is_empty() || id.is_empty() {
            return Err(fail(format!("line {line}: a value is blank")));
        }
        if let Some(earlier) = mapping.insert(code.to_owned(), id.to_owned())
            && earlier != id
        {
            return Err(fail(format!(
                "line {line}: legacy code {code:?} is mapped twice"
            )));
        }
    }
    Ok(mapping)
}

/// Turns a row's values into a draft, or every problem with them.
pub(crate) fn to_draft(
    f: Fields,
    mapping: &HashMap<String, String>,
) -> Result<LicenseDraft, Vec<Problem>> {
    let mut problems = Vec::new();
    let [
        user,
        code,
        start,
        stop,
        order,
        amount,
        currency,
        method,
        recurring,
        status,
        purchased,
    ] = f;
    let product = match code {
        None => None, // the domain reports the missing product
        Some(code) => match mapping.get(&code) {
            Some(id) => Some(id.clone()),
            None => {
                problems.push(Problem::new(
                    Column::ProductCode.name(),
                    "unknown_product_code",
                    format!("the product mapping has no legacy code {code:?}"),
                ));
                None
            }
        },
    };
    let mut date = |value: Option<String>, column: Column| {
        value.and_then(|v| match parse_date(&v) {
            Some(t) => Some(t),
            None => {
                problems.push(Problem::new(
                    column.name(),
                    "invalid_date",
                    format!(
                        "{v:?} is neither unix seconds nor a date like 2024-01-31 or \
                         2024-01-31T12:00:00Z"
                    ),
                ));
                None
            }
        })
    };
    let start_date = date(start, Column::StartDate);
    let stop_date = date(stop, Column::StopDate);
    let purchase_timestamp = date(purchased, Column::PurchaseDate);
    let price_currency_amount = amount.and_then(|v| match v.parse::<i64>() {
        Ok(n) => Some(n),
        Err(_) => {
            problems.push(Problem::new(
                Column::PriceAmount.name(),
                "invalid_amount",
                format!("{v:?} is not a whole number of minor units (cents)"),
            ));
            None
        }
    });
    let recurring = recurring.and_then(|v| match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" => Some(true),
        "false" | "0" | "no" | "n" => Some(false),
        _ => {
            problems.push(Problem::new(
                Column::Recurring.name(),
                "invalid_boolean",
                format!("{v:?} is none of true, false, 1, 0, yes, no"),
            ));
            None
        }
    });
    if user.is_none() {
        problems.push(Problem::new(
            Column::UserId.name(),
            "required",
            "the user id is required",
        ));
    }
    if product.is_none() && !problems.iter().any(|p| p.code == "unknown_product_code") {
        problems.push(Problem::new(
            Column::ProductCode.name(),
            "required",
            "the legacy product code is required",
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let purchase = PurchaseDraft {
        price_currency_amount,
        price_currency_iso4217: currency,
        purchase_timestamp,
        payment_method: method,
    };
    Ok(LicenseDraft {
        user,
        product,
        status,
        start_date,
        stop_date,
        order_id: order,
        purchase_record: Some(purchase),
        renew_record: Some(RenewDraft {
            recurring,
            expiry_date: None,
        }),
    })
}

/// Unix seconds (`1706659200`), a date (`2024-01-31`, midnight UTC) or a UTC date and time
/// (`2024-01-31T12:00:00Z`, also with a space instead of `T`).
fn parse_date(v: &str) -> Option<i64> {
    if let Ok(n) = v.parse::<i64>() {
        return Some(n);
    }
    let b = v.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = v.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, m, d) = match b.len() {
        10 | 20 if b[4] == b'-' && b[7] == b'-' => (digits(0..4)?, digits(5..7)?, digits(8..10)?),
        _ => return None,
    };
    let secs = if b.len() == 20 {
        let ok = matches!(b[10], b'T' | b' ') && b[13] == b':' && b[16] == b':' && b[19] == b'Z';
        let (hh, mm, ss) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
        if !ok || hh > 23 || mm > 59 || ss > 59 {
            return None;
        }
        hh * 3600 + mm * 60 + ss
    } else {
        0
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let month_days = *days_in_month.get(usize::try_from(m.checked_sub(1)?).ok()?)?;
    if d < 1 || d > month_days {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 + secs)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_unix_seconds_or_utc_dates() {
        assert_eq!(parse_date("1706659200"), Some(1_706_659_200));
        assert_eq!(parse_date("2024-01-31"), Some(1_706_659_200));
        assert_eq!(
            parse_date("2024-01-31T12:00:01Z"),
            Some(1_706_659_200 + 43_201)
        );
        assert_eq!(
            parse_date("2024-01-31 12:00:01Z"),
            Some(1_706_659_200 + 43_201)
        );
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2000-02-29"), Some(951_782_400));
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-01-32",
            "2024-01-31T24:00:00Z",
            "2024-01-31T12:00:00+01:00",
            "31/01/2024",
            "soon",
            "",
            "2024-1-31",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_row_becomes_a_draft_through_the_mapping() {
        let mapping = HashMap::from([("SVOD-1".to_owned(), "p-41".to_owned())]);
        let mut f: Fields = Default::default();
        f[Column::UserId.index()] = Some("u1".into());
        f[Column::ProductCode.index()] = Some("SVOD-1".into());
        f[Column::OrderId.index()] = Some("o1".into());
        f[Column::StartDate.index()] = Some("2024-01-31".into());
        f[Column::PriceAmount.index()] = Some("999".into());
        f[Column::Recurring.index()] = Some("yes".into());
        let d = to_draft(f.clone(), &mapping).expect("valid");
        assert_eq!(d.product.as_deref(), Some("p-41"));
        assert_eq!(d.start_date, Some(1_706_659_200));
        assert_eq!(
            d.purchase_record.and_then(|p| p.price_currency_amount),
            Some(999)
        );
        assert_eq!(d.renew_record.and_then(|r| r.recurring), Some(true));

        f[Column::ProductCode.index()] = Some("TVOD-9".into());
        f[Column::PriceAmount.index()] = Some("9.99".into());
        f[Column::Recurring.index()] = Some("maybe".into());
        let codes: Vec<_> = to_draft(f, &mapping)
            .expect_err("bad")
            .into_iter()
            .map(|p| (p.field, p.code))
            .collect();
        assert_eq!(
            codes,
            [
                ("product_code".to_owned(), "unknown_product_code"),
                ("price_amount".to_owned(), "invalid_amount"),
                ("recurring".to_owned(), "invalid_boolean"),
            ]
        );
    }
}
