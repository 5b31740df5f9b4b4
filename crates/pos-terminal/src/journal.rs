//! The journal: every transaction's state, timeline, device events and host messages, in
//! SQLite (WAL, `synchronous=FULL`: a state is on disk when its write returns).
//!
//! A state is written **before** the side effect it allows (the reversal record exists
//! before the request leaves). Each state write is one SQLite transaction, so one fsync.
//! Transitions are checked: an illegal one is an error, never silently written.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pos_acquirer::{Operation, WireEvent};

use crate::identity;

mod archive;
pub use archive::{ArchiveReport, archive_file, archive_files};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// A transaction's state. See the state machine in the crate documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Created; nothing done yet.
    Created,
    /// The card was read (masked PAN, keyed hash and sealed data written).
    CardRead,
    /// The reversal record is written; the request is about to leave.
    Armed,
    /// The request left.
    Sent,
    /// The host approved.
    HostApproved,
    /// The card accepted (second GENERATE AC) or no card step was needed: the sale stands.
    Committed,
    /// The receipt is being printed.
    Printing,
    /// Done: approved, receipt printed (or recorded as not wanted).
    Completed,
    /// The host or the card declined: nothing to undo.
    Declined,
    /// Stopped before anything was authorized: nothing to undo.
    Aborted,
    /// The authorization must be (or may have to be) reversed; the worker is on it.
    ReversalPending,
    /// The host took the reversal.
    Reversed,
    /// The host rejected the reversal too often: an alarm, never deleted.
    ReversalStuck,
    /// The sale stands but its receipt was not printed: reprinted when the printer is ready.
    ReceiptOwed,
}

impl State {
    /// Every state.
    pub const ALL: [State; 14] = [
        State::Created,
        State::CardRead,
        State::Armed,
        State::Sent,
        State::HostApproved,
        State::Committed,
        State::Printing,
        State::Completed,
        State::Declined,
        State::Aborted,
        State::ReversalPending,
        State::Reversed,
        State::ReversalStuck,
        State::ReceiptOwed,
    ];

    /// Stable snake_case name (as stored and shown).
    pub fn name(self) -> &'static str {
        match self {
            State::Created => "created",
            State::CardRead => "card_read",
            State::Armed => "armed",
            State::Sent => "sent",
            State::HostApproved => "host_approved",
            State::Committed => "committed",
            State::Printing => "printing",
            State::Completed => "completed",
            State::Declined => "declined",
            State::Aborted => "aborted",
            State::ReversalPending => "reversal_pending",
            State::Reversed => "reversed",
            State::ReversalStuck => "reversal_stuck",
            State::ReceiptOwed => "receipt_owed",
        }
    }

    /// The state of a stored name.
    pub fn from_name(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The states a transaction is in while it runs (start-up recovery moves them on).
    pub const IN_FLIGHT: [State; 7] = [
        State::Created,
        State::CardRead,
        State::Armed,
        State::Sent,
        State::HostApproved,
        State::Committed,
        State::Printing,
    ];

    /// True for the states a transaction may rest in (everything else is in flight, and
    /// start-up recovery moves it on).
    pub fn is_resting(self) -> bool {
        matches!(
            self,
            State::Completed
                | State::Declined
                | State::Aborted
                | State::ReversalPending
                | State::Reversed
                | State::ReversalStuck
                | State::ReceiptOwed
        )
    }

    /// Whether entering this state is a durable commit (flushed before the write returns):
    /// the reversal record before the request leaves (`Armed`), the commit before the
    /// customer is told (`Committed`), a reversal decided (`ReversalPending`, before it is
    /// sent), and every resting state (the end of the story). The other states
    /// (`Created`, `CardRead`, `Sent`, `HostApproved`, `Printing`) ride in the next durable
    /// commit: a power loss that takes them leaves the transaction at the last durable
    /// state, from which recovery reaches the same end (see the crate documentation).
    pub fn is_durable(self) -> bool {
        !matches!(
            self,
            State::Created | State::CardRead | State::Sent | State::HostApproved | State::Printing
        )
    }

    /// The states this one may move to.
    pub fn next(self) -> &'static [State] {
        use State::*;
        match self {
            Created => &[CardRead, Armed, Aborted, Declined],
            CardRead => &[Armed, Aborted, Declined],
            Armed => &[Sent, Aborted, ReversalPending],
            Sent => &[Declined, HostApproved, ReversalPending],
            HostApproved => &[Committed, ReversalPending],
            Committed => &[Printing, Completed, ReceiptOwed],
            Printing => &[Completed, ReceiptOwed, ReversalPending],
            ReceiptOwed => &[Completed, ReversalPending],
            ReversalPending => &[Reversed, ReversalStuck],
            ReversalStuck => &[Reversed, ReversalPending],
            Completed | Declined | Aborted | Reversed => &[],
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A journal that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// SQLite failed (disk full, locked beyond the busy timeout, corrupt file).
    #[error("journal {path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The directory of the journal cannot be created.
    #[error("journal directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A transition the state machine does not allow (a bug or a concurrent writer).
    #[error("transaction {id}: {from} cannot move to {to}")]
    IllegalTransition {
        /// The transaction.
        id: i64,
        /// Its state.
        from: State,
        /// The state asked for.
        to: State,
    },
    /// No such transaction.
    #[error("no transaction {0} in the journal")]
    NotFound(i64),
    /// The journal is missing or empty where this lane had one (its identity marker says
    /// so): nothing may start again at STAN 1 on its own.
    #[error(
        "journal {path} is missing or empty, but this lane had one (terminal identity {terminal_id}, \
         marker {marker}): put the last backup back at {path}, or start a new journal with \
         `posctl journal init --new-identity` (its STANs then continue past the lost ones)"
    )]
    IdentityLost {
        /// The journal file.
        path: PathBuf,
        /// The identity marker.
        marker: PathBuf,
        /// The lane's identity.
        terminal_id: String,
    },
    /// The journal belongs to another lane (or is some other SQLite file).
    #[error(
        "journal {path} belongs to terminal identity {found}, not to this lane's {expected} \
         (marker {marker}): put this lane's journal back at {path}, or start a new journal \
         with `posctl journal init --new-identity`"
    )]
    Foreign {
        /// The journal file.
        path: PathBuf,
        /// The identity marker.
        marker: PathBuf,
        /// The identity the journal holds (`none` for a file without one).
        found: String,
        /// The lane's identity (the marker's).
        expected: String,
    },
    /// SQLite's own check calls the journal damaged.
    #[error(
        "journal {path} is damaged ({detail}): the lane does not sell on it; put the last \
         backup back at {path} (keep the damaged file for the acquirer), or start a new \
         journal with `posctl journal init --new-identity`"
    )]
    Damaged {
        /// The journal file.
        path: PathBuf,
        /// SQLite's words.
        detail: String,
    },
    /// The journal file was removed or replaced while the lane ran: writes would land in a
    /// file nobody will read again.
    #[error(
        "journal {path} was removed or replaced while the lane ran ({detail}); the lane stopped \
         taking sales{}; restart the service once the journal is back (put the rescued copy or \
         the last backup at {path})",
        rescued.as_ref().map(|r| format!("; what it held is rescued in {}", r.display())).unwrap_or_default()
    )]
    Replaced {
        /// The journal file.
        path: PathBuf,
        /// What was found.
        detail: String,
        /// Where the still-open journal was copied to, if it could be.
        rescued: Option<PathBuf>,
    },
    /// The identity marker cannot be understood.
    #[error(
        "journal identity marker {path} is damaged ({detail}): restore it from the backup of \
         the state directory, or start a new journal with `posctl journal init --new-identity`"
    )]
    MarkerDamaged {
        /// The marker file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The file holds something this version does not understand.
    #[error("journal row {id}: unknown {what} {value:?}")]
    Corrupt {
        /// The row.
        id: i64,
        /// Which column.
        what: &'static str,
        /// The value.
        value: String,
    },
}

impl pos_hal::Fault for JournalError {
    fn kind(&self) -> pos_hal::FaultKind {
        match self {
            JournalError::Sqlite { .. } | JournalError::Io { .. } => pos_hal::FaultKind::Io,
            JournalError::IllegalTransition { .. } | JournalError::NotFound(_) => {
                pos_hal::FaultKind::InvalidInput
            }
            JournalError::Corrupt { .. } => pos_hal::FaultKind::Protocol,
            JournalError::IdentityLost { .. }
            | JournalError::Foreign { .. }
            | JournalError::Damaged { .. }
            | JournalError::Replaced { .. }
            | JournalError::MarkerDamaged { .. } => pos_hal::FaultKind::Unrecoverable,
        }
    }
}

/// One transaction as stored. Card data only masked (the sealed bytes are not here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Txn {
    /// Journal id.
    pub id: i64,
    /// Sale, preauth, completion, void, refund.
    #[serde(serialize_with = "ser_op")]
    pub kind: Operation,
    /// Current state.
    pub state: State,
    /// Amount, minor units.
    pub amount: u64,
    /// ISO 4217 numeric currency.
    pub currency: u16,
    /// Masked PAN (first 6, last 4).
    pub pan_masked: Option<String>,
    /// Keyed hash of the PAN (HMAC-SHA256, hex).
    pub pan_hash: Option<String>,
    /// `chip`, `swipe`, `fallback_swipe`, `reference`.
    pub entry_mode: Option<String>,
    /// Application id (hex) and label, for chip cards.
    pub aid: Option<String>,
    /// Application label.
    pub label: Option<String>,
    /// STAN of the request.
    pub stan: Option<u32>,
    /// MTI of the request.
    pub mti: Option<String>,
    /// Transmission date and time of the request `MMDDhhmmss`.
    pub transmission_time: Option<String>,
    /// Retrieval reference number from the host.
    pub rrn: Option<String>,
    /// Approval code from the host.
    pub auth_code: Option<String>,
    /// Host response code.
    pub response_code: Option<String>,
    /// Why it ended as it did (plain words).
    pub reason: Option<String>,
    /// The transaction this one refers to (void, completion).
    pub original_id: Option<i64>,
    /// The cashier chose "no receipt" (or the lane has no printer).
    pub no_receipt: bool,
    /// Voided by a later void.
    pub voided: bool,
    /// For a pre-authorization: completed by a later completion.
    pub completed_by: Option<i64>,
    /// Why a reversal is needed.
    pub reversal_reason: Option<String>,
    /// Reversal attempts made.
    pub reversal_attempts: u32,
    /// Reversal attempts the host rejected.
    pub reversal_rejections: u32,
    /// When the next reversal attempt is due (ms since the epoch).
    pub next_attempt_ms: Option<i64>,
    /// Receipt printed (count, reprints included).
    pub receipts_printed: u32,
    /// Created (ms since the epoch).
    pub created_ms: i64,
    /// Last change (ms since the epoch).
    pub updated_ms: i64,
}

fn ser_op<S: serde::Serializer>(op: &Operation, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(op.name())
}

/// An entry of a transaction's state timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// The state entered.
    pub state: State,
    /// What happened.
    pub note: String,
}

/// A device event, fault, alarm or note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventEntry {
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// The transaction, if any.
    pub txn_id: Option<i64>,
    /// `device`, `fault`, `alarm`, `prompt`, `info`, `receipt`, `fallback`, `cvm`, `oda`.
    pub kind: String,
    /// What (never card data).
    pub detail: String,
}

/// A host message sent or received (masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostMessage {
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// `request`, `reversal`.
    pub purpose: String,
    /// Attempt number (reversals).
    pub attempt: u32,
    /// `sent`, `received`, `failed`.
    pub direction: String,
    /// MTI.
    pub mti: Option<String>,
    /// STAN.
    pub stan: Option<u32>,
    /// Response code.
    pub response_code: Option<String>,
    /// Round trip (received) in ms.
    pub elapsed_ms: Option<u64>,
    /// Masked summary or the error.
    pub summary: String,
}

/// Transactions counted together by [`Journal::groups_since`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TxnGroup {
    /// Their operation.
    #[serde(serialize_with = "ser_op")]
    pub kind: Operation,
    /// Their state.
    pub state: State,
    /// Voided by a later void.
    pub voided: bool,
    /// For pre-authorizations: completed by a later completion.
    pub completed: bool,
    /// How many.
    pub count: u64,
    /// Their amounts summed, minor units.
    pub amount: u64,
}

/// Column changes that go with a state write.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Set the masked PAN.
    pub pan_masked: Option<String>,
    /// Set the PAN hash.
    pub pan_hash: Option<String>,
    /// Set the sealed card data.
    pub sealed: Option<Vec<u8>>,
    /// Set the entry mode.
    pub entry_mode: Option<String>,
    /// Set the AID.
    pub aid: Option<String>,
    /// Set the application label.
    pub label: Option<String>,
    /// Set the RRN.
    pub rrn: Option<String>,
    /// Set the auth code.
    pub auth_code: Option<String>,
    /// Set the response code.
    pub response_code: Option<String>,
    /// Set the reason.
    pub reason: Option<String>,
    /// Set the reversal reason.
    pub reversal_reason: Option<String>,
    /// Set the no-receipt flag.
    pub no_receipt: Option<bool>,
}

impl Changes {
    /// Only a reason.
    pub fn reason(reason: impl Into<String>) -> Changes {
        Changes {
            reason: Some(reason.into()),
            ..Changes::default()
        }
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The tables and their indexes. Every query the service runs finds its rows through an
/// index, never by reading a whole table (the query-plan test, `journal/query_plans.rs`,
/// fails otherwise), so a sale, recovery, the status and the day's report cost the same on a
/// journal of a million transactions as on an empty one (docs/journal.md, "Scale"):
///
/// - `txn_state`: transactions by state: recovery (in flight), pending and stuck reversals,
///   owed receipts, the status counts, the API's list by state;
/// - `txn_created`: transactions by creation time: the report of a period, and the
///   transactions old enough for retention ([`Journal::archive`]);
/// - `txn_original` (only the rows that have an original): the voids and completions
///   retention keeps with their originals, and the foreign key's check when it deletes one;
/// - `txn_sealed` (only the rows still holding sealed card data): retention's erasure of
///   the sealed data no reversal can need;
/// - `timeline_txn`, `events_txn`, `host_messages_txn`: a transaction's story (evidence),
///   and retention's copy and delete.
///
/// Transactions by id (the sale path, `list`) use the table's own key.
///
/// `CREATE ... IF NOT EXISTS`: a journal made by an older version gets a new index at its
/// first open (built once: about 3 s for `txn_created` at a million transactions).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS txn (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  state TEXT NOT NULL,
  amount INTEGER NOT NULL,
  currency INTEGER NOT NULL,
  pan_masked TEXT, pan_hash TEXT, sealed BLOB,
  entry_mode TEXT, aid TEXT, label TEXT,
  stan INTEGER, mti TEXT, transmission_time TEXT,
  rrn TEXT, auth_code TEXT, response_code TEXT,
  reason TEXT,
  original_id INTEGER REFERENCES txn(id),
  no_receipt INTEGER NOT NULL DEFAULT 0,
  voided INTEGER NOT NULL DEFAULT 0,
  completed_by INTEGER,
  reversal_reason TEXT,
  reversal_attempts INTEGER NOT NULL DEFAULT 0,
  reversal_rejections INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms INTEGER,
  receipts_printed INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS txn_state ON txn(state);
CREATE INDEX IF NOT EXISTS txn_created ON txn(created_ms);
CREATE INDEX IF NOT EXISTS txn_original ON txn(original_id) WHERE original_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS txn_sealed ON txn(created_ms) WHERE sealed IS NOT NULL;
CREATE TABLE IF NOT EXISTS timeline (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  txn_id INTEGER NOT NULL REFERENCES txn(id),
  at_ms INTEGER NOT NULL, state TEXT NOT NULL, note TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS timeline_txn ON timeline(txn_id);
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  txn_id INTEGER REFERENCES txn(id),
  at_ms INTEGER NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_txn ON events(txn_id);
CREATE TABLE IF NOT EXISTS host_messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  txn_id INTEGER NOT NULL REFERENCES txn(id),
  at_ms INTEGER NOT NULL, purpose TEXT NOT NULL, attempt INTEGER NOT NULL,
  direction TEXT NOT NULL, mti TEXT, stan INTEGER, response_code TEXT,
  elapsed_ms INTEGER, summary TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS host_messages_txn ON host_messages(txn_id);
";

const TXN_COLUMNS: &str = "id, kind, state, amount, currency, pan_masked, pan_hash, entry_mode, \
     aid, label, stan, mti, transmission_time, rrn, auth_code, response_code, reason, \
     original_id, no_receipt, voided, completed_by, reversal_reason, reversal_attempts, \
     reversal_rejections, next_attempt_ms, receipts_printed, created_ms, updated_ms";

/// The journal's SQL, one constant per statement, so that the query-plan test
/// (`journal/query_plans.rs`) runs `EXPLAIN QUERY PLAN` on exactly what the service runs.
mod sql {
    /// Count one more STAN allocated (upsert of `meta.stan_seq`).
    pub(super) const BUMP_STAN_SEQ: &str = "INSERT INTO meta(key, value) VALUES ('stan_seq', '1')
         ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)";

    /// Set the STAN counters.
    pub(super) const SET_STAN_SEQ: &str =
        "INSERT OR REPLACE INTO meta(key, value) VALUES ('stan_seq', ?1), ('stan', ?2)";

    /// A lane alarm (no transaction).
    pub(super) const INSERT_LANE_ALARM: &str =
        "INSERT INTO events(txn_id, at_ms, kind, detail) VALUES (NULL, ?1, 'alarm', ?2)";

    /// Raise the next transaction id (`sqlite_sequence` has one row per table).
    pub(super) const RAISE_TXN_SEQUENCE: &str =
        "UPDATE sqlite_sequence SET seq = max(seq, ?1) WHERE name = 'txn'";

    /// The next transaction id, in a journal without one yet.
    pub(super) const INSERT_TXN_SEQUENCE: &str =
        "INSERT INTO sqlite_sequence(name, seq) VALUES ('txn', ?1)";

    /// The counters of a new journal.
    pub(super) const INIT_META: &str =
        "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', '1'), ('stan', '0')";

    /// A `meta` value.
    pub(super) const META: &str = "SELECT value FROM meta WHERE key = ?1";

    /// A read-only open's probe: the file is a journal and readable (reads one path of the
    /// table's b-tree, where a `count(*)` would read all of it).
    pub(super) const PROBE: &str = "SELECT max(id) FROM txn";

    /// A new journal's identity.
    pub(super) const SET_IDENTITY: &str =
        "INSERT OR REPLACE INTO meta(key, value) VALUES ('terminal_id', ?1), ('stan_seq', ?2)";

    /// The highest transaction id ever given (`sqlite_sequence` has one row per table).
    pub(super) const COUNTERS: &str =
        "SELECT max(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'txn'), 0),
         COALESCE((SELECT max(id) FROM txn), 0))";

    /// A new transaction.
    pub(super) const INSERT_TXN: &str =
        "INSERT INTO txn(kind, state, amount, currency, original_id, created_ms, updated_ms)
         VALUES (?1, 'created', ?2, ?3, ?4, ?5, ?5)";

    /// A new transaction's first timeline entry.
    pub(super) const INSERT_TIMELINE_CREATED: &str =
        "INSERT INTO timeline(txn_id, at_ms, state, note) VALUES (?1, ?2, 'created', ?3)";

    /// A transaction's state and kind, before a transition.
    pub(super) const STATE_KIND: &str = "SELECT state, kind FROM txn WHERE id = ?1";

    /// The last STAN on the wire.
    pub(super) const STAN: &str = "SELECT value FROM meta WHERE key = 'stan'";

    /// The next STAN on the wire.
    pub(super) const SET_STAN: &str = "UPDATE meta SET value = ?1 WHERE key = 'stan'";

    /// The request's STAN, MTI and transmission time.
    pub(super) const ARM: &str =
        "UPDATE txn SET stan = ?2, mti = ?3, transmission_time = ?4 WHERE id = ?1";

    /// A transition with its column changes.
    pub(super) const TRANSITION: &str = "UPDATE txn SET state = ?2, updated_ms = ?3,
         pan_masked = COALESCE(?4, pan_masked), pan_hash = COALESCE(?5, pan_hash),
         sealed = CASE WHEN ?6 THEN NULL ELSE COALESCE(?7, sealed) END,
         entry_mode = COALESCE(?8, entry_mode), aid = COALESCE(?9, aid),
         label = COALESCE(?10, label), rrn = COALESCE(?11, rrn),
         auth_code = COALESCE(?12, auth_code), response_code = COALESCE(?13, response_code),
         reason = COALESCE(?14, reason), reversal_reason = COALESCE(?15, reversal_reason),
         no_receipt = COALESCE(?16, no_receipt),
         next_attempt_ms = CASE WHEN ?2 = 'reversal_pending' THEN ?3 ELSE next_attempt_ms END
         WHERE id = ?1";

    /// A timeline entry.
    pub(super) const INSERT_TIMELINE: &str =
        "INSERT INTO timeline(txn_id, at_ms, state, note) VALUES (?1, ?2, ?3, ?4)";

    /// Allocate the next STAN on its own.
    pub(super) const NEXT_STAN: &str =
        "UPDATE meta SET value = CAST(CAST(value AS INTEGER) % 999999 + 1 AS TEXT)
         WHERE key = 'stan' RETURNING CAST(value AS INTEGER)";

    /// Count a reversal attempt.
    pub(super) const REVERSAL_ATTEMPT: &str =
        "UPDATE txn SET reversal_attempts = reversal_attempts + 1, updated_ms = ?2
         WHERE id = ?1 RETURNING reversal_attempts";

    /// Count a rejection and set the next attempt.
    pub(super) const REVERSAL_RETRY: &str =
        "UPDATE txn SET reversal_rejections = reversal_rejections + ?2,
         next_attempt_ms = ?3, updated_ms = ?4
         WHERE id = ?1 RETURNING reversal_rejections";

    /// Mark an original voided or completed.
    pub(super) const MARK_ORIGINAL: &str =
        "UPDATE txn SET voided = voided OR ?2, completed_by = COALESCE(?3, completed_by),
         updated_ms = ?4 WHERE id = ?1";

    /// Count a printed receipt.
    pub(super) const RECEIPT_PRINTED: &str =
        "UPDATE txn SET receipts_printed = receipts_printed + 1 WHERE id = ?1";

    /// An event.
    pub(super) const INSERT_EVENT: &str =
        "INSERT INTO events(txn_id, at_ms, kind, detail) VALUES (?1, ?2, ?3, ?4)";

    /// A host message.
    pub(super) const INSERT_HOST_MESSAGE: &str =
        "INSERT INTO host_messages(txn_id, at_ms, purpose, attempt, direction, mti, stan,
         response_code, elapsed_ms, summary)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

    /// A transaction's sealed card data.
    pub(super) const SEALED: &str = "SELECT sealed FROM txn WHERE id = ?1";

    /// A transaction's timeline.
    pub(super) const TIMELINE: &str =
        "SELECT at_ms, state, note FROM timeline WHERE txn_id = ?1 ORDER BY seq";

    /// The events of a transaction, or of the lane.
    pub(super) const EVENTS: &str =
        "SELECT at_ms, txn_id, kind, detail FROM events WHERE txn_id IS ?1 ORDER BY seq";

    /// One transaction (after [`select_txn`]).
    pub(super) const BY_ID: &str = "WHERE id = ?1";

    /// The latest transactions, newest first (after [`select_txn`]): the table's b-tree
    /// read backwards from its end, `LIMIT` rows.
    pub(super) const LATEST: &str = "ORDER BY id DESC LIMIT ?1";

    /// Every transaction (after [`select_txn`]): a whole-table read, for exports only.
    pub(super) const ALL: &str = "ORDER BY id";

    /// The totals of the transactions created since `?1`, by what a report tells apart
    /// (through `txn_created`: the period's rows only).
    pub(super) const GROUPS_SINCE: &str = "SELECT kind, state, voided, completed_by IS NOT NULL,
         count(*), sum(amount), min(id)
         FROM txn WHERE created_ms >= ?1 GROUP BY 1, 2, 3, 4";

    /// `SELECT <every column> FROM txn <rest>`.
    pub(super) fn select_txn(rest: &str) -> String {
        format!("SELECT {} FROM txn {rest}", super::TXN_COLUMNS)
    }

    /// `state IN ('a', 'b')` for `states` (their names are fixed words, never input).
    pub(super) fn state_in(states: &[super::State]) -> String {
        let names: Vec<String> = states.iter().map(|s| format!("'{}'", s.name())).collect();
        format!("state IN ({})", names.join(", "))
    }

    /// Transactions in any of `states`, oldest first (after [`select_txn`]).
    pub(super) fn in_states(states: &[super::State]) -> String {
        format!("WHERE {} ORDER BY id", state_in(states))
    }

    /// The latest `?1` transactions in any of `states`, newest first (after [`select_txn`]).
    pub(super) fn latest_in_states(states: &[super::State]) -> String {
        format!("WHERE {} ORDER BY id DESC LIMIT ?1", state_in(states))
    }

    /// How many transactions are in any of `states`.
    pub(super) fn count_in_states(states: &[super::State]) -> String {
        format!("SELECT count(*) FROM txn WHERE {}", state_in(states))
    }

    /// A transaction's host messages.
    pub(super) const HOST_MESSAGES: &str =
        "SELECT at_ms, purpose, attempt, direction, mti, stan, response_code, elapsed_ms,
         summary FROM host_messages WHERE txn_id = ?1 ORDER BY seq";
}

/// What was just committed to the journal, for a watcher (live events, metrics). Carries no
/// card data: states, ids, and the same plain notes the journal stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A transaction was created or moved to a new state.
    State {
        /// Transaction id.
        id: i64,
        /// The operation.
        operation: Operation,
        /// The state before (`None` when created).
        from: Option<State>,
        /// The state now.
        to: State,
        /// The timeline note.
        note: String,
    },
    /// A device event, fault, alarm or note was recorded.
    Event {
        /// The transaction it belongs to, if any.
        txn: Option<i64>,
        /// `fault`, `alarm`, `prompt`, `info`, `fallback`, ...
        kind: String,
        /// What happened.
        detail: String,
    },
}

/// Called after each commit (see [`Journal::set_observer`]).
pub type Observer = Box<dyn FnMut(&Change) + Send>;

/// The journal.
pub struct Journal {
    conn: Connection,
    path: PathBuf,
    commits: u64,
    crash_after: Option<u64>,
    /// Fault injection: writes fail as on a full disk once this many have committed.
    fail_after: Option<u64>,
    observer: Option<Observer>,
    /// The identity marker this handle keeps; `None` for a read-only handle.
    marker: Option<PathBuf>,
    /// The lane's identity (empty for a read-only handle of a journal without one).
    terminal_id: String,
    /// Counters reserved in the marker: (STAN, transaction id).
    reserved: (u64, u64),
    /// The journal file's (device, inode) at open, to notice it removed or replaced.
    file_id: Option<(u64, u64)>,
    /// Set once the file was found removed or replaced: every write fails with it.
    broken: Option<(String, Option<PathBuf>)>,
    /// STANs used while the journal could not be written ([`Journal::stan_in_memory`]),
    /// not yet counted in it.
    memory_stans: u64,
    /// The connection's `synchronous` level: `Some(true)` FULL, `Some(false)` NORMAL.
    sync_full: Option<bool>,
    /// Fault injection: a power loss after the Nth commit.
    power_loss: Option<PowerLoss>,
    /// What was checked at open (`None` for a read-only handle).
    start_check: Option<StartCheck>,
}

/// The state of the journal's files at the last durable commit, and when to lose power.
struct PowerLoss {
    after: u64,
    /// The main file and the WAL (if there was one) at the last durable commit.
    snapshot: Option<(Vec<u8>, Option<Vec<u8>>)>,
}

impl PowerLoss {
    fn wal(path: &Path) -> PathBuf {
        PathBuf::from(format!("{}-wal", path.display()))
    }

    fn snapshot(&mut self, path: &Path) {
        if let Ok(db) = std::fs::read(path) {
            self.snapshot = Some((db, std::fs::read(Self::wal(path)).ok()));
        }
    }

    /// Put the files back as at the last durable commit, drop the shared-memory index (a
    /// restarted machine has none), and die.
    fn lose_power(&self, path: &Path) -> ! {
        if let Some((db, wal)) = &self.snapshot {
            let _ = std::fs::write(path, db);
            match wal {
                Some(w) => {
                    let _ = std::fs::write(Self::wal(path), w);
                }
                None => {
                    let _ = std::fs::remove_file(Self::wal(path));
                }
            }
            let _ = std::fs::remove_file(format!("{}-shm", path.display()));
        }
        crate::inject::crash_now()
    }
}

/// The most bytes a journal may have for [`Journal::open`] to run SQLite's full
/// `integrity_check` (every page, row and index entry) at every open. See [`StartCheck`]
/// for what happens above it.
pub const FULL_CHECK_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Which of SQLite's checks [`Journal::open`] ran over the file before using it.
///
/// Both of SQLite's checks read the whole file, so their cost grows with the journal: at a
/// million transactions (about 1.5 GB) a `quick_check` takes 1.5 to 4 s, where the rest of
/// the start takes milliseconds. The start stays short by checking the whole file only when
/// there is a reason to:
///
/// - up to [`FULL_CHECK_MAX_BYTES`]: the full `integrity_check`, every time (milliseconds
///   at that size);
/// - above it, after a crash or a power loss (the identity marker records no clean close,
///   or there is no marker): `quick_check` of the whole file, before the lane sells again.
///   A power loss on storage that does not honour its flushes is what damages an SQLite
///   file, and this is the start after one: it may take seconds, and it should;
/// - above it, after a clean close (the marker records it): no whole-file check. The file
///   was closed consistently by this code; damage since (the storage failing while the
///   lane was off) shows as an error on the first page that is read (the lane then stops
///   selling, see [`crate::service::Outage`]), and `posctl journal check` runs the full
///   `integrity_check` on demand, safely while the service runs (it only reads): run it
///   from a nightly timer on large journals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartCheck {
    /// A new, empty file: nothing to check.
    New,
    /// SQLite's full `integrity_check`.
    Full,
    /// SQLite's `quick_check` (the whole file's structure, not the index contents).
    Quick,
    /// None: a large journal closed cleanly.
    SkippedAfterCleanClose,
}

/// What [`Journal::init_new_identity`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewIdentity {
    /// The new terminal identity.
    pub terminal_id: String,
    /// The previous one, when its marker could be read.
    pub previous: Option<String>,
    /// The files moved aside (`NAME.replaced-MILLIS`).
    pub moved_aside: Vec<PathBuf>,
    /// The STAN the next request carries.
    pub next_stan: u32,
}

/// What [`Journal::check`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The journal file.
    pub path: PathBuf,
    /// SQLite's `integrity_check`: `["ok"]` for a sound file, else its findings.
    pub integrity: Vec<String>,
    /// The journal's terminal identity (`None`: a journal from before identities).
    pub terminal_id: Option<String>,
    /// The identity marker beside it and its identity, when there is one.
    pub marker: Option<(PathBuf, String)>,
    /// STANs allocated so far (counted without wrapping) and the last one on the wire.
    pub stan_seq: u64,
    /// Transactions recorded.
    pub transactions: u64,
    /// Transactions still in flight (a crash or an outage left them; recovery moves them).
    pub in_flight: u64,
}

impl CheckReport {
    /// Sound file, and the identity matches the marker (or there is no marker yet).
    pub fn ok(&self) -> bool {
        self.integrity == ["ok"]
            && match (&self.terminal_id, &self.marker) {
                (Some(j), Some((_, m))) => j == m,
                (_, None) => true,
                (None, Some(_)) => false,
            }
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("commits", &self.commits)
            .finish()
    }
}

/// A `meta` value.
fn meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(sql::META, [key], |r| r.get(0)).optional()
}

/// The journal file's (device, inode), `None` when it is not there.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// SQLite's answer for a file that is not a sound database is [`JournalError::Damaged`];
/// anything else stays an SQLite error.
fn damaged_or(path: &Path, e: rusqlite::Error) -> JournalError {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => JournalError::Damaged {
            path: path.to_path_buf(),
            detail: e.to_string(),
        },
        _ => JournalError::Sqlite {
            path: path.to_path_buf(),
            source: e,
        },
    }
}

/// SQLite's `integrity_check` (`full`) or `quick_check` of the file at open.
fn integrity(conn: &Connection, path: &Path, full: bool) -> Result<(), JournalError> {
    let pragma = if full {
        "integrity_check"
    } else {
        "quick_check"
    };
    let rows: Vec<String> = conn
        .prepare(&format!("PRAGMA {pragma}(20)"))
        .and_then(|mut st| {
            st.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(|e| damaged_or(path, e))?;
    if rows == ["ok"] {
        return Ok(());
    }
    Err(JournalError::Damaged {
        path: path.to_path_buf(),
        detail: format!("SQLite's {pragma}: {}", rows.join("; ")),
    })
}

/// Count one more STAN allocated (`meta.stan_seq`, never wrapping).
fn bump_stan_seq(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(sql::BUMP_STAN_SEQ, [])?;
    Ok(())
}

/// Set the STAN counter to `seq` (and the wire STAN to match: the next is `seq + 1`).
fn set_stan_seq(conn: &Connection, seq: u64) -> rusqlite::Result<()> {
    conn.execute(
        sql::SET_STAN_SEQ,
        params![seq.to_string(), (seq % 999_999).to_string()],
    )?;
    Ok(())
}

/// Continue STANs after `stan_seq` and transaction ids after `max_id`, with an alarm event
/// saying why, in one SQLite transaction.
fn jump_counters(
    conn: &Connection,
    stan_seq: u64,
    max_id: u64,
    note: &str,
) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    set_stan_seq(&tx, stan_seq)?;
    set_txn_sequence(&tx, max_id)?;
    tx.execute(sql::INSERT_LANE_ALARM, params![now_ms(), note])?;
    tx.commit()
}

/// Make the next AUTOINCREMENT transaction id come after `max_id`.
fn set_txn_sequence(conn: &Connection, max_id: u64) -> rusqlite::Result<()> {
    let id = i64::try_from(max_id).unwrap_or(i64::MAX);
    let updated = conn.execute(sql::RAISE_TXN_SEQUENCE, [id])?;
    if updated == 0 {
        conn.execute(sql::INSERT_TXN_SEQUENCE, [id])?;
    }
    Ok(())
}

/// The operation named `name` (`sale`, `preauth`, `completion`, `void`, `refund`).
pub fn op_from_name(name: &str) -> Option<Operation> {
    [
        Operation::Sale,
        Operation::PreAuth,
        Operation::Completion,
        Operation::Void,
        Operation::Refund,
    ]
    .into_iter()
    .find(|o| o.name() == name)
}

impl Journal {
    /// Open (or create) the journal at `path`: WAL, `synchronous=FULL`, a 5 s busy timeout
    /// (another process, e.g. `posctl journal`, may be reading); SQLite's integrity check
    /// when there is a reason for one (see [`StartCheck`]); the lane's identity checked
    /// against its marker ([`crate::identity`]): a missing, empty or foreign journal where
    /// the lane had one is refused, and one behind the marker (an older copy put back)
    /// continues its STANs and ids past the marker's.
    ///
    /// # Errors
    /// [`JournalError::IdentityLost`], [`JournalError::Foreign`], [`JournalError::Damaged`]
    /// (also for a file that is not a database), [`JournalError::MarkerDamaged`];
    /// [`JournalError::Io`] when the directory or the marker cannot be written,
    /// [`JournalError::Sqlite`] for other SQLite failures.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| JournalError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let marker_file = identity::marker_path(path);
        let marker = identity::Marker::load(&marker_file)?;
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if let (Some(m), 0) = (&marker, size) {
            return Err(JournalError::IdentityLost {
                path: path.to_path_buf(),
                marker: marker_file,
                terminal_id: m.terminal_id.clone(),
            });
        }
        let sq = |source| JournalError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(sq)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(sq)?;
        let closed_cleanly = marker.as_ref().is_some_and(|m| m.closed_at.is_some());
        let start_check = match size {
            0 => StartCheck::New,
            s if s <= FULL_CHECK_MAX_BYTES => StartCheck::Full,
            _ if closed_cleanly => StartCheck::SkippedAfterCleanClose,
            _ => StartCheck::Quick,
        };
        match start_check {
            StartCheck::Full => integrity(&conn, path, true)?,
            StartCheck::Quick => integrity(&conn, path, false)?,
            StartCheck::New | StartCheck::SkippedAfterCleanClose => {}
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| damaged_or(path, e))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sq)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sq)?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| damaged_or(path, e))?;
        conn.execute(sql::INIT_META, []).map_err(sq)?;
        let mut j = Journal {
            conn,
            path: path.to_path_buf(),
            commits: 0,
            crash_after: None,
            fail_after: None,
            observer: None,
            marker: Some(marker_file.clone()),
            terminal_id: String::new(),
            reserved: (0, 0),
            file_id: None,
            broken: None,
            memory_stans: 0,
            sync_full: Some(true),
            power_loss: None,
            start_check: Some(start_check),
        };
        j.adopt_identity(marker)?;
        j.file_id = file_id(path);
        Ok(j)
    }

    /// Open the journal at `path` for reading only: nothing is created or written (no
    /// schema, no identity marker), so a copy handed to a technician, a read-only
    /// filesystem or a file without write permission can be listed, reported and backed
    /// up. A copy whose directory cannot hold SQLite's shared-memory file is opened
    /// `immutable`. Every write method fails (`SQLITE_READONLY`).
    ///
    /// # Errors
    /// [`JournalError::Sqlite`] when the file cannot be opened or read (missing, not a
    /// database, not readable).
    pub fn open_read_only(path: &Path) -> Result<Journal, JournalError> {
        use rusqlite::OpenFlags;
        let sq = |source| JournalError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        if !path.is_file() {
            return Err(sq(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(format!("no journal file at {}", path.display())),
            )));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let uri = |extra: &str| {
            let mut p = String::from("file:");
            for b in path.to_string_lossy().bytes() {
                match b {
                    b'%' | b'?' | b'#' => p.push_str(&format!("%{b:02X}")),
                    _ => p.push(char::from(b)),
                }
            }
            format!("{p}?mode=ro{extra}")
        };
        let probe = |conn: &Connection| -> rusqlite::Result<Option<i64>> {
            conn.query_row(sql::PROBE, [], |r| r.get(0))
        };
        let conn = match Connection::open_with_flags(uri(""), flags) {
            Ok(c) if probe(&c).is_ok() => c,
            // No write access to the directory (WAL needs its -shm file): read the file as
            // it is, without locking.
            _ => {
                let c = Connection::open_with_flags(uri("&immutable=1"), flags).map_err(sq)?;
                probe(&c).map_err(sq)?;
                c
            }
        };
        conn.busy_timeout(Duration::from_secs(5)).map_err(sq)?;
        let terminal_id = meta(&conn, "terminal_id")
            .ok()
            .flatten()
            .unwrap_or_default();
        Ok(Journal {
            conn,
            path: path.to_path_buf(),
            commits: 0,
            crash_after: None,
            fail_after: None,
            observer: None,
            marker: None,
            terminal_id,
            reserved: (0, 0),
            file_id: None,
            broken: None,
            memory_stans: 0,
            sync_full: None,
            power_loss: None,
            start_check: None,
        })
    }

    /// Which whole-file check [`Journal::open`] ran (`None` for a read-only handle).
    pub fn start_check(&self) -> Option<StartCheck> {
        self.start_check
    }

    /// The journal's identity against the marker: adopt, create or refuse; continue the
    /// counters past the marker's floor; write the marker (open).
    fn adopt_identity(&mut self, marker: Option<identity::Marker>) -> Result<(), JournalError> {
        let marker_file = self.marker.clone().unwrap_or_default();
        let path = self.path.clone();
        let sq = move |source| JournalError::Sqlite {
            path: path.clone(),
            source,
        };
        let journal_id = meta(&self.conn, "terminal_id").map_err(&sq)?;
        let (mut stan_seq, mut max_id) = self.counters()?;
        let terminal_id = match (journal_id, &marker) {
            (Some(j), Some(m)) if j != m.terminal_id => {
                return Err(JournalError::Foreign {
                    path: self.path.clone(),
                    marker: marker_file,
                    found: j,
                    expected: m.terminal_id.clone(),
                });
            }
            (Some(j), _) => j,
            (None, Some(m)) => {
                return Err(JournalError::Foreign {
                    path: self.path.clone(),
                    marker: marker_file,
                    found: "none".into(),
                    expected: m.terminal_id.clone(),
                });
            }
            // A new journal, or one from before identities: it gets one now.
            (None, None) => {
                let id = identity::new_terminal_id(&self.path)?;
                self.conn
                    .execute(sql::SET_IDENTITY, params![id, stan_seq.to_string()])
                    .map_err(&sq)?;
                id
            }
        };
        if let Some(m) = &marker {
            let (stan_floor, id_floor) = m.floor();
            let mut notes = Vec::new();
            if stan_seq < stan_floor {
                notes.push(format!(
                    "STANs continue after {} instead of {} (STAN {} next)",
                    stan_floor,
                    stan_seq,
                    stan_floor % 999_999 + 1
                ));
                stan_seq = stan_floor;
            }
            if max_id < id_floor {
                notes.push(format!(
                    "transaction ids continue after {id_floor} instead of {max_id}"
                ));
                max_id = id_floor;
            }
            if !notes.is_empty() {
                let note = format!(
                    "the journal is behind this lane's identity marker (an older copy put back?): {}",
                    notes.join("; ")
                );
                log::warn!("{}: {note}", self.path.display());
                jump_counters(&self.conn, stan_seq, max_id, &note).map_err(&sq)?;
            }
        } else if max_id > 0 {
            log::warn!(
                "{}: no identity marker beside the journal: writing one ({})",
                self.path.display(),
                marker_file.display()
            );
        }
        let reserved = (
            stan_seq.max(marker.as_ref().map_or(0, |m| m.stan_reserved)) + identity::RESERVE,
            max_id.max(marker.as_ref().map_or(0, |m| m.id_reserved)) + identity::RESERVE,
        );
        identity::Marker {
            terminal_id: terminal_id.clone(),
            stan_reserved: reserved.0,
            id_reserved: reserved.1,
            closed_at: None,
        }
        .store(&marker_file)?;
        self.terminal_id = terminal_id;
        self.reserved = reserved;
        Ok(())
    }

    /// (STANs allocated so far, highest transaction id ever given): from `stan_seq` (or, in
    /// a journal from before it, the wire STAN) and SQLite's AUTOINCREMENT sequence.
    fn counters(&self) -> Result<(u64, u64), JournalError> {
        let sq = self.sq();
        let stan_seq = match meta(&self.conn, "stan_seq").map_err(&sq)? {
            Some(v) => v.parse::<u64>().unwrap_or(0),
            None => meta(&self.conn, "stan")
                .map_err(&sq)?
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0),
        };
        let max_id: i64 = self
            .conn
            .query_row(sql::COUNTERS, [], |r| r.get(0))
            .map_err(&sq)?;
        Ok((
            stan_seq + self.memory_stans,
            u64::try_from(max_id).unwrap_or(0),
        ))
    }

    /// A STAN for a message that must leave while the journal cannot be written (a
    /// reversal sent from memory during a storage outage): the next one, reserved in the
    /// identity marker when that can still be written (it usually is: the reservation runs
    /// a hundred ahead), and counted into the journal by the next STAN write
    /// ([`Journal::flush_memory_stans`]), so it is never given out again.
    pub fn stan_in_memory(&mut self) -> u32 {
        let (seq, max_id) = self
            .counters()
            .unwrap_or((self.reserved.0, self.reserved.1));
        let next = seq + 1;
        if let Err(e) = self.reserve(next, max_id) {
            log::error!("STAN {next} used beyond the identity marker's reservation: {e}");
        }
        self.memory_stans += 1;
        u32::try_from((next - 1) % 999_999 + 1).unwrap_or(1)
    }

    /// Count the STANs used from memory into the journal. Called before every STAN
    /// allocation; a no-op when there are none.
    ///
    /// # Errors
    /// As every write ([`JournalError::Sqlite`] on a full disk...): they stay counted in
    /// memory until it succeeds.
    pub fn flush_memory_stans(&mut self) -> Result<(), JournalError> {
        if self.memory_stans == 0 {
            return Ok(());
        }
        self.writable()?;
        self.sync(false)?;
        let (seq, _) = self.counters()?;
        set_stan_seq(&self.conn, seq).map_err(self.sq())?;
        self.memory_stans = 0;
        self.committed(false);
        Ok(())
    }

    /// Start a new journal at `path` with a new identity, after the lane's journal was lost,
    /// emptied, damaged or replaced (`posctl journal init --new-identity`). What is at
    /// `path` (the journal, its WAL and shared-memory files, the old marker) is moved aside
    /// to `NAME.replaced-MILLIS`, never deleted; the new journal's STANs and ids continue
    /// [`identity::NEW_IDENTITY_JUMP`] past everything the old marker says may have been used,
    /// so the host never sees a STAN twice. An alarm event in the new journal says so.
    ///
    /// Call it only when [`Journal::open`] refused the journal; it does not look at it.
    ///
    /// # Errors
    /// [`JournalError::Io`] when a file cannot be moved or the marker written;
    /// [`JournalError::Sqlite`] when the new journal cannot be created.
    pub fn init_new_identity(path: &Path) -> Result<NewIdentity, JournalError> {
        let marker_file = identity::marker_path(path);
        let old = identity::Marker::load(&marker_file).ok().flatten();
        let stamp = now_ms();
        let mut moved_aside = Vec::new();
        let name = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let mut candidates: Vec<PathBuf> = ["", "-wal", "-shm"]
            .iter()
            .map(|s| PathBuf::from(format!("{}{s}", path.display())))
            .collect();
        candidates.push(marker_file.clone());
        for p in candidates {
            if p.exists() {
                let aside = p.with_file_name(format!("{}.replaced-{stamp}", name(&p)));
                std::fs::rename(&p, &aside).map_err(|source| JournalError::Io {
                    path: p.clone(),
                    source,
                })?;
                moved_aside.push(aside);
            }
        }
        let (stan_floor, id_floor) = old
            .as_ref()
            .map(|m| {
                let (s, i) = m.floor();
                (s.max(m.stan_reserved), i.max(m.id_reserved))
            })
            .unwrap_or((0, 0));
        let stan_seq = stan_floor + identity::NEW_IDENTITY_JUMP;
        let id = id_floor + identity::NEW_IDENTITY_JUMP;
        let mut j = Journal::open(path)?;
        let note = format!(
            "new journal identity {} (previous {}): STANs continue after {stan_seq} and ids after \
             {id}, past everything the previous journal may have used; set aside: {}",
            j.terminal_id,
            old.as_ref().map_or("unknown", |m| m.terminal_id.as_str()),
            if moved_aside.is_empty() {
                "nothing".to_string()
            } else {
                moved_aside
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        j.reserve(stan_seq, id)?;
        jump_counters(&j.conn, stan_seq, id, &note).map_err(j.sq())?;
        log::warn!("{}: {note}", path.display());
        Ok(NewIdentity {
            terminal_id: j.terminal_id.clone(),
            previous: old.map(|m| m.terminal_id),
            moved_aside,
            next_stan: u32::try_from(stan_seq % 999_999 + 1).unwrap_or(1),
        })
    }

    /// The lane's terminal identity (empty for a read-only handle of a journal from before
    /// identities).
    pub fn terminal_id(&self) -> &str {
        &self.terminal_id
    }

    /// Fault injection for storage tests: once `n` writes have committed through this
    /// handle, every write fails as on a full disk (`SQLITE_FULL`), until set to `None`.
    pub fn set_fail_writes_after(&mut self, n: Option<u64>) {
        self.fail_after = n;
    }

    /// Before each write: a journal found removed or replaced stays refused, and the
    /// injected disk-full fault applies.
    fn writable(&self) -> Result<(), JournalError> {
        if let Some((detail, rescued)) = &self.broken {
            return Err(JournalError::Replaced {
                path: self.path.clone(),
                detail: detail.clone(),
                rescued: rescued.clone(),
            });
        }
        if self.fail_after.is_some_and(|n| self.commits >= n) {
            return Err(JournalError::Sqlite {
                path: self.path.clone(),
                source: rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                    Some("database or disk is full (injected)".into()),
                ),
            });
        }
        Ok(())
    }

    /// Whether the journal file is still the one opened: the same file (device and inode)
    /// at the same path. When it was removed or replaced, the still-open journal is copied
    /// to `NAME.rescued-MILLIS` beside it (nothing it held is lost), and this handle
    /// refuses every write from now on. A read-only handle is not checked.
    ///
    /// # Errors
    /// [`JournalError::Replaced`], naming the rescued copy.
    pub fn check_file(&mut self) -> Result<(), JournalError> {
        if self.broken.is_some() {
            return self.writable();
        }
        let Some(opened) = self.file_id else {
            return Ok(());
        };
        let now = file_id(&self.path);
        if now == Some(opened) {
            return Ok(());
        }
        let detail = match now {
            None => "the file is gone".to_string(),
            Some(_) => "another file is in its place".to_string(),
        };
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "journal".into());
        let rescue = self
            .path
            .with_file_name(format!("{name}.rescued-{}", now_ms()));
        let rescued = match self.backup(&rescue) {
            Ok(()) => Some(rescue),
            Err(e) => {
                log::error!("the removed journal could not be rescued: {e}");
                None
            }
        };
        log::error!("{}: {detail}", self.path.display());
        self.broken = Some((detail, rescued));
        self.writable()
    }

    /// SQLite's full `integrity_check`, the identity against the marker, and the counters.
    /// Reads only.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`] when the file cannot be read at all;
    /// [`JournalError::MarkerDamaged`] for a marker that cannot be understood.
    pub fn check(&self) -> Result<CheckReport, JournalError> {
        let sq = self.sq();
        let mut stmt = self
            .conn
            .prepare("PRAGMA integrity_check(50)")
            .map_err(&sq)?;
        let integrity = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(&sq)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&sq)?;
        let terminal_id = meta(&self.conn, "terminal_id").map_err(&sq)?;
        let marker_file = identity::marker_path(&self.path);
        let marker = identity::Marker::load(&marker_file)?.map(|m| (marker_file, m.terminal_id));
        let (stan_seq, _) = self.counters()?;
        let count = |query: &str| -> Result<u64, JournalError> {
            self.conn
                .query_row(query, [], |r| r.get::<_, i64>(0))
                .map(|n| u64::try_from(n).unwrap_or(0))
                .map_err(&sq)
        };
        Ok(CheckReport {
            path: self.path.clone(),
            integrity,
            terminal_id,
            marker,
            stan_seq,
            transactions: count("SELECT count(*) FROM txn")?,
            in_flight: count(&sql::count_in_states(&State::IN_FLIGHT))?,
        })
    }

    /// Reserve counters in the marker before `stan_seq` / `id` is used, when they pass the
    /// reservation (every [`identity::RESERVE`]).
    fn reserve(&mut self, stan_seq: u64, id: u64) -> Result<(), JournalError> {
        let Some(marker) = self.marker.clone() else {
            return Ok(());
        };
        if stan_seq <= self.reserved.0 && id <= self.reserved.1 {
            return Ok(());
        }
        let reserved = (
            self.reserved.0.max(stan_seq + identity::RESERVE),
            self.reserved.1.max(id + identity::RESERVE),
        );
        identity::Marker {
            terminal_id: self.terminal_id.clone(),
            stan_reserved: reserved.0,
            id_reserved: reserved.1,
            closed_at: None,
        }
        .store(&marker)?;
        self.reserved = reserved;
        Ok(())
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fault injection for crash tests: kill the process (SIGKILL) right after the `n`th
    /// write committed through this handle, so every journal edge can be tested.
    pub fn set_crash_after_commits(&mut self, n: Option<u64>) {
        self.crash_after = n;
    }

    /// Tell `observer` of every state change and event after it is committed (never
    /// before: a watcher never sees what a crash could undo).
    pub fn set_observer(&mut self, observer: Observer) {
        self.observer = Some(observer);
    }

    /// Before a write: the durability it needs. A durable commit (`synchronous=FULL`) is
    /// on the storage when it returns, with every commit before it (one fsync of the WAL);
    /// any other (`synchronous=NORMAL`) survives a crash of the process but may be lost,
    /// with the commits after the last durable one, to a power loss or a kernel crash. See
    /// [`State::is_durable`] for which states are which.
    fn sync(&mut self, durable: bool) -> Result<(), JournalError> {
        if self.sync_full != Some(durable) {
            self.conn
                .pragma_update(None, "synchronous", if durable { "FULL" } else { "NORMAL" })
                .map_err(self.sq())?;
            self.sync_full = Some(durable);
        }
        Ok(())
    }

    fn committed(&mut self, durable: bool) {
        self.commits += 1;
        if self.crash_after == Some(self.commits) {
            crate::inject::crash_now();
        }
        if let Some(power) = self.power_loss.as_mut() {
            if durable {
                power.snapshot(&self.path);
            }
            if power.after == self.commits {
                power.lose_power(&self.path);
            }
        }
    }

    /// Fault injection for power-loss tests: right after the `n`th write committed through
    /// this handle, the journal's files are put back as they were at the last durable
    /// commit (what a power loss leaves: every commit since then may be lost) and the
    /// process is killed (SIGKILL). Takes a snapshot of the journal now, so a loss before
    /// the first durable commit goes back to the state at this call.
    pub fn set_power_loss_after_commits(&mut self, n: Option<u64>) {
        self.power_loss = n.map(|after| {
            let mut p = PowerLoss {
                after,
                snapshot: None,
            };
            p.snapshot(&self.path);
            p
        });
    }

    fn notify(&mut self, change: Change) {
        if let Some(o) = self.observer.as_mut() {
            o(&change);
        }
    }

    /// Write transactions committed through this handle (each is one fsync of the WAL).
    pub fn commits(&self) -> u64 {
        self.commits
    }

    /// As [`Journal::sq`], not borrowing the journal (for methods that write in between).
    fn sq_owned(&self) -> impl Fn(rusqlite::Error) -> JournalError + 'static {
        let path = self.path.clone();
        move |source| JournalError::Sqlite {
            path: path.clone(),
            source,
        }
    }

    fn sq(&self) -> impl Fn(rusqlite::Error) -> JournalError + '_ {
        move |source| JournalError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Start a transaction in [`State::Created`].
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn create(
        &mut self,
        kind: Operation,
        amount: u64,
        currency: u16,
        original_id: Option<i64>,
        note: &str,
    ) -> Result<i64, JournalError> {
        self.writable()?;
        self.sync(false)?;
        let now = now_ms();
        let path = self.path.clone();
        let sq = move |source| JournalError::Sqlite {
            path: path.clone(),
            source,
        };
        let (stan_seq, max_id) = self.counters()?;
        self.reserve(stan_seq, max_id + 1)?;
        let tx = self.conn.transaction().map_err(&sq)?;
        tx.execute(
            sql::INSERT_TXN,
            params![
                kind.name(),
                i64::try_from(amount).unwrap_or(i64::MAX),
                currency,
                original_id,
                now
            ],
        )
        .map_err(&sq)?;
        let id = tx.last_insert_rowid();
        tx.execute(sql::INSERT_TIMELINE_CREATED, params![id, now, note])
            .map_err(&sq)?;
        tx.commit().map_err(&sq)?;
        self.committed(false);
        self.notify(Change::State {
            id,
            operation: kind,
            from: None,
            to: State::Created,
            note: note.to_string(),
        });
        Ok(id)
    }

    /// Move `id` to `to`, with the column changes and a timeline note, in one SQLite
    /// transaction. Final states without a possible reversal (declined, aborted, reversed)
    /// wipe the sealed card data.
    ///
    /// # Errors
    /// [`JournalError::IllegalTransition`], [`JournalError::NotFound`],
    /// [`JournalError::Sqlite`].
    pub fn transition(
        &mut self,
        id: i64,
        to: State,
        note: &str,
        changes: Changes,
    ) -> Result<(), JournalError> {
        self.write_state(id, to, note, changes, None)
    }

    /// [`Journal::transition`] to [`State::Armed`], allocating the next STAN (1..=999999,
    /// wrapping) and recording the request's MTI and transmission time in the same write.
    ///
    /// # Errors
    /// As [`Journal::transition`].
    pub fn arm(
        &mut self,
        id: i64,
        mti: &str,
        transmission_time: &str,
        note: &str,
        changes: Changes,
    ) -> Result<u32, JournalError> {
        let mut stan = 0;
        self.write_state(
            id,
            State::Armed,
            note,
            changes,
            Some((&mut stan, mti, transmission_time)),
        )?;
        Ok(stan)
    }

    fn write_state(
        &mut self,
        id: i64,
        to: State,
        note: &str,
        c: Changes,
        arm: Option<(&mut u32, &str, &str)>,
    ) -> Result<(), JournalError> {
        self.writable()?;
        self.sync(to.is_durable())?;
        if arm.is_some() {
            self.flush_memory_stans()?;
            let (stan_seq, max_id) = self.counters()?;
            self.reserve(stan_seq + 1, max_id)?;
        }
        let now = now_ms();
        let path = self.path.clone();
        let sq = move |source| JournalError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(&sq)?;
        let row: Option<(String, String)> = tx
            .query_row(sql::STATE_KIND, [id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(&sq)?;
        let (from, kind) = row.ok_or(JournalError::NotFound(id))?;
        let operation = op_from_name(&kind).ok_or(JournalError::Corrupt {
            id,
            what: "kind",
            value: kind,
        })?;
        let from = State::from_name(&from).ok_or(JournalError::Corrupt {
            id,
            what: "state",
            value: from,
        })?;
        if !from.next().contains(&to) {
            return Err(JournalError::IllegalTransition { id, from, to });
        }
        if let Some((stan_out, mti, tt)) = arm {
            let last: String = tx.query_row(sql::STAN, [], |r| r.get(0)).map_err(&sq)?;
            let stan = last.parse::<u32>().unwrap_or(0) % 999_999 + 1;
            tx.execute(sql::SET_STAN, [stan.to_string()]).map_err(&sq)?;
            bump_stan_seq(&tx).map_err(&sq)?;
            tx.execute(sql::ARM, params![id, stan, mti, tt])
                .map_err(&sq)?;
            *stan_out = stan;
        }
        let wipe = matches!(to, State::Declined | State::Aborted | State::Reversed);
        tx.execute(
            sql::TRANSITION,
            params![
                id,
                to.name(),
                now,
                c.pan_masked,
                c.pan_hash,
                wipe,
                c.sealed,
                c.entry_mode,
                c.aid,
                c.label,
                c.rrn,
                c.auth_code,
                c.response_code,
                c.reason,
                c.reversal_reason,
                c.no_receipt,
            ],
        )
        .map_err(&sq)?;
        tx.execute(sql::INSERT_TIMELINE, params![id, now, to.name(), note])
            .map_err(&sq)?;
        tx.commit().map_err(&sq)?;
        self.committed(to.is_durable());
        self.notify(Change::State {
            id,
            operation,
            from: Some(from),
            to,
            note: note.to_string(),
        });
        Ok(())
    }

    /// Allocate the next STAN (1..=999999, wrapping) on its own (reversals, echoes).
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn next_stan(&mut self) -> Result<u32, JournalError> {
        self.writable()?;
        self.sync(false)?;
        self.flush_memory_stans()?;
        let (stan_seq, max_id) = self.counters()?;
        self.reserve(stan_seq + 1, max_id)?;
        let path = self.path.clone();
        let sq = move |source| JournalError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.unchecked_transaction().map_err(&sq)?;
        let stan: u32 = tx
            .query_row(sql::NEXT_STAN, [], |r| r.get(0))
            .map_err(&sq)?;
        bump_stan_seq(&tx).map_err(&sq)?;
        tx.commit().map_err(&sq)?;
        self.committed(false);
        Ok(stan)
    }

    /// Record a reversal attempt about to be made (before it is sent): attempts + 1.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn reversal_attempt(&mut self, id: i64) -> Result<u32, JournalError> {
        self.writable()?;
        self.sync(false)?;
        let sq = self.sq();
        let n: u32 = self
            .conn
            .query_row(sql::REVERSAL_ATTEMPT, params![id, now_ms()], |r| r.get(0))
            .map_err(sq)?;
        self.committed(false);
        Ok(n)
    }

    /// After an attempt that did not reverse: count a rejection (when the host rejected)
    /// and set when the next attempt is due.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn reversal_retry(
        &mut self,
        id: i64,
        rejected: bool,
        next_attempt_ms: i64,
    ) -> Result<u32, JournalError> {
        self.writable()?;
        self.sync(false)?;
        let sq = self.sq();
        let n: u32 = self
            .conn
            .query_row(
                sql::REVERSAL_RETRY,
                params![id, i64::from(rejected), next_attempt_ms, now_ms()],
                |r| r.get(0),
            )
            .map_err(sq)?;
        self.committed(false);
        Ok(n)
    }

    /// Mark a transaction voided (by a later void) or a pre-authorization completed.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn mark_original(
        &mut self,
        original: i64,
        voided: bool,
        completed_by: Option<i64>,
    ) -> Result<(), JournalError> {
        self.writable()?;
        self.sync(true)?;
        let sq = self.sq();
        self.conn
            .execute(
                sql::MARK_ORIGINAL,
                params![original, voided, completed_by, now_ms()],
            )
            .map_err(sq)?;
        self.committed(true);
        Ok(())
    }

    /// Count a printed receipt.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn receipt_printed(&mut self, id: i64) -> Result<(), JournalError> {
        self.writable()?;
        self.sync(false)?;
        let sq = self.sq();
        self.conn.execute(sql::RECEIPT_PRINTED, [id]).map_err(sq)?;
        self.committed(false);
        Ok(())
    }

    /// Record a device event, fault, alarm or note (never card data).
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn event(
        &mut self,
        txn: Option<i64>,
        kind: &str,
        detail: &str,
    ) -> Result<(), JournalError> {
        self.writable()?;
        self.sync(false)?;
        let sq = self.sq();
        self.conn
            .execute(sql::INSERT_EVENT, params![txn, now_ms(), kind, detail])
            .map_err(sq)?;
        self.committed(false);
        self.notify(Change::Event {
            txn,
            kind: kind.to_string(),
            detail: detail.to_string(),
        });
        Ok(())
    }

    /// Record a host message (the summaries of [`WireEvent`] are already masked).
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn host_message(
        &mut self,
        txn: i64,
        purpose: &str,
        attempt: u32,
        event: &WireEvent,
    ) -> Result<(), JournalError> {
        self.writable()?;
        self.sync(false)?;
        let (direction, mti, stan, rc, elapsed, summary) = match event {
            WireEvent::Sent { mti, stan, summary } => (
                "sent",
                Some(mti.to_string()),
                Some(*stan),
                None,
                None,
                summary.clone(),
            ),
            WireEvent::Received {
                mti,
                response_code,
                summary,
                elapsed,
            } => (
                "received",
                Some(mti.to_string()),
                None,
                response_code.clone(),
                Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)),
                summary.clone(),
            ),
            WireEvent::Failed { error, after_send } => (
                "failed",
                None,
                None,
                None,
                None,
                format!(
                    "{error} ({})",
                    if *after_send {
                        "after the request left"
                    } else {
                        "nothing was sent"
                    }
                ),
            ),
        };
        let sq = self.sq();
        self.conn
            .execute(
                sql::INSERT_HOST_MESSAGE,
                params![
                    txn,
                    now_ms(),
                    purpose,
                    attempt,
                    direction,
                    mti,
                    stan,
                    rc,
                    elapsed.map(|e| i64::try_from(e).unwrap_or(i64::MAX)),
                    summary
                ],
            )
            .map_err(sq)?;
        self.committed(false);
        Ok(())
    }

    fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Txn, String, String)> {
        let kind: String = r.get(1)?;
        let state: String = r.get(2)?;
        let amount: i64 = r.get(3)?;
        Ok((
            Txn {
                id: r.get(0)?,
                kind: Operation::Sale,
                state: State::Created,
                amount: u64::try_from(amount).unwrap_or(0),
                currency: r.get(4)?,
                pan_masked: r.get(5)?,
                pan_hash: r.get(6)?,
                entry_mode: r.get(7)?,
                aid: r.get(8)?,
                label: r.get(9)?,
                stan: r.get(10)?,
                mti: r.get(11)?,
                transmission_time: r.get(12)?,
                rrn: r.get(13)?,
                auth_code: r.get(14)?,
                response_code: r.get(15)?,
                reason: r.get(16)?,
                original_id: r.get(17)?,
                no_receipt: r.get(18)?,
                voided: r.get(19)?,
                completed_by: r.get(20)?,
                reversal_reason: r.get(21)?,
                reversal_attempts: r.get(22)?,
                reversal_rejections: r.get(23)?,
                next_attempt_ms: r.get(24)?,
                receipts_printed: r.get(25)?,
                created_ms: r.get(26)?,
                updated_ms: r.get(27)?,
            },
            kind,
            state,
        ))
    }

    fn finish(row: (Txn, String, String)) -> Result<Txn, JournalError> {
        let (mut t, kind, state) = row;
        t.kind = op_from_name(&kind).ok_or(JournalError::Corrupt {
            id: t.id,
            what: "kind",
            value: kind,
        })?;
        t.state = State::from_name(&state).ok_or(JournalError::Corrupt {
            id: t.id,
            what: "state",
            value: state,
        })?;
        Ok(t)
    }

    fn query(&self, rest: &str, p: &[&dyn rusqlite::ToSql]) -> Result<Vec<Txn>, JournalError> {
        let mut stmt = self
            .conn
            .prepare_cached(&sql::select_txn(rest))
            .map_err(self.sq())?;
        let rows = stmt
            .query_map(p, Journal::row)
            .map_err(self.sq())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sq())?;
        rows.into_iter().map(Journal::finish).collect()
    }

    /// One transaction.
    ///
    /// # Errors
    /// [`JournalError::NotFound`], [`JournalError::Sqlite`], [`JournalError::Corrupt`].
    pub fn get(&self, id: i64) -> Result<Txn, JournalError> {
        self.query(sql::BY_ID, &[&id])?
            .pop()
            .ok_or(JournalError::NotFound(id))
    }

    /// The sealed card data of a transaction (None once wiped).
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn sealed(&self, id: i64) -> Result<Option<Vec<u8>>, JournalError> {
        self.conn
            .query_row(sql::SEALED, [id], |r| r.get(0))
            .optional()
            .map(Option::flatten)
            .map_err(self.sq())
    }

    /// The latest transactions, newest first.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`], [`JournalError::Corrupt`].
    pub fn list(&self, limit: u32) -> Result<Vec<Txn>, JournalError> {
        self.query(sql::LATEST, &[&limit])
    }

    /// Every transaction, oldest first. Reads the whole journal (an export, `posctl report
    /// --all`-like uses): nothing on the service's hot path calls it.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`], [`JournalError::Corrupt`].
    pub fn all(&self) -> Result<Vec<Txn>, JournalError> {
        self.query(sql::ALL, &[])
    }

    /// Transactions in any of `states`, oldest first. Meant for the states transactions do
    /// not rest in for long (in flight, reversals, owed receipts): it returns every one; see
    /// [`Journal::latest_in_states`] for a bounded list.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`], [`JournalError::Corrupt`].
    pub fn in_states(&self, states: &[State]) -> Result<Vec<Txn>, JournalError> {
        self.query(&sql::in_states(states), &[])
    }

    /// The latest `limit` transactions in any of `states`, newest first.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`], [`JournalError::Corrupt`].
    pub fn latest_in_states(&self, states: &[State], limit: u32) -> Result<Vec<Txn>, JournalError> {
        self.query(&sql::latest_in_states(states), &[&limit])
    }

    /// How many transactions are in any of `states` (counted in the state index: the
    /// rows themselves are not read).
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn count_in_states(&self, states: &[State]) -> Result<u64, JournalError> {
        self.conn
            .prepare_cached(&sql::count_in_states(states))
            .and_then(|mut st| st.query_row([], |r| r.get::<_, i64>(0)))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(self.sq())
    }

    /// The transactions created at or after `since_ms`, counted and summed by kind, state,
    /// voided and completed (what a report tells apart), without reading any older row.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`] (also when a group's amounts overflow),
    /// [`JournalError::Corrupt`] for a kind or state this version does not know.
    pub fn groups_since(&self, since_ms: i64) -> Result<Vec<TxnGroup>, JournalError> {
        let mut stmt = self
            .conn
            .prepare_cached(sql::GROUPS_SINCE)
            .map_err(self.sq())?;
        let rows = stmt
            .query_map([since_ms], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })
            .map_err(self.sq())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sq())?;
        rows.into_iter()
            .map(|(kind, state, voided, completed, count, amount, id)| {
                Ok(TxnGroup {
                    kind: op_from_name(&kind).ok_or(JournalError::Corrupt {
                        id,
                        what: "kind",
                        value: kind,
                    })?,
                    state: State::from_name(&state).ok_or(JournalError::Corrupt {
                        id,
                        what: "state",
                        value: state,
                    })?,
                    voided,
                    completed,
                    count: u64::try_from(count).unwrap_or(0),
                    amount: u64::try_from(amount).unwrap_or(0),
                })
            })
            .collect()
    }

    /// A transaction's state timeline.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`], [`JournalError::Corrupt`].
    pub fn timeline(&self, id: i64) -> Result<Vec<TimelineEntry>, JournalError> {
        let mut stmt = self.conn.prepare_cached(sql::TIMELINE).map_err(self.sq())?;
        let rows = stmt
            .query_map([id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(self.sq())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sq())?;
        rows.into_iter()
            .map(|(at_ms, state, note)| {
                let s = State::from_name(&state).ok_or(JournalError::Corrupt {
                    id,
                    what: "timeline state",
                    value: state,
                })?;
                Ok(TimelineEntry {
                    at_ms,
                    state: s,
                    note,
                })
            })
            .collect()
    }

    /// Events of a transaction (`Some(id)`) or of the lane (`None`: those without one).
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn events(&self, txn: Option<i64>) -> Result<Vec<EventEntry>, JournalError> {
        let mut stmt = self.conn.prepare_cached(sql::EVENTS).map_err(self.sq())?;
        stmt.query_map([txn], |r| {
            Ok(EventEntry {
                at_ms: r.get(0)?,
                txn_id: r.get(1)?,
                kind: r.get(2)?,
                detail: r.get(3)?,
            })
        })
        .map_err(self.sq())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(self.sq())
    }

    /// Host messages of a transaction.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn host_messages(&self, id: i64) -> Result<Vec<HostMessage>, JournalError> {
        let mut stmt = self
            .conn
            .prepare_cached(sql::HOST_MESSAGES)
            .map_err(self.sq())?;
        stmt.query_map([id], |r| {
            Ok(HostMessage {
                at_ms: r.get(0)?,
                purpose: r.get(1)?,
                attempt: r.get(2)?,
                direction: r.get(3)?,
                mti: r.get(4)?,
                stan: r.get(5)?,
                response_code: r.get(6)?,
                elapsed_ms: r
                    .get::<_, Option<i64>>(7)?
                    .map(|v| u64::try_from(v).unwrap_or(0)),
                summary: r.get(8)?,
            })
        })
        .map_err(self.sq())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(self.sq())
    }

    /// Copy the journal to `dest` with SQLite's online backup: consistent, and safe while
    /// the service writes.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`] (e.g. `dest` not writable).
    pub fn backup(&self, dest: &Path) -> Result<(), JournalError> {
        let map = |source| JournalError::Sqlite {
            path: dest.to_path_buf(),
            source,
        };
        let mut out = Connection::open(dest).map_err(map)?;
        let b = rusqlite::backup::Backup::new(&self.conn, &mut out).map_err(map)?;
        b.run_to_completion(256, Duration::from_millis(5), None)
            .map_err(map)?;
        Ok(())
    }
}

impl Drop for Journal {
    /// A clean close: the marker records the exact counters, so the next open of an older
    /// copy continues exactly where this one stopped (after a crash, past the reservation).
    fn drop(&mut self) {
        let Some(marker) = self.marker.clone() else {
            return;
        };
        match self.counters() {
            Ok((stan_seq, max_id)) => {
                let m = identity::Marker {
                    terminal_id: self.terminal_id.clone(),
                    stan_reserved: self.reserved.0.max(stan_seq),
                    id_reserved: self.reserved.1.max(max_id),
                    closed_at: Some((stan_seq, max_id)),
                };
                if let Err(e) = m.store(&marker) {
                    log::warn!("journal identity marker not updated at close: {e}");
                }
            }
            Err(e) => log::warn!("journal counters unreadable at close: {e}"),
        }
    }
}

#[cfg(test)]
mod query_plans;

#[cfg(test)]
mod tests {
    use super::*;

    fn journal() -> (tempfile::TempDir, Journal) {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        (dir, j)
    }

    #[test]
    fn a_sale_walks_the_machine_and_survives_reopening() {
        let (dir, mut j) = journal();
        let id = j.create(Operation::Sale, 1250, 978, None, "sale").unwrap();
        j.transition(
            id,
            State::CardRead,
            "card read",
            Changes {
                pan_masked: Some("476173******0010".into()),
                sealed: Some(vec![1, 2, 3]),
                ..Changes::default()
            },
        )
        .unwrap();
        let stan = j
            .arm(id, "0200", "1123101500", "armed", Changes::default())
            .unwrap();
        assert_eq!(stan, 1);
        j.transition(id, State::Sent, "sent", Changes::default())
            .unwrap();
        j.transition(
            id,
            State::HostApproved,
            "approved",
            Changes {
                auth_code: Some("A00001".into()),
                ..Changes::default()
            },
        )
        .unwrap();
        assert_eq!(j.sealed(id).unwrap(), Some(vec![1, 2, 3]));
        let before = j.commits();
        j.transition(id, State::Committed, "tc", Changes::default())
            .unwrap();
        assert_eq!(j.commits(), before + 1);
        drop(j);
        let j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        let t = j.get(id).unwrap();
        assert_eq!(t.state, State::Committed);
        assert_eq!(t.stan, Some(1));
        assert_eq!(t.auth_code.as_deref(), Some("A00001"));
        assert_eq!(t.pan_masked.as_deref(), Some("476173******0010"));
        let states: Vec<State> = j.timeline(id).unwrap().iter().map(|e| e.state).collect();
        assert_eq!(
            states,
            vec![
                State::Created,
                State::CardRead,
                State::Armed,
                State::Sent,
                State::HostApproved,
                State::Committed
            ]
        );
    }

    #[test]
    fn illegal_transitions_are_refused() {
        let (_d, mut j) = journal();
        let id = j.create(Operation::Sale, 1, 978, None, "").unwrap();
        let e = j
            .transition(id, State::Completed, "", Changes::default())
            .unwrap_err();
        assert!(matches!(
            e,
            JournalError::IllegalTransition {
                from: State::Created,
                to: State::Completed,
                ..
            }
        ));
        assert!(matches!(
            j.transition(99, State::Aborted, "", Changes::default()),
            Err(JournalError::NotFound(99))
        ));
        j.transition(id, State::Aborted, "", Changes::default())
            .unwrap();
        assert!(
            j.transition(id, State::Armed, "", Changes::default())
                .is_err()
        );
        // Every resting state but the reversal ones is final.
        for s in State::ALL {
            if s.is_resting()
                && !matches!(
                    s,
                    State::ReversalPending | State::ReversalStuck | State::ReceiptOwed
                )
            {
                assert!(s.next().is_empty(), "{s}");
            }
        }
    }

    #[test]
    fn final_states_without_reversal_wipe_the_sealed_data() {
        let (_d, mut j) = journal();
        let id = j.create(Operation::Sale, 1, 978, None, "").unwrap();
        let c = Changes {
            sealed: Some(vec![9; 40]),
            ..Changes::default()
        };
        j.transition(id, State::CardRead, "", c).unwrap();
        j.arm(id, "0200", "0101000000", "", Changes::default())
            .unwrap();
        j.transition(id, State::Sent, "", Changes::default())
            .unwrap();
        j.transition(id, State::Declined, "", Changes::reason("51"))
            .unwrap();
        assert_eq!(j.sealed(id).unwrap(), None);
    }

    #[test]
    fn stans_increase_and_wrap() {
        let (_d, mut j) = journal();
        j.conn
            .execute("UPDATE meta SET value = '999998' WHERE key = 'stan'", [])
            .unwrap();
        let mut stans = vec![];
        for _ in 0..3 {
            let id = j.create(Operation::Sale, 1, 978, None, "").unwrap();
            stans.push(
                j.arm(id, "0200", "0101000000", "", Changes::default())
                    .unwrap(),
            );
        }
        assert_eq!(stans, vec![999_999, 1, 2]);
    }

    #[test]
    fn reversal_bookkeeping_and_backup() {
        let (dir, mut j) = journal();
        let id = j.create(Operation::Sale, 5, 978, None, "").unwrap();
        j.arm(id, "0200", "0101000000", "", Changes::default())
            .unwrap();
        j.transition(id, State::ReversalPending, "", Changes::default())
            .unwrap();
        assert_eq!(j.reversal_attempt(id).unwrap(), 1);
        assert_eq!(j.reversal_retry(id, false, 10).unwrap(), 0);
        assert_eq!(j.reversal_attempt(id).unwrap(), 2);
        assert_eq!(j.reversal_retry(id, true, 20).unwrap(), 1);
        let t = j.get(id).unwrap();
        assert_eq!((t.reversal_attempts, t.reversal_rejections), (2, 1));
        assert_eq!(t.next_attempt_ms, Some(20));
        j.event(Some(id), "fault", "card_removed").unwrap();
        j.event(None, "alarm", "lane alarm").unwrap();
        assert_eq!(j.events(Some(id)).unwrap().len(), 1);
        assert_eq!(j.events(None).unwrap()[0].detail, "lane alarm");
        let dest = dir.path().join("backup.sqlite");
        j.backup(&dest).unwrap();
        let b = Journal::open(&dest).unwrap();
        assert_eq!(b.get(id).unwrap().reversal_rejections, 1);
        assert_eq!(b.in_states(&[State::ReversalPending]).unwrap().len(), 1);
    }

    #[test]
    fn a_large_journal_is_checked_whole_at_open_only_after_a_crash() {
        let (dir, j) = journal();
        let path = dir.path().join("j.sqlite");
        assert_eq!(j.start_check(), Some(StartCheck::New));
        drop(j);
        let j = Journal::open(&path).unwrap();
        assert_eq!(j.start_check(), Some(StartCheck::Full));
        // Past the size of a full check at every open.
        let tx = j.conn.unchecked_transaction().unwrap();
        let detail = "x".repeat(1 << 20);
        for _ in 0..(FULL_CHECK_MAX_BYTES >> 20) + 1 {
            tx.execute(sql::INSERT_EVENT, params![None::<i64>, 0, "info", detail])
                .unwrap();
        }
        tx.commit().unwrap();
        drop(j);
        assert!(std::fs::metadata(&path).unwrap().len() > FULL_CHECK_MAX_BYTES);
        let j = Journal::open(&path).unwrap();
        assert_eq!(j.start_check(), Some(StartCheck::SkippedAfterCleanClose));
        drop(j);
        // A crash: the marker records no clean close.
        let marker = identity::marker_path(&path);
        let m = identity::Marker::load(&marker).unwrap().unwrap();
        identity::Marker {
            closed_at: None,
            ..m
        }
        .store(&marker)
        .unwrap();
        let j = Journal::open(&path).unwrap();
        assert_eq!(j.start_check(), Some(StartCheck::Quick));
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(
            &p,
            b"this is not sqlite, it is a text file of some length....",
        )
        .unwrap();
        let e = Journal::open(&p).unwrap_err();
        assert!(e.to_string().contains(&p.display().to_string()), "{e}");
    }
}
