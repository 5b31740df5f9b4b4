//! Property tests: the T=1 codec never panics; the terminal against the virtual card
//! delivers every APDU and response exactly, through chaining both ways, WTX storms and
//! transmission errors, and never reports a wrong success.

use std::collections::BTreeSet;
use std::fmt;

use pos_ccid::t1::{Block, BlockTransport, CardAction, Checksum, T1Card, T1Error, T1Terminal};
use proptest::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
enum TErr {
    Timeout,
}

impl fmt::Display for TErr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// Terminal <-> card, corrupting the blocks at the given exchange numbers: those in
/// `to_card` on the way to the card, those in `to_terminal` on the way back.
struct Wire<H> {
    card: T1Card,
    handler: H,
    calls: usize,
    to_card: BTreeSet<usize>,
    to_terminal: BTreeSet<usize>,
    wtx_seen: Vec<u8>,
}

impl<H: FnMut(&[u8]) -> Option<Vec<u8>>> BlockTransport for Wire<H> {
    type Error = TErr;

    fn exchange(&mut self, block: &[u8], wtx: u8) -> Result<Vec<u8>, TErr> {
        self.calls += 1;
        self.wtx_seen.push(wtx);
        let mut block = block.to_vec();
        if self.to_card.contains(&self.calls) {
            let index = self.calls % block.len();
            block[index] ^= 0x24;
        }
        match self.card.handle(&block, &mut self.handler) {
            CardAction::Reply(mut reply) => {
                if self.to_terminal.contains(&self.calls) {
                    let index = (self.calls * 7) % reply.len();
                    reply[index] ^= 0x81;
                }
                Ok(reply)
            }
            CardAction::Mute => Err(TErr::Timeout),
        }
    }

    fn is_recoverable(&self, _error: &TErr) -> bool {
        true
    }
}

fn checksum() -> impl Strategy<Value = Checksum> {
    prop_oneof![Just(Checksum::Lrc), Just(Checksum::Crc)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), cs in checksum()) {
        if let Ok(block) = Block::decode(&bytes, cs) {
            prop_assert!(block.kind().is_some());
            prop_assert_eq!(block.encode(cs), bytes);
        }
    }

    #[test]
    fn encode_decode_roundtrip(
        nad in any::<u8>(),
        ns in any::<bool>(),
        more in any::<bool>(),
        inf in proptest::collection::vec(any::<u8>(), 0..=254),
        cs in checksum(),
    ) {
        let block = Block::i(ns, more, inf).with_nad(nad);
        prop_assert_eq!(Block::decode(&block.encode(cs), cs), Ok(block));
    }

    #[test]
    fn card_never_panics(
        blocks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..30),
        cs in checksum(),
    ) {
        let mut card = T1Card::new(16, cs);
        card.wtx_before_response = 1;
        let mut handler = |apdu: &[u8]| Some(apdu.iter().rev().copied().chain([0x90, 0x00]).collect());
        for bytes in blocks {
            // Make about half of them well-formed so the card gets past decoding.
            let block = if bytes.first().is_some_and(|b| b & 1 == 0) {
                let pcb = bytes.get(1).copied().unwrap_or(0);
                Block { nad: 0, pcb, inf: bytes.get(2..).unwrap_or(&[]).to_vec() }.encode(cs)
            } else {
                bytes
            };
            let _ = card.handle(&block, &mut handler);
        }
    }

    #[test]
    fn terminal_and_card_end_to_end(
        ifsc in 8u8..=254,
        ifsd in prop::option::of(8u8..=254),
        cs in checksum(),
        wtx in 0u8..6,
        multiplier in 1u8..=255,
        corrupt in any::<bool>(),
        exchanges in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..700), proptest::collection::vec(any::<u8>(), 0..700)),
            1..4,
        ),
    ) {
        let mut card = T1Card::new(ifsc, cs);
        card.wtx_before_response = wtx;
        card.wtx_multiplier = multiplier;
        card.corrupt_next = corrupt;
        let responses: Vec<Vec<u8>> = exchanges
            .iter()
            .map(|(_, data)| data.iter().copied().chain([0x90, 0x00]).collect())
            .collect();
        let mut seen: Vec<Vec<u8>> = Vec::new();
        let mut index = 0usize;
        let handler = |apdu: &[u8]| {
            seen.push(apdu.to_vec());
            let response = responses.get(index).cloned();
            index += 1;
            response
        };
        let mut wire = Wire {
            card,
            handler,
            calls: 0,
            to_card: BTreeSet::new(),
            to_terminal: BTreeSet::new(),
            wtx_seen: Vec::new(),
        };
        let mut t1 = T1Terminal::new(ifsc, cs);
        if let Some(ifsd) = ifsd {
            t1.negotiate_ifsd(&mut wire, ifsd).unwrap();
            prop_assert_eq!(wire.card.ifsd, ifsd);
        }
        for (n, (apdu, _)) in exchanges.iter().enumerate() {
            let got = t1.transceive(&mut wire, apdu).unwrap();
            prop_assert_eq!(&got, &responses[n]);
        }
        let extensions = wire.wtx_seen.iter().filter(|&&w| w == multiplier && w != 1).count();
        drop(wire);
        let apdus: Vec<Vec<u8>> = exchanges.iter().map(|(apdu, _)| apdu.clone()).collect();
        prop_assert_eq!(seen, apdus);
        if multiplier != 1 {
            prop_assert_eq!(extensions, usize::from(wtx) * exchanges.len());
        }
    }

    #[test]
    fn transmission_errors_never_give_a_wrong_success(
        ifsc in 4u8..=64,
        cs in checksum(),
        apdu in proptest::collection::vec(any::<u8>(), 1..200),
        data in proptest::collection::vec(any::<u8>(), 0..200),
        to_card in proptest::collection::btree_set(1usize..40, 0..4),
        to_terminal in proptest::collection::btree_set(1usize..40, 0..4),
        wtx in 0u8..3,
    ) {
        let response: Vec<u8> = data.iter().copied().chain([0x61, 0x10]).collect();
        let mut card = T1Card::new(ifsc, cs);
        card.wtx_before_response = wtx;
        let expected_apdu = apdu.clone();
        let mut wrong_apdu = false;
        let handler = |got: &[u8]| {
            if got != expected_apdu.as_slice() {
                wrong_apdu = true;
            }
            Some(response.clone())
        };
        let mut wire = Wire { card, handler, calls: 0, to_card, to_terminal, wtx_seen: Vec::new() };
        let mut t1 = T1Terminal::new(ifsc, cs);
        let result = t1.transceive(&mut wire, &apdu);
        let calls = wire.calls;
        drop(wire);
        prop_assert!(!wrong_apdu, "the card got a wrong APDU");
        match result {
            Ok(got) => prop_assert_eq!(got, response),
            Err(T1Error::Resynchronised | T1Error::ResyncFailed { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error {:?}", e),
        }
        prop_assert!(calls < 1200);
    }
}
