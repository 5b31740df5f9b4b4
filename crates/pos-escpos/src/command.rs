//! The ESC/POS command table: one encoder and one parser, used by the driver (to send) and
//! by the virtual printer (to understand what was sent).
//!
//! [`Command`] names each command the driver sends or the virtual printer interprets;
//! [`Command::encode_into`] writes its bytes and [`Parser`] reads them back. Commands
//! outside the table become [`Command::Unknown`] holding the bytes that could be
//! attributed to them: the parser knows the parameter layout of most other ESC/POS
//! commands (fixed parameters, `pL pH` blocks, NUL-terminated lists, bit images), so an
//! unmodelled command does not spill its parameters into the text.
//!
//! Parameters are kept as the raw byte the printer receives (for example
//! [`Command::Justify`] holds 0/1/2 or the ASCII forms 48/49/50), so what is parsed
//! re-encodes to the same bytes. The exceptions are the on/off commands
//! ([`Command::Emphasis`], [`Command::Reverse`]), where the printer only looks at bit 0.
//!
//! ## Bounded parsing
//!
//! The parser never panics and never allocates more than [`MAX_COMMAND_LEN`] bytes for
//! one command: a command that declares a longer payload (a `GS v 0` raster with huge
//! dimensions, a `GS 8 L` block) is reported as [`Command::Unknown`] with its header, and
//! its declared payload is skipped as it arrives, without being buffered.
//!
//! ```
//! use pos_escpos::command::{self, Command};
//!
//! let bytes = command::to_bytes(&[
//!     Command::Emphasis(true),
//!     Command::Text(b"TOTAL".to_vec()),
//!     Command::LineFeed,
//! ]);
//! assert_eq!(bytes, b"\x1bE\x01TOTAL\n");
//! let (cmds, incomplete) = command::parse_all(&bytes);
//! assert_eq!(cmds[1], Command::Text(b"TOTAL".to_vec()));
//! assert_eq!(incomplete, 0);
//! ```

/// ESC (0x1B).
pub const ESC: u8 = 0x1B;
/// GS (0x1D).
pub const GS: u8 = 0x1D;
/// FS (0x1C).
pub const FS: u8 = 0x1C;
/// DLE (0x10).
pub const DLE: u8 = 0x10;
/// LF (0x0A).
pub const LF: u8 = 0x0A;
/// CR (0x0D).
pub const CR: u8 = 0x0D;

/// The most payload the parser buffers for one command (1 MiB). Longer declared payloads
/// are skipped (see the module docs).
pub const MAX_COMMAND_LEN: usize = 1 << 20;

/// The most data a `GS ( k` block can carry after `cn fn m` (65535 - 3).
pub const MAX_QR_STORE: usize = 65_532;

/// The data bytes of DLE DC4 fn=8 (clear buffers), fixed by the specification.
const CLEAR_BUFFER_DATA: [u8; 7] = [1, 3, 20, 1, 6, 2, 8];

/// One ESC/POS command.
///
/// The doc of each variant gives the command's name in the ESC/POS reference and its
/// bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Command {
    /// ESC @ (`1B 40`): initialize the printer.
    Init,
    /// A run of bytes printed as characters (each 0x20-0xFF). Adjacent runs are one run
    /// on the wire; the parser returns as much of a run as it has received.
    Text(Vec<u8>),
    /// LF (`0A`): print and line feed.
    LineFeed,
    /// CR (`0D`): print and carriage return.
    CarriageReturn,
    /// ESC d n (`1B 64 n`): print and feed n lines.
    FeedLines(u8),
    /// ESC J n (`1B 4A n`): print and feed n motion units.
    FeedDots(u8),
    /// ESC ! n (`1B 21 n`): select print modes (font, emphasis, double size, underline bits).
    PrintMode(u8),
    /// ESC E n (`1B 45 n`): emphasized mode on/off (bit 0 of n).
    Emphasis(bool),
    /// ESC - n (`1B 2D n`): underline off (0/48), 1 dot (1/49), 2 dots (2/50).
    Underline(u8),
    /// GS ! n (`1D 21 n`): character size, width and height multipliers 1 to 8 each
    /// (n = (width - 1) << 4 | (height - 1)).
    CharacterSize {
        /// Width multiplier, 1 to 8.
        width: u8,
        /// Height multiplier, 1 to 8.
        height: u8,
    },
    /// ESC M n (`1B 4D n`): character font (0/48 = A, 1/49 = B, ...).
    Font(u8),
    /// ESC a n (`1B 61 n`): justification (0/48 left, 1/49 centre, 2/50 right).
    Justify(u8),
    /// GS B n (`1D 42 n`): white/black reverse printing on/off (bit 0 of n).
    Reverse(bool),
    /// ESC 2 (`1B 32`, default line spacing, `None`) or ESC 3 n (`1B 33 n`, n motion units).
    LineSpacing(Option<u8>),
    /// ESC t n (`1B 74 n`): select character code table (numbers vary by vendor).
    CodeTable(u8),
    /// ESC R n (`1B 52 n`): select an international character set (0 = USA).
    InternationalCharset(u8),
    /// FS & (`1C 26`, on) / FS . (`1C 2E`, off): Chinese (Kanji) character mode.
    ChineseMode(bool),
    /// GS V m \[n\] (`1D 56 m [n]`): cut. m 0/48 full, 1/49 partial (no n); 65 full and 66
    /// partial after feeding to the cutter plus n units; 97/98 and 103/104 also take n.
    Cut {
        /// The mode byte m.
        mode: u8,
        /// n, present exactly for the modes that take it (65, 66, 97, 98, 103, 104).
        feed: Option<u8>,
    },
    /// ESC p m t1 t2 (`1B 70 m t1 t2`): drawer-kick pulse on pin 2 (m 0/48) or pin 5
    /// (m 1/49), on for t1 × 2 ms and off for t2 × 2 ms.
    DrawerPulse {
        /// m: the connector pin.
        pin: u8,
        /// t1: on time in 2 ms units.
        on: u8,
        /// t2: off time in 2 ms units.
        off: u8,
    },
    /// GS h n (`1D 68 n`): barcode height in dots.
    BarcodeHeight(u8),
    /// GS w n (`1D 77 n`): barcode module (narrow bar) width.
    BarcodeModuleWidth(u8),
    /// GS H n (`1D 48 n`): HRI position (0 none, 1 above, 2 below, 3 both; or 48-51).
    HriPosition(u8),
    /// GS f n (`1D 66 n`): HRI font.
    HriFont(u8),
    /// GS k m n d1..dn (`1D 6B m n d...`), "function B": print a barcode; m 65-78 (65 UPC-A,
    /// 66 UPC-E, 67 EAN-13, 68 EAN-8, 69 CODE39, 70 ITF, 71 CODABAR, 72 CODE93, 73 CODE128).
    Barcode {
        /// m, the barcode system (65 to 78).
        system: u8,
        /// The data (at most 255 bytes).
        data: Vec<u8>,
    },
    /// GS ( k `<Function 165>` (`1D 28 6B 04 00 31 41 n1 00`): QR model (n1 49 = model 1,
    /// 50 = model 2, 51 = micro QR).
    QrModel(u8),
    /// GS ( k `<Function 167>` (`1D 28 6B 03 00 31 43 n`): QR module size in dots.
    QrModuleSize(u8),
    /// GS ( k `<Function 169>` (`1D 28 6B 03 00 31 45 n`): QR error correction (48 L,
    /// 49 M, 50 Q, 51 H).
    QrErrorCorrection(u8),
    /// GS ( k `<Function 180>` (`1D 28 6B pL pH 31 50 30 d...`): store QR data
    /// (at most [`MAX_QR_STORE`] bytes here; printers accept up to 7089).
    QrStore(Vec<u8>),
    /// GS ( k `<Function 181>` (`1D 28 6B 03 00 31 51 30`): print the stored QR symbol.
    QrPrint,
    /// GS v 0 m xL xH yL yH d... (`1D 76 30 m ...`): print a raster bit image; each row is
    /// `width_bytes` bytes, MSB = leftmost dot, 1 = black; m 0/48 normal, 1/49 double
    /// width, 2/50 double height, 3/51 quadruple.
    RasterImage {
        /// m: scaling mode.
        mode: u8,
        /// x: bytes per row.
        width_bytes: u16,
        /// y: rows.
        height: u16,
        /// The rows, `width_bytes * height` bytes.
        data: Vec<u8>,
    },
    /// ESC * m nL nH d... (`1B 2A m ...`): one line of a column bit image. m 0/1 are 8-dot
    /// columns (1 byte each), m 32/33 24-dot columns (3 bytes each, top byte first, MSB =
    /// top dot); 33 is 24-dot double density, the mode the encoder uses.
    ColumnImage {
        /// m: 0, 1, 32 or 33.
        mode: u8,
        /// n: the number of columns (dots across).
        columns: u16,
        /// The columns, `columns` (m 0/1) or `3 * columns` (m 32/33) bytes.
        data: Vec<u8>,
    },
    /// GS ( L pL pH 48 112 48 1 1 49 xL xH yL yH d... (`1D 28 4C ...`, function 112):
    /// store a monochrome raster graphic in the print buffer (rows as in GS v 0).
    GraphicsStore {
        /// x: width in dots.
        width: u16,
        /// y: height in dots.
        height: u16,
        /// The rows, `ceil(width / 8) * height` bytes.
        data: Vec<u8>,
    },
    /// GS ( L 2 0 48 50 (`1D 28 4C 02 00 30 32`, function 50): print the graphic stored in
    /// the print buffer.
    GraphicsPrint,
    /// GS a n (`1D 61 n`): enable/disable Automatic Status Back (bit mask of reasons).
    AutoStatusBack(u8),
    /// DLE EOT n (`10 04 n`): real-time status transmission (n 1 printer, 2 offline cause,
    /// 3 error cause, 4 paper roll sensor). n 7, 8 and 18 take one more byte and are parsed
    /// as [`Command::Unknown`].
    RealTimeStatus(u8),
    /// DLE ENQ n (`10 05 n`): real-time request to the printer (recover, clear error).
    RealTimeRequest(u8),
    /// DLE DC4 fn=8 (`10 14 08 01 03 14 01 06 02 08`): clear the receive and print buffers.
    ClearBuffer,
    /// GS I n (`1D 49 n`): transmit printer ID.
    TransmitPrinterId(u8),
    /// GS ( H `<Function 48>` (`1D 28 48 06 00 30 30 d1 d2 d3 d4`): ask for a process-ID
    /// response (`37 22 d1 d2 d3 d4 00`) once everything before it has been processed
    /// (printed). The specification allows d1-d4 in 32..=126.
    ProcessIdRequest([u8; 4]),
    /// Bytes the table does not model: an unknown or unmodelled command with as many of its
    /// bytes as could be attributed to it, or a stray control byte. Encoded verbatim.
    Unknown(Vec<u8>),
}

/// Why a [`Command`] value cannot be encoded as it stands (see [`Command::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// A text run is empty or holds a control byte (below 0x20), which the printer would
    /// take as a command.
    #[error("text run holds control byte 0x{byte:02X} at {index}")]
    TextControlByte {
        /// The byte.
        byte: u8,
        /// Its index in the run.
        index: usize,
    },
    /// A text run with no bytes.
    #[error("empty text run")]
    EmptyText,
    /// GS ! with a multiplier outside 1..=8.
    #[error("character size {width}x{height} outside 1..=8")]
    CharacterSize {
        /// Width.
        width: u8,
        /// Height.
        height: u8,
    },
    /// GS V with a feed amount for a mode that takes none, or none for one that needs it.
    #[error("cut mode {mode} with feed {feed:?}")]
    CutFeed {
        /// Mode.
        mode: u8,
        /// Feed.
        feed: Option<u8>,
    },
    /// GS k function B needs m in 65..=78.
    #[error("barcode system {0} is not a function-B system (65..=78)")]
    BarcodeSystem(u8),
    /// A payload longer than the command can declare.
    #[error("{command} payload of {len} bytes exceeds {max}")]
    TooLong {
        /// The command.
        command: &'static str,
        /// Its payload length.
        len: usize,
        /// The most it can carry.
        max: usize,
    },
    /// GS v 0 data length differs from width_bytes × height.
    #[error("raster image data is {got} bytes, width_bytes x height is {expected}")]
    RasterSize {
        /// width_bytes × height.
        expected: usize,
        /// data length.
        got: usize,
    },
    /// DLE EOT n with n 7, 8 or 18, which take one more byte.
    #[error("DLE EOT {0} needs a parameter byte this command cannot carry")]
    RealTimeStatusParameter(u8),
}

/// Cut modes that take the feed byte n.
fn cut_takes_feed(mode: u8) -> bool {
    matches!(mode, 65 | 66 | 97 | 98 | 103 | 104)
}

/// Cut modes without n.
fn cut_without_feed(mode: u8) -> bool {
    matches!(mode, 0 | 1 | 48 | 49)
}

fn push_len16(out: &mut Vec<u8>, len: usize) {
    let len = u16::try_from(len).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
}

impl Command {
    /// The command's name as the ESC/POS reference writes it (for logs and the virtual
    /// printer's journal), e.g. `"GS ( k <Function 180>"`.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Init => "ESC @",
            Command::Text(_) => "text",
            Command::LineFeed => "LF",
            Command::CarriageReturn => "CR",
            Command::FeedLines(_) => "ESC d",
            Command::FeedDots(_) => "ESC J",
            Command::PrintMode(_) => "ESC !",
            Command::Emphasis(_) => "ESC E",
            Command::Underline(_) => "ESC -",
            Command::CharacterSize { .. } => "GS !",
            Command::Font(_) => "ESC M",
            Command::Justify(_) => "ESC a",
            Command::Reverse(_) => "GS B",
            Command::LineSpacing(None) => "ESC 2",
            Command::LineSpacing(Some(_)) => "ESC 3",
            Command::CodeTable(_) => "ESC t",
            Command::InternationalCharset(_) => "ESC R",
            Command::ChineseMode(true) => "FS &",
            Command::ChineseMode(false) => "FS .",
            Command::Cut { .. } => "GS V",
            Command::DrawerPulse { .. } => "ESC p",
            Command::BarcodeHeight(_) => "GS h",
            Command::BarcodeModuleWidth(_) => "GS w",
            Command::HriPosition(_) => "GS H",
            Command::HriFont(_) => "GS f",
            Command::Barcode { .. } => "GS k",
            Command::QrModel(_) => "GS ( k <Function 165>",
            Command::QrModuleSize(_) => "GS ( k <Function 167>",
            Command::QrErrorCorrection(_) => "GS ( k <Function 169>",
            Command::QrStore(_) => "GS ( k <Function 180>",
            Command::QrPrint => "GS ( k <Function 181>",
            Command::RasterImage { .. } => "GS v 0",
            Command::ColumnImage { .. } => "ESC *",
            Command::GraphicsStore { .. } => "GS ( L <Function 112>",
            Command::GraphicsPrint => "GS ( L <Function 50>",
            Command::AutoStatusBack(_) => "GS a",
            Command::RealTimeStatus(_) => "DLE EOT",
            Command::RealTimeRequest(_) => "DLE ENQ",
            Command::ClearBuffer => "DLE DC4 (fn=8)",
            Command::TransmitPrinterId(_) => "GS I",
            Command::ProcessIdRequest(_) => "GS ( H <Function 48>",
            Command::Unknown(_) => "unknown",
        }
    }

    /// Checks that the command encodes to exactly what it says.
    ///
    /// # Errors
    ///
    /// A [`CommandError`] naming the problem: control bytes in text, sizes out of range,
    /// payloads too long for their length fields, raster data of the wrong size.
    pub fn validate(&self) -> Result<(), CommandError> {
        match self {
            Command::Text(bytes) => {
                if bytes.is_empty() {
                    return Err(CommandError::EmptyText);
                }
                match bytes.iter().position(|&b| b < 0x20) {
                    Some(index) => Err(CommandError::TextControlByte {
                        byte: bytes.get(index).copied().unwrap_or(0),
                        index,
                    }),
                    None => Ok(()),
                }
            }
            &Command::CharacterSize { width, height } => {
                if (1..=8).contains(&width) && (1..=8).contains(&height) {
                    Ok(())
                } else {
                    Err(CommandError::CharacterSize { width, height })
                }
            }
            &Command::Cut { mode, feed } => {
                let ok = match feed {
                    Some(_) => cut_takes_feed(mode),
                    None => cut_without_feed(mode),
                };
                if ok {
                    Ok(())
                } else {
                    Err(CommandError::CutFeed { mode, feed })
                }
            }
            Command::Barcode { system, data } => {
                if !(65..=78).contains(system) {
                    Err(CommandError::BarcodeSystem(*system))
                } else if data.len() > 255 {
                    Err(CommandError::TooLong {
                        command: "GS k",
                        len: data.len(),
                        max: 255,
                    })
                } else {
                    Ok(())
                }
            }
            Command::QrStore(data) if data.len() > MAX_QR_STORE => Err(CommandError::TooLong {
                command: "GS ( k <Function 180>",
                len: data.len(),
                max: MAX_QR_STORE,
            }),
            Command::RasterImage {
                width_bytes,
                height,
                data,
                ..
            } => {
                let expected = usize::from(*width_bytes) * usize::from(*height);
                if data.len() == expected {
                    Ok(())
                } else {
                    Err(CommandError::RasterSize {
                        expected,
                        got: data.len(),
                    })
                }
            }
            Command::ColumnImage {
                mode,
                columns,
                data,
            } => {
                let expected =
                    column_image_len(*mode, *columns).ok_or(CommandError::RasterSize {
                        expected: 0,
                        got: data.len(),
                    })?;
                if data.len() == expected {
                    Ok(())
                } else {
                    Err(CommandError::RasterSize {
                        expected,
                        got: data.len(),
                    })
                }
            }
            Command::GraphicsStore {
                width,
                height,
                data,
            } => {
                let expected = usize::from(*width).div_ceil(8) * usize::from(*height);
                if data.len() + 10 > usize::from(u16::MAX) {
                    Err(CommandError::TooLong {
                        command: "GS ( L <Function 112>",
                        len: data.len(),
                        max: usize::from(u16::MAX) - 10,
                    })
                } else if data.len() == expected {
                    Ok(())
                } else {
                    Err(CommandError::RasterSize {
                        expected,
                        got: data.len(),
                    })
                }
            }
            &Command::RealTimeStatus(n) if matches!(n, 7 | 8 | 18) => {
                Err(CommandError::RealTimeStatusParameter(n))
            }
            _ => Ok(()),
        }
    }

    /// Appends the command's bytes to `out`.
    ///
    /// A command that fails [`validate`](Command::validate) is still written so that the
    /// byte stream stays in step with what the printer will parse: control bytes in text
    /// become `?`, sizes are clamped to 1..=8, a missing cut feed is written as 0 and a
    /// surplus one left out, payloads are cut to what their length field can declare, and
    /// raster data is padded with white or cut to `width_bytes * height`. The receipt
    /// encoder only builds valid commands.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Command::Init => out.extend_from_slice(&[ESC, b'@']),
            Command::Text(bytes) => out.extend(bytes.iter().map(|&b| {
                if b < 0x20 {
                    crate::codepage::REPLACEMENT_BYTE
                } else {
                    b
                }
            })),
            Command::LineFeed => out.push(LF),
            Command::CarriageReturn => out.push(CR),
            Command::FeedLines(n) => out.extend_from_slice(&[ESC, b'd', *n]),
            Command::FeedDots(n) => out.extend_from_slice(&[ESC, b'J', *n]),
            Command::PrintMode(n) => out.extend_from_slice(&[ESC, b'!', *n]),
            Command::Emphasis(on) => out.extend_from_slice(&[ESC, b'E', u8::from(*on)]),
            Command::Underline(n) => out.extend_from_slice(&[ESC, b'-', *n]),
            Command::CharacterSize { width, height } => {
                let w = width.clamp(&1, &8) - 1;
                let h = height.clamp(&1, &8) - 1;
                out.extend_from_slice(&[GS, b'!', (w << 4) | h]);
            }
            Command::Font(n) => out.extend_from_slice(&[ESC, b'M', *n]),
            Command::Justify(n) => out.extend_from_slice(&[ESC, b'a', *n]),
            Command::Reverse(on) => out.extend_from_slice(&[GS, b'B', u8::from(*on)]),
            Command::LineSpacing(None) => out.extend_from_slice(&[ESC, b'2']),
            Command::LineSpacing(Some(n)) => out.extend_from_slice(&[ESC, b'3', *n]),
            Command::CodeTable(n) => out.extend_from_slice(&[ESC, b't', *n]),
            Command::InternationalCharset(n) => out.extend_from_slice(&[ESC, b'R', *n]),
            Command::ChineseMode(true) => out.extend_from_slice(&[FS, b'&']),
            Command::ChineseMode(false) => out.extend_from_slice(&[FS, b'.']),
            Command::Cut { mode, feed } => {
                out.extend_from_slice(&[GS, b'V', *mode]);
                if cut_takes_feed(*mode) {
                    out.push(feed.unwrap_or(0));
                } else if !cut_without_feed(*mode) {
                    // A mode outside the table: write what we were given.
                    out.extend(feed.iter());
                }
            }
            Command::DrawerPulse { pin, on, off } => {
                out.extend_from_slice(&[ESC, b'p', *pin, *on, *off]);
            }
            Command::BarcodeHeight(n) => out.extend_from_slice(&[GS, b'h', *n]),
            Command::BarcodeModuleWidth(n) => out.extend_from_slice(&[GS, b'w', *n]),
            Command::HriPosition(n) => out.extend_from_slice(&[GS, b'H', *n]),
            Command::HriFont(n) => out.extend_from_slice(&[GS, b'f', *n]),
            Command::Barcode { system, data } => {
                let data = data.get(..255).unwrap_or(data);
                let n = u8::try_from(data.len()).unwrap_or(u8::MAX);
                out.extend_from_slice(&[GS, b'k', *system, n]);
                out.extend_from_slice(data);
            }
            Command::QrModel(n) => out.extend_from_slice(&[GS, b'(', b'k', 4, 0, 49, 65, *n, 0]),
            Command::QrModuleSize(n) => out.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 67, *n]),
            Command::QrErrorCorrection(n) => {
                out.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 69, *n]);
            }
            Command::QrStore(data) => {
                let data = data.get(..MAX_QR_STORE).unwrap_or(data);
                out.extend_from_slice(&[GS, b'(', b'k']);
                push_len16(out, data.len() + 3);
                out.extend_from_slice(&[49, 80, 48]);
                out.extend_from_slice(data);
            }
            Command::QrPrint => out.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 81, 48]),
            Command::RasterImage {
                mode,
                width_bytes,
                height,
                data,
            } => {
                out.extend_from_slice(&[GS, b'v', b'0', *mode]);
                out.extend_from_slice(&width_bytes.to_le_bytes());
                out.extend_from_slice(&height.to_le_bytes());
                let expected = usize::from(*width_bytes) * usize::from(*height);
                let data = data.get(..expected).unwrap_or(data);
                out.extend_from_slice(data);
                out.resize(out.len() + (expected - data.len()), 0);
            }
            Command::ColumnImage {
                mode,
                columns,
                data,
            } => {
                out.extend_from_slice(&[ESC, b'*', *mode]);
                out.extend_from_slice(&columns.to_le_bytes());
                let expected = column_image_len(*mode, *columns).unwrap_or(0);
                let data = data.get(..expected).unwrap_or(data);
                out.extend_from_slice(data);
                out.resize(out.len() + (expected - data.len()), 0);
            }
            Command::GraphicsStore {
                width,
                height,
                data,
            } => {
                let expected = usize::from(*width).div_ceil(8) * usize::from(*height);
                let data = data.get(..expected).unwrap_or(data);
                out.extend_from_slice(&[GS, b'(', b'L']);
                push_len16(out, expected + 10);
                out.extend_from_slice(&[48, 112, 48, 1, 1, 49]);
                out.extend_from_slice(&width.to_le_bytes());
                out.extend_from_slice(&height.to_le_bytes());
                out.extend_from_slice(data);
                out.resize(out.len() + (expected - data.len()), 0);
            }
            Command::GraphicsPrint => out.extend_from_slice(&[GS, b'(', b'L', 2, 0, 48, 50]),
            Command::AutoStatusBack(n) => out.extend_from_slice(&[GS, b'a', *n]),
            Command::RealTimeStatus(n) => out.extend_from_slice(&[DLE, 0x04, *n]),
            Command::RealTimeRequest(n) => out.extend_from_slice(&[DLE, 0x05, *n]),
            Command::ClearBuffer => {
                out.extend_from_slice(&[DLE, 0x14, 8]);
                out.extend_from_slice(&CLEAR_BUFFER_DATA);
            }
            Command::TransmitPrinterId(n) => out.extend_from_slice(&[GS, b'I', *n]),
            Command::ProcessIdRequest(d) => {
                out.extend_from_slice(&[GS, b'(', b'H', 6, 0, 48, 48]);
                out.extend_from_slice(d);
            }
            Command::Unknown(bytes) => out.extend_from_slice(bytes),
        }
    }

    /// The command's bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

/// The bytes of a command sequence.
pub fn to_bytes(cmds: &[Command]) -> Vec<u8> {
    let mut out = Vec::new();
    for cmd in cmds {
        cmd.encode_into(&mut out);
    }
    out
}

/// The data length of ESC * in `mode` for `columns` columns (`None` for an unknown mode).
fn column_image_len(mode: u8, columns: u16) -> Option<usize> {
    match mode {
        0 | 1 => Some(usize::from(columns)),
        32 | 33 => Some(3 * usize::from(columns)),
        _ => None,
    }
}

/// What the parser found at the front of its buffer.
enum Step {
    /// The command is not complete yet.
    NeedMore,
    /// A command of this many bytes.
    Done(Command, usize),
    /// A command header of this many bytes, followed by a declared payload too large to
    /// buffer: skip that many bytes after the header.
    SkipAfter(Command, usize, u64),
}

/// The first `n` bytes of `b` as a command built by `f`, or NeedMore.
fn fixed(b: &[u8], n: usize, f: impl FnOnce(&[u8]) -> Command) -> Step {
    match b.get(..n) {
        Some(head) => Step::Done(f(head), n),
        None => Step::NeedMore,
    }
}

/// The first `n` bytes of `b` as [`Command::Unknown`], or NeedMore.
fn unknown(b: &[u8], n: usize) -> Step {
    fixed(b, n, |head| Command::Unknown(head.to_vec()))
}

/// Byte `i` of a slice already known to be long enough (0 otherwise, never panics).
fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// A command of `header` bytes followed by `len` payload bytes, built by `f` from the
/// whole command and its payload; skipped when `len` exceeds [`MAX_COMMAND_LEN`].
fn with_payload(
    b: &[u8],
    header: usize,
    len: u64,
    f: impl FnOnce(&[u8], &[u8]) -> Command,
) -> Step {
    let Some(head) = b.get(..header) else {
        return Step::NeedMore;
    };
    match usize::try_from(len) {
        Ok(len) if len <= MAX_COMMAND_LEN => {
            let total = header + len;
            match (b.get(..total), b.get(header..total)) {
                (Some(all), Some(payload)) => Step::Done(f(all, payload), total),
                _ => Step::NeedMore,
            }
        }
        _ => Step::SkipAfter(Command::Unknown(head.to_vec()), header, len),
    }
}

/// A command whose length is given by `pL pH` at `b[at..at+2]`.
fn pl_ph(b: &[u8], len_at: usize, f: impl FnOnce(&[u8], &[u8]) -> Command) -> Step {
    if b.len() < len_at + 2 {
        return Step::NeedMore;
    }
    let len = u64::from(at(b, len_at)) + 256 * u64::from(at(b, len_at + 1));
    with_payload(b, len_at + 2, len, f)
}

/// A command of `prefix` bytes followed by data ending with NUL within `max_data` bytes.
/// Without a NUL in that window only the prefix is attributed.
fn nul_terminated(b: &[u8], prefix: usize, max_data: usize) -> Step {
    let window = b.get(prefix..).unwrap_or_default();
    match window.iter().take(max_data + 1).position(|&x| x == 0) {
        Some(i) => unknown(b, prefix + i + 1),
        None if window.len() <= max_data => Step::NeedMore,
        None => unknown(b, prefix),
    }
}

fn parse_one(b: &[u8]) -> Step {
    let Some(&first) = b.first() else {
        return Step::NeedMore;
    };
    match first {
        LF => Step::Done(Command::LineFeed, 1),
        CR => Step::Done(Command::CarriageReturn, 1),
        ESC => parse_esc(b),
        GS => parse_gs(b),
        FS => parse_fs(b),
        DLE => parse_dle(b),
        0x20..=0xFF => {
            let run = b.iter().position(|&x| x < 0x20).unwrap_or(b.len());
            fixed(b, run, |t| Command::Text(t.to_vec()))
        }
        _ => unknown(b, 1),
    }
}

fn parse_esc(b: &[u8]) -> Step {
    if b.len() < 2 {
        return Step::NeedMore;
    }
    match at(b, 1) {
        b'@' => Step::Done(Command::Init, 2),
        b'2' => Step::Done(Command::LineSpacing(None), 2),
        b'3' => fixed(b, 3, |p| Command::LineSpacing(Some(at(p, 2)))),
        b'd' => fixed(b, 3, |p| Command::FeedLines(at(p, 2))),
        b'J' => fixed(b, 3, |p| Command::FeedDots(at(p, 2))),
        b'!' => fixed(b, 3, |p| Command::PrintMode(at(p, 2))),
        b'E' => fixed(b, 3, |p| Command::Emphasis(at(p, 2) & 1 == 1)),
        b'-' => fixed(b, 3, |p| Command::Underline(at(p, 2))),
        b'M' => fixed(b, 3, |p| Command::Font(at(p, 2))),
        b'a' => fixed(b, 3, |p| Command::Justify(at(p, 2))),
        b't' => fixed(b, 3, |p| Command::CodeTable(at(p, 2))),
        b'R' => fixed(b, 3, |p| Command::InternationalCharset(at(p, 2))),
        b'p' => fixed(b, 5, |p| Command::DrawerPulse {
            pin: at(p, 2),
            on: at(p, 3),
            off: at(p, 4),
        }),
        // Unmodelled commands, by parameter count.
        0x0C | b'<' | b'L' | b'S' | b'i' | b'm' | b'v' => unknown(b, 2),
        b' ' | b'%' | b'=' | b'?' | b'G' | b'K' | b'T' | b'U' | b'V' | b'e' | b'r' | b'u'
        | b'{' => unknown(b, 3),
        b'$' | b'\\' | b'c' | b'f' => unknown(b, 4),
        b'W' => unknown(b, 10),
        // ESC ( x pL pH ...
        b'(' => pl_ph(b, 3, |all, _| Command::Unknown(all.to_vec())),
        // ESC * m nL nH d...: bit image, 8-dot (m 0, 1) or 24-dot (m 32, 33) columns.
        b'*' => {
            if b.len() < 5 {
                return Step::NeedMore;
            }
            let mode = at(b, 2);
            let columns = u16::from_le_bytes([at(b, 3), at(b, 4)]);
            let Some(len) = column_image_len(mode, columns) else {
                return unknown(b, 2);
            };
            with_payload(b, 5, len as u64, |_, data| Command::ColumnImage {
                mode,
                columns,
                data: data.to_vec(),
            })
        }
        // ESC & y c1 c2 [x d1...d(y*x)]...: define user-defined characters.
        b'&' => parse_user_chars(b),
        // ESC D n1...nk NUL: horizontal tab positions (at most 32).
        b'D' => nul_terminated(b, 2, 32),
        _ => unknown(b, 2),
    }
}

fn parse_user_chars(b: &[u8]) -> Step {
    if b.len() < 5 {
        return Step::NeedMore;
    }
    let (y, c1, c2) = (at(b, 2), at(b, 3), at(b, 4));
    if !(1..=3).contains(&y) || c1 < 32 || c2 > 126 || c1 > c2 {
        return unknown(b, 5);
    }
    let mut pos = 5usize;
    for _ in c1..=c2 {
        let Some(&x) = b.get(pos) else {
            return Step::NeedMore;
        };
        pos += 1 + usize::from(y) * usize::from(x);
    }
    unknown(b, pos)
}

fn parse_gs(b: &[u8]) -> Step {
    if b.len() < 2 {
        return Step::NeedMore;
    }
    match at(b, 1) {
        b'!' => fixed(b, 3, |p| {
            let n = at(p, 2);
            if n & 0x88 == 0 {
                Command::CharacterSize {
                    width: (n >> 4) + 1,
                    height: (n & 0x07) + 1,
                }
            } else {
                Command::Unknown(p.to_vec())
            }
        }),
        b'B' => fixed(b, 3, |p| Command::Reverse(at(p, 2) & 1 == 1)),
        b'h' => fixed(b, 3, |p| Command::BarcodeHeight(at(p, 2))),
        b'w' => fixed(b, 3, |p| Command::BarcodeModuleWidth(at(p, 2))),
        b'H' => fixed(b, 3, |p| Command::HriPosition(at(p, 2))),
        b'f' => fixed(b, 3, |p| Command::HriFont(at(p, 2))),
        b'a' => fixed(b, 3, |p| Command::AutoStatusBack(at(p, 2))),
        b'I' => fixed(b, 3, |p| Command::TransmitPrinterId(at(p, 2))),
        b'V' => {
            if b.len() < 3 {
                return Step::NeedMore;
            }
            let mode = at(b, 2);
            if cut_without_feed(mode) {
                Step::Done(Command::Cut { mode, feed: None }, 3)
            } else if cut_takes_feed(mode) {
                fixed(b, 4, |p| Command::Cut {
                    mode,
                    feed: Some(at(p, 3)),
                })
            } else {
                unknown(b, 3)
            }
        }
        b'k' => parse_barcode(b),
        b'(' => pl_ph(b, 3, |all, payload| match at(all, 2) {
            b'k' => parse_gs_paren_k(all, payload),
            b'L' => match payload {
                [48, 50] => Command::GraphicsPrint,
                [48, 112, 48, 1, 1, 49, xl, xh, yl, yh, data @ ..] => {
                    let width = u16::from_le_bytes([*xl, *xh]);
                    let height = u16::from_le_bytes([*yl, *yh]);
                    if usize::from(width).div_ceil(8) * usize::from(height) == data.len() {
                        Command::GraphicsStore {
                            width,
                            height,
                            data: data.to_vec(),
                        }
                    } else {
                        Command::Unknown(all.to_vec())
                    }
                }
                _ => Command::Unknown(all.to_vec()),
            },
            b'H' => match payload {
                &[48, 48, d1, d2, d3, d4] => Command::ProcessIdRequest([d1, d2, d3, d4]),
                _ => Command::Unknown(all.to_vec()),
            },
            _ => Command::Unknown(all.to_vec()),
        }),
        b'v' => {
            if b.len() < 3 {
                return Step::NeedMore;
            }
            if at(b, 2) != b'0' {
                return unknown(b, 2);
            }
            if b.len() < 8 {
                return Step::NeedMore;
            }
            let mode = at(b, 3);
            let width_bytes = u16::from_le_bytes([at(b, 4), at(b, 5)]);
            let height = u16::from_le_bytes([at(b, 6), at(b, 7)]);
            let len = u64::from(width_bytes) * u64::from(height);
            with_payload(b, 8, len, |_, data| Command::RasterImage {
                mode,
                width_bytes,
                height,
                data: data.to_vec(),
            })
        }
        // GS 8 L p1 p2 p3 p4 ...: graphics data with a 32-bit length.
        b'8' => {
            if b.len() < 3 {
                return Step::NeedMore;
            }
            if at(b, 2) != b'L' {
                return unknown(b, 2);
            }
            if b.len() < 7 {
                return Step::NeedMore;
            }
            let len = u64::from(u32::from_le_bytes([at(b, 3), at(b, 4), at(b, 5), at(b, 6)]));
            with_payload(b, 7, len, |all, _| Command::Unknown(all.to_vec()))
        }
        // GS * x y d...: define downloaded bit image (x × y × 8 bytes).
        b'*' => {
            if b.len() < 4 {
                return Step::NeedMore;
            }
            let len = u64::from(at(b, 2)) * u64::from(at(b, 3)) * 8;
            with_payload(b, 4, len, |all, _| Command::Unknown(all.to_vec()))
        }
        b':' | b'c' => unknown(b, 2),
        b'/' | b'E' | b'T' | b'b' | b'j' | b'r' => unknown(b, 3),
        b'$' | b'L' | b'P' | b'W' | b'\\' => unknown(b, 4),
        b'^' | b'z' => unknown(b, 5),
        b'g' => unknown(b, 6),
        _ => unknown(b, 2),
    }
}

/// GS k: function A (m 0-6, data to NUL) or function B (m 65-78, length byte).
fn parse_barcode(b: &[u8]) -> Step {
    if b.len() < 3 {
        return Step::NeedMore;
    }
    let system = at(b, 2);
    match system {
        0..=6 => nul_terminated(b, 3, 255),
        65..=78 => {
            if b.len() < 4 {
                return Step::NeedMore;
            }
            let n = usize::from(at(b, 3));
            fixed(b, 4 + n, |p| Command::Barcode {
                system,
                data: p.get(4..).unwrap_or_default().to_vec(),
            })
        }
        _ => unknown(b, 3),
    }
}

/// GS ( k: the QR functions (cn = 49) we model; anything else is Unknown.
fn parse_gs_paren_k(all: &[u8], payload: &[u8]) -> Command {
    match payload {
        &[49, 65, n1, 0] => Command::QrModel(n1),
        &[49, 67, n] => Command::QrModuleSize(n),
        &[49, 69, n] => Command::QrErrorCorrection(n),
        [49, 80, 48, data @ ..] => Command::QrStore(data.to_vec()),
        &[49, 81, 48] => Command::QrPrint,
        _ => Command::Unknown(all.to_vec()),
    }
}

fn parse_fs(b: &[u8]) -> Step {
    if b.len() < 2 {
        return Step::NeedMore;
    }
    match at(b, 1) {
        b'&' => Step::Done(Command::ChineseMode(true), 2),
        b'.' => Step::Done(Command::ChineseMode(false), 2),
        b'!' | b'-' | b'C' | b'W' => unknown(b, 3),
        b'S' | b'p' | b'?' => unknown(b, 4),
        // FS 2 c1 c2 d1...d72: define a user-defined Kanji character (24 × 24 dots).
        b'2' => unknown(b, 76),
        b'(' => pl_ph(b, 3, |all, _| Command::Unknown(all.to_vec())),
        _ => unknown(b, 2),
    }
}

fn parse_dle(b: &[u8]) -> Step {
    if b.len() < 2 {
        return Step::NeedMore;
    }
    match at(b, 1) {
        // DLE EOT n [a]
        0x04 => {
            if b.len() < 3 {
                return Step::NeedMore;
            }
            match at(b, 2) {
                7 | 8 | 18 => unknown(b, 4),
                n => Step::Done(Command::RealTimeStatus(n), 3),
            }
        }
        // DLE ENQ n
        0x05 => fixed(b, 3, |p| Command::RealTimeRequest(at(p, 2))),
        // DLE DC4 fn ...
        0x14 => {
            if b.len() < 3 {
                return Step::NeedMore;
            }
            match at(b, 2) {
                1 | 2 => unknown(b, 5),
                7 => unknown(b, 4),
                8 => fixed(b, 10, |p| {
                    if p.get(3..) == Some(&CLEAR_BUFFER_DATA[..]) {
                        Command::ClearBuffer
                    } else {
                        Command::Unknown(p.to_vec())
                    }
                }),
                _ => unknown(b, 3),
            }
        }
        _ => unknown(b, 2),
    }
}

/// A streaming ESC/POS parser: push bytes as they arrive, take commands as they complete.
///
/// Memory is bounded by what has been pushed and not yet parsed, plus at most
/// [`MAX_COMMAND_LEN`] for a command being waited for; larger declared payloads are skipped
/// without buffering (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Parser {
    buf: Vec<u8>,
    pos: usize,
    skip: u64,
    consumed: u64,
}

impl Parser {
    /// An empty parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        let mut bytes = bytes;
        if self.skip > 0 {
            let n = usize::try_from(self.skip).map_or(bytes.len(), |s| s.min(bytes.len()));
            self.skip -= n as u64;
            self.consumed += n as u64;
            bytes = bytes.get(n..).unwrap_or_default();
        }
        if bytes.is_empty() {
            return;
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos.min(self.buf.len()));
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete command, or `None` when the buffered bytes do not finish one yet
    /// (they stay buffered until more arrive). A text run is returned as far as it has been
    /// received.
    pub fn next_command(&mut self) -> Option<Command> {
        let avail = self.buf.get(self.pos..).unwrap_or_default();
        let (cmd, len, skip) = match parse_one(avail) {
            Step::NeedMore => return None,
            Step::Done(cmd, len) => (cmd, len, 0),
            Step::SkipAfter(cmd, len, skip) => (cmd, len, skip),
        };
        self.pos += len;
        self.consumed += len as u64;
        if skip > 0 {
            let have = self.buf.len().saturating_sub(self.pos);
            let now = usize::try_from(skip).map_or(have, |s| s.min(have));
            self.pos += now;
            self.consumed += now as u64;
            self.skip = skip - now as u64;
        }
        if self.pos >= self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        Some(cmd)
    }

    /// Bytes received but not yet returned as a command (an incomplete command).
    pub fn pending(&self) -> &[u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Bytes of an oversized payload still to be skipped as they arrive.
    pub fn skipping(&self) -> u64 {
        self.skip
    }

    /// Bytes consumed so far: returned as commands or skipped. With
    /// [`pending`](Parser::pending), it accounts for every byte pushed.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }
}

impl Iterator for Parser {
    type Item = Command;

    fn next(&mut self) -> Option<Command> {
        self.next_command()
    }
}

/// Parses a whole byte string: the complete commands, and how many bytes at the end form
/// an incomplete command.
pub fn parse_all(bytes: &[u8]) -> (Vec<Command>, usize) {
    let mut parser = Parser::new();
    parser.push(bytes);
    let cmds: Vec<Command> = parser.by_ref().collect();
    (cmds, parser.pending().len())
}
