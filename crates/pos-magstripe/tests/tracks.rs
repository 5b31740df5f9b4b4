//! Published test cards, bit-level errors per track, reversed swipes, service codes, masking
//! and reader ASCII output.

use pos_magstripe::{
    AllowedServices, Authorization, EncodeError, Interchange, PinRequirement, ServiceCode,
    SwipeVerdict, Track, Track1Data, Track2Data, TrackBuf, TrackStatus, decode_bits, encode_bits,
    luhn_ok, mask_pan, parse_ascii, swipe_verdict,
};

const LZ: usize = 24;
const TZ: usize = 17;

/// Valid data for each track (between the sentinels).
fn sample(track: Track) -> &'static str {
    match track {
        Track::One => "B4111111111111111^DOE/JOHN.MR^2512101000000000000",
        Track::Two => "4111111111111111=2512101123400001",
        Track::Three => "011234567890123456=724724100000000000030300",
    }
}

/// Leading zeros, the encoded track, trailing zeros.
fn stream(track: Track, text: &str) -> Vec<u8> {
    let mut bits = vec![0u8; 2000];
    let n = encode_bits(track, text, LZ, &mut bits).expect("encodes");
    bits.truncate(n + TZ);
    bits
}

fn decode(track: Track, bits: &[u8]) -> (TrackStatus, String) {
    let mut out = TrackBuf::new();
    let st = decode_bits(track, bits, &mut out);
    (st, out.as_str().to_owned())
}

/// Bit index of character `i` (0 = start sentinel) in a stream from [`stream`].
fn char_at(track: Track, i: usize) -> usize {
    LZ + i * track.char_bits()
}

#[test]
fn published_test_cards_track2() {
    let cases = [
        ("4111111111111111=2512101123400001", "4111111111111111", 101),
        ("5555555555554444=2612201000000000", "5555555555554444", 201),
        ("378282246310005=2708221543210", "378282246310005", 221),
        ("6011111111111117=2901601999", "6011111111111117", 601),
    ];
    for (text, pan, sc) in cases {
        let bits = stream(Track::Two, text);
        let (st, got) = decode(Track::Two, &bits);
        assert_eq!(st, TrackStatus::Ok, "{text}");
        assert_eq!(got, text);
        let t2 = Track2Data::parse(&got).expect("parses");
        assert_eq!(t2.pan, pan);
        assert!(t2.luhn_ok(), "{pan} passes Luhn");
        let digits = [sc / 100, sc / 10 % 10, sc % 10].map(|d| d as u8);
        assert_eq!(t2.service_code, ServiceCode::new(digits));
        assert_eq!(t2.service_code.map(|s| s.chip_card()), Some(sc / 100 != 1));
    }
    let t2 = Track2Data::parse(";4111111111111111=2512101123400001?").expect("parses");
    assert_eq!(t2.expiry, Some([2, 5, 1, 2]));
    assert_eq!(t2.expiry_year_month(), Some((25, 12)));
    assert_eq!(
        t2.service_code.map(|s| s.to_string()),
        Some("101".to_owned())
    );
    assert_eq!(t2.discretionary, "123400001");
}

#[test]
fn published_test_cards_track1() {
    let text = "B5555555555554444^MUSTERMANN/ERIKA M.DR^2612201000000123000000";
    let bits = stream(Track::One, text);
    let (st, got) = decode(Track::One, &bits);
    assert_eq!(st, TrackStatus::Ok);
    assert_eq!(got, text);
    let t1 = Track1Data::parse(&got).expect("parses");
    assert_eq!(t1.format_code, b'B');
    assert_eq!(t1.pan, "5555555555554444");
    assert_eq!(t1.name.surname, "MUSTERMANN");
    assert_eq!(t1.name.first, "ERIKA M");
    assert_eq!(t1.name.title, "DR");
    assert_eq!(t1.expiry, Some([2, 6, 1, 2]));
    assert_eq!(t1.service_code.map(|s| s.digits()), Some([2, 0, 1]));
    assert_eq!(t1.discretionary, "000000123000000");
    assert!(t1.luhn_ok());

    let t1 = Track1Data::parse("%B378282246310005^SMITH/JANE^2708221^^^?").expect("parses");
    assert_eq!(t1.pan, "378282246310005");
    assert_eq!(t1.name.surname, "SMITH");
    assert_eq!(t1.name.first, "JANE");
    assert_eq!(t1.name.title, "");
    assert_eq!(t1.discretionary, "^^^");
    let t1 = Track1Data::parse("B4111111111111111^ACME CORP               ^^^").expect("parses");
    assert_eq!(t1.name.surname, "ACME CORP");
    assert_eq!(t1.expiry, None);
    assert_eq!(t1.service_code, None);
    assert_eq!(t1.discretionary, "");
}

#[test]
fn track1_and_track2_parse_errors() {
    assert_eq!(
        Track1Data::parse("A4111111111111111^X^2512101").err(),
        Some(pos_magstripe::ParseError::FormatCode)
    );
    assert_eq!(
        Track1Data::parse("B4111111111111111^ABCDEFGHIJKLMNOPQRSTUVWXYZA^2512101").err(),
        Some(pos_magstripe::ParseError::Name)
    );
    assert_eq!(
        Track2Data::parse("41111111111111111111=2512101").err(),
        Some(pos_magstripe::ParseError::Pan)
    );
    assert_eq!(
        Track2Data::parse("4111111111111111").err(),
        Some(pos_magstripe::ParseError::Separator)
    );
    assert_eq!(
        Track2Data::parse("4111111111111111=25").err(),
        Some(pos_magstripe::ParseError::Expiry)
    );
    assert_eq!(
        Track2Data::parse("4111111111111111=25121").err(),
        Some(pos_magstripe::ParseError::ServiceCode)
    );
    let t2 = Track2Data::parse("4111111111111111==101").expect("absent expiry");
    assert_eq!(t2.expiry, None);
    assert_eq!(t2.service_code.map(|s| s.digits()), Some([1, 0, 1]));
}

#[test]
fn non_luhn_pan_reported_not_rejected() {
    let t2 = Track2Data::parse("4111111111111112=2512101").expect("still parses");
    assert_eq!(t2.pan, "4111111111111112");
    assert!(!t2.luhn_ok());
    assert!(luhn_ok("4111111111111111"));
    assert!(luhn_ok("378282246310005"));
    assert!(!luhn_ok("378282246310006"));
    assert!(!luhn_ok(""));
    assert!(!luhn_ok("41x1"));
}

#[test]
fn reversed_swipes_decode_on_every_track() {
    for track in Track::ALL {
        let mut bits = stream(track, sample(track));
        bits.reverse();
        assert_eq!(
            decode(track, &bits),
            (TrackStatus::Ok, sample(track).to_owned())
        );
    }
}

#[test]
fn leading_and_trailing_zeros() {
    for track in Track::ALL {
        for (lz, tz) in [(0, 0), (1, 0), (0, 33), (200, 200)] {
            let mut bits = vec![0u8; 2000];
            let n = encode_bits(track, sample(track), lz, &mut bits).expect("encodes");
            bits.truncate(n + tz);
            assert_eq!(
                decode(track, &bits),
                (TrackStatus::Ok, sample(track).to_owned()),
                "{track:?} lz={lz} tz={tz}"
            );
        }
    }
}

#[test]
fn empty_tracks() {
    for track in Track::ALL {
        assert_eq!(decode(track, &[]).0, TrackStatus::Empty);
        assert_eq!(decode(track, &[0; 300]).0, TrackStatus::Empty);
    }
}

#[test]
fn missing_start_sentinel_per_track() {
    for track in Track::ALL {
        let mut bits = stream(track, sample(track));
        let w = track.char_bits();
        bits.drain(char_at(track, 0)..char_at(track, 0) + w);
        assert_eq!(
            decode(track, &bits),
            (TrackStatus::StartSentinel, String::new())
        );
        // Reversed too.
        bits.reverse();
        assert_eq!(decode(track, &bits).0, TrackStatus::StartSentinel);
    }
}

#[test]
fn missing_end_sentinel_per_track() {
    for track in Track::ALL {
        let len = sample(track).len();
        let w = track.char_bits();
        // End sentinel and LRC gone: padding follows the data.
        let mut bits = stream(track, sample(track));
        let es = char_at(track, len + 1);
        bits.drain(es..es + 2 * w);
        assert_eq!(
            decode(track, &bits),
            (TrackStatus::EndSentinel, String::new())
        );
        // Stream cut right after the data.
        bits.truncate(es);
        assert_eq!(
            decode(track, &bits).0,
            TrackStatus::EndSentinel,
            "{track:?}"
        );
    }
}

#[test]
fn flipped_parity_bit_per_track() {
    for track in Track::ALL {
        let w = track.char_bits();
        for ch in [1, 5, sample(track).len()] {
            let mut bits = stream(track, sample(track));
            bits[char_at(track, ch) + w - 1] ^= 1;
            assert_eq!(decode(track, &bits), (TrackStatus::Parity, String::new()));
            // A flipped data bit is a parity error as well.
            let mut bits = stream(track, sample(track));
            bits[char_at(track, ch) + 2] ^= 1;
            assert_eq!(decode(track, &bits).0, TrackStatus::Parity);
        }
        // End sentinel with bad parity.
        let mut bits = stream(track, sample(track));
        bits[char_at(track, sample(track).len() + 1) + w - 1] ^= 1;
        assert_eq!(decode(track, &bits).0, TrackStatus::Parity);
    }
}

#[test]
fn wrong_lrc_per_track() {
    for track in Track::ALL {
        let w = track.char_bits();
        let lrc = char_at(track, sample(track).len() + 2);
        // Wrong LRC value with correct parity: flip one data bit and the parity bit.
        let mut bits = stream(track, sample(track));
        bits[lrc] ^= 1;
        bits[lrc + w - 1] ^= 1;
        assert_eq!(decode(track, &bits), (TrackStatus::Lrc, String::new()));
        // Right value, bad parity.
        let mut bits = stream(track, sample(track));
        bits[lrc + w - 1] ^= 1;
        assert_eq!(decode(track, &bits).0, TrackStatus::Lrc);
        // LRC missing.
        let mut bits = stream(track, sample(track));
        bits.truncate(lrc);
        assert_eq!(decode(track, &bits).0, TrackStatus::Lrc);
    }
}

#[test]
fn too_long_track_is_end_sentinel() {
    // A stream of valid data characters longer than track 2 allows, with no end sentinel.
    let long = "1".repeat(Track::Three.max_data());
    let bits = stream(Track::Three, &long);
    assert_eq!(decode(Track::Three, &bits).0, TrackStatus::Ok);
    assert_eq!(decode(Track::Two, &bits).0, TrackStatus::EndSentinel);
}

#[test]
fn encoder_errors() {
    let mut out = [0u8; 1000];
    assert_eq!(
        encode_bits(Track::Two, "41?1", 0, &mut out),
        Err(EncodeError::InvalidChar {
            index: 2,
            byte: b'?'
        })
    );
    assert_eq!(
        encode_bits(Track::Two, "A", 0, &mut out),
        Err(EncodeError::InvalidChar {
            index: 0,
            byte: b'A'
        })
    );
    assert_eq!(
        encode_bits(Track::One, "b", 0, &mut out),
        Err(EncodeError::InvalidChar {
            index: 0,
            byte: b'b'
        })
    );
    assert_eq!(
        encode_bits(Track::Two, &"1".repeat(38), 0, &mut out),
        Err(EncodeError::TooLong { max: 37 })
    );
    assert_eq!(
        encode_bits(Track::Two, "1234", 10, &mut out[..20]),
        Err(EncodeError::BufferTooSmall { needed: 45 })
    );
}

#[test]
fn chip_service_codes_and_verdicts() {
    for (digits, interchange, auth) in [
        (
            [2, 0, 1],
            Interchange::InternationalChip,
            Authorization::Normal,
        ),
        (
            [2, 2, 1],
            Interchange::InternationalChip,
            Authorization::ByIssuer,
        ),
        ([6, 0, 1], Interchange::NationalChip, Authorization::Normal),
    ] {
        let sc = ServiceCode::new(digits).expect("valid");
        assert!(sc.chip_card(), "{sc}");
        assert_eq!(sc.interchange(), interchange);
        assert_eq!(sc.authorization(), auth);
        assert_eq!(sc.pin_requirement(), Some(PinRequirement::NotRequired));
        assert_eq!(sc.allowed_services(), Some(AllowedServices::NoRestrictions));
        assert_eq!(swipe_verdict(sc, false), SwipeVerdict::InsertChip);
        assert_eq!(swipe_verdict(sc, true), SwipeVerdict::FallbackAllowed);
    }
    for code in ["101", "120", "501", "702", "999"] {
        let sc = ServiceCode::parse(code).expect("valid");
        assert!(!sc.chip_card(), "{code}");
        assert_eq!(swipe_verdict(sc, false), SwipeVerdict::Proceed);
        assert_eq!(swipe_verdict(sc, true), SwipeVerdict::Proceed);
    }
    let sc = ServiceCode::parse("120").expect("valid");
    assert_eq!(sc.interchange(), Interchange::International);
    assert_eq!(sc.authorization(), Authorization::ByIssuer);
    assert_eq!(sc.pin_requirement(), Some(PinRequirement::Required));
    let sc = ServiceCode::parse("543").expect("valid");
    assert_eq!(sc.authorization(), Authorization::ByIssuerUnlessBilateral);
    assert_eq!(sc.allowed_services(), Some(AllowedServices::AtmOnly));
    assert_eq!(sc.pin_requirement(), Some(PinRequirement::Required));
    let sc = ServiceCode::parse("707").expect("valid");
    assert_eq!(sc.interchange(), Interchange::Private);
    assert_eq!(
        sc.pin_requirement(),
        Some(PinRequirement::PromptIfPedPresent)
    );
    assert_eq!(
        sc.allowed_services(),
        Some(AllowedServices::GoodsAndServicesOnly)
    );
    let sc = ServiceCode::parse("918").expect("valid");
    assert_eq!(sc.interchange(), Interchange::Test);
    assert_eq!(sc.authorization(), Authorization::Reserved(1));
    assert_eq!(sc.pin_requirement(), None);
    assert_eq!(ServiceCode::parse("3x1"), None);
    assert_eq!(ServiceCode::parse("1011"), None);
    assert_eq!(ServiceCode::new([1, 10, 1]), None);

    // From a swiped chip card's track.
    let t2 = Track2Data::parse("5555555555554444=2612201000000000").expect("parses");
    let sc = t2.service_code.expect("present");
    assert_eq!(swipe_verdict(sc, false), SwipeVerdict::InsertChip);
}

#[test]
fn display_is_masked() {
    let t2 = Track2Data::parse("4111111111111111=2512101123400001").expect("parses");
    let shown = [
        format!("{t2}"),
        format!("{t2:?}"),
        format!("{:?}", t2.masked_pan()),
    ];
    for s in &shown {
        assert!(!s.contains("4111111111111111"), "{s}");
        assert!(!s.contains("123400001"), "{s}");
    }
    assert_eq!(shown[0], "411111******1111");
    let t1 = Track1Data::parse("B378282246310005^SMITH/JANE^2708221999").expect("parses");
    for s in [format!("{t1}"), format!("{t1:?}")] {
        assert!(!s.contains("378282246310005"), "{s}");
        assert!(!s.contains("SMITH"), "{s}");
    }
    assert_eq!(t1.masked_pan().as_str(), "378282*****0005");
    assert_eq!(mask_pan("1234").as_str(), "****");
    assert_eq!(mask_pan("12345678").as_str(), "****5678");
    assert_eq!(mask_pan("5413-3300-8960-0044").as_str(), "541333******0044");
    let long = "1".repeat(60);
    assert_eq!(mask_pan(&long).as_str().len(), 32);
    // Same as pos_hal's masking.
    #[cfg(feature = "std")]
    for pan in [
        "4111111111111111",
        "378282246310005",
        "12345678",
        "1234",
        "5413 3300 8960 0044",
    ] {
        assert_eq!(
            mask_pan(pan).as_str(),
            pos_magstripe::masked_pan_string(pan)
        );
    }
    // The decode buffer does not print card data either.
    let mut out = TrackBuf::new();
    let bits = stream(Track::Two, "4111111111111111=2512101123400001");
    decode_bits(Track::Two, &bits, &mut out);
    assert!(!format!("{out:?}").contains("4111"));
}

#[test]
fn ascii_reader_output() {
    let out = "%B4111111111111111^DOE/JOHN^2512101000?;4111111111111111=2512101123400001?\r\n";
    let [t1, t2, t3] = parse_ascii(out);
    assert_eq!((t1.track, t1.status), (Track::One, TrackStatus::Ok));
    assert_eq!(t1.data, "B4111111111111111^DOE/JOHN^2512101000");
    assert_eq!(t2.status, TrackStatus::Ok);
    assert_eq!(t2.data, "4111111111111111=2512101123400001");
    assert_eq!(
        (t3.track, t3.status, t3.data),
        (Track::Three, TrackStatus::Empty, "")
    );
    assert!(!format!("{t2:?}").contains("4111"));

    let [t1, t2, t3] = parse_ascii("%E?;4111111111111111=2512101?;E?");
    assert_eq!(t1.status, TrackStatus::Parity);
    assert!(t1.status.is_error());
    assert_eq!(t2.status, TrackStatus::Ok);
    assert_eq!(t3.status, TrackStatus::Parity);

    let [t1, t2, t3] = parse_ascii(";E?+0123?");
    assert_eq!(t1.status, TrackStatus::Empty);
    assert_eq!(t2.status, TrackStatus::Parity);
    assert_eq!((t3.status, t3.data), (TrackStatus::Ok, "0123"));

    let [t1, _, _] = parse_ascii("%B41111^DOE");
    assert_eq!((t1.status, t1.data), (TrackStatus::EndSentinel, ""));
    let [_, t2, _] = parse_ascii(";41A1?");
    assert_eq!(t2.status, TrackStatus::Parity);
    let [t1, t2, t3] = parse_ascii("");
    assert!([t1, t2, t3].iter().all(|t| t.status == TrackStatus::Empty));
}

#[cfg(feature = "std")]
#[test]
fn status_converts_to_hal() {
    use pos_hal::TrackStatus as Hal;
    let pairs = [
        (TrackStatus::Ok, Hal::Ok),
        (TrackStatus::Empty, Hal::Empty),
        (TrackStatus::StartSentinel, Hal::StartSentinel),
        (TrackStatus::EndSentinel, Hal::EndSentinel),
        (TrackStatus::Parity, Hal::Parity),
        (TrackStatus::Lrc, Hal::Lrc),
    ];
    for (ours, hal) in pairs {
        assert_eq!(Hal::from(ours), hal);
        assert_eq!(ours.is_error(), hal.is_error());
    }
}

#[test]
fn bits_after_lrc_are_lrc_error() {
    for track in Track::ALL {
        let mut bits = stream(track, sample(track));
        bits.extend_from_slice(&[0, 0, 0, 1, 0, 0]);
        assert_eq!(decode(track, &bits), (TrackStatus::Lrc, String::new()));
    }
}
