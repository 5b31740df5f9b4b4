//! Start-up recovery and the reversal worker: what a crash left in flight is moved to a
//! resting state; pending reversals are sent with backoff until the host takes them or
//! they are stuck.

use super::*;

impl Terminal {
    /// Start-up recovery: anything in flight when the process stopped is moved to a resting
    /// state (Created/CardRead → Aborted; Armed/Sent → ReversalPending; HostApproved →
    /// ReversalPending "approved but not completed"; Committed/Printing → ReceiptOwed), then
    /// pending reversals are drained and owed receipts printed if the printer is ready.
    ///
    /// # Errors
    /// [`TerminalError::Journal`].
    pub fn recover(&mut self) -> Result<RecoveryReport, TerminalError> {
        self.refuse_in_outage()?;
        let r = self.recover_inner();
        self.storage_guard(r)
    }

    pub(super) fn recover_inner(&mut self) -> Result<RecoveryReport, TerminalError> {
        let mut report = RecoveryReport::default();
        let in_flight = self.journal.in_states(&State::IN_FLIGHT)?;
        for t in in_flight {
            let (to, changes, note) = match t.state {
                State::Created | State::CardRead => (
                    State::Aborted,
                    Changes::reason("interrupted before anything was sent: nothing to undo"),
                    "recovery: interrupted before sending",
                ),
                State::Armed | State::Sent => (
                    State::ReversalPending,
                    Changes {
                        reason: Some("interrupted before the host's answer: reversing".into()),
                        reversal_reason: Some(ReversalReason::NoValidResponse.name().into()),
                        ..Changes::default()
                    },
                    "recovery: the host's answer was never processed",
                ),
                State::HostApproved => (
                    State::ReversalPending,
                    Changes {
                        reason: Some("approved but not completed".into()),
                        reversal_reason: Some(ReversalReason::NotCompleted.name().into()),
                        ..Changes::default()
                    },
                    "recovery: approved but not completed",
                ),
                _ => (
                    State::ReceiptOwed,
                    Changes::reason("interrupted while printing: receipt owed"),
                    "recovery: receipt not confirmed",
                ),
            };
            self.step_saying(
                t.id,
                to,
                note,
                changes,
                &format!("recovered: {} -> {to}", t.state),
            )?;
            report.moved.push((t.id, t.state, to));
        }
        report.drain = self.drain_reversals(true)?;
        report.reprinted = self.reprint_owed()?;
        // A settlement stopped midway is finished like a sale: resumed where it stopped.
        if self.journal.unfinished_settlement()?.is_some() {
            report.settlement = Some(match self.settle_inner(false) {
                Ok(r) => format!(
                    "settlement {} of batch {} resumed: {} ({} difference(s))",
                    r.id,
                    r.batch,
                    r.state,
                    r.differences.len()
                ),
                Err(TerminalError::Settlement(m)) => m,
                Err(e) => return Err(e),
            });
        }
        Ok(report)
    }

    /// Send pending reversals: those due (or all, with `force`). A host rejection counts
    /// against `reversal.max_rejections` (then ReversalStuck, an alarm event); an attempt
    /// without an answer does not. Backoff doubles per attempt up to the cap.
    ///
    /// # Errors
    /// [`TerminalError::Journal`].
    pub fn drain_reversals(&mut self, force: bool) -> Result<DrainReport, TerminalError> {
        self.refuse_in_outage()?;
        let r = self.drain_reversals_inner(force);
        self.storage_guard(r)
    }

    pub(super) fn drain_reversals_inner(
        &mut self,
        force: bool,
    ) -> Result<DrainReport, TerminalError> {
        let mut report = DrainReport::default();
        let now = self.clock.now_ms();
        for t in self.journal.in_states(&[State::ReversalPending])? {
            if !force && t.next_attempt_ms.is_some_and(|due| due > now) {
                report.waiting.push(t.id);
                continue;
            }
            self.reverse_one(&t, &mut report)?;
        }
        Ok(report)
    }

    pub(super) fn reverse_one(
        &mut self,
        t: &Txn,
        report: &mut DrainReport,
    ) -> Result<(), TerminalError> {
        let (Some(stan), Some(tt), Some(mti)) = (t.stan, &t.transmission_time, &t.mti) else {
            self.journal.transition(
                t.id,
                State::Reversed,
                "nothing was ever sent: nothing to reverse",
                Changes::default(),
            )?;
            report.reversed.push(t.id);
            return Ok(());
        };
        let (card, unsealed) = self.reversal_card(t)?;
        if let Err(e) = unsealed {
            self.journal.event(
                Some(t.id),
                "fault",
                &format!("{e}: reversal sent without card data"),
            )?;
        }
        let attempt = self.journal.reversal_attempt(t.id)?;
        let rev_stan = self.journal.next_stan()?;
        let reversal = self.build_reversal(t, (stan, tt, mti), card, rev_stan, attempt);
        self.say(
            Some(t.id),
            &format!(
                "sending reversal (attempt {attempt}, reason {})",
                reversal.reason.name()
            ),
        );
        let mut journal_err = None;
        let journal = &mut self.journal;
        let id = t.id;
        let outcome = self.acquirer.reverse(&reversal, &mut |ev: &WireEvent| {
            if let Err(e) = journal.host_message(id, "reversal", attempt, ev) {
                journal_err.get_or_insert(e);
            }
        });
        if let Some(e) = journal_err {
            return Err(e.into());
        }
        let policy = self.config.reversal.clone();
        match outcome {
            Outcome::Approved(a) => {
                self.step_saying(
                    t.id,
                    State::Reversed,
                    &format!(
                        "reversal accepted by the host (response {})",
                        a.response_code
                    ),
                    Changes::default(),
                    "reversed",
                )?;
                report.reversed.push(t.id);
            }
            Outcome::Declined(d) => {
                let next = now_ms_after(self.clock.now_ms(), policy.backoff(attempt + 1));
                let rejections = self.journal.reversal_retry(t.id, true, next)?;
                report.rejected.push(t.id);
                if rejections >= policy.max_rejections {
                    let msg = format!(
                        "reversal stuck: the host rejected it {rejections} times (last {} {}); \
                         call the acquirer with this transaction's evidence",
                        d.response_code, d.reason
                    );
                    self.journal.transition(
                        t.id,
                        State::ReversalStuck,
                        &msg,
                        Changes::reason(&msg),
                    )?;
                    self.journal.event(Some(t.id), "alarm", &msg)?;
                    log::error!("txn {}: {msg}", t.id);
                    self.say(Some(t.id), &msg);
                    report.stuck.push(t.id);
                } else {
                    self.say(
                        Some(t.id),
                        &format!(
                            "reversal rejected by the host ({} {}), {rejections} of {} allowed",
                            d.response_code, d.reason, policy.max_rejections
                        ),
                    );
                }
            }
            Outcome::NotSent(e) | Outcome::Unknown(e) | Outcome::BadResponse(e) => {
                let next = now_ms_after(self.clock.now_ms(), policy.backoff(attempt + 1));
                self.journal.reversal_retry(t.id, false, next)?;
                report.unanswered.push(t.id);
                self.say(
                    Some(t.id),
                    &format!("reversal not answered ({e}); will retry"),
                );
            }
        }
        Ok(())
    }

    /// The card data a reversal of `t` carries: unsealed from the journal (`None` when
    /// there is none), and the unsealing error when the key no longer opens it.
    ///
    /// # Errors
    /// [`TerminalError::Journal`] when the sealed data cannot be read.
    pub(super) fn reversal_card(
        &self,
        t: &Txn,
    ) -> Result<(Option<CardData>, Result<(), VaultError>), TerminalError> {
        Ok(match self.journal.sealed(t.id)? {
            Some(sealed) => match self.vault.open_sealed(&sealed, &t.id.to_be_bytes()) {
                Ok(s) => (Some(card_from_secrets(s, EntryMode::Reference)), Ok(())),
                Err(e) => (None, Err(e)),
            },
            None => (None, Ok(())),
        })
    }

    /// The reversal of `t` (original `(stan, transmission time, mti)`), with reversal STAN
    /// `rev_stan`, as attempt `attempt`.
    pub(super) fn build_reversal(
        &self,
        t: &Txn,
        (stan, tt, mti): (u32, &String, &String),
        card: Option<CardData>,
        rev_stan: u32,
        attempt: u32,
    ) -> Reversal {
        let reason = match t.reversal_reason.as_deref() {
            Some("card_declined_after_approval") => ReversalReason::CardDeclinedAfterApproval,
            Some("not_completed") => ReversalReason::NotCompleted,
            Some("cancelled") => ReversalReason::Cancelled,
            _ => ReversalReason::NoValidResponse,
        };
        Reversal {
            operation: t.kind,
            amount: t.amount,
            currency: t.currency,
            stan: rev_stan,
            transmission_time: time::transmission_time(self.clock.now_secs()),
            card,
            original: OriginalData {
                mti: mti.parse().unwrap_or(t.kind.mti()),
                stan,
                transmission_time: tt.clone(),
                rrn: t.rrn.clone(),
                auth_code: t.auth_code.clone(),
            },
            reason,
            repeat: attempt > 1,
        }
    }
}

pub(super) fn card_from_secrets(s: CardSecrets, entry: EntryMode) -> CardData {
    CardData {
        pan: s.pan,
        expiry: s.expiry,
        pan_sequence: s.pan_sequence,
        track2: None,
        entry_mode: entry,
        icc_data: None,
    }
}

pub(super) fn now_ms_after(now: i64, d: Duration) -> i64 {
    now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
