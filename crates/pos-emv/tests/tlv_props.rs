//! BER-TLV properties: encode/decode round trips of arbitrary trees, no panic on arbitrary
//! bytes, every truncation of a valid encoding is an error, padding changes nothing.

use pos_emv::tlv::{self, Builder, Tag, TlvError, TlvIter, parse, walk};
use pos_emv::{dol, tags};
use proptest::prelude::*;

/// A valid tag that can start an object (first byte neither 00 nor FF).
fn any_tag(constructed: bool) -> impl Strategy<Value = Tag> {
    let cbit = if constructed { 0x20u8 } else { 0x00 };
    let class = prop::sample::select(vec![0x00u8, 0x40, 0x80, 0xC0]);
    prop_oneof![
        // One byte: tag number 0..=30, not the 00 padding byte.
        (class.clone(), 0u8..31).prop_filter_map("not 00", move |(c, n)| {
            let b = c | cbit | n;
            (b != 0).then(|| Tag::new(u32::from(b)))
        }),
        // Two bytes.
        (class.clone(), 0u8..0x80).prop_filter_map("not FF", move |(c, n)| {
            let b0 = c | cbit | 0x1F;
            (b0 != 0xFF).then(|| Tag::new(u32::from_be_bytes([0, 0, b0, n])))
        }),
        // Three bytes.
        (class, 0x80u8..=0xFF, 0u8..0x80).prop_filter_map("not FF", move |(c, m, n)| {
            let b0 = c | cbit | 0x1F;
            (b0 != 0xFF).then(|| Tag::new(u32::from_be_bytes([0, b0, m, n])))
        }),
    ]
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Prim(Tag, Vec<u8>),
    Cons(Tag, Vec<Node>),
}

fn any_tree() -> impl Strategy<Value = Vec<Node>> {
    let leaf = (any_tag(false), prop::collection::vec(any::<u8>(), 0..300))
        .prop_map(|(t, v)| Node::Prim(t, v));
    let node = leaf.prop_recursive(5, 64, 6, |inner| {
        (any_tag(true), prop::collection::vec(inner, 0..6)).prop_map(|(t, c)| Node::Cons(t, c))
    });
    prop::collection::vec(node, 0..5)
}

fn build(nodes: &[Node], b: &mut Builder) {
    for n in nodes {
        match n {
            Node::Prim(t, v) => {
                b.primitive(*t, v);
            }
            Node::Cons(t, c) => {
                b.constructed(*t, |inner| build(c, inner));
            }
        }
    }
}

fn encode_tree(nodes: &[Node]) -> Vec<u8> {
    let mut b = Builder::new();
    build(nodes, &mut b);
    b.finish()
}

fn decode_tree(iter: TlvIter<'_>) -> Result<Vec<Node>, TlvError> {
    iter.map(|t| {
        let t = t?;
        Ok(if t.is_constructed() {
            Node::Cons(t.tag, decode_tree(t.children())?)
        } else {
            Node::Prim(t.tag, t.value.to_vec())
        })
    })
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn tree_round_trip(tree in any_tree()) {
        let bytes = encode_tree(&tree);
        prop_assert_eq!(decode_tree(parse(&bytes))?, tree);
        // Every object's offsets point at its own bytes.
        walk(&bytes, |t, _| {
            assert_eq!(&bytes[t.value_offset()..t.end()], t.value);
            assert!(t.length_is_minimal());
        })?;
    }

    #[test]
    fn primitive_round_trip_with_any_length(tag in any_tag(false), len in 0usize..70_000, fill: u8) {
        let value = vec![fill; len];
        let mut out = Vec::new();
        tlv::encode(tag, &value, &mut out);
        let t = tlv::parse_single(&out)?;
        prop_assert_eq!(t.tag, tag);
        prop_assert_eq!(t.value, &value[..]);
        prop_assert_eq!(t.header_len, tag.byte_len() + tlv::length_field_len(len));
    }

    #[test]
    fn tag_text_round_trip(tag in prop_oneof![any_tag(false), any_tag(true)]) {
        prop_assert_eq!(tag.to_string().parse::<Tag>(), Ok(tag));
        prop_assert_eq!(Tag::from_bytes(&tag.bytes()), Ok(tag));
    }

    #[test]
    fn padding_changes_nothing(tree in any_tree(), pads in prop::collection::vec(
        prop::collection::vec(prop::sample::select(vec![0x00u8, 0xFF]), 0..4), 6)) {
        // Pad before, between and after top-level objects.
        let mut padded = pads[0].clone();
        for (i, n) in tree.iter().enumerate() {
            padded.extend(encode_tree(std::slice::from_ref(n)));
            padded.extend(&pads[(i + 1) % pads.len()]);
        }
        prop_assert_eq!(decode_tree(parse(&padded))?, tree);
    }

    #[test]
    fn every_truncation_is_an_error(tree in any_tree().prop_filter("one object", |t| t.len() == 1), cut in any::<prop::sample::Index>()) {
        let bytes = encode_tree(&tree);
        let cut = 1 + cut.index(bytes.len() - 1);
        let short = &bytes[..cut];
        let err = decode_tree(parse(short)).expect_err("a truncated object must not decode");
        prop_assert!(err.offset() <= cut, "offset {} beyond the data ({cut})", err.offset());
        prop_assert!(matches!(err,
            TlvError::Truncated { .. } | TlvError::TruncatedLength { .. } | TlvError::TruncatedTag { .. }),
            "{err:?}");
        let walked = walk(short, |_, _| {});
        prop_assert!(walked.is_err());
    }

    #[test]
    fn no_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        for item in parse(&bytes) {
            match item {
                Ok(t) => {
                    prop_assert!(t.end() <= bytes.len());
                    prop_assert_eq!(&bytes[t.value_offset()..t.end()], t.value);
                }
                Err(e) => prop_assert!(e.offset() <= bytes.len()),
            }
        }
        let _ = walk(&bytes, |t, _| assert!(t.end() <= bytes.len()));
        let _ = tlv::find(&bytes, tags::PAN);
        let _ = tlv::flatten(&bytes);
        let _ = tlv::parse_template(&bytes, tags::RECORD_TEMPLATE);
        let _ = tags::describe(&bytes);
        let _ = Tag::from_bytes(&bytes);
        if let Ok(entries) = dol::parse_dol(&bytes) {
            let data = dol::build(&entries, |t| Some(t.bytes()));
            prop_assert_eq!(data.len(), dol::data_len(&entries));
        }
    }

    #[test]
    fn no_panic_on_tlv_shaped_bytes(
        parts in prop::collection::vec(prop_oneof![
            Just(vec![0x70u8]), Just(vec![0x9F]), Just(vec![0x81]), Just(vec![0x82]),
            Just(vec![0x83]), Just(vec![0x80]), Just(vec![0x00]), Just(vec![0xFF]),
            prop::collection::vec(any::<u8>(), 1..4),
        ], 0..64)
    ) {
        let bytes: Vec<u8> = parts.concat();
        let _ = walk(&bytes, |_, _| {});
        let _ = tags::describe(&bytes);
    }
}
