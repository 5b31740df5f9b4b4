//! `POST /v1/reversals/{id}/requeue` and `POST /v1/reversals/{id}/resolve`: what an operator
//! does with a stuck reversal after calling the acquirer (send it again; record that the
//! acquirer reversed it on its side).

use std::sync::mpsc::channel;

use pos_terminal::State;
use serde::Deserialize;
use serde_json::Value;

use super::request::body_as;
use super::{Ctx, current_id, refuse_if_busy, view};
use crate::ApiError;
use crate::worker::{Command, StuckAction};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequeueBody {
    /// Why it may go again (the acquirer's answer), journaled.
    note: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    /// The acquirer's reference for the reversal it made, journaled.
    reference: String,
}

/// The operator's action on the stuck reversal `id`: 404 for an unknown transaction, 409
/// `not_stuck` for one that is not a stuck reversal, 400 for words that cannot be journaled,
/// 409 busy while a transaction runs; otherwise the transaction as it is now.
pub(super) fn act(ctx: &Ctx, id: i64, verb: &str, body: Value) -> Result<Value, ApiError> {
    let action = match verb {
        "requeue" => StuckAction::Requeue(body_as::<RequeueBody>(body)?.note),
        _ => StuckAction::Resolve(body_as::<ResolveBody>(body)?.reference),
    };
    let t = ctx.journal().get(id)?;
    if t.state != State::ReversalStuck {
        return Err(ApiError::new(
            409,
            "not_stuck",
            format!(
                "transaction {id} is {}, not reversal_stuck: only a stuck reversal can be \
                 requeued or resolved",
                t.state
            ),
        ));
    }
    refuse_if_busy(ctx)?;
    let (tx, rx) = channel();
    ctx.send(Command::Stuck {
        id,
        action,
        reply: tx,
    })?;
    rx.recv_timeout(ctx.info.start_timeout)
        .map_err(|_| ApiError::timeout("the stuck reversal was not updated in time"))??;
    let t = ctx.journal().get(id)?;
    Ok(view(&t, current_id(ctx)))
}
