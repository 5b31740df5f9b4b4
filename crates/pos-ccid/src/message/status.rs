//! bStatus ([`SlotStatusByte`]: [`IccStatus`], [`CommandStatus`]) and bError
//! ([`SlotError`]) of RDR_to_PC messages.

use std::fmt;

use pos_hal::{Fault, FaultKind};

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
    ///
    /// [`Response::fault_kind`]: super::Response::fault_kind
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
