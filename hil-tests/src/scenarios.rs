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
    /// The virtual lane with its chip reader built as a real reader model of pos-ccid's
    /// virtual reader: `sim:ccid?model=NAME` (`hil-tests --reader-model NAME`).
    VirtualModel {
        /// The model's name (`pos_ccid::sim::MODELS`).
        model: String,
    },
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
            Target::VirtualModel { model } => format!("virtual lane, reader model {model}"),
            Target::Rig { path, .. } => format!("rig {path}"),
        }
    }

    fn rig(&self) -> Option<&Rig> {
        match self {
            Target::Virtual | Target::VirtualModel { .. } => None,
            Target::Rig { rig, .. } => Some(rig),
        }
    }

    /// The devices to open.
    pub fn device_config(&self) -> DeviceConfig {
        match self {
            Target::Virtual => DeviceConfig::default(),
            Target::VirtualModel { model } => DeviceConfig {
                reader: format!("sim:ccid?model={model}"),
                ..DeviceConfig::default()
            },
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
        let profile = matches!(target, Target::Virtual | Target::VirtualModel { .. })
            .then_some(Profile::VisaPse.into());
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

mod chip;
mod links;
mod printer;
mod sale;
mod stripe;

pub use chip::*;
use links::*;
use printer::*;
use sale::*;
use stripe::*;

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
