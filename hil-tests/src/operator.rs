//! Interactive steps: what a technician does on a real rig ("pull the card now"), and what
//! the virtual lane does by itself.
//!
//! A scenario asks an [`Operator`] for an [`Action`] and gives it a condition to poll (the
//! card is gone, the cover shows open). The same scenario code runs everywhere; only the
//! operator differs:
//! - [`ConsoleOperator`]: prints the instruction with its time limit for the technician;
//!   typing `s` + Enter declines the step (the case is SKIPPED);
//! - [`NonInteractive`]: declines every step (a rig run without a technician);
//! - [`SimOperator`]: performs the action on the virtual device itself, and hands actions
//!   on real devices to another operator.
//!
//! Every operator then polls the condition until it holds or the time limit runs out:
//! a step that times out fails the case ("timed out waiting for: ...").

use std::io::Write as _;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant};

use pos_hal::CardSpec;
use pos_lane::SimLane;
use pos_terminal::InjectedFault;

/// How often a step's condition is polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Something a technician does to a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Put the test card in the chip reader.
    InsertCard,
    /// Pull the card out of the chip reader.
    RemoveCard,
    /// Pull the chip reader's cable.
    UnplugReader,
    /// Plug the chip reader back in.
    PlugReader,
    /// Swipe the test card through the stripe reader.
    Swipe,
    /// Open the printer's cover.
    OpenCover,
    /// Take the paper roll out of the printer.
    RemovePaper,
    /// Put the paper back and close the cover: the printer ready again.
    FixPrinter,
}

impl Action {
    /// The device the action is done to: `reader`, `msr` or `printer`.
    pub fn device(self) -> &'static str {
        match self {
            Action::InsertCard | Action::RemoveCard | Action::UnplugReader | Action::PlugReader => {
                "reader"
            }
            Action::Swipe => "msr",
            Action::OpenCover | Action::RemovePaper | Action::FixPrinter => "printer",
        }
    }
}

/// How an interactive step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// The condition held, this long after the instruction.
    Done(Duration),
    /// The time limit ran out first.
    TimedOut,
    /// The step was not done (no technician, or the technician declined): the case is
    /// SKIPPED with this reason, never passed.
    Declined(String),
    /// The action or the condition failed (a device error, not a timeout).
    Failed(String),
}

/// The condition a step waits for: `Ok(true)` when it holds, `Ok(false)` to keep polling,
/// `Err` to stop with a failure.
pub type Condition<'a> = dyn FnMut() -> Result<bool, String> + 'a;

/// Who does the interactive steps.
pub trait Operator {
    /// Have `action` done (`instruction` says it in words for a person), then poll `done`
    /// every [`POLL_INTERVAL`] until it holds or `limit` runs out.
    fn ask(
        &mut self,
        action: Action,
        instruction: &str,
        limit: Duration,
        done: &mut Condition<'_>,
    ) -> StepOutcome;

    /// Whether a person does the steps (the suite prints the steps then).
    fn is_interactive(&self) -> bool {
        false
    }
}

/// Poll `done` every [`POLL_INTERVAL`] until it holds (then [`StepOutcome::Done`]), it fails
/// ([`StepOutcome::Failed`]) or `limit` runs out ([`StepOutcome::TimedOut`]). The condition is
/// checked at least once, and once more at the deadline.
pub fn poll_until(limit: Duration, done: &mut Condition<'_>) -> StepOutcome {
    poll_with(limit, done, &mut || None)
}

/// [`poll_until`], also stopping with [`StepOutcome::Declined`] when `declined` says so.
fn poll_with(
    limit: Duration,
    done: &mut Condition<'_>,
    declined: &mut dyn FnMut() -> Option<String>,
) -> StepOutcome {
    let start = Instant::now();
    let deadline = start + limit;
    loop {
        match done() {
            Ok(true) => return StepOutcome::Done(start.elapsed()),
            Ok(false) => {}
            Err(e) => return StepOutcome::Failed(e),
        }
        if let Some(why) = declined() {
            return StepOutcome::Declined(why);
        }
        let now = Instant::now();
        if now >= deadline {
            return StepOutcome::TimedOut;
        }
        std::thread::sleep(POLL_INTERVAL.min(deadline - now));
    }
}

/// A technician at the rig: instructions on standard output, `s` + Enter on standard input
/// declines a step.
pub struct ConsoleOperator {
    lines: Receiver<String>,
}

impl std::fmt::Debug for ConsoleOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConsoleOperator")
    }
}

impl Default for ConsoleOperator {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsoleOperator {
    /// A console operator; a thread reads standard input lines for it.
    pub fn new() -> Self {
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            let mut line = String::new();
            loop {
                line.clear();
                match stdin.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if tx.send(line.trim().to_string()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        ConsoleOperator { lines }
    }
}

impl Operator for ConsoleOperator {
    fn ask(
        &mut self,
        _action: Action,
        instruction: &str,
        limit: Duration,
        done: &mut Condition<'_>,
    ) -> StepOutcome {
        // Forget what was typed before this step.
        while self.lines.try_recv().is_ok() {}
        let mut out = std::io::stdout().lock();
        // A console that cannot be written to still polls the condition.
        let _ = writeln!(
            out,
            "  >> {instruction} ({} s; type s + Enter to skip)",
            limit.as_secs().max(1)
        );
        let _ = out.flush();
        drop(out);
        let lines = &self.lines;
        poll_with(limit, done, &mut || match lines.try_recv() {
            Ok(l) if l.eq_ignore_ascii_case("s") || l.eq_ignore_ascii_case("skip") => {
                Some(format!("the technician declined: {instruction}"))
            }
            Ok(_) | Err(TryRecvError::Empty | TryRecvError::Disconnected) => None,
        })
    }

    fn is_interactive(&self) -> bool {
        true
    }
}

/// No technician (`--non-interactive`): every step is declined, so the case is SKIPPED.
#[derive(Debug, Default, Clone, Copy)]
pub struct NonInteractive;

impl Operator for NonInteractive {
    fn ask(
        &mut self,
        _action: Action,
        instruction: &str,
        _limit: Duration,
        _done: &mut Condition<'_>,
    ) -> StepOutcome {
        StepOutcome::Declined(format!(
            "non-interactive run: needs a technician to {instruction}"
        ))
    }
}

/// The virtual lane's operator: performs each action on the virtual device itself, then
/// polls the same condition a technician's step would. Actions on devices that are not
/// simulated go to the `real` operator (declined without one).
pub struct SimOperator {
    sim: SimLane,
    card: CardSpec,
    real: Option<Box<dyn Operator>>,
}

impl std::fmt::Debug for SimOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimOperator")
            .field("card", &self.card)
            .field("real", &self.real.is_some())
            .finish()
    }
}

impl SimOperator {
    /// The operator of `sim`'s virtual devices; the test card is the lane's card.
    pub fn new(sim: SimLane) -> Self {
        let card = sim.card();
        SimOperator {
            sim,
            card,
            real: None,
        }
    }

    /// Hand actions on real devices (on a rig mixing real and `sim:` devices) to `real`.
    pub fn with_real(mut self, real: Box<dyn Operator>) -> Self {
        self.real = Some(real);
        self
    }

    fn simulated(&self, action: Action) -> bool {
        match action.device() {
            "reader" => self.sim.has_reader(),
            "msr" => self.sim.has_msr(),
            _ => self.sim.has_printer(),
        }
    }

    /// Do `action` on the virtual device.
    fn perform(&self, action: Action) -> Result<(), pos_lane::LaneError> {
        let sim = &self.sim;
        match action {
            Action::InsertCard => sim.insert_card(self.card.clone()),
            Action::RemoveCard => sim.remove_card(),
            Action::UnplugReader => sim.unplug_reader(),
            // The suite re-opens the reader; the virtual one is re-plugged by the lane's
            // reset, which needs the devices: nothing to do here.
            Action::PlugReader => Ok(()),
            Action::Swipe => sim.swipe(self.card.clone()),
            Action::OpenCover => sim.printer_fault(&InjectedFault::CoverOpen, false),
            Action::RemovePaper => sim.printer_fault(&InjectedFault::PaperOut, false),
            Action::FixPrinter => sim.clear_printer_faults(),
        }
    }
}

impl Operator for SimOperator {
    fn ask(
        &mut self,
        action: Action,
        instruction: &str,
        limit: Duration,
        done: &mut Condition<'_>,
    ) -> StepOutcome {
        if !self.simulated(action) {
            return match self.real.as_mut() {
                Some(real) => real.ask(action, instruction, limit, done),
                None => StepOutcome::Declined(format!(
                    "the {} is not simulated and no technician is there to {instruction}",
                    action.device()
                )),
            };
        }
        if let Err(e) = self.perform(action) {
            return StepOutcome::Failed(format!("the virtual lane could not {instruction}: {e}"));
        }
        poll_until(limit, done)
    }

    fn is_interactive(&self) -> bool {
        self.real.as_ref().is_some_and(|r| r.is_interactive())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_ends_when_the_condition_holds_fails_or_times_out() {
        let mut n = 0;
        let out = poll_until(Duration::from_secs(2), &mut || {
            n += 1;
            Ok(n >= 3)
        });
        assert!(matches!(out, StepOutcome::Done(_)), "{out:?}");
        let out = poll_until(Duration::from_millis(120), &mut || Ok(false));
        assert_eq!(out, StepOutcome::TimedOut);
        let out = poll_until(Duration::from_secs(2), &mut || Err("gone".into()));
        assert_eq!(out, StepOutcome::Failed("gone".into()));
        // Checked once even with no time at all.
        let out = poll_until(Duration::ZERO, &mut || Ok(true));
        assert!(matches!(out, StepOutcome::Done(_)), "{out:?}");
    }

    #[test]
    fn the_console_operator_polls_until_the_device_shows_the_change() {
        let mut n = 0;
        let out = ConsoleOperator::new().ask(
            Action::RemoveCard,
            "pull the card now",
            Duration::from_secs(2),
            &mut || {
                n += 1;
                Ok(n >= 2)
            },
        );
        assert!(matches!(out, StepOutcome::Done(_)), "{out:?}");
        let out = ConsoleOperator::new().ask(
            Action::OpenCover,
            "open the cover now",
            Duration::from_millis(100),
            &mut || Ok(false),
        );
        assert_eq!(out, StepOutcome::TimedOut);
    }

    #[test]
    fn non_interactive_declines_and_never_polls() {
        let out = NonInteractive.ask(
            Action::RemoveCard,
            "pull the card now",
            Duration::from_secs(1),
            &mut || panic!("polled"),
        );
        let StepOutcome::Declined(why) = out else {
            panic!("{out:?}")
        };
        assert!(why.contains("pull the card now"), "{why}");
    }
}
