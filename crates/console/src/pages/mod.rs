//! One module per page or group of actions.

pub mod audit;
pub mod explain;
pub mod home;
pub mod irdeto;
pub mod licenses;
pub mod products;
pub mod sign_in;
pub mod suspension;
pub mod users;

use actix_web::web;

use crate::Console;

/// The console, from a handler's application data.
pub(crate) type Shared = web::Data<Console>;
