//! The whole transaction ([`pos_emv::transaction::run`]) with a card that *passes* offline
//! data authentication: a virtual card with generated RSA keys (test CA, issuer, ICC) that
//! signs INTERNAL AUTHENTICATE and GENERATE AC answers over what the terminal actually sent
//! (the shared transcripts cannot do that: their CA keys are missing or their certificates
//! expired).

mod common;

use common::{Keys, exponent, modulus, sha1, signed};

use pos_emv::capk::CaKeys;
use pos_emv::gac::CryptogramType;
use pos_emv::record::TransactionRecord;
use pos_emv::select::SupportedAid;
use pos_emv::terminal::TerminalData;
use pos_emv::tlv::{self, Tag};
use pos_emv::transaction::{
    self, HostAnswer, OdaMethod, OnlineDecision, TransactionConfig, TransactionDecision,
};
use pos_emv::tvr::{Tsi, Tvr};
use pos_hal::FaultKind;
use rsa::RsaPrivateKey;

const AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x00, 0x99, 0x10, 0x10];
const PAN_5A: [u8; 8] = [0x54, 0x13, 0x33, 0x00, 0x89, 0x60, 0x00, 0x44];
const CRYPTOGRAM: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
/// 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37: the unpredictable number at 25..29.
const CDOL1: [u8; 24] = [
    0x9F, 0x02, 0x06, 0x9F, 0x03, 0x06, 0x9F, 0x1A, 0x02, 0x95, 0x05, 0x5F, 0x2A, 0x02, 0x9A, 0x03,
    0x9C, 0x01, 0x9F, 0x37, 0x04, 0x00, 0x00, 0x00,
];
/// 8A 95 9F37: the unpredictable number at 7..11.
const CDOL2: [u8; 8] = [0x8A, 0x02, 0x95, 0x05, 0x9F, 0x37, 0x04, 0x00];

fn keys() -> &'static Keys {
    common::keys(0x7A7)
}

fn hex(b: &[u8]) -> String {
    hex::encode_upper(b)
}

/// A certificate (format 02 issuer, 04 ICC) of `subject` signed by `signer`, and the
/// remainder; `extra` is hashed after the remainder and exponent.
fn certificate(
    format: u8,
    signer: &RsaPrivateKey,
    subject: &RsaPrivateKey,
    id: &[u8],
    static_data: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let room = modulus(signer).len() - if format == 2 { 36 } else { 42 };
    let key = modulus(subject);
    let mut body = vec![format];
    body.extend_from_slice(id);
    body.extend_from_slice(&[0x12, 0x30]); // expires 12/30
    body.extend_from_slice(&[0x12, 0x34, 0x56, 0x01, 0x01, key.len() as u8, 3]);
    let split = room.min(key.len());
    body.extend_from_slice(&key[..split]);
    let remainder = key[split..].to_vec();
    let cert = signed(
        signer,
        &body,
        &[&remainder, &exponent(subject), static_data],
    );
    (cert, remainder)
}

fn record(objects: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut v = Vec::new();
    for (t, value) in objects {
        tlv::encode(Tag::new(*t), value, &mut v);
    }
    let mut out = Vec::new();
    tlv::encode(Tag::new(0x70), &v, &mut out);
    out
}

/// How the virtual card behaves.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Sda,
    Dda,
    Cda,
    /// CDA, with the GENERATE AC answer changed after signing.
    CdaTampered,
}

/// A card that computes its signatures from the commands it gets.
struct Card {
    mode: Mode,
    aip: [u8; 2],
    records: Vec<Vec<u8>>,
    cdol1_data: Vec<u8>,
    sent: Vec<Vec<u8>>,
}

impl Card {
    fn new(mode: Mode) -> Card {
        let k = keys();
        let aip = match mode {
            Mode::Sda => [0x58, 0x00],
            Mode::Dda => [0x38, 0x00],
            Mode::Cda | Mode::CdaTampered => [0x59, 0x00],
        };
        let r1 = record(&[
            (0x5A, PAN_5A.to_vec()),
            (0x5F24, vec![0x30, 0x12, 0x31]),
            (0x8C, CDOL1[..21].to_vec()),
            (0x8D, CDOL2[..7].to_vec()),
            (0x9F4A, vec![0x82]),
            (0x8E, vec![0, 0, 0, 0, 0, 0, 0, 0, 0x1E, 0x03]),
        ]);
        // Static data: record 1's template value, then the AIP (9F4A = 82).
        let mut static_data = tlv::parse_single(&r1).expect("70").value.to_vec();
        static_data.extend_from_slice(&aip);
        let (icert, irem) = certificate(2, &k.ca, &k.issuer, &[0x54, 0x13, 0x33, 0xFF], &[]);
        let mut pan_id = PAN_5A.to_vec();
        pan_id.extend_from_slice(&[0xFF, 0xFF]);
        let (ccert, crem) = certificate(4, &k.issuer, &k.icc, &pan_id, &static_data);
        let r2 = record(&[
            (0x8F, vec![0x99]),
            (0x90, icert),
            (0x92, irem),
            (0x9F32, exponent(&k.issuer)),
        ]);
        let mut r3 = vec![(0x9F46, ccert), (0x9F47, exponent(&k.icc)), (0x9F48, crem)];
        if mode == Mode::Sda {
            let ssad = signed(&k.issuer, &[0x03, 0x01, 0xDA, 0xC0], &[&static_data]);
            r3 = vec![(0x93, ssad)];
        }
        Card {
            mode,
            aip,
            records: vec![r1, r2, record(&r3)],
            cdol1_data: Vec::new(),
            sent: Vec::new(),
        }
    }

    fn ins(&self, ins: u8) -> Vec<&Vec<u8>> {
        self.sent
            .iter()
            .filter(|c| c.get(1) == Some(&ins))
            .collect()
    }

    fn generate_ac(&mut self, p1: u8, data: &[u8]) -> Vec<u8> {
        let cid = p1 & 0xC0;
        let second = !self.cdol1_data.is_empty();
        let mut tx = self.cdol1_data.clone();
        if second {
            tx.extend_from_slice(data);
        } else {
            self.cdol1_data = data.to_vec();
            tx = data.to_vec();
        }
        let un = if second { &data[7..11] } else { &data[25..29] };
        if p1 & 0x10 == 0 || cid == 0x00 {
            let mut v = vec![cid, 0x00, 0x07];
            v.extend_from_slice(&CRYPTOGRAM);
            v.extend_from_slice(&[0x06, 0x01, 0x0A, 0x03]);
            let mut out = Vec::new();
            tlv::encode(Tag::new(0x80), &v, &mut out);
            return out;
        }
        let mut before = Vec::new();
        tlv::encode(Tag::new(0x9F27), &[cid], &mut before);
        tlv::encode(Tag::new(0x9F36), &[0x00, 0x07], &mut before);
        let mut after = Vec::new();
        tlv::encode(Tag::new(0x9F10), &[0x06, 0x01, 0x0A, 0x03], &mut after);
        let tdhc = sha1(&[&tx, &before, &after]);
        let mut dynamic = vec![0x02, 0xAB, 0xCD, cid];
        dynamic.extend_from_slice(&CRYPTOGRAM);
        dynamic.extend_from_slice(&tdhc);
        let mut body = vec![0x05, 0x01, dynamic.len() as u8];
        body.extend_from_slice(&dynamic);
        let sdad = signed(&keys().icc, &body, &[un]);
        let mut v = before;
        tlv::encode(Tag::new(0x9F4B), &sdad, &mut v);
        v.extend_from_slice(&after);
        if self.mode == Mode::CdaTampered {
            let n = v.len();
            v[n - 1] ^= 1;
        }
        let mut out = Vec::new();
        tlv::encode(Tag::new(0x77), &v, &mut out);
        out
    }

    fn answer(&mut self, c: &[u8]) -> Vec<u8> {
        let data = c
            .get(5..5 + usize::from(*c.get(4).unwrap_or(&0)))
            .unwrap_or_default();
        match (c[1], c[2], c[3]) {
            (0xA4, _, p2) if p2 & 0x02 == 0 && data.len() >= 5 && AID.starts_with(data) => {
                let mut a5 = Vec::new();
                tlv::encode(Tag::new(0x50), b"GEN TEST", &mut a5);
                let mut v = Vec::new();
                tlv::encode(Tag::new(0x84), &AID, &mut v);
                tlv::encode(Tag::new(0xA5), &a5, &mut v);
                let mut out = Vec::new();
                tlv::encode(Tag::new(0x6F), &v, &mut out);
                out
            }
            (0xA4, _, _) => return vec![0x6A, 0x82],
            (0xA8, _, _) => {
                let mut v = Vec::new();
                tlv::encode(Tag::new(0x82), &self.aip, &mut v);
                tlv::encode(Tag::new(0x94), &[0x08, 0x01, 0x03, 0x01], &mut v);
                let mut out = Vec::new();
                tlv::encode(Tag::new(0x77), &v, &mut out);
                out
            }
            (0xB2, n @ 1..=3, 0x0C) => self.records[usize::from(n) - 1].clone(),
            (0x88, _, _) => {
                let dynamic = [0x04, 0x11, 0x22, 0x33, 0x44];
                let mut body = vec![0x05, 0x01, dynamic.len() as u8];
                body.extend_from_slice(&dynamic);
                let sdad = signed(&keys().icc, &body, &[data]);
                let mut out = Vec::new();
                tlv::encode(Tag::new(0x80), &sdad, &mut out);
                out
            }
            (0xAE, p1, _) => self.generate_ac(p1, data),
            _ => return vec![0x6D, 0x00],
        }
        .into_iter()
        .chain([0x90, 0x00])
        .collect()
    }
}

impl pos_hal::CardChannel for Card {
    type Error = FaultKind;
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, FaultKind> {
        self.sent.push(command.to_vec());
        Ok(self.answer(command))
    }
}

fn config() -> TransactionConfig {
    let k = keys();
    let ca = format!(
        "A000000099 99 {} {}\n",
        hex(&exponent(&k.ca)),
        hex(&modulus(&k.ca))
    );
    let mut c = TransactionConfig::new(
        TerminalData::new([0x11, 0x22, 0x33, 0x44]),
        1000,
        CaKeys::parse(&ca).expect("generated CA key"),
    );
    c.supported_aids = vec![SupportedAid::new(&AID[..5], true)];
    c
}

fn run(
    mode: Mode,
) -> (
    transaction::TransactionOutcome,
    Vec<TransactionRecord>,
    Card,
) {
    let mut card = Card::new(mode);
    let mut seen = Vec::new();
    let mut host = |r: &TransactionRecord| {
        seen.push(r.clone());
        OnlineDecision::Approved {
            arc: *b"00",
            issuer_auth_data: None,
            scripts: Vec::new(),
        }
    };
    let out = transaction::run(&mut card, &config(), &mut host).expect("transaction completes");
    (out, seen, card)
}

const ODA_BITS: Tvr = Tvr::ODA_NOT_PERFORMED
    .union(Tvr::SDA_FAILED)
    .union(Tvr::DDA_FAILED)
    .union(Tvr::CDA_FAILED)
    .union(Tvr::ICC_DATA_MISSING);

#[test]
fn sda_passes() {
    let (out, _, _) = run(Mode::Sda);
    assert_eq!(out.oda.method, OdaMethod::Sda);
    assert!(out.oda.ok, "{:?}", out.oda.detail);
    assert!(out.tvr.contains(Tvr::SDA_SELECTED));
    assert!(!out.tvr.intersects(ODA_BITS));
    assert!(out.tsi.contains(Tsi::ODA_PERFORMED));
    assert_eq!(out.decision, TransactionDecision::ApprovedOnline);
}

#[test]
fn dda_passes_with_the_default_ddol() {
    let (out, _, card) = run(Mode::Dda);
    assert_eq!(out.oda.method, OdaMethod::Dda);
    assert!(out.oda.ok, "{:?}", out.oda.detail);
    assert!(!out.tvr.intersects(ODA_BITS | Tvr::SDA_SELECTED));
    assert!(out.tsi.contains(Tsi::ODA_PERFORMED));
    // INTERNAL AUTHENTICATE with the default DDOL 9F37 04: the unpredictable number.
    let ia = card.ins(0x88);
    assert_eq!(ia.len(), 1);
    assert_eq!(ia[0][4..9], [0x04, 0x11, 0x22, 0x33, 0x44]);
    assert_eq!(out.decision, TransactionDecision::ApprovedOnline);
    assert_eq!(out.record.cryptogram_type, Some(CryptogramType::Tc));
}

#[test]
fn cda_passes_and_recovers_the_cryptograms() {
    let (out, seen, card) = run(Mode::Cda);
    assert_eq!(out.oda.method, OdaMethod::Cda);
    assert!(out.oda.ok, "{:?}", out.oda.detail);
    assert!(!out.tvr.intersects(ODA_BITS));
    // Both GENERATE ACs asked with the CDA bit; no INTERNAL AUTHENTICATE.
    let gacs = card.ins(0xAE);
    assert_eq!((gacs[0][2], gacs[1][2]), (0x90, 0x50));
    assert!(card.ins(0x88).is_empty());
    // The cryptogram came only inside 9F4B; the flow recovered it for the host and
    // for clearing.
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].cryptogram, Some(CRYPTOGRAM));
    assert_eq!(seen[0].pan_masked.as_deref(), Some("541333******0044"));
    assert_eq!(out.record.cryptogram, Some(CRYPTOGRAM));
    assert_eq!(out.record.cryptogram_type, Some(CryptogramType::Tc));
    assert_eq!(out.decision, TransactionDecision::ApprovedOnline);
    assert_eq!(out.host, HostAnswer::Approved(*b"00"));
}

#[test]
fn cda_signature_failing_on_the_arqc_declines_without_the_host() {
    let (out, seen, card) = run(Mode::CdaTampered);
    assert_eq!(out.oda.method, OdaMethod::Cda);
    assert!(!out.oda.ok);
    assert!(out.tvr.contains(Tvr::CDA_FAILED));
    assert!(
        seen.is_empty(),
        "an ARQC whose CDA failed is not sent online"
    );
    let gacs = card.ins(0xAE);
    assert_eq!((gacs[0][2], gacs[1][2]), (0x90, 0x00));
    // CDOL2 starts with 8A Z1 (declined offline).
    assert_eq!(gacs[1][5..7], *b"Z1");
    assert_eq!(out.decision, TransactionDecision::DeclinedOffline);
    assert_eq!(out.host, HostAnswer::NotAsked);
    assert!(!out.needs_reversal());
}
