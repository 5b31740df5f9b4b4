//! # pos-pcsc: chip readers through pcscd (PC/SC), behind the same `ChipReader`
//!
//! A second road to the card beside pos-ccid's direct USB driver: [`PcscReader`] implements
//! pos-hal's [`ChipReader`](pos_hal::ChipReader) over PC/SC, so a lane can name
//! `pcsc:READER NAME` (or `pcsc:` for the first reader pcscd lists) where it would name a
//! `usb:` reader, on a box where pcscd already runs for other applications, or for readers
//! only pcsc-lite's drivers speak (ICCD tokens, character-level and vendor readers).
//!
//! - [`api`]: the PC/SC calls used, as one narrow trait ([`PcscApi`]) with Rust types.
//! - [`codes`]: pcsc-lite's return codes and constants (raw `LONG` values, named).
//! - [`Libpcsclite`]: the real layer, `libpcsclite.so.1` loaded **at run time** (libloading):
//!   the build needs no system library, and a box without it gets one line:
//!   `pcsc: libpcsclite.so.1 not found: install pcscd and libpcsclite1, or use a usb: reader`.
//! - [`t0`]: T=0 `61xx` / `6Cxx`, which PC/SC leaves to the host.
//! - `fake` (feature `fake`): a scripted PC/SC layer in memory, for tests.
//!
//! ## Faults, as the USB driver classifies them
//!
//! `SCARD_W_REMOVED_CARD` and `SCARD_W_RESET_CARD` are `card_removed`;
//! `SCARD_E_NO_SMARTCARD` is `card_absent` (`card_removed` when an exchange with a powered card
//! finds it gone); `SCARD_E_READER_UNAVAILABLE` (or a reader no longer listed) is
//! `disconnected`, with a `Disconnected` event; `SCARD_E_NO_SERVICE` /
//! `SCARD_E_SERVICE_STOPPED` say "pcscd is not running" with the hint
//! `systemctl start pcscd.socket` (kind `disconnected`); `SCARD_E_TIMEOUT`, and pcscd not
//! answering within [`PcscConfig::call_timeout`], are `timeout`. See [`PcscError`] and
//! [`ScardCode::kind`].
//!
//! ## Bounded
//!
//! `SCardGetStatusChange` always has a finite timeout ([`PcscConfig::monitor_wait`], never
//! `INFINITE`), and closing a reader cancels it (`SCardCancel`). pcsc-lite has no timeout for
//! the other calls, so the reader runs them on a worker thread and waits at most
//! [`PcscConfig::call_timeout`]: a hung pcscd costs the lane a `Timeout` error, never a hang.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod api;
pub mod codes;
mod dylib;
mod error;
mod factory;
#[cfg(feature = "fake")]
#[cfg_attr(docsrs, doc(cfg(feature = "fake")))]
pub mod fake;
mod monitor;
mod reader;
pub mod t0;

pub use api::{
    CardHandle, CardStatus, Context, Disposition, PcscApi, Protocol, ReaderState, ShareMode,
};
pub use codes::ScardCode;
pub use dylib::{LIBRARY_NAME, Libpcsclite, LoadError};
pub use error::{LIBRARY_MISSING_HINT, NO_SERVICE_HINT, PcscError};
pub use factory::{
    ReaderEntry, library, list, list_with, open, open_library, open_with, reader_of,
};
pub use reader::{PcscConfig, PcscReader, Sharing};

/// The README's example, compiled and run as a doctest so it cannot rot.
#[cfg(all(doctest, feature = "fake"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
