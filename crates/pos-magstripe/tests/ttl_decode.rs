//! TTL head decoding from generated pin waveforms.

use pos_magstripe::sim_pins::{SimLine, SimPins, WaveOptions};
use pos_magstripe::ttl::{TrackResult, TtlError, TtlHead, TtlPin};
use pos_magstripe::{Track, TrackStatus, encode_bits};

const T2: &str = "4111111111111111=2512101";
const T1: &str = "B4111111111111111^DOE/JOHN^2512101";

/// Runs the head over the whole waveform; returns every result and the first error.
fn run(sim: &SimPins, track: Track) -> (Vec<TrackResult>, Option<TtlError>) {
    let (cp, stb, data) = sim.pins();
    let mut head = TtlHead::with_track(cp, stb, data, track);
    let mut results = Vec::new();
    loop {
        match head.poll() {
            Ok(Some(r)) => results.push(r),
            Ok(None) => {}
            Err(e) => return (results, Some(e)),
        }
        if !sim.advance() {
            break;
        }
    }
    // One more poll on the idle lines after the end.
    match head.poll() {
        Ok(Some(r)) => results.push(r),
        Ok(None) => {}
        Err(e) => return (results, Some(e)),
    }
    (results, None)
}

fn one(sim: &SimPins, track: Track) -> TrackResult {
    let (mut r, err) = run(sim, track);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(r.len(), 1, "exactly one swipe");
    r.remove(0)
}

#[test]
fn forward_swipe_regular_clock() {
    let sim = SimPins::swipe(Track::Two, T2, WaveOptions::default()).expect("encodes");
    let r = one(&sim, Track::Two);
    assert_eq!(r.status, TrackStatus::Ok);
    assert_eq!(r.data.as_str(), T2);
    assert_eq!(r.track, Track::Two);
    // 20 leading + 27 chars * 5 bits + 20 trailing.
    assert_eq!(r.bits, 20 + 27 * 5 + 20);
}

#[test]
fn forward_and_reversed_with_jitter_many_seeds() {
    for seed in 0..40u64 {
        for reversed in [false, true] {
            let opts = WaveOptions {
                reversed,
                jitter_seed: Some(seed),
                max_jitter: 4,
                ..WaveOptions::default()
            };
            let sim = SimPins::swipe(Track::Two, T2, opts).expect("encodes");
            let r = one(&sim, Track::Two);
            assert_eq!(r.status, TrackStatus::Ok, "seed {seed} reversed {reversed}");
            assert_eq!(r.data.as_str(), T2);
        }
    }
}

#[test]
fn track_one_head_reversed_with_jitter() {
    let opts = WaveOptions {
        reversed: true,
        jitter_seed: Some(7),
        ..WaveOptions::default()
    };
    let sim = SimPins::swipe(Track::One, T1, opts).expect("encodes");
    let r = one(&sim, Track::One);
    assert_eq!(r.status, TrackStatus::Ok);
    assert_eq!(r.data.as_str(), T1);
}

#[test]
fn partial_swipe_is_an_error_status() {
    // Card present released after the start sentinel and a few characters.
    for stop in [25, 60, 100, 150] {
        let opts = WaveOptions {
            stop_after_bits: Some(stop),
            jitter_seed: Some(3),
            ..WaveOptions::default()
        };
        let sim = SimPins::swipe(Track::Two, T2, opts).expect("encodes");
        let r = one(&sim, Track::Two);
        assert!(r.status.is_error(), "stop {stop}: {:?}", r.status);
        assert!(r.data.is_empty());
        assert_eq!(r.bits, stop);
    }
}

#[test]
fn noise_on_data_gives_parity_or_lrc() {
    let mut bits = [0u8; 512];
    let n = encode_bits(Track::Two, T2, 0, &mut bits).expect("encodes");
    // Flip one bit inside a data character: parity error.
    let mut noisy = bits[..n].to_vec();
    noisy[5 * 3 + 1] ^= 1;
    let sim = SimPins::from_bits(&noisy, WaveOptions::default());
    assert_eq!(one(&sim, Track::Two).status, TrackStatus::Parity);
    // Flip two bits of one character (parity still odd, character changed): LRC error.
    let mut noisy = bits[..n].to_vec();
    noisy[5 * 3] ^= 1;
    noisy[5 * 3 + 1] ^= 1;
    let sim = SimPins::from_bits(&noisy, WaveOptions::default());
    assert_eq!(one(&sim, Track::Two).status, TrackStatus::Lrc);
}

#[test]
fn no_bits_is_empty() {
    let sim = SimPins::from_bits(&[], WaveOptions::default());
    let r = one(&sim, Track::Two);
    assert_eq!(r.status, TrackStatus::Empty);
}

#[test]
fn too_many_bits_overflow_is_end_sentinel() {
    let opts = WaveOptions {
        leading_zeros: 1500,
        ..WaveOptions::default()
    };
    let sim = SimPins::swipe(Track::Two, T2, opts).expect("encodes");
    let r = one(&sim, Track::Two);
    assert_eq!(r.status, TrackStatus::EndSentinel);
    assert!(r.bits > pos_magstripe::ttl::MAX_BITS);
}

#[test]
fn pin_errors_are_returned_not_panics() {
    for (line, pin) in [
        (SimLine::CardPresent, TtlPin::CardPresent),
        (SimLine::Strobe, TtlPin::Strobe),
        (SimLine::Data, TtlPin::Data),
    ] {
        let sim = SimPins::swipe(Track::Two, T2, WaveOptions::default()).expect("encodes");
        sim.fail_from(line, 40);
        let (results, err) = run(&sim, Track::Two);
        assert!(results.is_empty());
        let err = err.expect("pin error reported");
        assert_eq!(err.pin, pin);
        assert_eq!(err.kind, embedded_hal::digital::ErrorKind::Other);
    }
}

#[test]
fn head_recovers_after_pin_error_and_reads_next_swipe() {
    let sim = SimPins::swipe(Track::Two, T2, WaveOptions::default()).expect("encodes");
    let (cp, stb, data) = sim.pins();
    sim.fail_from(SimLine::Data, 30);
    let mut head = TtlHead::new(cp, stb, data);
    let mut saw_err = false;
    while sim.advance() {
        if head.poll().is_err() {
            saw_err = true;
            break;
        }
    }
    assert!(saw_err);
    assert!(!head.is_reading());
    // A new card on fresh pins: the head is reusable.
    let (cp, stb, data) = head.release();
    drop((cp, stb, data));
    let sim2 = SimPins::swipe(Track::Two, T2, WaveOptions::default()).expect("encodes");
    let (cp, stb, data) = sim2.pins();
    let mut head = TtlHead::new(cp, stb, data);
    let mut got = None;
    while sim2.advance() {
        if let Some(r) = head.poll().expect("no error") {
            got = Some(r);
        }
    }
    assert_eq!(got.expect("swipe").data.as_str(), T2);
}

#[test]
fn debug_does_not_show_track_data() {
    let sim = SimPins::swipe(Track::Two, T2, WaveOptions::default()).expect("encodes");
    let r = one(&sim, Track::Two);
    assert!(!format!("{r:?}").contains("4111"));
}
