//! Printer profiles as data: what a printer model can do and how it numbers its code pages.
//!
//! A [`Profile`] is plain data, built in ([`Profile::builtin`]) or loaded from a TOML file
//! ([`Profile::load`]). A file looks like the built-in ones:
//!
//! ```toml
//! name = "my-printer"
//! paper_width_mm = 80
//! dots_per_line = 576
//! columns_font_a = 48
//! columns_font_b = 64
//! chinese = false
//! cutter = true
//! asb = true
//! process_id = false
//! buffer_clear = false
//! drawer_open_when_pin3_high = false
//!
//! [[code_pages]]
//! page = "cp437"
//! number = 0
//!
//! [[code_pages]]
//! page = "cp858"
//! number = 19
//! ```
//!
//! Every field is required and unknown fields are errors, so a typo cannot silently fall
//! back to a default. `code_pages` lists the single-byte pages in order of preference with
//! the printer's ESC t number for each; GB18030 is not listed there (it has no ESC t
//! number) but enabled with `chinese = true`.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pos_hal::{Fault, FaultKind, Font};
use serde::{Deserialize, Serialize};

use crate::codepage::CodePage;

/// A code page the printer has, with its ESC t number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodePageEntry {
    /// The page.
    pub page: CodePage,
    /// The printer's number for it (ESC t n). Numbers vary by vendor.
    pub number: u8,
}

/// Whether a printer has a feature: yes, no, or not known.
///
/// In TOML it is `true`, `false` or `"unknown"`. An unknown feature is never used: the
/// encoder treats it as missing and degrades (a QR code becomes an image, an image falls
/// back to another graphics command, a barcode to its text), so a printer that lacks it
/// never receives a command it would print as garbage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Support {
    /// The printer has it.
    Yes,
    /// The printer does not have it.
    No,
    /// Nobody told us (the model database is silent).
    #[default]
    Unknown,
}

impl Support {
    /// True only for [`Support::Yes`]: what the encoder may rely on.
    pub const fn is_yes(self) -> bool {
        matches!(self, Support::Yes)
    }

    /// `yes`, `no` or `unknown`.
    pub const fn name(self) -> &'static str {
        match self {
            Support::Yes => "yes",
            Support::No => "no",
            Support::Unknown => "unknown",
        }
    }

    fn yes() -> Support {
        Support::Yes
    }
}

impl From<bool> for Support {
    fn from(b: bool) -> Self {
        if b { Support::Yes } else { Support::No }
    }
}

impl fmt::Display for Support {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Support {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Support::Yes => s.serialize_bool(true),
            Support::No => s.serialize_bool(false),
            Support::Unknown => s.serialize_str("unknown"),
        }
    }
}

impl<'de> Deserialize<'de> for Support {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(b) => Ok(b.into()),
            Raw::Text(t) if t == "unknown" => Ok(Support::Unknown),
            Raw::Text(t) => Err(serde::de::Error::custom(format!(
                "expected true, false or \"unknown\", found {t:?}"
            ))),
        }
    }
}

/// A code page the model database lists for the printer but pos-escpos has no table for
/// (or whose name the database does not know): kept for reference, never used for text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtherCodePage {
    /// The database's name (`CP932`, `KATAKANA`, `Unknown`, ...).
    pub name: String,
    /// The printer's ESC t number for it.
    pub number: u8,
}

/// What a printer model can do.
///
/// The fields from `name` to `drawer_open_when_pin3_high` are required. The others came
/// with the printer-model database and may be left out of a file: the capabilities every
/// profile had before (`raster_image`, `barcode`, `qr`, `pulse`, `full_cut`, `partial_cut`)
/// then default to `true`, the rest to `"unknown"` (never used).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The profile's name (e.g. `epson-tm-t20`).
    pub name: String,
    /// Paper width in millimetres (58 or 80 for most receipt printers).
    pub paper_width_mm: u8,
    /// Printable dots per line (a multiple of 8): 576 on 80 mm, 384 on 58 mm at 203 dpi.
    pub dots_per_line: u16,
    /// Characters per line in font A at normal size.
    pub columns_font_a: u16,
    /// Characters per line in font B at normal size.
    pub columns_font_b: u16,
    /// Single-byte code pages in order of preference, with their ESC t numbers.
    pub code_pages: Vec<CodePageEntry>,
    /// GB18030 text in Chinese character mode (FS & / FS .).
    pub chinese: bool,
    /// An auto-cutter is fitted (GS V works).
    pub cutter: bool,
    /// Automatic Status Back (GS a) is supported.
    pub asb: bool,
    /// Process-ID responses (GS ( H fn=48) are supported, so a job's completion can be
    /// confirmed.
    pub process_id: bool,
    /// DLE DC4 fn=8 (clear buffers) is supported.
    pub buffer_clear: bool,
    /// A HIGH level on drawer connector pin 3 (DLE EOT 1, bit 2 set) means the drawer is
    /// open. This depends on the drawer, not only on the printer.
    pub drawer_open_when_pin3_high: bool,
    /// The maker, as the model database names it (`Epson`, `Rongta`, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vendor: String,
    /// The model, as the model database names it (`TM-T20III`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    /// Where the profile comes from (`escpos-printer-db TM-T20III`), empty for hand-written
    /// ones.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Model names that identify this printer in an IEEE 1284 Device ID (`MDL:`) or a GS I
    /// model-name reply; compared without case, spaces or punctuation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detect: Vec<String>,
    /// Full cut (GS V 0 / 65). Without it a full cut is made partial, or a paper feed.
    #[serde(default = "Support::yes")]
    pub full_cut: Support,
    /// Partial cut (GS V 1 / 66). Without it a partial cut is made full, or a paper feed.
    #[serde(default = "Support::yes")]
    pub partial_cut: Support,
    /// Raster bit images (GS v 0).
    #[serde(default = "Support::yes")]
    pub raster_image: Support,
    /// Column bit images (ESC *, 24-dot double density).
    #[serde(default)]
    pub column_image: Support,
    /// Graphics (GS ( L: store in the print buffer, then print).
    #[serde(default)]
    pub graphics: Support,
    /// One-dimensional barcodes (GS k, function B).
    #[serde(default = "Support::yes")]
    pub barcode: Support,
    /// QR codes (GS ( k, function 165-181).
    #[serde(default = "Support::yes")]
    pub qr: Support,
    /// Drawer kick pulse (ESC p).
    #[serde(default = "Support::yes")]
    pub pulse: Support,
    /// Real-time status (DLE EOT n).
    #[serde(default)]
    pub dle_eot: Support,
    /// Transmit status (GS r).
    #[serde(default)]
    pub gs_r: Support,
    /// Transmit printer ID (GS I).
    #[serde(default)]
    pub gs_i: Support,
    /// Fields whose value is a safe assumption because the source said nothing
    /// (`chinese`, `asb`, `dots_per_line`, ...): shown as "unknown".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assumed: Vec<String>,
    /// Code pages the database lists without a table here: never used for text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_code_pages: Vec<OtherCodePage>,
}

/// A profile that could not be read, parsed or accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The file could not be read.
    #[error("printer profile {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed, a field is missing or unknown, or a value has the wrong type
    /// (the message names the field and the line).
    #[error("printer profile{}: {source}", Origin(path.as_deref()))]
    Parse {
        /// The file, when loaded from one.
        path: Option<PathBuf>,
        /// The cause.
        #[source]
        source: toml::de::Error,
    },
    /// A field holds a value the profile cannot have.
    #[error("printer profile{}: field `{field}`: {reason}", Origin(path.as_deref()))]
    Invalid {
        /// The file, when loaded from one.
        path: Option<PathBuf>,
        /// The field, e.g. `dots_per_line` or `code_pages[1].number`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Formats " <path>" or nothing.
struct Origin<'a>(Option<&'a Path>);

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, " {}", p.display()),
            None => Ok(()),
        }
    }
}

impl ProfileError {
    fn with_path(self, path: &Path) -> Self {
        match self {
            ProfileError::Parse { source, .. } => ProfileError::Parse {
                path: Some(path.to_owned()),
                source,
            },
            ProfileError::Invalid { field, reason, .. } => ProfileError::Invalid {
                path: Some(path.to_owned()),
                field,
                reason,
            },
            other => other,
        }
    }
}

impl Fault for ProfileError {
    fn kind(&self) -> FaultKind {
        match self {
            ProfileError::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => FaultKind::NotFound,
                std::io::ErrorKind::PermissionDenied => FaultKind::PermissionDenied,
                _ => FaultKind::Io,
            },
            ProfileError::Parse { .. } | ProfileError::Invalid { .. } => FaultKind::InvalidInput,
        }
    }
}

/// The built-in profiles: name and TOML text.
const BUILTIN: &[(&str, &str)] = &[
    ("epson-tm-t20", include_str!("profiles/epson-tm-t20.toml")),
    ("generic-80", include_str!("profiles/generic-80.toml")),
    ("generic-58", include_str!("profiles/generic-58.toml")),
];

/// The hand-written built-in profile names, in the order of [`BUILTIN`].
const BUILTIN_NAMES: &[&str] = &["epson-tm-t20", "generic-80", "generic-58"];

/// The printer-model database: generated by `data/regen-models.py` from
/// escpos-printer-db (CC BY 4.0); see `data/README.md`.
const MODELS_TOML: &str = include_str!("../data/models.toml");

/// The file form of [`MODELS_TOML`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    source_commit: String,
    profile: Vec<Profile>,
}

/// The model database, parsed once. A profile that does not validate is left out and
/// logged (a unit test makes sure none is).
fn models() -> &'static [Profile] {
    static MODELS: OnceLock<Vec<Profile>> = OnceLock::new();
    MODELS.get_or_init(|| match parse_models(MODELS_TOML) {
        Ok(m) => m,
        Err(e) => {
            log::error!("the printer-model database is broken: {e}");
            Vec::new()
        }
    })
}

fn parse_models(text: &str) -> Result<Vec<Profile>, ProfileError> {
    let file: ModelFile =
        toml::from_str(text).map_err(|source| ProfileError::Parse { path: None, source })?;
    log::trace!(
        "printer-model database from escpos-printer-db {}",
        file.source_commit
    );
    for p in &file.profile {
        p.validate()?;
    }
    Ok(file.profile)
}

/// Every profile name: the hand-written ones, then the model database's.
fn all_names() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        BUILTIN_NAMES
            .iter()
            .copied()
            .chain(models().iter().map(|p| p.name.as_str()))
            .collect()
    })
}

/// A model name reduced for comparison: upper case, letters and digits only
/// (`TM-T20III` and `tm t20 iii` are the same).
pub fn normalize_model(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ProfileError {
    ProfileError::Invalid {
        path: None,
        field: field.into(),
        reason: reason.into(),
    }
}

impl Profile {
    /// The built-in profile called `name` (see [`builtin_names`](Profile::builtin_names)):
    /// a hand-written one or a model from the printer-model database.
    pub fn builtin(name: &str) -> Option<Profile> {
        if let Some(p) = models().iter().find(|p| p.name == name) {
            return Some(p.clone());
        }
        let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
        match Profile::from_toml_str(text) {
            Ok(p) => Some(p),
            Err(e) => {
                // Cannot happen: a unit test parses every built-in profile.
                log::error!("built-in printer profile {name} is broken: {e}");
                None
            }
        }
    }

    /// The names of the built-in profiles: `epson-tm-t20` (Epson TM-T20/TM-T88 class),
    /// `generic-80` and `generic-58`, then the printer-model database's (`epson-tm-t20iii`,
    /// `rongta-rp326`, `star-tsp600`, ...).
    pub fn builtin_names() -> &'static [&'static str] {
        all_names()
    }

    /// The printer-model database (imported from escpos-printer-db): one profile per model.
    pub fn models() -> &'static [Profile] {
        models()
    }

    /// The model-database profile whose [`detect`](Profile::detect) names match `model`
    /// (an IEEE 1284 `MDL:` value or a GS I model name), compared after
    /// [`normalize_model`]. An exact match wins; otherwise the longest detect name the
    /// model begins with (`TM-T20III-012` is a `TM-T20III`). `None` when nothing matches.
    pub fn for_model(model: &str) -> Option<Profile> {
        let want = normalize_model(model);
        if want.is_empty() {
            return None;
        }
        let mut best: Option<(usize, &Profile)> = None;
        for p in models() {
            for d in &p.detect {
                let d = normalize_model(d);
                if d.is_empty() {
                    continue;
                }
                let score = if d == want {
                    usize::MAX
                } else if want.starts_with(&d) {
                    d.len()
                } else {
                    continue;
                };
                if best.is_none_or(|(s, _)| score > s) {
                    best = Some((score, p));
                }
            }
        }
        best.map(|(_, p)| p.clone())
    }

    /// What is known of a boolean field: `Unknown` when it is listed in
    /// [`assumed`](Profile::assumed), else its value.
    pub fn known(&self, field: &str, value: bool) -> Support {
        if self.assumed.iter().any(|a| a == field) {
            Support::Unknown
        } else {
            value.into()
        }
    }

    /// The capabilities in words, for `posctl printer info` and the model table: each
    /// `(what, yes/no/unknown)`.
    pub fn capabilities(&self) -> Vec<(&'static str, Support)> {
        vec![
            ("cutter", self.known("cutter", self.cutter)),
            ("full cut", self.full_cut),
            ("partial cut", self.partial_cut),
            ("raster image (GS v 0)", self.raster_image),
            ("column image (ESC *)", self.column_image),
            ("graphics (GS ( L)", self.graphics),
            ("barcode (GS k)", self.barcode),
            ("QR code (GS ( k)", self.qr),
            ("drawer pulse (ESC p)", self.pulse),
            ("Chinese font (FS &)", self.known("chinese", self.chinese)),
            ("real-time status (DLE EOT)", self.dle_eot),
            ("transmit status (GS r)", self.gs_r),
            ("printer ID (GS I)", self.gs_i),
            ("ASB (GS a)", self.known("asb", self.asb)),
            (
                "process ID (GS ( H)",
                self.known("process_id", self.process_id),
            ),
        ]
    }

    /// Reads and validates a TOML profile file.
    ///
    /// # Errors
    ///
    /// [`ProfileError::Io`] when the file cannot be read, [`ProfileError::Parse`] for bad
    /// TOML or missing/unknown/mistyped fields, [`ProfileError::Invalid`] for values the
    /// profile cannot have; each names the file.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: path.to_owned(),
            source,
        })?;
        Profile::from_toml_str(&text).map_err(|e| e.with_path(path))
    }

    /// Parses and validates a TOML profile.
    ///
    /// # Errors
    ///
    /// As [`load`](Profile::load), without a file name.
    pub fn from_toml_str(text: &str) -> Result<Profile, ProfileError> {
        let profile: Profile =
            toml::from_str(text).map_err(|source| ProfileError::Parse { path: None, source })?;
        profile.validate()?;
        Ok(profile)
    }

    /// The profile as TOML (the format [`from_toml_str`](Profile::from_toml_str) reads).
    ///
    /// # Errors
    ///
    /// None in practice: every field has a TOML form. The error is toml's.
    pub fn to_toml_string(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// Checks the values: a name, non-zero widths, `dots_per_line` a multiple of 8, code
    /// pages and their numbers each listed once, GB18030 only through `chinese`, and at least
    /// one way to print text.
    ///
    /// # Errors
    ///
    /// [`ProfileError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), ProfileError> {
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        if self.paper_width_mm == 0 {
            return Err(invalid("paper_width_mm", "must be greater than 0"));
        }
        if self.dots_per_line == 0 || self.dots_per_line % 8 != 0 {
            return Err(invalid(
                "dots_per_line",
                format!(
                    "{} is not a positive multiple of 8 (raster rows are whole bytes)",
                    self.dots_per_line
                ),
            ));
        }
        if self.columns_font_a == 0 {
            return Err(invalid("columns_font_a", "must be greater than 0"));
        }
        if self.columns_font_b == 0 {
            return Err(invalid("columns_font_b", "must be greater than 0"));
        }
        let mut pages = HashSet::new();
        let mut numbers = HashSet::new();
        for (i, entry) in self.code_pages.iter().enumerate() {
            if entry.page.is_multibyte() {
                return Err(invalid(
                    format!("code_pages[{i}].page"),
                    format!(
                        "{} has no ESC t number; set `chinese = true` instead",
                        entry.page
                    ),
                ));
            }
            if !pages.insert(entry.page) {
                return Err(invalid(
                    format!("code_pages[{i}].page"),
                    format!("{} is listed twice", entry.page),
                ));
            }
            if !numbers.insert(entry.number) {
                return Err(invalid(
                    format!("code_pages[{i}].number"),
                    format!("{} is used by two code pages", entry.number),
                ));
            }
        }
        for (i, other) in self.other_code_pages.iter().enumerate() {
            if !numbers.insert(other.number) {
                return Err(invalid(
                    format!("other_code_pages[{i}].number"),
                    format!("{} is used by two code pages", other.number),
                ));
            }
        }
        if self.code_pages.is_empty() && !self.chinese {
            return Err(invalid(
                "code_pages",
                "empty: list at least one code page (or set `chinese = true`)",
            ));
        }
        Ok(())
    }

    /// The ESC t number of `page`, if the printer has it.
    pub fn code_page_number(&self, page: CodePage) -> Option<u8> {
        self.code_pages
            .iter()
            .find(|e| e.page == page)
            .map(|e| e.number)
    }

    /// The pages text may be printed in, in order of preference: the listed single-byte
    /// pages, then GB18030 when the printer has Chinese mode.
    pub fn text_pages(&self) -> Vec<CodePage> {
        let mut pages: Vec<CodePage> = self.code_pages.iter().map(|e| e.page).collect();
        if self.chinese {
            pages.push(CodePage::Gb18030);
        }
        pages
    }

    /// Characters per line in `font` at normal size.
    pub fn columns(&self, font: Font) -> u16 {
        match font {
            Font::A => self.columns_font_a,
            Font::B => self.columns_font_b,
        }
    }

    /// Bytes per raster row at full width (`dots_per_line / 8`).
    pub fn raster_width_bytes(&self) -> u16 {
        self.dots_per_line / 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_parses_and_validates() {
        assert_eq!(BUILTIN.len(), BUILTIN_NAMES.len());
        for (name, text) in BUILTIN {
            assert!(BUILTIN_NAMES.contains(name));
            let p = Profile::from_toml_str(text).unwrap();
            assert_eq!(&p.name, name, "file name and `name` agree");
        }
    }

    #[test]
    fn every_model_loads_and_round_trips() {
        let models = parse_models(MODELS_TOML).unwrap();
        assert!(models.len() >= 40, "{} models", models.len());
        assert_eq!(Profile::models().len(), models.len());
        for m in &models {
            let loaded = Profile::builtin(&m.name).unwrap();
            assert_eq!(&loaded, m);
            assert!(!m.code_pages.is_empty(), "{}", m.name);
            assert!(!m.detect.is_empty(), "{}", m.name);
            let text = m.to_toml_string().unwrap();
            assert_eq!(&Profile::from_toml_str(&text).unwrap(), m, "{}", m.name);
        }
        let names = Profile::builtin_names();
        let unique: HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "profile names are unique");
    }

    #[test]
    fn models_are_found_by_model_name() {
        assert_eq!(
            Profile::for_model("TM-T20III").map(|p| p.name),
            Some("epson-tm-t20iii".into())
        );
        assert_eq!(
            Profile::for_model("tm t20 ii").map(|p| p.name),
            Some("epson-tm-t20ii".into())
        );
        assert_eq!(
            Profile::for_model("RP326-USE").map(|p| p.name),
            Some("rongta-rp326".into())
        );
        assert_eq!(Profile::for_model("XP-80T"), None);
        assert_eq!(Profile::for_model(""), None);
    }

    #[test]
    fn unknown_is_read_and_written() {
        let mut p = Profile::builtin("generic-58").unwrap();
        p.qr = Support::Unknown;
        let text = p.to_toml_string().unwrap();
        assert!(text.contains("qr = \"unknown\""), "{text}");
        assert_eq!(Profile::from_toml_str(&text).unwrap().qr, Support::Unknown);
        let bad = text.replace("qr = \"unknown\"", "qr = \"maybe\"");
        assert!(Profile::from_toml_str(&bad).is_err());
    }

    #[test]
    fn toml_round_trip() {
        for name in Profile::builtin_names() {
            let p = Profile::builtin(name).unwrap();
            let text = p.to_toml_string().unwrap();
            assert_eq!(Profile::from_toml_str(&text).unwrap(), p);
        }
    }
}
