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
