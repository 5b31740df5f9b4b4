//! Re-opening one device of a lane, for a service that supervises its devices.

use pos_terminal::config::DeviceConfig;
use pos_terminal::devices::{Drawer, Msr, Printer, Reader};

use crate::error::{LaneError, LaneFault, Role};
use crate::sim::SimLane;

/// Re-opens one device of a lane from its configured URI: after the device was unplugged
/// and plugged in again (USB hot-plug), or its serial line hung up. One attempt per call;
/// retrying with backoff is the caller's.
///
/// Real devices are opened exactly as [`open`](crate::open) opens them. Simulated ones go
/// through the lane's [`SimLane`]: while the virtual device is unplugged the call fails with
/// [`FaultKind::NotFound`](pos_hal::FaultKind::NotFound) ("reader not plugged in"), as
/// opening a real device that is not there does; once it is plugged in again
/// ([`SimLane::replug_reader`], [`SimLane::replug_printer`], [`SimLane::replug_msr`]) the call
/// returns a driver of the new virtual device. Re-opening a simulated device that is plugged
/// in and already open: the reader and the stripe reader are plugged in anew (the old driver
/// dies; the reader gets a fresh card of the lane's card), the printer gives another
/// handle on its one driver.
///
/// Created by [`Lane::reopener`](crate::Lane::reopener); `Send` and `'static`, so it can
/// live in the service's supervisor thread.
#[derive(Debug, Clone)]
pub struct Reopener {
    uris: DeviceConfig,
    sim: Option<SimLane>,
}

/// The lane has no device of `role` (its URI is `none`).
fn none_configured(role: Role, uri: &str) -> LaneError {
    LaneError::new(
        role,
        uri,
        LaneFault {
            kind: pos_hal::FaultKind::NotFound,
            message: format!("the lane has no {role} (configured as none)"),
        },
    )
}

impl Reopener {
    pub(crate) fn new(uris: DeviceConfig, sim: Option<SimLane>) -> Self {
        Reopener { uris, sim }
    }

    /// Open the chip reader again.
    ///
    /// # Errors
    /// [`FaultKind::NotFound`](pos_hal::FaultKind::NotFound) when the lane has no reader
    /// (`none`) or the (virtual) reader is not plugged in; otherwise as [`open`](crate::open)
    /// for the reader (the driver's error: `NotFound`, `PermissionDenied`, `Busy`, ...).
    pub fn reader(&mut self) -> Result<Reader, LaneError> {
        if let Some(r) = self.sim.as_ref().and_then(SimLane::reopen_reader) {
            return r;
        }
        let (reader, _, _) = crate::open_reader(&self.uris.reader, None)?;
        reader.ok_or_else(|| none_configured(Role::Reader, &self.uris.reader))
    }

    /// Open the receipt printer again.
    ///
    /// # Errors
    /// As [`reader`](Self::reader), for the printer.
    pub fn printer(&mut self) -> Result<Printer, LaneError> {
        self.printer_and_drawer().map(|(p, _)| p)
    }

    /// Open the receipt printer again, and the cash drawer behind it when the lane has one
    /// (`[devices] drawer = "printer"`): a drawer of the old printer died with it.
    ///
    /// # Errors
    /// As [`printer`](Self::printer); also a bad drawer setting
    /// ([`drawer_pulse`](crate::drawer_pulse)).
    pub fn printer_and_drawer(&mut self) -> Result<(Printer, Option<Drawer>), LaneError> {
        let pulse = crate::drawer_pulse(&self.uris)?;
        if let Some(p) = self.sim.as_ref().and_then(SimLane::reopen_printer) {
            let p = p?;
            let drawer =
                pulse.map(|pulse| -> Drawer { Box::new(pos_hal::Erased(p.drawer(pulse))) });
            return Ok((Box::new(pos_hal::Erased(p)), drawer));
        }
        let (printer, _, drawer) = crate::open_printer_with_drawer(&self.uris.printer, pulse)?;
        let printer = printer.ok_or_else(|| none_configured(Role::Printer, &self.uris.printer))?;
        Ok((printer, drawer))
    }

    /// Open the magnetic stripe reader again.
    ///
    /// # Errors
    /// As [`reader`](Self::reader), for the stripe reader.
    pub fn msr(&mut self) -> Result<Msr, LaneError> {
        if let Some(m) = self.sim.as_ref().and_then(SimLane::reopen_msr) {
            return m;
        }
        let (msr, _) = crate::open_msr(&self.uris.msr)?;
        msr.ok_or_else(|| none_configured(Role::Msr, &self.uris.msr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reopener_can_move_to_a_supervisor_thread() {
        fn send_static<T: Send + Sync + 'static>() {}
        send_static::<Reopener>();
    }
}
