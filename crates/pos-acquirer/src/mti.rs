//! The message type indicator.

use std::fmt;
use std::str::FromStr;

/// A message type indicator: four decimal digits, version / class / function / origin.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mti(u16);

impl Mti {
    /// 0100 authorization request.
    pub const AUTH_REQUEST: Mti = Mti(100);
    /// 0110 authorization response.
    pub const AUTH_RESPONSE: Mti = Mti(110);
    /// 0200 financial request.
    pub const FINANCIAL_REQUEST: Mti = Mti(200);
    /// 0210 financial response.
    pub const FINANCIAL_RESPONSE: Mti = Mti(210);
    /// 0320 batch-upload advice (acquirer financial advice).
    pub const ADVICE: Mti = Mti(320);
    /// 0330 advice response.
    pub const ADVICE_RESPONSE: Mti = Mti(330);
    /// 0400 reversal request.
    pub const REVERSAL_REQUEST: Mti = Mti(400);
    /// 0410 reversal response.
    pub const REVERSAL_RESPONSE: Mti = Mti(410);
    /// 0420 reversal advice.
    pub const REVERSAL_ADVICE: Mti = Mti(420);
    /// 0430 reversal advice response.
    pub const REVERSAL_ADVICE_RESPONSE: Mti = Mti(430);
    /// 0500 acquirer reconciliation request (settlement).
    pub const RECONCILIATION_REQUEST: Mti = Mti(500);
    /// 0510 reconciliation response.
    pub const RECONCILIATION_RESPONSE: Mti = Mti(510);
    /// 0800 network management request.
    pub const NETWORK_REQUEST: Mti = Mti(800);
    /// 0810 network management response.
    pub const NETWORK_RESPONSE: Mti = Mti(810);

    /// An MTI from its numeric value; `None` above 9999.
    pub const fn new(value: u16) -> Option<Mti> {
        if value <= 9999 {
            Some(Mti(value))
        } else {
            None
        }
    }

    /// The numeric value (0200 is 200).
    pub const fn value(self) -> u16 {
        self.0
    }

    /// The four digits as ASCII.
    pub fn digits(self) -> [u8; 4] {
        let v = self.0;
        [
            b'0' + (v / 1000) as u8,
            b'0' + (v / 100 % 10) as u8,
            b'0' + (v / 10 % 10) as u8,
            b'0' + (v % 10) as u8,
        ]
    }

    /// Version digit (0 = ISO 8583:1987).
    pub const fn version(self) -> u8 {
        (self.0 / 1000) as u8
    }

    /// Class digit (1 authorization, 2 financial, 4 reversal, 8 network management, ...).
    pub const fn class(self) -> u8 {
        (self.0 / 100 % 10) as u8
    }

    /// Function digit (0 request, 1 request response, 2 advice, 3 advice response, ...).
    pub const fn function(self) -> u8 {
        (self.0 / 10 % 10) as u8
    }

    /// Origin digit (0 acquirer, 1 acquirer repeat, 2 issuer, 3 issuer repeat, ...).
    pub const fn origin(self) -> u8 {
        (self.0 % 10) as u8
    }

    /// Whether this is a request, advice, notification or instruction (even function digit)
    /// that expects an answer.
    pub const fn is_request(self) -> bool {
        self.function() % 2 == 0
    }

    /// Whether this answers another message (odd function digit).
    pub const fn is_response(self) -> bool {
        !self.is_request()
    }

    /// The MTI of the answer to this message: function + 1, and a repeat origin becomes the
    /// plain one (0201 is answered by 0210). `None` if this is already a response.
    pub const fn response(self) -> Option<Mti> {
        if !self.is_request() {
            return None;
        }
        let origin = self.origin();
        let origin = if origin <= 3 { origin & !1 } else { origin };
        Some(Mti(self.0 - self.0 % 100
            + (self.function() as u16 + 1) * 10
            + origin as u16))
    }
}

impl fmt::Display for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.0)
    }
}

impl fmt::Debug for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mti({:04})", self.0)
    }
}

/// An MTI string that is not four decimal digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an MTI is four decimal digits")]
pub struct BadMti;

impl FromStr for Mti {
    type Err = BadMti;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadMti);
        }
        s.parse::<u16>().map(Mti).map_err(|_| BadMti)
    }
}
