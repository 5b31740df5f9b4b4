//! What the rig is made of, found in its cache directory: QEMU, the guest kernel and its
//! USB modules, busybox, and (for the benchmark) pcscd with libccid, all unpacked from
//! Debian's packages by `prepare.sh` without installing anything.

use std::path::{Path, PathBuf};

/// The kernel modules the guest loads, in order (no depmod: plain `insmod`).
pub const MODULES: &[&str] = &[
    "drivers/usb/common/usb-common.ko",
    "drivers/usb/core/usbcore.ko",
    "drivers/usb/host/xhci-hcd.ko",
    "drivers/usb/host/xhci-pci.ko",
    "drivers/usb/serial/usbserial.ko",
    "drivers/usb/serial/ftdi_sio.ko",
    "drivers/hid/hid.ko",
    "drivers/hid/usbhid/usbhid.ko",
    "drivers/hid/hid-generic.ko",
    "drivers/input/evdev.ko",
];

/// The modules for USB devices built inside the guest (Linux USB gadgets on `dummy_hcd`,
/// a virtual host and device controller pair) and the printer class driver, in load
/// order. Loaded when the kernel has them: a case needing one that is missing SKIPs,
/// naming it (`qemu_rig_guest::gadget::require_modules`).
pub const GADGET_MODULES: &[&str] = &[
    "fs/configfs/configfs.ko",
    "drivers/usb/gadget/udc/udc-core.ko",
    "drivers/usb/gadget/libcomposite.ko",
    "drivers/usb/gadget/udc/dummy_hcd.ko",
    "drivers/usb/gadget/function/usb_f_printer.ko",
    "drivers/usb/gadget/function/usb_f_hid.ko",
    "drivers/usb/gadget/function/usb_f_fs.ko",
    "drivers/usb/class/usblp.ko",
    // GadgetFS (legacy): a whole device written in user space, descriptors unchecked; the
    // vendor-class CCID reader shape, which FunctionFS refuses (ccidshape.vendor).
    "drivers/usb/gadget/legacy/gadgetfs.ko",
];

/// Why the rig cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The cache directory lacks something `prepare.sh` puts there.
    #[error("{what} not found at {path} (run hil-tests/qemu-rig/prepare.sh first)")]
    Missing {
        /// What is missing.
        what: &'static str,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// Reading the cache failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// The rig's files, under `<cache>/root` (the unpacked packages).
#[derive(Debug, Clone)]
pub struct RigFiles {
    /// The unpacked packages' root.
    pub root: PathBuf,
    /// `qemu-system-x86_64`.
    pub qemu: PathBuf,
    /// The guest kernel (`boot/vmlinuz-*`).
    pub kernel: PathBuf,
    /// The kernel's module tree (`lib/modules/VERSION/kernel`).
    pub modules: PathBuf,
    /// Those of [`GADGET_MODULES`] this kernel has (relative to `modules`), in load order.
    pub gadget_modules: Vec<&'static str>,
    /// Static busybox.
    pub busybox: PathBuf,
    /// pcscd, when its package was unpacked (the pcsc-lite comparison).
    pub pcscd: Option<PathBuf>,
    /// udev's daemon (`udevadm`, which runs as `systemd-udevd` under that name), when its
    /// package was unpacked: pcscd hears of USB readers leaving through udev.
    pub udevd: Option<PathBuf>,
}

fn must(what: &'static str, path: PathBuf) -> Result<PathBuf, FilesError> {
    if path.exists() {
        Ok(path)
    } else {
        Err(FilesError::Missing { what, path })
    }
}

fn first_entry(dir: &Path, prefix: &str, what: &'static str) -> Result<PathBuf, FilesError> {
    let rd = std::fs::read_dir(dir).map_err(|_| FilesError::Missing {
        what,
        path: dir.to_path_buf(),
    })?;
    let mut found: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    found.sort();
    found.pop().ok_or(FilesError::Missing {
        what,
        path: dir.join(format!("{prefix}*")),
    })
}

impl RigFiles {
    /// Find everything under `cache` (the directory `prepare.sh` filled).
    ///
    /// Errors: `Missing` naming the first thing not there.
    pub fn discover(cache: &Path) -> Result<Self, FilesError> {
        let root = must("the unpacked packages", cache.join("root"))?;
        // Absolute: the library path and ldd's answers must not depend on the directory
        // QEMU and ldd run in.
        let root = root.canonicalize().map_err(|source| FilesError::Io {
            path: root.clone(),
            source,
        })?;
        let qemu = must(
            "qemu-system-x86_64",
            root.join("usr/bin/qemu-system-x86_64"),
        )?;
        let kernel = first_entry(&root.join("boot"), "vmlinuz-", "the guest kernel")?;
        let version_dir = first_entry(&root.join("lib/modules"), "", "the kernel modules")?;
        let modules = must("the kernel modules", version_dir.join("kernel"))?;
        for m in MODULES {
            must("a USB kernel module", modules.join(m))?;
        }
        let gadget_modules = GADGET_MODULES
            .iter()
            .copied()
            .filter(|m| modules.join(m).is_file())
            .collect();
        let busybox = must("busybox (busybox-static)", root.join("bin/busybox"))?;
        let pcscd = Some(root.join("usr/sbin/pcscd")).filter(|p| p.exists());
        let udevd = ["bin/udevadm", "usr/bin/udevadm"]
            .iter()
            .map(|p| root.join(p))
            .find(|p| p.is_file());
        Ok(RigFiles {
            root,
            qemu,
            kernel,
            modules,
            gadget_modules,
            busybox,
            pcscd,
            udevd,
        })
    }

    /// The library directories QEMU and pcscd load from (`LD_LIBRARY_PATH`).
    pub fn library_path(&self) -> String {
        [
            "lib/x86_64-linux-gnu",
            "usr/lib/x86_64-linux-gnu",
            "usr/lib/x86_64-linux-gnu/pulseaudio",
        ]
        .iter()
        .map(|d| self.root.join(d).display().to_string())
        .collect::<Vec<_>>()
        .join(":")
    }

    /// QEMU's firmware directories (`-L`).
    pub fn firmware_dirs(&self) -> Vec<PathBuf> {
        ["usr/share/qemu", "usr/share/seabios", "usr/lib/ipxe/qemu"]
            .iter()
            .map(|d| self.root.join(d))
            .collect()
    }
}
