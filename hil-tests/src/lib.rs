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

/// The reader models `--reader-model` accepts (pos-ccid's `sim::MODELS`), in table order.
pub fn reader_models() -> Vec<&'static str> {
    pos_ccid::sim::MODELS.iter().map(|m| m.name).collect()
}

/// The targets `--reader-model NAME|all` names: the virtual lane with that model as its
/// reader, or one lane per model for `all`.
///
/// Errors: an unknown name, with every accepted one.
pub fn reader_model_targets(name: &str) -> Result<Vec<Target>, String> {
    let models = reader_models();
    let chosen: Vec<&str> = if name == "all" {
        models.clone()
    } else if models.contains(&name) {
        vec![name]
    } else {
        return Err(format!(
            "unknown reader model {name:?}: accepted --reader-model {}|all",
            models.join("|")
        ));
    };
    Ok(chosen
        .into_iter()
        .map(|m| Target::VirtualModel {
            model: m.to_string(),
        })
        .collect())
}

/// As [`run_virtual`], with the lane's reader built as reader model `model`
/// (`sim:ccid?model=NAME`).
///
/// Errors: an unknown name in `options.only`.
pub fn run_virtual_model(model: &str, options: &SuiteOptions) -> Result<SuiteReport, String> {
    run(
        &Target::VirtualModel {
            model: model.to_string(),
        },
        options,
        &mut |sim| match sim {
            Some(sim) => Box::new(SimOperator::new(sim)),
            None => Box::new(NonInteractive),
        },
        &mut |_| {},
    )
}
