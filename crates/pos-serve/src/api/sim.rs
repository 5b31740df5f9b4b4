//! The simulator controls of `POST /v1/sim/{action}` (a simulated lane only).

use pos_emv::profile_card::Profile;
use pos_hal::CardSpec;
use pos_terminal::inject::InjectedFault;
use serde::Deserialize;
use serde_json::{Value, json};

use super::request::body_as;
use super::{Ctx, SIM_ACTIONS};
use crate::ApiError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SimBody {
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    fault: Option<String>,
    #[serde(default)]
    on: Option<bool>,
    #[serde(default)]
    mode: Option<String>,
}

pub(super) fn sim(ctx: &Ctx, action: &str, body: Value) -> Result<Value, ApiError> {
    let Some(lane) = ctx.shared.sim.as_ref() else {
        return Err(ApiError::not_simulated());
    };
    if !SIM_ACTIONS.contains(&action) {
        return Err(ApiError::not_found(format!(
            "no simulator action {action:?}; one of: {}",
            SIM_ACTIONS.join(", ")
        )));
    }
    let b: SimBody = if body.is_null() {
        SimBody::default()
    } else {
        body_as(body)?
    };
    let card: CardSpec = match &b.profile {
        Some(p) => p
            .parse::<Profile>()
            .map_err(|e| ApiError::bad_request(e.to_string()))?
            .into(),
        None => lane.card(),
    };
    let lane_err = |e: pos_lane::LaneError| ApiError {
        status: 409,
        kind: "device",
        message: e.to_string(),
        current: None,
    };
    let on = b.on.unwrap_or(true);
    match action {
        "insert-card" => lane.insert_card(card).map_err(lane_err)?,
        "remove-card" => lane.remove_card().map_err(lane_err)?,
        "mute-card" => lane.mute_card().map_err(lane_err)?,
        "swipe" => lane.swipe(card).map_err(lane_err)?,
        "unplug-reader" => lane.unplug_reader().map_err(lane_err)?,
        "replug-reader" => lane.replug_reader().map_err(lane_err)?,
        "unplug-printer" => lane.unplug_printer().map_err(lane_err)?,
        "replug-printer" => lane.replug_printer().map_err(lane_err)?,
        "printer-fault" => {
            let name = b.fault.as_deref().unwrap_or("");
            let fault: InjectedFault = name.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "fault {name:?}: one of paper-out, cover-open, cutter-jam, printer-offline"
                ))
            })?;
            lane.printer_fault(&fault, false).map_err(lane_err)?;
        }
        "paper-near-end" => lane.set_printer_near_end(on).map_err(lane_err)?,
        "drawer" => lane.set_drawer_open(on).map_err(lane_err)?,
        "clear-printer" => lane.clear_printer_faults().map_err(lane_err)?,
        "cardholder" => {
            let auto = match b.mode.as_deref() {
                Some("auto") => true,
                Some("manual") => false,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "mode {other:?}: auto (the simulated cardholder inserts or swipes when asked) or manual"
                    )));
                }
            };
            ctx.shared.lock().cardholder_auto = auto;
        }
        "host-down" => match ctx.shared.host.as_ref() {
            Some(h) => h
                .set_down(on)
                .map_err(|e| ApiError::internal(format!("the fake host: {e}")))?,
            None => {
                return Err(ApiError::not_found(
                    "this lane does not use the built-in fake host",
                ));
            }
        },
        _ => {
            return Err(ApiError::not_found(format!(
                "no simulator action {action:?}"
            )));
        }
    }
    Ok(json!({ "done": action }))
}
