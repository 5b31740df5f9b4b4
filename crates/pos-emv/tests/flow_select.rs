//! Application selection and the reselection loop against small made-up cards (scripted in
//! strict order, so the test also checks every command the terminal sends).

use pos_emv::apdu::Command;
use pos_emv::read;
use pos_emv::script_card::{Matching, ScriptedCard};
use pos_emv::select::{self, Candidate, SupportedAid};
use pos_emv::terminal::TerminalData;
use pos_emv::tlv::{Builder, Tag};
use pos_emv::transcript::Transcript;
use pos_emv::{Cause, Step, tags};
use pos_hal::{CardChannel, Fault, FaultKind, VirtualCard};

const VISA: [u8; 7] = [0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10];
const MC: [u8; 7] = [0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10];

struct Slot {
    card: ScriptedCard,
}

impl CardChannel for Slot {
    type Error = FaultKind;
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, FaultKind> {
        self.card.transmit(command).ok_or(FaultKind::CardMute)
    }
}

/// A strict scripted card answering `(command, response data, SW)` in order.
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

fn select(name: &[u8]) -> Command {
    Command::select_by_name(name, true)
}

fn select_next(name: &[u8]) -> Command {
    Command::select_by_name(name, false)
}

fn pse() -> Command {
    select(select::PSE_NAME)
}

fn gpo_empty() -> Command {
    Command::get_processing_options(&[])
}

/// An application FCI: `6F { 84 aid, A5 { 50 label, 87 priority } }`.
fn fci(aid: &[u8], label: &str, priority: Option<u8>) -> Vec<u8> {
    let mut b = Builder::new();
    b.constructed(tags::FCI_TEMPLATE, |f| {
        f.primitive(tags::DF_NAME, aid);
        f.constructed(tags::FCI_PROPRIETARY, |p| {
            p.primitive(tags::APP_LABEL, label.as_bytes());
            if let Some(prio) = priority {
                p.primitive(tags::APP_PRIORITY, &[prio]);
            }
        });
    });
    b.finish()
}

/// The PSE FCI naming directory SFI 1.
fn pse_fci() -> Vec<u8> {
    let mut b = Builder::new();
    b.constructed(tags::FCI_TEMPLATE, |f| {
        f.primitive(tags::DF_NAME, select::PSE_NAME);
        f.constructed(tags::FCI_PROPRIETARY, |p| {
            p.primitive(tags::SFI, &[0x01]);
        });
    });
    b.finish()
}

/// A directory record with one entry per `(aid, label, 87)`.
fn directory_record(entries: &[(&[u8], &str, u8)]) -> Vec<u8> {
    let mut b = Builder::new();
    b.constructed(tags::RECORD_TEMPLATE, |r| {
        for (aid, label, prio) in entries {
            r.constructed(tags::APP_TEMPLATE, |e| {
                e.primitive(tags::ADF_NAME, aid);
                e.primitive(tags::APP_LABEL, label.as_bytes());
                e.primitive(tags::APP_PRIORITY, &[*prio]);
            });
        }
    });
    b.finish()
}

fn read_dir(record: u8) -> Command {
    Command::read_record(1, record).expect("valid record")
}

fn supported() -> Vec<SupportedAid> {
    vec![SupportedAid::new(&VISA, true), SupportedAid::new(&MC, true)]
}

fn never(_: &[Candidate]) -> Option<usize> {
    panic!("the chooser must not be called")
}

#[test]
fn pse_answered_6a81_ends_the_session() {
    let mut slot = card(&[(pse(), vec![], 0x6A81)]);
    let err = select::select_application(&mut slot, &supported(), &mut never).unwrap_err();
    assert_eq!(err.step(), Step::SelectPse);
    assert!(matches!(err.cause(), Cause::CardBlocked));
    assert_eq!(err.kind(), FaultKind::CardUnsupported);
    assert_eq!(slot.card.commands_received(), 1, "nothing after the PSE");
}

#[test]
fn blocked_application_in_the_aid_list_is_skipped() {
    let mut slot = card(&[
        (pse(), vec![], 0x6A82),
        (select(&VISA), fci(&VISA, "VISA", Some(1)), 0x6283),
        (select(&MC), fci(&MC, "MASTERCARD", Some(2)), 0x9000),
    ]);
    let mut list = select::build_candidate_list(&mut slot, &supported()).unwrap();
    assert_eq!(list.method, select::Method::AidList);
    assert_eq!(list.candidates.len(), 1);
    assert_eq!(list.candidates[0].aid, MC);
    // Mastercard is still the card's current application: no second SELECT.
    let app = select::final_selection(&mut slot, &mut list, &mut never).unwrap();
    assert_eq!(app.candidate.label.as_deref(), Some("MASTERCARD"));
    assert_eq!(app.fci, fci(&MC, "MASTERCARD", Some(2)));
    assert!(slot.card.is_finished());
    assert!(slot.card.mismatches().is_empty());
}

#[test]
fn blocked_application_at_final_selection_is_skipped() {
    let mut slot = card(&[
        (pse(), pse_fci(), 0x9000),
        (
            read_dir(1),
            directory_record(&[(&VISA, "VISA", 0x01), (&MC, "MC", 0x02)]),
            0x9000,
        ),
        (read_dir(2), vec![], 0x6A83),
        (select(&VISA), fci(&VISA, "VISA", Some(1)), 0x6283),
        (select(&MC), fci(&MC, "MC", Some(2)), 0x9000),
    ]);
    let mut calls = 0;
    let mut chooser = |c: &[Candidate]| {
        calls += 1;
        assert_eq!(c.len(), 2);
        Some(0)
    };
    let app = select::select_application(&mut slot, &supported(), &mut chooser).unwrap();
    assert_eq!(calls, 1, "Mastercard alone needs no choice");
    assert_eq!(app.candidate.aid, MC);
    assert!(slot.card.is_finished());
    assert!(slot.card.mismatches().is_empty());
}

#[test]
fn gpo_6985_removes_the_application_and_selects_the_next() {
    let mut slot = card(&[
        (pse(), vec![], 0x6A82),
        (select(&VISA), fci(&VISA, "VISA", Some(1)), 0x9000),
        (select(&MC), fci(&MC, "MC", Some(2)), 0x9000),
        // Final selection: Visa (priority 1) is chosen; the card's current one is MC.
        (select(&VISA), fci(&VISA, "VISA", Some(1)), 0x9000),
        (gpo_empty(), vec![], 0x6985),
        (select(&MC), fci(&MC, "MC", Some(2)), 0x9000),
        (
            gpo_empty(),
            vec![0x80, 0x06, 0x58, 0x00, 0x08, 0x01, 0x01, 0x00],
            0x9000,
        ),
    ]);
    let mut seen = Vec::new();
    let mut chooser = |c: &[Candidate]| {
        seen.push(c.iter().map(|c| c.aid.clone()).collect::<Vec<_>>());
        select::first_without_confirmation(c)
    };
    let terminal = TerminalData::new([1, 2, 3, 4]);
    let (app, processing) =
        read::select_and_initiate(&mut slot, &supported(), &terminal, &mut chooser).unwrap();
    assert_eq!(seen, [vec![VISA.to_vec(), MC.to_vec()]]);
    assert_eq!(app.candidate.aid, MC);
    assert_eq!(processing.aip, [0x58, 0x00]);
    assert_eq!(processing.afl.len(), 1);
    assert!(slot.card.is_finished());
    assert!(slot.card.mismatches().is_empty());
}

#[test]
fn gpo_6985_on_the_last_candidate_names_the_refusal() {
    let mut slot = card(&[
        (pse(), vec![], 0x6A82),
        (select(&VISA), vec![], 0x6A82),
        (select(&MC), fci(&MC, "MC", None), 0x9000),
        (gpo_empty(), vec![], 0x6985),
    ]);
    let terminal = TerminalData::new([1, 2, 3, 4]);
    let err =
        read::select_and_initiate(&mut slot, &supported(), &terminal, &mut never).unwrap_err();
    // Not "no supported application": the application was there and refused GPO.
    assert_eq!(err.step(), Step::Gpo);
    match err.cause() {
        Cause::GpoRefused { aids } => assert_eq!(aids, &[MC.to_vec()]),
        other => panic!("{other:?}"),
    }
    assert!(!err.is_reselect());
    assert_eq!(err.kind(), FaultKind::CardUnsupported);
    assert_eq!(
        err.to_string(),
        "GET PROCESSING OPTIONS: application A0000000041010 refused it with 6985 (conditions \
         of use not satisfied) and the card has no other application this terminal supports"
    );
    assert!(slot.card.is_finished());
}

#[test]
fn every_candidate_refusing_gpo_is_named() {
    let mut slot = card(&[
        (pse(), vec![], 0x6A82),
        (select(&VISA), fci(&VISA, "VISA", Some(1)), 0x9000),
        (select(&MC), fci(&MC, "MC", Some(2)), 0x9000),
        (select(&VISA), fci(&VISA, "VISA", Some(1)), 0x9000),
        (gpo_empty(), vec![], 0x6985),
        (select(&MC), fci(&MC, "MC", Some(2)), 0x9000),
        (gpo_empty(), vec![], 0x6985),
    ]);
    let terminal = TerminalData::new([1, 2, 3, 4]);
    let mut chooser = |c: &[Candidate]| select::first_without_confirmation(c);
    let err =
        read::select_and_initiate(&mut slot, &supported(), &terminal, &mut chooser).unwrap_err();
    assert_eq!(err.step(), Step::Gpo);
    match err.cause() {
        Cause::GpoRefused { aids } => assert_eq!(aids, &[VISA.to_vec(), MC.to_vec()]),
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("applications A0000000031010, A0000000041010 each refused it with 6985"),
        "{text}"
    );
    assert!(!text.contains("no supported application"), "{text}");
    assert!(slot.card.is_finished());
    assert!(slot.card.mismatches().is_empty());
}

#[test]
fn partial_name_selection_selects_next_until_the_card_has_no_more() {
    let visa1 = [&VISA[..], &[0x01]].concat();
    let visa2 = [&VISA[..], &[0x02]].concat();
    let mut slot = card(&[
        (pse(), vec![], 0x6A82),
        (select(&VISA), fci(&visa1, "VISA ONE", Some(2)), 0x9000),
        (select_next(&VISA), fci(&visa2, "VISA TWO", Some(1)), 0x9000),
        (select_next(&VISA), vec![], 0x6A82),
        (select(&MC), vec![], 0x6A82),
    ]);
    let mut list = select::build_candidate_list(&mut slot, &supported()).unwrap();
    let aids: Vec<_> = list.candidates.iter().map(|c| c.aid.clone()).collect();
    assert_eq!(aids, [visa2.clone(), visa1], "priority 1 first");
    let mut chooser = |_: &[Candidate]| Some(0);
    let app = select::final_selection(&mut slot, &mut list, &mut chooser).unwrap();
    // VISA TWO was the last one the card selected: no second SELECT.
    assert_eq!(app.candidate.aid, visa2);
    assert!(slot.card.is_finished());
    assert!(slot.card.mismatches().is_empty());
}

#[test]
fn longer_name_without_partial_selection_is_not_a_candidate() {
    let visa1 = [&VISA[..], &[0x01]].concat();
    let mut slot = card(&[
        (pse(), vec![], 0x6A82),
        (select(&VISA), fci(&visa1, "VISA ONE", None), 0x9000),
        (select_next(&VISA), vec![], 0x6A82),
    ]);
    let supported = [SupportedAid::new(&VISA, false)];
    let err = select::select_application(&mut slot, &supported, &mut never).unwrap_err();
    assert!(matches!(err.cause(), Cause::NoApplication));
    assert!(slot.card.is_finished());
}

#[test]
fn confirmation_required_goes_to_the_chooser_even_alone() {
    let script = [
        (pse(), pse_fci(), 0x9000),
        (read_dir(1), directory_record(&[(&MC, "MC", 0x81)]), 0x9000),
        (read_dir(2), vec![], 0x6A83),
        (select(&MC), fci(&MC, "MC", Some(0x81)), 0x9000),
    ];
    let mut slot = card(&script);
    let mut seen = Vec::new();
    let mut decline = |c: &[Candidate]| {
        seen.extend_from_slice(c);
        None
    };
    let err = select::select_application(&mut slot, &supported(), &mut decline).unwrap_err();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].confirmation_required);
    assert_eq!(seen[0].priority, Some(1));
    assert!(matches!(err.cause(), Cause::NotChosen));
    assert_eq!(err.step(), Step::SelectApplication);

    let mut slot = card(&script);
    let app = select::select_application(&mut slot, &supported(), &mut |_| Some(0)).unwrap();
    assert_eq!(app.candidate.aid, MC);
    // Nothing confirmable without a cardholder: the no-choice policy declines.
    assert_eq!(select::first_without_confirmation(&seen), None);
}

#[test]
fn pse_without_supported_applications_falls_back_to_the_aid_list() {
    let other = [0xA0, 0x00, 0x00, 0x09, 0x99, 0x10, 0x10];
    let mut slot = card(&[
        (pse(), pse_fci(), 0x9000),
        (
            read_dir(1),
            directory_record(&[(&other, "OTHER", 0x01)]),
            0x9000,
        ),
        (read_dir(2), vec![], 0x6A83),
        (select(&VISA), vec![], 0x6A82),
        (select(&MC), fci(&MC, "MC", None), 0x9000),
    ]);
    let app = select::select_application(&mut slot, &supported(), &mut never).unwrap();
    assert_eq!(app.candidate.aid, MC);
    assert!(slot.card.is_finished());
}

#[test]
fn candidates_from_directory_and_ordering_are_pure() {
    let records = vec![
        directory_record(&[(&MC, "MC", 0x00), (&VISA, "VISA", 0x03)]),
        directory_record(&[(
            &[0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10, 0x77],
            "MC2",
            0x81,
        )]),
    ];
    let mut c = select::candidates_from_directory(&records, &supported()).unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!(c[0].priority, None, "87 = 00 is no priority");
    select::order_candidates(&mut c);
    let labels: Vec<_> = c.iter().map(|c| c.display_name()).collect();
    assert_eq!(labels, ["MC2", "VISA", "MC"]);
    assert!(c[0].confirmation_required);

    // A record that is not a template 70 is an error.
    let bad = vec![vec![0x61, 0x00]];
    assert!(select::candidates_from_directory(&bad, &supported()).is_err());
    // An entry with a DDF name only is skipped.
    let mut b = Builder::new();
    b.constructed(tags::RECORD_TEMPLATE, |r| {
        r.constructed(tags::APP_TEMPLATE, |e| {
            e.primitive(Tag::new(0x9D), b"DDF.NAME");
        });
    });
    assert!(
        select::candidates_from_directory(&[b.finish()], &supported())
            .unwrap()
            .is_empty()
    );
}
