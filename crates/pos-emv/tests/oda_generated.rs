//! SDA, DDA and CDA with keys generated here: a test CA, an issuer and an ICC key, and
//! certificates signed with the raw RSA private operation in the Book 2 formats. Every
//! check is then made to fail on its own.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Keys, exponent, modulus, plain, sha1, sign};

use pos_emv::capk::CaPublicKey;
use pos_emv::oda::{self, OdaError, RsaKey, Signed};
use pos_emv::tlv::{self, Tag};
use pos_hal::{Fault, FaultKind};
use rsa::RsaPrivateKey;

const RID: [u8; 5] = [0xA0, 0, 0, 0, 0x99];
const PAN: &str = "5413330089600044";
const TODAY: (u8, u8) = (25, 6);
const STATIC: &[u8] = b"\x5A\x08\x54\x13\x33\x00\x89\x60\x00\x44\x5F\x24\x03\x30\x12\x31\x59\x00";

fn keys() -> &'static Keys {
    common::keys(0x0DA)
}

fn public(k: &RsaPrivateKey) -> RsaKey {
    RsaKey::new(&modulus(k), &exponent(k))
}

fn ca_entry(index: u8) -> CaPublicKey {
    let k = &keys().ca;
    CaPublicKey {
        rid: RID,
        index,
        exponent: exponent(k),
        modulus: modulus(k),
        expires: None,
    }
}

/// Certificate body for format 02 (issuer) or 04 (ICC); returns (body, remainder).
fn cert_body(
    format: u8,
    signer: &RsaPrivateKey,
    subject: &RsaPrivateKey,
    id: &[u8],
    expiry: [u8; 2],
) -> (Vec<u8>, Vec<u8>) {
    let n_len = modulus(signer).len();
    let key = modulus(subject);
    let room = n_len - if format == 2 { 36 } else { 42 };
    let mut body = vec![format];
    body.extend_from_slice(id);
    body.extend_from_slice(&expiry);
    body.extend_from_slice(&[0x12, 0x34, 0x56, 0x01, 0x01, key.len() as u8, 3]);
    let split = room.min(key.len());
    body.extend_from_slice(&key[..split]);
    (body, key[split..].to_vec())
}

struct IssuerCert {
    plain: Vec<u8>,
    remainder: Vec<u8>,
}

fn issuer_cert(expiry: [u8; 2]) -> IssuerCert {
    let k = keys();
    let (body, remainder) = cert_body(2, &k.ca, &k.issuer, &[0x54, 0x13, 0x33, 0xFF], expiry);
    let plain = plain(&k.ca, &body, &[&remainder, &exponent(&k.issuer)]);
    IssuerCert { plain, remainder }
}

fn recover_issuer(plain: &[u8], remainder: &[u8]) -> Result<RsaKey, OdaError> {
    let k = keys();
    oda::recover_issuer_key(
        &ca_entry(0x99),
        &sign(&k.ca, plain),
        Some(remainder),
        &exponent(&k.issuer),
        PAN,
        TODAY,
    )
}

fn icc_cert(expiry: [u8; 2], static_data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let k = keys();
    let pan = [0x54, 0x13, 0x33, 0x00, 0x89, 0x60, 0x00, 0x44, 0xFF, 0xFF];
    let (body, remainder) = cert_body(4, &k.issuer, &k.icc, &pan, expiry);
    let plain = plain(
        &k.issuer,
        &body,
        &[&remainder, &exponent(&k.icc), static_data],
    );
    (plain, remainder)
}

fn recover_icc(plain: &[u8], remainder: &[u8], static_data: &[u8]) -> Result<RsaKey, OdaError> {
    let k = keys();
    oda::recover_icc_key(
        &public(&k.issuer),
        &sign(&k.issuer, plain),
        Some(remainder),
        &exponent(&k.icc),
        static_data,
        PAN,
        TODAY,
    )
}

#[test]
fn issuer_and_icc_keys_are_recovered_with_remainders() {
    let k = keys();
    let c = issuer_cert([0x12, 0x30]);
    assert_eq!(c.remainder.len(), 20);
    let issuer = recover_issuer(&c.plain, &c.remainder).unwrap();
    assert_eq!(issuer, public(&k.issuer));
    let (plain, rem) = icc_cert([0x12, 0x30], STATIC);
    assert_eq!(rem.len(), 26);
    assert_eq!(recover_icc(&plain, &rem, STATIC).unwrap(), public(&k.icc));
    // Valid through the end of its month.
    let c = issuer_cert([0x06, 0x25]);
    assert!(recover_issuer(&c.plain, &c.remainder).is_ok());
}

#[test]
fn issuer_certificate_failures() {
    let c = issuer_cert([0x12, 0x30]);
    let iss = Signed::IssuerCertificate;
    let mut bad = c.plain.clone();
    *bad.last_mut().unwrap() = 0xBD;
    assert_eq!(
        recover_issuer(&bad, &c.remainder).unwrap_err(),
        OdaError::BadTrailer {
            what: iss,
            got: 0xBD
        }
    );
    let mut bad = c.plain.clone();
    bad[0] = 0x6B;
    assert_eq!(
        recover_issuer(&bad, &c.remainder).unwrap_err(),
        OdaError::BadHeader {
            what: iss,
            got: 0x6B
        }
    );
    let mut bad = c.plain.clone();
    bad[1] = 0x04;
    assert_eq!(
        recover_issuer(&bad, &c.remainder).unwrap_err(),
        OdaError::BadFormat {
            what: iss,
            expected: 2,
            got: 4
        }
    );
    let mut bad = c.plain.clone();
    let n = bad.len();
    bad[n - 2] ^= 0x01; // last hash byte
    assert_eq!(
        recover_issuer(&bad, &c.remainder).unwrap_err(),
        OdaError::HashMismatch { what: iss }
    );
    // A changed remainder (92) breaks the hash; a missing one is named.
    let mut rem = c.remainder.clone();
    rem[0] ^= 1;
    assert_eq!(
        recover_issuer(&c.plain, &rem).unwrap_err(),
        OdaError::HashMismatch { what: iss }
    );
    assert_eq!(
        recover_issuer(&c.plain, &[]).unwrap_err(),
        OdaError::RemainderLength {
            what: iss,
            expected: 20,
            got: 0
        }
    );
    let mut bad = c.plain.clone();
    bad[11] = 0x02; // hash algorithm
    let err = recover_issuer(&bad, &c.remainder).unwrap_err();
    assert_eq!(
        err,
        OdaError::UnsupportedAlgorithm {
            what: iss,
            hash: 2,
            pk: 1
        }
    );
    assert_eq!(err.kind(), FaultKind::CardUnsupported);
    // Expired (05/25, today is 06/25) and wrong PAN.
    let old = issuer_cert([0x05, 0x25]);
    assert_eq!(
        recover_issuer(&old.plain, &old.remainder).unwrap_err(),
        OdaError::Expired {
            what: iss,
            month: 5,
            year: 25
        }
    );
    let k = keys();
    let err = oda::recover_issuer_key(
        &ca_entry(0x99),
        &sign(&k.ca, &c.plain),
        Some(&c.remainder),
        &exponent(&k.issuer),
        "4761739001010010",
        TODAY,
    )
    .unwrap_err();
    assert_eq!(
        err,
        OdaError::IssuerIdMismatch {
            issuer_id: "541333".into()
        }
    );
    assert_eq!(err.kind(), FaultKind::Protocol);
    // Wrong length and a value not below the modulus.
    let sig = sign(&k.ca, &c.plain);
    assert_eq!(
        oda::recover_issuer_key(
            &ca_entry(0x99),
            &sig[1..],
            Some(&c.remainder),
            &[3],
            PAN,
            TODAY
        )
        .unwrap_err(),
        OdaError::KeyLengthMismatch {
            what: iss,
            key_len: 128,
            data_len: 127
        }
    );
    assert_eq!(
        oda::recover_issuer_key(
            &ca_entry(0x99),
            &[0xFF; 128],
            Some(&c.remainder),
            &[3],
            PAN,
            TODAY
        )
        .unwrap_err(),
        OdaError::SignatureNotBelowModulus { what: iss }
    );
    // Wrong CA index: not in the table.
    let table = pos_emv::capk::CaKeys::parse(&format!(
        "A000000099 99 {} {}",
        hex(&exponent(&k.ca)),
        hex(&modulus(&k.ca))
    ))
    .unwrap();
    assert!(oda::find_ca_key(&table, RID, 0x99).is_ok());
    let err = oda::find_ca_key(&table, RID, 0x98).unwrap_err();
    assert_eq!(
        err,
        OdaError::UnknownCaKey {
            rid: RID,
            index: 0x98
        }
    );
    assert_eq!(err.kind(), FaultKind::CardUnsupported);
}

fn hex(b: &[u8]) -> String {
    hex::encode_upper(b)
}

#[test]
fn icc_certificate_failures() {
    let icc = Signed::IccCertificate;
    let (plain, rem) = icc_cert([0x12, 0x30], STATIC);
    // Tampered record: the static data differs from what was signed.
    let mut tampered = STATIC.to_vec();
    tampered[3] ^= 0x10;
    assert_eq!(
        recover_icc(&plain, &rem, &tampered).unwrap_err(),
        OdaError::HashMismatch { what: icc }
    );
    let mut bad = plain.clone();
    bad[1] = 0x02;
    assert_eq!(
        recover_icc(&bad, &rem, STATIC).unwrap_err(),
        OdaError::BadFormat {
            what: icc,
            expected: 4,
            got: 2
        }
    );
    let (old, old_rem) = icc_cert([0x12, 0x24], STATIC);
    assert_eq!(
        recover_icc(&old, &old_rem, STATIC).unwrap_err(),
        OdaError::Expired {
            what: icc,
            month: 12,
            year: 24
        }
    );
    let k = keys();
    assert_eq!(
        oda::recover_icc_key(
            &public(&k.issuer),
            &sign(&k.issuer, &plain),
            Some(&rem),
            &exponent(&k.icc),
            STATIC,
            "5413330089600045",
            TODAY,
        )
        .unwrap_err(),
        OdaError::PanMismatch
    );
}

#[test]
fn sda_succeeds_and_fails_on_tampered_data() {
    let k = keys();
    let issuer = public(&k.issuer);
    let ssad = sign(
        &k.issuer,
        &plain(&k.issuer, &[0x03, 0x01, 0xDA, 0xC1], &[STATIC]),
    );
    assert_eq!(
        oda::verify_sda(&issuer, &ssad, STATIC).unwrap(),
        [0xDA, 0xC1]
    );
    let mut tampered = STATIC.to_vec();
    tampered[0] = 0x5B;
    assert_eq!(
        oda::verify_sda(&issuer, &ssad, &tampered).unwrap_err(),
        OdaError::HashMismatch {
            what: Signed::StaticData
        }
    );
    let mut bad = ssad.clone();
    bad[5] ^= 1;
    let err = oda::verify_sda(&issuer, &bad, STATIC).unwrap_err();
    assert!(
        matches!(
            err,
            OdaError::BadTrailer {
                what: Signed::StaticData,
                ..
            }
        ),
        "{err:?}"
    );
    // An SDAD (format 05) is not an SSAD.
    let sdad = sign(&k.issuer, &plain(&k.issuer, &[0x05, 0x01, 0x00], &[STATIC]));
    assert_eq!(
        oda::verify_sda(&issuer, &sdad, STATIC).unwrap_err(),
        OdaError::BadFormat {
            what: Signed::StaticData,
            expected: 3,
            got: 5
        }
    );
}

#[test]
fn dda_succeeds_and_fails_on_another_unpredictable_number() {
    let k = keys();
    let icc = public(&k.icc);
    let un = [0xDE, 0xAD, 0xBE, 0xEF];
    let dynamic = [0x04, 0x11, 0x22, 0x33, 0x44];
    let mut body = vec![0x05, 0x01, dynamic.len() as u8];
    body.extend_from_slice(&dynamic);
    let sdad = sign(&k.icc, &plain(&k.icc, &body, &[&un]));
    assert_eq!(oda::verify_dda(&icc, &sdad, &un).unwrap(), dynamic);
    assert_eq!(
        oda::verify_dda(&icc, &sdad, &[0, 0, 0, 0]).unwrap_err(),
        OdaError::HashMismatch {
            what: Signed::DynamicData
        }
    );
    // An ICC dynamic data length running into the hash.
    let bad = sign(&k.icc, &plain(&k.icc, &[0x05, 0x01, 0x60], &[&un]));
    assert!(matches!(
        oda::verify_dda(&icc, &bad, &un).unwrap_err(),
        OdaError::Malformed {
            what: Signed::DynamicData,
            ..
        }
    ));
    // Signed with the issuer key: wrong length for the ICC key.
    let other = sign(&k.issuer, &plain(&k.issuer, &body, &[&un]));
    assert_eq!(
        oda::verify_dda(&icc, &other, &un).unwrap_err(),
        OdaError::KeyLengthMismatch {
            what: Signed::DynamicData,
            key_len: 96,
            data_len: 112
        }
    );
}

const CRYPTOGRAM: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

/// A GENERATE AC response (77 value) with CDA, signed over `un` and `tx_data`.
fn gac_response(cid: u8, un: &[u8], tx_data: &[u8]) -> Vec<u8> {
    let k = keys();
    let mut before = Vec::new();
    tlv::encode(Tag::new(0x9F27), &[cid], &mut before);
    tlv::encode(Tag::new(0x9F36), &[0x00, 0x41], &mut before);
    let mut after = Vec::new();
    tlv::encode(Tag::new(0x9F10), &[0x01, 0x10, 0xA0, 0x00], &mut after);
    let tdhc = sha1(&[tx_data, &before, &after]);
    let mut dynamic = vec![0x02, 0xAB, 0xCD, cid];
    dynamic.extend_from_slice(&CRYPTOGRAM);
    dynamic.extend_from_slice(&tdhc);
    let mut body = vec![0x05, 0x01, dynamic.len() as u8];
    body.extend_from_slice(&dynamic);
    let sdad = sign(&k.icc, &plain(&k.icc, &body, &[un]));
    let mut out = before;
    tlv::encode(Tag::new(0x9F4B), &sdad, &mut out);
    out.extend_from_slice(&after);
    out
}

#[test]
fn cda_succeeds_and_each_check_fails_alone() {
    let k = keys();
    let icc = public(&k.icc);
    let un = [0x11, 0x22, 0x33, 0x44];
    let tx = b"\x00\x00\x00\x00\x10\x00pdol-and-cdol1-values\x11\x22\x33\x44";
    let resp = gac_response(0x80, &un, tx);
    let r = oda::verify_cda(&icc, &resp, &un, tx).unwrap();
    assert_eq!(r.cid, 0x80);
    assert_eq!(r.cryptogram, CRYPTOGRAM);
    assert_eq!(r.icc_dynamic_number, [0xAB, 0xCD]);

    // Another amount in the transaction data.
    let mut other_tx = tx.to_vec();
    other_tx[4] = 0x20;
    assert_eq!(
        oda::verify_cda(&icc, &resp, &un, &other_tx).unwrap_err(),
        OdaError::TransactionHashMismatch
    );
    // Another unpredictable number.
    assert_eq!(
        oda::verify_cda(&icc, &resp, &[0; 4], tx).unwrap_err(),
        OdaError::HashMismatch {
            what: Signed::DynamicData
        }
    );
    // The CID in the response changed (ARQC to TC) after signing.
    let mut changed = resp.clone();
    assert_eq!(&changed[..3], &[0x9F, 0x27, 0x01]);
    changed[3] = 0x40;
    assert_eq!(
        oda::verify_cda(&icc, &changed, &un, tx).unwrap_err(),
        OdaError::CidMismatch {
            signed: 0x80,
            response: 0x40
        }
    );
    // A data object outside 9F4B changed.
    let mut changed = resp.clone();
    let n = changed.len();
    changed[n - 1] ^= 1;
    assert_eq!(
        oda::verify_cda(&icc, &changed, &un, tx).unwrap_err(),
        OdaError::TransactionHashMismatch
    );
    // No 9F4B, no 9F27, not TLV.
    let mut no_sdad = Vec::new();
    tlv::encode(Tag::new(0x9F27), &[0x80], &mut no_sdad);
    assert!(matches!(
        oda::verify_cda(&icc, &no_sdad, &un, tx).unwrap_err(),
        OdaError::MissingData(_)
    ));
    assert!(matches!(
        oda::verify_cda(&icc, &resp[4..], &un, tx).unwrap_err(),
        OdaError::MissingData(_)
    ));
    assert!(matches!(
        oda::verify_cda(&icc, &[0x9F, 0x4B, 0x81], &un, tx).unwrap_err(),
        OdaError::MissingData(_)
    ));
}

#[test]
fn static_data_follows_the_afl() {
    let rec1 = [0x70, 0x03, 0x5A, 0x01, 0x99];
    let rec2 = [0x70, 0x02, 0x9F, 0x01];
    let sfi11 = [0x70, 0x01, 0x42];
    let records = [
        oda::Record {
            sfi: 1,
            number: 1,
            data: &rec1,
        },
        oda::Record {
            sfi: 1,
            number: 2,
            data: &rec2,
        },
        oda::Record {
            sfi: 11,
            number: 1,
            data: &sfi11,
        },
    ];
    // SFI 1 records 1-2, first one for ODA; SFI 11 record 1 for ODA.
    let afl = [0x08, 1, 2, 1, 0x58, 1, 1, 1];
    let d = oda::static_data(&afl, &records, Some(&[0x82]), [0x59, 0x00]).unwrap();
    assert_eq!(d, [0x5A, 0x01, 0x99, 0x70, 0x01, 0x42, 0x59, 0x00]);
    assert!(oda::static_data(&afl, &records[..2], None, [0; 2]).is_err());
    assert!(oda::static_data(&afl[..3], &records, None, [0; 2]).is_err());
    assert!(oda::static_data(&afl, &records, Some(&[0x9F, 0x02]), [0; 2]).is_err());
    let not_70 = [oda::Record {
        sfi: 1,
        number: 1,
        data: &[0x71, 0x00],
    }];
    assert!(oda::static_data(&[0x08, 1, 1, 1], &not_70, None, [0; 2]).is_err());
}
