//! Type-erased devices, for services that pick drivers at run time.
//!
//! ```
//! use pos_hal::{DeviceError, Erased, FaultKind, ReceiptPrinter};
//!
//! fn hold<P: ReceiptPrinter + 'static>(printer: P) -> Box<dyn ReceiptPrinter<Error = DeviceError>> {
//!     Box::new(Erased(printer))
//! }
//! ```

use std::fmt;

use crate::card::{Atr, ChipReader, ReaderCapabilities, SlotState};
use crate::device::{Device, DeviceInfo, DeviceState};
use crate::document::{CutKind, Document};
use crate::drawer::{CashDrawer, DrawerPulse, DrawerState};
use crate::event::Subscription;
use crate::fault::{Fault, FaultKind};
use crate::health::{HealthLevel, HealthReport};
use crate::magstripe::{MagstripeReader, Swipe};
use crate::printer::{PrintOutcome, PrinterConditions, ReceiptPrinter};

/// Any driver's error, with its kind kept and the original error as `source()`.
pub struct DeviceError {
    kind: FaultKind,
    inner: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl DeviceError {
    /// Wrap a driver error.
    pub fn new<E: Fault + Send + Sync + 'static>(err: E) -> Self {
        DeviceError {
            kind: err.kind(),
            inner: Box::new(err),
        }
    }

    /// The wrapped error, to downcast to the driver's type when the caller knows it.
    pub fn inner(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.inner
    }
}

impl fmt::Debug for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceError")
            .field("kind", &self.kind)
            .field("inner", &self.inner)
            .finish()
    }
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The driver's message already says what happened; the kind is for machines.
        fmt::Display::fmt(&self.inner, f)
    }
}

impl std::error::Error for DeviceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.inner)
    }
}

impl Fault for DeviceError {
    fn kind(&self) -> FaultKind {
        self.kind
    }
}

/// A driver whose errors are turned into [`DeviceError`], so that devices of different
/// drivers fit one trait object type (`Box<dyn ReceiptPrinter<Error = DeviceError>>`).
#[derive(Debug)]
pub struct Erased<D>(pub D);

impl<D: Device> Device for Erased<D> {
    type Error = DeviceError;
    fn info(&self) -> DeviceInfo {
        self.0.info()
    }
    fn state(&self) -> DeviceState {
        self.0.state()
    }
    fn check_health(&mut self, level: HealthLevel) -> Result<HealthReport, DeviceError> {
        self.0.check_health(level).map_err(DeviceError::new)
    }
    fn subscribe(&mut self) -> Result<Subscription, DeviceError> {
        self.0.subscribe().map_err(DeviceError::new)
    }
}

impl<D: ChipReader> ChipReader for Erased<D> {
    fn slot_count(&self) -> u8 {
        self.0.slot_count()
    }
    fn capabilities(&self) -> ReaderCapabilities {
        self.0.capabilities()
    }
    fn slot_status(&mut self, slot: u8) -> Result<SlotState, DeviceError> {
        self.0.slot_status(slot).map_err(DeviceError::new)
    }
    fn power_on(&mut self, slot: u8) -> Result<Atr, DeviceError> {
        self.0.power_on(slot).map_err(DeviceError::new)
    }
    fn power_off(&mut self, slot: u8) -> Result<(), DeviceError> {
        self.0.power_off(slot).map_err(DeviceError::new)
    }
    fn transmit(&mut self, slot: u8, command: &[u8]) -> Result<Vec<u8>, DeviceError> {
        self.0.transmit(slot, command).map_err(DeviceError::new)
    }
}

impl<D: MagstripeReader> MagstripeReader for Erased<D> {
    fn wait_for_swipe(&mut self, timeout: std::time::Duration) -> Result<Swipe, DeviceError> {
        self.0.wait_for_swipe(timeout).map_err(DeviceError::new)
    }
}

impl<D: ReceiptPrinter> ReceiptPrinter for Erased<D> {
    fn status(&mut self) -> Result<PrinterConditions, DeviceError> {
        self.0.status().map_err(DeviceError::new)
    }
    fn print(&mut self, document: &Document) -> Result<PrintOutcome, DeviceError> {
        self.0.print(document).map_err(DeviceError::new)
    }
    fn cut(&mut self, kind: CutKind) -> Result<(), DeviceError> {
        self.0.cut(kind).map_err(DeviceError::new)
    }
    fn recover(&mut self) -> Result<PrinterConditions, DeviceError> {
        self.0.recover().map_err(DeviceError::new)
    }
}

impl<D: CashDrawer> CashDrawer for Erased<D> {
    fn pulse(&self) -> DrawerPulse {
        self.0.pulse()
    }
    fn open_drawer(&mut self) -> Result<DrawerState, DeviceError> {
        self.0.open_drawer().map_err(DeviceError::new)
    }
    fn drawer_state(&mut self) -> Result<DrawerState, DeviceError> {
        self.0.drawer_state().map_err(DeviceError::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DeviceKind, EventHub};

    #[derive(Debug)]
    struct JamError {
        lines_printed: u32,
    }
    impl fmt::Display for JamError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "cutter jammed after {} lines", self.lines_printed)
        }
    }
    impl std::error::Error for JamError {}
    impl Fault for JamError {
        fn kind(&self) -> FaultKind {
            FaultKind::CutterJam
        }
    }

    struct JammedPrinter(EventHub);
    impl Device for JammedPrinter {
        type Error = JamError;
        fn info(&self) -> DeviceInfo {
            DeviceInfo::new(DeviceKind::ReceiptPrinter, "test:jam")
        }
        fn state(&self) -> DeviceState {
            DeviceState::Error
        }
        fn check_health(&mut self, level: HealthLevel) -> Result<HealthReport, JamError> {
            let mut r = HealthReport::new("test:jam", level);
            r.fail("cutter", FaultKind::CutterJam, "jammed");
            Ok(r)
        }
        fn subscribe(&mut self) -> Result<Subscription, JamError> {
            Ok(self.0.subscribe())
        }
    }
    impl ReceiptPrinter for JammedPrinter {
        fn status(&mut self) -> Result<PrinterConditions, JamError> {
            Ok(PrinterConditions::ERROR | PrinterConditions::CUTTER_JAM)
        }
        fn print(&mut self, _: &Document) -> Result<PrintOutcome, JamError> {
            Err(JamError { lines_printed: 7 })
        }
        fn cut(&mut self, _: CutKind) -> Result<(), JamError> {
            Err(JamError { lines_printed: 0 })
        }
        fn recover(&mut self) -> Result<PrinterConditions, JamError> {
            // Still jammed: nobody freed the cutter.
            self.status()
        }
    }

    #[test]
    fn erased_keeps_kind_message_and_source() {
        let mut p: Box<dyn ReceiptPrinter<Error = DeviceError>> =
            Box::new(Erased(JammedPrinter(EventHub::new("test:jam"))));
        assert_eq!(
            p.status().unwrap().blocking_fault(),
            Some(FaultKind::CutterJam)
        );
        let err = p.print(&Document::new()).unwrap_err();
        assert_eq!(err.kind(), FaultKind::CutterJam);
        assert_eq!(err.to_string(), "cutter jammed after 7 lines");
        let inner = err
            .inner()
            .downcast_ref::<JamError>()
            .expect("driver error kept");
        assert_eq!(inner.lines_printed, 7);
        assert!(std::error::Error::source(&err).is_some());
        assert_eq!(
            p.recover().unwrap().blocking_fault(),
            Some(FaultKind::CutterJam)
        );
        assert!(!p.check_health(HealthLevel::External).unwrap().healthy());
        assert_eq!(p.state(), DeviceState::Error);
    }
}
