//! The virtual card.

use super::*;

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
