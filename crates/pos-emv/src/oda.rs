//! Offline data authentication (EMV 4.3 Book 2): SDA, DDA and CDA with RSA and SHA-1.
//!
//! The chain of trust: the scheme's CA key ([`crate::capk`]) recovers the issuer public key
//! from its certificate (tag `90`, [`recover_issuer_key`]); the issuer key checks the signed
//! static application data (tag `93`, SDA, [`verify_sda`]) or recovers the ICC public key
//! from its certificate (tag `9F46`, [`recover_icc_key`]); the ICC key checks the signed
//! dynamic application data (tag `9F4B`) of INTERNAL AUTHENTICATE (DDA, [`verify_dda`]) or
//! of GENERATE AC (CDA, [`verify_cda`]).
//!
//! EMV signatures are RSA with message *recovery*: the terminal computes `s^e mod n` and
//! checks the recovered bytes (header `6A`, format, SHA-1 hash, trailer `BC`); this is not
//! PKCS#1 verification. The RSA public operation uses `num-bigint-dig` (the bignum under
//! RustCrypto's `rsa` crate; only public data goes through it), SHA-1 RustCrypto's `sha1`.
//!
//! Nothing here panics on card bytes: every check that fails is an [`OdaError`] naming it.
//!
//! # Fault kind
//! [`OdaError::UnknownCaKey`] and [`OdaError::UnsupportedAlgorithm`] are
//! [`FaultKind::CardUnsupported`] (this terminal cannot authenticate that card); every other
//! failure is [`FaultKind::Protocol`] (the card's data did not pass a check). Either way the
//! transaction flow records the failure in the TVR ("SDA/DDA/CDA failed") and goes on to
//! terminal action analysis: an ODA failure is not a reason to stop talking to the card.

use std::fmt;

use num_bigint_dig::BigUint;
use pos_hal::{Fault, FaultKind};
use sha1::{Digest, Sha1};

use crate::capk::{CaKeys, CaPublicKey};
use crate::tlv::{self, Tag};

/// Length of a SHA-1 hash.
const HASH_LEN: usize = 20;
/// Hash algorithm indicator for SHA-1.
const HASH_SHA1: u8 = 0x01;
/// Public key algorithm indicator for RSA.
const PK_RSA: u8 = 0x01;

/// An RSA public key (modulus and exponent, big-endian bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct RsaKey {
    modulus: Vec<u8>,
    exponent: Vec<u8>,
}

impl fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RsaKey {{ bits: {}, exponent: {} }}",
            self.modulus.len() * 8,
            hex::encode_upper(&self.exponent)
        )
    }
}

impl RsaKey {
    /// A key from its modulus and exponent (leading zero bytes of the modulus are dropped:
    /// the modulus length is the signature length).
    pub fn new(modulus: &[u8], exponent: &[u8]) -> RsaKey {
        let start = modulus
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(modulus.len());
        RsaKey {
            modulus: modulus.get(start..).unwrap_or_default().to_vec(),
            exponent: exponent.to_vec(),
        }
    }

    /// The key of a CA public key table entry.
    pub fn from_ca(ca: &CaPublicKey) -> RsaKey {
        RsaKey::new(&ca.modulus, &ca.exponent)
    }

    /// The modulus, big-endian.
    pub fn modulus(&self) -> &[u8] {
        &self.modulus
    }

    /// The exponent, big-endian.
    pub fn exponent(&self) -> &[u8] {
        &self.exponent
    }

    /// The modulus length in bytes (the length of every signature made with the key).
    pub fn len(&self) -> usize {
        self.modulus.len()
    }

    /// True for a key with an empty modulus (never a usable key).
    pub fn is_empty(&self) -> bool {
        self.modulus.is_empty()
    }

    /// The raw RSA public operation `sig^e mod n`, as many bytes as the modulus.
    fn recover(&self, what: Signed, sig: &[u8]) -> Result<Vec<u8>, OdaError> {
        let n_len = self.modulus.len();
        if n_len == 0 || sig.len() != n_len {
            return Err(OdaError::KeyLengthMismatch {
                what,
                key_len: n_len,
                data_len: sig.len(),
            });
        }
        let n = BigUint::from_bytes_be(&self.modulus);
        let s = BigUint::from_bytes_be(sig);
        if s >= n {
            return Err(OdaError::SignatureNotBelowModulus { what });
        }
        let m = s.modpow(&BigUint::from_bytes_be(&self.exponent), &n);
        let bytes = m.to_bytes_be();
        let mut out = vec![0u8; n_len.saturating_sub(bytes.len())];
        out.extend_from_slice(&bytes);
        Ok(out)
    }
}

/// Which signed object a check was on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signed {
    /// Issuer public key certificate (tag `90`), format `02`.
    IssuerCertificate,
    /// ICC public key certificate (tag `9F46`), format `04`.
    IccCertificate,
    /// Signed static application data (tag `93`, SDA), format `03`.
    StaticData,
    /// Signed dynamic application data (tag `9F4B`, DDA or CDA), format `05`.
    DynamicData,
}

impl Signed {
    fn format(self) -> u8 {
        match self {
            Signed::IssuerCertificate => 0x02,
            Signed::StaticData => 0x03,
            Signed::IccCertificate => 0x04,
            Signed::DynamicData => 0x05,
        }
    }
}

impl fmt::Display for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signed::IssuerCertificate => "issuer public key certificate (90)",
            Signed::IccCertificate => "ICC public key certificate (9F46)",
            Signed::StaticData => "signed static application data (93)",
            Signed::DynamicData => "signed dynamic application data (9F4B)",
        })
    }
}

/// Which offline data authentication check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OdaError {
    /// The terminal has no CA public key for the card's RID and index (`8F`).
    #[error(
        "no CA public key for RID {} index {index:02X}",
        hex::encode_upper(rid)
    )]
    UnknownCaKey {
        /// The RID.
        rid: [u8; 5],
        /// The CA public key index.
        index: u8,
    },
    /// The signed data is not as long as the key's modulus.
    #[error("{what}: {data_len} bytes for a {key_len}-byte key")]
    KeyLengthMismatch {
        /// The signed object.
        what: Signed,
        /// Modulus length.
        key_len: usize,
        /// Signed data length.
        data_len: usize,
    },
    /// The signed data, as a number, is not below the modulus.
    #[error("{what}: not below the key's modulus")]
    SignatureNotBelowModulus {
        /// The signed object.
        what: Signed,
    },
    /// The recovered data does not start with `6A`.
    #[error("{what}: recovered data header {got:02X}, expected 6A")]
    BadHeader {
        /// The signed object.
        what: Signed,
        /// The first recovered byte.
        got: u8,
    },
    /// The recovered data does not end with `BC`.
    #[error("{what}: recovered data trailer {got:02X}, expected BC")]
    BadTrailer {
        /// The signed object.
        what: Signed,
        /// The last recovered byte.
        got: u8,
    },
    /// The recovered data has the wrong format byte.
    #[error("{what}: format {got:02X}, expected {expected:02X}")]
    BadFormat {
        /// The signed object.
        what: Signed,
        /// The expected format.
        expected: u8,
        /// The recovered format.
        got: u8,
    },
    /// Hash or public key algorithm indicator other than `01` (SHA-1, RSA).
    #[error("{what}: unsupported algorithm (hash {hash:02X}, public key {pk:02X})")]
    UnsupportedAlgorithm {
        /// The signed object.
        what: Signed,
        /// Hash algorithm indicator.
        hash: u8,
        /// Public key algorithm indicator (`01` for the signed data objects, which have none).
        pk: u8,
    },
    /// The recovered hash does not match the hash of the data.
    #[error("{what}: hash mismatch")]
    HashMismatch {
        /// The signed object.
        what: Signed,
    },
    /// The certificate's expiry date (MMYY) is before the current month.
    #[error("{what}: expired {month:02}/{year:02}")]
    Expired {
        /// The certificate.
        what: Signed,
        /// Expiry month.
        month: u8,
        /// Expiry year (two digits).
        year: u8,
    },
    /// The issuer identifier does not match the leftmost PAN digits.
    #[error("issuer public key certificate: issuer identifier {issuer_id} does not match the PAN")]
    IssuerIdMismatch {
        /// The issuer identifier digits from the certificate.
        issuer_id: String,
    },
    /// The PAN in the ICC public key certificate is not the card's PAN.
    #[error("ICC public key certificate: PAN does not match the card's PAN")]
    PanMismatch,
    /// The public key remainder (`92` or `9F48`) is missing or has the wrong length.
    #[error("{what}: key remainder of {got} bytes, expected {expected}")]
    RemainderLength {
        /// The certificate.
        what: Signed,
        /// Bytes the certificate's key length calls for.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// A field of the recovered data is inconsistent (lengths, BCD date).
    #[error("{what}: malformed recovered data: {reason}")]
    Malformed {
        /// The signed object.
        what: Signed,
        /// What is wrong.
        reason: &'static str,
    },
    /// A data object needed for authentication is missing or malformed.
    #[error("missing or malformed data for authentication: {0}")]
    MissingData(&'static str),
    /// CDA: the cryptogram information data signed by the card differs from the one in the
    /// GENERATE AC response.
    #[error("CDA: signed CID {signed:02X} differs from the response's {response:02X}")]
    CidMismatch {
        /// CID inside the signature.
        signed: u8,
        /// CID (`9F27`) in the response.
        response: u8,
    },
    /// CDA: the transaction data hash code does not match the transaction data.
    #[error("CDA: transaction data hash code mismatch")]
    TransactionHashMismatch,
}

impl Fault for OdaError {
    /// [`FaultKind::CardUnsupported`] for [`OdaError::UnknownCaKey`] and
    /// [`OdaError::UnsupportedAlgorithm`], else [`FaultKind::Protocol`] (see the module docs).
    fn kind(&self) -> FaultKind {
        match self {
            OdaError::UnknownCaKey { .. } | OdaError::UnsupportedAlgorithm { .. } => {
                FaultKind::CardUnsupported
            }
            _ => FaultKind::Protocol,
        }
    }
}

/// The CA key for a RID and index, or [`OdaError::UnknownCaKey`].
///
/// # Errors
/// [`OdaError::UnknownCaKey`] if the table has no such key.
pub fn find_ca_key(keys: &CaKeys, rid: [u8; 5], index: u8) -> Result<&CaPublicKey, OdaError> {
    keys.get(rid, index)
        .ok_or(OdaError::UnknownCaKey { rid, index })
}

/// Recovers `sig` with `key` and checks length, trailer `BC`, header `6A` and the format.
fn open(key: &RsaKey, what: Signed, sig: &[u8]) -> Result<Vec<u8>, OdaError> {
    let m = key.recover(what, sig)?;
    // The smallest object (the ICC certificate) has 42 bytes of fixed fields.
    if m.len() < 42 {
        return Err(OdaError::Malformed {
            what,
            reason: "key too short for the format",
        });
    }
    let last = m.last().copied().unwrap_or(0);
    if last != 0xBC {
        return Err(OdaError::BadTrailer { what, got: last });
    }
    let first = m.first().copied().unwrap_or(0);
    if first != 0x6A {
        return Err(OdaError::BadHeader { what, got: first });
    }
    let format = m.get(1).copied().unwrap_or(0);
    if format != what.format() {
        return Err(OdaError::BadFormat {
            what,
            expected: what.format(),
            got: format,
        });
    }
    Ok(m)
}

/// Checks that the hash at the end of `m` (before `BC`) is SHA-1 of `m[1..len-21]` followed
/// by `extra` parts.
fn check_hash(m: &[u8], what: Signed, extra: &[&[u8]]) -> Result<(), OdaError> {
    let end = m.len().saturating_sub(HASH_LEN + 1);
    let (Some(signed), Some(hash)) = (m.get(1..end), m.get(end..end + HASH_LEN)) else {
        return Err(OdaError::Malformed {
            what,
            reason: "too short for a hash",
        });
    };
    let mut h = Sha1::new();
    h.update(signed);
    for part in extra {
        h.update(part);
    }
    let computed: [u8; HASH_LEN] = h.finalize().into();
    if computed.as_slice() == hash {
        Ok(())
    } else {
        Err(OdaError::HashMismatch { what })
    }
}

/// Digits of a `cn` value (BCD, padded with `F` nibbles at the end); `None` if a non-digit
/// nibble comes before the padding or a digit after it.
fn cn_digits(b: &[u8]) -> Option<String> {
    let mut s = String::new();
    let mut padding = false;
    for nib in b.iter().flat_map(|&x| [x >> 4, x & 0x0F]) {
        match (nib, padding) {
            (0..=9, false) => s.push(char::from(b'0' + nib)),
            (0x0F, _) => padding = true,
            _ => return None,
        }
    }
    Some(s)
}

/// Checks a certificate expiry date (BCD `MMYY`) against today's `(yy, mm)`: valid through
/// the end of its month. Two-digit years are read as 1950-2049.
fn check_expiry(what: Signed, mmyy: &[u8], today: (u8, u8)) -> Result<(), OdaError> {
    let bcd = |b: u8| ((b >> 4) < 10 && (b & 0x0F) < 10).then(|| (b >> 4) * 10 + (b & 0x0F));
    let (Some(month), Some(year)) = (
        mmyy.first().copied().and_then(bcd),
        mmyy.get(1).copied().and_then(bcd),
    ) else {
        return Err(OdaError::Malformed {
            what,
            reason: "expiry date not BCD",
        });
    };
    if !(1..=12).contains(&month) {
        return Err(OdaError::Malformed {
            what,
            reason: "expiry month not 01-12",
        });
    }
    let full = |yy: u8| {
        if yy < 50 {
            2000 + u32::from(yy)
        } else {
            1900 + u32::from(yy)
        }
    };
    let (ty, tm) = today;
    if (full(year), month) < (full(ty), tm) {
        return Err(OdaError::Expired { what, month, year });
    }
    Ok(())
}

/// The public key in a certificate: the leftmost digits field, then the remainder.
fn assemble_key(
    what: Signed,
    key_len: usize,
    leftmost: &[u8],
    remainder: Option<&[u8]>,
    exponent: &[u8],
) -> Result<RsaKey, OdaError> {
    let modulus = if key_len <= leftmost.len() {
        leftmost.get(..key_len).unwrap_or_default().to_vec()
    } else {
        let mut m = leftmost.to_vec();
        m.extend_from_slice(remainder.unwrap_or_default());
        m
    };
    if modulus.first().copied().unwrap_or(0) == 0 {
        return Err(OdaError::Malformed {
            what,
            reason: "recovered public key has a leading 00 or is empty",
        });
    }
    Ok(RsaKey {
        modulus,
        exponent: exponent.to_vec(),
    })
}

/// Checks the remainder length the certificate's key length calls for (before hashing, so
/// a missing `92`/`9F48` is reported as such rather than as a hash mismatch).
fn check_remainder(
    what: Signed,
    key_len: usize,
    leftmost_len: usize,
    remainder: Option<&[u8]>,
) -> Result<(), OdaError> {
    let expected = key_len.saturating_sub(leftmost_len);
    let got = remainder.map_or(0, <[u8]>::len);
    if expected != got {
        return Err(OdaError::RemainderLength {
            what,
            expected,
            got,
        });
    }
    Ok(())
}

fn check_algorithms(what: Signed, hash: u8, pk: u8) -> Result<(), OdaError> {
    if hash == HASH_SHA1 && pk == PK_RSA {
        Ok(())
    } else {
        Err(OdaError::UnsupportedAlgorithm { what, hash, pk })
    }
}

fn check_exponent(what: Signed, declared: u8, exponent: &[u8]) -> Result<(), OdaError> {
    if exponent.is_empty() || usize::from(declared) != exponent.len() {
        return Err(OdaError::Malformed {
            what,
            reason: "exponent length differs from the exponent data object",
        });
    }
    Ok(())
}

fn byte(m: &[u8], i: usize) -> u8 {
    m.get(i).copied().unwrap_or(0)
}

/// Recovers the issuer public key from its certificate (Book 2 section 5.3 / 6.3).
///
/// `cert_90` is tag `90`, `remainder_92` tag `92` (if the card has one), `exponent_9f32`
/// tag `9F32`; `pan_digits` the card's PAN (tag `5A`) as digits; `today` is `(yy, mm)`.
///
/// # Errors
/// The first failed check, in Book 2's order: [`OdaError::KeyLengthMismatch`],
/// [`OdaError::SignatureNotBelowModulus`], [`OdaError::BadTrailer`], [`OdaError::BadHeader`],
/// [`OdaError::BadFormat`], [`OdaError::UnsupportedAlgorithm`],
/// [`OdaError::RemainderLength`], [`OdaError::Malformed`], [`OdaError::HashMismatch`],
/// [`OdaError::IssuerIdMismatch`], [`OdaError::Expired`].
pub fn recover_issuer_key(
    ca: &CaPublicKey,
    cert_90: &[u8],
    remainder_92: Option<&[u8]>,
    exponent_9f32: &[u8],
    pan_digits: &str,
    today: (u8, u8),
) -> Result<RsaKey, OdaError> {
    let what = Signed::IssuerCertificate;
    let m = open(&RsaKey::from_ca(ca), what, cert_90)?;
    let n = m.len();
    check_algorithms(what, byte(&m, 11), byte(&m, 12))?;
    let key_len = usize::from(byte(&m, 13));
    let leftmost = m.get(15..n - 21).unwrap_or_default();
    check_remainder(what, key_len, leftmost.len(), remainder_92)?;
    check_exponent(what, byte(&m, 14), exponent_9f32)?;
    check_hash(&m, what, &[remainder_92.unwrap_or_default(), exponent_9f32])?;
    // Issuer identifier: 3 to 8 digits, F-padded, equal to the leftmost PAN digits.
    let id = cn_digits(m.get(2..6).unwrap_or_default()).unwrap_or_default();
    if id.len() < 3 || !pan_digits.starts_with(&id) {
        return Err(OdaError::IssuerIdMismatch { issuer_id: id });
    }
    check_expiry(what, m.get(6..8).unwrap_or_default(), today)?;
    assemble_key(what, key_len, leftmost, remainder_92, exponent_9f32)
}

/// Recovers the ICC public key from its certificate (Book 2 section 6.4).
///
/// `static_data` is the static data to be authenticated (see [`static_data`]); `today` is
/// `(yy, mm)`.
///
/// # Errors
/// As [`recover_issuer_key`], with [`OdaError::PanMismatch`] for the PAN check.
pub fn recover_icc_key(
    issuer: &RsaKey,
    cert_9f46: &[u8],
    remainder_9f48: Option<&[u8]>,
    exponent_9f47: &[u8],
    static_data: &[u8],
    pan_digits: &str,
    today: (u8, u8),
) -> Result<RsaKey, OdaError> {
    let what = Signed::IccCertificate;
    let m = open(issuer, what, cert_9f46)?;
    let n = m.len();
    check_algorithms(what, byte(&m, 17), byte(&m, 18))?;
    let key_len = usize::from(byte(&m, 19));
    let leftmost = m.get(21..n - 21).unwrap_or_default();
    check_remainder(what, key_len, leftmost.len(), remainder_9f48)?;
    check_exponent(what, byte(&m, 20), exponent_9f47)?;
    check_hash(
        &m,
        what,
        &[
            remainder_9f48.unwrap_or_default(),
            exponent_9f47,
            static_data,
        ],
    )?;
    match cn_digits(m.get(2..12).unwrap_or_default()) {
        Some(pan) if pan == pan_digits => {}
        _ => return Err(OdaError::PanMismatch),
    }
    check_expiry(what, m.get(12..14).unwrap_or_default(), today)?;
    assemble_key(what, key_len, leftmost, remainder_9f48, exponent_9f47)
}

/// Static data authentication: checks the signed static application data (tag `93`) with
/// the issuer key and returns the data authentication code (to store as tag `9F45`).
///
/// # Errors
/// [`OdaError::KeyLengthMismatch`], [`OdaError::SignatureNotBelowModulus`],
/// [`OdaError::BadTrailer`], [`OdaError::BadHeader`], [`OdaError::BadFormat`],
/// [`OdaError::UnsupportedAlgorithm`], [`OdaError::HashMismatch`].
pub fn verify_sda(
    issuer: &RsaKey,
    ssad_93: &[u8],
    static_data: &[u8],
) -> Result<[u8; 2], OdaError> {
    let what = Signed::StaticData;
    let m = open(issuer, what, ssad_93)?;
    check_algorithms(what, byte(&m, 2), PK_RSA)?;
    check_hash(&m, what, &[static_data])?;
    Ok([byte(&m, 3), byte(&m, 4)])
}

/// Recovers and checks signed dynamic application data; returns the ICC dynamic data.
fn open_dynamic(icc: &RsaKey, sdad: &[u8], hashed_tail: &[u8]) -> Result<Vec<u8>, OdaError> {
    let what = Signed::DynamicData;
    let m = open(icc, what, sdad)?;
    check_algorithms(what, byte(&m, 2), PK_RSA)?;
    let ldd = usize::from(byte(&m, 3));
    let dynamic = m
        .get(4..4 + ldd)
        .filter(|_| 4 + ldd <= m.len() - 21)
        .ok_or(OdaError::Malformed {
            what,
            reason: "ICC dynamic data length runs into the hash",
        })?
        .to_vec();
    check_hash(&m, what, &[hashed_tail])?;
    Ok(dynamic)
}

/// Dynamic data authentication: checks the signed dynamic application data (tag `9F4B` of
/// the INTERNAL AUTHENTICATE response) with the ICC key; `ddol_data` is the data the
/// terminal sent (built from the DDOL, normally the unpredictable number `9F37`). Returns
/// the ICC dynamic data (its first byte is the length of the ICC dynamic number).
///
/// # Errors
/// As [`verify_sda`], plus [`OdaError::Malformed`] for an ICC dynamic data length that
/// does not fit.
pub fn verify_dda(icc: &RsaKey, sdad_9f4b: &[u8], ddol_data: &[u8]) -> Result<Vec<u8>, OdaError> {
    open_dynamic(icc, sdad_9f4b, ddol_data)
}

/// What a successful combined DDA/AC generation check gives the terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdaResult {
    /// The ICC dynamic number (to store as tag `9F4C`).
    pub icc_dynamic_number: Vec<u8>,
    /// Cryptogram information data (`9F27`).
    pub cid: u8,
    /// The application cryptogram (`9F26`), recovered from the signature.
    pub cryptogram: [u8; 8],
}

/// Combined DDA / application cryptogram generation (Book 2 section 6.6.2): checks the
/// signed dynamic application data in a GENERATE AC response.
///
/// - `gac_response_77`: the value of the response template `77` (its data objects).
/// - `unpredictable_number`: the `9F37` value the terminal sent in the CDOL data.
/// - `transaction_data`: the values the terminal sent for the PDOL, then CDOL1 (and, for
///   the second GENERATE AC, then CDOL2), concatenated in that order.
///
/// # Errors
/// [`OdaError::MissingData`] if the response lacks `9F4B` or `9F27` or is not TLV; the
/// checks of [`verify_dda`]; [`OdaError::Malformed`] if the ICC dynamic data is too short
/// for CDA; [`OdaError::CidMismatch`]; [`OdaError::TransactionHashMismatch`].
pub fn verify_cda(
    icc: &RsaKey,
    gac_response_77: &[u8],
    unpredictable_number: &[u8],
    transaction_data: &[u8],
) -> Result<CdaResult, OdaError> {
    let what = Signed::DynamicData;
    let objects = tlv::parse_all(gac_response_77)
        .map_err(|_| OdaError::MissingData("GENERATE AC response is not valid TLV"))?;
    let mut sdad = None;
    let mut cid = None;
    let mut hash = Sha1::new();
    hash.update(transaction_data);
    for o in &objects {
        if o.tag == Tag::new(0x9F4B) {
            sdad = Some(o.value);
            continue;
        }
        if o.tag == Tag::new(0x9F27) {
            cid = o.value.first().copied().filter(|_| o.value.len() == 1);
        }
        let raw = gac_response_77
            .get(o.offset..o.end())
            .ok_or(OdaError::MissingData(
                "GENERATE AC response is not valid TLV",
            ))?;
        hash.update(raw);
    }
    let sdad = sdad.ok_or(OdaError::MissingData("9F4B in the GENERATE AC response"))?;
    let cid = cid.ok_or(OdaError::MissingData("9F27 in the GENERATE AC response"))?;
    let dynamic = open_dynamic(icc, sdad, unpredictable_number)?;
    // ICC dynamic data: len, ICC dynamic number, CID, AC (8), transaction data hash (20).
    let nlen = usize::from(dynamic.first().copied().unwrap_or(0));
    let short = OdaError::Malformed {
        what,
        reason: "ICC dynamic data too short for CDA",
    };
    let number = dynamic.get(1..1 + nlen).ok_or(short.clone())?.to_vec();
    let signed_cid = dynamic.get(1 + nlen).copied().ok_or(short.clone())?;
    let cryptogram: [u8; 8] = dynamic
        .get(2 + nlen..10 + nlen)
        .and_then(|c| c.try_into().ok())
        .ok_or(short.clone())?;
    let tdhc = dynamic.get(10 + nlen..30 + nlen).ok_or(short)?;
    if signed_cid != cid {
        return Err(OdaError::CidMismatch {
            signed: signed_cid,
            response: cid,
        });
    }
    let computed: [u8; HASH_LEN] = hash.finalize().into();
    if computed.as_slice() != tdhc {
        return Err(OdaError::TransactionHashMismatch);
    }
    Ok(CdaResult {
        icc_dynamic_number: number,
        cid,
        cryptogram,
    })
}

/// One record read from the card, for [`static_data`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Short file identifier (1-30).
    pub sfi: u8,
    /// Record number.
    pub number: u8,
    /// The READ RECORD response data (without the status word).
    pub data: &'a [u8],
}

/// Builds the static data to be authenticated (Book 3 section 10.3): the records the AFL
/// (`94`) marks for offline data authentication, in AFL order (for SFI 1-10 the value of
/// the `70` template, for SFI 11-30 the whole record), then the values of the tags in the
/// static data authentication tag list (`9F4A`), which may only name the AIP (`82`).
///
/// # Errors
/// [`OdaError::MissingData`] for a malformed AFL, a missing record, a record of SFI 1-10
/// that is not a `70` template, or a tag list naming anything but `82`.
pub fn static_data(
    afl: &[u8],
    records: &[Record<'_>],
    sda_tag_list_9f4a: Option<&[u8]>,
    aip: [u8; 2],
) -> Result<Vec<u8>, OdaError> {
    if afl.is_empty() || afl.len() % 4 != 0 {
        return Err(OdaError::MissingData("AFL length not a multiple of 4"));
    }
    let mut out = Vec::new();
    for entry in afl.chunks_exact(4) {
        let &[sfi_byte, first, last, oda] = entry else {
            return Err(OdaError::MissingData("AFL entry"));
        };
        let sfi = sfi_byte >> 3;
        if sfi == 0
            || sfi == 31
            || first == 0
            || last < first
            || usize::from(oda) > usize::from(last - first) + 1
        {
            return Err(OdaError::MissingData("AFL entry out of range"));
        }
        for number in first..first.saturating_add(oda) {
            let rec = records
                .iter()
                .find(|r| r.sfi == sfi && r.number == number)
                .ok_or(OdaError::MissingData("a record the AFL marks for ODA"))?;
            if sfi <= 10 {
                let t = tlv::parse_single(rec.data)
                    .ok()
                    .filter(|t| t.tag == Tag::new(0x70))
                    .ok_or(OdaError::MissingData(
                        "record for ODA (SFI 1-10) is not one 70 template",
                    ))?;
                out.extend_from_slice(t.value);
            } else {
                out.extend_from_slice(rec.data);
            }
        }
    }
    if let Some(list) = sda_tag_list_9f4a {
        match list {
            [] => {}
            [0x82] => out.extend_from_slice(&aip),
            _ => return Err(OdaError::MissingData("9F4A naming tags other than 82")),
        }
    }
    Ok(out)
}

/// The digits of a PAN (tag `5A`, `cn`), for the `pan_digits` parameters.
///
/// # Errors
/// [`OdaError::MissingData`] if it is not F-padded BCD.
pub fn pan_digits(pan_5a: &[u8]) -> Result<String, OdaError> {
    cn_digits(pan_5a)
        .filter(|d| !d.is_empty())
        .ok_or(OdaError::MissingData("PAN (5A) not BCD"))
}
