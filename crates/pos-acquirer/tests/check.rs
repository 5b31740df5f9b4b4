//! `check()`: each diagnosis against a real socket.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread;
use std::time::Duration;

use pos_acquirer::sim::{FakeHost, HostRules};
use pos_acquirer::*;

fn settings(addr: &str) -> AcquirerSettings {
    let mut s = AcquirerSettings::new(addr, "TERM0001", "MERCHANT0000001");
    s.connect_timeout = Duration::from_secs(2);
    s.response_timeout = Duration::from_millis(300);
    s
}

#[test]
fn ok_against_the_fake_host() {
    let host = FakeHost::start("127.0.0.1:0", HostRules::default()).unwrap();
    let mut s = settings(&host.addr().to_string());
    s.response_timeout = Duration::from_secs(5);
    let r = check(&s);
    assert_eq!(r.diagnosis, Diagnosis::Ok, "{r:?}");
    assert!(r.is_ok());
    assert!(r.connect_time.is_some() && r.round_trip.is_some());
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["diagnosis"], "ok");
    assert!(json["round_trip_ms"].is_number());
    assert_eq!(host.log()[0].mti, "0800");
}

#[test]
fn refused() {
    let addr: SocketAddr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let r = check(&settings(&addr.to_string()));
    assert_eq!(r.diagnosis, Diagnosis::Refused, "{r:?}");
    assert!(r.hint.contains("nothing listens"));
    assert!(r.connect_time.is_none());
    assert_eq!(
        serde_json::to_value(&r).unwrap()["connect_time_ms"],
        serde_json::Value::Null
    );
}

#[test]
fn bad_address() {
    for a in ["no-port-here", "127.0.0.1:notaport", ""] {
        let r = check(&settings(a));
        assert_eq!(r.diagnosis, Diagnosis::BadAddress, "{a}: {r:?}");
    }
}

#[test]
fn no_answer() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        // Read until the client gives up; never answer.
        let mut buf = [0u8; 256];
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    });
    let r = check(&settings(&addr.to_string()));
    assert_eq!(r.diagnosis, Diagnosis::NoAnswer, "{r:?}");
    assert!(r.connect_time.is_some());
    assert!(r.round_trip.is_none());
    t.join().unwrap();
}

#[test]
fn connection_closed() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 2];
        let _ = s.read_exact(&mut buf);
    });
    let r = check(&settings(&addr.to_string()));
    assert_eq!(r.diagnosis, Diagnosis::ConnectionClosed, "{r:?}");
    t.join().unwrap();
}

#[test]
fn bad_response() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf);
        s.write_all(b"\x00\x08garbage!").unwrap();
        let _ = s.read(&mut buf);
    });
    let mut s = settings(&addr.to_string());
    s.response_timeout = Duration::from_secs(5);
    let r = check(&s);
    assert_eq!(r.diagnosis, Diagnosis::BadResponse, "{r:?}");
    assert!(!r.hint.is_empty());
    t.join().unwrap();
}
