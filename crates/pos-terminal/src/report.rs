//! End-of-day report and dispute evidence, from the journal.

use serde::Serialize;

use pos_acquirer::Operation;

use crate::config::Config;
use crate::journal::{Journal, JournalError, State, Txn, TxnGroup};
use crate::time;

/// Count and sum of a group of transactions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// How many.
    pub count: u64,
    /// Sum, minor units.
    pub amount: u64,
}

impl Totals {
    fn add(&mut self, g: &TxnGroup) {
        self.count += g.count;
        self.amount = self.amount.saturating_add(g.amount);
    }
}

/// A transaction that needs attention, in brief.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Brief {
    /// Journal id.
    pub id: i64,
    /// Operation.
    pub operation: &'static str,
    /// State.
    pub state: State,
    /// Amount.
    pub amount: u64,
    /// Masked PAN.
    pub pan_masked: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Reversal attempts and rejections.
    pub reversal_attempts: u32,
    /// Rejections.
    pub reversal_rejections: u32,
    /// When it started.
    pub created: String,
}

impl From<&Txn> for Brief {
    fn from(t: &Txn) -> Self {
        Brief {
            id: t.id,
            operation: t.kind.name(),
            state: t.state,
            amount: t.amount,
            pan_masked: t.pan_masked.clone(),
            reason: t.reason.clone(),
            reversal_attempts: t.reversal_attempts,
            reversal_rejections: t.reversal_rejections,
            created: time::human(t.created_ms),
        }
    }
}

/// End-of-day totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Start of the period (ms since the epoch).
    pub since_ms: i64,
    /// Sales and completions that stand (completed or receipt owed, not voided).
    pub sales: Totals,
    /// Refunds that stand.
    pub refunds: Totals,
    /// Voids approved.
    pub voids: Totals,
    /// Pre-authorizations approved and not yet completed (holds).
    pub open_preauths: Totals,
    /// Declined.
    pub declined: Totals,
    /// Aborted (nothing charged).
    pub aborted: Totals,
    /// Reversed.
    pub reversed: Totals,
    /// Net: sales minus refunds.
    pub net: i64,
    /// Reversals still to be sent.
    pub reversal_pending: Vec<Brief>,
    /// Reversals the host keeps rejecting: call the acquirer.
    pub reversal_stuck: Vec<Brief>,
    /// Receipts owed.
    pub receipts_owed: Vec<Brief>,
    /// Transactions still in flight (only while the service is running one).
    pub in_flight: Vec<Brief>,
}

/// The states a report lists whatever the transaction's age: unresolved reversals, owed
/// receipts, and whatever is still in flight (every state but the four final ones).
pub(crate) fn unresolved_states() -> Vec<State> {
    State::ALL
        .into_iter()
        .filter(|s| {
            !matches!(
                s,
                State::Completed | State::Declined | State::Aborted | State::Reversed
            )
        })
        .collect()
}

/// The report over transactions created since `since_ms`, plus every unresolved reversal and
/// owed receipt whatever its age (they are never dropped from a report).
///
/// Reads only the period's transactions (counted in SQL, [`Journal::groups_since`]) and the
/// unresolved ones (by state): the day's report costs the same on a journal of years as on
/// a new one.
///
/// # Errors
/// [`JournalError`].
pub fn report(journal: &Journal, since_ms: i64) -> Result<Report, JournalError> {
    let mut r = Report {
        since_ms,
        ..Report::default()
    };
    for t in journal.in_states(&unresolved_states())? {
        match t.state {
            State::ReversalPending => r.reversal_pending.push(Brief::from(&t)),
            State::ReversalStuck => r.reversal_stuck.push(Brief::from(&t)),
            State::ReceiptOwed => r.receipts_owed.push(Brief::from(&t)),
            _ => r.in_flight.push(Brief::from(&t)),
        }
    }
    for g in journal.groups_since(since_ms)? {
        match g.state {
            State::Declined => r.declined.add(&g),
            State::Aborted => r.aborted.add(&g),
            State::Reversed => r.reversed.add(&g),
            _ => {}
        }
        if !matches!(g.state, State::Completed | State::ReceiptOwed) {
            continue;
        }
        match g.kind {
            Operation::Sale | Operation::Completion if !g.voided => r.sales.add(&g),
            Operation::Refund if !g.voided => r.refunds.add(&g),
            Operation::Void => r.voids.add(&g),
            Operation::PreAuth if !g.completed => r.open_preauths.add(&g),
            _ => {}
        }
    }
    r.net = i64::try_from(r.sales.amount).unwrap_or(i64::MAX)
        - i64::try_from(r.refunds.amount).unwrap_or(i64::MAX);
    Ok(r)
}

/// What happened to a transaction, in one sentence a merchant can read.
pub fn explain(t: &Txn) -> String {
    let amount = crate::receipt::money(t.amount);
    match t.state {
        State::Completed => format!("The {} of {amount} was approved and stands.", t.kind.name()),
        State::ReceiptOwed => format!(
            "The {} of {amount} was approved and stands; its receipt could not be printed and is owed.",
            t.kind.name()
        ),
        State::Declined => format!(
            "The {} of {amount} was declined; nothing was charged.",
            t.kind.name()
        ),
        State::Aborted => format!(
            "The {} of {amount} stopped before anything was authorized; nothing was charged.",
            t.kind.name()
        ),
        State::Reversed => format!(
            "The {} of {amount} did not complete; the authorization was reversed with the host \
             (after {} attempt(s)), so the customer is not charged. A hold may show on the \
             customer's statement until their bank releases it.",
            t.kind.name(),
            t.reversal_attempts
        ),
        State::ReversalPending => format!(
            "The {} of {amount} did not complete; a reversal is queued and being retried \
             ({} attempt(s) so far).",
            t.kind.name(),
            t.reversal_attempts
        ),
        State::ReversalStuck => format!(
            "The {} of {amount} did not complete; the host rejected the reversal {} time(s). \
             The customer may have been charged: give this document to the acquirer.",
            t.kind.name(),
            t.reversal_rejections
        ),
        s => format!("The {} of {amount} is in flight ({s}).", t.kind.name()),
    }
}

/// The dispute evidence of one transaction: one JSON document with the transaction (masked),
/// its state timeline, device events and faults, and the host messages with timings and
/// reversal attempts.
///
/// # Errors
/// [`JournalError`] (e.g. `NotFound`).
pub fn evidence(
    journal: &Journal,
    config: &Config,
    id: i64,
) -> Result<serde_json::Value, JournalError> {
    let t = journal.get(id)?;
    let timeline = journal.timeline(id)?;
    let events = journal.events(Some(id))?;
    let host = journal.host_messages(id)?;
    let reversal_attempts: Vec<_> = host.iter().filter(|m| m.purpose == "reversal").collect();
    Ok(serde_json::json!({
        "generated": time::human(crate::journal::now_ms()),
        "terminal_id": config.terminal_id,
        "merchant_id": config.merchant_id,
        "merchant": config.merchant_name,
        "summary": explain(&t),
        "transaction": t,
        "timeline": timeline.iter().map(|e| serde_json::json!({
            "at": time::human(e.at_ms), "at_ms": e.at_ms, "state": e.state, "note": e.note,
        })).collect::<Vec<_>>(),
        "events": events,
        "host_messages": host,
        "reversal": {
            "needed": t.reversal_reason.is_some(),
            "reason": t.reversal_reason,
            "attempts": t.reversal_attempts,
            "rejections": t.reversal_rejections,
            "messages": reversal_attempts,
            "outcome": match t.state {
                State::Reversed => "reversed",
                State::ReversalPending => "pending",
                State::ReversalStuck => "stuck",
                _ if t.reversal_reason.is_some() => "unknown",
                _ => "not needed",
            },
        },
    }))
}
