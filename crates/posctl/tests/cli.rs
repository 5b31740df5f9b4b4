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

#[test]
fn printer_status_on_a_ready_virtual_printer_exits_0() {
    let out = posctl(&["--json", "printer", "status", "--device", "sim:printer"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["ready"], true);
    assert_eq!(v["conditions"].as_array().unwrap().len(), 0);
    assert!(v["model"].is_string(), "{v}");
}

#[test]
fn printer_status_reports_each_fault_and_exits_2() {
    for (fault, name) in [
        ("paper-out", "paper_out"),
        ("cover-open", "cover_open"),
        ("cutter-jam", "cutter_jam"),
        ("offline", "offline"),
    ] {
        let device = format!("sim:printer?fault={fault}");
        if fault == "cutter-jam" {
            // A jam happens at a cut: print a receipt first, then ask.
            let out = posctl(&["--json", "printer", "selftest", "--device", &device]);
            assert_eq!(out.status.code(), Some(2), "{fault}");
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
            assert_eq!(v["printed"], false);
            assert_eq!(v["fault"], name);
            continue;
        }
        let out = posctl(&["--json", "printer", "status", "--device", &device]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{fault}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(v["ready"], false, "{v}");
        assert!(
            v["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == name),
            "{fault}: {v}"
        );
    }
    // Near end is a warning: ready, exit 0.
    let out = posctl(&[
        "--json",
        "printer",
        "status",
        "--device",
        "sim:printer?fault=near-end",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["warning"], "paper_near_end");
}

#[test]
fn a_silent_printer_exits_1_with_printer_offline() {
    let out = posctl(&[
        "--json",
        "printer",
        "status",
        "--device",
        "sim:printer?fault=silent",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["fault"], "printer_offline");
}

#[test]
fn selftest_prints_and_reports_confirmation() {
    let out = posctl(&["--json", "printer", "selftest", "--device", "sim:printer"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["outcome"], "confirmed");
    assert_eq!(v["printed"], true);
    let text = v["rendering"].as_str().unwrap();
    assert!(
        text.contains("PRINTER SELF-TEST") && text.contains("Euro: € 12,50"),
        "{text}"
    );
}

#[test]
fn printing_a_file_and_paper_running_out() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("receipt.txt");
    std::fs::write(
        &file,
        (0..20).map(|i| format!("item {i}\n")).collect::<String>(),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let out = posctl(&["printer", "print", "--device", "sim:printer", f]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("item 19"));

    let out = posctl(&[
        "--json",
        "printer",
        "print",
        "--device",
        "sim:printer?after=5",
        f,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["printed"], false);
    assert_eq!(v["fault"], "paper_out");

    let json = dir.path().join("receipt.json");
    std::fs::write(&json, r#"{"blocks":[{"type":"text","text":"from json"},{"type":"barcode","symbology":"ean13","data":"123","height":50,"module_width":2,"hri":"below","align":"center"}]}"#).unwrap();
    let out = posctl(&[
        "printer",
        "print",
        "--device",
        "sim:printer",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "bad barcode data is bad input");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("EAN-13"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn printer_watch_shows_the_status_and_stops_when_told() {
    let out = posctl(&[
        "printer",
        "watch",
        "--device",
        "sim:printer?fault=near-end",
        "--seconds",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("status: ready [paper_near_end]"), "{text}");
}

/// `posctl reader info --device DEVICE`'s text, which must exit 0.
fn reader_info_text(device: &str) -> String {
    let out = posctl(&["reader", "info", "--device", device]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn reader_info_prints_each_choice_with_its_reason() {
    // A TPDU reader without automatic PPS and a T=1 card: SetParameters, S(IFS request).
    let text = reader_info_text("sim:ccid?level=t1&pps=host");
    for line in [
        "exchange level: TPDU",
        "voltage: automatic",
        "SetParameters: yes",
        "IFSD: 254",
        "S(IFS request): yes",
        "max message length: 271",
    ] {
        assert!(text.contains(line), "{line:?} missing in:\n{text}");
    }
    assert!(text.contains("because dwFeatures"), "{text}");

    let out = posctl(&[
        "--json",
        "reader",
        "info",
        "--device",
        "sim:ccid?voltage=1.8",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["policy"]["exchange_level"]["value"], "ShortApdu");
    assert_eq!(v["policy"]["voltages"]["value"][0], "V1_8");
    assert!(
        v["policy"]["voltages"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("voltage=1.8"))
    );
    assert_eq!(v["policy"]["extended_apdu"]["value"], false);
    assert!(v["atr"].is_string());

    let out = posctl(&["reader", "info", "--device", "sim:ccid?voltage=12"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("auto|5|3|1.8"));
}

#[test]
fn reader_atr_and_apdu_on_the_virtual_reader() {
    let out = posctl(&["--json", "reader", "atr", "--device", "sim:ccid?level=t1"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["protocol_in_use"], 1);
    assert_eq!(v["ifsc"], 254);
    assert_eq!(v["tck_valid"], true);

    let out = posctl(&[
        "--json",
        "reader",
        "apdu",
        "--device",
        "sim:ccid?level=t0",
        "00A404000E315041592E5359532E444446303100",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    // T=0: the case-4 SELECT is answered 61xx, explained.
    assert!(v[0]["sw"].as_str().unwrap().starts_with("61"), "{v}");
    assert!(
        v[0]["meaning"].as_str().unwrap().contains("GET RESPONSE"),
        "{v}"
    );
}

#[test]
fn reader_faults_exit_2_and_bad_input_exit_1() {
    for device in ["sim:ccid?card=none", "sim:ccid?card=mute"] {
        let out = posctl(&["reader", "atr", "--device", device]);
        assert_eq!(out.status.code(), Some(2), "{device}");
    }
    let out = posctl(&["reader", "apdu", "--device", "sim:ccid", "00A4XYZ"]);
    assert_eq!(out.status.code(), Some(1));
    let out = posctl(&[
        "reader",
        "apdu",
        "--device",
        "sim:ccid?remove_at=1",
        "00A404000E315041592E5359532E444446303100",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("removed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn reader_list_prints_valid_json() {
    let out = posctl(&["--json", "reader", "list"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(v["readers"].is_array() && v["warnings"].is_array(), "{v}");
}

#[test]
fn reader_watch_shows_the_slot_and_stops_when_told() {
    let out = posctl(&["reader", "watch", "--device", "sim:ccid", "--seconds", "1"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("slot 0"), "{text}");
}

#[test]
fn card_tlv_names_tags_and_masks_the_pan() {
    let out = posctl(&["card", "tlv", "70105A0854133300896000445F2403141231"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Application Expiration Date"), "{text}");
    assert!(text.contains("541333******0044"), "{text}");
    assert!(
        !text.contains("5413330089600044"),
        "the full PAN must never be shown: {text}"
    );
    let out = posctl(&["card", "tlv", "7010"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("offset 0"));
}

/// The recorded card sessions in pos-emv's test data (binaryfoo/emv-bertlv, MIT; see
/// crates/pos-emv/tests/data/README.md).
fn transcript(name: &str) -> String {
    format!(
        "{}/../pos-emv/tests/data/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn card_read_replays_the_shared_transcripts_through_the_virtual_reader() {
    for (level, file, aid, pan, expiry) in [
        (
            "t0",
            "contact-upi.apdu",
            "A000000333010102",
            "621094******0011",
            "301031",
        ),
        (
            "t1",
            "contact-mastercard.apdu",
            "A0000000041010",
            "541333******0044",
            "141231",
        ),
        (
            "apdu",
            "contact-mastercard.apdu",
            "A0000000041010",
            "541333******0044",
            "141231",
        ),
    ] {
        let device = format!("sim:ccid?level={level}&script={}", transcript(file));
        let out = posctl(&["--json", "card", "read", "--device", &device]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{level} {file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !text.contains("5413330089600044") && !text.contains("6210948000000011"),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(v["aid"], aid, "{v}");
        assert_eq!(v["pan_masked"], pan, "{v}");
        assert_eq!(v["expiry"], expiry, "{v}");
        assert!(v["label"].is_string(), "{v}");
    }
}

#[test]
fn card_read_with_the_card_pulled_exits_2_naming_the_step() {
    let device = format!(
        "sim:ccid?remove_at=3&script={}",
        transcript("contact-mastercard.apdu")
    );
    let out = posctl(&["card", "read", "--device", &device]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("removed"), "{err}");
}

#[test]
fn card_read_checks_the_certificates_with_the_test_ca_keys() {
    let device = format!("sim:ccid?script={}", transcript("contact-mastercard.apdu"));
    let out = posctl(&["--json", "card", "read", "--device", &device]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    // The Mastercard test card's issuer certificate (CA A000000004/EF) recovers, and has
    // expired: it says 12/14.
    assert!(v["oda"].as_str().unwrap().contains("expired 12/14"), "{v}");
    // UnionPay's CA key is not among the shipped test keys: said so, not guessed.
    let device = format!(
        "sim:ccid?level=t0&script={}",
        transcript("contact-upi.apdu")
    );
    let out = posctl(&["--json", "card", "read", "--device", &device]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(
        v["oda"].as_str().unwrap().contains("no CA public key"),
        "{v}"
    );
    // A CA key file that does not load is an error.
    let out = posctl(&[
        "card",
        "read",
        "--device",
        &device,
        "--ca-keys",
        "/nonexistent/keys.txt",
    ]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn card_read_names_the_missing_ca_key_and_how_to_add_it() {
    let device = format!(
        "sim:ccid?level=t0&script={}",
        transcript("contact-upi.apdu")
    );
    let out = posctl(&["--json", "card", "read", "--device", &device]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let oda = v["oda"].as_str().unwrap();
    assert!(oda.contains("RID A000000333 index 09"), "{oda}");
    assert!(oda.contains("`A000000333 09 EXPONENT MODULUS`"), "{oda}");
    assert!(oda.contains("--ca-keys FILE"), "{oda}");
    // With a key file that lacks it: that file is named.
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, pos_emv::capk::TEST_CA_KEYS).unwrap();
    let keys = keys.to_str().unwrap();
    let out = posctl(&[
        "--json",
        "card",
        "read",
        "--device",
        &device,
        "--ca-keys",
        keys,
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let oda = v["oda"].as_str().unwrap();
    assert!(oda.contains("RID A000000333 index 09"), "{oda}");
    assert!(
        oda.contains(&format!("add the scheme's key to {keys}")),
        "{oda}"
    );
}

#[test]
fn card_read_of_an_application_refusing_gpo_says_so() {
    // One Visa application whose GET PROCESSING OPTIONS answers 6985; whatever else the
    // terminal sends is not in the script (the replaying card answers 6985 too).
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("refuses-gpo.apdu");
    std::fs::write(
        &script,
        "> 00A4040007A000000003101000\n\
         < 6F108407A0000000031010A5055003564953 9000\n\
         > 80A8000002830000\n\
         < 6985\n"
            .replace(' ', ""),
    )
    .unwrap();
    let device = format!("sim:ccid?script={}", script.display());
    let out = posctl(&["card", "read", "--device", &device]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "GET PROCESSING OPTIONS: application A0000000031010 refused it with 6985 (conditions of use not satisfied)"
        ),
        "{err}"
    );
    assert!(!err.contains("no supported application"), "{err}");
}

#[test]
fn card_read_on_every_profile_card_verifies_its_certificates() {
    for (profile, aid) in [
        ("visa", "A0000000031010"),
        ("mastercard", "A0000000041010"),
        ("unionpay", "A000000333010102"),
        ("blocked", "A0000000032010"),
        ("expired", "A0000000041010"),
        ("aid-fallback", "A000000003101001"),
        ("cda", "A0000000041010"),
    ] {
        // Every exchange level: at level=t1 the profile card's ATR offers T=1 and the
        // driver's T=1 engine carries the whole read.
        for level in ["apdu", "t0", "t1"] {
            let device = format!("sim:ccid?level={level}&card={profile}");
            let out = posctl(&["--json", "card", "read", "--device", &device]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{device}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
            assert_eq!(v["aid"], aid, "{device}");
            assert!(
                v["oda"].as_str().unwrap().contains("verified"),
                "{device}: {v}"
            );
            let t1 = v["atr"].as_str().unwrap().replace(' ', "").contains("8131");
            assert_eq!(t1, level == "t1", "{device}: ATR {}", v["atr"]);
        }
    }
}

#[test]
fn msr_decode_text_and_bits_masked_with_chip_cards_flagged() {
    let out = posctl(&[
        "--json",
        "msr",
        "decode",
        ";5555555555554444=30121011234500000?",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("5555555555554444"), "masked only: {text}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["pan_masked"], "555555******4444");
    assert_eq!(v["expiry"], "3012");
    assert_eq!(v["service_code"], "101");
    assert_eq!(v["chip_card"], false);
    assert_eq!(v["tracks"][1]["track"], 2);
    assert_eq!(v["tracks"][1]["status"], "ok");

    // A chip card's stripe, as raw bits from the head (reversed swipe).
    let mut bits = [0u8; 512];
    let n = pos_magstripe::encode_bits(
        pos_magstripe::Track::Two,
        "4111111111111111=25122011000",
        15,
        &mut bits,
    )
    .expect("encode");
    let reversed: String = bits[..n + 15]
        .iter()
        .rev()
        .map(|b| char::from(b'0' + b))
        .collect();
    let out = posctl(&["--json", "msr", "decode", &reversed]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["pan_masked"], "411111******1111");
    assert_eq!(v["chip_card"], true);
    assert_eq!(v["verdict"], "insert_chip");

    // A bad read: the reader's error token, and noise bits.
    let out = posctl(&["--json", "msr", "decode", "%E?;E?"]);
    assert_eq!(out.status.code(), Some(2));
    let out = posctl(&["msr", "decode", "0101011100101"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn msr_watch_shows_masked_swipes_from_the_virtual_reader() {
    let out = posctl(&[
        "--json",
        "msr",
        "watch",
        "--device",
        "sim:msr?every_ms=100",
        "--seconds",
        "1",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("4111111111111111"), "masked only: {text}");
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("a swipe")).expect("JSON line");
    assert_eq!(first["pan_masked"], "411111******1111");
    assert_eq!(first["tracks"][1], "ok");
}

/// `posctl reader` takes the same `sim:ccid` URIs as the lane: EMV profile cards and
/// recorded sessions, at every level; bad options list every accepted value.
#[test]
fn reader_commands_take_every_sim_card() {
    let upi = transcript("contact-upi.apdu");
    for device in [
        "sim:ccid?card=visa".to_string(),
        "sim:ccid?card=unionpay&level=t1".to_string(),
        format!("sim:ccid?script={upi}&level=t0"),
    ] {
        let out = posctl(&[
            "--json",
            "reader",
            "apdu",
            "--device",
            &device,
            "00A404000E315041592E5359532E444446303100",
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{device}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // T=0: the raw exchange shows the card's 61xx (data waiting for GET RESPONSE).
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("9000") || text.contains("send GET RESPONSE"),
            "{device}: {text}"
        );
        let out = posctl(&["reader", "atr", "--device", &device]);
        assert_eq!(out.status.code(), Some(0), "{device}");
    }
    let out = posctl(&["reader", "atr", "--device", "sim:ccid?card=amex"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("t0|t1|mute|visa|mastercard|unionpay|blocked|expired|aid-fallback|cda|none"),
        "{err}"
    );
    let out = posctl(&["reader", "atr", "--device", "sim:ccid?level=t9"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("level=apdu|t0|t1"), "{err}");
}

/// `posctl ... | head -1`: the reader of the output went away. posctl stops quietly with
/// the status of a process ended by SIGPIPE, never a panic message.
#[test]
fn a_closed_standard_output_ends_quietly() {
    for args in [
        &["udev-rules"][..],
        &["card", "tlv", "9F0206000000001000"][..],
    ] {
        let (read_end, write_end) = rustix::pipe::pipe().expect("pipe");
        // The reader is gone before posctl writes a byte: every write fails with EPIPE.
        drop(read_end);
        let out = Command::new(env!("CARGO_BIN_EXE_posctl"))
            .args(args)
            .env_remove("RUST_LOG")
            .stdout(write_end)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run posctl");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn reader_info_on_a_reader_model_applies_its_quirks() {
    // The OMNIKEY 3121 model: its descriptor, its 106 data rates, and the quirk row of its
    // USB ids (076b:3031) naming the model in the exchange level's reason.
    let text = reader_info_text("sim:ccid?model=omnikey-3121");
    for line in [
        "exchange level: extended APDU",
        "because HID OMNIKEY 3x21",
        "voltage: automatic",
        "SetParameters: yes",
        "max message length: 271",
        "data rates (GET_DATA_RATES): 106 listed",
    ] {
        assert!(text.contains(line), "{line:?} missing in:\n{text}");
    }
    let out = posctl(&[
        "--json",
        "reader",
        "info",
        "--device",
        "sim:ccid?model=idbridge-ct30",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["policy"]["exchange_level"]["value"], "Tpdu");
    assert_eq!(v["policy"]["voltages"]["value"][0], "V5");
    assert_eq!(v["policy"]["ifsd"]["value"], 254);
    assert_eq!(v["data_rates"].as_array().map(Vec::len), Some(53));
    let out = posctl(&["reader", "info", "--device", "sim:ccid?model=nope"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("omnikey-3121"));
}

#[test]
fn drawer_open_and_status_on_the_virtual_printer() {
    let json = |out: &std::process::Output| -> serde_json::Value {
        serde_json::from_slice(&out.stdout).expect("JSON on stdout")
    };
    let out = posctl(&["drawer", "status", "--device", "sim:printer", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["state"], "closed");
    let out = posctl(&[
        "drawer",
        "status",
        "--device",
        "sim:printer?drawer=open",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["state"], "open");

    // The usual pulse on pin 2 opens the virtual drawer.
    let out = posctl(&["drawer", "open", "--device", "sim:printer", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json(&out);
    assert_eq!(v["opened"], true);
    assert_eq!(v["state"], "open");
    assert_eq!(
        v["pulse"],
        serde_json::json!({"pin": "pin2", "on": 50, "off": 500})
    );
    let text = posctl(&["drawer", "open", "--device", "sim:printer"]);
    assert!(
        String::from_utf8_lossy(&text.stdout)
            .contains("drawer opened (pin 2, 50 ms on, 500 ms off)"),
        "{text:?}"
    );

    // Pin 5 on a drawer wired to pin 2: the pulse goes out, the drawer stays shut: exit 2.
    let out = posctl(&[
        "drawer",
        "open",
        "--device",
        "sim:printer",
        "--pin",
        "5",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(json(&out)["state"], "closed");
    assert_eq!(json(&out)["pulse"]["pin"], "pin5");

    // Cover open: refused, no pulse, exit 2 with the fault named.
    let out = posctl(&["drawer", "open", "--device", "sim:printer?fault=cover-open"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cover_open") && err.contains("no pulse"),
        "{err}"
    );

    // A silent printer cannot be read: exit 1; a bad pin: exit 1.
    let out = posctl(&["drawer", "status", "--device", "sim:printer?fault=silent"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = posctl(&["drawer", "open", "--device", "sim:printer", "--pin", "3"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 or 5"));
}

#[test]
fn reader_list_shows_the_pcsc_road_or_says_why_not() {
    let out = posctl(&["--json", "reader", "list"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    match v["pcsc_readers"].as_array() {
        Some(list) => {
            for r in list {
                assert_eq!(r["road"], "pcsc", "{r}");
                assert!(
                    r["uri"].as_str().is_some_and(|u| u.starts_with("pcsc:")),
                    "{r}"
                );
            }
        }
        None => {
            let why = v["pcsc_error"].as_str().expect("pcsc_error when no list");
            assert!(why.starts_with("pcsc: "), "{why}");
            assert!(!why.contains('\n'), "{why}");
        }
    }
    let out = posctl(&["reader", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("PC/SC readers"), "{text}");
}

#[test]
fn a_pcsc_reader_without_pcscd_or_the_library_is_one_line_exit_1() {
    let out = posctl(&["reader", "atr", "--device", "pcsc:No Such Reader 00 00"]);
    let err = String::from_utf8_lossy(&out.stderr);
    // pcscd missing, library missing, or no reader of that name: never a device fault.
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("pcsc"), "{err}");
}

/// posctl with a lanes directory (`$POS_LANES_DIR`) and no lane or config from the
/// environment.
fn posctl_lanes(
    lanes: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_posctl"));
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("POS_CONFIG")
        .env_remove("POS_LANE")
        .env_remove("POS_JOURNAL")
        .env("POS_LANES_DIR", lanes);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run posctl")
}

/// A lanes directory with lane `store-1_a` (its journal in the temp dir) and a `.toml`
/// beside the directory that a path-traversing name would reach.
fn lanes_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let lanes = dir.path().join("lanes");
    std::fs::create_dir(&lanes).expect("lanes dir");
    let config = |name: &str| {
        format!(
            "journal = {:?}\n\n[api]\nlisten = \"127.0.0.1:0\"\n",
            dir.path().join(name).display().to_string()
        )
    };
    std::fs::write(lanes.join("store-1_a.toml"), config("a.sqlite")).expect("lane config");
    std::fs::write(dir.path().join("outside.toml"), config("outside.sqlite"))
        .expect("outside config");
    (dir, lanes)
}

#[test]
fn lane_finds_its_config_in_the_lanes_directory() {
    let (dir, lanes) = lanes_dir();
    let journal = dir.path().join("a.sqlite").display().to_string();
    for out in [
        posctl_lanes(
            &lanes,
            &["--lane", "store-1_a", "--json", "serve", "--check"],
            &[],
        ),
        // After the subcommand (global), and from $POS_LANE.
        posctl_lanes(
            &lanes,
            &["serve", "--check", "--json", "--lane", "store-1_a"],
            &[],
        ),
        posctl_lanes(
            &lanes,
            &["--json", "serve", "--check"],
            &[("POS_LANE", "store-1_a")],
        ),
    ] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
        assert_eq!(v["journal"], journal.as_str(), "{v}");
        // The lane's name is its metrics' `lane` label.
        assert_eq!(v["lane"], "store-1_a", "{v}");
        assert_eq!(v["terminal_id"], "TERM0001", "{v}");
    }

    // A lane without a config file: named, with where it was looked for.
    let out = posctl_lanes(&lanes, &["--lane", "lane9", "serve", "--check"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let expected = format!(
        "lane lane9: no config at {}",
        lanes.join("lane9.toml").display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn a_lane_config_naming_another_lane_is_refused() {
    let (dir, lanes) = lanes_dir();
    let base = std::fs::read_to_string(lanes.join("store-1_a.toml")).expect("lane config");
    // The same name: fine.
    std::fs::write(
        lanes.join("store-1_a.toml"),
        format!("lane = \"store-1_a\"\n{base}"),
    )
    .expect("write");
    let out = posctl_lanes(
        &lanes,
        &["--lane", "store-1_a", "--json", "serve", "--check"],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Another lane's name (a config copied and not edited): refused, both names said.
    std::fs::write(
        lanes.join("store-1_a.toml"),
        format!("lane = \"store-1_b\"\n{base}"),
    )
    .expect("write");
    let out = posctl_lanes(&lanes, &["--lane", "store-1_a", "serve", "--check"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("--lane store-1_a: its config says lane = \"store-1_b\", another lane"),
        "{stderr}"
    );
    // Without --lane, the config's own name.
    let out = posctl_lanes(
        &lanes,
        &[
            "--config",
            &lanes.join("store-1_a.toml").display().to_string(),
            "--json",
            "serve",
            "--check",
        ],
        &[],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(v["lane"], "store-1_b", "{v}");
    drop(dir);
}

#[test]
fn lane_names_that_are_not_plain_names_are_refused() {
    let (_dir, lanes) = lanes_dir();
    for bad in [
        "../outside",
        "..",
        "a/b",
        "/etc/passwd",
        "lane 1",
        "store-1_a.toml",
        "",
    ] {
        for out in [
            posctl_lanes(&lanes, &["--lane", bad, "serve", "--check"], &[]),
            posctl_lanes(&lanes, &["serve", "--check"], &[("POS_LANE", bad)]),
        ] {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{bad:?}: {stderr}");
            assert!(
                stderr.contains("a lane name is 1 to 64 letters, digits, '-' or '_'"),
                "{bad:?}: {stderr}"
            );
            assert!(out.stdout.is_empty(), "{bad:?}");
        }
    }
}

#[test]
fn lane_and_config_together_are_refused() {
    let (dir, lanes) = lanes_dir();
    let other = dir.path().join("outside.toml").display().to_string();
    for out in [
        posctl_lanes(
            &lanes,
            &[
                "--lane",
                "store-1_a",
                "--config",
                &other,
                "serve",
                "--check",
            ],
            &[],
        ),
        posctl_lanes(
            &lanes,
            &["--lane", "store-1_a", "serve", "--check"],
            &[("POS_CONFIG", &other)],
        ),
        posctl_lanes(
            &lanes,
            &["--config", &other, "serve", "--check"],
            &[("POS_LANE", "store-1_a")],
        ),
    ] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
        assert!(
            stderr.contains(&format!(
                "--lane store-1_a and --config {other} both name the lane's config: give one"
            )),
            "{stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}
