//! The TCP link against loopback listeners.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use pos_hal::{Fault, FaultKind};
use pos_link::{Deadline, Link, LinkError, TcpLink};

fn secs(s: u64) -> Deadline {
    Deadline::after(Duration::from_secs(s))
}

fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = l.local_addr().expect("local address").port();
    (l, port)
}

#[test]
fn bytes_flow_both_ways() {
    let (l, port) = listener();
    let server = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 3];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"\x10\x04\x01");
        s.write_all(&[0x16]).unwrap();
    });
    let mut link = TcpLink::connect("127.0.0.1", port, Duration::from_secs(2)).unwrap();
    link.write_all(b"\x10\x04\x01", secs(2)).unwrap();
    link.flush(secs(1)).unwrap();
    let mut status = [0u8; 1];
    link.read_exact(&mut status, secs(2)).unwrap();
    assert_eq!(status[0], 0x16);
    server.join().unwrap();
}

#[test]
fn a_refused_connection_is_disconnected_and_says_refused() {
    let (l, port) = listener();
    drop(l);
    let err = TcpLink::connect("127.0.0.1", port, Duration::from_secs(2)).unwrap_err();
    assert_eq!(err.kind(), FaultKind::Disconnected, "{err}");
    assert!(matches!(err, LinkError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("refused"), "{err}");
}

#[test]
fn a_silent_peer_gives_a_timeout() {
    let (l, port) = listener();
    let server = thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        thread::sleep(Duration::from_millis(300));
        drop(s);
    });
    let mut link = TcpLink::connect("127.0.0.1", port, Duration::from_secs(2)).unwrap();
    let started = Instant::now();
    let err = link
        .read_available(&mut [0u8; 4], Deadline::after(Duration::from_millis(50)))
        .unwrap_err();
    assert_eq!(err.kind(), FaultKind::Timeout, "{err}");
    assert!(
        started.elapsed() >= Duration::from_millis(45),
        "returned before its deadline"
    );
    server.join().unwrap();
}

#[test]
fn the_peer_closing_is_disconnected() {
    let (l, port) = listener();
    let server = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(b"bye").unwrap();
    });
    let mut link = TcpLink::connect("127.0.0.1", port, Duration::from_secs(2)).unwrap();
    server.join().unwrap();
    let mut buf = [0u8; 3];
    link.read_exact(&mut buf, secs(2)).unwrap();
    assert_eq!(&buf, b"bye");
    let err = link.read_available(&mut [0u8; 4], secs(2)).unwrap_err();
    assert_eq!(err.kind(), FaultKind::Disconnected, "{err}");
}

#[test]
fn read_exact_cut_short_by_a_close_is_disconnected() {
    let (l, port) = listener();
    let server = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(b"ab").unwrap();
    });
    let mut link = TcpLink::connect("127.0.0.1", port, Duration::from_secs(2)).unwrap();
    server.join().unwrap();
    let err = link.read_exact(&mut [0u8; 4], secs(2)).unwrap_err();
    assert_eq!(err.kind(), FaultKind::Disconnected, "{err}");
}

#[test]
fn a_zero_connect_budget_times_out_instead_of_blocking() {
    let (_l, port) = listener();
    let err = TcpLink::connect("127.0.0.1", port, Duration::ZERO).unwrap_err();
    assert_eq!(err.kind(), FaultKind::Timeout, "{err}");
}

#[test]
fn an_unresolvable_name_is_not_found() {
    let err = TcpLink::connect("no-such-host.invalid", 9100, Duration::from_secs(2)).unwrap_err();
    assert_eq!(err.kind(), FaultKind::NotFound, "{err}");
}

#[test]
fn stale_input_is_discarded_and_a_closed_peer_reported() {
    let (l, port) = listener();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(b"old status bytes").unwrap();
        rx.recv().unwrap();
        s.write_all(b"new").unwrap();
        rx.recv().unwrap();
    });
    let mut link = TcpLink::connect("127.0.0.1", port, Duration::from_secs(2)).unwrap();
    let mut first = [0u8; 1];
    link.read_exact(&mut first, secs(2)).unwrap();
    thread::sleep(Duration::from_millis(20));
    assert_eq!(link.discard_input().unwrap(), 15);
    tx.send(()).unwrap();
    let mut buf = [0u8; 3];
    link.read_exact(&mut buf, secs(2)).unwrap();
    assert_eq!(&buf, b"new");
    tx.send(()).unwrap();
    server.join().unwrap();
    thread::sleep(Duration::from_millis(20));
    assert_eq!(
        link.discard_input().unwrap_err().kind(),
        FaultKind::Disconnected
    );
}
