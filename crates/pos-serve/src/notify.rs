//! Change notification between the lane worker and the API's long polls.
//!
//! A bare [`Condvar`] loses a notification that comes between a waiter's look at the state
//! and the start of its wait (the journal reaches its final state while the waiter reads it):
//! that waiter then sleeps until a timer ends its wait. [`Changed`] counts every change, so a
//! waiter says which count it saw the state at, and [`Changed::wait_past`] returns at once if
//! the count moved since: no change can fall between looking and waiting.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// A change counter with a condition variable (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct Changed {
    generation: Mutex<u64>,
    cond: Condvar,
}

impl Changed {
    fn lock(&self) -> MutexGuard<'_, u64> {
        self.generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Something a waiter may be waiting for changed: count it and wake every waiter. Call
    /// it after the change is visible (journal committed, lane state updated).
    pub(crate) fn notify_all(&self) {
        {
            let mut g = self.lock();
            *g = g.wrapping_add(1);
        }
        self.cond.notify_all();
    }

    /// The count now. Read it *before* looking at the state, then pass it to
    /// [`Changed::wait_past`].
    pub(crate) fn generation(&self) -> u64 {
        *self.lock()
    }

    /// Wait until the count differs from `seen` (true) or `until` passed (false). Returns at
    /// once when a change came since `seen` was read.
    pub(crate) fn wait_past(&self, seen: u64, until: Instant) -> bool {
        let mut g = self.lock();
        loop {
            if *g != seen {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            g = self
                .cond
                .wait_timeout(g, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// The interleaving a bare condition variable loses: the state changes (and the change is
    /// announced) after the waiter looked but before it waits. The wait must end at once,
    /// not when its (here: one hour) limit passes.
    #[test]
    fn a_change_between_looking_and_waiting_is_not_lost() {
        let c = Changed::default();
        let done = AtomicBool::new(false);
        let seen = c.generation();
        assert!(!done.load(Ordering::SeqCst)); // the waiter looks: not done
        done.store(true, Ordering::SeqCst); // the worker finishes...
        c.notify_all(); // ...and says so, before the waiter waits
        let hour = Instant::now() + Duration::from_secs(3600);
        assert!(
            c.wait_past(seen, hour),
            "woken by the change, not the time limit"
        );
        assert!(done.load(Ordering::SeqCst));
    }

    #[test]
    fn waiters_on_other_threads_wake_on_the_change_and_time_out_without_one() {
        let c = Arc::new(Changed::default());
        assert!(!c.wait_past(c.generation(), Instant::now() + Duration::from_millis(20)));
        let seen = c.generation();
        let w = {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                c.wait_past(seen, Instant::now() + Duration::from_secs(3600))
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        c.notify_all();
        assert!(w.join().unwrap());
    }
}
