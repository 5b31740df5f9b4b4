//! # pos-udev: a udev rules checker
//!
//! [`check`] parses any udev rules text the way systemd-udevd does (udev(7)) and returns every
//! problem it finds, each with its line; on success it returns the parsed [`Rule`]s.
//! [`check_policy`] then applies this project's rules for *its own* file (the one shipped as
//! `pos_link::udev::RULES`, `udev/70-pos-devices.rules`): access only through group
//! [`POS_GROUP`], no world bits, links only under `/dev/pos/`, no access on `remove` events,
//! no `uaccess` tag. `posctl udev-rules --check FILE` runs both on an installed copy.
//!
//! ```
//! let rules = pos_udev::check(r#"SUBSYSTEM=="tty", ATTRS{idVendor}=="0403", ACTION!="remove", GROUP="pos", MODE="0660""#)
//!     .map_err(|errors| errors[0].to_string())?;
//! assert!(pos_udev::check_policy(&rules).is_empty());
//!
//! let errors = pos_udev::check("SUBSYSTEM==\"tty\", GROUP==\"pos\"\n").unwrap_err();
//! assert_eq!(errors[0].line, 1);
//! assert_eq!(errors[0].kind, pos_udev::ErrorKind::OperatorNotAllowed);
//! # Ok::<(), String>(())
//! ```
//!
//! # What [`check`] accepts
//!
//! The grammar follows systemd's `udev-rules.c`:
//!
//! - The text is read line by line. Blank lines are skipped. A line whose first non-blank
//!   character is `#` is a comment, even in the middle of a continued rule; `#` anywhere else is
//!   not a comment (udev has no end-of-line comments) and is reported.
//! - A line ending in a backslash continues on the next line; the next line's leading blanks are
//!   dropped and nothing is inserted at the join. A file that ends inside a continuation is an
//!   error, and so is a logical line of 16 KiB or more (`UDEV_LINE_SIZE`).
//! - A rule is a comma-separated list of `KEY[{attribute}] OPERATOR "value"` pairs, with blanks
//!   allowed around commas and operators. Operators are `==` and `!=` (match) and `=`, `+=`,
//!   `-=`, `:=` (assignment). Values are double-quoted; `\"` stands for a quote. A value may be
//!   prefixed with `e` (C escapes such as `\n`, `\x41`) and/or `i` (case-insensitive match).
//! - Each key must be known, take the operator used, and have an `{attribute}` exactly when it
//!   needs one (see the table below). Attribute names are checked where udev checks them
//!   (`CONST{arch|virt}`, `IMPORT{program|builtin|file|db|cmdline|parent}`,
//!   `RUN{program|builtin}`, `TEST{octal mode}`); builtin names, `OPTIONS` values, numeric
//!   `MODE`s and `$`/`%` substitutions in values are checked too.
//! - A `GOTO` needs a `LABEL` of the same name *later* in the file (udev only jumps forward).
//!
//! | key | attribute | operators |
//! |---|---|---|
//! | `ACTION`, `DEVPATH`, `KERNEL`, `KERNELS`, `SUBSYSTEM`, `SUBSYSTEMS`, `DRIVER`, `DRIVERS`, `TAGS`, `RESULT` | none | `==` `!=` |
//! | `ATTRS{file}`, `CONST{arch\|virt}` | required | `==` `!=` |
//! | `TEST{mode}` | optional | `==` `!=` |
//! | `ATTR{file}`, `SYSCTL{name}` | required | `==` `!=` `=` |
//! | `ENV{name}` | required | `==` `!=` `=` `+=` |
//! | `TAG` | none | `==` `!=` `=` `+=` `-=` |
//! | `NAME` | none | `==` `!=` `=` `:=` |
//! | `SYMLINK` | none | all six |
//! | `PROGRAM` | none | `==` `!=` `=` |
//! | `IMPORT{type}` | required | `=` `==` `!=` (udev runs it as a match either way) |
//! | `OWNER`, `GROUP`, `MODE` | none | `=` `:=` |
//! | `OPTIONS` | none | `=` `+=` `:=` |
//! | `RUN{type}` | optional | `=` `+=` `:=` |
//! | `SECLABEL{module}` | required | `=` `+=` |
//! | `GOTO`, `LABEL` | none | `=` |
//!
//! # Where this is stricter than udev
//!
//! udev accepts some mistakes with a warning and a guess ("assuming '='"), and `udevadm
//! verify` reports style problems as notices. This checker reports all of them as errors,
//! because in a file we ship each one is a bug:
//! operators udev only accepts by guessing (`GROUP+=`, `ENV{X}:=`, `ATTR{x}+=`, ...); a missing
//! comma between two pairs; a stray, doubled, leading or trailing comma; an unknown `OPTIONS`
//! value; a rule that only matches and assigns nothing ("the line has no effect"); a `LABEL`
//! no `GOTO` jumps to; a second `GOTO` or `LABEL` in one rule. It does not look at the system:
//! user and group names are not resolved, and sysfs attributes are not checked to exist.
//!
//! Line numbers are those of the physical line where the offending text starts (a rule
//! continued over several lines reports the line of the bad pair, not the rule's first line);
//! columns count characters from 1.
//!
//! # Layout
//!
//! | module | what |
//! |---|---|
//! | `model` | [`Operator`], [`Pair`], [`Rule`]: what a parsed file is |
//! | `error` | [`RuleError`], [`ErrorKind`] |
//! | `lexer` | physical lines to logical lines (continuations, comments), one pair at a time |
//! | `parse` | a logical line to a [`Rule`]; whole-rule and whole-file checks (`GOTO`/`LABEL`) |
//! | `keys` | the key table and the per-pair checks (attributes, values, substitutions) |
//! | `policy` | [`check_policy`] |
//! | [`eval`] | [`evaluate`]: what a set of rules files does to one device event (the `GROUP`, `MODE`, links it ends with), for testing how files combine |
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod error;
pub mod eval;
mod keys;
mod lexer;
mod model;
mod parse;
mod policy;

pub use error::{ErrorKind, RuleError};
pub use eval::{Event, Outcome, RulesDir, RulesFile, evaluate};
pub use model::{Operator, Pair, Rule};
pub use policy::check_policy;

use lexer::logical_lines;
use parse::{check_labels, parse_rule};

/// The longest logical line (after joining continuations) udev reads, in bytes: udev's
/// `UDEV_LINE_SIZE`. Lines this long or longer are ignored by udev and reported by [`check`].
pub const MAX_LINE_LEN: usize = 16 * 1024;

/// The group [`check_policy`] requires devices to be given to: `pos` (the same as
/// `pos_link::POS_GROUP`, which the permission hints name; a test checks that they agree).
pub const POS_GROUP: &str = "pos";

/// Parses udev rules text and checks its syntax (see the [crate docs](crate) for the grammar).
///
/// Returns the rules (one per logical line that is not blank or a comment) when there is no
/// error, or every error found, in line order. Never panics, whatever the input.
pub fn check(text: &str) -> Result<Vec<Rule>, Vec<RuleError>> {
    let mut errors = Vec::new();
    let mut rules = Vec::new();
    for logical in logical_lines(text, &mut errors) {
        let bytes: usize = logical.chars.iter().map(|ch| ch.c.len_utf8()).sum();
        if bytes >= MAX_LINE_LEN {
            errors.push(RuleError::new(
                logical.first_line,
                None,
                ErrorKind::LineTooLong,
                format!(
                    "rule is {bytes} bytes long; udev ignores lines of {MAX_LINE_LEN} bytes or more"
                ),
            ));
            continue;
        }
        if let Some(rule) = parse_rule(&logical, &mut errors) {
            rules.push(rule);
        }
    }
    check_labels(&rules, &mut errors);
    if errors.is_empty() {
        Ok(rules)
    } else {
        errors.sort_by_key(|e| (e.line, e.column.unwrap_or(0)));
        Err(errors)
    }
}

#[cfg(test)]
mod tests;

/// The README's example, compiled and run as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
