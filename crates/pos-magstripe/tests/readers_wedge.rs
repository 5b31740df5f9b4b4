//! Keyboard-wedge reader behind the `pos_hal` traits, fed by scripted key events.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use pos_hal::{Device, DeviceEvent, DeviceState, Fault, FaultKind, MagstripeReader, TrackStatus};
use pos_link::{Deadline, DeviceUri, LinkError, Operation};
use pos_magstripe::readers::{KeyDecoder, KeySource, WedgeMsr, open_evdev};
use pos_magstripe::serial::MsrError;
use pos_magstripe::sim_pins::wedge_key_events;
use pos_magstripe::wedge::WedgeDecoder;

const T1: &str = "B4111111111111111^DOE/JOHN^2512101";
const T2: &str = "4111111111111111=2512101";

/// Key events from a script; then either silence (until the deadline) or a disconnection.
struct ScriptedKeys {
    events: VecDeque<(u16, i32)>,
    unplug_at_end: bool,
}

impl KeySource for ScriptedKeys {
    fn next_event(&mut self, deadline: Deadline) -> Result<Option<(u16, i32)>, LinkError> {
        if let Some(e) = self.events.pop_front() {
            return Ok(Some(e));
        }
        if self.unplug_at_end {
            return Err(LinkError::disconnected(
                "evdev:/dev/input/test",
                Operation::Read,
                "unplugged",
            ));
        }
        std::thread::sleep(deadline.remaining());
        Ok(None)
    }
}

fn reader(typed: &[(&str, bool)], unplug_at_end: bool) -> WedgeMsr<KeyDecoder<ScriptedKeys>> {
    let events = typed
        .iter()
        .flat_map(|(text, enter)| wedge_key_events(text, *enter))
        .collect();
    let keys = ScriptedKeys {
        events,
        unplug_at_end,
    };
    let decoder = KeyDecoder::new(
        keys,
        "evdev:/dev/input/test",
        WedgeDecoder::new(Duration::from_millis(20)),
    );
    WedgeMsr::new(decoder, "evdev:/dev/input/test")
}

fn full_swipe() -> String {
    format!("%{T1}?;{T2}?")
}

fn data(t: &pos_hal::Track) -> Vec<u8> {
    t.data
        .as_ref()
        .map(|d| d.expose().to_vec())
        .unwrap_or_default()
}

#[test]
fn full_swipe_with_enter_reads_tracks_one_and_two() {
    let text = full_swipe();
    let mut msr = reader(&[(&text, true)], false);
    let sub = msr.subscribe().expect("subscribe");
    let swipe = msr.wait_for_swipe(Duration::from_secs(2)).expect("swipe");
    assert_eq!(
        swipe.statuses(),
        [TrackStatus::Ok, TrackStatus::Ok, TrackStatus::Empty]
    );
    assert_eq!(data(&swipe.tracks[0]), T1.as_bytes());
    assert_eq!(data(&swipe.tracks[1]), T2.as_bytes());
    assert!(swipe.tracks[2].data.is_none());
    assert!(swipe.is_clean());
    assert_eq!(msr.state(), DeviceState::Idle);

    // The event carries the statuses, never the data.
    let events = sub.drain();
    assert_eq!(events.len(), 1);
    match &events[0].event {
        DeviceEvent::Swiped { tracks } => {
            assert_eq!(
                *tracks,
                [TrackStatus::Ok, TrackStatus::Ok, TrackStatus::Empty]
            );
        }
        other => panic!("unexpected event {other:?}"),
    }
    // The events without their timestamps, whose digits could look like a PAN's.
    let shown = format!("{:?} {swipe:?} {msr:?}", without_time(&events));
    assert!(!shown.contains("4111"), "{shown}");
    assert!(!shown.contains("DOE"), "{shown}");
}

#[test]
fn swipe_without_enter_ends_on_the_inter_key_gap() {
    let text = format!(";{T2}?");
    let mut msr = reader(&[(&text, false)], false);
    let swipe = msr.wait_for_swipe(Duration::from_secs(2)).expect("swipe");
    assert_eq!(
        swipe.statuses(),
        [TrackStatus::Empty, TrackStatus::Ok, TrackStatus::Empty]
    );
    assert_eq!(data(&swipe.tracks[1]), T2.as_bytes());
}

#[test]
fn bad_swipe_is_bad_read_and_still_published() {
    let mut msr = reader(&[("%E?;E?", true)], false);
    let sub = msr.subscribe().expect("subscribe");
    let err = msr
        .wait_for_swipe(Duration::from_secs(2))
        .expect_err("bad read");
    assert_eq!(err.kind(), FaultKind::BadRead);
    match err {
        MsrError::BadRead { tracks } => assert_eq!(
            tracks,
            [TrackStatus::Parity, TrackStatus::Parity, TrackStatus::Empty]
        ),
        other => panic!("unexpected error {other:?}"),
    }
    let events = sub.drain();
    assert!(
        events
            .iter()
            .any(|e| matches!(e.event, DeviceEvent::Swiped { .. }))
    );
    assert_eq!(msr.state(), DeviceState::Idle);
}

#[test]
fn partly_bad_swipe_is_ok_with_the_error_status() {
    let text = format!("%E?;{T2}?");
    let mut msr = reader(&[(&text, true)], false);
    let swipe = msr.wait_for_swipe(Duration::from_secs(2)).expect("swipe");
    assert_eq!(
        swipe.statuses(),
        [TrackStatus::Parity, TrackStatus::Ok, TrackStatus::Empty]
    );
    assert!(swipe.tracks[0].data.is_none());
    assert!(!swipe.is_clean());
}

#[test]
fn no_keys_times_out() {
    let mut msr = reader(&[], false);
    let t0 = Instant::now();
    let err = msr
        .wait_for_swipe(Duration::from_millis(50))
        .expect_err("timeout");
    let took = t0.elapsed();
    assert_eq!(err.kind(), FaultKind::Timeout);
    assert!(matches!(err, MsrError::Timeout { .. }));
    assert!(took >= Duration::from_millis(50), "{took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(msr.state(), DeviceState::Idle);
}

#[test]
fn typing_without_tracks_is_ignored() {
    let text = format!(";{T2}?");
    let mut msr = reader(&[("hello", true), (&text, true)], false);
    let sub = msr.subscribe().expect("subscribe");
    let swipe = msr.wait_for_swipe(Duration::from_secs(2)).expect("swipe");
    assert_eq!(swipe.tracks[1].status, TrackStatus::Ok);
    assert_eq!(sub.drain().len(), 1, "only the real swipe is an event");
}

#[test]
fn two_swipes_come_out_one_per_call() {
    let a = format!(";{T2}?");
    let b = format!("%{T1}?");
    let mut msr = reader(&[(&a, true), (&b, true)], false);
    let first = msr.wait_for_swipe(Duration::from_secs(2)).expect("first");
    assert_eq!(first.tracks[1].status, TrackStatus::Ok);
    let second = msr.wait_for_swipe(Duration::from_secs(2)).expect("second");
    assert_eq!(second.tracks[0].status, TrackStatus::Ok);
    assert_eq!(second.tracks[1].status, TrackStatus::Empty);
}

#[test]
fn device_loss_is_disconnected_and_sticks() {
    let mut msr = reader(&[], true);
    let sub = msr.subscribe().expect("subscribe");
    let err = msr
        .wait_for_swipe(Duration::from_secs(2))
        .expect_err("disconnected");
    assert_eq!(err.kind(), FaultKind::Disconnected);
    assert_eq!(msr.state(), DeviceState::Error);
    assert!(
        sub.drain()
            .iter()
            .any(|e| matches!(e.event, DeviceEvent::Disconnected { .. }))
    );
    let again = msr
        .wait_for_swipe(Duration::from_millis(10))
        .expect_err("still gone");
    assert_eq!(again.kind(), FaultKind::Disconnected);
    let report = msr
        .check_health(pos_hal::HealthLevel::Internal)
        .expect("report");
    assert!(!report.healthy(), "{report:?}");
}

#[test]
fn open_evdev_checks_the_scheme_and_the_device() {
    let serial = DeviceUri::parse("serial:/dev/ttyUSB0").expect("uri");
    let err = open_evdev(&serial).expect_err("not evdev");
    assert_eq!(err.kind(), FaultKind::InvalidInput);

    let bad_gap = DeviceUri::parse("evdev:/dev/input/event-none?gap_ms=0").expect("uri");
    assert_eq!(
        open_evdev(&bad_gap).expect_err("bad gap").kind(),
        FaultKind::InvalidInput
    );

    let missing = DeviceUri::parse("evdev:/dev/input/no-such-event-device").expect("uri");
    assert_eq!(
        open_evdev(&missing).expect_err("missing").kind(),
        FaultKind::NotFound
    );
}

/// The events' devices and contents, without their timestamps.
fn without_time(events: &[pos_hal::TimedEvent]) -> Vec<(&str, &pos_hal::DeviceEvent)> {
    events.iter().map(|e| (&*e.device, &e.event)).collect()
}
