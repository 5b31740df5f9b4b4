//! Rig files: the real devices (and loopback links) a test rig has, by URI.

use std::path::Path;
use std::time::Duration;

use pos_link::{DeviceUri, UriError};
use pos_terminal::config::DeviceConfig;

/// The environment variable naming the rig file (the `--rig` option wins over it).
pub const RIG_ENV: &str = "POS_HIL_RIG";

/// A rig file (see `rig.example.toml`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rig {
    /// Byte links to test.
    #[serde(default)]
    pub links: LinkSection,
    /// The chip reader. Without it the reader scenarios are skipped.
    #[serde(default)]
    pub reader: Option<DeviceSection>,
    /// The receipt printer. Without it the printer scenarios are skipped.
    #[serde(default)]
    pub printer: Option<DeviceSection>,
    /// The magnetic stripe reader. Without it the swipe scenario is skipped.
    #[serde(default)]
    pub msr: Option<DeviceSection>,
    /// The acquirer host for the sale (default: a fake host on 127.0.0.1).
    #[serde(default)]
    pub host: Option<HostSection>,
}

/// A `[reader]`, `[printer]` or `[msr]` section: the device's URI.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSection {
    /// The device URI (`usb:...`, `serial:...`, `tcp:...`, `evdev:...`, `sim:...`).
    pub uri: String,
}

/// The `[host]` section: a test acquirer host instead of the built-in fake host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSection {
    /// `HOST:PORT` of an ISO 8583 test host.
    pub address: String,
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

/// Why a rig file could not be used. Every message names the file and, where there is one,
/// the key.
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
    #[error("rig file {path}: {key}: {source}")]
    Uri {
        /// The path.
        path: String,
        /// The key holding the URI (`reader.uri`, `links.loopback[0]`, ...).
        key: String,
        /// The URI error, naming the bad part.
        #[source]
        source: Box<UriError>,
    },
    /// A value is out of range.
    #[error("rig file {path}: {key}: {message}")]
    Invalid {
        /// The path.
        path: String,
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl Rig {
    /// Parse a rig from TOML text (`path` is for messages).
    ///
    /// Errors: [`RigError::Parse`] for bad TOML or unknown keys, [`RigError::Uri`] for a bad
    /// URI, [`RigError::Invalid`] for a zero timeout or byte count or a host address
    /// without a port.
    pub fn parse(text: &str, path: &str) -> Result<Self, RigError> {
        let rig: Rig = toml::from_str(text).map_err(|e| RigError::Parse {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        let mut uris: Vec<(String, &str)> = rig
            .links
            .loopback
            .iter()
            .enumerate()
            .map(|(i, u)| (format!("links.loopback[{i}]"), u.as_str()))
            .collect();
        for (name, section) in [
            ("reader", &rig.reader),
            ("printer", &rig.printer),
            ("msr", &rig.msr),
        ] {
            if let Some(d) = section {
                uris.push((format!("{name}.uri"), d.uri.as_str()));
            }
        }
        for (key, uri) in uris {
            DeviceUri::parse(uri).map_err(|source| RigError::Uri {
                path: path.to_string(),
                key,
                source: Box::new(source),
            })?;
        }
        let invalid = |key: &str, message: &str| RigError::Invalid {
            path: path.to_string(),
            key: key.to_string(),
            message: message.to_string(),
        };
        if rig.links.timeout_ms == 0 {
            return Err(invalid("links.timeout_ms", "must be above zero"));
        }
        if rig.links.bytes == 0 {
            return Err(invalid("links.bytes", "must be above zero"));
        }
        if let Some(h) = &rig.host {
            let port = h
                .address
                .rsplit_once(':')
                .map(|(host, port)| (host, port.parse::<u16>()));
            if !matches!(port, Some((host, Ok(p))) if !host.is_empty() && p != 0) {
                return Err(invalid(
                    "host.address",
                    &format!("{:?} is not HOST:PORT", h.address),
                ));
            }
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

    /// The rig named by `POS_HIL_RIG`, or `None` to use the virtual lane.
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

    /// The devices to open: the URIs the rig names, `none` for the others.
    pub fn device_config(&self) -> DeviceConfig {
        let uri = |d: &Option<DeviceSection>| {
            d.as_ref()
                .map_or_else(|| "none".to_string(), |d| d.uri.clone())
        };
        DeviceConfig {
            reader: uri(&self.reader),
            printer: uri(&self.printer),
            msr: uri(&self.msr),
            ..DeviceConfig::default()
        }
    }

    /// The per-chunk timeout of the loopback links.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.links.timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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
        let c = rig.device_config();
        assert_eq!(c.reader, "usb:08e6:3437");
        assert_eq!(c.printer, "usb:04b8:0e28");
        assert!(c.msr.starts_with("serial:"), "{}", c.msr);
        assert!(rig.host.is_none());
    }

    #[test]
    fn bad_rigs_are_errors_that_name_the_key() {
        let e = Rig::parse(
            "[links]\nloopback = [\"serial:/dev/x?baud=fast\"]\n",
            "r.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("baud"), "{e}");
        assert!(e.to_string().contains("links.loopback[0]"), "{e}");
        let e = Rig::parse("[reader]\nuri = \"usb:zzzz\"\n", "r.toml").unwrap_err();
        assert!(e.to_string().contains("reader.uri"), "{e}");
        let e = Rig::parse("[links]\nloopbak = []\n", "r.toml").unwrap_err();
        assert!(matches!(e, RigError::Parse { .. }), "{e}");
        assert!(e.to_string().contains("loopbak"), "{e}");
        let e = Rig::parse("[links]\ntimeout_ms = 0\n", "r.toml").unwrap_err();
        assert!(e.to_string().contains("links.timeout_ms"), "{e}");
        let e = Rig::parse("[host]\naddress = \"localhost\"\n", "r.toml").unwrap_err();
        assert!(e.to_string().contains("host.address"), "{e}");
        let e = Rig::load(Path::new("/nonexistent/rig.toml")).unwrap_err();
        assert!(matches!(e, RigError::Read { .. }), "{e}");
    }

    #[test]
    fn an_empty_rig_names_no_device() {
        let rig = Rig::parse("", "empty.toml").unwrap();
        assert!(rig.links.loopback.is_empty());
        assert_eq!(rig.links.bytes, 4096);
        let c = rig.device_config();
        assert_eq!(
            (c.reader.as_str(), c.printer.as_str(), c.msr.as_str()),
            ("none", "none", "none")
        );
    }
}
