//! HID report descriptor parsing and MagTek field location.
#![allow(clippy::unwrap_used)]

use pos_magstripe::hid::{
    DescriptorError, LayoutSource, MAGTEK_USAGE_PAGE, MagtekLayout, ReportKind, TrackFields,
    parse_descriptor,
};
use proptest::prelude::*;

/// A descriptor in the style of the MagTek USB HID Swipe Reader manual, built item by item.
/// `track_field` is the Report Count of each track data field (110 on the classic readers);
/// `report_id` adds a Report ID item (then every report starts with that byte).
fn magtek_descriptor(track_field: u8, report_id: Option<u8>) -> Vec<u8> {
    let mut d = vec![
        0x06, 0x00, 0xFF, // Usage Page (vendor 0xFF00), 2 data bytes
        0x09, 0x01, // Usage (decoding reader device)
        0xA1, 0x01, // Collection (Application)
        0x15, 0x00, // Logical Minimum (0)
        0x26, 0xFF, 0x00, // Logical Maximum (255), 2 data bytes
        0x75, 0x08, // Report Size (8 bits)
    ];
    if let Some(id) = report_id {
        d.extend_from_slice(&[0x85, id]); // Report ID (id)
    }
    d.extend_from_slice(&[
        0x09,
        0x20, // Usage (track 1 decode status)
        0x09,
        0x21, // Usage (track 2 decode status)
        0x09,
        0x22, // Usage (track 3 decode status)
        0x09,
        0x28, // Usage (track 1 data length)
        0x09,
        0x29, // Usage (track 2 data length)
        0x09,
        0x2A, // Usage (track 3 data length)
        0x09,
        0x38, // Usage (card encode type)
        0x95,
        0x07, // Report Count (7): one byte per usage above
        0x81,
        0x02, // Input (Data, Variable, Absolute)
        0x09,
        0x30, // Usage (track 1 data)
        0x95,
        track_field, // Report Count (track_field bytes)
        0x82,
        0x02,
        0x01, // Input (Data, Variable, Absolute, Buffered Bytes), 2 data bytes
        0x09,
        0x31, // Usage (track 2 data)
        0x95,
        track_field, // Report Count
        0x82,
        0x02,
        0x01, // Input (Buffered Bytes)
        0x09,
        0x32, // Usage (track 3 data)
        0x95,
        track_field, // Report Count
        0x82,
        0x02,
        0x01, // Input (Buffered Bytes)
        0x09,
        0x20, // Usage (command message)
        0x95,
        0x18, // Report Count (24)
        0xB2,
        0x02,
        0x01, // Feature (Data, Variable, Absolute, Buffered Bytes)
        0xC0, // End Collection
    ]);
    d
}

#[test]
fn classic_descriptor_locates_every_field() {
    let desc = parse_descriptor(&magtek_descriptor(110, None)).unwrap();
    assert!(!desc.has_report_ids);
    let at = |usage: u16| {
        desc.input_field(MAGTEK_USAGE_PAGE, usage)
            .and_then(|f| f.byte_range(false))
            .unwrap()
    };
    assert_eq!(at(0x20), (0, 1));
    assert_eq!(at(0x21), (1, 1));
    assert_eq!(at(0x22), (2, 1));
    assert_eq!(at(0x28), (3, 1));
    assert_eq!(at(0x29), (4, 1));
    assert_eq!(at(0x2A), (5, 1));
    assert_eq!(at(0x38), (6, 1));
    assert_eq!(at(0x30), (7, 110));
    assert_eq!(at(0x31), (117, 110));
    assert_eq!(at(0x32), (227, 110));
    assert_eq!(desc.report_len(ReportKind::Input, None), Some(337));
    assert_eq!(desc.report_len(ReportKind::Feature, None), Some(24));
    // The command message is a feature field, not an input field with usage 0x20.
    let feature = desc
        .fields
        .iter()
        .find(|f| f.kind == ReportKind::Feature)
        .unwrap();
    assert_eq!((feature.usage, feature.bit_len), (0x20, 24 * 8));
}

#[test]
fn classic_descriptor_gives_the_default_layout() {
    let desc = parse_descriptor(&magtek_descriptor(110, None)).unwrap();
    let layout = MagtekLayout::from_descriptor(&desc).unwrap();
    assert_eq!(layout.source, LayoutSource::Descriptor);
    let default = MagtekLayout::default();
    assert_eq!(default.source, LayoutSource::Default);
    assert_eq!(
        MagtekLayout {
            source: LayoutSource::Default,
            ..layout
        },
        default
    );
    assert_eq!(default.report_len, 337);
}

#[test]
fn other_field_sizes_and_report_ids_move_the_offsets() {
    // MagnePrint-style 112-byte fields behind report ID 2.
    let desc = parse_descriptor(&magtek_descriptor(112, Some(2))).unwrap();
    assert!(desc.has_report_ids);
    let layout = MagtekLayout::from_descriptor(&desc).unwrap();
    assert_eq!(layout.report_id, Some(2));
    assert_eq!(layout.report_len, 1 + 7 + 3 * 112);
    assert_eq!(layout.encode_type, Some(7));
    assert_eq!(
        layout.tracks[1],
        Some(TrackFields {
            status: 2,
            length: 5,
            data: 1 + 7 + 112,
            data_len: 112
        })
    );
}

#[test]
fn a_two_track_reader_has_no_track_three() {
    // Track 3's status, length and data usages removed (Report Count 5 for the header).
    let d = vec![
        0x06, 0x00, 0xFF, // Usage Page (0xFF00)
        0xA1, 0x01, // Collection (Application)
        0x75, 0x08, // Report Size (8)
        0x09, 0x20, 0x09, 0x21, // Usages: track 1, 2 decode status
        0x09, 0x28, 0x09, 0x29, // Usages: track 1, 2 length
        0x09, 0x38, // Usage: card encode type
        0x95, 0x05, // Report Count (5)
        0x81, 0x02, // Input (Data, Variable)
        0x09, 0x30, 0x95, 0x50, 0x82, 0x02, 0x01, // track 1 data, 80 bytes
        0x09, 0x31, 0x95, 0x28, 0x82, 0x02, 0x01, // track 2 data, 40 bytes
        0xC0, // End Collection
    ];
    let layout = MagtekLayout::from_descriptor(&parse_descriptor(&d).unwrap()).unwrap();
    assert_eq!(layout.tracks[2], None);
    assert_eq!(layout.report_len, 5 + 80 + 40);
    assert_eq!(layout.tracks[0].unwrap().data, 5);
    assert_eq!(layout.tracks[1].unwrap().data, 85);
}

#[test]
fn padding_extended_usages_and_push_pop() {
    let d = vec![
        0x75, 0x08, 0x95, 0x02, // Report Size (8), Report Count (2)
        0x81, 0x03, // Input (Constant): 2 bytes of padding, no field
        0xA4, // Push (globals: size 8, count 2)
        0x75, 0x01, 0x95, 0x10, // Report Size (1), Report Count (16)
        0x05, 0x09, 0x09, 0x01, // Usage Page (buttons), Usage (1)
        0x81, 0x02, // Input: one 16-bit field for the single usage
        0xB4, // Pop (back to size 8, count 2)
        0x0B, 0x30, 0x00, 0x00, 0xFF, // Usage (page 0xFF00, usage 0x30), 4 data bytes
        0x81, 0x02, // Input: 2 bytes
    ];
    let desc = parse_descriptor(&d).unwrap();
    assert_eq!(desc.fields.len(), 2);
    assert_eq!(desc.fields[0].bit_offset, 16);
    assert_eq!(desc.fields[0].bit_len, 16);
    let t1 = desc.input_field(MAGTEK_USAGE_PAGE, 0x30).unwrap();
    assert_eq!(t1.byte_range(false), Some((4, 2)));
    assert_eq!(desc.report_len(ReportKind::Input, None), Some(6));
}

#[test]
fn broken_descriptors_are_errors() {
    // Usage Page with 2 data bytes, only 1 there.
    assert_eq!(
        parse_descriptor(&[0x06, 0x00]),
        Err(DescriptorError::Truncated { offset: 0 })
    );
    // Pop without Push.
    assert_eq!(
        parse_descriptor(&[0x75, 0x08, 0xB4]),
        Err(DescriptorError::Stack { offset: 2 })
    );
    // 17 nested Push items.
    assert!(matches!(
        parse_descriptor(&[0xA4; 17]),
        Err(DescriptorError::Stack { .. })
    ));
    // Report Size (65535) x Report Count (65535): far too large.
    assert!(matches!(
        parse_descriptor(&[0x77, 0xFF, 0xFF, 0, 0, 0x97, 0xFF, 0xFF, 0, 0, 0x81, 0x02]),
        Err(DescriptorError::TooLarge { .. })
    ));
    // No MagTek fields: defaults.
    let mouse = [
        0x05, 0x01, 0x09, 0x02, 0xA1, 0x01, 0x75, 0x08, 0x95, 0x03, 0x81, 0x06, 0xC0,
    ];
    assert_eq!(
        MagtekLayout::from_descriptor_bytes_or_default(&mouse),
        MagtekLayout::default()
    );
    assert_eq!(
        MagtekLayout::from_descriptor_bytes_or_default(&[0x06]),
        MagtekLayout::default()
    );
}

proptest! {
    #[test]
    fn garbage_descriptors_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(desc) = parse_descriptor(&bytes) {
            let _ = MagtekLayout::from_descriptor(&desc);
        }
        let _ = MagtekLayout::from_descriptor_bytes_or_default(&bytes);
    }

    #[test]
    fn mutated_magtek_descriptors_never_panic(
        flips in proptest::collection::vec((0usize..80, any::<u8>()), 1..6),
        cut in 0usize..80,
    ) {
        let mut d = magtek_descriptor(110, Some(1));
        for (i, b) in flips {
            if let Some(x) = d.get_mut(i) {
                *x = b;
            }
        }
        d.truncate(cut.max(1) + 40);
        if let Ok(desc) = parse_descriptor(&d)
            && let Some(layout) = MagtekLayout::from_descriptor(&desc)
        {
            let report = vec![0x5Au8; layout.report_len];
            let _ = pos_magstripe::hid::parse_report(&layout, &report);
        }
    }
}
