//! Opening printers from device URIs.

use std::time::Duration;

use crate::driver::{DriverConfig, EscPosPrinter};
use crate::error::EscPosError;
use crate::profile;
#[cfg(feature = "sim")]
use crate::sim;

use crate::detect;
use pos_link::printer_class::{UsbPrinter, UsblpNode, UsblpPrinter};
use pos_link::{Address, Deadline, DeviceUri, Link};
use profile::Profile;

/// USB interface class of printers.
const USB_CLASS_PRINTER: u8 = 0x07;

/// The profile a URI asks for with `?profile=NAME` (a built-in or model-database name) or
/// `?profile=PATH` (a TOML file), else `default`. `profile=auto` is handled by [`open`]
/// (detection); here it is `default`.
///
/// Errors: `BadAddress` for an unknown name, `Profile` for a file that does not load.
pub fn profile_for(uri: &DeviceUri, default: &str) -> Result<Profile, EscPosError> {
    let name = match uri.option("profile") {
        Some("auto") | None => default,
        Some(n) => n,
    };
    if let Some(p) = Profile::builtin(name) {
        return Ok(p);
    }
    if name.contains('/') || name.ends_with(".toml") {
        return Ok(Profile::load(std::path::Path::new(name))?);
    }
    Err(EscPosError::BadAddress(format!(
        "unknown printer profile {name:?}: built in are {} (and {} more from the model database: `posctl printer models`), or give a path to a TOML file, or profile=auto",
        Profile::builtin_names()
            .iter()
            .take(6)
            .copied()
            .collect::<Vec<_>>()
            .join(", "),
        Profile::builtin_names().len().saturating_sub(6)
    )))
}

/// How long GET_DEVICE_ID / LPIOC_GET_DEVICE_ID may take at open.
const DEVICE_ID_TIMEOUT: Duration = Duration::from_secs(1);

/// Open the printer at `uri`:
///
/// - `serial:...`, `tcp:HOST:9100`: through pos-link;
/// - `usb:VID:PID`: the first printer-class interface (a usblp kernel driver is detached),
///   driven as a USB printer-class device ([`pos_link::printer_class::UsbPrinter`]: bulk
///   pipes, GET_DEVICE_ID, GET_PORT_STATUS, SOFT_RESET on a wedged job);
/// - `usblp:/dev/usb/lp0`: through the kernel's usblp driver, kept loaded;
/// - `sim:printer?fault=...` (feature `sim`): a virtual printer (`sim::VirtualPrinter`) on a
///   pseudo-terminal, opened through the real serial path; without the feature, a
///   `BadAddress` error that names it.
///
/// The profile comes from the URI's `profile` option. `profile=auto` identifies the
/// printer: from its IEEE 1284 Device ID (USB and usblp), else from GS I, and picks the
/// model-database profile ([`EscPosPrinter::detection`] says what was found). Without the
/// option: `epson-tm-t20` for Epson's USB vendor ID and the simulator, else `generic-80`.
///
/// Errors: `BadAddress` (not a printer URI, bad `sim:` options, unknown profile), `Link`
/// (cannot open: not found, permission with its udev hint, busy), `Profile`.
pub fn open(
    uri: &DeviceUri,
    config: DriverConfig,
) -> Result<EscPosPrinter<Box<dyn Link>>, EscPosError> {
    let text = uri.to_string();
    match uri.address() {
        Address::Sim { kind } if kind == "printer" => open_sim(uri, config),
        Address::Sim { kind } => Err(EscPosError::BadAddress(format!(
            "{text}: sim:{kind} is not a printer (use sim:printer)"
        ))),
        Address::Evdev { .. } => Err(EscPosError::BadAddress(format!(
            "{text}: evdev: is not a printer address"
        ))),
        Address::Pcsc { .. } => Err(EscPosError::BadAddress(format!(
            "{text}: pcsc: names a chip reader, not a printer"
        ))),
        Address::Usb(sel) => {
            let default = match sel {
                pos_link::UsbSelector::Ids { vid: 0x04b8, .. } => "epson-tm-t20",
                _ => "generic-80",
            };
            let opts = pos_link::usb::UsbOpenOptions {
                interface_class: Some(USB_CLASS_PRINTER),
                ..Default::default()
            };
            let mut link = UsbPrinter::new(pos_link::usb::UsbLink::open_uri(uri, opts)?);
            let raw = link.device_id(Deadline::after(DEVICE_ID_TIMEOUT));
            let id = device_id_of(&text, raw);
            open_link(Box::new(link), uri, config, default, id)
        }
        Address::Usblp { path } => {
            let mut link = UsblpPrinter::new(UsblpNode::open(path, &text)?);
            let id = device_id_of(&text, link.device_id());
            open_link(Box::new(link), uri, config, "generic-80", id)
        }
        _ => {
            let link = pos_link::open(uri, Duration::from_secs(3))?;
            open_link(link, uri, config, "generic-80", None)
        }
    }
}

fn device_id_of(
    target: &str,
    raw: Result<Vec<u8>, pos_link::LinkError>,
) -> Option<detect::DeviceId> {
    match raw.map(|r| detect::DeviceId::parse_reply(&r)) {
        Ok(Ok(id)) => Some(id),
        Ok(Err(e)) => {
            log::info!("{target}: device ID unreadable: {e}");
            None
        }
        Err(e) => {
            log::info!("{target}: no device ID: {e}");
            None
        }
    }
}

/// Drive a printer on an open `link`: the profile from `uri` (or `default`), or with
/// `profile=auto` the one detection picks from `device_id` (an IEEE 1284 Device ID read at
/// open, if any) or else from GS I.
///
/// Errors: as [`open`].
pub fn open_link(
    link: Box<dyn Link>,
    uri: &DeviceUri,
    config: DriverConfig,
    default: &str,
    device_id: Option<detect::DeviceId>,
) -> Result<EscPosPrinter<Box<dyn Link>>, EscPosError> {
    let text = uri.to_string();
    if uri.option("profile") != Some("auto") {
        let profile = profile_for(uri, default)?;
        let mut printer = EscPosPrinter::new(link, &text, profile, config)?;
        printer.set_device_id(device_id);
        return Ok(printer);
    }
    if let Some(id) = device_id {
        let d = detect::from_device_id(&id);
        let mut printer = EscPosPrinter::new(link, &text, d.profile.clone(), config)?;
        log::info!(
            "{text}: detected {:?} {:?}: profile {} ({})",
            d.maker,
            d.model,
            d.profile.name,
            d.reason
        );
        printer.set_device_id(Some(id));
        printer.set_detection(d);
        return Ok(printer);
    }
    let start = profile_for(uri, default)?;
    let mut printer = EscPosPrinter::new(link, &text, start, config)?;
    let d = match printer.identify() {
        Ok(id) => detect::from_printer_id(&id),
        Err(e) => {
            log::info!("{text}: GS I failed: {e}");
            detect::choose_profile(None, None, "nothing (GS I failed)")
        }
    };
    log::info!(
        "{text}: detected {:?} {:?}: profile {} ({})",
        d.maker,
        d.model,
        d.profile.name,
        d.reason
    );
    if printer.profile() != d.profile {
        printer.set_profile(d.profile.clone())?;
    }
    printer.set_detection(d);
    Ok(printer)
}

#[cfg(feature = "sim")]
fn open_sim(
    uri: &DeviceUri,
    config: DriverConfig,
) -> Result<EscPosPrinter<Box<dyn Link>>, EscPosError> {
    let cfg = sim::SimConfig::from_uri(uri).map_err(EscPosError::BadAddress)?;
    let profile = cfg.profile.clone();
    let (printer, slave) = sim::VirtualPrinter::on_pty(cfg)?;
    let link: Box<dyn Link> = Box::new(pos_link::SerialLink::open(
        &slave,
        pos_link::SerialSettings::default(),
    )?);
    Ok(EscPosPrinter::new(link, &uri.to_string(), profile, config)?
        .with_simulator(std::sync::Arc::new(printer)))
}

#[cfg(not(feature = "sim"))]
fn open_sim(
    uri: &DeviceUri,
    _config: DriverConfig,
) -> Result<EscPosPrinter<Box<dyn Link>>, EscPosError> {
    Err(EscPosError::BadAddress(format!(
        "{uri}: this build has no virtual printer (enable the `sim` feature of pos-escpos)"
    )))
}
