//! The presence monitor: card insertions and removals from the interrupt endpoint, or by
//! polling slot status.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use pos_hal::{DeviceEvent, EventHub, Fault, FaultKind};
use pos_link::Deadline;

use super::{CcidReader, Inner, Presence};
use crate::error::CcidError;
use crate::message::{IccStatus, Notification};
use crate::transport::{CcidTransport, InterruptSource, is_gone};

impl<T: CcidTransport + 'static> CcidReader<T> {
    /// Start the presence monitor: on the interrupt endpoint when the reader has one, else
    /// polling slot status every `poll_interval`.
    pub(super) fn start_monitor(&mut self) {
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
