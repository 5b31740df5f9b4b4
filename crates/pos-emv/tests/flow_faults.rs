//! A card pulled (or going mute) at every command of the flow: the error keeps the
//! channel's fault kind and names the step.

use pos_emv::read;
use pos_emv::script_card::{Matching, ScriptedCard};
use pos_emv::select::{self, Candidate};
use pos_emv::terminal::TerminalData;
use pos_emv::transcript::Transcript;
use pos_emv::{EmvError, Step};
use pos_hal::{CardChannel, Fault, FaultKind, VirtualCard};

const MASTERCARD: &str = include_str!("data/contact-mastercard.apdu");
const UPI: &str = include_str!("data/contact-upi.apdu");

/// A scripted card in a slot; the card is pulled at transmit `remove_at` (1 = the first).
struct Slot {
    card: ScriptedCard,
    transmits: usize,
    remove_at: Option<usize>,
}

impl Slot {
    fn new(card: ScriptedCard, remove_at: Option<usize>) -> Self {
        let mut card = card;
        assert!(card.power_on().is_some());
        Slot {
            card,
            transmits: 0,
            remove_at,
        }
    }
}

impl CardChannel for Slot {
    type Error = FaultKind;
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, FaultKind> {
        self.transmits += 1;
        if self.remove_at.is_some_and(|n| self.transmits >= n) {
            return Err(FaultKind::CardRemoved);
        }
        self.card.transmit(command).ok_or(FaultKind::CardMute)
    }
}

fn scripted(text: &str) -> ScriptedCard {
    ScriptedCard::new(
        Transcript::parse(text).expect("transcript"),
        Matching::Strict,
    )
}

/// Selection, GPO and records; the error if any step fails.
fn flow(slot: &mut Slot) -> Result<(), EmvError> {
    let terminal = TerminalData::new([9, 8, 7, 6]);
    let mut chooser = |c: &[Candidate]| select::first_without_confirmation(c);
    let (_, processing) = read::select_and_initiate(
        slot,
        &select::default_supported_aids(),
        &terminal,
        &mut chooser,
    )?;
    read::read_application_data(slot, &processing.afl)?;
    Ok(())
}

#[test]
fn card_removed_at_every_command_of_the_unionpay_flow_names_the_step() {
    let mut expected = vec![Step::SelectPse];
    expected.extend((1..=4).map(|record| Step::ReadDirectory { sfi: 1, record }));
    expected.push(Step::SelectApplication);
    expected.push(Step::Gpo);
    expected.extend((1..=3).map(|record| Step::ReadRecord { sfi: 1, record }));
    expected.extend((1..=5).map(|record| Step::ReadRecord { sfi: 2, record }));
    expected.push(Step::ReadRecord { sfi: 4, record: 1 });

    // Without removal the flow uses exactly these commands.
    let mut slot = Slot::new(scripted(UPI), None);
    flow(&mut slot).expect("complete flow");
    assert_eq!(slot.transmits, expected.len());

    for (i, step) in expected.iter().enumerate() {
        let mut slot = Slot::new(scripted(UPI), Some(i + 1));
        let err = flow(&mut slot).expect_err("card removed");
        assert_eq!(
            err.kind(),
            FaultKind::CardRemoved,
            "command {}: {err}",
            i + 1
        );
        assert_eq!(err.step(), *step, "command {}", i + 1);
        assert_eq!(slot.transmits, i + 1, "nothing sent after the removal");
    }
}

#[test]
fn card_removed_during_the_list_of_aids_names_the_step() {
    // Mastercard: 1 PSE, 2-12 the eleven default AIDs (the 5th is Mastercard), 13 GPO,
    // 14-18 the records.
    let cases = [
        (2, Step::ListApplications),
        (6, Step::ListApplications),
        (13, Step::Gpo),
        (14, Step::ReadRecord { sfi: 2, record: 2 }),
        (18, Step::ReadRecord { sfi: 5, record: 2 }),
    ];
    let mut slot = Slot::new(scripted(MASTERCARD), None);
    flow(&mut slot).expect("complete flow");
    assert_eq!(slot.transmits, 18);
    for (n, step) in cases {
        let mut slot = Slot::new(scripted(MASTERCARD), Some(n));
        let err = flow(&mut slot).expect_err("card removed");
        assert_eq!(err.kind(), FaultKind::CardRemoved);
        assert_eq!(err.step(), step, "command {n}");
    }
}

#[test]
fn mute_card_keeps_its_kind() {
    let mut slot = Slot::new(scripted(UPI).mute_at(7), None);
    let err = flow(&mut slot).expect_err("mute card");
    assert_eq!(err.kind(), FaultKind::CardMute);
    assert_eq!(err.step(), Step::Gpo);
    // The channel error is the source.
    let source = std::error::Error::source(&err).expect("source");
    assert!(source.to_string().contains("card_mute"), "{source}");
}

#[test]
fn disconnected_reader_keeps_its_kind() {
    struct Gone;
    impl CardChannel for Gone {
        type Error = FaultKind;
        fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, FaultKind> {
            Err(FaultKind::Disconnected)
        }
    }
    let err = select::select_application(&mut Gone, &select::default_supported_aids(), &mut |_| {
        Some(0)
    })
    .unwrap_err();
    assert_eq!(err.kind(), FaultKind::Disconnected);
    assert_eq!(err.step(), Step::SelectPse);
}
