//! Admission: the table of open connections (the oldest idle one evicted at the cap) and the
//! request slots (general, the probe and sale reserves, the stream pool).

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::socket::Conn;
use super::{Class, Limits};

/// Where a connection is in its life, for eviction and stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for or reading a request head or body (idle kept-alive connections too).
    Head,
    /// A request is being handled or answered.
    Busy,
    /// An event stream.
    Stream,
}

pub(super) struct Entry {
    pub(super) id: u64,
    pub(super) phase: Phase,
    pub(super) since: Instant,
    pub(super) handle: Conn,
    pub(super) evicted: Arc<AtomicBool>,
}

#[derive(Default)]
pub(super) struct Table {
    pub(super) entries: Vec<Entry>,
    pub(super) next_id: u64,
}

#[derive(Debug, Default, Clone, Copy)]
pub(super) struct InUse {
    general: usize,
    probe: usize,
    sale: usize,
    stream: usize,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Pool {
    General,
    Probe,
    Sale,
    Stream,
}

pub(super) struct Slots {
    pub(super) used: Mutex<InUse>,
    pub(super) freed: Condvar,
}

pub(super) struct Slot<'a> {
    slots: &'a Slots,
    pool: Pool,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        {
            let mut u = self.slots.lock();
            let n = match self.pool {
                Pool::General => &mut u.general,
                Pool::Probe => &mut u.probe,
                Pool::Sale => &mut u.sale,
                Pool::Stream => &mut u.stream,
            };
            *n = n.saturating_sub(1);
        }
        self.slots.freed.notify_all();
    }
}

impl Slots {
    fn lock(&self) -> MutexGuard<'_, InUse> {
        self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(u: &mut InUse, l: &Limits, class: Class) -> Option<Pool> {
        match class {
            Class::Stream if u.stream < l.streams => {
                u.stream += 1;
                Some(Pool::Stream)
            }
            Class::Stream => None,
            _ if u.general < l.general => {
                u.general += 1;
                Some(Pool::General)
            }
            Class::Probe if u.probe < l.probe_reserve => {
                u.probe += 1;
                Some(Pool::Probe)
            }
            Class::Sale if u.sale < l.sale_reserve => {
                u.sale += 1;
                Some(Pool::Sale)
            }
            _ => None,
        }
    }

    /// A slot for `class`, waiting until `until` for one to come free.
    pub(super) fn acquire(&self, l: &Limits, class: Class, until: Instant) -> Option<Slot<'_>> {
        let mut u = self.lock();
        loop {
            if let Some(pool) = Slots::take(&mut u, l, class) {
                return Some(Slot { slots: self, pool });
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            u = self
                .freed
                .wait_timeout(u, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}
