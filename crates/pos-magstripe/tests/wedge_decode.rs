//! Keyboard-wedge decoding: fixed US table, framing, robustness, evdev open errors.

use std::time::Duration;

use pos_hal::{Fault, FaultKind};
use pos_magstripe::sim_pins::wedge_key_events;
use pos_magstripe::wedge::{EvdevWedge, WedgeDecoder, WedgeSwipe, us_char};
use pos_magstripe::{TrackStatus, parse_ascii};
use proptest::prelude::*;

const SWIPE: &str = "%B4111111111111111^DOE/JOHN^2512101?;4111111111111111=2512101?";

const KEY_Y: u16 = 21;
const KEY_Z: u16 = 44;
const KEY_MINUS: u16 = 12;
const KEY_EQUAL: u16 = 13;
const KEY_SEMICOLON: u16 = 39;
const KEY_SLASH: u16 = 53;
const KEY_LEFTSHIFT: u16 = 42;
const KEY_RIGHTSHIFT: u16 = 54;
const KEY_ENTER: u16 = 28;

/// Feeds events 1 ms apart from `start_ms`; collects finished swipes.
fn feed(d: &mut WedgeDecoder, events: &[(u16, i32)], start_ms: u64) -> Vec<WedgeSwipe> {
    let mut out = Vec::new();
    for (i, &(code, value)) in events.iter().enumerate() {
        let at = Duration::from_millis(start_ms + i as u64);
        out.extend(d.key(code, value, at));
    }
    out
}

#[test]
fn full_swipe_key_stream_decodes_to_text() {
    let events = wedge_key_events(SWIPE, true);
    let mut d = WedgeDecoder::default();
    let swipes = feed(&mut d, &events, 0);
    assert_eq!(swipes.len(), 1);
    assert_eq!(swipes[0].text, SWIPE);
    assert_eq!(swipes[0].unknown_keys, 0);
    let tracks = parse_ascii(&swipes[0].text);
    assert_eq!(tracks[0].status, TrackStatus::Ok);
    assert_eq!(tracks[0].data, "B4111111111111111^DOE/JOHN^2512101");
    assert_eq!(tracks[1].status, TrackStatus::Ok);
    assert_eq!(tracks[1].data, "4111111111111111=2512101");
    assert!(d.flush().is_none());
    // The debug output of a swipe never shows the card data.
    assert!(!format!("{:?}", swipes[0]).contains("4111"));
}

#[test]
fn specific_shifted_keys() {
    assert_eq!(us_char(6, true), Some('%'));
    assert_eq!(us_char(7, true), Some('^'));
    assert_eq!(us_char(KEY_SLASH, true), Some('?'));
    assert_eq!(us_char(KEY_EQUAL, false), Some('='));
    assert_eq!(us_char(KEY_SEMICOLON, false), Some(';'));
    assert_eq!(us_char(KEY_SLASH, false), Some('/'));
}

#[test]
fn same_key_codes_decode_as_us_whatever_the_host_layout() {
    // On a German (QWERTZ) host the kernel still reports physical key codes; the system
    // keymap would turn KEY_Y into 'z', KEY_Z into 'y', KEY_MINUS into 'ß', KEY_SEMICOLON
    // into 'ö', KEY_EQUAL into '´' and Shift+KEY_SLASH into '_'. The decoder takes no layout
    // input at all (no keymap, no locale, no environment) and gives the US characters.
    let events = [
        (KEY_Y, 1),
        (KEY_Y, 0),
        (KEY_Z, 1),
        (KEY_Z, 0),
        (KEY_MINUS, 1),
        (KEY_MINUS, 0),
        (KEY_SEMICOLON, 1),
        (KEY_SEMICOLON, 0),
        (KEY_EQUAL, 1),
        (KEY_EQUAL, 0),
        (KEY_RIGHTSHIFT, 1),
        (KEY_SLASH, 1),
        (KEY_SLASH, 0),
        (KEY_RIGHTSHIFT, 0),
        (KEY_ENTER, 1),
        (KEY_ENTER, 0),
    ];
    let mut d = WedgeDecoder::default();
    let swipes = feed(&mut d, &events, 0);
    assert_eq!(swipes.len(), 1);
    assert_eq!(swipes[0].text, "yz-;=?");
    // And a whole swipe typed on the German host's reader decodes identically.
    let mut d = WedgeDecoder::default();
    let swipes = feed(&mut d, &wedge_key_events(SWIPE, true), 0);
    assert_eq!(swipes[0].text, SWIPE);
}

#[test]
fn inter_key_timeout_splits_two_swipes() {
    let first = wedge_key_events(";4111111111111111=2512101?", false);
    let second = wedge_key_events(";5500000000000004=2612101?", false);
    let mut d = WedgeDecoder::new(Duration::from_millis(100));
    // Keys 1 ms apart: no swipe ends inside the first stream.
    assert!(feed(&mut d, &first, 0).is_empty());
    assert!(d.in_swipe());
    // 500 ms later: the first key of the second swipe ends the first.
    let at = first.len() as u64 + 500;
    let got = feed(&mut d, &second, at);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].text, ";4111111111111111=2512101?");
    // The second ends when the caller sees the gap.
    let end = Duration::from_millis(at + second.len() as u64);
    assert!(!d.idle_expired(end));
    assert!(d.idle_expired(end + Duration::from_millis(200)));
    let last = d.flush().expect("second swipe");
    assert_eq!(last.text, ";5500000000000004=2612101?");
    assert!(d.flush().is_none());
}

#[test]
fn gap_shorter_than_timeout_does_not_split() {
    let events = wedge_key_events(";1234=5678?", false);
    let mut d = WedgeDecoder::new(Duration::from_millis(100));
    let mut out = Vec::new();
    for (i, &(c, v)) in events.iter().enumerate() {
        out.extend(d.key(c, v, Duration::from_millis(i as u64 * 90)));
    }
    assert!(out.is_empty());
    assert_eq!(d.flush().expect("one swipe").text, ";1234=5678?");
}

#[test]
fn enter_ends_a_swipe() {
    let mut events = wedge_key_events(";1234=5678?", true);
    events.extend(wedge_key_events(";9999=0000?", true));
    let mut d = WedgeDecoder::new(Duration::from_secs(10));
    let swipes = feed(&mut d, &events, 0);
    let texts: Vec<&str> = swipes.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, [";1234=5678?", ";9999=0000?"]);
    // Enter alone is not a swipe.
    assert!(feed(&mut d, &[(KEY_ENTER, 1), (KEY_ENTER, 0)], 100).is_empty());
}

#[test]
fn unknown_keys_are_counted_and_ignored() {
    let mut d = WedgeDecoder::default();
    let events = [
        (2, 1),
        (2, 0),
        (1, 1), // KEY_ESC
        (1, 0),
        (59, 1), // KEY_F1
        (59, 0),
        (0xFFFF, 1),
        (3, 1),
        (3, 2), // autorepeat: ignored
        (3, 0),
        (KEY_ENTER, 1),
    ];
    let s = feed(&mut d, &events, 0);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].text, "12");
    assert_eq!(s[0].unknown_keys, 3);
}

#[test]
fn left_and_right_shift_both_count() {
    let mut d = WedgeDecoder::default();
    let events = [
        (KEY_LEFTSHIFT, 1),
        (KEY_RIGHTSHIFT, 1),
        (KEY_LEFTSHIFT, 0),
        (6, 1), // still shifted by right shift: '%'
        (6, 0),
        (KEY_RIGHTSHIFT, 0),
        (6, 1), // '5'
        (KEY_ENTER, 1),
    ];
    assert_eq!(feed(&mut d, &events, 0)[0].text, "%5");
}

#[test]
fn evdev_open_missing_node_is_not_found() {
    let uri = "evdev:/dev/input/no-such-event-node-xyz"
        .parse()
        .expect("valid uri");
    let err = EvdevWedge::open(&uri).expect_err("missing node");
    assert_eq!(err.kind(), FaultKind::NotFound);
}

#[test]
fn evdev_open_wrong_scheme_is_invalid_input() {
    let uri = "tcp:192.0.2.10:9100".parse().expect("valid uri");
    let err = EvdevWedge::open(&uri).expect_err("not evdev");
    assert_eq!(err.kind(), FaultKind::InvalidInput);
}

proptest! {
    #[test]
    fn arbitrary_events_never_panic(
        events in proptest::collection::vec((any::<u16>(), -3i32..4, 0u64..400), 0..2000),
    ) {
        let mut d = WedgeDecoder::new(Duration::from_millis(100));
        let mut t = 0u64;
        let mut total = 0usize;
        for (code, value, dt) in events {
            t += dt;
            if let Some(s) = d.key(code, value, Duration::from_millis(t)) {
                prop_assert!(s.text.len() <= pos_magstripe::wedge::MAX_SWIPE_CHARS);
                prop_assert!(s.text.is_ascii());
                total += 1;
            }
        }
        let _ = d.flush();
        let _ = total;
    }

    #[test]
    fn generated_key_streams_round_trip(text in "[ -~]{0,100}") {
        let mut d = WedgeDecoder::default();
        let swipes = feed(&mut d, &wedge_key_events(&text, true), 0);
        if text.is_empty() {
            prop_assert!(swipes.is_empty());
        } else {
            prop_assert_eq!(swipes.len(), 1);
            prop_assert_eq!(&swipes[0].text, &text);
        }
    }
}
