//! Offline data authentication on real data: the Mastercard test card transcript
//! (tests/data/contact-mastercard.apdu) and the shipped Mastercard TEST CA key EF.
#![allow(clippy::unwrap_used)]

use pos_emv::capk::CaKeys;
use pos_emv::oda::{self, OdaError, Record, Signed};
use pos_emv::tlv::{self, Tag};
use pos_emv::transcript::Transcript;

const TRANSCRIPT: &str = include_str!("data/contact-mastercard.apdu");
const KEYS: &str = include_str!("../data/ca-keys-test.txt");

struct Card {
    records: Vec<(u8, u8, Vec<u8>)>,
    afl: Vec<u8>,
    aip: [u8; 2],
}

impl Card {
    fn load() -> Card {
        let t = Transcript::parse(TRANSCRIPT).unwrap();
        let mut card = Card {
            records: Vec::new(),
            afl: Vec::new(),
            aip: [0; 2],
        };
        for x in &t.exchanges {
            let data = &x.response[..x.response.len() - 2];
            match x.header() {
                [0x80, 0xA8, ..] => {
                    let gpo = tlv::parse_template(data, Tag::new(0x77)).unwrap();
                    let children = gpo.children().collect::<Result<Vec<_>, _>>().unwrap();
                    for c in children {
                        match c.tag.raw() {
                            0x82 => card.aip = c.value.try_into().unwrap(),
                            0x94 => card.afl = c.value.to_vec(),
                            _ => {}
                        }
                    }
                }
                [0x00, 0xB2, p1, p2] => card.records.push((*p2 >> 3, *p1, data.to_vec())),
                _ => {}
            }
        }
        card
    }

    fn tag(&self, raw: u32) -> Option<Vec<u8>> {
        self.records.iter().find_map(|(_, _, r)| {
            tlv::find(r, Tag::new(raw))
                .unwrap()
                .map(|t| t.value.to_vec())
        })
    }

    fn static_data(&self) -> Vec<u8> {
        let records: Vec<Record<'_>> = self
            .records
            .iter()
            .map(|(sfi, number, data)| Record {
                sfi: *sfi,
                number: *number,
                data,
            })
            .collect();
        oda::static_data(&self.afl, &records, self.tag(0x9F4A).as_deref(), self.aip).unwrap()
    }
}

const MC_RID: [u8; 5] = [0xA0, 0, 0, 0, 0x04];

#[test]
fn issuer_and_icc_keys_recover_from_the_mastercard_test_card() {
    let card = Card::load();
    // AIP 5900: SDA (40) and CDA (01) supported; AFL marks one record for ODA (SFI 2 rec 2).
    assert_eq!(card.aip, [0x59, 0x00]);
    assert_eq!(&card.afl[..4], &[0x10, 0x02, 0x02, 0x01]);
    let keys = CaKeys::parse(KEYS).unwrap();
    let index = card.tag(0x8F).unwrap();
    assert_eq!(index, [0xEF]);
    let ca = oda::find_ca_key(&keys, MC_RID, index[0]).unwrap();
    let pan = oda::pan_digits(&card.tag(0x5A).unwrap()).unwrap();
    assert_eq!(pan, "5413330089600044");

    let issuer = oda::recover_issuer_key(
        ca,
        &card.tag(0x90).unwrap(),
        card.tag(0x92).as_deref(),
        &card.tag(0x9F32).unwrap(),
        &pan,
        (14, 12),
    )
    .unwrap();
    assert_eq!(issuer.len(), 144);
    assert_eq!(issuer.exponent(), [1, 0, 1]);

    let static_data = card.static_data();
    // The value of the SFI 2 record 2 template, then the AIP.
    assert_eq!(&static_data[..2], &[0x5A, 0x08]);
    assert_eq!(&static_data[static_data.len() - 2..], &[0x59, 0x00]);

    let remainder = card.tag(0x9F48).unwrap();
    let icc = oda::recover_icc_key(
        &issuer,
        &card.tag(0x9F46).unwrap(),
        Some(&remainder),
        &card.tag(0x9F47).unwrap(),
        &static_data,
        &pan,
        (14, 12),
    )
    .unwrap();
    assert_eq!(icc.len(), 144);
    assert_eq!(
        &icc.modulus()[icc.len() - remainder.len()..],
        remainder.as_slice()
    );
    assert_eq!(icc.exponent(), [1, 0, 1]);
}

#[test]
fn real_certificates_fail_the_right_checks() {
    let card = Card::load();
    let keys = CaKeys::parse(KEYS).unwrap();
    let ca = keys.get(MC_RID, 0xEF).unwrap();
    let cert = card.tag(0x90).unwrap();
    let exp = card.tag(0x9F32).unwrap();
    let pan = "5413330089600044";
    let issuer =
        |cert: &[u8], pan: &str, today| oda::recover_issuer_key(ca, cert, None, &exp, pan, today);
    // The issuer certificate expired at the end of 12/2014.
    assert_eq!(
        issuer(&cert, pan, (15, 1)).unwrap_err(),
        OdaError::Expired {
            what: Signed::IssuerCertificate,
            month: 12,
            year: 14
        }
    );
    // Its issuer identifier is 54133300: another PAN does not match.
    assert_eq!(
        issuer(&cert, "5413340089600044", (14, 1)).unwrap_err(),
        OdaError::IssuerIdMismatch {
            issuer_id: "54133300".into()
        }
    );
    // Another CA key of the same length recovers garbage.
    let visa94 = keys.get([0xA0, 0, 0, 0, 0x03], 0x94).unwrap();
    let err = oda::recover_issuer_key(visa94, &cert, None, &exp, pan, (14, 1)).unwrap_err();
    assert!(
        matches!(
            err,
            OdaError::BadTrailer { .. } | OdaError::SignatureNotBelowModulus { .. }
        ),
        "{err:?}"
    );
    // The card's index with the wrong RID is not in the table.
    assert_eq!(
        oda::find_ca_key(&keys, [0xA0, 0, 0, 0, 0x03], 0xEF).unwrap_err(),
        OdaError::UnknownCaKey {
            rid: [0xA0, 0, 0, 0, 0x03],
            index: 0xEF
        }
    );
    // A tampered ODA record breaks the ICC certificate's hash.
    let issuer_key = issuer(&cert, pan, (14, 1)).unwrap();
    let mut static_data = card.static_data();
    static_data[10] ^= 1;
    assert_eq!(
        oda::recover_icc_key(
            &issuer_key,
            &card.tag(0x9F46).unwrap(),
            card.tag(0x9F48).as_deref(),
            &card.tag(0x9F47).unwrap(),
            &static_data,
            pan,
            (14, 1),
        )
        .unwrap_err(),
        OdaError::HashMismatch {
            what: Signed::IccCertificate
        }
    );
    // Without the ICC key remainder (9F48) the key is incomplete.
    assert_eq!(
        oda::recover_icc_key(
            &issuer_key,
            &card.tag(0x9F46).unwrap(),
            None,
            &card.tag(0x9F47).unwrap(),
            &card.static_data(),
            pan,
            (14, 1),
        )
        .unwrap_err(),
        OdaError::RemainderLength {
            what: Signed::IccCertificate,
            expected: 42,
            got: 0
        }
    );
}
