//! QEMU's human monitor (HMP) on a Unix socket: `device_del`/`device_add` to unplug and
//! re-plug the reader, and `sendkey` to type on the guest's USB keyboard like a
//! keyboard-wedge stripe reader does.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// The monitor's prompt, after which it takes the next command.
const PROMPT: &str = "(qemu) ";

/// A connected monitor.
#[derive(Debug)]
pub struct Monitor {
    stream: UnixStream,
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
    /// Errors: the socket did not accept within `timeout`, or no prompt came.
    pub fn connect(path: &Path, timeout: Duration) -> std::io::Result<Monitor> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let mut m = Monitor { stream };
        m.until_prompt(deadline)?;
        Ok(m)
    }

    fn until_prompt(&mut self, deadline: Instant) -> std::io::Result<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&out).ends_with(PROMPT) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no monitor prompt; got {:?}", String::from_utf8_lossy(&out)),
                ));
            }
            self.stream.set_read_timeout(Some(left))?;
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            out.extend_from_slice(&buf[..n]);
        }
        Ok(String::from_utf8_lossy(&out)
            .trim_end_matches(PROMPT)
            .to_string())
    }

    /// Run one command; returns what the monitor printed (without the echo and prompt).
    ///
    /// Errors: the socket failed, or no prompt within 10 s.
    pub fn command(&mut self, cmd: &str) -> std::io::Result<String> {
        self.stream.write_all(format!("{cmd}\n").as_bytes())?;
        let text = self.until_prompt(Instant::now() + Duration::from_secs(10))?;
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
    use super::*;

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
