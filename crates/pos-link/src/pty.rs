//! Pseudo-terminal pairs: a device simulator holds the master side, the driver opens the
//! slave by path through [`SerialLink`](crate::SerialLink), so the real `serialport` code
//! path (open, termios, poll) runs in tests and simulations without hardware.
//!
//! ```no_run
//! use pos_link::{Deadline, Link, PtyPair, SerialLink, SerialSettings};
//! use std::time::Duration;
//!
//! let mut pty = PtyPair::open()?;
//! let mut port = SerialLink::open(pty.slave_path(), SerialSettings::default())?;
//! port.write_all(b"\x10\x04\x01", Deadline::after(Duration::from_secs(1)))?;
//! let mut buf = [0u8; 3];
//! pty.master().read_exact(&mut buf, Deadline::after(Duration::from_secs(1)))?;
//! assert_eq!(&buf, b"\x10\x04\x01");
//! # Ok::<(), pos_link::LinkError>(())
//! ```

use std::fs::File;
use std::io::{Read, Write};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::pty::OpenptFlags;
use rustix::termios::OptionalActions;

use crate::error::{LinkError, Operation, classify_io, read_outcome};
use crate::link::{Deadline, Link, Pacing, write_all_with};

/// A pseudo-terminal: the master end as a [`Link`], and the slave's path for the driver.
///
/// The pair starts in raw mode (no echo, no line editing, no CR/LF translation), so bytes
/// pass unchanged. When the driver closes the slave, reads on the master fail with
/// `Disconnected`, and the other way round, just as with a real device unplugged.
#[derive(Debug)]
pub struct PtyPair {
    master: PtyMaster,
    slave_path: String,
}

/// The master end of a [`PtyPair`].
#[derive(Debug)]
pub struct PtyMaster {
    file: File,
    target: String,
}

fn os_error(errno: Errno, target: &str, op: Operation) -> LinkError {
    classify_io(errno.into(), target, op, Duration::ZERO)
}

/// `timeout` as poll(2) takes it: whole milliseconds, at most `i32::MAX` of them.
fn poll_timeout(timeout: Duration) -> Timespec {
    let ms = timeout.as_millis().min(i32::MAX as u128) as i64;
    Timespec {
        tv_sec: ms / 1000,
        tv_nsec: (ms % 1000 * 1_000_000) as _,
    }
}

impl PtyPair {
    /// Allocate a new pseudo-terminal pair.
    ///
    /// Errors: `Io` when the system has no free ptys or `/dev/ptmx` cannot be opened.
    pub fn open() -> Result<Self, LinkError> {
        let target = "pty:master";
        let open_error = |errno| os_error(errno, target, Operation::Open);
        let master =
            rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
                .map_err(open_error)?;
        rustix::pty::grantpt(&master).map_err(open_error)?;
        rustix::pty::unlockpt(&master).map_err(open_error)?;
        let slave_path = rustix::pty::ptsname(&master, Vec::with_capacity(128))
            .map_err(open_error)?
            .to_string_lossy()
            .into_owned();
        // Raw mode on the pair: termios set through the master applies to the slave.
        if let Ok(mut tio) = rustix::termios::tcgetattr(&master) {
            tio.make_raw();
            rustix::termios::tcsetattr(&master, OptionalActions::Now, &tio)
                .map_err(|errno| os_error(errno, target, Operation::Configure))?;
        }
        Ok(PtyPair {
            master: PtyMaster {
                file: File::from(master),
                target: format!("pty:{slave_path}"),
            },
            slave_path,
        })
    }

    /// The slave's device path (e.g. `/dev/pts/5`): give it to the driver as `serial:PATH`.
    pub fn slave_path(&self) -> &str {
        &self.slave_path
    }

    /// The `serial:` URI of the slave.
    pub fn slave_uri(&self) -> String {
        format!("serial:{}", self.slave_path)
    }

    /// The master end, for the simulator.
    pub fn master(&mut self) -> &mut PtyMaster {
        &mut self.master
    }

    /// Split into the master end (to move into a simulator thread) and the slave path.
    pub fn into_parts(self) -> (PtyMaster, String) {
        (self.master, self.slave_path)
    }
}

impl PtyMaster {
    /// Wait up to `timeout` for `events` (IN/OUT). Ok(true) when ready.
    fn wait(&self, events: PollFlags, timeout: Duration, op: Operation) -> Result<bool, LinkError> {
        let mut fds = [PollFd::new(&self.file, events)];
        let ts = poll_timeout(timeout);
        loop {
            let rc = match rustix::event::poll(&mut fds, Some(&ts)) {
                Ok(rc) => rc,
                Err(Errno::INTR) => continue,
                Err(errno) => return Err(classify_io(errno.into(), &self.target, op, timeout)),
            };
            if rc == 0 {
                return Ok(false);
            }
            if fds[0].revents().intersects(events) {
                return Ok(true);
            }
            // POLLHUP/POLLERR without the wanted event: the slave side is closed.
            return Err(LinkError::disconnected(
                &self.target,
                op,
                "the other end of the pty is closed",
            ));
        }
    }
}

impl Link for PtyMaster {
    fn target(&self) -> &str {
        &self.target
    }

    fn write_all(&mut self, data: &[u8], deadline: Deadline) -> Result<(), LinkError> {
        let target = self.target.clone();
        write_all_with(&target, data, deadline, |chunk, remaining| {
            if !self.wait(PollFlags::OUT, remaining, Operation::Write)? {
                return Err(LinkError::timeout(
                    &target,
                    Operation::Write,
                    deadline.waited(),
                    0,
                ));
            }
            self.file
                .write(chunk)
                .map_err(|e| classify_io(e, &target, Operation::Write, deadline.waited()))
        })
    }

    fn read_available(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.wait(PollFlags::IN, deadline.remaining(), Operation::Read)? {
            return Err(LinkError::timeout(
                &self.target,
                Operation::Read,
                deadline.waited(),
                0,
            ));
        }
        read_outcome(self.file.read(buf), &self.target, deadline.waited())
    }

    fn flush(&mut self, _deadline: Deadline) -> Result<(), LinkError> {
        // Bytes written to the master are in the slave's input queue at once.
        Ok(())
    }

    fn discard_input(&mut self) -> Result<usize, LinkError> {
        let mut n = 0;
        let mut buf = [0u8; 256];
        while self.wait(PollFlags::IN, Duration::ZERO, Operation::Read)? {
            match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) => {
                    return Err(classify_io(
                        e,
                        &self.target,
                        Operation::Read,
                        Duration::ZERO,
                    ));
                }
            }
        }
        Ok(n)
    }

    fn pacing(&self) -> Pacing {
        Pacing {
            max_chunk: 4096,
            bytes_per_second: None,
        }
    }
}
