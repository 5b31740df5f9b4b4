//! Every statement the journal runs, through SQLite's `EXPLAIN QUERY PLAN`: none may read a
//! whole table (or a whole index) to find its rows, so that the cost of a sale, of recovery,
//! of the status, of the day's report and of a retention step does not grow with the
//! journal (docs/journal.md, "Scale"). A new statement in `journal.rs`'s or `archive.rs`'s
//! `mod sql` must be added here (a test says so), and dropping any index the service uses
//! makes this test fail (another test drops each in turn).
//!
//! The plans are checked as the service sees them: without `ANALYZE` statistics (the journal
//! never gathers any), on a journal of a few thousand transactions of the usual mix.

use super::*;
use crate::journal::archive::sql as archive;
use crate::journal::settlement::sql as settle;

/// Tables the journal owns: a `SCAN` of one of them is a whole-table read.
const TABLES: [&str; 9] = [
    "txn",
    "timeline",
    "events",
    "host_messages",
    "meta",
    "settlement",
    "settlement_item",
    "settlement_diff",
    "settlement_log",
];

/// A statement and the scans its plan may show, each with the reason it is bounded.
struct Checked {
    name: &'static str,
    sql: String,
    allowed: &'static [(&'static str, &'static str)],
}

/// `sqlite_sequence` is SQLite's own table of AUTOINCREMENT counters: one row per table
/// that has one (four here), whatever the journal's size.
const SEQUENCE: (&str, &str) = (
    "SCAN sqlite_sequence",
    "one row per AUTOINCREMENT table (four), whatever the journal's size",
);

fn checked(name: &'static str, sql: impl Into<String>) -> Checked {
    Checked {
        name,
        sql: sql.into(),
        allowed: &[],
    }
}

/// Every statement in `mod sql` that the service runs, by the name of its constant or
/// builder (the coverage test matches the names).
fn statements() -> Vec<Checked> {
    let single = [State::ReversalPending];
    let trio = [
        State::ReversalPending,
        State::ReversalStuck,
        State::ReceiptOwed,
    ];
    vec![
        // The sale path: counters, STANs, the transaction's row and its story.
        Checked {
            name: "COUNTERS",
            sql: sql::COUNTERS.into(),
            allowed: &[SEQUENCE],
        },
        checked("META", sql::META),
        checked("STAN", sql::STAN),
        checked("SET_STAN", sql::SET_STAN),
        checked("NEXT_STAN", sql::NEXT_STAN),
        checked("BUMP_STAN_SEQ", sql::BUMP_STAN_SEQ),
        checked("SET_STAN_SEQ", sql::SET_STAN_SEQ),
        checked("INSERT_TXN", sql::INSERT_TXN),
        checked("INSERT_TIMELINE_CREATED", sql::INSERT_TIMELINE_CREATED),
        checked("INSERT_TIMELINE", sql::INSERT_TIMELINE),
        checked("STATE_KIND", sql::STATE_KIND),
        checked("ARM", sql::ARM),
        checked("TRANSITION", sql::TRANSITION),
        checked("REVERSAL_ATTEMPT", sql::REVERSAL_ATTEMPT),
        checked("REVERSAL_RETRY", sql::REVERSAL_RETRY),
        checked("REVERSAL_REQUEUE", sql::REVERSAL_REQUEUE),
        checked("MARK_ORIGINAL", sql::MARK_ORIGINAL),
        checked("RECEIPT_PRINTED", sql::RECEIPT_PRINTED),
        checked("INSERT_EVENT", sql::INSERT_EVENT),
        checked("INSERT_HOST_MESSAGE", sql::INSERT_HOST_MESSAGE),
        checked("BY_ID", sql::select_txn(sql::BY_ID)),
        checked("SEALED", sql::SEALED),
        // Start-up recovery, the reversal drain, owed receipts, the status counts.
        checked(
            "in_states",
            sql::select_txn(&sql::in_states(&State::IN_FLIGHT)),
        ),
        checked("in_states", sql::select_txn(&sql::in_states(&single))),
        checked("in_states", sql::select_txn(&sql::in_states(&trio))),
        checked("count_in_states", sql::count_in_states(&single)),
        checked("count_in_states", sql::count_in_states(&State::IN_FLIGHT)),
        // The report: the unresolved transactions, and the period's totals.
        checked(
            "in_states",
            sql::select_txn(&sql::in_states(&crate::report::unresolved_states())),
        ),
        checked("GROUPS_SINCE", sql::GROUPS_SINCE),
        // Lists: `posctl journal list`, `GET /v1/transactions[?state=]`.
        Checked {
            name: "LATEST",
            sql: sql::select_txn(sql::LATEST),
            allowed: &[(
                "SCAN txn",
                "the table's own b-tree read backwards from the newest id, stopping after \
                 LIMIT rows (no sort: the plan may not use a temporary b-tree)",
            )],
        },
        checked(
            "latest_in_states",
            sql::select_txn(&sql::latest_in_states(&[State::Completed])),
        ),
        // A transaction's story (`posctl journal show`, evidence).
        checked("TIMELINE", sql::TIMELINE),
        checked("EVENTS", sql::EVENTS),
        checked("HOST_MESSAGES", sql::HOST_MESSAGES),
        // Opening: the read-only probe, a new journal, an identity change (once each).
        checked("PROBE", sql::PROBE),
        checked("INIT_META", sql::INIT_META),
        checked("SET_IDENTITY", sql::SET_IDENTITY),
        checked("INSERT_LANE_ALARM", sql::INSERT_LANE_ALARM),
        Checked {
            name: "RAISE_TXN_SEQUENCE",
            sql: sql::RAISE_TXN_SEQUENCE.into(),
            allowed: &[SEQUENCE],
        },
        checked("INSERT_TXN_SEQUENCE", sql::INSERT_TXN_SEQUENCE),
        // Retention (`Journal::archive`, when the lane is idle): the backlog a page at a
        // time, families through their links, sealed data still held, the move by ids
        // (the archive file attached as `arch`).
        checked("old_page", archive::old_page()),
        checked("one", archive::one()),
        checked("CHILDREN", archive::CHILDREN),
        checked("erase_sealed", archive::erase_sealed()),
        checked("LANE_EVENT_DAYS", archive::LANE_EVENT_DAYS),
        checked("NOTE", archive::NOTE),
        checked("NOTE_DONE", archive::NOTE_DONE),
        checked("copy", archive::copy("txn", "id", "(1, 2)")),
        checked("copy", archive::copy("timeline", "txn_id", "(1, 2)")),
        checked("copy", archive::copy("events", "txn_id", "(1, 2)")),
        checked("copy", archive::copy("host_messages", "txn_id", "(1, 2)")),
        checked("COPY_LANE_EVENTS", archive::COPY_LANE_EVENTS),
        checked(
            "delete",
            archive::delete("host_messages", "txn_id", "(1, 2)"),
        ),
        checked("delete", archive::delete("events", "txn_id", "(1, 2)")),
        checked("delete", archive::delete("timeline", "txn_id", "(1, 2)")),
        checked("delete", archive::delete("txn", "id", "(1, 2)")),
        checked("DELETE_LANE_EVENTS", archive::DELETE_LANE_EVENTS),
        // Batches and settlements (`journal/settlement.rs`).
        checked("OPEN_BATCH", settle::OPEN_BATCH),
        checked("NEXT_BATCH", settle::NEXT_BATCH),
        checked("BY_BATCH", sql::select_txn(settle::BY_BATCH)),
        checked("OPEN_PREAUTHS", sql::select_txn(settle::OPEN_PREAUTHS)),
        checked("settle::INSERT", settle::INSERT),
        checked("settle::BATCH_OF", settle::BATCH_OF),
        checked("settle::STATE", settle::STATE),
        checked("settle::TRANSITION", settle::TRANSITION),
        checked("settle::LOG", settle::LOG),
        checked("settle::DIFF", settle::DIFF),
        checked("settle::DIFF_ACTION", settle::DIFF_ACTION),
        checked("settle::ITEM_ARM", settle::ITEM_ARM),
        checked("settle::ITEM_ANSWERED", settle::ITEM_ANSWERED),
        checked(
            "settle::BY_ID",
            format!("{} {}", settle::COLUMNS, settle::BY_ID),
        ),
        checked(
            "settle::BY_BATCH_NUMBER",
            format!("{} {}", settle::COLUMNS, settle::BY_BATCH_NUMBER),
        ),
        Checked {
            name: "settle::LATEST",
            sql: format!("{} {}", settle::COLUMNS, settle::LATEST),
            allowed: &[(
                "SCAN settlement",
                "the table's own b-tree read backwards from the newest id, stopping after \
                 LIMIT rows",
            )],
        },
        checked(
            "settle::UNFINISHED",
            format!("{} {}", settle::COLUMNS, settle::UNFINISHED),
        ),
        checked("settle::ITEMS", settle::ITEMS),
        checked(
            "settle::DIFFS_OF",
            format!("{} {}", settle::DIFF_COLUMNS, settle::DIFFS_OF),
        ),
        checked(
            "settle::DIFFS_OF_TXN",
            format!("{} {}", settle::DIFF_COLUMNS, settle::DIFFS_OF_TXN),
        ),
        checked("settle::LOG_OF", settle::LOG_OF),
    ]
}

/// Statements in `mod sql` that read whole tables on purpose, never on the hot path.
const NOT_CHECKED: [(&str, &str); 3] = [
    (
        "select_txn_v1",
        "the column list of a journal from before batches, read without upgrading",
    ),
    (
        "ALL",
        "every transaction, for exports: a whole-table read by definition",
    ),
    (
        "select_txn",
        "the column list, checked with each of its uses above",
    ),
];

/// The helpers of `mod sql` that only build parts of statements checked above.
const PARTS: [&str; 1] = ["state_in"];

/// The plan's lines (an error when SQLite cannot plan it: a statement naming an index
/// that is not there).
fn try_plan(conn: &Connection, statement: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {statement}"))?;
    let unbound = std::iter::repeat_n(rusqlite::types::Null, st.parameter_count());
    st.query_map(rusqlite::params_from_iter(unbound), |r| {
        r.get::<_, String>(3)
    })?
    .collect()
}

fn plan(conn: &Connection, statement: &str) -> Vec<String> {
    try_plan(conn, statement).unwrap_or_else(|e| panic!("{statement}: {e}"))
}

/// Every whole-table (or whole-index) read in the statements' plans that is not allowed,
/// as `name: plan line`.
fn full_scans(conn: &Connection) -> Vec<String> {
    let mut found = Vec::new();
    for c in statements() {
        let lines = match try_plan(conn, &c.sql) {
            Ok(lines) => lines,
            Err(e) => {
                found.push(format!("{}: no plan: {e}", c.name));
                continue;
            }
        };
        for line in &lines {
            let Some(rest) = line.strip_prefix("SCAN ") else {
                continue;
            };
            let table = rest.split_whitespace().next().unwrap_or("");
            if table != "sqlite_sequence" && !TABLES.contains(&table) {
                continue; // SCAN CONSTANT ROW, a subquery's result
            }
            let allowed = c.allowed.iter().any(|(scan, _)| line == scan);
            let sorted = lines.iter().any(|l| l.contains("TEMP B-TREE"));
            if !allowed || (c.name == "LATEST" && sorted) {
                found.push(format!("{}: {line} (plan: {})", c.name, lines.join("; ")));
            }
        }
    }
    found
}

/// A journal of `n` transactions of the usual mix (mostly completed sales, some declined,
/// aborted, reversed, voids and refunds), each with its timeline, host messages and events,
/// plus a few unresolved ones, written in one SQLite transaction.
fn journal_of(n: u32) -> (tempfile::TempDir, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    let tx = j.conn.unchecked_transaction().unwrap();
    let day = 86_400_000_i64;
    let start = now_ms() - 500 * day;
    for i in 0..i64::from(n) {
        let at = start + i * (500 * day / i64::from(n));
        let (kind, state) = match i % 100 {
            0..=3 => ("sale", "declined"),
            4 => ("sale", "aborted"),
            5 => ("sale", "reversed"),
            6 => ("void", "completed"),
            7 => ("refund", "completed"),
            _ => ("sale", "completed"),
        };
        tx.execute(
            "INSERT INTO txn(kind, state, amount, currency, pan_masked, entry_mode, stan,
               created_ms, updated_ms) VALUES (?1, ?2, 1250, 978, '476173******0010', 'chip',
               ?3, ?4, ?4)",
            params![kind, state, i % 999_999 + 1, at],
        )
        .unwrap();
        let id = tx.last_insert_rowid();
        for s in ["created", "card_read", "armed", "sent", state] {
            tx.execute(sql::INSERT_TIMELINE, params![id, at, s, "note"])
                .unwrap();
        }
        for d in ["sent", "received"] {
            tx.execute(
                "INSERT INTO host_messages(txn_id, at_ms, purpose, attempt, direction, summary)
                 VALUES (?1, ?2, 'request', 1, ?3, 'summary')",
                params![id, at, d],
            )
            .unwrap();
        }
        if state != "completed" {
            tx.execute(sql::INSERT_EVENT, params![id, at, "fault", "card_removed"])
                .unwrap();
        }
    }
    for state in ["reversal_pending", "receipt_owed", "armed"] {
        tx.execute(
            "INSERT INTO txn(kind, state, amount, currency, created_ms, updated_ms)
             VALUES ('sale', ?1, 100, 978, ?2, ?2)",
            params![state, now_ms()],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    attach_archive(dir.path(), &j);
    (dir, j)
}

/// An archive file in `dir`, attached as `arch` (retention's copy writes into it).
fn attach_archive(dir: &Path, j: &Journal) {
    let arch = dir.join("journal-2025-01.sqlite");
    drop(Journal::open(&arch).unwrap());
    j.conn
        .execute("ATTACH DATABASE ?1 AS arch", [arch.to_string_lossy()])
        .unwrap();
}

#[test]
fn no_statement_reads_a_whole_table() {
    let (_d, j) = journal_of(2_000);
    let scans = full_scans(&j.conn);
    assert!(scans.is_empty(), "whole-table reads:\n{}", scans.join("\n"));
    // And the plans say how: through the indexes, not by luck.
    let uses = |name: &str, index: &str| {
        statements()
            .iter()
            .filter(|c| c.name == name)
            .all(|c| plan(&j.conn, &c.sql).iter().any(|l| l.contains(index)))
    };
    assert!(uses("in_states", "INDEX txn_state"));
    assert!(uses("count_in_states", "COVERING INDEX txn_state"));
    assert!(uses("latest_in_states", "INDEX txn_state"));
    assert!(uses("GROUPS_SINCE", "INDEX txn_created"));
    assert!(uses("TIMELINE", "INDEX timeline_txn"));
    assert!(uses("EVENTS", "INDEX events_txn"));
    assert!(uses("HOST_MESSAGES", "INDEX host_messages_txn"));
    assert!(uses("BY_ID", "INTEGER PRIMARY KEY"));
    assert!(uses("old_page", "INDEX txn_created"));
    assert!(uses("CHILDREN", "INDEX txn_original"));
    assert!(uses("erase_sealed", "INDEX txn_sealed"));
}

#[test]
fn dropping_any_index_the_hot_path_uses_is_caught() {
    let (_d, j) = journal_of(200);
    for index in [
        "txn_state",
        "txn_created",
        "txn_original",
        "txn_sealed",
        "timeline_txn",
        "events_txn",
        "host_messages_txn",
    ] {
        // DDL is transactional in SQLite: drop, look, put back.
        j.conn.execute_batch("BEGIN").unwrap();
        j.conn
            .execute_batch(&format!("DROP INDEX {index}"))
            .unwrap();
        let scans = full_scans(&j.conn);
        j.conn.execute_batch("ROLLBACK").unwrap();
        assert!(
            !scans.is_empty(),
            "without {index}, no plan reads a whole table: is the index still needed?"
        );
    }
    assert!(full_scans(&j.conn).is_empty());
}

#[test]
fn every_statement_of_the_journal_is_checked() {
    /// The names of the items `vis` exports from the `head` block of `source`.
    fn exported<'a>(source: &'a str, head: &str, vis: &str) -> Vec<&'a str> {
        let body = source
            .split_once(head)
            .and_then(|(_, rest)| rest.split_once("\n}\n"))
            .map(|(body, _)| body)
            .unwrap_or_else(|| panic!("no {head:?} block"));
        body.lines()
            .filter_map(|l| {
                let l = l.trim_start().strip_prefix(vis)?;
                l.strip_prefix("const ").or_else(|| l.strip_prefix("fn "))
            })
            .filter_map(|rest| rest.split([':', '(']).next())
            .collect()
    }
    let journal = exported(
        include_str!("../journal.rs"),
        "\nmod sql {\n",
        "pub(super) ",
    );
    let archive = exported(
        include_str!("archive.rs"),
        "\npub(super) mod sql {\n",
        "pub(in crate::journal) ",
    );
    assert!(journal.len() > 30, "{journal:?}");
    assert!(archive.len() > 10, "{archive:?}");
    let names = journal.into_iter().chain(archive);
    let checked: Vec<&str> = statements().iter().map(|c| c.name).collect();
    for name in names {
        assert!(
            checked.contains(&name)
                || NOT_CHECKED.iter().any(|(n, _)| *n == name)
                || PARTS.contains(&name),
            "sql::{name} is not in the query-plan check: add it to statements() in \
             journal/query_plans.rs"
        );
    }
}

#[test]
fn the_schema_upgrade_adds_indexes_to_an_existing_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    {
        let j = Journal::open(&path).unwrap();
        // A journal from before the index.
        j.conn.execute_batch("DROP INDEX txn_created").unwrap();
        attach_archive(dir.path(), &j);
        assert!(!full_scans(&j.conn).is_empty());
    }
    let j = Journal::open(&path).unwrap();
    attach_archive(dir.path(), &j);
    assert!(full_scans(&j.conn).is_empty());
}
