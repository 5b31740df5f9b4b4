//! The receipt document model: what to print, independent of any printer language.
//!
//! The service composes receipts with these types; a printer driver (ESC/POS, or another
//! language) encodes them and checks what its printer cannot do (barcode data validity,
//! code pages, image width).
//!
//! ```
//! use pos_hal::{Align, CutKind, Document, QrCode, TextStyle};
//!
//! let mut doc = Document::new();
//! doc.text_styled("CAFE ROSSI", TextStyle::new().bold().double().align(Align::Center))
//!     .text("Espresso              2.50")
//!     .separator('-')
//!     .text("TOTAL EUR             2.50")
//!     .feed(1)
//!     .qr(QrCode::new("https://example.invalid/r/123"))
//!     .cut(CutKind::Partial);
//! assert_eq!(doc.blocks.len(), 7);
//! ```

/// Horizontal alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Align {
    /// Left (the default).
    #[default]
    Left,
    /// Centred.
    Center,
    /// Right.
    Right,
}

/// Underline weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Underline {
    /// No underline.
    #[default]
    None,
    /// One dot thick.
    Single,
    /// Two dots thick.
    Double,
}

/// Printer font.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Font {
    /// The standard font (12x24 on most 80 mm printers).
    #[default]
    A,
    /// The small font (9x17 on most 80 mm printers).
    B,
}

/// Text style. The default is plain left-aligned font A at normal size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct TextStyle {
    /// Emphasized (bold).
    pub bold: bool,
    /// Underline.
    pub underline: Underline,
    /// Character width multiplier, 1 to 8.
    pub width: u8,
    /// Character height multiplier, 1 to 8.
    pub height: u8,
    /// Font.
    pub font: Font,
    /// Alignment.
    pub align: Align,
    /// White on black.
    pub inverse: bool,
}

impl Default for TextStyle {
    fn default() -> Self {
        TextStyle {
            bold: false,
            underline: Underline::None,
            width: 1,
            height: 1,
            font: Font::A,
            align: Align::Left,
            inverse: false,
        }
    }
}

impl TextStyle {
    /// The default style.
    pub fn new() -> Self {
        Self::default()
    }
    /// Bold.
    pub fn bold(mut self) -> Self {
        self.bold = true;
        self
    }
    /// Underlined (single).
    pub fn underline(mut self) -> Self {
        self.underline = Underline::Single;
        self
    }
    /// Double width and height.
    pub fn double(mut self) -> Self {
        self.width = 2;
        self.height = 2;
        self
    }
    /// Size multipliers, each clamped to 1..=8.
    pub fn size(mut self, width: u8, height: u8) -> Self {
        self.width = width.clamp(1, 8);
        self.height = height.clamp(1, 8);
        self
    }
    /// Font.
    pub fn font(mut self, font: Font) -> Self {
        self.font = font;
        self
    }
    /// Alignment.
    pub fn align(mut self, align: Align) -> Self {
        self.align = align;
        self
    }
    /// White on black.
    pub fn inverse(mut self) -> Self {
        self.inverse = true;
        self
    }
}

/// Barcode symbologies receipt printers commonly support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Symbology {
    /// Code 128 (any ASCII).
    Code128,
    /// EAN-13 (12 digits plus check digit).
    Ean13,
    /// UPC-A (11 digits plus check digit).
    UpcA,
    /// Code 39 (digits, upper-case letters, ` $%+-./`).
    Code39,
    /// Interleaved 2 of 5 (an even number of digits).
    Itf,
}

/// Where the human-readable text of a barcode goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum HriPosition {
    /// Not printed.
    None,
    /// Above the bars.
    Above,
    /// Below the bars (the default).
    #[default]
    Below,
    /// Above and below.
    Both,
}

/// A one-dimensional barcode.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Barcode {
    /// Symbology.
    pub symbology: Symbology,
    /// The data (validated by the printer driver for the symbology).
    pub data: String,
    /// Bar height in dots.
    pub height: u8,
    /// Narrow module width in dots (2 to 6 on most printers).
    pub module_width: u8,
    /// Human-readable text position.
    pub hri: HriPosition,
    /// Alignment.
    pub align: Align,
}

impl Barcode {
    /// A barcode with usual settings: 80 dots high, module 3, text below, centred.
    pub fn new(symbology: Symbology, data: impl Into<String>) -> Self {
        Barcode {
            symbology,
            data: data.into(),
            height: 80,
            module_width: 3,
            hri: HriPosition::Below,
            align: Align::Center,
        }
    }
}

/// QR code error-correction level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum QrErrorCorrection {
    /// About 7 % recoverable.
    L,
    /// About 15 % recoverable (the default).
    #[default]
    M,
    /// About 25 % recoverable.
    Q,
    /// About 30 % recoverable.
    H,
}

/// A QR code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct QrCode {
    /// The data.
    pub data: String,
    /// Module size in dots (1 to 16).
    pub module_size: u8,
    /// Error correction.
    pub error_correction: QrErrorCorrection,
    /// Alignment.
    pub align: Align,
}

impl QrCode {
    /// A QR code with module size 6, level M, centred.
    pub fn new(data: impl Into<String>) -> Self {
        QrCode {
            data: data.into(),
            module_size: 6,
            error_correction: QrErrorCorrection::M,
            align: Align::Center,
        }
    }
}

/// An 8-bit greyscale bitmap (0 = black, 255 = white), row-major.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Bitmap {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl Bitmap {
    /// A bitmap from its pixels. `None` when `pixels.len() != width * height`.
    pub fn new(width: u32, height: u32, pixels: Vec<u8>) -> Option<Self> {
        let expected = usize::try_from(u64::from(width) * u64::from(height)).ok()?;
        (pixels.len() == expected).then_some(Bitmap {
            width,
            height,
            pixels,
        })
    }
    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }
    /// The pixels, row-major.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }
    /// The pixel at (x, y), `None` outside the bitmap.
    pub fn pixel(&self, x: u32, y: u32) -> Option<u8> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = usize::try_from(u64::from(y) * u64::from(self.width) + u64::from(x)).ok()?;
        self.pixels.get(i).copied()
    }
}

/// How greyscale becomes black and white dots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum ImageConversion {
    /// Pixels darker than the value print black.
    Threshold(u8),
    /// Error-diffusion dithering (Floyd-Steinberg).
    Dither,
}

/// A raster image to print.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Image {
    /// The picture.
    pub bitmap: Bitmap,
    /// How to turn it into dots.
    pub conversion: ImageConversion,
    /// Alignment.
    pub align: Align,
}

/// How to cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum CutKind {
    /// Cut right through.
    Full,
    /// Leave a hinge in the middle.
    Partial,
    /// Feed the paper past the cutter, then cut fully.
    FeedAndFull,
    /// Feed the paper past the cutter, then cut partially.
    FeedAndPartial,
}

/// Which drawer-kick connector pin to pulse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum DrawerPin {
    /// Pin 2 (drawer 1, the usual one).
    #[default]
    Pin2,
    /// Pin 5 (drawer 2).
    Pin5,
}

/// One element of a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "type", rename_all = "snake_case"))]
pub enum Block {
    /// Text; each `\n` starts a new line, and the block ends with a line feed.
    Text {
        /// The text (any Unicode; the driver maps it to the printer's code page and shows
        /// characters it cannot print as a visible replacement).
        text: String,
        /// Its style.
        #[cfg_attr(feature = "serde", serde(default))]
        style: TextStyle,
    },
    /// A full-width line of one repeated character.
    Separator {
        /// The character.
        ch: char,
    },
    /// Blank lines.
    Feed {
        /// How many.
        lines: u8,
    },
    /// A barcode.
    Barcode(Barcode),
    /// A QR code.
    Qr(QrCode),
    /// A raster image.
    Image(Image),
    /// Cut the paper.
    Cut {
        /// How.
        kind: CutKind,
    },
    /// Pulse a cash-drawer pin.
    DrawerKick {
        /// Which pin.
        pin: DrawerPin,
    },
}

/// A receipt: blocks printed in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Document {
    /// The blocks.
    pub blocks: Vec<Block>,
}

impl Document {
    /// An empty document.
    pub fn new() -> Self {
        Self::default()
    }
    /// Add plain text.
    pub fn text(&mut self, text: impl Into<String>) -> &mut Self {
        self.text_styled(text, TextStyle::default())
    }
    /// Add styled text.
    pub fn text_styled(&mut self, text: impl Into<String>, style: TextStyle) -> &mut Self {
        self.blocks.push(Block::Text {
            text: text.into(),
            style,
        });
        self
    }
    /// Add a separator line.
    pub fn separator(&mut self, ch: char) -> &mut Self {
        self.blocks.push(Block::Separator { ch });
        self
    }
    /// Add blank lines.
    pub fn feed(&mut self, lines: u8) -> &mut Self {
        self.blocks.push(Block::Feed { lines });
        self
    }
    /// Add a barcode.
    pub fn barcode(&mut self, barcode: Barcode) -> &mut Self {
        self.blocks.push(Block::Barcode(barcode));
        self
    }
    /// Add a QR code.
    pub fn qr(&mut self, qr: QrCode) -> &mut Self {
        self.blocks.push(Block::Qr(qr));
        self
    }
    /// Add an image.
    pub fn image(&mut self, image: Image) -> &mut Self {
        self.blocks.push(Block::Image(image));
        self
    }
    /// Add a cut.
    pub fn cut(&mut self, kind: CutKind) -> &mut Self {
        self.blocks.push(Block::Cut { kind });
        self
    }
    /// Add a drawer kick.
    pub fn drawer_kick(&mut self, pin: DrawerPin) -> &mut Self {
        self.blocks.push(Block::DrawerKick { pin });
        self
    }
    /// The document's text, one string per printed text line (for tests and previews;
    /// separators, barcodes, QR codes and images are left out).
    pub fn text_lines(&self) -> Vec<&str> {
        self.blocks
            .iter()
            .filter_map(|b| match b {
                Block::Text { text, .. } => Some(text.split('\n')),
                _ => None,
            })
            .flatten()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_and_text_lines() {
        let mut d = Document::new();
        d.text("A\nB")
            .separator('=')
            .text_styled("C", TextStyle::new().bold().size(9, 0))
            .barcode(Barcode::new(Symbology::Ean13, "400638133393"))
            .drawer_kick(DrawerPin::Pin2)
            .cut(CutKind::FeedAndPartial);
        assert_eq!(d.text_lines(), vec!["A", "B", "C"]);
        match &d.blocks[2] {
            Block::Text { style, .. } => {
                assert!(style.bold);
                assert_eq!(
                    (style.width, style.height),
                    (8, 1),
                    "size is clamped to 1..=8"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bitmap_checks_its_size() {
        assert!(Bitmap::new(2, 2, vec![0; 3]).is_none());
        let b = Bitmap::new(2, 2, vec![0, 255, 128, 7]).unwrap();
        assert_eq!(b.pixel(1, 1), Some(7));
        assert_eq!(b.pixel(2, 0), None);
        assert!(Bitmap::new(u32::MAX, u32::MAX, vec![]).is_none());
    }

    #[cfg(feature = "serde")]
    #[test]
    fn documents_load_from_json() {
        let json = r#"{"blocks":[
            {"type":"text","text":"Hello","style":{"bold":true,"align":"center"}},
            {"type":"text","text":"plain"},
            {"type":"feed","lines":2},
            {"type":"qr","data":"x","module_size":4,"error_correction":"H","align":"left"},
            {"type":"cut","kind":"partial"}
        ]}"#;
        let d: Document = serde_json::from_str(json).unwrap();
        assert_eq!(d.blocks.len(), 5);
        match &d.blocks[0] {
            Block::Text { style, .. } => {
                assert!(style.bold);
                assert_eq!(style.align, Align::Center);
                assert_eq!(style.width, 1, "missing fields take their defaults");
            }
            other => panic!("unexpected {other:?}"),
        }
        let back: Document = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }
}
