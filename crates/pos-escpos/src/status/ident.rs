//! GS ( H process IDs (print confirmation) and GS I identification: requests, replies
//! and their parsers.

use super::*;

pub(super) fn check_process_id(id: [u8; 4]) -> Result<(), StatusError> {
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
