//! Code pages: known table entries, visible replacement, control characters, page choice.

use pos_escpos::codepage::{self, CodePage};

#[test]
fn known_mappings() {
    // CP437
    assert_eq!(codepage::encode("£", CodePage::Cp437).bytes, vec![0x9C]);
    assert_eq!(codepage::encode("Ç", CodePage::Cp437).bytes, vec![0x80]);
    assert_eq!(codepage::encode("═", CodePage::Cp437).bytes, vec![0xCD]);
    assert_eq!(codepage::encode("ß", CodePage::Cp437).bytes, vec![0xE1]);
    // CP858: CP850 plus the euro at 0xD5.
    assert_eq!(codepage::encode("€", CodePage::Cp858).bytes, vec![0xD5]);
    assert_eq!(codepage::encode("Ç", CodePage::Cp858).bytes, vec![0x80]);
    assert_eq!(codepage::encode("£", CodePage::Cp858).bytes, vec![0x9C]);
    assert_eq!(codepage::encode("Ø", CodePage::Cp858).bytes, vec![0x9D]);
    // CP1252
    assert_eq!(codepage::encode("€", CodePage::Cp1252).bytes, vec![0x80]);
    assert_eq!(codepage::encode("é", CodePage::Cp1252).bytes, vec![0xE9]);
    // Decoding agrees.
    assert_eq!(
        codepage::decode(&[0x9C, 0x20, 0x80], CodePage::Cp437),
        "£ Ç"
    );
    assert_eq!(codepage::decode(&[0xD5], CodePage::Cp858), "€");
    assert_eq!(codepage::decode(&[0x80], CodePage::Cp1252), "€");
}

#[test]
fn euro_is_not_in_cp437_and_is_replaced_visibly() {
    let e = codepage::encode("Total 5,00 €", CodePage::Cp437);
    assert_eq!(e.bytes, b"Total 5,00 ?");
    assert_eq!(e.replaced, vec!['€']);
    // ı is at CP850's 0xD5, which CP858 gives to the euro.
    let e = codepage::encode("ı", CodePage::Cp858);
    assert_eq!(e.bytes, b"?");
    assert_eq!(e.replaced, vec!['ı']);
}

#[test]
fn chinese_in_gb18030() {
    let e = codepage::encode("收据", CodePage::Gb18030);
    assert!(e.replaced.is_empty());
    assert_eq!(e.bytes, vec![0xCA, 0xD5, 0xBE, 0xDD]);
    assert_eq!(codepage::decode(&e.bytes, CodePage::Gb18030), "收据");
    // Outside the BMP: a four-byte sequence, trail bytes never below 0x30.
    let e = codepage::encode("😀", CodePage::Gb18030);
    assert_eq!(e.bytes.len(), 4);
    assert!(e.bytes.iter().all(|&b| b >= 0x30));
    // Single-byte pages replace every Chinese character.
    let e = codepage::encode("收据", CodePage::Cp437);
    assert_eq!(e.bytes, b"??");
    assert_eq!(e.replaced, vec!['收', '据']);
}

#[test]
fn control_characters_never_reach_the_printer() {
    for cp in CodePage::ALL {
        let e = codepage::encode("a\x1b@b\tc\r\n\u{7f}\u{9b}d", *cp);
        assert_eq!(e.bytes, b"a?@b?c?\n??d", "{cp}");
        assert_eq!(
            e.replaced,
            vec!['\x1b', '\t', '\r', '\u{7f}', '\u{9b}'],
            "{cp}"
        );
    }
}

#[test]
fn best_page_is_first_without_replacement_else_fewest() {
    let pages = [CodePage::Cp437, CodePage::Cp858, CodePage::Cp1252];
    assert_eq!(codepage::best_for("plain", &pages), CodePage::Cp437);
    assert_eq!(codepage::best_for("£ ═", &pages), CodePage::Cp437);
    assert_eq!(codepage::best_for("2,50 €", &pages), CodePage::Cp858);
    // "œ€": CP1252 has both, CP858 only €.
    assert_eq!(codepage::best_for("œ€", &pages), CodePage::Cp1252);
    // "═€œ": nobody has all three; CP858 lacks only œ (CP437 and CP1252 lack two).
    let (cp, e) = codepage::encode_best("═€œ", &pages);
    assert_eq!(cp, CodePage::Cp858);
    assert_eq!(e.replaced, vec!['œ']);
    // A tie goes to the earliest page.
    let (cp, e) = codepage::encode_best("收", &pages);
    assert_eq!(cp, CodePage::Cp437);
    assert_eq!(e.bytes, b"?");
    // "ÁÃ€": CP858 has all three.
    assert_eq!(codepage::best_for("ÁÃ€", &pages), CodePage::Cp858);
    assert_eq!(codepage::best_for("x", &[]), CodePage::Cp437);
}

#[test]
fn names_parse_and_serialize() {
    for cp in CodePage::ALL {
        assert_eq!(cp.name().parse::<CodePage>().unwrap(), *cp);
        assert_eq!(
            serde_json::to_string(cp).unwrap(),
            format!("\"{}\"", cp.name())
        );
    }
    assert_eq!("CP858".parse::<CodePage>().unwrap(), CodePage::Cp858);
    assert_eq!("cp850".parse::<CodePage>().unwrap(), CodePage::Cp850);
    assert_eq!("ISO8859-2".parse::<CodePage>().unwrap(), CodePage::Iso88592);
    let err = "cp999".parse::<CodePage>().unwrap_err();
    assert!(err.to_string().contains("cp999"));
}

#[test]
fn generated_tables_hold_what_their_pages_are_known_for() {
    // Spot checks against the published tables (IBM/Microsoft code page charts).
    assert_eq!(codepage::encode("ñ", CodePage::Cp850).bytes, [0xA4]);
    assert_eq!(codepage::encode("Ł", CodePage::Cp852).bytes, [0x9D]);
    assert_eq!(codepage::encode("Ж", CodePage::Cp866).bytes, [0x86]);
    assert_eq!(codepage::encode("ş", CodePage::Cp1254).bytes, [0xFE]);
    assert_eq!(codepage::encode("€", CodePage::Iso885915).bytes, [0xA4]);
    assert_eq!(codepage::encode("Ω", CodePage::Cp737).bytes, [0x97]);
    for cp in CodePage::ALL {
        if let Some(table) = cp.high_table() {
            assert!(
                table.iter().all(|c| !c.is_control()),
                "{cp}: no control characters in a table"
            );
        }
    }
}
