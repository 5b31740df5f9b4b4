//! Parsing a logical line into a [`Rule`], and the checks over a whole rule and a whole file.

use crate::error::{ErrorKind, RuleError};
use crate::keys::validate_pair;
use crate::lexer::{Cursor, LogicalLine, is_blank, is_operator_char, lex_pair};
use crate::model::{Pair, Rule};

/// Parses one logical line into a rule, reporting what is wrong; `None` when anything is.
pub(crate) fn parse_rule(logical: &LogicalLine, errors: &mut Vec<RuleError>) -> Option<Rule> {
    let errors_before = errors.len();
    let mut cur = Cursor {
        chars: &logical.chars,
        pos: 0,
    };
    let mut pairs = Vec::new();
    let mut ok = true;

    cur.skip_blanks();
    if cur.peek() == Some(',') {
        errors.push(RuleError::at(
            cur.loc(),
            ErrorKind::StrayComma,
            "stray comma at the start of the rule",
        ));
        while cur.peek().is_some_and(|c| c == ',' || is_blank(c)) {
            cur.bump();
        }
    }

    loop {
        cur.skip_blanks();
        if cur.at_end() {
            break;
        }
        let raw = match lex_pair(&mut cur, errors) {
            Some(raw) => raw,
            None => {
                ok = false;
                break; // cannot resynchronise inside this line
            }
        };
        let previous = raw.key_text();
        if validate_pair(&raw, errors) {
            if let Some(op) = raw.op {
                pairs.push(Pair {
                    key: raw.key,
                    attr: raw.attr,
                    op,
                    value: raw.value,
                    escaped: raw.escaped,
                    case_insensitive: raw.case_insensitive,
                    line: raw.key_loc.line,
                    column: raw.key_loc.col,
                });
            }
        } else {
            ok = false;
        }

        // Between pairs: blanks, exactly one comma, blanks.
        cur.skip_blanks();
        match cur.peek() {
            None => break,
            Some(',') => {
                cur.bump();
                cur.skip_blanks();
                match cur.peek() {
                    None => {
                        errors.push(RuleError::at(
                            cur.loc(),
                            ErrorKind::StrayComma,
                            format!("stray comma after {previous} at the end of the rule"),
                        ));
                        ok = false;
                        break;
                    }
                    Some(',') => {
                        errors.push(RuleError::at(
                            cur.loc(),
                            ErrorKind::StrayComma,
                            format!("more than one comma after {previous}"),
                        ));
                        ok = false;
                        while cur.peek().is_some_and(|c| c == ',' || is_blank(c)) {
                            cur.bump();
                        }
                    }
                    Some(_) => {}
                }
            }
            Some('#') => {
                errors.push(RuleError::at(
                    cur.loc(),
                    ErrorKind::UnexpectedCharacter,
                    format!(
                        "\"#\" after {previous}: udev has no end-of-line comments, \
                         put the comment on a line of its own"
                    ),
                ));
                ok = false;
                break;
            }
            Some('\\') => {
                errors.push(RuleError::at(
                    cur.loc(),
                    ErrorKind::UnexpectedCharacter,
                    format!(
                        "backslash after {previous} is not the last character of the line \
                         (trailing blanks after a continuation backslash?)"
                    ),
                ));
                ok = false;
                break;
            }
            Some(_) => {
                let next_loc = cur.loc();
                let next: String = cur.chars[cur.pos..]
                    .iter()
                    .map(|ch| ch.c)
                    .take_while(|&c| !is_blank(c) && !is_operator_char(c) && c != '"' && c != ',')
                    .take(40)
                    .collect();
                errors.push(RuleError::at(
                    next_loc,
                    ErrorKind::MissingComma,
                    format!("missing comma between {previous} and {next}"),
                ));
                ok = false;
                // The next pair starts here: keep going to find more errors.
            }
        }
    }

    if !ok || errors.len() > errors_before {
        return None;
    }
    let rule = Rule {
        line: logical.first_line,
        last_line: logical.last_line,
        pairs,
    };
    check_rule(&rule, errors);
    Some(rule)
}

fn check_rule(rule: &Rule, errors: &mut Vec<RuleError>) {
    for key in ["GOTO", "LABEL"] {
        let mut found = rule.pairs.iter().filter(|p| p.key == key);
        if let (Some(_), Some(second)) = (found.next(), found.next()) {
            errors.push(RuleError::on_pair(
                second,
                ErrorKind::DuplicateGotoOrLabel,
                format!(
                    "a second {key} in one rule: udev ignores {key}=\"{}\"",
                    second.value
                ),
            ));
        }
    }
    let has_effect = rule
        .pairs
        .iter()
        .any(|p| p.is_assignment() || matches!(p.key.as_str(), "PROGRAM" | "IMPORT"));
    if !has_effect {
        let keys: Vec<String> = rule.pairs.iter().map(|p| p.to_string()).collect();
        errors.push(RuleError::new(
            rule.line,
            None,
            ErrorKind::NoEffect,
            format!(
                "rule only matches ({}) and assigns nothing, so it has no effect",
                keys.join(", ")
            ),
        ));
    }
}

/// Each GOTO needs a LABEL of that name in a later rule; each LABEL should be jumped to.
pub(crate) fn check_labels(rules: &[Rule], errors: &mut Vec<RuleError>) {
    let mut used = vec![false; rules.len()];
    for (index, rule) in rules.iter().enumerate() {
        let Some(goto) = rule.pairs.iter().find(|p| p.assigns("GOTO")) else {
            continue;
        };
        let target = rules
            .iter()
            .enumerate()
            .skip(index + 1)
            .find(|(_, later)| later.label() == Some(goto.value.as_str()));
        match target {
            Some((target_index, _)) => {
                if let Some(flag) = used.get_mut(target_index) {
                    *flag = true;
                }
            }
            None => {
                let earlier = rules[..index]
                    .iter()
                    .any(|r| r.label() == Some(goto.value.as_str()));
                let why = if earlier {
                    " (udev only jumps forward; that label comes earlier)"
                } else {
                    ""
                };
                errors.push(RuleError::on_pair(
                    goto,
                    ErrorKind::UndefinedLabel,
                    format!(
                        "GOTO=\"{}\" has no matching LABEL=\"{}\" later in the file{why}",
                        goto.value, goto.value
                    ),
                ));
            }
        }
    }
    for (rule, used) in rules.iter().zip(used) {
        if used {
            continue;
        }
        if let Some(label) = rule.pairs.iter().find(|p| p.assigns("LABEL")) {
            errors.push(RuleError::on_pair(
                label,
                ErrorKind::UnusedLabel,
                format!("LABEL=\"{}\" is not the target of any GOTO", label.value),
            ));
        }
    }
}
