//! T=1 engine against scripted block sequences: every error and recovery case.

use std::collections::VecDeque;
use std::fmt;

use pos_ccid::t1::{
    Block, BlockError, BlockKind, BlockTransport, CardAction, Checksum, RError, SKind, T1Card,
    T1Error, T1Terminal, crc16, lrc,
};

// ---------------------------------------------------------------------------------------
// Helpers

#[derive(Debug, Clone, PartialEq, Eq)]
enum TErr {
    /// The card was pulled (fatal).
    Removed,
    /// BWT expired with the card present (recoverable).
    Timeout,
}

impl fmt::Display for TErr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).expect("test hex")
}

fn i(ns: bool, more: bool, inf: &[u8]) -> Vec<u8> {
    Block::i(ns, more, inf.to_vec()).encode(Checksum::Lrc)
}

fn r(nr: bool, err: RError) -> Vec<u8> {
    Block::r(nr, err).encode(Checksum::Lrc)
}

fn s(kind: SKind, response: bool, inf: &[u8]) -> Vec<u8> {
    Block::s(kind, response, inf.to_vec()).encode(Checksum::Lrc)
}

fn corrupt(mut block: Vec<u8>) -> Vec<u8> {
    let last = block.len() - 1;
    block[last] ^= 0x5A;
    block
}

/// One scripted exchange: the block the terminal must send, the card's answer.
type Step = (Vec<u8>, Result<Vec<u8>, TErr>);

/// A transport that checks every block the terminal sends against a script and plays the
/// card's scripted answer.
struct Script {
    steps: VecDeque<Step>,
    wtx: Vec<u8>,
    count: usize,
}

impl Script {
    fn new(steps: Vec<Step>) -> Script {
        Script {
            steps: steps.into(),
            wtx: Vec::new(),
            count: 0,
        }
    }

    fn done(&self) {
        assert!(
            self.steps.is_empty(),
            "script not finished: {} steps left",
            self.steps.len()
        );
    }
}

impl BlockTransport for Script {
    type Error = TErr;

    fn exchange(&mut self, block: &[u8], wtx: u8) -> Result<Vec<u8>, TErr> {
        self.count += 1;
        self.wtx.push(wtx);
        let (expected, reply) = self.steps.pop_front().unwrap_or_else(|| {
            panic!(
                "step {}: unexpected block {:02X?}",
                self.count,
                Block::decode(block, Checksum::Lrc)
            )
        });
        assert_eq!(
            Block::decode(block, Checksum::Lrc),
            Block::decode(&expected, Checksum::Lrc),
            "step {}",
            self.count
        );
        assert_eq!(block, expected.as_slice(), "step {}", self.count);
        reply
    }

    fn is_recoverable(&self, error: &TErr) -> bool {
        *error == TErr::Timeout
    }
}

/// A transport answering with a closure (hostile cards).
struct FnTransport<F>(F, usize);

impl<F: FnMut(&[u8], u8) -> Result<Vec<u8>, TErr>> BlockTransport for FnTransport<F> {
    type Error = TErr;

    fn exchange(&mut self, block: &[u8], wtx: u8) -> Result<Vec<u8>, TErr> {
        self.1 += 1;
        (self.0)(block, wtx)
    }

    fn is_recoverable(&self, error: &TErr) -> bool {
        *error == TErr::Timeout
    }
}

/// A transport backed by a virtual T=1 card, failing with `fail_with` at exchange number
/// `fail_at` (1-based), if any.
struct CardTransport<H> {
    card: T1Card,
    handler: H,
    calls: usize,
    fail_at: Option<usize>,
    fail_with: TErr,
    wtx: Vec<u8>,
}

impl<H: FnMut(&[u8]) -> Option<Vec<u8>>> CardTransport<H> {
    fn new(card: T1Card, handler: H) -> Self {
        CardTransport {
            card,
            handler,
            calls: 0,
            fail_at: None,
            fail_with: TErr::Removed,
            wtx: Vec::new(),
        }
    }
}

impl<H: FnMut(&[u8]) -> Option<Vec<u8>>> BlockTransport for CardTransport<H> {
    type Error = TErr;

    fn exchange(&mut self, block: &[u8], wtx: u8) -> Result<Vec<u8>, TErr> {
        self.calls += 1;
        self.wtx.push(wtx);
        if self.fail_at == Some(self.calls) {
            return Err(self.fail_with.clone());
        }
        match self.card.handle(block, &mut self.handler) {
            CardAction::Reply(bytes) => Ok(bytes),
            CardAction::Mute => Err(TErr::Timeout),
        }
    }

    fn is_recoverable(&self, error: &TErr) -> bool {
        *error == TErr::Timeout
    }
}

const SELECT: &str = "00A4040007A000000004101000";
const SELECT_RESPONSE: &str = "6F1C8407A0000000041010A511500F505043204D434420303420207632309000";

fn is_transport_removed<T: fmt::Debug>(result: &Result<T, T1Error<TErr>>) -> bool {
    matches!(result, Err(T1Error::Transport(TErr::Removed)))
}

mod card;
mod codec;
mod exchange;
mod hostile;
mod recovery;
mod s_blocks;
