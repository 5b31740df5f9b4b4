//! Honest terminal data: the Terminal Capabilities `9F33` a transaction sends are what the
//! lane has ([`Capabilities`]), and cardholder verification offers only those methods. The
//! Visa profile card's CVM list is `42 03` (online PIN if the terminal supports it, else the
//! next rule), `1E 03` (signature if supported), `1F 00` (no CVM required); its CDOL1 carries
//! the TVR, so the card sees what the terminal concluded.
#![allow(clippy::unwrap_used)]

use pos_emv::cvm::CvMethod;
use pos_emv::profile_card::{Profile, ProfileCard, sim_ca_keys};
use pos_emv::record::TransactionRecord;
use pos_emv::terminal::{Capabilities, PinMethods, TerminalData};
use pos_emv::transaction::{self, OnlineDecision, TransactionConfig, TransactionOutcome};
use pos_emv::tvr::Tvr;
use pos_hal::{CardChannel, FaultKind, VirtualCard};

/// A profile card as a card channel, keeping the GENERATE AC commands it received.
struct Slot {
    card: ProfileCard,
    gacs: Vec<Vec<u8>>,
}

impl CardChannel for Slot {
    type Error = FaultKind;
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, FaultKind> {
        if command.get(1) == Some(&0xAE) {
            self.gacs.push(command.to_vec());
        }
        self.card.transmit(command).ok_or(FaultKind::CardMute)
    }
}

/// Runs a sale of 12.34 on the Visa profile card with `capabilities` (`None`: the default
/// of [`TerminalData::new`]); the host approves.
fn sale(capabilities: Option<Capabilities>) -> (TransactionOutcome, Slot) {
    let mut card = ProfileCard::new(Profile::VisaPse);
    assert!(card.power_on().is_some());
    let mut slot = Slot {
        card,
        gacs: Vec::new(),
    };
    let mut terminal = TerminalData::new([0x11, 0x22, 0x33, 0x44]);
    // 2026-01-15 12:00:00 UTC: the card and its certificates are valid.
    terminal.set_unix_time(1_768_478_400);
    if let Some(c) = &capabilities {
        terminal.set_capabilities(c);
    }
    let config = TransactionConfig::new(terminal, 1234, sim_ca_keys());
    let mut host = |_: &TransactionRecord| OnlineDecision::Approved {
        arc: *b"00",
        issuer_auth_data: None,
        scripts: Vec::new(),
    };
    let out = transaction::run(&mut slot, &config, &mut host).unwrap();
    (out, slot)
}

/// The value of `9F33` in the authorisation request's ICC data.
fn capabilities_sent(out: &TransactionOutcome) -> Vec<u8> {
    let icc = out.first_ac.icc_data();
    let at = icc
        .windows(3)
        .position(|w| w == [0x9F, 0x33, 0x03])
        .expect("9F33 in the ICC data");
    icc[at + 3..at + 6].to_vec()
}

/// Byte 3 of the TVR the card received in the first GENERATE AC (Visa CDOL1: 9F02 9F03
/// 9F1A, then 95).
fn tvr_byte3_seen_by_card(slot: &Slot) -> u8 {
    slot.gacs[0][5 + 6 + 6 + 2 + 2]
}

/// "PIN entry required and PIN pad not present or not working".
const PIN_PAD_BIT: u8 = 0x10;

#[test]
fn the_default_is_a_chip_reader_alone_and_claims_no_pin() {
    let (out, slot) = sale(None);
    assert_eq!(capabilities_sent(&out), [0x20, 0x08, 0xC8]);
    // Neither online PIN nor signature is supported: no CVM required.
    let cvm = out.cvm.unwrap();
    assert_eq!(cvm.method_asked, Some(CvMethod::NoCvmRequired));
    assert_eq!(cvm.result.to_bytes(), [0x1F, 0x00, 0x02]);
    assert!(!out.tvr.contains(Tvr::PIN_PAD_NOT_PRESENT), "{:?}", out.tvr);
    assert_eq!(tvr_byte3_seen_by_card(&slot) & PIN_PAD_BIT, 0);
}

#[test]
fn a_lane_without_pin_pad_ends_with_signature_and_no_pin_pad_complaint() {
    let lane = Capabilities {
        magstripe: true,
        signature: true,
        printer: true,
        ..Capabilities::CHIP_ONLY
    };
    let (out, slot) = sale(Some(lane));
    assert_eq!(capabilities_sent(&out), [0x60, 0x28, 0xC8]);
    let cvm = out.cvm.unwrap();
    // Online PIN is not offered, so its rule ("if the terminal supports it") does not apply.
    assert_eq!(cvm.method_asked, Some(CvMethod::Signature));
    assert_eq!(cvm.performed, Some(CvMethod::Signature));
    assert_eq!(cvm.result.to_bytes(), [0x1E, 0x03, 0x00]);
    assert!(
        !out.tvr
            .intersects(Tvr::PIN_PAD_NOT_PRESENT | Tvr::CARDHOLDER_VERIFICATION_FAILED),
        "{:?}",
        out.tvr
    );
    assert_eq!(tvr_byte3_seen_by_card(&slot) & PIN_PAD_BIT, 0);
    assert!(out.decision.is_approved());
}

#[test]
fn a_configured_pin_pad_claims_pin_but_no_pin_is_ever_entered() {
    let lane = Capabilities {
        magstripe: true,
        signature: true,
        printer: true,
        pin: PinMethods::ALL,
        ..Capabilities::CHIP_ONLY
    };
    let (out, slot) = sale(Some(lane));
    assert_eq!(capabilities_sent(&out), [0x60, 0xF8, 0xC8]);
    let cvm = out.cvm.unwrap();
    // The card asks for online PIN; there is no PIN entry here: the PIN pad is reported
    // not working, the rule goes on to signature. No PIN is reported entered.
    assert_eq!(cvm.method_asked, Some(CvMethod::EncipheredPinOnline));
    assert_eq!(cvm.performed, Some(CvMethod::Signature));
    assert_eq!(cvm.result.to_bytes(), [0x1E, 0x03, 0x00]);
    assert!(out.tvr.contains(Tvr::PIN_PAD_NOT_PRESENT));
    assert!(
        !out.tvr
            .intersects(Tvr::ONLINE_PIN_ENTERED | Tvr::CARDHOLDER_VERIFICATION_FAILED)
    );
    assert_eq!(tvr_byte3_seen_by_card(&slot) & PIN_PAD_BIT, PIN_PAD_BIT);
}
