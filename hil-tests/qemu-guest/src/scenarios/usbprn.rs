//! Scenarios: usbprn. A USB printer built in the guest (the printer gadget of
//! [`crate::printer_gadget`]: an Epson TM-T20III by its IEEE 1284 device ID) whose bytes the
//! relay carries to emupos on the host, driven through both of our USB printer roads:
//! `usb:04b8:0e28` (libusb, the usblp driver detached) and `usblp:/dev/usb/lpN` (the kernel's
//! usblp). emupos renders what is printed and its faults come back as ESC/POS status replies
//! and as the port-status bits of the printer function.

use super::*;
use crate::gadget::{DeviceSpec, Gadget, class_nodes, require_modules, wait_for_path, wait_gone};
use crate::printer_gadget::{
    CHANNEL_TTY, DETECTED_PROFILE, DEVICE_ID, PID, QUEUE_LEN, Relay, VID, gadget_node, pnp_string,
    port_bits,
};
use pos_link::Address;
use pos_link::printer_class::{PortStatus, UsbPrinter, UsblpNode, UsblpPrinter};

/// Which road a case drives the gadget printer through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Road {
    /// `usb:VID:PID`: libusb, usblp detached.
    Usb,
    /// `usblp:/dev/usb/lpN`: the kernel's usblp.
    Usblp,
}

/// How long the status poll may take to show an emupos fault in the port-status bits (it
/// polls every 200 ms).
const BITS_LIMIT: Duration = Duration::from_secs(5);

/// The gadget printer in place for one case: emupos reset, the gadget bound, the relay
/// running. Dropped in field order: the relay stops before the gadget goes.
struct Bench {
    relay: Relay,
    gadget: Gadget,
    road: Road,
    /// The printer's URI on this road (with `profile=auto`).
    uri: String,
}

fn driver_config() -> pos_escpos::DriverConfig {
    pos_escpos::DriverConfig {
        // emupos does not answer GS ( H: do not wait 15 s for a confirmation that never
        // comes (the outcome is then status-verified).
        confirm_timeout: Duration::from_millis(1500),
        ..pos_escpos::DriverConfig::default()
    }
}

fn setup(ctx: &Ctx<'_>, road: Road) -> Result<Bench, End> {
    let mut modules = vec!["libcomposite", "dummy_hcd", "usb_f_printer"];
    if road == Road::Usblp {
        modules.push("usblp");
    }
    require_modules(&modules).map_err(End::Skip)?;
    if !Path::new(CHANNEL_TTY).exists() {
        return Err(fail(format!(
            "{CHANNEL_TTY} is missing: the host's printer channel is QEMU's third serial port"
        )));
    }
    match ctx.control.request(&Verb::EmuposReset, REQUEST_TIMEOUT) {
        Ok(answer) => ctx.step(format!("emupos reset: {answer}")),
        Err(e) if e.contains(crate::ctl::SKIP_MARK) => return Err(End::Skip(e)),
        Err(e) => return Err(fail(e)),
    }
    let spec = DeviceSpec::new(VID, PID, "EPSON", "TM-T20III");
    let mut gadget =
        Gadget::create("rig-printer", &spec).map_err(|e| fail(format!("gadget: {e}")))?;
    gadget
        .function(
            "printer",
            "usb0",
            &[
                ("pnp_string", pnp_string().as_bytes()),
                ("q_len", QUEUE_LEN.as_bytes()),
            ],
        )
        .map_err(|e| fail(format!("printer function: {e}")))?;
    let udc = gadget.bind().map_err(|e| fail(format!("bind: {e}")))?;
    let dir = gadget
        .wait_enumerated(GADGET_LIMIT)
        .map_err(|e| fail(e.to_string()))?;
    let t = Instant::now();
    let node = loop {
        if let Some(n) = gadget_node() {
            break n;
        }
        if t.elapsed() >= GADGET_LIMIT {
            return Err(fail("no g_printer node in /sys/class/usb_printer_gadget"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    wait_for_path(&node, GADGET_LIMIT).map_err(|e| fail(e.to_string()))?;
    let relay = Relay::start(&node, Path::new(CHANNEL_TTY), Some(ctx.control.clone()))
        .map_err(|e| fail(format!("relay: {e}")))?;
    ctx.step(format!(
        "gadget {VID:04x}:{PID:04x} on {udc} as {}, {} relayed to emupos over {CHANNEL_TTY}",
        dir.display(),
        node.display()
    ));
    let uri = match road {
        Road::Usb => format!("usb:{VID:04x}:{PID:04x}?profile=auto"),
        Road::Usblp => {
            let t = Instant::now();
            let lp = loop {
                if let Some(lp) = class_nodes(&dir, "usbmisc").into_iter().next() {
                    break lp;
                }
                if t.elapsed() >= GADGET_LIMIT {
                    return Err(fail(format!(
                        "usblp made no /dev/usb/lp* for {} within {} s",
                        dir.display(),
                        GADGET_LIMIT.as_secs()
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            wait_for_path(&lp, GADGET_LIMIT).map_err(|e| fail(e.to_string()))?;
            format!("usblp:{}?profile=auto", lp.display())
        }
    };
    ctx.step(format!("road {uri}"));
    Ok(Bench {
        relay,
        gadget,
        road,
        uri,
    })
}

impl Bench {
    fn open(&self) -> Result<pos_escpos::EscPosPrinter<Box<dyn pos_link::Link>>, End> {
        let uri = DeviceUri::parse(&self.uri).map_err(|e| fail(format!("{}: {e}", self.uri)))?;
        // The usblp node may still be held by the previous opener's release for a moment.
        let t = Instant::now();
        loop {
            match pos_escpos::open(&uri, driver_config()) {
                Ok(p) => return Ok(p),
                Err(e) if e.kind() == FaultKind::Busy && t.elapsed() < GADGET_LIMIT => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(device_fail(&format!("open {}", self.uri), &e)),
            }
        }
    }

    /// GET_PORT_STATUS through this road (the printer must be closed: both roads open the
    /// interface exclusively).
    fn port_status(&self) -> Result<PortStatus, End> {
        let uri = DeviceUri::parse(&self.uri).map_err(|e| fail(format!("{}: {e}", self.uri)))?;
        match self.road {
            Road::Usb => {
                let opts = pos_link::usb::UsbOpenOptions {
                    interface_class: Some(pos_link::usb::CLASS_PRINTER),
                    ..Default::default()
                };
                let link = pos_link::usb::UsbLink::open_uri(&uri, opts)
                    .map_err(|e| device_fail("open for GET_PORT_STATUS", &e))?;
                UsbPrinter::new(link)
                    .port_status(pos_link::Deadline::after(Duration::from_secs(1)))
                    .map_err(|e| device_fail("GET_PORT_STATUS", &e))
            }
            Road::Usblp => {
                let Address::Usblp { path } = uri.address() else {
                    return Err(fail(format!("{} is not a usblp: URI", self.uri)));
                };
                let node = UsblpNode::open(path, &self.uri)
                    .map_err(|e| device_fail("open for LPGETSTATUS", &e))?;
                UsblpPrinter::new(node)
                    .port_status()
                    .map_err(|e| device_fail("LPGETSTATUS", &e))
            }
        }
    }

    /// Wait until the road reports the port-status byte `want`.
    fn wait_bits(&self, ctx: &Ctx<'_>, want: u8, what: &str) -> Result<(), End> {
        let t = Instant::now();
        loop {
            let got = self.port_status()?;
            if got.0 == want {
                ctx.step(format!(
                    "port status {:#04x} ({what}) after {} ms: conditions {}",
                    got.0,
                    t.elapsed().as_millis(),
                    names(got.conditions())
                ));
                return Ok(());
            }
            if t.elapsed() >= BITS_LIMIT {
                return Err(fail(format!(
                    "port status {:#04x}, not {want:#04x} ({what}), {} s on (relay set {:#04x}, \
                     kernel has {}, poll error: {})",
                    got.0,
                    BITS_LIMIT.as_secs(),
                    self.relay.bits(),
                    self.relay
                        .kernel_bits()
                        .map_or_else(|e| e.to_string(), |b| format!("{b:#04x}")),
                    self.relay.status_error().unwrap_or_else(|| "none".into())
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn nonce() -> String {
    format!(
        "USB-{:08X}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    )
}

fn gadget_receipt(nonce: &str, lines: usize) -> Document {
    let mut d = Document::new();
    d.text("RIG USB PRINTER");
    for i in 0..lines {
        d.text(format!("line {i:04} of the gadget printer's receipt"));
    }
    d.text(nonce).feed(2).cut(CutKind::Full);
    d
}

/// Whether emupos rendered `text`, asked until `limit` (rendering follows the cut).
fn emupos_has(ctx: &Ctx<'_>, text: &str, limit: Duration) -> Result<bool, End> {
    let t = Instant::now();
    loop {
        let answer = ctx.ask(&Verb::EmuposCheck(text.to_string()))?;
        let yes = answer.split_whitespace().any(|w| w == "contains=yes");
        if yes || t.elapsed() >= limit {
            return Ok(yes);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Clear every fault whatever happened, so the next case starts clean.
fn with_cleanup(
    ctx: &mut Ctx<'_>,
    road: Road,
    body: fn(&mut Ctx<'_>, &mut Bench) -> Outcome,
) -> Outcome {
    let mut bench = setup(ctx, road)?;
    let result = body(ctx, &mut bench);
    for fault in ["paper-out", "cover-open", "offline"] {
        ctx.ask_lenient(&Verb::EmuposFault {
            fault: fault.into(),
            on: false,
        });
    }
    drop(bench);
    result
}

fn detect(ctx: &mut Ctx<'_>, bench: &mut Bench) -> Outcome {
    let mut printer = bench.open()?;
    let id = printer
        .device_id()
        .cloned()
        .ok_or_else(|| fail("no IEEE 1284 device ID was read at open"))?;
    ctx.step(format!("device ID: {id}"));
    let d = printer
        .detection()
        .cloned()
        .ok_or_else(|| fail("profile=auto made no detection"))?;
    ctx.step(format!(
        "detected from {}: {:?} {:?}: profile {} ({})",
        d.source, d.maker, d.model, d.profile.name, d.reason
    ));
    if d.source != "IEEE 1284 device ID" || d.profile.name != DETECTED_PROFILE {
        return Err(fail(format!(
            "detection from {:?} chose {}, not {DETECTED_PROFILE} from the device ID",
            d.source, d.profile.name
        )));
    }
    let declared = pos_escpos::detect::DeviceId::parse(DEVICE_ID.as_bytes())
        .map_err(|e| fail(format!("the gadget's own device ID does not parse: {e}")))?;
    if id != declared {
        return Err(fail(format!(
            "the device ID read is not the gadget's: {id} (declared {declared})"
        )));
    }
    let status = wait_status(&mut printer, PRINTER_LIMIT, &|s| s.is_ready())?;
    ctx.step(format!("status from emupos (DLE EOT): {}", names(status)));
    // Nothing at all: not even the drawer (emupos's sensor is set up as the profile reads it).
    if !status.is_empty() {
        return Err(fail(format!(
            "a ready emupos with its drawer closed reads {}",
            names(status)
        )));
    }
    drop(printer);
    bench.wait_bits(ctx, port_bits::<&str>(&[]), "ready")?;
    Ok(format!(
        "{}: device ID {} -> profile {DETECTED_PROFILE}; emupos ready; port status ready",
        bench.uri,
        id.model.as_deref().unwrap_or("?")
    ))
}

fn print(ctx: &mut Ctx<'_>, bench: &mut Bench) -> Outcome {
    let mut printer = bench.open()?;
    wait_status(&mut printer, PRINTER_LIMIT, &|s| s.is_ready())?;
    let n = nonce();
    let outcome = printer
        .print(&gadget_receipt(&n, 3))
        .map_err(|e| device_fail("print the receipt", &e))?;
    ctx.step(format!("print outcome: {}", outcome.name()));
    if !matches!(
        outcome,
        PrintOutcome::Confirmed | PrintOutcome::StatusVerified
    ) {
        return Err(fail(format!(
            "the receipt was neither confirmed nor status-verified: {}",
            outcome.name()
        )));
    }
    if !emupos_has(ctx, &n, Duration::from_secs(5))? {
        return Err(fail(format!("emupos rendered no receipt with {n}")));
    }
    Ok(format!(
        "{}: printed ({}), emupos rendered the receipt with {n}",
        bench.uri,
        outcome.name()
    ))
}

fn paper_out(ctx: &mut Ctx<'_>, bench: &mut Bench) -> Outcome {
    let mut printer = bench.open()?;
    wait_status(&mut printer, PRINTER_LIMIT, &|s| s.is_ready())?;
    let n = nonce();
    // Paper runs out after 400 bytes of the job's ~1.5 KB reached emupos: the rest is held.
    ctx.ask(&Verb::EmuposFaultAfter {
        bytes: 400,
        fault: "paper-out".into(),
    })?;
    match printer.print(&gadget_receipt(&n, 30)) {
        Err(e) if e.kind() == FaultKind::PaperOut => {
            ctx.step(format!("the job failed: {e} [{}]", e.kind()));
        }
        Err(e) => {
            return Err(fail(format!(
                "paper out mid-job failed as {}, not paper_out: {e}",
                e.kind()
            )));
        }
        Ok(o) => {
            return Err(fail(format!(
                "paper out mid-job ended {}: a receipt cut short would be reported printed",
                o.name()
            )));
        }
    }
    let state = ctx.ask(&Verb::EmuposState)?;
    if !state.contains("paper-out") {
        return Err(fail(format!("emupos does not say paper-out: {state}")));
    }
    if emupos_has(ctx, &n, Duration::ZERO)? {
        return Err(fail(
            "emupos rendered the receipt although its paper ran out",
        ));
    }
    let status = wait_status(&mut printer, PRINTER_LIMIT, &|s| {
        s.contains(PrinterConditions::PAPER_OUT)
    })?;
    ctx.step(format!("status: {}", names(status)));
    drop(printer);
    bench.wait_bits(ctx, port_bits(&["paper-out"]), "paper empty")?;
    ctx.ask(&Verb::EmuposFault {
        fault: "paper-out".into(),
        on: false,
    })?;
    bench.wait_bits(ctx, port_bits::<&str>(&[]), "ready again")?;
    // emupos prints what it held once paper is in, as a printer does.
    let resumed = emupos_has(ctx, &n, Duration::from_secs(5))?;
    ctx.step(format!(
        "the held rest printed after the paper came: {resumed}"
    ));
    let mut printer = bench.open()?;
    let status = wait_status(&mut printer, PRINTER_LIMIT, &|s| s.is_ready())?;
    ctx.step(format!("status after the paper came: {}", names(status)));
    Ok(format!(
        "{}: paper out mid-job failed as paper_out, nothing rendered, port status paper empty; \
         ready again after",
        bench.uri
    ))
}

fn cover_open(ctx: &mut Ctx<'_>, bench: &mut Bench) -> Outcome {
    let mut printer = bench.open()?;
    wait_status(&mut printer, PRINTER_LIMIT, &|s| s.is_ready())?;
    ctx.ask(&Verb::EmuposFault {
        fault: "cover-open".into(),
        on: true,
    })?;
    let status = wait_status(&mut printer, PRINTER_LIMIT, &|s| {
        s.contains(PrinterConditions::COVER_OPEN)
    })?;
    ctx.step(format!("status: {}", names(status)));
    let n = nonce();
    match printer.print(&gadget_receipt(&n, 2)) {
        Err(e) if e.kind() == FaultKind::CoverOpen => {
            ctx.step(format!("print refused: {e} [{}]", e.kind()));
        }
        Err(e) => {
            return Err(fail(format!(
                "with the cover open the print failed as {}, not cover_open: {e}",
                e.kind()
            )));
        }
        Ok(o) => {
            return Err(fail(format!(
                "with the cover open the print ended {}",
                o.name()
            )));
        }
    }
    drop(printer);
    bench.wait_bits(
        ctx,
        port_bits(&["cover-open"]),
        "cover open: not selected, error",
    )?;
    if emupos_has(ctx, &n, Duration::ZERO)? {
        return Err(fail(
            "emupos rendered a receipt refused with the cover open",
        ));
    }
    ctx.ask(&Verb::EmuposFault {
        fault: "cover-open".into(),
        on: false,
    })?;
    bench.wait_bits(ctx, port_bits::<&str>(&[]), "ready again")?;
    Ok(format!(
        "{}: cover open refused as cover_open, port status not selected + error, nothing \
         rendered",
        bench.uri
    ))
}

fn unplug(ctx: &mut Ctx<'_>, bench: &mut Bench) -> Outcome {
    let mut printer = bench.open()?;
    wait_status(&mut printer, PRINTER_LIMIT, &|s| s.is_ready())?;
    // The relay passes 1 KB of the job, then holds back: the gadget's queue fills and the
    // job's writes wait, as with a printer busy printing. Then the cable is pulled.
    bench.relay.hold_after(1024);
    let started = bench.relay.to_host();
    let job = std::thread::spawn(move || {
        let r = printer.print(&gadget_receipt("unplugged mid-job", 1200));
        (printer, r)
    });
    let t = Instant::now();
    while !bench.relay.holding() {
        if t.elapsed() >= PRINTER_LIMIT {
            return Err(fail(format!(
                "the job did not reach the relay: {} bytes in {} s",
                bench.relay.to_host() - started,
                PRINTER_LIMIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    if job.is_finished() {
        return Err(fail("the job ended before the unplug: nothing was mid-job"));
    }
    ctx.step(format!(
        "{} bytes of the job passed, the rest waits; unbinding the gadget",
        bench.relay.to_host() - started
    ));
    bench
        .gadget
        .unbind()
        .map_err(|e| fail(format!("unbind: {e}")))?;
    let unplugged = Instant::now();
    let (mut printer, result) = job
        .join()
        .map_err(|_| fail("the printing thread panicked"))?;
    match result {
        Err(e) if e.kind() == FaultKind::Disconnected => ctx.step(format!(
            "the job failed {} ms after the unplug: {e} [{}]",
            unplugged.elapsed().as_millis(),
            e.kind()
        )),
        Err(e) => {
            return Err(fail(format!(
                "the job cut by the unplug failed as {}, not disconnected: {e}",
                e.kind()
            )));
        }
        Ok(o) => {
            return Err(fail(format!(
                "the job cut by the unplug ended {}",
                o.name()
            )));
        }
    }
    match printer.status() {
        Err(e) if e.kind() == FaultKind::Disconnected => {
            ctx.step(format!("status after: {e} [{}]", e.kind()));
        }
        Err(e) => {
            return Err(fail(format!(
                "status after the unplug failed as {}, not disconnected: {e}",
                e.kind()
            )));
        }
        Ok(s) => {
            return Err(fail(format!(
                "the unplugged printer still answers status ({})",
                names(s)
            )));
        }
    }
    wait_gone(VID, PID, GADGET_LIMIT).map_err(|e| fail(e.to_string()))?;
    Ok(format!(
        "{}: unplugged mid-job, the job and the next status are disconnected",
        bench.uri
    ))
}

pub(super) fn usb_detect(ctx: &mut Ctx<'_>) -> Outcome {
    with_cleanup(ctx, Road::Usb, detect)
}
pub(super) fn usblp_detect(ctx: &mut Ctx<'_>) -> Outcome {
    with_cleanup(ctx, Road::Usblp, detect)
}
pub(super) fn usb_print(ctx: &mut Ctx<'_>) -> Outcome {
    with_cleanup(ctx, Road::Usb, print)
}
pub(super) fn usblp_print(ctx: &mut Ctx<'_>) -> Outcome {
    with_cleanup(ctx, Road::Usblp, print)
}
pub(super) fn usb_paper_out(ctx: &mut Ctx<'_>) -> Outcome {
    with_cleanup(ctx, Road::Usb, paper_out)
}
pub(super) fn usblp_paper_out(ctx: &mut Ctx<'_>) -> Outcome {
    with_cleanup(ctx, Road::Usblp, paper_out)
}
pub(super) fn usb_cover_open(ctx: &mut Ctx<'_>) -> Outcome {
    with_cleanup(ctx, Road::Usb, cover_open)
}
pub(super) fn usblp_cover_open(ctx: &mut Ctx<'_>) -> Outcome {
    with_cleanup(ctx, Road::Usblp, cover_open)
}
pub(super) fn usb_unplug(ctx: &mut Ctx<'_>) -> Outcome {
    with_cleanup(ctx, Road::Usb, unplug)
}
pub(super) fn usblp_unplug(ctx: &mut Ctx<'_>) -> Outcome {
    with_cleanup(ctx, Road::Usblp, unplug)
}
