//! Identifiers and money from arbitrary strings and amounts: a parsed id gives back exactly
//! its input; a parsed currency gives back its code (and parses again to itself); a price is
//! refused when negative and keeps its amount otherwise.
#![no_main]

use libfuzzer_sys::fuzz_target;
use licenses_domain::{ChannelId, Currency, LicenseId, OrderId, Price, ProductId, UserId};

macro_rules! round_trip {
    ($ty:ty, $s:expr) => {
        if let Ok(id) = <$ty>::parse($s.to_owned()) {
            assert_eq!(id.as_str(), $s);
            assert!(id.as_str().len() <= <$ty>::MAX_LEN);
            assert_eq!(id.to_string(), $s);
        }
    };
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (amount, text) = data.split_at(8);
    let amount = i64::from_le_bytes(amount.try_into().expect("8 bytes"));
    let text = String::from_utf8_lossy(text);
    let s: &str = &text;
    round_trip!(UserId, s);
    round_trip!(ProductId, s);
    round_trip!(LicenseId, s);
    round_trip!(ChannelId, s);
    round_trip!(OrderId, s);
    if let Some(currency) = Currency::parse(s) {
        assert_eq!(Currency::parse(currency.code()), Some(currency));
        let _ = currency.minor_digits();
        match Price::new(amount, currency) {
            Ok(price) => {
                assert!(amount >= 0);
                assert_eq!((price.amount(), price.currency()), (amount, currency));
            }
            Err(_) => assert!(amount < 0),
        }
    }
});
