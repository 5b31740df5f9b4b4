//! Magnetic-stripe reader self-test for technicians: swipe a card N times, see the read rate
//! of each track.
//!
//! ```text
//! cargo run --example msr_selftest -- serial:/dev/ttyUSB0?baud=9600&suffix=cr 10
//! cargo run --example msr_selftest                 # no hardware: the virtual reader
//! ```
//!
//! Each swipe is shown masked with its per-track status; at the end, the percentage of
//! swipes each track read. Exit 0 when track 2 read on every swipe, 2 when not, 1 when the
//! reader cannot be opened.

use std::process::ExitCode;
use std::time::Duration;

use pos_hal::{Fault, FaultKind, MagstripeReader, TrackStatus};
use pos_link::DeviceUri;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let mut args = std::env::args().skip(1);
    let text = args
        .next()
        .unwrap_or_else(|| "sim:msr?every_ms=200".to_string());
    let wanted: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(5);
    let uri = match DeviceUri::parse(&text) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let mut reader = match pos_magstripe::serial::open(&uri) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "cannot open {uri}: {e} [{}] {}",
                e.kind(),
                e.kind().advice()
            );
            return ExitCode::from(1);
        }
    };
    println!("swipe a card {wanted} times (30 s per swipe)");
    let mut ok = [0usize; 3];
    let mut swipes = 0;
    while swipes < wanted {
        match reader.wait_for_swipe(Duration::from_secs(30)) {
            Ok(swipe) => {
                swipes += 1;
                let st = swipe.statuses();
                for (i, s) in st.iter().enumerate() {
                    if *s == TrackStatus::Ok {
                        ok[i] += 1;
                    }
                }
                println!(
                    "  swipe {swipes}: track 1 {}, track 2 {}, track 3 {}",
                    st[0].name(),
                    st[1].name(),
                    st[2].name()
                );
            }
            Err(e) if e.kind() == FaultKind::BadRead => {
                swipes += 1;
                println!("  swipe {swipes}: no track read ({e})");
            }
            Err(e) if e.kind() == FaultKind::Timeout => {
                println!("  no swipe within 30 s: stopping");
                break;
            }
            Err(e) => {
                eprintln!("  reader failed: {e} [{}]", e.kind());
                return ExitCode::from(1);
            }
        }
    }
    println!("read rate over {swipes} swipes:");
    for (i, n) in ok.iter().enumerate() {
        let pct = if swipes == 0 {
            0.0
        } else {
            100.0 * *n as f64 / swipes as f64
        };
        println!("  track {}: {n}/{swipes} ({pct:.0} %)", i + 1);
    }
    if swipes == wanted && ok[1] == swipes {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
