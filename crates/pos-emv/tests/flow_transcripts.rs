//! The first steps of the transaction flow (selection, GET PROCESSING OPTIONS, READ RECORD)
//! against the shared transcripts of real cards, replayed in strict order.
//!
//! The `.apdu` files come from the test cases of binaryfoo/emv-bertlv (MIT licence).

use pos_emv::read::{self, AflEntry};
use pos_emv::script_card::{Matching, ScriptedCard};
use pos_emv::select::{self, Candidate};
use pos_emv::terminal::TerminalData;
use pos_emv::transcript::Transcript;
use pos_emv::{apdu::ins, tags};
use pos_hal::{CardChannel, FaultKind, VirtualCard};

const MASTERCARD: &str = include_str!("data/contact-mastercard.apdu");
const UPI: &str = include_str!("data/contact-upi.apdu");

/// A virtual card as a card channel: `None` from the card is a mute card.
struct Slot {
    card: ScriptedCard,
}

impl Slot {
    fn new(text: &str) -> Self {
        let t = Transcript::parse(text).expect("shared transcript parses");
        let mut card = ScriptedCard::new(t, Matching::Strict);
        assert!(card.power_on().is_some());
        Slot { card }
    }
}

impl CardChannel for Slot {
    type Error = FaultKind;
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, FaultKind> {
        self.card.transmit(command).ok_or(FaultKind::CardMute)
    }
}

fn terminal() -> TerminalData {
    TerminalData::new([0x11, 0x22, 0x33, 0x44])
}

#[test]
fn mastercard_without_pse_is_selected_from_the_aid_list_and_read() {
    let mut slot = Slot::new(MASTERCARD);
    let mut chooser_calls = 0;
    let mut chooser = |_: &[Candidate]| {
        chooser_calls += 1;
        Some(0)
    };
    let (app, processing) = read::select_and_initiate(
        &mut slot,
        &select::default_supported_aids(),
        &terminal(),
        &mut chooser,
    )
    .expect("selection and GPO");
    assert_eq!(chooser_calls, 0, "one candidate needing no confirmation");
    assert_eq!(
        app.candidate.aid,
        [0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10]
    );
    assert_eq!(app.candidate.label.as_deref(), Some("PPC MCD 04  v20"));
    assert_eq!(app.candidate.priority, None);
    assert_eq!(app.pdol, None);
    assert_eq!(app.fci.first(), Some(&0x6F));

    // Format 2: 82 5900, 94 with four entries.
    assert_eq!(processing.aip, [0x59, 0x00]);
    assert_eq!(
        processing.afl,
        [
            AflEntry {
                sfi: 2,
                first: 2,
                last: 2,
                oda_records: 1
            },
            AflEntry {
                sfi: 3,
                first: 1,
                last: 1,
                oda_records: 0
            },
            AflEntry {
                sfi: 4,
                first: 1,
                last: 1,
                oda_records: 0
            },
            AflEntry {
                sfi: 5,
                first: 1,
                last: 2,
                oda_records: 0
            },
        ]
    );

    let data = read::read_application_data(&mut slot, &processing.afl).expect("records");
    assert_eq!(data.records.len(), 5);
    assert_eq!(data.pan_masked().as_deref(), Some("541333******0044"));
    assert_eq!(data.expiry().as_deref(), Some("141231"));
    assert_eq!(data.cdol1().map(|c| c.len()), Some(0x21));
    assert_eq!(data.cdol1().map(|c| &c[..3]), Some(&[0x9F, 0x02, 0x06][..]));
    assert_eq!(data.cdol2().map(|c| c.len()), Some(0x0C));
    assert!(data.get(tags::TRACK2_EQUIVALENT).is_some());
    // ODA: the value of SFI 2 record 2's template 70 (81 8F: 3 header bytes).
    let first = &data.records[0];
    assert_eq!(&first[..3], &[0x70, 0x81, 0x8F]);
    assert_eq!(data.oda_input, first[3..]);

    // The card has no PSE and not the other AIDs: only SELECTs went unanswered, and only the
    // two GENERATE ACs are left.
    let mismatches = slot.card.mismatches();
    assert!(!mismatches.is_empty());
    assert!(mismatches.iter().all(|m| m.received[1] == ins::SELECT));
    assert_eq!(slot.card.remaining(), 2);

    // Debug never shows the PAN.
    let debug = format!("{data:?}");
    assert!(debug.contains("541333******0044"));
    assert!(!debug.contains("5413330089600044"));
}

#[test]
fn unionpay_pse_directory_priorities_chooser_and_records() {
    let mut slot = Slot::new(UPI);
    let mut seen: Vec<Vec<Candidate>> = Vec::new();
    let mut chooser = |c: &[Candidate]| {
        seen.push(c.to_vec());
        Some(0)
    };
    let (app, processing) = read::select_and_initiate(
        &mut slot,
        &select::default_supported_aids(),
        &terminal(),
        &mut chooser,
    )
    .expect("selection and GPO");
    assert_eq!(seen.len(), 1);
    let list = &seen[0];
    let aids: Vec<u8> = list.iter().map(|c| c.aid[7]).collect();
    assert_eq!(aids, [0x02, 0x01, 0x03], "ordered by priority");
    assert_eq!(
        list.iter().map(|c| c.priority).collect::<Vec<_>>(),
        [Some(1), Some(2), Some(3)]
    );
    assert_eq!(
        list.iter()
            .map(|c| c.label.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["UICC CREDIT", "UICC DEBIT", "UICC QUASICREDIT"]
    );
    assert!(list.iter().all(|c| !c.confirmation_required));

    assert_eq!(
        app.candidate.aid,
        [0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x02]
    );
    assert_eq!(app.pdol, None);
    assert_eq!(processing.aip, [0x7C, 0x00]);
    assert_eq!(processing.afl.len(), 3);

    let data = read::read_application_data(&mut slot, &processing.afl).expect("records");
    assert_eq!(data.records.len(), 9);
    assert_eq!(data.pan_masked().as_deref(), Some("621094******0011"));
    assert_eq!(data.expiry().as_deref(), Some("301031"));
    assert!(data.cdol1().is_some() && data.cdol2().is_some());
    // SFI 2 record 1 is the only ODA record (81 88: 3 header bytes).
    let sfi2_rec1 = &data.records[3];
    assert_eq!(&sfi2_rec1[..3], &[0x70, 0x81, 0x88]);
    assert_eq!(data.oda_input, sfi2_rec1[3..]);

    assert!(
        slot.card.mismatches().is_empty(),
        "{:?}",
        slot.card.mismatches()
    );
    assert_eq!(slot.card.remaining(), 22 - 16);
}

#[test]
fn unionpay_candidate_the_card_does_not_select_is_dropped_and_the_choice_made_again() {
    let mut slot = Slot::new(UPI);
    let mut seen: Vec<usize> = Vec::new();
    // First the debit application (not in the transcript: the scripted card answers 6985),
    // then the first of what is left.
    let mut chooser = |c: &[Candidate]| {
        seen.push(c.len());
        Some(if seen.len() == 1 { 1 } else { 0 })
    };
    let app =
        select::select_application(&mut slot, &select::default_supported_aids(), &mut chooser)
            .expect("selection");
    assert_eq!(seen, [3, 2]);
    assert_eq!(app.candidate.label.as_deref(), Some("UICC CREDIT"));
    assert_eq!(slot.card.mismatches().len(), 1);
}
