//! A scripted virtual card (feature `sim`): replays an APDU [`Transcript`].
//!
//! [`ScriptedCard`] implements [`pos_hal::VirtualCard`], so it plugs into any simulated
//! reader (the CCID virtual reader: `SimReaderHandle::insert`). It answers each command with
//! the response recorded for it:
//!
//! - [`Matching::Strict`]: the commands must come in the transcript's order, each equal to
//!   the next recorded command.
//! - [`Matching::Lenient`]: GENERATE AC (INS `AE`), INTERNAL AUTHENTICATE (INS `88`) and
//!   EXTERNAL AUTHENTICATE (INS `82`) match on CLA INS P1 P2 only (their data is the
//!   terminal's amount, date and unpredictable number, or the issuer's answer); GET
//!   PROCESSING OPTIONS (INS `A8`) on CLA INS P1 P2 and the length of its PDOL data (the
//!   values are the terminal's, the length is the card's PDOL's); other commands must be
//!   equal. Order is free: a command is answered from the
//!   *first unused* exchange of the transcript that matches it, so a terminal that reads
//!   records in another order still works, and a command recorded twice (the UnionPay
//!   transcript reads SFI 1 record 1 of the directory, then of the application) is answered
//!   in recorded order.
//!
//! In both modes a command also matches a recorded case 4 command that it equals without its
//! final Le byte: that is how a T=0 card receives a case 4 command (sent as case 3, the Le
//! stays with the terminal), so a transcript recorded at APDU level replays behind a TPDU
//! T=0 reader.
//!
//! A command that matches nothing is answered `69 85` (conditions of use not satisfied, what
//! a card says to a command out of sequence) and recorded in [`ScriptedCard::mismatches`];
//! the script position does not move. Commands after the end of the script are mismatches
//! too.
//!
//! Card faults for tests, counted in commands since the last power-on (1 = the first):
//! [`ScriptedCard::mute_at`] (silent from that command until the next power-on),
//! [`ScriptedCard::sw_override`] (answer only the given status words; the command is still
//! matched and consumes its exchange) and [`ScriptedCard::mute_on_reset`] (no ATR). Reader
//! faults (card pulled, reader unplugged) are the simulated reader's business.
//!
//! [`power_on`](pos_hal::VirtualCard::power_on) restarts the script from its beginning and
//! the command count from zero; the mismatch record is kept.

use std::path::Path;

use pos_hal::VirtualCard;

use crate::apdu::ins;
use crate::transcript::{Transcript, TranscriptError};

/// How commands are matched against the transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Matching {
    /// In order, byte for byte (a case 4 command may come without its Le, as over T=0).
    #[default]
    Strict,
    /// In any order; GENERATE AC, INTERNAL and EXTERNAL AUTHENTICATE on CLA INS P1 P2 only,
    /// GET PROCESSING OPTIONS on CLA INS P1 P2 and data length.
    Lenient,
}

/// A command the script could not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Which command since power-on (1 = the first).
    pub index: usize,
    /// The command received.
    pub received: Vec<u8>,
    /// The transcript command expected next (the next unused one in lenient mode), `None`
    /// when the script was used up.
    pub expected: Option<Vec<u8>>,
}

/// The status words answered to a command that matches nothing: conditions of use not
/// satisfied.
pub const MISMATCH_SW: [u8; 2] = [0x69, 0x85];

/// A T=0 EMV ATR: `3B 65 00 00 9C 11 01 01 03` (TB1 = 00 no VPP, TC1 = 00 no extra guard
/// time, T=0 only, five historical bytes).
pub const ATR_T0: [u8; 9] = [0x3B, 0x65, 0x00, 0x00, 0x9C, 0x11, 0x01, 0x01, 0x03];

/// A T=1 EMV ATR: `3B E3 00 00 81 31 FE 45 45 4D 56 TCK` (TB1 = 00, TC1 = 00, TD1 -> T=1,
/// TD2 -> TA3 = FE (IFSC 254), TB3 = 45 (BWI 4, CWI 5), T=1; historical bytes "EMV"; TCK).
pub fn atr_t1() -> Vec<u8> {
    let mut atr = vec![
        0x3B, 0xE3, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x45, 0x45, 0x4D, 0x56,
    ];
    let tck = atr.iter().skip(1).fold(0u8, |a, b| a ^ b);
    atr.push(tck);
    atr
}

/// A virtual card that replays a transcript. See the [module](self) documentation.
#[derive(Debug, Clone)]
pub struct ScriptedCard {
    transcript: Transcript,
    mode: Matching,
    atr: Vec<u8>,
    mute_on_reset: bool,
    used: Vec<bool>,
    /// Strict mode: index of the next exchange.
    next: usize,
    /// Commands since power-on.
    count: usize,
    mute_at: Option<usize>,
    overrides: Vec<(usize, [u8; 2])>,
    mismatches: Vec<Mismatch>,
    answered: usize,
}

fn header_of(c: &[u8]) -> Option<&[u8]> {
    c.get(..4)
}

/// `received` equals the case 4 short command `recorded` without its Le byte (a T=0 card's
/// view of it).
fn is_t0_form(received: &[u8], recorded: &[u8]) -> bool {
    // Case 4 short: header, Lc != 0, Lc data bytes, Le.
    let Some(&lc) = recorded.get(4) else {
        return false;
    };
    lc != 0
        && recorded.len() == 6 + usize::from(lc)
        && received.len() + 1 == recorded.len()
        && recorded.starts_with(received)
}

impl ScriptedCard {
    /// A card replaying `transcript` with the T=0 ATR [`ATR_T0`].
    pub fn new(transcript: Transcript, mode: Matching) -> Self {
        let n = transcript.exchanges.len();
        ScriptedCard {
            transcript,
            mode,
            atr: ATR_T0.to_vec(),
            mute_on_reset: false,
            used: vec![false; n],
            next: 0,
            count: 0,
            mute_at: None,
            overrides: Vec::new(),
            mismatches: Vec::new(),
            answered: 0,
        }
    }

    /// A card replaying `transcript` with a T=1 ATR ([`atr_t1`]).
    pub fn new_t1(transcript: Transcript, mode: Matching) -> Self {
        ScriptedCard::new(transcript, mode).with_atr(atr_t1())
    }

    /// A card replaying the transcript file at `path` (T=0 ATR).
    ///
    /// Errors: as [`Transcript::load`].
    pub fn load(path: impl AsRef<Path>, mode: Matching) -> Result<Self, TranscriptError> {
        Ok(ScriptedCard::new(Transcript::load(path)?, mode))
    }

    /// The same card answering reset with `atr`.
    pub fn with_atr(mut self, atr: Vec<u8>) -> Self {
        self.atr = atr;
        self
    }

    /// The same card, silent from the `n`th command after power-on (1 = the first) until the
    /// next power-on.
    pub fn mute_at(mut self, n: usize) -> Self {
        self.mute_at = Some(n);
        self
    }

    /// The same card, answering only `sw` (no data) to the `n`th command after power-on.
    pub fn sw_override(mut self, n: usize, sw: u16) -> Self {
        self.overrides.retain(|(i, _)| *i != n);
        self.overrides.push((n, sw.to_be_bytes()));
        self
    }

    /// The same card, never answering reset (a mute card).
    pub fn mute_on_reset(mut self) -> Self {
        self.mute_on_reset = true;
        self
    }

    /// The matching mode.
    pub fn matching(&self) -> Matching {
        self.mode
    }

    /// The transcript being replayed.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// Commands that matched nothing, since the card was made.
    pub fn mismatches(&self) -> &[Mismatch] {
        &self.mismatches
    }

    /// Commands received since the last power-on.
    pub fn commands_received(&self) -> usize {
        self.count
    }

    /// Commands answered from the script since the card was made.
    pub fn commands_answered(&self) -> usize {
        self.answered
    }

    /// Exchanges of the script not used since the last power-on.
    pub fn remaining(&self) -> usize {
        self.used.iter().filter(|u| !**u).count()
    }

    /// True when every exchange of the script was used since the last power-on.
    pub fn is_finished(&self) -> bool {
        self.remaining() == 0
    }

    fn matches(&self, received: &[u8], recorded: &[u8]) -> bool {
        if received == recorded || is_t0_form(received, recorded) {
            return true;
        }
        if self.mode == Matching::Lenient {
            if let (Some(h), Some(r)) = (header_of(received), header_of(recorded)) {
                if h != r {
                    return false;
                }
                return match r[1] {
                    ins::GENERATE_AC | ins::INTERNAL_AUTHENTICATE | ins::EXTERNAL_AUTHENTICATE => {
                        true
                    }
                    // The PDOL data (date, unpredictable number, amount) differs from run to
                    // run; its length is the card's PDOL's, so it must be the same.
                    ins::GET_PROCESSING_OPTIONS => {
                        let lc = received.get(4).copied().map(usize::from);
                        lc == recorded.get(4).copied().map(usize::from)
                            && lc.is_some_and(|lc| {
                                received.len() == 5 + lc || received.len() == 6 + lc
                            })
                    }
                    _ => false,
                };
            }
        }
        false
    }

    /// The index of the exchange answering `command`, if any.
    fn find(&self, command: &[u8]) -> Option<usize> {
        match self.mode {
            Matching::Strict => {
                let e = self.transcript.exchanges.get(self.next)?;
                self.matches(command, &e.command).then_some(self.next)
            }
            Matching::Lenient => self
                .transcript
                .exchanges
                .iter()
                .enumerate()
                .find(|(i, e)| {
                    !self.used.get(*i).copied().unwrap_or(true) && self.matches(command, &e.command)
                })
                .map(|(i, _)| i),
        }
    }

    fn expected_next(&self) -> Option<Vec<u8>> {
        let i = match self.mode {
            Matching::Strict => self.next,
            Matching::Lenient => self.used.iter().position(|u| !*u)?,
        };
        self.transcript.exchanges.get(i).map(|e| e.command.clone())
    }
}

impl VirtualCard for ScriptedCard {
    fn power_on(&mut self) -> Option<Vec<u8>> {
        self.used.iter_mut().for_each(|u| *u = false);
        self.next = 0;
        self.count = 0;
        if self.mute_on_reset {
            return None;
        }
        Some(self.atr.clone())
    }

    fn transmit(&mut self, command: &[u8]) -> Option<Vec<u8>> {
        self.count += 1;
        let n = self.count;
        if self.mute_at.is_some_and(|m| n >= m) {
            log::debug!("scripted card: mute at command {n}");
            return None;
        }
        let answer = match self.find(command) {
            Some(i) => {
                if let Some(u) = self.used.get_mut(i) {
                    *u = true;
                }
                if self.mode == Matching::Strict {
                    self.next = i + 1;
                }
                self.answered += 1;
                self.transcript
                    .exchanges
                    .get(i)
                    .map(|e| e.response.clone())
                    .unwrap_or_else(|| MISMATCH_SW.to_vec())
            }
            None => {
                log::debug!(
                    "scripted card: command {n} ({} bytes, header {:02X?}) matches no exchange",
                    command.len(),
                    header_of(command).unwrap_or(command)
                );
                let expected = self.expected_next();
                self.mismatches.push(Mismatch {
                    index: n,
                    received: command.to_vec(),
                    expected,
                });
                MISMATCH_SW.to_vec()
            }
        };
        if let Some((_, sw)) = self.overrides.iter().find(|(i, _)| *i == n) {
            return Some(sw.to_vec());
        }
        Some(answer)
    }
}
