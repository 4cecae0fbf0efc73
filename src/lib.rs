//! wiring (in progress)
pub mod settings;
