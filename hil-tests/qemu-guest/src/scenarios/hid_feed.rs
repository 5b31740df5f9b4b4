//! The device side of the HID gadgets (`usb_f_hid`): what a MagTek vendor-mode swipe reader
//! and a keyboard-wedge reader send, written to the gadget's `/dev/hidgN`.
//!
//! Everything here is the *reader's* part, written from the public documents, not from our
//! host-side drivers: the report descriptor and input report layout of MagTek's "USB HID
//! Swipe Reader" (Technical Reference Manual 99875191), the boot keyboard report descriptor
//! (HID 1.11, Appendix B.1; the same bytes as the example in Linux's
//! `Documentation/usb/gadget_hid.rst`), the keyboard usage IDs (HID Usage Tables 1.12,
//! chapter 10) and the key caps of the German T1 layout (DIN 2137-1).

use std::fs::File;
use std::io::{self, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// MagTek's USB vendor ID.
pub const MAGTEK_VID: u16 = 0x0801;
/// MagTek Mini Swipe Reader, HID (vendor-defined usage page) mode (the USB ID registry,
/// usb.ids: `0801 MagTek`, `0002 Mini Swipe Reader`).
pub const MAGTEK_HID_PID: u16 = 0x0002;
/// MagTek Mini Swipe Reader in keyboard emulation mode (usb.ids: `0001 Mini Swipe Reader
/// (Keyboard Emulation)`).
pub const MAGTEK_KBD_PID: u16 = 0x0001;

/// Size of each track data field of the MagTek input report.
pub const TRACK_FIELD: usize = 110;
/// The MagTek input report: 3 decode status bytes, 3 length bytes, the card encode type and
/// three 110-byte track data fields.
pub const MAGTEK_REPORT_LEN: usize = 7 + 3 * TRACK_FIELD;

/// The report descriptor of MagTek's USB HID swipe readers, as the Technical Reference
/// Manual (99875191, section "Report Descriptor") lists it: vendor usage page 0xFF00; one
/// input report of 8-bit fields in this order: track 1-3 decode status (usages 0x20-0x22),
/// track 1-3 data length (0x28-0x2A), card encode type (0x38), then track 1, 2 and 3 data
/// (0x30-0x32, 110 bytes each, "buffered bytes"); and a 24-byte feature report, the command
/// message (usage 0x20). No report IDs.
pub const MAGTEK_REPORT_DESCRIPTOR: [u8; 61] = [
    0x06, 0x00, 0xFF, // Usage Page (MagTek vendor page 0xFF00)
    0x09, 0x01, // Usage (decoding reader device)
    0xA1, 0x01, // Collection (Application)
    0x15, 0x00, // Logical Minimum (0)
    0x26, 0xFF, 0x00, // Logical Maximum (255)
    0x75, 0x08, // Report Size (8)
    0x09, 0x20, // Usage (track 1 decode status)
    0x09, 0x21, // Usage (track 2 decode status)
    0x09, 0x22, // Usage (track 3 decode status)
    0x09, 0x28, // Usage (track 1 data length)
    0x09, 0x29, // Usage (track 2 data length)
    0x09, 0x2A, // Usage (track 3 data length)
    0x09, 0x38, // Usage (card encode type)
    0x95, 0x07, // Report Count (7)
    0x81, 0x02, // Input (Data, Variable, Absolute)
    0x09, 0x30, // Usage (track 1 data)
    0x95, 0x6E, // Report Count (110)
    0x82, 0x02, 0x01, // Input (Data, Variable, Absolute, Buffered Bytes)
    0x09, 0x31, // Usage (track 2 data)
    0x95, 0x6E, // Report Count (110)
    0x82, 0x02, 0x01, // Input (Buffered Bytes)
    0x09, 0x32, // Usage (track 3 data)
    0x95, 0x6E, // Report Count (110)
    0x82, 0x02, 0x01, // Input (Buffered Bytes)
    0x09, 0x20, // Usage (command message)
    0x95, 0x18, // Report Count (24)
    0xB2, 0x02, 0x01, // Feature (Data, Variable, Absolute, Buffered Bytes)
    0xC0, // End Collection
];

/// The boot keyboard report descriptor (HID 1.11 Appendix B.1; Linux
/// `Documentation/usb/gadget_hid.rst` uses it for its keyboard example): an 8-byte input
/// report (modifier bits, a reserved byte, six key usages) and a 1-byte LED output report.
pub const BOOT_KEYBOARD_DESCRIPTOR: [u8; 63] = [
    0x05, 0x01, // Usage Page (Generic Desktop)
    0x09, 0x06, // Usage (Keyboard)
    0xA1, 0x01, // Collection (Application)
    0x05, 0x07, //   Usage Page (Keyboard/Keypad)
    0x19, 0xE0, //   Usage Minimum (Left Control)
    0x29, 0xE7, //   Usage Maximum (Right GUI)
    0x15, 0x00, //   Logical Minimum (0)
    0x25, 0x01, //   Logical Maximum (1)
    0x75, 0x01, //   Report Size (1)
    0x95, 0x08, //   Report Count (8)
    0x81, 0x02, //   Input (Data, Variable, Absolute): the modifier bits
    0x95, 0x01, //   Report Count (1)
    0x75, 0x08, //   Report Size (8)
    0x81, 0x03, //   Input (Constant): reserved byte
    0x95, 0x05, //   Report Count (5)
    0x75, 0x01, //   Report Size (1)
    0x05, 0x08, //   Usage Page (LEDs)
    0x19, 0x01, //   Usage Minimum (Num Lock)
    0x29, 0x05, //   Usage Maximum (Kana)
    0x91, 0x02, //   Output (Data, Variable, Absolute): the LEDs
    0x95, 0x01, //   Report Count (1)
    0x75, 0x03, //   Report Size (3)
    0x91, 0x03, //   Output (Constant): padding
    0x95, 0x06, //   Report Count (6)
    0x75, 0x08, //   Report Size (8)
    0x15, 0x00, //   Logical Minimum (0)
    0x25, 0x65, //   Logical Maximum (101)
    0x05, 0x07, //   Usage Page (Keyboard/Keypad)
    0x19, 0x00, //   Usage Minimum (0)
    0x29, 0x65, //   Usage Maximum (101)
    0x81, 0x00, //   Input (Data, Array): the keys down
    0xC0, // End Collection
];

/// One track as the MagTek reader reports it.
#[derive(Clone, PartialEq, Eq)]
pub struct TrackReport {
    /// The decode status byte (bit 0: decode error).
    pub status: u8,
    /// The track data as the reader sends it (ASCII with its sentinels), empty if none.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for TrackReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Card data: lengths only.
        f.debug_struct("TrackReport")
            .field("status", &self.status)
            .field("len", &self.data.len())
            .finish()
    }
}

impl TrackReport {
    /// A track that decoded: `text` is the data between the sentinels; `start` the start
    /// sentinel (`%` or `;`). The reader sends the sentinels with the data.
    pub fn ok(start: char, text: &str) -> Self {
        let mut data = Vec::with_capacity(text.len() + 2);
        data.push(start as u8);
        data.extend_from_slice(text.as_bytes());
        data.push(b'?');
        TrackReport { status: 0, data }
    }

    /// A track with a decode error: status bit 0 set, no data.
    pub fn error() -> Self {
        TrackReport {
            status: 0x01,
            data: Vec::new(),
        }
    }

    /// A track with nothing on it: no error, length 0.
    pub fn empty() -> Self {
        TrackReport {
            status: 0,
            data: Vec::new(),
        }
    }
}

/// The card encode type byte: ISO/ABA.
pub const ENCODE_ISO_ABA: u8 = 0;

/// The 337-byte input report of one swipe (layout of 99875191: status bytes, lengths,
/// encode type, track data fields zero-padded). A track longer than its field is cut.
pub fn magtek_report(tracks: &[TrackReport; 3], encode_type: u8) -> Vec<u8> {
    let mut r = vec![0u8; MAGTEK_REPORT_LEN];
    for (i, t) in tracks.iter().enumerate() {
        let len = t.data.len().min(TRACK_FIELD);
        r[i] = t.status;
        r[3 + i] = u8::try_from(len).unwrap_or(u8::MAX);
        let at = 7 + i * TRACK_FIELD;
        r[at..at + len].copy_from_slice(&t.data[..len]);
    }
    r[6] = encode_type;
    r
}

/// The reader's own decoding of one track's raw stripe bits, in whichever direction the
/// card went: the MagTek readers decode both directions and report the data forwards
/// (99875191: the reader is bidirectional). The rig's reader uses `pos_magstripe`'s bit
/// decoder as its firmware. A track that does not decode is a decode error.
pub fn reader_decodes(track: pos_magstripe::Track, bits: &[u8]) -> TrackReport {
    let mut out = pos_magstripe::TrackBuf::new();
    match pos_magstripe::decode_bits(track, bits, &mut out) {
        pos_magstripe::TrackStatus::Ok => {
            TrackReport::ok(char::from(track.start_sentinel()), out.as_str())
        }
        pos_magstripe::TrackStatus::Empty => TrackReport::empty(),
        _ => TrackReport::error(),
    }
}

/// The stripe bits of `text` on `track` as the head sees them: forwards, or reversed (the
/// card swiped the other way). 20 zero bits of clocking before and after.
pub fn stripe_bits(track: pos_magstripe::Track, text: &str, reversed: bool) -> Option<Vec<u8>> {
    let mut bits = vec![0u8; 20 + (text.len() + 3) * track.char_bits() + 20];
    let n = pos_magstripe::encode_bits(track, text, 20, &mut bits).ok()?;
    bits.truncate(n + 20);
    if reversed {
        bits.reverse();
    }
    Some(bits)
}

// ---------------------------------------------------------------------------------------
// A keyboard-wedge reader set to the German layout
// ---------------------------------------------------------------------------------------

/// Left Shift in the modifier byte of a boot keyboard report.
pub const MOD_LEFT_SHIFT: u8 = 0x02;
/// Keyboard usage of Enter.
pub const USAGE_ENTER: u8 = 0x28;
/// Keyboard usage of the space bar.
pub const USAGE_SPACE: u8 = 0x2C;

/// The keys (modifier byte, keyboard usage) a wedge reader set to the German layout presses
/// for `c`, from the German T1 key caps (DIN 2137-1): Y and Z swapped, Shift+7 `/`,
/// Shift+0 `=`, Shift+ß `?`, Shift+comma `;`, `^` the dead key left of 1 followed by Space.
/// Usages from HID Usage Tables 1.12 chapter 10 (named after the US caps: 0x1C is the key
/// at the US `Y`). `None` for characters a swipe of the rig's cards does not have.
pub fn german_keys(c: char) -> Option<Vec<(u8, u8)>> {
    let shift = MOD_LEFT_SHIFT;
    let letter = |l: char| -> u8 {
        // a..z are 0x04..0x1D in US cap order; QWERTZ swaps the Y and Z positions.
        let l = match l {
            'y' => 'z',
            'z' => 'y',
            other => other,
        };
        0x04 + (l as u8 - b'a')
    };
    Some(match c {
        'a'..='z' => vec![(0, letter(c))],
        'A'..='Z' => vec![(shift, letter(c.to_ascii_lowercase()))],
        '1'..='9' => vec![(0, 0x1E + (c as u8 - b'1'))],
        '0' => vec![(0, 0x27)],
        ' ' => vec![(0, USAGE_SPACE)],
        '%' => vec![(shift, 0x22)],               // Shift+5
        '/' => vec![(shift, 0x24)],               // Shift+7
        '=' => vec![(shift, 0x27)],               // Shift+0
        '?' => vec![(shift, 0x2D)],               // Shift+ß (the US "-" position)
        ';' => vec![(shift, 0x36)],               // Shift+comma
        '^' => vec![(0, 0x35), (0, USAGE_SPACE)], // dead circumflex (US "`" position), Space
        _ => return None,
    })
}

/// The boot keyboard reports a German-layout wedge reader sends for `text` and Enter:
/// each key pressed (with its modifiers) and released.
///
/// Errors: the index of a character it cannot type.
pub fn german_reports(text: &str) -> Result<Vec<[u8; 8]>, usize> {
    let mut reports = Vec::new();
    let mut keys = Vec::new();
    for (i, c) in text.chars().enumerate() {
        keys.extend(german_keys(c).ok_or(i)?);
    }
    keys.push((0, USAGE_ENTER));
    for (modifiers, usage) in keys {
        reports.push([modifiers, 0, usage, 0, 0, 0, 0, 0]);
        reports.push([0; 8]);
    }
    Ok(reports)
}

// ---------------------------------------------------------------------------------------
// /dev/hidgN
// ---------------------------------------------------------------------------------------

/// The `/dev/hidgN` node of the `usb_f_hid` function at `function_dir` (its `dev` attribute,
/// `MAJOR:MINOR`, matched in `/sys/class/hidg`).
pub fn hidg_node(function_dir: &Path) -> Option<PathBuf> {
    let dev = std::fs::read_to_string(function_dir.join("dev")).ok()?;
    let dev = dev.trim();
    std::fs::read_dir("/sys/class/hidg")
        .ok()?
        .filter_map(Result::ok)
        .find(|e| std::fs::read_to_string(e.path().join("dev")).is_ok_and(|d| d.trim() == dev))
        .map(|e| Path::new("/dev").join(e.file_name()))
}

/// The gadget side of a HID function: input reports written with a time limit.
#[derive(Debug)]
pub struct HidgWriter {
    file: File,
    path: PathBuf,
}

impl HidgWriter {
    /// Open `path` (`/dev/hidg0`) for writing, non-blocking.
    ///
    /// Errors: the open's, with the path.
    pub fn open(path: &Path) -> Result<Self, String> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(HidgWriter {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Send one input report: wait (until `deadline`) for the previous one to be taken by
    /// the host, then queue this one. `usb_f_hid` keeps one report in flight.
    ///
    /// Errors: the time limit (the host does not poll the endpoint), or the write's error.
    pub fn send(&mut self, report: &[u8], deadline: Instant) -> Result<(), String> {
        loop {
            match self.file.write(report) {
                Ok(n) if n == report.len() => return Ok(()),
                Ok(n) => {
                    return Err(format!(
                        "{}: wrote {n} of {} bytes of a report",
                        self.path.display(),
                        report.len()
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("{}: {e}", self.path.display())),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "{}: the host did not take the previous report in time",
                    self.path.display()
                ));
            }
            self.wait_writable(left);
        }
    }

    /// Wait until the previous report was taken (sent to the host), at most `limit`.
    ///
    /// Errors: the time limit.
    pub fn drain(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            if self.writable_now() {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "{}: the host did not take the last report in time",
                    self.path.display()
                ));
            }
            self.wait_writable(left.min(Duration::from_millis(50)));
        }
    }

    fn writable_now(&self) -> bool {
        self.poll_out(0)
    }

    fn wait_writable(&self, limit: Duration) {
        let ms = i32::try_from(limit.as_millis().clamp(1, 1000)).unwrap_or(1000);
        self.poll_out(ms);
    }

    fn poll_out(&self, ms: i32) -> bool {
        let mut fds = [libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        }];
        // SAFETY: one valid pollfd for the duration of the call; the fd is open.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
        rc > 0 && fds[0].revents & libc::POLLOUT != 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pos_magstripe::hid::{LayoutSource, MagtekLayout, parse_descriptor, parse_report};
    use pos_magstripe::wedge::{KeyboardLayout, WedgeDecoder};

    const T1: &str = "B4111111111111111^DOE/JOHN^2512101";
    const T2: &str = "4111111111111111=2512101";

    #[test]
    fn the_magtek_descriptor_is_the_classic_layout() {
        let d = parse_descriptor(&MAGTEK_REPORT_DESCRIPTOR).unwrap();
        let layout = MagtekLayout::from_descriptor(&d).unwrap();
        assert_eq!(layout.source, LayoutSource::Descriptor);
        assert_eq!(layout.report_len, MAGTEK_REPORT_LEN);
        assert_eq!(
            MagtekLayout {
                source: LayoutSource::Default,
                ..layout
            },
            MagtekLayout::default()
        );
    }

    #[test]
    fn reports_parse_as_the_reader_meant() {
        let layout = MagtekLayout::default();
        let r = magtek_report(
            &[
                TrackReport::ok('%', T1),
                TrackReport::ok(';', T2),
                TrackReport::empty(),
            ],
            ENCODE_ISO_ABA,
        );
        assert_eq!(r.len(), MAGTEK_REPORT_LEN);
        let s = parse_report(&layout, &r).unwrap();
        let data = |i: usize| s.swipe.tracks[i].data.as_ref().unwrap().expose().to_vec();
        assert_eq!(data(0), T1.as_bytes());
        assert_eq!(data(1), T2.as_bytes());
        assert_eq!(
            s.swipe.statuses(),
            [
                pos_hal::TrackStatus::Ok,
                pos_hal::TrackStatus::Ok,
                pos_hal::TrackStatus::Empty
            ]
        );
        let bad = magtek_report(
            &[
                TrackReport::error(),
                TrackReport::ok(';', T2),
                TrackReport::empty(),
            ],
            ENCODE_ISO_ABA,
        );
        let s = parse_report(&layout, &bad).unwrap();
        assert_eq!(s.swipe.statuses()[0], pos_hal::TrackStatus::Parity);
        assert!(!format!("{:?}", TrackReport::ok(';', T2)).contains("4111"));
    }

    #[test]
    fn the_reader_decodes_reversed_swipes_forwards() {
        for (track, text) in [
            (pos_magstripe::Track::One, T1),
            (pos_magstripe::Track::Two, T2),
        ] {
            let fwd = stripe_bits(track, text, false).unwrap();
            let rev = stripe_bits(track, text, true).unwrap();
            assert_ne!(fwd, rev);
            let start = char::from(track.start_sentinel());
            assert_eq!(reader_decodes(track, &fwd), TrackReport::ok(start, text));
            assert_eq!(reader_decodes(track, &rev), TrackReport::ok(start, text));
        }
        // Damaged bits are a decode error.
        let mut bits = stripe_bits(pos_magstripe::Track::Two, T2, false).unwrap();
        bits[40] ^= 1;
        assert_eq!(
            reader_decodes(pos_magstripe::Track::Two, &bits),
            TrackReport::error()
        );
    }

    /// What the kernel's hid-input does with the keyboard usages (its `hid_keyboard`
    /// table), for the usages the German reader sends: the Linux `KEY_*` code.
    fn usage_to_key(usage: u8) -> u16 {
        // a..z in usage order -> KEY_A.. codes (linux/input-event-codes.h).
        const LETTERS: [u16; 26] = [
            30, 48, 46, 32, 18, 33, 34, 35, 23, 36, 37, 38, 50, 49, 24, 25, 16, 19, 31, 20, 22, 47,
            17, 45, 21, 44,
        ];
        match usage {
            0x04..=0x1D => LETTERS[usize::from(usage - 0x04)],
            0x1E..=0x27 => u16::from(usage - 0x1E) + 2,
            0x28 => 28,
            0x2C => 57,
            0x2D => 12,
            0x35 => 41,
            0x36 => 51,
            other => panic!("usage {other:#x} not in the test's table"),
        }
    }

    fn key_events(reports: &[[u8; 8]]) -> Vec<(u16, i32)> {
        let mut events = Vec::new();
        let mut down: Option<(u8, u8)> = None;
        for r in reports {
            if r[2] != 0 {
                if r[0] & MOD_LEFT_SHIFT != 0 {
                    events.push((42, 1));
                }
                events.push((usage_to_key(r[2]), 1));
                down = Some((r[0], r[2]));
            } else if let Some((m, u)) = down.take() {
                events.push((usage_to_key(u), 0));
                if m & MOD_LEFT_SHIFT != 0 {
                    events.push((42, 0));
                }
            }
        }
        events
    }

    fn decode(layout: KeyboardLayout, events: &[(u16, i32)]) -> Option<String> {
        let mut d = WedgeDecoder::new(Duration::from_secs(1)).with_layout(layout);
        let mut out = None;
        for (i, &(code, value)) in events.iter().enumerate() {
            if let Some(s) = d.key(code, value, Duration::from_millis(i as u64)) {
                out = Some(s.text);
            }
        }
        out
    }

    #[test]
    fn german_keys_decode_with_the_german_layout_only() {
        let swipe = "%B4111111111111111^ZAYTSEV/YURI^2512101?;4111111111111111=2512101?";
        let reports = german_reports(swipe).unwrap();
        // Every key pressed and released; the last one is Enter.
        assert_eq!(reports.len() % 2, 0);
        assert_eq!(reports[reports.len() - 2][2], USAGE_ENTER);
        let events = key_events(&reports);
        assert_eq!(decode(KeyboardLayout::De, &events).unwrap(), swipe);
        let us = decode(KeyboardLayout::Us, &events).unwrap();
        assert_ne!(us, swipe);
        let [t1, t2, t3] = pos_magstripe::parse_ascii(&us);
        assert!(
            [t1.status, t2.status, t3.status]
                .iter()
                .all(|s| *s != pos_magstripe::TrackStatus::Ok)
        );
        assert_eq!(german_reports("a€"), Err(1));
    }
}
