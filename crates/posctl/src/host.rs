//! `posctl host sim` (a fake acquirer host) and `posctl host check` (is the acquirer
//! reachable and answering?).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use pos_acquirer::sim::{FakeHost, HostLogEntry, HostRules};
use pos_acquirer::{AcquirerSettings, CheckReport, check};

use crate::{CliError, Exit};

fn line(e: &HostLogEntry) -> String {
    let stan = e
        .stan
        .map_or_else(|| "-".to_string(), |s| format!("{s:06}"));
    let answer = match (&e.response_code, e.answered) {
        (Some(code), true) => format!("-> {code}"),
        (Some(code), false) => format!("-> {code} (not sent)"),
        (None, _) => "-> closed".to_string(),
    };
    let fault = e
        .fault
        .as_deref()
        .map(|f| format!(" [fault {f}]"))
        .unwrap_or_default();
    format!("{} stan={stan} {answer}{fault} {}", e.mti, e.summary)
}

/// `posctl host sim --listen ADDR [--ledger FILE]`: run a fake acquirer host with the
/// default rules (amount ending .51 → 51, .05 → 05, .91 → 91, else approved) until the
/// process is killed (Ctrl-C / SIGTERM end it). The first line is `listening on ADDR` (with
/// `--json`: `{"listening":"ADDR"}`), then one masked line (or JSON object) per message.
/// With `--ledger`, the ledger is loaded from and saved to that JSON file.
pub fn host_sim(listen: &str, ledger: Option<&Path>, json: bool) -> Result<Exit, CliError> {
    let started = match ledger {
        Some(path) => FakeHost::start_with_ledger(listen, HostRules::default(), path),
        None => FakeHost::start(listen, HostRules::default()),
    };
    let host = started.map_err(|e| CliError {
        message: format!("cannot start the fake host on {listen}: {e}"),
        hint: Some(match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "that port is taken: pick another, or 127.0.0.1:0 for any free port".into()
            }
            std::io::ErrorKind::InvalidData => {
                "the ledger file is not a fake-host ledger: move it away to start empty".into()
            }
            _ => "give --listen as IP:PORT, e.g. 127.0.0.1:8583".into(),
        }),
        exit: Exit::Error,
    })?;
    host.set_observer(Box::new(move |e: &HostLogEntry| {
        let text = if json {
            serde_json::to_string(e).unwrap_or_default()
        } else {
            line(e)
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }));
    {
        let mut out = std::io::stdout().lock();
        if json {
            let _ = writeln!(
                out,
                "{}",
                serde_json::json!({ "listening": host.addr().to_string() })
            );
        } else {
            let _ = writeln!(out, "listening on {}", host.addr());
        }
        let _ = out.flush();
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".to_string(),
        |d| format!("{:.1} ms", d.as_secs_f64() * 1000.0),
    )
}

fn print_report(r: &CheckReport, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(r).unwrap_or_default());
    } else {
        println!("address:    {}", r.address);
        println!("connect:    {}", ms(r.connect_time));
        println!("echo:       {}", ms(r.round_trip));
        println!("result:     {}", r.diagnosis.name());
        if !r.detail.is_empty() {
            println!("detail:     {}", r.detail);
        }
        if !r.is_ok() {
            println!("hint:       {}", r.hint);
        }
    }
}

/// `posctl host check`: resolve, connect and send an echo test (0800/301) to the acquirer
/// host, then print the timings and a plain diagnosis with a hint. Exit 0 when the host
/// answered the echo `00`, 1 otherwise.
pub fn host_check(settings: AcquirerSettings, json: bool) -> Result<Exit, CliError> {
    let report = check(&settings);
    print_report(&report, json);
    Ok(if report.is_ok() {
        Exit::Ok
    } else {
        Exit::Error
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_exit_codes() {
        let host = FakeHost::start("127.0.0.1:0", HostRules::default()).expect("start");
        let s = AcquirerSettings::new(host.addr().to_string(), "TERM0001", "MERCHANT0000001");
        assert_eq!(host_check(s, true).ok(), Some(Exit::Ok));
        let addr = host.addr().to_string();
        drop(host);
        let s = AcquirerSettings::new(addr, "TERM0001", "MERCHANT0000001");
        assert_eq!(host_check(s, false).ok(), Some(Exit::Error));
    }

    #[test]
    fn lines_are_masked() {
        let e = HostLogEntry {
            mti: "0200".into(),
            stan: Some(12),
            response_code: Some("00".into()),
            fault: None,
            answered: true,
            summary: "Message { 2: \"476173******0119\" }".into(),
        };
        let l = line(&e);
        assert!(l.starts_with("0200 stan=000012 -> 00 "), "{l}");
    }
}
