//! DLE EOT n = 1..4: every bit from the byte values of the ESC/POS reference, fixed-bit
//! rejection, and encode/parse round trips.

use pos_escpos::status::{
    REAL_TIME_PATTERN, StatusError, StatusRequest, encode_real_time, is_real_time_byte,
    parse_real_time, parse_real_time_all, real_time_all_bytes,
};
use pos_hal::{Fault, FaultKind, PrinterConditions as C};
use proptest::prelude::*;

/// Drawer polarity used where the test is not about the drawer: open when pin 3 is high.
const HIGH_OPEN: bool = true;

fn rt(request: StatusRequest, byte: u8) -> C {
    match parse_real_time(request, byte, HIGH_OPEN) {
        Ok(c) => c,
        Err(e) => panic!("{request} {byte:#04x}: {e}"),
    }
}

#[test]
fn status_request_bytes_are_dle_eot_n() {
    assert_eq!(StatusRequest::Printer.bytes(), [0x10, 0x04, 0x01]);
    assert_eq!(StatusRequest::OfflineCause.bytes(), [0x10, 0x04, 0x02]);
    assert_eq!(StatusRequest::ErrorCause.bytes(), [0x10, 0x04, 0x03]);
    assert_eq!(StatusRequest::RollPaper.bytes(), [0x10, 0x04, 0x04]);
    assert_eq!(
        real_time_all_bytes(),
        vec![
            0x10, 0x04, 0x01, 0x10, 0x04, 0x02, 0x10, 0x04, 0x03, 0x10, 0x04, 0x04
        ]
    );
    for request in StatusRequest::ALL {
        assert_eq!(StatusRequest::from_n(request.n()), Some(request));
    }
    assert_eq!(StatusRequest::from_n(0), None);
    assert_eq!(StatusRequest::from_n(5), None);
}

#[test]
fn status_dle_eot_1_printer_every_bit() {
    use StatusRequest::Printer;
    // 0x12 = 0001_0010: only the fixed bits; pin 3 low, online.
    assert_eq!(rt(Printer, 0x12), C::empty());
    // bit 2 (0x04): drawer kick-out connector pin 3 high.
    assert_eq!(rt(Printer, 0x16), C::DRAWER_OPEN);
    // bit 3 (0x08): offline.
    assert_eq!(rt(Printer, 0x1A), C::OFFLINE);
    assert_eq!(rt(Printer, 0x1E), C::OFFLINE | C::DRAWER_OPEN);
    // bit 5 (0x20): waiting for online recovery.
    assert_eq!(rt(Printer, 0x32), C::WAITING_ONLINE);
    // bit 6 (0x40): paper feed button pressed.
    assert_eq!(rt(Printer, 0x52), C::FEED_BUTTON);
    // Everything: 0x7E.
    assert_eq!(
        rt(Printer, 0x7E),
        C::DRAWER_OPEN | C::OFFLINE | C::WAITING_ONLINE | C::FEED_BUTTON
    );
}

#[test]
fn status_dle_eot_1_drawer_polarity() {
    use StatusRequest::Printer;
    // A drawer whose switch pulls pin 3 low when open: 0x12 (pin 3 low) is open, 0x16 closed.
    assert_eq!(parse_real_time(Printer, 0x12, false), Ok(C::DRAWER_OPEN));
    assert_eq!(parse_real_time(Printer, 0x16, false), Ok(C::empty()));
    assert_eq!(
        parse_real_time(Printer, 0x1A, false),
        Ok(C::OFFLINE | C::DRAWER_OPEN)
    );
    assert_eq!(parse_real_time(Printer, 0x1E, false), Ok(C::OFFLINE));
    // Only DLE EOT 1 carries pin 3: bit 2 of n = 2..4 is something else, and no drawer state
    // is made up from those replies whatever the polarity.
    for polarity in [true, false] {
        assert_eq!(
            parse_real_time(StatusRequest::OfflineCause, 0x12, polarity),
            Ok(C::empty())
        );
        assert_eq!(
            parse_real_time(StatusRequest::ErrorCause, 0x16, polarity),
            Ok(C::RECOVERABLE)
        );
        assert_eq!(
            parse_real_time(StatusRequest::RollPaper, 0x12, polarity),
            Ok(C::empty())
        );
    }
}

#[test]
fn status_dle_eot_2_offline_cause_every_bit() {
    use StatusRequest::OfflineCause;
    assert_eq!(rt(OfflineCause, 0x12), C::empty());
    // bit 2: cover open.
    assert_eq!(rt(OfflineCause, 0x16), C::COVER_OPEN);
    // bit 3: paper being fed by the feed button.
    assert_eq!(rt(OfflineCause, 0x1A), C::FEED_BUTTON);
    // bit 5: printing stopped by paper end.
    assert_eq!(rt(OfflineCause, 0x32), C::PAPER_END_STOP);
    // bit 6: error occurred.
    assert_eq!(rt(OfflineCause, 0x52), C::ERROR);
    assert_eq!(
        rt(OfflineCause, 0x7E),
        C::COVER_OPEN | C::FEED_BUTTON | C::PAPER_END_STOP | C::ERROR
    );
    // Cover open and out of paper together: 0x36.
    assert_eq!(rt(OfflineCause, 0x36), C::COVER_OPEN | C::PAPER_END_STOP);
}

#[test]
fn status_dle_eot_3_error_cause_every_bit() {
    use StatusRequest::ErrorCause;
    assert_eq!(rt(ErrorCause, 0x12), C::empty());
    // bit 2: recoverable error.
    assert_eq!(rt(ErrorCause, 0x16), C::RECOVERABLE);
    // bit 3: autocutter error.
    assert_eq!(rt(ErrorCause, 0x1A), C::CUTTER_JAM);
    // bit 5: unrecoverable error.
    assert_eq!(rt(ErrorCause, 0x32), C::UNRECOVERABLE);
    // bit 6: automatically recoverable error.
    assert_eq!(rt(ErrorCause, 0x52), C::AUTO_RECOVERABLE);
    assert_eq!(
        rt(ErrorCause, 0x7E),
        C::RECOVERABLE | C::CUTTER_JAM | C::UNRECOVERABLE | C::AUTO_RECOVERABLE
    );
}

#[test]
fn status_dle_eot_4_roll_paper_every_bit() {
    use StatusRequest::RollPaper;
    assert_eq!(rt(RollPaper, 0x12), C::empty());
    // bits 2 and 3 (0x0C): roll paper near end.
    assert_eq!(rt(RollPaper, 0x1E), C::PAPER_NEAR_END);
    // bits 5 and 6 (0x60): roll paper not present.
    assert_eq!(rt(RollPaper, 0x72), C::PAPER_OUT);
    // Out of paper usually reads both: 0x7E.
    assert_eq!(rt(RollPaper, 0x7E), C::PAPER_NEAR_END | C::PAPER_OUT);
    // One bit of a pair alone still reports the condition (never ignore a paper sensor).
    assert_eq!(rt(RollPaper, 0x16), C::PAPER_NEAR_END);
    assert_eq!(rt(RollPaper, 0x1A), C::PAPER_NEAR_END);
    assert_eq!(rt(RollPaper, 0x32), C::PAPER_OUT);
    assert_eq!(rt(RollPaper, 0x52), C::PAPER_OUT);
}

#[test]
fn status_replies_of_an_emulated_tm_printer() {
    // The replies to 10 04 01..04 the emupos emulator documents for each fault (drawer
    // sensor low), read back into conditions.
    let cases: [([u8; 4], C); 5] = [
        ([0x12, 0x12, 0x12, 0x12], C::empty()),
        ([0x12, 0x12, 0x12, 0x1E], C::PAPER_NEAR_END),
        (
            [0x1A, 0x32, 0x12, 0x7E],
            C::OFFLINE | C::PAPER_END_STOP | C::PAPER_NEAR_END | C::PAPER_OUT,
        ),
        ([0x1A, 0x16, 0x12, 0x12], C::OFFLINE | C::COVER_OPEN),
        ([0x1A, 0x12, 0x12, 0x12], C::OFFLINE),
    ];
    for (replies, expected) in cases {
        assert_eq!(parse_real_time_all(replies, HIGH_OPEN), Ok(expected));
    }
    let paper_out = C::OFFLINE | C::PAPER_END_STOP | C::PAPER_NEAR_END | C::PAPER_OUT;
    assert_eq!(paper_out.blocking_fault(), Some(FaultKind::PaperOut));
    assert_eq!(
        parse_real_time_all([0x1A, 0x16, 0x12, 0x12], HIGH_OPEN).map(|c| c.blocking_fault()),
        Ok(Some(FaultKind::CoverOpen))
    );
    // A bad byte anywhere fails the whole set.
    assert!(parse_real_time_all([0x12, 0x12, 0x00, 0x12], HIGH_OPEN).is_err());
}

#[test]
fn status_fixed_bits_are_rejected() {
    for request in StatusRequest::ALL {
        for byte in [
            0x00u8, 0xFF, 0x13, 0x10, 0x14, 0x92, 0x02, 0x11, 0x37, 0x5F, 0x3D, 0x80,
        ] {
            let Err(err) = parse_real_time(request, byte, HIGH_OPEN) else {
                panic!("{request} must reject {byte:#04x}");
            };
            assert!(
                matches!(err, StatusError::FixedBits { byte: b, expected_pattern, .. }
                    if b == byte && expected_pattern == REAL_TIME_PATTERN),
                "{err:?}"
            );
            assert_eq!(err.kind(), FaultKind::Protocol);
            let text = err.to_string();
            assert!(text.contains("0xx1xx10"), "{text}");
            assert!(text.contains(&format!("DLE EOT {}", request.n())), "{text}");
        }
    }
}

#[test]
fn status_exactly_the_sixteen_pattern_bytes_parse() {
    for request in StatusRequest::ALL {
        let accepted: Vec<u8> = (0..=255u8)
            .filter(|b| parse_real_time(request, *b, HIGH_OPEN).is_ok())
            .collect();
        // Bits 7, 4, 1, 0 fixed; bits 2, 3, 5, 6 free: 16 bytes.
        assert_eq!(accepted.len(), 16, "{request}");
        for b in accepted {
            assert_eq!(b & 0b1001_0011, 0b0001_0010);
            assert!(is_real_time_byte(b));
        }
    }
}

#[test]
fn status_every_pattern_byte_re_encodes_to_itself() {
    for request in StatusRequest::ALL {
        for polarity in [true, false] {
            for byte in (0..=255u8).filter(|b| is_real_time_byte(*b)) {
                let c = parse_real_time(request, byte, polarity).unwrap();
                let again = encode_real_time(request, c, polarity);
                if request == StatusRequest::RollPaper {
                    // Pairs are re-encoded whole.
                    let widen = |b: u8| {
                        let mut w = b;
                        if b & 0x0C != 0 {
                            w |= 0x0C;
                        }
                        if b & 0x60 != 0 {
                            w |= 0x60;
                        }
                        w
                    };
                    assert_eq!(again, widen(byte), "{request} {byte:#04x}");
                } else {
                    assert_eq!(again, byte, "{request} {byte:#04x} polarity {polarity}");
                }
            }
        }
    }
}

#[test]
fn status_encode_ignores_what_a_request_cannot_say() {
    assert_eq!(
        encode_real_time(
            StatusRequest::ErrorCause,
            C::PAPER_OUT | C::OFFLINE,
            HIGH_OPEN
        ),
        0x12
    );
    assert_eq!(
        encode_real_time(StatusRequest::RollPaper, C::PAPER_OUT, HIGH_OPEN),
        0x72
    );
    assert_eq!(
        encode_real_time(StatusRequest::Printer, C::empty(), HIGH_OPEN),
        0x12
    );
    assert_eq!(
        encode_real_time(StatusRequest::Printer, C::empty(), false),
        0x16
    );
    // FEED_BUTTON is in both n = 1 (button pressed) and n = 2 (paper fed by it).
    assert_eq!(
        encode_real_time(StatusRequest::Printer, C::FEED_BUTTON, HIGH_OPEN),
        0x52
    );
    assert_eq!(
        encode_real_time(StatusRequest::OfflineCause, C::FEED_BUTTON, HIGH_OPEN),
        0x1A
    );
}

#[test]
fn status_requests_together_name_every_condition() {
    let all = StatusRequest::ALL
        .iter()
        .fold(C::empty(), |acc, r| acc | r.conditions());
    assert_eq!(all, C::all(), "some condition has no DLE EOT bit");
}

proptest! {
    #[test]
    fn status_real_time_round_trip(bits in any::<u32>(), polarity in any::<bool>()) {
        let conditions = C::from_bits_truncate(bits);
        for request in StatusRequest::ALL {
            let byte = encode_real_time(request, conditions, polarity);
            prop_assert!(is_real_time_byte(byte));
            prop_assert_eq!(
                parse_real_time(request, byte, polarity),
                Ok(conditions & request.conditions())
            );
        }
    }

    #[test]
    fn status_real_time_never_panics(byte in any::<u8>(), n in 1u8..=4, polarity in any::<bool>()) {
        let request = StatusRequest::from_n(n).unwrap();
        let parsed = parse_real_time(request, byte, polarity);
        prop_assert_eq!(parsed.is_ok(), is_real_time_byte(byte));
        if let Ok(c) = parsed {
            prop_assert!(request.conditions().contains(c));
        }
    }
}
