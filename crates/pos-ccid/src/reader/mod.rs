//! The CCID reader driver: slots, power, exchanges at every level, card presence, and the
//! classification of every failure (removed, mute, unplugged, protocol).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pos_hal::{
    Atr, ChipReader, Device, DeviceEvent, DeviceInfo, DeviceKind, DeviceState, EventHub, Fault,
    FaultKind, HealthLevel, HealthReport, ReaderCapabilities, SlotState, Subscription,
};
use pos_link::{Deadline, LinkError};

use crate::atr::{self, ParsedAtr};
use crate::descriptor::{CcidDescriptor, ExchangeLevel};
use crate::error::CcidError;
use crate::message::{
    CommandStatus, IccStatus, ProtocolParams, Request, RequestBody, Response, ResponseBody,
    SlotError,
};
use crate::policy::{ReaderPolicy, VoltageSetting};
use crate::quirks::Quirk;
use crate::t1::{Checksum, T1Terminal};
use crate::transport::{CcidTransport, InterruptSource, is_gone};

mod exchange;
mod monitor;

use exchange::SlotBlocks;

/// Whether `r` can be a card's response APDU: data, then SW1 SW2 with SW1 `6X` (but not
/// `60`, the T=0 NULL byte) or `9X` (ISO/IEC 7816-3 10.3.3, 7816-4 5.1.3).
pub(crate) fn is_response_apdu(r: &[u8]) -> bool {
    match r.len().checked_sub(2).and_then(|i| r.get(i)) {
        Some(&sw1) => (0x61..=0x6F).contains(&sw1) || (0x90..=0x9F).contains(&sw1),
        None => false,
    }
}

/// Timeouts and polling of the driver. Every wait is bounded by one of these.
#[derive(Debug, Clone)]
pub struct ReaderConfig {
    /// Reader commands that do not touch the card (slot status, parameters). Default 1 s.
    pub command_timeout: Duration,
    /// Card activation (power on, ATR). Default 3 s.
    pub power_on_timeout: Duration,
    /// Added to the card's own waiting time (WWT/BWT from the ATR) for USB and reader
    /// overhead. Default 500 ms.
    pub exchange_margin: Duration,
    /// The longest any one exchange may take, whatever the card asks (WTX included).
    /// Default 10 s: seconds, never minutes.
    pub exchange_cap: Duration,
    /// Slot-status polling interval for readers without an interrupt endpoint (default
    /// 200 ms, at most 250 ms as the issue asks).
    pub poll_interval: Duration,
    /// IFSD asked of T=1 cards (EMV: 254); the policy takes the least of this, 254 and the
    /// reader's dwMaxIFSD.
    pub ifsd: u8,
    /// Which card voltage to apply first (`voltage=auto|5|3|1.8` in a reader URI).
    /// Default [`VoltageSetting::Auto`]: the reader's own selection when it has one, else
    /// class A (5 V) first, as EMV cards are.
    pub voltage: VoltageSetting,
    /// Quirks of the reader model (from [`crate::quirks::lookup`]), when the opener knows
    /// its USB ids and firmware. [`ReaderPolicy::decide`] takes them into account.
    pub quirks: Vec<Quirk>,
    /// Where a virtual reader (`sim:ccid`, feature `sim`) finds the cards its address names
    /// beyond this crate's bare test cards: `card=visa`, `script=FILE`... (pos-emv's
    /// `sim::EmvCards`). Default none; real readers ignore it.
    pub cards: Option<std::sync::Arc<dyn pos_hal::CardCatalog>>,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            command_timeout: Duration::from_secs(1),
            power_on_timeout: Duration::from_secs(3),
            exchange_margin: Duration::from_millis(500),
            exchange_cap: Duration::from_secs(10),
            poll_interval: Duration::from_millis(200),
            ifsd: 254,
            voltage: VoltageSetting::Auto,
            quirks: Vec::new(),
            cards: None,
        }
    }
}

/// What the driver knows of one slot.
#[derive(Debug, Default)]
struct Slot {
    atr: Option<ParsedAtr>,
    protocol: u8,
    t1: Option<T1Terminal>,
    powered: bool,
    /// Presence as last seen (by notification or poll).
    present: bool,
    /// Base waiting time of the card for one exchange (WWT or BWT).
    card_wait: Duration,
    /// The policy for the powered card (its ATR taken into account).
    policy: Option<ReaderPolicy>,
}

/// Presence news shared with the monitor thread.
#[derive(Debug, Default)]
struct Presence {
    /// Per slot: the card left (or came and went) since the flag was last cleared.
    removed_since: Vec<AtomicBool>,
    /// Per slot: this driver has seen a card there (powered it, read its presence, or was
    /// notified of it) and has not published its removal yet. Only a removal *event*
    /// clears it: an exchange that finds the card gone first must not swallow the
    /// notification that follows (on QEMU's usb-ccid the bulk answer and the interrupt
    /// notification come in either order).
    known: Vec<AtomicBool>,
    /// Per slot: an exchange or a status request found the powered card swapped (present
    /// but inactive); the polling monitor reports it (it cannot see it itself any more,
    /// since the slot is no longer marked powered).
    swapped_since: Vec<AtomicBool>,
    /// The reader is gone.
    gone: AtomicBool,
}

struct Inner<T: CcidTransport> {
    transport: T,
    descriptor: CcidDescriptor,
    uri: String,
    config: ReaderConfig,
    seq: u8,
    slots: Vec<Slot>,
    presence: Arc<Presence>,
    hub: EventHub,
    state: DeviceState,
    has_interrupt: bool,
    /// The policy before any card (voltages, level, message length); each slot's card gets
    /// its own at power-on.
    policy: ReaderPolicy,
    /// The reader's GET_DATA_RATES answer, read once at open (`None`: no list).
    data_rates: Option<Vec<u32>>,
}

/// A CCID smart-card reader on any [`CcidTransport`] (rusb, or the virtual reader).
///
/// Implements [`ChipReader`]; each slot is a card channel through
/// [`SlotChannel`](pos_hal::SlotChannel).
pub struct CcidReader<T: CcidTransport + 'static> {
    inner: Arc<Mutex<Inner<T>>>,
    hub: EventHub,
    presence: Arc<Presence>,
    capabilities: ReaderCapabilities,
    slot_count: u8,
    interrupt: Option<Box<dyn InterruptSource>>,
    monitor: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl<T: CcidTransport + 'static> std::fmt::Debug for CcidReader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CcidReader")
            .field("slots", &self.slot_count)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

impl<T: CcidTransport + 'static> Inner<T> {
    fn next_seq(&mut self) -> u8 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(1);
        s
    }

    fn check_slot(&self, slot: u8) -> Result<(), CcidError> {
        if usize::from(slot) < self.slots.len() {
            Ok(())
        } else {
            Err(CcidError::NoSuchSlot {
                slot,
                slots: self.slots.len(),
            })
        }
    }

    fn link_failed(&mut self, e: &LinkError) {
        if is_gone(e) && !self.presence.gone.swap(true, Ordering::SeqCst) {
            self.state = DeviceState::Error;
            self.hub.publish(DeviceEvent::Disconnected {
                detail: e.to_string(),
            });
        }
    }

    /// Send one request to `slot` with the next bSeq and wait for its reply (same bSeq),
    /// honouring time-extension replies up to the exchange cap. On timeout the command is
    /// aborted.
    fn command(
        &mut self,
        slot: u8,
        body: RequestBody,
        timeout: Duration,
    ) -> Result<Response, CcidError> {
        let seq = self.next_seq();
        if self.presence.gone.load(Ordering::SeqCst) {
            return Err(CcidError::Gone);
        }
        let bytes = Request { slot, seq, body }.encode();
        let started = Instant::now();
        if let Err(e) = self
            .transport
            .send(&bytes, Deadline::after(self.config.command_timeout))
        {
            self.link_failed(&e);
            return Err(e.into());
        }
        let mut deadline = Deadline::after(timeout.min(self.config.exchange_cap));
        loop {
            let raw = match self.transport.receive(deadline) {
                Ok(r) => r,
                Err(e) if e.kind() == FaultKind::Timeout => {
                    self.abort(slot, seq);
                    return Err(CcidError::NoReply {
                        after: started.elapsed(),
                    });
                }
                Err(e) => {
                    self.link_failed(&e);
                    return Err(e.into());
                }
            };
            let resp = match Response::decode(&raw) {
                Ok(r) => r,
                Err(e) => {
                    log::warn!("{}: undecodable reply ({} bytes): {e}", self.uri, raw.len());
                    return Err(e.into());
                }
            };
            if resp.seq != seq || resp.slot != slot {
                log::debug!(
                    "{}: dropping a stale reply (seq {} slot {}, waiting for seq {seq} slot {slot})",
                    self.uri,
                    resp.seq,
                    resp.slot
                );
                continue;
            }
            if resp.status.command() == CommandStatus::TimeExtension {
                // bError is the multiplier of the card's waiting time the reader needs.
                let multiplier = u32::from(resp.error.max(1));
                let extra = (timeout * multiplier).min(self.config.exchange_cap);
                let cap_left = self.config.exchange_cap.saturating_sub(started.elapsed());
                deadline = Deadline::after(extra.min(cap_left));
                log::trace!("{}: time extension x{multiplier}", self.uri);
                continue;
            }
            return Ok(resp);
        }
    }

    /// The CCID abort sequence: class request ABORT, then the bulk Abort message.
    fn abort(&mut self, slot: u8, seq: u8) {
        let d = Deadline::after(crate::transport::CONTROL_TIMEOUT);
        if let Err(e) = self.transport.abort_request(slot, seq, d) {
            // Some readers (QEMU's among them) stall the class request; the bulk Abort
            // message still goes out unless the reader is gone.
            log::debug!("{}: ABORT request: {e}", self.uri);
            self.link_failed(&e);
            if is_gone(&e) {
                return;
            }
        }
        let msg = Request {
            slot,
            seq,
            body: RequestBody::Abort,
        }
        .encode();
        if let Err(e) = self.transport.send(&msg, d) {
            log::debug!("{}: Abort message: {e}", self.uri);
            return;
        }
        // Drain replies up to the one for the Abort itself.
        while let Ok(raw) = self.transport.receive(d) {
            if let Ok(r) = Response::decode(&raw) {
                if r.seq == seq && matches!(r.body, ResponseBody::SlotStatus { .. }) {
                    break;
                }
            }
        }
    }

    fn get_slot_status(&mut self, slot: u8) -> Result<Response, CcidError> {
        let timeout = self.config.command_timeout;
        self.command(slot, RequestBody::GetSlotStatus, timeout)
    }

    /// Presence and power as the reader reports them now, with CHANGED when the card left
    /// since the last look (even if it is back).
    fn slot_status(&mut self, slot: u8) -> Result<SlotState, CcidError> {
        self.check_slot(slot)?;
        let resp = self.get_slot_status(slot)?;
        let icc = resp.status.icc();
        let mut st = SlotState::empty();
        let was_powered = self.slots[usize::from(slot)].powered;
        match icc {
            IccStatus::PresentActive => st |= SlotState::CARD_PRESENT | SlotState::POWERED,
            IccStatus::PresentInactive => st |= SlotState::CARD_PRESENT,
            _ => {}
        }
        // A card we powered that is now inactive was pulled and put back between two looks.
        let swapped = was_powered && icc == IccStatus::PresentInactive;
        let absent = !st.contains(SlotState::CARD_PRESENT);
        let flagged = self.presence.removed_since[usize::from(slot)].swap(false, Ordering::SeqCst);
        if swapped || (absent && was_powered) || flagged {
            st |= SlotState::CHANGED;
        }
        if !st.contains(SlotState::POWERED) {
            let s = &mut self.slots[usize::from(slot)];
            s.powered = false;
            s.t1 = None;
        }
        if swapped {
            self.presence.swapped_since[usize::from(slot)].store(true, Ordering::SeqCst);
        }
        // A removal published while this request ran is not undone by its older answer.
        if !absent && !flagged {
            self.presence.known[usize::from(slot)].store(true, Ordering::SeqCst);
        }
        self.slots[usize::from(slot)].present = !absent;
        Ok(st)
    }

    /// After a failed exchange: find out what happened to the card.
    fn classify(&mut self, slot: u8, cause: CcidError) -> CcidError {
        if matches!(cause, CcidError::Link(ref e) if is_gone(e)) || matches!(cause, CcidError::Gone)
        {
            return CcidError::Gone;
        }
        let removed_flag = self.presence.removed_since[usize::from(slot)].load(Ordering::SeqCst);
        match self.slot_status(slot) {
            Ok(st)
                if !st.contains(SlotState::CARD_PRESENT)
                    || st.contains(SlotState::CHANGED)
                    || removed_flag =>
            {
                self.slots[usize::from(slot)].powered = false;
                match cause {
                    // Already said: not wrapped in itself.
                    removed @ CcidError::CardRemoved { .. } => removed,
                    cause => CcidError::CardRemoved {
                        slot,
                        detail: cause.to_string(),
                    },
                }
            }
            Ok(_) => match cause {
                CcidError::NoReply { after } => CcidError::CardMute { slot, after },
                CcidError::Slot {
                    error: SlotError::IccMute,
                    ..
                } => CcidError::CardMute {
                    slot,
                    after: Duration::ZERO,
                },
                other => other,
            },
            Err(CcidError::Gone) => CcidError::Gone,
            Err(CcidError::Link(ref l)) if is_gone(l) => CcidError::Gone,
            // The exchange and the slot status both failed, and the interrupt pipe failed
            // too (the monitor said the reader is gone): a cable pulled mid-transfer, which
            // a host controller may report as a plain I/O error before "no device" (seen with
            // dummy_hcd in the QEMU rig, ccidshape.vendor_unplug). Waits up to 200 ms for the monitor's verdict (this path only runs when both
            // transfers failed).
            Err(CcidError::Link(_)) if self.monitor_says_gone(Duration::from_millis(200)) => {
                CcidError::Gone
            }
            Err(_) => cause,
        }
    }

    /// Whether the interrupt monitor has found the reader gone, waiting up to `limit` for
    /// it to notice.
    fn monitor_says_gone(&self, limit: Duration) -> bool {
        let t = std::time::Instant::now();
        loop {
            if self.presence.gone.load(Ordering::SeqCst) {
                return true;
            }
            if t.elapsed() >= limit {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn check_response(slot: u8, resp: &Response) -> Result<(), CcidError> {
        if resp.status.command() == CommandStatus::Failed {
            let error = SlotError::from_code(resp.error);
            if resp.status.icc() == IccStatus::Absent {
                return Err(CcidError::CardAbsent { slot });
            }
            return Err(CcidError::Slot { slot, error });
        }
        Ok(())
    }

    /// The policy with the card's ATR (`None`: the reader's alone).
    fn decide(&self, atr: Option<&ParsedAtr>) -> ReaderPolicy {
        ReaderPolicy::decide(
            &self.descriptor,
            self.data_rates.as_deref(),
            atr,
            &self.config.quirks,
            &self.config,
        )
    }

    fn power_on(&mut self, slot: u8) -> Result<Atr, CcidError> {
        self.check_slot(slot)?;
        if let Some(why) = &self.policy.refused {
            return Err(CcidError::ReaderUnsupported(why.clone()));
        }
        // Clear the removal flag: a removal before this power-on is history.
        self.presence.removed_since[usize::from(slot)].store(false, Ordering::SeqCst);
        let mut last = CcidError::CardAbsent { slot };
        let mut atr_bytes = None;
        let retry = self.policy.power_on_retry.value.clone();
        let mut escaped = false;
        let sequence = self.policy.voltages.value.clone();
        let mut powers = sequence.iter().copied().peekable();
        while let Some(&power) = powers.peek() {
            let timeout = self.config.power_on_timeout;
            let resp = self.command(slot, RequestBody::IccPowerOn { power }, timeout)?;
            match Self::check_response(slot, &resp) {
                Ok(()) => {
                    if let ResponseBody::DataBlock { data, .. } = resp.body {
                        atr_bytes = Some(data);
                        break;
                    }
                    last = CcidError::Protocol(format!("power on answered with {resp:?}"));
                }
                Err(CcidError::CardAbsent { .. }) => return Err(CcidError::CardAbsent { slot }),
                Err(CcidError::Slot { error, .. })
                    if !escaped && retry.as_ref().is_some_and(|r| r.error == error.code()) =>
                {
                    // The quirk's escape (e.g. out of EMV-only mode), then the same voltage
                    // once more.
                    escaped = true;
                    if let Some(r) = &retry {
                        let timeout = self.config.command_timeout;
                        let body = RequestBody::Escape {
                            data: r.escape.clone(),
                        };
                        let resp = self.command(slot, body, timeout)?;
                        Self::check_response(slot, &resp)?;
                        log::info!(
                            "{}: slot {slot}: power-on error 0x{:02X}: sent escape {:02X?},                              powering on again",
                            self.uri,
                            r.error,
                            r.escape
                        );
                    }
                    continue;
                }
                Err(CcidError::Slot {
                    error: SlotError::IccMute | SlotError::IccClassNotSupported,
                    ..
                }) => {
                    // Deactivate and try the next class.
                    let timeout = self.config.command_timeout;
                    let _ = self.command(slot, RequestBody::IccPowerOff, timeout);
                    last = CcidError::CardMute {
                        slot,
                        after: Duration::ZERO,
                    };
                }
                Err(e) => return Err(self.classify(slot, e)),
            }
            powers.next();
        }
        let Some(bytes) = atr_bytes else {
            return Err(last);
        };
        let parsed = ParsedAtr::parse(&bytes).map_err(|e| CcidError::BadAtr {
            slot,
            detail: e.to_string(),
        })?;
        self.activate_protocol(slot, &parsed)?;
        Ok(Atr(bytes))
    }

    /// Choose the protocol, negotiate speed and parameters as the policy says, and set up
    /// T=1.
    fn activate_protocol(&mut self, slot: u8, atr: &ParsedAtr) -> Result<(), CcidError> {
        let protocol = atr.first_protocol();
        if protocol > 1 {
            return Err(CcidError::CardUnsupported {
                slot,
                detail: format!("the card offers T={protocol} only"),
            });
        }
        let policy = self.decide(Some(atr));
        if let Some(why) = &policy.refused {
            return Err(CcidError::CardUnsupported {
                slot,
                detail: why.clone(),
            });
        }
        let level = policy.exchange_level.value;
        let clock = self.descriptor.default_clock_khz.max(1);
        let wanted = policy.fi_di.value;
        let mut fi_di = atr::DEFAULT_FI_DI;
        log::debug!(
            "{}: slot {slot}: SetParameters {} ({}); PPS {} ({}); Fi/Di {wanted:?} ({})",
            self.uri,
            policy.set_parameters.value,
            policy.set_parameters.reason,
            policy.pps.value,
            policy.pps.reason,
            policy.fi_di.reason
        );
        let pps_ok = !policy.pps.value || self.pps(slot, protocol, wanted);
        if policy.set_parameters.value {
            let first = if pps_ok { wanted } else { atr::DEFAULT_FI_DI };
            if self.set_parameters(slot, protocol, first, atr).is_ok() {
                fi_di = first;
            } else if first != atr::DEFAULT_FI_DI
                && self
                    .set_parameters(slot, protocol, atr::DEFAULT_FI_DI, atr)
                    .is_ok()
            {
                log::info!(
                    "{}: slot {slot}: Fi/Di {first:?} refused; default parameters",
                    self.uri
                );
            } else {
                log::warn!(
                    "{}: slot {slot}: the reader refused SetParameters",
                    self.uri
                );
            }
        } else {
            // The reader negotiated itself (0x40): whatever it chose.
            fi_di = wanted;
        }
        let card_wait = if protocol == 1 {
            atr.bwt(clock)
        } else {
            atr.wwt(clock)
        };
        let ifsd_request = policy.ifsd_request.value;
        let ifsd = policy.ifsd.value;
        let send_block = policy.t1_send_block.value;
        let s = &mut self.slots[usize::from(slot)];
        s.atr = Some(atr.clone());
        s.protocol = protocol;
        s.powered = true;
        s.present = true;
        s.card_wait = card_wait;
        s.t1 = None;
        s.policy = Some(policy);
        // Unless the card was pulled while it was being powered (then its removal event has
        // been published already and the next exchange fails as CardRemoved).
        if !self.presence.removed_since[usize::from(slot)].load(Ordering::SeqCst) {
            self.presence.known[usize::from(slot)].store(true, Ordering::SeqCst);
        }
        log::info!(
            "{}: slot {slot}: T={protocol}, Fi/Di {fi_di:?}, card wait {:?}",
            self.uri,
            card_wait
        );
        if protocol == 1 && level == ExchangeLevel::Tpdu {
            let mut t1 = T1Terminal::new(atr.ifsc(), atr.t1_checksum());
            if send_block > 0 {
                t1.max_send_inf = send_block;
            }
            if ifsd_request {
                let mut tr = SlotBlocks { inner: self, slot };
                if let Err(e) = t1.negotiate_ifsd(&mut tr, ifsd) {
                    let e = self.t1_failure(slot, e);
                    return Err(self.classify(slot, e));
                }
            }
            self.slots[usize::from(slot)].t1 = Some(t1);
        }
        Ok(())
    }

    /// PPS exchange through XfrBlock (TPDU-level readers that do not do it themselves).
    fn pps(&mut self, slot: u8, protocol: u8, fi_di: (u8, u8)) -> bool {
        let request = atr::pps_request(protocol, fi_di);
        let body = RequestBody::XfrBlock {
            bwi: 0,
            level: 0,
            data: request.clone(),
        };
        match self.command(slot, body, self.config.command_timeout) {
            Ok(Response {
                status,
                body: ResponseBody::DataBlock { data, .. },
                ..
            }) if status.command() == CommandStatus::Processed => {
                let ok = atr::pps_response_ok(&request, &data);
                if !ok {
                    log::info!(
                        "{}: slot {slot}: PPS refused ({data:02x?}); default speed",
                        self.uri
                    );
                }
                ok
            }
            other => {
                log::info!(
                    "{}: slot {slot}: PPS failed ({other:?}); default speed",
                    self.uri
                );
                false
            }
        }
    }

    fn set_parameters(
        &mut self,
        slot: u8,
        protocol: u8,
        fi_di: (u8, u8),
        atr: &ParsedAtr,
    ) -> Result<(), CcidError> {
        let findex_dindex = fi_di.0 << 4 | (fi_di.1 & 0x0F);
        let params = if protocol == 1 {
            let (bwi, cwi) = atr.bwi_cwi();
            ProtocolParams::T1 {
                findex_dindex,
                tcckst: 0x10 | u8::from(atr.t1_checksum() == Checksum::Crc),
                guard_time: atr.extra_guard_time_n(),
                bwi_cwi: bwi << 4 | (cwi & 0x0F),
                clock_stop: 0,
                ifsc: atr.ifsc(),
                nad: 0,
            }
        } else {
            ProtocolParams::T0 {
                findex_dindex,
                tcckst: 0,
                guard_time: atr.extra_guard_time_n(),
                waiting_integer: atr.wi(),
                clock_stop: 0,
            }
        };
        let timeout = self.config.command_timeout;
        let resp = self.command(slot, RequestBody::SetParameters { params }, timeout)?;
        Self::check_response(slot, &resp)
    }

    fn power_off(&mut self, slot: u8) -> Result<(), CcidError> {
        self.check_slot(slot)?;
        let timeout = self.config.command_timeout;
        let resp = self.command(slot, RequestBody::IccPowerOff, timeout)?;
        let s = &mut self.slots[usize::from(slot)];
        s.powered = false;
        s.t1 = None;
        s.atr = None;
        match Self::check_response(slot, &resp) {
            Ok(()) | Err(CcidError::CardAbsent { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl<T: CcidTransport + 'static> CcidReader<T> {
    /// Drive the reader behind `transport` (opened from `uri`).
    ///
    /// Asks the reader once for its data rates (GET_DATA_RATES, a class request bounded by
    /// a 1 s timeout; a reader that does not answer one has no list, which is logged);
    /// sends no bulk message yet, the first request does.
    pub fn new(mut transport: T, uri: &str, config: ReaderConfig) -> Self {
        let descriptor = transport.descriptor().clone();
        let data_rates = match transport.data_rates() {
            Ok(Some(l)) if !l.is_empty() => {
                log::debug!("{uri}: GET_DATA_RATES: {} rates", l.len());
                Some(l)
            }
            Ok(_) => None,
            Err(e) => {
                log::info!("{uri}: GET_DATA_RATES failed ({e}): no data rate list");
                None
            }
        };
        let slot_count = descriptor.slot_count().max(1);
        let interrupt = transport.take_interrupt();
        let has_interrupt = interrupt.is_some();
        let capabilities = descriptor.to_capabilities(has_interrupt);
        let presence = Arc::new(Presence {
            removed_since: (0..slot_count).map(|_| AtomicBool::new(false)).collect(),
            known: (0..slot_count).map(|_| AtomicBool::new(false)).collect(),
            swapped_since: (0..slot_count).map(|_| AtomicBool::new(false)).collect(),
            gone: AtomicBool::new(false),
        });
        let hub = EventHub::new(uri);
        let policy = ReaderPolicy::decide(
            &descriptor,
            data_rates.as_deref(),
            None,
            &config.quirks,
            &config,
        );
        if let Some(why) = &policy.refused {
            log::warn!("{uri}: {why}");
        }
        let inner = Inner {
            transport,
            descriptor,
            uri: uri.to_string(),
            config,
            seq: 0,
            slots: (0..slot_count).map(|_| Slot::default()).collect(),
            presence: Arc::clone(&presence),
            hub: hub.clone(),
            state: DeviceState::Idle,
            has_interrupt,
            policy,
            data_rates,
        };
        let mut reader = CcidReader {
            inner: Arc::new(Mutex::new(inner)),
            hub,
            presence,
            capabilities,
            slot_count,
            interrupt,
            monitor: None,
            stop: Arc::new(AtomicBool::new(false)),
        };
        reader.start_monitor();
        reader
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Which USB interface of the device the reader is and why it was chosen, with every
    /// interface of the device judged; `None` for the virtual reader.
    pub fn interface_choice(&self) -> Option<crate::interface::Choice> {
        self.lock().transport.interface_choice()
    }

    /// The reader's CCID class descriptor.
    pub fn descriptor(&self) -> CcidDescriptor {
        self.lock().descriptor.clone()
    }

    /// The data rates (bit/s) the reader listed when asked at open (GET_DATA_RATES); `None`
    /// when it has no list. The policy chooses only among them.
    pub fn data_rates(&self) -> Option<Vec<u32>> {
        self.lock().data_rates.clone()
    }

    /// The parsed ATR of the powered card in `slot`, if any.
    pub fn atr(&self, slot: u8) -> Option<ParsedAtr> {
        self.lock()
            .slots
            .get(usize::from(slot))
            .and_then(|s| s.atr.clone())
    }

    /// How the driver talks to this reader and why: the policy for the powered card in
    /// `slot` (its ATR taken into account), else the reader's alone.
    pub fn policy(&self, slot: u8) -> ReaderPolicy {
        let inner = self.lock();
        inner
            .slots
            .get(usize::from(slot))
            .filter(|s| s.powered)
            .and_then(|s| s.policy.clone())
            .unwrap_or_else(|| inner.policy.clone())
    }

    /// The protocol in use in `slot` (0 or 1) while a card is powered.
    pub fn protocol(&self, slot: u8) -> Option<u8> {
        let inner = self.lock();
        inner
            .slots
            .get(usize::from(slot))
            .filter(|s| s.powered)
            .map(|s| s.protocol)
    }

    /// Pass an Escape command to the reader (vendor-specific).
    ///
    /// Errors: `Slot` when the reader refuses it, link errors, `NoReply`.
    pub fn escape(&mut self, data: &[u8]) -> Result<Vec<u8>, CcidError> {
        let mut inner = self.lock();
        let timeout = inner.config.command_timeout;
        let body = RequestBody::Escape {
            data: data.to_vec(),
        };
        let resp = inner.command(0, body, timeout)?;
        Inner::<T>::check_response(0, &resp)?;
        match resp {
            Response {
                body: ResponseBody::Escape { data },
                ..
            } => Ok(data),
            other => Err(CcidError::Protocol(format!(
                "Escape answered with {other:?}"
            ))),
        }
    }
}

impl<T: CcidTransport + 'static> Drop for CcidReader<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.monitor.take() {
            let _ = h.join();
        }
    }
}

impl<T: CcidTransport + 'static> Device for CcidReader<T> {
    type Error = CcidError;

    fn info(&self) -> DeviceInfo {
        let inner = self.lock();
        let mut info = DeviceInfo::new(DeviceKind::ChipReader, inner.uri.clone());
        info.model = Some(format!(
            "CCID {:x}.{:02x} reader, {:?} level",
            inner.descriptor.bcd_ccid >> 8,
            inner.descriptor.bcd_ccid & 0xFF,
            inner.descriptor.exchange_level()
        ));
        info
    }

    fn state(&self) -> DeviceState {
        if self.presence.gone.load(Ordering::SeqCst) {
            DeviceState::Error
        } else {
            self.lock().state
        }
    }

    /// Internal: slot status of every slot. External: also powers a present card on and
    /// off and checks its ATR. Interactive: as External (the self-test example asks the
    /// technician to pull the card).
    fn check_health(&mut self, level: HealthLevel) -> Result<HealthReport, CcidError> {
        let slots = self.slot_count;
        let mut inner = self.lock();
        let mut report = HealthReport::new(inner.uri.clone(), level);
        report.pass(
            "descriptor",
            format!(
                "{:?} level, {} slot(s), {}",
                inner.descriptor.exchange_level(),
                slots,
                if inner.has_interrupt {
                    "interrupt notifications"
                } else {
                    "polled"
                }
            ),
        );
        for slot in 0..slots {
            let st = match inner.slot_status(slot) {
                Ok(st) => st,
                Err(CcidError::Gone) => return Err(CcidError::Gone),
                Err(e) => {
                    report.fail(&format!("slot{slot}"), e.kind(), e.to_string());
                    continue;
                }
            };
            if !st.contains(SlotState::CARD_PRESENT) {
                report.skip(&format!("slot{slot}"), "no card");
                continue;
            }
            report.pass(&format!("slot{slot}"), "card present");
            if level >= HealthLevel::External {
                match inner.power_on(slot) {
                    Ok(atr) => {
                        report.pass(&format!("slot{slot}_atr"), atr.to_hex());
                    }
                    Err(e) => {
                        report.fail(&format!("slot{slot}_atr"), e.kind(), e.to_string());
                    }
                }
                let _ = inner.power_off(slot);
            }
        }
        Ok(report)
    }

    fn subscribe(&mut self) -> Result<Subscription, CcidError> {
        Ok(self.hub.subscribe())
    }
}

impl<T: CcidTransport + 'static> ChipReader for CcidReader<T> {
    fn slot_count(&self) -> u8 {
        self.slot_count
    }

    fn capabilities(&self) -> ReaderCapabilities {
        self.capabilities
    }

    fn slot_status(&mut self, slot: u8) -> Result<SlotState, CcidError> {
        self.lock().slot_status(slot)
    }

    fn power_on(&mut self, slot: u8) -> Result<Atr, CcidError> {
        self.lock().power_on(slot)
    }

    fn power_off(&mut self, slot: u8) -> Result<(), CcidError> {
        self.lock().power_off(slot)
    }

    fn transmit(&mut self, slot: u8, command: &[u8]) -> Result<Vec<u8>, CcidError> {
        self.lock().transmit(slot, command)
    }
}
