//! Terminal: hostile cards are bounded.

use super::*;

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
