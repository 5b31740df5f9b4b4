//! The driver against the virtual reader at the USB-message level: every exchange level,
//! card presence by interrupt and by polling, and every fault classified.

use std::time::{Duration, Instant};

use pos_ccid::sim::{
    SimFaults, SimLevel, SimReaderConfig, SimReaderHandle, TestCard, VirtualReader,
};
use pos_ccid::{CcidError, CcidReader, ReaderConfig};
use pos_hal::{
    CardChannel, ChipReader, DeviceEvent, Fault, FaultKind, SlotChannel, SlotState, Subscription,
};

type Reader = CcidReader<VirtualReader>;

fn config() -> ReaderConfig {
    ReaderConfig {
        command_timeout: Duration::from_millis(500),
        poll_interval: Duration::from_millis(20),
        ..ReaderConfig::default()
    }
}

fn rig(level: SimLevel, interrupt: bool) -> (Reader, SimReaderHandle) {
    let cfg = SimReaderConfig {
        level,
        interrupt,
        ..SimReaderConfig::default()
    };
    let (vr, handle) = VirtualReader::new(cfg, "sim:ccid");
    (CcidReader::new(vr, "sim:ccid", config()), handle)
}

fn card_for(level: SimLevel) -> TestCard {
    match level {
        SimLevel::TpduT1 => TestCard::t1(),
        _ => TestCard::t0(),
    }
}

const SELECT_PSE: &[u8] = b"\x00\xA4\x04\x00\x0E1PAY.SYS.DDF01\x00";

fn wait_event(sub: &Subscription, want: fn(&DeviceEvent) -> bool) {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let ev = sub.recv_timeout(left).expect("the event came");
        if want(&ev.event) {
            return;
        }
    }
}

/// The payment directory selection works at every level.
#[test]
fn select_the_payment_directory_at_every_level() {
    for level in [SimLevel::Apdu, SimLevel::TpduT1, SimLevel::TpduT0] {
        let (mut r, h) = rig(level, true);
        h.insert(Box::new(card_for(level)));
        let atr = r.power_on(0).unwrap_or_else(|e| panic!("{level:?}: {e}"));
        assert!(!atr.as_bytes().is_empty());
        let expected_protocol = if level == SimLevel::TpduT1 { 1 } else { 0 };
        assert_eq!(r.protocol(0), Some(expected_protocol), "{level:?}");
        let resp = SlotChannel::new(&mut r, 0).transmit(SELECT_PSE).unwrap();
        match level {
            // T=0: case 4 answered 61xx; the data comes with GET RESPONSE (the EMV layer's job).
            SimLevel::TpduT0 => {
                assert_eq!(resp[0], 0x61, "{resp:02x?}");
                let get = [0x00, 0xC0, 0x00, 0x00, resp[1]];
                let data = r.transmit(0, &get).unwrap();
                assert_eq!(&data[data.len() - 2..], &[0x90, 0x00]);
                assert_eq!(data[0], 0x6F);
            }
            _ => {
                assert_eq!(resp[0], 0x6F, "{level:?}: {resp:02x?}");
                assert_eq!(&resp[resp.len() - 2..], &[0x90, 0x00]);
            }
        }
        assert!(r.slot_status(0).unwrap().contains(SlotState::POWERED));
        r.power_off(0).unwrap();
        assert!(!r.slot_status(0).unwrap().contains(SlotState::POWERED));
    }
}

#[test]
fn t1_chains_commands_and_responses_both_ways() {
    let (mut r, h) = rig(SimLevel::TpduT1, true);
    h.insert(Box::new(TestCard::t1_with_ifsc(32)));
    r.power_on(0).unwrap();
    // 200 bytes of command data with IFSC 32: seven I-blocks out.
    let mut apdu = vec![0x80, 0xEE, 0x00, 0x00, 200];
    apdu.extend((0..200).map(|i| i as u8));
    let resp = r.transmit(0, &apdu).unwrap();
    assert_eq!(&resp[..200], &apdu[5..]);
    assert_eq!(&resp[200..], &[0x90, 0x00]);
    // 256 bytes back (Le = 0): more than the IFSD of 254, so the card chains its answer.
    let resp = r.transmit(0, &[0x80, 0xEE, 0x00, 0x00, 0x00]).unwrap();
    assert_eq!(resp.len(), 258);
    assert!(
        h.exchanges() >= 10,
        "chaining took several blocks: {}",
        h.exchanges()
    );
}

/// A transport that records the length of every message the driver sends.
struct Measured {
    inner: VirtualReader,
    sent: std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
}

impl pos_ccid::CcidTransport for Measured {
    fn target(&self) -> &str {
        self.inner.target()
    }
    fn descriptor(&self) -> &pos_ccid::descriptor::CcidDescriptor {
        self.inner.descriptor()
    }
    fn send(
        &mut self,
        message: &[u8],
        deadline: pos_link::Deadline,
    ) -> Result<(), pos_link::LinkError> {
        self.sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(message.len());
        self.inner.send(message, deadline)
    }
    fn receive(&mut self, deadline: pos_link::Deadline) -> Result<Vec<u8>, pos_link::LinkError> {
        self.inner.receive(deadline)
    }
    fn abort_request(
        &mut self,
        slot: u8,
        seq: u8,
        deadline: pos_link::Deadline,
    ) -> Result<(), pos_link::LinkError> {
        self.inner.abort_request(slot, seq, deadline)
    }
    fn take_interrupt(&mut self) -> Option<Box<dyn pos_ccid::InterruptSource>> {
        self.inner.take_interrupt()
    }
}

#[test]
fn t1_blocks_sent_fit_the_readers_message_length_whatever_the_ifsc() {
    // A 64-byte TPDU reader and a card with IFSC 254: a block of 254 bytes would make a
    // 268-byte message. The host sends blocks of 64 - 10 - 3 - 1 = 50 bytes instead (and
    // asks the card for blocks of at most 49, room for a CRC).
    let cfg = SimReaderConfig {
        level: SimLevel::TpduT1,
        max_message_length: 64,
        ..SimReaderConfig::default()
    };
    let (vr, h) = VirtualReader::new(cfg, "sim:ccid");
    let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let measured = Measured {
        inner: vr,
        sent: sent.clone(),
    };
    let mut r = CcidReader::new(measured, "sim:ccid", config());
    h.insert(Box::new(TestCard::t1()));
    r.power_on(0).unwrap();
    let policy = r.policy(0);
    assert_eq!(
        policy.t1_send_block.value, 50,
        "{}",
        policy.t1_send_block.reason
    );
    assert!(policy.t1_send_block.reason.contains("IFSC is 254"));
    assert_eq!(policy.ifsd.value, 49, "{}", policy.ifsd.reason);
    let mut apdu = vec![0x80, 0xEE, 0x00, 0x00, 200];
    apdu.extend((0..200).map(|i| (i * 3) as u8));
    let resp = r.transmit(0, &apdu).unwrap();
    assert_eq!(&resp[..200], &apdu[5..]);
    assert_eq!(&resp[200..], &[0x90, 0x00]);
    let sent = sent.lock().unwrap();
    assert!(sent.iter().all(|&n| n <= 64), "message lengths {sent:?}");
    // 205 bytes in blocks of 50: five I-blocks, the first four full (10 + 3 + 50 + 1).
    assert_eq!(sent.iter().filter(|&&n| n == 64).count(), 4, "{sent:?}");
}

#[test]
fn a_short_apdu_reader_refuses_what_its_messages_cannot_hold() {
    let cfg = SimReaderConfig {
        level: SimLevel::Apdu,
        max_message_length: 64,
        ..SimReaderConfig::default()
    };
    let (vr, h) = VirtualReader::new(cfg, "sim:ccid");
    let mut r = CcidReader::new(vr, "sim:ccid", config());
    h.insert(Box::new(TestCard::t0()));
    r.power_on(0).unwrap();
    let mut apdu = vec![0x80, 0xEE, 0x00, 0x00, 150];
    apdu.extend((0..150).map(|i| (i * 7) as u8));
    let before = h.exchanges();
    match r.transmit(0, &apdu) {
        Err(pos_ccid::CcidError::ReaderUnsupported(why)) => {
            assert!(why.contains("dwMaxCCIDMessageLength"), "{why}");
        }
        other => panic!("expected ReaderUnsupported, got {other:?}"),
    }
    // An extended APDU, however short, is refused by a short-APDU reader.
    match r.transmit(0, &[0x80, 0xEE, 0x00, 0x00, 0x00, 0x00, 0x02, 0xAA, 0xBB]) {
        Err(pos_ccid::CcidError::ReaderUnsupported(why)) => {
            assert!(why.contains("extended APDU"), "{why}");
        }
        other => panic!("expected ReaderUnsupported, got {other:?}"),
    }
    assert_eq!(h.exchanges(), before, "nothing reached the reader");
    let small = [0x80, 0xEE, 0x00, 0x00, 3, 1, 2, 3];
    assert_eq!(r.transmit(0, &small).unwrap(), [1, 2, 3, 0x90, 0x00]);
}

#[test]
fn apdu_level_chains_through_w_level_parameter() {
    let cfg = SimReaderConfig {
        level: SimLevel::Apdu,
        max_message_length: 64,
        extended_apdu: true,
        ..SimReaderConfig::default()
    };
    let (vr, h) = VirtualReader::new(cfg, "sim:ccid");
    let mut r = CcidReader::new(vr, "sim:ccid", config());
    h.insert(Box::new(TestCard::t0()));
    r.power_on(0).unwrap();
    let mut apdu = vec![0x80, 0xEE, 0x00, 0x00, 150];
    apdu.extend((0..150).map(|i| (i * 7) as u8));
    let resp = r.transmit(0, &apdu).unwrap();
    assert_eq!(&resp[..150], &apdu[5..]);
    assert_eq!(&resp[150..], &[0x90, 0x00]);
}

#[test]
fn insertion_and_removal_events_from_the_interrupt_endpoint() {
    let (mut r, h) = rig(SimLevel::Apdu, true);
    let sub = pos_hal::Device::subscribe(&mut r).unwrap();
    h.insert(Box::new(TestCard::t0()));
    wait_event(&sub, |e| matches!(e, DeviceEvent::CardInserted { slot: 0 }));
    r.power_on(0).unwrap();
    h.remove();
    wait_event(&sub, |e| matches!(e, DeviceEvent::CardRemoved { slot: 0 }));
    let e = r.transmit(0, SELECT_PSE).unwrap_err();
    assert_eq!(e.kind(), FaultKind::CardRemoved, "{e}");
}

/// An interrupt reader with a card in it before the driver opened it (someone else read the
/// insertion notification), subscribed to and powered.
fn powered_before_the_open() -> (Reader, SimReaderHandle, Subscription) {
    let cfg = SimReaderConfig {
        level: SimLevel::Apdu,
        interrupt: true,
        ..SimReaderConfig::default()
    };
    let (vr, h) = VirtualReader::new(cfg, "sim:ccid");
    h.insert(Box::new(TestCard::t0()));
    h.clear_notifications();
    let mut r = CcidReader::new(vr, "sim:ccid", config());
    let sub = pos_hal::Device::subscribe(&mut r).expect("subscribe");
    r.power_on(0).expect("power on");
    (r, h, sub)
}

/// A card already in the reader when the driver opens it, then pulled: the interrupt's
/// "changed, now absent" is a removal although the monitor never saw the card arrive.
/// (Found on the QEMU rig: QEMU's usb-ccid with a card inserted before the open.)
#[test]
fn a_card_inserted_before_the_open_then_pulled_is_reported_removed() {
    let (mut r, h, sub) = powered_before_the_open();
    h.remove();
    wait_event(&sub, |e| matches!(e, DeviceEvent::CardRemoved { slot: 0 }));
    let e = r.transmit(0, SELECT_PSE).unwrap_err();
    assert_eq!(e.kind(), FaultKind::CardRemoved, "{e}");
}

/// The same card pulled mid-exchange, with the reader's answer (an empty DataBlock, no
/// card) arriving before its notification: the exchange fails as a removal first, and the
/// notification that follows is still the removal event. (Found on the QEMU rig, in about
/// a third of the runs.)
#[test]
fn a_removal_found_by_the_exchange_first_is_still_an_event() {
    let (mut r, h, sub) = powered_before_the_open();
    h.hold_notifications(true);
    h.set_faults(SimFaults {
        remove_at_exchange: Some(h.exchanges() + 1),
        removal_answers_empty: true,
        ..SimFaults::default()
    });
    let e = r.transmit(0, SELECT_PSE).unwrap_err();
    assert_eq!(e.kind(), FaultKind::CardRemoved, "{e}");
    let early = sub.recv_timeout(Duration::from_millis(200));
    assert!(
        early.is_err(),
        "no event before the notification: {early:?}"
    );
    h.hold_notifications(false);
    wait_event(&sub, |e| matches!(e, DeviceEvent::CardRemoved { slot: 0 }));
}

/// A notification left from a card inserted and pulled before the driver opened the reader
/// is not an event: this driver never knew that card.
#[test]
fn a_stale_removal_from_before_the_open_is_not_an_event() {
    let cfg = SimReaderConfig {
        level: SimLevel::Apdu,
        interrupt: true,
        ..SimReaderConfig::default()
    };
    let (vr, h) = VirtualReader::new(cfg, "sim:ccid");
    h.insert(Box::new(TestCard::t0()));
    h.clear_notifications();
    // Pulled before the open: its "changed, now absent" is still queued.
    h.remove();
    let mut r = CcidReader::new(vr, "sim:ccid", config());
    let sub = pos_hal::Device::subscribe(&mut r).unwrap();
    // A fresh card afterwards: its insertion is the first event.
    std::thread::sleep(Duration::from_millis(300));
    h.insert(Box::new(TestCard::t0()));
    let first = sub.recv_timeout(Duration::from_secs(5)).unwrap().event;
    assert!(
        matches!(first, DeviceEvent::CardInserted { slot: 0 }),
        "the first event is the new card's insertion, not the old card's removal: {first:?}"
    );
    let next = sub.recv_timeout(Duration::from_millis(300));
    assert!(next.is_err(), "one event only: {next:?}");
}

/// A polling reader (no interrupt endpoint) whose monitor polls slowly.
fn slow_polling_rig() -> (Reader, SimReaderHandle) {
    let cfg = SimReaderConfig {
        level: SimLevel::Apdu,
        interrupt: false,
        ..SimReaderConfig::default()
    };
    let (vr, h) = VirtualReader::new(cfg, "sim:ccid");
    let config = ReaderConfig {
        poll_interval: Duration::from_millis(700),
        ..config()
    };
    (CcidReader::new(vr, "sim:ccid", config), h)
}

/// Polling: a card powered and pulled before the monitor's first poll, found gone by the
/// exchange, is still a removal event (the monitor never saw it present).
#[test]
fn polling_a_card_pulled_before_the_first_poll_is_reported_removed() {
    let (mut r, h) = slow_polling_rig();
    h.insert(Box::new(TestCard::t0()));
    let sub = pos_hal::Device::subscribe(&mut r).unwrap();
    r.power_on(0).unwrap();
    h.remove();
    let e = r.transmit(0, SELECT_PSE).unwrap_err();
    assert!(
        matches!(e.kind(), FaultKind::CardRemoved | FaultKind::CardAbsent),
        "{e}"
    );
    wait_event(&sub, |e| matches!(e, DeviceEvent::CardRemoved { slot: 0 }));
}

/// Polling: a swap the exchange finds first (the card present but no longer powered) is
/// still reported by the monitor, as a removal and an insertion.
#[test]
fn polling_a_swap_found_by_the_exchange_first_is_reported() {
    let (mut r, h) = slow_polling_rig();
    let sub = pos_hal::Device::subscribe(&mut r).unwrap();
    h.insert(Box::new(TestCard::t0()));
    wait_event(&sub, |e| matches!(e, DeviceEvent::CardInserted { slot: 0 }));
    r.power_on(0).unwrap();
    // Swapped, and the exchange runs before the next poll.
    h.insert(Box::new(TestCard::t0()));
    let e = r.transmit(0, SELECT_PSE).unwrap_err();
    assert_eq!(e.kind(), FaultKind::CardRemoved, "{e}");
    wait_event(&sub, |e| matches!(e, DeviceEvent::CardRemoved { slot: 0 }));
    wait_event(&sub, |e| matches!(e, DeviceEvent::CardInserted { slot: 0 }));
}

/// A reader that flushes the pending exchange with an empty, "successful" DataBlock whose
/// ICC status says no card (QEMU's usb-ccid when the card is pulled mid-exchange): that is
/// a removal, not a malformed answer. (Found on the QEMU rig.)
#[test]
fn an_empty_successful_answer_with_no_card_is_a_removal() {
    for level in [SimLevel::Apdu, SimLevel::TpduT0, SimLevel::TpduT1] {
        let (mut r, h) = rig(level, false);
        h.insert(Box::new(card_for(level)));
        r.power_on(0).unwrap_or_else(|e| panic!("{level:?}: {e}"));
        // The next exchange (T=1 has already had its IFS exchange at power-on).
        h.set_faults(SimFaults {
            remove_at_exchange: Some(h.exchanges() + 1),
            removal_answers_empty: true,
            ..SimFaults::default()
        });
        let e = r
            .transmit(0, SELECT_PSE)
            .expect_err(&format!("{level:?}: the exchange must fail"));
        assert_eq!(e.kind(), FaultKind::CardRemoved, "{level:?}: {e}");
    }
}

#[test]
fn polling_readers_report_insertion_removal_and_a_quick_swap() {
    let (mut r, h) = rig(SimLevel::Apdu, false);
    let sub = pos_hal::Device::subscribe(&mut r).unwrap();
    h.insert(Box::new(TestCard::t0()));
    wait_event(&sub, |e| matches!(e, DeviceEvent::CardInserted { slot: 0 }));
    r.power_on(0).unwrap();
    // Pulled and put back faster than a poll: the card is present but no longer powered.
    h.insert(Box::new(TestCard::t0()));
    wait_event(&sub, |e| matches!(e, DeviceEvent::CardRemoved { slot: 0 }));
    let e = r.transmit(0, SELECT_PSE).unwrap_err();
    assert!(
        matches!(e.kind(), FaultKind::CardRemoved | FaultKind::CardAbsent),
        "a swapped card never looks like the same session: {e}"
    );
}

#[test]
fn removal_at_every_step_of_a_chained_t1_exchange_is_card_removed() {
    let mut apdu = vec![0x80, 0xEE, 0x00, 0x00, 200];
    apdu.extend((0..200).map(|i| i as u8));
    // How many XfrBlocks the undisturbed exchange takes (IFSD request + chained blocks).
    let baseline = {
        let (mut r, h) = rig(SimLevel::TpduT1, true);
        h.insert(Box::new(TestCard::t1_with_ifsc(32)));
        r.power_on(0).unwrap();
        r.transmit(0, &apdu).unwrap();
        h.exchanges()
    };
    assert!(baseline >= 8, "a chained exchange: {baseline}");
    let mut steps_seen = 0;
    for n in 1..=baseline + 1 {
        let (mut r, h) = rig(SimLevel::TpduT1, true);
        h.insert(Box::new(TestCard::t1_with_ifsc(32)));
        h.set_faults(SimFaults {
            remove_at_exchange: Some(n),
            ..SimFaults::default()
        });
        let result = r.power_on(0).and_then(|_| r.transmit(0, &apdu));
        match result {
            Ok(resp) => {
                // Only possible when the exchange needed fewer than n blocks.
                assert_eq!(&resp[..200], &apdu[5..], "n={n}");
                assert!(
                    h.exchanges() < n,
                    "n={n}: a success after the card was pulled"
                );
                break;
            }
            Err(e) => {
                assert_eq!(e.kind(), FaultKind::CardRemoved, "n={n}: {e}");
                steps_seen += 1;
            }
        }
    }
    assert_eq!(steps_seen, baseline, "the removal was tried at every step");
}

#[test]
fn a_mute_card_is_card_mute() {
    let (mut r, h) = rig(SimLevel::Apdu, true);
    let mut mute = TestCard::t0();
    mute.mute = true;
    h.insert(Box::new(mute));
    assert_eq!(r.power_on(0).unwrap_err().kind(), FaultKind::CardMute);

    for level in [SimLevel::Apdu, SimLevel::TpduT1, SimLevel::TpduT0] {
        let (mut r, h) = rig(level, true);
        h.insert(Box::new(card_for(level)));
        r.power_on(0).unwrap();
        h.set_faults(SimFaults {
            mute_after_atr: true,
            ..SimFaults::default()
        });
        let e = r.transmit(0, SELECT_PSE).unwrap_err();
        assert_eq!(e.kind(), FaultKind::CardMute, "{level:?}: {e}");
    }
}

#[test]
fn no_card_is_card_absent() {
    let (mut r, _h) = rig(SimLevel::Apdu, true);
    assert_eq!(r.power_on(0).unwrap_err().kind(), FaultKind::CardAbsent);
    assert_eq!(
        r.transmit(0, SELECT_PSE).unwrap_err().kind(),
        FaultKind::CardAbsent
    );
    assert!(!r.slot_status(0).unwrap().contains(SlotState::CARD_PRESENT));
}

#[test]
fn a_transfer_error_is_a_protocol_fault_not_a_removal() {
    let (mut r, h) = rig(SimLevel::Apdu, true);
    h.insert(Box::new(TestCard::t0()));
    r.power_on(0).unwrap();
    h.set_faults(SimFaults {
        parity_error_at_exchange: Some(1),
        ..SimFaults::default()
    });
    let e = r.transmit(0, SELECT_PSE).unwrap_err();
    assert_eq!(e.kind(), FaultKind::Protocol, "{e}");
    // The next exchange works.
    assert_eq!(r.transmit(0, SELECT_PSE).unwrap()[0], 0x6F);
}

#[test]
fn unplugging_the_reader_mid_session_is_disconnected() {
    let (mut r, h) = rig(SimLevel::TpduT1, true);
    let sub = pos_hal::Device::subscribe(&mut r).unwrap();
    h.insert(Box::new(TestCard::t1()));
    r.power_on(0).unwrap();
    h.unplug();
    let e = r.transmit(0, SELECT_PSE).unwrap_err();
    assert_eq!(e.kind(), FaultKind::Disconnected, "{e}");
    wait_event(&sub, |e| matches!(e, DeviceEvent::Disconnected { .. }));
    assert!(matches!(r.slot_status(0).unwrap_err(), CcidError::Gone));
}

#[test]
fn a_reader_unplugged_mid_exchange_with_io_errors_is_still_disconnected() {
    // The cable pulled: the host controller fails the transfers with a plain I/O error
    // (not "no device"); the interrupt pipe fails too. The exchange is disconnected, not io.
    let (mut r, h) = rig(SimLevel::TpduT1, true);
    let sub = pos_hal::Device::subscribe(&mut r).unwrap();
    h.insert(Box::new(TestCard::t1()));
    r.power_on(0).unwrap();
    h.unplug_with_io_errors();
    let e = r.transmit(0, SELECT_PSE).unwrap_err();
    assert_eq!(e.kind(), FaultKind::Disconnected, "{e}");
    wait_event(&sub, |e| matches!(e, DeviceEvent::Disconnected { .. }));
}

#[test]
fn an_io_error_with_the_reader_still_there_stays_io() {
    // Without an interrupt pipe nothing says the reader left: a failed exchange and slot
    // status keep their own kind (no guess).
    let (mut r, h) = rig(SimLevel::TpduT1, false);
    h.insert(Box::new(TestCard::t1()));
    r.power_on(0).unwrap();
    h.unplug_with_io_errors();
    let e = r.transmit(0, SELECT_PSE).unwrap_err();
    assert_ne!(e.kind(), FaultKind::Disconnected, "{e}");
}

#[test]
fn wtx_storms_and_time_extensions_are_waited_out() {
    let (mut r, h) = rig(SimLevel::TpduT1, true);
    h.insert(Box::new(TestCard::t1()));
    r.power_on(0).unwrap();
    h.set_faults(SimFaults {
        wtx_storm: 5,
        time_extensions: 3,
        ..SimFaults::default()
    });
    let resp = r.transmit(0, SELECT_PSE).unwrap();
    assert_eq!(&resp[resp.len() - 2..], &[0x90, 0x00]);
}

#[test]
fn bad_input_is_invalid_input() {
    let (mut r, h) = rig(SimLevel::Apdu, true);
    h.insert(Box::new(TestCard::t0()));
    r.power_on(0).unwrap();
    assert_eq!(
        r.transmit(0, &[0x00, 0xA4]).unwrap_err().kind(),
        FaultKind::InvalidInput
    );
    assert_eq!(
        r.slot_status(3).unwrap_err().kind(),
        FaultKind::InvalidInput
    );
}

#[test]
fn sim_uris_open_a_virtual_reader() {
    let uri: pos_link::DeviceUri = "sim:ccid?level=t1".parse().unwrap();
    let mut r = pos_ccid::open(&uri, config()).unwrap();
    let atr = r.power_on(0).unwrap();
    assert!(!atr.as_bytes().is_empty());
    assert_eq!(r.transmit(0, SELECT_PSE).unwrap()[0], 0x6F);
    let bad: pos_link::DeviceUri = "sim:ccid?level=t9".parse().unwrap();
    assert!(
        pos_ccid::open(&bad, config())
            .unwrap_err()
            .to_string()
            .contains("level")
    );
}

/// A T=1 card offering Fi/Di 1/3 (TA1 = 0x13): four times the default speed.
fn fast_t1_card() -> TestCard {
    let mut atr = vec![0x3B, 0x90, 0x13, 0x81, 0x31, 0xFE, 0x45];
    let tck = atr[1..].iter().fold(0u8, |a, b| a ^ b);
    atr.push(tck);
    TestCard::with_atr(atr)
}

fn host_pps_rig(faults: SimFaults) -> (Reader, SimReaderHandle) {
    let cfg = SimReaderConfig {
        level: SimLevel::TpduT1,
        auto_pps: false,
        ..SimReaderConfig::default()
    };
    let (vr, h) = VirtualReader::new(cfg, "sim:ccid");
    h.set_faults(faults);
    (CcidReader::new(vr, "sim:ccid", config()), h)
}

fn last_findex_dindex(h: &SimReaderHandle) -> u8 {
    match h.parameters_set().last() {
        Some(pos_ccid::message::ProtocolParams::T1 { findex_dindex, .. }) => *findex_dindex,
        other => panic!("no T=1 parameters set: {other:?}"),
    }
}

#[test]
fn the_host_negotiates_the_fastest_speed_with_pps() {
    let (mut r, h) = host_pps_rig(SimFaults::default());
    h.insert(Box::new(fast_t1_card()));
    r.power_on(0).unwrap();
    assert_eq!(h.pps_requests(), 1);
    assert_eq!(last_findex_dindex(&h), 0x13, "Fi/Di 1/3 set after the PPS");
    assert_eq!(r.transmit(0, SELECT_PSE).unwrap()[0], 0x6F);
}

#[test]
fn a_refused_pps_falls_back_to_the_default_speed() {
    let (mut r, h) = host_pps_rig(SimFaults {
        refuse_pps: true,
        ..SimFaults::default()
    });
    h.insert(Box::new(fast_t1_card()));
    r.power_on(0).unwrap();
    assert_eq!(h.pps_requests(), 1);
    assert_eq!(
        last_findex_dindex(&h),
        0x11,
        "default Fi/Di after the refusal"
    );
    assert_eq!(r.transmit(0, SELECT_PSE).unwrap()[0], 0x6F);
}

#[test]
fn a_reader_that_negotiates_itself_gets_no_pps_from_the_host() {
    let cfg = SimReaderConfig {
        level: SimLevel::TpduT1,
        auto_pps: true,
        ..SimReaderConfig::default()
    };
    let (vr, h) = VirtualReader::new(cfg, "sim:ccid");
    let mut r = CcidReader::new(vr, "sim:ccid", config());
    h.insert(Box::new(fast_t1_card()));
    r.power_on(0).unwrap();
    assert_eq!(h.pps_requests(), 0);
    assert_eq!(r.transmit(0, SELECT_PSE).unwrap()[0], 0x6F);
}

#[test]
fn a_slow_card_still_answers_within_its_computed_timeout() {
    let cfg = SimReaderConfig {
        level: SimLevel::Apdu,
        card_time_per_byte: Duration::from_millis(2),
        ..SimReaderConfig::default()
    };
    let (vr, h) = VirtualReader::new(cfg, "sim:ccid");
    let mut r = CcidReader::new(vr, "sim:ccid", config());
    h.insert(Box::new(TestCard::t0()));
    r.power_on(0).unwrap();
    assert_eq!(r.transmit(0, SELECT_PSE).unwrap()[0], 0x6F);
}

#[test]
fn the_rusb_backend_reports_a_missing_reader_cleanly() {
    let uri: pos_link::DeviceUri = "usb:ffff:fffe".parse().unwrap();
    let e = pos_ccid::UsbTransport::open(&uri).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            FaultKind::NotFound | FaultKind::Io | FaultKind::PermissionDenied
        ),
        "{e} ({:?})",
        e.kind()
    );
    let e = pos_ccid::open(&uri, config()).unwrap_err();
    assert!(!e.to_string().is_empty());
    let e = pos_ccid::open(&"tcp:127.0.0.1:9".parse().unwrap(), config()).unwrap_err();
    assert_eq!(e.kind(), FaultKind::InvalidInput);
}

#[test]
fn multi_slot_readers_expose_each_slot() {
    for interrupt in [true, false] {
        let cfg = SimReaderConfig {
            level: SimLevel::Apdu,
            interrupt,
            slots: 2,
            ..SimReaderConfig::default()
        };
        let (vr, h) = VirtualReader::new(cfg, "sim:ccid");
        let mut r = CcidReader::new(vr, "sim:ccid", config());
        assert_eq!(r.slot_count(), 2);
        let sub = pos_hal::Device::subscribe(&mut r).unwrap();
        h.insert_in(1, Box::new(TestCard::t0()));
        wait_event(&sub, |e| matches!(e, DeviceEvent::CardInserted { slot: 1 }));
        assert!(!r.slot_status(0).unwrap().contains(SlotState::CARD_PRESENT));
        assert!(r.slot_status(1).unwrap().contains(SlotState::CARD_PRESENT));
        assert_eq!(r.power_on(0).unwrap_err().kind(), FaultKind::CardAbsent);
        r.power_on(1).unwrap();
        assert_eq!(
            SlotChannel::new(&mut r, 1).transmit(SELECT_PSE).unwrap()[0],
            0x6F
        );
        h.remove_from(1);
        wait_event(&sub, |e| matches!(e, DeviceEvent::CardRemoved { slot: 1 }));
        assert_eq!(
            r.transmit(1, SELECT_PSE).unwrap_err().kind(),
            FaultKind::CardRemoved
        );
        assert_eq!(
            r.slot_status(2).unwrap_err().kind(),
            FaultKind::InvalidInput
        );
    }
}

#[test]
fn a_swap_between_polls_is_reported_once() {
    let (mut r, h) = rig(SimLevel::Apdu, false);
    let sub = pos_hal::Device::subscribe(&mut r).unwrap();
    h.insert(Box::new(TestCard::t0()));
    wait_event(&sub, |e| matches!(e, DeviceEvent::CardInserted { slot: 0 }));
    r.power_on(0).unwrap();
    h.insert(Box::new(TestCard::t0()));
    wait_event(&sub, |e| matches!(e, DeviceEvent::CardRemoved { slot: 0 }));
    // Several poll intervals later: no further removal events for the same swap.
    std::thread::sleep(Duration::from_millis(200));
    let removals = sub
        .drain()
        .into_iter()
        .filter(|e| matches!(e.event, DeviceEvent::CardRemoved { .. }))
        .count();
    assert_eq!(removals, 0, "one swap, one removal");
}

/// A reader in the EMV-only mode the Cherry XX33 and GemPC433 firmware can be in: every
/// power-on fails with bError 0xBB until the escape 1F 01 switches it to ISO mode (libccid
/// `src/commands.c`, CmdPowerOn). With the quirk row the driver escapes and powers on once
/// more; without it the power-on fails.
#[test]
fn power_on_escape_and_retry_quirk_fails_without_the_row() {
    let emv_mode = || SimFaults {
        power_on_error_until_escape: Some(0xBB),
        escape_to_leave: vec![0x1F, 0x01],
        ..SimFaults::default()
    };
    for (rows, works) in [
        (pos_ccid::quirks::lookup(0x08E6, 0x4433, 0x0100), true),
        (pos_ccid::quirks::lookup(0x046A, 0x0005, 0x0100), true),
        (Vec::new(), false),
    ] {
        let cfg = SimReaderConfig {
            level: SimLevel::Apdu,
            ..SimReaderConfig::default()
        };
        let (vr, h) = VirtualReader::new(cfg, "sim:ccid");
        h.set_faults(emv_mode());
        let config = ReaderConfig {
            quirks: rows.clone(),
            ..config()
        };
        let mut r = CcidReader::new(vr, "sim:ccid", config);
        h.insert(Box::new(TestCard::t0()));
        let result = r.power_on(0);
        let escapes = h
            .request_summaries()
            .iter()
            .filter(|s| s.starts_with("Escape"))
            .count();
        if works {
            assert!(result.is_ok(), "{rows:?}: {result:?}");
            assert_eq!(escapes, 1, "{:?}", h.request_summaries());
            assert!(r.policy(0).power_on_retry.reason.contains("0xBB"));
        } else {
            let e = result.unwrap_err();
            assert_eq!(escapes, 0, "{:?}", h.request_summaries());
            assert_ne!(e.kind(), FaultKind::Disconnected, "{e}");
        }
    }
}
