//! The simulation's RSA keys (CA, issuer, card) and the certificates and signed data
//! the profile cards carry for offline data authentication.

use super::*;

/// An RSA key pair of the simulation (test only).
pub(super) struct KeyPair {
    pub(super) n: Vec<u8>,
    pub(super) e: Vec<u8>,
    pub(super) d: Vec<u8>,
}

impl KeyPair {
    /// The raw private operation `m^d mod n`, as many bytes as the modulus.
    pub(super) fn sign(&self, m: &[u8]) -> Vec<u8> {
        let n = BigUint::from_bytes_be(&self.n);
        let s = BigUint::from_bytes_be(m).modpow(&BigUint::from_bytes_be(&self.d), &n);
        let bytes = s.to_bytes_be();
        let mut out = vec![0u8; self.n.len().saturating_sub(bytes.len())];
        out.extend_from_slice(&bytes);
        out
    }
}

pub(super) struct SimKeys {
    pub(super) ca: KeyPair,
    pub(super) issuer: KeyPair,
    pub(super) icc: KeyPair,
}

pub(super) fn unhex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() % 2 != 0 {
        return None;
    }
    b.chunks_exact(2)
        .map(|p| {
            let hi = char::from(*p.first()?).to_digit(16)?;
            let lo = char::from(*p.get(1)?).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

pub(super) fn parse_sim_keys(text: &str) -> Option<SimKeys> {
    let field = |name: &str, what: &str| -> Option<Vec<u8>> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let mut it = l.split_whitespace();
                (it.next() == Some(name) && it.next() == Some(what))
                    .then(|| it.next().and_then(unhex))
                    .flatten()
            })
    };
    let pair = |name: &str| -> Option<KeyPair> {
        Some(KeyPair {
            n: field(name, "MODULUS")?,
            e: field(name, "EXPONENT")?,
            d: field(name, "PRIVATE")?,
        })
    };
    Some(SimKeys {
        ca: pair("CA")?,
        issuer: pair("ISSUER")?,
        icc: pair("ICC")?,
    })
}

pub(super) fn sim_keys() -> Option<&'static SimKeys> {
    static KEYS: OnceLock<Option<SimKeys>> = OnceLock::new();
    KEYS.get_or_init(|| parse_sim_keys(SIM_KEYS)).as_ref()
}

pub(super) fn hash(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}
/// An RSA-with-recovery signature over `body` (the recovered data between `6A` and the hash,
/// format byte first): `6A || body || SHA-1(body || extra) || BC`, signed with `key`.
/// `body` must leave exactly room for the hash in the modulus length.
pub(super) fn sign_recoverable(key: &KeyPair, body: &[u8], extra: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(key.n.len());
    m.push(0x6A);
    m.extend_from_slice(body);
    m.extend_from_slice(&hash(&[body, extra]));
    m.push(0xBC);
    key.sign(&m)
}
/// The leftmost part of `modulus` that fits in `room` bytes (padded with `BB`), and the
/// remainder that does not.
pub(super) fn split_key(modulus: &[u8], room: usize) -> (Vec<u8>, Vec<u8>) {
    if modulus.len() <= room {
        let mut left = modulus.to_vec();
        left.resize(room, 0xBB);
        (left, Vec::new())
    } else {
        let (l, r) = modulus.split_at(room);
        (l.to_vec(), r.to_vec())
    }
}

/// The issuer public key certificate (format `02`, expires 12/49) and the remainder `92`.
pub(super) fn issuer_certificate(keys: &SimKeys, pan: &str) -> (Vec<u8>, Vec<u8>) {
    let room = keys.ca.n.len().saturating_sub(36);
    let (left, rem) = split_key(&keys.issuer.n, room);
    let mut body = vec![0x02];
    body.extend_from_slice(&cn(pan.get(..6).unwrap_or(pan), 4));
    body.extend_from_slice(&[0x12, 0x49, 0x00, 0x00, 0x01, 0x01, 0x01]);
    body.push(u8::try_from(keys.issuer.n.len()).unwrap_or(0));
    body.push(u8::try_from(keys.issuer.e.len()).unwrap_or(0));
    body.extend_from_slice(&left);
    let mut extra = rem.clone();
    extra.extend_from_slice(&keys.issuer.e);
    (sign_recoverable(&keys.ca, &body, &extra), rem)
}

/// The ICC public key certificate (format `04`, expiring with the card) and the remainder
/// `9F48`.
pub(super) fn icc_certificate(
    keys: &SimKeys,
    pan: &str,
    mmyy: [u8; 2],
    static_data: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let room = keys.issuer.n.len().saturating_sub(42);
    let (left, rem) = split_key(&keys.icc.n, room);
    let mut body = vec![0x04];
    body.extend_from_slice(&cn(pan, 10));
    body.extend_from_slice(&mmyy);
    body.extend_from_slice(&[0x00, 0x00, 0x01, 0x01, 0x01]);
    body.push(u8::try_from(keys.icc.n.len()).unwrap_or(0));
    body.push(u8::try_from(keys.icc.e.len()).unwrap_or(0));
    body.extend_from_slice(&left);
    let mut extra = rem.clone();
    extra.extend_from_slice(&keys.icc.e);
    extra.extend_from_slice(static_data);
    (sign_recoverable(&keys.issuer, &body, &extra), rem)
}

/// Signed static application data (format `03`, data authentication code `DA C1`).
pub(super) fn signed_static_data(keys: &SimKeys, static_data: &[u8]) -> Vec<u8> {
    let mut body = vec![0x03, 0x01, 0xDA, 0xC1];
    body.resize(keys.issuer.n.len().saturating_sub(22), 0xBB);
    sign_recoverable(&keys.issuer, &body, static_data)
}
