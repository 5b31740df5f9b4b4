//! The library examples (`receipt_qr`, `emv_read`) run as a user runs them, on the simulated
//! devices: their output, their exit codes, and never a full card number.
//!
//! `cargo test` builds the examples before it runs the tests; when they are missing (e.g.
//! `cargo test --test examples_run` alone), the test builds them with the same cargo.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Once;

/// `target/<profile>/examples/NAME`, next to the `deps/` folder this test runs from.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    static BUILD: Once = Once::new();
    if !path.exists() {
        BUILD.call_once(|| {
            let status = Command::new(env!("CARGO"))
                .args(["build", "-p", "pos-examples", "--examples"])
                .status()
                .expect("run cargo build --examples");
            assert!(status.success(), "cargo build --examples failed");
        });
    }
    assert!(path.exists(), "{} not built", path.display());
    path
}

fn run(name: &str, args: &[&str]) -> Output {
    Command::new(example(name))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run the example")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn receipt_qr_prints_the_receipt_with_its_qr_code_confirmed() {
    let out = run("receipt_qr", &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("outcome: confirmed"), "{stdout}");
    // What the virtual printer printed: the lines and the QR code with its data.
    for line in [
        "CORNER CAFE",
        "TOTAL EUR                   5.60",
        "Card 476173******0010",
        "[QR: https://example.invalid/r/000123]",
    ] {
        assert!(stdout.contains(line), "{line:?} missing:\n{stdout}");
    }
    assert!(!stdout.contains("4761739001010010"), "{stdout}");
}

#[test]
fn receipt_qr_reports_paper_out_mid_receipt_and_bad_addresses() {
    let out = run("receipt_qr", &["sim:printer?after=4"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(!stdout.contains("outcome: confirmed"), "{stdout}");
    assert!(stderr.contains("[paper_out]"), "{stderr}");

    let out = run("receipt_qr", &["sim:printer?fault=cover-open"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("[cover_open]"), "{stderr}");

    let out = run("receipt_qr", &["bogus:x"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("usage: receipt_qr"), "{stderr}");
}

#[test]
fn emv_read_shows_the_masked_pan_expiry_and_application() {
    let out = run("emv_read", &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for line in [
        "applications found through the card's PSE directory:\n  A0000000031010 VISA CREDIT",
        "application: VISA CREDIT (A0000000031010)",
        "card number: 476173******0010",
        "expires:     12/31",
    ] {
        assert!(stdout.contains(line), "{line:?} missing:\n{stdout}");
    }
    assert!(!stdout.contains("4761739001010010"), "{stdout}");

    let out = run("emv_read", &["sim:ccid?card=mastercard"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("through the terminal's list of AIDs"),
        "{stdout}"
    );
    assert!(stdout.contains("card number: 541333******0011"), "{stdout}");
}

#[test]
fn emv_read_names_the_fault_when_the_card_cannot_be_read() {
    // Pulled out during the read: exit 2, the step and the kind named.
    let out = run("emv_read", &["sim:ccid?card=visa&remove_at=4"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("[card_removed]"), "{stderr}");
    assert!(!stdout.contains("card number"), "{stdout}");

    for (device, kind) in [
        ("sim:ccid?card=none", "[card_absent]"),
        ("sim:ccid?card=mute", "[card_mute]"),
    ] {
        let out = run("emv_read", &[device]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{device}: {stderr}");
        assert!(stderr.contains(kind), "{device}: {stderr}");
    }

    // A profile that does not exist: the error lists those that do.
    let out = run("emv_read", &["sim:ccid?card=amex"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("visa|mastercard"), "{stderr}");
}
