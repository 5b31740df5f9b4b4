//! The reply reader: telling status bytes, ASB blocks, GS ( H replies, GS I blocks and ID
//! bytes apart by their fixed bits, whatever the chunking; caps, resynchronisation, and no
//! panic on any input.

use pos_escpos::status::{
    BLOCK_HEADER, EXTENDED_HEADER, INFO_A_HEADER, MAX_FRAME_LEN, MAX_PENDING, Reply, ReplyReader,
    XOFF, XON, is_asb_first_byte, is_asb_rest_byte, is_id_byte, is_real_time_byte, parse_asb,
    process_id_reply,
};
use pos_hal::PrinterConditions as C;
use proptest::prelude::*;

/// Feed `chunks` one by one, draining after each, then flush.
fn read_chunked(chunks: &[&[u8]], ids_expected: usize) -> Vec<Reply> {
    let mut reader = ReplyReader::new();
    for _ in 0..ids_expected {
        reader.expect_id_byte();
    }
    let mut replies = Vec::new();
    for chunk in chunks {
        reader.push(chunk);
        replies.extend(reader.drain_replies());
        assert!(
            reader.pending_len() <= MAX_FRAME_LEN,
            "unbounded partial reply"
        );
    }
    replies.extend(reader.flush());
    assert_eq!(reader.pending_len(), 0);
    replies
}

fn read_all(bytes: &[u8], ids_expected: usize) -> Vec<Reply> {
    read_chunked(&[bytes], ids_expected)
}

/// Split `bytes` at the given cut points (taken modulo the length, sorted, deduplicated).
fn split_at_points(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| {
            if bytes.is_empty() {
                0
            } else {
                c % (bytes.len() + 1)
            }
        })
        .collect();
    points.sort_unstable();
    points.dedup();
    let mut chunks = Vec::new();
    let mut start = 0;
    for p in points {
        chunks.push(bytes[start..p].to_vec());
        start = p;
    }
    chunks.push(bytes[start..].to_vec());
    chunks
}

/// A stream with one of every reply kind, and the replies it must give with one ID byte
/// expected.
fn mixed_stream() -> (Vec<u8>, Vec<Reply>) {
    let mut bytes = Vec::new();
    let mut replies = Vec::new();
    // DLE EOT 1 reply: online, pin 3 high.
    bytes.push(0x16);
    replies.push(Reply::RealTime(0x16));
    // ASB: drawer pin 3 high, paper near end.
    bytes.extend([0x14, 0x00, 0x03, 0x00]);
    replies.push(Reply::Asb([0x14, 0x00, 0x03, 0x00]));
    // GS ( H process-ID reply for job "0042".
    bytes.extend(process_id_reply(*b"0042").unwrap_or_default());
    replies.push(Reply::ProcessId(*b"0042"));
    // GS I 66 block.
    bytes.extend([0x5F, b'E', b'P', b'S', b'O', b'N', 0x00]);
    replies.push(Reply::Block(b"EPSON".to_vec()));
    // Line noise.
    bytes.push(0xFF);
    replies.push(Reply::Garbage(0xFF));
    // A GS ( E style reply (identifier 0x21).
    bytes.extend([0x37, 0x21, b'0', b'1', 0x00]);
    replies.push(Reply::Extended {
        identifier: 0x21,
        data: b"01".to_vec(),
    });
    // GS I 35 printer information A.
    bytes.extend([0x3D, 0x23, 0x30, 0x00]);
    replies.push(Reply::InfoA {
        identifier: 0x23,
        data: vec![0x30],
    });
    // XOFF, then the GS I 1 ID byte.
    bytes.push(XOFF);
    replies.push(Reply::FlowControl(XOFF));
    bytes.push(0x63);
    replies.push(Reply::IdByte(0x63));
    // DLE EOT 4 reply: paper out.
    bytes.push(0x7E);
    replies.push(Reply::RealTime(0x7E));
    // An empty GS I block.
    bytes.extend([0x5F, 0x00]);
    replies.push(Reply::Block(Vec::new()));
    // ASB: offline, cover open.
    bytes.extend([0x38, 0x00, 0x00, 0x00]);
    replies.push(Reply::Asb([0x38, 0x00, 0x00, 0x00]));
    (bytes, replies)
}

#[test]
fn status_reader_headers_do_not_match_status_patterns() {
    for header in [EXTENDED_HEADER, BLOCK_HEADER, INFO_A_HEADER, XON, XOFF] {
        assert!(!is_real_time_byte(header), "{header:#04x}");
        assert!(!is_asb_first_byte(header), "{header:#04x}");
        assert!(!is_asb_rest_byte(header), "{header:#04x}");
        assert!(!is_id_byte(header), "{header:#04x}");
        // Bit 4 set, bit 7 clear, bits 1-0 neither 10 nor 00.
        assert_eq!(header & 0x90, 0x10);
        assert!(header & 0x03 == 0x01 || header & 0x03 == 0x03);
    }
    assert_eq!(EXTENDED_HEADER, 0b0011_0111);
    assert_eq!(BLOCK_HEADER, 0b0101_1111);
    // The four single-byte patterns never overlap.
    for b in 0..=255u8 {
        let kinds = [
            is_real_time_byte(b),
            is_asb_first_byte(b),
            is_asb_rest_byte(b),
        ];
        assert!(kinds.iter().filter(|k| **k).count() <= 1, "{b:#04x}");
    }
}

#[test]
fn status_reader_classifies_every_lone_byte() {
    for b in 0..=255u8 {
        let mut reader = ReplyReader::new();
        reader.push(&[b]);
        let reply = reader.next_reply();
        let expected = if b == XON || b == XOFF {
            Some(Reply::FlowControl(b))
        } else if is_real_time_byte(b) {
            Some(Reply::RealTime(b))
        } else if is_asb_first_byte(b)
            || [EXTENDED_HEADER, BLOCK_HEADER, INFO_A_HEADER].contains(&b)
        {
            None // waits for the rest
        } else {
            Some(Reply::Garbage(b))
        };
        assert_eq!(reply, expected, "{b:#04x}");

        // With an ID byte expected, exactly the 0xx0xxxx bytes are read as one.
        let mut reader = ReplyReader::new();
        reader.expect_id_byte();
        reader.push(&[b]);
        let reply = reader.next_reply();
        if is_id_byte(b) {
            assert_eq!(reply, Some(Reply::IdByte(b)), "{b:#04x}");
            assert_eq!(reader.id_bytes_expected(), 0);
        } else {
            assert_eq!(reply, expected, "{b:#04x}");
            assert_eq!(reader.id_bytes_expected(), 1);
        }
    }
}

#[test]
fn status_reader_splits_a_mixed_stream() {
    let (bytes, expected) = mixed_stream();
    assert_eq!(read_all(&bytes, 1), expected);
    // Byte by byte too.
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(read_chunked(&singles, 1), expected);
    // And every reply's bytes, back to back, are the stream.
    let rebuilt: Vec<u8> = expected.iter().flat_map(Reply::to_bytes).collect();
    assert_eq!(rebuilt, bytes);
}

#[test]
fn status_reader_asb_parses_into_conditions() {
    let mut reader = ReplyReader::new();
    reader.push(&[0x18, 0x00]);
    assert_eq!(
        reader.next_reply(),
        None,
        "an ASB block waits for all four bytes"
    );
    reader.push(&[0x0F]);
    assert_eq!(reader.next_reply(), None);
    reader.push(&[0x00, 0x12]);
    let Some(Reply::Asb(block)) = reader.next_reply() else {
        panic!("expected an ASB block")
    };
    assert_eq!(
        parse_asb(block, true),
        Ok(C::OFFLINE | C::PAPER_NEAR_END | C::PAPER_OUT)
    );
    assert_eq!(reader.next_reply(), Some(Reply::RealTime(0x12)));
}

#[test]
fn status_reader_id_byte_only_when_expected() {
    // Not expected: an orphan 0xx0xxxx byte is garbage.
    assert_eq!(read_all(&[0x63], 0), vec![Reply::Garbage(0x63)]);
    // Expected once: the first is the ID, the second is garbage.
    assert_eq!(
        read_all(&[0x16, 0x63, 0x63], 1),
        vec![
            Reply::RealTime(0x16),
            Reply::IdByte(0x63),
            Reply::Garbage(0x63)
        ]
    );
    // Two outstanding GS I requests.
    assert_eq!(
        read_all(&[0x63, 0x02], 2),
        vec![Reply::IdByte(0x63), Reply::IdByte(0x02)]
    );
    // ASB tail bytes share the ID pattern, but inside an ASB block they are ASB bytes and
    // the expectation stays.
    let mut reader = ReplyReader::new();
    reader.expect_id_byte();
    reader.push(&[0x10, 0x63, 0x00, 0x00, 0x20]);
    assert_eq!(
        reader.next_reply(),
        Some(Reply::Asb([0x10, 0x63, 0x00, 0x00]))
    );
    assert_eq!(reader.id_bytes_expected(), 1);
    assert_eq!(reader.next_reply(), Some(Reply::IdByte(0x20)));
    // Cancelled after a timeout.
    reader.expect_id_byte();
    reader.cancel_id_expectations();
    reader.push(&[0x20]);
    assert_eq!(reader.next_reply(), Some(Reply::Garbage(0x20)));
}

#[test]
fn status_reader_resyncs_after_a_broken_asb() {
    // 10 00 then a real-time byte (bit 4 set) where ASB byte 3 should be: the ASB start is
    // garbage, the 00 is an orphan, and the status byte is still found.
    assert_eq!(
        read_all(&[0x10, 0x00, 0x12, 0x14, 0x00, 0x00, 0x00], 0),
        vec![
            Reply::Garbage(0x10),
            Reply::Garbage(0x00),
            Reply::RealTime(0x12),
            Reply::Asb([0x14, 0x00, 0x00, 0x00]),
        ]
    );
    // A second ASB start inside the first.
    assert_eq!(
        read_all(&[0x10, 0x10, 0x00, 0x00, 0x00], 0),
        vec![Reply::Garbage(0x10), Reply::Asb([0x10, 0x00, 0x00, 0x00])]
    );
    // Bit 7 in a tail byte.
    assert_eq!(
        read_all(&[0x18, 0x00, 0x80, 0x12], 0),
        vec![
            Reply::Garbage(0x18),
            Reply::Garbage(0x00),
            Reply::Garbage(0x80),
            Reply::RealTime(0x12),
        ]
    );
}

#[test]
fn status_reader_skips_flow_control_inside_replies() {
    // "The three consecutive bytes except for XOFF are ASB data."
    assert_eq!(
        read_all(&[0x14, XOFF, 0x00, XON, 0x03, 0x00], 0),
        vec![
            Reply::FlowControl(XOFF),
            Reply::FlowControl(XON),
            Reply::Asb([0x14, 0x00, 0x03, 0x00]),
        ]
    );
    assert_eq!(
        read_all(&[0x37, 0x22, b'0', XOFF, b'0', b'4', b'2', 0x00], 0),
        vec![Reply::FlowControl(XOFF), Reply::ProcessId(*b"0042")]
    );
    assert_eq!(
        read_all(&[0x5F, b'A', XON, b'B', 0x00], 0),
        vec![Reply::FlowControl(XON), Reply::Block(b"AB".to_vec())]
    );
}

#[test]
fn status_reader_malformed_process_id_never_confirms() {
    let cases: [(&[u8], Reply); 4] = [
        (
            &[0x37, 0x22, b'0', b'4', b'2', 0x00],
            Reply::Extended {
                identifier: 0x22,
                data: b"042".to_vec(),
            },
        ),
        (
            &[0x37, 0x22, b'0', b'0', b'4', b'2', b'1', 0x00],
            Reply::Extended {
                identifier: 0x22,
                data: b"00421".to_vec(),
            },
        ),
        (
            &[0x37, 0x22, b'0', b'0', b'4', 0x7F, 0x00],
            Reply::Extended {
                identifier: 0x22,
                data: vec![b'0', b'0', b'4', 0x7F],
            },
        ),
        (
            &[0x37, 0x23, b'0', b'0', b'4', b'2', 0x00],
            Reply::Extended {
                identifier: 0x23,
                data: b"0042".to_vec(),
            },
        ),
    ];
    for (bytes, expected) in cases {
        let replies = read_all(bytes, 0);
        assert_eq!(replies, vec![expected]);
        assert!(!replies.iter().any(|r| matches!(r, Reply::ProcessId(_))));
    }
    // No identifier: the header is garbage.
    assert_eq!(
        read_all(&[0x37, 0x00, 0x12], 0),
        vec![
            Reply::Garbage(0x37),
            Reply::Garbage(0x00),
            Reply::RealTime(0x12)
        ]
    );
    assert_eq!(
        read_all(&[0x3D, 0x00], 0),
        vec![Reply::Garbage(0x3D), Reply::Garbage(0x00)]
    );
}

#[test]
fn status_reader_caps_header_to_nul_replies() {
    // Exactly MAX_FRAME_LEN bytes, header and NUL included: accepted.
    let mut ok = vec![BLOCK_HEADER];
    ok.extend(std::iter::repeat_n(b'A', MAX_FRAME_LEN - 2));
    ok.push(0x00);
    assert_eq!(
        read_all(&ok, 0),
        vec![Reply::Block(vec![b'A'; MAX_FRAME_LEN - 2])]
    );

    // One byte longer: the header is garbage and reading resumes after it.
    let mut long = vec![BLOCK_HEADER];
    long.extend(std::iter::repeat_n(b'A', MAX_FRAME_LEN - 1));
    long.push(0x00);
    long.push(0x12);
    let replies = read_all(&long, 0);
    assert_eq!(replies.first(), Some(&Reply::Garbage(BLOCK_HEADER)));
    assert_eq!(replies.last(), Some(&Reply::RealTime(0x12)));
    assert!(!replies.iter().any(|r| matches!(r, Reply::Block(_))));
    assert_eq!(replies.len(), 1 + (MAX_FRAME_LEN - 1) + 1 + 1);

    // A header followed by an endless run without NUL: the partial reply never grows past
    // the cap, fed a byte at a time.
    let mut reader = ReplyReader::new();
    reader.push(&[EXTENDED_HEADER, 0x21]);
    let mut garbage = 0;
    for _ in 0..10 * MAX_FRAME_LEN {
        reader.push(b"A");
        garbage += reader
            .drain_replies()
            .iter()
            .filter(|r| matches!(r, Reply::Garbage(_)))
            .count();
        assert!(reader.pending_len() <= MAX_FRAME_LEN);
    }
    assert!(garbage > 0);
}

#[test]
fn status_reader_waits_for_partial_replies_and_flushes_them() {
    let mut reader = ReplyReader::new();
    reader.push(&[0x5F, b'T', b'M']);
    assert_eq!(reader.next_reply(), None);
    assert_eq!(reader.pending_len(), 3);
    reader.push(&[0x00]);
    assert_eq!(reader.next_reply(), Some(Reply::Block(b"TM".to_vec())));

    // The link went quiet mid-reply.
    reader.push(&[0x12, 0x37, 0x22, b'0']);
    assert_eq!(
        reader.flush(),
        vec![
            Reply::RealTime(0x12),
            Reply::Garbage(0x37),
            Reply::Garbage(0x22),
            Reply::Garbage(b'0'),
        ]
    );
    assert_eq!(reader.pending_len(), 0);
    reader.push(&[0x14, 0x00]);
    assert_eq!(
        reader.flush(),
        vec![Reply::Garbage(0x14), Reply::Garbage(0x00)]
    );
    assert_eq!(reader.flush(), Vec::new());
}

#[test]
fn status_reader_reports_overrun() {
    let mut reader = ReplyReader::new();
    reader.push(&vec![0x12; MAX_PENDING + 10]);
    assert_eq!(reader.pending_len(), MAX_PENDING);
    assert_eq!(reader.next_reply(), Some(Reply::Overrun { dropped: 10 }));
    let rest = reader.drain_replies();
    assert_eq!(rest.len(), MAX_PENDING);
    assert!(rest.iter().all(|r| *r == Reply::RealTime(0x12)));
    assert_eq!(reader.next_reply(), None);
}

/// Any reply, as bytes, for building random well-formed streams.
fn any_reply() -> impl Strategy<Value = Reply> {
    let rt = (0..16u8).prop_map(|free| {
        // Spread the four free bits over bits 2, 3, 5, 6.
        0x12 | ((free & 0x3) << 2) | ((free & 0xC) << 3)
    });
    let asb_first = (0..16u8).prop_map(|free| 0x10 | ((free & 0x3) << 2) | ((free & 0xC) << 3));
    let tail = (0..64u8).prop_map(|v| (v & 0x0F) | ((v & 0x30) << 1));
    let text = proptest::collection::vec(0x20u8..=0x7E, 0..40);
    let id = proptest::array::uniform4(b'0'..=b'9');
    prop_oneof![
        rt.prop_map(Reply::RealTime),
        (asb_first, tail.clone(), tail.clone(), tail)
            .prop_map(|(a, b, c, d)| Reply::Asb([a, b, c, d])),
        id.prop_map(Reply::ProcessId),
        (0x20u8..=0x2F, text.clone())
            .prop_map(|(identifier, data)| Reply::Extended { identifier, data }),
        (0x20u8..=0x2F, text.clone())
            .prop_map(|(identifier, data)| Reply::InfoA { identifier, data }),
        text.prop_map(Reply::Block),
        prop_oneof![Just(XON), Just(XOFF)].prop_map(Reply::FlowControl),
        prop_oneof![Just(0x80u8), Just(0xFF), Just(0x13 | 0x20), Just(0x01)]
            .prop_map(Reply::Garbage),
    ]
}

proptest! {
    #[test]
    fn status_reader_any_chunking_gives_the_same_replies(
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        extra in proptest::collection::vec(any_reply(), 0..8),
    ) {
        let (mut bytes, mut expected) = mixed_stream();
        for reply in extra {
            // Extended replies with identifier 0x22 and four digits would read as process IDs.
            if let Reply::Extended { identifier: 0x22, .. } = reply {
                continue;
            }
            bytes.extend(reply.to_bytes());
            expected.push(reply);
        }
        let chunks = split_at_points(&bytes, &cuts);
        let chunk_refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        prop_assert_eq!(read_chunked(&chunk_refs, 1), expected);
    }

    #[test]
    fn status_reader_never_panics_and_accounts_for_every_byte(
        bytes in proptest::collection::vec(any::<u8>(), 0..2000),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
        ids in 0usize..4,
    ) {
        let whole = read_all(&bytes, ids);
        let chunks = split_at_points(&bytes, &cuts);
        let chunk_refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        prop_assert_eq!(&read_chunked(&chunk_refs, ids), &whole);

        // Every byte ends up in exactly one reply: flow-control bytes as their own replies,
        // everything else in order.
        let flow_in = bytes.iter().filter(|b| **b == XON || **b == XOFF).count();
        let flow_out = whole.iter().filter(|r| matches!(r, Reply::FlowControl(_))).count();
        prop_assert_eq!(flow_in, flow_out);
        let rest_in: Vec<u8> = bytes.iter().copied().filter(|b| *b != XON && *b != XOFF).collect();
        let rest_out: Vec<u8> = whole
            .iter()
            .filter(|r| !matches!(r, Reply::FlowControl(_)))
            .flat_map(Reply::to_bytes)
            .collect();
        prop_assert_eq!(rest_in, rest_out);
        prop_assert!(whole.iter().filter(|r| matches!(r, Reply::IdByte(_))).count() <= ids);
        for reply in &whole {
            match reply {
                Reply::RealTime(b) => prop_assert!(is_real_time_byte(*b)),
                Reply::Asb(block) => prop_assert!(parse_asb(*block, true).is_ok()),
                Reply::ProcessId(id) => prop_assert!(id.iter().all(|b| (0x20..=0x7E).contains(b))),
                Reply::IdByte(b) => prop_assert!(is_id_byte(*b)),
                Reply::Block(data) | Reply::Extended { data, .. } | Reply::InfoA { data, .. } => {
                    prop_assert!(data.len() < MAX_FRAME_LEN);
                    prop_assert!(!data.contains(&0));
                }
                Reply::FlowControl(_) | Reply::Garbage(_) | Reply::Overrun { .. } => {}
            }
        }
    }

    #[test]
    fn status_reader_survives_more_than_max_pending(len in MAX_PENDING..MAX_PENDING + 3000, seed in any::<u8>()) {
        let bytes: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        let mut reader = ReplyReader::new();
        reader.push(&bytes);
        prop_assert!(reader.pending_len() <= MAX_PENDING);
        let replies = reader.flush();
        let dropped: usize = replies
            .iter()
            .map(|r| if let Reply::Overrun { dropped } = r { *dropped } else { 0 })
            .sum();
        prop_assert_eq!(dropped, len - MAX_PENDING);
        prop_assert_eq!(reader.pending_len(), 0);
    }
}
