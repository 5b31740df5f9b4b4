//! Receipt printers: conditions, print outcomes, the printer trait.

use crate::device::Device;
use crate::document::{CutKind, Document};
use crate::fault::FaultKind;

bitflags::bitflags! {
    /// A printer's conditions, as its status bytes report them (ESC/POS DLE EOT 1-4 and
    /// Automatic Status Back name the same bits).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct PrinterConditions: u32 {
        /// Offline (cover open, paper out, error, or the feed button held).
        const OFFLINE = 1 << 0;
        /// Cover (platen) open.
        const COVER_OPEN = 1 << 1;
        /// Paper is being fed by the feed button.
        const FEED_BUTTON = 1 << 2;
        /// Printing stopped because paper ran out.
        const PAPER_END_STOP = 1 << 3;
        /// An error occurred (see the error bits for which).
        const ERROR = 1 << 4;
        /// A recoverable error (cleared with DLE ENQ).
        const RECOVERABLE = 1 << 5;
        /// Autocutter error or paper jam at the cutter.
        const CUTTER_JAM = 1 << 6;
        /// Unrecoverable error (needs service).
        const UNRECOVERABLE = 1 << 7;
        /// Automatically recoverable error (e.g. print head too hot; clears by itself).
        const AUTO_RECOVERABLE = 1 << 8;
        /// Paper roll near its end.
        const PAPER_NEAR_END = 1 << 9;
        /// Paper out.
        const PAPER_OUT = 1 << 10;
        /// Cash drawer open (drawer kick connector pin 3 level).
        const DRAWER_OPEN = 1 << 11;
        /// Waiting to go back online (e.g. after the cover was closed).
        const WAITING_ONLINE = 1 << 12;
    }
}

impl PrinterConditions {
    const NAMES: [(PrinterConditions, &'static str); 13] = [
        (PrinterConditions::OFFLINE, "offline"),
        (PrinterConditions::COVER_OPEN, "cover_open"),
        (PrinterConditions::FEED_BUTTON, "feed_button"),
        (PrinterConditions::PAPER_END_STOP, "paper_end_stop"),
        (PrinterConditions::ERROR, "error"),
        (PrinterConditions::RECOVERABLE, "recoverable"),
        (PrinterConditions::CUTTER_JAM, "cutter_jam"),
        (PrinterConditions::UNRECOVERABLE, "unrecoverable"),
        (PrinterConditions::AUTO_RECOVERABLE, "auto_recoverable"),
        (PrinterConditions::PAPER_NEAR_END, "paper_near_end"),
        (PrinterConditions::PAPER_OUT, "paper_out"),
        (PrinterConditions::DRAWER_OPEN, "drawer_open"),
        (PrinterConditions::WAITING_ONLINE, "waiting_online"),
    ];

    /// The stable snake_case names of the set conditions (`paper_out`, `cover_open`, ...),
    /// in bit order. These are the names JSON and metrics use.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .filter(|(flag, _)| self.contains(*flag))
            .map(|(_, name)| *name)
            .collect()
    }

    /// The condition for one stable name.
    pub fn from_snake_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(f, _)| *f)
    }

    /// The condition that stops printing, as the fault kind to report, most actionable
    /// first: a jam, then an open cover, then no paper, then a hardware error, then offline
    /// for any other reason. `None` when the printer can print (paper near end and an open
    /// drawer do not stop printing).
    pub fn blocking_fault(self) -> Option<FaultKind> {
        if self.contains(Self::CUTTER_JAM) {
            Some(FaultKind::CutterJam)
        } else if self.contains(Self::COVER_OPEN) {
            Some(FaultKind::CoverOpen)
        } else if self.intersects(Self::PAPER_OUT | Self::PAPER_END_STOP) {
            Some(FaultKind::PaperOut)
        } else if self.contains(Self::UNRECOVERABLE) {
            Some(FaultKind::Unrecoverable)
        } else if self.intersects(
            Self::OFFLINE
                | Self::ERROR
                | Self::RECOVERABLE
                | Self::AUTO_RECOVERABLE
                | Self::WAITING_ONLINE,
        ) {
            Some(FaultKind::PrinterOffline)
        } else {
            None
        }
    }

    /// True when nothing stops printing.
    pub fn is_ready(self) -> bool {
        self.blocking_fault().is_none()
    }

    /// Warnings that do not stop printing (paper near end).
    pub fn warning(self) -> Option<FaultKind> {
        self.contains(Self::PAPER_NEAR_END)
            .then_some(FaultKind::PaperNearEnd)
    }
}

#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl serde::Serialize for PrinterConditions {
    /// Serialized as the list of names, e.g. `["paper_near_end", "drawer_open"]`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> serde::Deserialize<'de> for PrinterConditions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        names.iter().try_fold(PrinterConditions::empty(), |acc, n| {
            PrinterConditions::from_snake_name(n)
                .map(|f| acc | f)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown printer condition {n:?}")))
        })
    }
}

/// What is known about a print job after it was sent. Never collapse these into "ok".
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "outcome", rename_all = "snake_case"))]
pub enum PrintOutcome {
    /// The printer said the job finished (e.g. ESC/POS `GS ( H` process-ID reply).
    Confirmed,
    /// The printer cannot confirm jobs; its status was clean after the job was sent.
    StatusVerified,
    /// Bytes were sent but nothing confirms the receipt came out.
    Unconfirmed {
        /// Why it is not known (no reply, status unavailable, ...).
        reason: String,
    },
}

impl PrintOutcome {
    /// Stable snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            PrintOutcome::Confirmed => "confirmed",
            PrintOutcome::StatusVerified => "status_verified",
            PrintOutcome::Unconfirmed { .. } => "unconfirmed",
        }
    }
}

/// A receipt printer.
///
/// Timeouts: `status` and `cut` are single exchanges bounded by the driver's status timeout
/// (seconds); `recover` is its recovery sequence (bounded by the driver's write timeout and
/// settle time) and then a `status`. `print` is bounded by the job's size at the link's speed plus the driver's
/// confirmation timeout; a printer that stops answering mid-job ends in `PrinterOffline`,
/// never a hang.
pub trait ReceiptPrinter: Device {
    /// The printer's live conditions (asked of the printer, not cached).
    ///
    /// Errors: `Timeout`/`PrinterOffline` when it does not answer, `Disconnected`,
    /// `Protocol` (reply bytes do not have the status pattern).
    fn status(&mut self) -> Result<PrinterConditions, Self::Error>;

    /// Print a document and say what is known about the result.
    ///
    /// Refuses to start (nothing printed) when the live status has a blocking fault:
    /// `PaperOut`, `CoverOpen`, `CutterJam`, `PrinterOffline`, `Unrecoverable`. A fault
    /// during the job is an error of that kind, never a success; the driver's error says how
    /// far the job got. Errors also: `InvalidInput` (the document cannot be encoded, e.g. bad
    /// barcode data), `Disconnected`, `Timeout`.
    fn print(&mut self, document: &Document) -> Result<PrintOutcome, Self::Error>;

    /// Cut the paper (after feeding it past the cutter when `kind` says so).
    ///
    /// Errors: `CutterJam`, `InvalidInput` when the printer has no
    /// cutter, `PrinterOffline`, `Disconnected`, `Timeout`.
    fn cut(&mut self, kind: CutKind) -> Result<(), Self::Error>;

    /// Recover from a recoverable error (e.g. after a cutter jam was cleared or the cover
    /// closed): the driver's recovery sequence (ESC/POS: DLE ENQ 1, clear the buffer where
    /// supported, re-initialise), then the live status after it, as [`status`](Self::status).
    ///
    /// The returned conditions say whether it worked: a fault that is still there (paper
    /// still out, cutter still jammed) is in them, not an error. Bounded by the driver's write
    /// timeout plus its settle time, then the status timeout.
    ///
    /// Errors: `Disconnected` (the printer is gone: re-open it), `Timeout`/`PrinterOffline`
    /// when it does not answer the status after, `Protocol`.
    fn recover(&mut self) -> Result<PrinterConditions, Self::Error>;
}

forward_lent_and_boxed!(ReceiptPrinter {
    fn status(&mut self) -> Result<PrinterConditions, Self::Error> {
        (**self).status()
    }
    fn print(&mut self, document: &Document) -> Result<PrintOutcome, Self::Error> {
        (**self).print(document)
    }
    fn cut(&mut self, kind: CutKind) -> Result<(), Self::Error> {
        (**self).cut(kind)
    }
    fn recover(&mut self) -> Result<PrinterConditions, Self::Error> {
        (**self).recover()
    }
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_condition_has_a_unique_name() {
        let all = PrinterConditions::all();
        let names = all.names();
        assert_eq!(names.len(), PrinterConditions::all().iter().count());
        for n in &names {
            assert_eq!(
                PrinterConditions::from_snake_name(n).map(|f| f.names()),
                Some(vec![*n])
            );
        }
        for required in [
            "paper_out",
            "paper_near_end",
            "cover_open",
            "cutter_jam",
            "offline",
            "unrecoverable",
            "auto_recoverable",
            "drawer_open",
        ] {
            assert!(names.contains(&required), "{required} missing");
        }
    }

    #[test]
    fn blocking_fault_precedence() {
        use PrinterConditions as C;
        assert_eq!(C::empty().blocking_fault(), None);
        assert!(C::PAPER_NEAR_END.is_ready());
        assert_eq!(C::PAPER_NEAR_END.warning(), Some(FaultKind::PaperNearEnd));
        assert!((C::DRAWER_OPEN | C::PAPER_NEAR_END).is_ready());
        assert_eq!(
            (C::OFFLINE | C::COVER_OPEN | C::PAPER_OUT).blocking_fault(),
            Some(FaultKind::CoverOpen)
        );
        assert_eq!(
            (C::OFFLINE | C::PAPER_OUT).blocking_fault(),
            Some(FaultKind::PaperOut)
        );
        assert_eq!(
            C::PAPER_END_STOP.blocking_fault(),
            Some(FaultKind::PaperOut)
        );
        assert_eq!(
            (C::ERROR | C::CUTTER_JAM | C::COVER_OPEN).blocking_fault(),
            Some(FaultKind::CutterJam)
        );
        assert_eq!(
            (C::ERROR | C::UNRECOVERABLE).blocking_fault(),
            Some(FaultKind::Unrecoverable)
        );
        assert_eq!(
            (C::ERROR | C::AUTO_RECOVERABLE).blocking_fault(),
            Some(FaultKind::PrinterOffline)
        );
        assert_eq!(C::OFFLINE.blocking_fault(), Some(FaultKind::PrinterOffline));
    }

    #[test]
    fn outcome_names() {
        assert_eq!(PrintOutcome::Confirmed.name(), "confirmed");
        assert_eq!(PrintOutcome::StatusVerified.name(), "status_verified");
        assert_eq!(
            PrintOutcome::Unconfirmed { reason: "x".into() }.name(),
            "unconfirmed"
        );
    }

    #[cfg(feature = "serde")]
    #[test]
    fn conditions_serialize_as_names() {
        let c = PrinterConditions::PAPER_OUT | PrinterConditions::OFFLINE;
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(j, r#"["offline","paper_out"]"#);
        assert_eq!(serde_json::from_str::<PrinterConditions>(&j).unwrap(), c);
        assert!(serde_json::from_str::<PrinterConditions>(r#"["jam"]"#).is_err());
    }
}
