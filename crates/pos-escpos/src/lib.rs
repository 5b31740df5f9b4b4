//! # pos-escpos: ESC/POS receipt printers that never report an unprinted receipt as printed
//!
//! - [`codepage`]: text to printer bytes through real code-page tables (CP437, CP858 with
//!   the euro, CP1252, GB18030 in Chinese mode); characters a code page lacks are replaced
//!   visibly, never dropped.
//! - [`command`]: the ESC/POS command table, one encoder and one parser, used by the driver
//!   and by the virtual printer alike.
//! - [`encode`]: the pos-hal receipt [`Document`](pos_hal::Document) to ESC/POS bytes
//!   (styles, barcodes with validation, QR codes, raster images with threshold or dithering).
//! - [`profile`]: printer profiles as data (paper width, dots, code pages, cutter, ASB,
//!   process-ID confirmation), built in or loaded from a file.
//! - [`detect`]: which printer it is, from the IEEE 1284 Device ID or GS I, and the
//!   model-database profile for it (`profile=auto`).
//! - [`status`]: DLE EOT, Automatic Status Back, GS I and GS ( H replies, parsed into
//!   pos-hal [`PrinterConditions`](pos_hal::PrinterConditions), and a reader that tells the
//!   reply kinds apart by their fixed bits.
//! - [`EscPosDrawer`]: the cash drawer on a printer's kick-out connector (pos-hal
//!   [`CashDrawer`](pos_hal::CashDrawer)): `ESC p` on pin 2 or 5, its switch from DLE EOT 1
//!   at the level the profile says means open ([`EscPosPrinter::drawer`]).
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod codepage;
pub mod command;
pub mod detect;
pub mod encode;
pub mod profile;
pub mod selftest;
#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub mod sim;
pub mod status;

mod drawer;
mod driver;
mod error;
mod factory;

pub use drawer::EscPosDrawer;
pub use driver::{DriverConfig, EscPosPrinter, PrintReport};
pub use error::{EscPosError, JobProgress};
pub use factory::{open, open_link, profile_for};

/// The README's example, compiled and run as a doctest so it cannot rot.
#[cfg(all(doctest, feature = "sim"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
