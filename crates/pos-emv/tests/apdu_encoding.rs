//! Command and response APDU encoding and decoding (ISO/IEC 7816-4 5.1), and the EMV
//! command builders checked against real transcripts.

use pos_emv::apdu::{ApduError, Case, Command, Response};
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).expect("test hex")
}

#[test]
fn case_1_short_and_extended() {
    let c = Command::new(0x00, 0x70, 0x00, 0x01);
    assert_eq!(c.case(), Case::One);
    assert_eq!(c.to_bytes(false).unwrap(), hex("00700001"));
    assert_eq!(c.to_extended_bytes().unwrap(), hex("00700001"));
    assert_eq!(Command::parse(&hex("00700001")).unwrap(), c);
}

#[test]
fn case_2_short() {
    let c = Command::new(0x00, 0xB2, 0x01, 0x0C).with_le(256);
    assert_eq!(c.case(), Case::Two);
    assert_eq!(c.to_bytes(false).unwrap(), hex("00B2010C00"));
    assert_eq!(Command::parse(&hex("00B2010C00")).unwrap(), c);
    let c = Command::new(0x00, 0x84, 0x00, 0x00).with_le(8);
    assert_eq!(c.to_bytes(false).unwrap(), hex("0084000008"));
    assert_eq!(Command::parse(&hex("0084000008")).unwrap(), c);
}

#[test]
fn case_2_extended() {
    let c = Command::new(0x00, 0xB0, 0x00, 0x00).with_le(257);
    assert_eq!(c.to_bytes(true).unwrap(), hex("00B00000 00 0101"));
    assert_eq!(
        c.to_bytes(false).unwrap_err(),
        ApduError::NeedsExtended {
            data_len: 0,
            le: Some(257)
        }
    );
    assert_eq!(Command::parse(&hex("00B00000000101")).unwrap(), c);
    // 0000 = 65536
    let max = Command::new(0x00, 0xB0, 0x00, 0x00).with_le(65_536);
    assert_eq!(max.to_bytes(true).unwrap(), hex("00B00000 00 0000"));
    assert_eq!(Command::parse(&hex("00B00000000000")).unwrap(), max);
    // Forced extended for a short-sized Le.
    let small = Command::new(0x00, 0xB0, 0x00, 0x00).with_le(256);
    assert_eq!(small.to_extended_bytes().unwrap(), hex("00B00000 00 0100"));
    assert_eq!(Command::parse(&hex("00B00000000100")).unwrap(), small);
}

#[test]
fn case_3_short_and_extended() {
    let c = Command::new(0x00, 0x82, 0x00, 0x00).with_data(hex("1122334455667788"));
    assert_eq!(c.case(), Case::Three);
    assert_eq!(
        c.to_bytes(false).unwrap(),
        hex("00820000081122334455667788")
    );
    assert_eq!(
        c.to_extended_bytes().unwrap(),
        hex("00820000 00 0008 1122334455667788")
    );
    assert_eq!(
        Command::parse(&hex("00820000081122334455667788")).unwrap(),
        c
    );
    assert_eq!(
        Command::parse(&hex("008200000000081122334455667788")).unwrap(),
        c
    );

    let long = Command::new(0x00, 0xD6, 0x00, 0x00).with_data(vec![0xAB; 300]);
    let mut expected = hex("00D60000 00 012C");
    expected.extend(vec![0xAB; 300]);
    assert_eq!(long.to_bytes(true).unwrap(), expected);
    assert!(matches!(
        long.to_bytes(false),
        Err(ApduError::NeedsExtended { data_len: 300, .. })
    ));
    assert_eq!(Command::parse(&expected).unwrap(), long);
}

#[test]
fn case_4_short_and_extended() {
    let c = Command::new(0x00, 0xA4, 0x04, 0x00)
        .with_data(hex("A0000000041010"))
        .with_le(256);
    assert_eq!(c.case(), Case::Four);
    assert_eq!(
        c.to_bytes(false).unwrap(),
        hex("00A4040007A000000004101000")
    );
    assert_eq!(
        c.to_extended_bytes().unwrap(),
        hex("00A40400 00 0007 A0000000041010 0100")
    );
    assert_eq!(
        Command::parse(&hex("00A4040007A000000004101000")).unwrap(),
        c
    );
    assert_eq!(
        Command::parse(&hex("00A40400000007A00000000410100100")).unwrap(),
        c
    );

    // Extended because of Le only, and because of Lc only.
    let big_le = Command::new(0x80, 0xAE, 0x80, 0x00)
        .with_data(vec![1, 2, 3])
        .with_le(1000);
    assert_eq!(
        big_le.to_bytes(true).unwrap(),
        hex("80AE8000 00 0003 010203 03E8")
    );
    assert_eq!(
        Command::parse(&big_le.to_bytes(true).unwrap()).unwrap(),
        big_le
    );
    let big_lc = Command::new(0x80, 0xAE, 0x80, 0x00)
        .with_data(vec![7; 256])
        .with_le(65_536);
    let enc = big_lc.to_bytes(true).unwrap();
    assert_eq!(&enc[..7], &hex("80AE8000 00 0100")[..]);
    assert_eq!(&enc[enc.len() - 2..], &[0x00, 0x00]);
    assert_eq!(enc.len(), 4 + 3 + 256 + 2);
    assert_eq!(Command::parse(&enc).unwrap(), big_lc);
}

#[test]
fn encoding_errors() {
    let too_long = Command::new(0, 0xD6, 0, 0).with_data(vec![0; 65_536]);
    assert_eq!(
        too_long.to_bytes(true).unwrap_err(),
        ApduError::DataTooLong { len: 65_536 }
    );
    assert_eq!(
        too_long.to_extended_bytes().unwrap_err(),
        ApduError::DataTooLong { len: 65_536 }
    );
    assert_eq!(
        Command::new(0, 0xB0, 0, 0)
            .with_le(0)
            .to_bytes(true)
            .unwrap_err(),
        ApduError::LeOutOfRange { le: 0 }
    );
    assert_eq!(
        Command::new(0, 0xB0, 0, 0)
            .with_le(65_537)
            .to_bytes(true)
            .unwrap_err(),
        ApduError::LeOutOfRange { le: 65_537 }
    );
    // 65535 data bytes is the limit and works.
    let max = Command::new(0, 0xD6, 0, 0).with_data(vec![0; 65_535]);
    assert_eq!(max.to_bytes(true).unwrap().len(), 4 + 3 + 65_535);
}

#[test]
fn parse_errors() {
    assert_eq!(
        Command::parse(&[]).unwrap_err(),
        ApduError::TooShort { len: 0, min: 4 }
    );
    assert_eq!(
        Command::parse(&hex("00A404")).unwrap_err(),
        ApduError::TooShort { len: 3, min: 4 }
    );
    // Lc says 7, 3 bytes follow.
    assert!(matches!(
        Command::parse(&hex("00A4040007A00000")),
        Err(ApduError::LengthMismatch { .. })
    ));
    // Lc 2 with 4 bytes after: neither case 3 nor case 4.
    assert!(matches!(
        Command::parse(&hex("80A8000002830000 00")),
        Err(ApduError::LengthMismatch { .. })
    ));
    // Extended marker then one byte.
    assert!(matches!(
        Command::parse(&hex("00B000000001")),
        Err(ApduError::LengthMismatch { .. })
    ));
    // Extended Lc of zero with data after it.
    assert_eq!(
        Command::parse(&hex("00D60000 00 0000 AB")).unwrap_err(),
        ApduError::ZeroExtendedLc
    );
    // Extended Lc 3, 1 byte of data.
    assert!(matches!(
        Command::parse(&hex("00D60000 00 0003 AB")),
        Err(ApduError::LengthMismatch { .. })
    ));
}

#[test]
fn builders_give_the_bytes_the_transcripts_show() {
    // contact-mastercard.apdu and contact-upi.apdu (binaryfoo/emv-bertlv, MIT).
    let cases: Vec<(Command, &str)> = vec![
        (
            Command::select_by_name(&hex("A0000000041010"), true),
            "00A4040007A000000004101000",
        ),
        (
            Command::select_by_name(b"1PAY.SYS.DDF01", true),
            "00A404000E315041592E5359532E444446303100",
        ),
        (
            Command::select_by_name(&hex("A000000333010102"), false),
            "00A4040208A00000033301010200",
        ),
        (Command::get_processing_options(&[]), "80A8000002830000"),
        (Command::read_record(2, 2).unwrap(), "00B2021400"),
        (Command::read_record(1, 1).unwrap(), "00B2010C00"),
        (Command::read_record(5, 2).unwrap(), "00B2022C00"),
        (Command::get_data(0x9F36), "80CA9F3600"),
        (Command::get_data(0x9F13), "80CA9F1300"),
        (
            Command::internal_authenticate(&hex("7863AFC6")),
            "00880000047863AFC600",
        ),
        (
            Command::external_authenticate(&hex("1122334455667788")),
            "00820000081122334455667788",
        ),
        (
            Command::generate_ac(
                0x40,
                &hex("11223344556677880000303080000080008221F6010000000000000000"),
            ),
            "80AE40001D11223344556677880000303080000080008221F601000000000000000000",
        ),
        (Command::get_response(0x1C), "00C000001C"),
        (Command::get_response(256), "00C0000000"),
        (Command::get_challenge(), "0084000000"),
    ];
    for (cmd, bytes) in cases {
        assert_eq!(cmd.to_bytes(false).unwrap(), hex(bytes), "{cmd:?}");
        assert_eq!(Command::parse(&hex(bytes)).unwrap(), cmd);
    }
}

#[test]
fn gpo_wraps_pdol_data_in_tag_83() {
    let c = Command::get_processing_options(&hex("000000001000 0978"));
    assert_eq!(
        c.to_bytes(false).unwrap(),
        hex("80A80000 0A 8308 0000000010000978 00")
    );
    // 200 bytes: the length needs the 81 form.
    let c = Command::get_processing_options(&[0x55; 200]);
    assert_eq!(&c.data[..3], &[0x83, 0x81, 200]);
    assert_eq!(c.data.len(), 203);
}

#[test]
fn read_record_rejects_bad_sfi_and_record() {
    assert!(matches!(
        Command::read_record(0, 1),
        Err(ApduError::InvalidParameter(_))
    ));
    assert!(matches!(
        Command::read_record(31, 1),
        Err(ApduError::InvalidParameter(_))
    ));
    assert!(matches!(
        Command::read_record(1, 0),
        Err(ApduError::InvalidParameter(_))
    ));
    assert_eq!(
        Command::read_record(30, 255)
            .unwrap()
            .to_bytes(false)
            .unwrap(),
        hex("00B2FFF400")
    );
}

#[test]
fn responses() {
    let r = Response::from_bytes(&hex("9F360200069000")).unwrap();
    assert_eq!(r.data, hex("9F36020006"));
    assert_eq!((r.sw1, r.sw2, r.sw()), (0x90, 0x00, 0x9000));
    assert!(r.is_success() && !r.is_warning());
    assert_eq!(r.to_bytes(), hex("9F360200069000"));

    let w = Response::from_bytes(&hex("6283")).unwrap();
    assert!(w.data.is_empty() && w.is_warning() && !w.is_success());
    assert!(Response::from_bytes(&hex("63C2")).unwrap().is_warning());
    assert!(!Response::from_bytes(&hex("6A82")).unwrap().is_warning());

    assert_eq!(
        Response::from_bytes(&[0x90]).unwrap_err(),
        ApduError::TooShort { len: 1, min: 2 }
    );
    assert!(Response::from_bytes(&[]).is_err());
    assert_eq!(
        Response::new(vec![1, 2], 0x6A83).to_bytes(),
        hex("01026A83")
    );
}

#[test]
fn debug_output_hides_apdu_bodies() {
    let pan = hex("5413330089600044");
    let c = Command::new(0x00, 0xA4, 0x04, 0x00)
        .with_data(pan.clone())
        .with_le(256);
    let r = Response::new(pan, 0x9000);
    let shown = format!("{c:?} {r:?}");
    assert!(
        !shown.contains("5413") && !shown.contains("84, 19"),
        "{shown}"
    );
    assert!(shown.contains("A4") && shown.contains("9000"), "{shown}");
}

fn any_command() -> impl Strategy<Value = Command> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        prop_oneof![
            3 => proptest::collection::vec(any::<u8>(), 0..=300),
            1 => proptest::collection::vec(any::<u8>(), 0..=2000),
        ],
        prop_oneof![
            Just(None),
            (1u32..=256).prop_map(Some),
            (1u32..=65_536).prop_map(Some),
        ],
    )
        .prop_map(|(cla, ins, p1, p2, data, le)| Command {
            cla,
            ins,
            p1,
            p2,
            data,
            le,
        })
}

proptest! {
    #[test]
    fn encode_then_parse_gives_the_command_back(cmd in any_command()) {
        let bytes = cmd.to_bytes(true).expect("valid command");
        prop_assert_eq!(&Command::parse(&bytes).expect("own encoding"), &cmd);
        let ext = cmd.to_extended_bytes().expect("valid command");
        prop_assert_eq!(&Command::parse(&ext).expect("own encoding"), &cmd);
        if cmd.fits_short() {
            prop_assert_eq!(cmd.to_bytes(false).expect("fits"), bytes);
        } else {
            prop_assert!(cmd.to_bytes(false).is_err());
        }
    }

    #[test]
    fn parse_never_panics_and_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(cmd) = Command::parse(&bytes) {
            // Whatever parses re-encodes to the same bytes in one of the two forms.
            let short = cmd.to_bytes(false).ok();
            let ext = cmd.to_extended_bytes().ok();
            prop_assert!(short.as_deref() == Some(&bytes[..]) || ext.as_deref() == Some(&bytes[..]));
        }
        let _ = Response::from_bytes(&bytes);
    }

    #[test]
    fn parse_short_shaped_input_never_panics(
        head in proptest::collection::vec(any::<u8>(), 4..=4),
        lc in any::<u8>(),
        tail in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = head;
        bytes.push(lc);
        bytes.extend(tail);
        let _ = Command::parse(&bytes);
    }
}
