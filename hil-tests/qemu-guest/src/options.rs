//! The run's options from the kernel command line (`/proc/cmdline`), and where the rig's
//! devices show up in `/sys`.
//!
//! - `rig.only=a,b`: only these cases. A rig case (`ccid.atr_apdu`) or group (`ccid`), `rig`
//!   for all rig cases, `suite` for the whole hil-tests suite, `suite.NAME` for one of its
//!   cases or groups (`suite.reader`, `suite.printer.paper_out`). Without it: everything.
//! - `rig.bench=N`: APDUs per benchmark (default [`DEFAULT_BENCH`]).

use std::path::{Path, PathBuf};

/// APDUs per benchmark when `rig.bench` is not given.
pub const DEFAULT_BENCH: u32 = 300;

/// What part of a set of cases runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// Every case.
    All,
    /// None.
    Nothing,
    /// These names or groups.
    Some(Vec<String>),
}

/// The run's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `rig.only`, as given (empty: everything).
    pub only: Vec<String>,
    /// `rig.bench`.
    pub bench: u32,
    /// Options that were given but not understood (reported, never silently dropped).
    pub problems: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            only: Vec::new(),
            bench: DEFAULT_BENCH,
            problems: Vec::new(),
        }
    }
}

impl Options {
    /// Read the options out of a kernel command line; other words are ignored.
    pub fn parse(cmdline: &str) -> Options {
        let mut o = Options::default();
        for word in cmdline.split_whitespace() {
            if let Some(v) = word.strip_prefix("rig.only=") {
                o.only.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                );
            } else if let Some(v) = word.strip_prefix("rig.bench=") {
                match v.parse::<u32>() {
                    Ok(n) if n > 0 => o.bench = n,
                    _ => o.problems.push(format!(
                        "rig.bench={v:?} is not a positive number; using {DEFAULT_BENCH}"
                    )),
                }
            } else if word.starts_with("rig.") {
                o.problems.push(format!(
                    "unknown option {word:?} (rig.only=..., rig.bench=N)"
                ));
            }
        }
        o
    }

    /// The rig cases to run.
    pub fn rig_pick(&self) -> Pick {
        if self.only.is_empty() || self.only.iter().any(|o| o == "rig") {
            return Pick::All;
        }
        let names: Vec<String> = self
            .only
            .iter()
            .filter(|o| *o != "suite" && !o.starts_with("suite."))
            .cloned()
            .collect();
        if names.is_empty() {
            Pick::Nothing
        } else {
            Pick::Some(names)
        }
    }

    /// The suite's cases to run (names without the `suite.` prefix).
    pub fn suite_pick(&self) -> Pick {
        if self.only.is_empty() || self.only.iter().any(|o| o == "suite") {
            return Pick::All;
        }
        let names: Vec<String> = self
            .only
            .iter()
            .filter_map(|o| o.strip_prefix("suite."))
            .map(str::to_string)
            .collect();
        if names.is_empty() {
            Pick::Nothing
        } else {
            Pick::Some(names)
        }
    }
}

/// The `/dev` node of the first `ttyUSB*` whose `/sys/class/tty` entry exists under
/// `sysfs_root` and whose node exists under `dev_root`, if any.
pub fn usb_tty(sysfs_root: &Path, dev_root: &Path) -> Option<PathBuf> {
    let mut names: Vec<String> = std::fs::read_dir(sysfs_root.join("class/tty"))
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ttyUSB"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| dev_root.join(n))
        .find(|p| p.exists())
}

/// The `/dev/input/eventN` node of the first input device under `sysfs_root` whose name
/// contains `name` (QEMU's `QEMU QEMU USB Keyboard`), if any.
pub fn input_event_by_name(sysfs_root: &Path, dev_root: &Path, name: &str) -> Option<PathBuf> {
    let mut found: Vec<(u32, String)> = std::fs::read_dir(sysfs_root.join("class/input"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let number = n.strip_prefix("event")?.parse().ok()?;
            let device_name = std::fs::read_to_string(e.path().join("device/name")).ok()?;
            device_name.contains(name).then_some((number, n))
        })
        .collect();
    found.sort();
    found
        .into_iter()
        .map(|(_, n)| dev_root.join("input").join(n))
        .next()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn options_from_the_kernel_command_line() {
        let o = Options::parse(
            "console=ttyS0 quiet rig.only=ccid,suite.reader.atr rig.bench=50 panic=-1",
        );
        assert_eq!(o.only, ["ccid", "suite.reader.atr"]);
        assert_eq!(o.bench, 50);
        assert!(o.problems.is_empty());
        assert_eq!(o.rig_pick(), Pick::Some(vec!["ccid".into()]));
        assert_eq!(o.suite_pick(), Pick::Some(vec!["reader.atr".into()]));

        let o = Options::parse("console=ttyS0");
        assert_eq!(
            (o.rig_pick(), o.suite_pick(), o.bench),
            (Pick::All, Pick::All, 300)
        );

        let o = Options::parse("rig.only=suite rig.bench=0 rig.fast=1");
        assert_eq!((o.rig_pick(), o.suite_pick()), (Pick::Nothing, Pick::All));
        assert_eq!(o.bench, DEFAULT_BENCH);
        assert_eq!(o.problems.len(), 2, "{:?}", o.problems);

        let o = Options::parse("rig.only=rig");
        assert_eq!((o.rig_pick(), o.suite_pick()), (Pick::All, Pick::Nothing));
    }

    #[test]
    fn devices_are_found_in_sysfs() {
        let root = std::env::temp_dir().join(format!("rig-guest-sys-{}", std::process::id()));
        let sys = root.join("sys");
        let dev = root.join("dev");
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(usb_tty(&sys, &dev), None);
        for d in ["class/tty/ttyS1", "class/tty/ttyUSB0"] {
            std::fs::create_dir_all(sys.join(d)).unwrap();
        }
        std::fs::create_dir_all(dev.join("input")).unwrap();
        // The sysfs entry alone is not enough: the node must be there.
        assert_eq!(usb_tty(&sys, &dev), None);
        std::fs::write(dev.join("ttyUSB0"), b"").unwrap();
        assert_eq!(usb_tty(&sys, &dev), Some(dev.join("ttyUSB0")));

        for (ev, name) in [
            ("event0", "AT Translated Set 2 keyboard"),
            ("event3", "QEMU QEMU USB Keyboard"),
        ] {
            std::fs::create_dir_all(sys.join("class/input").join(ev).join("device")).unwrap();
            std::fs::write(
                sys.join("class/input").join(ev).join("device/name"),
                format!("{name}\n"),
            )
            .unwrap();
        }
        std::fs::create_dir_all(sys.join("class/input/mouse0")).unwrap();
        assert_eq!(
            input_event_by_name(&sys, &dev, "USB Keyboard"),
            Some(dev.join("input/event3"))
        );
        assert_eq!(input_event_by_name(&sys, &dev, "Tablet"), None);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
