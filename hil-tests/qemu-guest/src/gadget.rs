//! USB devices built inside the guest: Linux USB gadgets made through configfs
//! (`libcomposite`) and bound to `dummy_hcd`, a virtual device controller whose other half
//! is a host controller of the same kernel. The guest's own USB stack (usbcore, usblp,
//! usbhid, hidraw, libusb through usbfs) then sees a real USB device enumerate, with the
//! descriptors the gadget declares.
//!
//! One gadget at a time: each case builds its gadget, binds it (plugging it in), and
//! unbinds and removes it at the end ([`Gadget`]'s `Drop`), so the next case finds the
//! controller free.
//!
//! A module the kernel lacks is a SKIP naming it ([`require_modules`]), never a pass.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where configfs shows the USB gadgets (`/init` mounts configfs).
pub const GADGET_ROOT: &str = "/sys/kernel/config/usb_gadget";
/// Where the kernel lists its USB device controllers.
const UDC_CLASS: &str = "/sys/class/udc";
/// Where the kernel lists the USB devices its host controllers see.
const USB_DEVICES: &str = "/sys/bus/usb/devices";

/// Why a gadget could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum GadgetError {
    /// A configfs or sysfs file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// No USB device controller (is `dummy_hcd` loaded?).
    #[error("no USB device controller in {UDC_CLASS} (dummy_hcd not loaded?)")]
    NoController,
    /// The device did not appear (or go) on the host side in time.
    #[error("{0}")]
    Timeout(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> GadgetError + '_ {
    move |source| GadgetError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The kernel modules of `names` that are not loaded, checked in `/sys/module`.
pub fn missing_modules(names: &[&str]) -> Vec<String> {
    missing_modules_in(Path::new("/sys/module"), names)
}

fn missing_modules_in(sys_module: &Path, names: &[&str]) -> Vec<String> {
    names
        .iter()
        // /sys/module names use '_' where the file name may have '-'.
        .filter(|n| !sys_module.join(n.replace('-', "_")).exists())
        .map(|n| (*n).to_string())
        .collect()
}

/// `Ok` when every module of `names` is loaded; otherwise the SKIP text naming those that
/// are not ("the guest kernel lacks module usb_f_printer").
pub fn require_modules(names: &[&str]) -> Result<(), String> {
    skip_text(&missing_modules(names))
}

fn skip_text(missing: &[String]) -> Result<(), String> {
    match missing {
        [] => Ok(()),
        [one] => Err(format!(
            "the guest kernel lacks module {one} (not loaded: see the console's insmod lines)"
        )),
        many => Err(format!(
            "the guest kernel lacks modules {} (not loaded: see the console's insmod lines)",
            many.join(", ")
        )),
    }
}

/// The first USB device controller's name (`dummy_udc.0`).
///
/// Errors: [`GadgetError::NoController`] when there is none.
pub fn controller() -> Result<String, GadgetError> {
    let mut names: Vec<String> = std::fs::read_dir(UDC_CLASS)
        .map_err(|_| GadgetError::NoController)?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    names.into_iter().next().ok_or(GadgetError::NoController)
}

/// What the gadget says it is in its device descriptor and strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    /// idVendor.
    pub vid: u16,
    /// idProduct.
    pub pid: u16,
    /// bcdDevice.
    pub bcd_device: u16,
    /// bDeviceClass (0: per interface).
    pub device_class: u8,
    /// iManufacturer's text.
    pub manufacturer: String,
    /// iProduct's text.
    pub product: String,
    /// iSerialNumber's text.
    pub serial: String,
    /// bMaxPower, in mA.
    pub max_power_ma: u16,
}

impl DeviceSpec {
    /// A device `vid:pid` named `manufacturer` / `product`, class per interface, serial
    /// `RIG0001`, 100 mA.
    pub fn new(vid: u16, pid: u16, manufacturer: &str, product: &str) -> Self {
        DeviceSpec {
            vid,
            pid,
            bcd_device: 0x0100,
            device_class: 0,
            manufacturer: manufacturer.into(),
            product: product.into(),
            serial: "RIG0001".into(),
            max_power_ma: 100,
        }
    }
}

/// A configfs gadget: created by [`Gadget::create`], given functions, bound to the
/// controller (plugged in) and, when dropped, unbound and removed.
#[derive(Debug)]
pub struct Gadget {
    dir: PathBuf,
    spec: DeviceSpec,
    /// The functions linked into the configuration, in order (`printer.usb0`).
    functions: Vec<String>,
    bound: bool,
}

fn write(path: &Path, value: impl AsRef<[u8]>) -> Result<(), GadgetError> {
    std::fs::write(path, value).map_err(io_err(path))
}

fn mkdir(path: &Path) -> Result<(), GadgetError> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_err(path)(e)),
    }
}

impl Gadget {
    /// Make the gadget `name` (a directory under [`GADGET_ROOT`]) with one configuration
    /// `c.1`. A leftover of the same name (an earlier case that did not clean up) is
    /// removed first.
    ///
    /// Errors: configfs not mounted or `libcomposite` missing (`Io` on the directory).
    pub fn create(name: &str, spec: &DeviceSpec) -> Result<Self, GadgetError> {
        let dir = Path::new(GADGET_ROOT).join(name);
        if dir.exists() {
            teardown(&dir);
        }
        mkdir(&dir)?;
        let g = Gadget {
            dir,
            spec: spec.clone(),
            functions: Vec::new(),
            bound: false,
        };
        g.attr("idVendor", format!("0x{:04x}", spec.vid))?;
        g.attr("idProduct", format!("0x{:04x}", spec.pid))?;
        g.attr("bcdDevice", format!("0x{:04x}", spec.bcd_device))?;
        g.attr("bcdUSB", "0x0200")?;
        g.attr("bDeviceClass", format!("0x{:02x}", spec.device_class))?;
        let strings = g.dir.join("strings/0x409");
        mkdir(&strings)?;
        write(&strings.join("manufacturer"), &spec.manufacturer)?;
        write(&strings.join("product"), &spec.product)?;
        write(&strings.join("serialnumber"), &spec.serial)?;
        let config = g.dir.join("configs/c.1");
        mkdir(&config)?;
        write(&config.join("MaxPower"), spec.max_power_ma.to_string())?;
        mkdir(&config.join("strings/0x409"))?;
        write(&config.join("strings/0x409/configuration"), "rig")?;
        Ok(g)
    }

    /// The gadget's configfs directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the gadget declares.
    pub fn spec(&self) -> &DeviceSpec {
        &self.spec
    }

    /// Write the gadget's attribute `name` (`bDeviceClass`, ...).
    ///
    /// Errors: `Io` (an unknown attribute, a value the kernel refuses, the gadget bound).
    pub fn attr(&self, name: &str, value: impl AsRef<[u8]>) -> Result<(), GadgetError> {
        write(&self.dir.join(name), value)
    }

    /// Add the function `kind.instance` (`printer.usb0`, `hid.usb0`, `ffs.ccid`), write its
    /// attributes in order, and link it into the configuration (interfaces are numbered in
    /// the order functions are added). Returns the function's directory.
    ///
    /// Errors: `Io`, e.g. when the function's module (`usb_f_printer`) is not loaded.
    pub fn function(
        &mut self,
        kind: &str,
        instance: &str,
        attrs: &[(&str, &[u8])],
    ) -> Result<PathBuf, GadgetError> {
        let name = format!("{kind}.{instance}");
        let dir = self.dir.join("functions").join(&name);
        mkdir(&dir)?;
        for (attr, value) in attrs {
            write(&dir.join(attr), value)?;
        }
        let link = self.dir.join("configs/c.1").join(&name);
        if !link.exists() {
            std::os::unix::fs::symlink(&dir, &link).map_err(io_err(&link))?;
        }
        self.functions.push(name);
        Ok(dir)
    }

    /// Bind the gadget to the first device controller: the USB device is plugged in.
    /// Returns the controller's name.
    ///
    /// Errors: `NoController`; `Io` when the kernel refuses (no function, a FunctionFS
    /// function whose descriptors were not written yet, the controller busy).
    pub fn bind(&mut self) -> Result<String, GadgetError> {
        let udc = controller()?;
        self.attr("UDC", &udc)?;
        self.bound = true;
        Ok(udc)
    }

    /// Unbind the gadget: the USB device is unplugged (the host side sees it go).
    ///
    /// Errors: `Io` when the kernel refuses.
    pub fn unbind(&mut self) -> Result<(), GadgetError> {
        if self.bound {
            // An empty line unbinds.
            self.attr("UDC", "\n")?;
            self.bound = false;
        }
        Ok(())
    }

    /// Whether the gadget is bound.
    pub fn is_bound(&self) -> bool {
        self.bound
    }

    /// Wait (at most `limit`) for the bound gadget to enumerate on the host side; its
    /// sysfs directory (`/sys/bus/usb/devices/3-1`).
    ///
    /// Errors: `Timeout` naming the device.
    pub fn wait_enumerated(&self, limit: Duration) -> Result<PathBuf, GadgetError> {
        wait_for_device(self.spec.vid, self.spec.pid, limit)
    }
}

impl Drop for Gadget {
    fn drop(&mut self) {
        teardown(&self.dir);
    }
}

/// Unbind and remove a gadget directory, best effort: configfs wants the links, strings,
/// configurations and functions removed before the gadget itself.
fn teardown(dir: &Path) {
    let _ = std::fs::write(dir.join("UDC"), "\n");
    let children = |sub: &str| -> Vec<PathBuf> {
        std::fs::read_dir(dir.join(sub))
            .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    for config in children("configs") {
        if let Ok(rd) = std::fs::read_dir(&config) {
            for e in rd.filter_map(Result::ok) {
                if e.file_type().is_ok_and(|t| t.is_symlink()) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        if let Ok(rd) = std::fs::read_dir(config.join("strings")) {
            for e in rd.filter_map(Result::ok) {
                let _ = std::fs::remove_dir(e.path());
            }
        }
        let _ = std::fs::remove_dir(&config);
    }
    for function in children("functions") {
        let _ = std::fs::remove_dir(function);
    }
    for strings in children("strings") {
        let _ = std::fs::remove_dir(strings);
    }
    let _ = std::fs::remove_dir(dir);
}

/// The sysfs directory of the USB device `vid:pid` the host side sees now, if any.
pub fn find_device(vid: u16, pid: u16) -> Option<PathBuf> {
    find_device_in(Path::new(USB_DEVICES), vid, pid)
}

fn find_device_in(devices: &Path, vid: u16, pid: u16) -> Option<PathBuf> {
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| u16::from_str_radix(s.trim(), 16).ok())
    };
    let mut found: Vec<PathBuf> = std::fs::read_dir(devices)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            read(&p.join("idVendor")) == Some(vid) && read(&p.join("idProduct")) == Some(pid)
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Wait (at most `limit`) for `vid:pid` to enumerate; its sysfs directory.
///
/// Errors: `Timeout` naming the device.
pub fn wait_for_device(vid: u16, pid: u16, limit: Duration) -> Result<PathBuf, GadgetError> {
    let t = Instant::now();
    loop {
        if let Some(p) = find_device(vid, pid) {
            return Ok(p);
        }
        if t.elapsed() >= limit {
            return Err(GadgetError::Timeout(format!(
                "USB device {vid:04x}:{pid:04x} did not enumerate within {} ms",
                limit.as_millis()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait (at most `limit`) for `vid:pid` to be gone from the host side.
///
/// Errors: `Timeout` naming the device.
pub fn wait_gone(vid: u16, pid: u16, limit: Duration) -> Result<(), GadgetError> {
    let t = Instant::now();
    while find_device(vid, pid).is_some() {
        if t.elapsed() >= limit {
            return Err(GadgetError::Timeout(format!(
                "USB device {vid:04x}:{pid:04x} still there {} ms after the unplug",
                limit.as_millis()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Wait (at most `limit`) for `path` (a device node such as `/dev/usb/lp0`) to exist.
///
/// Errors: `Timeout` naming it.
pub fn wait_for_path(path: &Path, limit: Duration) -> Result<(), GadgetError> {
    let t = Instant::now();
    while !path.exists() {
        if t.elapsed() >= limit {
            return Err(GadgetError::Timeout(format!(
                "{} did not appear within {} ms",
                path.display(),
                limit.as_millis()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The device nodes of `class` (`hidraw`, `usbmisc`) whose device is under the USB device
/// at `usb_dir` (a sysfs directory from [`wait_for_device`]): `/dev/hidraw0`, `/dev/usb/lp0`.
pub fn class_nodes(usb_dir: &Path, class: &str) -> Vec<PathBuf> {
    let class_dir = Path::new("/sys/class").join(class);
    let Ok(usb_real) = usb_dir.canonicalize() else {
        return Vec::new();
    };
    let mut nodes: Vec<PathBuf> = std::fs::read_dir(&class_dir)
        .map(|rd| rd.filter_map(Result::ok).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|e| {
            e.path()
                .canonicalize()
                .is_ok_and(|real| real.starts_with(&usb_real))
        })
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            // usbmisc nodes live under /dev/usb (lp0), the others in /dev.
            Some(if class == "usbmisc" {
                Path::new("/dev/usb").join(name)
            } else {
                Path::new("/dev").join(name)
            })
        })
        .collect();
    nodes.sort();
    nodes
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn missing_modules_are_named_in_the_skip() {
        let dir = tempfile_dir();
        std::fs::create_dir_all(dir.join("libcomposite")).unwrap();
        std::fs::create_dir_all(dir.join("udc_core")).unwrap();
        let missing = missing_modules_in(
            &dir,
            &["libcomposite", "udc-core", "usb_f_printer", "usblp"],
        );
        assert_eq!(missing, ["usb_f_printer", "usblp"]);
        let text = skip_text(&missing).unwrap_err();
        assert!(text.contains("usb_f_printer, usblp"), "{text}");
        assert!(
            skip_text(&missing[..1])
                .unwrap_err()
                .contains("module usb_f_printer")
        );
        assert!(skip_text(&[]).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn devices_are_found_by_vid_and_pid() {
        let dir = tempfile_dir();
        for (name, vid, pid) in [
            ("1-1", "08e6", "4433"),
            ("3-1", "04b8", "0e15"),
            ("usb3", "1d6b", "0002"),
        ] {
            std::fs::create_dir_all(dir.join(name)).unwrap();
            std::fs::write(dir.join(name).join("idVendor"), format!("{vid}\n")).unwrap();
            std::fs::write(dir.join(name).join("idProduct"), format!("{pid}\n")).unwrap();
        }
        // An interface directory has no idVendor.
        std::fs::create_dir_all(dir.join("3-1:1.0")).unwrap();
        assert_eq!(find_device_in(&dir, 0x04b8, 0x0e15), Some(dir.join("3-1")));
        assert_eq!(find_device_in(&dir, 0x04b8, 0x0e16), None);
        assert_eq!(find_device_in(&dir.join("nope"), 0x04b8, 0x0e15), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let d = std::env::temp_dir().join(format!(
            "rig-gadget-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
