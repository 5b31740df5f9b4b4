//! Terminal: error-free operation.

use super::*;

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
