//! The virtual CCID reader (feature `sim`): a reader at the USB-message level.
//!
//! It implements [`CcidTransport`], decoding every bulk OUT message with the same codec the
//! driver encodes with and answering with encoded RDR_to_PC messages, so the driver's whole
//! path (codec, time extensions, PPS, SetParameters, the T=1 engine, notifications) runs
//! against it. Cards plug in through [`pos_hal::VirtualCard`] (ATR + APDU -> response).
//!
//! Configurable: APDU level, TPDU level with T=1 (the card side of T=1 runs in
//! [`T1Card`]), TPDU level with T=0; with or without an interrupt endpoint; reader-driven
//! PPS or not. Faults: card removed at the Nth exchange (also mid T=1 chain), mute card,
//! transfer (parity) errors, WTX storms, reader unplugged, slow card.
//!
//! A reader model ([`models`], `sim:ccid?model=NAME`) makes it a real reader: that reader's
//! descriptor and USB ids, its answers to GET_DATA_RATES and GET_CLOCK_FREQUENCIES, and its
//! rules (message length, voltages, SetParameters, data rates, its quirk rows). Every
//! request it receives is logged ([`SimReaderHandle::requests`]).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use pos_hal::VirtualCard;
use pos_link::{Deadline, LinkError, Operation};

use crate::descriptor::{CcidDescriptor, ExchangeLevel, Features, Voltages};
use crate::message::{
    CommandStatus, Header, IccStatus, Notification, PowerSelect, ProtocolParams, Request,
    RequestBody, Response, ResponseBody, SlotChange, SlotError, SlotStatusByte,
};
use crate::quirks::{Quirk, QuirkKind};
use crate::t1::{CardAction, Checksum, T1Card};
use crate::transport::{CcidTransport, InterruptSource};

mod card;
pub mod models;
mod uri;

pub use card::{PSE, TestCard};
pub use models::{ClassAnswer, MODELS, ReaderModel, model, model_names};
pub use uri::{SIM_OPTIONS, SimCard, SimSpec, TEST_CARDS, level_of, make_card};

/// The exchange level the virtual reader offers.
///
/// At TPDU level the reader carries whichever protocol the card speaks, as a real TPDU
/// reader does: the first protocol its answer to reset offers, or the one the host set with
/// SetParameters. `TpduT1` and `TpduT0` differ only in the card a `sim:ccid` URI inserts
/// by default (one whose ATR offers T=1, or T=0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimLevel {
    /// Short and extended APDUs (the reader runs the card protocol).
    Apdu,
    /// TPDUs; cards speak T=1 by default (the host runs the T=1 engine).
    TpduT1,
    /// TPDUs; cards speak T=0 by default.
    TpduT0,
}

/// How the virtual reader is built.
#[derive(Debug, Clone)]
pub struct SimReaderConfig {
    /// Exchange level.
    pub level: SimLevel,
    /// Whether it has an interrupt endpoint (else the driver polls).
    pub interrupt: bool,
    /// Whether the reader negotiates speed (PPS) and parameters itself.
    pub auto_pps: bool,
    /// Longest message (dwMaxCCIDMessageLength).
    pub max_message_length: u32,
    /// At [`SimLevel::Apdu`], announce the short and extended APDU level (dwFeatures
    /// 0x40000: the host may chain commands through wLevelParameter) instead of short APDU
    /// only. Default false.
    pub extended_apdu: bool,
    /// Time the card takes per byte exchanged (a slow card); zero for none.
    pub card_time_per_byte: Duration,
    /// Number of card slots (1 to 8).
    pub slots: u8,
    /// A real reader model: when set, its descriptor and rules replace `level`,
    /// `auto_pps`, `max_message_length`, `extended_apdu` and `slots` (see
    /// [`VirtualReader::new`]). Default none.
    pub model: Option<ReaderModel>,
}

impl SimReaderConfig {
    /// A reader built as `model` (`sim:ccid?model=NAME`), other settings at their defaults.
    pub fn for_model(model: &ReaderModel) -> SimReaderConfig {
        SimReaderConfig {
            model: Some(model.clone()),
            ..SimReaderConfig::default()
        }
        .resolved()
    }

    /// The settings a model fixes, taken from it: the level from its dwFeatures (or the
    /// level its quirk row says the firmware works at), automatic PPS (0x40 or 0x80), the
    /// message length it really takes (its quirk row's, else dwMaxCCIDMessageLength) and
    /// its slots. Unchanged without a model.
    fn resolved(mut self) -> SimReaderConfig {
        let Some(m) = &self.model else {
            return self;
        };
        let d = &m.descriptor;
        let quirks = m.quirks();
        let level = model_level(d, &quirks);
        self.level = if level.is_apdu() {
            SimLevel::Apdu
        } else {
            SimLevel::TpduT1
        };
        self.extended_apdu = level == ExchangeLevel::ExtendedApdu;
        self.auto_pps = d.auto_pps();
        self.max_message_length = model_message_length(d, &quirks);
        self.slots = d.slot_count().clamp(1, 8);
        self
    }
}

/// The level a model's firmware works at: its quirk row's, else its dwFeatures'.
fn model_level(d: &CcidDescriptor, quirks: &[Quirk]) -> ExchangeLevel {
    quirks
        .iter()
        .find_map(|q| match q.kind {
            QuirkKind::ExchangeLevel(l) => Some(l),
            _ => None,
        })
        .unwrap_or_else(|| d.exchange_level())
}

/// The longest message a model takes: its quirk row's length when the descriptor reports
/// the row's value, else dwMaxCCIDMessageLength.
fn model_message_length(d: &CcidDescriptor, quirks: &[Quirk]) -> u32 {
    quirks
        .iter()
        .find_map(|q| match q.kind {
            QuirkKind::MessageLength { reported, actual } if reported == d.max_message_length => {
                Some(actual)
            }
            _ => None,
        })
        .unwrap_or(d.max_message_length)
}

/// One request message the virtual reader received, decoded, with the bError of its
/// answer when the reader failed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// The message's length in bytes, header included.
    pub length: usize,
    /// The decoded message (type, bSlot, bSeq and its fields).
    pub request: Request,
    /// bError of the answer when its command status was "failed" (CCID 6.2.6: an offset
    /// of the bad field, or an error code such as 0xFE ICC_MUTE).
    pub error: Option<u8>,
}

impl SeenRequest {
    /// A one-line summary for sequence tests: the message type and its key fields, e.g.
    /// `IccPowerOn auto`, `SetParameters T=1 Fi/Di 0x11`, `XfrBlock [00 C1 01 FE 3E]`,
    /// `XfrBlock 264 bytes [00 20 FE ..] wLevelParameter 0x0001`, with ` -> bError 0x07`
    /// when the reader failed it and a `slot N: ` prefix for slots other than 0.
    pub fn summary(&self) -> String {
        let hex = |b: &[u8]| {
            b.iter()
                .map(|x| format!("{x:02X}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let data = |d: &[u8]| {
            if d.len() <= 8 {
                format!("[{}]", hex(d))
            } else {
                format!("{} bytes [{} ..]", d.len(), hex(d.get(..3).unwrap_or(d)))
            }
        };
        let mut s = match &self.request.body {
            RequestBody::IccPowerOn { power } => format!(
                "IccPowerOn {}",
                match power {
                    PowerSelect::Automatic => "auto",
                    PowerSelect::V5 => "5V",
                    PowerSelect::V3 => "3V",
                    PowerSelect::V1_8 => "1.8V",
                }
            ),
            RequestBody::SetParameters { params } => {
                let t = match params {
                    ProtocolParams::T0 { .. } => 0,
                    ProtocolParams::T1 { .. } => 1,
                };
                format!("SetParameters T={t} Fi/Di 0x{:02X}", params.findex_dindex())
            }
            RequestBody::XfrBlock { level, data: d, .. } => {
                let mut s = format!("XfrBlock {}", data(d));
                if *level != 0 {
                    s.push_str(&format!(" wLevelParameter 0x{level:04X}"));
                }
                s
            }
            RequestBody::Escape { data: d } => format!("Escape {}", data(d)),
            other => format!("{other:?}"),
        };
        if self.request.slot != 0 {
            s = format!("slot {}: {s}", self.request.slot);
        }
        if let Some(e) = self.error {
            s.push_str(&format!(" -> bError 0x{e:02X}"));
        }
        s
    }
}

impl std::fmt::Display for SeenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary())
    }
}

impl Default for SimReaderConfig {
    fn default() -> Self {
        SimReaderConfig {
            level: SimLevel::Apdu,
            interrupt: true,
            auto_pps: true,
            max_message_length: 271,
            extended_apdu: false,
            card_time_per_byte: Duration::ZERO,
            slots: 1,
            model: None,
        }
    }
}

/// Faults to inject, changeable while running through [`SimReaderHandle`].
#[derive(Debug, Clone, Default)]
pub struct SimFaults {
    /// Remove the card when the Nth XfrBlock after power-on arrives (1 = the first).
    pub remove_at_exchange: Option<u32>,
    /// At `remove_at_exchange`, answer as QEMU's usb-ccid does when the card is pulled with
    /// a command pending: an empty DataBlock with command status *success* and ICC status
    /// "not present", instead of a failed block.
    pub removal_answers_empty: bool,
    /// Report a parity (transfer) error for the Nth XfrBlock after power-on.
    pub parity_error_at_exchange: Option<u32>,
    /// The card sends this many WTX requests before each T=1 response.
    pub wtx_storm: u8,
    /// The card answers nothing to commands (it did answer reset).
    pub mute_after_atr: bool,
    /// The reader sends this many time-extension replies before each XfrBlock answer.
    pub time_extensions: u8,
    /// The card does not answer a PPS request (the host must fall back to default speed).
    pub refuse_pps: bool,
    /// The reader is in an EMV-only mode, as the Cherry XX33 and GemPC433 firmware can be
    /// (libccid quirk rows: an escape switches them to ISO mode): every IccPowerOn fails with
    /// this bError until an Escape carrying `escape_to_leave` arrives.
    pub power_on_error_until_escape: Option<u8>,
    /// The Escape data that leaves the mode above (the quirk rows' `1F 01`).
    pub escape_to_leave: Vec<u8>,
}

struct Slot {
    card: Option<Box<dyn VirtualCard>>,
    powered: bool,
    /// The protocol in use at TPDU level (0 or 1): the ATR's first, or as SetParameters set.
    protocol: u8,
    t1: Option<T1Card>,
    /// T=0 response data waiting for GET RESPONSE.
    t0_pending: Vec<u8>,
    /// The card's data rate (bit/s) as SetParameters or a PPS set it; 0 for the default.
    rate_bps: u64,
    /// APDU-level command being chained in, and response being chained out.
    chain_in: Vec<u8>,
    chain_out: VecDeque<u8>,
    exchanges: u32,
}

struct State {
    config: SimReaderConfig,
    faults: SimFaults,
    slots: Vec<Slot>,
    /// The slot of the message being handled.
    cur: usize,
    replies: VecDeque<Vec<u8>>,
    notifications: VecDeque<Vec<u8>>,
    /// Notifications are kept back from the interrupt endpoint (see `hold_notifications`).
    notifications_held: bool,
    unplugged: bool,
    /// After the unplug, transfers fail as a plain USB I/O error (what a host controller may
    /// report for a transfer cut short by the cable, before the hub notices the device
    /// gone) instead of "no device".
    unplug_as_io: bool,
    aborts: u32,
    pps_seen: u32,
    parameters: Vec<ProtocolParams>,
    /// Every request message received, decoded.
    log: Vec<SeenRequest>,
    /// GET_DATA_RATES and GET_CLOCK_FREQUENCIES requests received.
    data_rate_requests: u32,
    clock_requests: u32,
    /// The model's quirk rows (empty without a model).
    quirks: Vec<Quirk>,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

fn lock(s: &Shared) -> MutexGuard<'_, State> {
    s.0.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The reader side: give it to [`CcidReader::new`](crate::CcidReader::new).
pub struct VirtualReader {
    shared: Shared,
    target: String,
    interrupt_taken: bool,
    descriptor: CcidDescriptor,
}

/// Control of a running virtual reader: insert and remove cards, unplug, inject faults.
#[derive(Clone)]
pub struct SimReaderHandle {
    shared: Shared,
}

impl std::fmt::Debug for SimReaderHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimReaderHandle").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for VirtualReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualReader")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

fn descriptor_for(cfg: &SimReaderConfig) -> CcidDescriptor {
    if let Some(m) = &cfg.model {
        return m.descriptor.clone();
    }
    let mut d = match cfg.level {
        SimLevel::Apdu => CcidDescriptor::example_apdu_reader(),
        SimLevel::TpduT1 | SimLevel::TpduT0 => CcidDescriptor::example_tpdu_reader(),
    };
    if cfg.level == SimLevel::Apdu && cfg.extended_apdu {
        d.set_exchange_level(crate::descriptor::ExchangeLevel::ExtendedApdu);
    }
    d.max_message_length = cfg.max_message_length;
    d.max_slot_index = cfg.slots.clamp(1, 8) - 1;
    d.set_auto_pps(cfg.auto_pps);
    d
}

impl VirtualReader {
    /// A virtual reader with no card, and its control handle.
    ///
    /// With `config.model`, the reader is that model: its descriptor, and `level`,
    /// `auto_pps`, `max_message_length`, `extended_apdu` and `slots` as the model has them
    /// (the values given are replaced).
    pub fn new(config: SimReaderConfig, target: &str) -> (VirtualReader, SimReaderHandle) {
        let config = config.resolved();
        let descriptor = descriptor_for(&config);
        let quirks = config
            .model
            .as_ref()
            .map(|m| m.quirks())
            .unwrap_or_default();
        let slot_count = config.slots.clamp(1, 8);
        let state = State {
            config,
            faults: SimFaults::default(),
            slots: (0..slot_count)
                .map(|_| Slot {
                    card: None,
                    powered: false,
                    protocol: 0,
                    t1: None,
                    t0_pending: Vec::new(),
                    rate_bps: 0,
                    chain_in: Vec::new(),
                    chain_out: VecDeque::new(),
                    exchanges: 0,
                })
                .collect(),
            cur: 0,
            replies: VecDeque::new(),
            notifications: VecDeque::new(),
            notifications_held: false,
            unplugged: false,
            unplug_as_io: false,
            aborts: 0,
            pps_seen: 0,
            parameters: Vec::new(),
            log: Vec::new(),
            data_rate_requests: 0,
            clock_requests: 0,
            quirks,
        };
        let shared: Shared = Arc::new((Mutex::new(state), Condvar::new()));
        (
            VirtualReader {
                shared: Arc::clone(&shared),
                target: target.to_string(),
                interrupt_taken: false,
                descriptor,
            },
            SimReaderHandle { shared },
        )
    }
}

impl SimReaderHandle {
    /// A NotifySlotChange with every slot's presence, `changed` set for `slot`.
    fn notify(st: &mut State, slot: usize) {
        if st.config.interrupt {
            let changes = st
                .slots
                .iter()
                .enumerate()
                .map(|(i, s)| SlotChange {
                    slot: i as u8,
                    present: s.card.is_some(),
                    changed: i == slot,
                })
                .collect();
            st.notifications
                .push_back(Notification::SlotChange(changes).encode());
        }
    }

    /// Drop the slot-change notifications not yet read, as when an earlier driver instance
    /// read them before this one opened the reader (QEMU's usb-ccid and real readers send a
    /// change once, not again to the next process).
    pub fn clear_notifications(&self) {
        lock(&self.shared).notifications.clear();
    }

    /// Keep slot-change notifications back from the interrupt endpoint (`true`) or let them
    /// through (`false`): a reader whose notification comes after its answer to a pending
    /// exchange, as QEMU's usb-ccid sometimes does when the card is pulled.
    pub fn hold_notifications(&self, held: bool) {
        lock(&self.shared).notifications_held = held;
        self.shared.1.notify_all();
    }

    /// Insert a card in slot 0 (replacing one that is there: a removal, then an insertion).
    pub fn insert(&self, card: Box<dyn VirtualCard>) {
        self.insert_in(0, card);
    }

    /// Insert a card in `slot` (ignored for a slot the reader does not have).
    pub fn insert_in(&self, slot: u8, card: Box<dyn VirtualCard>) {
        let mut st = lock(&self.shared);
        let i = usize::from(slot);
        if let Some(s) = st.slots.get_mut(i) {
            s.card = Some(card);
            s.powered = false;
            s.t1 = None;
            Self::notify(&mut st, i);
        }
        drop(st);
        self.shared.1.notify_all();
    }

    /// Pull the card out of slot 0.
    pub fn remove(&self) {
        self.remove_from(0);
    }

    /// Pull the card out of `slot`.
    pub fn remove_from(&self, slot: u8) {
        let mut st = lock(&self.shared);
        Self::remove_locked(&mut st, usize::from(slot));
        drop(st);
        self.shared.1.notify_all();
    }

    fn remove_locked(st: &mut State, slot: usize) {
        let removed = match st.slots.get_mut(slot) {
            Some(s) if s.card.is_some() => {
                s.card = None;
                s.powered = false;
                s.t1 = None;
                true
            }
            _ => false,
        };
        if removed {
            Self::notify(st, slot);
        }
    }

    /// Unplug the reader: every transfer fails with `Disconnected` from now on.
    pub fn unplug(&self) {
        lock(&self.shared).unplugged = true;
        self.shared.1.notify_all();
    }

    /// Unplug the reader, every transfer failing from now on as a plain USB I/O error
    /// (`LIBUSB_ERROR_IO`), as a host controller may report a transfer the cable cut, before
    /// the device is known gone. The driver must still call it disconnected.
    pub fn unplug_with_io_errors(&self) {
        let mut st = lock(&self.shared);
        st.unplugged = true;
        st.unplug_as_io = true;
        drop(st);
        self.shared.1.notify_all();
    }

    /// Replace the fault settings.
    pub fn set_faults(&self, faults: SimFaults) {
        lock(&self.shared).faults = faults;
    }

    /// XfrBlock messages seen in slot 0 since its last power-on.
    pub fn exchanges(&self) -> u32 {
        lock(&self.shared).slots.first().map_or(0, |s| s.exchanges)
    }

    /// PPS requests the card received.
    pub fn pps_requests(&self) -> u32 {
        lock(&self.shared).pps_seen
    }

    /// The parameters the driver set (SetParameters), in order.
    pub fn parameters_set(&self) -> Vec<ProtocolParams> {
        lock(&self.shared).parameters.clone()
    }

    /// How many aborts (class request) the driver sent.
    pub fn aborts(&self) -> u32 {
        lock(&self.shared).aborts
    }

    /// Every request message the reader received so far (bulk OUT, decoded), in order,
    /// with the bError of the answers it failed.
    pub fn requests(&self) -> Vec<SeenRequest> {
        lock(&self.shared).log.clone()
    }

    /// [`SeenRequest::summary`] of every request received so far, in order.
    pub fn request_summaries(&self) -> Vec<String> {
        lock(&self.shared)
            .log
            .iter()
            .map(SeenRequest::summary)
            .collect()
    }

    /// Forget the requests received so far (to look at the next steps alone).
    pub fn clear_requests(&self) {
        lock(&self.shared).log.clear();
    }

    /// How many GET_DATA_RATES and GET_CLOCK_FREQUENCIES class requests the reader got.
    pub fn class_requests(&self) -> (u32, u32) {
        let st = lock(&self.shared);
        (st.data_rate_requests, st.clock_requests)
    }

    /// The model the reader is built as, if any.
    pub fn model(&self) -> Option<ReaderModel> {
        lock(&self.shared).config.model.clone()
    }
}

fn status(icc: IccStatus, failed: bool) -> SlotStatusByte {
    if failed {
        SlotStatusByte::failed(icc)
    } else {
        SlotStatusByte::ok(icc)
    }
}

impl State {
    fn icc(&self) -> IccStatus {
        match (&self.slots[self.cur].card, self.slots[self.cur].powered) {
            (None, _) => IccStatus::Absent,
            (Some(_), true) => IccStatus::PresentActive,
            (Some(_), false) => IccStatus::PresentInactive,
        }
    }

    /// A reply to bSlot and bSeq, with the current slot's card state, encoded.
    fn reply(&self, slot: u8, seq: u8, failed: bool, error: u8, body: ResponseBody) -> Vec<u8> {
        let status = status(self.icc(), failed);
        Response {
            slot,
            seq,
            status,
            error,
            body,
        }
        .encode()
    }

    fn slot_status(&self, slot: u8, seq: u8, failed: bool, error: u8) -> Vec<u8> {
        let body = ResponseBody::SlotStatus { clock_status: 0 };
        self.reply(slot, seq, failed, error, body)
    }

    fn data_block(&self, slot: u8, seq: u8, data: Vec<u8>, chain: u8) -> Vec<u8> {
        self.reply(slot, seq, false, 0, ResponseBody::DataBlock { chain, data })
    }

    fn failed_block(&self, slot: u8, seq: u8, error: SlotError) -> Vec<u8> {
        let body = ResponseBody::DataBlock {
            chain: 0,
            data: Vec::new(),
        };
        self.reply(slot, seq, true, error.code(), body)
    }

    /// A model refuses bPowerSelect 0 unless it selects the voltage itself (dwFeatures
    /// 0x08), and a class its bVoltageSupport lacks.
    fn power_refused(&self, power: PowerSelect) -> bool {
        let Some(m) = &self.config.model else {
            return false;
        };
        let d = &m.descriptor;
        let has = |v: Voltages| d.voltages.is_empty() || d.voltages.contains(v);
        match power {
            PowerSelect::Automatic => !d.features.contains(Features::AUTO_VOLTAGE),
            PowerSelect::V5 => !has(Voltages::V5),
            PowerSelect::V3 => !has(Voltages::V3),
            PowerSelect::V1_8 => !has(Voltages::V1_8),
        }
    }

    /// Why a model refuses SetParameters: it negotiates itself (dwFeatures 0x40: command
    /// not supported, bError 0), a protocol it lacks (bError 7, bProtocolNum), or a data
    /// rate it cannot do (bError 10, bmFindexDindex).
    fn parameters_refusal(&self, params: &ProtocolParams) -> Option<SlotError> {
        let m = self.config.model.as_ref()?;
        let d = &m.descriptor;
        if d.features.contains(Features::AUTO_PPS_PROPRIETARY) {
            return Some(SlotError::NotSupported);
        }
        let protocol = match params {
            ProtocolParams::T0 { .. } => crate::descriptor::Protocols::T0,
            ProtocolParams::T1 { .. } => crate::descriptor::Protocols::T1,
        };
        if !d.protocols.contains(protocol) {
            return Some(SlotError::BadParameter(7));
        }
        if !self.rate_allowed(params.findex_dindex()) {
            return Some(SlotError::BadParameter(10));
        }
        None
    }

    /// The data rate (bit/s) of Fi/Di indices `fi_di` at the reader's default clock.
    fn rate_of(&self, fi_di: u8) -> Option<u64> {
        let clock = self.config.model.as_ref()?.descriptor.default_clock_khz;
        let f = crate::atr::fi_value(fi_di >> 4)?;
        let d = crate::atr::di_value(fi_di & 0x0F)?;
        Some(crate::atr::data_rate_bps(f, d, clock))
    }

    /// Whether a model can run the card at Fi/Di `fi_di`: the default 1/1 always; else a
    /// rate of its GET_DATA_RATES list (within 2 bit/s, as libccid compares), or, when it
    /// answers no list, one between dwDataRate and dwMaxDataRate (CCID 5.1).
    fn rate_allowed(&self, fi_di: u8) -> bool {
        let Some(m) = &self.config.model else {
            return true;
        };
        if fi_di == 0x11 {
            return true;
        }
        let Some(rate) = self.rate_of(fi_di) else {
            return false;
        };
        let d = &m.descriptor;
        if rate > u64::from(d.max_data_rate_bps) + 2 {
            return false;
        }
        match m.data_rates.list() {
            Some(list) => list.iter().any(|&r| u64::from(r).abs_diff(rate) < 2),
            None => rate + 2 >= u64::from(d.data_rate_bps),
        }
    }

    /// The rate cap a quirk row documents for the model, if any.
    fn rate_cap(&self) -> Option<u32> {
        self.quirks.iter().find_map(|q| match q.kind {
            QuirkKind::MaxDataRate(r) => Some(r),
            _ => None,
        })
    }

    /// The failed answer to `req`, with `error`: the reply type the request calls for.
    fn refuse(&mut self, req: &Request, error: u8) -> Vec<u8> {
        self.cur = usize::from(req.slot).min(self.slots.len().saturating_sub(1));
        let body = match req.body {
            RequestBody::IccPowerOn { .. }
            | RequestBody::XfrBlock { .. }
            | RequestBody::Secure { .. } => ResponseBody::DataBlock {
                chain: 0,
                data: Vec::new(),
            },
            RequestBody::SetParameters { .. }
            | RequestBody::GetParameters
            | RequestBody::ResetParameters => ResponseBody::Parameters { params: None },
            RequestBody::Escape { .. } => ResponseBody::Escape { data: Vec::new() },
            _ => ResponseBody::SlotStatus { clock_status: 0 },
        };
        self.reply(req.slot, req.seq, true, error, body)
    }

    fn handle(&mut self, req: Request) -> Vec<u8> {
        let Request { slot, seq, body } = req;
        if usize::from(slot) >= self.slots.len() {
            // bError 5: the offset of bSlot, as readers answer a slot they do not have.
            self.cur = 0;
            return Response {
                slot,
                seq,
                status: status(IccStatus::Absent, true),
                error: SlotError::BadParameter(5).code(),
                body: ResponseBody::SlotStatus { clock_status: 0 },
            }
            .encode();
        }
        self.cur = usize::from(slot);
        match body {
            RequestBody::IccPowerOn { power } if self.power_refused(power) => {
                // bError 7: the offset of bPowerSelect (CCID 6.2.6).
                self.failed_block(slot, seq, SlotError::BadParameter(7))
            }
            RequestBody::IccPowerOn { .. } if self.faults.power_on_error_until_escape.is_some() => {
                let error = self.faults.power_on_error_until_escape.unwrap_or(0);
                self.failed_block(slot, seq, SlotError::from_code(error))
            }
            RequestBody::IccPowerOn { .. } => {
                let atr = self.slots[self.cur].card.as_mut().map(|c| c.power_on());
                match atr {
                    None => self.failed_block(slot, seq, SlotError::IccMute),
                    Some(None) => {
                        self.slots[self.cur].powered = false;
                        self.failed_block(slot, seq, SlotError::IccMute)
                    }
                    Some(Some(atr)) => {
                        let s = &mut self.slots[self.cur];
                        s.powered = true;
                        s.exchanges = 0;
                        s.rate_bps = 0;
                        s.t0_pending.clear();
                        s.chain_in.clear();
                        s.chain_out.clear();
                        // The card's protocol, as its ATR offers it (an ATR that does not
                        // parse is taken as T=0, as readers default to it).
                        let parsed = crate::atr::ParsedAtr::parse_lenient(&atr).ok();
                        s.protocol = parsed.as_ref().map_or(0, |p| p.first_protocol());
                        s.t1 = None;
                        if self.config.level != SimLevel::Apdu && s.protocol == 1 {
                            let (ifsc, checksum) = parsed
                                .as_ref()
                                .map_or((254, Checksum::Lrc), |p| (p.ifsc(), p.t1_checksum()));
                            let mut c = T1Card::new(ifsc, checksum);
                            c.wtx_before_response = self.faults.wtx_storm;
                            s.t1 = Some(c);
                        }
                        self.data_block(slot, seq, atr, 0)
                    }
                }
            }
            RequestBody::IccPowerOff => {
                self.slots[self.cur].powered = false;
                self.slots[self.cur].t1 = None;
                self.slot_status(slot, seq, false, 0)
            }
            RequestBody::GetSlotStatus | RequestBody::Abort | RequestBody::IccClock { .. } => {
                self.slot_status(slot, seq, false, 0)
            }
            RequestBody::SetParameters { params } if self.config.model.is_some() => {
                match self.parameters_refusal(&params) {
                    Some(error) => {
                        let body = ResponseBody::Parameters { params: None };
                        self.reply(slot, seq, true, error.code(), body)
                    }
                    None => {
                        self.parameters.push(params);
                        self.slots[self.cur].rate_bps =
                            self.rate_of(params.findex_dindex()).unwrap_or(0);
                        self.switch_protocol(params);
                        let body = ResponseBody::Parameters {
                            params: Some(params),
                        };
                        self.reply(slot, seq, false, 0, body)
                    }
                }
            }
            RequestBody::SetParameters { params } => {
                self.parameters.push(params);
                self.switch_protocol(params);
                let body = ResponseBody::Parameters {
                    params: Some(params),
                };
                self.reply(slot, seq, false, 0, body)
            }
            RequestBody::GetParameters | RequestBody::ResetParameters => {
                let params = Some(ProtocolParams::default_t0());
                self.reply(slot, seq, false, 0, ResponseBody::Parameters { params })
            }
            RequestBody::Escape { data } => {
                if self.faults.power_on_error_until_escape.is_some()
                    && data == self.faults.escape_to_leave
                {
                    self.faults.power_on_error_until_escape = None;
                }
                self.reply(slot, seq, false, 0, ResponseBody::Escape { data })
            }
            RequestBody::XfrBlock { level, data, bwi } => self.xfr(slot, seq, level, bwi, data),
            _ => self.slot_status(slot, seq, true, SlotError::NotSupported.code()),
        }
    }

    /// The host set the card's protocol: a TPDU reader carries that one from now on.
    fn switch_protocol(&mut self, params: ProtocolParams) {
        if self.config.level == SimLevel::Apdu {
            return;
        }
        let wtx = self.faults.wtx_storm;
        let s = &mut self.slots[self.cur];
        match params {
            ProtocolParams::T0 { .. } => {
                s.protocol = 0;
                s.t1 = None;
            }
            ProtocolParams::T1 { ifsc, tcckst, .. } if s.protocol != 1 || s.t1.is_none() => {
                s.protocol = 1;
                let checksum = if tcckst & 1 == 1 {
                    Checksum::Crc
                } else {
                    Checksum::Lrc
                };
                let mut c = T1Card::new(ifsc, checksum);
                c.wtx_before_response = wtx;
                s.t1 = Some(c);
            }
            ProtocolParams::T1 { .. } => {}
        }
    }

    fn xfr(&mut self, slot: u8, seq: u8, level: u16, _bwi: u8, data: Vec<u8>) -> Vec<u8> {
        if self.slots[self.cur].card.is_none() || !self.slots[self.cur].powered {
            return self.failed_block(slot, seq, SlotError::IccMute);
        }
        self.slots[self.cur].exchanges += 1;
        let n = self.slots[self.cur].exchanges;
        if self.faults.remove_at_exchange == Some(n) {
            SimReaderHandle::remove_locked(self, self.cur);
            if self.faults.removal_answers_empty {
                return self.data_block(slot, seq, Vec::new(), 0);
            }
            return self.failed_block(slot, seq, SlotError::IccMute);
        }
        if self.faults.parity_error_at_exchange == Some(n) {
            return self.failed_block(slot, seq, SlotError::XfrParityError);
        }
        if !self.config.card_time_per_byte.is_zero() {
            std::thread::sleep(self.config.card_time_per_byte * data.len() as u32);
        }
        // A PPS request at TPDU level: the card accepts what is asked (echo).
        if self.config.level != SimLevel::Apdu && data.first() == Some(&0xFF) {
            self.pps_seen += 1;
            if self.faults.refuse_pps {
                return self.failed_block(slot, seq, SlotError::IccMute);
            }
            // PPS0 bit 4: PPS1 (Fi/Di) follows.
            let fi_di = match (data.get(1), data.get(2)) {
                (Some(pps0), Some(&pps1)) if pps0 & 0x10 != 0 => Some(pps1),
                _ => None,
            };
            if let (Some(fi_di), Some(_)) = (fi_di, &self.config.model) {
                if !self.rate_allowed(fi_di) {
                    // The reader cannot run its UART at that rate: no PPS response reaches
                    // the host, the card stays at its default speed.
                    return self.failed_block(slot, seq, SlotError::IccMute);
                }
                self.slots[self.cur].rate_bps = self.rate_of(fi_di).unwrap_or(0);
            }
            return self.data_block(slot, seq, data, 0);
        }
        if let Some(cap) = self.rate_cap() {
            if self.slots[self.cur].rate_bps > u64::from(cap) + 2 {
                // Above the model's documented rate cap the transfers fail.
                return self.failed_block(slot, seq, SlotError::XfrParityError);
            }
        }
        let mute = self.faults.mute_after_atr;
        match self.config.level {
            SimLevel::Apdu => self.xfr_apdu(slot, seq, level, data, mute),
            SimLevel::TpduT1 | SimLevel::TpduT0 if self.slots[self.cur].protocol == 1 => {
                let Some(mut t1) = self.slots[self.cur].t1.take() else {
                    return self.failed_block(slot, seq, SlotError::HwError);
                };
                t1.wtx_before_response = self.faults.wtx_storm;
                let action = {
                    let card = &mut self.slots[self.cur].card;
                    let mut handler = |apdu: &[u8]| -> Option<Vec<u8>> {
                        if mute {
                            return None;
                        }
                        card.as_mut().and_then(|c| c.transmit(apdu))
                    };
                    t1.handle(&data, &mut handler)
                };
                self.slots[self.cur].t1 = Some(t1);
                match action {
                    CardAction::Reply(block) => self.data_block(slot, seq, block, 0),
                    CardAction::Mute => self.failed_block(slot, seq, SlotError::IccMute),
                }
            }
            SimLevel::TpduT1 | SimLevel::TpduT0 => self.xfr_t0(slot, seq, data, mute),
        }
    }

    fn card_apdu(&mut self, apdu: &[u8], mute: bool) -> Option<Vec<u8>> {
        if mute {
            return None;
        }
        self.slots[self.cur]
            .card
            .as_mut()
            .and_then(|c| c.transmit(apdu))
    }

    fn xfr_apdu(&mut self, slot: u8, seq: u8, level: u16, data: Vec<u8>, mute: bool) -> Vec<u8> {
        let max = (self.config.max_message_length as usize)
            .saturating_sub(10)
            .max(16);
        match level {
            // Begins / continues: collect, ask for more.
            1 | 3 => {
                self.slots[self.cur].chain_in.extend_from_slice(&data);
                return self.data_block(slot, seq, Vec::new(), 0x10);
            }
            // The host wants the next piece of a chained response.
            0x10 => {
                let take = self.slots[self.cur].chain_out.len().min(max);
                let piece: Vec<u8> = self.slots[self.cur].chain_out.drain(..take).collect();
                let chain = if self.slots[self.cur].chain_out.is_empty() {
                    2
                } else {
                    3
                };
                return self.data_block(slot, seq, piece, chain);
            }
            _ => {}
        }
        let mut apdu = std::mem::take(&mut self.slots[self.cur].chain_in);
        apdu.extend_from_slice(&data);
        let Some(resp) = self.card_apdu(&apdu, mute) else {
            return self.failed_block(slot, seq, SlotError::IccMute);
        };
        if resp.len() <= max {
            return self.data_block(slot, seq, resp, 0);
        }
        self.slots[self.cur].chain_out = resp.into_iter().collect();
        let first: Vec<u8> = self.slots[self.cur].chain_out.drain(..max).collect();
        self.data_block(slot, seq, first, 1)
    }

    /// T=0 as a card answers it: case 4 commands are answered 61xx and their data comes
    /// with GET RESPONSE.
    fn xfr_t0(&mut self, slot: u8, seq: u8, tpdu: Vec<u8>, mute: bool) -> Vec<u8> {
        if tpdu.len() < 5 {
            return self.failed_block(slot, seq, SlotError::BadParameter(10));
        }
        let (header, body) = tpdu.split_at(5);
        // GET RESPONSE for pending data.
        if header[1] == 0xC0 && !self.slots[self.cur].t0_pending.is_empty() {
            let want = if header[4] == 0 {
                256
            } else {
                usize::from(header[4])
            };
            let n = want.min(self.slots[self.cur].t0_pending.len());
            let mut out: Vec<u8> = self.slots[self.cur].t0_pending.drain(..n).collect();
            match self.slots[self.cur].t0_pending.len() {
                0 => out.extend_from_slice(&[0x90, 0x00]),
                left => out.extend_from_slice(&[0x61, left.min(255) as u8]),
            }
            return self.data_block(slot, seq, out, 0);
        }
        let mut apdu = header[..4].to_vec();
        if body.is_empty() {
            apdu.push(header[4]); // case 1 (P3 = 0) or case 2 (P3 = Le)
        } else {
            apdu.push(header[4]);
            apdu.extend_from_slice(body);
        }
        let Some(resp) = self.card_apdu(&apdu, mute) else {
            return self.failed_block(slot, seq, SlotError::IccMute);
        };
        if !body.is_empty() && resp.len() > 2 {
            // Case 4 sent as case 3: the card keeps the data for GET RESPONSE.
            let (data, _sw) = resp.split_at(resp.len() - 2);
            self.slots[self.cur].t0_pending = data.to_vec();
            let n = data.len().min(255) as u8;
            return self.data_block(slot, seq, vec![0x61, n], 0);
        }
        self.data_block(slot, seq, resp, 0)
    }
}

impl CcidTransport for VirtualReader {
    fn target(&self) -> &str {
        &self.target
    }

    fn descriptor(&self) -> &CcidDescriptor {
        &self.descriptor
    }

    fn send(&mut self, message: &[u8], _deadline: Deadline) -> Result<(), LinkError> {
        let mut st = lock(&self.shared);
        if st.unplugged {
            return Err(gone_error(&st, &self.target, Operation::Write));
        }
        match Request::decode(message) {
            Ok(req)
                if st.config.model.is_some()
                    && message.len() > st.config.max_message_length as usize =>
            {
                // Longer than the model takes: refused, not processed (bError 1: the offset
                // of dwLength, CCID 6.2.6).
                let reply = st.refuse(&req, 1);
                st.log.push(SeenRequest {
                    length: message.len(),
                    request: req,
                    error: Some(1),
                });
                st.replies.push_back(reply);
            }
            Ok(req) => {
                let seen = req.clone();
                if matches!(req.body, RequestBody::Abort) {
                    st.aborts += 1;
                }
                let is_xfr = matches!(req.body, RequestBody::XfrBlock { .. });
                if is_xfr {
                    for _ in 0..st.faults.time_extensions {
                        let ext = Response {
                            slot: req.slot,
                            seq: req.seq,
                            status: SlotStatusByte::time_extension(st.icc()),
                            error: 1,
                            body: ResponseBody::DataBlock {
                                chain: 0,
                                data: Vec::new(),
                            },
                        }
                        .encode();
                        st.replies.push_back(ext);
                    }
                }
                let reply = st.handle(req);
                let error = Response::decode(&reply)
                    .ok()
                    .filter(|r| r.status.command() == CommandStatus::Failed)
                    .map(|r| r.error);
                st.log.push(SeenRequest {
                    length: message.len(),
                    request: seen,
                    error,
                });
                st.replies.push_back(reply);
            }
            Err(e) => {
                // Answer as a reader does: a SlotStatus naming the bad field, when there is a
                // header to answer to.
                log::warn!(
                    "virtual reader: undecodable message ({} bytes): {e}",
                    message.len()
                );
                if let (Ok(h), Some(err)) = (Header::parse(message), e.slot_error()) {
                    let reply = st.slot_status(h.slot, h.seq, true, err.code());
                    st.replies.push_back(reply);
                }
            }
        }
        drop(st);
        self.shared.1.notify_all();
        Ok(())
    }

    fn receive(&mut self, deadline: Deadline) -> Result<Vec<u8>, LinkError> {
        wait_pop(&self.shared, &self.target, deadline, |st| {
            st.replies.pop_front()
        })
    }

    fn abort_request(&mut self, _slot: u8, _seq: u8, _deadline: Deadline) -> Result<(), LinkError> {
        let mut st = lock(&self.shared);
        if st.unplugged {
            return Err(gone_error(&st, &self.target, Operation::Write));
        }
        st.aborts += 1;
        Ok(())
    }

    /// A model answers as its libccid dump records; a reader without a model says nothing
    /// (`None`).
    fn data_rates(&mut self) -> Result<Option<Vec<u32>>, LinkError> {
        let mut st = lock(&self.shared);
        st.data_rate_requests += 1;
        let answer = st.config.model.as_ref().map(|m| m.data_rates);
        class_answer(&st, &self.target, answer)
    }

    /// As [`data_rates`](Self::data_rates), for the clocks.
    fn clock_frequencies(&mut self) -> Result<Option<Vec<u32>>, LinkError> {
        let mut st = lock(&self.shared);
        st.clock_requests += 1;
        let answer = st.config.model.as_ref().map(|m| m.clocks);
        class_answer(&st, &self.target, answer)
    }

    fn take_interrupt(&mut self) -> Option<Box<dyn InterruptSource>> {
        let has = lock(&self.shared).config.interrupt;
        if !has || self.interrupt_taken {
            return None;
        }
        self.interrupt_taken = true;
        Some(Box::new(SimInterrupt {
            shared: Arc::clone(&self.shared),
            target: self.target.clone(),
        }))
    }
}

/// The error of a transfer once the reader is unplugged: `Disconnected`, or a plain USB I/O
/// error after [`SimReaderHandle::unplug_with_io_errors`].
fn gone_error(st: &State, target: &str, operation: Operation) -> LinkError {
    if st.unplug_as_io {
        LinkError::Usb {
            target: target.to_string(),
            operation,
            source: rusb::Error::Io,
        }
    } else {
        LinkError::disconnected(target, operation, "virtual reader unplugged")
    }
}

/// A class request's answer as the transport trait gives it: the list, `None` for a stall
/// or an empty reply, an error for a failed transfer or an unplugged reader.
fn class_answer(
    st: &State,
    target: &str,
    answer: Option<ClassAnswer>,
) -> Result<Option<Vec<u32>>, LinkError> {
    if st.unplugged {
        return Err(gone_error(st, target, Operation::Read));
    }
    match answer {
        Some(ClassAnswer::List(l)) => Ok(Some(l.to_vec())),
        None | Some(ClassAnswer::Empty | ClassAnswer::Stall) => Ok(None),
        Some(ClassAnswer::Fails) => Err(LinkError::Usb {
            target: target.to_string(),
            operation: Operation::Read,
            source: rusb::Error::Io,
        }),
    }
}

struct SimInterrupt {
    shared: Shared,
    target: String,
}

impl InterruptSource for SimInterrupt {
    fn read(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError> {
        let n = wait_pop(&self.shared, &self.target, deadline, |st| {
            if st.notifications_held {
                None
            } else {
                st.notifications.pop_front()
            }
        })?;
        let len = n.len().min(buf.len());
        buf[..len].copy_from_slice(&n[..len]);
        Ok(len)
    }
}

/// Wait until `pop` yields a message or the deadline passes; `Disconnected` once unplugged.
fn wait_pop(
    shared: &Shared,
    target: &str,
    deadline: Deadline,
    mut pop: impl FnMut(&mut State) -> Option<Vec<u8>>,
) -> Result<Vec<u8>, LinkError> {
    let mut st = lock(shared);
    loop {
        if st.unplugged {
            return Err(gone_error(&st, target, Operation::Read));
        }
        if let Some(m) = pop(&mut st) {
            return Ok(m);
        }
        let left = deadline.remaining();
        if left.is_zero() {
            return Err(LinkError::timeout(
                target,
                Operation::Read,
                deadline.waited(),
                0,
            ));
        }
        st = shared
            .1
            .wait_timeout(st, left)
            .map(|(g, _)| g)
            .unwrap_or_else(|e| e.into_inner().0);
    }
}
