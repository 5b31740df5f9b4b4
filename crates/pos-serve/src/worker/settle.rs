//! Settlement on the worker: asked through the API or due on the schedule, run between
//! transactions (never during one), its outcome on the event stream.
//!
//! The schedule's decisions are [`pos_terminal::schedule::SettlementSchedule`]'s; the time is
//! the terminal's clock (a manual one in tests), so nothing here sleeps or reads the system
//! time for it.

use pos_terminal::TerminalError;
use pos_terminal::journal::{SettlementState, State};
use pos_terminal::service::SettlementReport;

use super::Worker;
use crate::ApiError;
use crate::events::{EventKind, NewEvent};

impl Worker {
    /// Settle the open batch (or resume the unfinished settlement). Sales are refused with
    /// `409 busy` meanwhile (`LaneState::settling`). The outcome is a `settlement` event;
    /// each difference found is a `settlement_difference` event (from the journal watcher,
    /// as it is written).
    ///
    /// Errors: `409 settlement_refused` when it could not start (nothing changed: a pending
    /// reversal the host did not take, a stuck one without `force`, a transaction in
    /// flight); `502 settlement_unfinished` when it started and could not finish now (the
    /// batch stays frozen; the next settlement resumes it); journal errors as elsewhere.
    pub(super) fn settle(
        &mut self,
        force: bool,
        origin: &str,
    ) -> Result<SettlementReport, ApiError> {
        self.shared.lock().settling = true;
        self.shared.metrics.busy.set(1);
        let r = self.terminal.settle(force);
        self.shared.metrics.busy.set(0);
        let out = match r {
            Ok(report) => {
                self.shared
                    .metrics
                    .settlement_differences
                    .set(i64::try_from(report.differences.len()).unwrap_or(i64::MAX));
                let detail = match report.state {
                    SettlementState::Balanced => format!(
                        "settlement {} of batch {} ({origin}): balanced with the host; batch {} is open",
                        report.id,
                        report.batch,
                        report.batch.saturating_add(1)
                    ),
                    _ => format!(
                        "settlement {} of batch {} ({origin}): closed with {} difference(s) with the host: see GET /v1/report; evidence: posctl journal settlement {}",
                        report.id,
                        report.batch,
                        report.differences.len(),
                        report.id
                    ),
                };
                self.publish(NewEvent::new(EventKind::Settlement, detail).settlement(report.id));
                Ok(report)
            }
            Err(TerminalError::Settlement(message)) => {
                let unfinished = self
                    .terminal
                    .journal()
                    .unfinished_settlement()
                    .ok()
                    .flatten();
                let (err, id) = match unfinished {
                    Some(s) => (
                        ApiError::new(
                            502,
                            "settlement_unfinished",
                            format!(
                                "settlement {} of batch {} stopped at {}: {message}",
                                s.id, s.batch, s.state
                            ),
                        ),
                        Some(s.id),
                    ),
                    None => (ApiError::new(409, "settlement_refused", message), None),
                };
                log::warn!("settlement ({origin}): {}", err.message);
                let mut ev = NewEvent::new(
                    EventKind::Settlement,
                    format!("settlement ({origin}) not done: {}", err.message),
                );
                ev.settlement = id;
                self.publish(ev);
                Err(err)
            }
            Err(e) => {
                log::error!("settlement ({origin}) failed: {e}");
                self.publish(NewEvent::new(
                    EventKind::Settlement,
                    format!("settlement ({origin}) failed: {e}"),
                ));
                Err(ApiError::from(e))
            }
        };
        // A journal that cannot be written stops the lane (published as for a sale).
        self.sync_outage();
        self.shared.lock().settling = false;
        self.shared.changed.notify_all();
        self.gauges();
        self.flush_events();
        out
    }

    /// The scheduled settlement, when due (see the module's rules): settle if no sale runs
    /// or is starting, else try again a little later; the outcome in the journal (a
    /// `settlement` event row) besides the settlement's own record, and on the event stream.
    pub(super) fn scheduled_settlement(&mut self) {
        let Some(schedule) = self.schedule.as_ref() else {
            return;
        };
        let now = self.terminal.clock().now_ms();
        let last_started = match self.terminal.journal().settlements(1) {
            Ok(v) => v.first().map(|s| s.created_ms),
            Err(e) => {
                log::error!("scheduled settlement: cannot read the journal: {e}");
                return;
            }
        };
        let Some(slot) = schedule.due(now, last_started) else {
            return;
        };
        let at = pos_terminal::time::human(slot);
        let busy = {
            let st = self.shared.lock();
            st.current.is_some() || st.settling
        };
        let in_flight = self
            .terminal
            .journal()
            .count_in_states(&State::IN_FLIGHT)
            .unwrap_or(1);
        if busy || in_flight > 0 {
            if let Some(s) = self.schedule.as_mut() {
                let next = s.busy(now);
                log::info!(
                    "scheduled settlement ({at}): a sale runs; trying again at {}",
                    pos_terminal::time::human(next)
                );
            }
            return;
        }
        let origin = format!("scheduled for {at}");
        let r = self.settle(false, &origin);
        let note = match &r {
            Ok(report) => {
                if let Some(s) = self.schedule.as_mut() {
                    s.settled(slot);
                }
                format!(
                    "scheduled settlement ({at}): settlement {} of batch {} {}{}",
                    report.id,
                    report.batch,
                    report.state,
                    if report.differences.is_empty() {
                        String::new()
                    } else {
                        format!(" with {} difference(s)", report.differences.len())
                    }
                )
            }
            Err(e) => {
                let next = self.schedule.as_mut().map_or(now, |s| s.failed(now));
                format!(
                    "scheduled settlement ({at}) not done: {}; trying again at {}",
                    e.message,
                    pos_terminal::time::human(next)
                )
            }
        };
        log::info!("{note}");
        if let Err(e) = self.terminal.journal_mut().event(None, "settlement", &note) {
            log::error!("cannot journal the scheduled settlement's outcome: {e}");
        }
    }
}
