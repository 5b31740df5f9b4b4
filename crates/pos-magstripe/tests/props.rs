//! Property tests: bit-level encode/decode round trips on all tracks, forward and reversed,
//! and no panics on arbitrary bits or text.

use pos_magstripe::{
    Track, Track1Data, Track2Data, TrackBuf, TrackStatus, decode_bits, encode_bits, parse_ascii,
};
use proptest::prelude::*;

/// The data characters a track can carry (its set minus the sentinels).
fn charset(track: Track) -> Vec<char> {
    let off = track.ascii_offset();
    (0..(1u8 << track.data_bits()))
        .map(|c| c + off)
        .filter(|&c| c != track.start_sentinel() && c != track.end_sentinel())
        .map(char::from)
        .collect()
}

fn track_strategy() -> impl Strategy<Value = Track> {
    prop_oneof![Just(Track::One), Just(Track::Two), Just(Track::Three)]
}

fn text_for(track: Track) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        proptest::sample::select(charset(track)),
        0..=track.max_data(),
    )
    .prop_map(|v| v.into_iter().collect())
}

fn case() -> impl Strategy<Value = (Track, String, usize, usize, bool)> {
    track_strategy().prop_flat_map(|track| {
        (
            Just(track),
            text_for(track),
            0usize..64,
            0usize..64,
            any::<bool>(),
        )
    })
}

fn build(track: Track, text: &str, lz: usize, tz: usize) -> Vec<u8> {
    let mut bits = vec![0u8; 1200];
    let n = encode_bits(track, text, lz, &mut bits).expect("valid text encodes");
    assert_eq!(n, lz + (text.len() + 3) * track.char_bits());
    bits.truncate(n + tz);
    bits
}

proptest! {
    #[test]
    fn round_trip((track, text, lz, tz, reversed) in case()) {
        let mut bits = build(track, &text, lz, tz);
        if reversed {
            bits.reverse();
        }
        let mut out = TrackBuf::new();
        prop_assert_eq!(decode_bits(track, &bits, &mut out), TrackStatus::Ok);
        prop_assert_eq!(out.as_str(), text.as_str());
    }

    #[test]
    fn single_flipped_bit_never_reads_ok(
        (track, text, lz, tz, _rev) in case(),
        at in any::<prop::sample::Index>(),
    ) {
        let mut bits = build(track, &text, lz, tz);
        let chars = (text.len() + 3) * track.char_bits();
        let i = lz + at.index(chars);
        bits[i] ^= 1;
        let mut out = TrackBuf::new();
        let st = decode_bits(track, &bits, &mut out);
        prop_assert_ne!(st, TrackStatus::Ok);
        prop_assert!(out.is_empty());
    }

    #[test]
    fn decode_never_panics(bits in proptest::collection::vec(0u8..=2, 0..1200), t in track_strategy()) {
        let mut out = TrackBuf::new();
        let st = decode_bits(t, &bits, &mut out);
        prop_assert!(st == TrackStatus::Ok || out.is_empty());
        prop_assert!(out.len() <= t.max_data());
    }

    #[test]
    fn text_parsers_never_panic(s in "\\PC{0,200}", t in "[%;+?^=/B0-9E. A-Z]{0,120}") {
        for input in [s.as_str(), t.as_str()] {
            let tracks = parse_ascii(input);
            for tt in tracks {
                if tt.status == TrackStatus::Ok {
                    prop_assert!(tt.data.len() <= tt.track.max_data());
                }
            }
            let _ = Track1Data::parse(input);
            let _ = Track2Data::parse(input);
        }
    }

    #[test]
    fn ascii_round_trip((track, text, _lz, _tz, _rev) in case()) {
        // A lone `E` is the readers' error token.
        prop_assume!(text != "E");
        let (open, idx) = match track {
            Track::One => ('%', 0),
            Track::Two => (';', 1),
            Track::Three => ('+', 2),
        };
        let framed = format!("{open}{text}?\r\n");
        let tracks = parse_ascii(&framed);
        prop_assert_eq!(tracks[idx].status, TrackStatus::Ok);
        prop_assert_eq!(tracks[idx].data, text.as_str());
    }
}

#[cfg(feature = "std")]
proptest! {
    /// The no-std, no-alloc masking is the same rule as `pos_hal::mask_pan` (the one every
    /// std crate uses): two implementations because the HAL needs std and this one must not,
    /// held to one behaviour here.
    #[test]
    fn no_std_masking_is_the_hal_rule(pan in "[0-9 -]{0,32}") {
        let masked = pos_magstripe::mask_pan(&pan);
        prop_assert_eq!(masked.as_str(), pos_hal::mask_pan(&pan));
    }
}
