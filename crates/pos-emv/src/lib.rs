//! # pos-emv: the EMV contact application layer over any card channel
//!
//! Runs over [`pos_hal::CardChannel`], so over the CCID driver, its virtual reader, or any
//! other backend; never over a reader driver directly.
//!
//! The common path is at the root: [`read_card`] selects the application, initiates
//! processing and reads the records of a powered card, and [`CardRead`] answers the masked
//! PAN, the expiry and the application label (see the README's example); a whole
//! transaction is [`transaction::run`] with a [`TransactionConfig`].
//!
//! - [`apdu`]: ISO 7816-4 command APDUs (cases 1-4, short and extended), response APDUs,
//!   and the T=0 response handling (61xx GET RESPONSE loop, 6Cxx resend).
//! - [`sw`]: status words with meanings for people.
//! - [`tlv`]: a strict, zero-copy BER-TLV decoder and an encoder.
//! - [`tags`]: the EMV tag dictionary (name, format, length) for display.
//! - [`dol`]: data object lists (PDOL, CDOL1, CDOL2, DDOL): parsing and building.
//! - [`restrictions`]: processing restrictions (versions, usage control, dates).
//! - [`cvm`]: the CVM list and its evaluation against the terminal's capabilities.
//! - [`risk`]: terminal risk management (floor limit, random selection, velocity).
//! - [`action`]: terminal action analysis (TAC/IAC) and the GENERATE AC reference control.
//! - [`gac`]: GENERATE AC (CDOL data, formats 1 and 2, cryptogram types).
//! - [`online`]: online response processing: issuer authentication, issuer scripts 71/72,
//!   the second GENERATE AC.
//! - [`record`]: the transaction record for the host (ICC data field), masked for people.
//! - [`transaction`]: the whole contact flow from selection to GENERATE AC 2, with ODA,
//!   the host's answer through a callback, and the reversal signal for the caller.
//! - [`tvr`]: Terminal Verification Results and Transaction Status Information, bit-exact.
//! - [`capk`]: the scheme CA public-key table (loaded from a file, checksums verified).
//! - [`oda`]: offline data authentication: SDA, DDA and CDA (RSA recovery, SHA-1).
//! - [`select`]: application selection (PSE directory, AID list with partial names,
//!   priorities, confirmation through a chooser, blocked applications skipped).
//! - [`read`]: GET PROCESSING OPTIONS (formats 1 and 2, 6985 -> reselect) and AFL-driven
//!   READ RECORD with the offline-authentication input and mandatory-data checks.
//! - [`terminal`]: the terminal's data objects for building PDOL/CDOL data.
//! - [`transcript`]: APDU transcripts (`> command` / `< response` lines).
//! - `script_card` (feature `sim`): a virtual card replaying a transcript.
//! - `profile_card` (feature `sim`): virtual cards of fixed profiles (PSE, CDA, blocked,
//!   expired, AID-list fallback...) whose certificates verify with a simulation CA.
//! - `sim` (feature `sim`): the catalog of these cards for simulated readers
//!   (`sim:ccid?card=visa`, `sim:ccid?script=FILE`).
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod action;
pub mod apdu;
pub mod capk;
pub mod cvm;
pub mod dol;
pub mod gac;
pub mod oda;
pub mod online;
#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub mod profile_card;
pub mod read;
pub mod record;
pub mod restrictions;
pub mod risk;
#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub mod script_card;
pub mod select;
#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub mod sim;
pub mod sw;
pub mod tags;
pub mod terminal;
pub mod tlv;
pub mod transaction;
pub mod transcript;
pub mod tvr;

mod card_read;
mod error;
pub use card_read::{CardRead, read_card, read_card_with};
pub use error::{Cause, EmvError, Step};
// The common path at the root: read a card with one `use pos_emv::...`.
pub use pos_hal::{CardChannel, Fault, FaultKind};
pub use read::{CardData, Processing};
pub use select::{Candidate, Method, SelectedApp, SupportedAid, default_supported_aids};
pub use terminal::TerminalData;
pub use transaction::{OnlineDecision, TransactionConfig, TransactionError, TransactionOutcome};

/// The README's example, compiled and run as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
