//! A small HTTP/1.1 client over TCP or a Unix socket (what a POS application in any
//! language does), a server-sent-events reader, and a service on the simulated lane.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use pos_serve::{Service, open_lane};
use pos_terminal::Config;
use serde_json::Value;

/// Where a service listens, and its token.
#[derive(Clone, Debug)]
pub struct Client {
    pub address: String,
    pub token: Option<String>,
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

fn connect(address: &str) -> Box<dyn Stream> {
    let s: Box<dyn Stream> = match address.strip_prefix("unix:") {
        Some(p) => {
            let s = UnixStream::connect(p).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
            Box::new(s)
        }
        None => {
            let s = TcpStream::connect(address).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
            Box::new(s)
        }
    };
    s
}

fn read_head(r: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    (status, headers)
}

fn read_chunk(r: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut size = String::new();
    if r.read_line(&mut size).ok()? == 0 {
        return None;
    }
    let n = usize::from_str_radix(size.trim(), 16).ok()?;
    let mut data = vec![0u8; n];
    r.read_exact(&mut data).ok()?;
    let mut crlf = [0u8; 2];
    r.read_exact(&mut crlf).ok()?;
    if n == 0 {
        return None;
    }
    Some(data)
}

impl Client {
    pub fn new(address: &str, token: Option<String>) -> Self {
        Client {
            address: address.to_string(),
            token,
        }
    }

    pub fn without_token(&self) -> Client {
        Client {
            address: self.address.clone(),
            token: None,
        }
    }

    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let mut s = connect(&self.address);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !body.is_empty() {
            head.push_str("Content-Type: application/json\r\n");
        }
        if let Some(t) = &self.token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body.as_bytes()).unwrap();
        s.flush().unwrap();
        let mut r = BufReader::new(s);
        let (status, headers) = read_head(&mut r);
        let chunked = headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
        });
        let mut body = Vec::new();
        if chunked {
            while let Some(c) = read_chunk(&mut r) {
                body.extend(c);
            }
        } else if let Some(n) = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
        {
            body.resize(n, 0);
            r.read_exact(&mut body).unwrap();
        } else {
            r.read_to_end(&mut body).unwrap();
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, None)
    }

    pub fn post(&self, path: &str, body: Value) -> Reply {
        self.request("POST", path, Some(&body))
    }

    /// Open the event stream; events arrive on the channel as JSON values (with `_event`
    /// and `_id` from the SSE fields). The reader thread ends when the stream does.
    pub fn events(&self, since: Option<u64>) -> Receiver<Value> {
        let mut s = connect(&self.address);
        let path = match since {
            Some(n) => format!("/v1/events?since={n}"),
            None => "/v1/events".to_string(),
        };
        let mut head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        if let Some(t) = &self.token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        let (tx, rx) = channel();
        let mut r = BufReader::new(s);
        let (status, headers) = read_head(&mut r);
        assert_eq!(status, 200, "event stream refused: {headers:?}");
        assert!(
            headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v == "text/event-stream")
        );
        std::thread::spawn(move || {
            let mut pending = String::new();
            while let Some(c) = read_chunk(&mut r) {
                pending.push_str(&String::from_utf8_lossy(&c));
                while let Some(end) = pending.find("\n\n") {
                    let block: String = pending.drain(..end + 2).collect();
                    let mut event = None;
                    let mut id = None;
                    let mut data = None;
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("event: ") {
                            event = Some(v.to_string());
                        } else if let Some(v) = line.strip_prefix("id: ") {
                            id = v.parse::<u64>().ok();
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            data = Some(v.to_string());
                        }
                    }
                    if let Some(d) = data {
                        let mut v: Value = serde_json::from_str(&d).unwrap();
                        v["_event"] = Value::from(event.unwrap_or_default());
                        v["_id"] = Value::from(id.unwrap_or(0));
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        rx
    }
}

/// Wait for an event matching `pred`, collecting what passed before it.
pub fn wait_event(
    rx: &Receiver<Value>,
    limit: Duration,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let end = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) if pred(&v) => return v,
            Ok(v) => seen.push(format!(
                "{} {}",
                v["type"].as_str().unwrap_or(""),
                v["detail"].as_str().unwrap_or("")
            )),
            Err(_) => panic!("no event {what} within {limit:?}; saw: {seen:#?}"),
        }
    }
}

pub fn is_type(v: &Value, t: &str) -> bool {
    v["type"] == t
}

/// A service on the simulated lane with its own journal directory.
pub struct Rig {
    pub dir: tempfile::TempDir,
    pub service: Option<Service>,
    pub client: Client,
}

pub fn config(dir: &std::path::Path) -> Config {
    let mut c = Config {
        journal: Some(dir.join("journal.sqlite")),
        ..Config::default()
    };
    c.api.listen = "127.0.0.1:0".into();
    c.supervision.poll_ms = 100;
    c.supervision.reopen_initial_ms = 100;
    c.supervision.reopen_max_ms = 400;
    c.supervision.health_check_s = 1;
    c.card_timeout_ms = 20_000;
    c.reversal.backoff_initial_ms = 200;
    c.reversal.backoff_max_ms = 1_000;
    c
}

impl Rig {
    pub fn start() -> Rig {
        Rig::with(|_| {})
    }

    pub fn with(edit: impl FnOnce(&mut Config)) -> Rig {
        Rig::with_clock(pos_terminal::time::Clock::system(), edit)
    }

    /// A service whose terminal runs on `clock` (a manual one: the test moves the time).
    pub fn with_clock(clock: pos_terminal::time::Clock, edit: impl FnOnce(&mut Config)) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        edit(&mut c);
        let service = Service::start_with_clock(open_lane(c, None).unwrap(), clock).unwrap();
        let token = std::fs::read_to_string(service.token_path()).unwrap();
        let client = Client::new(&service.api_address(), Some(token.trim().to_string()));
        Rig {
            dir,
            service: Some(service),
            client,
        }
    }

    pub fn service(&self) -> &Service {
        self.service.as_ref().unwrap()
    }

    pub fn journal_path(&self) -> PathBuf {
        self.dir.path().join("journal.sqlite")
    }

    /// Run a sale to its end through the API.
    pub fn sale(&self, amount: u64, extra: Value) -> Value {
        let mut body = serde_json::json!({ "amount": amount, "wait": 60 });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        let r = self.client.post("/v1/transactions", body);
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["done"], true, "{v:#}");
        v
    }

    pub fn stop(&mut self) {
        if let Some(s) = self.service.take() {
            s.shutdown();
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Poll `f` until it is true or `limit` passes.
pub fn eventually(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("not within {limit:?}: {what}");
}

/// The value of the sample `name` (without labels) in the `/metrics` exposition `c` serves,
/// read by an independent Prometheus parser; NaN when absent.
#[allow(dead_code)]
pub fn metric(c: &Client, name: &str) -> f64 {
    let text = c.get("/metrics").text();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name)
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
        .unwrap_or(f64::NAN)
}
