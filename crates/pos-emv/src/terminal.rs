//! Terminal data: the values the terminal supplies for data object lists (PDOL, CDOL1,
//! CDOL2, DDOL), kept as a map tag -> value.
//!
//! [`TerminalData::new`] fills sensible defaults (see its table); the caller sets what it
//! knows (amount, country, currency, date) and must supply the unpredictable number `9F37`
//! itself, from a real random source, for every transaction: it is never made up here.

use std::collections::BTreeMap;
use std::fmt;

use crate::dol::{self, DolEntry};
use crate::tags;
use crate::tlv::Tag;

/// `9B` Transaction Status Information.
pub const TSI: Tag = Tag::new(0x9B);
/// `9F66` Terminal Transaction Qualifiers (contactless kernels ask for it in their PDOL).
pub const TTQ: Tag = Tag::new(0x9F66);

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
/// 1970-01-01 (the civil-from-days algorithm of H. Hinnant).
pub fn civil_from_unix(secs: u64) -> (u32, u32, u32, u32, u32, u32) {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u32;
    (
        year,
        month,
        day,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

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
    /// | `9F33` terminal capabilities | `E0 F8 C8` (keyed, magstripe, IC; plaintext and enciphered PIN, signature, no CVM; SDA, DDA, CDA) |
    /// | `9F40` additional capabilities | `60 00 F0 A0 01` (goods, services; all keys) |
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
        t.set(tags::TERMINAL_CAPABILITIES, vec![0xE0, 0xF8, 0xC8]);
        t.set(
            tags::ADDITIONAL_TERMINAL_CAPABILITIES,
            vec![0x60, 0x00, 0xF0, 0xA0, 0x01],
        );
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
    fn bcd_amounts() {
        assert_eq!(bcd(12_345, 6), [0, 0, 0, 0x01, 0x23, 0x45]);
        assert_eq!(bcd(0, 2), [0, 0]);
    }
}
