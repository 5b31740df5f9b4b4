//! ISO/IEC 7816-4 command and response APDUs, the EMV command builders, and the T=0
//! response handling of the terminal transport layer ([`exchange`]).
//!
//! # Command APDUs (ISO/IEC 7816-4 clause 5.1, ISO/IEC 7816-3 clause 12.1)
//!
//! | case | short form | extended form |
//! |---|---|---|
//! | 1 | `CLA INS P1 P2` | (same) |
//! | 2 | `.. Le` (1 byte, `00` = 256) | `.. 00 Le Le` (`0000` = 65536) |
//! | 3 | `.. Lc data` (Lc 1..=255) | `.. 00 Lc Lc data` (Lc 1..=65535) |
//! | 4 | `.. Lc data Le` | `.. 00 Lc Lc data Le Le` |
//!
//! [`Command::le`] holds Ne, the number of bytes expected (1..=65536), not the encoded
//! byte: `Some(256)` encodes as the short Le `00`.
//!
//! # T=0 at this layer
//!
//! A T=0 card (behind a TPDU-level reader) gets a case 4 command as case 3 and answers
//! `61xx` when it has data; a case 2 command with the wrong Le is answered `6Cxx`.
//! [`exchange`] turns those back into one response APDU, as the EMV terminal transport
//! layer does (EMV Book 1, 9.3.1): `61xx` -> GET RESPONSE with Le = xx, repeated and
//! concatenated (bounded by [`MAX_GET_RESPONSE_ROUNDS`]); `6Cxx` -> the same command again
//! with Le = xx (once per command sent); and the case 4 warning rule (EMV Book 1, 9.3.1.3 and
//! Annex A7): a case 4 command answered `62xx`/`63xx` with no data is followed by GET
//! RESPONSE (Le `00`), and the response given to the application is that data with the
//! *warning* status words. With APDU-level readers none of this triggers and `exchange` is a
//! plain transmit.
//!
//! Logging never shows command or response bodies (they can hold the PAN): only the header,
//! lengths and status words.

use std::fmt;

use pos_hal::{CardChannel, Fault, FaultKind};

/// The most GET RESPONSE commands [`exchange`] sends for one command before it gives up
/// with [`ExchangeError::TooManyGetResponses`] (64 x 256 bytes = 16 KiB, well above any EMV
/// response).
pub const MAX_GET_RESPONSE_ROUNDS: usize = 64;

/// The largest Nc (command data length): extended Lc is two bytes, 1..=65535.
pub const MAX_COMMAND_DATA: usize = 65_535;

/// The largest Ne (expected response length): extended Le `0000` stands for 65536.
pub const MAX_LE: u32 = 65_536;

/// Instruction bytes of the commands EMV uses.
pub mod ins {
    /// SELECT.
    pub const SELECT: u8 = 0xA4;
    /// READ RECORD.
    pub const READ_RECORD: u8 = 0xB2;
    /// GET PROCESSING OPTIONS.
    pub const GET_PROCESSING_OPTIONS: u8 = 0xA8;
    /// GENERATE APPLICATION CRYPTOGRAM.
    pub const GENERATE_AC: u8 = 0xAE;
    /// GET DATA.
    pub const GET_DATA: u8 = 0xCA;
    /// INTERNAL AUTHENTICATE.
    pub const INTERNAL_AUTHENTICATE: u8 = 0x88;
    /// EXTERNAL AUTHENTICATE.
    pub const EXTERNAL_AUTHENTICATE: u8 = 0x82;
    /// GET CHALLENGE.
    pub const GET_CHALLENGE: u8 = 0x84;
    /// GET RESPONSE (T=0).
    pub const GET_RESPONSE: u8 = 0xC0;
}

/// What went wrong building, encoding or decoding an APDU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApduError {
    /// Fewer bytes than the APDU needs (a command needs 4, a response 2).
    #[error("APDU too short: {len} bytes, need at least {min}")]
    TooShort {
        /// Bytes given.
        len: usize,
        /// Bytes needed.
        min: usize,
    },
    /// More command data than an extended Lc can say (65535 bytes).
    #[error("command data of {len} bytes is longer than 65535 (the extended Lc limit)")]
    DataTooLong {
        /// Bytes of command data.
        len: usize,
    },
    /// Ne outside 1..=65536.
    #[error("Le (expected length) {le} is outside 1..=65536")]
    LeOutOfRange {
        /// The Ne asked for.
        le: u32,
    },
    /// The command needs the extended form (Lc > 255 or Ne > 256) and only short was allowed.
    #[error(
        "command needs extended length ({data_len} data bytes, Le {le:?}) but only short APDUs are allowed"
    )]
    NeedsExtended {
        /// Bytes of command data.
        data_len: usize,
        /// Ne.
        le: Option<u32>,
    },
    /// An extended Lc of zero (`00 00 00` after the header followed by more bytes).
    #[error("extended Lc is zero")]
    ZeroExtendedLc,
    /// The length fields do not agree with the number of bytes.
    #[error("APDU length fields do not match its size ({len} bytes): {detail}")]
    LengthMismatch {
        /// Total bytes given.
        len: usize,
        /// Which field disagrees.
        detail: &'static str,
    },
    /// A parameter of a command builder is out of range.
    #[error("invalid command parameter: {0}")]
    InvalidParameter(&'static str),
}

impl Fault for ApduError {
    fn kind(&self) -> FaultKind {
        FaultKind::InvalidInput
    }
}

/// The four command cases of ISO/IEC 7816-3 12.1.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Case {
    /// No command data, no response data.
    One,
    /// No command data, response data expected (Le).
    Two,
    /// Command data (Lc), no response data.
    Three,
    /// Command data and response data.
    Four,
}

/// A command APDU.
///
/// `Debug` shows the header and lengths only, never the data (it can hold the PAN or a PIN
/// block).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Command {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data (Nc = its length; empty for cases 1 and 2).
    pub data: Vec<u8>,
    /// Ne, the response length expected: `None` for cases 1 and 3, else 1..=65536
    /// (`Some(256)` is the short Le `00`, `Some(65536)` the extended `0000`).
    pub le: Option<u32>,
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Command({:02X} {:02X} {:02X} {:02X}, Lc {}, Le {:?})",
            self.cla,
            self.ins,
            self.p1,
            self.p2,
            self.data.len(),
            self.le
        )
    }
}

fn read_u16(bytes: &[u8], at: usize) -> Option<usize> {
    let hi = *bytes.get(at)?;
    let lo = *bytes.get(at + 1)?;
    Some(usize::from(hi) << 8 | usize::from(lo))
}

fn short_ne(b: u8) -> u32 {
    if b == 0 { 256 } else { u32::from(b) }
}

fn extended_ne(v: usize) -> u32 {
    if v == 0 { MAX_LE } else { v as u32 }
}

/// BER-TLV length octets (definite form) for `len`.
fn ber_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = &bytes[skip..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
}

impl Command {
    /// A case 1 command `CLA INS P1 P2` (add data and Le with [`with_data`](Self::with_data)
    /// and [`with_le`](Self::with_le)).
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Command {
            cla,
            ins,
            p1,
            p2,
            data: Vec::new(),
            le: None,
        }
    }

    /// The same command with this command data.
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = data.into();
        self
    }

    /// The same command expecting `le` response bytes (Ne, 1..=65536; 256 is the short `00`).
    pub fn with_le(mut self, le: u32) -> Self {
        self.le = Some(le);
        self
    }

    /// The same command with no Le (case 1 or 3).
    pub fn without_le(mut self) -> Self {
        self.le = None;
        self
    }

    /// The header `CLA INS P1 P2`.
    pub fn header(&self) -> [u8; 4] {
        [self.cla, self.ins, self.p1, self.p2]
    }

    /// Which of the four cases this command is.
    pub fn case(&self) -> Case {
        match (self.data.is_empty(), self.le.is_some()) {
            (true, false) => Case::One,
            (true, true) => Case::Two,
            (false, false) => Case::Three,
            (false, true) => Case::Four,
        }
    }

    fn check(&self) -> Result<(), ApduError> {
        if self.data.len() > MAX_COMMAND_DATA {
            return Err(ApduError::DataTooLong {
                len: self.data.len(),
            });
        }
        if let Some(le) = self.le {
            if le == 0 || le > MAX_LE {
                return Err(ApduError::LeOutOfRange { le });
            }
        }
        Ok(())
    }

    /// True when the command can be sent in short form (Nc <= 255 and Ne <= 256).
    pub fn fits_short(&self) -> bool {
        self.data.len() <= 255 && self.le.is_none_or(|le| le <= 256)
    }

    /// Encode the command: the short form when it fits; when it does not, the extended form
    /// if `allow_extended`, else [`ApduError::NeedsExtended`].
    ///
    /// Errors: [`ApduError::DataTooLong`] (Nc > 65535), [`ApduError::LeOutOfRange`]
    /// (Ne 0 or > 65536), [`ApduError::NeedsExtended`].
    pub fn to_bytes(&self, allow_extended: bool) -> Result<Vec<u8>, ApduError> {
        self.check()?;
        if self.fits_short() {
            return Ok(self.encode_short());
        }
        if !allow_extended {
            return Err(ApduError::NeedsExtended {
                data_len: self.data.len(),
                le: self.le,
            });
        }
        Ok(self.encode_extended())
    }

    /// Encode the command in extended form even when it would fit the short one (a case 1
    /// command has only one form: the header).
    ///
    /// Errors: [`ApduError::DataTooLong`], [`ApduError::LeOutOfRange`].
    pub fn to_extended_bytes(&self) -> Result<Vec<u8>, ApduError> {
        self.check()?;
        Ok(self.encode_extended())
    }

    fn encode_short(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(6 + self.data.len());
        out.extend_from_slice(&self.header());
        if !self.data.is_empty() {
            out.push(self.data.len() as u8);
            out.extend_from_slice(&self.data);
        }
        if let Some(le) = self.le {
            // 256 -> 00 (checked: le in 1..=256 here).
            out.push((le & 0xFF) as u8);
        }
        out
    }

    fn encode_extended(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.data.len());
        out.extend_from_slice(&self.header());
        if self.case() == Case::One {
            return out;
        }
        out.push(0x00);
        if !self.data.is_empty() {
            out.extend_from_slice(&(self.data.len() as u16).to_be_bytes());
            out.extend_from_slice(&self.data);
        }
        if let Some(le) = self.le {
            // 65536 -> 0000 (checked: le in 1..=65536 here).
            out.extend_from_slice(&((le & 0xFFFF) as u16).to_be_bytes());
        }
        out
    }

    /// Decode a command APDU in any of the seven forms of ISO/IEC 7816-3 12.1.3 (case 1,
    /// 2S, 3S, 4S, 2E, 3E, 4E). Never panics.
    ///
    /// Errors: [`ApduError::TooShort`] (under 4 bytes), [`ApduError::ZeroExtendedLc`],
    /// [`ApduError::LengthMismatch`] (the length fields do not match the size).
    pub fn parse(bytes: &[u8]) -> Result<Command, ApduError> {
        let Some((head, body)) = bytes.split_first_chunk::<4>() else {
            return Err(ApduError::TooShort {
                len: bytes.len(),
                min: 4,
            });
        };
        let [cla, ins, p1, p2] = *head;
        let mut cmd = Command::new(cla, ins, p1, p2);
        let len = bytes.len();
        match body {
            [] => {}
            [le] => cmd.le = Some(short_ne(*le)),
            [0, rest @ ..] => {
                // Extended: 00 then two-byte fields.
                match rest.len() {
                    1 => {
                        return Err(ApduError::LengthMismatch {
                            len,
                            detail: "extended length field cut short",
                        });
                    }
                    2 => cmd.le = Some(extended_ne(read_u16(rest, 0).unwrap_or(0))),
                    _ => {
                        let lc = read_u16(rest, 0).unwrap_or(0);
                        if lc == 0 {
                            return Err(ApduError::ZeroExtendedLc);
                        }
                        let after = &rest[2..];
                        if after.len() == lc {
                            cmd.data = after.to_vec();
                        } else if after.len() == lc + 2 {
                            cmd.data = after[..lc].to_vec();
                            cmd.le = Some(extended_ne(read_u16(after, lc).unwrap_or(0)));
                        } else {
                            return Err(ApduError::LengthMismatch {
                                len,
                                detail: "extended Lc does not match the data",
                            });
                        }
                    }
                }
            }
            [lc, rest @ ..] => {
                let lc = usize::from(*lc);
                if rest.len() == lc {
                    cmd.data = rest.to_vec();
                } else if rest.len() == lc + 1 {
                    cmd.data = rest[..lc].to_vec();
                    cmd.le = rest.get(lc).map(|b| short_ne(*b));
                } else {
                    return Err(ApduError::LengthMismatch {
                        len,
                        detail: "short Lc does not match the data",
                    });
                }
            }
        }
        Ok(cmd)
    }

    // ----- EMV commands (EMV Book 1 clause 11, Book 3 clause 6.5) -----

    /// SELECT by DF name (AID or `1PAY.SYS.DDF01`): `00 A4 04 P2 Lc name 00`, P2 `00` for
    /// the first or only occurrence, `02` for the next one (partial AID selection).
    pub fn select_by_name(name: &[u8], first: bool) -> Command {
        Command::new(0x00, ins::SELECT, 0x04, if first { 0x00 } else { 0x02 })
            .with_data(name)
            .with_le(256)
    }

    /// READ RECORD `00 B2 record (SFI<<3 | 4) 00`.
    ///
    /// Errors: [`ApduError::InvalidParameter`] for an SFI outside 1..=30 or record 0.
    pub fn read_record(sfi: u8, record: u8) -> Result<Command, ApduError> {
        if !(1..=30).contains(&sfi) {
            return Err(ApduError::InvalidParameter("SFI must be 1..=30"));
        }
        if record == 0 {
            return Err(ApduError::InvalidParameter("record number must be 1..=255"));
        }
        Ok(Command::new(0x00, ins::READ_RECORD, record, (sfi << 3) | 0x04).with_le(256))
    }

    /// GET PROCESSING OPTIONS `80 A8 00 00 Lc 83 L pdol_data 00`: the PDOL-related data in
    /// the command template (tag `83`); empty data gives `83 00`.
    pub fn get_processing_options(pdol_data: &[u8]) -> Command {
        let mut data = Vec::with_capacity(pdol_data.len() + 4);
        data.push(0x83);
        ber_length(pdol_data.len(), &mut data);
        data.extend_from_slice(pdol_data);
        Command::new(0x80, ins::GET_PROCESSING_OPTIONS, 0x00, 0x00)
            .with_data(data)
            .with_le(256)
    }

    /// GENERATE AC `80 AE P1 00 Lc cdol_data 00`. P1 is the reference control parameter:
    /// `00` AAC, `40` TC, `80` ARQC, with bit `10` asking for CDA.
    pub fn generate_ac(p1_reference_control: u8, cdol_data: &[u8]) -> Command {
        Command::new(0x80, ins::GENERATE_AC, p1_reference_control, 0x00)
            .with_data(cdol_data)
            .with_le(256)
    }

    /// GET DATA `80 CA tag 00` for a one- or two-byte tag (e.g. `0x9F36` ATC, `0x9F17` PIN
    /// try counter).
    pub fn get_data(tag: u16) -> Command {
        let [p1, p2] = tag.to_be_bytes();
        Command::new(0x80, ins::GET_DATA, p1, p2).with_le(256)
    }

    /// INTERNAL AUTHENTICATE `00 88 00 00 Lc ddol_data 00` (DDA).
    pub fn internal_authenticate(ddol_data: &[u8]) -> Command {
        Command::new(0x00, ins::INTERNAL_AUTHENTICATE, 0x00, 0x00)
            .with_data(ddol_data)
            .with_le(256)
    }

    /// EXTERNAL AUTHENTICATE `00 82 00 00 Lc issuer_authentication_data` (case 3).
    pub fn external_authenticate(issuer_authentication_data: &[u8]) -> Command {
        Command::new(0x00, ins::EXTERNAL_AUTHENTICATE, 0x00, 0x00)
            .with_data(issuer_authentication_data)
    }

    /// GET CHALLENGE `00 84 00 00 00` (8 unpredictable bytes for enciphered PIN).
    pub fn get_challenge() -> Command {
        Command::new(0x00, ins::GET_CHALLENGE, 0x00, 0x00).with_le(256)
    }

    /// GET RESPONSE `00 C0 00 00 Le` (Ne 1..=256; 256 is `00`).
    pub fn get_response(le: u32) -> Command {
        Command::new(0x00, ins::GET_RESPONSE, 0x00, 0x00).with_le(le)
    }
}

/// A response APDU: data, then the status words SW1 SW2.
///
/// `Debug` shows the length and status words only, never the data.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Response {
    /// Response data (may be empty).
    pub data: Vec<u8>,
    /// Status word 1.
    pub sw1: u8,
    /// Status word 2.
    pub sw2: u8,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Response({} data bytes, SW {:02X}{:02X})",
            self.data.len(),
            self.sw1,
            self.sw2
        )
    }
}

impl Response {
    /// A response with this data and status word.
    pub fn new(data: impl Into<Vec<u8>>, sw: u16) -> Self {
        let [sw1, sw2] = sw.to_be_bytes();
        Response {
            data: data.into(),
            sw1,
            sw2,
        }
    }

    /// Split response bytes into data and SW1 SW2.
    ///
    /// Errors: [`ApduError::TooShort`] for fewer than 2 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Response, ApduError> {
        match bytes.split_last_chunk::<2>() {
            Some((data, [sw1, sw2])) => Ok(Response {
                data: data.to_vec(),
                sw1: *sw1,
                sw2: *sw2,
            }),
            None => Err(ApduError::TooShort {
                len: bytes.len(),
                min: 2,
            }),
        }
    }

    /// Data followed by SW1 SW2.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.push(self.sw1);
        out.push(self.sw2);
        out
    }

    /// SW1 SW2 as one number (`0x9000`).
    pub fn sw(&self) -> u16 {
        u16::from_be_bytes([self.sw1, self.sw2])
    }

    /// True for `90 00`.
    pub fn is_success(&self) -> bool {
        self.sw() == 0x9000
    }

    /// True for the warnings `62xx` and `63xx` (the command was processed).
    pub fn is_warning(&self) -> bool {
        matches!(self.sw1, 0x62 | 0x63)
    }

    /// What the status words mean, for people (see [`crate::sw::meaning`]).
    pub fn meaning(&self) -> std::borrow::Cow<'static, str> {
        crate::sw::meaning(self.sw1, self.sw2)
    }
}

impl TryFrom<&[u8]> for Response {
    type Error = ApduError;
    fn try_from(bytes: &[u8]) -> Result<Self, ApduError> {
        Response::from_bytes(bytes)
    }
}

/// What can go wrong in [`exchange`].
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError<E> {
    /// The card channel failed; the error is kept unchanged so the caller can tell a removed
    /// card from a mute one or an unplugged reader ([`Fault::kind`]).
    #[error("card channel: {0}")]
    Channel(#[source] E),
    /// The command cannot be encoded as a short APDU.
    #[error("command cannot be sent: {0}")]
    Command(#[source] ApduError),
    /// The card answered something that is not a response APDU (fewer than 2 bytes, or
    /// procedure status words where they make no sense).
    #[error("malformed response from the card: {detail}")]
    Malformed {
        /// What was wrong (lengths and status words only).
        detail: String,
    },
    /// The card kept answering `61xx` past [`MAX_GET_RESPONSE_ROUNDS`] GET RESPONSEs.
    #[error(
        "card still has data after {} GET RESPONSE commands",
        MAX_GET_RESPONSE_ROUNDS
    )]
    TooManyGetResponses,
}

impl<E: Fault> ExchangeError<E> {
    /// The kind of fault: the channel's own kind for [`ExchangeError::Channel`],
    /// `InvalidInput` for a command that cannot be encoded, `Protocol` otherwise.
    pub fn kind(&self) -> FaultKind {
        match self {
            ExchangeError::Channel(e) => e.kind(),
            ExchangeError::Command(_) => FaultKind::InvalidInput,
            ExchangeError::Malformed { .. } | ExchangeError::TooManyGetResponses => {
                FaultKind::Protocol
            }
        }
    }
}

impl<E: Fault + 'static> Fault for ExchangeError<E> {
    fn kind(&self) -> FaultKind {
        ExchangeError::kind(self)
    }
}

fn send<C: CardChannel>(
    channel: &mut C,
    cmd: &Command,
) -> Result<Response, ExchangeError<C::Error>> {
    let bytes = cmd.to_bytes(false).map_err(ExchangeError::Command)?;
    let raw = channel.transmit(&bytes).map_err(ExchangeError::Channel)?;
    let resp = Response::from_bytes(&raw).map_err(|_| ExchangeError::Malformed {
        detail: format!(
            "{} byte(s) in answer to {:02X} {:02X}, need at least SW1 SW2",
            raw.len(),
            cmd.cla,
            cmd.ins
        ),
    })?;
    log::trace!(
        "APDU {:02X} {:02X} {:02X} {:02X} (Lc {}, Le {:?}) -> {} data byte(s), SW {:04X}",
        cmd.cla,
        cmd.ins,
        cmd.p1,
        cmd.p2,
        cmd.data.len(),
        cmd.le,
        resp.data.len(),
        resp.sw()
    );
    Ok(resp)
}

/// Send `cmd` (short form) over `channel` and return the complete response, handling the
/// T=0 procedure status words as the EMV terminal transport layer does:
///
/// - `61xx`: GET RESPONSE with Le = xx (`00` = 256), repeated while the card answers
///   `61xx`; the data of every answer is concatenated. More than
///   [`MAX_GET_RESPONSE_ROUNDS`] rounds is [`ExchangeError::TooManyGetResponses`].
/// - `6Cxx` to a command with Le (case 2 or 4, or a GET RESPONSE): the same command again
///   with Le = xx, once; a second `6Cxx` in a row is [`ExchangeError::Malformed`]. To a
///   command without Le it is returned as it is (a checking error).
/// - case 4 command answered `62xx`/`63xx` with no data (EMV Book 1 9.3.1.3, Annex A7): GET
///   RESPONSE with Le `00`; the result is the data it brings (through the same `61xx` /
///   `6Cxx` rules) with the warning status words of the first answer. When that GET
///   RESPONSE brings no data (an error status), the warning is returned with no data.
/// - anything else ends the exchange and is returned as it is; the caller judges the status
///   words.
///
/// Errors: [`ExchangeError::Channel`] with the channel's error unchanged (card removed,
/// mute, reader gone), [`ExchangeError::Command`] (command not encodable in short form),
/// [`ExchangeError::Malformed`], [`ExchangeError::TooManyGetResponses`].
pub fn exchange<C: CardChannel>(
    channel: &mut C,
    cmd: &Command,
) -> Result<Response, ExchangeError<C::Error>> {
    let mut current = cmd.clone();
    let mut data: Vec<u8> = Vec::new();
    // The warning to keep (case 4 warning rule).
    let mut warning: Option<(u8, u8)> = None;
    let mut get_responses = 0usize;
    let mut resent_6c = false;
    let mut is_original = true;

    loop {
        let resp = send(channel, &current)?;
        match resp.sw1 {
            0x61 => {
                data.extend_from_slice(&resp.data);
                get_responses += 1;
                if get_responses > MAX_GET_RESPONSE_ROUNDS {
                    log::warn!(
                        "card answered 61xx to {} GET RESPONSE commands ({:02X} {:02X}): giving up",
                        MAX_GET_RESPONSE_ROUNDS,
                        cmd.cla,
                        cmd.ins
                    );
                    return Err(ExchangeError::TooManyGetResponses);
                }
                current = Command::get_response(short_ne(resp.sw2));
                resent_6c = false;
                is_original = false;
            }
            0x6C if current.le.is_some() => {
                if resent_6c {
                    return Err(ExchangeError::Malformed {
                        detail: format!(
                            "card answered 6C{:02X} again after the command was resent with its Le",
                            resp.sw2
                        ),
                    });
                }
                resent_6c = true;
                current.le = Some(short_ne(resp.sw2));
                log::debug!(
                    "6C{:02X}: resending {:02X} {:02X} with Le {:02X}",
                    resp.sw2,
                    current.cla,
                    current.ins,
                    resp.sw2
                );
            }
            0x62 | 0x63
                if is_original
                    && warning.is_none()
                    && cmd.case() == Case::Four
                    && resp.data.is_empty() =>
            {
                // EMV Book 1 9.3.1.3: fetch the data, keep the warning.
                log::debug!(
                    "case 4 command {:02X} {:02X} answered {:02X}{:02X} without data: GET RESPONSE",
                    cmd.cla,
                    cmd.ins,
                    resp.sw1,
                    resp.sw2
                );
                warning = Some((resp.sw1, resp.sw2));
                get_responses += 1;
                current = Command::get_response(256);
                resent_6c = false;
                is_original = false;
            }
            _ => {
                data.extend_from_slice(&resp.data);
                let (sw1, sw2) = warning.unwrap_or((resp.sw1, resp.sw2));
                if warning.is_some() && !resp.is_success() && !resp.is_warning() {
                    log::debug!(
                        "GET RESPONSE after a warning answered {:04X}: keeping the warning",
                        resp.sw()
                    );
                }
                return Ok(Response { data, sw1, sw2 });
            }
        }
    }
}
