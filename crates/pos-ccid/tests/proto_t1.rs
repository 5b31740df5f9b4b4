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
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digits"))
        .collect()
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

// ---------------------------------------------------------------------------------------
// Block codec

#[test]
fn i_block_exact_bytes() {
    let block = Block::i(false, false, hex("00A40400"));
    assert_eq!(block.encode(Checksum::Lrc), hex("00 00 04 00 A4 04 00 A4"));
    // The example from the issue: NAD 00, PCB 00, LEN 05, INF 00 A4 04 00 00, LRC A5.
    let block = Block::i(false, false, hex("00A4040000"));
    assert_eq!(
        block.encode(Checksum::Lrc),
        hex("00 00 05 00 A4 04 00 00 A5")
    );
    assert_eq!(lrc(&hex("00 00 05 00 A4 04 00 00")), 0xA5);
    // N(S) = 1, more data.
    assert_eq!(
        Block::i(true, true, vec![0x42]).encode(Checksum::Lrc),
        hex("00 60 01 42 23")
    );
}

#[test]
fn r_and_s_block_exact_bytes() {
    assert_eq!(r(false, RError::None), hex("00 80 00 80"));
    assert_eq!(r(true, RError::None), hex("00 90 00 90"));
    assert_eq!(r(true, RError::Edc), hex("00 91 00 91"));
    assert_eq!(r(false, RError::Other), hex("00 82 00 82"));
    assert_eq!(s(SKind::Ifs, false, &[0xFE]), hex("00 C1 01 FE 3E"));
    assert_eq!(s(SKind::Ifs, true, &[0xFE]), hex("00 E1 01 FE 1E"));
    assert_eq!(s(SKind::Wtx, false, &[0x02]), hex("00 C3 01 02 C0"));
    assert_eq!(s(SKind::Wtx, true, &[0x02]), hex("00 E3 01 02 E0"));
    assert_eq!(s(SKind::Resync, false, &[]), hex("00 C0 00 C0"));
    assert_eq!(s(SKind::Resync, true, &[]), hex("00 E0 00 E0"));
    assert_eq!(s(SKind::Abort, false, &[]), hex("00 C2 00 C2"));
    assert_eq!(s(SKind::Abort, true, &[]), hex("00 E2 00 E2"));
}

#[test]
fn block_kinds() {
    assert_eq!(
        Block::i(true, false, vec![]).kind(),
        Some(BlockKind::I {
            ns: true,
            more: false
        })
    );
    assert_eq!(
        Block::r(true, RError::Edc).kind(),
        Some(BlockKind::R {
            nr: true,
            error: RError::Edc
        })
    );
    assert_eq!(
        Block::s(SKind::Wtx, true, vec![1]).kind(),
        Some(BlockKind::S {
            kind: SKind::Wtx,
            response: true
        })
    );
    // Reserved R-block error code, bit 6 set in an R-block, reserved S-block function.
    for pcb in [0x83, 0x8F, 0xA0, 0xC4, 0xE5, 0xFF] {
        let block = Block {
            nad: 0,
            pcb,
            inf: vec![],
        };
        assert_eq!(block.kind(), None, "pcb {pcb:#04x}");
    }
}

#[test]
fn crc_block_exact_bytes() {
    // CRC check value of the reflected CCITT polynomial with initial value FFFF.
    assert_eq!(crc16(b"123456789"), 0x6F91);
    let block = Block::i(false, false, hex("00A4040000"));
    let bytes = block.encode(Checksum::Crc);
    let crc = crc16(&hex("00 00 05 00 A4 04 00 00"));
    let mut expected = hex("00 00 05 00 A4 04 00 00");
    expected.extend_from_slice(&crc.to_be_bytes());
    assert_eq!(bytes, expected);
    assert_eq!(bytes.len(), 10);
    assert_eq!(Block::decode(&bytes, Checksum::Crc), Ok(block.clone()));
    // The same bytes read with LRC are wrong.
    assert!(Block::decode(&bytes, Checksum::Lrc).is_err());
    // One flipped bit anywhere is caught.
    for index in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[index] ^= 0x01;
        assert!(
            Block::decode(&bad, Checksum::Crc).is_err(),
            "bit flip at {index}"
        );
    }
}

#[test]
fn decode_errors() {
    assert_eq!(
        Block::decode(&[], Checksum::Lrc),
        Err(BlockError::TooShort { len: 0 })
    );
    assert_eq!(
        Block::decode(&hex("00 00 00"), Checksum::Crc),
        Err(BlockError::TooShort { len: 3 })
    );
    assert_eq!(
        Block::decode(&hex("00 00 FF 00"), Checksum::Lrc),
        Err(BlockError::ReservedLen)
    );
    assert_eq!(
        Block::decode(&hex("00 00 05 00 A4 04 00 A5"), Checksum::Lrc),
        Err(BlockError::LengthMismatch {
            len_field: 5,
            actual: 8
        })
    );
    assert_eq!(
        Block::decode(&hex("00 00 05 00 A4 04 00 00 A5 00"), Checksum::Lrc),
        Err(BlockError::LengthMismatch {
            len_field: 5,
            actual: 10
        })
    );
    let err = Block::decode(&hex("00 00 05 00 A4 04 00 00 A6"), Checksum::Lrc).unwrap_err();
    assert_eq!(
        err,
        BlockError::Edc {
            found: vec![0xA6],
            computed: vec![0xA5]
        }
    );
    assert_eq!(err.r_error(), RError::Edc);
    // R-block with an INF field.
    let mut bytes = hex("00 80 01 55");
    bytes.push(lrc(&bytes));
    assert_eq!(
        Block::decode(&bytes, Checksum::Lrc),
        Err(BlockError::RBlockWithInf(1))
    );
    // Reserved PCB.
    let mut bytes = hex("00 C5 00");
    bytes.push(lrc(&bytes));
    assert_eq!(
        Block::decode(&bytes, Checksum::Lrc),
        Err(BlockError::BadPcb(0xC5))
    );
    assert_eq!(BlockError::BadPcb(0xC5).r_error(), RError::Other);
}

#[test]
fn encode_decode_max_inf_and_too_long() {
    let inf = vec![0xAB; 254];
    let block = Block::i(true, false, inf);
    let bytes = block.encode(Checksum::Lrc);
    assert_eq!(bytes.len(), 258);
    assert_eq!(bytes[2], 254);
    assert_eq!(Block::decode(&bytes, Checksum::Lrc), Ok(block));
    let too_long = Block::i(false, false, vec![0; 255]);
    assert_eq!(
        too_long.try_encode(Checksum::Lrc),
        Err(BlockError::InfTooLong(255))
    );
    assert_eq!(too_long.encode(Checksum::Lrc)[2], 254);
}

#[test]
fn nad_is_kept() {
    let block = Block::i(false, false, vec![1]).with_nad(0x12);
    let bytes = block.encode(Checksum::Lrc);
    assert_eq!(bytes[0], 0x12);
    assert_eq!(Block::decode(&bytes, Checksum::Lrc).unwrap().nad, 0x12);
}

// ---------------------------------------------------------------------------------------
// Terminal: error-free operation

#[test]
fn simple_exchange_and_sequence_numbers() {
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    let mut script = Script::new(vec![
        (
            i(false, false, &hex(SELECT)),
            Ok(i(false, false, &hex(SELECT_RESPONSE))),
        ),
        (
            i(true, false, &hex("80A8000002830000")),
            Ok(i(true, false, &hex("9000"))),
        ),
        (
            i(false, false, &hex("00B2011400")),
            Ok(i(false, false, &hex("6A83"))),
        ),
    ]);
    assert_eq!(
        t1.transceive(&mut script, &hex(SELECT)).unwrap(),
        hex(SELECT_RESPONSE)
    );
    assert!(t1.ns && t1.nr);
    assert_eq!(
        t1.transceive(&mut script, &hex("80A8000002830000"))
            .unwrap(),
        hex("9000")
    );
    assert_eq!(
        t1.transceive(&mut script, &hex("00B2011400")).unwrap(),
        hex("6A83")
    );
    assert_eq!(script.wtx, vec![1, 1, 1]);
    assert!(!t1.needs_resync());
    script.done();
}

#[test]
fn ifsd_negotiation() {
    let mut t1 = T1Terminal::new(32, Checksum::Lrc);
    assert_eq!(t1.ifsd, 32);
    let mut script = Script::new(vec![(
        s(SKind::Ifs, false, &[254]),
        Ok(s(SKind::Ifs, true, &[254])),
    )]);
    t1.negotiate_ifsd(&mut script, 254).unwrap();
    assert_eq!(t1.ifsd, 254);
    script.done();
}

#[test]
fn ifsd_negotiation_retries_then_fails() {
    let mut t1 = T1Terminal::new(32, Checksum::Lrc);
    let request = s(SKind::Ifs, false, &[254]);
    let mut script = Script::new(vec![
        // Wrong value, garbled, an R-block, timeout: four attempts, then give up.
        (request.clone(), Ok(s(SKind::Ifs, true, &[32]))),
        (request.clone(), Ok(corrupt(s(SKind::Ifs, true, &[254])))),
        (request.clone(), Ok(r(false, RError::Other))),
        (request.clone(), Err(TErr::Timeout)),
    ]);
    let err = t1.negotiate_ifsd(&mut script, 254).unwrap_err();
    // The last attempt was a timeout: the transport's error comes back.
    assert!(matches!(err, T1Error::Transport(TErr::Timeout)), "{err:?}");
    assert_eq!(t1.ifsd, 32);
    script.done();

    let mut script = Script::new(vec![
        (request.clone(), Ok(s(SKind::Ifs, true, &[32]))),
        (request.clone(), Ok(s(SKind::Ifs, true, &[32]))),
        (request.clone(), Ok(s(SKind::Ifs, true, &[32]))),
        (request.clone(), Ok(s(SKind::Ifs, true, &[32]))),
    ]);
    let err = t1.negotiate_ifsd(&mut script, 254).unwrap_err();
    assert!(matches!(err, T1Error::Protocol { .. }), "{err:?}");
    script.done();
}

#[test]
fn ifsd_negotiation_recovers_and_answers_wtx() {
    let mut t1 = T1Terminal::new(32, Checksum::Lrc);
    let request = s(SKind::Ifs, false, &[254]);
    let mut script = Script::new(vec![
        (request.clone(), Ok(corrupt(s(SKind::Ifs, true, &[254])))),
        (request.clone(), Ok(s(SKind::Wtx, false, &[3]))),
        (s(SKind::Wtx, true, &[3]), Ok(s(SKind::Ifs, true, &[254]))),
    ]);
    t1.negotiate_ifsd(&mut script, 254).unwrap();
    assert_eq!(t1.ifsd, 254);
    assert_eq!(script.wtx, vec![1, 1, 3]);
    script.done();
}

#[test]
fn ifsd_negotiation_removal_is_returned_at_once() {
    let mut t1 = T1Terminal::new(32, Checksum::Lrc);
    let mut script = Script::new(vec![(s(SKind::Ifs, false, &[254]), Err(TErr::Removed))]);
    let err = t1.negotiate_ifsd(&mut script, 254).unwrap_err();
    assert!(matches!(err, T1Error::Transport(TErr::Removed)));
    script.done();
    assert!(matches!(
        t1.negotiate_ifsd(&mut script, 0),
        Err(T1Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        t1.negotiate_ifsd(&mut script, 255),
        Err(T1Error::InvalidArgument { .. })
    ));
}

#[test]
fn command_chaining_ifsc_32_with_100_byte_apdu() {
    let mut t1 = T1Terminal::new(32, Checksum::Lrc);
    let apdu: Vec<u8> = (0..100u8).collect();
    let mut script = Script::new(vec![
        (i(false, true, &apdu[0..32]), Ok(r(true, RError::None))),
        (i(true, true, &apdu[32..64]), Ok(r(false, RError::None))),
        (i(false, true, &apdu[64..96]), Ok(r(true, RError::None))),
        (
            i(true, false, &apdu[96..100]),
            Ok(i(false, false, &hex("9000"))),
        ),
    ]);
    assert_eq!(t1.transceive(&mut script, &apdu).unwrap(), hex("9000"));
    // Four I-blocks sent: N(S) back to 0; one received: N(R) 1.
    assert!(!t1.ns);
    assert!(t1.nr);
    script.done();
}

#[test]
fn response_chaining() {
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    let response: Vec<u8> = (0..100u8).chain([0x90, 0x00]).collect();
    let mut script = Script::new(vec![
        (
            i(false, false, &hex("00B2010C00")),
            Ok(i(false, true, &response[0..32])),
        ),
        (r(true, RError::None), Ok(i(true, true, &response[32..64]))),
        (
            r(false, RError::None),
            Ok(i(false, true, &response[64..96])),
        ),
        (r(true, RError::None), Ok(i(true, false, &response[96..]))),
    ]);
    assert_eq!(
        t1.transceive(&mut script, &hex("00B2010C00")).unwrap(),
        response
    );
    assert!(t1.ns);
    assert!(!t1.nr);
    script.done();
}

#[test]
fn chaining_both_ways() {
    let mut t1 = T1Terminal::new(16, Checksum::Lrc);
    let apdu = vec![0x11; 40];
    let mut script = Script::new(vec![
        (i(false, true, &apdu[..16]), Ok(r(true, RError::None))),
        (i(true, true, &apdu[16..32]), Ok(r(false, RError::None))),
        (i(false, false, &apdu[32..]), Ok(i(false, true, &[1, 2, 3]))),
        (r(true, RError::None), Ok(i(true, false, &[0x90, 0x00]))),
    ]);
    assert_eq!(
        t1.transceive(&mut script, &apdu).unwrap(),
        vec![1, 2, 3, 0x90, 0x00]
    );
    script.done();
}

#[test]
fn card_block_longer_than_ifsd_is_rejected() {
    let mut t1 = T1Terminal::new(32, Checksum::Lrc);
    let long = vec![0x55; 40];
    let mut script = Script::new(vec![
        (i(false, false, &[1, 2, 3, 4]), Ok(i(false, false, &long))),
        (r(false, RError::Other), Ok(i(false, false, &[0x90, 0x00]))),
    ]);
    assert_eq!(
        t1.transceive(&mut script, &[1, 2, 3, 4]).unwrap(),
        hex("9000")
    );
    script.done();
}

// ---------------------------------------------------------------------------------------
// Terminal: S-blocks from the card

#[test]
fn wtx_is_answered_and_reaches_the_transport() {
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    let mut script = Script::new(vec![
        (
            i(false, false, &hex(SELECT)),
            Ok(s(SKind::Wtx, false, &[5])),
        ),
        (s(SKind::Wtx, true, &[5]), Ok(s(SKind::Wtx, false, &[2]))),
        (
            s(SKind::Wtx, true, &[2]),
            Ok(i(false, false, &hex(SELECT_RESPONSE))),
        ),
        (
            i(true, false, &hex(SELECT)),
            Ok(i(true, false, &hex("9000"))),
        ),
    ]);
    assert_eq!(
        t1.transceive(&mut script, &hex(SELECT)).unwrap(),
        hex(SELECT_RESPONSE)
    );
    assert_eq!(
        t1.transceive(&mut script, &hex(SELECT)).unwrap(),
        hex("9000")
    );
    // The multiplier applies to the wait right after S(WTX response), then falls back to 1.
    assert_eq!(script.wtx, vec![1, 5, 2, 1]);
    script.done();
}

#[test]
fn wtx_during_chaining() {
    let mut t1 = T1Terminal::new(4, Checksum::Lrc);
    let apdu = [1, 2, 3, 4, 5, 6];
    let mut script = Script::new(vec![
        (i(false, true, &apdu[..4]), Ok(s(SKind::Wtx, false, &[9]))),
        (s(SKind::Wtx, true, &[9]), Ok(r(true, RError::None))),
        (i(true, false, &apdu[4..]), Ok(i(false, true, &[7]))),
        (r(true, RError::None), Ok(s(SKind::Wtx, false, &[1]))),
        (s(SKind::Wtx, true, &[1]), Ok(i(true, false, &[0x90, 0x00]))),
    ]);
    assert_eq!(
        t1.transceive(&mut script, &apdu).unwrap(),
        vec![7, 0x90, 0x00]
    );
    assert_eq!(script.wtx, vec![1, 9, 1, 1, 1]);
    script.done();
}

#[test]
fn wtx_with_bad_inf_is_an_invalid_block() {
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    let mut script = Script::new(vec![
        (i(false, false, &[1]), Ok(s(SKind::Wtx, false, &[]))),
        (r(false, RError::Other), Ok(s(SKind::Wtx, false, &[0]))),
        (r(false, RError::Other), Ok(i(false, false, &[0x90, 0x00]))),
    ]);
    assert_eq!(t1.transceive(&mut script, &[1]).unwrap(), hex("9000"));
    script.done();
}

#[test]
fn ifs_request_from_the_card_changes_chunk_size() {
    let mut t1 = T1Terminal::new(32, Checksum::Lrc);
    let apdu: Vec<u8> = (0..70u8).collect();
    let mut script = Script::new(vec![
        (
            i(false, true, &apdu[..32]),
            Ok(s(SKind::Ifs, false, &[0x10])),
        ),
        (s(SKind::Ifs, true, &[0x10]), Ok(r(true, RError::None))),
        (i(true, true, &apdu[32..48]), Ok(r(false, RError::None))),
        (i(false, true, &apdu[48..64]), Ok(r(true, RError::None))),
        (
            i(true, false, &apdu[64..]),
            Ok(i(false, false, &[0x90, 0x00])),
        ),
    ]);
    assert_eq!(t1.transceive(&mut script, &apdu).unwrap(), hex("9000"));
    assert_eq!(t1.ifsc, 0x10);
    script.done();
}

#[test]
fn ifs_request_then_retransmission_recuts_the_block() {
    let mut t1 = T1Terminal::new(32, Checksum::Lrc);
    let apdu: Vec<u8> = (0..40u8).collect();
    let mut script = Script::new(vec![
        (
            i(false, true, &apdu[..32]),
            Ok(s(SKind::Ifs, false, &[0x10])),
        ),
        // The card asks for the (too long) block again: it goes again in 16 bytes.
        (s(SKind::Ifs, true, &[0x10]), Ok(r(false, RError::Other))),
        (i(false, true, &apdu[..16]), Ok(r(true, RError::None))),
        (i(true, true, &apdu[16..32]), Ok(r(false, RError::None))),
        (
            i(false, false, &apdu[32..]),
            Ok(i(false, false, &[0x90, 0x00])),
        ),
    ]);
    assert_eq!(t1.transceive(&mut script, &apdu).unwrap(), hex("9000"));
    script.done();
}

#[test]
fn invalid_ifs_request_from_the_card() {
    let mut t1 = T1Terminal::new(32, Checksum::Lrc);
    let mut script = Script::new(vec![
        (i(false, false, &[1]), Ok(s(SKind::Ifs, false, &[0xFF]))),
        (r(false, RError::Other), Ok(i(false, false, &[0x90, 0x00]))),
    ]);
    assert_eq!(t1.transceive(&mut script, &[1]).unwrap(), hex("9000"));
    assert_eq!(t1.ifsc, 32);
    script.done();
}

#[test]
fn abort_from_the_card() {
    let mut t1 = T1Terminal::new(4, Checksum::Lrc);
    let apdu = [1, 2, 3, 4, 5, 6];
    let mut script = Script::new(vec![
        (i(false, true, &apdu[..4]), Ok(s(SKind::Abort, false, &[]))),
        (s(SKind::Abort, true, &[]), Ok(r(true, RError::None))),
    ]);
    let err = t1.transceive(&mut script, &apdu).unwrap_err();
    assert!(matches!(err, T1Error::Aborted), "{err:?}");
    script.done();
    // The next command starts with a resynchronisation.
    assert!(t1.needs_resync());
    let mut script = Script::new(vec![
        (
            s(SKind::Resync, false, &[]),
            Ok(s(SKind::Resync, true, &[])),
        ),
        (i(false, false, &[1]), Ok(i(false, false, &[0x90, 0x00]))),
    ]);
    assert_eq!(t1.transceive(&mut script, &[1]).unwrap(), hex("9000"));
    script.done();
}

#[test]
fn abort_then_removal_is_transport() {
    let mut t1 = T1Terminal::new(4, Checksum::Lrc);
    let mut script = Script::new(vec![
        (i(false, false, &[1]), Ok(s(SKind::Abort, false, &[]))),
        (s(SKind::Abort, true, &[]), Err(TErr::Removed)),
    ]);
    assert!(is_transport_removed(&t1.transceive(&mut script, &[1])));
    script.done();
}

#[test]
fn unexpected_s_response_from_card_is_invalid() {
    let mut t1 = T1Terminal::new(32, Checksum::Lrc);
    let mut script = Script::new(vec![
        (i(false, false, &[1]), Ok(s(SKind::Resync, true, &[]))),
        (r(false, RError::Other), Ok(s(SKind::Resync, false, &[]))),
        (r(false, RError::Other), Ok(i(false, false, &[0x90, 0x00]))),
    ]);
    assert_eq!(t1.transceive(&mut script, &[1]).unwrap(), hex("9000"));
    script.done();
}

// ---------------------------------------------------------------------------------------
// Terminal: transmission errors and recovery

#[test]
fn edc_error_gets_r_block_and_resend() {
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    let answer = i(false, false, &hex(SELECT_RESPONSE));
    let mut script = Script::new(vec![
        (i(false, false, &hex(SELECT)), Ok(corrupt(answer.clone()))),
        (r(false, RError::Edc), Ok(answer)),
    ]);
    assert_eq!(
        t1.transceive(&mut script, &hex(SELECT)).unwrap(),
        hex(SELECT_RESPONSE)
    );
    script.done();
}

#[test]
fn card_asks_for_retransmission_of_i_block() {
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    let block = i(false, false, &hex(SELECT));
    let mut script = Script::new(vec![
        (block.clone(), Ok(r(false, RError::Edc))),
        (block.clone(), Ok(r(false, RError::Other))),
        (block, Ok(i(false, false, &hex("9000")))),
    ]);
    assert_eq!(
        t1.transceive(&mut script, &hex(SELECT)).unwrap(),
        hex("9000")
    );
    script.done();
}

#[test]
fn card_asks_for_retransmission_during_chaining() {
    let mut t1 = T1Terminal::new(4, Checksum::Lrc);
    let apdu = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    let mut script = Script::new(vec![
        (i(false, true, &apdu[..4]), Ok(r(true, RError::None))),
        (i(true, true, &apdu[4..8]), Ok(r(true, RError::Edc))),
        (i(true, true, &apdu[4..8]), Ok(r(false, RError::None))),
        (
            i(false, false, &apdu[8..]),
            Ok(i(false, false, &[0x90, 0x00])),
        ),
    ]);
    assert_eq!(t1.transceive(&mut script, &apdu).unwrap(), hex("9000"));
    script.done();
}

#[test]
fn garbled_ack_during_command_chaining() {
    let mut t1 = T1Terminal::new(4, Checksum::Lrc);
    let apdu = [1, 2, 3, 4, 5];
    let mut script = Script::new(vec![
        (
            i(false, true, &apdu[..4]),
            Ok(corrupt(r(true, RError::None))),
        ),
        // N(R) of the R-block is the card's expected N(S): 0.
        (r(false, RError::Edc), Ok(r(true, RError::None))),
        (
            i(true, false, &apdu[4..]),
            Ok(i(false, false, &[0x90, 0x00])),
        ),
    ]);
    assert_eq!(t1.transceive(&mut script, &apdu).unwrap(), hex("9000"));
    script.done();
}

#[test]
fn garbled_block_during_response_chaining() {
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    let mut script = Script::new(vec![
        (i(false, false, &[0xAA]), Ok(i(false, true, &[1, 2]))),
        (r(true, RError::None), Ok(corrupt(i(true, true, &[3, 4])))),
        (r(true, RError::Edc), Ok(i(true, true, &[3, 4]))),
        (r(false, RError::None), Err(TErr::Timeout)),
        (r(false, RError::Other), Ok(i(false, false, &[0x90, 0x00]))),
    ]);
    assert_eq!(
        t1.transceive(&mut script, &[0xAA]).unwrap(),
        vec![1, 2, 3, 4, 0x90, 0x00]
    );
    script.done();
}

#[test]
fn card_r_block_while_receiving_resends_our_r_block() {
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    let mut script = Script::new(vec![
        (i(false, false, &[0xAA]), Ok(i(false, true, &[1]))),
        (r(true, RError::None), Ok(r(true, RError::Edc))),
        (r(true, RError::None), Ok(i(true, false, &[0x90, 0x00]))),
    ]);
    assert_eq!(
        t1.transceive(&mut script, &[0xAA]).unwrap(),
        vec![1, 0x90, 0x00]
    );
    script.done();
}

#[test]
fn lost_block_recovery_after_timeout() {
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    let mut script = Script::new(vec![
        (i(false, false, &[0xAA]), Err(TErr::Timeout)),
        (r(false, RError::Other), Ok(i(false, false, &[0x90, 0x00]))),
    ]);
    assert_eq!(t1.transceive(&mut script, &[0xAA]).unwrap(), hex("9000"));
    script.done();
}

#[test]
fn lost_i_block_card_asks_again() {
    // Our I-block never reached the card; our R-block makes it ask for it.
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    let block = i(false, false, &[0xAA]);
    let mut script = Script::new(vec![
        (block.clone(), Err(TErr::Timeout)),
        (r(false, RError::Other), Ok(r(false, RError::Other))),
        (block, Ok(i(false, false, &[0x90, 0x00]))),
    ]);
    assert_eq!(t1.transceive(&mut script, &[0xAA]).unwrap(), hex("9000"));
    script.done();
}

#[test]
fn wrong_sequence_number_is_invalid() {
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    let mut script = Script::new(vec![
        (i(false, false, &[0xAA]), Ok(i(true, false, &[0x90, 0x00]))),
        (r(false, RError::Other), Ok(i(false, false, &[0x90, 0x00]))),
    ]);
    assert_eq!(t1.transceive(&mut script, &[0xAA]).unwrap(), hex("9000"));
    script.done();
}

#[test]
fn i_block_instead_of_ack_during_chaining_is_invalid() {
    let mut t1 = T1Terminal::new(4, Checksum::Lrc);
    let apdu = [1, 2, 3, 4, 5];
    let mut script = Script::new(vec![
        (
            i(false, true, &apdu[..4]),
            Ok(i(false, false, &[0x90, 0x00])),
        ),
        (r(false, RError::Other), Ok(r(true, RError::None))),
        (
            i(true, false, &apdu[4..]),
            Ok(i(false, false, &[0x90, 0x00])),
        ),
    ]);
    assert_eq!(t1.transceive(&mut script, &apdu).unwrap(), hex("9000"));
    script.done();
}

#[test]
fn repeated_errors_resync_then_error() {
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    // Two good exchanges first, so the sequence numbers are not 0.
    let mut script = Script::new(vec![
        (i(false, false, &[1]), Ok(i(false, false, &[0x90, 0x00]))),
        (
            i(true, false, &[2]),
            Ok(corrupt(i(true, false, &[0x90, 0x00]))),
        ),
        (
            r(true, RError::Edc),
            Ok(corrupt(i(true, false, &[0x90, 0x00]))),
        ),
        (r(true, RError::Edc), Ok(vec![0x00])),
        (r(true, RError::Other), Err(TErr::Timeout)),
        // Fourth failure: resynchronise.
        (
            s(SKind::Resync, false, &[]),
            Ok(s(SKind::Resync, true, &[])),
        ),
    ]);
    assert_eq!(t1.transceive(&mut script, &[1]).unwrap(), hex("9000"));
    let err = t1.transceive(&mut script, &[2]).unwrap_err();
    assert!(matches!(err, T1Error::Resynchronised), "{err:?}");
    assert!(!t1.ns && !t1.nr);
    assert!(!t1.needs_resync());
    script.done();
    // The link works again from N(S) = 0.
    let mut script = Script::new(vec![(
        i(false, false, &[3]),
        Ok(i(false, false, &[0x90, 0x00])),
    )]);
    assert_eq!(t1.transceive(&mut script, &[3]).unwrap(), hex("9000"));
    script.done();
}

#[test]
fn resync_restores_ifsc_and_renegotiates_ifsd() {
    let mut t1 = T1Terminal::new(32, Checksum::Lrc);
    let mut script = Script::new(vec![
        (
            s(SKind::Ifs, false, &[254]),
            Ok(s(SKind::Ifs, true, &[254])),
        ),
        (i(false, false, &[1]), Ok(s(SKind::Ifs, false, &[16]))),
        (s(SKind::Ifs, true, &[16]), Ok(vec![])),
        (r(false, RError::Other), Ok(vec![])),
        (r(false, RError::Other), Ok(vec![])),
        (r(false, RError::Other), Ok(vec![])),
        (
            s(SKind::Resync, false, &[]),
            Ok(s(SKind::Resync, true, &[])),
        ),
        (
            s(SKind::Ifs, false, &[254]),
            Ok(s(SKind::Ifs, true, &[254])),
        ),
    ]);
    t1.negotiate_ifsd(&mut script, 254).unwrap();
    let err = t1.transceive(&mut script, &[1]).unwrap_err();
    assert!(matches!(err, T1Error::Resynchronised), "{err:?}");
    assert_eq!(t1.ifsc, 32);
    assert_eq!(t1.ifsd, 254);
    script.done();
}

#[test]
fn resync_fails_after_three_attempts() {
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    let mut steps = vec![(i(false, false, &[1]), Ok(vec![0xFF; 2]))];
    for _ in 0..3 {
        steps.push((r(false, RError::Other), Ok(vec![0xFF; 2])));
    }
    steps.push((s(SKind::Resync, false, &[]), Ok(r(false, RError::None))));
    steps.push((
        s(SKind::Resync, false, &[]),
        Ok(corrupt(s(SKind::Resync, true, &[]))),
    ));
    steps.push((s(SKind::Resync, false, &[]), Ok(s(SKind::Ifs, true, &[1]))));
    let mut script = Script::new(steps);
    let err = t1.transceive(&mut script, &[1]).unwrap_err();
    assert!(
        matches!(err, T1Error::ResyncFailed { attempts: 3 }),
        "{err:?}"
    );
    assert!(t1.needs_resync());
    script.done();
}

#[test]
fn mute_card_ends_in_the_transport_error() {
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    let mut steps = vec![(i(false, false, &[1]), Err(TErr::Timeout))];
    for _ in 0..3 {
        steps.push((r(false, RError::Other), Err(TErr::Timeout)));
    }
    for _ in 0..3 {
        steps.push((s(SKind::Resync, false, &[]), Err(TErr::Timeout)));
    }
    let mut script = Script::new(steps);
    let err = t1.transceive(&mut script, &[1]).unwrap_err();
    assert!(matches!(err, T1Error::Transport(TErr::Timeout)), "{err:?}");
    script.done();
}

#[test]
fn removal_during_resync_is_returned() {
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    let mut steps = vec![(i(false, false, &[1]), Ok(vec![0xFF; 4]))];
    for _ in 0..3 {
        steps.push((r(false, RError::Other), Ok(vec![0xFF; 4])));
    }
    steps.push((s(SKind::Resync, false, &[]), Err(TErr::Removed)));
    let mut script = Script::new(steps);
    assert!(is_transport_removed(&t1.transceive(&mut script, &[1])));
    script.done();
}

#[test]
fn failed_exchange_makes_next_one_resync_first() {
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    let mut script = Script::new(vec![(i(false, false, &[1]), Err(TErr::Removed))]);
    assert!(is_transport_removed(&t1.transceive(&mut script, &[1])));
    assert!(t1.needs_resync());
    script.done();
    let mut script = Script::new(vec![
        (
            s(SKind::Resync, false, &[]),
            Ok(s(SKind::Resync, true, &[])),
        ),
        (i(false, false, &[1]), Ok(i(false, false, &[0x90, 0x00]))),
    ]);
    assert_eq!(t1.transceive(&mut script, &[1]).unwrap(), hex("9000"));
    script.done();
}

#[test]
fn removal_is_returned_without_retry_at_every_scripted_step() {
    // The full good sequence of a chained command with a chained response and WTX.
    let apdu: Vec<u8> = (0..10u8).collect();
    let steps: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (i(false, true, &apdu[..4]), r(true, RError::None)),
        (i(true, true, &apdu[4..8]), s(SKind::Wtx, false, &[4])),
        (s(SKind::Wtx, true, &[4]), r(false, RError::None)),
        (i(false, false, &apdu[8..]), i(false, true, &[1, 2, 3])),
        (r(true, RError::None), i(true, true, &[4, 5, 6])),
        (r(false, RError::None), i(false, false, &[0x90, 0x00])),
    ];
    for fail_at in 0..steps.len() {
        let mut t1 = T1Terminal::new(4, Checksum::Lrc);
        let mut script: Vec<Step> = steps[..fail_at]
            .iter()
            .map(|(sent, reply)| (sent.clone(), Ok(reply.clone())))
            .collect();
        script.push((steps[fail_at].0.clone(), Err(TErr::Removed)));
        let mut script = Script::new(script);
        let result = t1.transceive(&mut script, &apdu);
        assert!(is_transport_removed(&result), "step {fail_at}: {result:?}");
        script.done();
    }
}

// ---------------------------------------------------------------------------------------
// Terminal: hostile cards are bounded

#[test]
fn wtx_storm_is_bounded() {
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    let mut transport = FnTransport(|_: &[u8], _| Ok(s(SKind::Wtx, false, &[255])), 0);
    let err = t1.transceive(&mut transport, &[1]).unwrap_err();
    assert!(matches!(err, T1Error::TooManyWtx { limit: 64 }), "{err:?}");
    assert_eq!(transport.1, 65);
}

#[test]
fn endless_response_chain_is_bounded() {
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    let mut ns = false;
    let mut transport = FnTransport(
        move |_: &[u8], _| {
            let block = i(ns, true, &[0x42; 8]);
            ns = !ns;
            Ok(block)
        },
        0,
    );
    let err = t1.transceive(&mut transport, &[1]).unwrap_err();
    assert!(
        matches!(err, T1Error::TooManyBlocks { limit: 1001 }),
        "{err:?}"
    );
    assert_eq!(transport.1, 1001);
}

#[test]
fn huge_response_is_refused() {
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    t1.ifsd = 254;
    t1.max_response_len = 1000;
    let mut ns = false;
    let mut transport = FnTransport(
        move |_: &[u8], _| {
            let block = i(ns, true, &[0x42; 254]);
            ns = !ns;
            Ok(block)
        },
        0,
    );
    let err = t1.transceive(&mut transport, &[1]).unwrap_err();
    assert!(
        matches!(err, T1Error::ResponseTooLong { limit: 1000 }),
        "{err:?}"
    );
}

#[test]
fn card_always_asking_for_retransmission_is_bounded() {
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    let mut transport = FnTransport(|_: &[u8], _| Ok(r(false, RError::Edc)), 0);
    let err = t1.transceive(&mut transport, &[1]).unwrap_err();
    assert!(matches!(err, T1Error::ResyncFailed { .. }), "{err:?}");
    // 1 + 3 retransmissions + 3 resync attempts.
    assert_eq!(transport.1, 7);
}

#[test]
fn garbage_forever_is_bounded() {
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    let mut n = 0u8;
    let mut transport = FnTransport(
        move |_: &[u8], _| {
            n = n.wrapping_add(37);
            Ok(vec![n, n ^ 0x55, n.wrapping_mul(3)])
        },
        0,
    );
    let err = t1.transceive(&mut transport, &[1]).unwrap_err();
    assert!(matches!(err, T1Error::ResyncFailed { .. }), "{err:?}");
    assert!(transport.1 <= 10);
}

#[test]
fn wtx_between_errors_stays_bounded() {
    // WTX, garbage, WTX, garbage ...: the WTX count resets only on progress.
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    let mut flip = false;
    let mut transport = FnTransport(
        move |_: &[u8], _| {
            flip = !flip;
            Ok(if flip {
                s(SKind::Wtx, false, &[1])
            } else {
                vec![0; 5]
            })
        },
        0,
    );
    let err = t1.transceive(&mut transport, &[1]).unwrap_err();
    assert!(
        matches!(
            err,
            T1Error::ResyncFailed { .. } | T1Error::TooManyWtx { .. }
        ),
        "{err:?}"
    );
    assert!(transport.1 < 100);
}

#[test]
fn endless_acks_to_a_short_command_are_bounded() {
    // The card acknowledges an unchained block with R-blocks forever.
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    let mut transport = FnTransport(|_: &[u8], _| Ok(r(true, RError::None)), 0);
    let err = t1.transceive(&mut transport, &[1]).unwrap_err();
    assert!(matches!(err, T1Error::ResyncFailed { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// The virtual card

fn echo_handler(apdu: &[u8]) -> Option<Vec<u8>> {
    let mut response = apdu.to_vec();
    response.extend_from_slice(&[0x90, 0x00]);
    Some(response)
}

#[test]
fn card_answers_ifs_and_chains_its_response_in_ifsd_blocks() {
    let mut card = T1Card::new(32, Checksum::Lrc);
    let mut handler = |_: &[u8]| Some(vec![0x77; 70]);
    assert_eq!(
        card.handle(&s(SKind::Ifs, false, &[20]), &mut handler),
        CardAction::Reply(s(SKind::Ifs, true, &[20]))
    );
    assert_eq!(card.ifsd, 20);
    assert_eq!(
        card.handle(&i(false, false, &[1, 2]), &mut handler),
        CardAction::Reply(i(false, true, &[0x77; 20]))
    );
    assert_eq!(
        card.handle(&r(true, RError::None), &mut handler),
        CardAction::Reply(i(true, true, &[0x77; 20]))
    );
    // A retransmission request gets the same block again.
    assert_eq!(
        card.handle(&r(true, RError::Edc), &mut handler),
        CardAction::Reply(i(true, true, &[0x77; 20]))
    );
    assert_eq!(
        card.handle(&r(false, RError::None), &mut handler),
        CardAction::Reply(i(false, true, &[0x77; 20]))
    );
    assert_eq!(
        card.handle(&r(true, RError::None), &mut handler),
        CardAction::Reply(i(true, false, &[0x77; 10]))
    );
}

#[test]
fn card_acknowledges_chained_commands() {
    let mut card = T1Card::new(4, Checksum::Lrc);
    let mut seen = Vec::new();
    let mut handler = |apdu: &[u8]| {
        seen.push(apdu.to_vec());
        Some(vec![0x90, 0x00])
    };
    assert_eq!(
        card.handle(&i(false, true, &[1, 2, 3, 4]), &mut handler),
        CardAction::Reply(r(true, RError::None))
    );
    // A block longer than the card's IFSC is refused.
    assert_eq!(
        card.handle(&i(true, true, &[5, 6, 7, 8, 9]), &mut handler),
        CardAction::Reply(r(true, RError::Other))
    );
    assert_eq!(
        card.handle(&i(true, false, &[5]), &mut handler),
        CardAction::Reply(i(false, false, &[0x90, 0x00]))
    );
    assert_eq!(seen, vec![vec![1, 2, 3, 4, 5]]);
}

#[test]
fn card_reports_edc_errors_and_resyncs() {
    let mut card = T1Card::new(32, Checksum::Lrc);
    let mut handler = echo_handler;
    assert_eq!(
        card.handle(&corrupt(i(false, false, &[1])), &mut handler),
        CardAction::Reply(r(false, RError::Edc))
    );
    assert_eq!(
        card.handle(&i(false, false, &[1]), &mut handler),
        CardAction::Reply(i(false, false, &[1, 0x90, 0x00]))
    );
    assert_eq!(
        card.handle(&s(SKind::Resync, false, &[]), &mut handler),
        CardAction::Reply(s(SKind::Resync, true, &[]))
    );
    assert!(!card.ns && !card.nr);
    assert_eq!(
        card.handle(&s(SKind::Abort, false, &[]), &mut handler),
        CardAction::Reply(s(SKind::Abort, true, &[]))
    );
}

#[test]
fn card_wtx_storm_then_response() {
    let mut card = T1Card::new(32, Checksum::Lrc);
    card.wtx_before_response = 2;
    card.wtx_multiplier = 3;
    let mut handler = echo_handler;
    assert_eq!(
        card.handle(&i(false, false, &[1]), &mut handler),
        CardAction::Reply(s(SKind::Wtx, false, &[3]))
    );
    // A wrong WTX response is refused.
    assert_eq!(
        card.handle(&s(SKind::Wtx, true, &[4]), &mut handler),
        CardAction::Reply(r(true, RError::Other))
    );
    assert_eq!(
        card.handle(&s(SKind::Wtx, true, &[3]), &mut handler),
        CardAction::Reply(s(SKind::Wtx, false, &[3]))
    );
    assert_eq!(
        card.handle(&s(SKind::Wtx, true, &[3]), &mut handler),
        CardAction::Reply(i(false, false, &[1, 0x90, 0x00]))
    );
}

#[test]
fn card_goes_mute_and_stays_mute_until_reset() {
    let mut card = T1Card::new(32, Checksum::Lrc);
    let mut handler = |_: &[u8]| None;
    assert_eq!(
        card.handle(&i(false, false, &[1]), &mut handler),
        CardAction::Mute
    );
    assert!(card.is_mute());
    assert_eq!(
        card.handle(&r(false, RError::Other), &mut handler),
        CardAction::Mute
    );
    card.reset();
    assert!(!card.is_mute());
}

#[test]
fn terminal_against_card_with_wtx_storm_and_corruption() {
    let mut card = T1Card::new(32, Checksum::Lrc);
    card.wtx_before_response = 10;
    card.wtx_multiplier = 7;
    card.corrupt_next = true;
    let mut transport = CardTransport::new(card, echo_handler);
    let mut t1 = T1Terminal::new(32, Checksum::Lrc);
    t1.negotiate_ifsd(&mut transport, 254).unwrap();
    let apdu: Vec<u8> = (0..=255u8).collect();
    let mut expected = apdu.clone();
    expected.extend_from_slice(&[0x90, 0x00]);
    assert_eq!(t1.transceive(&mut transport, &apdu).unwrap(), expected);
    assert_eq!(transport.wtx.iter().filter(|&&w| w == 7).count(), 10);
}

#[test]
fn terminal_against_card_ifs_request_and_abort() {
    let mut card = T1Card::new(64, Checksum::Lrc);
    card.ifs_request_before_response = Some(16);
    let mut transport = CardTransport::new(card, echo_handler);
    let mut t1 = T1Terminal::new(64, Checksum::Lrc);
    let apdu = vec![0x33; 100];
    let mut expected = apdu.clone();
    expected.extend_from_slice(&[0x90, 0x00]);
    assert_eq!(t1.transceive(&mut transport, &apdu).unwrap(), expected);
    assert_eq!(t1.ifsc, 16);
    assert_eq!(transport.card.ifsc, 16);

    transport.card.abort_next_chain = true;
    let err = t1.transceive(&mut transport, &apdu).unwrap_err();
    assert!(matches!(err, T1Error::Aborted), "{err:?}");
    // Resynchronised on the next command (IFSC back to the ATR's 64 on both sides), then
    // fine.
    assert_eq!(t1.transceive(&mut transport, &apdu).unwrap(), expected);
    assert_eq!(t1.ifsc, 64);
    assert_eq!(transport.card.ifsc, 64);
}

#[test]
fn terminal_against_mute_card() {
    let card = T1Card::new(32, Checksum::Lrc);
    let mut transport = CardTransport::new(card, |_: &[u8]| None);
    let mut t1 = T1Terminal::new(32, Checksum::Lrc);
    let err = t1.transceive(&mut transport, &[1, 2, 3]).unwrap_err();
    assert!(matches!(err, T1Error::Transport(TErr::Timeout)), "{err:?}");
}

#[test]
fn removal_at_every_step_of_a_multi_block_exchange_against_the_card() {
    let apdu: Vec<u8> = (0..100u8).collect();
    let response: Vec<u8> = (0..120u8).chain([0x90, 0x00]).collect();
    // Count the steps of the undisturbed exchange first.
    let make_card = || {
        let mut card = T1Card::new(32, Checksum::Lrc);
        card.wtx_before_response = 2;
        card.wtx_multiplier = 2;
        card
    };
    let handler = {
        let response = response.clone();
        move |_: &[u8]| Some(response.clone())
    };
    let mut transport = CardTransport::new(make_card(), handler.clone());
    let mut t1 = T1Terminal::new(32, Checksum::Lrc);
    assert_eq!(t1.transceive(&mut transport, &apdu).unwrap(), response);
    let steps = transport.calls;
    assert_eq!(steps, 9, "4 I-blocks, 2 WTX responses, 3 R-blocks");
    for fail_at in 1..=steps {
        let mut transport = CardTransport::new(make_card(), handler.clone());
        transport.fail_at = Some(fail_at);
        let mut t1 = T1Terminal::new(32, Checksum::Lrc);
        let result = t1.transceive(&mut transport, &apdu);
        assert!(is_transport_removed(&result), "step {fail_at}: {result:?}");
        assert_eq!(transport.calls, fail_at, "no exchange after the removal");
    }
}

#[test]
fn timeout_at_every_step_recovers_or_fails_cleanly() {
    let apdu: Vec<u8> = (0..100u8).collect();
    let response: Vec<u8> = (0..120u8).chain([0x90, 0x00]).collect();
    for fail_at in 1..=12 {
        let r2 = response.clone();
        let mut transport =
            CardTransport::new(T1Card::new(32, Checksum::Lrc), move |_: &[u8]| {
                Some(r2.clone())
            });
        transport.fail_at = Some(fail_at);
        transport.fail_with = TErr::Timeout;
        let mut t1 = T1Terminal::new(32, Checksum::Lrc);
        match t1.transceive(&mut transport, &apdu) {
            Ok(got) => assert_eq!(got, response, "step {fail_at}"),
            Err(T1Error::Resynchronised) => {}
            Err(e) => panic!("step {fail_at}: {e:?}"),
        }
    }
}

#[test]
fn error_display() {
    let err: T1Error<TErr> = T1Error::Transport(TErr::Removed);
    assert_eq!(err.to_string(), "transport error: Removed");
    let err: T1Error<TErr> = T1Error::TooManyWtx { limit: 64 };
    assert!(err.to_string().contains("64"));
}

#[test]
fn explicit_resynchronisation_and_from_atr() {
    let atr = pos_ccid::atr::ParsedAtr::parse(&hex(
        "3B E9 00 00 81 31 FE 45 4A 43 4F 50 34 31 56 32 32 A7",
    ))
    .unwrap();
    let mut t1 = T1Terminal::from_atr(&atr);
    assert_eq!(t1.ifsc, 254);
    assert_eq!(t1.checksum, Checksum::Lrc);
    let card = T1Card::from_atr(&atr);
    assert_eq!(card.ifsc, 254);
    let mut script = Script::new(vec![
        (i(false, false, &[1]), Ok(i(false, false, &[0x90, 0x00]))),
        (
            s(SKind::Resync, false, &[]),
            Ok(s(SKind::Resync, true, &[])),
        ),
        (i(false, false, &[2]), Ok(i(false, false, &[0x90, 0x00]))),
    ]);
    t1.transceive(&mut script, &[1]).unwrap();
    t1.resynchronise(&mut script).unwrap();
    assert!(!t1.ns && !t1.nr);
    t1.transceive(&mut script, &[2]).unwrap();
    script.done();
}

#[test]
fn mastercard_session_over_t1() {
    let session = [
        ("00A4040007A000000004101000", SELECT_RESPONSE),
        (
            "80A8000002830000",
            "7716820259009410100202011801010020010100280102009000",
        ),
        (
            "00B2021400",
            "70818F5A0854133300896000445F24031412315F25030401015F280200565F3401018C219F02069F03069F090295055F2A029A039C019F37049F35019F45029F4C089F34038D0C910A8A0295059F37049F4C088E0C00000000000000005E031F039F0702FF009F080200029F0D0500000000009F0E0500000000009F0F0500000000009F420209789F4A0182DF4F031234569000",
        ),
        ("00B2011400", "6A83"),
    ];
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = session.iter().map(|(c, r)| (hex(c), hex(r))).collect();
    let handler = |apdu: &[u8]| {
        pairs
            .iter()
            .find(|(command, _)| command.as_slice() == apdu)
            .map(|(_, response)| response.clone())
    };
    // EMV: IFSD 254 first; the card's IFSC is small so that commands chain.
    let mut transport = CardTransport::new(T1Card::new(16, Checksum::Lrc), handler);
    let mut t1 = T1Terminal::new(16, Checksum::Lrc);
    t1.negotiate_ifsd(&mut transport, 254).unwrap();
    for (command, response) in &pairs {
        assert_eq!(&t1.transceive(&mut transport, command).unwrap(), response);
    }
}

#[test]
fn endless_ifs_requests_are_bounded() {
    let mut t1 = T1Terminal::new(254, Checksum::Lrc);
    let mut transport = FnTransport(|_: &[u8], _| Ok(s(SKind::Ifs, false, &[0x20])), 0);
    let err = t1.transceive(&mut transport, &[1]).unwrap_err();
    assert!(
        matches!(err, T1Error::TooManyBlocks { limit: 1001 }),
        "{err:?}"
    );
    assert_eq!(transport.1, 1001);
}
