//! The cardinality budget of one lane: the series its `/metrics` exports, idle and after a
//! busy spell through the simulated lane (sales, voids, a settlement), stay under 200, so
//! that 10,000 lanes fit in one Prometheus; and no label takes unbounded values (no
//! transaction ids, amounts, card numbers or free text): every label is one of a closed set
//! of keys, its values short lowercase names (or a histogram bucket bound), and sales add
//! no series per transaction. Every series carries the lane's identity, `lane` and
//! `terminal_id`, one value each for the whole exposition (the config's `lane` and
//! `terminal_id`).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::Rig;
use serde_json::json;
use std::time::Duration;

const BUDGET: usize = 200;
const T: Duration = Duration::from_secs(30);

/// The lane's name and terminal id in these tests: on every series, nowhere else.
const LANE: &str = "store-0042-lane-1";
const TERMINAL_ID: &str = "TERM0042";

/// The label keys a lane may export, each with a closed set of values.
const KEYS: [&str; 9] = [
    "lane",
    "terminal_id",
    "device",
    "kind",
    "condition",
    "operation",
    "state",
    "reason",
    "le",
];

/// Every series (sample line) of the exposition, as `name{labels}` -> labels.
fn series(text: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = match line.rfind(' ') {
            Some(i) => &line[..i],
            None => line,
        };
        let labels = match (key.find('{'), key.rfind('}')) {
            (Some(a), Some(b)) => key[a + 1..b]
                .split(',')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap();
                    (k.to_string(), v.trim_matches('"').to_string())
                })
                .collect(),
            _ => Vec::new(),
        };
        assert!(out.insert(key.to_string(), labels).is_none(), "{key} twice");
    }
    out
}

fn check_labels(all: &BTreeMap<String, Vec<(String, String)>>) {
    for (name, labels) in all {
        // The identity labels, once each, with the configured values.
        for (key, want) in [("lane", LANE), ("terminal_id", TERMINAL_ID)] {
            let got: Vec<&str> = labels
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .collect();
            assert_eq!(got, [want], "{name}: {key}");
        }
        for (k, v) in labels {
            assert!(
                KEYS.contains(&k.as_str()),
                "{name}: label {k} is not in the closed set {KEYS:?}"
            );
            let ok = if k == "lane" || k == "terminal_id" {
                // Checked above: one value per lane, from its config.
                true
            } else if k == "le" {
                v == "+Inf" || v.parse::<f64>().is_ok()
            } else {
                !v.is_empty()
                    && v.len() <= 32
                    && v.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            };
            assert!(
                ok,
                "{name}: label {k}={v:?} is not a short name from a closed set"
            );
        }
    }
}

fn identity(c: &mut pos_terminal::Config) {
    c.lane = LANE.into();
    c.terminal_id = TERMINAL_ID.into();
}

#[test]
fn one_lane_exports_fewer_than_200_series_with_bounded_labels_idle_and_busy() {
    let rig = Rig::with(identity);
    let c = &rig.client;
    let idle = series(&c.get("/metrics").text());
    check_labels(&idle);
    assert!(
        idle.len() < BUDGET,
        "idle: {} series\n{:#?}",
        idle.len(),
        idle.keys()
    );

    // A busy spell: sales of many amounts, voids, a settlement.
    let mut ids = Vec::new();
    for i in 0..12u64 {
        let v = rig.sale(100 + 37 * i, json!({}));
        assert_eq!(v["state"], "completed", "{v:#}");
        ids.push(v["id"].clone());
    }
    for id in ids.iter().take(3) {
        let r = c.post(
            "/v1/transactions",
            json!({ "operation": "void", "original": id, "wait": 60 }),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = c.post("/v1/settlement", json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    let mid = series(&c.get("/metrics").text());
    // Eight more sales that end as the first ones did (the same amounts: completed).
    for i in 0..8u64 {
        let v = rig.sale(100 + 37 * i, json!({}));
        assert_eq!(v["state"], "completed", "{v:#}");
    }
    let busy = series(&c.get("/metrics").text());
    check_labels(&busy);
    assert!(
        busy.len() < BUDGET,
        "busy: {} series\n{:#?}",
        busy.len(),
        busy.keys()
    );
    // More sales of the same kind add no series: nothing per transaction.
    let added: BTreeSet<_> = busy.keys().filter(|k| !mid.contains_key(*k)).collect();
    assert!(added.is_empty(), "8 more sales added series: {added:?}");
    eprintln!(
        "series of one lane: idle {}, after 20 sales, 3 voids and a settlement {}",
        idle.len(),
        busy.len()
    );
}

/// A busier day than the test above: more sales, voids, declines, a reversal (a sale the
/// host did not answer in time), a sale aborted while the reader was unplugged, printer
/// faults (paper out, cover open) and a settlement. Still under the budget, labels still
/// closed, and a second round of the same adds no series.
#[test]
fn a_busier_day_stays_under_the_budget() {
    let rig = Rig::with(identity);
    let c = &rig.client;
    let events = c.events(None);
    let round = |n: u64| {
        let mut ids = Vec::new();
        // Cents 00..90 in steps of 10: approved by the fake host.
        for i in 0..n {
            let v = rig.sale(1000 + 110 * i, json!({}));
            assert_eq!(v["state"], "completed", "{v:#}");
            ids.push(v["id"].clone());
        }
        // Declined by the fake host, by the cents: 51, 05, 91.
        for amount in [151, 205, 391] {
            assert_eq!(rig.sale(amount, json!({}))["state"], "declined");
        }
        for id in ids.iter().take(4) {
            let r = c.post(
                "/v1/transactions",
                json!({ "operation": "void", "original": id, "wait": 60 }),
            );
            assert_eq!(r.status, 200, "{}", r.text());
        }
        // The host approves but never answers: the sale is reversed.
        let v = rig.sale(420, json!({ "inject": ["after-send:host-timeout"] }));
        assert_eq!(v["state"], "reversed", "{v:#}");
        // Printer faults, each cleared.
        for fault in ["paper-out", "cover-open"] {
            let kind = fault.replace('-', "_");
            c.post("/v1/sim/printer-fault", json!({ "fault": fault }));
            common::wait_event(&events, T, &kind, |e| common::is_type(e, &kind));
            c.post("/v1/sim/clear-printer", json!({}));
            common::wait_event(&events, T, "printer_ready", |e| {
                common::is_type(e, "printer_ready")
            });
        }
        // The reader unplugged: a sale aborted; back again.
        assert_eq!(c.post("/v1/sim/unplug-reader", json!({})).status, 200);
        common::wait_event(&events, T, "device_unplugged", |e| {
            common::is_type(e, "device_unplugged")
        });
        assert_eq!(rig.sale(150, json!({}))["state"], "aborted");
        assert_eq!(c.post("/v1/sim/replug-reader", json!({})).status, 200);
        common::eventually(T, "reader ready", || {
            c.get("/v1/devices").json()["reader"]["state"] == "ready"
        });
        let r = c.post("/v1/settlement", json!({}));
        assert_eq!(r.status, 200, "{}", r.text());
        series(&c.get("/metrics").text())
    };
    let first = round(30);
    check_labels(&first);
    let second = round(10);
    check_labels(&second);
    assert!(
        second.len() < BUDGET,
        "busier day: {} series\n{:#?}",
        second.len(),
        second.keys()
    );
    let added: BTreeSet<_> = second.keys().filter(|k| !first.contains_key(*k)).collect();
    assert!(added.is_empty(), "a second round added series: {added:?}");
    eprintln!(
        "series of one lane after a busier day (40 sales, 6 declined, 8 voids, 2 reversed, \
         2 aborted, paper out and cover open twice, the reader unplugged twice, 2 settlements): {}",
        second.len()
    );
}
