//! The key table (which keys exist, which operators and attributes each takes) and the checks
//! of one pair against it: attributes, values, `OPTIONS`, `$`/`%` substitutions.

use crate::error::{ErrorKind, RuleError};
use crate::lexer::{RawPair, is_blank};
use crate::model::Operator;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttrRule {
    Forbidden,
    Required,
    Optional,
}

pub(crate) struct KeySpec {
    pub(crate) name: &'static str,
    pub(crate) attr: AttrRule,
    pub(crate) ops: &'static [Operator],
}

const MATCH_OPS: &[Operator] = &[Operator::Match, Operator::NoMatch];
const MATCH_OR_ASSIGN: &[Operator] = &[Operator::Match, Operator::NoMatch, Operator::Assign];
const ENV_OPS: &[Operator] = &[
    Operator::Match,
    Operator::NoMatch,
    Operator::Assign,
    Operator::Add,
];
const TAG_OPS: &[Operator] = &[
    Operator::Match,
    Operator::NoMatch,
    Operator::Assign,
    Operator::Add,
    Operator::Remove,
];
const NAME_OPS: &[Operator] = &[
    Operator::Match,
    Operator::NoMatch,
    Operator::Assign,
    Operator::AssignFinal,
];
const IMPORT_OPS: &[Operator] = &[Operator::Assign, Operator::Match, Operator::NoMatch];
const FINAL_ASSIGN: &[Operator] = &[Operator::Assign, Operator::AssignFinal];
const LIST_ASSIGN: &[Operator] = &[Operator::Assign, Operator::Add, Operator::AssignFinal];
const SECLABEL_OPS: &[Operator] = &[Operator::Assign, Operator::Add];
const PLAIN_ASSIGN: &[Operator] = &[Operator::Assign];

pub(crate) const KEYS: &[KeySpec] = &[
    KeySpec {
        name: "ACTION",
        attr: AttrRule::Forbidden,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "DEVPATH",
        attr: AttrRule::Forbidden,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "KERNEL",
        attr: AttrRule::Forbidden,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "KERNELS",
        attr: AttrRule::Forbidden,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "SUBSYSTEM",
        attr: AttrRule::Forbidden,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "SUBSYSTEMS",
        attr: AttrRule::Forbidden,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "DRIVER",
        attr: AttrRule::Forbidden,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "DRIVERS",
        attr: AttrRule::Forbidden,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "TAGS",
        attr: AttrRule::Forbidden,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "RESULT",
        attr: AttrRule::Forbidden,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "ATTRS",
        attr: AttrRule::Required,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "CONST",
        attr: AttrRule::Required,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "TEST",
        attr: AttrRule::Optional,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "ATTR",
        attr: AttrRule::Required,
        ops: MATCH_OR_ASSIGN,
    },
    KeySpec {
        name: "SYSCTL",
        attr: AttrRule::Required,
        ops: MATCH_OR_ASSIGN,
    },
    KeySpec {
        name: "ENV",
        attr: AttrRule::Required,
        ops: ENV_OPS,
    },
    KeySpec {
        name: "TAG",
        attr: AttrRule::Forbidden,
        ops: TAG_OPS,
    },
    KeySpec {
        name: "NAME",
        attr: AttrRule::Forbidden,
        ops: NAME_OPS,
    },
    KeySpec {
        name: "SYMLINK",
        attr: AttrRule::Forbidden,
        ops: &Operator::ALL,
    },
    KeySpec {
        name: "PROGRAM",
        attr: AttrRule::Forbidden,
        ops: MATCH_OR_ASSIGN,
    },
    KeySpec {
        name: "IMPORT",
        attr: AttrRule::Required,
        ops: IMPORT_OPS,
    },
    KeySpec {
        name: "OWNER",
        attr: AttrRule::Forbidden,
        ops: FINAL_ASSIGN,
    },
    KeySpec {
        name: "GROUP",
        attr: AttrRule::Forbidden,
        ops: FINAL_ASSIGN,
    },
    KeySpec {
        name: "MODE",
        attr: AttrRule::Forbidden,
        ops: FINAL_ASSIGN,
    },
    KeySpec {
        name: "OPTIONS",
        attr: AttrRule::Forbidden,
        ops: LIST_ASSIGN,
    },
    KeySpec {
        name: "RUN",
        attr: AttrRule::Optional,
        ops: LIST_ASSIGN,
    },
    KeySpec {
        name: "SECLABEL",
        attr: AttrRule::Required,
        ops: SECLABEL_OPS,
    },
    KeySpec {
        name: "GOTO",
        attr: AttrRule::Forbidden,
        ops: PLAIN_ASSIGN,
    },
    KeySpec {
        name: "LABEL",
        attr: AttrRule::Forbidden,
        ops: PLAIN_ASSIGN,
    },
];

/// Names of udev builtins (`IMPORT{builtin}`, `RUN{builtin}`), as of systemd 257.
const BUILTINS: &[&str] = &[
    "blkid",
    "btrfs",
    "dissect_image",
    "factory_reset",
    "hwdb",
    "input_id",
    "keyboard",
    "kmod",
    "net_driver",
    "net_id",
    "net_setup_link",
    "path_id",
    "tpm2_id",
    "uaccess",
    "usb_id",
];

/// Device properties udev refuses to let rules set (`device_property_can_set()`).
const READ_ONLY_PROPERTIES: &[&str] = &[
    "ACTION",
    "SEQNUM",
    "SYNTH_UUID",
    "DEVPATH",
    "DEVPATH_OLD",
    "SUBSYSTEM",
    "DEVTYPE",
    "DRIVER",
    "MODALIAS",
    "DEVNAME",
    "DEVMODE",
    "DEVUID",
    "DEVGID",
    "MAJOR",
    "MINOR",
    "DISKSEQ",
    "PARTN",
    "IFINDEX",
    "INTERFACE",
    "INTERFACE_OLD",
    "DEVLINKS",
    "TAGS",
    "CURRENT_TAGS",
    "USEC_INITIALIZED",
    "UDEV_DATABASE_VERSION",
];

/// Keys that old udev versions had and current ones reject, with what to use instead.
const REMOVED_KEYS: &[(&str, &str)] = &[
    ("BUS", "SUBSYSTEMS"),
    ("SYSFS", "ATTRS{...}"),
    ("ID", "KERNELS"),
    (
        "DEVLINKS",
        "SYMLINK (or ENV{DEVLINKS} to match the property)",
    ),
    ("DEVTYPE", "ENV{DEVTYPE}"),
    ("IDVENDOR", "ATTRS{idVendor}"),
];

fn key_spec(name: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|spec| spec.name == name)
}

fn ops_list(ops: &[Operator]) -> String {
    ops.iter()
        .map(|op| op.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks a lexed pair against the key table and the value rules. Returns true if it is valid.
pub(crate) fn validate_pair(raw: &RawPair, errors: &mut Vec<RuleError>) -> bool {
    let before = errors.len();
    let key_text = raw.key_text();
    let key = raw.key.as_str();

    let Some(spec) = key_spec(key) else {
        let hint = if let Some((_, instead)) = REMOVED_KEYS
            .iter()
            .find(|(old, _)| old.eq_ignore_ascii_case(key))
        {
            format!(" (use {instead})")
        } else if let Some(spec) = KEYS.iter().find(|spec| spec.name.eq_ignore_ascii_case(key)) {
            format!(" (keys are upper case: {})", spec.name)
        } else {
            String::new()
        };
        errors.push(RuleError::at(
            raw.key_loc,
            ErrorKind::UnknownKey,
            format!("unknown key \"{key_text}\"{hint}"),
        ));
        return false;
    };

    match (spec.attr, raw.attr.as_deref()) {
        (AttrRule::Forbidden, Some(attr)) => errors.push(RuleError::at(
            raw.key_loc,
            ErrorKind::UnexpectedAttribute,
            format!("{key} takes no {{attribute}}, found \"{key}{{{attr}}}\""),
        )),
        (AttrRule::Required, None | Some("")) => errors.push(RuleError::at(
            raw.key_loc,
            ErrorKind::MissingAttribute,
            format!("{key} needs an attribute: {key}{{name}}"),
        )),
        (AttrRule::Optional, Some("")) => errors.push(RuleError::at(
            raw.key_loc,
            ErrorKind::MissingAttribute,
            format!("{key}{{}} has an empty attribute"),
        )),
        _ => {}
    }

    let Some(op) = raw.op else {
        return false; // bad operator, already reported
    };
    if !spec.ops.contains(&op) {
        let match_only = spec.ops.iter().all(|o| o.is_match());
        let assign_only = spec.ops.iter().all(|o| !o.is_match());
        let message = if op.is_match() && assign_only {
            format!(
                "{key} is assigned, not matched: use {} instead of \"{op}\"",
                spec.ops
                    .iter()
                    .map(|o| format!("\"{o}\""))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )
        } else if !op.is_match() && match_only {
            format!("{key} can only be matched: use \"==\" or \"!=\" instead of \"{op}\"")
        } else {
            format!(
                "operator \"{op}\" is not allowed for {key_text} (allowed: {})",
                ops_list(spec.ops)
            )
        };
        errors.push(RuleError::at(
            raw.op_loc,
            ErrorKind::OperatorNotAllowed,
            message,
        ));
        return false;
    }

    if raw.case_insensitive {
        if !op.is_match() {
            errors.push(RuleError::at(
                raw.value_loc,
                ErrorKind::UnquotedValue,
                format!("the \"i\" prefix (case-insensitive) only works with == and !=, not {key_text}{op}"),
            ));
        } else if matches!(key, "TEST" | "PROGRAM" | "IMPORT") {
            errors.push(RuleError::at(
                raw.value_loc,
                ErrorKind::UnquotedValue,
                format!("{key} does not take the \"i\" prefix"),
            ));
        }
    }

    check_attribute(raw, op, errors);
    check_value(raw, op, errors);
    errors.len() == before
}

fn check_attribute(raw: &RawPair, op: Operator, errors: &mut Vec<RuleError>) {
    let Some(attr) = raw.attr.as_deref().filter(|a| !a.is_empty()) else {
        return;
    };
    let key = raw.key.as_str();
    let bad = |errors: &mut Vec<RuleError>, why: String| {
        errors.push(RuleError::at(raw.key_loc, ErrorKind::BadAttribute, why));
    };
    match key {
        "CONST" if !matches!(attr, "arch" | "virt") => bad(
            errors,
            format!("CONST{{{attr}}}: the attribute must be \"arch\" or \"virt\""),
        ),
        "IMPORT"
            if !matches!(
                attr,
                "program" | "builtin" | "file" | "db" | "cmdline" | "parent"
            ) =>
        {
            bad(
                errors,
                format!(
                    "IMPORT{{{attr}}}: the type must be program, builtin, file, db, cmdline or parent"
                ),
            )
        }
        "RUN" if !matches!(attr, "program" | "builtin") => bad(
            errors,
            format!("RUN{{{attr}}}: the type must be program or builtin"),
        ),
        "TEST" if parse_octal_mode(attr).is_none() => bad(
            errors,
            format!("TEST{{{attr}}}: the attribute must be an octal file mode such as 0644"),
        ),
        "ATTR" | "SYSCTL" | "ATTRS" => {
            if let Err(why) = check_format(attr) {
                bad(errors, format!("{key}{{{attr}}}: {why}"));
            }
        }
        "ENV"
            if !op.is_match()
                && (READ_ONLY_PROPERTIES.contains(&attr) || attr.starts_with("SYNTH_ARG_")) =>
        {
            bad(
                errors,
                format!("ENV{{{attr}}} cannot be set by rules (udev or the kernel owns it)"),
            )
        }
        _ => {}
    }
}

fn check_value(raw: &RawPair, op: Operator, errors: &mut Vec<RuleError>) {
    let key = raw.key.as_str();
    let key_text = raw.key_text();
    let value = raw.value.as_str();
    let bad = |errors: &mut Vec<RuleError>, why: String| {
        errors.push(RuleError::at(raw.value_loc, ErrorKind::BadValue, why));
    };
    let format_ok = |errors: &mut Vec<RuleError>, nonempty: bool| {
        if nonempty && value.is_empty() {
            bad(errors, format!("{key_text} needs a non-empty value"));
        } else if let Err(why) = check_format(value) {
            bad(errors, format!("value of {key_text} \"{value}\": {why}"));
        }
    };

    match key {
        "SUBSYSTEM" if matches!(value, "bus" | "class") => bad(
            errors,
            format!("SUBSYSTEM{op}\"{value}\": write \"subsystem\", not \"{value}\""),
        ),
        "SYMLINK" | "ENV" | "ATTR" | "SYSCTL" if !op.is_match() => format_ok(errors, false),
        "TAG" if !op.is_match() => format_ok(errors, true),
        "NAME" if !op.is_match() => {
            if value.is_empty() {
                bad(
                    errors,
                    "NAME=\"\" has no effect: udev never deletes network interfaces".into(),
                );
            } else if value == "%k" {
                bad(errors, "NAME=\"%k\" has no effect".into());
            } else {
                format_ok(errors, false);
            }
        }
        "TEST" | "PROGRAM" | "SECLABEL" => format_ok(errors, true),
        "IMPORT" | "RUN" => {
            format_ok(errors, true);
            if raw.attr.as_deref() == Some("builtin") {
                let name = value.split_ascii_whitespace().next().unwrap_or("");
                if !value.is_empty() && !BUILTINS.contains(&name) {
                    bad(
                        errors,
                        format!(
                            "unknown builtin \"{name}\" in {key_text} (known: {})",
                            BUILTINS.join(", ")
                        ),
                    );
                }
            }
        }
        // A numeric uid/gid needs no further check; a name must be non-empty, without blanks.
        "OWNER" | "GROUP" if value.parse::<u32>().is_err() => {
            format_ok(errors, true);
            if value.chars().any(is_blank) {
                bad(
                    errors,
                    format!("{key}=\"{value}\": a user or group name has no blanks"),
                );
            }
        }
        // A literal octal mode is fine; otherwise it must be a substitution udev resolves later.
        "MODE" if parse_octal_mode(value).is_none() => {
            if value.contains(['$', '%']) {
                format_ok(errors, true);
            } else {
                bad(
                    errors,
                    format!("MODE=\"{value}\" is not an octal mode such as 0660"),
                );
            }
        }
        "OPTIONS" => {
            if let Err(why) = check_option(value) {
                bad(errors, format!("OPTIONS{op}\"{value}\": {why}"));
            }
        }
        "GOTO" | "LABEL" if value.is_empty() => {
            bad(errors, format!("{key} needs a non-empty label name"))
        }
        _ => {}
    }
}

/// `OPTIONS` values udev knows (one per pair).
fn check_option(value: &str) -> Result<(), String> {
    const FLAGS: &[&str] = &[
        "dump",
        "string_escape=none",
        "string_escape=replace",
        "db_persist",
        "watch",
        "nowatch",
    ];
    const LOG_LEVELS: &[&str] = &[
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", "reset",
    ];
    if FLAGS.contains(&value) {
        return Ok(());
    }
    if let Some(node) = value.strip_prefix("static_node=") {
        return if node.is_empty() {
            Err("static_node= needs a device node name".into())
        } else {
            Ok(())
        };
    }
    if let Some(prio) = value.strip_prefix("link_priority=") {
        return prio
            .parse::<i32>()
            .map(|_| ())
            .map_err(|_| format!("link priority \"{prio}\" is not an integer"));
    }
    if let Some(level) = value.strip_prefix("log_level=") {
        let numeric = level.parse::<u8>().is_ok_and(|n| n <= 7);
        return if numeric || LOG_LEVELS.contains(&level) {
            Ok(())
        } else {
            Err(format!(
                "log level \"{level}\" is not one of {} or 0-7",
                LOG_LEVELS.join(", ")
            ))
        };
    }
    Err(format!(
        "unknown option (known: {}, static_node=, link_priority=, log_level=; one option per OPTIONS pair)",
        FLAGS.join(", ")
    ))
}

/// A literal octal mode (1 to 4 octal digits, at most 07777), as udev's `parse_mode()`.
pub(crate) fn parse_octal_mode(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| matches!(b, b'0'..=b'7')) {
        return None;
    }
    u32::from_str_radix(text, 8).ok().filter(|&m| m <= 0o7777)
}

/// The `$name` / `%c` substitutions udev knows (`udev-format.c`), in its lookup order.
pub(crate) const SUBSTITUTIONS: &[(&str, char)] = &[
    ("devnode", 'N'),
    ("tempnode", 'N'),
    ("attr", 's'),
    ("sysfs", 's'),
    ("env", 'E'),
    ("kernel", 'k'),
    ("number", 'n'),
    ("driver", 'd'),
    ("devpath", 'p'),
    ("id", 'b'),
    ("major", 'M'),
    ("minor", 'm'),
    ("result", 'c'),
    ("parent", 'P'),
    ("name", 'D'),
    ("links", 'L'),
    ("root", 'r'),
    ("sys", 'S'),
];

/// The substitution that starts at `chars[i]`, just after its `$` or `%` (`marker`): its
/// long name and how many characters of its name follow the marker (`$kernel`: 6, `%k`: 1).
pub(crate) fn substitution_at(
    marker: char,
    chars: &[char],
    i: usize,
) -> Option<(&'static str, usize)> {
    if marker == '$' {
        let rest: String = chars.get(i..).unwrap_or_default().iter().collect();
        SUBSTITUTIONS
            .iter()
            .find(|(name, _)| rest.starts_with(name))
            .map(|&(name, _)| (name, name.chars().count()))
    } else {
        SUBSTITUTIONS
            .iter()
            .find(|&&(_, letter)| chars.get(i) == Some(&letter))
            .map(|&(name, _)| (name, 1))
    }
}

/// Checks `$name{arg}` and `%c{arg}` substitutions strictly, as `udev_check_format()`:
/// every `$` and `%` must start a known substitution or be doubled (`$$`, `%%`).
fn check_format(value: &str) -> Result<(), String> {
    let chars: Vec<char> = value.chars().collect();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c != '$' && c != '%' {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        if chars.get(i) == Some(&c) {
            i += 1; // "$$" or "%%"
            continue;
        }
        let Some((name, len)) = substitution_at(c, &chars, i) else {
            let shown: String = chars[start..].iter().take(12).collect();
            return Err(format!(
                "unknown substitution \"{shown}\" (write \"{c}{c}\" for a literal \"{c}\")"
            ));
        };
        i += len;
        let mut arg = String::new();
        if chars.get(i) == Some(&'{') {
            let Some(close) = chars[i..].iter().position(|&ch| ch == '}') else {
                return Err(format!(
                    "substitution \"{c}{name}{{\" has no closing \"}}\""
                ));
            };
            arg = chars[i + 1..i + close].iter().collect();
            if arg.is_empty() {
                return Err(format!(
                    "substitution \"{c}{name}{{}}\" has an empty argument"
                ));
            }
            i += close + 1;
        }
        if matches!(name, "attr" | "sysfs" | "env") && arg.is_empty() {
            return Err(format!(
                "substitution \"{c}{name}\" needs an argument: {c}{name}{{NAME}}"
            ));
        }
        if name == "result" && !arg.is_empty() {
            let number = arg.strip_suffix('+').unwrap_or(&arg);
            if number.parse::<u32>().is_err() {
                return Err(format!(
                    "\"{c}result{{{arg}}}\": the argument must be a number, optionally followed by +"
                ));
            }
        }
    }
    Ok(())
}
