//! The application layer: the ports (traits) through which use cases reach storage, Irdeto,
//! time and id generation, and the use cases the HTTP front-ends call.
//!
//! Front-ends call use cases, never a store; adapters implement the ports. Every port can be
//! mocked with mockall behind the `mock` feature, so use cases are unit-tested without I/O.

pub mod ports;
mod system;

pub use system::{SystemClock, UuidV7Ids};
