//! Endpoint selection, timeouts and buffer sizes, messages; opening without a device.

use super::*;
use pos_hal::{Fault, FaultKind};

fn ep(address: u8, transfer: TransferKind, max_packet: u16) -> EndpointInfo {
    EndpointInfo {
        address,
        transfer,
        max_packet,
    }
}

fn printer() -> InterfaceInfo {
    InterfaceInfo {
        number: 0,
        class: CLASS_PRINTER,
        endpoints: vec![
            ep(0x01, TransferKind::Bulk, 64),
            ep(0x82, TransferKind::Bulk, 64),
        ],
        ..Default::default()
    }
}

/// The layout of QEMU's usb-ccid: interrupt in 0x81, bulk in 0x82, bulk out 0x03.
fn ccid(number: u8) -> InterfaceInfo {
    InterfaceInfo {
        number,
        class: CLASS_CCID,
        endpoints: vec![
            ep(0x81, TransferKind::Interrupt, 8),
            ep(0x82, TransferKind::Bulk, 64),
            ep(0x03, TransferKind::Bulk, 64),
        ],
        ..Default::default()
    }
}

fn hid(number: u8) -> InterfaceInfo {
    InterfaceInfo {
        number,
        class: CLASS_HID,
        endpoints: vec![ep(0x83, TransferKind::Interrupt, 8)],
        ..Default::default()
    }
}

#[test]
fn printer_interface_with_bulk_in_and_out() {
    let e = select_endpoints(&[printer()], &UsbOpenOptions::default()).unwrap();
    assert_eq!(e.interface, 0);
    assert_eq!(e.interface_class, CLASS_PRINTER);
    assert_eq!(e.bulk_out, Some(0x01));
    assert_eq!(e.bulk_in, Some(0x82));
    assert_eq!(e.interrupt_in, None);
    assert_eq!((e.max_packet_in, e.max_packet_out), (64, 64));
}

#[test]
fn ccid_interface_with_interrupt_in() {
    let opts = UsbOpenOptions {
        interface_class: Some(CLASS_CCID),
        ..Default::default()
    };
    let e = select_endpoints(&[ccid(0)], &opts).unwrap();
    assert_eq!(e.bulk_in, Some(0x82));
    assert_eq!(e.bulk_out, Some(0x03));
    assert_eq!(e.interrupt_in, Some(0x81));
    assert_eq!(e.max_packet_interrupt, 8);
}

#[test]
fn no_bulk_out_is_an_error_without_a_filter() {
    let err = select_endpoints(&[hid(0)], &UsbOpenOptions::default()).unwrap_err();
    assert!(
        matches!(err, EndpointSelectError::NoBulkOut { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("class 0x03 HID"), "{err}");
    assert_eq!(
        select_endpoints(&[], &UsbOpenOptions::default()),
        Err(EndpointSelectError::NoInterfaces)
    );
    let nothing = InterfaceInfo {
        number: 2,
        class: CLASS_PRINTER,
        endpoints: vec![],
        ..Default::default()
    };
    let opts = UsbOpenOptions {
        interface_class: Some(CLASS_PRINTER),
        ..Default::default()
    };
    assert_eq!(
        select_endpoints(&[nothing], &opts),
        Err(EndpointSelectError::NoUsableEndpoints { interface: 2 })
    );
}

#[test]
fn an_in_only_interface_asked_for_by_class_is_taken() {
    let opts = UsbOpenOptions {
        interface_class: Some(CLASS_HID),
        ..Default::default()
    };
    let e = select_endpoints(&[hid(1)], &opts).unwrap();
    assert_eq!(e.interface, 1);
    assert_eq!(e.bulk_out, None);
    assert_eq!(e.interrupt_in, Some(0x83));
}

#[test]
fn interface_class_and_number_filters() {
    // A composite device: HID keyboard first, then a CCID reader, then a printer.
    let mut p = printer();
    p.number = 2;
    let all = [hid(0), ccid(1), p];
    let by_class = |c| UsbOpenOptions {
        interface_class: Some(c),
        ..Default::default()
    };
    assert_eq!(
        select_endpoints(&all, &by_class(CLASS_CCID))
            .unwrap()
            .interface,
        1
    );
    assert_eq!(
        select_endpoints(&all, &by_class(CLASS_PRINTER))
            .unwrap()
            .interface,
        2
    );
    // No filter: the first interface with a bulk OUT endpoint.
    assert_eq!(
        select_endpoints(&all, &UsbOpenOptions::default())
            .unwrap()
            .interface,
        1
    );
    let by_number = UsbOpenOptions {
        interface_number: Some(2),
        ..Default::default()
    };
    assert_eq!(select_endpoints(&all, &by_number).unwrap().interface, 2);
    let err = select_endpoints(&all, &by_class(0x0E)).unwrap_err();
    assert!(matches!(
        err,
        EndpointSelectError::NoMatchingInterface { .. }
    ));
    assert!(err.to_string().contains("class 0x0e"), "{err}");
    let both = UsbOpenOptions {
        interface_class: Some(CLASS_CCID),
        interface_number: Some(2),
    };
    assert!(select_endpoints(&all, &both).is_err());
}

#[test]
fn high_bandwidth_bits_are_masked_from_packet_sizes() {
    let i = InterfaceInfo {
        number: 0,
        class: CLASS_VENDOR_SPECIFIC,
        endpoints: vec![
            ep(0x02, TransferKind::Bulk, 0x1200),
            ep(0x81, TransferKind::Bulk, 512),
        ],
        ..Default::default()
    };
    let e = select_endpoints(&[i], &UsbOpenOptions::default()).unwrap();
    assert_eq!(e.max_packet_out, 0x200);
    assert_eq!(e.max_packet_in, 512);
}

#[test]
fn timeouts_are_never_zero() {
    assert_eq!(usb_timeout(Duration::ZERO), Duration::from_millis(1));
    assert_eq!(
        usb_timeout(Duration::from_micros(300)),
        Duration::from_millis(1)
    );
    assert_eq!(usb_timeout(Duration::from_secs(2)), Duration::from_secs(2));
    assert_eq!(usb_timeout(Duration::MAX), crate::MAX_WAIT);
    assert!(usb_timeout(Deadline::now().remaining()).as_millis() >= 1);
}

#[test]
fn buffer_sizes_are_packet_multiples() {
    assert_eq!(packet_multiple(RX_BUFFER_TARGET, 64, RX_BUFFER_MIN), 16384);
    assert_eq!(packet_multiple(RX_BUFFER_TARGET, 0, RX_BUFFER_MIN), 16384);
    assert_eq!(
        packet_multiple(RX_BUFFER_TARGET, 1000, RX_BUFFER_MIN),
        17000
    );
    assert_eq!(packet_multiple(WRITE_CHUNK_TARGET, 64, 0), 4096);
    assert_eq!(packet_multiple(WRITE_CHUNK_TARGET, 0x7FF, 0) % 0x7FF, 0);
    assert!(packet_multiple(10, 8, RX_BUFFER_MIN) >= RX_BUFFER_MIN);
}

#[test]
fn driver_descriptions() {
    assert_eq!(
        describe_driver(Some("usblp"), CLASS_PRINTER),
        "kernel driver 'usblp'"
    );
    assert!(describe_driver(None, CLASS_PRINTER).contains("usblp"));
    assert!(describe_driver(None, CLASS_HID).contains("usbhid"));
}

#[test]
fn opening_an_absent_device_fails_cleanly() {
    let uri: DeviceUri = "usb:ffff:fffe".parse().unwrap();
    let err = UsbLink::open_uri(&uri, UsbOpenOptions::default()).unwrap_err();
    println!("opening {uri}: {err} (kind {:?})", err.kind());
    assert!(
        matches!(
            err.kind(),
            FaultKind::NotFound
                | FaultKind::Io
                | FaultKind::Disconnected
                | FaultKind::PermissionDenied
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("usb:ffff:fffe"), "{err}");

    let by_port = UsbSelector::Port {
        bus: 250,
        ports: vec![7, 7],
    };
    let err = UsbLink::open(&by_port, Some("nope"), UsbOpenOptions::default()).unwrap_err();
    println!("opening {by_port}: {err}");
    assert!(matches!(
        err.kind(),
        FaultKind::NotFound | FaultKind::Io | FaultKind::Disconnected | FaultKind::PermissionDenied
    ));
}

#[test]
fn open_uri_refuses_other_schemes() {
    let uri: DeviceUri = "tcp:127.0.0.1:9100".parse().unwrap();
    let err = UsbLink::open_uri(&uri, UsbOpenOptions::default()).unwrap_err();
    assert_eq!(err.kind(), FaultKind::InvalidInput);
}

#[test]
fn bcd_device_survives_rusbs_decoding() {
    // rusb's Version::from_bcd: major = 10 * high nibble + low nibble of the high byte.
    let decode = |raw: u16| {
        let major = u8::try_from((raw >> 12) * 10 + (raw >> 8 & 0x0F)).unwrap_or(0);
        (major, (raw >> 4 & 0x0F) as u8, (raw & 0x0F) as u8)
    };
    for raw in [
        0x0000, 0x0100, 0x0523, 0x0106, 0x0216, 0x9999, 0x1234, 0xF0F1,
    ] {
        let (major, minor, sub) = decode(raw);
        assert_eq!(super::bcd_from_version(major, minor, sub), raw, "{raw:04x}");
    }
}
