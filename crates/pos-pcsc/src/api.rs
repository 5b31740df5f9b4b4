//! The PC/SC calls this crate needs, as one narrow trait with Rust types.
//!
//! [`PcscApi`] is implemented by [`Libpcsclite`](crate::Libpcsclite) (the real library,
//! loaded at run time) and, with the `fake` feature, by `fake::FakePcsc` (scripted, in memory).
//! Everything above it ([`PcscReader`](crate::PcscReader), the monitor, [`list`](crate::list))
//! is written once against the trait.
//!
//! # Timeouts
//! Only `SCardGetStatusChange` takes a timeout in PC/SC; every other call returns when pcscd
//! answers. The reader therefore runs the card calls on a worker thread of its own and waits
//! for them with a deadline (see [`PcscReader`](crate::PcscReader)); implementations of this
//! trait need not bound their calls themselves.

use std::time::Duration;

use crate::codes::{
    Dword, Long, SCARD_LEAVE_CARD, SCARD_PROTOCOL_T0, SCARD_PROTOCOL_T1, SCARD_RESET_CARD,
    SCARD_SHARE_EXCLUSIVE, SCARD_SHARE_SHARED, SCARD_STATE_CHANGED, SCARD_STATE_EMPTY,
    SCARD_STATE_PRESENT, SCARD_STATE_UNAVAILABLE, SCARD_STATE_UNKNOWN, SCARD_UNPOWER_CARD,
    ScardCode,
};

/// The result of one PC/SC call: the value, or the library's return code.
pub type ScardResult<T> = Result<T, ScardCode>;

/// An established `SCARDCONTEXT` (pcsc-lite: a `long`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Context(pub Long);

/// A connected `SCARDHANDLE` (pcsc-lite: a `long`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CardHandle(pub Long);

/// How a card is shared with other applications (`dwShareMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShareMode {
    /// `SCARD_SHARE_EXCLUSIVE`.
    Exclusive,
    /// `SCARD_SHARE_SHARED`.
    Shared,
}

impl ShareMode {
    /// The `DWORD` value.
    pub fn raw(self) -> Dword {
        match self {
            ShareMode::Exclusive => SCARD_SHARE_EXCLUSIVE,
            ShareMode::Shared => SCARD_SHARE_SHARED,
        }
    }
}

/// What to do with the card when a connection or transaction ends (`dwDisposition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// `SCARD_LEAVE_CARD`.
    Leave,
    /// `SCARD_RESET_CARD`.
    Reset,
    /// `SCARD_UNPOWER_CARD`.
    Unpower,
}

impl Disposition {
    /// The `DWORD` value.
    pub fn raw(self) -> Dword {
        match self {
            Disposition::Leave => SCARD_LEAVE_CARD,
            Disposition::Reset => SCARD_RESET_CARD,
            Disposition::Unpower => SCARD_UNPOWER_CARD,
        }
    }
}

/// The protocol of a connection (`dwActiveProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// T=0.
    T0,
    /// T=1.
    T1,
    /// Another value (raw, T=15, undefined): no APDU can be sent with it.
    Other(Dword),
}

impl Protocol {
    /// From the `DWORD` pcsc-lite returns.
    pub fn from_raw(raw: Dword) -> Protocol {
        match raw {
            SCARD_PROTOCOL_T0 => Protocol::T0,
            SCARD_PROTOCOL_T1 => Protocol::T1,
            other => Protocol::Other(other),
        }
    }

    /// The `DWORD` value.
    pub fn raw(self) -> Dword {
        match self {
            Protocol::T0 => SCARD_PROTOCOL_T0,
            Protocol::T1 => SCARD_PROTOCOL_T1,
            Protocol::Other(r) => r,
        }
    }

    /// 0 or 1 for T=0 / T=1, else `None`.
    pub fn number(self) -> Option<u8> {
        match self {
            Protocol::T0 => Some(0),
            Protocol::T1 => Some(1),
            Protocol::Other(_) => None,
        }
    }
}

/// One reader's entry for `SCardGetStatusChange`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderState {
    /// The reader's name.
    pub reader: String,
    /// The state the caller knows (`dwCurrentState`); `SCARD_STATE_UNAWARE` (0) to be told
    /// at once.
    pub current: Dword,
    /// The state pcscd reports (`dwEventState`), with the event counter in the upper 16 bits.
    pub event: Dword,
    /// The card's ATR when one is present (at most `MAX_ATR_SIZE` bytes).
    pub atr: Vec<u8>,
}

impl ReaderState {
    /// An entry for `reader` whose state the caller does not know yet.
    pub fn unaware(reader: &str) -> ReaderState {
        ReaderState {
            reader: reader.to_string(),
            current: 0,
            event: 0,
            atr: Vec::new(),
        }
    }

    /// `SCARD_STATE_PRESENT` in the event state.
    pub fn present(&self) -> bool {
        self.event & SCARD_STATE_PRESENT != 0
    }

    /// `SCARD_STATE_EMPTY` in the event state.
    pub fn empty(&self) -> bool {
        self.event & SCARD_STATE_EMPTY != 0
    }

    /// The reader is gone: `SCARD_STATE_UNKNOWN` or `SCARD_STATE_UNAVAILABLE`.
    pub fn gone(&self) -> bool {
        self.event & (SCARD_STATE_UNKNOWN | SCARD_STATE_UNAVAILABLE) != 0
    }

    /// `SCARD_STATE_CHANGED` in the event state.
    pub fn changed(&self) -> bool {
        self.event & SCARD_STATE_CHANGED != 0
    }

    /// pcsc-lite's per-reader event counter (upper 16 bits of the event state): it counts
    /// insertions and removals, so a card pulled and put back between two looks is seen.
    pub fn event_count(&self) -> u16 {
        ((self.event >> crate::codes::EVENT_COUNT_SHIFT) & 0xFFFF) as u16
    }
}

/// What `SCardStatus` says of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardStatus {
    /// The reader's name.
    pub reader: String,
    /// `pdwState` (`SCARD_PRESENT`, `SCARD_POWERED`, ... and the event counter).
    pub state: Dword,
    /// The protocol in use.
    pub protocol: Protocol,
    /// The card's ATR.
    pub atr: Vec<u8>,
}

/// The PC/SC calls of this crate, one method per `SCard...` function.
///
/// Errors: each method returns the library's code unchanged ([`ScardCode`]); the reader maps
/// it to a fault kind. Timeout: only [`get_status_change`](Self::get_status_change) takes one;
/// the others return when pcscd answers (callers bound them, see the module docs).
pub trait PcscApi: Send + Sync + 'static {
    /// `SCardEstablishContext(SCARD_SCOPE_SYSTEM)`. `SCARD_E_NO_SERVICE` when pcscd is not
    /// running.
    fn establish_context(&self) -> ScardResult<Context>;

    /// `SCardReleaseContext`.
    fn release_context(&self, ctx: Context) -> ScardResult<()>;

    /// `SCardListReaders` (all groups): the reader names, in pcscd's order.
    /// `SCARD_E_NO_READERS_AVAILABLE` when there are none.
    fn list_readers(&self, ctx: Context) -> ScardResult<Vec<String>>;

    /// `SCardGetStatusChange`: waits up to `timeout` (never `INFINITE`: the implementation
    /// clamps it) for a state in `states` to differ from its `current`; fills `event` and
    /// `atr` of every entry. `SCARD_E_TIMEOUT` when nothing changed, `SCARD_E_CANCELLED`
    /// after [`cancel`](Self::cancel).
    fn get_status_change(
        &self,
        ctx: Context,
        timeout: Duration,
        states: &mut [ReaderState],
    ) -> ScardResult<()>;

    /// `SCardCancel`: ends a `SCardGetStatusChange` waiting on `ctx` (from another thread).
    fn cancel(&self, ctx: Context) -> ScardResult<()>;

    /// `SCardConnect` to the card in `reader`, offering `protocols` (`SCARD_PROTOCOL_*`
    /// bits). Returns the handle and the protocol in use.
    fn connect(
        &self,
        ctx: Context,
        reader: &str,
        share: ShareMode,
        protocols: Dword,
    ) -> ScardResult<(CardHandle, Protocol)>;

    /// `SCardReconnect` with `init` applied to the card first (reset or unpower).
    fn reconnect(
        &self,
        card: CardHandle,
        share: ShareMode,
        protocols: Dword,
        init: Disposition,
    ) -> ScardResult<Protocol>;

    /// `SCardDisconnect`.
    fn disconnect(&self, card: CardHandle, disposition: Disposition) -> ScardResult<()>;

    /// `SCardStatus`: reader, state, protocol and ATR of a connection.
    fn status(&self, card: CardHandle) -> ScardResult<CardStatus>;

    /// `SCardTransmit` of `send` with the PCI of `protocol`; the response is written to
    /// `recv` and its length returned.
    fn transmit(
        &self,
        card: CardHandle,
        protocol: Protocol,
        send: &[u8],
        recv: &mut [u8],
    ) -> ScardResult<usize>;

    /// `SCardBeginTransaction`: no other application may use the card until it ends.
    fn begin_transaction(&self, card: CardHandle) -> ScardResult<()>;

    /// `SCardEndTransaction`.
    fn end_transaction(&self, card: CardHandle, disposition: Disposition) -> ScardResult<()>;
}

/// The names in a PC/SC multi-string (`"A\0B\0\0"`): NUL-separated, ended by an empty name.
/// Bytes that are not UTF-8 are replaced; a buffer without the final NUL is read to its end.
/// Never panics.
pub fn parse_multi_string(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|&b| b == 0)
        .take_while(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// The ATR in an ATR buffer whose length field says `len`: at most the buffer and at most
/// `MAX_ATR_SIZE` bytes, whatever `len` claims. Never panics.
pub fn atr_from_buffer(buf: &[u8], len: Dword) -> Vec<u8> {
    let n = usize::try_from(len)
        .unwrap_or(usize::MAX)
        .min(buf.len())
        .min(crate::codes::MAX_ATR_SIZE);
    buf.get(..n).map(<[u8]>::to_vec).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_strings() {
        assert_eq!(
            parse_multi_string(b"Gemalto PC Twin Reader 00 00\0QEMU 01 00\0\0"),
            ["Gemalto PC Twin Reader 00 00", "QEMU 01 00"]
        );
        assert!(parse_multi_string(b"\0").is_empty());
        assert!(parse_multi_string(b"").is_empty());
        assert_eq!(parse_multi_string(b"no end"), ["no end"]);
    }

    #[test]
    fn atr_buffers_are_clamped() {
        assert_eq!(atr_from_buffer(&[0x3B, 0x00, 0xFF], 2), [0x3B, 0x00]);
        assert_eq!(atr_from_buffer(&[0x3B], 40).len(), 1);
        assert_eq!(atr_from_buffer(&[0u8; 64], Dword::MAX).len(), 33);
    }

    #[test]
    fn event_counter_and_flags() {
        let s = ReaderState {
            reader: "r".into(),
            current: 0,
            event: (3 << 16) | SCARD_STATE_PRESENT | SCARD_STATE_CHANGED,
            atr: Vec::new(),
        };
        assert_eq!(s.event_count(), 3);
        assert!(s.present() && s.changed() && !s.gone() && !s.empty());
    }
}
