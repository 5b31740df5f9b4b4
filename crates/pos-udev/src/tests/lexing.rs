//! Lexing: continuations, comments, long lines, quoting and escapes; the key table; globs.

use super::*;
use crate::keys::{AttrRule, KEYS};
use crate::policy::glob_match;

#[test]
fn line_continuation_joins_lines() {
    let text = "# comment\nSUBSYSTEM==\"usb\", \\\n   ENV{DEVTYPE}==\"usb_device\", \\\n\tGROUP=\"pos\"\n\n";
    let rules = rules_of(text);
    assert_eq!(rules.len(), 1);
    let rule = &rules[0];
    assert_eq!((rule.line(), rule.last_line()), (2, 4));
    let keys: Vec<(&str, usize, usize)> = rule
        .pairs()
        .iter()
        .map(|p| (p.key.as_str(), p.line, p.column))
        .collect();
    assert_eq!(keys, [("SUBSYSTEM", 2, 1), ("ENV", 3, 4), ("GROUP", 4, 2)]);
    assert_eq!(rule.pairs()[1].attr.as_deref(), Some("DEVTYPE"));
    assert_eq!(rule.pairs()[1].value, "usb_device");
}

#[test]
fn errors_in_continued_rules_report_the_physical_line() {
    let text = "SUBSYSTEM==\"usb\", \\\n  ENV{DEVTYPE}==\"usb_device\", \\\n  GROUP==\"pos\"\n";
    let e = only_error(text);
    assert_eq!(
        (e.line, e.column, e.kind),
        (3, Some(8), ErrorKind::OperatorNotAllowed)
    );
}

#[test]
fn continuation_joins_without_a_blank() {
    // udev drops the next line's indentation and inserts nothing: the pairs touch.
    let e = only_error("SUBSYSTEM==\"usb\"\\\n  GROUP=\"pos\"\n");
    assert_eq!((e.line, e.kind), (2, ErrorKind::MissingComma));
    // A quoted value may span a continuation.
    let rules = rules_of("KERNEL==\"lp0\", RUN+=\"/bin/echo a \\\n  b\"\n");
    assert_eq!(rules[0].pairs()[1].value, "/bin/echo a b");
}

#[test]
fn comment_lines_inside_a_continuation_are_skipped() {
    let text =
        "SUBSYSTEM==\"usb\", \\\n# why the group\n  # indented comment \\\n  GROUP=\"pos\"\n";
    let rules = rules_of(text);
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].pairs().len(), 2);
    assert_eq!(rules[0].assigned("GROUP"), Some("pos"));
}

#[test]
fn comments_blank_lines_and_crlf_are_ignored() {
    let text = "# a comment\r\n\r\n   \t\r\n    # indented comment \"with quotes\r\nKERNEL==\"lp0\", GROUP=\"pos\"\r\n";
    let rules = rules_of(text);
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].line(), 5);
    assert_eq!(rules[0].assigned("GROUP"), Some("pos"));
    assert_eq!(check("").map(|r| r.len()), Ok(0));
    assert_eq!(check("# only a comment\n\n").map(|r| r.len()), Ok(0));
}

#[test]
fn file_ending_in_a_continuation_is_an_error() {
    let e = only_error("KERNEL==\"lp0\", GROUP=\"pos\", \\\n");
    assert_eq!((e.line, e.kind), (1, ErrorKind::UnterminatedContinuation));
}

#[test]
fn over_long_lines_are_rejected() {
    let text = format!(
        "KERNEL==\"lp0\", RUN+=\"/bin/echo {}\"\n",
        "x".repeat(MAX_LINE_LEN)
    );
    assert_eq!(only_error(&text).kind, ErrorKind::LineTooLong);
}

#[test]
fn quotes_escapes_and_prefixes() {
    let rules = rules_of(
        "KERNEL==\"lp0\", ENV{X}=\"say \\\"hi\\\"\", ENV{Y}=e\"a\\tb\\x41\\n\", ATTRS{product}==i\"magtek*\", \
         ENV{Z}==ei\"x\\\\y\", SYMLINK += \"pos/spaced\"\n",
    );
    let pairs = rules[0].pairs();
    assert_eq!(pairs[1].value, "say \"hi\"");
    assert!(!pairs[1].escaped);
    assert_eq!(pairs[2].value, "a\tbA\n");
    assert!(pairs[2].escaped);
    assert!(pairs[3].case_insensitive && !pairs[3].escaped);
    assert_eq!(pairs[4].value, "x\\y");
    assert!(pairs[4].escaped && pairs[4].case_insensitive);
    assert_eq!(
        (pairs[5].op, pairs[5].value.as_str()),
        (Operator::Add, "pos/spaced")
    );
    // Display writes a pair back in rules syntax.
    assert_eq!(pairs[1].to_string(), "ENV{X}=\"say \\\"hi\\\"\"");
    assert_eq!(pairs[3].to_string(), "ATTRS{product}==i\"magtek*\"");

    // A backslash before the closing quote escapes it, as in udev.
    assert_eq!(
        only_error("KERNEL==\"lp0\", RUN+=\"c:\\\"\n").kind,
        ErrorKind::UnterminatedValue
    );
    // `i` only with matches; TEST, PROGRAM and IMPORT do not take it.
    assert_eq!(
        only_error("KERNEL==\"lp0\", GROUP=i\"pos\"\n").kind,
        ErrorKind::UnquotedValue
    );
    assert_eq!(
        only_error("KERNEL==\"lp0\", TEST==i\"/x\", GROUP=\"pos\"\n").kind,
        ErrorKind::UnquotedValue
    );
    // Unknown or doubled prefixes.
    assert_eq!(
        only_error("KERNEL==x\"lp0\", GROUP=\"pos\"\n").kind,
        ErrorKind::UnquotedValue
    );
    assert_eq!(
        only_error("KERNEL==ee\"lp0\", GROUP=\"pos\"\n").kind,
        ErrorKind::UnquotedValue
    );
}

#[test]
fn every_key_in_the_table_parses_with_its_operators() {
    for spec in KEYS {
        for &op in spec.ops {
            let attr = match (spec.name, spec.attr) {
                ("CONST", _) => "{arch}",
                ("IMPORT", _) | ("RUN", _) => "{program}",
                ("TEST", _) => "{0644}",
                ("ENV", _) => "{POS_X}",
                (_, AttrRule::Required) => "{x}",
                _ => "",
            };
            let value = match spec.name {
                "MODE" => "0660",
                "OPTIONS" => "watch",
                "GOTO" => "pos_end",
                "LABEL" => "pos_start",
                _ => "/bin/true",
            };
            let mut text = format!(
                "KERNEL==\"lp0\", {}{attr}{op}\"{value}\", ENV{{POS_Y}}=\"1\"\n",
                spec.name
            );
            if spec.name == "GOTO" {
                text.push_str("LABEL=\"pos_end\"\n");
            }
            if spec.name == "LABEL" {
                text.insert_str(0, "GOTO=\"pos_start\"\n");
            }
            let rules = rules_of(&text);
            let rule = if spec.name == "LABEL" {
                &rules[1]
            } else {
                &rules[0]
            };
            let pair = &rule.pairs()[1];
            assert_eq!(pair.key, spec.name, "{text}");
            assert_eq!(pair.op, op, "{text}");
            assert_eq!(pair.value, value, "{text}");
        }
    }
}

#[test]
fn glob_matching_for_action_guards() {
    assert!(glob_match("remove", "remove"));
    assert!(glob_match("rem*", "remove"));
    assert!(glob_match("*", "remove"));
    assert!(glob_match("r?move", "remove"));
    assert!(glob_match("[qr]emove", "remove"));
    assert!(glob_match("[a-z]emove", "remove"));
    assert!(!glob_match("[!r]emove", "remove"));
    assert!(!glob_match("add", "remove"));
    assert!(!glob_match("remove?", "remove"));
    assert!(glob_match("[", "["));
    assert!(!glob_match("[abc", "a"));
}
