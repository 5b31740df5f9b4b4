//! The devices of a lane, as HAL trait objects. The service never names a concrete driver:
//! a factory (the `pos-lane` crate) opens them from the configured URIs.

use pos_hal::{CashDrawer, ChipReader, DeviceError, MagstripeReader, ReceiptPrinter};

/// A chip reader of any driver.
pub type Reader = Box<dyn ChipReader<Error = DeviceError>>;
/// A receipt printer of any driver.
pub type Printer = Box<dyn ReceiptPrinter<Error = DeviceError>>;
/// A magnetic stripe reader of any driver.
pub type Msr = Box<dyn MagstripeReader<Error = DeviceError>>;
/// A cash drawer of any driver (on the printer's kick-out connector: the ESC/POS driver's).
pub type Drawer = Box<dyn CashDrawer<Error = DeviceError>>;

/// The devices of one lane. A lane without a printer prints no receipts (every sale is
/// recorded "no receipt"); without a stripe reader it takes chip cards only.
#[derive(Default)]
pub struct Devices {
    /// The chip reader (slot 0 is used).
    pub reader: Option<Reader>,
    /// The receipt printer.
    pub printer: Option<Printer>,
    /// The magnetic stripe reader.
    pub msr: Option<Msr>,
    /// The cash drawer. Without one a cash sale opens nothing (the cashier uses the key)
    /// and cannot be required to find the drawer closed.
    pub drawer: Option<Drawer>,
}

impl std::fmt::Debug for Devices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = |d: Option<pos_hal::DeviceInfo>| d.map(|i| i.to_string());
        f.debug_struct("Devices")
            .field("reader", &name(self.reader.as_ref().map(|r| r.info())))
            .field("printer", &name(self.printer.as_ref().map(|p| p.info())))
            .field("msr", &name(self.msr.as_ref().map(|m| m.info())))
            .field(
                "drawer",
                &self
                    .drawer
                    .as_ref()
                    .map(|d| format!("{} ({})", d.info(), d.pulse())),
            )
            .finish()
    }
}
