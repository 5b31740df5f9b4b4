//! Opening printers from device URIs.

use std::time::Duration;

use crate::driver::{DriverConfig, EscPosPrinter};
use crate::error::EscPosError;
use crate::profile;
#[cfg(feature = "sim")]
use crate::sim;

use pos_link::{Address, DeviceUri, Link};
use profile::Profile;

/// USB interface class of printers.
const USB_CLASS_PRINTER: u8 = 0x07;

/// The profile a URI asks for with `?profile=NAME` (a built-in name) or `?profile=PATH`
/// (a TOML file), else `default`.
///
/// Errors: `BadAddress` for an unknown name, `Profile` for a file that does not load.
pub fn profile_for(uri: &DeviceUri, default: &str) -> Result<Profile, EscPosError> {
    let name = uri.option("profile").unwrap_or(default);
    if let Some(p) = Profile::builtin(name) {
        return Ok(p);
    }
    if name.contains('/') || name.ends_with(".toml") {
        return Ok(Profile::load(std::path::Path::new(name))?);
    }
    Err(EscPosError::BadAddress(format!(
        "unknown printer profile {name:?}: built in are {}, or give a path to a TOML file",
        Profile::builtin_names().join(", ")
    )))
}

/// Open the printer at `uri`:
///
/// - `serial:...`, `tcp:HOST:9100`: through pos-link;
/// - `usb:VID:PID`: the first printer-class interface (a usblp kernel driver is detached);
/// - `sim:printer?fault=...` (feature `sim`): a virtual printer (`sim::VirtualPrinter`) on a
///   pseudo-terminal, opened through the real serial path; without the feature, a
///   `BadAddress` error that names it.
///
/// The profile comes from the URI's `profile` option, else `epson-tm-t20` for Epson's USB
/// vendor ID and the simulator, else `generic-80`.
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
            let profile = profile_for(uri, default)?;
            let opts = pos_link::usb::UsbOpenOptions {
                interface_class: Some(USB_CLASS_PRINTER),
                ..Default::default()
            };
            let link: Box<dyn Link> = Box::new(pos_link::usb::UsbLink::open_uri(uri, opts)?);
            EscPosPrinter::new(link, &text, profile, config)
        }
        Address::Serial { .. } | Address::Tcp { .. } => {
            let profile = profile_for(uri, "generic-80")?;
            let link = pos_link::open(uri, Duration::from_secs(3))?;
            EscPosPrinter::new(link, &text, profile, config)
        }
    }
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
