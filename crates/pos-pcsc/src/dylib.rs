//! The real PC/SC layer: pcsc-lite's `libpcsclite.so.1`, opened at run time.
//!
//! Why at run time (libloading) rather than linked: the default build needs no apt package
//! and no system library at build time, and a box without pcsc-lite still runs the service
//! (its `usb:` readers work); asking for a `pcsc:` reader there gives one line saying what to
//! install.
//!
//! The C declarations follow pcsc-lite's headers (`PCSC/winscard.h`, `PCSC/pcsclite.h`,
//! `PCSC/wintypes.h`) on Linux: `DWORD` is `unsigned long`, `LONG` is `long`,
//! `SCARDCONTEXT`/`SCARDHANDLE` are `LONG`,
//! `SCARD_READERSTATE` is `{ const char *szReader; void *pvUserData; DWORD dwCurrentState;
//! DWORD dwEventState; DWORD cbAtr; unsigned char rgbAtr[MAX_ATR_SIZE]; }` with
//! `MAX_ATR_SIZE` 33 and natural alignment (only macOS packs it), and `SCARD_IO_REQUEST` is
//! `{ unsigned long dwProtocol; unsigned long cbPciLength; }`. pcsc-lite's own
//! `g_rgSCardT0Pci` is `{ SCARD_PROTOCOL_T0, sizeof(SCARD_IO_REQUEST) }` (`src/g_defines.c`),
//! which is what [`pci`] builds.

use std::ffi::{CString, c_char, c_void};
use std::time::Duration;

use crate::api::{
    CardHandle, CardStatus, Context, Disposition, PcscApi, Protocol, ReaderState, ScardResult,
    ShareMode, atr_from_buffer, parse_multi_string,
};
use crate::codes::{
    Dword, Long, MAX_ATR_SIZE, SCARD_E_INSUFFICIENT_BUFFER, SCARD_E_INVALID_PARAMETER,
    SCARD_E_NO_READERS_AVAILABLE, SCARD_S_SUCCESS, SCARD_SCOPE_SYSTEM, ScardCode,
};

/// The library's file name (Debian/Ubuntu package `libpcsclite1`, Fedora `pcsc-lite-libs`).
pub const LIBRARY_NAME: &str = "libpcsclite.so.1";

/// The longest `dwTimeout` given to `SCardGetStatusChange`: one below `INFINITE`
/// (0xFFFFFFFF), so no call waits forever whatever the caller asks.
const MAX_STATUS_TIMEOUT_MS: u32 = 0xFFFF_FFFE;

/// `SCARD_READERSTATE` on Linux.
#[repr(C)]
struct ReaderStateC {
    sz_reader: *const c_char,
    pv_user_data: *mut c_void,
    dw_current_state: Dword,
    dw_event_state: Dword,
    cb_atr: Dword,
    rgb_atr: [u8; MAX_ATR_SIZE],
}

/// `SCARD_IO_REQUEST`.
#[repr(C)]
struct IoRequestC {
    dw_protocol: Dword,
    cb_pci_length: Dword,
}

type EstablishFn = unsafe extern "C" fn(Dword, *const c_void, *const c_void, *mut Long) -> Long;
type ReleaseFn = unsafe extern "C" fn(Long) -> Long;
type ListReadersFn = unsafe extern "C" fn(Long, *const c_char, *mut c_char, *mut Dword) -> Long;
type GetStatusChangeFn = unsafe extern "C" fn(Long, Dword, *mut ReaderStateC, Dword) -> Long;
type CancelFn = unsafe extern "C" fn(Long) -> Long;
type ConnectFn =
    unsafe extern "C" fn(Long, *const c_char, Dword, Dword, *mut Long, *mut Dword) -> Long;
type ReconnectFn = unsafe extern "C" fn(Long, Dword, Dword, Dword, *mut Dword) -> Long;
type DisconnectFn = unsafe extern "C" fn(Long, Dword) -> Long;
type StatusFn = unsafe extern "C" fn(
    Long,
    *mut c_char,
    *mut Dword,
    *mut Dword,
    *mut Dword,
    *mut u8,
    *mut Dword,
) -> Long;
type TransmitFn = unsafe extern "C" fn(
    Long,
    *const IoRequestC,
    *const u8,
    Dword,
    *mut IoRequestC,
    *mut u8,
    *mut Dword,
) -> Long;
type BeginFn = unsafe extern "C" fn(Long) -> Long;
type EndFn = unsafe extern "C" fn(Long, Dword) -> Long;

/// pcsc-lite's client library, loaded with [`Libpcsclite::load`].
pub struct Libpcsclite {
    establish: EstablishFn,
    release: ReleaseFn,
    list_readers: ListReadersFn,
    get_status_change: GetStatusChangeFn,
    cancel: CancelFn,
    connect: ConnectFn,
    reconnect: ReconnectFn,
    disconnect: DisconnectFn,
    status: StatusFn,
    transmit: TransmitFn,
    begin: BeginFn,
    end: EndFn,
    /// Keeps the code the pointers above point into loaded for as long as they live.
    _library: libloading::Library,
}

impl std::fmt::Debug for Libpcsclite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Libpcsclite")
    }
}

/// Why the library could not be loaded: the loader's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// What was asked for (file name or path).
    pub library: String,
    /// The dynamic loader's message (or the missing symbol).
    pub detail: String,
}

fn symbol<T: Copy>(lib: &libloading::Library, name: &str) -> Result<T, LoadError> {
    let mut z = name.as_bytes().to_vec();
    z.push(0);
    // SAFETY: each `T` is the C prototype of `name` from pcsc-lite's winscard.h on Linux
    // (see the module docs); the pointer is copied out and used only while `lib` is alive
    // (it is kept in the same `Libpcsclite`).
    unsafe { lib.get::<T>(&z) }
        .map(|s| *s)
        .map_err(|e| LoadError {
            library: LIBRARY_NAME.to_string(),
            detail: format!("{name}: {e}"),
        })
}

impl Libpcsclite {
    /// Load `libpcsclite.so.1` through the dynamic loader's search path.
    ///
    /// Errors: [`LoadError`] when the library is not installed or lacks a function.
    /// No timeout applies (a file look-up).
    pub fn load() -> Result<Libpcsclite, LoadError> {
        Self::load_from(LIBRARY_NAME)
    }

    /// Load the library at `path` (a file name searched as `dlopen(3)` does, or a path).
    ///
    /// Errors: [`LoadError`] as [`load`](Self::load).
    pub fn load_from(path: &str) -> Result<Libpcsclite, LoadError> {
        // SAFETY: loading pcsc-lite runs its initialisers, which only set up its client
        // state; no other code runs.
        let lib = unsafe { libloading::Library::new(path) }.map_err(|e| LoadError {
            library: path.to_string(),
            detail: e.to_string(),
        })?;
        Ok(Libpcsclite {
            establish: symbol(&lib, "SCardEstablishContext")?,
            release: symbol(&lib, "SCardReleaseContext")?,
            list_readers: symbol(&lib, "SCardListReaders")?,
            get_status_change: symbol(&lib, "SCardGetStatusChange")?,
            cancel: symbol(&lib, "SCardCancel")?,
            connect: symbol(&lib, "SCardConnect")?,
            reconnect: symbol(&lib, "SCardReconnect")?,
            disconnect: symbol(&lib, "SCardDisconnect")?,
            status: symbol(&lib, "SCardStatus")?,
            transmit: symbol(&lib, "SCardTransmit")?,
            begin: symbol(&lib, "SCardBeginTransaction")?,
            end: symbol(&lib, "SCardEndTransaction")?,
            _library: lib,
        })
    }
}

fn check(rc: Long) -> ScardResult<()> {
    if rc == SCARD_S_SUCCESS {
        Ok(())
    } else {
        Err(ScardCode(rc))
    }
}

fn c_name(name: &str) -> ScardResult<CString> {
    CString::new(name).map_err(|_| ScardCode(SCARD_E_INVALID_PARAMETER))
}

/// The protocol control information for `protocol`, as pcsc-lite's `g_rgSCardT0Pci` /
/// `g_rgSCardT1Pci` hold it.
fn pci(protocol: Protocol) -> IoRequestC {
    IoRequestC {
        dw_protocol: protocol.raw(),
        cb_pci_length: std::mem::size_of::<IoRequestC>() as Dword,
    }
}

impl PcscApi for Libpcsclite {
    fn establish_context(&self) -> ScardResult<Context> {
        let mut ctx: Long = 0;
        // SAFETY: reserved pointers may be null; `ctx` is a valid out pointer for the call.
        let rc = unsafe {
            (self.establish)(
                SCARD_SCOPE_SYSTEM,
                std::ptr::null(),
                std::ptr::null(),
                &mut ctx,
            )
        };
        check(rc).map(|()| Context(ctx))
    }

    fn release_context(&self, ctx: Context) -> ScardResult<()> {
        // SAFETY: a plain value argument.
        check(unsafe { (self.release)(ctx.0) })
    }

    fn list_readers(&self, ctx: Context) -> ScardResult<Vec<String>> {
        // A reader may arrive between the size query and the read: try again a few times.
        for _ in 0..4 {
            let mut len: Dword = 0;
            // SAFETY: a null buffer asks for the length only; `len` is a valid out pointer.
            let rc = unsafe {
                (self.list_readers)(ctx.0, std::ptr::null(), std::ptr::null_mut(), &mut len)
            };
            check(rc)?;
            let Ok(n) = usize::try_from(len) else {
                return Err(ScardCode(SCARD_E_INSUFFICIENT_BUFFER));
            };
            if n == 0 {
                return Err(ScardCode(SCARD_E_NO_READERS_AVAILABLE));
            }
            // Bounded: pcsc-lite's reader names are at most 128 bytes, 16 readers.
            let mut buf = vec![0u8; n.min(1 << 20)];
            let mut len = buf.len() as Dword;
            // SAFETY: `buf` holds `len` bytes, the library writes at most `len`.
            let rc = unsafe {
                (self.list_readers)(
                    ctx.0,
                    std::ptr::null(),
                    buf.as_mut_ptr().cast::<c_char>(),
                    &mut len,
                )
            };
            match check(rc) {
                Ok(()) => {
                    let used = usize::try_from(len).unwrap_or(0).min(buf.len());
                    return Ok(parse_multi_string(buf.get(..used).unwrap_or_default()));
                }
                Err(c) if c.0 == SCARD_E_INSUFFICIENT_BUFFER => continue,
                Err(c) => return Err(c),
            }
        }
        Err(ScardCode(SCARD_E_INSUFFICIENT_BUFFER))
    }

    fn get_status_change(
        &self,
        ctx: Context,
        timeout: Duration,
        states: &mut [ReaderState],
    ) -> ScardResult<()> {
        let names = states
            .iter()
            .map(|s| c_name(&s.reader))
            .collect::<ScardResult<Vec<CString>>>()?;
        let mut raw: Vec<ReaderStateC> = states
            .iter()
            .zip(&names)
            .map(|(s, n)| ReaderStateC {
                sz_reader: n.as_ptr(),
                pv_user_data: std::ptr::null_mut(),
                dw_current_state: s.current,
                dw_event_state: 0,
                cb_atr: 0,
                rgb_atr: [0; MAX_ATR_SIZE],
            })
            .collect();
        let ms = u32::try_from(timeout.as_millis())
            .unwrap_or(MAX_STATUS_TIMEOUT_MS)
            .min(MAX_STATUS_TIMEOUT_MS);
        // SAFETY: `raw` holds `raw.len()` entries whose names (`names`) outlive the call.
        let rc = unsafe {
            (self.get_status_change)(ctx.0, Dword::from(ms), raw.as_mut_ptr(), raw.len() as Dword)
        };
        for (s, r) in states.iter_mut().zip(&raw) {
            s.event = r.dw_event_state;
            s.atr = atr_from_buffer(&r.rgb_atr, r.cb_atr);
        }
        check(rc)
    }

    fn cancel(&self, ctx: Context) -> ScardResult<()> {
        // SAFETY: a plain value argument.
        check(unsafe { (self.cancel)(ctx.0) })
    }

    fn connect(
        &self,
        ctx: Context,
        reader: &str,
        share: ShareMode,
        protocols: Dword,
    ) -> ScardResult<(CardHandle, Protocol)> {
        let name = c_name(reader)?;
        let mut card: Long = 0;
        let mut active: Dword = 0;
        // SAFETY: `name` is NUL-terminated and outlives the call; out pointers are valid.
        let rc = unsafe {
            (self.connect)(
                ctx.0,
                name.as_ptr(),
                share.raw(),
                protocols,
                &mut card,
                &mut active,
            )
        };
        check(rc).map(|()| (CardHandle(card), Protocol::from_raw(active)))
    }

    fn reconnect(
        &self,
        card: CardHandle,
        share: ShareMode,
        protocols: Dword,
        init: Disposition,
    ) -> ScardResult<Protocol> {
        let mut active: Dword = 0;
        // SAFETY: `active` is a valid out pointer.
        let rc =
            unsafe { (self.reconnect)(card.0, share.raw(), protocols, init.raw(), &mut active) };
        check(rc).map(|()| Protocol::from_raw(active))
    }

    fn disconnect(&self, card: CardHandle, disposition: Disposition) -> ScardResult<()> {
        // SAFETY: plain value arguments.
        check(unsafe { (self.disconnect)(card.0, disposition.raw()) })
    }

    fn status(&self, card: CardHandle) -> ScardResult<CardStatus> {
        let mut name = [0u8; 1024];
        let mut name_len = name.len() as Dword;
        let mut state: Dword = 0;
        let mut protocol: Dword = 0;
        let mut atr = [0u8; 64];
        let mut atr_len = atr.len() as Dword;
        // SAFETY: every buffer is as long as its length argument says; out pointers valid.
        let rc = unsafe {
            (self.status)(
                card.0,
                name.as_mut_ptr().cast::<c_char>(),
                &mut name_len,
                &mut state,
                &mut protocol,
                atr.as_mut_ptr(),
                &mut atr_len,
            )
        };
        check(rc)?;
        let used = usize::try_from(name_len).unwrap_or(0).min(name.len());
        Ok(CardStatus {
            reader: parse_multi_string(name.get(..used).unwrap_or_default())
                .into_iter()
                .next()
                .unwrap_or_default(),
            state,
            protocol: Protocol::from_raw(protocol),
            atr: atr_from_buffer(&atr, atr_len),
        })
    }

    fn transmit(
        &self,
        card: CardHandle,
        protocol: Protocol,
        send: &[u8],
        recv: &mut [u8],
    ) -> ScardResult<usize> {
        let send_pci = pci(protocol);
        let mut len = recv.len() as Dword;
        // SAFETY: `send` and `recv` are valid for their lengths; a null receive PCI is
        // allowed by pcsc-lite; `len` is a valid in/out pointer.
        let rc = unsafe {
            (self.transmit)(
                card.0,
                &send_pci,
                send.as_ptr(),
                send.len() as Dword,
                std::ptr::null_mut(),
                recv.as_mut_ptr(),
                &mut len,
            )
        };
        check(rc)?;
        Ok(usize::try_from(len).unwrap_or(0).min(recv.len()))
    }

    fn begin_transaction(&self, card: CardHandle) -> ScardResult<()> {
        // SAFETY: a plain value argument.
        check(unsafe { (self.begin)(card.0) })
    }

    fn end_transaction(&self, card: CardHandle, disposition: Disposition) -> ScardResult<()> {
        // SAFETY: plain value arguments.
        check(unsafe { (self.end)(card.0, disposition.raw()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    fn the_c_layouts_are_pcsc_lites_on_linux_x86_64() {
        // 8 + 8 + 8 + 8 + 8 + 33, padded to 8: 80 bytes.
        assert_eq!(std::mem::size_of::<ReaderStateC>(), 80);
        assert_eq!(std::mem::offset_of!(ReaderStateC, rgb_atr), 40);
        assert_eq!(std::mem::size_of::<IoRequestC>(), 16);
        assert_eq!(pci(Protocol::T1).cb_pci_length, 16);
    }

    #[test]
    fn a_missing_library_is_an_error_not_a_crash() {
        let e = Libpcsclite::load_from("libpcsclite-does-not-exist.so.9").unwrap_err();
        assert_eq!(e.library, "libpcsclite-does-not-exist.so.9");
        assert!(!e.detail.is_empty());
    }
}
