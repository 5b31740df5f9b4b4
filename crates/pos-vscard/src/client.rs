//! The card client: connects to QEMU's `ccid-card-passthru` chardev socket and plays a
//! [`VirtualCard`] on its own threads.
//!
//! Two threads per client: a reader thread decodes the socket into messages, and a worker
//! thread owns the card and the write half; both feed one channel, so commands from the
//! [`CardClient`] handle and messages from QEMU are handled strictly in arrival order.
//!
//! See the crate documentation for the protocol as QEMU implements it.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use pos_hal::{Sensitive, VirtualCard};

use crate::codec::{
    Body, DEFAULT_MAX_PAYLOAD, DecodeError, Decoder, MAGIC, MAX_ATR_LEN, MINIMAL_READER_ID,
    Message, UNDEFINED_READER_ID, VERSION, encode, error_code,
};
use crate::error::Error;

mod state;

pub use state::*;

/// What to do when the card stays silent (`VirtualCard::transmit` returns `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SilentPolicy {
    /// Send a VSCard Error (general error) for the APDU. QEMU then fails the guest's
    /// `PC_to_RDR_XfrBlock` at once: an empty `RDR_to_PC_DataBlock` with
    /// `bmCommandStatus = Failed` (`ccid_card_card_error` in `hw/usb/dev-smartcard-reader.c`).
    /// This is the closest the protocol gets to a real reader reporting a mute card: QEMU
    /// has no way to carry `ICC_MUTE` (0xFE) from the card side. vscclient does the same
    /// when its reader fails an exchange.
    #[default]
    SendError,
    /// Send nothing. QEMU keeps the guest's XfrBlock pending with no timeout of its own;
    /// current QEMU answers every further XfrBlock with `CMD_SLOT_BUSY`, while older QEMU
    /// (7.x) queues them and pairs the *next* card answer with the silent command (answers
    /// go out of step), until the card is removed (CardRemove flushes the pending answers as
    /// empty DataBlocks). Only the guest driver's own USB timeout ends the wait. Use it to
    /// test a guest's handling of a hung reader, not as a model of a mute card.
    NoAnswer,
}

/// How the client behaves.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Reader name sent in ReaderAdd. QEMU ignores it; vscclient sends an empty one.
    pub reader_name: String,
    /// What to do with a silent card.
    pub silent: SilentPolicy,
    /// Largest payload accepted from or sent to QEMU. Default [`DEFAULT_MAX_PAYLOAD`] (what
    /// fits QEMU's 64 KiB receive buffer; a bigger message makes QEMU drop the connection).
    pub max_payload: u32,
    /// Pause between connection attempts while the socket does not exist yet.
    pub retry_interval: Duration,
    /// Longest a single write to QEMU may block (the socket's send timeout). A QEMU that
    /// stops reading (wedged, paused) would otherwise block the client's thread forever; when
    /// a write times out the link closes with [`CloseReason::Failed`] saying so (the stream
    /// may hold half a message, so it cannot be resumed). Default 5 s. [`Duration::ZERO`]
    /// means no timeout (block as long as QEMU does).
    pub write_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            reader_name: String::new(),
            silent: SilentPolicy::default(),
            max_payload: DEFAULT_MAX_PAYLOAD,
            retry_interval: Duration::from_millis(50),
            write_timeout: Duration::from_secs(5),
        }
    }
}

enum Command {
    Insert(Box<dyn VirtualCard>),
    Remove,
    RemoveOnApdu(u32),
    /// A [`CardClient::sync`] marker: everything queued before it is done.
    Mark(u64),
    Shutdown,
}

enum Event {
    Cmd(Command),
    Msg(Message),
    Bad(DecodeError),
    Eof,
    ReadFailed(io::Error),
}

struct Shared {
    stats: Mutex<Stats>,
    cv: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut Stats)) {
        let mut s = self.lock();
        f(&mut s);
        drop(s);
        self.cv.notify_all();
    }
}

struct Inner {
    tx: Mutex<Sender<Event>>,
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// The last [`Command::Mark`] id handed out.
    last_mark: AtomicU64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: stop the worker (it closes the socket, which stops the
        // reader). Do not join here: a card stuck in `transmit` must not hang a drop.
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        let _ = tx.send(Event::Cmd(Command::Shutdown));
    }
}

/// Handle to a running card client. Cheap to clone; all clones drive the same client.
///
/// Commands (`insert`, `remove`, `remove_on_apdu`) are queued to the client's thread and
/// return at once; they are carried out in order with QEMU's messages. To know that they
/// have been carried out *and* acknowledged by QEMU (ATR and CardRemove answered), call
/// [`sync`](CardClient::sync). Watch their effect with [`stats`](CardClient::stats) /
/// [`wait_until`](CardClient::wait_until).
///
/// Dropping the last handle shuts the client down (without waiting for its threads).
#[derive(Clone)]
pub struct CardClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for CardClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardClient")
            .field("state", &self.inner.shared.lock().state)
            .finish()
    }
}

fn connect_socket(path: &Path, timeout: Duration, retry: Duration) -> Result<UnixStream, Error> {
    let start = Instant::now();
    loop {
        match UnixStream::connect(path) {
            Ok(s) => return Ok(s),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) =>
            {
                let waited = start.elapsed();
                if waited >= timeout {
                    return Err(Error::ConnectTimeout {
                        path: path.to_path_buf(),
                        waited,
                        last: e,
                    });
                }
                let pause = retry
                    .min(timeout.saturating_sub(waited))
                    .max(Duration::from_millis(1));
                debug!("VSCard socket {} not ready ({e}); retrying", path.display());
                thread::sleep(pause);
            }
            Err(e) => {
                return Err(Error::Connect {
                    path: path.to_path_buf(),
                    source: e,
                });
            }
        }
    }
}

impl CardClient {
    /// Connect to QEMU's chardev socket at `path` with the default [`ClientConfig`] and start
    /// the client. See [`connect_with`](CardClient::connect_with).
    ///
    /// Errors and timeout: as [`connect_with`](CardClient::connect_with).
    pub fn connect(path: impl AsRef<Path>, timeout: Duration) -> Result<CardClient, Error> {
        CardClient::connect_with(path, timeout, ClientConfig::default())
    }

    /// Connect to QEMU's chardev socket at `path`, retrying while it does not exist (or
    /// refuses) for up to `timeout`, then start the client threads, which send Init and run
    /// the handshake in the background. No card is inserted: call
    /// [`insert`](CardClient::insert). Use [`wait_connected`](CardClient::wait_connected) to
    /// wait for the handshake.
    ///
    /// Errors: [`Error::ConnectTimeout`] when the socket did not appear or accept within
    /// `timeout` (names the path and the last OS error); [`Error::Connect`] at once for an
    /// error retrying will not fix (permission denied, not a socket); [`Error::Io`] when the
    /// threads cannot be started or the socket cannot be cloned.
    pub fn connect_with(
        path: impl AsRef<Path>,
        timeout: Duration,
        config: ClientConfig,
    ) -> Result<CardClient, Error> {
        let path: PathBuf = path.as_ref().to_path_buf();
        let stream = connect_socket(&path, timeout, config.retry_interval)?;
        // SO_SNDTIMEO; `None` (no timeout) for zero, which `set_write_timeout` refuses.
        stream.set_write_timeout(Some(config.write_timeout).filter(|d| !d.is_zero()))?;
        info!("VSCard: connected to {}", path.display());
        let read_half = stream.try_clone()?;
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            stats: Mutex::new(Stats::new()),
            cv: Condvar::new(),
        });
        let max = config.max_payload;
        let reader_tx = tx.clone();
        let reader = thread::Builder::new()
            .name("vscard-read".into())
            .spawn(move || reader_loop(read_half, reader_tx, max))?;
        let mut worker = Worker {
            stream,
            shared: Arc::clone(&shared),
            config,
            phase: Phase::AwaitInit,
            reader_id: MINIMAL_READER_ID,
            card: None,
            expect: VecDeque::new(),
            countdown: None,
            published_awaiting: 0,
        };
        let spawned = thread::Builder::new()
            .name("vscard-card".into())
            .spawn(move || worker.run(rx));
        let worker = match spawned {
            Ok(h) => h,
            Err(e) => {
                // The worker closure (and its stream) was dropped; the reader sees EOF.
                return Err(Error::Io(e));
            }
        };
        Ok(CardClient {
            inner: Arc::new(Inner {
                tx: Mutex::new(tx),
                shared,
                threads: Mutex::new(vec![worker, reader]),
                last_mark: AtomicU64::new(0),
            }),
        })
    }

    fn command(&self, cmd: Command) -> Result<(), Error> {
        self.command_with(|| cmd)
    }

    /// Queue the command `make` builds, built while holding the channel: commands made
    /// under the lock (sync markers and their ids) reach the worker in the order made.
    fn command_with(&self, make: impl FnOnce() -> Command) -> Result<(), Error> {
        let sent = {
            let tx = self.inner.tx.lock().unwrap_or_else(|e| e.into_inner());
            tx.send(Event::Cmd(make())).is_ok()
        };
        if sent {
            return Ok(());
        }
        match &self.inner.shared.lock().state {
            LinkState::Closed(reason) => Err(Error::Closed {
                reason: reason.clone(),
            }),
            _ => Err(Error::Stopped),
        }
    }

    /// Insert `card`: power it on and, once the handshake is done, send its ATR to QEMU (which
    /// then shows the guest a present card and answers the guest's IccPowerOn with this ATR).
    /// A card already inserted is removed first (CardRemove).
    ///
    /// A mute card (`power_on` returns `None`) sends nothing: QEMU's slot only becomes
    /// present on an ATR message, so the guest keeps seeing an empty slot — there is no way
    /// to show "present but mute" through VSCard. It is counted in
    /// [`Stats::mute_insertions`] and can be removed like any card.
    ///
    /// An ATR longer than 40 bytes or inconsistent is sent anyway; QEMU refuses it (Error
    /// general error), which shows in [`Stats::atr_rejected`].
    ///
    /// Returns at once. Errors: [`Error::Closed`] / [`Error::Stopped`] when the client has
    /// stopped (the card is dropped).
    pub fn insert(&self, card: Box<dyn VirtualCard>) -> Result<(), Error> {
        self.command(Command::Insert(card))
    }

    /// Pull the card: send CardRemove (when QEMU knew the card). QEMU marks the slot empty,
    /// notifies the guest and flushes a pending APDU answer as an empty DataBlock. No card:
    /// nothing happens.
    ///
    /// Returns at once. Errors: [`Error::Closed`] / [`Error::Stopped`] when the client has
    /// stopped.
    pub fn remove(&self) -> Result<(), Error> {
        self.command(Command::Remove)
    }

    /// Arm "card removed mid-exchange": the `n`-th APDU reaching an inserted card from now on
    /// (1 = the next one) is not given to the card nor answered; the card is pulled
    /// (CardRemove) instead, so QEMU fails the guest's pending XfrBlock with an empty
    /// DataBlock and a not-present slot. `n = 0` disarms. Stays armed across insertions.
    ///
    /// Returns at once. Errors: [`Error::Closed`] / [`Error::Stopped`] when the client has
    /// stopped.
    pub fn remove_on_apdu(&self, n: u32) -> Result<(), Error> {
        self.command(Command::RemoveOnApdu(n))
    }

    /// Wait until every command queued on this client (from any handle) before this call has
    /// been carried out by the client's thread, and QEMU has answered every message of ours
    /// that it answers ([`Stats::awaiting_answers`] is 0): the handshake's Init, ReaderRemove
    /// and ReaderAdd, each ATR and each CardRemove. Returns the stats at that point.
    ///
    /// So `insert` then `sync` returns once QEMU accepted (or refused: see
    /// [`Stats::atr_rejected`]) the ATR, and `remove` then `sync` once QEMU answered the
    /// CardRemove. Called before the handshake has finished, it also waits for the handshake
    /// (and for the ATR of a card inserted meanwhile). A mute card sends nothing, so it syncs
    /// as soon as the command has been carried out. APDU answers are not acknowledged by
    /// QEMU; `sync` only says they were written to the socket.
    ///
    /// Blocks for at most `timeout`. Errors: [`Error::Timeout`] when the commands were not
    /// carried out or QEMU did not acknowledge them within `timeout` (the client keeps
    /// running; a later `sync` may succeed); [`Error::Closed`] when the link is closed or
    /// closes before (a closed client never syncs); [`Error::Stopped`] when the client's
    /// thread has stopped.
    pub fn sync(&self, timeout: Duration) -> Result<Stats, Error> {
        let mut id = 0;
        self.command_with(|| {
            id = self.inner.last_mark.fetch_add(1, Ordering::Relaxed) + 1;
            Command::Mark(id)
        })?;
        self.wait_until(
            timeout,
            "the client to carry out its queued commands and QEMU to acknowledge them",
            |s| {
                s.marks_done >= id
                    && s.awaiting_answers == 0
                    && !matches!(s.state, LinkState::Closed(_))
            },
        )
    }

    /// A snapshot of the counters and link state. Does no I/O, never blocks for long.
    pub fn stats(&self) -> Stats {
        self.inner.shared.lock().clone()
    }

    /// Wait until `pred` holds for the stats, for at most `timeout`, and return them.
    ///
    /// Errors: [`Error::Timeout`] (with `what`) when `pred` did not hold in time;
    /// [`Error::Closed`] when the link closed first and `pred` does not hold on the final
    /// stats.
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &'static str,
        pred: impl Fn(&Stats) -> bool,
    ) -> Result<Stats, Error> {
        let start = Instant::now();
        let mut s = self.inner.shared.lock();
        loop {
            if pred(&s) {
                return Ok(s.clone());
            }
            if let LinkState::Closed(reason) = &s.state {
                return Err(Error::Closed {
                    reason: reason.clone(),
                });
            }
            let waited = start.elapsed();
            let Some(left) = timeout.checked_sub(waited).filter(|d| !d.is_zero()) else {
                return Err(Error::Timeout { waited, what });
            };
            s = self
                .inner
                .shared
                .cv
                .wait_timeout(s, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Wait for the handshake to finish (QEMU answered Init and added the reader), for at most
    /// `timeout`.
    ///
    /// Errors: [`Error::Timeout`] when QEMU did not answer in time; [`Error::Handshake`] when
    /// it refused (bad magic, reader not added); [`Error::Closed`] when the link closed first.
    pub fn wait_connected(&self, timeout: Duration) -> Result<(), Error> {
        match self.wait_until(timeout, "the VSCard handshake", |s| {
            s.state == LinkState::Ready
        }) {
            Ok(_) => Ok(()),
            Err(Error::Closed {
                reason: CloseReason::HandshakeFailed(m),
            }) => Err(Error::Handshake(m)),
            Err(e) => Err(e),
        }
    }

    /// Wait until the link closes (QEMU exits, an error, a shutdown), for at most `timeout`,
    /// and return why.
    ///
    /// Errors: [`Error::Timeout`] when it is still open after `timeout`.
    pub fn wait_closed(&self, timeout: Duration) -> Result<CloseReason, Error> {
        let s = self.wait_until(timeout, "the VSCard link to close", |s| {
            matches!(s.state, LinkState::Closed(_))
        });
        match s {
            Ok(Stats {
                state: LinkState::Closed(r),
                ..
            }) => Ok(r),
            Err(Error::Closed { reason }) => Ok(reason),
            Ok(_) => Err(Error::Stopped),
            Err(e) => Err(e),
        }
    }

    /// Stop the client: pull the card (CardRemove) and remove the reader (ReaderRemove) as
    /// vscclient does on exit, close the socket, and join both threads. Idempotent; other
    /// handles then get [`Error::Closed`] from commands.
    ///
    /// Blocks until the threads end, which is bounded by the card's own `transmit` if one is
    /// in progress. Errors: [`Error::Stopped`] when a thread panicked (only a panicking card
    /// can cause that, and the worker catches those).
    pub fn shutdown(&self) -> Result<(), Error> {
        let _ = self.command(Command::Shutdown);
        let threads: Vec<JoinHandle<()>> = {
            let mut t = self.inner.threads.lock().unwrap_or_else(|e| e.into_inner());
            t.drain(..).collect()
        };
        let mut result = Ok(());
        for t in threads {
            if t.join().is_err() {
                result = Err(Error::Stopped);
            }
        }
        result
    }
}

fn reader_loop(mut stream: UnixStream, tx: Sender<Event>, max: u32) {
    let mut dec = Decoder::with_max_payload(max);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => {
                let _ = tx.send(Event::Eof);
                return;
            }
            Ok(n) => {
                dec.push(buf.get(..n).unwrap_or(&[]));
                loop {
                    match dec.pop() {
                        Ok(Some(m)) => {
                            if tx.send(Event::Msg(m)).is_err() {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            let fatal = e.is_fatal();
                            if tx.send(Event::Bad(e)).is_err() || fatal {
                                return;
                            }
                        }
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.send(Event::ReadFailed(e));
                return;
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitInit,
    AwaitReader,
    Ready,
}

/// A message we sent that QEMU answers with an Error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    ReaderRemove,
    ReaderAdd,
    Atr,
    CardRemove,
}

struct Slot {
    card: Box<dyn VirtualCard>,
    atr: Option<Vec<u8>>,
    /// The ATR was sent and not refused: QEMU shows the card to the guest.
    visible: bool,
}

struct Worker {
    stream: UnixStream,
    shared: Arc<Shared>,
    config: ClientConfig,
    phase: Phase,
    reader_id: u32,
    card: Option<Slot>,
    expect: VecDeque<Expect>,
    countdown: Option<u32>,
    /// [`Stats::awaiting_answers`] as last published.
    published_awaiting: usize,
}

type Flow = Result<(), CloseReason>;

impl Worker {
    fn run(&mut self, rx: Receiver<Event>) {
        let reason = match self.main_loop(&rx) {
            Ok(()) => CloseReason::Shutdown,
            Err(r) => r,
        };
        if reason == CloseReason::Shutdown {
            self.goodbye();
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        match &reason {
            CloseReason::Eof | CloseReason::Shutdown => info!("VSCard: link closed: {reason}"),
            _ => warn!("VSCard: link closed: {reason}"),
        }
        let r = reason.clone();
        self.shared.update(|s| {
            if let CloseReason::HandshakeFailed(m) | CloseReason::Failed(m) = &r {
                s.last_error = Some(m.clone());
            }
            s.card_visible = false;
            s.state = LinkState::Closed(r);
        });
    }

    fn main_loop(&mut self, rx: &Receiver<Event>) -> Flow {
        self.send(Message::init())?;
        self.publish_awaiting();
        loop {
            let Ok(ev) = rx.recv() else {
                return Ok(());
            };
            if matches!(ev, Event::Cmd(Command::Shutdown)) {
                return Ok(());
            }
            self.handle(ev)?;
            // Published once per event, after it is fully handled, so a waiter never sees a
            // transient 0 (e.g. between the ReaderAdd answer and the ATR it triggers).
            self.publish_awaiting();
        }
    }

    /// Messages QEMU still has to answer: the `expect` queue, plus our Init until QEMU's.
    fn awaiting(&self) -> usize {
        self.expect.len() + usize::from(self.phase == Phase::AwaitInit)
    }

    fn publish_awaiting(&mut self) {
        let n = self.awaiting();
        if n != self.published_awaiting {
            self.published_awaiting = n;
            self.shared.update(|s| s.awaiting_answers = n);
        }
    }

    /// Handle one event (a [`Command::Shutdown`] is handled by `main_loop`).
    fn handle(&mut self, ev: Event) -> Flow {
        match ev {
            Event::Cmd(Command::Shutdown) => Ok(()),
            Event::Cmd(Command::Insert(card)) => self.insert(card),
            Event::Cmd(Command::Remove) => self.remove(),
            Event::Cmd(Command::RemoveOnApdu(n)) => {
                self.countdown = (n > 0).then_some(n);
                debug!("VSCard: remove_on_apdu({n})");
                Ok(())
            }
            Event::Cmd(Command::Mark(id)) => {
                debug!("VSCard: sync mark {id}");
                self.shared.update(|s| s.marks_done = s.marks_done.max(id));
                Ok(())
            }
            Event::Msg(m) => self.on_message(m),
            Event::Bad(e) => {
                if e.is_fatal() {
                    return Err(CloseReason::Failed(e.to_string()));
                }
                warn!("VSCard: skipped a message from QEMU: {e}");
                let text = e.to_string();
                self.shared.update(|s| {
                    s.unexpected += 1;
                    s.last_error = Some(text);
                });
                Ok(())
            }
            Event::Eof => Err(CloseReason::Eof),
            Event::ReadFailed(e) => Err(io_close(&e)),
        }
    }

    /// Best-effort goodbye on shutdown, like vscclient's `exit` command.
    fn goodbye(&mut self) {
        if self.phase != Phase::Ready {
            return;
        }
        if self.card.as_ref().is_some_and(|c| c.visible) {
            let _ = self.send(Message::new(self.reader_id, Body::CardRemove));
        }
        let _ = self.send(Message::new(self.reader_id, Body::ReaderRemove));
    }

    fn send(&mut self, m: Message) -> Flow {
        let len = m.body.payload_len();
        debug!(
            "VSCard -> {} reader {:#x} len {len}",
            m.message_type(),
            m.reader_id
        );
        if len > self.config.max_payload as usize {
            return Err(CloseReason::Failed(format!(
                "refusing to send a {} of {len} bytes (cap {})",
                m.message_type(),
                self.config.max_payload
            )));
        }
        let bytes = Sensitive::new(encode(&m));
        self.stream.write_all(bytes.expose()).map_err(|e| {
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) {
                // SO_SNDTIMEO expired (EAGAIN). Part of the message may have gone out, so
                // the stream cannot be resumed.
                CloseReason::Failed(format!(
                    "write to QEMU timed out after {:?} (QEMU is not reading the socket)",
                    self.config.write_timeout
                ))
            } else {
                io_close(&e)
            }
        })
    }

    fn insert(&mut self, mut card: Box<dyn VirtualCard>) -> Flow {
        if self.card.is_some() {
            self.remove()?;
        }
        let atr = catch_unwind(AssertUnwindSafe(|| card.power_on()))
            .map_err(|_| CloseReason::Failed("the virtual card panicked in power_on".into()))?;
        let mute = atr.is_none();
        self.shared.update(|s| {
            s.insertions += 1;
            if mute {
                s.mute_insertions += 1;
            }
        });
        match &atr {
            None => info!("VSCard: mute card inserted: no ATR, QEMU keeps the slot empty"),
            Some(a) => info!("VSCard: card inserted, ATR {} bytes", a.len()),
        }
        self.card = Some(Slot {
            card,
            atr,
            visible: false,
        });
        if self.phase == Phase::Ready {
            self.send_atr()?;
        }
        Ok(())
    }

    fn send_atr(&mut self) -> Flow {
        let Some(atr) = self.card.as_ref().and_then(|c| c.atr.clone()) else {
            return Ok(());
        };
        if atr.len() > MAX_ATR_LEN {
            warn!(
                "VSCard: ATR of {} bytes is longer than QEMU's {MAX_ATR_LEN}; it will be refused",
                atr.len()
            );
        }
        debug!("VSCard: ATR {atr:02X?}");
        self.send(Message::new(self.reader_id, Body::Atr(atr)))?;
        self.expect.push_back(Expect::Atr);
        if let Some(c) = self.card.as_mut() {
            c.visible = true;
        }
        self.shared.update(|s| s.card_visible = true);
        Ok(())
    }

    fn remove(&mut self) -> Flow {
        let Some(slot) = self.card.take() else {
            debug!("VSCard: remove with no card: nothing to do");
            return Ok(());
        };
        self.shared.update(|s| {
            s.removals += 1;
            s.card_visible = false;
        });
        info!("VSCard: card removed");
        if slot.visible && self.phase == Phase::Ready {
            self.send(Message::new(self.reader_id, Body::CardRemove))?;
            self.expect.push_back(Expect::CardRemove);
        }
        Ok(())
    }

    fn on_message(&mut self, m: Message) -> Flow {
        debug!(
            "VSCard <- {} reader {:#x} len {}",
            m.message_type(),
            m.reader_id,
            m.body.payload_len()
        );
        match m.body {
            Body::Init { magic, version, .. } => self.on_init(magic, version),
            Body::Error { code } => self.on_error(m.reader_id, code),
            Body::Apdu(cmd) => self.on_apdu(m.reader_id, Sensitive::new(cmd)),
            Body::Flush => {
                // APDUs are answered synchronously, so nothing is outstanding.
                self.send(Message::new(m.reader_id, Body::FlushComplete))
            }
            other => {
                warn!(
                    "VSCard: unexpected {} from QEMU ignored",
                    other.message_type()
                );
                let text = format!("unexpected {} from QEMU", other.message_type());
                self.shared.update(|s| {
                    s.unexpected += 1;
                    s.last_error = Some(text);
                });
                Ok(())
            }
        }
    }

    fn on_init(&mut self, magic: [u8; 4], version: u32) -> Flow {
        if self.phase != Phase::AwaitInit {
            debug!("VSCard: extra Init from QEMU ignored");
            return Ok(());
        }
        if magic != MAGIC {
            return Err(CloseReason::HandshakeFailed(format!(
                "QEMU's Init has magic {magic:02X?}, not \"VSCD\""
            )));
        }
        if version != VERSION {
            warn!("VSCard: QEMU speaks version {version}, we speak {VERSION}; going on");
        }
        // Like vscclient: clear whatever reader an earlier, uncleanly ended client left in
        // QEMU, then add ours.
        self.send(Message::new(MINIMAL_READER_ID, Body::ReaderRemove))?;
        self.expect.push_back(Expect::ReaderRemove);
        let name = self.config.reader_name.clone().into_bytes();
        self.send(Message::new(UNDEFINED_READER_ID, Body::ReaderAdd { name }))?;
        self.expect.push_back(Expect::ReaderAdd);
        self.phase = Phase::AwaitReader;
        Ok(())
    }

    fn on_error(&mut self, reader_id: u32, code: u32) -> Flow {
        let answered = self.expect.pop_front();
        let ok = code == error_code::SUCCESS;
        match answered {
            Some(Expect::ReaderAdd) if ok => {
                self.reader_id = reader_id;
                self.phase = Phase::Ready;
                info!("VSCard: reader added (id {reader_id})");
                self.shared.update(|s| {
                    s.reader_id = Some(reader_id);
                    s.state = LinkState::Ready;
                });
                if self.card.is_some() {
                    self.send_atr()?;
                }
                Ok(())
            }
            Some(Expect::ReaderAdd) => Err(CloseReason::HandshakeFailed(format!(
                "QEMU refused the reader (error code {code})"
            ))),
            Some(Expect::Atr) if !ok => {
                warn!("VSCard: QEMU refused the ATR (error code {code})");
                if let Some(c) = self.card.as_mut() {
                    c.visible = false;
                }
                self.shared.update(|s| {
                    s.atr_rejected += 1;
                    s.host_errors += 1;
                    s.card_visible = false;
                    s.last_error = Some(format!("QEMU refused the ATR (error code {code})"));
                });
                Ok(())
            }
            Some(e) if !ok => {
                warn!("VSCard: QEMU answered {e:?} with error code {code}");
                self.shared.update(|s| {
                    s.host_errors += 1;
                    s.last_error = Some(format!("QEMU answered {e:?} with error code {code}"));
                });
                Ok(())
            }
            Some(_) => Ok(()),
            None => {
                warn!("VSCard: unsolicited Error (code {code}) from QEMU");
                self.shared.update(|s| {
                    s.host_errors += 1;
                    s.last_error = Some(format!("unsolicited Error (code {code}) from QEMU"));
                });
                Ok(())
            }
        }
    }

    fn on_apdu(&mut self, reader_id: u32, cmd: Sensitive) -> Flow {
        debug!("VSCard: command APDU, {} bytes", cmd.len());
        self.shared.update(|s| s.apdus_received += 1);
        let visible = self.card.as_ref().is_some_and(|c| c.visible);
        if !visible {
            // Crossed our CardRemove: QEMU has already failed the guest's command.
            debug!("VSCard: APDU with no card: not answered");
            self.shared.update(|s| s.apdus_unanswered += 1);
            return Ok(());
        }
        if let Some(n) = self.countdown {
            if n <= 1 {
                self.countdown = None;
                info!("VSCard: pulling the card mid-exchange (remove_on_apdu)");
                self.shared.update(|s| s.apdus_unanswered += 1);
                return self.remove();
            }
            self.countdown = Some(n - 1);
        }
        let Some(slot) = self.card.as_mut() else {
            return Ok(());
        };
        let resp = catch_unwind(AssertUnwindSafe(|| slot.card.transmit(cmd.expose())))
            .map_err(|_| CloseReason::Failed("the virtual card panicked in transmit".into()))?;
        match resp.map(Sensitive::new) {
            Some(r) if r.len() <= self.config.max_payload as usize => {
                debug!("VSCard: response APDU, {} bytes", r.len());
                self.send(Message::new(reader_id, Body::Apdu(r.expose().to_vec())))?;
                self.shared.update(|s| s.apdus_answered += 1);
            }
            Some(r) => {
                warn!(
                    "VSCard: response of {} bytes exceeds the cap; sending Error",
                    r.len()
                );
                self.send(Message::new(
                    reader_id,
                    Body::Error {
                        code: error_code::GENERAL_ERROR,
                    },
                ))?;
                let text = format!("response APDU of {} bytes too long", r.len());
                self.shared.update(|s| {
                    s.apdus_failed += 1;
                    s.last_error = Some(text);
                });
            }
            None => match self.config.silent {
                SilentPolicy::SendError => {
                    debug!("VSCard: silent card; sending Error");
                    self.send(Message::new(
                        reader_id,
                        Body::Error {
                            code: error_code::GENERAL_ERROR,
                        },
                    ))?;
                    self.shared.update(|s| s.apdus_failed += 1);
                }
                SilentPolicy::NoAnswer => {
                    debug!("VSCard: silent card; not answering");
                    self.shared.update(|s| s.apdus_unanswered += 1);
                }
            },
        }
        Ok(())
    }
}

fn io_close(e: &io::Error) -> CloseReason {
    match e.kind() {
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::UnexpectedEof => CloseReason::Eof,
        _ => CloseReason::Failed(format!("socket I/O error: {e}")),
    }
}
