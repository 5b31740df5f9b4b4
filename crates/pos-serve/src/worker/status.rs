//! What the service knows of the lane's devices and of the transaction in progress, as the
//! API shows it (`/v1/devices`, `/v1/status`).

use pos_acquirer::Operation;
use pos_hal::{CheckOutcome, FaultKind};
use pos_terminal::State;
use serde::Serialize;

/// A device role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The chip reader.
    Reader,
    /// The receipt printer.
    Printer,
    /// The magnetic stripe reader.
    Msr,
}

impl Role {
    /// `reader`, `printer`, `msr`.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Printer => "printer",
            Role::Msr => "msr",
        }
    }
}

/// Where a device of the lane stands, as `/v1/devices` shows it (`state`): the service's
/// view, with a device that went away (`missing`, being re-opened) apart from one the lane
/// does not have (`not_configured`). Not [`pos_hal::DeviceState`] (UnifiedPOS closed, idle,
/// busy, error): these are the API's own names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Open and usable.
    Ready,
    /// Open but not usable now (printer out of paper, reader error...): see `fault`.
    Fault,
    /// Gone (unplugged, not opened yet): being re-opened with backoff.
    Missing,
    /// The lane has no such device (its URI is `none`).
    NotConfigured,
}

impl Availability {
    /// The name on the wire: `ready`, `fault`, `missing`, `not_configured`.
    pub const fn name(self) -> &'static str {
        match self {
            Availability::Ready => "ready",
            Availability::Fault => "fault",
            Availability::Missing => "missing",
            Availability::NotConfigured => "not_configured",
        }
    }
}

/// What the service knows of one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceStatus {
    /// The configured URI (`none`: the lane has no such device).
    pub uri: String,
    /// Ready, fault (open but not usable now), missing (gone; being re-opened), not
    /// configured.
    pub state: Availability,
    /// The fault kind, when not ready (its [`FaultKind::name`] in JSON).
    pub fault: Option<FaultKind>,
    /// Plain words.
    pub detail: String,
    /// Who the device is (from the driver).
    pub info: Option<String>,
    /// Chip reader: a card is in the slot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_present: Option<bool>,
    /// Printer: its conditions (`paper_near_end`, `paper_out`, ...; empty when ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<&'static str>>,
    /// Since when the device is in this state (ms since the Unix epoch).
    pub since_ms: i64,
    /// When it was last looked at.
    pub checked_ms: i64,
    /// The last scheduled health check: `pass`, `warn` or `fail`, and its problems.
    pub health: Option<HealthSummary>,
    /// Failed re-open attempts since the device went away.
    pub reopen_attempts: u32,
}

/// The outcome of a device's last health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthSummary {
    /// The worst outcome of its checks: `pass`, `warn` or `fail` (`skipped` when no check
    /// ran); `fail` when the check itself failed.
    pub outcome: CheckOutcome,
    /// The checks that did not pass: `name: detail`.
    pub problems: Vec<String>,
    /// When (ms since the Unix epoch).
    pub checked_ms: i64,
}

impl DeviceStatus {
    pub(crate) fn new_for(uri: &str) -> Self {
        let configured = uri != "none" && !uri.is_empty();
        DeviceStatus {
            uri: uri.to_string(),
            state: if configured {
                Availability::Missing
            } else {
                Availability::NotConfigured
            },
            fault: None,
            detail: if configured {
                "not opened yet".into()
            } else {
                "the lane has none".into()
            },
            info: None,
            card_present: None,
            conditions: None,
            since_ms: now_ms(),
            checked_ms: 0,
            health: None,
            reopen_attempts: 0,
        }
    }

    pub(super) fn configured(&self) -> bool {
        self.state != Availability::NotConfigured
    }

    pub(super) fn set(
        &mut self,
        state: Availability,
        fault: Option<FaultKind>,
        detail: impl Into<String>,
    ) {
        if self.state != state || self.fault != fault {
            self.since_ms = now_ms();
        }
        self.state = state;
        self.fault = fault;
        self.detail = detail.into();
        self.checked_ms = now_ms();
    }
}

/// The devices of the lane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DevicesStatus {
    /// The chip reader.
    pub reader: DeviceStatus,
    /// The receipt printer.
    pub printer: DeviceStatus,
    /// The magnetic stripe reader.
    pub msr: DeviceStatus,
}

/// The transaction in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Current {
    /// Its journal id (`None` for the moment before it is created).
    pub id: Option<i64>,
    /// The operation (its name in JSON).
    #[serde(serialize_with = "operation_name")]
    pub operation: Operation,
    /// Its state.
    pub state: Option<State>,
}

fn operation_name<S: serde::Serializer>(op: &Operation, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(op.name())
}

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn typed_fields_keep_their_wire_names() {
        use serde_json::Value;
        for (a, name) in [
            (Availability::Ready, "ready"),
            (Availability::Fault, "fault"),
            (Availability::Missing, "missing"),
            (Availability::NotConfigured, "not_configured"),
        ] {
            assert_eq!(a.name(), name);
            assert_eq!(serde_json::to_value(a).unwrap(), name);
        }
        let mut d = DeviceStatus::new_for("none");
        assert_eq!(serde_json::to_value(&d).unwrap()["state"], "not_configured");
        assert_eq!(serde_json::to_value(&d).unwrap()["fault"], Value::Null);
        d.set(Availability::Fault, Some(FaultKind::PaperOut), "not ready");
        d.health = Some(HealthSummary {
            outcome: CheckOutcome::Warn,
            problems: Vec::new(),
            checked_ms: 1,
        });
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["state"], "fault");
        assert_eq!(v["fault"], "paper_out");
        assert_eq!(v["health"]["outcome"], "warn");
        let c = Current {
            id: Some(7),
            operation: Operation::PreAuth,
            state: None,
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"id":7,"operation":"preauth","state":null}"#
        );
    }
}
