//! The common face of every device: identity, state, health, events.

use std::fmt;

use crate::event::Subscription;
use crate::fault::Fault;
use crate::health::{HealthLevel, HealthReport};

/// What kind of device this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum DeviceKind {
    /// An EMV chip (contact smart-card) reader.
    ChipReader,
    /// A magnetic-stripe reader.
    MagstripeReader,
    /// A receipt printer.
    ReceiptPrinter,
    /// A cash drawer (on a receipt printer's drawer kick-out connector).
    CashDrawer,
}

impl DeviceKind {
    /// Stable snake_case name.
    pub const fn name(self) -> &'static str {
        match self {
            DeviceKind::ChipReader => "chip_reader",
            DeviceKind::MagstripeReader => "magstripe_reader",
            DeviceKind::ReceiptPrinter => "receipt_printer",
            DeviceKind::CashDrawer => "cash_drawer",
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Who a device is: kind, maker, model, serial, firmware and the URI it was opened from.
///
/// Strings the device did not report are `None`, never made up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DeviceInfo {
    /// The kind of device.
    pub kind: DeviceKind,
    /// Manufacturer, as the device or a vendor table names it.
    pub vendor: Option<String>,
    /// Model name.
    pub model: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
    /// Firmware version.
    pub firmware: Option<String>,
    /// The device URI it was opened from (`usb:04b8:0e28`, `sim:printer`, ...).
    pub uri: String,
}

impl DeviceInfo {
    /// Info with only kind and URI known.
    pub fn new(kind: DeviceKind, uri: impl Into<String>) -> Self {
        DeviceInfo {
            kind,
            vendor: None,
            model: None,
            serial: None,
            firmware: None,
            uri: uri.into(),
        }
    }
}

impl fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.uri)?;
        let name: Vec<&str> = [self.vendor.as_deref(), self.model.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        if !name.is_empty() {
            write!(f, " ({})", name.join(" "))?;
        }
        if let Some(fw) = &self.firmware {
            write!(f, " fw {fw}")?;
        }
        Ok(())
    }
}

/// The UnifiedPOS device states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum DeviceState {
    /// Not open: no I/O possible.
    Closed,
    /// Open and ready for a request.
    Idle,
    /// Carrying out a request.
    Busy,
    /// A fault stops the device until it is cleared (see the last `Fault` event).
    Error,
}

impl DeviceState {
    /// Stable snake_case name.
    pub const fn name(self) -> &'static str {
        match self {
            DeviceState::Closed => "closed",
            DeviceState::Idle => "idle",
            DeviceState::Busy => "busy",
            DeviceState::Error => "error",
        }
    }
}

impl fmt::Display for DeviceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What every device can do, whatever its kind.
///
/// Implementors: see the crate docs' contract. `Error` is the driver's own rich error type.
pub trait Device: Send {
    /// The driver's error type.
    type Error: Fault + Send + Sync + 'static;

    /// Who the device is. Does no I/O (returns what was learnt when opening).
    fn info(&self) -> DeviceInfo;

    /// The current state. Does no I/O.
    fn state(&self) -> DeviceState;

    /// Run the health checks of `level` and report each check's outcome.
    ///
    /// - [`HealthLevel::Internal`]: checks without touching the outside world (the driver's
    ///   own state, the link is open). Fast; no device I/O beyond a status request.
    /// - [`HealthLevel::External`]: exercises the device (status, identification, power-cycle
    ///   a card slot, ...). Bounded by a few device timeouts.
    /// - [`HealthLevel::Interactive`]: also checks that need a person (print a test page,
    ///   swipe a card); the report says what the person should look at. Bounded by the
    ///   driver's documented interaction timeout.
    ///
    /// A failed check is reported *in* the report (outcome `Fail` with its fault kind), not
    /// as an error. Errors: only when no report can be produced at all (the device is closed
    /// -> `Disconnected`/`NotFound`).
    fn check_health(&mut self, level: HealthLevel) -> Result<HealthReport, Self::Error>;

    /// Subscribe to this device's events (insertions, removals, status changes, faults,
    /// disconnections). Events come from the driver's monitor thread; each subscriber gets
    /// every event after it subscribed. Dropping the [`Subscription`] unsubscribes.
    ///
    /// Errors: when the driver has no monitor running (device closed). Does not block.
    fn subscribe(&mut self) -> Result<Subscription, Self::Error>;
}

forward_lent_and_boxed!(Device {
    type Error = T::Error;
    fn info(&self) -> DeviceInfo {
        (**self).info()
    }
    fn state(&self) -> DeviceState {
        (**self).state()
    }
    fn check_health(&mut self, level: HealthLevel) -> Result<HealthReport, Self::Error> {
        (**self).check_health(level)
    }
    fn subscribe(&mut self) -> Result<Subscription, Self::Error> {
        (**self).subscribe()
    }
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_display_shows_what_is_known() {
        let mut i = DeviceInfo::new(DeviceKind::ReceiptPrinter, "usb:04b8:0e28");
        assert_eq!(i.to_string(), "receipt_printer usb:04b8:0e28");
        i.vendor = Some("Epson".into());
        i.model = Some("TM-T20III".into());
        i.firmware = Some("1.01".into());
        assert_eq!(
            i.to_string(),
            "receipt_printer usb:04b8:0e28 (Epson TM-T20III) fw 1.01"
        );
    }

    #[test]
    fn names() {
        assert_eq!(DeviceKind::ChipReader.to_string(), "chip_reader");
        assert_eq!(DeviceState::Error.to_string(), "error");
    }
}
