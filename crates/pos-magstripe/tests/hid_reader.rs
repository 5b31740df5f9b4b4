//! MagTek-style input reports and the HID reader over a scripted transport (the rusb path
//! needs a real reader: only `open` of a missing device is tested here).
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::time::Duration;

use pos_hal::{Device, DeviceEvent, DeviceState, Fault, FaultKind, MagstripeReader, TrackStatus};
use pos_link::{Deadline, DeviceUri, LinkError, Operation};
use pos_magstripe::hid::{
    CardEncodeType, HidMsr, HidTransport, MagtekLayout, ReportError, open, parse_report,
};
use pos_magstripe::serial::MsrError;
use proptest::prelude::*;

const T1: &[u8] = b"%B4111111111111111^DOE/JOHN^25121010000000000000?";
const T2: &[u8] = b";4111111111111111=25121010000000000000?";

/// A classic 337-byte report: statuses, lengths, encode type, three 110-byte fields.
fn report(status: [u8; 3], tracks: [&[u8]; 3], encode: u8) -> Vec<u8> {
    let mut r = vec![0u8; 337];
    r[..3].copy_from_slice(&status);
    for (t, data) in tracks.iter().enumerate() {
        r[3 + t] = data.len() as u8;
        r[7 + 110 * t..7 + 110 * t + data.len()].copy_from_slice(data);
    }
    r[6] = encode;
    r
}

fn data(s: &pos_hal::Swipe, i: usize) -> Vec<u8> {
    s.tracks[i]
        .data
        .as_ref()
        .map(|d| d.expose().to_vec())
        .unwrap_or_default()
}

#[test]
fn tracks_one_and_two_with_sentinels_stripped() {
    let r = report([0, 0, 0], [T1, T2, b""], 0);
    let hs = parse_report(&MagtekLayout::default(), &r).unwrap();
    assert_eq!(hs.encode_type, Some(CardEncodeType::IsoAba));
    assert_eq!(
        hs.swipe.statuses(),
        [TrackStatus::Ok, TrackStatus::Ok, TrackStatus::Empty]
    );
    assert_eq!(
        data(&hs.swipe, 0),
        b"B4111111111111111^DOE/JOHN^25121010000000000000"
    );
    assert_eq!(data(&hs.swipe, 1), b"4111111111111111=25121010000000000000");
    assert!(hs.swipe.tracks[2].data.is_none());
    // The parsed track 2 is a valid ISO 7813 track.
    let t2 = String::from_utf8(data(&hs.swipe, 1)).unwrap();
    let parsed = pos_magstripe::Track2Data::parse(&t2).unwrap();
    assert!(!format!("{parsed:?}").contains("4111111111111111"));
    // Debug output of the swipe never shows the PAN.
    assert!(!format!("{hs:?}").contains("4111111111111111"));
}

#[test]
fn decode_errors_per_track() {
    // Track 1 error (bit 0), track 2 fine, track 3 error with reserved bits set too.
    let r = report([0x01, 0x00, 0xFF], [b"", T2, b""], 4);
    let hs = parse_report(&MagtekLayout::default(), &r).unwrap();
    assert_eq!(
        hs.swipe.statuses(),
        [TrackStatus::Parity, TrackStatus::Ok, TrackStatus::Parity]
    );
    assert_eq!(hs.encode_type, Some(CardEncodeType::Other));
    // Reserved bits alone are not an error (bit 0 is the error flag).
    let r = report([0x02, 0, 0], [T1, b"", b""], 0);
    let hs = parse_report(&MagtekLayout::default(), &r).unwrap();
    assert_eq!(hs.swipe.tracks[0].status, TrackStatus::Ok);
}

#[test]
fn bad_lengths_and_bytes() {
    let mut r = report([0, 0, 0], [T1, T2, b";123?"], 99);
    r[3] = 111; // longer than the 110-byte field
    r[7 + 110 + 3] = 0x80; // non-ASCII byte in track 2
    let hs = parse_report(&MagtekLayout::default(), &r).unwrap();
    assert_eq!(
        hs.swipe.statuses(),
        [
            TrackStatus::EndSentinel,
            TrackStatus::Parity,
            TrackStatus::Ok
        ]
    );
    assert_eq!(data(&hs.swipe, 2), b"123");
    assert_eq!(hs.encode_type, Some(CardEncodeType::Unknown(99)));
    // Sentinels only: empty.
    let r = report([0, 0, 0], [b"%?", b"", b""], 3);
    let hs = parse_report(&MagtekLayout::default(), &r).unwrap();
    assert_eq!(hs.swipe.tracks[0].status, TrackStatus::Empty);
    assert_eq!(hs.encode_type, Some(CardEncodeType::Blank));
}

#[test]
fn short_and_foreign_reports_are_errors() {
    let r = report([0, 0, 0], [T1, T2, b""], 0);
    assert_eq!(
        parse_report(&MagtekLayout::default(), &r[..200]),
        Err(ReportError::Short {
            len: 200,
            expected: 337
        })
    );
    let layout = MagtekLayout {
        report_id: Some(1),
        ..MagtekLayout::default()
    };
    assert_eq!(
        parse_report(&layout, &[2u8; 337]),
        Err(ReportError::OtherReport { id: 2 })
    );
    assert!(parse_report(&layout, &[]).is_err());
}

proptest! {
    #[test]
    fn garbage_reports_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_report(&MagtekLayout::default(), &bytes);
    }

    #[test]
    fn odd_layouts_never_panic(
        offs in proptest::collection::vec(0usize..500, 13),
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        len in 0usize..400,
    ) {
        let track = |i: usize| Some(pos_magstripe::hid::TrackFields {
            status: offs[i],
            length: offs[i + 3],
            data: offs[i + 6],
            data_len: offs[i + 9],
        });
        let layout = MagtekLayout {
            report_id: None,
            tracks: [track(0), track(1), track(2)],
            encode_type: Some(offs[12]),
            report_len: len,
            source: pos_magstripe::hid::LayoutSource::Default,
        };
        if let Ok(hs) = parse_report(&layout, &bytes) {
            for t in &hs.swipe.tracks {
                prop_assert_eq!(t.data.is_some(), t.status == TrackStatus::Ok);
            }
        }
    }
}

/// A transport that hands out scripted transfers, then times out (or disconnects).
struct Script {
    transfers: VecDeque<Result<Vec<u8>, FaultKind>>,
}

impl Script {
    fn new(transfers: Vec<Result<Vec<u8>, FaultKind>>) -> Self {
        Script {
            transfers: transfers.into(),
        }
    }
}

impl HidTransport for Script {
    fn target(&self) -> &str {
        "usb:0801:0002"
    }

    fn read_input(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError> {
        match self.transfers.pop_front() {
            Some(Ok(t)) => {
                assert!(t.len() <= buf.len(), "transfer larger than the buffer");
                buf[..t.len()].copy_from_slice(&t);
                Ok(t.len())
            }
            Some(Err(FaultKind::Disconnected)) => Err(LinkError::disconnected(
                "usb:0801:0002",
                Operation::Read,
                "gone",
            )),
            _ => Err(LinkError::timeout(
                "usb:0801:0002",
                Operation::Read,
                deadline.waited(),
                0,
            )),
        }
    }

    fn max_transfer(&self) -> usize {
        64
    }
}

fn msr(transfers: Vec<Result<Vec<u8>, FaultKind>>) -> HidMsr<Script> {
    HidMsr::new(
        Script::new(transfers),
        "usb:0801:0002",
        MagtekLayout::default(),
    )
}

#[test]
fn a_report_split_over_packets_is_reassembled() {
    let r = report([0, 0, 0], [T1, T2, b""], 0);
    let mut transfers: Vec<_> = r.chunks(64).map(|c| Ok(c.to_vec())).collect();
    // Padding after the report's last byte in the same transfer is dropped.
    if let Some(Ok(last)) = transfers.last_mut() {
        last.extend_from_slice(&[0xEE; 5]);
    }
    transfers.extend(r.chunks(64).map(|c| Ok(c.to_vec())));
    let mut m = msr(transfers);
    let sub = m.subscribe().unwrap();
    for _ in 0..2 {
        let s = m.wait_for_swipe(Duration::from_millis(200)).unwrap();
        assert_eq!(
            s.statuses(),
            [TrackStatus::Ok, TrackStatus::Ok, TrackStatus::Empty]
        );
        assert_eq!(data(&s, 1), &T2[1..T2.len() - 1]);
        let ev = sub.recv_timeout(Duration::from_secs(1)).unwrap();
        match &ev.event {
            DeviceEvent::Swiped { tracks } => assert_eq!(*tracks, s.statuses()),
            other => panic!("unexpected event {other:?}"),
        }
        // Not the timestamp, whose digits could look like a PAN's.
        assert!(!format!("{:?} {:?}", ev.device, ev.event).contains("4111"));
    }
    assert_eq!(m.state(), DeviceState::Idle);
    let e = m.wait_for_swipe(Duration::from_millis(20)).unwrap_err();
    assert_eq!(e.kind(), FaultKind::Timeout);
}

#[test]
fn incomplete_and_unreadable_swipes() {
    let bad = report([1, 1, 0], [b"", b"", b""], 5);
    let good = report([0, 0, 0], [b"", T2, b""], 0);
    let mut m = msr(vec![
        Ok(good[..100].to_vec()),
        Err(FaultKind::Timeout), // the rest never comes: dropped
        Ok(bad.clone()),
        Ok(good.clone()),
    ])
    .with_report_gap(Duration::from_millis(10));
    let e = m.wait_for_swipe(Duration::from_millis(500)).unwrap_err();
    assert_eq!(e.kind(), FaultKind::BadRead);
    match e {
        MsrError::BadRead { tracks } => assert_eq!(
            tracks,
            [TrackStatus::Parity, TrackStatus::Parity, TrackStatus::Empty]
        ),
        other => panic!("unexpected {other:?}"),
    }
    let s = m.wait_for_swipe(Duration::from_millis(500)).unwrap();
    assert_eq!(s.tracks[1].status, TrackStatus::Ok);
}

#[test]
fn disconnect_puts_the_reader_in_error() {
    let mut m = msr(vec![Err(FaultKind::Disconnected)]);
    let sub = m.subscribe().unwrap();
    let e = m.wait_for_swipe(Duration::from_millis(100)).unwrap_err();
    assert_eq!(e.kind(), FaultKind::Disconnected);
    assert_eq!(m.state(), DeviceState::Error);
    assert!(matches!(
        sub.recv_timeout(Duration::from_secs(1)).unwrap().event,
        DeviceEvent::Disconnected { .. }
    ));
    let e = m.wait_for_swipe(Duration::from_millis(100)).unwrap_err();
    assert_eq!(e.kind(), FaultKind::Disconnected);
    let h = m.check_health(pos_hal::HealthLevel::Internal).unwrap();
    assert!(!format!("{h:?}").is_empty());
}

#[test]
fn open_of_a_missing_device_fails_cleanly() {
    let uri: DeviceUri = "usb:0801:0002".parse().unwrap();
    let e = open(&uri).unwrap_err();
    eprintln!("open usb:0801:0002 -> {:?}: {e}", e.kind());
    assert!(
        matches!(e.kind(), FaultKind::NotFound | FaultKind::Io),
        "{e}: {:?}",
        e.kind()
    );
    let uri: DeviceUri = "serial:/dev/ttyS0".parse().unwrap();
    assert_eq!(open(&uri).unwrap_err().kind(), FaultKind::InvalidInput);
}
