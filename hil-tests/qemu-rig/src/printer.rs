//! The printer behind QEMU's FTDI adapter: our virtual ESC/POS printer served on the
//! adapter's Unix socket. QEMU attaches the `usb-serial` device to the guest's bus only
//! while a client is connected, so connecting is plugging the printer in and closing is
//! pulling its cable.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pos_escpos::sim::{SimConfig, SimFault, VirtualPrinter};
use pos_hal::Fault as _;
use pos_link::{Deadline, Link, LinkError, Operation, Pacing};

/// A [`Link`] over a connected Unix stream socket.
#[derive(Debug)]
pub struct UnixLink {
    stream: UnixStream,
    target: String,
}

impl UnixLink {
    /// Wrap a connected stream; `target` names it in messages.
    pub fn new(stream: UnixStream, target: impl Into<String>) -> Self {
        UnixLink {
            stream,
            target: target.into(),
        }
    }
}

fn io_error(target: &str, op: Operation, e: std::io::Error, waited: Duration) -> LinkError {
    pos_link::classify_io(e, target, op, waited)
}

impl Link for UnixLink {
    fn target(&self) -> &str {
        &self.target
    }

    fn write_all(&mut self, data: &[u8], deadline: Deadline) -> Result<(), LinkError> {
        let left = deadline.remaining().max(Duration::from_millis(1));
        self.stream
            .set_write_timeout(Some(left))
            .map_err(|e| io_error(&self.target, Operation::Write, e, deadline.waited()))?;
        self.stream
            .write_all(data)
            .map_err(|e| io_error(&self.target, Operation::Write, e, deadline.waited()))
    }

    fn read_available(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let left = deadline.remaining().max(Duration::from_millis(1));
        self.stream
            .set_read_timeout(Some(left))
            .map_err(|e| io_error(&self.target, Operation::Read, e, deadline.waited()))?;
        match self.stream.read(buf) {
            Ok(0) => Err(LinkError::disconnected(
                &self.target,
                Operation::Read,
                "QEMU closed the socket",
            )),
            Ok(n) => Ok(n),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Err(
                LinkError::timeout(&self.target, Operation::Read, deadline.waited(), 0),
            ),
            Err(e) => Err(io_error(
                &self.target,
                Operation::Read,
                e,
                deadline.waited(),
            )),
        }
    }

    fn flush(&mut self, _deadline: Deadline) -> Result<(), LinkError> {
        // A socket has no output queue of ours: the kernel took the bytes.
        self.stream
            .flush()
            .map_err(|e| io_error(&self.target, Operation::Flush, e, Duration::ZERO))
    }

    fn discard_input(&mut self) -> Result<usize, LinkError> {
        let mut n = 0;
        let mut buf = [0u8; 512];
        loop {
            match self.read_available(&mut buf, Deadline::now()) {
                Ok(got) => n += got,
                Err(e) if e.kind() == pos_hal::FaultKind::Timeout => return Ok(n),
                Err(e) => return Err(e),
            }
        }
    }

    fn pacing(&self) -> Pacing {
        Pacing {
            max_chunk: 4096,
            bytes_per_second: None,
        }
    }
}

/// The printer side of the rig: plugged in (connected) or not.
#[derive(Debug)]
pub struct PrinterSide {
    socket: PathBuf,
    printer: Option<VirtualPrinter>,
}

impl PrinterSide {
    /// A printer for QEMU's FTDI socket at `socket`, not yet plugged in.
    pub fn new(socket: &Path) -> Self {
        PrinterSide {
            socket: socket.to_path_buf(),
            printer: None,
        }
    }

    /// Plug in: connect a fresh virtual printer (paper loaded, cover closed) to the socket.
    ///
    /// Errors: already plugged in, or the socket does not accept within 5 s.
    pub fn connect(&mut self) -> Result<(), String> {
        if self.printer.is_some() {
            return Err("the printer is already plugged in".into());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let stream = loop {
            match UnixStream::connect(&self.socket) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("{}: {e}", self.socket.display()));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let link = UnixLink::new(stream, format!("unix:{}", self.socket.display()));
        self.printer = Some(VirtualPrinter::serve_link(link, SimConfig::default()));
        Ok(())
    }

    /// Pull the cable: stop serving and close the socket (QEMU detaches the adapter).
    ///
    /// Errors: not plugged in.
    pub fn unplug(&mut self) -> Result<(), String> {
        let p = self.printer.take().ok_or("the printer is not plugged in")?;
        p.unplug();
        Ok(())
    }

    fn current(&self) -> Result<&VirtualPrinter, String> {
        self.printer
            .as_ref()
            .ok_or_else(|| "the printer is not plugged in".to_string())
    }

    /// Set or clear a fault by name (`paper_out`, `cover_open`, ...). Clearing a fault
    /// while unplugged is done already: the next printer plugged in starts without faults.
    ///
    /// Errors: unknown fault, or setting one while not plugged in.
    pub fn fault(&self, name: &str, on: bool) -> Result<(), String> {
        let fault =
            SimFault::parse(name).ok_or_else(|| format!("unknown printer fault {name:?}"))?;
        match (&self.printer, on) {
            (None, false) => Ok(()),
            _ => {
                self.current()?.set_fault(fault, on);
                Ok(())
            }
        }
    }

    /// `receipts=N contains=yes|no`: how many receipts came out, and whether the last one
    /// (or the one being printed) contains `text`.
    ///
    /// Errors: not plugged in.
    pub fn check(&self, text: &str) -> Result<String, String> {
        let p = self.current()?;
        let receipts = p.receipts();
        let last = receipts.last().map(|r| r.text()).unwrap_or_default();
        let contains =
            !text.is_empty() && (last.contains(text) || p.current().text().contains(text));
        Ok(format!(
            "receipts={} contains={}",
            receipts.len(),
            if contains { "yes" } else { "no" }
        ))
    }

    /// Whether a printer is plugged in and its serving thread still runs.
    pub fn is_plugged(&self) -> bool {
        self.printer.is_some()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::net::UnixListener;

    /// The socket side QEMU plays: whatever the guest writes to /dev/ttyUSB0 arrives here.
    #[test]
    fn the_printer_answers_a_status_request_over_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ftdi.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let mut side = PrinterSide::new(&path);
        side.connect().unwrap();
        assert!(side.connect().is_err(), "cannot plug in twice");
        let (mut guest, _) = listener.accept().unwrap();
        // DLE EOT 1: printer status; a ready printer answers one byte 0x16 (bits 1,2,4 set).
        guest.write_all(&[0x10, 0x04, 0x01]).unwrap();
        guest
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut b = [0u8; 1];
        guest.read_exact(&mut b).unwrap();
        assert_eq!(b[0] & 0x93, 0x12, "status byte {:02X}", b[0]);
        side.fault("paper_out", true).unwrap();
        assert!(side.fault("no_such_fault", true).is_err());
        assert_eq!(side.check("x").unwrap(), "receipts=0 contains=no");
        side.unplug().unwrap();
        assert!(side.fault("paper_out", false).is_ok(), "nothing to clear");
        assert!(
            side.fault("paper_out", true).is_err(),
            "no printer to fault"
        );
        assert!(side.fault("no_such_fault", false).is_err());
        // The socket is closed: the guest side reads end-of-file.
        let mut rest = Vec::new();
        guest.read_to_end(&mut rest).unwrap();
        assert!(side.unplug().is_err());
    }
}
