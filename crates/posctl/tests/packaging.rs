//! packaging/: the systemd units' keys (user, hardening, device access), their ExecStart
//! command lines run with `serve --check`, `systemd-analyze verify` and `systemd-sysusers`
//! when this machine has them, and that the units' device classes match the udev rules.
//! Two units: `posctl.service` (one lane) and the template `posctl@.service` (one of
//! several lanes, instance = lane name), which differs only in its per-lane keys.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const UNIT: &str = include_str!("../../../packaging/systemd/posctl.service");
const TEMPLATE: &str = include_str!("../../../packaging/systemd/posctl@.service");
/// The instance name the template is rendered with.
const SAMPLE_LANE: &str = "store-0042-lane_1";
const SYSUSERS: &str = include_str!("../../../packaging/systemd/pos.sysusers");
const MODULES: &str = include_str!("../../../packaging/modules-load.d/pos.conf");
const RULES: &str = include_str!("../../../udev/70-pos-devices.rules");

/// section -> key -> values (a key may repeat: DeviceAllow=, SystemCallFilter=, ...).
type Ini = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// A small reader for systemd's INI dialect: `[Section]`, `Key=value`, `#`/`;` comments,
/// trailing `\` continuation.
fn parse_unit(text: &str) -> Ini {
    let mut out = Ini::new();
    let mut section = String::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with(';'))
        {
            continue;
        }
        if let Some(cont) = line.strip_suffix('\\') {
            pending.push_str(cont);
            pending.push(' ');
            continue;
        }
        let line = format!("{pending}{line}");
        pending.clear();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            out.entry(section.clone()).or_default();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not Key=value: {line:?}"));
        assert!(!section.is_empty(), "key {k} outside a section");
        out.entry(section.clone())
            .or_default()
            .entry(k.trim().to_string())
            .or_default()
            .push(v.trim().to_string());
    }
    out
}

fn values<'a>(ini: &'a Ini, section: &str, key: &str) -> &'a [String] {
    ini.get(section)
        .and_then(|s| s.get(key))
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The single value of a key (the last one, as systemd takes it).
fn value<'a>(ini: &'a Ini, section: &str, key: &str) -> &'a str {
    values(ini, section, key)
        .last()
        .unwrap_or_else(|| panic!("[{section}] {key}= missing"))
}

#[test]
fn the_unit_runs_as_pos_with_notify_and_restart() {
    let u = parse_unit(UNIT);
    assert_runs_as_pos_with_notify_and_restart(&u);
    for (k, v) in [
        ("StateDirectory", "pos"),
        ("RuntimeDirectory", "pos"),
        ("ConfigurationDirectory", "pos"),
        ("SyslogIdentifier", "posctl"),
    ] {
        assert_eq!(value(&u, "Service", k), v, "[Service] {k}");
    }
    assert_eq!(
        value(&u, "Service", "ExecStart"),
        "/usr/bin/posctl --config /etc/pos/lane.toml serve"
    );
}

/// Per lane: config, state (journal, key, token) and runtime (socket) directories.
#[test]
fn the_template_runs_one_lane_per_instance() {
    let u = parse_unit(TEMPLATE);
    assert_runs_as_pos_with_notify_and_restart(&u);
    for (k, v) in [
        ("StateDirectory", "pos/%i"),
        ("RuntimeDirectory", "pos/%i"),
        ("ConfigurationDirectory", "pos/lanes"),
        ("SyslogIdentifier", "posctl@%i"),
        ("ReadWritePaths", "/var/lib/pos/%i"),
        // `--lane %i` reads /etc/pos/lanes/%i.toml (posctl's LANES_DIR, unit-tested there).
        ("ExecStart", "/usr/bin/posctl --lane %i serve"),
    ] {
        assert_eq!(value(&u, "Service", k), v, "[Service] {k}");
    }
    assert!(value(&u, "Unit", "Description").contains("%i"));
}

/// The template is posctl.service with only the per-lane keys changed: hardening, device
/// access, restart policy and the rest stay in step.
#[test]
fn the_template_differs_from_the_unit_only_per_lane() {
    let (mut single, mut template) = (parse_unit(UNIT), parse_unit(TEMPLATE));
    for (section, key) in [
        ("Unit", "Description"),
        ("Service", "ExecStart"),
        ("Service", "StateDirectory"),
        ("Service", "RuntimeDirectory"),
        ("Service", "ConfigurationDirectory"),
        ("Service", "SyslogIdentifier"),
        ("Service", "ReadWritePaths"),
    ] {
        for u in [&mut single, &mut template] {
            u.get_mut(section).unwrap().remove(key).expect(key);
        }
    }
    assert_eq!(single, template);
}

fn assert_runs_as_pos_with_notify_and_restart(u: &Ini) {
    let s = "Service";
    for (k, v) in [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("User", "pos"),
        ("Group", "pos"),
        ("Restart", "on-failure"),
        ("TimeoutStopSec", "90"),
        ("StateDirectoryMode", "0750"),
        ("RuntimeDirectoryMode", "0750"),
        ("UMask", "0027"),
        ("StandardOutput", "journal"),
        ("StandardError", "journal"),
    ] {
        assert_eq!(value(u, s, k), v, "[Service] {k}");
    }
    let rs = value(u, s, "RestartSec");
    let secs: u64 = rs
        .trim_end_matches('s')
        .parse()
        .expect("RestartSec in seconds");
    assert!((1..=30).contains(&secs), "RestartSec={rs}");
    assert_eq!(value(u, "Install", "WantedBy"), "multi-user.target");
}

#[test]
fn the_unit_is_hardened() {
    assert_hardened(&parse_unit(UNIT), "/var/lib/pos");
}

#[test]
fn the_template_is_hardened() {
    assert_hardened(&parse_unit(TEMPLATE), "/var/lib/pos/%i");
}

fn assert_hardened(u: &Ini, state: &str) {
    let s = "Service";
    for (k, v) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        ("CapabilityBoundingSet", ""),
        ("DevicePolicy", "closed"),
        (
            "RestrictAddressFamilies",
            "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        ),
    ] {
        assert_eq!(value(u, s, k), v, "[Service] {k}");
    }
    assert!(
        values(u, s, "ReadWritePaths")
            .iter()
            .flat_map(|v| v.split_whitespace())
            .any(|p| p == state),
        "ReadWritePaths has {state}"
    );
    // A private /dev would hide the USB and serial devices (see the unit's comment).
    assert!(
        values(u, s, "PrivateDevices")
            .iter()
            .all(|v| !matches!(v.as_str(), "yes" | "true" | "on" | "1")),
        "PrivateDevices must not be on"
    );
}

fn device_allow(u: &Ini) -> BTreeMap<String, String> {
    values(u, "Service", "DeviceAllow")
        .iter()
        .map(|v| {
            let (dev, rights) = v.split_once(' ').unwrap_or((v.as_str(), "rwm"));
            (dev.to_string(), rights.trim().to_string())
        })
        .collect()
}

#[test]
fn the_units_allow_the_pos_device_classes() {
    for text in [UNIT, TEMPLATE] {
        assert_allows_the_pos_device_classes(&parse_unit(text));
    }
}

fn assert_allows_the_pos_device_classes(u: &Ini) {
    let allow = device_allow(u);
    for (class, rights) in [
        ("char-usb_device", "rw"),
        ("char-usb", "rw"),
        ("char-ttyUSB", "rw"),
        ("char-ttyACM", "rw"),
        ("char-ttyS", "rw"),
        ("char-hidraw", "rw"),
        ("char-input", "r"),
    ] {
        assert_eq!(
            allow.get(class).map(String::as_str),
            Some(rights),
            "{class}"
        );
    }
    for (dev, rights) in &allow {
        assert!(
            dev.starts_with("char-") || dev.starts_with("/dev/"),
            "DeviceAllow={dev}: a path or char-NAME"
        );
        // No /dev/pos/ links: a path is resolved once at start, and the links move on replug.
        assert!(!dev.starts_with("/dev/pos"), "DeviceAllow={dev}");
        assert!(
            !rights.is_empty() && rights.chars().all(|c| "rwm".contains(c)),
            "DeviceAllow={dev} {rights}"
        );
        assert!(
            !rights.contains('m'),
            "no mknod: DeviceAllow={dev} {rights}"
        );
    }
}

/// Each device class the unit allows has udev rules giving group pos its nodes, and each
/// module-backed class is loaded at boot.
#[test]
fn the_unit_the_udev_rules_and_modules_load_agree() {
    let rule_lines: Vec<String> = RULES
        .replace("\\\n", " ")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(str::to_string)
        .collect();
    let granted = |needle: &str| {
        rule_lines
            .iter()
            .any(|l| l.contains(needle) && l.contains("GROUP=\"pos\""))
    };
    for (class, needle) in [
        ("char-usb_device", "ENV{DEVTYPE}==\"usb_device\""),
        ("char-usb", "SUBSYSTEM==\"usbmisc\""),
        (
            "char-ttyUSB",
            "SUBSYSTEM==\"tty\", ATTRS{idVendor}==\"0403\"",
        ),
        ("char-ttyACM", "KERNEL==\"ttyACM[0-9]*\""),
        ("char-hidraw", "SUBSYSTEM==\"hidraw\""),
        ("char-input", "SUBSYSTEM==\"input\""),
    ] {
        assert!(
            granted(needle),
            "{class}: no udev rule with {needle} and GROUP=\"pos\""
        );
    }
    let modules: Vec<&str> = MODULES
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(
        modules.contains(&"usbserial"),
        "ttyUSB major needs usbserial"
    );
    assert!(modules.contains(&"cdc_acm"), "ttyACM major needs cdc_acm");
}

#[test]
fn sysusers_declares_user_and_group_pos() {
    let lines: Vec<Vec<&str>> = SYSUSERS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(lines.iter().any(|f| f[..2] == ["g", "pos"]), "g pos");
    assert!(lines.iter().any(|f| f[..2] == ["u", "pos"]), "u pos");

    let Some(tool) = which("systemd-sysusers") else {
        println!("systemd-sysusers not found: skipping the dry run");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("pos.conf");
    std::fs::write(&conf, SYSUSERS).unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let out = Command::new(tool)
        .arg(format!("--root={}", root.display()))
        .arg("--dry-run")
        .arg(&conf)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "systemd-sysusers: {text}");
    assert!(text.contains("Creating group 'pos'"), "{text}");
    assert!(text.contains("Creating user 'pos'"), "{text}");
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// A unit with the installed binary path replaced by the one cargo built.
fn with_built_binary(unit: &str) -> String {
    unit.replace("/usr/bin/posctl", env!("CARGO_BIN_EXE_posctl"))
}

/// `systemd-analyze verify` on these files (written to a temp dir); no complaint may name
/// a unit. `instances` are verified too: systemd loads them from the template beside them,
/// with %i set.
fn systemd_analyze_verify(files: &[(&str, &str)], instances: &[&str]) {
    let Some(tool) = which("systemd-analyze") else {
        println!("systemd-analyze not found: skipping `systemd-analyze verify`");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut args = Vec::new();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::write(&path, with_built_binary(text)).unwrap();
        args.push(path);
    }
    args.extend(instances.iter().map(|i| dir.path().join(i)));
    let out = Command::new(tool)
        .arg("verify")
        .args(&args)
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify exits 0 even for ignored keys and bad values; those lines name the file.
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("posctl.service") || l.contains("posctl@"))
        .collect();
    assert!(
        out.status.success() && complaints.is_empty(),
        "systemd-analyze verify {args:?}: {}\n{stderr}",
        out.status
    );
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    systemd_analyze_verify(&[("posctl.service", UNIT)], &[]);
}

#[test]
fn systemd_analyze_verify_accepts_the_template_and_an_instance() {
    systemd_analyze_verify(
        &[("posctl@.service", TEMPLATE)],
        &[&format!("posctl@{SAMPLE_LANE}.service")],
    );
}

/// A config for `serve --check` with its journal in `dir`.
fn sample_config(dir: &Path, path: &Path) {
    std::fs::write(
        path,
        format!(
            "journal = {:?}\n\n[api]\nlisten = \"127.0.0.1:0\"\n",
            dir.join("journal.sqlite").display().to_string()
        ),
    )
    .unwrap();
}

/// Runs argv (argv[0] the installed path) with the built binary and `--check`, expecting
/// `ok`.
fn run_check(mut argv: Vec<String>, home: &Path, env: &[(&str, &Path)], ok: bool) {
    assert_eq!(argv[0], "/usr/bin/posctl");
    argv[0] = env!("CARGO_BIN_EXE_posctl").to_string();
    argv.push("--check".into());
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_remove("POS_CONFIG")
        .env_remove("POS_LANE")
        .env_remove("POS_LANES_DIR")
        .env_remove("POS_JOURNAL")
        .env("HOME", home);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.success(),
        ok,
        "{argv:?}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ExecStart's command line, pointed at a temp config, with `--check` appended.
#[test]
fn exec_start_with_serve_check_accepts_a_config() {
    let u = parse_unit(UNIT);
    let exec = value(&u, "Service", "ExecStart");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lane.toml");
    sample_config(dir.path(), &config);

    let mut argv: Vec<String> = exec.split_whitespace().map(str::to_string).collect();
    let at = argv
        .iter()
        .position(|a| a == "--config")
        .expect("ExecStart has --config");
    assert_eq!(argv[at + 1], "/etc/pos/lane.toml");
    argv[at + 1] = config.display().to_string();
    run_check(argv, dir.path(), &[], true);
}

/// The template's ExecStart with %i set to a sample lane, its config found by `--lane` in
/// a temp lanes directory ($POS_LANES_DIR instead of /etc/pos/lanes), `--check` appended.
#[test]
fn template_exec_start_with_serve_check_finds_the_lane_config() {
    let u = parse_unit(TEMPLATE);
    let exec = value(&u, "Service", "ExecStart").replace("%i", SAMPLE_LANE);
    let dir = tempfile::tempdir().unwrap();
    let lanes = dir.path().join("lanes");
    std::fs::create_dir(&lanes).unwrap();
    sample_config(dir.path(), &lanes.join(format!("{SAMPLE_LANE}.toml")));

    let argv: Vec<String> = exec.split_whitespace().map(str::to_string).collect();
    assert!(
        argv.windows(2).any(|w| w == ["--lane", SAMPLE_LANE]),
        "{argv:?}"
    );
    run_check(argv.clone(), dir.path(), &[("POS_LANES_DIR", &lanes)], true);
    // That config, not a default: without it the same command line fails.
    std::fs::remove_file(lanes.join(format!("{SAMPLE_LANE}.toml"))).unwrap();
    run_check(argv, dir.path(), &[("POS_LANES_DIR", &lanes)], false);
}
