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

// ---------------------------------------------------------------------------------------
// The hidraw road (`usb:VID:PID?via=hidraw`)
// ---------------------------------------------------------------------------------------

use std::os::fd::FromRawFd as _;
use std::path::{Path, PathBuf};

use pos_link::UsbSelector;
use pos_magstripe::hid::{HidrawLookup, HidrawTransport, find_hidraw};

/// A connected `SOCK_SEQPACKET` pair: like a hidraw node, each read hands one whole message
/// (a report), and the peer closing is an end of file.
fn packet_pair() -> (std::fs::File, std::os::unix::net::UnixStream) {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: socketpair fills the two descriptors on success; both are then owned here.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0);
    // SAFETY: fresh descriptors from socketpair, each wrapped once.
    unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::os::unix::net::UnixStream::from_raw_fd(fds[1]),
        )
    }
}

#[test]
fn the_hidraw_transport_reads_whole_reports_and_sees_the_device_go() {
    use std::io::Write as _;
    let (reader, mut device) = packet_pair();
    let transport = HidrawTransport::from_file(reader, "usb:0801:0002?via=hidraw");
    let mut m = HidMsr::new(
        transport,
        "usb:0801:0002?via=hidraw",
        MagtekLayout::default(),
    );
    // Nothing sent: a timeout.
    let t = std::time::Instant::now();
    let e = m.wait_for_swipe(Duration::from_millis(60)).unwrap_err();
    assert_eq!(e.kind(), FaultKind::Timeout);
    assert!(t.elapsed() >= Duration::from_millis(50));
    // One report, one read.
    device
        .write_all(&report([0, 0, 0], [T1, T2, b""], 0))
        .unwrap();
    let s = m.wait_for_swipe(Duration::from_secs(2)).unwrap();
    assert_eq!(data(&s, 1), &T2[1..T2.len() - 1]);
    assert_eq!(s.statuses()[0], TrackStatus::Ok);
    // The device goes (usbhid unbound, unplugged): disconnected, and the reader stays in
    // error.
    drop(device);
    let e = m.wait_for_swipe(Duration::from_secs(2)).unwrap_err();
    assert_eq!(e.kind(), FaultKind::Disconnected, "{e}");
    assert_eq!(m.state(), DeviceState::Error);
}

/// A sysfs tree like the kernel's: `bus/usb/devices/3-1` and `class/hidraw/hidrawN` are
/// links into `devices/...`; each hid device holds its `report_descriptor`.
struct FakeSysfs {
    root: PathBuf,
}

impl FakeSysfs {
    fn new() -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "msr-sysfs-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        for d in ["bus/usb/devices", "class/hidraw", "devices/pci0/usb3"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        FakeSysfs { root }
    }

    /// A USB device `name` (`3-1`) with `hidraw` nodes (number, descriptor).
    fn device(&self, name: &str, vid: &str, pid: &str, serial: &str, hidraw: &[(u32, &[u8])]) {
        let dir = self.root.join("devices/pci0/usb3").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("idVendor"), format!("{vid}\n")).unwrap();
        std::fs::write(dir.join("idProduct"), format!("{pid}\n")).unwrap();
        std::fs::write(dir.join("serial"), format!("{serial}\n")).unwrap();
        std::os::unix::fs::symlink(&dir, self.root.join("bus/usb/devices").join(name)).unwrap();
        for (i, (n, desc)) in hidraw.iter().enumerate() {
            let hid = dir.join(format!("{name}:1.{i}/0003:{vid}:{pid}.000{n}"));
            let node = hid.join(format!("hidraw/hidraw{n}"));
            std::fs::create_dir_all(&node).unwrap();
            std::fs::write(hid.join("report_descriptor"), desc).unwrap();
            std::os::unix::fs::symlink(&hid, node.join("device")).unwrap();
            std::os::unix::fs::symlink(
                &node,
                self.root.join("class/hidraw").join(format!("hidraw{n}")),
            )
            .unwrap();
        }
    }

    fn find(&self, selector: &str, serial: Option<&str>) -> Result<Vec<PathBuf>, HidrawLookup> {
        let uri: DeviceUri = selector.parse().unwrap();
        let pos_link::Address::Usb(sel) = uri.address() else {
            panic!("not usb: {selector}")
        };
        let sel: &UsbSelector = sel;
        find_hidraw(&self.root, Path::new("/dev"), sel, serial)
            .map(|v| v.into_iter().map(|n| n.node).collect())
    }
}

impl Drop for FakeSysfs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[test]
fn hidraw_nodes_are_found_under_their_usb_device() {
    let sys = FakeSysfs::new();
    let magtek_desc: &[u8] = &[0x06, 0x00, 0xFF];
    sys.device("3-1", "0801", "0002", "A1", &[(1, magtek_desc)]);
    sys.device("3-2", "0801", "0002", "B2", &[(2, b""), (4, b"")]);
    sys.device("1-1", "08e6", "4433", "", &[]);
    // By VID:PID with a serial, by port path.
    assert_eq!(
        sys.find("usb:0801:0002", Some("A1")),
        Ok(vec![PathBuf::from("/dev/hidraw1")])
    );
    assert_eq!(
        sys.find("usb:3-2", None),
        Ok(vec![
            PathBuf::from("/dev/hidraw2"),
            PathBuf::from("/dev/hidraw4")
        ])
    );
    // Two readers of the same VID:PID and no serial: ambiguous, never a guess.
    assert_eq!(
        sys.find("usb:0801:0002", None),
        Err(HidrawLookup::Ambiguous(2))
    );
    assert_eq!(
        sys.find("usb:0801:0002", Some("C3")),
        Err(HidrawLookup::NoDevice)
    );
    assert_eq!(sys.find("usb:0801:0011", None), Err(HidrawLookup::NoDevice));
    // A USB device without a HID interface (or with usbhid unbound).
    assert_eq!(sys.find("usb:08e6:4433", None), Err(HidrawLookup::NoHidraw));
    // The descriptor comes along.
    let uri: DeviceUri = "usb:3-1".parse().unwrap();
    let pos_link::Address::Usb(sel) = uri.address() else {
        panic!()
    };
    let nodes = find_hidraw(&sys.root, Path::new("/dev"), sel, None).unwrap();
    assert_eq!(nodes[0].descriptor, magtek_desc);
    // No sysfs at all.
    assert_eq!(
        find_hidraw(&sys.root.join("none"), Path::new("/dev"), sel, None),
        Err(HidrawLookup::NoDevice)
    );
}

#[test]
fn open_checks_the_via_option() {
    let uri: DeviceUri = "usb:0801:0002?via=bluetooth".parse().unwrap();
    let e = open(&uri).unwrap_err();
    assert_eq!(e.kind(), FaultKind::InvalidInput);
    assert!(e.to_string().contains("bluetooth"), "{e}");
    // The hidraw road of a device that is not there.
    let uri: DeviceUri = "usb:0801:7fff?via=hidraw".parse().unwrap();
    let e = open(&uri).unwrap_err();
    assert_eq!(e.kind(), FaultKind::NotFound, "{e}");
}
