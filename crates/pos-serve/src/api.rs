//! The local HTTP+JSON API.
//!
//! Threads, no async runtime: the HTTP/1.1 front (`http`, private) runs one accept thread per
//! listener and one thread per connection, within bounds on every size, time and count a
//! client controls (see the crate README for the figures). Reads (transactions, report) go to
//! the journal through a reader connection; everything that touches devices or the host goes
//! to the lane worker over a channel. [`ROUTES`] is the route table; the OpenAPI document
//! (`openapi.json`) is tested against it.
//!
//! This file is the routing: the route table, who needs the token, and the read-only
//! answers (status, devices, transactions, reversals, receipts, report). `listen` starts the
//! listeners and keeps the token file; `request` reads queries and bodies; `txn` starts,
//! awaits and cancels transactions; `settle` settles the batch with the host; `sim` has the
//! simulator controls; `stream` the event stream.

mod listen;
mod request;
mod settle;
mod sim;
mod stream;
mod stuck;
mod txn;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use pos_terminal::journal::{Journal, Txn};
use pos_terminal::{Config, State};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::ApiError;
use crate::http::{Answer, Class, EventSink, Request, Response};
use crate::worker::{Command, Current, Shared};

pub(crate) use listen::Listeners;
use request::{Query, query_params, read_body};
use settle::settle;
use sim::sim;
use stream::stream_events;
use txn::{await_txn, cancel, start};

/// Every route: method and path template. The router serves exactly these; the OpenAPI
/// document lists exactly these (a test checks both ways).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/v1/status"),
    ("GET", "/v1/devices"),
    ("POST", "/v1/devices/check"),
    ("POST", "/v1/devices/printer/recover"),
    ("GET", "/v1/drawer"),
    ("POST", "/v1/drawer/open"),
    ("POST", "/v1/transactions"),
    ("GET", "/v1/transactions"),
    ("GET", "/v1/transactions/{id}"),
    ("GET", "/v1/transactions/{id}/evidence"),
    ("POST", "/v1/transactions/{id}/cancel"),
    ("GET", "/v1/reversals"),
    ("POST", "/v1/reversals/retry"),
    ("POST", "/v1/reversals/{id}/requeue"),
    ("POST", "/v1/reversals/{id}/resolve"),
    ("GET", "/v1/receipts/owed"),
    ("POST", "/v1/receipts/reprint"),
    ("GET", "/v1/report"),
    ("POST", "/v1/settlement"),
    ("GET", "/v1/events"),
    ("POST", "/v1/sim/{action}"),
];

/// The OpenAPI document, served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// The simulator controls of `POST /v1/sim/{action}`.
pub const SIM_ACTIONS: &[&str] = &[
    "insert-card",
    "remove-card",
    "mute-card",
    "swipe",
    "unplug-reader",
    "replug-reader",
    "unplug-printer",
    "replug-printer",
    "printer-fault",
    "paper-near-end",
    "drawer",
    "clear-printer",
    "cardholder",
    "host-down",
];

/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024;
/// Longest `wait` for a transaction.
const MAX_WAIT_S: u64 = 300;
/// What the API knows of the lane.
pub(crate) struct LaneInfo {
    pub terminal_id: String,
    pub simulated: bool,
    pub config: Config,
    pub start_timeout: Duration,
}

struct Ctx {
    shared: Arc<Shared>,
    commands: Mutex<Sender<Command>>,
    journal: Mutex<Journal>,
    info: LaneInfo,
    token: String,
    stop: AtomicBool,
}

impl Ctx {
    fn journal(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn send(&self, cmd: Command) -> Result<(), ApiError> {
        self.commands
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(cmd)
            .map_err(|_| ApiError::shutting_down())
    }
}

/// The API as the HTTP front sees it: one per listener.
struct ApiHandler {
    ctx: Arc<Ctx>,
    /// The metrics listener: `/metrics` and `/healthz` only.
    metrics_only: bool,
    needs_token: bool,
}

impl crate::http::Handler for ApiHandler {
    fn class(&self, method: &str, path: &str) -> Class {
        let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, seg.as_slice()) {
            ("GET", ["healthz" | "metrics"]) => Class::Probe,
            _ if self.metrics_only => Class::Normal,
            ("POST", ["v1", "transactions"])
            | ("GET", ["v1", "transactions", _])
            | ("POST", ["v1", "transactions", _, "cancel"]) => Class::Sale,
            ("GET", ["v1", "events"]) => Class::Stream,
            _ => Class::Normal,
        }
    }

    fn handle(&self, req: Request) -> Answer {
        handle(req, &self.ctx, self.metrics_only, self.needs_token)
    }
}

fn respond_json(status: u16, body: &Value) -> Answer {
    Answer::Full(Response::json(status, body))
}

fn respond_error(e: &ApiError) -> Answer {
    Answer::Full(Response::error(e))
}

fn respond_text(status: u16, content_type: &str, text: String) -> Answer {
    Answer::Full(Response::text(status, content_type, text))
}

fn authorized(req: &Request, token: &str) -> bool {
    let Some(value) = req.header("Authorization") else {
        return false;
    };
    let Some((scheme, given)) = value.split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return false;
    }
    // Constant-time comparison: the time does not tell how much of a guess was right. (A
    // guess of another length is refused at once: the length is not the secret.)
    bool::from(given.trim().as_bytes().ct_eq(token.as_bytes()))
}

enum Reply {
    Json(u16, Value),
    Events(Option<u64>),
}

fn handle(req: Request, ctx: &Arc<Ctx>, metrics_only: bool, needs_token: bool) -> Answer {
    let method = req.method.to_ascii_uppercase();
    let url = req.target.clone();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let query = Query(query_params(query));
    log::debug!("API {method} {path}");
    match (method.as_str(), path) {
        ("GET", "/healthz") => {
            let st = ctx.shared.lock();
            let alive = ctx.shared.worker_alive.load(Ordering::SeqCst);
            let body = json!({
                "ok": !st.shutting_down && alive && st.sales_blocked.is_none(),
                "shutting_down": st.shutting_down,
                "sales_blocked": st.sales_blocked,
            });
            drop(st);
            return respond_json(200, &body);
        }
        ("GET", "/metrics") => {
            let st = ctx.shared.lock();
            let alive = ctx.shared.worker_alive.load(Ordering::SeqCst);
            let ok = !st.shutting_down && alive && st.sales_blocked.is_none();
            drop(st);
            ctx.shared.metrics.healthy.set(i64::from(ok));
            return respond_text(
                200,
                crate::metrics::CONTENT_TYPE,
                ctx.shared.metrics.encode(),
            );
        }
        _ if metrics_only => {
            return respond_error(&ApiError::not_found(
                "this listener serves only /metrics and /healthz",
            ));
        }
        ("GET", "/openapi.json") => {
            return respond_text(200, "application/json", OPENAPI.to_string());
        }
        _ => {}
    }
    if needs_token && !authorized(&req, &ctx.token) {
        return respond_error(&ApiError::unauthorized());
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let body = if method == "POST" {
        match read_body(&req) {
            Ok(b) => b,
            Err(e) => return respond_error(&e),
        }
    } else {
        Value::Null
    };
    match route(ctx, &method, &segments, &query, body) {
        Ok(Reply::Json(status, v)) => respond_json(status, &v),
        Ok(Reply::Events(since)) => {
            let since = since.or_else(|| {
                req.header("Last-Event-ID")
                    .and_then(|v| v.trim().parse().ok())
            });
            // Subscribed before the answer's head goes out: a client that saw the head misses
            // no event published after it.
            let sub = ctx.shared.bus.subscribe(since);
            let ctx = Arc::clone(ctx);
            Answer::Stream(Box::new(move |sink: &mut EventSink<'_>| {
                stream_events(sink, &ctx, sub, since);
            }))
        }
        Err(e) => respond_error(&e),
    }
}

fn route(ctx: &Ctx, method: &str, seg: &[&str], q: &Query, body: Value) -> Result<Reply, ApiError> {
    let ok = |v: Value| Ok(Reply::Json(200, v));
    match (method, seg) {
        ("GET", ["v1", "status"]) => ok(status(ctx)?),
        ("GET", ["v1", "devices"]) => ok(json!(ctx.shared.lock().devices)),
        ("POST", ["v1", "devices", "check"]) => {
            let (tx, rx) = channel();
            ctx.send(Command::Check(tx))?;
            let d = rx
                .recv_timeout(Duration::from_secs(120))
                .map_err(|_| ApiError::timeout("the device check did not finish in time"))?;
            ok(json!(d))
        }
        ("POST", ["v1", "devices", "printer", "recover"]) => {
            refuse_if_busy(ctx)?;
            let (tx, rx) = channel();
            ctx.send(Command::RecoverPrinter(tx))?;
            let conditions = rx
                .recv_timeout(Duration::from_secs(60))
                .map_err(|_| ApiError::timeout("the printer recovery did not finish in time"))??;
            ok(json!({ "conditions": conditions }))
        }
        ("GET", ["v1", "drawer"]) => {
            let (tx, rx) = channel();
            ctx.send(Command::DrawerStatus(tx))?;
            ok(rx
                .recv_timeout(Duration::from_secs(30))
                .map_err(|_| ApiError::timeout("the drawer did not answer in time"))??)
        }
        ("POST", ["v1", "drawer", "open"]) => {
            refuse_if_busy(ctx)?;
            let (tx, rx) = channel();
            ctx.send(Command::OpenDrawer(tx))?;
            ok(rx
                .recv_timeout(Duration::from_secs(30))
                .map_err(|_| ApiError::timeout("the drawer did not answer in time"))??)
        }
        ("POST", ["v1", "transactions"]) => start(ctx, body),
        ("GET", ["v1", "transactions"]) => {
            let limit = q.number::<u32>("limit")?.unwrap_or(50).min(1000);
            let state = q.get("state").filter(|s| !s.is_empty());
            let list = match state {
                Some(s) => {
                    let st = State::from_name(s).ok_or_else(|| {
                        ApiError::bad_request(format!("state {s:?} is not a transaction state"))
                    })?;
                    ctx.journal().latest_in_states(&[st], limit)?
                }
                None => ctx.journal().list(limit)?,
            };
            let current = current_id(ctx);
            let v: Vec<Value> = list
                .iter()
                .take(limit as usize)
                .map(|t| view(t, current))
                .collect();
            ok(json!({ "transactions": v }))
        }
        ("GET", ["v1", "transactions", id]) => {
            let id = parse_id(id)?;
            let wait = q.number::<u64>("wait")?.unwrap_or(0);
            if wait > MAX_WAIT_S {
                return Err(ApiError::bad_request(format!(
                    "wait={wait}: at most {MAX_WAIT_S} seconds; ask again after that"
                )));
            }
            ok(await_txn(ctx, id, Duration::from_secs(wait))?)
        }
        ("GET", ["v1", "transactions", id, "evidence"]) => {
            let id = parse_id(id)?;
            let j = ctx.journal();
            ok(pos_terminal::report::evidence(&j, &ctx.info.config, id)?)
        }
        ("POST", ["v1", "transactions", id, "cancel"]) => cancel(ctx, parse_id(id)?),
        ("GET", ["v1", "reversals"]) => {
            let j = ctx.journal();
            let pending = j.in_states(&[State::ReversalPending])?;
            let stuck = j.in_states(&[State::ReversalStuck])?;
            drop(j);
            let current = current_id(ctx);
            ok(json!({
                "pending": pending.iter().map(|t| view(t, current)).collect::<Vec<_>>(),
                "stuck": stuck.iter().map(|t| view(t, current)).collect::<Vec<_>>(),
            }))
        }
        ("POST", ["v1", "reversals", "retry"]) => {
            refuse_if_busy(ctx)?;
            let (tx, rx) = channel();
            ctx.send(Command::RetryReversals(tx))?;
            let d = rx
                .recv_timeout(ctx.info.start_timeout)
                .map_err(|_| ApiError::timeout("the reversal retry did not finish in time"))??;
            ok(json!(d))
        }
        ("POST", ["v1", "reversals", id, verb @ ("requeue" | "resolve")]) => {
            ok(stuck::act(ctx, parse_id(id)?, verb, body)?)
        }
        ("GET", ["v1", "receipts", "owed"]) => {
            let owed = ctx.journal().in_states(&[State::ReceiptOwed])?;
            let current = current_id(ctx);
            ok(json!({ "owed": owed.iter().map(|t| view(t, current)).collect::<Vec<_>>() }))
        }
        ("POST", ["v1", "receipts", "reprint"]) => {
            refuse_if_busy(ctx)?;
            let (tx, rx) = channel();
            ctx.send(Command::Reprint(tx))?;
            let ids = rx
                .recv_timeout(Duration::from_secs(120))
                .map_err(|_| ApiError::timeout("the reprint did not finish in time"))??;
            ok(json!({ "printed": ids }))
        }
        ("GET", ["v1", "report"]) => {
            let since = match q.number::<i64>("since_ms")? {
                Some(s) => s,
                None => {
                    let now = pos_terminal::journal::now_ms();
                    now - now.rem_euclid(86_400_000)
                }
            };
            let j = ctx.journal();
            let r = pos_terminal::report::report(&j, since)?;
            let b = pos_terminal::report::batch_report(&j, pos_terminal::journal::now_ms())?;
            drop(j);
            // As `posctl report --json`: the totals, and the batch picture (open batch, an
            // unfinished settlement, the last settlement and its differences, open
            // pre-authorizations with their age).
            let mut v = json!(r);
            if let Some(o) = v.as_object_mut() {
                o.insert("batch".into(), json!(b));
            }
            ok(v)
        }
        ("POST", ["v1", "settlement"]) => settle(ctx, body),
        ("GET", ["v1", "events"]) => Ok(Reply::Events(q.number::<u64>("since")?)),
        ("POST", ["v1", "sim", action]) => ok(sim(ctx, action, body)?),
        _ => {
            let known = ROUTES.iter().any(|(_, t)| template_matches(t, seg));
            if known {
                Err(ApiError {
                    status: 405,
                    kind: "method_not_allowed",
                    message: format!("{method} is not allowed on /{}", seg.join("/")),
                    current: None,
                })
            } else {
                Err(ApiError {
                    status: 404,
                    kind: "no_route",
                    message: format!("no such route: {method} /{}", seg.join("/")),
                    current: None,
                })
            }
        }
    }
}

fn template_matches(template: &str, seg: &[&str]) -> bool {
    let t: Vec<&str> = template.trim_matches('/').split('/').collect();
    t.len() == seg.len()
        && t.iter()
            .zip(seg)
            .all(|(a, b)| (a.starts_with('{') && a.ends_with('}')) || a == b)
}

fn parse_id(s: &str) -> Result<i64, ApiError> {
    s.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::bad_request(format!("{s:?} is not a transaction id")))
}

fn current_id(ctx: &Ctx) -> Option<i64> {
    ctx.shared.lock().current.as_ref().and_then(|c| c.id)
}

fn refuse_if_busy(ctx: &Ctx) -> Result<(), ApiError> {
    let st = ctx.shared.lock();
    if st.shutting_down {
        return Err(ApiError::shutting_down());
    }
    match &st.current {
        Some(c) => Err(ApiError::busy(c.id)),
        None if st.settling => Err(ApiError::settling()),
        None => Ok(()),
    }
}

/// A transaction as the API shows it: masked PAN only, no hash, no sealed data.
fn view(t: &Txn, current: Option<i64>) -> Value {
    json!({
        "id": t.id,
        "operation": t.kind.name(),
        "state": t.state.name(),
        "done": t.state.is_resting() && current != Some(t.id),
        "amount": t.amount,
        "currency": t.currency,
        "pan_masked": t.pan_masked,
        "entry_mode": t.entry_mode,
        "aid": t.aid,
        "label": t.label,
        "stan": t.stan,
        "rrn": t.rrn,
        "auth_code": t.auth_code,
        "response_code": t.response_code,
        "reason": t.reason,
        "original_id": t.original_id,
        "no_receipt": t.no_receipt,
        "voided": t.voided,
        "completed_by": t.completed_by,
        "reversal_reason": t.reversal_reason,
        "reversal_attempts": t.reversal_attempts,
        "next_attempt_ms": t.next_attempt_ms,
        "receipts_printed": t.receipts_printed,
        "created_ms": t.created_ms,
        "updated_ms": t.updated_ms,
        "summary": pos_terminal::report::explain(t),
    })
}

fn status(ctx: &Ctx) -> Result<Value, ApiError> {
    let j = ctx.journal();
    let pending = j.count_in_states(&[State::ReversalPending])?;
    let stuck = j.count_in_states(&[State::ReversalStuck])?;
    let owed = j.count_in_states(&[State::ReceiptOwed])?;
    drop(j);
    let st = ctx.shared.lock();
    Ok(json!({
        "terminal_id": ctx.info.terminal_id,
        "simulated": ctx.info.simulated,
        "version": env!("CARGO_PKG_VERSION"),
        "busy": st.current.is_some(),
        "current": st.current.as_ref().map(|c: &Current| json!({
            "id": c.id,
            "operation": c.operation.name(),
            "state": c.state.map(State::name),
        })),
        "shutting_down": st.shutting_down,
        "settling": st.settling,
        "devices": st.devices,
        "reversals_pending": pending,
        "reversals_stuck": stuck,
        "receipts_owed": owed,
        "cardholder": if st.cardholder_auto { "auto" } else { "manual" },
        "last_event": ctx.shared.bus.last_seq(),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_segments() {
        assert!(template_matches(
            "/v1/transactions/{id}",
            &["v1", "transactions", "7"]
        ));
        assert!(!template_matches(
            "/v1/transactions/{id}",
            &["v1", "transactions"]
        ));
        assert!(template_matches(
            "/v1/sim/{action}",
            &["v1", "sim", "swipe"]
        ));
    }
}
