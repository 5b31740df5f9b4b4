//! Block codec.

use super::*;

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
