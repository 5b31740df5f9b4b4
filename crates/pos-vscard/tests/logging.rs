//! Card data hygiene: with every log level on, no log line carries APDU bytes.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::sync::Mutex;
use std::time::Duration;

use pos_hal::VirtualCard;
use pos_vscard::codec::error_code;
use pos_vscard::{Body, CardClient, Decoder, Message, encode};

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;
impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        LINES
            .lock()
            .unwrap()
            .push(format!("{} {}", record.level(), record.args()));
    }
    fn flush(&self) {}
}
static LOGGER: Capture = Capture;

/// A "PAN" no log line may show, in any usual rendering.
const SECRET: [u8; 4] = [0xA5, 0x5A, 0xC3, 0x3C];

struct Leaky;
impl VirtualCard for Leaky {
    fn power_on(&mut self) -> Option<Vec<u8>> {
        Some(vec![0x3B, 0x00])
    }
    fn transmit(&mut self, _: &[u8]) -> Option<Vec<u8>> {
        let mut r = SECRET.to_vec();
        r.extend_from_slice(&[0x90, 0x00]);
        Some(r)
    }
}

#[test]
fn apdu_bytes_are_never_logged() {
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Trace);

    let wait = Duration::from_secs(10);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("CARD.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let client = CardClient::connect(&path, wait).unwrap();
    let (mut s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    let mut dec = Decoder::new();
    let mut recv = |s: &mut std::os::unix::net::UnixStream| loop {
        if let Some(m) = dec.pop().unwrap() {
            return m;
        }
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        dec.push(&buf[..n]);
    };
    let ok = encode(&Message::new(
        0,
        Body::Error {
            code: error_code::SUCCESS,
        },
    ));
    recv(&mut s); // Init
    s.write_all(&encode(&Message::init())).unwrap();
    recv(&mut s); // ReaderRemove
    recv(&mut s); // ReaderAdd
    s.write_all(&ok).unwrap();
    s.write_all(&ok).unwrap();
    client.wait_connected(wait).unwrap();
    client.insert(Box::new(Leaky)).unwrap();
    recv(&mut s); // ATR
    s.write_all(&ok).unwrap();
    let mut cmd = vec![0x00, 0xB2, 0x01, 0x0C];
    cmd.extend_from_slice(&SECRET);
    s.write_all(&encode(&Message::new(0, Body::Apdu(cmd))))
        .unwrap();
    let resp = recv(&mut s);
    assert!(matches!(resp.body, Body::Apdu(ref r) if r.starts_with(&SECRET)));
    client.shutdown().unwrap();

    let lines = LINES.lock().unwrap();
    assert!(lines.iter().any(|l| l.contains("APDU")), "{lines:?}");
    // The socket path is random (tempdir) and may hold any letters: leave it out.
    let dir_text = dir.path().display().to_string();
    for l in lines.iter() {
        let low = l.replace(&dir_text, "<dir>").to_lowercase();
        for needle in ["a5", "5a", "c3", "3c", "165", "90, 0", "[0, 178"] {
            assert!(!low.contains(needle), "log line shows card data: {l}");
        }
    }
}
