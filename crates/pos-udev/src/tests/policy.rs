//! `check_policy`: what this project allows in its own rules file.

use super::*;

fn policy_errors(text: &str) -> Vec<RuleError> {
    check_policy(&rules_of(text))
}

fn only_policy_error(text: &str) -> RuleError {
    let errors = policy_errors(text);
    assert_eq!(
        errors.len(),
        1,
        "expected one policy error, got {errors:#?}"
    );
    errors.into_iter().next().expect("one error")
}

#[test]
fn policy_rejects_world_writable_mode() {
    let text =
        format!("{GOOD}\n\nKERNEL==\"lp0\", ACTION!=\"remove\", GROUP=\"pos\", MODE=\"0666\"\n");
    let e = only_policy_error(&text);
    assert_eq!(
        (e.line, e.column, e.kind),
        (3, Some(47), ErrorKind::UnsafeMode)
    );
    assert!(
        e.message.contains("0666") && e.message.contains("world"),
        "{e}"
    );
    assert!(e.kind.is_policy());
    for mode in ["0664", "0606", "666", "0777"] {
        let text = format!("KERNEL==\"lp0\", ACTION!=\"remove\", GROUP=\"pos\", MODE=\"{mode}\"\n");
        assert_eq!(
            only_policy_error(&text).kind,
            ErrorKind::UnsafeMode,
            "{mode}"
        );
    }
    for mode in ["0670", "2660", "0760"] {
        let text = format!("KERNEL==\"lp0\", ACTION!=\"remove\", GROUP=\"pos\", MODE=\"{mode}\"\n");
        assert_eq!(
            only_policy_error(&text).kind,
            ErrorKind::UnsafeMode,
            "{mode}"
        );
    }
    for mode in ["0660", "0640", "0600", "0620", "660"] {
        let text = format!("KERNEL==\"lp0\", ACTION!=\"remove\", GROUP=\"pos\", MODE=\"{mode}\"\n");
        assert!(policy_errors(&text).is_empty(), "{mode}");
    }
}

#[test]
fn policy_requires_group_pos_with_mode() {
    let e = only_policy_error("KERNEL==\"lp0\", ACTION!=\"remove\", MODE=\"0660\"\n");
    assert_eq!(e.kind, ErrorKind::GroupNotPos);
    let errors =
        policy_errors("KERNEL==\"lp0\", ACTION!=\"remove\", GROUP=\"lp\", MODE=\"0660\"\n");
    assert!(errors.iter().all(|e| e.kind == ErrorKind::GroupNotPos) && !errors.is_empty());
}

#[test]
fn policy_rejects_symlink_outside_pos() {
    let text = format!(
        "{GOOD}\nKERNEL==\"lp0\", ACTION!=\"remove\", SYMLINK+=\"printer-$env{{ID_SERIAL}}\"\n"
    );
    let e = only_policy_error(&text);
    assert_eq!((e.line, e.kind), (2, ErrorKind::SymlinkOutsidePos));
    assert!(
        e.message.contains("printer-$env{ID_SERIAL}") && e.message.contains("pos/"),
        "{e}"
    );
    // Every link of a space-separated list counts; ".." may not climb out.
    for value in ["pos/a serial/b", "pos/../usb/lp0", "pos/", "/dev/pos/x"] {
        let text = format!("KERNEL==\"lp0\", ACTION!=\"remove\", SYMLINK+=\"{value}\"\n");
        assert_eq!(
            only_policy_error(&text).kind,
            ErrorKind::SymlinkOutsidePos,
            "{value}"
        );
    }
    // `=` would drop /dev/serial/by-id/ and the like.
    let e = only_policy_error("KERNEL==\"lp0\", ACTION!=\"remove\", SYMLINK=\"pos/x\"\n");
    assert!(e.message.contains("+="), "{e}");
}

#[test]
fn policy_requires_remove_guard() {
    let e = only_policy_error("KERNEL==\"lp0\", GROUP=\"pos\", MODE=\"0660\"\n");
    assert_eq!((e.line, e.kind), (1, ErrorKind::UnguardedRemove));
    let e = only_policy_error(
        "KERNEL==\"lp0\", ACTION==\"add|remove\", GROUP=\"pos\", MODE=\"0660\"\n",
    );
    assert_eq!(e.kind, ErrorKind::UnguardedRemove);
    for guard in [
        "ACTION!=\"remove\"",
        "ACTION==\"add|change\"",
        "ACTION==\"add\"",
        "ACTION!=\"rem*\"",
    ] {
        assert!(
            policy_errors(&format!(
                "KERNEL==\"lp0\", {guard}, GROUP=\"pos\", MODE=\"0660\"\n"
            ))
            .is_empty()
        );
    }
    // The GOTO style guards everything up to the label, and nothing after it.
    let text = "ACTION==\"remove\", GOTO=\"pos_end\"\nKERNEL==\"lp0\", GROUP=\"pos\", MODE=\"0660\"\n\
                LABEL=\"pos_end\"\nKERNEL==\"lp1\", GROUP=\"pos\", MODE=\"0660\"\n";
    let e = only_policy_error(text);
    assert_eq!((e.line, e.kind), (4, ErrorKind::UnguardedRemove));
    // A jump that only some remove events take guards nothing.
    let text = "ACTION==\"remove\", SUBSYSTEM==\"usb\", GOTO=\"pos_end\"\n\
                KERNEL==\"lp0\", GROUP=\"pos\", MODE=\"0660\"\nLABEL=\"pos_end\"\n";
    assert_eq!(only_policy_error(text).kind, ErrorKind::UnguardedRemove);
}

#[test]
fn policy_rejects_uaccess() {
    let e = only_policy_error(&format!(
        "{GOOD}\nKERNEL==\"hidraw*\", ACTION!=\"remove\", TAG+=\"uaccess\"\n"
    ));
    assert_eq!((e.line, e.kind), (2, ErrorKind::UaccessTag));
}
