//! Start-up recovery and the reversal store-and-forward worker, against a scripted host.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use pos_acquirer::{
    Acquirer, AcquirerError, Approval, Decline, Operation, Outcome, Request, Reversal, WireEvent,
};
use pos_hal::Sensitive;
use pos_terminal::journal::Changes;
use pos_terminal::time::Clock;
use pos_terminal::vault::{CardSecrets, Vault};
use pos_terminal::{Config, Devices, Journal, NoHook, State, Terminal, TxnRequest};

const PAN: &str = "4761739001010010";

#[derive(Default)]
struct Script {
    reversals: VecDeque<Outcome>,
    seen: Vec<Reversal>,
}

/// A host that answers reversals from a script (approve when the script is empty) and
/// refuses everything else as unreachable.
#[derive(Clone, Default)]
struct ScriptedHost(Rc<RefCell<Script>>);

fn approved() -> Outcome {
    Outcome::Approved(Approval {
        response_code: "00".into(),
        auth_code: String::new(),
        rrn: "000000000001".into(),
        issuer_data: vec![],
        elapsed: Duration::from_millis(3),
    })
}

fn rejected() -> Outcome {
    Outcome::Declined(Decline {
        response_code: "96".into(),
        reason: "system malfunction",
        rrn: None,
        issuer_data: vec![],
        elapsed: Duration::from_millis(3),
    })
}

fn unanswered() -> Outcome {
    Outcome::Unknown(AcquirerError::ResponseTimeout {
        timeout: Duration::from_secs(1),
    })
}

impl ScriptedHost {
    fn push(&self, o: Outcome) {
        self.0.borrow_mut().reversals.push_back(o);
    }
    fn seen(&self) -> Vec<Reversal> {
        self.0.borrow().seen.clone()
    }
    fn refuse(&self, observe: &mut dyn FnMut(&WireEvent)) -> Outcome {
        let e = AcquirerError::Refused {
            address: "127.0.0.1:9".into(),
        };
        observe(&WireEvent::Failed {
            error: e.clone(),
            after_send: false,
        });
        Outcome::NotSent(e)
    }
}

impl Acquirer for ScriptedHost {
    fn authorize(&mut self, _: &Request, o: &mut dyn FnMut(&WireEvent)) -> Outcome {
        self.refuse(o)
    }
    fn pre_authorize(&mut self, _: &Request, o: &mut dyn FnMut(&WireEvent)) -> Outcome {
        self.refuse(o)
    }
    fn complete(&mut self, _: &Request, o: &mut dyn FnMut(&WireEvent)) -> Outcome {
        self.refuse(o)
    }
    fn void(&mut self, _: &Request, o: &mut dyn FnMut(&WireEvent)) -> Outcome {
        self.refuse(o)
    }
    fn refund(&mut self, _: &Request, o: &mut dyn FnMut(&WireEvent)) -> Outcome {
        self.refuse(o)
    }
    fn reverse(&mut self, r: &Reversal, observe: &mut dyn FnMut(&WireEvent)) -> Outcome {
        observe(&WireEvent::Sent {
            mti: if r.repeat {
                "0401".parse().unwrap()
            } else {
                "0400".parse().unwrap()
            },
            stan: r.stan,
            summary: "reversal".into(),
        });
        let mut s = self.0.borrow_mut();
        s.seen.push(r.clone());
        s.reversals.pop_front().unwrap_or_else(approved)
    }
    fn echo(&mut self) -> Result<Duration, AcquirerError> {
        Ok(Duration::from_millis(1))
    }
}

struct Lane {
    dir: tempfile::TempDir,
    host: ScriptedHost,
    clock: Clock,
    terminal: Terminal,
}

const KEY: [u8; 64] = [42; 64];

fn lane() -> Lane {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        journal: Some(dir.path().join("journal.sqlite")),
        reversal: pos_terminal::config::ReversalPolicy {
            max_rejections: 3,
            backoff_initial_ms: 1000,
            backoff_max_ms: 8000,
            block_sales_when_stuck: true,
        },
        ..Config::default()
    };
    let journal = Journal::open(&config.journal_path()).unwrap();
    let host = ScriptedHost::default();
    let mut terminal = Terminal::with_parts(
        config,
        journal,
        Vault::from_key(KEY),
        Devices::default(),
        Box::new(host.clone()),
    );
    let clock = Clock::manual(1_795_428_930_000);
    terminal.set_clock(clock.clone());
    Lane {
        dir,
        host,
        clock,
        terminal,
    }
}

/// Put a transaction in `state` through legal transitions, with sealed card data.
fn seed(lane: &Lane, state: State) -> i64 {
    let mut j = Journal::open(&lane.dir.path().join("journal.sqlite")).unwrap();
    let v = Vault::from_key(KEY);
    let id = j.create(Operation::Sale, 1250, 978, None, "seed").unwrap();
    let path: &[State] = match state {
        State::Created => &[],
        State::CardRead => &[State::CardRead],
        State::Armed => &[State::CardRead, State::Armed],
        State::Sent => &[State::CardRead, State::Armed, State::Sent],
        State::HostApproved => &[
            State::CardRead,
            State::Armed,
            State::Sent,
            State::HostApproved,
        ],
        State::Committed => &[
            State::CardRead,
            State::Armed,
            State::Sent,
            State::HostApproved,
            State::Committed,
        ],
        State::Printing => &[
            State::CardRead,
            State::Armed,
            State::Sent,
            State::HostApproved,
            State::Committed,
            State::Printing,
        ],
        s => panic!("cannot seed {s}"),
    };
    for &s in path {
        match s {
            State::CardRead => {
                let sealed = v
                    .seal(
                        &CardSecrets {
                            pan: Sensitive::new(PAN.as_bytes().to_vec()),
                            expiry: Some("2812".into()),
                            pan_sequence: Some(1),
                        },
                        &id.to_be_bytes(),
                    )
                    .unwrap();
                j.transition(
                    id,
                    s,
                    "seed",
                    Changes {
                        pan_masked: Some(pos_hal::mask_pan(PAN)),
                        sealed: Some(sealed),
                        ..Changes::default()
                    },
                )
                .unwrap();
            }
            State::Armed => {
                j.arm(id, "0200", "1123101530", "seed", Changes::default())
                    .unwrap();
            }
            State::HostApproved => j
                .transition(
                    id,
                    s,
                    "seed",
                    Changes {
                        auth_code: Some("A00001".into()),
                        rrn: Some("000000000077".into()),
                        ..Changes::default()
                    },
                )
                .unwrap(),
            s => j.transition(id, s, "seed", Changes::default()).unwrap(),
        }
    }
    id
}

#[test]
fn recovery_moves_every_in_flight_state_and_reverses_what_may_have_been_charged() {
    let mut lane = lane();
    let states = [
        State::Created,
        State::CardRead,
        State::Armed,
        State::Sent,
        State::HostApproved,
        State::Committed,
        State::Printing,
    ];
    let ids: Vec<i64> = states.iter().map(|&s| seed(&lane, s)).collect();
    let report = lane.terminal.recover().unwrap();
    assert_eq!(report.moved.len(), states.len());
    let after: Vec<State> = ids
        .iter()
        .map(|&id| lane.terminal.journal().get(id).unwrap().state)
        .collect();
    assert_eq!(
        after,
        vec![
            State::Aborted,
            State::Aborted,
            State::Reversed,
            State::Reversed,
            State::Reversed,
            State::ReceiptOwed, // no printer in this lane: owed stays owed
            State::ReceiptOwed,
        ]
    );
    let approved = lane.terminal.journal().get(ids[4]).unwrap();
    assert_eq!(approved.reversal_reason.as_deref(), Some("not_completed"));
    assert_eq!(
        approved.reason.as_deref(),
        Some("approved but not completed")
    );
    // Three reversals went out, first attempts, with the sealed card data and the original's
    // identifiers; sealed data is wiped once reversed.
    let seen = lane.host.seen();
    assert_eq!(seen.len(), 3);
    for r in &seen {
        assert!(!r.repeat);
        assert_eq!(r.card.as_ref().unwrap().pan.expose(), PAN.as_bytes());
        assert_eq!(r.original.transmission_time, "1123101530");
        assert_eq!(r.amount, 1250);
    }
    assert_eq!(seen[2].original.auth_code.as_deref(), Some("A00001"));
    assert_eq!(lane.terminal.journal().sealed(ids[2]).unwrap(), None);
    // Recovering again does nothing.
    let again = lane.terminal.recover().unwrap();
    assert!(again.moved.is_empty() && again.drain.reversed.is_empty());
}

#[test]
fn rejections_use_up_the_budget_and_end_stuck_with_an_alarm_but_silence_does_not() {
    let mut lane = lane();
    let id = seed(&lane, State::Sent);
    for _ in 0..5 {
        lane.host.push(unanswered());
    }
    lane.terminal.recover().unwrap();
    for _ in 0..4 {
        let r = lane.terminal.drain_reversals(true).unwrap();
        assert_eq!(r.unanswered, vec![id]);
    }
    let t = lane.terminal.journal().get(id).unwrap();
    assert_eq!(t.state, State::ReversalPending);
    assert_eq!((t.reversal_attempts, t.reversal_rejections), (5, 0));
    // Repeats are sent as 0401.
    assert!(!lane.host.seen()[0].repeat && lane.host.seen()[1].repeat);

    for _ in 0..3 {
        lane.host.push(rejected());
    }
    let r1 = lane.terminal.drain_reversals(true).unwrap();
    let r2 = lane.terminal.drain_reversals(true).unwrap();
    assert_eq!((r1.rejected.len(), r2.rejected.len()), (1, 1));
    assert!(r2.stuck.is_empty());
    let r3 = lane.terminal.drain_reversals(true).unwrap();
    assert_eq!(r3.stuck, vec![id]);
    let t = lane.terminal.journal().get(id).unwrap();
    assert_eq!(t.state, State::ReversalStuck);
    assert_eq!(t.reversal_rejections, 3);
    let alarms: Vec<_> = lane
        .terminal
        .journal()
        .events(Some(id))
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "alarm")
        .collect();
    assert_eq!(alarms.len(), 1);
    assert!(alarms[0].detail.contains("call the acquirer"));
    // Stuck reversals are not retried by the worker and never deleted.
    assert!(
        lane.terminal
            .drain_reversals(true)
            .unwrap()
            .reversed
            .is_empty()
    );
    let report = pos_terminal::report::report(lane.terminal.journal(), 0).unwrap();
    assert_eq!(report.reversal_stuck.len(), 1);
    // New sales are blocked by the policy, visibly.
    let r = lane
        .terminal
        .run(&TxnRequest::sale(100), &mut NoHook)
        .unwrap();
    assert_eq!(r.state, State::Aborted);
    assert!(r.reason.unwrap().contains("stuck"));
}

#[test]
fn backoff_waits_between_attempts_unless_forced() {
    let mut lane = lane();
    let id = seed(&lane, State::Armed);
    lane.host.push(unanswered());
    lane.host.push(unanswered());
    lane.terminal.recover().unwrap(); // attempt 1 (unanswered): next due in 1 s
    let r = lane.terminal.drain_reversals(false).unwrap();
    assert_eq!(r.waiting, vec![id]);
    lane.clock.advance(1000);
    let r = lane.terminal.drain_reversals(false).unwrap();
    assert_eq!(r.unanswered, vec![id]); // attempt 2: next due in 2 s
    lane.clock.advance(1999);
    assert_eq!(
        lane.terminal.drain_reversals(false).unwrap().waiting,
        vec![id]
    );
    lane.clock.advance(1);
    assert_eq!(
        lane.terminal.drain_reversals(false).unwrap().reversed,
        vec![id]
    );
    assert_eq!(
        lane.terminal.journal().get(id).unwrap().state,
        State::Reversed
    );
}

#[test]
fn an_unsendable_pending_reversal_keeps_new_requests_from_leaving() {
    let mut lane = lane();
    let id = seed(&lane, State::Sent);
    lane.host.push(unanswered());
    lane.host.push(unanswered());
    lane.terminal.recover().unwrap();
    let r = lane
        .terminal
        .run(&TxnRequest::sale(100), &mut NoHook)
        .unwrap();
    assert_eq!(r.state, State::Aborted);
    assert!(r.reason.as_deref().unwrap().contains("reversal"), "{r:?}");
    // The reversal was tried before the new request (and is still pending).
    assert_eq!(lane.host.seen().len(), 2);
    assert_eq!(
        lane.terminal.journal().get(id).unwrap().state,
        State::ReversalPending
    );
}

#[test]
fn invalid_requests_are_refused_before_anything_is_written() {
    let mut lane = lane();
    let before = lane.terminal.journal().all().unwrap().len();
    let big = lane
        .terminal
        .run(&TxnRequest::sale(10_000_000), &mut NoHook);
    assert!(big.unwrap_err().to_string().contains("limits"));
    let void = TxnRequest {
        operation: Operation::Void,
        original: Some(999),
        ..TxnRequest::sale(100)
    };
    assert!(lane.terminal.run(&void, &mut NoHook).is_err());
    let no_original = TxnRequest {
        operation: Operation::Completion,
        ..TxnRequest::sale(100)
    };
    assert!(lane.terminal.run(&no_original, &mut NoHook).is_err());
    assert_eq!(lane.terminal.journal().all().unwrap().len(), before);
}

#[test]
fn the_journal_file_holds_no_full_pan() {
    let mut lane = lane();
    for s in [State::Armed, State::Committed, State::HostApproved] {
        seed(&lane, s);
    }
    lane.terminal.recover().unwrap();
    for entry in std::fs::read_dir(lane.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(PAN.len()).any(|w| w == PAN.as_bytes()));
    }
}

/// A reversal made stuck by three rejections.
fn stuck_lane() -> (Lane, i64) {
    let mut lane = lane();
    let id = seed(&lane, State::Sent);
    for _ in 0..3 {
        lane.host.push(rejected());
    }
    lane.terminal.recover().unwrap();
    lane.terminal.drain_reversals(true).unwrap();
    lane.terminal.drain_reversals(true).unwrap();
    assert_eq!(
        lane.terminal.journal().get(id).unwrap().state,
        State::ReversalStuck
    );
    (lane, id)
}

fn operator_events(lane: &Lane, id: i64) -> Vec<String> {
    lane.terminal
        .journal()
        .events(Some(id))
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "operator")
        .map(|e| e.detail)
        .collect()
}

#[test]
fn an_operator_requeues_a_stuck_reversal_and_it_is_sent_again_with_a_fresh_budget() {
    let (mut lane, id) = stuck_lane();
    lane.terminal
        .requeue_stuck_reversal(id, "acquirer fixed the terminal's key, ticket 4711")
        .unwrap();
    let t = lane.terminal.journal().get(id).unwrap();
    assert_eq!(t.state, State::ReversalPending);
    assert_eq!(t.reversal_rejections, 0);
    assert!(t.reason.as_deref().unwrap().contains("ticket 4711"));
    assert_eq!(operator_events(&lane, id).len(), 1);
    // Due now: the next drain (not forced) sends it, and the host takes it.
    let sent_before = lane.host.seen().len();
    let r = lane.terminal.drain_reversals(false).unwrap();
    assert_eq!(r.reversed, vec![id], "{r:?}");
    assert_eq!(lane.host.seen().len(), sent_before + 1);
    assert_eq!(
        lane.terminal.journal().get(id).unwrap().state,
        State::Reversed
    );
    // Once reversed it cannot be requeued or resolved again.
    let e = lane
        .terminal
        .requeue_stuck_reversal(id, "again")
        .unwrap_err();
    assert!(e.to_string().contains("not reversal_stuck"), "{e}");
}

#[test]
fn a_requeued_reversal_rejected_again_gets_the_whole_budget_before_it_is_stuck_again() {
    let (mut lane, id) = stuck_lane();
    lane.terminal
        .requeue_stuck_reversal(id, "try again")
        .unwrap();
    for _ in 0..3 {
        lane.host.push(rejected());
    }
    let r1 = lane.terminal.drain_reversals(true).unwrap();
    let r2 = lane.terminal.drain_reversals(true).unwrap();
    assert!(r1.stuck.is_empty() && r2.stuck.is_empty());
    let r3 = lane.terminal.drain_reversals(true).unwrap();
    assert_eq!(r3.stuck, vec![id]);
}

#[test]
fn an_operator_records_a_reversal_the_acquirer_made_and_nothing_is_sent() {
    let (mut lane, id) = stuck_lane();
    let sent_before = lane.host.seen().len();
    lane.terminal
        .resolve_stuck_reversal(id, "ACQ-2026-12-07-0042")
        .unwrap();
    let t = lane.terminal.journal().get(id).unwrap();
    assert_eq!(t.state, State::Reversed);
    assert!(t.reason.as_deref().unwrap().contains("ACQ-2026-12-07-0042"));
    assert_eq!(lane.host.seen().len(), sent_before);
    let events = operator_events(&lane, id);
    assert_eq!(events.len(), 1);
    assert!(events[0].contains("outside the terminal"));
    assert!(
        lane.terminal
            .drain_reversals(true)
            .unwrap()
            .reversed
            .is_empty()
    );
}

#[test]
fn stuck_reversal_actions_refuse_bad_input_and_change_nothing() {
    let (mut lane, id) = stuck_lane();
    let cases: Vec<(Result<(), pos_terminal::TerminalError>, &str)> = vec![
        (
            lane.terminal.requeue_stuck_reversal(9999, "x"),
            "no transaction 9999",
        ),
        (lane.terminal.requeue_stuck_reversal(id, "  "), "empty"),
        (
            lane.terminal.requeue_stuck_reversal(id, &"x".repeat(201)),
            "longer than 200",
        ),
        (lane.terminal.requeue_stuck_reversal(id, "a\nb"), "control"),
        (
            lane.terminal
                .requeue_stuck_reversal(id, "card 4761739001010010 declined"),
            "card numbers",
        ),
        (
            lane.terminal.resolve_stuck_reversal(id, &"R".repeat(65)),
            "longer than 64",
        ),
        (lane.terminal.resolve_stuck_reversal(id, ""), "empty"),
    ];
    for (r, want) in cases {
        let e = r.unwrap_err();
        assert_eq!(pos_hal::Fault::kind(&e), pos_hal::FaultKind::InvalidInput);
        assert!(e.to_string().contains(want), "{e} (wanted {want})");
    }
    let t = lane.terminal.journal().get(id).unwrap();
    assert_eq!((t.state, t.reversal_rejections), (State::ReversalStuck, 3));
    assert!(operator_events(&lane, id).is_empty());
    // A pending (not stuck) reversal is refused too.
    let other = seed(&lane, State::Sent);
    lane.host.push(unanswered());
    lane.terminal.recover().unwrap();
    assert_eq!(
        lane.terminal.journal().get(other).unwrap().state,
        State::ReversalPending
    );
    let e = lane
        .terminal
        .resolve_stuck_reversal(other, "REF1")
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("reversal_pending, not reversal_stuck"),
        "{e}"
    );
}
