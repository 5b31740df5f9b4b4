//! The "done when": a virtual card session from selection to GENERATE AC 2 with
//! offline data authentication verified, through the whole stack below the EMV layer:
//! pos-ccid's driver, its USB-message codec and virtual reader, at APDU and TPDU T=0 level.

use pos_ccid::sim::{SimLevel, SimReaderConfig, VirtualReader};
use pos_ccid::{CcidReader, ReaderConfig};
use pos_emv::profile_card::{Profile, ProfileCard, sim_ca_keys};
use pos_emv::terminal::TerminalData;
use pos_emv::transaction::{
    self, OdaMethod, OnlineDecision, TransactionConfig, TransactionDecision,
};
use pos_emv::tvr::{Tsi, Tvr};
use pos_hal::{ChipReader, Fault, FaultKind, SlotChannel};

fn reader(level: SimLevel, profile: Profile) -> CcidReader<VirtualReader> {
    let cfg = SimReaderConfig {
        level,
        ..SimReaderConfig::default()
    };
    let (vr, h) = VirtualReader::new(cfg, "sim:ccid");
    let mut r = CcidReader::new(vr, "sim:ccid", ReaderConfig::default());
    h.insert(Box::new(ProfileCard::new(profile)));
    r.power_on(0).expect("power on");
    r
}

fn approve(_: &pos_emv::record::TransactionRecord) -> OnlineDecision {
    OnlineDecision::Approved {
        arc: *b"00",
        issuer_auth_data: None,
        scripts: Vec::new(),
    }
}

#[test]
fn cda_card_runs_to_the_second_generate_ac_with_oda_verified() {
    for level in [SimLevel::Apdu, SimLevel::TpduT0] {
        let mut r = reader(level, Profile::Cda);
        let config = TransactionConfig::new(
            TerminalData::new([0x12, 0x34, 0x56, 0x78]),
            1250,
            sim_ca_keys(),
        );
        let mut host_calls = 0;
        let mut host = |rec: &pos_emv::record::TransactionRecord| {
            host_calls += 1;
            approve(rec)
        };
        let outcome = transaction::run(&mut SlotChannel::new(&mut r, 0), &config, &mut host)
            .unwrap_or_else(|e| panic!("{level:?}: {e}"));
        assert_eq!(outcome.oda.method, OdaMethod::Cda, "{level:?}");
        assert!(outcome.oda.ok, "{level:?}: {:?}", outcome.oda.detail);
        assert!(outcome.tsi.contains(Tsi::ODA_PERFORMED));
        assert!(
            !outcome
                .tvr
                .intersects(Tvr::CDA_FAILED | Tvr::ODA_NOT_PERFORMED),
            "{:?}",
            outcome.tvr
        );
        assert_eq!(host_calls, 1, "one authorisation request");
        assert_eq!(
            outcome.decision,
            TransactionDecision::ApprovedOnline,
            "{level:?}"
        );
        assert!(!outcome.needs_reversal());
        let shown = format!("{:?}", outcome.record);
        assert!(
            !shown.contains("5413330089600044"),
            "the full PAN never shows"
        );
    }
}

#[test]
fn every_profile_completes_a_session_or_declines_for_its_reason() {
    for profile in Profile::ALL {
        let mut r = reader(SimLevel::Apdu, profile);
        let config = TransactionConfig::new(TerminalData::new([9, 8, 7, 6]), 500, sim_ca_keys());
        let outcome = transaction::run(&mut SlotChannel::new(&mut r, 0), &config, &mut approve)
            .unwrap_or_else(|e| panic!("{profile}: {e}"));
        assert!(outcome.oda.ok, "{profile}: ODA {:?}", outcome.oda.detail);
        if profile == Profile::Expired {
            assert!(outcome.tvr.contains(Tvr::EXPIRED_APPLICATION), "{profile}");
        } else {
            assert_eq!(
                outcome.decision,
                TransactionDecision::ApprovedOnline,
                "{profile}"
            );
        }
    }
}

#[test]
fn a_card_pulled_mid_session_is_card_removed_through_the_reader() {
    let cfg = SimReaderConfig::default();
    let (vr, h) = VirtualReader::new(cfg, "sim:ccid");
    let mut r = CcidReader::new(vr, "sim:ccid", ReaderConfig::default());
    h.insert(Box::new(ProfileCard::new(Profile::Cda)));
    r.power_on(0).expect("power on");
    h.set_faults(pos_ccid::sim::SimFaults {
        remove_at_exchange: Some(4),
        ..Default::default()
    });
    let config = TransactionConfig::new(TerminalData::new([1, 2, 3, 4]), 100, sim_ca_keys());
    let mut host_called = false;
    let mut host = |rec: &pos_emv::record::TransactionRecord| {
        host_called = true;
        approve(rec)
    };
    let err = transaction::run(&mut SlotChannel::new(&mut r, 0), &config, &mut host).unwrap_err();
    assert_eq!(err.kind(), FaultKind::CardRemoved, "{err}");
    assert!(!err.needs_reversal());
    assert!(!host_called, "nothing was sent to the host");
}
