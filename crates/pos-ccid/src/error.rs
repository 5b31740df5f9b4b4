//! The reader driver's error type.

use std::time::Duration;

use pos_hal::{Fault, FaultKind};
use pos_link::LinkError;

use crate::message::{CodecError, SlotError};

/// An error from the CCID driver. [`Fault::kind`] classifies it: removed vs mute vs
/// unplugged are told apart by re-reading the slot after a failed exchange.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CcidError {
    /// The USB link failed (permission, busy, timeout at the transport).
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The reader is gone (unplugged).
    #[error("the reader was disconnected")]
    Gone,
    /// The reader answered with bytes that are not a CCID message.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// No card in the slot (or not powered).
    #[error("slot {slot}: no card (or the card is not powered)")]
    CardAbsent {
        /// The slot.
        slot: u8,
    },
    /// The card was removed during the operation.
    #[error("slot {slot}: the card was removed during the operation ({detail})")]
    CardRemoved {
        /// The slot.
        slot: u8,
        /// What failed when it happened.
        detail: String,
    },
    /// The card is present but does not answer.
    #[error("slot {slot}: the card does not answer{}", if .after.is_zero() { String::new() } else { format!(" (waited {:?})", .after) })]
    CardMute {
        /// The slot.
        slot: u8,
        /// How long we waited, when it was a timeout.
        after: Duration,
    },
    /// The card's ATR does not parse.
    #[error("slot {slot}: bad ATR: {detail}")]
    BadAtr {
        /// The slot.
        slot: u8,
        /// Why.
        detail: String,
    },
    /// The card needs something this reader or driver cannot do.
    #[error("slot {slot}: card not supported: {detail}")]
    CardUnsupported {
        /// The slot.
        slot: u8,
        /// What.
        detail: String,
    },
    /// The reader reported an error for a command (bError).
    #[error("slot {slot}: reader error {} ({})", .error.name(), .error.description())]
    Slot {
        /// The slot.
        slot: u8,
        /// The reader's error code.
        error: SlotError,
    },
    /// The reader did not answer a command in time (it was aborted).
    #[error("the reader did not answer within {after:?}")]
    NoReply {
        /// How long we waited.
        after: Duration,
    },
    /// A slot number beyond the reader's slots.
    #[error("slot {slot} does not exist: the reader has {slots}")]
    NoSuchSlot {
        /// The slot asked for.
        slot: u8,
        /// How many there are.
        slots: usize,
    },
    /// A malformed command APDU.
    #[error("bad APDU: {0}")]
    BadApdu(String),
    /// The exchange broke the protocol (T=1 gave up, an unexpected reply).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The reader cannot do what was asked, or is refused altogether (known-broken
    /// firmware, character level, an extended APDU on a short-APDU reader, a command longer
    /// than its messages hold). The text says which and why.
    #[error("reader not supported for this: {0}")]
    ReaderUnsupported(String),
    /// A device URI that is not a CCID reader address, or bad `sim:` options.
    #[error("{0}")]
    BadAddress(String),
}

impl Fault for CcidError {
    fn kind(&self) -> FaultKind {
        match self {
            CcidError::Link(e) => e.kind(),
            CcidError::Gone => FaultKind::Disconnected,
            CcidError::Codec(_) | CcidError::Protocol(_) => FaultKind::Protocol,
            CcidError::CardAbsent { .. } => FaultKind::CardAbsent,
            CcidError::CardRemoved { .. } => FaultKind::CardRemoved,
            CcidError::CardMute { .. } => FaultKind::CardMute,
            CcidError::BadAtr { .. } => FaultKind::CardUnsupported,
            CcidError::CardUnsupported { .. } => FaultKind::CardUnsupported,
            CcidError::ReaderUnsupported(_) => FaultKind::InvalidInput,
            CcidError::Slot { error, .. } => match error {
                SlotError::IccMute => FaultKind::CardMute,
                SlotError::IccProtocolNotSupported | SlotError::IccClassNotSupported => {
                    FaultKind::CardUnsupported
                }
                SlotError::CmdSlotBusy => FaultKind::Busy,
                SlotError::HwError => FaultKind::Unrecoverable,
                _ => FaultKind::Protocol,
            },
            CcidError::NoReply { .. } => FaultKind::Timeout,
            CcidError::NoSuchSlot { .. } | CcidError::BadApdu(_) | CcidError::BadAddress(_) => {
                FaultKind::InvalidInput
            }
        }
    }
}
