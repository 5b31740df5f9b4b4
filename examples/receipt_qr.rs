//! Print a receipt with a QR code, through the public API only: compose a `pos_hal::Document`
//! (styled lines, a QR code, a cut), print it with pos-escpos, and say what the printer
//! confirmed.
//!
//! ```text
//! cargo run --example receipt_qr                          # no hardware: the virtual printer
//! cargo run --example receipt_qr -- 'sim:printer?after=4'  # paper runs out mid-receipt
//! cargo run --example receipt_qr -- usb:04b8:0e28
//! cargo run --example receipt_qr -- tcp:192.0.2.20:9100
//! ```
//!
//! The outcome is one of three, never collapsed into "ok": `confirmed` (the printer said the
//! job finished), `status_verified` (it cannot confirm jobs; its status was clean after the
//! job) or `unconfirmed` (nothing proves the receipt came out: print it again or hand the
//! customer another proof). Exit 0 when the receipt printed (confirmed or status-verified),
//! 1 when the printer cannot be opened or the address is wrong, 2 when the printer reports
//! a fault or the receipt is unconfirmed.

use std::process::ExitCode;

use pos_escpos::{DriverConfig, EscPosError};
use pos_hal::{
    Align, CutKind, Document, Fault, PrintOutcome, QrCode, QrErrorCorrection, ReceiptPrinter,
    TextStyle, mask_pan,
};
use pos_link::DeviceUri;

const USAGE: &str = "usage: receipt_qr [PRINTER-URI]   (default: sim:printer, the virtual printer)";

/// The receipt: a header, the items, the total, the card (masked), a QR code, a cut.
fn receipt() -> Document {
    let mut doc = Document::new();
    doc.text_styled(
        "CORNER CAFE",
        TextStyle::new().bold().double().align(Align::Center),
    )
    .text_styled("12 High Street", TextStyle::new().align(Align::Center))
    .separator('-');
    for (item, price) in [("Flat white", "3.20"), ("Croissant", "2.40")] {
        doc.text(format!("{item:<24}{price:>8}"));
    }
    doc.separator('-')
        .text_styled(
            format!("{:<24}{:>8}", "TOTAL EUR", "5.60"),
            TextStyle::new().bold(),
        )
        // Only ever a masked card number on paper.
        .text(format!("Card {}", mask_pan("4761739001010010")))
        .feed(1)
        .text_styled(
            "Your receipt online:",
            TextStyle::new().align(Align::Center),
        )
        .qr(QrCode {
            module_size: 5,
            error_correction: QrErrorCorrection::Q,
            ..QrCode::new("https://example.invalid/r/000123")
        })
        .feed(2)
        .cut(CutKind::FeedAndPartial);
    doc
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let arg = std::env::args().nth(1);
    if matches!(arg.as_deref(), Some("-h" | "--help")) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let text = arg.unwrap_or_else(|| "sim:printer".to_string());
    let uri = match DeviceUri::parse(&text) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(1);
        }
    };

    println!("opening {uri}");
    let mut printer = match pos_escpos::open(&uri, DriverConfig::default()) {
        Ok(p) => p,
        Err(e) => return fail(&e, 1),
    };

    let doc = receipt();
    println!(
        "printing the receipt ({} lines of text and a QR code)",
        doc.text_lines().len()
    );
    let code = match printer.print(&doc) {
        Ok(PrintOutcome::Confirmed) => {
            println!("outcome: confirmed (the printer said the receipt came out)");
            0
        }
        Ok(PrintOutcome::StatusVerified) => {
            println!(
                "outcome: status_verified (this printer cannot confirm jobs; its status was clean afterwards)"
            );
            0
        }
        Ok(PrintOutcome::Unconfirmed { reason }) => {
            println!("outcome: unconfirmed ({reason}): the receipt is owed");
            2
        }
        // Paper out, cover open, cutter jam mid-receipt: the error says how far it got.
        Err(e) => return fail(&e, 2),
    };
    if let Some(sim) = printer.simulator() {
        println!(
            "--- what the virtual printer printed ---\n{}",
            sim.all_text()
        );
    }
    ExitCode::from(code)
}

fn fail(e: &EscPosError, code: u8) -> ExitCode {
    eprintln!("FAIL: {e}");
    eprintln!("[{}] {}", e.kind(), e.kind().advice());
    if let EscPosError::Link(l) = e {
        if let Some(h) = l.hint() {
            eprintln!("hint: {h}");
        }
    }
    ExitCode::from(code)
}
