//! The guest's end of the control protocol ([`crate::ctl`]): requests to the host and the
//! reports (steps, cases, benchmarks, the end of the run).
//!
//! [`Control`] runs over any [`pos_link::Link`]; in the guest it is a [`SerialLink`] on
//! `/dev/ttyS1` at 115200 baud, raw ([`Control::open_serial`]). It is a cheap, cloneable
//! handle (the scenarios, the operator of the suite and the binary share one channel); each
//! request holds the channel until its answer came or its time ran out.
//!
//! Requests are numbered; an answer with another number (a late answer to a request that
//! timed out) and lines that are not control messages (noise) are ignored.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use pos_hal::Fault as _;
use pos_link::{Deadline, Link, LinkError, SerialLink, SerialSettings};

use crate::ctl::{Line, Outcome, Verb};

/// How long writing one line may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// A line longer than this without a newline is noise: it is dropped.
const MAX_LINE: usize = 4096;

/// The control channel's baud rate (the host's chardev does not care; the UART does).
pub const CONTROL_BAUD: u32 = 115_200;

struct Inner {
    link: Box<dyn Link>,
    seq: u32,
    /// Bytes read after the last complete line.
    pending: Vec<u8>,
}

/// The guest's client of the control protocol. Clones share the channel.
#[derive(Clone)]
pub struct Control {
    inner: Arc<Mutex<Inner>>,
    target: String,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Control {
    /// The protocol over `link`.
    pub fn new(link: Box<dyn Link>) -> Self {
        let target = link.target().to_string();
        Control {
            inner: Arc::new(Mutex::new(Inner {
                link,
                seq: 0,
                pending: Vec::new(),
            })),
            target,
        }
    }

    /// The protocol over the serial port at `path` (115200 8N1, no flow control, raw).
    ///
    /// Errors: the port does not open (not found, permission, busy), as [`SerialLink::open`].
    pub fn open_serial(path: &str) -> Result<Self, LinkError> {
        let settings = SerialSettings {
            baud: CONTROL_BAUD,
            ..SerialSettings::default()
        };
        let link = SerialLink::open(path, settings)?;
        Ok(Control::new(Box::new(link)))
    }

    /// What the channel runs over (`/dev/ttyS1`).
    pub fn target(&self) -> &str {
        &self.target
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the channel leaves at worst a half-read line: keep going.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Send `verb` to the host and wait up to `timeout` for its answer: the `OK` text, or
    /// an error in words (the host's `ERR` text, no answer in time, the channel failing).
    pub fn request(&self, verb: &Verb, timeout: Duration) -> Result<String, String> {
        let mut inner = self.lock();
        // Whatever came before this request cannot answer it.
        inner.pending.clear();
        inner.seq = inner.seq.wrapping_add(1);
        let seq = inner.seq;
        let line = Line::Cmd {
            seq,
            verb: verb.clone(),
        };
        let shown = verb.redacted();
        write_line(&mut inner, &line)
            .map_err(|e| format!("cannot send `{shown}` to the host: {e} [{}]", e.kind()))?;
        let deadline = Deadline::after(timeout);
        loop {
            let text = match read_line(&mut inner, deadline) {
                Ok(Some(text)) => text,
                Ok(None) => {
                    return Err(format!(
                        "the host did not answer `{shown}` within {:.1} s",
                        timeout.as_secs_f64()
                    ));
                }
                Err(e) => {
                    return Err(format!(
                        "the control channel failed waiting for the answer to `{shown}`: {e} [{}]",
                        e.kind()
                    ));
                }
            };
            match Line::parse(&text) {
                Ok(Line::Ok { seq: s, text }) if s == seq => return Ok(text),
                Ok(Line::Err { seq: s, text }) if s == seq => {
                    return Err(format!("the host refused `{shown}`: {text}"));
                }
                Ok(other) => log::debug!("control: ignored while waiting for {seq}: {other}"),
                Err(e) => log::debug!("control: {e}"),
            }
        }
    }

    /// Send one report line.
    ///
    /// Errors: the channel failed (in words).
    pub fn send(&self, line: &Line) -> Result<(), String> {
        let mut inner = self.lock();
        write_line(&mut inner, line)
            .map_err(|e| format!("cannot send a report to the host: {e} [{}]", e.kind()))
    }

    /// Report a step of the running case.
    ///
    /// Errors: as [`Control::send`].
    pub fn step(&self, case: &str, text: &str) -> Result<(), String> {
        self.send(&Line::Step {
            case: case.to_string(),
            text: text.to_string(),
        })
    }

    /// Report the end of a case.
    ///
    /// Errors: as [`Control::send`].
    pub fn case(
        &self,
        case: &str,
        outcome: Outcome,
        millis: u64,
        text: &str,
    ) -> Result<(), String> {
        self.send(&Line::Case {
            case: case.to_string(),
            outcome,
            millis,
            text: text.to_string(),
        })
    }

    /// Report a benchmark (nanoseconds per operation).
    ///
    /// Errors: as [`Control::send`].
    pub fn bench(&self, name: &str, stats: &crate::bench::Stats) -> Result<(), String> {
        self.send(&Line::Bench {
            name: name.to_string(),
            count: stats.count,
            p50_ns: stats.p50_ns,
            p99_ns: stats.p99_ns,
            mean_ns: stats.mean_ns,
        })
    }

    /// Announce the cases about to run (see [`Line::Plan`]).
    ///
    /// Errors: as [`Control::send`].
    pub fn plan(&self, cases: &[String]) -> Result<(), String> {
        self.send(&Line::Plan {
            cases: cases.to_vec(),
        })
    }

    /// Report the end of the run.
    ///
    /// Errors: as [`Control::send`].
    pub fn end(&self) -> Result<(), String> {
        self.send(&Line::End)?;
        let mut inner = self.lock();
        inner
            .link
            .flush(Deadline::after(WRITE_TIMEOUT))
            .map_err(|e| format!("cannot flush the control channel: {e}"))
    }
}

fn write_line(inner: &mut Inner, line: &Line) -> Result<(), LinkError> {
    let text = format!("{line}\n");
    inner
        .link
        .write_all(text.as_bytes(), Deadline::after(WRITE_TIMEOUT))
}

/// The next complete line (without its end), `None` when `deadline` passed first.
fn read_line(inner: &mut Inner, deadline: Deadline) -> Result<Option<String>, LinkError> {
    loop {
        if let Some(end) = inner.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = inner.pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            return Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()));
        }
        if inner.pending.len() > MAX_LINE {
            log::debug!("control: dropped {} bytes of noise", inner.pending.len());
            inner.pending.clear();
        }
        if deadline.passed() {
            return Ok(None);
        }
        let mut buf = [0u8; 512];
        match inner.link.read_available(&mut buf, deadline) {
            Ok(n) => inner
                .pending
                .extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == pos_hal::FaultKind::Timeout => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pos_link::{PtyMaster, PtyPair};

    /// A host at the master end of a pseudo-terminal: reads lines, answers with `answer`.
    pub(crate) struct Host {
        master: PtyMaster,
        pending: Vec<u8>,
    }

    impl Host {
        pub(crate) fn read_line(&mut self) -> String {
            let deadline = Deadline::after(Duration::from_secs(5));
            loop {
                if let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = self.pending.drain(..=end).collect();
                    return String::from_utf8(line).unwrap().trim_end().to_string();
                }
                let mut buf = [0u8; 256];
                let n = self.master.read_available(&mut buf, deadline).unwrap();
                self.pending.extend_from_slice(&buf[..n]);
            }
        }

        pub(crate) fn write(&mut self, text: &str) {
            self.master
                .write_all(text.as_bytes(), Deadline::after(Duration::from_secs(5)))
                .unwrap();
        }
    }

    /// A control channel on a pseudo-terminal, and the host at its other end.
    pub(crate) fn pair() -> (Control, Host) {
        let (master, slave) = PtyPair::open().unwrap().into_parts();
        let control = Control::open_serial(&slave).unwrap();
        (
            control,
            Host {
                master,
                pending: Vec::new(),
            },
        )
    }

    #[test]
    fn a_request_gets_its_own_answer_past_noise_and_stale_answers() {
        let (control, mut host) = pair();
        let t = std::thread::spawn(move || {
            let line = host.read_line();
            assert_eq!(line, "CMD 1 card-insert mastercard");
            // Noise, a late answer to another request, then the answer in two pieces.
            host.write("[    4.1] usb 1-1: new full-speed USB device\r\nOK 7 stale\n");
            host.write("OK 1 ins");
            std::thread::sleep(Duration::from_millis(50));
            host.write("erted\r\n");
            let line = host.read_line();
            assert_eq!(line, "CMD 2 card-stats");
            host.write("ERR 2 no card side\n");
            let line = host.read_line();
            assert_eq!(line, "CMD 3 printer-fault paper_out on");
            host.write("OK 3 \n");
            host
        });
        let verb = Verb::CardInsert("mastercard".into());
        assert_eq!(
            control.request(&verb, Duration::from_secs(5)),
            Ok("inserted".into())
        );
        let e = control
            .request(&Verb::CardStats, Duration::from_secs(5))
            .unwrap_err();
        assert!(e.contains("refused") && e.contains("no card side"), "{e}");
        let verb = Verb::PrinterFault {
            fault: "paper_out".into(),
            on: true,
        };
        assert_eq!(
            control.request(&verb, Duration::from_secs(5)),
            Ok(String::new())
        );
        t.join().unwrap();
    }

    #[test]
    fn no_answer_is_a_timeout_in_words() {
        let (control, mut host) = pair();
        let started = std::time::Instant::now();
        let e = control
            .request(&Verb::ReaderUnplug, Duration::from_millis(300))
            .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(
            e.contains("did not answer") && e.contains("reader-unplug"),
            "{e}"
        );
        assert_eq!(host.read_line(), "CMD 1 reader-unplug");
    }

    #[test]
    fn a_closed_host_end_is_an_error_not_a_hang() {
        let (control, host) = pair();
        drop(host);
        let e = control
            .request(&Verb::CardRemove, Duration::from_secs(5))
            .unwrap_err();
        assert!(!e.is_empty());
    }

    #[test]
    fn reports_are_one_line_each_in_order() {
        let (control, mut host) = pair();
        control.step("ccid.atr", "ATR 3B 02\n14 50").unwrap();
        control.case("ccid.atr", Outcome::Pass, 12, "T=1").unwrap();
        let stats = crate::bench::Stats {
            count: 3,
            p50_ns: 10,
            p99_ns: 30,
            mean_ns: 20,
        };
        control.bench("apdu.direct", &stats).unwrap();
        control.plan(&["x.y".into()]).unwrap();
        control.end().unwrap();
        assert_eq!(host.read_line(), "STEP ccid.atr ATR 3B 02 14 50");
        assert_eq!(host.read_line(), "CASE ccid.atr PASS 12 T=1");
        assert_eq!(host.read_line(), "BENCH apdu.direct 3 10 30 20");
        assert_eq!(host.read_line(), "PLAN 1 x.y");
        assert_eq!(host.read_line(), "END");
    }
}
