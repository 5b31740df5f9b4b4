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
use pos_emv::apdu::Command;
use pos_emv::capk::CaKeys;
use pos_emv::record::TransactionRecord;
use pos_emv::tags;
use pos_emv::terminal::{Capabilities, TerminalData};
use pos_emv::tlv::{self, TlvError};
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

mod cash;
mod chip;
mod online;
mod outage;
mod printing;
mod recovery;
mod run;
mod settle;
mod stripe;
mod stuck;

use chip::ChipEnd;
use online::{CardFacts, HostEnd};
use recovery::card_from_secrets;

/// What every step of the transaction being run needs: its id, operation and amount, and
/// the caller's step hook.
#[derive(Clone, Copy)]
struct Ctx<'a, 'h> {
    id: i64,
    op: Operation,
    amount: u64,
    hook: &'a RefCell<&'h mut dyn StepHook>,
}
pub use cash::{CashSale, NoDrawer};
pub use outage::{MemoryReversal, Outage};
pub use settle::{SettlementReport, batch_totals, diff_kind, settlement_receipt};
pub use stuck::{MAX_NOTE, MAX_REFERENCE, check_operator_text};

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
    /// A settlement cannot start, or cannot finish now (the words say which, and what
    /// happens next).
    #[error("{0}")]
    Settlement(String),
    /// A cash sale was refused because the cash drawer is not known to be closed
    /// (`[drawer] require_closed_before_sale`): nothing was recorded as sold, the drawer
    /// was not pulsed. The refusal is in the journal (event `drawer`).
    #[error("the cash drawer is {state}: {detail}")]
    DrawerNotClosed {
        /// What the drawer's switch reads (`unknown` when it cannot be read or there is no
        /// drawer).
        state: pos_hal::DrawerState,
        /// `Busy` for an open drawer; the drawer's error kind when it cannot be read
        /// (`PrinterOffline`, `Disconnected`, ...); `NotFound` without a drawer; `Protocol`
        /// when the printer does not report the switch.
        kind: FaultKind,
        /// What to do, or why the state is not known.
        detail: String,
    },
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
            TerminalError::Settlement(_) => FaultKind::Busy,
            TerminalError::DrawerNotClosed { kind, .. } => *kind,
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
    /// A settlement a crash or an outage had stopped: what resuming it came to.
    pub settlement: Option<String>,
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

    /// Use another clock (tests of backoff and of the settlement schedule).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// The service's clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
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

    /// Journal `id`'s move to `to` (`note` on its timeline, with `changes`), then report
    /// the note to the progress listener.
    fn step(
        &mut self,
        id: i64,
        to: State,
        note: &str,
        changes: Changes,
    ) -> Result<(), TerminalError> {
        self.journal.transition(id, to, note, changes)?;
        self.say(Some(id), note);
        Ok(())
    }

    /// As [`Terminal::step`], reporting `said` instead of the timeline's note.
    fn step_saying(
        &mut self,
        id: i64,
        to: State,
        note: &str,
        changes: Changes,
        said: &str,
    ) -> Result<(), TerminalError> {
        self.journal.transition(id, to, note, changes)?;
        self.say(Some(id), said);
        Ok(())
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
