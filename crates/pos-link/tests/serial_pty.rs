//! The serial link over a real pseudo-terminal: the real `serialport` open/termios/poll path.

use std::time::{Duration, Instant};

use pos_hal::{Fault, FaultKind};
use pos_link::{Deadline, Link, LinkError, PtyPair, SerialLink, SerialSettings};

fn secs(s: u64) -> Deadline {
    Deadline::after(Duration::from_secs(s))
}

fn open_pair() -> (PtyPair, SerialLink) {
    let pty = PtyPair::open().expect("allocate a pty");
    let port = SerialLink::open(pty.slave_path(), SerialSettings::default())
        .expect("open the slave as a serial port");
    (pty, port)
}

#[test]
fn bytes_flow_both_ways_unchanged() {
    let (mut pty, mut port) = open_pair();
    // Every byte value, including CR, LF, XON/XOFF and DEL: raw mode must not touch them.
    let all: Vec<u8> = (0..=255u8).collect();
    port.write_all(&all, secs(2)).unwrap();
    port.flush(secs(2)).unwrap();
    let mut got = vec![0u8; all.len()];
    pty.master().read_exact(&mut got, secs(2)).unwrap();
    assert_eq!(got, all);

    pty.master()
        .write_all(b"\x10\x04\x01status\r\n", secs(2))
        .unwrap();
    let mut back = [0u8; 11];
    port.read_exact(&mut back, secs(2)).unwrap();
    assert_eq!(&back, b"\x10\x04\x01status\r\n");
}

#[test]
fn a_read_past_its_deadline_is_a_timeout() {
    let (_pty, mut port) = open_pair();
    let started = Instant::now();
    let err = port
        .read_available(&mut [0u8; 8], Deadline::after(Duration::from_millis(50)))
        .unwrap_err();
    assert_eq!(err.kind(), FaultKind::Timeout, "{err}");
    assert!(
        started.elapsed() >= Duration::from_millis(45),
        "returned before its deadline"
    );
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[test]
fn read_exact_timeout_says_how_much_arrived() {
    let (mut pty, mut port) = open_pair();
    pty.master().write_all(b"abc", secs(1)).unwrap();
    let mut buf = [0u8; 5];
    let err = port
        .read_exact(&mut buf, Deadline::after(Duration::from_millis(100)))
        .unwrap_err();
    match err {
        LinkError::Timeout { done, .. } => assert_eq!(done, 3),
        other => panic!("expected a timeout, got {other}"),
    }
    assert_eq!(&buf[..3], b"abc");
}

#[test]
fn the_device_side_closing_is_disconnected() {
    let (pty, mut port) = open_pair();
    drop(pty);
    let err = port.read_available(&mut [0u8; 8], secs(2)).unwrap_err();
    assert_eq!(err.kind(), FaultKind::Disconnected, "{err}");
}

#[test]
fn the_driver_side_closing_is_disconnected_for_the_simulator() {
    let (mut pty, port) = open_pair();
    drop(port);
    let err = pty
        .master()
        .read_available(&mut [0u8; 8], secs(2))
        .unwrap_err();
    assert_eq!(err.kind(), FaultKind::Disconnected, "{err}");
}

#[test]
fn a_second_opener_is_told_busy() {
    let (pty, _port) = open_pair();
    let err = SerialLink::open(pty.slave_path(), SerialSettings::default()).unwrap_err();
    assert_eq!(err.kind(), FaultKind::Busy, "{err}");
    assert!(err.hint().is_some_and(|h| h.contains(pty.slave_path())));
}

#[test]
fn a_missing_port_is_not_found() {
    let err =
        SerialLink::open("/dev/ttyNOPE-pos-link-test", SerialSettings::default()).unwrap_err();
    assert_eq!(err.kind(), FaultKind::NotFound, "{err}");
    assert!(
        err.to_string().contains("/dev/ttyNOPE-pos-link-test"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_a_tty_is_an_error_not_a_panic() {
    let f = tempfile::NamedTempFile::new().unwrap();
    let path = f.path().to_str().unwrap();
    let err = SerialLink::open(path, SerialSettings::default()).unwrap_err();
    assert!(
        matches!(err.kind(), FaultKind::Io | FaultKind::InvalidInput),
        "{err} ({:?})",
        err.kind()
    );
}

#[test]
fn stale_input_is_discarded() {
    let (mut pty, mut port) = open_pair();
    pty.master().write_all(b"stale bytes", secs(1)).unwrap();
    // Give the line discipline a moment to move the bytes across.
    std::thread::sleep(Duration::from_millis(20));
    port.discard_input().unwrap();
    let err = port
        .read_available(&mut [0u8; 8], Deadline::after(Duration::from_millis(30)))
        .unwrap_err();
    assert_eq!(err.kind(), FaultKind::Timeout);
    // Input arriving after the discard is read normally.
    pty.master().write_all(b"new", secs(1)).unwrap();
    let mut buf = [0u8; 3];
    port.read_exact(&mut buf, secs(1)).unwrap();
    assert_eq!(&buf, b"new");
}

#[test]
fn opened_from_a_uri_with_line_settings() {
    let pty = PtyPair::open().unwrap();
    let uri = format!("{}?baud=19200&parity=even&data=7&stop=2", pty.slave_uri());
    let uri: pos_link::DeviceUri = uri.parse().unwrap();
    let port = SerialLink::open_uri(&uri).unwrap();
    let s = port.settings();
    assert_eq!((s.baud, s.data_bits, s.stop_bits), (19200, 7, 2));
    assert_eq!(port.pacing().bytes_per_second, Some(19200 / 11));
    assert_eq!(port.target(), format!("serial:{}", pty.slave_path()));
}

#[test]
fn a_deadline_in_the_past_still_takes_waiting_bytes() {
    let (mut pty, mut port) = open_pair();
    pty.master().write_all(b"x", secs(1)).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let mut b = [0u8; 4];
    assert_eq!(port.read_available(&mut b, Deadline::now()).unwrap(), 1);
    assert_eq!(b[0], b'x');
}
