//! Serial ports through the `serialport` crate (built without libudev).

use std::io::{Read, Write};
use std::time::Duration;

use serialport::{ClearBuffer, SerialPort, TTYPort};

use crate::error::{LinkError, Operation, classify_io, read_outcome};
use crate::link::{Deadline, Link, Pacing, write_all_with};

/// Parity setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    /// No parity bit.
    None,
    /// Odd parity.
    Odd,
    /// Even parity.
    Even,
}

/// Flow control setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowControl {
    /// No flow control.
    None,
    /// Hardware flow control with RTS/CTS.
    RtsCts,
    /// Software flow control with XON/XOFF characters.
    XonXoff,
}

/// Serial line settings, from a `serial:` URI's options.
///
/// | option   | values                         | default |
/// |----------|--------------------------------|---------|
/// | `baud`   | 1 .. 4000000                   | 9600    |
/// | `data`   | 5, 6, 7, 8                     | 8       |
/// | `parity` | `none`/`n`, `odd`/`o`, `even`/`e` | none |
/// | `stop`   | 1, 2                           | 1       |
/// | `flow`   | `none`, `rtscts`, `xonxoff`    | none    |
/// | `dtr`    | `on`, `off`                    | on      |
/// | `rts`    | `on`, `off` (not with rtscts)  | on      |
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SerialSettings {
    /// Bits per second.
    pub baud: u32,
    /// Data bits per character.
    pub data_bits: u8,
    /// Parity.
    pub parity: Parity,
    /// Stop bits.
    pub stop_bits: u8,
    /// Flow control.
    pub flow: FlowControl,
    /// Level of the DTR line after opening.
    pub dtr: bool,
    /// Level of the RTS line after opening (ignored with RTS/CTS flow control).
    pub rts: bool,
}

impl Default for SerialSettings {
    fn default() -> Self {
        SerialSettings {
            baud: 9600,
            data_bits: 8,
            parity: Parity::None,
            stop_bits: 1,
            flow: FlowControl::None,
            dtr: true,
            rts: true,
        }
    }
}

fn on_off(v: &str) -> Option<bool> {
    match v {
        "on" | "1" | "true" | "high" => Some(true),
        "off" | "0" | "false" | "low" => Some(false),
        _ => None,
    }
}

impl SerialSettings {
    /// Read settings from URI options, ignoring options that are not serial settings.
    ///
    /// Errors: `(option, value, problem)` for the first bad value.
    pub(crate) fn from_options(
        options: &[(String, String)],
    ) -> Result<Self, (String, String, String)> {
        let mut s = SerialSettings::default();
        let bad = |k: &str, v: &str, p: &str| (k.to_string(), v.to_string(), p.to_string());
        for (k, v) in options {
            match k.as_str() {
                "baud" => {
                    s.baud = v
                        .parse()
                        .ok()
                        .filter(|b| (1..=4_000_000).contains(b))
                        .ok_or_else(|| {
                            bad(k, v, "expected a baud rate such as 9600, 19200 or 115200")
                        })?;
                }
                "data" => {
                    s.data_bits = v
                        .parse()
                        .ok()
                        .filter(|b| (5..=8).contains(b))
                        .ok_or_else(|| bad(k, v, "expected 5, 6, 7 or 8 data bits"))?;
                }
                "parity" => {
                    s.parity = match v.as_str() {
                        "none" | "n" => Parity::None,
                        "odd" | "o" => Parity::Odd,
                        "even" | "e" => Parity::Even,
                        _ => return Err(bad(k, v, "expected none, odd or even")),
                    };
                }
                "stop" => {
                    s.stop_bits = match v.as_str() {
                        "1" => 1,
                        "2" => 2,
                        _ => return Err(bad(k, v, "expected 1 or 2 stop bits")),
                    };
                }
                "flow" => {
                    s.flow = match v.as_str() {
                        "none" => FlowControl::None,
                        "rtscts" | "hardware" => FlowControl::RtsCts,
                        "xonxoff" | "software" => FlowControl::XonXoff,
                        _ => return Err(bad(k, v, "expected none, rtscts or xonxoff")),
                    };
                }
                "dtr" => s.dtr = on_off(v).ok_or_else(|| bad(k, v, "expected on or off"))?,
                "rts" => s.rts = on_off(v).ok_or_else(|| bad(k, v, "expected on or off"))?,
                _ => {}
            }
        }
        if s.flow == FlowControl::RtsCts && options.iter().any(|(k, _)| k == "rts") {
            return Err(bad(
                "rts",
                options
                    .iter()
                    .find(|(k, _)| k == "rts")
                    .map_or("", |(_, v)| v.as_str()),
                "RTS is driven by the port when flow=rtscts",
            ));
        }
        Ok(s)
    }

    /// Bytes per second on the wire (start bit, data bits, parity bit, stop bits).
    pub fn bytes_per_second(&self) -> u32 {
        let bits = 1
            + u32::from(self.data_bits)
            + u32::from(self.parity != Parity::None)
            + u32::from(self.stop_bits);
        (self.baud / bits).max(1)
    }
}

/// A serial port opened by path through `serialport`'s native (termios) backend.
///
/// Reads and writes wait with `poll(2)` up to the deadline; [`Link::flush`] waits for the
/// output queue (`TIOCOUTQ`) to empty, polling, so that a port held by flow control times
/// out instead of hanging in `tcdrain`.
pub struct SerialLink {
    port: TTYPort,
    target: String,
    settings: SerialSettings,
}

impl std::fmt::Debug for SerialLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialLink")
            .field("target", &self.target)
            .field("settings", &self.settings)
            .finish()
    }
}

fn serial_err(e: serialport::Error, target: &str, op: Operation) -> LinkError {
    // serialport flattens nix's errno into a kind and errno's description; recover the errno
    // from the description so that the classification (and its hints) sees it.
    let errno = errno_from_description(&e.description);
    match (e.kind, errno) {
        (_, Some(code)) => classify_io(
            std::io::Error::from_raw_os_error(code),
            target,
            op,
            Duration::ZERO,
        ),
        (serialport::ErrorKind::NoDevice, None) if e.description.contains("lock") => {
            LinkError::Busy {
                target: target.to_string(),
                held_by: crate::error::HELD_BY_UNKNOWN.into(),
                hint: crate::error::busy_hint(target),
                source: Some(std::io::Error::other(e.description)),
            }
        }
        (serialport::ErrorKind::NoDevice, None) => LinkError::NotFound {
            target: target.to_string(),
            detail: e.description,
            source: None,
        },
        (serialport::ErrorKind::Io(kind), None) => classify_io(
            std::io::Error::new(kind, e.description),
            target,
            op,
            Duration::ZERO,
        ),
        (serialport::ErrorKind::InvalidInput, None) => LinkError::InvalidSetting {
            target: target.to_string(),
            detail: e.description,
        },
        (serialport::ErrorKind::Unknown, None) => LinkError::Io {
            target: target.to_string(),
            operation: op,
            source: std::io::Error::other(e.description),
        },
    }
}

/// Classify an `io::Error` from a read or write on the port.
///
/// serialport's `Read`/`Write` turn most errnos into `ErrorKind::Other` carrying only nix's
/// description (a USB adapter unplugged mid-write answers `ENODEV`, which arrives as
/// "No such device"): recover the errno so that it is classified as what it is
/// (`Disconnected`), not as a generic I/O error.
fn port_io_error(e: std::io::Error, target: &str, op: Operation, waited: Duration) -> LinkError {
    let recovered = match (e.raw_os_error(), e.kind()) {
        (None, std::io::ErrorKind::Other) => errno_from_description(&e.to_string()),
        _ => None,
    };
    match recovered {
        Some(code) => classify_io(std::io::Error::from_raw_os_error(code), target, op, waited),
        None => classify_io(e, target, op, waited),
    }
}

/// The errno behind one of nix's error descriptions, for the errors that matter here.
fn errno_from_description(msg: &str) -> Option<i32> {
    Some(match msg {
        "Permission denied" => libc::EACCES,
        "Operation not permitted" => libc::EPERM,
        "Device or resource busy" => libc::EBUSY,
        "No such file or directory" => libc::ENOENT,
        "No such device" => libc::ENODEV,
        "No such device or address" => libc::ENXIO,
        "I/O error" => libc::EIO,
        "Inappropriate ioctl for device" => libc::ENOTTY,
        _ => return None,
    })
}

impl SerialLink {
    /// Open `path` with `settings`.
    ///
    /// Errors: `NotFound` (no such node), `PermissionDenied` (with the udev hint), `Busy`
    /// (another process holds it: the port is opened exclusively), `InvalidSetting` (the
    /// port refuses the settings), `Io`.
    pub fn open(path: &str, settings: SerialSettings) -> Result<Self, LinkError> {
        let target = format!("serial:{path}");
        let builder = serialport::new(path, settings.baud)
            .data_bits(match settings.data_bits {
                5 => serialport::DataBits::Five,
                6 => serialport::DataBits::Six,
                7 => serialport::DataBits::Seven,
                _ => serialport::DataBits::Eight,
            })
            .parity(match settings.parity {
                Parity::None => serialport::Parity::None,
                Parity::Odd => serialport::Parity::Odd,
                Parity::Even => serialport::Parity::Even,
            })
            .stop_bits(if settings.stop_bits == 2 {
                serialport::StopBits::Two
            } else {
                serialport::StopBits::One
            })
            .flow_control(match settings.flow {
                FlowControl::None => serialport::FlowControl::None,
                FlowControl::RtsCts => serialport::FlowControl::Hardware,
                FlowControl::XonXoff => serialport::FlowControl::Software,
            })
            .dtr_on_open(settings.dtr)
            .timeout(Duration::from_millis(100));
        // Check the node first so a missing device is NotFound with the path, not a vague I/O error.
        if let Err(e) = std::fs::metadata(path) {
            return Err(classify_io(e, &target, Operation::Open, Duration::ZERO));
        }
        let mut port = builder
            .open_native()
            .map_err(|e| serial_err(e, &target, Operation::Open))?;
        if settings.flow != FlowControl::RtsCts {
            // Ptys and some adapters cannot set modem lines; that is not worth failing for.
            if let Err(e) = port.write_request_to_send(settings.rts) {
                log::debug!("{target}: could not set RTS: {e}");
            }
        }
        log::debug!("{target}: opened at {} baud", settings.baud);
        Ok(SerialLink {
            port,
            target,
            settings,
        })
    }

    /// Open a `serial:` URI.
    ///
    /// Errors: as [`open`](Self::open); `InvalidSetting` when the URI is not `serial:`.
    pub fn open_uri(uri: &crate::DeviceUri) -> Result<Self, LinkError> {
        match (uri.address(), uri.serial_settings()) {
            (crate::Address::Serial { path }, Some(settings)) => Self::open(path, settings),
            _ => Err(LinkError::InvalidSetting {
                target: uri.to_string(),
                detail: "not a serial: URI".into(),
            }),
        }
    }

    /// The settings the port was opened with.
    pub fn settings(&self) -> SerialSettings {
        self.settings
    }

    /// Set or clear DTR.
    ///
    /// Errors: `Io` (some adapters and ptys have no modem lines), `Disconnected`.
    pub fn set_dtr(&mut self, level: bool) -> Result<(), LinkError> {
        self.port
            .write_data_terminal_ready(level)
            .map_err(|e| serial_err(e, &self.target, Operation::Configure))
    }

    /// Set or clear RTS (only meaningful without RTS/CTS flow control).
    ///
    /// Errors: `Io`, `Disconnected`.
    pub fn set_rts(&mut self, level: bool) -> Result<(), LinkError> {
        self.port
            .write_request_to_send(level)
            .map_err(|e| serial_err(e, &self.target, Operation::Configure))
    }

    /// The CTS line's level (is the device ready to receive?).
    ///
    /// Errors: `Io`, `Disconnected`.
    pub fn cts(&mut self) -> Result<bool, LinkError> {
        self.port
            .read_clear_to_send()
            .map_err(|e| serial_err(e, &self.target, Operation::Read))
    }

    /// Change the baud rate.
    ///
    /// Errors: `InvalidSetting` when the port refuses it.
    pub fn set_baud(&mut self, baud: u32) -> Result<(), LinkError> {
        self.port
            .set_baud_rate(baud)
            .map_err(|e| serial_err(e, &self.target, Operation::Configure))?;
        self.settings.baud = baud;
        Ok(())
    }

    fn set_timeout(&mut self, t: Duration) -> Result<(), LinkError> {
        self.port
            .set_timeout(t)
            .map_err(|e| serial_err(e, &self.target, Operation::Configure))
    }
}

impl Link for SerialLink {
    fn target(&self) -> &str {
        &self.target
    }

    fn write_all(&mut self, data: &[u8], deadline: Deadline) -> Result<(), LinkError> {
        let target = self.target.clone();
        write_all_with(&target, data, deadline, |chunk, remaining| {
            self.set_timeout(remaining)?;
            self.port
                .write(chunk)
                .map_err(|e| port_io_error(e, &target, Operation::Write, deadline.waited()))
        })
    }

    fn read_available(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.set_timeout(deadline.remaining())?;
        match self.port.read(buf) {
            Err(e) => Err(port_io_error(
                e,
                &self.target,
                Operation::Read,
                deadline.waited(),
            )),
            ok => read_outcome(ok, &self.target, deadline.waited()),
        }
    }

    fn flush(&mut self, deadline: Deadline) -> Result<(), LinkError> {
        loop {
            let queued = self
                .port
                .bytes_to_write()
                .map_err(|e| serial_err(e, &self.target, Operation::Flush))?;
            if queued == 0 {
                return Ok(());
            }
            if deadline.passed() {
                return Err(LinkError::timeout(
                    &self.target,
                    Operation::Flush,
                    deadline.waited(),
                    0,
                ));
            }
            std::thread::sleep(deadline.remaining().min(Duration::from_millis(2)));
        }
    }

    fn discard_input(&mut self) -> Result<usize, LinkError> {
        let waiting = self
            .port
            .bytes_to_read()
            .map_err(|e| serial_err(e, &self.target, Operation::Read))?;
        self.port
            .clear(ClearBuffer::Input)
            .map_err(|e| serial_err(e, &self.target, Operation::Read))?;
        Ok(waiting as usize)
    }

    fn pacing(&self) -> Pacing {
        Pacing {
            max_chunk: 256,
            bytes_per_second: Some(self.settings.bytes_per_second()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn settings_from_options() {
        let s = SerialSettings::from_options(&opts(&[
            ("baud", "19200"),
            ("parity", "e"),
            ("data", "7"),
            ("stop", "2"),
            ("flow", "xonxoff"),
            ("dtr", "off"),
            ("profile", "tm-t20"),
        ]))
        .unwrap();
        assert_eq!(s.baud, 19200);
        assert_eq!(s.parity, Parity::Even);
        assert_eq!(s.data_bits, 7);
        assert_eq!(s.stop_bits, 2);
        assert_eq!(s.flow, FlowControl::XonXoff);
        assert!(!s.dtr);
        // 1 start + 7 data + 1 parity + 2 stop = 11 bits per byte.
        assert_eq!(s.bytes_per_second(), 19200 / 11);
    }

    #[test]
    fn rts_with_hardware_flow_is_refused() {
        let e =
            SerialSettings::from_options(&opts(&[("flow", "rtscts"), ("rts", "off")])).unwrap_err();
        assert_eq!(e.0, "rts");
    }

    /// What serialport's `Write` hands back when ftdi_sio's device is gone mid-write
    /// (seen on the QEMU rig: "write failed: No such device" was classified `io`).
    #[test]
    fn flattened_errnos_from_reads_and_writes_are_recovered() {
        use pos_hal::{Fault, FaultKind};
        let kind = |e: std::io::Error, op| {
            port_io_error(e, "serial:/dev/ttyUSB0", op, Duration::ZERO).kind()
        };
        // serialport: nix ENODEV -> ErrorKind::Unknown -> io::ErrorKind::Other + description.
        let enodev = std::io::Error::other("No such device");
        assert_eq!(kind(enodev, Operation::Write), FaultKind::Disconnected);
        // Its poll on an errored fd: Other + EIO's description.
        let eio = std::io::Error::other("I/O error");
        assert_eq!(kind(eio, Operation::Read), FaultKind::Disconnected);
        // A hang-up seen by poll is already BrokenPipe; a real errno passes through.
        let hup = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "Broken pipe");
        assert_eq!(kind(hup, Operation::Write), FaultKind::Disconnected);
        let raw = std::io::Error::from_raw_os_error(libc::ENXIO);
        assert_eq!(kind(raw, Operation::Read), FaultKind::Disconnected);
        // Unknown descriptions stay generic I/O errors, timeouts stay timeouts.
        let odd = std::io::Error::other("something else");
        assert_eq!(kind(odd, Operation::Write), FaultKind::Io);
        let slow = std::io::Error::new(std::io::ErrorKind::TimedOut, "Operation timed out");
        assert_eq!(kind(slow, Operation::Read), FaultKind::Timeout);
    }

    #[test]
    fn serialport_errors_are_classified() {
        use pos_hal::{Fault, FaultKind};
        let e = |kind, d: &str| {
            serial_err(
                serialport::Error::new(kind, d),
                "serial:/dev/x",
                Operation::Open,
            )
        };
        assert_eq!(
            e(
                serialport::ErrorKind::Io(std::io::ErrorKind::PermissionDenied),
                "Permission denied"
            )
            .kind(),
            FaultKind::PermissionDenied
        );
        assert_eq!(
            e(serialport::ErrorKind::NoDevice, "Device or resource busy").kind(),
            FaultKind::Busy
        );
        assert_eq!(
            e(
                serialport::ErrorKind::NoDevice,
                "Unable to acquire exclusive lock on serial port"
            )
            .kind(),
            FaultKind::Busy
        );
        assert_eq!(
            e(serialport::ErrorKind::Unknown, "No such device").kind(),
            FaultKind::NotFound
        );
        assert_eq!(
            e(
                serialport::ErrorKind::Unknown,
                "Inappropriate ioctl for device"
            )
            .kind(),
            FaultKind::Io
        );
        assert_eq!(
            e(serialport::ErrorKind::InvalidInput, "bad baud").kind(),
            FaultKind::InvalidInput
        );
    }
}
