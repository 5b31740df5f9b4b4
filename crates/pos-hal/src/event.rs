//! Device events, delivered over channels from the driver's monitor thread.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::fault::FaultKind;
use crate::magstripe::TrackStatus;
use crate::printer::PrinterConditions;

/// Something that happened at a device. Events never carry card data: a swipe event says a
/// swipe happened and how each track read; the data comes from
/// [`MagstripeReader::wait_for_swipe`](crate::MagstripeReader::wait_for_swipe).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "event", rename_all = "snake_case"))]
#[non_exhaustive]
pub enum DeviceEvent {
    /// A card was inserted into a chip reader slot.
    CardInserted {
        /// Slot number, from 0.
        slot: u8,
    },
    /// A card left a chip reader slot.
    CardRemoved {
        /// Slot number, from 0.
        slot: u8,
    },
    /// A card was swiped; per-track read status, tracks 1 to 3.
    Swiped {
        /// Status of tracks 1, 2 and 3.
        tracks: [TrackStatus; 3],
    },
    /// A printer's conditions changed.
    PrinterStatusChanged {
        /// Conditions before.
        old: PrinterConditions,
        /// Conditions now.
        new: PrinterConditions,
    },
    /// A fault was detected outside a request (e.g. by the monitor thread).
    Fault {
        /// The kind.
        kind: FaultKind,
        /// What was seen.
        detail: String,
    },
    /// The device went away (unplugged, connection lost).
    Disconnected {
        /// What was seen.
        detail: String,
    },
    /// The device is back after a disconnection.
    Reconnected,
}

impl DeviceEvent {
    /// Stable snake_case name of the event type.
    pub fn name(&self) -> &'static str {
        match self {
            DeviceEvent::CardInserted { .. } => "card_inserted",
            DeviceEvent::CardRemoved { .. } => "card_removed",
            DeviceEvent::Swiped { .. } => "swiped",
            DeviceEvent::PrinterStatusChanged { .. } => "printer_status_changed",
            DeviceEvent::Fault { .. } => "fault",
            DeviceEvent::Disconnected { .. } => "disconnected",
            DeviceEvent::Reconnected => "reconnected",
        }
    }
}

/// An event with when and where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TimedEvent {
    /// Wall-clock time the driver saw it.
    pub at: SystemTime,
    /// The device's URI.
    pub device: Arc<str>,
    /// What happened.
    pub event: DeviceEvent,
}

/// Why [`Subscription::recv_timeout`] returned without an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// Nothing happened in the time given.
    Timeout,
    /// The driver stopped (device closed or dropped): no more events will come.
    Closed,
}

impl std::fmt::Display for RecvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RecvError::Timeout => "no event in the time given",
            RecvError::Closed => "the device's event source has stopped",
        })
    }
}

impl std::error::Error for RecvError {}

/// The receiving end of a device's events. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    rx: Receiver<TimedEvent>,
}

impl Subscription {
    /// Wait up to `timeout` for the next event.
    ///
    /// Errors: [`RecvError::Timeout`] when none came, [`RecvError::Closed`] when the driver
    /// stopped (every event sent before that is still delivered first).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<TimedEvent, RecvError> {
        self.rx.recv_timeout(timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => RecvError::Timeout,
            RecvTimeoutError::Disconnected => RecvError::Closed,
        })
    }

    /// The next event if one is waiting; does not block.
    ///
    /// Errors: [`RecvError::Timeout`] when none is waiting, [`RecvError::Closed`] as above.
    pub fn try_recv(&self) -> Result<TimedEvent, RecvError> {
        self.rx.try_recv().map_err(|e| match e {
            TryRecvError::Empty => RecvError::Timeout,
            TryRecvError::Disconnected => RecvError::Closed,
        })
    }

    /// All events waiting now, without blocking.
    pub fn drain(&self) -> Vec<TimedEvent> {
        self.rx.try_iter().collect()
    }
}

/// The sending side, owned by a driver: fans each event out to every live subscriber.
///
/// Cheap to clone (the monitor thread keeps a clone). Channels are unbounded, so a subscriber
/// that stops reading never blocks the driver; dropped subscribers are pruned on the next
/// publish. When every clone of the hub is dropped, subscribers see [`RecvError::Closed`].
#[derive(Debug, Clone)]
pub struct EventHub {
    device: Arc<str>,
    subscribers: Arc<Mutex<Vec<Sender<TimedEvent>>>>,
}

impl EventHub {
    /// A hub for the device at `uri`.
    pub fn new(uri: &str) -> Self {
        EventHub {
            device: Arc::from(uri),
            subscribers: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// A new subscription receiving every event published from now on.
    pub fn subscribe(&self) -> Subscription {
        let (tx, rx) = mpsc::channel();
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(tx);
        Subscription { rx }
    }

    /// Publish an event stamped with the current time. Returns how many subscribers got it.
    pub fn publish(&self, event: DeviceEvent) -> usize {
        let timed = TimedEvent {
            at: SystemTime::now(),
            device: Arc::clone(&self.device),
            event,
        };
        let mut subs = self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        subs.retain(|tx| tx.send(timed.clone()).is_ok());
        subs.len()
    }

    /// Number of live subscribers (as of the last publish).
    pub fn subscriber_count(&self) -> usize {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn every_subscriber_gets_every_event_from_a_monitor_thread() {
        let hub = EventHub::new("sim:ccid");
        let a = hub.subscribe();
        let b = hub.subscribe();
        let monitor = {
            let hub = hub.clone();
            thread::spawn(move || {
                hub.publish(DeviceEvent::CardInserted { slot: 0 });
                hub.publish(DeviceEvent::CardRemoved { slot: 0 });
            })
        };
        monitor.join().unwrap();
        for sub in [&a, &b] {
            let e1 = sub.recv_timeout(Duration::from_secs(1)).unwrap();
            assert_eq!(e1.event, DeviceEvent::CardInserted { slot: 0 });
            assert_eq!(&*e1.device, "sim:ccid");
            let e2 = sub.recv_timeout(Duration::from_secs(1)).unwrap();
            assert_eq!(e2.event.name(), "card_removed");
            assert!(e2.at >= e1.at);
            assert_eq!(sub.try_recv(), Err(RecvError::Timeout));
        }
    }

    #[test]
    fn dropped_subscribers_are_pruned_and_closing_is_seen() {
        let hub = EventHub::new("sim:printer");
        let keep = hub.subscribe();
        let gone = hub.subscribe();
        drop(gone);
        assert_eq!(hub.publish(DeviceEvent::Reconnected), 1);
        assert_eq!(hub.subscriber_count(), 1);
        drop(hub);
        // Events sent before the hub went away are still delivered, then Closed.
        assert_eq!(
            keep.recv_timeout(Duration::from_millis(10)).unwrap().event,
            DeviceEvent::Reconnected
        );
        assert_eq!(
            keep.recv_timeout(Duration::from_millis(10)),
            Err(RecvError::Closed)
        );
    }

    #[test]
    fn a_slow_subscriber_does_not_block_publishing() {
        let hub = EventHub::new("sim:msr");
        let slow = hub.subscribe();
        for _ in 0..10_000 {
            hub.publish(DeviceEvent::Fault {
                kind: FaultKind::BadRead,
                detail: "noise".into(),
            });
        }
        assert_eq!(slow.drain().len(), 10_000);
    }

    #[test]
    fn a_subscription_with_no_event_times_out() {
        let hub = EventHub::new("sim:msr");
        let sub = hub.subscribe();
        assert_eq!(
            sub.recv_timeout(Duration::from_millis(5)),
            Err(RecvError::Timeout)
        );
    }
}
