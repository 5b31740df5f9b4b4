//! How many of the readers in a directory of libccid descriptor dumps (`readers/*.txt` of
//! <https://github.com/LudovicRousseau/CCID>) this driver accepts, and why it refuses the
//! others.
//!
//! ```text
//! cargo run -p pos-ccid --example reader_census -- DIR [--list]
//! ```
//!
//! Each dump is parsed with [`pos_ccid::descriptor::from_lsusb_dump`]; each interface is
//! judged as the USB transport judges it ([`pos_ccid::interface::assess`]: CCID class 0x0B,
//! or vendor class 0xFF with a CCID descriptor, with a bulk-OUT endpoint; ICCD refused by
//! name), then the policy ([`ReaderPolicy::decide`] with the reader's [`quirks::lookup`]
//! rows) may refuse it. Interfaces that `usb:VID:PID` does not open by itself (the
//! automatic choice, [`pos_ccid::interface::choose`], prefers a dual reader's contact slot)
//! are counted apart: they are reached with `interface=N`. `--list` prints every interface
//! with its verdict.

use std::collections::BTreeMap;
use std::path::Path;

use pos_ccid::descriptor::{CCID_INTERFACE_CLASS, DumpedInterface, from_lsusb_dump};
use pos_ccid::interface::{self, Candidate};
use pos_ccid::{ReaderConfig, ReaderPolicy, quirks};

/// The verdict on one interface: `Ok(())` accepted, `Err(reason)` refused. The interface
/// judgement is the transport's ([`interface::assess`]); then the policy may refuse it.
fn verdict(iface: &DumpedInterface) -> Result<(), String> {
    if let Err(why) = interface::assess(&Candidate::from_dump(iface)).usable {
        return Err(if why.contains("ICCD") {
            format!(
                "ICCD version {} (control pipe): refused by name",
                if iface.interface_protocol == 1 {
                    'A'
                } else {
                    'B'
                }
            )
        } else if why.contains("bulk OUT") {
            "no bulk-OUT endpoint".into()
        } else {
            why
        });
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
    let mut vendor_class = 0usize;
    let mut chosen_differs = 0usize;
    let mut chosen_refused = 0usize;
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
        let candidates: Vec<Candidate> = interfaces.iter().map(Candidate::from_dump).collect();
        let chosen = interface::choose(&candidates, None).ok().map(|c| c.number);
        if chosen.is_some()
            && chosen
                != first_ccid
                    .and_then(|n| interfaces.get(n))
                    .map(|i| i.interface_number)
        {
            chosen_differs += 1;
        }
        if let Some(n) = chosen {
            let iface = interfaces.iter().find(|i| i.interface_number == n);
            let another_works = interfaces
                .iter()
                .any(|i| i.interface_number != n && verdict(i).is_ok());
            if iface.is_some_and(|i| verdict(i).is_err()) && another_works {
                chosen_refused += 1;
            }
        }
        let mut device_ok = false;
        let mut first_reason = None;
        for iface in &interfaces {
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
                    if iface.interface_class != CCID_INTERFACE_CLASS {
                        vendor_class += 1;
                    }
                    if chosen != Some(iface.interface_number) {
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
        "  of the accepted, {vendor_class} are vendor-class (0xFF) interfaces with a CCID \
         descriptor, and {by_interface_option} are not the one usb:VID:PID opens: reached with \
         usb:VID:PID?interface=N"
    );
    println!(
        "automatic choice: on {chosen_differs} devices it is not the first CCID interface (the \
         contact one of a dual reader); on {chosen_refused} the chosen one is refused by the policy while another interface would do"
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
