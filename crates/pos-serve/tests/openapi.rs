//! The checked-in OpenAPI document matches the service: the same routes both ways, every
//! route is served, and real answers validate against the documented schemas (a small
//! validator for the JSON Schema subset the document uses: type, enum, required,
//! properties, additionalProperties, items, oneOf, $ref).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Rig, is_type};
use serde_json::{Value, json};

fn doc() -> Value {
    serde_json::from_str(pos_serve::api::OPENAPI).unwrap()
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            doc["components"]["schemas"]
                .get(name)
                .unwrap_or_else(|| panic!("dangling $ref {r}"))
        }
        None => schema,
    }
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        other => panic!("schema type {other} not handled"),
    }
}

/// Errors of `v` against `schema`, with their JSON paths.
fn validate(doc: &Value, schema: &Value, v: &Value, path: &str, errs: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if let Some(alts) = schema.get("oneOf").and_then(Value::as_array) {
        let ok = alts.iter().filter(|a| {
            let mut e = Vec::new();
            validate(doc, a, v, path, &mut e);
            e.is_empty()
        });
        if ok.count() != 1 {
            errs.push(format!("{path}: matches not exactly one of oneOf: {v}"));
        }
        return;
    }
    if let Some(t) = schema.get("type") {
        let fits = match t {
            Value::String(t) => type_ok(t, v),
            Value::Array(ts) => ts.iter().any(|t| type_ok(t.as_str().unwrap(), v)),
            _ => panic!("bad type {t}"),
        };
        if !fits {
            errs.push(format!("{path}: {v} is not {t}"));
            return;
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            errs.push(format!("{path}: {v} not in {e:?}"));
        }
    }
    if let Some(obj) = v.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().unwrap();
            if !obj.contains_key(r) {
                errs.push(format!("{path}: required {r} missing"));
            }
        }
        for (k, val) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => validate(doc, s, val, &format!("{path}.{k}"), errs),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        errs.push(format!("{path}: undocumented property {k}"));
                    }
                    Some(s @ Value::Object(_)) => {
                        validate(doc, s, val, &format!("{path}.{k}"), errs);
                    }
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            validate(doc, items, x, &format!("{path}[{i}]"), errs);
        }
    }
}

/// The documented JSON schema of `method path`'s `status` answer.
fn response_schema(doc: &Value, method: &str, template: &str, status: u16) -> Value {
    let op = &doc["paths"][template][method.to_lowercase()];
    // An error status not listed falls under "default" (which is an error body).
    let resp = op["responses"]
        .get(status.to_string())
        .or_else(|| {
            (status >= 400)
                .then(|| op["responses"].get("default"))
                .flatten()
        })
        .unwrap_or_else(|| panic!("{method} {template}: status {status} is not documented"));
    resp["content"]["application/json"]["schema"].clone()
}

fn check(doc: &Value, method: &str, template: &str, status: u16, body: &Value) {
    let schema = response_schema(doc, method, template, status);
    let mut errs = Vec::new();
    validate(doc, &schema, body, "$", &mut errs);
    assert!(
        errs.is_empty(),
        "{method} {template} {status} does not match the document:\n{errs:#?}\n{body:#}"
    );
}

#[test]
fn routes_and_document_list_the_same_operations() {
    let doc = doc();
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = Vec::new();
    for (p, ops) in paths {
        for m in ops.as_object().unwrap().keys() {
            documented.push((m.to_uppercase(), p.clone()));
        }
    }
    for (m, p) in pos_serve::ROUTES {
        assert!(
            documented.contains(&((*m).to_string(), (*p).to_string())),
            "{m} {p} is served but not documented"
        );
    }
    for (m, p) in &documented {
        assert!(
            pos_serve::ROUTES.contains(&(m.as_str(), p.as_str())),
            "{m} {p} is documented but not served"
        );
    }
    // Every operation has an id and every $ref resolves.
    let text = doc.to_string();
    for (i, _) in text.match_indices("#/components/schemas/") {
        let name: String = text[i + 21..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(doc["components"]["schemas"].get(&name).is_some(), "{name}");
    }
    // The event types and simulator actions are the code's.
    let types: Vec<&str> = doc["components"]["schemas"]["Event"]["properties"]["type"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let code: Vec<&str> = pos_serve::events::EventKind::ALL
        .iter()
        .map(|k| k.name())
        .collect();
    assert_eq!(types, code);
    let actions: Vec<&str> =
        doc["paths"]["/v1/sim/{action}"]["post"]["parameters"][0]["schema"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
    assert_eq!(actions, pos_serve::api::SIM_ACTIONS);
}

#[test]
fn real_answers_match_the_documented_schemas() {
    let doc = doc();
    let rig = Rig::start();
    let c = &rig.client;
    let events = c.events(None);

    // Every route is served (none answers no_route or 405).
    for (m, p) in pos_serve::ROUTES {
        if *p == "/v1/events" {
            continue; // a stream: checked below
        }
        let path = p
            .replace("{id}", "999999")
            .replace("{action}", "cardholder");
        let r = if *m == "GET" {
            c.get(&path)
        } else {
            c.request(m, &path, Some(&json!({ "mode": "auto" })))
        };
        assert!(r.status != 405, "{m} {p}: {}", r.text());
        if r.header("content-type") == Some("application/json") && r.status >= 400 {
            assert_ne!(r.json()["error"]["kind"], "no_route", "{m} {p}");
            check(&doc, m, p, r.status, &r.json());
        }
    }

    let h = c.get("/healthz");
    check(&doc, "GET", "/healthz", 200, &h.json());
    check(&doc, "GET", "/v1/status", 200, &c.get("/v1/status").json());
    check(
        &doc,
        "GET",
        "/v1/devices",
        200,
        &c.get("/v1/devices").json(),
    );
    check(
        &doc,
        "POST",
        "/v1/devices/check",
        200,
        &c.post("/v1/devices/check", json!({})).json(),
    );

    // Start (202), await (200), list, evidence, cancel refused, errors.
    let r = c.post("/v1/transactions", json!({ "amount": 1234 }));
    assert_eq!(r.status, 202);
    check(&doc, "POST", "/v1/transactions", 202, &r.json());
    let id = r.json()["id"].as_i64().unwrap();
    let busy = c.post("/v1/transactions", json!({ "amount": 1 }));
    if busy.status == 409 {
        check(&doc, "POST", "/v1/transactions", 409, &busy.json());
    }
    let done = c.get(&format!("/v1/transactions/{id}?wait=30")).json();
    check(&doc, "GET", "/v1/transactions/{id}", 200, &done);
    let with_wait = c.post("/v1/transactions", json!({ "amount": 1200, "wait": 30 }));
    check(&doc, "POST", "/v1/transactions", 200, &with_wait.json());
    check(
        &doc,
        "GET",
        "/v1/transactions",
        200,
        &c.get("/v1/transactions").json(),
    );
    let late = c.post(&format!("/v1/transactions/{id}/cancel"), json!({}));
    check(
        &doc,
        "POST",
        "/v1/transactions/{id}/cancel",
        409,
        &late.json(),
    );
    let bad = c.post("/v1/transactions", json!({ "amount": "ten" }));
    check(&doc, "POST", "/v1/transactions", 400, &bad.json());
    let unauth = c.without_token().get("/v1/status");
    check(&doc, "GET", "/v1/status", 401, &unauth.json());
    let evidence = c.get(&format!("/v1/transactions/{id}/evidence")).json();
    check(
        &doc,
        "GET",
        "/v1/transactions/{id}/evidence",
        200,
        &evidence,
    );

    // A cancel that is accepted.
    c.post("/v1/sim/cardholder", json!({ "mode": "manual" }));
    c.post("/v1/sim/remove-card", json!({}));
    let r = c.post("/v1/transactions", json!({ "amount": 10 }));
    let wid = r.json()["id"].as_i64().unwrap();
    let cancel = c.post(&format!("/v1/transactions/{wid}/cancel"), json!({}));
    assert_eq!(cancel.status, 202);
    check(
        &doc,
        "POST",
        "/v1/transactions/{id}/cancel",
        202,
        &cancel.json(),
    );
    c.get(&format!("/v1/transactions/{wid}?wait=30"));
    c.post("/v1/sim/cardholder", json!({ "mode": "auto" }));

    check(
        &doc,
        "GET",
        "/v1/reversals",
        200,
        &c.get("/v1/reversals").json(),
    );
    check(
        &doc,
        "POST",
        "/v1/reversals/retry",
        200,
        &c.post("/v1/reversals/retry", json!({})).json(),
    );
    check(
        &doc,
        "GET",
        "/v1/receipts/owed",
        200,
        &c.get("/v1/receipts/owed").json(),
    );
    check(
        &doc,
        "POST",
        "/v1/receipts/reprint",
        200,
        &c.post("/v1/receipts/reprint", json!({})).json(),
    );
    check(&doc, "GET", "/v1/report", 200, &c.get("/v1/report").json());
    let settled = c.post("/v1/settlement", json!({}));
    assert_eq!(settled.status, 200, "{}", settled.text());
    check(&doc, "POST", "/v1/settlement", 200, &settled.json());
    let report = c.get("/v1/report").json();
    assert!(!report["batch"]["last_settlement"].is_null(), "{report:#}");
    check(&doc, "GET", "/v1/report", 200, &report);
    check(
        &doc,
        "POST",
        "/v1/devices/printer/recover",
        200,
        &c.post("/v1/devices/printer/recover", json!({})).json(),
    );
    let sim = c.post("/v1/sim/paper-near-end", json!({ "on": true }));
    check(&doc, "POST", "/v1/sim/{action}", 200, &sim.json());
    let sim_bad = c.post("/v1/sim/levitate", json!({}));
    check(&doc, "POST", "/v1/sim/{action}", 404, &sim_bad.json());

    // Events: each one's data matches the Event schema.
    let event_schema = doc["components"]["schemas"]["Event"].clone();
    let mut n = 0;
    let end = std::time::Instant::now() + Duration::from_secs(5);
    while let Ok(mut e) =
        events.recv_timeout(end.saturating_duration_since(std::time::Instant::now()))
    {
        let ev = e["_event"].clone();
        let obj = e.as_object_mut().unwrap();
        obj.remove("_event");
        obj.remove("_id");
        assert_eq!(ev, e["type"]);
        let mut errs = Vec::new();
        validate(&doc, &event_schema, &e, "$", &mut errs);
        assert!(errs.is_empty(), "{errs:#?} {e}");
        n += 1;
        if is_type(&e, "paper_low") {
            break;
        }
    }
    assert!(n > 10, "saw only {n} events");
}

#[test]
fn drawer_routes_answer_as_documented() {
    let doc = doc();
    // No drawer configured: 404, documented.
    let rig = Rig::start();
    let r = rig.client.get("/v1/drawer");
    assert_eq!(r.status, 404, "{}", r.text());
    check(&doc, "GET", "/v1/drawer", 404, &r.json());
    let r = rig.client.post("/v1/drawer/open", json!({}));
    assert_eq!(r.status, 404, "{}", r.text());
    check(&doc, "POST", "/v1/drawer/open", 404, &r.json());
    drop(rig);

    let rig = Rig::with(|c| {
        c.devices.drawer = "printer".into();
        c.drawer.require_closed_before_sale = true;
    });
    let c = &rig.client;
    let r = c.without_token().get("/v1/drawer");
    assert_eq!(r.status, 401);
    check(&doc, "GET", "/v1/drawer", 401, &r.json());
    let r = c.without_token().post("/v1/drawer/open", json!({}));
    assert_eq!(r.status, 401);

    let r = c.get("/v1/drawer");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    check(&doc, "GET", "/v1/drawer", 200, &v);
    assert_eq!(v["state"], "closed");
    assert_eq!(v["require_closed_before_sale"], true);
    assert_eq!(v["pulse"], json!({"pin": "pin2", "on": 50, "off": 500}));

    let r = c.post("/v1/drawer/open", json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    check(&doc, "POST", "/v1/drawer/open", 200, &v);
    assert_eq!(
        (v["opened"].clone(), v["state"].clone()),
        (json!(true), json!("open"))
    );
    assert_eq!(c.get("/v1/drawer").json()["state"], "open");

    // The cashier shuts it (simulator control).
    let r = c.post("/v1/sim/drawer", json!({ "on": false }));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(c.get("/v1/drawer").json()["state"], "closed");

    // Cover open: not pulsed, 502 naming the kind; the drawer stays shut.
    c.post("/v1/sim/printer-fault", json!({ "fault": "cover-open" }));
    let r = c.post("/v1/drawer/open", json!({}));
    assert_eq!(r.status, 502, "{}", r.text());
    check(&doc, "POST", "/v1/drawer/open", 502, &r.json());
    assert!(r.text().contains("cover_open"), "{}", r.text());
    assert_eq!(c.get("/v1/drawer").json()["state"], "closed");
}
