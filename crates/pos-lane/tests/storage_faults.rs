//! A journal that cannot be written stops the lane, never a sale silently: a full disk at
//! every journal write of a sale, on the whole simulated lane (virtual reader, printer, the
//! real TCP client to the fake host). Each case checks that the lane refuses new sales
//! while blocked, that an authorization the host gave is reversed from memory at once, and
//! that once the disk takes writes again recovery runs without a restart and the money
//! invariant holds against the host's ledger.
#![allow(clippy::unwrap_used)]

mod common;

use common::rig;
use pos_hal::{Fault, FaultKind};
use pos_terminal::service::TerminalError;
use pos_terminal::{NoHook, State, TxnRequest};

/// Writes one clean sale makes (its journal edges), to fail each in turn.
fn writes_per_sale() -> u64 {
    let mut r = rig();
    let before = r.terminal.journal().commits();
    let res = r.sale(700, &[]);
    assert_eq!(res.state, State::Completed);
    r.terminal.journal().commits() - before
}

#[test]
fn a_full_disk_at_every_journal_write_of_a_sale_stops_the_lane_and_loses_nothing() {
    let edges = writes_per_sale();
    assert!(edges >= 5, "{edges}");
    let mut reversed_from_memory = 0;
    for edge in 0..edges {
        let mut r = rig();
        let start = r.terminal.journal().commits();
        r.terminal
            .journal_mut()
            .set_fail_writes_after(Some(start + edge));
        let err = r
            .terminal
            .run(&TxnRequest::sale(1250), &mut NoHook)
            .expect_err("the sale cannot be recorded");
        assert!(err.is_storage(), "edge {edge}: {err}");
        let outage = r.terminal.outage().cloned().expect("the lane is blocked");
        assert_eq!(outage.kind, FaultKind::Io, "edge {edge}");
        assert!(outage.retried, "edge {edge}");
        // What the host approved and the journal could not finish is reversed at once,
        // from memory, before any write succeeds.
        // Only a sale the journal already says stands (committed) may remain approved.
        let ledger = r.host.ledger();
        for e in ledger.approved_not_reversed() {
            let t = r
                .terminal
                .journal()
                .all()
                .unwrap()
                .into_iter()
                .find(|t| t.stan == Some(e.stan))
                .unwrap_or_else(|| panic!("edge {edge}: STAN {} unknown", e.stan));
            assert!(
                matches!(
                    t.state,
                    State::Committed | State::Printing | State::Completed
                ),
                "edge {edge}: host approved, journal says {} and nothing reversed: {outage:?}",
                t.state
            );
        }
        if let Some(rev) = &outage.reversal {
            assert!(rev.accepted, "edge {edge}: {rev:?}");
            reversed_from_memory += 1;
        }
        // No new sale while blocked, and nothing written for it.
        let commits = r.terminal.journal().commits();
        let refused = r
            .terminal
            .run(&TxnRequest::sale(100), &mut NoHook)
            .expect_err("blocked");
        assert!(matches!(refused, TerminalError::Blocked(_)), "{refused}");
        assert_eq!(refused.kind(), FaultKind::Unrecoverable);
        assert_eq!(r.terminal.journal().commits(), commits);
        // Still full: the retry fails and the lane stays blocked.
        assert!(!r.terminal.retry_journal().unwrap());
        assert!(r.terminal.outage().is_some());
        // Space returns: the next try (after its backoff) journals and recovers.
        r.terminal.journal_mut().set_fail_writes_after(None);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !r.terminal.retry_journal().unwrap() {
            assert!(
                std::time::Instant::now() < deadline,
                "edge {edge}: never retried"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(r.terminal.outage().is_none());
        // Nothing in flight; the host's ledger and the journal agree.
        r.check_invariant(true);
        let all = r.terminal.journal().all().unwrap();
        assert!(
            all.iter().all(|t| t.state.is_resting()),
            "edge {edge}: {all:?}"
        );
        let events = r.terminal.journal().events(outage.txn).unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.kind == "alarm" && e.detail.contains("takes writes again")),
            "edge {edge}: {events:?}"
        );
        // And the lane sells again.
        r.heal();
        let res = r.sale(300, &[]);
        assert_eq!(res.state, State::Completed, "edge {edge}: {res:?}");
        r.check_invariant(true);
    }
    // The edges after the request left (armed, sent, approved) needed the memory path.
    assert!(reversed_from_memory >= 2, "{reversed_from_memory}");
}

#[test]
fn a_journal_removed_while_the_lane_runs_stops_it_and_is_rescued() {
    let mut r = rig();
    let res = r.sale(500, &[]);
    assert_eq!(res.state, State::Completed);
    let path = r.terminal.config().journal_path();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    // The next sale is refused before anything is written or sent.
    let stans = r.host.ledger().entries.len();
    let err = r
        .terminal
        .run(&TxnRequest::sale(100), &mut NoHook)
        .expect_err("the journal is gone");
    assert!(matches!(err, TerminalError::Blocked(_)), "{err}");
    assert!(err.to_string().contains("rescued"), "{err}");
    assert_eq!(
        r.host.ledger().entries.len(),
        stans,
        "nothing reached the host"
    );
    let outage = r.terminal.outage().cloned().unwrap();
    assert!(!outage.retried, "a removed journal needs a person");
    assert!(!r.terminal.retry_journal().unwrap());
    // The rescued copy holds the completed sale.
    let rescued: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".rescued-"))
        .collect();
    assert_eq!(rescued.len(), 1, "{rescued:?}");
    let copy = pos_terminal::Journal::open_read_only(&rescued[0].path()).unwrap();
    assert_eq!(copy.get(res.id).unwrap().state, State::Completed);
    // Restarting on the removed journal is refused too (its identity marker stayed).
    let common::Rig { dir, terminal, .. } = r;
    drop(terminal);
    let e = pos_terminal::Journal::open(&path).unwrap_err();
    assert!(e.to_string().contains("missing or empty"), "{e}");
    drop(dir);
}
