//! The local API's figures under hostile load (issue 16), measured against a service on the
//! simulated lane in this process:
//!
//! - RSS before and after header floods (one 256 MB header line, a million small header
//!   fields, a 256 MB request line), and the peak;
//! - the fraction of `GET /v1/status` answered in a burst of N simultaneous connections
//!   (with 40 silent connections held open meanwhile), and the answer times;
//! - the answer latency of the `wait` long poll after the transaction's final state, over N
//!   sales (half `POST ... wait`, half `GET ...?wait=`): from the moment the final
//!   `transaction_state` event is published to the moment the client has the answer.
//!
//! ```text
//! cargo run --release -p pos-serve --example http_figures -- [--sales 1000] [--burst 200]
//! ```
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use pos_serve::{Service, open_lane};
use pos_terminal::Config;
use serde_json::{Value, json};

fn status_kb(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

struct Api {
    addr: String,
    token: String,
}

impl Api {
    /// One request on its own connection: status and JSON body.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let body = body.map(Value::to_string).unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            self.token,
            body.len()
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let json = text
            .split_once("\r\n\r\n")
            .and_then(|(_, b)| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        (status, json)
    }
}

/// Send `prefix` then `filler` up to `total` bytes (or until refused); the status line.
fn flood(addr: &str, prefix: &[u8], filler: &[u8], total: u64) -> (String, u64) {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut w = s.try_clone().unwrap();
    w.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    let (prefix, filler) = (prefix.to_vec(), filler.to_vec());
    let writer = std::thread::spawn(move || {
        let mut sent = 0u64;
        if w.write_all(&prefix).is_ok() {
            sent = prefix.len() as u64;
            while sent < total {
                match w.write(&filler) {
                    Ok(n) => sent += n as u64,
                    Err(_) => break,
                }
            }
        }
        sent
    });
    let mut line = String::new();
    let _ = BufReader::new(&s).read_line(&mut line);
    drop(s);
    (line.trim_end().to_string(), writer.join().unwrap())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let sales = arg("--sales", 1000);
    let burst = arg("--burst", 200);

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        journal: Some(dir.path().join("journal.sqlite")),
        ..Config::default()
    };
    config.api.listen = "127.0.0.1:0".into();
    let service = Service::start(open_lane(config, None).unwrap()).unwrap();
    let api = Api {
        addr: service.api_address(),
        token: std::fs::read_to_string(service.token_path())
            .unwrap()
            .trim()
            .to_string(),
    };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("pos-serve http_figures: {cpus} CPUs, API on {}", api.addr);
    assert_eq!(api.call("GET", "/v1/status", None).0, 200);

    // 1. Header floods.
    let before = status_kb("VmRSS:");
    let mut small = Vec::new();
    for i in 0..4096 {
        small.extend_from_slice(format!("X-Small-{i}: v\r\n").as_bytes());
    }
    let floods: [(&str, &[u8], Vec<u8>, u64); 3] = [
        (
            "one 256 MB header line",
            b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Flood: ",
            vec![b'a'; 64 * 1024],
            256 << 20,
        ),
        (
            "a million small header fields",
            b"GET /v1/status HTTP/1.1\r\nHost: x\r\n",
            small,
            16_000_000,
        ),
        (
            "a 256 MB request line",
            b"GET /",
            vec![b'b'; 64 * 1024],
            256 << 20,
        ),
    ];
    println!("\nheader floods (no token):");
    for (what, prefix, filler, total) in floods {
        let t = Instant::now();
        let (status, taken) = flood(&api.addr, prefix, &filler, total);
        println!(
            "  {what}: {status:?} after {:.0} ms; the server took {:.1} MB before refusing",
            t.elapsed().as_secs_f64() * 1e3,
            taken as f64 / 1048576.0
        );
    }
    let after = status_kb("VmRSS:");
    println!(
        "  RSS {:.1} MB before, {:.1} MB after (+{:.1} MB); peak (VmHWM) {:.1} MB",
        mb(before),
        mb(after),
        mb(after.saturating_sub(before)),
        mb(status_kb("VmHWM:"))
    );

    // 2. A burst of connections, with 40 silent ones held open.
    let idle: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(&api.addr).unwrap())
        .collect();
    let go = Arc::new(Barrier::new(burst));
    let api = Arc::new(api);
    let workers: Vec<_> = (0..burst)
        .map(|_| {
            let go = Arc::clone(&go);
            let api = Arc::clone(&api);
            std::thread::spawn(move || {
                go.wait();
                let t = Instant::now();
                let mut s = TcpStream::connect(&api.addr).ok()?;
                s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
                write!(
                    s,
                    "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\r\n",
                    api.token
                )
                .ok()?;
                let mut text = String::new();
                s.read_to_string(&mut text).ok()?;
                let status: u16 = text.split_whitespace().nth(1)?.parse().ok()?;
                Some((status, t.elapsed().as_secs_f64() * 1e3))
            })
        })
        .collect();
    let results: Vec<Option<(u16, f64)>> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    drop(idle);
    let ok = results
        .iter()
        .filter(|r| matches!(r, Some((200, _))))
        .count();
    let other = results
        .iter()
        .filter(|r| matches!(r, Some((s, _)) if *s != 200))
        .count();
    let mut times: Vec<f64> = results.iter().flatten().map(|(_, t)| *t).collect();
    times.sort_by(f64::total_cmp);
    println!(
        "\nburst of {burst} connections, GET /v1/status (40 silent connections open; 10 s limit):\n  \
         {ok}/{burst} answered 200 ({:.1} %), {other} other status, {} unanswered; \
         answer time p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        100.0 * ok as f64 / burst as f64,
        burst - ok - other,
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times.last().copied().unwrap_or(f64::NAN),
    );

    // 3. Long-poll answer latency after the final state.
    let finals: Arc<Mutex<HashMap<(i64, String), Instant>>> = Arc::default();
    let mut sub = service.events().subscribe(None);
    let recorder = {
        let finals = Arc::clone(&finals);
        std::thread::spawn(move || {
            while let Ok(e) = sub.recv_timeout(Duration::from_secs(30)) {
                if let (Some(id), Some(state)) = (e.txn, &e.state) {
                    finals
                        .lock()
                        .unwrap()
                        .insert((id, state.clone()), Instant::now());
                }
            }
        })
    };
    let mut lat = Vec::with_capacity(sales);
    let started = Instant::now();
    for i in 0..sales {
        let amount = 100 + (i as u64 % 50);
        let (v, answered) = if i % 2 == 0 {
            let (status, v) = api.call(
                "POST",
                "/v1/transactions",
                Some(&json!({ "amount": amount, "wait": 60 })),
            );
            assert_eq!(status, 200, "{v}");
            (v, Instant::now())
        } else {
            let (status, v) = api.call(
                "POST",
                "/v1/transactions",
                Some(&json!({ "amount": amount })),
            );
            assert_eq!(status, 202, "{v}");
            let id = v["id"].as_i64().unwrap();
            let (status, v) = api.call("GET", &format!("/v1/transactions/{id}?wait=60"), None);
            assert_eq!(status, 200, "{v}");
            (v, Instant::now())
        };
        assert_eq!(v["done"], true, "{v}");
        let key = (
            v["id"].as_i64().unwrap(),
            v["state"].as_str().unwrap().to_string(),
        );
        // The recorder thread may see the event a moment after the client: wait for it.
        let end = Instant::now() + Duration::from_secs(5);
        let at = loop {
            if let Some(t) = finals.lock().unwrap().get(&key) {
                break Some(*t);
            }
            if Instant::now() > end {
                break None;
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        if let Some(at) = at {
            lat.push(answered.saturating_duration_since(at).as_secs_f64() * 1e3);
        }
    }
    let elapsed = started.elapsed();
    lat.sort_by(f64::total_cmp);
    let late = lat.iter().filter(|l| **l > 100.0).count();
    println!(
        "\nwait long poll, {} sales in {:.1} s (half POST wait=60, half GET ?wait=60):\n  \
         answer after the final state: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
         {late} answered more than 100 ms late",
        lat.len(),
        elapsed.as_secs_f64(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
    );
    let mut m = TcpStream::connect(&api.addr).unwrap();
    m.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        m,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    let _ = m.read_to_string(&mut text);
    println!("\nthe service's own counters:");
    for l in text.lines().filter(|l| l.starts_with("pos_api_")) {
        println!("  {l}");
    }
    service.shutdown();
    let _ = recorder.join();
}
