//! A driver can be lent (`&mut driver`) wherever a HAL trait is wanted, as in embedded-hal,
//! and boxed; both forward every method to the driver.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use pos_hal::{
    Atr, ChipReader, Device, DeviceInfo, DeviceKind, DeviceState, EventHub, FaultKind, HealthLevel,
    HealthReport, MagstripeReader, ReaderCapabilities, SlotState, Subscription, Swipe, Track,
    TrackStatus,
};

/// The error of the test doubles.
#[derive(Debug)]
struct Failed(FaultKind);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.name())
    }
}

impl std::error::Error for Failed {}

impl pos_hal::Fault for Failed {
    fn kind(&self) -> FaultKind {
        self.0
    }
}

/// A one-slot reader that counts what it was asked and echoes APDUs.
struct Echo {
    hub: EventHub,
    transmitted: usize,
    powered: bool,
}

impl Device for Echo {
    type Error = Failed;
    fn info(&self) -> DeviceInfo {
        DeviceInfo::new(DeviceKind::ChipReader, "test:echo")
    }
    fn state(&self) -> DeviceState {
        DeviceState::Idle
    }
    fn check_health(&mut self, level: HealthLevel) -> Result<HealthReport, Failed> {
        let mut r = HealthReport::new("test:echo".to_string(), level);
        r.pass("echo", "answers");
        Ok(r)
    }
    fn subscribe(&mut self) -> Result<Subscription, Failed> {
        Ok(self.hub.subscribe())
    }
}

impl ChipReader for Echo {
    fn slot_count(&self) -> u8 {
        1
    }
    fn capabilities(&self) -> ReaderCapabilities {
        ReaderCapabilities::default()
    }
    fn slot_status(&mut self, _: u8) -> Result<SlotState, Failed> {
        Ok(SlotState::CARD_PRESENT)
    }
    fn power_on(&mut self, _: u8) -> Result<Atr, Failed> {
        self.powered = true;
        Ok(Atr(vec![0x3B, 0x00]))
    }
    fn power_off(&mut self, _: u8) -> Result<(), Failed> {
        self.powered = false;
        Ok(())
    }
    fn transmit(&mut self, _: u8, command: &[u8]) -> Result<Vec<u8>, Failed> {
        if !self.powered {
            return Err(Failed(FaultKind::CardAbsent));
        }
        self.transmitted += 1;
        Ok([command, &[0x90, 0x00]].concat())
    }
}

impl MagstripeReader for Echo {
    fn wait_for_swipe(&mut self, _: Duration) -> Result<Swipe, Failed> {
        Ok(Swipe {
            tracks: [
                Track::empty(TrackStatus::Empty),
                Track::empty(TrackStatus::Empty),
                Track::empty(TrackStatus::Empty),
            ],
        })
    }
}

/// Code written against the traits, taking the driver by value.
fn use_reader<R: ChipReader>(mut r: R) -> Vec<u8> {
    r.power_on(0).unwrap();
    let answer = r.transmit(0, &[0x00, 0xA4]).unwrap();
    r.power_off(0).unwrap();
    answer
}

fn health<D: Device>(mut d: D) -> usize {
    d.check_health(HealthLevel::Internal).unwrap().checks.len()
}

fn uri_and_events<D: Device>(mut d: D) -> (String, bool) {
    (d.info().uri, d.subscribe().is_ok())
}

fn swipe<M: MagstripeReader>(mut m: M) -> [TrackStatus; 3] {
    m.wait_for_swipe(Duration::ZERO).unwrap().statuses()
}

fn echo() -> Echo {
    Echo {
        hub: EventHub::new("test:echo"),
        transmitted: 0,
        powered: false,
    }
}

#[test]
fn a_lent_driver_is_used_and_given_back() {
    let mut reader = echo();
    assert_eq!(use_reader(&mut reader), vec![0x00, 0xA4, 0x90, 0x00]);
    assert_eq!(use_reader(&mut reader), vec![0x00, 0xA4, 0x90, 0x00]);
    // The caller still owns it, with what the borrower did.
    assert_eq!(reader.transmitted, 2);
    assert!(!reader.powered);
    assert_eq!(health(&mut reader), 1);
    assert_eq!(swipe(&mut reader), [TrackStatus::Empty; 3]);
    assert_eq!(uri_and_events(&mut reader), ("test:echo".to_string(), true));
}

#[test]
fn a_boxed_driver_forwards_too() {
    let boxed: Box<Echo> = Box::new(echo());
    assert_eq!(use_reader(boxed), vec![0x00, 0xA4, 0x90, 0x00]);
}
