//! Errors of the codec and the framing layer.

use pos_hal::{Fault, FaultKind};
use std::fmt;

/// Where in a message an error was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The message type indicator.
    Mti,
    /// The primary bitmap (fields 1-64).
    PrimaryBitmap,
    /// The secondary bitmap (fields 65-128).
    SecondaryBitmap,
    /// A data element, by number.
    Field(u8),
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Mti => f.write_str("MTI"),
            Part::PrimaryBitmap => f.write_str("primary bitmap"),
            Part::SecondaryBitmap => f.write_str("secondary bitmap"),
            Part::Field(n) => write!(f, "field {n}"),
        }
    }
}

/// An error encoding, decoding or framing an ISO 8583 message.
///
/// Messages never contain field values (a PAN or track must not end up in a log through an
/// error); at most a single offending byte of a BCD field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// Encoding: the message has a field the dialect does not define.
    #[error("field {field} is not defined by the dialect")]
    NotInDialect {
        /// Field number.
        field: u8,
    },
    /// Encoding: a field value does not fit its format.
    #[error("field {field}: {reason}")]
    InvalidField {
        /// Field number.
        field: u8,
        /// What is wrong (never the value itself).
        reason: String,
    },
    /// Decoding: the message ends before `part` does.
    #[error("{part} truncated at offset {offset}: need {needed} bytes, {available} left")]
    Truncated {
        /// What was being read.
        part: Part,
        /// Offset of the first missing byte's run.
        offset: usize,
        /// Bytes needed.
        needed: usize,
        /// Bytes left in the message.
        available: usize,
    },
    /// Decoding: a variable-length prefix is not a valid length for the field.
    #[error("{part}: bad length prefix at offset {offset}: {reason}")]
    BadLength {
        /// Which field.
        part: Part,
        /// Offset of the prefix.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// Decoding: a packed BCD byte has a nibble that is not allowed there.
    #[error("{part}: invalid BCD byte {byte:#04x} at offset {offset}")]
    BadBcd {
        /// Which part.
        part: Part,
        /// Offset of the byte.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// Decoding: a byte not allowed by the field's content type (e.g. a letter in an `n` field).
    #[error("{part}: {reason} at offset {offset}")]
    BadContent {
        /// Which part.
        part: Part,
        /// Offset of the offending byte.
        offset: usize,
        /// What is wrong (never the value itself).
        reason: String,
    },
    /// Decoding: a bitmap bit is set for a field the dialect does not define.
    #[error(
        "field {field} is present in the bitmap at offset {offset} but not defined by the dialect"
    )]
    UnknownField {
        /// Field number.
        field: u8,
        /// Offset of the bitmap byte holding the bit.
        offset: usize,
    },
    /// Decoding: bytes left over after the last field in the bitmap.
    #[error("{count} trailing bytes after the last field, at offset {offset}")]
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
        /// How many.
        count: usize,
    },
    /// Framing: a length header of 0 or above the configured maximum, or a message too long
    /// for a 2-byte header.
    #[error("frame length {len} is outside 1..={max}")]
    FrameLength {
        /// The length.
        len: usize,
        /// The largest length accepted.
        max: usize,
    },
}

impl Fault for CodecError {
    /// Everything is [`FaultKind::Protocol`] except encode-side validation of values the
    /// caller supplied ([`CodecError::NotInDialect`], [`CodecError::InvalidField`]), which is
    /// [`FaultKind::InvalidInput`].
    fn kind(&self) -> FaultKind {
        match self {
            CodecError::NotInDialect { .. } | CodecError::InvalidField { .. } => {
                FaultKind::InvalidInput
            }
            _ => FaultKind::Protocol,
        }
    }
}

/// A dialect table that is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialectError {
    /// Field numbers are 2..=128 (1 is the secondary bitmap bit).
    #[error("field number {0} is outside 2..=128")]
    BadNumber(u8),
    /// A field is listed twice.
    #[error("field {0} is defined twice")]
    Duplicate(u8),
    /// A length outside what the kind allows (fixed 1..=999, LLVAR 1..=99, LLLVAR 1..=999).
    #[error("field {field}: length {len} is not allowed for this kind")]
    BadLength {
        /// Field number.
        field: u8,
        /// The length.
        len: u16,
    },
    /// An encoding that cannot carry the content type (BCD is for `n`/`z`, binary for `b`).
    #[error("field {0}: the encoding cannot carry this content type")]
    BadEncoding(u8),
    /// The MTI is ASCII or BCD.
    #[error("the MTI encoding must be ASCII or BCD")]
    BadMtiEncoding,
}

impl Fault for DialectError {
    fn kind(&self) -> FaultKind {
        FaultKind::InvalidInput
    }
}
