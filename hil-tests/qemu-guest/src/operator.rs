//! The suite's operator in the rig: every technician's step ([`Action`]) becomes a request
//! to the host, which does it to QEMU's devices (insert or pull the virtual card, unplug
//! the reader, type a swipe on the USB keyboard, set a fault on the virtual printer).
//!
//! The request runs on its own thread while the step's condition is polled, as
//! [`hil_tests::operator::poll_until`] does: a host typing a swipe answers only when the
//! last key is typed, and a keyboard-wedge reader that is not read meanwhile would lose
//! keys (the kernel keeps only 64 events per evdev client). The step is
//! [`StepOutcome::Failed`] when the host refuses or does not answer, whatever the
//! condition did.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use hil_tests::operator::{Action, Condition, Operator, StepOutcome, poll_until};

use crate::control::Control;
use crate::ctl::Verb;

/// How long the host may take to answer one request (a `device_add`, typing a swipe).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The test card's PAN for swipes: a well-known scheme test number, not a real card.
pub const TEST_SWIPE_PAN: &str = "5413330089600044";

/// The test card as a keyboard-wedge reader types it: track 1 then track 2, sentinels
/// included (the host types Enter after it). Card data: never log or print it.
pub fn swipe_text() -> String {
    format!(
        "%B{TEST_SWIPE_PAN}^RIG/TEST^30121010000000000000?;{TEST_SWIPE_PAN}=30121010000000000000?"
    )
}

/// The requests that do `action` with `card` as the test card, in order.
pub fn verbs(action: Action, card: &str) -> Vec<Verb> {
    let fault = |name: &str, on: bool| Verb::PrinterFault {
        fault: name.to_string(),
        on,
    };
    match action {
        Action::InsertCard => vec![Verb::CardInsert(card.to_string())],
        Action::RemoveCard => vec![Verb::CardRemove],
        Action::UnplugReader => vec![Verb::ReaderUnplug],
        Action::PlugReader => vec![Verb::ReaderPlug],
        Action::Swipe => vec![Verb::KeyboardType(swipe_text())],
        Action::OpenCover => vec![fault("cover_open", true)],
        Action::RemovePaper => vec![fault("paper_out", true)],
        Action::FixPrinter => vec![fault("paper_out", false), fault("cover_open", false)],
    }
}

/// The rig's operator: the host does each step.
#[derive(Debug, Clone)]
pub struct QemuOperator {
    control: Control,
    card: String,
    request_timeout: Duration,
}

impl QemuOperator {
    /// Steps through `control`; `card` is what `card-insert` inserts (a profile name such
    /// as `visa`, or `transcript:NAME`).
    pub fn new(control: Control, card: impl Into<String>) -> Self {
        QemuOperator {
            control,
            card: card.into(),
            request_timeout: REQUEST_TIMEOUT,
        }
    }

    /// The same with another time limit per request.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
}

impl Operator for QemuOperator {
    fn ask(
        &mut self,
        action: Action,
        instruction: &str,
        limit: Duration,
        done: &mut Condition<'_>,
    ) -> StepOutcome {
        let requests = verbs(action, &self.card);
        let control = self.control.clone();
        let timeout = self.request_timeout;
        let (tx, rx) = mpsc::channel();
        let worker = std::thread::spawn(move || {
            let mut result = Ok(());
            for verb in &requests {
                if let Err(e) = control.request(verb, timeout) {
                    result = Err(e);
                    break;
                }
            }
            // The receiver may be gone (the step ended): nothing to do then.
            let _ = tx.send(result);
        });
        let mut answer: Option<Result<(), String>> = None;
        let outcome = poll_until(limit, &mut || {
            if answer.is_none() {
                answer = rx.try_recv().ok();
            }
            if let Some(Err(e)) = &answer {
                return Err(e.clone());
            }
            done()
        });
        // The condition may hold before the host answered (the card is seen before the
        // host's `OK`): the step is done only once the host said so.
        let answer = match answer {
            Some(a) => a,
            None => {
                let wait_until = Instant::now() + timeout + Duration::from_secs(1);
                rx.recv_timeout(wait_until.saturating_duration_since(Instant::now()))
                    .unwrap_or_else(|_| {
                        Err(format!(
                            "the host did not answer within {} s",
                            timeout.as_secs()
                        ))
                    })
            }
        };
        if worker.join().is_err() {
            return StepOutcome::Failed(format!("the request to {instruction} panicked"));
        }
        match (answer, outcome) {
            (Err(e), _) => StepOutcome::Failed(format!("the rig could not {instruction}: {e}")),
            (Ok(()), outcome) => outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::control::tests::pair;

    #[test]
    fn each_action_is_the_request_the_protocol_names() {
        let line = |a| {
            verbs(a, "visa")
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(line(Action::InsertCard), ["card-insert visa"]);
        assert_eq!(line(Action::RemoveCard), ["card-remove"]);
        assert_eq!(line(Action::UnplugReader), ["reader-unplug"]);
        assert_eq!(line(Action::PlugReader), ["reader-plug"]);
        assert_eq!(line(Action::OpenCover), ["printer-fault cover_open on"]);
        assert_eq!(line(Action::RemovePaper), ["printer-fault paper_out on"]);
        assert_eq!(
            line(Action::FixPrinter),
            [
                "printer-fault paper_out off",
                "printer-fault cover_open off"
            ]
        );
        let swipe = line(Action::Swipe);
        assert_eq!(swipe.len(), 1);
        assert!(swipe[0].starts_with("keyboard-type %B"));
        // The fault names are the ones the virtual printer knows.
        for name in ["cover_open", "paper_out"] {
            assert!(pos_escpos::sim::SimFault::parse(name).is_some(), "{name}");
        }
    }

    #[test]
    fn the_swipe_decodes_to_the_test_pan_and_has_no_control_characters() {
        let text = swipe_text();
        assert!(!text.chars().any(char::is_control));
        assert!(
            text.chars()
                .all(|c| pos_magstripe::wedge::us_key_for(c).is_some())
        );
        let [t1, t2, t3] = pos_magstripe::parse_ascii(&text);
        assert_eq!(t1.status, pos_magstripe::TrackStatus::Ok);
        assert_eq!(t2.status, pos_magstripe::TrackStatus::Ok);
        assert_eq!(t3.status, pos_magstripe::TrackStatus::Empty);
        let t2 = pos_magstripe::Track2Data::parse(t2.data).unwrap();
        assert!(t2.luhn_ok());
        assert_eq!(t2.masked_pan().as_str(), "541333******0044");
        let t1 = pos_magstripe::Track1Data::parse(t1.data).unwrap();
        assert_eq!(t1.masked_pan().as_str(), "541333******0044");
    }

    #[test]
    fn a_step_is_done_when_the_host_answered_and_the_condition_holds() {
        let (control, mut host) = pair();
        let host = std::thread::spawn(move || {
            assert_eq!(host.read_line(), "CMD 1 card-insert visa");
            std::thread::sleep(Duration::from_millis(100));
            host.write("OK 1 inserted\n");
            assert_eq!(host.read_line(), "CMD 2 printer-fault paper_out off");
            host.write("OK 2\n");
            assert_eq!(host.read_line(), "CMD 3 printer-fault cover_open off");
            host.write("ERR 3 no printer connected\n");
            assert_eq!(host.read_line(), "CMD 4 card-remove");
            host
        });
        let mut op = QemuOperator::new(control, "visa");
        let mut polls = 0;
        let out = op.ask(
            Action::InsertCard,
            "insert the card",
            Duration::from_secs(5),
            &mut || {
                polls += 1;
                Ok(polls > 2)
            },
        );
        assert!(matches!(out, StepOutcome::Done(_)), "{out:?}");
        let out = op.ask(
            Action::FixPrinter,
            "fix the printer",
            Duration::from_secs(5),
            &mut || Ok(true),
        );
        let StepOutcome::Failed(why) = out else {
            panic!("{out:?}")
        };
        assert!(why.contains("no printer connected"), "{why}");
        // No answer at all: failed after the request timeout, not passed.
        let mut op = op.with_request_timeout(Duration::from_millis(200));
        let out = op.ask(
            Action::RemoveCard,
            "pull the card",
            Duration::from_secs(5),
            &mut || Ok(false),
        );
        assert!(matches!(out, StepOutcome::Failed(_)), "{out:?}");
        host.join().unwrap();
    }
}
