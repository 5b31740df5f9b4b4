//! Which printer is this? The IEEE 1284 Device ID (USB printer class GET_DEVICE_ID, or the
//! usblp device-ID ioctl) and GS I replies, matched against the printer-model database.
//!
//! ```
//! use pos_escpos::detect::{DeviceId, choose_profile};
//!
//! let id = DeviceId::parse_reply(b"\x00\x2cMFG:EPSON;CMD:ESCPOS;MDL:TM-T20III;CLS:PRINTER;")
//!     .expect("a device ID");
//! assert_eq!(id.model.as_deref(), Some("TM-T20III"));
//! let d = choose_profile(id.manufacturer.as_deref(), id.model.as_deref(), "IEEE 1284 device ID");
//! assert_eq!(d.profile.name, "epson-tm-t20iii");
//! ```
//!
//! Parsers here take bytes from devices and never panic, whatever the bytes (property
//! tests in `tests/detect_props.rs`).

use std::fmt;

use crate::profile::Profile;
use crate::status::PrinterId;

/// The longest device ID kept (the USB printer class length field allows 65535; real ones
/// are a few hundred bytes).
pub const MAX_DEVICE_ID: usize = 1024;

/// An IEEE 1284 Device ID: `KEY:value;` pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeviceId {
    /// `MFG` / `MANUFACTURER`.
    pub manufacturer: Option<String>,
    /// `MDL` / `MODEL`.
    pub model: Option<String>,
    /// `CMD` / `COMMAND SET`, split at commas.
    pub command_set: Vec<String>,
    /// `CLS` / `CLASS`.
    pub class: Option<String>,
    /// `DES` / `DESCRIPTION`.
    pub description: Option<String>,
    /// Every pair in order, keys upper-cased (including the ones above).
    pub pairs: Vec<(String, String)>,
}

/// A device ID that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceIdError {
    /// Fewer than the two length bytes.
    #[error("device ID reply of {0} byte(s): shorter than its length field")]
    Short(usize),
    /// No `KEY:value` pair at all.
    #[error("device ID has no KEY:value pair")]
    NoPairs,
}

impl DeviceId {
    /// Parses a USB printer class GET_DEVICE_ID reply: a two-byte big-endian length that
    /// counts itself, then the ID. A length larger than the reply (a truncated read) or
    /// smaller than 2 uses what was received; at most [`MAX_DEVICE_ID`] bytes are read.
    ///
    /// # Errors
    ///
    /// [`DeviceIdError`] for fewer than 2 bytes or no pair.
    pub fn parse_reply(reply: &[u8]) -> Result<DeviceId, DeviceIdError> {
        let (Some(&hi), Some(&lo)) = (reply.first(), reply.get(1)) else {
            return Err(DeviceIdError::Short(reply.len()));
        };
        let declared = usize::from(u16::from_be_bytes([hi, lo]));
        let body = reply.get(2..).unwrap_or_default();
        let len = declared
            .saturating_sub(2)
            .min(body.len())
            .min(MAX_DEVICE_ID);
        let body = if declared < 2 {
            body
        } else {
            body.get(..len).unwrap_or(body)
        };
        DeviceId::parse(body)
    }

    /// Parses the ID text itself (no length field): `KEY:value;` pairs, keys compared
    /// without case, values trimmed; bytes that are not printable ASCII read as U+FFFD.
    ///
    /// # Errors
    ///
    /// [`DeviceIdError::NoPairs`].
    pub fn parse(text: &[u8]) -> Result<DeviceId, DeviceIdError> {
        let text = text.get(..MAX_DEVICE_ID).unwrap_or(text);
        let text: String = text
            .iter()
            .map(|&b| match b {
                0x20..=0x7E => char::from(b),
                b'\t' | b'\r' | b'\n' => ' ',
                _ => char::REPLACEMENT_CHARACTER,
            })
            .collect();
        let mut id = DeviceId::default();
        for field in text.split(';') {
            let Some((key, value)) = field.split_once(':') else {
                continue;
            };
            let key = key.trim().to_ascii_uppercase();
            let value = value.trim().to_string();
            if key.is_empty() {
                continue;
            }
            let keep = (!value.is_empty()).then(|| value.clone());
            match key.as_str() {
                "MFG" | "MANUFACTURER" => id.manufacturer = id.manufacturer.or(keep),
                "MDL" | "MODEL" => id.model = id.model.or(keep),
                "CLS" | "CLASS" => id.class = id.class.or(keep),
                "DES" | "DESCRIPTION" => id.description = id.description.or(keep),
                "CMD" | "COMMAND SET" if id.command_set.is_empty() => {
                    id.command_set = value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect();
                }
                _ => {}
            }
            id.pairs.push((key, value));
        }
        if id.pairs.is_empty() {
            return Err(DeviceIdError::NoPairs);
        }
        Ok(id)
    }

    /// Whether the command set names ESC/POS (`ESCPOS`, `ESC/POS`, `ESC POS`).
    pub fn speaks_escpos(&self) -> bool {
        self.command_set.iter().any(|c| {
            let n: String = c
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
                .to_ascii_uppercase();
            n.starts_with("ESCPOS")
        })
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.pairs.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        f.write_str(&parts.join(";"))
    }
}

/// What detection found and which profile it chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// Where the identity came from: `IEEE 1284 device ID`, `GS I`, or `nothing`.
    pub source: String,
    /// The maker the printer gave.
    pub maker: Option<String>,
    /// The model the printer gave.
    pub model: Option<String>,
    /// The profile chosen.
    pub profile: Profile,
    /// Why that profile: a database match, a vendor fallback, or the generic default.
    pub reason: String,
}

/// The profile for a printer that says it is `maker` `model`: the model database entry
/// whose detect names match the model (or the maker and model together); else, by maker,
/// `epson-tm-t20` for Epson and `generic-80` for anything else. `source` is recorded.
pub fn choose_profile(maker: Option<&str>, model: Option<&str>, source: &str) -> Detection {
    let maker = maker.map(str::trim).filter(|s| !s.is_empty());
    let model = model.map(str::trim).filter(|s| !s.is_empty());
    let mut candidates: Vec<String> = Vec::new();
    if let Some(m) = model {
        candidates.push(m.to_string());
        // "EPSON TM-T20III" or "TM-T20III" with the maker in front.
        if let Some(mk) = maker {
            for prefix in [mk, mk.split_whitespace().next().unwrap_or(mk)] {
                if let Some(rest) = m
                    .get(..prefix.len())
                    .filter(|p| p.eq_ignore_ascii_case(prefix))
                    .and_then(|_| m.get(prefix.len()..))
                {
                    candidates.push(rest.trim().to_string());
                }
            }
        }
    }
    for c in &candidates {
        if let Some(p) = Profile::for_model(c) {
            let reason = format!(
                "model {c:?} is {} {} in the model database",
                p.vendor, p.model
            );
            return Detection {
                source: source.to_string(),
                maker: maker.map(str::to_string),
                model: model.map(str::to_string),
                profile: p,
                reason,
            };
        }
    }
    let epson = maker.is_some_and(|m| m.to_ascii_uppercase().contains("EPSON"));
    let (name, reason) = match (model, epson) {
        (_, true) => (
            "epson-tm-t20",
            "an Epson model the database does not list: the Epson TM-T20/T88 class profile",
        ),
        (Some(_), false) => (
            "generic-80",
            "a model the database does not list: the generic 80 mm profile",
        ),
        (None, false) => (
            "generic-80",
            "the printer did not say what it is: the generic 80 mm profile",
        ),
    };
    let profile = Profile::builtin(name).unwrap_or_else(|| fallback_profile(name));
    Detection {
        source: source.to_string(),
        maker: maker.map(str::to_string),
        model: model.map(str::to_string),
        profile,
        reason: reason.to_string(),
    }
}

/// Detection from a GS I identity (maker GS I 66, model name GS I 67).
pub fn from_printer_id(id: &PrinterId) -> Detection {
    let source = if id.model.is_some() || id.maker.is_some() {
        "GS I"
    } else {
        "nothing (GS I unanswered)"
    };
    choose_profile(id.maker.as_deref(), id.model.as_deref(), source)
}

/// Detection from an IEEE 1284 device ID.
pub fn from_device_id(id: &DeviceId) -> Detection {
    let mut d = choose_profile(
        id.manufacturer.as_deref(),
        id.model.as_deref(),
        "IEEE 1284 device ID",
    );
    if !id.command_set.is_empty() && !id.speaks_escpos() {
        d.reason.push_str(&format!(
            " (note: its command set {:?} does not name ESC/POS)",
            id.command_set.join(",")
        ));
    }
    d
}

/// A minimal 80 mm profile, used only if a built-in one failed to load (a unit test makes
/// sure they all load).
fn fallback_profile(name: &str) -> Profile {
    log::error!("built-in printer profile {name} did not load; using a minimal 80 mm profile");
    Profile {
        name: name.to_string(),
        paper_width_mm: 80,
        dots_per_line: 576,
        columns_font_a: 48,
        columns_font_b: 64,
        code_pages: vec![crate::profile::CodePageEntry {
            page: crate::codepage::CodePage::Cp437,
            number: 0,
        }],
        chinese: false,
        cutter: false,
        asb: false,
        process_id: false,
        buffer_clear: false,
        drawer_open_when_pin3_high: false,
        vendor: String::new(),
        model: String::new(),
        source: String::new(),
        detect: Vec::new(),
        full_cut: crate::profile::Support::Unknown,
        partial_cut: crate::profile::Support::Unknown,
        raster_image: crate::profile::Support::Unknown,
        column_image: crate::profile::Support::Unknown,
        graphics: crate::profile::Support::Unknown,
        barcode: crate::profile::Support::Unknown,
        qr: crate::profile::Support::Unknown,
        pulse: crate::profile::Support::Unknown,
        dle_eot: crate::profile::Support::Unknown,
        gs_r: crate::profile::Support::Unknown,
        gs_i: crate::profile::Support::Unknown,
        assumed: Vec::new(),
        other_code_pages: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_of_real_shapes() {
        let id = DeviceId::parse_reply(
            b"\x00\x4aMFG:EPSON;CMD:ESCPL2,BDC,D4,ESC/POS;MDL:TM-T88V;CLS:PRINTER;DES:EPSON TM-T88V;",
        )
        .unwrap();
        assert_eq!(id.manufacturer.as_deref(), Some("EPSON"));
        assert_eq!(id.model.as_deref(), Some("TM-T88V"));
        assert!(id.speaks_escpos());
        assert_eq!(id.class.as_deref(), Some("PRINTER"));
        assert_eq!(from_device_id(&id).profile.name, "epson-tm-t88v");

        let id =
            DeviceId::parse(b"MANUFACTURER:Xprinter;COMMAND SET:ESC/POS;MODEL:XP-80T").unwrap();
        let d = from_device_id(&id);
        assert_eq!(d.profile.name, "generic-80");
        assert!(d.reason.contains("does not list"), "{}", d.reason);

        let d = choose_profile(Some("EPSON"), Some("EPSON TM-T20III"), "GS I");
        assert_eq!(d.profile.name, "epson-tm-t20iii");
        let d = choose_profile(Some("EPSON"), Some("TM-X9"), "GS I");
        assert_eq!(d.profile.name, "epson-tm-t20");
        let d = choose_profile(None, None, "nothing");
        assert_eq!(d.profile.name, "generic-80");
    }

    #[test]
    fn short_or_empty_device_ids_are_errors() {
        assert_eq!(DeviceId::parse_reply(b""), Err(DeviceIdError::Short(0)));
        assert_eq!(DeviceId::parse_reply(b"\x00"), Err(DeviceIdError::Short(1)));
        assert_eq!(
            DeviceId::parse_reply(b"\x00\x02"),
            Err(DeviceIdError::NoPairs)
        );
        // A length longer than the data: what arrived is used.
        let id = DeviceId::parse_reply(b"\xff\xffMDL:RP326").unwrap();
        assert_eq!(id.model.as_deref(), Some("RP326"));
    }

    #[test]
    fn fallback_profile_is_valid() {
        assert!(fallback_profile("x").validate().is_ok());
    }
}
