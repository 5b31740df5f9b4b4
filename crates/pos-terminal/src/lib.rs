//! The terminal service: every sale ends in a journaled, visible state.
//!
//! See the README (state machine, rules) and [`Terminal`].
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod config;
pub mod devices;
pub mod identity;
pub mod inject;
pub mod journal;
pub mod receipt;
pub mod schedule;
pub mod service;
pub mod time;
pub mod vault;

pub use config::Config;
pub use devices::Devices;
pub use inject::{InjectedFault, Injection, NoHook, Step, StepHook};
pub use journal::{Journal, State, Txn};
pub use service::{
    CancelHandle, CardEntry, CashSale, DrainReport, Prompt, RecoveryReport, Terminal,
    TerminalError, TxnRequest, TxnResult,
};
pub mod report;

/// The README's example, compiled and run as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
