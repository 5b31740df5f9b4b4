//! Host link to the acquirer: an ISO 8583 (1987) codec for the card-present POS subset.
//!
//! - [`Mti`]: message type indicator (0100/0110, 0200/0210, 0400/0410, 0420/0430,
//!   0800/0810, ...), with the answer to a request from [`Mti::response`].
//! - [`Dialect`]: field formats as data ([`FieldSpec`]: fixed / LLVAR / LLLVAR; ASCII, BCD or
//!   binary; `n`, `an`, `ans`, `b`, `z`), loadable from config via serde
//!   ([`DialectConfig`]). [`Dialect::default_pos`] and [`Dialect::default_pos_bcd`] cover the
//!   usual terminal fields.
//! - [`Message`], [`encode`], [`decode`]: strict both ways; decoding never panics on
//!   network bytes and errors name the field and offset.
//! - [`frame`] and [`Deframer`]: the 2-byte big-endian length framing used over TCP.
//! - [`TcpAcquirer`]: the [`Acquirer`] over TCP ([`AcquirerSettings`]), one connection per
//!   exchange; [`check`]: a connectivity check with a plain [`Diagnosis`].
//! - [`settlement`]: the batch's totals (0500) and its upload (0320), [`Acquirer::reconcile`]
//!   and [`Acquirer::advise`].
//! - `sim` (feature `sim`): `FakeHost`, a fake acquirer host with a
//!   ledger, rules and one-shot faults.
//!
//! Card data hygiene: `Debug` of a [`Message`] masks the PAN and track 2 and shows only the
//! length of track 1, the PIN block and ICC data; [`CodecError`] never carries field values.
//!
//! ```
//! use pos_acquirer::{decode, encode, Dialect, Message, Mti};
//! let dialect = Dialect::default_pos();
//! let mut echo = Message::new(Mti::NETWORK_REQUEST);
//! echo.set_stan(1).set_network_code(301).set_terminal_id("TERM0001");
//! let bytes = encode(&echo, &dialect).unwrap();
//! assert_eq!(decode(&bytes, &dialect).unwrap(), echo);
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod acquirer;
mod check;
mod client;
mod codec;
mod dialect;
mod error;
mod framing;
mod message;
mod mti;
pub mod settlement;
#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub mod sim;

pub use acquirer::{
    Acquirer, AcquirerError, Approval, CardData, Decline, EntryMode, Operation, OriginalData,
    Outcome, Request, Reversal, ReversalReason, WireEvent, is_approval_code, response_reason,
};
pub use check::{CheckReport, Diagnosis, check};
pub use client::{AcquirerSettings, TcpAcquirer, original_data_elements};
pub use codec::{decode, encode};
pub use dialect::{Content, Dialect, DialectConfig, Encoding, FieldSpec, LengthKind};
pub use error::{CodecError, DialectError, Part};
pub use framing::{Deframer, MAX_FRAME, frame};
pub use message::Message;
pub use mti::{BadMti, Mti};

#[doc = include_str!("../README.md")]
#[cfg(all(doctest, feature = "sim"))]
pub struct ReadmeDoctests;
