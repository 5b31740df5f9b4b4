//! CCID messages (USB CCID rev 1.1, chapter 6): one codec for the driver and the virtual
//! reader.
//!
//! - [`Request`]: every PC_to_RDR message on bulk OUT (the driver encodes, the virtual
//!   reader decodes).
//! - [`Response`]: every RDR_to_PC message on bulk IN (the virtual reader encodes, the
//!   driver decodes), with [`SlotStatusByte`] (bmICCStatus, bmCommandStatus) and
//!   [`SlotError`] (bError) decoded with the spec's names.
//! - [`Notification`]: the interrupt IN messages NotifySlotChange and HardwareError.
//! - [`message_length`]: how long a bulk message is once its 10-byte header is in, for a
//!   driver assembling a reply from several USB packets.
//!
//! Every bulk message starts with the same 10-byte header: bMessageType, dwLength (little
//! endian, bytes of abData after the header), bSlot, bSeq, then three message-specific
//! bytes (for replies: bStatus, bError and one more). A reply carries the bSlot and bSeq of
//! the command it answers ([`Request::match_reply`]). [`Request`] and [`Response`] hold these
//! common fields once, and the rest in a [`RequestBody`] or [`ResponseBody`].
//!
//! Decoders take untrusted bytes and never panic: anything malformed is a [`CodecError`]
//! saying what was wrong and at which offset.
//!
//! `Debug` of [`Request`] and [`Response`] shows the length of abData, never its bytes:
//! APDUs may carry a PAN. Log these summaries, never the encoded bytes.

use std::fmt;

use pos_hal::{Fault, FaultKind};

mod notification;
mod params;
mod request;
mod response;
mod status;

pub use notification::{Notification, SlotChange};
pub use params::{PowerSelect, ProtocolParams};
pub use request::{ReplyMatch, Request, RequestBody};
pub use response::{Response, ResponseBody};
pub use status::{CommandStatus, IccStatus, SlotError, SlotStatusByte};

/// Length of the bulk message header.
pub(crate) const HEADER_LEN: usize = 10;

/// PC_to_RDR_IccPowerOn.
pub(crate) const PC_TO_RDR_ICC_POWER_ON: u8 = 0x62;
/// PC_to_RDR_IccPowerOff.
pub(crate) const PC_TO_RDR_ICC_POWER_OFF: u8 = 0x63;
/// PC_to_RDR_GetSlotStatus.
pub(crate) const PC_TO_RDR_GET_SLOT_STATUS: u8 = 0x65;
/// PC_to_RDR_XfrBlock.
pub(crate) const PC_TO_RDR_XFR_BLOCK: u8 = 0x6F;
/// PC_to_RDR_GetParameters.
pub const PC_TO_RDR_GET_PARAMETERS: u8 = 0x6C;
/// PC_to_RDR_ResetParameters.
pub(crate) const PC_TO_RDR_RESET_PARAMETERS: u8 = 0x6D;
/// PC_to_RDR_SetParameters.
pub(crate) const PC_TO_RDR_SET_PARAMETERS: u8 = 0x61;
/// PC_to_RDR_Escape.
pub(crate) const PC_TO_RDR_ESCAPE: u8 = 0x6B;
/// PC_to_RDR_IccClock.
pub(crate) const PC_TO_RDR_ICC_CLOCK: u8 = 0x6E;
/// PC_to_RDR_T0APDU.
pub(crate) const PC_TO_RDR_T0_APDU: u8 = 0x6A;
/// PC_to_RDR_Secure.
pub(crate) const PC_TO_RDR_SECURE: u8 = 0x69;
/// PC_to_RDR_Mechanical.
pub(crate) const PC_TO_RDR_MECHANICAL: u8 = 0x71;
/// PC_to_RDR_Abort.
pub(crate) const PC_TO_RDR_ABORT: u8 = 0x72;
/// PC_to_RDR_SetDataRateAndClockFrequency.
pub(crate) const PC_TO_RDR_SET_DATA_RATE_AND_CLOCK: u8 = 0x73;

/// RDR_to_PC_DataBlock.
pub const RDR_TO_PC_DATA_BLOCK: u8 = 0x80;
/// RDR_to_PC_SlotStatus.
pub const RDR_TO_PC_SLOT_STATUS: u8 = 0x81;
/// RDR_to_PC_Parameters.
pub const RDR_TO_PC_PARAMETERS: u8 = 0x82;
/// RDR_to_PC_Escape.
pub const RDR_TO_PC_ESCAPE: u8 = 0x83;
/// RDR_to_PC_DataRateAndClockFrequency.
pub const RDR_TO_PC_DATA_RATE_AND_CLOCK: u8 = 0x84;

/// RDR_to_PC_NotifySlotChange (interrupt IN).
pub(crate) const RDR_TO_PC_NOTIFY_SLOT_CHANGE: u8 = 0x50;
/// RDR_to_PC_HardwareError (interrupt IN).
pub(crate) const RDR_TO_PC_HARDWARE_ERROR: u8 = 0x51;

/// Class request ABORT (bRequest; wValue = bSeq << 8 | bSlot, see [`abort_value`]).
pub const ABORT_REQUEST: u8 = 0x01;
/// Class request GET_CLOCK_FREQUENCIES (answer: a list of u32 LE clocks in kHz).
pub const GET_CLOCK_FREQUENCIES_REQUEST: u8 = 0x02;
/// Class request GET_DATA_RATES (answer: a list of u32 LE rates in bps).
pub const GET_DATA_RATES_REQUEST: u8 = 0x03;
/// bmRequestType of class requests host to device, to the interface (ABORT).
pub(crate) const CLASS_REQUEST_OUT: u8 = 0x21;
/// bmRequestType of class requests device to host, from the interface (GET_*).
pub const CLASS_REQUEST_IN: u8 = 0xA1;

/// bHardwareErrorCode: overcurrent.
pub const HARDWARE_ERROR_OVERCURRENT: u8 = 0x01;

/// wLevelParameter / bChainParameter: the APDU begins and ends in this message.
pub const CHAIN_BEGIN_AND_END: u16 = 0x0000;
/// wLevelParameter / bChainParameter: the APDU begins here and continues in the next.
pub const CHAIN_BEGIN: u16 = 0x0001;
/// wLevelParameter / bChainParameter: this message ends the APDU.
pub const CHAIN_END: u16 = 0x0002;
/// wLevelParameter / bChainParameter: the APDU neither begins nor ends here.
pub const CHAIN_CONTINUE: u16 = 0x0003;
/// wLevelParameter: empty abData, the host expects more response data (the next part
/// of a chained response).
pub const CHAIN_EMPTY_MORE: u16 = 0x0010;

/// IccClock bClockCommand: restart the clock.
pub const ICC_CLOCK_RESTART: u8 = 0x00;
/// IccClock bClockCommand: stop the clock in the state shown by bClockStop.
pub const ICC_CLOCK_STOP: u8 = 0x01;

/// SlotStatus bClockStatus: clock running.
pub const CLOCK_RUNNING: u8 = 0x00;
/// SlotStatus bClockStatus: clock stopped in state L.
pub const CLOCK_STOPPED_LOW: u8 = 0x01;
/// SlotStatus bClockStatus: clock stopped in state H.
pub const CLOCK_STOPPED_HIGH: u8 = 0x02;
/// SlotStatus bClockStatus: clock stopped in an unknown state.
pub const CLOCK_STOPPED_UNKNOWN: u8 = 0x03;

/// Mechanical bFunction: accept card.
pub const MECHANICAL_ACCEPT: u8 = 0x01;
/// Mechanical bFunction: eject card.
pub const MECHANICAL_EJECT: u8 = 0x02;
/// Mechanical bFunction: capture card.
pub const MECHANICAL_CAPTURE: u8 = 0x03;
/// Mechanical bFunction: lock card.
pub const MECHANICAL_LOCK: u8 = 0x04;
/// Mechanical bFunction: unlock card.
pub const MECHANICAL_UNLOCK: u8 = 0x05;

/// The spec's name of a message type (`"PC_to_RDR_XfrBlock"`, ...), or `"unknown"`.
pub(crate) fn message_type_name(message_type: u8) -> &'static str {
    match message_type {
        PC_TO_RDR_ICC_POWER_ON => "PC_to_RDR_IccPowerOn",
        PC_TO_RDR_ICC_POWER_OFF => "PC_to_RDR_IccPowerOff",
        PC_TO_RDR_GET_SLOT_STATUS => "PC_to_RDR_GetSlotStatus",
        PC_TO_RDR_XFR_BLOCK => "PC_to_RDR_XfrBlock",
        PC_TO_RDR_GET_PARAMETERS => "PC_to_RDR_GetParameters",
        PC_TO_RDR_RESET_PARAMETERS => "PC_to_RDR_ResetParameters",
        PC_TO_RDR_SET_PARAMETERS => "PC_to_RDR_SetParameters",
        PC_TO_RDR_ESCAPE => "PC_to_RDR_Escape",
        PC_TO_RDR_ICC_CLOCK => "PC_to_RDR_IccClock",
        PC_TO_RDR_T0_APDU => "PC_to_RDR_T0APDU",
        PC_TO_RDR_SECURE => "PC_to_RDR_Secure",
        PC_TO_RDR_MECHANICAL => "PC_to_RDR_Mechanical",
        PC_TO_RDR_ABORT => "PC_to_RDR_Abort",
        PC_TO_RDR_SET_DATA_RATE_AND_CLOCK => "PC_to_RDR_SetDataRateAndClockFrequency",
        RDR_TO_PC_DATA_BLOCK => "RDR_to_PC_DataBlock",
        RDR_TO_PC_SLOT_STATUS => "RDR_to_PC_SlotStatus",
        RDR_TO_PC_PARAMETERS => "RDR_to_PC_Parameters",
        RDR_TO_PC_ESCAPE => "RDR_to_PC_Escape",
        RDR_TO_PC_DATA_RATE_AND_CLOCK => "RDR_to_PC_DataRateAndClockFrequency",
        RDR_TO_PC_NOTIFY_SLOT_CHANGE => "RDR_to_PC_NotifySlotChange",
        RDR_TO_PC_HARDWARE_ERROR => "RDR_to_PC_HardwareError",
        _ => "unknown",
    }
}

/// The RDR_to_PC message type that answers a PC_to_RDR message type (CCID rev 1.1,
/// table 6.1-1). Unknown commands are answered with a SlotStatus.
pub fn response_type_for(request_type: u8) -> u8 {
    match request_type {
        PC_TO_RDR_ICC_POWER_ON | PC_TO_RDR_XFR_BLOCK | PC_TO_RDR_SECURE => RDR_TO_PC_DATA_BLOCK,
        PC_TO_RDR_GET_PARAMETERS | PC_TO_RDR_RESET_PARAMETERS | PC_TO_RDR_SET_PARAMETERS => {
            RDR_TO_PC_PARAMETERS
        }
        PC_TO_RDR_ESCAPE => RDR_TO_PC_ESCAPE,
        PC_TO_RDR_SET_DATA_RATE_AND_CLOCK => RDR_TO_PC_DATA_RATE_AND_CLOCK,
        _ => RDR_TO_PC_SLOT_STATUS,
    }
}

/// wValue of the class request ABORT: `bSeq << 8 | bSlot`.
pub fn abort_value(slot: u8, seq: u8) -> u16 {
    u16::from(seq) << 8 | u16::from(slot)
}

/// The (slot, seq) of an ABORT request's wValue (inverse of [`abort_value`]).
pub fn parse_abort_value(w_value: u16) -> (u8, u8) {
    let [slot, seq] = w_value.to_le_bytes();
    (slot, seq)
}

/// The u32 little-endian list answering GET_CLOCK_FREQUENCIES (kHz) or GET_DATA_RATES
/// (bps). A trailing partial value is ignored.
pub fn parse_u32_list(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| match c {
            [a, b, d, e] => u32::from_le_bytes([*a, *b, *d, *e]),
            _ => 0,
        })
        .collect()
}

/// Encode a GET_CLOCK_FREQUENCIES / GET_DATA_RATES answer (for the virtual reader).
pub fn encode_u32_list(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The total length of a bulk message (10 + dwLength) once its first 10 bytes are known;
/// `None` while fewer than 10 bytes are in.
///
/// A driver reads bulk IN until it has this many bytes (a reply may span several USB
/// packets; a transfer ends on a short packet). Compare it with dwMaxCCIDMessageLength
/// before buffering: dwLength comes from the device.
pub fn message_length(header: &[u8]) -> Option<usize> {
    match header {
        [_, a, b, c, d, _, _, _, _, _, ..] => {
            let len = u32::from_le_bytes([*a, *b, *c, *d]);
            Some(HEADER_LEN.saturating_add(usize::try_from(len).unwrap_or(usize::MAX)))
        }
        _ => None,
    }
}

/// The 10-byte header every bulk message starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// bMessageType (offset 0).
    pub message_type: u8,
    /// dwLength (offset 1, little endian): bytes of abData after the header.
    pub length: u32,
    /// bSlot (offset 5).
    pub slot: u8,
    /// bSeq (offset 6).
    pub seq: u8,
    /// The three message-specific bytes (offsets 7 to 9). For replies: bStatus, bError,
    /// and a third (bChainParameter, bClockStatus, bProtocolNum or RFU).
    pub specific: [u8; 3],
}

impl Header {
    /// Read the header from the first 10 bytes (more may follow).
    ///
    /// Errors: [`CodecError::Truncated`] with fewer than 10 bytes. This lets the virtual
    /// reader answer a malformed command with the right bSlot and bSeq.
    pub fn parse(bytes: &[u8]) -> Result<Header, CodecError> {
        match bytes {
            [t, a, b, c, d, slot, seq, s0, s1, s2, ..] => Ok(Header {
                message_type: *t,
                length: u32::from_le_bytes([*a, *b, *c, *d]),
                slot: *slot,
                seq: *seq,
                specific: [*s0, *s1, *s2],
            }),
            _ => Err(CodecError::Truncated {
                message: "CCID header",
                needed: HEADER_LEN,
                got: bytes.len(),
            }),
        }
    }

    /// The 10 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let [a, b, c, d] = self.length.to_le_bytes();
        let [s0, s1, s2] = self.specific;
        [
            self.message_type,
            a,
            b,
            c,
            d,
            self.slot,
            self.seq,
            s0,
            s1,
            s2,
        ]
    }

    /// 10 + dwLength.
    pub(crate) fn total_len(&self) -> usize {
        HEADER_LEN.saturating_add(usize::try_from(self.length).unwrap_or(usize::MAX))
    }
}

/// Build a message: header then abData. dwLength saturates at u32::MAX (no real message
/// comes near it).
fn build(message_type: u8, slot: u8, seq: u8, specific: [u8; 3], data: &[u8]) -> Vec<u8> {
    let header = Header {
        message_type,
        length: u32::try_from(data.len()).unwrap_or(u32::MAX),
        slot,
        seq,
        specific,
    };
    let mut v = Vec::with_capacity(HEADER_LEN + data.len());
    v.extend_from_slice(&header.to_bytes());
    v.extend_from_slice(data);
    v
}

/// Split a message into its header and exactly dwLength bytes of abData.
///
/// `strict`: bytes after 10 + dwLength are an error (commands: the driver must send exactly
/// one message per transfer); otherwise they are ignored (replies: readers pad, e.g. the
/// trailing zeros seen in LudovicRousseau/CCID PR #67, and older QEMU sends a Parameters
/// reply whose dwLength is 0 with the structure after it).
fn split(bytes: &[u8], strict: bool) -> Result<(Header, &[u8], &'static str), CodecError> {
    let h = Header::parse(bytes)?;
    let name = short_name(h.message_type);
    let total = h.total_len();
    let data = bytes.get(HEADER_LEN..total).ok_or(CodecError::Truncated {
        message: name,
        needed: total,
        got: bytes.len(),
    })?;
    if strict && bytes.len() > total {
        return Err(CodecError::TrailingBytes {
            message: name,
            expected: total,
            extra: bytes.len() - total,
        });
    }
    Ok((h, data, name))
}

fn short_name(message_type: u8) -> &'static str {
    let n = message_type_name(message_type);
    n.strip_prefix("PC_to_RDR_")
        .or_else(|| n.strip_prefix("RDR_to_PC_"))
        .unwrap_or(n)
}

fn expect_len(
    message: &'static str,
    h: &Header,
    want: u32,
    expected: &'static str,
) -> Result<(), CodecError> {
    if h.length == want {
        Ok(())
    } else {
        Err(CodecError::BadLength {
            message,
            length: h.length,
            expected,
        })
    }
}

fn le32_at(data: &[u8], at: usize) -> u32 {
    match data.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
        _ => 0,
    }
}

/// dwClockFrequency then dwDataRate, as SetDataRateAndClockFrequency and its reply carry
/// them.
fn clock_and_rate(clock_khz: u32, rate_bps: u32) -> Vec<u8> {
    [clock_khz, rate_bps]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

/// Shows the length of a payload, never its bytes.
struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

/// Bytes that are not a well-formed CCID message. Every variant says what was wrong and
/// at which offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The message ends early (header, or fewer abData bytes than dwLength at offset 1
    /// says).
    #[error(
        "{message} truncated: {needed} bytes needed, only {got} (offset {got} is past the end)"
    )]
    Truncated {
        /// What was being read.
        message: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes there.
        got: usize,
    },
    /// Bytes after the message's end (commands must be exactly one message).
    #[error(
        "{message}: {extra} byte(s) after the end at offset {expected} (dwLength at offset 1 makes the message {expected} bytes)"
    )]
    TrailingBytes {
        /// The message type's name.
        message: &'static str,
        /// 10 + dwLength.
        expected: usize,
        /// Bytes beyond it.
        extra: usize,
    },
    /// bMessageType (offset 0) is not a message of this direction.
    #[error("unknown {direction} message type 0x{message_type:02X} at offset 0")]
    UnknownMessageType {
        /// `"bulk-in"` or `"interrupt"`.
        direction: &'static str,
        /// The byte.
        message_type: u8,
    },
    /// dwLength (offset 1) is wrong for the message.
    #[error("{message}: dwLength {length} at offset 1 is wrong, expected {expected}")]
    BadLength {
        /// The message type's name.
        message: &'static str,
        /// dwLength read.
        length: u32,
        /// What it should be.
        expected: &'static str,
    },
    /// A field has a value the spec does not allow.
    #[error("{message}: {field} 0x{value:02X} at offset {offset} is invalid: {reason}")]
    BadField {
        /// The message type's name.
        message: &'static str,
        /// The field's name in the spec.
        field: &'static str,
        /// Its offset in the message.
        offset: usize,
        /// The byte read.
        value: u8,
        /// What is allowed.
        reason: &'static str,
    },
}

impl CodecError {
    /// The bError a reader answers a malformed command with: the offset of the bad field
    /// ([`SlotError::BadParameter`]; 1 for dwLength). `None` when the header itself is
    /// incomplete (no bSlot/bSeq to answer to).
    pub fn slot_error(&self) -> Option<SlotError> {
        match self {
            CodecError::Truncated { got, .. } if *got < HEADER_LEN => None,
            CodecError::Truncated { .. }
            | CodecError::TrailingBytes { .. }
            | CodecError::BadLength { .. } => Some(SlotError::BadParameter(1)),
            CodecError::BadField { offset, .. } => Some(SlotError::BadParameter(
                u8::try_from(*offset).unwrap_or(0x7F).clamp(1, 0x7F),
            )),
            CodecError::UnknownMessageType { .. } => Some(SlotError::NotSupported),
        }
    }
}

impl Fault for CodecError {
    fn kind(&self) -> FaultKind {
        FaultKind::Protocol
    }
}
