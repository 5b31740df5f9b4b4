//! The guest's initramfs: busybox, the USB modules, `/init`, the static scenario binary
//! and, for the pcsc-lite comparison, pcscd + libccid + the benchmark client with the
//! shared libraries they load.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cpio::Archive;
use crate::files::{FilesError, MODULES, RigFiles};

/// Where the guest finds its binaries.
pub const GUEST_BIN: &str = "/bin/rig-guest";
/// The pcsc-lite benchmark client in the guest.
pub const PCSC_BENCH_BIN: &str = "/bin/pcsc-bench";
/// The helper running the reader cases through our pcsc: road, in the guest.
pub const PCSC_ROAD_BIN: &str = "/bin/pcsc-road";
/// udev's daemon in the guest (udevadm under the name it runs as the daemon with).
pub const UDEVD_BIN: &str = "/lib/systemd/systemd-udevd";

/// The guest's `/init`: mount the pseudo file systems, load the USB modules and then the
/// `gadget_modules` this kernel has (configfs is mounted at `/sys/kernel/config` for the
/// gadgets), bring up loopback (the end-to-end sale talks to a fake host on 127.0.0.1), run
/// the scenarios, power off.
pub fn init_script(gadget_modules: &[&str]) -> String {
    let modules: Vec<&str> = MODULES
        .iter()
        .chain(gadget_modules)
        .filter_map(|m| m.rsplit('/').next())
        .map(|m| m.trim_end_matches(".ko"))
        .collect();
    format!(
        r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mkdir -p /run/pcscd /var/run
for m in {modules}; do
    insmod /lib/rig-modules/$m.ko || echo "rig: insmod $m failed"
done
# The USB gadgets' configuration file system (when configfs loaded).
if grep -qs configfs /proc/filesystems; then
    mount -t configfs none /sys/kernel/config || echo "rig: mounting configfs failed"
fi
ip link set lo up || ifconfig lo 127.0.0.1 up
# udev's daemon, when the image has it (no rules: it only passes the kernel's device events
# on, which is how pcscd hears of a USB reader leaving).
if [ -x {UDEVD_BIN} ]; then
    mkdir -p /run/udev
    {UDEVD_BIN} --daemon || echo "rig: systemd-udevd did not start"
fi
# xHCI enumerates asynchronously: wait (at most 20 s) for QEMU's CCID reader to show.
i=0
while [ $i -lt 200 ] && ! grep -qs 08e6 /sys/bus/usb/devices/*/idVendor; do
    usleep 100000
    i=$((i+1))
done
echo "rig: USB enumerated after $((i / 10)).$((i % 10)) s"
echo "rig: guest up, running {GUEST_BIN}"
{GUEST_BIN}
echo "rig: {GUEST_BIN} exited with $?"
poweroff -f
"#,
        modules = modules.join(" ")
    )
}

/// Why the image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A file of the rig is missing.
    #[error(transparent)]
    Files(#[from] FilesError),
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// `ldd` could not list a binary's libraries.
    #[error("ldd {path}: {detail}")]
    Ldd {
        /// The binary.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, ImageError> {
    std::fs::read(path).map_err(|source| ImageError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The shared libraries `binary` needs, as (path on this machine, path in the guest), found
/// with `ldd` and the rig's library path (the unpacked packages first).
pub fn shared_libraries(
    files: &RigFiles,
    binary: &Path,
) -> Result<Vec<(PathBuf, String)>, ImageError> {
    let out = Command::new("ldd")
        .arg(binary)
        .env("LD_LIBRARY_PATH", files.library_path())
        .output()
        .map_err(|e| ImageError::Ldd {
            path: binary.to_path_buf(),
            detail: e.to_string(),
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(ImageError::Ldd {
            path: binary.to_path_buf(),
            detail: format!("{text}{}", String::from_utf8_lossy(&out.stderr)),
        });
    }
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.contains("not found") {
            return Err(ImageError::Ldd {
                path: binary.to_path_buf(),
                detail: line.to_string(),
            });
        }
        // "libx.so.1 => /path/libx.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/')),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            continue;
        };
        let host = PathBuf::from(path);
        let guest = match host.strip_prefix(&files.root) {
            Ok(rel) => format!("/{}", rel.display()),
            Err(_) => path.to_string(),
        };
        libs.push((host, guest));
    }
    Ok(libs)
}

/// What goes into the image besides the base system.
#[derive(Debug, Clone)]
pub struct ImageInputs {
    /// The static `rig-guest` binary.
    pub guest: PathBuf,
    /// The `pcsc-bench` client (dynamic, against libpcsclite), when built.
    pub pcsc_bench: Option<PathBuf>,
    /// The `pcsc-road` helper (dynamic; loads libpcsclite at run time, which `pcsc-bench`
    /// brings into the image), when built.
    pub pcsc_road: Option<PathBuf>,
}

/// Build the initramfs (an uncompressed newc cpio archive) for `inputs`.
///
/// Errors: a missing file, or `ldd` failing on the pcsc-lite binaries.
pub fn build(files: &RigFiles, inputs: &ImageInputs) -> Result<Vec<u8>, ImageError> {
    let mut a = Archive::new();
    for d in ["proc", "sys", "dev", "tmp", "run", "etc", "root"] {
        a.dir(d);
    }
    a.file("/bin/busybox", 0o755, &read(&files.busybox)?);
    a.file(
        "/init",
        0o755,
        init_script(&files.gadget_modules).as_bytes(),
    );
    for m in MODULES.iter().chain(&files.gadget_modules) {
        let name = m.rsplit('/').next().unwrap_or(m);
        a.file(
            &format!("/lib/rig-modules/{name}"),
            0o644,
            &read(&files.modules.join(m))?,
        );
    }
    a.file(GUEST_BIN, 0o755, &read(&inputs.guest)?);
    if let (Some(pcscd), Some(bench)) = (&files.pcscd, &inputs.pcsc_bench) {
        add_pcsc(&mut a, files, pcscd, bench, inputs.pcsc_road.as_deref())?;
    }
    Ok(a.finish())
}

fn add_pcsc(
    a: &mut Archive,
    files: &RigFiles,
    pcscd: &Path,
    bench: &Path,
    road: Option<&Path>,
) -> Result<(), ImageError> {
    let bundle = "usr/lib/pcsc/drivers/ifd-ccid.bundle/Contents";
    let driver = files.root.join(bundle).join("Linux/libccid.so");
    let plist = files.root.join("etc/libccid_Info.plist");
    a.file("/usr/sbin/pcscd", 0o755, &read(pcscd)?);
    a.file(PCSC_BENCH_BIN, 0o755, &read(bench)?);
    if let Some(road) = road {
        a.file(PCSC_ROAD_BIN, 0o755, &read(road)?);
    }
    a.file(
        &format!("/{bundle}/Linux/libccid.so"),
        0o755,
        &read(&driver)?,
    );
    a.file("/etc/libccid_Info.plist", 0o644, &read(&plist)?);
    a.symlink(&format!("/{bundle}/Info.plist"), "/etc/libccid_Info.plist");
    let mut seen = std::collections::BTreeSet::new();
    let udevd = files.udevd.as_deref();
    if let Some(u) = udevd {
        a.file(UDEVD_BIN, 0o755, &read(u)?);
    }
    for binary in [pcscd, bench, driver.as_path()]
        .into_iter()
        .chain(road)
        .chain(udevd)
    {
        for (host, guest) in shared_libraries(files, binary)? {
            if seen.insert(guest.clone()) {
                a.file(&guest, 0o755, &read(&host)?);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_loads_every_module_in_order_and_runs_the_guest() {
        let s = init_script(&[]);
        assert!(s.starts_with("#!/bin/busybox sh\n"));
        assert!(s.contains(
            "for m in usb-common usbcore xhci-hcd xhci-pci usbserial ftdi_sio hid usbhid hid-generic evdev;"
        ));
        let g = init_script(crate::files::GADGET_MODULES);
        assert!(g.contains(
            "evdev configfs udc-core libcomposite dummy_hcd usb_f_printer usb_f_hid usb_f_fs usblp gadgetfs;"
        ));
        let mount = g.find("mount -t configfs").unwrap_or(usize::MAX);
        assert!(g.find("gadgetfs;").unwrap_or(usize::MAX) < mount);
        assert!(mount < g.find(GUEST_BIN).unwrap_or(0));
        let run = s.find(GUEST_BIN).unwrap_or(usize::MAX);
        let devtmpfs = s.find("devtmpfs").unwrap_or(usize::MAX);
        assert!(devtmpfs < run, "devices are mounted before the guest runs");
        assert!(s.trim_end().ends_with("poweroff -f"));
    }
}
