//! GENERATE AC, online processing and the transaction record against the shared
//! transcripts (binaryfoo/emv-bertlv test cases, MIT licence), replayed by a lenient
//! scripted card.

use pos_emv::gac::{self, CryptogramType, GacResponse, ResponseFormat};
use pos_emv::online::{self, HostResponse, IssuerAuth};
use pos_emv::read::{self, CardData, Processing};
use pos_emv::record::{Sources, StepLog, TransactionRecord};
use pos_emv::script_card::{Matching, ScriptedCard};
use pos_emv::select::{self, Candidate, SelectedApp};
use pos_emv::terminal::TerminalData;
use pos_emv::tlv::{self, Tag};
use pos_emv::transcript::Transcript;
use pos_emv::tvr::{Tsi, Tvr};
use pos_emv::{EmvError, Step, tags};
use pos_hal::{CardChannel, Fault, FaultKind, VirtualCard};

const MASTERCARD: &str = include_str!("data/contact-mastercard.apdu");
const UPI: &str = include_str!("data/contact-upi.apdu");

/// A scripted card as a card channel; `removed` pulls the card.
struct Slot {
    card: ScriptedCard,
    removed: bool,
}

impl Slot {
    fn new(text: &str) -> Self {
        let t = Transcript::parse(text).expect("shared transcript parses");
        let mut card = ScriptedCard::new(t, Matching::Lenient);
        assert!(card.power_on().is_some());
        Slot {
            card,
            removed: false,
        }
    }
}

impl CardChannel for Slot {
    type Error = FaultKind;
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, FaultKind> {
        if self.removed {
            return Err(FaultKind::CardRemoved);
        }
        self.card.transmit(command).ok_or(FaultKind::CardMute)
    }
}

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).expect("test hex")
}

/// The response data (without SW) of the `n`th GENERATE AC of a transcript.
fn gac_response(text: &str, n: usize) -> Vec<u8> {
    let t = Transcript::parse(text).expect("transcript");
    let e = t
        .exchanges
        .iter()
        .filter(|e| e.command.get(1) == Some(&0xAE))
        .nth(n)
        .expect("GENERATE AC in transcript");
    e.response[..e.response.len() - 2].to_vec()
}

fn terminal() -> TerminalData {
    let mut t = TerminalData::new([0x11, 0x22, 0x33, 0x44]);
    t.set_amount(1000);
    t
}

struct Read {
    app: SelectedApp,
    processing: Processing,
    card: CardData,
}

fn read(slot: &mut Slot, t: &TerminalData) -> Read {
    let mut chooser = |c: &[Candidate]| select::first_without_confirmation(c).or(Some(0));
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
fn transcript_responses_parse() {
    let mc1 = GacResponse::parse(&gac_response(MASTERCARD, 0), Step::GenerateAc1).expect("mc 1");
    assert_eq!(mc1.format, ResponseFormat::Format2);
    assert_eq!(mc1.cid, 0x80);
    assert_eq!(mc1.cryptogram_type(), Some(CryptogramType::Arqc));
    assert_eq!(mc1.atc, [0x00, 0x41]);
    assert_eq!(
        mc1.cryptogram,
        Some(hex("4573436B1E4B95DD").try_into().expect("8"))
    );
    assert_eq!(mc1.iad, hex("0110A00009248400000000000000000029FF"));
    assert_eq!(mc1.sdad, None);
    let mc2 = GacResponse::parse(&gac_response(MASTERCARD, 1), Step::GenerateAc2).expect("mc 2");
    assert_eq!(mc2.cid, 0x00);
    assert_eq!(mc2.cryptogram_type(), Some(CryptogramType::Aac));
    assert_eq!(
        mc2.cryptogram,
        Some(hex("C74D18B08248FEFC").try_into().expect("8"))
    );

    let up1 = GacResponse::parse(&gac_response(UPI, 0), Step::GenerateAc1).expect("upi 1");
    assert_eq!(up1.format, ResponseFormat::Format1);
    assert_eq!(up1.cryptogram_type(), Some(CryptogramType::Arqc));
    assert_eq!(up1.atc, [0x00, 0x06]);
    assert_eq!(
        up1.cryptogram,
        Some(hex("B04398D218017BF9").try_into().expect("8"))
    );
    assert_eq!(up1.iad, hex("07000103A0A80201"));
    let up2 = GacResponse::parse(&gac_response(UPI, 1), Step::GenerateAc2).expect("upi 2");
    assert_eq!(up2.cid, 0x40);
    assert_eq!(up2.cryptogram_type(), Some(CryptogramType::Tc));
    assert_eq!(
        up2.cryptogram,
        Some(hex("E5869B494D460AB4").try_into().expect("8"))
    );
    assert!(!up2.advice_required());
    // Debug never shows the cryptogram.
    assert!(!format!("{up2:?}").contains("E5869B"));
    assert!(!format!("{up2:?}").to_lowercase().contains("e5869b"));
}

#[test]
fn cdol1_data_has_the_length_the_card_asks_for() {
    let t = terminal();
    let mut slot = Slot::new(MASTERCARD);
    let r = read(&mut slot, &t);
    let cdol1 = r.card.cdol1().expect("8C");
    let data = gac::cdol_data(
        cdol1,
        &t,
        Tvr::ODA_NOT_PERFORMED,
        Tsi::empty(),
        &[],
        Step::GenerateAc1,
    )
    .expect("CDOL1");
    // The transcript's first GENERATE AC sent 0x2B bytes.
    assert_eq!(data.len(), 0x2B);
    // 9F02 first: amount 10.00.
    assert_eq!(data[..6], [0, 0, 0, 0, 0x10, 0x00]);
    // 95 after 9F02 9F03 9F1A.
    assert_eq!(data[14..19], [0x80, 0, 0, 0, 0]);
}

struct Done {
    record: TransactionRecord,
    outcome: online::OnlineOutcome,
    slot: Slot,
    tvr: Tvr,
}

/// The whole flow: selection, records, GAC1 ARQC, host approval, online processing, GAC2.
fn full_flow(text: &str, iad_91: Option<&str>) -> Done {
    let t = terminal();
    let mut slot = Slot::new(text);
    let r = read(&mut slot, &t);
    let mut tvr = Tvr::empty();
    let mut tsi = Tsi::CARD_RISK_MANAGEMENT_PERFORMED;
    let mut log: Vec<StepLog> = Vec::new();
    let g1 = gac::first_generate_ac(
        &mut slot,
        r.card.cdol1().expect("8C"),
        &t,
        tvr,
        tsi,
        gac::P1_ARQC,
        &mut log,
    )
    .expect("GAC1");
    assert_eq!(g1.response.cryptogram_type(), Some(CryptogramType::Arqc));
    let host = HostResponse {
        arc: *b"00",
        issuer_auth_data: iad_91.map(hex),
        scripts: Vec::new(),
    };
    let outcome = online::complete_online(
        &mut slot,
        r.processing.aip,
        r.card.cdol2().expect("8D"),
        &t,
        &host,
        gac::P1_TC,
        &mut tvr,
        &mut tsi,
        &mut log,
    )
    .expect("online processing");
    let mut t2 = t.clone();
    t2.set(tags::AUTH_RESPONSE_CODE, host.arc.to_vec());
    let record = TransactionRecord::new(
        &Sources {
            app: &r.app,
            processing: &r.processing,
            card: &r.card,
            terminal: &t2,
            gac: &g1.response,
            tvr,
            tsi,
        },
        log,
    );
    // Selection probes AIDs the card lacks (answered 6985); the cryptogram commands must
    // all have matched the transcript.
    let late: Vec<_> = slot
        .card
        .mismatches()
        .iter()
        .filter(|m| matches!(m.received.get(1), Some(0xAE | 0x82)))
        .collect();
    assert!(late.is_empty(), "{late:?}");
    Done {
        record,
        outcome,
        slot,
        tvr,
    }
}

fn check_icc_data(record: &TransactionRecord) {
    let objects = tlv::parse_all(record.icc_data()).expect("ICC data is TLV");
    let has = |t: u32| objects.iter().any(|o| o.tag == Tag::new(t));
    for t in [
        0x9F26, 0x9F27, 0x9F36, 0x95, 0x9F37, 0x9F02, 0x5F2A, 0x82, 0x84, 0x9A, 0x9C,
    ] {
        assert!(has(t), "tag {t:X} in ICC data");
    }
    let ac = objects
        .iter()
        .find(|o| o.tag == tags::APP_CRYPTOGRAM)
        .expect("9F26");
    assert_eq!(Some(ac.value), record.cryptogram.as_ref().map(|c| &c[..]));
}

fn check_no_pan(record: &TransactionRecord, pan: &str) {
    let debug = format!("{record:?}");
    let display = format!("{record}");
    for s in [&debug, &display] {
        assert!(!s.contains(pan), "full PAN shown: {s}");
        assert!(s.contains(&record.pan_masked.clone().expect("masked")));
    }
    assert!(
        !record
            .icc_data()
            .windows(8)
            .any(|w| w == hex(pan).as_slice())
    );
}

#[test]
fn mastercard_online_approval_puts_91_in_cdol2() {
    let d = full_flow(MASTERCARD, Some("11223344556677880000"));
    // AIP 5900: no issuer authentication by EXTERNAL AUTHENTICATE.
    assert_eq!(d.outcome.issuer_auth, IssuerAuth::InCdol2);
    let cdol2 = &d.outcome.gac2.cdol_data;
    assert_eq!(cdol2.len(), 0x1D);
    assert_eq!(cdol2[..12], hex("112233445566778800003030")[..]);
    assert_eq!(
        d.outcome.gac2.response.cryptogram_type(),
        Some(CryptogramType::Aac)
    );
    assert!(!d.tvr.contains(Tvr::ISSUER_AUTHENTICATION_FAILED));
    let r = &d.record;
    assert_eq!(r.pan_masked.as_deref(), Some("541333******0044"));
    assert_eq!(r.expiry.as_deref(), Some("141231"));
    assert_eq!(r.aid, hex("A0000000041010"));
    assert_eq!(r.label.as_deref(), Some("PPC MCD 04  v20"));
    assert_eq!(r.cid, 0x80);
    assert_eq!(
        r.cryptogram,
        Some(hex("4573436B1E4B95DD").try_into().expect("8"))
    );
    assert_eq!(r.atc, [0x00, 0x41]);
    assert_eq!(r.amount, Some(1000));
    assert_eq!(r.currency, Some(826));
    assert_eq!(r.arc, Some(*b"00"));
    assert_eq!(r.unpredictable_number, Some([0x11, 0x22, 0x33, 0x44]));
    check_icc_data(r);
    check_no_pan(r, "5413330089600044");
    let steps: Vec<Step> = r.steps.iter().map(|s| s.step).collect();
    assert_eq!(steps, [Step::GenerateAc1, Step::GenerateAc2]);
    assert!(d.slot.card.commands_answered() > 0);
}

#[test]
fn unionpay_external_authenticate_6700_sets_the_tvr_bit() {
    let d = full_flow(UPI, Some("1122334455667788"));
    assert_eq!(d.outcome.issuer_auth, IssuerAuth::Failed { sw: 0x6700 });
    assert!(d.tvr.contains(Tvr::ISSUER_AUTHENTICATION_FAILED));
    assert!(d.record.tsi.contains(Tsi::ISSUER_AUTHENTICATION_PERFORMED));
    // CDOL2: 8A first, TVR byte 5 with the failure bit.
    let cdol2 = &d.outcome.gac2.cdol_data;
    assert_eq!(cdol2.len(), 0x24);
    assert_eq!(cdol2[..2], *b"00");
    assert_eq!(cdol2[2 + 6 + 6 + 2 + 4] & 0x40, 0x40);
    let g2 = &d.outcome.gac2.response;
    assert_eq!(g2.cryptogram_type(), Some(CryptogramType::Tc));
    assert_eq!(g2.atc, [0x00, 0x06]);
    let r = &d.record;
    assert_eq!(r.pan_masked.as_deref(), Some("621094******0011"));
    assert_eq!(r.aid, hex("A000000333010102"));
    assert_eq!(r.label.as_deref(), Some("UICC CREDIT"));
    assert_eq!(
        r.cryptogram,
        Some(hex("B04398D218017BF9").try_into().expect("8"))
    );
    assert_eq!(r.atc, [0x00, 0x06]);
    assert_eq!(r.iad, hex("07000103A0A80201"));
    assert_eq!(r.tvr.to_bytes()[4] & 0x40, 0x40);
    check_icc_data(r);
    check_no_pan(r, "6210948000000011");
    let steps: Vec<Step> = r.steps.iter().map(|s| s.step).collect();
    assert_eq!(
        steps,
        [
            Step::GenerateAc1,
            Step::ExternalAuthenticate,
            Step::GenerateAc2
        ]
    );
    assert_eq!(r.steps[1].sw, Some(0x6700));
}

fn removed_at(text: &str, at_gac2: bool) -> EmvError {
    let t = terminal();
    let mut slot = Slot::new(text);
    let r = read(&mut slot, &t);
    let (mut tvr, mut tsi) = (Tvr::empty(), Tsi::empty());
    let mut log = Vec::new();
    if !at_gac2 {
        slot.removed = true;
    }
    let g1 = gac::first_generate_ac(
        &mut slot,
        r.card.cdol1().expect("8C"),
        &t,
        tvr,
        tsi,
        gac::P1_ARQC,
        &mut log,
    );
    let g1 = match g1 {
        Err(e) => return e,
        Ok(g) => g,
    };
    assert_eq!(g1.response.cryptogram_type(), Some(CryptogramType::Arqc));
    slot.removed = true;
    let host = HostResponse {
        arc: *b"00",
        issuer_auth_data: None,
        scripts: Vec::new(),
    };
    online::complete_online(
        &mut slot,
        r.processing.aip,
        r.card.cdol2().expect("8D"),
        &t,
        &host,
        gac::P1_TC,
        &mut tvr,
        &mut tsi,
        &mut log,
    )
    .expect_err("card removed")
}

#[test]
fn card_removed_during_gac1_or_gac2_names_the_step() {
    for text in [MASTERCARD, UPI] {
        let e = removed_at(text, false);
        assert_eq!(e.kind(), FaultKind::CardRemoved);
        assert_eq!(e.step(), Step::GenerateAc1);
        assert!(e.to_string().contains("first GENERATE AC"), "{e}");
        let e = removed_at(text, true);
        assert_eq!(e.kind(), FaultKind::CardRemoved);
        assert_eq!(e.step(), Step::GenerateAc2);
        assert!(e.to_string().contains("second GENERATE AC"), "{e}");
    }
}
