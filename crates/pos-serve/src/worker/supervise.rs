//! Device supervision: each device looked at once per poll (card presence, printer
//! conditions), re-opened with backoff when it went away, health-checked on schedule, and
//! the events for what changed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pos_hal::{CheckOutcome, ChipReader, Fault, FaultKind, HealthLevel, ReceiptPrinter, SlotState};
use pos_lane::LaneError;
use pos_terminal::devices::{Msr, Printer, Reader};

use super::status::{Availability, DeviceStatus, HealthSummary, Role, now_ms};
use super::{Shared, Worker};
use crate::events::{EventKind, NewEvent};
use crate::instrument::{TimedPrinter, TimedReader, gone};

/// Re-opens one device of the lane after it went away (a USB unplug, a serial adapter
/// re-enumerated). Implemented by [`pos_lane::Reopener`] (from the configured URIs) and by
/// tests.
pub trait Reopen: Send {
    /// Open the chip reader again.
    ///
    /// # Errors
    /// Why it cannot be opened (not plugged in, no permission...).
    fn reader(&mut self) -> Result<Reader, LaneError>;
    /// Open the receipt printer again.
    ///
    /// # Errors
    /// As [`Reopen::reader`].
    fn printer(&mut self) -> Result<Printer, LaneError>;
    /// Open the receipt printer again with the cash drawer behind it (a drawer of the old
    /// printer died with it). The default is [`Reopen::printer`] and no drawer.
    ///
    /// # Errors
    /// As [`Reopen::reader`].
    fn printer_and_drawer(
        &mut self,
    ) -> Result<(Printer, Option<pos_terminal::devices::Drawer>), LaneError> {
        self.printer().map(|p| (p, None))
    }
    /// Open the stripe reader again.
    ///
    /// # Errors
    /// As [`Reopen::reader`].
    fn msr(&mut self) -> Result<Msr, LaneError>;
}

impl Reopen for pos_lane::Reopener {
    fn reader(&mut self) -> Result<Reader, LaneError> {
        pos_lane::Reopener::reader(self)
    }
    fn printer(&mut self) -> Result<Printer, LaneError> {
        pos_lane::Reopener::printer(self)
    }
    fn printer_and_drawer(
        &mut self,
    ) -> Result<(Printer, Option<pos_terminal::devices::Drawer>), LaneError> {
        pos_lane::Reopener::printer_and_drawer(self)
    }
    fn msr(&mut self) -> Result<Msr, LaneError> {
        pos_lane::Reopener::msr(self)
    }
}

/// The printer conditions that raise an event when they appear.
const WATCHED: [&str; 5] = [
    "paper_near_end",
    "paper_out",
    "cover_open",
    "cutter_jam",
    "offline",
];

/// The events for a printer going from `old` to `new` conditions.
fn printer_events(
    old: &[&'static str],
    new: &[&'static str],
    was_ready: bool,
    ready: bool,
) -> Vec<NewEvent> {
    let mut out = Vec::new();
    for name in new
        .iter()
        .filter(|n| WATCHED.contains(n) && !old.contains(n))
    {
        let (kind, detail, fault) = match *name {
            "paper_near_end" => (
                EventKind::PaperLow,
                "paper near end: change the roll soon (printing still works)",
                FaultKind::PaperNearEnd,
            ),
            "paper_out" => (
                EventKind::PaperOut,
                "paper out: load a new roll",
                FaultKind::PaperOut,
            ),
            "cover_open" => (
                EventKind::CoverOpen,
                "printer cover open: close it",
                FaultKind::CoverOpen,
            ),
            "cutter_jam" => (
                EventKind::CutterJam,
                "cutter jammed: clear it, then recover the printer",
                FaultKind::CutterJam,
            ),
            _ => (
                EventKind::PrinterOffline,
                "printer offline",
                FaultKind::PrinterOffline,
            ),
        };
        out.push(NewEvent::new(kind, detail).device("printer").fault(fault));
    }
    if !was_ready && ready {
        out.push(NewEvent::new(EventKind::PrinterReady, "printer ready again").device("printer"));
    }
    out
}

/// Forward the chip reader's own card events (from its driver's monitor thread) to the bus,
/// live, during transactions too. Returns false when the driver has no monitor.
pub(super) fn forward_reader_events(
    reader: &mut Reader,
    shared: &Arc<Shared>,
    flag: &Arc<AtomicU64>,
) -> bool {
    let Ok(sub) = reader.subscribe() else {
        return false;
    };
    static GENERATION: AtomicU64 = AtomicU64::new(1);
    let generation = GENERATION.fetch_add(1, Ordering::SeqCst);
    let shared = Arc::clone(shared);
    let flag_t = Arc::clone(flag);
    let spawned = std::thread::Builder::new()
        .name("reader-events".into())
        .spawn(move || {
            loop {
                match sub.recv_timeout(Duration::from_secs(1)) {
                    Ok(e) => {
                        let (kind, what) = match e.event {
                            pos_hal::DeviceEvent::CardInserted { slot: 0 } => {
                                (EventKind::CardInserted, "card inserted")
                            }
                            pos_hal::DeviceEvent::CardRemoved { slot: 0 } => {
                                (EventKind::CardRemoved, "card removed")
                            }
                            _ => continue,
                        };
                        let mut ev = NewEvent::new(kind, what).device("reader");
                        ev.txn = shared.lock().current.as_ref().and_then(|c| c.id);
                        shared.bus.publish(ev);
                    }
                    Err(pos_hal::RecvError::Timeout) => {}
                    Err(pos_hal::RecvError::Closed) => break,
                }
            }
            // The driver is gone: polling takes over until the next one is opened (unless a
            // newer forwarder already took over).
            let _ = flag_t.compare_exchange(generation, 0, Ordering::SeqCst, Ordering::SeqCst);
        });
    match spawned {
        Ok(_) => {
            flag.store(generation, Ordering::SeqCst);
            true
        }
        Err(e) => {
            log::warn!("cannot watch the reader's events: {e}");
            false
        }
    }
}

impl Worker {
    fn status_of(&self, role: Role) -> DeviceStatus {
        let st = self.shared.lock();
        match role {
            Role::Reader => st.devices.reader.clone(),
            Role::Printer => st.devices.printer.clone(),
            Role::Msr => st.devices.msr.clone(),
        }
    }

    fn store(&self, role: Role, status: DeviceStatus) {
        {
            let mut st = self.shared.lock();
            match role {
                Role::Reader => st.devices.reader = status,
                Role::Printer => st.devices.printer = status,
                Role::Msr => st.devices.msr = status,
            }
        }
        self.flush_events();
    }

    fn is_open(&mut self, role: Role) -> bool {
        let d = self.terminal.devices_mut();
        match role {
            Role::Reader => d.reader.is_some(),
            Role::Printer => d.printer.is_some(),
            Role::Msr => d.msr.is_some(),
        }
    }

    fn drop_device(&mut self, role: Role) {
        let d = self.terminal.devices_mut();
        match role {
            Role::Reader => d.reader = None,
            Role::Printer => d.printer = None,
            Role::Msr => d.msr = None,
        }
    }

    /// One device: gone → re-open with backoff; open → look at it.
    pub(super) fn supervise(&mut self, i: usize, health: bool, force: bool) {
        let role = self.slots[i].role;
        let name = role.name();
        let mut status = self.status_of(role);
        if !status.configured() {
            return;
        }
        let was_ready = status.state == Availability::Ready;
        if self.slots[i].lost.take() && self.is_open(role) {
            self.went_away(role, &mut status, "the device went away");
        }
        if !self.is_open(role) {
            let now = Instant::now();
            if !force && now < self.slots[i].next_reopen {
                self.store(role, status);
                return;
            }
            match self.open_again(role) {
                Ok(info) => {
                    self.slots[i].backoff =
                        Duration::from_millis(self.supervision.reopen_initial_ms);
                    let first = status.checked_ms == 0;
                    status.info = Some(info);
                    status.reopen_attempts = 0;
                    status.set(Availability::Ready, None, "opened");
                    self.shared
                        .metrics
                        .device_reconnects
                        .get_or_create(&crate::metrics::label("device", name))
                        .inc();
                    if !first {
                        self.publish(
                            NewEvent::new(EventKind::DeviceReconnected, format!("{name} is back"))
                                .device(name),
                        );
                    }
                }
                Err(e) => {
                    let slot = &mut self.slots[i];
                    slot.next_reopen = now + slot.backoff;
                    slot.backoff = (slot.backoff * 2)
                        .min(Duration::from_millis(self.supervision.reopen_max_ms));
                    status.reopen_attempts += 1;
                    status.set(
                        Availability::Missing,
                        Some(e.kind()),
                        format!(
                            "{e}; trying again in {} ms",
                            self.slots[i]
                                .next_reopen
                                .saturating_duration_since(now)
                                .as_millis()
                        ),
                    );
                    self.shared.metrics.set_up(name, false);
                    self.store(role, status);
                    return;
                }
            }
        }
        match role {
            Role::Reader => self.look_at_reader(&mut status),
            Role::Printer => self.look_at_printer(&mut status),
            Role::Msr => {
                if status.info.is_none() {
                    status.info = self
                        .terminal
                        .devices_mut()
                        .msr
                        .as_ref()
                        .map(|m| m.info().to_string());
                }
                if status.state != Availability::Ready && status.state != Availability::Fault {
                    status.set(Availability::Ready, None, "open");
                }
            }
        }
        if health && self.is_open(role) {
            self.health_check(role, &mut status);
        }
        let ready = status.state == Availability::Ready;
        self.shared.metrics.set_up(name, ready);
        if was_ready && status.state == Availability::Fault && role != Role::Printer {
            if let Some(f) = status.fault {
                self.publish(
                    NewEvent::new(EventKind::DeviceFault, status.detail.clone())
                        .device(name)
                        .fault(f),
                );
            }
        }
        self.store(role, status);
    }

    fn went_away(&mut self, role: Role, status: &mut DeviceStatus, why: &str) {
        let name = role.name();
        self.drop_device(role);
        status.set(
            Availability::Missing,
            Some(FaultKind::Disconnected),
            why.to_string(),
        );
        status.card_present = None;
        self.shared.metrics.set_up(name, false);
        self.shared.metrics.fault(name, FaultKind::Disconnected);
        if role == Role::Reader {
            self.shared.metrics.card_present.set(0);
        }
        self.publish(
            NewEvent::new(
                EventKind::DeviceUnplugged,
                format!("{name} unplugged or lost: {why}"),
            )
            .device(name)
            .fault(FaultKind::Disconnected),
        );
        // First re-open attempt at once (a re-enumeration is often quick).
        let initial = Duration::from_millis(self.supervision.reopen_initial_ms);
        for s in &mut self.slots {
            if s.role == role {
                s.next_reopen = Instant::now();
                s.backoff = initial;
            }
        }
    }

    fn open_again(&mut self, role: Role) -> Result<String, LaneError> {
        let metrics = &self.shared.metrics;
        let lost = self.slots[match role {
            Role::Reader => 0,
            Role::Printer => 1,
            Role::Msr => 2,
        }]
        .lost
        .clone();
        let _ = lost.take();
        match role {
            Role::Reader => {
                let r = self.reopen.reader()?;
                let info = r.info().to_string();
                let mut r: Reader = Box::new(TimedReader::new(r, Arc::clone(metrics), lost));
                forward_reader_events(&mut r, &self.shared, &self.reader_events);
                self.terminal.devices_mut().reader = Some(r);
                Ok(info)
            }
            Role::Printer => {
                let (p, drawer) = self.reopen.printer_and_drawer()?;
                let info = p.info().to_string();
                let devices = self.terminal.devices_mut();
                devices.printer = Some(Box::new(TimedPrinter::new(p, Arc::clone(metrics), lost)));
                devices.drawer = drawer;
                Ok(info)
            }
            Role::Msr => {
                let m = self.reopen.msr()?;
                let info = m.info().to_string();
                self.terminal.devices_mut().msr = Some(m);
                Ok(info)
            }
        }
    }

    fn look_at_reader(&mut self, status: &mut DeviceStatus) {
        let Some(reader) = self.terminal.devices_mut().reader.as_mut() else {
            return;
        };
        if status.info.is_none() {
            status.info = Some(reader.info().to_string());
        }
        match reader.slot_status(0) {
            Ok(s) => {
                let present = s.contains(SlotState::CARD_PRESENT);
                let from_driver = self.reader_events.load(Ordering::SeqCst) != 0;
                if !from_driver && status.card_present.is_some_and(|p| p != present) {
                    let (kind, what) = if present {
                        (EventKind::CardInserted, "card inserted")
                    } else {
                        (EventKind::CardRemoved, "card removed")
                    };
                    self.publish(NewEvent::new(kind, what).device("reader"));
                }
                status.card_present = Some(present);
                self.shared.metrics.card_present.set(i64::from(present));
                status.set(
                    Availability::Ready,
                    None,
                    if present {
                        "card in the slot"
                    } else {
                        "no card"
                    },
                );
            }
            Err(e) if gone(e.kind()) => self.went_away(Role::Reader, status, &e.to_string()),
            Err(e) => {
                if status.fault != Some(e.kind()) {
                    self.shared.metrics.fault("reader", e.kind());
                }
                status.set(Availability::Fault, Some(e.kind()), e.to_string());
            }
        }
    }

    fn look_at_printer(&mut self, status: &mut DeviceStatus) {
        let Some(printer) = self.terminal.devices_mut().printer.as_mut() else {
            return;
        };
        if status.info.is_none() {
            status.info = Some(printer.info().to_string());
        }
        let old = status.conditions.clone().unwrap_or_default();
        match printer.status() {
            Ok(c) => {
                let names = c.names();
                let was_ready = status.state == Availability::Ready;
                if names != old {
                    self.next_reprint = Instant::now();
                }
                for e in printer_events(&old, &names, was_ready, c.is_ready()) {
                    let kind = match e.kind {
                        EventKind::PaperLow => Some(FaultKind::PaperNearEnd),
                        EventKind::PaperOut => Some(FaultKind::PaperOut),
                        EventKind::CoverOpen => Some(FaultKind::CoverOpen),
                        EventKind::CutterJam => Some(FaultKind::CutterJam),
                        EventKind::PrinterOffline => Some(FaultKind::PrinterOffline),
                        _ => None,
                    };
                    if let Some(kind) = kind {
                        self.shared.metrics.fault("printer", kind);
                    }
                    self.publish(e);
                }
                for n in crate::metrics::PRINTER_CONDITIONS {
                    self.shared
                        .metrics
                        .printer_condition
                        .get_or_create(&crate::metrics::label("condition", n))
                        .set(i64::from(names.contains(&n)));
                }
                match c.blocking_fault() {
                    None => {
                        let detail = match c.warning() {
                            Some(_) => "ready; paper near end",
                            None => "ready",
                        };
                        status.set(Availability::Ready, None, detail);
                    }
                    Some(kind) => status.set(
                        Availability::Fault,
                        Some(kind),
                        format!("not ready: {}", names.join(", ")),
                    ),
                }
                status.conditions = Some(names);
            }
            Err(e) if gone(e.kind()) => {
                self.went_away(Role::Printer, status, &e.to_string());
                status.conditions = None;
            }
            Err(e) => {
                let names = vec!["offline"];
                for ev in printer_events(&old, &names, status.state == Availability::Ready, false) {
                    self.publish(ev);
                }
                if status.fault != Some(e.kind()) {
                    self.shared.metrics.fault("printer", e.kind());
                }
                status.set(Availability::Fault, Some(e.kind()), e.to_string());
                status.conditions = Some(names);
            }
        }
    }

    fn health_check(&mut self, role: Role, status: &mut DeviceStatus) {
        let d = self.terminal.devices_mut();
        let report = match role {
            Role::Reader => d
                .reader
                .as_mut()
                .map(|r| r.check_health(HealthLevel::Internal)),
            Role::Printer => d
                .printer
                .as_mut()
                .map(|p| p.check_health(HealthLevel::Internal)),
            Role::Msr => d
                .msr
                .as_mut()
                .map(|m| m.check_health(HealthLevel::Internal)),
        };
        let name = role.name();
        let summary = match report {
            None => return,
            Some(Ok(r)) => HealthSummary {
                outcome: r.overall(),
                problems: r
                    .problems()
                    .iter()
                    .map(|c| format!("{}: {}", c.name, c.detail))
                    .collect(),
                checked_ms: now_ms(),
            },
            Some(Err(e)) if gone(e.kind()) => {
                self.went_away(role, status, &e.to_string());
                return;
            }
            Some(Err(e)) => HealthSummary {
                outcome: CheckOutcome::Fail,
                problems: vec![e.to_string()],
                checked_ms: now_ms(),
            },
        };
        let before = status.health.as_ref().map(|h| h.outcome);
        if before != Some(summary.outcome)
            && (before.is_some() || summary.outcome != CheckOutcome::Pass)
        {
            let detail = if summary.problems.is_empty() {
                format!("{name} health check: {}", summary.outcome.name())
            } else {
                format!(
                    "{name} health check: {}: {}",
                    summary.outcome.name(),
                    summary.problems.join("; ")
                )
            };
            self.publish(NewEvent::new(EventKind::HealthCheck, detail).device(name));
        }
        status.health = Some(summary);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printer_events_follow_condition_changes() {
        let names = |v: Vec<NewEvent>| v.iter().map(|e| e.kind.name()).collect::<Vec<_>>();
        assert_eq!(
            names(printer_events(&[], &["paper_near_end"], true, true)),
            vec!["paper_low"]
        );
        assert_eq!(
            names(printer_events(
                &["paper_near_end"],
                &["paper_near_end", "paper_out", "error"],
                true,
                false
            )),
            vec!["paper_out"]
        );
        assert_eq!(
            names(printer_events(&["paper_out"], &[], false, true)),
            vec!["printer_ready"]
        );
        // Near end alone was never blocking: no "ready again" when it clears.
        assert!(printer_events(&["paper_near_end"], &[], true, true).is_empty());
        assert!(printer_events(&["cover_open"], &["cover_open"], false, false).is_empty());
    }
}
