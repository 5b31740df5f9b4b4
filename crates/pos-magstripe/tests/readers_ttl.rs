//! TTL-head reader behind the `pos_hal` traits, on replayed simulated pin waveforms.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use embedded_hal::digital::{ErrorKind, ErrorType, InputPin};
use pos_hal::{Device, DeviceEvent, Fault, FaultKind, MagstripeReader, TrackStatus};
use pos_magstripe::Track;
use pos_magstripe::readers::{DEFAULT_POLL_INTERVAL, TtlMsr, TtlMsrError};
use pos_magstripe::sim_pins::{SimLine, SimPins, WaveOptions};
use pos_magstripe::ttl::{TtlHead, TtlPin};

const T2: &str = "4111111111111111=2512101";
const T1: &str = "B4111111111111111^DOE/JOHN^2512101";

/// One tick of the three lines as `SimPins` reported them (`Err` for an injected failure).
type Sample = [Result<bool, ()>; 3];

/// A `Send` replay of a `SimPins` waveform: reading CARD PRESENT (the first pin
/// `TtlHead::poll` reads) moves to the next tick, so each poll sees one tick.
#[derive(Default)]
struct Replay {
    samples: Vec<Sample>,
    next: usize,
}

#[derive(Debug)]
struct ReplayError;

impl embedded_hal::digital::Error for ReplayError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

struct ReplayPin {
    replay: Arc<Mutex<Replay>>,
    line: usize,
}

impl ErrorType for ReplayPin {
    type Error = ReplayError;
}

impl InputPin for ReplayPin {
    fn is_high(&mut self) -> Result<bool, ReplayError> {
        let mut r = self.replay.lock().map_err(|_| ReplayError)?;
        if self.line == 0 {
            r.next += 1;
        }
        let tick = r.next.saturating_sub(1);
        match r.samples.get(tick) {
            Some(s) => s[self.line].map_err(|()| ReplayError),
            None => Ok(true), // idle high after the waveform
        }
    }

    fn is_low(&mut self) -> Result<bool, ReplayError> {
        self.is_high().map(|h| !h)
    }
}

fn record(sim: &SimPins) -> Vec<Sample> {
    let (mut cp, mut stb, mut data) = sim.pins();
    let mut samples = Vec::new();
    loop {
        samples.push([
            cp.is_high().map_err(|_| ()),
            stb.is_high().map_err(|_| ()),
            data.is_high().map_err(|_| ()),
        ]);
        if !sim.advance() {
            break;
        }
    }
    samples
}

fn msr(samples: Vec<Sample>, track: Track) -> TtlMsr<ReplayPin, ReplayPin, ReplayPin> {
    let replay = Arc::new(Mutex::new(Replay { samples, next: 0 }));
    let pin = |line| ReplayPin {
        replay: Arc::clone(&replay),
        line,
    };
    let head = TtlHead::with_track(pin(0), pin(1), pin(2), track);
    TtlMsr::new(head, "gpio:test").with_poll_interval(Duration::ZERO)
}

fn swipe_wave(track: Track, text: &str, options: WaveOptions) -> Vec<Sample> {
    record(&SimPins::swipe(track, text, options).expect("encodes"))
}

#[test]
fn forward_and_reversed_with_jitter_read_track_two() {
    for seed in 0..8u64 {
        for reversed in [false, true] {
            let wave = swipe_wave(
                Track::Two,
                T2,
                WaveOptions {
                    reversed,
                    jitter_seed: Some(seed),
                    max_jitter: 4,
                    ..WaveOptions::default()
                },
            );
            let mut reader = msr(wave, Track::Two);
            let sub = reader.subscribe().expect("subscribe");
            let swipe = reader
                .wait_for_swipe(Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("seed {seed} reversed {reversed}: {e}"));
            assert_eq!(
                swipe.statuses(),
                [
                    TrackStatus::NotSupported,
                    TrackStatus::Ok,
                    TrackStatus::NotSupported
                ]
            );
            let data = swipe.tracks[1].data.as_ref().expect("data");
            assert_eq!(data.expose(), T2.as_bytes());
            assert!(swipe.is_clean());
            let events = sub.drain();
            assert_eq!(events.len(), 1);
            assert!(matches!(
                events[0].event,
                DeviceEvent::Swiped {
                    tracks: [
                        TrackStatus::NotSupported,
                        TrackStatus::Ok,
                        TrackStatus::NotSupported
                    ]
                }
            ));
            // The events without their timestamps, whose digits could look like a PAN's.
            let shown = format!("{:?} {swipe:?} {reader:?}", without_time(&events));
            assert!(!shown.contains("4111"), "{shown}");
        }
    }
}

#[test]
fn default_poll_interval_reads_with_sleeps() {
    let wave = swipe_wave(Track::Two, T2, WaveOptions::default());
    let mut reader = msr(wave, Track::Two).with_poll_interval(DEFAULT_POLL_INTERVAL);
    assert_eq!(reader.poll_interval(), Duration::from_micros(50));
    let swipe = reader
        .wait_for_swipe(Duration::from_secs(10))
        .expect("swipe");
    assert_eq!(swipe.tracks[1].status, TrackStatus::Ok);
}

#[test]
fn track_one_head_fills_track_one() {
    let wave = swipe_wave(Track::One, T1, WaveOptions::default());
    let mut reader = msr(wave, Track::One);
    assert_eq!(reader.track(), Track::One);
    let swipe = reader
        .wait_for_swipe(Duration::from_secs(5))
        .expect("swipe");
    assert_eq!(
        swipe.statuses(),
        [
            TrackStatus::Ok,
            TrackStatus::NotSupported,
            TrackStatus::NotSupported
        ]
    );
    let data = swipe.tracks[0].data.as_ref().expect("data");
    assert_eq!(data.expose(), T1.as_bytes());
    assert!(!format!("{swipe:?} {reader:?}").contains("DOE"));
}

#[test]
fn partial_swipe_is_bad_read_with_error_status() {
    let wave = swipe_wave(
        Track::Two,
        T2,
        WaveOptions {
            stop_after_bits: Some(60),
            ..WaveOptions::default()
        },
    );
    let mut reader = msr(wave, Track::Two);
    let sub = reader.subscribe().expect("subscribe");
    let err = reader
        .wait_for_swipe(Duration::from_secs(5))
        .expect_err("bad read");
    assert_eq!(err.kind(), FaultKind::BadRead);
    match err {
        TtlMsrError::BadRead { tracks } => {
            assert!(tracks[1].is_error(), "{tracks:?}");
            assert_eq!(tracks[0], TrackStatus::NotSupported);
            assert_eq!(tracks[2], TrackStatus::NotSupported);
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(
        sub.drain()
            .iter()
            .any(|e| matches!(e.event, DeviceEvent::Swiped { .. }))
    );
}

#[test]
fn pin_failure_is_an_io_error_naming_the_pin() {
    let sim = SimPins::swipe(Track::Two, T2, WaveOptions::default()).expect("encodes");
    sim.fail_from(SimLine::Strobe, 30);
    let mut reader = msr(record(&sim), Track::Two);
    let sub = reader.subscribe().expect("subscribe");
    let err = reader
        .wait_for_swipe(Duration::from_secs(5))
        .expect_err("pin error");
    assert_eq!(err.kind(), FaultKind::Io);
    assert!(err.to_string().contains("Strobe"), "{err}");
    match &err {
        TtlMsrError::Pin { error, .. } => assert_eq!(error.pin, TtlPin::Strobe),
        other => panic!("unexpected error {other:?}"),
    }
    assert!(sub.drain().iter().any(|e| matches!(
        e.event,
        DeviceEvent::Fault {
            kind: FaultKind::Io,
            ..
        }
    )));
    let report = reader
        .check_health(pos_hal::HealthLevel::Internal)
        .expect("report");
    assert!(!report.healthy(), "{report:?}");
    assert_eq!(reader.state(), pos_hal::DeviceState::Idle);
}

#[test]
fn no_card_times_out_within_bounds() {
    let mut reader = msr(Vec::new(), Track::Two).with_poll_interval(Duration::from_micros(200));
    let t0 = Instant::now();
    let err = reader
        .wait_for_swipe(Duration::from_millis(40))
        .expect_err("timeout");
    let took = t0.elapsed();
    assert_eq!(err.kind(), FaultKind::Timeout);
    assert!(took >= Duration::from_millis(40), "{took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    let report = reader
        .check_health(pos_hal::HealthLevel::Internal)
        .expect("report");
    assert!(report.healthy(), "{report:?}");
}

#[test]
fn reader_is_a_send_pos_hal_device() {
    fn assert_device<D: MagstripeReader + Send>(_: &D) {}
    let reader = msr(Vec::new(), Track::Two);
    assert_device(&reader);
    assert_eq!(reader.info().kind, pos_hal::DeviceKind::MagstripeReader);
}

/// The events' devices and contents, without their timestamps.
fn without_time(events: &[pos_hal::TimedEvent]) -> Vec<(&str, &pos_hal::DeviceEvent)> {
    events.iter().map(|e| (&*e.device, &e.event)).collect()
}
