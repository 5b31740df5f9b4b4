//! DOL parsing and building: the real CDOLs of the two transcripts rebuilt into the exact
//! GENERATE AC command data the terminal sent, and the EMV Book 3 5.4 fitting rules per
//! format.

use std::collections::HashMap;

use pos_emv::dol::{DolEntry, build, data_len, encode_dol, fit, parse_dol};
use pos_emv::tags::{self, Format};
use pos_emv::tlv::{Tag, TlvError};
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).expect("test hex")
}

fn terminal(data: &[(u32, &str)]) -> HashMap<Tag, Vec<u8>> {
    data.iter().map(|(t, v)| (Tag::new(*t), hex(v))).collect()
}

// 8C of the Mastercard card (READ RECORD SFI 2 record 1).
const MC_CDOL1: &str = "9F02069F03069F090295055F2A029A039C019F37049F35019F45029F4C089F3403";
const MC_CDOL2: &str = "910A8A0295059F37049F4C08";
const UPI_CDOL1: &str = "9F02069F03069F1A0295055F2A029A039C019F37049F21039F4E149F3403";
const UPI_CDOL2: &str = "8A029F02069F03069F1A0295055F2A029A039C019F37049F21039B02";

#[test]
fn parse_mastercard_cdol1() {
    let dol = parse_dol(&hex(MC_CDOL1)).unwrap();
    let got: Vec<(String, usize)> = dol.iter().map(|e| (e.tag.to_string(), e.len)).collect();
    let want = [
        ("9F02", 6),
        ("9F03", 6),
        ("9F09", 2),
        ("95", 5),
        ("5F2A", 2),
        ("9A", 3),
        ("9C", 1),
        ("9F37", 4),
        ("9F35", 1),
        ("9F45", 2),
        ("9F4C", 8),
        ("9F34", 3),
    ];
    assert_eq!(got, want.map(|(t, l)| (t.to_string(), l)));
    // The GENERATE AC the terminal sent carried Lc = 2B.
    assert_eq!(data_len(&dol), 0x2B);
    assert_eq!(encode_dol(&dol), hex(MC_CDOL1));
}

#[test]
fn mastercard_cdol1_rebuilds_the_first_generate_ac() {
    let data = terminal(&[
        (0x9F02, "000000001000"),
        (0x9F03, "000000000000"),
        (0x9F09, "0002"),
        (0x95, "8000008000"),
        (0x5F2A, "0036"),
        (0x9A, "120316"),
        (0x9C, "00"),
        (0x9F37, "8221F601"),
        (0x9F35, "22"),
        (0x9F34, "5E0300"),
        // 9F45 (data authentication code) and 9F4C (ICC dynamic number): absent -> zeros.
    ]);
    let dol = parse_dol(&hex(MC_CDOL1)).unwrap();
    let built = build(&dol, |t| data.get(&t).cloned());
    let sent = hex(
        "80AE80002B000000001000000000000000000280000080000036120316008221F60122000000000000000000005E030000",
    );
    assert_eq!(built, sent[5..5 + 0x2B]);
}

#[test]
fn mastercard_cdol2_rebuilds_the_second_generate_ac() {
    let data = terminal(&[
        // 8 bytes of issuer authentication data into a 10-byte entry: b, right-padded 00.
        (0x91, "1122334455667788"),
        (0x8A, "3030"),
        (0x95, "8000008000"),
        (0x9F37, "8221F601"),
    ]);
    let dol = parse_dol(&hex(MC_CDOL2)).unwrap();
    let built = build(&dol, |t| data.get(&t).cloned());
    let sent = hex("80AE40001D11223344556677880000303080000080008221F601000000000000000000");
    assert_eq!(built, sent[5..5 + 0x1D]);
}

#[test]
fn unionpay_cdols_rebuild_both_generate_acs() {
    let mut data = terminal(&[
        (0x9F02, "000000006580"),
        (0x9F03, "000000000000"),
        (0x9F1A, "0036"),
        (0x95, "0000008000"),
        (0x5F2A, "0036"),
        (0x9A, "150316"),
        (0x9C, "00"),
        (0x9F37, "3510540E"),
        (0x9F21, "160136"),
        (0x9F34, "5E0300"),
        // 9F4E merchant name and location absent: 20 zero bytes.
    ]);
    let dol1 = parse_dol(&hex(UPI_CDOL1)).unwrap();
    assert_eq!(data_len(&dol1), 0x37);
    let sent1 = hex(
        "80AE800037000000006580000000000000003600000080000036150316003510540E16013600000000000000000000000000000000000000005E030000",
    );
    assert_eq!(build(&dol1, |t| data.get(&t).cloned()), sent1[5..5 + 0x37]);

    data.insert(tags::AUTH_RESPONSE_CODE, b"00".to_vec());
    data.insert(tags::TVR, hex("0000008040"));
    data.insert(tags::TSI, hex("F800"));
    let dol2 = parse_dol(&hex(UPI_CDOL2)).unwrap();
    let sent2 =
        hex("80AE4000243030000000006580000000000000003600000080400036150316003510540E160136F80000");
    assert_eq!(build(&dol2, |t| data.get(&t).cloned()), sent2[5..5 + 0x24]);
}

#[test]
fn numeric_is_right_justified() {
    let dol = [DolEntry {
        tag: tags::AMOUNT_AUTHORISED,
        len: 6,
    }];
    // Shorter: left-padded with 00.
    assert_eq!(build(&dol, |_| Some(hex("1000"))), hex("000000001000"));
    // Longer: the leftmost bytes go.
    assert_eq!(
        build(&dol, |_| Some(hex("99000000001000"))),
        hex("000000001000")
    );
    // Transaction date into 2 bytes keeps MMDD.
    let dol = [DolEntry {
        tag: tags::TRANSACTION_DATE,
        len: 2,
    }];
    assert_eq!(build(&dol, |_| Some(hex("120316"))), hex("0316"));
}

#[test]
fn compressed_numeric_is_left_justified_with_ff() {
    let dol = [DolEntry {
        tag: tags::PAN,
        len: 10,
    }];
    assert_eq!(
        build(&dol, |_| Some(hex("5413330089600044"))),
        hex("5413330089600044FFFF")
    );
    let dol = [DolEntry {
        tag: tags::PAN,
        len: 4,
    }];
    assert_eq!(
        build(&dol, |_| Some(hex("5413330089600044"))),
        hex("54133300")
    );
}

#[test]
fn text_and_binary_are_left_justified_with_zeros() {
    let dol = [
        DolEntry {
            tag: tags::AUTH_RESPONSE_CODE,
            len: 1,
        },
        DolEntry {
            tag: tags::MERCHANT_NAME_LOCATION,
            len: 6,
        },
        DolEntry {
            tag: tags::UNPREDICTABLE_NUMBER,
            len: 6,
        },
        DolEntry {
            tag: tags::TVR,
            len: 3,
        },
    ];
    let data = terminal(&[
        (0x8A, "3030"),
        (0x9F4E, "53484F50"),
        (0x9F37, "8221F601"),
        (0x95, "8000008000"),
    ]);
    assert_eq!(
        build(&dol, |t| data.get(&t).cloned()),
        hex("30 53484F500000 8221F6010000 800000")
    );
}

#[test]
fn absent_unknown_and_constructed() {
    let dol = [
        // Absent: zeros.
        DolEntry {
            tag: tags::ICC_DYNAMIC_NUMBER,
            len: 3,
        },
        // Not in the dictionary but supplied: treated as b.
        DolEntry {
            tag: Tag::new(0xDF8101),
            len: 4,
        },
        // Constructed: zeros even when a value is at hand.
        DolEntry {
            tag: tags::RECORD_TEMPLATE,
            len: 2,
        },
        // Zero length: nothing.
        DolEntry {
            tag: tags::AMOUNT_AUTHORISED,
            len: 0,
        },
    ];
    let data = terminal(&[(0xDF8101, "AABB"), (0x70, "5A01"), (0x9F02, "000000001000")]);
    let built = build(&dol, |t| data.get(&t).cloned());
    assert_eq!(built, hex("000000 AABB0000 0000"));
    assert_eq!(built.len(), data_len(&dol));
}

#[test]
fn fit_by_format() {
    assert_eq!(fit(Format::N, &hex("0123"), 3), hex("000123"));
    assert_eq!(fit(Format::N, &hex("010203"), 1), hex("03"));
    assert_eq!(fit(Format::Cn, &hex("12"), 3), hex("12FFFF"));
    assert_eq!(fit(Format::A, b"AU", 3), b"AU\0");
    assert_eq!(fit(Format::An, b"ABCD", 2), b"AB");
    assert_eq!(fit(Format::B, &hex("0102"), 2), hex("0102"));
}

#[test]
fn malformed_dols_name_the_offset() {
    assert_eq!(parse_dol(&[]), Ok(vec![]));
    assert_eq!(
        parse_dol(&hex("9F0206 9F03")),
        Err(TlvError::TruncatedLength {
            offset: 5,
            needed: 1,
            available: 0
        })
    );
    assert_eq!(
        parse_dol(&hex("9F0206 9F")),
        Err(TlvError::TruncatedTag { offset: 3 })
    );
    assert_eq!(
        parse_dol(&hex("9F0206 0001")),
        Err(TlvError::InvalidTag { offset: 3 })
    );
    assert_eq!(
        parse_dol(&hex("95 05 DF81818181 01")),
        Err(TlvError::TagTooLong { offset: 2 })
    );
}

fn any_entry() -> impl Strategy<Value = DolEntry> {
    let tag = prop_oneof![
        prop::sample::select(vec![
            0x95u32, 0x9A, 0x9C, 0x5A, 0x8A, 0x70, 0x9F02, 0x5F2A, 0x9F4E
        ]),
        (0x80u32..0x9F).prop_filter("single byte tag", |b| b & 0x1F != 0x1F),
        (0u32..0x80).prop_map(|n| 0xDF00 | n),
    ];
    (tag, 0usize..=255).prop_map(|(t, len)| DolEntry {
        tag: Tag::new(t),
        len,
    })
}

proptest! {
    #[test]
    fn dol_round_trip_and_build_length(
        dol in prop::collection::vec(any_entry(), 0..20),
        values in prop::collection::vec(prop::option::of(prop::collection::vec(any::<u8>(), 0..40)), 20),
    ) {
        let bytes = encode_dol(&dol);
        prop_assert_eq!(parse_dol(&bytes)?, dol.clone());
        let built = build(&dol, |t| {
            let i = dol.iter().position(|e| e.tag == t).unwrap_or(0);
            values[i % values.len()].clone()
        });
        prop_assert_eq!(built.len(), data_len(&dol));
    }

    #[test]
    fn parse_dol_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(dol) = parse_dol(&bytes) {
            prop_assert_eq!(encode_dol(&dol), bytes);
        }
    }
}
