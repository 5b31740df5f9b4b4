//! Test support shared by the generated-key tests (`oda_generated`, `transaction_generated`):
//! a CA, issuer and ICC RSA key chain from a seed, and EMV's signed data format (Book 2:
//! `6A || body || BB padding || SHA-1 || BC`, then the raw RSA private operation).
#![allow(dead_code)]

use std::sync::OnceLock;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rsa::BigUint;
use rsa::RsaPrivateKey;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use sha1::{Digest, Sha1};

/// The key chain: sizes chosen so the issuer key leaves a 20-byte remainder (`92`) in a
/// 1024-bit CA certificate and the ICC key a 26-byte one (`9F48`).
pub struct Keys {
    pub ca: RsaPrivateKey,
    pub issuer: RsaPrivateKey,
    pub icc: RsaPrivateKey,
}

/// The test binary's key chain, generated once from `seed`.
pub fn keys(seed: u64) -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Keys {
            ca: RsaPrivateKey::new(&mut rng, 1024).expect("CA key"),
            issuer: RsaPrivateKey::new(&mut rng, 896).expect("issuer key"),
            icc: RsaPrivateKey::new(&mut rng, 768).expect("ICC key"),
        }
    })
}

pub fn modulus(k: &RsaPrivateKey) -> Vec<u8> {
    k.n().to_bytes_be()
}

pub fn exponent(k: &RsaPrivateKey) -> Vec<u8> {
    k.e().to_bytes_be()
}

/// Raw RSA private operation m^d mod n, left-padded to the modulus length.
pub fn sign(k: &RsaPrivateKey, m: &[u8]) -> Vec<u8> {
    let n_len = modulus(k).len();
    assert_eq!(m.len(), n_len);
    let s = BigUint::from_bytes_be(m).modpow(k.d(), k.n()).to_bytes_be();
    let mut out = vec![0; n_len - s.len()];
    out.extend_from_slice(&s);
    out
}

pub fn sha1(parts: &[&[u8]]) -> Vec<u8> {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().to_vec()
}

/// Plain recovered data: 6A || body || pad BB to the signer's length || hash || BC, where
/// the hash is over body || pad || extra.
pub fn plain(signer: &RsaPrivateKey, body: &[u8], extra: &[&[u8]]) -> Vec<u8> {
    let n_len = modulus(signer).len();
    let mut m = vec![0x6A];
    m.extend_from_slice(body);
    m.resize(n_len - 21, 0xBB);
    let mut parts: Vec<&[u8]> = vec![&m[1..]];
    parts.extend_from_slice(extra);
    let h = sha1(&parts);
    m.extend_from_slice(&h);
    m.push(0xBC);
    m
}

/// [`plain`] signed by `signer`.
pub fn signed(signer: &RsaPrivateKey, body: &[u8], extra: &[&[u8]]) -> Vec<u8> {
    sign(signer, &plain(signer, body, extra))
}
