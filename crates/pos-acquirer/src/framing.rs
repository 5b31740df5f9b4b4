//! 2-byte big-endian length framing over a byte stream (TCP).

use crate::error::CodecError;

/// The largest message a 2-byte header can carry.
pub const MAX_FRAME: usize = u16::MAX as usize;

/// Prefix a message with its length as 2 bytes big-endian. Refuses an empty message or one
/// longer than [`MAX_FRAME`].
pub fn frame(msg: &[u8]) -> Result<Vec<u8>, CodecError> {
    let len = u16::try_from(msg.len())
        .ok()
        .filter(|&l| l > 0)
        .ok_or(CodecError::FrameLength {
            len: msg.len(),
            max: MAX_FRAME,
        })?;
    let mut out = Vec::with_capacity(msg.len() + 2);
    out.extend(len.to_be_bytes());
    out.extend(msg);
    Ok(out)
}

/// Splits a byte stream into length-framed messages, whatever the read sizes.
///
/// ```
/// use pos_acquirer::{Deframer, frame};
/// let mut d = Deframer::new(4096);
/// let bytes = frame(b"0800").unwrap();
/// d.push(&bytes[..3]);
/// assert_eq!(d.next_frame(), Ok(None));
/// d.push(&bytes[3..]);
/// assert_eq!(d.next_frame(), Ok(Some(b"0800".to_vec())));
/// ```
#[derive(Debug, Clone)]
pub struct Deframer {
    buf: Vec<u8>,
    max: usize,
}

impl Deframer {
    /// A deframer accepting messages of 1..=`max` bytes (`max` is capped at [`MAX_FRAME`]).
    pub fn new(max: usize) -> Self {
        Deframer {
            buf: Vec::new(),
            max: max.min(MAX_FRAME),
        }
    }

    /// Append bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that do not yet make a whole message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole message, `Ok(None)` if more bytes are needed.
    ///
    /// A header of 0 or above the maximum is an error, and stays one: the stream has lost
    /// sync and the connection should be dropped.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, CodecError> {
        let [hi, lo, ..] = self.buf[..] else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len == 0 || len > self.max {
            return Err(CodecError::FrameLength { len, max: self.max });
        }
        if self.buf.len() < 2 + len {
            return Ok(None);
        }
        let msg = self.buf[2..2 + len].to_vec();
        self.buf.drain(..2 + len);
        Ok(Some(msg))
    }
}
