//! A journal that cannot be written stops the lane; it never ends a sale silently.
//!
//! When a journal write fails during a transaction (a full disk, an I/O error, a read-only
//! remount, the file removed or replaced), [`Terminal::run`] returns the error and the
//! terminal enters an [`Outage`]:
//!
//! - no new transaction starts ([`TerminalError::Blocked`] before anything is written) until
//!   the journal takes writes again;
//! - the transaction in flight is looked at as the journal last recorded it (reads still
//!   work). If its request may have left and the sale is not committed (armed, sent,
//!   approved, or a reversal already pending), its reversal is sent **at once, from
//!   memory**: the journaled reversal record, the approval the journal could not take, and a
//!   STAN reserved in the identity marker ([`Journal::stan_in_memory`]). What the host said
//!   is kept in memory, and logged;
//! - [`Terminal::retry_journal`] (the service calls it with backoff) probes the journal; as
//!   soon as a write succeeds, what memory holds is journaled first (the memory reversal and
//!   its answer), then recovery runs, without a restart: nothing stays `created` or `armed`
//!   while the lane sells on.
//!
//! A journal removed or replaced is not retried: its open copy was rescued
//! ([`Journal::check_file`]) and the lane stays stopped until a person puts a journal back
//! and restarts the service.

use pos_acquirer::{Outcome, ReversalReason, WireEvent};
use pos_hal::{Fault, FaultKind};

use super::{Terminal, TerminalError};
use crate::journal::{Changes, JournalError, State};

/// The first wait before the journal is tried again; doubled per failure.
const RETRY_FIRST_MS: i64 = 250;
/// The longest wait between two tries.
const RETRY_MAX_MS: i64 = 10_000;

/// A reversal sent from memory while the journal could not be written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemoryReversal {
    /// The transaction reversed.
    pub txn: i64,
    /// The reversal's STAN.
    pub stan: u32,
    /// Whether the host took it.
    pub accepted: bool,
    /// What the host answered (or why there is no answer).
    pub answer: String,
}

/// Why the lane is not taking sales, and what it is doing about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Outage {
    /// The journal error, for people.
    pub cause: String,
    /// Its kind (`io` for a full disk or an I/O error, `unrecoverable` for a journal removed
    /// or replaced).
    pub kind: FaultKind,
    /// When it began (ms since the epoch).
    pub since_ms: i64,
    /// The transaction in flight when it began.
    pub txn: Option<i64>,
    /// The reversal sent from memory for it, if one was needed.
    pub reversal: Option<MemoryReversal>,
    /// Tries of the journal since.
    pub attempts: u32,
    /// The last try's error.
    pub last_error: Option<String>,
    /// Whether it clears on its own once writes succeed (`false`: the journal was removed
    /// or replaced; a person must put it back and restart).
    pub retried: bool,
    next_try_ms: i64,
}

impl Outage {
    /// One line for people (health checks, API answers).
    pub fn describe(&self) -> String {
        let mut s = format!("the journal cannot be written: {}", self.cause);
        if let Some(r) = &self.reversal {
            s.push_str(&format!(
                "; transaction {} was reversed from memory (STAN {}): {}",
                r.txn,
                r.stan,
                if r.accepted {
                    "the host took it"
                } else {
                    "no acceptance yet, it is retried"
                }
            ));
        }
        if self.retried {
            s.push_str("; sales resume by themselves once the journal can be written again");
        } else {
            s.push_str(
                "; sales stay stopped until the journal is put back and the service restarted",
            );
        }
        s
    }
}

/// The facts of the transaction in flight that the journal may not have taken yet.
#[derive(Debug, Clone, Default)]
pub(crate) struct InFlight {
    /// Its id, once created.
    pub id: Option<i64>,
    /// The host's approval `(rrn, auth code, response code)`, known before it is written.
    pub approval: Option<(String, String, String)>,
}

impl Terminal {
    /// Why the lane is not taking sales, while the journal cannot be written; `None` when
    /// it is taking them.
    pub fn outage(&self) -> Option<&Outage> {
        self.outage.as_ref()
    }

    /// Check that the journal file is still the one opened (not removed or replaced): the
    /// service calls it between transactions so an idle lane notices too. A journal found
    /// gone enters the outage (rescued, never retried).
    ///
    /// # Errors
    /// [`TerminalError::Blocked`] while the lane is stopped.
    pub fn check_journal(&mut self) -> Result<(), TerminalError> {
        if self.outage.is_none() {
            if let Err(e) = self.journal.check_file() {
                self.enter_outage(&e);
            }
        }
        match &self.outage {
            Some(o) => Err(TerminalError::Blocked(o.describe())),
            None => Ok(()),
        }
    }

    /// Try the journal again (when its backoff allows): on the first write that succeeds,
    /// journal what memory holds (the reversal sent from memory, with the host's answer),
    /// then run recovery ([`Terminal::recover`]). Returns `true` once the lane takes sales
    /// again (also when there was no outage).
    ///
    /// # Errors
    /// [`TerminalError`] from the recovery that follows a successful probe (the outage is
    /// over by then; recovery runs again at the next start).
    pub fn retry_journal(&mut self) -> Result<bool, TerminalError> {
        let now = self.clock.now_ms();
        let Some(o) = self.outage.as_mut() else {
            return Ok(true);
        };
        if !o.retried || now < o.next_try_ms {
            return Ok(false);
        }
        o.attempts += 1;
        let (txn, since, attempts, cause) = (o.txn, o.since_ms, o.attempts, o.cause.clone());
        let probe = self.journal.flush_memory_stans().and_then(|()| {
            self.journal.event(
                txn,
                "alarm",
                &format!(
                    "the journal could not be written for {} ms ({cause}); it takes writes again \
                     after {attempts} tries: what memory held is journaled now",
                    now - since
                ),
            )
        });
        if let Err(e) = probe {
            let o = self.outage.as_mut().ok_or_else(|| {
                TerminalError::Blocked("the outage vanished while it was retried".into())
            })?;
            let wait = (RETRY_FIRST_MS << o.attempts.min(8)).min(RETRY_MAX_MS);
            o.next_try_ms = now + wait;
            o.last_error = Some(e.to_string());
            if !matches!(e, JournalError::Sqlite { .. } | JournalError::Io { .. }) {
                o.retried = false;
            }
            return Ok(false);
        }
        let outage = self.outage.take();
        if let Some(r) = outage.and_then(|o| o.reversal) {
            self.journal_memory_reversal(&r)?;
        }
        let report = self.recover()?;
        self.say(
            txn,
            &format!(
                "the journal takes writes again: sales resume (recovery moved {} transaction(s))",
                report.moved.len()
            ),
        );
        Ok(true)
    }

    /// A transaction failed to record: stop taking sales, and reverse from memory what may
    /// have been authorized.
    pub(crate) fn enter_outage(&mut self, e: &JournalError) {
        let now = self.clock.now_ms();
        let facts = std::mem::take(&mut self.in_flight);
        let retried = !matches!(e, JournalError::Replaced { .. });
        log::error!(
            "journal write failed{}: {e}; the lane stops taking sales",
            facts
                .id
                .map(|id| format!(" in transaction {id}"))
                .unwrap_or_default()
        );
        let reversal = facts.id.and_then(|id| self.reverse_from_memory(id, &facts));
        let outage = Outage {
            cause: e.to_string(),
            kind: e.kind(),
            since_ms: now,
            txn: facts.id,
            reversal,
            attempts: 0,
            last_error: None,
            retried,
            next_try_ms: now,
        };
        let words = outage.describe();
        self.outage = Some(outage);
        self.say(facts.id, &words);
    }

    /// Send the reversal of `id` without writing anything, when the journal's last record
    /// of it says its request may have left and it is not committed.
    fn reverse_from_memory(&mut self, id: i64, facts: &InFlight) -> Option<MemoryReversal> {
        let mut t = match self.journal.get(id) {
            Ok(t) => t,
            Err(e) => {
                log::error!(
                    "txn {id}: the journal cannot even be read ({e}): nothing known to reverse \
                     from memory; recovery reverses it once the journal is back"
                );
                return None;
            }
        };
        let may_be_authorized = matches!(
            t.state,
            State::Armed | State::Sent | State::HostApproved | State::ReversalPending
        );
        let (Some(stan), Some(tt), Some(mti)) =
            (t.stan, t.transmission_time.clone(), t.mti.clone())
        else {
            return None;
        };
        if !may_be_authorized {
            return None;
        }
        if let Some((rrn, auth, _)) = &facts.approval {
            t.rrn = t.rrn.or(Some(rrn.clone()));
            t.auth_code = t.auth_code.or(Some(auth.clone()));
        }
        if t.reversal_reason.is_none() {
            t.reversal_reason = Some(
                if t.auth_code.is_some() {
                    ReversalReason::NotCompleted
                } else {
                    ReversalReason::NoValidResponse
                }
                .name()
                .into(),
            );
        }
        let card = match self.reversal_card(&t) {
            Ok((card, Ok(()))) => card,
            Ok((_, Err(e))) => {
                log::error!("txn {id}: {e}: reversal from memory sent without card data");
                None
            }
            Err(e) => {
                log::error!(
                    "txn {id}: sealed card data unreadable ({e}): reversal from memory sent without it"
                );
                None
            }
        };
        let rev_stan = self.journal.stan_in_memory();
        let reversal = self.build_reversal(&t, (stan, &tt, &mti), card, rev_stan, 1);
        self.say(
            Some(id),
            &format!(
                "the journal cannot be written: sending the reversal from memory (STAN {rev_stan}, reason {})",
                reversal.reason.name()
            ),
        );
        let outcome = self.acquirer.reverse(&reversal, &mut |ev: &WireEvent| {
            log::info!("txn {id}: reversal from memory: {ev:?}");
        });
        let (accepted, answer) = match outcome {
            Outcome::Approved(a) => (true, format!("accepted (response {})", a.response_code)),
            Outcome::Declined(d) => (
                false,
                format!("rejected ({} {})", d.response_code, d.reason),
            ),
            Outcome::NotSent(e) | Outcome::Unknown(e) | Outcome::BadResponse(e) => {
                (false, format!("no answer ({e})"))
            }
        };
        log::warn!("txn {id}: reversal from memory (STAN {rev_stan}): {answer}");
        Some(MemoryReversal {
            txn: id,
            stan: rev_stan,
            accepted,
            answer,
        })
    }

    /// Journal the reversal sent from memory: the transaction to reversal pending (with its
    /// reason), and to reversed when the host took it. When it did not, recovery's drain
    /// sends it again (a repeat).
    fn journal_memory_reversal(&mut self, r: &MemoryReversal) -> Result<(), TerminalError> {
        let t = self.journal.get(r.txn)?;
        let note = format!(
            "reversal sent from memory (STAN {}) while the journal could not be written: {}",
            r.stan, r.answer
        );
        if t.state.next().contains(&State::ReversalPending) {
            let reason = if t.auth_code.is_some() || t.state == State::HostApproved {
                ReversalReason::NotCompleted
            } else {
                ReversalReason::NoValidResponse
            };
            self.journal.transition(
                r.txn,
                State::ReversalPending,
                &note,
                Changes {
                    reason: Some("the journal could not be written: reversed".into()),
                    reversal_reason: Some(reason.name().into()),
                    ..Changes::default()
                },
            )?;
        } else {
            self.journal.event(Some(r.txn), "info", &note)?;
        }
        let now = self.journal.get(r.txn)?;
        if r.accepted && now.state == State::ReversalPending {
            self.journal.reversal_attempt(r.txn)?;
            self.journal.transition(
                r.txn,
                State::Reversed,
                &format!(
                    "the host took the reversal sent from memory (STAN {})",
                    r.stan
                ),
                Changes::default(),
            )?;
        }
        Ok(())
    }
}
