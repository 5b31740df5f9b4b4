//! `posctl settle` on the built-in simulated lane: a balanced day, each disagreement of the
//! fake host named correctly, pending reversals first, a stuck one refused then forced,
//! voids after the close refused, a pre-authorization spanning two batches, and the
//! evidence of a settlement and of a transaction it found.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Lane {
    _dir: tempfile::TempDir,
    journal: PathBuf,
    config: Option<PathBuf>,
}

impl Lane {
    fn new() -> Lane {
        let dir = tempfile::tempdir().unwrap();
        Lane {
            journal: dir.path().join("journal.sqlite"),
            config: None,
            _dir: dir,
        }
    }

    /// A lane whose reversals are stuck after one rejection.
    fn strict() -> Lane {
        let mut l = Lane::new();
        let c = l._dir.path().join("lane.toml");
        std::fs::write(&c, "[reversal]\nmax_rejections = 1\n").unwrap();
        l.config = Some(c);
        l
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_posctl"));
        c.args(args)
            .arg("--journal")
            .arg(&self.journal)
            .env_remove("RUST_LOG")
            .env_remove("POS_CONFIG");
        if let Some(cfg) = &self.config {
            c.arg("--config").arg(cfg);
        }
        c.output().expect("run posctl")
    }

    /// Run and expect an exit code.
    fn ok(&self, args: &[&str], code: i32) -> Output {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "posctl {args:?}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn settle(&self, extra: &[&str], code: i32) -> serde_json::Value {
        let mut args = vec!["settle", "--json"];
        args.extend_from_slice(extra);
        json(&self.ok(&args, code))
    }
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn kinds(r: &serde_json::Value) -> Vec<String> {
    r["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn no_pan(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if let Ok(bytes) = std::fs::read(&p) {
            assert!(
                !bytes.windows(16).any(|w| w == b"4761739001010010"),
                "{} holds the full PAN",
                p.display()
            );
        }
    }
}

#[test]
fn a_balanced_day_closes_the_batch_prints_the_receipt_and_opens_the_next() {
    let lane = Lane::new();
    lane.ok(&["sale", "12.50"], 0);
    lane.ok(
        &["sale", "3.00", "--inject", "after-approve:card-removed"],
        2,
    );
    lane.ok(&["refund", "2.00"], 0);
    let r = lane.settle(&[], 0);
    assert_eq!(r["state"], "balanced", "{r}");
    assert_eq!(r["batch"], 1);
    let t = &r["totals"][0];
    assert_eq!(t["currency"], 978);
    assert_eq!(t["debits"]["count"], 1);
    assert_eq!(t["debits"]["amount"], 1250);
    assert_eq!(t["credits"]["amount"], 200);
    assert_eq!(t["debit_reversals"]["amount"], 300);
    let receipt = r["receipt"].as_str().unwrap();
    assert!(receipt.contains("BALANCED WITH THE HOST"), "{receipt}");
    assert!(
        receipt.contains("VISA CREDIT CHIP 2 EUR 10.50"),
        "{receipt}"
    );
    assert!(kinds(&r).is_empty());
    // The next day settles batch 2, never batch 1 again.
    lane.ok(&["sale", "1.00"], 0);
    let r2 = lane.settle(&[], 0);
    assert_eq!(r2["batch"], 2);
    assert_eq!(r2["totals"][0]["debits"]["amount"], 100);
    // An empty batch settles too (zero totals).
    assert_eq!(lane.settle(&[], 0)["batch"], 3);
    let report = json(&lane.ok(&["report", "--json"], 0));
    assert_eq!(report["batch"]["open_batch"], 4);
    no_pan(lane.journal.parent().unwrap());
}

#[test]
fn a_dropped_reversal_is_named_and_the_reversal_re_sent() {
    let lane = Lane::new();
    lane.ok(&["sale", "5.00"], 0);
    lane.ok(
        &["sale", "1.00", "--inject", "after-approve:card-removed"],
        2,
    );
    let r = lane.settle(&["--disagree", "drop-reversal"], 2);
    assert_eq!(r["state"], "closed_with_differences", "{r}");
    assert_eq!(kinds(&r), ["host_charged_terminal_reversed"]);
    let d = &r["differences"][0];
    assert_eq!(d["txn_id"], 2);
    let detail = d["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("host charged EUR 1.00 (STAN"),
        "{detail}"
    );
    assert!(detail.contains("terminal recorded reversed"), "{detail}");
    assert_eq!(
        d["action"],
        "reversal re-sent: the host took it (response 00)"
    );
    // Shown in the report, and the transaction's evidence names the settlement.
    let report = lane.ok(&["report"], 2);
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(text.contains("DIFFERENCES WITH THE HOST (1)"), "{text}");
    assert!(text.contains("host_charged_terminal_reversed"), "{text}");
    let ev = json(&lane.ok(&["journal", "evidence", "2"], 0));
    assert_eq!(ev["settlements"][0]["settlement"]["batch"], 1, "{ev}");
    assert_eq!(
        ev["differences"][0]["kind"], "host_charged_terminal_reversed",
        "{ev}"
    );
    // The settlement's own evidence: its steps, upload and differences.
    let id = r["id"].as_i64().unwrap().to_string();
    let sev = json(&lane.ok(&["journal", "settlement", &id], 0));
    assert_eq!(sev["upload"].as_array().unwrap().len(), 2, "{sev}");
    let steps: Vec<&str> = sev["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    for s in [
        "started",
        "requested",
        "uploading",
        "closing",
        "closed_with_differences",
    ] {
        assert!(steps.contains(&s), "{steps:?}");
    }
    // Each difference is an alarm of the lane.
    let db = rusqlite::Connection::open(&lane.journal).unwrap();
    let alarms: i64 = db
        .query_row(
            "SELECT count(*) FROM events WHERE kind = 'alarm' AND detail LIKE 'settlement of batch 1:%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(alarms, 1);
}

#[test]
fn an_invented_approval_is_named_as_host_only() {
    let lane = Lane::new();
    lane.ok(&["sale", "5.00"], 0);
    let r = lane.settle(&["--disagree", "invent-approval=4200"], 2);
    assert_eq!(kinds(&r), ["host_only"], "{r}");
    let detail = r["differences"][0]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("host charged EUR 42.00 (sale STAN 9"),
        "{detail}"
    );
    assert!(detail.ends_with("terminal has no record"), "{detail}");
    assert_eq!(r["differences"][0]["action"], "call the acquirer");
}

#[test]
fn a_lost_completion_is_named_and_a_preauth_spans_two_batches() {
    let lane = Lane::new();
    let pre = json(&lane.ok(&["preauth", "100.00", "--json"], 0));
    let pre_id = pre["id"].as_i64().unwrap().to_string();
    // Batch 1 closes with the pre-authorization still open.
    let r1 = lane.settle(&[], 0);
    assert_eq!(r1["totals"][0]["debits"]["count"], 0);
    let report = json(&lane.ok(&["report", "--json"], 0));
    let open = &report["batch"]["open_preauths"];
    assert_eq!(open.as_array().unwrap().len(), 1, "{report}");
    assert_eq!(open[0]["batch"], 1);
    assert_eq!(open[0]["age_days"], 0);
    assert_eq!(open[0]["expired"], false);
    // Completed in batch 2: a debit of batch 2.
    let c = json(&lane.ok(&["complete", &pre_id, "87.20", "--json"], 0));
    assert_eq!(c["state"], "completed");
    let report = json(&lane.ok(&["report", "--json"], 0));
    assert!(
        report["batch"]["open_preauths"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // The host loses the completion: the terminal names it.
    let r2 = lane.settle(&["--disagree", "lose-completion"], 2);
    assert_eq!(r2["batch"], 2);
    assert_eq!(r2["totals"][0]["debits"]["amount"], 8720);
    assert_eq!(kinds(&r2), ["terminal_charged_host_no_record"], "{r2}");
    let detail = r2["differences"][0]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("terminal completed completion EUR 87.20"),
        "{detail}"
    );
    assert!(detail.ends_with("host has no record"), "{detail}");
}

#[test]
fn a_void_after_the_close_is_refused_naming_the_batch() {
    let lane = Lane::new();
    lane.ok(&["sale", "12.50"], 0);
    lane.ok(&["sale", "7.00"], 0);
    // Inside the open batch a void works.
    lane.ok(&["void", "2"], 0);
    let r = lane.settle(&[], 0);
    assert_eq!(r["totals"][0]["voids"]["count"], 1);
    assert_eq!(r["totals"][0]["debits"]["amount"], 1250);
    let out = lane.ok(&["void", "1"], 1);
    let e = stderr(&out);
    assert!(
        e.contains("batch 1 was closed by settlement 1"),
        "the closed batch is named: {e}"
    );
    assert!(e.contains("refund it instead (posctl refund 12.50)"), "{e}");
}

#[test]
fn a_pending_reversal_goes_first() {
    let lane = Lane::new();
    lane.ok(&["sale", "2.00"], 0);
    // The host times out, then rejects the reversal once: it stays pending.
    lane.ok(
        &[
            "sale",
            "4.00",
            "--inject",
            "after-send:host-timeout",
            "--inject",
            "after-send:reversal-rejected:1",
        ],
        2,
    );
    let db = rusqlite::Connection::open(&lane.journal).unwrap();
    let state: String = db
        .query_row("SELECT state FROM txn WHERE id = 2", [], |r| r.get(0))
        .unwrap();
    assert_eq!(state, "reversal_pending");
    drop(db);
    let r = lane.settle(&[], 0);
    assert_eq!(r["reversals"]["reversed"], serde_json::json!([2]), "{r}");
    assert_eq!(r["state"], "balanced");
    assert_eq!(r["totals"][0]["debit_reversals"]["count"], 1);
}

#[test]
fn a_stuck_reversal_refuses_settlement_until_forced_then_is_a_known_difference() {
    let lane = Lane::strict();
    lane.ok(&["sale", "3.00"], 0);
    lane.ok(
        &[
            "sale",
            "4.00",
            "--inject",
            "after-send:host-timeout",
            "--inject",
            "after-send:reversal-rejected:99",
        ],
        2,
    );
    let out = lane.ok(&["settle"], 2);
    let e = stderr(&out);
    assert!(e.contains("transaction(s) 2 are stuck"), "{e}");
    assert!(e.contains("--force"), "{e}");
    // Nothing changed: still batch 1, no settlement.
    let report = json(&lane.ok(&["report", "--json"], 2));
    assert_eq!(report["batch"]["open_batch"], 1);
    assert!(report["batch"]["last_settlement"].is_null());
    // Forced: the stuck one is a known difference; the host still charges it (its
    // reversal never got through), which the upload confirms without naming it twice.
    let r = lane.settle(&["--force"], 2);
    assert_eq!(r["forced"], true);
    assert_eq!(kinds(&r), ["known_stuck_reversal"], "{r}");
    assert_eq!(r["differences"][0]["txn_id"], 2);
    assert_eq!(r["state"], "closed_with_differences");
}
