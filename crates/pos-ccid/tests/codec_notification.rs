//! Interrupt IN messages: NotifySlotChange and HardwareError.

use pos_ccid::message::{self, CodecError, Notification, SlotChange};
use proptest::prelude::*;

fn change(slot: u8, present: bool, changed: bool) -> SlotChange {
    SlotChange {
        slot,
        present,
        changed,
    }
}

#[test]
fn notify_50_03_is_an_insertion() {
    // "NotifySlotChange: 50 03" in the ACR122U log of LudovicRousseau/pyscard issue #18:
    // bit 0 (present) and bit 1 (changed) set for slot 0.
    let n = Notification::decode(&[0x50, 0x03], 1).expect("NotifySlotChange");
    assert_eq!(n, Notification::SlotChange(vec![change(0, true, true)]));
    let Notification::SlotChange(changes) = &n else {
        panic!("not a slot change: {n:?}");
    };
    assert!(changes[0].inserted());
    assert!(!changes[0].removed());
    assert_eq!(n.encode(), vec![0x50, 0x03]);
}

#[test]
fn notify_50_02_is_a_removal() {
    // "NotifySlotChange: 50 02" in the same log: changed, not present.
    let n = Notification::decode(&[0x50, 0x02], 1).expect("NotifySlotChange");
    assert_eq!(n, Notification::SlotChange(vec![change(0, false, true)]));
    let Notification::SlotChange(changes) = &n else {
        panic!("not a slot change: {n:?}");
    };
    assert!(changes[0].removed());
    assert!(!changes[0].inserted());
    assert_eq!(n.encode(), vec![0x50, 0x02]);
}

#[test]
fn notify_without_change_bits() {
    let n = Notification::decode(&[0x50, 0x01], 1).expect("NotifySlotChange");
    assert_eq!(n, Notification::SlotChange(vec![change(0, true, false)]));
    let n = Notification::decode(&[0x50, 0x00], 1).expect("NotifySlotChange");
    assert_eq!(n, Notification::SlotChange(vec![change(0, false, false)]));
}

#[test]
fn three_slot_bitmap_in_one_byte() {
    // Slot 0 present, unchanged (01); slot 1 removed (10); slot 2 inserted (11);
    // bits 6-7 unused: 0b00_11_10_01 = 0x39.
    let n = Notification::decode(&[0x50, 0x39], 3).expect("NotifySlotChange");
    assert_eq!(
        n,
        Notification::SlotChange(vec![
            change(0, true, false),
            change(1, false, true),
            change(2, true, true),
        ])
    );
    assert_eq!(n.encode(), vec![0x50, 0x39]);
}

#[test]
fn five_slot_bitmap_in_two_bytes() {
    // Slot 0 inserted (11), slots 1 and 2 empty (00), slot 3 inserted (11): 0xC3;
    // slot 4 removed (10): 0x02.
    let n = Notification::decode(&[0x50, 0xC3, 0x02], 5).expect("NotifySlotChange");
    assert_eq!(
        n,
        Notification::SlotChange(vec![
            change(0, true, true),
            change(1, false, false),
            change(2, false, false),
            change(3, true, true),
            change(4, false, true),
        ])
    );
    assert_eq!(n.encode(), vec![0x50, 0xC3, 0x02]);
    // Five slots need two bitmap bytes.
    assert_eq!(
        Notification::decode(&[0x50, 0xC3], 5),
        Err(CodecError::Truncated {
            message: "NotifySlotChange bmSlotICCState",
            needed: 3,
            got: 2
        })
    );
}

#[test]
fn slot_count_zero_reads_every_slot_the_bytes_carry() {
    let n = Notification::decode(&[0x50, 0x03], 0).expect("NotifySlotChange");
    let Notification::SlotChange(changes) = n else {
        panic!("not a slot change");
    };
    assert_eq!(changes.len(), 4);
    assert_eq!(changes[0], change(0, true, true));
    assert!(changes[1..].iter().all(|c| !c.present && !c.changed));
}

#[test]
fn extra_bytes_are_ignored() {
    let n = Notification::decode(&[0x50, 0x03, 0xFF, 0xFF], 1).expect("NotifySlotChange");
    assert_eq!(n, Notification::SlotChange(vec![change(0, true, true)]));
}

#[test]
fn hardware_error_overcurrent() {
    let n = Notification::decode(&[0x51, 0x00, 0x07, 0x01], 1).expect("HardwareError");
    assert_eq!(
        n,
        Notification::HardwareError {
            slot: 0,
            seq: 7,
            code: message::HARDWARE_ERROR_OVERCURRENT
        }
    );
    assert_eq!(n.encode(), vec![0x51, 0x00, 0x07, 0x01]);
}

#[test]
fn malformed_interrupt_messages() {
    assert!(matches!(
        Notification::decode(&[], 1),
        Err(CodecError::Truncated { .. })
    ));
    assert!(matches!(
        Notification::decode(&[0x50], 1),
        Err(CodecError::Truncated {
            needed: 2,
            got: 1,
            ..
        })
    ));
    assert!(matches!(
        Notification::decode(&[0x51, 0x00, 0x07], 1),
        Err(CodecError::Truncated {
            needed: 4,
            got: 3,
            ..
        })
    ));
    let err = Notification::decode(&[0x80, 0x00], 1).expect_err("not an interrupt message");
    assert_eq!(
        err,
        CodecError::UnknownMessageType {
            direction: "interrupt",
            message_type: 0x80
        }
    );
    assert!(err.to_string().contains("offset 0"), "{err}");
}

fn slot_changes() -> impl Strategy<Value = Vec<SlotChange>> {
    proptest::collection::vec(any::<(bool, bool)>(), 1..=64).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (present, changed))| SlotChange {
                slot: u8::try_from(i).unwrap_or(u8::MAX),
                present,
                changed,
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn slot_change_round_trips(changes in slot_changes()) {
        let count = u8::try_from(changes.len()).unwrap_or(u8::MAX);
        let n = Notification::SlotChange(changes.clone());
        let bytes = n.encode();
        prop_assert_eq!(bytes.len(), 1 + changes.len().div_ceil(4));
        prop_assert_eq!(Notification::decode(&bytes, count), Ok(n));
    }

    #[test]
    fn hardware_error_round_trips(slot in any::<u8>(), seq in any::<u8>(), code in any::<u8>()) {
        let n = Notification::HardwareError { slot, seq, code };
        prop_assert_eq!(Notification::decode(&n.encode(), 1), Ok(n));
    }

    #[test]
    fn decode_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..80),
        slots in any::<u8>(),
    ) {
        if let Ok(Notification::SlotChange(c)) = Notification::decode(&bytes, slots) {
            if slots > 0 {
                prop_assert_eq!(c.len(), usize::from(slots));
            }
        }
    }

    #[test]
    fn a_one_slot_bitmap_reads_bits_0_and_1(b in any::<u8>()) {
        let n = Notification::decode(&[0x50, b], 1).expect("NotifySlotChange");
        prop_assert_eq!(
            n,
            Notification::SlotChange(vec![SlotChange {
                slot: 0,
                present: b & 1 != 0,
                changed: b & 2 != 0,
            }])
        );
    }
}
