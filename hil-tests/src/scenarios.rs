//! The scenarios and the runner.
//!
//! Each [`Scenario`] is a named case (`group.case`) whose code runs unchanged on the
//! virtual lane and on a rig: devices are the lane's HAL trait objects
//! ([`pos_terminal::Devices`], opened by [`pos_lane::open`]), and whatever a person has to
//! do goes through an [`Operator`].

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pos_acquirer::TcpAcquirer;
use pos_acquirer::sim::{FakeHost, HostRules};
use pos_emv::profile_card::Profile;
use pos_hal::{
    CutKind, DeviceEvent, Document, Fault, FaultKind, PrintOutcome, PrinterConditions, RecvError,
    SlotState, Subscription, TrackStatus,
};
use pos_lane::SimLane;
use pos_link::{PtyPair, SerialLink, SerialSettings, TcpLink, loopback};
use pos_terminal::config::DeviceConfig;
use pos_terminal::devices::{Msr, Printer, Reader};
use pos_terminal::{Config, Devices, InjectedFault, NoHook, State, StepHook, Terminal, TxnRequest};

use crate::operator::{Action, Operator, StepOutcome};
use crate::report::{CaseReport, SuiteReport, Verdict};
use crate::rig::Rig;

/// The first line of the test page the printer scenarios print.
pub const TEST_PAGE_TITLE: &str = "HIL TEST PAGE";

/// The amount of the end-to-end sale, in minor units (EUR 12.50).
pub const SALE_AMOUNT: u64 = 1250;

/// The default time limit of one interactive step.
pub const DEFAULT_STEP_LIMIT: Duration = Duration::from_secs(20);

/// How a case ends early: failed or skipped. A case that returns `Ok` passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// An expectation did not hold.
    Fail {
        /// What went wrong.
        message: String,
        /// What to check, when known.
        hint: Option<String>,
    },
    /// The case cannot run here.
    Skip(String),
}

/// What a scenario returns.
pub type Outcome = Result<(), End>;

fn fail(message: impl Into<String>) -> End {
    End::Fail {
        message: message.into(),
        hint: None,
    }
}

/// A failure for a device error: the message names the operation, the error and its kind;
/// the hint says what to check for that kind.
fn device_fail<E: Fault + std::fmt::Display>(what: &str, e: &E) -> End {
    End::Fail {
        message: format!("{what}: {e} [{}]", e.kind()),
        hint: hint(e.kind()).map(str::to_string),
    }
}

/// What a technician checks for a fault kind.
pub fn hint(kind: FaultKind) -> Option<&'static str> {
    Some(match kind {
        FaultKind::Disconnected => {
            "check the cable and power; `posctl devices` lists what is there"
        }
        FaultKind::PermissionDenied => {
            "install the udev rules (udev/) and add the user to group pos"
        }
        FaultKind::NotFound => "check the URI against `posctl devices`",
        FaultKind::Timeout => "the device did not answer in time: check cable, baud rate, power",
        FaultKind::CardAbsent => "insert the card, chip first and facing up",
        FaultKind::CardMute => {
            "the card does not answer: clean the contacts or use another test card"
        }
        FaultKind::CardRemoved => "leave the card in until the step is done",
        FaultKind::CardUnsupported => "use an EMV test card the reader supports",
        FaultKind::BadRead => "swipe again, steadily, stripe facing the head",
        FaultKind::PaperOut => "load a paper roll",
        FaultKind::PaperNearEnd => "load a new paper roll soon",
        FaultKind::CoverOpen => "close the printer cover",
        FaultKind::CutterJam => "free the cutter, then power-cycle the printer",
        FaultKind::PrinterOffline => "check the printer is on and online (not in feed/error mode)",
        FaultKind::InvalidInput => "check the URI and its options",
        _ => return None,
    })
}

/// The run's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteOptions {
    /// The time limit of each interactive step.
    pub step_limit: Duration,
    /// Only these scenarios (a name `reader.atr` or a group `reader`); empty: all.
    pub only: Vec<String>,
}

impl Default for SuiteOptions {
    fn default() -> Self {
        SuiteOptions {
            step_limit: DEFAULT_STEP_LIMIT,
            only: Vec::new(),
        }
    }
}

/// What the suite runs against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The virtual lane: `pos_lane::open(&DeviceConfig::default(), ..)`, fake host on
    /// 127.0.0.1, echo peers for the links.
    Virtual,
    /// The devices a rig file names.
    Rig {
        /// The rig.
        rig: Rig,
        /// Its file, for messages.
        path: String,
    },
}

impl Target {
    /// `virtual lane` or `rig FILE`.
    pub fn describe(&self) -> String {
        match self {
            Target::Virtual => "virtual lane".into(),
            Target::Rig { path, .. } => format!("rig {path}"),
        }
    }

    fn rig(&self) -> Option<&Rig> {
        match self {
            Target::Virtual => None,
            Target::Rig { rig, .. } => Some(rig),
        }
    }

    /// The devices to open.
    pub fn device_config(&self) -> DeviceConfig {
        match self {
            Target::Virtual => DeviceConfig::default(),
            Target::Rig { rig, .. } => rig.device_config(),
        }
    }
}

/// What a scenario works with.
pub struct Ctx<'a> {
    devices: &'a mut Devices,
    sim: Option<SimLane>,
    operator: &'a mut dyn Operator,
    target: &'a Target,
    limit: Duration,
    steps: Vec<String>,
}

impl Ctx<'_> {
    fn note(&mut self, line: impl Into<String>) {
        self.steps.push(line.into());
    }

    /// The simulated lane when `device` (`reader`, `printer`, `msr`) is virtual.
    fn sim_for(&self, device: &str) -> Option<SimLane> {
        self.sim
            .as_ref()
            .filter(|s| match device {
                "reader" => s.has_reader(),
                "printer" => s.has_printer(),
                _ => s.has_msr(),
            })
            .cloned()
    }
}

/// Ask `operator` for a step; map its outcome to the case's.
fn ask(
    operator: &mut dyn Operator,
    steps: &mut Vec<String>,
    limit: Duration,
    action: Action,
    instruction: &str,
    done: &mut dyn FnMut() -> Result<bool, String>,
) -> Outcome {
    match operator.ask(action, instruction, limit, done) {
        StepOutcome::Done(after) => {
            steps.push(format!(
                "{instruction}: done after {} ms",
                after.as_millis()
            ));
            Ok(())
        }
        StepOutcome::TimedOut => Err(End::Fail {
            message: format!(
                "timed out waiting for: {instruction} ({:.1} s)",
                limit.as_secs_f64()
            ),
            hint: Some(format!(
                "do the step within the limit (--step-timeout SECS); {}",
                match action.device() {
                    "reader" => "check the reader reports it: posctl reader list",
                    "printer" => "check the printer reports it: posctl printer watch --device URI",
                    _ => "swipe steadily, stripe facing the reader's head",
                }
            )),
        }),
        StepOutcome::Declined(why) => Err(End::Skip(why)),
        StepOutcome::Failed(why) => Err(fail(why)),
    }
}

/// A scenario: a named case and its code.
#[derive(Clone, Copy)]
pub struct Scenario {
    /// `group.case`.
    pub name: &'static str,
    /// One line on what it checks.
    pub about: &'static str,
    run: fn(&mut Ctx<'_>) -> Outcome,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Every scenario, in the order the suite runs them.
pub fn scenarios() -> Vec<Scenario> {
    macro_rules! s {
        ($name:literal, $about:literal, $f:path) => {
            Scenario {
                name: $name,
                about: $about,
                run: $f,
            }
        };
    }
    vec![
        s!(
            "links.loopback",
            "every byte value echoes through each loopback link",
            links_loopback
        ),
        s!(
            "reader.card_inserted",
            "a card inserted in the chip reader is detected",
            card_inserted
        ),
        s!(
            "reader.atr",
            "the card powers on and its ATR is well-formed",
            atr
        ),
        s!(
            "reader.apdu_exchange",
            "SELECT PSE is answered 9000 or 61xx",
            apdu_exchange
        ),
        s!(
            "reader.card_removed",
            "a card pulled out of the reader is detected",
            card_removed
        ),
        s!(
            "reader.removed_mid_exchange",
            "a card pulled during exchanges fails as card_removed",
            removed_mid_exchange
        ),
        s!(
            "reader.card_mute",
            "a card that stops answering fails as card_mute (virtual only)",
            card_mute
        ),
        s!(
            "reader.unplugged",
            "an unplugged reader fails as disconnected, and comes back",
            unplugged
        ),
        s!(
            "msr.swipe",
            "a swipe reads, with each track's status",
            swipe
        ),
        s!(
            "printer.status_ready",
            "the printer reports ready",
            status_ready
        ),
        s!(
            "printer.print_confirmed",
            "a test page prints and is confirmed",
            print_confirmed
        ),
        s!(
            "printer.paper_out",
            "paper out shows in status and fails the print as paper_out",
            paper_out
        ),
        s!(
            "printer.cover_open",
            "an open cover shows in status and fails the print as cover_open",
            cover_open
        ),
        s!(
            "printer.cutter_jam",
            "a jammed cutter fails the print as cutter_jam (virtual only)",
            cutter_jam
        ),
        s!(
            "printer.offline",
            "an offline printer fails the print as printer_offline (virtual only)",
            offline
        ),
        s!(
            "sale.end_to_end",
            "a sale through the terminal service completes, journaled, receipt printed",
            sale
        ),
    ]
}

/// The scenarios `only` selects (names or groups), in suite order; all when `only` is empty.
///
/// Errors: a name that is neither a scenario nor a group, in words.
pub fn select(only: &[String]) -> Result<Vec<Scenario>, String> {
    let all = scenarios();
    for o in only {
        let known = all
            .iter()
            .any(|s| s.name == o || s.name.split_once('.').is_some_and(|(g, _)| g == o));
        if !known {
            return Err(format!(
                "unknown scenario {o:?} (--list shows the names; a group like `reader` selects all of its cases)"
            ));
        }
    }
    Ok(all
        .into_iter()
        .filter(|s| {
            only.is_empty()
                || only
                    .iter()
                    .any(|o| s.name == o || s.name.split_once('.').is_some_and(|(g, _)| g == o))
        })
        .collect())
}

/// What the runner reports as it goes.
#[derive(Debug)]
pub enum Progress<'a> {
    /// A case starts.
    Start(&'a str),
    /// A case ended.
    Done(&'a CaseReport),
}

/// Run the selected scenarios against `target`. `operator` makes the operator once the lane
/// is open (it gets the lane's simulated part, if any); `progress` hears each case start
/// and end.
///
/// A lane that does not open is a failed `lane.open` case (the device scenarios are then
/// skipped), never a fall-back to virtual devices.
///
/// Errors: an unknown name in `options.only`.
pub fn run(
    target: &Target,
    options: &SuiteOptions,
    operator: &mut dyn FnMut(Option<SimLane>) -> Box<dyn Operator>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<SuiteReport, String> {
    let selected = select(&options.only)?;
    let start = Instant::now();
    let mut cases = Vec::new();
    let needs_lane = selected.iter().any(|s| !s.name.starts_with("links."));
    let opened = Instant::now();
    let lane = if needs_lane {
        let profile = matches!(target, Target::Virtual).then_some(Profile::VisaPse.into());
        match pos_lane::open(&target.device_config(), profile) {
            Ok(lane) => Some(lane),
            Err(e) => {
                let case = CaseReport {
                    name: "lane.open".into(),
                    verdict: Verdict::Fail {
                        message: format!(
                            "the devices of the {} do not open: {e}",
                            target.describe()
                        ),
                        hint: hint(e.kind()).map(str::to_string),
                    },
                    duration: opened.elapsed(),
                    steps: Vec::new(),
                };
                progress(Progress::Done(&case));
                cases.push(case);
                None
            }
        }
    } else {
        None
    };
    let (mut devices, sim) = match lane {
        Some(l) => (l.devices, l.sim),
        None => (Devices::default(), None),
    };
    let opened_ok = !needs_lane || cases.is_empty();
    let mut op = operator(sim.clone());
    for s in selected {
        progress(Progress::Start(s.name));
        let t = Instant::now();
        let mut ctx = Ctx {
            devices: &mut devices,
            sim: sim.clone(),
            operator: op.as_mut(),
            target,
            limit: options.step_limit,
            steps: Vec::new(),
        };
        let result = if !opened_ok && !s.name.starts_with("links.") {
            Err(End::Skip(
                "the lane's devices did not open (see lane.open)".into(),
            ))
        } else {
            // Each case starts from a healthy virtual lane: card in, printer fixed, reader
            // plugged.
            match &sim {
                Some(sim) => sim
                    .reset(ctx.devices)
                    .map_err(|e| device_fail("resetting the virtual lane", &e)),
                None => Ok(()),
            }
            .and_then(|()| (s.run)(&mut ctx))
        };
        let verdict = match result {
            Ok(()) => Verdict::Pass,
            Err(End::Fail { message, hint }) => Verdict::Fail { message, hint },
            Err(End::Skip(reason)) => Verdict::Skip { reason },
        };
        let case = CaseReport {
            name: s.name.to_string(),
            verdict,
            duration: t.elapsed(),
            steps: ctx.steps,
        };
        progress(Progress::Done(&case));
        cases.push(case);
    }
    Ok(SuiteReport {
        target: target.describe(),
        cases,
        duration: start.elapsed(),
    })
}

// ---------------------------------------------------------------------------------------
// links

fn links_loopback(ctx: &mut Ctx<'_>) -> Outcome {
    let Some(rig) = ctx.target.rig() else {
        return virtual_loopback(ctx);
    };
    let uris = rig.loopback_uris();
    if uris.is_empty() {
        return Err(End::Skip("the rig names no [links] loopback".into()));
    }
    for uri in uris {
        let mut link = pos_link::open(&uri, Duration::from_secs(3)).map_err(|e| End::Fail {
            message: format!("{uri}: cannot open: {e} [{}]", e.kind()),
            hint: e.hint().map(str::to_string),
        })?;
        let report = loopback::run(&mut link, rig.links.bytes, rig.timeout());
        ctx.note(report.to_string());
        if !report.passed() {
            return Err(End::Fail {
                message: format!("{uri}: {report}"),
                hint: Some("check the loopback plug (TX-RX, RTS-CTS) or the echo peer".into()),
            });
        }
    }
    Ok(())
}

/// The virtual echo peers: a pseudo-terminal and a TCP listener on 127.0.0.1.
fn virtual_loopback(ctx: &mut Ctx<'_>) -> Outcome {
    let link_fail = |what: &str, e: &pos_link::LinkError| device_fail(what, e);
    let (master, slave) = PtyPair::open()
        .map_err(|e| link_fail("pseudo-terminal", &e))?
        .into_parts();
    let echo = loopback::spawn_echo(master, Duration::from_secs(2));
    let mut port = SerialLink::open(&slave, SerialSettings::default())
        .map_err(|e| link_fail("pseudo-terminal slave", &e))?;
    let report = loopback::run(&mut port, 4096, Duration::from_secs(2));
    ctx.note(report.to_string());
    drop(port);
    let _ = echo.join();
    if !report.passed() {
        return Err(fail(format!("pseudo-terminal: {report}")));
    }

    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| fail(format!("bind: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| fail(format!("local address: {e}")))?
        .port();
    let server = std::thread::spawn(move || -> Result<(), String> {
        let (s, _) = listener.accept().map_err(|e| e.to_string())?;
        let link = TcpLink::from_stream(s).map_err(|e| e.to_string())?;
        let _ = loopback::spawn_echo(link, Duration::from_secs(2)).join();
        Ok(())
    });
    let mut link = TcpLink::connect("127.0.0.1", port, Duration::from_secs(2))
        .map_err(|e| link_fail("tcp connect", &e))?;
    let report = loopback::run(&mut link, 4096, Duration::from_secs(2));
    ctx.note(report.to_string());
    drop(link);
    let _ = server.join();
    if !report.passed() {
        return Err(fail(format!("tcp: {report}")));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// reader

/// SELECT the contact Payment System Environment, `1PAY.SYS.DDF01` (the contact card's
/// directory; `2PAY.SYS.DDF01`, the PPSE, is contactless only).
pub const SELECT_PSE: &[u8] = b"\x00\xA4\x04\x00\x0E1PAY.SYS.DDF01\x00";

fn reader(devices: &mut Devices) -> Result<&mut Reader, End> {
    devices
        .reader
        .as_mut()
        .ok_or_else(|| End::Skip("no chip reader on this lane ([reader] not in the rig)".into()))
}

fn msr(devices: &mut Devices) -> Result<&mut Msr, End> {
    devices
        .msr
        .as_mut()
        .ok_or_else(|| End::Skip("no stripe reader on this lane ([msr] not in the rig)".into()))
}

fn printer(devices: &mut Devices) -> Result<&mut Printer, End> {
    devices
        .printer
        .as_mut()
        .ok_or_else(|| End::Skip("no printer on this lane ([printer] not in the rig)".into()))
}

fn card_present(r: &mut Reader) -> Result<bool, String> {
    r.slot_status(0)
        .map(|s| s.contains(SlotState::CARD_PRESENT))
        .map_err(|e| format!("slot status: {e} [{}]", e.kind()))
}

/// Once a card insertion was seen on `events`, wait until the driver is quiet (a removal
/// notification from before may still come), at most 600 ms.
fn settle(events: Option<Subscription>) {
    let Some(events) = events else { return };
    let end = Instant::now() + Duration::from_millis(600);
    let mut seen = false;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let wait = if seen {
            left.min(Duration::from_millis(50))
        } else {
            left
        };
        match events.recv_timeout(wait) {
            Ok(e) => seen |= matches!(e.event, DeviceEvent::CardInserted { slot: 0 }),
            Err(RecvError::Timeout | RecvError::Closed) => return,
        }
    }
}

/// Make sure a card is in the reader: ask for it when it is not.
fn ensure_card(ctx: &mut Ctx<'_>) -> Outcome {
    let r = reader(ctx.devices)?;
    if card_present(r).map_err(fail)? {
        return Ok(());
    }
    let events = r.subscribe().ok();
    ask(
        ctx.operator,
        &mut ctx.steps,
        ctx.limit,
        Action::InsertCard,
        "insert the test card in the chip reader now",
        &mut || card_present(r),
    )?;
    settle(events);
    Ok(())
}

/// Power the card on and SELECT the PSE; the response's status words.
fn select_pse(r: &mut Reader) -> Result<[u8; 2], End> {
    r.power_on(0).map_err(|e| device_fail("power on", &e))?;
    let resp = r
        .transmit(0, SELECT_PSE)
        .map_err(|e| device_fail("SELECT PSE", &e))?;
    match resp.as_slice() {
        [.., a, b] => Ok([*a, *b]),
        _ => Err(fail(format!(
            "SELECT PSE: response of {} bytes, no status words",
            resp.len()
        ))),
    }
}

fn sw_ok(sw: [u8; 2]) -> bool {
    sw == [0x90, 0x00] || sw[0] == 0x61
}

fn card_inserted(ctx: &mut Ctx<'_>) -> Outcome {
    let r = reader(ctx.devices)?;
    if card_present(r).map_err(fail)? {
        ask(
            ctx.operator,
            &mut ctx.steps,
            ctx.limit,
            Action::RemoveCard,
            "take the card out of the chip reader",
            &mut || card_present(r).map(|p| !p),
        )?;
    }
    let events = r.subscribe().ok();
    ask(
        ctx.operator,
        &mut ctx.steps,
        ctx.limit,
        Action::InsertCard,
        "insert the test card in the chip reader now",
        &mut || card_present(r),
    )?;
    settle(events);
    ctx.note("card present in slot 0");
    Ok(())
}

fn atr(ctx: &mut Ctx<'_>) -> Outcome {
    ensure_card(ctx)?;
    let r = reader(ctx.devices)?;
    let atr = r.power_on(0).map_err(|e| device_fail("power on", &e))?;
    let bytes = atr.as_bytes().to_vec();
    ctx.note(format!("ATR {}", atr.to_hex()));
    if bytes.len() < 2 || !matches!(bytes[0], 0x3B | 0x3F) {
        return Err(fail(format!(
            "ATR {} is not an ISO 7816-3 ATR (TS must be 3B or 3F)",
            atr.to_hex()
        )));
    }
    Ok(())
}

fn apdu_exchange(ctx: &mut Ctx<'_>) -> Outcome {
    ensure_card(ctx)?;
    let r = reader(ctx.devices)?;
    let sw = select_pse(r)?;
    let _ = r.power_off(0);
    ctx.note(format!(
        "SELECT 1PAY.SYS.DDF01 -> SW {:02X}{:02X}",
        sw[0], sw[1]
    ));
    if !sw_ok(sw) {
        return Err(End::Fail {
            message: format!(
                "SELECT PSE answered {:02X}{:02X}, not 9000 or 61xx",
                sw[0], sw[1]
            ),
            hint: Some("use an EMV test card with a PSE (6A82: the card has none)".into()),
        });
    }
    Ok(())
}

fn card_removed(ctx: &mut Ctx<'_>) -> Outcome {
    ensure_card(ctx)?;
    let r = reader(ctx.devices)?;
    ask(
        ctx.operator,
        &mut ctx.steps,
        ctx.limit,
        Action::RemoveCard,
        "pull the card out of the chip reader now",
        &mut || card_present(r).map(|p| !p),
    )?;
    ctx.note("slot 0 empty");
    Ok(())
}

fn removed_mid_exchange(ctx: &mut Ctx<'_>) -> Outcome {
    ensure_card(ctx)?;
    let r = reader(ctx.devices)?;
    let sw = select_pse(r)?;
    if !sw_ok(sw) {
        return Err(fail(format!(
            "SELECT PSE answered {:02X}{:02X} before the pull",
            sw[0], sw[1]
        )));
    }
    let mut exchanges = 0u32;
    let mut kind = None;
    let mut message = String::new();
    ask(
        ctx.operator,
        &mut ctx.steps,
        ctx.limit,
        Action::RemoveCard,
        "pull the card out of the chip reader now (it is being read)",
        &mut || match r.transmit(0, SELECT_PSE) {
            Ok(_) => {
                exchanges += 1;
                Ok(false)
            }
            Err(e) => {
                kind = Some(e.kind());
                message = e.to_string();
                Ok(true)
            }
        },
    )?;
    ctx.note(format!("{exchanges} exchanges answered, then: {message}"));
    match kind {
        Some(FaultKind::CardRemoved) => Ok(()),
        Some(k) => Err(fail(format!(
            "the pulled card was classified {k}, not card_removed: {message}"
        ))),
        None => Err(fail("no exchange failed")),
    }
}

fn card_mute(ctx: &mut Ctx<'_>) -> Outcome {
    let Some(sim) = ctx.sim_for("reader") else {
        reader(ctx.devices)?;
        return Err(End::Skip(
            "virtual lane only: a real card cannot be made mute on demand".into(),
        ));
    };
    ensure_card(ctx)?;
    let r = reader(ctx.devices)?;
    let sw = select_pse(r)?;
    if !sw_ok(sw) {
        return Err(fail(format!(
            "SELECT PSE answered {:02X}{:02X}",
            sw[0], sw[1]
        )));
    }
    sim.mute_card()
        .map_err(|e| device_fail("mute the card", &e))?;
    ctx.steps.push("card muted".into());
    match r.transmit(0, SELECT_PSE) {
        Err(e) if e.kind() == FaultKind::CardMute => {
            ctx.steps.push(format!("classified: {e}"));
            Ok(())
        }
        Err(e) => Err(fail(format!(
            "the mute card was classified {}, not card_mute: {e}",
            e.kind()
        ))),
        Ok(_) => Err(fail("the mute card answered")),
    }
}

fn unplugged(ctx: &mut Ctx<'_>) -> Outcome {
    let r = reader(ctx.devices)?;
    let mut kind = None;
    let mut message = String::new();
    ask(
        ctx.operator,
        &mut ctx.steps,
        ctx.limit,
        Action::UnplugReader,
        "unplug the chip reader's cable now",
        &mut || match r.slot_status(0) {
            Ok(_) => Ok(false),
            Err(e) => {
                kind = Some(e.kind());
                message = e.to_string();
                Ok(true)
            }
        },
    )?;
    ctx.note(format!("reader: {message}"));
    if kind != Some(FaultKind::Disconnected) {
        return Err(fail(format!(
            "the unplugged reader was classified {}, not disconnected: {message}",
            kind.map_or("nothing".to_string(), |k| k.to_string())
        )));
    }
    // Back to a working reader for the cases after this one.
    if let Some(sim) = ctx.sim_for("reader") {
        sim.reset(ctx.devices)
            .map_err(|e| device_fail("re-plugging the virtual reader", &e))?;
        ctx.note("virtual reader re-plugged");
        return Ok(());
    }
    let uri = ctx.target.device_config().reader;
    let config = DeviceConfig {
        reader: uri,
        printer: "none".into(),
        msr: "none".into(),
    };
    let mut fresh = None;
    ask(
        ctx.operator,
        &mut ctx.steps,
        ctx.limit,
        Action::PlugReader,
        "plug the chip reader back in",
        &mut || match pos_lane::open(&config, None) {
            Ok(lane) => {
                fresh = lane.devices.reader;
                Ok(fresh.is_some())
            }
            Err(_) => Ok(false),
        },
    )?;
    ctx.devices.reader = fresh;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// msr

fn swipe(ctx: &mut Ctx<'_>) -> Outcome {
    let m = msr(ctx.devices)?;
    let mut got = None;
    let mut bad_reads = 0u32;
    ask(
        ctx.operator,
        &mut ctx.steps,
        ctx.limit,
        Action::Swipe,
        "swipe the test card through the stripe reader now",
        &mut || match m.wait_for_swipe(Duration::from_millis(100)) {
            Ok(s) => {
                got = Some(s);
                Ok(true)
            }
            Err(e) if e.kind() == FaultKind::Timeout => Ok(false),
            // Swipe again: a technician's bad swipe is not the reader's fault.
            Err(e) if e.kind() == FaultKind::BadRead => {
                bad_reads += 1;
                Ok(false)
            }
            Err(e) => Err(format!("waiting for a swipe: {e} [{}]", e.kind())),
        },
    )?;
    let Some(s) = got else {
        return Err(fail("no swipe"));
    };
    let statuses = s.statuses().map(TrackStatus::name).join("/");
    // The PAN: track 2 up to '=', else track 1 after 'B' up to '^'. Only ever shown masked.
    let pan = s.tracks[1]
        .data
        .as_ref()
        .and_then(|d| d.expose().split(|b| *b == b'=').next().map(<[u8]>::to_vec))
        .or_else(|| {
            s.tracks[0].data.as_ref().and_then(|d| {
                d.expose()
                    .strip_prefix(b"B")
                    .and_then(|t| t.split(|b| *b == b'^').next())
                    .map(<[u8]>::to_vec)
            })
        })
        .map(|p| pos_hal::mask_pan(&String::from_utf8_lossy(&p)));
    ctx.note(format!(
        "tracks {statuses}, card {}{}",
        pan.as_deref().unwrap_or("(no PAN)"),
        if bad_reads > 0 {
            format!(", after {bad_reads} bad reads")
        } else {
            String::new()
        }
    ));
    if !s.is_clean() {
        return Err(End::Fail {
            message: format!("the swipe did not read cleanly: tracks {statuses}"),
            hint: hint(FaultKind::BadRead).map(str::to_string),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// printer

fn ready(p: &mut Printer) -> Result<PrinterConditions, End> {
    p.status().map_err(|e| device_fail("printer status", &e))
}

fn not_ready(conditions: PrinterConditions) -> End {
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

fn test_page(what: &str) -> Document {
    let mut d = Document::new();
    d.text(TEST_PAGE_TITLE)
        .text(what)
        .text("ASCII: ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789")
        .feed(2)
        .cut(CutKind::Full);
    d
}

fn status_ready(ctx: &mut Ctx<'_>) -> Outcome {
    let p = printer(ctx.devices)?;
    let status = ready(p)?;
    ctx.note(format!("status: {}", status.names().join(", ")));
    if !status.is_ready() {
        return Err(not_ready(status));
    }
    Ok(())
}

fn print_confirmed(ctx: &mut Ctx<'_>) -> Outcome {
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
fn technician_fault(
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

fn paper_out(ctx: &mut Ctx<'_>) -> Outcome {
    technician_fault(
        ctx,
        Action::RemovePaper,
        "take the paper roll out of the printer now",
        PrinterConditions::PAPER_OUT,
        FaultKind::PaperOut,
    )
}

fn cover_open(ctx: &mut Ctx<'_>) -> Outcome {
    technician_fault(
        ctx,
        Action::OpenCover,
        "open the printer cover now",
        PrinterConditions::COVER_OPEN,
        FaultKind::CoverOpen,
    )
}

/// A printer fault only the virtual printer can make on demand.
fn injected_fault(ctx: &mut Ctx<'_>, fault: InjectedFault, kind: FaultKind) -> Outcome {
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

fn cutter_jam(ctx: &mut Ctx<'_>) -> Outcome {
    injected_fault(ctx, InjectedFault::CutterJam, FaultKind::CutterJam)
}

fn offline(ctx: &mut Ctx<'_>) -> Outcome {
    injected_fault(
        ctx,
        InjectedFault::PrinterOffline,
        FaultKind::PrinterOffline,
    )
}

// ---------------------------------------------------------------------------------------
// sale

fn sale(ctx: &mut Ctx<'_>) -> Outcome {
    reader(ctx.devices)?;
    ensure_card(ctx)?;
    let dir = tempfile::tempdir().map_err(|e| fail(format!("temporary journal directory: {e}")))?;
    let rig_host = ctx.target.rig().and_then(|r| r.host.clone());
    let fake = match &rig_host {
        Some(_) => None,
        None => Some(Arc::new(
            FakeHost::start("127.0.0.1:0", HostRules::default())
                .map_err(|e| fail(format!("fake host on 127.0.0.1: {e}")))?,
        )),
    };
    let address = match (&rig_host, &fake) {
        (Some(h), _) => h.address.clone(),
        (None, Some(f)) => f.addr().to_string(),
        (None, None) => return Err(fail("no host")),
    };
    let mut config = Config {
        journal: Some(dir.path().join("journal.sqlite")),
        card_timeout_ms: u64::try_from(ctx.limit.as_millis()).unwrap_or(u64::MAX),
        devices: ctx.target.device_config(),
        ..Config::default()
    };
    config.acquirer.address = address.clone();
    if fake.is_some() {
        config.acquirer.connect_timeout_ms = 2_000;
        config.acquirer.response_timeout_ms = 5_000;
    }
    let settings = config
        .acquirer_settings(&address)
        .map_err(|e| fail(format!("acquirer settings: {e}")))?;
    let devices = std::mem::take(ctx.devices);
    let mut terminal = Terminal::open(config, devices, Box::new(TcpAcquirer::new(settings)))
        .map_err(|e| fail(format!("the terminal service does not open: {e}")))?;
    if let Ok(keys) = pos_emv::profile_card::test_and_sim_ca_keys() {
        terminal.set_ca_keys(keys);
    }
    ctx.note(format!(
        "sale EUR {}.{:02} to {}",
        SALE_AMOUNT / 100,
        SALE_AMOUNT % 100,
        if fake.is_some() {
            format!("the fake host at {address}")
        } else {
            format!("the host at {address}")
        }
    ));
    let mut sim_hook;
    let mut no_hook = NoHook;
    let hook: &mut dyn StepHook = match &ctx.sim {
        Some(sim) => {
            sim_hook = sim.hook(Vec::new(), None);
            &mut sim_hook
        }
        None => &mut no_hook,
    };
    let result = terminal.run(&TxnRequest::sale(SALE_AMOUNT), hook);
    // The devices go back to the lane whatever happened.
    *ctx.devices = std::mem::take(terminal.devices_mut());
    let res = result.map_err(|e| fail(format!("the terminal service failed: {e}")))?;
    ctx.note(format!(
        "txn {}: {} card {} entry {} auth {} rrn {}",
        res.id,
        res.state,
        res.pan_masked.as_deref().unwrap_or("-"),
        res.entry_mode.as_deref().unwrap_or("-"),
        res.auth_code.as_deref().unwrap_or("-"),
        res.rrn.as_deref().unwrap_or("-"),
    ));
    if res.state != State::Completed {
        return Err(End::Fail {
            message: format!(
                "the sale ended {}: {}",
                res.state,
                res.reason.as_deref().unwrap_or("no reason given")
            ),
            hint: Some(
                "the case's steps and `posctl journal evidence` say where it stopped".into(),
            ),
        });
    }
    let journaled = terminal
        .journal()
        .get(res.id)
        .map_err(|e| fail(format!("journal: {e}")))?;
    if journaled.state != State::Completed {
        return Err(fail(format!(
            "the journal says {}, the result says completed",
            journaled.state
        )));
    }
    if ctx.devices.printer.is_some() && res.receipt.is_none() {
        return Err(fail("the sale completed but no receipt was printed"));
    }
    if let Some(host) = &fake {
        let approved = host.ledger().approved_not_reversed().len();
        if approved != 1 {
            return Err(fail(format!(
                "the fake host has {approved} approved authorizations, expected 1"
            )));
        }
        ctx.note("the fake host's ledger has the approval");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_are_unique_grouped_and_selectable() {
        let all = scenarios();
        let mut names: Vec<_> = all.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        assert!(all.iter().all(|s| s.name.contains('.')));
        let reader = select(&["reader".into()]).unwrap();
        assert!(reader.len() >= 6 && reader.iter().all(|s| s.name.starts_with("reader.")));
        let one = select(&["msr.swipe".into(), "links".into()]).unwrap();
        assert_eq!(
            one.iter().map(|s| s.name).collect::<Vec<_>>(),
            ["links.loopback", "msr.swipe"]
        );
        assert!(select(&["readr".into()]).unwrap_err().contains("readr"));
    }
}
