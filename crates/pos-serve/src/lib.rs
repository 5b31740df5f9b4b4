//! # pos-serve: the terminal service as a long-running process
//!
//! `posctl serve` is this crate. One lane per process:
//!
//! - **The lane worker** ([`worker`]): one thread owns the [`pos_terminal::Terminal`] and the
//!   lane's devices. It runs one transaction at a time; between transactions it supervises
//!   the devices (card presence, printer conditions, re-opening a device that went away with
//!   backoff, scheduled health checks), sends pending reversals when due and prints owed
//!   receipts when the printer is ready.
//! - **The local API** ([`api`]): HTTP/1.1 + JSON on a Unix socket (access by file
//!   permissions) or on 127.0.0.1 (every request carries the bearer token from a file only
//!   the service's group can read). Start a sale, pre-auth, completion, void or refund; get or
//!   await a transaction; cancel it while nothing was sent; device status; pending
//!   reversals; owed receipts; the end-of-day report (with the batch picture); settle the
//!   batch with the host (`POST /v1/settlement`, never while a sale runs). A second
//!   transaction while one runs is refused with `409 busy`. The document is `openapi.json` beside this crate, served at
//!   `/openapi.json`, and a test checks every route against it.
//! - **Live events** ([`events`]): `GET /v1/events` is a server-sent event stream: card
//!   inserted/removed, paper low/out, cover open, device unplugged/back, reversal stuck,
//!   every transaction state change, the prompts for the cardholder, each settlement's end
//!   and every difference it found with the host (an alarm).
//! - **Metrics** ([`metrics`]): `GET /metrics` for Prometheus (device state, faults by kind,
//!   transactions by outcome, reversals pending and stuck, receipts owed, APDU, print and
//!   transaction latency histograms).
//!
//! Stopping ([`Service::shutdown`], on SIGTERM in `posctl serve`): new requests are refused,
//! a transaction still waiting for its card is cancelled, one already sent runs to its
//! resting state, and the journal has every state written before its side effect, so even a
//! kill leaves nothing unjournaled (the next start recovers it).
//!
//! ```no_run
//! use pos_serve::{Service, open_lane};
//! use pos_terminal::Config;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::default(); // the simulated lane, API on 127.0.0.1:8780
//! let service = Service::start(open_lane(config, None)?)?;
//! println!("serving on {}", service.api_address());
//! service.wait_for_signal_or_stop();
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod api;
pub mod events;
mod http;
pub mod instrument;
pub mod metrics;
mod notify;
pub mod worker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use pos_acquirer::sim::{FakeHost, HostRules};
use pos_acquirer::{Acquirer, TcpAcquirer};
use pos_hal::CardSpec;
use pos_hal::{DeviceError, Fault, FaultKind};
use pos_lane::SimLane;
use pos_terminal::journal::Journal;
use pos_terminal::service::TerminalError;
use pos_terminal::{Config, Devices, Terminal};

pub use api::ROUTES;
pub use worker::{Availability, DeviceStatus, DevicesStatus, Reopen};

use worker::{Command, LaneState, Shared, Worker};

/// An API error: the HTTP status, a stable kind name and plain words.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiError {
    /// HTTP status.
    #[serde(skip)]
    pub status: u16,
    /// Stable snake_case kind: `invalid_input`, `unauthorized`, `not_found`, `no_route`,
    /// `method_not_allowed`, `busy`, `too_late`, `not_simulated`, `shutting_down`,
    /// `overloaded`, `device`, `journal`, `internal`, `timeout`, `sales_blocked`,
    /// `settlement_refused` (409), `settlement_unfinished` (502); from the HTTP front's
    /// limits: `request_timeout` (408), `too_large` (414, 431).
    pub kind: &'static str,
    /// What went wrong and what to do.
    pub message: String,
    /// For `busy`: the transaction in progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<i64>,
}

impl ApiError {
    fn new(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            current: None,
        }
    }

    /// 400: the request cannot be run.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "invalid_input", message)
    }

    /// 401: no or a wrong token.
    pub fn unauthorized() -> Self {
        ApiError::new(
            401,
            "unauthorized",
            "send the token from the service's token file: Authorization: Bearer <token>",
        )
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(404, "not_found", message)
    }

    /// 409: a transaction is in progress on this lane.
    pub fn busy(current: Option<i64>) -> Self {
        let mut e = ApiError::new(
            409,
            "busy",
            match current {
                Some(id) => format!(
                    "transaction {id} is in progress on this lane: one at a time; await or cancel it"
                ),
                None => "a transaction is starting on this lane: one at a time".to_string(),
            },
        );
        e.current = current;
        e
    }

    /// 409: the lane is settling its batch with the host; sales wait until it closed.
    pub fn settling() -> Self {
        ApiError::new(
            409,
            "busy",
            "the lane is settling its batch with the host: one thing at a time; try again once \
             the settlement ended (event settlement, or GET /v1/status)",
        )
    }

    /// 409: too late to cancel.
    pub fn too_late(message: impl Into<String>) -> Self {
        ApiError::new(409, "too_late", message)
    }

    /// 404: a simulator control on a lane with real devices.
    pub fn not_simulated() -> Self {
        ApiError::new(
            404,
            "not_simulated",
            "this lane's devices are real: simulator controls and fault injection are off",
        )
    }

    /// 503: the service is stopping.
    pub fn shutting_down() -> Self {
        ApiError::new(
            503,
            "shutting_down",
            "the service is stopping; try again when it is back",
        )
    }

    /// 503: too many connections at once.
    pub fn overloaded() -> Self {
        ApiError::new(503, "overloaded", "too many requests at once; try again")
    }

    /// 500.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(500, "internal", message)
    }

    /// 504: the lane did not answer in time.
    pub fn timeout(message: impl Into<String>) -> Self {
        ApiError::new(504, "timeout", message)
    }

    /// 502: a device error.
    pub fn device(e: &DeviceError) -> Self {
        ApiError::new(502, "device", format!("{} ({})", e, e.kind().name()))
    }
}

impl From<TerminalError> for ApiError {
    fn from(e: TerminalError) -> Self {
        match e {
            TerminalError::Invalid(m) => ApiError::bad_request(m),
            TerminalError::Blocked(m) => ApiError::new(503, "sales_blocked", m),
            other => ApiError::new(500, "journal", other.to_string()),
        }
    }
}

impl From<pos_terminal::journal::JournalError> for ApiError {
    fn from(e: pos_terminal::journal::JournalError) -> Self {
        match e {
            pos_terminal::journal::JournalError::NotFound(id) => {
                ApiError::not_found(format!("no transaction {id}"))
            }
            other => ApiError::new(500, "journal", other.to_string()),
        }
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The config cannot be used.
    #[error("config: {0}")]
    Config(String),
    /// A device cannot be opened.
    #[error(transparent)]
    Lane(#[from] pos_lane::LaneError),
    /// The journal or key file cannot be opened.
    #[error(transparent)]
    Terminal(#[from] TerminalError),
    /// A listener cannot be set up (address in use, socket directory missing...).
    #[error("{what}: {source}")]
    Listen {
        /// Which listener and address.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// The token file cannot be used.
    #[error("token file {path}: {message}")]
    Token {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Something else at start-up (the fake host, a thread).
    #[error("{0}")]
    Other(String),
}

impl Fault for ServeError {
    fn kind(&self) -> FaultKind {
        match self {
            ServeError::Config(_) => FaultKind::InvalidInput,
            ServeError::Lane(e) => e.kind(),
            ServeError::Terminal(e) => e.kind(),
            ServeError::Listen { source, .. } => match source.kind() {
                std::io::ErrorKind::PermissionDenied => FaultKind::PermissionDenied,
                std::io::ErrorKind::AddrInUse => FaultKind::Busy,
                std::io::ErrorKind::NotFound => FaultKind::NotFound,
                _ => FaultKind::Io,
            },
            ServeError::Token { .. } => FaultKind::PermissionDenied,
            ServeError::Other(_) => FaultKind::Io,
        }
    }
}

/// Everything a lane's service is made of, opened but not yet running.
pub struct LaneParts {
    /// The configuration.
    pub config: Config,
    /// The devices.
    pub devices: Devices,
    /// How to re-open a device that went away.
    pub reopen: Box<dyn Reopen>,
    /// The simulated devices' controls (a simulated lane).
    pub sim: Option<SimLane>,
    /// The built-in fake host (`address = "sim"`).
    pub host: Option<Arc<FakeHost>>,
    /// The host link.
    pub acquirer: Box<dyn Acquirer + Send>,
    /// The simulated lane's card (a profile, a bare test card or a recorded session): the
    /// one the simulated cardholder inserts and swipes.
    pub card: CardSpec,
}

impl std::fmt::Debug for LaneParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneParts")
            .field("devices", &self.devices)
            .field("sim", &self.sim)
            .field("host", &self.host.as_ref().map(|h| h.addr()))
            .finish_non_exhaustive()
    }
}

/// Open a lane from `config`: its devices by URI (simulated ones for `sim:` URIs; the
/// virtual reader holds `card`, else the card its URI names, else the default profile), and the host link (for `address = "sim"`, the built-in fake host on
/// 127.0.0.1, its ledger kept beside the journal).
///
/// # Errors
/// [`ServeError::Lane`] for a device that cannot be opened, [`ServeError::Other`] when the
/// fake host does not start, [`ServeError::Config`] for an unknown dialect.
pub fn open_lane(mut config: Config, card: Option<CardSpec>) -> Result<LaneParts, ServeError> {
    let lane = pos_lane::open(&config.devices, card.clone())?;
    let card = lane
        .sim
        .as_ref()
        .map(|s| s.card())
        .or(card)
        .unwrap_or_else(|| pos_lane::DEFAULT_PROFILE.into());
    let reopen = Box::new(lane.reopener());
    let mut host = None;
    let address = if config.acquirer.address == "sim" {
        let ledger = config.journal_path().with_file_name("sim-host-ledger.json");
        let h = FakeHost::start_with_ledger("127.0.0.1:0", HostRules::default(), &ledger)
            .map_err(|e| ServeError::Other(format!("cannot start the built-in fake host: {e}")))?;
        let addr = h.addr().to_string();
        host = Some(Arc::new(h));
        // The simulated host answers at once: a short timeout keeps `host-timeout` demos short.
        config.acquirer.response_timeout_ms = config.acquirer.response_timeout_ms.min(2_000);
        addr
    } else {
        config.acquirer.address.clone()
    };
    let settings = config
        .acquirer_settings(&address)
        .map_err(ServeError::Config)?;
    Ok(LaneParts {
        config,
        devices: lane.devices,
        reopen,
        sim: lane.sim,
        host,
        acquirer: Box::new(TcpAcquirer::new(settings)),
        card,
    })
}

/// Ends the worker's life visibly: if it panicked, the transaction it ran is released (its
/// journal state stays as written: the next start recovers it), the waiting client is
/// answered, an event says so, and `/healthz` turns false so the supervisor restarts us.
struct WorkerGuard(Arc<Shared>);

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        self.0.worker_alive.store(false, Ordering::SeqCst);
        if !std::thread::panicking() {
            return;
        }
        log::error!("the lane worker panicked: the service must be restarted");
        {
            let mut st = self.0.lock();
            st.current = None;
            if let Some(tx) = st.pending_start.take() {
                let _ = tx.send(Err(ApiError::internal(
                    "the lane worker failed; the service is restarting",
                )));
            }
        }
        self.0.changed.notify_all();
        self.0.bus.publish(events::NewEvent::new(
            events::EventKind::ShuttingDown,
            "the lane worker failed: the service stops so that it is restarted and recovers",
        ));
    }
}

/// A running service: the lane worker and the API listeners.
pub struct Service {
    shared: Arc<Shared>,
    commands: Sender<Command>,
    worker: Option<JoinHandle<()>>,
    api: api::Listeners,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("api", &self.api_address())
            .finish_non_exhaustive()
    }
}

/// Set by a SIGTERM/SIGINT handler (see `posctl serve`); [`Service::wait_for_signal_or_stop`]
/// looks at it.
pub static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

impl Service {
    /// Start the lane worker (it opens the journal, runs start-up recovery, then serves)
    /// and the API listeners from `parts.config.api`.
    ///
    /// # Errors
    /// [`ServeError::Terminal`] when the journal or key file cannot be opened;
    /// [`ServeError::Listen`] / [`ServeError::Token`] for the listeners.
    pub fn start(parts: LaneParts) -> Result<Service, ServeError> {
        Service::start_with_clock(parts, pos_terminal::time::Clock::system())
    }

    /// As [`Service::start`], the terminal running on `clock`: a manual
    /// [`pos_terminal::time::Clock`] lets a test move the time of the settlement schedule
    /// (`[settlement] at`) and of the reversal backoff without waiting.
    ///
    /// # Errors
    /// As [`Service::start`].
    pub fn start_with_clock(
        parts: LaneParts,
        clock: pos_terminal::time::Clock,
    ) -> Result<Service, ServeError> {
        let LaneParts {
            config,
            devices,
            reopen,
            sim,
            host,
            acquirer,
            card,
        } = parts;
        let journal_path = config.journal_path();
        let status = DevicesStatus {
            reader: DeviceStatus::new_for(&config.devices.reader),
            printer: DeviceStatus::new_for(&config.devices.printer),
            msr: DeviceStatus::new_for(&config.devices.msr),
        };
        let shared = Arc::new(Shared {
            bus: events::EventBus::default(),
            metrics: Arc::new(metrics::Metrics::for_lane(
                &config.lane,
                &config.terminal_id,
            )),
            state: Mutex::new(LaneState {
                current: None,
                shutting_down: false,
                devices: status,
                pending_start: None,
                abandoned: false,
                cardholder_auto: true,
                sales_blocked: None,
                settling: false,
            }),
            changed: notify::Changed::default(),
            cancel: OnceLock::new(),
            worker_alive: AtomicBool::new(true),
            sim,
            host,
        });
        let api_config = config.api.clone();
        let token_path = config.token_path();
        let info = api::LaneInfo {
            terminal_id: config.terminal_id.clone(),
            simulated: shared.sim.is_some(),
            config: config.clone(),
            start_timeout: Duration::from_millis(
                2 * (config.acquirer.connect_timeout_ms + config.acquirer.response_timeout_ms),
            ) + Duration::from_secs(30),
        };
        let (commands, rx) = channel();
        let (ready_tx, ready_rx) = channel::<Result<(), ServeError>>();
        let w_shared = Arc::clone(&shared);
        // On a simulated lane without a configured key file: the test keys and the profile
        // cards' simulation CA.
        let simulated = w_shared.sim.is_some() && config.ca_keys.is_none();
        let worker = std::thread::Builder::new()
            .name("lane-worker".into())
            .spawn(move || {
                let acquirer: Box<dyn Acquirer> = acquirer;
                let mut terminal = match Terminal::open(config, devices, acquirer) {
                    Ok(t) => t,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                terminal.set_clock(clock);
                if simulated {
                    match pos_emv::profile_card::test_and_sim_ca_keys() {
                        Ok(keys) => terminal.set_ca_keys(keys),
                        Err(e) => log::error!("CA public keys: {e}"),
                    }
                }
                let _guard = WorkerGuard(Arc::clone(&w_shared));
                let worker = Worker::new(terminal, w_shared, reopen, card);
                let _ = ready_tx.send(Ok(()));
                worker.run(rx);
            })
            .map_err(|e| ServeError::Other(format!("cannot start the lane worker: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = worker.join();
                return Err(e);
            }
            Err(_) => {
                let _ = worker.join();
                return Err(ServeError::Other("the lane worker died at start-up".into()));
            }
        }
        // The API reads the journal through a read-only handle of its own, opened once the
        // worker's terminal has opened (and checked) it: only the worker writes.
        let reader_journal = match Journal::open_read_only(&journal_path) {
            Ok(j) => j,
            Err(e) => {
                let _ = commands.send(Command::Stop);
                let _ = worker.join();
                return Err(TerminalError::from(e).into());
            }
        };
        let api = match api::Listeners::start(
            &api_config,
            &token_path,
            Arc::clone(&shared),
            commands.clone(),
            Mutex::new(reader_journal),
            info,
        ) {
            Ok(l) => l,
            Err(e) => {
                let _ = commands.send(Command::Stop);
                let _ = worker.join();
                return Err(e);
            }
        };
        Ok(Service {
            shared,
            commands,
            worker: Some(worker),
            api,
        })
    }

    /// Where the API listens: `unix:/path` or `127.0.0.1:PORT` (the real port when 0 was
    /// configured).
    pub fn api_address(&self) -> String {
        self.api.address()
    }

    /// Where `/metrics` is served on its own, if configured.
    pub fn metrics_address(&self) -> Option<String> {
        self.api.metrics_address()
    }

    /// The bearer token clients must send (TCP, or the socket with `token_on_socket`).
    pub fn token_path(&self) -> PathBuf {
        self.api.token_path()
    }

    /// The simulated lane's controls, if simulated.
    pub fn sim(&self) -> Option<&SimLane> {
        self.shared.sim.as_ref()
    }

    /// The built-in fake host, if used.
    pub fn fake_host(&self) -> Option<&Arc<FakeHost>> {
        self.shared.host.as_ref()
    }

    /// The lane's event bus, what `GET /v1/events` streams: subscribe in-process, or publish
    /// a note of the integrator's own (it reaches every stream and the replay buffer).
    pub fn events(&self) -> &events::EventBus {
        &self.shared.bus
    }

    /// Block until [`STOP_REQUESTED`] is set (by a signal handler) or the lane worker died,
    /// then shut down. False when the worker died (exit non-zero: let systemd restart us).
    pub fn wait_for_signal_or_stop(self) -> bool {
        self.wait_for_signal_or_stop_with(|| {})
    }

    /// As [`Service::wait_for_signal_or_stop`], calling `stopping` when the stop begins
    /// (e.g. to tell systemd `STOPPING=1`).
    pub fn wait_for_signal_or_stop_with(self, stopping: impl FnOnce()) -> bool {
        let mut alive = true;
        while !STOP_REQUESTED.load(Ordering::SeqCst) {
            if !self.shared.worker_alive.load(Ordering::SeqCst) {
                alive = false;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        log::info!("stopping");
        stopping();
        self.shutdown();
        alive
    }

    /// Stop gracefully: refuse new requests, cancel a transaction that has not sent
    /// anything, let one already sent run to its resting state, stop the worker, close the
    /// listeners. Returns when everything stopped.
    pub fn shutdown(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        {
            let mut st = self.shared.lock();
            if st.shutting_down && self.worker.is_none() {
                return;
            }
            st.shutting_down = true;
            if st.current.is_some() {
                // Stops it only if its request is not armed yet; otherwise it runs to its end.
                if let Some(handle) = self.shared.cancel.get() {
                    handle.request();
                }
            }
        }
        self.shared.bus.publish(events::NewEvent::new(
            events::EventKind::ShuttingDown,
            "the service is stopping",
        ));
        let _ = self.commands.send(Command::Stop);
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        self.api.stop();
        log::info!("service stopped");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// The README's example, compiled as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
