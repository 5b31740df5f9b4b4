//! The service: runs transactions through the state machine, journaling each state before
//! its side effect, and keeps reversals and owed receipts moving.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use pos_acquirer::{
    Acquirer, CardData, EntryMode, Operation, OriginalData, Outcome, Request, Reversal,
    ReversalReason, WireEvent,
};
use pos_emv::capk::CaKeys;
use pos_emv::record::TransactionRecord;
use pos_emv::tags;
use pos_emv::terminal::{Capabilities, TerminalData};
use pos_emv::tlv::{self, Tag};
use pos_emv::transaction::{
    self, OnlineDecision, TransactionConfig, TransactionDecision, TransactionError,
};
use pos_hal::{CardChannel, DeviceError, Fault, FaultKind, Sensitive, SlotState};

use crate::config::{Config, ReceiptMode};
use crate::devices::{Devices, Reader};
use crate::inject::{Step, StepHook};
use crate::journal::{Changes, Journal, JournalError, State, Txn};
use crate::receipt;
use crate::time::{self, Clock};
use crate::vault::{CardSecrets, Vault, VaultError};

mod outage;
pub use outage::{MemoryReversal, Outage};

/// What the service asks of the cardholder (a real lane shows it; a simulated lane acts it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prompt {
    /// Insert the chip card.
    InsertCard,
    /// Insert or swipe.
    InsertOrSwipe,
    /// A chip card was swiped: insert it into the chip reader.
    InsertChip,
    /// The chip could not be read: swipe the card (fallback).
    SwipeFallback,
    /// Take the card out.
    RemoveCard,
}

impl Prompt {
    /// What to show.
    pub fn text(self) -> &'static str {
        match self {
            Prompt::InsertCard => "insert card",
            Prompt::InsertOrSwipe => "insert or swipe card",
            Prompt::InsertChip => "chip card: please insert it into the chip reader",
            Prompt::SwipeFallback => "chip could not be read: please swipe the card",
            Prompt::RemoveCard => "remove card",
        }
    }
}

/// How the card is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CardEntry {
    /// Inserted into the chip reader.
    #[default]
    Chip,
    /// Swiped (a chip card is then asked for its chip).
    Swipe,
}

/// A transaction to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRequest {
    /// Sale, pre-authorization, completion, void or refund.
    pub operation: Operation,
    /// Amount in minor units (for a void: ignored, the original's amount is used).
    pub amount: u64,
    /// How the card comes (sale, pre-auth, refund).
    pub entry: CardEntry,
    /// The earlier transaction (completion of a pre-auth, void of a sale).
    pub original: Option<i64>,
    /// The cashier chose "no receipt": the printer is not required and nothing is printed.
    pub no_receipt: bool,
}

impl TxnRequest {
    /// A chip sale.
    pub fn sale(amount: u64) -> TxnRequest {
        TxnRequest {
            operation: Operation::Sale,
            amount,
            entry: CardEntry::Chip,
            original: None,
            no_receipt: false,
        }
    }
}

/// How a transaction ended, for people and machines.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TxnResult {
    /// Journal id.
    pub id: i64,
    /// Final state.
    pub state: State,
    /// Operation.
    pub operation: &'static str,
    /// Amount, minor units.
    pub amount: u64,
    /// ISO 4217 numeric currency.
    pub currency: u16,
    /// Masked PAN.
    pub pan_masked: Option<String>,
    /// Why it ended so (plain words).
    pub reason: Option<String>,
    /// Host approval code.
    pub auth_code: Option<String>,
    /// Host reference.
    pub rrn: Option<String>,
    /// Host response code.
    pub response_code: Option<String>,
    /// Entry mode.
    pub entry_mode: Option<String>,
    /// The receipt text, when one was printed.
    pub receipt: Option<String>,
}

/// Errors that stop the service from recording (never a sale outcome: those are states).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TerminalError {
    /// The journal failed: nothing can proceed without recording.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The key file failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The CA public key file (`ca_keys`) cannot be loaded.
    #[error(transparent)]
    CaKeys(#[from] pos_emv::capk::CapkError),
    /// A request that cannot be run (bad amount, unknown original, wrong original state).
    #[error("{0}")]
    Invalid(String),
    /// The lane is not taking sales: its journal cannot be written ([`Outage`]). Nothing
    /// was written or sent for this request.
    #[error("the lane is not taking sales: {0}")]
    Blocked(String),
}

impl TerminalError {
    /// Whether this is the journal's storage failing (a full disk, an I/O error, the file
    /// removed or replaced), as opposed to a request or a logic error: the lane must stop.
    pub fn is_storage(&self) -> bool {
        matches!(
            self,
            TerminalError::Journal(
                JournalError::Sqlite { .. }
                    | JournalError::Io { .. }
                    | JournalError::Replaced { .. }
                    | JournalError::MarkerDamaged { .. }
            )
        )
    }
}

impl Fault for TerminalError {
    fn kind(&self) -> FaultKind {
        match self {
            TerminalError::Journal(e) => e.kind(),
            TerminalError::Vault(e) => e.kind(),
            TerminalError::CaKeys(e) => e.kind(),
            TerminalError::Invalid(_) => FaultKind::InvalidInput,
            TerminalError::Blocked(_) => FaultKind::Unrecoverable,
        }
    }
}

/// What a reversal drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DrainReport {
    /// Reversals the host took.
    pub reversed: Vec<i64>,
    /// Attempts the host rejected (counted against the budget).
    pub rejected: Vec<i64>,
    /// Attempts without an answer (not counted).
    pub unanswered: Vec<i64>,
    /// Reversals that became stuck in this drain.
    pub stuck: Vec<i64>,
    /// Pending reversals not yet due (backoff).
    pub waiting: Vec<i64>,
}

/// What start-up recovery did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecoveryReport {
    /// In-flight transactions found, with the state they were in and moved to.
    pub moved: Vec<(i64, State, State)>,
    /// The reversal drain that followed.
    pub drain: DrainReport,
    /// Owed receipts printed.
    pub reprinted: Vec<i64>,
}

/// How long one wait for a swipe lasts before the cancel flag is looked at again.
const SWIPE_SLICE: Duration = Duration::from_millis(250);

/// The progress callback: one line per step.
pub type Progress = Box<dyn FnMut(Option<i64>, &str)>;

/// The terminal service for one lane.
pub struct Terminal {
    config: Config,
    journal: Journal,
    vault: Vault,
    acquirer: Box<dyn Acquirer>,
    devices: Devices,
    ca_keys: CaKeys,
    clock: Clock,
    progress: Option<Progress>,
    cancel: CancelHandle,
    /// Set while the journal cannot be written: no sale starts.
    outage: Option<Outage>,
    /// What is known of the transaction in flight beyond the journal.
    in_flight: outage::InFlight,
}

/// Cancelling the transaction in progress from another thread, race-free: a cancel either
/// wins before the request is armed (the transaction ends Aborted, nothing sent) or is
/// refused because the request was armed first. Never both, never neither.
#[derive(Debug, Clone, Default)]
pub struct CancelHandle(Arc<AtomicU8>);

const OPEN: u8 = 0;
const CANCEL_REQUESTED: u8 = 1;
const ARMED: u8 = 2;

impl CancelHandle {
    /// Ask the transaction in progress to stop. True: it will end Aborted with
    /// [`CANCELLED`] before anything is sent. False: its request was already armed (it runs
    /// to its end; void or refund it afterwards).
    pub fn request(&self) -> bool {
        match self
            .0
            .compare_exchange(OPEN, CANCEL_REQUESTED, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => true,
            Err(now) => now == CANCEL_REQUESTED,
        }
    }

    /// Whether a cancel was requested.
    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst) == CANCEL_REQUESTED
    }

    /// The request is about to be armed: from now on a cancel is refused. False when a
    /// cancel came first (then do not arm).
    fn arm(&self) -> bool {
        self.0
            .compare_exchange(OPEN, ARMED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    fn reset(&self) {
        self.0.store(OPEN, Ordering::SeqCst);
    }
}

/// What the service says when the POS application cancelled a transaction.
pub const CANCELLED: &str = "cancelled by the POS application; nothing was charged";

impl std::fmt::Debug for Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Terminal")
            .field("journal", &self.journal)
            .field("devices", &self.devices)
            .finish_non_exhaustive()
    }
}

/// Where the host exchange ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostEnd {
    /// The host approved (HostApproved written).
    Approved {
        response_code: String,
        issuer_data: Vec<u8>,
    },
    /// The host declined (Declined written).
    Declined { response_code: String },
    /// Stopped before anything left (Aborted or Declined written).
    Stopped,
    /// No valid answer: ReversalPending written.
    MustReverse,
}

/// Card facts gathered before going online.
struct CardFacts {
    card: CardData,
    pan_masked: Option<String>,
    aid: Option<String>,
    label: Option<String>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn fault_words(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::CardRemoved | FaultKind::CardAbsent => "card removed",
        FaultKind::CardMute | FaultKind::Timeout => "card not answering",
        FaultKind::Disconnected | FaultKind::NotFound => "reader unplugged",
        FaultKind::CardUnsupported => "card not supported",
        FaultKind::PaperOut => "printer out of paper",
        FaultKind::CoverOpen => "printer cover open",
        FaultKind::CutterJam => "printer cutter jammed",
        FaultKind::PrinterOffline => "printer offline",
        _ => "device fault",
    }
}

/// A card channel over the lane's reader that fires [`Step::SecondGac`] before the second
/// GENERATE AC.
struct HookChannel<'a, 'h> {
    reader: &'a RefCell<&'a mut Reader>,
    hook: &'a RefCell<&'h mut dyn StepHook>,
    host_answered: &'a Cell<bool>,
    fired: bool,
}

impl CardChannel for HookChannel<'_, '_> {
    type Error = DeviceError;
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, DeviceError> {
        if self.host_answered.get() && !self.fired && command.get(1) == Some(&0xAE) {
            self.fired = true;
            self.hook.borrow_mut().at(Step::SecondGac);
        }
        self.reader.borrow_mut().transmit(0, command)
    }
}

impl Terminal {
    /// The service over a journal and key file from `config`, the lane's `devices` and a
    /// host link, with the CA public keys of `config.ca_keys` (the public test keys when it
    /// names none). Runs nothing yet: call [`Terminal::recover`] at start-up.
    ///
    /// # Errors
    /// [`TerminalError::Journal`] / [`TerminalError::Vault`] when the journal or key file
    /// cannot be opened; [`TerminalError::CaKeys`] when the CA key file cannot be loaded.
    pub fn open(
        config: Config,
        devices: Devices,
        acquirer: Box<dyn Acquirer>,
    ) -> Result<Terminal, TerminalError> {
        let ca_keys = match &config.ca_keys {
            Some(path) => Some(CaKeys::load(path)?),
            None => None,
        };
        let journal = Journal::open(&config.journal_path())?;
        let vault = Vault::open_or_create(&config.key_path())?;
        let mut terminal = Terminal::with_parts(config, journal, vault, devices, acquirer);
        if let Some(keys) = ca_keys {
            terminal.set_ca_keys(keys);
        }
        Ok(terminal)
    }

    /// The service from its parts.
    pub fn with_parts(
        config: Config,
        journal: Journal,
        vault: Vault,
        devices: Devices,
        acquirer: Box<dyn Acquirer>,
    ) -> Terminal {
        let ca_keys = pos_emv::capk::CaKeys::parse(pos_emv::capk::TEST_CA_KEYS).unwrap_or_default();
        if config.pin_pad.configured() {
            log::warn!(
                "pin_pad {}: PIN methods are offered to cards, but there is no PIN pad driver: \
                 a PIN the card asks for is reported to it as \"PIN pad not present or not working\"",
                config.pin_pad.device
            );
        }
        Terminal {
            config,
            journal,
            vault,
            acquirer,
            devices,
            ca_keys,
            clock: Clock::system(),
            progress: None,
            cancel: CancelHandle::default(),
            outage: None,
            in_flight: outage::InFlight::default(),
        }
    }

    /// [`TerminalError::Blocked`] while the journal cannot be written.
    fn refuse_in_outage(&self) -> Result<(), TerminalError> {
        match &self.outage {
            Some(o) => Err(TerminalError::Blocked(o.describe())),
            None => Ok(()),
        }
    }

    /// A storage failure of the journal stops the lane (see [`Outage`]); other results
    /// pass through.
    fn storage_guard<T>(&mut self, r: Result<T, TerminalError>) -> Result<T, TerminalError> {
        if let Err(TerminalError::Journal(e)) = &r {
            if self.outage.is_none() && r.as_ref().err().is_some_and(TerminalError::is_storage) {
                self.enter_outage(e);
            }
        }
        r
    }

    /// The cancel handle of the transaction in progress: a [`CancelHandle::request`] (from
    /// any thread) stops it at the next point where nothing has been sent yet (waiting for
    /// the card or the swipe, or just before the request is armed), ending Aborted with
    /// [`CANCELLED`]. Once the request is armed, the request is refused. [`Terminal::run`]
    /// resets the handle when it starts and when it returns.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    fn cancelled(&self) -> bool {
        self.cancel.is_requested()
    }

    /// What this lane offers the card in Terminal Capabilities `9F33` and Additional
    /// Terminal Capabilities `9F40`, from what it really has: the chip reader (IC with
    /// contacts, SDA, DDA, CDA, no CVM required), the stripe reader when there is one
    /// (magnetic stripe), the configured PIN pad's methods (none without one:
    /// [`crate::config::PinPadConfig`]), and, when there is a printer, "print, attendant"
    /// and, if `receipt` (a receipt will be printed for this transaction), signature.
    /// Never manual key entry or card capture: the lane has neither.
    pub fn capabilities(&self, receipt: bool) -> Capabilities {
        let printer = self.devices.printer.is_some();
        Capabilities {
            magstripe: self.devices.msr.is_some(),
            pin: self.config.pin_pad.pin_methods(),
            signature: printer && receipt,
            printer,
            ..Capabilities::CHIP_ONLY
        }
    }

    /// The scheme CA public keys for offline data authentication (default: the public test
    /// keys shipped with pos-emv).
    pub fn set_ca_keys(&mut self, keys: CaKeys) {
        self.ca_keys = keys;
    }

    /// Report each step to `progress`.
    pub fn set_progress(&mut self, progress: Progress) {
        self.progress = Some(progress);
    }

    /// Use another clock (tests of backoff).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Apply the retention policy (`[retention]` in the config): erase sealed card data no
    /// reversal can need, move closed transactions older than `keep_days` to the archive
    /// directory ([`Journal::archive`]), at most about `max_moves` transactions per call
    /// ([`crate::journal::ArchiveReport::more`]: call again). The service runs it when the
    /// lane is idle, a bounded batch at a time so a sale never waits long behind it;
    /// `posctl journal archive` on demand. A lane in an outage does nothing.
    ///
    /// # Errors
    /// [`TerminalError::Blocked`] while the journal cannot be written;
    /// [`TerminalError::Journal`] when the journal or an archive file cannot be written
    /// (nothing is lost: an interrupted move is finished by the next run).
    pub fn archive(
        &mut self,
        max_moves: usize,
    ) -> Result<crate::journal::ArchiveReport, TerminalError> {
        if let Some(o) = &self.outage {
            return Err(TerminalError::Blocked(o.describe()));
        }
        let dir = self.config.archive_dir();
        let keep = self.config.retention.keep_days;
        let now = self.clock.now_ms();
        Ok(self.journal.archive(keep, &dir, now, max_moves)?)
    }

    /// The journal, for fault injection ([`Journal::set_crash_after_commits`]).
    pub fn journal_mut(&mut self) -> &mut Journal {
        &mut self.journal
    }

    /// The devices (e.g. to replace one after a replug).
    pub fn devices_mut(&mut self) -> &mut Devices {
        &mut self.devices
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn say(&mut self, id: Option<i64>, msg: &str) {
        match id {
            Some(id) => log::info!("txn {id}: {msg}"),
            None => log::info!("{msg}"),
        }
        if let Some(p) = self.progress.as_mut() {
            p(id, msg);
        }
    }

    fn result(&self, id: i64, receipt: Option<String>) -> Result<TxnResult, TerminalError> {
        let t = self.journal.get(id)?;
        Ok(TxnResult {
            id,
            state: t.state,
            operation: t.kind.name(),
            amount: t.amount,
            currency: t.currency,
            pan_masked: t.pan_masked,
            reason: t.reason,
            auth_code: t.auth_code,
            rrn: t.rrn,
            response_code: t.response_code,
            entry_mode: t.entry_mode,
            receipt,
        })
    }

    /// Start-up recovery: anything in flight when the process stopped is moved to a resting
    /// state (Created/CardRead → Aborted; Armed/Sent → ReversalPending; HostApproved →
    /// ReversalPending "approved but not completed"; Committed/Printing → ReceiptOwed), then
    /// pending reversals are drained and owed receipts printed if the printer is ready.
    ///
    /// # Errors
    /// [`TerminalError::Journal`].
    pub fn recover(&mut self) -> Result<RecoveryReport, TerminalError> {
        self.refuse_in_outage()?;
        let r = self.recover_inner();
        self.storage_guard(r)
    }

    fn recover_inner(&mut self) -> Result<RecoveryReport, TerminalError> {
        let mut report = RecoveryReport::default();
        let in_flight = self.journal.in_states(&State::IN_FLIGHT)?;
        for t in in_flight {
            let (to, changes, note) = match t.state {
                State::Created | State::CardRead => (
                    State::Aborted,
                    Changes::reason("interrupted before anything was sent: nothing to undo"),
                    "recovery: interrupted before sending",
                ),
                State::Armed | State::Sent => (
                    State::ReversalPending,
                    Changes {
                        reason: Some("interrupted before the host's answer: reversing".into()),
                        reversal_reason: Some(ReversalReason::NoValidResponse.name().into()),
                        ..Changes::default()
                    },
                    "recovery: the host's answer was never processed",
                ),
                State::HostApproved => (
                    State::ReversalPending,
                    Changes {
                        reason: Some("approved but not completed".into()),
                        reversal_reason: Some(ReversalReason::NotCompleted.name().into()),
                        ..Changes::default()
                    },
                    "recovery: approved but not completed",
                ),
                _ => (
                    State::ReceiptOwed,
                    Changes::reason("interrupted while printing: receipt owed"),
                    "recovery: receipt not confirmed",
                ),
            };
            self.journal.transition(t.id, to, note, changes)?;
            self.say(Some(t.id), &format!("recovered: {} -> {to}", t.state));
            report.moved.push((t.id, t.state, to));
        }
        report.drain = self.drain_reversals(true)?;
        report.reprinted = self.reprint_owed()?;
        Ok(report)
    }

    /// Send pending reversals: those due (or all, with `force`). A host rejection counts
    /// against `reversal.max_rejections` (then ReversalStuck, an alarm event); an attempt
    /// without an answer does not. Backoff doubles per attempt up to the cap.
    ///
    /// # Errors
    /// [`TerminalError::Journal`].
    pub fn drain_reversals(&mut self, force: bool) -> Result<DrainReport, TerminalError> {
        self.refuse_in_outage()?;
        let r = self.drain_reversals_inner(force);
        self.storage_guard(r)
    }

    fn drain_reversals_inner(&mut self, force: bool) -> Result<DrainReport, TerminalError> {
        let mut report = DrainReport::default();
        let now = self.clock.now_ms();
        for t in self.journal.in_states(&[State::ReversalPending])? {
            if !force && t.next_attempt_ms.is_some_and(|due| due > now) {
                report.waiting.push(t.id);
                continue;
            }
            self.reverse_one(&t, &mut report)?;
        }
        Ok(report)
    }

    fn reverse_one(&mut self, t: &Txn, report: &mut DrainReport) -> Result<(), TerminalError> {
        let (Some(stan), Some(tt), Some(mti)) = (t.stan, &t.transmission_time, &t.mti) else {
            self.journal.transition(
                t.id,
                State::Reversed,
                "nothing was ever sent: nothing to reverse",
                Changes::default(),
            )?;
            report.reversed.push(t.id);
            return Ok(());
        };
        let (card, unsealed) = self.reversal_card(t)?;
        if let Err(e) = unsealed {
            self.journal.event(
                Some(t.id),
                "fault",
                &format!("{e}: reversal sent without card data"),
            )?;
        }
        let attempt = self.journal.reversal_attempt(t.id)?;
        let rev_stan = self.journal.next_stan()?;
        let reversal = self.build_reversal(t, (stan, tt, mti), card, rev_stan, attempt);
        self.say(
            Some(t.id),
            &format!(
                "sending reversal (attempt {attempt}, reason {})",
                reversal.reason.name()
            ),
        );
        let mut journal_err = None;
        let journal = &mut self.journal;
        let id = t.id;
        let outcome = self.acquirer.reverse(&reversal, &mut |ev: &WireEvent| {
            if let Err(e) = journal.host_message(id, "reversal", attempt, ev) {
                journal_err.get_or_insert(e);
            }
        });
        if let Some(e) = journal_err {
            return Err(e.into());
        }
        let policy = self.config.reversal.clone();
        match outcome {
            Outcome::Approved(a) => {
                self.journal.transition(
                    t.id,
                    State::Reversed,
                    &format!(
                        "reversal accepted by the host (response {})",
                        a.response_code
                    ),
                    Changes::default(),
                )?;
                self.say(Some(t.id), "reversed");
                report.reversed.push(t.id);
            }
            Outcome::Declined(d) => {
                let next = now_ms_after(self.clock.now_ms(), policy.backoff(attempt + 1));
                let rejections = self.journal.reversal_retry(t.id, true, next)?;
                report.rejected.push(t.id);
                if rejections >= policy.max_rejections {
                    let msg = format!(
                        "reversal stuck: the host rejected it {rejections} times (last {} {}); \
                         call the acquirer with this transaction's evidence",
                        d.response_code, d.reason
                    );
                    self.journal.transition(
                        t.id,
                        State::ReversalStuck,
                        &msg,
                        Changes::reason(&msg),
                    )?;
                    self.journal.event(Some(t.id), "alarm", &msg)?;
                    log::error!("txn {}: {msg}", t.id);
                    self.say(Some(t.id), &msg);
                    report.stuck.push(t.id);
                } else {
                    self.say(
                        Some(t.id),
                        &format!(
                            "reversal rejected by the host ({} {}), {rejections} of {} allowed",
                            d.response_code, d.reason, policy.max_rejections
                        ),
                    );
                }
            }
            Outcome::NotSent(e) | Outcome::Unknown(e) | Outcome::BadResponse(e) => {
                let next = now_ms_after(self.clock.now_ms(), policy.backoff(attempt + 1));
                self.journal.reversal_retry(t.id, false, next)?;
                report.unanswered.push(t.id);
                self.say(
                    Some(t.id),
                    &format!("reversal not answered ({e}); will retry"),
                );
            }
        }
        Ok(())
    }

    /// The card data a reversal of `t` carries: unsealed from the journal (`None` when
    /// there is none), and the unsealing error when the key no longer opens it.
    ///
    /// # Errors
    /// [`TerminalError::Journal`] when the sealed data cannot be read.
    fn reversal_card(
        &self,
        t: &Txn,
    ) -> Result<(Option<CardData>, Result<(), VaultError>), TerminalError> {
        Ok(match self.journal.sealed(t.id)? {
            Some(sealed) => match self.vault.open_sealed(&sealed, &t.id.to_be_bytes()) {
                Ok(s) => (Some(card_from_secrets(s, EntryMode::Reference)), Ok(())),
                Err(e) => (None, Err(e)),
            },
            None => (None, Ok(())),
        })
    }

    /// The reversal of `t` (original `(stan, transmission time, mti)`), with reversal STAN
    /// `rev_stan`, as attempt `attempt`.
    fn build_reversal(
        &self,
        t: &Txn,
        (stan, tt, mti): (u32, &String, &String),
        card: Option<CardData>,
        rev_stan: u32,
        attempt: u32,
    ) -> Reversal {
        let reason = match t.reversal_reason.as_deref() {
            Some("card_declined_after_approval") => ReversalReason::CardDeclinedAfterApproval,
            Some("not_completed") => ReversalReason::NotCompleted,
            Some("cancelled") => ReversalReason::Cancelled,
            _ => ReversalReason::NoValidResponse,
        };
        Reversal {
            operation: t.kind,
            amount: t.amount,
            currency: t.currency,
            stan: rev_stan,
            transmission_time: time::transmission_time(self.clock.now_secs()),
            card,
            original: OriginalData {
                mti: mti.parse().unwrap_or(t.kind.mti()),
                stan,
                transmission_time: tt.clone(),
                rrn: t.rrn.clone(),
                auth_code: t.auth_code.clone(),
            },
            reason,
            repeat: attempt > 1,
        }
    }

    /// Print owed receipts while the printer is ready (each then Completed).
    ///
    /// # Errors
    /// [`TerminalError::Journal`].
    pub fn reprint_owed(&mut self) -> Result<Vec<i64>, TerminalError> {
        self.refuse_in_outage()?;
        let r = self.reprint_owed_inner();
        self.storage_guard(r)
    }

    fn reprint_owed_inner(&mut self) -> Result<Vec<i64>, TerminalError> {
        let mut done = Vec::new();
        let owed = self.journal.in_states(&[State::ReceiptOwed])?;
        if owed.is_empty() {
            return Ok(done);
        }
        for t in owed {
            let Some(printer) = self.devices.printer.as_mut() else {
                break;
            };
            match printer.status() {
                Ok(c) if c.is_ready() => {}
                _ => break,
            }
            let doc = receipt::document(&self.config, &t, true);
            match printer.print(&doc) {
                Ok(pos_hal::PrintOutcome::Unconfirmed { .. }) | Err(_) => break,
                Ok(_) => {
                    self.journal.receipt_printed(t.id)?;
                    self.journal.transition(
                        t.id,
                        State::Completed,
                        "owed receipt printed (duplicate)",
                        Changes::default(),
                    )?;
                    self.say(Some(t.id), "owed receipt printed");
                    done.push(t.id);
                }
            }
        }
        Ok(done)
    }

    /// Run one transaction to a resting state, calling `hook` at each [`Step`].
    ///
    /// Every outcome (declined, aborted, reversed, receipt owed...) is an `Ok` with the
    /// final state; `Err` means the journal or key file failed, or the request is invalid
    /// (then nothing was sent).
    ///
    /// # Errors
    /// [`TerminalError`].
    pub fn run(
        &mut self,
        req: &TxnRequest,
        hook: &mut dyn StepHook,
    ) -> Result<TxnResult, TerminalError> {
        self.check_journal()?;
        self.in_flight = outage::InFlight::default();
        self.cancel.reset();
        let r = self.run_inner(req, hook);
        self.cancel.reset();
        let r = self.storage_guard(r);
        self.in_flight = outage::InFlight::default();
        r
    }

    fn run_inner(
        &mut self,
        req: &TxnRequest,
        hook: &mut dyn StepHook,
    ) -> Result<TxnResult, TerminalError> {
        // Resolve and check the original before anything is written.
        let original = match (req.operation, req.original) {
            (Operation::Completion | Operation::Void, None) => {
                return Err(TerminalError::Invalid(format!(
                    "a {} needs the id of the original transaction",
                    req.operation.name()
                )));
            }
            (Operation::Completion | Operation::Void, Some(o)) => {
                let t = match self.journal.get(o) {
                    Ok(t) => t,
                    Err(JournalError::NotFound(_)) => {
                        return Err(TerminalError::Invalid(format!("no transaction {o}")));
                    }
                    Err(e) => return Err(e.into()),
                };
                check_original(req, &t)?;
                Some(t)
            }
            _ => None,
        };
        let amount = match (&original, req.operation) {
            (Some(o), Operation::Void) => o.amount,
            _ => req.amount,
        };
        let limits = &self.config.limits;
        if amount < limits.min_amount || amount > limits.max_amount {
            return Err(TerminalError::Invalid(format!(
                "amount {} is outside the lane's limits {}..={}",
                receipt::money(amount),
                receipt::money(limits.min_amount),
                receipt::money(limits.max_amount)
            )));
        }

        // Owed receipts first, while we are at it; then reversals before any new request.
        self.reprint_owed()?;
        let drain = self.drain_reversals(true)?;
        let id = self.journal.create(
            req.operation,
            amount,
            self.config.currency,
            req.original,
            &format!("{} of {}", req.operation.name(), receipt::money(amount)),
        )?;
        self.in_flight.id = Some(id);
        self.say(
            Some(id),
            &format!(
                "{} {} started",
                req.operation.name(),
                receipt::money(amount)
            ),
        );
        if !drain.unanswered.is_empty() {
            let msg = format!(
                "host unreachable: {} earlier reversal(s) still pending, not sending new requests; nothing was charged",
                drain.unanswered.len()
            );
            return self.abort(id, &msg);
        }
        if self.config.reversal.block_sales_when_stuck {
            let stuck = self.journal.in_states(&[State::ReversalStuck])?;
            if !stuck.is_empty() {
                let ids: Vec<String> = stuck.iter().map(|t| t.id.to_string()).collect();
                let msg = format!(
                    "blocked by policy: reversal(s) stuck ({}); resolve with the acquirer first",
                    ids.join(", ")
                );
                return self.abort(id, &msg);
            }
        }

        // Health gate.
        let mut no_receipt = req.no_receipt;
        if no_receipt {
            self.journal
                .event(Some(id), "info", "no receipt: cashier override")?;
        }
        if let Some(reason) = self.health_gate(id, req, &mut no_receipt)? {
            return self.abort(id, &reason);
        }

        let end = match &original {
            Some(o) => self.by_reference(id, req.operation, amount, o, hook)?,
            None => self.with_card(id, req, amount, !no_receipt, hook)?,
        };
        if end {
            // The transaction is committed: the receipt.
            self.finish(id, no_receipt, hook)?;
        }
        let t = self.journal.get(id)?;
        let stands = matches!(t.state, State::Completed | State::ReceiptOwed);
        if let (Some(o), true) = (&original, stands) {
            match req.operation {
                Operation::Void => self.journal.mark_original(o.id, true, None)?,
                _ => self.journal.mark_original(o.id, false, Some(id))?,
            }
        }
        let receipt_text = (t.state == State::Completed && t.receipts_printed > 0)
            .then(|| receipt::text(&self.config, &t, false));
        if t.state == State::ReversalPending {
            self.drain_reversals(true)?;
        }
        let r = self.result(id, receipt_text)?;
        self.say(
            Some(id),
            &format!(
                "ended {}{}",
                r.state,
                r.reason
                    .as_deref()
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default()
            ),
        );
        Ok(r)
    }

    fn abort(&mut self, id: i64, reason: &str) -> Result<TxnResult, TerminalError> {
        self.journal
            .transition(id, State::Aborted, reason, Changes::reason(reason))?;
        self.say(Some(id), &format!("aborted: {reason}"));
        self.result(id, None)
    }

    /// Printer ready (unless no receipt) and reader reachable. Returns the refusal reason.
    fn health_gate(
        &mut self,
        id: i64,
        req: &TxnRequest,
        no_receipt: &mut bool,
    ) -> Result<Option<String>, TerminalError> {
        if !*no_receipt {
            match self.devices.printer.as_mut() {
                None => {
                    *no_receipt = true;
                    self.journal
                        .event(Some(id), "info", "no receipt: the lane has no printer")?;
                }
                Some(p) => match p.status() {
                    Ok(c) => {
                        if let Some(kind) = c.blocking_fault() {
                            self.journal.event(
                                Some(id),
                                "fault",
                                &format!("printer: {}", kind.name()),
                            )?;
                            return Ok(Some(format!(
                                "health gate: {} (fix it, or run the sale with no receipt)",
                                fault_words(kind)
                            )));
                        }
                        if let Some(w) = c.warning() {
                            self.journal.event(
                                Some(id),
                                "device",
                                &format!("printer warning: {}", w.name()),
                            )?;
                            self.say(Some(id), &format!("warning: printer {}", w.name()));
                        }
                    }
                    Err(e) => {
                        self.journal.event(
                            Some(id),
                            "fault",
                            &format!("printer: {} ({e})", e.kind().name()),
                        )?;
                        return Ok(Some(format!(
                            "health gate: printer not answering: {e} (fix it, or run the sale with no receipt)"
                        )));
                    }
                },
            }
        }
        let needs_card = !matches!(req.operation, Operation::Completion | Operation::Void);
        if needs_card {
            let chip_needed = req.entry == CardEntry::Chip || self.devices.msr.is_none();
            match self.devices.reader.as_mut() {
                Some(r) => {
                    if let Err(e) = r.slot_status(0) {
                        self.journal.event(
                            Some(id),
                            "fault",
                            &format!("reader: {} ({e})", e.kind().name()),
                        )?;
                        return Ok(Some(format!("health gate: chip reader not answering: {e}")));
                    }
                }
                None if chip_needed => {
                    return Ok(Some("health gate: the lane has no chip reader".into()));
                }
                None => {}
            }
            if req.entry == CardEntry::Swipe && self.devices.msr.is_none() {
                return Ok(Some("the lane has no magnetic stripe reader".into()));
            }
        }
        Ok(None)
    }

    /// Completion or void: no card, the original's sealed card data. Returns true when
    /// committed.
    fn by_reference(
        &mut self,
        id: i64,
        op: Operation,
        amount: u64,
        original: &Txn,
        hook: &mut dyn StepHook,
    ) -> Result<bool, TerminalError> {
        let hook = RefCell::new(hook);
        hook.borrow_mut().at(Step::CardRead);
        let secrets = match self.journal.sealed(original.id)? {
            Some(s) => Some(self.vault.open_sealed(&s, &original.id.to_be_bytes())?),
            None => None,
        };
        let card = secrets.map(|s| card_from_secrets(s, EntryMode::Reference));
        let facts = CardFacts {
            pan_masked: original.pan_masked.clone(),
            aid: None,
            label: None,
            card: card.unwrap_or(CardData {
                pan: Sensitive::default(),
                expiry: None,
                pan_sequence: None,
                track2: None,
                entry_mode: EntryMode::Reference,
                icc_data: None,
            }),
        };
        let orig = OriginalData {
            mti: original
                .mti
                .as_deref()
                .and_then(|m| m.parse().ok())
                .unwrap_or(original.kind.mti()),
            stan: original.stan.unwrap_or(0),
            transmission_time: original.transmission_time.clone().unwrap_or_default(),
            rrn: original.rrn.clone(),
            auth_code: original.auth_code.clone(),
        };
        let end = self.online(id, op, amount, facts, Some(orig), &hook, &mut || Ok(()))?;
        match end {
            HostEnd::Approved { .. } => {
                self.journal.transition(
                    id,
                    State::Committed,
                    "approved: nothing for a card to do",
                    Changes::default(),
                )?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Sale, pre-auth or refund with a card (`receipt`: one will be printed). Returns true
    /// when committed.
    fn with_card(
        &mut self,
        id: i64,
        req: &TxnRequest,
        amount: u64,
        receipt: bool,
        hook: &mut dyn StepHook,
    ) -> Result<bool, TerminalError> {
        let hook = RefCell::new(hook);
        if req.entry == CardEntry::Swipe {
            hook.borrow_mut().prompt(Prompt::InsertOrSwipe);
            match self.read_swipe()? {
                Ok(t2) if !t2.is_chip_card() => {
                    hook.borrow_mut().at(Step::CardRead);
                    return self.stripe(id, req.operation, amount, t2, EntryMode::Swipe, &hook);
                }
                Ok(_) => {
                    // Chip first: the stripe of a chip card is used only after a failed
                    // chip read.
                    self.journal
                        .event(Some(id), "prompt", "chip card swiped: insert chip")?;
                    self.say(Some(id), Prompt::InsertChip.text());
                    hook.borrow_mut().prompt(Prompt::InsertChip);
                }
                Err(reason) => {
                    if reason != CANCELLED {
                        self.journal.event(Some(id), "fault", &reason)?;
                    }
                    self.abort(id, &reason)?;
                    return Ok(false);
                }
            }
        } else {
            hook.borrow_mut().prompt(Prompt::InsertCard);
        }
        hook.borrow_mut().at(Step::CardRead);
        match self.chip(id, req.operation, amount, receipt, &hook)? {
            ChipEnd::Committed => return Ok(true),
            ChipEnd::Ended => return Ok(false),
            ChipEnd::ChipFailed(kind, why) => {
                let can_fallback = self.devices.msr.is_some()
                    && matches!(
                        kind,
                        FaultKind::CardMute
                            | FaultKind::Timeout
                            | FaultKind::Protocol
                            | FaultKind::CardUnsupported
                    );
                if !can_fallback {
                    self.abort(
                        id,
                        &format!("{}: {why}; nothing was charged", fault_words(kind)),
                    )?;
                    return Ok(false);
                }
                self.journal.event(
                    Some(id),
                    "fallback",
                    &format!(
                        "chip read failed ({}): fallback to magnetic stripe",
                        kind.name()
                    ),
                )?;
                self.say(Some(id), Prompt::SwipeFallback.text());
                hook.borrow_mut().prompt(Prompt::SwipeFallback);
            }
        }
        match self.read_swipe()? {
            Ok(t2) => self.stripe(
                id,
                req.operation,
                amount,
                t2,
                EntryMode::FallbackSwipe,
                &hook,
            ),
            Err(reason) if reason == CANCELLED => {
                self.abort(id, CANCELLED)?;
                Ok(false)
            }
            Err(reason) => {
                self.abort(id, &format!("fallback swipe failed: {reason}"))?;
                Ok(false)
            }
        }
    }

    /// Wait for a swipe: its track 2, or why there is none (never card data).
    fn read_swipe(&mut self) -> Result<Result<Track2, String>, TerminalError> {
        let timeout = Duration::from_millis(self.config.card_timeout_ms);
        let Some(msr) = self.devices.msr.as_mut() else {
            return Ok(Err("the lane has no magnetic stripe reader".into()));
        };
        // Waited for in slices, so that a cancel is seen within one.
        let deadline = std::time::Instant::now() + timeout;
        let swipe = loop {
            if self.cancel.is_requested() {
                return Ok(Err(CANCELLED.into()));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match msr.wait_for_swipe(left.min(SWIPE_SLICE)) {
                Ok(s) => break s,
                Err(e)
                    if e.kind() == FaultKind::Timeout && !left.is_zero() && left > SWIPE_SLICE => {}
                Err(e) => {
                    return Ok(Err(format!("no card swiped ({}: {e})", e.kind().name())));
                }
            }
        };
        let Some(data) = swipe.tracks[1]
            .data
            .as_ref()
            .filter(|_| swipe.tracks[1].status == pos_hal::TrackStatus::Ok)
        else {
            return Ok(Err(format!(
                "track 2 did not read ({}): swipe again",
                swipe.tracks[1].status.name()
            )));
        };
        let Some(t2) = Track2::parse(data.expose()) else {
            return Ok(Err("track 2 is not valid: swipe again".into()));
        };
        Ok(Ok(t2))
    }

    /// Magnetic stripe online transaction. Returns true when committed.
    fn stripe(
        &mut self,
        id: i64,
        op: Operation,
        amount: u64,
        t2: Track2,
        entry: EntryMode,
        hook: &RefCell<&mut dyn StepHook>,
    ) -> Result<bool, TerminalError> {
        let facts = CardFacts {
            pan_masked: Some(pos_hal::mask_pan(&String::from_utf8_lossy(t2.pan.expose()))),
            aid: None,
            label: None,
            card: CardData {
                pan: t2.pan.clone(),
                expiry: Some(t2.expiry.clone()),
                pan_sequence: None,
                track2: Some(t2.raw.clone()),
                entry_mode: entry,
                icc_data: None,
            },
        };
        let end = self.online(id, op, amount, facts, None, hook, &mut || Ok(()))?;
        if let HostEnd::Approved { .. } = end {
            self.journal.transition(
                id,
                State::Committed,
                "approved (magnetic stripe: no card step)",
                Changes::default(),
            )?;
            return Ok(true);
        }
        Ok(false)
    }

    /// The EMV chip transaction.
    fn chip(
        &mut self,
        id: i64,
        op: Operation,
        amount: u64,
        receipt: bool,
        hook: &RefCell<&mut dyn StepHook>,
    ) -> Result<ChipEnd, TerminalError> {
        let capabilities = self.capabilities(receipt);
        let Some(mut reader) = self.devices.reader.take() else {
            return Ok(ChipEnd::ChipFailed(
                FaultKind::NotFound,
                "no chip reader".into(),
            ));
        };
        let r = self.chip_with(id, op, amount, &capabilities, &mut reader, hook);
        let _ = reader.power_off(0);
        self.devices.reader = Some(reader);
        hook.borrow_mut().prompt(Prompt::RemoveCard);
        r
    }

    fn chip_with(
        &mut self,
        id: i64,
        op: Operation,
        amount: u64,
        capabilities: &Capabilities,
        reader: &mut Reader,
        hook: &RefCell<&mut dyn StepHook>,
    ) -> Result<ChipEnd, TerminalError> {
        // Wait for the card.
        let deadline =
            std::time::Instant::now() + Duration::from_millis(self.config.card_timeout_ms);
        loop {
            if self.cancelled() {
                self.abort(id, CANCELLED)?;
                return Ok(ChipEnd::Ended);
            }
            match reader.slot_status(0) {
                Ok(s) if s.contains(SlotState::CARD_PRESENT) => break,
                Ok(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(_) => {
                    return Ok(ChipEnd::ChipFailed(
                        FaultKind::CardAbsent,
                        "no card inserted in time".into(),
                    ));
                }
                Err(e) => return Ok(ChipEnd::ChipFailed(e.kind(), e.to_string())),
            }
        }
        if let Err(e) = reader.power_on(0) {
            self.journal.event(
                Some(id),
                "fault",
                &format!("reader: power on failed: {} ({e})", e.kind().name()),
            )?;
            return Ok(ChipEnd::ChipFailed(e.kind(), e.to_string()));
        }
        let mut un = [0u8; 4];
        let _ = getrandom::fill(&mut un);
        let mut terminal = TerminalData::new(un);
        terminal.set_capabilities(capabilities);
        terminal.set_unix_time(self.clock.now_secs());
        terminal.set(tags::TERMINAL_COUNTRY_CODE, bcd2(self.config.country));
        terminal.set(tags::TRANSACTION_CURRENCY_CODE, bcd2(self.config.currency));
        if op == Operation::Refund {
            terminal.set(tags::TRANSACTION_TYPE, vec![0x20]);
        }
        let mut cfg = TransactionConfig::new(terminal, amount, self.ca_keys.clone());
        // Online-only terminal: anything over the floor limit (0) goes online.
        cfg.tac.online = [0, 0, 0, 0x80, 0];

        let host_answered = Cell::new(false);
        let host_end: RefCell<Option<HostEnd>> = RefCell::new(None);
        let failed: RefCell<Option<TerminalError>> = RefCell::new(None);
        let reader_cell = RefCell::new(reader);
        let outcome = {
            let mut ch = HookChannel {
                reader: &reader_cell,
                hook,
                host_answered: &host_answered,
                fired: false,
            };
            let mut online = |rec: &TransactionRecord| -> OnlineDecision {
                let facts = facts_from_record(rec);
                let mut still_there = || -> Result<(), (FaultKind, String)> {
                    let mut r = reader_cell.borrow_mut();
                    match r.slot_status(0) {
                        Ok(s)
                            if !s.contains(SlotState::CARD_PRESENT)
                                || s.contains(SlotState::CHANGED) =>
                        {
                            return Err((FaultKind::CardRemoved, "card removed".into()));
                        }
                        Ok(_) => {}
                        Err(e) => return Err((e.kind(), e.to_string())),
                    }
                    // GET DATA ATC: the card must still answer.
                    match r.transmit(0, &[0x80, 0xCA, 0x9F, 0x36, 0x00]) {
                        Ok(_) => Ok(()),
                        Err(e) => Err((e.kind(), e.to_string())),
                    }
                };
                let end = match self.online(id, op, amount, facts, None, hook, &mut still_there) {
                    Ok(end) => end,
                    Err(e) => {
                        *failed.borrow_mut() = Some(e);
                        HostEnd::Stopped
                    }
                };
                let decision = match &end {
                    HostEnd::Approved {
                        response_code,
                        issuer_data,
                    } => {
                        host_answered.set(true);
                        let (iad, scripts) = split_issuer_data(issuer_data);
                        OnlineDecision::Approved {
                            arc: arc(response_code),
                            issuer_auth_data: iad,
                            scripts,
                        }
                    }
                    HostEnd::Declined { response_code } => {
                        host_answered.set(true);
                        OnlineDecision::Declined {
                            arc: arc(response_code),
                            issuer_auth_data: None,
                            scripts: Vec::new(),
                        }
                    }
                    HostEnd::Stopped | HostEnd::MustReverse => OnlineDecision::Unreachable,
                };
                *host_end.borrow_mut() = Some(end);
                decision
            };
            transaction::run(&mut ch, &cfg, &mut online)
        };
        if let Some(e) = failed.into_inner() {
            return Err(e);
        }
        let host_end = host_end.into_inner();
        let approved = matches!(host_end, Some(HostEnd::Approved { .. }));
        match outcome {
            Ok(out) => {
                self.note_missing_ca_key(id, &out)?;
                self.note_pin_not_entered(id, &out)?;
                if approved {
                    if out.decision.is_approved() {
                        self.journal.transition(
                            id,
                            State::Committed,
                            "card accepted the host's approval (TC at the second GENERATE AC)",
                            Changes::default(),
                        )?;
                        return Ok(ChipEnd::Committed);
                    }
                    self.journal.event(
                        Some(id),
                        "card",
                        "card declined at the second GENERATE AC after the host approved",
                    )?;
                    self.begin_reversal(
                        id,
                        ReversalReason::CardDeclinedAfterApproval,
                        "card declined after the host approved: reversing",
                    )?;
                    return Ok(ChipEnd::Ended);
                }
                if host_end.is_none() {
                    // Never went online: decided by the card offline.
                    let (reason, state) = match out.decision {
                        TransactionDecision::DeclinedOffline => (
                            "declined by the card (offline)".to_string(),
                            State::Declined,
                        ),
                        d => (
                            format!(
                                "card decided offline ({d:?}); this terminal is online-only: nothing charged"
                            ),
                            State::Aborted,
                        ),
                    };
                    self.journal
                        .transition(id, state, &reason, Changes::reason(&reason))?;
                }
                Ok(ChipEnd::Ended)
            }
            Err(TransactionError::Card(e)) if host_end.is_none() => {
                let kind = e.kind();
                self.journal.event(
                    Some(id),
                    "fault",
                    &format!("chip: {} at {:?}", kind.name(), e.step()),
                )?;
                Ok(ChipEnd::ChipFailed(kind, e.to_string()))
            }
            Err(e) => {
                let kind = e.emv().kind();
                self.journal.event(
                    Some(id),
                    "fault",
                    &format!("chip after the host answered: {}", kind.name()),
                )?;
                if approved {
                    self.begin_reversal(
                        id,
                        ReversalReason::CardDeclinedAfterApproval,
                        &format!("{} after the host approved: reversing", fault_words(kind)),
                    )?;
                }
                Ok(ChipEnd::Ended)
            }
        }
    }

    /// Offline data authentication that failed for want of the card's CA public key: the
    /// journal names the RID and index and where the lane's keys come from.
    fn note_missing_ca_key(
        &mut self,
        id: i64,
        out: &transaction::TransactionOutcome,
    ) -> Result<(), TerminalError> {
        let Some(pos_emv::oda::OdaError::UnknownCaKey { rid, index }) = &out.oda.detail else {
            return Ok(());
        };
        let rid: String = rid.iter().map(|b| format!("{b:02X}")).collect();
        let source = match &self.config.ca_keys {
            Some(p) => format!("the CA key file {} (ca_keys) has no such key", p.display()),
            None => {
                "the lane uses the built-in test keys: set ca_keys in the config to a CA key file"
                    .into()
            }
        };
        let note = format!(
            "offline data authentication failed: no CA public key for RID {rid} index {index:02X}; {source}; add the scheme's key as a line `{rid} {index:02X} EXPONENT MODULUS` ({})",
            pos_emv::capk::LINE_FORMAT
        );
        self.journal.event(Some(id), "oda", &note)?;
        self.say(Some(id), &note);
        Ok(())
    }

    /// A card that asked for a PIN the configured PIN pad offers: no PIN was entered (there
    /// is no PIN pad driver); the journal says so and what verification the card got.
    fn note_pin_not_entered(
        &mut self,
        id: i64,
        out: &transaction::TransactionOutcome,
    ) -> Result<(), TerminalError> {
        let Some(cvm) = out.cvm else { return Ok(()) };
        let Some(asked) = cvm.method_asked.filter(|m| m.needs_pin()) else {
            return Ok(());
        };
        if !out.tvr.contains(pos_emv::tvr::Tvr::PIN_PAD_NOT_PRESENT) {
            return Ok(());
        }
        let then = match cvm.performed {
            Some(m) => format!("verified instead by {m:?}"),
            None => "cardholder verification failed".into(),
        };
        let note = format!(
            "the card asked for PIN ({asked:?}); pin_pad {} has no driver: no PIN entered, the card was told \"PIN pad not present or not working\"; {then}",
            self.config.pin_pad.device
        );
        self.journal.event(Some(id), "cvm", &note)?;
        self.say(Some(id), &note);
        Ok(())
    }

    fn begin_reversal(
        &mut self,
        id: i64,
        reason: ReversalReason,
        note: &str,
    ) -> Result<(), TerminalError> {
        self.journal.transition(
            id,
            State::ReversalPending,
            note,
            Changes {
                reason: Some(note.to_string()),
                reversal_reason: Some(reason.name().into()),
                ..Changes::default()
            },
        )?;
        self.say(Some(id), note);
        Ok(())
    }

    /// CardRead → local checks → Armed → send → Sent → answer.
    #[allow(clippy::too_many_arguments)]
    fn online(
        &mut self,
        id: i64,
        op: Operation,
        amount: u64,
        facts: CardFacts,
        original: Option<OriginalData>,
        hook: &RefCell<&mut dyn StepHook>,
        still_there: &mut dyn FnMut() -> Result<(), (FaultKind, String)>,
    ) -> Result<HostEnd, TerminalError> {
        let has_card = !facts.card.pan.is_empty();
        let sealed = if has_card {
            let secrets = CardSecrets {
                pan: facts.card.pan.clone(),
                expiry: facts.card.expiry.clone(),
                pan_sequence: facts.card.pan_sequence,
            };
            Some(self.vault.seal(&secrets, &id.to_be_bytes())?)
        } else {
            None
        };
        let card_changes = Changes {
            pan_masked: facts.pan_masked.clone(),
            pan_hash: has_card.then(|| self.vault.pan_hash(facts.card.pan.expose())),
            sealed,
            entry_mode: Some(facts.card.entry_mode.name().into()),
            aid: facts.aid.clone(),
            label: facts.label.clone(),
            ..Changes::default()
        };
        let now = self.clock.now_secs();
        // With a card, its data is written at CardRead; by reference (completion, void) there
        // is no card step and the original's card data goes with Armed, so this transaction
        // can be reversed on its own too.
        let arm_changes = if original.is_none() {
            self.journal
                .transition(id, State::CardRead, "card read", card_changes)?;
            self.say(
                Some(id),
                &format!(
                    "card read: {} ({})",
                    facts.pan_masked.as_deref().unwrap_or("no PAN"),
                    facts.card.entry_mode.name()
                ),
            );
            // Local checks before going online.
            if let Some(exp) = &facts.card.expiry {
                if time::expired(exp, now) {
                    let msg = "declined: card expired (local check, not sent)";
                    self.journal
                        .transition(id, State::Declined, msg, Changes::reason(msg))?;
                    self.say(Some(id), msg);
                    return Ok(HostEnd::Stopped);
                }
            }
            Changes::default()
        } else {
            card_changes
        };
        let request = Request {
            operation: op,
            amount,
            currency: self.config.currency,
            stan: 0,
            transmission_time: time::transmission_time(now),
            local_time: time::local_time(now),
            card: has_card.then(|| facts.card.clone()),
            original: original.clone(),
        };
        if !self.cancel.arm() {
            self.journal
                .transition(id, State::Aborted, CANCELLED, Changes::reason(CANCELLED))?;
            self.say(Some(id), CANCELLED);
            return Ok(HostEnd::Stopped);
        }
        let stan = self.journal.arm(
            id,
            &op.mti().to_string(),
            &request.transmission_time,
            "armed: reversal record written before sending",
            arm_changes,
        )?;
        let request = Request { stan, ..request };
        hook.borrow_mut().at(Step::BeforeSend);
        if let Err((kind, why)) = still_there() {
            let msg = format!(
                "{} before the request was sent: nothing to undo",
                fault_words(kind)
            );
            self.journal
                .event(Some(id), "fault", &format!("{}: {why}", kind.name()))?;
            self.journal
                .transition(id, State::Aborted, &msg, Changes::reason(&msg))?;
            self.say(Some(id), &msg);
            return Ok(HostEnd::Stopped);
        }
        self.say(Some(id), &format!("sending {} STAN {stan}", op.mti()));
        let mut journal_err: Option<JournalError> = None;
        let outcome = {
            let journal = &mut self.journal;
            let acquirer = &mut self.acquirer;
            let progress = &mut self.progress;
            let mut observe = |ev: &WireEvent| {
                if let Err(e) = journal.host_message(id, "request", 1, ev) {
                    journal_err.get_or_insert(e);
                }
                if let WireEvent::Sent { .. } = ev {
                    if let Err(e) =
                        journal.transition(id, State::Sent, "request sent", Changes::default())
                    {
                        journal_err.get_or_insert(e);
                    }
                    if let Some(p) = progress.as_mut() {
                        p(Some(id), "request sent, waiting for the host");
                    }
                    hook.borrow_mut().at(Step::AfterSend);
                }
            };
            acquirer.send(&request, &mut observe)
        };
        if let Some(e) = journal_err {
            return Err(e.into());
        }
        Ok(match outcome {
            Outcome::Approved(a) => {
                self.in_flight.approval =
                    Some((a.rrn.clone(), a.auth_code.clone(), a.response_code.clone()));
                self.journal.transition(
                    id,
                    State::HostApproved,
                    &format!(
                        "host approved (response {}, in {} ms)",
                        a.response_code,
                        a.elapsed.as_millis()
                    ),
                    Changes {
                        rrn: Some(a.rrn.clone()),
                        auth_code: Some(a.auth_code.clone()),
                        response_code: Some(a.response_code.clone()),
                        ..Changes::default()
                    },
                )?;
                self.say(
                    Some(id),
                    &format!("host approved, auth code {}", a.auth_code),
                );
                hook.borrow_mut().at(Step::AfterApprove);
                HostEnd::Approved {
                    response_code: a.response_code,
                    issuer_data: a.issuer_data,
                }
            }
            Outcome::Declined(d) => {
                let msg = format!("declined by the host: {} {}", d.response_code, d.reason);
                self.journal.transition(
                    id,
                    State::Declined,
                    &msg,
                    Changes {
                        response_code: Some(d.response_code.clone()),
                        rrn: d.rrn.clone(),
                        reason: Some(msg.clone()),
                        ..Changes::default()
                    },
                )?;
                self.say(Some(id), &msg);
                HostEnd::Declined {
                    response_code: d.response_code,
                }
            }
            Outcome::NotSent(e) => {
                let msg = format!("host unreachable, nothing sent: {e}");
                self.journal
                    .transition(id, State::Aborted, &msg, Changes::reason(&msg))?;
                self.say(Some(id), &msg);
                HostEnd::Stopped
            }
            Outcome::Unknown(e) | Outcome::BadResponse(e) => {
                self.begin_reversal(
                    id,
                    ReversalReason::NoValidResponse,
                    &format!("no valid answer from the host ({e}): reversing"),
                )?;
                HostEnd::MustReverse
            }
        })
    }

    /// Committed → (Printing → print) → Completed / ReceiptOwed / ReversalPending.
    fn finish(
        &mut self,
        id: i64,
        no_receipt: bool,
        hook: &mut dyn StepHook,
    ) -> Result<(), TerminalError> {
        if no_receipt || self.devices.printer.is_none() {
            self.journal.transition(
                id,
                State::Completed,
                "completed without a receipt",
                Changes {
                    no_receipt: Some(true),
                    ..Changes::default()
                },
            )?;
            return Ok(());
        }
        self.journal.transition(
            id,
            State::Printing,
            "printing the receipt",
            Changes::default(),
        )?;
        hook.at(Step::Printing);
        let t = self.journal.get(id)?;
        let doc = receipt::document(&self.config, &t, false);
        let printed = match self.devices.printer.as_mut() {
            Some(p) => p.print(&doc),
            None => return Ok(()),
        };
        let failure = match printed {
            Ok(pos_hal::PrintOutcome::Unconfirmed { reason }) => Some((
                FaultKind::PrinterOffline,
                format!("receipt not confirmed: {reason}"),
            )),
            Ok(_) => None,
            Err(e) => Some((e.kind(), e.to_string())),
        };
        match failure {
            None => {
                self.journal.receipt_printed(id)?;
                hook.at(Step::AfterPrint);
                self.journal.transition(
                    id,
                    State::Completed,
                    "receipt printed",
                    Changes::default(),
                )?;
                self.say(Some(id), "receipt printed");
            }
            Some((kind, why)) => {
                self.journal.event(
                    Some(id),
                    "fault",
                    &format!("printer: {} ({why})", kind.name()),
                )?;
                if self.config.receipt.policy == ReceiptMode::Required {
                    self.begin_reversal(
                        id,
                        ReversalReason::Cancelled,
                        &format!(
                            "{}: no receipt, and the policy requires one: reversing",
                            fault_words(kind)
                        ),
                    )?;
                } else {
                    let msg = format!(
                        "{}: receipt owed, reprinted when the printer is ready",
                        fault_words(kind)
                    );
                    self.journal
                        .transition(id, State::ReceiptOwed, &msg, Changes::reason(&msg))?;
                    self.say(Some(id), &msg);
                }
            }
        }
        Ok(())
    }
}

enum ChipEnd {
    Committed,
    Ended,
    ChipFailed(FaultKind, String),
}

/// Track 2: PAN, expiry, service code. Never logged.
#[derive(Clone)]
struct Track2 {
    raw: Sensitive,
    pan: Sensitive,
    expiry: String,
    service_code: [u8; 3],
}

impl Track2 {
    fn parse(data: &[u8]) -> Option<Track2> {
        let sep = data.iter().position(|&b| b == b'=' || b == b'D')?;
        let pan = &data[..sep];
        if !(12..=19).contains(&pan.len()) || !pan.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let rest = &data[sep + 1..];
        if rest.len() < 7 || !rest[..7].iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(Track2 {
            raw: Sensitive::new(data.to_vec()),
            pan: Sensitive::new(pan.to_vec()),
            expiry: String::from_utf8_lossy(&rest[..4]).into_owned(),
            service_code: [rest[4], rest[5], rest[6]],
        })
    }

    fn is_chip_card(&self) -> bool {
        matches!(self.service_code[0], b'2' | b'6')
    }
}

fn card_from_secrets(s: CardSecrets, entry: EntryMode) -> CardData {
    CardData {
        pan: s.pan,
        expiry: s.expiry,
        pan_sequence: s.pan_sequence,
        track2: None,
        entry_mode: entry,
        icc_data: None,
    }
}

fn facts_from_record(rec: &TransactionRecord) -> CardFacts {
    CardFacts {
        pan_masked: rec.pan_masked.clone(),
        aid: Some(hex(&rec.aid)),
        label: rec.label.clone(),
        card: CardData {
            pan: rec.pan.clone().unwrap_or_default(),
            expiry: rec
                .expiry
                .as_ref()
                .and_then(|e| e.get(..4))
                .map(str::to_string),
            pan_sequence: rec.pan_sequence,
            track2: None,
            entry_mode: EntryMode::Chip,
            icc_data: Some(rec.icc_data.clone()),
        },
    }
}

fn check_original(req: &TxnRequest, o: &Txn) -> Result<(), TerminalError> {
    let bad = |m: String| Err(TerminalError::Invalid(m));
    let settled = matches!(o.state, State::Completed | State::ReceiptOwed);
    match req.operation {
        Operation::Completion => {
            if o.kind != Operation::PreAuth {
                return bad(format!(
                    "transaction {} is a {}, not a pre-authorization",
                    o.id,
                    o.kind.name()
                ));
            }
            if !settled {
                return bad(format!(
                    "pre-authorization {} is {}, not approved",
                    o.id, o.state
                ));
            }
            if let Some(c) = o.completed_by {
                return bad(format!(
                    "pre-authorization {} was already completed by {c}",
                    o.id
                ));
            }
            if req.amount > o.amount {
                return bad(format!(
                    "completion {} is above the pre-authorized {}",
                    receipt::money(req.amount),
                    receipt::money(o.amount)
                ));
            }
        }
        Operation::Void => {
            if !matches!(
                o.kind,
                Operation::Sale | Operation::Completion | Operation::Refund
            ) {
                return bad(format!("a {} cannot be voided", o.kind.name()));
            }
            if !settled {
                return bad(format!(
                    "transaction {} is {}: only approved transactions can be voided",
                    o.id, o.state
                ));
            }
            if o.voided {
                return bad(format!("transaction {} is already voided", o.id));
            }
        }
        _ => {}
    }
    Ok(())
}

fn now_ms_after(now: i64, d: Duration) -> i64 {
    now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn bcd2(v: u16) -> Vec<u8> {
    let v = v % 10_000;
    vec![
        ((v / 1000) << 4 | (v / 100 % 10)) as u8,
        ((v / 10 % 10) << 4 | (v % 10)) as u8,
    ]
}

fn arc(code: &str) -> [u8; 2] {
    let b = code.as_bytes();
    [
        b.first().copied().unwrap_or(b'0'),
        b.get(1).copied().unwrap_or(b'0'),
    ]
}

/// Issuer authentication data (`91`) and script templates (`71`/`72`) from field 55.
fn split_issuer_data(data: &[u8]) -> (Option<Vec<u8>>, Vec<u8>) {
    let mut iad = None;
    let mut scripts = Vec::new();
    for t in tlv::parse(data) {
        let Ok(t) = t else { break };
        if t.tag == Tag::new(0x91) {
            iad = Some(t.value.to_vec());
        } else if t.tag == Tag::new(0x71) || t.tag == Tag::new(0x72) {
            scripts.extend_from_slice(&data[t.offset..t.offset + t.encoded_len()]);
        }
    }
    (iad, scripts)
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_cancel_and_arming_never_both_win() {
        let h = CancelHandle::default();
        assert!(h.request(), "nothing armed: the cancel wins");
        assert!(h.request(), "asking twice is still yes");
        assert!(!h.arm(), "a cancelled transaction is not armed");
        h.reset();
        assert!(h.arm());
        assert!(!h.request(), "armed first: the cancel is refused");
        assert!(!h.is_requested());
        // From two threads at once: exactly one of them wins, every time.
        for _ in 0..200 {
            h.reset();
            let h2 = h.clone();
            let t = std::thread::spawn(move || h2.request());
            let armed = h.arm();
            let cancelled = t.join().unwrap_or(false);
            assert!(armed != cancelled, "armed {armed}, cancelled {cancelled}");
        }
    }

    use super::*;

    #[test]
    fn track2_parsing() {
        let t = Track2::parse(b"4761739001010010=28122011143804489").unwrap();
        assert_eq!(t.pan.expose(), b"4761739001010010");
        assert_eq!(t.expiry, "2812");
        assert!(t.is_chip_card());
        let t = Track2::parse(b"4111111111111111=28121010000000000").unwrap();
        assert!(!t.is_chip_card());
        for bad in [
            &b""[..],
            b"=",
            b"41111=2812101",
            b"4111111111111111=28",
            b"411111111111111x=2812101",
        ] {
            assert!(Track2::parse(bad).is_none());
        }
    }

    #[test]
    fn issuer_data_split() {
        let data = [
            0x91, 0x02, 0xAA, 0xBB, 0x71, 0x03, 0x86, 0x01, 0x00, 0x9F, 0x01, 0x00,
        ];
        let (iad, scripts) = split_issuer_data(&data);
        assert_eq!(iad, Some(vec![0xAA, 0xBB]));
        assert_eq!(scripts, vec![0x71, 0x03, 0x86, 0x01, 0x00]);
        assert_eq!(split_issuer_data(&[0xFF]), (None, vec![]));
        assert_eq!(bcd2(978), vec![0x09, 0x78]);
        assert_eq!(arc("51"), *b"51");
    }
}
