//! `posctl reader ...` for `pcsc:` readers (through pcscd, pos-pcsc), and the PC/SC part of
//! `reader list`.

use std::time::{Duration, Instant};

use pos_hal::{ChipReader, DeviceEvent, Fault, FaultKind, SlotState};
use pos_link::{Address, DeviceUri};
use pos_pcsc::{PcscConfig, PcscError, PcscReader};

use crate::reader::{describe_atr, hex, next_event, parse_hex, print_atr, run_apdus};
use crate::{CliError, Exit};

/// How long `reader list` waits for pcscd.
const LIST_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether `device` is a `pcsc:` URI (then these functions handle it).
pub fn is_pcsc(device: &str) -> bool {
    DeviceUri::parse(device).is_ok_and(|u| matches!(u.address(), Address::Pcsc { .. }))
}

fn exit_for(e: &PcscError) -> Exit {
    match e.kind() {
        FaultKind::CardAbsent
        | FaultKind::CardMute
        | FaultKind::CardRemoved
        | FaultKind::CardUnsupported
        | FaultKind::Protocol => Exit::DeviceFault,
        _ => Exit::Error,
    }
}

fn cli_error(e: PcscError) -> CliError {
    let mut c = CliError::device(&e, None, exit_for(&e));
    if matches!(
        e,
        PcscError::LibraryMissing { .. } | PcscError::NoService { .. }
    ) {
        // The message already says what to do.
        c.hint = None;
    }
    c
}

fn open(device: &str) -> Result<PcscReader, CliError> {
    let uri = DeviceUri::parse(device).map_err(|e| CliError::new(e.to_string()))?;
    pos_pcsc::open(&uri, PcscConfig::default()).map_err(cli_error)
}

/// The PC/SC readers for `reader list` (JSON entries with `"road": "pcsc"`), or the one line
/// saying why there are none to show (no pcsc-lite, pcscd not running).
pub fn list_entries() -> Result<Vec<serde_json::Value>, String> {
    let readers = pos_pcsc::list(LIST_TIMEOUT).map_err(|e| e.to_string())?;
    Ok(readers
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "road": "pcsc",
                "uri": r.uri,
                "name": r.name,
                "slots": 1,
                "card_present": [r.card_present],
                "atr": (!r.atr.is_empty()).then(|| hex(&r.atr)),
            })
        })
        .collect())
}

/// `posctl reader atr --device pcsc:...`.
pub fn atr(device: &str, slot: u8, json: bool) -> Result<Exit, CliError> {
    let mut r = open(device)?;
    let atr = r.power_on(slot).map_err(cli_error)?;
    let mut v = describe_atr(atr.as_bytes());
    v["protocol_in_use"] = r.protocol().into();
    v["device"] = r.info_uri().into();
    if json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!("{} slot {slot}:", r.info_uri());
        print_atr(&v);
        println!("  protocol in use: T={}", v["protocol_in_use"]);
    }
    let _ = r.power_off(slot);
    Ok(Exit::Ok)
}

/// `posctl reader info --device pcsc:...`: the reader pcscd has, its slot and the card's
/// ATR. Protocol, speed and voltage are pcscd's reader driver's choices, not ours.
pub fn info(device: &str, slot: u8, json: bool) -> Result<Exit, CliError> {
    let mut r = open(device)?;
    let st = r.slot_status(slot).map_err(cli_error)?;
    let present = st.contains(SlotState::CARD_PRESENT);
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
    let protocol = r.protocol();
    let note = "through pcscd: the reader driver (libccid or the vendor's) chooses protocol \
                parameters, speed and voltage";
    if json {
        let v = serde_json::json!({
            "device": r.info_uri(),
            "road": "pcsc",
            "reader": r.reader_name(),
            "slot": slot,
            "card_present": present,
            "atr": atr.as_ref().map(|a| hex(a.as_bytes())),
            "protocol_in_use": protocol,
            "note": note,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!("{} slot {slot}:", r.info_uri());
        println!("  reader: {} (PC/SC)", r.reader_name());
        match &atr {
            Some(a) => println!("  card ATR: {}", hex(a.as_bytes())),
            None if present => println!("  card present, not powered"),
            None => println!("  no card"),
        }
        if let Some(p) = protocol {
            println!("  protocol in use: T={p}");
        }
        println!("  {note}");
    }
    if atr.is_some() {
        let _ = r.power_off(slot);
    }
    Ok(Exit::Ok)
}

/// `posctl reader apdu --device pcsc:...`.
pub fn apdu(device: &str, slot: u8, apdus: &[String], json: bool) -> Result<Exit, CliError> {
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

/// `posctl reader watch --device pcsc:...`: insertions and removals as pcscd reports them.
pub fn watch(device: &str, seconds: Option<u64>, json: bool) -> Result<Exit, CliError> {
    let mut r = open(device)?;
    let sub = pos_hal::Device::subscribe(&mut r).map_err(cli_error)?;
    let started = Instant::now();
    let until = seconds.map(|s| started + Duration::from_secs(s));
    let present = r
        .slot_status(0)
        .map(|s| s.contains(SlotState::CARD_PRESENT))
        .map_err(cli_error)?;
    if json {
        println!(
            "{}",
            serde_json::json!({"t_ms": 0, "slot": 0, "event": "status", "present": present})
        );
    } else {
        println!(
            "[{:>8.3}s] slot 0: {} ({})",
            0.0,
            if present { "card present" } else { "no card" },
            r.reader_name()
        );
    }
    while let Some(ev) = next_event(&sub, until) {
        let t = started.elapsed().as_secs_f64();
        let t_ms = (t * 1000.0) as u64;
        match ev.event {
            DeviceEvent::CardInserted { slot } => {
                let atr = r.power_on(slot).map(|a| describe_atr(a.as_bytes()));
                let _ = r.power_off(slot);
                if json {
                    let mut v =
                        serde_json::json!({"t_ms": t_ms, "slot": slot, "event": "card_inserted"});
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
                        serde_json::json!({"t_ms": t_ms, "slot": slot, "event": "card_removed"})
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

/// The reader's URI as pcscd names it.
trait InfoUri {
    fn info_uri(&self) -> String;
}

impl InfoUri for PcscReader {
    fn info_uri(&self) -> String {
        pos_hal::Device::info(self).uri
    }
}
