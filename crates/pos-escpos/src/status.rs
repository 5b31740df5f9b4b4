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

// ---------------------------------------------------------------------------------------
// GS ( H process ID (print confirmation)
// ---------------------------------------------------------------------------------------

fn check_process_id(id: [u8; 4]) -> Result<(), StatusError> {
    if id.iter().all(|b| (0x20..=0x7E).contains(b)) {
        Ok(())
    } else {
        Err(StatusError::InvalidProcessId { id })
    }
}

/// The process ID for a job counter: its last four decimal digits in ASCII
/// (`job_id(42) == *b"0042"`, `job_id(12345) == *b"2345"`). IDs repeat every 10000 jobs, so
/// a driver must not have that many confirmations outstanding.
pub fn job_id(counter: u32) -> [u8; 4] {
    let mut n = counter % 10_000;
    let mut id = [b'0'; 4];
    for digit in id.iter_mut().rev() {
        // n % 10 < 10, so the cast keeps the value.
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
    id
}

/// GS ( H pL pH fn m d1..d4 with fn = 48, m = 48 (`1D 28 48 06 00 30 30 d1 d2 d3 d4`):
/// the printer answers [`process_id_reply`] once everything sent before it has been
/// processed; after print data, once it has been printed.
///
/// Errors: [`StatusError::InvalidProcessId`] when a byte of `id` is outside 0x20..=0x7E.
pub fn process_id_request(id: [u8; 4]) -> Result<Vec<u8>, StatusError> {
    check_process_id(id)?;
    let mut bytes = vec![GS, 0x28, 0x48, 0x06, 0x00, 0x30, 0x30];
    bytes.extend_from_slice(&id);
    Ok(bytes)
}

/// The process-ID reply (`37 22 d1 d2 d3 d4 00`), as the virtual printer sends it.
///
/// Errors: [`StatusError::InvalidProcessId`] when a byte of `id` is outside 0x20..=0x7E.
pub fn process_id_reply(id: [u8; 4]) -> Result<Vec<u8>, StatusError> {
    check_process_id(id)?;
    let mut bytes = vec![EXTENDED_HEADER, PROCESS_ID_IDENTIFIER];
    bytes.extend_from_slice(&id);
    bytes.push(0x00);
    Ok(bytes)
}

// ---------------------------------------------------------------------------------------
// GS I identification
// ---------------------------------------------------------------------------------------

/// GS I n (`1D 49 n`): transmit printer ID. Not a real-time command: the printer answers
/// when it reaches it in its receive buffer (after earlier print data).
pub const fn gs_i(n: u8) -> [u8; 3] {
    [GS, 0x49, n]
}

/// What GS I n asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdRequest {
    /// n = 1: printer model ID (one byte).
    ModelId = 1,
    /// n = 2: type ID (one byte: bit 0 multi-byte characters, bit 1 autocutter, bit 2
    /// customer display).
    TypeId = 2,
    /// n = 3: ROM version ID (one byte).
    RomVersion = 3,
    /// n = 65: firmware version (block).
    Firmware = 65,
    /// n = 66: maker name (block).
    Maker = 66,
    /// n = 67: model name (block).
    Model = 67,
    /// n = 68: serial number (block).
    Serial = 68,
    /// n = 69: additional fonts (block).
    Fonts = 69,
}

/// Type ID bit 0: multi-byte character codes supported.
pub const TYPE_ID_MULTIBYTE: u8 = 0x01;
/// Type ID bit 1: autocutter installed.
pub const TYPE_ID_AUTOCUTTER: u8 = 0x02;
/// Type ID bit 2: customer display (DM-D) connected.
pub const TYPE_ID_CUSTOMER_DISPLAY: u8 = 0x04;

impl IdRequest {
    /// Every request, in n order.
    pub const ALL: [IdRequest; 8] = [
        IdRequest::ModelId,
        IdRequest::TypeId,
        IdRequest::RomVersion,
        IdRequest::Firmware,
        IdRequest::Maker,
        IdRequest::Model,
        IdRequest::Serial,
        IdRequest::Fonts,
    ];

    /// The n of GS I n.
    pub const fn n(self) -> u8 {
        self as u8
    }

    /// The request for an n, as the virtual printer reads it (49..=51 are the same as
    /// 1..=3, as in the reference).
    pub const fn from_n(n: u8) -> Option<Self> {
        match n {
            1 | 49 => Some(IdRequest::ModelId),
            2 | 50 => Some(IdRequest::TypeId),
            3 | 51 => Some(IdRequest::RomVersion),
            65 => Some(IdRequest::Firmware),
            66 => Some(IdRequest::Maker),
            67 => Some(IdRequest::Model),
            68 => Some(IdRequest::Serial),
            69 => Some(IdRequest::Fonts),
            _ => None,
        }
    }

    /// The command, `1D 49 n`. Before sending a one-byte request call
    /// [`ReplyReader::expect_id_byte`].
    pub const fn bytes(self) -> [u8; 3] {
        gs_i(self.n())
    }

    /// True when the reply is a one-byte ID ([`Reply::IdByte`]); false for a `5F ... 00`
    /// block ([`Reply::Block`]).
    pub const fn is_single_byte(self) -> bool {
        matches!(
            self,
            IdRequest::ModelId | IdRequest::TypeId | IdRequest::RomVersion
        )
    }
}

/// What a printer says about itself (GS I). `None` where it was not asked or did not say
/// (an empty block, `5F 00`, is `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PrinterId {
    /// GS I 1: model ID.
    pub model_id: Option<u8>,
    /// GS I 2: type ID, all bits.
    pub type_id: Option<u8>,
    /// GS I 2 bit 1: an autocutter is installed.
    pub autocutter: Option<bool>,
    /// GS I 3: ROM version ID.
    pub rom_version: Option<u8>,
    /// GS I 65: firmware version.
    pub firmware: Option<String>,
    /// GS I 66: maker name.
    pub maker: Option<String>,
    /// GS I 67: model name.
    pub model: Option<String>,
    /// GS I 68: serial number.
    pub serial: Option<String>,
    /// GS I 69: additional fonts.
    pub fonts: Option<String>,
}

fn block_text(data: &[u8]) -> Option<String> {
    let text: String = data
        .iter()
        .map(|&b| {
            if (0x20..=0x7E).contains(&b) {
                char::from(b)
            } else {
                char::REPLACEMENT_CHARACTER
            }
        })
        .collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

impl PrinterId {
    /// Record the reply to GS I `request`.
    ///
    /// Block text keeps printable ASCII, shows any other byte as U+FFFD and is trimmed.
    ///
    /// Errors: [`StatusError::WrongReply`] when `reply` is not the kind the request gets
    /// (an ID byte for n = 1..3, a block for n = 65..69); [`StatusError::FixedBits`] for an
    /// ID byte without the `0xx0xxxx` pattern.
    pub fn apply(&mut self, request: IdRequest, reply: &Reply) -> Result<(), StatusError> {
        if request.is_single_byte() {
            let Reply::IdByte(byte) = *reply else {
                return Err(StatusError::WrongReply {
                    expected: "an ID byte (GS I 1-3)",
                    got: reply.kind_name(),
                });
            };
            if !is_id_byte(byte) {
                return Err(StatusError::FixedBits {
                    byte,
                    expected_pattern: ASB_REST_PATTERN,
                    what: "a GS I ID byte",
                });
            }
            match request {
                IdRequest::ModelId => self.model_id = Some(byte),
                IdRequest::TypeId => {
                    self.type_id = Some(byte);
                    self.autocutter = Some(byte & TYPE_ID_AUTOCUTTER != 0);
                }
                _ => self.rom_version = Some(byte),
            }
        } else {
            let Reply::Block(data) = reply else {
                return Err(StatusError::WrongReply {
                    expected: "a printer information block (GS I 65-69)",
                    got: reply.kind_name(),
                });
            };
            let text = block_text(data);
            match request {
                IdRequest::Firmware => self.firmware = text,
                IdRequest::Maker => self.maker = text,
                IdRequest::Model => self.model = text,
                IdRequest::Serial => self.serial = text,
                _ => self.fonts = text,
            }
        }
        Ok(())
    }

    /// The reply this printer sends to GS I `request` (the virtual printer's side).
    ///
    /// One-byte requests answer `None` when the value is not set (a printer without the
    /// value sends nothing); the type ID is built from `autocutter` when only that is set.
    /// Blocks are always sent: `5F text 00`, `5F 00` when unset. Text keeps printable ASCII
    /// (anything else becomes `?`) and is cut to fit [`MAX_FRAME_LEN`].
    ///
    /// Errors: [`StatusError::Unencodable`] for an ID byte without the `0xx0xxxx` pattern.
    pub fn reply_to(&self, request: IdRequest) -> Result<Option<Vec<u8>>, StatusError> {
        let byte = |what: &'static str, value: Option<u8>| match value {
            None => Ok(None),
            Some(value) if is_id_byte(value) => Ok(Some(vec![value])),
            Some(value) => Err(StatusError::Unencodable {
                what,
                value,
                expected_pattern: ASB_REST_PATTERN,
            }),
        };
        let text = |value: &Option<String>| Ok(Some(block_reply(value.as_deref().unwrap_or(""))));
        match request {
            IdRequest::ModelId => byte("model ID", self.model_id),
            IdRequest::TypeId => byte(
                "type ID",
                self.type_id.or_else(|| {
                    self.autocutter
                        .map(|cutter| if cutter { TYPE_ID_AUTOCUTTER } else { 0 })
                }),
            ),
            IdRequest::RomVersion => byte("ROM version ID", self.rom_version),
            IdRequest::Firmware => text(&self.firmware),
            IdRequest::Maker => text(&self.maker),
            IdRequest::Model => text(&self.model),
            IdRequest::Serial => text(&self.serial),
            IdRequest::Fonts => text(&self.fonts),
        }
    }
}

/// A printer-information block `5F text 00` (the virtual printer's side). Bytes outside
/// printable ASCII become `?`; the text is cut to fit [`MAX_FRAME_LEN`].
pub fn block_reply(text: &str) -> Vec<u8> {
    let mut bytes = vec![BLOCK_HEADER];
    bytes.extend(
        text.chars()
            .map(|c| {
                u8::try_from(c)
                    .ok()
                    .filter(|b| (0x20..=0x7E).contains(b))
                    .unwrap_or(b'?')
            })
            .take(MAX_FRAME_LEN - 2),
    );
    bytes.push(0x00);
    bytes
}

// ---------------------------------------------------------------------------------------
// The reply reader
// ---------------------------------------------------------------------------------------

/// One reply from the printer, as [`ReplyReader`] split it from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A DLE EOT reply (`0xx1xx10`); parse it with [`parse_real_time`] for the request
    /// outstanding (replies come in request order).
    RealTime(u8),
    /// An Automatic Status Back block (fixed bits checked); parse with [`parse_asb`].
    Asb([u8; 4]),
    /// A GS ( H process-ID reply `37 22 d1 d2 d3 d4 00` (four bytes in 0x20..=0x7E): the
    /// job with this ID has been processed (printed).
    ProcessId([u8; 4]),
    /// Any other `37 identifier data 00` reply (GS ( E and such, or a malformed process-ID
    /// reply, which never counts as a confirmation).
    Extended {
        /// The byte after the header.
        identifier: u8,
        /// The bytes between the identifier and the NUL.
        data: Vec<u8>,
    },
    /// A GS I printer information A reply `3D identifier data 00`.
    InfoA {
        /// The byte after the header (the n of the GS I that asked).
        identifier: u8,
        /// The bytes between the identifier and the NUL.
        data: Vec<u8>,
    },
    /// A GS I n = 65..69 block `5F data 00`: the data, without header and NUL.
    Block(Vec<u8>),
    /// The one-byte reply to GS I n = 1..3 (`0xx0xxxx`), read as such only while one is
    /// expected ([`ReplyReader::expect_id_byte`]).
    IdByte(u8),
    /// XON (`0x11`) or XOFF (`0x13`) from a serial printer using software flow control.
    FlowControl(u8),
    /// A byte that starts no reply, or starts one that broke (an ASB block with a byte
    /// that lacks `0xx0xxxx`, a NUL-terminated reply longer than [`MAX_FRAME_LEN`]). The
    /// reader goes on with the byte after it.
    Garbage(u8),
    /// The caller let more than [`MAX_PENDING`] bytes pile up; this many of the oldest were
    /// dropped unread. Replies may have been lost.
    Overrun {
        /// How many bytes were dropped.
        dropped: usize,
    },
}

impl Reply {
    /// A stable snake_case name of the reply's kind, for errors and logs.
    pub const fn kind_name(&self) -> &'static str {
        match self {
            Reply::RealTime(_) => "real_time",
            Reply::Asb(_) => "asb",
            Reply::ProcessId(_) => "process_id",
            Reply::Extended { .. } => "extended",
            Reply::InfoA { .. } => "info_a",
            Reply::Block(_) => "block",
            Reply::IdByte(_) => "id_byte",
            Reply::FlowControl(_) => "flow_control",
            Reply::Garbage(_) => "garbage",
            Reply::Overrun { .. } => "overrun",
        }
    }

    /// The reply's bytes as they came on the wire (the virtual printer sends replies with
    /// this; [`Reply::Overrun`] has none).
    pub fn to_bytes(&self) -> Vec<u8> {
        let framed = |header: u8, identifier: Option<u8>, data: &[u8]| {
            let mut bytes = vec![header];
            bytes.extend(identifier);
            bytes.extend_from_slice(data);
            bytes.push(0x00);
            bytes
        };
        match self {
            Reply::RealTime(b) | Reply::IdByte(b) | Reply::FlowControl(b) | Reply::Garbage(b) => {
                vec![*b]
            }
            Reply::Asb(block) => block.to_vec(),
            Reply::ProcessId(id) => framed(EXTENDED_HEADER, Some(PROCESS_ID_IDENTIFIER), id),
            Reply::Extended { identifier, data } => {
                framed(EXTENDED_HEADER, Some(*identifier), data)
            }
            Reply::InfoA { identifier, data } => framed(INFO_A_HEADER, Some(*identifier), data),
            Reply::Block(data) => framed(BLOCK_HEADER, None, data),
            Reply::Overrun { .. } => Vec::new(),
        }
    }
}

/// The outcome of looking at the front of the buffer.
enum Step {
    /// A reply of this many bytes is complete.
    Done(Reply, usize),
    /// XON/XOFF at this index inside a reply that is still being framed.
    Flow(usize),
    /// The reply at the front needs more bytes.
    NeedMore,
    /// The reply at the front cannot be completed: its first byte is garbage.
    Broken,
}

/// The one reader of a printer's reply stream: feed it bytes as they arrive, take replies
/// out in order.
///
/// # Rules
///
/// - Replies are told apart by their fixed bits (see the [module docs](self)); the reader
///   does not need to know what was asked, except for one thing:
/// - **ID bytes.** A GS I n = 1..3 reply is one byte `0xx0xxxx`, which only ASB bytes 2-4
///   share (never a status byte, an ASB first byte or a header: those have bit 4 set). The
///   driver calls [`expect_id_byte`](Self::expect_id_byte) before sending such a GS I; while
///   one is expected, the next `0xx0xxxx` byte that is not inside an ASB block is the ID
///   byte. With none expected such a byte is [`Reply::Garbage`] (an orphan ASB tail or an
///   unasked-for GS r reply). Expectations count up, so several GS I can be outstanding;
///   [`cancel_id_expectations`](Self::cancel_id_expectations) drops them after a timeout.
/// - **ASB.** A `0xx1xx00` byte starts an ASB block; the reader waits for three more
///   `0xx0xxxx` bytes. XON/XOFF inside it are reported first and skipped, as the reference
///   says. Any other byte breaks it: the first byte is reported as [`Reply::Garbage`] and
///   reading resumes with the byte after it (so a real-time byte that arrived in the gap is
///   still found).
/// - **Header-to-NUL replies** (`0x37`, `0x5F`, `0x3D`) run to the first NUL. XON/XOFF inside
///   are reported first and skipped. With no NUL within [`MAX_FRAME_LEN`] bytes (or no
///   identifier after `0x37`/`0x3D`), the header is [`Reply::Garbage`] and reading resumes
///   after it. A `37 22` reply is a [`Reply::ProcessId`] only with exactly four bytes in
///   0x20..=0x7E; otherwise it is [`Reply::Extended`], never a confirmation.
/// - The reader never waits on its own: a partial reply stays buffered until more bytes
///   come. When the link stays quiet past the reply timeout, [`flush`](Self::flush) reports
///   what is left.
/// - Chunking does not matter: the same bytes give the same replies however they are split
///   across [`push`](Self::push) calls (as long as the expectations are set before the
///   bytes are read out).
/// - Memory is bounded by [`MAX_PENDING`]; no input makes it panic.
///
/// Printers send each reply whole (the reference allows only XOFF inside an ASB block). Were
/// a status byte ever interleaved into a header-to-NUL reply, it would be read as that
/// reply's data: the status request would time out and a process-ID reply would fail its
/// four-byte check, so the worst case is "unknown", never a false confirmation.
#[derive(Debug, Clone, Default)]
pub struct ReplyReader {
    pending: VecDeque<u8>,
    ids_expected: usize,
    dropped: usize,
}

impl ReplyReader {
    /// An empty reader expecting no ID byte.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add bytes read from the printer. When more than [`MAX_PENDING`] bytes are unread,
    /// the oldest are dropped and the next reply is a [`Reply::Overrun`].
    pub fn push(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if self.pending.len() >= MAX_PENDING {
                self.pending.pop_front();
                self.dropped = self.dropped.saturating_add(1);
            }
            self.pending.push_back(byte);
        }
    }

    /// Expect one more GS I n = 1..3 ID byte. Call before sending the request.
    pub fn expect_id_byte(&mut self) {
        self.ids_expected = self.ids_expected.saturating_add(1);
    }

    /// How many ID bytes are still expected.
    pub fn id_bytes_expected(&self) -> usize {
        self.ids_expected
    }

    /// Stop expecting ID bytes (after a GS I went unanswered).
    pub fn cancel_id_expectations(&mut self) {
        self.ids_expected = 0;
    }

    /// How many bytes are buffered and not yet returned as replies (a partial reply).
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The next complete reply, or `None` when the buffered bytes do not finish one yet.
    pub fn next_reply(&mut self) -> Option<Reply> {
        if self.dropped > 0 {
            let dropped = std::mem::take(&mut self.dropped);
            return Some(Reply::Overrun { dropped });
        }
        match self.step() {
            Step::Done(reply, len) => {
                self.pending.drain(..len.min(self.pending.len()));
                if matches!(reply, Reply::IdByte(_)) {
                    self.ids_expected = self.ids_expected.saturating_sub(1);
                }
                Some(reply)
            }
            Step::Flow(index) => self.pending.remove(index).map(Reply::FlowControl),
            Step::NeedMore => None,
            Step::Broken => self.pending.pop_front().map(Reply::Garbage),
        }
    }

    /// Every reply complete so far, in order.
    pub fn drain_replies(&mut self) -> Vec<Reply> {
        std::iter::from_fn(|| self.next_reply()).collect()
    }

    /// The link went quiet: nothing more will complete the buffered partial reply. Returns
    /// every complete reply, then the partial one's first byte as [`Reply::Garbage`] and
    /// whatever the bytes after it make (repeatedly), leaving the reader empty.
    pub fn flush(&mut self) -> Vec<Reply> {
        let mut replies = Vec::new();
        while !self.pending.is_empty() || self.dropped > 0 {
            match self.next_reply() {
                Some(reply) => replies.push(reply),
                None => replies.extend(self.pending.pop_front().map(Reply::Garbage)),
            }
        }
        replies
    }

    fn step(&self) -> Step {
        let Some(&first) = self.pending.front() else {
            return Step::NeedMore;
        };
        match first {
            XON | XOFF => Step::Done(Reply::FlowControl(first), 1),
            EXTENDED_HEADER | BLOCK_HEADER | INFO_A_HEADER => self.step_framed(first),
            b if is_real_time_byte(b) => Step::Done(Reply::RealTime(b), 1),
            b if is_asb_first_byte(b) => self.step_asb(b),
            b if is_id_byte(b) && self.ids_expected > 0 => Step::Done(Reply::IdByte(b), 1),
            b => Step::Done(Reply::Garbage(b), 1),
        }
    }

    fn step_asb(&self, first: u8) -> Step {
        let mut block = [first, 0, 0, 0];
        let mut filled = 1;
        for (index, &byte) in self.pending.iter().enumerate().skip(1) {
            if byte == XON || byte == XOFF {
                return Step::Flow(index);
            }
            if !is_asb_rest_byte(byte) {
                return Step::Broken;
            }
            if let Some(slot) = block.get_mut(filled) {
                *slot = byte;
            }
            filled += 1;
            if filled == block.len() {
                return Step::Done(Reply::Asb(block), index + 1);
            }
        }
        Step::NeedMore
    }

    fn step_framed(&self, header: u8) -> Step {
        let mut end = None;
        for (index, &byte) in self.pending.iter().enumerate().skip(1) {
            if index >= MAX_FRAME_LEN {
                return Step::Broken;
            }
            if byte == XON || byte == XOFF {
                return Step::Flow(index);
            }
            if byte == 0x00 {
                end = Some(index);
                break;
            }
        }
        let Some(end) = end else {
            return Step::NeedMore;
        };
        // Bytes 1..end, no XON/XOFF among them (they were taken out first).
        let body: Vec<u8> = self.pending.range(1..end).copied().collect();
        let reply = if header == BLOCK_HEADER {
            Reply::Block(body)
        } else {
            let Some((&identifier, data)) = body.split_first() else {
                // `37 00` / `3D 00`: no identifier.
                return Step::Broken;
            };
            let data = data.to_vec();
            if header == INFO_A_HEADER {
                Reply::InfoA { identifier, data }
            } else {
                match <[u8; 4]>::try_from(data.as_slice()) {
                    Ok(id)
                        if identifier == PROCESS_ID_IDENTIFIER && check_process_id(id).is_ok() =>
                    {
                        Reply::ProcessId(id)
                    }
                    _ => Reply::Extended { identifier, data },
                }
            }
        };
        Step::Done(reply, end + 1)
    }
}
