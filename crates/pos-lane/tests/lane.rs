//! The simulated lane through the HAL trait objects, faults included.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use pos_emv::profile_card::Profile;
use pos_hal::{
    ChipReader, CutKind, Device, DeviceEvent, Document, Fault, FaultKind, MagstripeReader,
    PrinterConditions, ReceiptPrinter, TrackStatus,
};
use pos_lane::{Lane, Role, SimLane};
use pos_terminal::config::DeviceConfig;
use pos_terminal::devices::Reader;
use pos_terminal::inject::{InjectedFault, Injection, Step, StepHook};

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

fn reader(lane: &mut Lane) -> &mut Reader {
    lane.devices.reader.as_mut().expect("a reader")
}

/// Power on and SELECT the PSE; the answer's status words.
fn select(lane: &mut Lane) -> [u8; 2] {
    let r = reader(lane);
    r.power_on(0).unwrap();
    sw(&r.transmit(0, &select_pse()).unwrap())
}

fn doc(text: &str) -> Document {
    let mut d = Document::new();
    d.text(text);
    d.cut(CutKind::Full);
    d
}

#[test]
fn the_default_config_opens_three_simulated_devices() {
    let (lane, sim) = sim_lane();
    assert!(lane.devices.reader.is_some());
    assert!(lane.devices.printer.is_some());
    assert!(lane.devices.msr.is_some());
    assert!(sim.has_reader() && sim.has_printer() && sim.has_msr());
    assert_eq!(sim.card(), Profile::VisaPse.into());
    let text = format!("{:?}", lane.devices);
    assert!(text.contains("sim:ccid"), "{text}");
    assert!(text.contains("sim:printer"), "{text}");
    assert!(text.contains("sim:msr"), "{text}");
}

#[test]
fn the_visa_card_answers_the_pse_select() {
    let (mut lane, _sim) = sim_lane();
    let atr = reader(&mut lane).power_on(0).unwrap();
    assert!(!atr.as_bytes().is_empty());
    let resp = reader(&mut lane).transmit(0, &select_pse()).unwrap();
    assert_eq!(sw(&resp), [0x90, 0x00]);
    // The FCI names the PSE.
    assert!(resp.windows(14).any(|w| w == b"1PAY.SYS.DDF01"));
}

#[test]
fn a_removed_card_fails_the_next_exchange_and_reset_brings_it_back() {
    let (mut lane, sim) = sim_lane();
    assert_eq!(select(&mut lane), [0x90, 0x00]);
    sim.remove_card().unwrap();
    let err = reader(&mut lane).transmit(0, &select_pse()).unwrap_err();
    assert_eq!(err.kind(), FaultKind::CardRemoved, "{err}");
    // Until reset, no card.
    let err = reader(&mut lane).power_on(0).unwrap_err();
    assert_eq!(err.kind(), FaultKind::CardAbsent, "{err}");
    sim.reset(&mut lane.devices).unwrap();
    assert_eq!(select(&mut lane), [0x90, 0x00]);
}

#[test]
fn a_mute_card_fails_with_card_mute_and_reset_cures_it() {
    let (mut lane, sim) = sim_lane();
    assert_eq!(select(&mut lane), [0x90, 0x00]);
    sim.mute_card().unwrap();
    let err = reader(&mut lane).transmit(0, &select_pse()).unwrap_err();
    assert_eq!(err.kind(), FaultKind::CardMute, "{err}");
    sim.reset(&mut lane.devices).unwrap();
    assert_eq!(select(&mut lane), [0x90, 0x00]);
}

#[test]
fn an_unplugged_reader_is_disconnected_and_reset_plugs_a_new_one() {
    let (mut lane, sim) = sim_lane();
    assert_eq!(select(&mut lane), [0x90, 0x00]);
    sim.unplug_reader().unwrap();
    assert!(sim.reader_unplugged());
    let err = reader(&mut lane).transmit(0, &select_pse()).unwrap_err();
    assert_eq!(err.kind(), FaultKind::Disconnected, "{err}");
    let err = reader(&mut lane).power_on(0).unwrap_err();
    assert_eq!(err.kind(), FaultKind::Disconnected, "{err}");
    sim.reset(&mut lane.devices).unwrap();
    assert!(!sim.reader_unplugged());
    assert_eq!(select(&mut lane), [0x90, 0x00]);
    // The new reader is under the lane's control too.
    sim.remove_card().unwrap();
    let err = reader(&mut lane).transmit(0, &select_pse()).unwrap_err();
    assert_eq!(err.kind(), FaultKind::CardRemoved, "{err}");
}

#[test]
fn insert_card_changes_the_profile() {
    let (mut lane, sim) = sim_lane();
    let events = reader(&mut lane).subscribe().unwrap();
    sim.insert_card(Profile::Mastercard).unwrap();
    assert_eq!(sim.card(), Profile::Mastercard.into());
    // As a terminal does: wait for the driver to see the card (and nothing after it: the
    // first insertion event may be the one from when the lane opened).
    let mut seen = false;
    loop {
        let wait = if seen { 100 } else { 2000 };
        match events.recv_timeout(Duration::from_millis(wait)) {
            Ok(e) => seen |= matches!(e.event, DeviceEvent::CardInserted { slot: 0 }),
            Err(_) if seen => break,
            Err(e) => panic!("no insertion seen: {e:?}"),
        }
    }
    // Mastercard profile: no PSE.
    assert_eq!(select(&mut lane), [0x6A, 0x82]);
    // reset keeps the lane's (new) profile.
    sim.reset(&mut lane.devices).unwrap();
    assert_eq!(select(&mut lane), [0x6A, 0x82]);
}

#[test]
fn the_profile_can_come_from_the_argument_or_the_uri() {
    let lane = pos_lane::open(&DeviceConfig::default(), Some(Profile::UnionPay.into())).unwrap();
    assert_eq!(lane.sim.unwrap().card(), Profile::UnionPay.into());
    let config = DeviceConfig {
        reader: "sim:ccid?card=mastercard".into(),
        printer: "none".into(),
        msr: "none".into(),
        ..DeviceConfig::default()
    };
    let mut lane = pos_lane::open(&config, None).unwrap();
    assert_eq!(
        lane.sim.as_ref().unwrap().card(),
        Profile::Mastercard.into()
    );
    assert_eq!(select(&mut lane), [0x6A, 0x82]);
    let config = DeviceConfig {
        reader: "sim:ccid?card=none".into(),
        ..config
    };
    let mut lane = pos_lane::open(&config, None).unwrap();
    let err = reader(&mut lane).power_on(0).unwrap_err();
    assert_eq!(err.kind(), FaultKind::CardAbsent, "{err}");
}

fn printer_fault_case(fault: InjectedFault, condition: PrinterConditions, kind: FaultKind) {
    let (mut lane, sim) = sim_lane();
    let printer = lane.devices.printer.as_mut().unwrap();
    assert!(printer.status().unwrap().is_ready());
    sim.printer_fault(&fault, false).unwrap();
    if fault != InjectedFault::CutterJam {
        let status = printer.status().unwrap();
        assert!(status.contains(condition), "{fault}: {status:?}");
        assert_eq!(status.blocking_fault(), Some(kind), "{fault}: {status:?}");
    }
    let err = printer
        .print(&doc("FAILS"))
        .expect_err(&format!("{fault}: print must fail"));
    assert_eq!(err.kind(), kind, "{fault}: {err}");
    // The jam shows at the cut.
    let status = printer.status().unwrap();
    assert!(status.contains(condition), "{fault}: {status:?}");
    assert!(sim.receipts().iter().all(|r| !r.contains("FAILS")));

    sim.clear_printer_faults().unwrap();
    let outcome = printer.print(&doc("LANE RECEIPT")).unwrap();
    assert_eq!(outcome, pos_hal::PrintOutcome::Confirmed);
    assert!(printer.status().unwrap().is_ready());
    let last = sim.last_receipt().expect("a receipt");
    assert!(last.contains("LANE RECEIPT"), "{last:?}");
    assert!(sim.receipts().iter().any(|r| r.contains("LANE RECEIPT")));
}

#[test]
fn paper_out_shows_in_status_and_fails_the_print() {
    printer_fault_case(
        InjectedFault::PaperOut,
        PrinterConditions::PAPER_OUT,
        FaultKind::PaperOut,
    );
}

#[test]
fn cover_open_shows_in_status_and_fails_the_print() {
    printer_fault_case(
        InjectedFault::CoverOpen,
        PrinterConditions::COVER_OPEN,
        FaultKind::CoverOpen,
    );
}

#[test]
fn cutter_jam_fails_the_print_and_shows_in_status() {
    printer_fault_case(
        InjectedFault::CutterJam,
        PrinterConditions::CUTTER_JAM,
        FaultKind::CutterJam,
    );
}

#[test]
fn offline_shows_in_status_and_fails_the_print() {
    printer_fault_case(
        InjectedFault::PrinterOffline,
        PrinterConditions::OFFLINE,
        FaultKind::PrinterOffline,
    );
}

#[test]
fn paper_runs_out_mid_job() {
    let (mut lane, sim) = sim_lane();
    let printer = lane.devices.printer.as_mut().unwrap();
    sim.printer_fault(&InjectedFault::PaperOut, true).unwrap();
    // Not yet: the paper runs out during the job.
    assert!(printer.status().unwrap().is_ready());
    let mut d = Document::new();
    for i in 0..12 {
        d.text(format!("LINE {i}"));
    }
    d.cut(CutKind::Full);
    let err = printer.print(&d).unwrap_err();
    assert_eq!(err.kind(), FaultKind::PaperOut, "{err}");
    assert!(sim.receipts().is_empty());
    sim.reset(&mut lane.devices).unwrap();
    let printer = lane.devices.printer.as_mut().unwrap();
    printer.print(&doc("AFTER RESET")).unwrap();
    assert!(sim.last_receipt().unwrap().contains("AFTER RESET"));
}

#[test]
fn printer_fault_rejects_other_faults() {
    let (_lane, sim) = sim_lane();
    let err = sim
        .printer_fault(&InjectedFault::CardRemoved, false)
        .unwrap_err();
    assert_eq!(err.device, Role::Printer);
    assert_eq!(err.kind(), FaultKind::InvalidInput);
}

fn swiped_track2(lane: &mut Lane) -> String {
    let msr = lane.devices.msr.as_mut().unwrap();
    let swipe = msr.wait_for_swipe(Duration::from_secs(3)).unwrap();
    assert!(swipe.is_clean(), "{:?}", swipe.statuses());
    assert_eq!(swipe.tracks[0].status, TrackStatus::Ok);
    assert_eq!(swipe.tracks[1].status, TrackStatus::Ok);
    let data = swipe.tracks[1].data.as_ref().unwrap().expose().to_vec();
    String::from_utf8(data).unwrap()
}

#[test]
fn a_swipe_of_the_visa_card_reads_its_pan_and_chip_service_code() {
    let (mut lane, sim) = sim_lane();
    sim.swipe(Profile::VisaPse).unwrap();
    let t2 = swiped_track2(&mut lane);
    let pan = Profile::VisaPse.pan();
    assert!(t2.starts_with(pan), "track 2 has the Visa PAN");
    assert_eq!(&t2[pan.len()..pan.len() + 8], "=2812201");

    sim.swipe_stripe_only("4111111111111111").unwrap();
    let t2 = swiped_track2(&mut lane);
    assert!(t2.starts_with("4111111111111111=2812101"));
}

#[test]
fn no_swipe_times_out() {
    let (mut lane, _sim) = sim_lane();
    let msr = lane.devices.msr.as_mut().unwrap();
    let err = msr.wait_for_swipe(Duration::from_millis(100)).unwrap_err();
    assert_eq!(err.kind(), FaultKind::Timeout, "{err}");
}

#[test]
fn the_hook_removes_the_card_only_at_card_read() {
    let (mut lane, sim) = sim_lane();
    let inj: Injection = "card-read:card-removed".parse().unwrap();
    let mut hook = sim.hook(vec![inj.clone()], None);
    assert_eq!(select(&mut lane), [0x90, 0x00]);
    for step in [Step::BeforeSend, Step::AfterSend, Step::Printing] {
        hook.at(step);
        let r = reader(&mut lane).transmit(0, &select_pse()).unwrap();
        assert_eq!(sw(&r), [0x90, 0x00], "card still there after {step}");
    }
    assert!(hook.applied().is_empty());
    hook.at(Step::CardRead);
    assert_eq!(hook.applied(), vec![inj]);
    let err = reader(&mut lane).transmit(0, &select_pse()).unwrap_err();
    assert_eq!(err.kind(), FaultKind::CardRemoved, "{err}");
}

#[test]
fn the_hook_arms_host_faults_once_at_the_first_step() {
    let (_lane, sim) = sim_lane();
    let armed: Rc<RefCell<Vec<InjectedFault>>> = Rc::default();
    let seen = Rc::clone(&armed);
    let injections: Vec<Injection> = [
        "before-send:host-timeout",
        "after-send:host-decline:51",
        "printing:paper-out",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let mut hook = sim.hook(
        injections.clone(),
        Some(Box::new(move |f: &InjectedFault| {
            seen.borrow_mut().push(f.clone())
        })),
    );
    hook.at(Step::CardRead);
    assert_eq!(
        *armed.borrow(),
        vec![
            InjectedFault::HostTimeout,
            InjectedFault::HostDecline("51".into())
        ]
    );
    assert_eq!(hook.applied(), injections[..2].to_vec());
    for step in Step::ALL {
        hook.at(step);
    }
    assert_eq!(armed.borrow().len(), 2, "host faults armed once");
    // The printer fault at Printing is mid-job: paper left for a few lines.
    assert_eq!(hook.applied(), injections);
    let printer = sim.virtual_printer().unwrap();
    assert!(!printer.conditions().contains(PrinterConditions::PAPER_OUT));
}

#[test]
fn the_hook_performs_printer_faults_at_once_outside_printing() {
    let (mut lane, sim) = sim_lane();
    let inj: Injection = "card-read:cover-open".parse().unwrap();
    let mut hook = sim.hook(vec![inj.clone()], None);
    hook.at(Step::CardRead);
    assert_eq!(hook.applied(), vec![inj]);
    let status = lane.devices.printer.as_mut().unwrap().status().unwrap();
    assert!(status.contains(PrinterConditions::COVER_OPEN), "{status:?}");
}

#[test]
fn the_hook_mutes_and_unplugs() {
    let (mut lane, sim) = sim_lane();
    let mute: Injection = "after-approve:card-mute".parse().unwrap();
    let unplug: Injection = "second-gac:reader-unplugged".parse().unwrap();
    let mut hook = sim.hook(vec![mute.clone(), unplug.clone()], None);
    assert_eq!(select(&mut lane), [0x90, 0x00]);
    hook.at(Step::AfterApprove);
    let err = reader(&mut lane).transmit(0, &select_pse()).unwrap_err();
    assert_eq!(err.kind(), FaultKind::CardMute, "{err}");
    hook.at(Step::SecondGac);
    let err = reader(&mut lane).transmit(0, &select_pse()).unwrap_err();
    assert_eq!(err.kind(), FaultKind::Disconnected, "{err}");
    assert_eq!(hook.applied(), vec![mute, unplug]);
}

fn config(reader: &str, printer: &str, msr: &str) -> DeviceConfig {
    DeviceConfig {
        reader: reader.into(),
        printer: printer.into(),
        msr: msr.into(),
        ..DeviceConfig::default()
    }
}

#[test]
fn bad_uris_name_the_device_and_the_uri() {
    let cases = [
        (
            config("sim:nonsense", "none", "none"),
            Role::Reader,
            "sim:nonsense",
        ),
        (config("usb:zzzz", "none", "none"), Role::Reader, "usb:zzzz"),
        (
            config("none", "sim:nonsense", "none"),
            Role::Printer,
            "sim:nonsense",
        ),
        (
            config("none", "usb:zzzz", "none"),
            Role::Printer,
            "usb:zzzz",
        ),
        (
            config("none", "none", "sim:nonsense"),
            Role::Msr,
            "sim:nonsense",
        ),
        (config("none", "none", "usb:zzzz"), Role::Msr, "usb:zzzz"),
        (
            config("sim:ccid?card=amex", "none", "none"),
            Role::Reader,
            "sim:ccid?card=amex",
        ),
    ];
    for (cfg, role, uri) in cases {
        let err = pos_lane::open(&cfg, None).expect_err(uri);
        assert_eq!(err.device, role, "{err}");
        assert_eq!(err.uri, uri);
        let text = err.to_string();
        assert!(text.starts_with(role.name()), "{text}");
        assert!(text.contains(uri), "{text}");
        assert_eq!(err.kind(), FaultKind::InvalidInput, "{text}");
        assert!(std::error::Error::source(&err).is_some());
    }
}

#[test]
fn none_gives_no_device() {
    let lane = pos_lane::open(&config("none", "none", "none"), None).unwrap();
    assert!(lane.devices.reader.is_none());
    assert!(lane.devices.printer.is_none());
    assert!(lane.devices.msr.is_none());
    assert!(lane.sim.is_none());

    let mut lane = pos_lane::open(&config("none", "sim:printer", "none"), None).unwrap();
    assert!(lane.devices.reader.is_none() && lane.devices.msr.is_none());
    let sim = lane.sim.clone().unwrap();
    assert!(!sim.has_reader() && sim.has_printer() && !sim.has_msr());
    let err = sim.remove_card().unwrap_err();
    assert_eq!(
        (err.device, err.kind()),
        (Role::Reader, FaultKind::NotFound)
    );
    let err = sim.swipe(Profile::VisaPse).unwrap_err();
    assert_eq!((err.device, err.kind()), (Role::Msr, FaultKind::NotFound));
    // The hook skips what it cannot do and says so by not listing it.
    let mut hook = sim.hook(vec!["card-read:card-removed".parse().unwrap()], None);
    hook.at(Step::CardRead);
    assert!(hook.applied().is_empty());
    sim.reset(&mut lane.devices).unwrap();
    assert!(lane.devices.reader.is_none());
}

#[test]
fn a_real_reader_that_is_not_there_is_not_found() {
    // A USB reader with IDs no device has: the driver's error, kind kept.
    let err = pos_lane::open(&config("usb:ffff:fffe", "none", "none"), None).unwrap_err();
    assert_eq!(err.device, Role::Reader);
    assert_eq!(err.uri, "usb:ffff:fffe");
    assert!(
        matches!(
            err.kind(),
            FaultKind::NotFound | FaultKind::PermissionDenied | FaultKind::Io
        ),
        "{err}"
    );
}

#[test]
fn the_lane_control_can_go_to_other_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<SimLane>();
    send_sync::<pos_lane::LaneError>();
}

/// The child half of `a_crash_injection_kills_the_process`.
#[test]
fn crash_child() {
    if std::env::var_os("POS_LANE_CRASH_CHILD").is_none() {
        return;
    }
    let lane = pos_lane::open(&config("none", "sim:printer", "none"), None).unwrap();
    let sim = lane.sim.unwrap();
    let mut hook = sim.hook(vec!["after-send:crash".parse().unwrap()], None);
    hook.at(Step::CardRead);
    println!("alive after card-read");
    hook.at(Step::AfterSend);
    println!("alive after after-send");
}

#[test]
fn a_crash_injection_kills_the_process() {
    use std::os::unix::process::ExitStatusExt;
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env("POS_LANE_CRASH_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // SIGKILL (9): no destructor ran, nothing was flushed.
    assert_eq!(out.status.signal(), Some(9), "{stdout}");
    assert!(stdout.contains("alive after card-read"), "{stdout}");
    assert!(!stdout.contains("alive after after-send"), "{stdout}");
}
