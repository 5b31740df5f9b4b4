//! Cardholder verification (EMV 4.3 Book 3 10.5, CVM list in Annex C3): the card's CVM
//! list (`8E`) parsed and evaluated against the terminal's capabilities.
//!
//! This crate has **no PIN entry**. A PIN method the terminal's capabilities do not claim
//! (a lane without a PIN pad: [`crate::terminal::Capabilities`] claims none) is not
//! supported: its rule fails (or, with the condition "if terminal supports the CVM", does
//! not apply) and no TVR bit says anything about a PIN pad. A PIN method the capabilities
//! claim (a lane whose configuration names a PIN pad) cannot be performed either: it fails
//! with [`Tvr::PIN_PAD_NOT_PRESENT`] ("PIN entry required and PIN pad not present or not
//! working"), never as a PIN entered. Which CVM the card asked for is reported in
//! [`CvmOutcome::method_asked`].
//!
//! The walk ([`evaluate`]): the rules in order; a rule whose condition is not satisfied (or
//! not understood) is skipped; a satisfied rule's method is performed: signature succeeds
//! with the result "unknown" (`00`, the signature is captured later), No CVM required
//! succeeds (`02`), Fail CVM fails, an unrecognised method fails and sets
//! [`Tvr::UNRECOGNISED_CVM`], a method the terminal does not support fails. After a failure
//! the rule's "apply succeeding CV rule if this CVM is unsuccessful" bit decides whether the
//! walk goes on; a walk that ends without success sets
//! [`Tvr::CARDHOLDER_VERIFICATION_FAILED`]. [`Tsi::CARDHOLDER_VERIFICATION_PERFORMED`] is set
//! once a CVM list with rules was processed. A list without rules (or absent: see
//! [`cardholder_verification`]) sets [`Tvr::ICC_DATA_MISSING`] instead, with the CVM
//! Results `3F 00 00` and the TSI untouched.

use crate::read::CardData;
use crate::tags;
use crate::tvr::{Tsi, Tvr};

/// A cardholder verification method (the low 6 bits of a CV rule's first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CvMethod {
    /// `00` Fail CVM processing.
    FailCvm,
    /// `01` Plaintext PIN verification performed by ICC.
    PlaintextPinIcc,
    /// `02` Enciphered PIN verified online.
    EncipheredPinOnline,
    /// `03` Plaintext PIN verification performed by ICC and signature (paper).
    PlaintextPinIccAndSignature,
    /// `04` Enciphered PIN verification performed by ICC.
    EncipheredPinIcc,
    /// `05` Enciphered PIN verification performed by ICC and signature (paper).
    EncipheredPinIccAndSignature,
    /// `1E` Signature (paper).
    Signature,
    /// `1F` No CVM required.
    NoCvmRequired,
    /// Any other code (RFU, scheme or issuer specific): the 6-bit code.
    Other(u8),
}

impl CvMethod {
    /// The method of a CV rule's first byte (bits b6-b1; b7 and b8 ignored).
    pub fn from_code(byte: u8) -> CvMethod {
        match byte & 0x3F {
            0x00 => CvMethod::FailCvm,
            0x01 => CvMethod::PlaintextPinIcc,
            0x02 => CvMethod::EncipheredPinOnline,
            0x03 => CvMethod::PlaintextPinIccAndSignature,
            0x04 => CvMethod::EncipheredPinIcc,
            0x05 => CvMethod::EncipheredPinIccAndSignature,
            0x1E => CvMethod::Signature,
            0x1F => CvMethod::NoCvmRequired,
            other => CvMethod::Other(other),
        }
    }

    /// The 6-bit method code.
    pub fn code(self) -> u8 {
        match self {
            CvMethod::FailCvm => 0x00,
            CvMethod::PlaintextPinIcc => 0x01,
            CvMethod::EncipheredPinOnline => 0x02,
            CvMethod::PlaintextPinIccAndSignature => 0x03,
            CvMethod::EncipheredPinIcc => 0x04,
            CvMethod::EncipheredPinIccAndSignature => 0x05,
            CvMethod::Signature => 0x1E,
            CvMethod::NoCvmRequired => 0x1F,
            CvMethod::Other(c) => c & 0x3F,
        }
    }

    /// True for the methods that need PIN entry.
    pub fn needs_pin(self) -> bool {
        matches!(
            self,
            CvMethod::PlaintextPinIcc
                | CvMethod::EncipheredPinOnline
                | CvMethod::PlaintextPinIccAndSignature
                | CvMethod::EncipheredPinIcc
                | CvMethod::EncipheredPinIccAndSignature
        )
    }
}

/// The condition of a CV rule (its second byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CvmCondition {
    /// `00` Always.
    Always,
    /// `01` If unattended cash.
    UnattendedCash,
    /// `02` If not unattended cash and not manual cash and not purchase with cashback.
    NotUnattendedCashNotManualCashNotCashback,
    /// `03` If terminal supports the CVM.
    TerminalSupports,
    /// `04` If manual cash.
    ManualCash,
    /// `05` If purchase with cashback.
    Cashback,
    /// `06` If transaction is in the application currency and is under X value.
    UnderX,
    /// `07` If transaction is in the application currency and is over X value.
    OverX,
    /// `08` If transaction is in the application currency and is under Y value.
    UnderY,
    /// `09` If transaction is in the application currency and is over Y value.
    OverY,
    /// Any other code (RFU or proprietary): never satisfied here.
    Other(u8),
}

impl CvmCondition {
    /// The condition of a CV rule's second byte.
    pub fn from_code(byte: u8) -> CvmCondition {
        match byte {
            0x00 => CvmCondition::Always,
            0x01 => CvmCondition::UnattendedCash,
            0x02 => CvmCondition::NotUnattendedCashNotManualCashNotCashback,
            0x03 => CvmCondition::TerminalSupports,
            0x04 => CvmCondition::ManualCash,
            0x05 => CvmCondition::Cashback,
            0x06 => CvmCondition::UnderX,
            0x07 => CvmCondition::OverX,
            0x08 => CvmCondition::UnderY,
            0x09 => CvmCondition::OverY,
            other => CvmCondition::Other(other),
        }
    }

    /// The condition code.
    pub fn code(self) -> u8 {
        match self {
            CvmCondition::Always => 0x00,
            CvmCondition::UnattendedCash => 0x01,
            CvmCondition::NotUnattendedCashNotManualCashNotCashback => 0x02,
            CvmCondition::TerminalSupports => 0x03,
            CvmCondition::ManualCash => 0x04,
            CvmCondition::Cashback => 0x05,
            CvmCondition::UnderX => 0x06,
            CvmCondition::OverX => 0x07,
            CvmCondition::UnderY => 0x08,
            CvmCondition::OverY => 0x09,
            CvmCondition::Other(c) => c,
        }
    }
}

/// One cardholder verification rule (2 bytes of the CVM list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CvmRule {
    /// The method.
    pub method: CvMethod,
    /// Bit b7 of the first byte: apply the next rule if this CVM is unsuccessful.
    pub apply_next_if_unsuccessful: bool,
    /// The condition under which the rule applies.
    pub condition: CvmCondition,
}

impl CvmRule {
    /// The rule's two bytes (bit b8 of the first byte, RFU, is not kept).
    pub fn to_bytes(self) -> [u8; 2] {
        let next = if self.apply_next_if_unsuccessful {
            0x40
        } else {
            0x00
        };
        [self.method.code() | next, self.condition.code()]
    }
}

/// Why a CVM list could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum CvmListError {
    /// Shorter than the 8 bytes of the amounts X and Y.
    #[error("CVM list of {0} bytes is shorter than its amounts X and Y (8 bytes)")]
    TooShort(usize),
    /// The rules are not a whole number of 2-byte rules.
    #[error("CVM list of {0} bytes ends inside a rule (odd length)")]
    OddLength(usize),
}

/// A CVM list, tag `8E`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CvmList {
    /// Amount X, in the application currency (binary, minor units).
    pub amount_x: u32,
    /// Amount Y, in the application currency (binary, minor units).
    pub amount_y: u32,
    /// The rules, in the card's order of preference.
    pub rules: Vec<CvmRule>,
}

impl CvmList {
    /// Parses the value of `8E`: amount X (4 bytes), amount Y (4 bytes), then 2-byte rules.
    ///
    /// # Errors
    /// [`CvmListError::TooShort`] under 8 bytes, [`CvmListError::OddLength`] for an odd
    /// length. Never panics.
    pub fn parse(value: &[u8]) -> Result<CvmList, CvmListError> {
        let Some((x, rest)) = value.split_first_chunk::<4>() else {
            return Err(CvmListError::TooShort(value.len()));
        };
        let Some((y, rules)) = rest.split_first_chunk::<4>() else {
            return Err(CvmListError::TooShort(value.len()));
        };
        if rules.len() % 2 != 0 {
            return Err(CvmListError::OddLength(value.len()));
        }
        let rules = rules
            .chunks_exact(2)
            .filter_map(|r| {
                let &[b1, b2] = r else { return None };
                Some(CvmRule {
                    method: CvMethod::from_code(b1),
                    apply_next_if_unsuccessful: b1 & 0x40 != 0,
                    condition: CvmCondition::from_code(b2),
                })
            })
            .collect();
        Ok(CvmList {
            amount_x: u32::from_be_bytes(*x),
            amount_y: u32::from_be_bytes(*y),
            rules,
        })
    }
}

/// The CVMs the terminal supports, from byte 2 of Terminal Capabilities `9F33`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TerminalCvmCapabilities {
    /// b8: plaintext PIN for ICC verification.
    pub plaintext_pin: bool,
    /// b7: enciphered PIN for online verification.
    pub enciphered_pin_online: bool,
    /// b5: enciphered PIN for offline verification.
    pub enciphered_pin_offline: bool,
    /// b6: signature (paper).
    pub signature: bool,
    /// b4: No CVM required.
    pub no_cvm: bool,
}

impl TerminalCvmCapabilities {
    /// From the value of `9F33` (3 bytes; byte 2 read). `None` when not 3 bytes.
    pub fn from_terminal_capabilities(value: &[u8]) -> Option<TerminalCvmCapabilities> {
        let &[_, b2, _] = value else {
            return None;
        };
        Some(TerminalCvmCapabilities {
            plaintext_pin: b2 & 0x80 != 0,
            enciphered_pin_online: b2 & 0x40 != 0,
            signature: b2 & 0x20 != 0,
            enciphered_pin_offline: b2 & 0x10 != 0,
            no_cvm: b2 & 0x08 != 0,
        })
    }

    /// True when the terminal supports `method` (Fail CVM always; unrecognised never).
    pub fn supports(self, method: CvMethod) -> bool {
        match method {
            CvMethod::FailCvm => true,
            CvMethod::PlaintextPinIcc => self.plaintext_pin,
            CvMethod::EncipheredPinOnline => self.enciphered_pin_online,
            CvMethod::PlaintextPinIccAndSignature => self.plaintext_pin && self.signature,
            CvMethod::EncipheredPinIcc => self.enciphered_pin_offline,
            CvMethod::EncipheredPinIccAndSignature => self.enciphered_pin_offline && self.signature,
            CvMethod::Signature => self.signature,
            CvMethod::NoCvmRequired => self.no_cvm,
            CvMethod::Other(_) => false,
        }
    }
}

/// What the CVM conditions look at in the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CvmTransaction {
    /// The amount authorised, in minor units.
    pub amount: u64,
    /// The transaction currency is the application currency (`5F2A` equals `9F42`): the
    /// X and Y conditions are satisfied only then.
    pub in_application_currency: bool,
    /// A cash transaction.
    pub cash: bool,
    /// A purchase with cashback.
    pub cashback: bool,
    /// The terminal is unattended (cash at an unattended terminal is "unattended cash",
    /// at an attended one "manual cash").
    pub unattended: bool,
}

/// CVM Results, tag `9F34`: method performed, its condition, result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CvmResults {
    /// Byte 1: the CV rule's first byte, or `3F` when no CVM was performed.
    pub method: u8,
    /// Byte 2: the CV rule's condition code (`00` when no CVM was performed).
    pub condition: u8,
    /// Byte 3: [`CvmResults::UNKNOWN`], [`CvmResults::FAILED`] or
    /// [`CvmResults::SUCCESSFUL`].
    pub result: u8,
}

impl CvmResults {
    /// Result `00`: unknown (e.g. a signature to be checked later).
    pub const UNKNOWN: u8 = 0x00;
    /// Result `01`: failed.
    pub const FAILED: u8 = 0x01;
    /// Result `02`: successful.
    pub const SUCCESSFUL: u8 = 0x02;
    /// `3F 00 00`: no CVM performed (card without cardholder verification, or no CVM list).
    pub const NOT_PERFORMED: CvmResults = CvmResults {
        method: 0x3F,
        condition: 0x00,
        result: 0x00,
    };

    /// The 3 bytes of `9F34`.
    pub fn to_bytes(self) -> [u8; 3] {
        [self.method, self.condition, self.result]
    }
}

/// The outcome of cardholder verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CvmOutcome {
    /// The method of the first rule whose condition was satisfied: the CVM the card asked
    /// for (even when it failed here, e.g. a PIN without a PIN pad). `None` when no rule
    /// applied.
    pub method_asked: Option<CvMethod>,
    /// The method that succeeded, `None` when verification failed or was not performed.
    pub performed: Option<CvMethod>,
    /// The CVM Results (`9F34`).
    pub result: CvmResults,
}

fn condition_satisfied(
    rule: &CvmRule,
    list: &CvmList,
    caps: TerminalCvmCapabilities,
    tx: &CvmTransaction,
) -> bool {
    let unattended_cash = tx.cash && tx.unattended;
    let manual_cash = tx.cash && !tx.unattended;
    let in_cur = tx.in_application_currency;
    match rule.condition {
        CvmCondition::Always => true,
        CvmCondition::UnattendedCash => unattended_cash,
        CvmCondition::NotUnattendedCashNotManualCashNotCashback => {
            !unattended_cash && !manual_cash && !tx.cashback
        }
        CvmCondition::TerminalSupports => caps.supports(rule.method),
        CvmCondition::ManualCash => manual_cash,
        CvmCondition::Cashback => tx.cashback,
        CvmCondition::UnderX => in_cur && tx.amount < u64::from(list.amount_x),
        CvmCondition::OverX => in_cur && tx.amount > u64::from(list.amount_x),
        CvmCondition::UnderY => in_cur && tx.amount < u64::from(list.amount_y),
        CvmCondition::OverY => in_cur && tx.amount > u64::from(list.amount_y),
        CvmCondition::Other(_) => false,
    }
}

/// Performs one method here (no PIN entry: a supported PIN method fails with
/// [`Tvr::PIN_PAD_NOT_PRESENT`]): `Some(result byte)` on success, `None` on failure.
fn perform(method: CvMethod, caps: TerminalCvmCapabilities, tvr: &mut Tvr) -> Option<u8> {
    if let CvMethod::Other(_) = method {
        *tvr |= Tvr::UNRECOGNISED_CVM;
        return None;
    }
    if !caps.supports(method) {
        return None;
    }
    match method {
        CvMethod::Signature => Some(CvmResults::UNKNOWN),
        CvMethod::NoCvmRequired => Some(CvmResults::SUCCESSFUL),
        m if m.needs_pin() => {
            *tvr |= Tvr::PIN_PAD_NOT_PRESENT;
            None
        }
        _ => None,
    }
}

/// Evaluates `list` (see the [module](self) documentation), setting bits in `tvr` and
/// `tsi`.
pub fn evaluate(
    list: &CvmList,
    caps: TerminalCvmCapabilities,
    tx: &CvmTransaction,
    tvr: &mut Tvr,
    tsi: &mut Tsi,
) -> CvmOutcome {
    if list.rules.is_empty() {
        *tvr |= Tvr::ICC_DATA_MISSING;
        return CvmOutcome {
            method_asked: None,
            performed: None,
            result: CvmResults::NOT_PERFORMED,
        };
    }
    *tsi |= Tsi::CARDHOLDER_VERIFICATION_PERFORMED;
    let mut method_asked = None;
    let mut last_failed = None;
    for rule in &list.rules {
        if !condition_satisfied(rule, list, caps, tx) {
            continue;
        }
        method_asked.get_or_insert(rule.method);
        let [method, condition] = rule.to_bytes();
        if let Some(result) = perform(rule.method, caps, tvr) {
            return CvmOutcome {
                method_asked,
                performed: Some(rule.method),
                result: CvmResults {
                    method,
                    condition,
                    result,
                },
            };
        }
        last_failed = Some(CvmResults {
            method,
            condition,
            result: CvmResults::FAILED,
        });
        if !rule.apply_next_if_unsuccessful {
            break;
        }
    }
    *tvr |= Tvr::CARDHOLDER_VERIFICATION_FAILED;
    CvmOutcome {
        method_asked,
        performed: None,
        result: last_failed.unwrap_or(CvmResults {
            method: 0x3F,
            condition: 0x00,
            result: CvmResults::FAILED,
        }),
    }
}

/// Cardholder verification as the transaction runs it: skipped (`None`, CVM Results
/// [`CvmResults::NOT_PERFORMED`] for the caller) when the AIP (`82`) does not have
/// "cardholder verification is supported" (byte 1 b5); otherwise the card's CVM list `8E`
/// evaluated ([`evaluate`]). A CVM list absent or malformed is handled as a list without
/// rules: [`Tvr::ICC_DATA_MISSING`], results `3F 00 00`.
pub fn cardholder_verification(
    aip: [u8; 2],
    card: &CardData,
    caps: TerminalCvmCapabilities,
    tx: &CvmTransaction,
    tvr: &mut Tvr,
    tsi: &mut Tsi,
) -> Option<CvmOutcome> {
    if aip[0] & 0x10 == 0 {
        return None;
    }
    let list = card
        .get(tags::CVM_LIST)
        .and_then(|v| CvmList::parse(v).ok())
        .unwrap_or(CvmList {
            amount_x: 0,
            amount_y: 0,
            rules: Vec::new(),
        });
    Some(evaluate(&list, caps, tx, tvr, tsi))
}
