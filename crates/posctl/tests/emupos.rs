//! posctl against an independent ESC/POS emulator: `emupos` (PyPI), which simulates an Epson
//! TM-T20III on TCP, renders receipts to text and takes faults through a local REST API.
//! Nothing here shares our own understanding of the protocol, so this checks our status
//! parsing and encoding against somebody else's reading of the Epson reference.
//!
//! `POS_EMUPOS` names the `emupos` executable (`.ci/run` installs it into a virtualenv; needs
//! Python >= 3.13). Without it the test says it is skipped and why; under CI (`CI` set) a
//! missing emulator is a failure, never a silent pass.

mod common;

use std::time::{Duration, Instant};

use common::emupos::{binary, http, posctl, start};

#[test]
fn status_and_selftest_against_emupos() {
    let Some(bin) = binary("status_and_selftest_against_emupos") else {
        return;
    };
    let emu = start(&bin, "epson-tm-t20iii", "");
    let device = format!("tcp:127.0.0.1:{}?profile=epson-tm-t20", emu.printer);

    let (code, v, err) = posctl(&["--json", "printer", "status", "--device", &device]);
    assert_eq!(code, Some(0), "{v} {err}");
    assert_eq!(v["ready"], true, "{v}");

    for (fault, name, ready) in [
        ("paper-out", "paper_out", false),
        ("paper-near-end", "paper_near_end", true),
        ("cover-open", "cover_open", false),
        ("offline", "offline", false),
    ] {
        let path = format!("/api/v1/devices/front/faults/{fault}");
        assert_eq!(http(emu.api, "PUT", &path).unwrap().0, 204, "{fault}");
        let (code, v, err) = posctl(&["--json", "printer", "status", "--device", &device]);
        assert_eq!(v["ready"], ready, "{fault}: {v} {err}");
        assert_eq!(code, Some(if ready { 0 } else { 2 }), "{fault}: {v}");
        assert!(
            v["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c == name)),
            "{fault}: {v}"
        );
        assert_eq!(http(emu.api, "DELETE", &path).unwrap().0, 204, "{fault}");
    }

    // A job refused while the cover is open prints nothing.
    http(emu.api, "PUT", "/api/v1/devices/front/faults/cover-open").unwrap();
    let (code, v, _) = posctl(&["--json", "printer", "selftest", "--device", &device]);
    assert_eq!(code, Some(2), "{v}");
    assert_eq!(v["printed"], false, "{v}");
    assert_eq!(v["fault"], "cover_open", "{v}");
    http(emu.api, "DELETE", "/api/v1/devices/front/faults/cover-open").unwrap();

    // emupos ignores GS ( H: the outcome must be StatusVerified, not Confirmed.
    let (code, v, err) = posctl(&["--json", "printer", "selftest", "--device", &device]);
    assert_eq!(code, Some(0), "{v} {err}");
    assert_eq!(v["outcome"], "status_verified", "{v}");

    // Our self-test's text appears in emupos's rendering of the receipt.
    let until = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let (_, list) = http(emu.api, "GET", "/api/v1/devices/front/receipts").unwrap();
        let receipts: serde_json::Value = serde_json::from_str(&list).unwrap_or_default();
        let ids: Vec<String> = receipts
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let mut found = None;
        for id in ids {
            let (_, t) = http(
                emu.api,
                "GET",
                &format!("/api/v1/devices/front/receipts/{id}/text"),
            )
            .unwrap();
            if t.contains(pos_escpos::selftest::TEST_PAGE_TITLE) {
                found = Some(t);
            }
        }
        if let Some(t) = found {
            break t;
        }
        assert!(
            Instant::now() < until,
            "no receipt with the self-test title in emupos: {receipts}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(text.contains("profile: epson-tm-t20"), "{text}");
    assert!(
        text.contains("Euro: € 12,50"),
        "the euro sign went through CP858: {text}"
    );
    assert!(text.contains("end of self-test"), "{text}");
}
