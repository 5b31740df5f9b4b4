//! Serial ASCII magstripe reader over a real pty (virtual reader on the master side).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use pos_hal::{
    Device, DeviceEvent, DeviceKind, Fault, FaultKind, HealthLevel, MagstripeReader, TrackStatus,
};
use pos_link::{DeviceUri, SerialLink, SerialSettings};
use pos_magstripe::serial::{Framing, MsrError, SerialMsr, open};
use pos_magstripe::sim::{SwipeFault, SwipeSpec, VirtualSerialMsr};

const T1: &str = "B4111111111111111^DOE/JOHN^25121010000000000000";
const T2: &str = "4111111111111111=25121010000000000000";

fn rig(framing: Framing) -> (VirtualSerialMsr, SerialMsr<SerialLink>) {
    let (sim, slave) = VirtualSerialMsr::on_pty(framing.clone()).unwrap();
    let link = SerialLink::open(&slave, SerialSettings::default()).unwrap();
    (
        sim,
        SerialMsr::new(link, &format!("serial:{slave}"), framing),
    )
}

fn data(s: &pos_hal::Swipe, i: usize) -> Vec<u8> {
    s.tracks[i]
        .data
        .as_ref()
        .map(|d| d.expose().to_vec())
        .unwrap_or_default()
}

#[test]
fn tracks_one_and_two_read_ok_with_their_data() {
    let (sim, mut msr) = rig(Framing::default());
    assert_eq!(msr.info().kind, DeviceKind::MagstripeReader);
    sim.swipe(&SwipeSpec::tracks12(T1, T2)).unwrap();
    let s = msr.wait_for_swipe(Duration::from_secs(2)).unwrap();
    assert_eq!(
        s.statuses(),
        [TrackStatus::Ok, TrackStatus::Ok, TrackStatus::Empty]
    );
    assert_eq!(data(&s, 0), T1.as_bytes());
    assert_eq!(data(&s, 1), T2.as_bytes());
    assert!(s.tracks[2].data.is_none());
    let dbg = format!("{s:?}");
    assert!(!dbg.contains("4111"), "{dbg}");
}

#[test]
fn reversed_swipe_still_reads() {
    let (sim, mut msr) = rig(Framing::default());
    sim.swipe(&SwipeSpec::tracks12(T1, T2).with_fault(SwipeFault::Reversed))
        .unwrap();
    let s = msr.wait_for_swipe(Duration::from_secs(2)).unwrap();
    assert_eq!(s.statuses()[..2], [TrackStatus::Ok, TrackStatus::Ok]);
    assert_eq!(data(&s, 1), T2.as_bytes());
}

#[test]
fn cr_only_and_custom_prefix_suffix_framing() {
    for (prefix, suffix) in [
        (vec![], b"\r".to_vec()),
        (vec![0x02], vec![0x03]),
        (b"AB".to_vec(), b"\n".to_vec()),
    ] {
        let framing = Framing {
            prefix: prefix.clone(),
            suffix: suffix.clone(),
            inter_char_timeout: Duration::from_millis(100),
        };
        let (sim, mut msr) = rig(framing);
        // Two swipes back to back in one write: the suffix splits them.
        let mut bytes = Vec::new();
        for t2 in ["1234567890123456=2512", "6543210987654321=2612"] {
            bytes.extend_from_slice(&prefix);
            bytes.extend_from_slice(format!(";{t2}?").as_bytes());
            bytes.extend_from_slice(&suffix);
        }
        sim.send_raw(&bytes).unwrap();
        let a = msr.wait_for_swipe(Duration::from_secs(2)).unwrap();
        let b = msr.wait_for_swipe(Duration::from_secs(2)).unwrap();
        assert_eq!(data(&a, 1), b"1234567890123456=2512");
        assert_eq!(data(&b, 1), b"6543210987654321=2612");
        assert_eq!(a.tracks[0].status, TrackStatus::Empty);
    }
}

#[test]
fn framing_from_uri_options() {
    let uri: DeviceUri = "serial:/dev/ttyS0?prefix=02&suffix=03&gap_ms=250"
        .parse()
        .unwrap();
    let f = Framing::from_uri(&uri).unwrap();
    assert_eq!(
        (f.prefix, f.suffix, f.inter_char_timeout),
        (vec![2], vec![3], Duration::from_millis(250))
    );
    let uri: DeviceUri = "serial:/dev/ttyS0?suffix=cr".parse().unwrap();
    assert_eq!(Framing::from_uri(&uri).unwrap().suffix, b"\r");
    let uri: DeviceUri = "serial:/dev/ttyS0".parse().unwrap();
    assert_eq!(Framing::from_uri(&uri).unwrap(), Framing::default());
    for bad in [
        "serial:/x?suffix=zz",
        "serial:/x?gap_ms=0",
        "serial:/x?prefix=1",
    ] {
        let uri: DeviceUri = bad.parse().unwrap();
        assert_eq!(
            Framing::from_uri(&uri).unwrap_err().kind(),
            FaultKind::InvalidInput,
            "{bad}"
        );
    }
    let printer: DeviceUri = "tcp:127.0.0.1:9100".parse().unwrap();
    assert_eq!(open(&printer).unwrap_err().kind(), FaultKind::InvalidInput);
}

#[test]
fn frame_split_over_writes_with_short_pauses_is_one_swipe() {
    let (sim, mut msr) = rig(Framing::default());
    let spec = SwipeSpec {
        chunks: Some((7, Duration::from_millis(40))),
        ..SwipeSpec::tracks12(T1, T2)
    };
    let t = std::thread::spawn(move || {
        sim.swipe(&spec).unwrap();
        sim
    });
    let s = msr.wait_for_swipe(Duration::from_secs(3)).unwrap();
    assert_eq!(s.statuses()[..2], [TrackStatus::Ok, TrackStatus::Ok]);
    assert_eq!(data(&s, 0), T1.as_bytes());
    let _sim = t.join().unwrap();
}

#[test]
fn the_gap_ends_a_frame_without_suffix() {
    let framing = Framing {
        suffix: vec![],
        ..Framing::default()
    };
    let (sim, mut msr) = rig(framing);
    sim.swipe(&SwipeSpec::tracks12(T1, T2)).unwrap();
    let start = Instant::now();
    let s = msr.wait_for_swipe(Duration::from_secs(2)).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(90));
    assert_eq!(data(&s, 1), T2.as_bytes());
}

#[test]
fn partial_swipe_ends_at_the_gap_with_end_sentinel_error() {
    let (sim, mut msr) = rig(Framing::default());
    sim.swipe(&SwipeSpec::tracks12(T1, T2).with_fault(SwipeFault::Partial))
        .unwrap();
    let s = msr.wait_for_swipe(Duration::from_secs(2)).unwrap();
    assert_eq!(
        s.statuses(),
        [
            TrackStatus::Ok,
            TrackStatus::EndSentinel,
            TrackStatus::Empty
        ]
    );
    assert!(s.tracks[1].data.is_none());
}

#[test]
fn parity_and_lrc_faults_become_error_tokens() {
    let (sim, mut msr) = rig(Framing::default());
    sim.swipe(&SwipeSpec::tracks12(T1, T2).with_fault(SwipeFault::Lrc(pos_magstripe::Track::One)))
        .unwrap();
    let s = msr.wait_for_swipe(Duration::from_secs(2)).unwrap();
    // The reader only says "E": an unspecified read error, reported as parity.
    assert_eq!(s.statuses()[..2], [TrackStatus::Parity, TrackStatus::Ok]);
    assert_eq!(data(&s, 1), T2.as_bytes());

    let spec = SwipeSpec::tracks12(T1, T2)
        .with_fault(SwipeFault::Parity(pos_magstripe::Track::One))
        .with_fault(SwipeFault::Lrc(pos_magstripe::Track::Two));
    sim.swipe(&spec).unwrap();
    let err = msr.wait_for_swipe(Duration::from_secs(2)).unwrap_err();
    assert_eq!(err.kind(), FaultKind::BadRead);
    match err {
        MsrError::BadRead { tracks } => {
            assert_eq!(tracks[..2], [TrackStatus::Parity, TrackStatus::Parity])
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn raw_error_tokens() {
    let (sim, mut msr) = rig(Framing::default());
    sim.send_raw(b"%E?;E?\r\n").unwrap();
    assert_eq!(
        msr.wait_for_swipe(Duration::from_secs(2))
            .unwrap_err()
            .kind(),
        FaultKind::BadRead
    );
    sim.send_raw(b"%E?;1234=99?\r\n").unwrap();
    let s = msr.wait_for_swipe(Duration::from_secs(2)).unwrap();
    assert_eq!(s.statuses()[..2], [TrackStatus::Parity, TrackStatus::Ok]);
}

#[test]
fn no_swipe_times_out() {
    let (_sim, mut msr) = rig(Framing::default());
    let start = Instant::now();
    let err = msr.wait_for_swipe(Duration::from_millis(150)).unwrap_err();
    assert_eq!(err.kind(), FaultKind::Timeout);
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(msr.state(), pos_hal::DeviceState::Idle);
}

#[test]
fn unplugged_reader_is_disconnected() {
    let (sim, mut msr) = rig(Framing::default());
    let sub = msr.subscribe().unwrap();
    assert!(msr.check_health(HealthLevel::Internal).unwrap().healthy());
    sim.unplug();
    let err = msr.wait_for_swipe(Duration::from_secs(2)).unwrap_err();
    assert_eq!(err.kind(), FaultKind::Disconnected, "{err}");
    assert_eq!(msr.state(), pos_hal::DeviceState::Error);
    assert!(!msr.check_health(HealthLevel::Internal).unwrap().healthy());
    assert_eq!(
        sub.recv_timeout(Duration::from_secs(1))
            .unwrap()
            .event
            .name(),
        "disconnected"
    );
    // Later calls say so at once.
    assert_eq!(
        msr.wait_for_swipe(Duration::from_secs(2))
            .unwrap_err()
            .kind(),
        FaultKind::Disconnected
    );
    drop(sim);
}

#[test]
fn swiped_event_has_statuses_and_no_data() {
    let (sim, mut msr) = rig(Framing::default());
    let sub = msr.subscribe().unwrap();
    sim.swipe(&SwipeSpec::tracks12(T1, T2)).unwrap();
    msr.wait_for_swipe(Duration::from_secs(2)).unwrap();
    let ev = sub.recv_timeout(Duration::from_secs(1)).unwrap();
    assert_eq!(
        ev.event,
        DeviceEvent::Swiped {
            tracks: [TrackStatus::Ok, TrackStatus::Ok, TrackStatus::Empty]
        }
    );
    // Not the timestamp, whose digits could look like a PAN's.
    assert!(!format!("{:?} {:?}", ev.device, ev.event).contains("4111"));
}

#[test]
fn noise_between_swipes_is_ignored() {
    let (sim, mut msr) = rig(Framing::default());
    let sub = msr.subscribe().unwrap();
    // Noise alone, with and without a suffix: no swipe, no event.
    sim.send_raw(b"\x00\xff\x1bzz\r\n").unwrap();
    sim.send_raw(b"\x7f\x80junk").unwrap();
    assert_eq!(
        msr.wait_for_swipe(Duration::from_millis(400))
            .unwrap_err()
            .kind(),
        FaultKind::Timeout
    );
    assert!(sub.try_recv().is_err());
    // Noise fault: garbage, a pause, then the swipe: exactly one swipe.
    sim.swipe(&SwipeSpec::tracks12(T1, T2).with_fault(SwipeFault::Noise))
        .unwrap();
    let s = msr.wait_for_swipe(Duration::from_secs(2)).unwrap();
    assert!(s.is_clean());
    assert_eq!(
        msr.wait_for_swipe(Duration::from_millis(300))
            .unwrap_err()
            .kind(),
        FaultKind::Timeout
    );
    assert_eq!(sub.drain().len(), 1);
}

#[test]
fn sim_uri_swipes_the_configured_card() {
    let uri: DeviceUri = "sim:msr?track1=none&track2=5413330089600044=2812&every_ms=50&suffix=cr"
        .parse()
        .unwrap();
    let mut msr = open(&uri).unwrap();
    assert_eq!(msr.framing().suffix, b"\r");
    let s = msr.wait_for_swipe(Duration::from_secs(2)).unwrap();
    assert_eq!(
        s.statuses(),
        [TrackStatus::Empty, TrackStatus::Ok, TrackStatus::Empty]
    );
    assert_eq!(data(&s, 1), b"5413330089600044=2812");
    assert!(!format!("{s:?} {msr:?} {:?}", msr.info()).contains("5413"));
    assert_eq!(msr.info().uri, "sim:msr?every_ms=50&suffix=cr");

    let uri: DeviceUri = "sim:msr?fault=lrc2,reversed&every_ms=50".parse().unwrap();
    let mut msr = open(&uri).unwrap();
    let s = msr.wait_for_swipe(Duration::from_secs(2)).unwrap();
    assert_eq!(s.statuses()[..2], [TrackStatus::Ok, TrackStatus::Parity]);
    msr.simulator().unwrap().unplug();
    // Bytes already queued may still arrive; the reader goes away within a few reads.
    let mut kinds = Vec::new();
    for _ in 0..5 {
        if let Err(e) = msr.wait_for_swipe(Duration::from_millis(500)) {
            kinds.push(e.kind());
            if e.kind() == FaultKind::Disconnected {
                break;
            }
        }
    }
    assert_eq!(kinds.last(), Some(&FaultKind::Disconnected));

    for bad in ["sim:msr?fault=bogus", "sim:msr?every_ms=1"] {
        let uri: DeviceUri = bad.parse().unwrap();
        assert_eq!(
            open(&uri).unwrap_err().kind(),
            FaultKind::InvalidInput,
            "{bad}"
        );
    }
}
