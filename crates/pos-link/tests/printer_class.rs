//! The USB printer class, both roads, against fakes at the transfer level: device ID, port
//! status bits, SOFT_RESET on a wedged job, unplug. (The real kernel path is the rig's.)

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pos_hal::{Fault, FaultKind, PrinterConditions};
use pos_link::printer_class::{
    GET_DEVICE_ID, GET_PORT_STATUS, LpDevice, PortStatus, PrinterTransfer, SOFT_RESET, UsbPrinter,
    UsblpPrinter,
};
use pos_link::{Deadline, Link, LinkError, Operation};

#[derive(Default)]
struct State {
    device_id: Vec<u8>,
    port_status: u8,
    unplugged: bool,
    wedged: bool,
    written: Vec<u8>,
    to_host: Vec<u8>,
    /// (request, value, index) of every class request.
    requests: Vec<(u8, u16, u16)>,
}

#[derive(Clone)]
struct FakeTransfer {
    state: Arc<Mutex<State>>,
    bidirectional: bool,
}

fn unplugged(op: Operation) -> LinkError {
    LinkError::Disconnected {
        target: "usb:0416:5011".into(),
        operation: op,
        detail: "LIBUSB_ERROR_NO_DEVICE".into(),
        source: None,
    }
}

impl FakeTransfer {
    fn new(bidirectional: bool) -> Self {
        let state = State {
            device_id: b"\x00\x3bMFG:EPSON;CMD:ESC/POS;MDL:TM-T20III;CLS:PRINTER;DES:TM-T20III;"
                .to_vec(),
            port_status: PortStatus::SELECTED | PortStatus::NOT_ERROR,
            ..State::default()
        };
        FakeTransfer {
            state: Arc::new(Mutex::new(state)),
            bidirectional,
        }
    }
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().expect("fake state"))
    }
}

impl PrinterTransfer for FakeTransfer {
    fn target(&self) -> &str {
        "usb:0416:5011"
    }
    fn interface(&self) -> u8 {
        1
    }
    fn bidirectional(&self) -> bool {
        self.bidirectional
    }
    fn bulk_out(&mut self, data: &[u8], deadline: Deadline) -> Result<(), LinkError> {
        self.with(|s| {
            if s.unplugged {
                return Err(unplugged(Operation::Write));
            }
            if s.wedged {
                std::thread::sleep(deadline.remaining().min(Duration::from_millis(20)));
                return Err(LinkError::Timeout {
                    target: "usb:0416:5011".into(),
                    operation: Operation::Write,
                    waited: deadline.waited(),
                    done: 0,
                });
            }
            s.written.extend_from_slice(data);
            Ok(())
        })
    }
    fn bulk_in(&mut self, buf: &mut [u8], _deadline: Deadline) -> Result<usize, LinkError> {
        self.with(|s| {
            if s.unplugged {
                return Err(unplugged(Operation::Read));
            }
            let n = buf.len().min(s.to_host.len());
            buf[..n].copy_from_slice(&s.to_host[..n]);
            s.to_host.drain(..n);
            Ok(n)
        })
    }
    fn class_in(
        &mut self,
        request: u8,
        value: u16,
        index: u16,
        buf: &mut [u8],
        _deadline: Deadline,
    ) -> Result<usize, LinkError> {
        self.with(|s| {
            s.requests.push((request, value, index));
            if s.unplugged {
                return Err(unplugged(Operation::Read));
            }
            let reply = match request {
                GET_DEVICE_ID => s.device_id.clone(),
                GET_PORT_STATUS => vec![s.port_status],
                _ => return Err(unplugged(Operation::Read)),
            };
            let n = buf.len().min(reply.len());
            buf[..n].copy_from_slice(&reply[..n]);
            Ok(n)
        })
    }
    fn class_out(
        &mut self,
        request: u8,
        value: u16,
        index: u16,
        _deadline: Deadline,
    ) -> Result<(), LinkError> {
        self.with(|s| {
            s.requests.push((request, value, index));
            if s.unplugged {
                return Err(unplugged(Operation::Write));
            }
            if request == SOFT_RESET {
                s.wedged = false;
            }
            Ok(())
        })
    }
    fn discard_input(&mut self) -> Result<usize, LinkError> {
        Ok(self.with(|s| s.to_host.drain(..).count()))
    }
}

fn soon() -> Deadline {
    Deadline::after(Duration::from_millis(200))
}

#[test]
fn direct_device_id_uses_the_class_request_layout() {
    let fake = FakeTransfer::new(true);
    let mut p = UsbPrinter::new(fake.clone());
    let id = p.device_id(soon()).expect("device id");
    assert!(id.starts_with(b"\x00\x3bMFG:EPSON;"));
    // GET_DEVICE_ID: wValue config index 0, wIndex interface << 8 | alternate setting.
    assert_eq!(fake.with(|s| s.requests.clone()), vec![(0, 0, 0x0100)]);
}

#[test]
fn direct_port_status_bits_are_printer_conditions() {
    let fake = FakeTransfer::new(true);
    let mut p = UsbPrinter::new(fake.clone());
    let ready = p.port_status(soon()).expect("status");
    assert!(ready.selected() && !ready.error() && !ready.paper_empty());
    assert_eq!(ready.conditions(), PrinterConditions::empty());

    fake.with(|s| s.port_status = PortStatus::PAPER_EMPTY | PortStatus::SELECTED);
    let st = p.port_status(soon()).expect("status");
    assert!(st.paper_empty());
    assert!(st.error(), "bit 3 clear: an error");
    assert_eq!(
        st.conditions(),
        PrinterConditions::PAPER_OUT | PrinterConditions::ERROR
    );
    fake.with(|s| s.port_status = PortStatus::NOT_ERROR);
    assert_eq!(
        p.port_status(soon()).expect("status").conditions(),
        PrinterConditions::OFFLINE
    );
    assert_eq!(
        fake.with(|s| s.requests.last().copied()),
        Some((GET_PORT_STATUS, 0, 1))
    );
}

#[test]
fn direct_bulk_pipes_carry_the_job_and_replies() {
    let fake = FakeTransfer::new(true);
    let mut p = UsbPrinter::new(fake.clone());
    let job: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    p.write_all(&job, soon()).expect("written");
    assert_eq!(fake.with(|s| s.written.clone()), job);
    let mut buf = [0u8; 8];
    assert_eq!(
        p.read_available(&mut buf, soon())
            .expect_err("nothing came")
            .kind(),
        FaultKind::Timeout
    );
    fake.with(|s| s.to_host = vec![0x16]);
    assert_eq!(p.read_available(&mut buf, soon()).expect("read"), 1);
    assert_eq!(buf[0], 0x16);
}

#[test]
fn direct_unidirectional_read_waits_for_the_deadline_only() {
    let mut p = UsbPrinter::new(FakeTransfer::new(false));
    let start = Instant::now();
    let mut buf = [0u8; 4];
    assert_eq!(
        p.read_available(&mut buf, Deadline::after(Duration::from_millis(50)))
            .expect_err("nothing to read")
            .kind(),
        FaultKind::Timeout
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(40) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[test]
fn direct_wedged_job_gets_a_soft_reset_and_a_bounded_timeout() {
    let fake = FakeTransfer::new(true);
    fake.with(|s| s.wedged = true);
    let mut p = UsbPrinter::new(fake.clone());
    let start = Instant::now();
    let err = p
        .write_all(b"\x1b@receipt", Deadline::after(Duration::from_millis(100)))
        .expect_err("wedged");
    assert_eq!(err.kind(), FaultKind::Timeout);
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(p.soft_resets(), 1);
    assert_eq!(
        fake.with(|s| s.requests.last().copied()),
        Some((SOFT_RESET, 0, 1))
    );
    // The reset unwedged it: the next job goes through.
    p.write_all(b"next", soon()).expect("after reset");
    assert_eq!(fake.with(|s| s.written.clone()), b"next");
}

#[test]
fn direct_unplug_is_disconnected_and_stays_so() {
    let fake = FakeTransfer::new(true);
    let mut p = UsbPrinter::new(fake.clone());
    fake.with(|s| s.unplugged = true);
    let err = p.write_all(b"x", soon()).expect_err("unplugged");
    assert_eq!(err.kind(), FaultKind::Disconnected);
    // Even if the fake came back, this handle is gone: the lane re-opens.
    fake.with(|s| s.unplugged = false);
    let requests = fake.with(|s| s.requests.len());
    assert_eq!(
        p.port_status(soon()).expect_err("gone").kind(),
        FaultKind::Disconnected
    );
    assert_eq!(
        p.device_id(soon()).expect_err("gone").kind(),
        FaultKind::Disconnected
    );
    assert_eq!(
        fake.with(|s| s.requests.len()),
        requests,
        "no transfer tried"
    );
    let mut buf = [0u8; 1];
    assert_eq!(
        p.read_available(&mut buf, soon()).expect_err("gone").kind(),
        FaultKind::Disconnected
    );
}

#[derive(Clone)]
struct FakeLp(Arc<Mutex<State>>);

impl LpDevice for FakeLp {
    fn target(&self) -> &str {
        "usblp:/dev/usb/lp0"
    }
    fn write(&mut self, data: &[u8], _deadline: Deadline) -> Result<usize, LinkError> {
        let mut s = self.0.lock().expect("state");
        if s.unplugged {
            return Err(unplugged(Operation::Write));
        }
        // The kernel takes at most a page at a time.
        let n = data.len().min(4096);
        s.written.extend_from_slice(&data[..n]);
        Ok(n)
    }
    fn read(&mut self, buf: &mut [u8], _deadline: Deadline) -> Result<usize, LinkError> {
        let mut s = self.0.lock().expect("state");
        if s.unplugged {
            return Err(unplugged(Operation::Read));
        }
        let n = buf.len().min(s.to_host.len());
        buf[..n].copy_from_slice(&s.to_host[..n]);
        s.to_host.drain(..n);
        Ok(n)
    }
    fn lp_status(&mut self) -> Result<u8, LinkError> {
        let s = self.0.lock().expect("state");
        if s.unplugged {
            return Err(unplugged(Operation::Read));
        }
        Ok(s.port_status)
    }
    fn device_id(&mut self) -> Result<Vec<u8>, LinkError> {
        let s = self.0.lock().expect("state");
        if s.unplugged {
            return Err(unplugged(Operation::Read));
        }
        Ok(s.device_id.clone())
    }
}

#[test]
fn kernel_road_device_id_status_io_and_unplug() {
    let fake = FakeTransfer::new(true);
    let lp = FakeLp(fake.state.clone());
    let mut p = UsblpPrinter::new(lp);
    let id = p.device_id().expect("ioctl");
    assert!(String::from_utf8_lossy(&id).contains("MDL:TM-T20III"));
    assert_eq!(
        p.port_status().expect("LPGETSTATUS").conditions(),
        PrinterConditions::empty()
    );
    fake.with(|s| s.port_status = PortStatus::PAPER_EMPTY | PortStatus::SELECTED);
    assert!(p.port_status().expect("LPGETSTATUS").paper_empty());

    let job = vec![b'x'; 10_000];
    p.write_all(&job, soon())
        .expect("short writes are continued");
    assert_eq!(fake.with(|s| s.written.len()), 10_000);
    // Nothing there: a timeout, never Ok(0) (a drain loop would never end).
    let mut buf = [0u8; 4];
    assert_eq!(
        p.read_available(&mut buf, Deadline::after(Duration::from_millis(20)))
            .expect_err("nothing to read")
            .kind(),
        FaultKind::Timeout
    );
    assert_eq!(p.read_available(&mut [], soon()).expect("empty buffer"), 0);
    fake.with(|s| s.to_host = vec![0x12, 0x00]);
    assert_eq!(p.read_available(&mut buf, soon()).expect("read"), 2);

    fake.with(|s| s.unplugged = true);
    assert_eq!(
        p.write_all(b"y", soon()).expect_err("unplugged").kind(),
        FaultKind::Disconnected
    );
    fake.with(|s| s.unplugged = false);
    assert_eq!(
        p.port_status().expect_err("gone").kind(),
        FaultKind::Disconnected
    );
}

#[test]
fn usblp_uri_round_trips() {
    let uri: pos_link::DeviceUri = "usblp:/dev/usb/lp0?profile=auto".parse().expect("parses");
    assert_eq!(uri.scheme(), "usblp");
    assert_eq!(
        uri.address(),
        &pos_link::Address::Usblp {
            path: "/dev/usb/lp0".into()
        }
    );
    assert_eq!(
        uri.to_string()
            .parse::<pos_link::DeviceUri>()
            .expect("again"),
        uri
    );
    assert!("usblp:".parse::<pos_link::DeviceUri>().is_err());
}

#[test]
fn usblp_open_of_a_missing_node_is_not_found() {
    let uri: pos_link::DeviceUri = "usblp:/dev/usb/lp-missing-99".parse().expect("parses");
    let Err(err) = pos_link::open(&uri, Duration::from_secs(1)) else {
        panic!("opened a node that does not exist");
    };
    assert_eq!(err.kind(), FaultKind::NotFound, "{err}");
}
