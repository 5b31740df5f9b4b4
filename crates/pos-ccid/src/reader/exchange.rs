//! Card exchanges: one XfrBlock, and APDUs at APDU level, over T=0 and over T=1.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Inner, is_response_apdu};
use crate::descriptor::ExchangeLevel;
use crate::error::CcidError;
use crate::message::{IccStatus, RequestBody, Response, ResponseBody, SlotError};
use crate::t0;
use crate::t1::{BlockTransport, T1Error};
use crate::transport::CcidTransport;

impl<T: CcidTransport + 'static> Inner<T> {
    /// Timeout for one exchange with the card: its waiting time times `multiplier`, plus the
    /// margin, capped.
    fn exchange_timeout(&self, slot: u8, multiplier: u32) -> Duration {
        let base = self.slots[usize::from(slot)].card_wait;
        (base * multiplier.max(1) + self.config.exchange_margin).min(self.config.exchange_cap)
    }

    /// One XfrBlock (any level): returns the reply's data and chain parameter.
    fn xfr(
        &mut self,
        slot: u8,
        data: Vec<u8>,
        level: u16,
        bwi: u8,
        timeout: Duration,
    ) -> Result<(Vec<u8>, u8), CcidError> {
        if self.presence.removed_since[usize::from(slot)].load(Ordering::SeqCst) {
            return Err(CcidError::CardRemoved {
                slot,
                detail: "the reader reported the card's removal".into(),
            });
        }
        let resp = self.command(slot, RequestBody::XfrBlock { bwi, level, data }, timeout)?;
        match Self::check_response(slot, &resp) {
            // The card we were talking to is not there any more: it was pulled.
            Err(CcidError::CardAbsent { .. }) => {
                return Err(CcidError::CardRemoved {
                    slot,
                    detail: "the reader reports no card in the middle of an exchange".into(),
                });
            }
            Err(e) => return Err(e),
            // "Success, and no card in the slot": the card went during the exchange and the
            // reader flushed the command with an empty answer (QEMU's usb-ccid does this).
            Ok(()) if resp.status.icc() == IccStatus::Absent => {
                return Err(CcidError::CardRemoved {
                    slot,
                    detail: "the reader answered the exchange with no card in the slot".into(),
                });
            }
            Ok(()) => {}
        }
        match resp {
            Response {
                body: ResponseBody::DataBlock { data, chain },
                ..
            } => Ok((data, chain)),
            other => Err(CcidError::Protocol(format!(
                "XfrBlock answered with {other:?}"
            ))),
        }
    }

    pub(super) fn transmit(&mut self, slot: u8, apdu: &[u8]) -> Result<Vec<u8>, CcidError> {
        self.check_slot(slot)?;
        if !self.slots[usize::from(slot)].powered {
            return Err(CcidError::CardAbsent { slot });
        }
        if apdu.len() < 4 {
            return Err(CcidError::BadApdu(format!(
                "{} bytes: an APDU has at least 4",
                apdu.len()
            )));
        }
        let level = self.policy.exchange_level.value;
        let protocol = self.slots[usize::from(slot)].protocol;
        if crate::policy::is_extended_apdu(apdu) {
            let allowed = match level {
                ExchangeLevel::ExtendedApdu => true,
                ExchangeLevel::Tpdu => protocol == 1,
                ExchangeLevel::ShortApdu | ExchangeLevel::Character => false,
            };
            if !allowed {
                let why = match level {
                    ExchangeLevel::Tpdu => "a T=0 card at TPDU level (extended APDUs need \
                                            ENVELOPE, which the driver does not do)"
                        .to_string(),
                    other => format!(
                        "a {} level reader (extended APDUs need an extended-APDU or TPDU \
                         level reader with a T=1 card)",
                        other.name()
                    ),
                };
                return Err(CcidError::ReaderUnsupported(format!(
                    "slot {slot}: a {}-byte extended APDU cannot go to {why}",
                    apdu.len()
                )));
            }
        }
        let result = match level {
            ExchangeLevel::ShortApdu | ExchangeLevel::ExtendedApdu => {
                self.transmit_apdu(slot, apdu)
            }
            ExchangeLevel::Tpdu if protocol == 1 => self.transmit_t1(slot, apdu),
            ExchangeLevel::Tpdu => self.transmit_t0(slot, apdu),
            ExchangeLevel::Character => Err(CcidError::CardUnsupported {
                slot,
                detail: "character-level reader".into(),
            }),
        };
        match result {
            Ok(r) if is_response_apdu(&r) => Ok(r),
            Ok(r) => Err(self.classify(
                slot,
                CcidError::Protocol(format!(
                    "the answer {:02X?} is not a response APDU: it must end in SW1 SW2 with SW1 \
                     6X (not 60) or 9X (the card and reader may disagree on the protocol)",
                    &r[..r.len().min(16)]
                )),
            )),
            Err(
                e @ (CcidError::BadApdu(_)
                | CcidError::NoSuchSlot { .. }
                | CcidError::ReaderUnsupported(_)),
            ) => Err(e),
            Err(e) => Err(self.classify(slot, e)),
        }
    }

    /// APDU level: one message per command, or (extended APDU level only) command chaining
    /// through wLevelParameter; chained responses are collected at either APDU level.
    fn transmit_apdu(&mut self, slot: u8, apdu: &[u8]) -> Result<Vec<u8>, CcidError> {
        let timeout = self.exchange_timeout(slot, 1);
        let max = self.policy.max_payload().max(16);
        if apdu.len() > max && self.policy.exchange_level.value != ExchangeLevel::ExtendedApdu {
            return Err(CcidError::ReaderUnsupported(format!(
                "slot {slot}: a {}-byte APDU does not fit the reader's messages ({max} bytes of \
                 data: {}), and a short-APDU reader does not take chained commands",
                apdu.len(),
                self.policy.max_message_length.reason
            )));
        }
        let mut reply = if apdu.len() <= max {
            self.xfr(slot, apdu.to_vec(), 0, 0, timeout)?
        } else {
            let chunks: Vec<&[u8]> = apdu.chunks(max).collect();
            let last = chunks.len() - 1;
            let mut r = (Vec::new(), 0);
            for (i, c) in chunks.iter().enumerate() {
                let level = match i {
                    0 => 1,
                    i if i == last => 2,
                    _ => 3,
                };
                r = self.xfr(slot, c.to_vec(), level, 0, timeout)?;
            }
            r
        };
        let mut out = std::mem::take(&mut reply.0);
        let mut rounds = 0;
        // chain 1 = begins and continues, 3 = continues: ask for more with level 0x10.
        while reply.1 == 1 || reply.1 == 3 {
            rounds += 1;
            if rounds > 1024 {
                return Err(CcidError::Protocol("response chaining does not end".into()));
            }
            reply = self.xfr(slot, Vec::new(), 0x10, 0, timeout)?;
            out.extend_from_slice(&reply.0);
        }
        Ok(out)
    }

    fn transmit_t0(&mut self, slot: u8, apdu: &[u8]) -> Result<Vec<u8>, CcidError> {
        let tpdu = t0::tpdu_from_apdu(apdu).map_err(|e| CcidError::BadApdu(e.to_string()))?;
        let mut bytes = tpdu.header.to_vec();
        bytes.extend_from_slice(&tpdu.data);
        let max = self.policy.max_payload();
        if bytes.len() > max {
            return Err(CcidError::ReaderUnsupported(format!(
                "slot {slot}: a {}-byte TPDU does not fit the reader's messages ({max} bytes of \
                 data: {})",
                bytes.len(),
                self.policy.max_message_length.reason
            )));
        }
        let timeout = self.exchange_timeout(slot, 1);
        Ok(self.xfr(slot, bytes, 0, 0, timeout)?.0)
    }

    fn transmit_t1(&mut self, slot: u8, apdu: &[u8]) -> Result<Vec<u8>, CcidError> {
        let Some(mut t1) = self.slots[usize::from(slot)].t1.take() else {
            return Err(CcidError::Protocol(
                "T=1 state missing: power the card on again".into(),
            ));
        };
        let result = {
            let mut tr = SlotBlocks { inner: self, slot };
            t1.transceive(&mut tr, apdu)
        };
        match result {
            Ok(r) => {
                self.slots[usize::from(slot)].t1 = Some(t1);
                Ok(r)
            }
            Err(e) => {
                // Keep the engine (its sequence numbers) unless the card is gone.
                self.slots[usize::from(slot)].t1 = Some(t1);
                Err(self.t1_failure(slot, e))
            }
        }
    }

    pub(super) fn t1_failure(&mut self, slot: u8, e: T1Error<CcidError>) -> CcidError {
        match e {
            T1Error::Transport(inner) => inner,
            other => CcidError::Protocol(format!("slot {slot}: T=1: {other}")),
        }
    }
}

/// The T=1 engine's view of a slot: one block per XfrBlock.
pub(super) struct SlotBlocks<'a, T: CcidTransport + 'static> {
    pub(super) inner: &'a mut Inner<T>,
    pub(super) slot: u8,
}

impl<T: CcidTransport + 'static> BlockTransport for SlotBlocks<'_, T> {
    type Error = CcidError;
    fn exchange(&mut self, block: &[u8], wtx: u8) -> Result<Vec<u8>, CcidError> {
        let timeout = self.inner.exchange_timeout(self.slot, u32::from(wtx));
        Ok(self
            .inner
            .xfr(self.slot, block.to_vec(), 0, wtx, timeout)?
            .0)
    }

    /// A transfer error on the line is worth a T=1 retransmission; a removal, a mute card or
    /// an unplugged reader is not.
    fn is_recoverable(&self, e: &CcidError) -> bool {
        matches!(
            e,
            CcidError::Slot {
                error: SlotError::XfrParityError | SlotError::XfrOverrun,
                ..
            }
        )
    }
}
