//! What the transaction hands back: the host's answer it asks for, the decision, the outcome and its errors.

use super::*;

/// What the host answered to the authorisation request.
#[derive(Clone, PartialEq, Eq)]
pub enum OnlineDecision {
    /// The issuer approved.
    Approved {
        /// `8A` Authorisation Response Code.
        arc: [u8; 2],
        /// `91` Issuer Authentication Data.
        issuer_auth_data: Option<Vec<u8>>,
        /// Issuer script templates `71` / `72`, raw.
        scripts: Vec<u8>,
    },
    /// The issuer declined.
    Declined {
        /// `8A` Authorisation Response Code.
        arc: [u8; 2],
        /// `91` Issuer Authentication Data.
        issuer_auth_data: Option<Vec<u8>>,
        /// Issuer script templates `71` / `72`, raw.
        scripts: Vec<u8>,
    },
    /// No answer from the host: the terminal is unable to go online.
    Unreachable,
}

impl fmt::Debug for OnlineDecision {
    /// The ARC and lengths only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OnlineDecision::Approved { arc, .. } => {
                write!(f, "Approved {{ arc: {:02X}{:02X} }}", arc[0], arc[1])
            }
            OnlineDecision::Declined { arc, .. } => {
                write!(f, "Declined {{ arc: {:02X}{:02X} }}", arc[0], arc[1])
            }
            OnlineDecision::Unreachable => f.write_str("Unreachable"),
        }
    }
}

/// What the host answered, without its data (for errors and outcomes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostAnswer {
    /// The transaction did not go online.
    NotAsked,
    /// The host approved with this ARC.
    Approved([u8; 2]),
    /// The host declined with this ARC.
    Declined([u8; 2]),
    /// The host could not be reached.
    Unreachable,
}

/// The offline data authentication method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OdaMethod {
    /// No method both the card and the terminal support.
    None,
    /// Static data authentication.
    Sda,
    /// Dynamic data authentication.
    Dda,
    /// Combined DDA / application cryptogram generation.
    Cda,
}

/// How offline data authentication went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OdaResult {
    /// The method chosen.
    pub method: OdaMethod,
    /// True when it succeeded (false for [`OdaMethod::None`]).
    pub ok: bool,
    /// Why it failed, when it failed.
    pub detail: Option<OdaError>,
}

/// The end of a completed transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionDecision {
    /// The card gave a TC at the first GENERATE AC.
    ApprovedOffline,
    /// The terminal or the card declined offline (AAC at the first GENERATE AC, or a CDA
    /// failure).
    DeclinedOffline,
    /// The host approved and the card gave a TC.
    ApprovedOnline,
    /// The host declined.
    DeclinedOnline,
    /// The host approved but the card gave an AAC (or its CDA signature failed): the
    /// authorisation must be reversed.
    DeclinedAfterHostApproval,
    /// Unable to go online; the default action codes and the card approved.
    ApprovedUnableOnline,
    /// Unable to go online; declined by the default action codes or the card.
    DeclinedUnableOnline,
}

impl TransactionDecision {
    /// True for the approved ends.
    pub fn is_approved(self) -> bool {
        matches!(
            self,
            TransactionDecision::ApprovedOffline
                | TransactionDecision::ApprovedOnline
                | TransactionDecision::ApprovedUnableOnline
        )
    }
}

/// A completed transaction.
#[derive(Debug, Clone)]
pub struct TransactionOutcome {
    /// The record of the final cryptogram (GENERATE AC 2, or GENERATE AC 1 when there was
    /// no second one), for clearing, with the ARC and the script results.
    pub record: TransactionRecord,
    /// The record of the first GENERATE AC (the authorisation request when it was an ARQC).
    pub first_ac: TransactionRecord,
    /// How the transaction ended.
    pub decision: TransactionDecision,
    /// What the host answered.
    pub host: HostAnswer,
    /// The final TVR.
    pub tvr: Tvr,
    /// The final TSI.
    pub tsi: Tsi,
    /// Cardholder verification (`None` when the AIP does not support it).
    pub cvm: Option<CvmOutcome>,
    /// Offline data authentication.
    pub oda: OdaResult,
    /// The step log.
    pub steps: Vec<StepLog>,
}

impl TransactionOutcome {
    /// The CVM the card asked for.
    pub fn cvm_asked(&self) -> Option<CvMethod> {
        self.cvm.and_then(|c| c.method_asked)
    }

    /// True when the host approved but the transaction ended declined: reverse it.
    pub fn needs_reversal(&self) -> bool {
        matches!(self.host, HostAnswer::Approved(_)) && !self.decision.is_approved()
    }
}

/// Why a transaction did not complete.
#[derive(Debug)]
pub enum TransactionError {
    /// The card or the channel failed before the host answered (nothing authorised).
    Card(EmvError),
    /// The card or the channel failed after the host answered (see the
    /// [module](super) documentation): reverse when the host approved.
    AfterHostResponse {
        /// The failure (its step and kind as the card step reported them).
        error: EmvError,
        /// What the host answered.
        host: HostAnswer,
        /// The authorisation request record (the ARQC), with the host's ARC.
        record: Box<TransactionRecord>,
    },
}

impl TransactionError {
    /// The card error.
    pub fn emv(&self) -> &EmvError {
        match self {
            TransactionError::Card(e) | TransactionError::AfterHostResponse { error: e, .. } => e,
        }
    }

    /// True when the host approved the authorisation and the card did not complete: the
    /// terminal service must send a reversal.
    pub fn needs_reversal(&self) -> bool {
        matches!(
            self,
            TransactionError::AfterHostResponse {
                host: HostAnswer::Approved(_),
                ..
            }
        )
    }
}

impl From<EmvError> for TransactionError {
    fn from(e: EmvError) -> Self {
        TransactionError::Card(e)
    }
}

impl fmt::Display for TransactionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransactionError::Card(e) => write!(f, "{e}"),
            TransactionError::AfterHostResponse { error, host, .. } => match host {
                HostAnswer::Approved(_) => {
                    write!(f, "{error} after the host approved: reversal needed")
                }
                _ => write!(f, "{error} after the host answered"),
            },
        }
    }
}

impl std::error::Error for TransactionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.emv())
    }
}

impl Fault for TransactionError {
    fn kind(&self) -> FaultKind {
        self.emv().kind()
    }
}
