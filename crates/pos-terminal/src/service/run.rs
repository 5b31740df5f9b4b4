//! One transaction from request to resting state: checks, the health gate, then the card
//! (chip, stripe) or the original (completion, void).

use super::*;

impl Terminal {
    /// Run one transaction to a resting state, calling `hook` at each [`Step`].
    ///
    /// Every outcome (declined, aborted, reversed, receipt owed...) is an `Ok` with the
    /// final state; `Err` means the journal or key file failed, or the request is invalid
    /// (then nothing was sent).
    ///
    /// # Errors
    /// [`TerminalError`].
    pub fn run(
        &mut self,
        req: &TxnRequest,
        hook: &mut dyn StepHook,
    ) -> Result<TxnResult, TerminalError> {
        self.check_journal()?;
        self.in_flight = outage::InFlight::default();
        self.cancel.reset();
        let r = self.run_inner(req, hook);
        self.cancel.reset();
        let r = self.storage_guard(r);
        self.in_flight = outage::InFlight::default();
        r
    }

    pub(super) fn run_inner(
        &mut self,
        req: &TxnRequest,
        hook: &mut dyn StepHook,
    ) -> Result<TxnResult, TerminalError> {
        // Resolve and check the original before anything is written.
        let original = match (req.operation, req.original) {
            (Operation::Completion | Operation::Void, None) => {
                return Err(TerminalError::Invalid(format!(
                    "a {} needs the id of the original transaction",
                    req.operation.name()
                )));
            }
            (Operation::Completion | Operation::Void, Some(o)) => {
                let t = match self.journal.get(o) {
                    Ok(t) => t,
                    Err(JournalError::NotFound(_)) => {
                        return Err(TerminalError::Invalid(format!("no transaction {o}")));
                    }
                    Err(e) => return Err(e.into()),
                };
                check_original(req, &t)?;
                if req.operation == Operation::Void {
                    self.check_void_batch(&t)?;
                }
                Some(t)
            }
            _ => None,
        };
        let amount = match (&original, req.operation) {
            (Some(o), Operation::Void) => o.amount,
            _ => req.amount,
        };
        let limits = &self.config.limits;
        if amount < limits.min_amount || amount > limits.max_amount {
            return Err(TerminalError::Invalid(format!(
                "amount {} is outside the lane's limits {}..={}",
                receipt::money(amount),
                receipt::money(limits.min_amount),
                receipt::money(limits.max_amount)
            )));
        }

        // Owed receipts first, while we are at it; then reversals before any new request.
        self.reprint_owed()?;
        let drain = self.drain_reversals(true)?;
        let id = self.journal.create(
            req.operation,
            amount,
            self.config.currency,
            req.original,
            &format!("{} of {}", req.operation.name(), receipt::money(amount)),
        )?;
        self.in_flight.id = Some(id);
        self.say(
            Some(id),
            &format!(
                "{} {} started",
                req.operation.name(),
                receipt::money(amount)
            ),
        );
        if !drain.unanswered.is_empty() {
            let msg = format!(
                "host unreachable: {} earlier reversal(s) still pending, not sending new requests; nothing was charged",
                drain.unanswered.len()
            );
            return self.abort(id, &msg);
        }
        if self.config.reversal.block_sales_when_stuck {
            let stuck = self.journal.in_states(&[State::ReversalStuck])?;
            if !stuck.is_empty() {
                let ids: Vec<String> = stuck.iter().map(|t| t.id.to_string()).collect();
                let msg = format!(
                    "blocked by policy: reversal(s) stuck ({}); resolve with the acquirer first",
                    ids.join(", ")
                );
                return self.abort(id, &msg);
            }
        }

        // Health gate.
        let mut no_receipt = req.no_receipt;
        if no_receipt {
            self.journal
                .event(Some(id), "info", "no receipt: cashier override")?;
        }
        if let Some(reason) = self.health_gate(id, req, &mut no_receipt)? {
            return self.abort(id, &reason);
        }

        let end = match &original {
            Some(o) => self.by_reference(id, req.operation, amount, o, hook)?,
            None => self.with_card(id, req, amount, !no_receipt, hook)?,
        };
        if end {
            // The transaction is committed: the receipt.
            self.finish(id, no_receipt, hook)?;
        }
        let t = self.journal.get(id)?;
        let stands = matches!(t.state, State::Completed | State::ReceiptOwed);
        if let (Some(o), true) = (&original, stands) {
            match req.operation {
                Operation::Void => self.journal.mark_original(o.id, true, None)?,
                _ => self.journal.mark_original(o.id, false, Some(id))?,
            }
        }
        let receipt_text = (t.state == State::Completed && t.receipts_printed > 0)
            .then(|| receipt::text(&self.config, &t, false));
        if t.state == State::ReversalPending {
            self.drain_reversals(true)?;
        }
        let r = self.result(id, receipt_text)?;
        self.say(
            Some(id),
            &format!(
                "ended {}{}",
                r.state,
                r.reason
                    .as_deref()
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default()
            ),
        );
        Ok(r)
    }

    /// A void only inside the open batch: once the original's batch closed (or is being
    /// settled) the host has settled it, and the money goes back by a refund.
    fn check_void_batch(&self, o: &Txn) -> Result<(), TerminalError> {
        let open = self.journal.open_batch()?;
        let batch = o.batch.unwrap_or(1);
        if batch == open {
            return Ok(());
        }
        let how = match self.journal.settlement_of_batch(batch)? {
            Some(s) if s.state.is_final() => format!(
                "batch {batch} was closed by settlement {} on {}",
                s.id,
                time::human(s.updated_ms)
            ),
            Some(s) => format!("batch {batch} is being settled (settlement {})", s.id),
            None => format!("batch {batch} is closed"),
        };
        Err(TerminalError::Invalid(format!(
            "transaction {} cannot be voided: {how}, and a void is only possible in the open \
             batch ({open}); refund it instead (posctl refund {})",
            o.id,
            receipt::money(o.amount)
        )))
    }

    pub(super) fn abort(&mut self, id: i64, reason: &str) -> Result<TxnResult, TerminalError> {
        self.step_saying(
            id,
            State::Aborted,
            reason,
            Changes::reason(reason),
            &format!("aborted: {reason}"),
        )?;
        self.result(id, None)
    }

    /// Printer ready (unless no receipt) and reader reachable. Returns the refusal reason.
    pub(super) fn health_gate(
        &mut self,
        id: i64,
        req: &TxnRequest,
        no_receipt: &mut bool,
    ) -> Result<Option<String>, TerminalError> {
        if !*no_receipt {
            match self.devices.printer.as_mut() {
                None => {
                    *no_receipt = true;
                    self.journal
                        .event(Some(id), "info", "no receipt: the lane has no printer")?;
                }
                Some(p) => match p.status() {
                    Ok(c) => {
                        if let Some(kind) = c.blocking_fault() {
                            self.journal.event(
                                Some(id),
                                "fault",
                                &format!("printer: {}", kind.name()),
                            )?;
                            return Ok(Some(format!(
                                "health gate: {} (fix it, or run the sale with no receipt)",
                                fault_words(kind)
                            )));
                        }
                        if let Some(w) = c.warning() {
                            self.journal.event(
                                Some(id),
                                "device",
                                &format!("printer warning: {}", w.name()),
                            )?;
                            self.say(Some(id), &format!("warning: printer {}", w.name()));
                        }
                    }
                    Err(e) => {
                        self.journal.event(
                            Some(id),
                            "fault",
                            &format!("printer: {} ({e})", e.kind().name()),
                        )?;
                        return Ok(Some(format!(
                            "health gate: printer not answering: {e} (fix it, or run the sale with no receipt)"
                        )));
                    }
                },
            }
        }
        let needs_card = !matches!(req.operation, Operation::Completion | Operation::Void);
        if needs_card {
            let chip_needed = req.entry == CardEntry::Chip || self.devices.msr.is_none();
            match self.devices.reader.as_mut() {
                Some(r) => {
                    if let Err(e) = r.slot_status(0) {
                        self.journal.event(
                            Some(id),
                            "fault",
                            &format!("reader: {} ({e})", e.kind().name()),
                        )?;
                        return Ok(Some(format!("health gate: chip reader not answering: {e}")));
                    }
                }
                None if chip_needed => {
                    return Ok(Some("health gate: the lane has no chip reader".into()));
                }
                None => {}
            }
            if req.entry == CardEntry::Swipe && self.devices.msr.is_none() {
                return Ok(Some("the lane has no magnetic stripe reader".into()));
            }
        }
        Ok(None)
    }

    /// Completion or void: no card, the original's sealed card data. Returns true when
    /// committed.
    pub(super) fn by_reference(
        &mut self,
        id: i64,
        op: Operation,
        amount: u64,
        original: &Txn,
        hook: &mut dyn StepHook,
    ) -> Result<bool, TerminalError> {
        let hook = RefCell::new(hook);
        hook.borrow_mut().at(Step::CardRead);
        let secrets = match self.journal.sealed(original.id)? {
            Some(s) => Some(self.vault.open_sealed(&s, &original.id.to_be_bytes())?),
            None => None,
        };
        let card = secrets.map(|s| card_from_secrets(s, EntryMode::Reference));
        let facts = CardFacts {
            pan_masked: original.pan_masked.clone(),
            aid: None,
            label: None,
            card: card.unwrap_or(CardData {
                pan: Sensitive::default(),
                expiry: None,
                pan_sequence: None,
                track2: None,
                entry_mode: EntryMode::Reference,
                icc_data: None,
            }),
        };
        let orig = OriginalData {
            mti: original
                .mti
                .as_deref()
                .and_then(|m| m.parse().ok())
                .unwrap_or(original.kind.mti()),
            stan: original.stan.unwrap_or(0),
            transmission_time: original.transmission_time.clone().unwrap_or_default(),
            rrn: original.rrn.clone(),
            auth_code: original.auth_code.clone(),
        };
        let cx = Ctx {
            id,
            op,
            amount,
            hook: &hook,
        };
        let end = self.online(cx, facts, Some(orig), &mut || Ok(()))?;
        match end {
            HostEnd::Approved { .. } => {
                self.journal.transition(
                    id,
                    State::Committed,
                    "approved: nothing for a card to do",
                    Changes::default(),
                )?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Sale, pre-auth or refund with a card (`receipt`: one will be printed). Returns true
    /// when committed.
    pub(super) fn with_card(
        &mut self,
        id: i64,
        req: &TxnRequest,
        amount: u64,
        receipt: bool,
        hook: &mut dyn StepHook,
    ) -> Result<bool, TerminalError> {
        let hook = RefCell::new(hook);
        let cx = Ctx {
            id,
            op: req.operation,
            amount,
            hook: &hook,
        };
        if req.entry == CardEntry::Swipe {
            hook.borrow_mut().prompt(Prompt::InsertOrSwipe);
            match self.read_swipe()? {
                Ok(t2) if !t2.is_chip_card() => {
                    hook.borrow_mut().at(Step::CardRead);
                    return self.stripe(cx, t2, EntryMode::Swipe);
                }
                Ok(_) => {
                    // Chip first: the stripe of a chip card is used only after a failed
                    // chip read.
                    self.journal
                        .event(Some(id), "prompt", "chip card swiped: insert chip")?;
                    self.say(Some(id), Prompt::InsertChip.text());
                    hook.borrow_mut().prompt(Prompt::InsertChip);
                }
                Err(reason) => {
                    if reason != CANCELLED {
                        self.journal.event(Some(id), "fault", &reason)?;
                    }
                    self.abort(id, &reason)?;
                    return Ok(false);
                }
            }
        } else {
            hook.borrow_mut().prompt(Prompt::InsertCard);
        }
        hook.borrow_mut().at(Step::CardRead);
        match self.chip(cx, receipt)? {
            ChipEnd::Committed => return Ok(true),
            ChipEnd::Ended => return Ok(false),
            ChipEnd::ChipFailed(kind, why) => {
                let can_fallback = self.devices.msr.is_some()
                    && matches!(
                        kind,
                        FaultKind::CardMute
                            | FaultKind::Timeout
                            | FaultKind::Protocol
                            | FaultKind::CardUnsupported
                    );
                if !can_fallback {
                    self.abort(
                        id,
                        &format!("{}: {why}; nothing was charged", fault_words(kind)),
                    )?;
                    return Ok(false);
                }
                self.journal.event(
                    Some(id),
                    "fallback",
                    &format!(
                        "chip read failed ({}): fallback to magnetic stripe",
                        kind.name()
                    ),
                )?;
                self.say(Some(id), Prompt::SwipeFallback.text());
                hook.borrow_mut().prompt(Prompt::SwipeFallback);
            }
        }
        match self.read_swipe()? {
            Ok(t2) => self.stripe(cx, t2, EntryMode::FallbackSwipe),
            Err(reason) if reason == CANCELLED => {
                self.abort(id, CANCELLED)?;
                Ok(false)
            }
            Err(reason) => {
                self.abort(id, &format!("fallback swipe failed: {reason}"))?;
                Ok(false)
            }
        }
    }
}

pub(super) fn check_original(req: &TxnRequest, o: &Txn) -> Result<(), TerminalError> {
    let bad = |m: String| Err(TerminalError::Invalid(m));
    let settled = matches!(o.state, State::Completed | State::ReceiptOwed);
    match req.operation {
        Operation::Completion => {
            if o.kind != Operation::PreAuth {
                return bad(format!(
                    "transaction {} is a {}, not a pre-authorization",
                    o.id,
                    o.kind.name()
                ));
            }
            if !settled {
                return bad(format!(
                    "pre-authorization {} is {}, not approved",
                    o.id, o.state
                ));
            }
            if let Some(c) = o.completed_by {
                return bad(format!(
                    "pre-authorization {} was already completed by {c}",
                    o.id
                ));
            }
            if req.amount > o.amount {
                return bad(format!(
                    "completion {} is above the pre-authorized {}",
                    receipt::money(req.amount),
                    receipt::money(o.amount)
                ));
            }
        }
        Operation::Void => {
            if !matches!(
                o.kind,
                Operation::Sale | Operation::Completion | Operation::Refund
            ) {
                return bad(format!("a {} cannot be voided", o.kind.name()));
            }
            if !settled {
                return bad(format!(
                    "transaction {} is {}: only approved transactions can be voided",
                    o.id, o.state
                ));
            }
            if o.voided {
                return bad(format!("transaction {} is already voided", o.id));
            }
        }
        _ => {}
    }
    Ok(())
}
