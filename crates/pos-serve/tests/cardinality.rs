//! The cardinality budget of one lane: the series its `/metrics` exports, idle and after a
//! busy spell through the simulated lane (sales, voids, a settlement), stay under 200, so
//! that 10,000 lanes fit in one Prometheus; and no label takes unbounded values (no
//! transaction ids, amounts, card numbers or free text): every label is one of a closed set
//! of keys, its values short lowercase names (or a histogram bucket bound), and sales add
//! no series per transaction.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::Rig;
use serde_json::json;

const BUDGET: usize = 200;

/// The label keys a lane may export, each with a closed set of values.
const KEYS: [&str; 7] = [
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
        for (k, v) in labels {
            assert!(
                KEYS.contains(&k.as_str()),
                "{name}: label {k} is not in the closed set {KEYS:?}"
            );
            let ok = if k == "le" {
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

#[test]
fn one_lane_exports_fewer_than_200_series_with_bounded_labels_idle_and_busy() {
    let rig = Rig::start();
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
