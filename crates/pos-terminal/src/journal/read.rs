//! Reading: transactions, their timelines, events and host messages, counts and the
//! report's groups, and the online backup.

use super::*;

impl Journal {
    pub(super) fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Txn, String, String)> {
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
                batch: r.get(28)?,
            },
            kind,
            state,
        ))
    }

    pub(super) fn finish(row: (Txn, String, String)) -> Result<Txn, JournalError> {
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

    pub(super) fn query(
        &self,
        rest: &str,
        p: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Txn>, JournalError> {
        let mut stmt = self
            .conn
            .prepare_cached(&if self.v1 {
                sql::select_txn_v1(rest)
            } else {
                sql::select_txn(rest)
            })
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
