//! The whole EMV contact transaction ([`pos_emv::transaction::run`]) against the shared
//! transcripts (binaryfoo/emv-bertlv test cases, MIT licence), replayed by a lenient
//! scripted card behind a small card channel that can pull the card at a GENERATE AC.
//!
//! Both transcripts answer the second GENERATE AC to P1 `40` (TC asked). The decline and
//! "unable to go online" paths that ask for an AAC (P1 `00`) use a copy of the UnionPay
//! transcript whose second GENERATE AC is recorded as asked with `00` and answered with an
//! AAC (CID `00`); everything else is the transcript as shipped.

use std::cell::Cell;

use pos_emv::action::ActionCodes;
use pos_emv::capk::{CaKeys, TEST_CA_KEYS};
use pos_emv::cvm::CvMethod;
use pos_emv::gac::CryptogramType;
use pos_emv::oda::{OdaError, Signed};
use pos_emv::record::TransactionRecord;
use pos_emv::script_card::{Matching, ScriptedCard};
use pos_emv::terminal::{Capabilities, TerminalData};
use pos_emv::transaction::{
    self, HostAnswer, OdaMethod, OnlineDecision, TransactionConfig, TransactionDecision,
    TransactionError, TransactionOutcome,
};
use pos_emv::transcript::Transcript;
use pos_emv::tvr::{Tsi, Tvr};
use pos_emv::{Cause, Step, tags};
use pos_hal::{CardChannel, Fault, FaultKind, VirtualCard};

const MASTERCARD: &str = include_str!("data/contact-mastercard.apdu");
const UPI: &str = include_str!("data/contact-upi.apdu");

/// The UnionPay transcript with its second GENERATE AC asked for an AAC and answered with
/// one (CID 00, same ATC and cryptogram bytes).
fn upi_gac2_aac() -> String {
    let out = UPI
        .replace(
            "> 80AE4000243030",
            "> 80AE0000243030", // P1 00: AAC asked
        )
        .replace(
            "< 8013400006E5869B494D460AB4",
            "< 8013000006E5869B494D460AB4", // CID 00: AAC
        );
    assert_ne!(
        out, UPI,
        "the UnionPay transcript changed: update this test"
    );
    out
}

/// A scripted card as a card channel; pulled when the `remove_at_gac`th GENERATE AC comes.
struct Slot {
    card: ScriptedCard,
    removed: bool,
    remove_at_gac: Option<usize>,
    gacs: usize,
    sent: Vec<Vec<u8>>,
}

impl Slot {
    fn new(text: &str) -> Self {
        let t = Transcript::parse(text).expect("shared transcript parses");
        let mut card = ScriptedCard::new(t, Matching::Lenient);
        assert!(card.power_on().is_some());
        Slot {
            card,
            removed: false,
            remove_at_gac: None,
            gacs: 0,
            sent: Vec::new(),
        }
    }

    fn removed_at_gac(mut self, n: usize) -> Self {
        self.remove_at_gac = Some(n);
        self
    }

    /// The commands sent with instruction `ins`.
    fn sent_ins(&self, ins: u8) -> Vec<&Vec<u8>> {
        self.sent
            .iter()
            .filter(|c| c.get(1) == Some(&ins))
            .collect()
    }

    /// GENERATE AC or EXTERNAL AUTHENTICATE commands that matched nothing in the transcript.
    fn late_mismatches(&self) -> usize {
        self.card
            .mismatches()
            .iter()
            .filter(|m| matches!(m.received.get(1), Some(0xAE | 0x82 | 0x88 | 0xCA)))
            .count()
    }
}

impl CardChannel for Slot {
    type Error = FaultKind;
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, FaultKind> {
        if command.get(1) == Some(&0xAE) {
            self.gacs += 1;
            if self.remove_at_gac == Some(self.gacs) {
                self.removed = true;
            }
        }
        if self.removed {
            return Err(FaultKind::CardRemoved);
        }
        self.sent.push(command.to_vec());
        self.card.transmit(command).ok_or(FaultKind::CardMute)
    }
}

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).expect("test hex")
}

fn ac(s: &str) -> Option<[u8; 8]> {
    Some(hex(s).try_into().expect("8 bytes"))
}

fn fifty() -> u8 {
    50
}

/// Amount 10.00, the test CA keys, a TAC-online that sends ODA failures, expired cards
/// and floor-limit breaches online, TAC-default zero; a lane with a printer for signatures
/// (no PIN pad).
fn config() -> TransactionConfig {
    let mut terminal = TerminalData::new([0x11, 0x22, 0x33, 0x44]);
    terminal.set_capabilities(&Capabilities {
        signature: true,
        printer: true,
        ..Capabilities::CHIP_ONLY
    });
    let keys = CaKeys::parse(TEST_CA_KEYS).expect("test CA keys");
    let mut c = TransactionConfig::new(terminal, 1000, keys);
    c.tac = ActionCodes {
        denial: [0; 5],
        online: [0xFC, 0x50, 0x00, 0x80, 0x00],
        default: [0; 5],
    };
    c.random = fifty;
    c
}

fn approve() -> OnlineDecision {
    OnlineDecision::Approved {
        arc: *b"00",
        issuer_auth_data: None,
        scripts: Vec::new(),
    }
}

/// Runs a transaction; returns the result, the host's calls (the requests it saw) and the
/// slot.
fn run_with(
    mut slot: Slot,
    config: &TransactionConfig,
    answer: OnlineDecision,
) -> (
    Result<TransactionOutcome, TransactionError>,
    Vec<TransactionRecord>,
    Slot,
) {
    let mut seen = Vec::new();
    let mut host = |r: &TransactionRecord| {
        seen.push(r.clone());
        answer.clone()
    };
    let result = transaction::run(&mut slot, config, &mut host);
    (result, seen, slot)
}

fn no_pan(s: &str, pan: &str) {
    assert!(!s.contains(pan), "full PAN shown: {s}");
}

#[test]
fn mastercard_host_approves_expired_issuer_certificate_fails_cda() {
    let (result, seen, slot) = run_with(Slot::new(MASTERCARD), &config(), approve());
    let out = result.expect("transaction completes");
    assert_eq!(slot.late_mismatches(), 0, "{:?}", slot.card.mismatches());

    // ODA: the card and the terminal both do CDA; the issuer certificate expired 12/14.
    assert_eq!(out.oda.method, OdaMethod::Cda);
    assert!(!out.oda.ok);
    assert_eq!(
        out.oda.detail,
        Some(OdaError::Expired {
            what: Signed::IssuerCertificate,
            month: 12,
            year: 14
        })
    );
    assert!(out.tvr.contains(Tvr::CDA_FAILED));
    assert!(!out.tvr.intersects(
        Tvr::ODA_NOT_PERFORMED | Tvr::SDA_FAILED | Tvr::DDA_FAILED | Tvr::ICC_DATA_MISSING
    ));
    assert!(out.tsi.contains(Tsi::ODA_PERFORMED));
    // The card expired on 2014-12-31.
    assert!(out.tvr.contains(Tvr::EXPIRED_APPLICATION));
    // The keys could not be recovered: no CDA signature asked for (P1 80, then 40).
    let gacs = slot.sent_ins(0xAE);
    assert_eq!(gacs.len(), 2);
    assert_eq!(gacs[0][2], 0x80);
    assert_eq!(gacs[1][2], 0x40);
    // CDOL1 carries the TVR with CDA failed (95 after 9F02 9F03 9F1A).
    assert_eq!(gacs[0][5 + 14] & 0x04, 0x04);
    assert!(
        slot.sent_ins(0x88).is_empty(),
        "no INTERNAL AUTHENTICATE for CDA"
    );

    assert_eq!(out.cvm_asked(), Some(CvMethod::Signature));

    // The host saw one authorisation request: the ARQC.
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.pan_masked.as_deref(), Some("541333******0044"));
    assert_eq!(req.aid, hex("A0000000041010"));
    assert_eq!(req.cryptogram_type, Some(CryptogramType::Arqc));
    assert_eq!(req.cryptogram, ac("4573436B1E4B95DD"));
    assert_eq!(req.atc, [0x00, 0x41]);
    assert_eq!(req.amount, Some(1000));
    assert_eq!(req.arc, None);
    let tlv_9f26 = hex("9F26084573436B1E4B95DD");
    assert!(
        req.icc_data()
            .windows(tlv_9f26.len())
            .any(|w| w == tlv_9f26)
    );
    assert_eq!(out.first_ac.cryptogram, ac("4573436B1E4B95DD"));

    // The card answered the TC request with an AAC: declined after the host approved.
    assert_eq!(out.host, HostAnswer::Approved(*b"00"));
    assert_eq!(out.decision, TransactionDecision::DeclinedAfterHostApproval);
    assert!(out.needs_reversal());
    let r = &out.record;
    assert_eq!(r.pan_masked.as_deref(), Some("541333******0044"));
    assert_eq!(r.aid, hex("A0000000041010"));
    assert_eq!(r.cryptogram_type, Some(CryptogramType::Aac));
    assert_eq!(r.cryptogram, ac("C74D18B08248FEFC"));
    assert_eq!(r.arc, Some(*b"00"));
    assert!(r.tvr.contains(Tvr::CDA_FAILED));
    let steps: Vec<Step> = out.steps.iter().map(|s| s.step).collect();
    assert_eq!(
        steps,
        [
            Step::Gpo,
            Step::CheckData,
            Step::GenerateAc1,
            Step::GenerateAc2
        ]
    );
    no_pan(&format!("{out:?}"), "5413330089600044");
    no_pan(&format!("{}", out.record), "5413330089600044");
}

#[test]
fn unionpay_host_approves_without_its_ca_key() {
    let mut answer = approve();
    if let OnlineDecision::Approved {
        issuer_auth_data, ..
    } = &mut answer
    {
        *issuer_auth_data = Some(hex("1122334455667788"));
    }
    let (result, seen, slot) = run_with(Slot::new(UPI), &config(), answer);
    let out = result.expect("transaction completes");
    assert_eq!(slot.late_mismatches(), 0, "{:?}", slot.card.mismatches());

    // DDA chosen; no UnionPay CA key in the test table: DDA failed, the card's data is
    // complete, so ICC data missing stays clear; ODA was performed (attempted).
    assert_eq!(out.oda.method, OdaMethod::Dda);
    assert!(!out.oda.ok);
    assert_eq!(
        out.oda.detail,
        Some(OdaError::UnknownCaKey {
            rid: [0xA0, 0x00, 0x00, 0x03, 0x33],
            index: 0x09
        })
    );
    assert!(out.tvr.contains(Tvr::DDA_FAILED));
    assert!(!out.tvr.intersects(
        Tvr::ICC_DATA_MISSING
            | Tvr::ODA_NOT_PERFORMED
            | Tvr::CDA_FAILED
            | Tvr::SDA_FAILED
            | Tvr::SDA_SELECTED
    ));
    assert!(out.tsi.contains(Tsi::ODA_PERFORMED));
    assert!(
        slot.sent_ins(0x88).is_empty(),
        "no INTERNAL AUTHENTICATE without the keys"
    );
    // Velocity checking read the counters (ATC 6, last online 1: within 7F / FF).
    assert_eq!(slot.sent_ins(0xCA).len(), 2);
    assert!(!out.tvr.intersects(
        Tvr::LOWER_OFFLINE_LIMIT_EXCEEDED | Tvr::UPPER_OFFLINE_LIMIT_EXCEEDED | Tvr::NEW_CARD
    ));
    assert!(out.tsi.contains(Tsi::TERMINAL_RISK_MANAGEMENT_PERFORMED));
    assert_eq!(out.cvm_asked(), Some(CvMethod::Signature));

    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].pan_masked.as_deref(), Some("621094******0011"));
    assert_eq!(seen[0].aid, hex("A000000333010102"));
    assert_eq!(seen[0].cryptogram, ac("B04398D218017BF9"));

    // EXTERNAL AUTHENTICATE answered 6700; the card gave the TC.
    assert!(out.tvr.contains(Tvr::ISSUER_AUTHENTICATION_FAILED));
    assert_eq!(out.decision, TransactionDecision::ApprovedOnline);
    assert!(!out.needs_reversal());
    let r = &out.record;
    assert_eq!(r.pan_masked.as_deref(), Some("621094******0011"));
    assert_eq!(r.aid, hex("A000000333010102"));
    assert_eq!(r.cryptogram_type, Some(CryptogramType::Tc));
    assert_eq!(r.cryptogram, ac("E5869B494D460AB4"));
    assert_eq!(r.arc, Some(*b"00"));
    assert_eq!(out.first_ac.cryptogram, ac("B04398D218017BF9"));
    assert_eq!(out.first_ac.cryptogram_type, Some(CryptogramType::Arqc));
    let gacs = slot.sent_ins(0xAE);
    assert_eq!((gacs[0][2], gacs[1][2]), (0x80, 0x40));
    no_pan(&format!("{out:?}"), "6210948000000011");
}

#[test]
fn host_decline_asks_the_card_for_an_aac() {
    let answer = OnlineDecision::Declined {
        arc: *b"05",
        issuer_auth_data: None,
        scripts: Vec::new(),
    };
    let (result, seen, slot) = run_with(Slot::new(&upi_gac2_aac()), &config(), answer);
    let out = result.expect("transaction completes");
    assert_eq!(slot.late_mismatches(), 0, "{:?}", slot.card.mismatches());
    assert_eq!(seen.len(), 1);
    let gacs = slot.sent_ins(0xAE);
    assert_eq!(gacs[1][2], 0x00, "AAC asked");
    // CDOL2 starts with 8A: the host's ARC.
    assert_eq!(gacs[1][5..7], *b"05");
    assert_eq!(out.host, HostAnswer::Declined(*b"05"));
    assert_eq!(out.decision, TransactionDecision::DeclinedOnline);
    assert!(!out.decision.is_approved() && !out.needs_reversal());
    assert_eq!(out.record.cryptogram_type, Some(CryptogramType::Aac));
    assert_eq!(out.record.arc, Some(*b"05"));
}

#[test]
fn host_unreachable_lets_the_default_action_codes_decide() {
    // UnionPay: IAC-default D8609CA800 matches "DDA failed": AAC, ARC Z3.
    let (result, seen, slot) = run_with(
        Slot::new(&upi_gac2_aac()),
        &config(),
        OnlineDecision::Unreachable,
    );
    let out = result.expect("transaction completes");
    assert_eq!(slot.late_mismatches(), 0, "{:?}", slot.card.mismatches());
    assert_eq!(seen.len(), 1, "the request was attempted");
    let gacs = slot.sent_ins(0xAE);
    assert_eq!(gacs[1][2], 0x00);
    assert_eq!(gacs[1][5..7], *b"Z3");
    assert!(
        slot.sent_ins(0x82).is_empty(),
        "no issuer authentication offline"
    );
    assert_eq!(out.host, HostAnswer::Unreachable);
    assert_eq!(out.decision, TransactionDecision::DeclinedUnableOnline);
    assert_eq!(out.record.arc, Some(*b"Z3"));

    // Mastercard: IAC-default and TAC-default zero: TC asked (ARC Y3); the card still
    // answers with an AAC.
    let (result, _, slot) = run_with(
        Slot::new(MASTERCARD),
        &config(),
        OnlineDecision::Unreachable,
    );
    let out = result.expect("transaction completes");
    let gacs = slot.sent_ins(0xAE);
    assert_eq!(gacs[1][2], 0x40, "TC asked");
    // CDOL2 of this card: 91 (10 bytes), then 8A.
    assert_eq!(gacs[1][5 + 10..5 + 12], *b"Y3");
    assert_eq!(out.decision, TransactionDecision::DeclinedUnableOnline);
    assert!(!out.needs_reversal());

    // The same card with a TAC-default catching "CDA failed": AAC asked, Z3.
    let mut c = config();
    c.tac.default = [0x04, 0, 0, 0, 0];
    let (result, _, slot) = run_with(Slot::new(MASTERCARD), &c, OnlineDecision::Unreachable);
    // The transcript has no GENERATE AC with P1 00: the card refuses it (6985).
    let e = result.expect_err("AAC not in the transcript");
    assert!(matches!(e, TransactionError::Card(_)), "{e:?}");
    assert_eq!(e.emv().step(), Step::GenerateAc2);
    assert_eq!(slot.sent_ins(0xAE)[1][2], 0x00);
    assert_eq!(slot.sent_ins(0xAE)[1][5 + 10..5 + 12], *b"Z3");
}

#[test]
fn card_removed_at_gac1_reaches_no_host() {
    for text in [MASTERCARD, UPI] {
        let called = Cell::new(false);
        let mut host = |_: &TransactionRecord| {
            called.set(true);
            approve()
        };
        let mut slot = Slot::new(text).removed_at_gac(1);
        let e = transaction::run(&mut slot, &config(), &mut host).expect_err("card removed");
        assert!(!called.get(), "host called");
        assert!(!e.needs_reversal());
        let TransactionError::Card(inner) = &e else {
            panic!("expected a card error, got {e:?}");
        };
        assert_eq!(inner.kind(), FaultKind::CardRemoved);
        assert_eq!(inner.step(), Step::GenerateAc1);
        assert_eq!(e.kind(), FaultKind::CardRemoved);
    }
}

#[test]
fn card_removed_at_gac2_after_approval_asks_for_a_reversal() {
    for (text, pan, arqc) in [
        (MASTERCARD, "541333******0044", "4573436B1E4B95DD"),
        (UPI, "621094******0011", "B04398D218017BF9"),
    ] {
        let (result, seen, _) = run_with(Slot::new(text).removed_at_gac(2), &config(), approve());
        assert_eq!(seen.len(), 1);
        let e = result.expect_err("card removed");
        assert!(e.needs_reversal());
        assert_eq!(e.kind(), FaultKind::CardRemoved);
        assert!(e.to_string().contains("reversal"), "{e}");
        let TransactionError::AfterHostResponse {
            error,
            host,
            record,
        } = e
        else {
            panic!("expected AfterHostResponse");
        };
        assert_eq!(error.step(), Step::GenerateAc2);
        assert_eq!(error.kind(), FaultKind::CardRemoved);
        assert_eq!(host, HostAnswer::Approved(*b"00"));
        // The record is the authorisation the host approved.
        assert_eq!(record.pan_masked.as_deref(), Some(pan));
        assert_eq!(record.cryptogram_type, Some(CryptogramType::Arqc));
        assert_eq!(record.cryptogram, ac(arqc));
        assert_eq!(record.arc, Some(*b"00"));
        assert_eq!(
            record.steps.last().map(|s| (s.step, s.sw)),
            Some((Step::GenerateAc2, None))
        );
    }
}

#[test]
fn card_removed_at_gac2_after_decline_needs_no_reversal() {
    let answer = OnlineDecision::Declined {
        arc: *b"05",
        issuer_auth_data: None,
        scripts: Vec::new(),
    };
    let (result, _, _) = run_with(
        Slot::new(&upi_gac2_aac()).removed_at_gac(2),
        &config(),
        answer,
    );
    let e = result.expect_err("card removed");
    assert!(!e.needs_reversal());
    assert!(matches!(
        e,
        TransactionError::AfterHostResponse {
            host: HostAnswer::Declined(_),
            ..
        }
    ));
    assert_eq!(e.emv().step(), Step::GenerateAc2);
}

#[test]
fn an_application_refusing_gpo_is_reported_as_that() {
    // The Mastercard card, its only application answering GET PROCESSING OPTIONS with 6985.
    let gpo_answer = "< 7716820259009410100202011801010020010100280102009000";
    assert!(MASTERCARD.contains(gpo_answer), "the transcript changed");
    let refusing = MASTERCARD.replace(gpo_answer, "< 6985");
    let (result, seen, _) = run_with(Slot::new(&refusing), &config(), approve());
    let e = result.expect_err("no application left");
    assert!(seen.is_empty(), "nothing sent to the host");
    assert!(!e.needs_reversal());
    assert_eq!(e.emv().step(), Step::Gpo);
    assert!(matches!(e.emv().cause(), Cause::GpoRefused { .. }));
    assert_eq!(e.kind(), FaultKind::CardUnsupported);
    let text = e.to_string();
    assert!(text.contains("A0000000041010"), "{text}");
    assert!(
        text.contains("6985 (conditions of use not satisfied)"),
        "{text}"
    );
    assert!(!text.contains("no supported application"), "{text}");
}

#[test]
fn oda_method_follows_the_terminal_capabilities() {
    // No ODA capability: not performed.
    let mut c = config();
    c.terminal
        .set(tags::TERMINAL_CAPABILITIES, vec![0xE0, 0xF8, 0x00]);
    let (result, _, _) = run_with(Slot::new(MASTERCARD), &c, approve());
    let out = result.expect("transaction completes");
    assert_eq!(out.oda.method, OdaMethod::None);
    assert!(out.tvr.contains(Tvr::ODA_NOT_PERFORMED));
    assert!(!out.tsi.contains(Tsi::ODA_PERFORMED));
    assert!(
        !out.tvr
            .intersects(Tvr::CDA_FAILED | Tvr::SDA_FAILED | Tvr::SDA_SELECTED)
    );

    // SDA only: SDA selected, and failed on the same expired issuer certificate.
    c.terminal
        .set(tags::TERMINAL_CAPABILITIES, vec![0xE0, 0xF8, 0x80]);
    let (result, _, _) = run_with(Slot::new(MASTERCARD), &c, approve());
    let out = result.expect("transaction completes");
    assert_eq!(out.oda.method, OdaMethod::Sda);
    assert!(out.tvr.contains(Tvr::SDA_SELECTED | Tvr::SDA_FAILED));
    assert!(!out.tvr.intersects(Tvr::CDA_FAILED | Tvr::ODA_NOT_PERFORMED));
    assert!(matches!(out.oda.detail, Some(OdaError::Expired { .. })));

    // Priorities from the AIP alone.
    let caps = [0xE0, 0xF8, 0xC8];
    assert_eq!(
        transaction::choose_oda([0x7D, 0x00], Some(&caps)),
        OdaMethod::Cda
    );
    assert_eq!(
        transaction::choose_oda([0x7C, 0x00], Some(&caps)),
        OdaMethod::Dda
    );
    assert_eq!(
        transaction::choose_oda([0x40, 0x00], Some(&caps)),
        OdaMethod::Sda
    );
    assert_eq!(
        transaction::choose_oda([0x18, 0x00], Some(&caps)),
        OdaMethod::None
    );
    assert_eq!(transaction::choose_oda([0x7D, 0x00], None), OdaMethod::None);
}

#[test]
fn missing_ca_key_index_sets_icc_data_missing() {
    // The Mastercard card without its 8F (same length, a private tag instead).
    let text = MASTERCARD.replace("< 703E8F01EF", "< 703EC101EF");
    assert_ne!(text, MASTERCARD);
    let (result, _, _) = run_with(Slot::new(&text), &config(), approve());
    let out = result.expect("transaction completes");
    assert_eq!(out.oda.method, OdaMethod::Cda);
    assert!(out.tvr.contains(Tvr::CDA_FAILED | Tvr::ICC_DATA_MISSING));
    assert!(matches!(out.oda.detail, Some(OdaError::MissingData(_))));
}
