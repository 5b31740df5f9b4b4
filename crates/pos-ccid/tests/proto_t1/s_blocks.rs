//! Terminal: S-blocks from the card.

use super::*;

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
