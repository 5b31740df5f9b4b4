//! ISO 7811 / 7813 magnetic-stripe track decoding.
//!
//! The core is `#![no_std]` (build with `--no-default-features`) and never allocates: decoded
//! characters go into fixed-size [`TrackBuf`]s and parsed fields borrow slices of the text.
//!
//! * [`decode_bits`] decodes one track from a raw bitstream (one bit per byte, in stripe
//!   order, leading/trailing zero padding, forward or reversed swipe), checking the start
//!   sentinel, per-character odd parity, the end sentinel and the LRC; [`encode_bits`] is the
//!   inverse (for tests and simulators).
//! * [`parse_ascii`] splits the text that ASCII readers send (`%...?;...?;...?`) into tracks.
//! * [`Track1Data::parse`] / [`Track2Data::parse`] parse the ISO 7813 financial layouts;
//!   [`ServiceCode`] explains the service code and [`swipe_verdict`] says whether a swipe may
//!   proceed or the card must be inserted as a chip card.
//! * PANs are only ever shown masked ([`mask_pan`], first 6 and last 4 digits); the `Debug`
//!   and `Display` implementations of the parsed data never print the full PAN.
//!
//! With the `std` feature (default), [`TrackStatus`] converts into `pos_hal::TrackStatus` and
//! `masked_pan_string` is `pos_hal::mask_pan`.
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod ascii;
mod bits;
mod card;
#[cfg(feature = "std")]
#[macro_use]
mod core;
#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub mod hid;
#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub mod readers;
#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub mod serial;
#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub mod sim;
#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub mod sim_pins;
pub mod ttl;
#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub mod wedge;

pub use ascii::{TrackText, parse_ascii};
pub use bits::{EncodeError, TrackBuf, decode_bits, encode_bits};
pub use card::{
    AllowedServices, Authorization, Interchange, MaskedPan, Name, ParseError, PinRequirement,
    ServiceCode, SwipeVerdict, Track1Data, Track2Data, luhn_ok, mask_pan, swipe_verdict,
};

/// Which track of the stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Track {
    /// Track 1: IATA, 7-bit characters (6 data bits + odd parity), up to 79 characters.
    One,
    /// Track 2: ABA, 5-bit characters (4 data bits + odd parity), up to 40 characters.
    Two,
    /// Track 3: THRIFT, 5-bit characters (4 data bits + odd parity), up to 107 characters.
    Three,
}

impl Track {
    /// All three tracks, in order.
    pub const ALL: [Track; 3] = [Track::One, Track::Two, Track::Three];

    /// Maximum number of characters on the track, sentinels and LRC included (ISO 7811).
    pub const fn max_chars(self) -> usize {
        match self {
            Track::One => 79,
            Track::Two => 40,
            Track::Three => 107,
        }
    }

    /// Maximum number of data characters between the sentinels (`max_chars() - 3`).
    pub const fn max_data(self) -> usize {
        self.max_chars() - 3
    }

    /// Data bits per character (6 on track 1, 4 on tracks 2 and 3); one parity bit follows.
    pub const fn data_bits(self) -> usize {
        match self {
            Track::One => 6,
            Track::Two | Track::Three => 4,
        }
    }

    /// Bits per character including the parity bit.
    pub const fn char_bits(self) -> usize {
        self.data_bits() + 1
    }

    /// ASCII value of character code 0 (0x20 on track 1, 0x30 on tracks 2 and 3).
    pub const fn ascii_offset(self) -> u8 {
        match self {
            Track::One => 0x20,
            Track::Two | Track::Three => 0x30,
        }
    }

    /// The start sentinel as ASCII (`%` on track 1, `;` on tracks 2 and 3).
    pub const fn start_sentinel(self) -> u8 {
        match self {
            Track::One => b'%',
            Track::Two | Track::Three => b';',
        }
    }

    /// The end sentinel as ASCII (`?` on every track).
    pub const fn end_sentinel(self) -> u8 {
        b'?'
    }

    /// The field separator as ASCII (`^` on track 1, `=` on tracks 2 and 3).
    pub const fn separator(self) -> u8 {
        match self {
            Track::One => b'^',
            Track::Two | Track::Three => b'=',
        }
    }

    /// True if `c` is in the track's character set (sentinels included).
    pub const fn is_encodable(self, c: u8) -> bool {
        let off = self.ascii_offset();
        c >= off && c - off < (1u8 << self.data_bits())
    }

    /// Index 0, 1 or 2.
    pub const fn index(self) -> usize {
        match self {
            Track::One => 0,
            Track::Two => 1,
            Track::Three => 2,
        }
    }
}

/// How one track read, as UnifiedPOS reports it per track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackStatus {
    /// Read and checked (sentinels, parity and LRC where available).
    Ok,
    /// Nothing on the track.
    Empty,
    /// Start sentinel missing or wrong (in both swipe directions).
    StartSentinel,
    /// End sentinel missing (padding or the end of the data reached first, or too long).
    EndSentinel,
    /// A character failed its odd-parity check (or, in reader ASCII output, the reader
    /// reported an unspecified read error / sent a character outside the track's set).
    Parity,
    /// The longitudinal redundancy check failed (or the LRC character is missing).
    Lrc,
}

impl TrackStatus {
    /// True for the error statuses (a track that was there but did not read).
    pub const fn is_error(self) -> bool {
        !matches!(self, TrackStatus::Ok | TrackStatus::Empty)
    }
}

#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
impl From<TrackStatus> for pos_hal::TrackStatus {
    fn from(s: TrackStatus) -> Self {
        match s {
            TrackStatus::Ok => pos_hal::TrackStatus::Ok,
            TrackStatus::Empty => pos_hal::TrackStatus::Empty,
            TrackStatus::StartSentinel => pos_hal::TrackStatus::StartSentinel,
            TrackStatus::EndSentinel => pos_hal::TrackStatus::EndSentinel,
            TrackStatus::Parity => pos_hal::TrackStatus::Parity,
            TrackStatus::Lrc => pos_hal::TrackStatus::Lrc,
        }
    }
}

/// The PAN masked by `pos_hal::mask_pan` (first 6 and last 4 digits kept), as a `String`.
#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub fn masked_pan_string(pan: &str) -> String {
    pos_hal::mask_pan(pan)
}

/// The README's examples, compiled and run as doctests so they cannot rot.
#[cfg(all(doctest, feature = "sim"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
