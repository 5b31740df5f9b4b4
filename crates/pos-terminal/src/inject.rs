//! Fault injection: the steps of a sale where a test (or `posctl sale --inject`) can make
//! something go wrong, and the faults it can inject.
//!
//! The service calls [`StepHook::at`] at each [`Step`]; a simulated lane's hook performs the
//! faults named for that step on its virtual devices and fake host. A real lane uses
//! [`NoHook`].
//!
//! ```
//! use pos_terminal::inject::{Injection, InjectedFault, Step};
//! let i: Injection = "after-approve:card-removed".parse().unwrap();
//! assert_eq!(i.step, Step::AfterApprove);
//! assert_eq!(i.fault, InjectedFault::CardRemoved);
//! assert!("printing:host-down".parse::<Injection>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

/// A point in a sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// The card is about to be read (health gate passed, transaction created).
    CardRead,
    /// The reversal record is written (Armed); the request has not left.
    BeforeSend,
    /// The request's bytes have left; no answer yet.
    AfterSend,
    /// The host approved (HostApproved written); the card has not been told yet.
    AfterApprove,
    /// The second GENERATE AC is about to go to the card.
    SecondGac,
    /// Printing is written; the receipt is about to go to the printer.
    Printing,
    /// The printer took the receipt; Completed is not written yet.
    AfterPrint,
}

impl Step {
    /// Every step, in sale order.
    pub const ALL: [Step; 7] = [
        Step::CardRead,
        Step::BeforeSend,
        Step::AfterSend,
        Step::AfterApprove,
        Step::SecondGac,
        Step::Printing,
        Step::AfterPrint,
    ];

    /// The name on the command line (`card-read`, `before-send`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Step::CardRead => "card-read",
            Step::BeforeSend => "before-send",
            Step::AfterSend => "after-send",
            Step::AfterApprove => "after-approve",
            Step::SecondGac => "second-gac",
            Step::Printing => "printing",
            Step::AfterPrint => "after-print",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Step {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Step::ALL
            .into_iter()
            .find(|st| st.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown step {s:?} (one of: {})",
                    Step::ALL.map(Step::name).join(", ")
                )
            })
    }
}

/// A fault to inject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InjectedFault {
    /// The card is pulled out of the reader.
    CardRemoved,
    /// The card stops answering.
    CardMute,
    /// The reader goes away (USB unplugged).
    ReaderUnplugged,
    /// The host takes the request (and approves it) but its answer never arrives in time.
    HostTimeout,
    /// The host is down: before the request is sent, the connection is refused; after, the
    /// connection drops without an answer and nothing was processed.
    HostDown,
    /// The host declines with this response code.
    HostDecline(String),
    /// The host approves, then drops the connection without answering.
    HostDropAfterApprove,
    /// The host rejects the next N reversals.
    ReversalRejected(u32),
    /// The printer runs out of paper.
    PaperOut,
    /// The printer cover opens.
    CoverOpen,
    /// The cutter jams.
    CutterJam,
    /// The printer goes offline.
    PrinterOffline,
    /// The process dies at that step (SIGKILL: no destructor, no flush).
    Crash,
}

impl InjectedFault {
    /// The name on the command line.
    pub fn name(&self) -> String {
        match self {
            InjectedFault::CardRemoved => "card-removed".into(),
            InjectedFault::CardMute => "card-mute".into(),
            InjectedFault::ReaderUnplugged => "reader-unplugged".into(),
            InjectedFault::HostTimeout => "host-timeout".into(),
            InjectedFault::HostDown => "host-down".into(),
            InjectedFault::HostDecline(code) => format!("host-decline:{code}"),
            InjectedFault::HostDropAfterApprove => "host-drop-after-approve".into(),
            InjectedFault::ReversalRejected(n) => format!("reversal-rejected:{n}"),
            InjectedFault::PaperOut => "paper-out".into(),
            InjectedFault::CoverOpen => "cover-open".into(),
            InjectedFault::CutterJam => "cutter-jam".into(),
            InjectedFault::PrinterOffline => "printer-offline".into(),
            InjectedFault::Crash => "crash".into(),
        }
    }

    /// True for faults of the fake host (they are armed in the host when the sale starts and
    /// act on its next request or reversal).
    pub fn is_host_fault(&self) -> bool {
        matches!(
            self,
            InjectedFault::HostTimeout
                | InjectedFault::HostDown
                | InjectedFault::HostDecline(_)
                | InjectedFault::HostDropAfterApprove
                | InjectedFault::ReversalRejected(_)
        )
    }

    /// The steps where this fault can happen.
    pub fn steps(&self) -> &'static [Step] {
        use Step::*;
        match self {
            InjectedFault::CardRemoved | InjectedFault::CardMute => {
                &[CardRead, BeforeSend, AfterSend, AfterApprove, SecondGac]
            }
            InjectedFault::ReaderUnplugged => {
                &[CardRead, BeforeSend, AfterSend, AfterApprove, SecondGac]
            }
            InjectedFault::HostTimeout | InjectedFault::HostDecline(_) => &[BeforeSend, AfterSend],
            InjectedFault::HostDown => &[BeforeSend, AfterSend],
            InjectedFault::HostDropAfterApprove => &[AfterSend],
            InjectedFault::ReversalRejected(_) => &Step::ALL,
            InjectedFault::PaperOut
            | InjectedFault::CoverOpen
            | InjectedFault::CutterJam
            | InjectedFault::PrinterOffline => &[CardRead, Printing, AfterPrint],
            InjectedFault::Crash => &Step::ALL,
        }
    }

    /// Every fault without a parameter, plus `host-decline:05` and `reversal-rejected:1`, for
    /// test matrices.
    pub fn examples() -> Vec<InjectedFault> {
        vec![
            InjectedFault::CardRemoved,
            InjectedFault::CardMute,
            InjectedFault::ReaderUnplugged,
            InjectedFault::HostTimeout,
            InjectedFault::HostDown,
            InjectedFault::HostDecline("05".into()),
            InjectedFault::HostDropAfterApprove,
            InjectedFault::ReversalRejected(1),
            InjectedFault::PaperOut,
            InjectedFault::CoverOpen,
            InjectedFault::CutterJam,
            InjectedFault::PrinterOffline,
            InjectedFault::Crash,
        ]
    }
}

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

const FAULT_NAMES: &str = "card-removed, card-mute, reader-unplugged, host-timeout, host-down, \
     host-decline:CODE, host-drop-after-approve, reversal-rejected:N, paper-out, cover-open, \
     cutter-jam, printer-offline, crash";

impl FromStr for InjectedFault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "card-removed" => InjectedFault::CardRemoved,
            "card-mute" => InjectedFault::CardMute,
            "reader-unplugged" => InjectedFault::ReaderUnplugged,
            "host-timeout" => InjectedFault::HostTimeout,
            "host-down" => InjectedFault::HostDown,
            "host-drop-after-approve" => InjectedFault::HostDropAfterApprove,
            "paper-out" => InjectedFault::PaperOut,
            "cover-open" => InjectedFault::CoverOpen,
            "cutter-jam" => InjectedFault::CutterJam,
            "printer-offline" => InjectedFault::PrinterOffline,
            "crash" => InjectedFault::Crash,
            _ => {
                if let Some(code) = s.strip_prefix("host-decline:") {
                    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        return Err(format!(
                            "host-decline:CODE takes a 2-character response code, got {code:?}"
                        ));
                    }
                    if pos_acquirer::is_approval_code(code) {
                        return Err(format!("{code} is an approval code, not a decline"));
                    }
                    InjectedFault::HostDecline(code.to_string())
                } else if let Some(n) = s.strip_prefix("reversal-rejected:") {
                    let n: u32 = n
                        .parse()
                        .map_err(|_| format!("reversal-rejected:N takes a count, got {n:?}"))?;
                    InjectedFault::ReversalRejected(n)
                } else {
                    return Err(format!("unknown fault {s:?} (one of: {FAULT_NAMES})"));
                }
            }
        })
    }
}

/// One fault at one step, written `STEP:FAULT` (e.g. `after-approve:card-removed`,
/// `before-send:host-decline:51`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Injection {
    /// Where.
    pub step: Step,
    /// What.
    pub fault: InjectedFault,
}

impl fmt::Display for Injection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.step, self.fault)
    }
}

impl FromStr for Injection {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (step, fault) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?}: write STEP:FAULT, e.g. after-approve:card-removed"))?;
        let step: Step = step.parse()?;
        let fault: InjectedFault = fault.parse()?;
        if !fault.steps().contains(&step) {
            return Err(format!(
                "{fault} cannot happen at {step} (it can at: {})",
                fault
                    .steps()
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(Injection { step, fault })
    }
}

/// Called by the service at each step of a transaction.
pub trait StepHook {
    /// The transaction reached `step`. A simulated lane performs the faults injected there;
    /// [`InjectedFault::Crash`] does not return.
    fn at(&mut self, step: Step);

    /// The service asks the cardholder something (insert, swipe, remove). A real lane
    /// shows it; a simulated lane may act it out. Default: nothing.
    fn prompt(&mut self, _prompt: crate::service::Prompt) {}
}

/// The hook of a real lane: does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHook;

impl StepHook for NoHook {
    fn at(&mut self, _step: Step) {}
}

/// Kill this process at once with SIGKILL: no destructors, no buffered writes flushed, as a
/// power cut or the OOM killer would. Used by [`InjectedFault::Crash`].
pub fn crash_now() -> ! {
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    // SIGKILL cannot be caught; should the call fail, abort is the next hardest stop.
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for step in Step::ALL {
            assert_eq!(step.name().parse::<Step>(), Ok(step));
            for fault in InjectedFault::examples() {
                let text = format!("{step}:{fault}");
                match text.parse::<Injection>() {
                    Ok(i) => {
                        assert!(fault.steps().contains(&step));
                        assert_eq!(i.to_string(), text);
                    }
                    Err(e) => {
                        assert!(!fault.steps().contains(&step), "{text}: {e}");
                        assert!(e.contains("cannot happen"), "{e}");
                    }
                }
            }
        }
    }

    #[test]
    fn bad_input_is_explained() {
        assert!("x".parse::<Injection>().unwrap_err().contains("STEP:FAULT"));
        assert!(
            "printing:fire"
                .parse::<Injection>()
                .unwrap_err()
                .contains("unknown fault")
        );
        assert!(
            "later:crash"
                .parse::<Injection>()
                .unwrap_err()
                .contains("unknown step")
        );
        assert!("before-send:host-decline:00".parse::<Injection>().is_err());
        assert!("before-send:host-decline:5".parse::<Injection>().is_err());
        assert!(
            "card-read:reversal-rejected:x"
                .parse::<Injection>()
                .is_err()
        );
        assert_eq!(
            "before-send:host-decline:51"
                .parse::<Injection>()
                .map(|i| i.fault),
            Ok(InjectedFault::HostDecline("51".into()))
        );
    }
}
