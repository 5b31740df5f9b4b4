//! Cash drawers: the pulse that opens one, its sensor, the drawer trait.
//!
//! A receipt-printer lane's drawer hangs on the printer's drawer kick-out connector: the
//! printer pulses pin 2 or pin 5 to release the drawer (ESC/POS `ESC p`) and reports the
//! drawer's open/closed switch on pin 3 (ESC/POS `DLE EOT 1`, bit 2). Which level of pin 3
//! means "open" depends on the drawer, so the driver's profile says it.

use std::fmt;
use std::time::Duration;

use crate::device::Device;
use crate::document::DrawerPin;

/// What a drawer's open/closed switch says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum DrawerState {
    /// The drawer is open.
    Open,
    /// The drawer is closed.
    Closed,
    /// The device cannot tell: it has no (known) way to report the switch. A device that
    /// could tell but did not answer is an error, not `Unknown`.
    Unknown,
}

impl DrawerState {
    /// Stable snake_case name (`open`, `closed`, `unknown`), used in JSON, logs and the CLI.
    pub const fn name(self) -> &'static str {
        match self {
            DrawerState::Open => "open",
            DrawerState::Closed => "closed",
            DrawerState::Unknown => "unknown",
        }
    }
}

impl fmt::Display for DrawerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl DrawerPin {
    /// The connector pin's number: 2 or 5.
    pub const fn number(self) -> u8 {
        match self {
            DrawerPin::Pin2 => 2,
            DrawerPin::Pin5 => 5,
        }
    }

    /// The pin of a connector pin number (2 or 5); `None` for any other number.
    pub const fn from_number(n: u8) -> Option<DrawerPin> {
        match n {
            2 => Some(DrawerPin::Pin2),
            5 => Some(DrawerPin::Pin5),
            _ => None,
        }
    }
}

/// The pulse that releases a drawer: which connector pin, how long the solenoid is driven
/// (`on`) and how long the printer waits after it (`off`).
///
/// ESC/POS counts both times in units of 2 ms up to 255 units, so each is at most
/// [`DrawerPulse::MAX`] (510 ms); drivers round to their unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DrawerPulse {
    /// The connector pin pulsed.
    pub pin: DrawerPin,
    /// How long the pin is driven (the solenoid's on time).
    #[cfg_attr(feature = "serde", serde(with = "millis"))]
    pub on: Duration,
    /// The pause after the pulse.
    #[cfg_attr(feature = "serde", serde(with = "millis"))]
    pub off: Duration,
}

impl DrawerPulse {
    /// The usual on time: 50 ms (what most drawer solenoids need; longer ones overheat).
    pub const DEFAULT_ON: Duration = Duration::from_millis(50);
    /// The usual off time: 500 ms.
    pub const DEFAULT_OFF: Duration = Duration::from_millis(500);
    /// The longest on or off time ESC/POS can express (255 units of 2 ms).
    pub const MAX: Duration = Duration::from_millis(510);

    /// The usual pulse on `pin`: 50 ms on, 500 ms off.
    pub const fn new(pin: DrawerPin) -> Self {
        DrawerPulse {
            pin,
            on: Self::DEFAULT_ON,
            off: Self::DEFAULT_OFF,
        }
    }

    /// The same pulse with other times.
    pub const fn with_times(self, on: Duration, off: Duration) -> Self {
        DrawerPulse { on, off, ..self }
    }

    /// Why this pulse cannot be sent, if it cannot: an on time of zero (nothing would
    /// move), or a time longer than [`DrawerPulse::MAX`].
    pub fn problem(&self) -> Option<String> {
        if self.on.is_zero() {
            Some("the drawer pulse's on time is 0 ms: the drawer would not open".into())
        } else if self.on > Self::MAX || self.off > Self::MAX {
            Some(format!(
                "drawer pulse {} ms on / {} ms off: each time is at most {} ms",
                self.on.as_millis(),
                self.off.as_millis(),
                Self::MAX.as_millis()
            ))
        } else {
            None
        }
    }
}

impl Default for DrawerPulse {
    fn default() -> Self {
        DrawerPulse::new(DrawerPin::Pin2)
    }
}

impl fmt::Display for DrawerPulse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pin {}, {} ms on, {} ms off",
            self.pin.number(),
            self.on.as_millis(),
            self.off.as_millis()
        )
    }
}

#[cfg(feature = "serde")]
mod millis {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Duration, D::Error> {
        <u64 as serde::Deserialize>::deserialize(d).map(Duration::from_millis)
    }
}

/// A cash drawer.
///
/// Timeouts: `drawer_state` is one status exchange bounded by the driver's status timeout
/// (seconds). `open_drawer` is a status exchange, the pulse command (bounded by the driver's
/// write timeout), the pulse's own on and off times, then a status exchange: a few seconds
/// at most. Nothing waits for a person to close the drawer; callers poll `drawer_state`.
pub trait CashDrawer: Device {
    /// The pulse [`open_drawer`](Self::open_drawer) sends (pin and times, as configured).
    /// Does no I/O.
    fn pulse(&self) -> DrawerPulse;

    /// Release the drawer with [`pulse`](Self::pulse) and say what its switch reads after
    /// the pulse.
    ///
    /// `Ok(Open)` means the switch reads open; `Ok(Closed)` means the pulse went out but the
    /// switch still reads closed (a jammed or locked drawer, a drawer on the other pin, or
    /// no drawer connected): never reported as opened. `Ok(Unknown)` when the device cannot
    /// read the switch.
    ///
    /// Refuses (no pulse sent) while the device that drives the drawer cannot act on it at
    /// once: a printer that is offline would keep the pulse in its buffer and open the
    /// drawer later, unasked. Errors: `CoverOpen`, `PaperOut`, `CutterJam`,
    /// `PrinterOffline`, `Unrecoverable` (the printer's stopping condition; the drawer stays
    /// shut), `InvalidInput` (the device has no drawer pulse, or the pulse's times are out
    /// of range), `Disconnected`, `Timeout`, `Protocol`.
    fn open_drawer(&mut self) -> Result<DrawerState, Self::Error>;

    /// What the drawer's switch reads now (asked of the device, not cached).
    ///
    /// `Unknown` when the device has no (known) way to report the switch. Errors:
    /// `PrinterOffline`/`Timeout` when the device does not answer, `Disconnected`,
    /// `Protocol` (the reply does not have the status pattern).
    fn drawer_state(&mut self) -> Result<DrawerState, Self::Error>;
}

forward_lent_and_boxed!(CashDrawer {
    fn pulse(&self) -> DrawerPulse {
        (**self).pulse()
    }
    fn open_drawer(&mut self) -> Result<DrawerState, Self::Error> {
        (**self).open_drawer()
    }
    fn drawer_state(&mut self) -> Result<DrawerState, Self::Error> {
        (**self).drawer_state()
    }
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_by_number() {
        assert_eq!(DrawerPin::from_number(2), Some(DrawerPin::Pin2));
        assert_eq!(DrawerPin::from_number(5), Some(DrawerPin::Pin5));
        assert_eq!(DrawerPin::from_number(3), None);
        assert_eq!(DrawerPin::Pin5.number(), 5);
    }

    #[test]
    fn pulse_limits() {
        let p = DrawerPulse::new(DrawerPin::Pin5);
        assert_eq!(p.problem(), None);
        assert_eq!(p.to_string(), "pin 5, 50 ms on, 500 ms off");
        let zero = p.with_times(Duration::ZERO, Duration::ZERO);
        assert!(zero.problem().is_some_and(|m| m.contains("0 ms")));
        let long = p.with_times(Duration::from_millis(600), Duration::ZERO);
        assert!(long.problem().is_some_and(|m| m.contains("510")));
    }

    #[test]
    fn state_names() {
        assert_eq!(DrawerState::Open.to_string(), "open");
        assert_eq!(DrawerState::Closed.name(), "closed");
        assert_eq!(DrawerState::Unknown.name(), "unknown");
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_forms() {
        let j = serde_json::to_value(DrawerPulse::new(DrawerPin::Pin2)).unwrap();
        assert_eq!(j, serde_json::json!({"pin": "pin2", "on": 50, "off": 500}));
        let back: DrawerPulse = serde_json::from_value(j).unwrap();
        assert_eq!(back, DrawerPulse::default());
        assert_eq!(
            serde_json::to_string(&DrawerState::Closed).unwrap(),
            "\"closed\""
        );
    }
}
