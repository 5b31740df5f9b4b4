//! Terminal risk management (EMV Book 3 10.6): floor limit, random selection, velocity.

use std::cell::Cell;

use pos_emv::read::CardData;
use pos_emv::risk::{self, Counters, RandomSelection, RiskParams};
use pos_emv::tags;
use pos_emv::tvr::{Tsi, Tvr};

fn params(floor: u64, rs: Option<RandomSelection>) -> RiskParams {
    RiskParams {
        floor_limit: floor,
        random_selection: rs,
    }
}

/// Runs with the random number `r`; returns the TVR bytes, the TSI and how often the random
/// source was called.
fn run(amount: u64, p: &RiskParams, card: &CardData, c: Counters, r: u8) -> ([u8; 5], Tsi, u32) {
    let calls = Cell::new(0);
    let mut random = || {
        calls.set(calls.get() + 1);
        r
    };
    let (mut tvr, mut tsi) = (Tvr::empty(), Tsi::empty());
    risk::terminal_risk_management(amount, p, card, c, &mut random, &mut tvr, &mut tsi);
    (tvr.to_bytes(), tsi, calls.get())
}

const RS: RandomSelection = RandomSelection {
    target_percent: 20,
    max_target_percent: 60,
    threshold: 1000,
};

#[test]
fn aip_bit() {
    assert!(risk::required_by_aip([0x59, 0x00])); // Mastercard test card
    assert!(risk::required_by_aip([0x7C, 0x00])); // UnionPay test card
    assert!(!risk::required_by_aip([0x71, 0x00]));
}

#[test]
fn floor_limit() {
    let card = CardData::default();
    let p = params(5000, None);
    let (tvr, tsi, calls) = run(5000, &p, &card, Counters::default(), 1);
    assert_eq!(tvr, [0, 0, 0, 0x80, 0]);
    assert_eq!(tsi.to_bytes(), [0x08, 0x00]);
    assert_eq!(calls, 0);
    assert_eq!(run(4999, &p, &card, Counters::default(), 1).0, [0; 5]);
    assert_eq!(
        run(0, &params(0, None), &card, Counters::default(), 1).0,
        [0, 0, 0, 0x80, 0]
    );
    // At or above the floor limit there is no random selection.
    let (tvr, _, calls) = run(5000, &params(5000, Some(RS)), &card, Counters::default(), 1);
    assert_eq!((tvr, calls), ([0, 0, 0, 0x80, 0], 0));
}

#[test]
fn random_selection_below_threshold() {
    let card = CardData::default();
    let p = params(5000, Some(RS));
    let sel = |amount, r| run(amount, &p, &card, Counters::default(), r).0 == [0, 0, 0, 0x10, 0];
    assert!(sel(999, 1));
    assert!(sel(999, 20));
    assert!(!sel(999, 21));
    assert!(!sel(999, 99));
    assert_eq!(
        run(999, &p, &card, Counters::default(), 50).2,
        1,
        "one random number"
    );
    // Target 0: never selected.
    let never = params(
        5000,
        Some(RandomSelection {
            target_percent: 0,
            max_target_percent: 0,
            threshold: 1000,
        }),
    );
    assert_eq!(run(10, &never, &card, Counters::default(), 1).0, [0; 5]);
}

#[test]
fn biased_random_selection_between_threshold_and_floor() {
    let card = CardData::default();
    let p = params(5000, Some(RS));
    let sel = |amount, r| run(amount, &p, &card, Counters::default(), r).0 == [0, 0, 0, 0x10, 0];
    // At the threshold the target percent applies: 20.
    assert!(sel(1000, 20));
    assert!(!sel(1000, 21));
    // Half way (3000): 20 + 40 * 2000 / 4000 = 40.
    assert!(sel(3000, 40));
    assert!(!sel(3000, 41));
    // 3001: 40.01 -> 40 selected, 41 not.
    assert!(sel(3001, 40));
    assert!(!sel(3001, 41));
    // 2999: 39.99 -> 40 not selected.
    assert!(!sel(2999, 40));
    assert!(sel(2999, 39));
    // Just under the floor limit: 59.99.
    assert!(sel(4999, 59));
    assert!(!sel(4999, 60));
    // A maximum below the target is taken as the target.
    let flat = params(
        5000,
        Some(RandomSelection {
            target_percent: 30,
            max_target_percent: 10,
            threshold: 1000,
        }),
    );
    assert_eq!(
        run(4000, &flat, &card, Counters::default(), 30).0,
        [0, 0, 0, 0x10, 0]
    );
    assert_eq!(run(4000, &flat, &card, Counters::default(), 31).0, [0; 5]);
    // Threshold at or above the floor limit: the plain target percent.
    let odd = params(
        1000,
        Some(RandomSelection {
            target_percent: 10,
            max_target_percent: 90,
            threshold: 2000,
        }),
    );
    assert_eq!(
        run(999, &odd, &card, Counters::default(), 10).0,
        [0, 0, 0, 0x10, 0]
    );
    assert_eq!(run(999, &odd, &card, Counters::default(), 11).0, [0; 5]);
}

fn card_with_limits(lower: u8, upper: u8) -> CardData {
    let mut c = CardData::default();
    c.tags
        .insert(risk::LOWER_CONSECUTIVE_OFFLINE_LIMIT, vec![lower]);
    c.tags
        .insert(risk::UPPER_CONSECUTIVE_OFFLINE_LIMIT, vec![upper]);
    c
}

fn counters(atc: u16, last: u16) -> Counters {
    Counters {
        atc: Some(atc),
        last_online_atc: Some(last),
    }
}

#[test]
fn velocity_checks() {
    let card = card_with_limits(2, 5);
    let p = params(100_000, None);
    let tvr = |c| run(100, &p, &card, c, 1).0;
    assert_eq!(tvr(counters(0x42, 0x40)), [0; 5]); // 2 offline: not above lower
    assert_eq!(tvr(counters(0x43, 0x40)), [0, 0, 0, 0x40, 0]); // 3 > 2
    assert_eq!(tvr(counters(0x45, 0x40)), [0, 0, 0, 0x40, 0]); // 5: not above upper
    assert_eq!(tvr(counters(0x46, 0x40)), [0, 0, 0, 0x60, 0]); // 6 > 5
    // ATC below the last online ATC, or a counter missing: both bits.
    assert_eq!(tvr(counters(0x10, 0x40)), [0, 0, 0, 0x60, 0]);
    assert_eq!(
        tvr(Counters {
            atc: Some(0x41),
            last_online_atc: None
        }),
        [0, 0, 0, 0x60, 0]
    );
    assert_eq!(tvr(Counters::default()), [0, 0, 0, 0x60, 0]);
    // Counters from the card's data when not given.
    let mut with_atc = card.clone();
    with_atc.tags.insert(tags::ATC, vec![0x00, 0x41]);
    with_atc
        .tags
        .insert(tags::LAST_ONLINE_ATC, vec![0x00, 0x40]);
    assert_eq!(run(100, &p, &with_atc, Counters::default(), 1).0, [0; 5]);
    // No limits on the card: no velocity checking.
    assert_eq!(
        run(100, &p, &CardData::default(), Counters::default(), 1).0,
        [0; 5]
    );
    // Only one limit: no velocity checking.
    let mut one = CardData::default();
    one.tags
        .insert(risk::LOWER_CONSECUTIVE_OFFLINE_LIMIT, vec![0]);
    assert_eq!(run(100, &p, &one, Counters::default(), 1).0, [0; 5]);
}

#[test]
fn new_card() {
    let card = card_with_limits(2, 5);
    let p = params(100_000, None);
    let (tvr, tsi, _) = run(100, &p, &card, counters(1, 0), 1);
    assert_eq!(tvr, [0, 0x08, 0, 0, 0]);
    assert_eq!(tsi.to_bytes(), [0x08, 0x00]);
    let (tvr, _, _) = run(100, &p, &card, counters(7, 0), 1);
    assert_eq!(tvr, [0, 0x08, 0, 0x60, 0]);
    // Everything together: floor limit, velocity, new card.
    let (tvr, _, _) = run(100_000, &p, &card, counters(4, 0), 1);
    assert_eq!(tvr, [0, 0x08, 0, 0x80 | 0x40, 0]);
}
