//! The USB printer class (USB Device Class Definition for Printing Devices 1.1), both
//! roads:
//!
//! - **direct** (`usb:VID:PID`, libusb): [`UsbPrinter`] over any [`PrinterTransfer`] — bulk
//!   OUT for data, bulk IN for replies where the interface is bidirectional (protocol 2),
//!   the class requests GET_DEVICE_ID (bRequest 0), GET_PORT_STATUS (1) and SOFT_RESET (2);
//! - **kernel** (`usblp:/dev/usb/lp0`): [`UsblpPrinter`] over any [`LpDevice`] — write and
//!   read through the usblp device node, `LPGETSTATUS` and `LPIOC_GET_DEVICE_ID` ioctls, so a
//!   box that keeps usblp loaded works without detaching it.
//!
//! The transfer layers are traits so that both roads are tested against fakes at the
//! transfer level (device ID, port status bits, unplug); [`crate::usb::UsbLink`] and
//! [`UsblpNode`] are the real ones. Every transfer is bounded by its deadline (and at most
//! [`MAX_TRANSFER`] at a time); a device that went away is `Disconnected` from then on.
//!
//! ```no_run
//! use pos_link::printer_class::{UsbPrinter, PortStatus};
//! use pos_link::usb::{UsbLink, UsbOpenOptions, CLASS_PRINTER};
//! use pos_link::{Deadline, DeviceUri, Link};
//! use std::time::Duration;
//!
//! let uri: DeviceUri = "usb:0416:5011".parse()?;
//! let opts = UsbOpenOptions { interface_class: Some(CLASS_PRINTER), ..Default::default() };
//! let mut printer = UsbPrinter::new(UsbLink::open_uri(&uri, opts)?);
//! let id = printer.device_id(Deadline::after(Duration::from_secs(1)))?;
//! let status: PortStatus = printer.port_status(Deadline::after(Duration::from_secs(1)))?;
//! println!("{} paper empty: {}", String::from_utf8_lossy(&id), status.paper_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::File;
use std::io::{Read, Write};
use std::time::Duration;

use pos_hal::{Fault, FaultKind};

use crate::error::{LinkError, Operation};
use crate::link::{Deadline, Link, Pacing};

/// Class request GET_DEVICE_ID (bRequest 0): the IEEE 1284 Device ID, a two-byte
/// big-endian length (counting itself) and the text.
pub const GET_DEVICE_ID: u8 = 0;
/// Class request GET_PORT_STATUS (bRequest 1): one byte, [`PortStatus`].
pub const GET_PORT_STATUS: u8 = 1;
/// Class request SOFT_RESET (bRequest 2): flush the buffers, reset the pipes.
pub const SOFT_RESET: u8 = 2;
/// bmRequestType of the class requests from the device: class, interface, device to host.
pub const REQUEST_TYPE_IN: u8 = 0xA1;
/// bmRequestType of SOFT_RESET: class, interface, host to device.
pub const REQUEST_TYPE_OUT: u8 = 0x21;
/// The longest single transfer wait, whatever the deadline: a job is written in pieces,
/// each bounded.
pub const MAX_TRANSFER: Duration = Duration::from_secs(5);
/// How long SOFT_RESET may take after a wedged write.
pub const SOFT_RESET_TIMEOUT: Duration = Duration::from_millis(500);
/// The device-ID buffer size asked for (the class allows 65535; real IDs are shorter).
pub const DEVICE_ID_BUFFER: usize = 1024;

/// The GET_PORT_STATUS byte (and the low byte of usblp's `LPGETSTATUS`, which uses the same
/// Centronics bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct PortStatus(pub u8);

impl PortStatus {
    /// Bit 5: paper empty.
    pub const PAPER_EMPTY: u8 = 0x20;
    /// Bit 4: selected (on line).
    pub const SELECTED: u8 = 0x10;
    /// Bit 3: not error (1 = no error).
    pub const NOT_ERROR: u8 = 0x08;

    /// Paper empty (bit 5 set).
    pub fn paper_empty(self) -> bool {
        self.0 & Self::PAPER_EMPTY != 0
    }

    /// Selected / on line (bit 4 set).
    pub fn selected(self) -> bool {
        self.0 & Self::SELECTED != 0
    }

    /// An error is signalled (bit 3, "not error", clear).
    pub fn error(self) -> bool {
        self.0 & Self::NOT_ERROR == 0
    }

    /// The bits as printer conditions: paper empty is `PAPER_OUT`, not selected `OFFLINE`,
    /// an error `ERROR`; nothing set means ready.
    pub fn conditions(self) -> pos_hal::PrinterConditions {
        use pos_hal::PrinterConditions as C;
        let mut c = C::empty();
        if self.paper_empty() {
            c |= C::PAPER_OUT;
        }
        if !self.selected() {
            c |= C::OFFLINE;
        }
        if self.error() {
            c |= C::ERROR;
        }
        c
    }
}

/// The transfers of one USB printer-class interface: what [`UsbPrinter`] needs, and what
/// a test fake implements.
pub trait PrinterTransfer: Send {
    /// The device URI (for messages).
    fn target(&self) -> &str;
    /// The interface number (wIndex of the class requests).
    fn interface(&self) -> u8;
    /// The alternate setting in use (low byte of GET_DEVICE_ID's wIndex).
    fn alternate_setting(&self) -> u8 {
        0
    }
    /// The configuration index (wValue of GET_DEVICE_ID), zero-based.
    fn config_index(&self) -> u16 {
        0
    }
    /// Whether the interface has a bulk IN endpoint (protocol 2, bidirectional).
    fn bidirectional(&self) -> bool;
    /// Bulk OUT: all of `data` before `deadline`.
    ///
    /// Errors: `Timeout` (with the bytes done), `Disconnected`, `Io`/`Usb`.
    fn bulk_out(&mut self, data: &[u8], deadline: Deadline) -> Result<(), LinkError>;
    /// Bulk IN: what arrives before `deadline` (0 bytes at the deadline).
    ///
    /// Errors: `Disconnected`, `Io`/`Usb`.
    fn bulk_in(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError>;
    /// A class request from the device; the number of bytes read into `buf`.
    ///
    /// Errors: `Timeout`, `Disconnected` (also a stall: not supported), `Io`/`Usb`.
    fn class_in(
        &mut self,
        request: u8,
        value: u16,
        index: u16,
        buf: &mut [u8],
        deadline: Deadline,
    ) -> Result<usize, LinkError>;
    /// A class request to the device without data.
    ///
    /// Errors: as [`class_in`](Self::class_in).
    fn class_out(
        &mut self,
        request: u8,
        value: u16,
        index: u16,
        deadline: Deadline,
    ) -> Result<(), LinkError>;
    /// Drop buffered input; the number of bytes dropped.
    ///
    /// Errors: `Disconnected`.
    fn discard_input(&mut self) -> Result<usize, LinkError>;
}

impl PrinterTransfer for crate::usb::UsbLink {
    fn target(&self) -> &str {
        Link::target(self)
    }
    fn interface(&self) -> u8 {
        self.endpoints().interface
    }
    fn bidirectional(&self) -> bool {
        self.endpoints().bulk_in.is_some()
    }
    fn bulk_out(&mut self, data: &[u8], deadline: Deadline) -> Result<(), LinkError> {
        self.write_all(data, deadline)
    }
    fn bulk_in(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError> {
        self.read_available(buf, deadline)
    }
    fn class_in(
        &mut self,
        request: u8,
        value: u16,
        index: u16,
        buf: &mut [u8],
        deadline: Deadline,
    ) -> Result<usize, LinkError> {
        self.control_in(REQUEST_TYPE_IN, request, value, index, buf, deadline)
    }
    fn class_out(
        &mut self,
        request: u8,
        value: u16,
        index: u16,
        deadline: Deadline,
    ) -> Result<(), LinkError> {
        self.control_out(REQUEST_TYPE_OUT, request, value, index, &[], deadline)
            .map(|_| ())
    }
    fn discard_input(&mut self) -> Result<usize, LinkError> {
        Link::discard_input(self)
    }
}

/// A deadline no further away than [`MAX_TRANSFER`].
fn bounded(deadline: Deadline) -> Deadline {
    if deadline.remaining() > MAX_TRANSFER {
        Deadline::after(MAX_TRANSFER)
    } else {
        deadline
    }
}

/// `Timeout` for a read that got nothing by its deadline.
fn nothing_read(target: &str, deadline: Deadline) -> LinkError {
    LinkError::timeout(target, Operation::Read, deadline.waited(), 0)
}

fn gone(target: &str, operation: Operation) -> LinkError {
    LinkError::Disconnected {
        target: target.to_string(),
        operation,
        detail: "the printer was unplugged earlier; open it again".into(),
        source: None,
    }
}

/// A USB printer-class printer on the direct road: a [`Link`] (bulk pipes) plus the class
/// requests.
#[derive(Debug)]
pub struct UsbPrinter<T: PrinterTransfer> {
    transfer: T,
    target: String,
    gone: bool,
    resets: u32,
}

impl<T: PrinterTransfer> UsbPrinter<T> {
    /// Drive `transfer` (the real [`crate::usb::UsbLink`], or a fake).
    pub fn new(transfer: T) -> Self {
        let target = transfer.target().to_string();
        UsbPrinter {
            transfer,
            target,
            gone: false,
            resets: 0,
        }
    }

    /// The transfer layer (e.g. a test fake, to inspect it).
    pub fn transfer(&self) -> &T {
        &self.transfer
    }

    /// How many SOFT_RESETs were sent after wedged writes.
    pub fn soft_resets(&self) -> u32 {
        self.resets
    }

    fn check(&mut self, r: Result<(), &LinkError>) {
        if let Err(e) = r {
            if e.kind() == FaultKind::Disconnected {
                self.gone = true;
            }
        }
    }

    /// GET_DEVICE_ID: the raw reply (length field and text; parse it with
    /// `pos_escpos::detect::DeviceId::parse_reply`). At most [`DEVICE_ID_BUFFER`] bytes.
    ///
    /// Errors: `Disconnected` (unplugged, or the request stalled), `Timeout`.
    pub fn device_id(&mut self, deadline: Deadline) -> Result<Vec<u8>, LinkError> {
        if self.gone {
            return Err(gone(&self.target, Operation::Read));
        }
        let mut buf = vec![0u8; DEVICE_ID_BUFFER];
        let index = u16::from(self.transfer.interface()) << 8
            | u16::from(self.transfer.alternate_setting());
        let value = self.transfer.config_index();
        let r = self
            .transfer
            .class_in(GET_DEVICE_ID, value, index, &mut buf, bounded(deadline));
        self.check(r.as_ref().map(|_| ()));
        let n = r?;
        buf.truncate(n);
        Ok(buf)
    }

    /// GET_PORT_STATUS: paper empty, selected, not error.
    ///
    /// Errors: `Disconnected`, `Timeout`; `Io` for an empty reply.
    pub fn port_status(&mut self, deadline: Deadline) -> Result<PortStatus, LinkError> {
        if self.gone {
            return Err(gone(&self.target, Operation::Read));
        }
        let mut buf = [0u8; 1];
        let index = u16::from(self.transfer.interface());
        let r = self
            .transfer
            .class_in(GET_PORT_STATUS, 0, index, &mut buf, bounded(deadline));
        self.check(r.as_ref().map(|_| ()));
        match r? {
            0 => Err(LinkError::Io {
                target: self.target.clone(),
                operation: Operation::Read,
                source: std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "GET_PORT_STATUS returned no byte",
                ),
            }),
            _ => Ok(PortStatus(buf[0])),
        }
    }

    /// SOFT_RESET: the printer flushes its buffers and resets its pipes (after a wedged
    /// job).
    ///
    /// Errors: `Disconnected`, `Timeout`.
    pub fn soft_reset(&mut self, deadline: Deadline) -> Result<(), LinkError> {
        if self.gone {
            return Err(gone(&self.target, Operation::Write));
        }
        let index = u16::from(self.transfer.interface());
        let r = self
            .transfer
            .class_out(SOFT_RESET, 0, index, bounded(deadline));
        self.check(r.as_ref().map(|_| ()));
        r?;
        self.resets += 1;
        Ok(())
    }
}

impl<T: PrinterTransfer> Link for UsbPrinter<T> {
    fn target(&self) -> &str {
        &self.target
    }

    /// Bulk OUT, each piece bounded by [`MAX_TRANSFER`]. A write that times out with the
    /// printer still there is a wedged job: SOFT_RESET is sent (bounded by
    /// [`SOFT_RESET_TIMEOUT`]) so the next job starts clean, and the `Timeout` returned.
    fn write_all(&mut self, data: &[u8], deadline: Deadline) -> Result<(), LinkError> {
        if self.gone {
            return Err(gone(&self.target, Operation::Write));
        }
        let mut done = 0usize;
        while done < data.len() {
            let rest = data.get(done..).unwrap_or_default();
            let piece = rest.get(..rest.len().min(4096)).unwrap_or(rest);
            match self.transfer.bulk_out(piece, bounded(deadline)) {
                Ok(()) => done += piece.len(),
                Err(LinkError::Timeout {
                    target,
                    operation,
                    waited,
                    done: part,
                }) => {
                    let reset = self.soft_reset(Deadline::after(SOFT_RESET_TIMEOUT));
                    if let Err(e) = reset {
                        log::warn!(
                            "{}: SOFT_RESET after a wedged write failed: {e}",
                            self.target
                        );
                    }
                    return Err(LinkError::Timeout {
                        target,
                        operation,
                        waited,
                        done: done + part,
                    });
                }
                Err(e) => {
                    self.check(Err(&e));
                    return Err(e);
                }
            }
            if deadline.passed() && done < data.len() {
                return Err(LinkError::Timeout {
                    target: self.target.clone(),
                    operation: Operation::Write,
                    waited: deadline.waited(),
                    done,
                });
            }
        }
        Ok(())
    }

    /// Bulk IN on a bidirectional interface; a unidirectional one (protocol 1) has nothing
    /// to read. Nothing by the deadline is `Timeout`, as [`Link::read_available`] says (a
    /// caller that reads until nothing is left stops there).
    fn read_available(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError> {
        if self.gone {
            return Err(gone(&self.target, Operation::Read));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.transfer.bidirectional() {
            std::thread::sleep(deadline.remaining().min(MAX_TRANSFER));
            return Err(nothing_read(&self.target, deadline));
        }
        let r = self.transfer.bulk_in(buf, bounded(deadline));
        self.check(r.as_ref().map(|_| ()));
        match r {
            Ok(0) => Err(nothing_read(&self.target, deadline)),
            other => other,
        }
    }

    fn flush(&mut self, _deadline: Deadline) -> Result<(), LinkError> {
        if self.gone {
            return Err(gone(&self.target, Operation::Write));
        }
        Ok(())
    }

    fn discard_input(&mut self) -> Result<usize, LinkError> {
        if self.gone || !self.transfer.bidirectional() {
            return Ok(0);
        }
        let r = self.transfer.discard_input();
        self.check(r.as_ref().map(|_| ()));
        r
    }

    fn pacing(&self) -> Pacing {
        Pacing {
            max_chunk: 4096,
            bytes_per_second: None,
        }
    }
}

/// The usblp device node operations: what [`UsblpPrinter`] needs, and what a test fake
/// implements.
pub trait LpDevice: Send {
    /// The device URI (for messages).
    fn target(&self) -> &str;
    /// write(2), bounded by `deadline`; the number of bytes written.
    ///
    /// Errors: `Timeout`, `Disconnected` (ENODEV after an unplug), `Io`.
    fn write(&mut self, data: &[u8], deadline: Deadline) -> Result<usize, LinkError>;
    /// read(2) of what the printer sent, bounded by `deadline` (0 bytes at the deadline).
    ///
    /// Errors: `Disconnected`, `Io`.
    fn read(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError>;
    /// The `LPGETSTATUS` ioctl: the port status byte.
    ///
    /// Errors: `Disconnected`, `Io`.
    fn lp_status(&mut self) -> Result<u8, LinkError>;
    /// The `LPIOC_GET_DEVICE_ID` ioctl: the device ID as usblp keeps it (two-byte length
    /// and text).
    ///
    /// Errors: `Disconnected`, `Io`.
    fn device_id(&mut self) -> Result<Vec<u8>, LinkError>;
}

/// A USB printer through the kernel's usblp driver (`usblp:/dev/usb/lp0`).
#[derive(Debug)]
pub struct UsblpPrinter<D: LpDevice> {
    dev: D,
    target: String,
    gone: bool,
}

impl<D: LpDevice> UsblpPrinter<D> {
    /// Drive `dev` (the real [`UsblpNode`], or a fake).
    pub fn new(dev: D) -> Self {
        let target = dev.target().to_string();
        UsblpPrinter {
            dev,
            target,
            gone: false,
        }
    }

    fn check<X>(&mut self, r: &Result<X, LinkError>) {
        if let Err(e) = r {
            if e.kind() == FaultKind::Disconnected {
                self.gone = true;
            }
        }
    }

    /// The port status (LPGETSTATUS).
    ///
    /// Errors: `Disconnected`, `Io`.
    pub fn port_status(&mut self) -> Result<PortStatus, LinkError> {
        if self.gone {
            return Err(gone(&self.target, Operation::Read));
        }
        let r = self.dev.lp_status();
        self.check(&r);
        r.map(PortStatus)
    }

    /// The IEEE 1284 device ID (LPIOC_GET_DEVICE_ID): the raw reply with its length field.
    ///
    /// Errors: `Disconnected`, `Io`.
    pub fn device_id(&mut self) -> Result<Vec<u8>, LinkError> {
        if self.gone {
            return Err(gone(&self.target, Operation::Read));
        }
        let r = self.dev.device_id();
        self.check(&r);
        r
    }
}

impl<D: LpDevice> Link for UsblpPrinter<D> {
    fn target(&self) -> &str {
        &self.target
    }

    fn write_all(&mut self, data: &[u8], deadline: Deadline) -> Result<(), LinkError> {
        if self.gone {
            return Err(gone(&self.target, Operation::Write));
        }
        let mut done = 0;
        while done < data.len() {
            if deadline.passed() {
                return Err(LinkError::Timeout {
                    target: self.target.clone(),
                    operation: Operation::Write,
                    waited: deadline.waited(),
                    done,
                });
            }
            let r = self
                .dev
                .write(data.get(done..).unwrap_or_default(), bounded(deadline));
            self.check(&r);
            match r {
                Ok(n) => done += n,
                Err(LinkError::Timeout { done: part, .. }) => {
                    return Err(LinkError::Timeout {
                        target: self.target.clone(),
                        operation: Operation::Write,
                        waited: deadline.waited(),
                        done: done + part,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Nothing by the deadline is `Timeout` (usblp answers a read with 0 bytes or EAGAIN
    /// when nothing came), as [`Link::read_available`] says: a caller that reads until
    /// nothing is left (the ESC/POS driver before each status request) would otherwise
    /// loop for ever. Found in the QEMU rig's usblp road.
    fn read_available(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError> {
        if self.gone {
            return Err(gone(&self.target, Operation::Read));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let r = self.dev.read(buf, bounded(deadline));
        self.check(&r);
        match r {
            Ok(0) => Err(nothing_read(&self.target, deadline)),
            other => other,
        }
    }

    fn flush(&mut self, _deadline: Deadline) -> Result<(), LinkError> {
        if self.gone {
            return Err(gone(&self.target, Operation::Write));
        }
        Ok(())
    }

    fn discard_input(&mut self) -> Result<usize, LinkError> {
        let mut buf = [0u8; 256];
        let mut total = 0;
        for _ in 0..16 {
            match self.read_available(&mut buf, Deadline::after(Duration::from_millis(1))) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        Ok(total)
    }

    fn pacing(&self) -> Pacing {
        Pacing {
            max_chunk: 4096,
            bytes_per_second: None,
        }
    }
}

/// The real usblp device node: non-blocking file I/O polled up to the deadline, and the
/// two ioctls.
#[derive(Debug)]
pub struct UsblpNode {
    file: File,
    target: String,
}

impl UsblpNode {
    /// Open `path` (e.g. `/dev/usb/lp0`) for reading and writing, non-blocking.
    ///
    /// Errors: `NotFound`, `PermissionDenied` (with the udev hint), `Busy`, `Io`.
    pub fn open(path: &str, target: &str) -> Result<Self, LinkError> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| crate::error::classify_io(e, target, Operation::Open, Duration::ZERO))?;
        Ok(UsblpNode {
            file,
            target: target.to_string(),
        })
    }

    fn io_error(&self, e: std::io::Error, operation: Operation, deadline: Deadline) -> LinkError {
        // usblp answers ENODEV once the printer is unplugged.
        if e.raw_os_error() == Some(libc::ENODEV) {
            return LinkError::Disconnected {
                target: self.target.clone(),
                operation,
                detail: "the printer was unplugged (ENODEV)".into(),
                source: Some(e),
            };
        }
        crate::error::classify_io(e, &self.target, operation, deadline.waited())
    }

    fn wait(&self, write: bool, deadline: Deadline) -> bool {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let flags = if write { PollFlags::OUT } else { PollFlags::IN };
        let mut fds = [PollFd::new(&self.file, flags)];
        let left = deadline.remaining().min(MAX_TRANSFER);
        let ts = Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        matches!(poll(&mut fds, Some(&ts)), Ok(n) if n > 0)
    }
}

impl LpDevice for UsblpNode {
    fn target(&self) -> &str {
        &self.target
    }

    fn write(&mut self, data: &[u8], deadline: Deadline) -> Result<usize, LinkError> {
        loop {
            match self.file.write(data) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if deadline.passed() || !self.wait(true, deadline) && deadline.passed() {
                        return Err(LinkError::Timeout {
                            target: self.target.clone(),
                            operation: Operation::Write,
                            waited: deadline.waited(),
                            done: 0,
                        });
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e, Operation::Write, deadline)),
            }
        }
    }

    fn read(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError> {
        loop {
            match self.file.read(buf) {
                Ok(n) if n > 0 => return Ok(n),
                // usblp returns 0 or EAGAIN when nothing is there yet.
                Ok(_) => {
                    if deadline.passed() {
                        return Ok(0);
                    }
                    std::thread::sleep(deadline.remaining().min(Duration::from_millis(10)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if deadline.passed() || (!self.wait(false, deadline) && deadline.passed()) {
                        return Ok(0);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e, Operation::Read, deadline)),
            }
        }
    }

    fn lp_status(&mut self) -> Result<u8, LinkError> {
        let status = lp_ioctl::get_status(&self.file)
            .map_err(|e| self.io_error(e.into(), Operation::Read, Deadline::now()))?;
        Ok(u8::try_from(status & 0xFF).unwrap_or(0))
    }

    fn device_id(&mut self) -> Result<Vec<u8>, LinkError> {
        let raw = lp_ioctl::get_device_id(&self.file)
            .map_err(|e| self.io_error(e.into(), Operation::Read, Deadline::now()))?;
        let declared = usize::from(u16::from_be_bytes([raw[0], raw[1]]));
        let len = declared.clamp(2, raw.len());
        Ok(raw.get(..len).unwrap_or_default().to_vec())
    }
}

/// The two usblp ioctls (linux/lp.h, drivers/usb/class/usblp.c). The crate's only
/// `unsafe`: an ioctl's argument type must match its request, which the kernel defines.
#[allow(unsafe_code)]
mod lp_ioctl {
    use rustix::ioctl::{Getter, Updater, ioctl, opcode};
    use std::os::fd::AsFd;

    /// `LPGETSTATUS` (0x060b): writes the port status to an `int`.
    const LPGETSTATUS: rustix::ioctl::Opcode = 0x060b;
    /// The device-ID buffer: usblp copies at most this many bytes.
    pub(super) const ID_LEN: usize = super::DEVICE_ID_BUFFER;
    /// `LPIOC_GET_DEVICE_ID(len)` = `_IOC(_IOC_READ, 'P', IOCNR_GET_DEVICE_ID = 1, len)`.
    const GET_DEVICE_ID: rustix::ioctl::Opcode = opcode::read::<[u8; ID_LEN]>(b'P', 1);

    pub(super) fn get_status(fd: impl AsFd) -> rustix::io::Result<libc::c_int> {
        // SAFETY: LPGETSTATUS takes a pointer to an int and writes one int there
        // (drivers/usb/class/usblp.c, usblp_ioctl); Getter passes a pointer to a
        // properly aligned c_int it owns.
        unsafe { ioctl(fd, Getter::<LPGETSTATUS, libc::c_int>::new()) }
    }

    pub(super) fn get_device_id(fd: impl AsFd) -> rustix::io::Result<[u8; ID_LEN]> {
        // Zeroed first: usblp copies only the ID's own length, not the whole buffer.
        let mut buf = [0u8; ID_LEN];
        // SAFETY: LPIOC_GET_DEVICE_ID(len) copies at most `len` bytes (the size encoded in
        // the opcode, here ID_LEN) to the pointer; Updater passes a pointer to `buf`, an
        // initialised [u8; ID_LEN] borrowed mutably for the call.
        unsafe { ioctl(fd, Updater::<GET_DEVICE_ID, [u8; ID_LEN]>::new(&mut buf))? };
        Ok(buf)
    }
}
