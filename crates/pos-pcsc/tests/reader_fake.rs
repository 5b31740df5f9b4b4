//! PcscReader against the scripted PC/SC layer: fault kinds, T=0, exclusive access on every
//! path, events, bounded calls.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns set up the fake and may panic

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pos_hal::{
    ChipReader, Device, DeviceEvent, DeviceState, Fault, FaultKind, SlotState, VirtualCard,
};
use pos_pcsc::codes::*;
use pos_pcsc::fake::{FakeCall, FakePcsc, Step};
use pos_pcsc::{PcscConfig, PcscError, PcscReader, Protocol, ScardCode, Sharing, open_with};

const R: &str = "Fake Reader 00 00";
const ATR: [u8; 4] = [0x3B, 0x02, 0x14, 0x50];

/// A card whose answers are scripted per command; unscripted commands get 90 00.
#[derive(Clone, Default)]
struct Scripted {
    answers: Arc<Mutex<Vec<Vec<u8>>>>,
    mute: bool,
}

impl Scripted {
    fn answering(answers: &[&[u8]]) -> Scripted {
        Scripted {
            answers: Arc::new(Mutex::new(
                answers.iter().rev().map(|a| a.to_vec()).collect(),
            )),
            mute: false,
        }
    }
}

impl VirtualCard for Scripted {
    fn power_on(&mut self) -> Option<Vec<u8>> {
        (!self.mute).then(|| ATR.to_vec())
    }
    fn transmit(&mut self, _command: &[u8]) -> Option<Vec<u8>> {
        Some(
            self.answers
                .lock()
                .unwrap()
                .pop()
                .unwrap_or_else(|| vec![0x90, 0x00]),
        )
    }
}

/// A T=0 card that always has more data: 61 10 to everything.
struct Endless;
impl VirtualCard for Endless {
    fn power_on(&mut self) -> Option<Vec<u8>> {
        Some(ATR.to_vec())
    }
    fn transmit(&mut self, _command: &[u8]) -> Option<Vec<u8>> {
        Some(vec![0xAA, 0x61, 0x10])
    }
}

fn config() -> PcscConfig {
    PcscConfig {
        call_timeout: Duration::from_secs(2),
        monitor_wait: Duration::from_millis(50),
        removal_wait: Duration::from_millis(300),
        close_wait: Duration::from_secs(2),
        ..PcscConfig::default()
    }
}

fn setup(protocol: Protocol, card: impl VirtualCard + 'static) -> (Arc<FakePcsc>, PcscReader) {
    let pcsc = FakePcsc::new();
    pcsc.add_reader(R);
    pcsc.insert(R, protocol, Box::new(card));
    let reader = open_with(pcsc.clone(), Some(R), config()).unwrap();
    (pcsc, reader)
}

fn next_event(sub: &pos_hal::Subscription) -> DeviceEvent {
    sub.recv_timeout(Duration::from_secs(3))
        .expect("an event")
        .event
}

#[test]
fn every_listed_code_maps_to_the_issues_kind() {
    let cases = [
        (SCARD_W_REMOVED_CARD, FaultKind::CardRemoved),
        (SCARD_W_RESET_CARD, FaultKind::CardRemoved),
        (SCARD_E_NO_SMARTCARD, FaultKind::CardAbsent),
        (SCARD_E_READER_UNAVAILABLE, FaultKind::Disconnected),
        (SCARD_E_NO_SERVICE, FaultKind::Disconnected),
        (SCARD_E_SERVICE_STOPPED, FaultKind::Disconnected),
        (SCARD_E_TIMEOUT, FaultKind::Timeout),
        (SCARD_W_UNRESPONSIVE_CARD, FaultKind::CardMute),
        (SCARD_E_SHARING_VIOLATION, FaultKind::Busy),
        (SCARD_E_UNKNOWN_READER, FaultKind::NotFound),
        (SCARD_E_PROTO_MISMATCH, FaultKind::CardUnsupported),
        (SCARD_F_COMM_ERROR, FaultKind::Io),
        (SCARD_E_INVALID_PARAMETER, FaultKind::InvalidInput),
    ];
    for (code, kind) in cases {
        let e = PcscError::from_code("SCardTransmit", ScardCode(code));
        assert_eq!(e.kind(), kind, "{e}");
        assert_eq!(e.code(), Some(ScardCode(code)));
    }
    // The two "no service" codes are said as such.
    for code in [SCARD_E_NO_SERVICE, SCARD_E_SERVICE_STOPPED] {
        let e = PcscError::from_code("SCardEstablishContext", ScardCode(code));
        assert!(matches!(e, PcscError::NoService { .. }));
    }
}

#[test]
fn no_pcscd_is_one_line_with_the_hint() {
    let pcsc = FakePcsc::new();
    pcsc.add_reader(R);
    pcsc.set_service(false);
    let e = open_with(pcsc, None, config()).unwrap_err();
    let text = e.to_string();
    assert_eq!(e.kind(), FaultKind::Disconnected);
    assert!(text.contains("pcscd is not running"), "{text}");
    assert!(text.contains("systemctl start pcscd.socket"), "{text}");
    assert!(!text.contains('\n'));
}

#[test]
fn a_missing_library_is_one_line_saying_what_to_install() {
    let Err(e) = pos_pcsc::open_library("libpcsclite-not-here.so.1") else {
        panic!("loaded a library that does not exist")
    };
    let text = e.to_string();
    assert_eq!(e.kind(), FaultKind::NotFound);
    assert!(
        text.starts_with("pcsc: libpcsclite-not-here.so.1 not found: install pcscd and libpcsclite1, or use a usb: reader"),
        "{text}"
    );
    assert!(!text.contains('\n'));
}

#[test]
fn readers_by_name_or_the_first_and_a_clear_error_for_neither() {
    let pcsc = FakePcsc::new();
    let e = open_with(pcsc.clone(), None, config()).unwrap_err();
    assert_eq!(e.kind(), FaultKind::NotFound);
    assert!(e.to_string().contains("pcscd has no readers"), "{e}");
    pcsc.add_reader("A 00 00");
    pcsc.add_reader("B 01 00");
    let first = open_with(pcsc.clone(), None, config()).unwrap();
    assert_eq!(first.reader_name(), "A 00 00");
    assert_eq!(first.info().uri, "pcsc:A 00 00");
    let b = open_with(pcsc.clone(), Some("B 01 00"), config()).unwrap();
    assert_eq!(b.reader_name(), "B 01 00");
    let e = open_with(pcsc, Some("C"), config()).unwrap_err();
    assert_eq!(e.kind(), FaultKind::NotFound);
    assert!(e.to_string().contains("\"A 00 00\", \"B 01 00\""), "{e}");
}

#[test]
fn power_on_gives_the_atr_and_power_off_releases_the_card() {
    let (pcsc, mut r) = setup(Protocol::T1, Scripted::default());
    assert_eq!(r.power_on(0).unwrap().as_bytes(), ATR);
    assert_eq!(r.protocol(), Some(1));
    assert_eq!(pcsc.exclusive_holders(R), 1);
    let st = r.slot_status(0).unwrap();
    assert!(st.contains(SlotState::CARD_PRESENT | SlotState::POWERED));
    assert_eq!(
        r.transmit(0, &[0x00, 0xA4, 0x04, 0x00, 0x00]).unwrap(),
        [0x90, 0x00]
    );
    r.power_off(0).unwrap();
    assert_eq!(pcsc.connections(R), 0);
    // Off again, and transmit without power: card absent.
    r.power_off(0).unwrap();
    let e = r.transmit(0, &[0x00, 0xB0, 0x00, 0x00, 0x00]).unwrap_err();
    assert_eq!(e.kind(), FaultKind::CardAbsent);
    // A second power-on of a powered card resets it: one connection, not two.
    r.power_on(0).unwrap();
    r.power_on(0).unwrap();
    assert_eq!(pcsc.connections(R), 1);
}

#[test]
fn no_card_mute_card_busy_card_and_bad_input() {
    let pcsc = FakePcsc::new();
    pcsc.add_reader(R);
    let mut r = open_with(pcsc.clone(), None, config()).unwrap();
    assert_eq!(r.power_on(0).unwrap_err().kind(), FaultKind::CardAbsent);
    assert_eq!(r.power_on(1).unwrap_err().kind(), FaultKind::InvalidInput);
    pcsc.insert(
        R,
        Protocol::T0,
        Box::new(Scripted {
            mute: true,
            ..Scripted::default()
        }),
    );
    assert_eq!(r.power_on(0).unwrap_err().kind(), FaultKind::CardMute);
    pcsc.insert(R, Protocol::T0, Box::new(Scripted::default()));
    // Another application holds the card exclusively.
    let mut other = open_with(pcsc.clone(), None, config()).unwrap();
    other.power_on(0).unwrap();
    let e = r.power_on(0).unwrap_err();
    assert_eq!(e.kind(), FaultKind::Busy, "{e}");
    drop(other);
    r.power_on(0).unwrap();
    assert_eq!(
        r.transmit(0, &[0x00]).unwrap_err().kind(),
        FaultKind::InvalidInput
    );
}

#[test]
fn t0_61xx_is_fetched_with_get_response_and_concatenated() {
    let card = Scripted::answering(&[&[0x61, 0x04], &[1, 2, 0x61, 0x02], &[3, 4, 0x90, 0x00]]);
    let (pcsc, mut r) = setup(Protocol::T0, card);
    r.power_on(0).unwrap();
    let select = [0x00, 0xA4, 0x04, 0x00, 0x02, 0xA0, 0x00, 0x00];
    assert_eq!(r.transmit(0, &select).unwrap(), [1, 2, 3, 4, 0x90, 0x00]);
    let sent = pcsc.transmitted();
    assert_eq!(sent[0], select);
    assert_eq!(sent[1], [0x00, 0xC0, 0x00, 0x00, 0x04]);
    assert_eq!(sent[2], [0x00, 0xC0, 0x00, 0x00, 0x02]);
    assert_eq!(sent.len(), 3);
}

#[test]
fn t0_6cxx_resends_with_the_right_le_once() {
    let card = Scripted::answering(&[&[0x6C, 0x1A], &[0xEE; 2], &[0x6C, 0x05]]);
    let (pcsc, mut r) = setup(Protocol::T0, card);
    r.power_on(0).unwrap();
    let read = [0x00, 0xB2, 0x01, 0x0C, 0x00];
    assert_eq!(r.transmit(0, &read).unwrap(), [0xEE, 0xEE]);
    assert_eq!(pcsc.transmitted()[1], [0x00, 0xB2, 0x01, 0x0C, 0x1A]);
    // 6Cxx to a command without Le is the card's answer, not followed.
    let update = [0x00, 0xD6, 0x00, 0x00, 0x01, 0x55];
    assert_eq!(r.transmit(0, &update).unwrap(), [0x6C, 0x05]);
    assert_eq!(pcsc.transmitted().len(), 3);
}

#[test]
fn t0_a_card_that_never_stops_answering_61xx_is_a_protocol_error_after_64_rounds() {
    let (pcsc, mut r) = setup(Protocol::T0, Endless);
    r.power_on(0).unwrap();
    let e = r.transmit(0, &[0x00, 0xB2, 0x01, 0x0C, 0x00]).unwrap_err();
    assert_eq!(e.kind(), FaultKind::Protocol, "{e}");
    assert_eq!(
        pcsc.count(FakeCall::Transmit),
        1 + pos_pcsc::t0::MAX_GET_RESPONSE_ROUNDS
    );
}

#[test]
fn t1_status_words_are_returned_as_the_card_sent_them() {
    let (pcsc, mut r) = setup(Protocol::T1, Scripted::answering(&[&[0x61, 0x10]]));
    r.power_on(0).unwrap();
    assert_eq!(
        r.transmit(0, &[0x00, 0xA4, 0x04, 0x00, 0x00]).unwrap(),
        [0x61, 0x10]
    );
    assert_eq!(pcsc.count(FakeCall::Transmit), 1);
}

#[test]
fn a_card_pulled_mid_exchange_is_card_removed_with_an_event_and_the_card_is_released() {
    let (pcsc, mut r) = setup(Protocol::T0, Scripted::default());
    let sub = r.subscribe().unwrap();
    r.power_on(0).unwrap();
    pcsc.script(FakeCall::Transmit, Step::RemoveCard);
    let e = r.transmit(0, &[0x00, 0xB2, 0x01, 0x0C, 0x00]).unwrap_err();
    assert_eq!(e.kind(), FaultKind::CardRemoved, "{e}");
    assert_eq!(
        pcsc.connections(R),
        0,
        "the exclusive connection is released"
    );
    assert_eq!(next_event(&sub), DeviceEvent::CardRemoved { slot: 0 });
    let st = r.slot_status(0).unwrap();
    assert!(!st.contains(SlotState::CARD_PRESENT));
    assert!(st.contains(SlotState::CHANGED));
    // Back in: an insertion event.
    pcsc.insert(R, Protocol::T0, Box::new(Scripted::default()));
    assert_eq!(next_event(&sub), DeviceEvent::CardInserted { slot: 0 });
}

#[test]
fn a_card_pulled_between_two_apdus_is_card_removed_until_powered_off() {
    let (pcsc, mut r) = setup(Protocol::T1, Scripted::default());
    r.power_on(0).unwrap();
    pcsc.remove_card(R);
    // A look at the slot in between ends the session...
    let st = r.slot_status(0).unwrap();
    assert!(!st.contains(SlotState::CARD_PRESENT) && st.contains(SlotState::CHANGED));
    assert_eq!(pcsc.connections(R), 0);
    // ...and the next APDU of the read says the card was removed, not merely absent.
    let e = r.transmit(0, &[0x00, 0xB2, 0x01, 0x0C, 0x00]).unwrap_err();
    assert_eq!(e.kind(), FaultKind::CardRemoved, "{e}");
    r.power_off(0).unwrap();
    let e = r.transmit(0, &[0x00, 0xB2, 0x01, 0x0C, 0x00]).unwrap_err();
    assert_eq!(e.kind(), FaultKind::CardAbsent, "{e}");
}

#[test]
fn each_removal_code_is_card_removed_mid_exchange() {
    for code in [SCARD_W_REMOVED_CARD, SCARD_W_RESET_CARD] {
        let (pcsc, mut r) = setup(Protocol::T1, Scripted::default());
        r.power_on(0).unwrap();
        pcsc.script(FakeCall::Transmit, Step::Fail(code));
        let e = r.transmit(0, &[0x00, 0xB0, 0x00, 0x00, 0x00]).unwrap_err();
        assert_eq!(e.kind(), FaultKind::CardRemoved, "{e}");
        assert_eq!(pcsc.connections(R), 0);
    }
    // SCARD_E_NO_SMARTCARD with the card really gone: removed (it was powered).
    let (pcsc, mut r) = setup(Protocol::T1, Scripted::default());
    r.power_on(0).unwrap();
    pcsc.remove_card(R);
    pcsc.script(FakeCall::Transmit, Step::Fail(SCARD_E_NO_SMARTCARD));
    let e = r.transmit(0, &[0x00, 0xB0, 0x00, 0x00, 0x00]).unwrap_err();
    assert_eq!(e.kind(), FaultKind::CardRemoved, "{e}");
}

#[test]
fn an_exchange_answered_with_no_bytes_is_card_removed_once_pcscd_sees_the_card_gone() {
    // libccid answers an exchange cut by a pulled card with no bytes, before pcscd has
    // noticed the removal (QEMU's reader in the rig).
    let (pcsc, mut r) = setup(Protocol::T0, Scripted::answering(&[&[]]));
    r.power_on(0).unwrap();
    let later = {
        let pcsc = pcsc.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            pcsc.remove_card(R);
        })
    };
    let e = r.transmit(0, &[0x00, 0xB2, 0x01, 0x0C, 0x00]).unwrap_err();
    later.join().unwrap();
    assert_eq!(e.kind(), FaultKind::CardRemoved, "{e}");
    assert_eq!(pcsc.connections(R), 0);
    // With the card still there, no status words is a protocol error (after the wait).
    let (_pcsc, mut r) = setup(Protocol::T1, Scripted::answering(&[&[0x90]]));
    r.power_on(0).unwrap();
    let t = Instant::now();
    let e = r.transmit(0, &[0x00, 0xB2, 0x01, 0x0C, 0x00]).unwrap_err();
    assert_eq!(e.kind(), FaultKind::Protocol, "{e}");
    assert!(t.elapsed() >= Duration::from_millis(300));
}

#[test]
fn a_reader_unplugged_mid_exchange_is_disconnected_with_an_event() {
    let (pcsc, mut r) = setup(Protocol::T1, Scripted::default());
    let sub = r.subscribe().unwrap();
    r.power_on(0).unwrap();
    pcsc.script(FakeCall::Transmit, Step::Unplug);
    let e = r.transmit(0, &[0x00, 0xB0, 0x00, 0x00, 0x00]).unwrap_err();
    assert_eq!(e.kind(), FaultKind::Disconnected, "{e}");
    assert!(matches!(next_event(&sub), DeviceEvent::Disconnected { .. }));
    assert_eq!(r.state(), DeviceState::Error);
    assert_eq!(
        r.slot_status(0).unwrap_err().kind(),
        FaultKind::Disconnected
    );
    // Said once, whoever saw it first.
    assert!(sub.recv_timeout(Duration::from_millis(200)).is_err());
}

#[test]
fn scard_e_reader_unavailable_is_disconnected_with_an_event() {
    let (pcsc, mut r) = setup(Protocol::T1, Scripted::default());
    let sub = r.subscribe().unwrap();
    r.power_on(0).unwrap();
    pcsc.script(FakeCall::Transmit, Step::Fail(SCARD_E_READER_UNAVAILABLE));
    let e = r.transmit(0, &[0x00, 0xB0, 0x00, 0x00, 0x00]).unwrap_err();
    assert_eq!(e.kind(), FaultKind::Disconnected, "{e}");
    assert!(matches!(next_event(&sub), DeviceEvent::Disconnected { .. }));
    assert_eq!(pcsc.connections(R), 0, "the card is released");
}

#[test]
fn after_the_monitor_saw_the_reader_leave_every_call_is_disconnected_at_once() {
    let (pcsc, mut r) = setup(Protocol::T1, Scripted::default());
    let sub = r.subscribe().unwrap();
    r.power_on(0).unwrap();
    pcsc.unplug(R);
    assert!(matches!(next_event(&sub), DeviceEvent::Disconnected { .. }));
    let before = pcsc.count(FakeCall::Transmit);
    let e = r.transmit(0, &[0x00, 0xB0, 0x00, 0x00, 0x00]).unwrap_err();
    assert_eq!(e.kind(), FaultKind::Disconnected, "{e}");
    assert_eq!(pcsc.count(FakeCall::Transmit), before, "not even asked");
    assert_eq!(r.power_on(0).unwrap_err().kind(), FaultKind::Disconnected);
    // Said once.
    assert!(sub.recv_timeout(Duration::from_millis(200)).is_err());
}

#[test]
fn the_monitor_sees_insertion_removal_a_quick_swap_and_unplug() {
    let pcsc = FakePcsc::new();
    pcsc.add_reader(R);
    let mut r = open_with(pcsc.clone(), None, config()).unwrap();
    let sub = r.subscribe().unwrap();
    // Let the monitor take its first look.
    std::thread::sleep(Duration::from_millis(100));
    pcsc.insert(R, Protocol::T0, Box::new(Scripted::default()));
    assert_eq!(next_event(&sub), DeviceEvent::CardInserted { slot: 0 });
    pcsc.remove_card(R);
    assert_eq!(next_event(&sub), DeviceEvent::CardRemoved { slot: 0 });
    pcsc.insert(R, Protocol::T0, Box::new(Scripted::default()));
    assert_eq!(next_event(&sub), DeviceEvent::CardInserted { slot: 0 });
    // Pulled and put back between two looks: the event counter tells.
    pcsc.script(
        FakeCall::GetStatusChange,
        Step::Hang(Duration::from_millis(150)),
    );
    std::thread::sleep(Duration::from_millis(80));
    pcsc.remove_card(R);
    pcsc.insert(R, Protocol::T0, Box::new(Scripted::default()));
    assert_eq!(next_event(&sub), DeviceEvent::CardRemoved { slot: 0 });
    assert_eq!(next_event(&sub), DeviceEvent::CardInserted { slot: 0 });
    pcsc.unplug(R);
    assert!(matches!(next_event(&sub), DeviceEvent::Disconnected { .. }));
}

#[test]
fn pcscd_stopping_is_said_as_such() {
    let (pcsc, mut r) = setup(Protocol::T1, Scripted::default());
    let sub = r.subscribe().unwrap();
    r.power_on(0).unwrap();
    pcsc.set_service(false);
    let e = r.transmit(0, &[0x00, 0xB0, 0x00, 0x00, 0x00]).unwrap_err();
    assert!(e.to_string().contains("pcscd is not running"), "{e}");
    assert_eq!(e.kind(), FaultKind::Disconnected);
    assert!(matches!(next_event(&sub), DeviceEvent::Disconnected { .. }));
}

#[test]
fn pcscd_stopping_is_said_as_such_also_after_the_monitor_saw_it() {
    let (pcsc, mut r) = setup(Protocol::T1, Scripted::default());
    let sub = r.subscribe().unwrap();
    r.power_on(0).unwrap();
    pcsc.set_service(false);
    // The monitor notices first this time.
    assert!(matches!(next_event(&sub), DeviceEvent::Disconnected { .. }));
    let e = r.transmit(0, &[0x00, 0xB0, 0x00, 0x00, 0x00]).unwrap_err();
    assert!(e.to_string().contains("pcscd is not running"), "{e}");
    assert_eq!(e.kind(), FaultKind::Disconnected);
    let e = r.power_on(0).unwrap_err();
    assert!(e.to_string().contains("pcscd is not running"), "{e}");
}

#[test]
fn a_hung_pcscd_costs_a_timeout_not_a_hang() {
    let mut c = config();
    c.call_timeout = Duration::from_millis(200);
    let pcsc = FakePcsc::new();
    pcsc.add_reader(R);
    pcsc.insert(R, Protocol::T1, Box::new(Scripted::default()));
    let mut r = open_with(pcsc.clone(), None, c).unwrap();
    r.power_on(0).unwrap();
    pcsc.script(FakeCall::Transmit, Step::Hang(Duration::from_millis(800)));
    let t = Instant::now();
    let e = r.transmit(0, &[0x00, 0xB0, 0x00, 0x00, 0x00]).unwrap_err();
    assert_eq!(e.kind(), FaultKind::Timeout, "{e}");
    assert!(
        t.elapsed() < Duration::from_millis(600),
        "{:?}",
        t.elapsed()
    );
    // While pcscd still owes the answer, the next call says so at once.
    let t = Instant::now();
    let e = r.slot_status(0).unwrap_err();
    assert_eq!(e.kind(), FaultKind::Timeout);
    assert!(e.to_string().contains("SCardTransmit"), "{e}");
    assert!(t.elapsed() < Duration::from_millis(100));
    assert_eq!(r.state(), DeviceState::Busy);
    // Once pcscd answers, the reader works again.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        r.transmit(0, &[0x00, 0xB0, 0x00, 0x00, 0x00]).unwrap(),
        [0x90, 0x00]
    );
}

#[test]
fn dropping_the_reader_releases_the_card_and_both_contexts_and_cancels_the_monitor() {
    let (pcsc, mut r) = setup(Protocol::T1, Scripted::default());
    r.power_on(0).unwrap();
    assert_eq!(pcsc.exclusive_holders(R), 1);
    assert_eq!(pcsc.open_contexts(), 2);
    let t = Instant::now();
    drop(r);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(pcsc.connections(R), 0);
    assert_eq!(pcsc.open_contexts(), 0);
    // The cancel runs on a thread of its own: give it a moment to be counted.
    let t = Instant::now();
    while pcsc.count(FakeCall::Cancel) == 0 && t.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(pcsc.count(FakeCall::Cancel) >= 1);
}

#[test]
fn closing_does_not_wait_for_a_pcscd_that_does_not_answer_the_cancel() {
    let (pcsc, mut r) = setup(Protocol::T1, Scripted::default());
    r.power_on(0).unwrap();
    pcsc.script(FakeCall::Cancel, Step::Hang(Duration::from_secs(5)));
    let t = Instant::now();
    drop(r);
    // Bounded by the monitor's own wait (50 ms here), not by the hung cancel.
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(pcsc.connections(R), 0);
}

#[test]
fn transaction_mode_holds_a_transaction_and_ends_it_on_every_path() {
    let mut c = config();
    c.sharing = Sharing::Transaction;
    let pcsc = FakePcsc::new();
    pcsc.add_reader(R);
    pcsc.insert(R, Protocol::T1, Box::new(Scripted::default()));
    let mut r = open_with(pcsc.clone(), None, c.clone()).unwrap();
    // Power off.
    r.power_on(0).unwrap();
    assert_eq!((pcsc.transactions(R), pcsc.exclusive_holders(R)), (1, 0));
    r.power_off(0).unwrap();
    assert_eq!((pcsc.transactions(R), pcsc.connections(R)), (0, 0));
    // An error mid-transaction that leaves the card there keeps the session; power off ends it.
    r.power_on(0).unwrap();
    pcsc.script(FakeCall::Transmit, Step::Fail(SCARD_E_INVALID_PARAMETER));
    assert_eq!(
        r.transmit(0, &[0x00, 0xB0, 0x00, 0x00, 0x00])
            .unwrap_err()
            .kind(),
        FaultKind::InvalidInput
    );
    assert_eq!(pcsc.transactions(R), 1);
    r.power_off(0).unwrap();
    assert_eq!(pcsc.transactions(R), 0);
    // Removal mid-transaction.
    r.power_on(0).unwrap();
    pcsc.script(FakeCall::Transmit, Step::Fail(SCARD_W_REMOVED_CARD));
    let _ = r.transmit(0, &[0x00, 0xB0, 0x00, 0x00, 0x00]);
    assert_eq!((pcsc.transactions(R), pcsc.connections(R)), (0, 0));
    // A failing SCardStatus after the transaction began.
    pcsc.script(FakeCall::Status, Step::Fail(SCARD_F_COMM_ERROR));
    assert!(r.power_on(0).is_err());
    assert_eq!((pcsc.transactions(R), pcsc.connections(R)), (0, 0));
    // A failing SCardBeginTransaction: the connection is not kept.
    pcsc.script(
        FakeCall::BeginTransaction,
        Step::Fail(SCARD_E_SHARING_VIOLATION),
    );
    assert_eq!(r.power_on(0).unwrap_err().kind(), FaultKind::Busy);
    assert_eq!(pcsc.connections(R), 0);
    // Drop.
    r.power_on(0).unwrap();
    drop(r);
    assert_eq!((pcsc.transactions(R), pcsc.connections(R)), (0, 0));
}

#[test]
fn health_reports_the_reader_and_card() {
    let (_pcsc, mut r) = setup(Protocol::T1, Scripted::default());
    let report = r.check_health(pos_hal::HealthLevel::External).unwrap();
    assert!(report.healthy(), "{report:?}");
    assert_eq!(
        r.capabilities(),
        pos_hal::ReaderCapabilities::APDU_LEVEL | pos_hal::ReaderCapabilities::PRESENCE_INTERRUPT
    );
    assert_eq!(r.slot_count(), 1);
}

#[test]
fn list_shows_readers_and_cards() {
    let pcsc = FakePcsc::new();
    assert!(
        pos_pcsc::list_with(pcsc.clone(), Duration::from_secs(1))
            .unwrap()
            .is_empty()
    );
    pcsc.add_reader("A 00 00");
    pcsc.add_reader("B 01 00");
    pcsc.insert("B 01 00", Protocol::T0, Box::new(Scripted::default()));
    let l = pos_pcsc::list_with(pcsc.clone(), Duration::from_secs(1)).unwrap();
    assert_eq!(l.len(), 2);
    assert_eq!(l[0].uri, "pcsc:A 00 00");
    assert!(!l[0].card_present && l[1].card_present);
    pcsc.set_service(false);
    let e = pos_pcsc::list_with(pcsc, Duration::from_secs(1)).unwrap_err();
    assert!(e.to_string().contains("pcscd is not running"));
}
