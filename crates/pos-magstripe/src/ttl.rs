//! Bare TTL magnetic-stripe heads read through three `embedded-hal` 1.0 input pins.
//!
//! A TTL head (the decoder chip behind the read head) has three active-low outputs: CARD
//! PRESENT (low while a card is in the slot), STROBE (one falling edge per bit) and DATA
//! (low for a 1 bit). [`TtlHead`] is a polling state machine: the caller drives it by calling
//! [`TtlHead::poll`] often enough to see every strobe level (from a timer interrupt or a busy
//! loop on a microcontroller, from a thread on Linux with `linux-embedded-hal` pins). DATA is
//! sampled on each falling STROBE edge while CARD PRESENT is low; when CARD PRESENT goes high
//! again the buffered bits are decoded with [`decode_bits`].
//!
//! No allocation, no `std`: the bits go into a fixed array of [`MAX_BITS`] entries.

use core::fmt;

use embedded_hal::digital::{Error as _, ErrorKind, InputPin};

use crate::{Track, TrackBuf, TrackStatus, decode_bits};

/// Number of bits one swipe may hold (track 3 at 107 characters of 5 bits is 535 bits; the
/// rest is room for leading and trailing clocking zeros).
pub const MAX_BITS: usize = 1024;

/// Which of the three head pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TtlPin {
    /// CARD PRESENT (CLS / CP), active low.
    CardPresent,
    /// STROBE (clock), data valid on its falling edge.
    Strobe,
    /// DATA, active low (low level is a 1 bit).
    Data,
}

/// Reading a pin failed. The swipe under way (if any) is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlError {
    /// The pin that could not be read.
    pub pin: TtlPin,
    /// The `embedded-hal` error kind the pin driver reported.
    pub kind: ErrorKind,
}

impl fmt::Display for TtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reading the {:?} pin failed: {}", self.pin, self.kind)
    }
}

impl core::error::Error for TtlError {}

/// One decoded swipe of the configured track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackResult {
    /// Which track was decoded.
    pub track: Track,
    /// How it read; [`TrackStatus::EndSentinel`] also when more than [`MAX_BITS`] bits came.
    pub status: TrackStatus,
    /// The data characters (empty unless `status` is [`TrackStatus::Ok`]). Card data.
    pub data: TrackBuf,
    /// Number of bits clocked in during the swipe (including any beyond [`MAX_BITS`]).
    pub bits: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for CARD PRESENT.
    Idle,
    /// Card present; `strobe_low` is the last strobe level seen.
    Reading { strobe_low: bool },
}

/// A TTL magstripe head on three input pins (card present, strobe, data; all active low).
pub struct TtlHead<CP, STB, DATA> {
    card_present: CP,
    strobe: STB,
    data: DATA,
    track: Track,
    state: State,
    bits: [u8; MAX_BITS],
    len: usize,
    overflow: bool,
}

impl<CP, STB, DATA> fmt::Debug for TtlHead<CP, STB, DATA> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the bits: they are card data.
        f.debug_struct("TtlHead")
            .field("track", &self.track)
            .field("state", &self.state)
            .field("bits", &self.len)
            .finish_non_exhaustive()
    }
}

impl<CP, STB, DATA> TtlHead<CP, STB, DATA>
where
    CP: InputPin,
    STB: InputPin,
    DATA: InputPin,
{
    /// A head reading track 2 (the usual single-track head).
    pub fn new(card_present: CP, strobe: STB, data: DATA) -> Self {
        Self::with_track(card_present, strobe, data, Track::Two)
    }

    /// A head reading `track` (the head's position decides which track it sees).
    pub fn with_track(card_present: CP, strobe: STB, data: DATA, track: Track) -> Self {
        TtlHead {
            card_present,
            strobe,
            data,
            track,
            state: State::Idle,
            bits: [0; MAX_BITS],
            len: 0,
            overflow: false,
        }
    }

    /// The track this head decodes.
    pub fn track(&self) -> Track {
        self.track
    }

    /// True while a card is in the slot (a swipe is being clocked in).
    pub fn is_reading(&self) -> bool {
        matches!(self.state, State::Reading { .. })
    }

    /// Gives the three pins back.
    pub fn release(self) -> (CP, STB, DATA) {
        (self.card_present, self.strobe, self.data)
    }

    /// Samples the pins once and advances the state machine.
    ///
    /// Returns `Ok(Some(result))` when CARD PRESENT released after a swipe, `Ok(None)`
    /// otherwise. Call it at least twice per strobe period. A pin error drops the swipe
    /// under way and is returned; the head then waits for the next card.
    pub fn poll(&mut self) -> Result<Option<TrackResult>, TtlError> {
        match self.step() {
            Ok(r) => Ok(r),
            Err(e) => {
                self.reset();
                Err(e)
            }
        }
    }

    fn step(&mut self) -> Result<Option<TrackResult>, TtlError> {
        let present = self.card_present.is_low().map_err(|e| TtlError {
            pin: TtlPin::CardPresent,
            kind: e.kind(),
        })?;
        if !present {
            return Ok(match self.state {
                State::Idle => None,
                State::Reading { .. } => Some(self.finish()),
            });
        }
        let strobe_low = self.strobe.is_low().map_err(|e| TtlError {
            pin: TtlPin::Strobe,
            kind: e.kind(),
        })?;
        match self.state {
            State::Idle => {
                self.reset();
                // A strobe already low when the card arrives is not an edge.
                self.state = State::Reading { strobe_low };
            }
            State::Reading {
                strobe_low: was_low,
            } => {
                if strobe_low && !was_low {
                    let one = self.data.is_low().map_err(|e| TtlError {
                        pin: TtlPin::Data,
                        kind: e.kind(),
                    })?;
                    self.push(one);
                }
                self.state = State::Reading { strobe_low };
            }
        }
        Ok(None)
    }

    fn push(&mut self, one: bool) {
        match self.bits.get_mut(self.len) {
            Some(slot) => *slot = u8::from(one),
            None => self.overflow = true,
        }
        self.len = self.len.saturating_add(1);
    }

    fn finish(&mut self) -> TrackResult {
        let mut data = TrackBuf::new();
        let status = if self.overflow {
            TrackStatus::EndSentinel
        } else {
            let bits = self.bits.get(..self.len).unwrap_or(&[]);
            decode_bits(self.track, bits, &mut data)
        };
        let result = TrackResult {
            track: self.track,
            status,
            data,
            bits: self.len,
        };
        self.reset();
        result
    }

    fn reset(&mut self) {
        // Wipe the card data of the last swipe.
        self.bits = [0; MAX_BITS];
        self.len = 0;
        self.overflow = false;
        self.state = State::Idle;
    }
}
