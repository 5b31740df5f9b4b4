//! The presence monitor: `SCardGetStatusChange` on a context of its own, re-armed with the
//! last state seen, a finite wait at a time; `SCardCancel` from the closing reader ends it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pos_hal::{DeviceEvent, EventHub};

use crate::api::{Context, PcscApi, ReaderState};
use crate::codes::{
    SCARD_E_CANCELLED, SCARD_E_READER_UNAVAILABLE, SCARD_E_TIMEOUT, SCARD_E_UNKNOWN_READER,
    SCARD_STATE_CHANGED,
};
use crate::reader::Shared;

pub(crate) struct Monitor {
    pub(crate) api: Arc<dyn PcscApi>,
    pub(crate) ctx: Context,
    pub(crate) reader: String,
    pub(crate) hub: EventHub,
    pub(crate) shared: Arc<Shared>,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) wait: Duration,
    /// The reader's state as `PcscReader::open` saw it (so a change between the open and
    /// the thread's first wait is an event too); `None`: the thread's first look sets it.
    pub(crate) initial: Option<ReaderState>,
}

/// What one change means, from the presence and event counter before and after.
/// Returns (removed, inserted). pcsc-lite counts every insertion and removal, so a card
/// present at both looks with the counter moved by 2 or more came and went in between.
pub(crate) fn change(was: bool, was_count: u16, now: bool, count: u16) -> (bool, bool) {
    let swapped = was && now && count.wrapping_sub(was_count) >= 2;
    let removed = (was && !now) || swapped;
    let inserted = (!was && now) || swapped;
    (removed, inserted)
}

impl Monitor {
    pub(crate) fn run(self) {
        let mut st = [ReaderState::unaware(&self.reader)];
        let mut known: Option<(bool, u16)> = None;
        if let Some(first) = &self.initial {
            if !first.gone() {
                known = Some((first.present(), first.event_count()));
                st[0].current = first.event & !SCARD_STATE_CHANGED;
            }
        }
        while !self.stop.load(Ordering::SeqCst) {
            // The first look (state unaware) returns at once.
            match self.api.get_status_change(self.ctx, self.wait, &mut st) {
                Ok(()) => {}
                Err(c) if c.0 == SCARD_E_TIMEOUT => continue,
                Err(c) if c.0 == SCARD_E_CANCELLED => break,
                Err(c) if c.is_no_service() => {
                    self.shared
                        .service_stopped(&self.hub, &format!("pcscd stopped ({c})"));
                    break;
                }
                Err(c) if matches!(c.0, SCARD_E_UNKNOWN_READER | SCARD_E_READER_UNAVAILABLE) => {
                    self.shared
                        .reader_gone(&self.hub, &format!("the reader left pcscd ({c})"));
                    break;
                }
                Err(c) => {
                    // Not a busy loop: wait as long as a look would have before trying again.
                    log::warn!("pcsc: {}: SCardGetStatusChange: {c}", self.reader);
                    std::thread::sleep(self.wait.max(Duration::from_millis(10)));
                    continue;
                }
            }
            let s = &st[0];
            if s.gone() {
                self.shared
                    .reader_gone(&self.hub, "the reader left pcscd (unplugged)");
                break;
            }
            let (now, count) = (s.present(), s.event_count());
            if let Some((was, was_count)) = known {
                let (removed, inserted) = change(was, was_count, now, count);
                if removed {
                    self.shared.removed_since.store(true, Ordering::SeqCst);
                    self.hub.publish(DeviceEvent::CardRemoved { slot: 0 });
                }
                if inserted {
                    self.hub.publish(DeviceEvent::CardInserted { slot: 0 });
                }
            }
            known = Some((now, count));
            st[0].current = st[0].event & !SCARD_STATE_CHANGED;
        }
        if let Err(c) = self.api.release_context(self.ctx) {
            log::debug!("pcsc: {}: SCardReleaseContext: {c}", self.reader);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::change;

    #[test]
    fn changes() {
        assert_eq!(change(false, 0, true, 1), (false, true));
        assert_eq!(change(true, 1, false, 2), (true, false));
        assert_eq!(change(true, 1, true, 3), (true, true));
        assert_eq!(change(true, 1, true, 1), (false, false));
        assert_eq!(change(true, 0xFFFF, true, 1), (true, true));
    }
}
