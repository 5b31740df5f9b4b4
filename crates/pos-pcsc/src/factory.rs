//! Opening `pcsc:` readers and listing what pcscd has.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pos_link::{Address, DeviceUri};

use crate::api::{PcscApi, ReaderState};
use crate::codes::SCARD_E_NO_READERS_AVAILABLE;
use crate::dylib::{Libpcsclite, LoadError};
use crate::error::PcscError;
use crate::reader::{PcscConfig, PcscReader};

/// pcsc-lite, loaded once per process (the first time a `pcsc:` reader is asked for).
///
/// Errors: [`PcscError::LibraryMissing`] ("pcsc: libpcsclite.so.1 not found: install pcscd
/// and libpcsclite1, or use a usb: reader"). No timeout applies (a file look-up).
pub fn library() -> Result<Arc<dyn PcscApi>, PcscError> {
    static LIB: OnceLock<Result<Arc<Libpcsclite>, LoadError>> = OnceLock::new();
    match LIB.get_or_init(|| Libpcsclite::load().map(Arc::new)) {
        Ok(lib) => Ok(Arc::clone(lib) as Arc<dyn PcscApi>),
        Err(e) => Err(missing(e)),
    }
}

/// pcsc-lite from `path` (a file name the dynamic loader searches, or a path), for a box
/// where it is not where the loader looks.
///
/// Errors: [`PcscError::LibraryMissing`], one line naming `path` and what to install.
pub fn open_library(path: &str) -> Result<Arc<dyn PcscApi>, PcscError> {
    Libpcsclite::load_from(path)
        .map(|l| Arc::new(l) as Arc<dyn PcscApi>)
        .map_err(|e| missing(&e))
}

fn missing(e: &LoadError) -> PcscError {
    PcscError::LibraryMissing {
        library: e.library.clone(),
        detail: e.detail.clone(),
    }
}

/// The reader a `pcsc:` URI names: `Some(name)` for `pcsc:NAME`, `None` for `pcsc:` (the
/// first reader).
///
/// Errors: `BadAddress` (InvalidInput) for a URI of another scheme.
pub fn reader_of(uri: &DeviceUri) -> Result<Option<String>, PcscError> {
    match uri.address() {
        Address::Pcsc { reader } => Ok(reader.clone()),
        _ => Err(PcscError::BadAddress(format!(
            "{uri}: not a pcsc: reader (pcsc:READER NAME, or pcsc: for the first reader)"
        ))),
    }
}

/// Open the reader at `uri` (`pcsc:READER NAME`, or `pcsc:` for the first reader pcscd
/// lists) through pcsc-lite.
///
/// Errors: `LibraryMissing` (NotFound, one line saying what to install), `NoService`
/// (Disconnected: "pcscd is not running", with `systemctl start pcscd.socket`), `NoReader`
/// (NotFound: no reader of that name, naming the ones pcscd has), `BadAddress`
/// (InvalidInput), `NoAnswer` (Timeout, [`PcscConfig::call_timeout`]).
pub fn open(uri: &DeviceUri, config: PcscConfig) -> Result<PcscReader, PcscError> {
    let wanted = reader_of(uri)?;
    open_with(library()?, wanted.as_deref(), config)
}

/// Open `wanted` (or the first reader, for `None`) through `api`: the same as [`open`] over
/// any PC/SC layer (the `fake` feature's, in tests).
///
/// Errors: as [`open`], without `LibraryMissing`.
pub fn open_with(
    api: Arc<dyn PcscApi>,
    wanted: Option<&str>,
    config: PcscConfig,
) -> Result<PcscReader, PcscError> {
    let readers = readers(&api, config.call_timeout)?;
    let name = match wanted {
        Some(w) => readers.iter().find(|r| r.as_str() == w).cloned(),
        None => readers.first().cloned(),
    };
    let Some(name) = name else {
        return Err(PcscError::NoReader {
            wanted: wanted.map(str::to_string),
            available: readers,
        });
    };
    let uri = DeviceUri::new(
        Address::Pcsc {
            reader: Some(name.clone()),
        },
        Vec::new(),
    )
    .map(|u| u.to_string())
    .unwrap_or_else(|_| format!("pcsc:{name}"));
    PcscReader::open(api, &name, &uri, config)
}

/// One reader pcscd has, for `posctl reader list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderEntry {
    /// The PC/SC reader name.
    pub name: String,
    /// The URI that opens it (`pcsc:NAME`).
    pub uri: String,
    /// A card is in the reader.
    pub card_present: bool,
    /// The card's ATR as pcscd last read it (empty without a card).
    pub atr: Vec<u8>,
}

/// The readers pcscd has, with card presence, through pcsc-lite.
///
/// Errors: `LibraryMissing`, `NoService`, `NoAnswer` (Timeout after `timeout`), `Call`.
/// No readers is an empty list, not an error.
pub fn list(timeout: Duration) -> Result<Vec<ReaderEntry>, PcscError> {
    list_with(library()?, timeout)
}

/// [`list`] over any PC/SC layer.
///
/// Errors: as [`list`], without `LibraryMissing`.
pub fn list_with(api: Arc<dyn PcscApi>, timeout: Duration) -> Result<Vec<ReaderEntry>, PcscError> {
    let names = readers(&api, timeout)?;
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let states = run_bounded(timeout, "SCardGetStatusChange", {
        let api = Arc::clone(&api);
        let names = names.clone();
        move || {
            let ctx = api
                .establish_context()
                .map_err(|c| PcscError::from_code("SCardEstablishContext", c))?;
            let mut st: Vec<ReaderState> = names.iter().map(|n| ReaderState::unaware(n)).collect();
            let r = api.get_status_change(ctx, Duration::ZERO, &mut st);
            let _ = api.release_context(ctx);
            r.map(|()| st)
                .map_err(|c| PcscError::from_code("SCardGetStatusChange", c))
        }
    })?;
    Ok(states
        .into_iter()
        .map(|s| {
            let uri = DeviceUri::new(
                Address::Pcsc {
                    reader: Some(s.reader.clone()),
                },
                Vec::new(),
            )
            .map(|u| u.to_string())
            .unwrap_or_else(|_| format!("pcsc:{}", s.reader));
            ReaderEntry {
                card_present: s.present(),
                atr: if s.present() {
                    s.atr.clone()
                } else {
                    Vec::new()
                },
                name: s.reader,
                uri,
            }
        })
        .collect())
}

/// The reader names pcscd has (empty when none), on a context of its own, bounded.
fn readers(api: &Arc<dyn PcscApi>, timeout: Duration) -> Result<Vec<String>, PcscError> {
    run_bounded(timeout, "SCardListReaders", {
        let api = Arc::clone(api);
        move || {
            let ctx = api
                .establish_context()
                .map_err(|c| PcscError::from_code("SCardEstablishContext", c))?;
            let r = api.list_readers(ctx);
            let _ = api.release_context(ctx);
            match r {
                Ok(names) => Ok(names),
                Err(c) if c.0 == SCARD_E_NO_READERS_AVAILABLE => Ok(Vec::new()),
                Err(c) => Err(PcscError::from_code("SCardListReaders", c)),
            }
        }
    })
}

/// Run `f` on a thread of its own, waiting at most `timeout`.
fn run_bounded<T: Send + 'static>(
    timeout: Duration,
    call: &'static str,
    f: impl FnOnce() -> Result<T, PcscError> + Send + 'static,
) -> Result<T, PcscError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("pcsc-call".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| PcscError::Thread(e.to_string()))?;
    rx.recv_timeout(timeout).unwrap_or(Err(PcscError::NoAnswer {
        call,
        after: timeout,
    }))
}
