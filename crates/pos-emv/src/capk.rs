//! Certification Authority (CA) public keys: the payment schemes' RSA keys that sign the
//! issuer public key certificates (EMV Book 2 section 5.1 and Annex A), and the file the
//! terminal loads them from.
//!
//! # File format
//!
//! One key per line, fields separated by spaces or tabs; blank lines and lines starting with
//! `#` are ignored:
//!
//! ```text
//! # RID       INDEX EXPONENT MODULUS (hex)        [expires=YYYY-MM-DD] [sha1=40 hex digits]
//! A000000004  EF    03       A191CB87...DAEB3B    expires=2030-12-31   sha1=21766EBB...65427A
//! ```
//!
//! - `RID`: 5 bytes (10 hex digits), `INDEX`: 1 byte (2 hex digits), `EXPONENT`: 1 to 3
//!   bytes (EMV allows only 3 and 65537), `MODULUS`: 64 to 248 bytes, its first byte not 0.
//! - `expires=`: the key's expiry date, kept for the caller (the terminal withdraws keys by
//!   configuration; nothing here rejects an expired key).
//! - `sha1=`: the CA public key check sum, SHA-1 of `RID || INDEX || MODULUS || EXPONENT`
//!   (Book 2 section 11.2.2): when present it is verified, so a mistyped modulus byte is
//!   found when the file is loaded rather than when a card fails.
//!
//! Every error names the line (1-based) it is on.

use std::path::{Path, PathBuf};

use pos_hal::{Fault, FaultKind};
use sha1::{Digest, Sha1};

/// A date (`YYYY-MM-DD`) as written in the key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Year, e.g. 2030.
    pub year: u16,
    /// Month, 1 to 12.
    pub month: u8,
    /// Day, 1 to 31.
    pub day: u8,
}

/// One CA public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaPublicKey {
    /// Registered application provider identifier (first 5 bytes of the AID).
    pub rid: [u8; 5],
    /// CA public key index (tag `8F` on the card).
    pub index: u8,
    /// Public exponent, big-endian (`03` or `010001`).
    pub exponent: Vec<u8>,
    /// Modulus, big-endian.
    pub modulus: Vec<u8>,
    /// Expiry date, if the file gave one.
    pub expires: Option<Date>,
}

impl CaPublicKey {
    /// The CA public key check sum: SHA-1 of `RID || INDEX || MODULUS || EXPONENT`.
    pub fn checksum(&self) -> [u8; 20] {
        let mut h = Sha1::new();
        h.update(self.rid);
        h.update([self.index]);
        h.update(&self.modulus);
        h.update(&self.exponent);
        h.finalize().into()
    }
}

/// Why a CA key file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CapkError {
    /// The file could not be read.
    #[error("cannot read CA key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A line does not follow the format.
    #[error("CA key file line {line}: {reason}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The `sha1=` check sum does not match the key on the line.
    #[error(
        "CA key file line {line}: check sum mismatch (file says {expected}, key hashes to {computed})"
    )]
    Checksum {
        /// 1-based line number.
        line: usize,
        /// The check sum in the file, hex.
        expected: String,
        /// The check sum of the key as written, hex.
        computed: String,
    },
    /// The same RID and index appear twice.
    #[error(
        "CA key file line {line}: duplicate key {rid} index {index:02X} (first on line {first})"
    )]
    Duplicate {
        /// 1-based line number of the second one.
        line: usize,
        /// 1-based line number of the first one.
        first: usize,
        /// The RID, hex.
        rid: String,
        /// The index.
        index: u8,
    },
}

impl Fault for CapkError {
    /// Always [`FaultKind::InvalidInput`]: the terminal's configuration is wrong.
    fn kind(&self) -> FaultKind {
        FaultKind::InvalidInput
    }
}

/// How one key is written in a CA key file (see the [module](self) documentation), for
/// messages that tell people how to add a key.
pub const LINE_FORMAT: &str = "RID INDEX EXPONENT MODULUS [expires=YYYY-MM-DD] [sha1=CHECKSUM]";

/// The public EMV **test** CA keys shipped with this crate (`data/ca-keys-test.txt`:
/// Mastercard A000000004/EF, Visa A000000003/92, 94, 95), for test cards and labs. A live
/// terminal loads the production keys of its schemes with [`CaKeys::load`].
pub const TEST_CA_KEYS: &str = include_str!("../data/ca-keys-test.txt");

/// The terminal's table of CA public keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaKeys {
    keys: Vec<CaPublicKey>,
}

impl CaKeys {
    /// Reads and parses a key file (see the module docs for the format).
    ///
    /// # Errors
    /// [`CapkError::Io`] if it cannot be read, else as [`CaKeys::parse`].
    pub fn load(path: impl AsRef<Path>) -> Result<CaKeys, CapkError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| CapkError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        CaKeys::parse(&text)
    }

    /// Parses the text of a key file.
    ///
    /// # Errors
    /// The first bad line: [`CapkError::Syntax`], [`CapkError::Checksum`] or
    /// [`CapkError::Duplicate`].
    pub fn parse(text: &str) -> Result<CaKeys, CapkError> {
        let mut keys: Vec<CaPublicKey> = Vec::new();
        let mut lines: Vec<usize> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let key = parse_line(content, line)?;
            if let Some(pos) = keys
                .iter()
                .position(|k| k.rid == key.rid && k.index == key.index)
            {
                return Err(CapkError::Duplicate {
                    line,
                    first: lines.get(pos).copied().unwrap_or(0),
                    rid: hex::encode_upper(key.rid),
                    index: key.index,
                });
            }
            keys.push(key);
            lines.push(line);
        }
        Ok(CaKeys { keys })
    }

    /// The key for a RID and index, if the table has it.
    pub fn get(&self, rid: [u8; 5], index: u8) -> Option<&CaPublicKey> {
        self.keys.iter().find(|k| k.rid == rid && k.index == index)
    }

    /// All keys, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &CaPublicKey> {
        self.keys.iter()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True if there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn syntax(line: usize, reason: impl Into<String>) -> CapkError {
    CapkError::Syntax {
        line,
        reason: reason.into(),
    }
}

fn parse_line(content: &str, line: usize) -> Result<CaPublicKey, CapkError> {
    let fields: Vec<&str> = content.split_whitespace().collect();
    let [rid, index, exponent, modulus, rest @ ..] = fields.as_slice() else {
        return Err(syntax(
            line,
            format!(
                "expected RID INDEX EXPONENT MODULUS [expires=YYYY-MM-DD] [sha1=HEX], got {} field(s)",
                fields.len()
            ),
        ));
    };
    let rid: [u8; 5] = unhex(rid)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| syntax(line, format!("RID {rid:?} is not 5 bytes of hex")))?;
    let index = match unhex(index).as_deref() {
        Some(&[b]) => b,
        _ => {
            return Err(syntax(
                line,
                format!("index {index:?} is not 1 byte of hex"),
            ));
        }
    };
    let exponent = unhex(exponent)
        .filter(|e| (1..=3).contains(&e.len()) && e.first() != Some(&0))
        .ok_or_else(|| {
            syntax(
                line,
                format!("exponent {exponent:?} is not 1 to 3 bytes of hex without a leading 00"),
            )
        })?;
    let modulus = unhex(modulus)
        .filter(|m| (64..=248).contains(&m.len()) && m.first() != Some(&0))
        .ok_or_else(|| {
            syntax(
                line,
                "modulus is not 64 to 248 bytes of hex without a leading 00",
            )
        })?;
    let mut key = CaPublicKey {
        rid,
        index,
        exponent,
        modulus,
        expires: None,
    };
    let mut checksum: Option<[u8; 20]> = None;
    for field in rest {
        if let Some(v) = field.strip_prefix("expires=") {
            if key.expires.is_some() {
                return Err(syntax(line, "expires= given twice"));
            }
            key.expires = Some(
                parse_date(v)
                    .ok_or_else(|| syntax(line, format!("expiry {v:?} is not YYYY-MM-DD")))?,
            );
        } else if let Some(v) = field.strip_prefix("sha1=") {
            if checksum.is_some() {
                return Err(syntax(line, "sha1= given twice"));
            }
            checksum =
                Some(unhex(v).and_then(|b| b.try_into().ok()).ok_or_else(|| {
                    syntax(line, format!("check sum {v:?} is not 20 bytes of hex"))
                })?);
        } else {
            return Err(syntax(
                line,
                format!("unexpected field {field:?} (expected expires= or sha1=)"),
            ));
        }
    }
    if let Some(expected) = checksum {
        let computed = key.checksum();
        if computed != expected {
            return Err(CapkError::Checksum {
                line,
                expected: hex::encode_upper(expected),
                computed: hex::encode_upper(computed),
            });
        }
    }
    Ok(key)
}

fn parse_date(s: &str) -> Option<Date> {
    let mut parts = s.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if !(all_digits(y) && all_digits(m) && all_digits(d)) {
        return None;
    }
    let date = Date {
        year: y.parse().ok()?,
        month: m.parse().ok()?,
        day: d.parse().ok()?,
    };
    ((1..=12).contains(&date.month) && (1..=31).contains(&date.day)).then_some(date)
}

/// Decodes hex (either case); `None` for an odd length or a non-hex character.
fn unhex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() % 2 != 0 {
        return None;
    }
    b.chunks_exact(2)
        .map(|p| {
            let hi = (p.first().copied()? as char).to_digit(16)?;
            let lo = (p.get(1).copied()? as char).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}
