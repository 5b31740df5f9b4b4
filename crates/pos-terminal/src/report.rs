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
    // The settlements that found a difference about it, each with its own evidence.
    let mut settlements = Vec::new();
    let mut seen = Vec::new();
    for d in journal.differences_of_txn(id)? {
        if !seen.contains(&d.settlement_id) {
            seen.push(d.settlement_id);
            settlements.push(settlement_evidence(journal, config, d.settlement_id)?);
        }
    }
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
        "batch": t.batch,
        "differences": journal.differences_of_txn(id)?,
        "settlements": settlements,
    }))
}

/// The evidence of a settlement: the settlement (batch, state, totals sent, receipt), its
/// log (every step and host message, masked), the batch upload item by item, and every
/// difference found.
///
/// # Errors
/// [`JournalError`] (e.g. `NotFound`).
pub fn settlement_evidence(
    journal: &Journal,
    config: &Config,
    id: i64,
) -> Result<serde_json::Value, JournalError> {
    let s = journal.settlement(id)?;
    Ok(serde_json::json!({
        "generated": time::human(crate::journal::now_ms()),
        "terminal_id": config.terminal_id,
        "merchant_id": config.merchant_id,
        "settlement": s,
        "started": time::human(s.created_ms),
        "log": journal.settlement_log(id)?.iter().map(|e| serde_json::json!({
            "at": time::human(e.at_ms), "at_ms": e.at_ms, "step": e.step, "note": e.note,
        })).collect::<Vec<_>>(),
        "upload": journal.upload_items(id)?,
        "differences": journal.differences(id)?,
    }))
}

/// The batch picture of a report: the open batch, the latest settlement and its
/// differences, and pre-authorizations still open with their age.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BatchReport {
    /// The open batch (new transactions belong to it).
    pub open_batch: u32,
    /// The latest settlement, if any.
    pub last_settlement: Option<crate::journal::Settlement>,
    /// A settlement not finished (a crash or an outage stopped it): `posctl settle`
    /// resumes it.
    pub unfinished_settlement: Option<crate::journal::Settlement>,
    /// The differences of the latest settlement.
    pub differences: Vec<crate::journal::Difference>,
    /// Approved pre-authorizations not completed, whatever their batch: they stay open
    /// across settlements until completed or expired.
    pub open_preauths: Vec<OpenPreauth>,
}

/// A pre-authorization still holding money on the card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenPreauth {
    /// Transaction id (complete it with `posctl complete ID AMOUNT`).
    pub id: i64,
    /// Amount held, minor units.
    pub amount: u64,
    /// Masked PAN.
    pub pan_masked: Option<String>,
    /// The batch it was authorized in.
    pub batch: Option<u32>,
    /// Age in whole days.
    pub age_days: i64,
    /// When the hold expires at the issuer (`PREAUTH_EXPIRY_DAYS` after it), and whether it
    /// has.
    pub expires: String,
    /// Past its expiry: the issuer has released the hold; a completion may be declined.
    pub expired: bool,
}

/// Days a pre-authorization's hold lasts at the issuer, as the report shows it (schemes
/// use 7 to 30 days; 7 is the common floor for card-present holds).
pub const PREAUTH_EXPIRY_DAYS: i64 = 7;

/// The batch picture at `now_ms`.
///
/// # Errors
/// [`JournalError`].
pub fn batch_report(journal: &Journal, now_ms: i64) -> Result<BatchReport, JournalError> {
    const DAY: i64 = 86_400_000;
    let last = journal.settlements(1)?.pop();
    let differences = match &last {
        Some(s) => journal.differences(s.id)?,
        None => Vec::new(),
    };
    let open_preauths = journal
        .open_preauths()?
        .into_iter()
        .map(|t| {
            let expires_ms = t.created_ms.saturating_add(PREAUTH_EXPIRY_DAYS * DAY);
            OpenPreauth {
                id: t.id,
                amount: t.amount,
                pan_masked: t.pan_masked.clone(),
                batch: t.batch,
                age_days: (now_ms - t.created_ms).max(0) / DAY,
                expires: time::human(expires_ms),
                expired: now_ms >= expires_ms,
            }
        })
        .collect();
    Ok(BatchReport {
        open_batch: journal.open_batch()?,
        last_settlement: last,
        unfinished_settlement: journal.unfinished_settlement()?,
        differences,
        open_preauths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Changes;

    /// The report as it was computed before it counted in SQL: every transaction read.
    fn reference(journal: &Journal, since_ms: i64) -> Report {
        let mut r = Report {
            since_ms,
            ..Report::default()
        };
        let add = |t: &mut Totals, x: &Txn| {
            t.count += 1;
            t.amount += x.amount;
        };
        for t in journal.all().unwrap() {
            match t.state {
                State::ReversalPending => r.reversal_pending.push(Brief::from(&t)),
                State::ReversalStuck => r.reversal_stuck.push(Brief::from(&t)),
                State::ReceiptOwed => r.receipts_owed.push(Brief::from(&t)),
                s if !s.is_resting() => r.in_flight.push(Brief::from(&t)),
                _ => {}
            }
            if t.created_ms < since_ms {
                continue;
            }
            match t.state {
                State::Declined => add(&mut r.declined, &t),
                State::Aborted => add(&mut r.aborted, &t),
                State::Reversed => add(&mut r.reversed, &t),
                _ => {}
            }
            if !matches!(t.state, State::Completed | State::ReceiptOwed) {
                continue;
            }
            match t.kind {
                Operation::Sale | Operation::Completion if !t.voided => add(&mut r.sales, &t),
                Operation::Refund if !t.voided => add(&mut r.refunds, &t),
                Operation::Void => add(&mut r.voids, &t),
                Operation::PreAuth if t.completed_by.is_none() => add(&mut r.open_preauths, &t),
                _ => {}
            }
        }
        r.net = r.sales.amount as i64 - r.refunds.amount as i64;
        r
    }

    /// A transaction of `kind` walked through `path`.
    fn txn(
        j: &mut Journal,
        kind: Operation,
        amount: u64,
        original: Option<i64>,
        path: &[State],
    ) -> i64 {
        let id = j.create(kind, amount, 978, original, "").unwrap();
        for s in path {
            match s {
                State::Armed => {
                    j.arm(id, "0200", "0101000000", "", Changes::default())
                        .unwrap();
                }
                s => j.transition(id, *s, "", Changes::default()).unwrap(),
            }
        }
        id
    }

    #[test]
    fn the_report_counts_what_it_counted_when_it_read_every_transaction() {
        use State::*;
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        let done = [Armed, Sent, HostApproved, Committed, Completed];
        let mut since = 0;
        for period in 0..2 {
            let sale = txn(&mut j, Operation::Sale, 1000 + period, None, &done);
            let voided = txn(&mut j, Operation::Sale, 2000, None, &done);
            let void = txn(&mut j, Operation::Void, 2000, Some(voided), &done);
            j.mark_original(voided, true, None).unwrap();
            let pre = txn(&mut j, Operation::PreAuth, 5000, None, &done);
            let completion = txn(&mut j, Operation::Completion, 4000, Some(pre), &done);
            j.mark_original(pre, false, Some(completion)).unwrap();
            txn(&mut j, Operation::PreAuth, 7000, None, &done);
            let refund = txn(&mut j, Operation::Refund, 300, None, &done);
            let voided_refund = txn(&mut j, Operation::Refund, 400, None, &done);
            txn(&mut j, Operation::Void, 400, Some(voided_refund), &done);
            j.mark_original(voided_refund, true, None).unwrap();
            txn(&mut j, Operation::Sale, 51, None, &[Armed, Sent, Declined]);
            txn(&mut j, Operation::Sale, 52, None, &[Aborted]);
            txn(
                &mut j,
                Operation::Sale,
                53,
                None,
                &[Armed, ReversalPending, Reversed],
            );
            txn(&mut j, Operation::Sale, 54, None, &[Armed, ReversalPending]);
            txn(
                &mut j,
                Operation::Sale,
                55,
                None,
                &[Armed, ReversalPending, ReversalStuck],
            );
            txn(
                &mut j,
                Operation::Sale,
                56,
                None,
                &[Armed, Sent, HostApproved, Committed, ReceiptOwed],
            );
            txn(&mut j, Operation::Sale, 57, None, &[Armed, Sent]);
            let _ = (sale, void, refund);
            if period == 0 {
                std::thread::sleep(std::time::Duration::from_millis(5));
                since = crate::journal::now_ms();
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        for s in [0, since, i64::MAX] {
            let r = report(&j, s).unwrap();
            assert_eq!(r, reference(&j, s), "since {s}");
        }
        let today = report(&j, since).unwrap();
        assert_eq!(
            (today.sales.count, today.sales.amount),
            (3, 1001 + 4000 + 56)
        );
        assert_eq!(today.reversal_pending.len(), 2, "whatever their age");
    }
}
