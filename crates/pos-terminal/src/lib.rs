//! The terminal service: every sale ends in a journaled, visible state.
#![warn(missing_docs)]

pub mod config;
pub mod devices;
pub mod inject;
pub mod journal;
pub mod receipt;
pub mod service;
pub mod time;
pub mod vault;

pub use config::Config;
pub use devices::Devices;
pub use inject::{InjectedFault, Injection, NoHook, Step, StepHook};
pub use journal::{Journal, State, Txn};
pub use service::{
    CardEntry, DrainReport, Prompt, RecoveryReport, Terminal, TerminalError, TxnRequest, TxnResult,
};
pub mod report;
