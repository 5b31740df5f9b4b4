//! The CCID reader driver: slots, power, exchanges at every level, card presence, and the
//! classification of every failure (removed, mute, unplugged, protocol).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
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
    CommandStatus, IccStatus, Notification, PowerSelect, ProtocolParams, Request, RequestBody,
    Response, ResponseBody, SlotError,
};
use crate::t0;
use crate::t1::{BlockTransport, Checksum, T1Error, T1Terminal};
use crate::transport::{CcidTransport, InterruptSource, is_gone};

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
    /// IFSD asked of T=1 cards (EMV: 254).
    pub ifsd: u8,
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

/// Voltages to try, ISO 7816-3 order (lowest class first), among those the reader has.
fn voltage_sequence(d: &CcidDescriptor) -> Vec<PowerSelect> {
    if d.auto_voltage() {
        return vec![PowerSelect::Automatic];
    }
    let mut v = Vec::new();
    if d.voltages.contains(crate::descriptor::Voltages::V1_8) {
        v.push(PowerSelect::V1_8);
    }
    if d.voltages.contains(crate::descriptor::Voltages::V3) {
        v.push(PowerSelect::V3);
    }
    if d.voltages.contains(crate::descriptor::Voltages::V5) || v.is_empty() {
        v.push(PowerSelect::V5);
    }
    v
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
            Err(_) => cause,
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

    fn power_on(&mut self, slot: u8) -> Result<Atr, CcidError> {
        self.check_slot(slot)?;
        // Clear the removal flag: a removal before this power-on is history.
        self.presence.removed_since[usize::from(slot)].store(false, Ordering::SeqCst);
        let mut last = CcidError::CardAbsent { slot };
        let mut atr_bytes = None;
        for power in voltage_sequence(&self.descriptor) {
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

    /// Choose the protocol, negotiate speed and parameters where the reader does not, and
    /// set up T=1.
    fn activate_protocol(&mut self, slot: u8, atr: &ParsedAtr) -> Result<(), CcidError> {
        let protocol = atr.first_protocol();
        if protocol > 1 {
            return Err(CcidError::CardUnsupported {
                slot,
                detail: format!("the card offers T={protocol} only"),
            });
        }
        let level = self.descriptor.exchange_level();
        if level == ExchangeLevel::Character {
            return Err(CcidError::CardUnsupported {
                slot,
                detail: "character-level readers are not supported (TPDU or APDU level needed)"
                    .into(),
            });
        }
        let clock = self.descriptor.default_clock_khz.max(1);
        let mut fi_di = (1u8, 1u8);
        if !self.descriptor.auto_parameters() {
            let wanted = atr::best_fi_di(atr.fi_di(), self.descriptor.max_data_rate_bps, clock);
            let mut ok = wanted == (1, 1);
            if !ok && !self.descriptor.auto_pps() && level == ExchangeLevel::Tpdu {
                ok = self.pps(slot, protocol, wanted);
            } else if !ok {
                ok = true; // the reader runs PPS itself when parameters are set
            }
            if ok && self.set_parameters(slot, protocol, wanted, atr).is_ok() {
                fi_di = wanted;
            } else if self.set_parameters(slot, protocol, (1, 1), atr).is_err() {
                log::warn!("{}: slot {slot}: default parameters refused too", self.uri);
            }
        }
        let card_wait = if protocol == 1 {
            atr.bwt(clock)
        } else {
            atr.wwt(clock)
        };
        let s = &mut self.slots[usize::from(slot)];
        s.atr = Some(atr.clone());
        s.protocol = protocol;
        s.powered = true;
        s.present = true;
        s.card_wait = card_wait;
        s.t1 = None;
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
            if !self.descriptor.auto_ifsd() {
                let ifsd = self.config.ifsd;
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

    /// Timeout for one exchange with the card: its waiting time times `multiplier`, plus the
    /// margin, capped.
    fn exchange_timeout(&self, slot: u8, multiplier: u32) -> Duration {
        let base = self.slots[usize::from(slot)].card_wait;
        (base * multiplier.max(1) + self.config.exchange_margin).min(self.config.exchange_cap)
    }

    /// One XfrBlock (any level): returns the reply's data and chain parameter.
    fn xfr(
        &mut self,
        slot: u8,
        data: Vec<u8>,
        level: u16,
        bwi: u8,
        timeout: Duration,
    ) -> Result<(Vec<u8>, u8), CcidError> {
        if self.presence.removed_since[usize::from(slot)].load(Ordering::SeqCst) {
            return Err(CcidError::CardRemoved {
                slot,
                detail: "the reader reported the card's removal".into(),
            });
        }
        let resp = self.command(slot, RequestBody::XfrBlock { bwi, level, data }, timeout)?;
        match Self::check_response(slot, &resp) {
            // The card we were talking to is not there any more: it was pulled.
            Err(CcidError::CardAbsent { .. }) => {
                return Err(CcidError::CardRemoved {
                    slot,
                    detail: "the reader reports no card in the middle of an exchange".into(),
                });
            }
            Err(e) => return Err(e),
            // "Success, and no card in the slot": the card went during the exchange and the
            // reader flushed the command with an empty answer (QEMU's usb-ccid does this).
            Ok(()) if resp.status.icc() == IccStatus::Absent => {
                return Err(CcidError::CardRemoved {
                    slot,
                    detail: "the reader answered the exchange with no card in the slot".into(),
                });
            }
            Ok(()) => {}
        }
        match resp {
            Response {
                body: ResponseBody::DataBlock { data, chain },
                ..
            } => Ok((data, chain)),
            other => Err(CcidError::Protocol(format!(
                "XfrBlock answered with {other:?}"
            ))),
        }
    }

    fn transmit(&mut self, slot: u8, apdu: &[u8]) -> Result<Vec<u8>, CcidError> {
        self.check_slot(slot)?;
        if !self.slots[usize::from(slot)].powered {
            return Err(CcidError::CardAbsent { slot });
        }
        if apdu.len() < 4 {
            return Err(CcidError::BadApdu(format!(
                "{} bytes: an APDU has at least 4",
                apdu.len()
            )));
        }
        let result = match self.descriptor.exchange_level() {
            ExchangeLevel::ShortApdu | ExchangeLevel::ExtendedApdu => {
                self.transmit_apdu(slot, apdu)
            }
            ExchangeLevel::Tpdu if self.slots[usize::from(slot)].protocol == 1 => {
                self.transmit_t1(slot, apdu)
            }
            ExchangeLevel::Tpdu => self.transmit_t0(slot, apdu),
            ExchangeLevel::Character => Err(CcidError::CardUnsupported {
                slot,
                detail: "character-level reader".into(),
            }),
        };
        match result {
            Ok(r) if is_response_apdu(&r) => Ok(r),
            Ok(r) => Err(self.classify(
                slot,
                CcidError::Protocol(format!(
                    "the answer {:02X?} is not a response APDU: it must end in SW1 SW2 with SW1 \
                     6X (not 60) or 9X (the card and reader may disagree on the protocol)",
                    &r[..r.len().min(16)]
                )),
            )),
            Err(e @ (CcidError::BadApdu(_) | CcidError::NoSuchSlot { .. })) => Err(e),
            Err(e) => Err(self.classify(slot, e)),
        }
    }

    /// APDU level, with command and response chaining through wLevelParameter.
    fn transmit_apdu(&mut self, slot: u8, apdu: &[u8]) -> Result<Vec<u8>, CcidError> {
        let timeout = self.exchange_timeout(slot, 1);
        let max = (self.descriptor.max_message_length as usize)
            .saturating_sub(crate::message::HEADER_LEN)
            .max(16);
        let mut reply = if apdu.len() <= max {
            self.xfr(slot, apdu.to_vec(), 0, 0, timeout)?
        } else {
            let chunks: Vec<&[u8]> = apdu.chunks(max).collect();
            let last = chunks.len() - 1;
            let mut r = (Vec::new(), 0);
            for (i, c) in chunks.iter().enumerate() {
                let level = match i {
                    0 => 1,
                    i if i == last => 2,
                    _ => 3,
                };
                r = self.xfr(slot, c.to_vec(), level, 0, timeout)?;
            }
            r
        };
        let mut out = std::mem::take(&mut reply.0);
        let mut rounds = 0;
        // chain 1 = begins and continues, 3 = continues: ask for more with level 0x10.
        while reply.1 == 1 || reply.1 == 3 {
            rounds += 1;
            if rounds > 1024 {
                return Err(CcidError::Protocol("response chaining does not end".into()));
            }
            reply = self.xfr(slot, Vec::new(), 0x10, 0, timeout)?;
            out.extend_from_slice(&reply.0);
        }
        Ok(out)
    }

    fn transmit_t0(&mut self, slot: u8, apdu: &[u8]) -> Result<Vec<u8>, CcidError> {
        let tpdu = t0::tpdu_from_apdu(apdu).map_err(|e| CcidError::BadApdu(e.to_string()))?;
        let mut bytes = tpdu.header.to_vec();
        bytes.extend_from_slice(&tpdu.data);
        let timeout = self.exchange_timeout(slot, 1);
        Ok(self.xfr(slot, bytes, 0, 0, timeout)?.0)
    }

    fn transmit_t1(&mut self, slot: u8, apdu: &[u8]) -> Result<Vec<u8>, CcidError> {
        let Some(mut t1) = self.slots[usize::from(slot)].t1.take() else {
            return Err(CcidError::Protocol(
                "T=1 state missing: power the card on again".into(),
            ));
        };
        let result = {
            let mut tr = SlotBlocks { inner: self, slot };
            t1.transceive(&mut tr, apdu)
        };
        match result {
            Ok(r) => {
                self.slots[usize::from(slot)].t1 = Some(t1);
                Ok(r)
            }
            Err(e) => {
                // Keep the engine (its sequence numbers) unless the card is gone.
                self.slots[usize::from(slot)].t1 = Some(t1);
                Err(self.t1_failure(slot, e))
            }
        }
    }

    fn t1_failure(&mut self, slot: u8, e: T1Error<CcidError>) -> CcidError {
        match e {
            T1Error::Transport(inner) => inner,
            other => CcidError::Protocol(format!("slot {slot}: T=1: {other}")),
        }
    }
}

/// The T=1 engine's view of a slot: one block per XfrBlock.
struct SlotBlocks<'a, T: CcidTransport + 'static> {
    inner: &'a mut Inner<T>,
    slot: u8,
}

impl<T: CcidTransport + 'static> BlockTransport for SlotBlocks<'_, T> {
    type Error = CcidError;
    fn exchange(&mut self, block: &[u8], wtx: u8) -> Result<Vec<u8>, CcidError> {
        let timeout = self.inner.exchange_timeout(self.slot, u32::from(wtx));
        Ok(self
            .inner
            .xfr(self.slot, block.to_vec(), 0, wtx, timeout)?
            .0)
    }

    /// A transfer error on the line is worth a T=1 retransmission; a removal, a mute card or
    /// an unplugged reader is not.
    fn is_recoverable(&self, e: &CcidError) -> bool {
        matches!(
            e,
            CcidError::Slot {
                error: SlotError::XfrParityError | SlotError::XfrOverrun,
                ..
            }
        )
    }
}

impl<T: CcidTransport + 'static> CcidReader<T> {
    /// Drive the reader behind `transport` (opened from `uri`).
    ///
    /// Does not talk to the reader yet; the first request does.
    pub fn new(mut transport: T, uri: &str, config: ReaderConfig) -> Self {
        let descriptor = transport.descriptor().clone();
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

    /// The reader's CCID class descriptor.
    pub fn descriptor(&self) -> CcidDescriptor {
        self.lock().descriptor.clone()
    }

    /// The parsed ATR of the powered card in `slot`, if any.
    pub fn atr(&self, slot: u8) -> Option<ParsedAtr> {
        self.lock()
            .slots
            .get(usize::from(slot))
            .and_then(|s| s.atr.clone())
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

    /// Start the presence monitor: on the interrupt endpoint when the reader has one, else
    /// polling slot status every `poll_interval`.
    fn start_monitor(&mut self) {
        let hub = self.hub.clone();
        let presence = Arc::clone(&self.presence);
        let stop = Arc::clone(&self.stop);
        let slots = self.slot_count;
        let handle = match self.interrupt.take() {
            Some(source) => {
                std::thread::spawn(move || interrupt_monitor(source, hub, presence, stop, slots))
            }
            None => {
                let weak = Arc::downgrade(&self.inner);
                let interval = self.lock().config.poll_interval;
                std::thread::spawn(move || poll_monitor(weak, hub, presence, stop, slots, interval))
            }
        };
        self.monitor = Some(handle);
    }
}

/// Record a presence change and tell subscribers.
fn note_change(
    hub: &EventHub,
    presence: &Presence,
    slot: u8,
    present: bool,
    changed: bool,
    was_present: &mut [bool],
) {
    let i = usize::from(slot);
    let before = was_present.get(i).copied().unwrap_or(false);
    // "Changed, now absent" for a card the driver knew is a removal even when this monitor
    // never saw the card arrive (it was in the reader before the driver opened it; found on
    // QEMU's usb-ccid), and even when an exchange already found it gone. For a card the
    // driver never knew it may be a stale notification from before the open: not an event.
    // Limit: a quick pull-and-reinsert that the reader merges into one "changed, present"
    // for a card this monitor never saw arrive is reported as an insertion only (it cannot
    // be told from the insertion notification left from before the open); the next
    // exchange still fails as CardRemoved, since the card is no longer powered.
    let known = presence.known.get(i);
    let knew = known.is_some_and(|k| k.load(Ordering::SeqCst));
    if (before && (!present || changed)) || (changed && !present && knew) {
        if let Some(flag) = presence.removed_since.get(i) {
            flag.store(true, Ordering::SeqCst);
        }
        if let Some(k) = known {
            k.store(false, Ordering::SeqCst);
        }
        hub.publish(DeviceEvent::CardRemoved { slot });
    }
    if present {
        if let Some(k) = known {
            k.store(true, Ordering::SeqCst);
        }
    }
    if present && (!before || changed) {
        hub.publish(DeviceEvent::CardInserted { slot });
    }
    if let Some(p) = was_present.get_mut(i) {
        *p = present;
    }
}

fn interrupt_monitor(
    mut source: Box<dyn InterruptSource>,
    hub: EventHub,
    presence: Arc<Presence>,
    stop: Arc<AtomicBool>,
    slots: u8,
) {
    let mut was_present = vec![false; usize::from(slots)];
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        let n = match source.read(&mut buf, Deadline::after(Duration::from_millis(100))) {
            Ok(n) => n,
            Err(e) if e.kind() == FaultKind::Timeout => continue,
            Err(e) => {
                if !presence.gone.swap(true, Ordering::SeqCst) {
                    hub.publish(DeviceEvent::Disconnected {
                        detail: e.to_string(),
                    });
                }
                return;
            }
        };
        match Notification::decode(&buf[..n], slots) {
            Ok(Notification::SlotChange(changes)) => {
                for c in changes {
                    if c.changed
                        || c.present
                            != was_present
                                .get(usize::from(c.slot))
                                .copied()
                                .unwrap_or(false)
                    {
                        note_change(
                            &hub,
                            &presence,
                            c.slot,
                            c.present,
                            c.changed,
                            &mut was_present,
                        );
                    }
                }
            }
            Ok(Notification::HardwareError { slot, code, .. }) => {
                hub.publish(DeviceEvent::Fault {
                    kind: FaultKind::Unrecoverable,
                    detail: format!("reader hardware error {code:#04x} on slot {slot}"),
                });
            }
            Err(e) => log::debug!("bad interrupt message {:02x?}: {e}", &buf[..n]),
        }
    }
}

fn poll_monitor<T: CcidTransport + 'static>(
    weak: Weak<Mutex<Inner<T>>>,
    hub: EventHub,
    presence: Arc<Presence>,
    stop: Arc<AtomicBool>,
    slots: u8,
    interval: Duration,
) {
    let mut was_present = vec![false; usize::from(slots)];
    // A swap is reported once, not at every poll until the card is powered again.
    let mut swap_reported = vec![false; usize::from(slots)];
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(interval);
        let Some(inner) = weak.upgrade() else { return };
        // A running exchange finds out about the card itself; do not queue behind it.
        let Ok(mut guard) = inner.try_lock() else {
            continue;
        };
        for slot in 0..slots {
            let resp = match guard.get_slot_status(slot) {
                Ok(r) => r,
                Err(CcidError::Gone) => return,
                Err(CcidError::Link(ref e)) if is_gone(e) => return,
                Err(e) => {
                    log::debug!("poll: slot {slot}: {e}");
                    continue;
                }
            };
            let icc = resp.status.icc();
            let present = matches!(icc, IccStatus::PresentActive | IccStatus::PresentInactive);
            let i = usize::from(slot);
            // Powered by us but inactive now: pulled and reinserted between two polls (or an
            // exchange or status request found that first).
            let found = presence
                .swapped_since
                .get(i)
                .is_some_and(|f| f.swap(false, Ordering::SeqCst));
            let swapped = found
                || (guard.slots[i].powered
                    && icc == IccStatus::PresentInactive
                    && !swap_reported[i]);
            if icc != IccStatus::PresentInactive {
                swap_reported[i] = false;
            } else if swapped {
                swap_reported[i] = true;
            }
            // A card the driver knew, gone, even if this monitor never saw it (it was pulled
            // before the first poll got the lock, or an exchange found it gone first).
            let knew = presence
                .known
                .get(i)
                .is_some_and(|k| k.load(Ordering::SeqCst));
            let gone_unseen = !present && knew;
            if present != was_present[i] || swapped || gone_unseen {
                // The removal flag set here makes the next exchange on this slot fail as
                // CardRemoved (the slot's powered state is cleared when that is read).
                let changed = swapped || gone_unseen;
                note_change(&hub, &presence, slot, present, changed, &mut was_present);
            }
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
