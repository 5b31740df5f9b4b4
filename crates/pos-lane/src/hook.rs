//! The step hook of a simulated lane.

use pos_terminal::inject::{self, InjectedFault, Injection, Step, StepHook};

use crate::sim::SimLane;

/// Arms one host fault in the fake host (which lives outside this crate).
pub type HostArm = Box<dyn FnMut(&InjectedFault)>;

/// The [`StepHook`] of a simulated lane, made by [`SimLane::hook`].
///
/// - At the first [`at`](StepHook::at) call, whatever the step, each injected host fault
///   ([`InjectedFault::is_host_fault`]) is handed once to the host callback.
/// - At each step, the device faults injected at that step are performed: card-removed,
///   card-mute, reader-unplugged on the virtual reader; printer faults on the virtual
///   printer (paper-out at [`Step::Printing`] runs out mid-job);
///   [`InjectedFault::Crash`] kills the process ([`inject::crash_now`]).
///
/// [`applied`](Self::applied) lists what was done, in order. A fault that cannot be
/// performed (the device is not simulated, no host callback) is logged and not listed.
pub struct SimHook {
    lane: SimLane,
    injections: Vec<Injection>,
    host: Option<HostArm>,
    armed: bool,
    applied: Vec<Injection>,
}

impl std::fmt::Debug for SimHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHook")
            .field("injections", &self.injections)
            .field("host", &self.host.is_some())
            .field("armed", &self.armed)
            .field("applied", &self.applied)
            .finish()
    }
}

impl SimHook {
    pub(crate) fn new(lane: SimLane, injections: Vec<Injection>, host: Option<HostArm>) -> Self {
        SimHook {
            lane,
            injections,
            host,
            armed: false,
            applied: Vec::new(),
        }
    }

    /// The injections performed so far (host faults when handed to the host), in order.
    pub fn applied(&self) -> Vec<Injection> {
        self.applied.clone()
    }

    /// The injections this hook was given.
    pub fn injections(&self) -> &[Injection] {
        &self.injections
    }

    fn arm_host(&mut self) {
        self.armed = true;
        for i in &self.injections {
            if !i.fault.is_host_fault() {
                continue;
            }
            match self.host.as_mut() {
                Some(arm) => {
                    arm(&i.fault);
                    self.applied.push(i.clone());
                }
                None => log::warn!("injection {i}: no fake host to arm, not performed"),
            }
        }
    }

    fn perform(&self, i: &Injection) -> Result<bool, crate::LaneError> {
        let lane = &self.lane;
        match &i.fault {
            InjectedFault::CardRemoved => lane.remove_card()?,
            InjectedFault::CardMute => lane.mute_card()?,
            InjectedFault::ReaderUnplugged => lane.unplug_reader()?,
            f @ (InjectedFault::PaperOut
            | InjectedFault::CoverOpen
            | InjectedFault::CutterJam
            | InjectedFault::PrinterOffline) => lane.printer_fault(f, i.step == Step::Printing)?,
            InjectedFault::Crash => {
                log::warn!("injection {i}: killing the process");
                inject::crash_now()
            }
            // Host faults are armed at the first step.
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl StepHook for SimHook {
    /// The simulated cardholder: when the service asks for a fallback swipe, the lane's card
    /// is swiped.
    fn prompt(&mut self, prompt: pos_terminal::Prompt) {
        if prompt == pos_terminal::Prompt::SwipeFallback {
            if let Err(e) = self.lane.swipe(self.lane.card()) {
                log::warn!("simulated fallback swipe not performed: {e}");
            }
        }
    }

    fn at(&mut self, step: Step) {
        if !self.armed {
            self.arm_host();
        }
        let due: Vec<Injection> = self
            .injections
            .iter()
            .filter(|i| i.step == step && !i.fault.is_host_fault())
            .cloned()
            .collect();
        for i in due {
            match self.perform(&i) {
                Ok(true) => {
                    log::info!("injected {i}");
                    self.applied.push(i);
                }
                Ok(false) => {}
                Err(e) => log::warn!("injection {i} not performed: {e}"),
            }
        }
    }
}
