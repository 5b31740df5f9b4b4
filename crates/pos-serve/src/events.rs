//! The live event stream: what the lane's devices and transactions do, as it happens.
//!
//! One [`EventBus`] per lane. Publishing never blocks (each subscriber has its own unbounded
//! channel; a subscriber that went away is pruned). The last [`REPLAY`] events are kept so a
//! client that reconnects with `Last-Event-ID` (or `?since=`) misses nothing in between.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Serialize;

/// How many past events are kept for replay.
pub const REPLAY: usize = 1024;

/// One event. Never carries card data: devices, states and plain notes only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Sequence number, from 1, increasing by one per event of this process.
    pub seq: u64,
    /// When, in milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// What happened (see [`EventKind`] for the names).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `reader`, `printer` or `msr` for device events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<&'static str>,
    /// The transaction it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txn: Option<i64>,
    /// The transaction's new state (`transaction_state`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The fault kind (`pos_hal::FaultKind` name), for faults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// Plain words.
    pub detail: String,
}

/// The event types, with their names on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A transaction moved to a new state (`state`).
    TransactionState,
    /// The service asks the cardholder something (insert, swipe, remove).
    Prompt,
    /// A fault or alarm recorded during a transaction.
    TransactionFault,
    /// A card went into the chip reader.
    CardInserted,
    /// The card left the chip reader.
    CardRemoved,
    /// The paper roll is near its end: printing still works; change it soon.
    PaperLow,
    /// The printer is out of paper.
    PaperOut,
    /// The printer cover is open.
    CoverOpen,
    /// The cutter is jammed.
    CutterJam,
    /// The printer does not answer or reports offline.
    PrinterOffline,
    /// The printer is ready again after a fault.
    PrinterReady,
    /// A device went away (unplugged, link lost).
    DeviceUnplugged,
    /// A device is back (re-opened by the supervisor).
    DeviceReconnected,
    /// A device reports a fault outside a transaction.
    DeviceFault,
    /// A scheduled health check found a problem, or the problem went away.
    HealthCheck,
    /// A reversal is stuck: the host keeps rejecting it. Call the acquirer.
    ReversalStuck,
    /// An owed receipt was printed.
    ReceiptPrinted,
    /// The service is stopping.
    ShuttingDown,
    /// The lane stopped taking sales: its journal cannot be written (full disk, I/O error,
    /// removed or replaced). The message says why and what happened to the sale in flight.
    SalesBlocked,
    /// The journal takes writes again: what memory held was journaled, recovery ran, sales
    /// resume.
    SalesResumed,
}

impl EventKind {
    /// The name on the wire (`type` in JSON, `event:` in the stream).
    pub const fn name(self) -> &'static str {
        match self {
            EventKind::TransactionState => "transaction_state",
            EventKind::Prompt => "prompt",
            EventKind::TransactionFault => "transaction_fault",
            EventKind::CardInserted => "card_inserted",
            EventKind::CardRemoved => "card_removed",
            EventKind::PaperLow => "paper_low",
            EventKind::PaperOut => "paper_out",
            EventKind::CoverOpen => "cover_open",
            EventKind::CutterJam => "cutter_jam",
            EventKind::PrinterOffline => "printer_offline",
            EventKind::PrinterReady => "printer_ready",
            EventKind::DeviceUnplugged => "device_unplugged",
            EventKind::DeviceReconnected => "device_reconnected",
            EventKind::DeviceFault => "device_fault",
            EventKind::HealthCheck => "health_check",
            EventKind::ReversalStuck => "reversal_stuck",
            EventKind::ReceiptPrinted => "receipt_printed",
            EventKind::ShuttingDown => "shutting_down",
            EventKind::SalesBlocked => "sales_blocked",
            EventKind::SalesResumed => "sales_resumed",
        }
    }

    /// Every kind, for documentation and tests.
    pub const ALL: [EventKind; 20] = [
        EventKind::TransactionState,
        EventKind::Prompt,
        EventKind::TransactionFault,
        EventKind::CardInserted,
        EventKind::CardRemoved,
        EventKind::PaperLow,
        EventKind::PaperOut,
        EventKind::CoverOpen,
        EventKind::CutterJam,
        EventKind::PrinterOffline,
        EventKind::PrinterReady,
        EventKind::DeviceUnplugged,
        EventKind::DeviceReconnected,
        EventKind::DeviceFault,
        EventKind::HealthCheck,
        EventKind::ReversalStuck,
        EventKind::ReceiptPrinted,
        EventKind::ShuttingDown,
        EventKind::SalesBlocked,
        EventKind::SalesResumed,
    ];
}

/// An event before it is numbered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// What.
    pub kind: EventKind,
    /// Which device.
    pub device: Option<&'static str>,
    /// Which transaction.
    pub txn: Option<i64>,
    /// New state.
    pub state: Option<String>,
    /// Fault kind name.
    pub fault: Option<String>,
    /// Plain words.
    pub detail: String,
}

impl NewEvent {
    /// An event of `kind` with `detail`.
    pub fn new(kind: EventKind, detail: impl Into<String>) -> Self {
        NewEvent {
            kind,
            device: None,
            txn: None,
            state: None,
            fault: None,
            detail: detail.into(),
        }
    }

    /// About `device`.
    pub fn device(mut self, device: &'static str) -> Self {
        self.device = Some(device);
        self
    }

    /// About transaction `id`.
    pub fn txn(mut self, id: i64) -> Self {
        self.txn = Some(id);
        self
    }

    /// With a fault kind.
    pub fn fault(mut self, kind: pos_hal::FaultKind) -> Self {
        self.fault = Some(kind.name().to_string());
        self
    }
}

struct Inner {
    next_seq: u64,
    recent: VecDeque<Arc<Event>>,
    subscribers: Vec<Sender<Arc<Event>>>,
}

/// Fan-out of events to every subscriber, with a replay buffer.
pub struct EventBus {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = self.lock();
        f.debug_struct("EventBus")
            .field("next_seq", &i.next_seq)
            .field("subscribers", &i.subscribers.len())
            .finish()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            inner: Mutex::new(Inner {
                next_seq: 1,
                recent: VecDeque::with_capacity(REPLAY),
                subscribers: Vec::new(),
            }),
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl EventBus {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Number, keep and send `event` to every subscriber; returns its sequence number.
    pub fn publish(&self, event: NewEvent) -> u64 {
        let mut i = self.lock();
        let seq = i.next_seq;
        i.next_seq += 1;
        let e = Arc::new(Event {
            seq,
            time_ms: now_ms(),
            kind: event.kind.name(),
            device: event.device,
            txn: event.txn,
            state: event.state,
            fault: event.fault,
            detail: event.detail,
        });
        log::info!(
            "event {} {}{}: {}",
            e.kind,
            e.device.unwrap_or(""),
            e.txn.map(|t| format!(" txn {t}")).unwrap_or_default(),
            e.detail
        );
        if i.recent.len() == REPLAY {
            i.recent.pop_front();
        }
        i.recent.push_back(Arc::clone(&e));
        i.subscribers.retain(|s| s.send(Arc::clone(&e)).is_ok());
        seq
    }

    /// A new subscription, first replaying the kept events after `since` (a sequence
    /// number; `None`: nothing replayed). Events published after this call all arrive, in
    /// order, after the replayed ones.
    pub fn subscribe(&self, since: Option<u64>) -> Receiver<Arc<Event>> {
        let (tx, rx) = channel();
        let mut i = self.lock();
        if let Some(since) = since {
            for e in i.recent.iter().filter(|e| e.seq > since) {
                // The receiver is alive: we hold it.
                let _ = tx.send(Arc::clone(e));
            }
        }
        i.subscribers.push(tx);
        rx
    }

    /// The sequence number of the latest event (0 before any).
    pub fn last_seq(&self) -> u64 {
        self.lock().next_seq - 1
    }

    /// Kept events after `since`, oldest first.
    pub fn recent(&self, since: u64) -> Vec<Arc<Event>> {
        self.lock()
            .recent
            .iter()
            .filter(|e| e.seq > since)
            .cloned()
            .collect()
    }

    /// Live subscribers.
    pub fn subscriber_count(&self) -> usize {
        self.lock().subscribers.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn subscribers_get_events_in_order_and_replay_fills_the_gap() {
        let bus = EventBus::default();
        let first = bus.subscribe(None);
        bus.publish(NewEvent::new(EventKind::CardInserted, "in").device("reader"));
        bus.publish(NewEvent::new(EventKind::CardRemoved, "out").device("reader"));
        let a = first.recv_timeout(Duration::from_secs(1)).unwrap();
        let b = first.recv_timeout(Duration::from_secs(1)).unwrap();
        assert_eq!(
            (a.seq, a.kind, b.seq, b.kind),
            (1, "card_inserted", 2, "card_removed")
        );
        // A client that saw event 1 reconnects: it gets 2, then the live ones.
        let late = bus.subscribe(Some(1));
        bus.publish(NewEvent::new(EventKind::PaperLow, "low").device("printer"));
        let got: Vec<u64> = (0..2)
            .map(|_| late.recv_timeout(Duration::from_secs(1)).unwrap().seq)
            .collect();
        assert_eq!(got, vec![2, 3]);
        assert_eq!(bus.last_seq(), 3);
    }

    #[test]
    fn gone_subscribers_are_pruned_and_replay_is_bounded() {
        let bus = EventBus::default();
        drop(bus.subscribe(None));
        for n in 0..(REPLAY + 10) {
            bus.publish(NewEvent::new(EventKind::HealthCheck, format!("{n}")));
        }
        assert_eq!(bus.subscriber_count(), 0);
        let all = bus.recent(0);
        assert_eq!(all.len(), REPLAY);
        assert_eq!(all[0].seq, 11);
    }

    #[test]
    fn names_are_unique_snake_case() {
        let mut names: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventKind::ALL.len());
    }
}
