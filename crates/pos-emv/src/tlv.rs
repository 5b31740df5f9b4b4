//! A strict, zero-copy BER-TLV decoder and a small encoder (EMV Book 3 Annex B).
//!
//! # Decoding
//!
//! [`parse`] returns a [`TlvIter`] over the objects of a buffer. Every [`Tlv`] it yields
//! borrows its value from the input: decoding never allocates. Constructed objects are not
//! descended into by the iterator itself; call [`Tlv::children`], or use the tree walkers
//! [`walk`], [`find`] and [`flatten`], which descend at most [`MAX_DEPTH`] levels.
//!
//! The decoder is strict; every error is a [`TlvError`] carrying the offset (in the buffer
//! given to [`parse`], also inside nested objects) where it was found:
//!
//! - tags: one byte, or a first byte with bits b5-b1 all set followed by subsequent bytes
//!   (b8 set on all but the last). At most 4 bytes; EMV uses at most 3.
//! - lengths: short form `00`-`7F`; long forms `81 xx`, `82 xx xx`, `83 xx xx xx`.
//!   `80` (the BER indefinite form) and `84` and above are rejected.
//! - a length running past the end of its buffer (or of its enclosing constructed object)
//!   is [`TlvError::Truncated`]; nothing is ever truncated silently.
//! - `00` and `FF` bytes before, between and after objects are padding and are skipped
//!   (EMV Book 3 Annex B). A consequence: the iterator never yields a tag starting with
//!   `00` or `FF`.
//!
//! **Non-minimal lengths** (`81 05` where `05` would do, `82 00 10`, ...) are *accepted*:
//! X.690 DER forbids them, but EMV only requires BER and real cards send `81 xx` for short
//! values. [`Tlv::length_is_minimal`] tells a caller that wants to notice them.
//!
//! # Encoding
//!
//! [`encode`] writes one primitive object with the minimal length form;
//! [`encode_constructed`] and [`Builder`] build constructed objects.

use std::fmt;
use std::iter::FusedIterator;
use std::str::FromStr;

use pos_hal::{Fault, FaultKind};

/// How many levels of objects [`walk`], [`find`] and [`flatten`] accept (top-level objects
/// are level 1): an object nested deeper is [`TlvError::TooDeep`]. EMV data never nests
/// more than 4 levels.
pub const MAX_DEPTH: usize = 16;

/// A BER-TLV tag: its raw bytes read as a big-endian number (`9F02` is `Tag::new(0x9F02)`).
///
/// Tags of 1 to 4 bytes are accepted by the decoder; EMV uses at most 3.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(u32);

/// The class of a tag (bits b8-b7 of its first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// `00`: universal (ASN.1 types).
    Universal,
    /// `01`: application (most EMV templates and data, e.g. `5A`, `6F`, `70`).
    Application,
    /// `10`: context-specific (e.g. `80`-`9F`, `A5`, `BF0C`).
    ContextSpecific,
    /// `11`: private (e.g. `DF` tags).
    Private,
}

impl Tag {
    /// A tag from its raw bytes read as a big-endian number. Not validated: use
    /// [`Tag::from_bytes`] or [`Tag::from_str`] for bytes or text from outside.
    pub const fn new(raw: u32) -> Tag {
        Tag(raw)
    }

    /// The raw bytes as a big-endian number.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// A tag from exactly its encoded bytes.
    ///
    /// # Errors
    /// [`TlvError::TruncatedTag`] if the bytes stop inside the tag (including empty input),
    /// [`TlvError::TagTooLong`] beyond 4 bytes, [`TlvError::InvalidTag`] for a first byte
    /// `00` (padding, not a tag) or for bytes left after the tag (offset of the first one).
    pub fn from_bytes(bytes: &[u8]) -> Result<Tag, TlvError> {
        if bytes.first() == Some(&0) {
            return Err(TlvError::InvalidTag { offset: 0 });
        }
        let (tag, n) = read_tag(bytes, 0, 0)?;
        if n != bytes.len() {
            return Err(TlvError::InvalidTag { offset: n });
        }
        Ok(tag)
    }

    /// Number of bytes of the encoded tag (1 to 4).
    pub const fn byte_len(self) -> usize {
        if self.0 > 0xFF_FFFF {
            4
        } else if self.0 > 0xFFFF {
            3
        } else if self.0 > 0xFF {
            2
        } else {
            1
        }
    }

    /// The encoded bytes in a fixed array; the tag is `array[..n]`.
    pub const fn to_array(self) -> ([u8; 4], usize) {
        let n = self.byte_len();
        let be = self.0.to_be_bytes();
        let mut out = [0u8; 4];
        let mut i = 0;
        while i < n {
            out[i] = be[4 - n + i];
            i += 1;
        }
        (out, n)
    }

    /// The encoded bytes.
    pub fn bytes(self) -> Vec<u8> {
        let (a, n) = self.to_array();
        a.get(..n).unwrap_or(&[]).to_vec()
    }

    /// Appends the encoded bytes to `out`.
    pub fn write_to(self, out: &mut Vec<u8>) {
        let (a, n) = self.to_array();
        out.extend_from_slice(a.get(..n).unwrap_or(&[]));
    }

    /// The first encoded byte (class, constructed bit, tag number or `1F`).
    pub const fn first_byte(self) -> u8 {
        (self.0 >> (8 * (self.byte_len() - 1))) as u8
    }

    /// Whether the tag marks a constructed object (bit b6 of the first byte): its value is
    /// itself a series of BER-TLV objects.
    pub const fn is_constructed(self) -> bool {
        self.first_byte() & 0x20 != 0
    }

    /// The tag's class.
    pub const fn class(self) -> Class {
        match self.first_byte() >> 6 {
            0 => Class::Universal,
            1 => Class::Application,
            2 => Class::ContextSpecific,
            _ => Class::Private,
        }
    }
}

impl fmt::Display for Tag {
    /// Upper-case hex of the encoded bytes, e.g. `9F02`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, n) = self.to_array();
        for b in a.iter().take(n) {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({self})")
    }
}

/// Why a text is not a tag ([`Tag::from_str`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tag {text:?}: {reason}")]
pub struct ParseTagError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for Tag {
    type Err = ParseTagError;

    /// Parses hex (either case, an optional `0x` prefix), e.g. `"9F02"`, `"5f2a"`. The
    /// digits must encode a valid tag exactly ([`Tag::from_bytes`]).
    fn from_str(s: &str) -> Result<Tag, ParseTagError> {
        let err = |reason| ParseTagError {
            text: s.to_string(),
            reason,
        };
        let digits = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s);
        if digits.is_empty() || digits.len() % 2 != 0 || digits.len() > 8 {
            return Err(err("expected 2, 4, 6 or 8 hex digits"));
        }
        let mut bytes = [0u8; 4];
        let mut n = 0;
        for pair in digits.as_bytes().chunks(2) {
            let text = std::str::from_utf8(pair).map_err(|_| err("not hex"))?;
            let b = u8::from_str_radix(text, 16).map_err(|_| err("not hex"))?;
            if let Some(slot) = bytes.get_mut(n) {
                *slot = b;
            }
            n += 1;
        }
        Tag::from_bytes(bytes.get(..n).unwrap_or(&[]))
            .map_err(|_| err("not a valid BER-TLV tag encoding"))
    }
}

/// A malformed BER-TLV encoding. Every variant carries the offset, in the buffer given to the
/// decoder, where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlvError {
    /// The tag starting at `offset` runs past the end of the data.
    #[error("tag at offset {offset} runs past the end of the data")]
    TruncatedTag {
        /// Offset of the tag's first byte.
        offset: usize,
    },
    /// The tag starting at `offset` has more than 4 bytes.
    #[error("tag at offset {offset} is longer than 4 bytes")]
    TagTooLong {
        /// Offset of the tag's first byte.
        offset: usize,
    },
    /// Not a tag: `00` as a first byte, or bytes after a complete tag.
    #[error("invalid tag byte at offset {offset}")]
    InvalidTag {
        /// Offset of the offending byte.
        offset: usize,
    },
    /// The length field starting at `offset` runs past the end of the data.
    #[error("length field at offset {offset} needs {needed} bytes, {available} available")]
    TruncatedLength {
        /// Offset of the length field's first byte.
        offset: usize,
        /// Bytes the length field needs.
        needed: usize,
        /// Bytes left from `offset`.
        available: usize,
    },
    /// The length byte at `offset` is `80` (indefinite length, not allowed in EMV).
    #[error("indefinite length (80) at offset {offset}")]
    IndefiniteLength {
        /// Offset of the length byte.
        offset: usize,
    },
    /// The length byte at `offset` announces more than 3 length bytes (`84` to `FF`).
    #[error("length at offset {offset} announces {octets} length bytes (at most 3 accepted)")]
    LengthTooLong {
        /// Offset of the length byte.
        offset: usize,
        /// Number of length bytes announced (low 7 bits of the length byte).
        octets: u8,
    },
    /// The value of the object whose tag is at `offset` runs past the end of the data (or of
    /// the constructed object containing it).
    #[error("object at offset {offset} declares {needed} value bytes, only {available} available")]
    Truncated {
        /// Offset of the object's tag.
        offset: usize,
        /// Value length the object declares.
        needed: usize,
        /// Bytes left after the object's header.
        available: usize,
    },
    /// An object is nested deeper than [`MAX_DEPTH`] levels.
    #[error("object at offset {offset} is nested deeper than {limit} levels")]
    TooDeep {
        /// Offset of the first object beyond the limit.
        offset: usize,
        /// The limit.
        limit: usize,
    },
    /// One object was expected and the data holds none (only padding, or nothing).
    #[error("no TLV object (data ends at offset {offset})")]
    Empty {
        /// Offset where the data ends.
        offset: usize,
    },
    /// One object was expected and another one follows it.
    #[error("unexpected data after the object, at offset {offset}")]
    TrailingData {
        /// Offset of the extra data.
        offset: usize,
    },
    /// The object at `offset` has another tag than the expected one.
    #[error("expected tag {expected} at offset {offset}, found {found}")]
    UnexpectedTag {
        /// Offset of the object's tag.
        offset: usize,
        /// The tag expected.
        expected: Tag,
        /// The tag found.
        found: Tag,
    },
}

impl TlvError {
    /// The offset the error refers to.
    pub fn offset(&self) -> usize {
        match *self {
            TlvError::TruncatedTag { offset }
            | TlvError::TagTooLong { offset }
            | TlvError::InvalidTag { offset }
            | TlvError::TruncatedLength { offset, .. }
            | TlvError::IndefiniteLength { offset }
            | TlvError::LengthTooLong { offset, .. }
            | TlvError::Truncated { offset, .. }
            | TlvError::TooDeep { offset, .. }
            | TlvError::Empty { offset }
            | TlvError::TrailingData { offset }
            | TlvError::UnexpectedTag { offset, .. } => offset,
        }
    }
}

impl Fault for TlvError {
    /// Always [`FaultKind::Protocol`]: the card (or host) sent bytes that do not follow BER-TLV.
    fn kind(&self) -> FaultKind {
        FaultKind::Protocol
    }
}

/// One decoded object, borrowing its value from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag.
    pub tag: Tag,
    /// The value bytes (for a constructed object: the encoded children).
    pub value: &'a [u8],
    /// Offset of the tag in the buffer given to [`parse`] (also for nested objects).
    pub offset: usize,
    /// Bytes of tag plus length field.
    pub header_len: usize,
}

impl<'a> Tlv<'a> {
    /// Whether the object is constructed (its value is a series of objects).
    pub fn is_constructed(&self) -> bool {
        self.tag.is_constructed()
    }

    /// The children of a constructed object, with offsets in the original buffer. For a
    /// primitive object the iterator is empty (its value is not TLV); to decode a primitive
    /// value as TLV anyway use [`TlvIter::with_base`].
    pub fn children(&self) -> TlvIter<'a> {
        if self.is_constructed() {
            TlvIter::with_base(self.value, self.value_offset())
        } else {
            TlvIter::with_base(&[], self.value_offset())
        }
    }

    /// Offset of the first value byte in the original buffer.
    pub fn value_offset(&self) -> usize {
        self.offset + self.header_len
    }

    /// Total encoded size: header plus value.
    pub fn encoded_len(&self) -> usize {
        self.header_len + self.value.len()
    }

    /// Offset just after the object in the original buffer.
    pub fn end(&self) -> usize {
        self.value_offset() + self.value.len()
    }

    /// Whether the length field used the shortest form (see the module docs: non-minimal
    /// forms are accepted).
    pub fn length_is_minimal(&self) -> bool {
        self.header_len == self.tag.byte_len() + length_field_len(self.value.len())
    }
}

/// An iterator over the objects of a buffer, yielding `Result<Tlv, TlvError>`.
///
/// Skips `00`/`FF` padding between objects; ends after the first error (it is fused).
#[derive(Debug, Clone)]
pub struct TlvIter<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
    failed: bool,
}

impl<'a> TlvIter<'a> {
    /// Iterates over the objects of `buf`; offsets are relative to `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self::with_base(buf, 0)
    }

    /// Iterates over the objects of `buf`, which starts at offset `base` of some larger
    /// buffer; offsets (in objects and errors) are `base + position in buf`.
    pub fn with_base(buf: &'a [u8], base: usize) -> Self {
        TlvIter {
            buf,
            pos: 0,
            base,
            failed: false,
        }
    }

    /// The bytes not yet consumed (empty after an error).
    pub fn remaining(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<'a>, TlvError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let buf = self.buf;
        let mut pos = self.pos;
        while let Some(&b) = buf.get(pos) {
            if b != 0x00 && b != 0xFF {
                break;
            }
            pos += 1;
        }
        if pos >= buf.len() {
            self.pos = buf.len();
            return None;
        }
        match decode_at(buf, pos, self.base) {
            Ok(tlv) => {
                self.pos = pos + tlv.header_len + tlv.value.len();
                Some(Ok(tlv))
            }
            Err(e) => {
                self.failed = true;
                self.pos = buf.len();
                Some(Err(e))
            }
        }
    }
}

impl FusedIterator for TlvIter<'_> {}

#[inline]
pub(crate) fn read_tag(buf: &[u8], pos: usize, base: usize) -> Result<(Tag, usize), TlvError> {
    let Some(&b0) = buf.get(pos) else {
        return Err(TlvError::TruncatedTag { offset: base + pos });
    };
    if b0 & 0x1F != 0x1F {
        return Ok((Tag(u32::from(b0)), 1));
    }
    let mut raw = u32::from(b0);
    let mut n = 1;
    loop {
        let Some(&b) = buf.get(pos + n) else {
            return Err(TlvError::TruncatedTag { offset: base + pos });
        };
        raw = (raw << 8) | u32::from(b);
        n += 1;
        if b & 0x80 == 0 {
            return Ok((Tag(raw), n));
        }
        if n == 4 {
            return Err(TlvError::TagTooLong { offset: base + pos });
        }
    }
}

/// Reads a length field at `pos`: (value length, field size).
#[inline]
fn read_len(buf: &[u8], pos: usize, base: usize) -> Result<(usize, usize), TlvError> {
    let Some(&l0) = buf.get(pos) else {
        return Err(TlvError::TruncatedLength {
            offset: base + pos,
            needed: 1,
            available: 0,
        });
    };
    if l0 < 0x80 {
        return Ok((usize::from(l0), 1));
    }
    let octets = usize::from(l0 & 0x7F);
    match octets {
        0 => Err(TlvError::IndefiniteLength { offset: base + pos }),
        1..=3 => {
            let Some(bytes) = buf.get(pos + 1..pos + 1 + octets) else {
                return Err(TlvError::TruncatedLength {
                    offset: base + pos,
                    needed: 1 + octets,
                    available: buf.len().saturating_sub(pos),
                });
            };
            let len = bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            Ok((len, 1 + octets))
        }
        _ => Err(TlvError::LengthTooLong {
            offset: base + pos,
            octets: l0 & 0x7F,
        }),
    }
}

#[inline]
fn decode_at(buf: &[u8], pos: usize, base: usize) -> Result<Tlv<'_>, TlvError> {
    let (tag, tag_len) = read_tag(buf, pos, base)?;
    let (len, len_len) = read_len(buf, pos + tag_len, base)?;
    let header_len = tag_len + len_len;
    let start = pos + header_len;
    let available = buf.len().saturating_sub(start);
    if len > available {
        return Err(TlvError::Truncated {
            offset: base + pos,
            needed: len,
            available,
        });
    }
    Ok(Tlv {
        tag,
        value: buf.get(start..start + len).unwrap_or(&[]),
        offset: base + pos,
        header_len,
    })
}

/// Iterates over the top-level objects of `buf` (see [`TlvIter`]).
pub fn parse(buf: &[u8]) -> TlvIter<'_> {
    TlvIter::new(buf)
}

/// All top-level objects of `buf` (children are not checked; see [`walk`] for that).
///
/// # Errors
/// The first decoding error.
pub fn parse_all(buf: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    parse(buf).collect()
}

/// Exactly one object (padding around it allowed). Its children are not checked.
///
/// # Errors
/// [`TlvError::Empty`] if there is none, [`TlvError::TrailingData`] if another object
/// follows, or the decoding error.
pub fn parse_single(buf: &[u8]) -> Result<Tlv<'_>, TlvError> {
    let mut it = parse(buf);
    let first = it.next().ok_or(TlvError::Empty { offset: buf.len() })??;
    match it.next() {
        None => Ok(first),
        Some(Ok(extra)) => Err(TlvError::TrailingData {
            offset: extra.offset,
        }),
        Some(Err(e)) => Err(e),
    }
}

/// Exactly one object with tag `expected` (e.g. a READ RECORD response body must be one
/// template `70`), its whole tree checked.
///
/// # Errors
/// As [`parse_single`], [`TlvError::UnexpectedTag`] for another tag, any error inside the
/// object's tree.
pub fn parse_template(buf: &[u8], expected: Tag) -> Result<Tlv<'_>, TlvError> {
    let tlv = parse_single(buf)?;
    if tlv.tag != expected {
        return Err(TlvError::UnexpectedTag {
            offset: tlv.offset,
            expected,
            found: tlv.tag,
        });
    }
    if tlv.is_constructed() {
        walk_level(tlv.children(), 1, &mut |_, _| {})?;
    }
    Ok(tlv)
}

/// Visits every object of `buf` depth-first (a constructed object before its children),
/// with its depth (0 for top-level objects). Every object is checked, down to [`MAX_DEPTH`].
///
/// # Errors
/// The first decoding error; objects before it have been visited.
pub fn walk<'a, F>(buf: &'a [u8], mut visit: F) -> Result<(), TlvError>
where
    F: FnMut(Tlv<'a>, usize),
{
    walk_level(parse(buf), 0, &mut visit)
}

fn walk_level<'a, F>(iter: TlvIter<'a>, depth: usize, visit: &mut F) -> Result<(), TlvError>
where
    F: FnMut(Tlv<'a>, usize),
{
    for item in iter {
        let tlv = item?;
        if depth >= MAX_DEPTH {
            return Err(TlvError::TooDeep {
                offset: tlv.offset,
                limit: MAX_DEPTH,
            });
        }
        visit(tlv, depth);
        if tlv.is_constructed() {
            walk_level(tlv.children(), depth + 1, visit)?;
        }
    }
    Ok(())
}

/// The first object with tag `tag` (depth-first, a constructed object before its children,
/// constructed objects searched recursively down to [`MAX_DEPTH`]).
///
/// The whole of `buf` is checked even when the tag appears early: data that is malformed
/// anywhere is an error, so a broken card answer is never half-trusted.
///
/// # Errors
/// The first decoding error in `buf`.
pub fn find(buf: &[u8], tag: Tag) -> Result<Option<Tlv<'_>>, TlvError> {
    let mut found = None;
    walk(buf, |tlv, _| {
        if found.is_none() && tlv.tag == tag {
            found = Some(tlv);
        }
    })?;
    Ok(found)
}

/// Every primitive object of `buf`, depth-first, constructed objects opened recursively.
///
/// # Errors
/// The first decoding error in `buf`.
pub fn flatten(buf: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    let mut out = Vec::new();
    walk(buf, |tlv, _| {
        if !tlv.is_constructed() {
            out.push(tlv);
        }
    })?;
    Ok(out)
}

/// Size of the minimal length field for a value of `len` bytes.
pub const fn length_field_len(len: usize) -> usize {
    if len < 0x80 {
        1
    } else if len <= 0xFF {
        2
    } else if len <= 0xFFFF {
        3
    } else if len <= 0xFF_FFFF {
        4
    } else {
        5
    }
}

/// Appends the minimal length field for `len`.
///
/// Lengths above `FFFFFF` (16 MiB; an APDU carries at most 65 535 bytes) are written in the
/// 4-byte form `84 xx xx xx xx`, valid BER that this module's strict decoder rejects.
pub fn encode_len(len: usize, out: &mut Vec<u8>) {
    let be = (len as u64).to_be_bytes();
    match length_field_len(len) {
        1 => out.push(len as u8),
        n => {
            let octets = n - 1;
            out.push(0x80 | octets as u8);
            out.extend_from_slice(be.get(8 - octets..).unwrap_or(&[]));
        }
    }
}

/// Appends one object: tag, minimal length, value.
pub fn encode(tag: Tag, value: &[u8], out: &mut Vec<u8>) {
    tag.write_to(out);
    encode_len(value.len(), out);
    out.extend_from_slice(value);
}

/// A constructed object whose children are the given primitive (or pre-encoded
/// constructed) `(tag, value)` pairs.
pub fn encode_constructed(tag: Tag, children: &[(Tag, Vec<u8>)]) -> Vec<u8> {
    let mut b = Builder::new();
    b.constructed(tag, |inner| {
        for (t, v) in children {
            inner.primitive(*t, v);
        }
    });
    b.finish()
}

/// Builds a series of objects, nested to any depth.
///
/// ```
/// use pos_emv::tlv::{Builder, Tag};
/// let mut b = Builder::new();
/// b.constructed(Tag::new(0x70), |r| {
///     r.primitive(Tag::new(0x5F24), &[0x14, 0x12, 0x31]);
/// });
/// assert_eq!(b.finish(), [0x70, 0x06, 0x5F, 0x24, 0x03, 0x14, 0x12, 0x31]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    out: Vec<u8>,
}

impl Builder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a primitive object (any tag, written as given).
    pub fn primitive(&mut self, tag: Tag, value: &[u8]) -> &mut Self {
        encode(tag, value, &mut self.out);
        self
    }

    /// Appends a constructed object whose children `fill` appends.
    pub fn constructed(&mut self, tag: Tag, fill: impl FnOnce(&mut Builder)) -> &mut Self {
        let mut inner = Builder::new();
        fill(&mut inner);
        encode(tag, &inner.out, &mut self.out);
        self
    }

    /// Appends bytes as they are (already encoded objects, padding).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.out.extend_from_slice(bytes);
        self
    }

    /// The encoded bytes.
    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_bytes_and_display() {
        let t = Tag::new(0x9F02);
        assert_eq!(t.bytes(), [0x9F, 0x02]);
        assert_eq!(t.to_string(), "9F02");
        assert_eq!(format!("{t:?}"), "Tag(9F02)");
        assert_eq!(Tag::new(0x5A).bytes(), [0x5A]);
        assert_eq!(Tag::new(0xDF8101).byte_len(), 3);
    }

    #[test]
    fn length_field_forms() {
        for (len, expect) in [
            (0usize, vec![0x00]),
            (0x7F, vec![0x7F]),
            (0x80, vec![0x81, 0x80]),
            (0xFF, vec![0x81, 0xFF]),
            (0x100, vec![0x82, 0x01, 0x00]),
            (0x1_0000, vec![0x83, 0x01, 0x00, 0x00]),
            (0x100_0000, vec![0x84, 0x01, 0x00, 0x00, 0x00]),
        ] {
            let mut out = Vec::new();
            encode_len(len, &mut out);
            assert_eq!(out, expect, "length {len}");
            assert_eq!(out.len(), length_field_len(len));
        }
    }

    #[test]
    fn children_of_primitive_is_empty() {
        let buf = [0x5A, 0x02, 0x70, 0x00];
        let tlv = parse_single(&buf).unwrap();
        assert_eq!(tlv.children().count(), 0);
    }
}
