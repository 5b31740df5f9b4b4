//! This project's policy for its own rules file: [`check_policy`].

use crate::POS_GROUP;
use crate::error::{ErrorKind, RuleError};
use crate::keys::parse_octal_mode;
use crate::model::{Operator, Pair, Rule};

/// Checks this project's policy on parsed rules (normally those of the shipped file,
/// `pos_link::udev::RULES`):
///
/// - every `MODE` is a literal octal mode of 0660 or stricter: no world bits (the last digit
///   is 0), no execute, setuid, setgid or sticky bits;
/// - every rule that assigns `MODE` also assigns `GROUP="pos"`, and no rule assigns another
///   group;
/// - every `SYMLINK` assignment uses `+=` (`=` and `:=` would drop the links other rules make,
///   such as `/dev/serial/by-id/`) and every link it names starts with `pos/` and has no `..`;
/// - every rule that assigns `MODE`, `GROUP`, `OWNER` or `SYMLINK` ignores `remove` events,
///   either through its own `ACTION` match (`ACTION!="remove"`, `ACTION=="add|change"`) or by
///   sitting between an `ACTION=="remove", GOTO="x"` rule and `LABEL="x"`;
/// - no `TAG` assignment adds `uaccess`.
///
/// Returns the violations, in rule order; empty when there are none.
pub fn check_policy(rules: &[Rule]) -> Vec<RuleError> {
    let mut errors = Vec::new();
    // The label up to which `remove` events are jumped over, if we are inside such a region.
    let mut skipping_remove_until: Option<&str> = None;
    for rule in rules {
        if let (Some(target), Some(label)) = (skipping_remove_until, rule.label()) {
            if target == label {
                skipping_remove_until = None;
            }
        }

        let grants = rule.assignments().any(|p| {
            matches!(p.key.as_str(), "MODE" | "GROUP" | "OWNER" | "SYMLINK")
                && p.op != Operator::Remove
        });
        if grants && skipping_remove_until.is_none() && !excludes_remove(rule) {
            errors.push(RuleError::new(
                rule.line(),
                None,
                ErrorKind::UnguardedRemove,
                "rule grants access or adds links without excluding remove events: add ACTION!=\"remove\"",
            ));
        }

        let mut mode_pair = None;
        for pair in rule.assignments() {
            match pair.key.as_str() {
                "MODE" => {
                    mode_pair = Some(pair);
                    check_mode_policy(pair, &mut errors);
                }
                "GROUP" if pair.value != POS_GROUP => errors.push(RuleError::on_pair(
                    pair,
                    ErrorKind::GroupNotPos,
                    format!(
                        "GROUP=\"{}\": devices in this file are for group \"{POS_GROUP}\" only",
                        pair.value
                    ),
                )),
                "SYMLINK" => check_symlink_policy(pair, &mut errors),
                "TAG" if pair.op != Operator::Remove && pair.value == "uaccess" => {
                    errors.push(RuleError::on_pair(
                        pair,
                        ErrorKind::UaccessTag,
                        format!(
                            "TAG{}\"uaccess\" gives the device to the user logged in at the seat; \
                         the POS service gets access through GROUP=\"{POS_GROUP}\"",
                            pair.op
                        ),
                    ))
                }
                _ => {}
            }
        }
        if let Some(mode) = mode_pair {
            if rule.assigned("GROUP") != Some(POS_GROUP) {
                errors.push(RuleError::on_pair(
                    mode,
                    ErrorKind::GroupNotPos,
                    format!(
                        "rule sets MODE=\"{}\" but not GROUP=\"{POS_GROUP}\"",
                        mode.value
                    ),
                ));
            }
        }

        if let Some(target) = rule.goto() {
            if skipping_remove_until.is_none() && is_remove_skip(rule) {
                skipping_remove_until = Some(target);
            }
        }
    }
    errors
}

fn check_mode_policy(pair: &Pair, errors: &mut Vec<RuleError>) {
    match parse_octal_mode(&pair.value) {
        None => errors.push(RuleError::on_pair(
            pair,
            ErrorKind::UnsafeMode,
            format!("MODE=\"{}\" is not a literal octal mode, so it cannot be checked", pair.value),
        )),
        Some(mode) if mode & 0o007 != 0 => errors.push(RuleError::on_pair(
            pair,
            ErrorKind::UnsafeMode,
            format!(
                "MODE=\"{}\" is world-accessible: the last digit must be 0 (use 0660: owner and group \
                 {POS_GROUP} only)",
                pair.value
            ),
        )),
        Some(mode) if mode & !0o660 != 0 => errors.push(RuleError::on_pair(
            pair,
            ErrorKind::UnsafeMode,
            format!("MODE=\"{}\" grants more than 0660 (execute, setuid/setgid or sticky bits)", pair.value),
        )),
        Some(_) => {}
    }
}

fn check_symlink_policy(pair: &Pair, errors: &mut Vec<RuleError>) {
    match pair.op {
        Operator::Remove => return,
        Operator::Add => {}
        op => errors.push(RuleError::on_pair(
            pair,
            ErrorKind::SymlinkOutsidePos,
            format!(
                "SYMLINK{op}\"{}\" drops the links other rules made: use SYMLINK+=",
                pair.value
            ),
        )),
    }
    for link in pair.value.split_ascii_whitespace() {
        let inside = link.strip_prefix("pos/").is_some_and(|rest| {
            !rest.is_empty() && !rest.split('/').any(|part| part == ".." || part == ".")
        });
        if !inside {
            errors.push(RuleError::on_pair(
                pair,
                ErrorKind::SymlinkOutsidePos,
                format!("link \"{link}\" is outside /dev/pos/: links must start with \"pos/\""),
            ));
        }
    }
}

/// Whether an event with ACTION `remove` can never match this rule's ACTION pairs.
fn excludes_remove(rule: &Rule) -> bool {
    rule.find("ACTION", None)
        .any(|p| !action_pair_passes(p, "remove"))
}

/// A rule that only matches on ACTION, matches `remove` events and jumps: the classic
/// `ACTION=="remove", GOTO="end"` (or `ACTION!="add|change", GOTO="end"`).
fn is_remove_skip(rule: &Rule) -> bool {
    let mut matches = rule.matches().peekable();
    matches.peek().is_some()
        && matches.all(|p| p.key == "ACTION" && action_pair_passes(p, "remove"))
}

fn action_pair_passes(pair: &Pair, action: &str) -> bool {
    let any = pair.alternatives().any(|alt| {
        if pair.case_insensitive {
            glob_match(&alt.to_lowercase(), &action.to_lowercase())
        } else {
            glob_match(alt, action)
        }
    });
    match pair.op {
        Operator::Match => any,
        Operator::NoMatch => !any,
        _ => true,
    }
}

/// Shell-style glob match (`*`, `?`, `[...]`, `[!...]`), as fnmatch(3) without flags.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some('?') => Some(pi + 1),
            Some('[') => match bracket_match(&p, pi, t[ti]) {
                Some((true, next)) => Some(next),
                Some((false, _)) => None,
                // An unclosed bracket is a literal '['.
                None => (t[ti] == '[').then_some(pi + 1),
            },
            Some(&c) => (c == t[ti]).then_some(pi + 1),
            None => None,
        };
        match step {
            Some(next) => {
                pi = next;
                ti += 1;
            }
            None => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi.min(p.len())..].iter().all(|&c| c == '*')
}

/// Matches `c` against the bracket expression starting at `p[start] == '['`. Returns whether
/// it matched and the index after the closing `]`, or `None` if the bracket is not closed.
fn bracket_match(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &lo = p.get(i)?;
        if lo == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&hi| hi != ']') {
            let &hi = p.get(i + 2)?;
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
}
