//! Host faults of an injection list, armed in the built-in fake host.

use std::sync::Arc;

use pos_acquirer::sim::{FakeHost, HostFault};
use pos_terminal::inject::{InjectedFault, Injection, Step};

use crate::HostArm;

/// The [`HostArm`] callback for [`SimLane::hook`](crate::SimLane::hook) that arms each
/// injected host fault in `host`:
///
/// | injection | fake host |
/// |---|---|
/// | `host-timeout` | [`HostFault::Timeout`]: approves, never answers |
/// | `before-send:host-down` | [`FakeHost::set_down`]: connections refused |
/// | `after-send:host-down` | [`HostFault::CloseOnRequest`]: reads the request, closes, processes nothing |
/// | `host-decline:CODE` | [`HostFault::Decline`] |
/// | `host-drop-after-approve` | [`HostFault::DropAfterApprove`] |
/// | `reversal-rejected:N` | [`HostFault::RejectReversals`] |
///
/// Call [`FakeHost::set_down`]`(false)` and [`FakeHost::clear_faults`] after the
/// transaction.
pub fn arm_fake_host(host: Arc<FakeHost>, injections: &[Injection]) -> HostArm {
    let down_before_send = injections
        .iter()
        .any(|i| i.fault == InjectedFault::HostDown && i.step == Step::BeforeSend);
    Box::new(move |fault: &InjectedFault| match fault {
        InjectedFault::HostTimeout => host.arm(HostFault::Timeout),
        InjectedFault::HostDown if down_before_send => {
            if let Err(e) = host.set_down(true) {
                log::warn!("fake host cannot go down: {e}");
            }
        }
        InjectedFault::HostDown => host.arm(HostFault::CloseOnRequest),
        InjectedFault::HostDecline(code) => host.arm(HostFault::Decline(code.clone())),
        InjectedFault::HostDropAfterApprove => host.arm(HostFault::DropAfterApprove),
        InjectedFault::ReversalRejected(n) => host.arm(HostFault::RejectReversals(*n)),
        _ => {}
    })
}
