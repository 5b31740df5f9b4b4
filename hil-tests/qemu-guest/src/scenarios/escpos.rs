//! Scenarios: escpos.

use super::*;

pub(super) fn receipt(nonce: &str) -> Document {
    let mut d = Document::new();
    d.text("RIG RECEIPT")
        .text(nonce)
        .text("ESC/POS over QEMU's FTDI adapter")
        .feed(2)
        .cut(CutKind::Full);
    d
}

/// Poll `status` until `want` holds; the last conditions.
pub(super) fn wait_status(
    printer: &mut dyn pos_hal::ReceiptPrinter<Error = pos_escpos::EscPosError>,
    limit: Duration,
    want: &dyn Fn(PrinterConditions) -> bool,
) -> Result<PrinterConditions, End> {
    let t = Instant::now();
    loop {
        let s = printer
            .status()
            .map_err(|e| device_fail("printer status", &e))?;
        if want(s) {
            return Ok(s);
        }
        if t.elapsed() >= limit {
            return Err(fail(format!(
                "after {} s the printer's status is still {}",
                limit.as_secs(),
                s.names().join(", ")
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(super) fn names(s: PrinterConditions) -> String {
    let n = s.names();
    if n.is_empty() {
        "ready".into()
    } else {
        n.join(", ")
    }
}

pub(super) fn escpos_ftdi(ctx: &mut Ctx<'_>) -> Outcome {
    let result = escpos_ftdi_inner(ctx);
    // Leave the virtual printer without faults, whatever happened.
    for fault in ["paper_out", "cover_open"] {
        ctx.ask_lenient(&Verb::PrinterFault {
            fault: fault.into(),
            on: false,
        });
    }
    result
}

pub(super) fn escpos_ftdi_inner(ctx: &mut Ctx<'_>) -> Outcome {
    let asked = Instant::now();
    ctx.ask(&Verb::PrinterConnect)?;
    let tty = loop {
        if let Some(p) = usb_tty(Path::new("/sys"), Path::new("/dev")) {
            break p;
        }
        if asked.elapsed() >= TTY_LIMIT {
            return Err(fail(format!(
                "no /dev/ttyUSB* within {} s of printer-connect (ftdi_sio loaded?)",
                TTY_LIMIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let tty = tty.display().to_string();
    ctx.step(format!(
        "{tty} appeared {} ms after the request",
        asked.elapsed().as_millis()
    ));
    if tty != PRINTER_TTY {
        ctx.step(format!("note: the adapter is {tty}, not {PRINTER_TTY}"));
    }
    let uri_text = printer_uri(&tty);
    let uri = DeviceUri::parse(&uri_text).map_err(|e| fail(format!("{uri_text}: {e}")))?;
    let mut printer = pos_escpos::open(&uri, pos_escpos::DriverConfig::default())
        .map_err(|e| device_fail(&format!("open the printer {uri_text}"), &e))?;
    let status = wait_status(&mut printer, PRINTER_LIMIT, &|s| s.is_ready())?;
    ctx.step(format!("status: {}", names(status)));

    let nonce = format!(
        "RIG-{:08X}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let outcome = printer
        .print(&receipt(&nonce))
        .map_err(|e| device_fail("print the receipt", &e))?;
    ctx.step(format!("print outcome: {}", outcome.name()));
    if outcome != PrintOutcome::Confirmed {
        return Err(fail(format!(
            "the receipt was not confirmed by the printer: {}",
            match &outcome {
                PrintOutcome::Unconfirmed { reason } => reason.clone(),
                other => other.name().to_string(),
            }
        )));
    }
    let check = ctx.ask(&Verb::PrinterCheck(nonce.clone()))?;
    if !check.split_whitespace().any(|w| w == "contains=yes") {
        return Err(fail(format!(
            "the host's printer did not print {nonce}: {check}"
        )));
    }

    ctx.ask(&Verb::PrinterFault {
        fault: "paper_out".into(),
        on: true,
    })?;
    let status = wait_status(&mut printer, PRINTER_LIMIT, &|s| {
        s.contains(PrinterConditions::PAPER_OUT)
    })?;
    ctx.step(format!("status: {}", names(status)));
    match printer.print(&receipt("this receipt must not print")) {
        Err(e) if e.kind() == FaultKind::PaperOut => {
            ctx.step(format!("print refused: {e} [{}]", e.kind()));
        }
        Err(e) => {
            return Err(fail(format!(
                "with paper out the print failed as {}, not paper_out: {e}",
                e.kind()
            )));
        }
        Ok(o) => {
            return Err(fail(format!(
                "with paper out the print ended {}: a receipt that did not print would be \
                 reported printed",
                o.name()
            )));
        }
    }
    ctx.ask(&Verb::PrinterFault {
        fault: "paper_out".into(),
        on: false,
    })?;
    let status = wait_status(&mut printer, PRINTER_LIMIT, &|s| s.is_ready())?;
    ctx.step(format!("status after the fix: {}", names(status)));

    ctx.ask(&Verb::PrinterUnplug)?;
    let t = Instant::now();
    let error = loop {
        match printer.status() {
            // A status request in flight when the adapter went may time out; the next one
            // meets the unplugged port.
            Err(e) if e.kind() == FaultKind::Timeout && t.elapsed() < PRINTER_LIMIT => {
                ctx.step(format!(
                    "status {} ms after the unplug timed out: {e}",
                    t.elapsed().as_millis()
                ));
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => break e,
            Ok(s) if t.elapsed() >= PRINTER_LIMIT => {
                return Err(fail(format!(
                    "{} s after printer-unplug the printer still answers status ({})",
                    PRINTER_LIMIT.as_secs(),
                    names(s)
                )));
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    ctx.step(format!(
        "status {} ms after the unplug: {error} [{}]",
        t.elapsed().as_millis(),
        error.kind()
    ));
    if error.kind() != FaultKind::Disconnected {
        return Err(fail(format!(
            "the unplugged printer was classified {}, not disconnected: {error}",
            error.kind()
        )));
    }
    Ok("printed and confirmed; paper out refused as paper_out; unplug seen as disconnected".into())
}
