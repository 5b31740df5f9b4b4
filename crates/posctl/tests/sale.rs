//! `posctl sale` and friends as a user runs them, on the built-in simulated lane.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn posctl(journal: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_posctl"))
        .args(args)
        .arg("--journal")
        .arg(journal)
        .env_remove("RUST_LOG")
        .env_remove("POS_CONFIG")
        .output()
        .expect("run posctl")
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

#[test]
fn a_sale_with_no_config_runs_on_the_simulated_lane_and_prints_the_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("journal.sqlite");
    let out = posctl(&j, &["sale", "12.50"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("-> completed"), "{stdout}");
    assert!(
        stdout.contains("AMOUNT EUR 12.50"),
        "the virtual printer's receipt: {stdout}"
    );
    assert!(
        stderr.contains("host approved"),
        "steps are printed: {stderr}"
    );
    assert!(!stdout.contains("4761739001010010") && !stderr.contains("4761739001010010"));
}

#[test]
fn json_output_and_a_fault_walk_through() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("journal.sqlite");
    let out = posctl(
        &j,
        &[
            "sale",
            "12.50",
            "--json",
            "--inject",
            "after-approve:card-removed",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let v = json(&out);
    assert_eq!(v["state"], "reversed");
    assert_eq!(v["amount"], 1250);
    assert_eq!(v["pan_masked"], "476173******0010");
    assert!(v["reason"].as_str().unwrap().contains("card removed"));
    let id = v["id"].as_i64().unwrap().to_string();

    let ev = posctl(&j, &["journal", "evidence", &id]);
    assert_eq!(ev.status.code(), Some(0));
    let ev = json(&ev);
    assert_eq!(ev["reversal"]["outcome"], "reversed");
    let states: Vec<&str> = ev["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "created",
            "card_read",
            "armed",
            "sent",
            "host_approved",
            "reversal_pending",
            "reversed"
        ]
    );
    assert!(ev["host_messages"].as_array().unwrap().len() >= 4);

    // A crash after approval: the next run's recovery reverses it.
    let out = posctl(&j, &["sale", "5.00", "--inject", "after-approve:crash"]);
    assert_eq!(out.status.code(), None, "killed by a signal");
    let rec = posctl(&j, &["recover", "--json"]);
    let v = json(&rec);
    assert_eq!(v["moved"][0]["from"], "host_approved");
    assert_eq!(v["moved"][0]["to"], "reversal_pending");
    assert_eq!(v["drain"]["reversed"].as_array().unwrap().len(), 1);
    assert_eq!(rec.status.code(), Some(0));

    let report = json(&posctl(&j, &["report", "--json"]));
    assert_eq!(report["reversed"]["count"], 2);
    assert_eq!(report["sales"]["count"], 0);

    let backup = dir.path().join("backup.sqlite");
    let out = posctl(&j, &["journal", "backup", backup.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let list = posctl(&j, &["journal", "list", "--json"]);
    let b = posctl(&backup, &["journal", "list", "--json"]);
    assert_eq!(json(&list), json(&b));
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("journal.sqlite");
    for (args, needle) in [
        (&["sale", "12,50"][..], "12.50"),
        (
            &["sale", "1", "--inject", "printing:host-down"][..],
            "cannot happen",
        ),
        (
            &["sale", "1", "--inject", "later:crash"][..],
            "unknown step",
        ),
        (
            &["sale", "1", "--card", "amex"][..],
            "--card \"amex\": no such card",
        ),
        (&["void", "999"][..], "no transaction 999"),
    ] {
        let out = posctl(&j, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let missing = posctl(&dir.path().join("none/j.sqlite"), &["journal", "list"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no journal"));
}

#[test]
fn host_check_diagnoses_a_dead_port() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = Command::new(env!("CARGO_BIN_EXE_posctl"))
        .args([
            "host",
            "check",
            "--address",
            &format!("127.0.0.1:{port}"),
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["diagnosis"], "refused", "{v}");
}

/// `--card FILE`: a whole sale on a recorded card session, and the same vocabulary in a
/// lane config's reader URI.
#[test]
fn a_sale_runs_on_a_recorded_card() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("journal.sqlite");
    let data = format!("{}/../pos-emv/tests/data", env!("CARGO_MANIFEST_DIR"));
    let upi = format!("{data}/contact-upi.apdu");
    let out = posctl(&j, &["sale", "1.00", "--json", "--card", &upi]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["state"], "completed", "{v}");
    assert_eq!(v["pan_masked"], "621094******0011", "{v}");
    assert_eq!(v["entry_mode"], "chip", "{v}");
    // The recorded Mastercard expired in 2014: declined locally, with the reason.
    let mc = format!("{data}/contact-mastercard.apdu");
    let out = posctl(&j, &["sale", "1.00", "--json", "--card", &mc]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(2), "{v}");
    assert_eq!(v["state"], "declined", "{v}");
    assert!(v["reason"].as_str().unwrap().contains("expired"), "{v}");
    // The same card named in the lane config, at TPDU level with T=1; and a profile named
    // there is the lane's card (the service used to replace it with the default visa card).
    let config = dir.path().join("lane.toml");
    let sale_with_reader = |reader: &str| {
        std::fs::write(
            &config,
            format!(
                "[devices]\nreader = \"{reader}\"\nprinter = \"sim:printer\"\nmsr = \"sim:msr\"\n"
            ),
        )
        .unwrap();
        let out = posctl(
            &j,
            &[
                "--config",
                config.to_str().unwrap(),
                "sale",
                "2.00",
                "--json",
            ],
        );
        let v = json(&out);
        assert_eq!(out.status.code(), Some(0), "{reader}: {v}");
        v
    };
    let v = sale_with_reader(&format!("sim:ccid?script={upi}&level=t1"));
    assert_eq!(v["pan_masked"], "621094******0011", "{v}");
    let v = sale_with_reader("sim:ccid?card=unionpay&level=t1");
    assert_eq!(v["pan_masked"], "621094******0029", "{v}");
}

/// The journal is an identity, not a path: lost, emptied or damaged, the lane refuses to
/// sell and says what to do; `journal check` says what is wrong; `journal init
/// --new-identity` starts again with STANs past the lost ones; reading commands work on a
/// copy without writing to it.
#[test]
fn a_lost_emptied_or_damaged_journal_is_refused_and_replaced_on_purpose() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("lane").join("journal.sqlite");
    let out = posctl(&j, &["sale", "1.00"]);
    assert_eq!(out.status.code(), Some(0));
    let check = posctl(&j, &["journal", "check", "--json"]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let v = json(&check);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["integrity"][0], "ok");
    // A copy elsewhere reads without a byte written to it.
    let copy = dir.path().join("copy.sqlite");
    std::fs::copy(&j, &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    for args in [
        &["journal", "list"][..],
        &["report", "--all"],
        &["journal", "pending"],
    ] {
        let out = posctl(&copy, args);
        assert!(out.status.code().is_some_and(|c| c <= 2), "{args:?}");
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("posctl:"),
            "{args:?}"
        );
    }
    let out = posctl(
        &copy,
        &[
            "journal",
            "backup",
            dir.path().join("b.sqlite").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(std::fs::read(&copy).unwrap(), before);

    for damage in ["removed", "emptied", "garbage"] {
        match damage {
            "removed" => {
                for s in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{s}", j.display()));
                }
            }
            "emptied" => std::fs::write(&j, b"").unwrap(),
            _ => std::fs::write(&j, vec![0x5A; 16384]).unwrap(),
        }
        let out = posctl(&j, &["sale", "1.00"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{damage}: {stderr}");
        assert!(
            stderr.contains("posctl journal init --new-identity"),
            "{damage}: {stderr}"
        );
        assert!(!stderr.contains("must be writable"), "{damage}: {stderr}");
        let check = posctl(&j, &["journal", "check"]);
        assert_eq!(check.status.code(), Some(2), "{damage}");
        // init refuses without the flag, then starts a new identity.
        assert_eq!(posctl(&j, &["journal", "init"]).status.code(), Some(1));
        let init = posctl(&j, &["journal", "init", "--new-identity", "--json"]);
        assert_eq!(
            init.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        let n = json(&init);
        let next = n["next_stan"].as_u64().unwrap();
        assert!(next > 1000, "{n}");
        let out = posctl(&j, &["sale", "1.00", "--json"]);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(json(&out)["state"], "completed");
        // A healthy journal is not replaced.
        let again = posctl(&j, &["journal", "init", "--new-identity"]);
        assert_eq!(again.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&again.stderr).contains("healthy"));
    }
    // Nothing was deleted: every replaced file is still there.
    let aside = std::fs::read_dir(j.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".replaced-"))
        .count();
    assert!(aside >= 3, "{aside}");
}

/// `posctl journal archive` moves old closed sales to the month's archive file;
/// `journal list --archive` lists them, `journal show` finds one there; a reversal
/// pending stays in the journal whatever its age.
#[test]
fn journal_archive_moves_old_sales_and_they_can_still_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("journal.sqlite");
    for args in [
        &["sale", "1.00"][..],
        &["sale", "2.00"],
        &["sale", "3.00"],
        // Last: a later sale would send its reversal.
        &[
            "sale",
            "4.00",
            "--inject",
            "after-send:host-timeout",
            "--inject",
            "after-send:reversal-rejected:99",
        ],
    ] {
        let out = posctl(&j, args);
        assert!(
            out.status.code().is_some_and(|c| c <= 2),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Nothing is old yet.
    let out = posctl(&j, &["journal", "archive", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["moved"], 0);
    // All but the third 120 days old.
    let db = rusqlite::Connection::open(&j).unwrap();
    let state: String = db
        .query_row("SELECT state FROM txn WHERE id = 4", [], |r| r.get(0))
        .unwrap();
    assert_eq!(state, "reversal_pending");
    db.execute(
        "UPDATE txn SET created_ms = created_ms - 120 * 86400000 WHERE id != 3",
        [],
    )
    .unwrap();
    drop(db);
    let out = posctl(&j, &["journal", "archive"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("moved 2 transaction(s)"), "{stdout}");
    assert!(stdout.contains("kept 1"), "{stdout}");
    assert!(stdout.contains("archive/journal-"), "{stdout}");
    // The journal keeps the pending reversal and today's sale.
    let out = posctl(&j, &["journal", "list", "--json"]);
    let ids: Vec<i64> = json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![4, 3]);
    assert_eq!(json(&out)[0]["state"], "reversal_pending");
    // The archive lists the two, with their file.
    let out = posctl(&j, &["journal", "list", "--archive"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("archive/journal-"), "{stdout}");
    assert_eq!(
        stdout.lines().filter(|l| l.contains("completed")).count(),
        2,
        "{stdout}"
    );
    assert!(!stdout.contains("4761739001010010"), "{stdout}");
    // `show` finds an archived one, timeline and all.
    let out = posctl(&j, &["journal", "show", "1"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("(archived:"), "{stdout}");
    assert!(stdout.contains("timeline:"), "{stdout}");
    assert!(stdout.contains("completed"), "{stdout}");
    // An id in neither is still a clear error.
    let out = posctl(&j, &["journal", "show", "99"]);
    assert_eq!(out.status.code(), Some(1));
}

/// Rows per transaction id in the journal and the archive files: `(id, txn rows, timeline
/// rows)` summed over every file.
fn rows_by_id(dir: &Path) -> std::collections::BTreeMap<i64, (i64, i64)> {
    let mut files = vec![dir.join("journal.sqlite")];
    if let Ok(rd) = std::fs::read_dir(dir.join("archive")) {
        files.extend(
            rd.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "sqlite")),
        );
    }
    let mut out = std::collections::BTreeMap::new();
    for f in files {
        let db = rusqlite::Connection::open(&f).unwrap();
        let mut st = db
            .prepare("SELECT id, (SELECT count(*) FROM timeline WHERE txn_id = txn.id) FROM txn")
            .unwrap();
        for r in st
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .unwrap()
        {
            let (id, timeline) = r.unwrap();
            let e = out.entry(id).or_insert((0, 0));
            e.0 += 1;
            e.1 += timeline;
        }
    }
    out
}

/// `posctl journal archive` killed (SIGKILL) right after each of its writes: the sealed
/// data erased, the note, the copy into the archive file, the delete. The next run finishes
/// the move: every transaction is then in exactly one place, whole.
#[test]
fn journal_archive_killed_at_each_write_loses_and_duplicates_nothing() {
    let base = tempfile::tempdir().unwrap();
    let j = base.path().join("journal.sqlite");
    for amount in ["1.00", "2.00", "3.00", "4.00"] {
        let out = posctl(&j, &["sale", amount]);
        assert_eq!(out.status.code(), Some(0));
    }
    let db = rusqlite::Connection::open(&j).unwrap();
    db.execute(
        "UPDATE txn SET created_ms = created_ms - 100 * 86400000 WHERE id <= 3",
        [],
    )
    .unwrap();
    drop(db);
    let whole = rows_by_id(base.path());
    assert_eq!(whole.len(), 4);
    for crash_after in 1..=5 {
        let dir = tempfile::tempdir().unwrap();
        for e in std::fs::read_dir(base.path()).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
            }
        }
        let jj = dir.path().join("journal.sqlite");
        let out = Command::new(env!("CARGO_BIN_EXE_posctl"))
            .args(["journal", "archive", "--journal"])
            .arg(&jj)
            .env("POS_TEST_CRASH_AFTER_COMMITS", crash_after.to_string())
            .env_remove("POS_CONFIG")
            .output()
            .unwrap();
        let killed = out.status.code().is_none();
        assert_eq!(
            killed,
            crash_after <= 4,
            "crash after {crash_after}: {out:?}"
        );
        // Every transaction is somewhere, whole (in both places at most while the move is
        // unfinished).
        let now = rows_by_id(dir.path());
        assert_eq!(
            now.keys().collect::<Vec<_>>(),
            whole.keys().collect::<Vec<_>>()
        );
        for (id, (n, timeline)) in &now {
            assert!(
                *n >= 1 && *timeline >= whole[id].1 * n,
                "{id}: {n} {timeline}"
            );
        }
        let out = posctl(&jj, &["journal", "archive", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let after = rows_by_id(dir.path());
        assert_eq!(after, whole, "crash after write {crash_after}");
        let list = json(&posctl(&jj, &["journal", "list", "--json"]));
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    }
}

#[test]
fn posctl_reversal_requeues_or_resolves_a_stuck_reversal() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("journal.sqlite");
    // Two sales whose reversal the host rejected, then (as after two more rejections) stuck.
    for amount in ["4.00", "5.00"] {
        let out = posctl(
            &j,
            &[
                "sale",
                amount,
                "--inject",
                "after-send:host-timeout",
                "--inject",
                "after-send:reversal-rejected:99",
            ],
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let db = rusqlite::Connection::open(&j).unwrap();
    db.execute(
        "UPDATE txn SET state = 'reversal_stuck', reversal_rejections = 3",
        [],
    )
    .unwrap();
    drop(db);
    // Refused: words with a card number, an unknown id; nothing changes.
    let out = posctl(
        &j,
        &["reversal", "requeue", "1", "--note", "pan 4761739001010010"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("card numbers"));
    let out = posctl(&j, &["reversal", "resolve", "77", "--reference", "R"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no transaction 77"));
    // Requeued: sent at once, the host takes it.
    let out = posctl(
        &j,
        &[
            "reversal",
            "requeue",
            "1",
            "--note",
            "acquirer: resend",
            "--json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["state"], "reversed");
    assert_eq!(v["drain"]["reversed"], serde_json::json!([1]));
    // Resolved: reversed with the acquirer's reference, nothing sent.
    let out = posctl(&j, &["reversal", "resolve", "2", "--reference", "ACQ-77"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("transaction 2: reversed"), "{stdout}");
    // Neither applies to a reversed transaction.
    let out = posctl(&j, &["reversal", "resolve", "2", "--reference", "ACQ-77"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not reversal_stuck"));
    let out = posctl(&j, &["journal", "show", "2"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("ACQ-77"));
}
