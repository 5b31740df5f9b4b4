//! Terminal action analysis (EMV Book 3 10.7) and the GENERATE AC reference control, with
//! the IACs of the transcripts' test cards and the P1 of their GENERATE AC commands.

use pos_emv::action::{self, ActionCodes, Decision};
use pos_emv::read::CardData;
use pos_emv::tags;
use pos_emv::transcript::Transcript;
use pos_emv::tvr::Tvr;

const MASTERCARD: &str = include_str!("data/contact-mastercard.apdu");
const UPI: &str = include_str!("data/contact-upi.apdu");

fn card_from(text: &str) -> CardData {
    let t = Transcript::parse(text).expect("transcript");
    t.record_data().expect("record TLV")
}

/// P1 of every GENERATE AC (`80 AE`) in the transcript.
fn gac_p1s(text: &str) -> Vec<u8> {
    Transcript::parse(text)
        .expect("transcript")
        .exchanges
        .iter()
        .filter(|e| e.header().get(..2) == Some(&[0x80, 0xAE][..]))
        .map(|e| e.header()[2])
        .collect()
}

const TAC: ActionCodes = ActionCodes {
    denial: [0x00, 0x10, 0x00, 0x00, 0x00],
    online: [0x00, 0x00, 0x00, 0x80, 0x00],
    default: [0x00, 0x00, 0x00, 0x80, 0x00],
};

#[test]
fn iacs_from_cards_and_absent_defaults() {
    let mc = ActionCodes::from_card(&card_from(MASTERCARD));
    assert_eq!(mc, ActionCodes::ZERO);
    let upi = ActionCodes::from_card(&card_from(UPI));
    assert_eq!(upi.denial, [0x00, 0x10, 0x00, 0x00, 0x00]);
    assert_eq!(upi.online, [0xD8, 0x68, 0x9C, 0xF8, 0x00]);
    assert_eq!(upi.default, [0xD8, 0x60, 0x9C, 0xA8, 0x00]);
    let absent = ActionCodes::from_card(&CardData::default());
    assert_eq!(absent.denial, [0x00; 5]);
    assert_eq!(absent.online, [0xFF; 5]);
    assert_eq!(absent.default, [0xFF; 5]);
    // A code of the wrong length counts as absent.
    let mut card = CardData::default();
    card.tags.insert(tags::IAC_DENIAL, vec![0xFF; 4]);
    assert_eq!(ActionCodes::from_card(&card).denial, [0x00; 5]);
}

#[test]
fn denial_wins_over_everything() {
    let upi = ActionCodes::from_card(&card_from(UPI));
    // Service not allowed (B2 b5) is in the UPI IAC-denial.
    let tvr = Tvr::SERVICE_NOT_ALLOWED;
    assert_eq!(tvr.to_bytes(), [0x00, 0x10, 0x00, 0x00, 0x00]);
    for online in [true, false] {
        assert_eq!(
            action::terminal_action_analysis(tvr, ActionCodes::ZERO, upi, online),
            Decision::Decline
        );
        assert_eq!(
            action::terminal_action_analysis(tvr, TAC, ActionCodes::ZERO, online),
            Decision::Decline
        );
    }
}

#[test]
fn online_capable_terminal() {
    let upi = ActionCodes::from_card(&card_from(UPI));
    // ODA not performed (B1 b8) is in the UPI IAC-online.
    let tvr = Tvr::ODA_NOT_PERFORMED;
    assert_eq!(
        action::terminal_action_analysis(tvr, ActionCodes::ZERO, upi, true),
        Decision::Online
    );
    // Floor limit exceeded matches the TAC-online.
    let mc = ActionCodes::from_card(&card_from(MASTERCARD));
    let tvr = Tvr::FLOOR_LIMIT_EXCEEDED;
    assert_eq!(tvr.to_bytes(), [0, 0, 0, 0x80, 0]);
    assert_eq!(
        action::terminal_action_analysis(tvr, TAC, mc, true),
        Decision::Online
    );
    // Nothing matches: approve offline.
    assert_eq!(
        action::terminal_action_analysis(Tvr::empty(), TAC, upi, true),
        Decision::Approve
    );
    assert_eq!(
        action::terminal_action_analysis(Tvr::NEW_CARD, TAC, mc, true),
        Decision::Approve
    );
}

#[test]
fn offline_only_terminal_falls_to_default() {
    let upi = ActionCodes::from_card(&card_from(UPI));
    // ODA not performed is in the UPI IAC-default too.
    assert_eq!(
        action::terminal_action_analysis(Tvr::ODA_NOT_PERFORMED, ActionCodes::ZERO, upi, false),
        Decision::Decline
    );
    // New card (B2 b4) is in IAC-online (68) but not IAC-default (60).
    assert_eq!(
        action::terminal_action_analysis(Tvr::NEW_CARD, ActionCodes::ZERO, upi, true),
        Decision::Online
    );
    assert_eq!(
        action::terminal_action_analysis(Tvr::NEW_CARD, ActionCodes::ZERO, upi, false),
        Decision::Approve
    );
    // TAC-default.
    assert_eq!(
        action::terminal_action_analysis(Tvr::FLOOR_LIMIT_EXCEEDED, TAC, ActionCodes::ZERO, false),
        Decision::Decline
    );
}

#[test]
fn absent_iacs() {
    let absent = ActionCodes::from_card(&CardData::default());
    // Any TVR bit goes online (IAC-online all ones), or declines offline (IAC-default).
    let tvr = Tvr::DEFAULT_TDOL_USED;
    assert_eq!(
        action::terminal_action_analysis(tvr, ActionCodes::ZERO, absent, true),
        Decision::Online
    );
    assert_eq!(
        action::terminal_action_analysis(tvr, ActionCodes::ZERO, absent, false),
        Decision::Decline
    );
    // All-zero TVR: approve, online capable or not (IAC-denial all zeros).
    assert_eq!(
        action::terminal_action_analysis(Tvr::empty(), ActionCodes::ZERO, absent, true),
        Decision::Approve
    );
    assert_eq!(
        action::terminal_action_analysis(Tvr::empty(), ActionCodes::ZERO, absent, false),
        Decision::Approve
    );
}

#[test]
fn reference_control_bytes() {
    assert_eq!(action::reference_control(Decision::Decline, false), 0x00);
    assert_eq!(action::reference_control(Decision::Online, false), 0x80);
    assert_eq!(action::reference_control(Decision::Approve, false), 0x40);
    assert_eq!(action::reference_control(Decision::Online, true), 0x90);
    assert_eq!(action::reference_control(Decision::Approve, true), 0x50);
    assert_eq!(action::reference_control(Decision::Decline, true), 0x00);
    // The transcripts: first GENERATE AC asks for an ARQC, the second for a TC.
    for text in [MASTERCARD, UPI] {
        let p1s = gac_p1s(text);
        assert_eq!(p1s.len(), 2);
        assert_eq!(p1s[0], action::reference_control(Decision::Online, false));
        assert_eq!(p1s[1], action::reference_control(Decision::Approve, false));
    }
}
