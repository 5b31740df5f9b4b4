//! The driver on the kernel (usblp) road against a fake usblp node that answers a read with
//! nothing as 0 bytes, as usblp does. Before pos-link turned that into `Timeout` the driver's
//! drain before each status request never ended (found in the QEMU rig's usblp road).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pos_escpos::{DriverConfig, open_link};
use pos_hal::{Fault as _, FaultKind, ReceiptPrinter as _};
use pos_link::printer_class::{LpDevice, UsblpPrinter};
use pos_link::{Deadline, DeviceUri, LinkError};

#[derive(Clone, Default)]
struct Lp {
    /// Whether DLE EOT requests are answered.
    answers: bool,
    to_host: Arc<Mutex<Vec<u8>>>,
}

impl LpDevice for Lp {
    fn target(&self) -> &str {
        "usblp:/dev/usb/lp0"
    }
    fn write(&mut self, data: &[u8], _: Deadline) -> Result<usize, LinkError> {
        if self.answers {
            // DLE EOT n: a printer with nothing to report (fixed bits 1 and 4 only).
            let requests = data.windows(3).filter(|w| w[0] == 0x10 && w[1] == 0x04);
            let n = requests.count();
            self.to_host
                .lock()
                .expect("lock")
                .extend(std::iter::repeat_n(0x12, n));
        }
        Ok(data.len())
    }
    fn read(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError> {
        let mut q = self.to_host.lock().expect("lock");
        let n = buf.len().min(q.len());
        buf[..n].copy_from_slice(&q[..n]);
        q.drain(..n);
        if n == 0 {
            // usblp: nothing there is a read of 0 bytes, at once or after a wait.
            std::thread::sleep(deadline.remaining().min(Duration::from_millis(5)));
        }
        Ok(n)
    }
    fn lp_status(&mut self) -> Result<u8, LinkError> {
        Ok(0x18)
    }
    fn device_id(&mut self) -> Result<Vec<u8>, LinkError> {
        Ok(b"\x00\x1fMFG:EPSON;MDL:TM-T20III;".to_vec())
    }
}

/// `status()` on a fresh thread, bounded: `None` when it did not return within 20 s.
fn status_within(lp: Lp) -> Option<Result<pos_hal::PrinterConditions, FaultKind>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let uri: DeviceUri = "usblp:/dev/usb/lp0?profile=epson-tm-t20"
            .parse()
            .expect("uri");
        let config = DriverConfig {
            status_timeout: Duration::from_millis(100),
            ..DriverConfig::default()
        };
        let mut printer = open_link(
            Box::new(UsblpPrinter::new(lp)),
            &uri,
            config,
            "generic-80",
            None,
        )
        .expect("opens");
        let _ = tx.send(printer.status().map_err(|e| e.kind()));
    });
    rx.recv_timeout(Duration::from_secs(20)).ok()
}

#[test]
fn status_over_usblp_ends_when_the_printer_answers() {
    let got = status_within(Lp {
        answers: true,
        ..Lp::default()
    })
    .expect("status() returned");
    let conditions = got.expect("a status");
    assert!(conditions.is_ready(), "{conditions:?}");
}

#[test]
fn status_over_usblp_ends_when_the_printer_is_silent() {
    let got = status_within(Lp::default()).expect("status() returned instead of looping");
    assert!(got.is_err(), "a silent printer has no status: {got:?}");
}
