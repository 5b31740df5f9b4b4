//! Byte-exact command encodings against the ESC/POS reference, and parser behaviour on
//! unknown, incomplete and oversized input.

use pos_escpos::command::{self, Command, CommandError, MAX_COMMAND_LEN, Parser};

/// Each command, the reference name, and its bytes.
fn table() -> Vec<(&'static str, Command, Vec<u8>)> {
    vec![
        ("ESC @", Command::Init, vec![0x1B, 0x40]),
        ("LF", Command::LineFeed, vec![0x0A]),
        ("CR", Command::CarriageReturn, vec![0x0D]),
        ("ESC d n", Command::FeedLines(3), vec![0x1B, 0x64, 3]),
        ("ESC J n", Command::FeedDots(24), vec![0x1B, 0x4A, 24]),
        ("ESC ! n", Command::PrintMode(0x38), vec![0x1B, 0x21, 0x38]),
        ("ESC E n (on)", Command::Emphasis(true), vec![0x1B, 0x45, 1]),
        (
            "ESC E n (off)",
            Command::Emphasis(false),
            vec![0x1B, 0x45, 0],
        ),
        ("ESC - n", Command::Underline(2), vec![0x1B, 0x2D, 2]),
        (
            "GS ! n (double width and height)",
            Command::CharacterSize {
                width: 2,
                height: 2,
            },
            vec![0x1D, 0x21, 0x11],
        ),
        (
            "GS ! n (8x1)",
            Command::CharacterSize {
                width: 8,
                height: 1,
            },
            vec![0x1D, 0x21, 0x70],
        ),
        (
            "GS ! n (1x8)",
            Command::CharacterSize {
                width: 1,
                height: 8,
            },
            vec![0x1D, 0x21, 0x07],
        ),
        ("ESC M n", Command::Font(1), vec![0x1B, 0x4D, 1]),
        ("ESC a n", Command::Justify(1), vec![0x1B, 0x61, 1]),
        ("GS B n", Command::Reverse(true), vec![0x1D, 0x42, 1]),
        ("ESC 2", Command::LineSpacing(None), vec![0x1B, 0x32]),
        (
            "ESC 3 n",
            Command::LineSpacing(Some(30)),
            vec![0x1B, 0x33, 30],
        ),
        ("ESC t n", Command::CodeTable(19), vec![0x1B, 0x74, 19]),
        (
            "ESC R n",
            Command::InternationalCharset(0),
            vec![0x1B, 0x52, 0],
        ),
        ("FS &", Command::ChineseMode(true), vec![0x1C, 0x26]),
        ("FS .", Command::ChineseMode(false), vec![0x1C, 0x2E]),
        (
            "GS V m (function A, full)",
            Command::Cut {
                mode: 0,
                feed: None,
            },
            vec![0x1D, 0x56, 0],
        ),
        (
            "GS V m (function A, partial)",
            Command::Cut {
                mode: 49,
                feed: None,
            },
            vec![0x1D, 0x56, 49],
        ),
        (
            "GS V m n (function B, feed and partial cut)",
            Command::Cut {
                mode: 66,
                feed: Some(5),
            },
            vec![0x1D, 0x56, 66, 5],
        ),
        (
            "ESC p m t1 t2",
            Command::DrawerPulse {
                pin: 0,
                on: 25,
                off: 250,
            },
            vec![0x1B, 0x70, 0, 25, 250],
        ),
        ("GS h n", Command::BarcodeHeight(80), vec![0x1D, 0x68, 80]),
        (
            "GS w n",
            Command::BarcodeModuleWidth(3),
            vec![0x1D, 0x77, 3],
        ),
        ("GS H n", Command::HriPosition(2), vec![0x1D, 0x48, 2]),
        ("GS f n", Command::HriFont(0), vec![0x1D, 0x66, 0]),
        (
            "GS k m n d1...dn (function B, EAN-13)",
            Command::Barcode {
                system: 67,
                data: b"4006381333931".to_vec(),
            },
            [&[0x1D, 0x6B, 67, 13][..], b"4006381333931"].concat(),
        ),
        (
            "GS ( k <Function 165> (model 2)",
            Command::QrModel(50),
            vec![0x1D, 0x28, 0x6B, 4, 0, 0x31, 0x41, 0x32, 0],
        ),
        (
            "GS ( k <Function 167>",
            Command::QrModuleSize(6),
            vec![0x1D, 0x28, 0x6B, 3, 0, 0x31, 0x43, 6],
        ),
        (
            "GS ( k <Function 169> (level M)",
            Command::QrErrorCorrection(49),
            vec![0x1D, 0x28, 0x6B, 3, 0, 0x31, 0x45, 0x31],
        ),
        (
            "GS ( k <Function 180>",
            Command::QrStore(b"abc".to_vec()),
            vec![0x1D, 0x28, 0x6B, 6, 0, 0x31, 0x50, 0x30, b'a', b'b', b'c'],
        ),
        (
            "GS ( k <Function 181>",
            Command::QrPrint,
            vec![0x1D, 0x28, 0x6B, 3, 0, 0x31, 0x51, 0x30],
        ),
        (
            "GS v 0 m xL xH yL yH d1...dk",
            Command::RasterImage {
                mode: 0,
                width_bytes: 2,
                height: 2,
                data: vec![0x80, 0x01, 0xFF, 0x00],
            },
            vec![0x1D, 0x76, 0x30, 0, 2, 0, 2, 0, 0x80, 0x01, 0xFF, 0x00],
        ),
        (
            "GS a n",
            Command::AutoStatusBack(0xFF),
            vec![0x1D, 0x61, 0xFF],
        ),
        ("DLE EOT n", Command::RealTimeStatus(1), vec![0x10, 0x04, 1]),
        (
            "DLE ENQ n",
            Command::RealTimeRequest(2),
            vec![0x10, 0x05, 2],
        ),
        (
            "DLE DC4 fn=8 d1...d7",
            Command::ClearBuffer,
            vec![0x10, 0x14, 8, 1, 3, 20, 1, 6, 2, 8],
        ),
        ("GS I n", Command::TransmitPrinterId(1), vec![0x1D, 0x49, 1]),
        (
            "GS ( H <Function 48>",
            Command::ProcessIdRequest(*b"A001"),
            vec![0x1D, 0x28, 0x48, 6, 0, 0x30, 0x30, b'A', b'0', b'0', b'1'],
        ),
        (
            "text",
            Command::Text(b"Hi \xD5".to_vec()),
            b"Hi \xD5".to_vec(),
        ),
    ]
}

#[test]
fn every_command_encodes_to_its_reference_bytes_and_parses_back() {
    for (name, cmd, bytes) in table() {
        assert_eq!(cmd.to_vec(), bytes, "{name}: encoding");
        assert_eq!(cmd.validate(), Ok(()), "{name}: valid");
        let (parsed, left) = command::parse_all(&bytes);
        assert_eq!(parsed, vec![cmd.clone()], "{name}: parse");
        assert_eq!(left, 0, "{name}: nothing left over");
    }
}

#[test]
fn gs_paren_k_store_length_counts_cn_fn_m() {
    // GS ( k <Function 180>: (pL + pH × 256) = k + 3.
    let data = vec![b'7'; 300];
    let bytes = Command::QrStore(data.clone()).to_vec();
    assert_eq!(
        &bytes[..8],
        &[0x1D, 0x28, 0x6B, 0x2F, 0x01, 0x31, 0x50, 0x30]
    );
    assert_eq!(&bytes[8..], &data[..]);
}

#[test]
fn raster_dimensions_are_little_endian() {
    let cmd = Command::RasterImage {
        mode: 0,
        width_bytes: 0x0102,
        height: 1,
        data: vec![0; 0x0102],
    };
    assert_eq!(&cmd.to_vec()[..8], &[0x1D, 0x76, 0x30, 0, 0x02, 0x01, 1, 0]);
}

#[test]
fn parser_accepts_ascii_parameter_forms() {
    let (cmds, _) = command::parse_all(b"\x1bE\x31\x1dB\x30\x1da\x0f");
    assert_eq!(
        cmds,
        vec![
            Command::Emphasis(true),
            Command::Reverse(false),
            Command::AutoStatusBack(0x0F)
        ]
    );
}

#[test]
fn unmodelled_commands_keep_their_parameters_out_of_the_text() {
    // ESC G n (double strike), ESC W (print area, 8 bytes), GS L nL nH, GS ( L pL pH ...
    let bytes =
        b"\x1bG\x01A\x1bW\x00\x00\x00\x00\x40\x02\x00\x01B\x1dL\x10\x00C\x1d(L\x02\x00\x30\x45D";
    let (cmds, left) = command::parse_all(bytes);
    assert_eq!(left, 0);
    assert_eq!(
        cmds,
        vec![
            Command::Unknown(b"\x1bG\x01".to_vec()),
            Command::Text(b"A".to_vec()),
            Command::Unknown(b"\x1bW\x00\x00\x00\x00\x40\x02\x00\x01".to_vec()),
            Command::Text(b"B".to_vec()),
            Command::Unknown(b"\x1dL\x10\x00".to_vec()),
            Command::Text(b"C".to_vec()),
            Command::Unknown(b"\x1d(L\x02\x00\x30\x45".to_vec()),
            Command::Text(b"D".to_vec()),
        ]
    );
}

#[test]
fn barcode_function_a_runs_to_nul() {
    let (cmds, left) = command::parse_all(b"\x1dk\x02400638133393\x00X");
    assert_eq!(left, 0);
    assert_eq!(
        cmds,
        vec![
            Command::Unknown(b"\x1dk\x02400638133393\x00".to_vec()),
            Command::Text(b"X".to_vec())
        ]
    );
}

#[test]
fn stray_bytes_and_unknown_escapes_are_unknown() {
    let (cmds, left) = command::parse_all(b"\x00\x09\x1b\xff\x1d\x01\x1c\x7f\x10\x99");
    assert_eq!(left, 0);
    assert_eq!(
        cmds,
        vec![
            Command::Unknown(vec![0x00]),
            Command::Unknown(vec![0x09]),
            Command::Unknown(vec![0x1B, 0xFF]),
            Command::Unknown(vec![0x1D, 0x01]),
            Command::Unknown(vec![0x1C, 0x7F]),
            Command::Unknown(vec![0x10, 0x99]),
        ]
    );
}

#[test]
fn dle_eot_with_parameter_and_other_dle_dc4_functions() {
    // DLE EOT 7 a takes one more byte; DLE DC4 fn=1 m t (real-time pulse) two.
    let (cmds, left) = command::parse_all(b"\x10\x04\x07\x01\x10\x14\x01\x00\x05");
    assert_eq!(left, 0);
    assert_eq!(
        cmds,
        vec![
            Command::Unknown(vec![0x10, 0x04, 0x07, 0x01]),
            Command::Unknown(vec![0x10, 0x14, 0x01, 0x00, 0x05]),
        ]
    );
    // DLE DC4 fn=8 with wrong data is not a buffer clear.
    let (cmds, _) = command::parse_all(&[0x10, 0x14, 8, 1, 3, 20, 1, 6, 2, 9]);
    assert_eq!(
        cmds,
        vec![Command::Unknown(vec![0x10, 0x14, 8, 1, 3, 20, 1, 6, 2, 9])]
    );
}

#[test]
fn incomplete_command_stays_buffered_until_complete() {
    let full = Command::QrStore(b"https://example.invalid/r/1".to_vec()).to_vec();
    let mut p = Parser::new();
    p.push(b"AB");
    p.push(&full[..5]);
    assert_eq!(p.next_command(), Some(Command::Text(b"AB".to_vec())));
    assert_eq!(p.next_command(), None);
    assert_eq!(p.pending(), &full[..5]);
    p.push(&full[5..full.len() - 1]);
    assert_eq!(p.next_command(), None);
    p.push(&full[full.len() - 1..]);
    assert_eq!(
        p.next_command(),
        Some(Command::QrStore(b"https://example.invalid/r/1".to_vec()))
    );
    assert_eq!(p.next_command(), None);
    assert_eq!(p.consumed(), 2 + full.len() as u64);

    let (cmds, left) = command::parse_all(&[0x0A, 0x1D, 0x28, 0x6B, 0xFF, 0xFF, 0x31]);
    assert_eq!(cmds, vec![Command::LineFeed]);
    assert_eq!(left, 6, "GS ( k with 65535 declared bytes waits");
}

#[test]
fn huge_declared_raster_is_skipped_not_buffered() {
    // GS v 0 with 65535 x 65535 bytes declared: far above the cap.
    let mut p = Parser::new();
    p.push(&[0x1D, 0x76, 0x30, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
    p.push(&[0xAA; 1000]);
    assert_eq!(
        p.next_command(),
        Some(Command::Unknown(vec![
            0x1D, 0x76, 0x30, 0, 0xFF, 0xFF, 0xFF, 0xFF
        ]))
    );
    assert_eq!(p.next_command(), None);
    assert!(p.pending().is_empty());
    let declared = 65535u64 * 65535;
    assert_eq!(p.skipping(), declared - 1000);
    for _ in 0..100 {
        p.push(&[0x55; 4096]);
    }
    assert!(p.pending().is_empty(), "skipped bytes are not buffered");
    assert_eq!(p.consumed(), 8 + 1000 + 409_600);

    // Just over the cap is skipped; just under is waited for.
    let over = u32::try_from(MAX_COMMAND_LEN + 1).unwrap().to_le_bytes();
    let mut p = Parser::new();
    p.push(&[0x1D, 0x38, 0x4C, over[0], over[1], over[2], over[3]]);
    assert!(matches!(p.next_command(), Some(Command::Unknown(_))));
    assert_eq!(p.skipping(), MAX_COMMAND_LEN as u64 + 1);
}

#[test]
fn skip_ends_exactly_and_parsing_resumes() {
    let mut bytes = vec![0x1D, 0x38, 0x4C];
    let len = MAX_COMMAND_LEN as u32 + 10;
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend(std::iter::repeat_n(0x1B, len as usize));
    bytes.extend_from_slice(b"\x1b@OK");
    let (cmds, left) = command::parse_all(&bytes);
    assert_eq!(left, 0);
    assert_eq!(cmds.len(), 3);
    assert_eq!(cmds[1], Command::Init);
    assert_eq!(cmds[2], Command::Text(b"OK".to_vec()));
}

#[test]
fn validate_names_ill_formed_commands_and_encoding_stays_in_step() {
    assert_eq!(
        Command::Text(b"a\x1bb".to_vec()).validate(),
        Err(CommandError::TextControlByte {
            byte: 0x1B,
            index: 1
        })
    );
    assert_eq!(Command::Text(b"a\x1bb".to_vec()).to_vec(), b"a?b");
    assert!(matches!(
        Command::CharacterSize {
            width: 0,
            height: 9
        }
        .validate(),
        Err(CommandError::CharacterSize { .. })
    ));
    assert_eq!(
        Command::CharacterSize {
            width: 0,
            height: 9
        }
        .to_vec(),
        vec![0x1D, 0x21, 0x07]
    );
    let cut = Command::Cut {
        mode: 65,
        feed: None,
    };
    assert!(cut.validate().is_err());
    assert_eq!(cut.to_vec(), vec![0x1D, 0x56, 65, 0]);
    let raster = Command::RasterImage {
        mode: 0,
        width_bytes: 2,
        height: 2,
        data: vec![0xFF],
    };
    assert_eq!(
        raster.validate(),
        Err(CommandError::RasterSize {
            expected: 4,
            got: 1
        })
    );
    assert_eq!(&raster.to_vec()[8..], &[0xFF, 0, 0, 0]);
    let long = Command::Barcode {
        system: 73,
        data: vec![b'A'; 300],
    };
    assert!(long.validate().is_err());
    assert_eq!(long.to_vec().len(), 4 + 255);
    assert!(
        Command::Barcode {
            system: 2,
            data: vec![]
        }
        .validate()
        .is_err()
    );
    assert!(Command::RealTimeStatus(7).validate().is_err());
}

#[test]
fn names_follow_the_reference() {
    assert_eq!(Command::QrStore(vec![]).name(), "GS ( k <Function 180>");
    assert_eq!(
        Command::ProcessIdRequest(*b"0000").name(),
        "GS ( H <Function 48>"
    );
    assert_eq!(Command::LineSpacing(Some(1)).name(), "ESC 3");
}
