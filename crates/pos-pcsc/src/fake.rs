//! A PC/SC layer in memory, scripted per call, for tests (feature `fake`).
//!
//! [`FakePcsc`] behaves as pcscd does for what this crate uses: readers come and go, cards
//! (any [`VirtualCard`]) are inserted and removed, exclusive connections and transactions
//! are enforced and counted, `SCardGetStatusChange` waits for a change (with the event
//! counter in the upper 16 bits) and `SCardCancel` ends it. On top, [`FakePcsc::script`]
//! makes the next call of a kind fail with a given code, hang for a while (pcscd not
//! answering), or pull the card or the reader while it runs.
//!
//! ```
//! use std::sync::Arc;
//! use pos_hal::{ChipReader, Fault, FaultKind, VirtualCard};
//! use pos_pcsc::fake::{FakeCall, FakePcsc, Step};
//! use pos_pcsc::{PcscConfig, Protocol, open_with};
//!
//! struct Echo;
//! impl VirtualCard for Echo {
//!     fn power_on(&mut self) -> Option<Vec<u8>> { Some(vec![0x3B, 0x00]) }
//!     fn transmit(&mut self, c: &[u8]) -> Option<Vec<u8>> { Some([c, &[0x90, 0x00]].concat()) }
//! }
//!
//! let pcsc = FakePcsc::new();
//! pcsc.add_reader("Fake Reader 00 00");
//! pcsc.insert("Fake Reader 00 00", Protocol::T1, Box::new(Echo));
//! let mut reader = open_with(pcsc.clone(), None, PcscConfig::default())?;
//! assert_eq!(reader.power_on(0)?.to_hex(), "3B 00");
//! pcsc.script(FakeCall::Transmit, Step::RemoveCard);
//! let err = reader.transmit(0, &[0x00, 0xB0, 0x00, 0x00, 0x00]).unwrap_err();
//! assert_eq!(err.kind(), FaultKind::CardRemoved);
//! assert_eq!(pcsc.exclusive_holders("Fake Reader 00 00"), 0);
//! # Ok::<(), pos_pcsc::PcscError>(())
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use pos_hal::VirtualCard;

use crate::api::{
    CardHandle, CardStatus, Context, Disposition, PcscApi, Protocol, ReaderState, ScardResult,
    ShareMode,
};
use crate::codes::{
    Dword, Long, SCARD_E_CANCELLED, SCARD_E_INSUFFICIENT_BUFFER, SCARD_E_INVALID_HANDLE,
    SCARD_E_NO_READERS_AVAILABLE, SCARD_E_NO_SERVICE, SCARD_E_NO_SMARTCARD, SCARD_E_NOT_TRANSACTED,
    SCARD_E_PROTO_MISMATCH, SCARD_E_READER_UNAVAILABLE, SCARD_E_SHARING_VIOLATION, SCARD_E_TIMEOUT,
    SCARD_E_UNKNOWN_READER, SCARD_F_COMM_ERROR, SCARD_POWERED, SCARD_STATE_CHANGED,
    SCARD_STATE_EMPTY, SCARD_STATE_EXCLUSIVE, SCARD_STATE_INUSE, SCARD_STATE_PRESENT,
    SCARD_STATE_UNKNOWN, SCARD_W_REMOVED_CARD, SCARD_W_UNRESPONSIVE_CARD, ScardCode,
};

/// The PC/SC functions, to script and to count calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FakeCall {
    /// `SCardEstablishContext`.
    Establish,
    /// `SCardReleaseContext`.
    Release,
    /// `SCardListReaders`.
    ListReaders,
    /// `SCardGetStatusChange`.
    GetStatusChange,
    /// `SCardCancel`.
    Cancel,
    /// `SCardConnect`.
    Connect,
    /// `SCardReconnect`.
    Reconnect,
    /// `SCardDisconnect`.
    Disconnect,
    /// `SCardStatus`.
    Status,
    /// `SCardTransmit`.
    Transmit,
    /// `SCardBeginTransaction`.
    BeginTransaction,
    /// `SCardEndTransaction`.
    EndTransaction,
}

/// What the next call of a kind does instead of (or before) its normal work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Return this code and do nothing else.
    Fail(Long),
    /// Sleep this long (pcscd not answering), then do the normal work.
    Hang(Duration),
    /// Pull the card, then do the normal work (which then fails as pcscd would).
    RemoveCard,
    /// Unplug the reader, then do the normal work.
    Unplug,
}

struct FakeCard {
    card: Box<dyn VirtualCard>,
    protocol: Protocol,
    atr: Option<Vec<u8>>,
    generation: u64,
}

struct FakeReader {
    name: String,
    card: Option<FakeCard>,
    events: u16,
}

#[derive(Debug, Clone, Copy)]
struct Handle {
    generation: u64,
    share: ShareMode,
    protocol: Protocol,
    in_transaction: bool,
    reader_id: u64,
}

#[derive(Default)]
struct State {
    service: bool,
    readers: Vec<(u64, FakeReader)>,
    next_id: Long,
    next_reader: u64,
    next_generation: u64,
    contexts: HashSet<Long>,
    cancelled: HashSet<Long>,
    handles: HashMap<Long, Handle>,
    script: Vec<(FakeCall, Step)>,
    calls: Vec<FakeCall>,
    transmitted: Vec<Vec<u8>>,
}

impl State {
    fn reader(&self, name: &str) -> Option<&(u64, FakeReader)> {
        self.readers.iter().find(|(_, r)| r.name == name)
    }

    fn reader_by_id(&mut self, id: u64) -> Option<&mut FakeReader> {
        self.readers
            .iter_mut()
            .find(|(i, _)| *i == id)
            .map(|(_, r)| r)
    }

    fn event_state(&self, name: &str) -> Dword {
        let Some((id, r)) = self.reader(name) else {
            return SCARD_STATE_UNKNOWN | SCARD_STATE_CHANGED;
        };
        let mut s = Dword::from(r.events) << 16;
        match &r.card {
            Some(_) => {
                s |= SCARD_STATE_PRESENT;
                let on: Vec<&Handle> = self
                    .handles
                    .values()
                    .filter(|h| h.reader_id == *id)
                    .collect();
                if on.iter().any(|h| h.share == ShareMode::Exclusive) {
                    s |= SCARD_STATE_EXCLUSIVE;
                } else if !on.is_empty() {
                    s |= SCARD_STATE_INUSE;
                }
            }
            None => s |= SCARD_STATE_EMPTY,
        }
        s
    }

    fn remove_card(&mut self, name: &str) {
        if let Some((_, r)) = self.readers.iter_mut().find(|(_, r)| r.name == name) {
            if r.card.take().is_some() {
                r.events = r.events.wrapping_add(1);
            }
        }
    }
}

/// The in-memory PC/SC layer (see the module docs). Share it as `Arc<FakePcsc>`; it is the
/// test's control and the reader's [`PcscApi`] at once.
pub struct FakePcsc {
    state: Mutex<State>,
    changed: Condvar,
}

impl std::fmt::Debug for FakePcsc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakePcsc")
    }
}

impl FakePcsc {
    /// pcscd running, no readers.
    pub fn new() -> Arc<FakePcsc> {
        Arc::new(FakePcsc {
            state: Mutex::new(State {
                service: true,
                next_id: 1,
                ..State::default()
            }),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }

    /// pcscd running (`true`) or not: not running, every call returns
    /// `SCARD_E_NO_SERVICE` (a wait in `SCardGetStatusChange` ends with it).
    pub fn set_service(&self, running: bool) {
        self.update(|s| s.service = running);
    }

    /// Plug a reader in (empty).
    pub fn add_reader(&self, name: &str) {
        self.update(|s| {
            s.next_reader += 1;
            let id = s.next_reader;
            s.readers.push((
                id,
                FakeReader {
                    name: name.to_string(),
                    card: None,
                    events: 0,
                },
            ));
        });
    }

    /// Unplug a reader: its connections fail with `SCARD_E_READER_UNAVAILABLE`.
    pub fn unplug(&self, name: &str) {
        self.update(|s| s.readers.retain(|(_, r)| r.name != name));
    }

    /// Insert `card`, which will speak `protocol`.
    pub fn insert(&self, reader: &str, protocol: Protocol, card: Box<dyn VirtualCard>) {
        self.update(|s| {
            s.next_generation += 1;
            let generation = s.next_generation;
            if let Some((_, r)) = s.readers.iter_mut().find(|(_, r)| r.name == reader) {
                r.card = Some(FakeCard {
                    card,
                    protocol,
                    atr: None,
                    generation,
                });
                r.events = r.events.wrapping_add(1);
            }
        });
    }

    /// Pull the card out of `reader`.
    pub fn remove_card(&self, reader: &str) {
        self.update(|s| s.remove_card(reader));
    }

    /// What the next call of kind `call` does (steps for a kind are taken in order).
    pub fn script(&self, call: FakeCall, step: Step) {
        self.update(|s| s.script.push((call, step)));
    }

    /// How many connections hold the card in `reader` exclusively.
    pub fn exclusive_holders(&self, reader: &str) -> usize {
        self.holders(reader, |h| h.share == ShareMode::Exclusive)
    }

    /// How many transactions are open on `reader`.
    pub fn transactions(&self, reader: &str) -> usize {
        self.holders(reader, |h| h.in_transaction)
    }

    /// How many connections are open on `reader`.
    pub fn connections(&self, reader: &str) -> usize {
        self.holders(reader, |_| true)
    }

    fn holders(&self, reader: &str, f: impl Fn(&Handle) -> bool) -> usize {
        let s = self.lock();
        let Some((id, _)) = s.reader(reader) else {
            return 0;
        };
        let id = *id;
        s.handles
            .values()
            .filter(|h| h.reader_id == id && f(h))
            .count()
    }

    /// Contexts established and not released.
    pub fn open_contexts(&self) -> usize {
        self.lock().contexts.len()
    }

    /// Every call made so far, in order.
    pub fn calls(&self) -> Vec<FakeCall> {
        self.lock().calls.clone()
    }

    /// How many calls of kind `call` were made.
    pub fn count(&self, call: FakeCall) -> usize {
        self.lock().calls.iter().filter(|c| **c == call).count()
    }

    /// Every command APDU sent with `SCardTransmit`, in order.
    pub fn transmitted(&self) -> Vec<Vec<u8>> {
        self.lock().transmitted.clone()
    }

    /// Log the call, run its scripted step; `Err` when the step (or a stopped pcscd) ends it.
    fn enter(&self, call: FakeCall) -> Result<MutexGuard<'_, State>, ScardCode> {
        let mut s = self.lock();
        s.calls.push(call);
        let step = s
            .script
            .iter()
            .position(|(c, _)| *c == call)
            .map(|i| s.script.remove(i).1);
        match step {
            Some(Step::Fail(code)) => return Err(ScardCode(code)),
            Some(Step::Hang(d)) => {
                drop(s);
                std::thread::sleep(d);
                s = self.lock();
            }
            Some(Step::RemoveCard) => {
                let names: Vec<String> = s.readers.iter().map(|(_, r)| r.name.clone()).collect();
                for n in names {
                    s.remove_card(&n);
                }
                self.changed.notify_all();
            }
            Some(Step::Unplug) => {
                s.readers.clear();
                self.changed.notify_all();
            }
            None => {}
        }
        if !s.service && call != FakeCall::Cancel {
            return Err(ScardCode(SCARD_E_NO_SERVICE));
        }
        Ok(s)
    }

    fn handle<'a>(s: &'a MutexGuard<'_, State>, card: CardHandle) -> ScardResult<&'a Handle> {
        s.handles
            .get(&card.0)
            .ok_or(ScardCode(SCARD_E_INVALID_HANDLE))
    }

    /// The handle's card, checked as pcscd checks it: reader there, same card inserted.
    fn live_card<'a>(s: &'a mut State, h: &Handle) -> ScardResult<&'a mut FakeCard> {
        let Some(r) = s.reader_by_id(h.reader_id) else {
            return Err(ScardCode(SCARD_E_READER_UNAVAILABLE));
        };
        match r.card.as_mut() {
            Some(c) if c.generation == h.generation => Ok(c),
            _ => Err(ScardCode(SCARD_W_REMOVED_CARD)),
        }
    }
}

impl PcscApi for FakePcsc {
    fn establish_context(&self) -> ScardResult<Context> {
        let mut s = self.enter(FakeCall::Establish)?;
        let id = s.next_id;
        s.next_id += 1;
        s.contexts.insert(id);
        Ok(Context(id))
    }

    fn release_context(&self, ctx: Context) -> ScardResult<()> {
        let mut s = self.enter(FakeCall::Release)?;
        if s.contexts.remove(&ctx.0) {
            Ok(())
        } else {
            Err(ScardCode(SCARD_E_INVALID_HANDLE))
        }
    }

    fn list_readers(&self, _ctx: Context) -> ScardResult<Vec<String>> {
        let s = self.enter(FakeCall::ListReaders)?;
        if s.readers.is_empty() {
            return Err(ScardCode(SCARD_E_NO_READERS_AVAILABLE));
        }
        Ok(s.readers.iter().map(|(_, r)| r.name.clone()).collect())
    }

    fn get_status_change(
        &self,
        ctx: Context,
        timeout: Duration,
        states: &mut [ReaderState],
    ) -> ScardResult<()> {
        let mut s = self.enter(FakeCall::GetStatusChange)?;
        let deadline = Instant::now() + timeout;
        loop {
            if !s.service {
                return Err(ScardCode(SCARD_E_NO_SERVICE));
            }
            if s.cancelled.remove(&ctx.0) {
                return Err(ScardCode(SCARD_E_CANCELLED));
            }
            let mut any = false;
            for st in states.iter_mut() {
                let now = s.event_state(&st.reader);
                let known = st.current & !SCARD_STATE_CHANGED;
                let differs = if st.current & 0xFFFF_0000 != 0 {
                    known != now
                } else {
                    known & 0xFFFF != now & 0xFFFF
                };
                st.event = if differs {
                    now | SCARD_STATE_CHANGED
                } else {
                    now
                };
                st.atr = s
                    .reader(&st.reader)
                    .and_then(|(_, r)| r.card.as_ref())
                    .and_then(|c| c.atr.clone())
                    .unwrap_or_default();
                any |= differs;
            }
            if any {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ScardCode(SCARD_E_TIMEOUT));
            }
            s = self
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn cancel(&self, ctx: Context) -> ScardResult<()> {
        let mut s = self.enter(FakeCall::Cancel)?;
        s.cancelled.insert(ctx.0);
        drop(s);
        self.changed.notify_all();
        Ok(())
    }

    fn connect(
        &self,
        ctx: Context,
        reader: &str,
        share: ShareMode,
        protocols: Dword,
    ) -> ScardResult<(CardHandle, Protocol)> {
        let mut s = self.enter(FakeCall::Connect)?;
        if !s.contexts.contains(&ctx.0) {
            return Err(ScardCode(SCARD_E_INVALID_HANDLE));
        }
        let Some((reader_id, _)) = s.reader(reader) else {
            return Err(ScardCode(SCARD_E_UNKNOWN_READER));
        };
        let reader_id = *reader_id;
        let others: Vec<Handle> = s
            .handles
            .values()
            .filter(|h| h.reader_id == reader_id)
            .copied()
            .collect();
        if share == ShareMode::Exclusive && !others.is_empty()
            || others.iter().any(|h| h.share == ShareMode::Exclusive)
        {
            return Err(ScardCode(SCARD_E_SHARING_VIOLATION));
        }
        let Some(r) = s.reader_by_id(reader_id) else {
            return Err(ScardCode(SCARD_E_UNKNOWN_READER));
        };
        let Some(card) = r.card.as_mut() else {
            return Err(ScardCode(SCARD_E_NO_SMARTCARD));
        };
        if card.protocol.raw() & protocols == 0 {
            return Err(ScardCode(SCARD_E_PROTO_MISMATCH));
        }
        if card.atr.is_none() {
            card.atr = card.card.power_on();
        }
        if card.atr.is_none() {
            return Err(ScardCode(SCARD_W_UNRESPONSIVE_CARD));
        }
        let (generation, protocol) = (card.generation, card.protocol);
        let id = s.next_id;
        s.next_id += 1;
        s.handles.insert(
            id,
            Handle {
                generation,
                share,
                protocol,
                in_transaction: false,
                reader_id,
            },
        );
        drop(s);
        self.changed.notify_all();
        Ok((CardHandle(id), protocol))
    }

    fn reconnect(
        &self,
        card: CardHandle,
        _share: ShareMode,
        _protocols: Dword,
        init: Disposition,
    ) -> ScardResult<Protocol> {
        let mut s = self.enter(FakeCall::Reconnect)?;
        let h = *Self::handle(&s, card)?;
        let c = match Self::live_card(&mut s, &h) {
            Ok(c) => c,
            // pcscd lets a handle whose card was replaced reconnect to the new card.
            Err(code) if code.0 == SCARD_W_REMOVED_CARD => {
                let Some(c) = s.reader_by_id(h.reader_id).and_then(|r| r.card.as_mut()) else {
                    return Err(ScardCode(SCARD_E_NO_SMARTCARD));
                };
                c
            }
            Err(code) => return Err(code),
        };
        if init != Disposition::Leave || c.atr.is_none() {
            c.atr = c.card.power_on();
        }
        let generation = c.generation;
        if c.atr.is_none() {
            return Err(ScardCode(SCARD_W_UNRESPONSIVE_CARD));
        }
        if let Some(h) = s.handles.get_mut(&card.0) {
            h.generation = generation;
        }
        Ok(h.protocol)
    }

    fn disconnect(&self, card: CardHandle, disposition: Disposition) -> ScardResult<()> {
        let mut s = self.enter(FakeCall::Disconnect)?;
        let Some(h) = s.handles.remove(&card.0) else {
            return Err(ScardCode(SCARD_E_INVALID_HANDLE));
        };
        let last = !s.handles.values().any(|o| o.reader_id == h.reader_id);
        if let Ok(c) = Self::live_card(&mut s, &h) {
            if disposition == Disposition::Unpower && last {
                c.atr = None;
            }
        }
        drop(s);
        self.changed.notify_all();
        Ok(())
    }

    fn status(&self, card: CardHandle) -> ScardResult<CardStatus> {
        let mut s = self.enter(FakeCall::Status)?;
        let h = *Self::handle(&s, card)?;
        let name = s
            .reader_by_id(h.reader_id)
            .map(|r| r.name.clone())
            .unwrap_or_default();
        let c = Self::live_card(&mut s, &h)?;
        let atr = c.atr.clone().unwrap_or_default();
        Ok(CardStatus {
            reader: name,
            state: SCARD_STATE_PRESENT | SCARD_POWERED,
            protocol: h.protocol,
            atr,
        })
    }

    fn transmit(
        &self,
        card: CardHandle,
        protocol: Protocol,
        send: &[u8],
        recv: &mut [u8],
    ) -> ScardResult<usize> {
        let mut s = self.enter(FakeCall::Transmit)?;
        s.transmitted.push(send.to_vec());
        let h = *Self::handle(&s, card)?;
        if protocol != h.protocol {
            return Err(ScardCode(SCARD_E_PROTO_MISMATCH));
        }
        let c = Self::live_card(&mut s, &h)?;
        let Some(resp) = c.card.transmit(send) else {
            return Err(ScardCode(SCARD_F_COMM_ERROR));
        };
        let Some(out) = recv.get_mut(..resp.len()) else {
            return Err(ScardCode(SCARD_E_INSUFFICIENT_BUFFER));
        };
        out.copy_from_slice(&resp);
        Ok(resp.len())
    }

    fn begin_transaction(&self, card: CardHandle) -> ScardResult<()> {
        let mut s = self.enter(FakeCall::BeginTransaction)?;
        let h = *Self::handle(&s, card)?;
        Self::live_card(&mut s, &h)?;
        if s.handles
            .iter()
            .any(|(id, o)| *id != card.0 && o.reader_id == h.reader_id && o.in_transaction)
        {
            return Err(ScardCode(SCARD_E_SHARING_VIOLATION));
        }
        if let Some(h) = s.handles.get_mut(&card.0) {
            h.in_transaction = true;
        }
        Ok(())
    }

    fn end_transaction(&self, card: CardHandle, _disposition: Disposition) -> ScardResult<()> {
        let mut s = self.enter(FakeCall::EndTransaction)?;
        let Some(h) = s.handles.get_mut(&card.0) else {
            return Err(ScardCode(SCARD_E_INVALID_HANDLE));
        };
        if !h.in_transaction {
            return Err(ScardCode(SCARD_E_NOT_TRANSACTED));
        }
        h.in_transaction = false;
        Ok(())
    }
}
