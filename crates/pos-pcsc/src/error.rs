//! The PC/SC road's error type.

use std::time::Duration;

use pos_hal::{Fault, FaultKind};

use crate::codes::ScardCode;

/// The one line a box without pcsc-lite gets.
pub const LIBRARY_MISSING_HINT: &str = "install pcscd and libpcsclite1, or use a usb: reader";

/// The hint when pcscd does not answer.
pub const NO_SERVICE_HINT: &str = "start it: systemctl start pcscd.socket";

/// An error of the PC/SC road. [`Fault::kind`] classifies it as the USB CCID driver's errors
/// are classified:
///
/// | PC/SC | kind |
/// |---|---|
/// | `SCARD_W_REMOVED_CARD`, `SCARD_W_RESET_CARD` | `card_removed` |
/// | `SCARD_E_NO_SMARTCARD` | `card_absent` (`card_removed` during an exchange with a powered card) |
/// | `SCARD_E_READER_UNAVAILABLE`, reader gone | `disconnected` |
/// | `SCARD_E_NO_SERVICE`, `SCARD_E_SERVICE_STOPPED` | `disconnected`, said as "pcscd is not running" |
/// | `SCARD_E_TIMEOUT`, pcscd not answering in time | `timeout` |
/// | others | see [`ScardCode::kind`] |
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PcscError {
    /// `libpcsclite.so.1` could not be loaded.
    #[error("pcsc: {library} not found: {LIBRARY_MISSING_HINT} ({detail})")]
    LibraryMissing {
        /// The library asked for.
        library: String,
        /// The loader's message.
        detail: String,
    },
    /// pcscd is not running (or stopped while in use).
    #[error("pcsc: pcscd is not running: {NO_SERVICE_HINT} ({code})")]
    NoService {
        /// `SCARD_E_NO_SERVICE` or `SCARD_E_SERVICE_STOPPED`.
        code: ScardCode,
    },
    /// A PC/SC call failed; the kind follows the code.
    #[error("pcsc: {call}: {code}")]
    Call {
        /// The `SCard...` function.
        call: &'static str,
        /// What it returned.
        code: ScardCode,
    },
    /// The card was removed (or reset by someone else) during the operation.
    #[error("pcsc: {reader}: the card was removed during the operation ({detail})")]
    CardRemoved {
        /// The reader.
        reader: String,
        /// What failed when it happened.
        detail: String,
    },
    /// No card in the reader, or the card is not powered (call `power_on` first).
    #[error("pcsc: {reader}: no card (or the card is not powered)")]
    CardAbsent {
        /// The reader.
        reader: String,
    },
    /// The reader left pcscd (unplugged).
    #[error("pcsc: {reader}: the reader was disconnected ({detail})")]
    ReaderGone {
        /// The reader.
        reader: String,
        /// What showed it.
        detail: String,
    },
    /// No reader of that name (or no reader at all, for `pcsc:`).
    #[error("pcsc: {}", no_reader_text(.wanted.as_deref(), .available))]
    NoReader {
        /// The name asked for (`None` for the first reader).
        wanted: Option<String>,
        /// The readers pcscd has.
        available: Vec<String>,
    },
    /// pcscd did not answer a call in time (or has not answered an earlier one yet).
    #[error("pcsc: {call}: pcscd did not answer within {after:?}")]
    NoAnswer {
        /// The `SCard...` function.
        call: &'static str,
        /// How long we waited.
        after: Duration,
    },
    /// The card kept the exchange going past the bound (61xx without end).
    #[error("pcsc: protocol error: {0}")]
    Protocol(String),
    /// A slot other than 0 (a PC/SC reader name is one slot).
    #[error("pcsc: slot {slot} does not exist: a PC/SC reader is one slot (0)")]
    NoSuchSlot {
        /// The slot asked for.
        slot: u8,
    },
    /// A command APDU that cannot be sent (empty, too long).
    #[error("pcsc: bad APDU: {0}")]
    BadApdu(String),
    /// A device URI that is not `pcsc:...`.
    #[error("{0}")]
    BadAddress(String),
    /// A thread for a bounded call could not be started.
    #[error("pcsc: cannot start a thread: {0}")]
    Thread(String),
    /// The reader was closed (its worker thread ended).
    #[error("pcsc: {reader}: the reader is closed")]
    Closed {
        /// The reader.
        reader: String,
    },
}

fn no_reader_text(wanted: Option<&str>, available: &[String]) -> String {
    let list = if available.is_empty() {
        "pcscd has no readers".to_string()
    } else {
        format!("pcscd has {}", quoted(available))
    };
    match wanted {
        Some(w) => format!("no reader named {w:?}: {list}"),
        None => format!("no reader: {list}"),
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl PcscError {
    /// The error for `code` returned by `call`: pcscd not running is said as such.
    pub fn from_code(call: &'static str, code: ScardCode) -> PcscError {
        if code.is_no_service() {
            PcscError::NoService { code }
        } else {
            PcscError::Call { call, code }
        }
    }

    /// The PC/SC code behind this error, when one is.
    pub fn code(&self) -> Option<ScardCode> {
        match self {
            PcscError::NoService { code } | PcscError::Call { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl Fault for PcscError {
    fn kind(&self) -> FaultKind {
        match self {
            PcscError::LibraryMissing { .. } | PcscError::NoReader { .. } => FaultKind::NotFound,
            PcscError::NoService { .. }
            | PcscError::ReaderGone { .. }
            | PcscError::Closed { .. } => FaultKind::Disconnected,
            PcscError::Call { code, .. } => code.kind(),
            PcscError::CardRemoved { .. } => FaultKind::CardRemoved,
            PcscError::CardAbsent { .. } => FaultKind::CardAbsent,
            PcscError::NoAnswer { .. } => FaultKind::Timeout,
            PcscError::Thread(_) => FaultKind::Io,
            PcscError::Protocol(_) => FaultKind::Protocol,
            PcscError::NoSuchSlot { .. } | PcscError::BadApdu(_) | PcscError::BadAddress(_) => {
                FaultKind::InvalidInput
            }
        }
    }
}
