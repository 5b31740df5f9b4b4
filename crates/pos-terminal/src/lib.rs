//! The terminal service: every sale ends in a journaled, visible state.
#![warn(missing_docs)]

pub mod config;
pub mod devices;
pub mod inject;

pub use config::Config;
pub use devices::Devices;
pub use inject::{InjectedFault, Injection, NoHook, Step, StepHook};
pub mod journal;
pub mod vault;
