//! The `Acquirer` trait: what the terminal service asks of the host, and the typed outcomes.
//!
//! The outcome says what the terminal must do next, which is the whole point:
//!
//! | outcome | meaning | the terminal |
//! |---|---|---|
//! | [`Outcome::Approved`] | the host answered `00` (or an approval code) | goes on (second GENERATE AC, receipt) |
//! | [`Outcome::Declined`] | the host answered with a refusal code | ends declined; nothing to undo |
//! | [`Outcome::NotSent`] | refused before any byte left (connect refused / timed out, encode error) | ends aborted; nothing to undo |
//! | [`Outcome::Unknown`] | the request left but no valid answer came (timeout, connection lost) | **must reverse** |
//! | [`Outcome::BadResponse`] | an answer came that cannot be trusted (format, MTI, STAN or MAC mismatch) | **must reverse** |

use std::fmt;
use std::time::Duration;

use pos_hal::{Fault, FaultKind, Sensitive};

use crate::Mti;
use crate::settlement::{Advice, Reconciliation, SettleOutcome};

/// What kind of financial operation a [`Request`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// A purchase: 0200, processing code `000000`.
    Sale,
    /// A pre-authorization: 0100, processing code `000000`.
    PreAuth,
    /// Completion of a pre-authorization: 0200, processing code `000000`, with the original's
    /// data in field 90 and its approval code in field 38.
    Completion,
    /// Void of an earlier sale: 0200, processing code `020000`, original data in field 90.
    Void,
    /// A refund: 0200, processing code `200000`.
    Refund,
}

impl Operation {
    /// Stable snake_case name (`sale`, `preauth`, `completion`, `void`, `refund`).
    pub fn name(self) -> &'static str {
        match self {
            Operation::Sale => "sale",
            Operation::PreAuth => "preauth",
            Operation::Completion => "completion",
            Operation::Void => "void",
            Operation::Refund => "refund",
        }
    }

    /// The request MTI.
    pub fn mti(self) -> Mti {
        match self {
            Operation::PreAuth => Mti::AUTH_REQUEST,
            _ => Mti::FINANCIAL_REQUEST,
        }
    }

    /// The processing code (field 3).
    pub fn processing_code(self) -> &'static str {
        match self {
            Operation::Sale | Operation::PreAuth | Operation::Completion => "000000",
            Operation::Void => "020000",
            Operation::Refund => "200000",
        }
    }
}

/// How the card data was captured (field 22, POS entry mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryMode {
    /// Chip read (`051`).
    Chip,
    /// Magnetic stripe read, card without a chip (`901`).
    Swipe,
    /// Magnetic stripe after a failed chip read (`801`).
    FallbackSwipe,
    /// No card: an operation on an earlier transaction (void, completion) (`012`).
    Reference,
}

impl EntryMode {
    /// Field 22 value.
    pub fn code(self) -> &'static str {
        match self {
            EntryMode::Chip => "051",
            EntryMode::Swipe => "901",
            EntryMode::FallbackSwipe => "801",
            EntryMode::Reference => "012",
        }
    }

    /// Stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            EntryMode::Chip => "chip",
            EntryMode::Swipe => "swipe",
            EntryMode::FallbackSwipe => "fallback_swipe",
            EntryMode::Reference => "reference",
        }
    }
}

/// Card data for one request. `Debug` shows nothing sensitive.
#[derive(Clone, PartialEq, Eq)]
pub struct CardData {
    /// The PAN, ASCII digits (field 2).
    pub pan: Sensitive,
    /// Expiry `YYMM` (field 14).
    pub expiry: Option<String>,
    /// Card sequence number (field 23).
    pub pan_sequence: Option<u8>,
    /// Track 2 (equivalent) data, ASCII digits with `=` (field 35). Never kept after the
    /// request: a reversal carries PAN and expiry instead.
    pub track2: Option<Sensitive>,
    /// How the card was read.
    pub entry_mode: EntryMode,
    /// EMV ICC data (field 55), TLV.
    pub icc_data: Option<Vec<u8>>,
}

impl fmt::Debug for CardData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pan = std::str::from_utf8(self.pan.expose()).map(pos_hal::mask_pan);
        f.debug_struct("CardData")
            .field("pan", &pan.unwrap_or_default())
            .field("expiry_present", &self.expiry.is_some())
            .field("pan_sequence", &self.pan_sequence)
            .field("track2_present", &self.track2.is_some())
            .field("entry_mode", &self.entry_mode)
            .field("icc_data_len", &self.icc_data.as_ref().map(Vec::len))
            .finish()
    }
}

/// The identifiers of an earlier exchange, for completions, voids and reversals (field 90,
/// and fields 37/38 when known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalData {
    /// The original request's MTI.
    pub mti: Mti,
    /// The original STAN.
    pub stan: u32,
    /// The original transmission date and time `MMDDhhmmss`.
    pub transmission_time: String,
    /// The retrieval reference number the host gave, if it answered.
    pub rrn: Option<String>,
    /// The approval code the host gave, if it approved.
    pub auth_code: Option<String>,
}

/// A financial request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What is asked.
    pub operation: Operation,
    /// Amount in minor units (field 4).
    pub amount: u64,
    /// ISO 4217 numeric currency (field 49).
    pub currency: u16,
    /// Systems trace audit number, 1..=999999 (field 11), unique per terminal per day.
    pub stan: u32,
    /// Transmission date and time `MMDDhhmmss`, UTC (field 7).
    pub transmission_time: String,
    /// Local time `hhmmss` (field 12) and date `MMDD` (field 13).
    pub local_time: (String, String),
    /// The card (absent for a void or completion by reference).
    pub card: Option<CardData>,
    /// The earlier transaction (completion, void).
    pub original: Option<OriginalData>,
    /// The terminal's open batch, sent in field 60 (6 digits) when known.
    pub batch: Option<u32>,
}

/// Why a reversal is sent (sent in field 25 as the POS condition / reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReversalReason {
    /// No answer, or an answer that could not be trusted (`Unknown`, `BadResponse`).
    NoValidResponse,
    /// The card declined or failed after the host approved (second GENERATE AC, removal).
    CardDeclinedAfterApproval,
    /// A device fault or a crash stopped the transaction after the host approved.
    NotCompleted,
    /// The merchant cancelled (receipt-required policy, customer walked away).
    Cancelled,
}

impl ReversalReason {
    /// Stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            ReversalReason::NoValidResponse => "no_valid_response",
            ReversalReason::CardDeclinedAfterApproval => "card_declined_after_approval",
            ReversalReason::NotCompleted => "not_completed",
            ReversalReason::Cancelled => "cancelled",
        }
    }

    /// Field 25 value sent with the reversal.
    pub fn condition_code(self) -> &'static str {
        match self {
            ReversalReason::NoValidResponse => "68",
            ReversalReason::CardDeclinedAfterApproval => "06",
            ReversalReason::NotCompleted => "06",
            ReversalReason::Cancelled => "17",
        }
    }
}

/// A reversal (0400, 0401 when repeated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reversal {
    /// The operation being reversed (sale, pre-auth, completion, refund, void).
    pub operation: Operation,
    /// The amount being reversed, minor units.
    pub amount: u64,
    /// ISO 4217 numeric currency.
    pub currency: u16,
    /// A fresh STAN for this reversal message.
    pub stan: u32,
    /// Transmission date and time of this message `MMDDhhmmss`.
    pub transmission_time: String,
    /// PAN and expiry of the original (never track data).
    pub card: Option<CardData>,
    /// The original request.
    pub original: OriginalData,
    /// Why.
    pub reason: ReversalReason,
    /// True from the second attempt on: sent as 0401 (repeat).
    pub repeat: bool,
}

/// The host's approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// Response code (field 39), `00` or another approval code (`10` partial, `11` VIP...).
    pub response_code: String,
    /// Approval code (field 38), may be empty for a reversal answer.
    pub auth_code: String,
    /// Retrieval reference number (field 37).
    pub rrn: String,
    /// Issuer data from field 55 of the answer (`91`, `71`, `72` TLV), may be empty.
    pub issuer_data: Vec<u8>,
    /// Round-trip time.
    pub elapsed: Duration,
}

/// The host's refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decline {
    /// Response code (field 39).
    pub response_code: String,
    /// A plain reason for people ([`response_reason`]).
    pub reason: &'static str,
    /// Retrieval reference number, if the host sent one.
    pub rrn: Option<String>,
    /// Issuer data from field 55, may be empty.
    pub issuer_data: Vec<u8>,
    /// Round-trip time.
    pub elapsed: Duration,
}

/// The outcome of one exchange with the host. See the [module](self) table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Approved.
    Approved(Approval),
    /// Declined: nothing to undo.
    Declined(Decline),
    /// Nothing left the terminal: nothing to undo.
    NotSent(AcquirerError),
    /// The request left, no valid answer came: must be reversed.
    Unknown(AcquirerError),
    /// An answer came that cannot be trusted: must be reversed.
    BadResponse(AcquirerError),
}

impl Outcome {
    /// True for [`Outcome::Unknown`] and [`Outcome::BadResponse`]: the host may have
    /// approved, so the terminal must reverse.
    pub fn must_reverse(&self) -> bool {
        matches!(self, Outcome::Unknown(_) | Outcome::BadResponse(_))
    }

    /// Stable snake_case name (`approved`, `declined`, `not_sent`, `unknown`, `bad_response`).
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Approved(_) => "approved",
            Outcome::Declined(_) => "declined",
            Outcome::NotSent(_) => "not_sent",
            Outcome::Unknown(_) => "unknown",
            Outcome::BadResponse(_) => "bad_response",
        }
    }
}

/// A plain-language reason for an ISO 8583 (1987) response code, for people.
pub fn response_reason(code: &str) -> &'static str {
    match code {
        "00" => "approved",
        "01" => "refer to card issuer",
        "03" => "invalid merchant",
        "04" => "pick up card",
        "05" => "do not honour",
        "08" => "honour with identification",
        "10" => "approved for partial amount",
        "11" => "approved (VIP)",
        "12" => "invalid transaction",
        "13" => "invalid amount",
        "14" => "invalid card number",
        "15" => "no such issuer",
        "19" => "re-enter transaction",
        "25" => "unable to locate original transaction",
        "30" => "format error",
        "41" => "lost card, pick up",
        "43" => "stolen card, pick up",
        "51" => "insufficient funds",
        "54" => "expired card",
        "55" => "incorrect PIN",
        "57" => "transaction not permitted to cardholder",
        "58" => "transaction not permitted to terminal",
        "59" => "suspected fraud",
        "61" => "exceeds withdrawal amount limit",
        "62" => "restricted card",
        "65" => "exceeds withdrawal frequency limit",
        "75" => "allowable number of PIN tries exceeded",
        "76" => "unable to locate previous message",
        "91" => "issuer or switch inoperative",
        "92" => "routing error",
        "94" => "duplicate transmission",
        "96" => "system malfunction",
        _ => "declined (unlisted response code)",
    }
}

/// True for response codes that mean approved (`00`, `08`, `10`, `11`).
pub fn is_approval_code(code: &str) -> bool {
    matches!(code, "00" | "08" | "10" | "11")
}

/// What the acquirer link reports as it goes, for the journal's evidence: one call when the
/// request's bytes have left ([`WireEvent::Sent`]), one when an answer arrived or the
/// exchange failed. Summaries are masked (PAN first 6 / last 4, no track, PIN or ICC bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireEvent {
    /// The request was written to the connection.
    Sent {
        /// Its MTI.
        mti: Mti,
        /// Its STAN.
        stan: u32,
        /// Masked summary of the fields (the `Debug` of the message).
        summary: String,
    },
    /// An answer was read.
    Received {
        /// Its MTI.
        mti: Mti,
        /// Its response code (field 39), if any.
        response_code: Option<String>,
        /// Masked summary.
        summary: String,
        /// Time since the request was sent.
        elapsed: Duration,
    },
    /// The exchange failed (connect, send, receive, decode).
    Failed {
        /// What happened.
        error: AcquirerError,
        /// Whether the request had left.
        after_send: bool,
    },
}

/// What went wrong talking to the host. Never carries card data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AcquirerError {
    /// The host refused the connection (nothing listening, firewall reject).
    #[error("connection to {address} refused")]
    Refused {
        /// host:port.
        address: String,
    },
    /// Connecting took longer than the connect timeout.
    #[error("connecting to {address} timed out after {timeout:?}")]
    ConnectTimeout {
        /// host:port.
        address: String,
        /// The limit.
        timeout: Duration,
    },
    /// No answer within the response timeout.
    #[error("no answer within {timeout:?}")]
    ResponseTimeout {
        /// The limit.
        timeout: Duration,
    },
    /// The host closed the connection, or another I/O error.
    #[error("connection lost: {detail}")]
    ConnectionLost {
        /// What the OS said.
        detail: String,
    },
    /// The answer did not decode, or did not match the request (MTI, STAN, terminal id).
    #[error("bad response: {detail}")]
    BadResponse {
        /// What is wrong (never field values).
        detail: String,
    },
    /// The request could not be built (a value does not fit the dialect).
    #[error("cannot build the request: {detail}")]
    Encode {
        /// What is wrong.
        detail: String,
    },
    /// A bad address or configuration.
    #[error("bad acquirer configuration: {detail}")]
    Config {
        /// What is wrong.
        detail: String,
    },
}

impl Fault for AcquirerError {
    fn kind(&self) -> FaultKind {
        match self {
            AcquirerError::Refused { .. } => FaultKind::NotFound,
            AcquirerError::ConnectTimeout { .. } | AcquirerError::ResponseTimeout { .. } => {
                FaultKind::Timeout
            }
            AcquirerError::ConnectionLost { .. } => FaultKind::Disconnected,
            AcquirerError::BadResponse { .. } => FaultKind::Protocol,
            AcquirerError::Encode { .. } | AcquirerError::Config { .. } => FaultKind::InvalidInput,
        }
    }
}

/// The host link, as the terminal service sees it.
///
/// Every method is blocking and bounded: at most the connect timeout plus the response
/// timeout of the implementation's configuration. `observe` is called with
/// [`WireEvent::Sent`] as soon as the request's bytes have left (the terminal journals
/// this, and fault-injection hooks run there), then with `Received` or `Failed`. An
/// implementation never panics on network bytes and never returns card data in errors.
pub trait Acquirer {
    /// Authorize a purchase (0200).
    ///
    /// Errors are outcomes: [`Outcome::NotSent`] when nothing left, [`Outcome::Unknown`]
    /// on a response timeout or lost connection, [`Outcome::BadResponse`] for an answer that
    /// does not decode or match.
    fn authorize(&mut self, request: &Request, observe: &mut dyn FnMut(&WireEvent)) -> Outcome;

    /// Pre-authorize (0100). Outcomes as [`Acquirer::authorize`].
    fn pre_authorize(&mut self, request: &Request, observe: &mut dyn FnMut(&WireEvent)) -> Outcome;

    /// Complete a pre-authorization (0200 with field 90). Outcomes as
    /// [`Acquirer::authorize`].
    fn complete(&mut self, request: &Request, observe: &mut dyn FnMut(&WireEvent)) -> Outcome;

    /// Void an earlier sale (0200, processing code 02). Outcomes as [`Acquirer::authorize`].
    fn void(&mut self, request: &Request, observe: &mut dyn FnMut(&WireEvent)) -> Outcome;

    /// Refund (0200, processing code 20). Outcomes as [`Acquirer::authorize`].
    fn refund(&mut self, request: &Request, observe: &mut dyn FnMut(&WireEvent)) -> Outcome;

    /// Reverse an earlier request (0400, or 0401 when `reversal.repeat`).
    ///
    /// [`Outcome::Approved`] means the host took the reversal (response `00`, or `25`
    /// "unable to locate original": nothing to reverse); [`Outcome::Declined`] is a host
    /// rejection (uses up the retry budget); `NotSent` / `Unknown` / `BadResponse` mean it
    /// must be sent again (and do not use up the budget).
    fn reverse(&mut self, reversal: &Reversal, observe: &mut dyn FnMut(&WireEvent)) -> Outcome;

    /// Network echo test (0800, code 301): the round-trip time.
    ///
    /// # Errors
    /// [`AcquirerError`]: refused, connect or response timeout, connection lost, bad
    /// response.
    fn echo(&mut self) -> Result<Duration, AcquirerError>;

    /// Reconcile a batch (0500): the host answers `00` (balanced) or `95` (out of balance,
    /// upload the batch). See [`crate::settlement`].
    ///
    /// The default answers [`SettleOutcome::NotSent`]: a host link that cannot settle says
    /// so, it never pretends a batch balanced.
    fn reconcile(
        &mut self,
        request: &Reconciliation,
        observe: &mut dyn FnMut(&WireEvent),
    ) -> SettleOutcome {
        let _ = (request, observe);
        SettleOutcome::NotSent(AcquirerError::Config {
            detail: "this host link does not support settlement (0500)".into(),
        })
    }

    /// Upload one transaction of a batch (0320 advice); the answer's field 63 is the host's
    /// view of it. The default answers [`SettleOutcome::NotSent`], as
    /// [`Acquirer::reconcile`].
    fn advise(&mut self, advice: &Advice, observe: &mut dyn FnMut(&WireEvent)) -> SettleOutcome {
        let _ = (advice, observe);
        SettleOutcome::NotSent(AcquirerError::Config {
            detail: "this host link does not support batch upload (0320)".into(),
        })
    }

    /// Dispatch a request by its operation.
    fn send(&mut self, request: &Request, observe: &mut dyn FnMut(&WireEvent)) -> Outcome {
        match request.operation {
            Operation::Sale => self.authorize(request, observe),
            Operation::PreAuth => self.pre_authorize(request, observe),
            Operation::Completion => self.complete(request, observe),
            Operation::Void => self.void(request, observe),
            Operation::Refund => self.refund(request, observe),
        }
    }
}

impl<A: Acquirer + ?Sized> Acquirer for Box<A> {
    fn authorize(&mut self, request: &Request, observe: &mut dyn FnMut(&WireEvent)) -> Outcome {
        (**self).authorize(request, observe)
    }
    fn pre_authorize(&mut self, request: &Request, observe: &mut dyn FnMut(&WireEvent)) -> Outcome {
        (**self).pre_authorize(request, observe)
    }
    fn complete(&mut self, request: &Request, observe: &mut dyn FnMut(&WireEvent)) -> Outcome {
        (**self).complete(request, observe)
    }
    fn void(&mut self, request: &Request, observe: &mut dyn FnMut(&WireEvent)) -> Outcome {
        (**self).void(request, observe)
    }
    fn refund(&mut self, request: &Request, observe: &mut dyn FnMut(&WireEvent)) -> Outcome {
        (**self).refund(request, observe)
    }
    fn reverse(&mut self, reversal: &Reversal, observe: &mut dyn FnMut(&WireEvent)) -> Outcome {
        (**self).reverse(reversal, observe)
    }
    fn echo(&mut self) -> Result<Duration, AcquirerError> {
        (**self).echo()
    }
    fn reconcile(
        &mut self,
        request: &Reconciliation,
        observe: &mut dyn FnMut(&WireEvent),
    ) -> SettleOutcome {
        (**self).reconcile(request, observe)
    }
    fn advise(&mut self, advice: &Advice, observe: &mut dyn FnMut(&WireEvent)) -> SettleOutcome {
        (**self).advise(advice, observe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_data_debug_is_masked() {
        let c = CardData {
            pan: Sensitive::new(b"5413330089600044".to_vec()),
            expiry: Some("2512".into()),
            pan_sequence: Some(1),
            track2: Some(Sensitive::new(b"5413330089600044=2512201".to_vec())),
            entry_mode: EntryMode::Chip,
            icc_data: Some(vec![0x9f, 0x26, 1, 2]),
        };
        let s = format!("{c:?}");
        assert!(!s.contains("5413330089600044"), "{s}");
        assert!(!s.contains("2512"), "{s}");
        assert!(s.contains("541333******0044"), "{s}");
    }

    #[test]
    fn outcomes_that_need_reversal() {
        let e = AcquirerError::ResponseTimeout {
            timeout: Duration::from_secs(1),
        };
        assert!(Outcome::Unknown(e.clone()).must_reverse());
        assert!(Outcome::BadResponse(e.clone()).must_reverse());
        assert!(!Outcome::NotSent(e).must_reverse());
        assert_eq!(response_reason("51"), "insufficient funds");
        assert!(is_approval_code("00") && !is_approval_code("05"));
        assert_eq!(Operation::Refund.processing_code(), "200000");
        assert_eq!(Operation::PreAuth.mti(), Mti::AUTH_REQUEST);
    }
}
