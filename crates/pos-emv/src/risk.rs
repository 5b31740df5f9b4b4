//! Terminal risk management (EMV 4.3 Book 3 10.6): floor limit, random transaction
//! selection and velocity checking, recorded in the TVR.
//!
//! Performed when the AIP asks for it ([`required_by_aip`]); the caller decides.
//!
//! - Floor limit (10.6.1): amount >= floor limit -> [`Tvr::FLOOR_LIMIT_EXCEEDED`].
//! - Random selection (10.6.2), when configured, for an amount under the floor limit: with a
//!   random number `r` in 1..=99, an amount under the threshold is selected when
//!   `r <= target percent`; an amount from the threshold up to the floor limit when `r` is
//!   at most the transaction target percent, which rises linearly from the target percent
//!   at the threshold to the maximum target percent at the floor limit (compared exactly,
//!   without rounding) -> [`Tvr::RANDOMLY_SELECTED_ONLINE`].
//! - Velocity checking (10.6.3), when the card has the lower (`9F14`) and upper (`9F23`)
//!   consecutive offline limits: the number of offline transactions since the last online
//!   one is ATC (`9F36`) minus Last Online ATC Register (`9F13`); above the lower limit ->
//!   [`Tvr::LOWER_OFFLINE_LIMIT_EXCEEDED`], above the upper limit ->
//!   [`Tvr::UPPER_OFFLINE_LIMIT_EXCEEDED`]. Either counter unavailable, or an ATC below the
//!   last online ATC, sets both bits. A last online ATC of zero -> [`Tvr::NEW_CARD`].
//!
//! [`Tsi::TERMINAL_RISK_MANAGEMENT_PERFORMED`] is set.

use crate::read::CardData;
use crate::tags;
use crate::tlv::Tag;
use crate::tvr::{Tsi, Tvr};

/// `9F14` Lower Consecutive Offline Limit.
pub const LOWER_CONSECUTIVE_OFFLINE_LIMIT: Tag = Tag::new(0x9F14);
/// `9F23` Upper Consecutive Offline Limit.
pub const UPPER_CONSECUTIVE_OFFLINE_LIMIT: Tag = Tag::new(0x9F23);

/// Random transaction selection parameters (terminal configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RandomSelection {
    /// Target percentage (0..=99) for amounts under the threshold.
    pub target_percent: u8,
    /// Maximum target percentage (0..=99), reached at the floor limit (taken as the
    /// target percentage when smaller).
    pub max_target_percent: u8,
    /// Threshold value for biased random selection, minor units (below the floor limit).
    pub threshold: u64,
}

/// Terminal risk management parameters (terminal configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RiskParams {
    /// Terminal floor limit, minor units.
    pub floor_limit: u64,
    /// Random transaction selection, `None` when the terminal does not do it.
    pub random_selection: Option<RandomSelection>,
}

/// The card's counters for velocity checking (from GET DATA `9F36` and `9F13`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Counters {
    /// Application Transaction Counter `9F36`; `None` when not retrieved (the card's
    /// records are looked at then).
    pub atc: Option<u16>,
    /// Last Online ATC Register `9F13`; `None` when not retrieved (the card's records are
    /// looked at then).
    pub last_online_atc: Option<u16>,
}

/// True when the AIP (`82`) says terminal risk management is to be performed (byte 1 b4).
pub fn required_by_aip(aip: [u8; 2]) -> bool {
    aip[0] & 0x08 != 0
}

/// Terminal risk management (see the [module](self) documentation). `random` is called at
/// most once, only for random selection, and must return a number in 1..=99.
pub fn terminal_risk_management(
    amount: u64,
    params: &RiskParams,
    card: &CardData,
    counters: Counters,
    random: &mut dyn FnMut() -> u8,
    tvr: &mut Tvr,
    tsi: &mut Tsi,
) {
    if amount >= params.floor_limit {
        *tvr |= Tvr::FLOOR_LIMIT_EXCEEDED;
    } else if let Some(rs) = params.random_selection {
        if randomly_selected(amount, params.floor_limit, &rs, random()) {
            *tvr |= Tvr::RANDOMLY_SELECTED_ONLINE;
        }
    }
    velocity(card, counters, tvr);
    *tsi |= Tsi::TERMINAL_RISK_MANAGEMENT_PERFORMED;
}

/// Random selection of an amount below `floor_limit` with the random number `r`.
fn randomly_selected(amount: u64, floor_limit: u64, rs: &RandomSelection, r: u8) -> bool {
    let target = u128::from(rs.target_percent);
    let max = u128::from(rs.max_target_percent.max(rs.target_percent));
    let r = u128::from(r);
    if amount < rs.threshold || floor_limit <= rs.threshold {
        return r <= target;
    }
    // r <= target + (max - target) * (amount - threshold) / (floor - threshold), exactly.
    if r <= target {
        return true;
    }
    let span = u128::from(floor_limit - rs.threshold);
    let above = u128::from(amount - rs.threshold);
    (r - target) * span <= (max - target) * above
}

fn counter(card: &CardData, given: Option<u16>, tag: Tag) -> Option<u16> {
    given.or_else(|| {
        card.get(tag)
            .and_then(|v| <[u8; 2]>::try_from(v).ok())
            .map(u16::from_be_bytes)
    })
}

fn velocity(card: &CardData, counters: Counters, tvr: &mut Tvr) {
    let one_byte = |tag| match card.get(tag) {
        Some(&[b]) => Some(b),
        _ => None,
    };
    let (Some(lower), Some(upper)) = (
        one_byte(LOWER_CONSECUTIVE_OFFLINE_LIMIT),
        one_byte(UPPER_CONSECUTIVE_OFFLINE_LIMIT),
    ) else {
        return;
    };
    let atc = counter(card, counters.atc, tags::ATC);
    let last = counter(card, counters.last_online_atc, tags::LAST_ONLINE_ATC);
    let both = Tvr::LOWER_OFFLINE_LIMIT_EXCEEDED | Tvr::UPPER_OFFLINE_LIMIT_EXCEEDED;
    let (Some(atc), Some(last)) = (atc, last) else {
        *tvr |= both;
        return;
    };
    match atc.checked_sub(last) {
        Some(offline) => {
            if offline > u16::from(lower) {
                *tvr |= Tvr::LOWER_OFFLINE_LIMIT_EXCEEDED;
            }
            if offline > u16::from(upper) {
                *tvr |= Tvr::UPPER_OFFLINE_LIMIT_EXCEEDED;
            }
        }
        None => *tvr |= both,
    }
    if last == 0 {
        *tvr |= Tvr::NEW_CARD;
    }
}
