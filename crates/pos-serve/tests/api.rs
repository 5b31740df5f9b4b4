//! The local API over a real socket: sales, the one-transaction-per-lane rule with
//! concurrent clients, cancel, access control, status, report.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, Rig, eventually, is_type, wait_event};
use serde_json::json;

#[test]
fn a_sale_runs_through_the_api_and_is_journaled() {
    let rig = Rig::start();
    let v = rig.sale(1250, json!({}));
    assert_eq!(v["state"], "completed", "{v:#}");
    assert_eq!(v["amount"], 1250);
    assert_eq!(v["operation"], "sale");
    let pan = v["pan_masked"].as_str().unwrap();
    assert!(pan.contains("******"), "masked: {pan}");
    assert!(v.get("pan_hash").is_none(), "no hash in the API");
    let id = v["id"].as_i64().unwrap();
    // The same through GET, and in the list.
    let g = rig.client.get(&format!("/v1/transactions/{id}"));
    assert_eq!(g.status, 200);
    assert_eq!(g.json()["state"], "completed");
    let list = rig.client.get("/v1/transactions?limit=5").json();
    assert_eq!(list["transactions"][0]["id"], id);
    // Evidence and report.
    let ev = rig.client.get(&format!("/v1/transactions/{id}/evidence"));
    assert_eq!(ev.status, 200);
    assert!(
        !ev.text()
            .contains(&pos_emv::profile_card::Profile::VisaPse.pan().to_string())
    );
    let report = rig.client.get("/v1/report").json();
    assert!(
        report.to_string().contains("1250") || report.to_string().contains("12.50"),
        "{report:#}"
    );
    // A void of it, by reference.
    let void = rig.client.post(
        "/v1/transactions",
        json!({ "operation": "void", "original": id, "wait": 60 }),
    );
    assert_eq!(void.status, 200, "{}", void.text());
    assert_eq!(void.json()["state"], "completed");
    let orig = rig.client.get(&format!("/v1/transactions/{id}")).json();
    assert_eq!(orig["voided"], true);
}

#[test]
fn a_second_transaction_is_refused_while_one_runs_and_cancel_stops_it() {
    let rig = Rig::start();
    let c = &rig.client;
    assert_eq!(
        c.post("/v1/sim/cardholder", json!({ "mode": "manual" }))
            .status,
        200
    );
    assert_eq!(c.post("/v1/sim/remove-card", json!({})).status, 200);
    let r = c.post("/v1/transactions", json!({ "amount": 500 }));
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    assert_eq!(r.json()["done"], false);
    assert_eq!(
        r.json()["links"]["cancel"],
        format!("/v1/transactions/{id}/cancel")
    );

    // Concurrent clients: one more start from each of 4 threads is refused with busy and the
    // running id; status reads from 4 more threads all answer meanwhile.
    let handles: Vec<_> = (0..8)
        .map(|n| {
            let c: Client = c.clone();
            std::thread::spawn(move || {
                if n % 2 == 0 {
                    let r = c.post("/v1/transactions", json!({ "amount": 100 + n }));
                    (r.status, r.json())
                } else {
                    let r = c.get("/v1/status");
                    (r.status, r.json())
                }
            })
        })
        .collect();
    for (n, h) in handles.into_iter().enumerate() {
        let (status, body) = h.join().unwrap();
        if n % 2 == 0 {
            assert_eq!(status, 409, "{body:#}");
            assert_eq!(body["error"]["kind"], "busy");
            assert_eq!(body["error"]["current"], id);
        } else {
            assert_eq!(status, 200);
            assert_eq!(body["busy"], true);
            assert_eq!(body["current"]["id"], id);
        }
    }
    // Still waiting for the card: await with a short wait returns not done.
    let w = c.get(&format!("/v1/transactions/{id}?wait=1")).json();
    assert_eq!(w["done"], false);
    // Cancel it.
    let cancel = c.post(&format!("/v1/transactions/{id}/cancel"), json!({}));
    assert_eq!(cancel.status, 202, "{}", cancel.text());
    let done = c.get(&format!("/v1/transactions/{id}?wait=30")).json();
    assert_eq!(done["done"], true);
    assert_eq!(done["state"], "aborted");
    assert!(
        done["reason"].as_str().unwrap().contains("cancelled"),
        "{done:#}"
    );
    // Cancelling what ended is too late; the lane is free again.
    let again = c.post(&format!("/v1/transactions/{id}/cancel"), json!({}));
    assert_eq!(again.status, 409);
    assert_eq!(again.json()["error"]["kind"], "too_late");
    assert_eq!(
        c.post("/v1/sim/cardholder", json!({ "mode": "auto" }))
            .status,
        200
    );
    let v = rig.sale(700, json!({}));
    assert_eq!(v["state"], "completed");
}

#[test]
fn cancel_is_refused_once_the_request_may_be_with_the_host() {
    let rig = Rig::start();
    let c = &rig.client;
    let events = c.events(None);
    // The host holds its answer 1.5 s: time to try a cancel while the request is out.
    rig.service()
        .fake_host()
        .unwrap()
        .arm(pos_acquirer::sim::HostFault::Delay(Duration::from_millis(
            1500,
        )));
    let r = c.post("/v1/transactions", json!({ "amount": 900 }));
    assert_eq!(r.status, 202);
    let id = r.json()["id"].as_i64().unwrap();
    wait_event(&events, Duration::from_secs(20), "state sent", |e| {
        is_type(e, "transaction_state") && e["txn"] == id && e["state"] == "sent"
    });
    let cancel = c.post(&format!("/v1/transactions/{id}/cancel"), json!({}));
    assert_eq!(cancel.status, 409, "{}", cancel.text());
    assert_eq!(cancel.json()["error"]["kind"], "too_late");
    let done = c.get(&format!("/v1/transactions/{id}?wait=30")).json();
    assert_eq!(
        done["state"], "completed",
        "a cancel after sending changes nothing"
    );
}

#[test]
fn bad_requests_get_clear_errors() {
    let rig = Rig::start();
    let c = &rig.client;
    let cases = [
        (json!({}), "amount"),
        (json!({ "amount": 100, "operation": "steal" }), "operation"),
        (json!({ "amount": 100, "entry": "tap" }), "entry"),
        (
            json!({ "amount": 100, "inject": ["nowhere:paper-out"] }),
            "step",
        ),
        (json!({ "amount": 100, "colour": "red" }), "colour"),
        (json!({ "operation": "void" }), "original"),
        (json!({ "operation": "void", "original": 999 }), "999"),
        (json!({ "amount": 99_999_999 }), "limits"),
        (
            json!({ "amount": 100, "inject": ["before-send:crash"] }),
            "crash",
        ),
    ];
    for (body, word) in cases {
        let r = c.post("/v1/transactions", body.clone());
        assert_eq!(r.status, 400, "{body} -> {}", r.text());
        let e = r.json();
        assert_eq!(e["error"]["kind"], "invalid_input");
        let msg = e["error"]["message"].as_str().unwrap().to_lowercase();
        assert!(msg.contains(word), "{body}: {msg:?} should mention {word}");
    }
    // Not JSON, wrong ids, unknown routes, wrong methods.
    let r = c.request("POST", "/v1/transactions", None);
    assert_eq!(r.status, 400);
    assert_eq!(c.get("/v1/transactions/abc").status, 400);
    assert_eq!(c.get("/v1/transactions/424242").status, 404);
    assert_eq!(c.get("/v1/nothing").json()["error"]["kind"], "no_route");
    let m = c.request("DELETE", "/v1/transactions", None);
    assert_eq!(m.status, 405);
    // The lane is still free and works.
    assert_eq!(rig.sale(300, json!({}))["state"], "completed");
}

#[test]
fn tcp_needs_the_token_and_the_token_file_is_group_only() {
    use std::os::unix::fs::PermissionsExt;
    let rig = Rig::start();
    let bare = rig.client.without_token();
    let r = bare.get("/v1/status");
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["kind"], "unauthorized");
    let r = bare.post("/v1/transactions", json!({ "amount": 100 }));
    assert_eq!(r.status, 401, "no other local user can start a sale");
    let wrong = Client::new(&rig.client.address, Some("0".repeat(48)));
    assert_eq!(wrong.get("/v1/status").status, 401);
    // Compared whole: a prefix of the token, or the token and more, is not the token.
    let token = std::fs::read_to_string(rig.service().token_path()).unwrap();
    let token = token.trim();
    for guess in [&token[..token.len() - 1], &format!("{token}0"), ""] {
        let c = Client::new(&rig.client.address, Some(guess.to_string()));
        assert_eq!(c.get("/v1/status").status, 401, "{guess:?}");
    }
    let right = Client::new(&rig.client.address, Some(token.to_string()));
    assert_eq!(right.get("/v1/status").status, 200);
    // Liveness and metrics need no token (no card data, read-only).
    assert_eq!(bare.get("/healthz").status, 200);
    assert_eq!(bare.get("/metrics").status, 200);
    let mode = std::fs::metadata(rig.service().token_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
}

#[test]
fn a_world_readable_token_file_or_a_network_api_address_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("api.token");
    std::fs::write(&token, "0123456789abcdef0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut c = common::config(dir.path());
    c.api.token_file = Some(token);
    let e = pos_serve::Service::start(pos_serve::open_lane(c, None).unwrap()).unwrap_err();
    assert!(e.to_string().contains("chmod 640"), "{e}");

    let other = tempfile::tempdir().unwrap();
    let mut c = common::config(other.path());
    c.api.listen = "0.0.0.0:0".into();
    let e = pos_serve::Service::start(pos_serve::open_lane(c, None).unwrap()).unwrap_err();
    assert!(e.to_string().contains("local"), "{e}");
}

#[test]
fn the_unix_socket_is_group_only_and_needs_no_token() {
    use std::os::unix::fs::PermissionsExt;
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("api.sock");
    let s = sock.clone();
    let rig = Rig::with(move |c| c.api.listen = format!("unix:{}", s.display()));
    assert_eq!(
        rig.service().api_address(),
        format!("unix:{}", sock.display())
    );
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660);
    let bare = rig.client.without_token();
    let st = bare.get("/v1/status");
    assert_eq!(st.status, 200, "{}", st.text());
    let v = rig.sale(450, json!({}));
    assert_eq!(v["state"], "completed");
    drop(rig);
    assert!(!sock.exists(), "the socket is removed on shutdown");

    // token_on_socket: the token is needed there too.
    let s = sock.clone();
    let rig = Rig::with(move |c| {
        c.api.listen = format!("unix:{}", s.display());
        c.api.token_on_socket = true;
    });
    assert_eq!(rig.client.without_token().get("/v1/status").status, 401);
    assert_eq!(rig.client.get("/v1/status").status, 200);
}

#[test]
fn reprint_and_reversal_endpoints_report_what_they_did() {
    let rig = Rig::start();
    let c = &rig.client;
    // A receipt owed: the printer runs out of paper during the print.
    let v = rig.sale(1100, json!({ "inject": ["printing:paper-out"] }));
    assert_eq!(v["state"], "receipt_owed", "{v:#}");
    let owed = c.get("/v1/receipts/owed").json();
    assert_eq!(owed["owed"][0]["id"], v["id"]);
    // Reprinting while out of paper prints nothing; after a new roll the supervisor prints it
    // by itself.
    let r = c.post("/v1/receipts/reprint", json!({})).json();
    assert_eq!(r["printed"], json!([]));
    assert_eq!(c.post("/v1/sim/clear-printer", json!({})).status, 200);
    let id = v["id"].as_i64().unwrap();
    eventually(Duration::from_secs(10), "owed receipt printed", || {
        c.get(&format!("/v1/transactions/{id}")).json()["state"] == "completed"
    });
    // A reversal pending while the host is down, then retried on demand.
    assert_eq!(
        c.post("/v1/sim/host-down", json!({ "on": false })).status,
        200
    );
    let v = rig.sale(1300, json!({ "inject": ["after-approve:card-removed"] }));
    let state = v["state"].as_str().unwrap();
    assert!(state == "reversed" || state == "reversal_pending", "{v:#}");
    let rev = c.get("/v1/reversals").json();
    assert!(rev["pending"].is_array() && rev["stuck"].is_array());
    let d = c.post("/v1/reversals/retry", json!({}));
    assert_eq!(d.status, 200);
    for k in ["reversed", "rejected", "unanswered", "stuck", "waiting"] {
        assert!(d.json()[k].is_array(), "{k}");
    }
    let id = v["id"].as_i64().unwrap();
    eventually(Duration::from_secs(10), "reversed", || {
        c.get(&format!("/v1/transactions/{id}")).json()["state"] == "reversed"
    });
}

#[test]
fn an_operator_requeues_or_resolves_a_stuck_reversal_and_nothing_else() {
    let rig = Rig::start();
    let c = &rig.client;
    let done = rig.sale(100, json!({}));
    assert_eq!(done["state"], "completed", "{done:#}");
    // A reversal the host rejects three times (the default budget): stuck.
    let v = rig.sale(
        2300,
        json!({ "inject": ["after-send:host-timeout", "after-send:reversal-rejected:3"] }),
    );
    assert_eq!(v["state"], "reversal_pending", "{v:#}");
    let id = v["id"].as_i64().unwrap();
    for _ in 0..2 {
        assert_eq!(c.post("/v1/reversals/retry", json!({})).status, 200);
    }
    assert_eq!(c.get("/v1/reversals").json()["stuck"][0]["id"], id);
    let path = |verb: &str| format!("/v1/reversals/{id}/{verb}");
    // Refused: a body without its field, unknown fields, card numbers, an unknown id, a
    // transaction that is not stuck.
    let r = c.post(&path("requeue"), json!({}));
    assert_eq!(r.status, 400, "{:?}", r.json());
    let r = c.post(&path("resolve"), json!({ "reference": "R1", "x": 1 }));
    assert_eq!(r.status, 400);
    let r = c.post(
        &path("requeue"),
        json!({ "note": "card 4761739001010010 was fine" }),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("card numbers")
    );
    let r = c.post("/v1/reversals/99999/requeue", json!({ "note": "x" }));
    assert_eq!(r.status, 404);
    let r = c.post(
        &format!("/v1/reversals/{}/resolve", done["id"]),
        json!({ "reference": "R1" }),
    );
    assert_eq!(
        (r.status, r.json()["error"]["kind"].as_str()),
        (409, Some("not_stuck"))
    );
    assert_eq!(c.get("/v1/reversals").json()["stuck"][0]["id"], id);
    // Requeued: pending, due now; the retry sends it and the host (its rejections used up)
    // takes it.
    let t = c
        .post(&path("requeue"), json!({ "note": "acquirer: resend" }))
        .json();
    assert_eq!(t["state"], "reversal_pending", "{t:#}");
    let d = c.post("/v1/reversals/retry", json!({})).json();
    assert_eq!(d["reversed"], json!([id]), "{d:#}");
    // Now reversed: neither action applies any more.
    let r = c.post(&path("resolve"), json!({ "reference": "R1" }));
    assert_eq!(r.status, 409);
    let ev = c.get(&format!("/v1/transactions/{id}/evidence")).json();
    assert!(
        ev.to_string()
            .contains("requeued by an operator: acquirer: resend")
    );
}

#[test]
fn an_operator_records_the_acquirers_reversal_of_a_stuck_one() {
    let rig = Rig::start();
    let c = &rig.client;
    let v = rig.sale(
        2400,
        json!({ "inject": ["after-send:host-timeout", "after-send:reversal-rejected:3"] }),
    );
    let id = v["id"].as_i64().unwrap();
    for _ in 0..2 {
        c.post("/v1/reversals/retry", json!({}));
    }
    let t = c
        .post(
            &format!("/v1/reversals/{id}/resolve"),
            json!({ "reference": "ACQ-0042" }),
        )
        .json();
    assert_eq!(t["state"], "reversed", "{t:#}");
    assert_eq!(c.get("/v1/reversals").json()["stuck"], json!([]));
    assert_eq!(c.get("/v1/status").json()["reversals_stuck"], 0);
}
