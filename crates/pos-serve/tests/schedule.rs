//! Settlement on a schedule (`[settlement] at`), on a manual clock: the test moves the
//! time, and `POST /v1/devices/check` (which runs the worker's supervision tick, the
//! schedule included, before it answers) makes each step happen in order: no sleeps, no
//! timed assertions.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Rig, is_type, wait_event};
use pos_terminal::time::{Clock, human};
use serde_json::{Value, json};

const MINUTE: i64 = 60_000;
const DAY: i64 = 24 * 60 * MINUTE;

/// ms since the epoch of `hh:mm` UTC thirty days from now: after the journal's own
/// (system clock) times, so only the schedule's clock decides, and well before the profile
/// cards expire (a fixed date would one day make their sales decline).
fn day_at(hh: i64, mm: i64) -> i64 {
    let today = pos_terminal::journal::now_ms().div_euclid(DAY);
    (today + 30) * DAY + hh * 60 * MINUTE + mm * MINUTE
}

/// `YYYY-MM-DD hh:mm` of `ms`, as the journal's notes show it.
fn minute(ms: i64) -> String {
    human(ms)[..16].to_string()
}

/// The worker's tick has run (with the clock as it is now) when this returns.
fn tick(rig: &Rig) {
    let r = rig.client.post("/v1/devices/check", json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
}

fn settlements(rig: &Rig) -> Vec<(i64, String)> {
    let c = rusqlite::Connection::open(rig.journal_path()).unwrap();
    let mut st = c
        .prepare("SELECT batch, state FROM settlement ORDER BY id")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The scheduled settlements' outcomes, as journaled.
fn notes(rig: &Rig) -> Vec<String> {
    let c = rusqlite::Connection::open(rig.journal_path()).unwrap();
    let mut st = c
        .prepare("SELECT detail FROM events WHERE kind = 'settlement' ORDER BY rowid")
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn batch(rig: &Rig) -> Value {
    rig.client.get("/v1/report").json()["batch"].clone()
}

#[test]
fn the_lane_settles_at_the_configured_time_once_a_day() {
    let clock = Clock::manual(day_at(23, 29));
    let slot = minute(day_at(23, 30));
    let rig = Rig::with_clock(clock.clone(), |c| {
        c.settlement.at = Some("23:30".into());
    });
    let events = rig.client.events(None);
    let sale = rig.sale(1500, json!({}));
    assert_eq!(sale["state"], "completed", "{sale:#}");
    tick(&rig);
    assert!(settlements(&rig).is_empty(), "not before 23:30");

    clock.advance(2 * MINUTE);
    tick(&rig);
    assert_eq!(settlements(&rig), [(1, "balanced".to_string())]);
    let b = batch(&rig);
    assert_eq!(b["open_batch"], 2, "{b:#}");
    assert_eq!(b["last_settlement"]["totals"][0]["debits"]["amount"], 1500);
    let n = notes(&rig);
    assert_eq!(n.len(), 1, "{n:#?}");
    assert!(
        n[0].contains(&format!("scheduled settlement ({slot}")) && n[0].contains("balanced"),
        "{n:#?}"
    );
    let ev = wait_event(&events, Duration::from_secs(30), "settlement", |e| {
        is_type(e, "settlement")
    });
    assert!(
        ev["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("scheduled for {slot}")),
        "{ev:#}"
    );

    // Later the same day, with a sale in the new batch: never twice a day.
    clock.advance(10 * MINUTE);
    rig.sale(700, json!({}));
    tick(&rig);
    clock.advance(20 * MINUTE);
    tick(&rig);
    assert_eq!(settlements(&rig).len(), 1);

    // The next day after its slot (00:11 is too early): batch 2 settles.
    clock.advance(10 * MINUTE);
    tick(&rig);
    assert_eq!(settlements(&rig).len(), 1, "00:11 the next day");
    clock.advance(23 * 60 * MINUTE + 20 * MINUTE); // 23:31 the next day
    tick(&rig);
    assert_eq!(
        settlements(&rig),
        [(1, "balanced".to_string()), (2, "balanced".to_string())]
    );
    let b = batch(&rig);
    assert_eq!(b["last_settlement"]["totals"][0]["debits"]["amount"], 700);
    assert_eq!(notes(&rig).len(), 2);
}

#[test]
fn a_host_outage_at_the_time_is_retried_later_and_the_same_settlement_finishes() {
    let clock = Clock::manual(day_at(21, 0));
    let retry = minute(day_at(22, 3));
    let rig = Rig::with_clock(clock.clone(), |c| {
        c.settlement.at = Some("22:00".into());
        c.settlement.retry_s = 120;
    });
    let c = &rig.client;
    rig.sale(990, json!({}));
    assert_eq!(
        c.post("/v1/sim/host-down", json!({ "on": true })).status,
        200
    );
    clock.advance(61 * MINUTE);
    tick(&rig);
    assert_eq!(settlements(&rig), [(1, "requested".to_string())]);
    let b = batch(&rig);
    assert_eq!(b["unfinished_settlement"]["batch"], 1, "{b:#}");
    let n = notes(&rig);
    assert!(
        n.len() == 1
            && n[0].contains("not done")
            && n[0].contains(&format!("trying again at {retry}")),
        "{n:#?}"
    );

    // The host is back; not tried again before the retry time.
    assert_eq!(
        c.post("/v1/sim/host-down", json!({ "on": false })).status,
        200
    );
    tick(&rig);
    assert_eq!(settlements(&rig), [(1, "requested".to_string())]);
    clock.advance(2 * MINUTE);
    tick(&rig);
    assert_eq!(settlements(&rig), [(1, "balanced".to_string())]);
    let n = notes(&rig);
    assert_eq!(n.len(), 2, "{n:#?}");
    assert!(n[1].contains("balanced"), "{n:#?}");
    assert!(batch(&rig)["unfinished_settlement"].is_null());
}
