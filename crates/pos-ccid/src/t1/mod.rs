//! The T=1 block protocol (ISO/IEC 7816-3 clause 11), both sides.
//!
//! - [`Block`]: one block (NAD, PCB, INF) with its [`encode`](Block::encode) and
//!   [`decode`](Block::decode), the single codec used by the driver and by the virtual card.
//! - [`T1Terminal`]: the interface-device side, for readers that exchange TPDUs (the host runs
//!   the block protocol; the reader only moves one block per `XfrBlock`). It chains commands
//!   and responses, answers waiting-time extensions and IFS requests, recovers from
//!   transmission errors by the ISO retransmission rules and resynchronises when they fail.
//! - [`T1Card`]: the card side, for the virtual reader, with fault injection (WTX storms,
//!   corrupted blocks, chain aborts).
//!
//! ```
//! use pos_ccid::atr::ParsedAtr;
//! use pos_ccid::t1::{BlockTransport, CardAction, T1Card, T1Terminal};
//!
//! /// A card on a wire: the virtual reader does this, a real reader does an XfrBlock.
//! struct Wire(T1Card);
//!
//! impl BlockTransport for Wire {
//!     type Error = &'static str;
//!     fn exchange(&mut self, block: &[u8], _wtx: u8) -> Result<Vec<u8>, Self::Error> {
//!         let mut app = |apdu: &[u8]| Some([apdu, &[0x90, 0x00]].concat());
//!         match self.0.handle(block, &mut app) {
//!             CardAction::Reply(bytes) => Ok(bytes),
//!             CardAction::Mute => Err("timeout"),
//!         }
//!     }
//! }
//!
//! let atr = ParsedAtr::parse(&[
//!     0x3B, 0xE9, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x45, 0x4A, 0x43, 0x4F, 0x50, 0x34, 0x31,
//!     0x56, 0x32, 0x32, 0xA7,
//! ])?;
//! let mut wire = Wire(T1Card::from_atr(&atr));
//! let mut t1 = T1Terminal::from_atr(&atr);
//! t1.negotiate_ifsd(&mut wire, 254)?;
//! let apdu = [0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00];
//! assert_eq!(t1.transceive(&mut wire, &apdu)?, [&apdu[..], &[0x90, 0x00]].concat());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # For transport authors
//!
//! [`BlockTransport::exchange`] sends one encoded block and returns the card's next block. It
//! owns the timeout: BWT (from [`crate::atr::ParsedAtr::bwt`]) times the `wtx` multiplier it
//! is given, clamped with [`crate::atr::scale_timeout`]. Every error it returns is handed back
//! unchanged as [`T1Error::Transport`] at once, unless [`BlockTransport::is_recoverable`] says
//! the error is a plain transmission fault (a block lost to a parity error or a BWT timeout
//! while the card is still present), in which case the engine treats it like an invalid block
//! (an R-block asks for a retransmission). Card removal must never be reported as
//! recoverable.
//!
//! # Bounds
//!
//! A hostile or broken card cannot keep the engine busy: every call to
//! [`T1Terminal::transceive`] exchanges at most [`T1Terminal::max_blocks`] blocks (plus one per
//! command byte, so long commands still fit), accepts at most
//! [`T1Terminal::max_consecutive_wtx`] waiting-time extensions in a row and at most
//! [`T1Terminal::max_response_len`] response bytes.

use std::fmt;

use serde::{Deserialize, Serialize};

mod card;
mod terminal;

pub use card::{CardAction, T1Card};
pub use terminal::T1Terminal;

/// Largest INF field of a block (LEN = 0xFF is reserved).
pub(crate) const MAX_INF: usize = 254;

/// Default information field size (IFSC and IFSD) before any ATR byte or S(IFS) changes it.
pub(crate) const DEFAULT_IFS: u8 = 32;

/// Largest response [`T1Terminal::transceive`] accepts by default: an extended Le of 65536
/// bytes plus SW1 SW2.
pub(crate) const DEFAULT_MAX_RESPONSE_LEN: usize = 65_538;

/// Error detection code of a T=1 block, chosen by the first TC for T=1 in the ATR (bit 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Checksum {
    /// Longitudinal redundancy check: one byte, the XOR of every byte of the block (the
    /// default, and the only code EMV allows).
    #[default]
    Lrc,
    /// Cyclic redundancy check: two bytes, see [`crc16`].
    Crc,
}

impl Checksum {
    /// Length of the EDC field in bytes (1 for LRC, 2 for CRC).
    pub(crate) fn edc_len(self) -> usize {
        match self {
            Checksum::Lrc => 1,
            Checksum::Crc => 2,
        }
    }

    /// Appends the EDC of `data` to `out`.
    pub(crate) fn append(self, data: &[u8], out: &mut Vec<u8>) {
        match self {
            Checksum::Lrc => out.push(lrc(data)),
            Checksum::Crc => out.extend_from_slice(&crc16(data).to_be_bytes()),
        }
    }

    /// The EDC bytes of `data`.
    pub(crate) fn compute(self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(2);
        self.append(data, &mut out);
        out
    }
}

/// LRC of `data`: the exclusive-or of all its bytes.
pub fn lrc(data: &[u8]) -> u8 {
    data.iter().fold(0, |acc, b| acc ^ b)
}

/// CRC of `data` as T=1 uses it: generator x^16 + x^12 + x^5 + 1 processed least significant
/// bit first (reflected polynomial 0x8408), initial value 0xFFFF, no final XOR. The block
/// carries it most significant byte first. This is the variant the
/// deployed open-source reader stacks interoperate with; EMV cards use LRC only.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in data {
        crc ^= u16::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// Error indication carried by an R-block (PCB bits 4 to 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RError {
    /// Error-free acknowledgement (0000).
    None,
    /// EDC or parity error in the last block received (0001).
    Edc,
    /// Any other error (0010).
    Other,
}

impl RError {
    fn bits(self) -> u8 {
        match self {
            RError::None => 0,
            RError::Edc => 1,
            RError::Other => 2,
        }
    }
}

/// Function of an S-block (PCB bits 5 to 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SKind {
    /// Resynchronisation (00000); only the interface device requests it.
    Resync,
    /// Information field size (00001): INF is one byte, the new IFSC or IFSD.
    Ifs,
    /// Chain abort (00010).
    Abort,
    /// Waiting time extension (00011): INF is one byte, the BWT multiplier; only the card
    /// requests it.
    Wtx,
}

impl SKind {
    fn bits(self) -> u8 {
        match self {
            SKind::Resync => 0,
            SKind::Ifs => 1,
            SKind::Abort => 2,
            SKind::Wtx => 3,
        }
    }
}

/// What a block is, decoded from its PCB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BlockKind {
    /// Information block: carries (part of) an APDU.
    I {
        /// Send sequence number N(S).
        ns: bool,
        /// More-data bit M: another block of the same chain follows.
        more: bool,
    },
    /// Receive-ready block: acknowledges a chained I-block or asks for a retransmission.
    R {
        /// N(R): the N(S) of the I-block the sender expects next.
        nr: bool,
        /// Error indication.
        error: RError,
    },
    /// Supervisory block.
    S {
        /// Function.
        kind: SKind,
        /// `false` for a request, `true` for a response.
        response: bool,
    },
}

/// Why bytes are not a valid T=1 block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Fewer bytes than a prologue and an EDC.
    #[error("block too short: {len} bytes")]
    TooShort {
        /// Number of bytes received.
        len: usize,
    },
    /// LEN = 0xFF, which is reserved.
    #[error("block LEN 0xFF is reserved")]
    ReservedLen,
    /// The number of bytes does not match LEN.
    #[error("block LEN says {len_field} INF bytes but {actual} bytes were received in all")]
    LengthMismatch {
        /// The LEN byte.
        len_field: u8,
        /// Total number of bytes received.
        actual: usize,
    },
    /// The EDC does not match the block (transmission error).
    #[error("block EDC mismatch: received {found:02X?}, computed {computed:02X?}")]
    Edc {
        /// EDC bytes received.
        found: Vec<u8>,
        /// EDC bytes computed over the block.
        computed: Vec<u8>,
    },
    /// The PCB codes no known block (reserved R-block or S-block bits).
    #[error("invalid PCB {0:#04x}")]
    BadPcb(u8),
    /// An R-block with an INF field.
    #[error("R-block with {0} INF bytes")]
    RBlockWithInf(usize),
    /// INF longer than 254 bytes cannot be encoded.
    #[error("INF of {0} bytes is longer than 254")]
    InfTooLong(usize),
}

impl BlockError {
    /// The R-block error indication a receiver answers this error with.
    pub fn r_error(&self) -> RError {
        match self {
            BlockError::Edc { .. } => RError::Edc,
            _ => RError::Other,
        }
    }
}

/// One T=1 block.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Block {
    /// Node address byte (0 when addressing is not used, as in EMV).
    pub nad: u8,
    /// Protocol control byte.
    pub pcb: u8,
    /// Information field (at most 254 bytes).
    pub inf: Vec<u8>,
}

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Block {{ nad: {:#04x}, pcb: {:#04x}", self.nad, self.pcb)?;
        match self.kind() {
            Some(kind) => write!(f, " ({kind:?})")?,
            None => write!(f, " (invalid)")?,
        }
        write!(f, ", inf: {:02X?} }}", self.inf)
    }
}

impl Block {
    /// An I-block with NAD 0.
    pub fn i(ns: bool, more: bool, inf: Vec<u8>) -> Block {
        Block {
            nad: 0,
            pcb: (u8::from(ns) << 6) | (u8::from(more) << 5),
            inf,
        }
    }

    /// An R-block with NAD 0.
    pub fn r(nr: bool, err: RError) -> Block {
        Block {
            nad: 0,
            pcb: 0x80 | (u8::from(nr) << 4) | err.bits(),
            inf: Vec::new(),
        }
    }

    /// An S-block with NAD 0.
    pub fn s(kind: SKind, response: bool, inf: Vec<u8>) -> Block {
        Block {
            nad: 0,
            pcb: 0xC0 | (u8::from(response) << 5) | kind.bits(),
            inf,
        }
    }

    /// The same block with another NAD.
    pub fn with_nad(mut self, nad: u8) -> Block {
        self.nad = nad;
        self
    }

    /// What the PCB says this block is; `None` only for PCBs that [`Block::decode`] rejects
    /// (reserved R-block error codes or bits, reserved S-block functions). The reserved bits
    /// 5 to 1 of an I-block are ignored.
    pub fn kind(&self) -> Option<BlockKind> {
        let pcb = self.pcb;
        if pcb & 0x80 == 0 {
            return Some(BlockKind::I {
                ns: pcb & 0x40 != 0,
                more: pcb & 0x20 != 0,
            });
        }
        if pcb & 0x40 == 0 {
            if pcb & 0x20 != 0 {
                return None;
            }
            let error = match pcb & 0x0F {
                0 => RError::None,
                1 => RError::Edc,
                2 => RError::Other,
                _ => return None,
            };
            return Some(BlockKind::R {
                nr: pcb & 0x10 != 0,
                error,
            });
        }
        let kind = match pcb & 0x1F {
            0 => SKind::Resync,
            1 => SKind::Ifs,
            2 => SKind::Abort,
            3 => SKind::Wtx,
            _ => return None,
        };
        Some(BlockKind::S {
            kind,
            response: pcb & 0x20 != 0,
        })
    }

    /// Encodes the block: NAD, PCB, LEN, INF, EDC. An INF longer than 254 bytes cannot be
    /// represented and is cut to 254 bytes; use [`Block::try_encode`] to get an error instead.
    /// The constructors and the engines in this module never build such blocks.
    pub fn encode(&self, checksum: Checksum) -> Vec<u8> {
        let inf = &self.inf[..self.inf.len().min(MAX_INF)];
        let mut out = Vec::with_capacity(3 + inf.len() + checksum.edc_len());
        out.push(self.nad);
        out.push(self.pcb);
        // Cannot truncate: inf.len() <= 254.
        out.push(inf.len() as u8);
        out.extend_from_slice(inf);
        let edc = checksum.compute(&out);
        out.extend_from_slice(&edc);
        out
    }

    /// Encodes the block, refusing an INF longer than 254 bytes.
    pub fn try_encode(&self, checksum: Checksum) -> Result<Vec<u8>, BlockError> {
        if self.inf.len() > MAX_INF {
            return Err(BlockError::InfTooLong(self.inf.len()));
        }
        Ok(self.encode(checksum))
    }

    /// Decodes one block, checking that the length matches LEN, that LEN is at most 254, the
    /// EDC, and the PCB (see [`Block::kind`]). Never panics.
    pub fn decode(bytes: &[u8], checksum: Checksum) -> Result<Block, BlockError> {
        let edc_len = checksum.edc_len();
        if bytes.len() < 3 + edc_len {
            return Err(BlockError::TooShort { len: bytes.len() });
        }
        let len_field = bytes[2];
        if len_field == 0xFF {
            return Err(BlockError::ReservedLen);
        }
        if bytes.len() != 3 + usize::from(len_field) + edc_len {
            return Err(BlockError::LengthMismatch {
                len_field,
                actual: bytes.len(),
            });
        }
        let (body, found) = bytes.split_at(bytes.len() - edc_len);
        let computed = checksum.compute(body);
        if computed != found {
            return Err(BlockError::Edc {
                found: found.to_vec(),
                computed,
            });
        }
        let block = Block {
            nad: bytes[0],
            pcb: bytes[1],
            inf: body[3..].to_vec(),
        };
        match block.kind() {
            None => Err(BlockError::BadPcb(block.pcb)),
            Some(BlockKind::R { .. }) if !block.inf.is_empty() => {
                Err(BlockError::RBlockWithInf(block.inf.len()))
            }
            Some(_) => Ok(block),
        }
    }
}

/// Moves one block to the card and brings back the card's next block.
///
/// A CCID reader at TPDU level does this with one `PC_to_RDR_XfrBlock`; the virtual reader
/// with a [`T1Card`].
pub trait BlockTransport {
    /// The transport's own error (timeout, card removed, reader unplugged, ...).
    type Error;

    /// Sends `block` (an encoded block) and returns the bytes of the card's answering block.
    /// `wtx` is the waiting-time multiplier the card asked for with S(WTX request), 1
    /// normally: wait at most BWT × `wtx` (clamped to seconds) before failing with a timeout.
    fn exchange(&mut self, block: &[u8], wtx: u8) -> Result<Vec<u8>, Self::Error>;

    /// Whether `error` is a transmission fault the block protocol may recover from by asking
    /// for a retransmission (a parity error, a block lost to a BWT timeout while the card is
    /// still present). The default, `false`, makes every transport error final: the engine
    /// returns it at once as [`T1Error::Transport`]. Never return `true` for card removal.
    fn is_recoverable(&self, error: &Self::Error) -> bool {
        let _ = error;
        false
    }
}

impl<T: BlockTransport + ?Sized> BlockTransport for &mut T {
    type Error = T::Error;

    fn exchange(&mut self, block: &[u8], wtx: u8) -> Result<Vec<u8>, Self::Error> {
        (**self).exchange(block, wtx)
    }

    fn is_recoverable(&self, error: &Self::Error) -> bool {
        (**self).is_recoverable(error)
    }
}

/// Why a T=1 exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum T1Error<E> {
    /// The transport failed (timeout, card removed, reader gone): its error, unchanged. The
    /// driver classifies it.
    #[error("transport error: {0}")]
    Transport(E),
    /// The card broke the protocol in a way retransmission could not repair (only where no
    /// resynchronisation applies, e.g. the IFS negotiation).
    #[error("T=1 protocol error: {detail}")]
    Protocol {
        /// What went wrong.
        detail: String,
    },
    /// Retransmissions failed, so the link was resynchronised with S(RESYNCH): the command
    /// may or may not have reached the card and its response is lost. The link is usable.
    #[error("T=1 link resynchronised after repeated errors; the command's outcome is unknown")]
    Resynchronised,
    /// Retransmissions failed and so did every S(RESYNCH request): the card should be
    /// deactivated.
    #[error("T=1 resynchronisation failed after {attempts} attempts")]
    ResyncFailed {
        /// Number of S(RESYNCH request) blocks sent.
        attempts: u8,
    },
    /// The card aborted the chain with S(ABORT request).
    #[error("the card aborted the T=1 chain")]
    Aborted,
    /// The card asked for more consecutive waiting time extensions than allowed.
    #[error("the card sent more than {limit} consecutive S(WTX request) blocks")]
    TooManyWtx {
        /// The limit ([`T1Terminal::max_consecutive_wtx`]).
        limit: u32,
    },
    /// The exchange needed more blocks than allowed.
    #[error("the T=1 exchange exceeded {limit} blocks")]
    TooManyBlocks {
        /// The limit that was reached.
        limit: u32,
    },
    /// The card's response grew beyond [`T1Terminal::max_response_len`].
    #[error("the card's response exceeds {limit} bytes")]
    ResponseTooLong {
        /// The limit.
        limit: usize,
    },
    /// An argument was out of range (e.g. an IFSD outside 1..=254).
    #[error("invalid argument: {detail}")]
    InvalidArgument {
        /// What was wrong.
        detail: String,
    },
}

/// An information field size from a block or an ATR: 1..=254 are valid.
fn valid_ifs(value: u8) -> Option<u8> {
    (1..=254).contains(&value).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        // CRC-16 reflected 0x8408, init 0xFFFF, no final XOR: check value of "123456789".
        assert_eq!(crc16(b"123456789"), 0x6F91);
    }

    #[test]
    fn pcb_values() {
        assert_eq!(Block::s(SKind::Ifs, false, vec![254]).pcb, 0xC1);
        assert_eq!(Block::s(SKind::Ifs, true, vec![254]).pcb, 0xE1);
        assert_eq!(Block::s(SKind::Wtx, false, vec![1]).pcb, 0xC3);
        assert_eq!(Block::s(SKind::Wtx, true, vec![1]).pcb, 0xE3);
        assert_eq!(Block::s(SKind::Resync, false, vec![]).pcb, 0xC0);
        assert_eq!(Block::s(SKind::Abort, true, vec![]).pcb, 0xE2);
        assert_eq!(Block::r(true, RError::Edc).pcb, 0x91);
        assert_eq!(Block::r(false, RError::Other).pcb, 0x82);
        assert_eq!(Block::i(true, true, vec![]).pcb, 0x60);
    }
}
