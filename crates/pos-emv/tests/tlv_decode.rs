//! BER-TLV decoder and encoder: errors with their offsets, padding, multi-byte tags, long
//! form lengths, tree walking, and the real records of the two card transcripts.

use pos_emv::tags;
use pos_emv::tlv::{
    self, Builder, Class, MAX_DEPTH, Tag, TlvError, encode, encode_constructed, find, flatten,
    parse, parse_all, parse_single, parse_template, walk,
};
use pos_hal::{Fault, FaultKind};

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).expect("test hex")
}

// Mastercard test card (contact-mastercard.apdu), READ RECORD SFI 2 record 1, SW removed.
const MC_SFI2_REC1: &str = "70818F5A0854133300896000445F24031412315F25030401015F280200565F3401018C219F02069F03069F090295055F2A029A039C019F37049F35019F45029F4C089F34038D0C910A8A0295059F37049F4C088E0C00000000000000005E031F039F0702FF009F080200029F0D0500000000009F0E0500000000009F0F0500000000009F420209789F4A0182DF4F03123456";
// Mastercard SFI 1 record 5: track 2 equivalent data and a certificate (81 xx lengths).
const MC_SFI1_REC5: &str = "7081A657115413330089600044D1412201012340917293819021A0D15CCE47A534B8C86F03FCB56DA82332435BB2F7266A01196050D1C4A42C38C63F4B22331E7BA1B664EC925CB0539DC82539CB4F83818B90F6C94D4448D87F7140A3E3B0AD96C8C1FF62A9519F16AC4BF18F10E06A0366A1D6250752A59592BC61104EFDD0DD332FD4760F3B922B169C18C31BDD706688B63B332B2DA566E7176BD01C581E9FE45101EA49C1007A";
// Mastercard SELECT response (FCI) and GPO response (format 2).
const MC_FCI: &str = "6F1C8407A0000000041010A511500F505043204D434420303420207632309000";
const MC_GPO: &str = "7716820259009410100202011801010020010100280102009000";
// UnionPay test card (contact-upi.apdu), READ RECORD SFI 2 record 1, and its SELECT answer.
const UPI_SFI2_REC1: &str = "7081885F24033010315A0862109480000000115F3401019F0702FF008E0E00000000000000005E0342031F009F0D05D8609CA8009F0E0500100000009F0F05D8689CF8005F280201568C1E9F02069F03069F1A0295055F2A029A039C019F37049F21039F4E149F34038D1C8A029F02069F03069F1A0295055F2A029A039C019F37049F21039B029F4A0182";
const UPI_FCI: &str = "6F3B8408A000000333010102A52F500B55494343204352454449548701015F2D02636E9F1101019F120B5549434320435245444954BF0C059F4D020B0A";

/// Strips the status word from a transcript response.
fn body(resp: &str) -> Vec<u8> {
    let mut b = hex(resp);
    if b.ends_with(&[0x90, 0x00]) {
        b.truncate(b.len() - 2);
    }
    b
}

// ---------------------------------------------------------------- tags

#[test]
fn tag_multi_byte_forms() {
    for (text, raw, len, constructed, class) in [
        ("5A", 0x5A, 1, false, Class::Application),
        ("70", 0x70, 1, true, Class::Application),
        ("9F02", 0x9F02, 2, false, Class::ContextSpecific),
        ("5F2A", 0x5F2A, 2, false, Class::Application),
        ("BF0C", 0xBF0C, 2, true, Class::ContextSpecific),
        ("DF8101", 0xDF8101, 3, false, Class::Private),
        ("DF818101", 0xDF81_8101, 4, false, Class::Private),
        ("06", 0x06, 1, false, Class::Universal),
    ] {
        let tag: Tag = text.parse().unwrap();
        assert_eq!(tag, Tag::new(raw));
        assert_eq!(tag.byte_len(), len, "{text}");
        assert_eq!(tag.is_constructed(), constructed, "{text}");
        assert_eq!(tag.class(), class, "{text}");
        assert_eq!(tag.to_string(), text);
        assert_eq!(Tag::from_bytes(&hex(text)), Ok(tag));
        assert_eq!(tag.bytes(), hex(text));
    }
    assert_eq!("9f02".parse::<Tag>(), Ok(tags::AMOUNT_AUTHORISED));
    assert_eq!("0x5F2A".parse::<Tag>(), Ok(tags::TRANSACTION_CURRENCY_CODE));
}

#[test]
fn tag_from_bytes_rejects_malformed() {
    assert_eq!(
        Tag::from_bytes(&[]),
        Err(TlvError::TruncatedTag { offset: 0 })
    );
    assert_eq!(
        Tag::from_bytes(&[0x9F]),
        Err(TlvError::TruncatedTag { offset: 0 })
    );
    assert_eq!(
        Tag::from_bytes(&[0xDF, 0x81]),
        Err(TlvError::TruncatedTag { offset: 0 })
    );
    assert_eq!(
        Tag::from_bytes(&[0x5A, 0x01]),
        Err(TlvError::InvalidTag { offset: 1 })
    );
    assert_eq!(
        Tag::from_bytes(&[0x9F, 0x02, 0x03]),
        Err(TlvError::InvalidTag { offset: 2 })
    );
    assert_eq!(
        Tag::from_bytes(&[0x00]),
        Err(TlvError::InvalidTag { offset: 0 })
    );
    assert_eq!(
        Tag::from_bytes(&[0xDF, 0x81, 0x81, 0x81, 0x01]),
        Err(TlvError::TagTooLong { offset: 0 })
    );
    for bad in ["", "9", "9F0", "XY", "9F", "5A01", "DF81818101", "é1"] {
        assert!(bad.parse::<Tag>().is_err(), "{bad:?} accepted");
    }
}

// ---------------------------------------------------------------- errors with offsets

#[test]
fn truncated_value_reports_offset_needed_available() {
    let e = parse_all(&hex("5A08541333")).unwrap_err();
    assert_eq!(
        e,
        TlvError::Truncated {
            offset: 0,
            needed: 8,
            available: 3
        }
    );
    // After padding and a good object, the offset is the failing object's tag.
    let e = parse_all(&hex("0000 9F3501 22 FF 5F2481 05 1412")).unwrap_err();
    assert_eq!(
        e,
        TlvError::Truncated {
            offset: 7,
            needed: 5,
            available: 2
        }
    );
    assert_eq!(e.offset(), 7);
}

#[test]
fn truncated_child_inside_a_complete_parent_is_an_error_with_absolute_offset() {
    // 70 05 | 5A 08 54 13 33: the parent's length is fine, the child's is not.
    let buf = hex("7005 5A08541333");
    assert_eq!(
        parse_all(&buf).unwrap().len(),
        1,
        "top level alone is well formed"
    );
    let expect = TlvError::Truncated {
        offset: 2,
        needed: 8,
        available: 3,
    };
    assert_eq!(walk(&buf, |_, _| {}), Err(expect.clone()));
    assert_eq!(flatten(&buf), Err(expect.clone()));
    assert_eq!(find(&buf, tags::PAN), Err(expect.clone()));
    assert_eq!(parse_template(&buf, tags::RECORD_TEMPLATE), Err(expect));
    // A child may not run past its parent even when the buffer goes on.
    let buf = hex("7003 5A0254 13 9F3501 22");
    assert_eq!(
        flatten(&buf),
        Err(TlvError::Truncated {
            offset: 2,
            needed: 2,
            available: 1
        })
    );
}

#[test]
fn truncated_tag_and_length() {
    assert_eq!(
        parse_all(&hex("9F")),
        Err(TlvError::TruncatedTag { offset: 0 })
    );
    assert_eq!(
        parse_all(&hex("5A0112 DF81")),
        Err(TlvError::TruncatedTag { offset: 3 })
    );
    assert_eq!(
        parse_all(&hex("5A")),
        Err(TlvError::TruncatedLength {
            offset: 1,
            needed: 1,
            available: 0
        })
    );
    assert_eq!(
        parse_all(&hex("9F02 8201")),
        Err(TlvError::TruncatedLength {
            offset: 2,
            needed: 3,
            available: 2
        })
    );
    assert_eq!(
        parse_all(&hex("9F02 83")),
        Err(TlvError::TruncatedLength {
            offset: 2,
            needed: 4,
            available: 1
        })
    );
}

#[test]
fn indefinite_and_oversized_lengths_are_rejected() {
    assert_eq!(
        parse_all(&hex("5A0112 7080 5A0112 0000")),
        Err(TlvError::IndefiniteLength { offset: 4 })
    );
    assert_eq!(
        parse_all(&hex("5A 84 00000001 12")),
        Err(TlvError::LengthTooLong {
            offset: 1,
            octets: 4
        })
    );
    assert_eq!(
        parse_all(&hex("5A FF")),
        Err(TlvError::LengthTooLong {
            offset: 1,
            octets: 0x7F
        })
    );
}

#[test]
fn tags_longer_than_four_bytes_are_rejected() {
    assert_eq!(
        parse_all(&hex("5A0112 DF8181818101 00")),
        Err(TlvError::TagTooLong { offset: 3 })
    );
    let buf = hex("DF818101 01 AA");
    let ok = parse_all(&buf).unwrap();
    assert_eq!(ok[0].tag, Tag::new(0xDF81_8101));
    assert_eq!(ok[0].value, [0xAA]);
}

#[test]
fn errors_are_protocol_faults_and_name_the_offset() {
    let e = parse_all(&hex("0000 5A08 5413")).unwrap_err();
    assert_eq!(e.kind(), FaultKind::Protocol);
    assert!(e.to_string().contains("offset 2"), "{e}");
}

#[test]
fn iteration_stops_after_the_first_error() {
    let buf = hex("5A0112 5A09 0000 5A0112");
    let mut it = parse(&buf);
    assert_eq!(it.next().unwrap().unwrap().value, [0x12]);
    assert!(matches!(
        it.next(),
        Some(Err(TlvError::Truncated { offset: 3, .. }))
    ));
    assert!(it.next().is_none());
    assert!(it.next().is_none());
}

// ---------------------------------------------------------------- lengths and padding

#[test]
fn long_form_lengths() {
    for (len, header) in [
        (0x80usize, "5A81 80"),
        (0xFF, "5A81FF"),
        (0x100, "5A820100"),
        (0xFFFF, "5A82FFFF"),
        (0x1_0000, "5A83010000"),
    ] {
        let mut buf = hex(header);
        buf.extend(std::iter::repeat_n(0x42, len));
        let t = parse_single(&buf).unwrap();
        assert_eq!(t.value.len(), len);
        assert_eq!(t.header_len, hex(header).len());
        assert!(t.length_is_minimal());
        let mut again = Vec::new();
        encode(t.tag, t.value, &mut again);
        assert_eq!(again, buf, "re-encoding {len}");
    }
}

#[test]
fn non_minimal_lengths_are_accepted_and_noticed() {
    let buf = hex("5A8102 1234 9F02820003 000000");
    let all = parse_all(&buf).unwrap();
    assert_eq!(all[0].value, [0x12, 0x34]);
    assert_eq!(all[0].header_len, 3);
    assert!(!all[0].length_is_minimal());
    assert_eq!(all[1].value, [0, 0, 0]);
    assert_eq!(all[1].offset, 5);
    assert!(!all[1].length_is_minimal());
}

#[test]
fn padding_between_before_and_after_objects_is_skipped() {
    let buf = hex("0000FF 5A0112 FF00 9F0201AB 00FFFF");
    let all = parse_all(&buf).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        (all[0].tag, all[0].offset, all[0].value),
        (tags::PAN, 3, &[0x12][..])
    );
    assert_eq!(
        (all[1].tag, all[1].offset, all[1].value),
        (tags::AMOUNT_AUTHORISED, 8, &[0xAB][..])
    );
    // Inside a constructed object too.
    let nested = hex("700A 00 5A0112 FFFF 9F350122 00");
    let prims = flatten(&nested).unwrap();
    assert_eq!(
        prims.iter().map(|t| t.tag).collect::<Vec<_>>(),
        [tags::PAN, tags::TERMINAL_TYPE]
    );
    assert_eq!(prims[0].offset, 3);
    // Nothing but padding: no objects.
    assert_eq!(parse(&hex("00FF00")).count(), 0);
    assert_eq!(
        parse_single(&hex("00FF00")),
        Err(TlvError::Empty { offset: 3 })
    );
    assert_eq!(parse_single(&[]), Err(TlvError::Empty { offset: 0 }));
}

#[test]
fn parse_single_and_template() {
    assert_eq!(
        parse_single(&hex("5A0112 9F0100")),
        Err(TlvError::TrailingData { offset: 3 })
    );
    assert_eq!(
        parse_template(&hex("7703 9F3500"), tags::RECORD_TEMPLATE),
        Err(TlvError::UnexpectedTag {
            offset: 0,
            expected: tags::RECORD_TEMPLATE,
            found: tags::RESPONSE_FORMAT_2
        })
    );
    let buf = hex("7003 9F3500 0000");
    let t = parse_template(&buf, tags::RECORD_TEMPLATE).unwrap();
    assert_eq!(t.value, hex("9F3500"));
}

// ---------------------------------------------------------------- trees

#[test]
fn nesting_is_depth_limited() {
    fn nest(levels: usize) -> Vec<u8> {
        let mut buf = hex("9F3501 22");
        for _ in 0..levels {
            let mut outer = Vec::new();
            encode(Tag::new(0x70), &buf, &mut outer);
            buf = outer;
        }
        buf
    }
    // MAX_DEPTH levels in all (constructed ones plus the primitive leaf) are fine.
    let ok = nest(MAX_DEPTH - 1);
    assert_eq!(
        find(&ok, tags::TERMINAL_TYPE).unwrap().unwrap().value,
        [0x22]
    );
    let deep = nest(MAX_DEPTH);
    let leaf_offset = 2 * MAX_DEPTH;
    assert_eq!(
        find(&deep, tags::TERMINAL_TYPE),
        Err(TlvError::TooDeep {
            offset: leaf_offset,
            limit: MAX_DEPTH
        })
    );
    // Very deep input does not overflow the stack.
    let mut hostile = Vec::new();
    for _ in 0..100_000 {
        hostile.extend([0x70, 0x80]);
    }
    assert!(walk(&hostile, |_, _| {}).is_err());
}

#[test]
fn find_searches_templates_recursively() {
    let fci = body(UPI_FCI);
    let log_entry = find(&fci, tags::LOG_ENTRY).unwrap().unwrap();
    assert_eq!(log_entry.value, [0x0B, 0x0A]);
    assert_eq!(
        &fci[log_entry.offset..log_entry.end()],
        &hex("9F4D020B0A")[..]
    );
    let bf0c = find(&fci, tags::FCI_ISSUER_DISCRETIONARY).unwrap().unwrap();
    assert!(bf0c.is_constructed());
    assert_eq!(
        bf0c.children().next().unwrap().unwrap().tag,
        tags::LOG_ENTRY
    );
    assert_eq!(
        find(&fci, tags::APP_LABEL).unwrap().unwrap().value,
        b"UICC CREDIT"
    );
    assert_eq!(
        find(&fci, tags::LANGUAGE_PREFERENCE)
            .unwrap()
            .unwrap()
            .value,
        b"cn"
    );
    assert_eq!(find(&fci, tags::PAN).unwrap(), None);
    // Malformed data after the match is still an error.
    let mut broken = fci.clone();
    broken.extend(hex("5A05 12"));
    assert!(matches!(
        find(&broken, tags::DF_NAME),
        Err(TlvError::Truncated { .. })
    ));
}

#[test]
fn flatten_is_depth_first() {
    let fci = body(MC_FCI);
    let tags_seen: Vec<String> = flatten(&fci)
        .unwrap()
        .iter()
        .map(|t| t.tag.to_string())
        .collect();
    assert_eq!(tags_seen, ["84", "50"]);
    let mut all = Vec::new();
    walk(&fci, |t, depth| all.push((t.tag.to_string(), depth))).unwrap();
    assert_eq!(
        all,
        [
            ("6F".into(), 0),
            ("84".into(), 1),
            ("A5".into(), 1),
            ("50".into(), 2)
        ]
    );
    assert_eq!(
        find(&fci, tags::APP_LABEL).unwrap().unwrap().value,
        b"PPC MCD 04  v20"
    );
}

// ---------------------------------------------------------------- real records

#[test]
fn mastercard_record_values() {
    let rec = body(MC_SFI2_REC1);
    let t70 = parse_template(&rec, tags::RECORD_TEMPLATE).unwrap();
    assert_eq!(t70.header_len, 3, "70 81 8F");
    assert_eq!(t70.value.len(), 0x8F);
    let pan = find(&rec, tags::PAN).unwrap().unwrap();
    assert_eq!(pan.value, hex("5413330089600044"));
    assert_eq!(pan.offset, 3);
    let expiry = find(&rec, tags::EXPIRY_DATE).unwrap().unwrap();
    assert_eq!(expiry.value, hex("141231"));
    let cdol1 = find(&rec, tags::CDOL1).unwrap().unwrap();
    assert_eq!(
        cdol1.value,
        hex("9F02069F03069F090295055F2A029A039C019F37049F35019F45029F4C089F3403")
    );
    assert_eq!(
        find(&rec, tags::CDOL2).unwrap().unwrap().value,
        hex("910A8A0295059F37049F4C08")
    );
    assert_eq!(
        find(&rec, tags::ISSUER_COUNTRY_CODE)
            .unwrap()
            .unwrap()
            .value,
        [0x00, 0x56]
    );
    // A proprietary tag the dictionary does not know is still decoded.
    assert_eq!(
        find(&rec, Tag::new(0xDF4F)).unwrap().unwrap().value,
        hex("123456")
    );
    assert_eq!(flatten(&rec).unwrap().len(), 16);
}

#[test]
fn mastercard_track2_and_certificate_record() {
    let rec = body(MC_SFI1_REC5);
    let t2 = find(&rec, tags::TRACK2_EQUIVALENT).unwrap().unwrap();
    assert_eq!(t2.value, hex("5413330089600044D14122010123409172"));
    let cert = find(&rec, Tag::new(0x9F46)).unwrap();
    assert!(cert.is_none());
    let prims = flatten(&rec).unwrap();
    assert_eq!(prims.len(), 2);
    assert_eq!(prims[1].tag, tags::SSAD);
    assert_eq!(prims[1].value.len(), 0x90);
    assert_eq!(prims[1].header_len, 3);
}

#[test]
fn mastercard_gpo_format_2() {
    let gpo = body(MC_GPO);
    let t = parse_template(&gpo, tags::RESPONSE_FORMAT_2).unwrap();
    let children: Vec<_> = t.children().collect::<Result<_, _>>().unwrap();
    assert_eq!(children[0].tag, tags::AIP);
    assert_eq!(children[0].value, [0x59, 0x00]);
    assert_eq!(children[1].tag, tags::AFL);
    assert_eq!(
        children[1].value,
        hex("10020201 18010100 20010100 28010200")
    );
    assert_eq!(children[1].offset, 6);
}

#[test]
fn unionpay_record_values() {
    let rec = body(UPI_SFI2_REC1);
    assert_eq!(
        find(&rec, tags::PAN).unwrap().unwrap().value,
        hex("6210948000000011")
    );
    assert_eq!(
        find(&rec, tags::EXPIRY_DATE).unwrap().unwrap().value,
        hex("301031")
    );
    assert_eq!(
        find(&rec, tags::CDOL1).unwrap().unwrap().value,
        hex("9F02069F03069F1A0295055F2A029A039C019F37049F21039F4E149F3403")
    );
    assert_eq!(
        find(&rec, tags::SDA_TAG_LIST).unwrap().unwrap().value,
        [0x82]
    );
}

#[test]
fn real_records_reencode_identically() {
    for resp in [
        MC_SFI2_REC1,
        MC_SFI1_REC5,
        MC_FCI,
        MC_GPO,
        UPI_SFI2_REC1,
        UPI_FCI,
    ] {
        let buf = body(resp);
        fn rebuild(iter: tlv::TlvIter<'_>, b: &mut Builder) {
            for t in iter {
                let t = t.unwrap();
                if t.is_constructed() {
                    b.constructed(t.tag, |inner| rebuild(t.children(), inner));
                } else {
                    b.primitive(t.tag, t.value);
                }
            }
        }
        let mut b = Builder::new();
        rebuild(parse(&buf), &mut b);
        assert_eq!(b.finish(), buf, "{resp}");
    }
}

// ---------------------------------------------------------------- encoder

#[test]
fn encoder_uses_minimal_lengths() {
    let mut out = Vec::new();
    encode(tags::AMOUNT_AUTHORISED, &hex("000000001000"), &mut out);
    assert_eq!(out, hex("9F0206000000001000"));
    out.clear();
    encode(Tag::new(0xDF8101), &[], &mut out);
    assert_eq!(out, hex("DF810100"));
    out.clear();
    encode(tags::ISSUER_PK_CERT, &[0xAB; 200], &mut out);
    assert_eq!(&out[..3], &hex("9081C8")[..]);
    assert_eq!(out.len(), 203);
}

#[test]
fn encode_constructed_and_builder() {
    let fci = encode_constructed(
        tags::FCI_ISSUER_DISCRETIONARY,
        &[(tags::LOG_ENTRY, vec![0x0B, 0x0A])],
    );
    assert_eq!(fci, hex("BF0C05 9F4D020B0A"));
    let mut b = Builder::new();
    b.constructed(tags::FCI_TEMPLATE, |f| {
        f.primitive(tags::DF_NAME, &hex("A000000333010102"));
        f.constructed(tags::FCI_PROPRIETARY, |p| {
            p.primitive(tags::APP_LABEL, b"UICC CREDIT")
                .primitive(tags::APP_PRIORITY, &[0x01])
                .primitive(tags::LANGUAGE_PREFERENCE, b"cn")
                .primitive(Tag::new(0x9F11), &[0x01])
                .primitive(tags::APP_PREFERRED_NAME, b"UICC CREDIT")
                .raw(&fci);
        });
    });
    assert_eq!(b.finish(), body(UPI_FCI));
}
