//! The simulated lane: control of the virtual devices.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use pos_ccid::sim::{SimCard, SimFaults, SimReaderHandle};
use pos_emv::sim::EmvCards;
use pos_escpos::EscPosPrinter;
use pos_escpos::sim::{SimFault, VirtualPrinter};
use pos_hal::{
    CardProtocol, CardSpec, CutKind, Device, DeviceEvent, DeviceInfo, DeviceState, Document,
    Erased, FaultKind, HealthLevel, HealthReport, PrintOutcome, PrinterConditions, ReceiptPrinter,
    RecvError, Subscription, VirtualCard,
};
use pos_link::{DeviceUri, Link, SerialLink};
use pos_magstripe::serial::{Framing, MsrError, SerialMsr};
use pos_magstripe::sim::{SwipeSpec, VirtualSerialMsr};
use pos_terminal::Devices;
use pos_terminal::config::DeviceConfig;
use pos_terminal::devices::{Msr, Reader};
use pos_terminal::inject::{InjectedFault, Injection};

use crate::error::{LaneError, LaneFault, Role};
use crate::hook::{HostArm, SimHook};

/// Expiry date (YYMM) on the stripe of simulated swipes: December 2028.
pub const SWIPE_EXPIRY: &str = "2812";
/// Lines printed before the paper runs out when paper-out is injected mid-job.
pub const PAPER_OUT_AFTER_LINES: u32 = 3;

/// The virtual reader of a lane.
pub(crate) struct ReaderSim {
    /// Its URI without the `card` and `script` options (to open a new one after an unplug).
    uri: DeviceUri,
    /// The configured text, for messages.
    text: String,
    handle: SimReaderHandle,
    /// The protocol the cards made for it offer (`level=t1`: T=1).
    protocol: CardProtocol,
    unplugged: bool,
    /// The driver of a reader plugged in by [`SimLane::replug_reader`], not opened (handed
    /// out) yet.
    pending: Option<Reader>,
}

/// A fresh card of `card` for a reader whose cards offer `protocol`: pos-ccid's bare test
/// cards or pos-emv's EMV cards (profiles, recorded sessions), the one vocabulary of
/// `sim:ccid` URIs.
fn make_card(
    card: &CardSpec,
    protocol: CardProtocol,
    text: &str,
) -> Result<Box<dyn VirtualCard>, LaneError> {
    pos_ccid::sim::make_card(card, protocol, Some(&EmvCards)).map_err(|m| bad_reader(text, m))
}

/// The simulated reader's URI or card is wrong ([`FaultKind::InvalidInput`]).
fn bad_reader(text: &str, message: String) -> LaneError {
    LaneError::new(
        Role::Reader,
        text,
        LaneFault {
            kind: FaultKind::InvalidInput,
            message,
        },
    )
}

impl ReaderSim {
    /// Open `sim:ccid?...` with a card: `card`, else the URI's `card=NAME` or
    /// `script=FILE`, else [`DEFAULT_PROFILE`](crate::DEFAULT_PROFILE); `card=none` starts
    /// without a card. Returns the driver, the simulator and the lane's card.
    pub(crate) fn open(
        uri: &DeviceUri,
        text: &str,
        card: Option<CardSpec>,
    ) -> Result<(Reader, ReaderSim, CardSpec), LaneError> {
        let spec = pos_ccid::sim::SimSpec::parse(uri).map_err(|m| bad_reader(text, m))?;
        let default = || CardSpec::from(crate::DEFAULT_PROFILE);
        let (lane_card, insert) = match (card, &spec.card) {
            (Some(card), _) => (card, true),
            (None, SimCard::Spec(card)) => (card.clone(), true),
            (None, SimCard::None) => (default(), false),
            (None, SimCard::Default) => (default(), true),
        };
        let rest: Vec<(String, String)> = uri
            .options()
            .iter()
            .filter(|(k, _)| k != "card" && k != "script")
            .cloned()
            .collect();
        let plain = DeviceUri::new(uri.address().clone(), rest)
            .map_err(|e| LaneError::new(Role::Reader, text, crate::BadUri(e)))?;
        let first = if insert {
            Some(make_card(&lane_card, spec.protocol, text)?)
        } else {
            None
        };
        let (reader, handle) = pos_ccid::open_sim_with_card(&plain, crate::reader_config(), first)
            .map_err(|e| LaneError::new(Role::Reader, text, e))?;
        Ok((
            Box::new(Erased(reader)),
            ReaderSim {
                uri: plain,
                text: text.to_string(),
                handle,
                protocol: spec.protocol,
                unplugged: false,
                pending: None,
            },
            lane_card,
        ))
    }

    /// A fresh card of `card` for this reader.
    fn card(&self, card: &CardSpec) -> Result<Box<dyn VirtualCard>, LaneError> {
        make_card(card, self.protocol, &self.text)
    }

    /// Plug a new virtual reader in (same URI), a fresh card of `card` inserted, and
    /// return its driver. The old virtual reader is unplugged: its driver stays dead.
    fn plug_new(&mut self, card: &CardSpec) -> Result<Reader, LaneError> {
        let (reader, new, _) = ReaderSim::open(&self.uri, &self.text, Some(card.clone()))?;
        self.handle.unplug();
        self.handle = new.handle;
        self.unplugged = false;
        self.pending = None;
        Ok(reader)
    }
}

/// A role's device is not plugged in ([`FaultKind::NotFound`], as opening a real device
/// that is not there).
fn not_plugged_in(role: Role, text: &str) -> LaneError {
    LaneError::new(
        role,
        text,
        LaneFault {
            kind: FaultKind::NotFound,
            message: format!("{role} not plugged in"),
        },
    )
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
/// [`Devices`](pos_terminal::Devices) (or a [`Reopener`](crate::Reopener)'s printer) and its
/// [`SimLane`], so that clearing a fault can also do what a technician's reset does (DLE
/// ENQ 1 after a cutter jam) without being handed the driver.
pub(crate) type SimPrinterDriver = Arc<Mutex<EscPosPrinter<Box<dyn Link>>>>;

/// The HAL printer over a [`SimPrinterDriver`]; every call is the ESC/POS driver's.
pub(crate) struct SharedPrinter(pub(crate) SimPrinterDriver);

impl SharedPrinter {
    fn driver(&self) -> MutexGuard<'_, EscPosPrinter<Box<dyn Link>>> {
        lock(&self.0)
    }

    /// The drawer behind this printer's driver.
    pub(crate) fn drawer(
        &self,
        pulse: pos_hal::DrawerPulse,
    ) -> pos_escpos::EscPosDrawer<Box<dyn Link>> {
        self.driver().drawer(pulse)
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
    fn recover(&mut self) -> Result<PrinterConditions, Self::Error> {
        ReceiptPrinter::recover(&mut *self.driver())
    }
}

/// The simulated printer: the virtual device and the driver talking to it.
pub(crate) struct PrinterSim {
    pub(crate) device: Arc<VirtualPrinter>,
    pub(crate) driver: SimPrinterDriver,
    pub(crate) text: String,
    /// Whether `driver` was handed out (to the lane's devices or by a reopener); false
    /// after [`SimLane::replug_printer`] until it is.
    pub(crate) opened: bool,
}

/// The simulated stripe reader: the virtual device behind its pty.
pub(crate) struct MsrSim {
    device: Arc<VirtualSerialMsr>,
    /// The configured URI (to open a new one after an unplug).
    text: String,
    unplugged: bool,
    /// The driver of a reader plugged in by [`SimLane::replug_msr`], not handed out yet.
    pending: Option<Msr>,
}

impl MsrSim {
    pub(crate) fn new(device: Arc<VirtualSerialMsr>, text: &str) -> Self {
        MsrSim {
            device,
            text: text.to_string(),
            unplugged: false,
            pending: None,
        }
    }

    /// Plug a new virtual stripe reader in (same URI) and return its driver; the old one is
    /// unplugged.
    fn plug_new(&mut self) -> Result<Msr, LaneError> {
        let (msr, device) = crate::open_msr(&self.text)?;
        let (Some(msr), Some(device)) = (msr, device) else {
            return Err(LaneError::not_simulated(Role::Msr, &self.text, "replug"));
        };
        self.device.unplug();
        self.device = device;
        self.unplugged = false;
        self.pending = None;
        Ok(msr)
    }
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
    printer: Option<Mutex<PrinterSim>>,
    msr: Option<Mutex<MsrSim>>,
    card: Mutex<CardSpec>,
    /// The configured URIs, for messages.
    uris: DeviceConfig,
}

impl Shared {
    pub(crate) fn new(
        uris: DeviceConfig,
        reader: Option<ReaderSim>,
        printer: Option<PrinterSim>,
        msr: Option<MsrSim>,
        card: CardSpec,
    ) -> Self {
        Shared {
            reader: Mutex::new(reader),
            printer: printer.map(Mutex::new),
            msr: msr.map(Mutex::new),
            card: Mutex::new(card),
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
            .field("card", &self.card())
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

    /// The lane's card (a profile such as `visa`, a bare test card, or a recorded session):
    /// the one the lane was opened with, or the last [`insert_card`](Self::insert_card).
    pub fn card(&self) -> CardSpec {
        lock(&self.shared.card).clone()
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

    fn printer(&self, what: &str) -> Result<MutexGuard<'_, PrinterSim>, LaneError> {
        self.shared
            .printer
            .as_ref()
            .map(lock)
            .ok_or_else(|| LaneError::not_simulated(Role::Printer, &self.shared.uris.printer, what))
    }

    fn msr(&self, what: &str) -> Result<MutexGuard<'_, MsrSim>, LaneError> {
        self.shared
            .msr
            .as_ref()
            .map(lock)
            .ok_or_else(|| LaneError::not_simulated(Role::Msr, &self.shared.uris.msr, what))
    }

    /// The virtual reader's control handle (for faults this type has no method for).
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the reader is not simulated.
    pub fn reader_handle(&self) -> Result<SimReaderHandle, LaneError> {
        self.with_reader("control", |r| r.handle.clone())
    }

    /// The virtual printer plugged in now (to read what it printed, or for faults this type
    /// has no method for); `None` when the printer is not simulated. After
    /// [`replug_printer`](Self::replug_printer) this is the new printer.
    pub fn virtual_printer(&self) -> Option<Arc<VirtualPrinter>> {
        self.shared
            .printer
            .as_ref()
            .map(|p| Arc::clone(&lock(p).device))
    }

    /// The virtual stripe reader plugged in now; `None` when it is not simulated.
    pub fn virtual_msr(&self) -> Option<Arc<VirtualSerialMsr>> {
        self.shared
            .msr
            .as_ref()
            .map(|m| Arc::clone(&lock(m).device))
    }

    /// Insert a fresh card of `card` (a [`Profile`](pos_emv::profile_card::Profile), or any
    /// [`CardSpec`] a `sim:ccid` URI can name; its transaction counter at 0), replacing the
    /// card in the reader (the driver sees a removal, then an insertion, on its monitor
    /// thread: wait for [`DeviceEvent::CardInserted`] before powering the card on, as a
    /// terminal does, or the power-on may race the removal). `card` becomes the lane's card.
    /// Card faults (mute) are cleared.
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the reader is not simulated; [`FaultKind::InvalidInput`]
    /// for a card that cannot be made (an unknown name, a script that cannot be read).
    pub fn insert_card(&self, card: impl Into<CardSpec>) -> Result<(), LaneError> {
        let card = card.into();
        self.with_reader("insert a card in", |r| {
            let fresh = r.card(&card)?;
            r.handle.set_faults(SimFaults::default());
            r.handle.insert(fresh);
            Ok::<_, LaneError>(())
        })??;
        *lock(&self.shared.card) = card;
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
    /// on, and [`Reopener::reader`](crate::Reopener::reader) fails with
    /// [`FaultKind::NotFound`] ("reader not plugged in") until
    /// [`replug_reader`](Self::replug_reader) or [`reset`](Self::reset) plugs a new one in.
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the reader is not simulated.
    pub fn unplug_reader(&self) -> Result<(), LaneError> {
        self.with_reader("unplug", |r| {
            r.handle.unplug();
            r.unplugged = true;
            r.pending = None;
        })
    }

    /// Plug a new virtual reader in (same URI), with a fresh card of the lane's profile
    /// inserted. The driver the service holds stays dead (it talked to the old reader): a
    /// working driver comes only from [`Reopener::reader`](crate::Reopener::reader) (or
    /// [`reset`](Self::reset), which puts it in the lane's devices). Called while the reader
    /// is plugged in, it unplugs it first.
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the reader is not simulated; the reader's error when the
    /// new virtual reader does not open.
    pub fn replug_reader(&self) -> Result<(), LaneError> {
        let card = self.card();
        self.with_reader("replug", |r| {
            let reader = r.plug_new(&card)?;
            r.pending = Some(reader);
            Ok(())
        })?
    }

    /// Whether the reader was unplugged (and not replaced by
    /// [`replug_reader`](Self::replug_reader) or [`reset`](Self::reset) since).
    pub fn reader_unplugged(&self) -> bool {
        lock(&self.shared.reader)
            .as_ref()
            .is_some_and(|r| r.unplugged)
    }

    /// The driver of the plugged-in virtual reader, for a reopener: the one
    /// [`replug_reader`](Self::replug_reader) plugged in, else (the reader was already
    /// opened) a new virtual reader with a fresh card, the old one unplugged. `None` when the
    /// reader is not simulated.
    pub(crate) fn reopen_reader(&self) -> Option<Result<Reader, LaneError>> {
        let card = self.card();
        let mut guard = lock(&self.shared.reader);
        let r = guard.as_mut()?;
        Some(if r.unplugged {
            Err(not_plugged_in(Role::Reader, &r.text))
        } else if let Some(reader) = r.pending.take() {
            Ok(reader)
        } else {
            r.plug_new(&card)
        })
    }

    /// Unplug the printer: the virtual printer hangs up its pseudo-terminal (closes the
    /// master side), so the driver's next `status`, `print`, `cut` or `recover` fails with
    /// [`FaultKind::Disconnected`] (the serial link reads and writes `EIO`, a hang-up; a
    /// print job reports `JobFailed` of kind `Disconnected`). Its receipts stay readable
    /// until [`replug_printer`](Self::replug_printer). [`Reopener::printer`](crate::Reopener::printer)
    /// fails with [`FaultKind::NotFound`] ("printer not plugged in") until then.
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the printer is not simulated.
    pub fn unplug_printer(&self) -> Result<(), LaneError> {
        let device = Arc::clone(&self.printer("unplug")?.device);
        device.unplug();
        Ok(())
    }

    /// Plug a new virtual printer in on a new pseudo-terminal (same URI, so with the URI's
    /// faults; paper and receipts start empty). The driver the service holds stays dead: a
    /// working one comes only from [`Reopener::printer`](crate::Reopener::printer) (or
    /// [`reset`](Self::reset)). [`receipts`](Self::receipts), the faults and
    /// [`virtual_printer`](Self::virtual_printer) are the new printer's from now on. Called
    /// while the printer is plugged in, it unplugs it first.
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the printer is not simulated; the printer's error when
    /// the new virtual printer does not open.
    pub fn replug_printer(&self) -> Result<(), LaneError> {
        let mut p = self.printer("replug")?;
        let (_, new) = crate::open_printer(&p.text)?;
        let Some(new) = new else {
            return Err(LaneError::not_simulated(Role::Printer, &p.text, "replug"));
        };
        p.device.unplug();
        *p = PrinterSim {
            opened: false,
            ..new
        };
        Ok(())
    }

    /// Whether the printer was unplugged (and not replaced by
    /// [`replug_printer`](Self::replug_printer) or [`reset`](Self::reset) since).
    pub fn printer_unplugged(&self) -> bool {
        self.shared
            .printer
            .as_ref()
            .is_some_and(|p| lock(p).device.is_unplugged())
    }

    /// The plugged-in virtual printer's driver, for a reopener. A printer already opened
    /// gives another handle on the same driver (the virtual printer has one serial line).
    /// `None` when the printer is not simulated.
    pub(crate) fn reopen_printer(&self) -> Option<Result<SharedPrinter, LaneError>> {
        let mut p = lock(self.shared.printer.as_ref()?);
        Some(if p.device.is_unplugged() {
            Err(not_plugged_in(Role::Printer, &p.text))
        } else {
            p.opened = true;
            Ok(SharedPrinter(Arc::clone(&p.driver)))
        })
    }

    /// Open or close the cash drawer on the virtual printer by hand (the cashier pushing it
    /// shut); its switch reads so from now on.
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the printer is not simulated.
    pub fn set_drawer_open(&self, open: bool) -> Result<(), LaneError> {
        self.printer("open or close the drawer of")?
            .device
            .set_drawer_open(open);
        Ok(())
    }

    /// Whether the virtual printer's cash drawer is open, and the drawer pulses (`ESC p`)
    /// it received so far.
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the printer is not simulated.
    pub fn drawer(&self) -> Result<(bool, Vec<pos_escpos::sim::DrawerKick>), LaneError> {
        let p = self.printer("read the drawer of")?;
        Ok((p.device.drawer_open(), p.device.drawer_kicks()))
    }

    /// Turn the paper-near-end sensor on or off: the status shows
    /// [`PrinterConditions::PAPER_NEAR_END`] (a warning,
    /// [`FaultKind::PaperNearEnd`]), and printing goes on
    /// ([`is_ready`](PrinterConditions::is_ready) stays true).
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the printer is not simulated.
    pub fn set_printer_near_end(&self, on: bool) -> Result<(), LaneError> {
        self.printer("set the paper-near-end sensor of")?
            .device
            .set_fault(SimFault::NearEnd, on);
        Ok(())
    }

    /// Unplug the stripe reader: its pseudo-terminal's master side closes, so the driver's
    /// next read fails with [`FaultKind::Disconnected`], and so does [`swipe`](Self::swipe).
    /// [`Reopener::msr`](crate::Reopener::msr) fails with [`FaultKind::NotFound`] ("msr not
    /// plugged in") until [`replug_msr`](Self::replug_msr).
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the stripe reader is not simulated.
    pub fn unplug_msr(&self) -> Result<(), LaneError> {
        let mut m = self.msr("unplug")?;
        m.device.unplug();
        m.unplugged = true;
        m.pending = None;
        Ok(())
    }

    /// Plug a new virtual stripe reader in on a new pseudo-terminal (same URI). The driver
    /// the service holds stays dead: a working one comes only from
    /// [`Reopener::msr`](crate::Reopener::msr) (or [`reset`](Self::reset)). Called while the
    /// reader is plugged in, it unplugs it first.
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the stripe reader is not simulated; its error when the
    /// new one does not open.
    pub fn replug_msr(&self) -> Result<(), LaneError> {
        let mut m = self.msr("replug")?;
        let msr = m.plug_new()?;
        m.pending = Some(msr);
        Ok(())
    }

    /// Whether the stripe reader was unplugged (and not replaced since).
    pub fn msr_unplugged(&self) -> bool {
        self.shared.msr.as_ref().is_some_and(|m| lock(m).unplugged)
    }

    /// The plugged-in virtual stripe reader's driver, for a reopener: the one
    /// [`replug_msr`](Self::replug_msr) plugged in, else a new one (the old one unplugged).
    /// `None` when the stripe reader is not simulated.
    pub(crate) fn reopen_msr(&self) -> Option<Result<Msr, LaneError>> {
        let mut m = lock(self.shared.msr.as_ref()?);
        Some(if m.unplugged {
            Err(not_plugged_in(Role::Msr, &m.text))
        } else if let Some(msr) = m.pending.take() {
            Ok(msr)
        } else {
            m.plug_new()
        })
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
        let p = Arc::clone(&self.printer("inject a fault in")?.device);
        if f == SimFault::PaperOut && mid_job {
            p.paper_out_after(PAPER_OUT_AFTER_LINES);
        } else {
            p.set_fault(f, true);
        }
        Ok(())
    }

    /// Clear every printer fault (a new paper roll, cover closed, cutter freed, online,
    /// paper-near-end sensor off). A printer still stopped after that (a jammed cutter stays
    /// jammed until told) is recovered through its driver
    /// ([`ReceiptPrinter::recover`]: DLE ENQ 1, re-initialise), as a technician would. Use
    /// [`clear_printer_faults_only`](Self::clear_printer_faults_only) to leave the recovery
    /// to the service.
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the printer is not simulated; the driver's error when
    /// the recovery fails (`Disconnected` when the printer is unplugged).
    pub fn clear_printer_faults(&self) -> Result<(), LaneError> {
        let (device, driver, text) = {
            let p = self.printer("clear the faults of")?;
            (Arc::clone(&p.device), Arc::clone(&p.driver), p.text.clone())
        };
        self.clear_printer_faults_only()?;
        if !device.conditions().is_ready() {
            ReceiptPrinter::recover(&mut *lock(&driver))
                .map_err(|e| LaneError::new(Role::Printer, &text, e))?;
        }
        Ok(())
    }

    /// Clear every printer fault as [`clear_printer_faults`](Self::clear_printer_faults)
    /// does, without recovering through the driver: a jammed cutter then stays stopped until
    /// the service calls [`ReceiptPrinter::recover`].
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the printer is not simulated.
    pub fn clear_printer_faults_only(&self) -> Result<(), LaneError> {
        let p = Arc::clone(&self.printer("clear the faults of")?.device);
        for f in [
            SimFault::PaperOut,
            SimFault::NearEnd,
            SimFault::CoverOpen,
            SimFault::CutterJam,
            SimFault::Offline,
            SimFault::Silent,
        ] {
            p.set_fault(f, false);
        }
        Ok(())
    }

    fn swipe_tracks(&self, pan: &str, name: &str, service_code: &str) -> Result<(), LaneError> {
        let msr = Arc::clone(&self.msr("swipe a card on")?.device);
        let track1 = format!("B{pan}^{name}^{SWIPE_EXPIRY}{service_code}0000000000");
        let track2 = format!("{pan}={SWIPE_EXPIRY}{service_code}00000000");
        msr.swipe(&SwipeSpec::tracks12(&track1, &track2))
            .map_err(|e| LaneError::new(Role::Msr, &self.shared.uris.msr, e))
    }

    /// Swipe the stripe of `card`: tracks 1 and 2 with its PAN (a profile's test PAN, or
    /// the PAN a recorded session's records carry), expiry [`SWIPE_EXPIRY`] and service code
    /// 201 (a chip card: the terminal should ask for the chip).
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the stripe reader is not simulated; `Disconnected` when
    /// it is unplugged; [`FaultKind::InvalidInput`] for a card with no PAN to put on a stripe
    /// (a bare test card such as `t0`, a script whose records carry none).
    pub fn swipe(&self, card: impl Into<CardSpec>) -> Result<(), LaneError> {
        let card = card.into();
        let pan = pos_emv::sim::card_pan(&card).map_err(|e| {
            LaneError::new(
                Role::Msr,
                &self.shared.uris.msr,
                LaneFault {
                    kind: FaultKind::InvalidInput,
                    message: format!("{card}: no stripe to swipe ({e})"),
                },
            )
        })?;
        let label = match &card {
            CardSpec::Named(name) => name.to_ascii_uppercase(),
            CardSpec::Script(_) => "RECORDED".to_string(),
        };
        self.swipe_tracks(&pan, &format!("LANE/{label}"), "201")
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
        self.virtual_printer()
            .map(|p| p.receipts().iter().map(|r| r.text()).collect())
            .unwrap_or_default()
    }

    /// The text of the last completed receipt.
    pub fn last_receipt(&self) -> Option<String> {
        self.virtual_printer()
            .and_then(|p| p.receipts().last().map(|r| r.text()))
    }

    /// Back to a healthy lane for the next sale: a fresh card of the lane's profile in the
    /// reader, card and printer faults cleared; a device that was unplugged (or replugged
    /// but not re-opened) is plugged in again (same URI) and its new driver put in
    /// `devices`.
    ///
    /// # Errors
    /// The device's error when a new virtual device does not open, or the printer's when
    /// its recovery fails.
    pub fn reset(&self, devices: &mut Devices) -> Result<(), LaneError> {
        let card = self.card();
        {
            let mut guard = lock(&self.shared.reader);
            if let Some(r) = guard.as_mut() {
                if r.unplugged || r.pending.is_some() {
                    let reader = match r.pending.take() {
                        Some(reader) => reader,
                        None => r.plug_new(&card)?,
                    };
                    devices.reader = Some(reader);
                } else {
                    let fresh = r.card(&card)?;
                    // Wait for the driver to see the swap, so that the next power-on is
                    // not told of the old card's removal.
                    let events = devices.reader.as_mut().and_then(|d| d.subscribe().ok());
                    r.handle.set_faults(SimFaults::default());
                    r.handle.insert(fresh);
                    if let Some(events) = events {
                        wait_inserted(&events);
                    }
                }
            }
        }
        if let Some(printer) = &self.shared.printer {
            let stale = {
                let p = lock(printer);
                p.device.is_unplugged() || !p.opened
            };
            if stale {
                if self.printer_unplugged() {
                    self.replug_printer()?;
                }
                if let Some(p) = self.reopen_printer().transpose()? {
                    devices.printer = Some(Box::new(Erased(p)));
                }
            }
            self.clear_printer_faults()?;
        }
        if let Some(msr) = &self.shared.msr {
            let mut m = lock(msr);
            if m.unplugged || m.pending.is_some() {
                let new = match m.pending.take() {
                    Some(new) => new,
                    None => m.plug_new()?,
                };
                devices.msr = Some(new);
            }
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
