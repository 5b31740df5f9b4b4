//! The cash drawer in the lane: opened with the printer from `[devices] drawer =
//! "printer"`, the pin from `drawer_pin`, re-opened with the printer; cash sales with
//! `[drawer] require_closed_before_sale`, against the virtual printer's drawer switch.
#![allow(clippy::unwrap_used)]

mod common;

use common::rig_with;
use pos_hal::{DrawerPin, DrawerState, Fault, FaultKind};
use pos_terminal::TerminalError;
use pos_terminal::config::DeviceConfig;

fn with_drawer(pin: u8) -> DeviceConfig {
    DeviceConfig {
        drawer: "printer".into(),
        drawer_pin: pin,
        ..DeviceConfig::default()
    }
}

#[test]
fn the_lane_opens_the_drawer_with_the_printer_and_absent_means_none() {
    let lane = pos_lane::open(&DeviceConfig::default(), None).unwrap();
    assert!(lane.devices.drawer.is_none(), "no drawer unless configured");

    let mut lane = pos_lane::open(&with_drawer(5), None).unwrap();
    let sim = lane.sim.clone().unwrap();
    let drawer = lane.devices.drawer.as_mut().expect("drawer = printer");
    assert_eq!(drawer.pulse().pin, DrawerPin::Pin5);
    assert_eq!(drawer.drawer_state().unwrap(), DrawerState::Closed);
    // The virtual printer's drawer is on pin 2: the pin-5 pulse goes out and it stays shut.
    assert_eq!(drawer.open_drawer().unwrap(), DrawerState::Closed);
    let (open, kicks) = sim.drawer().unwrap();
    assert!(!open);
    assert_eq!(kicks.len(), 1);
    assert_eq!(kicks[0].pin(), Some(DrawerPin::Pin5));
    sim.set_drawer_open(true).unwrap();
    assert_eq!(drawer.drawer_state().unwrap(), DrawerState::Open);
}

#[test]
fn bad_drawer_settings_are_refused_at_open() {
    for (config, words) in [
        (with_drawer(3), "2 or 5"),
        (
            DeviceConfig {
                drawer: "usb:1234:5678".into(),
                ..DeviceConfig::default()
            },
            "\"printer\"",
        ),
        (
            DeviceConfig {
                printer: "none".into(),
                ..with_drawer(2)
            },
            "no printer",
        ),
    ] {
        let e = pos_lane::open(&config, None).unwrap_err();
        assert_eq!(e.kind(), FaultKind::InvalidInput, "{e}");
        assert!(e.to_string().contains(words), "{e}");
    }
}

#[test]
fn the_reopener_gives_a_new_drawer_with_the_printer() {
    let lane = pos_lane::open(&with_drawer(2), None).unwrap();
    let mut reopener = lane.reopener();
    let (_printer, drawer) = reopener.printer_and_drawer().unwrap();
    let mut drawer = drawer.expect("the lane has a drawer");
    assert_eq!(drawer.open_drawer().unwrap(), DrawerState::Open);
    assert!(lane.sim.unwrap().drawer().unwrap().0);
}

#[test]
fn a_cash_sale_opens_the_drawer_and_is_journaled() {
    let mut rig = rig_with(|c| c.devices = with_drawer(2));
    let sale = rig.terminal.cash_sale(1250).unwrap();
    assert_eq!(sale.drawer, Some(DrawerState::Open));
    assert_eq!(sale.drawer_problem, None);
    let events = rig.terminal.journal().events(None).unwrap();
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.kind.as_str(), e.detail.as_str()))
        .collect();
    assert!(kinds.contains(&("cash", "cash sale of 12.50")), "{kinds:?}");
    assert!(
        kinds
            .iter()
            .any(|(k, d)| *k == "drawer" && d.contains("it reads open")),
        "{kinds:?}"
    );
    // Without the rule, the next cash sale does not care that the drawer is open.
    assert!(rig.sim.drawer().unwrap().0);
    assert!(rig.terminal.cash_sale(100).is_ok());
}

#[test]
fn required_closed_drawer_refuses_the_next_cash_sale_while_open_and_says_so() {
    let mut rig = rig_with(|c| {
        c.devices = with_drawer(2);
        c.drawer.require_closed_before_sale = true;
    });
    assert_eq!(
        rig.terminal.cash_sale(500).unwrap().drawer,
        Some(DrawerState::Open)
    );
    let e = rig.terminal.cash_sale(700).unwrap_err();
    match &e {
        TerminalError::DrawerNotClosed { state, kind, .. } => {
            assert_eq!(*state, DrawerState::Open);
            assert_eq!(*kind, FaultKind::Busy);
        }
        other => panic!("expected DrawerNotClosed, got {other:?}"),
    }
    assert!(e.to_string().contains("the cash drawer is open"), "{e}");
    let (_, kicks) = rig.sim.drawer().unwrap();
    assert_eq!(kicks.len(), 1, "the refused sale did not pulse the drawer");
    let events = rig.terminal.journal().events(None).unwrap();
    assert!(
        events.iter().any(|ev| ev.kind == "drawer"
            && ev.detail.contains("cash sale of 7.00 refused")
            && ev.detail.contains("open")),
        "the refusal is journaled: {events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|ev| ev.kind == "cash" && ev.detail == "cash sale of 7.00"),
        "nothing recorded as sold"
    );
    // The cashier shuts the drawer: the next one goes through.
    rig.sim.set_drawer_open(false).unwrap();
    assert_eq!(
        rig.terminal.cash_sale(700).unwrap().drawer,
        Some(DrawerState::Open)
    );
}

#[test]
fn a_drawer_that_cannot_be_read_refuses_too_naming_why() {
    let mut rig = rig_with(|c| {
        c.devices = with_drawer(2);
        c.devices.printer = "sim:printer?fault=silent".into();
        c.drawer.require_closed_before_sale = true;
    });
    let e = rig.terminal.cash_sale(500).unwrap_err();
    assert_eq!(e.kind(), FaultKind::PrinterOffline, "{e}");
    assert!(e.to_string().contains("the cash drawer is unknown"), "{e}");

    let mut rig = rig_with(|c| c.drawer.require_closed_before_sale = true);
    let e = rig.terminal.cash_sale(500).unwrap_err();
    assert_eq!(e.kind(), FaultKind::NotFound, "{e}");
    assert!(e.to_string().contains("no cash drawer"), "{e}");
}
