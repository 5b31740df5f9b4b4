//! The JUnit XML report test rigs collect (the common Jenkins/GitLab/Surefire shape):
//!
//! ```xml
//! <testsuites name="hil" tests="3" failures="1" errors="0" skipped="1" time="0.412">
//!   <testsuite name="hil" tests="3" failures="1" errors="0" skipped="1" time="0.412">
//!     <properties><property name="target" value="virtual lane"/></properties>
//!     <testcase classname="hil.reader" name="atr" time="0.003"><system-out>...</system-out></testcase>
//!     <testcase classname="hil.reader" name="card_removed" time="5.001">
//!       <failure message="timed out waiting for: ...">...</failure></testcase>
//!     <testcase classname="hil.msr" name="swipe" time="0.000"><skipped message="..."/></testcase>
//!   </testsuite>
//! </testsuites>
//! ```
//!
//! Written by hand: text and attribute values are escaped (`& < > " '`), characters XML 1.0
//! cannot carry at all (control characters other than tab, line feed, carriage return) are
//! replaced by U+FFFD.

use std::fmt::Write as _;

use crate::report::{SuiteReport, Verdict};

/// Escape `s` for XML text or a (double- or single-quoted) attribute value.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Kept as references so that attribute values keep them too.
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn secs(d: std::time::Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// The report as a JUnit XML document.
pub fn to_xml(report: &SuiteReport) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let counts = format!(
        "tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{}\"",
        report.cases.len(),
        report.failed(),
        report.skipped(),
        secs(report.duration)
    );
    // Writing to a String cannot fail.
    let _ = writeln!(x, "<testsuites name=\"hil\" {counts}>");
    let _ = writeln!(x, "  <testsuite name=\"hil\" {counts}>");
    let _ = writeln!(
        x,
        "    <properties><property name=\"target\" value=\"{}\"/></properties>",
        escape(&report.target)
    );
    for case in &report.cases {
        let _ = write!(
            x,
            "    <testcase classname=\"hil.{}\" name=\"{}\" time=\"{}\">",
            escape(case.group()),
            escape(case.short_name()),
            secs(case.duration)
        );
        match &case.verdict {
            Verdict::Pass => {}
            Verdict::Fail { message, hint } => {
                let mut body = message.clone();
                if let Some(h) = hint {
                    body.push_str("\nhint: ");
                    body.push_str(h);
                }
                let _ = write!(
                    x,
                    "\n      <failure message=\"{}\" type=\"failure\">{}</failure>",
                    escape(message),
                    escape(&body)
                );
            }
            Verdict::Skip { reason } => {
                let _ = write!(x, "\n      <skipped message=\"{}\"/>", escape(reason));
            }
        }
        if !case.steps.is_empty() {
            let _ = write!(
                x,
                "\n      <system-out>{}</system-out>",
                escape(&case.steps.join("\n"))
            );
        }
        let _ = writeln!(x, "\n    </testcase>");
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// Write the report to `path`.
///
/// Errors: the file cannot be written.
pub fn write(report: &SuiteReport, path: &std::path::Path) -> std::io::Result<()> {
    std::fs::write(path, to_xml(report))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use quick_xml::Reader;
    use quick_xml::events::Event;

    use super::*;
    use crate::report::CaseReport;

    fn sample() -> SuiteReport {
        let case = |name: &str, verdict| CaseReport {
            name: name.into(),
            verdict,
            duration: Duration::from_millis(12),
            steps: vec!["step <1> & \"two\"".into()],
        };
        SuiteReport {
            target: "rig <a&b>.toml".into(),
            cases: vec![
                case("reader.atr", Verdict::Pass),
                case(
                    "reader.apdu_exchange",
                    Verdict::Fail {
                        message: "SW <6A&82> \"no\" 'app'\u{1}\ttab\nline".into(),
                        hint: Some("check <card>".into()),
                    },
                ),
                case(
                    "msr.swipe",
                    Verdict::Skip {
                        reason: "declined & <skipped>".into(),
                    },
                ),
            ],
            duration: Duration::from_millis(1234),
        }
    }

    /// Parse with a strict XML reader: every element, attribute and escape is checked;
    /// returns the testcase count, the suite attributes, the failure message and the
    /// skipped message.
    fn parse(xml: &str) -> (usize, Vec<(String, String)>, String, String) {
        let mut r = Reader::from_str(xml);
        r.config_mut().check_end_names = true;
        let (mut cases, mut suite, mut failure, mut skipped) =
            (0, Vec::new(), String::new(), String::new());
        let mut depth = 0i32;
        loop {
            let ev = r.read_event().unwrap();
            let (e, empty) = match &ev {
                Event::Start(e) => (Some(e.clone()), false),
                Event::Empty(e) => (Some(e.clone()), true),
                Event::End(_) => {
                    depth -= 1;
                    (None, false)
                }
                Event::Text(t) => {
                    t.decode().unwrap();
                    (None, false)
                }
                Event::Eof => break,
                _ => (None, false),
            };
            let Some(e) = e else { continue };
            if !empty {
                depth += 1;
            }
            let attrs: Vec<(String, String)> = e
                .attributes()
                .map(|a| {
                    let a = a.unwrap();
                    (
                        String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                        a.unescape_value().unwrap().into_owned(),
                    )
                })
                .collect();
            let get = |k: &str| {
                attrs
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            match e.name().as_ref() {
                b"testcase" => cases += 1,
                b"testsuite" => suite = attrs.clone(),
                b"failure" => failure = get("message"),
                b"skipped" => skipped = get("message"),
                _ => {}
            }
        }
        assert_eq!(depth, 0, "unbalanced elements");
        (cases, suite, failure, skipped)
    }

    #[test]
    fn the_report_is_well_formed_and_round_trips_awkward_text() {
        let xml = to_xml(&sample());
        let (cases, suite, failure, skipped) = parse(&xml);
        assert_eq!(cases, 3);
        let attr = |k: &str| suite.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(attr("tests"), "3");
        assert_eq!(attr("failures"), "1");
        assert_eq!(attr("skipped"), "1");
        assert_eq!(attr("time"), "1.234");
        // The control character became U+FFFD; everything else came back as written.
        assert_eq!(failure, "SW <6A&82> \"no\" 'app'\u{FFFD}\ttab\nline");
        assert_eq!(skipped, "declined & <skipped>");
        assert!(xml.contains("classname=\"hil.reader\" name=\"apdu_exchange\" time=\"0.012\""));
    }

    #[test]
    fn escape_covers_the_five_and_control_characters() {
        assert_eq!(escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
        assert_eq!(escape("\u{0}\u{1b}x"), "\u{FFFD}\u{FFFD}x");
        assert_eq!(escape("é €"), "é €");
    }
}
