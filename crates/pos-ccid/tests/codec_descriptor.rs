//! The CCID class descriptor: a real reader's bytes, the error cases, the scan through an
//! interface's extra descriptors, endpoint selection, and properties over arbitrary bytes.

use pos_ccid::descriptor::{
    self, CcidDescriptor, CcidEndpoints, DescriptorError, EndpointInfo, ExchangeLevel, Features,
    Mechanical, Protocols, SynchProtocols, TransferType, Voltages,
};
use pos_hal::{Fault, FaultKind, ReaderCapabilities};
use proptest::prelude::*;

/// QEMU's usb-ccid class descriptor, byte for byte as the static table
/// `qemu_ccid_descriptor[]` in QEMU's hw/usb/dev-smartcard-reader.c (qemu/qemu on GitHub;
/// the table has these values in the QEMU 7.2 era and still does in master, where
/// `ccid_realize` may then patch dwMaxCCIDMessageLength, bPINSupport and dwProtocols
/// from the device properties). The reader enumerates as 08e6:4433.
const QEMU_CCID_DESCRIPTOR: [u8; 54] = [
    0x36, 0x21, // bLength, bDescriptorType
    0x10, 0x01, // bcdCCID 1.10
    0x00, // bMaxSlotIndex
    0x07, // bVoltageSupport: 5 V, 3 V, 1.8 V
    0x01, 0x00, 0x00, 0x00, // dwProtocols: T=0
    0xa0, 0x0f, 0x00, 0x00, // dwDefaultClock: 4000 kHz
    0x00, 0x00, 0x01, 0x00, // dwMaximumClock: 65536 kHz
    0x00, // bNumClockSupported
    0x80, 0x25, 0x00, 0x00, // dwDataRate: 9600 bps
    0x00, 0xC2, 0x01, 0x00, // dwMaxDataRate: 115200 bps
    0x00, // bNumDataRatesSupported
    0xfe, 0x00, 0x00, 0x00, // dwMaxIFSD: 254
    0x00, 0x00, 0x00, 0x00, // dwSynchProtocols
    0x00, 0x00, 0x00, 0x00, // dwMechanical
    0xfe, 0x04, 0x01, 0x00, // dwFeatures: 0x000104FE
    0x12, 0x00, 0x01, 0x00, // dwMaxCCIDMessageLength: 65554
    0xFF, // bClassGetResponse
    0xFF, // bClassEnvelope
    0x00, 0x00, // wLcdLayout
    0x01, // bPINSupport
    0x01, // bMaxCCIDBusySlots
];

/// QEMU's three endpoint descriptors (same file, `desc_iface0.eps`): interrupt IN 0x81
/// (64 bytes, bInterval 255), bulk IN 0x82 (64), bulk OUT 0x03 (64).
const QEMU_ENDPOINTS: [[u8; 7]; 3] = [
    [0x07, 0x05, 0x81, 0x03, 0x40, 0x00, 0xFF],
    [0x07, 0x05, 0x82, 0x02, 0x40, 0x00, 0x00],
    [0x07, 0x05, 0x03, 0x02, 0x40, 0x00, 0x00],
];

#[test]
fn qemu_descriptor_parses_field_by_field() {
    let d = CcidDescriptor::parse(&QEMU_CCID_DESCRIPTOR).expect("QEMU descriptor");
    assert_eq!(d.bcd_ccid, 0x0110);
    assert_eq!(d.max_slot_index, 0);
    assert_eq!(d.slot_count(), 1);
    assert_eq!(d.voltages, Voltages::V5 | Voltages::V3 | Voltages::V1_8);
    assert_eq!(d.protocols, Protocols::T0);
    assert_eq!(d.default_clock_khz, 4000);
    assert_eq!(d.max_clock_khz, 65_536);
    assert_eq!(d.num_clocks, 0);
    assert_eq!(d.data_rate_bps, 9600);
    assert_eq!(d.max_data_rate_bps, 115_200);
    assert_eq!(d.num_data_rates, 0);
    assert_eq!(d.max_ifsd, 254);
    assert_eq!(d.synch_protocols, SynchProtocols::empty());
    assert_eq!(d.mechanical, Mechanical::empty());
    assert_eq!(d.features.bits(), 0x0001_04FE);
    assert_eq!(d.max_message_length, 65_554);
    assert_eq!(d.max_payload_len(), 65_544);
    assert_eq!(d.class_get_response, 0xFF);
    assert_eq!(d.class_envelope, 0xFF);
    assert_eq!(d.lcd_layout, 0);
    assert_eq!(d.lcd_size(), None);
    assert_eq!(d.pin_support, 0x01);
    assert!(d.pin_verification());
    assert!(!d.pin_modification());
    assert_eq!(d.max_busy_slots, 1);
}

#[test]
fn qemu_descriptor_is_a_tpdu_reader_that_does_everything_itself() {
    let d = CcidDescriptor::parse(&QEMU_CCID_DESCRIPTOR).expect("QEMU descriptor");
    assert_eq!(d.exchange_level(), ExchangeLevel::Tpdu);
    assert!(!d.exchange_level().is_apdu());
    // 0x4FE: every automatic bit from 0x2 to 0x80, plus 0x400; not 0x100 / 0x200.
    assert!(d.auto_parameters());
    assert!(d.auto_activation());
    assert!(d.auto_voltage());
    assert!(d.auto_clock());
    assert!(d.auto_baud());
    assert!(d.auto_pps());
    assert!(
        d.features
            .contains(Features::AUTO_PPS_PROPRIETARY | Features::AUTO_PPS_CURRENT)
    );
    assert!(d.auto_ifsd());
    assert!(!d.features.contains(Features::CLOCK_STOP));
    assert!(!d.features.contains(Features::NAD_OTHER_THAN_ZERO));
    assert!(!d.features.contains(Features::USB_WAKE_UP));

    let caps = d.to_capabilities(true);
    assert_eq!(
        caps,
        ReaderCapabilities::PRESENCE_INTERRUPT
            | ReaderCapabilities::T0
            | ReaderCapabilities::AUTO_PPS
            | ReaderCapabilities::AUTO_VOLTAGE
    );
    assert!(
        !d.to_capabilities(false)
            .contains(ReaderCapabilities::PRESENCE_INTERRUPT)
    );
}

#[test]
fn qemu_descriptor_encodes_back_to_the_same_bytes() {
    let d = CcidDescriptor::parse(&QEMU_CCID_DESCRIPTOR).expect("QEMU descriptor");
    assert_eq!(d.encode(), QEMU_CCID_DESCRIPTOR.to_vec());
}

#[test]
fn exchange_level_follows_the_level_bits() {
    let mut d = CcidDescriptor::parse(&QEMU_CCID_DESCRIPTOR).expect("QEMU descriptor");
    for (bits, level) in [
        (0x0000_0000, ExchangeLevel::Character),
        (0x0001_0000, ExchangeLevel::Tpdu),
        (0x0002_0000, ExchangeLevel::ShortApdu),
        (0x0004_0000, ExchangeLevel::ExtendedApdu),
        // Several level bits (a non-conforming reader): the most capable wins.
        (0x0003_0000, ExchangeLevel::ShortApdu),
        (0x0007_0000, ExchangeLevel::ExtendedApdu),
    ] {
        d.features = Features::from_bits_retain(0x0000_04FE | bits);
        assert_eq!(d.exchange_level(), level, "features {bits:#x}");
    }
    d.features = Features::LEVEL_SHORT_APDU;
    let caps = d.to_capabilities(false);
    assert!(caps.contains(ReaderCapabilities::APDU_LEVEL));
    assert!(!caps.contains(ReaderCapabilities::EXTENDED_APDU));
    assert!(!caps.contains(ReaderCapabilities::AUTO_PPS));
    d.features = Features::LEVEL_EXTENDED_APDU | Features::AUTO_PPS_CURRENT;
    let caps = d.to_capabilities(false);
    assert!(caps.contains(ReaderCapabilities::APDU_LEVEL | ReaderCapabilities::EXTENDED_APDU));
    assert!(caps.contains(ReaderCapabilities::AUTO_PPS));
}

#[test]
fn multi_slot_readers_count_from_max_slot_index() {
    let mut d = CcidDescriptor::example_apdu_reader();
    d.max_slot_index = 4; // e.g. a 5-slot reader (2 full-size, 3 SIM)
    assert_eq!(d.slot_count(), 5);
    assert!(
        d.to_capabilities(true)
            .contains(ReaderCapabilities::MULTI_SLOT)
    );
    d.max_slot_index = 0xFF;
    assert_eq!(d.slot_count(), 0xFF, "256 slots saturate at 255");
}

#[test]
fn unknown_feature_bits_are_kept() {
    let mut bytes = QEMU_CCID_DESCRIPTOR;
    bytes[40..44].copy_from_slice(&0x8020_0802u32.to_le_bytes());
    let d = CcidDescriptor::parse(&bytes).expect("descriptor");
    assert_eq!(d.features.bits(), 0x8020_0802);
    assert_eq!(d.encode(), bytes.to_vec());
}

#[test]
fn short_input_is_too_short() {
    assert_eq!(
        CcidDescriptor::parse(&[]),
        Err(DescriptorError::TooShort { len: 0, needed: 54 })
    );
    assert_eq!(
        CcidDescriptor::parse(&[0x36]),
        Err(DescriptorError::TooShort { len: 1, needed: 54 })
    );
    assert_eq!(
        CcidDescriptor::parse(&QEMU_CCID_DESCRIPTOR[..53]),
        Err(DescriptorError::TooShort {
            len: 53,
            needed: 54
        })
    );
}

#[test]
fn wrong_type_and_short_blength_are_refused() {
    let mut bytes = QEMU_CCID_DESCRIPTOR;
    bytes[1] = 0x04; // an interface descriptor
    let err = CcidDescriptor::parse(&bytes).expect_err("wrong type");
    assert_eq!(
        err,
        DescriptorError::WrongType {
            descriptor_type: 0x04
        }
    );
    assert!(err.to_string().contains("offset 1"), "{err}");
    assert_eq!(err.kind(), FaultKind::Protocol);

    let mut bytes = QEMU_CCID_DESCRIPTOR;
    bytes[0] = 0x20;
    let err = CcidDescriptor::parse(&bytes).expect_err("bLength too small");
    assert_eq!(err, DescriptorError::BadLength { b_length: 0x20 });
    assert!(err.to_string().contains("offset 0"), "{err}");
}

#[test]
fn legacy_type_ff_is_accepted_only_with_blength_36() {
    let mut bytes = QEMU_CCID_DESCRIPTOR;
    bytes[1] = 0xFF;
    let d = CcidDescriptor::parse(&bytes).expect("legacy descriptor");
    assert_eq!(d.exchange_level(), ExchangeLevel::Tpdu);
    bytes[0] = 0x37;
    assert_eq!(
        CcidDescriptor::parse(&bytes),
        Err(DescriptorError::WrongType {
            descriptor_type: 0xFF
        })
    );
}

#[test]
fn longer_blength_is_accepted() {
    let mut bytes = QEMU_CCID_DESCRIPTOR.to_vec();
    bytes[0] = 0x38;
    bytes.extend_from_slice(&[0xAA, 0xBB]);
    let d = CcidDescriptor::parse(&bytes).expect("descriptor with extension bytes");
    assert_eq!(d.max_message_length, 65_554);
}

#[test]
fn find_scans_the_interface_extra_bytes() {
    // Only the class descriptor, as libusb gives QEMU's interface extra bytes.
    let found = descriptor::find(&QEMU_CCID_DESCRIPTOR).expect("found");
    assert_eq!(found.expect("valid").features.bits(), 0x0001_04FE);

    // After another class-specific descriptor (type 0x24, 5 bytes).
    let mut extra = vec![0x05, 0x24, 0x00, 0x10, 0x01];
    extra.extend_from_slice(&QEMU_CCID_DESCRIPTOR);
    assert!(matches!(descriptor::find(&extra), Some(Ok(_))));

    // Legacy 0xFF type with bLength 0x36.
    let mut legacy = vec![0x05, 0x24, 0x00, 0x10, 0x01];
    legacy.extend_from_slice(&QEMU_CCID_DESCRIPTOR);
    legacy[6] = 0xFF;
    assert!(matches!(descriptor::find(&legacy), Some(Ok(_))));

    // A vendor 0xFF descriptor of another length is not it.
    assert_eq!(descriptor::find(&[0x04, 0xFF, 0x01, 0x02]), None);

    // Nothing there.
    assert_eq!(descriptor::find(&[]), None);
    assert_eq!(descriptor::find(&[0x05, 0x24, 0x00, 0x10, 0x01]), None);

    // A CCID descriptor cut short is found, and reported as malformed.
    assert_eq!(
        descriptor::find(&QEMU_CCID_DESCRIPTOR[..30]),
        Some(Err(DescriptorError::TooShort {
            len: 30,
            needed: 54
        }))
    );

    // bLength 0 would loop forever: the scan stops.
    assert_eq!(descriptor::find(&[0x00, 0x24, 0x00, 0x00]), None);
}

#[test]
fn qemu_endpoints_are_selected() {
    let eps: Vec<EndpointInfo> = QEMU_ENDPOINTS
        .iter()
        .map(|b| EndpointInfo::parse(b).expect("endpoint descriptor"))
        .collect();
    assert_eq!(eps[0].transfer_type(), TransferType::Interrupt);
    assert!(eps[0].is_in());
    assert_eq!(eps[0].interval, 255);
    assert_eq!(eps[2].packet_size(), 64);
    let sel = CcidEndpoints::select(&eps).expect("endpoints");
    assert_eq!(sel.bulk_in.address, 0x82);
    assert_eq!(sel.bulk_out.address, 0x03);
    assert_eq!(sel.interrupt_in.map(|e| e.address), Some(0x81));

    // Without the interrupt endpoint the reader is still usable (polling).
    let sel = CcidEndpoints::select(&eps[1..]).expect("endpoints");
    assert_eq!(sel.interrupt_in, None);

    // Without bulk OUT it is not.
    assert_eq!(
        CcidEndpoints::select(&eps[..2]),
        Err(DescriptorError::MissingEndpoint("bulk OUT"))
    );
    assert_eq!(
        CcidEndpoints::select(&[]),
        Err(DescriptorError::MissingEndpoint("bulk IN"))
    );
    assert_eq!(
        EndpointInfo::parse(&[0x09, 0x04, 0, 0, 3, 0x0B, 0, 0, 0]),
        None
    );
    assert_eq!(EndpointInfo::parse(&[0x07, 0x05, 0x81]), None);
}

#[test]
fn example_descriptors_are_documented_values() {
    let a = CcidDescriptor::example_apdu_reader();
    assert_eq!(a.exchange_level(), ExchangeLevel::ShortApdu);
    assert!(a.auto_parameters() && a.auto_pps() && a.auto_voltage() && a.auto_ifsd());
    assert_eq!(a.max_message_length, 271);
    let t = CcidDescriptor::example_tpdu_reader();
    assert_eq!(t.exchange_level(), ExchangeLevel::Tpdu);
    assert!(!t.auto_parameters() && !t.auto_pps() && !t.auto_ifsd());
    assert!(t.auto_voltage());
    assert_eq!(t.protocols, Protocols::T0 | Protocols::T1);
    let e = CcidDescriptor::example_extended_apdu_reader();
    assert_eq!(e.exchange_level(), ExchangeLevel::ExtendedApdu);
    assert_eq!(e.max_payload_len(), 65_544);
}

fn any_descriptor() -> impl Strategy<Value = CcidDescriptor> {
    (
        (any::<u16>(), any::<u8>(), any::<u8>(), any::<u32>()),
        (any::<u32>(), any::<u32>(), any::<u8>(), any::<u32>()),
        (any::<u32>(), any::<u8>(), any::<u32>(), any::<u32>()),
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u8>()),
        (any::<u8>(), any::<u16>(), any::<u8>(), any::<u8>()),
    )
        .prop_map(|(a, b, c, d, e)| CcidDescriptor {
            bcd_ccid: a.0,
            max_slot_index: a.1,
            voltages: Voltages::from_bits_retain(a.2),
            protocols: Protocols::from_bits_retain(a.3),
            default_clock_khz: b.0,
            max_clock_khz: b.1,
            num_clocks: b.2,
            data_rate_bps: b.3,
            max_data_rate_bps: c.0,
            num_data_rates: c.1,
            max_ifsd: c.2,
            synch_protocols: SynchProtocols::from_bits_retain(c.3),
            mechanical: Mechanical::from_bits_retain(d.0),
            features: Features::from_bits_retain(d.1),
            max_message_length: d.2,
            class_get_response: d.3,
            class_envelope: e.0,
            lcd_layout: e.1,
            pin_support: e.2,
            max_busy_slots: e.3,
        })
}

proptest! {
    #[test]
    fn descriptor_round_trips(d in any_descriptor()) {
        let bytes = d.encode();
        prop_assert_eq!(bytes.len(), 54);
        prop_assert_eq!(bytes[0], 0x36);
        prop_assert_eq!(bytes[1], 0x21);
        prop_assert_eq!(CcidDescriptor::parse(&bytes), Ok(d.clone()));
        prop_assert_eq!(descriptor::find(&bytes), Some(Ok(d)));
    }

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = CcidDescriptor::parse(&bytes);
    }

    #[test]
    fn parse_of_well_typed_bytes_succeeds_exactly_when_long_enough(
        body in proptest::collection::vec(any::<u8>(), 0..60)
    ) {
        let mut bytes = vec![0x36, 0x21];
        bytes.extend_from_slice(&body);
        let r = CcidDescriptor::parse(&bytes);
        prop_assert_eq!(r.is_ok(), bytes.len() >= 54);
        if let Ok(d) = r {
            prop_assert_eq!(d.encode(), bytes[..54].to_vec());
        }
    }

    #[test]
    fn find_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = descriptor::find(&bytes);
    }

    #[test]
    fn find_skips_unrelated_descriptors(
        others in proptest::collection::vec(
            (2u8..40, 0u8..0x21).prop_flat_map(|(len, ty)| {
                proptest::collection::vec(any::<u8>(), usize::from(len) - 2)
                    .prop_map(move |body| {
                        let mut v = vec![len, ty];
                        v.extend(body);
                        v
                    })
            }),
            0..5,
        )
    ) {
        let mut extra: Vec<u8> = others.concat();
        extra.extend_from_slice(&QEMU_CCID_DESCRIPTOR);
        let d = descriptor::find(&extra).expect("found").expect("valid");
        prop_assert_eq!(d.encode(), QEMU_CCID_DESCRIPTOR.to_vec());
    }
}
