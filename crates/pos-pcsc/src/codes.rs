//! PC/SC return codes and constants, as pcsc-lite defines them.
//!
//! Every value here is a fact from pcsc-lite's public headers (`src/PCSC/pcsclite.h.in`,
//! installed as `PCSC/pcsclite.h`): the return codes are `#define SCARD_... ((LONG)0x801000..)`,
//! the share modes, protocols, dispositions and reader-state bits are plain `#define`s. On Linux
//! pcsc-lite's `LONG` is C `long` and `DWORD` is `unsigned long` (`PCSC/wintypes.h`; only macOS
//! uses 32-bit types), so the codes are kept as the raw `long` the library returns.

use std::ffi::{c_long, c_ulong};
use std::fmt;

use pos_hal::FaultKind;

/// pcsc-lite's `LONG` on Linux: C `long` (8 bytes on x86_64).
pub type Long = c_long;
/// pcsc-lite's `DWORD` on Linux: C `unsigned long` (8 bytes on x86_64).
pub type Dword = c_ulong;

/// A `((LONG)0x8010....)` value: the 32-bit pattern widened as C does it on this target.
const fn code(v: u32) -> Long {
    v as Long
}

/// No error was encountered.
pub const SCARD_S_SUCCESS: Long = 0;
/// An internal consistency check failed.
pub const SCARD_F_INTERNAL_ERROR: Long = code(0x8010_0001);
/// The action was cancelled by an SCardCancel request.
pub const SCARD_E_CANCELLED: Long = code(0x8010_0002);
/// The supplied handle was invalid.
pub const SCARD_E_INVALID_HANDLE: Long = code(0x8010_0003);
/// One or more of the supplied parameters could not be properly interpreted.
pub const SCARD_E_INVALID_PARAMETER: Long = code(0x8010_0004);
/// Not enough memory available to complete this command.
pub const SCARD_E_NO_MEMORY: Long = code(0x8010_0006);
/// The data buffer to receive returned data is too small for the returned data.
pub const SCARD_E_INSUFFICIENT_BUFFER: Long = code(0x8010_0008);
/// The specified reader name is not recognized.
pub const SCARD_E_UNKNOWN_READER: Long = code(0x8010_0009);
/// The user-specified timeout value has expired.
pub const SCARD_E_TIMEOUT: Long = code(0x8010_000A);
/// The smart card cannot be accessed because of other connections outstanding.
pub const SCARD_E_SHARING_VIOLATION: Long = code(0x8010_000B);
/// The operation requires a smart card, but no smart card is currently in the device.
pub const SCARD_E_NO_SMARTCARD: Long = code(0x8010_000C);
/// The requested protocols are incompatible with the protocol currently in use.
pub const SCARD_E_PROTO_MISMATCH: Long = code(0x8010_000F);
/// The reader or smart card is not ready to accept commands.
pub const SCARD_E_NOT_READY: Long = code(0x8010_0010);
/// One or more of the supplied parameter values could not be properly interpreted.
pub const SCARD_E_INVALID_VALUE: Long = code(0x8010_0011);
/// An internal communications error has been detected.
pub const SCARD_F_COMM_ERROR: Long = code(0x8010_0013);
/// An internal error has been detected, but the source is unknown.
pub const SCARD_F_UNKNOWN_ERROR: Long = code(0x8010_0014);
/// An attempt was made to end a non-existent transaction.
pub const SCARD_E_NOT_TRANSACTED: Long = code(0x8010_0016);
/// The specified reader is not currently available for use.
pub const SCARD_E_READER_UNAVAILABLE: Long = code(0x8010_0017);
/// The operation has been aborted to allow the server application to exit.
pub const SCARD_P_SHUTDOWN: Long = code(0x8010_0018);
/// The reader driver does not meet minimal requirements for support.
pub const SCARD_E_READER_UNSUPPORTED: Long = code(0x8010_001A);
/// The smart card does not meet minimal requirements for support.
pub const SCARD_E_CARD_UNSUPPORTED: Long = code(0x8010_001C);
/// The smart card resource manager (pcscd) is not running.
pub const SCARD_E_NO_SERVICE: Long = code(0x8010_001D);
/// The smart card resource manager (pcscd) has shut down.
pub const SCARD_E_SERVICE_STOPPED: Long = code(0x8010_001E);
/// An unexpected card error has occurred (pcsc-lite gives `SCARD_E_UNSUPPORTED_FEATURE` the
/// same value).
pub const SCARD_E_UNEXPECTED: Long = code(0x8010_001F);
/// Cannot find a smart card reader.
pub const SCARD_E_NO_READERS_AVAILABLE: Long = code(0x8010_002E);
/// A communications error with the smart card has been detected.
pub const SCARD_E_COMM_DATA_LOST: Long = code(0x8010_002F);
/// The smart card resource manager is too busy to complete this operation.
pub const SCARD_E_SERVER_TOO_BUSY: Long = code(0x8010_0031);
/// The reader cannot communicate with the card, due to ATR string configuration conflicts.
pub const SCARD_W_UNSUPPORTED_CARD: Long = code(0x8010_0065);
/// The smart card is not responding to a reset.
pub const SCARD_W_UNRESPONSIVE_CARD: Long = code(0x8010_0066);
/// Power has been removed from the smart card.
pub const SCARD_W_UNPOWERED_CARD: Long = code(0x8010_0067);
/// The smart card has been reset, so any shared state information is invalid.
pub const SCARD_W_RESET_CARD: Long = code(0x8010_0068);
/// The smart card has been removed, so further communication is not possible.
pub const SCARD_W_REMOVED_CARD: Long = code(0x8010_0069);

/// `SCARD_SCOPE_SYSTEM`: the scope every context here is established with.
pub const SCARD_SCOPE_SYSTEM: Dword = 0x0002;
/// `SCARD_SHARE_EXCLUSIVE`: no other application may connect to the card.
pub const SCARD_SHARE_EXCLUSIVE: Dword = 0x0001;
/// `SCARD_SHARE_SHARED`: other applications may connect (use a transaction for exclusivity).
pub const SCARD_SHARE_SHARED: Dword = 0x0002;
/// `SCARD_PROTOCOL_T0`.
pub const SCARD_PROTOCOL_T0: Dword = 0x0001;
/// `SCARD_PROTOCOL_T1`.
pub const SCARD_PROTOCOL_T1: Dword = 0x0002;
/// `SCARD_LEAVE_CARD`: do nothing to the card on disconnect.
pub const SCARD_LEAVE_CARD: Dword = 0x0000;
/// `SCARD_RESET_CARD`: warm reset on disconnect.
pub const SCARD_RESET_CARD: Dword = 0x0001;
/// `SCARD_UNPOWER_CARD`: power the card down on disconnect.
pub const SCARD_UNPOWER_CARD: Dword = 0x0002;

/// `SCARD_STATE_UNAWARE`: the caller does not know the reader's state.
pub const SCARD_STATE_UNAWARE: Dword = 0x0000;
/// `SCARD_STATE_CHANGED`: the state differs from `dwCurrentState`.
pub const SCARD_STATE_CHANGED: Dword = 0x0002;
/// `SCARD_STATE_UNKNOWN`: the reader name is not known (the reader is gone).
pub const SCARD_STATE_UNKNOWN: Dword = 0x0004;
/// `SCARD_STATE_UNAVAILABLE`: the reader's state is not available.
pub const SCARD_STATE_UNAVAILABLE: Dword = 0x0008;
/// `SCARD_STATE_EMPTY`: no card.
pub const SCARD_STATE_EMPTY: Dword = 0x0010;
/// `SCARD_STATE_PRESENT`: a card is in the reader.
pub const SCARD_STATE_PRESENT: Dword = 0x0020;
/// `SCARD_STATE_EXCLUSIVE`: an application holds the card exclusively.
pub const SCARD_STATE_EXCLUSIVE: Dword = 0x0080;
/// `SCARD_STATE_INUSE`: an application holds the card shared.
pub const SCARD_STATE_INUSE: Dword = 0x0100;
/// `SCARD_STATE_MUTE`: the card does not answer reset.
pub const SCARD_STATE_MUTE: Dword = 0x0200;
/// `SCARD_POWERED` in `SCardStatus`'s state: the card is powered.
pub const SCARD_POWERED: Dword = 0x0010;

/// `MAX_ATR_SIZE`: the ATR buffer of `SCARD_READERSTATE` and `SCardStatus`.
pub const MAX_ATR_SIZE: usize = 33;
/// `MAX_BUFFER_SIZE_EXTENDED` (4 + 3 + 65536 + 3 + 2): the largest response buffer.
pub const MAX_BUFFER_SIZE_EXTENDED: usize = 4 + 3 + (1 << 16) + 3 + 2;
/// `MAX_READERNAME`: pcsc-lite's longest reader name.
pub const MAX_READERNAME: usize = 128;

/// pcsc-lite keeps the reader's event counter in the upper 16 bits of `dwEventState`.
pub const EVENT_COUNT_SHIFT: u32 = 16;

/// A PC/SC return code other than success, as the library returned it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScardCode(pub Long);

impl ScardCode {
    /// The 32-bit pattern pcsc-lite's headers write (`0x80100069`).
    pub fn bits(self) -> u32 {
        self.0 as u32
    }

    /// The constant's name (`SCARD_W_REMOVED_CARD`), or `None` for a value this crate does
    /// not name.
    pub fn name(self) -> Option<&'static str> {
        NAMES
            .iter()
            .find(|(c, _, _)| *c == self.0)
            .map(|(_, n, _)| *n)
    }

    /// What the code means, in pcsc-lite's words.
    pub fn description(self) -> &'static str {
        NAMES
            .iter()
            .find(|(c, _, _)| *c == self.0)
            .map_or("unknown PC/SC error", |(_, _, d)| *d)
    }

    /// The HAL's kind for this code, as the crate docs list it.
    pub fn kind(self) -> FaultKind {
        match self.0 {
            SCARD_W_REMOVED_CARD | SCARD_W_RESET_CARD => FaultKind::CardRemoved,
            SCARD_E_NO_SMARTCARD | SCARD_W_UNPOWERED_CARD => FaultKind::CardAbsent,
            SCARD_W_UNRESPONSIVE_CARD => FaultKind::CardMute,
            SCARD_W_UNSUPPORTED_CARD | SCARD_E_CARD_UNSUPPORTED | SCARD_E_PROTO_MISMATCH => {
                FaultKind::CardUnsupported
            }
            SCARD_E_READER_UNAVAILABLE
            | SCARD_E_NO_SERVICE
            | SCARD_E_SERVICE_STOPPED
            | SCARD_E_INVALID_HANDLE
            | SCARD_P_SHUTDOWN => FaultKind::Disconnected,
            SCARD_E_TIMEOUT | SCARD_E_CANCELLED => FaultKind::Timeout,
            SCARD_E_SHARING_VIOLATION | SCARD_E_SERVER_TOO_BUSY | SCARD_E_NOT_READY => {
                FaultKind::Busy
            }
            SCARD_E_UNKNOWN_READER | SCARD_E_NO_READERS_AVAILABLE => FaultKind::NotFound,
            SCARD_E_INVALID_PARAMETER | SCARD_E_INVALID_VALUE => FaultKind::InvalidInput,
            SCARD_E_INSUFFICIENT_BUFFER | SCARD_E_NOT_TRANSACTED | SCARD_E_UNEXPECTED => {
                FaultKind::Protocol
            }
            SCARD_E_READER_UNSUPPORTED => FaultKind::Unrecoverable,
            _ => FaultKind::Io,
        }
    }

    /// pcscd is not running or has shut down (`SCARD_E_NO_SERVICE`, `SCARD_E_SERVICE_STOPPED`).
    pub fn is_no_service(self) -> bool {
        matches!(self.0, SCARD_E_NO_SERVICE | SCARD_E_SERVICE_STOPPED)
    }
}

impl fmt::Debug for ScardCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScardCode({self})")
    }
}

impl fmt::Display for ScardCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} (0x{:08X}: {})", self.bits(), self.description()),
            None => write!(f, "PC/SC error 0x{:08X}", self.bits()),
        }
    }
}

/// Names and pcsc-lite's descriptions of the codes above.
const NAMES: &[(Long, &str, &str)] = &[
    (
        SCARD_F_INTERNAL_ERROR,
        "SCARD_F_INTERNAL_ERROR",
        "an internal consistency check failed",
    ),
    (
        SCARD_E_CANCELLED,
        "SCARD_E_CANCELLED",
        "the action was cancelled by an SCardCancel request",
    ),
    (
        SCARD_E_INVALID_HANDLE,
        "SCARD_E_INVALID_HANDLE",
        "the supplied handle was invalid",
    ),
    (
        SCARD_E_INVALID_PARAMETER,
        "SCARD_E_INVALID_PARAMETER",
        "a parameter could not be interpreted",
    ),
    (SCARD_E_NO_MEMORY, "SCARD_E_NO_MEMORY", "not enough memory"),
    (
        SCARD_E_INSUFFICIENT_BUFFER,
        "SCARD_E_INSUFFICIENT_BUFFER",
        "the receive buffer is too small",
    ),
    (
        SCARD_E_UNKNOWN_READER,
        "SCARD_E_UNKNOWN_READER",
        "the reader name is not recognized",
    ),
    (SCARD_E_TIMEOUT, "SCARD_E_TIMEOUT", "the timeout expired"),
    (
        SCARD_E_SHARING_VIOLATION,
        "SCARD_E_SHARING_VIOLATION",
        "another application holds the card",
    ),
    (
        SCARD_E_NO_SMARTCARD,
        "SCARD_E_NO_SMARTCARD",
        "no smart card in the reader",
    ),
    (
        SCARD_E_PROTO_MISMATCH,
        "SCARD_E_PROTO_MISMATCH",
        "the requested protocols are not the card's",
    ),
    (
        SCARD_E_NOT_READY,
        "SCARD_E_NOT_READY",
        "the reader or card is not ready",
    ),
    (
        SCARD_E_INVALID_VALUE,
        "SCARD_E_INVALID_VALUE",
        "a parameter value could not be interpreted",
    ),
    (
        SCARD_F_COMM_ERROR,
        "SCARD_F_COMM_ERROR",
        "an internal communications error",
    ),
    (
        SCARD_F_UNKNOWN_ERROR,
        "SCARD_F_UNKNOWN_ERROR",
        "an internal error of unknown source",
    ),
    (
        SCARD_E_NOT_TRANSACTED,
        "SCARD_E_NOT_TRANSACTED",
        "no transaction to end",
    ),
    (
        SCARD_E_READER_UNAVAILABLE,
        "SCARD_E_READER_UNAVAILABLE",
        "the reader is not available",
    ),
    (
        SCARD_P_SHUTDOWN,
        "SCARD_P_SHUTDOWN",
        "aborted for the server to exit",
    ),
    (
        SCARD_E_READER_UNSUPPORTED,
        "SCARD_E_READER_UNSUPPORTED",
        "the reader driver is not supported",
    ),
    (
        SCARD_E_CARD_UNSUPPORTED,
        "SCARD_E_CARD_UNSUPPORTED",
        "the card is not supported",
    ),
    (
        SCARD_E_NO_SERVICE,
        "SCARD_E_NO_SERVICE",
        "the smart card resource manager is not running",
    ),
    (
        SCARD_E_SERVICE_STOPPED,
        "SCARD_E_SERVICE_STOPPED",
        "the smart card resource manager has shut down",
    ),
    (
        SCARD_E_UNEXPECTED,
        "SCARD_E_UNEXPECTED",
        "an unexpected card error",
    ),
    (
        SCARD_E_NO_READERS_AVAILABLE,
        "SCARD_E_NO_READERS_AVAILABLE",
        "no smart card reader",
    ),
    (
        SCARD_E_COMM_DATA_LOST,
        "SCARD_E_COMM_DATA_LOST",
        "a communications error with the card",
    ),
    (
        SCARD_E_SERVER_TOO_BUSY,
        "SCARD_E_SERVER_TOO_BUSY",
        "the resource manager is too busy",
    ),
    (
        SCARD_W_UNSUPPORTED_CARD,
        "SCARD_W_UNSUPPORTED_CARD",
        "the reader cannot talk to the card (ATR conflict)",
    ),
    (
        SCARD_W_UNRESPONSIVE_CARD,
        "SCARD_W_UNRESPONSIVE_CARD",
        "the card does not respond to reset",
    ),
    (
        SCARD_W_UNPOWERED_CARD,
        "SCARD_W_UNPOWERED_CARD",
        "the card is not powered",
    ),
    (
        SCARD_W_RESET_CARD,
        "SCARD_W_RESET_CARD",
        "the card has been reset",
    ),
    (
        SCARD_W_REMOVED_CARD,
        "SCARD_W_REMOVED_CARD",
        "the card has been removed",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_are_pcsc_lites_values() {
        assert_eq!(ScardCode(SCARD_W_REMOVED_CARD).bits(), 0x8010_0069);
        assert_eq!(ScardCode(SCARD_E_NO_SERVICE).bits(), 0x8010_001D);
        // On Linux x86_64 `((LONG)0x80100069)` is a positive 64-bit long.
        #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
        assert_eq!(SCARD_W_REMOVED_CARD, 0x8010_0069_i64);
    }

    #[test]
    fn every_named_code_has_a_distinct_name_and_display() {
        let mut seen = std::collections::HashSet::new();
        for (c, n, _) in NAMES {
            assert!(seen.insert(*c), "{n} listed twice");
            let s = ScardCode(*c).to_string();
            assert!(s.starts_with(n), "{s}");
        }
        assert_eq!(
            ScardCode(code(0x8010_00FF)).to_string(),
            "PC/SC error 0x801000FF"
        );
    }
}
