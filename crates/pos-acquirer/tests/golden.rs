//! Golden vectors: exact bytes written out by hand, per field.
#![allow(clippy::unwrap_used)]

use pos_acquirer::*;
use pos_hal::{Fault, FaultKind};

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn sale_0200() -> Message {
    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    m.set_pan("4761739001010119")
        .set_processing_code("000000")
        .set_amount(1500)
        .set_stan(123)
        .set_expiry("2512")
        .set_pos_entry_mode("051")
        .set_pos_condition("00")
        .set_terminal_id("TERM0001")
        .set_merchant_id("MERCHANT0000001")
        .set_currency("978")
        .set_icc_data(&[0x9f, 0x26, 0x02, 0xab, 0xcd]);
    m
}

#[test]
fn sale_0200_ascii() {
    let d = Dialect::default_pos();
    let expected = cat(&[
        b"0200",                                           // MTI
        &[0x70, 0x24, 0x04, 0x80, 0x00, 0xC0, 0x82, 0x00], // bitmap: 2 3 4 | 11 14 | 22 | 25 | - | 41 42 | 49 55 | -
        b"16",                                             // 2 LL
        b"4761739001010119",                               // 2 PAN
        b"000000",                                         // 3 processing code
        b"000000001500",                                   // 4 amount
        b"000123",                                         // 11 STAN
        b"2512",                                           // 14 expiry
        b"051",                                            // 22 entry mode
        b"00",                                             // 25 condition
        b"TERM0001",                                       // 41 terminal id
        b"MERCHANT0000001",                                // 42 merchant id
        b"978",                                            // 49 currency
        b"005",                                            // 55 LLL
        &[0x9f, 0x26, 0x02, 0xab, 0xcd],                   // 55 ICC TLV
    ]);
    let m = sale_0200();
    assert_eq!(encode(&m, &d).unwrap(), expected);
    assert_eq!(decode(&expected, &d).unwrap(), m);
}

#[test]
fn sale_0200_bcd_with_track2() {
    let d = Dialect::default_pos_bcd();
    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    m.set_processing_code("000000")
        .set_amount(1500)
        .set_pos_entry_mode("021")
        .set_track2("4761739001010119=25122011");
    let expected = cat(&[
        &[0x02, 0x00],                                     // MTI, BCD
        &[0x30, 0x00, 0x04, 0x00, 0x20, 0x00, 0x00, 0x00], // bitmap: 3 4 | - | 22 | - | 35
        &[0x00, 0x00, 0x00],                               // 3 n6
        &[0x00, 0x00, 0x00, 0x00, 0x15, 0x00],             // 4 n12
        &[0x00, 0x21],                                     // 22 n3, leading 0 nibble
        &[0x25],                                           // 35 LL = 25 (BCD)
        &[
            0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x01, 0x19, 0xD2, 0x51, 0x22, 0x01, 0x1F,
        ], // '=' is D, trailing F
    ]);
    assert_eq!(encode(&m, &d).unwrap(), expected);
    assert_eq!(decode(&expected, &d).unwrap(), m);
}

#[test]
fn response_0210_approved() {
    let d = Dialect::default_pos();
    let req = sale_0200();
    let mut m = Message::new(req.mti.response().unwrap());
    m.set_processing_code("000000")
        .set_amount(1500)
        .set_stan(123)
        .set_rrn("512300000123")
        .set_auth_code("A1B2C3")
        .set_response_code("00")
        .set_terminal_id("TERM0001");
    let expected = cat(&[
        b"0210",
        &[0x30, 0x20, 0x00, 0x00, 0x0E, 0x80, 0x00, 0x00], // 3 4 | 11 | - | - | 37 38 39 | 41
        b"000000",                                         // 3
        b"000000001500",                                   // 4
        b"000123",                                         // 11
        b"512300000123",                                   // 37 RRN
        b"A1B2C3",                                         // 38 auth code
        b"00",                                             // 39 response code
        b"TERM0001",                                       // 41
    ]);
    assert_eq!(encode(&m, &d).unwrap(), expected);
    let back = decode(&expected, &d).unwrap();
    assert_eq!(back, m);
    assert!(back.is_approved());
    assert_eq!(back.auth_code(), Some("A1B2C3"));
    assert_eq!(back.stan(), Some(123));
}

#[test]
fn reversal_0400_secondary_bitmap_bcd() {
    let d = Dialect::default_pos_bcd();
    let mut m = Message::new(Mti::REVERSAL_REQUEST);
    m.set_pan("4761739001010119")
        .set_processing_code("000000")
        .set_amount(1500)
        .set_stan(123)
        .set_pos_entry_mode("051")
        .set_currency("978")
        .set_original_data("020000012201311200000000000000000000000000");
    let expected = cat(&[
        &[0x04, 0x00],                                     // MTI
        &[0xF0, 0x20, 0x04, 0x00, 0x00, 0x00, 0x80, 0x00], // 1(secondary) 2 3 4 | 11 | 22 | 49
        &[0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00], // secondary: 90
        &[0x16],                                           // 2 LL
        &[0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x01, 0x19], // 2 PAN
        &[0x00, 0x00, 0x00],                               // 3
        &[0x00, 0x00, 0x00, 0x00, 0x15, 0x00],             // 4
        &[0x00, 0x01, 0x23],                               // 11
        &[0x00, 0x51],                                     // 22
        &[0x09, 0x78],                                     // 49
        // 90: MTI 0200, STAN 000122, 0131120000, acquirer and forwarding ids 0...
        &[0x02, 0x00, 0x00, 0x01, 0x22, 0x01, 0x31, 0x12, 0x00, 0x00],
        &[0x00; 11],
    ]);
    assert_eq!(encode(&m, &d).unwrap(), expected);
    assert_eq!(decode(&expected, &d).unwrap(), m);
    assert_eq!(m.mti.response(), Some(Mti::REVERSAL_RESPONSE));
}

#[test]
fn echo_0800_field_70() {
    let d = Dialect::default_pos();
    let mut m = Message::new(Mti::NETWORK_REQUEST);
    m.set_transmission_time("0131120000")
        .set_stan(7)
        .set_network_code(301);
    let expected = cat(&[
        b"0800",
        &[0x82, 0x20, 0, 0, 0, 0, 0, 0], // 1(secondary) 7 | 11
        &[0x04, 0, 0, 0, 0, 0, 0, 0],    // secondary: 70
        b"0131120000",                   // 7
        b"000007",                       // 11
        b"301",                          // 70 echo test
    ]);
    assert_eq!(encode(&m, &d).unwrap(), expected);
    let back = decode(&expected, &d).unwrap();
    assert_eq!(back.network_code(), Some(301));
    assert_eq!(back, m);
}

#[test]
fn mti_helpers() {
    let m: Mti = "0420".parse().unwrap();
    assert_eq!(
        (m.version(), m.class(), m.function(), m.origin()),
        (0, 4, 2, 0)
    );
    assert_eq!(m.response(), Some(Mti::REVERSAL_ADVICE_RESPONSE));
    assert_eq!(
        Mti::new(201).unwrap().response(),
        Some(Mti::FINANCIAL_RESPONSE)
    );
    assert_eq!(Mti::AUTH_REQUEST.response(), Some(Mti::AUTH_RESPONSE));
    assert_eq!(Mti::NETWORK_REQUEST.response(), Some(Mti::NETWORK_RESPONSE));
    assert_eq!(Mti::FINANCIAL_RESPONSE.response(), None);
    assert!(Mti::FINANCIAL_RESPONSE.is_response());
    assert_eq!(Mti::FINANCIAL_REQUEST.to_string(), "0200");
    assert!("200".parse::<Mti>().is_err());
    assert!("02a0".parse::<Mti>().is_err());
    assert!(Mti::new(10000).is_none());
}

#[test]
fn encode_errors_name_the_field() {
    let d = Dialect::default_pos();
    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    m.set_str(4, "00000000150A");
    let e = encode(&m, &d).unwrap_err();
    assert!(
        matches!(e, CodecError::InvalidField { field: 4, .. }),
        "{e}"
    );
    assert_eq!(e.kind(), FaultKind::InvalidInput);

    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    m.set_amount(1_000_000_000_000); // 13 digits
    assert!(matches!(
        encode(&m, &d),
        Err(CodecError::InvalidField { field: 4, .. })
    ));

    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    m.set_pan("47617390010101190000"); // 20 > 19
    assert!(matches!(
        encode(&m, &d),
        Err(CodecError::InvalidField { field: 2, .. })
    ));

    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    m.set_str(5, "000000001500");
    assert_eq!(encode(&m, &d), Err(CodecError::NotInDialect { field: 5 }));
    m.fields.clear();
    m.set_str(1, "x");
    assert_eq!(encode(&m, &d), Err(CodecError::NotInDialect { field: 1 }));

    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    m.set_pan("4761739001010119");
    let e = encode(&m.clone().set_track2("4761=X").clone(), &d).unwrap_err();
    assert!(!e.to_string().contains("4761"), "{e}");
}

#[test]
fn decode_errors() {
    let d = Dialect::default_pos();
    let good = encode(&sale_0200(), &d).unwrap();

    // Truncated inside field 55.
    let e = decode(&good[..good.len() - 1], &d).unwrap_err();
    assert!(
        matches!(
            e,
            CodecError::Truncated {
                part: Part::Field(55),
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.kind(), FaultKind::Protocol);
    // Truncated MTI and bitmap.
    assert!(matches!(
        decode(b"02", &d),
        Err(CodecError::Truncated {
            part: Part::Mti,
            ..
        })
    ));
    assert!(matches!(
        decode(b"0200\x70", &d),
        Err(CodecError::Truncated {
            part: Part::PrimaryBitmap,
            offset: 4,
            ..
        })
    ));
    // Trailing bytes.
    let mut extra = good.clone();
    extra.push(0);
    assert_eq!(
        decode(&extra, &d),
        Err(CodecError::TrailingBytes {
            offset: good.len(),
            count: 1
        })
    );
    // Bad length prefix: field 2 LL at offset 12.
    let mut bad = good.clone();
    bad[12] = b'x';
    assert!(matches!(
        decode(&bad, &d),
        Err(CodecError::BadLength {
            part: Part::Field(2),
            offset: 12,
            ..
        })
    ));
    // Length above the maximum (20 > 19).
    let mut bad = good.clone();
    bad[12..14].copy_from_slice(b"20");
    assert!(matches!(
        decode(&bad, &d),
        Err(CodecError::BadLength {
            part: Part::Field(2),
            offset: 12,
            ..
        })
    ));
    // Non-numeric in an n field: first byte of field 3 at 14 + 16 = 30.
    let mut bad = good.clone();
    bad[30] = b'A';
    assert!(matches!(
        decode(&bad, &d),
        Err(CodecError::BadContent {
            part: Part::Field(3),
            offset: 30,
            ..
        })
    ));
    // Unknown field in the bitmap: bit 5 (byte 4 of the message, 0x08).
    let mut bad = good.clone();
    bad[4] |= 0x08;
    assert_eq!(
        decode(&bad, &d),
        Err(CodecError::UnknownField {
            field: 5,
            offset: 4
        })
    );
    // Bad MTI.
    let mut bad = good.clone();
    bad[1] = b'x';
    assert!(matches!(
        decode(&bad, &d),
        Err(CodecError::BadContent {
            part: Part::Mti,
            ..
        })
    ));
}

#[test]
fn decode_errors_bcd() {
    let d = Dialect::default_pos_bcd();
    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    m.set_pan("476173900101011").set_pos_entry_mode("051");
    let good = encode(&m, &d).unwrap();
    // MTI(2) bitmap(8) LL(1)=0x15 then 8 bytes, PAN odd: leading 0 nibble.
    assert_eq!(good[10], 0x15);
    assert_eq!(good[11], 0x04);
    assert_eq!(decode(&good, &d).unwrap(), m);
    // Bad nibble.
    let mut bad = good.clone();
    bad[12] = 0x7A;
    assert_eq!(
        decode(&bad, &d),
        Err(CodecError::BadBcd {
            part: Part::Field(2),
            offset: 12,
            byte: 0x7A
        })
    );
    // Non-zero pad nibble of an odd n field.
    let mut bad = good.clone();
    bad[11] = 0x14;
    assert!(matches!(
        decode(&bad, &d),
        Err(CodecError::BadBcd {
            part: Part::Field(2),
            offset: 11,
            ..
        })
    ));
    // Bad BCD length prefix.
    let mut bad = good.clone();
    bad[10] = 0x1A;
    assert!(matches!(
        decode(&bad, &d),
        Err(CodecError::BadBcd {
            part: Part::Field(2),
            offset: 10,
            ..
        })
    ));
    // Bad BCD MTI.
    let mut bad = good.clone();
    bad[0] = 0xF2;
    assert!(matches!(
        decode(&bad, &d),
        Err(CodecError::BadBcd {
            part: Part::Mti,
            offset: 0,
            ..
        })
    ));
}

#[test]
fn dialect_from_config() {
    let json = r#"{
        "mti_encoding": "bcd",
        "length_encoding": "binary",
        "fields": [
            {"number": 2, "kind": {"llvar": 19}, "encoding": "bcd", "content": "n"},
            {"number": 55, "kind": {"lllvar": 255}, "encoding": "ascii", "content": "b"}
        ]
    }"#;
    let d: Dialect = serde_json::from_str(json).unwrap();
    assert_eq!(
        d.field(55),
        Some(&FieldSpec::new(
            55,
            LengthKind::LllVar(255),
            Encoding::Ascii,
            Content::B
        ))
    );
    let mut m = Message::new(Mti::AUTH_REQUEST);
    m.set_pan("4761739001010119").set_icc_data(&[0x9f, 0x02]);
    let expected = cat(&[
        &[0x01, 0x00],
        &[0x40, 0, 0, 0, 0, 0, 0x02, 0],
        &[16],                                             // binary LL
        &[0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x01, 0x19], // 2
        &[0x00, 0x02],                                     // binary LLL
        b"9F02",                                           // 55 as ASCII hex
    ]);
    assert_eq!(encode(&m, &d).unwrap(), expected);
    assert_eq!(decode(&expected, &d).unwrap(), m);
    let mut bad = expected.clone();
    bad[21] = b'G';
    assert!(matches!(
        decode(&bad, &d),
        Err(CodecError::BadContent {
            part: Part::Field(55),
            offset: 21,
            ..
        })
    ));

    let round: Dialect = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
    assert_eq!(round, d);
    let bad = r#"{"mti_encoding":"ascii","length_encoding":"ascii","fields":[{"number":1,"kind":{"fixed":8},"encoding":"binary","content":"b"}]}"#;
    assert!(serde_json::from_str::<Dialect>(bad).is_err());
}

#[test]
fn framing() {
    assert_eq!(frame(b"abc").unwrap(), b"\x00\x03abc");
    assert!(frame(b"").is_err());
    assert!(frame(&vec![0; MAX_FRAME + 1]).is_err());
    assert_eq!(frame(&vec![7; MAX_FRAME]).unwrap()[..2], [0xff, 0xff]);

    let mut d = Deframer::new(100);
    d.push(b"\x00\x02hi\x00\x01");
    assert_eq!(d.next_frame(), Ok(Some(b"hi".to_vec())));
    assert_eq!(d.next_frame(), Ok(None));
    d.push(b"!");
    assert_eq!(d.next_frame(), Ok(Some(b"!".to_vec())));
    assert_eq!(d.buffered(), 0);
    d.push(b"\x00\x00");
    assert_eq!(
        d.next_frame(),
        Err(CodecError::FrameLength { len: 0, max: 100 })
    );
    let mut d = Deframer::new(100);
    d.push(b"\x00\x65");
    let e = d.next_frame().unwrap_err();
    assert_eq!(e, CodecError::FrameLength { len: 101, max: 100 });
    assert_eq!(e.kind(), FaultKind::Protocol);
    assert!(d.next_frame().is_err(), "stays failed");
}

#[test]
fn debug_of_decoded_message_masks_card_data() {
    let d = Dialect::default_pos();
    let mut m = sale_0200();
    m.set_track2("4761739001010119=25122011");
    let back = decode(&encode(&m, &d).unwrap(), &d).unwrap();
    let s = format!("{back:?}");
    assert!(!s.contains("4761739001010119"), "{s}");
    assert!(!s.contains("25122011"), "{s}");
    assert!(s.contains("476173******0119"), "{s}");
}
