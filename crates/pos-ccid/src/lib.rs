//! # pos-ccid: USB CCID smart-card readers, driven directly over USB
//!
//! - [`descriptor`]: the CCID class descriptor (0x21): exchange level, automatic features,
//!   message size, slots, voltages, protocols, clocks and data rates.
//! - [`message`]: every PC_to_RDR and RDR_to_PC bulk message and the interrupt
//!   notifications, one codec for the driver and the virtual reader alike.
//! - [`atr`]: Answer-To-Reset parsing (ISO 7816-3) and the timings it implies.
//! - [`t1`]: the T=1 block protocol (both the terminal and the card side).
//! - [`t0`]: T=0 TPDUs and procedure bytes.
//! - [`policy`]: every choice the driver makes for a reader (SetParameters, PPS, voltage,
//!   IFSD, message size, exchange level), each with its reason.
//! - [`interface`]: which interface of a USB device is the reader (contact slot of a dual
//!   reader, vendor-class CCID), and why others are refused (ICCD).
//! - [`quirks`]: known behaviours of reader models, as a table citing its sources.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod atr;
pub mod descriptor;
pub mod interface;
pub mod message;
pub mod policy;
pub mod quirks;
#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub mod sim;
pub mod t0;
pub mod t1;
pub mod transport;

mod error;
mod factory;
mod reader;

pub use error::CcidError;
pub use factory::{AnyReader, open};
#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub use factory::{open_sim_with_card, open_sim_with_handle};
pub use policy::{ReaderPolicy, VoltageSetting};
pub use reader::{CcidReader, ReaderConfig};
pub use transport::{CcidTransport, InterruptSource, UsbTransport};

/// The README's example, compiled and run as a doctest so it cannot rot.
#[cfg(all(doctest, feature = "sim"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
