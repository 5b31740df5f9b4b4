//! Simulated TTL head pins and keyboard-wedge key events (feature `sim`).
//!
//! * [`SimPins`] holds a generated waveform of the three active-low TTL head lines (card
//!   present, strobe, data) built from [`encode_bits`], forward or
//!   reversed, with jitter in the strobe timing; [`SimPins::pins`] hands out three
//!   [`SimPin`]s implementing `embedded_hal::digital::InputPin`. Time moves only when the
//!   caller calls [`SimPins::advance`] (one tick per call), so tests are deterministic.
//! * [`wedge_key_events`] turns a swipe's text into the `(key code, value)` events a US
//!   keyboard-wedge reader sends.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use embedded_hal::digital::{ErrorKind, ErrorType, InputPin};

use crate::{EncodeError, Track, encode_bits};

/// Electrical levels of the three lines at one tick (`true` = high).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Levels {
    card_present: bool,
    strobe: bool,
    data: bool,
}

/// How to generate a waveform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaveOptions {
    /// Swipe the card backwards (the bits arrive in reverse order).
    pub reversed: bool,
    /// Seed of the jitter generator; `None` for a regular clock.
    pub jitter_seed: Option<u64>,
    /// With jitter, each strobe half-period lasts 1 to `1 + max_jitter` ticks.
    pub max_jitter: u32,
    /// Zero bits clocked before the data (the stripe's leading clocking zeros).
    pub leading_zeros: usize,
    /// Zero bits clocked after the data.
    pub trailing_zeros: usize,
    /// Release CARD PRESENT after this many bits (a partial swipe).
    pub stop_after_bits: Option<usize>,
}

impl Default for WaveOptions {
    fn default() -> Self {
        WaveOptions {
            reversed: false,
            jitter_seed: None,
            max_jitter: 3,
            leading_zeros: 20,
            trailing_zeros: 20,
            stop_after_bits: None,
        }
    }
}

/// A failure injected into one pin at one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimPinError;

impl fmt::Display for SimPinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("simulated pin read failure")
    }
}

impl std::error::Error for SimPinError {}

impl embedded_hal::digital::Error for SimPinError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

/// Which line a [`SimPin`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimLine {
    /// CARD PRESENT.
    CardPresent,
    /// STROBE.
    Strobe,
    /// DATA.
    Data,
}

#[derive(Debug)]
struct Wave {
    samples: Vec<Levels>,
    tick: usize,
    fail: Option<(SimLine, usize)>,
}

impl Wave {
    fn levels(&self) -> Levels {
        // Past the end of the waveform the card is gone and the lines idle high.
        self.samples.get(self.tick).copied().unwrap_or(Levels {
            card_present: true,
            strobe: true,
            data: true,
        })
    }
}

/// A generated TTL head waveform shared by three [`SimPin`]s.
#[derive(Debug, Clone)]
pub struct SimPins {
    wave: Rc<RefCell<Wave>>,
}

/// One simulated input pin of a [`SimPins`] waveform.
#[derive(Debug, Clone)]
pub struct SimPin {
    wave: Rc<RefCell<Wave>>,
    line: SimLine,
}

impl SimPins {
    /// The waveform of a swipe of `text` (data characters between the sentinels) on `track`.
    pub fn swipe(track: Track, text: &str, options: WaveOptions) -> Result<Self, EncodeError> {
        let mut bits = vec![0u8; (track.max_chars() + 1) * track.char_bits()];
        let n = encode_bits(track, text, 0, &mut bits)?;
        bits.truncate(n);
        Ok(Self::from_bits(&bits, options))
    }

    /// The waveform clocking out `bits` (one bit per byte, non-zero is 1, stripe order).
    pub fn from_bits(bits: &[u8], options: WaveOptions) -> Self {
        let mut stream: Vec<bool> = Vec::new();
        stream.extend(std::iter::repeat_n(false, options.leading_zeros));
        stream.extend(bits.iter().map(|&b| b != 0));
        stream.extend(std::iter::repeat_n(false, options.trailing_zeros));
        if options.reversed {
            stream.reverse();
        }
        if let Some(stop) = options.stop_after_bits {
            stream.truncate(stop);
        }
        let mut rng = options.jitter_seed.map(|s| s ^ 0x9E37_79B9_7F4A_7C15);
        let mut ticks = move || -> usize {
            match rng.as_mut() {
                Some(state) => {
                    // xorshift64*
                    *state ^= *state >> 12;
                    *state ^= *state << 25;
                    *state ^= *state >> 27;
                    let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33;
                    1 + (r % (u64::from(options.max_jitter) + 1)) as usize
                }
                None => 2,
            }
        };
        let idle = Levels {
            card_present: true,
            strobe: true,
            data: true,
        };
        let mut samples = vec![idle; 3];
        // Card arrives, strobe idle high.
        samples.extend(std::iter::repeat_n(
            Levels {
                card_present: false,
                ..idle
            },
            ticks(),
        ));
        for one in stream {
            let data = !one; // active low
            let high = Levels {
                card_present: false,
                strobe: true,
                data,
            };
            let low = Levels {
                strobe: false,
                ..high
            };
            samples.extend(std::iter::repeat_n(high, ticks()));
            samples.extend(std::iter::repeat_n(low, ticks()));
        }
        samples.extend(std::iter::repeat_n(
            Levels {
                card_present: false,
                ..idle
            },
            ticks(),
        ));
        samples.extend(std::iter::repeat_n(idle, 3));
        SimPins {
            wave: Rc::new(RefCell::new(Wave {
                samples,
                tick: 0,
                fail: None,
            })),
        }
    }

    /// The three pins: (card present, strobe, data).
    pub fn pins(&self) -> (SimPin, SimPin, SimPin) {
        let pin = |line| SimPin {
            wave: Rc::clone(&self.wave),
            line,
        };
        (
            pin(SimLine::CardPresent),
            pin(SimLine::Strobe),
            pin(SimLine::Data),
        )
    }

    /// Makes reads of `line` fail from tick `tick` on.
    pub fn fail_from(&self, line: SimLine, tick: usize) {
        self.wave.borrow_mut().fail = Some((line, tick));
    }

    /// Moves to the next tick; false once the waveform is over (the lines then stay idle).
    pub fn advance(&self) -> bool {
        let mut w = self.wave.borrow_mut();
        if w.tick < w.samples.len() {
            w.tick += 1;
        }
        w.tick < w.samples.len()
    }

    /// Total number of ticks in the waveform.
    pub fn len(&self) -> usize {
        self.wave.borrow().samples.len()
    }

    /// True if the waveform has no ticks (never: idle ticks are always generated).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ErrorType for SimPin {
    type Error = SimPinError;
}

impl InputPin for SimPin {
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        let w = self.wave.borrow();
        if w.fail
            .is_some_and(|(line, from)| line == self.line && w.tick >= from)
        {
            return Err(SimPinError);
        }
        let l = w.levels();
        Ok(match self.line {
            SimLine::CardPresent => l.card_present,
            SimLine::Strobe => l.strobe,
            SimLine::Data => l.data,
        })
    }

    fn is_low(&mut self) -> Result<bool, Self::Error> {
        self.is_high().map(|h| !h)
    }
}

/// The key events (`(code, value)`, value 1 = press, 0 = release) a US-layout keyboard-wedge
/// reader sends for `text`, followed by Enter if `enter` is set. Shifted characters are
/// wrapped in left-shift press/release. Characters with no key on a US keyboard are skipped.
pub fn wedge_key_events(text: &str, enter: bool) -> Vec<(u16, i32)> {
    crate::wedge::layout_key_events(crate::wedge::KeyboardLayout::Us, text, enter)
}
