//! `rig-guest`: the program the QEMU rig's guest runs after boot.
//!
//! It opens the control channel (`/dev/ttyS1`), reads `rig.only` and `rig.bench` from
//! `/proc/cmdline`, runs the rig's own cases, then the hil-tests suite against QEMU's
//! devices (the host doing the technician's steps), then the benchmarks, and ends with
//! `END`. Every case goes to the host as a `CASE` line (the suite's as `suite.NAME`) and to
//! the console as a human line. The exit code is 0 whatever the cases found (the host
//! judges); 2 when the control channel does not open.
//!
//! Outside the rig (to try it against a fake host on a pseudo-terminal), the environment
//! variables `RIG_GUEST_CONTROL` (a tty path instead of `/dev/ttyS1`) and
//! `RIG_GUEST_CMDLINE` (text instead of `/proc/cmdline`) override the two.

use std::path::Path;
use std::time::{Duration, Instant};

use hil_tests::report::{CaseReport, Verdict as SuiteVerdict};
use hil_tests::{Progress, Rig, SuiteOptions, Target};
use qemu_rig_guest::control::Control;
use qemu_rig_guest::ctl::{Outcome, Verb};
use qemu_rig_guest::operator::{QemuOperator, REQUEST_TIMEOUT};
use qemu_rig_guest::options::{Options, Pick, input_event_by_name, usb_tty};
use qemu_rig_guest::scenarios::{self, CaseResult, KEYBOARD_NAME, READER_URI, printer_uri};

/// The control channel.
const CONTROL_TTY: &str = "/dev/ttyS1";

/// The card the suite's cases work with: a PSE card (`reader.apdu_exchange` selects the
/// PSE), the one the virtual lane uses too.
const SUITE_CARD: &str = "visa";

/// The time limit of each of the suite's interactive steps (the host types a swipe key by
/// key through the monitor).
const SUITE_STEP_LIMIT: Duration = Duration::from_secs(60);

fn main() {
    qemu_rig_guest::logtap::install(log::LevelFilter::Warn);
    let tty = std::env::var("RIG_GUEST_CONTROL").unwrap_or_else(|_| CONTROL_TTY.to_string());
    let control = match Control::open_serial(&tty) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "rig-guest: cannot open the control channel {tty}: {e} \
                 (is this the QEMU rig's guest, with a second serial port?)"
            );
            std::process::exit(2);
        }
    };
    let cmdline = std::env::var("RIG_GUEST_CMDLINE").or_else(|_| {
        std::fs::read_to_string("/proc/cmdline").map_err(|e| {
            eprintln!("rig-guest: cannot read /proc/cmdline ({e}): running everything");
        })
    });
    let cmdline = cmdline.unwrap_or_default();
    let options = Options::parse(&cmdline);
    println!(
        "rig-guest: control on {tty}; only {:?}; {} APDUs per benchmark",
        options.only, options.bench
    );
    let mut results: Vec<(String, Outcome)> = Vec::new();
    let note = |r: CaseResult| (r.name, r.verdict);

    if !options.problems.is_empty() {
        let text = options.problems.join("; ");
        report_plain(&control, "rig.options", Outcome::Fail, &text);
        results.push(("rig.options".into(), Outcome::Fail));
    }
    let rig_cases = match scenarios::select(&options.rig_pick()) {
        Ok(c) => c,
        Err(e) => {
            report_plain(&control, "rig.options", Outcome::Fail, &e);
            results.push(("rig.options".into(), Outcome::Fail));
            Vec::new()
        }
    };
    let (benches, cases): (Vec<_>, Vec<_>) = rig_cases
        .into_iter()
        .partition(|c| c.name.starts_with("apdu."));
    let suite = match suite_selection(&options.suite_pick()) {
        Ok(s) => s,
        Err(e) => {
            report_plain(&control, "suite.options", Outcome::Fail, &e);
            results.push(("suite.options".into(), Outcome::Fail));
            None
        }
    };
    // Every case about to run, in order: the host checks that each one reports.
    let plan: Vec<String> = cases
        .iter()
        .map(|c| c.name.to_string())
        .chain(
            suite
                .iter()
                .flat_map(|s| s.names.iter().map(|n| format!("suite.{n}"))),
        )
        .chain(benches.iter().map(|c| c.name.to_string()))
        .collect();
    if let Err(e) = control.plan(&plan) {
        eprintln!("rig-guest: {e}");
    }
    for case in &cases {
        results.push(note(scenarios::run_case(&control, case, options.bench)));
    }

    if let Some(s) = suite {
        results.extend(run_suite(&control, s.only));
    }

    for case in &benches {
        results.push(note(scenarios::run_case(&control, case, options.bench)));
    }

    let count = |o: Outcome| results.iter().filter(|(_, v)| *v == o).count();
    println!(
        "rig-guest: {} passed, {} failed, {} skipped",
        count(Outcome::Pass),
        count(Outcome::Fail),
        count(Outcome::Skip)
    );
    if let Err(e) = control.end() {
        eprintln!("rig-guest: {e}");
    }
}

/// A case line for something that is not a case of its own (bad options, the suite not
/// starting).
fn report_plain(control: &Control, name: &str, outcome: Outcome, text: &str) {
    let word = match outcome {
        Outcome::Pass => "PASS",
        Outcome::Fail => "FAIL",
        Outcome::Skip => "SKIP",
    };
    println!("{word} {name}: {text}");
    if let Err(e) = control.case(name, outcome, 0, text) {
        eprintln!("rig-guest: {e}");
    }
}

/// A step of the suite's preparation (shown under `suite`).
fn prep_step(control: &Control, text: &str) {
    println!("  suite: {text}");
    if let Err(e) = control.step("suite", text) {
        eprintln!("rig-guest: {e}");
    }
}

/// The rig file for the suite: QEMU's reader, the printer on `tty`, the keyboard as a
/// wedge reader when there is one.
fn rig_toml(tty: &str, keyboard: Option<&Path>) -> String {
    let mut text = format!(
        "[reader]\nuri = \"{READER_URI}\"\n\n[printer]\nuri = \"{}\"\n",
        printer_uri(tty)
    );
    if let Some(k) = keyboard {
        // A long inter-key gap: the host types key by key; its Enter ends the swipe.
        text.push_str(&format!(
            "\n[msr]\nuri = \"evdev:{}?gap_ms=3000\"\n",
            k.display()
        ));
    }
    text
}

/// The suite's case as a protocol outcome and text.
fn suite_outcome(case: &CaseReport) -> (Outcome, String) {
    match &case.verdict {
        SuiteVerdict::Pass => (
            Outcome::Pass,
            case.steps
                .last()
                .cloned()
                .unwrap_or_else(|| "passed".into()),
        ),
        SuiteVerdict::Fail { message, hint } => (
            Outcome::Fail,
            match hint {
                Some(h) => format!("{message} (hint: {h})"),
                None => message.clone(),
            },
        ),
        SuiteVerdict::Skip { reason } => (Outcome::Skip, reason.clone()),
    }
}

/// Put the devices in the state the suite expects (printer connected, the suite's card in
/// the reader); the rig file naming them.
fn prepare_devices(control: &Control) -> String {
    let asked = Instant::now();
    if let Err(e) = control.request(&Verb::PrinterConnect, REQUEST_TIMEOUT) {
        prep_step(control, &format!("printer-connect: {e}"));
    }
    let mut tty = None;
    while asked.elapsed() < Duration::from_secs(15) {
        tty = usb_tty(Path::new("/sys"), Path::new("/dev"));
        if tty.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let tty = match tty {
        Some(t) => t.display().to_string(),
        None => {
            prep_step(
                control,
                "no /dev/ttyUSB* after printer-connect: the lane will not open",
            );
            scenarios::PRINTER_TTY.to_string()
        }
    };
    // The card: the suite's test card in the reader.
    if let Err(e) = control.request(&Verb::CardRemove, REQUEST_TIMEOUT) {
        prep_step(control, &format!("(ignored) {e}"));
    }
    if let Err(e) = control.request(&Verb::CardInsert(SUITE_CARD.into()), REQUEST_TIMEOUT) {
        prep_step(control, &format!("card-insert {SUITE_CARD}: {e}"));
    }
    let keyboard = input_event_by_name(Path::new("/sys"), Path::new("/dev"), KEYBOARD_NAME);
    if keyboard.is_none() {
        prep_step(
            control,
            &format!("no input device named like {KEYBOARD_NAME:?}: no [msr] (swipe skipped)"),
        );
    }
    rig_toml(&tty, keyboard.as_deref())
}

/// The suite's selection for `pick`: its `only` list and the names of the scenarios it
/// runs; `None` when the suite does not run.
///
/// Errors: a name the suite does not know, in words.
fn suite_selection(pick: &Pick) -> Result<Option<SuiteSelection>, String> {
    let only = match pick {
        Pick::Nothing => return Ok(None),
        Pick::All => Vec::new(),
        Pick::Some(names) => names.clone(),
    };
    let names = hil_tests::select(&only)?
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    Ok(Some(SuiteSelection { only, names }))
}

/// What of the suite runs.
#[derive(Debug, PartialEq, Eq)]
struct SuiteSelection {
    /// The suite's `only` list (empty: everything).
    only: Vec<String>,
    /// The scenarios it selects, in order.
    names: Vec<String>,
}

/// Prepare the devices as the suite expects them (printer connected, card in), run the
/// scenarios `only` selects with the host as its operator and forward each case.
fn run_suite(control: &Control, only: Vec<String>) -> Vec<(String, Outcome)> {
    let selected = match hil_tests::select(&only) {
        Ok(s) => s,
        Err(e) => {
            report_plain(control, "suite.options", Outcome::Fail, &e);
            return vec![("suite.options".into(), Outcome::Fail)];
        }
    };
    println!("RUN  suite: the hil-tests scenarios against QEMU's devices");
    let needs_devices = selected.iter().any(|s| !s.name.starts_with("links."));
    let text = if needs_devices {
        prepare_devices(control)
    } else {
        rig_toml(scenarios::PRINTER_TTY, None)
    };
    prep_step(
        control,
        &format!("rig: {}", text.replace('\n', " ").replace("  ", " ")),
    );
    let rig = match Rig::parse(&text, "qemu-rig") {
        Ok(r) => r,
        Err(e) => {
            report_plain(control, "suite.rig", Outcome::Fail, &e.to_string());
            // The planned cases did not run: each says so (the host expects every one).
            let mut results = vec![("suite.rig".to_string(), Outcome::Fail)];
            for s in &selected {
                let name = format!("suite.{}", s.name);
                report_plain(
                    control,
                    &name,
                    Outcome::Skip,
                    "not run: the suite's rig file did not parse (see suite.rig)",
                );
                results.push((name, Outcome::Skip));
            }
            return results;
        }
    };
    let target = Target::Rig {
        rig,
        path: "qemu-rig".into(),
    };
    let options = SuiteOptions {
        step_limit: SUITE_STEP_LIMIT,
        only,
    };
    let mut results = Vec::new();
    let op_control = control.clone();
    let report = hil_tests::run(
        &target,
        &options,
        &mut |_sim| Box::new(QemuOperator::new(op_control.clone(), SUITE_CARD)),
        &mut |p| match p {
            Progress::Start(name) => println!("RUN  suite.{name}"),
            Progress::Done(case) => {
                let name = format!("suite.{}", case.name);
                for step in &case.steps {
                    println!("  {name}: {step}");
                    if let Err(e) = control.step(&name, step) {
                        eprintln!("rig-guest: {e}");
                    }
                }
                let (outcome, text) = suite_outcome(case);
                println!("{}", case.line());
                let millis = u64::try_from(case.duration.as_millis()).unwrap_or(u64::MAX);
                if let Err(e) = control.case(&name, outcome, millis, &text) {
                    eprintln!("rig-guest: {e}");
                }
                results.push((name, outcome));
            }
        },
    );
    match report {
        Ok(r) => println!("{}", r.summary()),
        Err(e) => {
            report_plain(control, "suite.options", Outcome::Fail, &e);
            results.push(("suite.options".into(), Outcome::Fail));
        }
    }
    results
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_rig_file_parses_with_and_without_a_keyboard() {
        let with = rig_toml("/dev/ttyUSB0", Some(Path::new("/dev/input/event3")));
        let rig = Rig::parse(&with, "t").unwrap();
        let c = rig.device_config();
        assert_eq!(c.reader, "usb:08e6:4433");
        assert_eq!(
            c.printer,
            "serial:/dev/ttyUSB0?baud=115200&profile=epson-tm-t20"
        );
        assert_eq!(c.msr, "evdev:/dev/input/event3?gap_ms=3000");
        assert!(rig.links.loopback.is_empty());
        let without = Rig::parse(&rig_toml("/dev/ttyUSB1", None), "t").unwrap();
        assert_eq!(without.device_config().msr, "none");
    }

    #[test]
    fn the_suite_selection_names_what_will_run() {
        assert_eq!(suite_selection(&Pick::Nothing), Ok(None));
        let printer = suite_selection(&Pick::Some(vec!["printer".into()]))
            .unwrap()
            .unwrap();
        assert_eq!(printer.only, vec!["printer".to_string()]);
        let names = &printer.names;
        assert!(names.iter().all(|n| n.starts_with("printer.")), "{names:?}");
        assert!(names.contains(&"printer.paper_out".to_string()));
        let all = suite_selection(&Pick::All).unwrap().unwrap();
        assert_eq!(all.names.len(), hil_tests::scenarios().len());
        assert!(suite_selection(&Pick::Some(vec!["nonsense".into()])).is_err());
    }

    #[test]
    fn suite_verdicts_become_case_lines() {
        let case = |verdict| CaseReport {
            name: "reader.atr".into(),
            verdict,
            duration: Duration::from_millis(5),
            steps: vec!["ATR 3B".into()],
        };
        assert_eq!(
            suite_outcome(&case(SuiteVerdict::Pass)),
            (Outcome::Pass, "ATR 3B".into())
        );
        let (o, t) = suite_outcome(&case(SuiteVerdict::Fail {
            message: "m".into(),
            hint: Some("h".into()),
        }));
        assert_eq!((o, t.as_str()), (Outcome::Fail, "m (hint: h)"));
        let (o, _) = suite_outcome(&case(SuiteVerdict::Skip { reason: "r".into() }));
        assert_eq!(o, Outcome::Skip);
    }
}
