//! The lines between `rig-guest` and `pcsc-road`, the helper that runs the reader cases
//! through our `pcsc:` road (it must be a dynamic binary: pos-pcsc loads libpcsclite at run
//! time, which the static `rig-guest` cannot).
//!
//! `pcsc-road` writes one message per line on its standard output:
//!
//! - `STEP text`: a step of the case (no card data);
//! - `READY`: it waits for the host's action; `rig-guest` does it and writes `GO` (or
//!   `ABORT why`) on the helper's standard input;
//! - `PCSC-BENCH count p50 p99 mean`: the benchmark's figures (as `pcsc-bench` prints them);
//! - `RESULT PASS|FAIL|SKIP text`: the end of the case.
//!
//! Other lines are ignored by `rig-guest`.

/// One line of `pcsc-road`'s output, as `rig-guest` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoadLine {
    /// A step.
    Step(String),
    /// Waiting for the host's action.
    Ready,
    /// The benchmark line (kept whole for [`crate::bench::Stats::parse_pcsc_output`]).
    Bench(String),
    /// The end: verdict and text.
    Result(crate::ctl::Outcome, String),
    /// Anything else.
    Other(String),
}

impl RoadLine {
    /// Read one line (without its newline).
    pub fn parse(line: &str) -> RoadLine {
        let line = line.trim_end();
        if let Some(t) = line.strip_prefix("STEP ") {
            return RoadLine::Step(t.to_string());
        }
        if line == "READY" {
            return RoadLine::Ready;
        }
        if line.starts_with("PCSC-BENCH ") {
            return RoadLine::Bench(line.to_string());
        }
        if let Some(rest) = line.strip_prefix("RESULT ") {
            let (verdict, text) = rest.split_once(' ').unwrap_or((rest, ""));
            let outcome = match verdict {
                "PASS" => Some(crate::ctl::Outcome::Pass),
                "FAIL" => Some(crate::ctl::Outcome::Fail),
                "SKIP" => Some(crate::ctl::Outcome::Skip),
                _ => None,
            };
            if let Some(o) = outcome {
                return RoadLine::Result(o, text.to_string());
            }
        }
        RoadLine::Other(line.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::Outcome;

    #[test]
    fn lines() {
        assert_eq!(
            RoadLine::parse("STEP ATR 3B 00\n"),
            RoadLine::Step("ATR 3B 00".into())
        );
        assert_eq!(RoadLine::parse("READY"), RoadLine::Ready);
        assert_eq!(
            RoadLine::parse("RESULT FAIL card_removed expected"),
            RoadLine::Result(Outcome::Fail, "card_removed expected".into())
        );
        assert_eq!(
            RoadLine::parse("RESULT PASS"),
            RoadLine::Result(Outcome::Pass, String::new())
        );
        assert!(matches!(
            RoadLine::parse("PCSC-BENCH 1 2 3 4"),
            RoadLine::Bench(_)
        ));
        assert!(matches!(
            RoadLine::parse("RESULT MAYBE x"),
            RoadLine::Other(_)
        ));
    }
}
