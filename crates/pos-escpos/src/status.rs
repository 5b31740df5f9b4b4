//! Printer status and identification: DLE EOT, Automatic Status Back (GS a), GS I and
//! GS ( H, parsed into pos-hal [`PrinterConditions`], and the one reader of the printer's
//! reply stream.
//!
//! Bit layouts follow the Epson ESC/POS command reference (DLE EOT, GS a, GS I, GS ( H and
//! the appendix "Identification of send status"). One encoder and one parser per reply: the
//! driver parses with these functions and the virtual printer answers with their inverses.
//!
//! # Telling replies apart
//!
//! Everything an ESC/POS printer sends has fixed bits, which is how [`ReplyReader`] splits
//! the stream without knowing what was asked (bit 7 is on the left):
//!
//! | first byte      | reply                                                          |
//! |-----------------|----------------------------------------------------------------|
//! | `0xx1xx10`      | DLE EOT real-time status, one byte                             |
//! | `0xx1xx00`      | ASB block: this byte and three more of the form `0xx0xxxx`     |
//! | `0x37`          | GS ( H / GS ( E style reply: identifier, data, NUL             |
//! | `0x5F`          | GS I n = 65..69 printer information: data, NUL                 |
//! | `0x3D`          | GS I printer information A: identifier, data, NUL              |
//! | `0x11`, `0x13`  | XON, XOFF (serial flow control)                                |
//! | `0xx0xxxx`      | GS I n = 1..3 ID byte (only when one is expected)              |
//!
//! `0x37` is `0011_0111`, `0x5F` is `0101_1111` and `0x3D` is `0011_1101`: bit 4 is set
//! (so none of them is an ID byte or an ASB tail byte) and bits 1-0 are `11` or `01` (so none
//! of them is a real-time status byte, `10`, or an ASB first byte, `00`). XON (`0001_0001`)
//! and XOFF (`0001_0011`) likewise match no status pattern.

use std::collections::VecDeque;
use std::fmt;

use pos_hal::{Fault, FaultKind, PrinterConditions};

mod ident;
mod reply;

pub use ident::*;
pub use reply::*;

use ident::check_process_id;

/// DLE (`0x10`), the first byte of real-time commands.
pub const DLE: u8 = 0x10;
/// EOT (`0x04`), the second byte of DLE EOT.
pub const EOT: u8 = 0x04;
/// GS (`0x1D`), the first byte of GS a, GS I and GS ( H.
pub const GS: u8 = 0x1D;
/// ESC (`0x1B`).
pub const ESC: u8 = 0x1B;
/// XON (`0x11`): a serial printer with XON/XOFF flow control is ready to receive again.
pub const XON: u8 = 0x11;
/// XOFF (`0x13`): a serial printer with XON/XOFF flow control asks the host to pause.
pub const XOFF: u8 = 0x13;
/// The header of GS ( H and GS ( E replies (`0x37`).
pub const EXTENDED_HEADER: u8 = 0x37;
/// The identifier of the GS ( H process-ID reply (`0x22`).
pub const PROCESS_ID_IDENTIFIER: u8 = 0x22;
/// The header of GS I n = 65..69 printer-information blocks (`0x5F`).
pub const BLOCK_HEADER: u8 = 0x5F;
/// The header of GS I "printer information A" replies (n = 33..47, `0x3D`).
pub const INFO_A_HEADER: u8 = 0x3D;
/// The longest header-to-NUL reply ([`EXTENDED_HEADER`], [`BLOCK_HEADER`],
/// [`INFO_A_HEADER`]) the reader accepts, header and NUL included. The references give at
/// most 80 data bytes; a longer run without a NUL is not a reply.
pub const MAX_FRAME_LEN: usize = 256;
/// The most unread bytes a [`ReplyReader`] keeps; past this the oldest are dropped and
/// reported as [`Reply::Overrun`].
pub const MAX_PENDING: usize = 4096;

/// The fixed bits of a DLE EOT reply, as printed in the reference (bit 7 first).
pub const REAL_TIME_PATTERN: &str = "0xx1xx10";
/// The fixed bits of the first ASB byte.
pub const ASB_FIRST_PATTERN: &str = "0xx1xx00";
/// The fixed bits of ASB bytes 2-4 and of GS I n = 1..3 ID bytes.
pub const ASB_REST_PATTERN: &str = "0xx0xxxx";

const FIXED_MASK_7_4_1_0: u8 = 0b1001_0011;
const FIXED_MASK_7_4: u8 = 0b1001_0000;

/// True when `byte` has the DLE EOT reply pattern `0xx1xx10`.
pub const fn is_real_time_byte(byte: u8) -> bool {
    byte & FIXED_MASK_7_4_1_0 == 0b0001_0010
}

/// True when `byte` has the first-ASB-byte pattern `0xx1xx00`.
pub const fn is_asb_first_byte(byte: u8) -> bool {
    byte & FIXED_MASK_7_4_1_0 == 0b0001_0000
}

/// True when `byte` has the pattern `0xx0xxxx` of ASB bytes 2-4 and GS I ID bytes.
pub const fn is_asb_rest_byte(byte: u8) -> bool {
    byte & FIXED_MASK_7_4 == 0
}

/// True when `byte` can be a GS I n = 1..3 ID byte (`0xx0xxxx`, as ASB bytes 2-4).
pub const fn is_id_byte(byte: u8) -> bool {
    is_asb_rest_byte(byte)
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// What went wrong with a status or identification reply, or with a request to build one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// A byte does not have the fixed bits of the reply it should be (it is rejected, not
    /// misread).
    #[error(
        "byte {byte:#04x} ({byte:08b}) does not have the fixed-bit pattern {expected_pattern} of {what}"
    )]
    FixedBits {
        /// The byte received.
        byte: u8,
        /// The pattern it should have, bit 7 first (`x` = either).
        expected_pattern: &'static str,
        /// Which reply (and which byte of it) it was read as.
        what: &'static str,
    },
    /// A reply of another kind came where this one was expected.
    #[error("expected {expected}, got a {got} reply")]
    WrongReply {
        /// The reply kind wanted.
        expected: &'static str,
        /// The [`Reply::kind_name`] of the reply received.
        got: &'static str,
    },
    /// A process ID with a byte outside the printable range 0x20..=0x7E that GS ( H allows.
    #[error("process ID {id:02x?} has a byte outside 0x20..=0x7e")]
    InvalidProcessId {
        /// The ID given.
        id: [u8; 4],
    },
    /// A value the virtual printer was asked to send cannot be sent as that reply (an ID
    /// byte without the `0xx0xxxx` pattern).
    #[error("{what} value {value:#04x} cannot be sent: it lacks the fixed bits {expected_pattern}")]
    Unencodable {
        /// Which value.
        what: &'static str,
        /// The value.
        value: u8,
        /// The pattern the reply must have.
        expected_pattern: &'static str,
    },
}

impl Fault for StatusError {
    fn kind(&self) -> FaultKind {
        match self {
            StatusError::FixedBits { .. } | StatusError::WrongReply { .. } => FaultKind::Protocol,
            StatusError::InvalidProcessId { .. } | StatusError::Unencodable { .. } => {
                FaultKind::InvalidInput
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// DLE EOT real-time status
// ---------------------------------------------------------------------------------------

/// Which DLE EOT n status the host asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusRequest {
    /// n = 1: printer status (drawer pin 3, offline, waiting for online recovery, feed
    /// button).
    Printer = 1,
    /// n = 2: offline cause (cover open, paper fed by the feed button, stopped by paper end,
    /// error).
    OfflineCause = 2,
    /// n = 3: error cause (recoverable, autocutter, unrecoverable, auto-recoverable).
    ErrorCause = 3,
    /// n = 4: roll paper sensor (near end, paper not present).
    RollPaper = 4,
}

/// A status bit (or pair of bits) and the condition it reports.
type BitMap = (u8, PrinterConditions);

/// Drawer kick-out connector pin 3 in DLE EOT 1 and ASB byte 1.
const PIN3: u8 = 0x04;

const RT_PRINTER: &[BitMap] = &[
    (0x08, PrinterConditions::OFFLINE),
    (0x20, PrinterConditions::WAITING_ONLINE),
    (0x40, PrinterConditions::FEED_BUTTON),
];
const RT_OFFLINE_CAUSE: &[BitMap] = &[
    (0x04, PrinterConditions::COVER_OPEN),
    (0x08, PrinterConditions::FEED_BUTTON),
    (0x20, PrinterConditions::PAPER_END_STOP),
    (0x40, PrinterConditions::ERROR),
];
const RT_ERROR_CAUSE: &[BitMap] = &[
    (0x04, PrinterConditions::RECOVERABLE),
    (0x08, PrinterConditions::CUTTER_JAM),
    (0x20, PrinterConditions::UNRECOVERABLE),
    (0x40, PrinterConditions::AUTO_RECOVERABLE),
];
const RT_ROLL_PAPER: &[BitMap] = &[
    (0x0C, PrinterConditions::PAPER_NEAR_END),
    (0x60, PrinterConditions::PAPER_OUT),
];

impl StatusRequest {
    /// The four requests, in n order.
    pub const ALL: [StatusRequest; 4] = [
        StatusRequest::Printer,
        StatusRequest::OfflineCause,
        StatusRequest::ErrorCause,
        StatusRequest::RollPaper,
    ];

    /// The request's n.
    pub const fn n(self) -> u8 {
        self as u8
    }

    /// The request for an n (1..=4), as the virtual printer reads it.
    pub const fn from_n(n: u8) -> Option<Self> {
        match n {
            1 => Some(StatusRequest::Printer),
            2 => Some(StatusRequest::OfflineCause),
            3 => Some(StatusRequest::ErrorCause),
            4 => Some(StatusRequest::RollPaper),
            _ => None,
        }
    }

    /// The command: DLE EOT n (`10 04 n`). A real-time command: the printer answers at
    /// once, even while offline or with a full receive buffer.
    pub const fn bytes(self) -> [u8; 3] {
        [DLE, EOT, self.n()]
    }

    /// The conditions this request's reply can report.
    pub const fn conditions(self) -> PrinterConditions {
        match self {
            StatusRequest::Printer => PrinterConditions::DRAWER_OPEN
                .union(PrinterConditions::OFFLINE)
                .union(PrinterConditions::WAITING_ONLINE)
                .union(PrinterConditions::FEED_BUTTON),
            StatusRequest::OfflineCause => PrinterConditions::COVER_OPEN
                .union(PrinterConditions::FEED_BUTTON)
                .union(PrinterConditions::PAPER_END_STOP)
                .union(PrinterConditions::ERROR),
            StatusRequest::ErrorCause => PrinterConditions::RECOVERABLE
                .union(PrinterConditions::CUTTER_JAM)
                .union(PrinterConditions::UNRECOVERABLE)
                .union(PrinterConditions::AUTO_RECOVERABLE),
            StatusRequest::RollPaper => {
                PrinterConditions::PAPER_NEAR_END.union(PrinterConditions::PAPER_OUT)
            }
        }
    }

    const fn layout(self) -> &'static [BitMap] {
        match self {
            StatusRequest::Printer => RT_PRINTER,
            StatusRequest::OfflineCause => RT_OFFLINE_CAUSE,
            StatusRequest::ErrorCause => RT_ERROR_CAUSE,
            StatusRequest::RollPaper => RT_ROLL_PAPER,
        }
    }

    const fn what(self) -> &'static str {
        match self {
            StatusRequest::Printer => "a DLE EOT 1 (printer status) reply",
            StatusRequest::OfflineCause => "a DLE EOT 2 (offline cause) reply",
            StatusRequest::ErrorCause => "a DLE EOT 3 (error cause) reply",
            StatusRequest::RollPaper => "a DLE EOT 4 (roll paper sensor) reply",
        }
    }
}

impl fmt::Display for StatusRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DLE EOT {}", self.n())
    }
}

fn parse_bits(byte: u8, layout: &[BitMap]) -> PrinterConditions {
    layout
        .iter()
        .filter(|(mask, _)| byte & mask != 0)
        .fold(PrinterConditions::empty(), |acc, (_, c)| acc | *c)
}

fn encode_bits(conditions: PrinterConditions, layout: &[BitMap]) -> u8 {
    layout
        .iter()
        .filter(|(_, c)| conditions.contains(*c))
        .fold(0, |acc, (mask, _)| acc | mask)
}

fn drawer_from_pin3(pin3_high: bool, drawer_open_when_pin3_high: bool) -> PrinterConditions {
    if pin3_high == drawer_open_when_pin3_high {
        PrinterConditions::DRAWER_OPEN
    } else {
        PrinterConditions::empty()
    }
}

fn pin3_from_drawer(conditions: PrinterConditions, drawer_open_when_pin3_high: bool) -> u8 {
    let pin3_high =
        conditions.contains(PrinterConditions::DRAWER_OPEN) == drawer_open_when_pin3_high;
    if pin3_high { PIN3 } else { 0 }
}

/// Parse the one-byte reply to DLE EOT n.
///
/// Every defined bit is mapped (see [`StatusRequest::conditions`]); the drawer is reported
/// open when pin 3's level equals `drawer_open_when_pin3_high` (drawers differ: most report
/// open with pin 3 high). Only DLE EOT 1 carries the drawer. In DLE EOT 4 a condition is
/// reported when either bit of its pair is set (the reference sets both; one alone is not
/// ignored).
///
/// Errors: [`StatusError::FixedBits`] when the byte lacks the `0xx1xx10` pattern (it is not
/// a status byte, and nothing is read from it).
pub fn parse_real_time(
    request: StatusRequest,
    byte: u8,
    drawer_open_when_pin3_high: bool,
) -> Result<PrinterConditions, StatusError> {
    if !is_real_time_byte(byte) {
        return Err(StatusError::FixedBits {
            byte,
            expected_pattern: REAL_TIME_PATTERN,
            what: request.what(),
        });
    }
    let mut conditions = parse_bits(byte, request.layout());
    if request == StatusRequest::Printer {
        conditions |= drawer_from_pin3(byte & PIN3 != 0, drawer_open_when_pin3_high);
    }
    Ok(conditions)
}

/// The byte a printer in `conditions` answers to DLE EOT n (the virtual printer's side).
///
/// Conditions the request cannot report are ignored; pairs of bits are set together.
pub fn encode_real_time(
    request: StatusRequest,
    conditions: PrinterConditions,
    drawer_open_when_pin3_high: bool,
) -> u8 {
    let mut byte = 0b0001_0010 | encode_bits(conditions, request.layout());
    if request == StatusRequest::Printer {
        byte |= pin3_from_drawer(conditions, drawer_open_when_pin3_high);
    }
    byte
}

/// All four DLE EOT requests back to back (`10 04 01 10 04 02 10 04 03 10 04 04`): the
/// printer answers with four bytes in the same order, to be read with
/// [`parse_real_time_all`].
pub fn real_time_all_bytes() -> Vec<u8> {
    StatusRequest::ALL.iter().flat_map(|r| r.bytes()).collect()
}

/// The conditions from the four replies to DLE EOT 1, 2, 3 and 4 (in that order).
///
/// Errors: [`StatusError::FixedBits`] for the first byte without the status pattern.
pub fn parse_real_time_all(
    replies: [u8; 4],
    drawer_open_when_pin3_high: bool,
) -> Result<PrinterConditions, StatusError> {
    StatusRequest::ALL.iter().zip(replies).try_fold(
        PrinterConditions::empty(),
        |acc, (request, byte)| {
            Ok(acc | parse_real_time(*request, byte, drawer_open_when_pin3_high)?)
        },
    )
}

// ---------------------------------------------------------------------------------------
// Automatic Status Back (GS a)
// ---------------------------------------------------------------------------------------

/// Which status groups GS a n enables for Automatic Status Back. The printer sends a 4-byte
/// block when any enabled group changes (and once at once when ASB is enabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AsbEnable(u8);

impl AsbEnable {
    /// ASB off (`GS a 0`).
    pub const NONE: AsbEnable = AsbEnable(0);
    /// Bit 0: drawer kick-out connector pin 3.
    pub const DRAWER: AsbEnable = AsbEnable(0x01);
    /// Bit 1: online/offline (cover, paper feed, offline).
    pub const ONLINE: AsbEnable = AsbEnable(0x02);
    /// Bit 2: errors (recoverable, autocutter, unrecoverable, auto-recoverable).
    pub const ERROR: AsbEnable = AsbEnable(0x04);
    /// Bit 3: roll paper sensor (near end, paper out).
    pub const ROLL_PAPER: AsbEnable = AsbEnable(0x08);
    /// All four groups (`GS a 15`).
    pub const ALL: AsbEnable = AsbEnable(0x0F);

    /// The n of GS a n.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// From an n of GS a n (the virtual printer's side); bits 4-7 are kept as sent.
    pub const fn from_bits(n: u8) -> AsbEnable {
        AsbEnable(n)
    }

    /// Both sets of groups.
    pub const fn union(self, other: AsbEnable) -> AsbEnable {
        AsbEnable(self.0 | other.0)
    }

    /// True when every group of `other` is enabled here.
    pub const fn contains(self, other: AsbEnable) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when ASB is off.
    pub const fn is_off(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOr for AsbEnable {
    type Output = AsbEnable;
    fn bitor(self, rhs: AsbEnable) -> AsbEnable {
        self.union(rhs)
    }
}

/// GS a n (`1D 61 n`): enable Automatic Status Back for `which` groups (or turn it off with
/// [`AsbEnable::NONE`]).
///
/// ESC @ turns ASB off: send this again after every ESC @ (see [`initialize_keeping_asb`]).
/// A printer answers GS a with a non-zero n by sending the current block at once, so a
/// driver that enables ASB must expect an [`Reply::Asb`] right after.
pub fn asb_enable(which: AsbEnable) -> Vec<u8> {
    vec![GS, 0x61, which.bits()]
}

/// ESC @ (initialize) followed by GS a n: initializing turns ASB off, so a driver that uses
/// ASB sends this instead of a bare ESC @. With [`AsbEnable::NONE`] it is just ESC @ and
/// GS a 0.
pub fn initialize_keeping_asb(which: AsbEnable) -> Vec<u8> {
    let mut bytes = vec![ESC, 0x40];
    bytes.extend(asb_enable(which));
    bytes
}

const ASB_BYTE1: &[BitMap] = &[
    (0x08, PrinterConditions::OFFLINE),
    (0x20, PrinterConditions::COVER_OPEN),
    (0x40, PrinterConditions::FEED_BUTTON),
];
const ASB_BYTE2: &[BitMap] = &[
    (0x01, PrinterConditions::WAITING_ONLINE),
    (0x02, PrinterConditions::FEED_BUTTON),
    (0x04, PrinterConditions::RECOVERABLE),
    (0x08, PrinterConditions::CUTTER_JAM),
    (0x20, PrinterConditions::UNRECOVERABLE),
    (0x40, PrinterConditions::AUTO_RECOVERABLE),
];
const ASB_BYTE3: &[BitMap] = &[
    (0x03, PrinterConditions::PAPER_NEAR_END),
    (0x0C, PrinterConditions::PAPER_OUT),
];
const ASB_BYTE4: &[BitMap] = &[];
const ASB_LAYOUT: [&[BitMap]; 4] = [ASB_BYTE1, ASB_BYTE2, ASB_BYTE3, ASB_BYTE4];
const ASB_WHAT: [&str; 4] = ["ASB byte 1", "ASB byte 2", "ASB byte 3", "ASB byte 4"];

/// The conditions an ASB block can report. It has no "stopped by paper end" and no "error
/// occurred" bit: ask DLE EOT 2 for those.
pub const ASB_CONDITIONS: PrinterConditions = PrinterConditions::DRAWER_OPEN
    .union(PrinterConditions::OFFLINE)
    .union(PrinterConditions::COVER_OPEN)
    .union(PrinterConditions::FEED_BUTTON)
    .union(PrinterConditions::WAITING_ONLINE)
    .union(PrinterConditions::RECOVERABLE)
    .union(PrinterConditions::CUTTER_JAM)
    .union(PrinterConditions::UNRECOVERABLE)
    .union(PrinterConditions::AUTO_RECOVERABLE)
    .union(PrinterConditions::PAPER_NEAR_END)
    .union(PrinterConditions::PAPER_OUT);

/// Check the fixed bits of a 4-byte ASB block.
///
/// Errors: [`StatusError::FixedBits`] naming the first byte that breaks its pattern.
pub fn check_asb(block: [u8; 4]) -> Result<(), StatusError> {
    for (i, byte) in block.into_iter().enumerate() {
        let (ok, pattern) = if i == 0 {
            (is_asb_first_byte(byte), ASB_FIRST_PATTERN)
        } else {
            (is_asb_rest_byte(byte), ASB_REST_PATTERN)
        };
        if !ok {
            return Err(StatusError::FixedBits {
                byte,
                expected_pattern: pattern,
                what: ASB_WHAT.get(i).copied().unwrap_or("ASB"),
            });
        }
    }
    Ok(())
}

/// Parse a 4-byte Automatic Status Back block.
///
/// Byte 1: bit 2 drawer pin 3, bit 3 offline, bit 5 cover open, bit 6 paper fed by the
/// feed button. Byte 2: bit 0 waiting for online recovery, bit 1 feed button pushed, bit 2
/// recoverable error, bit 3 autocutter error, bit 5 unrecoverable, bit 6 auto-recoverable.
/// Byte 3: bits 0-1 roll paper near end, bits 2-3 roll paper not present (either bit of a
/// pair reports the condition). Byte 4: reserved. Only the bits are reported: ERROR and
/// PAPER_END_STOP are not derived (see [`ASB_CONDITIONS`]).
///
/// Errors: [`StatusError::FixedBits`] when a byte lacks its pattern (`0xx1xx00` for byte 1,
/// `0xx0xxxx` for bytes 2-4).
pub fn parse_asb(
    block: [u8; 4],
    drawer_open_when_pin3_high: bool,
) -> Result<PrinterConditions, StatusError> {
    check_asb(block)?;
    let conditions = block
        .iter()
        .zip(ASB_LAYOUT)
        .fold(PrinterConditions::empty(), |acc, (byte, layout)| {
            acc | parse_bits(*byte, layout)
        });
    Ok(conditions | drawer_from_pin3(block[0] & PIN3 != 0, drawer_open_when_pin3_high))
}

/// The ASB block a printer in `conditions` sends (the virtual printer's side). Conditions
/// outside [`ASB_CONDITIONS`] are ignored; the feed button sets both of its bits.
pub fn encode_asb(conditions: PrinterConditions, drawer_open_when_pin3_high: bool) -> [u8; 4] {
    let mut block = [0x10, 0, 0, 0];
    for (byte, layout) in block.iter_mut().zip(ASB_LAYOUT) {
        *byte |= encode_bits(conditions, layout);
    }
    block[0] |= pin3_from_drawer(conditions, drawer_open_when_pin3_high);
    block
}
