//! # hil-tests: one scenario suite for real and virtual devices
//!
//! The same scenarios (card insert and removal, ATR and APDU exchange, swipe, print and
//! confirm, each fault response, a sale end to end) run against the devices a rig file
//! names (a hardware-in-the-loop test rig, see `rig.example.toml`) or, without a rig,
//! against the virtual lane of [`pos_lane`], so the same checks run in CI and on a bench.
//!
//! - [`rig`]: rig files; a rig that is named but cannot be used is an error, never a
//!   silent fall-back to virtual devices.
//! - [`mod@scenarios`]: the cases and the runner ([`scenarios::run`]).
//! - [`operator`]: interactive steps ("pull the card now") with time limits: a technician
//!   on a rig, the virtual lane doing them itself otherwise.
//! - [`report`]: verdicts, the human lines and the exit code; [`junit`]: the JUnit XML
//!   report for test rigs.
//!
//! The binary `hil-tests` (`cargo run -p hil-tests -- --help`) wraps all of this.
#![warn(missing_docs)]

pub mod junit;
pub mod operator;
pub mod report;
pub mod rig;
pub mod scenarios;

pub use operator::{Action, ConsoleOperator, NonInteractive, Operator, SimOperator, StepOutcome};
pub use report::{CaseReport, SuiteReport, Verdict};
pub use rig::{RIG_ENV, Rig, RigError};
pub use scenarios::{Progress, Scenario, SuiteOptions, Target, run, scenarios, select};

/// Run the whole selection on the virtual lane with the [`SimOperator`], quietly.
///
/// Errors: an unknown name in `options.only`.
pub fn run_virtual(options: &SuiteOptions) -> Result<SuiteReport, String> {
    run(
        &Target::Virtual,
        options,
        &mut |sim| match sim {
            Some(sim) => Box::new(SimOperator::new(sim)),
            None => Box::new(NonInteractive),
        },
        &mut |_| {},
    )
}
