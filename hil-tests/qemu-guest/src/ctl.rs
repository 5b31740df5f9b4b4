//! The rig's control protocol between the guest's scenarios and the host that plays the
//! card, the printer and the typist.
//!
//! It runs over the guest's second serial port (`/dev/ttyS1`, a Unix socket on the host),
//! one ASCII line per message, so it needs nothing but a UART in the guest kernel. The
//! guest drives: it asks the host to insert or pull a card, connect or unplug the printer,
//! inject a printer fault or type on the USB keyboard, waits for `OK`/`ERR`, and reports
//! each case and benchmark. The same [`Line`] codec is used on both sides.
//!
//! Cards are named by profile and results carry masked PANs only. The one exception is
//! `keyboard-type`, which carries a *test* card's track text to be typed; it is never
//! printed or logged: messages use [`Verb::redacted`].

use std::fmt;

/// One message of the control protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Guest to host: do something (`verb` and its arguments), answer with the same `seq`.
    Cmd {
        /// Request number, echoed in the answer.
        seq: u32,
        /// What to do (see [`Verb`]).
        verb: Verb,
    },
    /// Host to guest: the command `seq` was done; `text` is its answer (may be empty).
    Ok {
        /// The command's number.
        seq: u32,
        /// The answer.
        text: String,
    },
    /// Host to guest: the command `seq` failed.
    Err {
        /// The command's number.
        seq: u32,
        /// Why.
        text: String,
    },
    /// Guest to host: a step of the running case (progress, shown on the host).
    Step {
        /// The case's name.
        case: String,
        /// What happened.
        text: String,
    },
    /// Guest to host: a case ended.
    Case {
        /// The case's name (`group.case`).
        case: String,
        /// How it ended.
        outcome: Outcome,
        /// How long it took, in milliseconds.
        millis: u64,
        /// Why it failed or was skipped, or a summary when it passed.
        text: String,
    },
    /// Guest to host: one benchmark's samples, in nanoseconds per operation.
    Bench {
        /// What was measured (`apdu.direct`, `apdu.pcsc`).
        name: String,
        /// Number of operations.
        count: u32,
        /// Median, nanoseconds.
        p50_ns: u64,
        /// 99th percentile, nanoseconds.
        p99_ns: u64,
        /// Mean, nanoseconds.
        mean_ns: u64,
    },
    /// Guest to host, before the first case: every case it is about to run, so that the
    /// host can tell a case whose `CASE` line never arrived from one that was not run.
    /// On the wire: `PLAN <count> <name> <name> ...` (the count guards against a cut line).
    Plan {
        /// The cases' names (`group.case`), in the order they will run.
        cases: Vec<String>,
    },
    /// Guest to host: the run is over.
    End,
}

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every expectation held.
    Pass,
    /// An expectation did not hold.
    Fail,
    /// The case could not run here (with the reason).
    Skip,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "SKIP",
        }
    }
}

/// What the guest asks the host to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    /// Insert the named virtual card in QEMU's reader (a `pos_emv` profile such as
    /// `mastercard`, or `transcript:NAME` for a recorded session, or `mute`).
    CardInsert(String),
    /// Pull the card now.
    CardRemove,
    /// Pull the card instead of answering the `n`-th APDU from now (removal mid-exchange).
    CardRemoveOnApdu(u32),
    /// The card side's counters: answered with `apdus=N removals=N`.
    CardStats,
    /// Unplug QEMU's CCID reader (the monitor's `device_del`): the guest sees it go.
    ReaderUnplug,
    /// Plug it back in (`device_add`), with the card that was in it.
    ReaderPlug,
    /// Connect the virtual printer to QEMU's FTDI adapter (the guest sees it plugged in).
    PrinterConnect,
    /// Disconnect it (the guest sees the adapter unplugged).
    PrinterUnplug,
    /// Set or clear a fault on the virtual printer (`paper_out`, `cover_open`, ...).
    PrinterFault {
        /// The fault's name as `pos_escpos::sim::SimFault::parse` knows it.
        fault: String,
        /// Set (true) or clear (false).
        on: bool,
    },
    /// How many receipts the printer has printed and whether the last one contains the
    /// text: answered with `receipts=N contains=yes|no`.
    PrinterCheck(String),
    /// Type the text on QEMU's USB keyboard (through the monitor's `sendkey`).
    KeyboardType(String),
    /// emupos (the independent ESC/POS emulator behind the USB printer gadget's channel):
    /// start it if it is not running, clear its faults, drop a pending fault trigger and
    /// connect the channel to it afresh (a new printer connection). Answered with
    /// `receipts=N`. Refused with a text holding [`SKIP_MARK`] when emupos cannot run here
    /// and that is a skip (outside CI).
    EmuposReset,
    /// Set or clear an emupos fault (`paper-out`, `cover-open`, `offline`, `paper-near-end`).
    EmuposFault {
        /// The fault as emupos's REST API names it.
        fault: String,
        /// Set (true) or clear (false).
        on: bool,
    },
    /// Set the emupos fault once `bytes` more bytes of print data went from the guest to
    /// emupos: a fault mid-job. The bytes before go to emupos before the fault, the rest
    /// after it.
    EmuposFaultAfter {
        /// Bytes from now.
        bytes: u64,
        /// The fault as emupos names it.
        fault: String,
    },
    /// emupos's printer state: answered with `faults=a,b` (empty list: `faults=`).
    EmuposState,
    /// Whether a receipt emupos rendered contains the text: `receipts=N contains=yes|no`.
    EmuposCheck(String),
}

/// A refusal whose text holds this is a reason to SKIP, not to fail (the host decides: a
/// missing emulator is a skip outside CI and a failure under CI).
pub const SKIP_MARK: &str = "[skip]";

/// A line that is not a control message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a control line: {0}")]
pub struct ParseError(pub String);

/// Replace what would break the line framing (newlines, other control characters).
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A case or benchmark name as one word on the wire: [`clean`], with spaces as `_` (a
/// space would shift the fields after it). The same on every line that carries a name,
/// so a `PLAN` entry and its `CASE` line always match.
pub fn name_word(name: &str) -> String {
    clean(name)
        .chars()
        .map(|c| if c == ' ' { '_' } else { c })
        .collect()
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verb::CardInsert(card) => write!(f, "card-insert {}", clean(card)),
            Verb::CardRemove => f.write_str("card-remove"),
            Verb::CardRemoveOnApdu(n) => write!(f, "card-remove-on-apdu {n}"),
            Verb::CardStats => f.write_str("card-stats"),
            Verb::ReaderUnplug => f.write_str("reader-unplug"),
            Verb::ReaderPlug => f.write_str("reader-plug"),
            Verb::PrinterConnect => f.write_str("printer-connect"),
            Verb::PrinterUnplug => f.write_str("printer-unplug"),
            Verb::PrinterFault { fault, on } => {
                write!(
                    f,
                    "printer-fault {} {}",
                    clean(fault),
                    if *on { "on" } else { "off" }
                )
            }
            Verb::PrinterCheck(text) => write!(f, "printer-check {}", clean(text)),
            Verb::KeyboardType(text) => write!(f, "keyboard-type {}", clean(text)),
            Verb::EmuposReset => f.write_str("emupos-reset"),
            Verb::EmuposFault { fault, on } => write!(
                f,
                "emupos-fault {} {}",
                name_word(fault),
                if *on { "on" } else { "off" }
            ),
            Verb::EmuposFaultAfter { bytes, fault } => {
                write!(f, "emupos-fault-after {bytes} {}", name_word(fault))
            }
            Verb::EmuposState => f.write_str("emupos-state"),
            Verb::EmuposCheck(text) => write!(f, "emupos-check {}", clean(text)),
        }
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::Cmd { seq, verb } => write!(f, "CMD {seq} {verb}"),
            Line::Ok { seq, text } => write!(f, "OK {seq} {}", clean(text)),
            Line::Err { seq, text } => write!(f, "ERR {seq} {}", clean(text)),
            Line::Step { case, text } => write!(f, "STEP {} {}", name_word(case), clean(text)),
            Line::Case {
                case,
                outcome,
                millis,
                text,
            } => write!(
                f,
                "CASE {} {} {millis} {}",
                name_word(case),
                outcome.as_str(),
                clean(text)
            ),
            Line::Bench {
                name,
                count,
                p50_ns,
                p99_ns,
                mean_ns,
            } => write!(
                f,
                "BENCH {} {count} {p50_ns} {p99_ns} {mean_ns}",
                name_word(name)
            ),
            Line::Plan { cases } => {
                write!(f, "PLAN {}", cases.len())?;
                for c in cases {
                    write!(f, " {}", name_word(c))?;
                }
                Ok(())
            }
            Line::End => f.write_str("END"),
        }
    }
}

/// Split off the first space-separated word.
fn word(s: &str) -> (&str, &str) {
    match s.split_once(' ') {
        Some((w, rest)) => (w, rest),
        None => (s, ""),
    }
}

fn number<T: std::str::FromStr>(s: &str, line: &str) -> Result<T, ParseError> {
    s.parse().map_err(|_| ParseError(line.to_string()))
}

impl Verb {
    /// The verb for messages a person sees: as on the wire, except that typed text (a test
    /// card's track data) is left out.
    pub fn redacted(&self) -> String {
        match self {
            Verb::KeyboardType(text) => {
                format!("keyboard-type ({} characters)", text.chars().count())
            }
            other => other.to_string(),
        }
    }

    fn parse(s: &str, line: &str) -> Result<Verb, ParseError> {
        let (verb, rest) = word(s);
        let bad = || ParseError(line.to_string());
        Ok(match verb {
            "card-insert" if !rest.is_empty() => Verb::CardInsert(rest.to_string()),
            "card-remove" => Verb::CardRemove,
            "card-remove-on-apdu" => Verb::CardRemoveOnApdu(number(rest, line)?),
            "card-stats" => Verb::CardStats,
            "reader-unplug" => Verb::ReaderUnplug,
            "reader-plug" => Verb::ReaderPlug,
            "printer-connect" => Verb::PrinterConnect,
            "printer-unplug" => Verb::PrinterUnplug,
            "printer-fault" => {
                let (fault, on) = word(rest);
                let on = match on {
                    "on" => true,
                    "off" => false,
                    _ => return Err(bad()),
                };
                Verb::PrinterFault {
                    fault: fault.to_string(),
                    on,
                }
            }
            "printer-check" => Verb::PrinterCheck(rest.to_string()),
            "keyboard-type" => Verb::KeyboardType(rest.to_string()),
            "emupos-reset" if rest.is_empty() => Verb::EmuposReset,
            "emupos-fault" => {
                let (fault, on) = word(rest);
                let on = match on {
                    "on" => true,
                    "off" => false,
                    _ => return Err(bad()),
                };
                if fault.is_empty() {
                    return Err(bad());
                }
                Verb::EmuposFault {
                    fault: fault.to_string(),
                    on,
                }
            }
            "emupos-fault-after" => {
                let (bytes, fault) = word(rest);
                if fault.is_empty() || fault.contains(' ') {
                    return Err(bad());
                }
                Verb::EmuposFaultAfter {
                    bytes: number(bytes, line)?,
                    fault: fault.to_string(),
                }
            }
            "emupos-state" if rest.is_empty() => Verb::EmuposState,
            "emupos-check" if !rest.is_empty() => Verb::EmuposCheck(rest.to_string()),
            _ => return Err(bad()),
        })
    }
}

impl Line {
    /// Parse one line (without its newline). Never panics; anything else (kernel messages
    /// on a shared console, noise) is a [`ParseError`].
    pub fn parse(line: &str) -> Result<Line, ParseError> {
        let line = line.trim_end_matches(['\r', '\n']);
        let bad = || ParseError(line.to_string());
        let (kind, rest) = word(line);
        match kind {
            "CMD" => {
                let (seq, verb) = word(rest);
                Ok(Line::Cmd {
                    seq: number(seq, line)?,
                    verb: Verb::parse(verb, line)?,
                })
            }
            "OK" | "ERR" => {
                let (seq, text) = word(rest);
                let seq = number(seq, line)?;
                let text = text.to_string();
                Ok(if kind == "OK" {
                    Line::Ok { seq, text }
                } else {
                    Line::Err { seq, text }
                })
            }
            "STEP" => {
                let (case, text) = word(rest);
                if case.is_empty() {
                    return Err(bad());
                }
                Ok(Line::Step {
                    case: case.to_string(),
                    text: text.to_string(),
                })
            }
            "CASE" => {
                let (case, rest) = word(rest);
                let (outcome, rest) = word(rest);
                let (millis, text) = word(rest);
                let outcome = match outcome {
                    "PASS" => Outcome::Pass,
                    "FAIL" => Outcome::Fail,
                    "SKIP" => Outcome::Skip,
                    _ => return Err(bad()),
                };
                if case.is_empty() {
                    return Err(bad());
                }
                Ok(Line::Case {
                    case: case.to_string(),
                    outcome,
                    millis: number(millis, line)?,
                    text: text.to_string(),
                })
            }
            "BENCH" => {
                let mut parts = rest.split(' ');
                let mut next = || parts.next().ok_or_else(bad);
                let name = next()?.to_string();
                let count = number(next()?, line)?;
                let p50_ns = number(next()?, line)?;
                let p99_ns = number(next()?, line)?;
                let mean_ns = number(next()?, line)?;
                if name.is_empty() {
                    return Err(bad());
                }
                Ok(Line::Bench {
                    name,
                    count,
                    p50_ns,
                    p99_ns,
                    mean_ns,
                })
            }
            "PLAN" => {
                let (count, names) = word(rest);
                let count: usize = number(count, line)?;
                let cases: Vec<String> = names
                    .split(' ')
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect();
                // A line cut short (or run together with another) is not a plan.
                if cases.len() != count {
                    return Err(bad());
                }
                Ok(Line::Plan { cases })
            }
            "END" if rest.is_empty() => Ok(Line::End),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn samples() -> Vec<Line> {
        vec![
            Line::Cmd {
                seq: 1,
                verb: Verb::CardInsert("mastercard".into()),
            },
            Line::Cmd {
                seq: 2,
                verb: Verb::CardRemoveOnApdu(3),
            },
            Line::Cmd {
                seq: 3,
                verb: Verb::PrinterFault {
                    fault: "paper_out".into(),
                    on: true,
                },
            },
            Line::Cmd {
                seq: 4,
                verb: Verb::KeyboardType("%B5413^X?".into()),
            },
            Line::Cmd {
                seq: 5,
                verb: Verb::PrinterCheck("TOTAL 12.50".into()),
            },
            Line::Cmd {
                seq: 6,
                verb: Verb::ReaderUnplug,
            },
            Line::Cmd {
                seq: 7,
                verb: Verb::ReaderPlug,
            },
            Line::Cmd {
                seq: 8,
                verb: Verb::EmuposReset,
            },
            Line::Cmd {
                seq: 9,
                verb: Verb::EmuposFault {
                    fault: "cover-open".into(),
                    on: false,
                },
            },
            Line::Cmd {
                seq: 10,
                verb: Verb::EmuposFaultAfter {
                    bytes: 300,
                    fault: "paper-out".into(),
                },
            },
            Line::Cmd {
                seq: 11,
                verb: Verb::EmuposState,
            },
            Line::Cmd {
                seq: 12,
                verb: Verb::EmuposCheck("RIG-0000ABCD".into()),
            },
            Line::Ok {
                seq: 1,
                text: "apdus=3 removals=1".into(),
            },
            Line::Err {
                seq: 9,
                text: "no such card".into(),
            },
            Line::Ok {
                seq: 7,
                text: String::new(),
            },
            Line::Step {
                case: "reader.atr".into(),
                text: "ATR 3B 02 14 50".into(),
            },
            Line::Case {
                case: "emv.read".into(),
                outcome: Outcome::Fail,
                millis: 1234,
                text: "card removed".into(),
            },
            Line::Bench {
                name: "apdu.direct".into(),
                count: 500,
                p50_ns: 176_000,
                p99_ns: 400_000,
                mean_ns: 180_000,
            },
            Line::Plan {
                cases: vec!["usb.discovery".into(), "suite.reader.atr".into()],
            },
            Line::Plan { cases: Vec::new() },
            Line::End,
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for line in samples() {
            let text = line.to_string();
            assert_eq!(Line::parse(&text), Ok(line.clone()), "{text}");
            assert_eq!(Line::parse(&format!("{text}\r\n")), Ok(line));
        }
    }

    #[test]
    fn typed_track_data_is_left_out_of_messages() {
        let v = Verb::KeyboardType("%B5413330089600044^X^2512?".into());
        assert_eq!(v.redacted(), "keyboard-type (26 characters)");
        assert_eq!(Verb::CardRemove.redacted(), "card-remove");
    }

    #[test]
    fn newlines_in_text_cannot_break_framing() {
        let line = Line::Step {
            case: "a".into(),
            text: "one\ntwo\rthree".into(),
        };
        let text = line.to_string();
        assert!(!text.contains('\n') && !text.contains('\r'));
        assert_eq!(
            Line::parse(&text),
            Ok(Line::Step {
                case: "a".into(),
                text: "one two three".into()
            })
        );
    }

    #[test]
    fn a_plan_name_cannot_shift_the_others() {
        let line = Line::Plan {
            cases: vec!["a b".into(), "c".into()],
        };
        assert_eq!(line.to_string(), "PLAN 2 a_b c");
        let case = Line::Case {
            case: "a b".into(),
            outcome: Outcome::Pass,
            millis: 1,
            text: "x y".into(),
        };
        assert_eq!(case.to_string(), "CASE a_b PASS 1 x y");
        assert_eq!(
            Line::parse(&line.to_string()),
            Ok(Line::Plan {
                cases: vec!["a_b".into(), "c".into()]
            })
        );
    }

    #[test]
    fn console_noise_is_not_a_message() {
        for noise in [
            "[    4.116180] reboot: Power down",
            "CMD x card-remove",
            "CMD 1 fly",
            "CASE a MAYBE 1 x",
            "BENCH a 1 2",
            "END now",
            "PLAN 3 a b",
            "PLAN 1 a b",
            "PLAN x a",
            "CMD 1 emupos-fault paper-out maybe",
            "CMD 1 emupos-fault-after x paper-out",
            "CMD 1 emupos-fault-after 5",
            "CMD 1 emupos-reset now",
            "CMD 1 emupos-check",
            "",
        ] {
            assert!(Line::parse(noise).is_err(), "{noise}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = Line::parse(&s);
        }

        #[test]
        fn typed_text_round_trips(s in "[ -~]{1,40}") {
            let line = Line::Cmd { seq: 1, verb: Verb::KeyboardType(s.clone()) };
            prop_assert_eq!(Line::parse(&line.to_string()), Ok(line));
        }
    }
}
