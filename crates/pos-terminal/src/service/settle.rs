//! Settlement: the open batch closed with the host, every difference named.
//!
//! Order: refuse while a transaction runs; send pending reversals first (one the host
//! keeps rejecting blocks settlement unless forced, and is then a known difference); freeze
//! the batch (the next one opens at once); 0500 with the totals; balanced → closed, the
//! settlement receipt; 95 → each transaction in a 0320 (the host answers with its view,
//! compared at once), then the closing 0500 (its answer names the host's transactions the
//! terminal has no record of) → closed with the differences. Every message's STAN is
//! journaled before it leaves; a crash or a host outage leaves a settlement that the next
//! [`Terminal::settle`] (or [`Terminal::recover`]) resumes where it stopped.

use std::collections::BTreeMap;

use pos_acquirer::settlement::{
    Advice, BALANCED, CurrencyTotals, HostOnly, HostState, HostView, OUT_OF_BALANCE,
    Reconciliation, SettleOutcome, TerminalView,
};
use serde::Serialize;

use super::*;
use crate::journal::{Difference, NewDifference, Settlement, SettlementState};

/// What a settlement came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettlementReport {
    /// Settlement id (for `posctl journal settlement ID`).
    pub id: i64,
    /// The batch closed.
    pub batch: u32,
    /// Its state: `balanced` or `closed_with_differences`.
    pub state: SettlementState,
    /// Whether this call resumed a settlement a crash or an outage had stopped.
    pub resumed: bool,
    /// Started past stuck reversals (`--force`).
    pub forced: bool,
    /// The terminal's totals, per currency.
    pub totals: Vec<CurrencyTotals>,
    /// Every difference found (known ones included).
    pub differences: Vec<Difference>,
    /// The settlement receipt.
    pub receipt: Option<String>,
    /// The reversal drain that ran first.
    pub reversals: DrainReport,
}

/// The action of a dropped reversal's difference until its re-send has an outcome.
const RESENDING: &str = "re-sending the reversal";

/// Difference kinds (see [`Difference::kind`]).
pub mod diff_kind {
    /// The host charged (or credited) it; the terminal recorded it reversed.
    pub const HOST_CHARGED_TERMINAL_REVERSED: &str = "host_charged_terminal_reversed";
    /// The host charged it; the terminal recorded it voided.
    pub const HOST_CHARGED_TERMINAL_VOIDED: &str = "host_charged_terminal_voided";
    /// The terminal completed it; the host has no (standing) record of it.
    pub const TERMINAL_CHARGED_HOST_NO_RECORD: &str = "terminal_charged_host_no_record";
    /// Both hold it as standing, with different amounts.
    pub const AMOUNT_MISMATCH: &str = "amount_mismatch";
    /// The host holds a transaction the terminal has no record of.
    pub const HOST_ONLY: &str = "host_only";
    /// A reversal stuck before settling, settled past with `--force`.
    pub const KNOWN_STUCK_REVERSAL: &str = "known_stuck_reversal";
}

/// The terminal's totals of a batch's transactions, per currency (`default_currency`
/// alone, at zero, for an empty batch).
pub fn batch_totals(txns: &[Txn], default_currency: u16) -> Vec<CurrencyTotals> {
    let mut by: BTreeMap<u16, CurrencyTotals> = BTreeMap::new();
    for t in txns {
        let standing = matches!(t.state, State::Completed | State::ReceiptOwed);
        let sent = t.stan.is_some();
        let e = by
            .entry(t.currency)
            .or_insert_with(|| CurrencyTotals::new(t.currency));
        match t.kind {
            Operation::Sale | Operation::Completion => {
                if standing && !t.voided {
                    e.debits.add(t.amount);
                } else if t.state == State::Reversed && sent {
                    e.debit_reversals.add(t.amount);
                }
            }
            Operation::Refund => {
                if standing && !t.voided {
                    e.credits.add(t.amount);
                } else if t.state == State::Reversed && sent {
                    e.credit_reversals.add(t.amount);
                }
            }
            Operation::Void if standing => e.voids.add(t.amount),
            _ => {}
        }
    }
    if by.is_empty() {
        by.insert(default_currency, CurrencyTotals::new(default_currency));
    }
    // The lane's currency first (fields 50, 74-97 carry the first one).
    let mut out: Vec<CurrencyTotals> = by.into_values().collect();
    out.sort_by_key(|t| t.currency != default_currency);
    out
}

/// What the terminal recorded of an uploaded transaction; `None` for one not uploaded
/// (pre-authorizations stay open across batches; declined, aborted or never sent ones
/// moved no money).
fn terminal_view(t: &Txn) -> Option<TerminalView> {
    if t.stan.is_none() || t.kind == Operation::PreAuth {
        return None;
    }
    match t.state {
        State::Completed | State::ReceiptOwed if t.voided => Some(TerminalView::Voided),
        State::Completed | State::ReceiptOwed => Some(TerminalView::Standing),
        State::Reversed | State::ReversalPending | State::ReversalStuck => {
            Some(TerminalView::Reversed)
        }
        _ => None,
    }
}

/// `sale EUR 12.50 (txn 4, STAN 000017, RRN 000000000017)`.
fn describe(t: &Txn) -> String {
    format!(
        "{} {} {} (txn {}, STAN {}, RRN {}{})",
        t.kind.name(),
        receipt::currency_name(t.currency),
        receipt::money(t.amount),
        t.id,
        t.stan.map_or("-".into(), |s| format!("{s:06}")),
        t.rrn.as_deref().unwrap_or("-"),
        t.pan_masked
            .as_deref()
            .map(|p| format!(", card {p}"))
            .unwrap_or_default()
    )
}

/// The difference, if any, between what the terminal recorded of `t` and the host's view.
fn compare(t: &Txn, view: TerminalView, host: &HostView) -> Option<NewDifference> {
    let money = |a: u64| {
        format!(
            "{} {}",
            receipt::currency_name(t.currency),
            receipt::money(a)
        )
    };
    let host_ref = |h: &HostView| {
        format!(
            "STAN {}, RRN {}",
            t.stan.map_or("-".into(), |s| format!("{s:06}")),
            if h.rrn.is_empty() { "-" } else { &h.rrn }
        )
    };
    let d = |kind: &'static str, detail: String, action: &str| NewDifference {
        txn_id: Some(t.id),
        kind,
        detail,
        action: action.to_string(),
    };
    match (view, host.state) {
        (TerminalView::Standing, HostState::Standing) if host.amount != t.amount => Some(d(
            diff_kind::AMOUNT_MISMATCH,
            format!(
                "host charged {} ({}), terminal recorded {} for {}",
                money(host.amount),
                host_ref(host),
                money(t.amount),
                describe(t)
            ),
            "call the acquirer with this transaction's evidence",
        )),
        (TerminalView::Standing, HostState::Standing) => None,
        (TerminalView::Reversed, HostState::Standing) if t.state == State::ReversalStuck => None,
        (TerminalView::Reversed, HostState::Standing) => Some(d(
            diff_kind::HOST_CHARGED_TERMINAL_REVERSED,
            format!(
                "host charged {} ({}), terminal recorded {}: {}",
                money(host.amount),
                host_ref(host),
                t.state,
                describe(t)
            ),
            RESENDING,
        )),
        (TerminalView::Voided, HostState::Standing) => Some(d(
            diff_kind::HOST_CHARGED_TERMINAL_VOIDED,
            format!(
                "host charged {} ({}), terminal recorded voided: {}",
                money(host.amount),
                host_ref(host),
                describe(t)
            ),
            "call the acquirer with this transaction's evidence (the void did not reach the host)",
        )),
        (TerminalView::Standing, other) => Some(d(
            diff_kind::TERMINAL_CHARGED_HOST_NO_RECORD,
            format!(
                "terminal completed {}, host {}",
                describe(t),
                match other {
                    HostState::Unknown => "has no record".to_string(),
                    s => format!("has it {}", s.name()),
                }
            ),
            "call the acquirer: the customer may not have been charged",
        )),
        _ => None,
    }
}

/// A card brand from the application label or the PAN's first digits.
fn brand(t: &Txn) -> String {
    if let Some(l) = t.label.as_deref().filter(|l| !l.trim().is_empty()) {
        return l.trim().to_uppercase();
    }
    let p = t.pan_masked.as_deref().unwrap_or("");
    let two: u32 = p.get(..2).and_then(|s| s.parse().ok()).unwrap_or(0);
    let four: u32 = p.get(..4).and_then(|s| s.parse().ok()).unwrap_or(0);
    match () {
        _ if p.starts_with('4') => "VISA".into(),
        _ if (51..=55).contains(&two) || (2221..=2720).contains(&four) => "MASTERCARD".into(),
        _ if two == 62 => "UNIONPAY".into(),
        _ if two == 34 || two == 37 => "AMEX".into(),
        _ if p.is_empty() => "NO CARD".into(),
        _ => "OTHER".into(),
    }
}

/// The settlement receipt: result, totals per currency, per card brand and entry mode.
pub fn settlement_receipt(
    config: &Config,
    s: &Settlement,
    txns: &[Txn],
    state: SettlementState,
    differences: usize,
    at_ms: i64,
) -> String {
    let mut out = vec![
        "SETTLEMENT".to_string(),
        format!(
            "TERMINAL {}  MERCHANT {}",
            config.terminal_id, config.merchant_id
        ),
        format!("BATCH {:06}  {}", s.batch, time::human(at_ms)),
        match state {
            SettlementState::Balanced => "BALANCED WITH THE HOST".to_string(),
            _ => format!("CLOSED WITH {differences} DIFFERENCE(S)"),
        },
    ];
    let line = |name: &str, c: &pos_acquirer::settlement::CountAmount| {
        format!("{name:<12}{:>4} {:>12}", c.count, receipt::money(c.amount))
    };
    for t in &s.totals {
        out.push(format!("-- {} --", receipt::currency_name(t.currency)));
        out.push(line("DEBITS", &t.debits));
        out.push(line("CREDITS", &t.credits));
        out.push(line("REVERSALS", &{
            let mut r = t.debit_reversals;
            r.count += t.credit_reversals.count;
            r.amount = r.amount.saturating_add(t.credit_reversals.amount);
            r
        }));
        out.push(line("VOIDS", &t.voids));
        let net = t.net();
        out.push(format!(
            "{:<12}     {:>12}",
            "NET",
            format!(
                "{}{}",
                if net < 0 { "-" } else { "" },
                receipt::money(net.unsigned_abs())
            )
        ));
    }
    // Standing debits and credits by brand and entry mode.
    let mut by: BTreeMap<(String, String, u16), (u64, i64)> = BTreeMap::new();
    for t in txns {
        let sign: i64 = match t.kind {
            Operation::Sale | Operation::Completion => 1,
            Operation::Refund => -1,
            _ => continue,
        };
        if !matches!(t.state, State::Completed | State::ReceiptOwed) || t.voided {
            continue;
        }
        let e = by
            .entry((
                brand(t),
                t.entry_mode.clone().unwrap_or_else(|| "-".into()),
                t.currency,
            ))
            .or_default();
        e.0 += 1;
        e.1 =
            e.1.saturating_add(sign.saturating_mul(i64::try_from(t.amount).unwrap_or(i64::MAX)));
    }
    if !by.is_empty() {
        out.push("-- BY CARD AND ENTRY --".into());
        for ((b, mode, cur), (n, amount)) in by {
            out.push(format!(
                "{b} {} {n} {} {}{}",
                mode.to_uppercase(),
                receipt::currency_name(cur),
                if amount < 0 { "-" } else { "" },
                receipt::money(amount.unsigned_abs())
            ));
        }
    }
    out.join("\n")
}

impl Terminal {
    /// Settle the open batch with the host (or resume the settlement a crash or an outage
    /// stopped). `force`: settle past reversals the host keeps rejecting; they are listed
    /// as known differences.
    ///
    /// # Errors
    /// [`TerminalError::Settlement`] when it cannot start (a transaction running, a pending
    /// reversal the host did not take, a stuck one without `force`: nothing changed then)
    /// or cannot finish now (no answer, a refusal: the batch stays frozen and the next call
    /// resumes it); [`TerminalError::Journal`], [`TerminalError::Blocked`].
    pub fn settle(&mut self, force: bool) -> Result<SettlementReport, TerminalError> {
        self.check_journal()?;
        let r = self.settle_inner(force);
        self.storage_guard(r)
    }

    pub(super) fn settle_inner(&mut self, force: bool) -> Result<SettlementReport, TerminalError> {
        let mut reversals = DrainReport::default();
        let (id, resumed) = match self.journal.unfinished_settlement()? {
            Some(s) => {
                self.say(
                    None,
                    &format!(
                        "resuming the settlement of batch {} (settlement {}, {})",
                        s.batch, s.id, s.state
                    ),
                );
                (s.id, true)
            }
            None => {
                if let Some(t) = self.journal.in_states(&State::IN_FLIGHT)?.first() {
                    return Err(TerminalError::Settlement(format!(
                        "transaction {} is running ({}): settle once it has ended (after a \
                         crash, `posctl recover` first)",
                        t.id, t.state
                    )));
                }
                reversals = self.drain_reversals_inner(true)?;
                let ids = |v: &[Txn]| {
                    v.iter()
                        .map(|t| t.id.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let pending = self.journal.in_states(&[State::ReversalPending])?;
                if !pending.is_empty() {
                    return Err(TerminalError::Settlement(format!(
                        "reversal(s) of transaction(s) {} not taken by the host yet (it did not \
                         answer): they go first; settlement not started, nothing changed",
                        ids(&pending)
                    )));
                }
                let stuck = self.journal.in_states(&[State::ReversalStuck])?;
                if !stuck.is_empty() && !force {
                    return Err(TerminalError::Settlement(format!(
                        "reversal(s) of transaction(s) {} are stuck (the host rejects them): \
                         settlement refused; call the acquirer, or settle with --force to list \
                         them as known differences",
                        ids(&stuck)
                    )));
                }
                let known: Vec<NewDifference> = stuck
                    .iter()
                    .map(|t| NewDifference {
                        txn_id: Some(t.id),
                        kind: diff_kind::KNOWN_STUCK_REVERSAL,
                        detail: format!(
                            "reversal stuck before settling: {} (the host rejected it {} times)",
                            describe(t),
                            t.reversal_rejections
                        ),
                        action: "settled with --force: call the acquirer with this \
                                 transaction's evidence"
                            .into(),
                    })
                    .collect();
                let batch = self.journal.open_batch()?;
                let txns = self.journal.batch_txns(batch)?;
                let totals = batch_totals(&txns, self.config.currency);
                let id = self
                    .journal
                    .settlement_start(batch, force, &totals, &known)?;
                self.say(
                    None,
                    &format!(
                        "settling batch {batch} ({} transaction(s)); batch {} is open",
                        txns.len(),
                        batch + 1
                    ),
                );
                (id, false)
            }
        };
        self.drive_settlement(id)?;
        let s = self.journal.settlement(id)?;
        Ok(SettlementReport {
            id,
            batch: s.batch,
            state: s.state,
            resumed,
            forced: s.forced,
            totals: s.totals.clone(),
            differences: self.journal.differences(id)?,
            receipt: s.receipt.clone(),
            reversals,
        })
    }

    /// Move settlement `id` on until it is closed, or an exchange fails.
    fn drive_settlement(&mut self, id: i64) -> Result<(), TerminalError> {
        loop {
            let s = self.journal.settlement(id)?;
            match s.state {
                SettlementState::Started | SettlementState::Requested => {
                    let (reply, _) = self.reconcile(&s, false)?;
                    match reply.as_str() {
                        BALANCED => {
                            self.close_batch(&s, SettlementState::Balanced, &[])?;
                        }
                        OUT_OF_BALANCE => {
                            self.journal.settlement_step(
                                id,
                                SettlementState::Uploading,
                                "host out of balance (95): uploading the batch",
                                None,
                                Some(OUT_OF_BALANCE),
                                None,
                                &[],
                            )?;
                            self.say(
                                None,
                                &format!(
                                    "batch {}: host out of balance (95): uploading each transaction",
                                    s.batch
                                ),
                            );
                        }
                        code => return Err(self.refused(&s, code)),
                    }
                }
                SettlementState::Uploading => {
                    self.upload(&s)?;
                    // Every item answered: the closing request (its STAN written first).
                    let reply = self.reconcile(&s, true)?;
                    self.after_closing(&s, &reply)?;
                }
                SettlementState::Closing => {
                    let reply = self.reconcile(&s, true)?;
                    self.after_closing(&s, &reply)?;
                }
                SettlementState::Balanced | SettlementState::ClosedWithDifferences => {
                    return Ok(());
                }
            }
        }
    }

    /// The error of a refused settlement message (the batch stays frozen).
    fn refused(&mut self, s: &Settlement, code: &str) -> TerminalError {
        let msg = format!(
            "the host refused the settlement of batch {} (response {code}: {}); the batch \
             stays frozen, `posctl settle` tries again",
            s.batch,
            pos_acquirer::response_reason(code)
        );
        if let Err(e) = self.journal.settlement_note(s.id, "refused", &msg) {
            return e.into();
        }
        TerminalError::Settlement(msg)
    }

    /// Journal a new STAN for a reconciliation request (the state `requested`, or `closing`
    /// after the upload) and send it. Returns the host's response code, or the error of an
    /// exchange without an answer.
    fn reconcile(
        &mut self,
        s: &Settlement,
        after_upload: bool,
    ) -> Result<(String, Option<String>), TerminalError> {
        let stan = self.journal.next_stan()?;
        let tt = time::transmission_time(self.clock.now_secs());
        let (to, what) = if after_upload {
            (SettlementState::Closing, "closing 0500 after the upload")
        } else {
            (SettlementState::Requested, "0500")
        };
        let totals = CurrencyTotals::encode_all(&s.totals);
        self.journal.settlement_step(
            s.id,
            to,
            &format!("{what} STAN {stan:06}: totals {totals}"),
            Some((stan, &tt)),
            None,
            None,
            &[],
        )?;
        self.say(
            None,
            &format!("sending {what} for batch {} (STAN {stan})", s.batch),
        );
        let req = Reconciliation {
            batch: s.batch,
            stan,
            transmission_time: tt,
            totals: s.totals.clone(),
            after_upload,
        };
        let mut journal_err = None;
        let journal = &mut self.journal;
        let outcome = self.acquirer.reconcile(&req, &mut |ev: &WireEvent| {
            if let Err(e) = journal.settlement_message(s.id, what, ev) {
                journal_err.get_or_insert(e);
            }
        });
        if let Some(e) = journal_err {
            return Err(e.into());
        }
        self.answered(s, outcome)
    }

    /// The response code and field 63 of an answered exchange; an error otherwise.
    fn answered(
        &mut self,
        s: &Settlement,
        outcome: SettleOutcome,
    ) -> Result<(String, Option<String>), TerminalError> {
        match outcome {
            SettleOutcome::Answered(r) => Ok((r.response_code, r.text)),
            other => {
                let msg = format!(
                    "settlement of batch {} not finished: {other}; the batch stays frozen and \
                     `posctl settle` (or `posctl recover`) resumes it",
                    s.batch
                );
                self.journal.settlement_note(s.id, "unanswered", &msg)?;
                self.say(None, &msg);
                Err(TerminalError::Settlement(msg))
            }
        }
    }

    /// Upload every transaction of the batch not yet answered, one 0320 each (its STAN
    /// journaled first), comparing each answer with the journal as it comes.
    fn upload(&mut self, s: &Settlement) -> Result<(), TerminalError> {
        let done: Vec<i64> = self
            .journal
            .upload_items(s.id)?
            .into_iter()
            .filter(|i| i.state == "answered")
            .map(|i| i.txn_id)
            .collect();
        for t in self.journal.batch_txns(s.batch)? {
            let Some(view) = terminal_view(&t) else {
                continue;
            };
            if done.contains(&t.id) {
                continue;
            }
            let (Some(orig_stan), Some(orig_tt)) = (t.stan, t.transmission_time.clone()) else {
                continue;
            };
            let stan = self.journal.next_stan()?;
            let tt = time::transmission_time(self.clock.now_secs());
            self.journal
                .upload_arm(s.id, t.id, stan, &tt, view.name())?;
            let advice = Advice {
                batch: s.batch,
                stan,
                transmission_time: tt,
                operation: t.kind,
                amount: t.amount,
                currency: t.currency,
                original: OriginalData {
                    mti: t
                        .mti
                        .as_deref()
                        .and_then(|m| m.parse().ok())
                        .unwrap_or(t.kind.mti()),
                    stan: orig_stan,
                    transmission_time: orig_tt,
                    rrn: t.rrn.clone(),
                    auth_code: t.auth_code.clone(),
                },
                view,
            };
            let mut journal_err = None;
            let journal = &mut self.journal;
            let purpose = format!("0320 advice of transaction {}", t.id);
            let outcome = self.acquirer.advise(&advice, &mut |ev: &WireEvent| {
                if let Err(e) = journal.settlement_message(s.id, &purpose, ev) {
                    journal_err.get_or_insert(e);
                }
            });
            if let Some(e) = journal_err {
                return Err(e.into());
            }
            let (code, text) = self.answered(s, outcome)?;
            let host = text.as_deref().and_then(HostView::decode);
            let diff = match &host {
                Some(h) if code == "00" => compare(&t, view, h),
                _ => Some(NewDifference {
                    txn_id: Some(t.id),
                    kind: "upload_refused",
                    detail: format!(
                        "the host did not give its record of {} (response {code})",
                        describe(&t)
                    ),
                    action: "call the acquirer with this transaction's evidence".into(),
                }),
            };
            let resend = diff
                .as_ref()
                .is_some_and(|d| d.kind == diff_kind::HOST_CHARGED_TERMINAL_REVERSED);
            let diffs: Vec<NewDifference> = diff.into_iter().collect();
            for d in &diffs {
                self.say(Some(t.id), &format!("difference: {}", d.detail));
            }
            let seqs = self
                .journal
                .upload_answered(s.id, t.id, &code, text.as_deref(), &diffs)?;
            if resend {
                if let Some(seq) = seqs.first() {
                    let action = self.resend_reversal(&t)?;
                    self.journal.difference_action(*seq, &action)?;
                }
            }
        }
        // A crash between a difference's record and its reversal's re-send: send it now.
        for d in self.journal.differences(s.id)? {
            if d.kind == diff_kind::HOST_CHARGED_TERMINAL_REVERSED && d.action == RESENDING {
                if let Some(id) = d.txn_id {
                    let t = self.journal.get(id)?;
                    let action = self.resend_reversal(&t)?;
                    self.journal.difference_action(d.seq, &action)?;
                }
            }
        }
        Ok(())
    }

    /// Send the reversal of `t` again (0401: the host acknowledged one and has lost it).
    fn resend_reversal(&mut self, t: &Txn) -> Result<String, TerminalError> {
        let (Some(stan), Some(tt), Some(mti)) = (t.stan, &t.transmission_time, &t.mti) else {
            return Ok("nothing was ever sent for it: call the acquirer".into());
        };
        let (card, _) = self.reversal_card(t)?;
        let rev_stan = self.journal.next_stan()?;
        let attempt = t.reversal_attempts.max(1) + 1;
        let reversal = self.build_reversal(t, (stan, tt, mti), card, rev_stan, attempt);
        self.say(Some(t.id), "re-sending the reversal the host lost");
        let mut journal_err = None;
        let journal = &mut self.journal;
        let id = t.id;
        let outcome = self.acquirer.reverse(&reversal, &mut |ev: &WireEvent| {
            if let Err(e) = journal.host_message(id, "settlement reversal", attempt, ev) {
                journal_err.get_or_insert(e);
            }
        });
        if let Some(e) = journal_err {
            return Err(e.into());
        }
        let action = match outcome {
            Outcome::Approved(a) => format!(
                "reversal re-sent: the host took it (response {})",
                a.response_code
            ),
            Outcome::Declined(d) => format!(
                "reversal re-sent: the host rejected it ({} {}): call the acquirer",
                d.response_code, d.reason
            ),
            other => format!(
                "reversal re-sent: no answer ({}): call the acquirer",
                other.name()
            ),
        };
        self.journal.event(Some(t.id), "info", &action)?;
        Ok(action)
    }

    /// After the closing request's answer: the host's transactions the terminal has no
    /// record of, then the batch closed with every difference.
    fn after_closing(
        &mut self,
        s: &Settlement,
        (code, text): &(String, Option<String>),
    ) -> Result<(), TerminalError> {
        if code != BALANCED {
            return Err(self.refused(s, code));
        }
        let txns = self.journal.batch_txns(s.batch)?;
        let currency = s
            .totals
            .first()
            .map_or(self.config.currency, |t| t.currency);
        let money = |a: u64| format!("{} {}", receipt::currency_name(currency), receipt::money(a));
        let diffs: Vec<NewDifference> = match HostOnly::decode_all(text.as_deref().unwrap_or("")) {
            Some(list) => list
                .iter()
                .map(|h| {
                    // The terminal may hold it in a state it did not upload (declined,
                    // aborted): name it.
                    let ours = txns.iter().find(|t| t.stan == Some(h.stan));
                    NewDifference {
                        txn_id: ours.map(|t| t.id),
                        kind: diff_kind::HOST_ONLY,
                        detail: format!(
                            "host charged {} ({} STAN {:06}, RRN {}), terminal {}",
                            money(h.amount),
                            h.operation,
                            h.stan,
                            h.rrn,
                            match ours {
                                Some(t) => format!("recorded {}: {}", t.state, describe(t)),
                                None => "has no record".into(),
                            }
                        ),
                        action: "call the acquirer".into(),
                    }
                })
                .collect(),
            None => vec![NewDifference {
                txn_id: None,
                kind: diff_kind::HOST_ONLY,
                detail: "the host's list of the batch's transactions the terminal did not \
                         upload could not be read"
                    .into(),
                action: "call the acquirer".into(),
            }],
        };
        for d in &diffs {
            self.say(None, &format!("difference: {}", d.detail));
        }
        self.close_batch(s, SettlementState::ClosedWithDifferences, &diffs)
    }

    /// Close the batch (`Balanced` or `ClosedWithDifferences`) with the receipt, then
    /// print it when the lane has a printer.
    fn close_batch(
        &mut self,
        s: &Settlement,
        to: SettlementState,
        diffs: &[NewDifference],
    ) -> Result<(), TerminalError> {
        let txns = self.journal.batch_txns(s.batch)?;
        let known = self.journal.differences(s.id)?.len() + diffs.len();
        let text = settlement_receipt(&self.config, s, &txns, to, known, self.clock.now_ms());
        let note = match to {
            SettlementState::Balanced => format!("host balanced (00): batch {} closed", s.batch),
            _ => format!(
                "batch {} closed after the upload with {known} difference(s)",
                s.batch
            ),
        };
        self.journal
            .settlement_step(s.id, to, &note, None, Some("00"), Some(&text), diffs)?;
        self.say(None, &note);
        self.print_settlement(s.id, &text)?;
        Ok(())
    }

    /// Print the settlement receipt, when the lane has a ready printer (its outcome in the
    /// settlement's log: the receipt stays in the journal either way).
    fn print_settlement(&mut self, id: i64, text: &str) -> Result<(), TerminalError> {
        let Some(printer) = self.devices.printer.as_mut() else {
            return Ok(());
        };
        let mut doc = pos_hal::Document::new();
        for line in text.lines() {
            doc.text(line);
        }
        doc.feed(2).cut(pos_hal::CutKind::Partial);
        let note = match printer.print(&doc) {
            Ok(o) => format!("settlement receipt printed ({o:?})"),
            Err(e) => format!("settlement receipt not printed: {e} (it stays in the journal)"),
        };
        self.journal.settlement_note(id, "receipt", &note)?;
        Ok(())
    }
}
