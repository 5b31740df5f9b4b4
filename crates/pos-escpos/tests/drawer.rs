//! The cash drawer behind the printer, against the virtual printer on a pseudo-terminal
//! (the real serial path): the pulse's bytes (pin, times), the switch at both levels as the
//! profile says, refusals on printer faults, and what cannot be known.

use std::sync::Arc;
use std::time::Duration;

use pos_escpos::profile::{Profile, Support};
use pos_escpos::sim::{DrawerKick, SimConfig, SimDrawer, SimFault, VirtualPrinter};
use pos_escpos::{DriverConfig, EscPosError, EscPosPrinter};
use pos_hal::{
    CashDrawer, Device, DeviceKind, DrawerPin, DrawerPulse, DrawerState, Fault, FaultKind,
    HealthLevel, PrinterConditions, ReceiptPrinter,
};
use pos_link::{DeviceUri, Link, SerialLink, SerialSettings};

type Printer = EscPosPrinter<Box<dyn Link>>;

fn config() -> DriverConfig {
    DriverConfig {
        settle: Duration::from_millis(50),
        ..DriverConfig::default()
    }
}

fn profile(pin3_high_is_open: bool) -> Profile {
    let mut p = Profile::builtin("epson-tm-t20").expect("built-in profile");
    p.drawer_open_when_pin3_high = pin3_high_is_open;
    p
}

/// The driver with `driver_profile` on a pty, the virtual printer with `sim` on the other end.
fn rig(sim: SimConfig, driver_profile: Profile) -> (Printer, Arc<VirtualPrinter>) {
    let (vp, slave) = VirtualPrinter::on_pty(sim).expect("pty");
    let vp = Arc::new(vp);
    let link: Box<dyn Link> =
        Box::new(SerialLink::open(&slave, SerialSettings::default()).expect("open pty"));
    let p = EscPosPrinter::new(link, &format!("serial:{slave}"), driver_profile, config())
        .expect("driver")
        .with_simulator(Arc::clone(&vp));
    (p, vp)
}

fn quick(pin: DrawerPin) -> DrawerPulse {
    DrawerPulse::new(pin).with_times(Duration::from_millis(20), Duration::from_millis(40))
}

#[test]
fn the_usual_pulse_is_esc_p_on_pin_2_for_50_and_500_ms_and_opens_the_drawer() {
    let (p, vp) = rig(SimConfig::default(), profile(false));
    let mut drawer = p.drawer(DrawerPulse::default());
    assert_eq!(drawer.info().kind, DeviceKind::CashDrawer);
    assert_eq!(drawer.drawer_state().unwrap(), DrawerState::Closed);
    assert_eq!(drawer.open_drawer().unwrap(), DrawerState::Open);
    assert_eq!(
        vp.drawer_kicks(),
        [DrawerKick {
            m: 0,
            t1: 25,
            t2: 250
        }]
    );
    let kick = vp.drawer_kicks()[0];
    assert_eq!(kick.pin(), Some(DrawerPin::Pin2));
    assert_eq!(
        (kick.on(), kick.off()),
        (Duration::from_millis(50), Duration::from_millis(500))
    );
    assert!(vp.drawer_open());
    // The cashier pushes it shut.
    vp.set_drawer_open(false);
    assert_eq!(drawer.drawer_state().unwrap(), DrawerState::Closed);
    // The printer's own status says the same.
    let mut p = p;
    assert!(!p.status().unwrap().contains(PrinterConditions::DRAWER_OPEN));
}

#[test]
fn pin_5_and_other_times_reach_the_printer_as_asked() {
    let sim = SimConfig {
        drawer: SimDrawer {
            pin: DrawerPin::Pin5,
            ..SimDrawer::default()
        },
        ..SimConfig::default()
    };
    let (p, vp) = rig(sim, profile(false));
    // A pulse on pin 2 reaches the connector, but the drawer is on pin 5: still closed,
    // and said so (never reported as opened).
    let mut wrong = p.drawer(quick(DrawerPin::Pin2));
    assert_eq!(wrong.open_drawer().unwrap(), DrawerState::Closed);
    let mut right = p.drawer(
        DrawerPulse::new(DrawerPin::Pin5)
            .with_times(Duration::from_millis(100), Duration::from_millis(200)),
    );
    assert_eq!(right.pulse().pin, DrawerPin::Pin5);
    assert_eq!(right.open_drawer().unwrap(), DrawerState::Open);
    let kicks = vp.drawer_kicks();
    assert_eq!(
        kicks,
        [
            DrawerKick {
                m: 0,
                t1: 10,
                t2: 20
            },
            DrawerKick {
                m: 1,
                t1: 50,
                t2: 100
            }
        ]
    );
    assert_eq!(kicks[1].pin(), Some(DrawerPin::Pin5));
}

#[test]
fn the_switch_is_read_at_the_level_the_profile_says_means_open() {
    for high_is_open in [false, true] {
        // Printer and driver agree on the drawer's wiring.
        let sim = SimConfig {
            profile: profile(high_is_open),
            ..SimConfig::default()
        };
        let (p, vp) = rig(sim, profile(high_is_open));
        let mut d = p.drawer(quick(DrawerPin::Pin2));
        assert_eq!(
            d.drawer_state().unwrap(),
            DrawerState::Closed,
            "{high_is_open}"
        );
        vp.set_drawer_open(true);
        assert_eq!(
            d.drawer_state().unwrap(),
            DrawerState::Open,
            "{high_is_open}"
        );
        vp.set_drawer_open(false);
        assert_eq!(
            d.drawer_state().unwrap(),
            DrawerState::Closed,
            "{high_is_open}"
        );
    }
    // The same wire read with the other level: the profile decides, not the driver. The
    // printer reports an open drawer as pin 3 LOW; a profile saying HIGH means open reads
    // it as closed, and a closed drawer (pin 3 HIGH) as open.
    let (p, vp) = rig(SimConfig::default(), profile(true));
    let mut d = p.drawer(quick(DrawerPin::Pin2));
    assert_eq!(d.drawer_state().unwrap(), DrawerState::Open);
    vp.set_drawer_open(true);
    assert_eq!(d.drawer_state().unwrap(), DrawerState::Closed);
}

#[test]
fn a_printer_that_cannot_act_now_gets_no_pulse_and_the_refusal_names_why() {
    let cases = [
        (SimFault::CoverOpen, FaultKind::CoverOpen),
        (SimFault::PaperOut, FaultKind::PaperOut),
        (SimFault::Offline, FaultKind::PrinterOffline),
    ];
    for (fault, kind) in cases {
        let (p, vp) = rig(
            SimConfig {
                faults: vec![fault],
                ..SimConfig::default()
            },
            profile(false),
        );
        let mut d = p.drawer(quick(DrawerPin::Pin2));
        let e = d.open_drawer().unwrap_err();
        assert_eq!(e.kind(), kind, "{fault:?}: {e}");
        assert!(
            matches!(e, EscPosError::DrawerRefused { .. }),
            "{fault:?}: {e:?}"
        );
        assert!(e.to_string().contains("no pulse was sent"), "{e}");
        assert!(vp.drawer_kicks().is_empty(), "{fault:?}: nothing sent");
        assert!(!vp.drawer_open());
        // The switch can still be read: real-time status works while offline.
        assert_eq!(d.drawer_state().unwrap(), DrawerState::Closed, "{fault:?}");
    }
}

#[test]
fn a_silent_printer_is_an_error_not_a_guess() {
    let (p, _vp) = rig(
        SimConfig {
            faults: vec![SimFault::Silent],
            ..SimConfig::default()
        },
        profile(false),
    );
    let mut d = p.drawer(quick(DrawerPin::Pin2));
    assert_eq!(
        d.drawer_state().unwrap_err().kind(),
        FaultKind::PrinterOffline
    );
    assert_eq!(
        d.open_drawer().unwrap_err().kind(),
        FaultKind::PrinterOffline
    );
    let report = d.check_health(HealthLevel::Internal).unwrap();
    assert!(!report.healthy());
}

#[test]
fn a_jammed_drawer_is_reported_closed_after_the_pulse() {
    let (p, vp) = rig(
        SimConfig {
            drawer: SimDrawer {
                jammed: true,
                ..SimDrawer::default()
            },
            ..SimConfig::default()
        },
        profile(false),
    );
    let mut d = p.drawer(quick(DrawerPin::Pin2));
    assert_eq!(d.open_drawer().unwrap(), DrawerState::Closed);
    assert_eq!(vp.drawer_kicks().len(), 1, "the pulse went out");
    vp.set_drawer_jammed(false);
    assert_eq!(d.open_drawer().unwrap(), DrawerState::Open);
}

#[test]
fn what_the_profile_cannot_do_is_said_not_guessed() {
    let mut no_status = profile(false);
    no_status.dle_eot = Support::No;
    let (p, vp) = rig(SimConfig::default(), no_status);
    let mut d = p.drawer(quick(DrawerPin::Pin2));
    vp.set_drawer_open(true);
    assert_eq!(d.drawer_state().unwrap(), DrawerState::Unknown);

    let mut no_pulse = profile(false);
    no_pulse.pulse = Support::Unknown;
    let (p, vp) = rig(SimConfig::default(), no_pulse);
    let mut d = p.drawer(quick(DrawerPin::Pin2));
    let e = d.open_drawer().unwrap_err();
    assert_eq!(e.kind(), FaultKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("ESC p"), "{e}");
    assert!(vp.drawer_kicks().is_empty());

    let (p, vp) = rig(SimConfig::default(), profile(false));
    let mut d = p.drawer(
        DrawerPulse::new(DrawerPin::Pin2)
            .with_times(Duration::from_millis(600), Duration::from_millis(10)),
    );
    assert_eq!(d.open_drawer().unwrap_err().kind(), FaultKind::InvalidInput);
    assert!(vp.drawer_kicks().is_empty());
}

#[test]
fn sim_printer_uri_options_set_the_drawer() {
    let uri = DeviceUri::parse("sim:printer?drawer=open&drawer_pin=5").unwrap();
    let p = pos_escpos::open(&uri, config()).unwrap();
    let mut d = p.drawer(quick(DrawerPin::Pin5));
    assert_eq!(d.drawer_state().unwrap(), DrawerState::Open);
    let sim = d.simulator().expect("opened from sim:printer");
    sim.set_drawer_open(false);
    assert_eq!(d.open_drawer().unwrap(), DrawerState::Open);
    drop(p);
    // The drawer keeps the link: the printer handle is gone, the drawer still answers.
    assert_eq!(d.drawer_state().unwrap(), DrawerState::Open);

    for bad in ["sim:printer?drawer=ajar", "sim:printer?drawer_pin=3"] {
        let uri = DeviceUri::parse(bad).unwrap();
        let e = pos_escpos::open(&uri, config()).unwrap_err();
        assert_eq!(e.kind(), FaultKind::InvalidInput, "{bad}: {e}");
    }
}
