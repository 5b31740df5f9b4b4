//! The VSCard wire format: message model, [`encode`] and a streaming [`Decoder`].
//!
//! Every message is a 12-byte header of three **big-endian** `u32`s — type, reader id,
//! payload length (header not included) — followed by the payload (`VSCMsgHeader` in
//! libcacard's `src/vscard_common.h`; QEMU's `hw/usb/ccid-card-passthru.c` converts each
//! header field with `htonl`/`ntohl`).
//!
//! Payloads by type (same sources):
//!
//! | type | code | payload |
//! |---|---|---|
//! | Init | 1 | magic `"VSCD"` as four bytes in that order, version (BE `u32`, 2), capabilities (BE `u32`s, at least one) |
//! | Error | 2 | code (BE `u32`): 0 success, 1 general error, 2 cannot add more readers, 3 card already inserted |
//! | ReaderAdd | 3 | reader name (UTF-8, may be empty; vscclient sends it empty) |
//! | ReaderRemove | 4 | empty |
//! | ATR | 5 | the ATR bytes (QEMU accepts at most 40) |
//! | CardRemove | 6 | empty |
//! | APDU | 7 | command (host → card) or response (card → host) APDU |
//! | Flush | 8 | empty |
//! | FlushComplete | 9 | empty |
//!
//! The Init payload always carries at least one capability word: QEMU's
//! `ccid_card_vscard_handle_init` computes `1 + (length - 12) / 4` capabilities with unsigned
//! arithmetic, so a shorter Init would make it read far past the message. [`encode`]
//! therefore writes one zero word for an empty capability list and the [`Decoder`] rejects
//! an Init shorter than 12 bytes.
//!
//! The decoder never panics: any byte sequence gives messages, `Ok(None)` (need more bytes)
//! or a [`DecodeError`].

use std::fmt;

use pos_hal::{Fault, FaultKind};

/// Size of the message header in bytes.
pub const HEADER_LEN: usize = 12;

/// The Init magic, as the four bytes on the wire.
pub const MAGIC: [u8; 4] = *b"VSCD";

/// Protocol version this crate speaks (`MAKE_VERSION(0, 0, 2)` = 2 in `vscard_common.h`).
pub const VERSION: u32 = 2;

/// The "no reader yet" reader id (`VSCARD_UNDEFINED_READER_ID`).
pub const UNDEFINED_READER_ID: u32 = 0xFFFF_FFFF;

/// The only reader id QEMU's passthru card ever assigns (`VSCARD_MINIMAL_READER_ID`).
pub const MINIMAL_READER_ID: u32 = 0;

/// QEMU's receive buffer (`VSCARD_IN_SIZE`, 64 KiB, header included). A message that does
/// not fit makes QEMU drop the connection.
pub const QEMU_IN_SIZE: usize = 64 * 1024;

/// Default payload cap of the [`Decoder`]: what fits in QEMU's receive buffer.
pub const DEFAULT_MAX_PAYLOAD: u32 = (QEMU_IN_SIZE - HEADER_LEN) as u32;

/// Longest ATR QEMU accepts (`MAX_ATR_SIZE`, from ISO 7816-3).
pub const MAX_ATR_LEN: usize = 40;

/// Error codes carried by an [`Body::Error`] message (`VSCErrorCode`).
pub mod error_code {
    /// Success: the answer to ReaderAdd, ReaderRemove, ATR and CardRemove.
    pub const SUCCESS: u32 = 0;
    /// General error (QEMU: bad ATR, unexpected message type).
    pub const GENERAL_ERROR: u32 = 1;
    /// The host cannot add another reader.
    pub const CANNOT_ADD_MORE_READERS: u32 = 2;
    /// A card is already inserted (defined, never sent by QEMU).
    pub const CARD_ALREADY_INSERTED: u32 = 3;
}

/// The message type field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// 1: protocol hello, both directions.
    Init,
    /// 2: status/answer, both directions.
    Error,
    /// 3: card side adds a reader.
    ReaderAdd,
    /// 4: card side removes its reader.
    ReaderRemove,
    /// 5: card inserted (or reset): its ATR.
    Atr,
    /// 6: card pulled.
    CardRemove,
    /// 7: an APDU, both directions.
    Apdu,
    /// 8: host asks the card side to finish outstanding APDUs.
    Flush,
    /// 9: the card side's answer to Flush.
    FlushComplete,
    /// Any other code.
    Unknown(u32),
}

impl MessageType {
    /// The type for a wire code.
    pub fn from_code(code: u32) -> Self {
        match code {
            1 => MessageType::Init,
            2 => MessageType::Error,
            3 => MessageType::ReaderAdd,
            4 => MessageType::ReaderRemove,
            5 => MessageType::Atr,
            6 => MessageType::CardRemove,
            7 => MessageType::Apdu,
            8 => MessageType::Flush,
            9 => MessageType::FlushComplete,
            other => MessageType::Unknown(other),
        }
    }

    /// The wire code.
    pub fn code(self) -> u32 {
        match self {
            MessageType::Init => 1,
            MessageType::Error => 2,
            MessageType::ReaderAdd => 3,
            MessageType::ReaderRemove => 4,
            MessageType::Atr => 5,
            MessageType::CardRemove => 6,
            MessageType::Apdu => 7,
            MessageType::Flush => 8,
            MessageType::FlushComplete => 9,
            MessageType::Unknown(c) => c,
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageType::Unknown(c) => write!(f, "Unknown({c})"),
            other => fmt::Debug::fmt(other, f),
        }
    }
}

/// A message's payload, by type.
///
/// `Debug` never shows APDU bytes (they may hold a PAN), only their length.
#[derive(Clone, PartialEq, Eq)]
pub enum Body {
    /// Init: magic (should be [`MAGIC`]), version, capabilities.
    Init {
        /// The four magic bytes as received.
        magic: [u8; 4],
        /// Protocol version.
        version: u32,
        /// Capability words (none are defined; an empty list is encoded as one zero word).
        capabilities: Vec<u32>,
    },
    /// Error: a status code, see [`error_code`].
    Error {
        /// The code.
        code: u32,
    },
    /// ReaderAdd with the reader's name (bytes as sent, normally UTF-8, may be empty).
    ReaderAdd {
        /// The name.
        name: Vec<u8>,
    },
    /// ReaderRemove.
    ReaderRemove,
    /// ATR of an inserted card.
    Atr(Vec<u8>),
    /// CardRemove.
    CardRemove,
    /// An APDU.
    Apdu(Vec<u8>),
    /// Flush.
    Flush,
    /// FlushComplete.
    FlushComplete,
    /// A type this crate does not know; `ty` should not be one of the codes 1..=9 (a known
    /// code is decoded as its own variant).
    Unknown {
        /// The type code.
        ty: u32,
        /// The raw payload.
        payload: Vec<u8>,
    },
}

impl Body {
    /// The message type of this body.
    pub fn message_type(&self) -> MessageType {
        match self {
            Body::Init { .. } => MessageType::Init,
            Body::Error { .. } => MessageType::Error,
            Body::ReaderAdd { .. } => MessageType::ReaderAdd,
            Body::ReaderRemove => MessageType::ReaderRemove,
            Body::Atr(_) => MessageType::Atr,
            Body::CardRemove => MessageType::CardRemove,
            Body::Apdu(_) => MessageType::Apdu,
            Body::Flush => MessageType::Flush,
            Body::FlushComplete => MessageType::FlushComplete,
            Body::Unknown { ty, .. } => MessageType::from_code(*ty),
        }
    }

    /// Payload length in bytes, as [`encode`] writes it.
    pub fn payload_len(&self) -> usize {
        match self {
            Body::Init { capabilities, .. } => 8 + 4 * capabilities.len().max(1),
            Body::Error { .. } => 4,
            Body::ReaderAdd { name } => name.len(),
            Body::Atr(b) | Body::Apdu(b) | Body::Unknown { payload: b, .. } => b.len(),
            Body::ReaderRemove | Body::CardRemove | Body::Flush | Body::FlushComplete => 0,
        }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Init {
                magic,
                version,
                capabilities,
            } => f
                .debug_struct("Init")
                .field("magic", &String::from_utf8_lossy(magic))
                .field("version", version)
                .field("capabilities", capabilities)
                .finish(),
            Body::Error { code } => f.debug_struct("Error").field("code", code).finish(),
            Body::ReaderAdd { name } => f
                .debug_struct("ReaderAdd")
                .field("name", &String::from_utf8_lossy(name))
                .finish(),
            Body::ReaderRemove => f.write_str("ReaderRemove"),
            Body::Atr(atr) => write!(f, "Atr({atr:02X?})"),
            Body::CardRemove => f.write_str("CardRemove"),
            Body::Apdu(apdu) => write!(f, "Apdu(<{} bytes>)", apdu.len()),
            Body::Flush => f.write_str("Flush"),
            Body::FlushComplete => f.write_str("FlushComplete"),
            Body::Unknown { ty, payload } => {
                write!(f, "Unknown {{ ty: {ty}, <{} bytes> }}", payload.len())
            }
        }
    }
}

/// One VSCard message: reader id and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The reader the message is about ([`UNDEFINED_READER_ID`] before one is assigned).
    pub reader_id: u32,
    /// Type and payload.
    pub body: Body,
}

impl Message {
    /// A message.
    pub fn new(reader_id: u32, body: Body) -> Self {
        Message { reader_id, body }
    }

    /// The Init this crate sends: magic, [`VERSION`], one zero capability word, reader id
    /// [`UNDEFINED_READER_ID`].
    pub fn init() -> Self {
        Message::new(
            UNDEFINED_READER_ID,
            Body::Init {
                magic: MAGIC,
                version: VERSION,
                capabilities: vec![0],
            },
        )
    }

    /// The message type.
    pub fn message_type(&self) -> MessageType {
        self.body.message_type()
    }
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The header announces more payload than the cap. The stream cannot be resynchronised:
    /// the decoder stays failed.
    #[error("VSCard {ty} message announces {len} payload bytes, more than the {max}-byte cap")]
    TooLong {
        /// Type of the offending message.
        ty: MessageType,
        /// Announced payload length.
        len: u32,
        /// The cap.
        max: u32,
    },
    /// A complete message whose payload does not fit its type. The message is skipped; the
    /// stream stays in sync and decoding can go on.
    #[error("malformed VSCard {ty} payload of {len} bytes: {reason}")]
    Malformed {
        /// Type of the offending message.
        ty: MessageType,
        /// Its payload length.
        len: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

impl DecodeError {
    /// The fault kind (always [`FaultKind::Protocol`]).
    pub fn kind(&self) -> FaultKind {
        FaultKind::Protocol
    }

    /// True when the decoder cannot go on after this error.
    pub fn is_fatal(&self) -> bool {
        matches!(self, DecodeError::TooLong { .. })
    }
}

impl Fault for DecodeError {
    fn kind(&self) -> FaultKind {
        DecodeError::kind(self)
    }
}

/// Encode one message (header and payload).
///
/// Infallible. The length field saturates at `u32::MAX` for payloads longer than 4 GiB, so
/// keep payloads within what the peer accepts (QEMU: [`DEFAULT_MAX_PAYLOAD`]); the
/// [`CardClient`](crate::CardClient) checks this before sending.
pub fn encode(msg: &Message) -> Vec<u8> {
    let len = msg.body.payload_len();
    let mut out = Vec::with_capacity(HEADER_LEN + len);
    out.extend_from_slice(&msg.message_type().code().to_be_bytes());
    out.extend_from_slice(&msg.reader_id.to_be_bytes());
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    match &msg.body {
        Body::Init {
            magic,
            version,
            capabilities,
        } => {
            out.extend_from_slice(magic);
            out.extend_from_slice(&version.to_be_bytes());
            if capabilities.is_empty() {
                out.extend_from_slice(&0u32.to_be_bytes());
            }
            for c in capabilities {
                out.extend_from_slice(&c.to_be_bytes());
            }
        }
        Body::Error { code } => out.extend_from_slice(&code.to_be_bytes()),
        Body::ReaderAdd { name } => out.extend_from_slice(name),
        Body::Atr(b) | Body::Apdu(b) | Body::Unknown { payload: b, .. } => out.extend_from_slice(b),
        Body::ReaderRemove | Body::CardRemove | Body::Flush | Body::FlushComplete => {}
    }
    out
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    let arr: [u8; 4] = b.try_into().ok()?;
    Some(u32::from_be_bytes(arr))
}

/// Build a body from a type code and a complete payload.
///
/// Errors: [`DecodeError::Malformed`] when the payload does not fit the type (Init shorter
/// than 12 bytes or not a whole number of words, Error not exactly 4 bytes, a payload on a
/// type that has none).
pub fn decode_body(ty: u32, payload: &[u8]) -> Result<Body, DecodeError> {
    let t = MessageType::from_code(ty);
    let malformed = |reason| DecodeError::Malformed {
        ty: t,
        len: payload.len(),
        reason,
    };
    let empty = |body: Body| {
        if payload.is_empty() {
            Ok(body)
        } else {
            Err(malformed("this type has no payload"))
        }
    };
    match t {
        MessageType::Init => {
            if payload.len() < 12 {
                return Err(malformed("Init needs magic, version and one capability"));
            }
            if payload.len() % 4 != 0 {
                return Err(malformed("Init is not a whole number of 32-bit words"));
            }
            let mut magic = [0u8; 4];
            magic.copy_from_slice(payload.get(0..4).ok_or_else(|| malformed("short"))?);
            let version = be_u32(payload, 4).ok_or_else(|| malformed("short"))?;
            let capabilities = payload
                .get(8..)
                .unwrap_or(&[])
                .chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Ok(Body::Init {
                magic,
                version,
                capabilities,
            })
        }
        MessageType::Error => {
            if payload.len() != 4 {
                return Err(malformed("Error carries exactly one 32-bit code"));
            }
            let code = be_u32(payload, 0).ok_or_else(|| malformed("short"))?;
            Ok(Body::Error { code })
        }
        MessageType::ReaderAdd => Ok(Body::ReaderAdd {
            name: payload.to_vec(),
        }),
        MessageType::ReaderRemove => empty(Body::ReaderRemove),
        MessageType::Atr => Ok(Body::Atr(payload.to_vec())),
        MessageType::CardRemove => empty(Body::CardRemove),
        MessageType::Apdu => Ok(Body::Apdu(payload.to_vec())),
        MessageType::Flush => empty(Body::Flush),
        MessageType::FlushComplete => empty(Body::FlushComplete),
        MessageType::Unknown(ty) => Ok(Body::Unknown {
            ty,
            payload: payload.to_vec(),
        }),
    }
}

/// A streaming decoder: [`push`](Decoder::push) bytes as they arrive, then
/// [`pop`](Decoder::pop) complete messages until it returns `Ok(None)`.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    max_payload: u32,
    failed: Option<DecodeError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder with the [`DEFAULT_MAX_PAYLOAD`] cap.
    pub fn new() -> Self {
        Decoder::with_max_payload(DEFAULT_MAX_PAYLOAD)
    }

    /// A decoder refusing messages whose payload exceeds `max_payload` bytes.
    pub fn with_max_payload(max_payload: u32) -> Self {
        Decoder {
            buf: Vec::new(),
            max_payload,
            failed: None,
        }
    }

    /// Append received bytes. Ignored once the decoder has failed.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes buffered and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// True after a fatal error ([`DecodeError::is_fatal`]).
    pub fn is_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    ///
    /// Errors: [`DecodeError::TooLong`] as soon as a header over the cap is seen (fatal:
    /// every later call returns it again and the buffer is dropped);
    /// [`DecodeError::Malformed`] for a complete message with a bad payload (the message is
    /// consumed, the next call goes on with the following one).
    pub fn pop(&mut self) -> Result<Option<Message>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let (Some(ty), Some(reader_id), Some(len)) = (
            be_u32(&self.buf, 0),
            be_u32(&self.buf, 4),
            be_u32(&self.buf, 8),
        ) else {
            return Ok(None);
        };
        if len > self.max_payload {
            let e = DecodeError::TooLong {
                ty: MessageType::from_code(ty),
                len,
                max: self.max_payload,
            };
            self.failed = Some(e.clone());
            self.buf = Vec::new();
            return Err(e);
        }
        // len <= max_payload (a u32), so this fits in usize on every supported target.
        let total = HEADER_LEN.saturating_add(usize::try_from(len).unwrap_or(usize::MAX));
        if self.buf.len() < total {
            return Ok(None);
        }
        let result = match self.buf.get(HEADER_LEN..total) {
            Some(payload) => decode_body(ty, payload),
            None => return Ok(None),
        };
        self.buf.drain(..total);
        result.map(|body| Some(Message { reader_id, body }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn init_bytes_match_vscard_common() {
        let bytes = encode(&Message::init());
        assert_eq!(
            bytes,
            [
                0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 12, b'V', b'S', b'C', b'D', 0, 0, 0,
                2, 0, 0, 0, 0
            ]
        );
    }

    #[test]
    fn empty_capabilities_still_send_one_word() {
        let m = Message::new(
            0,
            Body::Init {
                magic: MAGIC,
                version: VERSION,
                capabilities: vec![],
            },
        );
        let mut d = Decoder::new();
        d.push(&encode(&m));
        let got = d.pop().unwrap().unwrap();
        assert_eq!(
            got.body,
            Body::Init {
                magic: MAGIC,
                version: VERSION,
                capabilities: vec![0]
            }
        );
    }

    #[test]
    fn too_long_is_fatal_and_malformed_is_not() {
        let mut d = Decoder::with_max_payload(16);
        // Error with 3 bytes: malformed, then a good CardRemove.
        d.push(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]);
        d.push(&encode(&Message::new(0, Body::CardRemove)));
        assert!(matches!(d.pop(), Err(DecodeError::Malformed { .. })));
        assert_eq!(d.pop().unwrap().unwrap().body, Body::CardRemove);
        assert_eq!(d.pop().unwrap(), None);
        d.push(&[0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 17]);
        let e = d.pop().unwrap_err();
        assert!(e.is_fatal());
        assert_eq!(e.kind(), FaultKind::Protocol);
        assert!(d.is_failed());
        assert_eq!(d.pop().unwrap_err(), e);
    }

    #[test]
    fn apdu_debug_is_redacted() {
        let s = format!("{:?}", Body::Apdu(vec![0x5A, 0x08, 0x47, 0x61]));
        assert_eq!(s, "Apdu(<4 bytes>)");
    }
}
