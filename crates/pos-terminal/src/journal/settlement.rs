//! Batches and settlements: the open batch, a settlement's states (each written before the
//! message it allows leaves), the batch upload's items, and the differences found.
//!
//! A settlement of batch N starts by freezing it: in the same SQLite transaction the
//! settlement row is written and batch N+1 opens, so a sale during (or after a crash of) the
//! settlement never lands in the batch being settled. The row has one of these states:
//!
//! | state | meaning | next |
//! |---|---|---|
//! | `started` | batch N frozen, its totals recorded | `requested` |
//! | `requested` | the 0500's STAN is written; it is (being) sent | `requested` (sent again), `balanced`, `uploading` |
//! | `uploading` | the host answered 95: each transaction goes in a 0320 | `closing` |
//! | `closing` | the closing 0500's STAN is written | `closing`, `closed_with_differences` |
//! | `balanced` | final: the host agreed | - |
//! | `closed_with_differences` | final: the batch closed, the differences are recorded | - |
//!
//! A batch has at most one settlement (a unique key), so it is never closed twice; a
//! settlement not in a final state is resumed where it stopped.

use pos_acquirer::settlement::CurrencyTotals;

use super::*;

/// The settlement tables (created by the schema upgrade, see `open.rs`'s `migrate`).
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS settlement (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  batch INTEGER NOT NULL UNIQUE,
  state TEXT NOT NULL,
  forced INTEGER NOT NULL DEFAULT 0,
  totals TEXT NOT NULL,
  stan INTEGER, transmission_time TEXT, response_code TEXT,
  receipt TEXT,
  created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS settlement_state ON settlement(state);
CREATE INDEX IF NOT EXISTS txn_batch ON txn(batch);
CREATE INDEX IF NOT EXISTS txn_open_preauth ON txn(id)
  WHERE kind = 'preauth' AND completed_by IS NULL;
CREATE TABLE IF NOT EXISTS settlement_item (
  settlement_id INTEGER NOT NULL REFERENCES settlement(id),
  txn_id INTEGER NOT NULL,
  stan INTEGER NOT NULL, transmission_time TEXT NOT NULL,
  view TEXT NOT NULL, state TEXT NOT NULL,
  response_code TEXT, host_view TEXT,
  PRIMARY KEY (settlement_id, txn_id)
);
CREATE TABLE IF NOT EXISTS settlement_diff (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  settlement_id INTEGER NOT NULL REFERENCES settlement(id),
  txn_id INTEGER,
  kind TEXT NOT NULL, detail TEXT NOT NULL, action TEXT NOT NULL,
  at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS settlement_diff_s ON settlement_diff(settlement_id);
CREATE INDEX IF NOT EXISTS settlement_diff_txn ON settlement_diff(txn_id)
  WHERE txn_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS settlement_log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  settlement_id INTEGER NOT NULL REFERENCES settlement(id),
  at_ms INTEGER NOT NULL, step TEXT NOT NULL, note TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS settlement_log_s ON settlement_log(settlement_id);
";

/// The settlement SQL, one constant per statement (checked by the query-plan test).
pub(super) mod sql {
    /// The open batch.
    pub(in crate::journal) const OPEN_BATCH: &str =
        "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'batch'";
    /// Open the next batch, only if `?1` is still the open one.
    pub(in crate::journal) const NEXT_BATCH: &str = "UPDATE meta SET value = CAST(?1 + 1 AS TEXT)
         WHERE key = 'batch' AND CAST(value AS INTEGER) = ?1";
    /// A batch's transactions (after `select_txn`).
    pub(in crate::journal) const BY_BATCH: &str = "WHERE batch = ?1 ORDER BY id";
    /// Pre-authorizations not completed (after `select_txn`), through their partial index.
    pub(in crate::journal) const OPEN_PREAUTHS: &str =
        "WHERE kind = 'preauth' AND completed_by IS NULL
         AND state IN ('completed', 'receipt_owed') ORDER BY id";
    /// A new settlement.
    pub(in crate::journal) const INSERT: &str =
        "INSERT INTO settlement(batch, state, forced, totals, created_ms, updated_ms)
         VALUES (?1, 'started', ?2, ?3, ?4, ?4)";
    /// A settlement's batch.
    pub(in crate::journal) const BATCH_OF: &str = "SELECT batch FROM settlement WHERE id = ?1";
    /// A settlement's state (before a transition).
    pub(in crate::journal) const STATE: &str = "SELECT state FROM settlement WHERE id = ?1";
    /// A state change, with the message's STAN and time, the response code, the receipt.
    pub(in crate::journal) const TRANSITION: &str = "UPDATE settlement SET state = ?2,
         stan = COALESCE(?3, stan), transmission_time = COALESCE(?4, transmission_time),
         response_code = COALESCE(?5, response_code), receipt = COALESCE(?6, receipt),
         updated_ms = ?7 WHERE id = ?1";
    /// A log entry.
    pub(in crate::journal) const LOG: &str =
        "INSERT INTO settlement_log(settlement_id, at_ms, step, note) VALUES (?1, ?2, ?3, ?4)";
    /// A difference.
    pub(in crate::journal) const DIFF: &str =
        "INSERT INTO settlement_diff(settlement_id, txn_id, kind, detail, action, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    /// What was done about a difference.
    pub(in crate::journal) const DIFF_ACTION: &str =
        "UPDATE settlement_diff SET action = ?2 WHERE seq = ?1";
    /// An upload item armed (before its advice leaves); re-armed with a new STAN.
    pub(in crate::journal) const ITEM_ARM: &str =
        "INSERT INTO settlement_item(settlement_id, txn_id, stan, transmission_time, view, state)
         VALUES (?1, ?2, ?3, ?4, ?5, 'armed')
         ON CONFLICT(settlement_id, txn_id) DO UPDATE SET stan = ?3, transmission_time = ?4";
    /// An upload item answered.
    pub(in crate::journal) const ITEM_ANSWERED: &str = "UPDATE settlement_item
         SET state = 'answered', response_code = ?3, host_view = ?4
         WHERE settlement_id = ?1 AND txn_id = ?2";
    /// Settlement columns.
    pub(in crate::journal) const COLUMNS: &str = "SELECT id, batch, state, forced, totals, stan,
         transmission_time, response_code, receipt, created_ms, updated_ms FROM settlement";
    /// One settlement (after `COLUMNS`).
    pub(in crate::journal) const BY_ID: &str = "WHERE id = ?1";
    /// The settlement of a batch (after `COLUMNS`).
    pub(in crate::journal) const BY_BATCH_NUMBER: &str = "WHERE batch = ?1";
    /// The latest settlements (after `COLUMNS`).
    pub(in crate::journal) const LATEST: &str = "ORDER BY id DESC LIMIT ?1";
    /// Settlements not finished (after `COLUMNS`).
    pub(in crate::journal) const UNFINISHED: &str =
        "WHERE state IN ('started', 'requested', 'uploading', 'closing') ORDER BY id";
    /// A settlement's upload items.
    pub(in crate::journal) const ITEMS: &str = "SELECT txn_id, stan, transmission_time, view,
         state, response_code, host_view FROM settlement_item WHERE settlement_id = ?1
         ORDER BY txn_id";
    /// Difference columns.
    pub(in crate::journal) const DIFF_COLUMNS: &str =
        "SELECT d.seq, d.settlement_id, s.batch, d.txn_id, d.kind, d.detail, d.action, d.at_ms
         FROM settlement_diff d JOIN settlement s ON s.id = d.settlement_id";
    /// A settlement's differences (after `DIFF_COLUMNS`).
    pub(in crate::journal) const DIFFS_OF: &str = "WHERE d.settlement_id = ?1 ORDER BY d.seq";
    /// A transaction's differences (after `DIFF_COLUMNS`).
    pub(in crate::journal) const DIFFS_OF_TXN: &str = "WHERE d.txn_id = ?1 ORDER BY d.seq";
    /// A settlement's log.
    pub(in crate::journal) const LOG_OF: &str = "SELECT at_ms, step, note FROM settlement_log
         WHERE settlement_id = ?1 ORDER BY seq";
}

/// Where a settlement is: `started` → `requested` → `balanced`, or → `uploading` →
/// `closing` → `closed_with_differences` (see [`SettlementState::next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SettlementState {
    /// The batch is frozen and its totals recorded.
    Started,
    /// The reconciliation request's STAN is written; it is (being) sent.
    Requested,
    /// The host was out of balance: the batch is being uploaded.
    Uploading,
    /// The closing reconciliation request's STAN is written.
    Closing,
    /// Final: the host agreed.
    Balanced,
    /// Final: the batch closed after an upload, differences recorded.
    ClosedWithDifferences,
}

impl SettlementState {
    /// Every state.
    pub const ALL: [SettlementState; 6] = [
        SettlementState::Started,
        SettlementState::Requested,
        SettlementState::Uploading,
        SettlementState::Closing,
        SettlementState::Balanced,
        SettlementState::ClosedWithDifferences,
    ];

    /// Stable snake_case name (as stored and shown).
    pub fn name(self) -> &'static str {
        match self {
            SettlementState::Started => "started",
            SettlementState::Requested => "requested",
            SettlementState::Uploading => "uploading",
            SettlementState::Closing => "closing",
            SettlementState::Balanced => "balanced",
            SettlementState::ClosedWithDifferences => "closed_with_differences",
        }
    }

    /// The state of a stored name.
    pub fn from_name(name: &str) -> Option<SettlementState> {
        SettlementState::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether the batch is closed.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            SettlementState::Balanced | SettlementState::ClosedWithDifferences
        )
    }

    /// The states this one may move to.
    pub fn next(self) -> &'static [SettlementState] {
        use SettlementState::*;
        match self {
            Started => &[Requested],
            Requested => &[Requested, Balanced, Uploading],
            Uploading => &[Closing],
            Closing => &[Closing, ClosedWithDifferences],
            Balanced | ClosedWithDifferences => &[],
        }
    }
}

impl std::fmt::Display for SettlementState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A settlement as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settlement {
    /// Settlement id.
    pub id: i64,
    /// The batch it closes.
    pub batch: u32,
    /// Where it is.
    pub state: SettlementState,
    /// Started with `--force` past stuck reversals.
    pub forced: bool,
    /// The terminal's totals, per currency.
    pub totals: Vec<CurrencyTotals>,
    /// STAN of the last reconciliation request.
    pub stan: Option<u32>,
    /// Its transmission time.
    pub transmission_time: Option<String>,
    /// The host's last response code to a reconciliation request.
    pub response_code: Option<String>,
    /// The settlement receipt (once closed).
    pub receipt: Option<String>,
    /// Started (ms since the epoch).
    pub created_ms: i64,
    /// Last change (ms since the epoch).
    pub updated_ms: i64,
}

/// One transaction of a batch upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadItem {
    /// The transaction.
    pub txn_id: i64,
    /// STAN of its advice.
    pub stan: u32,
    /// Transmission time of its advice.
    pub transmission_time: String,
    /// What the terminal sent as its view (`standing`, `voided`, `reversed`).
    pub view: String,
    /// `armed` (written, maybe sent) or `answered`.
    pub state: String,
    /// The host's response code.
    pub response_code: Option<String>,
    /// The host's view (`state,amount,rrn`).
    pub host_view: Option<String>,
}

/// A difference between the terminal and the host, found by a settlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// Its number in the journal.
    pub seq: i64,
    /// The settlement that found it.
    pub settlement_id: i64,
    /// That settlement's batch.
    pub batch: u32,
    /// The terminal's transaction, when there is one.
    pub txn_id: Option<i64>,
    /// What kind (`host_charged_terminal_reversed`, `terminal_charged_host_no_record`,
    /// `host_only`, `known_stuck_reversal`, `state_mismatch`).
    pub kind: String,
    /// What differs, in plain words (masked card data only).
    pub detail: String,
    /// What was done, or what to do.
    pub action: String,
    /// When it was found (ms since the epoch).
    pub at_ms: i64,
}

/// A difference to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDifference {
    /// The terminal's transaction, if any.
    pub txn_id: Option<i64>,
    /// Kind (see [`Difference::kind`]).
    pub kind: &'static str,
    /// What differs.
    pub detail: String,
    /// What was done, or what to do.
    pub action: String,
}

/// An entry of a settlement's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettlementLogEntry {
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// The step (`started`, `requested`, `sent`, `received`, `failed`, `advice`, ...).
    pub step: String,
    /// What happened (masked).
    pub note: String,
}

type SettlementRow = (
    i64,
    i64,
    String,
    bool,
    String,
    Option<u32>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

impl Journal {
    /// The open batch: new transactions belong to it (1 in a journal from before batches).
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn open_batch(&self) -> Result<u32, JournalError> {
        if self.v1 {
            return Ok(1);
        }
        let b: Option<i64> = self
            .conn
            .query_row(sql::OPEN_BATCH, [], |r| r.get(0))
            .optional()
            .map_err(self.sq())?;
        Ok(b.and_then(|b| u32::try_from(b).ok()).unwrap_or(1))
    }

    /// The transactions of a batch, oldest first.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`], [`JournalError::Corrupt`].
    pub fn batch_txns(&self, batch: u32) -> Result<Vec<Txn>, JournalError> {
        if self.v1 {
            return if batch == 1 {
                self.all()
            } else {
                Ok(Vec::new())
            };
        }
        self.query(sql::BY_BATCH, &[&batch])
    }

    /// Approved pre-authorizations not completed yet, whatever their batch, oldest first.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`], [`JournalError::Corrupt`].
    pub fn open_preauths(&self) -> Result<Vec<Txn>, JournalError> {
        if self.v1 {
            return Ok(self
                .in_states(&[State::Completed, State::ReceiptOwed])?
                .into_iter()
                .filter(|t| t.kind == Operation::PreAuth && t.completed_by.is_none())
                .collect());
        }
        self.query(sql::OPEN_PREAUTHS, &[])
    }

    /// Start settling `batch` (it must be the open batch): the settlement row with the
    /// terminal's `totals`, the next batch opened, and the `known` differences (each with
    /// an alarm event), in one durable write. Returns the settlement id.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`] (also when the batch already has a settlement, or is no
    /// longer the open one: nothing is written then).
    pub fn settlement_start(
        &mut self,
        batch: u32,
        forced: bool,
        totals: &[CurrencyTotals],
        known: &[NewDifference],
    ) -> Result<i64, JournalError> {
        self.writable()?;
        self.sync(true)?;
        let now = now_ms();
        let sq = self.sq_owned();
        let totals_json = serde_json::to_string(totals).unwrap_or_else(|_| "[]".into());
        let tx = self.conn.transaction().map_err(&sq)?;
        let moved = tx.execute(sql::NEXT_BATCH, [batch]).map_err(&sq)?;
        if moved != 1 {
            return Err(sq(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
                Some(format!("batch {batch} is not the open batch")),
            )));
        }
        tx.execute(sql::INSERT, params![batch, forced, totals_json, now])
            .map_err(&sq)?;
        let id = tx.last_insert_rowid();
        let note = format!(
            "batch {batch} frozen for settlement{}; batch {} open",
            if forced { " (forced)" } else { "" },
            batch + 1
        );
        tx.execute(sql::LOG, params![id, now, "started", note])
            .map_err(&sq)?;
        let alarms = write_diffs(&tx, id, batch, known, now).map_err(&sq)?;
        tx.commit().map_err(&sq)?;
        self.committed(true);
        self.notify_alarms(alarms);
        Ok(id)
    }

    /// Move settlement `id` to `to` (checked against [`SettlementState::next`]), with the
    /// request's STAN and time (before it is sent), the host's response code, the receipt,
    /// and differences found, in one durable write.
    ///
    /// # Errors
    /// [`JournalError::IllegalSettlement`], [`JournalError::Sqlite`].
    #[allow(clippy::too_many_arguments)]
    pub fn settlement_step(
        &mut self,
        id: i64,
        to: SettlementState,
        note: &str,
        stan: Option<(u32, &str)>,
        response_code: Option<&str>,
        receipt: Option<&str>,
        diffs: &[NewDifference],
    ) -> Result<(), JournalError> {
        self.writable()?;
        self.sync(true)?;
        let now = now_ms();
        let sq = self.sq_owned();
        let tx = self.conn.transaction().map_err(&sq)?;
        let from: Option<String> = tx
            .query_row(sql::STATE, [id], |r| r.get(0))
            .optional()
            .map_err(&sq)?;
        let from = from.ok_or(JournalError::NotFound(id))?;
        let from = SettlementState::from_name(&from).ok_or(JournalError::Corrupt {
            id,
            what: "settlement state",
            value: from,
        })?;
        if !from.next().contains(&to) {
            return Err(JournalError::IllegalSettlement { id, from, to });
        }
        let batch: i64 = tx
            .query_row(sql::BATCH_OF, [id], |r| r.get(0))
            .map_err(&sq)?;
        tx.execute(
            sql::TRANSITION,
            params![
                id,
                to.name(),
                stan.map(|s| s.0),
                stan.map(|s| s.1),
                response_code,
                receipt,
                now
            ],
        )
        .map_err(&sq)?;
        tx.execute(sql::LOG, params![id, now, to.name(), note])
            .map_err(&sq)?;
        let alarms =
            write_diffs(&tx, id, u32::try_from(batch).unwrap_or(0), diffs, now).map_err(&sq)?;
        tx.commit().map_err(&sq)?;
        self.committed(true);
        self.notify_alarms(alarms);
        Ok(())
    }

    /// A note in a settlement's log (a host message, a refusal): not durable on its own.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn settlement_note(&mut self, id: i64, step: &str, note: &str) -> Result<(), JournalError> {
        self.writable()?;
        self.sync(false)?;
        let sq = self.sq();
        self.conn
            .execute(sql::LOG, params![id, now_ms(), step, note])
            .map_err(sq)?;
        self.committed(false);
        Ok(())
    }

    /// A host message of a settlement, in its log (summaries are masked).
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn settlement_message(
        &mut self,
        id: i64,
        purpose: &str,
        event: &WireEvent,
    ) -> Result<(), JournalError> {
        let (step, note) = match event {
            WireEvent::Sent { mti, stan, summary } => {
                ("sent", format!("{purpose}: {mti} STAN {stan} {summary}"))
            }
            WireEvent::Received {
                mti,
                response_code,
                summary,
                elapsed,
            } => (
                "received",
                format!(
                    "{purpose}: {mti} response {} in {} ms {summary}",
                    response_code.as_deref().unwrap_or("-"),
                    elapsed.as_millis()
                ),
            ),
            WireEvent::Failed { error, after_send } => (
                "failed",
                format!(
                    "{purpose}: {error} ({})",
                    if *after_send {
                        "after the request left"
                    } else {
                        "nothing was sent"
                    }
                ),
            ),
        };
        self.settlement_note(id, step, &note)
    }

    /// An upload item armed: its advice's STAN and time written before it leaves (again,
    /// with a new STAN, when it is sent again). Durable.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn upload_arm(
        &mut self,
        id: i64,
        txn_id: i64,
        stan: u32,
        transmission_time: &str,
        view: &str,
    ) -> Result<(), JournalError> {
        self.writable()?;
        self.sync(true)?;
        let sq = self.sq();
        self.conn
            .execute(
                sql::ITEM_ARM,
                params![id, txn_id, stan, transmission_time, view],
            )
            .map_err(sq)?;
        self.committed(true);
        Ok(())
    }

    /// An upload item answered, with the differences its answer shows, in one durable
    /// write (each difference with an alarm event). Returns the differences' numbers.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn upload_answered(
        &mut self,
        id: i64,
        txn_id: i64,
        response_code: &str,
        host_view: Option<&str>,
        diffs: &[NewDifference],
    ) -> Result<Vec<i64>, JournalError> {
        self.writable()?;
        self.sync(true)?;
        let now = now_ms();
        let sq = self.sq_owned();
        let tx = self.conn.transaction().map_err(&sq)?;
        tx.execute(
            sql::ITEM_ANSWERED,
            params![id, txn_id, response_code, host_view],
        )
        .map_err(&sq)?;
        let batch: i64 = tx
            .query_row(sql::BATCH_OF, [id], |r| r.get(0))
            .map_err(&sq)?;
        let alarms =
            write_diffs(&tx, id, u32::try_from(batch).unwrap_or(0), diffs, now).map_err(&sq)?;
        tx.commit().map_err(&sq)?;
        self.committed(true);
        let seqs = alarms.iter().map(|a| a.seq).collect();
        self.notify_alarms(alarms);
        Ok(seqs)
    }

    /// Record what was done about difference `seq`.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn difference_action(&mut self, seq: i64, action: &str) -> Result<(), JournalError> {
        self.writable()?;
        self.sync(true)?;
        let sq = self.sq();
        self.conn
            .execute(sql::DIFF_ACTION, params![seq, action])
            .map_err(sq)?;
        self.committed(true);
        Ok(())
    }

    fn notify_alarms(&mut self, alarms: Vec<Difference>) {
        for d in alarms {
            self.notify(Change::Difference(d));
        }
    }

    fn settlements_where(
        &self,
        rest: &str,
        p: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Settlement>, JournalError> {
        if self.v1 {
            return Ok(Vec::new());
        }
        let sq = self.sq();
        let mut st = self
            .conn
            .prepare_cached(&format!("{} {rest}", sql::COLUMNS))
            .map_err(&sq)?;
        let rows: Vec<SettlementRow> = st
            .query_map(p, |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                ))
            })
            .map_err(&sq)?
            .collect::<Result<_, _>>()
            .map_err(&sq)?;
        rows.into_iter()
            .map(
                |(id, batch, state, forced, totals, stan, tt, rc, receipt, c, u)| {
                    Ok(Settlement {
                        id,
                        batch: u32::try_from(batch).unwrap_or(0),
                        state: SettlementState::from_name(&state).ok_or(JournalError::Corrupt {
                            id,
                            what: "settlement state",
                            value: state,
                        })?,
                        forced,
                        totals: serde_json::from_str(&totals).map_err(|_| {
                            JournalError::Corrupt {
                                id,
                                what: "settlement totals",
                                value: totals.clone(),
                            }
                        })?,
                        stan,
                        transmission_time: tt,
                        response_code: rc,
                        receipt,
                        created_ms: c,
                        updated_ms: u,
                    })
                },
            )
            .collect()
    }

    /// One settlement.
    ///
    /// # Errors
    /// [`JournalError::NotFound`], [`JournalError::Sqlite`], [`JournalError::Corrupt`].
    pub fn settlement(&self, id: i64) -> Result<Settlement, JournalError> {
        self.settlements_where(sql::BY_ID, &[&id])?
            .pop()
            .ok_or(JournalError::NotFound(id))
    }

    /// The settlement of a batch, if it has one.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`], [`JournalError::Corrupt`].
    pub fn settlement_of_batch(&self, batch: u32) -> Result<Option<Settlement>, JournalError> {
        Ok(self
            .settlements_where(sql::BY_BATCH_NUMBER, &[&batch])?
            .pop())
    }

    /// The latest settlements, newest first.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`], [`JournalError::Corrupt`].
    pub fn settlements(&self, limit: u32) -> Result<Vec<Settlement>, JournalError> {
        self.settlements_where(sql::LATEST, &[&limit])
    }

    /// The settlement not yet finished (a crash or a host outage stopped it), if any.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`], [`JournalError::Corrupt`].
    pub fn unfinished_settlement(&self) -> Result<Option<Settlement>, JournalError> {
        Ok(self
            .settlements_where(sql::UNFINISHED, &[])?
            .into_iter()
            .next())
    }

    /// A settlement's upload items.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn upload_items(&self, id: i64) -> Result<Vec<UploadItem>, JournalError> {
        if self.v1 {
            return Ok(Vec::new());
        }
        let sq = self.sq();
        let mut st = self.conn.prepare_cached(sql::ITEMS).map_err(&sq)?;
        let rows = st
            .query_map([id], |r| {
                Ok(UploadItem {
                    txn_id: r.get(0)?,
                    stan: r.get(1)?,
                    transmission_time: r.get(2)?,
                    view: r.get(3)?,
                    state: r.get(4)?,
                    response_code: r.get(5)?,
                    host_view: r.get(6)?,
                })
            })
            .map_err(&sq)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&sq)?;
        Ok(rows)
    }

    fn diffs_where(&self, rest: &str, id: i64) -> Result<Vec<Difference>, JournalError> {
        if self.v1 {
            return Ok(Vec::new());
        }
        let sq = self.sq();
        let mut st = self
            .conn
            .prepare_cached(&format!("{} {rest}", sql::DIFF_COLUMNS))
            .map_err(&sq)?;
        let rows = st
            .query_map([id], |r| {
                let batch: i64 = r.get(2)?;
                Ok(Difference {
                    seq: r.get(0)?,
                    settlement_id: r.get(1)?,
                    batch: u32::try_from(batch).unwrap_or(0),
                    txn_id: r.get(3)?,
                    kind: r.get(4)?,
                    detail: r.get(5)?,
                    action: r.get(6)?,
                    at_ms: r.get(7)?,
                })
            })
            .map_err(&sq)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&sq)?;
        Ok(rows)
    }

    /// The differences a settlement found.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn differences(&self, settlement_id: i64) -> Result<Vec<Difference>, JournalError> {
        self.diffs_where(sql::DIFFS_OF, settlement_id)
    }

    /// The differences found about a transaction (by any settlement).
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn differences_of_txn(&self, txn_id: i64) -> Result<Vec<Difference>, JournalError> {
        self.diffs_where(sql::DIFFS_OF_TXN, txn_id)
    }

    /// A settlement's log, in order.
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn settlement_log(&self, id: i64) -> Result<Vec<SettlementLogEntry>, JournalError> {
        if self.v1 {
            return Ok(Vec::new());
        }
        let sq = self.sq();
        let mut st = self.conn.prepare_cached(sql::LOG_OF).map_err(&sq)?;
        let rows = st
            .query_map([id], |r| {
                Ok(SettlementLogEntry {
                    at_ms: r.get(0)?,
                    step: r.get(1)?,
                    note: r.get(2)?,
                })
            })
            .map_err(&sq)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&sq)?;
        Ok(rows)
    }
}

/// Write differences and their alarm events; returns each difference as stored.
fn write_diffs(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    batch: u32,
    diffs: &[NewDifference],
    now: i64,
) -> rusqlite::Result<Vec<Difference>> {
    let mut out = Vec::new();
    for d in diffs {
        tx.execute(
            sql::DIFF,
            params![id, d.txn_id, d.kind, d.detail, d.action, now],
        )?;
        let seq = tx.last_insert_rowid();
        let alarm = format!(
            "settlement of batch {batch}: {} ({}): {}",
            d.detail, d.kind, d.action
        );
        tx.execute(
            super::sql::INSERT_EVENT,
            params![d.txn_id, now, "alarm", alarm],
        )?;
        out.push(Difference {
            seq,
            settlement_id: id,
            batch,
            txn_id: d.txn_id,
            kind: d.kind.to_string(),
            detail: d.detail.clone(),
            action: d.action.clone(),
            at_ms: now,
        });
    }
    Ok(out)
}
