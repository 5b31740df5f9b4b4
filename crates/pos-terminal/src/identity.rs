//! The journal's identity: which lane it belongs to and how far its counters (STAN, ids)
//! went, kept in the journal and mirrored in a marker file beside it, so that a missing,
//! empty, foreign or older journal is noticed instead of silently starting again at STAN 1.
//!
//! The marker (`.NAME.identity` in the journal's directory, a hidden name that a
//! `rm journal.sqlite*` does not take with it) holds:
//!
//! - `terminal_id`: the random identity the journal also holds (`meta.terminal_id`);
//! - `stan_reserved`, `id_reserved`: counters reserved ahead of use. A STAN or a transaction
//!   id above the reservation is only used after the marker was moved [`RESERVE`] further
//!   (one small write per hundred, not one per sale);
//! - `closed_at_stan`, `closed_at_id`: the exact counters at the last clean close (absent
//!   while the journal is open, or after a crash).
//!
//! At open, a journal behind the marker (an older copy put back) continues past it, so a
//! STAN the host has seen is never sent again: after a clean close exactly where it
//! stopped, after a crash past the reservation.
//!
//! The STAN on the wire wraps (1..=999999); the counters here do not (`stan_seq` counts
//! every STAN ever allocated), so "behind" means behind, across wraps.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::journal::JournalError;

/// How far ahead of use the marker reserves STANs and transaction ids.
pub const RESERVE: u64 = 100;

/// How far a new identity (`posctl journal init --new-identity`) jumps past everything the
/// lost journal may have used, so the host never sees a STAN twice.
pub const NEW_IDENTITY_JUMP: u64 = 1_000;

/// The marker file of the journal at `journal`: `.NAME.identity` beside it.
pub fn marker_path(journal: &Path) -> PathBuf {
    let name = journal
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "journal".into());
    journal.with_file_name(format!(".{name}.identity"))
}

/// A new random terminal identity (128 bits, hex).
///
/// # Errors
/// [`JournalError::Io`] when the OS random source fails.
pub fn new_terminal_id(path: &Path) -> Result<String, JournalError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| JournalError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(format!("no random source for a terminal identity: {e}")),
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// What the marker file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The lane's journal identity.
    pub terminal_id: String,
    /// STANs (counted without wrapping) reserved: none above it has been used.
    pub stan_reserved: u64,
    /// Transaction ids reserved: none above it has been used.
    pub id_reserved: u64,
    /// The exact counters `(stan_seq, last id)` at the last clean close; `None` while open
    /// or after a crash.
    pub closed_at: Option<(u64, u64)>,
}

impl Marker {
    /// The counters nothing at or below which may be used again: the exact ones after a
    /// clean close, else the reservation.
    pub fn floor(&self) -> (u64, u64) {
        self.closed_at
            .unwrap_or((self.stan_reserved, self.id_reserved))
    }

    /// Read the marker at `path`; `None` when there is none.
    ///
    /// # Errors
    /// [`JournalError::Io`] when it cannot be read, [`JournalError::MarkerDamaged`] when it
    /// does not say what a marker says.
    pub fn load(path: &Path) -> Result<Option<Marker>, JournalError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(JournalError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Marker::parse(&text)
            .map(Some)
            .map_err(|detail| JournalError::MarkerDamaged {
                path: path.to_path_buf(),
                detail,
            })
    }

    fn parse(text: &str) -> Result<Marker, String> {
        let mut id = None;
        let (mut stan, mut ids) = (None, None);
        let (mut closed_stan, mut closed_id) = (None, None);
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| format!("line {line:?} is not KEY=VALUE"))?;
            let number = || {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("{k}={v:?} is not a number"))
            };
            match k.trim() {
                "terminal_id" => id = Some(v.trim().to_string()),
                "stan_reserved" => stan = Some(number()?),
                "id_reserved" => ids = Some(number()?),
                "closed_at_stan" => closed_stan = Some(number()?),
                "closed_at_id" => closed_id = Some(number()?),
                other => return Err(format!("unknown key {other:?}")),
            }
        }
        let terminal_id = id
            .filter(|i| !i.is_empty() && i.chars().all(|c| c.is_ascii_hexdigit()))
            .ok_or("no terminal_id")?;
        Ok(Marker {
            terminal_id,
            stan_reserved: stan.ok_or("no stan_reserved")?,
            id_reserved: ids.ok_or("no id_reserved")?,
            closed_at: closed_stan.zip(closed_id),
        })
    }

    fn text(&self) -> String {
        let mut s = format!(
            "# The identity of this lane's journal. Do not delete: it lets the service notice a\n\
             # journal that was lost, emptied, replaced or put back from an older copy.\n\
             terminal_id={}\nstan_reserved={}\nid_reserved={}\n",
            self.terminal_id, self.stan_reserved, self.id_reserved
        );
        if let Some((stan, id)) = self.closed_at {
            s.push_str(&format!("closed_at_stan={stan}\nclosed_at_id={id}\n"));
        }
        s
    }

    /// Write the marker at `path` durably: a temporary file, flushed, renamed over the old
    /// one, and the directory flushed, so a crash leaves the old marker or the new one.
    ///
    /// # Errors
    /// [`JournalError::Io`] (e.g. a full or read-only disk).
    pub fn store(&self, path: &Path) -> Result<(), JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        };
        let tmp = path.with_extension("identity.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(self.text().as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_reads_back_what_was_stored() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = marker_path(&dir.path().join("journal.sqlite"));
        assert_eq!(
            path.file_name().and_then(|n| n.to_str()),
            Some(".journal.sqlite.identity")
        );
        assert_eq!(Marker::load(&path).ok(), Some(None));
        for closed_at in [None, Some((1_234_567, 89))] {
            let m = Marker {
                terminal_id: "00ff".repeat(8),
                stan_reserved: 1_234_600,
                id_reserved: 200,
                closed_at,
            };
            m.store(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(Marker::load(&path).ok(), Some(Some(m.clone())));
            let floor = m.floor();
            assert_eq!(floor, closed_at.unwrap_or((1_234_600, 200)));
        }
    }

    #[test]
    fn a_damaged_marker_is_an_error_never_a_new_identity() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join(".j.identity");
        for text in [
            "",
            "terminal_id=zz\nstan_reserved=1\nid_reserved=1\n",
            "terminal_id=ab\nstan_reserved=x\nid_reserved=1\n",
            "terminal_id=ab\nid_reserved=1\n",
            "terminal_id=ab\nstan_reserved=1\nid_reserved=1\ncolour=red\n",
            "\u{0}\u{1}garbage",
        ] {
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
            match Marker::load(&path) {
                Err(JournalError::MarkerDamaged { .. }) => {}
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}
