//! ISO 7813 financial track layouts, service codes, Luhn check and PAN masking.

use core::fmt;

/// Why a track's text could not be parsed as an ISO 7813 financial track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Track 1 format code is not `B` (or missing).
    FormatCode,
    /// The PAN is missing, longer than 19 digits or not all digits.
    Pan,
    /// A field separator is missing.
    Separator,
    /// Track 1 name longer than 26 characters.
    Name,
    /// The expiry date is not four digits.
    Expiry,
    /// The service code is not three digits.
    ServiceCode,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::FormatCode => "track 1 format code is not 'B'",
            ParseError::Pan => "PAN missing, too long or not numeric",
            ParseError::Separator => "field separator missing",
            ParseError::Name => "cardholder name longer than 26 characters",
            ParseError::Expiry => "expiry date is not YYMM digits",
            ParseError::ServiceCode => "service code is not three digits",
        })
    }
}

impl core::error::Error for ParseError {}

/// Maximum PAN length (ISO/IEC 7812).
pub const MAX_PAN_DIGITS: usize = 19;

/// Maximum track 1 name length (ISO 7813).
pub const MAX_NAME_CHARS: usize = 26;

/// Field 1 of the service code: interchange and technology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interchange {
    /// 1: international interchange.
    International,
    /// 2: international interchange, integrated circuit (chip) card.
    InternationalChip,
    /// 5: national interchange only (except under bilateral agreement).
    National,
    /// 6: national interchange, integrated circuit (chip) card.
    NationalChip,
    /// 7: no interchange except under bilateral agreement (private).
    Private,
    /// 9: test card.
    Test,
    /// 0, 3, 4, 8: reserved for future use by ISO (the digit).
    Reserved(u8),
}

/// Field 2 of the service code: authorization processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Authorization {
    /// 0: transactions are authorized following the normal rules.
    Normal,
    /// 2: transactions are authorized by the issuer (online).
    ByIssuer,
    /// 4: authorized by the issuer, except under bilateral agreement.
    ByIssuerUnlessBilateral,
    /// Any other digit: reserved (the digit).
    Reserved(u8),
}

/// Field 3 of the service code, PIN part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinRequirement {
    /// 0, 3, 5: PIN required.
    Required,
    /// 6, 7: prompt for PIN if a PIN entry device is present.
    PromptIfPedPresent,
    /// 1, 2, 4: no PIN requirement.
    NotRequired,
}

/// Field 3 of the service code, allowed-services part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllowedServices {
    /// 0, 1, 6: no restrictions.
    NoRestrictions,
    /// 2, 5, 7: goods and services only (no cash).
    GoodsAndServicesOnly,
    /// 3: ATM only.
    AtmOnly,
    /// 4: cash only.
    CashOnly,
}

/// A three-digit ISO 7813 service code (digit values 0-9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServiceCode([u8; 3]);

impl ServiceCode {
    /// From digit values (each 0-9); `None` otherwise.
    pub const fn new(digits: [u8; 3]) -> Option<Self> {
        if digits[0] <= 9 && digits[1] <= 9 && digits[2] <= 9 {
            Some(ServiceCode(digits))
        } else {
            None
        }
    }

    /// From exactly three ASCII digits, e.g. `"201"`.
    pub fn parse(s: &str) -> Option<Self> {
        match *s.as_bytes() {
            [a, b, c] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
                Some(ServiceCode([a - b'0', b - b'0', c - b'0']))
            }
            _ => None,
        }
    }

    /// The three digit values.
    pub const fn digits(self) -> [u8; 3] {
        self.0
    }

    /// True if the card has a chip (first digit 2 or 6): a swipe must be answered with
    /// "insert chip" unless a chip attempt failed (see [`swipe_verdict`]).
    pub const fn chip_card(self) -> bool {
        matches!(self.0[0], 2 | 6)
    }

    /// Meaning of the first digit.
    pub const fn interchange(self) -> Interchange {
        match self.0[0] {
            1 => Interchange::International,
            2 => Interchange::InternationalChip,
            5 => Interchange::National,
            6 => Interchange::NationalChip,
            7 => Interchange::Private,
            9 => Interchange::Test,
            d => Interchange::Reserved(d),
        }
    }

    /// Meaning of the second digit.
    pub const fn authorization(self) -> Authorization {
        match self.0[1] {
            0 => Authorization::Normal,
            2 => Authorization::ByIssuer,
            4 => Authorization::ByIssuerUnlessBilateral,
            d => Authorization::Reserved(d),
        }
    }

    /// PIN requirement of the third digit (`None` for the reserved digits 8 and 9).
    pub const fn pin_requirement(self) -> Option<PinRequirement> {
        match self.0[2] {
            0 | 3 | 5 => Some(PinRequirement::Required),
            6 | 7 => Some(PinRequirement::PromptIfPedPresent),
            1 | 2 | 4 => Some(PinRequirement::NotRequired),
            _ => None,
        }
    }

    /// Allowed services of the third digit (`None` for the reserved digits 8 and 9).
    pub const fn allowed_services(self) -> Option<AllowedServices> {
        match self.0[2] {
            0 | 1 | 6 => Some(AllowedServices::NoRestrictions),
            2 | 5 | 7 => Some(AllowedServices::GoodsAndServicesOnly),
            3 => Some(AllowedServices::AtmOnly),
            4 => Some(AllowedServices::CashOnly),
            _ => None,
        }
    }
}

impl fmt::Display for ServiceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.0[0], self.0[1], self.0[2])
    }
}

/// What to do with a swiped card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SwipeVerdict {
    /// Magnetic-stripe card: go on with the swipe.
    Proceed,
    /// Chip card: ask the customer to insert the card.
    InsertChip,
    /// Chip card whose chip could not be read: magnetic-stripe fallback is allowed.
    FallbackAllowed,
}

/// The swipe policy: a chip card (service code starting with 2 or 6) must be inserted; the
/// swipe is accepted as fallback only after a failed chip attempt.
pub const fn swipe_verdict(service: ServiceCode, chip_attempt_failed: bool) -> SwipeVerdict {
    if !service.chip_card() {
        SwipeVerdict::Proceed
    } else if chip_attempt_failed {
        SwipeVerdict::FallbackAllowed
    } else {
        SwipeVerdict::InsertChip
    }
}

/// The Luhn (mod 10) check of a PAN: false if it is shorter than two digits or has a
/// non-digit.
pub fn luhn_ok(pan: &str) -> bool {
    let bytes = pan.as_bytes();
    if bytes.len() < 2 || !bytes.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = bytes
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

const MASK_CAP: usize = 32;

/// A masked PAN in a fixed buffer (no allocation): see [`mask_pan`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MaskedPan {
    buf: [u8; MASK_CAP],
    len: usize,
}

impl MaskedPan {
    /// The masked PAN as text.
    pub fn as_str(&self) -> &str {
        self.buf
            .get(..self.len)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

impl fmt::Display for MaskedPan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for MaskedPan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Masks a PAN like `pos_hal::mask_pan`: spaces and dashes dropped; more than 10 digits keep
/// the first 6 and last 4, 5 to 10 keep the last 4, shorter ones are all `*`. Non-ASCII
/// characters are always masked; an input longer than 32 characters is shortened by dropping
/// masked characters from the middle. Works without std.
pub fn mask_pan(pan: &str) -> MaskedPan {
    let n = pan.chars().filter(|c| *c != ' ' && *c != '-').count();
    let (head, tail) = if n > 10 {
        (6, 4)
    } else if n > 4 {
        (0, 4)
    } else {
        (0, 0)
    };
    let max_stars = MASK_CAP - head - tail;
    let mut out = MaskedPan {
        buf: [0; MASK_CAP],
        len: 0,
    };
    let mut stars = 0;
    for (i, c) in pan.chars().filter(|c| *c != ' ' && *c != '-').enumerate() {
        let keep = i < head || i >= n - tail;
        let byte = if keep && c.is_ascii() { c as u8 } else { b'*' };
        if !keep {
            if stars >= max_stars {
                continue;
            }
            stars += 1;
        }
        if let Some(slot) = out.buf.get_mut(out.len) {
            *slot = byte;
            out.len += 1;
        }
    }
    out
}

/// Track 1 cardholder name, `SURNAME/FIRST.TITLE` split into its parts (trimmed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Name<'a> {
    /// Surname (the whole name when there is no `/`).
    pub surname: &'a str,
    /// First name(s) and initials (after `/`, before the title).
    pub first: &'a str,
    /// Title (after the last `.` following `/`), e.g. `MR`.
    pub title: &'a str,
}

impl<'a> Name<'a> {
    /// Splits a track 1 name field.
    pub fn parse(field: &'a str) -> Self {
        match field.split_once('/') {
            None => Name {
                surname: field.trim(),
                first: "",
                title: "",
            },
            Some((surname, rest)) => {
                let (first, title) = match rest.rsplit_once('.') {
                    Some((first, title)) => (first, title),
                    None => (rest, ""),
                };
                Name {
                    surname: surname.trim(),
                    first: first.trim(),
                    title: title.trim(),
                }
            }
        }
    }
}

fn parse_pan(s: &str) -> Result<&str, ParseError> {
    if s.is_empty() || s.len() > MAX_PAN_DIGITS || !s.bytes().all(|b| b.is_ascii_digit()) {
        Err(ParseError::Pan)
    } else {
        Ok(s)
    }
}

type Tail<'a> = (Option<[u8; 4]>, Option<ServiceCode>, &'a str);

/// `YYMM` service code, discretionary; an absent field is replaced by the separator.
fn parse_tail(rest: &str, sep: char) -> Result<Tail<'_>, ParseError> {
    let (expiry, rest) = if let Some(r) = rest.strip_prefix(sep) {
        (None, r)
    } else {
        let (yymm, r) = split_digits::<4>(rest).ok_or(ParseError::Expiry)?;
        (Some(yymm), r)
    };
    let (service, rest) = if let Some(r) = rest.strip_prefix(sep) {
        (None, r)
    } else {
        let (sc, r) = split_digits::<3>(rest).ok_or(ParseError::ServiceCode)?;
        (Some(ServiceCode(sc)), r)
    };
    Ok((expiry, service, rest))
}

fn split_digits<const N: usize>(s: &str) -> Option<([u8; N], &str)> {
    let head = s.as_bytes().get(..N)?;
    let mut d = [0u8; N];
    for (slot, &b) in d.iter_mut().zip(head) {
        if !b.is_ascii_digit() {
            return None;
        }
        *slot = b - b'0';
    }
    Some((d, s.get(N..)?))
}

fn strip_sentinels(text: &str, start: char) -> &str {
    let t = text.strip_prefix(start).unwrap_or(text);
    t.strip_suffix('?').unwrap_or(t)
}

/// Expiry `[Y, Y, M, M]` digit values as (year within century, month).
fn yymm(e: [u8; 4]) -> (u8, u8) {
    (e[0] * 10 + e[1], e[2] * 10 + e[3])
}

/// Parsed ISO 7813 track 2: `PAN=YYMMSSS discretionary`. Borrows the track text. `Debug`
/// and `Display` show only the masked PAN.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Track2Data<'a> {
    /// Primary account number (digits; the Luhn check is reported by [`Self::luhn_ok`], a
    /// failing PAN is not rejected).
    pub pan: &'a str,
    /// Expiry date `[Y, Y, M, M]` as digit values, if present.
    pub expiry: Option<[u8; 4]>,
    /// Service code, if present.
    pub service_code: Option<ServiceCode>,
    /// Discretionary data (the rest of the track).
    pub discretionary: &'a str,
}

impl<'a> Track2Data<'a> {
    /// Parses the track text (with or without the `;` and `?` sentinels).
    pub fn parse(text: &'a str) -> Result<Self, ParseError> {
        let text = strip_sentinels(text, ';');
        let (pan, rest) = text.split_once('=').ok_or(ParseError::Separator)?;
        let pan = parse_pan(pan)?;
        let (expiry, service_code, discretionary) = parse_tail(rest, '=')?;
        Ok(Track2Data {
            pan,
            expiry,
            service_code,
            discretionary,
        })
    }

    /// Luhn check of the PAN.
    pub fn luhn_ok(&self) -> bool {
        luhn_ok(self.pan)
    }

    /// The masked PAN.
    pub fn masked_pan(&self) -> MaskedPan {
        mask_pan(self.pan)
    }

    /// Expiry as (year within century, month), if present.
    pub fn expiry_year_month(&self) -> Option<(u8, u8)> {
        self.expiry.map(yymm)
    }
}

impl fmt::Debug for Track2Data<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Track2Data")
            .field("pan", &self.masked_pan())
            .field("service_code", &self.service_code)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Track2Data<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.masked_pan())
    }
}

/// Parsed ISO 7813 track 1 (format B): `B PAN ^ NAME ^ YYMM SSS discretionary`. Borrows the
/// track text. `Debug` and `Display` show only the masked PAN.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Track1Data<'a> {
    /// Format code (always `b'B'`).
    pub format_code: u8,
    /// Primary account number (digits; Luhn reported, not enforced).
    pub pan: &'a str,
    /// Cardholder name.
    pub name: Name<'a>,
    /// Expiry date `[Y, Y, M, M]` as digit values, if present.
    pub expiry: Option<[u8; 4]>,
    /// Service code, if present.
    pub service_code: Option<ServiceCode>,
    /// Discretionary data (the rest of the track).
    pub discretionary: &'a str,
}

impl<'a> Track1Data<'a> {
    /// Parses the track text (with or without the `%` and `?` sentinels).
    pub fn parse(text: &'a str) -> Result<Self, ParseError> {
        let text = strip_sentinels(text, '%');
        let rest = text.strip_prefix('B').ok_or(ParseError::FormatCode)?;
        let (pan, rest) = rest.split_once('^').ok_or(ParseError::Separator)?;
        let pan = parse_pan(pan)?;
        let (name, rest) = rest.split_once('^').ok_or(ParseError::Separator)?;
        if name.len() > MAX_NAME_CHARS {
            return Err(ParseError::Name);
        }
        let (expiry, service_code, discretionary) = parse_tail(rest, '^')?;
        Ok(Track1Data {
            format_code: b'B',
            pan,
            name: Name::parse(name),
            expiry,
            service_code,
            discretionary,
        })
    }

    /// Luhn check of the PAN.
    pub fn luhn_ok(&self) -> bool {
        luhn_ok(self.pan)
    }

    /// The masked PAN.
    pub fn masked_pan(&self) -> MaskedPan {
        mask_pan(self.pan)
    }

    /// Expiry as (year within century, month), if present.
    pub fn expiry_year_month(&self) -> Option<(u8, u8)> {
        self.expiry.map(yymm)
    }
}

impl fmt::Debug for Track1Data<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Track1Data")
            .field("pan", &self.masked_pan())
            .field("service_code", &self.service_code)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Track1Data<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.masked_pan())
    }
}
