//! Structured health reports (UnifiedPOS `CheckHealth`).

use std::fmt;

use crate::fault::FaultKind;

/// How far a health check goes (UnifiedPOS CheckHealth levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum HealthLevel {
    /// Checks inside the driver, with at most a status request to the device.
    Internal,
    /// Exercises the device itself.
    External,
    /// Also checks that need a person watching or acting.
    Interactive,
}

/// The outcome of one check, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum CheckOutcome {
    /// Not run (not applicable at this level, or a check it depends on failed).
    Skipped,
    /// Passed.
    Pass,
    /// Works, but needs attention soon (e.g. paper near end).
    Warn,
    /// Failed.
    Fail,
}

impl CheckOutcome {
    /// Stable snake_case name.
    pub const fn name(self) -> &'static str {
        match self {
            CheckOutcome::Skipped => "skipped",
            CheckOutcome::Pass => "pass",
            CheckOutcome::Warn => "warn",
            CheckOutcome::Fail => "fail",
        }
    }
}

/// One check: what was checked, how it went, and the detail a technician needs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HealthCheck {
    /// Short stable name, e.g. `link_open`, `status`, `paper`, `atr`.
    pub name: String,
    /// How it went.
    pub outcome: CheckOutcome,
    /// What was seen, in words (never card data).
    pub detail: String,
    /// The fault kind behind a `Warn` or `Fail`, if there is one.
    pub fault: Option<FaultKind>,
}

/// The result of [`Device::check_health`](crate::Device::check_health): a list of checks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HealthReport {
    /// The device's URI.
    pub device: String,
    /// The level that was run.
    pub level: HealthLevel,
    /// The checks, in the order they ran.
    pub checks: Vec<HealthCheck>,
}

impl HealthReport {
    /// An empty report for `device` at `level`.
    pub fn new(device: impl Into<String>, level: HealthLevel) -> Self {
        HealthReport {
            device: device.into(),
            level,
            checks: Vec::new(),
        }
    }

    /// Add a passed check.
    pub fn pass(&mut self, name: &str, detail: impl Into<String>) -> &mut Self {
        self.push(name, CheckOutcome::Pass, detail, None)
    }

    /// Add a warning with its fault kind.
    pub fn warn(&mut self, name: &str, fault: FaultKind, detail: impl Into<String>) -> &mut Self {
        self.push(name, CheckOutcome::Warn, detail, Some(fault))
    }

    /// Add a failed check with its fault kind.
    pub fn fail(&mut self, name: &str, fault: FaultKind, detail: impl Into<String>) -> &mut Self {
        self.push(name, CheckOutcome::Fail, detail, Some(fault))
    }

    /// Add a skipped check, saying why.
    pub fn skip(&mut self, name: &str, why: impl Into<String>) -> &mut Self {
        self.push(name, CheckOutcome::Skipped, why, None)
    }

    fn push(
        &mut self,
        name: &str,
        outcome: CheckOutcome,
        detail: impl Into<String>,
        fault: Option<FaultKind>,
    ) -> &mut Self {
        self.checks.push(HealthCheck {
            name: name.to_string(),
            outcome,
            detail: detail.into(),
            fault,
        });
        self
    }

    /// The worst outcome of any check (`Skipped` for an empty report).
    pub fn overall(&self) -> CheckOutcome {
        self.checks
            .iter()
            .map(|c| c.outcome)
            .max()
            .unwrap_or(CheckOutcome::Skipped)
    }

    /// True when no check failed and at least one passed or warned.
    pub fn healthy(&self) -> bool {
        matches!(self.overall(), CheckOutcome::Pass | CheckOutcome::Warn)
    }

    /// The failed and warned checks, worst first.
    pub fn problems(&self) -> Vec<&HealthCheck> {
        let mut v: Vec<&HealthCheck> = self
            .checks
            .iter()
            .filter(|c| matches!(c.outcome, CheckOutcome::Warn | CheckOutcome::Fail))
            .collect();
        v.sort_by_key(|c| std::cmp::Reverse(c.outcome));
        v
    }
}

impl fmt::Display for HealthReport {
    /// A table a technician can read: one line per check.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} ({:?} health check): {}",
            self.device,
            self.level,
            self.overall().name()
        )?;
        for c in &self.checks {
            write!(f, "  [{:<7}] {:<16} {}", c.outcome.name(), c.name, c.detail)?;
            if let Some(k) = c.fault {
                write!(f, " ({k}: {})", k.advice())?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overall_is_the_worst_outcome() {
        let mut r = HealthReport::new("sim:printer", HealthLevel::External);
        assert_eq!(r.overall(), CheckOutcome::Skipped);
        assert!(!r.healthy(), "an empty report proves nothing");
        r.pass("link_open", "ok");
        assert!(r.healthy());
        r.warn("paper", FaultKind::PaperNearEnd, "near end sensor on");
        assert_eq!(r.overall(), CheckOutcome::Warn);
        assert!(r.healthy());
        r.fail("cover", FaultKind::CoverOpen, "cover open");
        r.skip("print", "cover open");
        assert_eq!(r.overall(), CheckOutcome::Fail);
        assert!(!r.healthy());
        let problems = r.problems();
        assert_eq!(problems[0].name, "cover");
        assert_eq!(problems[1].name, "paper");
        let text = r.to_string();
        assert!(
            text.contains("cover_open: printer cover open: close it"),
            "{text}"
        );
        assert!(
            text.starts_with("sim:printer (External health check): fail"),
            "{text}"
        );
    }
}
