//! The TCP client against raw listeners and the fake host: bytes on the wire, outcomes of
//! every failure, wire events, reversals, voids and completions.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread;
use std::time::Duration;

use pos_acquirer::sim::{EntryState, FakeHost, HostFault, HostRules};
use pos_acquirer::*;
use pos_hal::Sensitive;

const PAN: &str = "4761739001010119";

fn settings(addr: SocketAddr) -> AcquirerSettings {
    AcquirerSettings {
        address: addr.to_string(),
        connect_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_secs(5),
        dialect: Dialect::default_pos(),
        terminal_id: "TERM0001".into(),
        merchant_id: "MERCHANT0000001".into(),
    }
}

fn card() -> CardData {
    CardData {
        pan: Sensitive::new(PAN.as_bytes().to_vec()),
        expiry: Some("2512".into()),
        pan_sequence: Some(1),
        track2: None,
        entry_mode: EntryMode::Chip,
        icc_data: Some(vec![0x9f, 0x26, 0x02, 0xab, 0xcd]),
    }
}

fn request(operation: Operation, stan: u32, amount: u64) -> Request {
    Request {
        operation,
        amount,
        currency: 978,
        stan,
        transmission_time: format!("11231751{:02}", stan % 60),
        local_time: ("175100".into(), "1123".into()),
        card: Some(card()),
        original: None,
        batch: None,
    }
}

fn original(req: &Request, outcome: &Outcome) -> OriginalData {
    let (rrn, auth) = match outcome {
        Outcome::Approved(a) => (Some(a.rrn.clone()), Some(a.auth_code.clone())),
        _ => (None, None),
    };
    OriginalData {
        mti: req.operation.mti(),
        stan: req.stan,
        transmission_time: req.transmission_time.clone(),
        rrn,
        auth_code: auth,
    }
}

fn reversal(req: &Request, outcome: &Outcome, stan: u32, repeat: bool) -> Reversal {
    let mut c = card();
    c.icc_data = None;
    Reversal {
        operation: req.operation,
        amount: req.amount,
        currency: req.currency,
        stan,
        transmission_time: format!("11231752{:02}", stan % 60),
        card: Some(c),
        original: original(req, outcome),
        reason: ReversalReason::NoValidResponse,
        repeat,
    }
}

fn host() -> (FakeHost, TcpAcquirer) {
    let host = FakeHost::start("127.0.0.1:0", HostRules::default()).unwrap();
    let client = TcpAcquirer::new(settings(host.addr()));
    (host, client)
}

fn no_events() -> impl FnMut(&WireEvent) {
    |_| {}
}

/// Reads one framed request from a listener, then closes without answering.
fn capture_one(listener: TcpListener) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut header = [0u8; 2];
        s.read_exact(&mut header).unwrap();
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(header))];
        s.read_exact(&mut body).unwrap();
        [header.to_vec(), body].concat()
    })
}

#[test]
fn golden_sale_request_bytes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let captured = capture_one(listener);
    let mut client = TcpAcquirer::new(settings(addr));
    let req = Request {
        operation: Operation::Sale,
        amount: 1250,
        currency: 978,
        stan: 123,
        transmission_time: "1123175100".into(),
        local_time: ("175100".into(), "1123".into()),
        card: Some(card()),
        original: None,
        batch: None,
    };
    let outcome = client.authorize(&req, &mut no_events());
    // The capture closes without answering: the request left, so the outcome is unknown.
    assert!(matches!(outcome, Outcome::Unknown(_)), "{outcome:?}");
    let expected: Vec<u8> = [
        &[0x00, 0x78][..], // frame length 120
        b"0200",
        // bitmap: 2 3 4 7 | 11 12 13 14 | 22 23 | 25 | - | 41 42 | 49 55 | -
        &[0x72, 0x3C, 0x06, 0x80, 0x00, 0xC0, 0x82, 0x00],
        b"16",
        b"4761739001010119", // 2
        b"000000",           // 3
        b"000000001250",     // 4
        b"1123175100",       // 7
        b"000123",           // 11
        b"175100",           // 12
        b"1123",             // 13
        b"2512",             // 14
        b"051",              // 22
        b"001",              // 23
        b"00",               // 25
        b"TERM0001",         // 41
        b"MERCHANT0000001",  // 42
        b"978",              // 49
        b"005",              // 55 LLL
        &[0x9f, 0x26, 0x02, 0xab, 0xcd],
    ]
    .concat();
    assert_eq!(captured.join().unwrap(), expected);
}

#[test]
fn track2_replaces_pan_and_reversal_never_carries_track() {
    let client = TcpAcquirer::new(settings("127.0.0.1:1".parse().unwrap()));
    let mut req = request(Operation::Sale, 7, 1000);
    if let Some(c) = req.card.as_mut() {
        c.track2 = Some(Sensitive::new(b"4761739001010119=25122011".to_vec()));
        c.entry_mode = EntryMode::Swipe;
    }
    let m = client.build_request(&req);
    assert!(m.has(35) && !m.has(2));
    assert_eq!(m.pos_entry_mode(), Some("901"));
    let mut rev = reversal(
        &req,
        &Outcome::NotSent(AcquirerError::Config {
            detail: String::new(),
        }),
        8,
        true,
    );
    rev.card = req.card.clone();
    let r = client.build_reversal(&rev);
    assert_eq!(r.mti.to_string(), "0401");
    assert!(r.has(2) && !r.has(35));
    assert_eq!(r.pos_condition(), Some("68"));
    assert_eq!(r.stan(), Some(8));
    assert_eq!(
        r.original_data().unwrap(),
        format!("0200000007{}{}", req.transmission_time, "0".repeat(22))
    );
    let dbg = format!("{m:?}{r:?}");
    assert!(!dbg.contains(PAN) && !dbg.contains("25122011"), "{dbg}");
}

#[test]
fn approval_with_auth_code_rrn_and_ledger() {
    let (host, mut client) = host();
    let req = request(Operation::Sale, 1, 1250);
    let out = client.authorize(&req, &mut no_events());
    let Outcome::Approved(a) = &out else {
        panic!("{out:?}")
    };
    assert_eq!(a.response_code, "00");
    assert_eq!(a.auth_code.len(), 6);
    assert_eq!(a.rrn.len(), 12);
    assert!(!a.issuer_data.is_empty());
    let e = host.ledger().find("TERM0001", 1).unwrap();
    assert_eq!(e.state, EntryState::Approved);
    assert_eq!(e.auth_code, a.auth_code);
    assert_eq!(e.rrn, a.rrn);
    assert_eq!(e.amount, 1250);
    assert_eq!(host.ledger().net_charged(), 1250);
}

#[test]
fn decline_by_rule() {
    let (host, mut client) = host();
    let out = client.authorize(&request(Operation::Sale, 2, 1251), &mut no_events());
    let Outcome::Declined(d) = out else {
        panic!("{out:?}")
    };
    assert_eq!(d.response_code, "51");
    assert_eq!(d.reason, "insufficient funds");
    assert_eq!(
        host.ledger().find("TERM0001", 2).unwrap().state,
        EntryState::Declined
    );
    assert_eq!(host.ledger().net_charged(), 0);
}

#[test]
fn timeout_fault_is_unknown_but_host_approved() {
    let (host, _) = host();
    let mut s = settings(host.addr());
    s.response_timeout = Duration::from_millis(300);
    let mut client = TcpAcquirer::new(s);
    host.arm(HostFault::Timeout);
    let out = client.authorize(&request(Operation::Sale, 3, 1250), &mut no_events());
    assert!(
        matches!(out, Outcome::Unknown(AcquirerError::ResponseTimeout { .. })),
        "{out:?}"
    );
    assert!(out.must_reverse());
    assert_eq!(
        host.ledger().find("TERM0001", 3).unwrap().state,
        EntryState::Approved
    );
}

#[test]
fn drop_after_approve_is_unknown() {
    let (host, mut client) = host();
    host.arm(HostFault::DropAfterApprove);
    let out = client.authorize(&request(Operation::Sale, 4, 1250), &mut no_events());
    assert!(
        matches!(out, Outcome::Unknown(AcquirerError::ConnectionLost { .. })),
        "{out:?}"
    );
    assert_eq!(host.ledger().net_charged(), 1250);
}

#[test]
fn close_on_request_is_unknown_and_nothing_recorded() {
    let (host, mut client) = host();
    host.arm(HostFault::CloseOnRequest);
    let out = client.authorize(&request(Operation::Sale, 5, 1250), &mut no_events());
    assert!(matches!(out, Outcome::Unknown(_)), "{out:?}");
    assert!(host.ledger().entries.is_empty());
}

#[test]
fn bad_response_fault() {
    let (host, mut client) = host();
    host.arm(HostFault::BadResponse);
    let out = client.authorize(&request(Operation::Sale, 6, 1250), &mut no_events());
    assert!(matches!(out, Outcome::BadResponse(_)), "{out:?}");
    assert!(out.must_reverse());
}

#[test]
fn decline_and_delay_faults() {
    let (host, mut client) = host();
    host.arm(HostFault::Decline("05".into()));
    host.arm(HostFault::Delay(Duration::from_millis(50)));
    let out = client.authorize(&request(Operation::Sale, 7, 1250), &mut no_events());
    assert!(
        matches!(&out, Outcome::Declined(d) if d.response_code == "05"),
        "{out:?}"
    );
    let out = client.authorize(&request(Operation::Sale, 8, 1250), &mut no_events());
    assert!(matches!(out, Outcome::Approved(_)), "{out:?}");
    // Both faults used up.
    let out = client.authorize(&request(Operation::Sale, 9, 1250), &mut no_events());
    assert!(matches!(out, Outcome::Approved(_)), "{out:?}");
}

#[test]
fn host_down_is_not_sent_then_up_again() {
    let (host, mut client) = host();
    host.set_down(true).unwrap();
    let mut events = Vec::new();
    let out = client.authorize(&request(Operation::Sale, 10, 1250), &mut |e| {
        events.push(e.clone())
    });
    assert!(
        matches!(out, Outcome::NotSent(AcquirerError::Refused { .. })),
        "{out:?}"
    );
    assert!(!out.must_reverse());
    assert_eq!(events.len(), 1);
    assert!(matches!(
        events[0],
        WireEvent::Failed {
            after_send: false,
            ..
        }
    ));
    assert!(client.echo().is_err());
    host.set_down(false).unwrap();
    let out = client.authorize(&request(Operation::Sale, 11, 1250), &mut no_events());
    assert!(matches!(out, Outcome::Approved(_)), "{out:?}");
    assert!(host.ledger().find("TERM0001", 10).is_none());
}

#[test]
fn wire_events_sent_then_received_and_masked() {
    let (_host, mut client) = host();
    let mut events = Vec::new();
    let out = client.authorize(&request(Operation::Sale, 12, 1250), &mut |e| {
        events.push(e.clone())
    });
    assert!(matches!(out, Outcome::Approved(_)));
    assert_eq!(events.len(), 2, "{events:?}");
    let WireEvent::Sent { mti, stan, summary } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!((*mti, *stan), (Mti::FINANCIAL_REQUEST, 12));
    assert!(
        !summary.contains(PAN) && summary.contains("476173******0119"),
        "{summary}"
    );
    let WireEvent::Received {
        mti, response_code, ..
    } = &events[1]
    else {
        panic!("{events:?}")
    };
    assert_eq!(*mti, Mti::FINANCIAL_RESPONSE);
    assert_eq!(response_code.as_deref(), Some("00"));
}

#[test]
fn wire_events_on_timeout() {
    let (host, _) = host();
    let mut s = settings(host.addr());
    s.response_timeout = Duration::from_millis(200);
    let mut client = TcpAcquirer::new(s);
    host.arm(HostFault::Timeout);
    let mut events = Vec::new();
    client.authorize(&request(Operation::Sale, 13, 1250), &mut |e| {
        events.push(e.clone())
    });
    assert!(matches!(events[0], WireEvent::Sent { .. }), "{events:?}");
    assert!(
        matches!(
            events[1],
            WireEvent::Failed {
                after_send: true,
                ..
            }
        ),
        "{events:?}"
    );
    assert_eq!(events.len(), 2);
}

#[test]
fn reversal_flow_idempotent_and_unknown_original() {
    let (host, mut client) = host();
    let req = request(Operation::Sale, 20, 1250);
    let out = client.authorize(&req, &mut no_events());
    assert!(matches!(out, Outcome::Approved(_)));
    assert_eq!(host.ledger().net_charged(), 1250);

    let rev = reversal(&req, &out, 21, false);
    let r = client.reverse(&rev, &mut no_events());
    assert!(
        matches!(&r, Outcome::Approved(a) if a.response_code == "00"),
        "{r:?}"
    );
    assert_eq!(
        host.ledger().find("TERM0001", 20).unwrap().state,
        EntryState::Reversed
    );
    assert_eq!(host.ledger().net_charged(), 0);

    // Sent again (0401): same answer, nothing changes.
    let again = reversal(&req, &out, 22, true);
    let r = client.reverse(&again, &mut no_events());
    assert!(
        matches!(&r, Outcome::Approved(a) if a.response_code == "00"),
        "{r:?}"
    );
    assert_eq!(host.ledger().net_charged(), 0);
    assert_eq!(host.ledger().entries.len(), 1);
    assert_eq!(host.log().last().unwrap().mti, "0401");

    // Never seen by the host: "25", nothing to reverse, done.
    let unknown = reversal(&request(Operation::Sale, 999, 1250), &out, 23, false);
    let r = client.reverse(&unknown, &mut no_events());
    assert!(
        matches!(&r, Outcome::Approved(a) if a.response_code == "25"),
        "{r:?}"
    );
}

#[test]
fn reversal_after_timeout_undoes_the_charge() {
    let (host, _) = host();
    let mut s = settings(host.addr());
    s.response_timeout = Duration::from_millis(300);
    let mut client = TcpAcquirer::new(s);
    host.arm(HostFault::Timeout);
    let req = request(Operation::Sale, 30, 4200);
    let out = client.authorize(&req, &mut no_events());
    assert!(out.must_reverse());
    assert_eq!(host.ledger().net_charged(), 4200);
    let r = client.reverse(&reversal(&req, &out, 31, false), &mut no_events());
    assert!(matches!(r, Outcome::Approved(_)), "{r:?}");
    assert_eq!(host.ledger().net_charged(), 0);
    assert!(host.ledger().approved_not_reversed().is_empty());
}

#[test]
fn rejected_reversals_then_accepted() {
    let (host, mut client) = host();
    let req = request(Operation::Sale, 40, 1250);
    let out = client.authorize(&req, &mut no_events());
    host.arm(HostFault::RejectReversals(2));
    for (i, stan) in [41, 42].into_iter().enumerate() {
        let r = client.reverse(&reversal(&req, &out, stan, i > 0), &mut no_events());
        assert!(
            matches!(&r, Outcome::Declined(d) if d.response_code == "96"),
            "{r:?}"
        );
        assert_eq!(host.ledger().net_charged(), 1250);
    }
    let r = client.reverse(&reversal(&req, &out, 43, true), &mut no_events());
    assert!(matches!(r, Outcome::Approved(_)), "{r:?}");
    assert_eq!(host.ledger().net_charged(), 0);
}

#[test]
fn void_marks_the_sale_voided() {
    let (host, mut client) = host();
    let sale = request(Operation::Sale, 50, 1250);
    let out = client.authorize(&sale, &mut no_events());
    assert!(matches!(out, Outcome::Approved(_)));
    let mut void = request(Operation::Void, 51, 1250);
    void.card = None;
    void.original = Some(original(&sale, &out));
    let msg = client.build_request(&void);
    assert_eq!(msg.processing_code(), Some("020000"));
    assert_eq!(msg.pos_entry_mode(), Some("012"));
    assert!(msg.has(37) && msg.has(38) && msg.has(90));
    let v = client.void(&void, &mut no_events());
    assert!(matches!(v, Outcome::Approved(_)), "{v:?}");
    let l = host.ledger();
    assert_eq!(l.find("TERM0001", 50).unwrap().state, EntryState::Voided);
    assert_eq!(l.net_charged(), 0);
}

#[test]
fn completion_marks_the_preauth_completed() {
    let (host, mut client) = host();
    let pre = request(Operation::PreAuth, 60, 10000);
    let out = client.pre_authorize(&pre, &mut no_events());
    assert!(matches!(out, Outcome::Approved(_)), "{out:?}");
    assert_eq!(host.log()[0].mti, "0100");
    assert_eq!(host.ledger().holds(), 10000);
    assert_eq!(host.ledger().net_charged(), 0);
    let mut done = request(Operation::Completion, 61, 8000);
    done.card = None;
    done.original = Some(original(&pre, &out));
    let c = client.send(&done, &mut no_events());
    assert!(matches!(c, Outcome::Approved(_)), "{c:?}");
    let l = host.ledger();
    assert_eq!(l.find("TERM0001", 60).unwrap().state, EntryState::Completed);
    assert_eq!(l.holds(), 0);
    assert_eq!(l.net_charged(), 8000);
}

#[test]
fn refund_is_negative() {
    let (host, mut client) = host();
    let out = client.refund(&request(Operation::Refund, 70, 300), &mut no_events());
    assert!(matches!(out, Outcome::Approved(_)), "{out:?}");
    assert_eq!(host.ledger().net_charged(), -300);
}

#[test]
fn echo_round_trip() {
    let (host, mut client) = host();
    assert!(client.echo().is_ok());
    let log = host.log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].mti, "0800");
    assert_eq!(log[0].response_code.as_deref(), Some("00"));
}

#[test]
fn encode_error_is_not_sent() {
    let (host, _) = host();
    let mut s = settings(host.addr());
    s.terminal_id = "TOO-LONG-ID".into();
    let mut client = TcpAcquirer::new(s);
    let mut events = Vec::new();
    let out = client.authorize(&request(Operation::Sale, 80, 100), &mut |e| {
        events.push(e.clone())
    });
    assert!(
        matches!(out, Outcome::NotSent(AcquirerError::Encode { .. })),
        "{out:?}"
    );
    assert!(matches!(
        events[..],
        [WireEvent::Failed {
            after_send: false,
            ..
        }]
    ));
    assert!(host.log().is_empty());
}

#[test]
fn garbage_answer_is_bad_response_and_wrong_tid_too() {
    // A listener answering a well-framed message that does not decode.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = thread::spawn(move || {
        for answer in [b"\x00\x04zzzz".to_vec(), Vec::new()] {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 2];
            s.read_exact(&mut buf).unwrap();
            let mut body = vec![0u8; usize::from(u16::from_be_bytes(buf))];
            s.read_exact(&mut body).unwrap();
            let answer = if answer.is_empty() {
                let req = decode(&body, &Dialect::default_pos()).unwrap();
                let mut a = Message::new(req.mti.response().unwrap());
                a.set_stan(req.stan().unwrap())
                    .set_response_code("00")
                    .set_terminal_id("OTHER001");
                frame(&encode(&a, &Dialect::default_pos()).unwrap()).unwrap()
            } else {
                answer
            };
            s.write_all(&answer).unwrap();
        }
    });
    let mut client = TcpAcquirer::new(settings(addr));
    let out = client.authorize(&request(Operation::Sale, 90, 100), &mut no_events());
    assert!(matches!(out, Outcome::BadResponse(_)), "{out:?}");
    let out = client.authorize(&request(Operation::Sale, 91, 100), &mut no_events());
    assert!(
        matches!(&out, Outcome::BadResponse(AcquirerError::BadResponse { detail }) if detail.contains("41")),
        "{out:?}"
    );
    t.join().unwrap();
}
