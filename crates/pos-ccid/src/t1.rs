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

use std::collections::VecDeque;
use std::fmt;

use serde::{Deserialize, Serialize};

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

/// Why the current attempt failed, for the retry logic.
enum Failure<E> {
    /// An invalid or unexpected block: answer with an R-block carrying this error.
    Invalid(RError),
    /// A recoverable transport error.
    Lost(E),
}

/// Outcome of one attempt: `Err` ends the operation; `Ok(Err(_))` may be retried.
type Attempt<V, E> = Result<Result<V, Failure<E>>, T1Error<E>>;

/// Counts the blocks of one operation against a budget.
struct Budget {
    used: u32,
    limit: u32,
}

impl Budget {
    fn new(limit: u32) -> Self {
        Budget { used: 0, limit }
    }

    fn take<E>(&mut self) -> Result<(), T1Error<E>> {
        if self.used >= self.limit {
            return Err(T1Error::TooManyBlocks { limit: self.limit });
        }
        self.used += 1;
        Ok(())
    }
}

/// The interface-device side of T=1.
///
/// Create one per card session (after each ATR) with the card's IFSC and EDC from the ATR,
/// call [`negotiate_ifsd`](T1Terminal::negotiate_ifsd) once (EMV asks for 254), then
/// [`transceive`](T1Terminal::transceive) each APDU.
///
/// After any failed exchange other than [`T1Error::Resynchronised`] the sequence numbers can
/// no longer be trusted, so the next `transceive` starts with an S(RESYNCH request).
#[derive(Debug, Clone)]
pub struct T1Terminal {
    /// Card's information field size: the largest INF the terminal sends.
    pub ifsc: u8,
    /// Terminal's information field size: the largest INF the card may send.
    pub ifsd: u8,
    /// N(S) of the next I-block the terminal sends.
    pub ns: bool,
    /// N(S) the terminal expects in the card's next I-block.
    pub nr: bool,
    /// EDC in use.
    pub checksum: Checksum,
    /// NAD put in every block sent (0: no addressing, as EMV requires).
    pub nad: u8,
    /// Retransmissions of one block before resynchronising (ISO: 3 attempts).
    pub max_retries: u8,
    /// S(RESYNCH request) attempts before giving up.
    pub max_resync_attempts: u8,
    /// Blocks one operation may exchange, on top of one per command byte.
    pub max_blocks: u32,
    /// Consecutive S(WTX request) blocks accepted.
    pub max_consecutive_wtx: u32,
    /// Largest response accepted.
    pub max_response_len: usize,
    initial_ifsc: u8,
    wanted_ifsd: u8,
    needs_resync: bool,
}

impl T1Terminal {
    /// A terminal for a card whose ATR gives `ifsc` (see
    /// [`crate::atr::ParsedAtr::ifsc`]; 0 and 255 are replaced by the default 32) and
    /// `checksum` ([`crate::atr::ParsedAtr::t1_checksum`]). Sequence numbers start at 0,
    /// IFSD at 32.
    pub fn new(ifsc: u8, checksum: Checksum) -> T1Terminal {
        let ifsc = valid_ifs(ifsc).unwrap_or(DEFAULT_IFS);
        T1Terminal {
            ifsc,
            ifsd: DEFAULT_IFS,
            ns: false,
            nr: false,
            checksum,
            nad: 0,
            max_retries: 3,
            max_resync_attempts: 3,
            max_blocks: 1000,
            max_consecutive_wtx: 64,
            max_response_len: DEFAULT_MAX_RESPONSE_LEN,
            initial_ifsc: ifsc,
            wanted_ifsd: DEFAULT_IFS,
            needs_resync: false,
        }
    }

    /// A terminal for the card that sent `atr`: its IFSC and EDC.
    pub fn from_atr(atr: &crate::atr::ParsedAtr) -> T1Terminal {
        T1Terminal::new(atr.ifsc(), atr.t1_checksum())
    }

    /// Whether the next [`transceive`](T1Terminal::transceive) will resynchronise first
    /// (after a failed exchange).
    pub fn needs_resync(&self) -> bool {
        self.needs_resync
    }

    fn encode(&self, block: Block) -> Vec<u8> {
        block.with_nad(self.nad).encode(self.checksum)
    }

    /// Sends S(IFS request) with `ifsd` (1..=254; EMV: 254, as the first block after the
    /// ATR) and waits for the matching S(IFS response). An invalid answer makes the request
    /// go again, up to [`max_retries`](T1Terminal::max_retries) times; S(WTX) requests on the
    /// way are answered.
    ///
    /// # Errors
    /// [`T1Error::Transport`] for a transport error that is not recoverable, or the last
    /// recoverable one when all attempts failed that way; [`T1Error::Protocol`] when the card
    /// never answered correctly; [`T1Error::InvalidArgument`] for an IFSD outside 1..=254.
    /// The IFSD stays unchanged on error.
    pub fn negotiate_ifsd<T: BlockTransport>(
        &mut self,
        t: &mut T,
        ifsd: u8,
    ) -> Result<(), T1Error<T::Error>> {
        let Some(ifsd) = valid_ifs(ifsd) else {
            return Err(T1Error::InvalidArgument {
                detail: format!("IFSD {ifsd} is outside 1..=254"),
            });
        };
        let mut budget = Budget::new(self.max_blocks);
        match self.s_request(t, &mut budget, SKind::Ifs, vec![ifsd], self.max_retries)? {
            Ok(()) => {
                self.ifsd = ifsd;
                self.wanted_ifsd = ifsd;
                Ok(())
            }
            Err(lost) => Err(self.give_up(lost, "no valid S(IFS response)")),
        }
    }

    /// Sends S(RESYNCH request) and waits for S(RESYNCH response), up to
    /// [`max_resync_attempts`](T1Terminal::max_resync_attempts) times. On success both
    /// sequence numbers are 0, the IFSC is the ATR's again, and the IFSD negotiated before (if
    /// any) is asked for again.
    ///
    /// # Errors
    /// [`T1Error::Transport`] for a fatal transport error, [`T1Error::ResyncFailed`] when no
    /// attempt succeeded.
    pub fn resynchronise<T: BlockTransport>(&mut self, t: &mut T) -> Result<(), T1Error<T::Error>> {
        let mut budget = Budget::new(self.max_blocks);
        self.resync_with(t, &mut budget)
    }

    fn resync_with<T: BlockTransport>(
        &mut self,
        t: &mut T,
        budget: &mut Budget,
    ) -> Result<(), T1Error<T::Error>> {
        self.needs_resync = true;
        let mut attempts = 0u8;
        loop {
            attempts = attempts.saturating_add(1);
            // Each S(RESYNCH request) is one attempt: no retransmissions inside.
            match self.s_request(t, budget, SKind::Resync, Vec::new(), 0)? {
                Ok(()) => break,
                Err(Failure::Lost(e)) if attempts >= self.max_resync_attempts.max(1) => {
                    return Err(T1Error::Transport(e));
                }
                Err(_) if attempts >= self.max_resync_attempts.max(1) => {
                    return Err(T1Error::ResyncFailed { attempts });
                }
                Err(_) => {}
            }
        }
        log::debug!("T=1 link resynchronised");
        self.ns = false;
        self.nr = false;
        self.ifsc = self.initial_ifsc;
        self.ifsd = DEFAULT_IFS;
        self.needs_resync = false;
        if self.wanted_ifsd != DEFAULT_IFS {
            let wanted = self.wanted_ifsd;
            match self.s_request(t, budget, SKind::Ifs, vec![wanted], self.max_retries)? {
                Ok(()) => self.ifsd = wanted,
                Err(_) => log::warn!("IFSD {wanted} refused after resynchronisation; using 32"),
            }
        }
        Ok(())
    }

    /// Error to return when retries are exhausted outside a resynchronisable exchange.
    fn give_up<E>(&self, failure: Failure<E>, what: &str) -> T1Error<E> {
        match failure {
            Failure::Lost(e) => T1Error::Transport(e),
            Failure::Invalid(_) => T1Error::Protocol {
                detail: format!("{what} after {} attempts", u32::from(self.max_retries) + 1),
            },
        }
    }

    /// One exchange through the transport: fatal errors come back as `Err`, recoverable ones
    /// as `Ok(Err(Failure::Lost))`, undecodable blocks as `Ok(Err(Failure::Invalid))`.
    fn exchange_once<T: BlockTransport>(
        &self,
        t: &mut T,
        budget: &mut Budget,
        bytes: &[u8],
        wtx: u8,
    ) -> Attempt<Block, T::Error> {
        budget.take()?;
        match t.exchange(bytes, wtx) {
            Ok(reply) => Ok(Block::decode(&reply, self.checksum).map_err(|e| {
                log::debug!("invalid T=1 block from the card: {e}");
                Failure::Invalid(e.r_error())
            })),
            Err(e) if t.is_recoverable(&e) => Ok(Err(Failure::Lost(e))),
            Err(e) => Err(T1Error::Transport(e)),
        }
    }

    /// Sends an S(`kind` request) with `inf` until the matching response arrives (rule 7.3:
    /// an invalid answer makes the request go again). `Ok(Err(failure))` when all
    /// `retries + 1` attempts failed.
    fn s_request<T: BlockTransport>(
        &mut self,
        t: &mut T,
        budget: &mut Budget,
        kind: SKind,
        inf: Vec<u8>,
        retries: u8,
    ) -> Attempt<(), T::Error> {
        let request = self.encode(Block::s(kind, false, inf.clone()));
        let mut to_send = request.clone();
        let mut wtx = 1u8;
        let mut wtx_count = 0u32;
        let mut failures = 0u32;
        loop {
            let sent_wtx = wtx;
            wtx = 1;
            let failure = match self.exchange_once(t, budget, &to_send, sent_wtx)? {
                Ok(block) => match block.kind() {
                    Some(BlockKind::S {
                        kind: k,
                        response: true,
                    }) if k == kind => {
                        if (k != SKind::Ifs || block.inf == inf)
                            && (k != SKind::Resync || block.inf.is_empty())
                        {
                            return Ok(Ok(()));
                        }
                        Failure::Invalid(RError::Other)
                    }
                    Some(BlockKind::S {
                        kind: SKind::Wtx,
                        response: false,
                    }) if block.inf.len() == 1 && block.inf[0] != 0 => {
                        wtx_count += 1;
                        if wtx_count > self.max_consecutive_wtx {
                            return Err(T1Error::TooManyWtx {
                                limit: self.max_consecutive_wtx,
                            });
                        }
                        wtx = block.inf[0];
                        to_send = self.encode(Block::s(SKind::Wtx, true, block.inf));
                        continue;
                    }
                    _ => Failure::Invalid(RError::Other),
                },
                Err(failure) => failure,
            };
            failures += 1;
            if failures > u32::from(retries) {
                return Ok(Err(failure));
            }
            to_send = request.clone();
        }
    }

    /// Sends `apdu` (a command APDU) and returns the card's response APDU (data and SW1 SW2).
    ///
    /// The command goes in I-blocks of at most IFSC bytes, each chained one acknowledged by an
    /// R-block; a chained response is collected by acknowledging each I-block with R(N(R)).
    /// S(WTX request) is answered and the multiplier handed to the next
    /// [`BlockTransport::exchange`]; S(IFS request) is answered and the new IFSC used for the
    /// rest of the command. Invalid blocks and recoverable transport errors are repaired by
    /// the ISO 7816-3 rules (R-block with error indication, retransmission); after
    /// [`max_retries`](T1Terminal::max_retries) failed attempts in a row the link is
    /// resynchronised and [`T1Error::Resynchronised`] returned.
    ///
    /// # Errors
    /// - [`T1Error::Transport`]: a transport error that is not recoverable, returned
    ///   immediately and unchanged (card removed, reader gone, timeout); or the last
    ///   recoverable one when resynchronisation also failed that way.
    /// - [`T1Error::Resynchronised`], [`T1Error::ResyncFailed`], [`T1Error::Aborted`],
    ///   [`T1Error::TooManyWtx`], [`T1Error::TooManyBlocks`], [`T1Error::ResponseTooLong`].
    ///
    /// Never reports success unless the card's last response block arrived intact.
    pub fn transceive<T: BlockTransport>(
        &mut self,
        t: &mut T,
        apdu: &[u8],
    ) -> Result<Vec<u8>, T1Error<T::Error>> {
        let limit = self
            .max_blocks
            .saturating_add(u32::try_from(apdu.len()).unwrap_or(u32::MAX));
        let mut budget = Budget::new(limit);
        if self.needs_resync {
            self.resync_with(t, &mut budget)?;
        }
        self.needs_resync = true;
        let result = self.run(t, &mut budget, apdu);
        if matches!(result, Ok(_) | Err(T1Error::Resynchronised)) {
            self.needs_resync = false;
        }
        result
    }

    fn next_chunk(&self, apdu: &[u8], offset: usize) -> (Block, usize) {
        let size = usize::from(self.ifsc.max(1)).min(MAX_INF);
        let rest = apdu.get(offset..).unwrap_or(&[]);
        let len = rest.len().min(size);
        let more = rest.len() > size;
        (Block::i(self.ns, more, rest[..len].to_vec()), len)
    }

    fn run<T: BlockTransport>(
        &mut self,
        t: &mut T,
        budget: &mut Budget,
        apdu: &[u8],
    ) -> Result<Vec<u8>, T1Error<T::Error>> {
        let mut offset = 0usize;
        let (mut current, mut chunk_len) = self.next_chunk(apdu, offset);
        let mut current_more = current.pcb & 0x20 != 0;
        let mut to_send = self.encode(current.clone());
        let mut receiving = false;
        let mut response = Vec::new();
        let mut failures = 0u32;
        let mut wtx_count = 0u32;
        let mut wtx = 1u8;

        loop {
            let sent_wtx = wtx;
            wtx = 1;
            let block = match self.exchange_once(t, budget, &to_send, sent_wtx)? {
                Ok(block) => block,
                Err(failure) => {
                    self.fail(t, budget, &mut failures, failure, &mut to_send)?;
                    continue;
                }
            };
            let Some(kind) = block.kind() else {
                self.fail(
                    t,
                    budget,
                    &mut failures,
                    Failure::Invalid(RError::Other),
                    &mut to_send,
                )?;
                continue;
            };
            match kind {
                BlockKind::S {
                    kind: SKind::Wtx,
                    response: false,
                } if block.inf.len() == 1 && block.inf[0] != 0 => {
                    wtx_count += 1;
                    if wtx_count > self.max_consecutive_wtx {
                        return Err(T1Error::TooManyWtx {
                            limit: self.max_consecutive_wtx,
                        });
                    }
                    wtx = block.inf[0];
                    log::trace!("card asks for waiting time extension x{wtx}");
                    to_send = self.encode(Block::s(SKind::Wtx, true, block.inf));
                }
                BlockKind::S {
                    kind: SKind::Ifs,
                    response: false,
                } if block.inf.len() == 1 && valid_ifs(block.inf[0]).is_some() => {
                    // The new size applies to the next I-block (and to the current one if
                    // it has to go again).
                    self.ifsc = block.inf[0];
                    log::debug!("card sets IFSC to {}", self.ifsc);
                    to_send = self.encode(Block::s(SKind::Ifs, true, block.inf));
                }
                BlockKind::S {
                    kind: SKind::Abort,
                    response: false,
                } => {
                    log::debug!("card aborts the T=1 chain");
                    let answer = self.encode(Block::s(SKind::Abort, true, Vec::new()));
                    // The card's next block (it gives the right to send back) is not needed:
                    // the link is resynchronised before the next command.
                    let _ = self.exchange_once(t, budget, &answer, 1)?;
                    return Err(T1Error::Aborted);
                }
                BlockKind::S { .. } => {
                    self.fail(
                        t,
                        budget,
                        &mut failures,
                        Failure::Invalid(RError::Other),
                        &mut to_send,
                    )?;
                }
                BlockKind::R { nr, .. } if !receiving => {
                    let current_ns = current.pcb & 0x40 != 0;
                    if current_more && nr != current_ns {
                        // Acknowledgement of the chained block: send the next one.
                        self.ns = !self.ns;
                        offset += chunk_len;
                        failures = 0;
                        wtx_count = 0;
                        let (next, len) = self.next_chunk(apdu, offset);
                        current = next;
                        chunk_len = len;
                        current_more = current.pcb & 0x20 != 0;
                        to_send = self.encode(current.clone());
                    } else if nr == current_ns {
                        // The card asks for the I-block again (cut anew, in case the card
                        // changed its IFSC meanwhile).
                        self.count_failure(t, budget, &mut failures)?;
                        let (again, len) = self.next_chunk(apdu, offset);
                        current = again;
                        chunk_len = len;
                        current_more = current.pcb & 0x20 != 0;
                        to_send = self.encode(current.clone());
                    } else {
                        // It did not understand our last block: send it again.
                        self.count_failure(t, budget, &mut failures)?;
                    }
                }
                BlockKind::R { .. } => {
                    // Receiving: the card did not understand our R-block (or S response).
                    self.count_failure(t, budget, &mut failures)?;
                }
                BlockKind::I { ns, more } => {
                    let acceptable = ns == self.nr
                        && (receiving || !current_more)
                        && block.inf.len() <= usize::from(self.ifsd);
                    if !acceptable {
                        self.fail(
                            t,
                            budget,
                            &mut failures,
                            Failure::Invalid(RError::Other),
                            &mut to_send,
                        )?;
                        continue;
                    }
                    if !receiving {
                        // Our last I-block is acknowledged by the card's I-block.
                        self.ns = !self.ns;
                        receiving = true;
                    }
                    self.nr = !self.nr;
                    failures = 0;
                    wtx_count = 0;
                    if response.len() + block.inf.len() > self.max_response_len {
                        return Err(T1Error::ResponseTooLong {
                            limit: self.max_response_len,
                        });
                    }
                    response.extend_from_slice(&block.inf);
                    if !more {
                        return Ok(response);
                    }
                    to_send = self.encode(Block::r(self.nr, RError::None));
                }
            }
        }
    }

    /// Counts one failed attempt; when retries are exhausted, resynchronises and returns the
    /// error that ends the exchange ([`T1Error::Resynchronised`] when that worked).
    fn count_failure<T: BlockTransport>(
        &mut self,
        t: &mut T,
        budget: &mut Budget,
        failures: &mut u32,
    ) -> Result<(), T1Error<T::Error>> {
        *failures += 1;
        if *failures <= u32::from(self.max_retries) {
            return Ok(());
        }
        log::debug!("T=1: {} failed attempts, resynchronising", *failures);
        self.resync_with(t, budget)?;
        Err(T1Error::Resynchronised)
    }

    /// Handles an invalid block or a lost one (rules 7.1 and 7.2): an R-block asking for the
    /// expected I-block, with the error indication.
    fn fail<T: BlockTransport>(
        &mut self,
        t: &mut T,
        budget: &mut Budget,
        failures: &mut u32,
        failure: Failure<T::Error>,
        to_send: &mut Vec<u8>,
    ) -> Result<(), T1Error<T::Error>> {
        let error = match failure {
            Failure::Invalid(error) => error,
            // A lost block (timeout, parity): ask for it again.
            Failure::Lost(_) => RError::Other,
        };
        self.count_failure(t, budget, failures)?;
        *to_send = self.encode(Block::r(self.nr, error));
        Ok(())
    }
}

/// An information field size from a block or an ATR: 1..=254 are valid.
fn valid_ifs(value: u8) -> Option<u8> {
    (1..=254).contains(&value).then_some(value)
}

/// What the virtual card does with a block it received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardAction {
    /// Send this encoded block back.
    Reply(Vec<u8>),
    /// Say nothing (the card is mute): the reader times out.
    Mute,
}

/// The card side of T=1, for the virtual reader.
///
/// Feed it each block the terminal sends with [`handle`](T1Card::handle); it answers with
/// the block a card would send. It assembles chained commands (acknowledging each block),
/// calls the APDU handler once per complete command, sends long responses chained in blocks
/// of at most min(IFSC, IFSD) bytes, answers S(IFS), S(RESYNCH) and S(ABORT), retransmits on
/// request, and can inject faults through its public fields.
#[derive(Debug, Clone)]
pub struct T1Card {
    /// The card's information field size: the largest INF it accepts.
    pub ifsc: u8,
    /// The terminal's information field size (32 until an S(IFS request) changes it).
    pub ifsd: u8,
    /// EDC in use.
    pub checksum: Checksum,
    /// N(S) of the card's next I-block.
    pub ns: bool,
    /// N(S) the card expects in the terminal's next I-block.
    pub nr: bool,
    /// Fault: this many S(WTX request) blocks are sent before each response (a WTX storm
    /// when large).
    pub wtx_before_response: u8,
    /// The multiplier asked for in each S(WTX request) (default 1).
    pub wtx_multiplier: u8,
    /// Fault: the next block sent has a wrong EDC (a retransmission is sent intact).
    pub corrupt_next: bool,
    /// Before the next response, ask the terminal for this IFSC with S(IFS request)
    /// (one-shot).
    pub ifs_request_before_response: Option<u8>,
    /// Fault: answer the next chained command block with S(ABORT request) (one-shot).
    pub abort_next_chain: bool,
    initial_ifsc: u8,
    command: Vec<u8>,
    response: Vec<u8>,
    response_offset: usize,
    sending_chain: bool,
    last_i: Option<(bool, bool)>,
    pending_requests: VecDeque<Block>,
    awaiting: Option<Block>,
    last_sent: Option<Vec<u8>>,
    muted: bool,
}

impl T1Card {
    /// A card with this IFSC (as its ATR announces it; invalid values become 32) and EDC.
    pub fn new(ifsc: u8, checksum: Checksum) -> T1Card {
        let ifsc = valid_ifs(ifsc).unwrap_or(DEFAULT_IFS);
        T1Card {
            ifsc,
            initial_ifsc: ifsc,
            ifsd: DEFAULT_IFS,
            checksum,
            ns: false,
            nr: false,
            wtx_before_response: 0,
            wtx_multiplier: 1,
            corrupt_next: false,
            ifs_request_before_response: None,
            abort_next_chain: false,
            command: Vec::new(),
            response: Vec::new(),
            response_offset: 0,
            sending_chain: false,
            last_i: None,
            pending_requests: VecDeque::new(),
            awaiting: None,
            last_sent: None,
            muted: false,
        }
    }

    /// A card with the IFSC and EDC `atr` announces.
    pub fn from_atr(atr: &crate::atr::ParsedAtr) -> T1Card {
        T1Card::new(atr.ifsc(), atr.t1_checksum())
    }

    /// Back to the state right after an ATR (a warm reset): sequence numbers 0, IFSC as
    /// created, IFSD 32, nothing pending, no longer mute. Fault settings are kept.
    pub fn reset(&mut self) {
        self.ifsc = self.initial_ifsc;
        self.ifsd = DEFAULT_IFS;
        self.ns = false;
        self.nr = false;
        self.clear_exchange();
        self.last_sent = None;
        self.muted = false;
    }

    /// Whether the card went mute (the APDU handler returned `None`); it stays mute until
    /// [`reset`](T1Card::reset).
    pub fn is_mute(&self) -> bool {
        self.muted
    }

    fn clear_exchange(&mut self) {
        self.command.clear();
        self.response.clear();
        self.response_offset = 0;
        self.sending_chain = false;
        self.last_i = None;
        self.pending_requests.clear();
        self.awaiting = None;
    }

    fn reply(&mut self, block: Block) -> CardAction {
        let bytes = block.encode(self.checksum);
        self.last_sent = Some(bytes.clone());
        self.send(bytes)
    }

    fn send(&mut self, mut bytes: Vec<u8>) -> CardAction {
        if self.corrupt_next {
            self.corrupt_next = false;
            if let Some(last) = bytes.last_mut() {
                *last ^= 0xFF;
            }
        }
        CardAction::Reply(bytes)
    }

    fn invalid(&mut self, error: RError) -> CardAction {
        self.reply(Block::r(self.nr, error))
    }

    fn next_response_block(&mut self) -> CardAction {
        let size = usize::from(self.ifsc.min(self.ifsd).max(1));
        let rest = self.response.get(self.response_offset..).unwrap_or(&[]);
        let len = rest.len().min(size);
        let more = rest.len() > size;
        let block = Block::i(self.ns, more, rest[..len].to_vec());
        self.last_i = Some((self.ns, more));
        self.ns = !self.ns;
        self.response_offset += len;
        self.sending_chain = more;
        if !more {
            self.response.clear();
            self.response_offset = 0;
        }
        self.reply(block)
    }

    /// Sends the next queued S-request, or the response.
    fn continue_response(&mut self) -> CardAction {
        if let Some(request) = self.pending_requests.pop_front() {
            self.awaiting = Some(request.clone());
            return self.reply(request);
        }
        self.next_response_block()
    }

    /// Handles one block from the terminal. `apdu_handler` gets each complete command APDU
    /// and returns the response APDU (data and SW1 SW2), or `None` to make the card mute.
    pub fn handle(
        &mut self,
        block_bytes: &[u8],
        apdu_handler: &mut dyn FnMut(&[u8]) -> Option<Vec<u8>>,
    ) -> CardAction {
        if self.muted {
            return CardAction::Mute;
        }
        let block = match Block::decode(block_bytes, self.checksum) {
            Ok(block) => block,
            Err(e) => return self.invalid(e.r_error()),
        };
        let Some(kind) = block.kind() else {
            return self.invalid(RError::Other);
        };
        match kind {
            BlockKind::I { ns, more } => {
                if self.awaiting.is_some()
                    || self.sending_chain
                    || ns != self.nr
                    || block.inf.len() > usize::from(self.ifsc)
                {
                    return self.invalid(RError::Other);
                }
                self.nr = !self.nr;
                // A new command ends whatever response was pending.
                if self.command.is_empty() {
                    self.response.clear();
                    self.response_offset = 0;
                }
                self.command.extend_from_slice(&block.inf);
                if more {
                    if self.abort_next_chain {
                        self.abort_next_chain = false;
                        self.command.clear();
                        let request = Block::s(SKind::Abort, false, Vec::new());
                        self.awaiting = Some(request.clone());
                        return self.reply(request);
                    }
                    return self.reply(Block::r(self.nr, RError::None));
                }
                let apdu = std::mem::take(&mut self.command);
                let Some(response) = apdu_handler(&apdu) else {
                    self.muted = true;
                    return CardAction::Mute;
                };
                self.response = response;
                self.response_offset = 0;
                self.pending_requests.clear();
                if let Some(ifsc) = self.ifs_request_before_response.take() {
                    self.pending_requests
                        .push_back(Block::s(SKind::Ifs, false, vec![ifsc]));
                }
                for _ in 0..self.wtx_before_response {
                    self.pending_requests.push_back(Block::s(
                        SKind::Wtx,
                        false,
                        vec![self.wtx_multiplier.max(1)],
                    ));
                }
                self.continue_response()
            }
            BlockKind::R { nr, .. } => {
                if let (Some((last_ns, true)), true, None) =
                    (self.last_i, self.sending_chain, &self.awaiting)
                {
                    if nr != last_ns {
                        return self.next_response_block();
                    }
                }
                match self.last_sent.clone() {
                    Some(bytes) => self.send(bytes),
                    None => self.invalid(RError::Other),
                }
            }
            BlockKind::S {
                kind,
                response: false,
            } => match kind {
                SKind::Ifs => match block.inf.as_slice() {
                    [value] if valid_ifs(*value).is_some() => {
                        self.ifsd = *value;
                        self.reply(Block::s(SKind::Ifs, true, block.inf))
                    }
                    _ => self.invalid(RError::Other),
                },
                SKind::Resync if block.inf.is_empty() => {
                    self.ns = false;
                    self.nr = false;
                    self.ifsc = self.initial_ifsc;
                    self.ifsd = DEFAULT_IFS;
                    self.clear_exchange();
                    self.reply(Block::s(SKind::Resync, true, Vec::new()))
                }
                SKind::Abort => {
                    self.clear_exchange();
                    self.reply(Block::s(SKind::Abort, true, Vec::new()))
                }
                _ => self.invalid(RError::Other),
            },
            BlockKind::S {
                kind,
                response: true,
            } => {
                let matches = match &self.awaiting {
                    Some(request) => {
                        request.kind()
                            == Some(BlockKind::S {
                                kind,
                                response: false,
                            })
                            && request.inf == block.inf
                    }
                    None => false,
                };
                if !matches {
                    return self.invalid(RError::Other);
                }
                self.awaiting = None;
                match kind {
                    SKind::Ifs => {
                        if let Some(&value) = block.inf.first() {
                            self.ifsc = value;
                        }
                        self.continue_response()
                    }
                    // Give the right to send back to the terminal.
                    SKind::Abort => self.reply(Block::r(self.nr, RError::None)),
                    _ => self.continue_response(),
                }
            }
        }
    }
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
