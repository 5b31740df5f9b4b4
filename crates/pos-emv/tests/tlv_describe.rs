//! `tags::describe`: names and values for people, and card data masked, checked on every
//! response of the two real transcripts.

use pos_emv::tags::{self, Format, describe, info, render_value};

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).expect("test hex")
}

/// Every card response with data of a transcript file, status word removed.
/// The shared transcripts (binaryfoo/emv-bertlv test cases, MIT licence; see
/// tests/data/README.md), compiled in so that a missing file fails the build
/// instead of skipping the test.
fn responses(file: &str) -> Vec<Vec<u8>> {
    let text = match file {
        "contact-mastercard.apdu" => {
            include_str!("data/contact-mastercard.apdu")
        }
        "contact-upi.apdu" => include_str!("data/contact-upi.apdu"),
        other => panic!("unknown transcript {other}"),
    };
    text.lines()
        .filter_map(|l| l.strip_prefix("< "))
        .map(hex)
        .filter(|r| r.len() > 2)
        .map(|mut r| {
            r.truncate(r.len() - 2);
            r
        })
        .collect()
}

// Embedded too, so the key checks run even where the shared test data is absent.
const MC_SFI2_REC1: &str = "70818F5A0854133300896000445F24031412315F25030401015F280200565F3401018C219F02069F03069F090295055F2A029A039C019F37049F35019F45029F4C089F34038D0C910A8A0295059F37049F4C088E0C00000000000000005E031F039F0702FF009F080200029F0D0500000000009F0E0500000000009F0F0500000000009F420209789F4A0182DF4F03123456";
const MC_TRACK2: &str = "7081A657115413330089600044D1412201012340917293819021A0D15CCE47A534B8C86F03FCB56DA82332435BB2F7266A01196050D1C4A42C38C63F4B22331E7BA1B664EC925CB0539DC82539CB4F83818B90F6C94D4448D87F7140A3E3B0AD96C8C1FF62A9519F16AC4BF18F10E06A0366A1D6250752A59592BC61104EFDD0DD332FD4760F3B922B169C18C31BDD706688B63B332B2DA566E7176BD01C581E9FE45101EA49C1007A";
const UPI_TRACKS: &str = "7056570F6210948000000011D301020100000F9F1F42363231303934383030303030303031315ED2F8C1AA3632B1EAD7BCBFA840B2E2CAD4D7A8D3C343617264735E333031303230315E3230313431313135313035373539";
const UPI_NAME_ID: &str = "70365F201AD2F8C1AA3632B1EAD7BCBFA840B2E2CAD4D7A8D3C343617264739F61123131303130313139383630363230303031309F620100";

const SECRETS: &[&str] = &[
    "5413330089600044",
    "6210948000000011",
    // The UnionPay cardholder's ID number (9F61).
    "110101198606200010",
    // Track 2 after the separator (expiry, service code, discretionary data).
    "D14122010123409172",
    "14122010123409172",
    "301020100000",
];

fn assert_no_secret(text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{s} leaked in:\n{text}");
        // Also not as ASCII hex (track 1 discretionary data carries the PAN as text).
        let ascii_hex: String = s.bytes().map(|b| format!("{b:02X}")).collect();
        assert!(
            !text.contains(&ascii_hex),
            "{s} leaked as ASCII hex in:\n{text}"
        );
    }
}

#[test]
fn record_rendering_names_values_and_masks_the_pan() {
    let text = describe(&hex(MC_SFI2_REC1));
    assert_no_secret(&text);
    assert!(
        text.contains("70 READ RECORD Response Message Template [143]\n"),
        "{text}"
    );
    assert!(
        text.contains("  5A Application Primary Account Number (PAN) [8]: 541333******0044\n"),
        "{text}"
    );
    assert!(
        text.contains("  5F24 Application Expiration Date [3]: 141231\n"),
        "{text}"
    );
    assert!(
        text.contains("  5F28 Issuer Country Code [2]: 0056\n"),
        "{text}"
    );
    assert!(
        text.contains("  8C Card Risk Management Data Object List 1 (CDOL1) [33]: 9F0206"),
        "{text}"
    );
    assert!(
        text.contains("  DF4F (unknown tag) [3]: 123456\n"),
        "{text}"
    );
}

#[test]
fn track_data_is_masked() {
    let text = describe(&hex(MC_TRACK2));
    assert_no_secret(&text);
    assert!(
        text.contains("57 Track 2 Equivalent Data [17]: 541333******0044 D <rest masked>"),
        "{text}"
    );

    let text = describe(&hex(UPI_TRACKS));
    assert_no_secret(&text);
    assert!(
        text.contains("57 Track 2 Equivalent Data [15]: 621094******0011 D"),
        "{text}"
    );
    assert!(
        text.contains("9F1F Track 1 Discretionary Data [66]: <66 bytes masked>"),
        "{text}"
    );

    let text = describe(&hex(UPI_NAME_ID));
    assert_no_secret(&text);
    assert!(
        text.contains("9F61 (unknown tag) [18]: <18 bytes masked>"),
        "{text}"
    );

    // Track 1 data (56) keeps the masked PAN only.
    let t1 = render_value(
        tags::TRACK1_DATA,
        b"B5413330089600044^TEST/CARD^14122010000",
    );
    assert_eq!(t1, "B541333******0044 ^ <rest masked> (39 bytes)");
    assert_eq!(
        render_value(tags::TRACK2_DISCRETIONARY, &[0x12, 0x34]),
        "<2 bytes masked>"
    );
    // A PAN that is not BCD is hidden whole.
    assert_eq!(
        render_value(tags::PAN, &hex("54133300896000AA")),
        "<8 bytes masked>"
    );
}

#[test]
fn every_transcript_response_renders_without_secrets() {
    let mut count = 0;
    for file in ["contact-mastercard.apdu", "contact-upi.apdu"] {
        for r in responses(file) {
            let text = describe(&r);
            assert_no_secret(&text);
            assert!(!text.contains("error:"), "{text}");
            count += 1;
        }
    }
    assert!(count > 20, "{count}");
}

#[test]
fn text_formats_and_errors() {
    let fci = hex("6F1C8407A0000000041010A511500F505043204D434420303420207632309000");
    let text = describe(&fci[..fci.len() - 2]);
    assert!(
        text.contains("    50 Application Label [15]: \"PPC MCD 04  v20\"\n"),
        "{text}"
    );
    assert!(
        text.contains("  84 Dedicated File (DF) Name [7]: A0000000041010\n"),
        "{text}"
    );
    // Non-ASCII text (GBK cardholder name) falls back to hex.
    assert_eq!(render_value(tags::CARDHOLDER_NAME, &[0xD2, 0xF8]), "D2F8");
    // Malformed numeric values are flagged.
    assert_eq!(
        render_value(tags::EXPIRY_DATE, &[0x14, 0x1A]),
        "141A (not BCD)"
    );
    // A malformed tail: the objects before it, then the error.
    let text = describe(&hex("9F350122 5A08 5413"));
    assert_eq!(
        text,
        "9F35 Terminal Type [1]: 22\nerror: object at offset 4 declares 8 value bytes, only 2 available\n"
    );
    assert_eq!(info(tags::PAN).map(|i| i.format), Some(Format::Cn));
}
