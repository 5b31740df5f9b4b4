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

use std::borrow::Cow;
use std::fmt;

use pos_hal::{Fault, FaultKind};

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

/// IccPowerOn bPowerSelect: the card voltage to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PowerSelect {
    /// 0x00: the reader chooses (readers with automatic voltage selection).
    Automatic,
    /// 0x01: 5.0 V.
    V5,
    /// 0x02: 3.0 V.
    V3,
    /// 0x03: 1.8 V.
    V1_8,
}

impl PowerSelect {
    /// The bPowerSelect byte.
    pub fn code(self) -> u8 {
        match self {
            PowerSelect::Automatic => 0,
            PowerSelect::V5 => 1,
            PowerSelect::V3 => 2,
            PowerSelect::V1_8 => 3,
        }
    }

    /// The voltage of a bPowerSelect byte; `None` for values above 3.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(PowerSelect::Automatic),
            1 => Some(PowerSelect::V5),
            2 => Some(PowerSelect::V3),
            3 => Some(PowerSelect::V1_8),
            _ => None,
        }
    }
}

/// The abProtocolDataStructure of SetParameters and Parameters (CCID rev 1.1, 6.1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolParams {
    /// bProtocolNum 0: T=0, 5 bytes.
    T0 {
        /// bmFindexDindex: Fi index (high nibble), Di index (low nibble), as TA1.
        findex_dindex: u8,
        /// bmTCCKST0: bit 1 = inverse convention (0x00 or 0x02).
        tcckst: u8,
        /// bGuardTimeT0: extra guard time N (TC1).
        guard_time: u8,
        /// bWaitingIntegerT0: WI (TC2).
        waiting_integer: u8,
        /// bClockStop: 0 not allowed, 1 stop low, 2 stop high, 3 either (TA(i) of T=15).
        clock_stop: u8,
    },
    /// bProtocolNum 1: T=1, 7 bytes.
    T1 {
        /// bmFindexDindex: Fi index (high nibble), Di index (low nibble), as TA1.
        findex_dindex: u8,
        /// bmTCCKST1: 0x10 | bit 1 inverse convention | bit 0 CRC (else LRC).
        tcckst: u8,
        /// bGuardTimeT1: extra guard time N (TC1).
        guard_time: u8,
        /// bWaitingIntegersT1: BWI (high nibble), CWI (low nibble).
        bwi_cwi: u8,
        /// bClockStop, as for T=0.
        clock_stop: u8,
        /// bIFSC: the card's information field size.
        ifsc: u8,
        /// bNadValue: NAD the reader uses (0 unless the reader accepts others).
        nad: u8,
    },
}

impl ProtocolParams {
    /// Spec default parameters for T=0: Fi/Di 0x11, direct convention, no extra guard
    /// time, WI 10, clock stop not allowed.
    pub fn default_t0() -> Self {
        ProtocolParams::T0 {
            findex_dindex: 0x11,
            tcckst: 0x00,
            guard_time: 0x00,
            waiting_integer: 0x0A,
            clock_stop: 0x00,
        }
    }

    /// Spec default parameters for T=1: Fi/Di 0x11, LRC, direct convention, no extra
    /// guard time, BWI 4 / CWI 13, clock stop not allowed, IFSC 32, NAD 0.
    pub fn default_t1() -> Self {
        ProtocolParams::T1 {
            findex_dindex: 0x11,
            tcckst: 0x10,
            guard_time: 0x00,
            bwi_cwi: 0x4D,
            clock_stop: 0x00,
            ifsc: 0x20,
            nad: 0x00,
        }
    }

    /// bProtocolNum: 0 for T=0, 1 for T=1.
    pub(crate) fn protocol_num(&self) -> u8 {
        match self {
            ProtocolParams::T0 { .. } => 0,
            ProtocolParams::T1 { .. } => 1,
        }
    }

    /// bmFindexDindex.
    pub fn findex_dindex(&self) -> u8 {
        match self {
            ProtocolParams::T0 { findex_dindex, .. } | ProtocolParams::T1 { findex_dindex, .. } => {
                *findex_dindex
            }
        }
    }

    /// The abProtocolDataStructure bytes (5 for T=0, 7 for T=1).
    pub fn to_bytes(&self) -> Vec<u8> {
        match *self {
            ProtocolParams::T0 {
                findex_dindex,
                tcckst,
                guard_time,
                waiting_integer,
                clock_stop,
            } => vec![
                findex_dindex,
                tcckst,
                guard_time,
                waiting_integer,
                clock_stop,
            ],
            ProtocolParams::T1 {
                findex_dindex,
                tcckst,
                guard_time,
                bwi_cwi,
                clock_stop,
                ifsc,
                nad,
            } => vec![
                findex_dindex,
                tcckst,
                guard_time,
                bwi_cwi,
                clock_stop,
                ifsc,
                nad,
            ],
        }
    }

    /// Read an abProtocolDataStructure for `protocol_num` (0 or 1) from its first 5 or 7
    /// bytes. `None` for another protocol number or too few bytes.
    pub fn from_bytes(protocol_num: u8, data: &[u8]) -> Option<Self> {
        match (protocol_num, data) {
            (
                0,
                [
                    findex_dindex,
                    tcckst,
                    guard_time,
                    waiting_integer,
                    clock_stop,
                    ..,
                ],
            ) => Some(ProtocolParams::T0 {
                findex_dindex: *findex_dindex,
                tcckst: *tcckst,
                guard_time: *guard_time,
                waiting_integer: *waiting_integer,
                clock_stop: *clock_stop,
            }),
            (
                1,
                [
                    findex_dindex,
                    tcckst,
                    guard_time,
                    bwi_cwi,
                    clock_stop,
                    ifsc,
                    nad,
                    ..,
                ],
            ) => Some(ProtocolParams::T1 {
                findex_dindex: *findex_dindex,
                tcckst: *tcckst,
                guard_time: *guard_time,
                bwi_cwi: *bwi_cwi,
                clock_stop: *clock_stop,
                ifsc: *ifsc,
                nad: *nad,
            }),
            _ => None,
        }
    }

    fn len_for(protocol_num: u8) -> Option<usize> {
        match protocol_num {
            0 => Some(5),
            1 => Some(7),
            _ => None,
        }
    }
}

/// A PC_to_RDR message (bulk OUT): the header fields every command has, and the rest.
///
/// The reply carries `slot` and `seq` back ([`Request::match_reply`]).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Request {
    /// bSlot (offset 5).
    pub slot: u8,
    /// bSeq (offset 6).
    pub seq: u8,
    /// The message type and its own fields.
    pub body: RequestBody,
}

/// What a PC_to_RDR message carries beyond bSlot and bSeq: its type (bMessageType), the
/// three message-specific header bytes (offsets 7 to 9) and abData.
///
/// RFU bytes are sent as 0 and ignored when decoded.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum RequestBody {
    /// 0x62: power the card on (cold reset, or warm if already powered); the reply is a
    /// DataBlock with the ATR.
    IccPowerOn {
        /// bPowerSelect (offset 7).
        power: PowerSelect,
    },
    /// 0x63: power the card off; the reply is a SlotStatus.
    IccPowerOff,
    /// 0x65: ask the slot's status; the reply is a SlotStatus.
    GetSlotStatus,
    /// 0x6F: send data to the card (a TPDU, an APDU or a part of one, as the exchange
    /// level says); the reply is a DataBlock.
    XfrBlock {
        /// bBWI (offset 7): extends the block waiting time (T=1, TPDU level).
        bwi: u8,
        /// wLevelParameter (offsets 8-9): at TPDU level with T=0 the expected response
        /// length; at extended APDU level the chaining ([`CHAIN_BEGIN_AND_END`], ...).
        level: u16,
        /// abData.
        data: Vec<u8>,
    },
    /// 0x6C: ask the current protocol parameters; the reply is a Parameters.
    GetParameters,
    /// 0x6D: back to the default parameters; the reply is a Parameters.
    ResetParameters,
    /// 0x61: set the protocol and its parameters; the reply is a Parameters.
    SetParameters {
        /// bProtocolNum (offset 7) and abProtocolDataStructure.
        params: ProtocolParams,
    },
    /// 0x6B: vendor command to the reader; the reply is an Escape.
    Escape {
        /// abData.
        data: Vec<u8>,
    },
    /// 0x6E: stop or restart the card clock; the reply is a SlotStatus.
    IccClock {
        /// bClockCommand (offset 7): [`ICC_CLOCK_RESTART`] or [`ICC_CLOCK_STOP`].
        command: u8,
    },
    /// 0x6A: change the classes of GET RESPONSE / ENVELOPE the reader uses at APDU level
    /// with T=0; the reply is a SlotStatus.
    T0Apdu {
        /// bmChanges (offset 7): bit 0 use `class_get_response`, bit 1 use
        /// `class_envelope`.
        changes: u8,
        /// bClassGetResponse (offset 8).
        class_get_response: u8,
        /// bClassEnvelope (offset 9).
        class_envelope: u8,
    },
    /// 0x69: PIN verification or modification on the reader's PIN pad; the reply is a
    /// DataBlock.
    Secure {
        /// bBWI (offset 7).
        bwi: u8,
        /// wLevelParameter (offsets 8-9).
        level: u16,
        /// abData: the PIN operation structure, unparsed.
        data: Vec<u8>,
    },
    /// 0x71: card mechanics (accept, eject, capture, lock, unlock); the reply is a
    /// SlotStatus.
    Mechanical {
        /// bFunction (offset 7): [`MECHANICAL_ACCEPT`], ...
        function: u8,
    },
    /// 0x72: the second half of the abort sequence (after the class request ABORT with
    /// the same slot and seq); the reply is a SlotStatus.
    Abort,
    /// 0x73: set the card clock and data rate; the reply is a DataRateAndClockFrequency.
    SetDataRateAndClock {
        /// dwClockFrequency: card clock in kHz (the spec's unit).
        clock_khz: u32,
        /// dwDataRate: card data rate in bits per second.
        rate_bps: u32,
    },
    /// Any other message type, kept raw (decoding only produces it for types not above;
    /// encoding sends whatever it holds).
    Other {
        /// bMessageType.
        message_type: u8,
        /// The three message-specific header bytes.
        specific: [u8; 3],
        /// abData.
        data: Vec<u8>,
    },
}

impl RequestBody {
    /// bMessageType and the variant's name (for `Debug`).
    fn type_and_name(&self) -> (u8, &'static str) {
        match self {
            RequestBody::IccPowerOn { .. } => (PC_TO_RDR_ICC_POWER_ON, "IccPowerOn"),
            RequestBody::IccPowerOff => (PC_TO_RDR_ICC_POWER_OFF, "IccPowerOff"),
            RequestBody::GetSlotStatus => (PC_TO_RDR_GET_SLOT_STATUS, "GetSlotStatus"),
            RequestBody::XfrBlock { .. } => (PC_TO_RDR_XFR_BLOCK, "XfrBlock"),
            RequestBody::GetParameters => (PC_TO_RDR_GET_PARAMETERS, "GetParameters"),
            RequestBody::ResetParameters => (PC_TO_RDR_RESET_PARAMETERS, "ResetParameters"),
            RequestBody::SetParameters { .. } => (PC_TO_RDR_SET_PARAMETERS, "SetParameters"),
            RequestBody::Escape { .. } => (PC_TO_RDR_ESCAPE, "Escape"),
            RequestBody::IccClock { .. } => (PC_TO_RDR_ICC_CLOCK, "IccClock"),
            RequestBody::T0Apdu { .. } => (PC_TO_RDR_T0_APDU, "T0Apdu"),
            RequestBody::Secure { .. } => (PC_TO_RDR_SECURE, "Secure"),
            RequestBody::Mechanical { .. } => (PC_TO_RDR_MECHANICAL, "Mechanical"),
            RequestBody::Abort => (PC_TO_RDR_ABORT, "Abort"),
            RequestBody::SetDataRateAndClock { .. } => {
                (PC_TO_RDR_SET_DATA_RATE_AND_CLOCK, "SetDataRateAndClock")
            }
            RequestBody::Other { message_type, .. } => (*message_type, "Other"),
        }
    }

    /// bMessageType.
    pub fn message_type(&self) -> u8 {
        self.type_and_name().0
    }

    /// The three message-specific header bytes and abData.
    fn to_parts(&self) -> ([u8; 3], Cow<'_, [u8]>) {
        let none = Cow::Borrowed(&[][..]);
        match self {
            RequestBody::IccPowerOn { power } => ([power.code(), 0, 0], none),
            RequestBody::IccPowerOff
            | RequestBody::GetSlotStatus
            | RequestBody::GetParameters
            | RequestBody::ResetParameters
            | RequestBody::Abort => ([0; 3], none),
            RequestBody::XfrBlock { bwi, level, data }
            | RequestBody::Secure { bwi, level, data } => {
                let [l0, l1] = level.to_le_bytes();
                ([*bwi, l0, l1], Cow::Borrowed(data))
            }
            RequestBody::SetParameters { params } => {
                ([params.protocol_num(), 0, 0], Cow::Owned(params.to_bytes()))
            }
            RequestBody::Escape { data } => ([0; 3], Cow::Borrowed(data)),
            RequestBody::IccClock { command } => ([*command, 0, 0], none),
            RequestBody::T0Apdu {
                changes,
                class_get_response,
                class_envelope,
            } => ([*changes, *class_get_response, *class_envelope], none),
            RequestBody::Mechanical { function } => ([*function, 0, 0], none),
            RequestBody::SetDataRateAndClock {
                clock_khz,
                rate_bps,
            } => ([0; 3], Cow::Owned(clock_and_rate(*clock_khz, *rate_bps))),
            RequestBody::Other { specific, data, .. } => (*specific, Cow::Borrowed(data)),
        }
    }

    /// The body of a command from its header and abData (see [`Request::decode`]).
    fn from_parts(h: &Header, data: &[u8], name: &'static str) -> Result<Self, CodecError> {
        let [s0, s1, s2] = h.specific;
        // Commands that take no abData.
        let empty = |body| expect_len(name, h, 0, "0").map(|()| body);
        Ok(match h.message_type {
            PC_TO_RDR_ICC_POWER_ON => {
                expect_len(name, h, 0, "0")?;
                let power = PowerSelect::from_code(s0).ok_or(CodecError::BadField {
                    message: name,
                    field: "bPowerSelect",
                    offset: 7,
                    value: s0,
                    reason: "must be 0 (automatic), 1 (5 V), 2 (3 V) or 3 (1.8 V)",
                })?;
                RequestBody::IccPowerOn { power }
            }
            PC_TO_RDR_ICC_POWER_OFF => empty(RequestBody::IccPowerOff)?,
            PC_TO_RDR_GET_SLOT_STATUS => empty(RequestBody::GetSlotStatus)?,
            PC_TO_RDR_XFR_BLOCK => RequestBody::XfrBlock {
                bwi: s0,
                level: u16::from_le_bytes([s1, s2]),
                data: data.to_vec(),
            },
            PC_TO_RDR_GET_PARAMETERS => empty(RequestBody::GetParameters)?,
            PC_TO_RDR_RESET_PARAMETERS => empty(RequestBody::ResetParameters)?,
            PC_TO_RDR_SET_PARAMETERS => {
                let want = ProtocolParams::len_for(s0).ok_or(CodecError::BadField {
                    message: name,
                    field: "bProtocolNum",
                    offset: 7,
                    value: s0,
                    reason: "must be 0 (T=0) or 1 (T=1)",
                })?;
                if data.len() != want {
                    return Err(CodecError::BadLength {
                        message: name,
                        length: h.length,
                        expected: if s0 == 0 { "5 for T=0" } else { "7 for T=1" },
                    });
                }
                let params = ProtocolParams::from_bytes(s0, data).ok_or(CodecError::BadLength {
                    message: name,
                    length: h.length,
                    expected: "5 for T=0, 7 for T=1",
                })?;
                RequestBody::SetParameters { params }
            }
            PC_TO_RDR_ESCAPE => RequestBody::Escape {
                data: data.to_vec(),
            },
            PC_TO_RDR_ICC_CLOCK => empty(RequestBody::IccClock { command: s0 })?,
            PC_TO_RDR_T0_APDU => empty(RequestBody::T0Apdu {
                changes: s0,
                class_get_response: s1,
                class_envelope: s2,
            })?,
            PC_TO_RDR_SECURE => RequestBody::Secure {
                bwi: s0,
                level: u16::from_le_bytes([s1, s2]),
                data: data.to_vec(),
            },
            PC_TO_RDR_MECHANICAL => empty(RequestBody::Mechanical { function: s0 })?,
            PC_TO_RDR_ABORT => empty(RequestBody::Abort)?,
            PC_TO_RDR_SET_DATA_RATE_AND_CLOCK => {
                expect_len(name, h, 8, "8")?;
                RequestBody::SetDataRateAndClock {
                    clock_khz: le32_at(data, 0),
                    rate_bps: le32_at(data, 4),
                }
            }
            message_type => RequestBody::Other {
                message_type,
                specific: h.specific,
                data: data.to_vec(),
            },
        })
    }

    /// The fields after bSlot and bSeq, for `Debug` (payloads by length only).
    fn debug_fields(&self, d: &mut fmt::DebugStruct<'_, '_>) {
        match self {
            RequestBody::IccPowerOn { power } => {
                d.field("power", power);
            }
            RequestBody::XfrBlock { bwi, level, data }
            | RequestBody::Secure { bwi, level, data } => {
                d.field("bwi", bwi)
                    .field("level", &format_args!("{level:#06x}"))
                    .field("data", &Redacted(data.len()));
            }
            RequestBody::SetParameters { params } => {
                d.field("params", params);
            }
            RequestBody::Escape { data } => {
                d.field("data", &Redacted(data.len()));
            }
            RequestBody::IccClock { command } => {
                d.field("command", command);
            }
            RequestBody::T0Apdu {
                changes,
                class_get_response,
                class_envelope,
            } => {
                d.field("changes", changes)
                    .field("class_get_response", class_get_response)
                    .field("class_envelope", class_envelope);
            }
            RequestBody::Mechanical { function } => {
                d.field("function", function);
            }
            RequestBody::SetDataRateAndClock {
                clock_khz,
                rate_bps,
            } => {
                d.field("clock_khz", clock_khz).field("rate_bps", rate_bps);
            }
            RequestBody::Other { specific, data, .. } => {
                d.field("specific", specific)
                    .field("data", &Redacted(data.len()));
            }
            RequestBody::IccPowerOff
            | RequestBody::GetSlotStatus
            | RequestBody::GetParameters
            | RequestBody::ResetParameters
            | RequestBody::Abort => {}
        }
    }

    /// `Debug` of the body, with bSlot and bSeq when it is a whole request.
    fn fmt_with(&self, f: &mut fmt::Formatter<'_>, slot_seq: Option<(u8, u8)>) -> fmt::Result {
        let (message_type, name) = self.type_and_name();
        let mut d = f.debug_struct(name);
        if let RequestBody::Other { .. } = self {
            d.field("message_type", &format_args!("{message_type:#04x}"));
        }
        if let Some((slot, seq)) = slot_seq {
            d.field("slot", &slot).field("seq", &seq);
        }
        self.debug_fields(&mut d);
        d.finish()
    }
}

impl Request {
    /// bMessageType.
    pub fn message_type(&self) -> u8 {
        self.body.message_type()
    }

    /// The bMessageType of the reply this command gets ([`response_type_for`]).
    pub fn response_type(&self) -> u8 {
        response_type_for(self.message_type())
    }

    /// The message bytes: header then abData.
    pub fn encode(&self) -> Vec<u8> {
        let (specific, data) = self.body.to_parts();
        build(self.message_type(), self.slot, self.seq, specific, &data)
    }

    /// Decode one PC_to_RDR message (what the virtual reader does with a bulk OUT
    /// transfer).
    ///
    /// Exactly one message: bytes after 10 + dwLength are an error. Message types this
    /// codec does not model become [`RequestBody::Other`]. Commands that take no abData
    /// must have dwLength 0; SetParameters 5 (T=0) or 7 (T=1); SetDataRateAndClock 8.
    ///
    /// Errors: [`CodecError`] naming the field and offset;
    /// [`CodecError::slot_error`] turns it into the bError a reader answers with.
    pub fn decode(bytes: &[u8]) -> Result<Request, CodecError> {
        let (h, data, name) = split(bytes, true)?;
        Ok(Request {
            slot: h.slot,
            seq: h.seq,
            body: RequestBody::from_parts(&h, data, name)?,
        })
    }

    /// How `response` relates to this command: its reply, a reply to something else
    /// (a stale reply to an earlier, timed-out command: drop it and read on), or a reply
    /// with this command's slot and seq but the wrong message type.
    pub fn match_reply(&self, response: &Response) -> ReplyMatch {
        if response.slot != self.slot || response.seq != self.seq {
            ReplyMatch::Stale
        } else if response.message_type() != self.response_type() {
            ReplyMatch::WrongType
        } else {
            ReplyMatch::Reply
        }
    }

    /// The abData bytes, for the messages that carry some (empty otherwise; SetParameters
    /// and SetDataRateAndClock give their encoded structure).
    pub fn payload(&self) -> Vec<u8> {
        self.body.to_parts().1.into_owned()
    }
}

/// How a reply relates to a command ([`Request::match_reply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyMatch {
    /// Same bSlot and bSeq, and the message type that answers this command.
    Reply,
    /// Another bSlot or bSeq: a late reply to an earlier command. Drop it and keep reading.
    Stale,
    /// Same bSlot and bSeq but another message type (e.g. a SlotStatus refusing an
    /// unknown command). Its status and error still apply to the command.
    WrongType,
}

/// Shows the length of a payload, never its bytes.
struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.body.fmt_with(f, Some((self.slot, self.seq)))
    }
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_with(f, None)
    }
}

/// bmICCStatus (bStatus bits 0-1): the card in the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IccStatus {
    /// 0: a card is present and active (powered).
    PresentActive,
    /// 1: a card is present and inactive (not powered).
    PresentInactive,
    /// 2: no card.
    Absent,
    /// 3: reserved (RFU).
    Reserved,
}

impl IccStatus {
    /// The 2-bit value.
    pub fn code(self) -> u8 {
        match self {
            IccStatus::PresentActive => 0,
            IccStatus::PresentInactive => 1,
            IccStatus::Absent => 2,
            IccStatus::Reserved => 3,
        }
    }

    /// The status of a 2-bit value (higher bits are ignored).
    pub fn from_code(code: u8) -> Self {
        match code & 0x03 {
            0 => IccStatus::PresentActive,
            1 => IccStatus::PresentInactive,
            2 => IccStatus::Absent,
            _ => IccStatus::Reserved,
        }
    }

    /// True when a card is in the slot (active or not).
    pub(crate) fn is_present(self) -> bool {
        matches!(self, IccStatus::PresentActive | IccStatus::PresentInactive)
    }

    /// A phrase for people: "card present and active", ...
    pub fn describe(self) -> &'static str {
        match self {
            IccStatus::PresentActive => "card present and active",
            IccStatus::PresentInactive => "card present and inactive",
            IccStatus::Absent => "no card",
            IccStatus::Reserved => "reserved card status 3",
        }
    }
}

/// bmCommandStatus (bStatus bits 6-7): how the command went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandStatus {
    /// 0: processed without error.
    Processed,
    /// 1: failed; bError says why ([`SlotError`]).
    Failed,
    /// 2: time extension requested: the reader is still working; bError is the multiplier
    /// of the waiting time it asks for. The real reply follows with the same bSeq.
    TimeExtension,
    /// 3: reserved (RFU).
    Reserved,
}

impl CommandStatus {
    /// The 2-bit value.
    pub fn code(self) -> u8 {
        match self {
            CommandStatus::Processed => 0,
            CommandStatus::Failed => 1,
            CommandStatus::TimeExtension => 2,
            CommandStatus::Reserved => 3,
        }
    }

    /// The status of a 2-bit value (higher bits are ignored).
    pub fn from_code(code: u8) -> Self {
        match code & 0x03 {
            0 => CommandStatus::Processed,
            1 => CommandStatus::Failed,
            2 => CommandStatus::TimeExtension,
            _ => CommandStatus::Reserved,
        }
    }

    /// A phrase for people.
    pub fn describe(self) -> &'static str {
        match self {
            CommandStatus::Processed => "command processed",
            CommandStatus::Failed => "command failed",
            CommandStatus::TimeExtension => "time extension requested",
            CommandStatus::Reserved => "reserved command status 3",
        }
    }
}

/// bStatus of an RDR_to_PC message: bmICCStatus in bits 0-1, bmCommandStatus in bits 6-7
/// (bits 2-5 are RFU and kept as read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SlotStatusByte(pub u8);

impl SlotStatusByte {
    /// The byte for a card state and a command outcome (RFU bits 0).
    pub fn new(icc: IccStatus, command: CommandStatus) -> Self {
        SlotStatusByte(command.code() << 6 | icc.code())
    }

    /// Command processed, with this card state.
    pub fn ok(icc: IccStatus) -> Self {
        Self::new(icc, CommandStatus::Processed)
    }

    /// Command failed, with this card state (put the reason in bError).
    pub fn failed(icc: IccStatus) -> Self {
        Self::new(icc, CommandStatus::Failed)
    }

    /// Time extension requested, with this card state (put the multiplier in bError).
    pub fn time_extension(icc: IccStatus) -> Self {
        Self::new(icc, CommandStatus::TimeExtension)
    }

    /// bmICCStatus.
    pub fn icc(self) -> IccStatus {
        IccStatus::from_code(self.0)
    }

    /// bmCommandStatus.
    pub fn command(self) -> CommandStatus {
        CommandStatus::from_code(self.0 >> 6)
    }

    /// True when a card is in the slot.
    pub fn card_present(self) -> bool {
        self.icc().is_present()
    }
}

impl fmt::Display for SlotStatusByte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:#04x} ({}, {})",
            self.0,
            self.icc().describe(),
            self.command().describe()
        )
    }
}

/// bError of a failed command (CCID rev 1.1, table 6.2-2), with the spec's names.
///
/// Only meaningful when bmCommandStatus is [`CommandStatus::Failed`]: with a time
/// extension bError is a multiplier, and after a processed command some readers leave
/// junk in it (e.g. 0x81 in an ACR122U SlotStatus, LudovicRousseau/pyscard issue #18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotError {
    /// 0xFF CMD_ABORTED: the host aborted the command.
    CmdAborted,
    /// 0xFE ICC_MUTE: the card did not answer in time (or there is no card).
    IccMute,
    /// 0xFD XFR_PARITY_ERROR: parity error talking to the card.
    XfrParityError,
    /// 0xFC XFR_OVERRUN: overrun talking to the card.
    XfrOverrun,
    /// 0xFB HW_ERROR: hardware error in the reader.
    HwError,
    /// 0xF8 BAD_ATR_TS: the ATR's TS byte is invalid.
    BadAtrTs,
    /// 0xF7 BAD_ATR_TCK: the ATR's check byte is wrong.
    BadAtrTck,
    /// 0xF6 ICC_PROTOCOL_NOT_SUPPORTED: the card's protocol is not supported.
    IccProtocolNotSupported,
    /// 0xF5 ICC_CLASS_NOT_SUPPORTED: the card's voltage class is not supported.
    IccClassNotSupported,
    /// 0xF4 PROCEDURE_BYTE_CONFLICT: T=0 procedure byte conflict.
    ProcedureByteConflict,
    /// 0xF3 DEACTIVATED_PROTOCOL: the protocol is deactivated.
    DeactivatedProtocol,
    /// 0xF2 BUSY_WITH_AUTO_SEQUENCE: the reader is running its automatic sequence (e.g.
    /// activating a just-inserted card).
    BusyWithAutoSequence,
    /// 0xF0 PIN_TIMEOUT: PIN entry timed out.
    PinTimeout,
    /// 0xEF PIN_CANCELLED: PIN entry cancelled.
    PinCancelled,
    /// 0xE0 CMD_SLOT_BUSY: the slot is busy with another command.
    CmdSlotBusy,
    /// 0x01..=0x7F: the message field at this offset is not supported or incorrect (e.g.
    /// 5: bSlot does not exist; 7: bPowerSelect or bProtocolNum; 1: dwLength).
    BadParameter(u8),
    /// 0x00: command not supported.
    NotSupported,
    /// Any other value (reserved or vendor-defined).
    Other(u8),
}

impl SlotError {
    /// The error of a bError byte.
    pub fn from_code(code: u8) -> Self {
        match code {
            0xFF => SlotError::CmdAborted,
            0xFE => SlotError::IccMute,
            0xFD => SlotError::XfrParityError,
            0xFC => SlotError::XfrOverrun,
            0xFB => SlotError::HwError,
            0xF8 => SlotError::BadAtrTs,
            0xF7 => SlotError::BadAtrTck,
            0xF6 => SlotError::IccProtocolNotSupported,
            0xF5 => SlotError::IccClassNotSupported,
            0xF4 => SlotError::ProcedureByteConflict,
            0xF3 => SlotError::DeactivatedProtocol,
            0xF2 => SlotError::BusyWithAutoSequence,
            0xF0 => SlotError::PinTimeout,
            0xEF => SlotError::PinCancelled,
            0xE0 => SlotError::CmdSlotBusy,
            0x00 => SlotError::NotSupported,
            0x01..=0x7F => SlotError::BadParameter(code),
            other => SlotError::Other(other),
        }
    }

    /// The bError byte. `from_code(e.code()) == e` for every error made by `from_code`.
    pub fn code(self) -> u8 {
        match self {
            SlotError::CmdAborted => 0xFF,
            SlotError::IccMute => 0xFE,
            SlotError::XfrParityError => 0xFD,
            SlotError::XfrOverrun => 0xFC,
            SlotError::HwError => 0xFB,
            SlotError::BadAtrTs => 0xF8,
            SlotError::BadAtrTck => 0xF7,
            SlotError::IccProtocolNotSupported => 0xF6,
            SlotError::IccClassNotSupported => 0xF5,
            SlotError::ProcedureByteConflict => 0xF4,
            SlotError::DeactivatedProtocol => 0xF3,
            SlotError::BusyWithAutoSequence => 0xF2,
            SlotError::PinTimeout => 0xF0,
            SlotError::PinCancelled => 0xEF,
            SlotError::CmdSlotBusy => 0xE0,
            SlotError::BadParameter(c) | SlotError::Other(c) => c,
            SlotError::NotSupported => 0x00,
        }
    }

    /// The spec's name: `"ICC_MUTE"`, `"CMD_SLOT_BUSY"`, ... (`"BAD_PARAMETER"`,
    /// `"CMD_NOT_SUPPORTED"` and `"UNKNOWN"` for the ranges).
    pub fn name(self) -> &'static str {
        match self {
            SlotError::CmdAborted => "CMD_ABORTED",
            SlotError::IccMute => "ICC_MUTE",
            SlotError::XfrParityError => "XFR_PARITY_ERROR",
            SlotError::XfrOverrun => "XFR_OVERRUN",
            SlotError::HwError => "HW_ERROR",
            SlotError::BadAtrTs => "BAD_ATR_TS",
            SlotError::BadAtrTck => "BAD_ATR_TCK",
            SlotError::IccProtocolNotSupported => "ICC_PROTOCOL_NOT_SUPPORTED",
            SlotError::IccClassNotSupported => "ICC_CLASS_NOT_SUPPORTED",
            SlotError::ProcedureByteConflict => "PROCEDURE_BYTE_CONFLICT",
            SlotError::DeactivatedProtocol => "DEACTIVATED_PROTOCOL",
            SlotError::BusyWithAutoSequence => "BUSY_WITH_AUTO_SEQUENCE",
            SlotError::PinTimeout => "PIN_TIMEOUT",
            SlotError::PinCancelled => "PIN_CANCELLED",
            SlotError::CmdSlotBusy => "CMD_SLOT_BUSY",
            SlotError::BadParameter(_) => "BAD_PARAMETER",
            SlotError::NotSupported => "CMD_NOT_SUPPORTED",
            SlotError::Other(_) => "UNKNOWN",
        }
    }

    /// What it means, in a sentence.
    pub fn description(self) -> String {
        match self {
            SlotError::CmdAborted => "the host aborted the command".into(),
            SlotError::IccMute => "the card did not answer in time (or no card)".into(),
            SlotError::XfrParityError => "parity error while talking to the card".into(),
            SlotError::XfrOverrun => "overrun while talking to the card".into(),
            SlotError::HwError => "hardware error in the reader".into(),
            SlotError::BadAtrTs => "the card's ATR has an invalid TS byte".into(),
            SlotError::BadAtrTck => "the card's ATR has a wrong check byte (TCK)".into(),
            SlotError::IccProtocolNotSupported => {
                "the card's protocol is not supported by the reader".into()
            }
            SlotError::IccClassNotSupported => {
                "the card's voltage class is not supported by the reader".into()
            }
            SlotError::ProcedureByteConflict => "T=0 procedure byte conflict".into(),
            SlotError::DeactivatedProtocol => "the protocol is deactivated".into(),
            SlotError::BusyWithAutoSequence => {
                "the reader is busy with its automatic sequence (e.g. activating the card)".into()
            }
            SlotError::PinTimeout => "PIN entry timed out".into(),
            SlotError::PinCancelled => "PIN entry was cancelled".into(),
            SlotError::CmdSlotBusy => "the slot is busy with another command".into(),
            SlotError::BadParameter(5) => "slot does not exist (bad bSlot at offset 5)".into(),
            SlotError::BadParameter(offset) => {
                format!("the message field at offset {offset} is not supported or incorrect")
            }
            SlotError::NotSupported => "command not supported by the reader".into(),
            SlotError::Other(code) => format!("reserved or vendor-specific error 0x{code:02X}"),
        }
    }

    /// A suggested fault kind, for the error alone. The driver knows better: look at
    /// bmICCStatus first (ICC_MUTE with no card means the card is absent or was removed;
    /// see [`Response::fault_kind`]).
    pub fn fault_kind(self) -> FaultKind {
        match self {
            SlotError::IccMute => FaultKind::CardMute,
            SlotError::BadAtrTs
            | SlotError::BadAtrTck
            | SlotError::IccProtocolNotSupported
            | SlotError::IccClassNotSupported => FaultKind::CardUnsupported,
            SlotError::HwError => FaultKind::Unrecoverable,
            SlotError::CmdSlotBusy | SlotError::BusyWithAutoSequence => FaultKind::Busy,
            SlotError::PinTimeout => FaultKind::Timeout,
            SlotError::PinCancelled | SlotError::BadParameter(5) => FaultKind::InvalidInput,
            SlotError::CmdAborted => FaultKind::Io,
            SlotError::XfrParityError
            | SlotError::XfrOverrun
            | SlotError::ProcedureByteConflict
            | SlotError::DeactivatedProtocol
            | SlotError::BadParameter(_)
            | SlotError::NotSupported
            | SlotError::Other(_) => FaultKind::Protocol,
        }
    }
}

impl fmt::Display for SlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (0x{:02X}): {}",
            self.name(),
            self.code(),
            self.description()
        )
    }
}

impl std::error::Error for SlotError {}

impl Fault for SlotError {
    fn kind(&self) -> FaultKind {
        self.fault_kind()
    }
}

/// An RDR_to_PC message (bulk IN): the header fields every reply has, and the rest.
///
/// `error` is bError, raw: see [`SlotError::from_code`] and [`Response::slot_error`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Response {
    /// bSlot (offset 5).
    pub slot: u8,
    /// bSeq (offset 6).
    pub seq: u8,
    /// bStatus (offset 7).
    pub status: SlotStatusByte,
    /// bError (offset 8).
    pub error: u8,
    /// The message type and its own fields.
    pub body: ResponseBody,
}

/// What an RDR_to_PC message carries beyond bSlot, bSeq, bStatus and bError: its type
/// (bMessageType), the one message-specific header byte (offset 9) and abData.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum ResponseBody {
    /// 0x80: answers IccPowerOn (the ATR), XfrBlock and Secure.
    DataBlock {
        /// bChainParameter (offset 9): at extended APDU level, [`CHAIN_BEGIN_AND_END`]
        /// (as u8), ... ; [`CHAIN_EMPTY_MORE`] asks the host for an empty XfrBlock to get
        /// the rest.
        chain: u8,
        /// abData.
        data: Vec<u8>,
    },
    /// 0x81: answers IccPowerOff, GetSlotStatus, IccClock, T0APDU, Mechanical, Abort (and
    /// commands the reader does not know).
    SlotStatus {
        /// bClockStatus (offset 9): [`CLOCK_RUNNING`], ...
        clock_status: u8,
    },
    /// 0x82: answers GetParameters, ResetParameters, SetParameters.
    Parameters {
        /// bProtocolNum (offset 9) and abProtocolDataStructure; `None` when the reply
        /// carries none (dwLength 0, typical of a failed command) or a protocol other
        /// than T=0/T=1.
        params: Option<ProtocolParams>,
    },
    /// 0x83: answers Escape.
    Escape {
        /// abData.
        data: Vec<u8>,
    },
    /// 0x84: answers SetDataRateAndClockFrequency with the values in force.
    DataRateAndClock {
        /// dwClockFrequency: card clock in kHz (the spec's unit).
        clock_khz: u32,
        /// dwDataRate: data rate in bits per second.
        rate_bps: u32,
    },
}

impl ResponseBody {
    /// bMessageType and the variant's name (for `Debug`).
    fn type_and_name(&self) -> (u8, &'static str) {
        match self {
            ResponseBody::DataBlock { .. } => (RDR_TO_PC_DATA_BLOCK, "DataBlock"),
            ResponseBody::SlotStatus { .. } => (RDR_TO_PC_SLOT_STATUS, "SlotStatus"),
            ResponseBody::Parameters { .. } => (RDR_TO_PC_PARAMETERS, "Parameters"),
            ResponseBody::Escape { .. } => (RDR_TO_PC_ESCAPE, "Escape"),
            ResponseBody::DataRateAndClock { .. } => {
                (RDR_TO_PC_DATA_RATE_AND_CLOCK, "DataRateAndClock")
            }
        }
    }

    /// bMessageType.
    pub fn message_type(&self) -> u8 {
        self.type_and_name().0
    }

    /// The message-specific header byte (offset 9) and abData.
    fn to_parts(&self) -> (u8, Cow<'_, [u8]>) {
        match self {
            ResponseBody::DataBlock { chain, data } => (*chain, Cow::Borrowed(data)),
            ResponseBody::SlotStatus { clock_status } => (*clock_status, Cow::Borrowed(&[][..])),
            ResponseBody::Parameters { params: Some(p) } => {
                (p.protocol_num(), Cow::Owned(p.to_bytes()))
            }
            ResponseBody::Parameters { params: None } => (0, Cow::Borrowed(&[][..])),
            ResponseBody::Escape { data } => (0, Cow::Borrowed(data)),
            ResponseBody::DataRateAndClock {
                clock_khz,
                rate_bps,
            } => (0, Cow::Owned(clock_and_rate(*clock_khz, *rate_bps))),
        }
    }

    /// The body of a reply from its header and abData (see [`Response::decode`]).
    fn from_parts(h: &Header, data: &[u8], name: &'static str) -> Result<Self, CodecError> {
        let s2 = h.specific[2];
        Ok(match h.message_type {
            RDR_TO_PC_DATA_BLOCK => ResponseBody::DataBlock {
                chain: s2,
                data: data.to_vec(),
            },
            RDR_TO_PC_SLOT_STATUS => ResponseBody::SlotStatus { clock_status: s2 },
            RDR_TO_PC_PARAMETERS => {
                let params = match (ProtocolParams::len_for(s2), data.len()) {
                    (_, 0) | (None, _) => None,
                    (Some(want), got) if got < want => {
                        return Err(CodecError::BadLength {
                            message: name,
                            length: h.length,
                            expected: if s2 == 0 {
                                "5 for T=0 (bProtocolNum 0 at offset 9)"
                            } else {
                                "7 for T=1 (bProtocolNum 1 at offset 9)"
                            },
                        });
                    }
                    (Some(_), _) => ProtocolParams::from_bytes(s2, data),
                };
                ResponseBody::Parameters { params }
            }
            RDR_TO_PC_ESCAPE => ResponseBody::Escape {
                data: data.to_vec(),
            },
            RDR_TO_PC_DATA_RATE_AND_CLOCK => {
                if !data.is_empty() && data.len() < 8 {
                    return Err(CodecError::BadLength {
                        message: name,
                        length: h.length,
                        expected: "8 (dwClockFrequency, dwDataRate) or 0",
                    });
                }
                ResponseBody::DataRateAndClock {
                    clock_khz: le32_at(data, 0),
                    rate_bps: le32_at(data, 4),
                }
            }
            message_type => {
                return Err(CodecError::UnknownMessageType {
                    direction: "bulk-in",
                    message_type,
                });
            }
        })
    }

    /// The fields after bError, for `Debug` (payloads by length only).
    fn debug_fields(&self, d: &mut fmt::DebugStruct<'_, '_>) {
        match self {
            ResponseBody::DataBlock { chain, data } => {
                d.field("chain", chain).field("data", &Redacted(data.len()));
            }
            ResponseBody::SlotStatus { clock_status } => {
                d.field("clock_status", clock_status);
            }
            ResponseBody::Parameters { params } => {
                d.field("params", params);
            }
            ResponseBody::Escape { data } => {
                d.field("data", &Redacted(data.len()));
            }
            ResponseBody::DataRateAndClock {
                clock_khz,
                rate_bps,
            } => {
                d.field("clock_khz", clock_khz).field("rate_bps", rate_bps);
            }
        }
    }
}

impl Response {
    /// bMessageType.
    pub fn message_type(&self) -> u8 {
        self.body.message_type()
    }

    /// The reader's error, when the command failed (bmCommandStatus 1); `None` otherwise
    /// (bError then means nothing, or is a time extension multiplier).
    pub fn slot_error(&self) -> Option<SlotError> {
        (self.status.command() == CommandStatus::Failed).then(|| SlotError::from_code(self.error))
    }

    /// True for a time extension request (bmCommandStatus 2): not the reply yet; keep
    /// reading for the same bSeq with a longer deadline.
    pub fn is_time_extension(&self) -> bool {
        self.status.command() == CommandStatus::TimeExtension
    }

    /// The waiting-time multiplier of a time extension request (bError), or `None` when
    /// this is not one. A reader sending 0 means "extend" too: treat it as 1.
    pub fn time_extension_multiplier(&self) -> Option<u8> {
        self.is_time_extension().then_some(self.error)
    }

    /// The fault a failed reply amounts to, or `None` when the command did not fail.
    ///
    /// The card state comes first: a failure with no card is [`FaultKind::CardAbsent`]
    /// (QEMU answers IccPowerOn without a card with ICC_MUTE and "no ICC"); otherwise
    /// [`SlotError::fault_kind`].
    pub fn fault_kind(&self) -> Option<FaultKind> {
        let e = self.slot_error()?;
        Some(if self.status.icc() == IccStatus::Absent {
            FaultKind::CardAbsent
        } else {
            e.fault_kind()
        })
    }

    /// abData of a DataBlock or Escape (empty for the others).
    pub fn payload(&self) -> &[u8] {
        match &self.body {
            ResponseBody::DataBlock { data, .. } | ResponseBody::Escape { data } => data,
            _ => &[],
        }
    }

    /// The message bytes (what the virtual reader sends on bulk IN).
    pub fn encode(&self) -> Vec<u8> {
        let (specific, data) = self.body.to_parts();
        let header = [self.status.0, self.error, specific];
        build(self.message_type(), self.slot, self.seq, header, &data)
    }

    /// Decode one RDR_to_PC message (what the driver does with a bulk IN message).
    ///
    /// Tolerant where readers are known to be sloppy: bytes after 10 + dwLength are
    /// ignored; abData in a SlotStatus is ignored; a Parameters reply without data, or for
    /// a protocol other than T=0/T=1, has `params: None`; a DataRateAndClockFrequency
    /// reply without data reads as 0 kHz / 0 bps.
    ///
    /// Errors: [`CodecError::Truncated`] (header or abData incomplete),
    /// [`CodecError::UnknownMessageType`], [`CodecError::BadLength`] (Parameters too
    /// short for its protocol, DataRateAndClockFrequency with 1 to 7 bytes).
    pub fn decode(bytes: &[u8]) -> Result<Response, CodecError> {
        let (h, data, name) = split(bytes, false)?;
        let [status, error, _] = h.specific;
        Ok(Response {
            slot: h.slot,
            seq: h.seq,
            status: SlotStatusByte(status),
            error,
            body: ResponseBody::from_parts(&h, data, name)?,
        })
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct(self.body.type_and_name().1);
        d.field("slot", &self.slot)
            .field("seq", &self.seq)
            .field("status", &format_args!("{}", self.status))
            .field("error", &format_args!("{:#04x}", self.error));
        self.body.debug_fields(&mut d);
        d.finish()
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct(self.type_and_name().1);
        self.debug_fields(&mut d);
        d.finish()
    }
}

/// One slot's entry in a NotifySlotChange bitmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotChange {
    /// The slot number.
    pub slot: u8,
    /// Bit 2n: a card is present now.
    pub present: bool,
    /// Bit 2n+1: the state changed since the last NotifySlotChange (a card may have come
    /// and gone: treat a change as a removal even when `present`).
    pub changed: bool,
}

impl SlotChange {
    /// Changed and present: a card was inserted.
    pub fn inserted(&self) -> bool {
        self.changed && self.present
    }

    /// Changed and absent: the card was removed.
    pub fn removed(&self) -> bool {
        self.changed && !self.present
    }
}

/// An interrupt IN message (CCID rev 1.1, 6.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Notification {
    /// 0x50 NotifySlotChange: every slot's presence and change bits, slot 0 first.
    SlotChange(Vec<SlotChange>),
    /// 0x51 HardwareError.
    HardwareError {
        /// bSlot.
        slot: u8,
        /// bSeq of the command running when it happened.
        seq: u8,
        /// bHardwareErrorCode: [`HARDWARE_ERROR_OVERCURRENT`], ...
        code: u8,
    },
}

impl Notification {
    /// Decode an interrupt transfer.
    ///
    /// NotifySlotChange: 0x50 then bmSlotICCState, two bits per slot (bit 2n present,
    /// bit 2n+1 changed), as many bytes as `slot_count` needs (`(slot_count + 3) / 4`).
    /// The result lists `slot_count` slots; with `slot_count` 0 every slot the bytes
    /// carry (4 per byte). HardwareError: 0x51, bSlot, bSeq, bHardwareErrorCode. Bytes
    /// beyond those are ignored.
    ///
    /// Errors: [`CodecError::Truncated`], [`CodecError::UnknownMessageType`].
    pub fn decode(bytes: &[u8], slot_count: u8) -> Result<Notification, CodecError> {
        match bytes {
            [RDR_TO_PC_NOTIFY_SLOT_CHANGE, bitmap @ ..] => {
                let slots = if slot_count == 0 {
                    bitmap.len().saturating_mul(4).min(256)
                } else {
                    usize::from(slot_count)
                };
                let needed = slots.div_ceil(4).max(1);
                if bitmap.len() < needed {
                    return Err(CodecError::Truncated {
                        message: "NotifySlotChange bmSlotICCState",
                        needed: 1 + needed,
                        got: bytes.len(),
                    });
                }
                let changes = (0..slots)
                    .map(|i| {
                        let byte = bitmap.get(i / 4).copied().unwrap_or(0);
                        let bits = byte >> ((i % 4) * 2);
                        SlotChange {
                            slot: u8::try_from(i).unwrap_or(u8::MAX),
                            present: bits & 0x01 != 0,
                            changed: bits & 0x02 != 0,
                        }
                    })
                    .collect();
                Ok(Notification::SlotChange(changes))
            }
            [RDR_TO_PC_HARDWARE_ERROR, slot, seq, code, ..] => Ok(Notification::HardwareError {
                slot: *slot,
                seq: *seq,
                code: *code,
            }),
            [RDR_TO_PC_HARDWARE_ERROR, ..] => Err(CodecError::Truncated {
                message: "HardwareError",
                needed: 4,
                got: bytes.len(),
            }),
            [message_type, ..] => Err(CodecError::UnknownMessageType {
                direction: "interrupt",
                message_type: *message_type,
            }),
            [] => Err(CodecError::Truncated {
                message: "interrupt message",
                needed: 1,
                got: 0,
            }),
        }
    }

    /// The message bytes (what the virtual reader sends on interrupt IN).
    ///
    /// NotifySlotChange places each entry at its `slot`'s bits and sends
    /// `(highest slot + 1 + 3) / 4` bitmap bytes (at least one). Slots not listed read as
    /// absent and unchanged.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Notification::SlotChange(changes) => {
                let slots = changes
                    .iter()
                    .map(|c| usize::from(c.slot) + 1)
                    .max()
                    .unwrap_or(1);
                let mut bitmap = vec![0u8; slots.div_ceil(4).max(1)];
                for c in changes {
                    let i = usize::from(c.slot);
                    let bits = u8::from(c.present) | u8::from(c.changed) << 1;
                    if let Some(b) = bitmap.get_mut(i / 4) {
                        *b |= bits << ((i % 4) * 2);
                    }
                }
                let mut v = vec![RDR_TO_PC_NOTIFY_SLOT_CHANGE];
                v.extend_from_slice(&bitmap);
                v
            }
            Notification::HardwareError { slot, seq, code } => {
                vec![RDR_TO_PC_HARDWARE_ERROR, *slot, *seq, *code]
            }
        }
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
