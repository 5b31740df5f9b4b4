//! The live event stream: what the lane's devices and transactions do, as it happens.
//!
//! One [`EventBus`] per lane. Publishing never blocks: each subscriber has its own bounded
//! queue of [`QUEUE`] events; a subscriber whose queue is full fell behind and is dropped
//! from the bus (its [`Subscription`] says so, so the stream can tell its client to reconnect
//! with `since=`), and one that went away is pruned. Memory per subscriber is bounded, whatever
//! its client does. The last [`REPLAY`] events are kept so a client that reconnects with
//! `Last-Event-ID` (or `?since=`) misses nothing in between.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;

/// How many past events are kept for replay.
pub const REPLAY: usize = 1024;

/// How many live events may wait for one subscriber. A subscriber further behind is dropped
/// (see [`Subscription::fell_behind`]).
pub const QUEUE: usize = 256;

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
    /// The settlement it belongs to (`settlement`, `settlement_difference`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settlement: Option<i64>,
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
    /// A settlement with the host ended: balanced, closed with differences, refused before
    /// it started, or stopped before it finished (`settlement` names it once it exists).
    Settlement,
    /// A settlement found a difference between the terminal and the host (an alarm: the
    /// detail names the transaction, the amounts and what to do).
    SettlementDifference,
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
            EventKind::Settlement => "settlement",
            EventKind::SettlementDifference => "settlement_difference",
        }
    }

    /// Every kind, for documentation and tests.
    pub const ALL: [EventKind; 22] = [
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
        EventKind::Settlement,
        EventKind::SettlementDifference,
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
    /// Which settlement.
    pub settlement: Option<i64>,
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
            settlement: None,
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

    /// About settlement `id`.
    pub fn settlement(mut self, id: i64) -> Self {
        self.settlement = Some(id);
        self
    }

    /// With a fault kind.
    pub fn fault(mut self, kind: pos_hal::FaultKind) -> Self {
        self.fault = Some(kind.name().to_string());
        self
    }
}

struct Subscriber {
    tx: SyncSender<Arc<Event>>,
    behind: Arc<AtomicBool>,
}

struct Inner {
    next_seq: u64,
    recent: VecDeque<Arc<Event>>,
    subscribers: Vec<Subscriber>,
}

/// One subscriber's events: the replayed ones first, then the live ones, in order.
#[derive(Debug)]
pub struct Subscription {
    replay: VecDeque<Arc<Event>>,
    rx: Receiver<Arc<Event>>,
    behind: Arc<AtomicBool>,
    start: u64,
}

impl Subscription {
    /// The next event, waiting at most `timeout`. `Disconnected` once the bus dropped this
    /// subscriber and its queue is empty: it fell behind ([`Subscription::fell_behind`]) or
    /// the bus is gone.
    ///
    /// # Errors
    /// `Timeout` when no event came in time; `Disconnected` as above.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Arc<Event>, RecvTimeoutError> {
        match self.replay.pop_front() {
            Some(e) => Ok(e),
            None => self.rx.recv_timeout(timeout),
        }
    }

    /// True when the bus dropped this subscriber because its queue was full: events after
    /// the queued ones were not delivered to it.
    pub fn fell_behind(&self) -> bool {
        self.behind.load(Ordering::SeqCst)
    }

    /// The sequence number of the latest event when the subscription began.
    pub fn start_seq(&self) -> u64 {
        self.start
    }
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
            settlement: event.settlement,
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
        i.subscribers
            .retain(|s| match s.tx.try_send(Arc::clone(&e)) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    s.behind.store(true, Ordering::SeqCst);
                    false
                }
                Err(TrySendError::Disconnected(_)) => false,
            });
        seq
    }

    /// A new subscription, first replaying the kept events after `since` (a sequence
    /// number; `None`: nothing replayed). Events published after this call all arrive, in
    /// order, after the replayed ones, unless the subscriber falls more than [`QUEUE`]
    /// events behind: then it is dropped and [`Subscription::fell_behind`] says so.
    pub fn subscribe(&self, since: Option<u64>) -> Subscription {
        let (tx, rx) = sync_channel(QUEUE);
        let behind = Arc::new(AtomicBool::new(false));
        let mut i = self.lock();
        let replay = match since {
            Some(since) => i.recent.iter().filter(|e| e.seq > since).cloned().collect(),
            None => VecDeque::new(),
        };
        i.subscribers.push(Subscriber {
            tx,
            behind: Arc::clone(&behind),
        });
        Subscription {
            replay,
            rx,
            behind,
            start: i.next_seq - 1,
        }
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
        let mut first = bus.subscribe(None);
        bus.publish(NewEvent::new(EventKind::CardInserted, "in").device("reader"));
        bus.publish(NewEvent::new(EventKind::CardRemoved, "out").device("reader"));
        let a = first.recv_timeout(Duration::from_secs(1)).unwrap();
        let b = first.recv_timeout(Duration::from_secs(1)).unwrap();
        assert_eq!(
            (a.seq, a.kind, b.seq, b.kind),
            (1, "card_inserted", 2, "card_removed")
        );
        // A client that saw event 1 reconnects: it gets 2, then the live ones.
        let mut late = bus.subscribe(Some(1));
        bus.publish(NewEvent::new(EventKind::PaperLow, "low").device("printer"));
        let got: Vec<u64> = (0..2)
            .map(|_| late.recv_timeout(Duration::from_secs(1)).unwrap().seq)
            .collect();
        assert_eq!(got, vec![2, 3]);
        assert_eq!(bus.last_seq(), 3);
    }

    #[test]
    fn a_subscriber_that_does_not_read_is_dropped_after_its_queue_fills() {
        let bus = EventBus::default();
        let mut stuck = bus.subscribe(None);
        let mut live = bus.subscribe(None);
        let mut got = 0;
        for n in 0..(10 * QUEUE) {
            bus.publish(NewEvent::new(EventKind::HealthCheck, format!("{n}")));
            // The live one keeps up.
            while live.recv_timeout(Duration::ZERO).is_ok() {
                got += 1;
            }
        }
        assert_eq!(got, 10 * QUEUE);
        assert!(!live.fell_behind());
        assert_eq!(bus.subscriber_count(), 1, "the stuck one is no longer fed");
        // It still gets what was queued, in order, then learns it fell behind.
        let mut seqs = Vec::new();
        while let Ok(e) = stuck.recv_timeout(Duration::from_millis(10)) {
            seqs.push(e.seq);
        }
        assert_eq!(seqs, (1..=QUEUE as u64).collect::<Vec<_>>());
        assert!(stuck.fell_behind());
        assert_eq!(stuck.start_seq(), 0);
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
