//! `pcsc-bench N APDUHEX`: the same APDU benchmark as `apdu.direct`, through pcscd and
//! libpcsclite, for comparison.
//!
//! Waits up to 10 s for a reader with a card, connects (T=0 or T=1, shared), sends the APDU
//! [`WARM_UP`] times, then `N` times timed, and prints one line:
//! `PCSC-BENCH count p50 p99 mean` (nanoseconds). Errors go to standard error, exit code 1.
//!
//! The FFI to libpcsclite is written by hand (a dozen functions): on Linux pcsc-lite's
//! `DWORD` is `unsigned long` and `LONG` is `long`, and the protocol control information
//! blocks `g_rgSCardT0Pci` / `g_rgSCardT1Pci` are exported statics.

use std::ffi::{CStr, c_char, c_long, c_ulong, c_void};
use std::time::{Duration, Instant};

use qemu_rig_guest::bench::{Stats, hex, parse_hex_apdu};

/// Exchanges before the timed ones.
const WARM_UP: u32 = 20;

/// How long to wait for a reader with a card.
const CARD_WAIT: Duration = Duration::from_secs(10);

#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
type DWORD = c_ulong;
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
type LONG = c_long;
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
type SCARDCONTEXT = LONG;
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
type SCARDHANDLE = LONG;

/// `SCARD_IO_REQUEST`.
#[repr(C)]
#[allow(non_snake_case)]
struct ScardIoRequest {
    dwProtocol: DWORD,
    cbPciLength: DWORD,
}

const SCARD_S_SUCCESS: LONG = 0;
const SCARD_SCOPE_SYSTEM: DWORD = 2;
const SCARD_SHARE_SHARED: DWORD = 2;
const SCARD_PROTOCOL_T0: DWORD = 1;
const SCARD_PROTOCOL_T1: DWORD = 2;
const SCARD_LEAVE_CARD: DWORD = 0;

#[link(name = "pcsclite")]
unsafe extern "C" {
    static g_rgSCardT0Pci: ScardIoRequest;
    static g_rgSCardT1Pci: ScardIoRequest;

    fn SCardEstablishContext(
        scope: DWORD,
        reserved1: *const c_void,
        reserved2: *const c_void,
        context: *mut SCARDCONTEXT,
    ) -> LONG;
    fn SCardReleaseContext(context: SCARDCONTEXT) -> LONG;
    fn SCardListReaders(
        context: SCARDCONTEXT,
        groups: *const c_char,
        readers: *mut c_char,
        readers_len: *mut DWORD,
    ) -> LONG;
    fn SCardConnect(
        context: SCARDCONTEXT,
        reader: *const c_char,
        share_mode: DWORD,
        preferred_protocols: DWORD,
        card: *mut SCARDHANDLE,
        active_protocol: *mut DWORD,
    ) -> LONG;
    fn SCardDisconnect(card: SCARDHANDLE, disposition: DWORD) -> LONG;
    fn SCardTransmit(
        card: SCARDHANDLE,
        send_pci: *const ScardIoRequest,
        send: *const u8,
        send_len: DWORD,
        recv_pci: *mut ScardIoRequest,
        recv: *mut u8,
        recv_len: *mut DWORD,
    ) -> LONG;
}

/// A pcsc-lite return code in words.
fn code(rc: LONG) -> String {
    // pcsc-lite's codes are 32-bit values stored in a long.
    let rc32 = rc as u32;
    let name = match rc32 {
        0x8010_0002 => "SCARD_E_CANCELLED",
        0x8010_0003 => "SCARD_E_INVALID_HANDLE",
        0x8010_0009 => "SCARD_E_UNKNOWN_READER",
        0x8010_000A => "SCARD_E_TIMEOUT",
        0x8010_000B => "SCARD_E_SHARING_VIOLATION",
        0x8010_000C => "SCARD_E_NO_SMARTCARD",
        0x8010_000F => "SCARD_E_PROTO_MISMATCH",
        0x8010_0017 => "SCARD_E_READER_UNAVAILABLE",
        0x8010_001D => "SCARD_E_NO_SERVICE",
        0x8010_002E => "SCARD_E_NO_READERS_AVAILABLE",
        0x8010_0066 => "SCARD_W_UNRESPONSIVE_CARD",
        0x8010_0067 => "SCARD_W_UNPOWERED_CARD",
        0x8010_0069 => "SCARD_W_REMOVED_CARD",
        _ => "",
    };
    format!("0x{rc32:08X} {name}").trim_end().to_string()
}

/// An established context, released on drop.
struct Context(SCARDCONTEXT);

impl Context {
    fn establish() -> Result<Context, String> {
        let mut ctx: SCARDCONTEXT = 0;
        // SAFETY: the reserved pointers may be null; `ctx` is a valid out pointer for the
        // duration of the call.
        let rc = unsafe {
            SCardEstablishContext(
                SCARD_SCOPE_SYSTEM,
                std::ptr::null(),
                std::ptr::null(),
                &mut ctx,
            )
        };
        if rc != SCARD_S_SUCCESS {
            return Err(format!(
                "SCardEstablishContext: {} (is pcscd running?)",
                code(rc)
            ));
        }
        Ok(Context(ctx))
    }

    /// The readers' names (empty when there are none yet).
    fn readers(&self) -> Result<Vec<Vec<u8>>, String> {
        let mut len: DWORD = 0;
        // SAFETY: a null buffer asks for the length only; `len` is a valid out pointer.
        let rc =
            unsafe { SCardListReaders(self.0, std::ptr::null(), std::ptr::null_mut(), &mut len) };
        if rc as u32 == 0x8010_002E {
            return Ok(Vec::new());
        }
        if rc != SCARD_S_SUCCESS {
            return Err(format!("SCardListReaders: {}", code(rc)));
        }
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0).max(1)];
        // SAFETY: `buf` has room for `len` bytes, as the call above asked for; `len` says so.
        let rc = unsafe {
            SCardListReaders(self.0, std::ptr::null(), buf.as_mut_ptr().cast(), &mut len)
        };
        if rc as u32 == 0x8010_002E {
            return Ok(Vec::new());
        }
        if rc != SCARD_S_SUCCESS {
            return Err(format!("SCardListReaders: {}", code(rc)));
        }
        buf.truncate(usize::try_from(len).unwrap_or(0).min(buf.len()));
        // A multi-string: names ended by NUL, the list by an empty name.
        Ok(buf
            .split(|b| *b == 0)
            .filter(|n| !n.is_empty())
            .map(|n| {
                let mut v = n.to_vec();
                v.push(0);
                v
            })
            .collect())
    }

    /// Connect to the card in `reader` (a NUL-terminated name): the handle and protocol.
    fn connect(&self, reader: &[u8]) -> Result<Card, LONG> {
        let name = CStr::from_bytes_with_nul(reader).map_err(|_| -1 as LONG)?;
        let mut handle: SCARDHANDLE = 0;
        let mut protocol: DWORD = 0;
        // SAFETY: `name` is NUL-terminated and outlives the call; the out pointers are valid.
        let rc = unsafe {
            SCardConnect(
                self.0,
                name.as_ptr(),
                SCARD_SHARE_SHARED,
                SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                &mut handle,
                &mut protocol,
            )
        };
        if rc != SCARD_S_SUCCESS {
            return Err(rc);
        }
        Ok(Card { handle, protocol })
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context was established and is released once.
        unsafe {
            SCardReleaseContext(self.0);
        }
    }
}

/// A connected card, disconnected (left powered) on drop.
struct Card {
    handle: SCARDHANDLE,
    protocol: DWORD,
}

impl Card {
    fn transmit(&self, apdu: &[u8], recv: &mut [u8]) -> Result<usize, String> {
        // Only the statics' addresses are taken (no read here, which needs no `unsafe`);
        // pcsc-lite reads them, and never writes them.
        let pci: *const ScardIoRequest = if self.protocol == SCARD_PROTOCOL_T1 {
            &raw const g_rgSCardT1Pci
        } else {
            &raw const g_rgSCardT0Pci
        };
        let send_len = DWORD::try_from(apdu.len()).map_err(|_| "APDU too long".to_string())?;
        let mut recv_len = DWORD::try_from(recv.len()).unwrap_or(0);
        // SAFETY: `pci` points to pcsc-lite's static; `apdu` is readable for `send_len`
        // bytes and `recv` writable for `recv_len` bytes for the duration of the call; a
        // null receive PCI is allowed.
        let rc = unsafe {
            SCardTransmit(
                self.handle,
                pci,
                apdu.as_ptr(),
                send_len,
                std::ptr::null_mut(),
                recv.as_mut_ptr(),
                &mut recv_len,
            )
        };
        if rc != SCARD_S_SUCCESS {
            return Err(format!("SCardTransmit: {}", code(rc)));
        }
        Ok(usize::try_from(recv_len).unwrap_or(0).min(recv.len()))
    }
}

impl Drop for Card {
    fn drop(&mut self) {
        // SAFETY: the handle came from SCardConnect and is disconnected once.
        unsafe {
            SCardDisconnect(self.handle, SCARD_LEAVE_CARD);
        }
    }
}

fn run(count: u32, apdu: &[u8]) -> Result<Stats, String> {
    let ctx = Context::establish()?;
    let start = Instant::now();
    let mut last = "no reader yet".to_string();
    let (card, reader) = loop {
        let mut found = None;
        for reader in ctx.readers()? {
            match ctx.connect(&reader) {
                Ok(card) => {
                    found = Some((card, reader));
                    break;
                }
                Err(rc) => last = code(rc),
            }
        }
        if let Some(f) = found {
            break f;
        }
        if start.elapsed() >= CARD_WAIT {
            return Err(format!(
                "no reader with a card within {} s ({last})",
                CARD_WAIT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "pcsc-bench: {} T={} APDU {} x ({WARM_UP} + {count})",
        String::from_utf8_lossy(reader.strip_suffix(&[0]).unwrap_or(&reader)),
        if card.protocol == SCARD_PROTOCOL_T1 {
            1
        } else {
            0
        },
        hex(apdu)
    );
    let mut recv = [0u8; 258];
    let mut last = (0usize, 0u16);
    let mut samples = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for i in 0..(WARM_UP + count) {
        let t = Instant::now();
        let n = card.transmit(apdu, &mut recv)?;
        let took = t.elapsed();
        let sw = match recv.get(..n) {
            Some([.., a, b]) => u16::from_be_bytes([*a, *b]),
            _ => return Err(format!("exchange {}: no status words", i + 1)),
        };
        // 61xx: a T=0 card's case 4 answer (pcsc-lite passes it on as the driver does).
        if sw != 0x9000 && sw >> 8 != 0x61 {
            return Err(format!(
                "exchange {}: answered {sw:04X}, not 9000 or 61xx",
                i + 1
            ));
        }
        if i >= WARM_UP {
            samples.push(took);
        }
        last = (n, sw);
    }
    eprintln!("last answer: {} bytes, SW {:04X}", last.0, last.1);
    Stats::from_samples(&samples).ok_or_else(|| "no samples".to_string())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (count, apdu) = match args.as_slice() {
        [n, apdu] => match (n.parse::<u32>(), parse_hex_apdu(apdu)) {
            (Ok(n), Ok(a)) if n > 0 => (n, a),
            (Err(_) | Ok(_), Ok(_)) => {
                eprintln!("pcsc-bench: {n:?} is not a positive count");
                std::process::exit(2);
            }
            (_, Err(e)) => {
                eprintln!("pcsc-bench: {e}");
                std::process::exit(2);
            }
        },
        _ => {
            eprintln!(
                "usage: pcsc-bench N APDUHEX   (e.g. pcsc-bench 300 00A4040007A000000004101000)"
            );
            std::process::exit(2);
        }
    };
    match run(count, &apdu) {
        Ok(stats) => println!("{}", stats.pcsc_line()),
        Err(e) => {
            eprintln!("pcsc-bench: {e}");
            std::process::exit(1);
        }
    }
}
