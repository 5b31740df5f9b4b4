//! emupos (PyPI, an independent ESC/POS emulator) for the posctl tests: find it, start it with
//! one printer, talk to its REST API, run posctl.
//!
//! `POS_EMUPOS` names the `emupos` executable (`.ci/run` installs it into a virtualenv; needs
//! Python >= 3.13). Without it a test says SKIPPED and why; under CI (`CI` set) a missing
//! emulator is a failure, never a silent pass.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running emupos with one printer, `front`; killed on drop.
pub struct Emulator {
    child: Child,
    /// The REST API's port on 127.0.0.1.
    pub api: u16,
    /// The printer's raw TCP port on 127.0.0.1.
    pub printer: u16,
    /// Its working directory (config, log, receipts), removed on drop.
    pub dir: tempfile::TempDir,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The emupos executable, or `None` after saying SKIPPED for `test` (outside CI only: under
/// CI a missing emulator panics).
pub fn binary(test: &str) -> Option<PathBuf> {
    let bin = std::env::var_os("POS_EMUPOS").map(PathBuf::from);
    if bin.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("POS_EMUPOS is not set under CI: .ci/run must install emupos (Python >= 3.13)");
        }
        eprintln!(
            "SKIPPED {test}: set POS_EMUPOS to an emupos executable (bash .ci/run installs one)"
        );
    }
    bin
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One HTTP/1.1 request to the emulator's API on 127.0.0.1; returns status and body.
pub fn http(port: u16, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// emupos with one printer of `profile`, with `device_yaml` added to the printer's entry (each
/// line indented by four spaces, ending in a newline), up within 60 s.
pub fn start(bin: &PathBuf, profile: &str, device_yaml: &str) -> Emulator {
    let dir = tempfile::tempdir().expect("temp dir");
    let (api, printer) = (free_port(), free_port());
    let config = format!(
        "schema: 1\napi: {{ host: 127.0.0.1, port: {api} }}\ndevices:\n  - id: front\n    type: printer\n    \
         profile: {profile}\n    connections:\n      - tcp: {{ port: {printer} }}\n{device_yaml}    \
         receipts_dir: ./receipts\n    job_idle_timeout_ms: 500\n"
    );
    std::fs::write(dir.path().join("emupos.yaml"), config).expect("write config");
    let log = std::fs::File::create(dir.path().join("emupos.log")).expect("log file");
    let child = Command::new(bin)
        .args(["run", "--config", "emupos.yaml"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let emu = Emulator {
        child,
        api,
        printer,
        dir,
    };
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, _)) = http(api, "GET", "/api/v1/health") {
            if TcpStream::connect(("127.0.0.1", printer)).is_ok() {
                return emu;
            }
        }
        let log = std::fs::read_to_string(emu.dir.path().join("emupos.log")).unwrap_or_default();
        assert!(
            Instant::now() < until,
            "emupos ({profile}) did not come up within 60 s: {log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Run posctl; its exit code, stdout as JSON (Null when it is not JSON) and stderr.
pub fn posctl(args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_posctl"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run posctl");
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code(),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
