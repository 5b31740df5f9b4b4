//! The checker's tests: the shipped file, each kind of typo, the policy, lexing, properties.

use super::*;

mod eval;
mod lexing;
mod policy;
mod props;
mod shipped;
mod syntax;

/// Checks `text`, expecting failure; returns the errors.
fn errors_of(text: &str) -> Vec<RuleError> {
    match check(text) {
        Ok(rules) => panic!("expected errors, got {} rules for:\n{text}", rules.len()),
        Err(errors) => errors,
    }
}

/// Checks `text`, expecting exactly one error; returns it.
fn only_error(text: &str) -> RuleError {
    let errors = errors_of(text);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    errors.into_iter().next().expect("one error")
}

fn rules_of(text: &str) -> Vec<Rule> {
    match check(text) {
        Ok(rules) => rules,
        Err(errors) => {
            panic!(
                "expected no errors, got:\n{}",
                errors.iter().map(|e| format!("{e}\n")).collect::<String>()
            )
        }
    }
}

/// A rule in good standing that the error tests below surround their typos with.
const GOOD: &str =
    r#"SUBSYSTEM=="tty", ATTRS{idVendor}=="0403", ACTION!="remove", GROUP="pos", MODE="0660""#;
