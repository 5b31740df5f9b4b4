//! A USB printer built in the guest: a configfs gadget with the printer function
//! (`usb_f_printer`, bidirectional: interface protocol 2) that says it is an Epson
//! TM-T20III in its IEEE 1284 device ID, and the relay that carries its data to emupos on
//! the host.
//!
//! The printer function's gadget side is a character device, `/dev/g_printerN` (found
//! through `/sys/class/usb_printer_gadget`): what the USB host side (our `usb:` road through
//! libusb, or the kernel's usblp) sends on the bulk OUT pipe is read from it, and what is
//! written to it goes out on bulk IN. The device ID (GET_DEVICE_ID) is the function's
//! `pnp_string`; the GET_PORT_STATUS byte is what `GADGET_SET_PRINTER_STATUS` last set.
//! (Linux: `drivers/usb/gadget/function/f_printer.c`, `include/uapi/linux/usb/g_printer.h`,
//! `Documentation/usb/gadget_printer.rst`.)
//!
//! [`Relay`] copies the bytes both ways between `/dev/g_printer0` and the guest's third
//! serial port (`/dev/ttyS2`, raw 115200 8N1), which the host pipes to emupos's raw TCP
//! printer port, so emupos answers the DLE EOT status requests itself. The port-status
//! bits come from emupos too: the relay asks the host for emupos's faults (`emupos-state`,
//! a REST query there) every [`STATUS_POLL`] and sets the byte ([`port_bits`]).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::control::Control;
use crate::ctl::Verb;

/// The gadget's vendor ID: Seiko Epson.
pub const VID: u16 = 0x04b8;
/// The gadget's product ID: the Epson receipt printer ID this repository's examples and
/// udev rules use (`usb:04b8:0e28`).
pub const PID: u16 = 0x0e28;
/// The IEEE 1284 device ID the gadget answers GET_DEVICE_ID with: an Epson TM-T20III that
/// speaks ESC/POS, a model of pos-escpos's model database (`epson-tm-t20iii`) and the
/// model emupos emulates.
pub const DEVICE_ID: &str = "MFG:EPSON;CMD:ESCPOS;MDL:TM-T20III;CLS:PRINTER;DES:EPSON TM-T20III;";
/// What the printer function's `pnp_string` is set to: [`DEVICE_ID`] and two spaces. The
/// kernel's f_printer (Debian's 6.1) puts the string's own length in GET_DEVICE_ID's
/// length field, which by IEEE 1284 counts its own two bytes too, so a reader takes the
/// ID two bytes short (seen in the rig on both roads: `...;DES:EPSON TM-T20II`). Two
/// spaces after the last `;` are what gets cut; a reader that gets them ignores them.
pub fn pnp_string() -> String {
    format!("{DEVICE_ID}  ")
}
/// The profile detection must choose from [`DEVICE_ID`].
pub const DETECTED_PROFILE: &str = "epson-tm-t20iii";
/// The serial port the host pipes to emupos.
pub const CHANNEL_TTY: &str = "/dev/ttyS2";
/// Where the kernel lists the printer functions' character devices.
const GADGET_CLASS: &str = "/sys/class/usb_printer_gadget";
/// How often the relay asks the host for emupos's faults.
pub const STATUS_POLL: Duration = Duration::from_millis(200);
/// Requests of the printer function's queues (each 8 KiB): few, so that a relay that holds
/// back makes the host side's writes wait soon (the unplug-mid-job cases).
pub const QUEUE_LEN: &str = "2";

/// `GADGET_SET_PRINTER_STATUS`: `_IOWR('g', 0x22, unsigned char)`; the status byte is the
/// argument itself (f_printer's `printer_ioctl` takes `(u8)arg`).
const GADGET_SET_PRINTER_STATUS: libc::c_ulong = 0xC001_6722;
/// `GADGET_GET_PRINTER_STATUS`: `_IOR('g', 0x21, unsigned char)`; the byte is the result.
const GADGET_GET_PRINTER_STATUS: libc::c_ulong = 0x8001_6721;

/// GET_PORT_STATUS bit 3: no error (g_printer.h `PRINTER_NOT_ERROR`).
pub const PRINTER_NOT_ERROR: u8 = 0x08;
/// Bit 4: selected, on line (`PRINTER_SELECTED`).
pub const PRINTER_SELECTED: u8 = 0x10;
/// Bit 5: paper empty (`PRINTER_PAPER_EMPTY`).
pub const PRINTER_PAPER_EMPTY: u8 = 0x20;

/// The port-status byte for emupos's active `faults` (its names), as a Centronics printer
/// drives its lines: ready is selected and no error (0x18); paper out is paper empty, not
/// selected, error (0x20); cover open is not selected, error (0x00); offline is not
/// selected, no error (0x08). `paper-near-end` does not stop printing and changes nothing.
pub fn port_bits<S: AsRef<str>>(faults: &[S]) -> u8 {
    let has = |name: &str| faults.iter().any(|f| f.as_ref() == name);
    let mut bits = PRINTER_NOT_ERROR | PRINTER_SELECTED;
    if has("paper-out") {
        bits |= PRINTER_PAPER_EMPTY;
        bits &= !(PRINTER_SELECTED | PRINTER_NOT_ERROR);
    }
    if has("cover-open") {
        bits &= !(PRINTER_SELECTED | PRINTER_NOT_ERROR);
    }
    if has("offline") {
        bits &= !PRINTER_SELECTED;
    }
    bits
}

/// The faults of an `emupos-state` answer (`faults=a,b trigger=... ...`).
///
/// Errors: no `faults=` word.
pub fn parse_state_faults(answer: &str) -> Result<Vec<String>, String> {
    let list = answer
        .split_whitespace()
        .find_map(|w| w.strip_prefix("faults="))
        .ok_or_else(|| format!("no faults= in the host's answer {answer:?}"))?;
    Ok(list
        .split(',')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect())
}

/// The printer function's character device of the gadget: `/dev/g_printerN` for the one
/// entry in [`GADGET_CLASS`] (one gadget at a time).
pub fn gadget_node() -> Option<PathBuf> {
    gadget_node_in(Path::new(GADGET_CLASS))
}

fn gadget_node_in(class: &Path) -> Option<PathBuf> {
    let mut names: Vec<String> = std::fs::read_dir(class)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.starts_with("g_printer"))
        .collect();
    names.sort();
    names.into_iter().next().map(|n| Path::new("/dev").join(n))
}

/// Open `path` read-write, non-blocking; a tty also without controlling it.
fn open_nonblocking(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

/// Make the tty raw (no echo, no line editing, no CR/LF translation, 8 bits) at 115200
/// baud, and drop what was waiting in it.
///
/// Errors: not a tty, or the driver refuses.
pub fn make_raw(tty: &File) -> io::Result<()> {
    let fd = tty.as_raw_fd();
    // SAFETY: `t` is a plain C struct filled by tcgetattr on a valid fd.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut t) != 0 {
            return Err(io::Error::last_os_error());
        }
        libc::cfmakeraw(&mut t);
        t.c_cflag |= libc::CLOCAL | libc::CREAD;
        t.c_cflag &= !libc::CRTSCTS;
        t.c_cc[libc::VMIN] = 0;
        t.c_cc[libc::VTIME] = 0;
        // The speed set in the flags as cfsetospeed does: the static glibc the guest
        // binary links does not resolve the libc crate's versioned cfset*speed symbols.
        t.c_cflag = (t.c_cflag & !libc::CBAUD) | libc::B115200;
        t.c_ispeed = libc::B115200;
        t.c_ospeed = libc::B115200;
        if libc::tcsetattr(fd, libc::TCSANOW, &t) != 0 {
            return Err(io::Error::last_os_error());
        }
        libc::tcflush(fd, libc::TCIOFLUSH);
    }
    Ok(())
}

/// Set the GET_PORT_STATUS byte of the printer function behind `gadget`.
///
/// Errors: the ioctl fails (the gadget went).
pub fn set_port_status(gadget: &File, bits: u8) -> io::Result<()> {
    // SAFETY: the request takes its argument by value; no memory is passed.
    let r = unsafe {
        libc::ioctl(
            gadget.as_raw_fd(),
            GADGET_SET_PRINTER_STATUS as _,
            libc::c_ulong::from(bits),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The GET_PORT_STATUS byte the printer function reports now.
///
/// Errors: the ioctl fails.
pub fn port_status(gadget: &File) -> io::Result<u8> {
    // SAFETY: the request passes no memory; the byte is the result.
    let r = unsafe { libc::ioctl(gadget.as_raw_fd(), GADGET_GET_PRINTER_STATUS as _, 0) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok((r & 0xFF) as u8)
    }
}

/// How a relay ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEnd {
    /// Stopped by [`Relay::stop`].
    Stopped,
    /// The gadget side went (unbound: the printer was unplugged), with what was seen.
    GadgetGone(String),
    /// The serial channel failed.
    Channel(String),
}

struct Shared {
    stop: AtomicBool,
    /// Bytes still to carry from the gadget before holding back (u64::MAX: no limit).
    budget: AtomicU64,
    /// Bytes carried from the USB host side to the channel.
    to_host: AtomicU64,
    /// Bytes carried from the channel (emupos) to the USB host side.
    to_usb: AtomicU64,
    /// The port-status byte last set.
    bits: AtomicU8,
    /// The last failure of the status poll, if any.
    status_error: Mutex<Option<String>>,
}

/// The running relay between `/dev/g_printerN` and the channel's tty, with the port-status
/// poll. Stopped when dropped.
pub struct Relay {
    shared: Arc<Shared>,
    gadget: Arc<File>,
    data: Option<JoinHandle<RelayEnd>>,
    status: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("to_host", &self.to_host())
            .field("to_usb", &self.to_usb())
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// Start relaying between the gadget node `gadget` and the tty `tty`; the status poll
    /// asks the host over `control` (none: the byte is set once, ready).
    ///
    /// Errors: a node does not open, the tty cannot be made raw, the first status cannot
    /// be set (in words).
    pub fn start(node: &Path, tty: &Path, control: Option<Control>) -> Result<Relay, String> {
        // The function refuses opens (ENODEV) until the USB host side configured it, which
        // follows its enumeration by a moment.
        let t0 = Instant::now();
        let g = loop {
            match open_nonblocking(node) {
                Ok(g) => break g,
                Err(e) if t0.elapsed() < Duration::from_secs(3) => {
                    log::debug!("{}: {e}; again", node.display());
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(format!("{}: {e}", node.display())),
            }
        };
        let t = open_nonblocking(tty).map_err(|e| format!("{}: {e}", tty.display()))?;
        make_raw(&t).map_err(|e| format!("{}: raw mode: {e}", tty.display()))?;
        let ready = port_bits::<&str>(&[]);
        set_port_status(&g, ready)
            .map_err(|e| format!("{}: GADGET_SET_PRINTER_STATUS: {e}", node.display()))?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            budget: AtomicU64::new(u64::MAX),
            to_host: AtomicU64::new(0),
            to_usb: AtomicU64::new(0),
            bits: AtomicU8::new(ready),
            status_error: Mutex::new(None),
        });
        let gadget = Arc::new(g);
        let data = {
            let (shared, gadget) = (Arc::clone(&shared), Arc::clone(&gadget));
            let node = node.to_path_buf();
            std::thread::spawn(move || pump(&gadget, &node, t, &shared))
        };
        let status = control.map(|control| {
            let (shared, gadget) = (Arc::clone(&shared), Arc::clone(&gadget));
            std::thread::spawn(move || poll_status(&gadget, &control, &shared))
        });
        Ok(Relay {
            shared,
            gadget,
            data: Some(data),
            status,
        })
    }

    /// Bytes carried from the USB host side to emupos so far.
    pub fn to_host(&self) -> u64 {
        self.shared.to_host.load(Ordering::Relaxed)
    }

    /// Bytes carried from emupos to the USB host side so far.
    pub fn to_usb(&self) -> u64 {
        self.shared.to_usb.load(Ordering::Relaxed)
    }

    /// Carry at most `bytes` more from the USB host side, then hold back (stop reading the
    /// gadget, so its queue fills and the host side's writes wait): a job stuck mid-way.
    pub fn hold_after(&self, bytes: u64) {
        self.shared.budget.store(bytes, Ordering::SeqCst);
    }

    /// Whether the relay is holding back (its budget is spent).
    pub fn holding(&self) -> bool {
        self.shared.budget.load(Ordering::SeqCst) == 0
    }

    /// The port-status byte the relay last set.
    pub fn bits(&self) -> u8 {
        self.shared.bits.load(Ordering::SeqCst)
    }

    /// The byte the printer function reports now (read back from the kernel).
    ///
    /// Errors: the ioctl fails.
    pub fn kernel_bits(&self) -> io::Result<u8> {
        port_status(&self.gadget)
    }

    /// The status poll's last failure, if any.
    pub fn status_error(&self) -> Option<String> {
        self.shared
            .status_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether the data relay still runs.
    pub fn running(&self) -> bool {
        self.data.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Wait (at most `limit`) for the relay to end by itself (the gadget went); how.
    pub fn wait_end(&mut self, limit: Duration) -> Option<RelayEnd> {
        let t = Instant::now();
        while self.running() && t.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.running() {
            return None;
        }
        self.finish()
    }

    /// Stop both threads; how the data relay ended.
    pub fn stop(mut self) -> Option<RelayEnd> {
        self.finish()
    }

    fn finish(&mut self) -> Option<RelayEnd> {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.status.take() {
            let _ = h.join();
        }
        self.data.take().and_then(|h| h.join().ok())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.finish();
    }
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// The data relay's loop: poll both descriptors, carry what comes, keep what cannot be
/// written yet.
fn pump(gadget: &File, node: &Path, tty: File, shared: &Shared) -> RelayEnd {
    let mut to_tty: Vec<u8> = Vec::new();
    let mut to_gadget: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    let (mut g, mut t) = (gadget, &tty);
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return RelayEnd::Stopped;
        }
        let budget = shared.budget.load(Ordering::SeqCst);
        let read_gadget = budget > 0 && to_tty.len() < 65536;
        let mut fds = [
            libc::pollfd {
                fd: gadget.as_raw_fd(),
                events: (if read_gadget { libc::POLLIN } else { 0 })
                    | (if to_gadget.is_empty() {
                        0
                    } else {
                        libc::POLLOUT
                    }),
                revents: 0,
            },
            libc::pollfd {
                fd: tty.as_raw_fd(),
                events: libc::POLLIN | (if to_tty.is_empty() { 0 } else { libc::POLLOUT }),
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfd entries.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, 20) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if would_block(&e) {
                continue;
            }
            return RelayEnd::Channel(format!("poll: {e}"));
        }
        let [gfd, tfd] = fds;
        if gfd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            // The function says hang-up while the USB host side has not configured it (a
            // reset, a configuration change): only a node that went means unbound.
            if !node.exists() {
                return RelayEnd::GadgetGone(format!(
                    "poll revents {:#x}, {} gone",
                    gfd.revents,
                    node.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The budget again: a hold set while this loop was in poll counts from now.
        let budget = shared.budget.load(Ordering::SeqCst);
        if gfd.revents & libc::POLLIN != 0 && budget > 0 {
            let want = usize::try_from(budget).unwrap_or(buf.len()).min(buf.len());
            match g.read(&mut buf[..want]) {
                Ok(0) => {}
                Ok(n) => {
                    to_tty.extend_from_slice(&buf[..n]);
                    let _ = shared
                        .budget
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                            (b != u64::MAX).then(|| b.saturating_sub(n as u64))
                        });
                    shared.to_host.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if would_block(&e) => {}
                Err(e) if node.exists() => log::debug!("{}: read: {e}", node.display()),
                Err(e) => return RelayEnd::GadgetGone(format!("read: {e}")),
            }
        }
        if tfd.revents & libc::POLLIN != 0 {
            match t.read(&mut buf) {
                Ok(n) => to_gadget.extend_from_slice(&buf[..n]),
                Err(e) if would_block(&e) => {}
                Err(e) => return RelayEnd::Channel(format!("{CHANNEL_TTY} read: {e}")),
            }
        }
        if !to_tty.is_empty() {
            match t.write(&to_tty) {
                Ok(n) => {
                    to_tty.drain(..n);
                }
                Err(e) if would_block(&e) => {}
                Err(e) => return RelayEnd::Channel(format!("{CHANNEL_TTY} write: {e}")),
            }
        }
        if !to_gadget.is_empty() {
            match g.write(&to_gadget) {
                Ok(n) => {
                    to_gadget.drain(..n);
                    shared.to_usb.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if would_block(&e) => {}
                Err(e) if node.exists() => {
                    log::debug!("{}: write: {e}", node.display());
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return RelayEnd::GadgetGone(format!("write: {e}")),
            }
        }
    }
}

/// The status poll: emupos's faults from the host, as the port-status byte.
fn poll_status(gadget: &File, control: &Control, shared: &Shared) {
    let mut last_poll = Instant::now() - STATUS_POLL;
    while !shared.stop.load(Ordering::SeqCst) {
        if last_poll.elapsed() < STATUS_POLL {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        last_poll = Instant::now();
        let result = control
            .request(&Verb::EmuposState, Duration::from_secs(5))
            .and_then(|answer| parse_state_faults(&answer))
            .and_then(|faults| {
                let bits = port_bits(&faults);
                set_port_status(gadget, bits)
                    .map_err(|e| format!("GADGET_SET_PRINTER_STATUS {bits:#04x}: {e}"))?;
                shared.bits.store(bits, Ordering::SeqCst);
                Ok(())
            });
        *shared
            .status_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = result.err();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn port_bits_follow_emupos_faults() {
        assert_eq!(port_bits::<&str>(&[]), 0x18);
        assert_eq!(port_bits(&["paper-out"]), 0x20);
        assert_eq!(port_bits(&["cover-open"]), 0x00);
        assert_eq!(port_bits(&["offline"]), 0x08);
        assert_eq!(port_bits(&["paper-near-end"]), 0x18);
        assert_eq!(port_bits(&["cover-open", "paper-out"]), 0x20);
        // What pos-link makes of them.
        use pos_link::printer_class::PortStatus;
        assert!(PortStatus(port_bits::<&str>(&[])).conditions().is_empty());
        assert!(PortStatus(port_bits(&["paper-out"])).paper_empty());
        assert!(!PortStatus(port_bits(&["offline"])).selected());
        assert!(PortStatus(port_bits(&["cover-open"])).error());
    }

    #[test]
    fn the_host_state_answer_is_read() {
        assert_eq!(
            parse_state_faults("faults=cover-open,paper-out trigger=none from_guest=3").unwrap(),
            ["cover-open", "paper-out"]
        );
        assert!(
            parse_state_faults("faults= trigger=pending")
                .unwrap()
                .is_empty()
        );
        assert!(parse_state_faults("receipts=3").is_err());
    }

    #[test]
    fn the_gadget_node_is_found_in_its_class() {
        let dir = std::env::temp_dir().join(format!("rig-gprinter-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("g_printer1")).unwrap();
        std::fs::create_dir_all(dir.join("g_printer0")).unwrap();
        assert_eq!(gadget_node_in(&dir), Some(PathBuf::from("/dev/g_printer0")));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(gadget_node_in(&dir), None);
    }

    #[test]
    fn the_device_id_survives_a_length_field_two_short() {
        // f_printer's reply: the string's own length, then the string.
        let p = pnp_string();
        let len = u16::try_from(p.len()).unwrap();
        let mut reply = len.to_be_bytes().to_vec();
        reply.extend_from_slice(p.as_bytes());
        let read = pos_escpos::detect::DeviceId::parse_reply(&reply).unwrap();
        let whole = pos_escpos::detect::DeviceId::parse(DEVICE_ID.as_bytes()).unwrap();
        assert_eq!(read, whole);
    }

    #[test]
    fn the_device_id_detects_the_emulated_model() {
        let id = pos_escpos::detect::DeviceId::parse(DEVICE_ID.as_bytes()).unwrap();
        assert!(id.speaks_escpos());
        let d = pos_escpos::detect::from_device_id(&id);
        assert_eq!(d.profile.name, DETECTED_PROFILE);
    }

    /// The relay's loop over a pseudo-terminal pair standing in for both ends: bytes pass
    /// both ways, a hold stops the gadget side after its budget.
    #[test]
    fn the_pump_carries_bytes_and_holds_back() {
        let (gadget_master, gadget_slave) = pty_pair();
        let (tty_master, tty_slave) = pty_pair();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            budget: AtomicU64::new(u64::MAX),
            to_host: AtomicU64::new(0),
            to_usb: AtomicU64::new(0),
            bits: AtomicU8::new(0),
            status_error: Mutex::new(None),
        });
        let s2 = Arc::clone(&shared);
        let node = std::env::temp_dir();
        let h = std::thread::spawn(move || pump(&gadget_slave, &node, tty_slave, &s2));
        let (mut usb_host, mut emupos) = (&gadget_master, &tty_master);
        usb_host.write_all(&[0x10, 0x04, 0x01]).unwrap();
        assert_eq!(read_some(&mut emupos, 3), [0x10, 0x04, 0x01]);
        emupos.write_all(&[0x16]).unwrap();
        assert_eq!(read_some(&mut usb_host, 1), [0x16]);
        shared.budget.store(4, Ordering::SeqCst);
        usb_host.write_all(b"abcdefgh").unwrap();
        assert_eq!(read_some(&mut emupos, 4), b"abcd");
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(shared.budget.load(Ordering::SeqCst), 0);
        assert_eq!(shared.to_host.load(Ordering::SeqCst), 7);
        shared.stop.store(true, Ordering::SeqCst);
        assert_eq!(h.join().unwrap(), RelayEnd::Stopped);
    }

    fn pty_pair() -> (File, File) {
        use std::os::fd::FromRawFd;
        let (mut m, mut s) = (0, 0);
        // SAFETY: openpty fills two fds; null name/termios/winsize are allowed.
        let r = unsafe {
            libc::openpty(
                &mut m,
                &mut s,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(r, 0);
        // SAFETY: fresh fds owned by nobody else.
        let (m, s) = unsafe { (File::from_raw_fd(m), File::from_raw_fd(s)) };
        for f in [&m, &s] {
            make_raw(f).unwrap();
            // SAFETY: fcntl on a valid fd.
            unsafe {
                let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
                libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
            }
        }
        (m, s)
    }

    fn read_some(f: &mut &File, n: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let t = Instant::now();
        let mut buf = [0u8; 64];
        while got.len() < n {
            assert!(t.elapsed() < Duration::from_secs(5), "got only {got:?}");
            match f.read(&mut buf) {
                Ok(k) => got.extend_from_slice(&buf[..k]),
                Err(e) if would_block(&e) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("{e}"),
            }
        }
        got
    }
}
