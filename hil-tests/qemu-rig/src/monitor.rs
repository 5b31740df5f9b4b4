//! QEMU's human monitor (HMP) on a Unix socket: `device_del`/`device_add` to unplug and
//! re-plug the reader, and `sendkey` to type on the guest's USB keyboard like a
//! keyboard-wedge stripe reader does.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// The monitor's prompt, after which it takes the next command.
const PROMPT: &str = "(qemu) ";

/// How long a command's answer (or writing the command) may take by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connected monitor.
///
/// A command that timed out may still print its answer later; the next command must not
/// take that for its own. After a timeout the monitor is out of step, and the next command
/// first sends a marker (an unknown command, `rig-sync-N`) and reads everything up to the
/// monitor's complaint about that marker and the prompt after it.
#[derive(Debug)]
pub struct Monitor {
    stream: UnixStream,
    timeout: Duration,
    out_of_step: bool,
    syncs: u32,
}

/// The QEMU key name (as `sendkey` takes it) for `c`, with shift when needed; `None` for a
/// character a US keyboard cannot type.
pub fn key_for(c: char) -> Option<String> {
    let plain = |k: &str| Some(k.to_string());
    let shifted = |k: &str| Some(format!("shift-{k}"));
    match c {
        'a'..='z' | '0'..='9' => plain(&c.to_string()),
        'A'..='Z' => shifted(&c.to_ascii_lowercase().to_string()),
        ' ' => plain("spc"),
        '\n' => plain("ret"),
        '-' => plain("minus"),
        '=' => plain("equal"),
        ';' => plain("semicolon"),
        '\'' => plain("apostrophe"),
        '/' => plain("slash"),
        '.' => plain("dot"),
        ',' => plain("comma"),
        '\\' => plain("backslash"),
        '[' => plain("bracket_left"),
        ']' => plain("bracket_right"),
        '`' => plain("grave_accent"),
        '!' => shifted("1"),
        '@' => shifted("2"),
        '#' => shifted("3"),
        '$' => shifted("4"),
        '%' => shifted("5"),
        '^' => shifted("6"),
        '&' => shifted("7"),
        '*' => shifted("8"),
        '(' => shifted("9"),
        ')' => shifted("0"),
        '_' => shifted("minus"),
        '+' => shifted("equal"),
        ':' => shifted("semicolon"),
        '"' => shifted("apostrophe"),
        '?' => shifted("slash"),
        '>' => shifted("dot"),
        '<' => shifted("comma"),
        '{' => shifted("bracket_left"),
        '}' => shifted("bracket_right"),
        '|' => shifted("backslash"),
        '~' => shifted("grave_accent"),
        _ => None,
    }
}

impl Monitor {
    /// Connect to the monitor socket, retrying until `timeout` (QEMU creates it at start).
    ///
    /// Errors: the socket did not accept within `timeout`, no prompt came, or the monitor
    /// did not answer the `rig-sync-1` marker as an unknown command.
    pub fn connect(path: &Path, timeout: Duration) -> std::io::Result<Monitor> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let mut m = Monitor {
            stream,
            timeout: DEFAULT_TIMEOUT,
            out_of_step: false,
            syncs: 0,
        };
        m.stream.set_write_timeout(Some(m.timeout))?;
        m.read_until(deadline, &|s| s.ends_with(PROMPT))?;
        // The marker exchange once at the start: proves this QEMU answers it as expected,
        // so that getting back in step after a timeout is known to work.
        m.resync()?;
        Ok(m)
    }

    /// The same monitor with `timeout` for each command's answer and write (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> std::io::Result<Monitor> {
        self.timeout = timeout.max(Duration::from_millis(1));
        self.stream.set_write_timeout(Some(self.timeout))?;
        Ok(self)
    }

    /// Read until `done` holds for the text so far, or `deadline`.
    fn read_until(
        &mut self,
        deadline: Instant,
        done: &dyn Fn(&str) -> bool,
    ) -> std::io::Result<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        while !done(&String::from_utf8_lossy(&out)) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no monitor prompt; got {:?}", String::from_utf8_lossy(&out)),
                ));
            }
            self.stream.set_read_timeout(Some(left))?;
            let n = match self.stream.read(&mut buf) {
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    continue;
                }
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
            out.extend_from_slice(buf.get(..n).unwrap_or_default());
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Get back in step after a timeout: everything the monitor printed until its answer
    /// to a fresh marker is dropped.
    fn resync(&mut self) -> std::io::Result<()> {
        self.syncs = self.syncs.wrapping_add(1);
        let marker = format!("rig-sync-{}", self.syncs);
        // The newline first ends a command line a timed-out write may have left half
        // written (an empty line only makes the monitor print its prompt again).
        self.stream.write_all(format!("\n{marker}\n").as_bytes())?;
        let needle = format!("unknown command: '{marker}'");
        let dropped = self.read_until(Instant::now() + self.timeout, &|s| {
            s.find(&needle)
                .is_some_and(|i| s.get(i..).is_some_and(|rest| rest.contains(PROMPT)))
        })?;
        log::debug!("monitor back in step; dropped {dropped:?}");
        self.out_of_step = false;
        Ok(())
    }

    /// Run one command; returns what the monitor printed (without the echo and prompt).
    ///
    /// Errors: the socket failed, or no prompt within the timeout (10 s by default; the
    /// next command then first gets the monitor back in step, and fails if it cannot).
    pub fn command(&mut self, cmd: &str) -> std::io::Result<String> {
        if self.out_of_step {
            self.resync()?;
        }
        let answer = self
            .stream
            .write_all(format!("{cmd}\n").as_bytes())
            .and_then(|()| {
                let deadline = Instant::now() + self.timeout;
                self.read_until(deadline, &|s| s.ends_with(PROMPT))
            });
        let text = match answer {
            Ok(t) => t,
            Err(e) => {
                // Whatever it prints late must not answer the next command.
                self.out_of_step = true;
                return Err(e);
            }
        };
        let text = text.trim_end_matches(PROMPT);
        // The monitor echoes the command line (with terminal escapes) before its output.
        Ok(text
            .lines()
            .filter(|l| !l.contains(cmd))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// Type `text` on the USB keyboard, each key held `hold`.
    ///
    /// Errors: a character with no key (nothing is typed then), or the monitor failing.
    pub fn type_text(&mut self, text: &str, hold: Duration) -> std::io::Result<()> {
        let keys: Vec<String> = text
            .chars()
            .map(|c| {
                key_for(c).ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("no key for {c:?}"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        for k in keys {
            let out = self.command(&format!("sendkey {k} {}", hold.as_millis().max(1)))?;
            if !out.is_empty() {
                return Err(std::io::Error::other(format!("sendkey {k}: {out}")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixListener;

    /// A command answered too late: the next command gets its own answer, not the late one.
    #[test]
    fn a_late_answer_does_not_answer_the_next_command() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mon.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let fake = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"QEMU 7.2 monitor\r\n(qemu) ").unwrap();
            let mut lines = BufReader::new(s.try_clone().unwrap()).lines();
            assert_eq!(lines.next().unwrap().unwrap(), "");
            assert_eq!(lines.next().unwrap().unwrap(), "rig-sync-1");
            s.write_all(b"\r\n(qemu) rig-sync-1\r\nunknown command: 'rig-sync-1'\r\n(qemu) ")
                .unwrap();
            assert_eq!(lines.next().unwrap().unwrap(), "device_del ccid0");
            // Answered after the client gave up.
            std::thread::sleep(Duration::from_millis(400));
            s.write_all(b"device_del ccid0\r\nError: late\r\n(qemu) ")
                .unwrap();
            assert_eq!(lines.next().unwrap().unwrap(), "");
            assert_eq!(lines.next().unwrap().unwrap(), "rig-sync-2");
            s.write_all(b"rig-sync-2\r\nunknown command: 'rig-sync-2'\r\n(qemu) ")
                .unwrap();
            assert_eq!(lines.next().unwrap().unwrap(), "info usb");
            s.write_all(b"info usb\r\n  Device 0.1, Product QEMU USB CCID\r\n(qemu) ")
                .unwrap();
            // The connection stays up until the client is done.
            let _ = lines.next();
        });
        let mut m = Monitor::connect(&path, Duration::from_secs(5))
            .unwrap()
            .with_timeout(Duration::from_millis(150))
            .unwrap();
        let e = m.command("device_del ccid0").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        // Long enough for the late answer to be waiting in the socket.
        std::thread::sleep(Duration::from_millis(500));
        m.timeout = Duration::from_secs(5);
        assert_eq!(
            m.command("info usb").unwrap(),
            "Device 0.1, Product QEMU USB CCID"
        );
        drop(m);
        fake.join().unwrap();
    }

    #[test]
    fn a_track_can_be_typed() {
        let track =
            "%B5413330089600044^TEST/CARD^25121010000000000000?;5413330089600044=2512101?\n";
        for c in track.chars() {
            assert!(key_for(c).is_some(), "{c:?}");
        }
        assert_eq!(key_for('%').as_deref(), Some("shift-5"));
        assert_eq!(key_for('^').as_deref(), Some("shift-6"));
        assert_eq!(key_for('?').as_deref(), Some("shift-slash"));
        assert_eq!(key_for('B').as_deref(), Some("shift-b"));
        assert_eq!(key_for(';').as_deref(), Some("semicolon"));
        assert_eq!(key_for('é'), None);
    }
}
