//! Data object lists (PDOL `9F38`, CDOL1 `8C`, CDOL2 `8D`, DDOL `9F49`, TDOL `97`): parsing
//! and building the command data they ask for (EMV 4.3 Book 3 section 5.4).
//!
//! A DOL is a series of entries, each a BER-TLV tag followed by one length byte (no value).
//! The terminal answers with the concatenated values, each fitted to its entry's length:
//!
//! | format | value longer than the entry | value shorter than the entry |
//! |---|---|---|
//! | `n` | leftmost bytes dropped | left-padded with `00` |
//! | `cn` | rightmost bytes dropped | right-padded with `FF` |
//! | others (`a`, `an`, `ans`, `b`, `var`) | rightmost bytes dropped | right-padded with `00` |
//!
//! The format comes from the dictionary in [`crate::tags`]; a tag the dictionary does not
//! know but the caller supplies a value for is treated as `b`. Data the caller does not have
//! (lookup returns `None`) and constructed tags are sent as zeros of the entry's length.

use crate::tags::{self, Format};
use crate::tlv::{Tag, TlvError};

/// One DOL entry: which data object, and how many bytes of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DolEntry {
    /// The data object asked for.
    pub tag: Tag,
    /// Its length in the command data.
    pub len: usize,
}

/// Parses a DOL (the value of `9F38`, `8C`, `8D`, `9F49` or `97`). An empty DOL is valid.
///
/// # Errors
/// [`TlvError::TruncatedTag`] / [`TlvError::TagTooLong`] for a bad tag,
/// [`TlvError::InvalidTag`] for a tag starting with `00`, and
/// [`TlvError::TruncatedLength`] when the last tag has no length byte; offsets into `bytes`.
pub fn parse_dol(bytes: &[u8]) -> Result<Vec<DolEntry>, TlvError> {
    let mut out = Vec::with_capacity(bytes.len() / 2);
    let mut pos = 0;
    while pos < bytes.len() {
        let rest = bytes.get(pos..).unwrap_or(&[]);
        if rest.first() == Some(&0x00) {
            return Err(TlvError::InvalidTag { offset: pos });
        }
        let (tag, tag_len) = crate::tlv::read_tag(bytes, pos, 0)?;
        let Some(&len) = rest.get(tag_len) else {
            return Err(TlvError::TruncatedLength {
                offset: pos + tag_len,
                needed: 1,
                available: 0,
            });
        };
        out.push(DolEntry {
            tag,
            len: usize::from(len),
        });
        pos += tag_len + 1;
    }
    Ok(out)
}

/// Encodes DOL entries (the inverse of [`parse_dol`]; for virtual cards and tests). Lengths
/// above 255 are written as 255.
pub fn encode_dol(dol: &[DolEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(dol.len() * 3);
    for e in dol {
        e.tag.write_to(&mut out);
        out.push(u8::try_from(e.len).unwrap_or(u8::MAX));
    }
    out
}

/// Total length of the data a DOL asks for.
pub fn data_len(dol: &[DolEntry]) -> usize {
    dol.iter().map(|e| e.len).sum()
}

/// Builds the data a DOL asks for: for each entry, `lookup(tag)` fitted to the entry's
/// length by the tag's format (see the module docs); zeros when `lookup` has nothing or
/// the tag is constructed. The result is always [`data_len`] bytes.
pub fn build(dol: &[DolEntry], lookup: impl Fn(Tag) -> Option<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(data_len(dol));
    for e in dol {
        let value = if e.tag.is_constructed() {
            None
        } else {
            lookup(e.tag)
        };
        match value {
            Some(v) => fit_into(tags::format_of(e.tag), &v, e.len, &mut out),
            None => out.resize(out.len() + e.len, 0),
        }
    }
    out
}

/// `value` fitted to `len` bytes by `format` (see the module docs).
pub fn fit(format: Format, value: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    fit_into(format, value, len, &mut out);
    out
}

fn fit_into(format: Format, value: &[u8], len: usize, out: &mut Vec<u8>) {
    if value.len() >= len {
        let kept = match format {
            Format::N => value.get(value.len() - len..),
            _ => value.get(..len),
        };
        out.extend_from_slice(kept.unwrap_or(&[]));
        return;
    }
    let pad = len - value.len();
    match format {
        Format::N => {
            out.resize(out.len() + pad, 0x00);
            out.extend_from_slice(value);
        }
        Format::Cn => {
            out.extend_from_slice(value);
            out.resize(out.len() + pad, 0xFF);
        }
        _ => {
            out.extend_from_slice(value);
            out.resize(out.len() + pad, 0x00);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_rules() {
        assert_eq!(fit(Format::N, &[0x12, 0x34], 4), [0, 0, 0x12, 0x34]);
        assert_eq!(fit(Format::N, &[0x12, 0x34, 0x56], 2), [0x34, 0x56]);
        assert_eq!(fit(Format::Cn, &[0x54, 0x13], 4), [0x54, 0x13, 0xFF, 0xFF]);
        assert_eq!(fit(Format::Cn, &[0x54, 0x13, 0x33], 2), [0x54, 0x13]);
        assert_eq!(fit(Format::B, &[1, 2], 3), [1, 2, 0]);
        assert_eq!(fit(Format::Ans, b"ABC", 2), *b"AB");
        assert_eq!(fit(Format::B, &[1, 2], 0), [0u8; 0]);
    }

    #[test]
    fn tag_lengths() {
        let dol = parse_dol(&[0x9F, 0x02, 0x06, 0xDF, 0x81, 0x01, 0x02]).unwrap();
        assert_eq!(dol.len(), 2);
        assert_eq!(dol[1].tag, Tag::new(0xDF8101));
        assert_eq!(
            parse_dol(&[0x95, 0x05, 0xDF, 0x81, 0x81, 0x81, 0x01, 0x01]),
            Err(TlvError::TagTooLong { offset: 2 })
        );
        assert_eq!(
            parse_dol(&[0x95, 0x05, 0x9F]),
            Err(TlvError::TruncatedTag { offset: 2 })
        );
    }
}
