//! `posctl devices`: what is plugged in, what it is, and whether we may open it.

use pos_hal::Fault;
use pos_link::enumerate::{self, Access, SerialPortInfo, UsbDeviceInfo};

use crate::{CliError, Exit};

/// Everything `devices` found, as printed with `--json`.
#[derive(Debug, serde::Serialize)]
struct Listing {
    serial_ports: Vec<SerialPortInfo>,
    usb_devices: Vec<UsbDeviceInfo>,
    /// Things that kept the listing from being complete (e.g. no USB access here).
    warnings: Vec<Warning>,
}

#[derive(Debug, serde::Serialize)]
struct Warning {
    source: &'static str,
    fault: pos_hal::FaultKind,
    message: String,
    hint: Option<String>,
}

fn access_text(a: &Access) -> String {
    match a {
        Access::ReadWrite => "ok".to_string(),
        Access::PermissionDenied { .. } => "permission denied".to_string(),
        Access::Missing => "no device node".to_string(),
        Access::Unknown => "access unknown".to_string(),
    }
}

fn access_hint(a: &Access) -> Option<&str> {
    match a {
        Access::PermissionDenied { hint } => Some(hint),
        _ => None,
    }
}

fn collect() -> Listing {
    let serial_ports = enumerate::serial_ports();
    let mut warnings = Vec::new();
    let usb_devices = match enumerate::usb_devices() {
        Ok(list) => list,
        Err(e) => {
            log::info!("USB enumeration failed: {e}");
            warnings.push(Warning {
                source: "usb",
                fault: e.kind(),
                message: format!("USB devices could not be listed: {e}"),
                hint: e.hint().map(str::to_string),
            });
            Vec::new()
        }
    };
    Listing {
        serial_ports,
        usb_devices,
        warnings,
    }
}

fn print_text(l: &Listing) {
    println!("Serial ports ({}):", l.serial_ports.len());
    if l.serial_ports.is_empty() {
        println!("  none found");
    }
    for p in &l.serial_ports {
        let what = match (&p.label, &p.usb) {
            (Some(label), Some(ids)) => format!("{:04x}:{:04x} {}", ids.vid, ids.pid, label.label),
            (None, Some(ids)) => format!(
                "{:04x}:{:04x} {}",
                ids.vid,
                ids.pid,
                ids.product.as_deref().unwrap_or("USB serial device")
            ),
            (Some(label), None) => label.label.to_string(),
            (None, None) => "built-in UART".to_string(),
        };
        println!(
            "  {:<16} {:<10} {:<40} {:<28} {}",
            p.path,
            p.driver.as_deref().unwrap_or("-"),
            what,
            p.uri,
            access_text(&p.access)
        );
        if let Some(h) = access_hint(&p.access) {
            println!("      hint: {h}");
        }
    }
    println!();
    println!("USB devices ({}):", l.usb_devices.len());
    if l.usb_devices.is_empty() && l.warnings.iter().all(|w| w.source != "usb") {
        println!("  none found");
    }
    for d in &l.usb_devices {
        let kinds: Vec<String> = d
            .kinds
            .iter()
            .map(|k| {
                serde_json::to_value(k)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .collect();
        let name = d
            .label
            .map(|l| l.label.to_string())
            .or_else(|| {
                let parts: Vec<&str> = [d.manufacturer.as_deref(), d.product.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            })
            .unwrap_or_else(|| "unknown device".to_string());
        println!(
            "  {:03}:{:03} {:04x}:{:04x} {:<24} {:<40} {:<28} {}",
            d.bus,
            d.address,
            d.vid,
            d.pid,
            if kinds.is_empty() {
                "-".to_string()
            } else {
                kinds.join(",")
            },
            name,
            d.uri,
            access_text(&d.access)
        );
        if let Some(h) = access_hint(&d.access) {
            println!("      hint: {h}");
        }
    }
    for w in &l.warnings {
        println!();
        println!("warning: {}", w.message);
        if let Some(h) = &w.hint {
            println!("  hint: {h}");
        }
    }
}

pub fn run(json: bool) -> Result<Exit, CliError> {
    let listing = collect();
    if json {
        let text = serde_json::to_string_pretty(&listing)
            .map_err(|e| CliError::new(format!("cannot encode the listing as JSON: {e}")))?;
        println!("{text}");
    } else {
        print_text(&listing);
    }
    Ok(Exit::Ok)
}
