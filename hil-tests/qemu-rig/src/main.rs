//! `qemu-rig`: boot the virtual hardware rig and run the guest's scenarios against QEMU's
//! USB CCID reader, FTDI adapter and USB keyboard. Usually started by
//! `hil-tests/qemu-rig/run.sh`, which prepares the rig and builds the guest binaries first.
//!
//! Exit code: 0 when nothing failed (skips allowed), 1 when a case failed or the guest did
//! not finish, 2 for bad usage or a rig that cannot start, 3 when the rig is not prepared
//! (the message says SKIP and how to prepare it).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use hil_tests::{CaseReport, SuiteReport, Verdict};
use qemu_rig::run::{RunError, RunOptions, RunReport};
use qemu_rig_guest::ctl::{Line, Outcome, Verb};

/// Boot the QEMU rig and run the guest's scenarios (the real rusb, serialport and evdev
/// code paths against QEMU's emulated devices).
#[derive(Debug, Parser)]
#[command(name = "qemu-rig", version)]
struct Args {
    /// The rig's cache directory (prepare.sh fills it).
    #[arg(long, value_name = "DIR", default_value = "target/qemu-rig")]
    cache: PathBuf,
    /// The static guest binary.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "target/x86_64-unknown-linux-gnu/release/rig-guest"
    )]
    guest: PathBuf,
    /// The pcsc-lite benchmark client (default: <cache>/pcsc-bench if it is there).
    #[arg(long, value_name = "FILE")]
    pcsc_bench: Option<PathBuf>,
    /// The helper running the reader cases through our pcsc: road (default:
    /// <cache>/pcsc-road if it is there).
    #[arg(long, value_name = "FILE")]
    pcsc_road: Option<PathBuf>,
    /// Where the EMV transcripts (NAME.apdu) are.
    #[arg(long, value_name = "DIR", default_value = "crates/pos-emv/tests/data")]
    transcripts: PathBuf,
    /// Run only these guest cases or groups (e.g. reader, printer.fault).
    #[arg(long, value_name = "NAME", num_args = 1..)]
    only: Vec<String>,
    /// APDUs per latency benchmark.
    #[arg(long, value_name = "N", default_value_t = 300)]
    bench: u32,
    /// Time limit of the whole run (boot to power-off), in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    timeout: u64,
    /// Write the guest's console to FILE.
    #[arg(long, value_name = "FILE")]
    console: Option<PathBuf>,
    /// Print the guest's console as it comes.
    #[arg(long, short)]
    verbose: bool,
    /// Also write a JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

fn tag(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "PASS",
        Outcome::Fail => "FAIL",
        Outcome::Skip => "SKIP",
    }
}

fn ms(ns: u64) -> String {
    format!("{:.1} us", ns as f64 / 1000.0)
}

fn print_report(report: &RunReport) {
    let (pass, fail, skip) = report
        .cases
        .iter()
        .fold((0, 0, 0), |(p, f, s), c| match c.outcome {
            Outcome::Pass => (p + 1, f, s),
            Outcome::Fail => (p, f + 1, s),
            Outcome::Skip => (p, f, s + 1),
        });
    if !report.benches.is_empty() {
        println!();
        println!("per-APDU latency through QEMU's reader (same guest, same card, same APDU):");
        println!(
            "  {:<14} {:>6} {:>11} {:>11} {:>11}",
            "path", "APDUs", "median", "p99", "mean"
        );
        for b in &report.benches {
            println!(
                "  {:<14} {:>6} {:>11} {:>11} {:>11}",
                b.name,
                b.count,
                ms(b.p50_ns),
                ms(b.p99_ns),
                ms(b.mean_ns)
            );
        }
        if let (Some(d), Some(p)) = (report.bench("apdu.direct"), report.bench("apdu.pcsc")) {
            if d.p50_ns > 0 && d.mean_ns > 0 {
                println!(
                    "  pcsc-lite + libccid / our driver: {:.2}x (median), {:.2}x (mean)",
                    p.p50_ns as f64 / d.p50_ns as f64,
                    p.mean_ns as f64 / d.mean_ns as f64
                );
            }
        }
        if let (Some(r), Some(p)) = (report.bench("apdu.pcsc_road"), report.bench("apdu.pcsc")) {
            if p.p50_ns > 0 && p.mean_ns > 0 {
                println!(
                    "  our pcsc: road / plain pcsc-lite client: {:.2}x (median), {:.2}x (mean)",
                    r.p50_ns as f64 / p.p50_ns as f64,
                    r.mean_ns as f64 / p.mean_ns as f64
                );
            }
        }
    }
    println!();
    println!(
        "{pass} passed, {fail} failed, {skip} skipped in {:.1} s (guest up after {})",
        report.duration.as_secs_f64(),
        report
            .boot
            .map_or("?".to_string(), |b| format!("{:.1} s", b.as_secs_f64()))
    );
    if !report.ended {
        println!("the guest did not finish its run (no END)");
    }
}

fn to_suite(report: &RunReport) -> SuiteReport {
    let mut cases: Vec<CaseReport> = report
        .cases
        .iter()
        .map(|c| CaseReport {
            name: c.name.clone(),
            verdict: match c.outcome {
                Outcome::Pass => Verdict::Pass,
                Outcome::Fail => Verdict::Fail {
                    message: c.text.clone(),
                    hint: None,
                },
                Outcome::Skip => Verdict::Skip {
                    reason: c.text.clone(),
                },
            },
            duration: c.duration,
            steps: c.steps.clone(),
        })
        .collect();
    if !report.ended {
        cases.push(CaseReport {
            name: "rig.finished".into(),
            verdict: Verdict::Fail {
                message: "the guest did not finish its run".into(),
                hint: Some(report.console_tail.join("\n")),
            },
            duration: report.duration,
            steps: Vec::new(),
        });
    }
    SuiteReport {
        target: "QEMU rig".into(),
        cases,
        duration: report.duration,
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    let pcsc_bench = args
        .pcsc_bench
        .clone()
        .or_else(|| Some(args.cache.join("pcsc-bench")).filter(|p| p.exists()));
    let pcsc_road = args
        .pcsc_road
        .clone()
        .or_else(|| Some(args.cache.join("pcsc-road")).filter(|p| p.exists()));
    if !args.guest.exists() {
        eprintln!(
            "qemu-rig: no guest binary at {} (hil-tests/qemu-rig/run.sh builds it)",
            args.guest.display()
        );
        return ExitCode::from(2);
    }
    let options = RunOptions {
        cache: args.cache.clone(),
        guest: args.guest.clone(),
        pcsc_bench,
        pcsc_road,
        transcripts: args.transcripts.clone(),
        only: args.only.clone(),
        bench: args.bench.max(1),
        timeout: Duration::from_secs(args.timeout.max(1)),
        console_log: args.console.clone(),
        echo_console: args.verbose,
    };
    println!(
        "qemu-rig: booting the guest (QEMU, software emulation; about 10 s to boot){}",
        if options.pcsc_bench.is_none() {
            "; no pcsc-bench, the pcsc-lite comparison will be skipped"
        } else {
            ""
        }
    );
    let verbose = args.verbose;
    let mut shown: Vec<String> = Vec::new();
    let result = qemu_rig::run::run(&options, &mut |line| match line {
        Line::Case {
            case,
            outcome,
            millis,
            text,
        } => {
            println!("{} {case} ({millis} ms) {text}", tag(*outcome));
            shown.push(case.clone());
        }
        Line::Step { case, text } if verbose => println!("     | {case}: {text}"),
        // The printer relay's status poll (every 200 ms) would drown the rest.
        Line::Cmd { verb, .. } if verbose && *verb != Verb::EmuposState => {
            println!("     > host: {}", verb.redacted())
        }
        Line::Err { text, .. } => println!("     ! host could not: {text}"),
        _ => {}
    });
    let report = match result {
        Ok(r) => r,
        Err(RunError::Files(e)) if !args.cache.join("root/.prepared-v1").exists() => {
            println!("SKIP qemu-rig: the rig is not prepared: {e}");
            return ExitCode::from(3);
        }
        Err(e) => {
            eprintln!("qemu-rig: {e}");
            return ExitCode::from(
                if matches!(e, RunError::Timeout { .. } | RunError::QemuExited { .. }) {
                    1
                } else {
                    2
                },
            );
        }
    };
    // Cases the host added (a planned case that never reported, no plan at all).
    for c in report.cases.iter().filter(|c| !shown.contains(&c.name)) {
        println!("{} {} (host) {}", tag(c.outcome), c.name, c.text);
    }
    print_report(&report);
    if let Some(path) = &args.junit {
        if let Err(e) = hil_tests::junit::write(&to_suite(&report), path) {
            eprintln!("qemu-rig: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
        println!("JUnit report: {}", path.display());
    }
    if report.failed() > 0 || !report.ended || report.cases.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
