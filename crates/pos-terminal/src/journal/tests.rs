use super::*;

fn journal() -> (tempfile::TempDir, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    (dir, j)
}

#[test]
fn a_sale_walks_the_machine_and_survives_reopening() {
    let (dir, mut j) = journal();
    let id = j.create(Operation::Sale, 1250, 978, None, "sale").unwrap();
    j.transition(
        id,
        State::CardRead,
        "card read",
        Changes {
            pan_masked: Some("476173******0010".into()),
            sealed: Some(vec![1, 2, 3]),
            ..Changes::default()
        },
    )
    .unwrap();
    let stan = j
        .arm(id, "0200", "1123101500", "armed", Changes::default())
        .unwrap();
    assert_eq!(stan, 1);
    j.transition(id, State::Sent, "sent", Changes::default())
        .unwrap();
    j.transition(
        id,
        State::HostApproved,
        "approved",
        Changes {
            auth_code: Some("A00001".into()),
            ..Changes::default()
        },
    )
    .unwrap();
    assert_eq!(j.sealed(id).unwrap(), Some(vec![1, 2, 3]));
    let before = j.commits();
    j.transition(id, State::Committed, "tc", Changes::default())
        .unwrap();
    assert_eq!(j.commits(), before + 1);
    drop(j);
    let j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    let t = j.get(id).unwrap();
    assert_eq!(t.state, State::Committed);
    assert_eq!(t.stan, Some(1));
    assert_eq!(t.auth_code.as_deref(), Some("A00001"));
    assert_eq!(t.pan_masked.as_deref(), Some("476173******0010"));
    let states: Vec<State> = j.timeline(id).unwrap().iter().map(|e| e.state).collect();
    assert_eq!(
        states,
        vec![
            State::Created,
            State::CardRead,
            State::Armed,
            State::Sent,
            State::HostApproved,
            State::Committed
        ]
    );
}

#[test]
fn illegal_transitions_are_refused() {
    let (_d, mut j) = journal();
    let id = j.create(Operation::Sale, 1, 978, None, "").unwrap();
    let e = j
        .transition(id, State::Completed, "", Changes::default())
        .unwrap_err();
    assert!(matches!(
        e,
        JournalError::IllegalTransition {
            from: State::Created,
            to: State::Completed,
            ..
        }
    ));
    assert!(matches!(
        j.transition(99, State::Aborted, "", Changes::default()),
        Err(JournalError::NotFound(99))
    ));
    j.transition(id, State::Aborted, "", Changes::default())
        .unwrap();
    assert!(
        j.transition(id, State::Armed, "", Changes::default())
            .is_err()
    );
    // Every resting state but the reversal ones is final.
    for s in State::ALL {
        if s.is_resting()
            && !matches!(
                s,
                State::ReversalPending | State::ReversalStuck | State::ReceiptOwed
            )
        {
            assert!(s.next().is_empty(), "{s}");
        }
    }
}

#[test]
fn final_states_without_reversal_wipe_the_sealed_data() {
    let (_d, mut j) = journal();
    let id = j.create(Operation::Sale, 1, 978, None, "").unwrap();
    let c = Changes {
        sealed: Some(vec![9; 40]),
        ..Changes::default()
    };
    j.transition(id, State::CardRead, "", c).unwrap();
    j.arm(id, "0200", "0101000000", "", Changes::default())
        .unwrap();
    j.transition(id, State::Sent, "", Changes::default())
        .unwrap();
    j.transition(id, State::Declined, "", Changes::reason("51"))
        .unwrap();
    assert_eq!(j.sealed(id).unwrap(), None);
}

#[test]
fn stans_increase_and_wrap() {
    let (_d, mut j) = journal();
    j.conn
        .execute("UPDATE meta SET value = '999998' WHERE key = 'stan'", [])
        .unwrap();
    let mut stans = vec![];
    for _ in 0..3 {
        let id = j.create(Operation::Sale, 1, 978, None, "").unwrap();
        stans.push(
            j.arm(id, "0200", "0101000000", "", Changes::default())
                .unwrap(),
        );
    }
    assert_eq!(stans, vec![999_999, 1, 2]);
}

#[test]
fn reversal_bookkeeping_and_backup() {
    let (dir, mut j) = journal();
    let id = j.create(Operation::Sale, 5, 978, None, "").unwrap();
    j.arm(id, "0200", "0101000000", "", Changes::default())
        .unwrap();
    j.transition(id, State::ReversalPending, "", Changes::default())
        .unwrap();
    assert_eq!(j.reversal_attempt(id).unwrap(), 1);
    assert_eq!(j.reversal_retry(id, false, 10).unwrap(), 0);
    assert_eq!(j.reversal_attempt(id).unwrap(), 2);
    assert_eq!(j.reversal_retry(id, true, 20).unwrap(), 1);
    let t = j.get(id).unwrap();
    assert_eq!((t.reversal_attempts, t.reversal_rejections), (2, 1));
    assert_eq!(t.next_attempt_ms, Some(20));
    j.event(Some(id), "fault", "card_removed").unwrap();
    j.event(None, "alarm", "lane alarm").unwrap();
    assert_eq!(j.events(Some(id)).unwrap().len(), 1);
    assert_eq!(j.events(None).unwrap()[0].detail, "lane alarm");
    let dest = dir.path().join("backup.sqlite");
    j.backup(&dest).unwrap();
    let b = Journal::open(&dest).unwrap();
    assert_eq!(b.get(id).unwrap().reversal_rejections, 1);
    assert_eq!(b.in_states(&[State::ReversalPending]).unwrap().len(), 1);
}

#[test]
fn a_large_journal_is_checked_whole_at_open_only_after_a_crash() {
    let (dir, j) = journal();
    let path = dir.path().join("j.sqlite");
    assert_eq!(j.start_check(), Some(StartCheck::New));
    drop(j);
    let j = Journal::open(&path).unwrap();
    assert_eq!(j.start_check(), Some(StartCheck::Full));
    // Past the size of a full check at every open.
    let tx = j.conn.unchecked_transaction().unwrap();
    let detail = "x".repeat(1 << 20);
    for _ in 0..(FULL_CHECK_MAX_BYTES >> 20) + 1 {
        tx.execute(sql::INSERT_EVENT, params![None::<i64>, 0, "info", detail])
            .unwrap();
    }
    tx.commit().unwrap();
    drop(j);
    assert!(std::fs::metadata(&path).unwrap().len() > FULL_CHECK_MAX_BYTES);
    let j = Journal::open(&path).unwrap();
    assert_eq!(j.start_check(), Some(StartCheck::SkippedAfterCleanClose));
    drop(j);
    // A crash: the marker records no clean close.
    let marker = identity::marker_path(&path);
    let m = identity::Marker::load(&marker).unwrap().unwrap();
    identity::Marker {
        closed_at: None,
        ..m
    }
    .store(&marker)
    .unwrap();
    let j = Journal::open(&path).unwrap();
    assert_eq!(j.start_check(), Some(StartCheck::Quick));
}

#[test]
fn a_file_that_is_not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x");
    std::fs::write(
        &p,
        b"this is not sqlite, it is a text file of some length....",
    )
    .unwrap();
    let e = Journal::open(&p).unwrap_err();
    assert!(e.to_string().contains(&p.display().to_string()), "{e}");
}

/// Make `path` look like a journal written before batches (schema 1).
fn downgrade_to_schema_1(path: &Path) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(
        "DROP INDEX txn_batch; ALTER TABLE txn DROP COLUMN batch;
         DROP TABLE settlement_log; DROP TABLE settlement_diff; DROP TABLE settlement_item;
         DROP TABLE settlement; DELETE FROM meta WHERE key = 'batch';
         UPDATE meta SET value = '1' WHERE key = 'schema';",
    )
    .unwrap();
}

#[test]
fn a_journal_from_before_batches_reads_as_it_is_and_upgrades_at_open() {
    let (dir, mut j) = journal();
    let path = j.path().to_path_buf();
    let id = j.create(Operation::Sale, 1250, 978, None, "sale").unwrap();
    assert_eq!(j.get(id).unwrap().batch, Some(1));
    drop(j);
    downgrade_to_schema_1(&path);

    // Read-only: nothing is upgraded, the transactions read with no batch.
    let ro = Journal::open_read_only(&path).unwrap();
    assert_eq!(ro.get(id).unwrap().batch, None);
    assert_eq!(ro.open_batch().unwrap(), 1);
    assert_eq!(ro.batch_txns(1).unwrap().len(), 1);
    assert_eq!(ro.settlements(10).unwrap(), vec![]);
    drop(ro);

    // Opened by the lane: schema 2, everything in batch 1, the open one.
    let mut j = Journal::open(&path).unwrap();
    assert_eq!(j.get(id).unwrap().batch, Some(1));
    assert_eq!(j.open_batch().unwrap(), 1);
    assert_eq!(meta(&j.conn, "schema").unwrap().as_deref(), Some("2"));
    let next = j.create(Operation::Sale, 100, 978, None, "sale").unwrap();
    assert_eq!(j.get(next).unwrap().batch, Some(1));
    drop(dir);
}

#[test]
fn a_batch_is_settled_once_and_the_next_one_opens() {
    let (_dir, mut j) = journal();
    let t = pos_acquirer::settlement::CurrencyTotals::new(978);
    let known = NewDifference {
        txn_id: None,
        kind: "known_stuck_reversal",
        detail: "reversal stuck".into(),
        action: "call the acquirer".into(),
    };
    let s = j.settlement_start(1, true, &[t], &[known]).unwrap();
    assert_eq!(j.open_batch().unwrap(), 2);
    // Batch 1 is no longer open: a second start is refused and changes nothing.
    assert!(j.settlement_start(1, false, &[t], &[]).is_err());
    assert_eq!(j.open_batch().unwrap(), 2);
    let id = j.create(Operation::Sale, 100, 978, None, "sale").unwrap();
    assert_eq!(j.get(id).unwrap().batch, Some(2));
    // The machine is checked.
    let err = j
        .settlement_step(s, SettlementState::Balanced, "x", None, None, None, &[])
        .unwrap_err();
    assert!(
        matches!(err, JournalError::IllegalSettlement { .. }),
        "{err}"
    );
    j.settlement_step(
        s,
        SettlementState::Requested,
        "0500",
        Some((7, "0101120000")),
        None,
        None,
        &[],
    )
    .unwrap();
    assert_eq!(j.unfinished_settlement().unwrap().map(|s| s.id), Some(s));
    j.settlement_step(
        s,
        SettlementState::Balanced,
        "00",
        None,
        Some("00"),
        Some("receipt"),
        &[],
    )
    .unwrap();
    let got = j.settlement(s).unwrap();
    assert_eq!(got.state, SettlementState::Balanced);
    assert_eq!(got.stan, Some(7));
    assert_eq!(got.receipt.as_deref(), Some("receipt"));
    assert_eq!(j.unfinished_settlement().unwrap(), None);
    assert_eq!(j.differences(s).unwrap().len(), 1);
    // Each difference is an alarm of the lane.
    let alarms = j.events(None).unwrap();
    assert!(
        alarms
            .iter()
            .any(|e| e.kind == "alarm" && e.detail.contains("reversal stuck"))
    );
}
