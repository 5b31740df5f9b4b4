//! The lane worker: one thread that owns the terminal service and the lane's devices. It
//! runs one transaction at a time, and between transactions supervises the devices (card
//! presence, printer conditions, re-opening what went away, scheduled health checks), sends
//! pending reversals when due and prints owed receipts when the printer is ready.
//!
//! This file is the worker's loop (commands, the supervision tick, retention, gauges);
//! `status` has the device status types the API shows, `supervise` watches and re-opens the
//! devices, `txn` runs a transaction and turns journal changes into events.

mod settle;
mod status;
mod supervise;
mod txn;

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use pos_hal::{CardSpec, CashDrawer, PrinterConditions, ReceiptPrinter};
use pos_lane::SimLane;
use pos_terminal::config::SupervisionConfig;
use pos_terminal::inject::Injection;
use pos_terminal::service::DrainReport;
use pos_terminal::{State, Terminal, TxnRequest};

use crate::ApiError;
use crate::events::{EventBus, EventKind, NewEvent};
use crate::instrument::{Lost, TimedPrinter, TimedReader};
use crate::metrics::Metrics;

pub use status::{Availability, Current, DeviceStatus, DevicesStatus, HealthSummary, Role};
pub use supervise::Reopen;

use supervise::forward_reader_events;
use txn::observe;

/// What the HTTP side and the worker share.
pub(crate) struct LaneState {
    pub current: Option<Current>,
    pub shutting_down: bool,
    pub devices: DevicesStatus,
    pub pending_start: Option<Sender<Result<i64, ApiError>>>,
    /// The client of the queued start gave up (timeout): the worker must not start it.
    pub abandoned: bool,
    pub cardholder_auto: bool,
    /// Why the lane takes no sales (its journal cannot be written); `None` while it does.
    pub sales_blocked: Option<String>,
    /// A settlement is asked for or running: sales wait for it (409 busy).
    pub settling: bool,
}

/// The lane, as seen from the API threads.
pub(crate) struct Shared {
    pub bus: EventBus,
    pub metrics: Arc<Metrics>,
    pub state: Mutex<LaneState>,
    pub changed: crate::notify::Changed,
    pub cancel: OnceLock<pos_terminal::CancelHandle>,
    /// False once the worker thread ended (it panicked, or stopped).
    pub worker_alive: AtomicBool,
    pub sim: Option<SimLane>,
    pub host: Option<Arc<pos_acquirer::sim::FakeHost>>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, LaneState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the API asks of the worker.
pub(crate) enum Command {
    /// Run a transaction (the reply goes through `LaneState::pending_start`).
    Start {
        req: TxnRequest,
        inject: Vec<Injection>,
    },
    /// Print owed receipts now.
    Reprint(Sender<Result<Vec<i64>, ApiError>>),
    /// Send pending reversals now, whatever their backoff.
    RetryReversals(Sender<Result<DrainReport, ApiError>>),
    /// An operator's action on a stuck reversal.
    Stuck {
        /// The transaction.
        id: i64,
        /// Requeue or resolve.
        action: StuckAction,
        /// Done, or why not.
        reply: Sender<Result<(), ApiError>>,
    },
    /// Look at every device and run the health checks now.
    Check(Sender<DevicesStatus>),
    /// Run the printer's recovery sequence (after a jam was cleared).
    RecoverPrinter(Sender<Result<Vec<&'static str>, ApiError>>),
    /// Settle the open batch with the host (or resume an unfinished settlement); `force`
    /// settles past stuck reversals. The API set `LaneState::settling` before sending it.
    Settle {
        force: bool,
        reply: Sender<Result<pos_terminal::service::SettlementReport, ApiError>>,
    },
    /// Pulse the cash drawer (`POST /v1/drawer/open`).
    OpenDrawer(Sender<Result<serde_json::Value, ApiError>>),
    /// Read the cash drawer's switch (`GET /v1/drawer`).
    DrawerStatus(Sender<Result<serde_json::Value, ApiError>>),
    /// Finish and stop.
    Stop,
}

/// What an operator does with a stuck reversal (`POST /v1/reversals/{id}/requeue|resolve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StuckAction {
    /// Send it again (the note says why).
    Requeue(String),
    /// The acquirer reversed it (its reference).
    Resolve(String),
}

/// After a reprint that left receipts owed, how long before trying again (unless the
/// printer's conditions change first).
const REPRINT_BACKOFF: Duration = Duration::from_secs(30);

struct Slot {
    role: Role,
    lost: Lost,
    next_reopen: Instant,
    backoff: Duration,
}

/// The worker's own state.
pub(crate) struct Worker {
    terminal: Terminal,
    shared: Arc<Shared>,
    reopen: Box<dyn Reopen>,
    supervision: SupervisionConfig,
    slots: [Slot; 3],
    last_poll: Instant,
    next_health: Instant,
    next_gauges: Instant,
    /// The simulated lane's card.
    card: CardSpec,
    card_dirty: bool,
    /// The reader's driver reports insertions and removals itself (its monitor thread):
    /// polling then only updates the status, the events come from the driver.
    reader_events: Arc<AtomicU64>,
    /// Events waiting for the status they describe to be stored (a client reacting to an
    /// event and reading /v1/devices sees the new state).
    deferred: std::cell::RefCell<Vec<NewEvent>>,
    /// Owed receipts are not tried again before this (after a reprint that left some owed).
    next_reprint: Instant,
    /// The retention policy runs next at this time (idle lane only).
    next_archive: Instant,
    /// Settlement on a schedule (`[settlement] at`), if configured.
    schedule: Option<pos_terminal::schedule::SettlementSchedule>,
}

/// Transactions archived per idle tick: a sale that arrives meanwhile waits at most one
/// batch (well under a second).
const ARCHIVE_BATCH: usize = 1_000;

impl Worker {
    /// Set up: wrap the devices, watch the journal, recover what the last run left.
    pub(crate) fn new(
        mut terminal: Terminal,
        shared: Arc<Shared>,
        reopen: Box<dyn Reopen>,
        card: CardSpec,
    ) -> Worker {
        let supervision = terminal.config().supervision.clone();
        let schedule = match pos_terminal::schedule::SettlementSchedule::from_config(
            &terminal.config().settlement,
        ) {
            Ok(s) => s,
            Err(e) => {
                log::error!("no scheduled settlement: {e}");
                None
            }
        };
        let initial = Duration::from_millis(supervision.reopen_initial_ms);
        let now = Instant::now();
        let slot = |role| Slot {
            role,
            lost: Lost::default(),
            next_reopen: now,
            backoff: initial,
        };
        let slots = [slot(Role::Reader), slot(Role::Printer), slot(Role::Msr)];
        let _ = shared.cancel.set(terminal.cancel_handle());
        {
            let devices = terminal.devices_mut();
            if let Some(r) = devices.reader.take() {
                devices.reader = Some(Box::new(TimedReader::new(
                    r,
                    Arc::clone(&shared.metrics),
                    slots[0].lost.clone(),
                )));
            }
            if let Some(p) = devices.printer.take() {
                devices.printer = Some(Box::new(TimedPrinter::new(
                    p,
                    Arc::clone(&shared.metrics),
                    slots[1].lost.clone(),
                )));
            }
        }
        let reader_events = Arc::new(AtomicU64::new(0));
        if let Some(r) = terminal.devices_mut().reader.as_mut() {
            forward_reader_events(r, &shared, &reader_events);
        }
        let watcher = Arc::clone(&shared);
        terminal
            .journal_mut()
            .set_observer(Box::new(move |change| observe(&watcher, change)));
        Worker {
            terminal,
            shared,
            reopen,
            supervision,
            slots,
            last_poll: now - Duration::from_secs(3600),
            next_health: now,
            next_gauges: now,
            card,
            card_dirty: false,
            reader_events,
            deferred: std::cell::RefCell::new(Vec::new()),
            next_reprint: now,
            next_archive: now,
            schedule,
        }
    }

    /// Start-up recovery, then serve commands until told to stop.
    pub(crate) fn run(mut self, commands: Receiver<Command>) {
        // The devices as opened, before recovery talks to the host.
        for i in 0..3 {
            self.supervise(i, false, true);
        }
        match self.terminal.recover() {
            Ok(r) => {
                for (id, from, to) in &r.moved {
                    log::warn!("recovery: transaction {id} was {from} at start-up, now {to}");
                }
            }
            Err(e) => log::error!("start-up recovery failed: {e}"),
        }
        self.tick(true);
        let poll = Duration::from_millis(self.supervision.poll_ms);
        loop {
            match commands.recv_timeout(poll) {
                Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(cmd) => self.handle(cmd),
                Err(RecvTimeoutError::Timeout) => {}
            }
            if !self.shared.lock().shutting_down {
                self.tick(false);
            }
        }
        // Anything queued behind the stop is refused, never dropped silently.
        while let Ok(cmd) = commands.try_recv() {
            self.refuse(cmd);
        }
        log::info!("lane worker stopped");
    }

    fn refuse(&mut self, cmd: Command) {
        let err = ApiError::shutting_down;
        match cmd {
            Command::Start { .. } => {
                let mut st = self.shared.lock();
                if let Some(tx) = st.pending_start.take() {
                    let _ = tx.send(Err(err()));
                }
                st.current = None;
                self.shared.changed.notify_all();
            }
            Command::Reprint(tx) => {
                let _ = tx.send(Err(err()));
            }
            Command::RetryReversals(tx) => {
                let _ = tx.send(Err(err()));
            }
            Command::Stuck { reply, .. } => {
                let _ = reply.send(Err(err()));
            }
            Command::RecoverPrinter(tx) => {
                let _ = tx.send(Err(err()));
            }
            Command::Settle { reply, .. } => {
                self.shared.lock().settling = false;
                let _ = reply.send(Err(err()));
            }
            Command::OpenDrawer(tx) | Command::DrawerStatus(tx) => {
                let _ = tx.send(Err(err()));
            }
            Command::Check(tx) => {
                let _ = tx.send(self.shared.lock().devices.clone());
            }
            Command::Stop => {}
        }
    }

    /// The drawer's answer as the API shows it: its switch, the pulse, the sale rule.
    fn drawer_answer(
        &mut self,
        state: pos_hal::DrawerState,
        opened: Option<bool>,
    ) -> serde_json::Value {
        let pulse = self
            .terminal
            .devices_mut()
            .drawer
            .as_ref()
            .map(|d| d.pulse());
        let mut v = serde_json::json!({
            "state": state,
            "pulse": pulse,
            "require_closed_before_sale": self.terminal.config().drawer.require_closed_before_sale,
        });
        if let (Some(o), Some(map)) = (opened, v.as_object_mut()) {
            map.insert("opened".into(), serde_json::Value::Bool(o));
        }
        v
    }

    fn handle(&mut self, cmd: Command) {
        if self.shared.lock().shutting_down {
            return self.refuse(cmd);
        }
        match cmd {
            Command::Start { req, inject } => self.start(req, inject),
            Command::Reprint(tx) => {
                let r = self.terminal.reprint_owed().map_err(ApiError::from);
                if let Ok(ids) = &r {
                    self.printed(ids);
                }
                let _ = tx.send(r);
            }
            Command::RetryReversals(tx) => {
                let r = self.terminal.drain_reversals(true).map_err(ApiError::from);
                let _ = tx.send(r);
                self.gauges();
            }
            Command::Stuck { id, action, reply } => {
                let r = match &action {
                    StuckAction::Requeue(note) => self.terminal.requeue_stuck_reversal(id, note),
                    StuckAction::Resolve(reference) => {
                        self.terminal.resolve_stuck_reversal(id, reference)
                    }
                };
                let _ = reply.send(r.map_err(ApiError::from));
                self.gauges();
            }
            Command::Check(tx) => {
                self.tick(true);
                let _ = tx.send(self.shared.lock().devices.clone());
            }
            Command::RecoverPrinter(tx) => {
                let r = match self.terminal.devices_mut().printer.as_mut() {
                    None => Err(ApiError::not_found("the lane has no printer open")),
                    Some(p) => p
                        .recover()
                        .map(PrinterConditions::names)
                        .map_err(|e| ApiError::device(&e)),
                };
                let _ = tx.send(r);
                self.last_poll = Instant::now() - Duration::from_secs(3600);
                self.tick(false);
            }
            Command::Settle { force, reply } => {
                let r = self.settle(force, "asked through the API");
                let _ = reply.send(r);
            }
            Command::OpenDrawer(tx) => {
                let r = match self.terminal.open_drawer("API request") {
                    Ok(s) => Ok(self.drawer_answer(s, Some(s == pos_hal::DrawerState::Open))),
                    Err(e) => Err(drawer_error(&e)),
                };
                let _ = tx.send(r);
            }
            Command::DrawerStatus(tx) => {
                let r = match self.terminal.drawer_state() {
                    Ok(s) => Ok(self.drawer_answer(s, None)),
                    Err(e) => Err(drawer_error(&e)),
                };
                let _ = tx.send(r);
            }
            Command::Stop => {}
        }
    }

    /// Supervision, at most once per poll interval unless `force`.
    fn tick(&mut self, force: bool) {
        let now = Instant::now();
        if !force
            && now.duration_since(self.last_poll) < Duration::from_millis(self.supervision.poll_ms)
        {
            return;
        }
        self.last_poll = now;
        // The journal first: still the file opened, and, while it cannot be written, tried
        // again (the terminal's backoff decides) so sales resume without a restart.
        let blocked = if self.terminal.outage().is_some() {
            if let Err(e) = self.terminal.retry_journal() {
                log::error!("recovery after the journal outage failed: {e}");
            }
            self.terminal.outage().is_some()
        } else {
            self.terminal.check_journal().is_err()
        };
        self.sync_outage();
        let health = force || now >= self.next_health;
        if health {
            self.next_health = now + Duration::from_secs(self.supervision.health_check_s);
        }
        for i in 0..3 {
            self.supervise(i, health, force);
        }
        if blocked {
            self.flush_events();
            return;
        }
        // Pending reversals, when due (their own backoff decides).
        match self.terminal.drain_reversals(false) {
            Ok(d) => {
                if !d.reversed.is_empty() || !d.stuck.is_empty() {
                    self.next_gauges = now;
                }
            }
            Err(e) => log::error!("reversal drain failed: {e}"),
        }
        // Owed receipts, when the printer is ready.
        let printer_ready = self.shared.lock().devices.printer.state == Availability::Ready;
        if printer_ready && now >= self.next_reprint && self.owed() > 0 {
            match self.terminal.reprint_owed() {
                Ok(ids) => self.printed(&ids),
                Err(e) => log::error!("reprint failed: {e}"),
            }
            if self.owed() > 0 {
                // The printer said ready but the receipt did not come out: not again at
                // every poll (half-printed duplicates); a new roll resets this (below).
                self.next_reprint = now + REPRINT_BACKOFF;
            }
            self.next_gauges = now;
        }
        self.scheduled_settlement();
        self.retention(now);
        if force || now >= self.next_gauges {
            self.gauges();
            self.next_gauges = now + Duration::from_secs(2);
        }
        self.flush_events();
    }

    /// The retention policy (`[retention]`), when due: a bounded batch per tick while there
    /// is more, then every `interval_s`.
    fn retention(&mut self, now: Instant) {
        let interval = self.terminal.config().retention.interval_s;
        if interval == 0 || now < self.next_archive {
            return;
        }
        let every = Duration::from_secs(interval);
        match self.terminal.archive(ARCHIVE_BATCH) {
            Ok(r) => {
                self.next_archive = if r.more { now } else { now + every };
            }
            Err(e) => {
                log::error!("archiving the journal's old transactions failed: {e}");
                self.next_archive = now + every.min(Duration::from_secs(300));
            }
        }
    }

    /// Publish the lane's sales gate when it changed: blocked (the journal cannot be
    /// written: `/healthz` false, `pos_sales_blocked` 1, a `sales_blocked` event with the
    /// cause) or resumed.
    fn sync_outage(&mut self) {
        let now = self
            .terminal
            .outage()
            .map(|o| (o.describe(), o.kind, o.txn));
        let mut st = self.shared.lock();
        let changed = st.sales_blocked.as_deref() != now.as_ref().map(|(d, _, _)| d.as_str());
        if !changed {
            return;
        }
        let was_blocked = st.sales_blocked.is_some();
        st.sales_blocked = now.as_ref().map(|(d, _, _)| d.clone());
        drop(st);
        let metrics = &self.shared.metrics;
        match now {
            Some((describe, kind, txn)) => {
                metrics.sales_blocked.set(1);
                if !was_blocked {
                    metrics.journal_errors.inc();
                }
                log::error!("sales blocked: {describe}");
                let mut ev = NewEvent::new(EventKind::SalesBlocked, describe);
                ev.fault = Some(kind.name().to_string());
                ev.txn = txn;
                self.shared.bus.publish(ev);
            }
            None => {
                metrics.sales_blocked.set(0);
                if was_blocked {
                    log::warn!("sales resume: the journal takes writes again");
                    self.shared.bus.publish(NewEvent::new(
                        EventKind::SalesResumed,
                        "the journal takes writes again: what memory held is journaled, recovery ran, sales resume",
                    ));
                }
            }
        }
        self.shared.changed.notify_all();
    }

    fn owed(&self) -> u64 {
        self.terminal
            .journal()
            .count_in_states(&[State::ReceiptOwed])
            .unwrap_or(0)
    }

    fn gauges(&self) {
        let count = |s: State| {
            self.terminal
                .journal()
                .count_in_states(&[s])
                .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
                .unwrap_or_else(|e| {
                    log::error!("journal read for the gauges failed: {e}");
                    self.shared.metrics.journal_errors.inc();
                    0
                })
        };
        let m = &self.shared.metrics;
        m.reversals_pending.set(count(State::ReversalPending));
        m.reversals_stuck.set(count(State::ReversalStuck));
        m.receipts_owed.set(count(State::ReceiptOwed));
    }

    fn publish(&self, e: NewEvent) {
        self.deferred.borrow_mut().push(e);
    }

    fn flush_events(&self) {
        for e in self.deferred.borrow_mut().drain(..) {
            self.shared.bus.publish(e);
        }
    }
}

/// A drawer error for the API: 404 without a drawer, else 502 `device` naming the kind.
fn drawer_error(e: &pos_hal::DeviceError) -> ApiError {
    if e.inner().is::<pos_terminal::service::NoDrawer>() {
        ApiError::not_found(e.to_string())
    } else {
        ApiError::device(e)
    }
}
