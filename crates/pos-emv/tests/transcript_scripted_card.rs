//! The scripted virtual card (feature `sim`) replaying the shared EMV transcripts, alone and
//! through `exchange`, with card faults.
//!
//! The `.apdu` files come from the test cases of binaryfoo/emv-bertlv (MIT licence).

use pos_emv::apdu::{self, Command, ExchangeError};
use pos_emv::script_card::{ATR_T0, MISMATCH_SW, Matching, ScriptedCard, atr_t1};
use pos_emv::transcript::Transcript;
use pos_hal::{CardChannel, FaultKind, VirtualCard};

const MASTERCARD: &str = include_str!("data/contact-mastercard.apdu");
const UPI: &str = include_str!("data/contact-upi.apdu");

fn transcript(text: &str) -> Transcript {
    Transcript::parse(text).expect("shared transcript parses")
}

/// A virtual card as a card channel, as a simulated reader would present it: `None` from
/// the card is a mute card; `remove_at` pulls the card at that transmit (1 = the first).
struct CardSlot<V> {
    card: V,
    transmits: usize,
    remove_at: Option<usize>,
}

impl<V: VirtualCard> CardSlot<V> {
    fn new(mut card: V) -> Self {
        assert!(card.power_on().is_some());
        CardSlot {
            card,
            transmits: 0,
            remove_at: None,
        }
    }
}

impl<V: VirtualCard> CardChannel for CardSlot<V> {
    type Error = FaultKind;
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, FaultKind> {
        self.transmits += 1;
        if self.remove_at.is_some_and(|n| self.transmits >= n) {
            return Err(FaultKind::CardRemoved);
        }
        self.card.transmit(command).ok_or(FaultKind::CardMute)
    }
}

#[test]
fn strict_replay_of_both_transcripts_answers_every_command_as_recorded() {
    for text in [MASTERCARD, UPI] {
        let t = transcript(text);
        let mut card = ScriptedCard::new(t.clone(), Matching::Strict);
        assert_eq!(card.power_on(), Some(ATR_T0.to_vec()));
        for e in &t.exchanges {
            assert_eq!(card.transmit(&e.command), Some(e.response.clone()));
        }
        assert!(card.mismatches().is_empty());
        assert!(card.is_finished());
        assert_eq!(card.commands_answered(), t.len());
        // Past the end: a mismatch, 6985.
        assert_eq!(
            card.transmit(&t.exchanges[0].command),
            Some(MISMATCH_SW.to_vec())
        );
        assert_eq!(card.mismatches().len(), 1);
        assert_eq!(card.mismatches()[0].expected, None);
    }
}

#[test]
fn strict_replay_through_exchange() {
    let t = transcript(UPI);
    let mut slot = CardSlot::new(ScriptedCard::new(t.clone(), Matching::Strict));
    for e in &t.exchanges {
        let cmd = Command::parse(&e.command).unwrap();
        let r = apdu::exchange(&mut slot, &cmd).unwrap();
        assert_eq!(r.to_bytes(), e.response);
    }
    assert!(slot.card.mismatches().is_empty());
}

#[test]
fn strict_refuses_out_of_order_and_changed_commands() {
    let t = transcript(MASTERCARD);
    let mut card = ScriptedCard::new(t.clone(), Matching::Strict);
    card.power_on();
    // GPO before SELECT.
    assert_eq!(
        card.transmit(&t.exchanges[1].command),
        Some(vec![0x69, 0x85])
    );
    let m = &card.mismatches()[0];
    assert_eq!(m.index, 1);
    assert_eq!(m.received, t.exchanges[1].command);
    assert_eq!(m.expected.as_ref(), Some(&t.exchanges[0].command));
    // The position did not move: SELECT still works.
    assert_eq!(
        card.transmit(&t.exchanges[0].command),
        Some(t.exchanges[0].response.clone())
    );
    // GENERATE AC with other data is a mismatch in strict mode.
    for e in &t.exchanges[1..7] {
        assert_eq!(card.transmit(&e.command), Some(e.response.clone()));
    }
    let mut gac = t.exchanges[7].command.clone();
    gac[10] ^= 0xFF;
    assert_eq!(card.transmit(&gac), Some(MISMATCH_SW.to_vec()));
    assert_eq!(card.mismatches().len(), 2);
}

#[test]
fn lenient_generate_ac_and_internal_authenticate_match_on_the_header() {
    let t = transcript(UPI);
    let mut card = ScriptedCard::new(t.clone(), Matching::Lenient);
    card.power_on();
    for e in &t.exchanges {
        let mut cmd = e.command.clone();
        if matches!(cmd[1], 0xAE | 0x88) {
            // Other amount, date, unpredictable number: same length or not.
            let last = cmd.len() - 2;
            cmd[last] ^= 0x5A;
            cmd[5] ^= 0x01;
        }
        assert_eq!(card.transmit(&cmd), Some(e.response.clone()));
    }
    assert!(card.mismatches().is_empty());
    assert!(card.is_finished());

    // A GENERATE AC with a different P1 (AAC instead of ARQC) does not match.
    card.power_on();
    let mut aac = t.exchanges[19].command.clone();
    assert_eq!(aac[1], 0xAE);
    aac[2] = 0x00;
    assert_eq!(card.transmit(&aac), Some(MISMATCH_SW.to_vec()));
    // Lenient does not loosen other commands.
    let mut select = t.exchanges[0].command.clone();
    select[6] ^= 1;
    assert_eq!(card.transmit(&select), Some(MISMATCH_SW.to_vec()));
    assert_eq!(card.mismatches().len(), 2);
}

#[test]
fn lenient_answers_records_read_in_another_order() {
    let t = transcript(MASTERCARD);
    let mut card = ScriptedCard::new(t.clone(), Matching::Lenient);
    card.power_on();
    // SELECT, GPO, then the five records backwards.
    let order = [0usize, 1, 6, 5, 4, 3, 2, 7, 8];
    for i in order {
        let e = &t.exchanges[i];
        assert_eq!(
            card.transmit(&e.command),
            Some(e.response.clone()),
            "exchange {i}"
        );
    }
    assert!(card.mismatches().is_empty());
    assert!(card.is_finished());
}

#[test]
fn a_command_recorded_twice_is_answered_in_recorded_order() {
    // UPI reads 00B2010C00 twice: the PSE directory record, then the application's record.
    let t = transcript(UPI);
    let twice: Vec<usize> = t
        .exchanges
        .iter()
        .enumerate()
        .filter(|(_, e)| e.command == [0x00, 0xB2, 0x01, 0x0C, 0x00])
        .map(|(i, _)| i)
        .collect();
    assert_eq!(twice, vec![1, 7]);
    let mut card = ScriptedCard::new(t.clone(), Matching::Lenient);
    card.power_on();
    let cmd = &t.exchanges[1].command;
    assert_eq!(card.transmit(cmd), Some(t.exchanges[1].response.clone()));
    assert_eq!(card.transmit(cmd), Some(t.exchanges[7].response.clone()));
    assert_eq!(card.transmit(cmd), Some(MISMATCH_SW.to_vec()));
}

#[test]
fn t0_form_of_a_case_4_command_matches() {
    // Behind a T=0 reader the card gets a case 4 command without its Le.
    let t = transcript(MASTERCARD);
    for mode in [Matching::Strict, Matching::Lenient] {
        let mut card = ScriptedCard::new(t.clone(), mode);
        card.power_on();
        let select = &t.exchanges[0].command;
        assert_eq!(
            card.transmit(&select[..select.len() - 1]),
            Some(t.exchanges[0].response.clone())
        );
        // ...but not with a byte of the data missing.
        let gpo = &t.exchanges[1].command;
        assert_eq!(
            card.transmit(&gpo[..gpo.len() - 2]),
            Some(MISMATCH_SW.to_vec())
        );
    }
}

#[test]
fn power_on_restarts_the_script() {
    let t = transcript(MASTERCARD);
    let mut card = ScriptedCard::new_t1(t.clone(), Matching::Strict);
    let atr = card.power_on().unwrap();
    assert_eq!(atr, atr_t1());
    assert_eq!(atr[..8], [0x3B, 0xE3, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x45]);
    assert_eq!(atr.iter().skip(1).fold(0u8, |a, b| a ^ b), 0, "TCK");
    for e in &t.exchanges[..3] {
        assert_eq!(card.transmit(&e.command), Some(e.response.clone()));
    }
    assert_eq!(card.remaining(), 6);
    card.power_on();
    assert_eq!(card.commands_received(), 0);
    assert_eq!(card.remaining(), 9);
    assert_eq!(
        card.transmit(&t.exchanges[0].command),
        Some(t.exchanges[0].response.clone())
    );
    let custom = ScriptedCard::new(t, Matching::Strict).with_atr(vec![0x3B, 0x00]);
    assert_eq!(custom.clone().power_on(), Some(vec![0x3B, 0x00]));
}

#[test]
fn mute_card_is_typed_card_mute() {
    let t = transcript(MASTERCARD);
    // Mute from the 3rd command on.
    let mut slot = CardSlot::new(ScriptedCard::new(t.clone(), Matching::Strict).mute_at(3));
    for (i, e) in t.exchanges.iter().enumerate().take(4) {
        let cmd = Command::parse(&e.command).unwrap();
        let r = apdu::exchange(&mut slot, &cmd);
        if i < 2 {
            assert_eq!(r.unwrap().to_bytes(), e.response);
        } else {
            let e = r.unwrap_err();
            assert!(matches!(e, ExchangeError::Channel(FaultKind::CardMute)));
            assert_eq!(e.kind(), FaultKind::CardMute);
        }
    }
    // No ATR at all.
    let mut silent = ScriptedCard::new(t, Matching::Strict).mute_on_reset();
    assert_eq!(silent.power_on(), None);
}

#[test]
fn card_removed_at_each_step_is_typed_card_removed() {
    let t = transcript(MASTERCARD);
    for step in 1..=t.len() {
        let mut slot = CardSlot::new(ScriptedCard::new(t.clone(), Matching::Strict));
        slot.remove_at = Some(step);
        let mut failed_at = None;
        for (i, e) in t.exchanges.iter().enumerate() {
            let cmd = Command::parse(&e.command).unwrap();
            match apdu::exchange(&mut slot, &cmd) {
                Ok(r) => assert_eq!(r.to_bytes(), e.response),
                Err(err) => {
                    assert_eq!(err.kind(), FaultKind::CardRemoved);
                    assert!(matches!(
                        err,
                        ExchangeError::Channel(FaultKind::CardRemoved)
                    ));
                    failed_at = Some(i + 1);
                    break;
                }
            }
        }
        assert_eq!(failed_at, Some(step));
    }
}

#[test]
fn wrong_status_words_reach_the_caller() {
    let t = transcript(MASTERCARD);
    // SELECT answered 6A81 (card blocked), GPO 6985, READ RECORD 6A83.
    let card = ScriptedCard::new(t.clone(), Matching::Strict)
        .sw_override(1, 0x6A81)
        .sw_override(2, 0x6985)
        .sw_override(3, 0x6A83);
    let mut slot = CardSlot::new(card);
    for (e, sw) in t.exchanges.iter().zip([0x6A81u16, 0x6985, 0x6A83, 0x9000]) {
        let cmd = Command::parse(&e.command).unwrap();
        let r = apdu::exchange(&mut slot, &cmd).unwrap();
        assert_eq!(r.sw(), sw);
        if sw != 0x9000 {
            assert!(r.data.is_empty());
        } else {
            // The overridden commands still consumed their exchanges.
            assert_eq!(r.to_bytes(), e.response);
        }
    }

    // A case 4 command answered with a bare warning: exchange asks GET RESPONSE, which the
    // script does not have (6985), and returns the warning.
    let card = ScriptedCard::new(t.clone(), Matching::Strict).sw_override(1, 0x6283);
    let mut slot = CardSlot::new(card);
    let r = apdu::exchange(&mut slot, &Command::parse(&t.exchanges[0].command).unwrap()).unwrap();
    assert_eq!(r.sw(), 0x6283);
    assert!(r.data.is_empty());
    assert_eq!(slot.card.mismatches().len(), 1);
    assert_eq!(
        slot.card.mismatches()[0].received,
        vec![0x00, 0xC0, 0x00, 0x00, 0x00]
    );
}

#[test]
fn load_from_a_file() {
    let dir = std::env::temp_dir().join(format!("pos-emv-script-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("upi.apdu");
    std::fs::write(&path, UPI).unwrap();
    let card = ScriptedCard::load(&path, Matching::Lenient).unwrap();
    assert_eq!(card.transcript().len(), 22);
    assert_eq!(card.matching(), Matching::Lenient);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(ScriptedCard::load(dir.join("nope.apdu"), Matching::Strict).is_err());
}
