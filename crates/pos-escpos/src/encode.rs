//! A pos-hal receipt [`Document`] to ESC/POS bytes for one printer [`Profile`].
//!
//! [`encode_document`] checks everything the printer would otherwise get wrong quietly
//! (barcode data, QR length, image width, a cut without a cutter) and returns an
//! [`EncodeError`] instead of bytes that print nothing or print garbage. What it produces:
//!
//! - starts by resetting every style it uses (ESC E, ESC -, GS !, ESC M, ESC a, GS B,
//!   ESC 2, and FS . on printers with Chinese mode) and ends by resetting the styles again,
//!   so a job neither inherits nor leaves behind state; it never sends ESC @ or any
//!   status or real-time command (the driver owns those);
//! - text: the code page is chosen per block among the profile's pages
//!   ([`codepage::encode_best`]), ESC t is sent only when a
//!   block needs a table other than the current one, GB18030 blocks are wrapped in FS & ...
//!   FS .; characters no page has print as `?` and are listed in [`EncodedJob::replaced`];
//! - barcodes: GS h, GS w, GS H, GS f, then GS k function B; QR codes: GS ( k model 2,
//!   module size, error correction, store, print; images: GS v 0 in bands of
//!   [`RASTER_BAND_ROWS`] rows; each aligned with ESC a.
//!
//! **Degrading, never garbage.** Only commands the profile says the printer has
//! ([`Support::Yes`](crate::profile::Support)) are sent; what is missing or unknown is
//! rendered with what the printer has, and listed in [`EncodedJob::substitutions`]: a QR code
//! without GS ( k becomes an image ([`qr_bitmap`]); an image without GS v 0 goes through
//! ESC * or GS ( L, or is left out; a barcode without GS k prints as its text; a cut the
//! printer cannot make becomes the other cut or a paper feed; a drawer kick without ESC p is
//! left out. Text goes to the page with the fewest replacements; Chinese characters on a
//! printer without a Chinese font are refused ([`EncodeError::NoChineseFont`]) rather than
//! printed as a row of `?`.
//!
//! ```
//! use pos_escpos::{encode::encode_document, profile::Profile};
//! use pos_hal::{CutKind, Document};
//!
//! let profile = Profile::builtin("epson-tm-t20").expect("built in");
//! let mut doc = Document::new();
//! doc.text("Espresso 2.50 €").cut(CutKind::FeedAndPartial);
//! let job = encode_document(&doc, &profile).expect("valid document");
//! assert!(job.replaced.is_empty(), "CP858 has the euro");
//! assert_eq!(job.block_offsets.len(), 2);
//! ```

use pos_hal::{
    Align, Barcode, Bitmap, Block, CutKind, Document, DrawerPin, Fault, FaultKind, Font,
    HriPosition, Image, ImageConversion, QrCode, QrErrorCorrection, Symbology, TextStyle,
    Underline,
};

use crate::codepage::{self, CodePage};
use crate::command::{Command, LF};
use crate::profile::{Profile, ProfileError};

/// Rows per GS v 0 command: larger images are sent as several bands.
pub const RASTER_BAND_ROWS: usize = 128;

/// Drawer-kick pulse on time in ESC p units of 2 ms (50 ms).
pub const DRAWER_PULSE_ON: u8 = 25;

/// Drawer-kick pulse off time in ESC p units of 2 ms (500 ms).
pub const DRAWER_PULSE_OFF: u8 = 250;

/// The most data bytes one GS k function B command carries (n is one byte).
pub const MAX_BARCODE_DATA: usize = 255;

/// Paper fed beyond the cutting position before a feed-and-cut (GS V 65/66 n), in
/// vertical motion units: a small margin below the last line.
pub const CUT_FEED: u8 = 3;

/// A document encoded for one printer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EncodedJob {
    /// The bytes to send.
    pub bytes: Vec<u8>,
    /// The byte offset in [`bytes`](EncodedJob::bytes) where each document block starts
    /// (one entry per block, in order), so a driver can tell how far a job got.
    pub block_offsets: Vec<usize>,
    /// Text lines printed by text blocks (a block of `n` newline-separated parts prints
    /// `n` lines, like [`Document::text_lines`]; separators are not counted).
    pub text_lines: usize,
    /// Characters printed as `?` because no code page of the printer has them (one entry
    /// per occurrence, in document order; a separator's character once).
    pub replaced: Vec<char>,
    /// What was rendered differently from what the document asked, because the printer
    /// (its profile) lacks the command: a QR code as an image, a cut as a paper feed, ...
    /// In document order. Characters replaced by `?` are in
    /// [`replaced`](EncodedJob::replaced), not here.
    pub substitutions: Vec<Substitution>,
}

/// Something printed with what the printer has instead of what the document asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Substitution {
    /// A QR code printed as a raster image (the printer has no GS ( k).
    QrAsImage {
        /// The block.
        block: usize,
        /// The image command used (`GS v 0`, `ESC *` or `GS ( L`).
        via: &'static str,
    },
    /// An image printed with another graphics command than GS v 0.
    ImageVia {
        /// The block.
        block: usize,
        /// The command used (`ESC *` or `GS ( L`).
        via: &'static str,
    },
    /// An image left out: the printer has no graphics command known to work.
    ImageOmitted {
        /// The block.
        block: usize,
    },
    /// A barcode printed as its text (the printer has no GS k).
    BarcodeAsText {
        /// The block.
        block: usize,
    },
    /// A cut of one kind made as the other (the printer has only full or only partial cut).
    CutKind {
        /// The block.
        block: usize,
        /// What was asked.
        asked: CutKind,
        /// What was sent.
        sent: CutKind,
    },
    /// A cut replaced by a paper feed to the tear bar (no cutter, or not known to have one).
    CutAsFeed {
        /// The block.
        block: usize,
    },
    /// A drawer kick left out: the printer's profile has no (known) ESC p.
    DrawerKickOmitted {
        /// The block.
        block: usize,
    },
}

impl Substitution {
    /// The block it happened in.
    pub fn block(&self) -> usize {
        match self {
            Substitution::QrAsImage { block, .. }
            | Substitution::ImageVia { block, .. }
            | Substitution::ImageOmitted { block }
            | Substitution::BarcodeAsText { block }
            | Substitution::CutKind { block, .. }
            | Substitution::CutAsFeed { block }
            | Substitution::DrawerKickOmitted { block } => *block,
        }
    }
}

impl std::fmt::Display for Substitution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Substitution::QrAsImage { block, via } => {
                write!(
                    f,
                    "block {block}: QR code printed as an image ({via}; no GS ( k)"
                )
            }
            Substitution::ImageVia { block, via } => {
                write!(f, "block {block}: image printed with {via} (no GS v 0)")
            }
            Substitution::ImageOmitted { block } => {
                write!(
                    f,
                    "block {block}: image left out (no graphics command known to work)"
                )
            }
            Substitution::BarcodeAsText { block } => {
                write!(f, "block {block}: barcode printed as text (no GS k)")
            }
            Substitution::CutKind { block, asked, sent } => {
                write!(f, "block {block}: {asked:?} cut made as {sent:?}")
            }
            Substitution::CutAsFeed { block } => {
                write!(
                    f,
                    "block {block}: cut replaced by a paper feed (no cutter known)"
                )
            }
            Substitution::DrawerKickOmitted { block } => {
                write!(f, "block {block}: drawer kick left out (no ESC p known)")
            }
        }
    }
}

/// Why barcode data cannot be printed in its symbology.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BarcodeProblem {
    /// No data.
    #[error("no data")]
    Empty,
    /// The wrong number of characters for the symbology.
    #[error("{len} characters, needs {expected}")]
    Length {
        /// The data length.
        len: usize,
        /// What the symbology needs, e.g. "12 or 13 digits".
        expected: &'static str,
    },
    /// More data than one GS k command carries.
    #[error("{len} bytes once encoded, the printer takes at most {max}")]
    TooLong {
        /// The encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A character the symbology cannot encode.
    #[error("{ch:?} at position {position} is not allowed (allowed: {allowed})")]
    Character {
        /// The character.
        ch: char,
        /// Its position (in characters, from 0).
        position: usize,
        /// The allowed set.
        allowed: &'static str,
    },
    /// A lower-case letter in CODE39, which only has upper case (it is not silently
    /// upper-cased: the scanned value would differ from the data).
    #[error("lower-case {ch:?} at position {position}: CODE39 has upper-case letters only")]
    LowerCase {
        /// The character.
        ch: char,
        /// Its position.
        position: usize,
    },
    /// The given check digit is wrong.
    #[error("check digit is {found}, should be {expected}")]
    CheckDigit {
        /// The correct digit.
        expected: char,
        /// The digit given.
        found: char,
    },
    /// ITF needs an even number of digits.
    #[error("{len} digits: ITF needs an even number")]
    OddLength {
        /// The number of digits.
        len: usize,
    },
}

/// Why a document cannot be encoded for a profile. Every variant is bad input
/// ([`FaultKind::InvalidInput`]); block numbers count from 0.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// Barcode data the symbology cannot encode.
    #[error("block {block}: invalid {} barcode data: {problem}", symbology_name(*symbology))]
    Barcode {
        /// The block.
        block: usize,
        /// The symbology.
        symbology: Symbology,
        /// What is wrong.
        problem: BarcodeProblem,
    },
    /// The barcode would be wider than the paper (estimated with the narrowest wide bars
    /// the symbology allows, so a barcode that fits is never refused).
    #[error("block {block}: barcode needs at least {dots} dots, the printer has {max}")]
    BarcodeTooWide {
        /// The block.
        block: usize,
        /// The estimated width.
        dots: u32,
        /// The printer's dots per line.
        max: u16,
    },
    /// QR data is empty.
    #[error("block {block}: QR code without data")]
    QrEmpty {
        /// The block.
        block: usize,
    },
    /// QR data longer than a QR code (version 40) holds at this error-correction level.
    #[error(
        "block {block}: QR data of {len} bytes exceeds the {max} a QR code holds at level {level:?}"
    )]
    QrTooLong {
        /// The block.
        block: usize,
        /// The data length.
        len: usize,
        /// The capacity.
        max: usize,
        /// The error-correction level.
        level: QrErrorCorrection,
    },
    /// An image wider than the printer's dots per line.
    #[error("block {block}: image is {width} dots wide, the printer has {max}")]
    ImageTooWide {
        /// The block.
        block: usize,
        /// The image width.
        width: u32,
        /// The printer's dots per line.
        max: u16,
    },
    /// An image with no pixels.
    #[error("block {block}: image has no pixels ({width}x{height})")]
    ImageEmpty {
        /// The block.
        block: usize,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// A cut on a printer without a cutter.
    #[error("block {block}: cut requested but printer profile {profile} has no cutter")]
    NoCutter {
        /// The block.
        block: usize,
        /// The profile name.
        profile: String,
    },
    /// An option value out of its range (text size, barcode height or module width, QR
    /// module size).
    #[error("block {block}: {option} {value} is out of range ({allowed})")]
    InvalidOption {
        /// The block.
        block: usize,
        /// The option.
        option: &'static str,
        /// The value given.
        value: u32,
        /// The allowed values.
        allowed: &'static str,
    },
    /// Chinese (Han) characters on a printer without a Chinese font: printed they would be
    /// a line of `?`, so the document is refused.
    #[error(
        "block {block}: text has Chinese characters (first {ch:?}) but printer profile {profile} has no Chinese font"
    )]
    NoChineseFont {
        /// The block.
        block: usize,
        /// The first Han character.
        ch: char,
        /// The profile name.
        profile: String,
    },
    /// A QR code on a printer with neither GS ( k nor any graphics command known to work.
    #[error(
        "block {block}: printer profile {profile} can print a QR code neither as a symbol (GS ( k) nor as an image"
    )]
    QrUnsupported {
        /// The block.
        block: usize,
        /// The profile name.
        profile: String,
    },
    /// The profile itself is invalid.
    #[error(transparent)]
    Profile(#[from] ProfileError),
}

impl Fault for EncodeError {
    fn kind(&self) -> FaultKind {
        FaultKind::InvalidInput
    }
}

fn symbology_name(s: Symbology) -> &'static str {
    match s {
        Symbology::Code128 => "CODE128",
        Symbology::Ean13 => "EAN-13",
        Symbology::UpcA => "UPC-A",
        Symbology::Code39 => "CODE39",
        Symbology::Itf => "ITF",
    }
}

/// The GS1 (EAN/UPC) mod-10 check digit of `digits` (the data without its check digit):
/// weights 3 and 1 alternate from the rightmost digit. `None` if a character is not a
/// digit or `digits` is empty.
///
/// ```
/// assert_eq!(pos_escpos::encode::gs1_check_digit("400638133393"), Some('1'));
/// ```
pub fn gs1_check_digit(digits: &str) -> Option<char> {
    if digits.is_empty() {
        return None;
    }
    let mut sum = 0u32;
    for (i, ch) in digits.chars().rev().enumerate() {
        let d = ch.to_digit(10)?;
        sum += if i % 2 == 0 { 3 * d } else { d };
    }
    char::from_digit((10 - sum % 10) % 10, 10)
}

fn check_digits(data: &str, allowed: &'static str) -> Result<(), BarcodeProblem> {
    match data.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
        Some((position, ch)) => Err(BarcodeProblem::Character {
            ch,
            position,
            allowed,
        }),
        None => Ok(()),
    }
}

/// Data with a GS1 check digit: `short` data digits, or `short + 1` with a correct check
/// digit. Returns the full data with the check digit.
fn gs1_data(data: &str, short: usize, expected: &'static str) -> Result<Vec<u8>, BarcodeProblem> {
    check_digits(data, "digits 0-9")?;
    let len = data.len();
    if len != short && len != short + 1 {
        return Err(BarcodeProblem::Length { len, expected });
    }
    let body = data.get(..short).unwrap_or(data);
    let check = gs1_check_digit(body).ok_or(BarcodeProblem::Empty)?;
    if let Some(found) = data.chars().nth(short) {
        if found != check {
            return Err(BarcodeProblem::CheckDigit {
                expected: check,
                found,
            });
        }
    }
    let mut out = body.as_bytes().to_vec();
    out.push(u8::try_from(check).unwrap_or(b'0'));
    Ok(out)
}

const CODE39_ALLOWED: &str = "0-9 A-Z space $ % + - . /";

/// The GS k function B system number and data bytes for `data` in `symbology`, after
/// checking it:
///
/// - EAN-13 (m = 67): 12 digits, or 13 with a correct check digit; sent as 13 digits.
/// - UPC-A (m = 65): 11 digits, or 12 with a correct check digit; sent as 12 digits.
/// - CODE39 (m = 69): `0-9 A-Z space $ % + - . /`; lower case is an error; the printer
///   adds the `*` start/stop characters, so `*` is not allowed in the data.
/// - ITF (m = 70): an even number of digits.
/// - CODE128 (m = 73): ASCII 0x00-0x7F; sent as code set B (`{B`), switching to code set A
///   (`{A`) for control characters, with `{` written as `{{`.
///
/// Every symbology: at most [`MAX_BARCODE_DATA`] bytes once encoded.
///
/// # Errors
///
/// A [`BarcodeProblem`] saying what is wrong.
pub fn barcode_data(symbology: Symbology, data: &str) -> Result<(u8, Vec<u8>), BarcodeProblem> {
    if data.is_empty() {
        return Err(BarcodeProblem::Empty);
    }
    let (system, bytes) = match symbology {
        Symbology::Ean13 => (67, gs1_data(data, 12, "12 or 13 digits")?),
        Symbology::UpcA => (65, gs1_data(data, 11, "11 or 12 digits")?),
        Symbology::Code39 => {
            for (position, ch) in data.chars().enumerate() {
                if ch.is_ascii_lowercase() {
                    return Err(BarcodeProblem::LowerCase { ch, position });
                }
                let ok = ch.is_ascii_digit()
                    || ch.is_ascii_uppercase()
                    || matches!(ch, ' ' | '$' | '%' | '+' | '-' | '.' | '/');
                if !ok {
                    return Err(BarcodeProblem::Character {
                        ch,
                        position,
                        allowed: CODE39_ALLOWED,
                    });
                }
            }
            (69, data.as_bytes().to_vec())
        }
        Symbology::Itf => {
            check_digits(data, "digits 0-9")?;
            if data.len() % 2 != 0 {
                return Err(BarcodeProblem::OddLength { len: data.len() });
            }
            (70, data.as_bytes().to_vec())
        }
        Symbology::Code128 => (73, code128_data(data)?),
    };
    if bytes.len() > MAX_BARCODE_DATA {
        return Err(BarcodeProblem::TooLong {
            len: bytes.len(),
            max: MAX_BARCODE_DATA,
        });
    }
    Ok((system, bytes))
}

/// CODE128 data in Epson's function-B form: code-set selectors `{A`/`{B`, `{{` for `{`.
fn code128_data(data: &str) -> Result<Vec<u8>, BarcodeProblem> {
    #[derive(PartialEq, Clone, Copy)]
    enum Set {
        A,
        B,
    }
    let mut out = Vec::with_capacity(data.len() + 2);
    let mut set: Option<Set> = None;
    // Start in the set the first character that needs one asks for (B by default).
    let first_needed = data.bytes().find_map(|b| match b {
        0x00..=0x1F => Some(Set::A),
        0x60..=0x7F => Some(Set::B),
        _ => None,
    });
    for (position, ch) in data.chars().enumerate() {
        let byte = u8::try_from(ch)
            .ok()
            .filter(u8::is_ascii)
            .ok_or(BarcodeProblem::Character {
                ch,
                position,
                allowed: "ASCII 0x00-0x7F",
            })?;
        let needed = match byte {
            0x00..=0x1F => Some(Set::A),
            0x60..=0x7F => Some(Set::B),
            _ => None,
        };
        let want = needed.or(set).or(first_needed).unwrap_or(Set::B);
        if set != Some(want) {
            out.extend_from_slice(if want == Set::A { b"{A" } else { b"{B" });
            set = Some(want);
        }
        if byte == b'{' {
            out.extend_from_slice(b"{{");
        } else {
            out.push(byte);
        }
    }
    Ok(out)
}

/// Lower bound of a barcode's width in modules (narrow-bar widths), using the narrowest
/// wide:narrow ratio (2:1) for CODE39 and ITF, so a barcode that fits is never refused.
fn barcode_min_modules(symbology: Symbology, payload: &[u8]) -> u32 {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    match symbology {
        Symbology::Ean13 | Symbology::UpcA => 95,
        // Start, data symbols (a `{x` pair is one symbol), check: 11 modules each; stop 13.
        Symbology::Code128 => {
            let mut symbols = 0u32;
            let mut i = 0;
            while i < payload.len() {
                i += if payload.get(i) == Some(&b'{') { 2 } else { 1 };
                symbols += 1;
            }
            11 * (symbols + 1) + 13
        }
        // Each character (with the two `*`) 12 modules plus a 1-module gap between them.
        Symbology::Code39 => 13 * (len + 2) - 1,
        // Each digit 7 modules; start and stop patterns 4 each.
        Symbology::Itf => 7 * len + 8,
    }
}

/// QR (version 40) capacity of `data` at `level`, in the densest single mode the data
/// allows (numeric, alphanumeric, or bytes).
pub fn qr_capacity(data: &[u8], level: QrErrorCorrection) -> usize {
    let numeric = data.iter().all(u8::is_ascii_digit);
    let alnum = data.iter().all(|b| {
        b.is_ascii_digit()
            || b.is_ascii_uppercase()
            || matches!(
                b,
                b' ' | b'$' | b'%' | b'*' | b'+' | b'-' | b'.' | b'/' | b':'
            )
    });
    let table: [usize; 4] = if numeric {
        [7089, 5596, 3993, 3057]
    } else if alnum {
        [4296, 3391, 2420, 1852]
    } else {
        [2953, 2331, 1663, 1273]
    };
    let i = match level {
        QrErrorCorrection::L => 0,
        QrErrorCorrection::M => 1,
        QrErrorCorrection::Q => 2,
        QrErrorCorrection::H => 3,
    };
    table.get(i).copied().unwrap_or(0)
}

/// A 1-bit raster: rows of `width_bytes` bytes, MSB = leftmost dot, 1 = black, the unused
/// bits at the end of each row 0 (white).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Raster {
    /// Width in dots.
    pub width: u32,
    /// Height in rows.
    pub height: u32,
    /// Bytes per row (`ceil(width / 8)`).
    pub width_bytes: usize,
    /// The rows.
    pub data: Vec<u8>,
}

/// Turns a greyscale bitmap into black and white dots.
///
/// - [`ImageConversion::Threshold(t)`](ImageConversion::Threshold): a pixel darker than
///   `t` (value `< t`) is black.
/// - [`ImageConversion::Dither`]: Floyd–Steinberg error diffusion, left to right, with
///   the threshold at 128 and the error shared 7/16 right, 3/16 below left, 5/16 below,
///   1/16 below right (integer arithmetic, truncating).
pub fn rasterize(bitmap: &Bitmap, conversion: ImageConversion) -> Raster {
    let width = bitmap.width();
    let height = bitmap.height();
    let (Ok(w), Ok(h)) = (usize::try_from(width), usize::try_from(height)) else {
        return Raster::default();
    };
    if w == 0 || h == 0 {
        return Raster {
            width,
            height,
            width_bytes: w.div_ceil(8),
            data: Vec::new(),
        };
    }
    let width_bytes = w.div_ceil(8);
    let mut data = vec![0u8; width_bytes * h];
    let mut set_black = |x: usize, y: usize| {
        if let Some(byte) = data.get_mut(y * width_bytes + x / 8) {
            *byte |= 0x80 >> (x % 8);
        }
    };
    match conversion {
        ImageConversion::Threshold(t) => {
            for (y, row) in bitmap.pixels().chunks(w).enumerate() {
                for (x, &p) in row.iter().enumerate() {
                    if p < t {
                        set_black(x, y);
                    }
                }
            }
        }
        ImageConversion::Dither => {
            let mut cur = vec![0i32; w];
            let mut next = vec![0i32; w];
            for (y, row) in bitmap.pixels().chunks(w).enumerate() {
                for (c, &p) in cur.iter_mut().zip(row) {
                    *c += i32::from(p);
                }
                for x in 0..w {
                    let old = cur.get(x).copied().unwrap_or(0);
                    let new = if old < 128 { 0 } else { 255 };
                    if new == 0 {
                        set_black(x, y);
                    }
                    let err = old - new;
                    if let Some(c) = cur.get_mut(x + 1) {
                        *c += err * 7 / 16;
                    }
                    if let Some(n) = x.checked_sub(1).and_then(|xl| next.get_mut(xl)) {
                        *n += err * 3 / 16;
                    }
                    if let Some(n) = next.get_mut(x) {
                        *n += err * 5 / 16;
                    }
                    if let Some(n) = next.get_mut(x + 1) {
                        *n += err / 16;
                    }
                }
                std::mem::swap(&mut cur, &mut next);
                next.iter_mut().for_each(|n| *n = 0);
            }
        }
    }
    Raster {
        width,
        height,
        width_bytes,
        data,
    }
}

/// What the printer is known to be set to while encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    bold: bool,
    underline: Underline,
    width: u8,
    height: u8,
    font: Font,
    align: Align,
    inverse: bool,
    /// The ESC t table last selected in this job (`None` until the first).
    code_table: Option<u8>,
}

impl State {
    fn defaults(code_table: Option<u8>) -> Self {
        let d = TextStyle::default();
        State {
            bold: d.bold,
            underline: d.underline,
            width: d.width,
            height: d.height,
            font: d.font,
            align: d.align,
            inverse: d.inverse,
            code_table,
        }
    }
}

fn align_byte(a: Align) -> u8 {
    match a {
        Align::Left => 0,
        Align::Center => 1,
        Align::Right => 2,
    }
}

fn underline_byte(u: Underline) -> u8 {
    match u {
        Underline::None => 0,
        Underline::Single => 1,
        Underline::Double => 2,
    }
}

fn font_byte(f: Font) -> u8 {
    match f {
        Font::A => 0,
        Font::B => 1,
    }
}

struct Encoder<'a> {
    profile: &'a Profile,
    pages: Vec<CodePage>,
    out: Vec<u8>,
    state: State,
    text_lines: usize,
    replaced: Vec<char>,
    substitutions: Vec<Substitution>,
}

/// Whether `ch` is a Han (Chinese) ideograph: the CJK Unified Ideographs blocks and the
/// compatibility ideographs.
pub fn is_han(ch: char) -> bool {
    matches!(ch,
        '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2EBEF}'
        | '\u{30000}'..='\u{3134F}')
}

/// Lines fed in place of a cut on a printer without a cutter: enough to bring the last
/// line past a tear bar.
pub const TEAR_FEED_LINES: u8 = 4;

/// How an image will be printed on a profile: the first graphics command it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageVia {
    Raster,
    Column,
    Graphics,
}

impl ImageVia {
    fn of(profile: &Profile) -> Option<ImageVia> {
        if profile.raster_image.is_yes() {
            Some(ImageVia::Raster)
        } else if profile.column_image.is_yes() {
            Some(ImageVia::Column)
        } else if profile.graphics.is_yes() {
            Some(ImageVia::Graphics)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            ImageVia::Raster => "GS v 0",
            ImageVia::Column => "ESC *",
            ImageVia::Graphics => "GS ( L",
        }
    }
}

/// A QR code as a greyscale bitmap (0 black, 255 white) with a 4-module quiet zone, each
/// module `module_size` dots square.
///
/// # Errors
///
/// `None` when the data does not fit a QR code at that level.
pub fn qr_bitmap(data: &[u8], level: QrErrorCorrection, module_size: u8) -> Option<Bitmap> {
    let ec = match level {
        QrErrorCorrection::L => qrcode::EcLevel::L,
        QrErrorCorrection::M => qrcode::EcLevel::M,
        QrErrorCorrection::Q => qrcode::EcLevel::Q,
        QrErrorCorrection::H => qrcode::EcLevel::H,
    };
    let code = qrcode::QrCode::with_error_correction_level(data, ec).ok()?;
    let modules = code.width();
    let colors = code.to_colors();
    let quiet = 4usize;
    let scale = usize::from(module_size.max(1));
    let side = (modules + 2 * quiet) * scale;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != qrcode::Color::Dark {
            continue;
        }
        let (mx, my) = (i % modules + quiet, i / modules + quiet);
        for dy in 0..scale {
            let row = (my * scale + dy) * side;
            for dx in 0..scale {
                if let Some(p) = pixels.get_mut(row + mx * scale + dx) {
                    *p = 0;
                }
            }
        }
    }
    let side = u32::try_from(side).ok()?;
    Bitmap::new(side, side, pixels)
}

impl Encoder<'_> {
    fn cmd(&mut self, c: &Command) {
        c.encode_into(&mut self.out);
    }

    /// Every style to its default, whatever the printer was set to.
    fn reset_styles(&mut self) {
        let d = State::defaults(self.state.code_table);
        for c in [
            Command::Emphasis(d.bold),
            Command::Underline(underline_byte(d.underline)),
            Command::CharacterSize {
                width: d.width,
                height: d.height,
            },
            Command::Font(font_byte(d.font)),
            Command::Justify(align_byte(d.align)),
            Command::Reverse(d.inverse),
        ] {
            self.cmd(&c);
        }
        if self.profile.chinese {
            self.cmd(&Command::ChineseMode(false));
        }
        self.state = d;
    }

    fn set_align(&mut self, align: Align) {
        if self.state.align != align {
            self.cmd(&Command::Justify(align_byte(align)));
            self.state.align = align;
        }
    }

    fn set_style(&mut self, s: &TextStyle) {
        self.set_align(s.align);
        if self.state.font != s.font {
            self.cmd(&Command::Font(font_byte(s.font)));
            self.state.font = s.font;
        }
        if (self.state.width, self.state.height) != (s.width, s.height) {
            self.cmd(&Command::CharacterSize {
                width: s.width,
                height: s.height,
            });
            self.state.width = s.width;
            self.state.height = s.height;
        }
        if self.state.bold != s.bold {
            self.cmd(&Command::Emphasis(s.bold));
            self.state.bold = s.bold;
        }
        if self.state.underline != s.underline {
            self.cmd(&Command::Underline(underline_byte(s.underline)));
            self.state.underline = s.underline;
        }
        if self.state.inverse != s.inverse {
            self.cmd(&Command::Reverse(s.inverse));
            self.state.inverse = s.inverse;
        }
    }

    /// Writes already-encoded text bytes (which may contain LF), in Chinese mode or
    /// with the right ESC t table as the page needs.
    fn emit_text(&mut self, page: CodePage, bytes: &[u8]) {
        let high = bytes.iter().any(|&b| b >= 0x80);
        let chinese = high && page.is_multibyte();
        if chinese {
            self.cmd(&Command::ChineseMode(true));
        } else if high {
            if let Some(n) = self.profile.code_page_number(page) {
                if self.state.code_table != Some(n) {
                    self.cmd(&Command::CodeTable(n));
                    self.state.code_table = Some(n);
                }
            }
        }
        self.out.extend_from_slice(bytes);
        self.out.push(LF);
        if chinese {
            self.cmd(&Command::ChineseMode(false));
        }
    }

    fn text(&mut self, block: usize, text: &str, style: &TextStyle) -> Result<(), EncodeError> {
        for (option, value) in [("text width", style.width), ("text height", style.height)] {
            if !(1..=8).contains(&value) {
                return Err(EncodeError::InvalidOption {
                    block,
                    option,
                    value: u32::from(value),
                    allowed: "1..=8",
                });
            }
        }
        if !self.profile.chinese {
            if let Some(ch) = text.chars().find(|&c| is_han(c)) {
                return Err(EncodeError::NoChineseFont {
                    block,
                    ch,
                    profile: self.profile.name.clone(),
                });
            }
        }
        let (page, enc) = codepage::encode_best(text, &self.pages);
        self.set_style(style);
        self.emit_text(page, &enc.bytes);
        self.replaced.extend(enc.replaced);
        self.text_lines += text.split('\n').count();
        Ok(())
    }

    fn separator(&mut self, ch: char) {
        let style = TextStyle {
            font: self.state.font,
            ..TextStyle::default()
        };
        self.set_style(&style);
        let (page, enc) = codepage::encode_best(ch.encode_utf8(&mut [0; 4]), &self.pages);
        let char_columns = if enc.bytes.len() > 1 { 2 } else { 1 };
        let count = usize::from(self.profile.columns(style.font)) / char_columns;
        let line = enc.bytes.repeat(count);
        self.emit_text(page, &line);
        self.replaced.extend(enc.replaced);
    }

    fn barcode(&mut self, block: usize, b: &Barcode) -> Result<(), EncodeError> {
        let (system, data) =
            barcode_data(b.symbology, &b.data).map_err(|problem| EncodeError::Barcode {
                block,
                symbology: b.symbology,
                problem,
            })?;
        if b.height == 0 {
            return Err(EncodeError::InvalidOption {
                block,
                option: "barcode height",
                value: 0,
                allowed: "1..=255 dots",
            });
        }
        if !(2..=6).contains(&b.module_width) {
            return Err(EncodeError::InvalidOption {
                block,
                option: "barcode module width",
                value: u32::from(b.module_width),
                allowed: "2..=6 dots",
            });
        }
        let dots =
            barcode_min_modules(b.symbology, &data).saturating_mul(u32::from(b.module_width));
        if dots > u32::from(self.profile.dots_per_line) {
            return Err(EncodeError::BarcodeTooWide {
                block,
                dots,
                max: self.profile.dots_per_line,
            });
        }
        if !self.profile.barcode.is_yes() {
            self.set_align(b.align);
            let style = TextStyle {
                align: b.align,
                ..TextStyle::default()
            };
            // Counted as the barcode it stands for, not as a text block's line.
            let lines = self.text_lines;
            self.text(block, &b.data, &style)?;
            self.text_lines = lines;
            self.substitutions
                .push(Substitution::BarcodeAsText { block });
            return Ok(());
        }
        let hri = match b.hri {
            HriPosition::None => 0,
            HriPosition::Above => 1,
            HriPosition::Below => 2,
            HriPosition::Both => 3,
        };
        self.set_align(b.align);
        for c in [
            Command::BarcodeHeight(b.height),
            Command::BarcodeModuleWidth(b.module_width),
            Command::HriPosition(hri),
            Command::HriFont(0),
            Command::Barcode { system, data },
        ] {
            self.cmd(&c);
        }
        Ok(())
    }

    fn qr(&mut self, block: usize, q: &QrCode) -> Result<(), EncodeError> {
        let data = q.data.as_bytes();
        if data.is_empty() {
            return Err(EncodeError::QrEmpty { block });
        }
        let max = qr_capacity(data, q.error_correction);
        if data.len() > max {
            return Err(EncodeError::QrTooLong {
                block,
                len: data.len(),
                max,
                level: q.error_correction,
            });
        }
        if !(1..=16).contains(&q.module_size) {
            return Err(EncodeError::InvalidOption {
                block,
                option: "QR module size",
                value: u32::from(q.module_size),
                allowed: "1..=16 dots",
            });
        }
        if !self.profile.qr.is_yes() {
            let Some(via) = ImageVia::of(self.profile) else {
                return Err(EncodeError::QrUnsupported {
                    block,
                    profile: self.profile.name.clone(),
                });
            };
            // Shrink the modules until the symbol fits the paper (at least 1 dot each).
            let mut size = q.module_size;
            loop {
                let bitmap =
                    qr_bitmap(data, q.error_correction, size).ok_or(EncodeError::QrTooLong {
                        block,
                        len: data.len(),
                        max,
                        level: q.error_correction,
                    })?;
                if bitmap.width() <= u32::from(self.profile.dots_per_line) || size <= 1 {
                    let img = Image {
                        bitmap,
                        conversion: ImageConversion::Threshold(128),
                        align: q.align,
                    };
                    self.image_with(block, &img, via)?;
                    self.substitutions.push(Substitution::QrAsImage {
                        block,
                        via: via.name(),
                    });
                    return Ok(());
                }
                size -= 1;
            }
        }
        let ec = match q.error_correction {
            QrErrorCorrection::L => 48,
            QrErrorCorrection::M => 49,
            QrErrorCorrection::Q => 50,
            QrErrorCorrection::H => 51,
        };
        self.set_align(q.align);
        for c in [
            Command::QrModel(50),
            Command::QrModuleSize(q.module_size),
            Command::QrErrorCorrection(ec),
            Command::QrStore(data.to_vec()),
            Command::QrPrint,
        ] {
            self.cmd(&c);
        }
        Ok(())
    }

    fn image(&mut self, block: usize, img: &Image) -> Result<(), EncodeError> {
        let (width, height) = (img.bitmap.width(), img.bitmap.height());
        if width == 0 || height == 0 {
            return Err(EncodeError::ImageEmpty {
                block,
                width,
                height,
            });
        }
        if width > u32::from(self.profile.dots_per_line) {
            return Err(EncodeError::ImageTooWide {
                block,
                width,
                max: self.profile.dots_per_line,
            });
        }
        let Some(via) = ImageVia::of(self.profile) else {
            self.substitutions
                .push(Substitution::ImageOmitted { block });
            return Ok(());
        };
        self.image_with(block, img, via)?;
        if via != ImageVia::Raster {
            self.substitutions.push(Substitution::ImageVia {
                block,
                via: via.name(),
            });
        }
        Ok(())
    }

    /// An image already checked to fit, with the given command.
    fn image_with(&mut self, block: usize, img: &Image, via: ImageVia) -> Result<(), EncodeError> {
        let width = img.bitmap.width();
        if width > u32::from(self.profile.dots_per_line) {
            return Err(EncodeError::ImageTooWide {
                block,
                width,
                max: self.profile.dots_per_line,
            });
        }
        let raster = rasterize(&img.bitmap, img.conversion);
        if raster.width_bytes == 0 {
            return Ok(());
        }
        // width <= dots_per_line (a u16), so these fit in u16.
        let width_bytes = u16::try_from(raster.width_bytes).unwrap_or(u16::MAX);
        let width_dots = u16::try_from(raster.width).unwrap_or(u16::MAX);
        self.set_align(img.align);
        match via {
            ImageVia::Raster | ImageVia::Graphics => {
                for band in raster.data.chunks(raster.width_bytes * RASTER_BAND_ROWS) {
                    let rows = u16::try_from(band.len() / raster.width_bytes).unwrap_or(u16::MAX);
                    if via == ImageVia::Raster {
                        self.cmd(&Command::RasterImage {
                            mode: 0,
                            width_bytes,
                            height: rows,
                            data: band.to_vec(),
                        });
                    } else {
                        self.cmd(&Command::GraphicsStore {
                            width: width_dots,
                            height: rows,
                            data: band.to_vec(),
                        });
                        self.cmd(&Command::GraphicsPrint);
                    }
                }
            }
            ImageVia::Column => {
                // 24-dot stripes, line spacing 24 dots so the stripes touch.
                self.cmd(&Command::LineSpacing(Some(24)));
                let rows = raster.data.len() / raster.width_bytes;
                let dot = |x: usize, y: usize| -> bool {
                    y < rows
                        && raster
                            .data
                            .get(y * raster.width_bytes + x / 8)
                            .is_some_and(|b| b & (0x80 >> (x % 8)) != 0)
                };
                for top in (0..rows).step_by(24) {
                    let mut data = Vec::with_capacity(3 * usize::from(width_dots));
                    for x in 0..usize::from(width_dots) {
                        for byte in 0..3 {
                            let mut v = 0u8;
                            for bit in 0..8 {
                                if dot(x, top + byte * 8 + bit) {
                                    v |= 0x80 >> bit;
                                }
                            }
                            data.push(v);
                        }
                    }
                    self.cmd(&Command::ColumnImage {
                        mode: 33,
                        columns: width_dots,
                        data,
                    });
                    self.out.push(LF);
                }
                self.cmd(&Command::LineSpacing(None));
            }
        }
        Ok(())
    }

    fn cut(&mut self, block: usize, asked: CutKind) -> Result<(), EncodeError> {
        let full = self.profile.cutter && self.profile.full_cut.is_yes();
        let partial = self.profile.cutter && self.profile.partial_cut.is_yes();
        let is_partial = matches!(asked, CutKind::Partial | CutKind::FeedAndPartial);
        let kind = match (is_partial, full, partial) {
            (true, _, true) | (false, true, _) => asked,
            (true, true, false) => match asked {
                CutKind::Partial => CutKind::Full,
                _ => CutKind::FeedAndFull,
            },
            (false, false, true) => match asked {
                CutKind::Full => CutKind::Partial,
                _ => CutKind::FeedAndPartial,
            },
            _ => {
                self.cmd(&Command::FeedLines(TEAR_FEED_LINES));
                self.substitutions.push(Substitution::CutAsFeed { block });
                return Ok(());
            }
        };
        if kind != asked {
            self.substitutions.push(Substitution::CutKind {
                block,
                asked,
                sent: kind,
            });
        }
        let c = match kind {
            CutKind::Full => Command::Cut {
                mode: 0,
                feed: None,
            },
            CutKind::Partial => Command::Cut {
                mode: 1,
                feed: None,
            },
            CutKind::FeedAndFull => Command::Cut {
                mode: 65,
                feed: Some(CUT_FEED),
            },
            CutKind::FeedAndPartial => Command::Cut {
                mode: 66,
                feed: Some(CUT_FEED),
            },
        };
        self.cmd(&c);
        Ok(())
    }

    fn block(&mut self, i: usize, block: &Block) -> Result<(), EncodeError> {
        match block {
            Block::Text { text, style } => self.text(i, text, style)?,
            Block::Separator { ch } => self.separator(*ch),
            Block::Feed { lines } => self.cmd(&Command::FeedLines(*lines)),
            Block::Barcode(b) => self.barcode(i, b)?,
            Block::Qr(q) => self.qr(i, q)?,
            Block::Image(img) => self.image(i, img)?,
            Block::Cut { kind } => self.cut(i, *kind)?,
            Block::DrawerKick { .. } if !self.profile.pulse.is_yes() => self
                .substitutions
                .push(Substitution::DrawerKickOmitted { block: i }),
            Block::DrawerKick { pin } => self.cmd(&Command::DrawerPulse {
                pin: match pin {
                    DrawerPin::Pin2 => 0,
                    DrawerPin::Pin5 => 1,
                },
                on: DRAWER_PULSE_ON,
                off: DRAWER_PULSE_OFF,
            }),
        }
        Ok(())
    }
}

/// Encodes `doc` for a printer described by `profile` (see the module docs for what is
/// sent).
///
/// # Errors
///
/// [`EncodeError`] for the first block that cannot be printed as asked, or an invalid
/// profile; nothing is returned for a document that would print wrongly.
pub fn encode_document(doc: &Document, profile: &Profile) -> Result<EncodedJob, EncodeError> {
    profile.validate()?;
    let mut enc = Encoder {
        profile,
        pages: profile.text_pages(),
        out: Vec::with_capacity(64 + 48 * doc.blocks.len()),
        state: State::defaults(None),
        text_lines: 0,
        replaced: Vec::new(),
        substitutions: Vec::new(),
    };
    enc.reset_styles();
    enc.cmd(&Command::LineSpacing(None));
    let mut block_offsets = Vec::with_capacity(doc.blocks.len());
    for (i, block) in doc.blocks.iter().enumerate() {
        block_offsets.push(enc.out.len());
        enc.block(i, block)?;
    }
    enc.reset_styles();
    Ok(EncodedJob {
        bytes: enc.out,
        block_offsets,
        text_lines: enc.text_lines,
        replaced: enc.replaced,
        substitutions: enc.substitutions,
    })
}
