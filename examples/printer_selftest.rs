//! Receipt printer self-test for technicians.
//!
//! ```text
//! cargo run --example printer_selftest -- usb:04b8:0e28
//! cargo run --example printer_selftest -- serial:/dev/ttyUSB0?baud=38400&profile=epson-tm-t20
//! cargo run --example printer_selftest -- tcp:192.0.2.20:9100
//! cargo run --example printer_selftest                      # no hardware: the virtual printer
//! ```
//!
//! Steps: live status (each condition named, with what to do), identification (GS I),
//! a test page (profile, code pages with the euro sign and Chinese where supported, barcode,
//! QR code, cut) and its print outcome: confirmed by the printer, status-verified, or not.
//! Exit 0 when the page printed, 1 when the printer cannot be reached, 2 when it reports a
//! fault or the page was not confirmed.

use std::process::ExitCode;

use pos_escpos::{DriverConfig, EscPosError, selftest};
use pos_hal::{Device, Fault, HealthLevel, PrintOutcome, ReceiptPrinter};
use pos_link::DeviceUri;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let text = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "sim:printer".to_string());
    let uri = match DeviceUri::parse(&text) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    println!("1. opening {uri}");
    let mut printer = match pos_escpos::open(&uri, DriverConfig::default()) {
        Ok(p) => p,
        Err(e) => return fail(&e, 1),
    };
    println!("   profile: {}", printer.profile().name);

    println!("2. health check (status and identification)");
    match printer.check_health(HealthLevel::External) {
        Ok(report) => print!("{report}"),
        Err(e) => return fail(&e, 1),
    }
    match printer.status() {
        Ok(c) if !c.is_ready() => {
            println!("   the printer cannot print now: fix the above, then run again");
            return ExitCode::from(2);
        }
        Ok(_) => {}
        Err(e) => return fail(&e, 1),
    }

    println!("3. printing the test page");
    let page = selftest::test_page(&printer.profile());
    let code = match printer.print(&page) {
        Ok(PrintOutcome::Confirmed) => {
            println!("   PASS: the printer confirmed the page came out");
            0
        }
        Ok(PrintOutcome::StatusVerified) => {
            println!(
                "   PASS: sent, and the status was clean afterwards (this printer cannot confirm jobs)"
            );
            0
        }
        Ok(PrintOutcome::Unconfirmed { reason }) => {
            println!("   NOT CONFIRMED: {reason}");
            2
        }
        Err(e) => return fail(&e, 2),
    };
    if let Some(sim) = printer.simulator() {
        println!(
            "--- what the virtual printer printed ---\n{}",
            sim.all_text()
        );
    } else {
        println!(
            "   look at the paper: every line of the page should be there, the euro sign included"
        );
    }
    ExitCode::from(code)
}

fn fail(e: &EscPosError, code: u8) -> ExitCode {
    eprintln!("   FAIL: {e}");
    eprintln!("   [{}] {}", e.kind(), e.kind().advice());
    if let EscPosError::Link(l) = e {
        if let Some(h) = l.hint() {
            eprintln!("   hint: {h}");
        }
    }
    ExitCode::from(code)
}
