//! The printer driver's error type.

use pos_hal::{Fault, FaultKind, PrinterConditions};
use pos_link::LinkError;

use crate::encode::EncodeError;
use crate::profile::ProfileError;
use crate::status::StatusError;

/// How far a print job got when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct JobProgress {
    /// Bytes of the job the printer accepted.
    pub bytes_sent: usize,
    /// Bytes in the whole job.
    pub bytes_total: usize,
    /// Index of the document block being sent when it stopped (blocks before it were sent
    /// whole; that does not mean they printed).
    pub block: usize,
    /// Blocks in the document.
    pub blocks: usize,
}

impl std::fmt::Display for JobProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the printer accepted {} of {} bytes (up to document block {} of {})",
            self.bytes_sent,
            self.bytes_total,
            (self.block + 1).min(self.blocks.max(1)),
            self.blocks
        )
    }
}

/// An error from the ESC/POS driver. [`Fault::kind`] says what the service should do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EscPosError {
    /// The link to the printer failed (unplugged, permission, timeout at the transport).
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The printer's status stops printing: the job was refused before any byte was sent.
    #[error("printer not ready ({}): nothing was printed", .conditions.names().join(", "))]
    NotReady {
        /// The fault that stops it (most actionable first).
        kind: FaultKind,
        /// All conditions reported.
        conditions: PrinterConditions,
    },
    /// The drawer was not pulsed: the printer cannot act on a pulse now (it would keep it
    /// in its buffer and open the drawer later, unasked).
    #[error("drawer not opened: the printer is not ready ({}), so no pulse was sent", .conditions.names().join(", "))]
    DrawerRefused {
        /// The printer's stopping condition (most actionable first).
        kind: FaultKind,
        /// All conditions reported.
        conditions: PrinterConditions,
    },
    /// The printer stopped during a job: the receipt did not (completely) print.
    #[error("print job failed with {kind} ({}); {progress}", .conditions.names().join(", "))]
    JobFailed {
        /// The fault.
        kind: FaultKind,
        /// The conditions the printer reported (empty when it went silent).
        conditions: PrinterConditions,
        /// How far the job got.
        progress: JobProgress,
    },
    /// The printer does not answer status requests: offline, powered off, or a model that
    /// goes silent while its cover is open.
    #[error(
        "printer does not answer status requests within {timeout_ms} ms (offline, off, or cover open)"
    )]
    Silent {
        /// How long we waited.
        timeout_ms: u64,
    },
    /// The printer answered with bytes that are not a valid reply.
    #[error(transparent)]
    Status(#[from] StatusError),
    /// The printer sent only bytes that are no valid reply while a reply was awaited.
    #[error("printer answered with {garbage_bytes} byte(s) that are no valid status reply")]
    Garbled {
        /// How many bytes.
        garbage_bytes: usize,
    },
    /// The document cannot be encoded for this printer (bad barcode data, image too wide, ...).
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A profile could not be loaded.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The printer cannot do what was asked (e.g. cut without a cutter).
    #[error("{0}")]
    Unsupported(String),
    /// A device URI that is not a printer address, or bad `sim:` options.
    #[error("{0}")]
    BadAddress(String),
}

impl Fault for EscPosError {
    fn kind(&self) -> FaultKind {
        match self {
            EscPosError::Link(e) => e.kind(),
            EscPosError::NotReady { kind, .. }
            | EscPosError::DrawerRefused { kind, .. }
            | EscPosError::JobFailed { kind, .. } => *kind,
            EscPosError::Silent { .. } => FaultKind::PrinterOffline,
            EscPosError::Status(e) => e.kind(),
            EscPosError::Garbled { .. } => FaultKind::Protocol,
            EscPosError::Encode(e) => e.kind(),
            EscPosError::Profile(_) | EscPosError::Unsupported(_) | EscPosError::BadAddress(_) => {
                FaultKind::InvalidInput
            }
        }
    }
}
