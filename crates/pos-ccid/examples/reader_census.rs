//! How many of the readers in a directory of libccid descriptor dumps (`readers/*.txt` of
//! <https://github.com/LudovicRousseau/CCID>) this driver accepts, and why it refuses the
//! others.
//!
//! ```text
//! cargo run -p pos-ccid --example reader_census -- DIR [--list]
//! ```
//!
//! Each dump is parsed with [`pos_ccid::descriptor::from_lsusb_dump`]; each interface is
//! classified the way the driver would meet it: the USB transport opens the first interface
//! of class 0x0B with a bulk-OUT endpoint, or the one `interface=N` names in the `usb:` URI
//! (counted apart), then the policy ([`ReaderPolicy::decide`] with the reader's [`quirks::lookup`] rows) may refuse
//! it. `--list` prints every interface with its verdict.

use std::collections::BTreeMap;
use std::path::Path;

use pos_ccid::descriptor::{CCID_INTERFACE_CLASS, DumpedInterface, from_lsusb_dump};
use pos_ccid::{ReaderConfig, ReaderPolicy, quirks};

/// The verdict on one interface: `Ok(())` accepted, `Err(reason)` refused.
fn verdict(iface: &DumpedInterface) -> Result<(), String> {
    if iface.interface_class != CCID_INTERFACE_CLASS {
        return Err(format!(
            "vendor-class interface (0x{:02X}) with a CCID descriptor: the transport opens \
             class 0x0B only",
            iface.interface_class
        ));
    }
    match iface.interface_protocol {
        0 => {}
        1 => return Err("ICCD version A (control pipe): not supported".into()),
        2 => return Err("ICCD version B (control pipe): not supported".into()),
        p => return Err(format!("bInterfaceProtocol {p}: not CCID bulk transfer")),
    }
    if iface.bulk_out == Some(false) {
        return Err("no bulk-OUT endpoint".into());
    }
    let quirks = quirks::lookup(iface.vendor, iface.product, iface.bcd_device);
    let policy = ReaderPolicy::decide(
        &iface.descriptor,
        iface.data_rates.as_deref(),
        None,
        &quirks,
        &ReaderConfig::default(),
    );
    match policy.refused {
        Some(r) if r.starts_with("character-level") => Err("character level".into()),
        Some(r) if r.contains("firmware older") => Err("firmware below libccid's minimum".into()),
        Some(r) => Err(r),
        None => Ok(()),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: reader_census DIR [--list]");
        std::process::exit(2);
    };
    let list = args.any(|a| a == "--list");
    let mut paths: Vec<_> = match std::fs::read_dir(Path::new(&dir)) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect(),
        Err(e) => {
            eprintln!("{dir}: {e}");
            std::process::exit(1);
        }
    };
    paths.sort();

    let mut files = 0usize;
    let mut devices_accepted = 0usize;
    let mut devices_refused = 0usize;
    let mut accepted = 0usize;
    let mut refused: BTreeMap<String, usize> = BTreeMap::new();
    let mut device_reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut unreadable: Vec<String> = Vec::new();
    let mut levels: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut set_parameters = [0usize; 2];
    let mut automatic_voltage = 0usize;
    let mut by_interface_option = 0usize;
    for path in &paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Ok(text) = std::fs::read_to_string(path) else {
            unreadable.push(format!("{name}: not UTF-8 text"));
            continue;
        };
        let interfaces = match from_lsusb_dump(&text) {
            Ok(i) => i,
            Err(e) => {
                // Not every file in the directory is a dump (supported_readers.txt).
                unreadable.push(format!("{name}: {e}"));
                continue;
            }
        };
        files += 1;
        let first_ccid = interfaces.iter().position(|i| {
            i.interface_class == CCID_INTERFACE_CLASS
                && i.interface_protocol == 0
                && i.bulk_out != Some(false)
        });
        let mut device_ok = false;
        let mut first_reason = None;
        for (n, iface) in interfaces.iter().enumerate() {
            let v = verdict(iface);
            if list {
                println!(
                    "{name} if{} {} {}: {}",
                    iface.interface_number,
                    iface.usb_id(),
                    iface.name(),
                    match &v {
                        Ok(()) => "accepted".to_string(),
                        Err(r) => format!("refused, {r}"),
                    }
                );
            }
            match v {
                Ok(()) => {
                    accepted += 1;
                    if first_ccid != Some(n) {
                        // Not the one `usb:VID:PID` opens: reachable with `interface=N`.
                        by_interface_option += 1;
                    }
                    device_ok = true;
                    let quirks = quirks::lookup(iface.vendor, iface.product, iface.bcd_device);
                    let p = ReaderPolicy::decide(
                        &iface.descriptor,
                        iface.data_rates.as_deref(),
                        None,
                        &quirks,
                        &ReaderConfig::default(),
                    );
                    *levels.entry(p.exchange_level.value.name()).or_default() += 1;
                    set_parameters[usize::from(p.set_parameters.value)] += 1;
                    if p.voltages.value == [pos_ccid::message::PowerSelect::Automatic] {
                        automatic_voltage += 1;
                    }
                }
                Err(r) => {
                    *refused.entry(r.clone()).or_default() += 1;
                    first_reason.get_or_insert(r);
                }
            }
        }
        if device_ok {
            devices_accepted += 1;
        } else {
            devices_refused += 1;
            *device_reasons
                .entry(first_reason.unwrap_or_else(|| "no interface".into()))
                .or_default() += 1;
        }
    }

    let interfaces = accepted + refused.values().sum::<usize>();
    println!("dump files read: {files} (skipped {})", unreadable.len());
    for u in &unreadable {
        println!("  skipped {u}");
    }
    println!(
        "devices: {} accepted, {devices_refused} refused (of {files})",
        devices_accepted
    );
    for (reason, n) in &device_reasons {
        println!("  {n:4}  {reason}");
    }
    println!(
        "interfaces: {accepted} accepted, {} refused (of {interfaces})",
        interfaces - accepted
    );
    for (reason, n) in &refused {
        println!("  {n:4}  {reason}");
    }
    println!(
        "  of the accepted, {by_interface_option} are a device's second or later CCID interface: \
         opened with usb:VID:PID?interface=N"
    );
    println!("accepted interfaces by exchange level:");
    for (level, n) in &levels {
        println!("  {n:4}  {level}");
    }
    println!(
        "accepted interfaces: SetParameters sent on {}, skipped on {} (dwFeatures 0x40); \
         voltage left to the reader on {automatic_voltage}",
        set_parameters[1], set_parameters[0]
    );
}
