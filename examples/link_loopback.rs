//! Loopback self-test of a serial port or TCP link.
//!
//! With a loopback plug on a serial port (pins 2-3 bridged, and 7-8 for RTS/CTS), or a peer
//! that echoes, this checks that every byte value survives the round trip and that reads time
//! out when the line is idle, and reports the rate:
//!
//! ```text
//! cargo run --example link_loopback -- serial:/dev/ttyUSB0?baud=115200
//! cargo run --example link_loopback -- tcp:192.0.2.10:7
//! cargo run --example link_loopback            # no hardware: a pseudo-terminal echo
//! ```
//!
//! Exit code 0 when it passes, 1 when the link cannot be opened, 2 when the test fails.

use std::process::ExitCode;
use std::time::Duration;

use pos_hal::Fault;
use pos_link::{DeviceUri, PtyPair, SerialLink, SerialSettings, loopback};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let arg = std::env::args().nth(1);
    let len = 4096;
    let timeout = Duration::from_secs(2);

    let report = match arg.as_deref() {
        None | Some("--pty") => {
            println!("no link given: testing the serial stack against a pseudo-terminal echo");
            let (master, slave) = match PtyPair::open() {
                Ok(p) => p.into_parts(),
                Err(e) => return fail_open(&e),
            };
            let echo = loopback::spawn_echo(master, Duration::from_secs(1));
            let mut port = match SerialLink::open(&slave, SerialSettings::default()) {
                Ok(p) => p,
                Err(e) => return fail_open(&e),
            };
            let report = loopback::run(&mut port, len, timeout);
            drop(port);
            let _ = echo.join();
            report
        }
        Some(text) => {
            let uri = match DeviceUri::parse(text) {
                Ok(u) => u,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(1);
                }
            };
            println!("testing {uri}: {len} bytes; needs a loopback plug or an echoing peer");
            let mut link = match pos_link::open(&uri, Duration::from_secs(3)) {
                Ok(l) => l,
                Err(e) => return fail_open(&e),
            };
            loopback::run(&mut link, len, timeout)
        }
    };
    println!("{report}");
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

fn fail_open(e: &pos_link::LinkError) -> ExitCode {
    eprintln!("cannot open: {e} [{}]", e.kind());
    if let Some(h) = e.hint() {
        eprintln!("  hint: {h}");
    }
    ExitCode::from(1)
}
