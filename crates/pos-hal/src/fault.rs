//! Fault kinds: what the service reacts to, whatever driver raised the error.

use std::fmt;
use std::str::FromStr;

/// The kind of a device fault: the part of an error the terminal service acts on.
///
/// Drivers keep rich errors and answer [`Fault::kind`] with one of these. The list is
/// `#[non_exhaustive]`; new kinds may be added in minor releases, so match with a wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FaultKind {
    /// The device went away: unplugged, powered off, peer closed the connection.
    Disconnected,
    /// The OS refused access to the device node (udev rule or group membership missing).
    PermissionDenied,
    /// No device at the given address.
    NotFound,
    /// The operation did not finish in its time limit.
    Timeout,
    /// The device is held by another process or driver, or is busy with another job.
    Busy,
    /// The device answered with bytes that do not follow the protocol.
    Protocol,
    /// The caller passed something invalid (bad URI, bad barcode data, bad APDU).
    InvalidInput,
    /// No card in the slot.
    CardAbsent,
    /// The card was removed in the middle of an operation (UnifiedPOS "torn").
    CardRemoved,
    /// A card is present but does not answer (no ATR, no response).
    CardMute,
    /// The card answered but uses something we do not support (protocol, application).
    CardUnsupported,
    /// A magnetic stripe could not be read (parity, LRC, sentinels).
    BadRead,
    /// The printer is out of paper.
    PaperOut,
    /// The printer's paper is nearly out (a warning; printing still works).
    PaperNearEnd,
    /// The printer cover is open.
    CoverOpen,
    /// The cutter is jammed or paper is jammed at the cutter.
    CutterJam,
    /// The printer is offline or stopped answering.
    PrinterOffline,
    /// The device reports an error that needs service (head fault, hardware error).
    Unrecoverable,
    /// Any other operating-system I/O error.
    Io,
}

impl FaultKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [FaultKind] = &[
        FaultKind::Disconnected,
        FaultKind::PermissionDenied,
        FaultKind::NotFound,
        FaultKind::Timeout,
        FaultKind::Busy,
        FaultKind::Protocol,
        FaultKind::InvalidInput,
        FaultKind::CardAbsent,
        FaultKind::CardRemoved,
        FaultKind::CardMute,
        FaultKind::CardUnsupported,
        FaultKind::BadRead,
        FaultKind::PaperOut,
        FaultKind::PaperNearEnd,
        FaultKind::CoverOpen,
        FaultKind::CutterJam,
        FaultKind::PrinterOffline,
        FaultKind::Unrecoverable,
        FaultKind::Io,
    ];

    /// The stable snake_case name used in JSON, logs and metrics. Never changes once released.
    pub const fn name(self) -> &'static str {
        match self {
            FaultKind::Disconnected => "disconnected",
            FaultKind::PermissionDenied => "permission_denied",
            FaultKind::NotFound => "not_found",
            FaultKind::Timeout => "timeout",
            FaultKind::Busy => "busy",
            FaultKind::Protocol => "protocol",
            FaultKind::InvalidInput => "invalid_input",
            FaultKind::CardAbsent => "card_absent",
            FaultKind::CardRemoved => "card_removed",
            FaultKind::CardMute => "card_mute",
            FaultKind::CardUnsupported => "card_unsupported",
            FaultKind::BadRead => "bad_read",
            FaultKind::PaperOut => "paper_out",
            FaultKind::PaperNearEnd => "paper_near_end",
            FaultKind::CoverOpen => "cover_open",
            FaultKind::CutterJam => "cutter_jam",
            FaultKind::PrinterOffline => "printer_offline",
            FaultKind::Unrecoverable => "unrecoverable",
            FaultKind::Io => "io",
        }
    }

    /// A short sentence for a cashier or technician: what it means and what to try.
    pub const fn advice(self) -> &'static str {
        match self {
            FaultKind::Disconnected => "device disconnected: check the cable and power",
            FaultKind::PermissionDenied => {
                "no permission to open the device: install the udev rules and add the user to group 'pos'"
            }
            FaultKind::NotFound => "no device at that address: check the URI and `posctl devices`",
            FaultKind::Timeout => "the device did not answer in time",
            FaultKind::Busy => "the device is in use by another program or kernel driver",
            FaultKind::Protocol => "the device answered with unexpected data",
            FaultKind::InvalidInput => "invalid input",
            FaultKind::CardAbsent => "no card: insert the card",
            FaultKind::CardRemoved => "card removed too early: insert it again and leave it in",
            FaultKind::CardMute => "the card does not answer: check it is inserted the right way",
            FaultKind::CardUnsupported => "card not supported",
            FaultKind::BadRead => "bad swipe: swipe again at an even speed",
            FaultKind::PaperOut => "printer out of paper: load a new roll",
            FaultKind::PaperNearEnd => "printer paper nearly out: have a roll ready",
            FaultKind::CoverOpen => "printer cover open: close it",
            FaultKind::CutterJam => "cutter or paper jam: open the cover and clear the paper",
            FaultKind::PrinterOffline => "printer offline: check power, cable and error light",
            FaultKind::Unrecoverable => "device hardware error: needs service",
            FaultKind::Io => "input/output error talking to the device",
        }
    }

    /// True for kinds caused by the card (rather than the reader or the link).
    pub const fn is_card_fault(self) -> bool {
        matches!(
            self,
            FaultKind::CardAbsent
                | FaultKind::CardRemoved
                | FaultKind::CardMute
                | FaultKind::CardUnsupported
        )
    }

    /// True for printer conditions that stop printing until someone acts
    /// (paper near end is only a warning and is not included).
    pub const fn is_printer_stop(self) -> bool {
        matches!(
            self,
            FaultKind::PaperOut
                | FaultKind::CoverOpen
                | FaultKind::CutterJam
                | FaultKind::PrinterOffline
                | FaultKind::Unrecoverable
        )
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing a [`FaultKind`] from a name that is not one of [`FaultKind::name`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFaultKind(pub String);

impl fmt::Display for UnknownFaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown fault kind {:?}", self.0)
    }
}

impl std::error::Error for UnknownFaultKind {}

impl FromStr for FaultKind {
    type Err = UnknownFaultKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownFaultKind(s.to_string()))
    }
}

impl std::error::Error for FaultKind {}

/// An error that can say what kind of fault it is.
///
/// Every driver error implements this (embedded-hal's `Error::kind()` pattern). Keep the
/// rich detail in your own type and its `source()` chain; `kind()` only classifies.
pub trait Fault: std::error::Error {
    /// The kind of fault, for the service to react to.
    fn kind(&self) -> FaultKind;
}

/// A bare [`FaultKind`] is itself an error, for code that has nothing more to say.
impl Fault for FaultKind {
    fn kind(&self) -> FaultKind {
        *self
    }
}

#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl serde::Serialize for FaultKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> serde::Deserialize<'de> for FaultKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_snake_case_and_round_trip() {
        let mut seen = HashSet::new();
        for &k in FaultKind::ALL {
            let n = k.name();
            assert!(seen.insert(n), "duplicate name {n}");
            assert!(
                n.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{n} is not snake_case"
            );
            assert_eq!(n.parse::<FaultKind>(), Ok(k));
            assert_eq!(k.to_string(), n);
            assert!(!k.advice().is_empty());
        }
        assert_eq!(seen.len(), 19, "the issue lists 19 kinds");
    }

    #[test]
    fn unknown_name_is_an_error_naming_it() {
        let err = "paper_jam".parse::<FaultKind>().unwrap_err();
        assert!(err.to_string().contains("paper_jam"));
    }

    #[test]
    fn classification_helpers() {
        assert!(FaultKind::CardRemoved.is_card_fault());
        assert!(!FaultKind::Disconnected.is_card_fault());
        assert!(FaultKind::CoverOpen.is_printer_stop());
        assert!(!FaultKind::PaperNearEnd.is_printer_stop());
        assert_eq!(FaultKind::Timeout.kind(), FaultKind::Timeout);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_uses_the_stable_name() {
        let json = serde_json::to_string(&FaultKind::PaperOut).unwrap();
        assert_eq!(json, "\"paper_out\"");
        let back: FaultKind = serde_json::from_str("\"cutter_jam\"").unwrap();
        assert_eq!(back, FaultKind::CutterJam);
        assert!(serde_json::from_str::<FaultKind>("\"nope\"").is_err());
    }
}
