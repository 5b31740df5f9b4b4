//! Scenarios: printer.

use super::*;

pub(super) fn ready(p: &mut Printer) -> Result<PrinterConditions, End> {
    p.status().map_err(|e| device_fail("printer status", &e))
}

pub(super) fn not_ready(conditions: PrinterConditions) -> End {
    End::Fail {
        message: format!(
            "the printer is not ready: {}",
            conditions.names().join(", ")
        ),
        hint: conditions
            .blocking_fault()
            .and_then(hint)
            .map(str::to_string),
    }
}

pub(super) fn test_page(what: &str) -> Document {
    let mut d = Document::new();
    d.text(TEST_PAGE_TITLE)
        .text(what)
        .text("ASCII: ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789")
        .feed(2)
        .cut(CutKind::Full);
    d
}

pub(super) fn status_ready(ctx: &mut Ctx<'_>) -> Outcome {
    let p = printer(ctx.devices)?;
    let status = ready(p)?;
    ctx.note(format!("status: {}", status.names().join(", ")));
    if !status.is_ready() {
        return Err(not_ready(status));
    }
    Ok(())
}

pub(super) fn print_confirmed(ctx: &mut Ctx<'_>) -> Outcome {
    let sim = ctx.sim_for("printer");
    let p = printer(ctx.devices)?;
    let status = ready(p)?;
    if !status.is_ready() {
        return Err(not_ready(status));
    }
    let outcome = p
        .print(&test_page("print and confirm"))
        .map_err(|e| device_fail("print", &e))?;
    ctx.note(format!("print outcome: {}", outcome.name()));
    if let PrintOutcome::Unconfirmed { reason } = &outcome {
        return Err(End::Fail {
            message: format!("the test page was sent but not confirmed: {reason}"),
            hint: Some("check the printer's status and that the page came out".into()),
        });
    }
    if let Some(sim) = sim {
        let last = sim.last_receipt().unwrap_or_default();
        if !last.contains(TEST_PAGE_TITLE) {
            return Err(fail("the virtual printer did not print the test page"));
        }
        ctx.note("the virtual printer rendered the test page");
    }
    Ok(())
}

/// A printer fault a technician can make (open the cover, take the paper out): it shows
/// in the status, a print fails with `kind` (never reported printed), and the printer is
/// ready again once fixed.
pub(super) fn technician_fault(
    ctx: &mut Ctx<'_>,
    action: Action,
    instruction: &str,
    condition: PrinterConditions,
    kind: FaultKind,
) -> Outcome {
    let p = printer(ctx.devices)?;
    let status = ready(p)?;
    if !status.is_ready() {
        return Err(not_ready(status));
    }
    ask(
        ctx.operator,
        &mut ctx.steps,
        ctx.limit,
        action,
        instruction,
        &mut || {
            p.status()
                .map(|s| s.contains(condition))
                .map_err(|e| format!("printer status: {e} [{}]", e.kind()))
        },
    )?;
    let result = p.print(&test_page("this page must not print"));
    let checked = match &result {
        Err(e) if e.kind() == kind => {
            ctx.steps.push(format!("print refused: {e}"));
            Ok(())
        }
        Err(e) => Err(fail(format!(
            "the print failed as {}, not {kind}: {e}",
            e.kind()
        ))),
        Ok(o) => Err(fail(format!(
            "the print ended {} with the printer in {}: a receipt that did not print would be reported printed",
            o.name(),
            condition.names().join(", ")
        ))),
    };
    // Fix the printer whatever the verdict, so that the next cases find it ready.
    let fixed = ask(
        ctx.operator,
        &mut ctx.steps,
        ctx.limit,
        Action::FixPrinter,
        "load paper and close the printer cover",
        &mut || {
            p.status()
                .map(|s| s.is_ready())
                .map_err(|e| format!("printer status: {e} [{}]", e.kind()))
        },
    );
    checked.and(fixed)
}

pub(super) fn paper_out(ctx: &mut Ctx<'_>) -> Outcome {
    technician_fault(
        ctx,
        Action::RemovePaper,
        "take the paper roll out of the printer now",
        PrinterConditions::PAPER_OUT,
        FaultKind::PaperOut,
    )
}

pub(super) fn cover_open(ctx: &mut Ctx<'_>) -> Outcome {
    technician_fault(
        ctx,
        Action::OpenCover,
        "open the printer cover now",
        PrinterConditions::COVER_OPEN,
        FaultKind::CoverOpen,
    )
}

/// A printer fault only the virtual printer can make on demand.
pub(super) fn injected_fault(ctx: &mut Ctx<'_>, fault: InjectedFault, kind: FaultKind) -> Outcome {
    let Some(sim) = ctx.sim_for("printer") else {
        printer(ctx.devices)?;
        return Err(End::Skip(format!(
            "virtual lane only: a real printer cannot be made {kind} on demand"
        )));
    };
    let p = printer(ctx.devices)?;
    sim.printer_fault(&fault, false)
        .map_err(|e| device_fail("inject the fault", &e))?;
    ctx.steps.push(format!("injected {fault}"));
    let checked = match p.print(&test_page("this page must not print")) {
        Err(e) if e.kind() == kind => {
            ctx.steps.push(format!("print refused: {e}"));
            Ok(())
        }
        Err(e) => Err(fail(format!(
            "the print failed as {}, not {kind}: {e}",
            e.kind()
        ))),
        Ok(o) => Err(fail(format!(
            "the print ended {} with {fault} injected",
            o.name()
        ))),
    };
    sim.clear_printer_faults()
        .map_err(|e| device_fail("clear the printer faults", &e))?;
    checked
}

pub(super) fn cutter_jam(ctx: &mut Ctx<'_>) -> Outcome {
    injected_fault(ctx, InjectedFault::CutterJam, FaultKind::CutterJam)
}

pub(super) fn offline(ctx: &mut Ctx<'_>) -> Outcome {
    injected_fault(
        ctx,
        InjectedFault::PrinterOffline,
        FaultKind::PrinterOffline,
    )
}
