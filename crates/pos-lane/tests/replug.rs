//! Supervision support: unplugging and re-plugging the simulated devices, re-opening them
//! with a [`Reopener`], the paper-near-end sensor, and printer recovery through the HAL.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use pos_hal::{
    ChipReader, CutKind, Document, Fault, FaultKind, MagstripeReader, PrintOutcome,
    PrinterConditions, ReceiptPrinter,
};
use pos_lane::{Lane, Reopener, Role, SimLane};
use pos_terminal::config::DeviceConfig;
use pos_terminal::devices::{Printer, Reader};
use pos_terminal::inject::InjectedFault;

fn sim_lane() -> (Lane, SimLane) {
    let lane = pos_lane::open(&DeviceConfig::default(), None).unwrap();
    let sim = lane.sim.clone().expect("a simulated lane");
    (lane, sim)
}

fn select_pse() -> Vec<u8> {
    let mut c = vec![0x00, 0xA4, 0x04, 0x00, 0x0E];
    c.extend_from_slice(b"1PAY.SYS.DDF01");
    c.push(0x00);
    c
}

fn sw(resp: &[u8]) -> [u8; 2] {
    assert!(resp.len() >= 2, "short response {resp:02X?}");
    [resp[resp.len() - 2], resp[resp.len() - 1]]
}

/// Power on and SELECT the PSE; the answer's status words.
fn select(reader: &mut Reader) -> [u8; 2] {
    reader.power_on(0).unwrap();
    sw(&reader.transmit(0, &select_pse()).unwrap())
}

fn doc(text: &str) -> Document {
    let mut d = Document::new();
    d.text(text);
    d.cut(CutKind::Full);
    d
}

/// The error of a re-open that must fail (the devices have no `Debug`).
fn fails<T>(r: Result<T, pos_lane::LaneError>) -> pos_lane::LaneError {
    match r {
        Ok(_) => panic!("the re-open must fail"),
        Err(e) => e,
    }
}

fn printer(lane: &mut Lane) -> &mut Printer {
    lane.devices.printer.as_mut().expect("a printer")
}

#[test]
fn an_unplugged_reader_reopens_only_after_replug() {
    let (mut lane, sim) = sim_lane();
    let mut reopener = lane.reopener();
    assert_eq!(select(lane.devices.reader.as_mut().unwrap()), [0x90, 0x00]);

    sim.unplug_reader().unwrap();
    assert!(sim.reader_unplugged());
    let held = lane.devices.reader.as_mut().unwrap();
    let err = held.slot_status(0).unwrap_err();
    assert_eq!(err.kind(), FaultKind::Disconnected, "{err}");
    let err = held.transmit(0, &select_pse()).unwrap_err();
    assert_eq!(err.kind(), FaultKind::Disconnected, "{err}");

    let err = fails(reopener.reader());
    assert_eq!(err.kind(), FaultKind::NotFound, "{err}");
    assert_eq!(err.device, Role::Reader);
    assert!(err.to_string().contains("reader not plugged in"), "{err}");

    sim.replug_reader().unwrap();
    assert!(!sim.reader_unplugged());
    // The held driver talked to the old reader: it stays dead.
    let err = held.slot_status(0).unwrap_err();
    assert_eq!(err.kind(), FaultKind::Disconnected, "{err}");

    let mut fresh = reopener.reader().unwrap();
    assert_eq!(select(&mut fresh), [0x90, 0x00]);
    // The new reader is under the lane's control.
    sim.remove_card().unwrap();
    let err = fresh.transmit(0, &select_pse()).unwrap_err();
    assert_eq!(err.kind(), FaultKind::CardRemoved, "{err}");
}

#[test]
fn reset_after_replug_hands_the_replugged_reader_to_the_lane() {
    let (mut lane, sim) = sim_lane();
    sim.unplug_reader().unwrap();
    sim.replug_reader().unwrap();
    sim.reset(&mut lane.devices).unwrap();
    assert_eq!(select(lane.devices.reader.as_mut().unwrap()), [0x90, 0x00]);
}

#[test]
fn an_unplugged_printer_is_disconnected_and_reopens_after_replug() {
    let (mut lane, sim) = sim_lane();
    let mut reopener = lane.reopener();
    assert!(printer(&mut lane).status().unwrap().is_ready());

    sim.unplug_printer().unwrap();
    assert!(sim.printer_unplugged());
    let err = printer(&mut lane).status().unwrap_err();
    assert_eq!(err.kind(), FaultKind::Disconnected, "{err}");
    let err = printer(&mut lane).print(&doc("LOST")).unwrap_err();
    assert_eq!(err.kind(), FaultKind::Disconnected, "{err}");

    let err = fails(reopener.printer());
    assert_eq!(err.kind(), FaultKind::NotFound, "{err}");
    assert_eq!(err.device, Role::Printer);
    assert!(err.to_string().contains("printer not plugged in"), "{err}");

    sim.replug_printer().unwrap();
    assert!(!sim.printer_unplugged());
    let err = printer(&mut lane).status().unwrap_err();
    assert_eq!(err.kind(), FaultKind::Disconnected, "{err}");

    let mut fresh = reopener.printer().unwrap();
    assert!(fresh.status().unwrap().is_ready());
    assert_eq!(
        fresh.print(&doc("AFTER REPLUG")).unwrap(),
        PrintOutcome::Confirmed
    );
    assert!(
        sim.receipts().iter().any(|r| r.contains("AFTER REPLUG")),
        "{:?}",
        sim.receipts()
    );
    assert!(sim.receipts().iter().all(|r| !r.contains("LOST")));

    // The fault controls act on the new printer.
    sim.printer_fault(&InjectedFault::CoverOpen, false).unwrap();
    assert_eq!(
        fresh.status().unwrap().blocking_fault(),
        Some(FaultKind::CoverOpen)
    );
    sim.clear_printer_faults().unwrap();
    assert!(fresh.status().unwrap().is_ready());
}

#[test]
fn reset_plugs_an_unplugged_printer_back_in() {
    let (mut lane, sim) = sim_lane();
    sim.unplug_printer().unwrap();
    sim.reset(&mut lane.devices).unwrap();
    assert!(!sim.printer_unplugged());
    assert!(printer(&mut lane).status().unwrap().is_ready());
    assert_eq!(
        printer(&mut lane).print(&doc("RESET")).unwrap(),
        PrintOutcome::Confirmed
    );
    assert!(sim.last_receipt().unwrap_or_default().contains("RESET"));
}

#[test]
fn paper_near_end_is_a_warning_that_does_not_stop_printing() {
    let (mut lane, sim) = sim_lane();
    sim.set_printer_near_end(true).unwrap();
    let status = printer(&mut lane).status().unwrap();
    assert!(
        status.contains(PrinterConditions::PAPER_NEAR_END),
        "{status:?}"
    );
    assert_eq!(status.warning(), Some(FaultKind::PaperNearEnd));
    assert!(status.is_ready(), "{status:?}");
    assert_eq!(
        printer(&mut lane).print(&doc("NEAR END")).unwrap(),
        PrintOutcome::Confirmed
    );
    sim.set_printer_near_end(false).unwrap();
    let status = printer(&mut lane).status().unwrap();
    assert!(
        !status.contains(PrinterConditions::PAPER_NEAR_END),
        "{status:?}"
    );
}

#[test]
fn recover_through_the_trait_clears_a_freed_cutter_jam() {
    let (mut lane, sim) = sim_lane();
    sim.printer_fault(&InjectedFault::CutterJam, false).unwrap();
    let err = printer(&mut lane).print(&doc("JAMS")).unwrap_err();
    assert_eq!(err.kind(), FaultKind::CutterJam, "{err}");
    // The jam is freed, but the printer stays stopped until told.
    sim.clear_printer_faults_only().unwrap();
    let status = printer(&mut lane).status().unwrap();
    assert_eq!(
        status.blocking_fault(),
        Some(FaultKind::CutterJam),
        "{status:?}"
    );

    let after = ReceiptPrinter::recover(printer(&mut lane)).unwrap();
    assert!(after.is_ready(), "{after:?}");
    assert!(printer(&mut lane).status().unwrap().is_ready());
    assert_eq!(
        printer(&mut lane).print(&doc("RECOVERED")).unwrap(),
        PrintOutcome::Confirmed
    );
    assert!(sim.last_receipt().unwrap().contains("RECOVERED"));
}

#[test]
fn recover_on_an_unplugged_printer_is_disconnected() {
    let (mut lane, sim) = sim_lane();
    sim.unplug_printer().unwrap();
    let err = ReceiptPrinter::recover(printer(&mut lane)).unwrap_err();
    assert_eq!(err.kind(), FaultKind::Disconnected, "{err}");
}

#[test]
fn an_unplugged_stripe_reader_reopens_after_replug() {
    let (mut lane, sim) = sim_lane();
    let mut reopener = lane.reopener();
    sim.unplug_msr().unwrap();
    assert!(sim.msr_unplugged());
    let err = lane
        .devices
        .msr
        .as_mut()
        .unwrap()
        .wait_for_swipe(Duration::from_secs(1))
        .unwrap_err();
    assert_eq!(err.kind(), FaultKind::Disconnected, "{err}");
    let err = fails(reopener.msr());
    assert_eq!(err.kind(), FaultKind::NotFound, "{err}");

    sim.replug_msr().unwrap();
    let mut fresh = reopener.msr().unwrap();
    sim.swipe(pos_emv::profile_card::Profile::VisaPse).unwrap();
    let swipe = fresh.wait_for_swipe(Duration::from_secs(3)).unwrap();
    assert!(swipe.is_clean(), "{:?}", swipe.statuses());
}

#[test]
fn a_role_configured_as_none_does_not_reopen() {
    let config = DeviceConfig {
        reader: "sim:ccid".into(),
        printer: "none".into(),
        msr: "none".into(),
        ..DeviceConfig::default()
    };
    let lane = pos_lane::open(&config, None).unwrap();
    let mut reopener = lane.reopener();
    let err = fails(reopener.printer());
    assert_eq!(err.kind(), FaultKind::NotFound, "{err}");
    assert!(err.to_string().contains("has no printer"), "{err}");
    let err = fails(reopener.msr());
    assert_eq!(err.kind(), FaultKind::NotFound, "{err}");
    assert!(reopener.reader().is_ok());
}

#[test]
fn a_reopener_moves_to_another_thread() {
    let (_lane, sim) = sim_lane();
    let lane = pos_lane::open(&DeviceConfig::default(), None).unwrap();
    let reopener: Reopener = lane.reopener();
    drop(sim);
    let handle = std::thread::spawn(move || {
        let mut r = reopener;
        r.printer()
            .map(|mut p| p.status().map(PrinterConditions::is_ready))
    });
    assert!(handle.join().unwrap().unwrap().unwrap());
}
