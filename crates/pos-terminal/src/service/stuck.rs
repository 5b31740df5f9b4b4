//! What an operator does with a stuck reversal once the acquirer has been called: send it
//! again ([`Terminal::requeue_stuck_reversal`], when the acquirer fixed what made it reject
//! it) or record that the acquirer reversed it on its side
//! ([`Terminal::resolve_stuck_reversal`]). Both are journaled with the operator's words, and
//! both refuse anything but a stuck reversal.

use super::*;

/// At most this many characters in an operator's note.
pub const MAX_NOTE: usize = 200;
/// At most this many characters in an acquirer's reference.
pub const MAX_REFERENCE: usize = 64;

/// Why the operator's words cannot be journaled, if they cannot: empty, too long, control
/// characters, or a run of 13 or more digits (a card number has no place in a note).
pub fn check_operator_text(what: &str, text: &str, max: usize) -> Result<(), TerminalError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(TerminalError::Invalid(format!("the {what} is empty")));
    }
    if text.chars().count() > max {
        return Err(TerminalError::Invalid(format!(
            "the {what} is longer than {max} characters"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(TerminalError::Invalid(format!(
            "the {what} has control characters"
        )));
    }
    let mut run = 0;
    for c in text.chars() {
        run = if c.is_ascii_digit() { run + 1 } else { 0 };
        if run >= 13 {
            return Err(TerminalError::Invalid(format!(
                "the {what} has 13 or more digits in a row: no card numbers in the journal"
            )));
        }
    }
    Ok(())
}

impl Terminal {
    /// The stuck reversal `id`, or why not.
    fn stuck(&self, id: i64) -> Result<Txn, TerminalError> {
        let t = match self.journal.get(id) {
            Ok(t) => t,
            Err(JournalError::NotFound(_)) => {
                return Err(TerminalError::Invalid(format!("no transaction {id}")));
            }
            Err(e) => return Err(e.into()),
        };
        if t.state != State::ReversalStuck {
            return Err(TerminalError::Invalid(format!(
                "transaction {id} is {}, not reversal_stuck: only a stuck reversal can be \
                 requeued or resolved",
                t.state
            )));
        }
        Ok(t)
    }

    /// Send the stuck reversal `id` again: it goes back to `reversal_pending`, due now, with
    /// its rejection count from zero (the next drain, `POST /v1/reversals/retry` or `posctl
    /// recover`, sends it). `note` says why (the acquirer's answer), journaled with an
    /// `operator` event.
    ///
    /// # Errors
    /// [`TerminalError::Invalid`] for an unknown transaction, one not stuck, or a note that
    /// cannot be journaled ([`check_operator_text`]); [`TerminalError::Blocked`] in a journal
    /// outage; [`TerminalError::Journal`].
    pub fn requeue_stuck_reversal(&mut self, id: i64, note: &str) -> Result<(), TerminalError> {
        self.refuse_in_outage()?;
        check_operator_text("note", note, MAX_NOTE)?;
        self.stuck(id)?;
        let r = self.requeue_inner(id, note.trim());
        self.storage_guard(r)
    }

    fn requeue_inner(&mut self, id: i64, note: &str) -> Result<(), TerminalError> {
        let msg = format!("stuck reversal requeued by an operator: {note}");
        self.journal
            .transition(id, State::ReversalPending, &msg, Changes::reason(&msg))?;
        // After the transition (which makes it due at the journal's wall-clock now): due by
        // the service's clock, the rejections from zero. A crash between the two leaves it
        // pending with its old count: one more rejection makes it stuck again, visibly.
        let now = self.clock.now_ms();
        self.journal.reversal_requeue(id, now)?;
        self.journal.event(Some(id), "operator", &msg)?;
        self.say(Some(id), &msg);
        Ok(())
    }

    /// Record that the acquirer reversed `id` on its side (its `reference`): the stuck
    /// reversal ends `reversed`, with an `operator` event. Nothing is sent to the host.
    ///
    /// # Errors
    /// [`TerminalError::Invalid`] for an unknown transaction, one not stuck, or a reference
    /// that cannot be journaled ([`check_operator_text`], at most [`MAX_REFERENCE`]
    /// characters); [`TerminalError::Blocked`] in a journal outage; [`TerminalError::Journal`].
    pub fn resolve_stuck_reversal(
        &mut self,
        id: i64,
        reference: &str,
    ) -> Result<(), TerminalError> {
        self.refuse_in_outage()?;
        check_operator_text("reference", reference, MAX_REFERENCE)?;
        self.stuck(id)?;
        let msg = format!(
            "reversed by the acquirer outside the terminal (reference {}), recorded by an operator",
            reference.trim()
        );
        let r = (|| {
            self.journal
                .transition(id, State::Reversed, &msg, Changes::reason(&msg))?;
            self.journal.event(Some(id), "operator", &msg)?;
            Ok(())
        })();
        let r = self.storage_guard(r);
        if r.is_ok() {
            self.say(Some(id), &msg);
        }
        r
    }
}
