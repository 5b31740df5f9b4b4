//! Raw bitstreams: decoding and encoding of one track.

use core::fmt;

use crate::{Track, TrackStatus};

/// Capacity of a [`TrackBuf`]: the longest data part of any track (track 3: 107 characters
/// minus start sentinel, end sentinel and LRC).
pub const TRACK_BUF_CAPACITY: usize = 104;

/// Fixed-size buffer for the decoded data characters of one track (ASCII, without sentinels
/// and LRC). No allocation; `Debug` does not show the contents (they are card data).
#[derive(Clone, PartialEq, Eq)]
pub struct TrackBuf {
    buf: [u8; TRACK_BUF_CAPACITY],
    len: usize,
}

impl TrackBuf {
    /// Capacity in characters.
    pub const CAPACITY: usize = TRACK_BUF_CAPACITY;

    /// An empty buffer.
    pub const fn new() -> Self {
        TrackBuf {
            buf: [0; TRACK_BUF_CAPACITY],
            len: 0,
        }
    }

    /// Empties the buffer and overwrites the previous contents with zeros.
    pub fn clear(&mut self) {
        self.buf = [0; TRACK_BUF_CAPACITY];
        self.len = 0;
    }

    /// Number of characters.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// True if there are no characters.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The characters as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// The characters as text (always ASCII; empty if it somehow was not).
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// Appends one character; false (and nothing appended) if the buffer is full.
    fn push(&mut self, c: u8) -> bool {
        match self.buf.get_mut(self.len) {
            Some(slot) => {
                *slot = c;
                self.len += 1;
                true
            }
            None => false,
        }
    }
}

impl Default for TrackBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TrackBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrackBuf {{ len: {}, .. }}", self.len)
    }
}

/// Why [`encode_bits`] could not encode a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// More data characters than the track holds.
    TooLong {
        /// Maximum number of data characters of the track.
        max: usize,
    },
    /// A character outside the track's character set, or a sentinel inside the data.
    InvalidChar {
        /// Byte index in the text.
        index: usize,
        /// The offending byte.
        byte: u8,
    },
    /// The output slice is too short.
    BufferTooSmall {
        /// Bits needed.
        needed: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooLong { max } => write!(f, "track data longer than {max} characters"),
            EncodeError::InvalidChar { index, byte } => {
                write!(
                    f,
                    "byte 0x{byte:02X} at {index} cannot be encoded on this track"
                )
            }
            EncodeError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small ({needed} bits needed)")
            }
        }
    }
}

impl core::error::Error for EncodeError {}

/// The character code with its odd-parity bit set above the data bits.
const fn with_parity(track: Track, code: u8) -> u8 {
    let code = code & data_mask(track);
    if code.count_ones() % 2 == 0 {
        code | (1 << track.data_bits())
    } else {
        code
    }
}

const fn data_mask(track: Track) -> u8 {
    (1u8 << track.data_bits()) - 1
}

/// Decodes one track from a raw bitstream.
///
/// `bits` holds one bit per byte in stripe order (any non-zero byte is a 1), each character
/// least significant bit first followed by its odd-parity bit, padded with zeros before and
/// after. The stream is first read forwards; if that fails it is read backwards (a reversed
/// swipe), and the backwards result is used if it is ok or if no start sentinel was found
/// forwards. On [`TrackStatus::Ok`] `out` holds the data characters
/// between the sentinels as ASCII; on any other status `out` is empty.
///
/// Statuses: [`TrackStatus::Empty`] (no 1 bit at all), [`TrackStatus::StartSentinel`] (the
/// first character in either direction is not the start sentinel), [`TrackStatus::Parity`]
/// (a character after the start sentinel has even parity), [`TrackStatus::EndSentinel`]
/// (padding, the end of the stream or the track's maximum length reached before the end
/// sentinel), [`TrackStatus::Lrc`] (LRC character missing, with bad parity, not matching, or
/// followed by anything but zero padding).
/// Never panics.
pub fn decode_bits(track: Track, bits: &[u8], out: &mut TrackBuf) -> TrackStatus {
    out.clear();
    let n = bits.len();
    let forward = decode_dir(track, n, |i| bits.get(i).is_some_and(|&b| b != 0), out);
    if forward == TrackStatus::Ok || forward == TrackStatus::Empty {
        return forward;
    }
    // A reversed swipe: its first bits are the LRC and end sentinel backwards, which can
    // look like a start sentinel by chance, so any forward failure tries the other way.
    out.clear();
    let reversed = decode_dir(
        track,
        n,
        |i| {
            n.checked_sub(i + 1)
                .and_then(|j| bits.get(j))
                .is_some_and(|&b| b != 0)
        },
        out,
    );
    match reversed {
        TrackStatus::Ok => TrackStatus::Ok,
        // No start sentinel forwards: the reversed reading tells what went wrong.
        _ if forward == TrackStatus::StartSentinel => {
            out.clear();
            reversed
        }
        // A start sentinel forwards: report what went wrong after it.
        _ => {
            out.clear();
            forward
        }
    }
}

fn decode_dir(
    track: Track,
    n: usize,
    bit: impl Fn(usize) -> bool,
    out: &mut TrackBuf,
) -> TrackStatus {
    let w = track.char_bits();
    let mask = data_mask(track);
    let off = track.ascii_offset();
    let ss = track.start_sentinel() - off;
    let es = track.end_sentinel() - off;
    let read = |pos: usize| -> Option<u8> {
        if pos.checked_add(w)? > n {
            return None;
        }
        let mut raw = 0u8;
        for k in 0..w {
            if bit(pos + k) {
                raw |= 1 << k;
            }
        }
        Some(raw)
    };

    let Some(mut pos) = (0..n).find(|&i| bit(i)) else {
        return TrackStatus::Empty;
    };
    match read(pos) {
        Some(raw) if raw == with_parity(track, ss) => {}
        _ => return TrackStatus::StartSentinel,
    }
    pos += w;
    let mut lrc = ss;
    let status = loop {
        let Some(raw) = read(pos) else {
            break TrackStatus::EndSentinel;
        };
        pos += w;
        if raw == 0 {
            // Only padding follows: the data ended without an end sentinel. Otherwise this
            // is a corrupted character (all zeros has even parity).
            break if (pos..n).any(&bit) {
                TrackStatus::Parity
            } else {
                TrackStatus::EndSentinel
            };
        }
        if raw.count_ones() % 2 == 0 {
            break TrackStatus::Parity;
        }
        let code = raw & mask;
        lrc ^= code;
        if code == es {
            break match read(pos) {
                // Only padding may follow the LRC: random bits inside a longer stream (the
                // other direction of a swipe, a corrupted sentinel) can form a short valid
                // frame by chance, and must not read as ok.
                Some(raw)
                    if raw.count_ones() % 2 == 1
                        && raw & mask == lrc
                        && !(pos + w..n).any(&bit) =>
                {
                    TrackStatus::Ok
                }
                _ => TrackStatus::Lrc,
            };
        }
        if out.len() >= track.max_data() || !out.push(code + off) {
            break TrackStatus::EndSentinel;
        }
    };
    if status != TrackStatus::Ok {
        out.clear();
    }
    status
}

/// Encodes `text` (the data characters between the sentinels, as ASCII) as a raw bitstream:
/// `leading_zeros` zero bits, the start sentinel, the characters, the end sentinel and the
/// LRC, each character LSB first followed by its odd-parity bit, one bit per byte (0 or 1).
/// No trailing zeros are written. Returns the number of bits written to `out`.
pub fn encode_bits(
    track: Track,
    text: &str,
    leading_zeros: usize,
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    let bytes = text.as_bytes();
    if bytes.len() > track.max_data() {
        return Err(EncodeError::TooLong {
            max: track.max_data(),
        });
    }
    for (index, &byte) in bytes.iter().enumerate() {
        if !track.is_encodable(byte)
            || byte == track.start_sentinel()
            || byte == track.end_sentinel()
        {
            return Err(EncodeError::InvalidChar { index, byte });
        }
    }
    let w = track.char_bits();
    let needed = (bytes.len() + 3)
        .checked_mul(w)
        .and_then(|b| b.checked_add(leading_zeros))
        .ok_or(EncodeError::BufferTooSmall { needed: usize::MAX })?;
    let Some(out) = out.get_mut(..needed) else {
        return Err(EncodeError::BufferTooSmall { needed });
    };
    let (zeros, chars) = out.split_at_mut(leading_zeros);
    zeros.fill(0);
    let off = track.ascii_offset();
    let ss = track.start_sentinel() - off;
    let es = track.end_sentinel() - off;
    let mut lrc = 0u8;
    let codes = core::iter::once(ss)
        .chain(bytes.iter().map(|&b| b - off))
        .chain(core::iter::once(es));
    let mut slots = chars.chunks_exact_mut(w);
    for code in codes {
        lrc ^= code;
        if let Some(slot) = slots.next() {
            put_char(track, code, slot);
        }
    }
    if let Some(slot) = slots.next() {
        put_char(track, lrc, slot);
    }
    Ok(needed)
}

fn put_char(track: Track, code: u8, slot: &mut [u8]) {
    let raw = with_parity(track, code);
    for (k, b) in slot.iter_mut().enumerate() {
        *b = (raw >> k) & 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_bit_patterns() {
        // ';' on track 2 is 1101 + parity 0; '%' on track 1 is 101000 + parity 1.
        let mut out = [0u8; 64];
        let n = encode_bits(Track::Two, "", 0, &mut out).expect("encodes");
        assert_eq!(n, 15);
        assert_eq!(&out[..5], &[1, 1, 0, 1, 0]);
        assert_eq!(&out[5..10], &[1, 1, 1, 1, 1]); // '?' = 1111, parity 1
        let n = encode_bits(Track::One, "", 0, &mut out).expect("encodes");
        assert_eq!(n, 21);
        assert_eq!(&out[..7], &[1, 0, 1, 0, 0, 0, 1]);
    }
}
