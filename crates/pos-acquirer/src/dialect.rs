//! Field formats as data.

use crate::error::DialectError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How long a field is.
///
/// Lengths count digits for `n`/`z` content, characters for `an`/`ans`, and bytes for `b`
/// (so ISO's `b64` is `Fixed(8)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LengthKind {
    /// Exactly this long (1..=999).
    Fixed(u16),
    /// Two-digit length prefix, at most this long (1..=99).
    LlVar(u16),
    /// Three-digit length prefix, at most this long (1..=999).
    LllVar(u16),
}

/// How characters, digits, bytes or length prefixes go on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// One ASCII byte per character. For `b` content: two uppercase hex digits per byte.
    /// For a length prefix: 2 or 3 ASCII digits.
    Ascii,
    /// Packed BCD, two digits per byte (`n` and `z` content only; odd `n` is padded with a
    /// leading 0 nibble, odd `z` with a trailing `F`; `=` in track 2 is nibble `D`).
    /// For a length prefix: 1 byte (LL) or 2 bytes (LLL).
    Bcd,
    /// Raw bytes (`b` content only). For a length prefix: 1 byte (LL) or 2 bytes big-endian
    /// (LLL).
    Binary,
}

/// What a field may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Content {
    /// Digits 0-9.
    N,
    /// Letters and digits.
    An,
    /// Printable ASCII (0x20..=0x7E).
    Ans,
    /// Bytes.
    B,
    /// Track 2 data: digits and the `=` separator.
    Z,
}

impl Content {
    /// Whether `c` (one character of the value) is allowed.
    pub fn allows(self, c: u8) -> bool {
        match self {
            Content::N => c.is_ascii_digit(),
            Content::An => c.is_ascii_alphanumeric(),
            Content::Ans => (0x20..=0x7e).contains(&c),
            Content::B => true,
            Content::Z => c.is_ascii_digit() || c == b'=',
        }
    }

    /// Name as in the standard (`n`, `an`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Content::N => "n",
            Content::An => "an",
            Content::Ans => "ans",
            Content::B => "b",
            Content::Z => "z",
        }
    }
}

/// The format of one data element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSpec {
    /// Field number, 2..=128.
    pub number: u8,
    /// Fixed or variable length.
    pub kind: LengthKind,
    /// Wire encoding of the value.
    pub encoding: Encoding,
    /// Allowed content.
    pub content: Content,
}

impl FieldSpec {
    /// A spec.
    pub const fn new(number: u8, kind: LengthKind, encoding: Encoding, content: Content) -> Self {
        FieldSpec {
            number,
            kind,
            encoding,
            content,
        }
    }

    /// Bytes on the wire for a value of `units` digits / characters / bytes (without prefix).
    pub(crate) fn body_len(&self, units: usize) -> usize {
        match (self.encoding, self.content) {
            (Encoding::Bcd, _) => units.div_ceil(2),
            (Encoding::Ascii, Content::B) => units * 2,
            _ => units,
        }
    }

    fn check(&self) -> Result<(), DialectError> {
        if !(2..=128).contains(&self.number) {
            return Err(DialectError::BadNumber(self.number));
        }
        let (len, range) = match self.kind {
            LengthKind::Fixed(n) => (n, 1..=999),
            LengthKind::LlVar(n) => (n, 1..=99),
            LengthKind::LllVar(n) => (n, 1..=999),
        };
        if !range.contains(&len) {
            return Err(DialectError::BadLength {
                field: self.number,
                len,
            });
        }
        let ok = match self.encoding {
            Encoding::Ascii => true,
            Encoding::Bcd => matches!(self.content, Content::N | Content::Z),
            Encoding::Binary => self.content == Content::B,
        };
        if !ok {
            return Err(DialectError::BadEncoding(self.number));
        }
        Ok(())
    }
}

/// The serializable form of a [`Dialect`], e.g. from a config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialectConfig {
    /// MTI encoding: `ascii` (4 bytes) or `bcd` (2 bytes).
    pub mti_encoding: Encoding,
    /// Encoding of LLVAR / LLLVAR length prefixes.
    pub length_encoding: Encoding,
    /// The field table.
    pub fields: Vec<FieldSpec>,
}

/// A host's flavour of ISO 8583: field formats and header encodings.
///
/// The bitmaps are always 8 binary bytes each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DialectConfig", into = "DialectConfig")]
pub struct Dialect {
    mti_encoding: Encoding,
    length_encoding: Encoding,
    fields: BTreeMap<u8, FieldSpec>,
}

impl Dialect {
    /// A dialect from a field table; checks every spec.
    pub fn new(
        mti_encoding: Encoding,
        length_encoding: Encoding,
        specs: impl IntoIterator<Item = FieldSpec>,
    ) -> Result<Self, DialectError> {
        if mti_encoding == Encoding::Binary {
            return Err(DialectError::BadMtiEncoding);
        }
        let mut fields = BTreeMap::new();
        for spec in specs {
            spec.check()?;
            if fields.insert(spec.number, spec).is_some() {
                return Err(DialectError::Duplicate(spec.number));
            }
        }
        Ok(Dialect {
            mti_encoding,
            length_encoding,
            fields,
        })
    }

    /// A common card-present POS dialect, everything ASCII except `b` fields (raw bytes).
    ///
    /// | field | format | | field | format |
    /// |---|---|---|---|---|
    /// | 2 PAN | n..19 LLVAR | | 42 card acceptor id | ans15 |
    /// | 3 processing code | n6 | | 43 card acceptor name/location | ans40 |
    /// | 4 amount | n12 | | 45 track 1 | ans..76 LLVAR |
    /// | 7 transmission date/time | n10 | | 49 currency | n3 |
    /// | 11 STAN | n6 | | 52 PIN block | b8 |
    /// | 12 local time | n6 | | 53 security control | n16 |
    /// | 13 local date | n4 | | 54 additional amounts | an..120 LLLVAR |
    /// | 14 expiry | n4 | | 55 ICC data | b..255 LLLVAR |
    /// | 18 merchant type | n4 | | 60-63 private | ans..999 LLLVAR |
    /// | 22 POS entry mode | n3 | | 64 MAC | b8 |
    /// | 23 card sequence | n3 | | 70 network management code | n3 |
    /// | 25 POS condition | n2 | | 90 original data elements | n42 |
    /// | 32 acquirer id | n..11 LLVAR | | 95 replacement amounts | an42 |
    /// | 35 track 2 | z..37 LLVAR | | 128 MAC | b8 |
    /// | 37 RRN | an12 | | 74-77 credits, debits (reversal) counts | n10 |
    /// | 38 auth code | an6 | | 86-89 credits, debits (reversal) amounts | n16 |
    /// | 39 response code | an2 | | 97 net settlement amount | an17 (`C`/`D` + n16) |
    /// | 41 terminal id | ans8 | | 50 settlement currency | n3 |
    pub fn default_pos() -> Self {
        Self::pos_table(Encoding::Ascii, Encoding::Ascii, Encoding::Ascii)
    }

    /// The [`Dialect::default_pos`] table packed: BCD MTI, BCD length prefixes, BCD `n`/`z`
    /// fields (`an`/`ans` stay ASCII, `b` raw).
    pub fn default_pos_bcd() -> Self {
        Self::pos_table(Encoding::Bcd, Encoding::Bcd, Encoding::Bcd)
    }

    fn pos_table(mti: Encoding, len: Encoding, numeric: Encoding) -> Self {
        use Content::*;
        use LengthKind::*;
        let table: &[(u8, LengthKind, Content)] = &[
            (2, LlVar(19), N),
            (3, Fixed(6), N),
            (4, Fixed(12), N),
            (7, Fixed(10), N),
            (11, Fixed(6), N),
            (12, Fixed(6), N),
            (13, Fixed(4), N),
            (14, Fixed(4), N),
            (18, Fixed(4), N),
            (22, Fixed(3), N),
            (23, Fixed(3), N),
            (25, Fixed(2), N),
            (32, LlVar(11), N),
            (35, LlVar(37), Z),
            (37, Fixed(12), An),
            (38, Fixed(6), An),
            (39, Fixed(2), An),
            (41, Fixed(8), Ans),
            (42, Fixed(15), Ans),
            (43, Fixed(40), Ans),
            (45, LlVar(76), Ans),
            (49, Fixed(3), N),
            (50, Fixed(3), N),
            (52, Fixed(8), B),
            (53, Fixed(16), N),
            (54, LllVar(120), An),
            (55, LllVar(255), B),
            (60, LllVar(999), Ans),
            (61, LllVar(999), Ans),
            (62, LllVar(999), Ans),
            (63, LllVar(999), Ans),
            (64, Fixed(8), B),
            (70, Fixed(3), N),
            (74, Fixed(10), N),
            (75, Fixed(10), N),
            (76, Fixed(10), N),
            (77, Fixed(10), N),
            (86, Fixed(16), N),
            (87, Fixed(16), N),
            (88, Fixed(16), N),
            (89, Fixed(16), N),
            (90, Fixed(42), N),
            (95, Fixed(42), An),
            (97, Fixed(17), An),
            (128, Fixed(8), B),
        ];
        let fields = table
            .iter()
            .map(|&(number, kind, content)| {
                let encoding = match content {
                    N | Z => numeric,
                    An | Ans => Encoding::Ascii,
                    B => Encoding::Binary,
                };
                (number, FieldSpec::new(number, kind, encoding, content))
            })
            .collect();
        Dialect {
            mti_encoding: mti,
            length_encoding: len,
            fields,
        }
    }

    /// The spec of field `number`, if the dialect has it.
    pub fn field(&self, number: u8) -> Option<&FieldSpec> {
        self.fields.get(&number)
    }

    /// All specs, by field number.
    pub fn fields(&self) -> impl Iterator<Item = &FieldSpec> {
        self.fields.values()
    }

    /// MTI encoding (ASCII or BCD).
    pub fn mti_encoding(&self) -> Encoding {
        self.mti_encoding
    }

    /// Length-prefix encoding.
    pub fn length_encoding(&self) -> Encoding {
        self.length_encoding
    }
}

impl TryFrom<DialectConfig> for Dialect {
    type Error = DialectError;
    fn try_from(c: DialectConfig) -> Result<Self, Self::Error> {
        Dialect::new(c.mti_encoding, c.length_encoding, c.fields)
    }
}

impl From<Dialect> for DialectConfig {
    fn from(d: Dialect) -> Self {
        DialectConfig {
            mti_encoding: d.mti_encoding,
            length_encoding: d.length_encoding,
            fields: d.fields.into_values().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tables_are_valid() {
        for d in [Dialect::default_pos(), Dialect::default_pos_bcd()] {
            let again = Dialect::new(d.mti_encoding, d.length_encoding, d.fields().copied());
            assert_eq!(again.as_ref(), Ok(&d));
        }
    }

    #[test]
    fn rejects_bad_tables() {
        let f = |n, k, e, c| FieldSpec::new(n, k, e, c);
        use Content::*;
        use Encoding::*;
        use LengthKind::*;
        let new = |specs: Vec<FieldSpec>| Dialect::new(Ascii, Ascii, specs);
        assert_eq!(
            new(vec![f(1, Fixed(8), Binary, B)]),
            Err(DialectError::BadNumber(1))
        );
        assert_eq!(
            new(vec![f(129, Fixed(8), Binary, B)]),
            Err(DialectError::BadNumber(129))
        );
        assert_eq!(
            new(vec![f(3, Fixed(6), Ascii, N), f(3, Fixed(6), Ascii, N)]),
            Err(DialectError::Duplicate(3))
        );
        assert_eq!(
            new(vec![f(2, LlVar(100), Ascii, N)]),
            Err(DialectError::BadLength { field: 2, len: 100 })
        );
        assert_eq!(
            new(vec![f(3, Fixed(0), Ascii, N)]),
            Err(DialectError::BadLength { field: 3, len: 0 })
        );
        assert_eq!(
            new(vec![f(41, Fixed(8), Bcd, Ans)]),
            Err(DialectError::BadEncoding(41))
        );
        assert_eq!(
            new(vec![f(3, Fixed(6), Binary, N)]),
            Err(DialectError::BadEncoding(3))
        );
        assert_eq!(
            Dialect::new(Binary, Ascii, []),
            Err(DialectError::BadMtiEncoding)
        );
    }
}
