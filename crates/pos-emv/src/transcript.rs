//! APDU transcripts: recorded card sessions, one APDU per line.
//!
//! ```text
//! # a comment
//! > 00A4040007A000000004101000
//! < 6F1C8407A0000000041010A511500F505043204D434420303420207632309000
//! ```
//!
//! `> HEX` is a command APDU the terminal sent, `< HEX` the card's response (data then SW1
//! SW2). Hex digits may be separated by spaces; letters in either case. Lines starting with
//! `#` are comments; blank lines are ignored. Every `>` must be followed by its `<` (comments
//! and blank lines may come between); a response needs at least SW1 SW2, a command at least
//! its four header bytes.
//!
//! The shared test vectors (`testdata/emv/*.apdu`) use this format; the scripted virtual
//! card (feature `sim`) replays it. Transcripts of real cards hold card data (PAN, track 2):
//! keep them to test cards.

use std::fmt;
use std::path::{Path, PathBuf};

/// One command and the card's response to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The command APDU as sent.
    pub command: Vec<u8>,
    /// The response APDU as received (data, SW1, SW2).
    pub response: Vec<u8>,
}

impl Exchange {
    /// The response's status word (`0x9000`); the parser guarantees at least two bytes.
    pub fn sw(&self) -> u16 {
        match self.response.split_last_chunk::<2>() {
            Some((_, sw)) => u16::from_be_bytes(*sw),
            None => 0,
        }
    }

    /// The command header `CLA INS P1 P2` (shorter only for exchanges not built by the
    /// parser).
    pub fn header(&self) -> &[u8] {
        self.command.get(..4).unwrap_or(&self.command)
    }
}

/// A parsed transcript.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transcript {
    /// The comment lines, in order, without the `#` and surrounding spaces.
    pub comments: Vec<String>,
    /// The exchanges, in order.
    pub exchanges: Vec<Exchange>,
}

/// Why a transcript could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TranscriptError {
    /// A line is not valid; `line` counts from 1.
    #[error("line {line}: {message}")]
    Line {
        /// Line number (1-based).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl TranscriptError {
    /// The line number of a [`TranscriptError::Line`] error.
    pub fn line(&self) -> Option<usize> {
        match self {
            TranscriptError::Line { line, .. } => Some(*line),
            TranscriptError::Io { .. } => None,
        }
    }
}

impl pos_hal::Fault for TranscriptError {
    fn kind(&self) -> pos_hal::FaultKind {
        match self {
            TranscriptError::Line { .. } => pos_hal::FaultKind::InvalidInput,
            TranscriptError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                pos_hal::FaultKind::NotFound
            }
            TranscriptError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                pos_hal::FaultKind::PermissionDenied
            }
            TranscriptError::Io { .. } => pos_hal::FaultKind::Io,
        }
    }
}

fn line_error(line: usize, message: impl Into<String>) -> TranscriptError {
    TranscriptError::Line {
        line,
        message: message.into(),
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Hex digits (whitespace between them allowed) to bytes.
fn parse_hex(text: &str, line: usize) -> Result<Vec<u8>, TranscriptError> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut high: Option<u8> = None;
    for (i, c) in text.bytes().enumerate() {
        if c.is_ascii_whitespace() {
            continue;
        }
        let Some(v) = hex_value(c) else {
            return Err(line_error(
                line,
                format!(
                    "{:?} (character {} of the hex) is not a hex digit",
                    char::from(c),
                    i + 1
                ),
            ));
        };
        match high.take() {
            None => high = Some(v),
            Some(h) => out.push(h << 4 | v),
        }
    }
    if high.is_some() {
        return Err(line_error(line, "odd number of hex digits"));
    }
    Ok(out)
}

impl Transcript {
    /// Parse transcript text.
    ///
    /// Errors: [`TranscriptError::Line`] naming the line: an unknown line start, bad hex, a
    /// command under 4 bytes or response under 2, a `<` with no `>` before it, a `>` whose
    /// `<` is missing (at the next `>` or at the end of the text: the line of that `>`).
    pub fn parse(text: &str) -> Result<Transcript, TranscriptError> {
        let mut t = Transcript::default();
        // The pending command and its line number.
        let mut pending: Option<(Vec<u8>, usize)> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            if let Some(comment) = trimmed.strip_prefix('#') {
                t.comments.push(comment.trim().to_string());
            } else if let Some(hex) = trimmed.strip_prefix('>') {
                if let Some((_, at)) = pending {
                    return Err(line_error(
                        at,
                        format!("command has no response ('<' line) before line {line}"),
                    ));
                }
                let cmd = parse_hex(hex, line)?;
                if cmd.len() < 4 {
                    return Err(line_error(
                        line,
                        format!(
                            "command of {} byte(s): a command has at least 4 (CLA INS P1 P2)",
                            cmd.len()
                        ),
                    ));
                }
                pending = Some((cmd, line));
            } else if let Some(hex) = trimmed.strip_prefix('<') {
                let Some((command, _)) = pending.take() else {
                    return Err(line_error(
                        line,
                        "response ('<') without a command ('>') before it",
                    ));
                };
                let response = parse_hex(hex, line)?;
                if response.len() < 2 {
                    return Err(line_error(
                        line,
                        format!(
                            "response of {} byte(s): a response has at least SW1 SW2",
                            response.len()
                        ),
                    ));
                }
                t.exchanges.push(Exchange { command, response });
            } else {
                return Err(line_error(
                    line,
                    "expected '> command', '< response', '# comment' or a blank line",
                ));
            }
        }
        if let Some((_, at)) = pending {
            return Err(line_error(
                at,
                "command has no response ('<' line) at the end",
            ));
        }
        Ok(t)
    }

    /// Read and parse a transcript file.
    ///
    /// Errors: [`TranscriptError::Io`], or as [`Transcript::parse`].
    pub fn load(path: impl AsRef<Path>) -> Result<Transcript, TranscriptError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| TranscriptError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Transcript::parse(&text)
    }

    /// What the card's records held: the primitive data objects of every READ RECORD
    /// response (`00 B2`, status `9000`), by tag, and the records themselves (what the
    /// decision tests start from when they replay a session).
    ///
    /// Errors: the [`crate::tlv::TlvError`] of a record that is not well-formed BER-TLV.
    pub fn record_data(&self) -> Result<crate::read::CardData, crate::tlv::TlvError> {
        let mut card = crate::read::CardData::default();
        for ex in &self.exchanges {
            if ex.header().get(..2) != Some(&[0x00, 0xB2][..]) || ex.sw() != 0x9000 {
                continue;
            }
            let data = ex
                .response
                .get(..ex.response.len().saturating_sub(2))
                .unwrap_or_default();
            for o in crate::tlv::flatten(data)? {
                card.tags.insert(o.tag, o.value.to_vec());
            }
            card.records.push(data.to_vec());
        }
        Ok(card)
    }

    /// Number of exchanges.
    pub fn len(&self) -> usize {
        self.exchanges.len()
    }

    /// True when there are no exchanges.
    pub fn is_empty(&self) -> bool {
        self.exchanges.is_empty()
    }

    /// Add an exchange (for recording a session).
    pub fn push(&mut self, command: impl Into<Vec<u8>>, response: impl Into<Vec<u8>>) {
        self.exchanges.push(Exchange {
            command: command.into(),
            response: response.into(),
        });
    }
}

/// Writes the transcript in the format [`Transcript::parse`] reads: the comments first, then
/// the exchanges (upper-case hex, no spaces).
impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.comments {
            writeln!(f, "# {c}")?;
        }
        for e in &self.exchanges {
            writeln!(f, "> {}", hex::encode_upper(&e.command))?;
            writeln!(f, "< {}", hex::encode_upper(&e.response))?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Transcript {
    type Err = TranscriptError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Transcript::parse(s)
    }
}
