//! `posctl reader ...`: chip readers: list, watch (like pcsc_scan), ATR, APDUs.

use std::time::{Duration, Instant};

use pos_ccid::atr::ParsedAtr;
use pos_ccid::interface::{self, Candidate};
use pos_ccid::{AnyReader, CcidError};
use pos_hal::{ChipReader, DeviceEvent, Fault, FaultKind, SlotState};
use pos_link::DeviceUri;

use crate::{CliError, Exit};

fn exit_for(e: &CcidError) -> Exit {
    match e.kind() {
        FaultKind::CardAbsent
        | FaultKind::CardMute
        | FaultKind::CardRemoved
        | FaultKind::CardUnsupported
        | FaultKind::Protocol => Exit::DeviceFault,
        _ => Exit::Error,
    }
}

fn cli_error(e: CcidError) -> CliError {
    let link = match &e {
        CcidError::Link(l) => Some(l),
        _ => None,
    };
    CliError::device(&e, link, exit_for(&e))
}

fn open(device: &str) -> Result<AnyReader, CliError> {
    let uri = DeviceUri::parse(device).map_err(|e| CliError::new(e.to_string()))?;
    pos_ccid::open(&uri, pos_lane::reader_config()).map_err(cli_error)
}

/// What an ATR says, for people and JSON.
pub(crate) fn describe_atr(bytes: &[u8]) -> serde_json::Value {
    let hex = hex(bytes);
    match ParsedAtr::parse(bytes) {
        Ok(a) => {
            let (fi, di) = a.fi_di();
            let (bwi, cwi) = a.bwi_cwi();
            serde_json::json!({
                "atr": hex,
                "protocols": a.protocols(),
                "fi": fi, "di": di,
                "f": a.f(), "d": a.d(),
                "extra_guard_time": a.extra_guard_time_n(),
                "wi": a.wi(),
                "ifsc": a.ifsc(),
                "bwi": bwi, "cwi": cwi,
                "historical": hex::encode_upper(&a.historical),
                "tck_valid": a.tck_valid,
            })
        }
        Err(e) => serde_json::json!({ "atr": hex, "error": e.to_string() }),
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn print_atr(v: &serde_json::Value) {
    println!("  ATR: {}", v["atr"].as_str().unwrap_or(""));
    if let Some(e) = v["error"].as_str() {
        println!("  (does not parse: {e})");
        return;
    }
    println!(
        "  protocols: {}  Fi/Di: {}/{} (F={} D={})  N={}  WI={}  IFSC={}  BWI={} CWI={}",
        v["protocols"],
        v["fi"],
        v["di"],
        v["f"],
        v["d"],
        v["extra_guard_time"],
        v["wi"],
        v["ifsc"],
        v["bwi"],
        v["cwi"]
    );
    println!(
        "  historical bytes: {}",
        v["historical"].as_str().unwrap_or("")
    );
}

/// `posctl reader list`: USB CCID readers on this machine, then the readers pcscd has (or
/// one line saying why it cannot be asked).
pub fn list(json: bool) -> Result<Exit, CliError> {
    let mut readers = Vec::new();
    let mut warnings = Vec::new();
    match pos_link::enumerate::usb_devices() {
        Ok(devs) => {
            for d in devs.iter().filter(|d| {
                d.kinds
                    .contains(&pos_link::enumerate::DeviceClassKind::ChipReader)
            }) {
                let mut entry = serde_json::json!({
                    "uri": d.uri,
                    "name": d.label.map(|l| l.label.to_string()).or(d.product.clone()),
                });
                match interfaces_of(&d.uri) {
                    Ok(v) => entry["interfaces"] = v,
                    Err(e) => entry["interfaces_error"] = e.into(),
                }
                match DeviceUri::parse(&d.uri)
                    .map_err(|e| CliError::new(e.to_string()))
                    .and_then(|u| pos_ccid::open(&u, pos_lane::reader_config()).map_err(cli_error))
                {
                    Ok(mut r) => {
                        let desc = r.descriptor();
                        entry["exchange_level"] = format!("{:?}", desc.exchange_level()).into();
                        entry["slots"] = r.slot_count().into();
                        let present: Vec<bool> = (0..r.slot_count())
                            .map(|s| {
                                r.slot_status(s)
                                    .map(|st| st.contains(SlotState::CARD_PRESENT))
                                    .unwrap_or(false)
                            })
                            .collect();
                        entry["card_present"] = present.into();
                    }
                    Err(e) => {
                        entry["error"] = e.message.into();
                        entry["hint"] = e.hint.into();
                    }
                }
                readers.push(entry);
            }
        }
        Err(e) => warnings.push(format!("USB devices could not be listed: {e}")),
    }
    let pcsc = crate::reader_pcsc::list_entries();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "readers": readers,
                "warnings": warnings,
                "pcsc_readers": pcsc.as_ref().ok(),
                "pcsc_error": pcsc.as_ref().err(),
            }))
            .unwrap_or_default()
        );
    } else {
        println!("Chip readers ({}):", readers.len());
        if readers.is_empty() {
            println!("  none found (a virtual one: posctl reader atr --device sim:ccid)");
        }
        for r in &readers {
            println!(
                "  {}  {}  level {}  slots {}  card {}{}",
                r["uri"].as_str().unwrap_or(""),
                r["name"].as_str().unwrap_or("unknown"),
                r["exchange_level"].as_str().unwrap_or("?"),
                r["slots"],
                r["card_present"],
                r["error"]
                    .as_str()
                    .map(|e| format!("  ERROR: {e}"))
                    .unwrap_or_default()
            );
            for line in interface_lines(&r["interfaces"]) {
                println!("{line}");
            }
        }
        for w in &warnings {
            println!("warning: {w}");
        }
        match &pcsc {
            Ok(list) => {
                println!("PC/SC readers, through pcscd ({}):", list.len());
                for r in list {
                    println!(
                        "  {}  card {}{}",
                        r["uri"].as_str().unwrap_or(""),
                        r["card_present"],
                        r["atr"]
                            .as_str()
                            .map(|a| format!("  ATR {a}"))
                            .unwrap_or_default()
                    );
                }
            }
            Err(why) => println!("PC/SC readers: none shown: {why}"),
        }
    }
    Ok(Exit::Ok)
}

/// Every smart-card interface of the device at `uri`, judged as the driver judges it, with
/// the one `uri` opens marked (JSON array, see [`interface_entries`]).
fn interfaces_of(uri: &str) -> Result<serde_json::Value, String> {
    let parsed = DeviceUri::parse(uri).map_err(|e| e.to_string())?;
    let (_, infos) = pos_link::usb::device_interfaces(&parsed).map_err(|e| e.to_string())?;
    let candidates: Vec<Candidate> = infos.iter().map(Candidate::from_usb).collect();
    Ok(interface_entries(&parsed, &candidates))
}

/// The interfaces of one device for `reader list`: each smart-card interface (usable or
/// not) with its role, verdict and the URI that opens it; `default` marks the one the bare
/// URI opens, with the reason.
fn interface_entries(uri: &DeviceUri, candidates: &[Candidate]) -> serde_json::Value {
    let choice = interface::choose(candidates, None);
    let chosen = choice.as_ref().ok().map(|c| c.number);
    let entries: Vec<serde_json::Value> = candidates
        .iter()
        .map(interface::assess)
        .filter(|a| a.is_card_interface())
        .map(|a| {
            let mut options: Vec<(String, String)> = uri
                .options()
                .iter()
                .filter(|(k, _)| k != "interface")
                .cloned()
                .collect();
            options.push(("interface".into(), a.number.to_string()));
            let opens = DeviceUri::new(uri.address().clone(), options)
                .map(|u| u.to_string())
                .unwrap_or_default();
            let mut e = serde_json::json!({
                "number": a.number,
                "name": a.name,
                "role": a.role.name(),
                "role_reason": a.role_reason,
                "usable": a.is_usable(),
                "uri": opens,
                "default": chosen == Some(a.number),
            });
            if let Err(why) = &a.usable {
                e["refused"] = why.clone().into();
            }
            if let (Some(n), Ok(c)) = (chosen, &choice) {
                if n == a.number {
                    e["default_reason"] = c.reason.clone().into();
                }
            }
            e
        })
        .collect();
    entries.into()
}

/// The text lines `reader list` prints under a reader for its interfaces.
fn interface_lines(interfaces: &serde_json::Value) -> Vec<String> {
    let Some(list) = interfaces.as_array() else {
        return Vec::new();
    };
    list.iter()
        .map(|i| {
            let name = i["name"]
                .as_str()
                .map(|n| format!(" {n:?}"))
                .unwrap_or_default();
            let what = if let Some(why) = i["refused"].as_str() {
                format!("refused: {why}")
            } else if i["default"] == true {
                format!(
                    "opened by default: {}",
                    i["default_reason"].as_str().unwrap_or("")
                )
            } else {
                format!("open with {}", i["uri"].as_str().unwrap_or(""))
            };
            format!(
                "    interface {} {}{name}: {what}",
                i["number"],
                i["role"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// `posctl reader atr`: power the card on and show its ATR decoded.
pub fn atr(device: &str, slot: u8, json: bool) -> Result<Exit, CliError> {
    if crate::reader_pcsc::is_pcsc(device) {
        return crate::reader_pcsc::atr(device, slot, json);
    }
    let mut r = open(device)?;
    let atr = r.power_on(slot).map_err(cli_error)?;
    let mut v = describe_atr(atr.as_bytes());
    v["protocol_in_use"] = r.protocol(slot).into();
    v["device"] = device.into();
    if json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!("{device} slot {slot}:");
        print_atr(&v);
        println!("  protocol in use: T={}", v["protocol_in_use"]);
    }
    let _ = r.power_off(slot);
    Ok(Exit::Ok)
}

/// `posctl reader info`: the driver's policy for the reader, each choice with its reason;
/// with a card in the slot, powered to take its ATR into account (and powered off again).
pub fn info(device: &str, slot: u8, json: bool) -> Result<Exit, CliError> {
    if crate::reader_pcsc::is_pcsc(device) {
        return crate::reader_pcsc::info(device, slot, json);
    }
    let mut r = open(device)?;
    let present = r
        .slot_status(slot)
        .map_err(cli_error)?
        .contains(SlotState::CARD_PRESENT);
    let atr = if present {
        match r.power_on(slot) {
            Ok(atr) => Some(atr),
            Err(e) => {
                log::info!("{device}: slot {slot}: power-on failed: {e}");
                None
            }
        }
    } else {
        None
    };
    let policy = r.policy(slot);
    let choice = r.interface_choice();
    let rates = r.data_rates();
    if json {
        let v = serde_json::json!({
            "device": device,
            "slot": slot,
            "atr": atr.as_ref().map(|a| hex(a.as_bytes())),
            "interface": choice,
            "data_rates": rates,
            "policy": policy,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!("{device} slot {slot}:");
        match &atr {
            Some(a) => println!("  card ATR: {}", hex(a.as_bytes())),
            None => println!("  no card powered: the reader's choices alone"),
        }
        if let Some(c) = &choice {
            println!("  interface: {}", c.number);
            println!("      because {}", c.reason);
        }
        match &rates {
            Some(l) => println!("  data rates (GET_DATA_RATES): {} listed", l.len()),
            None => println!(
                "  data rates (GET_DATA_RATES): no list (any from dwDataRate to dwMaxDataRate)"
            ),
        }
        if let Some(why) = &policy.refused {
            println!("  REFUSED: {why}");
        }
        for (name, value, reason) in policy.rows() {
            println!("  {name}: {value}");
            println!("      because {reason}");
        }
        for n in &policy.transport_notes {
            println!("  transport: {n}");
        }
    }
    if atr.is_some() {
        let _ = r.power_off(slot);
    }
    Ok(if policy.refused.is_some() {
        Exit::DeviceFault
    } else {
        Exit::Ok
    })
}

/// ISO 7816-4 status words people meet most, with what they mean.
pub fn sw_meaning(sw1: u8, sw2: u8) -> String {
    match (sw1, sw2) {
        (0x90, 0x00) => "success".into(),
        (0x61, n) => format!("{n} more response bytes: send GET RESPONSE"),
        (0x6C, n) => format!("wrong Le: resend with Le={n}"),
        (0x62, 0x83) => "selected file or application is blocked".into(),
        (0x63, n) if n & 0xF0 == 0xC0 => format!("verification failed, {} tries left", n & 0x0F),
        (0x65, 0x81) => "memory failure".into(),
        (0x67, 0x00) => "wrong length".into(),
        (0x69, 0x82) => "security status not satisfied".into(),
        (0x69, 0x83) => "authentication method blocked".into(),
        (0x69, 0x84) => "referenced data invalidated".into(),
        (0x69, 0x85) => "conditions of use not satisfied".into(),
        (0x6A, 0x81) => "function not supported (card blocked)".into(),
        (0x6A, 0x82) => "file or application not found".into(),
        (0x6A, 0x83) => "record not found".into(),
        (0x6A, 0x86) => "incorrect P1 P2".into(),
        (0x6A, 0x88) => "referenced data not found".into(),
        (0x6D, 0x00) => "instruction not supported".into(),
        (0x6E, 0x00) => "class not supported".into(),
        (0x6F, 0x00) => "no precise diagnosis".into(),
        (0x62 | 0x63, _) => "warning".into(),
        (0x64..=0x66, _) => "execution error".into(),
        (0x67..=0x6F, _) => "checking error".into(),
        _ => "unknown status".into(),
    }
}

pub(crate) fn parse_hex(text: &str) -> Result<Vec<u8>, CliError> {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    if clean.len() % 2 != 0 || !clean.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(CliError::new(format!(
            "{text:?} is not hex bytes (e.g. 00A404000E...)"
        )));
    }
    (0..clean.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&clean[i..i + 2], 16)
                .map_err(|_| CliError::new(format!("{text:?} is not hex")))
        })
        .collect()
}

/// `posctl reader apdu`: send APDUs to the card, show responses with status meanings.
pub fn apdu(device: &str, slot: u8, apdus: &[String], json: bool) -> Result<Exit, CliError> {
    if crate::reader_pcsc::is_pcsc(device) {
        return crate::reader_pcsc::apdu(device, slot, apdus, json);
    }
    let commands: Vec<Vec<u8>> = apdus
        .iter()
        .map(|a| parse_hex(a))
        .collect::<Result<_, _>>()?;
    let mut r = open(device)?;
    r.power_on(slot).map_err(cli_error)?;
    let result = run_apdus(
        &commands,
        json,
        |cmd| r.transmit(slot, cmd),
        exit_for,
        cli_error,
    );
    let _ = r.power_off(slot);
    result
}

/// Send `commands` in turn through `transmit` and print each response with its status
/// word's meaning and time (one JSON array with `json`). The first failure ends it: with
/// `json` it is the array's last entry and the exit code is `exit_for`'s; without, it is
/// the error `cli_error` makes. Shared by the USB and PC/SC roads.
pub(crate) fn run_apdus<E: Fault + std::fmt::Display>(
    commands: &[Vec<u8>],
    json: bool,
    mut transmit: impl FnMut(&[u8]) -> Result<Vec<u8>, E>,
    exit_for: impl Fn(&E) -> Exit,
    cli_error: impl Fn(E) -> CliError,
) -> Result<Exit, CliError> {
    let mut out = Vec::new();
    for cmd in commands {
        let started = Instant::now();
        let resp = match transmit(cmd) {
            Ok(resp) => resp,
            Err(e) => {
                if json {
                    out.push(serde_json::json!({"command": hex(cmd), "error": e.to_string(), "fault": e.kind()}));
                    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
                    return Ok(exit_for(&e));
                }
                return Err(cli_error(e));
            }
        };
        let took = started.elapsed();
        let (data, sw) = resp.split_at(resp.len().saturating_sub(2));
        let (sw1, sw2) = match sw {
            [a, b] => (*a, *b),
            _ => (0, 0),
        };
        let meaning = sw_meaning(sw1, sw2);
        if json {
            out.push(serde_json::json!({
                "command": hex(cmd),
                "data": hex::encode_upper(data),
                "sw": format!("{sw1:02X}{sw2:02X}"),
                "meaning": meaning,
                "micros": took.as_micros() as u64,
            }));
        } else {
            println!("> {}", hex(cmd));
            println!(
                "< {} {sw1:02X} {sw2:02X}  ({meaning}, {:.1} ms)",
                hex(data),
                took.as_secs_f64() * 1000.0
            );
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    Ok(Exit::Ok)
}

/// The next event of a `reader watch`, or `None` once `until` has passed or the reader's
/// event stream closed. Waits at most 500 ms at a time, so the deadline is kept.
pub(crate) fn next_event(
    sub: &pos_hal::Subscription,
    until: Option<Instant>,
) -> Option<pos_hal::TimedEvent> {
    loop {
        let wait = match until {
            Some(u) => {
                let left = u.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                left.min(Duration::from_millis(500))
            }
            None => Duration::from_millis(500),
        };
        match sub.recv_timeout(wait) {
            Ok(ev) => return Some(ev),
            Err(pos_hal::RecvError::Timeout) => continue,
            Err(pos_hal::RecvError::Closed) => return None,
        }
    }
}

/// `posctl reader watch`: insertions and removals with time and the decoded ATR.
pub fn watch(device: &str, seconds: Option<u64>, json: bool) -> Result<Exit, CliError> {
    if crate::reader_pcsc::is_pcsc(device) {
        return crate::reader_pcsc::watch(device, seconds, json);
    }
    let mut r = open(device)?;
    let sub = pos_hal::Device::subscribe(&mut r).map_err(cli_error)?;
    let started = Instant::now();
    let until = seconds.map(|s| started + Duration::from_secs(s));
    // The current state first.
    for slot in 0..r.slot_count() {
        let present = r
            .slot_status(slot)
            .map(|s| s.contains(SlotState::CARD_PRESENT))
            .unwrap_or(false);
        if json {
            println!(
                "{}",
                serde_json::json!({"t_ms": 0, "slot": slot, "event": "status", "present": present})
            );
        } else {
            println!(
                "[{:>8.3}s] slot {slot}: {}",
                0.0,
                if present { "card present" } else { "no card" }
            );
        }
    }
    while let Some(ev) = next_event(&sub, until) {
        let t = started.elapsed().as_secs_f64();
        match ev.event {
            DeviceEvent::CardInserted { slot } => {
                let atr = r.power_on(slot).map(|a| describe_atr(a.as_bytes()));
                if json {
                    let mut v = serde_json::json!({"t_ms": (t * 1000.0) as u64, "slot": slot, "event": "card_inserted"});
                    match atr {
                        Ok(a) => v["atr"] = a,
                        Err(e) => v["error"] = e.to_string().into(),
                    }
                    println!("{v}");
                } else {
                    println!("[{t:>8.3}s] slot {slot}: card inserted");
                    match atr {
                        Ok(a) => print_atr(&a),
                        Err(e) => println!("  power on failed: {e}"),
                    }
                }
            }
            DeviceEvent::CardRemoved { slot } => {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"t_ms": (t * 1000.0) as u64, "slot": slot, "event": "card_removed"})
                    );
                } else {
                    println!("[{t:>8.3}s] slot {slot}: card removed");
                }
            }
            DeviceEvent::Disconnected { detail } => {
                return Err(CliError::new(format!("reader disconnected: {detail}")));
            }
            other => {
                if json {
                    println!("{}", serde_json::to_string(&other).unwrap_or_default());
                } else {
                    println!("[{t:>8.3}s] {other:?}");
                }
            }
        }
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pos_link::holders::{Holder, HolderScan, usb_device_node};

    fn ccid(number: u8, class: u8, name: &str) -> Candidate {
        Candidate {
            number,
            class,
            protocol: 0,
            name: Some(name.into()),
            bulk_out: Some(true),
            descriptor: Some(Ok(
                pos_ccid::descriptor::CcidDescriptor::example_tpdu_reader(),
            )),
        }
    }

    #[test]
    fn reader_list_shows_every_card_interface_and_the_one_opened() {
        let uri = DeviceUri::parse("usb:076b:5422?serial=A1").unwrap();
        let device = [
            ccid(0, 0x0B, "OMNIKEY 5422CL Smartcard Reader"),
            ccid(1, 0x0B, "OMNIKEY 5422 Smartcard Reader"),
            // A keyboard interface is not listed.
            ccid(2, 0x03, "Keyboard"),
        ];
        let v = interface_entries(&uri, &device);
        let list = v.as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["role"], "contactless");
        assert_eq!(list[0]["default"], false);
        assert_eq!(list[0]["uri"], "usb:076b:5422?serial=A1&interface=0");
        assert_eq!(list[1]["default"], true);
        let lines = interface_lines(&v);
        assert!(
            lines[0].contains("interface 0 contactless")
                && lines[0].contains("open with usb:076b:5422?serial=A1&interface=0"),
            "{lines:?}"
        );
        assert!(lines[1].contains("interface 1 unknown"), "{lines:?}");
        assert!(
            lines[1].contains("opened by default: no interface names itself contact"),
            "{lines:?}"
        );
    }

    #[test]
    fn reader_list_names_an_iccd_interface_it_refuses() {
        let uri = DeviceUri::parse("usb:1059:000c").unwrap();
        let mut token = ccid(0, 0x0B, "ICCD Smartcard");
        token.protocol = 2;
        let v = interface_entries(&uri, &[token]);
        let lines = interface_lines(&v);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("refused: an ICCD token"), "{lines:?}");
    }

    /// A reader that pcscd holds, as `posctl reader ...` reports it.
    fn busy_text(scan: &HolderScan) -> String {
        let link = pos_link::usb_busy_from_scan("usb:072f:90cc", &usb_device_node(3, 7), scan);
        crate::error_text(&cli_error(CcidError::Link(link)))
    }

    #[test]
    fn a_busy_reader_is_said_once_with_its_bus_node() {
        let text = busy_text(&HolderScan::default());
        assert_eq!(text.matches("held by another process").count(), 1, "{text}");
        assert_eq!(text.matches("fuser").count(), 1, "{text}");
        assert!(text.contains("`fuser -v /dev/bus/usb/003/007`"), "{text}");
        assert!(!text.contains("fuser -v usb:"), "{text}");
        assert!(text.starts_with("posctl: usb:072f:90cc: busy: "), "{text}");
    }

    #[test]
    fn a_reader_pcscd_holds_is_said_to_be_pcscds() {
        let scan = HolderScan {
            holders: vec![Holder {
                pid: 812,
                name: "pcscd".into(),
            }],
            pcscd: Some(812),
            unreadable: 0,
            complete: true,
        };
        let text = busy_text(&scan);
        assert_eq!(
            text,
            "posctl: usb:072f:90cc: busy: held by pcscd (pid 812)\n  \
             hint: pcscd holds the reader: stop it (systemctl stop pcscd.socket pcscd.service), then \
             try again; to keep pcscd off the reader for good, disable it (systemctl disable \
             pcscd.socket pcscd.service) or, if it must serve other readers, put this \
             reader's name in PCSCLITE_FILTER_IGNORE_READER_NAMES in pcscd.service's \
             environment (pcscd(8))\n"
        );
    }
}
