//! The client's error type.

use std::path::PathBuf;
use std::time::Duration;

use pos_hal::{Fault, FaultKind};

use crate::codec::DecodeError;

/// What went wrong with the card client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket could not be connected to within the caller's timeout (it never appeared,
    /// or nobody accepted). `last` is the last OS error seen.
    #[error("could not connect to VSCard socket {} within {waited:?}: {last}", path.display())]
    ConnectTimeout {
        /// The socket path.
        path: PathBuf,
        /// How long we tried.
        waited: Duration,
        /// The last connect error.
        last: std::io::Error,
    },
    /// Connecting failed with an error that retrying will not fix (permission denied, not a
    /// socket, ...).
    #[error("could not connect to VSCard socket {}: {source}", path.display())]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An I/O error on the connected socket.
    #[error("VSCard socket I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// QEMU sent bytes that are not VSCard.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The handshake failed (bad magic in QEMU's Init, reader refused, link closed before
    /// the reader was added).
    #[error("VSCard handshake failed: {0}")]
    Handshake(String),
    /// The link is closed: QEMU closed the socket (it exited or dropped us), or the client
    /// was shut down or failed. `reason` says which.
    #[error("VSCard link closed: {reason}")]
    Closed {
        /// Why it closed.
        reason: crate::CloseReason,
    },
    /// Waiting for something took longer than the caller's timeout.
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout {
        /// How long we waited.
        waited: Duration,
        /// What we waited for.
        what: &'static str,
    },
    /// The client's thread has stopped; commands can no longer be delivered.
    #[error("the VSCard client thread has stopped")]
    Stopped,
}

impl Error {
    /// The fault kind: `Timeout` for [`ConnectTimeout`](Error::ConnectTimeout) and
    /// [`Timeout`](Error::Timeout), `Io` for I/O (`PermissionDenied`/`NotFound` for a [`Connect`](Error::Connect) error of that
    /// kind), `Protocol` for decode and handshake errors,
    /// `Disconnected` for a closed link or stopped client.
    pub fn kind(&self) -> FaultKind {
        match self {
            Error::ConnectTimeout { .. } | Error::Timeout { .. } => FaultKind::Timeout,
            Error::Connect { source, .. } => match source.kind() {
                std::io::ErrorKind::PermissionDenied => FaultKind::PermissionDenied,
                std::io::ErrorKind::NotFound => FaultKind::NotFound,
                _ => FaultKind::Io,
            },
            Error::Io(_) => FaultKind::Io,
            Error::Decode(_) | Error::Handshake(_) => FaultKind::Protocol,
            Error::Closed { .. } | Error::Stopped => FaultKind::Disconnected,
        }
    }
}

impl Fault for Error {
    fn kind(&self) -> FaultKind {
        Error::kind(self)
    }
}
