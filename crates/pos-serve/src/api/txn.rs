//! Starting, awaiting and cancelling a transaction.

use std::sync::atomic::Ordering;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use pos_acquirer::Operation;
use pos_terminal::inject::{InjectedFault, Injection};
use pos_terminal::{CardEntry, State, TxnRequest};
use serde::Deserialize;
use serde_json::{Value, json};

use super::request::body_as;
use super::{Ctx, MAX_WAIT_S, Reply, current_id, view};
use crate::ApiError;
use crate::worker::{Command, Current};

/// A long poll looks at its transaction again after this long without a change
/// notification: a safety net only (every state change notifies; a poll that finds its
/// transaction final on this timer is counted in `pos_api_wait_missed_wakeups_total`).
const WAIT_SAFETY_NET: Duration = Duration::from_secs(5);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    #[serde(default = "default_operation")]
    operation: String,
    #[serde(default)]
    amount: Option<u64>,
    #[serde(default)]
    entry: Option<String>,
    #[serde(default)]
    original: Option<i64>,
    #[serde(default)]
    no_receipt: bool,
    #[serde(default)]
    inject: Vec<String>,
    #[serde(default)]
    wait: Option<u64>,
}

fn default_operation() -> String {
    "sale".into()
}

fn operation(name: &str) -> Result<Operation, ApiError> {
    pos_terminal::journal::op_from_name(name).ok_or_else(|| {
        ApiError::bad_request(format!(
            "operation {name:?}: one of sale, preauth, completion, void, refund"
        ))
    })
}

pub(super) fn start(ctx: &Ctx, body: Value) -> Result<Reply, ApiError> {
    let b: StartBody = body_as(body)?;
    let op = operation(&b.operation)?;
    if b.wait.is_some_and(|w| w > MAX_WAIT_S) {
        return Err(ApiError::bad_request(format!(
            "wait: at most {MAX_WAIT_S} seconds"
        )));
    }
    let amount = match (op, b.amount) {
        (Operation::Void, a) => a.unwrap_or(0),
        (_, Some(a)) => a,
        (_, None) => {
            return Err(ApiError::bad_request(
                "amount (minor units, e.g. 1250 for 12.50) is required",
            ));
        }
    };
    let entry = match b.entry.as_deref() {
        None | Some("chip") => CardEntry::Chip,
        Some("swipe") => CardEntry::Swipe,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "entry {other:?}: chip or swipe"
            )));
        }
    };
    let inject: Vec<Injection> = b
        .inject
        .iter()
        .map(|s| s.parse::<Injection>().map_err(ApiError::bad_request))
        .collect::<Result<_, _>>()?;
    if !inject.is_empty() && !ctx.info.simulated {
        return Err(ApiError::not_simulated());
    }
    if inject.iter().any(|i| i.fault == InjectedFault::Crash) {
        return Err(ApiError::bad_request(
            "crash is not injected through the API (it would kill the service); use posctl",
        ));
    }
    let req = TxnRequest {
        operation: op,
        amount,
        entry,
        original: b.original,
        no_receipt: b.no_receipt,
    };
    let (tx, rx) = channel();
    {
        let mut st = ctx.shared.lock();
        if st.shutting_down || !ctx.shared.worker_alive.load(Ordering::SeqCst) {
            return Err(ApiError::shutting_down());
        }
        if let Some(c) = &st.current {
            return Err(ApiError::busy(c.id));
        }
        if st.settling {
            return Err(ApiError::settling());
        }
        st.abandoned = false;
        st.current = Some(Current {
            id: None,
            operation: op,
            state: None,
        });
        st.pending_start = Some(tx);
    }
    if let Err(e) = ctx.send(Command::Start { req, inject }) {
        let mut st = ctx.shared.lock();
        st.current = None;
        st.pending_start = None;
        return Err(e);
    }
    let id = match rx.recv_timeout(ctx.info.start_timeout) {
        Ok(r) => r?,
        Err(_) => {
            let mut st = ctx.shared.lock();
            match st.pending_start.take() {
                // The id came just now: the transaction did start.
                None => match rx.try_recv() {
                    Ok(r) => r?,
                    Err(_) => return Err(ApiError::internal("the transaction's start was lost")),
                },
                // Not started: make sure it never does, now that this client gave up.
                Some(_) => {
                    st.abandoned = true;
                    if let Some(h) = ctx.shared.cancel.get() {
                        h.request();
                    }
                    return Err(ApiError::timeout(
                        "the lane did not start the transaction in time, so it will not be started; see GET /v1/status",
                    ));
                }
            }
        }
    };
    match b.wait.filter(|w| *w > 0) {
        Some(w) => Ok(Reply::Json(
            200,
            await_txn(ctx, id, Duration::from_secs(w))?,
        )),
        None => {
            let t = ctx.journal().get(id)?;
            let mut v = view(&t, Some(id));
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "links".into(),
                    json!({
                        "self": format!("/v1/transactions/{id}"),
                        "await": format!("/v1/transactions/{id}?wait=60"),
                        "cancel": format!("/v1/transactions/{id}/cancel"),
                        "events": "/v1/events",
                    }),
                );
            }
            Ok(Reply::Json(202, v))
        }
    }
}

/// The transaction, once it is done (resting and no longer running) or `wait` has passed.
///
/// Answers as soon as the state is final: the change count is read before the journal, so a
/// change that lands between the look and the wait ends the wait at once (see
/// [`crate::notify`]); no timer is involved on that path.
pub(super) fn await_txn(ctx: &Ctx, id: i64, wait: Duration) -> Result<Value, ApiError> {
    let end = Instant::now() + wait;
    let mut on_timer = false;
    loop {
        let seen = ctx.shared.changed.generation();
        let t = ctx.journal().get(id)?;
        let current = current_id(ctx);
        let v = view(&t, current);
        let done = v.get("done").and_then(Value::as_bool).unwrap_or(false);
        // The lane stopped taking sales while this one was in flight (its journal cannot be
        // written): it will not move until the journal does, so say so now rather than at
        // the end of the wait.
        let blocked = ctx.shared.lock().sales_blocked.clone();
        if let (false, true, Some(why)) = (done, current != Some(id), blocked) {
            return Err(ApiError::new(
                503,
                "sales_blocked",
                format!("transaction {id} stopped at {}: {why}", t.state.name()),
            ));
        }
        let now = Instant::now();
        if done || now >= end || ctx.stop.load(Ordering::SeqCst) {
            if done && on_timer {
                log::error!("transaction {id}: a long poll missed its change notification");
                ctx.shared.metrics.api.wait_missed_wakeups.inc();
            }
            return Ok(v);
        }
        let until = end.min(now + WAIT_SAFETY_NET);
        on_timer = !ctx.shared.changed.wait_past(seen, until) && until < end;
    }
}

pub(super) fn cancel(ctx: &Ctx, id: i64) -> Result<Reply, ApiError> {
    {
        let st = ctx.shared.lock();
        if let Some(c) = st.current.as_ref().filter(|c| c.id == Some(id)) {
            let accepted = ctx.shared.cancel.get().is_some_and(|h| h.request());
            if !accepted {
                return Err(ApiError::too_late(format!(
                    "transaction {id} is {}: its request is armed and may be with the host, so it runs to its end; void or refund it afterwards",
                    c.state.map(State::name).unwrap_or("starting")
                )));
            }
            return Ok(Reply::Json(
                202,
                json!({
                    "id": id,
                    "cancel": "requested",
                    "message": "the transaction stops before anything is sent; await it for the outcome",
                }),
            ));
        }
    }
    let t = ctx.journal().get(id)?;
    Err(ApiError::too_late(format!(
        "transaction {id} is not in progress: it ended {}",
        t.state.name()
    )))
}
