//! Terminal data: the values the terminal supplies for data object lists (PDOL, CDOL1,
//! CDOL2, DDOL), kept as a map tag -> value.
//!
//! [`TerminalData::new`] fills sensible defaults (see its table); the caller sets what it
//! knows (amount, country, currency, date) and must supply the unpredictable number `9F37`
//! itself, from a real random source, for every transaction: it is never made up here.
//!
//! # Capabilities: claim only what the lane has
//!
//! Terminal Capabilities `9F33` and Additional Terminal Capabilities `9F40` tell the card
//! (and the issuer, through the ICC data) what the terminal can do; cardholder verification
//! and offline data authentication choose from them. [`Capabilities`] describes the lane's
//! real equipment and codes both fields (EMV 4.3 Book 4 Annex A2 and A3);
//! [`TerminalData::set_capabilities`] puts them in. The default of [`TerminalData::new`] is
//! [`Capabilities::CHIP_ONLY`]: a chip reader and nothing else, so no PIN, no signature, no
//! stripe and no keyed entry is claimed.
//!
//! This crate has **no PIN entry**. A PIN method claimed through [`Capabilities::pin`] (a
//! lane whose configuration names a PIN pad) and chosen by the card's CVM list is not
//! performed: cardholder verification fails that method with
//! [`Tvr::PIN_PAD_NOT_PRESENT`](crate::tvr::Tvr::PIN_PAD_NOT_PRESENT) ("PIN entry required
//! and PIN pad not present or not working") and goes on as the CV rule says
//! ([`cvm`](crate::cvm)). No PIN is ever reported as entered or verified.

use std::collections::BTreeMap;
use std::fmt;

use crate::dol::{self, DolEntry};
use crate::tags;
use crate::tlv::Tag;

/// `9B` Transaction Status Information.
pub const TSI: Tag = Tag::new(0x9B);
/// `9F66` Terminal Transaction Qualifiers (contactless kernels ask for it in their PDOL).
pub const TTQ: Tag = Tag::new(0x9F66);

/// The PIN verification methods a PIN pad offers (`9F33` byte 2 bits 8, 7 and 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PinMethods {
    /// Plaintext PIN for ICC verification (offline PIN, `9F33` byte 2 b8).
    pub offline_plaintext: bool,
    /// Enciphered PIN for online verification (`9F33` byte 2 b7).
    pub online_enciphered: bool,
    /// Enciphered PIN for offline (ICC) verification (`9F33` byte 2 b5).
    pub offline_enciphered: bool,
}

impl PinMethods {
    /// No PIN method: the lane has no PIN pad.
    pub const NONE: PinMethods = PinMethods {
        offline_plaintext: false,
        online_enciphered: false,
        offline_enciphered: false,
    };
    /// The three PIN methods an EMV PIN pad offers.
    pub const ALL: PinMethods = PinMethods {
        offline_plaintext: true,
        online_enciphered: true,
        offline_enciphered: true,
    };

    /// True when at least one PIN method is offered.
    pub fn any(self) -> bool {
        self.offline_plaintext || self.online_enciphered || self.offline_enciphered
    }
}

/// What the lane really has, coded into Terminal Capabilities `9F33` and Additional Terminal
/// Capabilities `9F40` (EMV 4.3 Book 4 Annex A2, A3). See the [module](self) documentation.
///
/// Fixed in the coding, because they are true of every terminal this crate runs:
/// - `9F33` byte 1 b6 "IC with contacts" (this is an EMV contact kernel);
/// - `9F40` byte 1 "goods" and "services" (no cash, cashback, inquiry, transfer, payment or
///   administrative transactions);
/// - `9F40` byte 3 numeric, alphabetic, command and function keys, and byte 4 "display,
///   attendant": the attendant's till (the POS application driving the lane) keys the
///   amounts and shows the prompts;
/// - `9F40` byte 5 b1 code table 1 (ISO/IEC 8859-1: application preferred names are read
///   as such).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Capabilities {
    /// Manual key entry of the card number (`9F33` byte 1 b8).
    pub manual_entry: bool,
    /// A magnetic stripe reader (`9F33` byte 1 b7).
    pub magstripe: bool,
    /// The PIN methods of the lane's PIN pad ([`PinMethods::NONE`] without one).
    pub pin: PinMethods,
    /// Signature on paper (`9F33` byte 2 b6): a printer to print the slip the cardholder
    /// signs.
    pub signature: bool,
    /// No CVM required (`9F33` byte 2 b4).
    pub no_cvm: bool,
    /// Static data authentication (`9F33` byte 3 b8).
    pub sda: bool,
    /// Dynamic data authentication (`9F33` byte 3 b7).
    pub dda: bool,
    /// Card capture: a reader that can retain the card (`9F33` byte 3 b6).
    pub card_capture: bool,
    /// Combined DDA / application cryptogram generation (`9F33` byte 3 b4).
    pub cda: bool,
    /// A printer for the attendant (`9F40` byte 4 b8).
    pub printer: bool,
}

impl Default for Capabilities {
    /// [`Capabilities::CHIP_ONLY`].
    fn default() -> Self {
        Capabilities::CHIP_ONLY
    }
}

impl Capabilities {
    /// A chip reader and nothing else: IC with contacts; no CVM required as the only
    /// cardholder verification; SDA, DDA and CDA (all implemented here); no card capture, no
    /// printer. `9F33` `20 08 C8`, `9F40` `60 00 F0 20 01`.
    pub const CHIP_ONLY: Capabilities = Capabilities {
        manual_entry: false,
        magstripe: false,
        pin: PinMethods::NONE,
        signature: false,
        no_cvm: true,
        sda: true,
        dda: true,
        card_capture: false,
        cda: true,
        printer: false,
    };

    /// The 3 bytes of Terminal Capabilities `9F33`.
    pub fn terminal_capabilities(&self) -> [u8; 3] {
        let bit = |on: bool, mask: u8| if on { mask } else { 0 };
        let input = bit(self.manual_entry, 0x80) | bit(self.magstripe, 0x40) | 0x20;
        let cvm = bit(self.pin.offline_plaintext, 0x80)
            | bit(self.pin.online_enciphered, 0x40)
            | bit(self.signature, 0x20)
            | bit(self.pin.offline_enciphered, 0x10)
            | bit(self.no_cvm, 0x08);
        let security = bit(self.sda, 0x80)
            | bit(self.dda, 0x40)
            | bit(self.card_capture, 0x20)
            | bit(self.cda, 0x08);
        [input, cvm, security]
    }

    /// The 5 bytes of Additional Terminal Capabilities `9F40`.
    pub fn additional_terminal_capabilities(&self) -> [u8; 5] {
        let output = if self.printer { 0x80 | 0x20 } else { 0x20 };
        [0x60, 0x00, 0xF0, output, 0x01]
    }
}

/// Terminal data for DOL building: a map tag -> value (values in their EMV encoding).
#[derive(Clone, PartialEq, Eq)]
pub struct TerminalData {
    values: BTreeMap<Tag, Vec<u8>>,
}

impl fmt::Debug for TerminalData {
    /// Tags and lengths only (the map may hold anything the caller put in it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.values.iter().map(|(t, v)| (t, v.len())))
            .finish()
    }
}

/// Two BCD digits of `v` (0..=99).
fn bcd2(v: u32) -> u8 {
    let v = v % 100;
    ((v / 10) << 4 | (v % 10)) as u8
}

/// `value` as `n` BCD bytes (right-justified, left-padded with zeros; digits above what
/// fits are dropped).
fn bcd(mut value: u64, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    for b in out.iter_mut().rev() {
        *b = bcd2((value % 100) as u32);
        value /= 100;
    }
    out
}

/// (year, month, day, hours, minutes, seconds) in UTC of a number of seconds since
/// 1970-01-01: [`pos_hal::calendar::civil_from_unix`].
pub use pos_hal::calendar::civil_from_unix;

impl TerminalData {
    /// Terminal data with defaults, the transaction date and time taken from the system clock
    /// (UTC), and the caller's unpredictable number.
    ///
    /// | tag | default |
    /// |---|---|
    /// | `9F1A` terminal country code | `0826` (United Kingdom) |
    /// | `5F2A` transaction currency code | `0826` (pound sterling) |
    /// | `5F36` currency exponent | `02` |
    /// | `9A` / `9F21` date and time | system clock, UTC |
    /// | `9C` transaction type | `00` (goods and services) |
    /// | `9F02` / `9F03` amounts | zero |
    /// | `9F37` unpredictable number | `unpredictable_number` |
    /// | `9F35` terminal type | `22` (attended, merchant, offline with online capability) |
    /// | `9F33` terminal capabilities | `20 08 C8` ([`Capabilities::CHIP_ONLY`]: IC; no CVM required; SDA, DDA, CDA) |
    /// | `9F40` additional capabilities | `60 00 F0 20 01` (goods, services; all keys; attendant display; code table 1) |
    ///
    /// A lane with more (a stripe reader, a printer for signatures, a PIN pad) says so with
    /// [`TerminalData::set_capabilities`].
    /// | `95` TVR / `9B` TSI | zeros |
    /// | `9F66` terminal transaction qualifiers | `36 00 40 00` |
    pub fn new(unpredictable_number: [u8; 4]) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut t = TerminalData {
            values: BTreeMap::new(),
        };
        t.set(tags::TERMINAL_COUNTRY_CODE, vec![0x08, 0x26]);
        t.set(tags::TRANSACTION_CURRENCY_CODE, vec![0x08, 0x26]);
        t.set(tags::TRANSACTION_CURRENCY_EXPONENT, vec![0x02]);
        t.set_unix_time(now);
        t.set(tags::TRANSACTION_TYPE, vec![0x00]);
        t.set_amount(0);
        t.set(tags::AMOUNT_OTHER, vec![0; 6]);
        t.set_unpredictable_number(unpredictable_number);
        t.set(tags::TERMINAL_TYPE, vec![0x22]);
        t.set_capabilities(&Capabilities::CHIP_ONLY);
        t.set(tags::TVR, vec![0; 5]);
        t.set(TSI, vec![0; 2]);
        t.set(TTQ, vec![0x36, 0x00, 0x40, 0x00]);
        t
    }

    /// Sets (or replaces) the value of `tag`.
    pub fn set(&mut self, tag: Tag, value: Vec<u8>) -> &mut Self {
        self.values.insert(tag, value);
        self
    }

    /// Removes `tag`; a DOL asking for it then gets zeros.
    pub fn remove(&mut self, tag: Tag) -> Option<Vec<u8>> {
        self.values.remove(&tag)
    }

    /// The value of `tag`, if set.
    pub fn get(&self, tag: Tag) -> Option<&[u8]> {
        self.values.get(&tag).map(Vec::as_slice)
    }

    /// Terminal Capabilities `9F33` and Additional Terminal Capabilities `9F40` from what
    /// the lane has (see [`Capabilities`]).
    pub fn set_capabilities(&mut self, capabilities: &Capabilities) -> &mut Self {
        self.set(
            tags::TERMINAL_CAPABILITIES,
            capabilities.terminal_capabilities().to_vec(),
        );
        self.set(
            tags::ADDITIONAL_TERMINAL_CAPABILITIES,
            capabilities.additional_terminal_capabilities().to_vec(),
        )
    }

    /// `9F02` Amount, Authorised, in minor units (n12: BCD, digits beyond 12 dropped).
    pub fn set_amount(&mut self, minor_units: u64) -> &mut Self {
        self.set(tags::AMOUNT_AUTHORISED, bcd(minor_units, 6))
    }

    /// `9F37` Unpredictable Number: call with fresh random bytes for every transaction.
    pub fn set_unpredictable_number(&mut self, un: [u8; 4]) -> &mut Self {
        self.set(tags::UNPREDICTABLE_NUMBER, un.to_vec())
    }

    /// `9A` Transaction Date (YYMMDD) and `9F21` Transaction Time (HHMMSS) from seconds
    /// since 1970-01-01 UTC.
    pub fn set_unix_time(&mut self, secs: u64) -> &mut Self {
        let (y, mo, d, h, mi, s) = civil_from_unix(secs);
        self.set(tags::TRANSACTION_DATE, vec![bcd2(y), bcd2(mo), bcd2(d)]);
        self.set(tags::TRANSACTION_TIME, vec![bcd2(h), bcd2(mi), bcd2(s)])
    }

    /// The value for a DOL entry asking for `tag` (for [`dol::build`]).
    pub fn lookup(&self, tag: Tag) -> Option<Vec<u8>> {
        self.values.get(&tag).cloned()
    }

    /// The data a DOL asks for, built from this terminal data (zeros for what it lacks).
    pub fn build_dol(&self, dol: &[DolEntry]) -> Vec<u8> {
        dol::build(dol, |tag| self.lookup(tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_from_unix_time() {
        assert_eq!(civil_from_unix(0), (1970, 1, 1, 0, 0, 0));
        // 2000-02-29 12:34:56 UTC
        assert_eq!(civil_from_unix(951_827_696), (2000, 2, 29, 12, 34, 56));
        // 2024-12-31 23:59:59 UTC
        assert_eq!(civil_from_unix(1_735_689_599), (2024, 12, 31, 23, 59, 59));
    }

    #[test]
    fn capabilities_claim_only_what_the_lane_has() {
        let chip = Capabilities::CHIP_ONLY;
        assert_eq!(chip.terminal_capabilities(), [0x20, 0x08, 0xC8]);
        assert_eq!(
            chip.additional_terminal_capabilities(),
            [0x60, 0x00, 0xF0, 0x20, 0x01]
        );
        let t = TerminalData::new([0; 4]);
        assert_eq!(
            t.get(tags::TERMINAL_CAPABILITIES),
            Some(&[0x20, 0x08, 0xC8][..])
        );
        // A stripe reader and a printer for signatures, no PIN pad.
        let lane = Capabilities {
            magstripe: true,
            signature: true,
            printer: true,
            ..Capabilities::CHIP_ONLY
        };
        assert_eq!(lane.terminal_capabilities(), [0x60, 0x28, 0xC8]);
        assert_eq!(
            lane.additional_terminal_capabilities(),
            [0x60, 0x00, 0xF0, 0xA0, 0x01]
        );
        // With a PIN pad offering the three methods: every CVM, as E0 F8 C8 without keying.
        let pin = Capabilities {
            pin: PinMethods::ALL,
            ..lane
        };
        assert_eq!(pin.terminal_capabilities(), [0x60, 0xF8, 0xC8]);
        let online_only = Capabilities {
            pin: PinMethods {
                online_enciphered: true,
                ..PinMethods::NONE
            },
            ..lane
        };
        assert_eq!(online_only.terminal_capabilities(), [0x60, 0x68, 0xC8]);
        let all = Capabilities {
            manual_entry: true,
            card_capture: true,
            ..pin
        };
        assert_eq!(all.terminal_capabilities(), [0xE0, 0xF8, 0xE8]);
        let mut t = TerminalData::new([0; 4]);
        t.set_capabilities(&pin);
        assert_eq!(
            t.get(tags::TERMINAL_CAPABILITIES),
            Some(&[0x60, 0xF8, 0xC8][..])
        );
        assert_eq!(
            t.get(tags::ADDITIONAL_TERMINAL_CAPABILITIES),
            Some(&[0x60, 0x00, 0xF0, 0xA0, 0x01][..])
        );
        assert!(PinMethods::ALL.any() && !PinMethods::NONE.any());
    }

    #[test]
    fn bcd_amounts() {
        assert_eq!(bcd(12_345, 6), [0, 0, 0, 0x01, 0x23, 0x45]);
        assert_eq!(bcd(0, 2), [0, 0]);
    }
}
