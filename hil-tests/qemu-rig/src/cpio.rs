//! A writer for the initramfs format: a "newc" cpio archive (the kernel's
//! `Documentation/driver-api/early-userspace/buffer-format.rst`), uncompressed.
//!
//! Written here because the machine has no `cpio` and the format is a 110-byte ASCII header
//! per entry: magic `070701`, thirteen 8-digit hex fields, the name (NUL-terminated, padded
//! to 4), the data (padded to 4), and a `TRAILER!!!` entry at the end.

use std::collections::BTreeSet;

/// Regular file mode bits.
const S_IFREG: u32 = 0o100_000;
/// Directory mode bits.
const S_IFDIR: u32 = 0o040_000;
/// Symbolic link mode bits.
const S_IFLNK: u32 = 0o120_000;

/// An archive being built in memory.
#[derive(Debug, Default)]
pub struct Archive {
    out: Vec<u8>,
    ino: u32,
    dirs: BTreeSet<String>,
}

fn pad4(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.ino += 1;
        let name = name.trim_start_matches('/');
        let fields: [u32; 13] = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            if mode & S_IFDIR == S_IFDIR { 2 } else { 1 },
            0, // mtime: fixed, so the same inputs give the same image
            u32::try_from(data.len()).unwrap_or(u32::MAX),
            0,
            0,
            0,
            0,
            u32::try_from(name.len() + 1).unwrap_or(u32::MAX),
            0, // check
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        pad4(&mut self.out);
        self.out.extend_from_slice(data);
        pad4(&mut self.out);
    }

    /// Add directory `path` and its parents (once each).
    pub fn dir(&mut self, path: &str) {
        let path = path.trim_matches('/');
        let mut so_far = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            if !so_far.is_empty() {
                so_far.push('/');
            }
            so_far.push_str(part);
            if self.dirs.insert(so_far.clone()) {
                let name = so_far.clone();
                self.entry(&name, S_IFDIR | 0o755, &[]);
            }
        }
    }

    fn parent(&mut self, path: &str) {
        if let Some((dir, _)) = path.trim_start_matches('/').rsplit_once('/') {
            self.dir(dir);
        }
    }

    /// Add a regular file with permission bits `perm` (e.g. `0o755`), creating its
    /// directories.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) {
        self.parent(path);
        self.entry(path, S_IFREG | (perm & 0o7777), data);
    }

    /// Add a symbolic link at `path` pointing to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) {
        self.parent(path);
        self.entry(path, S_IFLNK | 0o777, target.as_bytes());
    }

    /// Close the archive (the trailer) and return its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Read the archive back: (name, mode, data) per entry.
    fn entries(mut b: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let mut all = Vec::new();
        let start = b.as_ptr() as usize;
        loop {
            assert_eq!(&b[..6], b"070701");
            let field = |i: usize| {
                u32::from_str_radix(std::str::from_utf8(&b[6 + 8 * i..14 + 8 * i]).unwrap(), 16)
                    .unwrap()
            };
            let (mode, size, namesize) = (field(1), field(6) as usize, field(11) as usize);
            let name = std::str::from_utf8(&b[110..110 + namesize - 1])
                .unwrap()
                .to_string();
            assert_eq!(b[110 + namesize - 1], 0);
            let data_at = (110 + namesize).div_ceil(4) * 4;
            let data = b[data_at..data_at + size].to_vec();
            let next = (data_at + size).div_ceil(4) * 4;
            b = &b[next..];
            assert_eq!(
                (b.as_ptr() as usize - start) % 4,
                0,
                "entries are 4-aligned"
            );
            if name == "TRAILER!!!" {
                assert!(b.is_empty());
                return all;
            }
            all.push((name, mode, data));
        }
    }

    #[test]
    fn files_dirs_and_links_read_back() {
        let mut a = Archive::new();
        a.file("/init", 0o755, b"#!/bin/sh\n");
        a.file("lib/modules/usbcore.ko", 0o644, &[1, 2, 3, 4, 5]);
        a.symlink("/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld.so");
        a.dir("proc");
        a.dir("lib/modules");
        let e = entries(&a.finish());
        let names: Vec<_> = e.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "init",
                "lib",
                "lib/modules",
                "lib/modules/usbcore.ko",
                "lib64",
                "lib64/ld-linux-x86-64.so.2",
                "proc"
            ]
        );
        assert_eq!(e[0].1, S_IFREG | 0o755);
        assert_eq!(e[0].2, b"#!/bin/sh\n");
        assert_eq!(e[1].1, S_IFDIR | 0o755);
        assert_eq!(e[3].2, [1, 2, 3, 4, 5]);
        assert_eq!(e[5].1, S_IFLNK | 0o777);
        assert_eq!(e[5].2, b"/lib/x86_64-linux-gnu/ld.so");
    }

    #[test]
    fn the_same_inputs_give_the_same_bytes() {
        let build = || {
            let mut a = Archive::new();
            a.file("bin/x", 0o755, b"abc");
            a.finish()
        };
        assert_eq!(build(), build());
    }
}
