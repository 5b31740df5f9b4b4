//! Property tests: encode → parse round trips for arbitrary commands, and the streaming
//! parser never panics (and accounts for every byte) on arbitrary bytes in arbitrary chunks.

use pos_escpos::codepage::{self, CodePage};
use pos_escpos::command::{self, Command, Parser};
use proptest::prelude::*;

fn text_run() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(0x20u8..=0xFF, 1..40)
}

fn command_strategy() -> impl Strategy<Value = Command> {
    let simple = prop_oneof![
        Just(Command::Init),
        Just(Command::LineFeed),
        Just(Command::CarriageReturn),
        Just(Command::QrPrint),
        Just(Command::ClearBuffer),
        text_run().prop_map(Command::Text),
        any::<u8>().prop_map(Command::FeedLines),
        any::<u8>().prop_map(Command::FeedDots),
        any::<u8>().prop_map(Command::PrintMode),
        any::<bool>().prop_map(Command::Emphasis),
        any::<u8>().prop_map(Command::Underline),
        (1u8..=8, 1u8..=8).prop_map(|(width, height)| Command::CharacterSize { width, height }),
        any::<u8>().prop_map(Command::Font),
        any::<u8>().prop_map(Command::Justify),
        any::<bool>().prop_map(Command::Reverse),
        any::<Option<u8>>().prop_map(Command::LineSpacing),
        any::<u8>().prop_map(Command::CodeTable),
        any::<u8>().prop_map(Command::InternationalCharset),
        any::<bool>().prop_map(Command::ChineseMode),
    ];
    let more = prop_oneof![
        prop::sample::select(vec![0u8, 1, 48, 49])
            .prop_map(|mode| Command::Cut { mode, feed: None }),
        (
            prop::sample::select(vec![65u8, 66, 97, 98, 103, 104]),
            any::<u8>()
        )
            .prop_map(|(mode, n)| Command::Cut {
                mode,
                feed: Some(n)
            }),
        any::<(u8, u8, u8)>().prop_map(|(pin, on, off)| Command::DrawerPulse { pin, on, off }),
        any::<u8>().prop_map(Command::BarcodeHeight),
        any::<u8>().prop_map(Command::BarcodeModuleWidth),
        any::<u8>().prop_map(Command::HriPosition),
        any::<u8>().prop_map(Command::HriFont),
        (65u8..=78, proptest::collection::vec(any::<u8>(), 0..=255))
            .prop_map(|(system, data)| Command::Barcode { system, data }),
        any::<u8>().prop_map(Command::QrModel),
        any::<u8>().prop_map(Command::QrModuleSize),
        any::<u8>().prop_map(Command::QrErrorCorrection),
        proptest::collection::vec(any::<u8>(), 0..600).prop_map(Command::QrStore),
        (any::<u8>(), 0u16..6, 0u16..6).prop_flat_map(|(mode, w, h)| {
            proptest::collection::vec(any::<u8>(), usize::from(w) * usize::from(h)).prop_map(
                move |data| Command::RasterImage {
                    mode,
                    width_bytes: w,
                    height: h,
                    data,
                },
            )
        }),
        any::<u8>().prop_map(Command::AutoStatusBack),
        any::<u8>()
            .prop_filter("DLE EOT 7/8/18 take a parameter", |n| !matches!(
                n,
                7 | 8 | 18
            ))
            .prop_map(Command::RealTimeStatus),
        any::<u8>().prop_map(Command::RealTimeRequest),
        any::<u8>().prop_map(Command::TransmitPrinterId),
        any::<[u8; 4]>().prop_map(Command::ProcessIdRequest),
    ];
    prop_oneof![simple, more]
}

/// Joins adjacent text runs (they are one run on the wire).
fn merge_text(cmds: Vec<Command>) -> Vec<Command> {
    let mut out: Vec<Command> = Vec::with_capacity(cmds.len());
    for c in cmds {
        if let (Some(Command::Text(prev)), Command::Text(t)) = (out.last_mut(), &c) {
            prev.extend_from_slice(t);
            continue;
        }
        out.push(c);
    }
    out
}

fn parse_chunked(bytes: &[u8], cuts: &[usize]) -> (Vec<Command>, Parser) {
    let mut p = Parser::new();
    let mut cmds = Vec::new();
    let mut start = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    points.push(bytes.len());
    for end in points {
        p.push(&bytes[start..end.max(start)]);
        start = end.max(start);
        while let Some(c) = p.next_command() {
            cmds.push(c);
        }
    }
    (cmds, p)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn single_command_round_trips(cmd in command_strategy()) {
        prop_assert_eq!(cmd.validate(), Ok(()));
        let bytes = cmd.to_vec();
        let (parsed, left) = command::parse_all(&bytes);
        prop_assert_eq!(left, 0);
        prop_assert_eq!(parsed, vec![cmd]);
    }

    #[test]
    fn command_sequences_round_trip_in_any_chunking(
        cmds in proptest::collection::vec(command_strategy(), 0..24),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let bytes = command::to_bytes(&cmds);
        let (parsed, p) = parse_chunked(&bytes, &cuts);
        prop_assert!(p.pending().is_empty());
        prop_assert_eq!(p.consumed(), bytes.len() as u64);
        prop_assert_eq!(merge_text(parsed), merge_text(cmds));
    }

    #[test]
    fn parser_never_panics_and_accounts_for_every_byte(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        let (chunked, p) = parse_chunked(&bytes, &cuts);
        prop_assert_eq!(p.consumed() + p.pending().len() as u64, bytes.len() as u64);
        // Chunking changes nothing but where text runs split.
        let (whole, left) = command::parse_all(&bytes);
        prop_assert_eq!(left, p.pending().len());
        prop_assert_eq!(merge_text(chunked), merge_text(whole));
    }

    #[test]
    fn parser_never_panics_on_command_shaped_noise(
        parts in proptest::collection::vec(
            prop_oneof![
                prop::sample::select(vec![0x1Bu8, 0x1D, 0x1C, 0x10]).prop_map(|b| vec![b]),
                prop::sample::select(vec![
                    b"\x1d(k".to_vec(), b"\x1dv0".to_vec(), b"\x1d8L".to_vec(),
                    b"\x1dk".to_vec(), b"\x1b*".to_vec(), b"\x1b&".to_vec(),
                    b"\x1bD".to_vec(), b"\x10\x14".to_vec(), b"\x10\x04".to_vec(),
                    b"\x1d(H".to_vec(), b"\x1b(".to_vec(), b"\x1c(".to_vec(),
                ]),
                proptest::collection::vec(any::<u8>(), 0..6),
            ],
            0..64,
        ),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        let bytes: Vec<u8> = parts.concat();
        let (_, p) = parse_chunked(&bytes, &cuts);
        prop_assert_eq!(p.consumed() + p.pending().len() as u64, bytes.len() as u64);
        prop_assert!(p.pending().len() <= bytes.len());
    }

    #[test]
    fn encoded_text_never_contains_control_bytes(text in any::<String>()) {
        for cp in [CodePage::Cp437, CodePage::Cp858, CodePage::Cp1252, CodePage::Gb18030] {
            let e = codepage::encode(&text, cp);
            prop_assert!(
                e.bytes.iter().all(|&b| b == b'\n' || (b >= 0x20 && b != 0x7F)),
                "{}: {:?}", cp, e.bytes
            );
            // Every character is accounted for: replaced ones show as '?'.
            let question_marks = e.bytes.iter().filter(|&&b| b == b'?').count();
            prop_assert!(question_marks >= e.replaced.len());
        }
    }
}
