//! Soak: many sales on one simulated lane with random faults (and random reversal
//! rejections), the money invariant checked throughout, and a settlement with the host at
//! the end that must balance. `POS_SOAK_SALES` sets the count
//! (default 100 here; thousands for a real soak), `POS_SOAK_SEED` the seed.
#![allow(clippy::unwrap_used)]

mod common;

use pos_terminal::inject::{InjectedFault, Step};
use pos_terminal::{CardEntry, State, TxnRequest};

/// xorshift64*: deterministic, printed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn thousands_of_sales_with_random_faults_keep_the_invariant() {
    let sales: usize = std::env::var("POS_SOAK_SALES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let seed: u64 = std::env::var("POS_SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_2026);
    eprintln!("soak: {sales} sales, seed {seed} (POS_SOAK_SALES / POS_SOAK_SEED)");
    let mut rng = Rng(seed | 1);
    let mut r = common::rig_with(|c| {
        c.reversal.backoff_initial_ms = 1;
        c.reversal.backoff_max_ms = 1;
        c.reversal.max_rejections = 3;
        c.reversal.block_sales_when_stuck = false;
    });
    let faults: Vec<InjectedFault> = InjectedFault::examples()
        .into_iter()
        .filter(|f| *f != InjectedFault::Crash)
        .collect();
    let mut by_state = std::collections::BTreeMap::new();
    for n in 0..sales {
        let mut inj = Vec::new();
        // About half the sales get a fault, some two.
        for _ in 0..rng.below(3) {
            let f = &faults[rng.below(faults.len())];
            let steps = f.steps();
            let s: Step = steps[rng.below(steps.len())];
            inj.push(format!("{s}:{f}"));
        }
        let amount = 100 + rng.below(20_000) as u64;
        let req = TxnRequest {
            entry: if rng.below(5) == 0 {
                CardEntry::Swipe
            } else {
                CardEntry::Chip
            },
            ..TxnRequest::sale(amount)
        };
        let refs: Vec<&str> = inj.iter().map(String::as_str).collect();
        let res = r.run(&req, &refs);
        *by_state.entry(res.state).or_insert(0u32) += 1;
        r.check_invariant(false);
        if n % 25 == 24 {
            r.terminal.drain_reversals(true).unwrap();
        }
    }
    // Drain everything the host will take, then the invariant must hold strictly.
    r.host.clear_faults();
    for _ in 0..5 {
        r.terminal.drain_reversals(true).unwrap();
    }
    r.terminal.recover().unwrap();
    r.check_invariant(true);
    eprintln!("soak: final states {by_state:?}");
    assert!(by_state.get(&State::Completed).copied().unwrap_or(0) > 0);
    assert!(by_state.len() >= 4, "too few kinds of ending: {by_state:?}");
    let ledger = r.host.ledger();
    let report = pos_terminal::report::report(r.terminal.journal(), 0).unwrap();
    assert_eq!(
        ledger.net_charged(),
        report.net
            + report
                .reversal_stuck
                .iter()
                .map(|b| b.amount as i64)
                .sum::<i64>(),
        "the host's net must equal the journal's standing sales plus stuck reversals"
    );
    // The day ends with a settlement, and it must balance: the host's batch is the
    // journal's, transaction for transaction. A reversal the host kept rejecting (stuck) is
    // the one difference the terminal already knows of: settled past with force, it must
    // then be the only kind of difference, each stuck one named once.
    let stuck: Vec<i64> = report.reversal_stuck.iter().map(|b| b.id).collect();
    let s = r.terminal.settle(!stuck.is_empty()).unwrap();
    eprintln!(
        "soak: settlement {} of batch {}: {} ({} stuck reversal(s))",
        s.id,
        s.batch,
        s.state,
        stuck.len()
    );
    assert_eq!(s.batch, 1);
    assert!(!s.resumed);
    let net: i64 = s.totals.iter().map(|t| t.net()).sum();
    assert_eq!(net, report.net, "the settlement's totals are the journal's");
    if stuck.is_empty() {
        assert_eq!(
            s.state,
            pos_terminal::journal::SettlementState::Balanced,
            "{:#?}",
            s.differences
        );
        assert!(s.differences.is_empty(), "{:#?}", s.differences);
    } else {
        let mut named: Vec<i64> = s.differences.iter().filter_map(|d| d.txn_id).collect();
        named.sort_unstable();
        let mut want = stuck.clone();
        want.sort_unstable();
        assert_eq!(named, want, "{:#?}", s.differences);
        assert!(
            s.differences
                .iter()
                .all(|d| d.kind == pos_terminal::service::diff_kind::KNOWN_STUCK_REVERSAL),
            "{:#?}",
            s.differences
        );
    }
    assert!(
        r.terminal
            .journal()
            .unfinished_settlement()
            .unwrap()
            .is_none()
    );
    assert_eq!(r.terminal.journal().open_batch().unwrap(), 2);
}
