//! Logging: to the systemd journal with structured fields when `posctl` runs as a systemd
//! service, to standard error (env_logger) otherwise.
//!
//! Under systemd with `StandardError=journal`, systemd sets `JOURNAL_STREAM` to the device
//! and inode numbers (`DEV:INO`, decimal) of the stream it connected to standard error
//! (systemd.exec(5)). When those match `fstat(2)`, log records go to journald's native
//! socket (`/run/systemd/journal/socket`) as datagrams, one per record, with these fields:
//!
//! | field | value |
//! |---|---|
//! | `MESSAGE` | the message |
//! | `PRIORITY` | syslog level: error 3, warn 4, info 6, debug and trace 7 |
//! | `SYSLOG_IDENTIFIER` | `posctl` |
//! | `TARGET` | the `log` target |
//! | `CODE_MODULE`, `CODE_FILE`, `CODE_LINE` | where the record was logged |
//! | `POS_TXN` | the transaction id, when the message starts with `txn <id>:` |
//!
//! so that `journalctl -u posctl POS_TXN=42` shows one transaction's story and
//! `journalctl -u posctl -p warning` the problems. The protocol is journald's native one
//! (`KEY=value\n` per field; a value holding a newline is sent as `KEY\n`, its length as
//! 64-bit little endian, the bytes, `\n`). If a datagram cannot be sent (journald stopped,
//! message too large even after truncation) the record goes to standard error instead,
//! which is the journal too: a record is never dropped.
//!
//! The filter is the same as outside systemd: the level passed to [`init`] (from `-v`/`-q`),
//! and `RUST_LOG` wins when set.
//!
//! `POS_JOURNAL_SOCKET` overrides the socket path. It exists for tests only.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// journald's native protocol socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The `SYSLOG_IDENTIFIER` of every record.
pub const IDENTIFIER: &str = "posctl";

/// Messages longer than this are cut (with a marker) so the datagram fits the socket's
/// buffer; journald's own limit for a field is far above it.
const MAX_MESSAGE: usize = 48 * 1024;

/// The level `-v`/`-q` ask for: `-q` error, none warn, `-v` info, `-vv` debug, more trace.
pub fn level_from_flags(verbose: u8, quiet: bool) -> LevelFilter {
    if quiet {
        return LevelFilter::Error;
    }
    match verbose {
        0 => LevelFilter::Warn,
        1 => LevelFilter::Info,
        2 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

/// Install the process's logger: the journal when standard error is connected to it (see
/// the module docs), else env_logger on standard error. `RUST_LOG`, when set, wins over
/// `level`. A second call does nothing.
pub fn init(level: LevelFilter) {
    let socket = std::env::var_os("POS_JOURNAL_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(JOURNAL_SOCKET));
    let stream = std::env::var("JOURNAL_STREAM").ok();
    let _ = init_with(level, stream.as_deref(), &socket);
}

/// [`init`] with the `JOURNAL_STREAM` value and the socket path given. Returns true when the
/// journal logger was installed, false for env_logger (or when a logger was already set).
pub fn init_with(level: LevelFilter, journal_stream: Option<&str>, socket: &Path) -> bool {
    let filter = env_filter(level);
    if stream_matches(journal_stream, stderr_id()) {
        // No journald socket (a container without it): standard error still works.
        if let Ok(logger) = JournalLogger::new(socket, filter) {
            let max = logger.filter.filter();
            if log::set_boxed_logger(Box::new(logger)).is_ok() {
                log::set_max_level(max);
                return true;
            }
            return false;
        }
    }
    let env = env_logger::Env::default().default_filter_or(level.as_str());
    let _ = env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .try_init();
    false
}

/// An env_logger used only as a filter: `level` unless `RUST_LOG` is set.
fn env_filter(level: LevelFilter) -> env_logger::Logger {
    let env = env_logger::Env::default().default_filter_or(level.as_str());
    env_logger::Builder::from_env(env).build()
}

/// `(st_dev, st_ino)` of standard error, if it is open.
pub fn stderr_id() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// True when `JOURNAL_STREAM` (`DEV:INO`, decimal) names the stream standard error is.
pub fn stream_matches(journal_stream: Option<&str>, stderr: Option<(u64, u64)>) -> bool {
    let (Some(value), Some((dev, ino))) = (journal_stream, stderr) else {
        return false;
    };
    let Some((d, i)) = value.trim().split_once(':') else {
        return false;
    };
    matches!((d.parse::<u64>(), i.parse::<u64>()), (Ok(d), Ok(i)) if d == dev && i == ino)
}

/// The syslog priority of a log level.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// The transaction id of a message that starts with `txn <id>:`, as the service logs.
pub fn txn_id(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("txn ")?;
    let end = rest.find(':')?;
    let id = &rest[..end];
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

/// Append one field in journald's native format.
pub fn push_field(buf: &mut Vec<u8>, key: &str, value: &[u8]) {
    buf.extend_from_slice(key.as_bytes());
    if value.contains(&b'\n') {
        buf.push(b'\n');
        buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        buf.push(b'=');
    }
    buf.extend_from_slice(value);
    buf.push(b'\n');
}

/// One record as a journald datagram.
pub fn encode(record: &Record<'_>) -> Vec<u8> {
    let mut message = record.args().to_string();
    if message.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str(" [truncated]");
    }
    let mut buf = Vec::with_capacity(message.len() + 256);
    push_field(&mut buf, "MESSAGE", message.as_bytes());
    push_field(
        &mut buf,
        "PRIORITY",
        priority(record.level()).to_string().as_bytes(),
    );
    push_field(&mut buf, "SYSLOG_IDENTIFIER", IDENTIFIER.as_bytes());
    push_field(&mut buf, "TARGET", record.target().as_bytes());
    if let Some(m) = record.module_path() {
        push_field(&mut buf, "CODE_MODULE", m.as_bytes());
    }
    if let Some(f) = record.file() {
        push_field(&mut buf, "CODE_FILE", f.as_bytes());
    }
    if let Some(l) = record.line() {
        push_field(&mut buf, "CODE_LINE", l.to_string().as_bytes());
    }
    if let Some(id) = txn_id(&message) {
        push_field(&mut buf, "POS_TXN", id.as_bytes());
    }
    buf
}

/// A `log` logger that writes journald native-protocol datagrams.
pub struct JournalLogger {
    socket: UnixDatagram,
    filter: env_logger::Logger,
}

impl JournalLogger {
    /// A logger sending to the journald socket at `path`, with `RUST_LOG` or `level` as the
    /// filter. Fails when `path` is not a datagram socket that accepts a connection.
    ///
    /// # Errors
    /// The socket cannot be created or connected.
    #[allow(dead_code)] // the binary goes through `init`; tests/logging.rs uses this
    pub fn with_level(path: &Path, level: LevelFilter) -> std::io::Result<Self> {
        Self::new(path, env_filter(level))
    }

    fn new(path: &Path, filter: env_logger::Logger) -> std::io::Result<Self> {
        let socket = UnixDatagram::unbound()?;
        // Connecting checks now that journald (or the test's socket) is there.
        socket.connect(path)?;
        Ok(JournalLogger { socket, filter })
    }
}

impl Log for JournalLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.filter.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.filter.matches(record) {
            return;
        }
        let datagram = encode(record);
        if self.socket.send(&datagram).is_err() {
            // journald restarting or gone: standard error is the journal stream too.
            let _ = writeln!(
                std::io::stderr().lock(),
                "<{}>{}",
                priority(record.level()),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}
