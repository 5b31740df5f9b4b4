//! Going online: the card read journaled, local checks, the reversal record armed before
//! the request leaves, and the host's answer journaled before anything acts on it.

use super::*;

impl Terminal {
    pub(super) fn begin_reversal(
        &mut self,
        id: i64,
        reason: ReversalReason,
        note: &str,
    ) -> Result<(), TerminalError> {
        self.step(
            id,
            State::ReversalPending,
            note,
            Changes {
                reason: Some(note.to_string()),
                reversal_reason: Some(reason.name().into()),
                ..Changes::default()
            },
        )?;
        Ok(())
    }

    /// CardRead → local checks → Armed → send → Sent → answer.
    pub(super) fn online(
        &mut self,
        cx: Ctx<'_, '_>,
        facts: CardFacts,
        original: Option<OriginalData>,
        still_there: &mut dyn FnMut() -> Result<(), (FaultKind, String)>,
    ) -> Result<HostEnd, TerminalError> {
        let Ctx {
            id,
            op,
            amount,
            hook,
        } = cx;
        let has_card = !facts.card.pan.is_empty();
        let sealed = if has_card {
            let secrets = CardSecrets {
                pan: facts.card.pan.clone(),
                expiry: facts.card.expiry.clone(),
                pan_sequence: facts.card.pan_sequence,
            };
            Some(self.vault.seal(&secrets, &id.to_be_bytes())?)
        } else {
            None
        };
        let card_changes = Changes {
            pan_masked: facts.pan_masked.clone(),
            pan_hash: has_card.then(|| self.vault.pan_hash(facts.card.pan.expose())),
            sealed,
            entry_mode: Some(facts.card.entry_mode.name().into()),
            aid: facts.aid.clone(),
            label: facts.label.clone(),
            ..Changes::default()
        };
        let now = self.clock.now_secs();
        // With a card, its data is written at CardRead; by reference (completion, void) there
        // is no card step and the original's card data goes with Armed, so this transaction
        // can be reversed on its own too.
        let arm_changes = if original.is_none() {
            self.step_saying(
                id,
                State::CardRead,
                "card read",
                card_changes,
                &format!(
                    "card read: {} ({})",
                    facts.pan_masked.as_deref().unwrap_or("no PAN"),
                    facts.card.entry_mode.name()
                ),
            )?;
            // Local checks before going online.
            if let Some(exp) = &facts.card.expiry {
                if time::expired(exp, now) {
                    let msg = "declined: card expired (local check, not sent)";
                    self.step(id, State::Declined, msg, Changes::reason(msg))?;
                    return Ok(HostEnd::Stopped);
                }
            }
            Changes::default()
        } else {
            card_changes
        };
        let request = Request {
            operation: op,
            amount,
            currency: self.config.currency,
            stan: 0,
            transmission_time: time::transmission_time(now),
            local_time: time::local_time(now),
            card: has_card.then(|| facts.card.clone()),
            original: original.clone(),
            batch: self.journal.get(id)?.batch,
        };
        if !self.cancel.arm() {
            self.step(id, State::Aborted, CANCELLED, Changes::reason(CANCELLED))?;
            return Ok(HostEnd::Stopped);
        }
        let stan = self.journal.arm(
            id,
            &op.mti().to_string(),
            &request.transmission_time,
            "armed: reversal record written before sending",
            arm_changes,
        )?;
        let request = Request { stan, ..request };
        hook.borrow_mut().at(Step::BeforeSend);
        if let Err((kind, why)) = still_there() {
            let msg = format!(
                "{} before the request was sent: nothing to undo",
                fault_words(kind)
            );
            self.journal
                .event(Some(id), "fault", &format!("{}: {why}", kind.name()))?;
            self.step(id, State::Aborted, &msg, Changes::reason(&msg))?;
            return Ok(HostEnd::Stopped);
        }
        self.say(Some(id), &format!("sending {} STAN {stan}", op.mti()));
        let mut journal_err: Option<JournalError> = None;
        let outcome = {
            let journal = &mut self.journal;
            let acquirer = &mut self.acquirer;
            let progress = &mut self.progress;
            let mut observe = |ev: &WireEvent| {
                if let Err(e) = journal.host_message(id, "request", 1, ev) {
                    journal_err.get_or_insert(e);
                }
                if let WireEvent::Sent { .. } = ev {
                    if let Err(e) =
                        journal.transition(id, State::Sent, "request sent", Changes::default())
                    {
                        journal_err.get_or_insert(e);
                    }
                    if let Some(p) = progress.as_mut() {
                        p(Some(id), "request sent, waiting for the host");
                    }
                    hook.borrow_mut().at(Step::AfterSend);
                }
            };
            acquirer.send(&request, &mut observe)
        };
        if let Some(e) = journal_err {
            return Err(e.into());
        }
        Ok(match outcome {
            Outcome::Approved(a) => {
                self.in_flight.approval =
                    Some((a.rrn.clone(), a.auth_code.clone(), a.response_code.clone()));
                self.step_saying(
                    id,
                    State::HostApproved,
                    &format!(
                        "host approved (response {}, in {} ms)",
                        a.response_code,
                        a.elapsed.as_millis()
                    ),
                    Changes {
                        rrn: Some(a.rrn.clone()),
                        auth_code: Some(a.auth_code.clone()),
                        response_code: Some(a.response_code.clone()),
                        ..Changes::default()
                    },
                    &format!("host approved, auth code {}", a.auth_code),
                )?;
                hook.borrow_mut().at(Step::AfterApprove);
                HostEnd::Approved {
                    response_code: a.response_code,
                    issuer_data: a.issuer_data,
                }
            }
            Outcome::Declined(d) => {
                let msg = format!("declined by the host: {} {}", d.response_code, d.reason);
                self.step(
                    id,
                    State::Declined,
                    &msg,
                    Changes {
                        response_code: Some(d.response_code.clone()),
                        rrn: d.rrn.clone(),
                        reason: Some(msg.clone()),
                        ..Changes::default()
                    },
                )?;
                HostEnd::Declined {
                    response_code: d.response_code,
                }
            }
            Outcome::NotSent(e) => {
                let msg = format!("host unreachable, nothing sent: {e}");
                self.step(id, State::Aborted, &msg, Changes::reason(&msg))?;
                HostEnd::Stopped
            }
            Outcome::Unknown(e) | Outcome::BadResponse(e) => {
                self.begin_reversal(
                    id,
                    ReversalReason::NoValidResponse,
                    &format!("no valid answer from the host ({e}): reversing"),
                )?;
                HostEnd::MustReverse
            }
        })
    }
}

/// Where the host exchange ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HostEnd {
    /// The host approved (HostApproved written).
    Approved {
        response_code: String,
        issuer_data: Vec<u8>,
    },
    /// The host declined (Declined written).
    Declined { response_code: String },
    /// Stopped before anything left (Aborted or Declined written).
    Stopped,
    /// No valid answer: ReversalPending written.
    MustReverse,
}

/// Card facts gathered before going online.
pub(super) struct CardFacts {
    pub(super) card: CardData,
    pub(super) pan_masked: Option<String>,
    pub(super) aid: Option<String>,
    pub(super) label: Option<String>,
}
