//! Answer-To-Reset parsing (ISO/IEC 7816-3 clause 8) and the timings and parameters it implies.
//!
//! [`ParsedAtr::parse`] checks the structure (TS, T0, the interface byte groups, the
//! historical bytes, TCK) and never panics on any input. The accessors give the values with
//! the ISO defaults filled in; [`wwt_for`], [`bwt_for`] and [`cwt_for`] turn them into
//! [`Duration`]s, always clamped to [`MAX_TIMEOUT`] (seconds, never minutes).
//! [`best_fi_di`], [`pps_request`] and [`pps_response_ok`] serve the PPS exchange when the
//! reader does not negotiate itself.
//!
//! Clock frequencies are in kHz (the unit of the CCID class descriptor).
//!
//! ```
//! use std::time::Duration;
//! use pos_ccid::atr::{Checksum, ParsedAtr};
//!
//! // A JCOP card offering T=1: IFSC 254, BWI 4, CWI 5, LRC.
//! let atr = ParsedAtr::parse(&[
//!     0x3B, 0xE9, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x45, 0x4A, 0x43, 0x4F, 0x50, 0x34, 0x31,
//!     0x56, 0x32, 0x32, 0xA7,
//! ])?;
//! assert_eq!(atr.protocols(), [1]);
//! assert_eq!(atr.ifsc(), 254);
//! assert_eq!(atr.t1_checksum(), Checksum::Lrc);
//! assert_eq!(atr.historical, b"JCOP41V22");
//! // At 4 MHz: 11 etu + 16 x 960 x 372 / 4 MHz.
//! assert_eq!(atr.bwt(4_000), Duration::from_micros(1_429_503));
//! # Ok::<(), pos_ccid::atr::AtrError>(())
//! ```

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::t1::Checksum;

/// Longest ATR: TS and at most 32 further bytes.
pub const MAX_ATR_LEN: usize = 33;

/// Upper bound of every timeout computed here (BWT with WTX included).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10);

/// Default Fi/Di indices (TA1 absent): Fi = 372, Di = 1.
pub const DEFAULT_FI_DI: (u8, u8) = (1, 1);

/// Default waiting time integer WI (TC2 absent).
pub const DEFAULT_WI: u8 = 10;

/// Default block waiting time integer BWI.
pub const DEFAULT_BWI: u8 = 4;

/// Default character waiting time integer CWI.
pub const DEFAULT_CWI: u8 = 13;

/// Default information field size for T=1.
pub const DEFAULT_IFSC: u8 = 32;

/// Bit convention announced by TS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Convention {
    /// TS = 0x3B: high level is 1, least significant bit first.
    Direct,
    /// TS = 0x3F (as decoded with the inverse convention): low level is 1, most significant
    /// bit first. The reader converts every byte; the ATR reaches us decoded.
    Inverse,
}

/// One group of interface bytes: TAi, TBi, TCi, TDi for some i.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct InterfaceGroup {
    /// TAi, when present.
    pub ta: Option<u8>,
    /// TBi, when present.
    pub tb: Option<u8>,
    /// TCi, when present.
    pub tc: Option<u8>,
    /// TDi, when present.
    pub td: Option<u8>,
}

impl InterfaceGroup {
    /// The protocol type T that TDi announces for the next group (TDi bits 4 to 1).
    pub fn next_protocol(&self) -> Option<u8> {
        self.td.map(|td| td & 0x0F)
    }
}

/// Which ATR byte was expected when the bytes ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AtrByte {
    /// The format byte T0.
    T0,
    /// TAi.
    Ta(u8),
    /// TBi.
    Tb(u8),
    /// TCi.
    Tc(u8),
    /// TDi.
    Td(u8),
    /// Historical byte number n (from 1).
    Historical(u8),
    /// The check byte TCK.
    Tck,
}

impl fmt::Display for AtrByte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AtrByte::T0 => write!(f, "T0"),
            AtrByte::Ta(i) => write!(f, "TA{i}"),
            AtrByte::Tb(i) => write!(f, "TB{i}"),
            AtrByte::Tc(i) => write!(f, "TC{i}"),
            AtrByte::Td(i) => write!(f, "TD{i}"),
            AtrByte::Historical(n) => write!(f, "historical byte T{n}"),
            AtrByte::Tck => write!(f, "TCK"),
        }
    }
}

/// Why bytes are not a valid ATR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AtrError {
    /// No bytes at all.
    #[error("empty ATR")]
    Empty,
    /// TS is neither 0x3B (direct) nor 0x3F (inverse).
    #[error("bad initial character TS {0:#04x} (expected 0x3B or 0x3F)")]
    BadTs(u8),
    /// The bytes end before the structure announced by T0 and TDi does.
    #[error("ATR truncated after {len} bytes: {expected} expected")]
    Truncated {
        /// The byte that should have come next.
        expected: AtrByte,
        /// Number of bytes received.
        len: usize,
    },
    /// TCK is present (mandatory when a protocol other than T=0 is offered) and wrong.
    #[error("ATR check byte TCK is {found:#04x}, expected {expected:#04x}")]
    TckMismatch {
        /// TCK received.
        found: u8,
        /// TCK that makes the exclusive-or of T0..TCK zero.
        expected: u8,
    },
    /// More than 33 bytes.
    #[error("ATR of {0} bytes is longer than 33")]
    TooLong(usize),
    /// Bytes after the last byte the structure announces.
    #[error("{extra} unexpected bytes after the ATR")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
}

/// A parsed Answer-To-Reset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ParsedAtr {
    /// The ATR as received (TS first).
    pub bytes: Vec<u8>,
    /// The convention TS announces.
    pub convention: Convention,
    /// The format byte T0 (Y1 in bits 8 to 5, K in bits 4 to 1).
    pub t0: u8,
    /// Interface byte groups: `interface[0]` is TA1..TD1 (always there, perhaps empty);
    /// `interface[i]` (TAi+1..TDi+1) is there exactly when TDi is.
    pub interface: Vec<InterfaceGroup>,
    /// The K historical bytes.
    pub historical: Vec<u8>,
    /// TCK when present.
    pub tck: Option<u8>,
    /// Whether TCK checks out, when present. A wrong TCK is only accepted (as `Some(false)`)
    /// by [`ParsedAtr::parse_lenient`] or when TCK is not required (T=0 only).
    pub tck_valid: Option<bool>,
}

impl ParsedAtr {
    /// Parses an ATR, checking its structure and, when a protocol other than T=0 is offered,
    /// its TCK. A T=0-only ATR followed by exactly one extra byte takes that byte as an
    /// (optional) TCK, valid or not. Never panics.
    ///
    /// # Errors
    /// See [`AtrError`].
    pub fn parse(bytes: &[u8]) -> Result<ParsedAtr, AtrError> {
        Self::parse_with(bytes, true)
    }

    /// Like [`ParsedAtr::parse`], but a wrong TCK is recorded in
    /// [`tck_valid`](ParsedAtr::tck_valid) instead of failing (for diagnostics tools).
    ///
    /// # Errors
    /// See [`AtrError`]; never [`AtrError::TckMismatch`].
    pub fn parse_lenient(bytes: &[u8]) -> Result<ParsedAtr, AtrError> {
        Self::parse_with(bytes, false)
    }

    fn parse_with(bytes: &[u8], strict_tck: bool) -> Result<ParsedAtr, AtrError> {
        let Some(&ts) = bytes.first() else {
            return Err(AtrError::Empty);
        };
        if bytes.len() > MAX_ATR_LEN {
            return Err(AtrError::TooLong(bytes.len()));
        }
        let convention = match ts {
            0x3B => Convention::Direct,
            0x3F => Convention::Inverse,
            other => return Err(AtrError::BadTs(other)),
        };
        let mut cursor = Cursor { bytes, pos: 1 };
        let t0 = cursor.take(AtrByte::T0)?;
        let mut interface = Vec::new();
        let mut indicator = t0 >> 4;
        let mut tck_required = false;
        let mut i: u8 = 1;
        loop {
            let mut group = InterfaceGroup::default();
            if indicator & 0x1 != 0 {
                group.ta = Some(cursor.take(AtrByte::Ta(i))?);
            }
            if indicator & 0x2 != 0 {
                group.tb = Some(cursor.take(AtrByte::Tb(i))?);
            }
            if indicator & 0x4 != 0 {
                group.tc = Some(cursor.take(AtrByte::Tc(i))?);
            }
            if indicator & 0x8 != 0 {
                group.td = Some(cursor.take(AtrByte::Td(i))?);
            }
            interface.push(group);
            match group.td {
                Some(td) => {
                    if td & 0x0F != 0 {
                        tck_required = true;
                    }
                    indicator = td >> 4;
                    // At most 33 bytes: i stays small.
                    i = i.saturating_add(1);
                }
                None => break,
            }
        }
        let k = t0 & 0x0F;
        let mut historical = Vec::with_capacity(usize::from(k));
        for n in 1..=k {
            historical.push(cursor.take(AtrByte::Historical(n))?);
        }
        // Some T=0-only cards send a TCK anyway: one byte left over is taken as TCK.
        let tck = if tck_required || bytes.len() == cursor.pos + 1 {
            Some(cursor.take(AtrByte::Tck)?)
        } else {
            None
        };
        let pos = cursor.pos;
        if bytes.len() > pos {
            return Err(AtrError::TrailingBytes {
                extra: bytes.len() - pos,
            });
        }
        let tck_valid = match tck {
            Some(found) => {
                let expected = bytes[1..pos - 1].iter().fold(0u8, |acc, b| acc ^ b);
                if found != expected && tck_required && strict_tck {
                    return Err(AtrError::TckMismatch { found, expected });
                }
                Some(found == expected)
            }
            None => None,
        };
        Ok(ParsedAtr {
            bytes: bytes.to_vec(),
            convention,
            t0,
            interface,
            historical,
            tck,
            tck_valid,
        })
    }

    fn group(&self, i: usize) -> Option<&InterfaceGroup> {
        i.checked_sub(1).and_then(|index| self.interface.get(index))
    }

    /// TA1, when present.
    pub fn ta1(&self) -> Option<u8> {
        self.group(1).and_then(|g| g.ta)
    }

    /// The protocols offered, in the order the TDi announce them (T=15 excluded), each once;
    /// `[0]` when there is no TD1 (T=0 is implicit).
    pub fn protocols(&self) -> Vec<u8> {
        let mut protocols = Vec::new();
        for t in self
            .interface
            .iter()
            .filter_map(InterfaceGroup::next_protocol)
        {
            if t != 15 && !protocols.contains(&t) {
                protocols.push(t);
            }
        }
        if protocols.is_empty() {
            protocols.push(0);
        }
        protocols
    }

    /// The first offered protocol (TD1's, or 0 without TD1): the one in use when no PPS
    /// exchange takes place.
    pub fn first_protocol(&self) -> u8 {
        self.protocols().first().copied().unwrap_or(0)
    }

    /// Whether protocol `t` is offered.
    pub fn offers(&self, t: u8) -> bool {
        self.protocols().contains(&t)
    }

    /// The raw Fi and Di indices from TA1 (bits 8 to 5, bits 4 to 1); `(1, 1)` without TA1.
    pub fn fi_di(&self) -> (u8, u8) {
        self.ta1()
            .map_or(DEFAULT_FI_DI, |ta1| (ta1 >> 4, ta1 & 0x0F))
    }

    /// The clock rate conversion integer Fi (None for a reserved index).
    pub fn f(&self) -> Option<u16> {
        fi_value(self.fi_di().0)
    }

    /// The baud rate adjustment integer Di (None for a reserved index).
    pub fn d(&self) -> Option<u8> {
        di_value(self.fi_di().1)
    }

    /// The maximum clock frequency fmax in kHz that goes with Fi (None for a reserved index).
    pub fn fmax_khz(&self) -> Option<u32> {
        fmax_khz(self.fi_di().0)
    }

    /// The extra guard time integer N from TC1 (0 without TC1; 255 means the minimum
    /// guard time).
    pub fn extra_guard_time_n(&self) -> u8 {
        self.group(1).and_then(|g| g.tc).unwrap_or(0)
    }

    /// The waiting time integer WI from TC2 (T=0); 10 without TC2 or for the reserved 0.
    pub fn wi(&self) -> u8 {
        match self.group(2).and_then(|g| g.tc) {
            Some(0) | None => DEFAULT_WI,
            Some(wi) => wi,
        }
    }

    /// The interface groups specific to T=1: those after a TDi (i >= 2) announcing T=1.
    fn t1_groups(&self) -> impl Iterator<Item = &InterfaceGroup> {
        self.interface
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, g)| g.next_protocol() == Some(1))
            .filter_map(|(index, _)| self.interface.get(index + 1))
    }

    /// IFSC from the first TA for T=1 (TAi, i >= 3, after a TD(i-1) announcing T=1); 32
    /// without it or for the reserved values 0x00 and 0xFF.
    pub fn ifsc(&self) -> u8 {
        match self.t1_groups().find_map(|g| g.ta) {
            Some(ifsc @ 1..=254) => ifsc,
            _ => DEFAULT_IFSC,
        }
    }

    /// BWI and CWI from the first TB for T=1 (bits 8 to 5, bits 4 to 1); `(4, 13)` without
    /// it.
    pub fn bwi_cwi(&self) -> (u8, u8) {
        self.t1_groups()
            .find_map(|g| g.tb)
            .map_or((DEFAULT_BWI, DEFAULT_CWI), |tb| (tb >> 4, tb & 0x0F))
    }

    /// The T=1 error detection code from the first TC for T=1 (bit 1: CRC when set); LRC
    /// without it.
    pub fn t1_checksum(&self) -> Checksum {
        match self.t1_groups().find_map(|g| g.tc) {
            Some(tc) if tc & 1 != 0 => Checksum::Crc,
            _ => Checksum::Lrc,
        }
    }

    /// The specific mode TA2 announces: the protocol in use and whether the card can change
    /// to negotiable mode (TA2 bit 8 clear). `None` without TA2 (negotiable mode: a PPS
    /// exchange may select the parameters).
    pub fn specific_mode(&self) -> Option<(u8, bool)> {
        self.group(2)
            .and_then(|g| g.ta)
            .map(|ta2| (ta2 & 0x0F, ta2 & 0x80 == 0))
    }

    /// Whether TA2 says the parameters are implicit (bit 5 set: TA1's Fi/Di do not apply in
    /// specific mode and the defaults, or values known by other means, are used).
    pub fn specific_mode_implicit(&self) -> bool {
        self.group(2)
            .and_then(|g| g.ta)
            .is_some_and(|ta2| ta2 & 0x10 != 0)
    }

    /// Fi and Di values from TA1, with the defaults (372, 1) for reserved indices.
    fn f_d_or_default(&self) -> (u16, u8) {
        (self.f().unwrap_or(372), self.d().unwrap_or(1))
    }

    /// Work waiting time for T=0: WI × 960 × Fi / f (ISO/IEC 7816-3 10.2), clamped to
    /// [`MAX_TIMEOUT`].
    pub fn wwt(&self, clock_khz: u32) -> Duration {
        wwt_for(self.wi(), self.f_d_or_default().0, clock_khz)
    }

    /// Work waiting time with the EMV margin: WWT + 480 × D etu (EMV Book 1 9.2.2.1),
    /// clamped.
    pub fn wwt_emv(&self, clock_khz: u32) -> Duration {
        let (f, d) = self.f_d_or_default();
        clamp_timeout(wwt_for(self.wi(), f, clock_khz) + etus(480 * u64::from(d), f, d, clock_khz))
    }

    /// Block waiting time for T=1: 11 etu + 2^BWI × 960 × 372 / f (ISO/IEC 7816-3 11.4.3),
    /// with the etu from TA1, clamped to [`MAX_TIMEOUT`].
    pub fn bwt(&self, clock_khz: u32) -> Duration {
        let (f, d) = self.f_d_or_default();
        bwt_for(self.bwi_cwi().0, f, d, clock_khz)
    }

    /// Block waiting time with the EMV margin: BWT + 960 × D etu (EMV Book 1 9.2.4.2.2),
    /// clamped.
    pub fn bwt_emv(&self, clock_khz: u32) -> Duration {
        let (f, d) = self.f_d_or_default();
        clamp_timeout(
            bwt_for(self.bwi_cwi().0, f, d, clock_khz) + etus(960 * u64::from(d), f, d, clock_khz),
        )
    }

    /// Character waiting time for T=1: (11 + 2^CWI) etu, clamped to [`MAX_TIMEOUT`].
    pub fn cwt(&self, clock_khz: u32) -> Duration {
        let (f, d) = self.f_d_or_default();
        cwt_for(self.bwi_cwi().1, f, d, clock_khz)
    }
}

/// Reads the ATR byte by byte.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, expected: AtrByte) -> Result<u8, AtrError> {
        let byte = self
            .bytes
            .get(self.pos)
            .copied()
            .ok_or(AtrError::Truncated {
                expected,
                len: self.bytes.len(),
            })?;
        self.pos += 1;
        Ok(byte)
    }
}

/// Fi for a TA1 index (ISO/IEC 7816-3 table 7); `None` for the reserved 7, 8, 14, 15.
pub fn fi_value(index: u8) -> Option<u16> {
    match index {
        0 | 1 => Some(372),
        2 => Some(558),
        3 => Some(744),
        4 => Some(1116),
        5 => Some(1488),
        6 => Some(1860),
        9 => Some(512),
        10 => Some(768),
        11 => Some(1024),
        12 => Some(1536),
        13 => Some(2048),
        _ => None,
    }
}

/// fmax in kHz for a TA1 Fi index (ISO/IEC 7816-3 table 7); `None` for reserved indices.
pub fn fmax_khz(index: u8) -> Option<u32> {
    match index {
        0 => Some(4_000),
        1 => Some(5_000),
        2 => Some(6_000),
        3 => Some(8_000),
        4 => Some(12_000),
        5 => Some(16_000),
        6 => Some(20_000),
        9 => Some(5_000),
        10 => Some(7_500),
        11 => Some(10_000),
        12 => Some(15_000),
        13 => Some(20_000),
        _ => None,
    }
}

/// Di for a TA1 index (ISO/IEC 7816-3 table 8); `None` for the reserved 0 and 10..=15.
pub fn di_value(index: u8) -> Option<u8> {
    match index {
        1 => Some(1),
        2 => Some(2),
        3 => Some(4),
        4 => Some(8),
        5 => Some(16),
        6 => Some(32),
        7 => Some(64),
        8 => Some(12),
        9 => Some(20),
        _ => None,
    }
}

/// Duration of one elementary time unit in microseconds: F / (D × f). Infinite when `d` or
/// `clock_khz` is 0.
pub fn etu_us(f: u16, d: u8, clock_khz: u32) -> f64 {
    if d == 0 || clock_khz == 0 {
        return f64::INFINITY;
    }
    f64::from(f) * 1000.0 / (f64::from(d) * f64::from(clock_khz))
}

/// `d` capped at [`MAX_TIMEOUT`].
pub fn clamp_timeout(d: Duration) -> Duration {
    d.min(MAX_TIMEOUT)
}

/// A waiting time multiplied by a WTX multiplier (0 counts as 1), clamped to
/// [`MAX_TIMEOUT`]: the timeout for the block after S(WTX response).
pub fn scale_timeout(base: Duration, wtx: u8) -> Duration {
    clamp_timeout(base.saturating_mul(u32::from(wtx.max(1))))
}

/// `clock_cycles` clock cycles at `clock_khz`, clamped; a zero clock gives [`MAX_TIMEOUT`].
fn cycles(clock_cycles: u128, clock_khz: u32) -> Duration {
    if clock_khz == 0 {
        return MAX_TIMEOUT;
    }
    // ns = cycles * 1e6 / kHz
    let ns = clock_cycles.saturating_mul(1_000_000) / u128::from(clock_khz);
    let cap = MAX_TIMEOUT.as_nanos();
    // Fits in u64: at most MAX_TIMEOUT in nanoseconds.
    Duration::from_nanos(u64::try_from(ns.min(cap)).unwrap_or(u64::MAX))
}

/// `n` etu with these F and D at `clock_khz`, clamped; D = 0 counts as 1.
fn etus(n: u64, f: u16, d: u8, clock_khz: u32) -> Duration {
    if clock_khz == 0 {
        return MAX_TIMEOUT;
    }
    let ns =
        u128::from(n) * u128::from(f) * 1_000_000 / (u128::from(d.max(1)) * u128::from(clock_khz));
    let cap = MAX_TIMEOUT.as_nanos();
    Duration::from_nanos(u64::try_from(ns.min(cap)).unwrap_or(u64::MAX))
}

/// WWT = WI × 960 × Fi / f, clamped to [`MAX_TIMEOUT`].
pub fn wwt_for(wi: u8, fi: u16, clock_khz: u32) -> Duration {
    cycles(u128::from(wi) * 960 * u128::from(fi), clock_khz)
}

/// BWT = 11 etu + 2^BWI × 960 × 372 / f, clamped to [`MAX_TIMEOUT`]. BWI above 9 (reserved)
/// counts as 9.
pub fn bwt_for(bwi: u8, f: u16, d: u8, clock_khz: u32) -> Duration {
    let bwi = u32::from(bwi.min(9));
    clamp_timeout(etus(11, f, d, clock_khz) + cycles((1u128 << bwi) * 960 * 372, clock_khz))
}

/// CWT = (11 + 2^CWI) etu, clamped to [`MAX_TIMEOUT`].
pub fn cwt_for(cwi: u8, f: u16, d: u8, clock_khz: u32) -> Duration {
    etus(11 + (1u64 << cwi.min(15)), f, d, clock_khz)
}

/// Data rate in bit/s for F and D at `clock_khz`: f × D / F.
pub fn data_rate_bps(f: u16, d: u8, clock_khz: u32) -> u64 {
    if f == 0 {
        return 0;
    }
    u64::from(clock_khz) * 1000 * u64::from(d) / u64::from(f)
}

/// The fastest Fi/Di pair (indices) both the card and the reader support.
///
/// `card` are the card's TA1 indices. Candidates keep the card's Fi and use its Di or a
/// smaller power-of-two D (1, 2, 4, ... below it), plus the defaults (1, 1). A candidate fits
/// when its data rate (clock × D / F) is at most `reader_max_rate_bps` and the clock does not
/// exceed the card's fmax for that Fi. The fastest fitting one wins (the defaults on a tie,
/// since they need no PPS); the defaults when nothing fits or the card's indices are
/// reserved.
pub fn best_fi_di(card: (u8, u8), reader_max_rate_bps: u32, clock_khz: u32) -> (u8, u8) {
    let max = u64::from(reader_max_rate_bps);
    let default_rate = data_rate_bps(372, 1, clock_khz);
    let mut best = DEFAULT_FI_DI;
    let mut best_rate = if default_rate <= max { default_rate } else { 0 };
    let (Some(f), Some(card_d), Some(fmax)) =
        (fi_value(card.0), di_value(card.1), fmax_khz(card.0))
    else {
        return DEFAULT_FI_DI;
    };
    if clock_khz > fmax {
        return DEFAULT_FI_DI;
    }
    let candidates = std::iter::once(card.1)
        .chain((1..=7u8).filter(|&i| di_value(i).is_some_and(|d| d < card_d)));
    for d_index in candidates {
        let Some(d) = di_value(d_index) else { continue };
        let rate = data_rate_bps(f, d, clock_khz);
        if rate <= max && rate > best_rate {
            best = (card.0, d_index);
            best_rate = rate;
        }
    }
    best
}

/// A PPS request selecting `protocol` and the Fi/Di indices `fi_di`: PPSS 0xFF, PPS0
/// (0x10 | T: PPS1 present), PPS1 (Fi << 4 | Di), PCK (the exclusive-or of all four bytes is
/// zero).
pub fn pps_request(protocol: u8, fi_di: (u8, u8)) -> Vec<u8> {
    let pps0 = 0x10 | (protocol & 0x0F);
    let pps1 = (fi_di.0 << 4) | (fi_di.1 & 0x0F);
    let pck = 0xFF ^ pps0 ^ pps1;
    vec![0xFF, pps0, pps1, pck]
}

/// The fields of a PPS request or response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pps {
    /// Protocol type T from PPS0.
    pub protocol: u8,
    /// PPS1, when present.
    pub pps1: Option<u8>,
    /// PPS2, when present.
    pub pps2: Option<u8>,
    /// PPS3, when present.
    pub pps3: Option<u8>,
}

/// Parses a PPS request or response: PPSS 0xFF, PPS0, the optional PPS1..3 its bits 5..7
/// announce, PCK; `None` when malformed (length, PPSS or PCK wrong).
pub fn parse_pps(bytes: &[u8]) -> Option<Pps> {
    let (&ppss, rest) = bytes.split_first()?;
    if ppss != 0xFF {
        return None;
    }
    let &pps0 = rest.first()?;
    let mut pos = 2;
    let mut optional = [None; 3];
    for (bit, slot) in optional.iter_mut().enumerate() {
        if pps0 & (0x10 << bit) != 0 {
            *slot = Some(*bytes.get(pos)?);
            pos += 1;
        }
    }
    if bytes.len() != pos + 1 || bytes.iter().fold(0u8, |acc, b| acc ^ b) != 0 {
        return None;
    }
    Some(Pps {
        protocol: pps0 & 0x0F,
        pps1: optional[0],
        pps2: optional[1],
        pps3: optional[2],
    })
}

/// Whether the card's PPS `response` accepts `request` as sent: both well formed, the same
/// protocol, PPS1 echoed (a response without PPS1 means the card keeps the defaults, which
/// is success only when the request asked for them), and PPS2/PPS3 either echoed or absent.
/// On `false` the caller falls back to the defaults (with a new reset when the card answered
/// nonsense).
pub fn pps_response_ok(request: &[u8], response: &[u8]) -> bool {
    let (Some(req), Some(resp)) = (parse_pps(request), parse_pps(response)) else {
        return false;
    };
    if req.protocol != resp.protocol {
        return false;
    }
    let pps1_ok = match (req.pps1, resp.pps1) {
        (Some(a), Some(b)) => a == b,
        (Some(a), None) => a == 0x11,
        (None, Some(_)) => false,
        (None, None) => true,
    };
    let echoed_or_absent = |a: Option<u8>, b: Option<u8>| b.is_none() || a == b;
    pps1_ok && echoed_or_absent(req.pps2, resp.pps2) && echoed_or_absent(req.pps3, resp.pps3)
}
