//! Property tests: round trips, no panics on arbitrary bytes, framing under any chunking.
#![allow(clippy::unwrap_used)]

use pos_acquirer::*;
use proptest::prelude::*;

fn value_for(spec: FieldSpec) -> BoxedStrategy<Vec<u8>> {
    let len = match spec.kind {
        LengthKind::Fixed(n) => (usize::from(n)..=usize::from(n)).boxed(),
        LengthKind::LlVar(m) | LengthKind::LllVar(m) => (0..=usize::from(m).min(300)).boxed(),
    };
    let ch: BoxedStrategy<u8> = match spec.content {
        Content::N => (b'0'..=b'9').boxed(),
        Content::Z => prop_oneof![9 => b'0'..=b'9', 1 => Just(b'=')].boxed(),
        Content::An => prop::sample::select(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".to_vec(),
        )
        .boxed(),
        Content::Ans => (0x20u8..=0x7e).boxed(),
        Content::B => any::<u8>().boxed(),
    };
    len.prop_flat_map(move |n| prop::collection::vec(ch.clone(), n))
        .boxed()
}

fn message(dialect: &Dialect) -> BoxedStrategy<Message> {
    let fields: Vec<_> = dialect
        .fields()
        .map(|s| (Just(s.number), prop::option::weighted(0.4, value_for(*s))))
        .collect();
    let mti = prop::sample::select(vec![100u16, 110, 200, 210, 400, 410, 420, 430, 800, 810]);
    (mti, fields)
        .prop_map(|(mti, fields)| {
            let mut m = Message::new(Mti::new(mti).unwrap());
            for (n, v) in fields {
                if let Some(v) = v {
                    m.set(n, v);
                }
            }
            m
        })
        .boxed()
}

fn hex_dialect() -> Dialect {
    // Everything ASCII (b as hex) with binary length prefixes: the remaining combinations.
    let fields = Dialect::default_pos()
        .fields()
        .map(|s| FieldSpec {
            encoding: Encoding::Ascii,
            ..*s
        })
        .collect::<Vec<_>>();
    Dialect::new(Encoding::Ascii, Encoding::Binary, fields).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn round_trip_ascii(m in message(&Dialect::default_pos())) {
        let d = Dialect::default_pos();
        let bytes = encode(&m, &d).unwrap();
        prop_assert_eq!(decode(&bytes, &d).unwrap(), m);
    }

    #[test]
    fn round_trip_bcd(m in message(&Dialect::default_pos_bcd())) {
        let d = Dialect::default_pos_bcd();
        let bytes = encode(&m, &d).unwrap();
        prop_assert_eq!(decode(&bytes, &d).unwrap(), m);
    }

    #[test]
    fn round_trip_hex(m in message(&hex_dialect())) {
        let d = hex_dialect();
        let bytes = encode(&m, &d).unwrap();
        prop_assert_eq!(decode(&bytes, &d).unwrap(), m);
    }

    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        for d in [Dialect::default_pos(), Dialect::default_pos_bcd(), hex_dialect()] {
            let _ = decode(&bytes, &d);
        }
    }

    #[test]
    fn decode_mutated_never_panics(
        m in message(&Dialect::default_pos_bcd()),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let d = Dialect::default_pos_bcd();
        let mut bytes = encode(&m, &d).unwrap();
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        let _ = decode(&bytes, &d);
        let _ = decode(&bytes[..cut.index(bytes.len() + 1)], &d);
    }

    #[test]
    fn debug_never_shows_pan(pan in "[0-9]{13,19}", disc in "[0-9]{5,15}") {
        let mut m = Message::new(Mti::FINANCIAL_REQUEST);
        m.set_pan(&pan).set_track2(&format!("{pan}={disc}"));
        let s = format!("{m:?}");
        prop_assert!(!s.contains(&pan));
        prop_assert!(!s.contains(&disc));
    }

    #[test]
    fn deframer_any_chunking(
        msgs in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..300), 0..6),
        cuts in prop::collection::vec(1usize..50, 0..40),
    ) {
        let stream: Vec<u8> = msgs.iter().flat_map(|m| frame(m).unwrap()).collect();
        let mut d = Deframer::new(300);
        let mut got = Vec::new();
        let mut rest = &stream[..];
        let mut cuts = cuts.into_iter();
        while !rest.is_empty() {
            let n = cuts.next().unwrap_or(rest.len()).min(rest.len());
            d.push(&rest[..n]);
            rest = &rest[n..];
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        prop_assert_eq!(got, msgs);
        prop_assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn deframer_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut d = Deframer::new(64);
        d.push(&bytes);
        for _ in 0..10 {
            if !matches!(d.next_frame(), Ok(Some(_))) {
                break;
            }
        }
    }
}
