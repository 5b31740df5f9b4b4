//! `profile=auto` on a USB printer-class fake: the IEEE 1284 Device ID read through
//! GET_DEVICE_ID picks the model-database profile, and the printer info says so.

use std::sync::{Arc, Mutex};

use pos_escpos::{DriverConfig, detect, open_link};
use pos_link::printer_class::{GET_DEVICE_ID, PrinterTransfer, UsbPrinter};
use pos_link::{Deadline, DeviceUri, LinkError};

#[derive(Clone, Default)]
struct Fake {
    written: Arc<Mutex<Vec<u8>>>,
}

impl PrinterTransfer for Fake {
    fn target(&self) -> &str {
        "usb:0fe6:811e"
    }
    fn interface(&self) -> u8 {
        0
    }
    fn bidirectional(&self) -> bool {
        false
    }
    fn bulk_out(&mut self, data: &[u8], _: Deadline) -> Result<(), LinkError> {
        self.written.lock().expect("lock").extend_from_slice(data);
        Ok(())
    }
    fn bulk_in(&mut self, _: &mut [u8], _: Deadline) -> Result<usize, LinkError> {
        Ok(0)
    }
    fn class_in(
        &mut self,
        request: u8,
        _: u16,
        _: u16,
        buf: &mut [u8],
        _: Deadline,
    ) -> Result<usize, LinkError> {
        let reply: &[u8] = if request == GET_DEVICE_ID {
            b"\x00\x2dMFG:Rongta;CMD:ESC/POS;MDL:RP326;CLS:PRINTER;"
        } else {
            &[0x18]
        };
        let n = buf.len().min(reply.len());
        buf[..n].copy_from_slice(&reply[..n]);
        Ok(n)
    }
    fn class_out(&mut self, _: u8, _: u16, _: u16, _: Deadline) -> Result<(), LinkError> {
        Ok(())
    }
    fn discard_input(&mut self) -> Result<usize, LinkError> {
        Ok(0)
    }
}

#[test]
fn auto_profile_from_the_usb_device_id() {
    let fake = Fake::default();
    let mut link = UsbPrinter::new(fake.clone());
    let raw = link
        .device_id(Deadline::after(std::time::Duration::from_secs(1)))
        .expect("device id");
    let id = detect::DeviceId::parse_reply(&raw).expect("parses");
    let uri: DeviceUri = "usb:0fe6:811e?profile=auto".parse().expect("uri");
    let printer = open_link(
        Box::new(link),
        &uri,
        DriverConfig::default(),
        "generic-80",
        Some(id),
    )
    .expect("opens");
    let d = printer.detection().expect("detected");
    assert_eq!(d.source, "IEEE 1284 device ID");
    assert_eq!(d.model.as_deref(), Some("RP326"));
    assert_eq!(d.profile.name, "rongta-rp326");
    assert_eq!(printer.profile().name, "rongta-rp326");
    assert_eq!(
        printer.device_id().and_then(|i| i.manufacturer.clone()),
        Some("Rongta".into())
    );
    // The driver's reset went down the bulk OUT pipe.
    assert!(fake.written.lock().expect("lock").starts_with(b"\x1b@"));
}

#[test]
fn a_named_profile_is_kept_and_the_device_id_recorded() {
    let link = UsbPrinter::new(Fake::default());
    let uri: DeviceUri = "usb:0fe6:811e?profile=generic-58".parse().expect("uri");
    let id = detect::DeviceId::parse(b"MFG:Rongta;MDL:RP326").expect("parses");
    let printer = open_link(
        Box::new(link),
        &uri,
        DriverConfig::default(),
        "generic-80",
        Some(id),
    )
    .expect("opens");
    assert!(printer.detection().is_none());
    assert_eq!(printer.profile().name, "generic-58");
    assert!(printer.device_id().is_some());
}
