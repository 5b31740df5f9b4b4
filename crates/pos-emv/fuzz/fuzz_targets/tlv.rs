//! BER-TLV decoding of arbitrary bytes: never panics, every object lies inside the input,
//! and a well-formed input re-encodes to the same objects.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pos_emv::tlv::{self, Builder, TlvIter};

fn rebuild(iter: TlvIter<'_>, out: &mut Builder) -> bool {
    for item in iter {
        let Ok(t) = item else { return false };
        if t.is_constructed() {
            let mut ok = true;
            out.constructed(t.tag, |inner| ok = rebuild(t.children(), inner));
            if !ok {
                return false;
            }
        } else {
            out.primitive(t.tag, t.value);
        }
    }
    true
}

fuzz_target!(|data: &[u8]| {
    for item in tlv::parse(data) {
        match item {
            Ok(t) => {
                assert!(t.end() <= data.len());
                assert_eq!(&data[t.value_offset()..t.end()], t.value);
            }
            Err(e) => assert!(e.offset() <= data.len()),
        }
    }
    let walked = tlv::walk(data, |t, depth| {
        assert!(t.end() <= data.len());
        assert!(depth < tlv::MAX_DEPTH);
    });
    let _ = tlv::flatten(data);
    let _ = pos_emv::tags::describe(data);
    if walked.is_ok() {
        // Decode -> encode -> decode gives the same tree (lengths re-encoded minimally,
        // padding dropped).
        let mut b = Builder::new();
        assert!(rebuild(tlv::parse(data), &mut b));
        let again = b.finish();
        let first: Vec<_> = tlv::flatten(data)
            .map(|v| v.iter().map(|t| (t.tag, t.value.to_vec())).collect())
            .unwrap_or_default();
        let second: Vec<_> = tlv::flatten(&again)
            .map(|v| v.iter().map(|t| (t.tag, t.value.to_vec())).collect())
            .unwrap_or_default();
        assert_eq!(first, second);
    }
});
