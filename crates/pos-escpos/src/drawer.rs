//! The cash drawer behind an ESC/POS printer: `ESC p` to release it, DLE EOT 1 to read its
//! switch.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use pos_hal::{
    CashDrawer, Device, DeviceInfo, DeviceKind, DeviceState, DrawerPin, DrawerPulse, DrawerState,
    EventHub, Fault, FaultKind, HealthLevel, HealthReport, PrinterConditions, Subscription,
};
use pos_link::{Deadline, Link};

use crate::command::{self, Command};
use crate::driver::{Inner, spawn_monitor};
use crate::error::EscPosError;
use crate::profile::Support;
use crate::status::StatusRequest;

/// How long after the pulse the switch is read, beyond the pulse's own on and off times:
/// a drawer needs a moment to spring open.
const SWITCH_SETTLE: Duration = Duration::from_millis(100);

/// ESC p's unit is 2 ms; times are rounded up, at least one unit, at most 255.
fn units(d: Duration) -> u8 {
    let u = d.as_millis().div_ceil(2).clamp(1, 255);
    u8::try_from(u).unwrap_or(u8::MAX)
}

/// The `ESC p m t1 t2` command for `pulse` (m 0 for pin 2, 1 for pin 5).
pub(crate) fn pulse_command(pulse: &DrawerPulse) -> Command {
    Command::DrawerPulse {
        pin: match pulse.pin {
            DrawerPin::Pin2 => 0,
            DrawerPin::Pin5 => 1,
        },
        on: units(pulse.on),
        off: units(pulse.off),
    }
}

impl<L: Link + 'static> Inner<L> {
    /// The drawer's switch from DLE EOT 1, at the level the profile says means open;
    /// `Unknown` when the profile says the printer does not answer DLE EOT.
    pub(crate) fn drawer_state(&mut self) -> Result<DrawerState, EscPosError> {
        if self.profile.dle_eot == Support::No {
            return Ok(DrawerState::Unknown);
        }
        self.poll_replies()?;
        let c = self.real_time(StatusRequest::Printer)?;
        Ok(if c.contains(PrinterConditions::DRAWER_OPEN) {
            DrawerState::Open
        } else {
            DrawerState::Closed
        })
    }

    /// Check the printer can act now, send `ESC p`, wait out the pulse, read the switch.
    pub(crate) fn open_drawer(&mut self, pulse: &DrawerPulse) -> Result<DrawerState, EscPosError> {
        if let Some(problem) = pulse.problem() {
            return Err(EscPosError::Unsupported(problem));
        }
        if !self.profile.pulse.is_yes() {
            return Err(EscPosError::Unsupported(format!(
                "printer profile {} has no known drawer pulse (ESC p is {}): the drawer cannot be opened through it",
                self.profile.name, self.profile.pulse
            )));
        }
        let c = self.status()?;
        if let Some(kind) = c.blocking_fault() {
            return Err(EscPosError::DrawerRefused {
                kind,
                conditions: c,
            });
        }
        self.write(
            &command::to_bytes(&[pulse_command(pulse)]),
            Deadline::after(self.config.write_timeout),
        )?;
        std::thread::sleep(pulse.on + pulse.off + SWITCH_SETTLE);
        self.drawer_state()
    }
}

/// The cash drawer on an ESC/POS printer's kick-out connector (from
/// [`EscPosPrinter::drawer`](crate::EscPosPrinter::drawer)).
///
/// Implements [`CashDrawer`]: `open_drawer` asks the printer's full status first and refuses
/// while it has a stopping condition (cover open, paper out, offline: the printer would hold
/// the pulse in its buffer and fire it later), then sends `ESC p m t1 t2` and reads the
/// switch after the pulse; `drawer_state` reads DLE EOT 1 bit 2 (connector pin 3) at the
/// level the profile's `drawer_open_when_pin3_high` says means open, and is `Unknown` when
/// the profile says the printer does not answer DLE EOT. It shares the printer's link and
/// lock: a drawer call waits for a print job in progress, never interleaves with it.
pub struct EscPosDrawer<L: Link + 'static> {
    inner: Arc<Mutex<Inner<L>>>,
    hub: EventHub,
    pulse: DrawerPulse,
    monitor: Option<JoinHandle<()>>,
    /// The virtual printer at the other end, kept alive with the drawer.
    #[cfg(feature = "sim")]
    sim: Option<Arc<crate::sim::VirtualPrinter>>,
}

impl<L: Link + 'static> std::fmt::Debug for EscPosDrawer<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EscPosDrawer")
            .field("uri", &self.lock().uri)
            .field("pulse", &self.pulse)
            .finish()
    }
}

impl<L: Link + 'static> EscPosDrawer<L> {
    pub(crate) fn new(
        inner: Arc<Mutex<Inner<L>>>,
        hub: EventHub,
        pulse: DrawerPulse,
        #[cfg(feature = "sim")] sim: Option<Arc<crate::sim::VirtualPrinter>>,
    ) -> Self {
        EscPosDrawer {
            inner,
            hub,
            pulse,
            monitor: None,
            #[cfg(feature = "sim")]
            sim,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<L>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The virtual printer the drawer hangs on, when the printer was opened from
    /// `sim:printer` (to open or close the drawer by hand, or read the pulses it got).
    #[cfg(feature = "sim")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
    pub fn simulator(&self) -> Option<Arc<crate::sim::VirtualPrinter>> {
        self.sim.clone()
    }
}

impl<L: Link + 'static> Device for EscPosDrawer<L> {
    type Error = EscPosError;

    /// Kind [`DeviceKind::CashDrawer`], the printer's URI; the drawer itself says nothing
    /// about who it is.
    fn info(&self) -> DeviceInfo {
        DeviceInfo::new(DeviceKind::CashDrawer, self.lock().uri.clone())
    }

    /// The printer's state: the drawer can be pulsed only while the printer is not in error.
    fn state(&self) -> DeviceState {
        self.lock().state
    }

    /// Every level: the switch (DLE EOT 1). Nothing interactive: opening the drawer is not a
    /// health check.
    fn check_health(&mut self, level: HealthLevel) -> Result<HealthReport, EscPosError> {
        let mut inner = self.lock();
        let mut report = HealthReport::new(inner.uri.clone(), level);
        match inner.drawer_state() {
            Ok(DrawerState::Unknown) => report.warn(
                "drawer",
                FaultKind::Protocol,
                "the printer's profile says it does not report the drawer switch",
            ),
            Ok(s) => report.pass("drawer", format!("drawer {s}")),
            Err(e) if e.kind() == FaultKind::Disconnected => return Err(e),
            Err(e) => report.fail("drawer", e.kind(), e.to_string()),
        };
        Ok(report)
    }

    /// The printer's events: a drawer opening or closing is a
    /// [`PrinterStatusChanged`](pos_hal::DeviceEvent::PrinterStatusChanged) with
    /// `drawer_open` in or out of its conditions.
    fn subscribe(&mut self) -> Result<Subscription, EscPosError> {
        let sub = self.hub.subscribe();
        if self.monitor.as_ref().is_none_or(|h| h.is_finished()) {
            self.monitor = Some(spawn_monitor(&self.inner, &self.hub));
        }
        Ok(sub)
    }
}

impl<L: Link + 'static> CashDrawer for EscPosDrawer<L> {
    fn pulse(&self) -> DrawerPulse {
        self.pulse
    }

    /// DLE EOT 1-4 (refused on a stopping condition), `ESC p`, a wait of the pulse's on and
    /// off times plus 100 ms, then DLE EOT 1.
    fn open_drawer(&mut self) -> Result<DrawerState, EscPosError> {
        let pulse = self.pulse;
        let mut inner = self.lock();
        let r = inner.open_drawer(&pulse);
        match &r {
            Ok(s) => log::info!("{}: drawer pulsed ({pulse}): {s}", inner.uri),
            Err(e) => log::warn!("{}: drawer not opened: {e}", inner.uri),
        }
        r
    }

    /// DLE EOT 1, waited for up to the status timeout.
    fn drawer_state(&mut self) -> Result<DrawerState, EscPosError> {
        self.lock().drawer_state()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulse_bytes_round_to_two_ms_units() {
        let p = DrawerPulse::new(DrawerPin::Pin5);
        assert_eq!(
            command::to_bytes(&[pulse_command(&p)]),
            [0x1B, b'p', 1, 25, 250]
        );
        let odd = DrawerPulse::new(DrawerPin::Pin2)
            .with_times(Duration::from_millis(1), Duration::from_millis(511));
        assert_eq!(
            command::to_bytes(&[pulse_command(&odd)]),
            [0x1B, b'p', 0, 1, 255]
        );
        let zero_off = DrawerPulse::new(DrawerPin::Pin2)
            .with_times(Duration::from_millis(100), Duration::ZERO);
        assert_eq!(
            command::to_bytes(&[pulse_command(&zero_off)]),
            [0x1B, b'p', 0, 50, 1]
        );
    }
}
