//! Interrupt IN messages: NotifySlotChange and HardwareError.

use super::{CodecError, RDR_TO_PC_HARDWARE_ERROR, RDR_TO_PC_NOTIFY_SLOT_CHANGE};

/// One slot's entry in a NotifySlotChange bitmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotChange {
    /// The slot number.
    pub slot: u8,
    /// Bit 2n: a card is present now.
    pub present: bool,
    /// Bit 2n+1: the state changed since the last NotifySlotChange (a card may have come
    /// and gone: treat a change as a removal even when `present`).
    pub changed: bool,
}

impl SlotChange {
    /// Changed and present: a card was inserted.
    pub fn inserted(&self) -> bool {
        self.changed && self.present
    }

    /// Changed and absent: the card was removed.
    pub fn removed(&self) -> bool {
        self.changed && !self.present
    }
}

/// An interrupt IN message (CCID rev 1.1, 6.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Notification {
    /// 0x50 NotifySlotChange: every slot's presence and change bits, slot 0 first.
    SlotChange(Vec<SlotChange>),
    /// 0x51 HardwareError.
    HardwareError {
        /// bSlot.
        slot: u8,
        /// bSeq of the command running when it happened.
        seq: u8,
        /// bHardwareErrorCode: [`HARDWARE_ERROR_OVERCURRENT`], ...
        ///
        /// [`HARDWARE_ERROR_OVERCURRENT`]: super::HARDWARE_ERROR_OVERCURRENT
        code: u8,
    },
}

impl Notification {
    /// Decode an interrupt transfer.
    ///
    /// NotifySlotChange: 0x50 then bmSlotICCState, two bits per slot (bit 2n present,
    /// bit 2n+1 changed), as many bytes as `slot_count` needs (`(slot_count + 3) / 4`).
    /// The result lists `slot_count` slots; with `slot_count` 0 every slot the bytes
    /// carry (4 per byte). HardwareError: 0x51, bSlot, bSeq, bHardwareErrorCode. Bytes
    /// beyond those are ignored.
    ///
    /// Errors: [`CodecError::Truncated`], [`CodecError::UnknownMessageType`].
    pub fn decode(bytes: &[u8], slot_count: u8) -> Result<Notification, CodecError> {
        match bytes {
            [RDR_TO_PC_NOTIFY_SLOT_CHANGE, bitmap @ ..] => {
                let slots = if slot_count == 0 {
                    bitmap.len().saturating_mul(4).min(256)
                } else {
                    usize::from(slot_count)
                };
                let needed = slots.div_ceil(4).max(1);
                if bitmap.len() < needed {
                    return Err(CodecError::Truncated {
                        message: "NotifySlotChange bmSlotICCState",
                        needed: 1 + needed,
                        got: bytes.len(),
                    });
                }
                let changes = (0..slots)
                    .map(|i| {
                        let byte = bitmap.get(i / 4).copied().unwrap_or(0);
                        let bits = byte >> ((i % 4) * 2);
                        SlotChange {
                            slot: u8::try_from(i).unwrap_or(u8::MAX),
                            present: bits & 0x01 != 0,
                            changed: bits & 0x02 != 0,
                        }
                    })
                    .collect();
                Ok(Notification::SlotChange(changes))
            }
            [RDR_TO_PC_HARDWARE_ERROR, slot, seq, code, ..] => Ok(Notification::HardwareError {
                slot: *slot,
                seq: *seq,
                code: *code,
            }),
            [RDR_TO_PC_HARDWARE_ERROR, ..] => Err(CodecError::Truncated {
                message: "HardwareError",
                needed: 4,
                got: bytes.len(),
            }),
            [message_type, ..] => Err(CodecError::UnknownMessageType {
                direction: "interrupt",
                message_type: *message_type,
            }),
            [] => Err(CodecError::Truncated {
                message: "interrupt message",
                needed: 1,
                got: 0,
            }),
        }
    }

    /// The message bytes (what the virtual reader sends on interrupt IN).
    ///
    /// NotifySlotChange places each entry at its `slot`'s bits and sends
    /// `(highest slot + 1 + 3) / 4` bitmap bytes (at least one). Slots not listed read as
    /// absent and unchanged.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Notification::SlotChange(changes) => {
                let slots = changes
                    .iter()
                    .map(|c| usize::from(c.slot) + 1)
                    .max()
                    .unwrap_or(1);
                let mut bitmap = vec![0u8; slots.div_ceil(4).max(1)];
                for c in changes {
                    let i = usize::from(c.slot);
                    let bits = u8::from(c.present) | u8::from(c.changed) << 1;
                    if let Some(b) = bitmap.get_mut(i / 4) {
                        *b |= bits << ((i % 4) * 2);
                    }
                }
                let mut v = vec![RDR_TO_PC_NOTIFY_SLOT_CHANGE];
                v.extend_from_slice(&bitmap);
                v
            }
            Notification::HardwareError { slot, seq, code } => {
                vec![RDR_TO_PC_HARDWARE_ERROR, *slot, *seq, *code]
            }
        }
    }
}
