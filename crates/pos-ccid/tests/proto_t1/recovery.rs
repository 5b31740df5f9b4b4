//! Terminal: transmission errors and recovery.

use super::*;

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
