//! T=0: TPDU mapping, procedure bytes, the host exchange against the virtual card's byte
//! streams, NULL storms.

use pos_ccid::t0::{
    ApduError, Procedure, ProcedureByte, T0Card, T0Error, T0Exchange, T0Response, T0Step, Tpdu,
    TpduCase, card_respond, classify_procedure, tpdu_from_apdu,
};
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).expect("test hex")
}

// A Mastercard contact test card session (crates/pos-emv/tests/data, itself from the
// MIT-licensed binaryfoo/emv-bertlv test cases).
const MASTERCARD: &str = "\
> 00A4040007A000000004101000
< 6F1C8407A0000000041010A511500F505043204D434420303420207632309000
> 80A8000002830000
< 7716820259009410100202011801010020010100280102009000
> 00B2021400
< 70818F5A0854133300896000445F24031412315F25030401015F280200565F3401018C219F02069F03069F090295055F2A029A039C019F37049F35019F45029F4C089F34038D0C910A8A0295059F37049F4C088E0C00000000000000005E031F039F0702FF009F080200029F0D0500000000009F0E0500000000009F0F0500000000009F420209789F4A0182DF4F031234569000
> 00B2012400
< 703E8F01EF9F47030100019F32030100019F482A8F9498797B9DE111BF5EB97EF1820BA654E4867F09D6BB41BCB1E4FB3E9D287ABD67031918134731270792009000
> 00B2011400
< 6A83
> 80AE80002B000000001000000000000000000280000080000036120316008221F60122000000000000000000005E030000
< 77299F2701809F360200419F26084573436B1E4B95DD9F10120110A00009248400000000000000000029FF9000
> 80AE40001D11223344556677880000303080000080008221F601000000000000000000
< 77299F2701009F360200419F2608C74D18B08248FEFC9F10120110201009248400000000000000000029FF9000
";

fn transcript(text: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    lines
        .chunks(2)
        .map(|pair| {
            let command = pair[0].strip_prefix("> ").expect("command line");
            let response = pair[1].strip_prefix("< ").expect("response line");
            (hex(command), hex(response))
        })
        .collect()
}

/// A card application replaying a transcript, matching on CLA INS P1 P2.
fn replay(pairs: &[(Vec<u8>, Vec<u8>)]) -> impl FnMut(&[u8]) -> Option<Vec<u8>> + '_ {
    move |apdu: &[u8]| {
        pairs
            .iter()
            .find(|(command, _)| command[..4] == apdu[..4])
            .map(|(_, response)| response.clone())
            .or(Some(vec![0x6D, 0x00]))
    }
}

/// What a TPDU-level exchange gives: runs the card's stream through the host exchange.
fn run(
    card: &mut T0Card,
    handler: &mut dyn FnMut(&[u8]) -> Option<Vec<u8>>,
    tpdu: &Tpdu,
) -> T0Response {
    let stream = card.respond(tpdu, handler);
    let (sent, response) = T0Exchange::run(tpdu, &stream).expect("complete exchange");
    assert_eq!(
        sent,
        tpdu.to_bytes(),
        "the host sends the header and all data"
    );
    response
}

/// The EMV layer over T=0: GET RESPONSE on 61xx, the command again with P3 = xx on 6Cxx.
fn transmit(
    card: &mut T0Card,
    handler: &mut dyn FnMut(&[u8]) -> Option<Vec<u8>>,
    apdu: &[u8],
) -> Vec<u8> {
    let mut tpdu = tpdu_from_apdu(apdu).expect("short APDU");
    let mut data = Vec::new();
    for _ in 0..10 {
        let response = run(card, handler, &tpdu);
        data.extend_from_slice(&response.data);
        match response.sw1 {
            0x61 => {
                tpdu =
                    tpdu_from_apdu(&[0x00, 0xC0, 0x00, 0x00, response.sw2]).expect("GET RESPONSE")
            }
            0x6C => {
                let mut again = apdu[..4].to_vec();
                again.push(response.sw2);
                tpdu = tpdu_from_apdu(&again).expect("case 2 APDU");
            }
            _ => {
                data.extend_from_slice(&[response.sw1, response.sw2]);
                return data;
            }
        }
    }
    panic!("no final status");
}

// ---------------------------------------------------------------------------------------
// TPDU mapping

#[test]
fn case_1() {
    let tpdu = tpdu_from_apdu(&hex("00 70 00 01")).unwrap();
    assert_eq!(tpdu.header, [0x00, 0x70, 0x00, 0x01, 0x00]);
    assert!(tpdu.data.is_empty());
    assert_eq!(tpdu.case, TpduCase::Case1);
    assert_eq!(tpdu.to_bytes(), hex("00 70 00 01 00"));
    assert_eq!(tpdu.expected_response_len(), 0);
}

#[test]
fn case_2() {
    let tpdu = tpdu_from_apdu(&hex("00 84 00 00 08")).unwrap();
    assert_eq!(tpdu.header, [0x00, 0x84, 0x00, 0x00, 0x08]);
    assert_eq!(tpdu.case, TpduCase::Case2 { le: 8 });
    assert_eq!(tpdu.expected_response_len(), 8);
    let tpdu = tpdu_from_apdu(&hex("00 B2 01 0C 00")).unwrap();
    assert_eq!(tpdu.header[4], 0x00);
    assert_eq!(tpdu.case, TpduCase::Case2 { le: 256 });
    assert_eq!(tpdu.expected_response_len(), 256);
}

#[test]
fn case_3() {
    let tpdu = tpdu_from_apdu(&hex("00 82 00 00 08 11 22 33 44 55 66 77 88")).unwrap();
    assert_eq!(tpdu.header, [0x00, 0x82, 0x00, 0x00, 0x08]);
    assert_eq!(tpdu.data, hex("11 22 33 44 55 66 77 88"));
    assert_eq!(tpdu.case, TpduCase::Case3);
    assert_eq!(tpdu.p3(), 8);
    assert_eq!(tpdu.ins(), 0x82);
}

#[test]
fn case_4_goes_as_case_3() {
    let tpdu = tpdu_from_apdu(&hex("00A4040007A000000004101000")).unwrap();
    assert_eq!(tpdu.header, [0x00, 0xA4, 0x04, 0x00, 0x07]);
    assert_eq!(tpdu.data, hex("A0000000041010"));
    assert_eq!(tpdu.case, TpduCase::Case4 { le: 256 });
    assert_eq!(tpdu.to_bytes(), hex("00A4040007A0000000041010"));
    let tpdu = tpdu_from_apdu(&hex("80 A8 00 00 02 83 00 1C")).unwrap();
    assert_eq!(tpdu.case, TpduCase::Case4 { le: 0x1C });
    assert_eq!(tpdu.data, hex("83 00"));
}

#[test]
fn mapping_errors() {
    assert_eq!(tpdu_from_apdu(&[]), Err(ApduError::TooShort(0)));
    assert_eq!(
        tpdu_from_apdu(&hex("00 A4 04")),
        Err(ApduError::TooShort(3))
    );
    // Extended lengths: case 2E, 3E.
    assert_eq!(
        tpdu_from_apdu(&hex("00 B0 00 00 00 01 00")),
        Err(ApduError::Extended)
    );
    assert_eq!(
        tpdu_from_apdu(&hex("00 D6 00 00 00 00 01 AA")),
        Err(ApduError::Extended)
    );
    assert_eq!(
        tpdu_from_apdu(&hex("00 82 00 00 08 11 22")),
        Err(ApduError::LengthMismatch { lc: 8, len: 7 })
    );
    assert_eq!(
        tpdu_from_apdu(&hex("00 82 00 00 02 11 22 33 44")),
        Err(ApduError::LengthMismatch { lc: 2, len: 9 })
    );
    assert_eq!(
        tpdu_from_apdu(&hex("00 61 00 00")),
        Err(ApduError::InvalidIns(0x61))
    );
    assert_eq!(
        tpdu_from_apdu(&hex("00 9F 00 00")),
        Err(ApduError::InvalidIns(0x9F))
    );
    assert_eq!(
        tpdu_from_apdu(&hex("FF A4 00 00")),
        Err(ApduError::InvalidCla)
    );
}

#[test]
fn tpdu_from_reader_bytes() {
    let tpdu = Tpdu::from_bytes(&hex("00 B2 01 0C 00")).unwrap();
    assert_eq!(tpdu.case, TpduCase::Case2 { le: 256 });
    let tpdu = Tpdu::from_bytes(&hex("00 82 00 00 02 AA BB")).unwrap();
    assert_eq!(tpdu.case, TpduCase::Case3);
    assert_eq!(tpdu.data, hex("AA BB"));
    assert_eq!(
        Tpdu::from_bytes(&hex("00 82 00 00 02 AA")),
        Err(ApduError::LengthMismatch { lc: 2, len: 6 })
    );
    assert_eq!(Tpdu::from_bytes(&hex("00 82")), Err(ApduError::TooShort(2)));
}

// ---------------------------------------------------------------------------------------
// Procedure bytes

#[test]
fn procedure_byte_classification() {
    let ins = 0xA4;
    assert_eq!(classify_procedure(ins, 0x60), ProcedureByte::Null);
    assert_eq!(classify_procedure(ins, 0xA4), ProcedureByte::Ack);
    assert_eq!(classify_procedure(ins, 0x5B), ProcedureByte::AckOne);
    assert_eq!(classify_procedure(ins, 0x90), ProcedureByte::Sw1(0x90));
    assert_eq!(classify_procedure(ins, 0x61), ProcedureByte::Sw1(0x61));
    assert_eq!(classify_procedure(ins, 0x6C), ProcedureByte::Sw1(0x6C));
    assert_eq!(classify_procedure(ins, 0x9F), ProcedureByte::Sw1(0x9F));
    assert_eq!(classify_procedure(ins, 0x00), ProcedureByte::Invalid(0x00));
    assert_eq!(classify_procedure(ins, 0xA5), ProcedureByte::Invalid(0xA5));
    // Every byte gets exactly one meaning for every valid INS.
    for ins in (0..=255u8).filter(|i| !matches!(i & 0xF0, 0x60 | 0x90)) {
        for byte in 0..=255u8 {
            let class = classify_procedure(ins, byte);
            match byte {
                0x60 => assert_eq!(class, ProcedureByte::Null),
                b if matches!(b & 0xF0, 0x60 | 0x90) => assert_eq!(class, ProcedureByte::Sw1(b)),
                b if b == ins => assert_eq!(class, ProcedureByte::Ack),
                b if b == ins ^ 0xFF => assert_eq!(class, ProcedureByte::AckOne),
                b => assert_eq!(class, ProcedureByte::Invalid(b)),
            }
        }
    }
}

#[test]
fn procedure_encoding() {
    assert_eq!(Procedure::Ack.encode(0xB2), vec![0xB2]);
    assert_eq!(Procedure::AckOne.encode(0xB2), vec![0x4D]);
    assert_eq!(Procedure::Null.encode(0xB2), vec![0x60]);
    assert_eq!(Procedure::Status(0x90, 0x00).encode(0xB2), vec![0x90, 0x00]);
}

// ---------------------------------------------------------------------------------------
// Host exchange

#[test]
fn exchange_case_2_step_by_step() {
    let tpdu = tpdu_from_apdu(&hex("00 84 00 00 04")).unwrap();
    let mut exchange = T0Exchange::new(&tpdu);
    assert_eq!(exchange.header(), [0x00, 0x84, 0x00, 0x00, 0x04]);
    assert_eq!(exchange.feed(0x60), Ok(T0Step::Continue));
    assert_eq!(exchange.feed(0x84), Ok(T0Step::Continue));
    for byte in [1, 2, 3, 4] {
        assert_eq!(exchange.feed(byte), Ok(T0Step::Continue));
    }
    assert_eq!(exchange.feed(0x90), Ok(T0Step::Continue));
    assert_eq!(
        exchange.feed(0x00),
        Ok(T0Step::Done(T0Response {
            data: vec![1, 2, 3, 4],
            sw1: 0x90,
            sw2: 0x00
        }))
    );
    assert_eq!(exchange.feed(0x00), Err(T0Error::AfterCompletion));
    assert_eq!(exchange.nulls(), 1);
}

#[test]
fn exchange_case_3_step_by_step() {
    let tpdu = tpdu_from_apdu(&hex("00 82 00 00 03 AA BB CC")).unwrap();
    let mut exchange = T0Exchange::new(&tpdu);
    // One byte at a time, then the rest.
    assert_eq!(exchange.feed(0x82 ^ 0xFF), Ok(T0Step::Send(vec![0xAA])));
    assert_eq!(exchange.feed(0x60), Ok(T0Step::Continue));
    assert_eq!(exchange.feed(0x82), Ok(T0Step::Send(vec![0xBB, 0xCC])));
    // All data sent: another acknowledgement is a protocol error.
    let mut other = exchange.clone();
    assert_eq!(other.feed(0x82), Err(T0Error::UnexpectedAck(0x82)));
    assert_eq!(exchange.feed(0x90), Ok(T0Step::Continue));
    assert_eq!(
        exchange.feed(0x00),
        Ok(T0Step::Done(T0Response {
            data: vec![],
            sw1: 0x90,
            sw2: 0x00
        }))
    );
}

#[test]
fn exchange_case_2_one_byte_at_a_time() {
    let tpdu = tpdu_from_apdu(&hex("00 84 00 00 02")).unwrap();
    let stream = hex("7B 11 7B 22 90 00");
    let (sent, response) = T0Exchange::run(&tpdu, &stream).unwrap();
    assert_eq!(sent, hex("00 84 00 00 02"));
    assert_eq!(response.data, vec![0x11, 0x22]);
    assert_eq!(response.to_bytes(), hex("11 22 90 00"));
}

#[test]
fn exchange_errors() {
    let tpdu = tpdu_from_apdu(&hex("00 84 00 00 02")).unwrap();
    assert_eq!(
        T0Exchange::run(&tpdu, &hex("84 11")),
        Err(T0Error::Incomplete)
    );
    assert_eq!(
        T0Exchange::run(&tpdu, &hex("42")),
        Err(T0Error::InvalidProcedure(0x42))
    );
    assert_eq!(
        T0Exchange::run(&tpdu, &hex("84 11 22 84")),
        Err(T0Error::UnexpectedAck(0x84))
    );
    assert_eq!(
        T0Exchange::run(&tpdu, &hex("6A 82 00")),
        Err(T0Error::AfterCompletion)
    );
    assert_eq!(T0Exchange::run(&tpdu, &[]), Err(T0Error::Incomplete));
    // Case 1: an acknowledgement has nothing to move.
    let tpdu = tpdu_from_apdu(&hex("00 70 00 01")).unwrap();
    assert_eq!(
        T0Exchange::run(&tpdu, &hex("70")),
        Err(T0Error::UnexpectedAck(0x70))
    );
    // A status before all data is fine (e.g. 6Cxx, 6A82).
    let tpdu = tpdu_from_apdu(&hex("00 B2 01 0C 00")).unwrap();
    let (_, response) = T0Exchange::run(&tpdu, &hex("6C 1C")).unwrap();
    assert_eq!((response.sw1, response.sw2), (0x6C, 0x1C));
}

#[test]
fn null_storm_is_bounded() {
    let tpdu = tpdu_from_apdu(&hex("00 84 00 00 02")).unwrap();
    let mut stream = vec![0x60; 1000];
    stream.extend(hex("84 01 02 90 00"));
    let (_, response) = T0Exchange::run(&tpdu, &stream).unwrap();
    assert_eq!(response.data, vec![1, 2]);
    let mut exchange = T0Exchange::new(&tpdu);
    for _ in 0..1000 {
        assert_eq!(exchange.feed(0x60), Ok(T0Step::Continue));
    }
    assert_eq!(exchange.feed(0x60), Err(T0Error::TooManyNulls(1000)));
    let mut exchange = T0Exchange::new(&tpdu);
    exchange.max_nulls = 3;
    let results: Vec<_> = (0..4).map(|_| exchange.feed(0x60)).collect();
    assert_eq!(results[3], Err(T0Error::TooManyNulls(3)));
}

// ---------------------------------------------------------------------------------------
// The virtual card

#[test]
fn card_streams() {
    let mut handler = |apdu: &[u8]| match apdu[1] {
        0x84 => Some(hex("01 02 03 04 05 06 07 08 90 00")),
        0x82 => Some(hex("90 00")),
        0xA4 => Some(hex("6F 02 84 00 90 00")),
        0x70 => Some(hex("01 90 00")),
        _ => Some(hex("6D 00")),
    };
    // Case 2, right Le: INS, data, SW.
    let tpdu = tpdu_from_apdu(&hex("00 84 00 00 08")).unwrap();
    assert_eq!(
        card_respond(&tpdu, &mut handler),
        hex("84 01 02 03 04 05 06 07 08 90 00")
    );
    // Case 2, wrong Le: 6Cxx.
    let tpdu = tpdu_from_apdu(&hex("00 84 00 00 00")).unwrap();
    assert_eq!(card_respond(&tpdu, &mut handler), hex("6C 08"));
    let tpdu = tpdu_from_apdu(&hex("00 84 00 00 04")).unwrap();
    assert_eq!(card_respond(&tpdu, &mut handler), hex("6C 08"));
    // Case 3: INS, (the host sends the data), SW.
    let tpdu = tpdu_from_apdu(&hex("00 82 00 00 02 AA BB")).unwrap();
    assert_eq!(card_respond(&tpdu, &mut handler), hex("82 90 00"));
    // Case 4 sent as case 3: INS, 61xx.
    let tpdu = tpdu_from_apdu(&hex("00 A4 04 00 02 3F 00 00")).unwrap();
    assert_eq!(card_respond(&tpdu, &mut handler), hex("A4 61 04"));
    // Case 1 with data from the card: 61xx.
    let tpdu = tpdu_from_apdu(&hex("00 70 00 00")).unwrap();
    assert_eq!(card_respond(&tpdu, &mut handler), hex("61 01"));
    // Status only.
    let tpdu = tpdu_from_apdu(&hex("00 CA 9F 17 00")).unwrap();
    assert_eq!(card_respond(&tpdu, &mut handler), hex("6D 00"));
    // INS 6X/9X, CLA FF.
    let tpdu = Tpdu {
        header: [0x00, 0x6A, 0, 0, 0],
        data: vec![],
        case: TpduCase::Case1,
    };
    assert_eq!(card_respond(&tpdu, &mut handler), hex("6D 00"));
    let tpdu = Tpdu {
        header: [0xFF, 0xA4, 0, 0, 0],
        data: vec![],
        case: TpduCase::Case1,
    };
    assert_eq!(card_respond(&tpdu, &mut handler), hex("6E 00"));
}

#[test]
fn card_serves_get_response() {
    let mut card = T0Card::new();
    let mut handler = |_: &[u8]| Some(hex("6F 02 84 00 62 83"));
    let tpdu = tpdu_from_apdu(&hex("00 A4 04 00 02 3F 00 00")).unwrap();
    assert_eq!(card.respond(&tpdu, &mut handler), hex("A4 61 04"));
    assert!(card.has_pending_response());
    // Too long: 6Cxx, the data stays.
    let get = tpdu_from_apdu(&hex("00 C0 00 00 08")).unwrap();
    assert_eq!(card.respond(&get, &mut handler), hex("6C 04"));
    // Part of it: 61 with the rest.
    let get = tpdu_from_apdu(&hex("00 C0 00 00 03")).unwrap();
    assert_eq!(card.respond(&get, &mut handler), hex("C0 6F 02 84 61 01"));
    let get = tpdu_from_apdu(&hex("00 C0 00 00 01")).unwrap();
    // The final SW is the application's (a warning here).
    assert_eq!(card.respond(&get, &mut handler), hex("C0 00 62 83"));
    assert!(!card.has_pending_response());
}

#[test]
fn card_with_nulls_and_single_byte_acks() {
    let mut card = T0Card::new();
    card.nulls_before_status = 3;
    card.ack_one_by_one = true;
    let mut handler = |_: &[u8]| Some(hex("11 22 90 00"));
    let tpdu = tpdu_from_apdu(&hex("00 B2 01 0C 02")).unwrap();
    let stream = card.respond(&tpdu, &mut handler);
    assert_eq!(stream, hex("4D 11 4D 22 60 60 60 90 00"));
    let (_, response) = T0Exchange::run(&tpdu, &stream).unwrap();
    assert_eq!(response.to_bytes(), hex("11 22 90 00"));
    let tpdu = tpdu_from_apdu(&hex("00 82 00 00 02 AA BB")).unwrap();
    let stream = card.respond(&tpdu, &mut handler);
    assert_eq!(stream, hex("7D 7D 60 60 60 61 02"));
    let (sent, _) = T0Exchange::run(&tpdu, &stream).unwrap();
    assert_eq!(sent, hex("00 82 00 00 02 AA BB"));
}

#[test]
fn card_null_storm_is_bounded_by_the_host() {
    let mut card = T0Card::new();
    card.nulls_before_status = 5000;
    let mut handler = |_: &[u8]| Some(hex("90 00"));
    let tpdu = tpdu_from_apdu(&hex("00 70 00 00")).unwrap();
    let stream = card.respond(&tpdu, &mut handler);
    assert_eq!(
        T0Exchange::run(&tpdu, &stream),
        Err(T0Error::TooManyNulls(1000))
    );
}

#[test]
fn mute_card_streams() {
    let mut handler = |_: &[u8]| None;
    let tpdu = tpdu_from_apdu(&hex("00 84 00 00 08")).unwrap();
    assert_eq!(card_respond(&tpdu, &mut handler), Vec::<u8>::new());
    // Case 3: the card takes the data, then says nothing.
    let tpdu = tpdu_from_apdu(&hex("00 82 00 00 02 AA BB")).unwrap();
    let stream = card_respond(&tpdu, &mut handler);
    assert_eq!(stream, hex("82"));
    assert_eq!(T0Exchange::run(&tpdu, &stream), Err(T0Error::Incomplete));
}

#[test]
fn mastercard_session_over_t0() {
    let pairs = transcript(MASTERCARD);
    assert_eq!(pairs.len(), 7);
    let mut handler = replay(&pairs);
    let mut card = T0Card::new();
    for (command, response) in &pairs {
        assert_eq!(
            &transmit(&mut card, &mut handler, command),
            response,
            "{command:02X?}"
        );
    }
    // The same with NULLs and single-byte acknowledgements.
    let mut card = T0Card::new();
    card.nulls_before_status = 2;
    card.ack_one_by_one = true;
    for (command, response) in &pairs {
        assert_eq!(
            &transmit(&mut card, &mut handler, command),
            response,
            "{command:02X?}"
        );
    }
}

#[test]
fn long_response_over_get_response() {
    // 300 bytes of data for a case 4 command: 61 00, 256 bytes, 61 2C, 44 bytes.
    let data: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
    let mut full = data.clone();
    full.extend_from_slice(&[0x90, 0x00]);
    let mut handler = |_: &[u8]| Some(full.clone());
    let mut card = T0Card::new();
    let got = transmit(&mut card, &mut handler, &hex("80 CA 00 00 01 00 00"));
    assert_eq!(got, full);
}

proptest! {
    #[test]
    fn exchange_never_panics(
        apdu in proptest::collection::vec(any::<u8>(), 4..20),
        stream in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        if let Ok(tpdu) = tpdu_from_apdu(&apdu) {
            let _ = T0Exchange::run(&tpdu, &stream);
        }
    }

    #[test]
    fn card_and_exchange_agree(
        ins in (0u8..=255).prop_filter("valid INS", |i| !matches!(i & 0xF0, 0x60 | 0x90)),
        data in proptest::collection::vec(any::<u8>(), 0..300),
        command_data in proptest::collection::vec(any::<u8>(), 0..255),
        sw in (0x90u8..=0x9F, any::<u8>()),
        nulls in 0u16..50,
        one_by_one in any::<bool>(),
    ) {
        prop_assume!(ins != 0xC0);
        let mut full = data.clone();
        full.extend_from_slice(&[sw.0, sw.1]);
        let mut seen = Vec::new();
        let mut handler = |apdu: &[u8]| {
            seen.push(apdu.to_vec());
            Some(full.clone())
        };
        let mut card = T0Card::new();
        card.nulls_before_status = nulls;
        card.ack_one_by_one = one_by_one;
        let mut apdu = vec![0x80, ins, 0x01, 0x02];
        if !command_data.is_empty() {
            apdu.push(command_data.len() as u8);
            apdu.extend_from_slice(&command_data);
        }
        apdu.push(0x00);
        let got = transmit(&mut card, &mut handler, &apdu);
        prop_assert_eq!(got, full.clone());
        let expected_first: Vec<u8> = if command_data.is_empty() {
            apdu.clone()
        } else {
            apdu[..apdu.len() - 1].to_vec()
        };
        prop_assert_eq!(&seen[0], &expected_first);
    }
}
