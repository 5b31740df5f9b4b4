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

mod endpoints;

pub(crate) use endpoints::interfaces_of;
pub use endpoints::{
    CLASS_CCID, CLASS_CDC, CLASS_CDC_DATA, CLASS_HID, CLASS_HUB, CLASS_PRINTER,
    CLASS_VENDOR_SPECIFIC, EndpointInfo, EndpointSelectError, InterfaceInfo, TransferKind,
    UsbEndpoints, UsbOpenOptions, class_name, select_endpoints,
};

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

/// Where libusb finds device nodes on Linux.
const USBFS_DIR: &str = "/dev/bus/usb";

/// How long a device whose transfer failed with a generic I/O error is watched for having
/// gone (see `UsbLink::gone_or`).
const GONE_PROBE: Duration = Duration::from_millis(500);

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
    /// The device's ids and firmware version, from its device descriptor.
    ids: UsbIds,
}

/// A USB device's identity as its device descriptor gives it: what per-model rules (reader
/// quirks, printer models) are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UsbIds {
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct.
    pub product_id: u16,
    /// bcdDevice, the device's release (firmware) number in binary-coded decimal
    /// (`0x0523` is 5.23).
    pub bcd_device: u16,
}

impl UsbIds {
    /// From a device descriptor.
    fn of(desc: &rusb::DeviceDescriptor) -> UsbIds {
        let v = desc.device_version();
        UsbIds {
            vendor_id: desc.vendor_id(),
            product_id: desc.product_id(),
            bcd_device: bcd_from_version(v.major(), v.minor(), v.sub_minor()),
        }
    }
}

/// bcdDevice back from rusb's decoded version (rusb reads the high byte as two decimal
/// digits, `major = 10 * high nibble + low nibble`, and one nibble each for minor and
/// sub-minor): exact whenever the low nibble of the high byte is a decimal digit, which
/// includes every BCD value and the `F0.F1` style some readers report.
fn bcd_from_version(major: u8, minor: u8, sub_minor: u8) -> u16 {
    let high = u16::from(major / 10).min(15) << 4 | u16::from(major % 10);
    high << 8 | u16::from(minor & 0x0F) << 4 | u16::from(sub_minor & 0x0F)
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

/// A caller's choice of interface for [`UsbLink::open_uri_choosing`]: given the device's ids
/// and all its interfaces, the number to claim, or why none will do.
pub type InterfaceChooser<'a> = dyn Fn(&UsbIds, &[InterfaceInfo]) -> Result<u8, String> + 'a;

/// How [`UsbLink`]'s open picks the interface to claim.
enum Selection<'a> {
    /// By class and number.
    Options(UsbOpenOptions),
    /// The caller's function, from all interfaces (named) and the device's ids.
    Chooser(&'a InterfaceChooser<'a>),
}

/// Read the `iInterface` strings of `interfaces` (those that have one; a string that cannot
/// be read stays `None`).
fn name_interfaces(handle: &rusb::DeviceHandle<rusb::Context>, interfaces: &mut [InterfaceInfo]) {
    for i in interfaces.iter_mut() {
        if i.name.is_none() {
            i.name = read_string(handle, i.name_index);
        }
    }
}

/// The interfaces of the device a `usb:` URI names, with their `iInterface` names where
/// the device can be opened (without claiming anything), and the device's ids: what
/// `posctl reader list` shows for each interface.
///
/// Errors: `NotFound` (no such device, or no USB at all), `InvalidSetting` (not a `usb:`
/// URI), `Io` (libusb failed to read the configuration). A device this process may not
/// open is not an error: its interfaces come without names.
pub fn device_interfaces(uri: &DeviceUri) -> Result<(UsbIds, Vec<InterfaceInfo>), LinkError> {
    let target = uri.to_string();
    let Address::Usb(selector) = uri.address() else {
        return Err(LinkError::InvalidSetting {
            target,
            detail: "not a usb: URI".into(),
        });
    };
    let Candidate { device, handle } =
        UsbLink::find_device(selector, uri.option("serial"), &target)?;
    let read_err = |e: rusb::Error| classify_usb(e, &target, Operation::Open, Duration::ZERO);
    let ids = device
        .device_descriptor()
        .map(|d| UsbIds::of(&d))
        .map_err(read_err)?;
    let config = device
        .active_config_descriptor()
        .or_else(|_| device.config_descriptor(0))
        .map_err(read_err)?;
    let mut interfaces = interfaces_of(&config);
    match handle.map_or_else(|| device.open(), Ok) {
        Ok(h) => name_interfaces(&h, &mut interfaces),
        Err(e) => log::debug!("{target}: interface names not read: {e}"),
    }
    Ok((ids, interfaces))
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
            Address::Usb(selector) => Self::open_as(
                selector,
                uri.option("serial"),
                Selection::Options(opts),
                uri.to_string(),
            ),
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
        Self::open_as(selector, serial, Selection::Options(opts), target)
    }

    /// Open the device a `usb:` URI names and claim the interface `choose` picks from all of
    /// the device's interfaces (their `iInterface` names read, see [`InterfaceInfo::name`]),
    /// given the device's ids: for drivers whose choice depends on more than the class, such
    /// as a CCID driver preferring the contact interface of a dual reader.
    ///
    /// Errors: as [`open`](Self::open); `Unsupported` with `choose`'s message when it
    /// refuses every interface; `InvalidSetting` when the URI is not `usb:`.
    pub fn open_uri_choosing(
        uri: &DeviceUri,
        choose: &InterfaceChooser<'_>,
    ) -> Result<Self, LinkError> {
        match uri.address() {
            Address::Usb(selector) => Self::open_as(
                selector,
                uri.option("serial"),
                Selection::Chooser(choose),
                uri.to_string(),
            ),
            _ => Err(LinkError::InvalidSetting {
                target: uri.to_string(),
                detail: "not a usb: URI".into(),
            }),
        }
    }

    /// Find the device `selector` (and `serial`) names: the first by bus and port path when
    /// several match (a warning says so), with its handle if it was opened to read the serial.
    fn find_device(
        selector: &UsbSelector,
        serial: Option<&str>,
        target: &str,
    ) -> Result<Candidate, LinkError> {
        let target = target.to_string();
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
        let Some(first) = matches.next() else {
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
                first.device.bus_number(),
                first.device.address()
            );
        }
        Ok(first)
    }

    fn open_as(
        selector: &UsbSelector,
        serial: Option<&str>,
        selection: Selection<'_>,
        target: String,
    ) -> Result<Self, LinkError> {
        let Candidate { device, handle } = Self::find_device(selector, serial, &target)?;
        let open_err = |e: rusb::Error| classify_usb(e, &target, Operation::Open, Duration::ZERO);
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
        let mut interfaces = interfaces_of(&config);
        let ids = device
            .device_descriptor()
            .map(|d| UsbIds::of(&d))
            .map_err(open_err)?;
        let opts = match selection {
            Selection::Options(opts) => opts,
            Selection::Chooser(choose) => {
                name_interfaces(&handle, &mut interfaces);
                let number =
                    choose(&ids, &interfaces).map_err(|detail| LinkError::Unsupported {
                        target: target.clone(),
                        detail,
                    })?;
                UsbOpenOptions {
                    interface_class: None,
                    interface_number: Some(number),
                }
            }
        };
        let endpoints = select_endpoints(&interfaces, &opts).map_err(|e| LinkError::NotFound {
            target: target.clone(),
            detail: format!("no suitable interface: {e}"),
            source: None,
        })?;
        let iface = endpoints.interface;
        // Class-specific descriptors of the chosen interface (e.g. the CCID descriptor 0x21),
        // then those of its endpoints, where some old readers put them.
        let class_descriptors = interfaces
            .iter()
            .find(|i| i.number == iface)
            .map(|i| i.extra.clone())
            .unwrap_or_default();

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
            ids,
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

    /// The device's vendor and product ids and firmware version (bcdDevice).
    pub fn ids(&self) -> UsbIds {
        self.ids
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

impl UsbLink {
    /// `e`, or `Disconnected` when `e` is a transfer's generic I/O error and the device
    /// went. A device unplugged while a transfer is in flight fails that transfer with
    /// LIBUSB_ERROR_IO before the kernel has noticed it leave (seen in the QEMU rig: a USB
    /// printer gadget unbound mid-job); the hub thread removes it a moment later, and from
    /// then on every request is LIBUSB_ERROR_NO_DEVICE. So the device is asked for its status
    /// (GET_STATUS, a standard request every device answers) until it answers (still there:
    /// the I/O error stands) or is gone, for at most [`GONE_PROBE`].
    fn gone_or(&self, e: LinkError) -> LinkError {
        let LinkError::Usb {
            source: rusb::Error::Io,
            target,
            operation,
        } = &e
        else {
            return e;
        };
        let started = std::time::Instant::now();
        let mut status = [0u8; 2];
        while started.elapsed() < GONE_PROBE {
            match self.handle.read_control(
                rusb::request_type(
                    rusb::Direction::In,
                    rusb::RequestType::Standard,
                    rusb::Recipient::Device,
                ),
                0x00, // GET_STATUS
                0,
                0,
                &mut status,
                Duration::from_millis(100),
            ) {
                Ok(_) => return e,
                Err(rusb::Error::NoDevice | rusb::Error::NotFound) => {
                    return LinkError::Disconnected {
                        target: target.clone(),
                        operation: *operation,
                        detail: "USB: the transfer failed (I/O error) and the device went".into(),
                        source: None,
                    };
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        e
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
        .map_err(|e| self.gone_or(e))
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
                    let e = classify_usb(e, &self.target, Operation::Read, deadline.waited());
                    return Err(self.gone_or(e));
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
mod tests;
