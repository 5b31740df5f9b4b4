//! The journal under storage faults: it is an identity, not a path. A missing, empty,
//! foreign, damaged or older journal is refused or continued safely (never silently a new
//! one starting at STAN 1); a journal removed or replaced while open is noticed and what it
//! held is rescued; a read-only copy can be read; a failed write is an error.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use pos_acquirer::Operation;
use pos_hal::{Fault, FaultKind};
use pos_terminal::Journal;
use pos_terminal::identity::{Marker, marker_path};
use pos_terminal::journal::{Changes, JournalError, State};

fn dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("journal.sqlite");
    (d, p)
}

/// One sale to Armed: one STAN allocated. Returns (id, STAN).
fn armed_sale(j: &mut Journal) -> (i64, u32) {
    let id = j.create(Operation::Sale, 100, 978, None, "sale").unwrap();
    j.transition(id, State::CardRead, "card read", Changes::default())
        .unwrap();
    let stan = j
        .arm(id, "0200", "1207120000", "armed", Changes::default())
        .unwrap();
    (id, stan)
}

fn remove_journal(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        if p.exists() {
            std::fs::remove_file(p).unwrap();
        }
    }
}

#[test]
fn a_new_journal_gets_an_identity_kept_across_reopening() {
    let (_d, path) = dir();
    let id = {
        let mut j = Journal::open(&path).unwrap();
        armed_sale(&mut j);
        j.terminal_id().to_string()
    };
    assert_eq!(id.len(), 32, "{id}");
    let marker = Marker::load(&marker_path(&path)).unwrap().unwrap();
    assert_eq!(marker.terminal_id, id);
    // A clean close records the exact counters.
    assert_eq!(marker.closed_at, Some((1, 1)));
    let mut j = Journal::open(&path).unwrap();
    assert_eq!(j.terminal_id(), id);
    // Reopened after a clean close: the STANs go on without a gap.
    assert_eq!(armed_sale(&mut j), (2, 2));
}

#[test]
fn a_missing_or_empty_journal_where_one_existed_is_refused() {
    for empty in [false, true] {
        let (_d, path) = dir();
        let id = {
            let mut j = Journal::open(&path).unwrap();
            armed_sale(&mut j);
            j.terminal_id().to_string()
        };
        remove_journal(&path);
        if empty {
            std::fs::write(&path, b"").unwrap();
        }
        let e = Journal::open(&path).unwrap_err();
        assert!(matches!(e, JournalError::IdentityLost { .. }), "{e:?}");
        assert_eq!(e.kind(), FaultKind::Unrecoverable);
        let text = e.to_string();
        assert!(text.contains(&id), "{text}");
        assert!(
            text.contains("posctl journal init --new-identity"),
            "{text}"
        );
        assert!(text.contains("backup"), "{text}");
        // Nothing was created in its place.
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert_eq!(len, 0, "empty={empty}");
    }
}

#[test]
fn another_lanes_journal_is_refused() {
    let (_d, path) = dir();
    let (_d2, other) = dir();
    drop(Journal::open(&path).unwrap());
    {
        let mut o = Journal::open(&other).unwrap();
        armed_sale(&mut o);
    }
    remove_journal(&path);
    std::fs::copy(&other, &path).unwrap();
    let e = Journal::open(&path).unwrap_err();
    assert!(matches!(e, JournalError::Foreign { .. }), "{e:?}");
    assert!(
        e.to_string().contains("belongs to terminal identity"),
        "{e}"
    );
}

#[test]
fn an_older_copy_put_back_continues_past_what_was_used() {
    let (d, path) = dir();
    let backup = d.path().join("backup.sqlite");
    {
        let mut j = Journal::open(&path).unwrap();
        armed_sale(&mut j);
        j.backup(&backup).unwrap();
        for _ in 0..4 {
            armed_sale(&mut j);
        }
        // STANs 1..=5 and ids 1..=5 used; clean close.
    }
    remove_journal(&path);
    std::fs::copy(&backup, &path).unwrap();
    {
        let mut j = Journal::open(&path).unwrap();
        // The copy knew STAN 1 only: the next is 6, never 2 again; ids likewise.
        assert_eq!(armed_sale(&mut j), (6, 6));
        let alarms = j.events(None).unwrap();
        assert!(
            alarms
                .iter()
                .any(|e| e.kind == "alarm"
                    && e.detail.contains("behind this lane's identity marker")),
            "{alarms:?}"
        );
    }
    // After a crash (no clean close) the marker has only its reservation: past it.
    let m = Marker::load(&marker_path(&path)).unwrap().unwrap();
    Marker {
        closed_at: None,
        ..m.clone()
    }
    .store(&marker_path(&path))
    .unwrap();
    remove_journal(&path);
    std::fs::copy(&backup, &path).unwrap();
    let mut j = Journal::open(&path).unwrap();
    let (id, stan) = armed_sale(&mut j);
    assert_eq!(u64::from(stan), m.stan_reserved + 1);
    assert_eq!(u64::try_from(id).unwrap(), m.id_reserved + 1);
}

#[test]
fn a_damaged_journal_is_refused_with_sqlites_words() {
    let (_d, path) = dir();
    {
        let mut j = Journal::open(&path).unwrap();
        for _ in 0..50 {
            armed_sale(&mut j);
        }
    }
    // Overwrite a page in the middle (not the header) with garbage.
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 3 * 4096, "{}", bytes.len());
    for b in &mut bytes[2 * 4096..3 * 4096] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let e = Journal::open(&path).unwrap_err();
    assert!(matches!(e, JournalError::Damaged { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("malformed") || text.contains("integrity_check"),
        "SQLite's own words: {text}"
    );
    assert_eq!(e.kind(), FaultKind::Unrecoverable);

    // A file that is not a database at all.
    let (_d2, other) = dir();
    std::fs::write(&other, vec![b'x'; 8192]).unwrap();
    let e = Journal::open(&other).unwrap_err();
    assert!(matches!(e, JournalError::Damaged { .. }), "{e:?}");
}

#[test]
fn a_journal_removed_or_replaced_while_open_is_noticed_and_rescued() {
    for replace in [false, true] {
        let (_d, path) = dir();
        let mut j = Journal::open(&path).unwrap();
        let (id, _) = armed_sale(&mut j);
        j.check_file().unwrap();
        remove_journal(&path);
        if replace {
            std::fs::write(&path, b"someone else's file").unwrap();
        }
        let e = j.check_file().unwrap_err();
        let JournalError::Replaced {
            rescued: Some(rescued),
            ..
        } = &e
        else {
            panic!("{e:?}");
        };
        // The rescued copy holds what the removed journal held.
        let copy = Journal::open_read_only(rescued).unwrap();
        assert_eq!(copy.get(id).unwrap().state, State::Armed);
        // Every write is refused from now on, with the same error.
        let w = j
            .transition(id, State::Sent, "sent", Changes::default())
            .unwrap_err();
        assert!(matches!(w, JournalError::Replaced { .. }), "{w:?}");
        assert!(j.create(Operation::Sale, 1, 978, None, "x").is_err());
    }
}

#[test]
fn an_injected_full_disk_fails_writes_until_cleared() {
    let (_d, path) = dir();
    let mut j = Journal::open(&path).unwrap();
    let id = j.create(Operation::Sale, 100, 978, None, "sale").unwrap();
    j.set_fail_writes_after(Some(j.commits()));
    let e = j
        .transition(id, State::CardRead, "card read", Changes::default())
        .unwrap_err();
    assert_eq!(e.kind(), FaultKind::Io);
    assert!(e.to_string().contains("full"), "{e}");
    assert_eq!(j.get(id).unwrap().state, State::Created, "reads still work");
    j.set_fail_writes_after(None);
    j.transition(id, State::CardRead, "card read", Changes::default())
        .unwrap();
}

#[test]
fn a_read_only_copy_is_read_without_writing_anything() {
    let (d, path) = dir();
    let id = {
        let mut j = Journal::open(&path).unwrap();
        armed_sale(&mut j).0
    };
    let copy_dir = d.path().join("copy");
    std::fs::create_dir(&copy_dir).unwrap();
    let copy = copy_dir.join("journal.sqlite");
    std::fs::copy(&path, &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    {
        let j = Journal::open_read_only(&copy).unwrap();
        assert_eq!(j.get(id).unwrap().state, State::Armed);
        assert_eq!(j.list(10).unwrap().len(), 1);
        let report = j.check().unwrap();
        assert_eq!(report.integrity, ["ok"]);
        assert_eq!(report.in_flight, 1);
        j.backup(&d.path().join("from-copy.sqlite")).unwrap();
    }
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        before,
        "not one byte written"
    );
    assert!(!marker_path(&copy).exists(), "no marker made for a copy");
    assert!(Journal::open_read_only(&copy_dir.join("none.sqlite")).is_err());
}

/// A copy on a really read-only filesystem (EROFS): a tmpfs remounted read-only. Needs
/// mount(2) (root); outside CI a machine without it says SKIPPED.
#[test]
fn a_copy_on_a_read_only_filesystem_can_be_read() {
    let (d, path) = dir();
    let id = {
        let mut j = Journal::open(&path).unwrap();
        armed_sale(&mut j).0
    };
    let mnt = d.path().join("ro");
    std::fs::create_dir(&mnt).unwrap();
    let sh = |cmd: &str| {
        std::process::Command::new("sh")
            .args(["-c", cmd])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !sh(&format!(
        "mount -t tmpfs -o size=4m tmpfs '{}' 2>/dev/null",
        mnt.display()
    )) {
        if std::env::var_os("CI").is_some() {
            panic!("mount(2) is not permitted here, and CI must run this test");
        }
        eprintln!("SKIPPED a_copy_on_a_read_only_filesystem_can_be_read: mount(2) not permitted");
        return;
    }
    let copy = mnt.join("journal.sqlite");
    std::fs::copy(&path, &copy).unwrap();
    let remounted = sh(&format!("mount -o remount,ro '{}'", mnt.display()));
    let result = std::panic::catch_unwind(|| {
        assert!(remounted, "remount read-only");
        let j = Journal::open_read_only(&copy).unwrap();
        assert_eq!(j.get(id).unwrap().state, State::Armed);
        // Opening it to write is an error, not a panic and not a new journal.
        assert!(Journal::open(&copy).is_err());
    });
    sh(&format!("umount '{}'", mnt.display()));
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
