//! Transcript parsing: the shared EMV test vectors and bad input.
//!
//! The `.apdu` files come from the test cases of binaryfoo/emv-bertlv (MIT licence),
//! converted to the `>` / `<` format (see tests/data/README.md).

use pos_emv::apdu::{Command, Response};
use pos_emv::transcript::{Transcript, TranscriptError};

const MASTERCARD: &str = include_str!("data/contact-mastercard.apdu");
const UPI: &str = include_str!("data/contact-upi.apdu");

fn line_of(e: TranscriptError) -> usize {
    e.line().unwrap_or_else(|| panic!("not a line error: {e}"))
}

#[test]
fn mastercard_transcript() {
    let t = Transcript::parse(MASTERCARD).unwrap();
    assert_eq!(t.exchanges.len(), 9);
    assert_eq!(t.comments.len(), 5);
    assert!(t.comments[0].starts_with("Mastercard contact test card"));
    assert!(t.comments[1].contains("binaryfoo/emv-bertlv"));
    let first = &t.exchanges[0];
    assert_eq!(first.command[..5], [0x00, 0xA4, 0x04, 0x00, 0x07]);
    assert_eq!(first.sw(), 0x9000);
    // Every exchange: a well-formed command and a 9000 response.
    for e in &t.exchanges {
        let c = Command::parse(&e.command).unwrap();
        assert_eq!(c.to_bytes(false).unwrap(), e.command);
        assert!(Response::from_bytes(&e.response).unwrap().is_success());
    }
    // The two GENERATE ACs: ARQC then TC request.
    let gacs: Vec<_> = t
        .exchanges
        .iter()
        .filter(|e| e.command[1] == 0xAE)
        .collect();
    assert_eq!(gacs.len(), 2);
    assert_eq!(gacs[0].header(), &[0x80, 0xAE, 0x80, 0x00]);
    assert_eq!(gacs[1].header(), &[0x80, 0xAE, 0x40, 0x00]);
}

#[test]
fn upi_transcript() {
    let t = Transcript::parse(UPI).unwrap();
    assert_eq!(t.exchanges.len(), 22);
    assert_eq!(t.comments.len(), 5);
    let sws: Vec<u16> = t.exchanges.iter().map(|e| e.sw()).collect();
    // The PSE directory ends with 6A83 (5th exchange); EXTERNAL AUTHENTICATE gets 6700.
    assert_eq!(sws[4], 0x6A83);
    assert_eq!(sws[20], 0x6700);
    assert_eq!(t.exchanges[20].header(), &[0x00, 0x82, 0x00, 0x00]);
    assert_eq!(sws.iter().filter(|s| **s == 0x9000).count(), 20);
    assert_eq!(
        t.exchanges.iter().filter(|e| e.command[1] == 0x88).count(),
        1
    );
    for e in &t.exchanges {
        assert_eq!(
            Command::parse(&e.command).unwrap().to_bytes(false).unwrap(),
            e.command
        );
    }
}

#[test]
fn display_writes_what_parse_reads() {
    for text in [MASTERCARD, UPI] {
        let t = Transcript::parse(text).unwrap();
        let again = Transcript::parse(&t.to_string()).unwrap();
        assert_eq!(again, t);
    }
}

#[test]
fn spaces_lower_case_and_blank_lines_are_fine() {
    let t = Transcript::parse(
        "\n  # spaced comment  \n>00 a4 04 00 02 3f 00\n\n   < 6f 00 90 00\n\t\n> 80CA9F3600\n# between\n< 9000\n",
    )
    .unwrap();
    assert_eq!(t.comments, vec!["spaced comment", "between"]);
    assert_eq!(t.len(), 2);
    assert_eq!(
        t.exchanges[0].command,
        vec![0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00]
    );
    assert_eq!(t.exchanges[0].response, vec![0x6F, 0x00, 0x90, 0x00]);
    assert!(Transcript::parse("").unwrap().is_empty());
}

#[test]
fn errors_name_the_line() {
    // '>' without '<' before the next '>': the line of the orphan command.
    let e = Transcript::parse("# c\n> 00B2010C00\n> 00B2020C00\n< 9000\n").unwrap_err();
    assert_eq!(line_of(e), 2);
    // '>' without '<' at the end.
    let e = Transcript::parse("> 00B2010C00\n< 9000\n\n> 00B2020C00\n").unwrap_err();
    assert!(e.to_string().starts_with("line 4:"), "{e}");
    // '<' without '>'.
    let e = Transcript::parse("# c\n< 9000\n").unwrap_err();
    assert_eq!(line_of(e), 2);
    // Bad hex, odd hex, short command, short response, unknown line.
    let cases = [
        ("> 00B2010CZZ\n< 9000\n", 1),
        ("> 00B2010C0\n< 9000\n", 1),
        ("> 00B201\n< 9000\n", 1),
        ("> 00B2010C00\n< 90\n", 2),
        ("> 00B2010C00\n<\n", 2),
        ("> 00B2010C00\n< 9000\nhello\n", 3),
        ("> 00B2010C00\n< 9000\n>\n", 3),
    ];
    for (text, line) in cases {
        let e = Transcript::parse(text).unwrap_err();
        assert_eq!(e.line(), Some(line), "{text:?}: {e}");
    }
}

#[test]
fn load_reads_files_and_reports_missing_ones() {
    let dir = std::env::temp_dir().join(format!("pos-emv-transcript-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mc.apdu");
    std::fs::write(&path, MASTERCARD).unwrap();
    assert_eq!(Transcript::load(&path).unwrap().len(), 9);
    std::fs::remove_dir_all(&dir).unwrap();

    let e = Transcript::load(dir.join("missing.apdu")).unwrap_err();
    assert!(matches!(e, TranscriptError::Io { .. }));
    assert_eq!(pos_hal::Fault::kind(&e), pos_hal::FaultKind::NotFound);
    assert!(e.to_string().contains("missing.apdu"));
}
