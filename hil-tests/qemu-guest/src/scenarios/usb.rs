//! Scenarios: usb.

use super::*;

/// One line per field of the CCID class descriptor.
pub fn describe_ccid(d: &CcidDescriptor) -> Vec<String> {
    vec![
        format!(
            "bcdCCID {:X}.{:02X}, {} slot(s), max busy slots {}",
            d.bcd_ccid >> 8,
            d.bcd_ccid & 0xFF,
            d.slot_count(),
            d.max_busy_slots
        ),
        format!(
            "exchange level {}, features {:#010x} {:?}",
            d.exchange_level(),
            d.features.bits(),
            d.features
        ),
        format!("protocols {:?}, voltages {:?}", d.protocols, d.voltages),
        format!(
            "max message length {} bytes (payload {}), max IFSD {}",
            d.max_message_length,
            d.max_payload_len(),
            d.max_ifsd
        ),
        format!(
            "clock {} kHz (max {}), data rate {} bps (max {})",
            d.default_clock_khz, d.max_clock_khz, d.data_rate_bps, d.max_data_rate_bps
        ),
        format!(
            "automatic: parameters {}, PPS {}, voltage {}, clock {}, baud {}, IFSD {}",
            d.auto_parameters(),
            d.auto_pps(),
            d.auto_voltage(),
            d.auto_clock(),
            d.auto_baud(),
            d.auto_ifsd()
        ),
    ]
}

/// The CCID class descriptor of the device `vid:pid`, read through rusb: from its CCID
/// interface's extra bytes, else from an endpoint's (a known reader quirk).
pub(super) fn ccid_descriptor_via_rusb(vid: u16, pid: u16) -> Result<(u8, CcidDescriptor), End> {
    let devices = rusb::devices().map_err(|e| fail(format!("libusb cannot list devices: {e}")))?;
    let device = devices
        .iter()
        .find(|d| {
            d.device_descriptor()
                .is_ok_and(|dd| dd.vendor_id() == vid && dd.product_id() == pid)
        })
        .ok_or_else(|| fail(format!("libusb does not list {vid:04x}:{pid:04x}")))?;
    let config = device
        .active_config_descriptor()
        .or_else(|_| device.config_descriptor(0))
        .map_err(|e| {
            fail(format!(
                "{vid:04x}:{pid:04x}: no configuration descriptor: {e}"
            ))
        })?;
    for interface in config.interfaces() {
        for alt in interface.descriptors() {
            if alt.class_code() != USB_CLASS_CCID {
                continue;
            }
            let mut extras: Vec<Vec<u8>> = vec![alt.extra().to_vec()];
            extras.extend(
                alt.endpoint_descriptors()
                    .filter_map(|e| e.extra().map(<[u8]>::to_vec)),
            );
            for extra in extras {
                match pos_ccid::descriptor::find(&extra) {
                    Some(Ok(d)) => return Ok((alt.interface_number(), d)),
                    Some(Err(e)) => {
                        return Err(fail(format!(
                            "interface {}: the CCID class descriptor does not parse: {e}",
                            alt.interface_number()
                        )));
                    }
                    None => {}
                }
            }
            return Err(fail(format!(
                "interface {} is class 0x0b but has no CCID class descriptor",
                alt.interface_number()
            )));
        }
    }
    Err(fail(format!(
        "{vid:04x}:{pid:04x} has no interface of class 0x0b (CCID)"
    )))
}

/// How long the guest kernel may take to enumerate QEMU's reader after the modules load.
pub(super) const ENUMERATION_LIMIT: Duration = Duration::from_secs(20);

pub(super) fn usb_discovery(ctx: &mut Ctx<'_>) -> Outcome {
    // The xHCI driver enumerates the bus asynchronously after `insmod`: poll (as a
    // technician's `posctl devices` would be re-run) until the reader shows or the limit.
    let started = Instant::now();
    let devices = loop {
        let devices =
            pos_link::enumerate::usb_devices().map_err(|e| device_fail("list USB devices", &e))?;
        let found = devices
            .iter()
            .any(|d| d.vid == READER_VID && d.pid == READER_PID);
        if found || started.elapsed() >= ENUMERATION_LIMIT {
            break devices;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    ctx.step(format!(
        "{} USB device(s) listed {} ms after the start",
        devices.len(),
        started.elapsed().as_millis()
    ));
    for d in &devices {
        ctx.step(format!(
            "bus {} address {}: {:04x}:{:04x} {} classes {:02x?}",
            d.bus,
            d.address,
            d.vid,
            d.pid,
            d.product.as_deref().unwrap_or("-"),
            d.interface_classes
        ));
    }
    let reader = devices
        .iter()
        .find(|d| d.vid == READER_VID && d.pid == READER_PID)
        .ok_or_else(|| {
            fail(format!(
                "no {READER_VID:04x}:{READER_PID:04x} among {} USB device(s)",
                devices.len()
            ))
        })?;
    if !reader.interface_classes.contains(&USB_CLASS_CCID) {
        return Err(fail(format!(
            "{READER_VID:04x}:{READER_PID:04x} has interface classes {:02x?}, no 0x0b (CCID)",
            reader.interface_classes
        )));
    }
    ctx.step(format!(
        "reader at {} (kinds {:?}, access {:?})",
        reader.uri, reader.kinds, reader.access
    ));
    let (interface, d) = ccid_descriptor_via_rusb(READER_VID, READER_PID)?;
    ctx.step(format!("CCID class descriptor on interface {interface}:"));
    for line in describe_ccid(&d) {
        ctx.step(line);
    }
    if d.protocols.is_empty() {
        return Err(fail(
            "the reader announces no protocol (neither T=0 nor T=1)",
        ));
    }
    Ok(format!(
        "{READER_VID:04x}:{READER_PID:04x} CCID, {} level, protocols {:?}, max message {}",
        d.exchange_level(),
        d.protocols,
        d.max_message_length
    ))
}

/// How long a gadget may take to enumerate on `dummy_hcd`'s host side, or to go.
pub(super) const GADGET_LIMIT: Duration = Duration::from_secs(10);

/// `usb.gadget`: the guest can build USB devices of its own. A configfs gadget with the
/// printer function, bound to `dummy_hcd`, enumerates on the guest's own host side with the
/// declared vendor, product and a printer-class interface (seen through libusb), and goes
/// when unbound. The other gadget cases build on this.
pub(super) fn usb_gadget(ctx: &mut Ctx<'_>) -> Outcome {
    use crate::gadget::{DeviceSpec, Gadget, require_modules, wait_gone};
    require_modules(&["libcomposite", "dummy_hcd", "usb_f_printer"]).map_err(End::Skip)?;
    let spec = DeviceSpec::new(0x1d6b, 0x0104, "pos rig", "gadget smoke test");
    let mut g = Gadget::create("rig-smoke", &spec).map_err(|e| fail(format!("gadget: {e}")))?;
    g.function("printer", "smoke", &[("q_len", b"4")])
        .map_err(|e| fail(format!("printer function: {e}")))?;
    let udc = g.bind().map_err(|e| fail(format!("bind: {e}")))?;
    let dir = g
        .wait_enumerated(GADGET_LIMIT)
        .map_err(|e| fail(e.to_string()))?;
    ctx.step(format!("bound to {udc}; enumerated as {}", dir.display()));
    let devices = rusb::devices().map_err(|e| fail(format!("libusb cannot list devices: {e}")))?;
    let device = devices
        .iter()
        .find(|d| {
            d.device_descriptor()
                .is_ok_and(|dd| dd.vendor_id() == spec.vid && dd.product_id() == spec.pid)
        })
        .ok_or_else(|| fail("libusb does not list the gadget"))?;
    let config = device
        .active_config_descriptor()
        .map_err(|e| fail(format!("no configuration descriptor: {e}")))?;
    let classes: Vec<u8> = config
        .interfaces()
        .flat_map(|i| i.descriptors().map(|d| d.class_code()).collect::<Vec<_>>())
        .collect();
    if !classes.contains(&7) {
        return Err(fail(format!(
            "no printer-class interface (classes {classes:02x?})"
        )));
    }
    ctx.step(format!("libusb: interface classes {classes:02x?}"));
    g.unbind().map_err(|e| fail(format!("unbind: {e}")))?;
    wait_gone(spec.vid, spec.pid, GADGET_LIMIT).map_err(|e| fail(e.to_string()))?;
    Ok(format!(
        "gadget {:04x}:{:04x} enumerated on {udc} with a printer interface and went on unbind",
        spec.vid, spec.pid
    ))
}
