//! The simulated lane: control of the virtual devices.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use pos_ccid::sim::{SimFaults, SimReaderHandle};
use pos_emv::profile_card::{Profile, ProfileCard};
use pos_escpos::EscPosPrinter;
use pos_escpos::sim::{SimFault, VirtualPrinter};
use pos_hal::{
    CutKind, Device, DeviceEvent, DeviceInfo, DeviceState, Document, Erased, FaultKind,
    HealthLevel, HealthReport, PrintOutcome, PrinterConditions, ReceiptPrinter, RecvError,
    Subscription,
};
use pos_link::{DeviceUri, Link, SerialLink};
use pos_magstripe::serial::{Framing, MsrError, SerialMsr};
use pos_magstripe::sim::{SwipeSpec, VirtualSerialMsr};
use pos_terminal::Devices;
use pos_terminal::config::DeviceConfig;
use pos_terminal::devices::Reader;
use pos_terminal::inject::{InjectedFault, Injection};

use crate::error::{LaneError, LaneFault, Role};
use crate::hook::{HostArm, SimHook};

/// Expiry date (YYMM) on the stripe of simulated swipes: December 2028.
pub const SWIPE_EXPIRY: &str = "2812";
/// Lines printed before the paper runs out when paper-out is injected mid-job.
pub const PAPER_OUT_AFTER_LINES: u32 = 3;

/// The virtual reader of a lane.
pub(crate) struct ReaderSim {
    /// Its URI without the `card` option (to open a new one after an unplug).
    uri: DeviceUri,
    /// The configured text, for messages.
    text: String,
    handle: SimReaderHandle,
    pub(crate) profile: Profile,
    unplugged: bool,
}

impl ReaderSim {
    /// Open `sim:ccid?...` with a profile card: `card`, else the URI's `card=PROFILE`,
    /// else the default; `card=none` starts without a card.
    pub(crate) fn open(
        uri: &DeviceUri,
        text: &str,
        card: Option<Profile>,
    ) -> Result<(Reader, ReaderSim), LaneError> {
        let bad = |message: String| {
            LaneError::new(
                Role::Reader,
                text,
                LaneFault {
                    kind: FaultKind::InvalidInput,
                    message,
                },
            )
        };
        let mut insert = true;
        let mut profile = card.unwrap_or(crate::DEFAULT_PROFILE);
        match uri.option("card") {
            None => {}
            Some("none") => insert = false,
            Some(name) => {
                let p: Profile = name.parse().map_err(|e| bad(format!("{e}")))?;
                if card.is_none() {
                    profile = p;
                }
            }
        }
        let rest: Vec<(String, String)> = uri
            .options()
            .iter()
            .filter(|(k, _)| k != "card")
            .cloned()
            .collect();
        let plain = DeviceUri::new(uri.address().clone(), rest)
            .map_err(|e| LaneError::new(Role::Reader, text, crate::BadUri(e)))?;
        let card = insert.then(|| Box::new(ProfileCard::new(profile)) as Box<_>);
        let (reader, handle) = pos_ccid::open_sim_with_handle(&plain, crate::reader_config(), card)
            .map_err(|e| LaneError::new(Role::Reader, text, e))?;
        Ok((
            Box::new(Erased(reader)),
            ReaderSim {
                uri: plain,
                text: text.to_string(),
                handle,
                profile,
                unplugged: false,
            },
        ))
    }
}

/// Open `sim:msr` as a virtual serial reader on a pty that swipes only when told.
pub(crate) fn open_quiet_msr(uri: &DeviceUri) -> Result<SerialMsr<Box<dyn Link>>, MsrError> {
    let framing = Framing::from_uri(uri)?;
    let (sim, slave) = VirtualSerialMsr::on_pty(framing.clone())?;
    let link: Box<dyn Link> = Box::new(SerialLink::open(
        &slave,
        pos_link::SerialSettings::default(),
    )?);
    Ok(SerialMsr::new(link, &uri.to_string(), framing).with_simulator(Arc::new(sim)))
}

/// The ESC/POS driver of a simulated printer, shared between the lane's
/// [`Devices`](pos_terminal::Devices) and its [`SimLane`], so that clearing a fault can also
/// do what a technician's reset does (DLE ENQ 1 after a cutter jam: the HAL has no recovery
/// call).
pub(crate) type SimPrinterDriver = Arc<Mutex<EscPosPrinter<Box<dyn Link>>>>;

/// The HAL printer over a [`SimPrinterDriver`]; every call is the ESC/POS driver's.
pub(crate) struct SharedPrinter(pub(crate) SimPrinterDriver);

impl SharedPrinter {
    fn driver(&self) -> MutexGuard<'_, EscPosPrinter<Box<dyn Link>>> {
        lock(&self.0)
    }
}

impl Device for SharedPrinter {
    type Error = pos_escpos::EscPosError;
    fn info(&self) -> DeviceInfo {
        self.driver().info()
    }
    fn state(&self) -> DeviceState {
        self.driver().state()
    }
    fn check_health(&mut self, level: HealthLevel) -> Result<HealthReport, Self::Error> {
        self.driver().check_health(level)
    }
    fn subscribe(&mut self) -> Result<Subscription, Self::Error> {
        self.driver().subscribe()
    }
}

impl ReceiptPrinter for SharedPrinter {
    fn status(&mut self) -> Result<PrinterConditions, Self::Error> {
        self.driver().status()
    }
    fn print(&mut self, document: &Document) -> Result<PrintOutcome, Self::Error> {
        self.driver().print(document)
    }
    fn cut(&mut self, kind: CutKind) -> Result<(), Self::Error> {
        self.driver().cut(kind)
    }
}

/// The simulated printer: the virtual device and the driver talking to it.
pub(crate) struct PrinterSim {
    pub(crate) device: Arc<VirtualPrinter>,
    pub(crate) driver: SimPrinterDriver,
    pub(crate) text: String,
}

/// How long [`SimLane::reset`] waits for the reader's driver to see a new card.
const INSERT_SETTLE: Duration = Duration::from_millis(600);

/// Once a card insertion was seen, how long the driver must stay quiet to be settled.
const QUIET: Duration = Duration::from_millis(50);

/// Wait until `events` shows a card inserted in slot 0 and then nothing more for
/// [`QUIET`] (a notification from before may arrive first), at most [`INSERT_SETTLE`].
fn wait_inserted(events: &Subscription) {
    let end = Instant::now() + INSERT_SETTLE;
    let mut seen = false;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        match events.recv_timeout(if seen { left.min(QUIET) } else { left }) {
            Ok(e) => {
                if matches!(e.event, DeviceEvent::CardInserted { slot: 0 }) {
                    seen = true;
                }
            }
            Err(RecvError::Timeout | RecvError::Closed) => return,
        }
    }
}

pub(crate) struct Shared {
    reader: Mutex<Option<ReaderSim>>,
    printer: Option<PrinterSim>,
    msr: Option<Arc<VirtualSerialMsr>>,
    profile: Mutex<Profile>,
    /// The configured URIs, for messages.
    uris: DeviceConfig,
}

impl Shared {
    pub(crate) fn new(
        uris: DeviceConfig,
        reader: Option<ReaderSim>,
        printer: Option<PrinterSim>,
        msr: Option<Arc<VirtualSerialMsr>>,
        profile: Profile,
    ) -> Self {
        Shared {
            reader: Mutex::new(reader),
            printer,
            msr,
            profile: Mutex::new(profile),
            uris,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The control of a lane's simulated devices. Cheap to clone: clones control the same
/// devices. Methods acting on a device the lane does not simulate fail with
/// [`FaultKind::NotFound`], naming the device.
#[derive(Clone)]
pub struct SimLane {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SimLane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimLane")
            .field("reader", &self.has_reader())
            .field("printer", &self.shared.printer.is_some())
            .field("msr", &self.shared.msr.is_some())
            .field("card_profile", &self.card_profile())
            .finish()
    }
}

/// The ESC/POS simulator's fault for an injected printer fault.
fn printer_sim_fault(fault: &InjectedFault) -> Option<SimFault> {
    Some(match fault {
        InjectedFault::PaperOut => SimFault::PaperOut,
        InjectedFault::CoverOpen => SimFault::CoverOpen,
        InjectedFault::CutterJam => SimFault::CutterJam,
        InjectedFault::PrinterOffline => SimFault::Offline,
        _ => return None,
    })
}

impl SimLane {
    pub(crate) fn new(shared: Shared) -> Self {
        SimLane {
            shared: Arc::new(shared),
        }
    }

    /// Whether the reader is simulated.
    pub fn has_reader(&self) -> bool {
        lock(&self.shared.reader).is_some()
    }

    /// Whether the printer is simulated.
    pub fn has_printer(&self) -> bool {
        self.shared.printer.is_some()
    }

    /// Whether the stripe reader is simulated.
    pub fn has_msr(&self) -> bool {
        self.shared.msr.is_some()
    }

    /// The profile of the lane's card: the one the lane was opened with, or the last
    /// [`insert_card`](Self::insert_card).
    pub fn card_profile(&self) -> Profile {
        *lock(&self.shared.profile)
    }

    fn with_reader<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut ReaderSim) -> T,
    ) -> Result<T, LaneError> {
        let mut guard = lock(&self.shared.reader);
        match guard.as_mut() {
            Some(r) => Ok(f(r)),
            None => Err(LaneError::not_simulated(
                Role::Reader,
                &self.shared.uris.reader,
                what,
            )),
        }
    }

    fn printer(&self, what: &str) -> Result<&PrinterSim, LaneError> {
        self.shared
            .printer
            .as_ref()
            .ok_or_else(|| LaneError::not_simulated(Role::Printer, &self.shared.uris.printer, what))
    }

    /// The virtual reader's control handle (for faults this type has no method for).
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the reader is not simulated.
    pub fn reader_handle(&self) -> Result<SimReaderHandle, LaneError> {
        self.with_reader("control", |r| r.handle.clone())
    }

    /// The virtual printer (to read what it printed, or for faults this type has no method
    /// for); `None` when the printer is not simulated.
    pub fn virtual_printer(&self) -> Option<Arc<VirtualPrinter>> {
        self.shared.printer.as_ref().map(|p| Arc::clone(&p.device))
    }

    /// The virtual stripe reader; `None` when it is not simulated.
    pub fn virtual_msr(&self) -> Option<Arc<VirtualSerialMsr>> {
        self.shared.msr.clone()
    }

    /// Insert a fresh card of `profile` (its transaction counter at 0), replacing the card
    /// in the reader (the driver sees a removal, then an insertion, on its monitor thread:
    /// wait for [`DeviceEvent::CardInserted`] before powering the card on, as a terminal
    /// does, or the power-on may race the removal). `profile` becomes the lane's profile.
    /// Card faults (mute) are cleared.
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the reader is not simulated.
    pub fn insert_card(&self, profile: Profile) -> Result<(), LaneError> {
        self.with_reader("insert a card in", |r| {
            r.profile = profile;
            r.handle.set_faults(SimFaults::default());
            r.handle.insert(Box::new(ProfileCard::new(profile)));
        })?;
        *lock(&self.shared.profile) = profile;
        Ok(())
    }

    /// Pull the card out of the reader. The driver's next exchange with it fails.
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the reader is not simulated.
    pub fn remove_card(&self) -> Result<(), LaneError> {
        self.with_reader("remove the card from", |r| r.handle.remove())
    }

    /// Make the card stop answering commands (it still answers reset).
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the reader is not simulated.
    pub fn mute_card(&self) -> Result<(), LaneError> {
        self.with_reader("mute the card of", |r| {
            r.handle.set_faults(SimFaults {
                mute_after_atr: true,
                ..SimFaults::default()
            });
        })
    }

    /// Unplug the reader: every transfer of its driver fails with `Disconnected` from now
    /// on. [`reset`](Self::reset) plugs a new one in.
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the reader is not simulated.
    pub fn unplug_reader(&self) -> Result<(), LaneError> {
        self.with_reader("unplug", |r| {
            r.handle.unplug();
            r.unplugged = true;
        })
    }

    /// Whether the reader was unplugged (and not replaced by [`reset`](Self::reset) since).
    pub fn reader_unplugged(&self) -> bool {
        lock(&self.shared.reader)
            .as_ref()
            .is_some_and(|r| r.unplugged)
    }

    /// Give the printer a fault: paper-out, cover-open, cutter-jam or printer-offline.
    /// Paper-out with `mid_job` runs out after [`PAPER_OUT_AFTER_LINES`] more lines (during
    /// the next job); every other fault is there at once. A cutter jam shows at the next
    /// cut.
    ///
    /// # Errors
    /// [`FaultKind::InvalidInput`] for a fault that is not a printer's;
    /// [`FaultKind::NotFound`] when the printer is not simulated.
    pub fn printer_fault(&self, fault: &InjectedFault, mid_job: bool) -> Result<(), LaneError> {
        let Some(f) = printer_sim_fault(fault) else {
            return Err(LaneError::new(
                Role::Printer,
                &self.shared.uris.printer,
                LaneFault {
                    kind: FaultKind::InvalidInput,
                    message: format!("{fault} is not a printer fault"),
                },
            ));
        };
        let p = &self.printer("inject a fault in")?.device;
        if f == SimFault::PaperOut && mid_job {
            p.paper_out_after(PAPER_OUT_AFTER_LINES);
        } else {
            p.set_fault(f, true);
        }
        Ok(())
    }

    /// Clear every printer fault (a new paper roll, cover closed, cutter freed, online).
    /// A printer still stopped after that (a jammed cutter stays jammed until told) is
    /// recovered through its driver (DLE ENQ 1, re-initialise), as a technician would.
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the printer is not simulated; the driver's error when
    /// the recovery fails.
    pub fn clear_printer_faults(&self) -> Result<(), LaneError> {
        let p = self.printer("clear the faults of")?;
        for f in [
            SimFault::PaperOut,
            SimFault::NearEnd,
            SimFault::CoverOpen,
            SimFault::CutterJam,
            SimFault::Offline,
            SimFault::Silent,
        ] {
            p.device.set_fault(f, false);
        }
        if !p.device.conditions().is_ready() {
            lock(&p.driver)
                .recover()
                .map_err(|e| LaneError::new(Role::Printer, &p.text, e))?;
        }
        Ok(())
    }

    fn swipe_tracks(&self, pan: &str, name: &str, service_code: &str) -> Result<(), LaneError> {
        let Some(msr) = self.shared.msr.as_deref() else {
            return Err(LaneError::not_simulated(
                Role::Msr,
                &self.shared.uris.msr,
                "swipe a card on",
            ));
        };
        let track1 = format!("B{pan}^{name}^{SWIPE_EXPIRY}{service_code}0000000000");
        let track2 = format!("{pan}={SWIPE_EXPIRY}{service_code}00000000");
        msr.swipe(&SwipeSpec::tracks12(&track1, &track2))
            .map_err(|e| LaneError::new(Role::Msr, &self.shared.uris.msr, e))
    }

    /// Swipe the stripe of `profile`'s card: tracks 1 and 2 with its PAN, expiry
    /// [`SWIPE_EXPIRY`] and service code 201 (a chip card: the terminal should ask for the
    /// chip).
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the stripe reader is not simulated; `Disconnected` when
    /// it is unplugged.
    pub fn swipe(&self, profile: Profile) -> Result<(), LaneError> {
        let name = format!("LANE/{}", profile.name().to_ascii_uppercase());
        self.swipe_tracks(profile.pan(), &name, "201")
    }

    /// Swipe a stripe-only card with this PAN: tracks 1 and 2, expiry [`SWIPE_EXPIRY`],
    /// service code 101. A PAN the stripe cannot hold reads as a bad track.
    ///
    /// # Errors
    /// As [`swipe`](Self::swipe).
    pub fn swipe_stripe_only(&self, pan: &str) -> Result<(), LaneError> {
        self.swipe_tracks(pan, "LANE/STRIPE ONLY", "101")
    }

    /// The text of each receipt the virtual printer completed (ended by a cut), oldest
    /// first; empty without a simulated printer.
    pub fn receipts(&self) -> Vec<String> {
        self.shared
            .printer
            .as_ref()
            .map(|p| p.device.receipts().iter().map(|r| r.text()).collect())
            .unwrap_or_default()
    }

    /// The text of the last completed receipt.
    pub fn last_receipt(&self) -> Option<String> {
        self.shared
            .printer
            .as_ref()
            .and_then(|p| p.device.receipts().last().map(|r| r.text()))
    }

    /// Back to a healthy lane for the next sale: a fresh card of the lane's profile in the
    /// reader, card and printer faults cleared, and when the reader was unplugged, a new
    /// virtual reader opened (same URI) and put in `devices.reader`.
    ///
    /// # Errors
    /// The reader's error when the new virtual reader does not open.
    pub fn reset(&self, devices: &mut Devices) -> Result<(), LaneError> {
        let profile = self.card_profile();
        {
            let mut guard = lock(&self.shared.reader);
            if let Some(r) = guard.as_mut() {
                let card = Box::new(ProfileCard::new(profile));
                if r.unplugged {
                    let (reader, handle) =
                        pos_ccid::open_sim_with_handle(&r.uri, crate::reader_config(), Some(card))
                            .map_err(|e| LaneError::new(Role::Reader, &r.text, e))?;
                    devices.reader = Some(Box::new(Erased(reader)));
                    r.handle = handle;
                    r.unplugged = false;
                } else {
                    // Wait for the driver to see the swap, so that the next power-on is
                    // not told of the old card's removal.
                    let events = devices.reader.as_mut().and_then(|d| d.subscribe().ok());
                    r.handle.set_faults(SimFaults::default());
                    r.handle.insert(card);
                    if let Some(events) = events {
                        wait_inserted(&events);
                    }
                }
                r.profile = profile;
            }
        }
        if self.shared.printer.is_some() {
            self.clear_printer_faults()?;
        }
        Ok(())
    }

    /// A [`StepHook`](pos_terminal::StepHook) performing `injections` on this lane's
    /// virtual devices, and handing the host faults to `host` (which arms the fake host).
    /// See [`SimHook`].
    pub fn hook(&self, injections: Vec<Injection>, host: Option<HostArm>) -> SimHook {
        SimHook::new(self.clone(), injections, host)
    }
}
