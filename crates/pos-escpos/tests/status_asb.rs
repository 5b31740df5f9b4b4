//! Automatic Status Back (GS a): enabling, every bit of the 4-byte block from the reference,
//! fixed-bit rejection and round trips.

use pos_escpos::status::{
    ASB_CONDITIONS, ASB_FIRST_PATTERN, ASB_REST_PATTERN, AsbEnable, StatusError, asb_enable,
    encode_asb, initialize_keeping_asb, is_asb_first_byte, is_asb_rest_byte, parse_asb,
};
use pos_hal::{Fault, FaultKind, PrinterConditions as C};
use proptest::prelude::*;

const HIGH_OPEN: bool = true;

fn asb(block: [u8; 4]) -> C {
    match parse_asb(block, HIGH_OPEN) {
        Ok(c) => c,
        Err(e) => panic!("{block:02x?}: {e}"),
    }
}

#[test]
fn status_asb_enable_bytes() {
    assert_eq!(asb_enable(AsbEnable::ALL), vec![0x1D, 0x61, 0x0F]);
    assert_eq!(asb_enable(AsbEnable::NONE), vec![0x1D, 0x61, 0x00]);
    assert_eq!(asb_enable(AsbEnable::DRAWER), vec![0x1D, 0x61, 0x01]);
    assert_eq!(asb_enable(AsbEnable::ONLINE), vec![0x1D, 0x61, 0x02]);
    assert_eq!(asb_enable(AsbEnable::ERROR), vec![0x1D, 0x61, 0x04]);
    assert_eq!(asb_enable(AsbEnable::ROLL_PAPER), vec![0x1D, 0x61, 0x08]);
    let online_and_paper = AsbEnable::ONLINE | AsbEnable::ROLL_PAPER;
    assert_eq!(online_and_paper.bits(), 0x0A);
    assert!(online_and_paper.contains(AsbEnable::ROLL_PAPER));
    assert!(!online_and_paper.contains(AsbEnable::DRAWER));
    assert!(AsbEnable::NONE.is_off());
    assert_eq!(
        AsbEnable::DRAWER | AsbEnable::ONLINE | AsbEnable::ERROR | AsbEnable::ROLL_PAPER,
        AsbEnable::ALL
    );
    assert_eq!(AsbEnable::from_bits(0xFF).bits(), 0xFF);
}

#[test]
fn status_asb_is_re_enabled_after_esc_at() {
    // ESC @ turns ASB off; the initialize sequence sends GS a n right after it.
    assert_eq!(
        initialize_keeping_asb(AsbEnable::ALL),
        vec![0x1B, 0x40, 0x1D, 0x61, 0x0F]
    );
    let bytes = initialize_keeping_asb(AsbEnable::ONLINE);
    let esc_at = bytes.windows(2).position(|w| w == [0x1B, 0x40]);
    let gs_a = bytes.windows(2).position(|w| w == [0x1D, 0x61]);
    assert!(matches!((esc_at, gs_a), (Some(e), Some(g)) if e < g));
}

#[test]
fn status_asb_first_byte_every_bit() {
    assert_eq!(asb([0x10, 0x00, 0x00, 0x00]), C::empty());
    // bit 2: drawer kick-out connector pin 3 high.
    assert_eq!(asb([0x14, 0x00, 0x00, 0x00]), C::DRAWER_OPEN);
    // bit 3: offline.
    assert_eq!(asb([0x18, 0x00, 0x00, 0x00]), C::OFFLINE);
    // bit 5: cover open (a printer with the cover open is also offline: 0x38).
    assert_eq!(asb([0x30, 0x00, 0x00, 0x00]), C::COVER_OPEN);
    assert_eq!(asb([0x38, 0x00, 0x00, 0x00]), C::OFFLINE | C::COVER_OPEN);
    // bit 6: paper being fed by the feed button.
    assert_eq!(asb([0x50, 0x00, 0x00, 0x00]), C::FEED_BUTTON);
}

#[test]
fn status_asb_second_byte_every_bit() {
    // bit 0: waiting for online recovery.
    assert_eq!(asb([0x10, 0x01, 0x00, 0x00]), C::WAITING_ONLINE);
    // bit 1: paper feed button pushed.
    assert_eq!(asb([0x10, 0x02, 0x00, 0x00]), C::FEED_BUTTON);
    // bit 2: recoverable (mechanical) error.
    assert_eq!(asb([0x10, 0x04, 0x00, 0x00]), C::RECOVERABLE);
    // bit 3: autocutter error.
    assert_eq!(asb([0x10, 0x08, 0x00, 0x00]), C::CUTTER_JAM);
    // bit 5: unrecoverable error.
    assert_eq!(asb([0x10, 0x20, 0x00, 0x00]), C::UNRECOVERABLE);
    // bit 6: automatically recoverable error.
    assert_eq!(asb([0x10, 0x40, 0x00, 0x00]), C::AUTO_RECOVERABLE);
}

#[test]
fn status_asb_third_byte_every_bit() {
    // bits 0-1: roll paper near end.
    assert_eq!(asb([0x10, 0x00, 0x03, 0x00]), C::PAPER_NEAR_END);
    // bits 2-3: roll paper not present.
    assert_eq!(asb([0x10, 0x00, 0x0C, 0x00]), C::PAPER_OUT);
    // Out of paper as emulated TM printers send it: 18 00 0F 00.
    assert_eq!(
        asb([0x18, 0x00, 0x0F, 0x00]),
        C::OFFLINE | C::PAPER_NEAR_END | C::PAPER_OUT
    );
    // Either bit of a pair reports the condition.
    assert_eq!(asb([0x10, 0x00, 0x01, 0x00]), C::PAPER_NEAR_END);
    assert_eq!(asb([0x10, 0x00, 0x02, 0x00]), C::PAPER_NEAR_END);
    assert_eq!(asb([0x10, 0x00, 0x04, 0x00]), C::PAPER_OUT);
    assert_eq!(asb([0x10, 0x00, 0x08, 0x00]), C::PAPER_OUT);
    // Bits 5-6 are reserved.
    assert_eq!(asb([0x10, 0x00, 0x60, 0x00]), C::empty());
}

#[test]
fn status_asb_fourth_byte_is_reserved() {
    for byte in (0..=255u8).filter(|b| is_asb_rest_byte(*b)) {
        assert_eq!(asb([0x10, 0x00, 0x00, byte]), C::empty(), "{byte:#04x}");
    }
}

#[test]
fn status_asb_drawer_polarity() {
    assert_eq!(parse_asb([0x10, 0, 0, 0], false), Ok(C::DRAWER_OPEN));
    assert_eq!(parse_asb([0x14, 0, 0, 0], false), Ok(C::empty()));
    assert_eq!(encode_asb(C::DRAWER_OPEN, true), [0x14, 0, 0, 0]);
    assert_eq!(encode_asb(C::DRAWER_OPEN, false), [0x10, 0, 0, 0]);
    assert_eq!(encode_asb(C::empty(), false), [0x14, 0, 0, 0]);
}

#[test]
fn status_asb_encode_values() {
    assert_eq!(encode_asb(C::empty(), HIGH_OPEN), [0x10, 0x00, 0x00, 0x00]);
    assert_eq!(
        encode_asb(C::OFFLINE | C::COVER_OPEN, HIGH_OPEN),
        [0x38, 0x00, 0x00, 0x00]
    );
    assert_eq!(
        encode_asb(C::OFFLINE | C::PAPER_OUT | C::PAPER_NEAR_END, HIGH_OPEN),
        [0x18, 0x00, 0x0F, 0x00]
    );
    assert_eq!(
        encode_asb(ASB_CONDITIONS, HIGH_OPEN),
        [0x7C, 0x6F, 0x0F, 0x00]
    );
    // Not in ASB: paper-end stop and the "error occurred" summary bit.
    assert_eq!(
        encode_asb(C::PAPER_END_STOP | C::ERROR, HIGH_OPEN),
        [0x10, 0x00, 0x00, 0x00]
    );
    assert!(!ASB_CONDITIONS.contains(C::PAPER_END_STOP));
    assert!(!ASB_CONDITIONS.contains(C::ERROR));
}

#[test]
fn status_asb_fixed_bits_are_rejected() {
    let bad: [([u8; 4], u8, &str, &str); 8] = [
        ([0x12, 0, 0, 0], 0x12, ASB_FIRST_PATTERN, "byte 1"), // a real-time byte
        ([0x00, 0, 0, 0], 0x00, ASB_FIRST_PATTERN, "byte 1"), // bit 4 clear
        ([0x90, 0, 0, 0], 0x90, ASB_FIRST_PATTERN, "byte 1"), // bit 7 set
        ([0x11, 0, 0, 0], 0x11, ASB_FIRST_PATTERN, "byte 1"), // bit 0 set
        ([0x10, 0x10, 0, 0], 0x10, ASB_REST_PATTERN, "byte 2"), // bit 4 set
        ([0x10, 0x80, 0, 0], 0x80, ASB_REST_PATTERN, "byte 2"), // bit 7 set
        ([0x10, 0, 0x90, 0], 0x90, ASB_REST_PATTERN, "byte 3"),
        ([0x10, 0, 0, 0x10], 0x10, ASB_REST_PATTERN, "byte 4"),
    ];
    for (block, byte, pattern, which) in bad {
        let err = parse_asb(block, HIGH_OPEN).expect_err("must be rejected");
        match &err {
            StatusError::FixedBits {
                byte: b,
                expected_pattern,
                what,
            } => {
                assert_eq!(*b, byte);
                assert_eq!(*expected_pattern, pattern);
                assert!(what.contains(which), "{what}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(err.kind(), FaultKind::Protocol);
    }
}

#[test]
fn status_asb_first_byte_exhaustive() {
    let accepted: Vec<u8> = (0..=255u8)
        .filter(|b| parse_asb([*b, 0, 0, 0], HIGH_OPEN).is_ok())
        .collect();
    assert_eq!(accepted.len(), 16);
    assert!(
        accepted
            .iter()
            .all(|b| is_asb_first_byte(*b) && b & 0x93 == 0x10)
    );
    let rest: Vec<u8> = (0..=255u8)
        .filter(|b| parse_asb([0x10, *b, 0, 0], HIGH_OPEN).is_ok())
        .collect();
    assert_eq!(rest.len(), 64);
    assert!(rest.iter().all(|b| b & 0x90 == 0));
}

proptest! {
    #[test]
    fn status_asb_round_trip(bits in any::<u32>(), polarity in any::<bool>()) {
        let conditions = C::from_bits_truncate(bits);
        let block = encode_asb(conditions, polarity);
        prop_assert!(is_asb_first_byte(block[0]));
        prop_assert!(block[1..].iter().all(|b| is_asb_rest_byte(*b)));
        prop_assert_eq!(parse_asb(block, polarity), Ok(conditions & ASB_CONDITIONS));
    }

    #[test]
    fn status_asb_never_panics(block in any::<[u8; 4]>(), polarity in any::<bool>()) {
        let parsed = parse_asb(block, polarity);
        let valid = is_asb_first_byte(block[0]) && block[1..].iter().all(|b| is_asb_rest_byte(*b));
        prop_assert_eq!(parsed.is_ok(), valid);
        if let Ok(c) = parsed {
            prop_assert!(ASB_CONDITIONS.contains(c));
        }
    }
}
