use std::fmt;

use serde::Serialize;

use crate::violation::{Violation, Violations};

/// An ISO 4217 currency code (`EUR`), checked against the standard's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    pub fn parse(code: &str) -> Option<Self> {
        // The list is upper case; "eur" is refused rather than guessed at.
        iso_currency::Currency::from_code(code).map(Self)
    }

    /// Every code [`Currency::parse`] accepts, in alphabetical order (for the published
    /// schemas, which list them rather than promising any three capitals).
    pub fn codes() -> Vec<&'static str> {
        let letters = b'A'..=b'Z';
        letters
            .clone()
            .flat_map(|a| {
                let letters = letters.clone();
                letters.clone().flat_map(move |b| {
                    letters.clone().filter_map(move |c| {
                        let code = [a, b, c];
                        std::str::from_utf8(&code)
                            .ok()
                            .and_then(Self::parse)
                            .map(|currency| currency.code())
                    })
                })
            })
            .collect()
    }

    pub fn code(&self) -> &'static str {
        self.0.code()
    }

    /// Decimal places of the minor unit (2 for EUR, 0 for JPY).
    pub fn minor_digits(&self) -> u16 {
        self.0.exponent().unwrap_or(0)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

/// A price: an amount in the currency's minor units (cents) and its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Price {
    amount: i64,
    currency: Currency,
}

/// A price as a client sends it, before validation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PriceDraft {
    pub amount: Option<i64>,
    pub currency: Option<String>,
}

impl Price {
    pub fn new(amount: i64, currency: Currency) -> Result<Self, &'static str> {
        if amount < 0 {
            return Err("must not be negative");
        }
        Ok(Self { amount, currency })
    }

    pub fn amount(&self) -> i64 {
        self.amount
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// Validates a draft; `amount_at` and `currency_at` are the pointers to report at.
    pub(crate) fn from_draft(
        draft: &PriceDraft,
        amount_at: &str,
        currency_at: &str,
        errors: &mut Violations,
    ) -> Option<Self> {
        let amount = match draft.amount {
            None => {
                errors.add(
                    amount_at,
                    "required",
                    "the amount, in minor units, is required",
                );
                None
            }
            Some(a) if a < 0 => {
                errors.add(
                    amount_at,
                    "negative_amount",
                    "the amount must not be negative",
                );
                None
            }
            Some(a) => Some(a),
        };
        let currency = errors.check(parse_currency(draft.currency.as_deref(), currency_at));
        Some(Self {
            amount: amount?,
            currency: currency?,
        })
    }
}

pub(crate) fn parse_currency(code: Option<&str>, at: &str) -> Result<Currency, Violation> {
    match code {
        None => Err(Violation::new(
            at,
            "required",
            "an ISO 4217 currency code is required",
        )),
        Some(c) => Currency::parse(c).ok_or_else(|| {
            Violation::new(
                at,
                "invalid_currency",
                "must be an ISO 4217 currency code such as EUR",
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_are_exactly_the_ones_parse_accepts() {
        let codes = Currency::codes();
        assert!(codes.len() > 150, "{}", codes.len());
        assert!(codes.contains(&"EUR") && codes.contains(&"JPY"));
        assert!(!codes.contains(&"AAA"));
        assert!(codes.windows(2).all(|w| w[0] < w[1]), "sorted, each once");
        assert!(codes.iter().all(|c| Currency::parse(c).is_some()));
    }

    #[test]
    fn currencies_follow_iso_4217() {
        let eur = Currency::parse("EUR").expect("EUR");
        assert_eq!(eur.code(), "EUR");
        assert_eq!(eur.minor_digits(), 2);
        assert!(Currency::parse("XYZ").is_none());
        assert!(Currency::parse("eur").is_none());
        assert!(Currency::parse("").is_none());
    }

    #[test]
    fn a_price_is_never_negative() {
        let eur = Currency::parse("EUR").expect("EUR");
        assert!(Price::new(-1, eur).is_err());
        assert_eq!(Price::new(999, eur).map(|p| p.amount()), Ok(999));
    }

    #[test]
    fn a_draft_reports_each_bad_member() {
        let mut errors = Violations::new();
        let draft = PriceDraft {
            amount: Some(-5),
            currency: Some("EURO".into()),
        };
        assert!(Price::from_draft(&draft, "/a", "/c", &mut errors).is_none());
        let codes: Vec<_> = errors
            .iter()
            .map(|v| (v.pointer.as_str(), v.code))
            .collect();
        assert_eq!(
            codes,
            [("/a", "negative_amount"), ("/c", "invalid_currency")]
        );
    }
}
