//! The loopback self-test against echoing peers on a pty and on TCP, and against faulty ones.

use std::net::TcpListener;
use std::time::Duration;

use pos_hal::FaultKind;
use pos_link::{Deadline, Link, PtyPair, SerialLink, SerialSettings, TcpLink, loopback};

#[test]
fn a_pty_echo_passes() {
    let (master, slave) = PtyPair::open().unwrap().into_parts();
    let echo = loopback::spawn_echo(master, Duration::from_secs(2));
    let mut port = SerialLink::open(&slave, SerialSettings::default()).unwrap();
    let report = loopback::run(&mut port, 4096, Duration::from_secs(2));
    assert!(report.passed(), "{report}");
    assert_eq!(report.received, 4096);
    drop(port);
    assert_eq!(echo.join().unwrap().unwrap(), 4096);
}

#[test]
fn a_tcp_echo_passes() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        loopback::spawn_echo(TcpLink::from_stream(s).unwrap(), Duration::from_secs(2))
            .join()
            .unwrap()
    });
    let mut link = TcpLink::connect("127.0.0.1", port, Duration::from_secs(2)).unwrap();
    let report = loopback::run(&mut link, 10_000, Duration::from_secs(2));
    assert!(report.passed(), "{report}");
    drop(link);
    assert_eq!(server.join().unwrap().unwrap(), 10_000);
}

#[test]
fn a_corrupting_peer_is_caught_at_the_right_offset() {
    let pty = PtyPair::open().unwrap();
    let mut port = SerialLink::open(pty.slave_path(), SerialSettings::default()).unwrap();
    let (mut master, _) = pty.into_parts();
    let flipper = std::thread::spawn(move || {
        let mut seen = 0usize;
        let mut buf = [0u8; 512];
        while let Ok(n) =
            master.read_available(&mut buf, Deadline::after(Duration::from_millis(500)))
        {
            for (i, b) in buf[..n].iter_mut().enumerate() {
                if seen + i == 300 {
                    *b ^= 0x01; // a single bit error, as a noisy line makes
                }
            }
            seen += n;
            if master
                .write_all(&buf[..n], Deadline::after(Duration::from_secs(1)))
                .is_err()
            {
                break;
            }
        }
    });
    let report = loopback::run(&mut port, 1024, Duration::from_secs(2));
    assert!(!report.passed());
    assert_eq!(report.first_mismatch, Some(300), "{report}");
    assert!(report.to_string().contains("offset 300"), "{report}");
    drop(port);
    flipper.join().unwrap();
}

#[test]
fn a_missing_plug_is_a_timeout_in_the_report() {
    let pty = PtyPair::open().unwrap();
    let mut port = SerialLink::open(pty.slave_path(), SerialSettings::default()).unwrap();
    let report = loopback::run(&mut port, 64, Duration::from_millis(100));
    assert!(!report.passed());
    assert_eq!(report.fault, Some(FaultKind::Timeout), "{report}");
    assert_eq!(report.received, 0);
}

#[test]
fn an_unplugged_peer_is_disconnected_in_the_report() {
    let pty = PtyPair::open().unwrap();
    let mut port = SerialLink::open(pty.slave_path(), SerialSettings::default()).unwrap();
    drop(pty);
    let report = loopback::run(&mut port, 64, Duration::from_secs(1));
    assert_eq!(report.fault, Some(FaultKind::Disconnected), "{report}");
    assert!(report.to_string().contains("disconnected"), "{report}");
}
