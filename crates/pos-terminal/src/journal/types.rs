//! The journal's vocabulary: states and their machine, errors, and the rows it returns.

use super::*;

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
    /// A settlement transition its state machine does not allow (a bug or a concurrent
    /// writer).
    #[error("settlement {id}: {from} cannot move to {to}")]
    IllegalSettlement {
        /// The settlement.
        id: i64,
        /// Its state.
        from: SettlementState,
        /// The state asked for.
        to: SettlementState,
    },
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
            JournalError::IllegalTransition { .. }
            | JournalError::IllegalSettlement { .. }
            | JournalError::NotFound(_) => pos_hal::FaultKind::InvalidInput,
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
    /// The batch it belongs to (`None`: a journal read from before batches).
    pub batch: Option<u32>,
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
