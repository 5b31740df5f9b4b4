//! USB bulk pipes through rusb (bundled libusb): receipt printers (class 0x07), CCID chip
//! readers (class 0x0B) and vendor-specific devices.
//!
//! A [`UsbLink`] claims one interface of one device and talks through its bulk OUT and bulk
//! IN endpoints; a CCID reader's interrupt IN endpoint (slot change notifications) is read
//! with [`UsbLink::read_interrupt`], and class requests go through
//! [`UsbLink::control_out`] / [`UsbLink::control_in`].
//!
//! Which interface and which endpoints are used is decided by [`select_endpoints`], a pure
//! function over plain descriptor data ([`InterfaceInfo`]), so the choice is testable without
//! hardware.
//!
//! ```no_run
//! use pos_link::usb::{UsbLink, UsbOpenOptions, CLASS_PRINTER};
//! use pos_link::{Deadline, DeviceUri, Link};
//! use std::time::Duration;
//!
//! let uri: DeviceUri = "usb:04b8:0202".parse()?;
//! let opts = UsbOpenOptions { interface_class: Some(CLASS_PRINTER), ..Default::default() };
//! let mut printer = UsbLink::open_uri(&uri, opts)?;
//! printer.write_all(b"\x1b@hello\n", Deadline::after(Duration::from_secs(2)))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Timeouts: every transfer is given the deadline's remaining time, but at least 1 ms:
//! libusb treats a timeout of 0 as "wait forever", which a passed deadline must never become.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use rusb::UsbContext;

use crate::error::{LinkError, Operation, classify_usb};
use crate::link::{Deadline, Link, Pacing, write_all_with};
use crate::uri::{Address, DeviceUri, UsbSelector};

/// Interface class: communications (CDC control; serial adapters, modems).
pub const CLASS_CDC: u8 = 0x02;
/// Interface class: human interface device (keyboard-wedge and HID card readers).
pub const CLASS_HID: u8 = 0x03;
/// Interface class: printer.
pub const CLASS_PRINTER: u8 = 0x07;
/// Interface class: hub.
pub const CLASS_HUB: u8 = 0x09;
/// Interface class: CDC data.
pub const CLASS_CDC_DATA: u8 = 0x0A;
/// Interface class: smart card (CCID).
pub const CLASS_CCID: u8 = 0x0B;
/// Interface class: vendor specific.
pub const CLASS_VENDOR_SPECIFIC: u8 = 0xFF;

/// The shortest timeout given to libusb: 0 would mean "no timeout at all".
const MIN_USB_TIMEOUT: Duration = Duration::from_millis(1);

/// Size of the bulk IN buffer before rounding up to a multiple of the max packet size.
/// Reading whole packets into a large buffer avoids libusb overflow errors.
const RX_BUFFER_TARGET: usize = 16 * 1024;

/// Smallest bulk IN buffer.
const RX_BUFFER_MIN: usize = 512;

/// Largest write worth making at once, before rounding to a multiple of the packet size.
const WRITE_CHUNK_TARGET: usize = 4096;

/// The largest single bulk OUT transfer.
const MAX_BULK_WRITE: usize = 1 << 20;

/// At most this many 1 ms reads when discarding input, so a chatty device cannot hold us.
const DISCARD_MAX_READS: usize = 64;

/// How long reading a string descriptor may take.
const STRING_TIMEOUT: Duration = Duration::from_millis(500);

/// A human name for an interface class code, for messages.
pub fn class_name(class: u8) -> &'static str {
    match class {
        0x01 => "audio",
        CLASS_CDC => "CDC",
        CLASS_HID => "HID",
        CLASS_PRINTER => "printer",
        0x08 => "mass storage",
        CLASS_HUB => "hub",
        CLASS_CDC_DATA => "CDC data",
        CLASS_CCID => "smart card (CCID)",
        0x0E => "video",
        0xE0 => "wireless",
        0xEF => "miscellaneous",
        0xFE => "application specific",
        CLASS_VENDOR_SPECIFIC => "vendor specific",
        _ => "other",
    }
}

/// How [`UsbLink`] picks the interface to claim.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsbOpenOptions {
    /// Claim the first interface of this class (e.g. [`CLASS_PRINTER`], [`CLASS_CCID`],
    /// [`CLASS_HID`]). `None`: the first interface that has a bulk OUT endpoint.
    pub interface_class: Option<u8>,
    /// Claim the interface with this number (checked against `interface_class` too, if
    /// that is given).
    pub interface_number: Option<u8>,
}

/// An endpoint's transfer type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// Control transfers.
    Control,
    /// Isochronous transfers.
    Isochronous,
    /// Bulk transfers.
    Bulk,
    /// Interrupt transfers.
    Interrupt,
}

/// One endpoint, as plain data from an endpoint descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointInfo {
    /// `bEndpointAddress`: the number in bits 0-3, the direction in bit 7 (set: IN, device to
    /// host).
    pub address: u8,
    /// The transfer type.
    pub transfer: TransferKind,
    /// `wMaxPacketSize` as in the descriptor (bits 11-12, the high-bandwidth multiplier, are
    /// masked off where the size is used).
    pub max_packet: u16,
}

impl EndpointInfo {
    /// True for an IN (device to host) endpoint.
    pub fn is_in(&self) -> bool {
        self.address & 0x80 != 0
    }

    /// The packet size proper, without the high-bandwidth multiplier bits.
    pub fn packet_size(&self) -> u16 {
        self.max_packet & 0x07FF
    }
}

/// One interface (its default alternate setting), as plain data from the config descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// `bInterfaceNumber`.
    pub number: u8,
    /// `bInterfaceClass`.
    pub class: u8,
    /// The interface's endpoints, in descriptor order.
    pub endpoints: Vec<EndpointInfo>,
}

impl InterfaceInfo {
    fn first(&self, transfer: TransferKind, input: bool) -> Option<&EndpointInfo> {
        self.endpoints
            .iter()
            .find(|e| e.transfer == transfer && e.is_in() == input)
    }
}

/// The endpoints a [`UsbLink`] uses, from [`select_endpoints`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct UsbEndpoints {
    /// Bulk IN endpoint address (device to host), if the interface has one.
    pub bulk_in: Option<u8>,
    /// Bulk OUT endpoint address (host to device), if the interface has one.
    pub bulk_out: Option<u8>,
    /// Interrupt IN endpoint address (e.g. CCID slot change notifications), if any.
    pub interrupt_in: Option<u8>,
    /// Max packet size of the bulk IN endpoint (0 without one).
    pub max_packet_in: u16,
    /// Max packet size of the bulk OUT endpoint (0 without one).
    pub max_packet_out: u16,
    /// Max packet size of the interrupt IN endpoint (0 without one).
    pub max_packet_interrupt: u16,
    /// The interface number claimed.
    pub interface: u8,
    /// That interface's class.
    pub interface_class: u8,
}

/// Why [`select_endpoints`] found nothing to use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointSelectError {
    /// The configuration has no interfaces at all.
    #[error("the device's configuration has no interfaces")]
    NoInterfaces,
    /// No interface has the class or number asked for.
    #[error("no interface {wanted}; the device has {available}")]
    NoMatchingInterface {
        /// What was asked for, e.g. `of class 0x0b (smart card (CCID))`.
        wanted: String,
        /// The interfaces there are.
        available: String,
    },
    /// No class or number was asked for and no interface has a bulk OUT endpoint.
    #[error("no interface has a bulk OUT endpoint; the device has {available}")]
    NoBulkOut {
        /// The interfaces there are.
        available: String,
    },
    /// The interface asked for has neither bulk nor interrupt IN endpoints.
    #[error("interface {interface} has no bulk or interrupt IN endpoints")]
    NoUsableEndpoints {
        /// The interface number.
        interface: u8,
    },
}

fn describe_interfaces(interfaces: &[InterfaceInfo]) -> String {
    if interfaces.is_empty() {
        return "no interfaces".to_string();
    }
    let parts: Vec<String> = interfaces
        .iter()
        .map(|i| {
            format!(
                "interface {} (class 0x{:02x} {})",
                i.number,
                i.class,
                class_name(i.class)
            )
        })
        .collect();
    parts.join(", ")
}

/// Pick the interface and its endpoints from plain descriptor data.
///
/// - With neither `interface_class` nor `interface_number`: the first interface that has a
///   bulk OUT endpoint; none -> [`EndpointSelectError::NoBulkOut`].
/// - Otherwise among the interfaces that match both filters: the first with a bulk OUT
///   endpoint, else the first with a bulk IN or interrupt IN endpoint (an IN-only interface
///   such as a HID reader or a unidirectional device); no match ->
///   [`EndpointSelectError::NoMatchingInterface`], no usable endpoint ->
///   [`EndpointSelectError::NoUsableEndpoints`].
///
/// On the chosen interface the first bulk IN, bulk OUT and interrupt IN endpoints are taken.
pub fn select_endpoints(
    interfaces: &[InterfaceInfo],
    opts: &UsbOpenOptions,
) -> Result<UsbEndpoints, EndpointSelectError> {
    if interfaces.is_empty() {
        return Err(EndpointSelectError::NoInterfaces);
    }
    let has_bulk_out = |i: &InterfaceInfo| i.first(TransferKind::Bulk, false).is_some();
    let chosen = if opts.interface_class.is_none() && opts.interface_number.is_none() {
        interfaces.iter().find(|i| has_bulk_out(i)).ok_or_else(|| {
            EndpointSelectError::NoBulkOut {
                available: describe_interfaces(interfaces),
            }
        })?
    } else {
        let candidates: Vec<&InterfaceInfo> = interfaces
            .iter()
            .filter(|i| {
                opts.interface_class.is_none_or(|c| i.class == c)
                    && opts.interface_number.is_none_or(|n| i.number == n)
            })
            .collect();
        let Some(first) = candidates.first() else {
            let mut wanted = Vec::new();
            if let Some(n) = opts.interface_number {
                wanted.push(format!("number {n}"));
            }
            if let Some(c) = opts.interface_class {
                wanted.push(format!("of class 0x{c:02x} ({})", class_name(c)));
            }
            return Err(EndpointSelectError::NoMatchingInterface {
                wanted: wanted.join(" "),
                available: describe_interfaces(interfaces),
            });
        };
        candidates
            .iter()
            .find(|i| has_bulk_out(i))
            .or_else(|| {
                candidates.iter().find(|i| {
                    i.first(TransferKind::Bulk, true).is_some()
                        || i.first(TransferKind::Interrupt, true).is_some()
                })
            })
            .copied()
            .ok_or(EndpointSelectError::NoUsableEndpoints {
                interface: first.number,
            })?
    };
    let bulk_in = chosen.first(TransferKind::Bulk, true);
    let bulk_out = chosen.first(TransferKind::Bulk, false);
    let interrupt_in = chosen.first(TransferKind::Interrupt, true);
    Ok(UsbEndpoints {
        bulk_in: bulk_in.map(|e| e.address),
        bulk_out: bulk_out.map(|e| e.address),
        interrupt_in: interrupt_in.map(|e| e.address),
        max_packet_in: bulk_in.map_or(0, EndpointInfo::packet_size),
        max_packet_out: bulk_out.map_or(0, EndpointInfo::packet_size),
        max_packet_interrupt: interrupt_in.map_or(0, EndpointInfo::packet_size),
        interface: chosen.number,
        interface_class: chosen.class,
    })
}

/// The interfaces of a configuration as plain data (the default alternate setting of each,
/// or its first setting when there is no setting 0).
pub(crate) fn interfaces_of(config: &rusb::ConfigDescriptor) -> Vec<InterfaceInfo> {
    let mut out: Vec<InterfaceInfo> = Vec::new();
    for iface in config.interfaces() {
        let settings: Vec<rusb::InterfaceDescriptor<'_>> = iface.descriptors().collect();
        let Some(d) = settings
            .iter()
            .find(|d| d.setting_number() == 0)
            .or_else(|| settings.first())
        else {
            continue;
        };
        if out.iter().any(|i| i.number == d.interface_number()) {
            continue;
        }
        out.push(InterfaceInfo {
            number: d.interface_number(),
            class: d.class_code(),
            endpoints: d
                .endpoint_descriptors()
                .map(|e| EndpointInfo {
                    address: e.address(),
                    transfer: match e.transfer_type() {
                        rusb::TransferType::Control => TransferKind::Control,
                        rusb::TransferType::Isochronous => TransferKind::Isochronous,
                        rusb::TransferType::Bulk => TransferKind::Bulk,
                        rusb::TransferType::Interrupt => TransferKind::Interrupt,
                    },
                    max_packet: e.max_packet_size(),
                })
                .collect(),
        });
    }
    out
}

/// Where libusb finds device nodes on Linux.
const USBFS_DIR: &str = "/dev/bus/usb";

/// Start libusb. When it cannot and there is no `/dev/bus/usb` at all (a container without
/// USB, a machine without a USB subsystem), say so as `NotFound` instead of libusb's bare
/// "Other error"; other failures go through [`classify_usb`].
pub(crate) fn new_context(target: &str, operation: Operation) -> Result<rusb::Context, LinkError> {
    rusb::Context::new().map_err(|e| {
        if std::fs::symlink_metadata(USBFS_DIR).is_err() {
            LinkError::NotFound {
                target: target.to_string(),
                detail: format!(
                    "libusb cannot start ({e}): {USBFS_DIR} does not exist, so no USB devices are visible \
                     here (no USB subsystem, or a container without USB passed through)"
                ),
                source: None,
            }
        } else {
            classify_usb(e, target, operation, Duration::ZERO)
        }
    })
}

/// A timeout for libusb from a deadline's remaining time: at least 1 ms (0 would block
/// forever), at most [`crate::MAX_WAIT`].
fn usb_timeout(remaining: Duration) -> Duration {
    remaining.clamp(MIN_USB_TIMEOUT, crate::MAX_WAIT)
}

/// Round `target` up to a multiple of `packet` (at least `min`).
fn packet_multiple(target: usize, packet: u16, min: usize) -> usize {
    let p = usize::from(packet).max(1);
    let n = target.max(min).div_ceil(p) * p;
    n.max(p)
}

/// Read a string descriptor; `None` when the device has none or it cannot be read.
pub(crate) fn read_string(
    handle: &rusb::DeviceHandle<rusb::Context>,
    index: Option<u8>,
) -> Option<String> {
    let index = index?;
    let languages = handle.read_languages(STRING_TIMEOUT).ok()?;
    let language = languages.first()?;
    let s = handle
        .read_string_descriptor(*language, index, STRING_TIMEOUT)
        .ok()?;
    let s = s.trim().to_string();
    if s.is_empty() { None } else { Some(s) }
}

/// The name of the kernel driver bound to an interface, from sysfs (Linux).
fn kernel_driver_name(bus: u8, ports: &[u8], config: u8, interface: u8) -> Option<String> {
    if ports.is_empty() {
        return None;
    }
    let path: Vec<String> = ports.iter().map(u8::to_string).collect();
    let dir = PathBuf::from(format!(
        "/sys/bus/usb/devices/{bus}-{}:{config}.{interface}/driver",
        path.join(".")
    ));
    let target = std::fs::read_link(dir).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

fn describe_driver(name: Option<&str>, class: u8) -> String {
    match (name, class) {
        (Some(n), _) => format!("kernel driver '{n}'"),
        (None, CLASS_PRINTER) => "a kernel driver (probably usblp)".to_string(),
        (None, CLASS_HID) => "a kernel driver (probably usbhid)".to_string(),
        (None, _) => "a kernel driver".to_string(),
    }
}

/// A claimed interface of a USB device, used through its bulk endpoints.
///
/// Dropping it releases the interface and, if a kernel driver was detached to claim it,
/// gives the interface back to that driver.
pub struct UsbLink {
    handle: std::sync::Arc<rusb::DeviceHandle<rusb::Context>>,
    target: String,
    endpoints: UsbEndpoints,
    /// Bulk IN buffer: whole transfers land here and reads are served from it.
    rx: Vec<u8>,
    rx_start: usize,
    rx_end: usize,
    /// A kernel driver was detached by hand (no auto-detach): reattach it on drop.
    reattach_kernel_driver: bool,
    /// Class-specific descriptor bytes of the claimed interface and its endpoints.
    class_descriptors: Vec<u8>,
}

impl fmt::Debug for UsbLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsbLink")
            .field("target", &self.target)
            .field("endpoints", &self.endpoints)
            .field("buffered", &(self.rx_end - self.rx_start))
            .finish()
    }
}

/// A device found by [`UsbLink::open`]'s search, with its handle if it was opened already.
struct Candidate {
    device: rusb::Device<rusb::Context>,
    handle: Option<rusb::DeviceHandle<rusb::Context>>,
}

impl UsbLink {
    /// Open the device a `usb:` URI names (`usb:VID:PID`, `usb:VID:PID?serial=X`,
    /// `usb:BUS-PORT.PORT`) and claim an interface as `opts` says.
    ///
    /// Errors: as [`open`](Self::open); `InvalidSetting` when the URI is not `usb:`.
    pub fn open_uri(uri: &DeviceUri, opts: UsbOpenOptions) -> Result<Self, LinkError> {
        match uri.address() {
            Address::Usb(selector) => {
                Self::open_as(selector, uri.option("serial"), opts, uri.to_string())
            }
            _ => Err(LinkError::InvalidSetting {
                target: uri.to_string(),
                detail: "not a usb: URI".into(),
            }),
        }
    }

    /// Open the device `selector` picks (by vid:pid, or by bus and port path), optionally
    /// only one whose serial number string is `serial`, and claim an interface as `opts`
    /// says. A kernel driver holding the interface (usblp, usbhid) is detached, and this is
    /// logged at info level.
    ///
    /// When several devices match a vid:pid and no serial is given, the first is opened and
    /// a warning says how many there were and that `?serial=` picks one.
    ///
    /// Errors: `NotFound` (no such device, no suitable interface, or no `/dev/bus/usb` at
    /// all: the detail says what was looked for), `PermissionDenied` (with the udev hint),
    /// `Busy` (another process or a kernel driver holds the interface: the message names the
    /// holder a bounded scan of `/proc` finds, e.g. pcscd, and the hint the device's node
    /// `/dev/bus/usb/BBB/DDD`: [`crate::usb_busy`]), `Disconnected`, `Io` (libusb cannot
    /// start for another reason).
    pub fn open(
        selector: &UsbSelector,
        serial: Option<&str>,
        opts: UsbOpenOptions,
    ) -> Result<Self, LinkError> {
        let target = match serial {
            Some(s) => DeviceUri::new(
                Address::Usb(selector.clone()),
                vec![("serial".to_string(), s.to_string())],
            )
            .map(|u| u.to_string())
            .unwrap_or_else(|_| format!("usb:{selector}?serial={s}")),
            None => format!("usb:{selector}"),
        };
        Self::open_as(selector, serial, opts, target)
    }

    fn open_as(
        selector: &UsbSelector,
        serial: Option<&str>,
        opts: UsbOpenOptions,
        target: String,
    ) -> Result<Self, LinkError> {
        let open_err = |e: rusb::Error| classify_usb(e, &target, Operation::Open, Duration::ZERO);
        let context = new_context(&target, Operation::Open)?;
        let list = context.devices().map_err(open_err)?;

        let mut matches: Vec<Candidate> = Vec::new();
        let mut total = 0usize;
        let mut other_serials: Vec<String> = Vec::new();
        let mut unreadable: Vec<rusb::Error> = Vec::new();
        for device in list.iter() {
            total += 1;
            let Ok(desc) = device.device_descriptor() else {
                continue;
            };
            let hit = match selector {
                UsbSelector::Ids { vid, pid } => {
                    desc.vendor_id() == *vid && desc.product_id() == *pid
                }
                UsbSelector::Port { bus, ports } => {
                    device.bus_number() == *bus
                        && device
                            .port_numbers()
                            .is_ok_and(|p| p.as_slice() == ports.as_slice())
                }
            };
            if !hit {
                continue;
            }
            let Some(want) = serial else {
                matches.push(Candidate {
                    device,
                    handle: None,
                });
                continue;
            };
            match device.open() {
                Ok(handle) => match read_string(&handle, desc.serial_number_string_index()) {
                    Some(s) if s == want => matches.push(Candidate {
                        device,
                        handle: Some(handle),
                    }),
                    Some(s) => other_serials.push(s),
                    None => other_serials.push("(none)".to_string()),
                },
                Err(e) => {
                    log::debug!(
                        "{target}: cannot open candidate at bus {} address {} to read its serial number: {e}",
                        device.bus_number(),
                        device.address()
                    );
                    unreadable.push(e);
                }
            }
        }

        // libusb lists devices in no stable order; "the first" is the lowest bus and port path.
        matches.sort_by_key(|c| {
            (
                c.device.bus_number(),
                c.device.port_numbers().unwrap_or_default(),
            )
        });
        let found = matches.len();
        let mut matches = matches.into_iter();
        let Some(Candidate { device, handle }) = matches.next() else {
            if unreadable.contains(&rusb::Error::Access) {
                // A device with those ids exists but we may not read its serial number.
                return Err(open_err(rusb::Error::Access));
            }
            let mut detail = match selector {
                UsbSelector::Ids { vid, pid } => format!("no USB device {vid:04x}:{pid:04x}"),
                UsbSelector::Port { .. } => format!("no USB device at port path {selector}"),
            };
            if let Some(s) = serial {
                detail.push_str(&format!(" with serial number {s:?}"));
            }
            detail.push_str(&format!(" among the {total} USB devices present"));
            if !other_serials.is_empty() {
                detail.push_str(&format!(
                    "; devices with those ids have serial numbers {}",
                    other_serials.join(", ")
                ));
            }
            return Err(LinkError::NotFound {
                target,
                detail,
                source: None,
            });
        };
        drop(matches);
        if found > 1 && serial.is_none() {
            log::warn!(
                "{target}: {found} devices match; opening the first (bus {} address {}). Add ?serial=... to the URI to pick one",
                device.bus_number(),
                device.address()
            );
        }
        // Busy: another process holds the device; name it and its /dev/bus/usb node.
        let busy_err = |e: rusb::Error| match e {
            rusb::Error::Busy => {
                crate::error::usb_busy(&target, device.bus_number(), device.address())
            }
            other => open_err(other),
        };
        let handle = match handle {
            Some(h) => h,
            None => device.open().map_err(busy_err)?,
        };

        let config = device
            .active_config_descriptor()
            .or_else(|_| device.config_descriptor(0))
            .map_err(open_err)?;
        let interfaces = interfaces_of(&config);
        let endpoints = select_endpoints(&interfaces, &opts).map_err(|e| LinkError::NotFound {
            target: target.clone(),
            detail: format!("no suitable interface: {e}"),
            source: None,
        })?;
        let iface = endpoints.interface;
        // Class-specific descriptors of the chosen interface (e.g. the CCID descriptor 0x21),
        // then those of its endpoints, where some old readers put them.
        let mut class_descriptors = Vec::new();
        for interface in config.interfaces().filter(|i| i.number() == iface) {
            for alt in interface.descriptors().filter(|d| d.setting_number() == 0) {
                class_descriptors.extend_from_slice(alt.extra());
                for ep in alt.endpoint_descriptors() {
                    class_descriptors.extend_from_slice(ep.extra().unwrap_or_default());
                }
            }
        }

        let reattach_kernel_driver =
            Self::claim(&handle, &device, config.number(), &endpoints, &target)?;
        log::debug!(
            "{target}: claimed interface {iface} (class 0x{:02x}), bulk in {:?}, bulk out {:?}, interrupt in {:?}",
            endpoints.interface_class,
            endpoints.bulk_in,
            endpoints.bulk_out,
            endpoints.interrupt_in
        );
        let rx_len = packet_multiple(RX_BUFFER_TARGET, endpoints.max_packet_in, RX_BUFFER_MIN);
        Ok(UsbLink {
            handle: std::sync::Arc::new(handle),
            target,
            endpoints,
            rx: vec![0; rx_len],
            rx_start: 0,
            rx_end: 0,
            reattach_kernel_driver,
            class_descriptors,
        })
    }

    /// Detach a kernel driver if one holds the interface, then claim it. Returns whether the
    /// driver was detached by hand (and so must be reattached on drop).
    fn claim(
        handle: &rusb::DeviceHandle<rusb::Context>,
        device: &rusb::Device<rusb::Context>,
        config_number: u8,
        endpoints: &UsbEndpoints,
        target: &str,
    ) -> Result<bool, LinkError> {
        let iface = endpoints.interface;
        // Busy: another process has claimed the interface; name it and the device's node.
        let open_err = |e: rusb::Error| match e {
            rusb::Error::Busy => {
                crate::error::usb_busy(target, device.bus_number(), device.address())
            }
            other => classify_usb(other, target, Operation::Open, Duration::ZERO),
        };
        let active = match handle.kernel_driver_active(iface) {
            Ok(a) => a,
            Err(e) => {
                log::debug!(
                    "{target}: cannot tell whether a kernel driver holds interface {iface}: {e}"
                );
                false
            }
        };
        let driver = if active {
            let ports = device.port_numbers().unwrap_or_default();
            let name = kernel_driver_name(device.bus_number(), &ports, config_number, iface);
            describe_driver(name.as_deref(), endpoints.interface_class)
        } else {
            String::new()
        };
        let mut reattach = false;
        match handle.set_auto_detach_kernel_driver(true) {
            Ok(()) => {
                if active {
                    log::info!(
                        "{target}: {driver} holds interface {iface}; libusb detaches it while this link is open \
                         and gives the interface back when it closes"
                    );
                }
            }
            Err(e) => {
                log::debug!("{target}: automatic kernel driver detach not available: {e}");
                if active {
                    handle.detach_kernel_driver(iface).map_err(open_err)?;
                    reattach = true;
                    log::info!(
                        "{target}: detached {driver} from interface {iface}; it is reattached when this link closes"
                    );
                }
            }
        }
        if let Err(e) = handle.claim_interface(iface) {
            if reattach {
                if let Err(e2) = handle.attach_kernel_driver(iface) {
                    log::debug!(
                        "{target}: reattaching the kernel driver to interface {iface} failed: {e2}"
                    );
                }
            }
            return Err(open_err(e));
        }
        Ok(reattach)
    }

    /// The endpoints in use and the claimed interface.
    pub fn endpoints(&self) -> UsbEndpoints {
        self.endpoints
    }

    fn take_buffered(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.rx_end - self.rx_start);
        buf[..n].copy_from_slice(&self.rx[self.rx_start..self.rx_start + n]);
        self.rx_start += n;
        if self.rx_start == self.rx_end {
            self.rx_start = 0;
            self.rx_end = 0;
        }
        n
    }

    fn missing_endpoint(&self, what: &str) -> LinkError {
        LinkError::Unsupported {
            target: self.target.clone(),
            detail: format!(
                "interface {} (class 0x{:02x} {}) has no {what} endpoint",
                self.endpoints.interface,
                self.endpoints.interface_class,
                class_name(self.endpoints.interface_class)
            ),
        }
    }

    /// Read one packet from the interrupt IN endpoint (e.g. a CCID
    /// `RDR_to_PC_NotifySlotChange`), waiting until one arrives or the deadline passes.
    /// Zero-length packets are skipped. `buf` should hold
    /// [`UsbEndpoints::max_packet_interrupt`] bytes: a longer packet is an error.
    ///
    /// Errors: `Unsupported` when the interface has no interrupt IN endpoint, `Timeout`,
    /// `Disconnected`, `Io` (including a packet larger than `buf`).
    pub fn read_interrupt(
        &mut self,
        buf: &mut [u8],
        deadline: Deadline,
    ) -> Result<usize, LinkError> {
        let Some(ep) = self.endpoints.interrupt_in else {
            return Err(self.missing_endpoint("interrupt IN"));
        };
        interrupt_read(&self.handle, ep, &self.target, buf, deadline)
    }

    /// The class-specific descriptors of the claimed interface (then of its endpoints), as
    /// the device reported them: e.g. the CCID class descriptor (type 0x21).
    pub fn class_descriptors(&self) -> &[u8] {
        &self.class_descriptors
    }

    /// A reader of the interrupt IN endpoint that can run on its own thread (card presence
    /// notifications) while this link does bulk transfers. `None` when the interface has no
    /// interrupt endpoint.
    pub fn interrupt_reader(&self) -> Option<UsbInterruptReader> {
        self.endpoints.interrupt_in.map(|ep| UsbInterruptReader {
            handle: std::sync::Arc::clone(&self.handle),
            endpoint: ep,
            target: self.target.clone(),
        })
    }

    /// A control transfer to the device (host to device): `request_type` is
    /// `bmRequestType` (bit 7 clear), e.g. `0x21` for a class request to an interface.
    /// Returns the number of bytes of `data` sent.
    ///
    /// Errors: `InvalidSetting` (an IN request type, or more than 65535 bytes), `Timeout`,
    /// `Disconnected` (also when the device stalls the request: it does not support it),
    /// `Io`.
    pub fn control_out(
        &mut self,
        request_type: u8,
        request: u8,
        value: u16,
        index: u16,
        data: &[u8],
        deadline: Deadline,
    ) -> Result<usize, LinkError> {
        self.check_control(request_type, false, data.len())?;
        self.handle
            .write_control(
                request_type,
                request,
                value,
                index,
                data,
                usb_timeout(deadline.remaining()),
            )
            .map_err(|e| classify_usb(e, &self.target, Operation::Write, deadline.waited()))
    }

    /// A control transfer from the device (device to host): `request_type` is
    /// `bmRequestType` (bit 7 set), e.g. `0xA1` for a class request to an interface.
    /// Returns the number of bytes read into `buf`.
    ///
    /// Errors: as [`control_out`](Self::control_out), with an OUT request type being the
    /// `InvalidSetting`.
    pub fn control_in(
        &mut self,
        request_type: u8,
        request: u8,
        value: u16,
        index: u16,
        buf: &mut [u8],
        deadline: Deadline,
    ) -> Result<usize, LinkError> {
        self.check_control(request_type, true, buf.len())?;
        self.handle
            .read_control(
                request_type,
                request,
                value,
                index,
                buf,
                usb_timeout(deadline.remaining()),
            )
            .map_err(|e| classify_usb(e, &self.target, Operation::Read, deadline.waited()))
    }

    fn check_control(&self, request_type: u8, input: bool, len: usize) -> Result<(), LinkError> {
        let is_in = request_type & 0x80 != 0;
        if is_in != input {
            return Err(LinkError::InvalidSetting {
                target: self.target.clone(),
                detail: format!(
                    "bmRequestType 0x{request_type:02x} is a {} request; use control_{}",
                    if is_in {
                        "device-to-host"
                    } else {
                        "host-to-device"
                    },
                    if is_in { "in" } else { "out" }
                ),
            });
        }
        if len > usize::from(u16::MAX) {
            return Err(LinkError::InvalidSetting {
                target: self.target.clone(),
                detail: format!("control transfer of {len} bytes: at most 65535"),
            });
        }
        Ok(())
    }
}

impl Link for UsbLink {
    fn target(&self) -> &str {
        &self.target
    }

    /// Bulk OUT transfers; each is given the deadline's remaining time (at least 1 ms).
    fn write_all(&mut self, data: &[u8], deadline: Deadline) -> Result<(), LinkError> {
        let Some(ep) = self.endpoints.bulk_out else {
            return Err(self.missing_endpoint("bulk OUT"));
        };
        let handle = &self.handle;
        let target = self.target.as_str();
        write_all_with(target, data, deadline, |chunk, remaining| {
            // libusb takes the length as a C int; keep each transfer well inside it.
            let chunk = &chunk[..chunk.len().min(MAX_BULK_WRITE)];
            let mut timeout = usb_timeout(remaining);
            loop {
                match handle.write_bulk(ep, chunk, timeout) {
                    Err(rusb::Error::Interrupted) if !deadline.passed() => {
                        timeout = usb_timeout(deadline.remaining());
                    }
                    other => {
                        return other.map_err(|e| {
                            classify_usb(e, target, Operation::Write, deadline.waited())
                        });
                    }
                }
            }
        })
    }

    /// Serves buffered bytes first; otherwise one bulk IN transfer into the internal buffer
    /// (a multiple of the packet size), keeping what does not fit in `buf` for the next call.
    /// Zero-length packets are not end of stream: it keeps waiting until the deadline.
    fn read_available(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.rx_start < self.rx_end {
            return Ok(self.take_buffered(buf));
        }
        let Some(ep) = self.endpoints.bulk_in else {
            return Err(self.missing_endpoint("bulk IN"));
        };
        loop {
            match self
                .handle
                .read_bulk(ep, &mut self.rx, usb_timeout(deadline.remaining()))
            {
                Ok(0) if deadline.passed() => {
                    return Err(LinkError::timeout(
                        &self.target,
                        Operation::Read,
                        deadline.waited(),
                        0,
                    ));
                }
                Ok(0) => {}
                Ok(n) => {
                    self.rx_start = 0;
                    self.rx_end = n.min(self.rx.len());
                    return Ok(self.take_buffered(buf));
                }
                Err(rusb::Error::Interrupted) if !deadline.passed() => {}
                Err(e) => {
                    return Err(classify_usb(
                        e,
                        &self.target,
                        Operation::Read,
                        deadline.waited(),
                    ));
                }
            }
        }
    }

    /// A no-op: bulk writes return once the transfer completed.
    fn flush(&mut self, _deadline: Deadline) -> Result<(), LinkError> {
        Ok(())
    }

    /// Drops the internal buffer, then reads with a 1 ms timeout until one times out (at
    /// most 64 reads).
    fn discard_input(&mut self) -> Result<usize, LinkError> {
        let mut dropped = self.rx_end - self.rx_start;
        self.rx_start = 0;
        self.rx_end = 0;
        let Some(ep) = self.endpoints.bulk_in else {
            return Ok(dropped);
        };
        for _ in 0..DISCARD_MAX_READS {
            match self.handle.read_bulk(ep, &mut self.rx, MIN_USB_TIMEOUT) {
                Ok(n) => dropped += n,
                Err(rusb::Error::Timeout) => break,
                Err(rusb::Error::Interrupted) => {}
                Err(e) => {
                    return Err(classify_usb(
                        e,
                        &self.target,
                        Operation::Read,
                        Duration::ZERO,
                    ));
                }
            }
        }
        Ok(dropped)
    }

    fn pacing(&self) -> Pacing {
        Pacing {
            max_chunk: packet_multiple(WRITE_CHUNK_TARGET, self.endpoints.max_packet_out, 0),
            bytes_per_second: None,
        }
    }
}

/// Reads one interrupt transfer, retrying zero-length ones and interruptions until the deadline.
fn interrupt_read(
    handle: &rusb::DeviceHandle<rusb::Context>,
    ep: u8,
    target: &str,
    buf: &mut [u8],
    deadline: Deadline,
) -> Result<usize, LinkError> {
    if buf.is_empty() {
        return Ok(0);
    }
    loop {
        match handle.read_interrupt(ep, buf, usb_timeout(deadline.remaining())) {
            Ok(0) if deadline.passed() => {
                return Err(LinkError::timeout(
                    target,
                    Operation::Read,
                    deadline.waited(),
                    0,
                ));
            }
            Ok(0) => {}
            Ok(n) => return Ok(n),
            Err(rusb::Error::Interrupted) if !deadline.passed() => {}
            Err(e) => return Err(classify_usb(e, target, Operation::Read, deadline.waited())),
        }
    }
}

/// The interrupt IN endpoint of a [`UsbLink`], readable from another thread.
pub struct UsbInterruptReader {
    handle: std::sync::Arc<rusb::DeviceHandle<rusb::Context>>,
    endpoint: u8,
    target: String,
}

impl fmt::Debug for UsbInterruptReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsbInterruptReader")
            .field("target", &self.target)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl UsbInterruptReader {
    /// Read one interrupt transfer (e.g. a CCID NotifySlotChange) into `buf`.
    ///
    /// Errors: `Timeout` when nothing came by the deadline, `Disconnected` when the device
    /// went away, `Io`/`Usb` otherwise.
    pub fn read(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError> {
        interrupt_read(&self.handle, self.endpoint, &self.target, buf, deadline)
    }
}

impl Drop for UsbLink {
    fn drop(&mut self) {
        let iface = self.endpoints.interface;
        if let Err(e) = self.handle.release_interface(iface) {
            log::debug!("{}: releasing interface {iface} failed: {e}", self.target);
        }
        if self.reattach_kernel_driver {
            match self.handle.attach_kernel_driver(iface) {
                Ok(()) => log::debug!(
                    "{}: kernel driver reattached to interface {iface}",
                    self.target
                ),
                Err(e) => log::debug!(
                    "{}: reattaching the kernel driver to interface {iface} failed: {e}",
                    self.target
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
        }
    }

    fn hid(number: u8) -> InterfaceInfo {
        InterfaceInfo {
            number,
            class: CLASS_HID,
            endpoints: vec![ep(0x83, TransferKind::Interrupt, 8)],
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
            FaultKind::NotFound
                | FaultKind::Io
                | FaultKind::Disconnected
                | FaultKind::PermissionDenied
        ));
    }

    #[test]
    fn open_uri_refuses_other_schemes() {
        let uri: DeviceUri = "tcp:127.0.0.1:9100".parse().unwrap();
        let err = UsbLink::open_uri(&uri, UsbOpenOptions::default()).unwrap_err();
        assert_eq!(err.kind(), FaultKind::InvalidInput);
    }
}
