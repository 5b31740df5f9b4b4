//! The journal: every transaction's state, timeline, device events and host messages, in
//! SQLite (WAL).
//!
//! A state is written **before** the side effect it allows (the reversal record exists
//! before the request leaves). Each state write is one SQLite transaction; the writes a
//! guarantee rests on are flushed before they return (`synchronous=FULL`: the reversal
//! record, the commit before the customer is told, a reversal decided, every resting
//! state, see [`State::is_durable`]), the others ride in the next flush. Transitions are
//! checked: an illegal one is an error, never silently written. Closed transactions older
//! than the retention period move to monthly archive files ([`Journal::archive`]).
//!
//! Parts: the vocabulary (states, errors, rows), opening and the lane's identity,
//! writing, reading, archiving; every SQL statement the service runs is a named constant,
//! and a test checks its query plan uses an index.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pos_acquirer::{Operation, WireEvent};

use crate::identity;

mod archive;
mod open;
mod read;
mod settlement;
mod types;
mod write;

pub use archive::{ArchiveReport, archive_file, archive_files};
pub use open::op_from_name;
pub use settlement::*;
pub use types::*;

use open::*;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

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
  updated_ms INTEGER NOT NULL,
  batch INTEGER
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
     reversal_rejections, next_attempt_ms, receipts_printed, created_ms, updated_ms, batch";

/// [`TXN_COLUMNS`] for a journal from before batches (schema 1), read without upgrading.
const TXN_COLUMNS_V1: &str = "id, kind, state, amount, currency, pan_masked, pan_hash, entry_mode, \
     aid, label, stan, mti, transmission_time, rrn, auth_code, response_code, reason, \
     original_id, no_receipt, voided, completed_by, reversal_reason, reversal_attempts, \
     reversal_rejections, next_attempt_ms, receipts_printed, created_ms, updated_ms, NULL";

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

    /// A new transaction, in the open batch.
    pub(super) const INSERT_TXN: &str =
        "INSERT INTO txn(kind, state, amount, currency, original_id, created_ms, updated_ms, batch)
         VALUES (?1, 'created', ?2, ?3, ?4, ?5, ?5,
         (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'batch'))";

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

    /// An operator requeues a stuck reversal: its rejections count from zero again and it
    /// is due now.
    pub(super) const REVERSAL_REQUEUE: &str =
        "UPDATE txn SET reversal_rejections = 0, next_attempt_ms = ?2, updated_ms = ?3
         WHERE id = ?1";

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

    /// As [`select_txn`], for a journal read without upgrading from schema 1 (no batches).
    pub(super) fn select_txn_v1(rest: &str) -> String {
        format!("SELECT {} FROM txn {rest}", super::TXN_COLUMNS_V1)
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
    /// A settlement found a difference with the host (its `alarm` event row is in the
    /// journal too; this carries the difference itself).
    Difference(Difference),
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
    /// A journal from before batches read without upgrading (read-only handle of a
    /// schema-1 file): no batch column, no settlement tables.
    v1: bool,
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

impl Journal {
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
mod tests;
