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

/// What a printer model can do.
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

/// The built-in profile names, in the order of [`BUILTIN`].
const BUILTIN_NAMES: &[&str] = &["epson-tm-t20", "generic-80", "generic-58"];

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ProfileError {
    ProfileError::Invalid {
        path: None,
        field: field.into(),
        reason: reason.into(),
    }
}

impl Profile {
    /// The built-in profile called `name` (see [`builtin_names`](Profile::builtin_names)).
    pub fn builtin(name: &str) -> Option<Profile> {
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
    /// `generic-80` and `generic-58`.
    pub fn builtin_names() -> &'static [&'static str] {
        BUILTIN_NAMES
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
    fn toml_round_trip() {
        for name in Profile::builtin_names() {
            let p = Profile::builtin(name).unwrap();
            let text = p.to_toml_string().unwrap();
            assert_eq!(Profile::from_toml_str(&text).unwrap(), p);
        }
    }
}
