//! Live events for injected faults, device supervision (unplug and replug without a
//! restart, paper near end), /metrics read back by an independent Prometheus parser, and a
//! shutdown in mid-sale.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Rig, eventually, is_type, wait_event};
use pos_terminal::State;
use pos_terminal::journal::Journal;
use serde_json::json;

const T: Duration = Duration::from_secs(20);

#[test]
fn events_show_an_injected_card_pull_and_its_reversal() {
    let rig = Rig::start();
    let events = rig.client.events(None);
    let v = rig.sale(2000, json!({ "inject": ["after-approve:card-removed"] }));
    let id = v["id"].as_i64().unwrap();
    let states: Vec<String> = {
        let mut s = Vec::new();
        let end = std::time::Instant::now() + T;
        while std::time::Instant::now() < end {
            let e = wait_event(&events, T, "a state", |e| e["txn"] == id);
            if is_type(&e, "transaction_state") {
                let st = e["state"].as_str().unwrap().to_string();
                let last = st == "reversed" || st == "reversal_stuck";
                s.push(st);
                if last {
                    break;
                }
            }
        }
        s
    };
    for st in [
        "created",
        "card_read",
        "armed",
        "sent",
        "host_approved",
        "reversal_pending",
        "reversed",
    ] {
        assert!(
            states.iter().any(|s| s == st),
            "{st} missing from {states:?}"
        );
    }
    // Replay: a client that reconnects from event 0 gets the same history.
    let again = rig.client.events(Some(0));
    wait_event(&again, T, "replayed prompt", |e| {
        is_type(e, "prompt") && e["txn"] == id
    });
}

#[test]
fn printer_faults_and_paper_near_end_are_seen_live_and_in_status() {
    let rig = Rig::start();
    let c = &rig.client;
    let events = c.events(None);
    assert_eq!(
        c.post("/v1/sim/paper-near-end", json!({ "on": true }))
            .status,
        200
    );
    let e = wait_event(&events, T, "paper_low", |e| is_type(e, "paper_low"));
    assert_eq!(e["device"], "printer");
    assert_eq!(e["fault"], "paper_near_end");
    // Near end still prints.
    let dev = c.get("/v1/devices").json();
    assert_eq!(dev["printer"]["state"], "ready");
    assert!(
        dev["printer"]["conditions"]
            .as_array()
            .unwrap()
            .contains(&json!("paper_near_end"))
    );
    assert_eq!(rig.sale(400, json!({}))["state"], "completed");

    let r = c.post("/v1/sim/printer-fault", json!({ "fault": "cover-open" }));
    assert_eq!(r.status, 200, "{}", r.text());
    wait_event(&events, T, "cover_open", |e| is_type(e, "cover_open"));
    eventually(T, "status shows the fault", || {
        let d = c.get("/v1/devices").json();
        d["printer"]["state"] == "fault" && d["printer"]["fault"] == "cover_open"
    });
    // A sale now is refused by the health gate, unless no receipt.
    let v = rig.sale(500, json!({}));
    assert_eq!(v["state"], "aborted", "{v:#}");
    let v = rig.sale(500, json!({ "no_receipt": true }));
    assert_eq!(v["state"], "completed", "{v:#}");
    assert_eq!(c.post("/v1/sim/clear-printer", json!({})).status, 200);
    wait_event(&events, T, "printer_ready", |e| is_type(e, "printer_ready"));

    c.post("/v1/sim/printer-fault", json!({ "fault": "paper-out" }));
    wait_event(&events, T, "paper_out", |e| is_type(e, "paper_out"));
    c.post("/v1/sim/clear-printer", json!({}));
    wait_event(&events, T, "printer_ready", |e| is_type(e, "printer_ready"));
}

#[test]
fn an_unplugged_reader_comes_back_without_a_restart() {
    let rig = Rig::start();
    let c = &rig.client;
    let events = c.events(None);
    assert_eq!(rig.sale(100, json!({}))["state"], "completed");
    assert_eq!(c.post("/v1/sim/unplug-reader", json!({})).status, 200);
    let e = wait_event(&events, T, "device_unplugged", |e| {
        is_type(e, "device_unplugged")
    });
    assert_eq!(e["device"], "reader");
    eventually(T, "reader missing with re-open attempts", || {
        let d = c.get("/v1/devices").json();
        d["reader"]["state"] == "missing" && d["reader"]["reopen_attempts"].as_u64().unwrap() >= 1
    });
    // A sale while it is away ends aborted, nothing charged.
    let v = rig.sale(150, json!({}));
    assert_eq!(v["state"], "aborted", "{v:#}");
    assert_eq!(c.post("/v1/sim/replug-reader", json!({})).status, 200);
    wait_event(&events, T, "device_reconnected", |e| {
        is_type(e, "device_reconnected") && e["device"] == "reader"
    });
    eventually(T, "reader ready", || {
        c.get("/v1/devices").json()["reader"]["state"] == "ready"
    });
    assert_eq!(rig.sale(200, json!({}))["state"], "completed");
}

#[test]
fn an_unplugged_printer_comes_back_and_the_owed_receipt_prints() {
    let rig = Rig::start();
    let c = &rig.client;
    let events = c.events(None);
    assert_eq!(c.post("/v1/sim/unplug-printer", json!({})).status, 200);
    wait_event(&events, T, "printer unplugged", |e| {
        is_type(e, "device_unplugged") && e["device"] == "printer"
    });
    // A sale without a printer needs "no receipt"; with it, it completes.
    let v = rig.sale(300, json!({ "no_receipt": true }));
    assert_eq!(v["state"], "completed");
    c.post("/v1/sim/replug-printer", json!({}));
    wait_event(&events, T, "printer back", |e| {
        is_type(e, "device_reconnected") && e["device"] == "printer"
    });
    let v = rig.sale(350, json!({}));
    assert_eq!(v["state"], "completed", "{v:#}");
    assert_eq!(v["receipts_printed"], 1);
}

#[test]
fn metrics_parse_and_count_what_happened() {
    let rig = Rig::with(|c| c.api.metrics_listen = "127.0.0.1:0".into());
    let c = &rig.client;
    let events = c.events(None);
    assert_eq!(rig.sale(100, json!({}))["state"], "completed");
    assert_eq!(rig.sale(151, json!({}))["state"], "declined");
    c.post("/v1/sim/printer-fault", json!({ "fault": "paper-out" }));
    wait_event(&events, T, "paper_out", |e| is_type(e, "paper_out"));
    // The separate metrics listener serves /metrics and nothing else.
    let m = common::Client::new(&rig.service().metrics_address().unwrap(), None);
    assert_eq!(m.get("/v1/status").status, 404);
    let r = m.get("/metrics");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = r.text();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
            .unwrap_or_else(|| panic!("{name} {labels:?} missing from\n{text}"))
    };
    assert_eq!(
        value(
            "pos_transactions_total",
            &[("operation", "sale"), ("state", "completed")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "pos_transactions_total",
            &[("operation", "sale"), ("state", "declined")]
        ),
        1.0
    );
    assert_eq!(value("pos_device_up", &[("device", "reader")]), 1.0);
    assert_eq!(value("pos_device_up", &[("device", "printer")]), 0.0);
    assert!(
        value(
            "pos_device_faults_total",
            &[("device", "printer"), ("kind", "paper_out")]
        ) >= 1.0
    );
    assert_eq!(
        value("pos_printer_condition", &[("condition", "paper_out")]),
        1.0
    );
    assert_eq!(value("pos_reversals_stuck", &[]), 0.0);
    assert_eq!(value("pos_busy", &[]), 0.0);
    // Histograms: APDUs and prints were timed.
    let hist_count = |name: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .and_then(|s| match &s.value {
                prometheus_parse::Value::Histogram(b) => b.last().map(|b| b.count),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert!(
        hist_count("pos_apdu_duration_seconds") >= 10.0,
        "a chip sale is many APDUs"
    );
    assert!(hist_count("pos_print_duration_seconds") >= 1.0);
}

#[test]
fn a_stuck_reversal_raises_an_alarm_event() {
    let rig = Rig::with(|c| c.reversal.max_rejections = 1);
    let events = rig.client.events(None);
    let v = rig.sale(
        2500,
        json!({ "inject": ["after-approve:card-removed", "after-approve:reversal-rejected:5"] }),
    );
    let id = v["id"].as_i64().unwrap();
    let e = wait_event(&events, T, "reversal_stuck", |e| {
        is_type(e, "reversal_stuck")
    });
    assert_eq!(e["txn"], id);
    let st = rig.client.get("/v1/status").json();
    assert_eq!(st["reversals_stuck"], 1);
}

#[test]
fn shutdown_mid_sale_leaves_every_transaction_at_rest() {
    // 1: waiting for the card → cancelled, aborted.
    let mut rig = Rig::start();
    let c = rig.client.clone();
    c.post("/v1/sim/cardholder", json!({ "mode": "manual" }));
    c.post("/v1/sim/remove-card", json!({}));
    let r = c.post("/v1/transactions", json!({ "amount": 800 }));
    assert_eq!(r.status, 202);
    let waiting = r.json()["id"].as_i64().unwrap();
    rig.stop();
    let j = Journal::open(&rig.journal_path()).unwrap();
    let t = j.get(waiting).unwrap();
    assert_eq!(t.state, State::Aborted, "{t:?}");

    // 2: the request is with the host (held 1 s) → the sale runs to its end.
    let mut rig = Rig::start();
    let events = rig.client.events(None);
    rig.service()
        .fake_host()
        .unwrap()
        .arm(pos_acquirer::sim::HostFault::Delay(Duration::from_millis(
            1000,
        )));
    let r = rig
        .client
        .post("/v1/transactions", json!({ "amount": 900 }));
    let sent = r.json()["id"].as_i64().unwrap();
    wait_event(&events, T, "sent", |e| {
        e["txn"] == sent && e["state"] == "sent"
    });
    rig.stop();
    let j = Journal::open(&rig.journal_path()).unwrap();
    assert_eq!(j.get(sent).unwrap().state, State::Completed);
    let in_flight = j.in_states(&State::IN_FLIGHT).unwrap();
    assert!(in_flight.is_empty(), "{in_flight:?}");
}

#[test]
fn health_checks_run_on_schedule_and_report_in_status() {
    let rig = Rig::start();
    let c = &rig.client;
    eventually(T, "a health summary for each device", || {
        let d = c.get("/v1/devices").json();
        ["reader", "printer", "msr"]
            .iter()
            .all(|n| d[n]["health"]["outcome"].is_string())
    });
    let d = c.post("/v1/devices/check", json!({})).json();
    assert_eq!(d["reader"]["state"], "ready");
    assert_eq!(d["reader"]["card_present"], true);
}

#[test]
fn card_insertion_and_removal_are_seen_live_even_during_a_sale() {
    let rig = Rig::start();
    let c = &rig.client;
    let events = c.events(None);
    c.post("/v1/sim/cardholder", json!({ "mode": "manual" }));
    c.post("/v1/sim/remove-card", json!({}));
    let e = wait_event(&events, T, "card_removed", |e| is_type(e, "card_removed"));
    assert_eq!(e["device"], "reader");
    let r = c.post("/v1/transactions", json!({ "amount": 640 }));
    let id = r.json()["id"].as_i64().unwrap();
    wait_event(&events, T, "insert prompt", |e| {
        is_type(e, "prompt") && e["txn"] == id && e["detail"] == "insert card"
    });
    c.post("/v1/sim/insert-card", json!({}));
    let e = wait_event(&events, T, "card_inserted during the sale", |e| {
        is_type(e, "card_inserted")
    });
    assert_eq!(e["txn"], id, "the event names the sale it happened in");
    let done = c.get(&format!("/v1/transactions/{id}?wait=30")).json();
    assert_eq!(done["state"], "completed");
}
