//! `posctl printer ...`: status, print, self-test and live watch of a receipt printer.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use pos_escpos::{DriverConfig, EscPosError, EscPosPrinter, PrintReport};
use pos_hal::{
    Device, DeviceEvent, Document, Fault, FaultKind, PrintOutcome, PrinterConditions,
    ReceiptPrinter,
};
use pos_link::{DeviceUri, Link};

use crate::{CliError, Exit};

type Printer = EscPosPrinter<Box<dyn Link>>;

/// Exit code for a driver error: the printer answered with a fault -> 2; anything else -> 1.
fn exit_for(e: &EscPosError) -> Exit {
    match e {
        EscPosError::NotReady { .. } | EscPosError::JobFailed { .. } => Exit::DeviceFault,
        _ => Exit::Error,
    }
}

fn cli_error(e: EscPosError) -> CliError {
    let link = match &e {
        EscPosError::Link(l) => Some(l),
        _ => None,
    };
    CliError::device(&e, link, exit_for(&e))
}

fn open(device: &str) -> Result<Printer, CliError> {
    let uri = DeviceUri::parse(device).map_err(|e| CliError::new(e.to_string()))?;
    pos_escpos::open(&uri, DriverConfig::default()).map_err(cli_error)
}

#[derive(serde::Serialize)]
struct StatusJson {
    device: String,
    ready: bool,
    conditions: Vec<&'static str>,
    fault: Option<FaultKind>,
    warning: Option<FaultKind>,
    model: Option<String>,
    advice: Option<&'static str>,
}

/// `posctl printer status`: exit 0 ready, 2 not ready (the printer reports a fault), 1 when it
/// cannot be reached or does not answer.
pub fn status(device: &str, json: bool) -> Result<Exit, CliError> {
    let mut printer = open(device)?;
    let conditions = match printer.status() {
        Ok(c) => c,
        Err(e @ EscPosError::Silent { .. }) => {
            if json {
                let body = StatusJson {
                    device: device.to_string(),
                    ready: false,
                    conditions: vec![],
                    fault: Some(e.kind()),
                    warning: None,
                    model: None,
                    advice: Some(e.kind().advice()),
                };
                println!(
                    "{}",
                    serde_json::to_string_pretty(&body).unwrap_or_default()
                );
                return Ok(Exit::Error);
            }
            return Err(cli_error(e));
        }
        Err(e) => return Err(cli_error(e)),
    };
    // Identification is best effort: many printers answer only part of GS I.
    let model = printer
        .identify()
        .ok()
        .and_then(|id| id.model.or(id.maker))
        .or_else(|| printer.info().model);
    let fault = conditions.blocking_fault();
    let body = StatusJson {
        device: device.to_string(),
        ready: fault.is_none(),
        conditions: conditions.names(),
        fault,
        warning: conditions.warning(),
        model,
        advice: fault.or(conditions.warning()).map(FaultKind::advice),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    } else {
        println!(
            "{}: {}{}",
            body.device,
            if body.ready { "ready" } else { "NOT READY" },
            body.model
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        );
        if conditions.is_empty() {
            println!("  conditions: none");
        } else {
            println!("  conditions: {}", body.conditions.join(", "));
        }
        if let Some(a) = body.advice {
            println!("  {a}");
        }
    }
    Ok(if body.ready {
        Exit::Ok
    } else {
        Exit::DeviceFault
    })
}

/// A document from a file: JSON (the pos-hal document model) or plain text lines.
fn load_document(file: &str) -> Result<Document, CliError> {
    let mut text = String::new();
    if file == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::new(format!("cannot read standard input: {e}")))?;
    } else {
        text = std::fs::read_to_string(Path::new(file))
            .map_err(|e| CliError::new(format!("cannot read {file}: {e}")))?;
    }
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(&text)
            .map_err(|e| CliError::new(format!("{file}: not a valid receipt document: {e}")));
    }
    let mut doc = Document::new();
    doc.text(text.trim_end_matches('\n')).feed(3);
    Ok(doc)
}

fn report_outcome(
    device: &str,
    outcome: Result<PrintReport, EscPosError>,
    json: bool,
    printer: &Printer,
) -> Result<Exit, CliError> {
    let rendering = printer.simulator().map(|s| s.all_text());
    match outcome {
        Ok(report) => {
            let notes = report.notes();
            let o = report.outcome;
            let exit = match o {
                PrintOutcome::Confirmed | PrintOutcome::StatusVerified => Exit::Ok,
                // Bytes left, but nothing says the receipt came out: not a success.
                PrintOutcome::Unconfirmed { .. } => Exit::DeviceFault,
            };
            if json {
                let mut v = serde_json::to_value(&o).unwrap_or_default();
                if let Some(map) = v.as_object_mut() {
                    map.insert("device".into(), device.into());
                    map.insert("printed".into(), (exit == Exit::Ok).into());
                    map.insert("profile".into(), report.profile.clone().into());
                    map.insert("substituted".into(), notes.clone().into());
                    if let Some(r) = &rendering {
                        map.insert("rendering".into(), r.clone().into());
                    }
                }
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                let what = match &o {
                    PrintOutcome::Confirmed => "printed (confirmed by the printer)".to_string(),
                    PrintOutcome::StatusVerified => {
                        "printed (the printer cannot confirm jobs; its status was clean afterwards)"
                            .to_string()
                    }
                    PrintOutcome::Unconfirmed { reason } => format!("NOT CONFIRMED: {reason}"),
                };
                println!("{device}: {what}");
                for n in &notes {
                    println!("  substituted: {n}");
                }
                if let Some(r) = rendering {
                    println!("--- virtual printer output ---\n{r}\n------------------------------");
                }
            }
            Ok(exit)
        }
        Err(e) => {
            if json {
                let body = serde_json::json!({
                    "device": device,
                    "printed": false,
                    "outcome": "failed",
                    "fault": e.kind(),
                    "error": e.to_string(),
                    "advice": e.kind().advice(),
                    "rendering": rendering,
                });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&body).unwrap_or_default()
                );
                return Ok(exit_for(&e));
            }
            if let Some(r) = rendering {
                println!("--- virtual printer output ---\n{r}\n------------------------------");
            }
            Err(cli_error(e))
        }
    }
}

/// `posctl printer print`.
pub fn print(device: &str, file: &str, json: bool) -> Result<Exit, CliError> {
    let doc = load_document(file)?;
    let mut printer = open(device)?;
    let outcome = printer.print_report(&doc);
    report_outcome(device, outcome, json, &printer)
}

/// `posctl printer selftest`.
pub fn selftest(device: &str, json: bool) -> Result<Exit, CliError> {
    let mut printer = open(device)?;
    let doc = pos_escpos::selftest::test_page(&printer.profile());
    let outcome = printer.print_report(&doc);
    report_outcome(device, outcome, json, &printer)
}

/// `posctl printer info`: what the printer says it is and the profile chosen for it.
pub fn info(device: &str, json: bool) -> Result<Exit, CliError> {
    let mut uri = DeviceUri::parse(device).map_err(|e| CliError::new(e.to_string()))?;
    if uri.option("profile").is_none() {
        let mut options = uri.options().to_vec();
        options.push(("profile".into(), "auto".into()));
        uri = DeviceUri::new(uri.address().clone(), options)
            .map_err(|e| CliError::new(e.to_string()))?;
    }
    let mut printer = pos_escpos::open(&uri, DriverConfig::default()).map_err(cli_error)?;
    let detection = printer.detection().cloned();
    let device_id = printer.device_id().cloned();
    // GS I as well, best effort (the device ID may already have said it all).
    let gs_i = printer.identify().ok();
    let profile = printer.profile();
    let status = printer.status().ok();
    if json {
        let caps: serde_json::Map<String, serde_json::Value> = profile
            .capabilities()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.name().into()))
            .collect();
        let body = serde_json::json!({
            "device": device,
            "device_id": device_id.as_ref().map(|d| d.to_string()),
            "gs_i": gs_i,
            "detected_from": detection.as_ref().map(|d| d.source.clone()),
            "maker": detection.as_ref().and_then(|d| d.maker.clone()),
            "model": detection.as_ref().and_then(|d| d.model.clone()),
            "profile": profile.name,
            "reason": detection.as_ref().map(|d| d.reason.clone()),
            "capabilities": caps,
            "code_pages": profile.code_pages.iter().map(|e| format!("{}={}", e.number, e.page)).collect::<Vec<_>>(),
            "conditions": status.map(|c| c.names()),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
        return Ok(Exit::Ok);
    }
    println!("device:     {device}");
    if let Some(id) = &device_id {
        println!("device ID:  {id}");
    }
    if let Some(id) = &gs_i {
        let said: Vec<String> = [
            id.maker.clone(),
            id.model.clone(),
            id.firmware.as_ref().map(|f| format!("firmware {f}")),
            id.model_id.map(|m| format!("model ID 0x{m:02x}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !said.is_empty() {
            println!("GS I:       {}", said.join(", "));
        }
    }
    match &detection {
        Some(d) => {
            println!(
                "found:      {} (from {})",
                [d.maker.clone(), d.model.clone()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" "),
                d.source
            );
            println!("profile:    {} ({})", profile.name, d.reason);
        }
        None if uri.option("profile") == Some("auto") => println!(
            "profile:    {} (the virtual printer keeps its own profile: no detection on sim:)",
            profile.name
        ),
        None => println!("profile:    {} (given in the URI)", profile.name),
    }
    print_profile(&profile);
    if let Some(c) = status {
        println!(
            "status:     {}",
            if c.is_empty() {
                "ready".to_string()
            } else {
                c.names().join(", ")
            }
        );
    }
    Ok(Exit::Ok)
}

fn print_profile(p: &pos_escpos::profile::Profile) {
    if !p.vendor.is_empty() {
        println!("model:      {} {} ({})", p.vendor, p.model, p.source);
    }
    println!(
        "media:      {} mm, {} dots, {}/{} columns (font A/B){}",
        p.paper_width_mm,
        p.dots_per_line,
        p.columns_font_a,
        p.columns_font_b,
        if p.assumed.iter().any(|a| a == "dots_per_line") {
            " (assumed: the database does not say)"
        } else {
            ""
        }
    );
    let pages: Vec<String> = p
        .code_pages
        .iter()
        .map(|e| format!("{}={}", e.number, e.page))
        .collect();
    println!("code pages: {}", pages.join(" "));
    for (what, s) in p.capabilities() {
        println!("  {what:<28} {s}");
    }
}

/// `posctl printer models`: every profile and what it supports.
pub fn models(json: bool) -> Result<Exit, CliError> {
    let names = pos_escpos::profile::Profile::builtin_names();
    let profiles: Vec<_> = names
        .iter()
        .filter_map(|n| pos_escpos::profile::Profile::builtin(n))
        .collect();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&profiles).unwrap_or_default()
        );
        return Ok(Exit::Ok);
    }
    let short = |s: pos_escpos::profile::Support| match s {
        pos_escpos::profile::Support::Yes => "y",
        pos_escpos::profile::Support::No => "-",
        pos_escpos::profile::Support::Unknown => "?",
    };
    println!(
        "{:<28} {:>4} {:>5} {:>5}  cut raster col gsL bar qr pulse cn dleeot gsr gsi asb gsH",
        "profile", "mm", "dots", "pages"
    );
    for p in &profiles {
        let caps: Vec<&str> = p
            .capabilities()
            .into_iter()
            .map(|(_, s)| short(s))
            .collect();
        // cutter, full, partial, raster, column, gsL, barcode, qr, pulse, chinese, dle, gsr, gsi, asb, gsH
        let c = |i: usize| caps.get(i).copied().unwrap_or("?");
        println!(
            "{:<28} {:>4} {:>5} {:>5}  {:<3} {:<6} {:<3} {:<3} {:<3} {:<2} {:<5} {:<2} {:<6} {:<3} {:<3} {:<3} {}",
            p.name,
            p.paper_width_mm,
            p.dots_per_line,
            p.code_pages.len(),
            c(0),
            c(3),
            c(4),
            c(5),
            c(6),
            c(7),
            c(8),
            c(9),
            c(10),
            c(11),
            c(12),
            c(13),
            c(14)
        );
    }
    println!("(y yes, - no, ? unknown: never used)");
    Ok(Exit::Ok)
}

/// `posctl printer watch`: status changes as they happen, until `seconds` pass (forever
/// when `None`) or the printer goes away.
pub fn watch(device: &str, seconds: Option<u64>, json: bool) -> Result<Exit, CliError> {
    let mut printer = open(device)?;
    let sub = printer.subscribe().map_err(cli_error)?;
    let now = printer.status();
    let show = |what: &str, c: PrinterConditions| {
        if json {
            println!(
                "{}",
                serde_json::json!({"event": what, "conditions": c.names(), "ready": c.is_ready()})
            );
        } else {
            let names = if c.is_empty() {
                "none".to_string()
            } else {
                c.names().join(", ")
            };
            println!(
                "{what}: {} [{names}]",
                if c.is_ready() { "ready" } else { "NOT READY" }
            );
        }
    };
    match now {
        Ok(c) => show("status", c),
        Err(e) => println!("status: {e}"),
    }
    let until = seconds.map(|s| Instant::now() + Duration::from_secs(s));
    loop {
        let wait = match until {
            Some(u) => {
                let left = u.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Exit::Ok);
                }
                left.min(Duration::from_millis(500))
            }
            None => Duration::from_millis(500),
        };
        match sub.recv_timeout(wait) {
            Ok(ev) => match ev.event {
                DeviceEvent::PrinterStatusChanged { new, .. } => show("changed", new),
                DeviceEvent::Disconnected { detail } => {
                    return Err(CliError::new(format!("printer disconnected: {detail}")));
                }
                other => {
                    if json {
                        println!("{}", serde_json::to_string(&other).unwrap_or_default());
                    } else {
                        println!("{}: {other:?}", other.name());
                    }
                }
            },
            Err(pos_hal::RecvError::Timeout) => {}
            Err(pos_hal::RecvError::Closed) => return Ok(Exit::Ok),
        }
    }
}
