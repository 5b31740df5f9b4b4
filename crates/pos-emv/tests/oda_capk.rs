//! The CA public key file: parsing, errors naming the line, check sums, the shipped test keys.
#![allow(clippy::unwrap_used)]

use pos_emv::capk::{CaKeys, CapkError, Date};
use pos_hal::{Fault, FaultKind};

const SHIPPED: &str = include_str!("../data/ca-keys-test.txt");

// A 64-byte modulus and its check sum (computed independently with Python's hashlib).
const MOD64: &str = "C0FFEE00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF00112233445566778899AABBCC";

fn line(rest: &str) -> String {
    format!("A000000999 01 03 {MOD64} {rest}")
}

#[test]
fn shipped_test_keys_load_and_every_check_sum_is_verified() {
    let keys = CaKeys::parse(SHIPPED).unwrap();
    assert_eq!(keys.len(), 4);
    // Each line carries the scheme's published check sum; parse() verified it, and here the
    // check sums are compared again with the published values, independently of the file.
    let published: [([u8; 5], u8, usize, &str); 4] = [
        (
            [0xA0, 0, 0, 0, 0x04],
            0xEF,
            248,
            "21766EBB0EE122AFB65D7845B73DB46BAB65427A",
        ),
        (
            [0xA0, 0, 0, 0, 0x03],
            0x92,
            176,
            "429C954A3859CEF91295F663C963E582ED6EB253",
        ),
        (
            [0xA0, 0, 0, 0, 0x03],
            0x94,
            248,
            "C4A3C43CCF87327D136B804160E47D43B60E6E0F",
        ),
        (
            [0xA0, 0, 0, 0, 0x03],
            0x95,
            144,
            "EE1511CEC71020A9B90443B37B1D5F6E703030F6",
        ),
    ];
    for (rid, index, len, sum) in published {
        let k = keys.get(rid, index).unwrap();
        assert_eq!(k.modulus.len(), len);
        assert_eq!(k.exponent, [3]);
        let hex: String = k.checksum().iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(hex, sum, "check sum of {index:02X}");
    }
    assert!(keys.get([0xA0, 0, 0, 0, 0x04], 0xF1).is_none());
}

#[test]
fn load_reads_the_shipped_file_and_names_a_missing_one() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/ca-keys-test.txt");
    assert_eq!(CaKeys::load(path).unwrap().len(), 4);
    let err = CaKeys::load("/nonexistent/ca-keys.txt").unwrap_err();
    assert!(matches!(err, CapkError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/ca-keys.txt"));
    assert_eq!(err.kind(), FaultKind::InvalidInput);
}

#[test]
fn optional_fields_comments_and_blank_lines() {
    let text = format!(
        "# comment\n\n   \n{}\n",
        line("expires=2030-12-31 sha1=C2935DCEF877DCC037136F105710084CC823FD67")
    );
    let keys = CaKeys::parse(&text).unwrap();
    let k = keys.get([0xA0, 0, 0, 0x09, 0x99], 0x01).unwrap();
    assert_eq!(
        k.expires,
        Some(Date {
            year: 2030,
            month: 12,
            day: 31
        })
    );
    assert_eq!(k.modulus.len(), 64);
    // Lower-case hex and tabs are fine.
    let lower = format!("a000000999\t01\t010001\t{}", MOD64.to_lowercase());
    let k = CaKeys::parse(&lower).unwrap();
    assert_eq!(k.iter().next().unwrap().exponent, [1, 0, 1]);
    assert!(CaKeys::parse("# nothing\n").unwrap().is_empty());
}

#[test]
fn a_wrong_check_sum_is_rejected_with_its_line() {
    let text = format!(
        "# keys\n{}\n",
        line("sha1=C2935DCEF877DCC037136F105710084CC823FD68")
    );
    match CaKeys::parse(&text).unwrap_err() {
        CapkError::Checksum {
            line,
            expected,
            computed,
        } => {
            assert_eq!(line, 2);
            assert_eq!(expected, "C2935DCEF877DCC037136F105710084CC823FD68");
            assert_eq!(computed, "C2935DCEF877DCC037136F105710084CC823FD67");
        }
        other => panic!("{other:?}"),
    }
    // One changed modulus byte in a shipped key is caught by its check sum.
    let tampered = SHIPPED.replacen("A191CB87", "A191CB88", 1);
    assert!(matches!(
        CaKeys::parse(&tampered).unwrap_err(),
        CapkError::Checksum { line: 8, .. }
    ));
}

fn syntax_line(text: &str) -> (usize, String) {
    match CaKeys::parse(text).unwrap_err() {
        CapkError::Syntax { line, reason } => (line, reason),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_lines_are_named() {
    let good = line("");
    let cases: Vec<(String, &str)> = vec![
        ("A000000999 01 03".to_string(), "got 3 field(s)"),
        (good.replacen("A000000999", "A0000009", 1), "RID"),
        (good.replacen("A000000999", "A00000099Z", 1), "RID"),
        (good.replacen(" 01 ", " 0101 ", 1), "index"),
        (good.replacen(" 03 ", " 00 ", 1), "exponent"),
        (good.replacen(" 03 ", " 0100000001 ", 1), "exponent"),
        (good.replacen(MOD64, &MOD64[..126], 1), "modulus"),
        (good.replacen(MOD64, &MOD64[..125], 1), "modulus"),
        (line("expires=2030-13-01"), "expiry"),
        (line("expires=30-12-01"), "expiry"),
        (line("sha1=1234"), "check sum"),
        (line("colour=blue"), "unexpected field"),
        (line("expires=2030-01-01 expires=2031-01-01"), "twice"),
    ];
    for (bad, want) in cases {
        let text = format!("{good}\n# second\n{bad}\n");
        let (l, reason) = syntax_line(&text);
        assert_eq!(l, 3, "{bad}");
        assert!(reason.contains(want), "{bad}: {reason}");
        let err = CaKeys::parse(&text).unwrap_err();
        assert!(err.to_string().starts_with("CA key file line 3:"), "{err}");
    }
}

#[test]
fn duplicate_keys_are_rejected() {
    let text = format!("{}\n{}\n", line(""), line(""));
    assert!(matches!(
        CaKeys::parse(&text).unwrap_err(),
        CapkError::Duplicate {
            line: 2,
            first: 1,
            index: 1,
            ..
        }
    ));
}
