//! `POST /v1/settlement`: the open batch settled with the host (end of day).

use std::sync::atomic::Ordering;
use std::sync::mpsc::channel;
use std::time::Duration;

use pos_terminal::journal::SettlementState;
use serde::Deserialize;
use serde_json::{Value, json};

use super::request::body_as;
use super::{Ctx, Reply};
use crate::ApiError;
use crate::worker::Command;

/// How long the API waits for a settlement: a batch upload is one 0320 per transaction.
/// Past it the client is told so; the settlement goes on (the event stream and
/// `GET /v1/report` show its end).
const SETTLE_WAIT: Duration = Duration::from_secs(600);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettleBody {
    /// Settle past reversals the host keeps rejecting (each listed as a known difference).
    #[serde(default)]
    force: bool,
}

/// Refused while a transaction runs or another settlement is asked for (409 busy, with the
/// reason); otherwise the worker settles between transactions and the answer is the
/// settlement: `balanced`, or the differences found, each as `GET /v1/report` shows it.
pub(super) fn settle(ctx: &Ctx, body: Value) -> Result<Reply, ApiError> {
    let b: SettleBody = body_as(body)?;
    {
        let mut st = ctx.shared.lock();
        if st.shutting_down || !ctx.shared.worker_alive.load(Ordering::SeqCst) {
            return Err(ApiError::shutting_down());
        }
        if let Some(c) = &st.current {
            let mut e = ApiError::busy(c.id);
            e.message = match c.id {
                Some(id) => format!(
                    "transaction {id} is in progress on this lane: a settlement never starts \
                     while a sale runs; settle once it has ended"
                ),
                None => "a transaction is starting on this lane: a settlement never starts \
                         while a sale runs; settle once it has ended"
                    .into(),
            };
            return Err(e);
        }
        if st.settling {
            return Err(ApiError::settling());
        }
        if let Some(why) = &st.sales_blocked {
            return Err(ApiError::from(pos_terminal::TerminalError::Blocked(
                why.clone(),
            )));
        }
        st.settling = true;
    }
    let (tx, rx) = channel();
    if let Err(e) = ctx.send(Command::Settle {
        force: b.force,
        reply: tx,
    }) {
        ctx.shared.lock().settling = false;
        return Err(e);
    }
    let report = rx.recv_timeout(SETTLE_WAIT).map_err(|_| {
        ApiError::timeout(
            "the settlement did not end in time; it goes on: the event stream (settlement) and \
             GET /v1/report show its end",
        )
    })??;
    let mut v = json!(report);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "balanced".into(),
            json!(report.state == SettlementState::Balanced),
        );
        o.insert(
            "evidence".into(),
            json!(format!("posctl journal settlement {}", report.id)),
        );
    }
    Ok(Reply::Json(200, v))
}
