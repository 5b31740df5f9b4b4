//! # pos-link: byte transports with deadlines, device URIs and enumeration
//!
//! Drivers talk to their devices through one trait, [`Link`]: write all, read what is
//! available until a deadline, read exact, flush (drain), discard stale input. Every call has
//! a [`Deadline`]; nothing blocks forever. Errors are [`LinkError`], which answers
//! [`kind()`](pos_hal::Fault::kind) with a [`pos_hal::FaultKind`] and, for permission or busy
//! problems, a hint that names the udev rule and the `pos` group.
//!
//! | transport | type | opened from |
//! |---|---|---|
//! | serial port (termios via `serialport`, no libudev) | [`SerialLink`] | `serial:/dev/ttyUSB0?baud=19200&flow=rtscts` |
//! | TCP (`TCP_NODELAY`, connect timeout) | [`TcpLink`] | `tcp:192.0.2.10:9100` |
//! | USB bulk pipes (rusb, bundled libusb) | [`usb::UsbLink`] | `usb:04b8:0e28`, `usb:04b8:0e28?serial=X`, `usb:1-1.4` |
//! | pseudo-terminal master (simulators, tests) | [`PtyMaster`] | [`PtyPair::open`] |
//!
//! [`open`] opens any of the first three from a [`DeviceUri`]. [`enumerate`] lists serial
//! ports (from `/sys`) and USB devices (with interface classes and labels for known POS
//! hardware). [`udev`] holds the shipped udev rules (their checker is the `pos-udev` crate); [`holders`]
//! finds who holds a busy device node (a bounded `/proc` scan).
//!
//! ```no_run
//! use pos_link::{Deadline, DeviceUri, Link};
//! use std::time::Duration;
//!
//! let uri: DeviceUri = "tcp:192.0.2.10:9100".parse()?;
//! let mut link = pos_link::open(&uri, Duration::from_secs(3))?;
//! link.write_all(b"\x10\x04\x01", Deadline::after(Duration::from_secs(1)))?; // DLE EOT 1
//! let mut status = [0u8; 1];
//! link.read_exact(&mut status, Deadline::after(Duration::from_secs(1)))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]
// `unsafe` is denied everywhere but in printer_class::lp_ioctl (two usblp ioctls).
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod enumerate;
mod error;
pub mod holders;
mod link;
pub mod loopback;
pub mod printer_class;
mod pty;
mod serial;
mod tcp;
pub mod udev;
mod uri;
pub mod usb;

use std::time::Duration;

pub use error::{
    HELD_BY_UNKNOWN, LinkError, Operation, POS_GROUP, UDEV_RULES_FILE, busy_hint, classify_io,
    classify_usb, permission_hint, usb_busy, usb_busy_from_scan,
};
pub use link::{Deadline, Link, Pacing};
pub use pty::{PtyMaster, PtyPair};
pub use serial::{FlowControl, Parity, SerialLink, SerialSettings};
pub use tcp::TcpLink;
pub use uri::{Address, DeviceUri, UriError, UsbSelector};

/// The longest any single wait in this crate may last, whatever deadline was asked for.
pub const MAX_WAIT: Duration = Duration::from_secs(3600);

/// Open a byte link to the device at `uri`: `serial:`, `tcp:` or `usb:` (first interface
/// with a bulk OUT endpoint). `connect_timeout` bounds TCP connection set-up.
///
/// Errors: as the transport's own `open`/`connect`; `Unsupported` for `evdev:` (an input
/// device, not a byte stream: the magstripe driver reads it), `sim:` (simulators are
/// opened by the driver crates' factories) and `pcsc:` (readers through pcscd: pos-pcsc).
pub fn open(uri: &DeviceUri, connect_timeout: Duration) -> Result<Box<dyn Link>, LinkError> {
    match uri.address() {
        Address::Serial { .. } => Ok(Box::new(SerialLink::open_uri(uri)?)),
        Address::Tcp { host, port } => Ok(Box::new(TcpLink::connect(host, *port, connect_timeout)?)),
        Address::Usb(_) => Ok(Box::new(usb::UsbLink::open_uri(uri, usb::UsbOpenOptions::default())?)),
        Address::Evdev { .. } => Err(LinkError::Unsupported {
            target: uri.to_string(),
            detail: "evdev: devices are input devices, opened by the magstripe driver, not as a byte link".into(),
        }),
        Address::Usblp { path } => Ok(Box::new(printer_class::UsblpPrinter::new(
            printer_class::UsblpNode::open(path, &uri.to_string())?,
        ))),
        Address::Sim { .. } => Err(LinkError::Unsupported {
            target: uri.to_string(),
            detail: "sim: devices are opened by the device drivers' simulators, not as a byte link".into(),
        }),
        Address::Pcsc { .. } => Err(LinkError::Unsupported {
            target: uri.to_string(),
            detail: "pcsc: readers are opened through pcscd by pos-pcsc, not as a byte link".into(),
        }),
    }
}

/// The README's example, compiled and run as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
