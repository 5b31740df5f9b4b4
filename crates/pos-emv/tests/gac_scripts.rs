//! Issuer authentication and issuer script processing against a tiny fake card.

use pos_emv::gac::{self, CryptogramType};
use pos_emv::online::{self, HostResponse, IssuerAuth, ScriptResult};
use pos_emv::record::StepLog;
use pos_emv::terminal::TerminalData;
use pos_emv::tvr::{Tsi, Tvr};
use pos_emv::{Step, tags};
use pos_hal::{CardChannel, Fault, FaultKind};

/// Answers by instruction: EXTERNAL AUTHENTICATE 9000, GENERATE AC a format 1 TC, script
/// commands by their P1 (`01` ok, `02` 6283 warning, `03` 6A80 failure).
#[derive(Default)]
struct FakeCard {
    received: Vec<Vec<u8>>,
    remove_at_ins: Option<u8>,
}

impl CardChannel for FakeCard {
    type Error = FaultKind;
    fn transmit(&mut self, c: &[u8]) -> Result<Vec<u8>, FaultKind> {
        if c.get(1).is_some() && c.get(1).copied() == self.remove_at_ins {
            return Err(FaultKind::CardRemoved);
        }
        self.received.push(c.to_vec());
        Ok(match (c.get(1), c.get(2)) {
            (Some(0x82), _) => vec![0x90, 0x00],
            (Some(0xAE), _) => {
                let mut r = vec![0x80, 0x0B, 0x40, 0x00, 0x07];
                r.extend_from_slice(&[0xA5; 8]);
                r.extend_from_slice(&[0x90, 0x00]);
                r
            }
            (_, Some(0x01)) => vec![0x90, 0x00],
            (_, Some(0x02)) => vec![0x62, 0x83],
            _ => vec![0x6A, 0x80],
        })
    }
}

fn scripts() -> Vec<u8> {
    vec![
        // 71, id 11223344: ok, failing, never sent.
        0x71, 0x19, 0x9F, 0x18, 0x04, 0x11, 0x22, 0x33, 0x44, //
        0x86, 0x04, 0x84, 0x24, 0x01, 0x00, //
        0x86, 0x04, 0x84, 0x1E, 0x03, 0x00, //
        0x86, 0x04, 0x84, 0x24, 0x01, 0x01, //
        // 72, id 55667788: ok and a warning.
        0x72, 0x13, 0x9F, 0x18, 0x04, 0x55, 0x66, 0x77, 0x88, //
        0x86, 0x04, 0x84, 0x24, 0x01, 0x00, //
        0x86, 0x04, 0x84, 0x24, 0x02, 0x00,
    ]
}

/// CDOL2: 8A, 95, 91 (8).
const CDOL2: [u8; 6] = [0x8A, 0x02, 0x95, 0x05, 0x91, 0x08];

fn host() -> HostResponse {
    HostResponse {
        arc: *b"00",
        issuer_auth_data: Some(vec![0xAB; 8]),
        scripts: scripts(),
    }
}

#[test]
fn scripts_run_around_the_final_gac_and_failures_are_recorded() {
    let mut card = FakeCard::default();
    let (mut tvr, mut tsi) = (Tvr::empty(), Tsi::empty());
    let mut log: Vec<StepLog> = Vec::new();
    let out = online::complete_online(
        &mut card,
        [0x7C, 0x00],
        &CDOL2,
        &TerminalData::new([1, 2, 3, 4]),
        &host(),
        gac::P1_TC,
        &mut tvr,
        &mut tsi,
        &mut log,
    )
    .expect("online processing");
    assert_eq!(out.issuer_auth, IssuerAuth::Passed);
    assert!(tsi.contains(Tsi::ISSUER_AUTHENTICATION_PERFORMED | Tsi::SCRIPT_PROCESSING_PERFORMED));
    assert!(tvr.contains(Tvr::SCRIPT_FAILED_BEFORE_FINAL_GAC));
    assert!(!tvr.contains(Tvr::SCRIPT_FAILED_AFTER_FINAL_GAC));
    assert!(!tvr.contains(Tvr::ISSUER_AUTHENTICATION_FAILED));
    assert_eq!(
        out.script_results_bytes(),
        [0x12, 0x11, 0x22, 0x33, 0x44, 0x20, 0x55, 0x66, 0x77, 0x88]
    );
    assert_eq!(out.script_results[0].sw, Some(0x6A80));
    assert_eq!(out.script_results[1].result, ScriptResult::SUCCESSFUL);
    assert_eq!(out.script_results[1].sw, Some(0x6283));
    // Order: EA, two 71 commands (third not sent), GAC, two 72 commands.
    let ins: Vec<(u8, u8)> = card.received.iter().map(|c| (c[1], c[2])).collect();
    assert_eq!(
        ins,
        [
            (0x82, 0),
            (0x24, 1),
            (0x1E, 3),
            (0xAE, 0x40),
            (0x24, 1),
            (0x24, 2)
        ]
    );
    // CDOL2 data: 8A, TVR with the script failure bit, 91 zeros (EXTERNAL AUTHENTICATE done).
    let gac_cmd = &card.received[3];
    let data = &gac_cmd[5..5 + 15];
    assert_eq!(data[..2], *b"00");
    assert_eq!(data[2..7], [0, 0, 0, 0, 0x20]);
    assert_eq!(data[7..], [0; 8]);
    assert_eq!(
        out.gac2.response.cryptogram_type(),
        Some(CryptogramType::Tc)
    );
    let steps: Vec<Step> = log.iter().map(|s| s.step).collect();
    assert_eq!(
        steps,
        [
            Step::ExternalAuthenticate,
            Step::IssuerScript,
            Step::GenerateAc2,
            Step::IssuerScript
        ]
    );
}

#[test]
fn without_issuer_authentication_support_91_goes_into_cdol2() {
    let mut card = FakeCard::default();
    let (mut tvr, mut tsi) = (Tvr::empty(), Tsi::empty());
    let mut h = host();
    h.scripts.clear();
    let out = online::complete_online(
        &mut card,
        [0x58, 0x00],
        &CDOL2,
        &TerminalData::new([1, 2, 3, 4]),
        &h,
        gac::P1_TC,
        &mut tvr,
        &mut tsi,
        &mut Vec::new(),
    )
    .expect("online processing");
    assert_eq!(out.issuer_auth, IssuerAuth::InCdol2);
    assert_eq!(card.received.len(), 1);
    assert_eq!(card.received[0][5 + 7..5 + 15], [0xAB; 8]);
    assert!(tsi.is_empty());
}

#[test]
fn card_removed_during_a_script_names_the_step() {
    let mut card = FakeCard {
        remove_at_ins: Some(0x24),
        ..FakeCard::default()
    };
    let (mut tvr, mut tsi) = (Tvr::empty(), Tsi::empty());
    let e = online::complete_online(
        &mut card,
        [0x7C, 0x00],
        &CDOL2,
        &TerminalData::new([1, 2, 3, 4]),
        &host(),
        gac::P1_TC,
        &mut tvr,
        &mut tsi,
        &mut Vec::new(),
    )
    .expect_err("removed");
    assert_eq!(e.kind(), FaultKind::CardRemoved);
    assert_eq!(e.step(), Step::IssuerScript);
}

#[test]
fn a_cryptogram_above_the_one_asked_is_rejected() {
    // The fake card answers TC; asking for an AAC must fail.
    let mut card = FakeCard::default();
    let e = gac::generate_ac(
        &mut card,
        Step::GenerateAc2,
        gac::P1_AAC,
        vec![0; 4],
        &mut Vec::new(),
    )
    .expect_err("TC for AAC");
    assert_eq!(e.step(), Step::GenerateAc2);
    assert_eq!(e.kind(), FaultKind::Protocol);
    let _ = tags::CID;
}
