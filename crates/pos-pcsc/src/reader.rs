//! [`PcscReader`]: one PC/SC reader behind pos-hal's [`ChipReader`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pos_hal::{
    Atr, ChipReader, Device, DeviceEvent, DeviceInfo, DeviceKind, DeviceState, EventHub, Fault,
    HealthLevel, HealthReport, ReaderCapabilities, SlotState, Subscription,
};

use crate::api::{CardHandle, Context, Disposition, PcscApi, Protocol, ReaderState, ShareMode};
use crate::codes::{
    MAX_BUFFER_SIZE_EXTENDED, SCARD_E_INVALID_HANDLE, SCARD_E_NO_SMARTCARD,
    SCARD_E_READER_UNAVAILABLE, SCARD_E_UNKNOWN_READER, SCARD_F_COMM_ERROR, SCARD_PROTOCOL_T0,
    SCARD_PROTOCOL_T1, SCARD_W_REMOVED_CARD, SCARD_W_RESET_CARD, SCARD_W_UNPOWERED_CARD, ScardCode,
};
use crate::error::PcscError;
use crate::monitor;
use crate::t0::{self, T0Error};

/// How the card is kept from other applications while a session is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Sharing {
    /// `SCARD_SHARE_EXCLUSIVE` from power-on to power-off (default): no other application
    /// can connect to the card meanwhile.
    #[default]
    Exclusive,
    /// `SCARD_SHARE_SHARED` with `SCardBeginTransaction` from power-on to power-off: other
    /// applications may connect but not exchange while the session is open.
    Transaction,
}

/// The PC/SC road's settings. Every wait is bounded by one of these.
#[derive(Debug, Clone)]
pub struct PcscConfig {
    /// The longest any one call to pcscd may take (connect, status, transmit, disconnect...).
    /// pcsc-lite has no per-call timeout, so the reader runs these calls on its worker
    /// thread and stops waiting after this long. Default 10 s, as the USB driver's exchange
    /// cap.
    pub call_timeout: Duration,
    /// The `dwTimeout` of each `SCardGetStatusChange` of the presence monitor (re-armed until
    /// the reader is closed; `SCardCancel` ends it at once on close). Default 500 ms.
    pub monitor_wait: Duration,
    /// How the card is held during a session. Default [`Sharing::Exclusive`].
    pub sharing: Sharing,
    /// Follow T=0 `61xx` / `6Cxx` here (see [`crate::t0`]). Default true.
    pub t0_get_response: bool,
    /// How long, after a failed or empty exchange with the card still shown present, to wait
    /// for pcscd to report a removal (`SCardGetStatusChange`, event-driven) before the error
    /// is classified. libccid answers an exchange cut by a pulled card with no bytes at all
    /// (seen on QEMU's reader), before pcscd has noticed the card is gone. Default 2 s.
    pub removal_wait: Duration,
    /// How long closing (drop) waits for the worker and the monitor to end before leaving
    /// them to end on their own. Default 2 s.
    pub close_wait: Duration,
}

impl Default for PcscConfig {
    fn default() -> Self {
        PcscConfig {
            call_timeout: Duration::from_secs(10),
            monitor_wait: Duration::from_millis(500),
            sharing: Sharing::Exclusive,
            t0_get_response: true,
            removal_wait: Duration::from_secs(2),
            close_wait: Duration::from_secs(2),
        }
    }
}

/// State shared by the caller, the worker and the monitor.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// The reader left pcscd (or pcscd stopped): `Disconnected` was published.
    pub(crate) gone: AtomicBool,
    /// It was pcscd that stopped (`SCARD_E_NO_SERVICE` / `SCARD_E_SERVICE_STOPPED` seen).
    pub(crate) no_service: AtomicBool,
    /// The card left (or came and went) since the flag was last read by `slot_status`.
    pub(crate) removed_since: AtomicBool,
}

impl Shared {
    /// pcscd stopped: remember it (calls then say "pcscd is not running"), and publish
    /// `Disconnected` once.
    pub(crate) fn service_stopped(&self, hub: &EventHub, detail: &str) {
        self.no_service.store(true, Ordering::SeqCst);
        self.reader_gone(hub, detail);
    }

    /// Mark the reader gone and publish `Disconnected` once.
    pub(crate) fn reader_gone(&self, hub: &EventHub, detail: &str) {
        if !self.gone.swap(true, Ordering::SeqCst) {
            hub.publish(DeviceEvent::Disconnected {
                detail: detail.to_string(),
            });
        }
    }
}

/// An open connection to the card.
#[derive(Debug, Clone, Copy)]
struct Conn {
    handle: CardHandle,
    protocol: Protocol,
    in_transaction: bool,
}

/// What the worker thread owns: the card context and the connection.
struct Session {
    api: Arc<dyn PcscApi>,
    ctx: Context,
    reader: String,
    conn: Option<Conn>,
    /// Why the last card session ended without a power-off (the card was pulled), until the
    /// next power-on or power-off: an exchange then is `CardRemoved`, not `CardAbsent`.
    lost: Option<String>,
    config: PcscConfig,
    recv: Vec<u8>,
    shared: Arc<Shared>,
    hub: EventHub,
}

type Job = Box<dyn FnOnce(&mut Session) + Send>;

impl Session {
    /// End the transaction (if any) and disconnect with `disposition`: the card is free for
    /// other applications again. Failures are logged, not returned: the handle is gone
    /// either way.
    fn release(&mut self, disposition: Disposition) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if conn.in_transaction {
            if let Err(c) = self.api.end_transaction(conn.handle, Disposition::Leave) {
                log::debug!("pcsc: {}: SCardEndTransaction: {c}", self.reader);
            }
        }
        if let Err(c) = self.api.disconnect(conn.handle, disposition) {
            log::debug!("pcsc: {}: SCardDisconnect: {c}", self.reader);
        }
    }

    /// Whether the reader is still known to pcscd (a look with no wait).
    fn reader_present(&self) -> Result<ReaderState, ScardCode> {
        let mut st = [ReaderState::unaware(&self.reader)];
        self.api
            .get_status_change(self.ctx, Duration::ZERO, &mut st)
            .map(|()| st[0].clone())
    }

    /// The reader's state now; when it still shows the card, waits up to `removal_wait` for
    /// pcscd to report a change (a removal it has not seen yet).
    fn settled_state(&self) -> Result<ReaderState, ScardCode> {
        let now = self.reader_present()?;
        if !now.present() || now.gone() || self.config.removal_wait.is_zero() {
            return Ok(now);
        }
        let mut st = [now.clone()];
        st[0].current = now.event & !crate::codes::SCARD_STATE_CHANGED;
        match self
            .api
            .get_status_change(self.ctx, self.config.removal_wait, &mut st)
        {
            Ok(()) => Ok(st[0].clone()),
            Err(c) if c.0 == crate::codes::SCARD_E_TIMEOUT => Ok(now),
            Err(c) => Err(c),
        }
    }

    /// An exchange pcscd answered without status words: the card was pulled (libccid's
    /// answer to a cut exchange), the reader left, or the answer is garbled.
    fn no_status_words(&mut self, n: usize) -> PcscError {
        match self.settled_state() {
            Ok(st) if st.gone() => self.gone(format!(
                "SCardTransmit answered {n} byte(s); the reader left pcscd"
            )),
            Ok(st) if !st.present() => {
                self.release(Disposition::Leave);
                self.shared.removed_since.store(true, Ordering::SeqCst);
                self.lost = Some(format!("SCardTransmit answered {n} byte(s)"));
                PcscError::CardRemoved {
                    reader: self.reader.clone(),
                    detail: format!("SCardTransmit answered {n} byte(s), then the card was gone"),
                }
            }
            Err(c) if matches!(c.0, SCARD_E_UNKNOWN_READER | SCARD_E_READER_UNAVAILABLE) => {
                self.gone(format!("SCardTransmit answered {n} byte(s); then {c}"))
            }
            Err(c) if c.is_no_service() => {
                self.conn = None;
                PcscError::NoService { code: c }
            }
            _ => PcscError::Protocol(format!(
                "SCardTransmit answered {n} byte(s): no status words, and the card is still there"
            )),
        }
    }

    fn gone(&mut self, detail: String) -> PcscError {
        self.release(Disposition::Leave);
        self.shared.reader_gone(&self.hub, &detail);
        PcscError::ReaderGone {
            reader: self.reader.clone(),
            detail,
        }
    }

    /// After a failed call on the card: look at the reader before saying what happened.
    /// `powered` is true when a card session was open (a card that is gone then was removed).
    fn classify(&mut self, call: &'static str, code: ScardCode, powered: bool) -> PcscError {
        if code.is_no_service() {
            self.conn = None;
            self.shared.service_stopped(&self.hub, "pcscd stopped");
            return PcscError::NoService { code };
        }
        let worth_a_look = matches!(
            code.0,
            SCARD_W_REMOVED_CARD
                | SCARD_W_RESET_CARD
                | SCARD_E_NO_SMARTCARD
                | SCARD_W_UNPOWERED_CARD
                | SCARD_E_READER_UNAVAILABLE
                | SCARD_E_UNKNOWN_READER
                | SCARD_E_INVALID_HANDLE
                | SCARD_F_COMM_ERROR
        );
        if self.shared.gone.load(Ordering::SeqCst) {
            // The monitor saw the reader leave pcscd (or pcscd stop): whatever pcscd answers
            // a handle on it (pcsc-lite 1.9.9 says SCARD_E_INVALID_VALUE, measured in the
            // QEMU rig), the reader is gone.
            if let Err(e) = self.check_gone() {
                return e;
            }
        }
        if !worth_a_look {
            return PcscError::Call { call, code };
        }
        if matches!(code.0, SCARD_E_READER_UNAVAILABLE | SCARD_E_UNKNOWN_READER) {
            // pcscd says the reader is not there (any more): disconnected, with the event.
            return self.gone(format!("{call}: {code}"));
        }
        let look = if matches!(code.0, SCARD_W_REMOVED_CARD | SCARD_W_RESET_CARD) {
            self.reader_present()
        } else {
            self.settled_state()
        };
        match look {
            Ok(st) if st.gone() => self.gone(format!("{call}: {code}; the reader left pcscd")),
            Err(c) if matches!(c.0, SCARD_E_UNKNOWN_READER | SCARD_E_READER_UNAVAILABLE) => {
                self.gone(format!("{call}: {code}; then {c}"))
            }
            Ok(st) => {
                let card_left = !st.present()
                    || matches!(code.0, SCARD_W_REMOVED_CARD | SCARD_W_RESET_CARD)
                    || (powered && matches!(code.0, SCARD_E_NO_SMARTCARD | SCARD_W_UNPOWERED_CARD));
                if code.0 == SCARD_E_INVALID_HANDLE {
                    self.conn = None;
                }
                if card_left && (powered || code.kind() == pos_hal::FaultKind::CardRemoved) {
                    self.release(Disposition::Leave);
                    self.shared.removed_since.store(true, Ordering::SeqCst);
                    self.lost = Some(format!("{call}: {code}"));
                    PcscError::CardRemoved {
                        reader: self.reader.clone(),
                        detail: format!("{call}: {code}"),
                    }
                } else if !st.present() {
                    self.release(Disposition::Leave);
                    PcscError::CardAbsent {
                        reader: self.reader.clone(),
                    }
                } else {
                    PcscError::Call { call, code }
                }
            }
            Err(c) if c.is_no_service() => {
                self.conn = None;
                PcscError::NoService { code: c }
            }
            Err(_) => PcscError::Call { call, code },
        }
    }

    fn power_on(&mut self) -> Result<(Atr, Protocol), PcscError> {
        self.check_gone()?;
        // A card already powered is reset: power it down, then connect again (cold reset).
        self.release(Disposition::Unpower);
        self.lost = None;
        self.shared.removed_since.store(false, Ordering::SeqCst);
        let share = match self.config.sharing {
            Sharing::Exclusive => ShareMode::Exclusive,
            Sharing::Transaction => ShareMode::Shared,
        };
        let (handle, protocol) = self
            .api
            .connect(
                self.ctx,
                &self.reader,
                share,
                SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
            )
            .map_err(|c| self.classify("SCardConnect", c, false))?;
        self.conn = Some(Conn {
            handle,
            protocol,
            in_transaction: false,
        });
        if self.config.sharing == Sharing::Transaction {
            if let Err(c) = self.api.begin_transaction(handle) {
                let e = self.classify("SCardBeginTransaction", c, true);
                self.release(Disposition::Leave);
                return Err(e);
            }
            if let Some(conn) = self.conn.as_mut() {
                conn.in_transaction = true;
            }
        }
        let status = match self.api.status(handle) {
            Ok(s) => s,
            Err(c) => {
                let e = self.classify("SCardStatus", c, true);
                self.release(Disposition::Leave);
                return Err(e);
            }
        };
        let protocol = match status.protocol {
            Protocol::Other(_) => protocol,
            p => p,
        };
        if let Some(conn) = self.conn.as_mut() {
            conn.protocol = protocol;
        }
        log::debug!(
            "pcsc: {}: ATR {} T={}",
            self.reader,
            Atr(status.atr.clone()).to_hex(),
            protocol.number().map_or("?".to_string(), |n| n.to_string())
        );
        Ok((Atr(status.atr), protocol))
    }

    fn power_off(&mut self) -> Result<(), PcscError> {
        self.lost = None;
        let Some(conn) = self.conn.take() else {
            return Ok(());
        };
        if conn.in_transaction {
            if let Err(c) = self.api.end_transaction(conn.handle, Disposition::Leave) {
                log::debug!("pcsc: {}: SCardEndTransaction: {c}", self.reader);
            }
        }
        match self.api.disconnect(conn.handle, Disposition::Unpower) {
            Ok(()) => Ok(()),
            Err(c) if c.is_no_service() => Err(PcscError::NoService { code: c }),
            Err(c) if matches!(c.0, SCARD_E_READER_UNAVAILABLE | SCARD_E_UNKNOWN_READER) => {
                Err(self.gone(format!("SCardDisconnect: {c}")))
            }
            // The card is absent, removed or the handle already invalid: it is off.
            Err(c) => {
                log::debug!("pcsc: {}: SCardDisconnect: {c}", self.reader);
                Ok(())
            }
        }
    }

    fn transmit_once(&mut self, conn: Conn, command: &[u8]) -> Result<Vec<u8>, ScardCode> {
        if self.recv.len() < MAX_BUFFER_SIZE_EXTENDED {
            self.recv.resize(MAX_BUFFER_SIZE_EXTENDED, 0);
        }
        let n = self
            .api
            .transmit(conn.handle, conn.protocol, command, &mut self.recv)?;
        Ok(self.recv.get(..n).map(<[u8]>::to_vec).unwrap_or_default())
    }

    /// The monitor saw the reader leave pcscd: fail at once (the lane re-opens it).
    fn check_gone(&mut self) -> Result<(), PcscError> {
        if self.shared.no_service.load(Ordering::SeqCst) {
            self.conn = None;
            return Err(PcscError::NoService {
                code: ScardCode(crate::codes::SCARD_E_SERVICE_STOPPED),
            });
        }
        if self.shared.gone.load(Ordering::SeqCst) {
            return Err(self.gone("the reader left pcscd".into()));
        }
        Ok(())
    }

    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, PcscError> {
        self.check_gone()?;
        if command.len() < 4 {
            return Err(PcscError::BadApdu(format!(
                "{} bytes: a command APDU has at least CLA INS P1 P2",
                command.len()
            )));
        }
        if command.len() > MAX_BUFFER_SIZE_EXTENDED {
            return Err(PcscError::BadApdu(format!(
                "{} bytes: longer than PC/SC's largest buffer ({MAX_BUFFER_SIZE_EXTENDED})",
                command.len()
            )));
        }
        let Some(conn) = self.conn else {
            return Err(match &self.lost {
                Some(why) => PcscError::CardRemoved {
                    reader: self.reader.clone(),
                    detail: format!("the card was pulled after power-on ({why})"),
                },
                None => PcscError::CardAbsent {
                    reader: self.reader.clone(),
                },
            });
        };
        log::trace!(
            "pcsc: {}: > {:02X} {:02X} {:02X} {:02X} ({} bytes)",
            self.reader,
            command[0],
            command[1],
            command[2],
            command[3],
            command.len()
        );
        let result = if conn.protocol == Protocol::T0 && self.config.t0_get_response {
            t0::exchange(command, |c| self.transmit_once(conn, c))
        } else {
            self.transmit_once(conn, command)
                .map_err(T0Error::Transport)
        };
        match result {
            Ok(r) if r.len() < 2 => Err(self.no_status_words(r.len())),
            Ok(r) => Ok(r),
            Err(T0Error::Transport(code)) => Err(self.classify("SCardTransmit", code, true)),
            Err(T0Error::Endless { rounds }) => Err(PcscError::Protocol(format!(
                "the card still answers 61xx after {rounds} GET RESPONSE commands"
            ))),
        }
    }

    fn slot_status(&mut self) -> Result<SlotState, PcscError> {
        let st = match self.reader_present() {
            Ok(st) => st,
            Err(c) if matches!(c.0, SCARD_E_UNKNOWN_READER | SCARD_E_READER_UNAVAILABLE) => {
                return Err(self.gone(format!("SCardGetStatusChange: {c}")));
            }
            Err(c) => return Err(PcscError::from_code("SCardGetStatusChange", c)),
        };
        if st.gone() {
            return Err(self.gone("the reader left pcscd".into()));
        }
        let mut s = SlotState::empty();
        let present = st.present();
        s.set(SlotState::CARD_PRESENT, present);
        if !present && self.conn.is_some() {
            self.release(Disposition::Leave);
            self.shared.removed_since.store(true, Ordering::SeqCst);
            self.lost = Some("the slot showed no card during the session".into());
        }
        s.set(SlotState::POWERED, present && self.conn.is_some());
        if self.shared.removed_since.swap(false, Ordering::SeqCst) {
            s |= SlotState::CHANGED;
        }
        Ok(s)
    }
}

/// Where the worker is: the call it runs and since when (`None` when idle).
type Running = Arc<Mutex<Option<(&'static str, Instant)>>>;

/// A chip reader through pcscd: one PC/SC reader name, one slot (0).
///
/// - **Power on** connects (`SCardConnect`, T=0 or T=1, [`Sharing::Exclusive`] by default or
///   shared with `SCardBeginTransaction`) and reads the ATR with `SCardStatus`; a card
///   already powered is powered down and connected again (cold reset).
/// - **Transmit** is `SCardTransmit` with the PCI of the protocol in use; with T=0, `61xx`
///   and `6Cxx` are followed here ([`crate::t0`]).
/// - **Power off** ends the transaction and disconnects with `SCARD_UNPOWER_CARD`. The card
///   is released the same way when the reader is dropped, and with `SCARD_LEAVE_CARD` when
///   an exchange finds it removed or the reader gone: exclusive access never outlives the
///   session.
/// - **Events**: a monitor thread waits in `SCardGetStatusChange` on a context of its own,
///   [`PcscConfig::monitor_wait`] at a time, and publishes `CardInserted`, `CardRemoved` (also
///   for a card pulled and put back between two looks, by pcsc-lite's event counter) and
///   `Disconnected` when the reader leaves pcscd or pcscd stops. Closing cancels its wait
///   with `SCardCancel`.
/// - **Bounded**: every call to pcscd runs on the reader's worker thread; the caller waits at
///   most [`PcscConfig::call_timeout`] and then gets a `Timeout` error. A call pcscd never
///   answers keeps only the worker thread (pcsc-lite cannot abort `SCardTransmit`;
///   `SCardCancel` is sent all the same), and later calls fail at once with `Timeout` naming
///   the call still outstanding, until pcscd answers it.
pub struct PcscReader {
    reader: String,
    uri: String,
    api: Arc<dyn PcscApi>,
    hub: EventHub,
    shared: Arc<Shared>,
    config: PcscConfig,
    session_ctx: Context,
    jobs: Option<Sender<Job>>,
    running: Running,
    worker: Option<(JoinHandle<()>, Receiver<()>)>,
    monitor: Option<(JoinHandle<()>, Receiver<()>)>,
    monitor_ctx: Context,
    stop: Arc<AtomicBool>,
    protocol: Option<Protocol>,
    atr: Option<Atr>,
}

impl std::fmt::Debug for PcscReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscReader")
            .field("reader", &self.reader)
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

impl PcscReader {
    /// Open `reader` through `api`: two contexts (one for the card, one for the presence
    /// monitor), the worker thread and the monitor thread. The reader is not checked here
    /// (the caller picked it from `SCardListReaders`).
    ///
    /// Errors: `NoService` (pcscd not running), `Call` for another failure of
    /// `SCardEstablishContext`. Bounded by [`PcscConfig::call_timeout`].
    pub fn open(
        api: Arc<dyn PcscApi>,
        reader: &str,
        uri: &str,
        config: PcscConfig,
    ) -> Result<PcscReader, PcscError> {
        let session_ctx = bounded(config.call_timeout, "SCardEstablishContext", {
            let api = Arc::clone(&api);
            move || api.establish_context()
        })?
        .map_err(|c| PcscError::from_code("SCardEstablishContext", c))?;
        let monitor_ctx = match bounded(config.call_timeout, "SCardEstablishContext", {
            let api = Arc::clone(&api);
            move || api.establish_context()
        }) {
            Ok(Ok(c)) => c,
            other => {
                let _ = api.release_context(session_ctx);
                return Err(match other {
                    Ok(Err(c)) => PcscError::from_code("SCardEstablishContext", c),
                    Err(e) => e,
                    Ok(Ok(_)) => PcscError::Closed {
                        reader: reader.to_string(),
                    },
                });
            }
        };
        let hub = EventHub::new(uri);
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let session = Session {
            api: Arc::clone(&api),
            ctx: session_ctx,
            reader: reader.to_string(),
            conn: None,
            lost: None,
            config: config.clone(),
            recv: Vec::new(),
            shared: Arc::clone(&shared),
            hub: hub.clone(),
        };
        let running: Running = Arc::new(Mutex::new(None));
        let (jobs, rx) = mpsc::channel::<Job>();
        let worker = spawn_with_done("pcsc-worker", {
            let running = Arc::clone(&running);
            move || worker_loop(session, &rx, &running)
        });
        // The state the monitor starts from, taken before `open` returns: a card inserted or
        // pulled from now on is an event, however late the monitor thread starts.
        let initial = bounded(config.call_timeout, "SCardGetStatusChange", {
            let api = Arc::clone(&api);
            let reader = reader.to_string();
            move || {
                let mut st = [ReaderState::unaware(&reader)];
                api.get_status_change(monitor_ctx, Duration::ZERO, &mut st)
                    .ok()
                    .map(|()| st[0].clone())
            }
        })
        .ok()
        .flatten();
        let monitor = spawn_with_done("pcsc-monitor", {
            let m = monitor::Monitor {
                api: Arc::clone(&api),
                ctx: monitor_ctx,
                reader: reader.to_string(),
                hub: hub.clone(),
                shared: Arc::clone(&shared),
                stop: Arc::clone(&stop),
                wait: config.monitor_wait,
                initial,
            };
            move || m.run()
        });
        Ok(PcscReader {
            reader: reader.to_string(),
            uri: uri.to_string(),
            api,
            hub,
            shared,
            config,
            session_ctx,
            jobs: Some(jobs),
            running,
            worker: Some(worker),
            monitor: Some(monitor),
            monitor_ctx,
            stop,
            protocol: None,
            atr: None,
        })
    }

    /// The PC/SC reader name.
    pub fn reader_name(&self) -> &str {
        &self.reader
    }

    /// The protocol in use with the powered card: 0 or 1 (`None` when no card is powered).
    pub fn protocol(&self) -> Option<u8> {
        self.protocol.and_then(Protocol::number)
    }

    /// The ATR of the powered card, as power-on returned it.
    pub fn atr(&self) -> Option<&Atr> {
        self.atr.as_ref()
    }

    fn check_slot(slot: u8) -> Result<(), PcscError> {
        if slot == 0 {
            Ok(())
        } else {
            Err(PcscError::NoSuchSlot { slot })
        }
    }

    /// Run `f` on the worker and wait at most the call timeout.
    fn call<T: Send + 'static>(
        &self,
        name: &'static str,
        f: impl FnOnce(&mut Session) -> Result<T, PcscError> + Send + 'static,
    ) -> Result<T, PcscError> {
        if let Some((stuck, since)) = *self.running.lock().unwrap_or_else(PoisonError::into_inner) {
            return Err(PcscError::NoAnswer {
                call: stuck,
                after: since.elapsed(),
            });
        }
        let closed = || PcscError::Closed {
            reader: self.reader.clone(),
        };
        let Some(jobs) = &self.jobs else {
            return Err(closed());
        };
        let (tx, rx) = mpsc::channel();
        let running = Arc::clone(&self.running);
        let job: Job = Box::new(move |s: &mut Session| {
            *running.lock().unwrap_or_else(PoisonError::into_inner) = Some((name, Instant::now()));
            let r = f(s);
            *running.lock().unwrap_or_else(PoisonError::into_inner) = None;
            let _ = tx.send(r);
        });
        jobs.send(job).map_err(|_| closed())?;
        let started = Instant::now();
        match rx.recv_timeout(self.config.call_timeout) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => {
                log::warn!(
                    "pcsc: {}: {name}: pcscd did not answer within {:?}",
                    self.reader,
                    self.config.call_timeout
                );
                // pcsc-lite only cancels SCardGetStatusChange this way; other PC/SC
                // implementations end more calls. Sent from a thread of its own: SCardCancel
                // waits for pcscd's answer, and pcscd may be the one that hangs.
                cancel_detached(&self.api, self.session_ctx, &self.reader);
                Err(PcscError::NoAnswer {
                    call: name,
                    after: started.elapsed(),
                })
            }
            Err(RecvTimeoutError::Disconnected) => Err(closed()),
        }
    }
}

/// Run `f` on a thread of its own and wait at most `timeout` for it (for the calls made
/// before the worker exists). A call that does not return in time is left to its thread.
fn bounded<T: Send + 'static>(
    timeout: Duration,
    call: &'static str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PcscError> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("pcsc-call".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| PcscError::Thread(e.to_string()))?;
    rx.recv_timeout(timeout).map_err(|_| PcscError::NoAnswer {
        call,
        after: timeout,
    })
}

/// `SCardCancel(ctx)` on a thread of its own, not waited for: pcsc-lite's SCardCancel
/// waits for pcscd's answer (measured in the QEMU rig: over a minute while libccid waited
/// for an answer the reader had dropped), and closing or timing out must not.
fn cancel_detached(api: &Arc<dyn PcscApi>, ctx: Context, reader: &str) {
    let api = Arc::clone(api);
    let reader = reader.to_string();
    let spawned = std::thread::Builder::new()
        .name("pcsc-cancel".into())
        .spawn(move || {
            if let Err(c) = api.cancel(ctx) {
                log::debug!("pcsc: {reader}: SCardCancel: {c}");
            }
        });
    if let Err(e) = spawned {
        log::warn!("pcsc: cannot start a thread for SCardCancel: {e}");
    }
}

/// Spawn `f` and return its handle and a channel that says when it ended.
fn spawn_with_done(
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> (JoinHandle<()>, Receiver<()>) {
    let (done_tx, done_rx) = mpsc::channel();
    let run = move || {
        f();
        let _ = done_tx.send(());
    };
    match std::thread::Builder::new().name(name.into()).spawn(run) {
        Ok(h) => (h, done_rx),
        // No thread could be made: an already-finished stand-in, so callers see a closed
        // reader rather than a panic.
        Err(e) => {
            log::error!("pcsc: cannot start the {name} thread: {e}");
            let (tx, rx) = mpsc::channel();
            let _ = tx.send(());
            (std::thread::spawn(|| {}), rx)
        }
    }
}

fn worker_loop(mut session: Session, jobs: &Receiver<Job>, running: &Running) {
    while let Ok(job) = jobs.recv() {
        job(&mut session);
    }
    // Closed: release the card (end the transaction, power down) and the context.
    *running.lock().unwrap_or_else(PoisonError::into_inner) = Some(("close", Instant::now()));
    session.release(Disposition::Unpower);
    if let Err(c) = session.api.release_context(session.ctx) {
        log::debug!("pcsc: {}: SCardReleaseContext: {c}", session.reader);
    }
}

/// Wait up to `wait` for a thread to say it ended, then join it; otherwise leave it.
fn join_bounded(thread: Option<(JoinHandle<()>, Receiver<()>)>, wait: Duration, what: &str) {
    if let Some((handle, done)) = thread {
        match done.recv_timeout(wait) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                let _ = handle.join();
            }
            Err(RecvTimeoutError::Timeout) => {
                log::warn!(
                    "pcsc: the {what} thread did not end within {wait:?}: left to end on its own"
                );
            }
        }
    }
}

impl Drop for PcscReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Ends the monitor's SCardGetStatusChange at once (and it ends by itself within
        // `monitor_wait` when pcscd does not answer the cancel).
        cancel_detached(&self.api, self.monitor_ctx, &self.reader);
        // The worker ends when its job channel closes, releasing the card and its context.
        self.jobs = None;
        let wait = self.config.close_wait;
        join_bounded(self.worker.take(), wait, "worker");
        join_bounded(self.monitor.take(), wait, "monitor");
    }
}

impl Device for PcscReader {
    type Error = PcscError;

    fn info(&self) -> DeviceInfo {
        let mut i = DeviceInfo::new(DeviceKind::ChipReader, self.uri.clone());
        i.model = Some(self.reader.clone());
        i
    }

    fn state(&self) -> DeviceState {
        if self.shared.gone.load(Ordering::SeqCst) || self.jobs.is_none() {
            DeviceState::Error
        } else if self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
        {
            DeviceState::Busy
        } else {
            DeviceState::Idle
        }
    }

    /// Internal: the reader is known to pcscd and the slot's state. External: also power
    /// the card on and off (when one is present). Bounded by a few call timeouts.
    fn check_health(&mut self, level: HealthLevel) -> Result<HealthReport, PcscError> {
        let mut report = HealthReport::new(self.uri.clone(), level);
        let st = match self.slot_status(0) {
            Ok(st) => st,
            Err(e) if e.kind() == pos_hal::FaultKind::Disconnected => return Err(e),
            Err(e) => {
                report.fail("slot0", e.kind(), e.to_string());
                return Ok(report);
            }
        };
        report.pass("pcscd", format!("reader {:?} known to pcscd", self.reader));
        if !st.contains(SlotState::CARD_PRESENT) {
            report.skip("slot0", "no card");
            return Ok(report);
        }
        report.pass("slot0", "card present");
        if level >= HealthLevel::External {
            match self.power_on(0) {
                Ok(atr) => report.pass("slot0_atr", atr.to_hex()),
                Err(e) => report.fail("slot0_atr", e.kind(), e.to_string()),
            };
            let _ = self.power_off(0);
        }
        Ok(report)
    }

    fn subscribe(&mut self) -> Result<Subscription, PcscError> {
        if self.monitor.is_none() {
            return Err(PcscError::Closed {
                reader: self.reader.clone(),
            });
        }
        Ok(self.hub.subscribe())
    }
}

impl ChipReader for PcscReader {
    fn slot_count(&self) -> u8 {
        1
    }

    /// APDU level (pcscd and its driver run the card protocol), with presence events. What
    /// the reader itself can do is the reader driver's business and is not reported.
    fn capabilities(&self) -> ReaderCapabilities {
        ReaderCapabilities::APDU_LEVEL | ReaderCapabilities::PRESENCE_INTERRUPT
    }

    /// `SCardGetStatusChange` with no wait. Errors: `NoSuchSlot` (InvalidInput), `ReaderGone`
    /// (Disconnected), `NoService`, `NoAnswer` (Timeout: [`PcscConfig::call_timeout`]).
    fn slot_status(&mut self, slot: u8) -> Result<SlotState, PcscError> {
        Self::check_slot(slot)?;
        let st = self.call("SCardGetStatusChange", Session::slot_status)?;
        if !st.contains(SlotState::POWERED) {
            self.protocol = None;
            self.atr = None;
        }
        Ok(st)
    }

    /// `SCardConnect` + `SCardStatus` (ATR). Errors: `CardAbsent` (`SCARD_E_NO_SMARTCARD`),
    /// `CardRemoved`, `CardMute` (`SCARD_W_UNRESPONSIVE_CARD`), `CardUnsupported`,
    /// `Busy` (another application holds the card), `Disconnected` (reader gone, pcscd not
    /// running), `Timeout` ([`PcscConfig::call_timeout`]).
    fn power_on(&mut self, slot: u8) -> Result<Atr, PcscError> {
        Self::check_slot(slot)?;
        self.protocol = None;
        self.atr = None;
        let (atr, protocol) = self.call("SCardConnect", Session::power_on)?;
        self.protocol = Some(protocol);
        self.atr = Some(atr.clone());
        Ok(atr)
    }

    /// `SCardDisconnect(SCARD_UNPOWER_CARD)` (after `SCardEndTransaction`). An absent or
    /// unpowered card is not an error. Errors: `Disconnected`, `Timeout`.
    fn power_off(&mut self, slot: u8) -> Result<(), PcscError> {
        Self::check_slot(slot)?;
        self.protocol = None;
        self.atr = None;
        self.call("SCardDisconnect", Session::power_off)
    }

    /// `SCardTransmit` (T=0: with `61xx`/`6Cxx` followed). Errors: `CardRemoved` (pulled
    /// mid-exchange, the reader looked at before saying so), `CardAbsent` (not powered),
    /// `CardMute`, `Disconnected` (reader unplugged, with a `Disconnected` event; pcscd
    /// stopped), `Protocol` (61xx without end), `InvalidInput` (APDU malformed), `Timeout`
    /// ([`PcscConfig::call_timeout`] for the whole exchange, GET RESPONSE rounds included).
    fn transmit(&mut self, slot: u8, command: &[u8]) -> Result<Vec<u8>, PcscError> {
        Self::check_slot(slot)?;
        let command = command.to_vec();
        let r = self.call("SCardTransmit", move |s| s.transmit(&command));
        if let Err(e) = &r {
            if matches!(
                e,
                PcscError::CardRemoved { .. }
                    | PcscError::CardAbsent { .. }
                    | PcscError::ReaderGone { .. }
                    | PcscError::NoService { .. }
            ) {
                self.protocol = None;
                self.atr = None;
            }
        }
        r
    }
}
