//! Receipt documents to ESC/POS: exact bytes, validation failures, code pages, images.

use pos_escpos::command::{self, Command};
use pos_escpos::encode::{
    self, BarcodeProblem, EncodeError, RASTER_BAND_ROWS, Substitution, barcode_data,
    encode_document, gs1_check_digit, rasterize,
};
use pos_escpos::profile::Profile;
use pos_hal::{
    Align, Barcode, Bitmap, CutKind, Document, DrawerPin, Fault, FaultKind, Font, HriPosition,
    Image, ImageConversion, QrCode, QrErrorCorrection, Symbology, TextStyle, Underline,
};

/// ESC E 0, ESC - 0, GS ! 0, ESC M 0, ESC a 0, GS B 0.
const RESET: &[u8] = &[
    0x1B, 0x45, 0, 0x1B, 0x2D, 0, 0x1D, 0x21, 0, 0x1B, 0x4D, 0, 0x1B, 0x61, 0, 0x1D, 0x42, 0,
];
/// ESC 2 (default line spacing).
const ESC_2: &[u8] = &[0x1B, 0x32];
/// FS . (Chinese mode off).
const FS_DOT: &[u8] = &[0x1C, 0x2E];

fn epson() -> Profile {
    Profile::builtin("epson-tm-t20").expect("built in")
}
fn generic80() -> Profile {
    Profile::builtin("generic-80").expect("built in")
}
fn generic58() -> Profile {
    Profile::builtin("generic-58").expect("built in")
}

fn job_body(job: &encode::EncodedJob, prelude_len: usize, trailer_len: usize) -> &[u8] {
    &job.bytes[prelude_len..job.bytes.len() - trailer_len]
}

fn one_block_bytes(doc: &Document, profile: &Profile) -> Vec<u8> {
    let job = encode_document(doc, profile).expect("document encodes");
    let (pre, post) = if profile.chinese {
        (
            RESET.len() + FS_DOT.len() + ESC_2.len(),
            RESET.len() + FS_DOT.len(),
        )
    } else {
        (RESET.len() + ESC_2.len(), RESET.len())
    };
    job_body(&job, pre, post).to_vec()
}

#[test]
fn plain_text_is_framed_by_style_resets() {
    let mut doc = Document::new();
    doc.text("Hi");
    let job = encode_document(&doc, &epson()).unwrap();
    let expected = [RESET, ESC_2, b"Hi\n", RESET].concat();
    assert_eq!(job.bytes, expected);
    assert_eq!(job.block_offsets, vec![RESET.len() + ESC_2.len()]);
    assert_eq!(job.text_lines, 1);
    assert!(job.replaced.is_empty());
}

#[test]
fn styled_receipt_exact_bytes() {
    let mut doc = Document::new();
    doc.text_styled(
        "CAFE",
        TextStyle::new().bold().double().align(Align::Center),
    )
    .text("2,50 €")
    .cut(CutKind::FeedAndPartial);
    let job = encode_document(&doc, &epson()).unwrap();
    let start = RESET.len() + ESC_2.len();
    let b0: &[u8] = &[
        0x1B, 0x61, 1, // ESC a 1
        0x1D, 0x21, 0x11, // GS ! (2x2)
        0x1B, 0x45, 1, // ESC E 1
        b'C', b'A', b'F', b'E', 0x0A,
    ];
    let b1: &[u8] = &[
        0x1B, 0x61, 0, // ESC a 0
        0x1D, 0x21, 0x00, // GS ! (1x1)
        0x1B, 0x45, 0, // ESC E 0
        0x1B, 0x74, 19, // ESC t 19 (PC858)
        b'2', b',', b'5', b'0', b' ', 0xD5, 0x0A,
    ];
    let b2: &[u8] = &[0x1D, 0x56, 66, 3]; // GS V 66 3
    assert_eq!(job.bytes, [RESET, ESC_2, b0, b1, b2, RESET].concat());
    assert_eq!(
        job.block_offsets,
        vec![start, start + b0.len(), start + b0.len() + b1.len()]
    );
}

#[test]
fn every_style_maps_to_its_command() {
    let style = TextStyle {
        bold: true,
        underline: Underline::Double,
        width: 3,
        height: 5,
        font: Font::B,
        align: Align::Right,
        inverse: true,
    };
    let mut doc = Document::new();
    doc.text_styled("x", style);
    assert_eq!(
        one_block_bytes(&doc, &epson()),
        [
            &[0x1B, 0x61, 2][..], // ESC a 2
            &[0x1B, 0x4D, 1],     // ESC M 1
            &[0x1D, 0x21, 0x24],  // GS ! (3 wide, 5 high)
            &[0x1B, 0x45, 1],     // ESC E 1
            &[0x1B, 0x2D, 2],     // ESC - 2
            &[0x1D, 0x42, 1],     // GS B 1
            b"x\n",
        ]
        .concat()
    );
}

#[test]
fn encoder_sends_no_init_and_no_status_commands() {
    let mut doc = Document::new();
    doc.text_styled("HEAD", TextStyle::new().bold().underline().inverse())
        .separator('=')
        .text("Crème brûlée 4,00 €")
        .feed(2)
        .barcode(Barcode::new(Symbology::Ean13, "400638133393"))
        .qr(QrCode::new("https://example.invalid/r/1"))
        .image(Image {
            bitmap: Bitmap::new(16, 8, vec![0; 128]).unwrap(),
            conversion: ImageConversion::Dither,
            align: Align::Center,
        })
        .drawer_kick(DrawerPin::Pin2)
        .cut(CutKind::Partial);
    for profile in [epson(), generic80()] {
        let job = encode_document(&doc, &profile).unwrap();
        let (cmds, left) = command::parse_all(&job.bytes);
        assert_eq!(left, 0);
        for c in &cmds {
            assert!(
                !matches!(
                    c,
                    Command::Init
                        | Command::RealTimeStatus(_)
                        | Command::RealTimeRequest(_)
                        | Command::ClearBuffer
                        | Command::AutoStatusBack(_)
                        | Command::TransmitPrinterId(_)
                        | Command::ProcessIdRequest(_)
                        | Command::Unknown(_)
                ),
                "{}: {c:?}",
                profile.name
            );
            assert_eq!(c.validate(), Ok(()), "{c:?}");
        }
        // Every block offset is a command boundary.
        for &off in &job.block_offsets {
            let (_, left) = command::parse_all(&job.bytes[..off]);
            assert_eq!(left, 0, "offset {off} splits a command");
        }
        assert_eq!(job.block_offsets.len(), doc.blocks.len());
        assert!(job.block_offsets.windows(2).all(|w| w[0] < w[1]));
        assert!(job.bytes.ends_with(RESET) || job.bytes.ends_with(&[RESET, FS_DOT].concat()));
        assert_eq!(job.text_lines, 2);
    }
}

#[test]
fn code_table_is_selected_only_when_it_changes() {
    let mut doc = Document::new();
    doc.text("1 €")
        .text("2 €")
        .text("plain")
        .text("£ 3")
        .text("4 €");
    let job = encode_document(&doc, &epson()).unwrap();
    let (cmds, _) = command::parse_all(&job.bytes);
    let tables: Vec<u8> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::CodeTable(n) => Some(*n),
            _ => None,
        })
        .collect();
    // "£ 3" is in CP437 (listed first), so the table changes to 0 and back to 19.
    assert_eq!(tables, vec![19, 0, 19]);
}

#[test]
fn chinese_text_uses_fs_ampersand_only_on_a_chinese_profile() {
    let mut doc = Document::new();
    doc.text("收据");
    let job = encode_document(&doc, &generic80()).unwrap();
    assert_eq!(
        job.bytes,
        [
            RESET,
            FS_DOT,
            ESC_2,
            &[0x1C, 0x26, 0xCA, 0xD5, 0xBE, 0xDD, 0x0A, 0x1C, 0x2E],
            RESET,
            FS_DOT
        ]
        .concat()
    );
    assert!(job.replaced.is_empty());

    // Without a Chinese font the text would be a row of `?`: refused, with a clear error.
    let err = encode_document(&doc, &epson()).unwrap_err();
    assert!(
        matches!(err, EncodeError::NoChineseFont { block: 0, ch: '收', ref profile } if profile == "epson-tm-t20"),
        "{err}"
    );
    assert!(err.to_string().contains("no Chinese font"), "{err}");
}

#[test]
fn latin_text_stays_single_byte_on_a_chinese_profile() {
    let mut doc = Document::new();
    doc.text("Total 5,00 €");
    let body = one_block_bytes(&doc, &generic80());
    assert_eq!(body, [&[0x1B, 0x74, 19][..], b"Total 5,00 \xD5\n"].concat());
}

#[test]
fn separators_fill_the_line_for_the_font() {
    let mut doc = Document::new();
    doc.separator('-');
    assert_eq!(
        one_block_bytes(&doc, &generic58()),
        [&[b'-'; 32][..], b"\n"].concat()
    );

    let mut doc = Document::new();
    doc.text_styled("small", TextStyle::new().font(Font::B).bold())
        .separator('-');
    let job = encode_document(&doc, &generic58()).unwrap();
    let (sep, _) = command::parse_all(&job.bytes[job.block_offsets[1]..]);
    // Bold off, font B kept: 42 columns.
    assert_eq!(sep[0], Command::Emphasis(false));
    assert_eq!(sep[1], Command::Text(vec![b'-'; 42]));
    assert_eq!(sep[2], Command::LineFeed);

    let mut doc = Document::new();
    doc.separator('═');
    assert_eq!(
        one_block_bytes(&doc, &epson()),
        [&[0x1B, 0x74, 0][..], &[0xCD; 48], b"\n"].concat()
    );

    // A character no page has: a visible line of '?', listed once.
    let mut doc = Document::new();
    doc.separator('✂');
    let job = encode_document(&doc, &epson()).unwrap();
    assert_eq!(job.replaced, vec!['✂']);
    assert_eq!(job.bytes.iter().filter(|&&b| b == b'?').count(), 48);
}

#[test]
fn feed_drawer_and_cuts() {
    let mut doc = Document::new();
    doc.feed(3);
    assert_eq!(one_block_bytes(&doc, &epson()), vec![0x1B, 0x64, 3]);

    let mut doc = Document::new();
    doc.drawer_kick(DrawerPin::Pin2);
    assert_eq!(
        one_block_bytes(&doc, &epson()),
        vec![0x1B, 0x70, 0, 25, 250]
    );
    let mut doc = Document::new();
    doc.drawer_kick(DrawerPin::Pin5);
    assert_eq!(
        one_block_bytes(&doc, &epson()),
        vec![0x1B, 0x70, 1, 25, 250]
    );

    for (kind, bytes) in [
        (CutKind::Full, vec![0x1D, 0x56, 0]),
        (CutKind::Partial, vec![0x1D, 0x56, 1]),
        (CutKind::FeedAndFull, vec![0x1D, 0x56, 65, 3]),
        (CutKind::FeedAndPartial, vec![0x1D, 0x56, 66, 3]),
    ] {
        let mut doc = Document::new();
        doc.cut(kind);
        assert_eq!(one_block_bytes(&doc, &epson()), bytes, "{kind:?}");
        // No cutter: the paper is fed to the tear bar and the outcome says so.
        let job = encode_document(&doc, &generic58()).unwrap();
        assert_eq!(
            job.substitutions,
            vec![Substitution::CutAsFeed { block: 0 }]
        );
        assert_eq!(one_block_bytes(&doc, &generic58()), vec![0x1B, 0x64, 4]);
    }
}

#[test]
fn ean13_check_digit() {
    assert_eq!(gs1_check_digit("400638133393"), Some('1'));
    assert_eq!(gs1_check_digit("03600029145"), Some('2'), "UPC-A");
    assert_eq!(gs1_check_digit("12a"), None);
    assert_eq!(
        barcode_data(Symbology::Ean13, "400638133393").unwrap(),
        (67, b"4006381333931".to_vec())
    );
    assert_eq!(
        barcode_data(Symbology::Ean13, "4006381333931").unwrap(),
        (67, b"4006381333931".to_vec())
    );
}

#[test]
fn barcode_bytes() {
    let mut doc = Document::new();
    doc.barcode(Barcode::new(Symbology::Ean13, "400638133393"));
    assert_eq!(
        one_block_bytes(&doc, &epson()),
        [
            &[0x1B, 0x61, 1][..], // ESC a 1
            &[0x1D, 0x68, 80],    // GS h 80
            &[0x1D, 0x77, 3],     // GS w 3
            &[0x1D, 0x48, 2],     // GS H 2
            &[0x1D, 0x66, 0],     // GS f 0
            &[0x1D, 0x6B, 67, 13],
            b"4006381333931",
        ]
        .concat()
    );
    let mut b = Barcode::new(Symbology::Code128, "Ab{1");
    b.hri = HriPosition::None;
    b.align = Align::Left;
    let mut doc = Document::new();
    doc.barcode(b);
    assert_eq!(
        one_block_bytes(&doc, &epson()),
        [
            &[0x1D, 0x68, 80][..],
            &[0x1D, 0x77, 3],
            &[0x1D, 0x48, 0],
            &[0x1D, 0x66, 0],
            &[0x1D, 0x6B, 73, 7],
            b"{BAb{{1",
        ]
        .concat()
    );
}

#[test]
fn barcode_validation_per_symbology() {
    use BarcodeProblem as P;
    let cases: Vec<(Symbology, String, BarcodeProblem)> = vec![
        (Symbology::Ean13, "".into(), P::Empty),
        (
            Symbology::Ean13,
            "4006381333932".into(),
            P::CheckDigit {
                expected: '1',
                found: '2',
            },
        ),
        (
            Symbology::Ean13,
            "40063813339".into(),
            P::Length {
                len: 11,
                expected: "12 or 13 digits",
            },
        ),
        (
            Symbology::Ean13,
            "40063813339X".into(),
            P::Character {
                ch: 'X',
                position: 11,
                allowed: "digits 0-9",
            },
        ),
        (
            Symbology::UpcA,
            "036000291453".into(),
            P::CheckDigit {
                expected: '2',
                found: '3',
            },
        ),
        (
            Symbology::UpcA,
            "0360002914".into(),
            P::Length {
                len: 10,
                expected: "11 or 12 digits",
            },
        ),
        (
            Symbology::Code39,
            "ABc".into(),
            P::LowerCase {
                ch: 'c',
                position: 2,
            },
        ),
        (
            Symbology::Code39,
            "A*B".into(),
            P::Character {
                ch: '*',
                position: 1,
                allowed: "0-9 A-Z space $ % + - . /",
            },
        ),
        (Symbology::Itf, "12345".into(), P::OddLength { len: 5 }),
        (
            Symbology::Itf,
            "12a4".into(),
            P::Character {
                ch: 'a',
                position: 2,
                allowed: "digits 0-9",
            },
        ),
        (
            Symbology::Code128,
            "café".into(),
            P::Character {
                ch: 'é',
                position: 3,
                allowed: "ASCII 0x00-0x7F",
            },
        ),
        (
            Symbology::Code128,
            "A".repeat(254),
            P::TooLong { len: 256, max: 255 },
        ),
    ];
    for (symbology, data, problem) in cases {
        assert_eq!(
            barcode_data(symbology, &data),
            Err(problem.clone()),
            "{symbology:?} {data:?}"
        );
        let mut doc = Document::new();
        doc.text("x").barcode(Barcode::new(symbology, data.clone()));
        let err = encode_document(&doc, &epson()).unwrap_err();
        assert_eq!(err.kind(), FaultKind::InvalidInput);
        match err {
            EncodeError::Barcode {
                block: 1,
                symbology: s,
                problem: p,
            } => {
                assert_eq!((s, p), (symbology, problem));
            }
            other => panic!("{other}"),
        }
    }
    // Valid data for each symbology.
    assert_eq!(
        barcode_data(Symbology::UpcA, "03600029145").unwrap(),
        (65, b"036000291452".to_vec())
    );
    assert_eq!(
        barcode_data(Symbology::Code39, "AB-12 $%+./").unwrap(),
        (69, b"AB-12 $%+./".to_vec())
    );
    assert_eq!(
        barcode_data(Symbology::Itf, "1234").unwrap(),
        (70, b"1234".to_vec())
    );
    assert_eq!(
        barcode_data(Symbology::Code128, "AB\tc").unwrap(),
        (73, b"{AAB\t{Bc".to_vec()),
        "control characters need code set A"
    );
    assert_eq!(
        barcode_data(Symbology::Code128, &"A".repeat(253))
            .unwrap()
            .1
            .len(),
        255
    );
}

#[test]
fn barcode_error_message_names_symbology_and_reason() {
    let mut doc = Document::new();
    doc.barcode(Barcode::new(Symbology::Code39, "abc"));
    let msg = encode_document(&doc, &epson()).unwrap_err().to_string();
    assert!(
        msg.contains("CODE39") && msg.contains("lower-case"),
        "{msg}"
    );
}

#[test]
fn barcode_options_and_width_are_checked() {
    let mut b = Barcode::new(Symbology::Ean13, "400638133393");
    b.height = 0;
    let mut doc = Document::new();
    doc.barcode(b.clone());
    assert!(matches!(
        encode_document(&doc, &epson()),
        Err(EncodeError::InvalidOption {
            option: "barcode height",
            ..
        })
    ));
    b.height = 80;
    b.module_width = 7;
    let mut doc = Document::new();
    doc.barcode(b.clone());
    assert!(matches!(
        encode_document(&doc, &epson()),
        Err(EncodeError::InvalidOption {
            option: "barcode module width",
            value: 7,
            ..
        })
    ));
    // EAN-13 is 95 modules: 5 dots each is 475 dots, too wide for 384 but fine on 576.
    b.module_width = 5;
    let mut doc = Document::new();
    doc.barcode(b.clone());
    assert!(encode_document(&doc, &epson()).is_ok());
    assert!(matches!(
        encode_document(&doc, &generic58()),
        Err(EncodeError::BarcodeTooWide {
            dots: 475,
            max: 384,
            ..
        })
    ));
    b.module_width = 4;
    let mut doc = Document::new();
    doc.barcode(b);
    assert!(encode_document(&doc, &generic58()).is_ok());
}

#[test]
fn qr_bytes() {
    let mut doc = Document::new();
    doc.qr(QrCode::new("https://x"));
    assert_eq!(
        one_block_bytes(&doc, &epson()),
        [
            &[0x1B, 0x61, 1][..],                           // ESC a 1
            &[0x1D, 0x28, 0x6B, 4, 0, 0x31, 0x41, 0x32, 0], // model 2
            &[0x1D, 0x28, 0x6B, 3, 0, 0x31, 0x43, 6],       // module size 6
            &[0x1D, 0x28, 0x6B, 3, 0, 0x31, 0x45, 0x31],    // level M
            &[0x1D, 0x28, 0x6B, 12, 0, 0x31, 0x50, 0x30],   // store 9 bytes
            b"https://x",
            &[0x1D, 0x28, 0x6B, 3, 0, 0x31, 0x51, 0x30], // print
        ]
        .concat()
    );
}

#[test]
fn qr_limits() {
    let qr = |data: String, level| {
        let mut q = QrCode::new(data);
        q.error_correction = level;
        let mut doc = Document::new();
        doc.qr(q);
        encode_document(&doc, &epson())
    };
    assert!(qr("a".repeat(2331), QrErrorCorrection::M).is_ok());
    match qr("a".repeat(2332), QrErrorCorrection::M) {
        Err(EncodeError::QrTooLong {
            block: 0,
            len: 2332,
            max: 2331,
            level: QrErrorCorrection::M,
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(qr("7".repeat(7089), QrErrorCorrection::L).is_ok());
    assert!(qr("7".repeat(7090), QrErrorCorrection::L).is_err());
    assert!(
        qr("ABC123".repeat(700), QrErrorCorrection::L).is_ok(),
        "alphanumeric 4200"
    );
    assert!(qr("a".repeat(1274), QrErrorCorrection::H).is_err());
    assert!(matches!(
        qr(String::new(), QrErrorCorrection::M),
        Err(EncodeError::QrEmpty { block: 0 })
    ));
    let mut q = QrCode::new("x");
    q.module_size = 17;
    let mut doc = Document::new();
    doc.qr(q);
    assert!(matches!(
        encode_document(&doc, &epson()),
        Err(EncodeError::InvalidOption {
            option: "QR module size",
            value: 17,
            ..
        })
    ));
}

#[test]
fn threshold_on_a_tiny_bitmap() {
    // 10 x 2: row 0 alternates black/white, row 1 is grey 100.
    let mut pixels = vec![];
    for x in 0..10 {
        pixels.push(if x % 2 == 0 { 0 } else { 255 });
    }
    pixels.extend([100u8; 10]);
    let bm = Bitmap::new(10, 2, pixels).unwrap();
    let r = rasterize(&bm, ImageConversion::Threshold(100));
    assert_eq!(r.width_bytes, 2);
    assert_eq!(r.data, vec![0b1010_1010, 0b1000_0000, 0, 0]);
    let r = rasterize(&bm, ImageConversion::Threshold(101));
    assert_eq!(r.data, vec![0b1010_1010, 0b1000_0000, 0xFF, 0b1100_0000]);
}

#[test]
fn floyd_steinberg_on_a_tiny_bitmap() {
    // 2 x 2 grey 100. (0,0): 100 -> black, error +100: right +43, below +31, below-right +6.
    // (1,0): 143 -> white, error -112: below-left -21, below -35.
    // (0,1): 100 + 31 - 21 = 110 -> black, error +110: right +48.
    // (1,1): 100 + 6 - 35 + 48 = 119 -> black.
    let bm = Bitmap::new(2, 2, vec![100; 4]).unwrap();
    let r = rasterize(&bm, ImageConversion::Dither);
    assert_eq!(r.data, vec![0b1000_0000, 0b1100_0000]);

    let black = rasterize(
        &Bitmap::new(8, 1, vec![0; 8]).unwrap(),
        ImageConversion::Dither,
    );
    assert_eq!(black.data, vec![0xFF]);
    let white = rasterize(
        &Bitmap::new(8, 1, vec![255; 8]).unwrap(),
        ImageConversion::Dither,
    );
    assert_eq!(white.data, vec![0x00]);
    // Mid grey comes out about half black.
    let grey = rasterize(
        &Bitmap::new(16, 16, vec![128; 256]).unwrap(),
        ImageConversion::Dither,
    );
    let ones: u32 = grey.data.iter().map(|b| b.count_ones()).sum();
    assert!((112..=144).contains(&ones), "{ones} of 256 black");
}

#[test]
fn images_are_sent_in_bands() {
    let (w, h) = (20u32, 300u32);
    let pixels: Vec<u8> = (0..w * h).map(|i| (i % 251) as u8).collect();
    let bm = Bitmap::new(w, h, pixels).unwrap();
    let mut doc = Document::new();
    doc.image(Image {
        bitmap: bm.clone(),
        conversion: ImageConversion::Threshold(128),
        align: Align::Right,
    });
    let job = encode_document(&doc, &epson()).unwrap();
    let (cmds, _) = command::parse_all(&job.bytes);
    assert!(cmds.contains(&Command::Justify(2)));
    let bands: Vec<(u16, u16, &Vec<u8>)> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::RasterImage {
                mode: 0,
                width_bytes,
                height,
                data,
            } => Some((*width_bytes, *height, data)),
            _ => None,
        })
        .collect();
    let rows = RASTER_BAND_ROWS as u16;
    assert_eq!(
        bands.iter().map(|b| (b.0, b.1)).collect::<Vec<_>>(),
        vec![(3, rows), (3, rows), (3, 300 - 2 * rows)]
    );
    let joined: Vec<u8> = bands.iter().flat_map(|b| b.2.iter().copied()).collect();
    assert_eq!(joined, rasterize(&bm, ImageConversion::Threshold(128)).data);
}

#[test]
fn image_checks() {
    let img = |w: u32, h: u32| Image {
        bitmap: Bitmap::new(w, h, vec![0; (w * h) as usize]).unwrap(),
        conversion: ImageConversion::Threshold(128),
        align: Align::Left,
    };
    let mut doc = Document::new();
    doc.image(img(577, 1));
    assert!(matches!(
        encode_document(&doc, &epson()),
        Err(EncodeError::ImageTooWide {
            width: 577,
            max: 576,
            ..
        })
    ));
    let mut doc = Document::new();
    doc.image(img(576, 1));
    assert!(encode_document(&doc, &epson()).is_ok());
    let mut doc = Document::new();
    doc.image(img(385, 1));
    assert!(encode_document(&doc, &generic58()).is_err());
    let mut doc = Document::new();
    doc.image(img(0, 0));
    assert!(matches!(
        encode_document(&doc, &epson()),
        Err(EncodeError::ImageEmpty { .. })
    ));
}

#[test]
fn text_options_and_profile_are_checked() {
    let mut style = TextStyle::new();
    style.width = 9;
    let mut doc = Document::new();
    doc.text_styled("x", style);
    let err = encode_document(&doc, &epson()).unwrap_err();
    assert!(
        matches!(
            err,
            EncodeError::InvalidOption {
                option: "text width",
                value: 9,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.kind(), FaultKind::InvalidInput);

    let mut bad = epson();
    bad.dots_per_line = 570;
    let err = encode_document(&Document::new(), &bad).unwrap_err();
    assert!(matches!(err, EncodeError::Profile(_)), "{err}");
}

#[test]
fn replaced_characters_are_listed_and_shown() {
    let mut doc = Document::new();
    doc.text("Ωmega ✓ done\tok");
    let job = encode_document(&doc, &generic58()).unwrap();
    // Ω is in CP437 (0xEA); ✓ and the tab are not printable anywhere.
    assert_eq!(job.replaced, vec!['✓', '\t']);
    let body = one_block_bytes(&doc, &generic58());
    assert_eq!(
        body,
        [&[0x1B, 0x74, 0][..], b"\xEAmega ? done?ok\n"].concat()
    );
}

#[test]
fn text_lines_count_newline_separated_parts() {
    let mut doc = Document::new();
    doc.text("A\nB").separator('-').text("C").text("");
    let job = encode_document(&doc, &epson()).unwrap();
    assert_eq!(job.text_lines, doc.text_lines().len());
    assert_eq!(job.text_lines, 4);
}
