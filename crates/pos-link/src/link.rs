//! The [`Link`] trait: a byte transport where every call has a deadline.

use std::time::{Duration, Instant};

use crate::error::{LinkError, Operation};

/// A point in time by which an operation must finish.
///
/// `Deadline::after(Duration::from_secs(2))` is the usual way to make one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    start: Instant,
    at: Instant,
}

impl Deadline {
    /// A deadline `timeout` from now.
    pub fn after(timeout: Duration) -> Self {
        let start = Instant::now();
        Deadline {
            start,
            at: start
                .checked_add(timeout)
                .unwrap_or(start + crate::MAX_WAIT),
        }
    }

    /// A deadline that has already passed: operations try once without waiting.
    pub fn now() -> Self {
        Self::after(Duration::ZERO)
    }

    /// Time left, zero once passed.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// True once the deadline has passed.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    /// How long since the deadline was made (for error messages).
    pub fn waited(&self) -> Duration {
        self.start.elapsed()
    }

    /// The instant itself.
    pub fn instant(&self) -> Instant {
        self.at
    }
}

/// How a driver should pace large writes (print jobs) on this link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Largest write worth making at once (e.g. a USB packet multiple, a TCP segment).
    pub max_chunk: usize,
    /// Line speed in bytes per second when known (serial), for computing write deadlines.
    pub bytes_per_second: Option<u32>,
}

impl Pacing {
    /// The time `len` bytes take on the wire at the link's speed, if the speed is known.
    pub fn wire_time(&self, len: usize) -> Option<Duration> {
        self.bytes_per_second
            .filter(|&bps| bps > 0)
            .map(|bps| Duration::from_secs_f64(len as f64 / f64::from(bps)))
    }
}

/// A byte transport to a device: serial port, TCP socket, USB bulk pipe or pseudo-terminal.
///
/// Every method takes a [`Deadline`] and returns by then; none blocks forever. Errors are
/// [`LinkError`], whose [`kind()`](pos_hal::Fault::kind) tells the caller what happened:
///
/// | situation                                  | kind                          |
/// |--------------------------------------------|-------------------------------|
/// | deadline passed                            | `Timeout`                     |
/// | peer closed, device unplugged, tty hang-up | `Disconnected`                |
/// | no permission on the device node           | `PermissionDenied` (with hint)|
/// | held by another process or kernel driver   | `Busy` (with hint)            |
/// | anything else from the OS                  | `Io`                          |
pub trait Link: Send {
    /// The target this link talks to, as a URI or path, for messages.
    fn target(&self) -> &str;

    /// Write all of `data`.
    ///
    /// Errors: `Timeout` if not everything was accepted by the deadline (the error says how
    /// many bytes were written), `Disconnected`, `Io`.
    fn write_all(&mut self, data: &[u8], deadline: Deadline) -> Result<(), LinkError>;

    /// Read what is available into `buf`, waiting until at least one byte has arrived or the
    /// deadline passes. Returns the number of bytes read, at least 1 (0 only when `buf` is
    /// empty). A deadline already passed still takes bytes that are waiting.
    ///
    /// Errors: `Timeout` when nothing arrived by the deadline, `Disconnected` when the peer
    /// closed or the device went away, `Io`.
    fn read_available(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError>;

    /// Read exactly `buf.len()` bytes.
    ///
    /// Errors: as [`read_available`](Link::read_available); a `Timeout` says how many bytes
    /// had arrived (those bytes are in the front of `buf`).
    fn read_exact(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<(), LinkError> {
        let mut done = 0;
        while done < buf.len() {
            match self.read_available(&mut buf[done..], deadline) {
                Ok(n) => done += n,
                Err(LinkError::Timeout {
                    target,
                    operation,
                    waited,
                    ..
                }) => {
                    return Err(LinkError::Timeout {
                        target,
                        operation,
                        waited,
                        done,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Wait until everything written has left the host (serial: the UART's output queue is
    /// empty; TCP: a no-op once the kernel accepted the bytes; USB: the transfers completed).
    ///
    /// Errors: `Timeout` when bytes are still queued at the deadline (e.g. flow control held
    /// by the device), `Disconnected`, `Io`.
    fn flush(&mut self, deadline: Deadline) -> Result<(), LinkError>;

    /// Throw away input that has arrived but not been read (stale status bytes before a new
    /// request). Returns how many bytes were discarded where the OS can tell, else 0.
    ///
    /// Errors: `Disconnected`, `Io`. Does not wait.
    fn discard_input(&mut self) -> Result<usize, LinkError>;

    /// How large writes should be chunked and paced on this link.
    fn pacing(&self) -> Pacing;
}

impl<L: Link + ?Sized> Link for Box<L> {
    fn target(&self) -> &str {
        (**self).target()
    }
    fn write_all(&mut self, data: &[u8], deadline: Deadline) -> Result<(), LinkError> {
        (**self).write_all(data, deadline)
    }
    fn read_available(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError> {
        (**self).read_available(buf, deadline)
    }
    fn read_exact(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<(), LinkError> {
        (**self).read_exact(buf, deadline)
    }
    fn flush(&mut self, deadline: Deadline) -> Result<(), LinkError> {
        (**self).flush(deadline)
    }
    fn discard_input(&mut self) -> Result<usize, LinkError> {
        (**self).discard_input()
    }
    fn pacing(&self) -> Pacing {
        (**self).pacing()
    }
}

/// Shared loop for `write_all` over a "write some with a timeout" primitive.
///
/// `write_some(data, remaining)` writes at least one byte or returns an error; a
/// `Timeout`-classified error ends the loop with the count written so far.
pub(crate) fn write_all_with<F>(
    target: &str,
    data: &[u8],
    deadline: Deadline,
    mut write_some: F,
) -> Result<(), LinkError>
where
    F: FnMut(&[u8], Duration) -> Result<usize, LinkError>,
{
    let mut done = 0;
    while done < data.len() {
        let remaining = deadline.remaining();
        match write_some(&data[done..], remaining) {
            Ok(0) => {
                return Err(LinkError::disconnected(
                    target,
                    Operation::Write,
                    "write accepted no bytes",
                ));
            }
            Ok(n) => done += n,
            Err(LinkError::Timeout { .. }) => {
                return Err(LinkError::timeout(
                    target,
                    Operation::Write,
                    deadline.waited(),
                    done,
                ));
            }
            Err(e) => return Err(e),
        }
        if done < data.len() && deadline.passed() {
            return Err(LinkError::timeout(
                target,
                Operation::Write,
                deadline.waited(),
                done,
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_remaining_and_passed() {
        let d = Deadline::after(Duration::from_secs(3600));
        assert!(!d.passed());
        assert!(d.remaining() > Duration::from_secs(3500));
        let now = Deadline::now();
        assert!(now.passed());
        assert_eq!(now.remaining(), Duration::ZERO);
        // An absurd timeout does not overflow.
        let far = Deadline::after(Duration::MAX);
        assert!(!far.passed());
    }

    #[test]
    fn pacing_wire_time() {
        let p = Pacing {
            max_chunk: 64,
            bytes_per_second: Some(960),
        };
        assert_eq!(p.wire_time(960), Some(Duration::from_secs(1)));
        let q = Pacing {
            max_chunk: 64,
            bytes_per_second: None,
        };
        assert_eq!(q.wire_time(10), None);
    }

    #[test]
    fn write_all_with_reports_partial_progress_on_timeout() {
        let mut calls = 0;
        let err = write_all_with(
            "t",
            &[0u8; 10],
            Deadline::after(Duration::from_secs(5)),
            |d, _| {
                calls += 1;
                if calls == 1 {
                    Ok(d.len().min(4))
                } else {
                    Err(LinkError::timeout("t", Operation::Write, Duration::ZERO, 0))
                }
            },
        )
        .unwrap_err();
        match err {
            LinkError::Timeout { done, .. } => assert_eq!(done, 4),
            other => panic!("expected timeout, got {other:?}"),
        }
    }
}
