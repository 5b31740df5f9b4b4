//! A READ RECORD response body: template 70 decoding and extraction of the tags a terminal
//! reads from records (PAN, expiry, CDOLs, ...), then the CDOL1 parsed and built.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pos_emv::{dol, tags, tlv};

const WANTED: &[tlv::Tag] = &[
    tags::PAN,
    tags::EXPIRY_DATE,
    tags::EFFECTIVE_DATE,
    tags::TRACK2_EQUIVALENT,
    tags::CDOL1,
    tags::CDOL2,
    tags::CVM_LIST,
    tags::DDOL,
    tags::SDA_TAG_LIST,
    tags::ISSUER_PK_CERT,
];

fuzz_target!(|data: &[u8]| {
    let Ok(record) = tlv::parse_template(data, tags::RECORD_TEMPLATE) else {
        return;
    };
    assert_eq!(record.tag, tags::RECORD_TEMPLATE);
    for &tag in WANTED {
        // parse_template checked the whole tree, so find cannot fail now.
        let found = tlv::find(data, tag).expect("record already validated");
        if let Some(t) = found {
            assert_eq!(t.tag, tag);
            let _ = tags::render_value(tag, t.value);
        }
    }
    if let Ok(Some(cdol1)) = tlv::find(data, tags::CDOL1)
        && let Ok(entries) = dol::parse_dol(cdol1.value)
    {
        let built = dol::build(&entries, |_| None);
        assert!(built.iter().all(|&b| b == 0));
    }
    let text = tags::describe(data);
    assert!(!text.contains("error:"));
});
