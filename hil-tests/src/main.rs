//! `hil-tests`: run the scenario suite on the virtual lane, or on the devices of a rig file.
//!
//! Exit code: 0 when nothing failed (skips allowed), 1 when a case failed, 2 for bad usage
//! or a rig file that cannot be used.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use hil_tests::{
    ConsoleOperator, NonInteractive, Operator, Progress, Rig, SimOperator, SuiteOptions, Target,
    Verdict,
};

/// Run the hardware-in-the-loop scenario suite: on the virtual lane by default, on the
/// real devices a rig file names with --rig.
#[derive(Debug, Parser)]
#[command(name = "hil-tests", version)]
struct Args {
    /// Rig file naming the real devices (see hil-tests/rig.example.toml). Default: the file
    /// POS_HIL_RIG names; without either, the virtual lane.
    #[arg(long, value_name = "FILE")]
    rig: Option<PathBuf>,
    /// Also write a JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Run only these scenarios (names like reader.atr, or groups like reader).
    #[arg(long, value_name = "NAME", num_args = 1..)]
    only: Vec<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Time limit of each interactive step, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    step_timeout: f64,
    /// On a rig: no technician; interactive cases are SKIPPED (never passed).
    #[arg(long)]
    non_interactive: bool,
    /// On the virtual lane: build its chip reader as a real reader model
    /// (`sim:ccid?model=NAME`, e.g. omnikey-3121), or run the suite once per model with
    /// `all`. Not with --rig.
    #[arg(long, value_name = "NAME|all", conflicts_with = "rig")]
    reader_model: Option<String>,
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("hil-tests: {message}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        for s in hil_tests::scenarios() {
            println!("{:<28} {}", s.name, s.about);
        }
        return ExitCode::SUCCESS;
    }
    if !(args.step_timeout.is_finite() && args.step_timeout > 0.0 && args.step_timeout <= 3600.0) {
        return usage_error("--step-timeout must be a number of seconds above 0 (at most 3600)");
    }
    let options = SuiteOptions {
        step_limit: Duration::from_secs_f64(args.step_timeout),
        only: args.only.clone(),
    };
    if let Err(e) = hil_tests::select(&options.only) {
        return usage_error(&e);
    }
    // An empty POS_HIL_RIG is unset (as `Rig::from_env` has it).
    let rig_path = args.rig.clone().or_else(|| {
        std::env::var_os(hil_tests::RIG_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    let targets = match (&rig_path, &args.reader_model) {
        (Some(_), Some(_)) => {
            return usage_error("--reader-model builds the virtual lane's reader: not with a rig");
        }
        (None, Some(name)) => match hil_tests::reader_model_targets(name) {
            Ok(t) => t,
            Err(e) => return usage_error(&e),
        },
        (None, None) => vec![Target::Virtual],
        (Some(path), None) => match Rig::load(path) {
            Ok(rig) => vec![Target::Rig {
                rig,
                path: path.display().to_string(),
            }],
            Err(e) => return usage_error(&e.to_string()),
        },
    };
    let several = targets.len() > 1;
    let mut exit = 0;
    for target in &targets {
        match run_one(&args, target, several) {
            Ok(code) => exit = exit.max(code),
            Err(code) => return code,
        }
    }
    ExitCode::from(u8::try_from(exit).unwrap_or(1))
}

/// Run the suite on one target, print it and write its JUnit report; the report's exit
/// code, or the usage error's.
fn run_one(args: &Args, target: &Target, several: bool) -> Result<i32, ExitCode> {
    let options = SuiteOptions {
        step_limit: Duration::from_secs_f64(args.step_timeout),
        only: args.only.clone(),
    };
    let on_rig = matches!(target, Target::Rig { .. });
    let non_interactive = args.non_interactive;
    let mut make_operator = |sim: Option<pos_lane::SimLane>| -> Box<dyn Operator> {
        let real: Box<dyn Operator> = if non_interactive || !on_rig {
            Box::new(NonInteractive)
        } else {
            Box::new(ConsoleOperator::new())
        };
        match sim {
            Some(sim) => Box::new(SimOperator::new(sim).with_real(real)),
            None => real,
        }
    };
    println!(
        "hil-tests on {}{}",
        target.describe(),
        if on_rig && !non_interactive {
            " (interactive: follow the >> instructions; s + Enter skips a step)"
        } else {
            ""
        }
    );
    let interactive = on_rig && !non_interactive;
    let report = match hil_tests::run(target, &options, &mut make_operator, &mut |p| match p {
        Progress::Start(name) if interactive => println!("-- {name}"),
        Progress::Start(_) => {}
        Progress::Done(case) => {
            println!("{}", case.line());
            if matches!(case.verdict, Verdict::Fail { .. }) {
                for step in &case.steps {
                    println!("     | {step}");
                }
            }
        }
    }) {
        Ok(r) => r,
        Err(e) => return Err(usage_error(&e)),
    };
    println!("{}", report.summary());
    if let Some(path) = &args.junit {
        // One report per model with `--reader-model all`: FILE becomes FILE.NAME.xml.
        let path = match target {
            Target::VirtualModel { model } if several => {
                path.with_extension(format!("{model}.xml"))
            }
            _ => path.clone(),
        };
        if let Err(e) = hil_tests::junit::write(&report, &path) {
            return Err(usage_error(&format!(
                "cannot write the JUnit report {}: {e}",
                path.display()
            )));
        }
        println!("JUnit report: {}", path.display());
    }
    Ok(report.exit_code())
}
