//! Who holds a device node open: a best-effort scan of `/proc` for the processes that have
//! it among their open files (what `fuser` does), to name the holder of a busy device.
//!
//! The scan reads `PROC/PID/fd/*` links and `PROC/PID/comm`. It never fails and never
//! panics: a process that vanished or whose file table this user may not read (other users'
//! processes, unless root) is skipped and counted in [`HolderScan::unreadable`]. It is
//! bounded ([`MAX_FD_ENTRIES`] links, [`SCAN_BUDGET`] of time); a scan cut short says so
//! ([`HolderScan::complete`]). The proc root is a parameter so that tests use a fake tree.
//!
//! Because other users' file tables are usually unreadable, the scan also notes a running
//! `pcscd` ([`HolderScan::pcscd`], from `comm`, which anyone may read): on a Linux box it
//! is the usual holder of a smart-card reader.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The most `fd` links one scan reads.
pub const MAX_FD_ENTRIES: usize = 200_000;

/// The longest one scan lasts.
pub const SCAN_BUDGET: Duration = Duration::from_millis(300);

/// The name of the PC/SC daemon's process.
pub const PCSCD: &str = "pcscd";

/// A process holding the device node open.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Holder {
    /// Its process id.
    pub pid: u32,
    /// Its command name (`/proc/PID/comm`), `?` when unreadable.
    pub name: String,
}

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct HolderScan {
    /// The processes seen holding the node, by pid.
    pub holders: Vec<Holder>,
    /// The pid of a running `pcscd`, holder or not.
    pub pcscd: Option<u32>,
    /// Processes whose open files could not be read (permission, gone).
    pub unreadable: usize,
    /// False when the proc root could not be read or the scan hit its limits.
    pub complete: bool,
}

impl HolderScan {
    /// True when `pcscd` was seen holding the node.
    pub fn pcscd_holds(&self) -> bool {
        self.holders.iter().any(|h| h.name == PCSCD)
    }
}

/// The device node of a USB device: `/dev/bus/usb/BBB/DDD` (bus number and device address,
/// three digits each), the file libusb opens and `fuser` can name holders of.
pub fn usb_device_node(bus: u8, address: u8) -> PathBuf {
    PathBuf::from(format!("/dev/bus/usb/{bus:03}/{address:03}"))
}

fn command_name(proc_root: &Path, pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join("comm")).ok()?;
    let name = text.trim_end_matches('\n').trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// Scans `proc_root` (normally `/proc`) for processes with `node` open, leaving out
/// `skip_pid` (the caller itself: it has the node open while it finds out why it cannot
/// claim it). See the [module](self) documentation.
pub fn scan_holders(proc_root: &Path, node: &Path, skip_pid: Option<u32>) -> HolderScan {
    scan_with_limits(proc_root, node, skip_pid, MAX_FD_ENTRIES, SCAN_BUDGET)
}

fn scan_with_limits(
    proc_root: &Path,
    node: &Path,
    skip_pid: Option<u32>,
    max_fds: usize,
    budget: Duration,
) -> HolderScan {
    let mut scan = HolderScan::default();
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return scan;
    };
    let deadline = Instant::now() + budget;
    let mut fds_read = 0usize;
    let mut complete = true;
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| Some(*pid) != skip_pid)
        .collect();
    pids.sort_unstable();
    'processes: for pid in pids {
        if Instant::now() >= deadline {
            complete = false;
            break;
        }
        let name = command_name(proc_root, pid);
        if name.as_deref() == Some(PCSCD) && scan.pcscd.is_none() {
            scan.pcscd = Some(pid);
        }
        let Ok(fds) = std::fs::read_dir(proc_root.join(pid.to_string()).join("fd")) else {
            scan.unreadable += 1;
            continue;
        };
        for fd in fds {
            fds_read += 1;
            if fds_read > max_fds {
                complete = false;
                break 'processes;
            }
            let Ok(fd) = fd else { continue };
            if std::fs::read_link(fd.path()).is_ok_and(|target| target == node) {
                scan.holders.push(Holder {
                    pid,
                    name: name.clone().unwrap_or_else(|| "?".into()),
                });
                break;
            }
        }
    }
    scan.complete = complete;
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake proc tree: `(pid, comm, fd links)`; `None` links: an unreadable fd directory.
    fn fake_proc(procs: &[(u32, &str, Option<&[&str]>)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        // Entries that are not processes are ignored.
        std::fs::create_dir_all(dir.path().join("self")).expect("self");
        std::fs::write(dir.path().join("uptime"), "1.0 1.0\n").expect("uptime");
        for (pid, comm, links) in procs {
            let p = dir.path().join(pid.to_string());
            std::fs::create_dir_all(&p).expect("pid dir");
            std::fs::write(p.join("comm"), format!("{comm}\n")).expect("comm");
            if let Some(links) = links {
                std::fs::create_dir_all(p.join("fd")).expect("fd dir");
                for (i, target) in links.iter().enumerate() {
                    std::os::unix::fs::symlink(target, p.join("fd").join(i.to_string()))
                        .expect("fd link");
                }
            }
        }
        dir
    }

    const NODE: &str = "/dev/bus/usb/001/004";

    #[test]
    fn the_usb_node_is_zero_padded() {
        assert_eq!(usb_device_node(1, 4), Path::new(NODE));
        assert_eq!(usb_device_node(12, 127), Path::new("/dev/bus/usb/012/127"));
    }

    #[test]
    fn finds_pcscd_holding_the_reader() {
        let proc = fake_proc(&[
            (1, "systemd", Some(&["/dev/null", "socket:[1234]"])),
            (
                812,
                "pcscd",
                Some(&["/dev/null", NODE, "/run/pcscd/pcscd.comm"]),
            ),
            (900, "bash", Some(&["/dev/pts/0"])),
        ]);
        let scan = scan_holders(proc.path(), Path::new(NODE), None);
        assert_eq!(
            scan.holders,
            [Holder {
                pid: 812,
                name: "pcscd".into()
            }]
        );
        assert!(scan.pcscd_holds());
        assert_eq!(scan.pcscd, Some(812));
        assert_eq!(scan.unreadable, 0);
        assert!(scan.complete);
    }

    #[test]
    fn leaves_out_the_caller_and_counts_what_it_cannot_read() {
        let proc = fake_proc(&[
            (4242, "posctl", Some(&[NODE])),
            (812, "pcscd", None),
            (5000, "posctl", Some(&["/dev/bus/usb/001/005", NODE])),
        ]);
        let scan = scan_holders(proc.path(), Path::new(NODE), Some(4242));
        assert_eq!(
            scan.holders,
            [Holder {
                pid: 5000,
                name: "posctl".into()
            }]
        );
        // pcscd runs but its files are not readable: known to run, not known to hold.
        assert_eq!(scan.pcscd, Some(812));
        assert!(!scan.pcscd_holds());
        assert_eq!(scan.unreadable, 1);
    }

    #[test]
    fn no_proc_tree_is_an_empty_incomplete_scan() {
        let scan = scan_holders(Path::new("/nonexistent/proc"), Path::new(NODE), None);
        assert_eq!(scan, HolderScan::default());
        assert!(!scan.complete);
    }

    #[test]
    fn the_scan_stops_at_its_limits() {
        let links: Vec<String> = (0..50).map(|i| format!("/dev/null{i}")).collect();
        let links: Vec<&str> = links.iter().map(String::as_str).collect();
        let proc = fake_proc(&[(10, "busy", Some(&links)), (20, "pcscd", Some(&[NODE]))]);
        let scan = scan_with_limits(proc.path(), Path::new(NODE), None, 10, SCAN_BUDGET);
        assert!(!scan.complete);
        assert!(scan.holders.is_empty());
        let scan = scan_with_limits(proc.path(), Path::new(NODE), None, 10, Duration::ZERO);
        assert!(!scan.complete);
        // Within the limits it finds the holder.
        let scan = scan_holders(proc.path(), Path::new(NODE), None);
        assert!(scan.complete && scan.pcscd_holds());
    }

    #[test]
    fn the_real_proc_scan_does_not_fail() {
        // Whatever this machine has: no panic, and this process left out.
        let me = std::process::id();
        let scan = scan_holders(Path::new("/proc"), Path::new(NODE), Some(me));
        assert!(scan.holders.iter().all(|h| h.pid != me));
    }
}
