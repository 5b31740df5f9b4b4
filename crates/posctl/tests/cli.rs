//! posctl as a user runs it: exit codes, JSON output.

use std::process::Command;

fn posctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_posctl"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run posctl")
}

#[test]
fn devices_json_is_valid_json_with_the_expected_shape() {
    let out = posctl(&["devices", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let ports = v["serial_ports"].as_array().expect("serial_ports array");
    let usb = v["usb_devices"].as_array().expect("usb_devices array");
    let warnings = v["warnings"].as_array().expect("warnings array");
    for p in ports {
        assert!(
            p["path"].as_str().is_some_and(|s| s.starts_with("/dev/")),
            "{p}"
        );
        assert!(
            p["uri"].as_str().is_some_and(|s| s.starts_with("serial:")),
            "{p}"
        );
        assert!(p["access"]["state"].is_string(), "{p}");
    }
    for d in usb {
        assert!(d["vid"].as_str().is_some_and(|s| s.len() == 4), "{d}");
        assert!(
            d["uri"].as_str().is_some_and(|s| s.starts_with("usb:")),
            "{d}"
        );
    }
    for w in warnings {
        assert!(w["message"].is_string() && w["fault"].is_string(), "{w}");
    }
}

#[test]
fn global_json_flag_works_before_the_subcommand() {
    let out = posctl(&["--json", "devices"]);
    assert_eq!(out.status.code(), Some(0));
    serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("stdout is JSON");
}

#[test]
fn devices_text_lists_sections() {
    let out = posctl(&["devices"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Serial ports ("), "{text}");
    assert!(text.contains("USB devices ("), "{text}");
}

#[test]
fn usage_errors_exit_1_not_2() {
    // 2 is reserved for "the device reports a fault".
    let out = posctl(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-command"));
}

#[test]
fn help_states_the_exit_codes_and_exits_0() {
    let out = posctl(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Exit codes:"), "{text}");
    assert!(
        text.contains("2  the device answered but reports a fault"),
        "{text}"
    );
    assert!(text.contains("devices"), "{text}");
}

#[test]
fn udev_rules_prints_the_shipped_rules_and_checks_files() {
    let out = posctl(&["udev-rules"]);
    assert_eq!(out.status.code(), Some(0));
    let rules = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(rules.contains("GROUP=\"pos\""), "{rules}");

    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("70-pos-devices.rules");
    std::fs::write(&good, &rules).unwrap();
    let out = posctl(&["udev-rules", "--check", good.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let bad = dir.path().join("bad.rules");
    std::fs::write(
        &bad,
        "SUBSYSTEM==\"usb\", MODE=\"0666\", GROUP=\"pos\"\nKERNEL==\"lp*\" GROUP=\"pos\"\n",
    )
    .unwrap();
    let out = posctl(&["--json", "udev-rules", "--check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["ok"], false);
    assert!(!v["problems"].as_array().unwrap().is_empty(), "{v}");

    let out = posctl(&["udev-rules", "--check", "/nonexistent/file.rules"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}
