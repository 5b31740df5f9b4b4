//! A message: MTI plus raw field values.

use crate::Mti;
use std::collections::BTreeMap;
use std::fmt;

/// An ISO 8583 message.
///
/// Field values are kept as the *logical* value, independent of the wire encoding: the ASCII
/// characters for `n`, `z` (track 2 with `=`), `an` and `ans` fields, the bytes for `b`
/// fields. Fixed-length values must already have their full length (the typed setters pad).
///
/// `Debug` masks the PAN (2) and track 2 (35) and shows only the length of track 1 (45),
/// the PIN block (52) and ICC data (55).
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// Message type.
    pub mti: Mti,
    /// Field number (2..=128) to value. Field 1 (the secondary bitmap) is never stored.
    pub fields: BTreeMap<u8, Vec<u8>>,
}

macro_rules! str_field {
    ($($(#[$doc:meta])* $field:literal $set:ident $get:ident;)*) => {
        $(
            $(#[$doc])*
            #[doc = concat!("\n\nSets field ", stringify!($field), ".")]
            pub fn $set(&mut self, value: &str) -> &mut Self {
                self.set_str($field, value)
            }

            $(#[$doc])*
            #[doc = concat!("\n\nReads field ", stringify!($field), " (`None` if absent or not UTF-8).")]
            pub fn $get(&self) -> Option<&str> {
                self.get_str($field)
            }
        )*
    };
}

impl Message {
    /// An empty message.
    pub fn new(mti: Mti) -> Self {
        Message {
            mti,
            fields: BTreeMap::new(),
        }
    }

    /// Set a field's raw value.
    pub fn set(&mut self, field: u8, value: impl Into<Vec<u8>>) -> &mut Self {
        self.fields.insert(field, value.into());
        self
    }

    /// Set a character field.
    pub fn set_str(&mut self, field: u8, value: &str) -> &mut Self {
        self.set(field, value.as_bytes())
    }

    /// A field's raw value.
    pub fn get(&self, field: u8) -> Option<&[u8]> {
        self.fields.get(&field).map(Vec::as_slice)
    }

    /// A character field (`None` if absent or not UTF-8).
    pub fn get_str(&self, field: u8) -> Option<&str> {
        self.get(field).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Remove a field, returning its value.
    pub fn remove(&mut self, field: u8) -> Option<Vec<u8>> {
        self.fields.remove(&field)
    }

    /// Whether a field is present.
    pub fn has(&self, field: u8) -> bool {
        self.fields.contains_key(&field)
    }

    fn set_num(&mut self, field: u8, value: u64, width: usize) -> &mut Self {
        self.set_str(field, &format!("{value:0width$}"))
    }

    fn get_num(&self, field: u8) -> Option<u64> {
        let s = self.get_str(field)?;
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    }

    /// Amount, transaction (field 4), in minor units, zero-padded to 12 digits. An amount
    /// above 999 999 999 999 is refused by `encode`.
    pub fn set_amount(&mut self, minor_units: u64) -> &mut Self {
        self.set_num(4, minor_units, 12)
    }

    /// Amount, transaction (field 4), in minor units.
    pub fn amount(&self) -> Option<u64> {
        self.get_num(4)
    }

    /// Systems trace audit number (field 11), zero-padded to 6 digits.
    pub fn set_stan(&mut self, stan: u32) -> &mut Self {
        self.set_num(11, u64::from(stan), 6)
    }

    /// Systems trace audit number (field 11).
    pub fn stan(&self) -> Option<u32> {
        self.get_num(11).and_then(|v| u32::try_from(v).ok())
    }

    /// Network management information code (field 70), zero-padded to 3 digits
    /// (e.g. 301 echo test).
    pub fn set_network_code(&mut self, code: u16) -> &mut Self {
        self.set_num(70, u64::from(code), 3)
    }

    /// Network management information code (field 70).
    pub fn network_code(&self) -> Option<u16> {
        self.get_num(70).and_then(|v| u16::try_from(v).ok())
    }

    /// ICC system related data (field 55): EMV TLV bytes.
    pub fn set_icc_data(&mut self, tlv: &[u8]) -> &mut Self {
        self.set(55, tlv)
    }

    /// ICC system related data (field 55).
    pub fn icc_data(&self) -> Option<&[u8]> {
        self.get(55)
    }

    /// PIN block (field 52), 8 bytes.
    pub fn set_pin_block(&mut self, block: &[u8]) -> &mut Self {
        self.set(52, block)
    }

    /// Whether the host approved: response code (field 39) is `00`.
    pub fn is_approved(&self) -> bool {
        self.get(39) == Some(b"00")
    }

    str_field! {
        /// Primary account number.
        2 set_pan pan;
        /// Processing code, 6 digits (e.g. `000000` purchase).
        3 set_processing_code processing_code;
        /// Transmission date and time, `MMDDhhmmss`.
        7 set_transmission_time transmission_time;
        /// Local transaction time, `hhmmss`.
        12 set_local_time local_time;
        /// Local transaction date, `MMDD`.
        13 set_local_date local_date;
        /// Expiration date, `YYMM`.
        14 set_expiry expiry;
        /// POS entry mode, 3 digits (e.g. `051` chip with PIN).
        22 set_pos_entry_mode pos_entry_mode;
        /// Card sequence number, 3 digits.
        23 set_card_sequence card_sequence;
        /// POS condition code, 2 digits.
        25 set_pos_condition pos_condition;
        /// Track 2 equivalent data, digits with `=` as separator.
        35 set_track2 track2;
        /// Retrieval reference number, 12 characters.
        37 set_rrn rrn;
        /// Authorization identification response (approval code), 6 characters.
        38 set_auth_code auth_code;
        /// Response code, 2 characters (`00` approved).
        39 set_response_code response_code;
        /// Card acceptor terminal identification, 8 characters.
        41 set_terminal_id terminal_id;
        /// Card acceptor identification code, 15 characters.
        42 set_merchant_id merchant_id;
        /// Currency code, transaction (ISO 4217 numeric, e.g. `978`).
        49 set_currency currency;
        /// Original data elements (reversals), 42 digits: original MTI, STAN, date/time,
        /// acquirer and forwarding institution ids.
        90 set_original_data original_data;
    }
}

struct FieldDebug<'a>(u8, &'a [u8]);

impl fmt::Debug for FieldDebug<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let FieldDebug(n, v) = *self;
        match n {
            2 => match std::str::from_utf8(v) {
                Ok(s) => write!(f, "{:?}", pos_hal::mask_pan(s)),
                Err(_) => write!(f, "<{} bytes redacted>", v.len()),
            },
            35 => match std::str::from_utf8(v) {
                Ok(s) => {
                    let (pan, rest) = s.split_once('=').unwrap_or((s, ""));
                    write!(
                        f,
                        "\"{}=<{} chars redacted>\"",
                        pos_hal::mask_pan(pan),
                        rest.len()
                    )
                }
                Err(_) => write!(f, "<{} bytes redacted>", v.len()),
            },
            45 | 52 | 55 => write!(f, "<{} bytes redacted>", v.len()),
            _ => match std::str::from_utf8(v) {
                Ok(s) if s.bytes().all(|b| (0x20..=0x7e).contains(&b)) => write!(f, "{s:?}"),
                _ => write!(f, "0x{}", hex::encode_upper(v)),
            },
        }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Fields<'a>(&'a BTreeMap<u8, Vec<u8>>);
        impl fmt::Debug for Fields<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.iter().map(|(n, v)| (n, FieldDebug(*n, v))))
                    .finish()
            }
        }
        f.debug_struct("Message")
            .field("mti", &self.mti)
            .field("fields", &Fields(&self.fields))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_masks_card_data() {
        let mut m = Message::new(Mti::FINANCIAL_REQUEST);
        m.set_pan("4761739001010119")
            .set_track2("4761739001010119=25122011143804489")
            .set_str(45, "B4761739001010119^TEST/CARD^2512201")
            .set_pin_block(&[0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0])
            .set_icc_data(&[0x9f, 0x26, 0x02, 0xab, 0xcd])
            .set_amount(1234)
            .set_str(3, "\u{1}");
        let s = format!("{m:?}");
        let alt = format!("{m:#?}");
        for out in [&s, &alt] {
            assert!(!out.contains("4761739001010119"), "{out}");
            assert!(!out.contains("2512201"), "{out}");
            assert!(!out.contains("TEST"), "{out}");
            assert!(!out.contains("9A") && !out.contains("9F26"), "{out}");
            assert!(out.contains("476173******0119"), "{out}");
            assert!(out.contains("<17 chars redacted>"), "{out}");
            assert!(out.contains("<8 bytes redacted>"), "{out}");
            assert!(out.contains("<5 bytes redacted>"), "{out}");
            assert!(out.contains("000000001234"), "{out}");
            assert!(out.contains("0x01"), "{out}");
        }
    }

    #[test]
    fn typed_accessors() {
        let mut m = Message::new(Mti::FINANCIAL_RESPONSE);
        m.set_amount(1500).set_stan(42).set_response_code("00");
        assert_eq!(m.get_str(4), Some("000000001500"));
        assert_eq!(m.amount(), Some(1500));
        assert_eq!(m.get_str(11), Some("000042"));
        assert_eq!(m.stan(), Some(42));
        assert!(m.is_approved());
        m.set_str(4, "+12");
        assert_eq!(m.amount(), None);
    }
}
