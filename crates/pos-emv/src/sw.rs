//! Status words (SW1 SW2) with meanings for people: ISO/IEC 7816-4 clause 5.6 and the
//! status words EMV gives a meaning of its own (EMV Book 1 clause 11, Book 3 clause 6.3.5).
//!
//! [`meaning`] is for logs, screens and technicians; code should decide on [`category`]
//! and on the exact status words it expects.

use std::borrow::Cow;

/// The broad class of a status word (ISO/IEC 7816-4 table 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SwCategory {
    /// Normal processing: `9000`, and `61xx` (more data available).
    Success,
    /// Warning processing: `62xx`, `63xx` (the command was processed).
    Warning,
    /// Execution error: `64xx`, `65xx`, `66xx`.
    ExecutionError,
    /// Checking error: `67xx` to `6Fxx`.
    CheckingError,
    /// Anything else (proprietary `9xxx` other than `9000`, or not a valid SW1).
    Unknown,
}

/// The category of `SW1 SW2`.
pub fn category(sw1: u8, sw2: u8) -> SwCategory {
    match (sw1, sw2) {
        (0x90, 0x00) | (0x61, _) => SwCategory::Success,
        (0x62 | 0x63, _) => SwCategory::Warning,
        (0x64..=0x66, _) => SwCategory::ExecutionError,
        (0x67..=0x6F, _) => SwCategory::CheckingError,
        _ => SwCategory::Unknown,
    }
}

/// What `SW1 SW2` means, in a short English phrase. Status words EMV gives a specific
/// meaning say so (for example `6283`: an EMV card answers SELECT with it for a blocked
/// application). Never empty; unknown values get the meaning of their group.
pub fn meaning(sw1: u8, sw2: u8) -> Cow<'static, str> {
    let s: &'static str = match (sw1, sw2) {
        (0x90, 0x00) => "success",
        (0x61, 0x00) => {
            return Cow::Borrowed(
                "success: 256 or more bytes of response data available (fetch with GET RESPONSE)",
            );
        }
        (0x61, n) => {
            return Cow::Owned(format!(
                "success: {n} bytes of response data available (fetch with GET RESPONSE)"
            ));
        }
        // 62xx: warning, non-volatile memory unchanged.
        (0x62, 0x00) => "warning: no information given (memory unchanged)",
        (0x62, 0x81) => "warning: part of the returned data may be corrupted",
        (0x62, 0x82) => "warning: end of file or record reached before reading Le bytes",
        (0x62, 0x83) => "warning: selected file deactivated (EMV: the application is blocked)",
        (0x62, 0x84) => "warning: file control information not formatted as ISO 7816-4 says",
        (0x62, 0x85) => "warning: selected file in termination state",
        (0x62, 0x86) => "warning: no input data available from a sensor on the card",
        (0x62, _) => "warning: memory unchanged",
        // 63xx: warning, non-volatile memory changed.
        (0x63, 0x00) => {
            "warning: no information given, memory changed (EMV: verification or issuer authentication failed)"
        }
        (0x63, 0x81) => "warning: file filled up by the last write",
        (0x63, n) if n & 0xF0 == 0xC0 => {
            return Cow::Owned(format!(
                "warning: counter is {} (EMV VERIFY: wrong PIN, {} tries left)",
                n & 0x0F,
                n & 0x0F
            ));
        }
        (0x63, _) => "warning: memory changed",
        // 64xx to 66xx: execution errors.
        (0x64, 0x00) => "execution error: memory unchanged",
        (0x64, 0x01) => "execution error: immediate response required by the card",
        (0x64, _) => "execution error: memory unchanged",
        (0x65, 0x81) => "execution error: memory failure",
        (0x65, _) => "execution error: memory changed",
        (0x66, _) => "execution error: security-related issue",
        // 67xx to 6Fxx: checking errors.
        (0x67, 0x00) => "wrong length (Lc or Le)",
        (0x67, _) => "wrong length",
        (0x68, 0x81) => "logical channel not supported",
        (0x68, 0x82) => "secure messaging not supported",
        (0x68, 0x83) => "last command of the chain expected",
        (0x68, 0x84) => "command chaining not supported",
        (0x68, _) => "function in CLA not supported",
        (0x69, 0x81) => "command incompatible with file structure",
        (0x69, 0x82) => "security status not satisfied",
        (0x69, 0x83) => "authentication method blocked (EMV: PIN try limit exceeded)",
        (0x69, 0x84) => "reference data not usable (EMV: referenced data invalidated)",
        (0x69, 0x85) => "conditions of use not satisfied",
        (0x69, 0x86) => "command not allowed (no current EF)",
        (0x69, 0x87) => "expected secure messaging data objects missing",
        (0x69, 0x88) => "incorrect secure messaging data objects",
        (0x69, _) => "command not allowed",
        (0x6A, 0x80) => "incorrect parameters in the command data field",
        (0x6A, 0x81) => "function not supported (EMV: card or application blocked)",
        (0x6A, 0x82) => "file or application not found",
        (0x6A, 0x83) => "record not found (EMV: end of the directory or file)",
        (0x6A, 0x84) => "not enough memory space in the file",
        (0x6A, 0x85) => "Lc inconsistent with TLV structure",
        (0x6A, 0x86) => "incorrect parameters P1-P2",
        (0x6A, 0x87) => "Lc inconsistent with P1-P2",
        (0x6A, 0x88) => "referenced data not found (EMV GET DATA: no such data object)",
        (0x6A, 0x89) => "file already exists",
        (0x6A, 0x8A) => "DF name already exists",
        (0x6A, _) => "wrong parameters P1-P2",
        (0x6B, 0x00) => "wrong parameters P1-P2 (offset outside the file)",
        (0x6B, _) => "wrong parameters P1-P2",
        (0x6C, n) => {
            let exact = if n == 0 { 256 } else { u16::from(n) };
            return Cow::Owned(format!(
                "wrong Le: the card has exactly {exact} bytes (resend with that Le)"
            ));
        }
        (0x6D, _) => "instruction not supported or invalid",
        (0x6E, _) => "class not supported",
        (0x6F, _) => "no precise diagnosis (card internal error)",
        (0x9F, n) => {
            return Cow::Owned(format!(
                "proprietary (GSM SIM cards: {n} bytes of response data available)"
            ));
        }
        (0x90..=0x9F, _) => "proprietary status (application specific)",
        _ => "unknown status word",
    };
    Cow::Borrowed(s)
}

/// `SW1 SW2` as hex followed by its meaning, for logs: `6A82 (file or application not found)`.
pub fn describe(sw1: u8, sw2: u8) -> String {
    format!("{sw1:02X}{sw2:02X} ({})", meaning(sw1, sw2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_has_a_meaning_and_a_category() {
        for sw1 in 0..=255u8 {
            for sw2 in [0u8, 0x01, 0x81, 0xC3, 0xFF] {
                assert!(!meaning(sw1, sw2).is_empty());
                let _ = category(sw1, sw2);
            }
        }
    }
}
