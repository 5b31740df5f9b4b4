//! The shipped file, `pos_link::udev::RULES`, passes the syntax check and the policy, and
//! covers the devices it is for.

use pos_link::udev::RULES;

use super::*;

#[test]
fn shipped_rules_pass_check_and_policy() {
    let rules = rules_of(RULES);
    assert!(rules.len() >= 10, "only {} rules", rules.len());
    let violations = check_policy(&rules);
    assert!(violations.is_empty(), "policy violations: {violations:#?}");
}

#[test]
fn the_policy_group_is_the_one_the_permission_hints_name() {
    assert_eq!(POS_GROUP, pos_link::POS_GROUP);
}

/// Rules that match `key{attr}` against `wanted` (as one `|` alternative, or within one)
/// and grant GROUP="pos".
fn granting_rules<'a>(
    rules: &'a [Rule],
    key: &str,
    attr: Option<&str>,
    wanted: &str,
) -> Vec<&'a Rule> {
    rules
        .iter()
        .filter(|rule| {
            rule.find(key, attr).any(|p| {
                p.op == Operator::Match && p.alternatives().any(|alt| alt.contains(wanted))
            })
        })
        .filter(|rule| {
            rule.assigned("GROUP") == Some(POS_GROUP) && rule.assigned("MODE") == Some("0660")
        })
        .collect()
}

#[test]
fn shipped_rules_cover_ccid_printers_magtek_and_ftdi_with_group_pos() {
    let rules = rules_of(RULES);
    // CCID readers: class 0x0B and the vendor-class rows mark the device, one rule grants.
    let marks_ccid = |rule: &&Rule| {
        rule.find("SUBSYSTEM", None).any(|p| p.value == "usb")
            && rule
                .find("ENV", Some("DEVTYPE"))
                .any(|p| p.op == Operator::Match && p.value == "usb_device")
            && rule
                .find("ENV", Some(".POS_CCID"))
                .any(|p| p.op == Operator::Assign && p.value == "1")
    };
    let class = rules
        .iter()
        .filter(marks_ccid)
        .filter(|r| {
            r.find("ENV", Some("ID_USB_INTERFACES"))
                .any(|p| p.value == "*:0b????:*")
        })
        .count();
    assert_eq!(class, 1, "CCID class 0x0B rule");
    let grant: Vec<&Rule> = rules
        .iter()
        .filter(|r| {
            r.find("ENV", Some(".POS_CCID"))
                .any(|p| p.op == Operator::Match && p.value == "1")
                && r.find("SUBSYSTEM", None).any(|p| p.value == "usb")
        })
        .collect();
    assert_eq!(grant.len(), 1, "one rule grants the marked readers");
    for key in ["GROUP", "MODE"] {
        let pair = grant[0].find(key, None).next().expect(key);
        assert_eq!(pair.op, Operator::AssignFinal, "{key} must be final (:=)");
    }
    assert_eq!(grant[0].assigned("GROUP"), Some(POS_GROUP));
    assert_eq!(grant[0].assigned("MODE"), Some("0660"));
    assert!(
        grant[0]
            .find("SYMLINK", None)
            .any(|p| p.value.starts_with("pos/ccid-"))
    );

    let printer_class = granting_rules(&rules, "ENV", Some("ID_USB_INTERFACES"), ":07????:");
    assert_eq!(printer_class.len(), 1, "printer class 0x07 rule");
    let usblp = granting_rules(&rules, "KERNEL", None, "lp[0-9]*");
    assert_eq!(usblp.len(), 1, "usblp rule");
    assert!(
        usblp[0]
            .find("SUBSYSTEM", None)
            .any(|p| p.value == "usbmisc")
    );
    for vendor in ["04b8", "0519", "1504", "1d90"] {
        assert_eq!(
            granting_rules(&rules, "ATTR", Some("idVendor"), vendor).len(),
            1,
            "printer vendor {vendor}"
        );
    }

    for vendor in ["0801", "0acd"] {
        // usb_device, hidraw and the keyboard-wedge event node.
        let usb = granting_rules(&rules, "ATTR", Some("idVendor"), vendor);
        assert_eq!(usb.len(), 1, "usb_device rule for {vendor}");
        let attrs = granting_rules(&rules, "ATTRS", Some("idVendor"), vendor);
        let subsystems: Vec<&str> = attrs
            .iter()
            .flat_map(|r| r.find("SUBSYSTEM", None))
            .map(|p| p.value.as_str())
            .collect();
        assert!(
            subsystems.contains(&"hidraw"),
            "hidraw rule for {vendor}: {subsystems:?}"
        );
        assert!(
            subsystems.contains(&"input"),
            "event rule for {vendor}: {subsystems:?}"
        );
    }

    for (vendor, product) in [
        ("0403", "6001"),
        ("067b", "2303"),
        ("1a86", "7523"),
        ("10c4", "ea60"),
    ] {
        let serial = granting_rules(&rules, "ATTRS", Some("idVendor"), vendor);
        assert_eq!(serial.len(), 1, "USB-serial rule for {vendor}");
        assert!(serial[0].find("SUBSYSTEM", None).any(|p| p.value == "tty"));
        assert!(
            serial[0]
                .find("ATTRS", Some("idProduct"))
                .any(|p| p.value == product)
        );
    }
}

#[test]
fn shipped_rules_never_open_devices_to_everyone() {
    let rules = rules_of(RULES);
    for pair in rules
        .iter()
        .flat_map(|r| r.assignments())
        .filter(|p| p.key == "MODE")
    {
        assert_eq!(pair.value, "0660", "line {}", pair.line);
    }
    let tags: Vec<&Pair> = rules.iter().flat_map(|r| r.find("TAG", None)).collect();
    assert!(
        tags.is_empty(),
        "no tags, in particular no uaccess: {tags:?}"
    );
    assert!(
        rules
            .iter()
            .flat_map(|r| r.find("OWNER", None))
            .next()
            .is_none(),
        "access is by group only"
    );
    // Every pair's link is under pos/.
    for pair in rules.iter().flat_map(|r| r.find("SYMLINK", None)) {
        assert_eq!(pair.op, Operator::Add);
        assert!(
            pair.value.starts_with("pos/"),
            "line {}: {}",
            pair.line,
            pair.value
        );
    }
}

/// The vendor-class readers (interface class 0xFF with a CCID descriptor) that block 1b
/// marks are exactly those libccid's rules list by `ATTRS{idVendor}`/`ATTRS{idProduct}`
/// with `GROUP="pcscd"`.
#[test]
fn shipped_vendor_class_readers_are_libccids_list() {
    let ours = rules_of(RULES);
    let libccid = rules_of(super::eval::PCSCD_CCID_RULES);
    let ids = |rules: &[Rule], attr_key: &str, marker: &dyn Fn(&Rule) -> bool| {
        let mut ids: Vec<(String, String)> = rules
            .iter()
            .filter(|r| marker(r))
            .filter_map(|r| {
                let vendor = r.find(attr_key, Some("idVendor")).next()?;
                let product = r.find(attr_key, Some("idProduct")).next()?;
                Some((vendor.value.clone(), product.value.clone()))
            })
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let ours = ids(&ours, "ATTR", &|r: &Rule| {
        r.find("ENV", Some(".POS_CCID"))
            .any(|p| p.op == Operator::Assign)
            && r.find("ENV", Some("DEVTYPE"))
                .any(|p| p.value == "usb_device")
            && excludes_remove_event(r)
    });
    let theirs = ids(&libccid, "ATTRS", &|r: &Rule| {
        r.assigned("GROUP") == Some("pcscd")
    });
    assert_eq!(theirs.len(), 22, "{theirs:?}");
    assert_eq!(ours, theirs);
}

fn excludes_remove_event(rule: &Rule) -> bool {
    rule.find("ACTION", None)
        .any(|p| p.op == Operator::NoMatch && p.value == "remove")
}
