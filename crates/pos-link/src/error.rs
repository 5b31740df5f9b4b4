//! The link error type and the mapping of OS errors to fault kinds, with hints for people.

use std::io;
use std::time::Duration;

use pos_hal::{Fault, FaultKind};

use crate::uri::UriError;

/// Where the udev rules live in the source tree; named in permission hints.
pub const UDEV_RULES_FILE: &str = "udev/70-pos-devices.rules";

/// The group the udev rules give device access to.
pub const POS_GROUP: &str = "pos";

/// What a link was doing when an error happened (for messages and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Opening or connecting.
    Open,
    /// Reading.
    Read,
    /// Writing.
    Write,
    /// Waiting for written bytes to leave the host (drain).
    Flush,
    /// Changing settings (baud rate, control lines, ...).
    Configure,
    /// Listing devices.
    Enumerate,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operation::Open => "open",
            Operation::Read => "read",
            Operation::Write => "write",
            Operation::Flush => "flush",
            Operation::Configure => "configure",
            Operation::Enumerate => "enumerate",
        })
    }
}

/// An error from a byte transport. Every variant names the target (a URI or path) and, where
/// there is one, keeps the OS or library error as its `source()`.
///
/// [`Fault::kind`] classifies it for the service; [`LinkError::hint`] says what a person can do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The deadline passed before the operation completed.
    #[error("{target}: {operation} timed out after {waited:?} ({done} bytes done)")]
    Timeout {
        /// The link's target.
        target: String,
        /// What was being done.
        operation: Operation,
        /// How long it waited.
        waited: Duration,
        /// Bytes transferred before the deadline (for `read_exact` and `write_all`).
        done: usize,
    },
    /// The peer closed the connection, or the device went away.
    #[error("{target}: disconnected during {operation}: {detail}")]
    Disconnected {
        /// The link's target.
        target: String,
        /// What was being done.
        operation: Operation,
        /// What was seen (end of file, EIO, hang-up, ...).
        detail: String,
        /// The OS error, if one was reported.
        #[source]
        source: Option<io::Error>,
    },
    /// The OS refused access to the device node. The message says what is wrong; the
    /// hint ([`LinkError::hint`]) what to do (the udev rule, the group).
    #[error("{target}: permission denied (this user may not open the device)")]
    PermissionDenied {
        /// The link's target.
        target: String,
        /// What to do about it.
        hint: String,
        /// The OS error.
        #[source]
        source: Option<io::Error>,
    },
    /// Nothing at that address.
    #[error("{target}: not found ({detail})")]
    NotFound {
        /// The link's target.
        target: String,
        /// What was looked for and where.
        detail: String,
        /// The OS error, if one was reported.
        #[source]
        source: Option<io::Error>,
    },
    /// The device is held by another process or a kernel driver. The message names the
    /// holder when it is known; what to do is in [`LinkError::hint`] (said once, not in the
    /// message too).
    #[error("{target}: busy: {held_by}")]
    Busy {
        /// The link's target.
        target: String,
        /// Who holds it, as far as is known (e.g. `held by pcscd (pid 812)`).
        held_by: String,
        /// What to do about it.
        hint: String,
        /// The OS error, if one was reported.
        #[source]
        source: Option<io::Error>,
    },
    /// A TCP peer refused the connection: nothing listens there.
    #[error("{target}: connection refused (is the device on and listening on that port?)")]
    Refused {
        /// The link's target.
        target: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Bad settings (a baud rate the port refuses, an unknown option).
    #[error("{target}: invalid setting: {detail}")]
    InvalidSetting {
        /// The link's target.
        target: String,
        /// Which setting and why.
        detail: String,
    },
    /// A device URI did not parse.
    #[error(transparent)]
    Uri(#[from] UriError),
    /// The URI's scheme is valid but this build cannot open it here (e.g. `sim:` without the
    /// simulator, `evdev:` through the byte link).
    #[error("{target}: {detail}")]
    Unsupported {
        /// The link's target.
        target: String,
        /// Why.
        detail: String,
    },
    /// A USB error that is none of the above.
    #[error("{target}: USB {operation} failed: {source}")]
    Usb {
        /// The link's target.
        target: String,
        /// What was being done.
        operation: Operation,
        /// The libusb error.
        #[source]
        source: rusb::Error,
    },
    /// Any other I/O error.
    #[error("{target}: {operation} failed: {source}")]
    Io {
        /// The link's target.
        target: String,
        /// What was being done.
        operation: Operation,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl Fault for LinkError {
    fn kind(&self) -> FaultKind {
        match self {
            LinkError::Timeout { .. } => FaultKind::Timeout,
            LinkError::Disconnected { .. } | LinkError::Refused { .. } => FaultKind::Disconnected,
            LinkError::PermissionDenied { .. } => FaultKind::PermissionDenied,
            LinkError::NotFound { .. } => FaultKind::NotFound,
            LinkError::Busy { .. } => FaultKind::Busy,
            LinkError::InvalidSetting { .. }
            | LinkError::Uri(_)
            | LinkError::Unsupported { .. } => FaultKind::InvalidInput,
            // A stalled endpoint: the device refused the request, it did not go away.
            LinkError::Usb {
                source: rusb::Error::Pipe,
                ..
            } => FaultKind::Protocol,
            LinkError::Usb { .. } => FaultKind::Io,
            LinkError::Io { .. } => FaultKind::Io,
        }
    }
}

impl LinkError {
    /// A hint for a person, where there is one beyond the message.
    pub fn hint(&self) -> Option<&str> {
        match self {
            LinkError::PermissionDenied { hint, .. } | LinkError::Busy { hint, .. } => Some(hint),
            _ => None,
        }
    }

    /// Build a timeout error.
    pub fn timeout(target: &str, operation: Operation, waited: Duration, done: usize) -> Self {
        LinkError::Timeout {
            target: target.to_string(),
            operation,
            waited,
            done,
        }
    }

    /// Build a disconnection error without an OS error.
    pub fn disconnected(target: &str, operation: Operation, detail: impl Into<String>) -> Self {
        LinkError::Disconnected {
            target: target.to_string(),
            operation,
            detail: detail.into(),
            source: None,
        }
    }
}

/// The hint given with a permission error on a device node.
pub fn permission_hint(target: &str) -> String {
    format!(
        "cannot open {target}: install {UDEV_RULES_FILE} into /etc/udev/rules.d/, add this user to \
         group '{POS_GROUP}' (usermod -aG {POS_GROUP} USER), then log in again and re-plug the device"
    )
}

/// What a busy device's message says when the holder is not known.
pub const HELD_BY_UNKNOWN: &str = "held by another process or a kernel driver";

/// The device node a target names: the path itself, or the path of a `serial:` URI
/// (without its options). `None` for other targets (a USB URI names no node).
fn node_of(target: &str) -> Option<&str> {
    let path = target.strip_prefix("serial:").unwrap_or(target);
    let path = path.split('?').next().unwrap_or(path);
    path.starts_with('/').then_some(path)
}

/// The hint given when a device (`target`: a device node, or a `serial:` URI) is held by
/// someone else. It names the node for `fuser`; for a USB device, whose node depends on
/// where it is plugged, see [`usb_busy`].
pub fn busy_hint(target: &str) -> String {
    let fuser = match node_of(target) {
        Some(node) => format!("`fuser -v {node}`"),
        None => "`fuser -v /dev/bus/usb/BBB/DDD` (its bus and device numbers: `lsusb`)".into(),
    };
    format!(
        "find the holder with {fuser} (as root to see other users' processes): another posctl, \
         the running service, ModemManager on a serial port, or a kernel driver"
    )
}

/// The error for a USB device that another process holds (claiming its interface answered
/// busy): the message names the holder found by a scan of `/proc`
/// ([`crate::holders::scan_holders`]) and the hint names the device's real node
/// `/dev/bus/usb/BBB/DDD` (libusb bus number and device address), never the URI. Best
/// effort: bounded, and it never fails.
pub fn usb_busy(target: &str, bus: u8, address: u8) -> LinkError {
    let node = crate::holders::usb_device_node(bus, address);
    let scan = crate::holders::scan_holders(
        std::path::Path::new("/proc"),
        &node,
        Some(std::process::id()),
    );
    usb_busy_from_scan(target, &node, &scan)
}

/// [`usb_busy`] from a scan already made (for tests, and callers that scan elsewhere).
pub fn usb_busy_from_scan(
    target: &str,
    node: &std::path::Path,
    scan: &crate::holders::HolderScan,
) -> LinkError {
    let node = node.display();
    let fuser = format!("`fuser -v {node}`");
    const STOP_PCSCD: &str = "stop it (systemctl stop pcscd.socket pcscd.service), then try again; \
         to keep pcscd off the reader for good, disable it (systemctl disable pcscd.socket \
         pcscd.service) or, if it must serve other readers, put this reader's name in \
         PCSCLITE_FILTER_IGNORE_READER_NAMES in pcscd.service's environment (pcscd(8))";
    let names = |holders: &[crate::holders::Holder]| {
        holders
            .iter()
            .map(|h| format!("{} (pid {})", h.name, h.pid))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (held_by, hint) = if scan.pcscd_holds() {
        (
            format!("held by {}", names(&scan.holders)),
            format!("pcscd holds the reader: {STOP_PCSCD}"),
        )
    } else if !scan.holders.is_empty() {
        (
            format!("held by {}", names(&scan.holders)),
            format!(
                "stop {} (e.g. a running `posctl serve` or another posctl), then try again; \
                 every holder: {fuser}",
                names(&scan.holders)
            ),
        )
    } else if let Some(pid) = scan.pcscd {
        (
            format!("{HELD_BY_UNKNOWN}; pcscd (pid {pid}) is running and usually is the one"),
            format!(
                "pcscd is running and usually holds smart-card readers: {STOP_PCSCD}; \
                 to see every holder: {fuser} as root"
            ),
        )
    } else {
        (
            HELD_BY_UNKNOWN.to_string(),
            format!(
                "find the holder with {fuser} (as root to see other users' processes), \
                 e.g. another posctl or the running service"
            ),
        )
    };
    LinkError::Busy {
        target: target.to_string(),
        held_by,
        hint,
        source: None,
    }
}

/// Classify an OS error from `operation` on `target`.
///
/// - `EACCES`/`EPERM` -> [`LinkError::PermissionDenied`] with a hint naming the udev rule and
///   group;
/// - `EBUSY` -> [`LinkError::Busy`];
/// - `ENOENT`/`ENODEV`/`ENXIO` on open -> [`LinkError::NotFound`]; after open (the device
///   vanished) -> [`LinkError::Disconnected`];
/// - `EIO`, `EPIPE`, `ECONNRESET`, `ECONNABORTED`, unexpected EOF, broken pipe ->
///   [`LinkError::Disconnected`] (on a tty, `EIO` is what a hang-up looks like);
/// - `ECONNREFUSED` -> [`LinkError::Refused`];
/// - `ETIMEDOUT`, `EAGAIN` and the `TimedOut`/`WouldBlock` kinds -> [`LinkError::Timeout`];
/// - anything else -> [`LinkError::Io`].
pub fn classify_io(
    err: io::Error,
    target: &str,
    operation: Operation,
    waited: Duration,
) -> LinkError {
    let target_s = target.to_string();
    if let Some(code) = err.raw_os_error() {
        match code {
            libc::EACCES | libc::EPERM => {
                return LinkError::PermissionDenied {
                    hint: permission_hint(target),
                    target: target_s,
                    source: Some(err),
                };
            }
            libc::EBUSY => {
                return LinkError::Busy {
                    held_by: HELD_BY_UNKNOWN.into(),
                    hint: busy_hint(target),
                    target: target_s,
                    source: Some(err),
                };
            }
            libc::ENOENT | libc::ENODEV | libc::ENXIO if operation == Operation::Open => {
                return LinkError::NotFound {
                    target: target_s,
                    detail: "no such device".into(),
                    source: Some(err),
                };
            }
            libc::ENOENT
            | libc::ENODEV
            | libc::ENXIO
            | libc::EIO
            | libc::EPIPE
            | libc::ECONNRESET
            | libc::ECONNABORTED
            | libc::ENOTCONN
            | libc::ESHUTDOWN => {
                return LinkError::Disconnected {
                    target: target_s,
                    operation,
                    detail: err.to_string(),
                    source: Some(err),
                };
            }
            libc::ECONNREFUSED => {
                return LinkError::Refused {
                    target: target_s,
                    source: err,
                };
            }
            libc::ETIMEDOUT => return LinkError::timeout(target, operation, waited, 0),
            _ => {}
        }
    }
    match err.kind() {
        io::ErrorKind::PermissionDenied => LinkError::PermissionDenied {
            hint: permission_hint(target),
            target: target_s,
            source: Some(err),
        },
        io::ErrorKind::NotFound if operation == Operation::Open => LinkError::NotFound {
            target: target_s,
            detail: "no such device".into(),
            source: Some(err),
        },
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            LinkError::timeout(target, operation, waited, 0)
        }
        io::ErrorKind::ConnectionRefused => LinkError::Refused {
            target: target_s,
            source: err,
        },
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::NotConnected
        | io::ErrorKind::UnexpectedEof
        | io::ErrorKind::NotFound => LinkError::Disconnected {
            target: target_s,
            operation,
            detail: err.to_string(),
            source: Some(err),
        },
        _ => LinkError::Io {
            target: target_s,
            operation,
            source: err,
        },
    }
}

/// The outcome of one `read(2)` as a link result: end of file is `Disconnected` (a stream
/// read only returns 0 when the other end is gone), an error is classified by [`classify_io`].
pub(crate) fn read_outcome(
    result: io::Result<usize>,
    target: &str,
    waited: Duration,
) -> Result<usize, LinkError> {
    match result {
        Ok(0) => Err(LinkError::disconnected(
            target,
            Operation::Read,
            "end of file",
        )),
        Ok(n) => Ok(n),
        Err(e) => Err(classify_io(e, target, Operation::Read, waited)),
    }
}

/// Classify a libusb error from `operation` on `target` (same rules as [`classify_io`]).
pub fn classify_usb(
    err: rusb::Error,
    target: &str,
    operation: Operation,
    waited: Duration,
) -> LinkError {
    let target_s = target.to_string();
    match err {
        rusb::Error::Access => LinkError::PermissionDenied {
            hint: permission_hint(target),
            target: target_s,
            source: None,
        },
        rusb::Error::Busy => LinkError::Busy {
            held_by: HELD_BY_UNKNOWN.into(),
            hint: busy_hint(target),
            target: target_s,
            source: None,
        },
        rusb::Error::NotFound if operation == Operation::Open => LinkError::NotFound {
            target: target_s,
            detail: "no such USB device or interface".into(),
            source: None,
        },
        rusb::Error::NoDevice | rusb::Error::NotFound => LinkError::Disconnected {
            target: target_s,
            operation,
            detail: format!("USB: {err}"),
            source: None,
        },
        rusb::Error::Timeout => LinkError::timeout(target, operation, waited, 0),
        other => LinkError::Usb {
            target: target_s,
            operation,
            source: other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    #[test]
    fn eacces_names_the_udev_rule_and_group() {
        let e = classify_io(
            os(libc::EACCES),
            "/dev/ttyUSB0",
            Operation::Open,
            Duration::ZERO,
        );
        assert_eq!(e.kind(), FaultKind::PermissionDenied);
        let hint = e.hint().expect("permission errors carry a hint");
        assert!(hint.contains(UDEV_RULES_FILE), "{hint}");
        assert!(hint.contains("group 'pos'"), "{hint}");
        assert!(e.to_string().contains("/dev/ttyUSB0"));
    }

    #[test]
    fn ebusy_is_busy_with_a_hint() {
        let e = classify_io(
            os(libc::EBUSY),
            "/dev/ttyS0",
            Operation::Open,
            Duration::ZERO,
        );
        assert_eq!(e.kind(), FaultKind::Busy);
        assert!(e.hint().is_some_and(|h| h.contains("fuser")));
        let u = classify_usb(
            rusb::Error::Busy,
            "usb:04b8:0202",
            Operation::Open,
            Duration::ZERO,
        );
        assert_eq!(u.kind(), FaultKind::Busy);
        assert_eq!(
            classify_usb(
                rusb::Error::Access,
                "usb:1:2",
                Operation::Open,
                Duration::ZERO
            )
            .kind(),
            FaultKind::PermissionDenied
        );
    }

    #[test]
    fn permission_is_said_once_with_the_udev_hint_apart() {
        let e = classify_io(
            os(libc::EACCES),
            "serial:/dev/ttyUSB0",
            Operation::Open,
            Duration::ZERO,
        );
        assert_eq!(e.kind(), FaultKind::PermissionDenied);
        let hint = e.hint().expect("permission errors carry a hint");
        assert!(
            hint.contains(UDEV_RULES_FILE) && hint.contains("usermod"),
            "{hint}"
        );
        let message = e.to_string();
        assert_eq!(
            message,
            "serial:/dev/ttyUSB0: permission denied (this user may not open the device)"
        );
        assert!(!message.contains("usermod"), "{message}");
    }

    #[test]
    fn busy_is_said_once_naming_the_node() {
        let e = classify_io(
            os(libc::EBUSY),
            "serial:/dev/ttyUSB0?baud=19200",
            Operation::Open,
            Duration::ZERO,
        );
        let hint = e.hint().expect("busy errors carry a hint");
        assert!(hint.contains("`fuser -v /dev/ttyUSB0`"), "{hint}");
        // The message says what is wrong, the hint what to do: not the same words twice.
        let message = e.to_string();
        assert_eq!(
            message,
            "serial:/dev/ttyUSB0?baud=19200: busy: held by another process or a kernel driver"
        );
        assert!(!message.contains("fuser"), "{message}");
        // A USB URI names no node: fuser is never pointed at the URI.
        let u = classify_usb(
            rusb::Error::Busy,
            "usb:04b8:0202",
            Operation::Open,
            Duration::ZERO,
        );
        let hint = u.hint().expect("hint");
        assert!(!hint.contains("fuser -v usb:"), "{hint}");
        assert!(hint.contains("/dev/bus/usb/BBB/DDD"), "{hint}");
    }

    #[test]
    fn usb_busy_names_the_bus_node_and_pcscd() {
        use crate::holders::{Holder, HolderScan};
        let node = crate::holders::usb_device_node(1, 4);
        // pcscd seen holding it.
        let scan = HolderScan {
            holders: vec![Holder {
                pid: 812,
                name: "pcscd".into(),
            }],
            pcscd: Some(812),
            unreadable: 0,
            complete: true,
        };
        let e = usb_busy_from_scan("usb:072f:90cc", &node, &scan);
        assert_eq!(e.kind(), FaultKind::Busy);
        assert_eq!(
            e.to_string(),
            "usb:072f:90cc: busy: held by pcscd (pid 812)"
        );
        assert_eq!(
            e.hint(),
            Some(
                "pcscd holds the reader: stop it (systemctl stop pcscd.socket pcscd.service), then \
                 try again; to keep pcscd off the reader for good, disable it (systemctl disable \
                 pcscd.socket pcscd.service) or, if it must serve other readers, put this \
                 reader's name in PCSCLITE_FILTER_IGNORE_READER_NAMES in pcscd.service's \
                 environment (pcscd(8))"
            )
        );
        // pcscd running, its files unreadable: said as likely, with the real node for fuser.
        let scan = HolderScan {
            holders: vec![],
            pcscd: Some(812),
            unreadable: 3,
            complete: true,
        };
        let e = usb_busy_from_scan("usb:072f:90cc", &node, &scan);
        assert!(e.to_string().contains("pcscd (pid 812) is running"), "{e}");
        let hint = e.hint().unwrap_or_default();
        assert!(
            hint.contains("systemctl stop pcscd.socket pcscd.service"),
            "{hint}"
        );
        assert!(
            hint.contains("PCSCLITE_FILTER_IGNORE_READER_NAMES"),
            "{hint}"
        );
        assert!(hint.contains("`fuser -v /dev/bus/usb/001/004`"), "{hint}");
        // Another process.
        let scan = HolderScan {
            holders: vec![Holder {
                pid: 5000,
                name: "posctl".into(),
            }],
            pcscd: None,
            unreadable: 0,
            complete: true,
        };
        let e = usb_busy_from_scan("usb:072f:90cc", &node, &scan);
        assert_eq!(
            e.to_string(),
            "usb:072f:90cc: busy: held by posctl (pid 5000)"
        );
        let hint = e.hint().unwrap_or_default();
        assert!(hint.starts_with("stop posctl (pid 5000)"), "{hint}");
        assert!(hint.contains("`fuser -v /dev/bus/usb/001/004`"), "{hint}");
        // Nobody found.
        let e = usb_busy_from_scan("usb:072f:90cc", &node, &HolderScan::default());
        assert_eq!(
            e.to_string(),
            "usb:072f:90cc: busy: held by another process or a kernel driver"
        );
        let hint = e.hint().unwrap_or_default();
        assert!(hint.contains("`fuser -v /dev/bus/usb/001/004`"), "{hint}");
        assert!(!hint.contains("usb:072f:90cc"), "{hint}");
    }

    #[test]
    fn missing_device_is_not_found_on_open_and_disconnected_after() {
        assert_eq!(
            classify_io(os(libc::ENOENT), "/dev/x", Operation::Open, Duration::ZERO).kind(),
            FaultKind::NotFound
        );
        assert_eq!(
            classify_io(os(libc::ENODEV), "/dev/x", Operation::Read, Duration::ZERO).kind(),
            FaultKind::Disconnected
        );
        assert_eq!(
            classify_io(os(libc::EIO), "/dev/pts/3", Operation::Read, Duration::ZERO).kind(),
            FaultKind::Disconnected
        );
        assert_eq!(
            classify_usb(
                rusb::Error::NoDevice,
                "usb:1:2",
                Operation::Read,
                Duration::ZERO
            )
            .kind(),
            FaultKind::Disconnected
        );
    }

    #[test]
    fn network_errors() {
        assert_eq!(
            classify_io(
                os(libc::ECONNREFUSED),
                "tcp:127.0.0.1:9",
                Operation::Open,
                Duration::ZERO
            )
            .kind(),
            FaultKind::Disconnected
        );
        assert!(matches!(
            classify_io(os(libc::ECONNREFUSED), "t", Operation::Open, Duration::ZERO),
            LinkError::Refused { .. }
        ));
        assert_eq!(
            classify_io(os(libc::ETIMEDOUT), "t", Operation::Open, Duration::ZERO).kind(),
            FaultKind::Timeout
        );
        assert_eq!(
            classify_io(
                io::ErrorKind::WouldBlock.into(),
                "t",
                Operation::Read,
                Duration::ZERO
            )
            .kind(),
            FaultKind::Timeout
        );
        assert_eq!(
            classify_io(os(libc::EINVAL), "t", Operation::Configure, Duration::ZERO).kind(),
            FaultKind::Io
        );
    }
}
