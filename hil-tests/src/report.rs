//! What a suite run found: one [`CaseReport`] per scenario, the human lines and the exit
//! code.

use std::time::Duration;

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every expectation held.
    Pass,
    /// An expectation did not hold.
    Fail {
        /// What went wrong.
        message: String,
        /// What to check or do about it, when known.
        hint: Option<String>,
    },
    /// The case did not run (device not on the rig, step declined, virtual only...).
    Skip {
        /// Why.
        reason: String,
    },
}

/// The result of one scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseReport {
    /// The scenario's name, `group.case` (`reader.apdu_exchange`).
    pub name: String,
    /// How it ended.
    pub verdict: Verdict,
    /// How long it took.
    pub duration: Duration,
    /// What it did, one line per step (no card data: PANs are masked).
    pub steps: Vec<String>,
}

impl CaseReport {
    /// The group: the part of the name before the first dot (`reader`).
    pub fn group(&self) -> &str {
        self.name.split_once('.').map_or("hil", |(g, _)| g)
    }

    /// The name within the group (`apdu_exchange`).
    pub fn short_name(&self) -> &str {
        self.name.split_once('.').map_or(&self.name, |(_, n)| n)
    }

    /// The human line: `PASS reader.atr (3 ms)`, `FAIL name (5 ms): why (hint: ...)`,
    /// `SKIP name: why`.
    pub fn line(&self) -> String {
        let ms = self.duration.as_millis();
        match &self.verdict {
            Verdict::Pass => format!("PASS {} ({ms} ms)", self.name),
            Verdict::Fail { message, hint } => match hint {
                Some(h) => format!("FAIL {} ({ms} ms): {message} (hint: {h})", self.name),
                None => format!("FAIL {} ({ms} ms): {message}", self.name),
            },
            Verdict::Skip { reason } => format!("SKIP {}: {reason}", self.name),
        }
    }
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteReport {
    /// What the suite ran against: `virtual lane` or `rig FILE`.
    pub target: String,
    /// The cases, in the order they ran.
    pub cases: Vec<CaseReport>,
    /// How long the whole run took.
    pub duration: Duration,
}

impl SuiteReport {
    fn count(&self, f: impl Fn(&Verdict) -> bool) -> usize {
        self.cases.iter().filter(|c| f(&c.verdict)).count()
    }

    /// Cases that passed.
    pub fn passed(&self) -> usize {
        self.count(|v| matches!(v, Verdict::Pass))
    }

    /// Cases that failed.
    pub fn failed(&self) -> usize {
        self.count(|v| matches!(v, Verdict::Fail { .. }))
    }

    /// Cases that were skipped.
    pub fn skipped(&self) -> usize {
        self.count(|v| matches!(v, Verdict::Skip { .. }))
    }

    /// The case of that name.
    pub fn case(&self, name: &str) -> Option<&CaseReport> {
        self.cases.iter().find(|c| c.name == name)
    }

    /// The summary line: `hil on virtual lane: 16 passed, 0 failed, 0 skipped in 2.31 s`.
    pub fn summary(&self) -> String {
        format!(
            "hil on {}: {} passed, {} failed, {} skipped in {:.2} s",
            self.target,
            self.passed(),
            self.failed(),
            self.skipped(),
            self.duration.as_secs_f64()
        )
    }

    /// The process exit code: 0 when nothing failed (skips allowed), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.failed() > 0)
    }
}
