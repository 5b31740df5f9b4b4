//! Writing: transactions and their states (each one SQLite transaction, durable or not
//! by [`State::is_durable`]), STANs, reversal bookkeeping, events and host messages.

use super::*;

impl Journal {
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

    pub(super) fn write_state(
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

    /// Before a stuck reversal goes back to pending (an operator's requeue): its rejection
    /// count starts from zero and it is due at `due_ms` (the service's clock: now).
    ///
    /// # Errors
    /// [`JournalError::Sqlite`].
    pub fn reversal_requeue(&mut self, id: i64, due_ms: i64) -> Result<(), JournalError> {
        self.writable()?;
        self.sync(true)?;
        let sq = self.sq();
        self.conn
            .execute(sql::REVERSAL_REQUEUE, params![id, due_ms, now_ms()])
            .map_err(sq)?;
        self.committed(true);
        Ok(())
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
}
