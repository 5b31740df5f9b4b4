//! The evaluator: udev's semantics on small rules, and the shipped file combined with
//! libccid's `92_pcscd_ccid.rules` (test data, see `tests/data/README.md`).

use std::collections::BTreeSet;

use pos_link::udev::RULES;
use proptest::prelude::*;

use super::*;
use crate::eval::{Event, Outcome, RulesDir, RulesFile, evaluate, ordered};

/// libccid's rules file, as its CCID driver installs it (unchanged copy).
pub(super) const PCSCD_CCID_RULES: &str = include_str!("../../tests/data/92_pcscd_ccid.rules");

const OURS: &str = "70-pos-devices.rules";
const PCSCD: &str = "92_pcscd_ccid.rules";

fn file(dir: RulesDir, name: &str, text: &str) -> RulesFile {
    RulesFile::new(dir, name, rules_of(text))
}

/// Our file installed in /etc, as udev/README.md says.
fn ours() -> RulesFile {
    file(RulesDir::Etc, OURS, RULES)
}

/// libccid's file, installed by the distribution's package in /usr/lib.
fn pcscd() -> RulesFile {
    file(RulesDir::UsrLib, PCSCD, PCSCD_CCID_RULES)
}

/// The files in both orders of the slice: the evaluator sorts them itself.
fn both_orders(a: RulesFile, b: RulesFile) -> [Vec<RulesFile>; 2] {
    [vec![a.clone(), b.clone()], vec![b, a]]
}

/// A reader on port 1-1.4 with a serial number.
fn reader(action: &str, vendor: &str, product: &str, interfaces: &str) -> Event {
    Event::usb_device(action, "1-1.4", vendor, product, interfaces)
        .env("ID_SERIAL", "Maker_Reader_1234")
}

fn assert_pos_reader(outcome: &Outcome, what: &str) {
    assert_eq!(outcome.group(), Some("pos"), "{what}: {outcome:#?}");
    assert_eq!(outcome.mode(), Some("0660"), "{what}: {outcome:#?}");
    let group = outcome.group.as_ref().expect("group");
    assert!(group.fixed, "{what}: GROUP is assigned with :=");
    assert_eq!(group.at.file, OURS, "{what}");
    assert_eq!(outcome.owner(), None, "{what}");
    assert_eq!(
        outcome.symlinks,
        ["pos/ccid-Maker_Reader_1234", "pos/by-port/ccid-1-1.4"],
        "{what}"
    );
    // Nothing in our file is left undecided; in libccid's, only its TEST=="power/..." rules,
    // which write power-management attributes and grant nothing.
    for u in &outcome.unevaluated {
        assert_eq!(u.at.file, PCSCD, "{what}: {u}");
        assert!(u.what.starts_with("match TEST==\"power/"), "{what}: {u}");
    }
}

#[test]
fn libccid_rules_parse() {
    let rules = rules_of(PCSCD_CCID_RULES);
    assert!(rules.len() > 20, "{}", rules.len());
    // It sets GROUP="pcscd": our policy check would refuse it (it is not our file).
    assert!(!check_policy(&rules).is_empty());
}

#[test]
fn libccid_rules_alone_give_a_ccid_reader_to_pcscd() {
    // Without our file the test data does what the issue says: group pcscd.
    let outcome = evaluate(&[pcscd()], &reader("add", "08e6", "3437", ":0b0000:"));
    assert_eq!(outcome.group(), Some("pcscd"));
    assert_eq!(outcome.mode(), None);
    let outcome = evaluate(&[pcscd()], &reader("add", "046a", "003e", ":ff0000:"));
    assert_eq!(outcome.group(), Some("pcscd"));
}

#[test]
fn ccid_reader_is_pos_with_our_rules_alone_and_with_libccids_after_them() {
    for action in ["add", "change", "bind"] {
        let event = reader(action, "08e6", "3437", ":0b0000:");
        assert_pos_reader(
            &evaluate(&[ours()], &event),
            &format!("{action}, ours alone"),
        );
        for files in both_orders(ours(), pcscd()) {
            assert_pos_reader(&evaluate(&files, &event), &format!("{action}, with 92"));
        }
    }
    // A composite device with a CCID interface among others, and other CCID subclasses.
    for interfaces in [":030101:0b0000:", ":0b0000:ff0000:", ":0b0100:"] {
        let event = reader("add", "076b", "5422", interfaces);
        for files in both_orders(ours(), pcscd()) {
            assert_pos_reader(&evaluate(&files, &event), interfaces);
        }
    }
}

#[test]
fn vendor_class_readers_from_libccids_list_are_pos_too() {
    let event = reader("add", "046a", "003e", ":ff0000:");
    assert_pos_reader(&evaluate(&[ours()], &event), "Cherry ST-2000 alone");
    for files in both_orders(ours(), pcscd()) {
        assert_pos_reader(&evaluate(&files, &event), "Cherry ST-2000 with 92");
    }
    // Every reader libccid lists by VID:PID, taken from its file: pcscd alone, pos with ours.
    let listed: BTreeSet<(String, String)> = rules_of(PCSCD_CCID_RULES)
        .iter()
        .filter(|r| r.assigned("GROUP") == Some("pcscd"))
        .filter_map(|r| {
            let vendor = r.find("ATTRS", Some("idVendor")).next()?.value.clone();
            let product = r.find("ATTRS", Some("idProduct")).next()?.value.clone();
            Some((vendor, product))
        })
        .collect();
    assert_eq!(listed.len(), 22);
    for (vendor, product) in &listed {
        let event = reader("add", vendor, product, ":ff0000:");
        assert_eq!(
            evaluate(&[pcscd()], &event).group(),
            Some("pcscd"),
            "{vendor}:{product}"
        );
        assert_pos_reader(
            &evaluate(&[ours(), pcscd()], &event),
            &format!("{vendor}:{product}"),
        );
    }
    // A vendor-class device of a listed vendor but another product is not a reader.
    let other = reader("add", "04e6", "0001", ":ff0000:");
    let outcome = evaluate(&[ours(), pcscd()], &other);
    assert_eq!(outcome.group(), None, "{outcome:#?}");
    assert!(outcome.symlinks.is_empty());
}

#[test]
fn without_final_assignment_libccid_takes_the_reader() {
    // The same file with ":=" made "=": 92 runs later and its GROUP="pcscd" wins. This is
    // the bug the ":=" fixes, so the tests above are meaningful.
    let plain = RULES
        .replace("GROUP:=", "GROUP=")
        .replace("MODE:=", "MODE=");
    assert_ne!(plain, RULES, "the shipped file uses :=");
    let plain = file(RulesDir::Etc, OURS, &plain);
    for event in [
        reader("add", "08e6", "3437", ":0b0000:"),
        reader("add", "046a", "003e", ":ff0000:"),
    ] {
        assert_eq!(
            evaluate(std::slice::from_ref(&plain), &event).group(),
            Some("pos")
        );
        let outcome = evaluate(&[plain.clone(), pcscd()], &event);
        assert_eq!(outcome.group(), Some("pcscd"), "{outcome:#?}");
        assert_eq!(
            outcome.group.as_ref().map(|g| g.at.file.as_str()),
            Some(PCSCD)
        );
    }
}

#[test]
fn a_later_mode_cannot_open_a_reader_wider() {
    // 92 sets no MODE today; a later file that did (or a future 92) is ignored too.
    let wide = file(
        RulesDir::UsrLib,
        "99-wide.rules",
        "SUBSYSTEM==\"usb\", ENV{ID_USB_INTERFACES}==\"*:0b????:*\", MODE=\"0666\", GROUP=\"plugdev\"\n",
    );
    let event = reader("add", "08e6", "3437", ":0b0000:");
    let outcome = evaluate(&[ours(), pcscd(), wide.clone()], &event);
    assert_pos_reader(&outcome, "with 99-wide");
    // Without our file the wide rule would apply.
    let outcome = evaluate(&[pcscd(), wide], &event);
    assert_eq!(outcome.mode(), Some("0666"));
}

#[test]
fn remove_events_grant_nothing() {
    for event in [
        reader("remove", "08e6", "3437", ":0b0000:"),
        reader("remove", "046a", "003e", ":ff0000:"),
    ] {
        for files in [vec![ours()], vec![ours(), pcscd()]] {
            let outcome = evaluate(&files, &event);
            assert_eq!(outcome.group, None, "{outcome:#?}");
            assert_eq!(outcome.mode, None);
            assert!(outcome.symlinks.is_empty());
            assert!(!outcome.env.contains_key(".POS_CCID"));
        }
    }
}

#[test]
fn reader_interfaces_are_not_matched_only_the_usb_device_is() {
    // The interface node of a CCID reader carries the same idVendor among its parents'
    // attributes, but only the usb_device node is granted.
    let interface = Event::new("add", "usb", "1-1.4:1.0")
        .devtype("usb_interface")
        .attr("idVendor", "046a")
        .attr("idProduct", "003e")
        .env("ID_USB_INTERFACES", ":ff0000:");
    let outcome = evaluate(&[ours(), pcscd()], &interface);
    assert_eq!(outcome.group(), None, "{outcome:#?}");
    assert!(outcome.symlinks.is_empty());
}

#[test]
fn printers_and_serial_adapters_are_unaffected_by_libccids_rules() {
    let printer = Event::usb_device("add", "1-1.2", "04b8", "0e28", ":070102:")
        .env("ID_SERIAL", "EPSON_TM-T88V_X1");
    let tty = Event::new("add", "tty", "ttyUSB0")
        .parent_kernel("1-1.3")
        .attr("idVendor", "0403")
        .attr("idProduct", "6001")
        .env("ID_SERIAL_SHORT", "A50285BI");
    for event in [printer, tty] {
        let alone = evaluate(&[ours()], &event);
        assert_eq!(alone.group(), Some("pos"), "{alone:#?}");
        assert_eq!(alone.mode(), Some("0660"));
        assert!(!alone.group.as_ref().is_some_and(|g| g.fixed));
        let with_pcscd = evaluate(&[ours(), pcscd()], &event);
        assert_eq!(with_pcscd.group, alone.group, "{}", event.kernel);
        assert_eq!(with_pcscd.mode, alone.mode);
        assert_eq!(with_pcscd.symlinks, alone.symlinks);
        assert_eq!(with_pcscd.env, alone.env);
    }
    let tty = Event::new("add", "tty", "ttyUSB0")
        .parent_kernel("1-1.3")
        .attr("idVendor", "0403")
        .attr("idProduct", "6001")
        .env("ID_SERIAL_SHORT", "A50285BI");
    let outcome = evaluate(&[ours(), pcscd()], &tty);
    assert_eq!(
        outcome.symlinks,
        ["pos/by-port/serial-1-1.3", "pos/serial-A50285BI"]
    );
    assert_eq!(
        outcome.env.get("ID_MM_DEVICE_IGNORE").map(String::as_str),
        Some("1")
    );
    let printer = Event::usb_device("add", "1-1.2", "04b8", "0e28", ":070102:")
        .env("ID_SERIAL", "EPSON_TM-T88V_X1");
    let outcome = evaluate(&[ours(), pcscd()], &printer);
    assert_eq!(
        outcome.symlinks,
        [
            "pos/printer-usb-EPSON_TM-T88V_X1",
            "pos/by-port/printer-1-1.2"
        ]
    );
}

#[test]
fn imports_are_reported_not_guessed() {
    // A usblp node: the IMPORT{builtin} rule cannot be evaluated and is reported; the
    // granting rule after it still applies.
    let lp = Event::new("add", "usbmisc", "lp0").env("ID_SERIAL", "EPSON_X");
    let outcome = evaluate(&[ours()], &lp);
    assert_eq!(outcome.group(), Some("pos"));
    assert_eq!(outcome.symlinks, ["pos/printer-lp-EPSON_X"]);
    assert_eq!(outcome.unevaluated.len(), 1, "{:#?}", outcome.unevaluated);
    let report = outcome.unevaluated[0].to_string();
    assert!(report.contains("IMPORT{builtin}=\"usb_id\""), "{report}");
    assert!(
        report.starts_with("/etc/udev/rules.d/70-pos-devices.rules:"),
        "{report}"
    );
}

// --- ordering of files -------------------------------------------------------------------

#[test]
fn files_run_by_name_and_etc_overrides_usr_lib() {
    let a = file(
        RulesDir::UsrLib,
        "60-a.rules",
        "KERNEL==\"x\", GROUP=\"a\"\n",
    );
    let b = file(RulesDir::Etc, "70-b.rules", "KERNEL==\"x\", GROUP=\"b\"\n");
    let c = file(RulesDir::Run, "80-c.rules", "KERNEL==\"x\", GROUP=\"c\"\n");
    let event = Event::new("add", "misc", "x");
    assert_eq!(
        evaluate(&[c.clone(), b.clone(), a.clone()], &event).group(),
        Some("c")
    );
    let files = [c, b, a];
    let names: Vec<&str> = ordered(&files).iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["60-a.rules", "70-b.rules", "80-c.rules"]);

    // An /etc file of the same name masks libccid's file: with an empty one, nothing of 92
    // applies (the documented way to switch a vendor file off).
    let mask = RulesFile::new(RulesDir::Etc, PCSCD, Vec::new());
    let event = reader("add", "08e6", "3437", ":0b0000:");
    for files in [vec![pcscd(), mask.clone()], vec![mask.clone(), pcscd()]] {
        assert_eq!(evaluate(&files, &event).group(), None);
        assert_eq!(ordered(&files)[0].dir, RulesDir::Etc);
    }
    // Names that do not end in .rules are not read.
    let backup = file(
        RulesDir::Etc,
        "95-x.rules.bak",
        "KERNEL==\"x\", GROUP=\"bak\"\n",
    );
    assert_eq!(
        evaluate(&[backup], &Event::new("add", "misc", "x")).group(),
        None
    );
}

// --- udev semantics on small rules --------------------------------------------------------

fn eval_text(text: &str, event: &Event) -> Outcome {
    evaluate(&[file(RulesDir::Etc, "50-t.rules", text)], event)
}

#[test]
fn matches_use_globs_alternatives_and_negation() {
    let event = Event::new("add", "tty", "ttyUSB3").attr("idVendor", "0403");
    let cases = [
        ("KERNEL==\"ttyUSB[0-9]*\", GROUP=\"g\"", true),
        ("KERNEL==\"ttyACM*|ttyUSB?\", GROUP=\"g\"", true),
        ("KERNEL==\"ttyACM*|ttyS*\", GROUP=\"g\"", false),
        ("KERNEL!=\"ttyACM*|ttyS*\", GROUP=\"g\"", true),
        ("KERNEL!=\"ttyUSB*\", GROUP=\"g\"", false),
        ("KERNEL==\"ttyusb3\", GROUP=\"g\"", false),
        ("KERNEL==i\"ttyusb3\", GROUP=\"g\"", true),
        ("KERNEL==\"ttyUSB[!3]\", GROUP=\"g\"", false),
        (
            "SUBSYSTEM==\"tty\", ACTION==\"add|change\", GROUP=\"g\"",
            true,
        ),
        (
            "ACTION!=\"remove\", ATTRS{idVendor}==\"0403\", GROUP=\"g\"",
            true,
        ),
        ("ATTR{idVendor}==\"04*\", GROUP=\"g\"", true),
        // An absent attribute fails the match whatever the operator.
        ("ATTR{serial}!=\"X\", GROUP=\"g\"", false),
        ("ATTR{serial}==\"\", GROUP=\"g\"", false),
        // An absent property matches as empty.
        ("ENV{ID_X}!=\"1\", GROUP=\"g\"", true),
        ("ENV{ID_X}==\"\", GROUP=\"g\"", true),
        ("ENV{ID_X}==\"?*\", GROUP=\"g\"", false),
        ("ENV{SUBSYSTEM}==\"tty\", GROUP=\"g\"", true),
    ];
    for (text, applies) in cases {
        let outcome = eval_text(&format!("{text}\n"), &event);
        assert_eq!(outcome.group().is_some(), applies, "{text}");
    }
}

#[test]
fn attribute_values_lose_trailing_blanks_as_sysfs_values_do() {
    let event = Event::new("add", "usb", "1-1").attr("product", "Reader  \n");
    assert_eq!(
        eval_text("ATTR{product}==\"Reader\", GROUP=\"g\"\n", &event).group(),
        Some("g")
    );
}

#[test]
fn final_assignments_win_over_later_ones_and_plain_ones_do_not() {
    let event = Event::new("add", "misc", "x");
    let text = "KERNEL==\"x\", GROUP=\"a\", MODE=\"0600\"\n\
                KERNEL==\"x\", GROUP:=\"b\", OWNER=\"o\"\n\
                KERNEL==\"x\", GROUP=\"c\", MODE=\"0640\"\n\
                KERNEL==\"x\", GROUP:=\"d\", OWNER:=\"p\"\n\
                KERNEL==\"x\", OWNER=\"q\"\n";
    let outcome = eval_text(text, &event);
    assert_eq!(outcome.group(), Some("b"));
    assert_eq!(outcome.group.as_ref().map(|g| g.at.line), Some(2));
    assert_eq!(outcome.mode(), Some("0640"));
    assert_eq!(outcome.owner(), Some("p"));
    assert_eq!(outcome.applied.len(), 5);
}

#[test]
fn env_assignments_change_later_matches() {
    let event = Event::new("add", "misc", "x").env("A", "1");
    let text = "KERNEL==\"x\", ENV{.MARK}=\"1\"\n\
                ENV{.MARK}==\"1\", GROUP=\"marked\"\n\
                KERNEL==\"x\", ENV{A}+=\"2\"\n\
                ENV{A}==\"1 2\", ENV{B}=\"$env{A}\"\n\
                KERNEL==\"x\", ENV{A}=\"\"\n\
                ENV{A}==\"\", TAG+=\"a_gone\"\n";
    let outcome = eval_text(text, &event);
    assert_eq!(outcome.group(), Some("marked"));
    assert_eq!(outcome.env.get("B").map(String::as_str), Some("1 2"));
    assert!(!outcome.env.contains_key("A"));
    assert_eq!(outcome.tags, ["a_gone"]);
    // Within one rule, matches are tested before assignments run (as udev sorts them).
    let same_rule = "ENV{C}==\"1\", ENV{C}=\"1\", GROUP=\"same\"\n";
    assert_eq!(eval_text(same_rule, &event).group(), None);
}

#[test]
fn goto_skips_to_its_label_within_one_file() {
    let text = "ACTION==\"remove\", GOTO=\"end\"\n\
                KERNEL==\"x\", GROUP=\"g\"\n\
                LABEL=\"end\"\n\
                KERNEL==\"x\", TAG+=\"after\"\n";
    let add = eval_text(text, &Event::new("add", "misc", "x"));
    assert_eq!(add.group(), Some("g"));
    assert_eq!(add.tags, ["after"]);
    let remove = eval_text(text, &Event::new("remove", "misc", "x"));
    assert_eq!(remove.group(), None);
    assert_eq!(remove.tags, ["after"]);
    // A GOTO does not reach into the next file.
    let first = file(
        RulesDir::Etc,
        "10-a.rules",
        "KERNEL==\"x\", GOTO=\"end\"\nLABEL=\"end\"\n",
    );
    let second = file(RulesDir::Etc, "20-b.rules", "KERNEL==\"x\", GROUP=\"b\"\n");
    assert_eq!(
        evaluate(&[first, second], &Event::new("add", "misc", "x")).group(),
        Some("b")
    );
}

#[test]
fn symlinks_are_added_removed_replaced_and_substituted() {
    let event = Event::new("add", "tty", "ttyUSB12")
        .parent_kernel("1-1.4")
        .env("ID_SERIAL", "Ven dor/Mod$el")
        .attr("serial", "S1");
    let text = "KERNEL==\"tty*\", SYMLINK+=\"a/$kernel b/%n\"\n\
                KERNEL==\"tty*\", SYMLINK+=\"c-$env{ID_SERIAL} d-$id e-%s{serial} f-$$\"\n\
                KERNEL==\"tty*\", SYMLINK-=\"b/12\"\n";
    let outcome = eval_text(text, &event);
    assert_eq!(
        outcome.symlinks,
        ["a/ttyUSB12", "c-Ven_dor/Mod_el", "d-1-1.4", "e-S1", "f-_"]
    );
    let replaced = eval_text(
        "KERNEL==\"tty*\", SYMLINK+=\"x\"\nKERNEL==\"tty*\", SYMLINK=\"y\"\n",
        &event,
    );
    assert_eq!(replaced.symlinks, ["y"]);
    let fixed = eval_text(
        "KERNEL==\"tty*\", SYMLINK:=\"y\"\nKERNEL==\"tty*\", SYMLINK+=\"z\"\n",
        &event,
    );
    assert_eq!(fixed.symlinks, ["y"]);
    let matched = eval_text(
        "KERNEL==\"tty*\", SYMLINK+=\"pos/x\"\nSYMLINK==\"pos/*\", GROUP=\"linked\"\n",
        &event,
    );
    assert_eq!(matched.group(), Some("linked"));
}

#[test]
fn unknown_match_keys_do_not_match_and_are_reported() {
    let event = Event::new("add", "tty", "ttyUSB0");
    let text = "KERNEL==\"tty*\", PROGRAM==\"/bin/true\", GROUP=\"p\"\n\
                KERNEL==\"tty*\", KERNELS==\"1-1.4\", TEST==\"power/control\", GROUP=\"k\"\n\
                KERNEL==\"sd*\", DRIVERS==\"x\", GROUP=\"not-reported\"\n\
                KERNEL==\"tty*\", SYMLINK+=\"$devpath\"\n";
    let outcome = eval_text(text, &event);
    assert_eq!(outcome.group(), None);
    let what: Vec<String> = outcome.unevaluated.iter().map(|u| u.what.clone()).collect();
    assert_eq!(
        what,
        [
            "match PROGRAM==\"/bin/true\"",
            "match KERNELS==\"1-1.4\"",
            "match TEST==\"power/control\"",
            "substitution $devpath (left empty)",
        ]
    );
    assert_eq!(outcome.unevaluated[1].at.line, 2);
    assert!(outcome.symlinks.is_empty());
}

// --- properties ---------------------------------------------------------------------------

/// Pairs from which random rules are built: every kind of key and operator, values with
/// globs, alternatives and substitutions.
fn pair() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        Just(String::new()),
        "[a-z0-9*?|:!\\[\\]-]{0,8}",
        Just("$env{V}".to_string()),
        Just("%k-%n-$id-$attr{a}-$$".to_string()),
        Just("$devpath %E{V} x y".to_string()),
    ];
    let key = prop_oneof![
        Just("ACTION==".to_string()),
        Just("ACTION!=".to_string()),
        Just("KERNEL==".to_string()),
        Just("SUBSYSTEM!=".to_string()),
        Just("ENV{V}==".to_string()),
        Just("ENV{V}!=".to_string()),
        Just("ENV{V}=".to_string()),
        Just("ENV{V}+=".to_string()),
        Just("ATTR{a}==".to_string()),
        Just("ATTRS{a}!=".to_string()),
        Just("KERNELS==".to_string()),
        Just("TEST==".to_string()),
        Just("SYMLINK==".to_string()),
        Just("SYMLINK+=".to_string()),
        Just("SYMLINK-=".to_string()),
        Just("SYMLINK=".to_string()),
        Just("SYMLINK:=".to_string()),
        Just("TAG+=".to_string()),
        Just("TAG==".to_string()),
        Just("GROUP=".to_string()),
        Just("GROUP:=".to_string()),
        Just("MODE:=".to_string()),
        Just("OWNER=".to_string()),
        Just("RUN+=".to_string()),
        Just("IMPORT{builtin}=".to_string()),
    ];
    (key, value).prop_map(|(k, v)| format!("{k}\"{v}\""))
}

/// An assignment, so that a rule always has an effect (the checker refuses rules without).
fn assignment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("GROUP=\"g\"".to_string()),
        Just("GROUP:=\"f\"".to_string()),
        Just("MODE=\"0640\"".to_string()),
        Just("ENV{V}=\"w\"".to_string()),
        Just("SYMLINK+=\"l-$kernel\"".to_string()),
    ]
}

fn rules_text() -> impl Strategy<Value = String> {
    let rule = (
        proptest::collection::vec(pair(), 0..4),
        assignment(),
        prop_oneof![
            Just(String::new()),
            Just(", GOTO=\"l1\"".to_string()),
            Just(", GOTO=\"l2\"".to_string())
        ],
    )
        .prop_map(|(mut pairs, last, goto)| {
            pairs.push(last);
            format!("{}{goto}\n", pairs.join(", "))
        });
    proptest::collection::vec(rule, 0..12).prop_map(|rules| {
        // Both labels are always jumped to, so that GOTOs in the random rules are valid.
        format!(
            "ACTION==\"remove\", GOTO=\"l1\"\n{}LABEL=\"l1\"\nKERNEL==\"*\", GOTO=\"l2\"\nLABEL=\"l2\"\n",
            rules.concat()
        )
    })
}

fn event() -> impl Strategy<Value = Event> {
    (
        prop_oneof![Just("add"), Just("remove"), Just("change")],
        "[a-z0-9*?\\[\\]|:-]{0,8}",
        proptest::option::of("[ a-z0-9$%{}]{0,8}"),
        proptest::option::of(".{0,8}"),
        any::<String>(),
    )
        .prop_map(|(action, kernel, v, a, parent)| {
            let mut event = Event::new(action, "usb", &kernel).parent_kernel(&parent);
            if let Some(v) = v {
                event = event.env("V", &v);
            }
            if let Some(a) = a {
                event = event.attr("a", &a);
            }
            event
        })
}

proptest! {
    #[test]
    fn evaluate_never_panics_on_parsed_rules(text in rules_text(), event in event()) {
        // Whatever of the random text parses is evaluated; with the same rules twice (a
        // same-name file in /etc and /usr/lib) only one copy runs.
        if let Ok(rules) = check(&text) {
            let etc = RulesFile::new(RulesDir::Etc, "50-r.rules", rules.clone());
            let lib = RulesFile::new(RulesDir::UsrLib, "50-r.rules", rules);
            let once = evaluate(std::slice::from_ref(&etc), &event);
            let twice = evaluate(&[lib, etc], &event);
            prop_assert_eq!(&once, &twice);
            for place in &once.applied {
                prop_assert_eq!(place.dir, RulesDir::Etc);
            }
            // Every value set comes from a rule that applied.
            for set in [&once.group, &once.mode, &once.owner].into_iter().flatten() {
                prop_assert!(once.applied.contains(&set.at), "{:?}", set);
            }
        }
    }

    #[test]
    fn evaluate_never_panics_on_udev_like_text(
        parts in proptest::collection::vec(super::props::fragment(), 0..60),
        event in event(),
    ) {
        if let Ok(rules) = check(&parts.concat()) {
            let outcome = evaluate(&[RulesFile::new(RulesDir::Etc, "x.rules", rules)], &event);
            prop_assert!(outcome.applied.len() <= parts.len() + 1);
        }
    }
}
