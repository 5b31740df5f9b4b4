//! Property tests of the codec: the decoder never panics, and encode → decode round-trips
//! under any chunking.
#![allow(clippy::unwrap_used)]

use pos_vscard::codec::{Body, Decoder, Message, encode};
use proptest::collection::vec;
use proptest::prelude::*;

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u32>(), vec(any::<u32>(), 1..5)).prop_map(
            |(magic, version, capabilities)| Body::Init {
                magic,
                version,
                capabilities
            }
        ),
        any::<u32>().prop_map(|code| Body::Error { code }),
        vec(any::<u8>(), 0..40).prop_map(|name| Body::ReaderAdd { name }),
        Just(Body::ReaderRemove),
        vec(any::<u8>(), 0..50).prop_map(Body::Atr),
        Just(Body::CardRemove),
        vec(any::<u8>(), 0..300).prop_map(Body::Apdu),
        Just(Body::Flush),
        Just(Body::FlushComplete),
        (prop_oneof![Just(0u32), 10u32..], vec(any::<u8>(), 0..40))
            .prop_map(|(ty, payload)| Body::Unknown { ty, payload }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (any::<u32>(), body()).prop_map(|(reader_id, body)| Message::new(reader_id, body))
}

/// Feed `bytes` in chunks of the given sizes (cycled), popping after each push.
fn feed(dec: &mut Decoder, bytes: &[u8], sizes: &[usize]) -> Vec<Result<Message, String>> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < bytes.len() {
        let n = sizes[i % sizes.len()].min(bytes.len() - at);
        dec.push(&bytes[at..at + n]);
        at += n;
        i += 1;
        loop {
            match dec.pop() {
                Ok(Some(m)) => out.push(Ok(m)),
                Ok(None) => break,
                Err(e) => {
                    let fatal = e.is_fatal();
                    out.push(Err(e.to_string()));
                    if fatal {
                        return out;
                    }
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoder_never_panics(bytes in vec(any::<u8>(), 0..2048),
                            sizes in vec(1usize..64, 1..8),
                            cap in prop_oneof![Just(0u32), 1u32..512, Just(u32::MAX)]) {
        let mut dec = Decoder::with_max_payload(cap);
        let _ = feed(&mut dec, &bytes, &sizes);
        // After the input ends the decoder still answers without panicking.
        let _ = dec.pop();
        prop_assert!(dec.buffered() <= bytes.len());
    }

    #[test]
    fn headers_with_small_types_never_panic(ty in 0u32..12, len in 0u32..40,
                                            payload in vec(any::<u8>(), 0..40)) {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&ty.to_be_bytes());
        bytes.extend_from_slice(&0u32.to_be_bytes());
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(&payload);
        let mut dec = Decoder::new();
        dec.push(&bytes);
        let r = dec.pop();
        if payload.len() < len as usize {
            prop_assert_eq!(r, Ok(None));
        } else if let Ok(Some(m)) = r {
            // Whatever decodes re-encodes to the same bytes.
            prop_assert_eq!(&encode(&m)[..], &bytes[..12 + len as usize]);
        }
    }

    #[test]
    fn round_trip_any_chunking(msgs in vec(message(), 0..12), sizes in vec(1usize..80, 1..8)) {
        let bytes: Vec<u8> = msgs.iter().flat_map(encode).collect();
        let mut dec = Decoder::new();
        let got = feed(&mut dec, &bytes, &sizes);
        let want: Vec<Result<Message, String>> = msgs.into_iter().map(Ok).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(dec.buffered(), 0);
    }
}
