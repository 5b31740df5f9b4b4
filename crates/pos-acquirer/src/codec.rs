//! Encoding and decoding messages.

use crate::dialect::{Content, Dialect, Encoding, FieldSpec, LengthKind};
use crate::error::{CodecError, Part};
use crate::{Message, Mti};

fn invalid(field: u8, reason: impl Into<String>) -> CodecError {
    CodecError::InvalidField {
        field,
        reason: reason.into(),
    }
}

/// Encode a message: MTI, primary bitmap, secondary bitmap if any field 65-128 is present,
/// then the fields in order, each checked against its [`FieldSpec`].
pub fn encode(msg: &Message, dialect: &Dialect) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(64);
    let d = msg.mti.digits();
    match dialect.mti_encoding() {
        Encoding::Bcd => out.extend([
            ((d[0] - b'0') << 4) | (d[1] - b'0'),
            ((d[2] - b'0') << 4) | (d[3] - b'0'),
        ]),
        _ => out.extend(d),
    }
    let mut bitmap = [0u8; 16];
    for &n in msg.fields.keys() {
        if !(2..=128).contains(&n) {
            return Err(CodecError::NotInDialect { field: n });
        }
        let i = usize::from(n - 1);
        bitmap[i / 8] |= 0x80 >> (i % 8);
    }
    let secondary = msg.fields.keys().any(|&n| n > 64);
    if secondary {
        bitmap[0] |= 0x80;
        out.extend(bitmap);
    } else {
        out.extend(&bitmap[..8]);
    }
    for (&n, value) in &msg.fields {
        let spec = dialect
            .field(n)
            .ok_or(CodecError::NotInDialect { field: n })?;
        encode_field(&mut out, spec, value, dialect.length_encoding())?;
    }
    Ok(out)
}

fn encode_field(
    out: &mut Vec<u8>,
    spec: &FieldSpec,
    value: &[u8],
    len_enc: Encoding,
) -> Result<(), CodecError> {
    let n = spec.number;
    if let Some(pos) = value.iter().position(|&c| !spec.content.allows(c)) {
        return Err(invalid(
            n,
            format!(
                "character at position {pos} is not allowed in a {} field",
                spec.content.name()
            ),
        ));
    }
    let units = value.len();
    match spec.kind {
        LengthKind::Fixed(len) if units != usize::from(len) => {
            return Err(invalid(n, format!("length {units}, must be {len}")));
        }
        LengthKind::LlVar(max) | LengthKind::LllVar(max) if units > usize::from(max) => {
            return Err(invalid(n, format!("length {units}, at most {max}")));
        }
        LengthKind::Fixed(_) => {}
        LengthKind::LlVar(_) => write_len(out, units, 2, len_enc),
        LengthKind::LllVar(_) => write_len(out, units, 3, len_enc),
    }
    match (spec.encoding, spec.content) {
        (Encoding::Bcd, content) => {
            let mut nibbles: Vec<u8> = value
                .iter()
                .map(|&c| if c == b'=' { 0xd } else { c - b'0' })
                .collect();
            if nibbles.len() % 2 == 1 {
                if content == Content::Z {
                    nibbles.push(0xf);
                } else {
                    nibbles.insert(0, 0);
                }
            }
            out.extend(nibbles.chunks(2).map(|p| (p[0] << 4) | p[1]));
        }
        (Encoding::Ascii, Content::B) => {
            for b in value {
                out.extend(format!("{b:02X}").bytes());
            }
        }
        _ => out.extend(value),
    }
    Ok(())
}

fn write_len(out: &mut Vec<u8>, len: usize, digits: usize, enc: Encoding) {
    match enc {
        Encoding::Ascii => out.extend(format!("{len:0digits$}").bytes()),
        Encoding::Bcd => {
            let s = format!("{len:0w$}", w = digits.div_ceil(2) * 2);
            let d = s.as_bytes();
            out.extend(d.chunks(2).map(|p| ((p[0] - b'0') << 4) | (p[1] - b'0')));
        }
        Encoding::Binary => {
            if digits == 3 {
                out.extend([(len >> 8) as u8, len as u8]);
            } else {
                out.push(len as u8);
            }
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, part: Part) -> Result<&'a [u8], CodecError> {
        let available = self.buf.len() - self.pos;
        if n > available {
            return Err(CodecError::Truncated {
                part,
                offset: self.pos,
                needed: n,
                available,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
}

/// Unpack BCD bytes starting at `offset` into `count` nibbles (checked by `ok`).
fn bcd_nibbles(
    bytes: &[u8],
    offset: usize,
    part: Part,
    ok: impl Fn(u8) -> bool,
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for (i, &b) in bytes.iter().enumerate() {
        let (hi, lo) = (b >> 4, b & 0xf);
        if !ok(hi) || !ok(lo) {
            return Err(CodecError::BadBcd {
                part,
                offset: offset + i,
                byte: b,
            });
        }
        out.extend([hi, lo]);
    }
    Ok(out)
}

/// Decode one message (without framing). Strict: every bitmap bit must be a dialect field,
/// every field must be complete and valid for its spec, and no bytes may follow.
pub fn decode(bytes: &[u8], dialect: &Dialect) -> Result<Message, CodecError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let mti_value = match dialect.mti_encoding() {
        Encoding::Bcd => {
            let raw = r.take(2, Part::Mti)?;
            let d = bcd_nibbles(raw, 0, Part::Mti, |x| x <= 9)?;
            d.iter().fold(0u16, |a, &x| a * 10 + u16::from(x))
        }
        _ => {
            let raw = r.take(4, Part::Mti)?;
            if let Some(i) = raw.iter().position(|b| !b.is_ascii_digit()) {
                return Err(CodecError::BadContent {
                    part: Part::Mti,
                    offset: i,
                    reason: "MTI is not four digits".into(),
                });
            }
            raw.iter().fold(0u16, |a, &x| a * 10 + u16::from(x - b'0'))
        }
    };
    // At most 9999 by construction.
    let mti = Mti::new(mti_value).unwrap_or(Mti::NETWORK_REQUEST);
    let bitmap_at = r.pos;
    let mut bitmap = [0u8; 16];
    bitmap[..8].copy_from_slice(r.take(8, Part::PrimaryBitmap)?);
    if bitmap[0] & 0x80 != 0 {
        bitmap[8..].copy_from_slice(r.take(8, Part::SecondaryBitmap)?);
    }
    let mut msg = Message::new(mti);
    for n in 2..=128u8 {
        let i = usize::from(n - 1);
        if bitmap[i / 8] & (0x80 >> (i % 8)) == 0 {
            continue;
        }
        let spec = dialect.field(n).ok_or(CodecError::UnknownField {
            field: n,
            offset: bitmap_at + i / 8,
        })?;
        let value = decode_field(&mut r, spec, dialect.length_encoding())?;
        msg.fields.insert(n, value);
    }
    if r.pos != bytes.len() {
        return Err(CodecError::TrailingBytes {
            offset: r.pos,
            count: bytes.len() - r.pos,
        });
    }
    Ok(msg)
}

fn read_len(
    r: &mut Reader<'_>,
    digits: usize,
    max: u16,
    enc: Encoding,
    part: Part,
) -> Result<usize, CodecError> {
    let at = r.pos;
    let bad = |reason: String| CodecError::BadLength {
        part,
        offset: at,
        reason,
    };
    let len = match enc {
        Encoding::Ascii => {
            let raw = r.take(digits, part)?;
            if !raw.iter().all(u8::is_ascii_digit) {
                return Err(bad("not ASCII digits".into()));
            }
            raw.iter()
                .fold(0usize, |a, &x| a * 10 + usize::from(x - b'0'))
        }
        Encoding::Bcd => {
            let raw = r.take(digits.div_ceil(2), part)?;
            let d = bcd_nibbles(raw, at, part, |x| x <= 9)?;
            d.iter().fold(0usize, |a, &x| a * 10 + usize::from(x))
        }
        Encoding::Binary => {
            let raw = r.take(if digits == 3 { 2 } else { 1 }, part)?;
            raw.iter().fold(0usize, |a, &x| (a << 8) | usize::from(x))
        }
    };
    if len > usize::from(max) {
        return Err(bad(format!("length {len} above the maximum {max}")));
    }
    Ok(len)
}

fn decode_field(
    r: &mut Reader<'_>,
    spec: &FieldSpec,
    len_enc: Encoding,
) -> Result<Vec<u8>, CodecError> {
    let part = Part::Field(spec.number);
    let units = match spec.kind {
        LengthKind::Fixed(n) => usize::from(n),
        LengthKind::LlVar(max) => read_len(r, 2, max, len_enc, part)?,
        LengthKind::LllVar(max) => read_len(r, 3, max, len_enc, part)?,
    };
    let at = r.pos;
    let raw = r.take(spec.body_len(units), part)?;
    let content_err = |i: usize, what: &str| CodecError::BadContent {
        part,
        offset: at + i,
        reason: format!("{what} in a {} field", spec.content.name()),
    };
    match (spec.encoding, spec.content) {
        (Encoding::Bcd, content) => {
            let z = content == Content::Z;
            let mut nib = bcd_nibbles(raw, at, part, |x| x <= 9 || (z && (x == 0xd || x == 0xf)))?;
            if units % 2 == 1 {
                let (pad, idx) = if z { (0xf, nib.len() - 1) } else { (0, 0) };
                if nib[idx] != pad {
                    let bi = idx / 2;
                    return Err(CodecError::BadBcd {
                        part,
                        offset: at + bi,
                        byte: raw[bi],
                    });
                }
                nib.remove(idx);
            }
            if let Some(i) = nib.iter().position(|&x| x == 0xf) {
                return Err(CodecError::BadBcd {
                    part,
                    offset: at + i / 2,
                    byte: raw[i / 2],
                });
            }
            Ok(nib
                .into_iter()
                .map(|x| if x == 0xd { b'=' } else { b'0' + x })
                .collect())
        }
        (Encoding::Ascii, Content::B) => {
            let hexval = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
            raw.chunks(2)
                .enumerate()
                .map(|(i, p)| match (hexval(p[0]), hexval(p[1])) {
                    (Some(h), Some(l)) => Ok((h << 4) | l),
                    _ => Err(content_err(i * 2, "non-hex character")),
                })
                .collect()
        }
        (_, content) => {
            if let Some(i) = raw.iter().position(|&c| !content.allows(c)) {
                return Err(content_err(i, "character not allowed"));
            }
            Ok(raw.to_vec())
        }
    }
}
