//! Property test: any document either fails with an input error or encodes to a stream the
//! parser reads back completely, with no status, init or unknown commands, and block
//! offsets on command boundaries.

use pos_escpos::command::{self, Command};
use pos_escpos::encode::encode_document;
use pos_escpos::profile::Profile;
use pos_hal::{
    Align, Barcode, Bitmap, Block, CutKind, Document, DrawerPin, Fault, FaultKind, Font,
    HriPosition, Image, ImageConversion, QrCode, QrErrorCorrection, Symbology, TextStyle,
    Underline,
};
use proptest::prelude::*;

fn align() -> impl Strategy<Value = Align> {
    prop::sample::select(vec![Align::Left, Align::Center, Align::Right])
}

fn style() -> impl Strategy<Value = TextStyle> {
    (
        any::<bool>(),
        prop::sample::select(vec![Underline::None, Underline::Single, Underline::Double]),
        prop_oneof![9 => 1u8..=8, 1 => 0u8..=9],
        prop_oneof![9 => 1u8..=8, 1 => 0u8..=9],
        prop::sample::select(vec![Font::A, Font::B]),
        align(),
        any::<bool>(),
    )
        .prop_map(
            |(bold, underline, width, height, font, align, inverse)| TextStyle {
                bold,
                underline,
                width,
                height,
                font,
                align,
                inverse,
            },
        )
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,30}",
        "[ -~€£éèçÇüÜß收据元═─]{0,30}",
        any::<String>(),
    ]
}

fn block() -> impl Strategy<Value = Block> {
    prop_oneof![
        3 => (text(), style()).prop_map(|(text, style)| Block::Text { text, style }),
        1 => any::<char>().prop_map(|ch| Block::Separator { ch }),
        1 => any::<u8>().prop_map(|lines| Block::Feed { lines }),
        1 => (
            prop::sample::select(vec![
                Symbology::Code128,
                Symbology::Ean13,
                Symbology::UpcA,
                Symbology::Code39,
                Symbology::Itf,
            ]),
            prop_oneof![
                4 => prop::sample::select(vec![
                    "400638133393", "4006381333931", "03600029145", "ABC-123", "1234", "Ab{c}\t",
                ]).prop_map(String::from),
                1 => "[0-9]{0,14}",
                1 => "[ -~]{0,20}",
                1 => any::<String>(),
            ],
            prop_oneof![9 => 1u8..=255, 1 => Just(0u8)],
            prop_oneof![9 => 2u8..=4, 1 => 0u8..=8],
            prop::sample::select(vec![
                HriPosition::None,
                HriPosition::Above,
                HriPosition::Below,
                HriPosition::Both,
            ]),
            align(),
        )
            .prop_map(|(symbology, data, height, module_width, hri, align)| {
                Block::Barcode(Barcode {
                    symbology,
                    data,
                    height,
                    module_width,
                    hri,
                    align,
                })
            }),
        1 => (
            text(),
            prop_oneof![9 => 1u8..=16, 1 => 0u8..=18],
            prop::sample::select(vec![
                QrErrorCorrection::L,
                QrErrorCorrection::M,
                QrErrorCorrection::Q,
                QrErrorCorrection::H,
            ]),
            align(),
        )
            .prop_map(|(data, module_size, error_correction, align)| {
                Block::Qr(QrCode {
                    data,
                    module_size,
                    error_correction,
                    align,
                })
            }),
        1 => (0u32..40, 0u32..40, any::<Option<u8>>(), align(), any::<u64>()).prop_map(
            |(w, h, threshold, align, seed)| {
                let pixels = (0..u64::from(w * h))
                    .map(|i| (i.wrapping_mul(seed | 1) >> 3) as u8)
                    .collect();
                Block::Image(Image {
                    bitmap: Bitmap::new(w, h, pixels).expect("w * h pixels"),
                    conversion: threshold.map_or(ImageConversion::Dither, ImageConversion::Threshold),
                    align,
                })
            }
        ),
        1 => prop::sample::select(vec![
            CutKind::Full,
            CutKind::Partial,
            CutKind::FeedAndFull,
            CutKind::FeedAndPartial,
        ])
        .prop_map(|kind| Block::Cut { kind }),
        1 => prop::sample::select(vec![DrawerPin::Pin2, DrawerPin::Pin5])
            .prop_map(|pin| Block::DrawerKick { pin }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    #[test]
    fn any_document_encodes_cleanly_or_fails_as_bad_input(
        blocks in proptest::collection::vec(block(), 0..12),
        profile_name in prop::sample::select(Profile::builtin_names().to_vec()),
    ) {
        let profile = Profile::builtin(profile_name).expect("built in");
        let doc = Document { blocks };
        match encode_document(&doc, &profile) {
            Err(e) => prop_assert_eq!(e.kind(), FaultKind::InvalidInput),
            Ok(job) => {
                let (cmds, left) = command::parse_all(&job.bytes);
                prop_assert_eq!(left, 0);
                for c in &cmds {
                    prop_assert!(
                        !matches!(
                            c,
                            Command::Init
                                | Command::Unknown(_)
                                | Command::RealTimeStatus(_)
                                | Command::RealTimeRequest(_)
                                | Command::ClearBuffer
                                | Command::AutoStatusBack(_)
                                | Command::TransmitPrinterId(_)
                                | Command::ProcessIdRequest(_)
                        ),
                        "{:?}", c
                    );
                    prop_assert_eq!(c.validate(), Ok(()));
                }
                prop_assert_eq!(job.block_offsets.len(), doc.blocks.len());
                for &off in &job.block_offsets {
                    prop_assert_eq!(command::parse_all(&job.bytes[..off]).1, 0);
                }
                prop_assert_eq!(job.text_lines, doc.text_lines().len());
                if !profile.chinese {
                    prop_assert!(!cmds.contains(&Command::ChineseMode(true)));
                }
            }
        }
    }
}
