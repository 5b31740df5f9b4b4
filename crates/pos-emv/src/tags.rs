//! The EMV tag dictionary (EMV 4.3 Book 3 Annex A, plus a few common scheme tags): name,
//! format, length and source of each data element, constants for the frequently used tags,
//! and [`describe`], a TLV tree renderer for logs and technicians that masks card data.
//!
//! The dictionary serves display and DOL building ([`crate::dol`] pads by format); it is
//! not used to reject data: the decoder in [`crate::tlv`] checks structure, not lengths.

use std::fmt::Write as _;

use crate::tlv::{self, Tag};

/// The format of a data element (EMV Book 3 section 4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `n`: numeric, BCD, right-justified, left-padded with `0` nibbles.
    N,
    /// `cn`: compressed numeric, BCD, left-justified, right-padded with `F` nibbles.
    Cn,
    /// `a`: alphabetic.
    A,
    /// `an`: alphanumeric.
    An,
    /// `ans`: alphanumeric and special characters.
    Ans,
    /// `b`: binary.
    B,
    /// `var.`: a template or a structure of its own (constructed objects, AFL-like lists).
    Var,
}

impl Format {
    /// The short name used in EMV, e.g. `"cn"`.
    pub fn name(self) -> &'static str {
        match self {
            Format::N => "n",
            Format::Cn => "cn",
            Format::A => "a",
            Format::An => "an",
            Format::Ans => "ans",
            Format::B => "b",
            Format::Var => "var",
        }
    }
}

/// Where a data element comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The card (ICC).
    Icc,
    /// The terminal.
    Terminal,
    /// The issuer (through the acquirer host).
    Issuer,
}

/// What the dictionary knows about one tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagInfo {
    /// The tag.
    pub tag: Tag,
    /// The EMV name.
    pub name: &'static str,
    /// The format.
    pub format: Format,
    /// Minimum length in bytes.
    pub min_len: u16,
    /// Maximum length in bytes (for `var` elements: the largest EMV allows, 252 for
    /// templates in records; 0 when EMV gives no bound).
    pub max_len: u16,
    /// Where it comes from.
    pub source: Source,
}

macro_rules! tag_consts {
    ($($(#[$doc:meta])* $name:ident = $raw:expr;)*) => {
        $($(#[$doc])* pub const $name: Tag = Tag::new($raw);)*
    };
}

tag_consts! {
    /// `4F` Application Dedicated File (ADF) Name, the AID on the card.
    ADF_NAME = 0x4F;
    /// `50` Application Label.
    APP_LABEL = 0x50;
    /// `56` Track 1 Data (scheme-specific; masked by [`describe`]).
    TRACK1_DATA = 0x56;
    /// `57` Track 2 Equivalent Data (masked by [`describe`]).
    TRACK2_EQUIVALENT = 0x57;
    /// `5A` Application Primary Account Number (PAN) (masked by [`describe`]).
    PAN = 0x5A;
    /// `5F20` Cardholder Name.
    CARDHOLDER_NAME = 0x5F20;
    /// `5F24` Application Expiration Date (YYMMDD).
    EXPIRY_DATE = 0x5F24;
    /// `5F25` Application Effective Date (YYMMDD).
    EFFECTIVE_DATE = 0x5F25;
    /// `5F28` Issuer Country Code.
    ISSUER_COUNTRY_CODE = 0x5F28;
    /// `5F2A` Transaction Currency Code.
    TRANSACTION_CURRENCY_CODE = 0x5F2A;
    /// `5F2D` Language Preference.
    LANGUAGE_PREFERENCE = 0x5F2D;
    /// `5F30` Service Code.
    SERVICE_CODE = 0x5F30;
    /// `5F34` Application PAN Sequence Number.
    PAN_SEQUENCE_NUMBER = 0x5F34;
    /// `5F36` Transaction Currency Exponent.
    TRANSACTION_CURRENCY_EXPONENT = 0x5F36;
    /// `61` Application Template.
    APP_TEMPLATE = 0x61;
    /// `6F` File Control Information (FCI) Template.
    FCI_TEMPLATE = 0x6F;
    /// `70` READ RECORD Response Message Template.
    RECORD_TEMPLATE = 0x70;
    /// `71` Issuer Script Template 1 (scripts before the second GENERATE AC).
    ISSUER_SCRIPT_1 = 0x71;
    /// `72` Issuer Script Template 2 (scripts after the second GENERATE AC).
    ISSUER_SCRIPT_2 = 0x72;
    /// `77` Response Message Template Format 2.
    RESPONSE_FORMAT_2 = 0x77;
    /// `80` Response Message Template Format 1.
    RESPONSE_FORMAT_1 = 0x80;
    /// `82` Application Interchange Profile.
    AIP = 0x82;
    /// `83` Command Template (GET PROCESSING OPTIONS data).
    COMMAND_TEMPLATE = 0x83;
    /// `84` Dedicated File (DF) Name.
    DF_NAME = 0x84;
    /// `87` Application Priority Indicator.
    APP_PRIORITY = 0x87;
    /// `88` Short File Identifier (SFI).
    SFI = 0x88;
    /// `8A` Authorisation Response Code.
    AUTH_RESPONSE_CODE = 0x8A;
    /// `8C` Card Risk Management Data Object List 1 (CDOL1).
    CDOL1 = 0x8C;
    /// `8D` Card Risk Management Data Object List 2 (CDOL2).
    CDOL2 = 0x8D;
    /// `8E` Cardholder Verification Method (CVM) List.
    CVM_LIST = 0x8E;
    /// `8F` Certification Authority Public Key Index.
    CA_PK_INDEX = 0x8F;
    /// `90` Issuer Public Key Certificate.
    ISSUER_PK_CERT = 0x90;
    /// `91` Issuer Authentication Data.
    ISSUER_AUTH_DATA = 0x91;
    /// `92` Issuer Public Key Remainder.
    ISSUER_PK_REMAINDER = 0x92;
    /// `93` Signed Static Application Data.
    SSAD = 0x93;
    /// `94` Application File Locator (AFL).
    AFL = 0x94;
    /// `95` Terminal Verification Results.
    TVR = 0x95;
    /// `97` Transaction Certificate Data Object List (TDOL).
    TDOL = 0x97;
    /// `9A` Transaction Date (YYMMDD).
    TRANSACTION_DATE = 0x9A;
    /// `9B` Transaction Status Information.
    TSI = 0x9B;
    /// `9C` Transaction Type.
    TRANSACTION_TYPE = 0x9C;
    /// `9F02` Amount, Authorised (Numeric).
    AMOUNT_AUTHORISED = 0x9F02;
    /// `9F03` Amount, Other (Numeric).
    AMOUNT_OTHER = 0x9F03;
    /// `9F06` Application Identifier (AID) - terminal.
    AID_TERMINAL = 0x9F06;
    /// `9F07` Application Usage Control.
    AUC = 0x9F07;
    /// `9F08` Application Version Number (card).
    APP_VERSION_ICC = 0x9F08;
    /// `9F09` Application Version Number (terminal).
    APP_VERSION_TERMINAL = 0x9F09;
    /// `9F0D` Issuer Action Code - Default.
    IAC_DEFAULT = 0x9F0D;
    /// `9F0E` Issuer Action Code - Denial.
    IAC_DENIAL = 0x9F0E;
    /// `9F0F` Issuer Action Code - Online.
    IAC_ONLINE = 0x9F0F;
    /// `9F10` Issuer Application Data.
    ISSUER_APP_DATA = 0x9F10;
    /// `9F12` Application Preferred Name.
    APP_PREFERRED_NAME = 0x9F12;
    /// `9F13` Last Online ATC Register.
    LAST_ONLINE_ATC = 0x9F13;
    /// `9F17` PIN Try Counter.
    PIN_TRY_COUNTER = 0x9F17;
    /// `9F1A` Terminal Country Code.
    TERMINAL_COUNTRY_CODE = 0x9F1A;
    /// `9F1F` Track 1 Discretionary Data (masked by [`describe`]).
    TRACK1_DISCRETIONARY = 0x9F1F;
    /// `9F20` Track 2 Discretionary Data (masked by [`describe`]).
    TRACK2_DISCRETIONARY = 0x9F20;
    /// `9F21` Transaction Time (HHMMSS).
    TRANSACTION_TIME = 0x9F21;
    /// `9F26` Application Cryptogram.
    APP_CRYPTOGRAM = 0x9F26;
    /// `9F27` Cryptogram Information Data.
    CID = 0x9F27;
    /// `9F32` Issuer Public Key Exponent.
    ISSUER_PK_EXPONENT = 0x9F32;
    /// `9F33` Terminal Capabilities.
    TERMINAL_CAPABILITIES = 0x9F33;
    /// `9F34` Cardholder Verification Method (CVM) Results.
    CVM_RESULTS = 0x9F34;
    /// `9F35` Terminal Type.
    TERMINAL_TYPE = 0x9F35;
    /// `9F36` Application Transaction Counter (ATC).
    ATC = 0x9F36;
    /// `9F37` Unpredictable Number.
    UNPREDICTABLE_NUMBER = 0x9F37;
    /// `9F38` Processing Options Data Object List (PDOL).
    PDOL = 0x9F38;
    /// `9F40` Additional Terminal Capabilities.
    ADDITIONAL_TERMINAL_CAPABILITIES = 0x9F40;
    /// `9F42` Application Currency Code.
    APP_CURRENCY_CODE = 0x9F42;
    /// `9F45` Data Authentication Code.
    DATA_AUTH_CODE = 0x9F45;
    /// `9F46` ICC Public Key Certificate.
    ICC_PK_CERT = 0x9F46;
    /// `9F47` ICC Public Key Exponent.
    ICC_PK_EXPONENT = 0x9F47;
    /// `9F48` ICC Public Key Remainder.
    ICC_PK_REMAINDER = 0x9F48;
    /// `9F49` Dynamic Data Authentication Data Object List (DDOL).
    DDOL = 0x9F49;
    /// `9F4A` Static Data Authentication Tag List.
    SDA_TAG_LIST = 0x9F4A;
    /// `9F4B` Signed Dynamic Application Data.
    SDAD = 0x9F4B;
    /// `9F4C` ICC Dynamic Number.
    ICC_DYNAMIC_NUMBER = 0x9F4C;
    /// `9F4D` Log Entry.
    LOG_ENTRY = 0x9F4D;
    /// `9F4E` Merchant Name and Location.
    MERCHANT_NAME_LOCATION = 0x9F4E;
    /// `9F6B` Track 2 Data (contactless; masked by [`describe`]).
    TRACK2_DATA = 0x9F6B;
    /// `A5` FCI Proprietary Template.
    FCI_PROPRIETARY = 0xA5;
    /// `BF0C` FCI Issuer Discretionary Data.
    FCI_ISSUER_DISCRETIONARY = 0xBF0C;
}

macro_rules! table {
    ($($raw:literal $fmt:ident $min:literal $max:literal $src:ident $name:literal;)*) => {
        &[$(TagInfo {
            tag: Tag::new($raw),
            name: $name,
            format: Format::$fmt,
            min_len: $min,
            max_len: $max,
            source: Source::$src,
        },)*]
    };
}

/// The dictionary, sorted by [`Tag::raw`] (so one-byte tags first).
pub static TABLE: &[TagInfo] = table! {
    0x42 N 3 3 Icc "Issuer Identification Number (IIN)";
    0x4F B 5 16 Icc "Application Dedicated File (ADF) Name";
    0x50 Ans 1 16 Icc "Application Label";
    0x56 Ans 0 76 Icc "Track 1 Data";
    0x57 B 0 19 Icc "Track 2 Equivalent Data";
    0x5A Cn 0 10 Icc "Application Primary Account Number (PAN)";
    0x61 Var 0 252 Icc "Application Template";
    0x6F Var 0 252 Icc "File Control Information (FCI) Template";
    0x70 Var 0 252 Icc "READ RECORD Response Message Template";
    0x71 Var 0 0 Issuer "Issuer Script Template 1";
    0x72 Var 0 0 Issuer "Issuer Script Template 2";
    0x73 Var 0 252 Icc "Directory Discretionary Template";
    0x77 Var 0 0 Icc "Response Message Template Format 2";
    0x80 Var 0 0 Icc "Response Message Template Format 1";
    0x81 B 4 4 Terminal "Amount, Authorised (Binary)";
    0x82 B 2 2 Icc "Application Interchange Profile";
    0x83 B 0 0 Terminal "Command Template";
    0x84 B 5 16 Icc "Dedicated File (DF) Name";
    0x86 B 0 261 Issuer "Issuer Script Command";
    0x87 B 1 1 Icc "Application Priority Indicator";
    0x88 B 1 1 Icc "Short File Identifier (SFI)";
    0x89 An 6 6 Issuer "Authorisation Code";
    0x8A An 2 2 Issuer "Authorisation Response Code";
    0x8C B 0 252 Icc "Card Risk Management Data Object List 1 (CDOL1)";
    0x8D B 0 252 Icc "Card Risk Management Data Object List 2 (CDOL2)";
    0x8E B 10 252 Icc "Cardholder Verification Method (CVM) List";
    0x8F B 1 1 Icc "Certification Authority Public Key Index";
    0x90 B 0 0 Icc "Issuer Public Key Certificate";
    0x91 B 8 16 Issuer "Issuer Authentication Data";
    0x92 B 0 0 Icc "Issuer Public Key Remainder";
    0x93 B 0 0 Icc "Signed Static Application Data";
    0x94 B 0 252 Icc "Application File Locator (AFL)";
    0x95 B 5 5 Terminal "Terminal Verification Results";
    0x97 B 0 252 Icc "Transaction Certificate Data Object List (TDOL)";
    0x98 B 20 20 Terminal "Transaction Certificate (TC) Hash Value";
    0x99 B 0 0 Terminal "Transaction Personal Identification Number (PIN) Data";
    0x9A N 3 3 Terminal "Transaction Date";
    0x9B B 2 2 Terminal "Transaction Status Information";
    0x9C N 1 1 Terminal "Transaction Type";
    0x9D B 5 16 Icc "Directory Definition File (DDF) Name";
    0xA5 Var 0 0 Icc "File Control Information (FCI) Proprietary Template";
    0x5F20 Ans 2 26 Icc "Cardholder Name";
    0x5F24 N 3 3 Icc "Application Expiration Date";
    0x5F25 N 3 3 Icc "Application Effective Date";
    0x5F28 N 2 2 Icc "Issuer Country Code";
    0x5F2A N 2 2 Terminal "Transaction Currency Code";
    0x5F2D An 2 8 Icc "Language Preference";
    0x5F30 N 2 2 Icc "Service Code";
    0x5F34 N 1 1 Icc "Application PAN Sequence Number";
    0x5F36 N 1 1 Terminal "Transaction Currency Exponent";
    0x5F50 Ans 0 0 Icc "Issuer URL";
    0x5F53 Var 0 34 Icc "International Bank Account Number (IBAN)";
    0x5F54 Var 8 11 Icc "Bank Identifier Code (BIC)";
    0x5F55 A 2 2 Icc "Issuer Country Code (alpha2 format)";
    0x5F56 A 3 3 Icc "Issuer Country Code (alpha3 format)";
    0x9F01 N 6 6 Terminal "Acquirer Identifier";
    0x9F02 N 6 6 Terminal "Amount, Authorised (Numeric)";
    0x9F03 N 6 6 Terminal "Amount, Other (Numeric)";
    0x9F04 B 4 4 Terminal "Amount, Other (Binary)";
    0x9F05 B 1 32 Icc "Application Discretionary Data";
    0x9F06 B 5 16 Terminal "Application Identifier (AID) - terminal";
    0x9F07 B 2 2 Icc "Application Usage Control";
    0x9F08 B 2 2 Icc "Application Version Number";
    0x9F09 B 2 2 Terminal "Application Version Number";
    0x9F0B Ans 27 45 Icc "Cardholder Name Extended";
    0x9F0D B 5 5 Icc "Issuer Action Code - Default";
    0x9F0E B 5 5 Icc "Issuer Action Code - Denial";
    0x9F0F B 5 5 Icc "Issuer Action Code - Online";
    0x9F10 B 0 32 Icc "Issuer Application Data";
    0x9F11 N 1 1 Icc "Issuer Code Table Index";
    0x9F12 Ans 1 16 Icc "Application Preferred Name";
    0x9F13 B 2 2 Icc "Last Online Application Transaction Counter (ATC) Register";
    0x9F14 B 1 1 Icc "Lower Consecutive Offline Limit";
    0x9F15 N 2 2 Terminal "Merchant Category Code";
    0x9F16 Ans 15 15 Terminal "Merchant Identifier";
    0x9F17 B 1 1 Icc "Personal Identification Number (PIN) Try Counter";
    0x9F18 B 4 4 Issuer "Issuer Script Identifier";
    0x9F1A N 2 2 Terminal "Terminal Country Code";
    0x9F1B B 4 4 Terminal "Terminal Floor Limit";
    0x9F1C An 8 8 Terminal "Terminal Identification";
    0x9F1D B 1 8 Terminal "Terminal Risk Management Data";
    0x9F1E An 8 8 Terminal "Interface Device (IFD) Serial Number";
    0x9F1F Ans 0 0 Icc "Track 1 Discretionary Data";
    0x9F20 Cn 0 0 Icc "Track 2 Discretionary Data";
    0x9F21 N 3 3 Terminal "Transaction Time";
    0x9F22 B 1 1 Terminal "Certification Authority Public Key Index";
    0x9F23 B 1 1 Icc "Upper Consecutive Offline Limit";
    0x9F26 B 8 8 Icc "Application Cryptogram";
    0x9F27 B 1 1 Icc "Cryptogram Information Data";
    0x9F2D B 0 0 Icc "ICC PIN Encipherment Public Key Certificate";
    0x9F2E B 1 3 Icc "ICC PIN Encipherment Public Key Exponent";
    0x9F2F B 0 0 Icc "ICC PIN Encipherment Public Key Remainder";
    0x9F32 B 1 3 Icc "Issuer Public Key Exponent";
    0x9F33 B 3 3 Terminal "Terminal Capabilities";
    0x9F34 B 3 3 Terminal "Cardholder Verification Method (CVM) Results";
    0x9F35 N 1 1 Terminal "Terminal Type";
    0x9F36 B 2 2 Icc "Application Transaction Counter (ATC)";
    0x9F37 B 4 4 Terminal "Unpredictable Number";
    0x9F38 B 0 0 Icc "Processing Options Data Object List (PDOL)";
    0x9F39 N 1 1 Terminal "Point-of-Service (POS) Entry Mode";
    0x9F3A B 4 4 Terminal "Amount, Reference Currency";
    0x9F3B N 2 8 Icc "Application Reference Currency";
    0x9F3C N 2 2 Terminal "Transaction Reference Currency Code";
    0x9F3D N 1 1 Terminal "Transaction Reference Currency Exponent";
    0x9F40 B 5 5 Terminal "Additional Terminal Capabilities";
    0x9F41 N 2 4 Terminal "Transaction Sequence Counter";
    0x9F42 N 2 2 Icc "Application Currency Code";
    0x9F43 N 1 4 Icc "Application Reference Currency Exponent";
    0x9F44 N 1 1 Icc "Application Currency Exponent";
    0x9F45 B 2 2 Icc "Data Authentication Code";
    0x9F46 B 0 0 Icc "ICC Public Key Certificate";
    0x9F47 B 1 3 Icc "ICC Public Key Exponent";
    0x9F48 B 0 0 Icc "ICC Public Key Remainder";
    0x9F49 B 0 252 Icc "Dynamic Data Authentication Data Object List (DDOL)";
    0x9F4A Var 0 0 Icc "Static Data Authentication Tag List";
    0x9F4B B 0 0 Icc "Signed Dynamic Application Data";
    0x9F4C B 2 8 Icc "ICC Dynamic Number";
    0x9F4D B 2 2 Icc "Log Entry";
    0x9F4E Ans 0 0 Terminal "Merchant Name and Location";
    0x9F4F B 0 0 Icc "Log Format";
    0x9F6B B 0 19 Icc "Track 2 Data";
    0x9F6E B 5 32 Icc "Third Party Data";
    0x9F7C B 0 32 Icc "Customer Exclusive Data";
    0xBF0C Var 0 222 Icc "File Control Information (FCI) Issuer Discretionary Data";
};

/// What the dictionary knows about `tag`, if anything.
pub fn info(tag: Tag) -> Option<&'static TagInfo> {
    TABLE
        .binary_search_by_key(&tag, |i| i.tag)
        .ok()
        .and_then(|i| TABLE.get(i))
}

/// The format of `tag`: from the dictionary, `b` for unknown primitive tags, `var` for
/// unknown constructed ones.
pub fn format_of(tag: Tag) -> Format {
    match info(tag) {
        Some(i) => i.format,
        None if tag.is_constructed() => Format::Var,
        None => Format::B,
    }
}

/// Tags whose values [`describe`] never shows in full: they hold the PAN, track data,
/// PIN data, or (UnionPay `9F61`) the cardholder's identity document number.
const MASKED: &[Tag] = &[
    TRACK1_DATA,
    TRACK2_EQUIVALENT,
    PAN,
    Tag::new(0x99),
    TRACK1_DISCRETIONARY,
    TRACK2_DISCRETIONARY,
    Tag::new(0x9F61),
    TRACK2_DATA,
];

/// Renders the TLV tree of `buf` for people: one object per line, indented by depth, with
/// the tag, its dictionary name, its length and its value (`n`/`cn` as digits, `a`/`an`/
/// `ans` as text when printable ASCII, anything else as hex).
///
/// Card data is masked: the PAN (`5A`) and the PAN inside track 2 data (`57`, `9F6B`) and
/// track 1 data (`56`) show only their first 6 and last 4 digits
/// ([`pos_hal::mask_pan`]), and the rest of the track data, the track discretionary data
/// (`9F1F`, `9F20`), PIN data (`99`) and the UnionPay cardholder ID number (`9F61`) only
/// their length. Malformed data ends the rendering with an `error:` line; this never
/// panics.
pub fn describe(buf: &[u8]) -> String {
    let mut out = String::new();
    let result = tlv::walk(buf, |t, depth| {
        for _ in 0..depth {
            out.push_str("  ");
        }
        let name = info(t.tag).map_or("(unknown tag)", |i| i.name);
        let _ = write!(out, "{} {} [{}]", t.tag, name, t.value.len());
        if !t.is_constructed() {
            out.push_str(": ");
            out.push_str(&render_value(t.tag, t.value));
        }
        out.push('\n');
    });
    if let Err(e) = result {
        let _ = writeln!(out, "error: {e}");
    }
    out
}

/// The value of one primitive object as [`describe`] shows it (masked where needed).
pub fn render_value(tag: Tag, value: &[u8]) -> String {
    if MASKED.contains(&tag) {
        return render_masked(tag, value);
    }
    match format_of(tag) {
        Format::N => bcd_digits(value, false)
            .unwrap_or_else(|| format!("{} (not BCD)", hex::encode_upper(value))),
        Format::Cn => bcd_digits(value, true)
            .unwrap_or_else(|| format!("{} (not BCD)", hex::encode_upper(value))),
        Format::A | Format::An | Format::Ans => match printable(value) {
            Some(text) => format!("\"{text}\""),
            None => hex::encode_upper(value),
        },
        Format::B | Format::Var => hex::encode_upper(value),
    }
}

fn render_masked(tag: Tag, value: &[u8]) -> String {
    let hidden = |n: usize| format!("<{n} bytes masked>");
    match tag {
        PAN => match bcd_digits(value, true) {
            Some(pan) => pos_hal::mask_pan(&pan),
            None => hidden(value.len()),
        },
        TRACK2_EQUIVALENT | TRACK2_DATA => {
            // PAN, separator D, then expiry, service code and discretionary data.
            let digits: String = value
                .iter()
                .flat_map(|b| [b >> 4, b & 0x0F])
                .map(|n| char::from_digit(u32::from(n), 16).unwrap_or('?'))
                .collect::<String>()
                .to_ascii_uppercase();
            match digits.split_once('D') {
                Some((pan, _)) if !pan.is_empty() && pan.bytes().all(|c| c.is_ascii_digit()) => {
                    format!(
                        "{} D <rest masked> ({} bytes)",
                        pos_hal::mask_pan(pan),
                        value.len()
                    )
                }
                _ => hidden(value.len()),
            }
        }
        TRACK1_DATA => {
            // Format code B, PAN, '^', name, '^', expiry, service code, discretionary data.
            let pan: String = value
                .iter()
                .skip(1)
                .take_while(|&&b| b != b'^')
                .map(|&b| char::from(b))
                .collect();
            if value.first() == Some(&b'B')
                && !pan.is_empty()
                && pan.bytes().all(|c| c.is_ascii_digit())
            {
                format!(
                    "B{} ^ <rest masked> ({} bytes)",
                    pos_hal::mask_pan(&pan),
                    value.len()
                )
            } else {
                hidden(value.len())
            }
        }
        _ => hidden(value.len()),
    }
}

/// BCD nibbles as digits; with `cn`, trailing `F` nibbles end the number.
fn bcd_digits(value: &[u8], compressed: bool) -> Option<String> {
    let mut s = String::with_capacity(value.len() * 2);
    let mut ended = false;
    for n in value.iter().flat_map(|b| [b >> 4, b & 0x0F]) {
        match n {
            0..=9 if !ended => s.push(char::from(b'0' + n)),
            0x0F if compressed => ended = true,
            _ => return None,
        }
    }
    Some(s)
}

fn printable(value: &[u8]) -> Option<&str> {
    if value.iter().all(|&b| (0x20..0x7F).contains(&b)) {
        std::str::from_utf8(value).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_without_duplicates() {
        for pair in TABLE.windows(2) {
            assert!(
                pair[0].tag < pair[1].tag,
                "{} before {}",
                pair[0].tag,
                pair[1].tag
            );
        }
    }

    #[test]
    fn table_entries_are_valid_tags_with_sane_lengths() {
        for i in TABLE {
            assert_eq!(Tag::from_bytes(&i.tag.bytes()), Ok(i.tag), "{}", i.tag);
            assert!(i.max_len == 0 || i.min_len <= i.max_len, "{}", i.tag);
        }
    }

    #[test]
    fn lookups() {
        let pan = info(PAN).unwrap();
        assert_eq!(pan.format, Format::Cn);
        assert_eq!(info(AMOUNT_AUTHORISED).unwrap().format, Format::N);
        assert_eq!(info(Tag::new(0x9F6E)).unwrap().name, "Third Party Data");
        assert!(info(Tag::new(0xDF4F)).is_none());
        assert_eq!(format_of(Tag::new(0xDF4F)), Format::B);
        assert_eq!(format_of(Tag::new(0xBF4F)), Format::Var);
    }

    #[test]
    fn bcd() {
        assert_eq!(
            bcd_digits(&[0x54, 0x13, 0x3F, 0xFF], true).unwrap(),
            "54133"
        );
        assert_eq!(bcd_digits(&[0x54, 0xF3], true), None);
        assert_eq!(bcd_digits(&[0x01, 0x23], false).unwrap(), "0123");
        assert_eq!(bcd_digits(&[0x1A], false), None);
    }
}
