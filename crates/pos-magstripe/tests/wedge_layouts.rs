//! Keyboard-wedge readers set to a non-US keyboard layout: the decoder reads the key codes
//! as the reader's layout types them, and the wrong layout is a bad read, never a wrong PAN.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use pos_hal::{Fault, FaultKind};
use pos_link::DeviceUri;
use pos_magstripe::readers::open_evdev;
use pos_magstripe::wedge::{
    KEY_ENTER, KEY_LEFTSHIFT, KEY_RIGHTALT, KEY_SPACE, KeySym, KeyboardLayout, WedgeDecoder,
    WedgeSwipe, layout_key_events,
};
use pos_magstripe::{Track1Data, Track2Data, TrackStatus, parse_ascii};
use proptest::prelude::*;

/// A test card whose name has a Z and a Y (they swap places on QWERTZ) and both field
/// separators (`^` is a dead key on German and French keyboards).
const SWIPE: &str = "%B4111111111111111^ZAYTSEV/YURI^2512101?;4111111111111111=2512101?";

// Linux key codes (linux/input-event-codes.h), named after the US key caps.
const KEY_1: u16 = 2;
const KEY_5: u16 = 6;
const KEY_7: u16 = 8;
const KEY_9: u16 = 10;
const KEY_0: u16 = 11;
const KEY_MINUS: u16 = 12;
const KEY_EQUAL: u16 = 13;
const KEY_Q: u16 = 16;
const KEY_Y: u16 = 21;
const KEY_LEFTBRACE: u16 = 26;
const KEY_A: u16 = 30;
const KEY_SEMICOLON: u16 = 39;
const KEY_APOSTROPHE: u16 = 40;
const KEY_GRAVE: u16 = 41;
const KEY_Z: u16 = 44;
const KEY_M: u16 = 50;
const KEY_COMMA: u16 = 51;
const KEY_DOT: u16 = 52;

fn decode(layout: KeyboardLayout, events: &[(u16, i32)]) -> Vec<WedgeSwipe> {
    let mut d = WedgeDecoder::new(Duration::from_millis(100)).with_layout(layout);
    let mut out = Vec::new();
    for (i, &(code, value)) in events.iter().enumerate() {
        out.extend(d.key(code, value, Duration::from_millis(i as u64)));
    }
    out.extend(d.flush());
    out
}

fn press(code: u16, shift: bool) -> Vec<(u16, i32)> {
    let mut v = Vec::new();
    if shift {
        v.push((KEY_LEFTSHIFT, 1));
    }
    v.extend([(code, 1), (code, 0)]);
    if shift {
        v.push((KEY_LEFTSHIFT, 0));
    }
    v
}

/// The German T1 layout's keys for the track characters, written from the layout (DIN
/// 2137-1 key caps), not from the library's table.
#[test]
fn german_keys_from_the_key_caps() {
    let de = KeyboardLayout::De;
    let cases: [(&[(u16, i32)], &str); 8] = [
        (&press(KEY_5, true), "%"),
        (&press(KEY_7, true), "/"),
        (&press(KEY_MINUS, true), "?"),
        (&press(KEY_COMMA, true), ";"),
        (&press(KEY_0, true), "="),
        (&press(KEY_Y, true), "Z"),
        (&press(KEY_Z, true), "Y"),
        (
            &[
                (KEY_GRAVE, 1),
                (KEY_GRAVE, 0),
                (KEY_SPACE, 1),
                (KEY_SPACE, 0),
            ],
            "^",
        ),
    ];
    for (events, want) in cases {
        let s = decode(de, events);
        assert_eq!(s.len(), 1, "{want}");
        assert_eq!(s[0].text, want);
        assert_eq!(s[0].unknown_keys, 0);
    }
    assert_eq!(de.sym(KEY_Q, false, true), Some(KeySym::Char('@')));
    assert_eq!(de.sym(KEY_GRAVE, false, false), Some(KeySym::Dead('^')));
}

/// The French AZERTY layout's keys for the track characters, from its key caps: digits
/// need Shift, A/Q and M move, `%` is Shift+ù, `^` is AltGr+9 or the dead circumflex.
#[test]
fn french_keys_from_the_key_caps() {
    let fr = KeyboardLayout::Fr;
    let cases: [(&[(u16, i32)], &str); 10] = [
        (&press(KEY_1, true), "1"),
        (&press(KEY_1, false), "&"),
        (&press(KEY_APOSTROPHE, true), "%"),
        (&press(KEY_M, true), "?"),
        (&press(KEY_COMMA, false), ";"),
        (&press(KEY_EQUAL, false), "="),
        (&press(KEY_DOT, true), "/"),
        (&press(KEY_Q, true), "A"),
        (&press(KEY_SEMICOLON, true), "M"),
        (
            &[(KEY_RIGHTALT, 1), (KEY_9, 1), (KEY_9, 0), (KEY_RIGHTALT, 0)],
            "^",
        ),
    ];
    for (events, want) in cases {
        let s = decode(fr, events);
        assert_eq!(s.len(), 1, "{want}");
        assert_eq!(s[0].text, want);
    }
    let dead = [
        (KEY_LEFTBRACE, 1),
        (KEY_LEFTBRACE, 0),
        (KEY_SPACE, 1),
        (KEY_SPACE, 0),
    ];
    assert_eq!(decode(fr, &dead)[0].text, "^");
    // Non-ASCII characters come through as they are (and no track accepts them).
    assert_eq!(decode(fr, &press(KEY_0, false))[0].text, "à");
    assert_eq!(decode(fr, &press(KEY_A, false))[0].text, "q");
}

#[test]
fn a_swipe_typed_for_each_layout_decodes_with_that_layout() {
    for layout in KeyboardLayout::ALL {
        let events = layout_key_events(layout, SWIPE, true);
        let s = decode(layout, &events);
        assert_eq!(s.len(), 1, "{layout}");
        assert_eq!(s[0].text, SWIPE, "{layout}");
        let [t1, t2, _] = parse_ascii(&s[0].text);
        assert_eq!((t1.status, t2.status), (TrackStatus::Ok, TrackStatus::Ok));
        assert_eq!(Track1Data::parse(t1.data).unwrap().name.surname, "ZAYTSEV");
        assert_eq!(Track2Data::parse(t2.data).unwrap().pan, "4111111111111111");
    }
    // The layouts really differ on this swipe.
    assert_ne!(
        layout_key_events(KeyboardLayout::Us, SWIPE, true),
        layout_key_events(KeyboardLayout::De, SWIPE, true)
    );
}

/// Keys typed for one layout and read with another: no track reads, so no PAN (never a
/// wrong one).
#[test]
fn the_wrong_layout_reads_no_track() {
    for typed in KeyboardLayout::ALL {
        for read in KeyboardLayout::ALL {
            if typed == read {
                continue;
            }
            let s = decode(read, &layout_key_events(typed, SWIPE, true));
            for swipe in &s {
                let tracks = parse_ascii(&swipe.text);
                assert!(
                    tracks.iter().all(|t| t.status != TrackStatus::Ok),
                    "typed {typed}, read {read}: {:?}",
                    tracks
                );
            }
        }
    }
    // German keys read as US: track 1 starts (`%` is Shift+5 on both) but never ends.
    let s = decode(
        KeyboardLayout::Us,
        &layout_key_events(KeyboardLayout::De, SWIPE, true),
    );
    let [t1, t2, t3] = parse_ascii(&s[0].text);
    assert_eq!(
        (t1.status, t2.status, t3.status),
        (
            TrackStatus::EndSentinel,
            TrackStatus::Empty,
            TrackStatus::Empty
        )
    );
}

#[test]
fn dead_keys() {
    let de = KeyboardLayout::De;
    // Dead key, then a letter: the accent, then the letter.
    let events = [(KEY_GRAVE, 1), (KEY_GRAVE, 0), (KEY_A, 1), (KEY_A, 0)];
    assert_eq!(decode(de, &events)[0].text, "^a");
    // Two dead keys: the first accent stands alone, the second waits for Space.
    let events = [
        (KEY_GRAVE, 1),
        (KEY_GRAVE, 0),
        (KEY_GRAVE, 1),
        (KEY_GRAVE, 0),
        (KEY_SPACE, 1),
    ];
    assert_eq!(decode(de, &events)[0].text, "^^");
    // A dead key alone before Enter: the accent, and the swipe ends.
    let events = [(KEY_GRAVE, 1), (KEY_GRAVE, 0), (KEY_ENTER, 1)];
    let s = decode(de, &events);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].text, "^");
    // A pending dead key is a swipe under way.
    let mut d = WedgeDecoder::default().with_layout(de);
    assert!(d.key(KEY_GRAVE, 1, Duration::ZERO).is_none());
    assert!(d.in_swipe());
    assert_eq!(d.flush().unwrap().text, "^");
    assert!(!d.in_swipe());
}

#[test]
fn altgr_with_nothing_on_it_is_an_unknown_key_and_us_ignores_altgr() {
    let events = [(KEY_RIGHTALT, 1), (KEY_Y, 1), (KEY_Y, 0), (KEY_RIGHTALT, 0)];
    let s = decode(KeyboardLayout::De, &events);
    assert_eq!((s[0].text.as_str(), s[0].unknown_keys), ("", 1));
    assert_eq!(decode(KeyboardLayout::Us, &events)[0].text, "y");
}

#[test]
fn layout_names() {
    for l in KeyboardLayout::ALL {
        assert_eq!(KeyboardLayout::from_name(l.name()), Some(l));
        assert_eq!(l.to_string().parse::<KeyboardLayout>(), Ok(l));
    }
    assert_eq!(KeyboardLayout::from_name("DE"), Some(KeyboardLayout::De));
    assert_eq!(KeyboardLayout::default(), KeyboardLayout::Us);
    let e = "dvorak".parse::<KeyboardLayout>().unwrap_err();
    assert!(e.contains("dvorak") && e.contains("us, de, fr"), "{e}");
}

#[test]
fn open_evdev_refuses_an_unknown_layout() {
    let uri = DeviceUri::parse("evdev:/dev/input/no-such-event-device?layout=dvorak").unwrap();
    let e = open_evdev(&uri).unwrap_err();
    assert_eq!(e.kind(), FaultKind::InvalidInput);
    assert!(e.to_string().contains("dvorak"), "{e}");
    // A known layout gets as far as the device.
    let uri = DeviceUri::parse("evdev:/dev/input/no-such-event-device?layout=de").unwrap();
    assert_eq!(open_evdev(&uri).unwrap_err().kind(), FaultKind::NotFound);
}

#[test]
fn non_ascii_characters_do_not_overrun_the_swipe_limit() {
    let mut d = WedgeDecoder::default().with_layout(KeyboardLayout::Fr);
    // KEY_0 types `à` (two bytes) on AZERTY.
    for i in 0..600u64 {
        d.key(KEY_0, 1, Duration::from_micros(i));
        d.key(KEY_0, 0, Duration::from_micros(i));
    }
    let s = d.flush().unwrap();
    assert!(s.text.len() <= pos_magstripe::wedge::MAX_SWIPE_CHARS);
    assert_eq!(s.text.chars().count() + s.dropped, 600);
}

proptest! {
    /// Every track character round-trips through every layout.
    #[test]
    fn track_characters_round_trip(text in "[ -_]{1,100}", which in 0usize..3) {
        let layout = KeyboardLayout::ALL[which];
        for c in text.chars() {
            prop_assert!(layout.strokes_for(c).is_some(), "{layout} cannot type {c:?}");
        }
        let s = decode(layout, &layout_key_events(layout, &text, true));
        prop_assert_eq!(s.len(), 1);
        prop_assert_eq!(&s[0].text, &text);
    }

    #[test]
    fn arbitrary_events_never_panic_in_any_layout(
        events in proptest::collection::vec((0u16..300, -1i32..3), 0..600),
        which in 0usize..3,
    ) {
        let mut d = WedgeDecoder::default().with_layout(KeyboardLayout::ALL[which]);
        for (i, (code, value)) in events.into_iter().enumerate() {
            if let Some(s) = d.key(code, value, Duration::from_micros(i as u64)) {
                prop_assert!(s.text.len() <= pos_magstripe::wedge::MAX_SWIPE_CHARS);
            }
        }
        let _ = d.flush();
    }
}
