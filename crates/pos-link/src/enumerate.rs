//! Device discovery, separate from opening (as in probe-rs): what is plugged in, what it
//! probably is, and whether this user may open it.
//!
//! - [`serial_ports`] reads `/sys/class/tty` (no libudev): device node, kernel driver, the
//!   USB ids of a USB-serial adapter, a label for known POS hardware, access.
//! - [`usb_devices`] asks libusb for the devices on the bus with their interface classes,
//!   the [`DeviceClassKind`]s those suggest, labels and a `usb:` URI that opens them.
//! - [`lookup`] labels a vid:pid from the vendor table shipped in this crate
//!   (`src/vendors.tsv`).
//!
//! Everything here is `serde::Serialize` for the command-line tool; vendor and product ids
//! serialize as 4-digit lower-case hex strings.
//!
//! ```no_run
//! for port in pos_link::enumerate::serial_ports() {
//!     println!("{} {:?} {:?}", port.path, port.label, port.access);
//! }
//! match pos_link::enumerate::usb_devices() {
//!     Ok(devices) => devices.iter().for_each(|d| println!("{} {:?}", d.uri, d.kinds)),
//!     Err(e) => eprintln!("warning: cannot list USB devices: {e}"),
//! }
//! ```

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::error::{LinkError, Operation, classify_usb, permission_hint};
use crate::uri::{Address, DeviceUri, UsbSelector};
use crate::usb::{
    CLASS_CCID, CLASS_CDC, CLASS_CDC_DATA, CLASS_HID, CLASS_HUB, CLASS_PRINTER,
    CLASS_VENDOR_SPECIFIC,
};

/// The vendor table: `vid TAB pid TAB kind TAB label`, `#` comments.
const VENDOR_TABLE: &str = include_str!("vendors.tsv");

/// The target named in errors from [`usb_devices`].
const USB_ENUM_TARGET: &str = "/dev/bus/usb";

fn hex16<S: Serializer>(v: &u16, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:04x}"))
}

// ---------------------------------------------------------------------------------------
// Vendor table

/// What kind of POS hardware a vendor table row describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VendorKind {
    /// Receipt printer.
    Printer,
    /// Smart-card (CCID) reader.
    ChipReader,
    /// Magnetic-stripe reader.
    Magstripe,
    /// USB-serial adapter (a serial device sits behind it).
    SerialAdapter,
    /// Other POS hardware (cash drawer interface, customer display, ...).
    PosMisc,
}

impl VendorKind {
    /// The name used in the vendor table and in JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            VendorKind::Printer => "printer",
            VendorKind::ChipReader => "chip_reader",
            VendorKind::Magstripe => "magstripe",
            VendorKind::SerialAdapter => "serial_adapter",
            VendorKind::PosMisc => "pos_misc",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "printer" => VendorKind::Printer,
            "chip_reader" => VendorKind::ChipReader,
            "magstripe" => VendorKind::Magstripe,
            "serial_adapter" => VendorKind::SerialAdapter,
            "pos_misc" => VendorKind::PosMisc,
            _ => return None,
        })
    }
}

impl std::fmt::Display for VendorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A label for known hardware, from the vendor table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Label {
    /// What kind of hardware it is.
    pub kind: VendorKind,
    /// A name for people, e.g. `FTDI FT232R USB-serial`.
    pub label: &'static str,
    /// True when the row names this product; false for a vendor-wide row (the vendor is
    /// known, the product is not, so `kind` is a guess).
    pub exact: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct VendorRow {
    vid: u16,
    /// `None`: the vendor-wide row (`*`).
    pid: Option<u16>,
    kind: VendorKind,
    label: &'static str,
}

fn parse_hex4(s: &str) -> Option<u16> {
    if s.len() == 4
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        u16::from_str_radix(s, 16).ok()
    } else {
        None
    }
}

/// Parse the vendor table. Returns the good rows and, for each bad line, `line N: problem`.
fn parse_vendor_table(text: &'static str) -> (Vec<VendorRow>, Vec<String>) {
    let mut rows: Vec<VendorRow> = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&'static str> = line.split('\t').collect();
        let [vid, pid, kind, label] = cols.as_slice() else {
            problems.push(format!(
                "line {n}: expected 4 TAB-separated columns (vid, pid, kind, label), found {}",
                cols.len()
            ));
            continue;
        };
        let Some(vid) = parse_hex4(vid) else {
            problems.push(format!(
                "line {n}: vendor id {vid:?} is not 4 lower-case hex digits"
            ));
            continue;
        };
        let pid = if *pid == "*" {
            None
        } else {
            match parse_hex4(pid) {
                Some(p) => Some(p),
                None => {
                    problems.push(format!(
                        "line {n}: product id {pid:?} is not 4 lower-case hex digits or '*'"
                    ));
                    continue;
                }
            }
        };
        let Some(kind) = VendorKind::parse(kind) else {
            problems.push(format!(
                "line {n}: kind {kind:?} is not one of printer, chip_reader, magstripe, serial_adapter, pos_misc"
            ));
            continue;
        };
        let label = label.trim();
        if label.is_empty() {
            problems.push(format!("line {n}: empty label"));
            continue;
        }
        if rows.iter().any(|r| r.vid == vid && r.pid == pid) {
            problems.push(format!(
                "line {n}: a row for {vid:04x}:{} already exists",
                pid.map_or("*".to_string(), |p| format!("{p:04x}"))
            ));
            continue;
        }
        rows.push(VendorRow {
            vid,
            pid,
            kind,
            label,
        });
    }
    (rows, problems)
}

fn vendor_table() -> &'static [VendorRow] {
    static TABLE: OnceLock<Vec<VendorRow>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let (rows, problems) = parse_vendor_table(VENDOR_TABLE);
        for p in problems {
            log::warn!("vendors.tsv: {p}; row skipped");
        }
        rows
    })
}

/// The label for `vid:pid` from the vendor table: the row for that product if there is one,
/// else the vendor-wide row (with `exact: false`), else `None`.
pub fn lookup(vid: u16, pid: u16) -> Option<Label> {
    let table = vendor_table();
    let exact = table.iter().find(|r| r.vid == vid && r.pid == Some(pid));
    let row = exact.or_else(|| table.iter().find(|r| r.vid == vid && r.pid.is_none()))?;
    Some(Label {
        kind: row.kind,
        label: row.label,
        exact: exact.is_some(),
    })
}

// ---------------------------------------------------------------------------------------
// Access

/// Whether this process may open a device node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Access {
    /// Read and write are allowed.
    ReadWrite,
    /// The OS refuses read or write access.
    PermissionDenied {
        /// What to do about it (the udev rule and the group).
        hint: String,
    },
    /// The device node does not exist.
    Missing,
    /// Could not tell.
    Unknown,
}

/// Check read and write access to `path` with `access(2)` (the real user id, as a person
/// running the tool would be).
pub fn check_access(path: &Path) -> Access {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Access::Missing,
        _ => {}
    }
    let mode = rustix::fs::Access::READ_OK | rustix::fs::Access::WRITE_OK;
    let err = match rustix::fs::access(path, mode) {
        Ok(()) => return Access::ReadWrite,
        // A path with a NUL byte in it is EINVAL: unknown, as any other error.
        Err(errno) => std::io::Error::from(errno),
    };
    match err.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => Access::PermissionDenied {
            hint: permission_hint(&path.to_string_lossy()),
        },
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => Access::Missing,
        _ => {
            log::debug!("access({}): {err}", path.display());
            Access::Unknown
        }
    }
}

// ---------------------------------------------------------------------------------------
// Serial ports

/// USB identity of a device (for a serial port: of the USB-serial adapter behind it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsbIds {
    /// Vendor id (serialized as 4 hex digits).
    #[serde(serialize_with = "hex16")]
    pub vid: u16,
    /// Product id (serialized as 4 hex digits).
    #[serde(serialize_with = "hex16")]
    pub pid: u16,
    /// The serial number string, if the device has one.
    pub serial: Option<String>,
    /// The manufacturer string, if the device has one.
    pub manufacturer: Option<String>,
    /// The product string, if the device has one.
    pub product: Option<String>,
}

/// A serial port found in sysfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SerialPortInfo {
    /// The device node, e.g. `/dev/ttyUSB0`.
    pub path: String,
    /// The kernel's name, e.g. `ttyUSB0`.
    pub name: String,
    /// The URI that opens it, e.g. `serial:/dev/ttyUSB0`.
    pub uri: String,
    /// The kernel driver, e.g. `ftdi_sio`, `cdc_acm`, `pl2303`, `serial` (a built-in UART).
    pub driver: Option<String>,
    /// The USB device behind the port, for USB-serial adapters and CDC ACM devices.
    pub usb: Option<UsbIds>,
    /// A label from the vendor table for that USB device.
    pub label: Option<Label>,
    /// Whether this process may open the device node.
    pub access: Access,
}

/// Serial ports on this machine, from `/sys` with device nodes in `/dev`.
/// See [`serial_ports_in`].
pub fn serial_ports() -> Vec<SerialPortInfo> {
    serial_ports_in(Path::new("/sys"), Path::new("/dev"))
}

/// Serial ports from the sysfs tree at `sysfs_root`, with device nodes in `dev_root`.
///
/// Every entry of `{sysfs_root}/class/tty` with a `device` link is a port, except `ttyS*`
/// entries whose `type` is 0 (no UART there, as on most PCs) or unreadable. The driver is
/// the name of the device's `driver` link (above the serial core's own `port`/`ctrl`
/// devices on newer kernels); the USB ids come from the first ancestor of the device with
/// `idVendor` and `idProduct` files. Unreadable entries are skipped, never an error.
/// Sorted by name, numbers in names compared as numbers (`ttyS2` before `ttyS10`).
pub fn serial_ports_in(sysfs_root: &Path, dev_root: &Path) -> Vec<SerialPortInfo> {
    let class_dir = sysfs_root.join("class/tty");
    let entries = match fs::read_dir(&class_dir) {
        Ok(e) => e,
        Err(e) => {
            log::debug!("cannot list {}: {e}", class_dir.display());
            return Vec::new();
        }
    };
    let root = fs::canonicalize(sysfs_root).unwrap_or_else(|_| sysfs_root.to_path_buf());
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let tty_dir = entry.path();
        // Virtual terminals, pseudo-terminals and the like have no `device` link.
        let Ok(device_dir) = fs::canonicalize(tty_dir.join("device")) else {
            continue;
        };
        if name.starts_with("ttyS") && !uart_present(&tty_dir) {
            continue;
        }
        let usb = usb_ids_above(&device_dir, &root);
        let label = usb.as_ref().and_then(|u| lookup(u.vid, u.pid));
        let path = dev_root.join(&name);
        let path_s = path.to_string_lossy().into_owned();
        let uri = DeviceUri::new(
            Address::Serial {
                path: path_s.clone(),
            },
            Vec::new(),
        )
        .map(|u| u.to_string())
        .unwrap_or_else(|_| format!("serial:{path_s}"));
        out.push(SerialPortInfo {
            access: check_access(&path),
            path: path_s,
            name,
            uri,
            driver: driver_of(&device_dir, &root),
            usb,
            label,
        });
    }
    out.sort_by(|a, b| natural_key(&a.name).cmp(&natural_key(&b.name)));
    out
}

/// `ttyS10` -> (`ttyS`, 10, `ttyS10`), for sorting.
fn natural_key(name: &str) -> (&str, u64, &str) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (prefix, number) = name.split_at(name.len() - digits);
    (prefix, number.parse().unwrap_or(0), name)
}

/// A `ttyS*` port is real only when its `type` (the UART type) is non-zero.
fn uart_present(tty_dir: &Path) -> bool {
    fs::read_to_string(tty_dir.join("type"))
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        .is_some_and(|t| t != 0)
}

fn read_attr(dir: &Path, name: &str) -> Option<String> {
    let text = fs::read(dir.join(name)).ok()?;
    let s = String::from_utf8_lossy(&text).trim().to_string();
    if s.is_empty() { None } else { Some(s) }
}

fn read_hex_attr(dir: &Path, name: &str) -> Option<u16> {
    let s = read_attr(dir, name)?;
    u16::from_str_radix(&s, 16).ok()
}

/// The kernel driver of a tty's device. Newer kernels put the serial core's own `port` and
/// `ctrl` devices (bus `serial-base`) between the tty and the UART's device; look past them.
fn driver_of(device_dir: &Path, root: &Path) -> Option<String> {
    let mut dir = device_dir;
    loop {
        if !dir.starts_with(root) {
            return None;
        }
        let link = fs::read_link(dir.join("driver")).ok()?;
        if link.components().any(|c| c.as_os_str() == "serial-base") {
            dir = dir.parent()?;
            continue;
        }
        return Some(link.file_name()?.to_string_lossy().into_owned());
    }
}

/// The USB ids of the first ancestor of `device_dir` (itself included) that is a USB
/// device, not above `root`.
fn usb_ids_above(device_dir: &Path, root: &Path) -> Option<UsbIds> {
    for dir in device_dir.ancestors() {
        if !dir.starts_with(root) || dir == root {
            return None;
        }
        if dir.join("idVendor").is_file() && dir.join("idProduct").is_file() {
            return Some(UsbIds {
                vid: read_hex_attr(dir, "idVendor")?,
                pid: read_hex_attr(dir, "idProduct")?,
                serial: read_attr(dir, "serial"),
                manufacturer: read_attr(dir, "manufacturer"),
                product: read_attr(dir, "product"),
            });
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// USB devices

/// What a USB device is, from its interface classes and the vendor table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceClassKind {
    /// A smart-card reader: a CCID interface (class 0x0B), or the vendor table says so.
    ChipReader,
    /// A printer: a printer-class interface (0x07), or the vendor table says so.
    Printer,
    /// A magnetic-stripe reader (from the vendor table: they present as HID or vendor class).
    Magstripe,
    /// A HID interface (0x03): keyboard-wedge or HID card readers, keyboards, scanners.
    Hid,
    /// A serial adapter: CDC (0x02, 0x0A) interfaces, or the vendor table says so.
    SerialAdapter,
    /// A vendor-specific interface (0xFF).
    VendorSpecific,
}

impl DeviceClassKind {
    /// The kind an interface class suggests, if any.
    pub fn from_interface_class(class: u8) -> Option<Self> {
        match class {
            CLASS_CCID => Some(DeviceClassKind::ChipReader),
            CLASS_PRINTER => Some(DeviceClassKind::Printer),
            CLASS_HID => Some(DeviceClassKind::Hid),
            CLASS_CDC | CLASS_CDC_DATA => Some(DeviceClassKind::SerialAdapter),
            CLASS_VENDOR_SPECIFIC => Some(DeviceClassKind::VendorSpecific),
            _ => None,
        }
    }

    fn from_vendor_kind(kind: VendorKind) -> Option<Self> {
        match kind {
            VendorKind::Printer => Some(DeviceClassKind::Printer),
            VendorKind::ChipReader => Some(DeviceClassKind::ChipReader),
            VendorKind::Magstripe => Some(DeviceClassKind::Magstripe),
            VendorKind::SerialAdapter => Some(DeviceClassKind::SerialAdapter),
            VendorKind::PosMisc => None,
        }
    }
}

/// The kinds a device's interface classes and label suggest, without duplicates: the
/// kinds of the classes in order, then the label's kind. A vendor-wide label (a guess) adds
/// its kind only when the classes name no printer, reader or serial function themselves.
pub fn kinds_for(interface_classes: &[u8], label: Option<&Label>) -> Vec<DeviceClassKind> {
    let mut kinds: Vec<DeviceClassKind> = Vec::new();
    for k in interface_classes
        .iter()
        .filter_map(|&c| DeviceClassKind::from_interface_class(c))
    {
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    if let Some(l) = label {
        let classes_say_enough = kinds.iter().any(|k| {
            matches!(
                k,
                DeviceClassKind::ChipReader
                    | DeviceClassKind::Printer
                    | DeviceClassKind::SerialAdapter
            )
        });
        if let Some(k) = DeviceClassKind::from_vendor_kind(l.kind) {
            if (l.exact || !classes_say_enough) && !kinds.contains(&k) {
                kinds.push(k);
            }
        }
    }
    kinds
}

/// Whether an interface is a vendor-specific (0xFF) one carrying a CCID class descriptor
/// (54 bytes, type 0x21, or 0xFF as pre-1.0 readers give it) in `extra`, its class-specific
/// bytes: a chip reader, as libccid also counts it (`src/ccid_usb.c`,
/// `get_ccid_usb_interface`, <https://github.com/LudovicRousseau/CCID>).
pub fn is_vendor_class_ccid(class: u8, extra: &[u8]) -> bool {
    if class != CLASS_VENDOR_SPECIFIC {
        return false;
    }
    let mut rest = extra;
    while let [len, ty, ..] = rest {
        let len = usize::from(*len);
        if len == 54 && (*ty == 0x21 || *ty == 0xFF) && rest.len() >= len {
            return true;
        }
        if len < 2 {
            return false;
        }
        let Some(next) = rest.get(len..) else {
            return false;
        };
        rest = next;
    }
    false
}

/// A USB device found by [`usb_devices`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsbDeviceInfo {
    /// Bus number.
    pub bus: u8,
    /// Device address on the bus (changes on every re-plug).
    pub address: u8,
    /// Port numbers from the root hub down (stable while the cabling is).
    pub ports: Vec<u8>,
    /// Vendor id (serialized as 4 hex digits).
    #[serde(serialize_with = "hex16")]
    pub vid: u16,
    /// Product id (serialized as 4 hex digits).
    #[serde(serialize_with = "hex16")]
    pub pid: u16,
    /// Manufacturer string; `None` when absent or the device cannot be opened (see `access`).
    pub manufacturer: Option<String>,
    /// Product string; `None` when absent or the device cannot be opened.
    pub product: Option<String>,
    /// Serial number string; `None` when absent or the device cannot be opened.
    pub serial: Option<String>,
    /// The classes of the interfaces of the active (or first) configuration, without
    /// duplicates, in interface order.
    pub interface_classes: Vec<u8>,
    /// What the device is, from the classes and the vendor table ([`kinds_for`]).
    pub kinds: Vec<DeviceClassKind>,
    /// A label from the vendor table.
    pub label: Option<Label>,
    /// Whether this process may open the device (`/dev/bus/usb/BBB/DDD`).
    pub access: Access,
    /// A URI that opens this device: `usb:VID:PID`, with `?serial=` when the serial number
    /// is known; when another device present has the same ids and the serial number does
    /// not tell them apart, the port path (`usb:BUS-PORT.PORT`) instead.
    pub uri: String,
}

fn ids_uri(vid: u16, pid: u16, serial: Option<&str>) -> String {
    let options = serial
        .map(|s| vec![("serial".to_string(), s.to_string())])
        .unwrap_or_default();
    DeviceUri::new(Address::Usb(UsbSelector::Ids { vid, pid }), options)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| format!("usb:{vid:04x}:{pid:04x}"))
}

/// The USB devices on this machine (hubs left out), with interface classes, kinds, labels
/// and access. Strings are read only from devices this process can open; for the others
/// `access` says why not.
///
/// Errors: `NotFound` when libusb cannot start because there is no `/dev/bus/usb` (a
/// container or machine without USB; the detail says so); other failures to start libusb or
/// list devices classified by [`classify_usb`] with [`Operation::Enumerate`] (usually kind
/// `Io`). Callers listing devices for people should print it as a warning. Never panics.
pub fn usb_devices() -> Result<Vec<UsbDeviceInfo>, LinkError> {
    use rusb::UsbContext;
    let enum_err =
        |e: rusb::Error| classify_usb(e, USB_ENUM_TARGET, Operation::Enumerate, Duration::ZERO);
    let context = crate::usb::new_context(USB_ENUM_TARGET, Operation::Enumerate)?;
    let list = context.devices().map_err(enum_err)?;
    let mut out = Vec::new();
    for device in list.iter() {
        let (bus, address) = (device.bus_number(), device.address());
        let desc = match device.device_descriptor() {
            Ok(d) => d,
            Err(e) => {
                log::debug!("USB bus {bus} address {address}: no device descriptor: {e}");
                continue;
            }
        };
        if desc.class_code() == CLASS_HUB {
            continue;
        }
        let (vid, pid) = (desc.vendor_id(), desc.product_id());
        let ports = device.port_numbers().unwrap_or_default();
        let mut vendor_ccid = false;
        let interface_classes = match device
            .active_config_descriptor()
            .or_else(|_| device.config_descriptor(0))
        {
            Ok(config) => {
                let mut classes: Vec<u8> = Vec::new();
                for i in crate::usb::interfaces_of(&config) {
                    vendor_ccid |= is_vendor_class_ccid(i.class, &i.extra);
                    if !classes.contains(&i.class) {
                        classes.push(i.class);
                    }
                }
                classes
            }
            Err(e) => {
                log::debug!(
                    "USB {vid:04x}:{pid:04x} at bus {bus} address {address}: no config descriptor: {e}"
                );
                Vec::new()
            }
        };
        let node = format!("/dev/bus/usb/{bus:03}/{address:03}");
        let (access, manufacturer, product, serial) = match device.open() {
            Ok(handle) => (
                Access::ReadWrite,
                crate::usb::read_string(&handle, desc.manufacturer_string_index()),
                crate::usb::read_string(&handle, desc.product_string_index()),
                crate::usb::read_string(&handle, desc.serial_number_string_index()),
            ),
            Err(rusb::Error::Access) => (
                Access::PermissionDenied {
                    hint: permission_hint(&node),
                },
                None,
                None,
                None,
            ),
            Err(e) => {
                log::debug!("USB {vid:04x}:{pid:04x} at {node}: cannot open: {e}");
                (Access::Unknown, None, None, None)
            }
        };
        let label = lookup(vid, pid);
        let mut kinds = kinds_for(&interface_classes, label.as_ref());
        if vendor_ccid && !kinds.contains(&DeviceClassKind::ChipReader) {
            kinds.insert(0, DeviceClassKind::ChipReader);
        }
        out.push(UsbDeviceInfo {
            bus,
            address,
            ports,
            vid,
            pid,
            manufacturer,
            product,
            kinds,
            interface_classes,
            label,
            access,
            uri: String::new(),
            serial,
        });
    }
    assign_uris(&mut out);
    out.sort_by(|a, b| (a.bus, &a.ports, a.address).cmp(&(b.bus, &b.ports, b.address)));
    Ok(out)
}

/// Give each device its URI: by ids (and serial) when that names it alone, else by port.
fn assign_uris(devices: &mut [UsbDeviceInfo]) {
    let mut count: HashMap<(u16, u16, Option<String>), usize> = HashMap::new();
    for d in devices.iter() {
        *count.entry((d.vid, d.pid, d.serial.clone())).or_default() += 1;
    }
    for d in devices.iter_mut() {
        let ambiguous = count
            .get(&(d.vid, d.pid, d.serial.clone()))
            .is_some_and(|&n| n > 1);
        let by_port = ambiguous && !d.ports.is_empty();
        d.uri = if by_port {
            let selector = UsbSelector::Port {
                bus: d.bus,
                ports: d.ports.clone(),
            };
            DeviceUri::new(Address::Usb(selector.clone()), Vec::new())
                .map(|u| u.to_string())
                .unwrap_or_else(|_| format!("usb:{selector}"))
        } else {
            ids_uri(d.vid, d.pid, d.serial.as_deref())
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vendor_class_interface_with_a_ccid_descriptor_is_a_chip_reader() {
        let mut descriptor = vec![0u8; 54];
        descriptor[0] = 54;
        descriptor[1] = 0x21;
        // After an unrelated 4-byte class descriptor, as it may come.
        let extra: Vec<u8> = [vec![4, 0x24, 0, 0], descriptor.clone()].concat();
        assert!(is_vendor_class_ccid(0xFF, &extra));
        // Only for class 0xFF; cut short or of another length it is not one; junk never
        // loops or panics.
        assert!(!is_vendor_class_ccid(0x0B, &extra));
        assert!(!is_vendor_class_ccid(0xFF, &descriptor[..40]));
        assert!(!is_vendor_class_ccid(0xFF, &[9, 0x21, 0, 0, 0, 0, 0, 0, 0]));
        assert!(!is_vendor_class_ccid(0xFF, &[0, 0, 54, 0x21]));
        assert!(!is_vendor_class_ccid(0xFF, &[]));
    }

    #[test]
    fn every_vendor_table_row_parses() {
        let (rows, problems) = parse_vendor_table(VENDOR_TABLE);
        assert!(problems.is_empty(), "vendors.tsv: {problems:#?}");
        let data_lines = VENDOR_TABLE
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count();
        assert_eq!(rows.len(), data_lines);
        assert!(rows.len() >= 20);
        // Every exact row's vendor has a vendor-wide row or is a known adapter maker.
        for r in &rows {
            assert!(!r.label.is_empty());
            assert_eq!(r.label, r.label.trim());
        }
    }

    #[test]
    fn malformed_rows_are_reported_not_fatal() {
        let text: &'static str = "# comment\n\
             04b8\t*\tprinter\tSeiko Epson\n\
             04B8\t0202\tprinter\tupper-case vid\n\
             04b8\t02\tprinter\tshort pid\n\
             04b8\t0203\ttoaster\tunknown kind\n\
             04b8\t0204\tprinter\n\
             04b8\t0205\tprinter\t \n\
             04b8\t*\tprinter\tduplicate\n\
             \n\
             0801\t0001\tmagstripe\tgood\n";
        let (rows, problems) = parse_vendor_table(text);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(problems.len(), 6, "{problems:#?}");
        assert!(problems[0].starts_with("line 3:"), "{}", problems[0]);
        assert!(problems.iter().any(|p| p.contains("toaster")));
        assert!(problems.iter().any(|p| p.contains("already exists")));
    }

    #[test]
    fn lookup_prefers_the_exact_row() {
        let exact = lookup(0x04b8, 0x0202).unwrap();
        assert!(exact.exact);
        assert_eq!(exact.kind, VendorKind::Printer);
        assert!(exact.label.contains("TM"), "{exact:?}");

        let vendor = lookup(0x04b8, 0x9999).unwrap();
        assert!(!vendor.exact);
        assert_eq!(vendor.label, "Seiko Epson");

        let ftdi = lookup(0x0403, 0x6001).unwrap();
        assert_eq!(ftdi.kind, VendorKind::SerialAdapter);
        assert!(ftdi.label.starts_with("FTDI"));
        // FTDI has no vendor-wide row: FTDI chips are in everything.
        assert_eq!(lookup(0x0403, 0x6015), None);

        assert_eq!(lookup(0x08e6, 0x4433).unwrap().kind, VendorKind::ChipReader);
        assert_eq!(lookup(0x0801, 0x0002).unwrap().kind, VendorKind::Magstripe);
        assert_eq!(lookup(0xffff, 0xfffe), None);
    }

    #[test]
    fn kinds_from_classes_and_labels() {
        assert_eq!(kinds_for(&[0x0B], None), vec![DeviceClassKind::ChipReader]);
        assert_eq!(
            kinds_for(&[0x02, 0x0A], None),
            vec![DeviceClassKind::SerialAdapter]
        );
        assert_eq!(
            kinds_for(&[0x03, 0x07, 0xFF, 0x08], None),
            vec![
                DeviceClassKind::Hid,
                DeviceClassKind::Printer,
                DeviceClassKind::VendorSpecific
            ]
        );
        // A MagTek HID reader: HID from the class, magstripe from the table.
        let magtek = lookup(0x0801, 0x0002);
        assert_eq!(
            kinds_for(&[0x03], magtek.as_ref()),
            vec![DeviceClassKind::Hid, DeviceClassKind::Magstripe]
        );
        // A vendor-specific Star printer: vendor-wide row fills in the kind.
        let star = lookup(0x0519, 0x0003);
        assert_eq!(
            kinds_for(&[0xFF], star.as_ref()),
            vec![DeviceClassKind::VendorSpecific, DeviceClassKind::Printer]
        );
        // A vendor-wide guess does not override what the classes say.
        let gemalto_other = lookup(0x08e6, 0x1234);
        assert_eq!(
            kinds_for(&[0x07], gemalto_other.as_ref()),
            vec![DeviceClassKind::Printer]
        );
        // An FTDI adapter exposes vendor class; the exact row says serial adapter.
        let ftdi = lookup(0x0403, 0x6001);
        assert_eq!(
            kinds_for(&[0xFF], ftdi.as_ref()),
            vec![
                DeviceClassKind::VendorSpecific,
                DeviceClassKind::SerialAdapter
            ]
        );
    }

    #[test]
    fn json_shapes() {
        let ids = UsbIds {
            vid: 0x0403,
            pid: 0x6001,
            serial: Some("A1B2".into()),
            manufacturer: None,
            product: None,
        };
        let j = serde_json::to_value(&ids).unwrap();
        assert_eq!(j["vid"], "0403");
        assert_eq!(j["pid"], "6001");
        assert_eq!(
            serde_json::to_value(Access::ReadWrite).unwrap(),
            serde_json::json!({"state": "read_write"})
        );
        let denied = serde_json::to_value(Access::PermissionDenied { hint: "h".into() }).unwrap();
        assert_eq!(
            denied,
            serde_json::json!({"state": "permission_denied", "hint": "h"})
        );
        let label = serde_json::to_value(lookup(0x0403, 0x6001).unwrap()).unwrap();
        assert_eq!(label["kind"], "serial_adapter");
        assert_eq!(
            serde_json::to_value(DeviceClassKind::ChipReader).unwrap(),
            "chip_reader"
        );
    }

    fn usb_info(vid: u16, pid: u16, serial: Option<&str>, ports: Vec<u8>) -> UsbDeviceInfo {
        UsbDeviceInfo {
            bus: 1,
            address: 5,
            ports,
            vid,
            pid,
            manufacturer: None,
            product: None,
            serial: serial.map(str::to_string),
            interface_classes: vec![],
            kinds: vec![],
            label: None,
            access: Access::Unknown,
            uri: String::new(),
        }
    }

    #[test]
    fn uris_pick_one_device() {
        let mut devices = vec![
            usb_info(0x04b8, 0x0202, None, vec![1]),
            usb_info(0x04b8, 0x0202, None, vec![2, 3]),
            usb_info(0x08e6, 0x4433, Some("X&1"), vec![4]),
            usb_info(0x0403, 0x6001, None, vec![5]),
        ];
        assign_uris(&mut devices);
        assert_eq!(devices[0].uri, "usb:1-1");
        assert_eq!(devices[1].uri, "usb:1-2.3");
        assert_eq!(devices[2].uri, "usb:08e6:4433?serial=X%261");
        assert_eq!(devices[3].uri, "usb:0403:6001");
        for d in &devices {
            assert!(DeviceUri::parse(&d.uri).is_ok(), "{}", d.uri);
        }
    }

    #[test]
    fn natural_order() {
        let mut names = vec!["ttyS10", "ttyUSB0", "ttyS2", "ttyACM0", "ttyS1"];
        names.sort_by_key(|n| natural_key(n));
        assert_eq!(
            names,
            vec!["ttyACM0", "ttyS1", "ttyS2", "ttyS10", "ttyUSB0"]
        );
    }

    #[test]
    fn access_of_missing_and_present_nodes() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(check_access(&dir.path().join("nope")), Access::Missing);
        let f = dir.path().join("node");
        fs::write(&f, b"").unwrap();
        assert_eq!(check_access(&f), Access::ReadWrite);
    }
}
