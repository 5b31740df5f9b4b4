//! Transactions on the worker: the simulated cardholder, one transaction run to its resting
//! state, and the journal watcher that turns every committed change into an event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pos_hal::{ChipReader, Fault, SlotState};
use pos_terminal::inject::{InjectedFault, Injection, Step, StepHook};
use pos_terminal::journal::Change;
use pos_terminal::{CardEntry, Prompt, State, TxnRequest};

use super::{Shared, Worker};
use crate::ApiError;
use crate::events::{EventKind, NewEvent};

/// The worker's hook: prompts become events; on a simulated lane the injected faults are
/// performed and the simulated cardholder acts.
struct ServeHook<'a> {
    shared: &'a Shared,
    sim: Option<pos_lane::SimHook>,
}

impl StepHook for ServeHook<'_> {
    fn at(&mut self, step: Step) {
        if let Some(h) = self.sim.as_mut() {
            h.at(step);
        }
    }

    fn prompt(&mut self, prompt: Prompt) {
        let id = self.shared.lock().current.as_ref().and_then(|c| c.id);
        let mut e = NewEvent::new(EventKind::Prompt, prompt.text());
        e.txn = id;
        self.shared.bus.publish(e);
        if let Some(h) = self.sim.as_mut() {
            h.prompt(prompt);
        }
    }
}

/// The journal watcher: every committed change becomes an event, and the API side learns
/// the id and state of the transaction in progress.
pub(super) fn observe(shared: &Shared, change: &Change) {
    match change {
        Change::State {
            id,
            operation: _,
            from,
            to,
            note,
        } => {
            {
                let mut st = shared.lock();
                if from.is_none() {
                    if let Some(cur) = st.current.as_mut().filter(|c| c.id.is_none()) {
                        cur.id = Some(*id);
                        if let Some(tx) = st.pending_start.take() {
                            let _ = tx.send(Ok(*id));
                        }
                    }
                }
                if let Some(cur) = st.current.as_mut().filter(|c| c.id == Some(*id)) {
                    cur.state = Some(*to);
                }
            }
            let mut e = NewEvent::new(EventKind::TransactionState, note.clone()).txn(*id);
            e.state = Some(to.name().to_string());
            shared.bus.publish(e);
            if *to == State::ReversalStuck {
                shared.bus.publish(
                    NewEvent::new(
                        EventKind::ReversalStuck,
                        format!("reversal of transaction {id} is stuck: the host keeps rejecting it; call the acquirer"),
                    )
                    .txn(*id),
                );
            }
            shared.changed.notify_all();
        }
        Change::Difference(d) => {
            let mut e = NewEvent::new(
                EventKind::SettlementDifference,
                format!(
                    "settlement of batch {}: {} ({}): {}",
                    d.batch, d.detail, d.kind, d.action
                ),
            )
            .settlement(d.settlement_id);
            e.txn = d.txn_id;
            shared.bus.publish(e);
        }
        Change::Event { txn, kind, detail } => {
            if matches!(kind.as_str(), "fault" | "alarm" | "fallback") {
                let mut e = NewEvent::new(EventKind::TransactionFault, detail.clone());
                e.txn = *txn;
                shared.bus.publish(e);
            }
        }
    }
}

impl Worker {
    pub(super) fn printed(&self, ids: &[i64]) {
        for id in ids {
            self.shared.bus.publish(
                NewEvent::new(
                    EventKind::ReceiptPrinted,
                    "owed receipt printed (DUPLICATE)",
                )
                .txn(*id)
                .device("printer"),
            );
        }
    }

    /// The simulated cardholder (auto mode): a card in the reader for a chip transaction, a
    /// swipe for a swiped one.
    fn act_cardholder(&mut self, req: &TxnRequest) {
        let Some(sim) = self.shared.sim.clone() else {
            return;
        };
        if !self.shared.lock().cardholder_auto || req.original.is_some() {
            return;
        }
        match req.entry {
            CardEntry::Swipe => {
                if let Err(e) = sim.swipe(self.card.clone()) {
                    log::warn!("simulated cardholder: swipe failed: {e}");
                }
            }
            CardEntry::Chip => {
                let present = self
                    .terminal
                    .devices_mut()
                    .reader
                    .as_mut()
                    .and_then(|r| r.slot_status(0).ok())
                    .is_some_and(|s| s.contains(SlotState::CARD_PRESENT));
                if !present || self.card_dirty {
                    if let Err(e) = sim.insert_card(self.card.clone()) {
                        log::warn!("simulated cardholder: insert failed: {e}");
                    } else {
                        // Let the driver see the new card before the service looks.
                        std::thread::sleep(Duration::from_millis(150));
                    }
                }
                self.card_dirty = false;
            }
        }
    }

    pub(super) fn start(&mut self, req: TxnRequest, inject: Vec<Injection>) {
        {
            let mut st = self.shared.lock();
            if st.abandoned {
                // Its client gave up waiting (and was told it will not start).
                st.abandoned = false;
                st.current = None;
                st.pending_start = None;
                drop(st);
                self.shared.changed.notify_all();
                return;
            }
        }
        let started = Instant::now();
        self.shared.metrics.busy.set(1);
        self.act_cardholder(&req);
        let sim_hook = self.shared.sim.as_ref().map(|sim| {
            let host = self
                .shared
                .host
                .as_ref()
                .map(|h| pos_lane::arm_fake_host(Arc::clone(h), &inject));
            sim.hook(inject.clone(), host)
        });
        if inject.iter().any(|i| {
            matches!(
                i.fault,
                InjectedFault::CardMute | InjectedFault::CardRemoved
            )
        }) {
            self.card_dirty = true;
        }
        let mut hook = ServeHook {
            shared: &self.shared,
            sim: sim_hook,
        };
        let r = self.terminal.run(&req, &mut hook);
        self.shared.metrics.busy.set(0);
        match r {
            Ok(res) => {
                self.shared.metrics.ended(res.operation, res.state.name());
                self.shared
                    .metrics
                    .transaction_seconds
                    .observe(started.elapsed().as_secs_f64());
            }
            Err(e) => {
                let mut st = self.shared.lock();
                match st.pending_start.take() {
                    // Refused before anything was written.
                    Some(tx) => {
                        let _ = tx.send(Err(ApiError::from(e)));
                    }
                    // The journal cannot be written: the terminal stopped the lane and
                    // reversed from memory what needed it; the outage is published below and
                    // retried at every tick.
                    None if self.terminal.outage().is_some() => {
                        drop(st);
                        self.sync_outage();
                        st = self.shared.lock();
                    }
                    None => {
                        let id = st.current.as_ref().and_then(|c| c.id);
                        drop(st);
                        log::error!("transaction {id:?} failed to record: {e}");
                        let mut ev = NewEvent::new(
                            EventKind::TransactionFault,
                            format!(
                                "the journal failed: {e}; moving the transaction to a resting state"
                            ),
                        );
                        ev.fault = Some(e.kind().name().to_string());
                        ev.txn = id;
                        self.shared.bus.publish(ev);
                        // As after a crash: whatever is in flight goes to a resting state
                        // (reversal pending when the request may have left).
                        match self.terminal.recover() {
                            Ok(r) => log::warn!("recovered after the journal error: {:?}", r.moved),
                            Err(e) => log::error!("recovery after the journal error failed: {e}"),
                        }
                        st = self.shared.lock();
                    }
                }
                drop(st);
            }
        }
        {
            let mut st = self.shared.lock();
            st.current = None;
            if let Some(tx) = st.pending_start.take() {
                let _ = tx.send(Err(ApiError::internal("the transaction did not start")));
            }
        }
        self.shared.changed.notify_all();
        // Look at the devices at once: a fault during the sale shows now.
        self.last_poll = Instant::now() - Duration::from_secs(3600);
        self.tick(false);
    }
}
