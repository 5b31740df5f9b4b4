//! A recorded card session as the lane's card: `reader = "sim:ccid?script=FILE"` runs
//! whole sales (chip, with injected faults, and the stripe fallback with the PAN the
//! recording carries), at every exchange level, and the lane's reset inserts a fresh copy.
#![allow(clippy::unwrap_used)]

mod common;

use common::rig_with;
use pos_hal::{CardSpec, Fault, FaultKind};
use pos_terminal::{CardEntry, State, TxnRequest};

fn upi() -> String {
    format!(
        "{}/../pos-emv/tests/data/contact-upi.apdu",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn sales_run_on_a_recorded_card_at_every_level() {
    for level in ["apdu", "t0", "t1"] {
        let mut r =
            rig_with(|c| c.devices.reader = format!("sim:ccid?script={}&level={level}", upi()));
        assert_eq!(r.sim.card(), CardSpec::Script(upi().into()));
        for amount in [100, 250] {
            let res = r.sale(amount, &[]);
            assert_eq!(res.state, State::Completed, "{level}: {res:?}");
            assert_eq!(
                res.pan_masked.as_deref(),
                Some("621094******0011"),
                "{level}"
            );
            assert_eq!(res.entry_mode.as_deref(), Some("chip"), "{level}");
        }
        // The card pulled after the host approved: reversed, as with a profile card.
        let res = r.sale(300, &["after-approve:card-removed"]);
        assert_eq!(res.state, State::Reversed, "{level}: {res:?}");
        r.check_invariant(true);
    }
}

#[test]
fn the_stripe_of_a_recorded_card_carries_its_pan() {
    let mut r = rig_with(|c| c.devices.reader = format!("sim:ccid?script={}", upi()));
    // A chip that cannot be read: the fallback swipe is the recorded card's stripe.
    let res = r.sale(120, &["card-read:card-mute"]);
    assert_eq!(res.state, State::Completed, "{res:?}");
    assert_eq!(res.entry_mode.as_deref(), Some("fallback_swipe"));
    assert_eq!(res.pan_masked.as_deref(), Some("621094******0011"));
    // A swipe of the chip card is sent to the chip.
    let res = r.run(
        &TxnRequest {
            entry: CardEntry::Swipe,
            ..TxnRequest::sale(130)
        },
        &[],
    );
    assert_eq!(res.state, State::Completed, "{res:?}");
    assert_eq!(res.entry_mode.as_deref(), Some("chip"));
    r.check_invariant(true);
}

#[test]
fn a_card_the_lane_cannot_make_or_swipe_is_a_clear_error() {
    let r = rig_with(|_| {});
    // A bare test card has no stripe.
    let e = r.sim.swipe(CardSpec::Named("t0".into())).unwrap_err();
    assert_eq!(e.kind(), FaultKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("no stripe"), "{e}");
    // A script that is not there.
    let e = r
        .sim
        .insert_card(CardSpec::Script("no/such/card.apdu".into()))
        .unwrap_err();
    assert_eq!(e.kind(), FaultKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("no/such/card.apdu"), "{e}");
    // ...and the lane keeps its card.
    assert_eq!(r.sim.card(), CardSpec::Named("visa".into()));
    // A reader URI naming an unknown card does not open, listing the accepted ones.
    let e = pos_lane::open(
        &pos_terminal::config::DeviceConfig {
            reader: "sim:ccid?card=amex".into(),
            printer: "none".into(),
            msr: "none".into(),
            ..pos_terminal::config::DeviceConfig::default()
        },
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("visa|mastercard"), "{e}");
    assert!(e.to_string().contains("script=FILE"), "{e}");
}
