//! Settlement on the worker: asked through the API or due on the schedule, run between
//! transactions (never during one), its outcome on the event stream.

use pos_terminal::TerminalError;
use pos_terminal::journal::SettlementState;
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
}
