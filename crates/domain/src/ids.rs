//! Identifiers. Each is a newtype over a validated string so that a user id can never be
//! passed where a product id is expected.

use std::fmt;

use serde::Serialize;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters long")]
    TooLong { max: usize },
    #[error("must not contain white space or control characters")]
    BadCharacter,
}

fn check(s: &str, max: usize) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    // Characters, as the OpenAPI documents' `maxLength` counts them (a byte count would
    // refuse a 64-character id of accented letters that the schema admits).
    if s.len() > max && s.chars().count() > max {
        return Err(IdError::TooLong { max });
    }
    let bad = if s.is_ascii() {
        // Ids are almost always ASCII, checked here a byte at a time: ASCII's white space and
        // control characters are the bytes up to the space, and DEL.
        s.bytes().any(|b| b <= b' ' || b == 0x7f)
    } else {
        s.chars().any(|c| c.is_whitespace() || c.is_control())
    };
    if bad {
        return Err(IdError::BadCharacter);
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Longest accepted id, in characters (Unicode scalar values).
            pub const MAX_LEN: usize = $max;

            pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check(&s, Self::MAX_LEN)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
    };
}

string_id!(
    /// A product of the catalogue; assigned by this service.
    ProductId, 64
);
string_id!(
    /// A license; assigned by this service, and reused as the Irdeto entitlement id.
    LicenseId, 64
);
string_id!(
    /// A user of the platform; users live in another AminoTV service, only the id is here.
    UserId, 255
);
string_id!(
    /// A channel of the Channel API, as referenced by product relationships.
    ChannelId, 255
);
string_id!(
    /// The client-generated id of one purchase, unique per user: how double billing is avoided.
    OrderId, 255
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_seed_ids_and_emails() {
        assert_eq!(
            UserId::parse("41").map(|u| u.to_string()),
            Ok("41".to_owned())
        );
        assert!(UserId::parse("waqqas.jabbar@gmail.com").is_ok());
        assert!(ChannelId::parse("42").is_ok());
    }

    #[test]
    fn refuses_empty_long_and_spaced_ids() {
        assert_eq!(ProductId::parse(""), Err(IdError::Empty));
        assert_eq!(
            ProductId::parse("x".repeat(65)),
            Err(IdError::TooLong { max: 64 })
        );
        assert_eq!(UserId::parse("a b"), Err(IdError::BadCharacter));
        assert_eq!(UserId::parse("a\u{0}"), Err(IdError::BadCharacter));
        assert_eq!(UserId::parse("a\u{a0}b"), Err(IdError::BadCharacter));
        assert_eq!(UserId::parse("é\u{85}"), Err(IdError::BadCharacter));
        assert!(UserId::parse("josé").is_ok());
    }

    #[test]
    fn the_length_limit_counts_characters_not_bytes() {
        // 64 two-byte characters (128 bytes): as long as the schema's maxLength allows.
        assert!(ProductId::parse("é".repeat(64)).is_ok());
        assert!(ProductId::parse("😀".repeat(64)).is_ok());
        assert_eq!(
            ProductId::parse("é".repeat(65)),
            Err(IdError::TooLong { max: 64 })
        );
        assert!(UserId::parse("ü".repeat(255)).is_ok());
        assert!(UserId::parse("ü".repeat(256)).is_err());
    }

    #[test]
    fn the_ascii_check_refuses_exactly_the_white_space_and_control_characters() {
        for b in 0..=0x7f_u8 {
            let c = char::from(b);
            let refused = c.is_whitespace() || c.is_control();
            assert_eq!(
                UserId::parse(format!("a{c}b")).is_err(),
                refused,
                "byte {b:#04x}"
            );
        }
    }
}
