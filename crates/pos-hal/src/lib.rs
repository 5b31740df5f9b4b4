//! # pos-hal: the device model of the POS device layer
//!
//! Traits and types only. No I/O happens in this crate and it depends on nothing of ours;
//! drivers (`pos-escpos`, `pos-ccid`, `pos-magstripe`, ...) implement these traits, and the
//! terminal service programs against them without naming a concrete driver.
//!
//! The model follows UnifiedPOS (the standard behind JavaPOS and OPOS), in Rust idiom:
//!
//! | UnifiedPOS                  | here                                               |
//! |-----------------------------|----------------------------------------------------|
//! | device categories           | [`DeviceKind`]                                     |
//! | `State` (Closed/Idle/Busy/Error) | [`DeviceState`]                               |
//! | `CheckHealth(level)`        | [`Device::check_health`] -> [`HealthReport`]       |
//! | `ErrorCode` / `ErrorCodeExtended` | [`FaultKind`] via [`Fault::kind`]            |
//! | `DataEvent`/`StatusUpdateEvent` | [`DeviceEvent`] over a [`Subscription`]        |
//! | POSPrinter, MSR, SmartCardRW | [`ReceiptPrinter`], [`MagstripeReader`], [`ChipReader`] + [`CardChannel`] |
//! | CashDrawer (`OpenDrawer`, `DrawerOpened`) | [`CashDrawer`] ([`CashDrawer::open_drawer`], [`CashDrawer::drawer_state`]) |
//!
//! UnifiedPOS has no code for a paper jam or a cutter fault; we do ([`FaultKind::CutterJam`]).
//!
//! ## Errors: the embedded-hal pattern
//!
//! Every driver keeps its own rich error type (with the cause, the step, the bytes seen) and
//! implements [`Fault`] for it, so generic code can ask `err.kind()` and get a
//! [`FaultKind`] to react to, without losing the driver's detail. [`FaultKind`] is
//! `#[non_exhaustive]`: match it with a wildcard arm. Each kind has a stable snake_case
//! [`name`](FaultKind::name) used in JSON, logs and metrics.
//!
//! Where devices are chosen at run time (from a URI in a config file) the service holds
//! them as trait objects; [`Erased`] turns any driver into one whose error is the common
//! [`DeviceError`], which keeps the driver's error as its `source()`.
//!
//! ## For driver authors: the contract
//!
//! 1. **Nothing blocks forever.** Every method that does I/O finishes within a bounded time:
//!    either a timeout given as an argument (e.g. [`MagstripeReader::wait_for_swipe`]) or the
//!    driver's configured default, which is seconds, never minutes. Running out of time is an
//!    error whose kind is [`FaultKind::Timeout`] (or a more precise kind the driver can
//!    prove, e.g. [`FaultKind::CardMute`] for a card that never answered,
//!    [`FaultKind::PrinterOffline`] for a printer that went silent). Each trait method's
//!    docs say which timeout governs it.
//! 2. **Classify every error.** Device gone (unplugged, peer closed) is
//!    [`FaultKind::Disconnected`]; a card pulled mid-operation is [`FaultKind::CardRemoved`]
//!    (not `Disconnected`, not `Protocol`): re-read the slot status after a failed exchange
//!    before you classify. Permission problems are [`FaultKind::PermissionDenied`] with a hint
//!    naming the udev rule and group. Bytes that do not parse are [`FaultKind::Protocol`],
//!    never a panic.
//! 3. **Never report success you cannot prove.** A print is [`PrintOutcome::Confirmed`] only
//!    when the printer said the job finished; [`PrintOutcome::StatusVerified`] when it cannot
//!    confirm jobs and its status was clean afterwards; otherwise
//!    [`PrintOutcome::Unconfirmed`].
//! 4. **Events come from the driver's own monitor thread** through an [`EventHub`]; a
//!    subscriber that stops reading never blocks the driver (channels are unbounded and
//!    dropped subscribers are pruned).
//! 5. **Card data stays out of sight.** Track data and APDU bodies that may hold a PAN are
//!    carried in [`Sensitive`] (wiped on drop, redacted in `Debug`); events never carry card
//!    data; anything shown to a person uses [`mask_pan`].
//! 6. **Methods take `&mut self`** where they talk to the device: one caller at a time. A
//!    driver that needs concurrency (a monitor thread) owns it internally.
#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// `impl Trait for &mut T` and `impl Trait for Box<T>` (`T: Trait + ?Sized`) with one
/// forwarding body: a lent driver and a boxed one are drivers too, as in embedded-hal.
macro_rules! forward_lent_and_boxed {
    ($tr:ident { $($body:tt)* }) => {
        impl<T: $tr + ?Sized> $tr for &mut T { $($body)* }
        impl<T: $tr + ?Sized> $tr for Box<T> { $($body)* }
    };
}

pub mod calendar;
mod card;
mod device;
mod document;
mod drawer;
mod erased;
mod event;
mod fault;
mod health;
mod magstripe;
mod printer;
mod sensitive;

pub use card::{
    Atr, CardCatalog, CardChannel, CardProtocol, CardSpec, ChipReader, ReaderCapabilities,
    SlotChannel, SlotState, VirtualCard, VirtualChannel,
};
pub use device::{Device, DeviceInfo, DeviceKind, DeviceState};
pub use document::{
    Align, Barcode, Bitmap, Block, CutKind, Document, DrawerPin, Font, HriPosition, Image,
    ImageConversion, QrCode, QrErrorCorrection, Symbology, TextStyle, Underline,
};
pub use drawer::{CashDrawer, DrawerPulse, DrawerState};
pub use erased::{DeviceError, Erased};
pub use event::{DeviceEvent, EventHub, RecvError, Subscription, TimedEvent};
pub use fault::{Fault, FaultKind, UnknownFaultKind};
pub use health::{CheckOutcome, HealthCheck, HealthLevel, HealthReport};
pub use magstripe::{MagstripeReader, Swipe, Track, TrackStatus};
pub use printer::{PrintOutcome, PrinterConditions, ReceiptPrinter};
pub use sensitive::{Sensitive, mask_pan};

/// Default timeout a driver uses for one device exchange when nothing more specific applies.
///
/// Drivers may use shorter or computed timeouts (e.g. from a card's ATR) but should not
/// exceed [`MAX_TIMEOUT`] for a single operation.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The longest a single device operation may wait before it fails with a timeout.
///
/// Waiting for a person (a swipe, a card insertion) is not one operation: those methods take
/// the timeout as an argument.
pub const MAX_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The README's example, compiled and run as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
