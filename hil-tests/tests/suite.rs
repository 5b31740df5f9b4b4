//! The scenario suite on the virtual lane (in-process and through the binary), and the
//! ways it must fail: a rig that cannot be used, a step nobody does.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use hil_tests::operator::{Action, Condition, poll_until};
use hil_tests::{
    NonInteractive, Operator, Rig, SimOperator, StepOutcome, SuiteOptions, SuiteReport, Target,
    Verdict,
};

/// The full PAN of the virtual lane's Visa test card: must never be printed.
const VISA_PAN: &str = "4761739001010010";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hil-tests"));
    c.env_remove(hil_tests::RIG_ENV);
    c
}

fn only(names: &[&str], limit: Duration) -> SuiteOptions {
    SuiteOptions {
        step_limit: limit,
        only: names.iter().map(|s| s.to_string()).collect(),
    }
}

fn run_with(
    target: &Target,
    options: &SuiteOptions,
    make: impl Fn(Option<pos_lane::SimLane>) -> Box<dyn Operator>,
) -> SuiteReport {
    hil_tests::run(target, options, &mut |sim| make(sim), &mut |_| {}).unwrap()
}

#[test]
fn the_whole_suite_passes_on_the_virtual_lane() {
    let t = Instant::now();
    let report = hil_tests::run_virtual(&SuiteOptions::default()).unwrap();
    for c in &report.cases {
        println!("{}", c.line());
    }
    assert_eq!(report.cases.len(), hil_tests::scenarios().len());
    assert_eq!(report.failed(), 0, "{}", report.summary());
    assert_eq!(report.skipped(), 0, "{}", report.summary());
    assert_eq!(report.exit_code(), 0);
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    // Every group the issue asks for is there.
    for name in [
        "links.loopback",
        "reader.card_inserted",
        "reader.apdu_exchange",
        "reader.card_removed",
        "reader.removed_mid_exchange",
        "reader.card_mute",
        "reader.unplugged",
        "msr.swipe",
        "printer.print_confirmed",
        "printer.paper_out",
        "printer.cover_open",
        "sale.end_to_end",
    ] {
        assert!(report.case(name).is_some(), "{name} missing");
    }
    let sale = report.case("sale.end_to_end").unwrap();
    assert!(
        sale.steps.iter().any(|s| s.contains("completed")),
        "{sale:?}"
    );
    let swipe = report.case("msr.swipe").unwrap();
    assert!(
        swipe.steps.iter().any(|s| s.contains("476173******0010")),
        "{swipe:?}"
    );
    let all = format!("{report:?}");
    assert!(!all.contains(VISA_PAN), "a full PAN in the report");
}

/// Count testcases and read the suite's counts with a strict XML parser.
fn junit_counts(xml: &str) -> (usize, String, String, String) {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_str(xml);
    r.config_mut().check_end_names = true;
    let (mut cases, mut tests, mut failures, mut skipped) =
        (0, String::new(), String::new(), String::new());
    loop {
        match r.read_event().unwrap() {
            Event::Start(e) | Event::Empty(e) => {
                let attr = |k: &[u8]| {
                    e.attributes()
                        .map(|a| a.unwrap())
                        .find(|a| a.key.as_ref() == k)
                        .map(|a| a.unescape_value().unwrap().into_owned())
                        .unwrap_or_default()
                };
                match e.name().as_ref() {
                    b"testcase" => cases += 1,
                    b"testsuite" => {
                        tests = attr(b"tests");
                        failures = attr(b"failures");
                        skipped = attr(b"skipped");
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    (cases, tests, failures, skipped)
}

#[test]
fn the_binary_runs_the_suite_and_writes_junit() {
    let dir = tempfile::tempdir().unwrap();
    let xml_path = dir.path().join("report.xml");
    let out = bin().arg("--junit").arg(&xml_path).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("PASS reader.apdu_exchange ("), "{stdout}");
    assert!(stdout.contains("0 failed"), "{stdout}");
    let xml = std::fs::read_to_string(&xml_path).unwrap();
    assert!(
        !stdout.contains(VISA_PAN) && !xml.contains(VISA_PAN),
        "a full PAN was printed"
    );
    let n = hil_tests::scenarios().len();
    let (cases, tests, failures, skipped) = junit_counts(&xml);
    assert_eq!(cases, n);
    assert_eq!(tests, n.to_string());
    assert_eq!(failures, "0");
    assert_eq!(skipped, "0");
    assert!(
        xml.contains("classname=\"hil.reader\" name=\"apdu_exchange\""),
        "{xml}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = bin().args(["--only", "readr"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("readr"));
    let out = bin().args(["--step-timeout", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bin().args(["--no-such-flag"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bin().arg("--list").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("sale.end_to_end"));
}

#[test]
fn a_rig_with_a_bad_uri_is_an_error_naming_the_key_never_a_virtual_run() {
    let dir = tempfile::tempdir().unwrap();
    let rig = dir.path().join("rig.toml");
    std::fs::write(&rig, "[reader]\nuri = \"usb:zzzz\"\n").unwrap();
    let out = bin().arg("--rig").arg(&rig).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("reader.uri"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("PASS"));

    // The same through the environment; and a rig file that is not there.
    let out = bin().env(hil_tests::RIG_ENV, &rig).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bin()
        .arg("--rig")
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_rig_device_that_does_not_open_fails_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let rig = dir.path().join("rig.toml");
    // A USB reader with IDs no device has.
    std::fs::write(&rig, "[reader]\nuri = \"usb:ffff:fffe\"\n").unwrap();
    let xml = dir.path().join("r.xml");
    let out = bin()
        .arg("--rig")
        .arg(&rig)
        .args(["--non-interactive", "--only", "reader", "--junit"])
        .arg(&xml)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL lane.open"), "{stdout}");
    assert!(stdout.contains("usb:ffff:fffe"), "{stdout}");
    assert!(!stdout.contains("PASS reader"), "{stdout}");
    let (_, _, failures, _) = junit_counts(&std::fs::read_to_string(&xml).unwrap());
    assert_eq!(failures, "1");
}

/// An operator that does nothing: the condition never comes true.
struct Idle;

impl Operator for Idle {
    fn ask(
        &mut self,
        _action: Action,
        _instruction: &str,
        limit: Duration,
        done: &mut Condition<'_>,
    ) -> StepOutcome {
        poll_until(limit, done)
    }
}

#[test]
fn a_step_nobody_does_times_out_and_fails() {
    let t = Instant::now();
    let report = run_with(
        &Target::Virtual,
        &only(
            &["reader.card_removed", "printer.cover_open"],
            Duration::from_millis(300),
        ),
        |_| Box::new(Idle),
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    for c in &report.cases {
        println!("{}", c.line());
    }
    assert_eq!(report.failed(), 2, "{report:?}");
    assert_eq!(report.exit_code(), 1);
    let case = report.case("reader.card_removed").unwrap();
    let Verdict::Fail { message, .. } = &case.verdict else {
        panic!("{case:?}")
    };
    assert!(
        message.contains("timed out waiting for: pull the card out of the chip reader now"),
        "{message}"
    );
    assert!(
        case.line().starts_with("FAIL reader.card_removed ("),
        "{}",
        case.line()
    );
}

#[test]
fn without_a_technician_interactive_cases_are_skipped_never_passed() {
    let report = run_with(
        &Target::Virtual,
        &only(
            &[
                "reader.card_removed",
                "msr.swipe",
                "printer.paper_out",
                "printer.status_ready",
            ],
            Duration::from_secs(1),
        ),
        |_| Box::new(NonInteractive),
    );
    assert_eq!(report.failed(), 0, "{report:?}");
    assert_eq!(report.skipped(), 3, "{report:?}");
    assert_eq!(report.passed(), 1, "{report:?}");
    for c in &report.cases {
        println!("{}", c.line());
    }
    let case = report.case("msr.swipe").unwrap();
    assert!(
        case.line()
            .starts_with("SKIP msr.swipe: non-interactive run"),
        "{}",
        case.line()
    );
}

#[test]
fn a_rig_runs_only_the_devices_it_names() {
    // A rig with only a (virtual) printer: the printer cases run, the others are skipped.
    let rig = Rig::parse("[printer]\nuri = \"sim:printer\"\n", "printer-only.toml").unwrap();
    let target = Target::Rig {
        rig,
        path: "printer-only.toml".into(),
    };
    let report = run_with(&target, &SuiteOptions::default(), |sim| match sim {
        Some(sim) => Box::new(SimOperator::new(sim).with_real(Box::new(NonInteractive))),
        None => Box::new(NonInteractive),
    });
    for c in &report.cases {
        println!("{}", c.line());
    }
    assert_eq!(report.failed(), 0, "{report:?}");
    for c in &report.cases {
        let expect_pass = c.name.starts_with("printer.");
        assert_eq!(
            matches!(c.verdict, Verdict::Pass),
            expect_pass,
            "{}",
            c.line()
        );
    }
    let links = report.case("links.loopback").unwrap();
    assert!(
        links.line().contains("no [links] loopback"),
        "{}",
        links.line()
    );
}

/// `POS_HIL_RIG=rig.toml cargo test -p hil-tests -- --nocapture`: the suite on that rig,
/// with a technician at the console (the binary is the usual way: `--rig`, `--junit`).
/// Without `POS_HIL_RIG` this test has nothing to do (the tests above cover the virtual
/// lane).
#[test]
fn the_rig_named_by_pos_hil_rig_passes() {
    let Some(rig) = Rig::from_env().unwrap_or_else(|e| panic!("{e}")) else {
        println!("{} not set: no rig to run", hil_tests::RIG_ENV);
        return;
    };
    let path = std::env::var(hil_tests::RIG_ENV).unwrap_or_default();
    let report = run_with(
        &Target::Rig { rig, path },
        &SuiteOptions::default(),
        |sim| {
            let console: Box<dyn Operator> = Box::new(hil_tests::ConsoleOperator::new());
            match sim {
                Some(sim) => Box::new(SimOperator::new(sim).with_real(console)),
                None => console,
            }
        },
    );
    for c in &report.cases {
        println!("{}", c.line());
    }
    println!("{}", report.summary());
    assert_eq!(report.failed(), 0, "{}", report.summary());
}

#[test]
fn the_reader_group_passes_on_every_reader_model() {
    let models = hil_tests::reader_models();
    assert!(models.len() >= 9, "{models:?}");
    for model in models {
        let report =
            hil_tests::run_virtual_model(model, &only(&["reader"], Duration::from_secs(5)))
                .unwrap();
        for c in &report.cases {
            println!("{model}: {}", c.line());
        }
        assert!(report.target.contains(model), "{}", report.target);
        assert!(report.cases.len() >= 6, "{model}: {}", report.summary());
        assert!(report.cases.iter().all(|c| c.name.starts_with("reader.")));
        assert_eq!(report.failed(), 0, "{model}: {}", report.summary());
        assert_eq!(report.skipped(), 0, "{model}: {}", report.summary());
    }
}

#[test]
fn reader_model_option_runs_a_model_and_refuses_unknown_names() {
    let out = bin()
        .args(["--reader-model", "omnikey-3121", "--only", "reader.atr"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("reader model omnikey-3121"), "{text}");
    assert!(text.contains("PASS reader.atr"), "{text}");
    let out = bin().args(["--reader-model", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("au9560") && err.contains("|all"), "{err}");
}
