//! Serial port discovery against a fake sysfs tree laid out like the real one (symlinks
//! included), and smoke tests of discovery on this machine.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use pos_link::enumerate::{
    Access, DeviceClassKind, VendorKind, lookup, serial_ports, serial_ports_in, usb_devices,
};

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
    fs::write(path, text).expect("write");
}

fn mkdir(path: &Path) {
    fs::create_dir_all(path).expect("mkdir");
}

/// Builds, under `sys`:
///
/// ```text
/// devices/pci0000:00/0000:00:14.0/usb1/                 root hub (idVendor 1d6b)
///   1-1/                                                FTDI 0403:6001 serial A1B2
///     1-1:1.0/ttyUSB0/       driver -> bus/usb-serial/drivers/ftdi_sio
///       tty/ttyUSB0/         device -> ../../../ttyUSB0
/// devices/platform/serial8250/tty/ttyS0/                type 0, device -> serial8250
/// devices/pnp0/00:04/                                   driver -> bus/pnp/drivers/serial
///   00:04:0/00:04:0.0/tty/ttyS1/                        type 4, device -> 00:04:0.0
///                                                       (serial-base port/ctrl drivers)
/// devices/virtual/tty/tty0/                             no device link
/// class/tty/{ttyUSB0,ttyS0,ttyS1,tty0} -> ../../devices/...
/// ```
fn fake_sysfs(sys: &Path) {
    // Drivers.
    for d in [
        "bus/usb-serial/drivers/ftdi_sio",
        "bus/pnp/drivers/serial",
        "bus/serial-base/drivers/port",
        "bus/serial-base/drivers/ctrl",
        "bus/platform/drivers/serial8250",
    ] {
        mkdir(&sys.join(d));
    }
    mkdir(&sys.join("class/tty"));

    // USB: root hub and the FTDI adapter.
    let hub = sys.join("devices/pci0000:00/0000:00:14.0/usb1");
    write(&hub.join("idVendor"), "1d6b\n");
    write(&hub.join("idProduct"), "0002\n");
    let ftdi = hub.join("1-1");
    write(&ftdi.join("idVendor"), "0403\n");
    write(&ftdi.join("idProduct"), "6001\n");
    write(&ftdi.join("serial"), "A1B2\n");
    write(&ftdi.join("manufacturer"), "FTDI\n");
    write(&ftdi.join("product"), "FT232R USB UART\n");
    let port = ftdi.join("1-1:1.0/ttyUSB0");
    mkdir(&port);
    symlink(
        "../../../../../../bus/usb-serial/drivers/ftdi_sio",
        port.join("driver"),
    )
    .expect("symlink");
    let tty = port.join("tty/ttyUSB0");
    mkdir(&tty);
    symlink("../../../ttyUSB0", tty.join("device")).expect("symlink");
    write(&tty.join("dev"), "188:0\n");
    symlink(
        "../../devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/ttyUSB0/tty/ttyUSB0",
        sys.join("class/tty/ttyUSB0"),
    )
    .expect("symlink");

    // ttyS0: a legacy 8250 slot with no UART behind it.
    let s8250 = sys.join("devices/platform/serial8250");
    mkdir(&s8250);
    symlink(
        "../../../bus/platform/drivers/serial8250",
        s8250.join("driver"),
    )
    .expect("symlink");
    let ttys0 = s8250.join("tty/ttyS0");
    write(&ttys0.join("type"), "0\n");
    symlink("../../../serial8250", ttys0.join("device")).expect("symlink");
    symlink(
        "../../devices/platform/serial8250/tty/ttyS0",
        sys.join("class/tty/ttyS0"),
    )
    .expect("symlink");

    // ttyS1: a real 16550A (type 4) on a newer kernel with serial-base port/ctrl devices.
    let pnp = sys.join("devices/pnp0/00:04");
    mkdir(&pnp);
    symlink("../../../bus/pnp/drivers/serial", pnp.join("driver")).expect("symlink");
    let ctrl = pnp.join("00:04:0");
    mkdir(&ctrl);
    symlink(
        "../../../../bus/serial-base/drivers/ctrl",
        ctrl.join("driver"),
    )
    .expect("symlink");
    let base_port = ctrl.join("00:04:0.0");
    mkdir(&base_port);
    symlink(
        "../../../../../bus/serial-base/drivers/port",
        base_port.join("driver"),
    )
    .expect("symlink");
    let ttys1 = base_port.join("tty/ttyS1");
    write(&ttys1.join("type"), "4\n");
    symlink("../../../00:04:0.0", ttys1.join("device")).expect("symlink");
    symlink(
        "../../devices/pnp0/00:04/00:04:0/00:04:0.0/tty/ttyS1",
        sys.join("class/tty/ttyS1"),
    )
    .expect("symlink");

    // tty0: a virtual console, no device link.
    let tty0 = sys.join("devices/virtual/tty/tty0");
    write(&tty0.join("dev"), "4:0\n");
    symlink("../../devices/virtual/tty/tty0", sys.join("class/tty/tty0")).expect("symlink");
}

#[test]
fn fake_sysfs_tree_is_read_like_the_real_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sys = tmp.path().join("sys");
    let dev = tmp.path().join("dev");
    fake_sysfs(&sys);
    mkdir(&dev);
    // Only ttyUSB0 has a device node; ttyS1's is absent.
    write(&dev.join("ttyUSB0"), "");

    let ports = serial_ports_in(&sys, &dev);
    let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
    // ttyS0 (type 0) and tty0 (no device link) are skipped.
    assert_eq!(names, vec!["ttyS1", "ttyUSB0"], "{ports:#?}");

    let usb0 = &ports[1];
    assert_eq!(usb0.path, dev.join("ttyUSB0").to_string_lossy());
    assert_eq!(usb0.uri, format!("serial:{}", usb0.path));
    assert_eq!(usb0.driver.as_deref(), Some("ftdi_sio"));
    let ids = usb0.usb.as_ref().expect("USB ids of the adapter");
    assert_eq!(
        (ids.vid, ids.pid),
        (0x0403, 0x6001),
        "the first USB ancestor, not the root hub"
    );
    assert_eq!(ids.serial.as_deref(), Some("A1B2"));
    assert_eq!(ids.manufacturer.as_deref(), Some("FTDI"));
    assert_eq!(ids.product.as_deref(), Some("FT232R USB UART"));
    let label = usb0.label.expect("FTDI is in the vendor table");
    assert!(label.label.starts_with("FTDI"), "{label:?}");
    assert_eq!(label.kind, VendorKind::SerialAdapter);
    assert_eq!(usb0.access, Access::ReadWrite);

    let s1 = &ports[0];
    assert_eq!(
        s1.driver.as_deref(),
        Some("serial"),
        "past the serial-base port/ctrl drivers"
    );
    assert_eq!(s1.usb, None);
    assert_eq!(s1.label, None);
    assert_eq!(s1.access, Access::Missing);

    // Serializable for the CLI, ids as hex strings.
    let json = serde_json::to_value(&ports).expect("serialize");
    assert_eq!(json[1]["usb"]["vid"], "0403");
    assert_eq!(json[1]["usb"]["pid"], "6001");
    assert_eq!(json[1]["access"]["state"], "read_write");
    assert_eq!(json[0]["access"]["state"], "missing");
}

#[test]
fn missing_or_empty_sysfs_gives_no_ports() {
    let tmp = tempfile::tempdir().expect("tempdir");
    assert!(serial_ports_in(&tmp.path().join("nothing"), tmp.path()).is_empty());
    mkdir(&tmp.path().join("class/tty"));
    assert!(serial_ports_in(tmp.path(), tmp.path()).is_empty());
}

#[test]
fn a_broken_device_link_or_garbage_attributes_do_not_panic() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sys = tmp.path().join("sys");
    let dev = tmp.path().join("dev");
    mkdir(&dev);
    mkdir(&sys.join("class/tty"));
    // A dangling device link: skipped.
    let a = sys.join("devices/x/tty/ttyUSB7");
    mkdir(&a);
    symlink("../../../gone", a.join("device")).expect("symlink");
    symlink("../../devices/x/tty/ttyUSB7", sys.join("class/tty/ttyUSB7")).expect("symlink");
    // A USB device whose ids are not hex, and a ttyS with a garbage type: skipped / no ids.
    let usb = sys.join("devices/usb9/9-1");
    write(&usb.join("idVendor"), "zz\u{0}\n");
    write(&usb.join("idProduct"), "\u{fffd}\n");
    let acm = usb.join("9-1:1.0/tty/ttyACM0");
    mkdir(&acm);
    symlink("../../../9-1:1.0", acm.join("device")).expect("symlink");
    symlink(
        "../../devices/usb9/9-1/9-1:1.0/tty/ttyACM0",
        sys.join("class/tty/ttyACM0"),
    )
    .expect("symlink");
    let s = sys.join("devices/y/tty/ttyS3");
    write(&s.join("type"), "sixteen\n");
    symlink("../../../y", s.join("device")).expect("symlink");
    symlink("../../devices/y/tty/ttyS3", sys.join("class/tty/ttyS3")).expect("symlink");

    let ports = serial_ports_in(&sys, &dev);
    assert_eq!(ports.len(), 1, "{ports:#?}");
    assert_eq!(ports[0].name, "ttyACM0");
    assert_eq!(ports[0].usb, None);
    assert_eq!(ports[0].driver, None);
}

#[test]
fn serial_ports_on_this_machine() {
    for p in serial_ports() {
        println!(
            "{} driver={:?} usb={:?} access={:?}",
            p.path, p.driver, p.usb, p.access
        );
        assert!(p.path.starts_with("/dev/"));
        assert!(p.path.ends_with(&p.name));
        if p.name.starts_with("ttyS") {
            assert_eq!(p.usb, None);
        }
    }
}

#[test]
fn usb_devices_on_this_machine_do_not_panic() {
    match usb_devices() {
        Ok(devices) => {
            for d in &devices {
                println!(
                    "{} {:04x}:{:04x} {:?} {:?}",
                    d.uri, d.vid, d.pid, d.kinds, d.access
                );
                assert!(d.uri.starts_with("usb:"), "{}", d.uri);
                assert!(d.uri.parse::<pos_link::DeviceUri>().is_ok(), "{}", d.uri);
                assert_eq!(d.label, lookup(d.vid, d.pid));
                for class in &d.interface_classes {
                    if let Some(k) = DeviceClassKind::from_interface_class(*class) {
                        assert!(d.kinds.contains(&k), "{d:?}");
                    }
                }
                if d.access != Access::ReadWrite {
                    assert_eq!(
                        (&d.manufacturer, &d.product, &d.serial),
                        (&None, &None, &None)
                    );
                }
                if let Some(s) = &d.serial {
                    let uri: pos_link::DeviceUri = d.uri.parse().expect("parses");
                    if uri.option("serial").is_some() {
                        assert_eq!(uri.option("serial"), Some(s.as_str()));
                    }
                }
            }
        }
        Err(e) => {
            use pos_hal::Fault;
            println!(
                "USB enumeration unavailable here: {e} (kind {:?})",
                e.kind()
            );
            assert!(!e.to_string().is_empty());
        }
    }
}
