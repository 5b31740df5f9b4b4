//! `posctl serve` as a process: readiness to systemd, a sale over the API, SIGTERM in
//! mid-sale (exit 0, nothing in flight in the journal), `--check`.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pos_terminal::State;
use pos_terminal::journal::Journal;

const POSCTL: &str = env!("CARGO_BIN_EXE_posctl");

fn request(addr: &str, token: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn serve_tells_systemd_runs_a_sale_and_stops_cleanly_on_sigterm_mid_sale() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.sqlite");
    let notify = dir.path().join("notify.sock");
    let sd = UnixDatagram::bind(&notify).unwrap();
    sd.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut child = Command::new(POSCTL)
        .arg("--journal")
        .arg(&journal)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("NOTIFY_SOCKET", &notify)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_string();
    let mut buf = [0u8; 256];
    let n = sd.recv(&mut buf).unwrap();
    let ready = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(ready.starts_with("READY=1"), "{ready}");
    let token = std::fs::read_to_string(dir.path().join("api.token")).unwrap();
    let token = token.trim();

    let (status, body) = request(
        &addr,
        token,
        "POST",
        "/v1/transactions",
        r#"{"amount":1250,"wait":30}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"completed\""), "{body}");

    // A sale waiting for a card that never comes, then SIGTERM.
    request(
        &addr,
        token,
        "POST",
        "/v1/sim/cardholder",
        r#"{"mode":"manual"}"#,
    );
    request(&addr, token, "POST", "/v1/sim/remove-card", "");
    let (status, body) = request(
        &addr,
        token,
        "POST",
        "/v1/transactions",
        r#"{"amount":700}"#,
    );
    assert_eq!(status, 202, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = v["id"].as_i64().unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .expect("SIGTERM to the service");
    let n = sd.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("STOPPING=1"));
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < end,
            "posctl serve did not stop within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "exit {status:?}\n{err}");
    let j = Journal::open(&journal).unwrap();
    let t = j.get(id).unwrap();
    assert_eq!(t.state, State::Aborted, "{t:?}");
    assert!(t.reason.unwrap().contains("cancelled"));
    assert!(!err.contains("4761739001010010"), "no full PAN on stderr");
}

#[test]
fn serve_check_validates_the_api_address() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("lane.toml");
    std::fs::write(
        &cfg,
        format!(
            "journal = \"{}\"\n[api]\nlisten = \"unix:/run/pos/api.sock\"\n",
            dir.path().join("j.sqlite").display()
        ),
    )
    .unwrap();
    let ok = Command::new(POSCTL)
        .arg("--config")
        .arg(&cfg)
        .args(["serve", "--check"])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("config ok"));
    let bad = Command::new(POSCTL)
        .arg("--config")
        .arg(&cfg)
        .args(["serve", "--check", "--listen", "0.0.0.0:80"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("local"));
}
