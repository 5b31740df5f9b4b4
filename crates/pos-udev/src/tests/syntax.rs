//! Each kind of typo is reported, with its line.

use super::*;

#[test]
fn unknown_key_is_reported_with_its_line() {
    let e = only_error(&format!(
        "{GOOD}\n{GOOD}\nSUBSYSTEM==\"usb\", VENDOR==\"0801\", GROUP=\"pos\"\n"
    ));
    assert_eq!(
        (e.line, e.column, e.kind),
        (3, Some(19), ErrorKind::UnknownKey)
    );
    assert_eq!(e.to_string(), "line 3: unknown key \"VENDOR\"");
}

#[test]
fn lower_case_and_removed_keys_get_a_hint() {
    let e = only_error("subsystem==\"usb\", GROUP=\"pos\"\n");
    assert_eq!(e.kind, ErrorKind::UnknownKey);
    assert!(e.message.contains("SUBSYSTEM"), "{e}");
    let e = only_error("BUS==\"usb\", GROUP=\"pos\"\n");
    assert!(e.message.contains("SUBSYSTEMS"), "{e}");
}

#[test]
fn unclosed_attribute_brace_is_an_unknown_key() {
    let e = only_error(&format!(
        "# header\n\n{GOOD}\nSUBSYSTEM==\"usb\", ATTR{{idVendor==\"0801\", GROUP=\"pos\"\n"
    ));
    assert_eq!((e.line, e.kind), (4, ErrorKind::UnknownKey));
    assert!(
        e.to_string()
            .starts_with("line 4: unknown key \"ATTR{idVendor\""),
        "{e}"
    );
}

#[test]
fn bad_operator_is_reported() {
    let e = only_error(&format!(
        "{GOOD}\nSUBSYSTEM==\"usb\", ACTION=!\"remove\", GROUP=\"pos\"\n"
    ));
    assert_eq!(
        (e.line, e.column, e.kind),
        (2, Some(25), ErrorKind::BadOperator)
    );
    assert!(
        e.message.contains("\"=!\"") && e.message.contains("ACTION") && e.message.contains("!="),
        "{e}"
    );

    for op in ["===", "=>", "<=", "=+", "!"] {
        let e = only_error(&format!("KERNEL{op}\"lp0\", GROUP=\"pos\"\n"));
        assert_eq!(e.kind, ErrorKind::BadOperator, "{op}: {e}");
    }
}

#[test]
fn match_operator_on_assignment_only_key() {
    let e = only_error(&format!(
        "{GOOD}\n\n\nSUBSYSTEM==\"usb\", GROUP==\"pos\", MODE=\"0660\"\n"
    ));
    assert_eq!((e.line, e.kind), (4, ErrorKind::OperatorNotAllowed));
    assert!(
        e.message.contains("GROUP") && e.message.contains("\"==\""),
        "{e}"
    );
    for text in [
        "MODE!=\"0660\"",
        "OWNER==\"root\"",
        "RUN==\"/bin/true\"",
        "GOTO==\"x\"",
        "OPTIONS==\"watch\"",
    ] {
        let e = only_error(&format!("KERNEL==\"lp0\", {text}\n"));
        assert_eq!(e.kind, ErrorKind::OperatorNotAllowed, "{text}: {e}");
    }
}

#[test]
fn assignment_operator_on_match_only_key() {
    let e = only_error(&format!("{GOOD}\nSUBSYSTEM=\"usb\", GROUP=\"pos\"\n"));
    assert_eq!(
        (e.line, e.column, e.kind),
        (2, Some(10), ErrorKind::OperatorNotAllowed)
    );
    assert!(
        e.message.contains("SUBSYSTEM") && e.message.contains("\"==\""),
        "{e}"
    );
    for text in [
        "KERNEL+=\"lp0\"",
        "ATTRS{idVendor}=\"0801\"",
        "ACTION:=\"add\"",
        "DRIVERS-=\"usb\"",
    ] {
        let e = only_error(&format!("{text}, GROUP=\"pos\"\n"));
        assert_eq!(e.kind, ErrorKind::OperatorNotAllowed, "{text}: {e}");
    }
}

#[test]
fn operators_udev_only_guesses_at_are_rejected() {
    for text in [
        "GROUP+=\"pos\"",
        "ENV{X}:=\"1\"",
        "ATTR{power/control}+=\"on\"",
        "TAG:=\"x\"",
        "GOTO:=\"x\"",
    ] {
        let e = only_error(&format!("KERNEL==\"lp0\", {text}\n"));
        assert_eq!(e.kind, ErrorKind::OperatorNotAllowed, "{text}: {e}");
        assert!(e.message.contains("not allowed"), "{e}");
    }
}

#[test]
fn missing_closing_quote() {
    // `"pos, MODE="` reads as GROUP's value; what follows it is garbage, all on line 3.
    let errors = errors_of(&format!(
        "{GOOD}\n{GOOD}\nKERNEL==\"lp0\", GROUP=\"pos, MODE=\"0660\"\n"
    ));
    assert!(errors.iter().all(|e| e.line == 3), "{errors:#?}");
    assert!(
        errors.iter().any(|e| e.message.contains("\"pos, MODE=\"")),
        "{errors:#?}"
    );
    assert!(
        errors.iter().any(|e| e.kind == ErrorKind::MissingComma),
        "{errors:#?}"
    );

    let e = only_error(&format!("{GOOD}\nKERNEL==\"lp0\", GROUP=\"pos\n{GOOD}\n"));
    assert_eq!(
        (e.line, e.column, e.kind),
        (2, Some(22), ErrorKind::UnterminatedValue)
    );
    assert!(e.message.contains("GROUP"), "{e}");
}

#[test]
fn unquoted_value() {
    let e = only_error(&format!("{GOOD}\nKERNEL==lp0, GROUP=\"pos\"\n"));
    assert_eq!((e.line, e.kind), (2, ErrorKind::UnquotedValue));
    assert!(
        e.message.contains("KERNEL") && e.message.contains("double quotes"),
        "{e}"
    );
    let e = only_error("KERNEL=='lp0', GROUP=\"pos\"\n");
    assert_eq!(e.kind, ErrorKind::UnquotedValue);
}

#[test]
fn missing_comma_between_pairs() {
    let e = only_error(&format!(
        "{GOOD}\nSUBSYSTEM==\"usb\" GROUP=\"pos\", MODE=\"0660\"\n"
    ));
    assert_eq!(
        (e.line, e.column, e.kind),
        (2, Some(18), ErrorKind::MissingComma)
    );
    assert!(
        e.message.contains("SUBSYSTEM") && e.message.contains("GROUP"),
        "{e}"
    );
    // No blank at all.
    let e = only_error("SUBSYSTEM==\"usb\"GROUP=\"pos\"\n");
    assert_eq!(e.kind, ErrorKind::MissingComma);
}

#[test]
fn errors_after_a_missing_comma_are_still_found() {
    let errors = errors_of("SUBSYSTEM==\"usb\" GROUP==\"pos\"\n");
    let kinds: Vec<ErrorKind> = errors.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [ErrorKind::MissingComma, ErrorKind::OperatorNotAllowed]
    );
}

#[test]
fn stray_commas() {
    for text in [
        ", KERNEL==\"lp0\", GROUP=\"pos\"",
        "KERNEL==\"lp0\", GROUP=\"pos\",",
        "KERNEL==\"lp0\",, GROUP=\"pos\"",
    ] {
        let e = only_error(text);
        assert_eq!(e.kind, ErrorKind::StrayComma, "{text}: {e}");
    }
}

#[test]
fn missing_attribute_on_attrs() {
    let e = only_error(&format!(
        "{GOOD}\nSUBSYSTEM==\"tty\", ATTRS==\"0403\", GROUP=\"pos\"\n"
    ));
    assert_eq!((e.line, e.kind), (2, ErrorKind::MissingAttribute));
    assert!(e.message.contains("ATTRS{"), "{e}");
    for text in [
        "ENV==\"x\"",
        "ATTR{}==\"x\"",
        "IMPORT=\"usb_id\"",
        "SECLABEL=\"x\"",
    ] {
        let e = only_error(&format!("KERNEL==\"lp0\", {text}, GROUP=\"pos\"\n"));
        assert_eq!(e.kind, ErrorKind::MissingAttribute, "{text}: {e}");
    }
}

#[test]
fn unexpected_attribute_on_group() {
    let e = only_error(&format!("{GOOD}\nKERNEL==\"lp0\", GROUP{{gid}}=\"pos\"\n"));
    assert_eq!(
        (e.line, e.column, e.kind),
        (2, Some(16), ErrorKind::UnexpectedAttribute)
    );
    assert!(e.message.contains("GROUP{gid}"), "{e}");
    let e = only_error("SUBSYSTEM{x}==\"usb\", GROUP=\"pos\"\n");
    assert_eq!(e.kind, ErrorKind::UnexpectedAttribute);
}

#[test]
fn bad_attributes() {
    for text in [
        "CONST{foo}==\"x\"",
        "IMPORT{bogus}=\"x\"",
        "RUN{script}+=\"x\"",
        "TEST{rw}==\"/x\"",
    ] {
        let e = only_error(&format!("KERNEL==\"lp0\", {text}, GROUP=\"pos\"\n"));
        assert_eq!(e.kind, ErrorKind::BadAttribute, "{text}: {e}");
    }
    let e = only_error("KERNEL==\"lp0\", ENV{DEVNAME}=\"x\"\n");
    assert_eq!(e.kind, ErrorKind::BadAttribute);
    // Matching a read-only property is fine.
    rules_of("ENV{DEVTYPE}==\"usb_device\", GROUP=\"pos\"\n");
}

#[test]
fn goto_without_label() {
    let e = only_error(&format!(
        "{GOOD}\nACTION==\"remove\", GOTO=\"pos_end\"\n{GOOD}\n"
    ));
    assert_eq!(
        (e.line, e.column, e.kind),
        (2, Some(19), ErrorKind::UndefinedLabel)
    );
    assert_eq!(
        e.to_string(),
        "line 2: GOTO=\"pos_end\" has no matching LABEL=\"pos_end\" later in the file"
    );
}

#[test]
fn goto_and_label_problems_are_all_reported() {
    let errors = errors_of(&format!(
        "{GOOD}\nACTION==\"remove\", GOTO=\"pos_end\"\n{GOOD}\nLABEL=\"pos_ned\"\n"
    ));
    let found: Vec<(usize, ErrorKind)> = errors.iter().map(|e| (e.line, e.kind)).collect();
    assert_eq!(
        found,
        [(2, ErrorKind::UndefinedLabel), (4, ErrorKind::UnusedLabel)]
    );

    // udev only jumps forward.
    let errors = errors_of("LABEL=\"back\"\nACTION==\"remove\", GOTO=\"back\"\n");
    let found: Vec<(usize, ErrorKind)> = errors.iter().map(|e| (e.line, e.kind)).collect();
    assert_eq!(
        found,
        [(1, ErrorKind::UnusedLabel), (2, ErrorKind::UndefinedLabel)]
    );
    assert!(errors[1].message.contains("forward"), "{}", errors[1]);

    let e = only_error("ACTION==\"remove\", GOTO=\"a\", GOTO=\"b\"\nLABEL=\"a\"\n");
    assert_eq!(e.kind, ErrorKind::DuplicateGotoOrLabel);
}

#[test]
fn goto_with_label_is_accepted() {
    let rules = rules_of(&format!(
        "ACTION==\"remove\", GOTO=\"pos_end\"\n{GOOD}\nLABEL=\"pos_end\"\n"
    ));
    assert_eq!(rules[0].goto(), Some("pos_end"));
    assert_eq!(rules[2].label(), Some("pos_end"));
}

#[test]
fn values_are_checked() {
    for (text, needle) in [
        ("SYMLINK+=\"pos/x-$env\"", "$env"),
        ("SYMLINK+=\"pos/x-$bogus\"", "unknown substitution"),
        ("SYMLINK+=\"pos/x-$env{ID_SERIAL\"", "closing"),
        ("SYMLINK+=\"pos/x-%q\"", "unknown substitution"),
        ("IMPORT{builtin}=\"usb_ids\"", "unknown builtin"),
        ("RUN{builtin}+=\"frobnicate\"", "unknown builtin"),
        ("OPTIONS+=\"watch,nowatch\"", "unknown option"),
        ("OPTIONS=\"link_priority=high\"", "integer"),
        ("MODE=\"rw-rw----\"", "octal"),
        ("MODE=\"08\"", "octal"),
        ("TAG+=\"\"", "non-empty"),
        ("RUN+=\"\"", "non-empty"),
        ("NAME=\"%k\"", "no effect"),
        ("SYMLINK+=e\"pos/\\q\"", "escape"),
    ] {
        let e = only_error(&format!("KERNEL==\"lp0\", {text}\n"));
        assert_eq!(e.kind, ErrorKind::BadValue, "{text}: {e}");
        assert!(e.message.contains(needle), "{text}: {e}");
    }
    // Doubled $ and % are literal; globs in match values are not substitutions.
    rules_of(
        "KERNEL==\"lp[0-9]*|usb%d\", RUN+=\"/bin/echo $$HOME 100%%\", SYMLINK+=\"pos/$result{2+}\"\n",
    );
}

#[test]
fn rule_without_assignment_has_no_effect() {
    let e = only_error(&format!(
        "{GOOD}\nSUBSYSTEM==\"usb\", ATTR{{idVendor}}==\"0801\"\n"
    ));
    assert_eq!((e.line, e.kind), (2, ErrorKind::NoEffect));
    // IMPORT and PROGRAM count as doing something.
    rules_of(
        "SUBSYSTEM==\"hidraw\", IMPORT{builtin}=\"usb_id\"\nSUBSYSTEM==\"usb\", PROGRAM==\"/bin/true\"\n",
    );
}

#[test]
fn end_of_line_comment_and_misplaced_backslash() {
    let e = only_error(&format!("{GOOD} # printers\n"));
    assert_eq!((e.line, e.kind), (1, ErrorKind::UnexpectedCharacter));
    assert!(e.message.contains("comment"), "{e}");
    let e = only_error(&format!("{GOOD}, \\ \nKERNEL==\"lp0\", GROUP=\"pos\"\n"));
    assert_eq!(e.kind, ErrorKind::UnexpectedCharacter);
    assert!(e.message.contains("backslash"), "{e}");
}

#[test]
fn errors_are_collected_across_lines() {
    let text = "FOO==\"x\", GROUP=\"pos\"\nSUBSYSTEM=\"usb\", GROUP=\"pos\"\n# ok\nKERNEL==\"lp0\", GROUP==\"pos\"\n";
    let errors = errors_of(text);
    let found: Vec<(usize, ErrorKind)> = errors.iter().map(|e| (e.line, e.kind)).collect();
    assert_eq!(
        found,
        [
            (1, ErrorKind::UnknownKey),
            (2, ErrorKind::OperatorNotAllowed),
            (4, ErrorKind::OperatorNotAllowed)
        ]
    );
}
