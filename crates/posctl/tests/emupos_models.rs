//! posctl against emupos (PyPI, an independent ESC/POS emulator) with each of its bundled
//! printer profiles: detection (`printer info`), `printer selftest`, a reference receipt and
//! the cash drawer (kick, then the open/closed sensor through emupos's control API).
//!
//! `POS_EMUPOS` names the `emupos` executable (`.ci/run` installs it). Without it the test
//! says SKIPPED and why; under CI (`CI` set) a missing emulator is a failure.

mod common;

use std::time::{Duration, Instant};

use common::emupos::{Emulator, binary, http, posctl, start};

use pos_hal::{Barcode, CutKind, Document, DrawerPin, QrCode, Symbology};

/// The text of the first completed receipt containing `needle`, waiting up to 20 s.
fn receipt_with(emu: &Emulator, needle: &str) -> String {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, list) = http(emu.api, "GET", "/api/v1/devices/front/receipts").expect("api");
        let receipts: serde_json::Value = serde_json::from_str(&list).unwrap_or_default();
        for id in receipts
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["id"].as_str())
        {
            let path = format!("/api/v1/devices/front/receipts/{id}/text");
            let (_, t) = http(emu.api, "GET", &path).expect("api");
            if t.contains(needle) {
                return t;
            }
        }
        assert!(
            Instant::now() < until,
            "no receipt with {needle:?} in emupos: {receipts}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn drawer_state(emu: &Emulator) -> serde_json::Value {
    let (_, body) = http(emu.api, "GET", "/api/v1/devices/front").expect("api");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v["state"]["drawer"].clone()
}

/// One emupos profile: what `printer info` must find, and the profile to print with.
struct Case {
    emupos: &'static str,
    detected: &'static str,
    model: Option<&'static str>,
    print_with: &'static str,
}

const CASES: &[Case] = &[
    // Answers GS I (maker EPSON, model name TM-T20III): the database profile.
    Case {
        emupos: "epson-tm-t20iii",
        detected: "epson-tm-t20iii",
        model: Some("TM-T20III"),
        print_with: "epson-tm-t20iii",
    },
    // emupos's RP326 and XP-80T do not answer GS I (over TCP there is no device ID either):
    // detection says it found nothing and uses the generic 80 mm profile. The RP326 has a
    // database profile to choose by name; the XP-80T is not in the database.
    Case {
        emupos: "rongta-rp326",
        detected: "generic-80",
        model: None,
        print_with: "rongta-rp326",
    },
    Case {
        emupos: "xprinter-xp80t",
        detected: "generic-80",
        model: None,
        print_with: "generic-80",
    },
];

#[test]
fn bundled_profiles_detection_selftest_receipt_and_drawer() {
    let Some(bin) = binary("bundled_profiles_detection_selftest_receipt_and_drawer") else {
        return;
    };
    for case in CASES {
        // The drawer sensor reads LOW when open, as our model profiles assume
        // (`drawer_open_when_pin3_high = false`).
        let emu = start(
            &bin,
            case.emupos,
            "    drawer: { sensor_open_level: low }\n",
        );
        let name = case.emupos;

        // Detection.
        let auto = format!("tcp:127.0.0.1:{}", emu.printer);
        let (code, v, err) = posctl(&["--json", "printer", "info", "--device", &auto]);
        assert_eq!(code, Some(0), "{name}: {v} {err}");
        assert_eq!(v["profile"], case.detected, "{name}: {v}");
        assert_eq!(
            v["model"].as_str(),
            case.model,
            "{name}: the model as the printer gave it: {v}"
        );
        assert!(v["reason"].as_str().is_some_and(|r| !r.is_empty()), "{v}");

        // Self-test with the detected profile.
        let (code, v, err) = posctl(&[
            "--json",
            "printer",
            "selftest",
            "--device",
            &format!("{auto}?profile=auto"),
        ]);
        assert_eq!(code, Some(0), "{name}: {v} {err}");
        assert_eq!(v["outcome"], "status_verified", "{name}: {v}");
        receipt_with(&emu, pos_escpos::selftest::TEST_PAGE_TITLE);

        // The reference receipt with the model's profile, and its drawer kick.
        let device = format!("{auto}?profile={}", case.print_with);
        let mut doc = Document::new();
        doc.text(format!("REFERENCE {name}"))
            .text("Caf\u{e9} cr\u{e8}me 2.50")
            .barcode(Barcode::new(Symbology::Ean13, "400638133393"))
            .qr(QrCode::new("https://example.invalid/r/42"))
            .drawer_kick(DrawerPin::Pin2)
            .cut(CutKind::FeedAndPartial);
        let file = emu.dir.path().join("receipt.json");
        std::fs::write(&file, serde_json::to_string(&doc).expect("json")).expect("write");
        assert_eq!(drawer_state(&emu), "closed", "{name}");
        let (code, v, err) = posctl(&[
            "--json",
            "printer",
            "print",
            "--device",
            &device,
            file.to_str().expect("utf-8 path"),
        ]);
        assert_eq!(code, Some(0), "{name}: {v} {err}");
        assert_eq!(v["profile"], case.print_with, "{v}");
        let text = receipt_with(&emu, &format!("REFERENCE {name}"));
        assert!(
            text.contains("Caf\u{e9} cr\u{e8}me 2.50"),
            "{name}: CP437 text: {text}"
        );

        // The kick opened the drawer; the sensor says so through DLE EOT 1.
        assert_eq!(drawer_state(&emu), "open", "{name}");
        let (_, v, err) = posctl(&["--json", "printer", "status", "--device", &device]);
        assert!(
            v["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c == "drawer_open")),
            "{name}: {v} {err}"
        );
        assert_eq!(
            http(emu.api, "POST", "/api/v1/devices/front/drawer/close")
                .expect("api")
                .0,
            204
        );
        let (_, v, err) = posctl(&["--json", "printer", "status", "--device", &device]);
        assert!(
            v["conditions"]
                .as_array()
                .is_some_and(|c| !c.iter().any(|c| c == "drawer_open")),
            "{name}: {v} {err}"
        );

        // The drawer as a device: posctl drawer status / open through the same printer.
        let (code, v, err) = posctl(&["--json", "drawer", "status", "--device", &device]);
        assert_eq!(
            (code, v["state"].as_str()),
            (Some(0), Some("closed")),
            "{name}: {v} {err}"
        );
        let (code, v, err) = posctl(&["--json", "drawer", "open", "--device", &device]);
        assert_eq!(code, Some(0), "{name}: {v} {err}");
        assert_eq!(v["opened"], true, "{name}: {v}");
        assert_eq!(drawer_state(&emu), "open", "{name}");
        let (code, v, err) = posctl(&["--json", "drawer", "status", "--device", &device]);
        assert_eq!(
            (code, v["state"].as_str()),
            (Some(0), Some("open")),
            "{name}: {v} {err}"
        );
    }
}
