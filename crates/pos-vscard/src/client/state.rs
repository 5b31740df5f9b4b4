//! The client's link state, why it closed, and its counters.

use super::*;

/// Why the link closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// QEMU closed the socket (it exited, or dropped the connection after an oversized
    /// message).
    Eof,
    /// [`CardClient::shutdown`] was called (or every handle was dropped).
    Shutdown,
    /// The handshake failed (bad magic, reader refused).
    HandshakeFailed(String),
    /// Anything else: I/O error, undecodable stream, a panicking card.
    Failed(String),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Eof => f.write_str("QEMU closed the socket"),
            CloseReason::Shutdown => f.write_str("shut down by the caller"),
            CloseReason::HandshakeFailed(m) => write!(f, "handshake failed: {m}"),
            CloseReason::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

/// Where the link is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Connected; Init sent, waiting for QEMU's Init and the ReaderAdd answer.
    Handshaking,
    /// The reader is added; cards can come and go.
    Ready,
    /// Closed; the threads have stopped or are stopping.
    Closed(CloseReason),
}

/// Counters and state of a client, as [`CardClient::stats`] returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Link state.
    pub state: LinkState,
    /// Reader id QEMU assigned (always 0 with QEMU), once ready.
    pub reader_id: Option<u32>,
    /// A card is inserted and QEMU was sent its ATR (and has not rejected it).
    pub card_visible: bool,
    /// APDU messages received from QEMU.
    pub apdus_received: u64,
    /// APDUs answered with a response APDU.
    pub apdus_answered: u64,
    /// APDUs answered with a VSCard Error (silent card under [`SilentPolicy::SendError`],
    /// response too long).
    pub apdus_failed: u64,
    /// APDUs not answered at all (no card, pulled by `remove_on_apdu`, silent card under
    /// [`SilentPolicy::NoAnswer`]).
    pub apdus_unanswered: u64,
    /// Cards inserted (mute ones included).
    pub insertions: u64,
    /// Mute cards inserted (no ATR, so nothing was sent to QEMU).
    pub mute_insertions: u64,
    /// ATRs QEMU refused (longer than 40 bytes, or inconsistent).
    pub atr_rejected: u64,
    /// Cards removed (by `remove`, by `remove_on_apdu`, or replaced by `insert`).
    pub removals: u64,
    /// Error messages from QEMU that answered nothing we sent, plus non-success answers.
    pub host_errors: u64,
    /// Messages from QEMU of a type it should not send, or malformed ones (skipped).
    pub unexpected: u64,
    /// The last problem seen, as text (never contains APDU data).
    pub last_error: Option<String>,
    /// The id of the last [`CardClient::sync`] marker the client's thread has reached (0:
    /// none yet). Ids grow with each `sync` call on any handle of this client; reaching one
    /// means every command queued before it has been carried out.
    pub marks_done: u64,
    /// Messages we sent that QEMU answers and has not answered yet: our Init (until QEMU's
    /// Init arrives), ReaderRemove and ReaderAdd during the handshake, each ATR and each
    /// CardRemove. Updated after each command or message the client handles; 0 when QEMU has
    /// acknowledged everything. Left as it was when the link closes.
    pub awaiting_answers: usize,
}

impl Stats {
    pub(super) fn new() -> Self {
        Stats {
            state: LinkState::Handshaking,
            reader_id: None,
            card_visible: false,
            apdus_received: 0,
            apdus_answered: 0,
            apdus_failed: 0,
            apdus_unanswered: 0,
            insertions: 0,
            mute_insertions: 0,
            atr_rejected: 0,
            removals: 0,
            host_errors: 0,
            unexpected: 0,
            last_error: None,
            marks_done: 0,
            awaiting_answers: 0,
        }
    }
}
