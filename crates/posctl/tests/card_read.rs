//! `posctl card read` lists the candidate applications and how they were found (the card's
//! PSE directory or the terminal's list of AIDs), even when there is only one.

use std::process::Command;

fn posctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_posctl"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run posctl")
}

fn read_json(device: &str) -> serde_json::Value {
    let out = posctl(&["--json", "card", "read", "--device", device]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{device}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// (aid, label, priority) of each candidate, in order.
fn candidates(v: &serde_json::Value) -> Vec<(String, String, Option<u64>)> {
    v["candidates"]
        .as_array()
        .expect("a candidates array")
        .iter()
        .map(|c| {
            assert_eq!(c["confirmation_required"], false, "{c}");
            (
                c["aid"].as_str().expect("aid").to_string(),
                c["label"].as_str().expect("label").to_string(),
                c["priority"].as_u64(),
            )
        })
        .collect()
}

fn owned(list: &[(&str, &str, Option<u64>)]) -> Vec<(String, String, Option<u64>)> {
    list.iter()
        .map(|(a, l, p)| (a.to_string(), l.to_string(), *p))
        .collect()
}

#[test]
fn one_candidate_from_the_pse_is_listed() {
    let v = read_json("sim:ccid?level=t0&card=visa");
    assert_eq!(v["candidates_from"], "pse", "{v}");
    assert_eq!(
        candidates(&v),
        owned(&[("A0000000031010", "VISA CREDIT", Some(1))]),
        "{v}"
    );
    assert_eq!(v["aid"], "A0000000031010");
    assert_eq!(v["pan_masked"], "476173******0010");
    assert!(!v.to_string().contains("4761739001010010"), "{v}");
}

#[test]
fn several_candidates_from_the_pse_in_priority_order_with_the_refused_one() {
    let v = read_json("sim:ccid?level=t0&card=unionpay");
    assert_eq!(v["candidates_from"], "pse", "{v}");
    assert_eq!(
        candidates(&v),
        owned(&[
            ("A000000333010102", "UnionPay Credit", Some(1)),
            ("A000000333010101", "UnionPay Debit", Some(2)),
        ]),
        "{v}"
    );
    assert_eq!(v["aid"], "A000000333010102");

    // The PSE lists the blocked application; final selection refuses it.
    let v = read_json("sim:ccid?level=t0&card=blocked");
    assert_eq!(v["candidates_from"], "pse", "{v}");
    assert_eq!(
        candidates(&v),
        owned(&[
            ("A0000000031010", "VISA CREDIT", Some(1)),
            ("A0000000032010", "VISA ELECTRON", Some(2)),
        ]),
        "{v}"
    );
    assert_eq!(v["aid"], "A0000000032010");
}

#[test]
fn candidates_found_by_the_list_of_aids_say_so() {
    let v = read_json("sim:ccid?level=t0&card=mastercard");
    assert_eq!(v["candidates_from"], "aid_list", "{v}");
    assert_eq!(
        candidates(&v),
        owned(&[("A0000000041010", "MASTERCARD", None)]),
        "{v}"
    );
    let v = read_json("sim:ccid?level=t0&card=aid-fallback");
    assert_eq!(v["candidates_from"], "aid_list", "{v}");
    assert_eq!(candidates(&v).len(), 2, "{v}");
}

#[test]
fn the_text_output_lists_the_candidates_and_their_source() {
    let out = posctl(&["card", "read", "--device", "sim:ccid?level=t0&card=visa"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "candidates from the PSE directory:\n    A0000000031010 VISA CREDIT (priority 1)"
        ),
        "{text}"
    );
    assert!(text.contains("476173******0010"), "{text}");
    assert!(!text.contains("4761739001010010"), "{text}");

    let out = posctl(&[
        "card",
        "read",
        "--device",
        "sim:ccid?level=t0&card=mastercard",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "candidates from the list of AIDs:\n    A0000000041010 MASTERCARD (priority none)"
        ),
        "{text}"
    );
}
