//! # hil-tests: one scenario suite for real and virtual devices
//!
//! The suite's scenarios run against whatever a rig file names (real devices on a test rig,
//! see `rig.example.toml`), or against virtual devices when no rig is given, so the same
//! checks run in CI and on a bench. Set `POS_HIL_RIG=path/to/rig.toml` to use a rig.
//!
//! Scenarios so far: byte links (loopback round trip of every byte value, idle-read
//! timeout). Device scenarios (card insert/remove, APDUs, swipes, printing, faults) join as
//! the drivers land.
#![warn(missing_docs)]

use std::path::Path;
use std::time::Duration;

use pos_link::{DeviceUri, UriError};

/// The environment variable naming the rig file.
pub const RIG_ENV: &str = "POS_HIL_RIG";

/// A rig file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rig {
    /// Byte links to test.
    #[serde(default)]
    pub links: LinkSection,
    /// The receipt printer (default: the virtual one).
    #[serde(default)]
    pub printer: Option<DeviceSection>,
    /// The chip reader, with a card inserted (default: the virtual one).
    #[serde(default)]
    pub reader: Option<DeviceSection>,
}

/// A `[printer]` or `[reader]` section: the device's URI.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSection {
    /// The device URI (`usb:...`, `serial:...`, `tcp:...`, `sim:...`).
    pub uri: String,
}

/// The `[links]` section.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSection {
    /// URIs of links that echo (loopback plug or echo peer).
    #[serde(default)]
    pub loopback: Vec<String>,
    /// Per-chunk timeout in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Bytes to send per link.
    #[serde(default = "default_bytes")]
    pub bytes: usize,
}

impl Default for LinkSection {
    fn default() -> Self {
        LinkSection {
            loopback: Vec::new(),
            timeout_ms: default_timeout_ms(),
            bytes: default_bytes(),
        }
    }
}

fn default_timeout_ms() -> u64 {
    2000
}

fn default_bytes() -> usize {
    4096
}

/// Why a rig file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RigError {
    /// The file could not be read.
    #[error("cannot read rig file {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for a rig.
    #[error("rig file {path} is not valid: {message}")]
    Parse {
        /// The path.
        path: String,
        /// What is wrong, with line and column.
        message: String,
    },
    /// A URI in the file does not parse.
    #[error("rig file {path}: {source}")]
    Uri {
        /// The path.
        path: String,
        /// The URI error, naming the bad part.
        #[source]
        source: UriError,
    },
    /// A value is out of range.
    #[error("rig file {path}: {message}")]
    Invalid {
        /// The path.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl Rig {
    /// Parse a rig from TOML text (`path` is for messages).
    ///
    /// Errors: [`RigError::Parse`] for bad TOML or unknown keys, [`RigError::Uri`] for a bad
    /// URI, [`RigError::Invalid`] for a zero timeout or byte count.
    pub fn parse(text: &str, path: &str) -> Result<Self, RigError> {
        let rig: Rig = toml::from_str(text).map_err(|e| RigError::Parse {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        let devices = [&rig.printer, &rig.reader];
        for uri in rig
            .links
            .loopback
            .iter()
            .chain(devices.iter().filter_map(|d| d.as_ref().map(|d| &d.uri)))
        {
            DeviceUri::parse(uri).map_err(|source| RigError::Uri {
                path: path.to_string(),
                source,
            })?;
        }
        if rig.links.timeout_ms == 0 || rig.links.bytes == 0 {
            return Err(RigError::Invalid {
                path: path.to_string(),
                message: "links.timeout_ms and links.bytes must be above zero".into(),
            });
        }
        Ok(rig)
    }

    /// Read a rig file.
    ///
    /// Errors: as [`Rig::parse`], and [`RigError::Read`].
    pub fn load(path: &Path) -> Result<Self, RigError> {
        let text = std::fs::read_to_string(path).map_err(|source| RigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The rig named by `POS_HIL_RIG`, or `None` to use virtual devices.
    ///
    /// Errors: as [`Rig::load`]: a rig that was asked for but cannot be used is an error,
    /// never a silent fall-back to virtual devices.
    pub fn from_env() -> Result<Option<Self>, RigError> {
        match std::env::var_os(RIG_ENV) {
            Some(p) if !p.is_empty() => Self::load(Path::new(&p)).map(Some),
            _ => Ok(None),
        }
    }

    /// The loopback links as URIs (already checked by [`Rig::parse`]).
    pub fn loopback_uris(&self) -> Vec<DeviceUri> {
        self.links
            .loopback
            .iter()
            .filter_map(|u| DeviceUri::parse(u).ok())
            .collect()
    }

    /// The printer to test: the rig's, else the virtual printer.
    pub fn printer_uri(&self) -> DeviceUri {
        self.printer
            .as_ref()
            .and_then(|d| DeviceUri::parse(&d.uri).ok())
            .unwrap_or_else(default_printer)
    }

    /// The reader to test: the rig's, else the virtual reader with a test card.
    pub fn reader_uri(&self) -> DeviceUri {
        self.reader
            .as_ref()
            .and_then(|d| DeviceUri::parse(&d.uri).ok())
            .unwrap_or_else(default_reader)
    }

    /// The per-chunk timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.links.timeout_ms)
    }
}

/// The virtual printer used when no rig names one.
pub fn default_printer() -> DeviceUri {
    DeviceUri::new(
        pos_link::Address::Sim {
            kind: "printer".into(),
        },
        Vec::new(),
    )
    .unwrap_or_else(|_| unreachable_uri())
}

/// The virtual reader (T=1, interrupt notifications, test card) used when no rig names one.
pub fn default_reader() -> DeviceUri {
    DeviceUri::new(
        pos_link::Address::Sim {
            kind: "ccid".into(),
        },
        vec![("level".into(), "t1".into())],
    )
    .unwrap_or_else(|_| unreachable_uri())
}

/// `sim:` URIs built from constant parts always parse; this keeps the code panic-free anyway.
fn unreachable_uri() -> DeviceUri {
    DeviceUri::new(
        pos_link::Address::Sim {
            kind: "none".into(),
        },
        Vec::new(),
    )
    .unwrap_or_else(|e| panic!("constant URI does not parse: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_rig_parses() {
        let rig = Rig::parse(include_str!("../rig.example.toml"), "rig.example.toml").unwrap();
        assert_eq!(
            rig.links.loopback,
            vec!["serial:/dev/ttyUSB0?baud=115200".to_string()]
        );
        assert_eq!(rig.timeout(), Duration::from_secs(2));
        assert_eq!(rig.loopback_uris()[0].scheme(), "serial");
    }

    #[test]
    fn bad_rigs_are_errors_that_say_where() {
        let e = Rig::parse(
            "[links]\nloopback = [\"serial:/dev/x?baud=fast\"]\n",
            "r.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("baud"), "{e}");
        let e = Rig::parse("[links]\nloopbak = []\n", "r.toml").unwrap_err();
        assert!(matches!(e, RigError::Parse { .. }), "{e}");
        assert!(e.to_string().contains("loopbak"), "{e}");
        let e = Rig::parse("[links]\ntimeout_ms = 0\n", "r.toml").unwrap_err();
        assert!(matches!(e, RigError::Invalid { .. }), "{e}");
        let e = Rig::load(Path::new("/nonexistent/rig.toml")).unwrap_err();
        assert!(matches!(e, RigError::Read { .. }), "{e}");
    }

    #[test]
    fn an_empty_rig_has_defaults() {
        let rig = Rig::parse("", "empty.toml").unwrap();
        assert!(rig.links.loopback.is_empty());
        assert_eq!(rig.links.bytes, 4096);
    }
}
