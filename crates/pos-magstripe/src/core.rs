//! What every stripe reader driver shares (serial, keyboard wedge, HID, TTL head): its
//! name, event hub and state; refusing a reader that went away; the disconnection and the
//! swipe as they are logged and published; the health report's common checks; wiping
//! buffers that held card data. Written once here, used by each driver.

use std::time::Duration;

use pos_hal::{
    DeviceEvent, DeviceInfo, DeviceKind, DeviceState, EventHub, Fault, FaultKind, HealthLevel,
    HealthReport, Subscription, Swipe, TrackStatus,
};
use pos_link::{LinkError, Operation};

use crate::serial::MsrError;

/// The `pos_hal::Device` and `pos_hal::MagstripeReader` impls of a driver over a
/// [`ReaderCore`] (in a field `core`) with a `wait_inner(timeout)`: info, state and events
/// from the core, its own health report (the block, with the driver as `$this`), and the
/// wait bracketed by [`ReaderCore::begin`] and [`ReaderCore::end`]. Written once for the
/// serial, keyboard-wedge and HID drivers.
macro_rules! core_reader_impls {
    (
        impl[$($gen:tt)*] for $ty:ty;
        $(#[$hdoc:meta])* fn check_health($this:ident, $level:ident) $health:block
        $(#[$wdoc:meta])* fn wait_for_swipe;
    ) => {
        impl<$($gen)*> pos_hal::Device for $ty {
            type Error = $crate::serial::MsrError;

            fn info(&self) -> pos_hal::DeviceInfo {
                self.core.info()
            }

            fn state(&self) -> pos_hal::DeviceState {
                self.core.state()
            }

            $(#[$hdoc])*
            fn check_health(
                &mut $this,
                $level: pos_hal::HealthLevel,
            ) -> Result<pos_hal::HealthReport, $crate::serial::MsrError> {
                Ok($health)
            }

            fn subscribe(&mut self) -> Result<pos_hal::Subscription, $crate::serial::MsrError> {
                Ok(self.core.subscribe())
            }
        }

        impl<$($gen)*> pos_hal::MagstripeReader for $ty {
            $(#[$wdoc])*
            fn wait_for_swipe(
                &mut self,
                timeout: std::time::Duration,
            ) -> Result<pos_hal::Swipe, $crate::serial::MsrError> {
                self.core.begin()?;
                let r = self.wait_inner(timeout);
                self.core.end();
                r
            }
        }
    };
}

/// Overwrite bytes that may hold card data before they are freed.
pub(crate) fn wipe(buf: &mut [u8]) {
    buf.fill(0);
    std::hint::black_box(buf);
}

/// [`wipe`] a string's bytes and free it.
pub(crate) fn wipe_string(s: String) {
    let mut bytes = s.into_bytes();
    wipe(&mut bytes);
}

/// The shared part of a stripe reader driver.
#[derive(Debug)]
pub(crate) struct ReaderCore {
    uri: String,
    hub: EventHub,
    state: DeviceState,
}

impl ReaderCore {
    /// A reader known as `uri` (info, errors, events), idle.
    pub(crate) fn new(uri: &str) -> ReaderCore {
        ReaderCore {
            uri: uri.to_string(),
            hub: EventHub::new(uri),
            state: DeviceState::Idle,
        }
    }

    pub(crate) fn uri(&self) -> &str {
        &self.uri
    }

    pub(crate) fn info(&self) -> DeviceInfo {
        DeviceInfo::new(DeviceKind::MagstripeReader, self.uri.clone())
    }

    pub(crate) fn state(&self) -> DeviceState {
        self.state
    }

    pub(crate) fn subscribe(&self) -> Subscription {
        self.hub.subscribe()
    }

    /// Before a wait: a reader that went away stays refused (`Disconnected`); otherwise
    /// it is busy until [`ReaderCore::end`].
    pub(crate) fn begin(&mut self) -> Result<(), MsrError> {
        if self.state == DeviceState::Error {
            return Err(MsrError::Link(LinkError::disconnected(
                &self.uri,
                Operation::Read,
                "the reader went away earlier",
            )));
        }
        self.busy();
        Ok(())
    }

    /// Busy (waiting for a swipe) until [`ReaderCore::end`].
    pub(crate) fn busy(&mut self) {
        self.state = DeviceState::Busy;
    }

    /// After a wait: idle again, unless it went away meanwhile.
    pub(crate) fn end(&mut self) {
        if self.state == DeviceState::Busy {
            self.state = DeviceState::Idle;
        }
    }

    /// A link error of a wait: a disconnection puts the reader in `Error` (logged, a
    /// `Disconnected` event); every error becomes [`MsrError::Link`].
    pub(crate) fn link_failed(&mut self, e: LinkError) -> MsrError {
        if e.kind() == FaultKind::Disconnected {
            self.state = DeviceState::Error;
            log::warn!("{}: reader disconnected: {e}", self.uri);
            self.hub.publish(DeviceEvent::Disconnected {
                detail: e.to_string(),
            });
        }
        MsrError::Link(e)
    }

    /// A timeout of a wait that began `waited` ago.
    pub(crate) fn timeout(&self, waited: Duration) -> MsrError {
        MsrError::Timeout {
            target: self.uri.clone(),
            waited,
        }
    }

    /// A pin or device fault other than a disconnection: logged and published.
    pub(crate) fn fault(&self, kind: FaultKind, detail: String) {
        log::warn!("{}: {detail}", self.uri);
        self.hub.publish(DeviceEvent::Fault { kind, detail });
    }

    /// A swipe came (`what`: how it came, for the log, never card data): logged with the
    /// track statuses, published as `Swiped`; the swipe when a track read, else the track
    /// statuses for a `BadRead`.
    pub(crate) fn swiped(&self, swipe: Swipe, what: &str) -> Result<Swipe, [TrackStatus; 3]> {
        let tracks = swipe.statuses();
        log::info!(
            "{}: swipe ({what}), tracks {} {} {}",
            self.uri,
            tracks[0].name(),
            tracks[1].name(),
            tracks[2].name()
        );
        self.hub.publish(DeviceEvent::Swiped { tracks });
        if tracks.contains(&TrackStatus::Ok) {
            Ok(swipe)
        } else {
            Err(tracks)
        }
    }

    /// The health report every reader gives: the driver's `checks`; at `External`,
    /// `status` skipped with `no_status` (why there is no status request); at
    /// `Interactive`, `swipe` skipped (it needs a person).
    pub(crate) fn health(
        &self,
        level: HealthLevel,
        no_status: &str,
        checks: impl FnOnce(&mut HealthReport),
    ) -> HealthReport {
        let mut r = HealthReport::new(self.uri.clone(), level);
        checks(&mut r);
        if level >= HealthLevel::External {
            r.skip("status", no_status);
        }
        if level >= HealthLevel::Interactive {
            r.skip("swipe", "use wait_for_swipe with a test card");
        }
        r
    }

    /// The check of a reader on a link: `check` passes unless the reader went away
    /// (`Disconnected`, naming `target`).
    pub(crate) fn link_check(&self, r: &mut HealthReport, check: &str, target: &str) {
        if self.state == DeviceState::Error {
            r.fail(
                check,
                FaultKind::Disconnected,
                format!("{target}: the reader went away"),
            );
        } else {
            r.pass(check, format!("{target} open"));
        }
    }
}
