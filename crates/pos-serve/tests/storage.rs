//! The service under storage faults: a journal removed while it runs, and a real full disk
//! (a small tmpfs). Either stops the lane where a client sees it (`/healthz` false with the
//! reason, `pos_sales_blocked` 1, a `sales_blocked` event, sales refused with 503
//! `sales_blocked`) and never lets a sale reach the host unrecorded; a full disk that
//! empties again resumes sales without a restart (`sales_resumed`).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Client, Rig, eventually, is_type, metric, wait_event};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(20);

fn healthz(c: &Client) -> Value {
    let r = c.get("/healthz");
    assert_eq!(r.status, 200);
    r.json()
}

fn blocked_metric(m: &Client) -> f64 {
    let text = m.get("/metrics").text();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    scrape
        .samples
        .iter()
        .find(|s| s.metric == "pos_sales_blocked")
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v) => v,
            _ => f64::NAN,
        })
        .unwrap_or(f64::NAN)
}

#[test]
fn a_journal_removed_while_the_service_runs_stops_sales_where_clients_see_it() {
    let rig = Rig::with(|c| c.api.metrics_listen = "127.0.0.1:0".into());
    let c = &rig.client;
    let m = Client::new(&rig.service().metrics_address().unwrap(), None);
    let events = c.events(None);
    assert_eq!(rig.sale(100, json!({}))["state"], "completed");
    assert_eq!(healthz(c)["ok"], true);
    assert_eq!(blocked_metric(&m), 0.0);
    assert_eq!(metric(&m, "pos_healthy"), 1.0);
    assert_eq!(metric(&m, "pos_journal_errors_total"), 0.0);
    let path = rig.journal_path();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    // Idle, the service notices at its next look (no sale needed).
    let ev = wait_event(&events, T, "sales_blocked", |e| is_type(e, "sales_blocked"));
    assert!(
        ev["detail"]
            .as_str()
            .unwrap()
            .contains("removed or replaced"),
        "{ev}"
    );
    let h = healthz(c);
    assert_eq!(h["ok"], false, "{h}");
    assert!(
        h["sales_blocked"].as_str().unwrap().contains("rescued"),
        "{h}"
    );
    assert_eq!(blocked_metric(&m), 1.0);
    assert_eq!(metric(&m, "pos_healthy"), 0.0);
    assert_eq!(metric(&m, "pos_journal_errors_total"), 1.0);
    // A sale is refused before anything is sent.
    let before = rig.service().fake_host().map(|h| h.ledger().entries.len());
    let r = c.post("/v1/transactions", json!({ "amount": 200, "wait": 30 }));
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["kind"], "sales_blocked", "{}", r.text());
    assert_eq!(
        rig.service().fake_host().map(|h| h.ledger().entries.len()),
        before
    );
    // What the removed journal held is in the rescued copy.
    let rescued = std::fs::read_dir(rig.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().contains(".rescued-"))
        .expect("a rescued copy");
    let copy = pos_terminal::Journal::open_read_only(&rescued.path()).unwrap();
    assert_eq!(copy.list(10).unwrap().len(), 1);
}

/// Fill the filesystem at `dir` with one file until the disk is full.
fn fill(dir: &Path) -> std::path::PathBuf {
    use std::io::Write;
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match f.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    // Leave no room at all, however small the write.
    let small = [0u8; 512];
    while f.write(&small).is_ok_and(|n| n > 0) {}
    let _ = f.sync_all();
    filler
}

fn sh(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", cmd])
        .status()
        .is_ok_and(|s| s.success())
}

/// Run `body` with a 4 MB tmpfs mounted at a fresh directory, unmounting it afterwards
/// whatever happens. Needs mount(2) (root): without it the test says SKIPPED (outside CI)
/// or fails (under CI, which must run it).
fn with_small_disk(test: &str, body: impl FnOnce(&Path) + std::panic::UnwindSafe) {
    let base = tempfile::tempdir().unwrap();
    let mnt = base.path().join("state");
    std::fs::create_dir(&mnt).unwrap();
    if !sh(&format!(
        "mount -t tmpfs -o size=4m tmpfs '{}' 2>/dev/null",
        mnt.display()
    )) {
        if std::env::var_os("CI").is_some() {
            panic!("mount(2) is not permitted here, and CI must run {test}");
        }
        eprintln!("SKIPPED {test}: mount(2) not permitted");
        return;
    }
    let result = std::panic::catch_unwind(|| body(&mnt));
    sh(&format!("umount -l '{}'", mnt.display()));
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

/// A lane whose journal and key file live on `mnt`.
fn rig_on(mnt: &Path) -> Rig {
    let (journal, key) = (mnt.join("journal.sqlite"), mnt.join("card-data.key"));
    Rig::with(move |c| {
        c.journal = Some(journal);
        c.key_file = Some(key);
    })
}

/// A real full disk: the journal on a 4 MB tmpfs, filled to the last byte. Needs mount(2)
/// (root); outside CI a machine without it says SKIPPED.
#[test]
fn a_full_disk_blocks_sales_and_they_resume_when_space_returns() {
    with_small_disk(
        "a_full_disk_blocks_sales_and_they_resume_when_space_returns",
        |mnt| {
            let mut rig = rig_on(mnt);
            let c = rig.client.clone();
            let events = c.events(None);
            assert_eq!(rig.sale(100, json!({}))["state"], "completed");
            let filler = fill(mnt);
            // The next sale cannot be recorded: refused, and the lane is blocked.
            let before = rig
                .service()
                .fake_host()
                .map(|h| h.ledger().approved_not_reversed().len());
            let r = c.post("/v1/transactions", json!({ "amount": 200, "wait": 30 }));
            assert!(matches!(r.status, 500 | 503), "{} {}", r.status, r.text());
            let ev = wait_event(&events, T, "sales_blocked", |e| is_type(e, "sales_blocked"));
            assert!(ev["detail"].as_str().unwrap().contains("full"), "{ev}");
            let h = healthz(&c);
            assert_eq!(h["ok"], false, "{h}");
            let r = c.post("/v1/transactions", json!({ "amount": 300, "wait": 30 }));
            assert_eq!(r.status, 503, "{}", r.text());
            assert_eq!(r.json()["error"]["kind"], "sales_blocked");
            // Nothing approved stays unrecorded.
            assert_eq!(
                rig.service()
                    .fake_host()
                    .map(|h| h.ledger().approved_not_reversed().len()),
                before
            );
            // Space returns: sales resume by themselves.
            std::fs::remove_file(&filler).unwrap();
            wait_event(&events, T, "sales_resumed", |e| is_type(e, "sales_resumed"));
            eventually(T, "healthz ok", || healthz(&c)["ok"] == true);
            assert_eq!(rig.sale(400, json!({}))["state"], "completed");
            // Nothing was left in flight.
            let j = pos_terminal::Journal::open_read_only(&mnt.join("journal.sqlite")).unwrap();
            assert!(j.all().unwrap().iter().all(|t| t.state.is_resting()));
            rig.stop();
        },
    );
}

/// A sale in flight when the disk fills: the client waiting on it is answered at once with
/// 503 `sales_blocked` (not at the end of its wait), and once space returns recovery ends
/// it (nothing had been sent: aborted). Needs mount(2), as above.
#[test]
fn a_sale_in_flight_when_the_disk_fills_is_answered_at_once() {
    with_small_disk(
        "a_sale_in_flight_when_the_disk_fills_is_answered_at_once",
        |mnt| {
            let mut rig = rig_on(mnt);
            let c = rig.client.clone();
            let events = c.events(None);
            // The cardholder waits: the sale stops at "insert card".
            assert_eq!(
                c.post("/v1/sim/cardholder", json!({ "mode": "manual" }))
                    .status,
                200
            );
            assert_eq!(c.post("/v1/sim/remove-card", json!({})).status, 200);
            let r = c.post("/v1/transactions", json!({ "amount": 250 }));
            assert_eq!(r.status, 202, "{}", r.text());
            let id = r.json()["id"].as_i64().unwrap();
            wait_event(&events, T, "insert prompt", |e| is_type(e, "prompt"));
            let filler = fill(mnt);
            let waiter = {
                let c = c.clone();
                std::thread::spawn(move || {
                    let started = std::time::Instant::now();
                    let r = c.get(&format!("/v1/transactions/{id}?wait=120"));
                    (r.status, r.json(), started.elapsed())
                })
            };
            std::thread::sleep(Duration::from_millis(200));
            assert_eq!(c.post("/v1/sim/insert-card", json!({})).status, 200);
            let (status, body, took) = waiter.join().unwrap();
            assert_eq!(status, 503, "{body}");
            assert_eq!(body["error"]["kind"], "sales_blocked", "{body}");
            assert!(
                took < Duration::from_secs(60),
                "answered at the end of the wait: {took:?}"
            );
            std::fs::remove_file(&filler).unwrap();
            wait_event(&events, T, "sales_resumed", |e| is_type(e, "sales_resumed"));
            let t = c.get(&format!("/v1/transactions/{id}"));
            assert_eq!(t.json()["state"], "aborted", "{}", t.text());
            assert_eq!(t.json()["done"], true);
            rig.stop();
        },
    );
}

/// The retention policy runs by itself on an idle lane: closed transactions older than
/// `retention.keep_days` leave the journal for the archive file of their month, a reversal
/// pending stays whatever its age, and the API's list shows what the journal keeps.
#[test]
fn an_idle_lane_archives_old_closed_transactions_by_itself() {
    let mut rig = Rig::with(|c| c.retention.interval_s = 0);
    assert_eq!(rig.sale(100, json!({}))["state"], "completed");
    assert_eq!(rig.sale(200, json!({}))["state"], "completed");
    let pending = rig.sale(
        300,
        json!({"inject": ["after-send:host-timeout", "after-send:reversal-rejected:99"]}),
    );
    let today = rig.sale(400, json!({}));
    rig.stop();
    // Three of them 200 days old.
    let path = rig.journal_path();
    let db = rusqlite::Connection::open(&path).unwrap();
    let old = 200 * 86_400_000_i64;
    let n = db
        .execute(
            "UPDATE txn SET created_ms = created_ms - ?1 WHERE id IN (1, 2, 3)",
            [old],
        )
        .unwrap();
    assert_eq!(n, 3);
    let created: i64 = db
        .query_row("SELECT created_ms FROM txn WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    drop(db);
    assert_eq!(pending["id"], 3, "{pending:#}");
    let state = |id: i64| {
        let j = pos_terminal::Journal::open_read_only(&path).unwrap();
        j.get(id).ok().map(|t| t.state.name().to_string())
    };
    assert_eq!(state(3).as_deref(), Some("reversal_pending"));

    let mut c = common::config(rig.dir.path());
    c.retention.interval_s = 1;
    // The host is down now: the reversal stays pending.
    c.acquirer.address = "127.0.0.1:1".into();
    let service = pos_serve::Service::start(pos_serve::open_lane(c, None).unwrap()).unwrap();
    let file = pos_terminal::journal::archive_file(&rig.dir.path().join("archive"), created);
    eventually(T, "the old sales archived", || {
        state(1).is_none() && state(2).is_none()
    });
    // The reversal pending stays (its age does not matter), today's sale too.
    assert_eq!(state(3).as_deref(), Some("reversal_pending"));
    assert_eq!(
        state(today["id"].as_i64().unwrap()).as_deref(),
        Some("completed")
    );
    let a = pos_terminal::Journal::open_read_only(&file).unwrap();
    let archived: Vec<i64> = a.list(10).unwrap().iter().map(|t| t.id).collect();
    assert_eq!(archived, vec![2, 1]);
    assert_eq!(
        a.timeline(1).unwrap().last().unwrap().state.name(),
        "completed"
    );
    service.shutdown();
}
