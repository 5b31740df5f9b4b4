//! PC_to_RDR messages: [`Request`] (bSlot, bSeq) and its [`RequestBody`].

use std::borrow::Cow;
use std::fmt;

use super::{
    CodecError, Header, PC_TO_RDR_ABORT, PC_TO_RDR_ESCAPE, PC_TO_RDR_GET_PARAMETERS,
    PC_TO_RDR_GET_SLOT_STATUS, PC_TO_RDR_ICC_CLOCK, PC_TO_RDR_ICC_POWER_OFF,
    PC_TO_RDR_ICC_POWER_ON, PC_TO_RDR_MECHANICAL, PC_TO_RDR_RESET_PARAMETERS, PC_TO_RDR_SECURE,
    PC_TO_RDR_SET_DATA_RATE_AND_CLOCK, PC_TO_RDR_SET_PARAMETERS, PC_TO_RDR_T0_APDU,
    PC_TO_RDR_XFR_BLOCK, PowerSelect, ProtocolParams, Redacted, Response, build, clock_and_rate,
    expect_len, le32_at, response_type_for, split,
};

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
        ///
        /// [`CHAIN_BEGIN_AND_END`]: super::CHAIN_BEGIN_AND_END
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
        ///
        /// [`ICC_CLOCK_RESTART`]: super::ICC_CLOCK_RESTART
        /// [`ICC_CLOCK_STOP`]: super::ICC_CLOCK_STOP
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
        ///
        /// [`MECHANICAL_ACCEPT`]: super::MECHANICAL_ACCEPT
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
