//! The user API for client apps (set-top boxes, phones, web), under `/api/license/v4`,
//! behind `Authorization: Bearer TOKEN`, where the token is a JWT whose `sub` is the user.

mod token;

pub use token::{
    Algorithm, Claims, DEFAULT_LEEWAY_SECONDS, MIN_SECRET_BYTES, MintError, PURCHASE_RESTRICTED,
    TokenConfigError, TokenError, TokenSettings, TokenVerifier, mint_token,
};

/// Where the user API lives.
pub const PREFIX: &str = "/api/license/v4";
