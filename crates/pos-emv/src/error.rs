//! The error of the transaction flow: which step failed ([`Step`]) and why ([`Cause`]).
//!
//! Errors never carry card data (no PAN, no track data, no record bytes): only the step,
//! status words, tags and lengths.

use std::fmt;

use pos_hal::{Fault, FaultKind};

use crate::apdu::ExchangeError;
use crate::tlv::{Tag, TlvError};

/// The step of the transaction flow an error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// SELECT of the Payment System Environment `1PAY.SYS.DDF01`.
    SelectPse,
    /// READ RECORD of the PSE directory.
    ReadDirectory {
        /// SFI of the directory file.
        sfi: u8,
        /// Record number.
        record: u8,
    },
    /// SELECT commands of the list-of-AIDs method, while building the candidate list.
    ListApplications,
    /// Final selection: choosing a candidate and selecting it.
    SelectApplication,
    /// GET PROCESSING OPTIONS.
    Gpo,
    /// READ RECORD of the application data.
    ReadRecord {
        /// SFI of the file.
        sfi: u8,
        /// Record number.
        record: u8,
    },
    /// Checks of the application data once every record is read (mandatory data).
    CheckData,
    /// INTERNAL AUTHENTICATE (dynamic data authentication).
    InternalAuthenticate,
    /// GET DATA (e.g. the ATC and last online ATC for velocity checks).
    GetData,
    /// The first GENERATE AC.
    GenerateAc1,
    /// EXTERNAL AUTHENTICATE (issuer authentication).
    ExternalAuthenticate,
    /// An issuer script command (`71` before, `72` after the final GENERATE AC).
    IssuerScript,
    /// The second GENERATE AC.
    GenerateAc2,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::SelectPse => f.write_str("SELECT PSE"),
            Step::ReadDirectory { sfi, record } => {
                write!(f, "READ RECORD directory SFI {sfi} record {record}")
            }
            Step::ListApplications => f.write_str("SELECT (list of AIDs)"),
            Step::SelectApplication => f.write_str("application selection"),
            Step::Gpo => f.write_str("GET PROCESSING OPTIONS"),
            Step::ReadRecord { sfi, record } => {
                write!(f, "READ RECORD SFI {sfi} record {record}")
            }
            Step::CheckData => f.write_str("application data check"),
            Step::InternalAuthenticate => f.write_str("INTERNAL AUTHENTICATE"),
            Step::GetData => f.write_str("GET DATA"),
            Step::GenerateAc1 => f.write_str("first GENERATE AC"),
            Step::ExternalAuthenticate => f.write_str("EXTERNAL AUTHENTICATE"),
            Step::IssuerScript => f.write_str("issuer script"),
            Step::GenerateAc2 => f.write_str("second GENERATE AC"),
        }
    }
}

/// Why a step failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Cause {
    /// The command could not be exchanged: the card channel failed (card removed, mute card,
    /// reader gone), or the transport answer was malformed. `kind` is the exchange error's
    /// own kind.
    Exchange {
        /// The fault kind of the exchange error ([`ExchangeError::kind`]).
        kind: FaultKind,
        /// The exchange error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The card answered status words the step cannot go on with.
    Status {
        /// SW1 SW2.
        sw: u16,
    },
    /// SELECT of the PSE answered `6A81`: the card is blocked or does not support SELECT;
    /// the session ends.
    CardBlocked,
    /// No candidate application is left (none supported, all blocked or all removed).
    NoApplication,
    /// The chooser chose no application (cardholder cancelled or nothing acceptable).
    NotChosen,
    /// GET PROCESSING OPTIONS answered `6985`: the application cannot be used for this
    /// transaction; remove it from the candidate list and select again
    /// ([`EmvError::is_reselect`]).
    ConditionsNotSatisfied,
    /// Selection ended with no candidate left after these applications, each selected in
    /// turn, answered GET PROCESSING OPTIONS with `6985` (conditions of use not satisfied;
    /// EMV Book 1 12.4): the card has applications the terminal supports, but they refuse
    /// this transaction. Reported at [`Step::Gpo`].
    GpoRefused {
        /// The AIDs (ADF names) that answered `6985`, in the order they were tried.
        aids: Vec<Vec<u8>>,
    },
    /// The card's data is not valid BER-TLV.
    Tlv(TlvError),
    /// The card's data is TLV but not what the step expects (missing template, bad AFL, ...).
    Malformed {
        /// What is wrong (no card data).
        detail: &'static str,
    },
    /// A mandatory data object is missing from the application data.
    MissingData {
        /// The missing tag.
        tag: Tag,
    },
    /// A primitive data object appears more than once in the application data.
    DuplicateTag {
        /// The repeated tag.
        tag: Tag,
    },
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Exchange { source, .. } => write!(f, "{source}"),
            Cause::Status { sw } => write!(
                f,
                "card answered {sw:04X} ({})",
                crate::sw::meaning((sw >> 8) as u8, (sw & 0xFF) as u8)
            ),
            Cause::CardBlocked => f.write_str("card blocked or SELECT not supported (6A81)"),
            Cause::NoApplication => f.write_str("no supported application on the card"),
            Cause::NotChosen => f.write_str("no application chosen"),
            Cause::ConditionsNotSatisfied => {
                f.write_str("conditions of use not satisfied (6985): select another application")
            }
            Cause::GpoRefused { aids } => {
                let names: Vec<String> = aids
                    .iter()
                    .map(|a| a.iter().map(|b| format!("{b:02X}")).collect())
                    .collect();
                match names.as_slice() {
                    [one] => write!(
                        f,
                        "application {one} refused it with 6985 (conditions of use not satisfied) \
                         and the card has no other application this terminal supports"
                    ),
                    many => write!(
                        f,
                        "applications {} each refused it with 6985 (conditions of use not \
                         satisfied) and the card has no other application this terminal supports",
                        many.join(", ")
                    ),
                }
            }
            Cause::Tlv(e) => write!(f, "malformed card data: {e}"),
            Cause::Malformed { detail } => write!(f, "unexpected card data: {detail}"),
            Cause::MissingData { tag } => write!(f, "mandatory data object {tag} missing"),
            Cause::DuplicateTag { tag } => write!(f, "data object {tag} appears more than once"),
        }
    }
}

/// An error of the EMV transaction flow: the step and the cause.
///
/// [`Fault::kind`]: channel failures keep their own kind ([`FaultKind::CardRemoved`],
/// [`FaultKind::CardMute`], [`FaultKind::Disconnected`], ...); malformed card data is
/// [`FaultKind::Protocol`]; a card that works but cannot be used (blocked, no supported
/// application, refused status words) is [`FaultKind::CardUnsupported`].
#[derive(Debug)]
pub struct EmvError {
    step: Step,
    cause: Cause,
}

impl EmvError {
    /// An error at `step` for `cause`.
    pub fn new(step: Step, cause: Cause) -> Self {
        EmvError { step, cause }
    }

    /// The step that failed.
    pub fn step(&self) -> Step {
        self.step
    }

    /// Why it failed.
    pub fn cause(&self) -> &Cause {
        &self.cause
    }

    /// True when the application must be removed from the candidate list and selection run
    /// again (GET PROCESSING OPTIONS answered `6985`).
    pub fn is_reselect(&self) -> bool {
        matches!(self.cause, Cause::ConditionsNotSatisfied)
    }

    pub(crate) fn exchange<E: Fault + Send + Sync + 'static>(
        step: Step,
        e: ExchangeError<E>,
    ) -> Self {
        EmvError::new(
            step,
            Cause::Exchange {
                kind: e.kind(),
                source: Box::new(e),
            },
        )
    }

    pub(crate) fn status(step: Step, sw: u16) -> Self {
        EmvError::new(step, Cause::Status { sw })
    }

    pub(crate) fn tlv(step: Step, e: TlvError) -> Self {
        EmvError::new(step, Cause::Tlv(e))
    }

    pub(crate) fn malformed(step: Step, detail: &'static str) -> Self {
        EmvError::new(step, Cause::Malformed { detail })
    }
}

impl fmt::Display for EmvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.step, self.cause)
    }
}

impl std::error::Error for EmvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            Cause::Exchange { source, .. } => Some(source.as_ref()),
            Cause::Tlv(e) => Some(e),
            _ => None,
        }
    }
}

impl Fault for EmvError {
    fn kind(&self) -> FaultKind {
        match &self.cause {
            Cause::Exchange { kind, .. } => *kind,
            Cause::Tlv(_)
            | Cause::Malformed { .. }
            | Cause::MissingData { .. }
            | Cause::DuplicateTag { .. } => FaultKind::Protocol,
            Cause::Status { .. }
            | Cause::CardBlocked
            | Cause::NoApplication
            | Cause::NotChosen
            | Cause::ConditionsNotSatisfied
            | Cause::GpoRefused { .. } => FaultKind::CardUnsupported,
        }
    }
}
