//! The device factory: a lane's devices from their URIs, or the built-in simulated lane,
//! with fault injection.
//!
//! This is the one place that names concrete drivers (DESIGN.md, Layout): the terminal
//! service gets its [`Devices`] as HAL trait objects from [`open`], and never knows which
//! driver is behind them.
//!
//! | URI | device |
//! |---|---|
//! | `none` | no device of that kind |
//! | `sim:ccid[?opts]` | the virtual CCID reader (through the real [`pos_ccid::CcidReader`] driver and CCID codec) with a card inserted; options exactly as [`pos_ccid::open`] with pos-emv's card catalog ([`pos_emv::sim::EmvCards`]): `card=visa\|mastercard\|...` (every [`Profile`], default `visa`), `card=t0\|t1\|mute`, `card=none`, `script=FILE` (a recorded session), `model=NAME` (a real reader model: its descriptor, quirks and rules), `level`, `interrupt`, `pps` and the faults |
//! | `sim:printer[?opts]` | the virtual ESC/POS printer on a pseudo-terminal, opened through the real serial driver; options as [`pos_escpos::open`] |
//! | `sim:msr[?opts]` | the virtual serial magstripe reader on a pseudo-terminal, opened through the real serial path; it swipes when told ([`SimLane::swipe`]). With `track1..3`, `fault` or `every_ms` options it is `pos-magstripe`'s self-swiping `sim:msr` instead |
//! | `pcsc:READER NAME`, `pcsc:` | a chip reader through pcscd ([`pos_pcsc::open`]; `pcsc:` is the first reader pcscd lists), with the same fault kinds and events as a `usb:` reader |
//! | anything else | the real drivers: [`pos_ccid::open`], [`pos_escpos::open`], and for stripe readers `serial:` ([`pos_magstripe::serial::open`]), `evdev:` (keyboard wedge) or `usb:` (HID) |
//!
//! When at least one device is simulated, [`Lane::sim`] holds a [`SimLane`]: the control of
//! the virtual devices (insert, remove or mute the card, unplug the reader, printer faults,
//! swipes, the printed receipts), and [`SimLane::hook`] makes the
//! [`StepHook`](pos_terminal::StepHook) that performs injected faults at the steps of a sale.
//!
//! The simulated printer's ESC/POS driver is shared between [`Devices::printer`] and the
//! [`SimLane`], so that [`SimLane::clear_printer_faults`] can also recover a jammed cutter
//! through the driver (DLE ENQ 1, [`ReceiptPrinter::recover`](pos_hal::ReceiptPrinter::recover))
//! without being handed the lane's devices.
//!
//! A long-running service re-opens one device after it was unplugged (or its serial line
//! hung up) with a [`Reopener`] ([`Lane::reopener`]): real devices are opened from their URI
//! exactly as [`open`] does; simulated ones go through the [`SimLane`]
//! ([`SimLane::unplug_reader`] / [`SimLane::replug_reader`], and likewise for the printer and
//! the stripe reader).
//!
//! The cash drawer hangs on the printer: `[devices] drawer = "printer"` (and `drawer_pin =
//! 2|5`) gives [`Devices::drawer`] the printer driver's own drawer
//! ([`pos_escpos::EscPosDrawer`]: one link, one lock with the printer), opened with the
//! printer and re-opened with it ([`Reopener::printer_and_drawer`]); `drawer = "none"` (the
//! default) is no drawer. A drawer on a lane without a printer, another drawer value or
//! another pin is refused at open with [`FaultKind::InvalidInput`](pos_hal::FaultKind).
//!
//! Errors name the device (`reader`, `printer`, `msr`), its URI and the driver's message;
//! [`LaneError::kind`](pos_hal::Fault::kind) is the driver error's
//! [`FaultKind`](pos_hal::FaultKind).
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod hook;
mod host;
mod reopen;
mod sim;

use std::sync::Arc;
use std::time::Duration;

use pos_emv::profile_card::Profile;
use pos_hal::CardSpec;
use pos_hal::{DrawerPin, DrawerPulse, Erased};
use pos_link::{Address, DeviceUri};
use pos_terminal::Devices;
use pos_terminal::config::DeviceConfig;
use pos_terminal::devices::{Drawer, Msr, Printer, Reader};

pub use error::{BadUri, LaneError, LaneFault, Role};
pub use hook::{HostArm, SimHook};
pub use host::arm_fake_host;
pub use reopen::Reopener;
pub use sim::{PAPER_OUT_AFTER_LINES, SWIPE_EXPIRY, SimLane};

use sim::{MsrSim, PrinterSim, ReaderSim, Shared, SharedPrinter};

/// A lane's devices, and the control of the simulated ones.
pub struct Lane {
    /// The devices, as HAL trait objects.
    pub devices: Devices,
    /// The control of the simulated devices; `Some` when at least one device is simulated.
    pub sim: Option<SimLane>,
    /// The configured URIs, for [`Lane::reopener`].
    uris: DeviceConfig,
}

impl Lane {
    /// A [`Reopener`] of this lane's devices, one at a time, from their configured URIs
    /// (for a service that re-opens a device after it was unplugged; backoff is the
    /// caller's). It may be moved to another thread and outlive the lane.
    pub fn reopener(&self) -> Reopener {
        Reopener::new(self.uris.clone(), self.sim.clone())
    }
}

impl std::fmt::Debug for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lane")
            .field("devices", &self.devices)
            .field("sim", &self.sim)
            .finish()
    }
}

/// The card profile a simulated reader starts with when none is given.
pub const DEFAULT_PROFILE: Profile = pos_emv::sim::DEFAULT_PROFILE;

/// The reader driver's settings for every reader the factory opens: the defaults, and
/// pos-emv's card catalog for virtual readers (`sim:ccid?card=visa`, `script=FILE`).
pub fn reader_config() -> pos_ccid::ReaderConfig {
    pos_ccid::ReaderConfig {
        cards: Some(pos_emv::sim::EmvCards::shared()),
        ..pos_ccid::ReaderConfig::default()
    }
}

/// The printer driver's settings: the defaults for real printers; for the virtual printer
/// a shorter print-confirmation wait (it confirms at once or never).
pub fn printer_config(simulated: bool) -> pos_escpos::DriverConfig {
    let mut c = pos_escpos::DriverConfig::default();
    if simulated {
        c.confirm_timeout = Duration::from_secs(3);
    }
    c
}

fn parse(role: Role, text: &str) -> Result<DeviceUri, LaneError> {
    DeviceUri::parse(text).map_err(|e| LaneError::new(role, text, BadUri(e)))
}

fn is_sim(uri: &DeviceUri, kind: &str) -> bool {
    matches!(uri.address(), Address::Sim { kind: k } if k == kind)
}

/// Open the devices `config` names. `card` is the card a simulated reader starts with (a
/// [`Profile`], or any [`CardSpec`]: `CardSpec::Script(path)` replays a recorded session);
/// without it the URI's `card=NAME` or `script=FILE`, else [`DEFAULT_PROFILE`]. It is
/// ignored for a real reader.
///
/// # Errors
/// A [`LaneError`] naming the first device that does not open, its URI and the driver's
/// error (a URI that does not parse is [`FaultKind::InvalidInput`](pos_hal::FaultKind)).
/// Devices opened before it are closed again.
pub fn open(config: &DeviceConfig, card: Option<CardSpec>) -> Result<Lane, LaneError> {
    let pulse = drawer_pulse(config)?;
    let mut devices = Devices::default();
    let (reader, reader_sim, lane_card) = open_reader(&config.reader, card.clone())?;
    devices.reader = reader;
    let (printer, printer_sim, drawer) = open_printer_with_drawer(&config.printer, pulse)?;
    devices.printer = printer;
    devices.drawer = drawer;
    let (msr, msr_sim) = open_msr(&config.msr)?;
    devices.msr = msr;
    let msr_sim = msr_sim.map(|m| MsrSim::new(m, &config.msr));
    let any = reader_sim.is_some() || printer_sim.is_some() || msr_sim.is_some();
    let lane_card = lane_card
        .or(card)
        .unwrap_or_else(|| CardSpec::from(DEFAULT_PROFILE));
    let sim = any.then(|| {
        SimLane::new(Shared::new(
            config.clone(),
            reader_sim,
            printer_sim,
            msr_sim,
            lane_card,
        ))
    });
    Ok(Lane {
        devices,
        sim,
        uris: config.clone(),
    })
}

/// A device of one role, opened from its URI (`None` for `none`), and the control of its
/// simulator when it is simulated.
pub(crate) type Opened<D, S> = (Option<D>, Option<S>);

/// A reader opened from its URI: the driver, the simulator's control and the card it holds
/// when it is simulated.
pub(crate) type OpenedReader = (Option<Reader>, Option<ReaderSim>, Option<CardSpec>);

/// Open the reader at `text`, as [`open`] does (also for a [`Reopener`]); for a simulated
/// reader, also the card it was opened with.
pub(crate) fn open_reader(text: &str, card: Option<CardSpec>) -> Result<OpenedReader, LaneError> {
    if text.trim() == "none" {
        return Ok((None, None, None));
    }
    let uri = parse(Role::Reader, text)?;
    if is_sim(&uri, "ccid") {
        let (reader, sim, card) = ReaderSim::open(&uri, text, card)?;
        return Ok((Some(reader), Some(sim), Some(card)));
    }
    if matches!(uri.address(), Address::Pcsc { .. }) {
        let reader = pos_pcsc::open(&uri, pos_pcsc::PcscConfig::default())
            .map_err(|e| LaneError::new(Role::Reader, text, e))?;
        return Ok((Some(Box::new(Erased(reader))), None, None));
    }
    let reader =
        pos_ccid::open(&uri, reader_config()).map_err(|e| LaneError::new(Role::Reader, text, e))?;
    Ok((Some(Box::new(Erased(reader))), None, None))
}

/// The pulse of the drawer `config` asks for: `None` for `drawer = "none"`; for
/// `drawer = "printer"` the usual pulse (50 ms on, 500 ms off) on `drawer_pin`.
///
/// # Errors
/// [`FaultKind::InvalidInput`](pos_hal::FaultKind) (device `printer`, the drawer's setting
/// as URI) for another drawer value, a pin other than 2 or 5, or a drawer on a lane
/// without a printer.
pub fn drawer_pulse(config: &DeviceConfig) -> Result<Option<DrawerPulse>, LaneError> {
    let bad = |message: String| {
        LaneError::new(
            Role::Printer,
            &format!("drawer={}", config.drawer),
            LaneFault {
                kind: pos_hal::FaultKind::InvalidInput,
                message,
            },
        )
    };
    match config.drawer.trim() {
        "none" => Ok(None),
        "printer" => {
            if config.printer.trim() == "none" {
                return Err(bad(
                    "the cash drawer hangs on the printer, and the lane has no printer".into(),
                ));
            }
            let pin = DrawerPin::from_number(config.drawer_pin).ok_or_else(|| {
                bad(format!(
                    "drawer_pin = {}: the drawer kick-out connector pin is 2 or 5",
                    config.drawer_pin
                ))
            })?;
            Ok(Some(DrawerPulse::new(pin)))
        }
        other => Err(bad(format!(
            "drawer = {other:?}: \"printer\" (on the printer's kick-out connector) or \"none\""
        ))),
    }
}

/// Open the printer at `text`, as [`open`] does (also for a [`Reopener`] and a replug).
pub(crate) fn open_printer(text: &str) -> Result<Opened<Printer, PrinterSim>, LaneError> {
    open_printer_with_drawer(text, None).map(|(p, s, _)| (p, s))
}

/// A printer, the control of its simulator, and its drawer.
pub(crate) type OpenedPrinter = (Option<Printer>, Option<PrinterSim>, Option<Drawer>);

/// Open the printer at `text` and, with `pulse`, the drawer behind it.
pub(crate) fn open_printer_with_drawer(
    text: &str,
    pulse: Option<DrawerPulse>,
) -> Result<OpenedPrinter, LaneError> {
    if text.trim() == "none" {
        return Ok((None, None, None));
    }
    let uri = parse(Role::Printer, text)?;
    let simulated = is_sim(&uri, "printer");
    let printer = pos_escpos::open(&uri, printer_config(simulated))
        .map_err(|e| LaneError::new(Role::Printer, text, e))?;
    let drawer = pulse.map(|p| -> Drawer { Box::new(Erased(printer.drawer(p))) });
    let device = match printer.simulator() {
        Some(device) if simulated => device,
        _ => return Ok((Some(Box::new(Erased(printer))), None, drawer)),
    };
    let driver: sim::SimPrinterDriver = Arc::new(std::sync::Mutex::new(printer));
    let sim = PrinterSim {
        device,
        driver: Arc::clone(&driver),
        text: text.to_string(),
        opened: true,
    };
    Ok((
        Some(Box::new(Erased(SharedPrinter(driver)))),
        Some(sim),
        drawer,
    ))
}

/// Options of `sim:msr` that make `pos-magstripe`'s self-swiping reader.
const SELF_SWIPING: [&str; 5] = ["track1", "track2", "track3", "fault", "every_ms"];

/// Open the stripe reader at `text`, as [`open`] does (also for a [`Reopener`] and a
/// replug).
pub(crate) fn open_msr(
    text: &str,
) -> Result<Opened<Msr, Arc<pos_magstripe::sim::VirtualSerialMsr>>, LaneError> {
    if text.trim() == "none" {
        return Ok((None, None));
    }
    let uri = parse(Role::Msr, text)?;
    let err = |e: pos_magstripe::serial::MsrError| LaneError::new(Role::Msr, text, e);
    match uri.address() {
        Address::Sim { kind } if kind == "msr" => {
            let self_swiping = uri
                .options()
                .iter()
                .any(|(k, _)| SELF_SWIPING.contains(&k.as_str()));
            let msr = if self_swiping {
                pos_magstripe::sim::open_uri(&uri).map_err(err)?
            } else {
                sim::open_quiet_msr(&uri).map_err(err)?
            };
            let sim = msr.simulator().cloned();
            Ok((Some(Box::new(Erased(msr))), sim))
        }
        Address::Evdev { .. } => {
            let msr = pos_magstripe::readers::open_evdev(&uri).map_err(err)?;
            Ok((Some(Box::new(Erased(msr))), None))
        }
        Address::Usb(_) => {
            let msr = pos_magstripe::hid::open(&uri).map_err(err)?;
            Ok((Some(Box::new(Erased(msr))), None))
        }
        // serial:, and the addresses no stripe reader has: the serial driver says why.
        _ => {
            let msr = pos_magstripe::serial::open(&uri).map_err(err)?;
            Ok((Some(Box::new(Erased(msr))), None))
        }
    }
}

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
