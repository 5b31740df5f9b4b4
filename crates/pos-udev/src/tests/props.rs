//! Properties: the checker never panics, and well-formed rules round-trip.

use proptest::prelude::*;

use super::*;

/// Fragments that make up udev-ish text, to reach deep into the lexer.
pub(super) fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("SUBSYSTEM".to_string()),
        Just("ATTRS{idVendor}".to_string()),
        Just("ENV{".to_string()),
        Just("GROUP".to_string()),
        Just("GOTO".to_string()),
        Just("LABEL".to_string()),
        Just("==".to_string()),
        Just("=".to_string()),
        Just("!".to_string()),
        Just("+=".to_string()),
        Just("\"".to_string()),
        Just("e\"".to_string()),
        Just("\\".to_string()),
        Just("\\x4".to_string()),
        Just("\\\"".to_string()),
        Just(",".to_string()),
        Just(" ".to_string()),
        Just("\n".to_string()),
        Just("\\\n".to_string()),
        Just("#".to_string()),
        Just("}".to_string()),
        Just("$env{".to_string()),
        Just("%".to_string()),
        Just("[".to_string()),
        "[a-z0-9]{0,4}",
        any::<char>().prop_map(|c| c.to_string()),
    ]
}

fn line_count(text: &str) -> usize {
    text.split('\n').count().max(1)
}

proptest! {
    #[test]
    fn check_never_panics_on_arbitrary_text(text in any::<String>()) {
        if let Err(errors) = check(&text) {
            prop_assert!(!errors.is_empty());
            for e in &errors {
                prop_assert!(e.line >= 1 && e.line <= line_count(&text), "{e:?}");
                prop_assert!(!e.message.is_empty());
            }
        }
    }

    #[test]
    fn check_never_panics_on_udev_like_text(parts in proptest::collection::vec(fragment(), 0..60)) {
        let text: String = parts.concat();
        match check(&text) {
            Ok(rules) => {
                // Whatever parses also passes the policy checker without panicking.
                let _ = check_policy(&rules);
                for rule in &rules {
                    prop_assert!(rule.line() <= rule.last_line());
                    prop_assert!(!rule.pairs().is_empty());
                }
            }
            Err(errors) => {
                for e in &errors {
                    prop_assert!(e.line >= 1 && e.line <= line_count(&text), "{e:?}");
                }
            }
        }
    }

    #[test]
    fn well_formed_rules_are_accepted_and_round_trip(
        vendor in "[0-9a-f]{4}",
        serial in "[A-Za-z0-9_.-]{1,12}",
        blanks in "[ \t]{0,3}",
        continued in any::<bool>(),
    ) {
        let sep = if continued { format!(",{blanks}\\\n{blanks}") } else { format!(",{blanks}") };
        let text = [
            "SUBSYSTEM==\"tty\"".to_string(),
            format!("ATTRS{{idVendor}}{blanks}=={blanks}\"{vendor}\""),
            format!("ATTRS{{serial}}==\"{serial}\""),
            "ACTION!=\"remove\"".to_string(),
            "GROUP=\"pos\"".to_string(),
            "MODE=\"0660\"".to_string(),
            format!("SYMLINK+=\"pos/serial-{serial}\""),
        ]
        .join(&sep);
        let rules = check(&text).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(rules.len(), 1);
        prop_assert_eq!(rules[0].pairs().len(), 7);
        prop_assert!(check_policy(&rules).is_empty());
        // Writing the pairs back gives text that parses to the same pairs.
        let again: Vec<String> = rules[0].pairs().iter().map(|p| p.to_string()).collect();
        let reparsed = check(&again.join(", ")).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let strip = |r: &Rule| r.pairs().iter().map(|p| (p.key.clone(), p.attr.clone(), p.op, p.value.clone())).collect::<Vec<_>>();
        prop_assert_eq!(strip(&reparsed[0]), strip(&rules[0]));
    }
}
