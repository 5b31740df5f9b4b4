//! A real Prometheus against two `posctl serve` lanes, A and B (simulated devices), with the
//! rules of packaging/prometheus and the dashboards of packaging/grafana.
//!
//! Run by `.ci/prometheus-alerts` (from `.ci/run`), which finds or fetches Prometheus and
//! names it in `POS_PROMETHEUS`; ignored by a plain `cargo test` (it needs that binary). By
//! hand: `POS_PROMETHEUS=/path/to/prometheus cargo test -p posctl --test prometheus --
//! --ignored --nocapture`.
//!
//! What it does, everything on 127.0.0.1:
//! 1. starts lanes A and B (`posctl --lane A serve`, each its own config, journal and
//!    metrics port) and Prometheus scraping both every second, evaluating the rules every
//!    second. The rule files are the shipped ones with one rewrite, in a copy in the
//!    temporary directory: every `for:` longer than 0 becomes `for: 5s` and every group
//!    `interval:` becomes `1s` (minutes would make the test last minutes); the expressions,
//!    labels and texts are used as shipped;
//! 2. runs sales, declines and a reversal on both lanes; no alert at all;
//! 3. lane A: a sale whose reversal cannot reach the host (the host times out, rejects the
//!    first reversal, then goes down) and the printer out of paper: `PosReversalPending` and
//!    `PosPrinterPaperOut` fire with `lane="A"`, and nothing fires or is pending for lane B;
//! 4. every panel query of the Grafana dashboards (`$lane` = A, `$__rate_interval` = 1m,
//!    `$__range` = 1h, `$__interval` = 15s) answers `success` with data;
//! 5. lane A fixed (host back, the reversal sent, paper in): its alerts resolve;
//! 6. lane A: a reversal the host rejects three times, stuck: `PosReversalStuck` pages for
//!    lane A only;
//! 7. the operator requeues it (`POST /v1/reversals/{id}/requeue`, after calling the
//!    acquirer), the retry sends it, the host takes it: the page resolves.
//!
//! Every child process is killed when the test ends, passing or failing; the whole test has
//! a deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const POSCTL: &str = env!("CARGO_BIN_EXE_posctl");
/// The repository's root (two levels above this crate).
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
/// The whole test, start to end.
const DEADLINE: Duration = Duration::from_secs(240);
/// One wait for Prometheus to see something.
const WAIT: Duration = Duration::from_secs(60);
/// The `for:` every alert gets in the test's copy of the rules (0 stays 0).
const SHORT_FOR: &str = "5s";

/// A child process killed (and reaped) when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn progress(start: Instant, what: &str) {
    eprintln!(
        "[prometheus {:>5.1}s] {what}",
        start.elapsed().as_secs_f64()
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One HTTP/1.1 request; status and body (`None` when the connection failed).
fn http(addr: &str, method: &str, path: &str, token: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(90))).ok()?;
    let auth = if token.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {token}\r\n")
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Percent-encoding of a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One lane: `posctl --lane NAME serve`, its config in `dir/lanes/NAME.toml`.
struct Lane {
    name: &'static str,
    api: String,
    metrics: String,
    token: String,
    child: Killed,
}

impl Lane {
    fn start(dir: &Path, name: &'static str, extra: &str) -> Lane {
        let lanes = dir.join("lanes");
        let state = dir.join(name);
        std::fs::create_dir_all(&lanes).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        let terminal_id = format!("TERM000{name}");
        std::fs::write(
            lanes.join(format!("{name}.toml")),
            format!(
                "journal = \"{}\"\nterminal_id = \"{terminal_id}\"\n\n[api]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\n\n[supervision]\npoll_ms = 200\nhealth_check_s = 5\n{extra}",
                state.join("journal.sqlite").display()
            ),
        )
        .unwrap();
        let mut child = Command::new(POSCTL)
            .args(["--json", "--lane", name, "serve"])
            .env("POS_LANES_DIR", &lanes)
            .env_remove("POS_CONFIG")
            .env_remove("POS_LANE")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("posctl serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let child = Killed(child);
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("lane {name}: first line {line:?}: {e}"));
        let token = std::fs::read_to_string(v["token_file"].as_str().unwrap())
            .unwrap()
            .trim()
            .to_string();
        Lane {
            name,
            api: v["listening"].as_str().unwrap().to_string(),
            metrics: v["metrics"].as_str().unwrap().to_string(),
            token,
            child,
        }
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let (status, text) = http(&self.api, "POST", path, &self.token, &body.to_string())
            .unwrap_or_else(|| panic!("lane {}: POST {path}: no answer", self.name));
        assert_eq!(status, 200, "lane {}: POST {path}: {text}", self.name);
        serde_json::from_str(&text).unwrap()
    }

    fn sale(&self, amount: u64, inject: &[&str]) -> Value {
        let v = self.post(
            "/v1/transactions",
            json!({ "amount": amount, "wait": 60, "inject": inject }),
        );
        assert_eq!(v["done"], true, "lane {}: {v:#}", self.name);
        v
    }

    fn sim(&self, action: &str, body: Value) {
        self.post(&format!("/v1/sim/{action}"), body);
    }
}

/// Prometheus's HTTP API.
struct Prom {
    addr: String,
}

impl Prom {
    fn get(&self, path: &str) -> Value {
        let (status, text) = http(&self.addr, "GET", path, "", "")
            .unwrap_or_else(|| panic!("Prometheus: GET {path}: no answer"));
        assert_eq!(status, 200, "Prometheus: GET {path}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
    }

    /// An instant query: `status` must be success; the result vector.
    fn query(&self, expr: &str) -> Vec<Value> {
        let v = self.get(&format!("/api/v1/query?query={}", encode(expr)));
        assert_eq!(v["status"], "success", "{expr}: {v}");
        match &v["data"]["result"] {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        }
    }

    /// The alerts Prometheus has now (`/api/v1/alerts`), as (name, lane, state).
    fn alerts(&self) -> BTreeSet<(String, String, String)> {
        let v = self.get("/api/v1/alerts");
        assert_eq!(v["status"], "success", "{v}");
        v["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let s = |k: &str| a["labels"][k].as_str().unwrap_or("").to_string();
                (
                    s("alertname"),
                    s("lane"),
                    a["state"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

/// Poll `f` every 250 ms until it says yes or `limit` passes (then panic with `what` and the
/// last thing `f` saw).
fn wait_for(limit: Duration, what: &str, mut f: impl FnMut() -> Result<(), String>) {
    let end = Instant::now() + limit;
    loop {
        match f() {
            Ok(()) => return,
            Err(last) if Instant::now() >= end => {
                panic!("not within {limit:?}: {what}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// The shipped rule file with every `for:` above 0 set to [`SHORT_FOR`] and every group
/// `interval:` set to 1s; everything else as shipped. Also how many `for:` were rewritten.
fn shorten(text: &str) -> (String, usize) {
    let mut n = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            if let Some(d) = trimmed.strip_prefix("for: ") {
                if d.trim() != "0m" && d.trim() != "0s" {
                    n += 1;
                    return format!("{indent}for: {SHORT_FOR}");
                }
            } else if trimmed.starts_with("interval: ") {
                return format!("{indent}interval: 1s");
            }
            line.to_string()
        })
        .collect();
    (lines.join("\n") + "\n", n)
}

/// Every panel's queries in a Grafana dashboard (panels nested in rows too): (title, expr).
fn panel_queries(dashboard: &Value) -> Vec<(String, String)> {
    fn walk(panels: &Value, out: &mut Vec<(String, String)>) {
        for p in panels.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?").to_string();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((title.clone(), e.to_string()));
                }
            }
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

fn prometheus_binary() -> Option<PathBuf> {
    let bin = std::env::var_os("POS_PROMETHEUS").map(PathBuf::from);
    if bin.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("POS_PROMETHEUS is not set under CI: run .ci/prometheus-alerts");
        }
        eprintln!(
            "SKIPPED prometheus_alerts_fire_for_the_faulty_lane_only_and_resolve: set \
             POS_PROMETHEUS to a prometheus binary (bash .ci/prometheus-alerts does)"
        );
    }
    bin
}

#[test]
#[ignore = "needs a Prometheus binary in POS_PROMETHEUS: run by .ci/prometheus-alerts"]
fn prometheus_alerts_fire_for_the_faulty_lane_only_and_resolve() {
    let Some(bin) = prometheus_binary() else {
        return;
    };
    let start = Instant::now();
    // The deadline: a watchdog aborts the whole test process (children die with their
    // guards only on unwinding, so it kills them first through their pids).
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(ROOT);

    // 1. Two lanes. A's reversals wait a minute between attempts: the pending one stays
    // pending until the test sends it.
    let a = Lane::start(
        dir.path(),
        "A",
        "\n[reversal]\nbackoff_initial_ms = 60000\n",
    );
    let b = Lane::start(dir.path(), "B", "");
    progress(
        start,
        &format!(
            "lanes up: A api {} metrics {}, B api {} metrics {}",
            a.api, a.metrics, b.api, b.metrics
        ),
    );
    let watchdog_pids: Vec<u32> = vec![a.child.0.id(), b.child.0.id()];

    // The rules, `for` shortened, in the temporary directory.
    let rules_dir = root.join("packaging/prometheus");
    let mut rule_files = Vec::new();
    let mut rewritten = 0;
    for name in ["pos-alerts.yml", "pos-recording.yml"] {
        let text = std::fs::read_to_string(rules_dir.join(name)).unwrap();
        let (short, n) = shorten(&text);
        rewritten += n;
        let path = dir.path().join(name);
        std::fs::write(&path, short).unwrap();
        rule_files.push(path);
    }
    assert!(rewritten >= 8, "only {rewritten} `for:` rewritten");
    let port = free_port();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files:\n{}\nscrape_configs:\n  - job_name: posctl\n    honor_labels: true\n    static_configs:\n      - targets: [\"{}\"]\n        labels: {{ lane: A }}\n      - targets: [\"{}\"]\n        labels: {{ lane: B }}\n",
        rule_files
            .iter()
            .map(|p| format!("  - {}", p.display()))
            .collect::<Vec<_>>()
            .join("\n"),
        a.metrics,
        b.metrics
    );
    std::fs::write(dir.path().join("prometheus.yml"), &config).unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let prom_child = Command::new(&bin)
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("prometheus starts");
    let prom_guard = Killed(prom_child);
    let mut pids = watchdog_pids;
    pids.push(prom_guard.0.id());
    std::thread::spawn(move || {
        std::thread::sleep(DEADLINE);
        eprintln!("[prometheus] over the deadline of {DEADLINE:?}: killing everything");
        for pid in pids {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        std::process::exit(1);
    });
    let prom = Prom {
        addr: format!("127.0.0.1:{port}"),
    };
    let log_path = dir.path().join("prometheus.log");
    let log_tail = || {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    };
    wait_for(WAIT, "Prometheus ready", || {
        match http(&prom.addr, "GET", "/-/ready", "", "") {
            Some((200, _)) => Ok(()),
            other => Err(format!("{other:?}\n{}", log_tail())),
        }
    });
    let groups = prom.get("/api/v1/rules");
    let n_rules: usize = groups["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["rules"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(n_rules, 21, "the rules loaded: {groups}");
    wait_for(WAIT, "both lanes scraped", || {
        let up = prom.query("up{job=\"posctl\"} == 1");
        let lanes: BTreeSet<&str> = up
            .iter()
            .filter_map(|s| s["metric"]["lane"].as_str())
            .collect();
        (lanes.len() == 2).then_some(()).ok_or(format!("{up:?}"))
    });
    progress(
        start,
        &format!(
            "Prometheus on {} with 21 rules ({rewritten} `for:` shortened to {SHORT_FOR}), both lanes scraped",
            prom.addr
        ),
    );
    // The lanes' own labels: lane and terminal_id on every series, as configured.
    for lane in [&a, &b] {
        let r = prom.query(&format!(
            "count by (lane, terminal_id) ({{job=\"posctl\", lane=\"{}\", __name__=~\"pos_.+\"}})",
            lane.name
        ));
        assert_eq!(r.len(), 1, "lane {}: {r:?}", lane.name);
        assert_eq!(
            r[0]["metric"]["terminal_id"],
            format!("TERM000{}", lane.name)
        );
        let n: f64 = r[0]["value"][1].as_str().unwrap().parse().unwrap();
        let unlabelled = prom.query(&format!(
            "{{job=\"posctl\", instance=\"{}\", __name__=~\"pos_.+\", terminal_id=\"\"}}",
            lane.metrics
        ));
        assert!(
            unlabelled.is_empty(),
            "series without terminal_id: {unlabelled:?}"
        );
        progress(
            start,
            &format!(
                "lane {}: {n} pos_* series, every one with lane=\"{}\" and terminal_id=\"TERM000{}\"",
                lane.name, lane.name, lane.name
            ),
        );
    }

    // 2. A normal spell on both lanes: no alert.
    for lane in [&a, &b] {
        for i in 0..3 {
            assert_eq!(lane.sale(1000 + 110 * i, &[])["state"], "completed");
        }
        assert_eq!(lane.sale(151, &[])["state"], "declined");
        // The host approves, never answers: reversed at once (the host takes the reversal).
        assert_eq!(
            lane.sale(420, &["after-send:host-timeout"])["state"],
            "reversed"
        );
    }
    progress(start, "sales, a decline and a reversal on each lane");
    // Longer than the shortened `for` and a few evaluations: still nothing.
    std::thread::sleep(Duration::from_secs(8));
    let alerts = prom.alerts();
    assert!(
        alerts.is_empty(),
        "alerts while both lanes are healthy: {alerts:?}"
    );
    progress(start, "no alert while both lanes are healthy (8 s)");

    // 3. Lane A: a reversal that cannot reach the host, and the printer out of paper.
    let v = a.sale(
        2200,
        &["after-send:host-timeout", "after-send:reversal-rejected:1"],
    );
    assert_eq!(v["state"], "reversal_pending", "{v:#}");
    a.sim("host-down", json!({ "on": true }));
    a.sim("printer-fault", json!({ "fault": "paper-out" }));
    progress(
        start,
        "lane A: a reversal pending with the host down, the printer out of paper",
    );
    let want = ["PosReversalPending", "PosPrinterPaperOut"];
    wait_for(WAIT, "lane A's alerts firing", || {
        let firing: BTreeSet<(String, String)> = prom
            .alerts()
            .into_iter()
            .filter(|(_, _, s)| s == "firing")
            .map(|(n, l, _)| (n, l))
            .collect();
        want.iter()
            .all(|w| firing.contains(&(w.to_string(), "A".to_string())))
            .then_some(())
            .ok_or(format!("{firing:?}"))
    });
    let alerts = prom.alerts();
    let for_b: Vec<_> = alerts.iter().filter(|(_, l, _)| l != "A").collect();
    assert!(for_b.is_empty(), "alerts not for lane A: {for_b:?}");
    // One empty roll is one printer alert: the printer reads as down and its near-end
    // sensor trips too, but neither is an alert of its own (not even pending).
    let noisy: Vec<_> = alerts
        .iter()
        .filter(|(n, _, _)| n == "PosPrinterOffline" || n == "PosPrinterPaperNearEnd")
        .collect();
    assert!(
        noisy.is_empty(),
        "paper out raised more than one printer alert: {noisy:?}"
    );
    // ALERTS, the series Prometheus keeps of them, says the same.
    let series = prom.query("ALERTS{alertstate=\"firing\"}");
    let firing: BTreeSet<(String, String)> = series
        .iter()
        .map(|s| {
            (
                s["metric"]["alertname"].as_str().unwrap().to_string(),
                s["metric"]["lane"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for w in want {
        assert!(firing.contains(&(w.to_string(), "A".into())), "{firing:?}");
    }
    assert!(firing.iter().all(|(_, l)| l == "A"), "{firing:?}");
    for s in &series {
        assert_eq!(s["metric"]["terminal_id"], "TERM000A", "{s}");
        assert!(s["metric"]["severity"].is_string(), "{s}");
    }
    progress(
        start,
        &format!(
            "firing, all for lane A, none for B: {}",
            firing
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );

    // 4. Every dashboard panel's query, with data.
    let mut checked = 0;
    for name in ["pos-fleet.json", "pos-lane.json"] {
        let path = root.join("packaging/grafana").join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let dash: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let queries = panel_queries(&dash);
        assert!(queries.len() >= 8, "{name}: {queries:?}");
        for (title, expr) in queries {
            let concrete = expr
                .replace("$__rate_interval", "1m")
                .replace("$__interval", "15s")
                .replace("$__range", "1h")
                .replace("${lane}", "A")
                .replace("$lane", "A");
            assert!(
                !concrete.contains('$'),
                "{name} {title:?}: a variable left in {concrete}"
            );
            let r = prom.query(&concrete);
            assert!(
                !r.is_empty(),
                "{name} panel {title:?}: no data for {concrete}"
            );
            checked += 1;
        }
    }
    progress(
        start,
        &format!(
            "{checked} dashboard queries (pos-fleet.json, pos-lane.json): each success with data"
        ),
    );

    // 5. Lane A fixed: the host back, the reversal sent, paper in.
    a.sim("host-down", json!({ "on": false }));
    let d = a.post("/v1/reversals/retry", json!({}));
    assert_eq!(d["reversed"].as_array().map(Vec::len), Some(1), "{d}");
    a.sim("clear-printer", json!({}));
    progress(
        start,
        "lane A fixed: host back, the reversal sent, paper in",
    );
    wait_for(WAIT, "lane A's alerts resolved", || {
        let left = prom.alerts();
        left.is_empty().then_some(()).ok_or(format!("{left:?}"))
    });
    let pending = prom.query("pos_reversals_pending{lane=\"A\"}");
    assert_eq!(pending[0]["value"][1], "0", "{pending:?}");
    progress(start, "every alert resolved");

    // 6. Lane A: a reversal the host keeps rejecting (reversal.max_rejections = 3 by
    // default): stuck, PosReversalStuck pages for lane A only.
    let v = a.sale(
        2300,
        &["after-send:host-timeout", "after-send:reversal-rejected:3"],
    );
    assert_eq!(v["state"], "reversal_pending", "{v:#}");
    let mut stuck = 0;
    for _ in 0..2 {
        let d = a.post("/v1/reversals/retry", json!({}));
        stuck = d["stuck"].as_array().map_or(0, Vec::len);
    }
    assert_eq!(stuck, 1, "the third rejection makes it stuck");
    progress(start, "lane A: a reversal rejected three times, stuck");
    wait_for(WAIT, "PosReversalStuck firing for lane A", || {
        let firing = prom.alerts();
        firing
            .contains(&("PosReversalStuck".into(), "A".into(), "firing".into()))
            .then_some(())
            .ok_or(format!("{firing:?}"))
    });
    let alerts = prom.alerts();
    assert!(
        alerts.iter().all(|(_, l, _)| l == "A"),
        "alerts not for lane A: {alerts:?}"
    );
    let page = prom.query("ALERTS{alertname=\"PosReversalStuck\", alertstate=\"firing\"}");
    assert_eq!(page.len(), 1, "{page:?}");
    assert_eq!(page[0]["metric"]["severity"], "page", "{page:?}");
    assert_eq!(page[0]["metric"]["terminal_id"], "TERM000A", "{page:?}");
    progress(
        start,
        &format!("PosReversalStuck pages for lane A only ({alerts:?})"),
    );

    // 7. The operator calls the acquirer, then requeues the stuck reversal through the API;
    // the retry sends it, the host takes it, and the page resolves.
    let id = v["id"].as_i64().unwrap();
    let t = a.post(
        &format!("/v1/reversals/{id}/requeue"),
        json!({ "note": "acquirer ticket 4711: resend" }),
    );
    assert_eq!(t["state"], "reversal_pending", "{t:#}");
    let d = a.post("/v1/reversals/retry", json!({}));
    assert_eq!(d["reversed"], json!([id]), "{d:#}");
    progress(
        start,
        "lane A: the operator requeued it, the host took the reversal",
    );
    wait_for(WAIT, "lane A's page resolved", || {
        let left = prom.alerts();
        left.is_empty().then_some(()).ok_or(format!("{left:?}"))
    });
    let stuck = prom.query("pos_reversals_stuck{lane=\"A\"}");
    assert_eq!(stuck[0]["value"][1], "0", "{stuck:?}");
    progress(start, "PosReversalStuck resolved; done");
}
