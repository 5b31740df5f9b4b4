//! Opens each driver's `sim:` URI in a build without the driver's `sim` feature and checks
//! the answer: an `InvalidInput` error that names the URI, the missing feature and the crate
//! to enable it on; never a panic, never a device. Exit status 1 when any answer differs.
//!
//! Run on its own (`cargo run -p nosim-probe`, as `.ci/features` does): in a workspace-wide
//! build other members enable `sim`, and the probe says so and fails rather than pass.

use pos_hal::{Fault, FaultKind};
use pos_link::DeviceUri;

/// What one `open` answered: the error's kind and text, or `None` when it opened.
type Answer = Option<(FaultKind, String)>;

fn answer<T, E: Fault + std::fmt::Display>(r: Result<T, E>) -> Answer {
    r.err().map(|e| (e.kind(), e.to_string()))
}

/// Check one answer; prints the verdict and returns whether it is the expected refusal.
fn verdict(what: &str, uri: &str, krate: &str, got: Answer) -> bool {
    let feature = format!("`sim` feature of {krate}");
    match got {
        Some((FaultKind::InvalidInput, text)) if text.contains(&feature) && text.contains(uri) => {
            println!("ok   {what}: {text}");
            true
        }
        Some((kind, text)) => {
            println!("FAIL {what}: {kind} error {text:?} does not name {uri} and the {feature}");
            false
        }
        None => {
            println!(
                "FAIL {what}: opened a device; {krate} was built with `sim` (run the probe on \
                 its own: cargo run -p nosim-probe)"
            );
            false
        }
    }
}

/// One driver's `open`, answering for a URI.
type Open = fn(&DeviceUri) -> Answer;

fn main() {
    let cases: [(&str, &str, &str, Open); 3] = [
        (
            "pos_escpos::open",
            "sim:printer?fault=paper-out",
            "pos-escpos",
            |u| answer(pos_escpos::open(u, Default::default())),
        ),
        ("pos_ccid::open", "sim:ccid?card=t1", "pos-ccid", |u| {
            answer(pos_ccid::open(u, Default::default()))
        }),
        (
            "pos_magstripe::serial::open",
            "sim:msr",
            "pos-magstripe",
            |u| answer(pos_magstripe::serial::open(u)),
        ),
    ];
    let mut all = true;
    for (what, text, krate, open) in cases {
        all &= match DeviceUri::parse(text) {
            Ok(uri) => verdict(what, text, krate, open(&uri)),
            Err(e) => {
                println!("FAIL {what}: {text} does not parse: {e}");
                false
            }
        };
    }
    std::process::exit(if all { 0 } else { 1 });
}
