//! ATR parsing, the values it implies, timings, Fi/Di selection and PPS.

use std::time::Duration;

use pos_ccid::atr::{
    AtrByte, AtrError, Checksum, Convention, InterfaceGroup, MAX_TIMEOUT, ParsedAtr, best_fi_di,
    bwt_for, clamp_timeout, cwt_for, data_rate_bps, di_value, etu_us, fi_value, fmax_khz,
    parse_pps, pps_request, pps_response_ok, scale_timeout, wwt_for,
};
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).expect("test hex")
}

/// Appends the TCK that makes the exclusive-or of T0..TCK zero.
fn with_tck(mut atr: Vec<u8>) -> Vec<u8> {
    let tck = atr[1..].iter().fold(0, |acc, b| acc ^ b);
    atr.push(tck);
    atr
}

const JCOP: &str = "3B E9 00 00 81 31 FE 45 4A 43 4F 50 34 31 56 32 32 A7";
const EMV_T0: &str = "3B 65 00 00 9C 11 01 01 03";
const YUBIKEY_NEO: &str = "3B 8C 80 01 59 75 62 69 6B 65 79 4E 45 4F 72 33 58";

// ---------------------------------------------------------------------------------------
// Real ATRs

#[test]
fn minimal_t0_atr() {
    let atr = ParsedAtr::parse(&hex("3B 02 14 50")).unwrap();
    assert_eq!(atr.convention, Convention::Direct);
    assert_eq!(atr.t0, 0x02);
    assert_eq!(atr.interface, vec![InterfaceGroup::default()]);
    assert_eq!(atr.historical, vec![0x14, 0x50]);
    assert_eq!(atr.tck, None);
    assert_eq!(atr.tck_valid, None);
    assert_eq!(atr.protocols(), vec![0]);
    assert_eq!(atr.first_protocol(), 0);
    assert_eq!(atr.fi_di(), (1, 1));
    assert_eq!(atr.f(), Some(372));
    assert_eq!(atr.d(), Some(1));
    assert_eq!(atr.extra_guard_time_n(), 0);
    assert_eq!(atr.wi(), 10);
    assert_eq!(atr.specific_mode(), None);
    assert_eq!(atr.bytes, hex("3B 02 14 50"));
}

#[test]
fn emv_t0_card() {
    let atr = ParsedAtr::parse(&hex(EMV_T0)).unwrap();
    assert_eq!(
        atr.interface,
        vec![InterfaceGroup {
            ta: None,
            tb: Some(0),
            tc: Some(0),
            td: None
        }]
    );
    assert_eq!(atr.historical, hex("9C 11 01 01 03"));
    assert_eq!(atr.protocols(), vec![0]);
    assert_eq!(atr.tck, None);
    assert_eq!(atr.extra_guard_time_n(), 0);
    assert_eq!(atr.wi(), 10);
    // WWT at 3.571 MHz (about 9600 bit/s): about one second.
    assert_eq!(atr.wwt(3_571), Duration::from_nanos(1_000_056_006));
    assert_eq!(wwt_for(10, 372, 3_571), atr.wwt(3_571));
    // At 4 MHz: 10 * 960 * 372 / 4 MHz = 892.8 ms.
    assert_eq!(atr.wwt(4_000), Duration::from_micros(892_800));
}

#[test]
fn jcop_t1_card() {
    let atr = ParsedAtr::parse(&hex(JCOP)).unwrap();
    assert_eq!(atr.convention, Convention::Direct);
    assert_eq!(atr.interface.len(), 3);
    assert_eq!(
        atr.interface[0],
        InterfaceGroup {
            ta: None,
            tb: Some(0),
            tc: Some(0),
            td: Some(0x81)
        }
    );
    assert_eq!(
        atr.interface[1],
        InterfaceGroup {
            ta: None,
            tb: None,
            tc: None,
            td: Some(0x31)
        }
    );
    assert_eq!(
        atr.interface[2],
        InterfaceGroup {
            ta: Some(0xFE),
            tb: Some(0x45),
            tc: None,
            td: None
        }
    );
    assert_eq!(atr.historical, b"JCOP41V22".to_vec());
    assert_eq!(atr.tck, Some(0xA7));
    assert_eq!(atr.tck_valid, Some(true));
    assert_eq!(atr.protocols(), vec![1]);
    assert_eq!(atr.first_protocol(), 1);
    assert!(atr.offers(1));
    assert!(!atr.offers(0));
    assert_eq!(atr.ifsc(), 254);
    assert_eq!(atr.bwi_cwi(), (4, 5));
    assert_eq!(atr.t1_checksum(), Checksum::Lrc);
    // BWT at 4 MHz: 11 etu (11 * 93 us) + 16 * 960 * 372 / 4 MHz = 1.023 ms + 1428.48 ms.
    assert_eq!(atr.bwt(4_000), Duration::from_micros(1_429_503));
    // CWT: (11 + 32) etu of 93 us.
    assert_eq!(atr.cwt(4_000), Duration::from_micros(3_999));
    // EMV margin: + 960 etu.
    assert_eq!(
        atr.bwt_emv(4_000),
        Duration::from_micros(1_429_503 + 89_280)
    );
}

#[test]
fn t0_and_t1_offered() {
    let atr = ParsedAtr::parse(&hex(YUBIKEY_NEO)).unwrap();
    assert_eq!(atr.protocols(), vec![0, 1]);
    assert_eq!(atr.first_protocol(), 0);
    assert_eq!(atr.tck, Some(0x58));
    assert_eq!(atr.historical, b"YubikeyNEOr3".to_vec());
    // No T=1 specific bytes: defaults.
    assert_eq!(atr.ifsc(), 32);
    assert_eq!(atr.bwi_cwi(), (4, 13));
}

#[test]
fn full_interface_bytes() {
    // TA1 = 96 (Fi 512, Di 32), TB1, TC1 = 02 (N), TD1 = T=0 with TA2 TC2 TD2,
    // TA2 = 01 (specific mode T=1, can change), TC2 = 20 (WI 32), TD2 = T=1 with TA3 TB3 TC3,
    // TA3 = 80 (IFSC 128), TB3 = 73 (BWI 7, CWI 3), TC3 = 01 (CRC).
    let atr = ParsedAtr::parse(&with_tck(hex("3B F1 96 00 02 D0 01 20 71 80 73 01 55"))).unwrap();
    assert_eq!(atr.fi_di(), (9, 6));
    assert_eq!(atr.f(), Some(512));
    assert_eq!(atr.d(), Some(32));
    assert_eq!(atr.fmax_khz(), Some(5_000));
    assert_eq!(atr.extra_guard_time_n(), 2);
    assert_eq!(atr.wi(), 32);
    assert_eq!(atr.specific_mode(), Some((1, true)));
    assert!(!atr.specific_mode_implicit());
    assert_eq!(atr.protocols(), vec![0, 1]);
    assert_eq!(atr.ifsc(), 128);
    assert_eq!(atr.bwi_cwi(), (7, 3));
    assert_eq!(atr.t1_checksum(), Checksum::Crc);
    assert_eq!(atr.historical, vec![0x55]);
    // WWT = 32 * 960 * 512 / 4 MHz = 3.93216 s.
    assert_eq!(atr.wwt(4_000), Duration::from_micros(3_932_160));
    // BWT = 11 etu (512 / 32 / 4 MHz = 4 us) + 128 * 960 * 372 / 4 MHz = 44 us + 11.42784 s:
    // clamped to 10 s.
    assert_eq!(atr.bwt(4_000), MAX_TIMEOUT);
    // At 20 MHz: 8.8 us + 2.285568 s.
    assert_eq!(atr.bwt(20_000), Duration::from_nanos(2_285_576_800));
}

#[test]
fn specific_mode_unable_to_change_and_implicit() {
    let atr = ParsedAtr::parse(&with_tck(hex("3B 80 90 91 01"))).unwrap();
    assert_eq!(atr.specific_mode(), Some((1, false)));
    assert!(atr.specific_mode_implicit());
    assert_eq!(atr.protocols(), vec![0, 1]);
}

#[test]
fn first_t1_bytes_win_and_global_bytes_are_not_t1() {
    // TD1 = T=1 with TA2 (global: specific mode), TD2 = T=1 with TA3 (IFSC 0x11), TD3 = T=1
    // with TA4 (another IFSC, ignored).
    let atr = ParsedAtr::parse(&with_tck(hex("3B 80 91 81 91 11 11 FE"))).unwrap();
    assert_eq!(atr.specific_mode(), Some((1, false)));
    assert_eq!(atr.ifsc(), 0x11);
    // TD1 = T=1 only: TA2 is not the IFSC.
    let atr = ParsedAtr::parse(&with_tck(hex("3B 80 11 40"))).unwrap();
    assert_eq!(atr.ifsc(), 32);
    // Reserved IFSC values fall back to 32.
    let atr = ParsedAtr::parse(&with_tck(hex("3B 80 81 11 FF"))).unwrap();
    assert_eq!(atr.ifsc(), 32);
}

#[test]
fn wi_zero_is_default() {
    let atr = ParsedAtr::parse(&hex("3B 80 40 00")).unwrap();
    assert_eq!(atr.wi(), 10);
}

#[test]
fn inverse_convention() {
    let atr = ParsedAtr::parse(&hex("3F 65 25 00 2C 09 69 90 00")).unwrap();
    assert_eq!(atr.convention, Convention::Inverse);
    assert_eq!(atr.historical, hex("2C 09 69 90 00"));
    assert_eq!(atr.interface[0].tb, Some(0x25));
    assert_eq!(atr.interface[0].tc, Some(0x00));
}

#[test]
fn t0_only_with_a_spurious_tck() {
    let atr = ParsedAtr::parse(&hex("3B 02 14 50 44")).unwrap();
    assert_eq!(atr.tck, Some(0x44));
    assert_eq!(atr.tck_valid, Some(false));
    let atr = ParsedAtr::parse(&hex("3B 02 14 50 46")).unwrap();
    assert_eq!(atr.tck_valid, Some(true));
}

// ---------------------------------------------------------------------------------------
// Errors

#[test]
fn errors() {
    assert_eq!(ParsedAtr::parse(&[]), Err(AtrError::Empty));
    assert_eq!(ParsedAtr::parse(&hex("3A 00")), Err(AtrError::BadTs(0x3A)));
    assert_eq!(ParsedAtr::parse(&hex("03 00")), Err(AtrError::BadTs(0x03)));
    assert_eq!(ParsedAtr::parse(&[0x3B; 34]), Err(AtrError::TooLong(34)));
    assert_eq!(
        ParsedAtr::parse(&hex("3B 02 14 50 00 00")),
        Err(AtrError::TrailingBytes { extra: 2 })
    );
    assert_eq!(
        ParsedAtr::parse(&hex(&JCOP.replace("A7", "A6"))),
        Err(AtrError::TckMismatch {
            found: 0xA6,
            expected: 0xA7
        })
    );
    let lenient = ParsedAtr::parse_lenient(&hex(&JCOP.replace("A7", "A6"))).unwrap();
    assert_eq!(lenient.tck_valid, Some(false));
    // Missing TCK.
    assert_eq!(
        ParsedAtr::parse(&hex(&JCOP.replace(" A7", ""))),
        Err(AtrError::Truncated {
            expected: AtrByte::Tck,
            len: 17
        })
    );
}

#[test]
fn truncated_at_every_position() {
    let atr = hex(JCOP);
    let roles = [
        None,
        Some(AtrByte::T0),
        Some(AtrByte::Tb(1)),
        Some(AtrByte::Tc(1)),
        Some(AtrByte::Td(1)),
        Some(AtrByte::Td(2)),
        Some(AtrByte::Ta(3)),
        Some(AtrByte::Tb(3)),
        Some(AtrByte::Historical(1)),
        Some(AtrByte::Historical(2)),
        Some(AtrByte::Historical(3)),
        Some(AtrByte::Historical(4)),
        Some(AtrByte::Historical(5)),
        Some(AtrByte::Historical(6)),
        Some(AtrByte::Historical(7)),
        Some(AtrByte::Historical(8)),
        Some(AtrByte::Historical(9)),
        Some(AtrByte::Tck),
    ];
    assert_eq!(roles.len(), atr.len());
    assert_eq!(ParsedAtr::parse(&atr[..0]), Err(AtrError::Empty));
    for len in 1..atr.len() {
        let expected = roles[len].unwrap();
        assert_eq!(
            ParsedAtr::parse(&atr[..len]),
            Err(AtrError::Truncated { expected, len }),
            "prefix of {len} bytes"
        );
    }
    let err = ParsedAtr::parse(&atr[..6]).unwrap_err();
    assert_eq!(err.to_string(), "ATR truncated after 6 bytes: TA3 expected");
}

#[test]
fn truncated_historical_bytes_of_t0_card() {
    let atr = hex(EMV_T0);
    assert_eq!(
        ParsedAtr::parse(&atr[..7]),
        Err(AtrError::Truncated {
            expected: AtrByte::Historical(4),
            len: 7
        })
    );
}

// ---------------------------------------------------------------------------------------
// Tables and timings

#[test]
fn fi_di_tables() {
    let fi: Vec<Option<u16>> = (0..16).map(fi_value).collect();
    assert_eq!(
        fi,
        vec![
            Some(372),
            Some(372),
            Some(558),
            Some(744),
            Some(1116),
            Some(1488),
            Some(1860),
            None,
            None,
            Some(512),
            Some(768),
            Some(1024),
            Some(1536),
            Some(2048),
            None,
            None,
        ]
    );
    let fmax: Vec<Option<u32>> = (0..16).map(fmax_khz).collect();
    assert_eq!(
        fmax,
        vec![
            Some(4_000),
            Some(5_000),
            Some(6_000),
            Some(8_000),
            Some(12_000),
            Some(16_000),
            Some(20_000),
            None,
            None,
            Some(5_000),
            Some(7_500),
            Some(10_000),
            Some(15_000),
            Some(20_000),
            None,
            None,
        ]
    );
    let di: Vec<Option<u8>> = (0..16).map(di_value).collect();
    assert_eq!(
        di,
        vec![
            None,
            Some(1),
            Some(2),
            Some(4),
            Some(8),
            Some(16),
            Some(32),
            Some(64),
            Some(12),
            Some(20),
            None,
            None,
            None,
            None,
            None,
            None,
        ]
    );
    // RFU in an ATR.
    let atr = ParsedAtr::parse(&hex("3B 10 7A")).unwrap();
    assert_eq!(atr.fi_di(), (7, 10));
    assert_eq!(atr.f(), None);
    assert_eq!(atr.d(), None);
    // Timings fall back to the defaults.
    assert_eq!(atr.wwt(4_000), Duration::from_micros(892_800));
}

#[test]
fn etu_values() {
    assert_eq!(etu_us(372, 1, 4_000), 93.0);
    assert!((etu_us(372, 1, 3_571) - 104.172).abs() < 0.001);
    assert_eq!(etu_us(512, 32, 4_000), 4.0);
    assert!(etu_us(372, 0, 4_000).is_infinite());
    assert!(etu_us(372, 1, 0).is_infinite());
}

#[test]
fn timeouts_are_clamped() {
    assert_eq!(bwt_for(9, 372, 1, 1_000), MAX_TIMEOUT);
    assert_eq!(bwt_for(15, 372, 1, 4_000), MAX_TIMEOUT);
    assert_eq!(wwt_for(255, 2048, 1_000), MAX_TIMEOUT);
    assert_eq!(cwt_for(15, 2048, 1, 1), MAX_TIMEOUT);
    assert_eq!(wwt_for(10, 372, 0), MAX_TIMEOUT);
    assert_eq!(bwt_for(4, 372, 1, 0), MAX_TIMEOUT);
    assert_eq!(clamp_timeout(Duration::from_secs(3600)), MAX_TIMEOUT);
    let bwt = bwt_for(4, 372, 1, 4_000);
    assert_eq!(bwt, Duration::from_micros(1_429_503));
    assert_eq!(scale_timeout(bwt, 1), bwt);
    assert_eq!(scale_timeout(bwt, 0), bwt);
    assert_eq!(scale_timeout(bwt, 3), bwt * 3);
    assert_eq!(scale_timeout(bwt, 255), MAX_TIMEOUT);
    assert!(MAX_TIMEOUT <= Duration::from_secs(60));
    // BWI 0 at 5 MHz: 11 etu + 960 * 372 / 5 MHz.
    assert_eq!(
        bwt_for(0, 372, 1, 5_000),
        Duration::from_nanos(818_400 + 71_424_000)
    );
    assert_eq!(cwt_for(0, 372, 1, 4_000), Duration::from_micros(12 * 93));
}

proptest! {
    #[test]
    fn computed_timeouts_never_exceed_max(
        wi in any::<u8>(), bwi in any::<u8>(), cwi in any::<u8>(),
        fi in any::<u16>(), d in any::<u8>(), clock in any::<u32>(), wtx in any::<u8>(),
    ) {
        prop_assert!(wwt_for(wi, fi, clock) <= MAX_TIMEOUT);
        prop_assert!(bwt_for(bwi, fi, d, clock) <= MAX_TIMEOUT);
        prop_assert!(cwt_for(cwi, fi, d, clock) <= MAX_TIMEOUT);
        prop_assert!(scale_timeout(bwt_for(bwi, fi, d, clock), wtx) <= MAX_TIMEOUT);
    }

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        if let Ok(atr) = ParsedAtr::parse(&bytes) {
            prop_assert_eq!(&atr.bytes, &bytes);
            prop_assert!(!atr.protocols().is_empty());
            prop_assert!((1..=254).contains(&atr.ifsc()));
            prop_assert!(atr.wwt(4_000) <= MAX_TIMEOUT);
            prop_assert!(atr.bwt(4_000) <= MAX_TIMEOUT);
            prop_assert!(atr.cwt(1) <= MAX_TIMEOUT);
            let _ = (atr.fi_di(), atr.f(), atr.d(), atr.wi(), atr.bwi_cwi(), atr.t1_checksum());
            let _ = (atr.specific_mode(), atr.extra_guard_time_n(), atr.first_protocol());
        }
        let _ = ParsedAtr::parse_lenient(&bytes);
    }

    #[test]
    fn parse_valid_structures(
        ts in prop_oneof![Just(0x3Bu8), Just(0x3F)],
        groups in proptest::collection::vec((any::<Option<u8>>(), any::<Option<u8>>(), any::<Option<u8>>(), 0u8..16), 1..4),
        historical in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        // Build an ATR from its parts, then parse it back.
        let mut bytes = vec![ts, 0];
        let indicator = |g: &(Option<u8>, Option<u8>, Option<u8>, u8), has_td: bool| {
            u8::from(g.0.is_some()) | u8::from(g.1.is_some()) << 1 | u8::from(g.2.is_some()) << 2
                | u8::from(has_td) << 3
        };
        let mut tck_needed = false;
        for (index, group) in groups.iter().enumerate() {
            let has_td = index + 1 < groups.len();
            let y = indicator(group, has_td);
            if index == 0 {
                bytes[1] = (y << 4) | historical.len() as u8;
            }
            bytes.extend(group.0);
            bytes.extend(group.1);
            bytes.extend(group.2);
            if has_td {
                let next = &groups[index + 1];
                let t = next.3;
                tck_needed |= t != 0;
                bytes.push((indicator(next, index + 2 < groups.len()) << 4) | t);
            }
        }
        bytes.extend(&historical);
        if tck_needed {
            bytes = with_tck(bytes);
        }
        if bytes.len() <= 33 {
            let atr = ParsedAtr::parse(&bytes).unwrap();
            prop_assert_eq!(atr.interface.len(), groups.len());
            prop_assert_eq!(&atr.historical, &historical);
            prop_assert_eq!(atr.tck.is_some(), tck_needed);
        } else {
            prop_assert_eq!(ParsedAtr::parse(&bytes), Err(AtrError::TooLong(bytes.len())));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Fi/Di selection and PPS

#[test]
fn best_fi_di_choices() {
    assert_eq!(data_rate_bps(512, 32, 4_000), 250_000);
    assert_eq!(data_rate_bps(372, 1, 4_000), 10_752);
    // The reader can do the card's rate.
    assert_eq!(best_fi_di((9, 6), 344_086, 4_000), (9, 6));
    // The reader is slower: the largest power-of-two D that fits (D 8: 62 500 bit/s).
    assert_eq!(best_fi_di((9, 6), 115_200, 4_000), (9, 4));
    // A reader slower than the default rate: the card's Fi with D 1 (7 812 bit/s) fits.
    assert_eq!(best_fi_di((9, 6), 9_600, 4_000), (9, 1));
    // Nothing fits: defaults.
    assert_eq!(best_fi_di((9, 6), 5_000, 4_000), (1, 1));
    // Typical EMV TA1 = 13 (F 372, D 4): 43 010 bit/s.
    assert_eq!(best_fi_di((1, 3), 344_086, 4_000), (1, 3));
    assert_eq!(best_fi_di((1, 3), 40_000, 4_000), (1, 2));
    // D = 12 is offered only when the card names it; below it, powers of two.
    assert_eq!(best_fi_di((1, 8), 200_000, 4_000), (1, 8));
    assert_eq!(best_fi_di((1, 8), 100_000, 4_000), (1, 4));
    // Clock above the card's fmax for its Fi: defaults.
    assert_eq!(best_fi_di((0, 3), 344_086, 4_800), (1, 1));
    assert_eq!(best_fi_di((0, 3), 344_086, 4_000), (0, 3));
    // Reserved indices: defaults.
    assert_eq!(best_fi_di((7, 3), 344_086, 4_000), (1, 1));
    assert_eq!(best_fi_di((1, 0), 344_086, 4_000), (1, 1));
    assert_eq!(best_fi_di((1, 1), 344_086, 4_000), (1, 1));
    // A slow Fi with D 1 is slower than the default: keep the default.
    assert_eq!(best_fi_di((13, 1), 344_086, 4_000), (1, 1));
    // A reader with an unknown (zero) maximum: defaults.
    assert_eq!(best_fi_di((9, 6), 0, 4_000), (1, 1));
}

#[test]
fn pps_bytes_and_pck() {
    assert_eq!(pps_request(1, (9, 6)), hex("FF 11 96 78"));
    assert_eq!(pps_request(0, (1, 3)), hex("FF 10 13 FC"));
    assert_eq!(pps_request(1, (1, 1)), hex("FF 11 11 FF"));
    for request in [pps_request(0, (1, 3)), pps_request(1, (9, 6))] {
        assert_eq!(request.iter().fold(0, |acc, b| acc ^ b), 0);
    }
    let pps = parse_pps(&hex("FF 11 96 78")).unwrap();
    assert_eq!(pps.protocol, 1);
    assert_eq!(pps.pps1, Some(0x96));
    assert_eq!(pps.pps2, None);
    assert_eq!(parse_pps(&hex("FF 11 96 77")), None);
    assert_eq!(parse_pps(&hex("FF 11 96")), None);
    assert_eq!(parse_pps(&hex("FE 11 96 79")), None);
    assert_eq!(parse_pps(&[]), None);
}

#[test]
fn pps_response_checks() {
    let request = pps_request(1, (9, 6));
    assert!(pps_response_ok(&request, &request));
    // The card keeps the defaults (no PPS1 in the response).
    assert!(!pps_response_ok(&request, &hex("FF 01 FE")));
    assert!(pps_response_ok(&pps_request(1, (1, 1)), &hex("FF 01 FE")));
    // Another protocol, another PPS1, broken PCK, garbage.
    assert!(!pps_response_ok(&request, &pps_request(0, (9, 6))));
    assert!(!pps_response_ok(&request, &pps_request(1, (9, 5))));
    assert!(!pps_response_ok(&request, &hex("FF 11 96 00")));
    assert!(!pps_response_ok(&request, &hex("00")));
    assert!(!pps_response_ok(&request, &[]));
    assert!(!pps_response_ok(&[], &request));
    // PPS2 echoed is fine; another PPS2 is not.
    let with_pps2 = with_pck(hex("FF 31 96 05"));
    assert!(pps_response_ok(&with_pps2, &with_pps2));
    assert!(pps_response_ok(&with_pps2, &request));
    assert!(!pps_response_ok(&with_pps2, &with_pck(hex("FF 31 96 06"))));
}

fn with_pck(mut pps: Vec<u8>) -> Vec<u8> {
    let pck = pps.iter().fold(0, |acc, b| acc ^ b);
    pps.push(pck);
    pps
}
