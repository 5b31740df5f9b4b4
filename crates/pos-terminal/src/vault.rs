//! Card data at rest: what a reversal needs (PAN, expiry, sequence number), sealed with
//! AES-256-GCM; a keyed hash (HMAC-SHA256) of the PAN for matching; the key in a file of
//! mode 0600 created on first start.
//!
//! Track data, CVV and PIN never come here: a reversal is built from PAN and expiry.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use pos_hal::Sensitive;
use sha2::Sha256;
use zeroize::Zeroizing;

/// Bytes in the key file: 32 for AES-256-GCM, 32 for the HMAC.
const KEY_FILE_LEN: usize = 64;
/// AES-GCM nonce length.
const NONCE_LEN: usize = 12;
/// Version byte in front of each sealed value.
const SEAL_VERSION: u8 = 1;

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The key file cannot be read or created.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key file is readable or writable by others than its owner.
    #[error(
        "key file {path} has mode {mode:o}: others can read card-data keys; run `chmod 600 {path}`"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The key file has the wrong length.
    #[error(
        "key file {path} is {len} bytes, expected {KEY_FILE_LEN}: it is not a key file of this service"
    )]
    BadKeyFile {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// The OS random source failed.
    #[error("no randomness from the OS: {0}")]
    Random(String),
    /// A sealed value does not open (wrong key, tampered, or not ours).
    #[error("sealed card data does not open with this key (wrong key file, or tampered)")]
    Unseal,
}

impl pos_hal::Fault for VaultError {
    fn kind(&self) -> pos_hal::FaultKind {
        match self {
            VaultError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                pos_hal::FaultKind::PermissionDenied
            }
            VaultError::Io { .. } | VaultError::Random(_) => pos_hal::FaultKind::Io,
            VaultError::Permissions { .. } => pos_hal::FaultKind::PermissionDenied,
            VaultError::BadKeyFile { .. } | VaultError::Unseal => pos_hal::FaultKind::Protocol,
        }
    }
}

/// The card data a reversal (or a completion / void by reference) needs.
#[derive(Clone, PartialEq, Eq)]
pub struct CardSecrets {
    /// PAN digits.
    pub pan: Sensitive,
    /// Expiry `YYMM`.
    pub expiry: Option<String>,
    /// PAN sequence number.
    pub pan_sequence: Option<u8>,
}

impl std::fmt::Debug for CardSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardSecrets").finish_non_exhaustive()
    }
}

/// The keys: seal and open card data, hash PANs.
pub struct Vault {
    key: Zeroizing<[u8; KEY_FILE_LEN]>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> VaultError + '_ {
    move |source| VaultError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Vault {
    /// Open the key file at `path`, creating it (mode 0600, from the OS random source) when
    /// it does not exist. The directory is created too.
    ///
    /// # Errors
    /// [`VaultError::Permissions`] when group or others have any access to an existing key
    /// file; [`VaultError::BadKeyFile`]; [`VaultError::Io`]; [`VaultError::Random`].
    pub fn open_or_create(path: &Path) -> Result<Vault, VaultError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io(path))?;
        }
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(mut f) => {
                let mut key = Zeroizing::new([0u8; KEY_FILE_LEN]);
                getrandom::fill(&mut key[..]).map_err(|e| VaultError::Random(e.to_string()))?;
                f.write_all(&key[..]).map_err(io(path))?;
                f.sync_all().map_err(io(path))?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    // Make the new directory entry durable too.
                    if let Ok(d) = File::open(dir) {
                        let _ = d.sync_all();
                    }
                }
                log::info!("created card-data key file {} (mode 0600)", path.display());
                Ok(Vault { key })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Vault::open(path),
            Err(e) => Err(io(path)(e)),
        }
    }

    /// Open an existing key file.
    ///
    /// # Errors
    /// As [`Vault::open_or_create`].
    pub fn open(path: &Path) -> Result<Vault, VaultError> {
        let mut f = File::open(path).map_err(io(path))?;
        let meta = f.metadata().map_err(io(path))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(VaultError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        let mut key = Zeroizing::new([0u8; KEY_FILE_LEN]);
        let mut buf = Vec::with_capacity(KEY_FILE_LEN + 1);
        Read::by_ref(&mut f)
            .take(KEY_FILE_LEN as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(io(path))?;
        if buf.len() != KEY_FILE_LEN {
            let len = buf.len();
            buf.fill(0);
            return Err(VaultError::BadKeyFile {
                path: path.to_path_buf(),
                len,
            });
        }
        key.copy_from_slice(&buf);
        buf.fill(0);
        Ok(Vault { key })
    }

    /// A vault with a fixed key, for tests and benches.
    pub fn from_key(key: [u8; 64]) -> Vault {
        Vault {
            key: Zeroizing::new(key),
        }
    }

    fn cipher(&self) -> Aes256Gcm {
        // Infallible: the slice is exactly 32 bytes.
        Aes256Gcm::new(aes_gcm::Key::<Aes256Gcm>::from_slice(&self.key[..32]))
    }

    /// The keyed hash of a PAN (hex), to find a card's transactions without storing the PAN.
    pub fn pan_hash(&self, pan: &[u8]) -> String {
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.key[32..]) {
            Ok(m) => m,
            // HMAC takes keys of any length; this arm cannot be reached.
            Err(_) => return String::new(),
        };
        mac.update(pan);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Seal card secrets, bound to `context` (the transaction id): a sealed value copied to
    /// another row does not open.
    ///
    /// # Errors
    /// [`VaultError::Random`] when no nonce can be drawn.
    pub fn seal(&self, secrets: &CardSecrets, context: &[u8]) -> Result<Vec<u8>, VaultError> {
        let mut plain = Vec::with_capacity(40);
        plain.push(secrets.pan.len() as u8);
        plain.extend_from_slice(secrets.pan.expose());
        match &secrets.expiry {
            Some(e) if e.len() == 4 => plain.extend_from_slice(e.as_bytes()),
            _ => plain.extend_from_slice(b"----"),
        }
        plain.push(secrets.pan_sequence.unwrap_or(0xFF));
        let plain = Sensitive::new(plain);
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| VaultError::Random(e.to_string()))?;
        let ct = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain.expose(),
                    aad: context,
                },
            )
            .map_err(|_| VaultError::Unseal)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Open sealed card secrets.
    ///
    /// # Errors
    /// [`VaultError::Unseal`] for a wrong key, a wrong context, or tampered bytes.
    pub fn open_sealed(&self, sealed: &[u8], context: &[u8]) -> Result<CardSecrets, VaultError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != SEAL_VERSION {
            return Err(VaultError::Unseal);
        }
        let (nonce, ct) = sealed[1..].split_at(NONCE_LEN);
        let plain = self
            .cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context,
                },
            )
            .map_err(|_| VaultError::Unseal)?;
        let plain = Sensitive::new(plain);
        let p = plain.expose();
        let n = usize::from(*p.first().ok_or(VaultError::Unseal)?);
        if p.len() != 1 + n + 4 + 1 {
            return Err(VaultError::Unseal);
        }
        let pan = Sensitive::new(p[1..1 + n].to_vec());
        let exp = &p[1 + n..1 + n + 4];
        let expiry = (exp != b"----")
            .then(|| String::from_utf8(exp.to_vec()).ok())
            .flatten();
        let seq = p[1 + n + 4];
        Ok(CardSecrets {
            pan,
            expiry,
            pan_sequence: (seq != 0xFF).then_some(seq),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> CardSecrets {
        CardSecrets {
            pan: Sensitive::new(b"4761739001010010".to_vec()),
            expiry: Some("2812".into()),
            pan_sequence: Some(1),
        }
    }

    #[test]
    fn key_file_is_created_0600_and_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/journal.key");
        let v1 = Vault::open_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let sealed = v1.seal(&secrets(), b"T1").unwrap();
        let v2 = Vault::open_or_create(&path).unwrap();
        assert_eq!(v2.open_sealed(&sealed, b"T1").unwrap(), secrets());
        assert_eq!(
            v1.pan_hash(b"4761739001010010"),
            v2.pan_hash(b"4761739001010010")
        );
        assert_ne!(
            v1.pan_hash(b"4761739001010010"),
            v1.pan_hash(b"4761739001010011")
        );
    }

    #[test]
    fn sealed_data_hides_the_pan_and_binds_its_context() {
        let v = Vault::from_key([7; 64]);
        let sealed = v.seal(&secrets(), b"T1").unwrap();
        assert!(!sealed.windows(16).any(|w| w == b"4761739001010010"));
        assert!(matches!(
            v.open_sealed(&sealed, b"T2"),
            Err(VaultError::Unseal)
        ));
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            v.open_sealed(&bad, b"T1"),
            Err(VaultError::Unseal)
        ));
        assert!(matches!(v.open_sealed(&[], b"T1"), Err(VaultError::Unseal)));
        let other = Vault::from_key([8; 64]);
        assert!(matches!(
            other.open_sealed(&sealed, b"T1"),
            Err(VaultError::Unseal)
        ));
        // Two seals of the same data differ (fresh nonce).
        assert_ne!(sealed, v.seal(&secrets(), b"T1").unwrap());
    }

    #[test]
    fn open_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        Vault::open_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Vault::open_or_create(&path).unwrap_err();
        assert!(
            matches!(e, VaultError::Permissions { mode: 0o644, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("chmod 600"));
        std::fs::write(&path, b"short").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            Vault::open(&path),
            Err(VaultError::BadKeyFile { len: 5, .. })
        ));
    }

    #[test]
    fn secrets_without_expiry_or_sequence() {
        let v = Vault::from_key([1; 64]);
        let s = CardSecrets {
            pan: Sensitive::new(b"5413330089600044".to_vec()),
            expiry: None,
            pan_sequence: None,
        };
        assert_eq!(v.open_sealed(&v.seal(&s, b"x").unwrap(), b"x").unwrap(), s);
        assert!(!format!("{s:?}").contains("5413"));
    }
}
