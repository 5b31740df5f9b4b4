//! `posctl settle` killed (SIGKILL) right after every journal write of an out-of-balance
//! settlement (the kill -9 harness of `crash.rs`: `POS_TEST_CRASH_AFTER_COMMITS`), then run
//! again: the settlement must finish exactly once (one settlement of batch 1, closed, the
//! next batch open), name the difference exactly once, and the reversal the host lost must
//! be re-sent (the host's ledger holds it reversed again).
//!
//! The simulated lane keeps the fake host's ledger beside the journal, so it survives the
//! kills like the journal does.
#![allow(clippy::unwrap_used)]

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output};

fn posctl(dir: &Path, args: &[&str], crash_after: Option<u64>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_posctl"));
    c.args(args)
        .arg("--journal")
        .arg(dir.join("journal.sqlite"))
        .env_remove("RUST_LOG")
        .env_remove("POS_CONFIG")
        .env_remove("POS_TEST_CRASH_AFTER_COMMITS");
    if let Some(n) = crash_after {
        c.env("POS_TEST_CRASH_AFTER_COMMITS", n.to_string());
    }
    c.output().expect("run posctl")
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

fn say(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_settlement_killed_at_every_journal_edge_finishes_exactly_once() {
    // The day: a sale, and one reversed after the host approved.
    let base = tempfile::tempdir().unwrap();
    let out = posctl(base.path(), &["sale", "5.00"], None);
    assert_eq!(out.status.code(), Some(0), "{}", say(&out));
    let out = posctl(
        base.path(),
        &["sale", "1.00", "--inject", "after-approve:card-removed"],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", say(&out));

    let mut killed_at = Vec::new();
    let mut resumed_runs = 0;
    for n in 1..=40u64 {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        let out = posctl(
            dir.path(),
            &["settle", "--json", "--disagree", "drop-reversal"],
            Some(n),
        );
        let killed = out.status.signal() == Some(9);
        if killed {
            killed_at.push(n);
            // Start-up recovery finishes it (the host has already lost the reversal); a
            // settlement the kill found finished is left alone.
            let again = posctl(dir.path(), &["recover", "--json"], None);
            assert_eq!(
                again.status.code(),
                Some(0),
                "after kill {n}: {}",
                say(&again)
            );
            let r: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
            let resumed = r["settlement"].as_str().unwrap_or("");
            assert!(
                resumed.is_empty() || resumed.contains("resumed: closed_with_differences"),
                "after kill {n}: {r}"
            );
            if !resumed.is_empty() {
                resumed_runs += 1;
            }
        } else {
            assert_eq!(out.status.code(), Some(2), "run {n}: {}", say(&out));
        }
        // Exactly one settlement, of batch 1, closed; batch 2 open; one difference.
        let db = rusqlite::Connection::open(dir.path().join("journal.sqlite")).unwrap();
        let rows: Vec<(i64, String)> = db
            .prepare("SELECT batch, state FROM settlement")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [(1, "closed_with_differences".to_string())],
            "kill after commit {n}"
        );
        let open: String = db
            .query_row("SELECT value FROM meta WHERE key = 'batch'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(open, "2", "kill after commit {n}");
        let diffs: Vec<(String, Option<i64>, String)> = db
            .prepare("SELECT kind, txn_id, action FROM settlement_diff")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(diffs.len(), 1, "kill after commit {n}: {diffs:?}");
        assert_eq!(diffs[0].0, "host_charged_terminal_reversed");
        assert_eq!(diffs[0].1, Some(2));
        assert!(
            diffs[0].2.starts_with("reversal re-sent: the host took it"),
            "kill after commit {n}: {diffs:?}"
        );
        // The host holds the sale reversed again: the lost reversal was re-sent.
        let ledger: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("sim-host-ledger.json")).unwrap(),
        )
        .unwrap();
        let reversed = ledger["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["amount"] == 100)
            .all(|e| e["state"] == "reversed");
        assert!(reversed, "kill after commit {n}: {ledger}");
        if !killed {
            break;
        }
    }
    // Every write of the settlement was a kill point, and there were several.
    assert!(killed_at.len() >= 8, "killed at {killed_at:?}");
    assert!(
        resumed_runs >= 5,
        "recovery resumed {resumed_runs} settlements"
    );
    assert_eq!(
        killed_at,
        (1..=killed_at.len() as u64).collect::<Vec<_>>(),
        "every commit up to the last one killed the run"
    );
}
