//! GET PROCESSING OPTIONS and reading application data against small made-up cards
//! (scripted in strict order).

use pos_emv::apdu::Command;
use pos_emv::read::{self, AflEntry};
use pos_emv::script_card::{Matching, ScriptedCard};
use pos_emv::select::{Candidate, SelectedApp};
use pos_emv::terminal::TerminalData;
use pos_emv::tlv::{Builder, Tag};
use pos_emv::transcript::Transcript;
use pos_emv::{Cause, Step, tags};
use pos_hal::{CardChannel, Fault, FaultKind, VirtualCard};

struct Slot {
    card: ScriptedCard,
}

impl CardChannel for Slot {
    type Error = FaultKind;
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, FaultKind> {
        self.card.transmit(command).ok_or(FaultKind::CardMute)
    }
}

fn card(script: &[(Command, Vec<u8>, u16)]) -> Slot {
    let mut t = Transcript::default();
    for (cmd, data, sw) in script {
        let mut resp = data.clone();
        resp.extend_from_slice(&sw.to_be_bytes());
        t.push(cmd.to_bytes(false).expect("short command"), resp);
    }
    let mut card = ScriptedCard::new(t, Matching::Strict);
    assert!(card.power_on().is_some());
    Slot { card }
}

fn rr(sfi: u8, record: u8) -> Command {
    Command::read_record(sfi, record).expect("valid record")
}

fn record(objects: &[(Tag, &[u8])]) -> Vec<u8> {
    let mut b = Builder::new();
    b.constructed(tags::RECORD_TEMPLATE, |r| {
        for (t, v) in objects {
            r.primitive(*t, v);
        }
    });
    b.finish()
}

const PAN: &[u8] = &[0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x01, 0x19];
const EXPIRY: &[u8] = &[0x29, 0x12, 0x31];
const CDOL1: &[u8] = &[0x9F, 0x02, 0x06, 0x9F, 0x37, 0x04];
const CDOL2: &[u8] = &[0x8A, 0x02, 0x9F, 0x37, 0x04];

fn app(pdol: Option<Vec<u8>>) -> SelectedApp {
    SelectedApp {
        candidate: Candidate {
            aid: vec![0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10],
            label: Some("VISA".into()),
            preferred_name: None,
            priority: None,
            confirmation_required: false,
        },
        fci: vec![],
        pdol,
    }
}

fn afl(sfi: u8, first: u8, last: u8, oda_records: u8) -> AflEntry {
    AflEntry {
        sfi,
        first,
        last,
        oda_records,
    }
}

#[test]
fn gpo_sends_the_pdol_built_from_terminal_data_and_reads_format_1() {
    // PDOL: TTQ 4, amount 6, UN 4, currency 2.
    let pdol = vec![
        0x9F, 0x66, 0x04, 0x9F, 0x02, 0x06, 0x9F, 0x37, 0x04, 0x5F, 0x2A, 0x02,
    ];
    let mut terminal = TerminalData::new([0xDE, 0xAD, 0xBE, 0xEF]);
    terminal.set_amount(1234);
    terminal.set(tags::TRANSACTION_CURRENCY_CODE, vec![0x09, 0x78]);
    let data = [
        0x36, 0x00, 0x40, 0x00, 0, 0, 0, 0, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 0x09, 0x78,
    ];
    let expected = Command::get_processing_options(&data);
    assert_eq!(expected.data[..2], [0x83, 0x10]);
    let mut slot = card(&[(
        expected,
        vec![
            0x80, 0x0A, 0x18, 0x00, 0x08, 0x01, 0x02, 0x01, 0x58, 0x01, 0x01, 0x00,
        ],
        0x9000,
    )]);
    let p = read::initiate(&mut slot, &app(Some(pdol)), &terminal).unwrap();
    assert_eq!(p.aip, [0x18, 0x00]);
    assert_eq!(p.afl, [afl(1, 1, 2, 1), afl(11, 1, 1, 0)]);
    assert!(slot.card.is_finished(), "{:?}", slot.card.mismatches());
}

/// Response data, status words, the cause expected, the kind expected.
type Case = (Vec<u8>, u16, fn(&Cause) -> bool, FaultKind);

#[test]
fn gpo_errors() {
    let terminal = TerminalData::new([0; 4]);
    let gpo = Command::get_processing_options(&[]);
    let cases: [Case; 5] = [
        (
            vec![],
            0x6985,
            |c| matches!(c, Cause::ConditionsNotSatisfied),
            FaultKind::CardUnsupported,
        ),
        (
            vec![],
            0x6A88,
            |c| matches!(c, Cause::Status { sw: 0x6A88 }),
            FaultKind::CardUnsupported,
        ),
        // Format 2 without AFL.
        (
            vec![0x77, 0x04, 0x82, 0x02, 0x18, 0x00],
            0x9000,
            |c| matches!(c, Cause::MissingData { tag } if *tag == tags::AFL),
            FaultKind::Protocol,
        ),
        // AFL not a multiple of 4.
        (
            vec![0x80, 0x05, 0x18, 0x00, 0x08, 0x01, 0x01],
            0x9000,
            |c| matches!(c, Cause::Malformed { .. }),
            FaultKind::Protocol,
        ),
        // Truncated TLV.
        (
            vec![0x77, 0x09, 0x82],
            0x9000,
            |c| matches!(c, Cause::Tlv(_)),
            FaultKind::Protocol,
        ),
    ];
    for (data, sw, check, kind) in cases {
        let mut slot = card(&[(gpo.clone(), data, sw)]);
        let err = read::initiate(&mut slot, &app(None), &terminal).unwrap_err();
        assert_eq!(err.step(), Step::Gpo);
        assert!(check(err.cause()), "{err}");
        assert_eq!(err.kind(), kind, "{err}");
        assert_eq!(err.is_reselect(), sw == 0x6985);
    }
}

#[test]
fn records_collected_with_oda_input_by_sfi_range() {
    let r1 = record(&[(tags::PAN, PAN), (tags::EXPIRY_DATE, EXPIRY)]);
    let r2 = record(&[(tags::CDOL1, CDOL1), (tags::CDOL2, CDOL2)]);
    let r11 = record(&[(tags::APP_CURRENCY_CODE, &[0x09, 0x78])]);
    let mut slot = card(&[
        (rr(1, 1), r1.clone(), 0x9000),
        (rr(1, 2), r2.clone(), 0x9000),
        (rr(11, 1), r11.clone(), 0x9000),
    ]);
    let data =
        read::read_application_data(&mut slot, &[afl(1, 1, 2, 1), afl(11, 1, 1, 1)]).unwrap();
    assert_eq!(data.records, [r1.clone(), r2, r11.clone()]);
    // SFI 1-10: the template's value; SFI 11-30: the whole record.
    let mut oda = r1[2..].to_vec();
    oda.extend_from_slice(&r11);
    assert_eq!(data.oda_input, oda);
    assert_eq!(data.pan_masked().as_deref(), Some("476173******0119"));
    assert_eq!(data.expiry().as_deref(), Some("291231"));
    assert_eq!(data.cdol1(), Some(CDOL1));
    assert_eq!(data.cdol2(), Some(CDOL2));
    assert_eq!(data.get(tags::APP_CURRENCY_CODE), Some(&[0x09, 0x78][..]));
    let debug = format!("{data:?}");
    assert!(!debug.contains("4761739001010119"), "{debug}");
    assert!(debug.contains("476173******0119"));
}

#[test]
fn duplicate_tag_across_records_is_rejected() {
    let mut slot = card(&[
        (
            rr(1, 1),
            record(&[(tags::PAN, PAN), (tags::EXPIRY_DATE, EXPIRY)]),
            0x9000,
        ),
        (
            rr(2, 1),
            record(&[(tags::CDOL1, CDOL1), (tags::EXPIRY_DATE, EXPIRY)]),
            0x9000,
        ),
    ]);
    let err =
        read::read_application_data(&mut slot, &[afl(1, 1, 1, 0), afl(2, 1, 1, 0)]).unwrap_err();
    assert_eq!(err.step(), Step::ReadRecord { sfi: 2, record: 1 });
    assert!(matches!(err.cause(), Cause::DuplicateTag { tag } if *tag == tags::EXPIRY_DATE));
    assert_eq!(err.kind(), FaultKind::Protocol);
    // The error message names the tag, never a value.
    assert!(err.to_string().contains("5F24"));
    assert!(!err.to_string().contains("47617390"));
}

#[test]
fn missing_mandatory_data_is_reported() {
    let mut slot = card(&[(
        rr(1, 1),
        record(&[
            (tags::PAN, PAN),
            (tags::EXPIRY_DATE, EXPIRY),
            (tags::CDOL1, CDOL1),
        ]),
        0x9000,
    )]);
    let err = read::read_application_data(&mut slot, &[afl(1, 1, 1, 0)]).unwrap_err();
    assert_eq!(err.step(), Step::CheckData);
    assert!(matches!(err.cause(), Cause::MissingData { tag } if *tag == tags::CDOL2));
    assert_eq!(err.kind(), FaultKind::Protocol);
}

#[test]
fn bad_records_are_errors_naming_the_record() {
    // Not answered 9000.
    let mut slot = card(&[(rr(1, 1), vec![], 0x6A83)]);
    let err = read::read_application_data(&mut slot, &[afl(1, 1, 1, 0)]).unwrap_err();
    assert_eq!(err.step(), Step::ReadRecord { sfi: 1, record: 1 });
    assert!(matches!(err.cause(), Cause::Status { sw: 0x6A83 }));
    // SFI 1-10 record that is not a template 70.
    let mut slot = card(&[(rr(3, 2), vec![0x5A, 0x01, 0x47], 0x9000)]);
    let err = read::read_application_data(&mut slot, &[afl(3, 2, 2, 0)]).unwrap_err();
    assert_eq!(err.step(), Step::ReadRecord { sfi: 3, record: 2 });
    assert!(matches!(err.cause(), Cause::Tlv(_)));
    assert_eq!(err.kind(), FaultKind::Protocol);
}
