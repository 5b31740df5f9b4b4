//! The receipt: printed after the sale is committed, owed (and reprinted when the printer
//! is ready) when it cannot be, or the sale reversed when the policy requires one.

use super::*;

impl Terminal {
    /// Print owed receipts while the printer is ready (each then Completed).
    ///
    /// # Errors
    /// [`TerminalError::Journal`].
    pub fn reprint_owed(&mut self) -> Result<Vec<i64>, TerminalError> {
        self.refuse_in_outage()?;
        let r = self.reprint_owed_inner();
        self.storage_guard(r)
    }

    pub(super) fn reprint_owed_inner(&mut self) -> Result<Vec<i64>, TerminalError> {
        let mut done = Vec::new();
        let owed = self.journal.in_states(&[State::ReceiptOwed])?;
        if owed.is_empty() {
            return Ok(done);
        }
        for t in owed {
            let Some(printer) = self.devices.printer.as_mut() else {
                break;
            };
            match printer.status() {
                Ok(c) if c.is_ready() => {}
                _ => break,
            }
            let doc = receipt::document(&self.config, &t, true);
            match printer.print(&doc) {
                Ok(pos_hal::PrintOutcome::Unconfirmed { .. }) | Err(_) => break,
                Ok(_) => {
                    self.journal.receipt_printed(t.id)?;
                    self.step_saying(
                        t.id,
                        State::Completed,
                        "owed receipt printed (duplicate)",
                        Changes::default(),
                        "owed receipt printed",
                    )?;
                    done.push(t.id);
                }
            }
        }
        Ok(done)
    }

    /// Committed → (Printing → print) → Completed / ReceiptOwed / ReversalPending.
    pub(super) fn finish(
        &mut self,
        id: i64,
        no_receipt: bool,
        hook: &mut dyn StepHook,
    ) -> Result<(), TerminalError> {
        if no_receipt || self.devices.printer.is_none() {
            self.journal.transition(
                id,
                State::Completed,
                "completed without a receipt",
                Changes {
                    no_receipt: Some(true),
                    ..Changes::default()
                },
            )?;
            return Ok(());
        }
        self.journal.transition(
            id,
            State::Printing,
            "printing the receipt",
            Changes::default(),
        )?;
        hook.at(Step::Printing);
        let t = self.journal.get(id)?;
        let doc = receipt::document(&self.config, &t, false);
        let printed = match self.devices.printer.as_mut() {
            Some(p) => p.print(&doc),
            None => return Ok(()),
        };
        let failure = match printed {
            Ok(pos_hal::PrintOutcome::Unconfirmed { reason }) => Some((
                FaultKind::PrinterOffline,
                format!("receipt not confirmed: {reason}"),
            )),
            Ok(_) => None,
            Err(e) => Some((e.kind(), e.to_string())),
        };
        match failure {
            None => {
                self.journal.receipt_printed(id)?;
                hook.at(Step::AfterPrint);
                self.step(id, State::Completed, "receipt printed", Changes::default())?;
            }
            Some((kind, why)) => {
                self.journal.event(
                    Some(id),
                    "fault",
                    &format!("printer: {} ({why})", kind.name()),
                )?;
                if self.config.receipt.policy == ReceiptMode::Required {
                    self.begin_reversal(
                        id,
                        ReversalReason::Cancelled,
                        &format!(
                            "{}: no receipt, and the policy requires one: reversing",
                            fault_words(kind)
                        ),
                    )?;
                } else {
                    let msg = format!(
                        "{}: receipt owed, reprinted when the printer is ready",
                        fault_words(kind)
                    );
                    self.step(id, State::ReceiptOwed, &msg, Changes::reason(&msg))?;
                }
            }
        }
        Ok(())
    }
}
