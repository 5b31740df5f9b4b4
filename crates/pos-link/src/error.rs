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
    /// The OS refused access to the device node.
    #[error("{target}: permission denied ({hint})")]
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
    /// The device is held by another process or a kernel driver.
    #[error("{target}: busy ({hint})")]
    Busy {
        /// The link's target.
        target: String,
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

/// The hint given when a device is held by someone else.
pub fn busy_hint(target: &str) -> String {
    format!(
        "{target} is held by another process or kernel driver: find it with `fuser -v {target}` \
         (for USB: a kernel driver such as usblp or usbhid, or pcscd for smart-card readers)"
    )
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
