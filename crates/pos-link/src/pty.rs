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

use std::ffi::CStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

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

fn last_os_error(target: &str, op: Operation) -> LinkError {
    classify_io(std::io::Error::last_os_error(), target, op, Duration::ZERO)
}

impl PtyPair {
    /// Allocate a new pseudo-terminal pair.
    ///
    /// Errors: `Io` when the system has no free ptys or `/dev/ptmx` cannot be opened.
    pub fn open() -> Result<Self, LinkError> {
        let target = "pty:master";
        // SAFETY: posix_openpt takes flags only and returns a new fd or -1.
        let fd = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(last_os_error(target, Operation::Open));
        }
        // SAFETY: fd is a freshly opened descriptor we own exclusively.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: grantpt/unlockpt take a valid master fd.
        if unsafe { libc::grantpt(owned.as_raw_fd()) } != 0
            || unsafe { libc::unlockpt(owned.as_raw_fd()) } != 0
        {
            return Err(last_os_error(target, Operation::Open));
        }
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: the buffer is valid for name.len() bytes; ptsname_r NUL-terminates on success.
        let rc = unsafe { libc::ptsname_r(owned.as_raw_fd(), name.as_mut_ptr(), name.len()) };
        if rc != 0 {
            return Err(classify_io(
                std::io::Error::from_raw_os_error(rc),
                target,
                Operation::Open,
                Duration::ZERO,
            ));
        }
        // SAFETY: ptsname_r succeeded, so `name` holds a NUL-terminated string.
        let slave_path = unsafe { CStr::from_ptr(name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        // Raw mode on the pair: termios set through the master applies to the slave.
        // SAFETY: termios is plain data; tcgetattr fills it for a valid fd.
        let mut tio: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd and pointer to an initialised termios.
        if unsafe { libc::tcgetattr(owned.as_raw_fd(), &mut tio) } == 0 {
            // SAFETY: tio was filled by tcgetattr.
            unsafe { libc::cfmakeraw(&mut tio) };
            // SAFETY: valid fd and termios.
            if unsafe { libc::tcsetattr(owned.as_raw_fd(), libc::TCSANOW, &tio) } != 0 {
                return Err(last_os_error(target, Operation::Configure));
            }
        }
        Ok(PtyPair {
            master: PtyMaster {
                file: File::from(owned),
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
    /// Wait up to `timeout` for `events` (POLLIN/POLLOUT). Ok(true) when ready.
    fn wait(
        &self,
        events: libc::c_short,
        timeout: Duration,
        op: Operation,
    ) -> Result<bool, LinkError> {
        let mut pfd = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        loop {
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(classify_io(e, &self.target, op, timeout));
            }
            if rc == 0 {
                return Ok(false);
            }
            if pfd.revents & events != 0 {
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
            if !self.wait(libc::POLLOUT, remaining, Operation::Write)? {
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
        if !self.wait(libc::POLLIN, deadline.remaining(), Operation::Read)? {
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
        while self.wait(libc::POLLIN, Duration::ZERO, Operation::Read)? {
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
