//! Settlement on a schedule (`[settlement] at = "23:30"`): when an idle lane settles.
//!
//! The decisions only, without threads or sleeps, so they are tested with any clock: the
//! caller (the `posctl serve` lane worker, between transactions) asks [`SettlementSchedule::due`]
//! with the time of its [`crate::time::Clock`] and when the journal's latest settlement
//! started, settles, and reports the outcome. The rules:
//!
//! - each local day has one slot, at `at`; from the slot to the end of the day the
//!   settlement is due, unless a settlement (scheduled or by hand) started at or after the
//!   slot: never twice a day, also across a restart (the journal says so);
//! - a sale running at the slot: try again `retry_s` later;
//! - a settlement that could not be done (no answer, a stuck reversal): try again later,
//!   the wait doubling up to an hour; an unfinished settlement is resumed, never restarted;
//! - a slot missed altogether (the service was stopped until after midnight) is not made
//!   up: the next day's slot settles everything since.

use crate::config::SettlementConfig;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;
/// The longest wait between attempts after failures.
const MAX_RETRY_MS: i64 = 60 * MINUTE_MS;

/// When an idle lane settles by itself, and what it did so far today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementSchedule {
    /// Minutes after local midnight.
    at_minutes: i64,
    /// Local time minus UTC.
    offset_ms: i64,
    /// First wait after a busy lane or a failure.
    retry_ms: i64,
    /// No attempt before this (ms since the epoch).
    not_before_ms: i64,
    /// Failures since the last success (for the doubling wait).
    failures: u32,
    /// The slot settled by this schedule (ms since the epoch).
    done_slot: Option<i64>,
}

/// Minutes after midnight of `HH:MM`.
///
/// # Errors
/// A sentence naming the key when it is not a 24-hour `HH:MM`.
pub fn parse_time_of_day(at: &str) -> Result<u32, String> {
    let bad = || format!("settlement.at {at:?} is not a time of day HH:MM (24 h), e.g. \"23:30\"");
    let (h, m) = at.trim().split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl SettlementSchedule {
    /// The schedule of `[settlement]`; `None` when `at` is not set (off).
    ///
    /// # Errors
    /// A sentence naming the key: `at` not `HH:MM`, an offset beyond ±14 h, `retry_s` 0.
    pub fn from_config(c: &SettlementConfig) -> Result<Option<SettlementSchedule>, String> {
        let Some(at) = c.at.as_deref() else {
            return Ok(None);
        };
        let at_minutes = parse_time_of_day(at)?;
        if c.utc_offset_minutes.abs() > 14 * 60 {
            return Err(format!(
                "settlement.utc_offset_minutes {} is beyond ±840 (±14 h)",
                c.utc_offset_minutes
            ));
        }
        if c.retry_s == 0 {
            return Err("settlement.retry_s must be at least 1".into());
        }
        Ok(Some(SettlementSchedule {
            at_minutes: i64::from(at_minutes),
            offset_ms: i64::from(c.utc_offset_minutes) * MINUTE_MS,
            retry_ms: i64::try_from(c.retry_s)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000)
                .min(MAX_RETRY_MS),
            not_before_ms: i64::MIN,
            failures: 0,
            done_slot: None,
        }))
    }

    /// The slot (ms since the epoch) of the local day `now_ms` falls in.
    pub fn slot_of_day(&self, now_ms: i64) -> i64 {
        let local = now_ms.saturating_add(self.offset_ms);
        let midnight = local - local.rem_euclid(DAY_MS);
        midnight + self.at_minutes * MINUTE_MS - self.offset_ms
    }

    /// The slot to settle now, if due: at or past today's slot, not waiting after a busy
    /// lane or a failure, and no settlement started at or after the slot
    /// (`last_started_ms`: when the journal's latest settlement started).
    pub fn due(&self, now_ms: i64, last_started_ms: Option<i64>) -> Option<i64> {
        let slot = self.slot_of_day(now_ms);
        let settled = self.done_slot == Some(slot) || last_started_ms.is_some_and(|t| t >= slot);
        (now_ms >= slot && now_ms >= self.not_before_ms && !settled).then_some(slot)
    }

    /// A sale ran (or was starting) when the settlement was due: try again after `retry_s`.
    /// Returns when.
    pub fn busy(&mut self, now_ms: i64) -> i64 {
        self.not_before_ms = now_ms.saturating_add(self.retry_ms);
        self.not_before_ms
    }

    /// The settlement of `slot` closed the batch: not again that day.
    pub fn settled(&mut self, slot: i64) {
        self.done_slot = Some(slot);
        self.failures = 0;
        self.not_before_ms = i64::MIN;
    }

    /// The settlement of the slot could not be done: try again later, the wait doubling
    /// after each failure up to an hour. Returns when.
    pub fn failed(&mut self, now_ms: i64) -> i64 {
        let wait = self
            .retry_ms
            .saturating_mul(1_i64 << self.failures.min(12))
            .min(MAX_RETRY_MS);
        self.failures = self.failures.saturating_add(1);
        self.not_before_ms = now_ms.saturating_add(wait);
        self.not_before_ms
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::time::days_from_civil;

    /// ms since the epoch of `y-m-d hh:mm` UTC.
    fn utc(y: i64, m: u32, d: u32, hh: i64, mm: i64) -> i64 {
        days_from_civil(y, m, d) * DAY_MS + hh * 3_600_000 + mm * MINUTE_MS
    }

    fn schedule(at: &str, offset: i32, retry_s: u64) -> SettlementSchedule {
        SettlementSchedule::from_config(&SettlementConfig {
            at: Some(at.into()),
            utc_offset_minutes: offset,
            retry_s,
        })
        .unwrap()
        .unwrap()
    }

    #[test]
    fn off_by_default_and_bad_values_are_named() {
        assert_eq!(
            SettlementSchedule::from_config(&SettlementConfig::default()),
            Ok(None)
        );
        for bad in [
            "24:00", "23:60", "2330", "", "7:5", "ab:cd", "-1:30", "23:30:00",
        ] {
            let e = SettlementSchedule::from_config(&SettlementConfig {
                at: Some(bad.into()),
                ..SettlementConfig::default()
            })
            .unwrap_err();
            assert!(e.contains("settlement.at"), "{bad}: {e}");
        }
        assert_eq!(parse_time_of_day("7:05"), Ok(425));
        assert_eq!(parse_time_of_day("00:00"), Ok(0));
        let e = SettlementSchedule::from_config(&SettlementConfig {
            at: Some("23:30".into()),
            utc_offset_minutes: 900,
            retry_s: 60,
        })
        .unwrap_err();
        assert!(e.contains("utc_offset_minutes"), "{e}");
        let e = SettlementSchedule::from_config(&SettlementConfig {
            at: Some("23:30".into()),
            utc_offset_minutes: 0,
            retry_s: 0,
        })
        .unwrap_err();
        assert!(e.contains("retry_s"), "{e}");
    }

    #[test]
    fn due_from_the_slot_to_the_end_of_the_day_once() {
        let mut s = schedule("23:30", 0, 60);
        let slot = utc(2031, 5, 6, 23, 30);
        assert_eq!(s.slot_of_day(utc(2031, 5, 6, 0, 1)), slot);
        assert_eq!(s.due(utc(2031, 5, 6, 23, 29), None), None, "not yet");
        assert_eq!(s.due(slot, None), Some(slot));
        assert_eq!(s.due(utc(2031, 5, 6, 23, 59), None), Some(slot));
        s.settled(slot);
        assert_eq!(s.due(utc(2031, 5, 6, 23, 45), None), None, "never twice");
        // The next day: due again at its slot, not before.
        assert_eq!(s.due(utc(2031, 5, 7, 0, 10), None), None);
        assert_eq!(
            s.due(utc(2031, 5, 7, 23, 31), None),
            Some(utc(2031, 5, 7, 23, 30))
        );
    }

    #[test]
    fn a_settlement_in_the_journal_after_the_slot_counts_across_a_restart() {
        // A fresh schedule (a restart) sees the journal's latest settlement.
        let s = schedule("23:30", 0, 60);
        let now = utc(2031, 5, 6, 23, 40);
        assert_eq!(s.due(now, Some(utc(2031, 5, 6, 23, 31))), None);
        // One by hand before the slot does not: sales may have come since.
        assert_eq!(
            s.due(now, Some(utc(2031, 5, 6, 18, 0))),
            Some(utc(2031, 5, 6, 23, 30))
        );
    }

    #[test]
    fn a_busy_lane_is_tried_again_a_little_later() {
        let mut s = schedule("23:30", 0, 60);
        let slot = utc(2031, 5, 6, 23, 30);
        assert_eq!(s.busy(slot), slot + 60_000);
        assert_eq!(s.due(slot + 59_999, None), None);
        assert_eq!(s.due(slot + 60_000, None), Some(slot));
    }

    #[test]
    fn failures_wait_longer_each_time_up_to_an_hour_and_a_success_ends_them() {
        let mut s = schedule("20:00", 0, 600);
        let slot = utc(2031, 5, 6, 20, 0);
        let mut now = slot;
        let mut waits = Vec::new();
        for _ in 0..5 {
            let next = s.failed(now);
            assert_eq!(s.due(next - 1, None), None);
            assert_eq!(s.due(next, None), Some(slot));
            waits.push((next - now) / MINUTE_MS);
            now = next;
        }
        assert_eq!(waits, [10, 20, 40, 60, 60]);
        s.settled(slot);
        assert_eq!(s.due(now, None), None);
        // The next day starts afresh.
        let tomorrow = utc(2031, 5, 7, 20, 0);
        assert_eq!(s.due(tomorrow, None), Some(tomorrow));
        assert_eq!(s.failed(tomorrow) - tomorrow, 10 * MINUTE_MS);
    }

    #[test]
    fn the_local_time_is_the_offset_s() {
        // 23:30 at UTC+8 is 15:30 UTC; 00:30 at UTC-5 is 05:30 UTC.
        let east = schedule("23:30", 480, 60);
        assert_eq!(
            east.slot_of_day(utc(2031, 5, 6, 15, 0)),
            utc(2031, 5, 6, 15, 30)
        );
        // 17:00 UTC is already the next local day (01:00 on the 7th): its slot is later.
        assert_eq!(
            east.slot_of_day(utc(2031, 5, 6, 17, 0)),
            utc(2031, 5, 7, 15, 30)
        );
        let west = schedule("00:30", -300, 60);
        assert_eq!(
            west.slot_of_day(utc(2031, 5, 6, 12, 0)),
            utc(2031, 5, 6, 5, 30)
        );
        assert_eq!(west.due(utc(2031, 5, 6, 5, 29), None), None, "00:29 local");
    }
}
