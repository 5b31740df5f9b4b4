//! Loopback self-test of a link: send a pattern, expect it back.
//!
//! For a technician with a loopback plug on a serial port (TX wired to RX, RTS to CTS), or
//! any peer that echoes (a TCP echo service, a simulator). It checks that every byte value
//! survives the round trip unchanged, that a read with nothing to read ends in a timeout
//! (not a hang), and measures the round-trip rate.

use std::time::{Duration, Instant};

use pos_hal::{Fault, FaultKind};

use crate::error::LinkError;
use crate::link::{Deadline, Link};

/// What a loopback test found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LoopbackReport {
    /// The link's target.
    pub target: String,
    /// Bytes sent.
    pub sent: usize,
    /// Bytes that came back.
    pub received: usize,
    /// Offset of the first byte that came back different, if any.
    pub first_mismatch: Option<usize>,
    /// Whether a read with nothing to read ended in a timeout, as it must.
    pub idle_read_timed_out: bool,
    /// Wall time of the echo round trip.
    pub elapsed: Duration,
    /// The fault that stopped the test, if one did.
    pub fault: Option<FaultKind>,
    /// The error message that stopped the test, if one did.
    pub error: Option<String>,
}

impl LoopbackReport {
    /// True when every byte came back unchanged and the idle read timed out.
    pub fn passed(&self) -> bool {
        self.fault.is_none()
            && self.received == self.sent
            && self.first_mismatch.is_none()
            && self.idle_read_timed_out
    }

    /// Bytes per second for the round trip (0 when nothing came back).
    pub fn bytes_per_second(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.received as f64 / s
        } else {
            0.0
        }
    }
}

impl std::fmt::Display for LoopbackReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.passed() { "PASS" } else { "FAIL" };
        write!(
            f,
            "{verdict} {}: {} of {} bytes echoed in {:.1} ms ({:.0} B/s)",
            self.target,
            self.received,
            self.sent,
            self.elapsed.as_secs_f64() * 1000.0,
            self.bytes_per_second()
        )?;
        if let Some(at) = self.first_mismatch {
            write!(f, "; first wrong byte at offset {at}")?;
        }
        if !self.idle_read_timed_out && self.fault.is_none() {
            write!(f, "; unexpected bytes when the line should be idle")?;
        }
        if let (Some(kind), Some(msg)) = (self.fault, &self.error) {
            write!(f, "; {kind}: {msg} ({})", kind.advice())?;
        }
        Ok(())
    }
}

/// The test pattern: every byte value, then a counter, `len` bytes in all.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 256) as u8 ^ ((i / 256) as u8))
        .collect()
}

/// Run the loopback test over `link`: send `len` pattern bytes in chunks, read them back, each
/// chunk within `timeout`; then check that an idle read times out.
///
/// Never fails as a function: what went wrong is in the report.
pub fn run(link: &mut dyn Link, len: usize, timeout: Duration) -> LoopbackReport {
    let target = link.target().to_string();
    let data = pattern(len);
    let mut report = LoopbackReport {
        target,
        sent: len,
        received: 0,
        first_mismatch: None,
        idle_read_timed_out: false,
        elapsed: Duration::ZERO,
        fault: None,
        error: None,
    };
    let fail = |report: &mut LoopbackReport, e: LinkError| {
        report.fault = Some(e.kind());
        report.error = Some(e.to_string());
    };
    if let Err(e) = link.discard_input() {
        fail(&mut report, e);
        return report;
    }
    let chunk = link.pacing().max_chunk.clamp(1, 1024);
    let started = Instant::now();
    let mut back = vec![0u8; chunk];
    for (i, piece) in data.chunks(chunk).enumerate() {
        let wire = link
            .pacing()
            .wire_time(piece.len())
            .unwrap_or(Duration::ZERO);
        let deadline = Deadline::after(timeout + 2 * wire);
        if let Err(e) = link.write_all(piece, deadline) {
            fail(&mut report, e);
            break;
        }
        let got = &mut back[..piece.len()];
        let result = link.read_exact(got, deadline);
        let n = match &result {
            Ok(()) => piece.len(),
            Err(LinkError::Timeout { done, .. }) => *done,
            Err(_) => 0,
        };
        if report.first_mismatch.is_none() {
            if let Some(pos) = piece[..n].iter().zip(&got[..n]).position(|(a, b)| a != b) {
                report.first_mismatch = Some(i * chunk + pos);
            }
        }
        report.received += n;
        if let Err(e) = result {
            fail(&mut report, e);
            break;
        }
    }
    report.elapsed = started.elapsed();
    if report.fault.is_none() {
        let mut b = [0u8; 16];
        match link.read_available(&mut b, Deadline::after(Duration::from_millis(50))) {
            Err(e) if e.kind() == FaultKind::Timeout => report.idle_read_timed_out = true,
            Err(e) => fail(&mut report, e),
            Ok(_) => report.idle_read_timed_out = false,
        }
    }
    report
}

/// Echo everything `link` receives back to it, on a new thread, until the other end goes away
/// or `idle` passes with nothing received. The thread returns the number of bytes echoed.
///
/// This plays the loopback plug for tests and demonstrations (on a [`PtyMaster`](crate::PtyMaster)
/// or an accepted TCP connection).
pub fn spawn_echo<L: Link + 'static>(
    mut link: L,
    idle: Duration,
) -> std::thread::JoinHandle<Result<u64, LinkError>> {
    std::thread::spawn(move || {
        let mut total = 0u64;
        let mut buf = [0u8; 1024];
        loop {
            let n = match link.read_available(&mut buf, Deadline::after(idle)) {
                Ok(n) => n,
                Err(e) if matches!(e.kind(), FaultKind::Disconnected | FaultKind::Timeout) => {
                    return Ok(total);
                }
                Err(e) => return Err(e),
            };
            link.write_all(&buf[..n], Deadline::after(idle))?;
            total += n as u64;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_covers_every_byte_value() {
        let p = pattern(256);
        let mut seen = [false; 256];
        for b in p {
            seen[usize::from(b)] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_ne!(
            pattern(512)[256..],
            pattern(512)[..256],
            "second block differs"
        );
    }
}
