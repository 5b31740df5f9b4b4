//! USB HID magnetic-stripe readers in vendor mode (MagTek-style input reports), read through
//! interrupt transfers.
//!
//! Such a reader (e.g. the MagTek "USB HID Swipe Reader", vendor id `0x0801`) sends one
//! input report per swipe on its interrupt IN endpoint. The report fields are described in
//! the vendor usage page `0xFF00`:
//!
//! | usage  | field                                  | classic offset | size |
//! |--------|----------------------------------------|----------------|------|
//! | `0x20`-`0x22` | track 1/2/3 decode status       | 0, 1, 2        | 1    |
//! | `0x28`-`0x2A` | track 1/2/3 data length         | 3, 4, 5        | 1    |
//! | `0x38` | card encode type                       | 6              | 1    |
//! | `0x30`-`0x32` | track 1/2/3 data (ASCII, with sentinels) | 7, 117, 227 | 110 |
//!
//! (337 bytes in all on the classic readers; other models use other field sizes, which is
//! why the offsets are taken from the device's HID report descriptor when it can be read.)
//!
//! * [`parse_descriptor`] is a small HID report descriptor parser: it locates every field of
//!   every input, output and feature report by usage ([`ReportDescriptor`], [`HidField`]).
//! * [`MagtekLayout`] holds where the MagTek fields are: found in a descriptor
//!   ([`MagtekLayout::from_descriptor`]) or the documented defaults
//!   ([`MagtekLayout::default`]).
//! * [`parse_report`] turns one input report into a [`HidSwipe`] (a [`pos_hal::Swipe`] plus
//!   the card encode type).
//! * [`HidMsr`] is the reader ([`pos_hal::Device`] + [`pos_hal::MagstripeReader`]) over any
//!   [`HidTransport`]; [`open`] opens a `usb:VID:PID` URI through
//!   [`pos_link::usb::UsbLink`] (claiming the HID interface: the kernel's `usbhid` driver is
//!   detached while the reader is open, which `pos-link` logs at info level), or with
//!   `?via=hidraw` through the kernel's hidraw node of that USB device ([`HidrawTransport`]:
//!   `usbhid` stays bound; only the hidraw node needs to be readable, not usbfs).
//!
//! Track status mapping: the reader reports only "decode error" (bit 0 of the decode status
//! byte; bits 7-1 are reserved and ignored), which becomes [`pos_hal::TrackStatus::Parity`]
//! (the same choice as the `E` token of ASCII readers). A track with length 0 and no error
//! is `Empty`; a length beyond the data field is `EndSentinel`; data with non-printable
//! bytes is `Parity`; a track the layout does not have is `NotSupported`.
//!
//! Device bytes never cause a panic. Track data is never logged and never put in events:
//! logs and [`pos_hal::DeviceEvent::Swiped`] carry lengths and statuses only.

use std::fmt;
use std::fs::File;
use std::io::{self, Read as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};

use pos_hal::{Fault, FaultKind, Sensitive, Swipe, TrackStatus};
use pos_link::usb::{CLASS_HID, UsbLink, UsbOpenOptions};
use pos_link::{
    Address, Deadline, DeviceUri, Link, LinkError, Operation, UsbSelector, classify_io,
};

use crate::core::{ReaderCore, wipe};
use crate::serial::MsrError;

/// The MagTek vendor usage page of the magnetic-stripe reader fields.
pub const MAGTEK_USAGE_PAGE: u16 = 0xFF00;
/// Usage of the track 1 decode status (tracks 2 and 3: `+1`, `+2`).
pub const USAGE_DECODE_STATUS: u16 = 0x20;
/// Usage of the track 1 data length (tracks 2 and 3: `+1`, `+2`).
pub const USAGE_DATA_LENGTH: u16 = 0x28;
/// Usage of the track 1 data (tracks 2 and 3: `+1`, `+2`).
pub const USAGE_TRACK_DATA: u16 = 0x30;
/// Usage of the card encode type.
pub const USAGE_CARD_ENCODE_TYPE: u16 = 0x38;

/// Size of each track data field on the classic readers.
pub const DEFAULT_TRACK_FIELD: usize = 110;
/// Size of the classic input report (7 header bytes and three track data fields).
pub const DEFAULT_REPORT_LEN: usize = 7 + 3 * DEFAULT_TRACK_FIELD;

/// Longest report descriptor read from a device.
const MAX_DESCRIPTOR: usize = 4096;
/// Most fields kept from one descriptor (a hostile descriptor cannot use unbounded memory).
const MAX_FIELDS: usize = 1024;
/// Most local usages kept for one main item.
const MAX_USAGES: usize = 256;
/// Deepest global item stack (Push).
const MAX_STACK: usize = 16;
/// Longest report accepted (a descriptor cannot make the reader buffer grow without bound).
const MAX_REPORT: usize = 8192;

// ---------------------------------------------------------------------------------------
// Report descriptor parser
// ---------------------------------------------------------------------------------------

/// The three kinds of report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportKind {
    /// Device to host, on the interrupt IN endpoint.
    Input,
    /// Host to device.
    Output,
    /// Configuration, through GET/SET_REPORT.
    Feature,
}

/// One data field of a report, as the descriptor places it.
///
/// A main item with several usages gives one field per usage, each `Report Size` bits; the
/// last usage takes the rest of the item's `Report Count` (so a single usage over
/// `Report Count (110)` of 8-bit values is one 110-byte field, the MagTek track data style).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HidField {
    /// Input, output or feature.
    pub kind: ReportKind,
    /// The report ID (`None` when the descriptor uses no report IDs).
    pub report_id: Option<u8>,
    /// Usage page of the field's usage.
    pub usage_page: u16,
    /// The usage ID.
    pub usage: u16,
    /// Offset in bits from the start of the report data (after the report ID byte, if any).
    pub bit_offset: u32,
    /// Size in bits.
    pub bit_len: u32,
}

impl HidField {
    /// Byte offset and byte length in the report *as received* (the report ID byte counted
    /// when the descriptor uses report IDs), if the field is byte aligned.
    pub fn byte_range(&self, has_report_ids: bool) -> Option<(usize, usize)> {
        if self.bit_offset % 8 != 0 || self.bit_len % 8 != 0 || self.bit_len == 0 {
            return None;
        }
        let start = usize::try_from(self.bit_offset / 8).ok()? + usize::from(has_report_ids);
        Some((start, usize::try_from(self.bit_len / 8).ok()?))
    }
}

/// The fields of a parsed report descriptor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportDescriptor {
    /// Every data field (variable main items; constant and array items are not listed).
    pub fields: Vec<HidField>,
    /// True when the descriptor declares report IDs (each report then starts with its ID).
    pub has_report_ids: bool,
    /// Size in bits of each report seen: (kind, report ID, bits).
    pub report_bits: Vec<(ReportKind, Option<u8>, u32)>,
}

impl ReportDescriptor {
    /// The input field with this usage (the first one, if several).
    pub fn input_field(&self, usage_page: u16, usage: u16) -> Option<&HidField> {
        self.fields
            .iter()
            .find(|f| f.kind == ReportKind::Input && f.usage_page == usage_page && f.usage == usage)
    }

    /// Size in bytes of a report as received (report ID byte included when used).
    pub fn report_len(&self, kind: ReportKind, report_id: Option<u8>) -> Option<usize> {
        self.report_bits
            .iter()
            .find(|(k, id, _)| *k == kind && *id == report_id)
            .and_then(|(_, _, bits)| usize::try_from(bits.div_ceil(8)).ok())
            .map(|n| n + usize::from(self.has_report_ids))
    }
}

/// Why a report descriptor could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DescriptorError {
    /// An item runs past the end of the descriptor.
    Truncated {
        /// Offset of the item's prefix byte.
        offset: usize,
    },
    /// Pop with nothing pushed, or more than 16 nested Push items.
    Stack {
        /// Offset of the item's prefix byte.
        offset: usize,
    },
    /// A report grows past 8192 bytes, or the descriptor has more than 1024 fields.
    TooLarge {
        /// Offset of the item's prefix byte.
        offset: usize,
    },
}

impl fmt::Display for DescriptorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DescriptorError::Truncated { offset } => {
                write!(f, "HID report descriptor: item at byte {offset} is cut off")
            }
            DescriptorError::Stack { offset } => {
                write!(f, "HID report descriptor: bad Push/Pop at byte {offset}")
            }
            DescriptorError::TooLarge { offset } => {
                write!(f, "HID report descriptor: too large at byte {offset}")
            }
        }
    }
}

impl std::error::Error for DescriptorError {}

#[derive(Debug, Clone, Copy, Default)]
struct Globals {
    usage_page: u16,
    report_size: u32,
    report_count: u32,
    report_id: Option<u8>,
}

/// Parse a HID report descriptor (HID 1.11 section 6.2.2): short items of 0, 1, 2 or 4 data
/// bytes; Usage Page, Usage (2-byte, or 4-byte with the page in the high half), Report Size,
/// Report Count, Report ID, Push, Pop; Input, Output, Feature, Collection, End Collection.
/// Long items and other items are skipped. Never panics.
///
/// Errors: [`DescriptorError`].
pub fn parse_descriptor(bytes: &[u8]) -> Result<ReportDescriptor, DescriptorError> {
    let mut out = ReportDescriptor::default();
    let mut g = Globals::default();
    let mut stack: Vec<Globals> = Vec::new();
    let mut usages: Vec<(u16, u16)> = Vec::new();
    // Bit offsets per (kind, report id).
    let mut offsets: Vec<(ReportKind, Option<u8>, u32)> = Vec::new();
    let mut i = 0usize;
    while let Some(&prefix) = bytes.get(i) {
        let at = i;
        if prefix == 0xFE {
            // Long item: bDataSize, bLongItemTag, data.
            let size = usize::from(
                *bytes
                    .get(i + 1)
                    .ok_or(DescriptorError::Truncated { offset: at })?,
            );
            i = i + 3 + size;
            if i > bytes.len() {
                return Err(DescriptorError::Truncated { offset: at });
            }
            continue;
        }
        let size = match prefix & 0x03 {
            3 => 4,
            n => usize::from(n),
        };
        let data = bytes
            .get(i + 1..i + 1 + size)
            .ok_or(DescriptorError::Truncated { offset: at })?;
        i += 1 + size;
        let mut value = 0u32;
        for (k, b) in data.iter().enumerate() {
            value |= u32::from(*b) << (8 * k);
        }
        let item_type = (prefix >> 2) & 0x03;
        let tag = prefix >> 4;
        match (item_type, tag) {
            // Main items.
            (0, 0x8) | (0, 0x9) | (0, 0xB) => {
                let kind = match tag {
                    0x8 => ReportKind::Input,
                    0x9 => ReportKind::Output,
                    _ => ReportKind::Feature,
                };
                let bits = g
                    .report_size
                    .checked_mul(g.report_count)
                    .filter(|&b| u64::from(b) <= (MAX_REPORT as u64) * 8);
                let bits = bits.ok_or(DescriptorError::TooLarge { offset: at })?;
                let slot = match offsets
                    .iter()
                    .position(|(k, id, _)| *k == kind && *id == g.report_id)
                {
                    Some(p) => p,
                    None => {
                        offsets.push((kind, g.report_id, 0));
                        offsets.len() - 1
                    }
                };
                let start = offsets.get(slot).map_or(0, |(_, _, b)| *b);
                let end = start
                    .checked_add(bits)
                    .filter(|&e| u64::from(e) <= (MAX_REPORT as u64) * 8)
                    .ok_or(DescriptorError::TooLarge { offset: at })?;
                let constant = value & 0x01 != 0;
                let variable = value & 0x02 != 0;
                if !constant && variable && !usages.is_empty() && bits > 0 {
                    let n = u32::try_from(usages.len()).unwrap_or(u32::MAX);
                    for (k, &(page, usage)) in usages.iter().enumerate() {
                        let k = u32::try_from(k).unwrap_or(u32::MAX);
                        if k >= g.report_count {
                            break;
                        }
                        let count = if k + 1 == n { g.report_count - k } else { 1 };
                        if out.fields.len() >= MAX_FIELDS {
                            return Err(DescriptorError::TooLarge { offset: at });
                        }
                        out.fields.push(HidField {
                            kind,
                            report_id: g.report_id,
                            usage_page: page,
                            usage,
                            bit_offset: start + k * g.report_size,
                            bit_len: count * g.report_size,
                        });
                    }
                }
                if let Some(o) = offsets.get_mut(slot) {
                    o.2 = end;
                }
                usages.clear();
            }
            // Collection / End Collection (and other main items): local state ends.
            (0, _) => usages.clear(),
            // Global items.
            (1, 0x0) => g.usage_page = (value & 0xFFFF) as u16,
            (1, 0x7) => g.report_size = value,
            (1, 0x8) => {
                g.report_id = Some((value & 0xFF) as u8);
                out.has_report_ids = true;
            }
            (1, 0x9) => g.report_count = value,
            (1, 0xA) => {
                if stack.len() >= MAX_STACK {
                    return Err(DescriptorError::Stack { offset: at });
                }
                stack.push(g);
            }
            (1, 0xB) => g = stack.pop().ok_or(DescriptorError::Stack { offset: at })?,
            // Local: Usage.
            (2, 0x0) if usages.len() < MAX_USAGES => {
                let u = if size == 4 {
                    ((value >> 16) as u16, (value & 0xFFFF) as u16)
                } else {
                    (g.usage_page, (value & 0xFFFF) as u16)
                };
                usages.push(u);
            }
            _ => {}
        }
    }
    out.report_bits = offsets;
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------------------

/// Where one track's fields are in the input report (byte offsets in the report as
/// received).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackFields {
    /// Offset of the decode status byte.
    pub status: usize,
    /// Offset of the data length byte.
    pub length: usize,
    /// Offset of the track data field.
    pub data: usize,
    /// Size of the track data field.
    pub data_len: usize,
}

/// Where the layout came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutSource {
    /// The device's HID report descriptor.
    Descriptor,
    /// The documented fixed layout of the classic readers.
    Default,
}

/// Where the MagTek fields are in the input report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MagtekLayout {
    /// The input report's ID (the first byte of each report), if the device uses IDs.
    pub report_id: Option<u8>,
    /// Tracks 1, 2 and 3 (`None`: the reader has no such track).
    pub tracks: [Option<TrackFields>; 3],
    /// Offset of the card encode type byte, if the report has one.
    pub encode_type: Option<usize>,
    /// Size of the whole input report as received.
    pub report_len: usize,
    /// Descriptor or defaults.
    pub source: LayoutSource,
}

impl Default for MagtekLayout {
    /// The classic layout: statuses at 0-2, lengths at 3-5, encode type at 6, three 110-byte
    /// track fields from 7; 337 bytes; no report ID.
    fn default() -> Self {
        let track = |t: usize| {
            Some(TrackFields {
                status: t,
                length: 3 + t,
                data: 7 + t * DEFAULT_TRACK_FIELD,
                data_len: DEFAULT_TRACK_FIELD,
            })
        };
        MagtekLayout {
            report_id: None,
            tracks: [track(0), track(1), track(2)],
            encode_type: Some(6),
            report_len: DEFAULT_REPORT_LEN,
            source: LayoutSource::Default,
        }
    }
}

impl MagtekLayout {
    /// Locate the MagTek fields (usage page `0xFF00`) in a parsed descriptor. A track is
    /// taken when its decode status, length and data fields are all there, byte aligned and
    /// in the same input report. `None` when no track is found.
    pub fn from_descriptor(desc: &ReportDescriptor) -> Option<Self> {
        let ids = desc.has_report_ids;
        let byte = |usage: u16, report_id: Option<u8>| -> Option<(usize, usize)> {
            desc.fields
                .iter()
                .find(|f| {
                    f.kind == ReportKind::Input
                        && f.usage_page == MAGTEK_USAGE_PAGE
                        && f.usage == usage
                        && f.report_id == report_id
                })
                .and_then(|f| f.byte_range(ids))
        };
        // The report that holds the first track data field found decides the report ID.
        let report_id = (0..3u16)
            .find_map(|t| desc.input_field(MAGTEK_USAGE_PAGE, USAGE_TRACK_DATA + t))?
            .report_id;
        let mut tracks = [None; 3];
        for (t, slot) in (0u16..).zip(tracks.iter_mut()) {
            let status = byte(USAGE_DECODE_STATUS + t, report_id);
            let length = byte(USAGE_DATA_LENGTH + t, report_id);
            let data = byte(USAGE_TRACK_DATA + t, report_id);
            if let (Some((s, _)), Some((l, _)), Some((d, dl))) = (status, length, data) {
                *slot = Some(TrackFields {
                    status: s,
                    length: l,
                    data: d,
                    data_len: dl,
                });
            }
        }
        if tracks.iter().all(Option::is_none) {
            return None;
        }
        let report_len = desc.report_len(ReportKind::Input, report_id)?;
        Some(MagtekLayout {
            report_id,
            tracks,
            encode_type: byte(USAGE_CARD_ENCODE_TYPE, report_id).map(|(o, _)| o),
            report_len,
            source: LayoutSource::Descriptor,
        })
    }

    /// The layout of a descriptor's bytes, or the defaults when it does not parse or has no
    /// MagTek fields.
    pub fn from_descriptor_bytes_or_default(bytes: &[u8]) -> Self {
        parse_descriptor(bytes)
            .ok()
            .and_then(|d| Self::from_descriptor(&d))
            .unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------
// Reports
// ---------------------------------------------------------------------------------------

/// The card encode type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardEncodeType {
    /// 0: ISO/ABA.
    IsoAba,
    /// 1: AAMVA (driver licences).
    Aamva,
    /// 2: CADL (obsolete California licences).
    Cadl,
    /// 3: blank card.
    Blank,
    /// 4: non-standard encoding.
    Other,
    /// 5: no track decoded, type unknown.
    Undetermined,
    /// 6: no decode has occurred.
    None,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for CardEncodeType {
    fn from(b: u8) -> Self {
        match b {
            0 => CardEncodeType::IsoAba,
            1 => CardEncodeType::Aamva,
            2 => CardEncodeType::Cadl,
            3 => CardEncodeType::Blank,
            4 => CardEncodeType::Other,
            5 => CardEncodeType::Undetermined,
            6 => CardEncodeType::None,
            n => CardEncodeType::Unknown(n),
        }
    }
}

/// One parsed input report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HidSwipe {
    /// The tracks (data between the sentinels, in [`Sensitive`], only for `Ok` tracks).
    pub swipe: Swipe,
    /// The card encode type, if the layout has it.
    pub encode_type: Option<CardEncodeType>,
}

/// Why an input report was not parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportError {
    /// Shorter than the layout's report.
    Short {
        /// Bytes received.
        len: usize,
        /// Bytes the layout needs.
        expected: usize,
    },
    /// Another report ID than the layout's (not a swipe report).
    OtherReport {
        /// The ID received.
        id: u8,
    },
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::Short { len, expected } => {
                write!(f, "input report of {len} bytes, expected {expected}")
            }
            ReportError::OtherReport { id } => write!(f, "input report ID {id} is not a swipe"),
        }
    }
}

impl std::error::Error for ReportError {}

fn parse_track(fields: &TrackFields, report: &[u8]) -> pos_hal::Track {
    let (Some(&status), Some(&len)) = (report.get(fields.status), report.get(fields.length)) else {
        return pos_hal::Track::empty(TrackStatus::NotSupported);
    };
    if status & 0x01 != 0 {
        return pos_hal::Track::empty(TrackStatus::Parity);
    }
    let len = usize::from(len);
    if len == 0 {
        return pos_hal::Track::empty(TrackStatus::Empty);
    }
    let Some(mut data) = (len <= fields.data_len)
        .then(|| report.get(fields.data..fields.data.saturating_add(len)))
        .flatten()
    else {
        return pos_hal::Track::empty(TrackStatus::EndSentinel);
    };
    if let [b'%' | b';' | b'+', rest @ ..] = data {
        data = rest;
    }
    if let [rest @ .., b'?'] = data {
        data = rest;
    }
    if data.is_empty() {
        return pos_hal::Track::empty(TrackStatus::Empty);
    }
    if !data.iter().all(|b| (0x20..=0x7E).contains(b)) {
        return pos_hal::Track::empty(TrackStatus::Parity);
    }
    pos_hal::Track {
        status: TrackStatus::Ok,
        data: Some(Sensitive::new(data.to_vec())),
    }
}

/// Parse one input report (as received, report ID byte included when the layout has one).
/// Bytes beyond the layout's report length are ignored. Never panics.
///
/// Errors: [`ReportError`].
pub fn parse_report(layout: &MagtekLayout, report: &[u8]) -> Result<HidSwipe, ReportError> {
    if let Some(id) = layout.report_id {
        match report.first() {
            Some(&got) if got != id => return Err(ReportError::OtherReport { id: got }),
            _ => {}
        }
    }
    if report.len() < layout.report_len {
        return Err(ReportError::Short {
            len: report.len(),
            expected: layout.report_len,
        });
    }
    let tracks = layout.tracks.map(|t| match t {
        Some(f) => parse_track(&f, report),
        None => pos_hal::Track::empty(TrackStatus::NotSupported),
    });
    Ok(HidSwipe {
        swipe: Swipe { tracks },
        encode_type: layout
            .encode_type
            .and_then(|o| report.get(o))
            .map(|&b| CardEncodeType::from(b)),
    })
}

// ---------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------

/// Where [`HidMsr`] gets input report bytes: the interrupt IN endpoint of a HID interface.
pub trait HidTransport: Send {
    /// The device's address (for messages).
    fn target(&self) -> &str;
    /// Read the next transfer (part or all of an input report) into `buf`, waiting until
    /// `deadline`. Returns the number of bytes read.
    ///
    /// Errors: the link error (`Timeout` when nothing came).
    fn read_input(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError>;
    /// Largest transfer [`read_input`](Self::read_input) can return in one call (e.g. the
    /// endpoint's max packet size).
    fn max_transfer(&self) -> usize;
}

impl HidTransport for UsbLink {
    fn target(&self) -> &str {
        Link::target(self)
    }

    fn read_input(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError> {
        self.read_interrupt(buf, deadline)
    }

    fn max_transfer(&self) -> usize {
        usize::from(self.endpoints().max_packet_interrupt).max(8)
    }
}

/// A HID interface's input reports through the Linux kernel's hidraw node (`/dev/hidrawN`):
/// `usbhid` keeps the device, and each `read` hands one whole report (the report ID byte
/// first when the descriptor uses IDs, as [`MagtekLayout`] expects).
#[derive(Debug)]
pub struct HidrawTransport {
    file: File,
    target: String,
}

impl HidrawTransport {
    /// Open the hidraw node `path` for reading, known as `target` in errors.
    ///
    /// Errors: `NotFound`, `PermissionDenied` (with the udev hint), as the open fails.
    pub fn open(path: &Path, target: &str) -> Result<Self, LinkError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| classify_io(e, target, Operation::Open, Duration::ZERO))?;
        Ok(Self::from_file(file, target))
    }

    /// A transport reading from `file` (a hidraw node, or in tests a packet socket), which
    /// must be non-blocking.
    pub fn from_file(file: File, target: &str) -> Self {
        HidrawTransport {
            file,
            target: target.to_string(),
        }
    }

    /// Wait until readable or `deadline`; `Ok(false)` on time out.
    fn wait_readable(&self, deadline: Deadline) -> Result<bool, LinkError> {
        let ms = deadline.remaining().as_millis().min(60_000) as i64;
        let timeout = Timespec {
            tv_sec: ms / 1000,
            tv_nsec: (ms % 1000 * 1_000_000) as _,
        };
        let mut fds = [PollFd::new(&self.file, PollFlags::IN)];
        let rc = match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(rc) => rc,
            Err(rustix::io::Errno::INTR) => return Ok(false),
            Err(errno) => {
                return Err(classify_io(
                    errno.into(),
                    &self.target,
                    Operation::Read,
                    deadline.waited(),
                ));
            }
        };
        let revents = fds[0].revents();
        if rc > 0
            && revents.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL)
            && !revents.contains(PollFlags::IN)
        {
            return Err(LinkError::disconnected(
                &self.target,
                Operation::Read,
                "hidraw device hung up",
            ));
        }
        Ok(rc > 0)
    }
}

impl HidTransport for HidrawTransport {
    fn target(&self) -> &str {
        &self.target
    }

    fn read_input(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError> {
        loop {
            match self.file.read(buf) {
                Ok(0) => {
                    return Err(LinkError::disconnected(
                        &self.target,
                        Operation::Read,
                        "end of hidraw device",
                    ));
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    return Err(classify_io(
                        e,
                        &self.target,
                        Operation::Read,
                        deadline.waited(),
                    ));
                }
            }
            if deadline.passed() {
                return Err(LinkError::timeout(
                    &self.target,
                    Operation::Read,
                    deadline.waited(),
                    0,
                ));
            }
            self.wait_readable(deadline)?;
        }
    }

    fn max_transfer(&self) -> usize {
        // hidraw hands a whole report per read, cut to the buffer: one buffer holds the
        // largest report accepted.
        MAX_REPORT
    }
}

/// The transport [`open`] picked: libusb on the interface, or the hidraw node.
#[derive(Debug)]
pub enum HidLink {
    /// The interrupt IN endpoint through libusb (`usbhid` detached while open).
    Usb(UsbLink),
    /// The kernel's hidraw node.
    Hidraw(HidrawTransport),
}

impl HidTransport for HidLink {
    fn target(&self) -> &str {
        match self {
            HidLink::Usb(l) => HidTransport::target(l),
            HidLink::Hidraw(h) => h.target(),
        }
    }

    fn read_input(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError> {
        match self {
            HidLink::Usb(l) => l.read_input(buf, deadline),
            HidLink::Hidraw(h) => h.read_input(buf, deadline),
        }
    }

    fn max_transfer(&self) -> usize {
        match self {
            HidLink::Usb(l) => l.max_transfer(),
            HidLink::Hidraw(h) => h.max_transfer(),
        }
    }
}

/// One hidraw node of a USB device, found in sysfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HidrawNode {
    /// The device node (`/dev/hidraw1`).
    pub node: PathBuf,
    /// The report descriptor the kernel read from the device (empty if sysfs has none).
    pub descriptor: Vec<u8>,
}

/// Why [`find_hidraw`] found no node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HidrawLookup {
    /// No USB device matches the selector.
    NoDevice,
    /// Several USB devices match (same VID:PID, no `serial`): how many.
    Ambiguous(usize),
    /// The device is there but has no hidraw node (no HID interface, or `usbhid` is not
    /// bound to it: detached by another program, or not loaded).
    NoHidraw,
}

/// The hidraw nodes of the USB device `selector` (with `serial`, for a VID:PID selector)
/// names, from the sysfs tree at `sysfs_root` (`/sys`), device nodes under `dev_root`
/// (`/dev`), in node order with each report descriptor.
///
/// Errors: [`HidrawLookup`].
pub fn find_hidraw(
    sysfs_root: &Path,
    dev_root: &Path,
    selector: &UsbSelector,
    serial: Option<&str>,
) -> Result<Vec<HidrawNode>, HidrawLookup> {
    let read = |p: PathBuf| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    let hex = |p: PathBuf| read(p).and_then(|s| u16::from_str_radix(&s, 16).ok());
    let mut devices: Vec<PathBuf> = std::fs::read_dir(sysfs_root.join("bus/usb/devices"))
        .map_err(|_| HidrawLookup::NoDevice)?
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let dir = e.path();
            match selector {
                UsbSelector::Ids { vid, pid } => {
                    !name.contains(':')
                        && hex(dir.join("idVendor")) == Some(*vid)
                        && hex(dir.join("idProduct")) == Some(*pid)
                        && serial.is_none_or(|s| read(dir.join("serial")).as_deref() == Some(s))
                }
                UsbSelector::Port { bus, ports } => {
                    let path: Vec<String> = ports.iter().map(u8::to_string).collect();
                    name == format!("{bus}-{}", path.join("."))
                }
            }
        })
        .map(|e| e.path())
        .collect();
    devices.sort();
    let device = match devices.as_slice() {
        [] => return Err(HidrawLookup::NoDevice),
        [one] => one.canonicalize().map_err(|_| HidrawLookup::NoDevice)?,
        many => return Err(HidrawLookup::Ambiguous(many.len())),
    };
    let mut nodes: Vec<(u32, HidrawNode)> = std::fs::read_dir(sysfs_root.join("class/hidraw"))
        .map_err(|_| HidrawLookup::NoHidraw)?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let number: u32 = name.strip_prefix("hidraw")?.parse().ok()?;
            let real = e.path().canonicalize().ok()?;
            real.starts_with(&device).then(|| {
                let descriptor =
                    std::fs::read(e.path().join("device/report_descriptor")).unwrap_or_default();
                (
                    number,
                    HidrawNode {
                        node: dev_root.join(&name),
                        descriptor,
                    },
                )
            })
        })
        .collect();
    nodes.sort_by_key(|(n, _)| *n);
    if nodes.is_empty() {
        return Err(HidrawLookup::NoHidraw);
    }
    Ok(nodes.into_iter().map(|(_, n)| n).collect())
}

/// The hidraw road of [`open`]: the device's hidraw node whose descriptor has the MagTek
/// fields (else its first node, with the documented layout).
fn open_hidraw(uri: &DeviceUri, selector: &UsbSelector) -> Result<HidMsr<HidLink>, MsrError> {
    let target = uri.to_string();
    let nodes = find_hidraw(
        Path::new("/sys"),
        Path::new("/dev"),
        selector,
        uri.option("serial"),
    )
    .map_err(|e| {
        let detail = match e {
            HidrawLookup::NoDevice => "no such USB device".to_string(),
            HidrawLookup::Ambiguous(n) => {
                return MsrError::InvalidConfig(format!(
                    "{target}: {n} USB devices match; add ?serial=... or use usb:BUS-PORT"
                ));
            }
            HidrawLookup::NoHidraw => {
                "the USB device has no hidraw node (usbhid not bound to it?)".to_string()
            }
        };
        MsrError::Link(LinkError::NotFound {
            target: target.clone(),
            detail,
            source: None,
        })
    })?;
    let found = nodes.iter().find_map(|n| {
        parse_descriptor(&n.descriptor)
            .ok()
            .and_then(|d| MagtekLayout::from_descriptor(&d))
            .map(|l| (n, l))
    });
    let (node, layout) = match found {
        Some(f) => f,
        None => {
            log::warn!(
                "{uri}: no hidraw node of the device has a report descriptor with MagTek fields; using the classic layout"
            );
            (&nodes[0], MagtekLayout::default())
        }
    };
    let transport = HidrawTransport::open(&node.node, &target)?;
    log::info!(
        "{uri}: HID magstripe reader at {}, {}-byte input reports ({:?} layout)",
        node.node.display(),
        layout.report_len,
        layout.source
    );
    Ok(HidMsr::new(HidLink::Hidraw(transport), &target, layout))
}

/// A vendor-mode USB HID magstripe reader.
///
/// [`wait_for_swipe`](pos_hal::MagstripeReader::wait_for_swipe) reads transfers until a
/// whole input report ([`MagtekLayout::report_len`] bytes) is there; a report split over
/// several transfers is put back together (a part not completed within
/// [`report_gap`](Self::with_report_gap), default 500 ms, is dropped and logged by length).
/// A report starts at the start of a transfer; bytes a transfer holds past the end of the
/// report (padding) are dropped. Reports of another report ID are skipped.
pub struct HidMsr<T: HidTransport = UsbLink> {
    transport: T,
    core: ReaderCore,
    layout: MagtekLayout,
    gap: Duration,
    /// Bytes of a report under way (card data: wiped).
    pending: Vec<u8>,
}

impl<T: HidTransport> fmt::Debug for HidMsr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HidMsr")
            .field("uri", &self.core.uri())
            .field("layout", &self.layout)
            .field("state", &self.core.state())
            .field("pending_len", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl<T: HidTransport> Drop for HidMsr<T> {
    fn drop(&mut self) {
        wipe(&mut self.pending);
    }
}

impl<T: HidTransport> HidMsr<T> {
    /// A reader on `transport`, known as `uri`, with reports laid out as `layout`.
    pub fn new(transport: T, uri: &str, layout: MagtekLayout) -> Self {
        HidMsr {
            transport,
            core: ReaderCore::new(uri),
            layout,
            gap: Duration::from_millis(500),
            pending: Vec::new(),
        }
    }

    /// Set how long the transfers of one report may be apart.
    pub fn with_report_gap(mut self, gap: Duration) -> Self {
        self.gap = gap;
        self
    }

    /// The report layout in use.
    pub fn layout(&self) -> &MagtekLayout {
        &self.layout
    }

    fn wait_inner(&mut self, timeout: Duration) -> Result<Swipe, MsrError> {
        let deadline = Deadline::after(timeout);
        let want = self.layout.report_len.clamp(1, MAX_REPORT);
        let packet = self.transport.max_transfer().clamp(1, MAX_REPORT);
        // Whole packets, at least one report: a transfer never overflows the buffer.
        let mut buf = vec![0u8; want.div_ceil(packet).saturating_mul(packet)];
        loop {
            if self.pending.len() < want {
                let read_deadline = if self.pending.is_empty() {
                    deadline
                } else {
                    Deadline::after(self.gap)
                };
                match self.transport.read_input(&mut buf, read_deadline) {
                    Ok(n) => {
                        // A report starts at a transfer; what a transfer holds past the end
                        // of the report (padding) is dropped.
                        let take = n.min(want - self.pending.len());
                        self.pending
                            .extend_from_slice(buf.get(..take).unwrap_or_default());
                        wipe(&mut buf);
                        if n > take {
                            log::debug!(
                                "{}: dropped {} bytes after the end of an input report",
                                self.core.uri(),
                                n - take
                            );
                        }
                        continue;
                    }
                    Err(e) if e.kind() == FaultKind::Timeout => {
                        if self.pending.is_empty() {
                            return Err(self.core.timeout(deadline.waited()));
                        }
                        log::warn!(
                            "{}: dropped an incomplete input report ({} of {want} bytes)",
                            self.core.uri(),
                            self.pending.len()
                        );
                        wipe(&mut self.pending);
                        self.pending.clear();
                        if deadline.passed() {
                            return Err(self.core.timeout(deadline.waited()));
                        }
                        continue;
                    }
                    Err(e) => {
                        wipe(&mut buf);
                        return Err(self.core.link_failed(e));
                    }
                }
            }
            let mut report: Vec<u8> = self.pending.drain(..want).collect();
            let parsed = parse_report(&self.layout, &report);
            wipe(&mut report);
            match parsed {
                Ok(hs) => {
                    let what = format!("{want}-byte report, encode type {:?}", hs.encode_type);
                    return self
                        .core
                        .swiped(hs.swipe, &what)
                        .map_err(|tracks| MsrError::BadRead { tracks });
                }
                Err(e) => {
                    log::debug!("{}: skipped an input report: {e}", self.core.uri());
                    if deadline.passed() && self.pending.is_empty() {
                        return Err(self.core.timeout(deadline.waited()));
                    }
                }
            }
        }
    }
}

core_reader_impls! {
    impl[T: HidTransport] for HidMsr<T>;
    /// Internal: the interface is claimed (no disconnection seen) and which layout is used.
    /// External and Interactive are skipped (no status request is sent; a swipe needs a
    /// person).
    fn check_health(self, level) {
        let target = self.transport.target();
        let layout = format!(
            "{}-byte input report, layout from {}",
            self.layout.report_len,
            match self.layout.source {
                LayoutSource::Descriptor => "the report descriptor",
                LayoutSource::Default => "the documented defaults",
            }
        );
        self.core.health(
            level,
            "vendor-mode HID readers are not queried for status",
            |r| {
                self.core.link_check(r, "link_open", target);
                r.pass("report_layout", layout);
            },
        )
    }
    /// Reads input reports until one parses. A swipe with no track read is
    /// [`MsrError::BadRead`] (after its `Swiped` event). Timeout: `timeout` plus at most the
    /// report gap per transfer of a report already under way.
    fn wait_for_swipe;
}

/// Open a vendor-mode HID reader: `usb:VID:PID` (or `usb:BUS-PORT`, `?serial=`).
///
/// By default (`via=usb`) its HID interface (class 0x03) is claimed through libusb
/// (`usbhid` is detached while open and reattached on close, logged by `pos-link`) and the
/// report descriptor is read (GET_DESCRIPTOR, report type 0x22) to locate the fields. With
/// `?via=hidraw` the reports are read from the kernel's hidraw node of that USB device
/// (found in sysfs; `usbhid` stays bound, and only the node needs to be readable) and the
/// descriptor is the one the kernel read. Either way, when the descriptor cannot be had or
/// has no MagTek fields, the documented classic layout is used, and this is logged.
///
/// Errors: [`MsrError::InvalidConfig`] for other schemes, an unknown `via`, or a VID:PID
/// several devices match on the hidraw road; [`MsrError::Link`] when the device does not
/// open (`NotFound`, also for a device without a hidraw node; `PermissionDenied`, `Busy`,
/// `Io`).
pub fn open(uri: &DeviceUri) -> Result<HidMsr<HidLink>, MsrError> {
    let Address::Usb(selector) = uri.address() else {
        return Err(MsrError::InvalidConfig(format!(
            "{uri}: not a USB HID magstripe reader address (use usb:VID:PID)"
        )));
    };
    match uri.option("via") {
        None | Some("usb") => {}
        Some("hidraw") => return open_hidraw(uri, selector),
        Some(other) => {
            return Err(MsrError::InvalidConfig(format!(
                "{uri}: option via={other:?}: expected usb or hidraw"
            )));
        }
    }
    let opts = UsbOpenOptions {
        interface_class: Some(CLASS_HID),
        ..Default::default()
    };
    let mut link = UsbLink::open_uri(uri, opts)?;
    let iface = u16::from(link.endpoints().interface);
    let mut desc = vec![0u8; MAX_DESCRIPTOR];
    let layout = match link.control_in(
        0x81,
        0x06,
        0x2200,
        iface,
        &mut desc,
        Deadline::after(Duration::from_secs(1)),
    ) {
        Ok(n) => {
            let bytes = desc.get(..n).unwrap_or_default();
            match parse_descriptor(bytes).map(|d| MagtekLayout::from_descriptor(&d)) {
                Ok(Some(l)) => l,
                Ok(None) => {
                    log::warn!(
                        "{uri}: report descriptor ({n} bytes) has no MagTek fields; using the classic layout"
                    );
                    MagtekLayout::default()
                }
                Err(e) => {
                    log::warn!("{uri}: {e}; using the classic layout");
                    MagtekLayout::default()
                }
            }
        }
        Err(e) => {
            log::warn!(
                "{uri}: reading the report descriptor failed ({e}); using the classic layout"
            );
            MagtekLayout::default()
        }
    };
    log::info!(
        "{uri}: HID magstripe reader on interface {iface}, {}-byte input reports ({:?} layout)",
        layout.report_len,
        layout.source
    );
    Ok(HidMsr::new(HidLink::Usb(link), &uri.to_string(), layout))
}
