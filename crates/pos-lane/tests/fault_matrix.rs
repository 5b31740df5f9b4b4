//! The fault matrix: every injectable fault at every step where it can happen, on the whole
//! simulated lane (virtual reader and card, printer, stripe reader; the real TCP client to
//! the fake host). Each case asserts the final state and the money invariant against the
//! host's ledger.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Rig, rig, rig_with};
use pos_terminal::inject::{InjectedFault, Step};
use pos_terminal::{CardEntry, State, TxnRequest};

/// The state a sale must end in with `fault` injected at `step` (reversals are drained at
/// once by the service, and the host accepts them here).
fn expected(step: Step, fault: &InjectedFault) -> State {
    use InjectedFault::*;
    use Step::*;
    match (fault, step) {
        (CardRemoved | ReaderUnplugged, CardRead | BeforeSend) => State::Aborted,
        // A mute card before anything was sent: the chip read fails and the stripe fallback
        // completes the sale; once the card has been read, a mute card aborts.
        (CardMute, CardRead) => State::Completed,
        (CardMute, BeforeSend) => State::Aborted,
        (CardRemoved | CardMute | ReaderUnplugged, _) => State::Reversed,
        (HostTimeout | HostDropAfterApprove, _) => State::Reversed,
        (HostDown, BeforeSend) => State::Aborted,
        (HostDown, _) => State::Reversed,
        (HostDecline(_), _) => State::Declined,
        // Nothing to reverse: the rejection budget is never touched.
        (ReversalRejected(_), _) => State::Completed,
        (PaperOut | CoverOpen | CutterJam | PrinterOffline, CardRead | Printing) => {
            State::ReceiptOwed
        }
        (PaperOut | CoverOpen | CutterJam | PrinterOffline, _) => State::Completed,
        (Crash, _) => unreachable!("crash is tested by posctl's crash harness"),
    }
}

#[test]
fn every_fault_at_every_step() {
    let mut cases = 0;
    let mut r = rig();
    for fault in InjectedFault::examples() {
        if fault == InjectedFault::Crash {
            continue;
        }
        for &step in fault.steps() {
            let inj = format!("{step}:{fault}");
            let res = r.sale(1250, &[&inj]);
            let want = expected(step, &fault);
            assert_eq!(res.state, want, "{inj}: {res:?}");
            assert!(
                res.reason.is_some() || want == State::Completed,
                "{inj}: no reason"
            );
            r.check_invariant(true);
            // Owed receipts are printed before the next sale, once the printer is fixed.
            cases += 1;
        }
    }
    assert!(cases >= 40, "{cases} cases");
    // The owed receipts were all printed by later sales (the last one by recovery).
    r.terminal.recover().unwrap();
    let owed = r
        .terminal
        .journal()
        .in_states(&[State::ReceiptOwed])
        .unwrap();
    assert!(owed.is_empty(), "{owed:?}");
    r.check_invariant(true);
}

fn reason(res: &pos_terminal::TxnResult) -> String {
    res.reason.clone().unwrap_or_default()
}

#[test]
fn a_mute_card_falls_back_to_the_stripe_and_the_fallback_is_recorded() {
    let mut r = rig();
    let res = r.sale(700, &["card-read:card-mute"]);
    assert_eq!(res.state, State::Completed);
    assert_eq!(res.entry_mode.as_deref(), Some("fallback_swipe"));
    let events = r.terminal.journal().events(Some(res.id)).unwrap();
    assert!(events.iter().any(|e| e.kind == "fallback"), "{events:?}");
    // The host saw the fallback entry mode (801).
    let log = r.host.log();
    assert!(log.iter().any(|l| l.summary.contains("801")), "{log:?}");
}

#[test]
fn a_swiped_chip_card_is_sent_to_the_chip_reader() {
    let mut r = rig();
    let req = TxnRequest {
        entry: CardEntry::Swipe,
        ..TxnRequest::sale(990)
    };
    let res = r.run(&req, &[]);
    assert_eq!(res.state, State::Completed);
    assert_eq!(res.entry_mode.as_deref(), Some("chip"));
    let events = r.terminal.journal().events(Some(res.id)).unwrap();
    assert!(
        events.iter().any(|e| e.detail.contains("insert chip")),
        "{events:?}"
    );
}

#[test]
fn a_stripe_only_card_is_sold_by_swipe() {
    let mut r = rig();
    r.sim.swipe_stripe_only("4111111111111111").unwrap();
    let req = TxnRequest {
        entry: CardEntry::Swipe,
        ..TxnRequest::sale(450)
    };
    let mut hook = pos_terminal::NoHook;
    let res = r.terminal.run(&req, &mut hook).unwrap();
    assert_eq!(res.state, State::Completed, "{res:?}");
    assert_eq!(res.entry_mode.as_deref(), Some("swipe"));
    assert_eq!(res.pan_masked.as_deref(), Some("411111******1111"));
    r.check_invariant(true);
}

#[test]
fn the_health_gate_refuses_a_sale_on_a_broken_printer_unless_no_receipt_is_chosen() {
    let mut r = rig();
    r.sim
        .printer_fault(&InjectedFault::CoverOpen, false)
        .unwrap();
    let mut hook = pos_terminal::NoHook;
    let res = r.terminal.run(&TxnRequest::sale(100), &mut hook).unwrap();
    assert_eq!(res.state, State::Aborted);
    assert!(reason(&res).contains("cover open"), "{res:?}");
    assert!(
        r.host.ledger().entries.is_empty(),
        "nothing may reach the host"
    );
    let req = TxnRequest {
        no_receipt: true,
        ..TxnRequest::sale(100)
    };
    let res = r.terminal.run(&req, &mut hook).unwrap();
    assert_eq!(res.state, State::Completed);
    let t = r.terminal.journal().get(res.id).unwrap();
    assert!(t.no_receipt);
    let events = r.terminal.journal().events(Some(res.id)).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.detail.contains("no receipt: cashier override"))
    );
    r.check_invariant(true);
}

#[test]
fn a_host_decline_and_a_card_decline_after_approval() {
    let mut r = rig();
    // The default host rules decline .51 with 51.
    let res = r.sale(1051, &[]);
    assert_eq!(res.state, State::Declined);
    assert!(reason(&res).contains("51 insufficient funds"), "{res:?}");
    assert_eq!(
        r.terminal.journal().sealed(res.id).unwrap(),
        None,
        "declined: card data wiped"
    );
    // An expired card is declined locally, never sent.
    let mut r = rig_with(|_| {});
    r.sim
        .insert_card(pos_emv::profile_card::Profile::Expired)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut hook = pos_terminal::NoHook;
    let res = r.terminal.run(&TxnRequest::sale(100), &mut hook).unwrap();
    assert!(matches!(res.state, State::Declined), "{res:?}");
    assert!(r.host.ledger().entries.is_empty());
}

#[test]
fn rejected_reversals_stay_pending_then_stuck_and_block_sales() {
    let mut r = rig_with(|c| {
        c.reversal.max_rejections = 2;
        c.reversal.backoff_initial_ms = 1;
        c.reversal.backoff_max_ms = 1;
    });
    let res = r.sale(
        1250,
        &[
            "after-approve:card-removed",
            "before-send:reversal-rejected:1",
        ],
    );
    assert_eq!(res.state, State::ReversalPending, "{res:?}");
    r.check_invariant(false);
    let d = r.terminal.drain_reversals(true).unwrap();
    assert_eq!(d.reversed, vec![res.id]);
    r.check_invariant(true);

    let res = r.sale(
        1250,
        &["second-gac:card-removed", "before-send:reversal-rejected:5"],
    );
    assert_eq!(res.state, State::ReversalPending);
    r.host.arm(pos_acquirer::sim::HostFault::RejectReversals(5));
    let d = r.terminal.drain_reversals(true).unwrap();
    assert_eq!(d.stuck, vec![res.id]);
    let t = r.terminal.journal().get(res.id).unwrap();
    assert_eq!((t.state, t.reversal_rejections), (State::ReversalStuck, 2));
    // The host still holds the approval: the journal says stuck, never "failed".
    r.check_invariant(false);
    r.host.clear_faults();
    let blocked = r.sale(100, &[]);
    assert_eq!(blocked.state, State::Aborted);
    assert!(reason(&blocked).contains("stuck"));
    let evidence =
        pos_terminal::report::evidence(r.terminal.journal(), r.terminal.config(), res.id).unwrap();
    assert_eq!(evidence["reversal"]["outcome"], "stuck");
    assert_eq!(evidence["reversal"]["rejections"], 2);
    let text = evidence.to_string();
    assert!(!text.contains(common::VISA_PAN));
}

#[test]
fn receipt_required_policy_reverses_instead_of_owing() {
    let mut r = rig_with(|c| c.receipt.policy = pos_terminal::config::ReceiptMode::Required);
    let res = r.sale(1250, &["printing:paper-out"]);
    assert_eq!(res.state, State::Reversed, "{res:?}");
    r.check_invariant(true);
}

#[test]
fn preauth_completion_void_and_refund() {
    let mut r = rig();
    let pre = r.run(
        &TxnRequest {
            operation: pos_acquirer::Operation::PreAuth,
            ..TxnRequest::sale(10_000)
        },
        &[],
    );
    assert_eq!(pre.state, State::Completed);
    let over = TxnRequest {
        operation: pos_acquirer::Operation::Completion,
        original: Some(pre.id),
        ..TxnRequest::sale(10_001)
    };
    let mut hook = pos_terminal::NoHook;
    assert!(r.terminal.run(&over, &mut hook).is_err());
    let done = r.run(
        &TxnRequest {
            operation: pos_acquirer::Operation::Completion,
            original: Some(pre.id),
            ..TxnRequest::sale(8_720)
        },
        &[],
    );
    assert_eq!(done.state, State::Completed, "{done:?}");
    assert_eq!(done.pan_masked, pre.pan_masked);
    assert_eq!(
        r.terminal.journal().get(pre.id).unwrap().completed_by,
        Some(done.id)
    );
    let sale = r.sale(2_500, &[]);
    let void = r.run(
        &TxnRequest {
            operation: pos_acquirer::Operation::Void,
            original: Some(sale.id),
            ..TxnRequest::sale(0)
        },
        &[],
    );
    assert_eq!(void.state, State::Completed, "{void:?}");
    assert_eq!(void.amount, 2_500);
    assert!(r.terminal.journal().get(sale.id).unwrap().voided);
    // A void whose answer is lost is reversed on its own (it carries the original's card
    // data, sealed at Armed), and the sale it tried to void stands again.
    let sale2 = r.sale(1_500, &[]);
    let lost = r.run(
        &TxnRequest {
            operation: pos_acquirer::Operation::Void,
            original: Some(sale2.id),
            ..TxnRequest::sale(0)
        },
        &["after-send:host-drop-after-approve"],
    );
    assert_eq!(lost.state, State::Reversed, "{lost:?}");
    assert_eq!(lost.pan_masked, sale2.pan_masked);
    assert!(!r.terminal.journal().get(sale2.id).unwrap().voided);
    let reversal = r
        .host
        .log()
        .into_iter()
        .rev()
        .find(|l| l.mti == "0400")
        .unwrap();
    assert!(
        reversal.summary.contains("476173******0010"),
        "{}",
        reversal.summary
    );
    let refund = r.run(
        &TxnRequest {
            operation: pos_acquirer::Operation::Refund,
            ..TxnRequest::sale(1_000)
        },
        &[],
    );
    assert_eq!(refund.state, State::Completed, "{refund:?}");
    let rep = pos_terminal::report::report(r.terminal.journal(), 0).unwrap();
    assert_eq!(rep.sales.amount, 8_720 + 1_500);
    assert_eq!(rep.refunds.amount, 1_000);
    assert_eq!(rep.voids.count, 1);
    assert_eq!(rep.net, 9_220);
    assert_eq!(r.host.ledger().net_charged(), 9_220);
    r.check_invariant(true);
}

#[test]
fn journal_and_logs_hold_no_full_pan_or_track_data() {
    let mut r: Rig = rig();
    r.sale(1250, &[]);
    r.sale(1250, &["after-approve:card-removed"]);
    r.sale(1250, &["card-read:card-mute"]); // fallback: track 2 went to the host
    let req = TxnRequest {
        entry: CardEntry::Swipe,
        ..TxnRequest::sale(300)
    };
    r.run(&req, &[]);
    let track2_tail = format!("{}={}", common::VISA_PAN, pos_lane::SWIPE_EXPIRY);
    for entry in std::fs::read_dir(r.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for needle in [common::VISA_PAN.as_bytes(), track2_tail.as_bytes()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds card data",
                path.display()
            );
        }
    }
    for t in r.terminal.journal().all().unwrap() {
        let json = pos_terminal::report::evidence(r.terminal.journal(), r.terminal.config(), t.id)
            .unwrap()
            .to_string();
        assert!(!json.contains(common::VISA_PAN), "evidence {}", t.id);
    }
}
