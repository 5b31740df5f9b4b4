//! The fault matrix on the virtual printer: each fault before, during and after a job, with
//! the outcome checked. The driver runs the real serial path (a pseudo-terminal) unless a
//! test says TCP. No test may see a job reported as printed when the printer lost paper,
//! opened its cover or jammed during it.

use std::sync::Arc;
use std::time::Duration;

use pos_escpos::profile::Profile;
use pos_escpos::sim::{SimConfig, SimFault, VirtualPrinter};
use pos_escpos::{DriverConfig, EscPosError, EscPosPrinter};
use pos_hal::{
    CutKind, Device, DeviceEvent, Document, Fault, FaultKind, PrintOutcome, PrinterConditions,
    ReceiptPrinter,
};
use pos_link::{Link, SerialLink, SerialSettings, TcpLink};

type Printer = EscPosPrinter<Box<dyn Link>>;

fn config() -> DriverConfig {
    DriverConfig {
        confirm_timeout: Duration::from_secs(5),
        settle: Duration::from_millis(100),
        monitor_interval: Duration::from_millis(100),
        ..DriverConfig::default()
    }
}

fn profile(name: &str) -> Profile {
    Profile::builtin(name).expect("built-in profile")
}

/// A driver on the serial side of a pty, and the virtual printer on the master side.
fn rig(sim: SimConfig, driver_profile: &str) -> (Printer, Arc<VirtualPrinter>) {
    let (vp, slave) = VirtualPrinter::on_pty(sim).expect("pty");
    let vp = Arc::new(vp);
    let link: Box<dyn Link> =
        Box::new(SerialLink::open(&slave, SerialSettings::default()).expect("open pty"));
    let p = EscPosPrinter::new(
        link,
        &format!("serial:{slave}"),
        profile(driver_profile),
        config(),
    )
    .expect("driver")
    .with_simulator(Arc::clone(&vp));
    (p, vp)
}

fn with_faults(faults: &[SimFault]) -> SimConfig {
    SimConfig {
        faults: faults.to_vec(),
        ..SimConfig::default()
    }
}

fn receipt(lines: usize) -> Document {
    let mut d = Document::new();
    for i in 0..lines {
        d.text(format!("line {i:02} ....................... {}.00", i + 1));
    }
    d.cut(CutKind::FeedAndPartial);
    d
}

fn assert_job_failed(
    result: Result<PrintOutcome, EscPosError>,
    kind: FaultKind,
) -> pos_escpos::JobProgress {
    match result {
        Err(EscPosError::JobFailed {
            kind: k,
            progress,
            conditions,
        }) => {
            assert_eq!(k, kind, "conditions: {:?}", conditions.names());
            progress
        }
        other => panic!("expected a failed job with {kind}, got {other:?}"),
    }
}

// ---- status ---------------------------------------------------------------------------

#[test]
fn status_reports_every_simulated_condition() {
    let (mut p, vp) = rig(SimConfig::default(), "epson-tm-t20");
    assert_eq!(p.status().unwrap(), PrinterConditions::empty());
    let cases = [
        (SimFault::PaperOut, "paper_out", Some(FaultKind::PaperOut)),
        (SimFault::NearEnd, "paper_near_end", None),
        (
            SimFault::CoverOpen,
            "cover_open",
            Some(FaultKind::CoverOpen),
        ),
        (
            SimFault::Offline,
            "offline",
            Some(FaultKind::PrinterOffline),
        ),
    ];
    for (fault, name, blocking) in cases {
        vp.set_fault(fault, true);
        let c = p.status().unwrap();
        assert!(c.names().contains(&name), "{fault:?}: {:?}", c.names());
        assert_eq!(c.blocking_fault(), blocking, "{fault:?}");
        vp.set_fault(fault, false);
        assert!(p.status().unwrap().is_ready(), "{fault:?} cleared");
    }
}

#[test]
fn a_silent_printer_is_offline_not_a_hang() {
    let (mut p, _vp) = rig(with_faults(&[SimFault::Silent]), "epson-tm-t20");
    let e = p.status().unwrap_err();
    assert_eq!(e.kind(), FaultKind::PrinterOffline, "{e}");
}

// ---- before a job: refused, nothing printed ---------------------------------------------

#[test]
fn jobs_are_refused_before_any_byte_when_the_printer_cannot_print() {
    for (fault, kind) in [
        (SimFault::PaperOut, FaultKind::PaperOut),
        (SimFault::CoverOpen, FaultKind::CoverOpen),
        (SimFault::Offline, FaultKind::PrinterOffline),
        (SimFault::Silent, FaultKind::PrinterOffline),
    ] {
        let (mut p, vp) = rig(with_faults(&[fault]), "epson-tm-t20");
        let received_before = vp.bytes_received();
        match p.print(&receipt(3)) {
            Err(EscPosError::NotReady { kind: k, .. }) => assert_eq!(k, kind, "{fault:?}"),
            other => panic!("{fault:?}: expected a refusal, got {other:?}"),
        }
        assert_eq!(vp.lines_printed(), 0, "{fault:?}: nothing may print");
        // Only status requests went out: no print data (a print job is far longer).
        assert!(
            vp.bytes_received() - received_before < 40,
            "{fault:?}: print data was sent"
        );
    }
}

#[test]
fn a_jammed_cutter_refuses_the_next_job() {
    let (mut p, vp) = rig(with_faults(&[SimFault::CutterJam]), "epson-tm-t20");
    let first = p.print(&receipt(2));
    assert_job_failed(first, FaultKind::CutterJam);
    match p.print(&receipt(2)) {
        Err(EscPosError::NotReady { kind, .. }) => assert_eq!(kind, FaultKind::CutterJam),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(
        vp.receipts().is_empty(),
        "the jammed receipt was never cut off"
    );
    // The technician clears the jam; DLE ENQ 1 recovers.
    vp.set_fault(SimFault::CutterJam, false);
    assert!(p.recover().unwrap().is_ready());
    assert_eq!(p.print(&receipt(2)).unwrap(), PrintOutcome::Confirmed);
}

#[test]
fn paper_near_end_is_a_warning_and_the_job_prints() {
    let (mut p, vp) = rig(with_faults(&[SimFault::NearEnd]), "epson-tm-t20");
    assert_eq!(p.print(&receipt(3)).unwrap(), PrintOutcome::Confirmed);
    assert_eq!(vp.receipts().len(), 1);
    let report = p.check_health(pos_hal::HealthLevel::Internal).unwrap();
    assert!(report.healthy());
    assert!(
        report
            .problems()
            .iter()
            .any(|c| c.fault == Some(FaultKind::PaperNearEnd))
    );
}

// ---- during a job: an error naming the fault and the progress ----------------------------

#[test]
fn paper_running_out_mid_job_is_an_error_with_progress() {
    let sim = SimConfig {
        paper_out_after_lines: Some(5),
        ..SimConfig::default()
    };
    let (mut p, vp) = rig(sim, "epson-tm-t20");
    let progress = assert_job_failed(p.print(&receipt(30)), FaultKind::PaperOut);
    assert!(
        progress.bytes_sent > 0 && progress.bytes_sent <= progress.bytes_total,
        "{progress}"
    );
    assert_eq!(vp.lines_printed(), 5, "the printer stopped after 5 lines");
    assert!(vp.receipts().is_empty(), "the receipt was never finished");
    assert!(
        vp.confirmed_jobs().is_empty(),
        "the printer never confirmed the job"
    );
}

#[test]
fn paper_running_out_mid_job_without_asb_or_confirmation_is_still_caught() {
    let sim = SimConfig {
        paper_out_after_lines: Some(4),
        ..SimConfig::default()
    };
    let (mut p, vp) = rig(sim, "generic-80");
    assert_job_failed(p.print(&receipt(20)), FaultKind::PaperOut);
    assert_eq!(vp.lines_printed(), 4);
}

#[test]
fn the_cover_opened_mid_job_is_an_error() {
    let sim = SimConfig {
        bytes_per_second: Some(4000),
        ..SimConfig::default()
    };
    let (mut p, vp) = rig(sim, "epson-tm-t20");
    let opener = {
        let vp = Arc::clone(&vp);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            vp.set_fault(SimFault::CoverOpen, true);
        })
    };
    let result = p.print(&receipt(60));
    opener.join().unwrap();
    assert_job_failed(result, FaultKind::CoverOpen);
    assert!(vp.receipts().is_empty());
}

#[test]
fn a_printer_going_silent_mid_job_is_offline_not_a_hang_nor_a_success() {
    let sim = SimConfig {
        bytes_per_second: Some(4000),
        ..SimConfig::default()
    };
    let (mut p, vp) = rig(sim, "epson-tm-t20");
    let muter = {
        let vp = Arc::clone(&vp);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            vp.set_fault(SimFault::Silent, true);
        })
    };
    let result = p.print(&receipt(60));
    muter.join().unwrap();
    assert_job_failed(result, FaultKind::PrinterOffline);
}

#[test]
fn a_cutter_jam_at_the_end_of_the_job_is_an_error() {
    let (mut p, vp) = rig(with_faults(&[SimFault::CutterJam]), "epson-tm-t20");
    assert_job_failed(p.print(&receipt(3)), FaultKind::CutterJam);
    assert!(
        vp.current().text().contains("line 02"),
        "the text printed, uncut"
    );
    assert!(vp.receipts().is_empty());
}

#[test]
fn the_printer_going_offline_mid_job_on_a_printer_without_confirmation() {
    let sim = SimConfig {
        bytes_per_second: Some(4000),
        ..SimConfig::default()
    };
    let (mut p, vp) = rig(sim, "generic-80");
    let t = {
        let vp = Arc::clone(&vp);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            vp.set_fault(SimFault::Offline, true);
        })
    };
    let result = p.print(&receipt(60));
    t.join().unwrap();
    assert_job_failed(result, FaultKind::PrinterOffline);
}

// ---- after a job: outcome kinds ----------------------------------------------------------

#[test]
fn a_printer_that_confirms_jobs_gives_confirmed_and_the_text_is_on_paper() {
    let (mut p, vp) = rig(SimConfig::default(), "epson-tm-t20");
    assert_eq!(p.print(&receipt(3)).unwrap(), PrintOutcome::Confirmed);
    let r = vp.receipts();
    assert_eq!(r.len(), 1);
    assert!(r[0].text().contains("line 00"), "{}", r[0].text());
    assert!(r[0].text().contains("line 02"), "{}", r[0].text());
    assert_eq!(vp.confirmed_jobs().len(), 1);
    // A fault after the job does not change the job's outcome; the next status shows it.
    vp.set_fault(SimFault::PaperOut, true);
    assert_eq!(
        p.status().unwrap().blocking_fault(),
        Some(FaultKind::PaperOut)
    );
}

#[test]
fn a_printer_without_confirmation_gives_status_verified() {
    let (mut p, vp) = rig(SimConfig::default(), "generic-80");
    assert_eq!(p.print(&receipt(3)).unwrap(), PrintOutcome::StatusVerified);
    assert!(
        vp.confirmed_jobs().is_empty(),
        "generic-80 does not ask for confirmation"
    );
    assert_eq!(vp.receipts().len(), 1);
}

#[test]
fn a_slow_serial_printer_still_confirms() {
    let sim = SimConfig {
        bytes_per_second: Some(9600 / 10),
        ..SimConfig::default()
    };
    let (mut p, vp) = rig(sim, "epson-tm-t20");
    assert_eq!(p.print(&receipt(4)).unwrap(), PrintOutcome::Confirmed);
    assert_eq!(vp.receipts().len(), 1);
}

#[test]
fn network_printer_over_tcp() {
    let (vp, addr) = VirtualPrinter::on_tcp("127.0.0.1:0", SimConfig::default()).unwrap();
    let link: Box<dyn Link> =
        Box::new(TcpLink::connect("127.0.0.1", addr.port(), Duration::from_secs(2)).unwrap());
    let mut p = EscPosPrinter::new(
        link,
        &format!("tcp:{addr}"),
        profile("epson-tm-t20"),
        config(),
    )
    .unwrap();
    assert_eq!(p.print(&receipt(2)).unwrap(), PrintOutcome::Confirmed);
    vp.set_fault(SimFault::CoverOpen, true);
    match p.print(&receipt(2)) {
        Err(EscPosError::NotReady { kind, .. }) => assert_eq!(kind, FaultKind::CoverOpen),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_printer_being_unplugged_is_disconnected() {
    let (vp, slave) = VirtualPrinter::on_pty(SimConfig::default()).unwrap();
    let link: Box<dyn Link> =
        Box::new(SerialLink::open(&slave, SerialSettings::default()).unwrap());
    let mut p = EscPosPrinter::new(link, "serial:test", profile("epson-tm-t20"), config()).unwrap();
    let events = p.subscribe().unwrap();
    drop(vp);
    let e = p.status().unwrap_err();
    assert_eq!(e.kind(), FaultKind::Disconnected, "{e}");
    let ev = events.recv_timeout(Duration::from_secs(2)).unwrap();
    assert!(
        matches!(ev.event, DeviceEvent::Disconnected { .. }),
        "{ev:?}"
    );
}

#[test]
fn status_changes_reach_subscribers_from_the_monitor_thread() {
    let (mut p, vp) = rig(SimConfig::default(), "epson-tm-t20");
    assert!(p.status().unwrap().is_ready());
    let events = p.subscribe().unwrap();
    vp.set_fault(SimFault::CoverOpen, true);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let ev = events
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .expect("a status change event");
        if let DeviceEvent::PrinterStatusChanged { new, .. } = ev.event {
            if new.contains(PrinterConditions::COVER_OPEN) {
                break;
            }
        }
    }
}

#[test]
fn cutting_without_a_cutter_is_refused() {
    let (mut p, _vp) = rig(SimConfig::default(), "generic-58");
    let e = p.cut(CutKind::Full).unwrap_err();
    assert_eq!(e.kind(), FaultKind::InvalidInput, "{e}");
}

#[test]
fn bad_barcode_data_is_invalid_input_and_nothing_is_sent() {
    let (mut p, vp) = rig(SimConfig::default(), "epson-tm-t20");
    let mut d = Document::new();
    d.barcode(pos_hal::Barcode::new(pos_hal::Symbology::Ean13, "12345"));
    // A status round trip first: the driver's start-up bytes (initialise, ASB on) are then
    // all in, so only what print() sends is counted.
    p.status().unwrap();
    let before = vp.bytes_received();
    let e = p.print(&d).unwrap_err();
    assert_eq!(e.kind(), FaultKind::InvalidInput, "{e}");
    assert_eq!(
        vp.bytes_received(),
        before,
        "encoding fails before anything is sent"
    );
}

#[test]
fn sim_uris_open_a_virtual_printer_through_the_serial_path() {
    let uri: pos_link::DeviceUri = "sim:printer?fault=paper-out".parse().unwrap();
    let mut p = pos_escpos::open(&uri, config()).unwrap();
    assert_eq!(
        p.status().unwrap().blocking_fault(),
        Some(FaultKind::PaperOut)
    );
    let bad: pos_link::DeviceUri = "sim:printer?fault=on-fire".parse().unwrap();
    let e = pos_escpos::open(&bad, config()).unwrap_err();
    assert!(e.to_string().contains("on-fire"), "{e}");
}

#[test]
fn an_unplugged_virtual_printer_is_disconnected_and_recover_says_so() {
    let uri: pos_link::DeviceUri = "sim:printer".parse().unwrap();
    let mut p = pos_escpos::open(&uri, config()).unwrap();
    assert!(p.status().unwrap().is_ready());
    let sim = p.simulator().unwrap();
    sim.unplug();
    assert!(sim.is_unplugged());
    assert_eq!(p.status().unwrap_err().kind(), FaultKind::Disconnected);
    assert_eq!(
        ReceiptPrinter::recover(&mut p).unwrap_err().kind(),
        FaultKind::Disconnected
    );
    let mut d = Document::new();
    d.text("GONE");
    assert_eq!(p.print(&d).unwrap_err().kind(), FaultKind::Disconnected);
}

#[test]
fn recover_through_the_trait_clears_a_freed_jam() {
    let uri: pos_link::DeviceUri = "sim:printer".parse().unwrap();
    let mut p = pos_escpos::open(&uri, config()).unwrap();
    let sim = p.simulator().unwrap();
    sim.set_fault(SimFault::CutterJam, true);
    assert!(p.cut(CutKind::Full).is_err());
    sim.set_fault(SimFault::CutterJam, false);
    assert_eq!(
        p.status().unwrap().blocking_fault(),
        Some(FaultKind::CutterJam)
    );
    let mut hal: Box<dyn ReceiptPrinter<Error = pos_hal::DeviceError>> =
        Box::new(pos_hal::Erased(p));
    assert!(hal.recover().unwrap().is_ready());
}
