//! Text to printer bytes through real code-page tables.
//!
//! Receipt printers print bytes, not Unicode: each byte above 0x7F means whatever the
//! selected character code table (ESC t) says, and in Chinese mode (FS &) pairs and
//! quadruples of bytes are GB18030 characters. This module maps text to those bytes:
//!
//! - [`CodePage::Cp437`]: the original IBM PC page (box drawing, `£`, no euro);
//! - [`CodePage::Cp858`]: CP850 (Western European) with the euro sign at 0xD5;
//! - [`CodePage::Cp1252`]: Windows Western European, where a profile has it (the table
//!   comes from `encoding_rs`);
//! - [`CodePage::Gb18030`]: Chinese, through `encoding_rs`; printed in Chinese mode.
//!
//! ## Rules every encoding here follows
//!
//! - A character the page lacks becomes the visible replacement byte `?` and is listed in
//!   [`Encoded::replaced`]; nothing is dropped silently.
//! - Control characters other than `'\n'` (C0 controls, DEL, C1 controls) are replaced the
//!   same way: in the printer they would be commands (ESC, GS, DLE ...).
//! - So the bytes of a text never contain 0x00-0x1F or 0x7F, except 0x0A for `'\n'`. For
//!   GB18030 the multi-byte sequences have lead bytes 0x81-0xFE and trail bytes 0x30-0x39,
//!   0x40-0x7E or 0x80-0xFE, so they cannot contain a control byte either.
//!
//! ```
//! use pos_escpos::codepage::{self, CodePage};
//!
//! let e = codepage::encode("5 €", CodePage::Cp858);
//! assert_eq!(e.bytes, b"5 \xD5");
//! let e = codepage::encode("5 €", CodePage::Cp437);
//! assert_eq!(e.bytes, b"5 ?");
//! assert_eq!(e.replaced, vec!['€']);
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use encoding_rs::{EncoderResult, GB18030, WINDOWS_1252};
use serde::{Deserialize, Serialize};

/// The byte printed in place of a character the code page cannot show.
pub const REPLACEMENT_BYTE: u8 = b'?';

/// A character encoding the printer understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodePage {
    /// IBM PC code page 437 (USA, Standard Europe): box drawing, `£`, no euro.
    Cp437,
    /// Code page 858: CP850 (Multilingual Latin 1) with `€` at 0xD5 in place of `ı`.
    Cp858,
    /// Windows-1252 (Western European).
    Cp1252,
    /// GB18030 (Chinese), printed in the printer's Chinese character mode (FS &).
    Gb18030,
}

impl CodePage {
    /// Every code page, in declaration order.
    pub const ALL: &'static [CodePage] = &[
        CodePage::Cp437,
        CodePage::Cp858,
        CodePage::Cp1252,
        CodePage::Gb18030,
    ];

    /// The lower-case name used in profiles and logs: `cp437`, `cp858`, `cp1252`, `gb18030`.
    pub const fn name(self) -> &'static str {
        match self {
            CodePage::Cp437 => "cp437",
            CodePage::Cp858 => "cp858",
            CodePage::Cp1252 => "cp1252",
            CodePage::Gb18030 => "gb18030",
        }
    }

    /// Whether this is a multi-byte page printed in Chinese character mode (FS &) rather
    /// than a single-byte table selected with ESC t.
    pub const fn is_multibyte(self) -> bool {
        matches!(self, CodePage::Gb18030)
    }

    /// The characters of bytes 0x80-0xFF for single-byte pages (`None` for GB18030).
    /// Entries the page leaves undefined are `'\u{FFFD}'`.
    pub fn high_table(self) -> Option<&'static [char; 128]> {
        match self {
            CodePage::Cp437 => Some(&CP437_HIGH),
            CodePage::Cp858 => Some(&CP858_HIGH),
            CodePage::Cp1252 => Some(cp1252_high()),
            CodePage::Gb18030 => None,
        }
    }
}

impl fmt::Display for CodePage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A code-page name that is not one of `cp437`, `cp858`, `cp1252`, `gb18030`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown code page {0:?} (known: cp437, cp858, cp1252, gb18030)")]
pub struct UnknownCodePage(pub String);

impl FromStr for CodePage {
    type Err = UnknownCodePage;

    /// Parses the lower-case names (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CodePage::ALL
            .iter()
            .copied()
            .find(|cp| cp.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownCodePage(s.to_owned()))
    }
}

/// Text encoded for one code page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Encoded {
    /// The printer bytes. Never contains 0x00-0x1F or 0x7F except 0x0A for `'\n'`.
    pub bytes: Vec<u8>,
    /// Each character that was printed as [`REPLACEMENT_BYTE`], in order of appearance
    /// (one entry per occurrence).
    pub replaced: Vec<char>,
}

/// CP437 bytes 0x80-0xFF.
const CP437_HIGH: [char; 128] = [
    // 0x80
    'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å',
    // 0x90
    'É', 'æ', 'Æ', 'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', '¢', '£', '¥', '₧', 'ƒ',
    // 0xA0
    'á', 'í', 'ó', 'ú', 'ñ', 'Ñ', 'ª', 'º', '¿', '⌐', '¬', '½', '¼', '¡', '«', '»',
    // 0xB0
    '░', '▒', '▓', '│', '┤', '╡', '╢', '╖', '╕', '╣', '║', '╗', '╝', '╜', '╛', '┐',
    // 0xC0
    '└', '┴', '┬', '├', '─', '┼', '╞', '╟', '╚', '╔', '╩', '╦', '╠', '═', '╬', '╧',
    // 0xD0
    '╨', '╤', '╥', '╙', '╘', '╒', '╓', '╫', '╪', '┘', '┌', '█', '▄', '▌', '▐', '▀',
    // 0xE0
    'α', 'ß', 'Γ', 'π', 'Σ', 'σ', 'µ', 'τ', 'Φ', 'Θ', 'Ω', 'δ', '∞', 'φ', 'ε', '∩',
    // 0xF0
    '≡', '±', '≥', '≤', '⌠', '⌡', '÷', '≈', '°', '∙', '·', '√', 'ⁿ', '²', '■', '\u{A0}',
];

/// CP858 bytes 0x80-0xFF (CP850 with the euro at 0xD5).
const CP858_HIGH: [char; 128] = [
    // 0x80
    'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å',
    // 0x90
    'É', 'æ', 'Æ', 'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', 'ø', '£', 'Ø', '×', 'ƒ',
    // 0xA0
    'á', 'í', 'ó', 'ú', 'ñ', 'Ñ', 'ª', 'º', '¿', '®', '¬', '½', '¼', '¡', '«', '»',
    // 0xB0
    '░', '▒', '▓', '│', '┤', 'Á', 'Â', 'À', '©', '╣', '║', '╗', '╝', '¢', '¥', '┐',
    // 0xC0
    '└', '┴', '┬', '├', '─', '┼', 'ã', 'Ã', '╚', '╔', '╩', '╦', '╠', '═', '╬', '¤',
    // 0xD0
    'ð', 'Ð', 'Ê', 'Ë', 'È', '€', 'Í', 'Î', 'Ï', '┘', '┌', '█', '▄', '¦', 'Ì', '▀',
    // 0xE0
    'Ó', 'ß', 'Ô', 'Ò', 'õ', 'Õ', 'µ', 'þ', 'Þ', 'Ú', 'Û', 'Ù', 'ý', 'Ý', '¯', '´',
    // 0xF0
    '\u{AD}', '±', '‗', '¾', '¶', '§', '÷', '¸', '°', '¨', '·', '¹', '³', '²', '■', '\u{A0}',
];

/// Windows-1252 bytes 0x80-0xFF, taken from encoding_rs once. The five bytes the page
/// leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D; the WHATWG table maps them to C1
/// controls) are `'\u{FFFD}'`, so no text ever encodes to them.
fn cp1252_high() -> &'static [char; 128] {
    static TABLE: OnceLock<[char; 128]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = ['\u{FFFD}'; 128];
        for (slot, byte) in table.iter_mut().zip(0x80u8..=0xFF) {
            let input = [byte];
            let (text, _had_errors) = WINDOWS_1252.decode_without_bom_handling(&input);
            let mut chars = text.chars();
            if let (Some(ch), None) = (chars.next(), chars.next()) {
                if !ch.is_control() {
                    *slot = ch;
                }
            }
        }
        table
    })
}

/// Whether `ch` must never reach the printer as itself: every control character except
/// `'\n'` (C0, DEL and C1 controls).
fn is_forbidden_control(ch: char) -> bool {
    ch != '\n' && ch.is_control()
}

/// Encodes `text` for `cp`. Characters the page lacks, and control characters other than
/// `'\n'`, become [`REPLACEMENT_BYTE`] and are listed in [`Encoded::replaced`].
pub fn encode(text: &str, cp: CodePage) -> Encoded {
    let mut out = Encoded {
        bytes: Vec::with_capacity(text.len()),
        replaced: Vec::new(),
    };
    encode_into(text, cp, &mut out);
    out
}

/// Like [`encode`], appending to `out`.
pub fn encode_into(text: &str, cp: CodePage, out: &mut Encoded) {
    // Fast path: printable ASCII (and '\n') is the same byte on every page we know.
    if text
        .bytes()
        .all(|b| b == b'\n' || (0x20..0x7F).contains(&b))
    {
        out.bytes.extend_from_slice(text.as_bytes());
        return;
    }
    match cp.high_table() {
        Some(table) => encode_single_byte(text, table, out),
        None => encode_gb18030(text, out),
    }
}

fn encode_single_byte(text: &str, table: &[char; 128], out: &mut Encoded) {
    for ch in text.chars() {
        let byte = if ch == '\n' || (' '..='~').contains(&ch) {
            // ASCII: the char is below 0x80, so the cast keeps it exact.
            Some(ch as u8)
        } else if is_forbidden_control(ch) || ch == '\u{FFFD}' {
            None
        } else {
            table
                .iter()
                .position(|&c| c == ch)
                .and_then(|i| u8::try_from(0x80 + i).ok())
        };
        match byte {
            Some(b) => out.bytes.push(b),
            None => {
                out.bytes.push(REPLACEMENT_BYTE);
                out.replaced.push(ch);
            }
        }
    }
}

fn encode_gb18030(text: &str, out: &mut Encoded) {
    let mut encoder = GB18030.new_encoder();
    let mut buf = [0u8; 64];
    // Split into runs without forbidden controls; each run goes through encoding_rs.
    let mut rest = text;
    while !rest.is_empty() {
        let run_end = rest
            .char_indices()
            .find(|&(_, c)| is_forbidden_control(c))
            .map_or(rest.len(), |(i, _)| i);
        let (run, tail) = rest.split_at(run_end);
        let mut pending = run;
        while !pending.is_empty() {
            let (result, read, written) =
                encoder.encode_from_utf8_without_replacement(pending, &mut buf, false);
            out.bytes
                .extend_from_slice(buf.get(..written).unwrap_or_default());
            pending = pending.get(read..).unwrap_or_default();
            match result {
                EncoderResult::InputEmpty | EncoderResult::OutputFull => {}
                EncoderResult::Unmappable(ch) => {
                    out.bytes.push(REPLACEMENT_BYTE);
                    out.replaced.push(ch);
                }
            }
        }
        // The control character (if any) that ended the run.
        let mut tail_chars = tail.chars();
        if let Some(ch) = tail_chars.next() {
            out.bytes.push(REPLACEMENT_BYTE);
            out.replaced.push(ch);
        }
        rest = tail_chars.as_str();
    }
}

/// Decodes printer bytes of `cp` to text (for the virtual printer and tests). `0x0A`
/// becomes `'\n'`; other control bytes and undefined bytes become `'\u{FFFD}'`.
pub fn decode(bytes: &[u8], cp: CodePage) -> String {
    match cp.high_table() {
        Some(table) => bytes
            .iter()
            .map(|&b| match b {
                b'\n' => '\n',
                0x20..=0x7E => char::from(b),
                0x80..=0xFF => table
                    .get(usize::from(b - 0x80))
                    .copied()
                    .unwrap_or('\u{FFFD}'),
                _ => '\u{FFFD}',
            })
            .collect(),
        None => {
            let (text, _had_errors) = GB18030.decode_without_bom_handling(bytes);
            text.chars()
                .map(|c| {
                    if is_forbidden_control(c) {
                        '\u{FFFD}'
                    } else {
                        c
                    }
                })
                .collect()
        }
    }
}

/// Encodes `text` with the best of `available`: the first page that needs no replacement,
/// else the one with the fewest replacements (the earliest on a tie). With an empty list,
/// CP437 is used. Returns the page and the encoding.
pub fn encode_best(text: &str, available: &[CodePage]) -> (CodePage, Encoded) {
    let mut best: Option<(CodePage, Encoded)> = None;
    for &cp in available {
        let e = encode(text, cp);
        if e.replaced.is_empty() {
            return (cp, e);
        }
        if best
            .as_ref()
            .is_none_or(|(_, b)| e.replaced.len() < b.replaced.len())
        {
            best = Some((cp, e));
        }
    }
    best.unwrap_or_else(|| (CodePage::Cp437, encode(text, CodePage::Cp437)))
}

/// The page of `available` that prints `text` best: the first with no replacement, else
/// the one with the fewest replacements (the earliest on a tie); CP437 for an empty list.
pub fn best_for(text: &str, available: &[CodePage]) -> CodePage {
    encode_best(text, available).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_no_duplicates_and_no_ascii_or_controls() {
        for cp in [CodePage::Cp437, CodePage::Cp858, CodePage::Cp1252] {
            let table = cp.high_table().unwrap();
            for (i, &c) in table.iter().enumerate() {
                if c == '\u{FFFD}' {
                    continue;
                }
                assert!(!c.is_ascii(), "{cp} 0x{:02X}", 0x80 + i);
                assert!(!c.is_control(), "{cp} 0x{:02X}", 0x80 + i);
                assert_eq!(
                    table.iter().filter(|&&d| d == c).count(),
                    1,
                    "{cp}: {c:?} twice"
                );
            }
        }
    }

    #[test]
    fn cp1252_table_from_encoding_rs() {
        let t = CodePage::Cp1252.high_table().unwrap();
        assert_eq!(t[0x80 - 0x80], '€');
        assert_eq!(t[0x81 - 0x80], '\u{FFFD}');
        assert_eq!(t[0x9C - 0x80], 'œ');
        assert_eq!(t[0xFF - 0x80], 'ÿ');
        assert_eq!(t.iter().filter(|&&c| c == '\u{FFFD}').count(), 5);
    }

    #[test]
    fn every_single_byte_table_round_trips() {
        for cp in [CodePage::Cp437, CodePage::Cp858, CodePage::Cp1252] {
            for (i, &c) in cp.high_table().unwrap().iter().enumerate() {
                if c == '\u{FFFD}' {
                    continue;
                }
                let e = encode(&c.to_string(), cp);
                assert_eq!(e.bytes, vec![u8::try_from(0x80 + i).unwrap()], "{cp} {c:?}");
                assert_eq!(decode(&e.bytes, cp), c.to_string());
            }
        }
    }

    #[test]
    fn gb18030_controls_split_runs() {
        let e = encode("收\u{1B}据\t", CodePage::Gb18030);
        assert_eq!(e.replaced, vec!['\u{1B}', '\t']);
        assert_eq!(decode(&e.bytes, CodePage::Gb18030), "收?据?");
    }
}
