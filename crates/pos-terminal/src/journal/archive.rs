//! Years of history: closed transactions older than the retention period move to dated
//! archive files, and sealed card data is erased as soon as no reversal can need it.
//!
//! [`Journal::archive`]:
//!
//! 1. **Sealed card data** of transactions from days before today that ended without a
//!    possible reversal left (completed sales: their void window, the business day, is
//!    over) is erased. Kept: a receipt still owed (it may still be reversed), a reversal
//!    pending or stuck, an open pre-authorization (its completion takes its card data).
//! 2. **Archiving**: transactions created before `keep_days` whole days ago, at rest and
//!    closed (completed, declined, aborted, reversed; never a reversal pending or stuck, a
//!    receipt owed or an open pre-authorization), with their timeline, events and host
//!    messages, move to `archive/journal-YYYY-MM.sqlite` (the month they were created in;
//!    the journal's own schema). A transaction and the ones it references or that
//!    reference it (a void and its sale, a completion and its pre-authorization) move
//!    together or not at all. Lane events (no transaction) older than the cut-off move too.
//!
//! **No loss, no duplicate, across a crash.** The ids being moved are written durably in
//! the journal (`meta.archiving`) first; the rows are copied into the archive file
//! (`INSERT OR IGNORE`, durable); then they are deleted from the journal together with the
//! note, in one durable transaction. A crash after the copy leaves the note: the next run
//! (or [`Journal::archive`] at any time) finishes the move, and the copy again finds the
//! rows already there. Transaction ids are never reused (SQLite's AUTOINCREMENT keeps
//! counting).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{Journal, JournalError, SCHEMA, State};

const DAY_MS: i64 = 86_400_000;

/// What an archive run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ArchiveReport {
    /// Transactions moved to archive files.
    pub moved: usize,
    /// Lane events (no transaction) moved.
    pub events_moved: usize,
    /// The archive files written to.
    pub files: Vec<PathBuf>,
    /// Transactions whose sealed card data was erased.
    pub sealed_erased: usize,
    /// Transactions old enough to go but kept: a reversal pending or stuck, a receipt owed,
    /// an open pre-authorization, or tied to a transaction that stays.
    pub kept: usize,
    /// Whether an interrupted earlier run was finished first.
    pub resumed: bool,
    /// Whether transactions old enough to go are left for the next call (the run stopped
    /// at its `max_moves`).
    pub more: bool,
}

/// The archive file for transactions created in the month of `at_ms` (UTC).
pub fn archive_file(dir: &Path, at_ms: i64) -> PathBuf {
    let (y, m) = crate::time::year_month(at_ms);
    dir.join(format!("journal-{y:04}-{m:02}.sqlite"))
}

/// The start (ms) of the UTC day holding `at_ms`.
fn day_start(at_ms: i64) -> i64 {
    at_ms - at_ms.rem_euclid(DAY_MS)
}

/// The archive files in `dir`, oldest first.
pub fn archive_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("journal-") && n.ends_with(".sqlite"))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The resting states a transaction may be archived in.
const CLOSED: [State; 4] = [
    State::Completed,
    State::Declined,
    State::Aborted,
    State::Reversed,
];

/// Retention's SQL, checked by the query-plan test (`journal/query_plans.rs`) like the
/// journal's: the backlog is read a page at a time through `txn_created`, families through
/// `txn_original` and the table's key, the sealed data to erase through `txn_sealed`.
pub(super) mod sql {
    use super::{CLOSED, State};

    fn in_list(states: &[State]) -> String {
        states
            .iter()
            .map(|s| format!("'{}'", s.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// An open pre-authorization: completed (approved), neither completed nor voided since.
    const OPEN_PREAUTH: &str =
        "(kind = 'preauth' AND state = 'completed' AND completed_by IS NULL AND voided = 0)";

    /// Whether a transaction may go: closed, and not an open pre-authorization.
    fn may_go() -> String {
        format!("(state IN ({}) AND NOT {OPEN_PREAUTH})", in_list(&CLOSED))
    }

    /// The next page of the transactions created before `?1`, oldest first, after
    /// `(created_ms, id)` = `(?2, ?3)`, at most `?4`: id, created_ms, original_id, may go.
    pub(in crate::journal) fn old_page() -> String {
        format!(
            "SELECT id, created_ms, original_id, {} FROM txn
             WHERE created_ms < ?1 AND (created_ms, id) > (?2, ?3)
             ORDER BY created_ms, id LIMIT ?4",
            may_go()
        )
    }

    /// One transaction: created_ms, original_id, may go.
    pub(in crate::journal) fn one() -> String {
        format!(
            "SELECT created_ms, original_id, {} FROM txn WHERE id = ?1",
            may_go()
        )
    }

    /// The transactions that reference `?1` (its voids, completions).
    pub(in crate::journal) const CHILDREN: &str = "SELECT id FROM txn WHERE original_id = ?1";

    /// Erase the sealed card data no reversal can need, of at most `?2` transactions created
    /// before `?1`, oldest first. `INDEXED BY`: without it SQLite reads every closed
    /// transaction through `txn_state`; with it, only those still holding sealed data.
    pub(in crate::journal) fn erase_sealed() -> String {
        format!(
            "UPDATE txn SET sealed = NULL WHERE id IN (
               SELECT id FROM txn INDEXED BY txn_sealed
               WHERE sealed IS NOT NULL AND created_ms < ?1 AND {}
               ORDER BY created_ms LIMIT ?2)",
            may_go()
        )
    }

    /// The days (ms) of the lane events (no transaction) before `?1`.
    pub(in crate::journal) const LANE_EVENT_DAYS: &str =
        "SELECT DISTINCT at_ms - at_ms % 86400000 FROM events
         WHERE txn_id IS NULL AND at_ms < ?1";

    /// The note of a move in progress.
    pub(in crate::journal) const NOTE: &str =
        "INSERT OR REPLACE INTO meta(key, value) VALUES ('archiving', ?1)";

    /// The note's end, with the move's deletes.
    pub(in crate::journal) const NOTE_DONE: &str = "DELETE FROM meta WHERE key = 'archiving'";

    /// Copy the rows of `ids` (`(1,2,3)`) of `table` (keyed by `key`) into the archive.
    pub(in crate::journal) fn copy(table: &str, key: &str, ids: &str) -> String {
        format!(
            "INSERT OR IGNORE INTO arch.{table} SELECT * FROM main.{table}
             WHERE {key} IN {ids} ORDER BY 1"
        )
    }

    /// Copy the lane events of `[?1, ?2)` into the archive.
    pub(in crate::journal) const COPY_LANE_EVENTS: &str =
        "INSERT OR IGNORE INTO arch.events SELECT * FROM main.events
         WHERE txn_id IS NULL AND at_ms >= ?1 AND at_ms < ?2";

    /// Delete the rows of `ids` of `table` (keyed by `key`).
    pub(in crate::journal) fn delete(table: &str, key: &str, ids: &str) -> String {
        format!("DELETE FROM {table} WHERE {key} IN {ids}")
    }

    /// Delete the lane events of `[?1, ?2)`.
    pub(in crate::journal) const DELETE_LANE_EVENTS: &str =
        "DELETE FROM events WHERE txn_id IS NULL AND at_ms >= ?1 AND at_ms < ?2";
}

/// Old transactions read per query while looking for what can move.
const PAGE: i64 = 2_000;

/// Transactions whose sealed card data one call erases at most (an update of one column:
/// tens of milliseconds).
const ERASE_BATCH: usize = 10_000;

/// Transactions moved per note-copy-delete step: bounds the time the journal is held and
/// the size of the note.
const BATCH: usize = 500;

impl Journal {
    /// Erase sealed card data no reversal can need, and move closed transactions older than
    /// `keep_days` whole days (before the start of the UTC day `keep_days` before `now_ms`)
    /// to archive files in `dir`, at most about `max_moves` of them (whole families: a run
    /// may go over by one family); [`ArchiveReport::more`] says when some are left for the
    /// next call. Finishes an interrupted earlier run first.
    ///
    /// A call is a bounded step whatever the backlog (a journal that kept a million
    /// transactions before retention): it erases the sealed data of at most 10,000
    /// transactions (and moves nothing while some is left to erase, so nothing leaves with
    /// sealed data), and reads the old transactions oldest first only until it has
    /// `max_moves` to move. About 45 ms for 1,000 moved from a journal of a million.
    ///
    /// Never archived: a reversal pending or stuck, a receipt owed, an open
    /// pre-authorization. A transaction and the ones it references or that reference it (a
    /// void and its sale, a completion and its pre-authorization) move together, to the
    /// file of the month the oldest was created in. Each batch is noted durably in the
    /// journal, copied (`INSERT OR IGNORE`), then deleted with the note in one durable
    /// transaction: a crash anywhere loses nothing and duplicates nothing (the next run
    /// finishes the move). See `docs/journal.md`, "Retention".
    ///
    /// # Errors
    /// [`JournalError::Sqlite`] / [`JournalError::Io`] when the journal or an archive file
    /// cannot be written (what was done before stays done; what was interrupted is finished
    /// by the next run); the refusals of every write (a journal removed or replaced).
    pub fn archive(
        &mut self,
        keep_days: u32,
        dir: &Path,
        now_ms: i64,
        max_moves: usize,
    ) -> Result<ArchiveReport, JournalError> {
        self.writable()?;
        let mut report = ArchiveReport::default();
        if self.resume_archiving()? {
            report.resumed = true;
        }
        let today = day_start(now_ms);
        let max_moves = max_moves.max(1);
        report.sealed_erased = self.erase_unneeded_sealed(today, ERASE_BATCH)?;
        if report.sealed_erased >= ERASE_BATCH {
            // More to erase: the next call goes on (nothing moves with its sealed data).
            report.more = true;
            return Ok(report);
        }
        let cutoff = today - i64::from(keep_days) * DAY_MS;
        let (families, kept, more) = self.archivable(cutoff, max_moves)?;
        report.kept = kept;
        report.more = more;
        // Families by archive file (the month their first transaction was created in), in
        // batches.
        let mut batches: Vec<(PathBuf, Vec<i64>)> = Vec::new();
        for (created, ids) in families {
            let file = archive_file(dir, created);
            match batches.last_mut() {
                Some((f, batch)) if *f == file && batch.len() < BATCH => batch.extend(ids),
                _ => batches.push((file, ids)),
            }
        }
        // Lane events past the cut-off, by month, once every transaction has gone.
        if !report.more {
            let lane_events = self.query_i64(sql::LANE_EVENT_DAYS, cutoff)?;
            let files: BTreeSet<PathBuf> = lane_events
                .iter()
                .map(|at| archive_file(dir, *at))
                .collect();
            batches.extend(files.into_iter().map(|f| (f, Vec::new())));
        }
        if !batches.is_empty() {
            std::fs::create_dir_all(dir).map_err(|source| JournalError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        for (file, ids) in batches {
            let window = if ids.is_empty() {
                let (month_start, month_end) = month_bounds(&file);
                (month_start.max(0), month_end.min(cutoff))
            } else {
                (0, 0)
            };
            report.events_moved += self.move_batch(&file, &ids, window)?;
            report.moved += ids.len();
            if !report.files.contains(&file) {
                report.files.push(file);
            }
        }
        if report.moved > 0 || report.sealed_erased > 0 || report.events_moved > 0 {
            log::info!(
                "{}: archived {} transaction(s) and {} lane event(s) to {} file(s); sealed card data erased from {}{}",
                self.path.display(),
                report.moved,
                report.events_moved,
                report.files.len(),
                report.sealed_erased,
                if report.more { "; more to go" } else { "" }
            );
        }
        Ok(report)
    }

    fn query_i64(&self, sql: &str, arg: i64) -> Result<Vec<i64>, JournalError> {
        let sq = self.sq();
        let mut st = self.conn.prepare(sql).map_err(&sq)?;
        let rows = st
            .query_map([arg], |r| r.get::<_, i64>(0))
            .map_err(&sq)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&sq)?;
        Ok(rows)
    }

    /// Erase the sealed card data that no reversal can need: completed, declined, aborted
    /// or reversed before `today` (ms), except open pre-authorizations; the oldest `limit`
    /// (a journal that never erased any has a year of it: a bounded step at a time).
    /// Durable.
    fn erase_unneeded_sealed(&mut self, today: i64, limit: usize) -> Result<usize, JournalError> {
        self.writable()?;
        self.sync(true)?;
        let sq = self.sq();
        let n = self
            .conn
            .execute(
                &sql::erase_sealed(),
                params![today, i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .map_err(sq)?;
        if n > 0 {
            self.committed(true);
        }
        Ok(n)
    }

    /// The families to archive, oldest first, about `max_moves` transactions of them (a
    /// family is whole, so the last may go over): `(created_ms of the first, ids)`; how many
    /// old enough ones stay, of those looked at; and whether old enough ones are left
    /// unlooked at. A family is a transaction with the ones it references or that reference
    /// it, and so on (a void and its sale, a completion and its pre-authorization): it
    /// moves whole when every member is old enough and may go, else it stays whole, so no
    /// row ever references one that left.
    ///
    /// The old transactions are read a page at a time, oldest first (`txn_created`), and
    /// each family through its links (`txn_original`, the table's key): a call reads what
    /// it moves and what stays before it, never the whole backlog (a million transactions
    /// on a journal that kept everything before retention).
    #[allow(clippy::type_complexity)]
    fn archivable(
        &self,
        cutoff: i64,
        max_moves: usize,
    ) -> Result<(Vec<(i64, Vec<i64>)>, usize, bool), JournalError> {
        let sq = self.sq();
        let mut page_st = self.conn.prepare(&sql::old_page()).map_err(&sq)?;
        let mut one_st = self.conn.prepare(&sql::one()).map_err(&sq)?;
        let mut children_st = self.conn.prepare(sql::CHILDREN).map_err(&sq)?;
        let mut decided: BTreeSet<i64> = BTreeSet::new();
        let mut families: Vec<(i64, Vec<i64>)> = Vec::new();
        let (mut planned, mut kept) = (0usize, 0usize);
        let mut after = (i64::MIN, i64::MIN);
        let more = 'scan: loop {
            let page: Vec<(i64, i64)> = page_st
                .query_map(params![cutoff, after.0, after.1, PAGE], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(&sq)?
                .collect::<Result<_, _>>()
                .map_err(&sq)?;
            let Some(&(last_id, last_created)) = page.last() else {
                break 'scan false;
            };
            after = (last_created, last_id);
            for (id, _) in page {
                if decided.contains(&id) {
                    continue;
                }
                if planned >= max_moves {
                    break 'scan true;
                }
                // The family: every transaction linked to this one, either way.
                let mut members: BTreeMap<i64, (i64, bool)> = BTreeMap::new();
                let mut whole = true;
                let mut todo = vec![id];
                while let Some(m) = todo.pop() {
                    if members.contains_key(&m) {
                        continue;
                    }
                    let row: Option<(i64, Option<i64>, bool)> = one_st
                        .query_row([m], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                        .optional()
                        .map_err(&sq)?;
                    // A link to a transaction no longer here keeps the family.
                    let Some((created, original, may_go)) = row else {
                        whole = false;
                        continue;
                    };
                    members.insert(m, (created, may_go && created < cutoff));
                    todo.extend(original);
                    let children = children_st
                        .query_map([m], |r| r.get::<_, i64>(0))
                        .map_err(&sq)?
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(&sq)?;
                    todo.extend(children);
                }
                decided.extend(members.keys());
                if whole && members.values().all(|(_, go)| *go) {
                    // Named by its first member (the lowest id).
                    let created = members.values().next().map_or(0, |(c, _)| *c);
                    planned += members.len();
                    families.push((created, members.into_keys().collect()));
                } else {
                    kept += members.values().filter(|(c, _)| *c < cutoff).count();
                }
            }
        };
        families.sort_by_key(|(created, ids)| (*created, ids.first().copied()));
        Ok((families, kept, more))
    }

    /// Move `ids` (and lane events in `events_window`) to `file`: note, copy, delete.
    /// Returns the lane events moved.
    fn move_batch(
        &mut self,
        file: &Path,
        ids: &[i64],
        (from, to): (i64, i64),
    ) -> Result<usize, JournalError> {
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let note = format!("{}\n{from}\n{to}\n{list}", file.display());
        // 1. The note, durable: a crash from here on is finished by the next run.
        self.writable()?;
        self.sync(true)?;
        let sq = self.sq_owned();
        self.conn.execute(sql::NOTE, [&note]).map_err(&sq)?;
        self.committed(true);
        self.copy_and_delete(file, &list, (from, to))
    }

    /// Steps 2 and 3 of a move, from its note.
    fn copy_and_delete(
        &mut self,
        file: &Path,
        list: &str,
        (from, to): (i64, i64),
    ) -> Result<usize, JournalError> {
        create_archive(file)?;
        let sq = self.sq_owned();
        let in_ids = format!("({list})");
        let conn = &self.conn;
        let copy = || -> rusqlite::Result<usize> {
            conn.execute_batch("PRAGMA foreign_keys = OFF")?;
            conn.execute(
                "ATTACH DATABASE ?1 AS arch",
                [file.to_string_lossy().as_ref()],
            )?;
            let r = (|| -> rusqlite::Result<usize> {
                conn.execute_batch("PRAGMA arch.synchronous = FULL")?;
                let tx = conn.unchecked_transaction()?;
                if !list.is_empty() {
                    for (table, key) in [
                        ("txn", "id"),
                        ("timeline", "txn_id"),
                        ("events", "txn_id"),
                        ("host_messages", "txn_id"),
                    ] {
                        tx.execute(&sql::copy(table, key, &in_ids), [])?;
                    }
                }
                let events = tx.execute(sql::COPY_LANE_EVENTS, params![from, to])?;
                tx.commit()?;
                Ok(events)
            })();
            let detach = conn.execute_batch("DETACH DATABASE arch");
            let fk = conn.execute_batch("PRAGMA foreign_keys = ON");
            let events = r?;
            detach?;
            fk?;
            Ok(events)
        };
        let events = copy().map_err(|e| JournalError::Sqlite {
            path: file.to_path_buf(),
            source: e,
        })?;
        // A durable write through this handle (to the archive file): counted, so crash tests
        // can stop between the copy and the delete.
        self.committed(true);
        // 3. Delete from the journal with the note, durable, in one transaction.
        self.writable()?;
        self.sync(true)?;
        let tx = self.conn.unchecked_transaction().map_err(&sq)?;
        if !list.is_empty() {
            for (table, key) in [
                ("host_messages", "txn_id"),
                ("events", "txn_id"),
                ("timeline", "txn_id"),
                ("txn", "id"),
            ] {
                tx.execute(&sql::delete(table, key, &in_ids), [])
                    .map_err(&sq)?;
            }
        }
        tx.execute(sql::DELETE_LANE_EVENTS, params![from, to])
            .map_err(&sq)?;
        tx.execute(sql::NOTE_DONE, []).map_err(&sq)?;
        tx.commit().map_err(&sq)?;
        self.committed(true);
        Ok(events)
    }

    /// Finish a move a crash interrupted (its note is in `meta.archiving`). Returns whether
    /// there was one.
    fn resume_archiving(&mut self) -> Result<bool, JournalError> {
        let note = super::meta(&self.conn, "archiving").map_err(self.sq())?;
        let Some(note) = note else {
            return Ok(false);
        };
        let mut parts = note.splitn(4, '\n');
        let (Some(file), Some(from), Some(to), Some(list)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JournalError::Corrupt {
                id: 0,
                what: "archiving note",
                value: note,
            });
        };
        let number = |v: &str| {
            v.parse::<i64>().map_err(|_| JournalError::Corrupt {
                id: 0,
                what: "archiving note",
                value: v.to_string(),
            })
        };
        let window = (number(from)?, number(to)?);
        if !list.is_empty() && !list.split(',').all(|i| i.parse::<i64>().is_ok()) {
            return Err(JournalError::Corrupt {
                id: 0,
                what: "archiving note ids",
                value: list.to_string(),
            });
        }
        log::warn!(
            "{}: finishing an archive move a crash interrupted ({file})",
            self.path.display()
        );
        self.copy_and_delete(Path::new(file), list, window)?;
        Ok(true)
    }
}

/// The month `[start, end)` in ms of an archive file named `journal-YYYY-MM.sqlite`.
fn month_bounds(file: &Path) -> (i64, i64) {
    let name = file
        .file_stem()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let ym = name.strip_prefix("journal-").unwrap_or_default();
    let (y, m) = ym.split_once('-').unwrap_or(("1970", "01"));
    let (y, m): (i64, u32) = (y.parse().unwrap_or(1970), m.parse().unwrap_or(1));
    let start = crate::time::days_from_civil(y, m, 1) * DAY_MS;
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let end = crate::time::days_from_civil(ny, nm, 1) * DAY_MS;
    (start, end)
}

/// Create the archive file with the journal's schema (rollback journal, durable writes).
fn create_archive(file: &Path) -> Result<(), JournalError> {
    let sq = |source| JournalError::Sqlite {
        path: file.to_path_buf(),
        source,
    };
    let conn = Connection::open(file).map_err(sq)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sq)?;
    conn.execute_batch(SCHEMA).map_err(sq)?;
    conn.execute(
        "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', '1'), ('archive', '1')",
        [],
    )
    .map_err(sq)?;
    // An archive file from before batches gets the column too (rows are copied whole).
    super::open::migrate(&conn).map_err(sq)?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::VecDeque;

    use pos_acquirer::Operation;

    use super::*;
    use crate::journal::Changes;

    /// 2026-12-07 12:00 UTC.
    const NOW: i64 = 1_796_644_800_000;

    fn journal() -> (tempfile::TempDir, Journal) {
        let d = tempfile::tempdir().unwrap();
        let j = Journal::open(&d.path().join("journal.sqlite")).unwrap();
        (d, j)
    }

    /// The shortest path of legal transitions from `Created` to `to`.
    fn path_to(to: State) -> Vec<State> {
        let mut queue = VecDeque::from([vec![State::Created]]);
        while let Some(p) = queue.pop_front() {
            let last = *p.last().unwrap();
            if last == to {
                return p[1..].to_vec();
            }
            for next in last.next() {
                if !p.contains(next) {
                    let mut q = p.clone();
                    q.push(*next);
                    queue.push_back(q);
                }
            }
        }
        panic!("no path to {to}");
    }

    /// A transaction of `kind` walked to `state`, created `days_ago` days before `NOW`,
    /// with sealed card data, a host message and an event.
    fn txn(
        j: &mut Journal,
        kind: Operation,
        state: State,
        days_ago: i64,
        original: Option<i64>,
    ) -> i64 {
        let id = j.create(kind, 1250, 978, original, "created").unwrap();
        for (i, s) in path_to(state).into_iter().enumerate() {
            let changes = Changes {
                sealed: (i == 0).then(|| vec![0xAB; 32]),
                ..Changes::default()
            };
            if s == State::Armed {
                j.arm(id, "0200", "1207120000", "armed", changes).unwrap();
            } else {
                j.transition(id, s, s.name(), changes).unwrap();
            }
        }
        j.event(Some(id), "note", "an event").unwrap();
        let at = NOW - days_ago * DAY_MS;
        j.conn
            .execute(
                "UPDATE txn SET created_ms = ?2, updated_ms = ?2 WHERE id = ?1",
                params![id, at],
            )
            .unwrap();
        j.conn
            .execute(
                "INSERT INTO host_messages(txn_id, at_ms, purpose, attempt, direction, summary)
                 VALUES (?1, ?2, 'authorization', 1, 'sent', 'masked')",
                params![id, at],
            )
            .unwrap();
        id
    }

    fn ids(j: &Journal) -> BTreeSet<i64> {
        j.list(10_000).unwrap().into_iter().map(|t| t.id).collect()
    }

    fn rows(file: &Path, table: &str) -> i64 {
        let c = Connection::open(file).unwrap();
        c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn old_closed_transactions_move_and_read_back_the_rest_stays() {
        let (d, mut j) = journal();
        let dir = d.path().join("archive");
        let completed = txn(&mut j, Operation::Sale, State::Completed, 200, None);
        let declined = txn(&mut j, Operation::Sale, State::Declined, 150, None);
        let aborted = txn(&mut j, Operation::Sale, State::Aborted, 120, None);
        let reversed = txn(&mut j, Operation::Sale, State::Reversed, 95, None);
        let pending = txn(&mut j, Operation::Sale, State::ReversalPending, 300, None);
        let stuck = txn(&mut j, Operation::Sale, State::ReversalStuck, 300, None);
        let owed = txn(&mut j, Operation::Sale, State::ReceiptOwed, 300, None);
        let open_preauth = txn(&mut j, Operation::PreAuth, State::Completed, 300, None);
        // A pre-authorization completed: both go, together.
        let preauth = txn(&mut j, Operation::PreAuth, State::Completed, 200, None);
        let completion = txn(
            &mut j,
            Operation::Completion,
            State::Completed,
            199,
            Some(preauth),
        );
        j.mark_original(preauth, false, Some(completion)).unwrap();
        // An old sale voided recently: both stay, together.
        let voided = txn(&mut j, Operation::Sale, State::Completed, 100, None);
        let void = txn(&mut j, Operation::Void, State::Completed, 1, Some(voided));
        j.mark_original(voided, true, None).unwrap();
        let recent = txn(&mut j, Operation::Sale, State::Completed, 10, None);
        j.event(None, "device", "an old lane event").unwrap();
        j.conn
            .execute(
                "UPDATE events SET at_ms = ?1 WHERE txn_id IS NULL",
                [NOW - 200 * DAY_MS],
            )
            .unwrap();

        let before = ids(&j);
        let report = j.archive(90, &dir, NOW, usize::MAX).unwrap();
        let moved: BTreeSet<i64> =
            [completed, declined, aborted, reversed, preauth, completion].into();
        assert_eq!(report.moved, moved.len(), "{report:?}");
        assert_eq!(report.events_moved, 1);
        // pending, stuck, owed, the open pre-authorization, and the voided sale.
        assert_eq!(report.kept, 5, "{report:?}");
        assert!(!report.resumed);
        let stays: BTreeSet<i64> = before.difference(&moved).copied().collect();
        assert_eq!(ids(&j), stays);
        for id in [pending, stuck, owed, open_preauth, voided, void, recent] {
            assert!(stays.contains(&id), "{id} was archived");
        }
        assert!(j.events(None).unwrap().is_empty());

        // The archive files (by month created) hold them, whole, readable as a journal.
        let files = archive_files(&dir);
        assert_eq!(files, report.files);
        let mut found = BTreeSet::new();
        for file in &files {
            let a = Journal::open_read_only(file).unwrap();
            for t in a.list(10_000).unwrap() {
                assert_eq!(archive_file(&dir, t.created_ms), *file);
                assert!(!a.timeline(t.id).unwrap().is_empty());
                assert_eq!(a.host_messages(t.id).unwrap().len(), 1);
                assert_eq!(a.events(Some(t.id)).unwrap().len(), 1);
                found.insert(t.id);
            }
        }
        assert_eq!(found, moved);
        let lane_events: i64 = files
            .iter()
            .map(|f| {
                let c = Connection::open(f).unwrap();
                c.query_row(
                    "SELECT count(*) FROM events WHERE txn_id IS NULL",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .unwrap()
            })
            .sum();
        assert_eq!(lane_events, 1);
        let a = Journal::open_read_only(&archive_file(&dir, NOW - 199 * DAY_MS)).unwrap();
        assert_eq!(a.get(completion).unwrap().original_id, Some(preauth));

        // Again: nothing more to do, nothing duplicated.
        let again = j.archive(90, &dir, NOW, usize::MAX).unwrap();
        assert_eq!((again.moved, again.events_moved), (0, 0), "{again:?}");
        let total: i64 = files.iter().map(|f| rows(f, "txn")).sum();
        assert_eq!(total, 6);
        // New ids never reuse archived ones.
        let next = j.create(Operation::Sale, 1, 978, None, "new").unwrap();
        assert!(next > *before.iter().max().unwrap());
    }

    #[test]
    fn sealed_card_data_is_erased_once_no_reversal_can_need_it() {
        let (d, mut j) = journal();
        let dir = d.path().join("archive");
        let yesterday = txn(&mut j, Operation::Sale, State::Completed, 1, None);
        let today = txn(&mut j, Operation::Sale, State::Completed, 0, None);
        let owed = txn(&mut j, Operation::Sale, State::ReceiptOwed, 5, None);
        let pending = txn(&mut j, Operation::Sale, State::ReversalPending, 5, None);
        let preauth = txn(&mut j, Operation::PreAuth, State::Completed, 5, None);
        for id in [yesterday, today, owed, pending, preauth] {
            assert!(j.sealed(id).unwrap().is_some(), "{id}");
        }
        let report = j.archive(90, &dir, NOW, usize::MAX).unwrap();
        assert_eq!(report.sealed_erased, 1);
        assert_eq!(report.moved, 0);
        assert_eq!(j.sealed(yesterday).unwrap(), None);
        for id in [today, owed, pending, preauth] {
            assert!(j.sealed(id).unwrap().is_some(), "{id} lost its card data");
        }
        // Nothing to archive: no file written.
        assert!(archive_files(&dir).is_empty());
    }

    #[test]
    fn an_interrupted_move_is_finished_once_nothing_lost_nothing_duplicated() {
        let (d, mut j) = journal();
        let dir = d.path().join("archive");
        let a = txn(&mut j, Operation::Sale, State::Completed, 200, None);
        let b = txn(&mut j, Operation::Sale, State::Declined, 200, None);
        let stays = txn(&mut j, Operation::Sale, State::Completed, 2, None);
        // Erase the sealed data first (one durable write), then fail the write after the
        // note: the rows are copied to the archive, not yet deleted from the journal.
        let c = j.commits();
        j.set_fail_writes_after(Some(c + 2));
        let err = j.archive(90, &dir, NOW, usize::MAX).unwrap_err();
        assert!(err.to_string().contains("disk is full"), "{err}");
        let file = archive_file(&dir, NOW - 200 * DAY_MS);
        assert_eq!(rows(&file, "txn"), 2, "copied before the failure");
        assert!(super::super::meta(&j.conn, "archiving").unwrap().is_some());
        assert_eq!(ids(&j), [a, b, stays].into(), "still in the journal");
        // A reader meanwhile sees each transaction (in both places: the journal wins).
        j.set_fail_writes_after(None);
        let report = j.archive(90, &dir, NOW, usize::MAX).unwrap();
        assert!(report.resumed, "{report:?}");
        assert_eq!(ids(&j), [stays].into());
        assert_eq!(rows(&file, "txn"), 2);
        assert_eq!(
            rows(&file, "timeline"),
            i64::try_from(path_to(State::Completed).len() + path_to(State::Declined).len() + 2)
                .unwrap()
        );
        assert_eq!(rows(&file, "host_messages"), 2);
        assert!(super::super::meta(&j.conn, "archiving").unwrap().is_none());
    }

    #[test]
    fn a_move_interrupted_before_the_copy_is_finished_by_a_reopened_journal() {
        let (d, mut j) = journal();
        let a = txn(&mut j, Operation::Sale, State::Aborted, 200, None);
        // The archive file cannot be created (a directory is in the way): the note is
        // written, the copy fails.
        let dir = d.path().join("archive");
        let file = archive_file(&dir, NOW - 200 * DAY_MS);
        std::fs::create_dir_all(&file).unwrap();
        let err = j.archive(90, &dir, NOW, usize::MAX).unwrap_err();
        assert!(err.to_string().contains("journal-2026-05.sqlite"), "{err}");
        assert_eq!(ids(&j), [a].into());
        let path = j.path.clone();
        drop(j);
        // The note names the file of that run; once it can be written, the next run (here
        // by a reopened journal, with another directory configured) finishes the move there.
        std::fs::remove_dir(&file).unwrap();
        let mut j = Journal::open(&path).unwrap();
        let elsewhere = d.path().join("elsewhere");
        let report = j.archive(90, &elsewhere, NOW, usize::MAX).unwrap();
        assert!(report.resumed);
        assert_eq!(report.moved, 0);
        assert!(ids(&j).is_empty());
        assert_eq!(rows(&file, "txn"), 1);
        assert!(archive_files(&elsewhere).is_empty());
    }

    #[test]
    fn a_long_backlog_is_worked_off_a_bounded_step_at_a_time() {
        let (d, mut j) = journal();
        let dir = d.path().join("archive");
        // A journal that kept everything before retention: a backlog bigger than a step.
        let n = ERASE_BATCH + 500;
        let old = NOW - 200 * DAY_MS;
        let tx = j.conn.unchecked_transaction().unwrap();
        for i in 0..n {
            tx.execute(
                "INSERT INTO txn(kind, state, amount, currency, sealed, created_ms, updated_ms)
                 VALUES ('sale', 'completed', 100, 978, x'00', ?1, ?1)",
                [old + i as i64],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        // Sealed data first, a bounded step at a time; nothing moves with sealed data.
        let r = j.archive(90, &dir, NOW, 1_000).unwrap();
        assert_eq!((r.sealed_erased, r.moved, r.more), (ERASE_BATCH, 0, true));
        let r = j.archive(90, &dir, NOW, 1_000).unwrap();
        assert_eq!((r.sealed_erased, r.moved, r.more), (500, 1_000, true));
        // Then the moves, about max_moves a call.
        let mut total = r.moved;
        loop {
            let r = j.archive(90, &dir, NOW, 1_000).unwrap();
            assert!(r.moved <= 1_000);
            total += r.moved;
            if !r.more {
                break;
            }
        }
        assert_eq!(total, n);
        assert!(ids(&j).is_empty());
        let archived: i64 = archive_files(&dir).iter().map(|f| rows(f, "txn")).sum();
        assert_eq!(archived, n as i64);
    }

    #[test]
    fn a_family_across_months_moves_together_and_batches_resume() {
        let (d, mut j) = journal();
        let dir = d.path().join("archive");
        // A pre-authorization in May completed in June: one family, in May's file (a
        // journal row never references one that left, and the foreign key holds).
        let preauth = txn(&mut j, Operation::PreAuth, State::Completed, 200, None);
        let completion = txn(
            &mut j,
            Operation::Completion,
            State::Completed,
            170,
            Some(preauth),
        );
        j.mark_original(preauth, false, Some(completion)).unwrap();
        let singles: Vec<i64> = (0..5)
            .map(|i| txn(&mut j, Operation::Sale, State::Completed, 150 - i, None))
            .collect();
        // Two at a time: the family first (oldest), then the sales.
        let first = j.archive(90, &dir, NOW, 2).unwrap();
        assert!(first.more);
        assert_eq!(first.moved, 2);
        let may = archive_file(&dir, NOW - 200 * DAY_MS);
        assert_eq!(first.files, vec![may.clone()]);
        let a = Journal::open_read_only(&may).unwrap();
        assert_eq!(a.get(completion).unwrap().original_id, Some(preauth));
        let mut total = first.moved;
        let mut rounds = 1;
        loop {
            let r = j.archive(90, &dir, NOW, 2).unwrap();
            total += r.moved;
            rounds += 1;
            if !r.more {
                break;
            }
        }
        assert_eq!(total, 2 + singles.len());
        assert_eq!(rounds, 4);
        assert!(ids(&j).is_empty());
        let archived: i64 = archive_files(&dir).iter().map(|f| rows(f, "txn")).sum();
        assert_eq!(archived, 7);
    }

    #[test]
    fn a_damaged_note_is_an_error_not_a_loss() {
        let (d, mut j) = journal();
        let a = txn(&mut j, Operation::Sale, State::Completed, 200, None);
        j.conn
            .execute("INSERT INTO meta(key, value) VALUES ('archiving', 'x')", [])
            .unwrap();
        let err = j
            .archive(90, &d.path().join("archive"), NOW, usize::MAX)
            .unwrap_err();
        assert!(err.to_string().contains("archiving note"), "{err}");
        assert_eq!(ids(&j), [a].into());
    }
}
