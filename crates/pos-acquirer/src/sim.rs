//! [`FakeHost`]: a fake acquirer host on 127.0.0.1, for tests, `posctl host sim` and the
//! default configuration (feature `sim`).
//!
//! It speaks the same codec and framing as [`TcpAcquirer`](crate::TcpAcquirer) (the
//! [`Dialect::default_pos`] dialect), keeps a [`Ledger`] of what it approved, answers by
//! [`HostRules`], and takes one-shot [`HostFault`]s to reproduce what goes wrong with real
//! hosts: an approval whose answer never arrives, a dropped connection, a wrong STAN, a host
//! that is down, reversals that are refused.
//!
//! Threads only: one accepting thread and one thread per connection. Dropping the host stops
//! them.
//!
//! ```
//! use pos_acquirer::sim::{FakeHost, HostRules};
//! let host = FakeHost::start("127.0.0.1:0", HostRules::default())?;
//! assert!(host.addr().port() != 0);
//! assert_eq!(host.ledger().net_charged(), 0);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use serde::{Deserialize, Serialize};

use crate::acquirer::{Operation, is_approval_code};
use crate::client::ECHO_CODE;
use crate::settlement::{
    CurrencyTotals, HostOnly, HostState, HostView, OUT_OF_BALANCE, SETTLE_AFTER_UPLOAD_CODE,
};
use crate::{Deframer, Dialect, MAX_FRAME, Message, Mti, decode, encode, frame};

/// How long a [`HostFault::Timeout`] keeps a connection open without answering, at most.
const HOLD_LIMIT: Duration = Duration::from_secs(60);

/// How often the threads look at the stop flag.
const POLL: Duration = Duration::from_millis(20);

/// [`POLL`] as poll(2) takes it.
const POLL_TIMEOUT: Timespec = Timespec {
    tv_sec: POLL.as_secs() as _,
    tv_nsec: POLL.subsec_nanos() as _,
};

/// How the host answers financial requests, absent faults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRules {
    /// `(amount % 100, response code)`: the cents of the amount pick a refusal (e.g. 12.51
    /// with `(51, "51")` is declined "insufficient funds"). Applies to sales, pre-auths and
    /// refunds.
    pub decline_by_cents: Vec<(u8, String)>,
    /// Amounts above this are declined `61` (exceeds amount limit).
    pub max_amount: Option<u64>,
    /// Wait this long before every answer.
    pub delay: Duration,
    /// The response code of a reversal refused by [`HostFault::RejectReversals`].
    pub reversal_reject_code: String,
}

impl Default for HostRules {
    /// `.51` → `51`, `.05` → `05`, `.91` → `91`; no maximum, no delay; rejected reversals
    /// answered `96`.
    fn default() -> Self {
        HostRules {
            decline_by_cents: vec![(51, "51".into()), (5, "05".into()), (91, "91".into())],
            max_amount: None,
            delay: Duration::ZERO,
            reversal_reject_code: "96".into(),
        }
    }
}

/// A one-shot fault, armed with [`FakeHost::arm`]. Faults wait in a FIFO queue; each message
/// takes the first armed fault that applies to it (echo tests take none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostFault {
    /// Process the next financial request or reversal (a request is approved and recorded) but
    /// never answer; the connection stays open until the client closes it (or 60 s).
    Timeout,
    /// Process the next financial request or reversal (approve, record), then close the
    /// connection without answering.
    DropAfterApprove,
    /// Read the next financial request or reversal and close the connection without
    /// processing it: nothing is recorded.
    CloseOnRequest,
    /// Decline the next financial request with this response code (recorded as declined).
    Decline(String),
    /// Process the next financial request or reversal, then answer with a wrong STAN.
    BadResponse,
    /// Wait this long before answering the next financial request or reversal.
    Delay(Duration),
    /// Answer the next N reversals with [`HostRules::reversal_reject_code`], changing
    /// nothing.
    RejectReversals(u32),
}

impl HostFault {
    fn applies_to(&self, kind: Kind) -> bool {
        match self {
            HostFault::Decline(_) => kind == Kind::Financial,
            HostFault::RejectReversals(_) => kind == Kind::Reversal,
            _ => kind != Kind::Network,
        }
    }
}

/// What became of a ledger entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// Approved and standing.
    Approved,
    /// Declined: nothing happened.
    Declined,
    /// Approved, then reversed (0400/0401).
    Reversed,
    /// Approved, then voided.
    Voided,
    /// An approved pre-authorization that was completed.
    Completed,
}

/// One financial request the host processed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Terminal id (field 41).
    pub terminal_id: String,
    /// STAN (field 11).
    pub stan: u32,
    /// Transmission date and time (field 7).
    pub transmission_time: String,
    /// What was asked.
    #[serde(with = "operation_name")]
    pub operation: Operation,
    /// Amount, minor units.
    pub amount: u64,
    /// The response code the host gave.
    pub response_code: String,
    /// The approval code, empty when declined.
    pub auth_code: String,
    /// The retrieval reference number the host gave.
    pub rrn: String,
    /// Current state.
    pub state: EntryState,
    /// For a completion or void: the original's STAN and transmission time (field 90).
    pub original: Option<(u32, String)>,
    /// The terminal's batch (field 60), when the request carried one.
    #[serde(default)]
    pub batch: Option<u32>,
    /// ISO 4217 numeric currency (field 49), when the request carried one.
    #[serde(default)]
    pub currency: Option<u16>,
}

mod operation_name {
    use crate::Operation;
    use serde::{Deserialize, Deserializer, Serializer};

    const ALL: [Operation; 5] = [
        Operation::Sale,
        Operation::PreAuth,
        Operation::Completion,
        Operation::Void,
        Operation::Refund,
    ];

    pub fn serialize<S: Serializer>(op: &Operation, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(op.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Operation, D::Error> {
        let name = String::deserialize(d)?;
        ALL.into_iter()
            .find(|o| o.name() == name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown operation {name:?}")))
    }
}

/// What the host approved and what became of it; serializable (JSON) so it can persist.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Entries in arrival order.
    pub entries: Vec<LedgerEntry>,
    /// Counter behind the generated approval codes and RRNs.
    pub sequence: u64,
    /// Reversals that arrived before their original (terminal id, STAN, transmission time):
    /// answered `25`, and kept, so that an original arriving late (a terminal killed after
    /// sending, whose recovery's reversal overtook the request) is reversed on arrival, as
    /// acquirer hosts do.
    #[serde(default)]
    pub early_reversals: Vec<(String, u32, String)>,
    /// Settlements answered: what each terminal's batch came to at the host.
    #[serde(default)]
    pub settlements: Vec<HostSettlement>,
}

/// A terminal's batch as the host settled it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSettlement {
    /// Terminal id (field 41).
    pub terminal_id: String,
    /// Batch number (field 60).
    pub batch: u32,
    /// Whether the first 0500 balanced.
    pub balanced: bool,
    /// The host's totals when it answered the first 0500.
    pub host_totals: Vec<CurrencyTotals>,
    /// The terminal's totals from that 0500.
    pub terminal_totals: Vec<CurrencyTotals>,
    /// Original STANs uploaded in 0320 advices.
    pub uploaded: Vec<u32>,
    /// Whether the closing 0500 after the upload came.
    pub closed_after_upload: bool,
}

/// A disagreement the fake host can be told to have at settlement, so tests and demos show
/// each kind of difference ([`FakeHost::disagree`]). Each changes the ledger at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disagreement {
    /// Forget the latest reversal the host acknowledged: its original stands (charged)
    /// again at the host.
    DropReversal,
    /// Record an approved sale of this amount the terminal never sent, in the latest
    /// batch the host saw from the terminal.
    InventApproval(u64),
    /// Lose the latest approved completion: the host has no record of it.
    LoseCompletion,
}

impl Disagreement {
    /// Stable kebab-case name (`drop-reversal`, `invent-approval`, `lose-completion`).
    pub fn name(self) -> &'static str {
        match self {
            Disagreement::DropReversal => "drop-reversal",
            Disagreement::InventApproval(_) => "invent-approval",
            Disagreement::LoseCompletion => "lose-completion",
        }
    }
}

impl std::str::FromStr for Disagreement {
    type Err = String;
    /// `drop-reversal`, `invent-approval` (42.00), `invent-approval=AMOUNT_IN_MINOR_UNITS`,
    /// `lose-completion`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, value) = s.split_once('=').unwrap_or((s, ""));
        match (name, value) {
            ("drop-reversal", "") => Ok(Disagreement::DropReversal),
            ("lose-completion", "") => Ok(Disagreement::LoseCompletion),
            ("invent-approval", "") => Ok(Disagreement::InventApproval(4200)),
            ("invent-approval", v) => v.parse().map(Disagreement::InventApproval).map_err(|_| {
                format!("invent-approval={v}: the amount is in minor units, e.g. 4200")
            }),
            _ => Err(format!(
                "unknown disagreement {s:?}: drop-reversal, invent-approval[=MINOR_UNITS], lose-completion"
            )),
        }
    }
}

impl Ledger {
    /// Money moved: approved sales and completions still standing (not reversed or voided),
    /// minus approved refunds not reversed. Minor units.
    pub fn net_charged(&self) -> i64 {
        self.entries
            .iter()
            .filter(|e| e.state == EntryState::Approved)
            .map(|e| {
                let a = i64::try_from(e.amount).unwrap_or(i64::MAX);
                match e.operation {
                    Operation::Sale | Operation::Completion => a,
                    Operation::Refund => -a,
                    Operation::PreAuth | Operation::Void => 0,
                }
            })
            .sum()
    }

    /// Money held: approved pre-authorizations neither completed nor reversed. Minor units.
    pub fn holds(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.operation == Operation::PreAuth && e.state == EntryState::Approved)
            .map(|e| e.amount)
            .sum()
    }

    /// Entries that were approved and not reversed (including voided and completed ones).
    pub fn approved_not_reversed(&self) -> Vec<LedgerEntry> {
        self.entries
            .iter()
            .filter(|e| {
                is_approval_code(&e.response_code)
                    && !matches!(e.state, EntryState::Reversed | EntryState::Declined)
            })
            .cloned()
            .collect()
    }

    /// The latest entry of this terminal with this STAN.
    pub fn find(&self, terminal_id: &str, stan: u32) -> Option<LedgerEntry> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.terminal_id == terminal_id && e.stan == stan)
            .cloned()
    }

    fn position(&self, terminal_id: &str, stan: u32, time: &str) -> Option<usize> {
        self.entries.iter().rposition(|e| {
            e.terminal_id == terminal_id && e.stan == stan && e.transmission_time == time
        })
    }

    /// The host's totals of a terminal's batch, per currency (the currencies in the order
    /// first seen): standing sales and completions are debits, standing refunds credits,
    /// reversed ones the reversal totals, standing voids the voids.
    pub fn batch_totals(&self, terminal_id: &str, batch: u32) -> Vec<CurrencyTotals> {
        let mut out: Vec<CurrencyTotals> = Vec::new();
        for e in self.batch_entries(terminal_id, batch) {
            let currency = e.currency.unwrap_or(0);
            let i = match out.iter().position(|t| t.currency == currency) {
                Some(i) => i,
                None => {
                    out.push(CurrencyTotals::new(currency));
                    out.len() - 1
                }
            };
            let Some(t) = out.get_mut(i) else { continue };
            match (e.operation, e.state) {
                (Operation::Sale | Operation::Completion, EntryState::Approved) => {
                    t.debits.add(e.amount)
                }
                (Operation::Refund, EntryState::Approved) => t.credits.add(e.amount),
                (Operation::Sale | Operation::Completion, EntryState::Reversed) => {
                    t.debit_reversals.add(e.amount)
                }
                (Operation::Refund, EntryState::Reversed) => t.credit_reversals.add(e.amount),
                (Operation::Void, EntryState::Approved) => t.voids.add(e.amount),
                _ => {}
            }
        }
        out
    }

    /// A terminal's entries in a batch that were approved (whatever became of them since).
    fn batch_entries<'a>(
        &'a self,
        terminal_id: &'a str,
        batch: u32,
    ) -> impl Iterator<Item = &'a LedgerEntry> + 'a {
        self.entries.iter().filter(move |e| {
            e.terminal_id == terminal_id
                && e.batch == Some(batch)
                && e.operation != Operation::PreAuth
                && is_approval_code(&e.response_code)
        })
    }

    fn settlement_mut(&mut self, terminal_id: &str, batch: u32) -> &mut HostSettlement {
        let i = match self
            .settlements
            .iter()
            .position(|s| s.terminal_id == terminal_id && s.batch == batch)
        {
            Some(i) => i,
            None => {
                self.settlements.push(HostSettlement {
                    terminal_id: terminal_id.to_string(),
                    batch,
                    ..HostSettlement::default()
                });
                self.settlements.len() - 1
            }
        };
        &mut self.settlements[i]
    }

    fn next(&mut self) -> (String, String) {
        self.sequence += 1;
        let n = self.sequence;
        (
            format!("A{:05}", n % 100_000),
            format!("{:012}", n % 1_000_000_000_000),
        )
    }
}

/// One message the host saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostLogEntry {
    /// The request's MTI, 4 digits.
    pub mti: String,
    /// Its STAN, if it had one.
    pub stan: Option<u32>,
    /// The response code answered (or that would have been, for a fault that swallows the
    /// answer); `None` when not processed.
    pub response_code: Option<String>,
    /// The fault applied, if any (its `Debug`).
    pub fault: Option<String>,
    /// Whether an answer was sent.
    pub answered: bool,
    /// Masked summary of the request (PAN first 6 / last 4, no track, PIN or ICC bytes).
    pub summary: String,
}

type Observer = Arc<dyn Fn(&HostLogEntry) + Send + Sync>;

struct State {
    rules: HostRules,
    faults: VecDeque<HostFault>,
    ledger: Ledger,
    ledger_path: Option<PathBuf>,
    log: Vec<HostLogEntry>,
    observer: Option<Observer>,
}

struct Shared {
    state: Mutex<State>,
    listener: Mutex<Option<TcpListener>>,
    stop: AtomicBool,
    dialect: Dialect,
    connections: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn listener(&self) -> MutexGuard<'_, Option<TcpListener>> {
        self.listener.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sleep `d` in slices, returning early when stopping.
    fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.stopped() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            thread::sleep(left.min(POLL));
        }
    }
}

/// A fake acquirer host listening on a local TCP port. See the [module](self) docs.
pub struct FakeHost {
    shared: Arc<Shared>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHost")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FakeHost {
    /// Start a host on `bind` (e.g. `127.0.0.1:0` for any free port) with an empty,
    /// in-memory ledger.
    ///
    /// # Errors
    /// The bind error.
    pub fn start(bind: &str, rules: HostRules) -> io::Result<FakeHost> {
        Self::launch(bind, rules, Ledger::default(), None)
    }

    /// Start a host whose ledger lives in the JSON file `path`: loaded now (an absent file is
    /// an empty ledger) and rewritten atomically (temporary file, fsync, rename) after every
    /// change, so it survives the process.
    ///
    /// # Errors
    /// The bind error, or a ledger file that cannot be read or parsed.
    pub fn start_with_ledger(bind: &str, rules: HostRules, path: &Path) -> io::Result<FakeHost> {
        let ledger = match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("ledger {}: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ledger::default(),
            Err(e) => return Err(e),
        };
        Self::launch(bind, rules, ledger, Some(path.to_path_buf()))
    }

    fn launch(
        bind: &str,
        rules: HostRules,
        ledger: Ledger,
        ledger_path: Option<PathBuf>,
    ) -> io::Result<FakeHost> {
        let listener = TcpListener::bind(bind)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                rules,
                faults: VecDeque::new(),
                ledger,
                ledger_path,
                log: Vec::new(),
                observer: None,
            }),
            listener: Mutex::new(Some(listener)),
            stop: AtomicBool::new(false),
            dialect: Dialect::default_pos(),
            connections: Mutex::new(Vec::new()),
        });
        let s = Arc::clone(&shared);
        let acceptor = thread::Builder::new()
            .name("fake-host-accept".into())
            .spawn(move || accept_loop(&s))?;
        Ok(FakeHost {
            shared,
            addr,
            acceptor: Some(acceptor),
        })
    }

    /// The bound address (the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Arm a one-shot fault (appended to the FIFO queue).
    pub fn arm(&self, fault: HostFault) {
        self.shared.state().faults.push_back(fault);
    }

    /// Drop every armed fault.
    pub fn clear_faults(&self) {
        self.shared.state().faults.clear();
    }

    /// Replace the rules.
    pub fn set_rules(&self, rules: HostRules) {
        self.shared.state().rules = rules;
    }

    /// Take the host down (`true`): the listening socket is closed, so connections are
    /// refused by the OS. Up again (`false`): listen again on the same address and port.
    ///
    /// # Errors
    /// Binding the port again failed (another process took it).
    pub fn set_down(&self, down: bool) -> io::Result<()> {
        let mut l = self.shared.listener();
        if down {
            *l = None;
        } else if l.is_none() {
            let listener = TcpListener::bind(self.addr)?;
            listener.set_nonblocking(true)?;
            *l = Some(listener);
        }
        Ok(())
    }

    /// A copy of the ledger.
    pub fn ledger(&self) -> Ledger {
        self.shared.state().ledger.clone()
    }

    /// Disagree at the next settlement (see [`Disagreement`]): the ledger is changed now
    /// (and saved). Returns the entry changed, or the sale invented.
    ///
    /// # Errors
    /// A plain sentence when there is nothing to disagree about (no acknowledged reversal,
    /// no completion, no batch seen yet).
    pub fn disagree(&self, what: Disagreement) -> Result<LedgerEntry, String> {
        let mut st = self.shared.state();
        let ledger = &mut st.ledger;
        let changed = match what {
            Disagreement::DropReversal => {
                let i = ledger
                    .entries
                    .iter()
                    .rposition(|e| {
                        e.state == EntryState::Reversed && is_approval_code(&e.response_code)
                    })
                    .ok_or("no reversal acknowledged by the host to drop")?;
                let e = &mut ledger.entries[i];
                e.state = EntryState::Approved;
                e.clone()
            }
            Disagreement::LoseCompletion => {
                let i = ledger
                    .entries
                    .iter()
                    .rposition(|e| {
                        e.operation == Operation::Completion && e.state == EntryState::Approved
                    })
                    .ok_or("no approved completion to lose")?;
                ledger.entries.remove(i)
            }
            Disagreement::InventApproval(amount) => {
                let last = ledger
                    .entries
                    .iter()
                    .rev()
                    .find(|e| e.batch.is_some())
                    .cloned()
                    .ok_or("no batch seen from any terminal yet")?;
                let (auth, rrn) = ledger.next();
                let stan = 900_000 + u32::try_from(ledger.sequence % 99_999).unwrap_or(0);
                let e = LedgerEntry {
                    terminal_id: last.terminal_id,
                    stan,
                    transmission_time: last.transmission_time,
                    operation: Operation::Sale,
                    amount,
                    response_code: "00".into(),
                    auth_code: auth,
                    rrn,
                    state: EntryState::Approved,
                    original: None,
                    batch: last.batch,
                    currency: last.currency,
                };
                ledger.entries.push(e.clone());
                e
            }
        };
        save(&st);
        Ok(changed)
    }

    /// Every message seen so far.
    pub fn log(&self) -> Vec<HostLogEntry> {
        self.shared.state().log.clone()
    }

    /// Call `observer` for every message seen (from the connection threads), e.g. to print
    /// lines in a CLI.
    pub fn set_observer(&self, observer: Box<dyn Fn(&HostLogEntry) + Send + Sync>) {
        self.shared.state().observer = Some(Arc::from(observer));
    }
}

impl Drop for FakeHost {
    /// Stops the accepting and connection threads (each within a few tens of milliseconds)
    /// and closes the listening socket.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        *self.shared.listener() = None;
        let conns = std::mem::take(
            &mut *self
                .shared
                .connections
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for c in conns {
            let _ = c.join();
        }
    }
}

fn accept_loop(shared: &Arc<Shared>) {
    while !shared.stopped() {
        let accepted = {
            let l = shared.listener();
            match l.as_ref() {
                Some(l) => match l.accept() {
                    Ok(c) => Some(c),
                    Err(_) => {
                        // Wait for the next connection without spinning: poll(2) wakes at
                        // once when one arrives, and at least every POLL to see `stop`.
                        let mut fds = [PollFd::new(l, PollFlags::IN)];
                        let _ = rustix::event::poll(&mut fds, Some(&POLL_TIMEOUT));
                        continue;
                    }
                },
                None => None,
            }
        };
        match accepted {
            Some((stream, _)) => {
                let s = Arc::clone(shared);
                let spawned = thread::Builder::new()
                    .name("fake-host-conn".into())
                    .spawn(move || serve(&s, stream));
                if let Ok(h) = spawned {
                    let mut conns = shared.connections.lock().unwrap_or_else(|p| p.into_inner());
                    conns.retain(|h| !h.is_finished());
                    conns.push(h);
                }
            }
            None => thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// What to do with a message once processed.
enum Action {
    Reply(Message, Duration),
    Close,
    Hold,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Financial,
    Reversal,
    Network,
    Advice,
    Reconciliation,
}

fn kind(mti: Mti) -> Option<Kind> {
    match (mti.class(), mti.function()) {
        (1 | 2, 0) => Some(Kind::Financial),
        (4, 0) => Some(Kind::Reversal),
        (3, 2) => Some(Kind::Advice),
        (5, 0) => Some(Kind::Reconciliation),
        (8, 0) => Some(Kind::Network),
        _ => None,
    }
}

fn serve(shared: &Arc<Shared>, mut stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(POLL));
    let _ = stream.set_nodelay(true);
    let mut deframer = Deframer::new(MAX_FRAME);
    let mut buf = [0u8; 4096];
    while !shared.stopped() {
        let raw = match deframer.next_frame() {
            Ok(Some(raw)) => raw,
            Ok(None) => {
                match stream.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => deframer.push(buf.get(..n).unwrap_or_default()),
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::TimedOut
                                | io::ErrorKind::Interrupted
                        ) => {}
                    Err(_) => return,
                }
                continue;
            }
            Err(_) => return,
        };
        let Ok(msg) = decode(&raw, &shared.dialect) else {
            return;
        };
        match handle(shared, &msg) {
            Action::Reply(answer, delay) => {
                if !delay.is_zero() {
                    shared.sleep(delay);
                }
                let Ok(bytes) = encode(&answer, &shared.dialect).and_then(|b| frame(&b)) else {
                    return;
                };
                if stream.write_all(&bytes).is_err() {
                    return;
                }
            }
            Action::Close => {
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
            Action::Hold => {
                hold(shared, &mut stream);
                return;
            }
        }
    }
}

/// Keep the connection open, reading and discarding, until the peer closes it, 60 s pass or
/// the host stops.
fn hold(shared: &Shared, stream: &mut TcpStream) {
    let end = Instant::now() + HOLD_LIMIT;
    let mut buf = [0u8; 512];
    while !shared.stopped() && Instant::now() < end {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return,
        }
    }
}

/// The answer skeleton: response MTI, the request's 3, 4, 7, 11, 12, 13, 41, 42, 49.
fn answer_to(msg: &Message) -> Message {
    let mti = msg.mti.response().unwrap_or(msg.mti);
    let mut a = Message::new(mti);
    for f in [3u8, 4, 7, 11, 12, 13, 41, 42, 49, 70] {
        if let Some(v) = msg.get(f) {
            a.set(f, v);
        }
    }
    a
}

/// Field 90's original STAN and transmission time.
fn original_of(msg: &Message) -> Option<(u32, String)> {
    let f = msg.original_data()?;
    let stan = f.get(4..10)?.parse().ok()?;
    let time = f.get(10..20)?.to_string();
    Some((stan, time))
}

fn operation_of(msg: &Message) -> Option<Operation> {
    match (msg.mti.class(), msg.processing_code()?) {
        (1, "000000") => Some(Operation::PreAuth),
        (2, "000000") if msg.has(90) => Some(Operation::Completion),
        (2, "000000") => Some(Operation::Sale),
        (2, "020000") => Some(Operation::Void),
        (2, "200000") => Some(Operation::Refund),
        _ => None,
    }
}

fn handle(shared: &Shared, msg: &Message) -> Action {
    let mut st = shared.state();
    let k = kind(msg.mti);
    let fault = match k {
        Some(k) => {
            let pos = st.faults.iter().position(|f| f.applies_to(k));
            match pos {
                Some(i) => match st.faults.get_mut(i) {
                    Some(HostFault::RejectReversals(n)) if *n > 1 => {
                        *n -= 1;
                        Some(HostFault::RejectReversals(1))
                    }
                    _ => st.faults.remove(i),
                },
                None => None,
            }
        }
        None => None,
    };
    let mut entry = HostLogEntry {
        mti: msg.mti.to_string(),
        stan: msg.stan(),
        response_code: None,
        fault: fault.as_ref().map(|f| format!("{f:?}")),
        answered: false,
        summary: format!("{msg:?}"),
    };
    let mut delay = st.rules.delay;
    let action = match (k, fault) {
        (None, _) => Action::Close,
        (Some(_), Some(HostFault::CloseOnRequest)) => Action::Close,
        (Some(Kind::Network), _) => {
            let mut a = answer_to(msg);
            let code = if msg.network_code() == Some(ECHO_CODE) {
                "00"
            } else {
                "12"
            };
            a.set_response_code(code);
            Action::Reply(a, delay)
        }
        (Some(kind), fault) => {
            let mut a = match kind {
                Kind::Reversal => reversal(&mut st, msg, fault.as_ref()),
                Kind::Advice => advice(&mut st, msg),
                Kind::Reconciliation => reconciliation(&mut st, msg),
                _ => financial(&mut st, msg, fault.as_ref()),
            };
            save(&st);
            match fault {
                Some(HostFault::Timeout) => {
                    entry.response_code = a.response_code().map(str::to_string);
                    Action::Hold
                }
                Some(HostFault::DropAfterApprove) => {
                    entry.response_code = a.response_code().map(str::to_string);
                    Action::Close
                }
                Some(HostFault::BadResponse) => {
                    let stan = msg.stan().unwrap_or(0);
                    a.set_stan(if stan >= 999_999 { 1 } else { stan + 1 });
                    Action::Reply(a, delay)
                }
                Some(HostFault::Delay(d)) => {
                    delay += d;
                    Action::Reply(a, delay)
                }
                _ => Action::Reply(a, delay),
            }
        }
    };
    if let Action::Reply(a, _) = &action {
        entry.response_code = a.response_code().map(str::to_string);
        entry.answered = true;
    }
    st.log.push(entry.clone());
    let observer = st.observer.clone();
    drop(st);
    if let Some(o) = observer {
        o(&entry);
    }
    action
}

/// Process a 0100/0200: decide, record, build the answer.
fn financial(st: &mut State, msg: &Message, fault: Option<&HostFault>) -> Message {
    let mut a = answer_to(msg);
    let tid = msg.terminal_id().unwrap_or_default().to_string();
    let stan = msg.stan().unwrap_or(0);
    let time = msg.transmission_time().unwrap_or_default().to_string();
    // A repeated request (same terminal, STAN and time): answer as before, change nothing.
    if let Some(i) = st.ledger.position(&tid, stan, &time) {
        if let Some(e) = st.ledger.entries.get(i) {
            a.set_response_code(&e.response_code).set_rrn(&e.rrn);
            if !e.auth_code.is_empty() {
                a.set_auth_code(&e.auth_code);
            }
        }
        return a;
    }
    let amount = msg.amount().unwrap_or(0);
    let operation = operation_of(msg);
    let original = original_of(msg);
    let mut original_index = None;
    let code: String = match (operation, fault) {
        (None, _) => "12".into(),
        (Some(_), Some(HostFault::Decline(c))) => c.clone(),
        (Some(op @ (Operation::Void | Operation::Completion)), _) => {
            let wanted = if op == Operation::Void {
                [Operation::Sale, Operation::Completion]
            } else {
                [Operation::PreAuth, Operation::PreAuth]
            };
            let found = original
                .as_ref()
                .and_then(|(s, t)| st.ledger.position(&tid, *s, t));
            match found.and_then(|i| st.ledger.entries.get(i).map(|e| (i, e))) {
                Some((i, e))
                    if wanted.contains(&e.operation) && e.state == EntryState::Approved =>
                {
                    original_index = Some(i);
                    "00".into()
                }
                Some(_) => "12".into(),
                None => "25".into(),
            }
        }
        (Some(_), _) => {
            let rule = st
                .rules
                .decline_by_cents
                .iter()
                .find(|(c, _)| u64::from(*c) == amount % 100)
                .map(|(_, code)| code.clone());
            if st.rules.max_amount.is_some_and(|m| amount > m) {
                "61".into()
            } else {
                rule.unwrap_or_else(|| "00".into())
            }
        }
    };
    let approved = is_approval_code(&code);
    let (auth, rrn) = st.ledger.next();
    let auth = if approved { auth } else { String::new() };
    if let Some(i) = original_index {
        if let Some(orig) = st.ledger.entries.get_mut(i) {
            orig.state = if operation == Some(Operation::Void) {
                EntryState::Voided
            } else {
                EntryState::Completed
            };
        }
    }
    // A reversal overtook this request: it is undone on arrival.
    let early = st
        .ledger
        .early_reversals
        .iter()
        .position(|(t, s, tt)| *t == tid && *s == stan && *tt == time);
    let reversed_early = match early {
        Some(i) => {
            st.ledger.early_reversals.remove(i);
            true
        }
        None => false,
    };
    if let Some(op) = operation {
        st.ledger.entries.push(LedgerEntry {
            terminal_id: tid,
            stan,
            transmission_time: time,
            operation: op,
            amount,
            response_code: code.clone(),
            auth_code: auth.clone(),
            rrn: rrn.clone(),
            state: match (approved, reversed_early) {
                (true, true) => EntryState::Reversed,
                (true, false) => EntryState::Approved,
                (false, _) => EntryState::Declined,
            },
            original: if matches!(op, Operation::Void | Operation::Completion) {
                original
            } else {
                None
            },
            batch: msg.get_str(60).and_then(|b| b.parse().ok()),
            currency: msg.currency().and_then(|c| c.parse().ok()),
        });
    }
    a.set_response_code(&code).set_rrn(&rrn);
    if approved {
        a.set_auth_code(&auth);
        if msg.has(55) {
            // Issuer authentication data (tag 91): 8 bytes ARPC + "00".
            let mut issuer = vec![0x91, 0x0a];
            issuer.extend(st.ledger.sequence.to_be_bytes());
            issuer.extend(b"00");
            a.set_icc_data(&issuer);
        }
    }
    a
}

/// Process a 0400/0401: reverse the original found by field 90 and terminal id.
fn reversal(st: &mut State, msg: &Message, fault: Option<&HostFault>) -> Message {
    let mut a = answer_to(msg);
    if let Some(HostFault::RejectReversals(_)) = fault {
        a.set_response_code(&st.rules.reversal_reject_code);
        return a;
    }
    let tid = msg.terminal_id().unwrap_or_default().to_string();
    let found = original_of(msg).and_then(|(s, t)| st.ledger.position(&tid, s, &t));
    let Some(i) = found else {
        if let Some((s, t)) = original_of(msg) {
            let key = (tid, s, t);
            if !st.ledger.early_reversals.contains(&key) {
                st.ledger.early_reversals.push(key);
            }
        }
        a.set_response_code("25");
        return a;
    };
    let mut restore = None;
    if let Some(e) = st.ledger.entries.get_mut(i) {
        // Reversing something approved (or already voided / completed) undoes it; a declined
        // or already reversed one is left as it is.
        if matches!(
            e.state,
            EntryState::Approved | EntryState::Voided | EntryState::Completed
        ) {
            e.state = EntryState::Reversed;
            if matches!(e.operation, Operation::Void | Operation::Completion) {
                restore = e.original.clone();
            }
        }
        a.set_rrn(&e.rrn);
    }
    // Reversing a void or completion puts its original back in force.
    if let Some((s, t)) = restore {
        if let Some(j) = st.ledger.position(&tid, s, &t) {
            if let Some(o) = st.ledger.entries.get_mut(j) {
                if matches!(o.state, EntryState::Voided | EntryState::Completed) {
                    o.state = EntryState::Approved;
                }
            }
        }
    }
    a.set_response_code("00");
    a
}

/// The field-60 batch of a settlement message.
fn batch_of(msg: &Message) -> Option<u32> {
    msg.get_str(60).and_then(|b| b.trim().parse().ok())
}

/// Process a 0500: compare the terminal's totals (field 63) with the ledger's for its batch
/// and answer `00` or `95`; the closing 0500 after an upload (`960000`) is answered `00`
/// with the host's standing transactions the upload did not name (field 63).
fn reconciliation(st: &mut State, msg: &Message) -> Message {
    let mut a = answer_to(msg);
    let tid = msg.terminal_id().unwrap_or_default().to_string();
    let (Some(batch), Some(theirs)) = (
        batch_of(msg),
        msg.get_str(63).and_then(CurrencyTotals::decode_all),
    ) else {
        a.set_response_code("30");
        return a;
    };
    if msg.processing_code() == Some(SETTLE_AFTER_UPLOAD_CODE) {
        let s = st.ledger.settlement_mut(&tid, batch).clone();
        let missing: Vec<HostOnly> = st
            .ledger
            .batch_entries(&tid, batch)
            .filter(|e| e.state == EntryState::Approved && !s.uploaded.contains(&e.stan))
            .map(|e| HostOnly {
                stan: e.stan,
                amount: e.amount,
                rrn: e.rrn.clone(),
                operation: e.operation.name().to_string(),
            })
            .collect();
        st.ledger.settlement_mut(&tid, batch).closed_after_upload = true;
        a.set_response_code("00");
        let text = HostOnly::encode_all(&missing);
        // Field 63 holds at most 999 characters: the rest is cut at a whole entry.
        let mut cut = text.as_str();
        while cut.len() > 999 {
            cut = cut.rsplit_once(';').map_or("", |(head, _)| head);
        }
        a.set_str(63, cut);
        return a;
    }
    let ours = st.ledger.batch_totals(&tid, batch);
    let nonzero = |t: &&CurrencyTotals| t.debits.count + t.credits.count > 0;
    let mut agree = ours.iter().filter(nonzero).count() == theirs.iter().filter(nonzero).count();
    for t in theirs.iter().filter(nonzero) {
        let host = ours
            .iter()
            .find(|o| o.currency == t.currency)
            .copied()
            .unwrap_or(CurrencyTotals::new(t.currency));
        agree &= host.agrees_with(t);
    }
    let s = st.ledger.settlement_mut(&tid, batch);
    s.balanced = agree;
    s.host_totals = ours;
    s.terminal_totals = theirs;
    a.set_response_code(if agree { "00" } else { OUT_OF_BALANCE });
    a
}

/// Process a 0320 advice: note the upload, answer `00` with the host's view of the
/// transaction (field 63).
fn advice(st: &mut State, msg: &Message) -> Message {
    let mut a = answer_to(msg);
    let tid = msg.terminal_id().unwrap_or_default().to_string();
    let (Some(batch), Some((stan, time))) = (batch_of(msg), original_of(msg)) else {
        a.set_response_code("30");
        return a;
    };
    let view = match st.ledger.position(&tid, stan, &time) {
        Some(i) => match st.ledger.entries.get(i) {
            Some(e) => HostView {
                state: match e.state {
                    EntryState::Approved => HostState::Standing,
                    EntryState::Voided => HostState::Voided,
                    EntryState::Reversed => HostState::Reversed,
                    EntryState::Declined => HostState::Declined,
                    // A completed pre-authorization: its completion carries the money.
                    EntryState::Completed => HostState::Voided,
                },
                amount: e.amount,
                rrn: e.rrn.clone(),
            },
            None => HostView {
                state: HostState::Unknown,
                amount: 0,
                rrn: String::new(),
            },
        },
        None => HostView {
            state: HostState::Unknown,
            amount: 0,
            rrn: String::new(),
        },
    };
    let s = st.ledger.settlement_mut(&tid, batch);
    if !s.uploaded.contains(&stan) {
        s.uploaded.push(stan);
    }
    a.set_response_code("00").set_str(63, &view.encode());
    a
}

/// Rewrite the ledger file atomically, if there is one. Errors are reported on standard
/// error (a fake host must not die for a full disk in the middle of a test run).
fn save(st: &State) {
    let Some(path) = &st.ledger_path else {
        return;
    };
    if let Err(e) = write_atomically(path, &st.ledger) {
        eprintln!("fake host: cannot save the ledger {}: {e}", path.display());
    }
}

fn write_atomically(path: &Path, ledger: &Ledger) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(ledger).map_err(io::Error::other)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
