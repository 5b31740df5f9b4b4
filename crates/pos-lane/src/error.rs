//! The factory's error: which device, which URI, what the driver said.

use std::fmt;

use pos_hal::{DeviceError, Fault, FaultKind};

/// Which device of a lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The chip reader.
    Reader,
    /// The receipt printer.
    Printer,
    /// The magnetic stripe reader.
    Msr,
}

impl Role {
    /// The name in messages and in the config (`reader`, `printer`, `msr`).
    pub fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Printer => "printer",
            Role::Msr => "msr",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A device of the lane that cannot be opened or driven: names the device, its URI and the
/// driver's error (kept as [`source`](std::error::Error::source), its
/// [`FaultKind`] as [`kind`](Fault::kind)).
#[derive(Debug, thiserror::Error)]
#[error("{device} {uri:?}: {source}")]
pub struct LaneError {
    /// Which device.
    pub device: Role,
    /// Its configured URI.
    pub uri: String,
    /// What the driver said.
    #[source]
    pub source: DeviceError,
}

impl LaneError {
    /// A driver error of `device` at `uri`.
    pub fn new<E: Fault + Send + Sync + 'static>(device: Role, uri: &str, err: E) -> Self {
        LaneError {
            device,
            uri: uri.to_string(),
            source: DeviceError::new(err),
        }
    }

    /// The lane has no simulated `device` to act on.
    pub(crate) fn not_simulated(device: Role, uri: &str, what: &str) -> Self {
        LaneError::new(
            device,
            uri,
            LaneFault {
                kind: FaultKind::NotFound,
                message: format!("the lane has no simulated {device} to {what}"),
            },
        )
    }
}

impl Fault for LaneError {
    fn kind(&self) -> FaultKind {
        self.source.kind()
    }
}

/// An error of the factory itself (an address no driver takes, no simulator to act on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneFault {
    /// Its kind.
    pub kind: FaultKind,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LaneFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LaneFault {}

impl Fault for LaneFault {
    fn kind(&self) -> FaultKind {
        self.kind
    }
}

/// A URI that does not parse ([`FaultKind::InvalidInput`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub struct BadUri(#[from] pub pos_link::UriError);

impl Fault for BadUri {
    fn kind(&self) -> FaultKind {
        FaultKind::InvalidInput
    }
}
