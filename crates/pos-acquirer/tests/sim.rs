//! The fake host on its own: rules, ledger persistence, log and observer, down and up,
//! undecodable input.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pos_acquirer::sim::{EntryState, FakeHost, HostRules};
use pos_acquirer::*;
use pos_hal::Sensitive;

fn client(addr: SocketAddr) -> TcpAcquirer {
    let mut s = AcquirerSettings::new(addr.to_string(), "TERM0002", "MERCHANT0000002");
    s.response_timeout = Duration::from_secs(5);
    TcpAcquirer::new(s)
}

fn sale(stan: u32, amount: u64) -> Request {
    Request {
        operation: Operation::Sale,
        amount,
        currency: 840,
        stan,
        transmission_time: "0101120000".into(),
        local_time: ("120000".into(), "0101".into()),
        card: Some(CardData {
            pan: Sensitive::new(b"5413330089600044".to_vec()),
            expiry: Some("2712".into()),
            pan_sequence: None,
            track2: None,
            entry_mode: EntryMode::Swipe,
            icc_data: None,
        }),
        original: None,
        batch: None,
    }
}

#[test]
fn default_rules() {
    let r = HostRules::default();
    assert_eq!(r.reversal_reject_code, "96");
    assert_eq!(r.max_amount, None);
    assert_eq!(r.delay, Duration::ZERO);
    let host = FakeHost::start("127.0.0.1:0", r).unwrap();
    let mut c = client(host.addr());
    let codes: Vec<String> = [(1, 1250), (2, 1205), (3, 1291), (4, 1251)]
        .into_iter()
        .map(
            |(stan, amount)| match c.authorize(&sale(stan, amount), &mut |_| {}) {
                Outcome::Approved(a) => a.response_code,
                Outcome::Declined(d) => d.response_code,
                other => panic!("{other:?}"),
            },
        )
        .collect();
    assert_eq!(codes, ["00", "05", "91", "51"]);
}

#[test]
fn max_amount_declines_61() {
    let rules = HostRules {
        max_amount: Some(10_000),
        ..HostRules::default()
    };
    let host = FakeHost::start("127.0.0.1:0", rules).unwrap();
    let mut c = client(host.addr());
    let out = c.authorize(&sale(1, 10_100), &mut |_| {});
    assert!(
        matches!(&out, Outcome::Declined(d) if d.response_code == "61"),
        "{out:?}"
    );
    let out = c.authorize(&sale(2, 10_000), &mut |_| {});
    assert!(matches!(out, Outcome::Approved(_)), "{out:?}");
}

#[test]
fn ledger_survives_across_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.json");
    let (auth, rrn) = {
        let host = FakeHost::start_with_ledger("127.0.0.1:0", HostRules::default(), &path).unwrap();
        let out = client(host.addr()).authorize(&sale(7, 2500), &mut |_| {});
        let Outcome::Approved(a) = out else {
            panic!("{out:?}")
        };
        (a.auth_code, a.rrn)
    };
    assert!(path.exists());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("5413330089600044"), "{text}");
    let host = FakeHost::start_with_ledger("127.0.0.1:0", HostRules::default(), &path).unwrap();
    let l = host.ledger();
    let e = l.find("TERM0002", 7).unwrap();
    assert_eq!(
        (e.auth_code.as_str(), e.rrn.as_str()),
        (auth.as_str(), rrn.as_str())
    );
    assert_eq!(e.state, EntryState::Approved);
    assert_eq!(l.net_charged(), 2500);
    // The counter goes on: a new approval gets a new RRN.
    let out = client(host.addr()).authorize(&sale(8, 100), &mut |_| {});
    let Outcome::Approved(a) = out else {
        panic!("{out:?}")
    };
    assert_ne!(a.rrn, rrn);
    drop(host);
    let again = FakeHost::start_with_ledger("127.0.0.1:0", HostRules::default(), &path).unwrap();
    assert_eq!(again.ledger().entries.len(), 2);
}

#[test]
fn corrupt_ledger_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.json");
    std::fs::write(&path, b"{not json").unwrap();
    let err = FakeHost::start_with_ledger("127.0.0.1:0", HostRules::default(), &path).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
fn log_and_observer_are_masked() {
    let host = FakeHost::start("127.0.0.1:0", HostRules::default()).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = Arc::clone(&seen);
    host.set_observer(Box::new(move |e| s2.lock().unwrap().push(e.clone())));
    client(host.addr()).authorize(&sale(3, 1250), &mut |_| {});
    let log = host.log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].mti, "0200");
    assert_eq!(log[0].stan, Some(3));
    assert_eq!(log[0].response_code.as_deref(), Some("00"));
    assert!(log[0].answered);
    assert!(!log[0].summary.contains("5413330089600044"));
    assert!(log[0].summary.contains("541333******0044"));
    assert_eq!(*seen.lock().unwrap(), log);
}

#[test]
fn undecodable_input_closes_the_connection() {
    let host = FakeHost::start("127.0.0.1:0", HostRules::default()).unwrap();
    let mut s = TcpStream::connect(host.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"\x00\x05hello").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0);
    assert!(host.log().is_empty());
    // The host still works.
    assert!(client(host.addr()).echo().is_ok());
}

#[test]
fn down_refuses_at_the_os_level() {
    let host = FakeHost::start("127.0.0.1:0", HostRules::default()).unwrap();
    let addr = host.addr();
    host.set_down(true).unwrap();
    let err = TcpStream::connect(addr).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    host.set_down(false).unwrap();
    assert_eq!(host.addr(), addr);
    assert!(TcpStream::connect(addr).is_ok());
}

#[test]
fn drop_stops_listening() {
    let host = FakeHost::start("127.0.0.1:0", HostRules::default()).unwrap();
    let addr = host.addr();
    drop(host);
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn a_reversal_that_overtakes_its_request_undoes_it_on_arrival() {
    let host = FakeHost::start("127.0.0.1:0", HostRules::default()).unwrap();
    let mut c = client(host.addr());
    let original = sale(77, 1250);
    let rev = Reversal {
        operation: Operation::Sale,
        amount: 1250,
        currency: 840,
        stan: 78,
        transmission_time: "0101120005".into(),
        card: original.card.clone(),
        original: OriginalData {
            mti: Mti::FINANCIAL_REQUEST,
            stan: 77,
            transmission_time: "0101120000".into(),
            rrn: None,
            auth_code: None,
        },
        reason: ReversalReason::NoValidResponse,
        repeat: false,
    };
    // The reversal first: nothing to reverse yet (25, taken as done by the terminal).
    assert!(
        matches!(c.reverse(&rev, &mut |_| {}), Outcome::Approved(ref a) if a.response_code == "25")
    );
    // Then the late original: approved on the wire, but undone in the ledger at once.
    assert!(matches!(
        c.authorize(&original, &mut |_| {}),
        Outcome::Approved(_)
    ));
    let ledger = host.ledger();
    assert_eq!(
        ledger.find("TERM0002", 77).unwrap().state,
        EntryState::Reversed
    );
    assert_eq!(ledger.net_charged(), 0);
    assert!(ledger.early_reversals.is_empty());
}
