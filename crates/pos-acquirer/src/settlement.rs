//! Settlement with the host: the batch's totals in a reconciliation request (0500), the batch
//! upload's advices (0320), and the host's answers.
//!
//! The day closes in two shapes:
//!
//! 1. **Balanced**: the terminal sends a 0500 (processing code `920000`) with the batch's
//!    totals; the host answers `00`: its totals agree, the batch is closed.
//! 2. **Out of balance**: the host answers `95`. The terminal uploads every transaction of
//!    the batch in a 0320 advice (the host answers each with its own view of that
//!    transaction, [`HostView`]), then sends a closing 0500 (`960000`); its answer lists the
//!    host's transactions of the batch the terminal did not upload.
//!
//! Fields (all in [`Dialect::default_pos`](crate::Dialect::default_pos), so a dialect is
//! data here as for the other messages):
//!
//! | field | 0500 | 0320 |
//! |---|---|---|
//! | 3 | `920000` (or `960000` after an upload) | the operation's processing code |
//! | 4, 49 | | amount and currency of the transaction |
//! | 7, 11, 41, 42 | transmission time, STAN, terminal and merchant | the same |
//! | 50 | the first currency's code | |
//! | 74 / 75 | credits (refunds) count / reversed credits count | |
//! | 76 / 77 | debits (sales, completions) count / reversed debits count | |
//! | 86 / 87 / 88 / 89 | the same four as amounts (n16, minor units) | |
//! | 97 | net settlement amount, `C` or `D` + 16 digits | |
//! | 60 | batch number, 6 digits | batch number |
//! | 63 | every currency's totals, [`CurrencyTotals::encode_all`] | the terminal's view: [`TerminalView::name`] |
//! | 90, 37, 38 | | the original's data elements, RRN, approval code |
//!
//! Answers carry field 63 too: the host's view of an advised transaction
//! ([`HostView::encode`]), and, in the closing 0510, the host's transactions not uploaded
//! ([`HostOnly::encode_all`]).

use std::fmt;
use std::time::Duration;

use crate::acquirer::{AcquirerError, Operation, OriginalData};

/// Processing code of a reconciliation request (field 3).
pub const SETTLE_CODE: &str = "920000";
/// Processing code of the closing reconciliation request after a batch upload (field 3).
pub const SETTLE_AFTER_UPLOAD_CODE: &str = "960000";
/// Response code: the host's totals agree, the batch is closed.
pub const BALANCED: &str = "00";
/// Response code: the host's totals differ (reconcile error): upload the batch.
pub const OUT_OF_BALANCE: &str = "95";

/// A count and an amount in minor units.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct CountAmount {
    /// How many.
    pub count: u64,
    /// Their amounts summed, minor units.
    pub amount: u64,
}

impl CountAmount {
    /// Add one transaction of `amount`.
    pub fn add(&mut self, amount: u64) {
        self.count += 1;
        self.amount = self.amount.saturating_add(amount);
    }
}

/// The totals of one currency of a batch.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct CurrencyTotals {
    /// ISO 4217 numeric currency.
    pub currency: u16,
    /// Debits that stand: approved sales and completions, not voided or reversed.
    pub debits: CountAmount,
    /// Credits that stand: approved refunds, not voided or reversed.
    pub credits: CountAmount,
    /// Debits that were reversed after the request left.
    pub debit_reversals: CountAmount,
    /// Credits that were reversed after the request left.
    pub credit_reversals: CountAmount,
    /// Voids that stand (each cancels an earlier debit or credit of the batch).
    pub voids: CountAmount,
}

impl CurrencyTotals {
    /// Empty totals for `currency`.
    pub fn new(currency: u16) -> CurrencyTotals {
        CurrencyTotals {
            currency,
            ..CurrencyTotals::default()
        }
    }

    /// Debits minus credits, minor units.
    pub fn net(&self) -> i64 {
        let d = i64::try_from(self.debits.amount).unwrap_or(i64::MAX);
        let c = i64::try_from(self.credits.amount).unwrap_or(i64::MAX);
        d.saturating_sub(c)
    }

    /// Whether the money agrees: debits and credits (counts and amounts). Reversals and
    /// voids are informative: a reversal whose original never reached the host is not a
    /// difference, and a void only moves its original out of the debits.
    pub fn agrees_with(&self, other: &CurrencyTotals) -> bool {
        self.currency == other.currency
            && self.debits == other.debits
            && self.credits == other.credits
    }

    fn encode(&self) -> String {
        let p = |c: &CountAmount| format!("{}/{}", c.count, c.amount);
        format!(
            "{:03}:{},{},{},{},{}",
            self.currency,
            p(&self.debits),
            p(&self.credits),
            p(&self.debit_reversals),
            p(&self.credit_reversals),
            p(&self.voids)
        )
    }

    /// Field 63 of a 0500: `CCC:d/D,c/C,dr/DR,cr/CR,v/V` per currency (count/amount), `;`
    /// between currencies.
    pub fn encode_all(all: &[CurrencyTotals]) -> String {
        all.iter()
            .map(CurrencyTotals::encode)
            .collect::<Vec<_>>()
            .join(";")
    }

    /// Parse [`CurrencyTotals::encode_all`]'s text. `None` when it is not that shape.
    pub fn decode_all(text: &str) -> Option<Vec<CurrencyTotals>> {
        if text.is_empty() {
            return Some(Vec::new());
        }
        text.split(';')
            .map(|part| {
                let (cur, rest) = part.split_once(':')?;
                let pairs: Vec<CountAmount> = rest
                    .split(',')
                    .map(|p| {
                        let (c, a) = p.split_once('/')?;
                        Some(CountAmount {
                            count: c.parse().ok()?,
                            amount: a.parse().ok()?,
                        })
                    })
                    .collect::<Option<_>>()?;
                let [debits, credits, debit_reversals, credit_reversals, voids] =
                    <[CountAmount; 5]>::try_from(pairs).ok()?;
                Some(CurrencyTotals {
                    currency: cur.parse().ok()?,
                    debits,
                    credits,
                    debit_reversals,
                    credit_reversals,
                    voids,
                })
            })
            .collect()
    }
}

/// A reconciliation request (0500).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    /// The batch being closed.
    pub batch: u32,
    /// STAN of this message.
    pub stan: u32,
    /// Transmission date and time `MMDDhhmmss`, UTC.
    pub transmission_time: String,
    /// The terminal's totals, one entry per currency of the batch (at least one).
    pub totals: Vec<CurrencyTotals>,
    /// The closing request after a batch upload (processing code `960000`).
    pub after_upload: bool,
}

/// What the terminal recorded of a transaction it uploads (field 63 of a 0320).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminalView {
    /// Approved and standing (charged, or credited for a refund).
    Standing,
    /// Approved, then voided by a later void.
    Voided,
    /// Reversed, or being reversed (the terminal holds it as not charged).
    Reversed,
}

impl TerminalView {
    /// Stable snake_case name, as sent.
    pub fn name(self) -> &'static str {
        match self {
            TerminalView::Standing => "standing",
            TerminalView::Voided => "voided",
            TerminalView::Reversed => "reversed",
        }
    }

    /// The view of a name.
    pub fn from_name(name: &str) -> Option<TerminalView> {
        [
            TerminalView::Standing,
            TerminalView::Voided,
            TerminalView::Reversed,
        ]
        .into_iter()
        .find(|v| v.name() == name)
    }
}

/// A batch-upload advice (0320): one transaction of the batch as the terminal recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advice {
    /// The batch.
    pub batch: u32,
    /// STAN of this advice.
    pub stan: u32,
    /// Transmission date and time of this advice.
    pub transmission_time: String,
    /// The transaction's operation.
    pub operation: Operation,
    /// Its amount, minor units.
    pub amount: u64,
    /// ISO 4217 numeric currency.
    pub currency: u16,
    /// The transaction's own request (MTI, STAN, time, RRN, approval code).
    pub original: OriginalData,
    /// What the terminal recorded.
    pub view: TerminalView,
}

/// The host's state of an advised transaction (field 63 of a 0330).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostState {
    /// Approved and standing: the host charged (or credited) it.
    Standing,
    /// Voided.
    Voided,
    /// Reversed.
    Reversed,
    /// Declined.
    Declined,
    /// The host has no record of it.
    Unknown,
}

impl HostState {
    /// Stable snake_case name, as sent.
    pub fn name(self) -> &'static str {
        match self {
            HostState::Standing => "standing",
            HostState::Voided => "voided",
            HostState::Reversed => "reversed",
            HostState::Declined => "declined",
            HostState::Unknown => "unknown",
        }
    }

    /// The state of a name.
    pub fn from_name(name: &str) -> Option<HostState> {
        [
            HostState::Standing,
            HostState::Voided,
            HostState::Reversed,
            HostState::Declined,
            HostState::Unknown,
        ]
        .into_iter()
        .find(|v| v.name() == name)
    }

    /// Whether the host holds the money as moved (a void counts as not moved).
    pub fn charged(self) -> bool {
        self == HostState::Standing
    }
}

/// The host's view of one advised transaction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostView {
    /// Its state at the host.
    pub state: HostState,
    /// The amount the host recorded (0 when it has no record).
    pub amount: u64,
    /// The host's retrieval reference number (empty when it has no record).
    pub rrn: String,
}

impl HostView {
    /// `state,amount,rrn`.
    pub fn encode(&self) -> String {
        format!("{},{},{}", self.state.name(), self.amount, self.rrn)
    }

    /// Parse [`HostView::encode`]'s text.
    pub fn decode(text: &str) -> Option<HostView> {
        let mut it = text.splitn(3, ',');
        let state = HostState::from_name(it.next()?)?;
        let amount = it.next()?.parse().ok()?;
        let rrn = it.next().unwrap_or_default().to_string();
        Some(HostView { state, amount, rrn })
    }
}

/// A transaction the host holds as standing in the batch that the terminal did not upload
/// (from the closing 0510's field 63).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostOnly {
    /// The STAN the host recorded.
    pub stan: u32,
    /// Amount, minor units.
    pub amount: u64,
    /// The host's RRN.
    pub rrn: String,
    /// The operation's name (`sale`, `completion`, `refund`, `void`).
    pub operation: String,
}

impl HostOnly {
    /// `stan,amount,rrn,operation` per transaction, `;` between them.
    pub fn encode_all(all: &[HostOnly]) -> String {
        all.iter()
            .map(|h| format!("{},{},{},{}", h.stan, h.amount, h.rrn, h.operation))
            .collect::<Vec<_>>()
            .join(";")
    }

    /// Parse [`HostOnly::encode_all`]'s text. `None` when it is not that shape.
    pub fn decode_all(text: &str) -> Option<Vec<HostOnly>> {
        if text.is_empty() {
            return Some(Vec::new());
        }
        text.split(';')
            .map(|p| {
                let mut it = p.split(',');
                Some(HostOnly {
                    stan: it.next()?.parse().ok()?,
                    amount: it.next()?.parse().ok()?,
                    rrn: it.next()?.to_string(),
                    operation: it.next()?.to_string(),
                })
            })
            .collect()
    }
}

/// The host's answer to a 0500 or a 0320.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostReply {
    /// Response code (field 39): `00`, `95`, or another refusal.
    pub response_code: String,
    /// Field 63 of the answer, if any.
    pub text: Option<String>,
    /// Round-trip time.
    pub elapsed: Duration,
}

/// The outcome of a settlement exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleOutcome {
    /// The host answered (any response code).
    Answered(HostReply),
    /// Nothing left the terminal.
    NotSent(AcquirerError),
    /// The request left, no answer came.
    Unknown(AcquirerError),
    /// An answer came that cannot be trusted.
    BadResponse(AcquirerError),
}

impl fmt::Display for SettleOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettleOutcome::Answered(r) => write!(f, "answered {}", r.response_code),
            SettleOutcome::NotSent(e) => write!(f, "not sent: {e}"),
            SettleOutcome::Unknown(e) => write!(f, "no answer: {e}"),
            SettleOutcome::BadResponse(e) => write!(f, "bad answer: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_round_trip() {
        let mut t = CurrencyTotals::new(978);
        t.debits.add(1250);
        t.debits.add(300);
        t.credits.add(100);
        t.voids.add(300);
        let u = CurrencyTotals::new(840);
        let text = CurrencyTotals::encode_all(&[t, u]);
        assert_eq!(
            text,
            "978:2/1550,1/100,0/0,0/0,1/300;840:0/0,0/0,0/0,0/0,0/0"
        );
        assert_eq!(CurrencyTotals::decode_all(&text), Some(vec![t, u]));
        assert_eq!(t.net(), 1450);
        assert_eq!(CurrencyTotals::decode_all("978:1/2"), None);
        assert_eq!(CurrencyTotals::decode_all("x"), None);
    }

    #[test]
    fn host_texts_round_trip() {
        let v = HostView {
            state: HostState::Standing,
            amount: 1250,
            rrn: "000000000017".into(),
        };
        assert_eq!(HostView::decode(&v.encode()), Some(v));
        assert_eq!(HostView::decode("nonsense,1,2"), None);
        let h = vec![HostOnly {
            stan: 900001,
            amount: 4200,
            rrn: "000000000099".into(),
            operation: "sale".into(),
        }];
        assert_eq!(HostOnly::decode_all(&HostOnly::encode_all(&h)), Some(h));
        assert_eq!(HostOnly::decode_all(""), Some(vec![]));
        assert_eq!(HostOnly::decode_all("1,2"), None);
    }
}
