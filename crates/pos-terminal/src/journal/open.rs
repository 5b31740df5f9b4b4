//! Opening a journal: SQLite's checks, the lane's identity against its marker, the
//! counters, a new identity on purpose, and the file still being the one opened.

use super::*;

/// A `meta` value.
pub(super) fn meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(sql::META, [key], |r| r.get(0)).optional()
}

/// The journal file's (device, inode), `None` when it is not there.
pub(super) fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// SQLite's answer for a file that is not a sound database is [`JournalError::Damaged`];
/// anything else stays an SQLite error.
pub(super) fn damaged_or(path: &Path, e: rusqlite::Error) -> JournalError {
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
pub(super) fn integrity(conn: &Connection, path: &Path, full: bool) -> Result<(), JournalError> {
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

/// Whether the `txn` table has the `batch` column (schema 2).
pub(super) fn has_batch_column(conn: &Connection) -> rusqlite::Result<bool> {
    let mut st = conn.prepare("SELECT name FROM pragma_table_info('txn')")?;
    let names = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names.iter().any(|n| n == "batch"))
}

/// Schema 1 to 2 (batches and settlements), in one SQLite transaction, at the first open
/// by this version: the `batch` column (every transaction of an older journal belongs to
/// batch 1, the open one), its index, the open batch in `meta`, the settlement tables. A
/// journal already at schema 2 is left as it is. Also run on archive files, so that the
/// rows moved there keep their columns.
pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    if !has_batch_column(&tx)? {
        tx.execute_batch(
            "ALTER TABLE txn ADD COLUMN batch INTEGER;
             UPDATE txn SET batch = 1 WHERE batch IS NULL;",
        )?;
    }
    tx.execute_batch(super::settlement::SCHEMA)?;
    tx.execute_batch(
        "INSERT OR IGNORE INTO meta(key, value) VALUES ('batch', '1');
         UPDATE meta SET value = '2' WHERE key = 'schema' AND value = '1';",
    )?;
    tx.commit()
}

/// Count one more STAN allocated (`meta.stan_seq`, never wrapping).
pub(super) fn bump_stan_seq(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(sql::BUMP_STAN_SEQ, [])?;
    Ok(())
}

/// Set the STAN counter to `seq` (and the wire STAN to match: the next is `seq + 1`).
pub(super) fn set_stan_seq(conn: &Connection, seq: u64) -> rusqlite::Result<()> {
    conn.execute(
        sql::SET_STAN_SEQ,
        params![seq.to_string(), (seq % 999_999).to_string()],
    )?;
    Ok(())
}

/// Continue STANs after `stan_seq` and transaction ids after `max_id`, with an alarm event
/// saying why, in one SQLite transaction.
pub(super) fn jump_counters(
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
pub(super) fn set_txn_sequence(conn: &Connection, max_id: u64) -> rusqlite::Result<()> {
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
        migrate(&conn).map_err(sq)?;
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
            v1: false,
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
        let v1 = !has_batch_column(&conn).map_err(sq)?;
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
            v1,
        })
    }

    /// Which whole-file check [`Journal::open`] ran (`None` for a read-only handle).
    pub fn start_check(&self) -> Option<StartCheck> {
        self.start_check
    }

    /// The journal's identity against the marker: adopt, create or refuse; continue the
    /// counters past the marker's floor; write the marker (open).
    pub(super) fn adopt_identity(
        &mut self,
        marker: Option<identity::Marker>,
    ) -> Result<(), JournalError> {
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
    pub(super) fn counters(&self) -> Result<(u64, u64), JournalError> {
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
    pub(super) fn writable(&self) -> Result<(), JournalError> {
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
    pub(super) fn reserve(&mut self, stan_seq: u64, id: u64) -> Result<(), JournalError> {
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
}
