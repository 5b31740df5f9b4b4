//! The lane worker: one thread that owns the terminal service and the lane's devices. It
//! runs one transaction at a time, and between transactions supervises the devices (card
//! presence, printer conditions, re-opening what went away, scheduled health checks), sends
//! pending reversals when due and prints owed receipts when the printer is ready.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use pos_acquirer::Operation;
use pos_hal::{
    CardSpec, CheckOutcome, ChipReader, Fault, FaultKind, HealthLevel, PrinterConditions,
    ReceiptPrinter, SlotState,
};
use pos_lane::{LaneError, SimLane};
use pos_terminal::config::SupervisionConfig;
use pos_terminal::devices::{Msr, Printer, Reader};
use pos_terminal::inject::{InjectedFault, Injection, Step, StepHook};
use pos_terminal::journal::Change;
use pos_terminal::service::DrainReport;
use pos_terminal::{CardEntry, Prompt, State, Terminal, TxnRequest};
use serde::Serialize;

use crate::ApiError;
use crate::events::{EventBus, EventKind, NewEvent};
use crate::instrument::{Lost, TimedPrinter, TimedReader, gone};
use crate::metrics::Metrics;

/// Re-opens one device of the lane after it went away (a USB unplug, a serial adapter
/// re-enumerated). Implemented by [`pos_lane::Reopener`] (from the configured URIs) and by
/// tests.
pub trait Reopen: Send {
    /// Open the chip reader again.
    ///
    /// # Errors
    /// Why it cannot be opened (not plugged in, no permission...).
    fn reader(&mut self) -> Result<Reader, LaneError>;
    /// Open the receipt printer again.
    ///
    /// # Errors
    /// As [`Reopen::reader`].
    fn printer(&mut self) -> Result<Printer, LaneError>;
    /// Open the stripe reader again.
    ///
    /// # Errors
    /// As [`Reopen::reader`].
    fn msr(&mut self) -> Result<Msr, LaneError>;
}

impl Reopen for pos_lane::Reopener {
    fn reader(&mut self) -> Result<Reader, LaneError> {
        pos_lane::Reopener::reader(self)
    }
    fn printer(&mut self) -> Result<Printer, LaneError> {
        pos_lane::Reopener::printer(self)
    }
    fn msr(&mut self) -> Result<Msr, LaneError> {
        pos_lane::Reopener::msr(self)
    }
}

/// A device role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The chip reader.
    Reader,
    /// The receipt printer.
    Printer,
    /// The magnetic stripe reader.
    Msr,
}

impl Role {
    /// `reader`, `printer`, `msr`.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Printer => "printer",
            Role::Msr => "msr",
        }
    }
}

/// Where a device of the lane stands, as `/v1/devices` shows it (`state`): the service's
/// view, with a device that went away (`missing`, being re-opened) apart from one the lane
/// does not have (`not_configured`). Not [`pos_hal::DeviceState`] (UnifiedPOS closed, idle,
/// busy, error): these are the API's own names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Open and usable.
    Ready,
    /// Open but not usable now (printer out of paper, reader error...): see `fault`.
    Fault,
    /// Gone (unplugged, not opened yet): being re-opened with backoff.
    Missing,
    /// The lane has no such device (its URI is `none`).
    NotConfigured,
}

impl Availability {
    /// The name on the wire: `ready`, `fault`, `missing`, `not_configured`.
    pub const fn name(self) -> &'static str {
        match self {
            Availability::Ready => "ready",
            Availability::Fault => "fault",
            Availability::Missing => "missing",
            Availability::NotConfigured => "not_configured",
        }
    }
}

/// What the service knows of one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceStatus {
    /// The configured URI (`none`: the lane has no such device).
    pub uri: String,
    /// Ready, fault (open but not usable now), missing (gone; being re-opened), not
    /// configured.
    pub state: Availability,
    /// The fault kind, when not ready (its [`FaultKind::name`] in JSON).
    pub fault: Option<FaultKind>,
    /// Plain words.
    pub detail: String,
    /// Who the device is (from the driver).
    pub info: Option<String>,
    /// Chip reader: a card is in the slot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_present: Option<bool>,
    /// Printer: its conditions (`paper_near_end`, `paper_out`, ...; empty when ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<&'static str>>,
    /// Since when the device is in this state (ms since the Unix epoch).
    pub since_ms: i64,
    /// When it was last looked at.
    pub checked_ms: i64,
    /// The last scheduled health check: `pass`, `warn` or `fail`, and its problems.
    pub health: Option<HealthSummary>,
    /// Failed re-open attempts since the device went away.
    pub reopen_attempts: u32,
}

/// The outcome of a device's last health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthSummary {
    /// The worst outcome of its checks: `pass`, `warn` or `fail` (`skipped` when no check
    /// ran); `fail` when the check itself failed.
    pub outcome: CheckOutcome,
    /// The checks that did not pass: `name: detail`.
    pub problems: Vec<String>,
    /// When (ms since the Unix epoch).
    pub checked_ms: i64,
}

impl DeviceStatus {
    pub(crate) fn new_for(uri: &str) -> Self {
        let configured = uri != "none" && !uri.is_empty();
        DeviceStatus {
            uri: uri.to_string(),
            state: if configured {
                Availability::Missing
            } else {
                Availability::NotConfigured
            },
            fault: None,
            detail: if configured {
                "not opened yet".into()
            } else {
                "the lane has none".into()
            },
            info: None,
            card_present: None,
            conditions: None,
            since_ms: now_ms(),
            checked_ms: 0,
            health: None,
            reopen_attempts: 0,
        }
    }

    fn configured(&self) -> bool {
        self.state != Availability::NotConfigured
    }

    fn set(&mut self, state: Availability, fault: Option<FaultKind>, detail: impl Into<String>) {
        if self.state != state || self.fault != fault {
            self.since_ms = now_ms();
        }
        self.state = state;
        self.fault = fault;
        self.detail = detail.into();
        self.checked_ms = now_ms();
    }
}

/// The devices of the lane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DevicesStatus {
    /// The chip reader.
    pub reader: DeviceStatus,
    /// The receipt printer.
    pub printer: DeviceStatus,
    /// The magnetic stripe reader.
    pub msr: DeviceStatus,
}

/// The transaction in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Current {
    /// Its journal id (`None` for the moment before it is created).
    pub id: Option<i64>,
    /// The operation (its name in JSON).
    #[serde(serialize_with = "operation_name")]
    pub operation: Operation,
    /// Its state.
    pub state: Option<State>,
}

fn operation_name<S: serde::Serializer>(op: &Operation, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(op.name())
}

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
    /// Look at every device and run the health checks now.
    Check(Sender<DevicesStatus>),
    /// Run the printer's recovery sequence (after a jam was cleared).
    RecoverPrinter(Sender<Result<Vec<&'static str>, ApiError>>),
    /// Finish and stop.
    Stop,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// After a reprint that left receipts owed, how long before trying again (unless the
/// printer's conditions change first).
const REPRINT_BACKOFF: Duration = Duration::from_secs(30);

/// The printer conditions that raise an event when they appear.
const WATCHED: [&str; 5] = [
    "paper_near_end",
    "paper_out",
    "cover_open",
    "cutter_jam",
    "offline",
];

/// The events for a printer going from `old` to `new` conditions.
fn printer_events(
    old: &[&'static str],
    new: &[&'static str],
    was_ready: bool,
    ready: bool,
) -> Vec<NewEvent> {
    let mut out = Vec::new();
    for name in new
        .iter()
        .filter(|n| WATCHED.contains(n) && !old.contains(n))
    {
        let (kind, detail, fault) = match *name {
            "paper_near_end" => (
                EventKind::PaperLow,
                "paper near end: change the roll soon (printing still works)",
                FaultKind::PaperNearEnd,
            ),
            "paper_out" => (
                EventKind::PaperOut,
                "paper out: load a new roll",
                FaultKind::PaperOut,
            ),
            "cover_open" => (
                EventKind::CoverOpen,
                "printer cover open: close it",
                FaultKind::CoverOpen,
            ),
            "cutter_jam" => (
                EventKind::CutterJam,
                "cutter jammed: clear it, then recover the printer",
                FaultKind::CutterJam,
            ),
            _ => (
                EventKind::PrinterOffline,
                "printer offline",
                FaultKind::PrinterOffline,
            ),
        };
        out.push(NewEvent::new(kind, detail).device("printer").fault(fault));
    }
    if !was_ready && ready {
        out.push(NewEvent::new(EventKind::PrinterReady, "printer ready again").device("printer"));
    }
    out
}

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
}

/// Transactions archived per idle tick: a sale that arrives meanwhile waits at most one
/// batch (well under a second).
const ARCHIVE_BATCH: usize = 1_000;

/// Forward the chip reader's own card events (from its driver's monitor thread) to the bus,
/// live, during transactions too. Returns false when the driver has no monitor.
fn forward_reader_events(reader: &mut Reader, shared: &Arc<Shared>, flag: &Arc<AtomicU64>) -> bool {
    let Ok(sub) = reader.subscribe() else {
        return false;
    };
    static GENERATION: AtomicU64 = AtomicU64::new(1);
    let generation = GENERATION.fetch_add(1, Ordering::SeqCst);
    let shared = Arc::clone(shared);
    let flag_t = Arc::clone(flag);
    let spawned = std::thread::Builder::new()
        .name("reader-events".into())
        .spawn(move || {
            loop {
                match sub.recv_timeout(Duration::from_secs(1)) {
                    Ok(e) => {
                        let (kind, what) = match e.event {
                            pos_hal::DeviceEvent::CardInserted { slot: 0 } => {
                                (EventKind::CardInserted, "card inserted")
                            }
                            pos_hal::DeviceEvent::CardRemoved { slot: 0 } => {
                                (EventKind::CardRemoved, "card removed")
                            }
                            _ => continue,
                        };
                        let mut ev = NewEvent::new(kind, what).device("reader");
                        ev.txn = shared.lock().current.as_ref().and_then(|c| c.id);
                        shared.bus.publish(ev);
                    }
                    Err(pos_hal::RecvError::Timeout) => {}
                    Err(pos_hal::RecvError::Closed) => break,
                }
            }
            // The driver is gone: polling takes over until the next one is opened (unless a
            // newer forwarder already took over).
            let _ = flag_t.compare_exchange(generation, 0, Ordering::SeqCst, Ordering::SeqCst);
        });
    match spawned {
        Ok(_) => {
            flag.store(generation, Ordering::SeqCst);
            true
        }
        Err(e) => {
            log::warn!("cannot watch the reader's events: {e}");
            false
        }
    }
}

impl Worker {
    /// Set up: wrap the devices, watch the journal, recover what the last run left.
    pub(crate) fn new(
        mut terminal: Terminal,
        shared: Arc<Shared>,
        reopen: Box<dyn Reopen>,
        card: CardSpec,
    ) -> Worker {
        let supervision = terminal.config().supervision.clone();
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
            Command::RecoverPrinter(tx) => {
                let _ = tx.send(Err(err()));
            }
            Command::Check(tx) => {
                let _ = tx.send(self.shared.lock().devices.clone());
            }
            Command::Stop => {}
        }
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
            Command::Stop => {}
        }
    }

    fn printed(&self, ids: &[i64]) {
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

    fn start(&mut self, req: TxnRequest, inject: Vec<Injection>) {
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

    fn owed(&self) -> usize {
        self.terminal
            .journal()
            .in_states(&[State::ReceiptOwed])
            .map(|v| v.len())
            .unwrap_or(0)
    }

    fn gauges(&self) {
        let count = |s: State| {
            self.terminal
                .journal()
                .in_states(&[s])
                .map(|v| i64::try_from(v.len()).unwrap_or(i64::MAX))
                .unwrap_or(0)
        };
        let m = &self.shared.metrics;
        m.reversals_pending.set(count(State::ReversalPending));
        m.reversals_stuck.set(count(State::ReversalStuck));
        m.receipts_owed.set(count(State::ReceiptOwed));
    }

    fn status_of(&self, role: Role) -> DeviceStatus {
        let st = self.shared.lock();
        match role {
            Role::Reader => st.devices.reader.clone(),
            Role::Printer => st.devices.printer.clone(),
            Role::Msr => st.devices.msr.clone(),
        }
    }

    fn store(&self, role: Role, status: DeviceStatus) {
        {
            let mut st = self.shared.lock();
            match role {
                Role::Reader => st.devices.reader = status,
                Role::Printer => st.devices.printer = status,
                Role::Msr => st.devices.msr = status,
            }
        }
        self.flush_events();
    }

    fn is_open(&mut self, role: Role) -> bool {
        let d = self.terminal.devices_mut();
        match role {
            Role::Reader => d.reader.is_some(),
            Role::Printer => d.printer.is_some(),
            Role::Msr => d.msr.is_some(),
        }
    }

    fn drop_device(&mut self, role: Role) {
        let d = self.terminal.devices_mut();
        match role {
            Role::Reader => d.reader = None,
            Role::Printer => d.printer = None,
            Role::Msr => d.msr = None,
        }
    }

    fn publish(&self, e: NewEvent) {
        self.deferred.borrow_mut().push(e);
    }

    fn flush_events(&self) {
        for e in self.deferred.borrow_mut().drain(..) {
            self.shared.bus.publish(e);
        }
    }

    /// One device: gone → re-open with backoff; open → look at it.
    fn supervise(&mut self, i: usize, health: bool, force: bool) {
        let role = self.slots[i].role;
        let name = role.name();
        let mut status = self.status_of(role);
        if !status.configured() {
            return;
        }
        let was_ready = status.state == Availability::Ready;
        if self.slots[i].lost.take() && self.is_open(role) {
            self.went_away(role, &mut status, "the device went away");
        }
        if !self.is_open(role) {
            let now = Instant::now();
            if !force && now < self.slots[i].next_reopen {
                self.store(role, status);
                return;
            }
            match self.open_again(role) {
                Ok(info) => {
                    self.slots[i].backoff =
                        Duration::from_millis(self.supervision.reopen_initial_ms);
                    let first = status.checked_ms == 0;
                    status.info = Some(info);
                    status.reopen_attempts = 0;
                    status.set(Availability::Ready, None, "opened");
                    self.shared
                        .metrics
                        .device_reconnects
                        .get_or_create(&crate::metrics::label("device", name))
                        .inc();
                    if !first {
                        self.publish(
                            NewEvent::new(EventKind::DeviceReconnected, format!("{name} is back"))
                                .device(name),
                        );
                    }
                }
                Err(e) => {
                    let slot = &mut self.slots[i];
                    slot.next_reopen = now + slot.backoff;
                    slot.backoff = (slot.backoff * 2)
                        .min(Duration::from_millis(self.supervision.reopen_max_ms));
                    status.reopen_attempts += 1;
                    status.set(
                        Availability::Missing,
                        Some(e.kind()),
                        format!(
                            "{e}; trying again in {} ms",
                            self.slots[i]
                                .next_reopen
                                .saturating_duration_since(now)
                                .as_millis()
                        ),
                    );
                    self.shared.metrics.set_up(name, false);
                    self.store(role, status);
                    return;
                }
            }
        }
        match role {
            Role::Reader => self.look_at_reader(&mut status),
            Role::Printer => self.look_at_printer(&mut status),
            Role::Msr => {
                if status.info.is_none() {
                    status.info = self
                        .terminal
                        .devices_mut()
                        .msr
                        .as_ref()
                        .map(|m| m.info().to_string());
                }
                if status.state != Availability::Ready && status.state != Availability::Fault {
                    status.set(Availability::Ready, None, "open");
                }
            }
        }
        if health && self.is_open(role) {
            self.health_check(role, &mut status);
        }
        let ready = status.state == Availability::Ready;
        self.shared.metrics.set_up(name, ready);
        if was_ready && status.state == Availability::Fault && role != Role::Printer {
            if let Some(f) = status.fault {
                self.publish(
                    NewEvent::new(EventKind::DeviceFault, status.detail.clone())
                        .device(name)
                        .fault(f),
                );
            }
        }
        self.store(role, status);
    }

    fn went_away(&mut self, role: Role, status: &mut DeviceStatus, why: &str) {
        let name = role.name();
        self.drop_device(role);
        status.set(
            Availability::Missing,
            Some(FaultKind::Disconnected),
            why.to_string(),
        );
        status.card_present = None;
        self.shared.metrics.set_up(name, false);
        self.shared.metrics.fault(name, FaultKind::Disconnected);
        if role == Role::Reader {
            self.shared.metrics.card_present.set(0);
        }
        self.publish(
            NewEvent::new(
                EventKind::DeviceUnplugged,
                format!("{name} unplugged or lost: {why}"),
            )
            .device(name)
            .fault(FaultKind::Disconnected),
        );
        // First re-open attempt at once (a re-enumeration is often quick).
        let initial = Duration::from_millis(self.supervision.reopen_initial_ms);
        for s in &mut self.slots {
            if s.role == role {
                s.next_reopen = Instant::now();
                s.backoff = initial;
            }
        }
    }

    fn open_again(&mut self, role: Role) -> Result<String, LaneError> {
        let metrics = &self.shared.metrics;
        let lost = self.slots[match role {
            Role::Reader => 0,
            Role::Printer => 1,
            Role::Msr => 2,
        }]
        .lost
        .clone();
        let _ = lost.take();
        match role {
            Role::Reader => {
                let r = self.reopen.reader()?;
                let info = r.info().to_string();
                let mut r: Reader = Box::new(TimedReader::new(r, Arc::clone(metrics), lost));
                forward_reader_events(&mut r, &self.shared, &self.reader_events);
                self.terminal.devices_mut().reader = Some(r);
                Ok(info)
            }
            Role::Printer => {
                let p = self.reopen.printer()?;
                let info = p.info().to_string();
                self.terminal.devices_mut().printer =
                    Some(Box::new(TimedPrinter::new(p, Arc::clone(metrics), lost)));
                Ok(info)
            }
            Role::Msr => {
                let m = self.reopen.msr()?;
                let info = m.info().to_string();
                self.terminal.devices_mut().msr = Some(m);
                Ok(info)
            }
        }
    }

    fn look_at_reader(&mut self, status: &mut DeviceStatus) {
        let Some(reader) = self.terminal.devices_mut().reader.as_mut() else {
            return;
        };
        if status.info.is_none() {
            status.info = Some(reader.info().to_string());
        }
        match reader.slot_status(0) {
            Ok(s) => {
                let present = s.contains(SlotState::CARD_PRESENT);
                let from_driver = self.reader_events.load(Ordering::SeqCst) != 0;
                if !from_driver && status.card_present.is_some_and(|p| p != present) {
                    let (kind, what) = if present {
                        (EventKind::CardInserted, "card inserted")
                    } else {
                        (EventKind::CardRemoved, "card removed")
                    };
                    self.publish(NewEvent::new(kind, what).device("reader"));
                }
                status.card_present = Some(present);
                self.shared.metrics.card_present.set(i64::from(present));
                status.set(
                    Availability::Ready,
                    None,
                    if present {
                        "card in the slot"
                    } else {
                        "no card"
                    },
                );
            }
            Err(e) if gone(e.kind()) => self.went_away(Role::Reader, status, &e.to_string()),
            Err(e) => {
                if status.fault != Some(e.kind()) {
                    self.shared.metrics.fault("reader", e.kind());
                }
                status.set(Availability::Fault, Some(e.kind()), e.to_string());
            }
        }
    }

    fn look_at_printer(&mut self, status: &mut DeviceStatus) {
        let Some(printer) = self.terminal.devices_mut().printer.as_mut() else {
            return;
        };
        if status.info.is_none() {
            status.info = Some(printer.info().to_string());
        }
        let old = status.conditions.clone().unwrap_or_default();
        match printer.status() {
            Ok(c) => {
                let names = c.names();
                let was_ready = status.state == Availability::Ready;
                if names != old {
                    self.next_reprint = Instant::now();
                }
                for e in printer_events(&old, &names, was_ready, c.is_ready()) {
                    let kind = match e.kind {
                        EventKind::PaperLow => Some(FaultKind::PaperNearEnd),
                        EventKind::PaperOut => Some(FaultKind::PaperOut),
                        EventKind::CoverOpen => Some(FaultKind::CoverOpen),
                        EventKind::CutterJam => Some(FaultKind::CutterJam),
                        EventKind::PrinterOffline => Some(FaultKind::PrinterOffline),
                        _ => None,
                    };
                    if let Some(kind) = kind {
                        self.shared.metrics.fault("printer", kind);
                    }
                    self.publish(e);
                }
                for n in crate::metrics::PRINTER_CONDITIONS {
                    self.shared
                        .metrics
                        .printer_condition
                        .get_or_create(&crate::metrics::label("condition", n))
                        .set(i64::from(names.contains(&n)));
                }
                match c.blocking_fault() {
                    None => {
                        let detail = match c.warning() {
                            Some(_) => "ready; paper near end",
                            None => "ready",
                        };
                        status.set(Availability::Ready, None, detail);
                    }
                    Some(kind) => status.set(
                        Availability::Fault,
                        Some(kind),
                        format!("not ready: {}", names.join(", ")),
                    ),
                }
                status.conditions = Some(names);
            }
            Err(e) if gone(e.kind()) => {
                self.went_away(Role::Printer, status, &e.to_string());
                status.conditions = None;
            }
            Err(e) => {
                let names = vec!["offline"];
                for ev in printer_events(&old, &names, status.state == Availability::Ready, false) {
                    self.publish(ev);
                }
                if status.fault != Some(e.kind()) {
                    self.shared.metrics.fault("printer", e.kind());
                }
                status.set(Availability::Fault, Some(e.kind()), e.to_string());
                status.conditions = Some(names);
            }
        }
    }

    fn health_check(&mut self, role: Role, status: &mut DeviceStatus) {
        let d = self.terminal.devices_mut();
        let report = match role {
            Role::Reader => d
                .reader
                .as_mut()
                .map(|r| r.check_health(HealthLevel::Internal)),
            Role::Printer => d
                .printer
                .as_mut()
                .map(|p| p.check_health(HealthLevel::Internal)),
            Role::Msr => d
                .msr
                .as_mut()
                .map(|m| m.check_health(HealthLevel::Internal)),
        };
        let name = role.name();
        let summary = match report {
            None => return,
            Some(Ok(r)) => HealthSummary {
                outcome: r.overall(),
                problems: r
                    .problems()
                    .iter()
                    .map(|c| format!("{}: {}", c.name, c.detail))
                    .collect(),
                checked_ms: now_ms(),
            },
            Some(Err(e)) if gone(e.kind()) => {
                self.went_away(role, status, &e.to_string());
                return;
            }
            Some(Err(e)) => HealthSummary {
                outcome: CheckOutcome::Fail,
                problems: vec![e.to_string()],
                checked_ms: now_ms(),
            },
        };
        let before = status.health.as_ref().map(|h| h.outcome);
        if before != Some(summary.outcome)
            && (before.is_some() || summary.outcome != CheckOutcome::Pass)
        {
            let detail = if summary.problems.is_empty() {
                format!("{name} health check: {}", summary.outcome.name())
            } else {
                format!(
                    "{name} health check: {}: {}",
                    summary.outcome.name(),
                    summary.problems.join("; ")
                )
            };
            self.publish(NewEvent::new(EventKind::HealthCheck, detail).device(name));
        }
        status.health = Some(summary);
    }
}

/// The journal watcher: every committed change becomes an event, and the API side learns
/// the id and state of the transaction in progress.
fn observe(shared: &Shared, change: &Change) {
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
        Change::Event { txn, kind, detail } => {
            if matches!(kind.as_str(), "fault" | "alarm" | "fallback") {
                let mut e = NewEvent::new(EventKind::TransactionFault, detail.clone());
                e.txn = *txn;
                shared.bus.publish(e);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn typed_fields_keep_their_wire_names() {
        use serde_json::Value;
        for (a, name) in [
            (Availability::Ready, "ready"),
            (Availability::Fault, "fault"),
            (Availability::Missing, "missing"),
            (Availability::NotConfigured, "not_configured"),
        ] {
            assert_eq!(a.name(), name);
            assert_eq!(serde_json::to_value(a).unwrap(), name);
        }
        let mut d = DeviceStatus::new_for("none");
        assert_eq!(serde_json::to_value(&d).unwrap()["state"], "not_configured");
        assert_eq!(serde_json::to_value(&d).unwrap()["fault"], Value::Null);
        d.set(Availability::Fault, Some(FaultKind::PaperOut), "not ready");
        d.health = Some(HealthSummary {
            outcome: CheckOutcome::Warn,
            problems: Vec::new(),
            checked_ms: 1,
        });
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["state"], "fault");
        assert_eq!(v["fault"], "paper_out");
        assert_eq!(v["health"]["outcome"], "warn");
        let c = Current {
            id: Some(7),
            operation: Operation::PreAuth,
            state: None,
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"id":7,"operation":"preauth","state":null}"#
        );
    }

    #[test]
    fn printer_events_follow_condition_changes() {
        let names = |v: Vec<NewEvent>| v.iter().map(|e| e.kind.name()).collect::<Vec<_>>();
        assert_eq!(
            names(printer_events(&[], &["paper_near_end"], true, true)),
            vec!["paper_low"]
        );
        assert_eq!(
            names(printer_events(
                &["paper_near_end"],
                &["paper_near_end", "paper_out", "error"],
                true,
                false
            )),
            vec!["paper_out"]
        );
        assert_eq!(
            names(printer_events(&["paper_out"], &[], false, true)),
            vec!["printer_ready"]
        );
        // Near end alone was never blocking: no "ready again" when it clears.
        assert!(printer_events(&["paper_near_end"], &[], true, true).is_empty());
        assert!(printer_events(&["cover_open"], &["cover_open"], false, false).is_empty());
    }
}
