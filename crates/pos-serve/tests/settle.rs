//! `POST /v1/settlement` over a real socket: a balanced day, a day the fake host disagrees
//! about (the difference in the answer, in `GET /v1/report` and as an alarm on the event
//! stream), refused while a sale runs, and a settlement the host did not answer resumed by
//! the next call.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Rig, is_type, wait_event};
use pos_acquirer::sim::Disagreement;
use serde_json::{Value, json};

fn settlements(rig: &Rig) -> i64 {
    let c = rusqlite::Connection::open(rig.journal_path()).unwrap();
    c.query_row("SELECT COUNT(*) FROM settlement", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_balanced_day_settles_through_the_api() {
    let rig = Rig::start();
    let c = &rig.client;
    let events = c.events(None);
    let sale = rig.sale(1250, json!({}));
    let sale2 = rig.sale(800, json!({}));
    let refund = c.post(
        "/v1/transactions",
        json!({ "operation": "refund", "amount": 300, "wait": 60 }),
    );
    assert_eq!(refund.status, 200, "{}", refund.text());
    let void = c.post(
        "/v1/transactions",
        json!({ "operation": "void", "original": sale2["id"], "wait": 60 }),
    );
    assert_eq!(void.json()["state"], "completed", "{}", void.text());

    let before = c.get("/v1/report").json();
    assert_eq!(before["batch"]["open_batch"], 1, "{before:#}");
    assert!(before["batch"]["last_settlement"].is_null());

    let r = c.post("/v1/settlement", json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    let s = r.json();
    assert_eq!(s["balanced"], true, "{s:#}");
    assert_eq!(s["state"], "balanced");
    assert_eq!(s["batch"], 1);
    assert_eq!(s["forced"], false);
    assert_eq!(s["differences"], json!([]));
    assert_eq!(common::metric(c, "pos_settlement_differences"), 0.0);
    let totals = &s["totals"][0];
    assert_eq!(totals["currency"], 978);
    assert_eq!(totals["debits"], json!({ "count": 1, "amount": 1250 }));
    assert_eq!(totals["credits"], json!({ "count": 1, "amount": 300 }));
    assert_eq!(totals["voids"], json!({ "count": 1, "amount": 800 }));
    let receipt = s["receipt"].as_str().unwrap();
    assert!(receipt.contains("BALANCED WITH THE HOST"), "{receipt}");
    let id = s["id"].as_i64().unwrap();
    assert_eq!(s["evidence"], format!("posctl journal settlement {id}"));
    assert!(
        !r.text()
            .contains(&pos_emv::profile_card::Profile::VisaPse.pan().to_string()),
        "masked PANs only"
    );

    // The report shows the closed batch; the next one is open.
    let after = c.get("/v1/report").json();
    let b = &after["batch"];
    assert_eq!(b["open_batch"], 2, "{after:#}");
    assert_eq!(b["last_settlement"]["id"], id);
    assert_eq!(b["last_settlement"]["state"], "balanced");
    assert!(b["unfinished_settlement"].is_null());
    assert_eq!(b["differences"], json!([]));
    let ev = wait_event(&events, Duration::from_secs(30), "settlement", |e| {
        is_type(e, "settlement")
    });
    assert_eq!(ev["settlement"], id);
    assert!(
        ev["detail"].as_str().unwrap().contains("balanced"),
        "{ev:#}"
    );

    // A void of the closed batch's sale is refused: refund it.
    let late = c.post(
        "/v1/transactions",
        json!({ "operation": "void", "original": sale["id"], "wait": 60 }),
    );
    assert_eq!(late.status, 400, "{}", late.text());
    assert!(late.text().contains("batch"), "{}", late.text());

    // An empty batch settles too (balanced at zero); nothing is closed twice.
    let again = c.post("/v1/settlement", json!({ "force": false }));
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["batch"], 2);
    assert_eq!(settlements(&rig), 2);

    // Bad bodies are refused before anything happens.
    let bad = c.post("/v1/settlement", json!({ "force": "yes" }));
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["kind"], "invalid_input");
    let unknown = c.post("/v1/settlement", json!({ "forse": true }));
    assert_eq!(unknown.status, 400);
    assert_eq!(settlements(&rig), 2);
}

#[test]
fn a_difference_is_named_in_the_answer_the_report_and_the_event_stream() {
    let rig = Rig::start();
    let c = &rig.client;
    let events = c.events(None);
    rig.sale(1000, json!({}));
    let host = rig.service().fake_host().unwrap();
    let invented = host.disagree(Disagreement::InventApproval(4200)).unwrap();

    let r = c.post("/v1/settlement", json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    let s = r.json();
    assert_eq!(s["balanced"], false, "{s:#}");
    assert_eq!(s["state"], "closed_with_differences");
    let diffs = s["differences"].as_array().unwrap();
    assert_eq!(diffs.len(), 1, "{s:#}");
    assert_eq!(common::metric(c, "pos_settlement_differences"), 1.0);
    let d = &diffs[0];
    assert_eq!(d["kind"], "host_only");
    assert!(d["txn_id"].is_null(), "the terminal has no record: {d:#}");
    let detail = d["detail"].as_str().unwrap();
    assert!(detail.contains("42.00"), "{detail}");
    assert!(detail.contains(&invented.rrn), "{detail}");
    assert!(detail.contains("has no record"), "{detail}");
    assert_eq!(d["action"], "call the acquirer");
    let id = s["id"].as_i64().unwrap();
    assert_eq!(d["settlement_id"], id);

    // The report lists the same difference, as posctl report does.
    let report = c.get("/v1/report").json();
    assert_eq!(
        report["batch"]["differences"], s["differences"],
        "{report:#}"
    );
    assert_eq!(
        report["batch"]["last_settlement"]["state"],
        "closed_with_differences"
    );

    // The alarm, on the event stream: the difference, then the settlement's end.
    let alarm = wait_event(
        &events,
        Duration::from_secs(30),
        "settlement_difference",
        |e| is_type(e, "settlement_difference"),
    );
    assert_eq!(alarm["settlement"], id);
    let text = alarm["detail"].as_str().unwrap();
    assert!(text.contains("host_only"), "{text}");
    assert!(text.contains("42.00"), "{text}");
    assert!(text.contains("call the acquirer"), "{text}");
    let end = wait_event(&events, Duration::from_secs(30), "settlement", |e| {
        is_type(e, "settlement")
    });
    assert_eq!(end["settlement"], id);
    assert!(
        end["detail"].as_str().unwrap().contains("1 difference(s)"),
        "{end:#}"
    );
}

#[test]
fn settlement_is_refused_while_a_sale_runs() {
    let rig = Rig::start();
    let c = &rig.client;
    rig.sale(500, json!({}));
    assert_eq!(
        c.post("/v1/sim/cardholder", json!({ "mode": "manual" }))
            .status,
        200
    );
    assert_eq!(c.post("/v1/sim/remove-card", json!({})).status, 200);
    let r = c.post("/v1/transactions", json!({ "amount": 700 }));
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();

    let refused = c.post("/v1/settlement", json!({}));
    assert_eq!(refused.status, 409, "{}", refused.text());
    let e = refused.json();
    assert_eq!(e["error"]["kind"], "busy");
    assert_eq!(e["error"]["current"], id);
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("transaction {id}")) && msg.contains("never starts while a sale"),
        "{msg}"
    );
    assert_eq!(settlements(&rig), 0, "nothing was started");

    // Once the sale ended, it settles.
    assert_eq!(
        c.post(&format!("/v1/transactions/{id}/cancel"), json!({}))
            .status,
        202
    );
    let done = c.get(&format!("/v1/transactions/{id}?wait=30")).json();
    assert_eq!(done["state"], "aborted");
    let ok = c.post("/v1/settlement", json!({}));
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["balanced"], true);
    assert_eq!(c.get("/v1/status").json()["settling"], false);
}

#[test]
fn a_settlement_the_host_did_not_answer_is_resumed_by_the_next_call() {
    let rig = Rig::start();
    let c = &rig.client;
    let events = c.events(None);
    rig.sale(2500, json!({}));
    assert_eq!(
        c.post("/v1/sim/host-down", json!({ "on": true })).status,
        200
    );
    let r = c.post("/v1/settlement", json!({}));
    assert_eq!(r.status, 502, "{}", r.text());
    let e: Value = r.json();
    assert_eq!(e["error"]["kind"], "settlement_unfinished", "{e:#}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stopped at requested"),
        "{e:#}"
    );
    let ev = wait_event(&events, Duration::from_secs(30), "settlement", |e| {
        is_type(e, "settlement")
    });
    assert!(
        ev["detail"].as_str().unwrap().contains("not done"),
        "{ev:#}"
    );

    // The report shows the unfinished settlement; the batch is frozen, the next one open.
    let b = c.get("/v1/report").json()["batch"].clone();
    assert_eq!(b["unfinished_settlement"]["batch"], 1, "{b:#}");
    assert_eq!(b["unfinished_settlement"]["state"], "requested");
    assert_eq!(b["open_batch"], 2);

    assert_eq!(
        c.post("/v1/sim/host-down", json!({ "on": false })).status,
        200
    );
    let r = c.post("/v1/settlement", json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    let s = r.json();
    assert_eq!(s["resumed"], true, "{s:#}");
    assert_eq!(s["batch"], 1);
    assert_eq!(s["balanced"], true);
    assert_eq!(settlements(&rig), 1, "the batch was never settled twice");
    let b = c.get("/v1/report").json()["batch"].clone();
    assert!(b["unfinished_settlement"].is_null(), "{b:#}");
    assert_eq!(b["open_batch"], 2);
}
