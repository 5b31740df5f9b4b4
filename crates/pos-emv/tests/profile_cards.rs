//! The profile virtual cards (feature `sim`) driven through pos-emv's own flow: selection,
//! GET PROCESSING OPTIONS, records, processing restrictions, offline data authentication
//! with the simulation CA, GENERATE AC; and the CCID virtual reader.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pos_emv::apdu::{self, Command};
use pos_emv::capk::CaKeys;
use pos_emv::gac::{self, CryptogramType, ResponseFormat};
use pos_emv::oda::{self, OdaError, Record, RsaKey};
use pos_emv::profile_card::{
    AFL, Oda, Profile, ProfileCard, SIM_CA_INDEX, SIM_CA_KEYS, SIM_RID, sim_ca_keys,
};
use pos_emv::read::{self, CardData, Processing};
use pos_emv::record::StepLog;
use pos_emv::restrictions;
use pos_emv::select::{self, Candidate, Method, SelectedApp};
use pos_emv::terminal::TerminalData;
use pos_emv::tlv::{self, Tag};
use pos_emv::tvr::{Tsi, Tvr};
use pos_emv::{Step, dol, tags};
use pos_hal::{CardChannel, FaultKind, VirtualCard};
use sha1::{Digest, Sha1};

/// A profile card as a card channel.
struct Slot {
    card: ProfileCard,
}

impl Slot {
    fn new(profile: Profile) -> Self {
        let mut card = ProfileCard::new(profile);
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

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).expect("test hex")
}

const UN: [u8; 4] = [0x11, 0x22, 0x33, 0x44];
/// "Today" for certificate expiry checks: January 2026.
const TODAY: (u8, u8) = (26, 1);

fn terminal() -> TerminalData {
    let mut t = TerminalData::new(UN);
    t.set_amount(1234);
    // 2026-01-15 12:00:00 UTC.
    t.set_unix_time(1_768_478_400);
    t
}

struct Read {
    app: SelectedApp,
    processing: Processing,
    card: CardData,
}

fn chooser(c: &[Candidate]) -> Option<usize> {
    select::first_without_confirmation(c)
}

fn read(slot: &mut Slot, t: &TerminalData) -> Read {
    let (app, processing) =
        read::select_and_initiate(slot, &select::default_supported_aids(), t, &mut chooser)
            .expect("selection and GPO");
    let card = read::read_application_data(slot, &processing.afl).expect("records");
    Read {
        app,
        processing,
        card,
    }
}

#[test]
fn profile_names_parse() {
    for p in Profile::ALL {
        assert_eq!(p.name().parse::<Profile>(), Ok(p));
        assert_eq!(p.to_string(), p.name());
    }
    assert_eq!("aid-fallback".parse::<Profile>(), Ok(Profile::AidFallback));
    assert_eq!("VISA".parse::<Profile>(), Ok(Profile::VisaPse));
    let err = "amex".parse::<Profile>().unwrap_err();
    assert!(err.to_string().contains("amex"), "{err}");
}

#[test]
fn candidate_lists_per_profile() {
    let cases: [(Profile, Method, &[&str]); 7] = [
        (Profile::VisaPse, Method::Pse, &["A0000000031010"]),
        (Profile::Mastercard, Method::AidList, &["A0000000041010"]),
        (
            Profile::UnionPay,
            Method::Pse,
            // Priority 1 (credit) before priority 2 (debit), though the card lists debit first.
            &["A000000333010102", "A000000333010101"],
        ),
        (
            Profile::Blocked,
            Method::Pse,
            &["A0000000031010", "A0000000032010"],
        ),
        (Profile::Expired, Method::Pse, &["A0000000041010"]),
        (
            Profile::AidFallback,
            Method::AidList,
            &["A000000003101001", "A000000003101002"],
        ),
        (Profile::Cda, Method::Pse, &["A0000000041010"]),
    ];
    for (profile, method, aids) in cases {
        let mut slot = Slot::new(profile);
        let list = select::build_candidate_list(&mut slot, &select::default_supported_aids())
            .unwrap_or_else(|e| panic!("{profile}: {e}"));
        assert_eq!(list.method, method, "{profile}");
        let got: Vec<Vec<u8>> = list.candidates.iter().map(|c| c.aid.clone()).collect();
        let want: Vec<Vec<u8>> = aids.iter().map(|a| hex(a)).collect();
        assert_eq!(got, want, "{profile}");
    }
}

#[test]
fn final_selection_per_profile() {
    let cases = [
        (Profile::VisaPse, "A0000000031010"),
        (Profile::Mastercard, "A0000000041010"),
        (Profile::UnionPay, "A000000333010102"),
        // The priority 1 application answers 6283 and is skipped.
        (Profile::Blocked, "A0000000032010"),
        (Profile::Expired, "A0000000041010"),
        (Profile::AidFallback, "A000000003101001"),
        (Profile::Cda, "A0000000041010"),
    ];
    for (profile, aid) in cases {
        let mut slot = Slot::new(profile);
        let r = read(&mut slot, &terminal());
        assert_eq!(r.app.candidate.aid, hex(aid), "{profile}");
        assert_eq!(
            r.processing.afl,
            read::parse_afl(&AFL).unwrap(),
            "{profile}"
        );
        let aip = r.processing.aip;
        match profile.oda() {
            Oda::Sda => assert_eq!(aip[0] & 0x61, 0x40, "{profile} SDA only"),
            Oda::Dda => assert_eq!(aip[0] & 0x61, 0x20, "{profile} DDA"),
            Oda::Cda => assert_eq!(aip[0] & 0x21, 0x21, "{profile} CDA"),
        }
        assert_eq!(
            r.app.pdol.is_some(),
            profile == Profile::VisaPse,
            "{profile}"
        );
    }
}

#[test]
fn blocked_application_answers_6283_with_its_fci() {
    let mut slot = Slot::new(Profile::Blocked);
    let resp = apdu::exchange(
        &mut slot,
        &Command::select_by_name(&hex("A0000000031010"), true),
    )
    .unwrap();
    assert_eq!(resp.sw(), 0x6283);
    assert_eq!(resp.data.first(), Some(&0x6F));
    // Not selected: GET PROCESSING OPTIONS is refused.
    let gpo = apdu::exchange(&mut slot, &Command::get_processing_options(&[])).unwrap();
    assert_eq!(gpo.sw(), 0x6985);
}

#[test]
fn gpo_formats() {
    for (profile, format2) in [
        (Profile::VisaPse, false),
        (Profile::Mastercard, true),
        (Profile::UnionPay, false),
        (Profile::Cda, true),
    ] {
        let mut slot = Slot::new(profile);
        let app =
            select::select_application(&mut slot, &select::default_supported_aids(), &mut chooser)
                .unwrap();
        // Wrong PDOL data length: 6700.
        if profile == Profile::VisaPse {
            let bad = apdu::exchange(&mut slot, &Command::get_processing_options(&[])).unwrap();
            assert_eq!(bad.sw(), 0x6700);
        }
        let pdol = app.pdol.as_deref().map(|p| dol::parse_dol(p).unwrap());
        let data = pdol.map(|p| terminal().build_dol(&p)).unwrap_or_default();
        let resp = apdu::exchange(&mut slot, &Command::get_processing_options(&data)).unwrap();
        assert_eq!(resp.sw(), 0x9000);
        assert_eq!(resp.data[0], if format2 { 0x77 } else { 0x80 }, "{profile}");
    }
}

#[test]
fn records_hold_the_test_pan_masked() {
    for profile in Profile::ALL {
        let mut slot = Slot::new(profile);
        let r = read(&mut slot, &terminal());
        let pan = oda::pan_digits(r.card.get(tags::PAN).unwrap()).unwrap();
        assert_eq!(pan, profile.pan(), "{profile}");
        assert_eq!(
            r.card.pan_masked(),
            Some(pos_hal::mask_pan(profile.pan())),
            "{profile}"
        );
        let masked = r.card.pan_masked().unwrap();
        assert!(!masked.contains(&profile.pan()[6..12]), "{masked}");
        assert!(!format!("{:?}", r.card).contains(profile.pan()));
        assert_eq!(r.card.records.len(), 4, "{profile}");
        assert!(r.card.get(Tag::new(0x57)).is_some(), "{profile} track 2");
    }
}

#[test]
fn expired_card_is_expired_and_others_are_not() {
    let t = terminal();
    let today = t.get(tags::TRANSACTION_DATE).unwrap().to_vec();
    for profile in Profile::ALL {
        let mut slot = Slot::new(profile);
        let r = read(&mut slot, &t);
        let expiry = r.card.get(tags::EXPIRY_DATE).unwrap().to_vec();
        let mut tvr = Tvr::empty();
        restrictions::processing_restrictions(&r.card, &t, &mut tvr);
        if profile == Profile::Expired {
            assert_eq!(r.card.expiry().as_deref(), Some("221231"));
            assert!(expiry < today, "5F24 in the past");
            assert!(tvr.contains(Tvr::EXPIRED_APPLICATION));
        } else {
            assert!(expiry > today, "{profile}");
            assert!(!tvr.contains(Tvr::EXPIRED_APPLICATION), "{profile}");
        }
    }
}

fn rid(aid: &[u8]) -> [u8; 5] {
    aid[..5].try_into().unwrap()
}

/// The chain of trust up to the issuer key, and the static data, for a card read.
fn issuer_key(profile: Profile, r: &Read) -> (RsaKey, Vec<u8>) {
    let keys = sim_ca_keys();
    let index = r.card.get(Tag::new(0x8F)).unwrap()[0];
    assert_eq!(index, SIM_CA_INDEX);
    let ca = oda::find_ca_key(&keys, rid(&r.app.candidate.aid), index).unwrap();
    let pan = oda::pan_digits(r.card.get(tags::PAN).unwrap()).unwrap();
    let issuer = oda::recover_issuer_key(
        ca,
        r.card.get(Tag::new(0x90)).unwrap(),
        r.card.get(Tag::new(0x92)),
        r.card.get(Tag::new(0x9F32)).unwrap(),
        &pan,
        TODAY,
    )
    .unwrap_or_else(|e| panic!("{profile}: issuer key: {e}"));
    assert_eq!(issuer.len(), 144);
    let records: Vec<Record<'_>> = r
        .processing
        .afl
        .iter()
        .flat_map(|e| (e.first..=e.last).map(move |n| (e.sfi, n)))
        .zip(&r.card.records)
        .map(|((sfi, number), data)| Record { sfi, number, data })
        .collect();
    let static_data = oda::static_data(
        &AFL,
        &records,
        r.card.get(Tag::new(0x9F4A)),
        r.processing.aip,
    )
    .unwrap();
    assert_eq!(
        static_data,
        r.card
            .oda_input
            .iter()
            .chain(&r.processing.aip)
            .copied()
            .collect::<Vec<_>>()
    );
    (issuer, static_data)
}

fn icc_key(profile: Profile, r: &Read, issuer: &RsaKey, static_data: &[u8]) -> RsaKey {
    let pan = oda::pan_digits(r.card.get(tags::PAN).unwrap()).unwrap();
    let icc = oda::recover_icc_key(
        issuer,
        r.card.get(Tag::new(0x9F46)).unwrap(),
        r.card.get(Tag::new(0x9F48)),
        r.card.get(Tag::new(0x9F47)).unwrap(),
        static_data,
        &pan,
        TODAY,
    )
    .unwrap_or_else(|e| panic!("{profile}: ICC key: {e}"));
    assert_eq!(icc.len(), 128);
    icc
}

#[test]
fn sda_verifies_with_the_sim_ca() {
    for profile in Profile::ALL.into_iter().filter(|p| p.oda() == Oda::Sda) {
        let mut slot = Slot::new(profile);
        let r = read(&mut slot, &terminal());
        let (issuer, static_data) = issuer_key(profile, &r);
        let dac = oda::verify_sda(&issuer, r.card.get(Tag::new(0x93)).unwrap(), &static_data)
            .unwrap_or_else(|e| panic!("{profile}: SDA: {e}"));
        assert_eq!(dac, [0xDA, 0xC1]);
        // Static data changed by one bit: the signature no longer matches.
        let mut tampered = static_data.clone();
        tampered[3] ^= 0x01;
        assert!(matches!(
            oda::verify_sda(&issuer, r.card.get(Tag::new(0x93)).unwrap(), &tampered),
            Err(OdaError::HashMismatch { .. })
        ));
    }
    assert_eq!(Profile::VisaPse.oda(), Oda::Sda);
}

#[test]
fn dda_verifies_after_internal_authenticate() {
    for profile in [Profile::Mastercard, Profile::UnionPay, Profile::Cda] {
        let t = terminal();
        let mut slot = Slot::new(profile);
        let r = read(&mut slot, &t);
        let (issuer, static_data) = issuer_key(profile, &r);
        let icc = icc_key(profile, &r, &issuer, &static_data);
        let ddol = dol::parse_dol(r.card.get(Tag::new(0x9F49)).unwrap()).unwrap();
        let ddol_data = t.build_dol(&ddol);
        assert_eq!(ddol_data, UN);
        let resp = apdu::exchange(&mut slot, &Command::internal_authenticate(&ddol_data)).unwrap();
        assert_eq!(resp.sw(), 0x9000);
        let sdad = tlv::parse_template(&resp.data, Tag::new(0x80))
            .unwrap()
            .value;
        let dynamic = oda::verify_dda(&icc, sdad, &ddol_data)
            .unwrap_or_else(|e| panic!("{profile}: DDA: {e}"));
        assert_eq!(dynamic.len(), 9);
        assert_eq!(dynamic[0], 8);
        assert_eq!(slot.card.last_unpredictable_number(), Some(&UN[..]));
        // Signed for another unpredictable number: fails.
        assert!(oda::verify_dda(&icc, sdad, &[0, 0, 0, 0]).is_err());
        // A second INTERNAL AUTHENTICATE gives another dynamic number.
        let again = apdu::exchange(&mut slot, &Command::internal_authenticate(&ddol_data)).unwrap();
        let sdad2 = tlv::parse_template(&again.data, Tag::new(0x80))
            .unwrap()
            .value;
        assert_ne!(oda::verify_dda(&icc, sdad2, &ddol_data).unwrap(), dynamic);
    }
    // An SDA-only card does not know INTERNAL AUTHENTICATE.
    let mut slot = Slot::new(Profile::VisaPse);
    let _ = read(&mut slot, &terminal());
    let resp = apdu::exchange(&mut slot, &Command::internal_authenticate(&UN)).unwrap();
    assert_eq!(resp.sw(), 0x6D00);
}

#[test]
fn cda_verifies_on_both_generate_acs() {
    let t = terminal();
    let mut slot = Slot::new(Profile::Cda);
    let r = read(&mut slot, &t);
    let (issuer, static_data) = issuer_key(Profile::Cda, &r);
    let icc = icc_key(Profile::Cda, &r, &issuer, &static_data);
    let mut log: Vec<StepLog> = Vec::new();
    let g1 = gac::first_generate_ac(
        &mut slot,
        r.card.cdol1().unwrap(),
        &t,
        Tvr::empty(),
        Tsi::empty(),
        gac::P1_ARQC | gac::P1_CDA,
        &mut log,
    )
    .unwrap();
    assert_eq!(g1.response.format, ResponseFormat::Format2);
    assert_eq!(g1.response.cryptogram_type(), Some(CryptogramType::Arqc));
    assert!(g1.response.sdad.is_some());
    assert_eq!(g1.response.cryptogram, None, "the AC is inside 9F4B");
    // No PDOL: the transaction data is the CDOL1 data.
    let cda = oda::verify_cda(&icc, &g1.response.template, &UN, &g1.cdol_data)
        .unwrap_or_else(|e| panic!("CDA 1: {e}"));
    assert_eq!(cda.cid, 0x80);
    assert_eq!(
        cda.cryptogram,
        slot.card.cryptogram(1, 0x80, &g1.cdol_data),
        "the stand-in cryptogram"
    );
    assert_eq!(g1.response.atc, [0x00, 0x01]);
    // Other transaction data: the hash code does not match.
    let mut other = g1.cdol_data.clone();
    other[5] ^= 1;
    assert_eq!(
        oda::verify_cda(&icc, &g1.response.template, &UN, &other),
        Err(OdaError::TransactionHashMismatch)
    );

    // Online approved: EXTERNAL AUTHENTICATE, then the second GENERATE AC for a TC with CDA.
    let ea = apdu::exchange(&mut slot, &Command::external_authenticate(&[0x55; 10])).unwrap();
    assert_eq!(ea.sw(), 0x9000);
    let un2 = [9, 8, 7, 6];
    let mut t2 = t.clone();
    t2.set_unpredictable_number(un2);
    let cdol2_data = gac::cdol_data(
        r.card.cdol2().unwrap(),
        &t2,
        Tvr::empty(),
        Tsi::empty(),
        &[(Tag::new(0x8A), b"00"), (Tag::new(0x91), &[0x55; 10])],
        Step::GenerateAc2,
    )
    .unwrap();
    let g2 = gac::generate_ac(
        &mut slot,
        Step::GenerateAc2,
        gac::P1_TC | gac::P1_CDA,
        cdol2_data.clone(),
        &mut log,
    )
    .unwrap();
    assert_eq!(g2.response.cryptogram_type(), Some(CryptogramType::Tc));
    assert_eq!(g2.response.atc, [0x00, 0x01], "same transaction, same ATC");
    let mut tx = g1.cdol_data.clone();
    tx.extend_from_slice(&cdol2_data);
    let cda2 = oda::verify_cda(&icc, &g2.response.template, &un2, &tx)
        .unwrap_or_else(|e| panic!("CDA 2: {e}"));
    assert_eq!(cda2.cid, 0x40);
    assert_eq!(slot.card.last_unpredictable_number(), Some(&un2[..]));
    // The transaction is over.
    let third = apdu::exchange(&mut slot, &Command::generate_ac(0x40, &cdol2_data)).unwrap();
    assert_eq!(third.sw(), 0x6985);
}

#[test]
fn generate_ac_grants_what_is_asked_and_counts_transactions() {
    for profile in [Profile::VisaPse, Profile::Mastercard, Profile::UnionPay] {
        let mut slot = Slot::new(profile);
        for (n, (p1, want)) in [
            (gac::P1_TC, CryptogramType::Tc),
            (gac::P1_ARQC, CryptogramType::Arqc),
            (gac::P1_AAC, CryptogramType::Aac),
        ]
        .into_iter()
        .enumerate()
        {
            assert!(slot.card.power_on().is_some());
            let t = terminal();
            let r = read(&mut slot, &t);
            let mut log = Vec::new();
            let g = gac::first_generate_ac(
                &mut slot,
                r.card.cdol1().unwrap(),
                &t,
                Tvr::empty(),
                Tsi::empty(),
                p1,
                &mut log,
            )
            .unwrap_or_else(|e| panic!("{profile}: {e}"));
            assert_eq!(g.response.cryptogram_type(), Some(want), "{profile}");
            let atc = u16::try_from(n + 1).unwrap();
            assert_eq!(g.response.atc, atc.to_be_bytes(), "{profile}");
            assert_eq!(
                g.response.cryptogram,
                Some(slot.card.cryptogram(atc, g.response.cid, &g.cdol_data)),
                "{profile}"
            );
            let format = if profile == Profile::Mastercard {
                ResponseFormat::Format2
            } else {
                ResponseFormat::Format1
            };
            assert_eq!(g.response.format, format, "{profile}");
            assert!(!g.response.iad.is_empty());
            assert_eq!(slot.card.last_unpredictable_number(), Some(&UN[..]));
        }
        // GET DATA ATC.
        let resp = apdu::exchange(&mut slot, &Command::get_data(0x9F36)).unwrap();
        assert_eq!(resp.to_bytes(), [0x9F, 0x36, 0x02, 0x00, 0x03, 0x90, 0x00]);
        let resp = apdu::exchange(&mut slot, &Command::get_data(0x9F13)).unwrap();
        assert_eq!(resp.data, [0x9F, 0x13, 0x02, 0x00, 0x02], "last online ATC");
    }
}

#[test]
fn expired_card_declines_offline() {
    let t = terminal();
    let mut slot = Slot::new(Profile::Expired);
    let r = read(&mut slot, &t);
    let mut log = Vec::new();
    let g = gac::first_generate_ac(
        &mut slot,
        r.card.cdol1().unwrap(),
        &t,
        Tvr::EXPIRED_APPLICATION,
        Tsi::empty(),
        gac::P1_TC,
        &mut log,
    )
    .unwrap();
    assert_eq!(g.response.cryptogram_type(), Some(CryptogramType::Aac));
    // ARQC is still granted (the issuer decides).
    assert!(slot.card.power_on().is_some());
    let r = read(&mut slot, &t);
    let g = gac::first_generate_ac(
        &mut slot,
        r.card.cdol1().unwrap(),
        &t,
        Tvr::EXPIRED_APPLICATION,
        Tsi::empty(),
        gac::P1_ARQC,
        &mut log,
    )
    .unwrap();
    assert_eq!(g.response.cryptogram_type(), Some(CryptogramType::Arqc));
}

#[test]
fn commands_out_of_sequence_or_malformed() {
    let mut slot = Slot::new(Profile::Mastercard);
    let sw = |slot: &mut Slot, bytes: &[u8]| {
        let r = slot.card.transmit(bytes).unwrap();
        u16::from_be_bytes([r[r.len() - 2], r[r.len() - 1]])
    };
    // No PSE.
    assert_eq!(
        sw(
            &mut slot,
            &Command::select_by_name(b"1PAY.SYS.DDF01", true)
                .to_bytes(false)
                .unwrap()
        ),
        0x6A82
    );
    // GENERATE AC before GPO.
    assert_eq!(sw(&mut slot, &hex("80AE8000020000")), 0x6985);
    assert_eq!(sw(&mut slot, &hex("80CA9F1700")), 0x9000);
    assert_eq!(sw(&mut slot, &hex("80CA9F7F00")), 0x6A88);
    assert_eq!(sw(&mut slot, &hex("00FF0000")), 0x6D00);
    assert_eq!(sw(&mut slot, &hex("A0A40400")), 0x6E00);
    assert_eq!(sw(&mut slot, &hex("00A4")), 0x6700);
    assert_eq!(sw(&mut slot, &hex("00A4040006A000000004")), 0x6700);
}

#[test]
fn no_command_bytes_make_the_card_panic() {
    let mut cards: Vec<ProfileCard> = Profile::ALL.into_iter().map(ProfileCard::new).collect();
    let mut x: u32 = 0x1234_5678;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for card in &mut cards {
        assert!(card.power_on().is_some());
        for i in 0..3000 {
            let len = (next() % 40) as usize;
            let mut cmd: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Steer half the commands to real CLA/INS pairs.
            if i % 2 == 0 && cmd.len() >= 2 {
                const HEADERS: [[u8; 2]; 7] = [
                    [0x00, 0xA4],
                    [0x00, 0xB2],
                    [0x80, 0xA8],
                    [0x00, 0x88],
                    [0x80, 0xAE],
                    [0x00, 0x82],
                    [0x80, 0xCA],
                ];
                let h = HEADERS[(next() % 7) as usize];
                cmd[..2].copy_from_slice(&h);
            }
            let resp = card.transmit(&cmd).unwrap();
            assert!(resp.len() >= 2);
        }
    }
}

#[test]
fn sim_ca_key_file_checksums() {
    let keys = CaKeys::parse(SIM_CA_KEYS).unwrap();
    assert_eq!(keys, sim_ca_keys());
    assert_eq!(keys.len(), 4);
    let home = keys.get(SIM_RID, SIM_CA_INDEX).unwrap();
    assert_eq!(home.modulus.len(), 176);
    assert_eq!(home.exponent, [0x03]);
    for line in SIM_CA_KEYS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let sum = fields
            .iter()
            .find_map(|f| f.strip_prefix("sha1="))
            .expect("every line has its check sum");
        let key = keys
            .get(hex(fields[0]).try_into().unwrap(), hex(fields[1])[0])
            .unwrap();
        let mut h = Sha1::new();
        h.update(key.rid);
        h.update([key.index]);
        h.update(&key.modulus);
        h.update(&key.exponent);
        assert_eq!(h.finalize().to_vec(), hex(sum));
        assert_eq!(key.checksum().to_vec(), hex(sum));
        assert_eq!(key.modulus, home.modulus, "one CA key under every RID");
    }
    // The shipped scheme test keys do not clash with the simulation key.
    let test = CaKeys::parse(pos_emv::capk::TEST_CA_KEYS).unwrap();
    for k in keys.iter() {
        assert!(test.get(k.rid, k.index).is_none());
    }
}

/// The card, shared so the test can look at it once the reader holds it.
#[derive(Clone)]
struct SharedCard(Arc<Mutex<ProfileCard>>);

impl VirtualCard for SharedCard {
    fn power_on(&mut self) -> Option<Vec<u8>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .power_on()
    }
    fn transmit(&mut self, command: &[u8]) -> Option<Vec<u8>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .transmit(command)
    }
}

#[test]
fn cda_card_through_the_ccid_virtual_reader() {
    use pos_ccid::sim::{SimLevel, SimReaderConfig, VirtualReader};
    use pos_ccid::{CcidReader, ReaderConfig};
    use pos_hal::{ChipReader, SlotChannel};

    for level in [SimLevel::Apdu, SimLevel::TpduT0] {
        let cfg = SimReaderConfig {
            level,
            ..SimReaderConfig::default()
        };
        let (vr, handle) = VirtualReader::new(cfg, "sim:ccid");
        let config = ReaderConfig {
            command_timeout: Duration::from_millis(500),
            ..ReaderConfig::default()
        };
        let mut reader = CcidReader::new(vr, "sim:ccid", config);
        let card = SharedCard(Arc::new(Mutex::new(ProfileCard::new(Profile::Cda))));
        handle.insert(Box::new(card.clone()));
        reader.power_on(0).unwrap();
        let mut ch = SlotChannel::new(&mut reader, 0);
        let t = terminal();
        let (app, processing) =
            read::select_and_initiate(&mut ch, &select::default_supported_aids(), &t, &mut chooser)
                .unwrap_or_else(|e| panic!("{level:?}: {e}"));
        let data = read::read_application_data(&mut ch, &processing.afl).unwrap();
        let r = Read {
            app,
            processing,
            card: data,
        };
        let (issuer, static_data) = issuer_key(Profile::Cda, &r);
        let icc = icc_key(Profile::Cda, &r, &issuer, &static_data);
        let mut log = Vec::new();
        let g = gac::first_generate_ac(
            &mut ch,
            r.card.cdol1().unwrap(),
            &t,
            Tvr::empty(),
            Tsi::empty(),
            gac::P1_TC | gac::P1_CDA,
            &mut log,
        )
        .unwrap();
        let cda = oda::verify_cda(&icc, &g.response.template, &UN, &g.cdol_data).unwrap();
        assert_eq!(cda.cid, 0x40, "{level:?}");
        let held = card.0.lock().unwrap_or_else(PoisonError::into_inner);
        assert_eq!(held.atc(), 1);
    }
}
