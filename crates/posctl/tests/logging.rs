//! The journald logger (src/logging.rs): fields, the binary form for multi-line values, the
//! `JOURNAL_STREAM` check, and `init_with` choosing the journal, against a datagram socket
//! in a temp dir standing in for /run/systemd/journal/socket.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../src/logging.rs"]
mod logging;

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use log::{Level, LevelFilter, Log, Record};

/// Parse a native-protocol datagram into fields (values as bytes).
fn parse(mut d: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    while !d.is_empty() {
        let nl = d
            .iter()
            .position(|&b| b == b'\n')
            .expect("field ends with a newline");
        let line = &d[..nl];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            let key = String::from_utf8(line[..eq].to_vec()).unwrap();
            out.insert(key, line[eq + 1..].to_vec());
            d = &d[nl + 1..];
        } else {
            let key = String::from_utf8(line.to_vec()).unwrap();
            let rest = &d[nl + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            let value = rest[8..8 + len].to_vec();
            assert_eq!(
                rest[8 + len],
                b'\n',
                "binary field {key} ends with a newline"
            );
            out.insert(key, value);
            d = &rest[8 + len + 1..];
        }
    }
    out
}

fn recv(server: &UnixDatagram) -> BTreeMap<String, Vec<u8>> {
    let mut buf = vec![0u8; 256 * 1024];
    let n = server.recv(&mut buf).expect("a datagram");
    parse(&buf[..n])
}

fn field<'a>(f: &'a BTreeMap<String, Vec<u8>>, key: &str) -> &'a str {
    std::str::from_utf8(f.get(key).unwrap_or_else(|| panic!("no {key} in {f:?}"))).unwrap()
}

fn server() -> (tempfile::TempDir, std::path::PathBuf, UnixDatagram) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.socket");
    let s = UnixDatagram::bind(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (dir, path, s)
}

#[test]
fn a_record_carries_message_priority_identifier_code_and_txn() {
    let (_dir, path, server) = server();
    let logger = logging::JournalLogger::with_level(&path, LevelFilter::Trace).unwrap();
    logger.log(
        &Record::builder()
            .args(format_args!("txn 42: host approved, auth code A00042"))
            .level(Level::Info)
            .target("pos_terminal::service")
            .module_path(Some("pos_terminal::service"))
            .file(Some("crates/pos-terminal/src/service.rs"))
            .line(Some(339))
            .build(),
    );
    let f = recv(&server);
    assert_eq!(
        field(&f, "MESSAGE"),
        "txn 42: host approved, auth code A00042"
    );
    assert_eq!(field(&f, "PRIORITY"), "6");
    assert_eq!(field(&f, "SYSLOG_IDENTIFIER"), "posctl");
    assert_eq!(field(&f, "TARGET"), "pos_terminal::service");
    assert_eq!(field(&f, "CODE_MODULE"), "pos_terminal::service");
    assert_eq!(field(&f, "CODE_FILE"), "crates/pos-terminal/src/service.rs");
    assert_eq!(field(&f, "CODE_LINE"), "339");
    assert_eq!(field(&f, "POS_TXN"), "42");
}

#[test]
fn a_multi_line_message_uses_the_binary_form() {
    let (_dir, path, server) = server();
    let logger = logging::JournalLogger::with_level(&path, LevelFilter::Trace).unwrap();
    let msg = "txn 7: reversal stuck\nattempts: 3\nlast reply: 96 = system malfunction";
    logger.log(
        &Record::builder()
            .args(format_args!("{msg}"))
            .level(Level::Error)
            .target("pos_terminal::reversal")
            .build(),
    );
    let f = recv(&server);
    assert_eq!(field(&f, "MESSAGE"), msg);
    assert_eq!(field(&f, "PRIORITY"), "3");
    assert_eq!(field(&f, "POS_TXN"), "7");
    assert!(!f.contains_key("CODE_LINE"));
}

#[test]
fn records_below_the_level_are_not_sent() {
    let (_dir, path, server) = server();
    let logger = logging::JournalLogger::with_level(&path, LevelFilter::Warn).unwrap();
    if std::env::var_os("RUST_LOG").is_some() {
        eprintln!("RUST_LOG is set and wins over the level: skipping");
        return;
    }
    let debug = Record::builder()
        .args(format_args!("noise"))
        .level(Level::Debug)
        .target("posctl")
        .build();
    logger.log(&debug);
    logger.log(
        &Record::builder()
            .args(format_args!("paper near end"))
            .level(Level::Warn)
            .target("posctl")
            .build(),
    );
    let f = recv(&server);
    assert_eq!(field(&f, "MESSAGE"), "paper near end");
    assert_eq!(field(&f, "PRIORITY"), "4");
}

#[test]
fn priorities_and_txn_prefix() {
    assert_eq!(logging::priority(Level::Error), 3);
    assert_eq!(logging::priority(Level::Warn), 4);
    assert_eq!(logging::priority(Level::Info), 6);
    assert_eq!(logging::priority(Level::Debug), 7);
    assert_eq!(logging::priority(Level::Trace), 7);
    assert_eq!(logging::txn_id("txn 12: sent"), Some("12"));
    assert_eq!(logging::txn_id("txn 12 sent"), None);
    assert_eq!(logging::txn_id("txn : x"), None);
    assert_eq!(logging::txn_id("txn 1a: x"), None);
    assert_eq!(logging::txn_id("printer: txn 3: x"), None);
    assert_eq!(logging::level_from_flags(0, true), LevelFilter::Error);
    assert_eq!(logging::level_from_flags(0, false), LevelFilter::Warn);
    assert_eq!(logging::level_from_flags(1, false), LevelFilter::Info);
    assert_eq!(logging::level_from_flags(2, false), LevelFilter::Debug);
    assert_eq!(logging::level_from_flags(9, false), LevelFilter::Trace);
}

#[test]
fn journal_stream_must_match_stderr() {
    let id = Some((64769, 123456));
    assert!(logging::stream_matches(Some("64769:123456"), id));
    assert!(!logging::stream_matches(Some("64769:123457"), id));
    assert!(!logging::stream_matches(Some("garbage"), id));
    assert!(!logging::stream_matches(None, id));
    assert!(!logging::stream_matches(Some("64769:123456"), None));
}

/// The only test in this binary that installs the global logger.
#[test]
fn init_with_a_matching_journal_stream_logs_to_the_socket() {
    if std::env::var_os("RUST_LOG").is_some() {
        eprintln!("RUST_LOG is set and wins over the level: skipping");
        return;
    }
    let (_dir, path, server) = server();
    let (dev, ino) = logging::stderr_id().expect("stderr is open under cargo test");
    let stream = format!("{dev}:{ino}");
    assert!(logging::init_with(LevelFilter::Info, Some(&stream), &path));
    log::info!(target: "posctl::serve", "txn 9: receipt owed\nprinter: paper_out");
    let f = recv(&server);
    assert_eq!(
        field(&f, "MESSAGE"),
        "txn 9: receipt owed\nprinter: paper_out"
    );
    assert_eq!(field(&f, "POS_TXN"), "9");
    assert_eq!(field(&f, "TARGET"), "posctl::serve");
    assert_eq!(
        field(&f, "CODE_LINE").parse::<u32>().map(|l| l > 0),
        Ok(true)
    );
    // A second init is refused and keeps the first logger.
    assert!(!logging::init_with(LevelFilter::Info, Some(&stream), &path));
}
