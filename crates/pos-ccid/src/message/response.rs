//! RDR_to_PC bulk messages: [`Response`] (bSlot, bSeq, bStatus, bError) and its
//! [`ResponseBody`].

use std::borrow::Cow;
use std::fmt;

use pos_hal::FaultKind;

use super::{
    CodecError, CommandStatus, Header, IccStatus, ProtocolParams, RDR_TO_PC_DATA_BLOCK,
    RDR_TO_PC_DATA_RATE_AND_CLOCK, RDR_TO_PC_ESCAPE, RDR_TO_PC_PARAMETERS, RDR_TO_PC_SLOT_STATUS,
    Redacted, SlotError, SlotStatusByte, build, clock_and_rate, le32_at, split,
};

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
        ///
        /// [`CHAIN_BEGIN_AND_END`]: super::CHAIN_BEGIN_AND_END
        /// [`CHAIN_EMPTY_MORE`]: super::CHAIN_EMPTY_MORE
        chain: u8,
        /// abData.
        data: Vec<u8>,
    },
    /// 0x81: answers IccPowerOff, GetSlotStatus, IccClock, T0APDU, Mechanical, Abort (and
    /// commands the reader does not know).
    SlotStatus {
        /// bClockStatus (offset 9): [`CLOCK_RUNNING`], ...
        ///
        /// [`CLOCK_RUNNING`]: super::CLOCK_RUNNING
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
