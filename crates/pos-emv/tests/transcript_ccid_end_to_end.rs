//! End to end: a scripted card (Mastercard transcript, lenient) in pos-ccid's virtual
//! reader, driven through the whole USB-message stack (CCID codec, T=0 / T=1, APDU level)
//! by `exchange` over a `SlotChannel`.
//!
//! The transcript comes from the test cases of binaryfoo/emv-bertlv (MIT licence).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pos_ccid::sim::{SimFaults, SimLevel, SimReaderConfig, VirtualReader};
use pos_ccid::{CcidReader, ReaderConfig};
use pos_emv::apdu::{self, Command};
use pos_emv::script_card::{Matching, Mismatch, ScriptedCard};
use pos_emv::transcript::Transcript;
use pos_hal::{CardChannel, ChipReader, FaultKind, SlotChannel, VirtualCard};

const MASTERCARD: &str = include_str!("data/contact-mastercard.apdu");

/// The card, shared so the test can look at it once the reader holds it.
#[derive(Clone)]
struct SharedCard(Arc<Mutex<ScriptedCard>>);

impl SharedCard {
    fn mismatches(&self) -> Vec<Mismatch> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .mismatches()
            .to_vec()
    }
}

impl VirtualCard for SharedCard {
    fn power_on(&mut self) -> Option<Vec<u8>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .power_on()
    }
    fn transmit(&mut self, command: &[u8]) -> Option<Vec<u8>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .transmit(command)
    }
}

/// A channel that records the APDUs `exchange` sends.
struct Recording<C> {
    inner: C,
    sent: Vec<Vec<u8>>,
}

impl<C: CardChannel> CardChannel for Recording<C> {
    type Error = C::Error;
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, C::Error> {
        self.sent.push(command.to_vec());
        self.inner.transmit(command)
    }
}

fn reader(level: SimLevel) -> (CcidReader<VirtualReader>, pos_ccid::sim::SimReaderHandle) {
    let cfg = SimReaderConfig {
        level,
        ..SimReaderConfig::default()
    };
    let (vr, handle) = VirtualReader::new(cfg, "sim:ccid");
    let config = ReaderConfig {
        command_timeout: Duration::from_millis(500),
        ..ReaderConfig::default()
    };
    (CcidReader::new(vr, "sim:ccid", config), handle)
}

#[test]
fn mastercard_transcript_through_the_ccid_virtual_reader() {
    let t = Transcript::parse(MASTERCARD).expect("shared transcript parses");

    for level in [SimLevel::Apdu, SimLevel::TpduT0, SimLevel::TpduT1] {
        let (mut r, handle) = reader(level);
        let card = match level {
            SimLevel::TpduT1 => ScriptedCard::new_t1(t.clone(), Matching::Lenient),
            _ => ScriptedCard::new(t.clone(), Matching::Lenient),
        };
        let card = SharedCard(Arc::new(Mutex::new(card)));
        handle.insert(Box::new(card.clone()));
        r.power_on(0)
            .unwrap_or_else(|e| panic!("{level:?}: power on: {e}"));

        let mut ch = Recording {
            inner: SlotChannel::new(&mut r, 0),
            sent: Vec::new(),
        };
        for (i, e) in t.exchanges.iter().enumerate() {
            let mut cmd = Command::parse(&e.command).expect("transcript command");
            if cmd.ins == 0xAE {
                // This terminal's own amount and unpredictable number.
                cmd.data[0] ^= 0x11;
            }
            let resp = apdu::exchange(&mut ch, &cmd)
                .unwrap_or_else(|err| panic!("{level:?}: exchange {i}: {err}"));
            assert_eq!(resp.to_bytes(), e.response, "{level:?}: exchange {i}");
        }
        assert!(
            card.mismatches().is_empty(),
            "{level:?}: {:?}",
            card.mismatches()
        );

        // Only behind the T=0 reader does the GET RESPONSE loop run: once per case 4
        // command (SELECT, GPO, two GENERATE ACs), with Le = the 61xx count.
        let get_responses: Vec<&Vec<u8>> =
            ch.sent.iter().filter(|c| c[..2] == [0x00, 0xC0]).collect();
        match level {
            SimLevel::TpduT0 => {
                assert_eq!(get_responses.len(), 4, "{level:?}");
                // SELECT's FCI is 0x1E bytes.
                assert_eq!(get_responses[0], &vec![0x00, 0xC0, 0x00, 0x00, 0x1E]);
                assert_eq!(ch.sent.len(), t.len() + 4);
            }
            _ => {
                assert!(get_responses.is_empty(), "{level:?}");
                assert_eq!(ch.sent.len(), t.len());
            }
        }
    }

    // A card pulled between the T=0 SELECT and its GET RESPONSE (the 2nd transfer): the
    // removal comes back typed, not as a protocol error.
    let (mut r, handle) = reader(SimLevel::TpduT0);
    handle.insert(Box::new(ScriptedCard::new(t.clone(), Matching::Lenient)));
    r.power_on(0).expect("power on");
    handle.set_faults(SimFaults {
        remove_at_exchange: Some(2),
        ..SimFaults::default()
    });
    let select = Command::parse(&t.exchanges[0].command).expect("SELECT");
    let err = apdu::exchange(&mut SlotChannel::new(&mut r, 0), &select).unwrap_err();
    assert_eq!(err.kind(), FaultKind::CardRemoved, "{err}");
}
