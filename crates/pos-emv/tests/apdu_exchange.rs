//! `exchange`: the T=0 response handling (61xx, 6Cxx, case 4 warnings) and error typing,
//! against a fake card channel that plays back canned answers and records what it was sent.

use std::collections::VecDeque;

use pos_emv::apdu::{self, Command, ExchangeError, MAX_GET_RESPONSE_ROUNDS, Response};
use pos_hal::{CardChannel, Fault, FaultKind};

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).expect("test hex")
}

/// A test error with a kind, as a driver's error would have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fake channel: {0}")]
struct FakeError(FaultKind);

impl Fault for FakeError {
    fn kind(&self) -> FaultKind {
        self.0
    }
}

/// Answers from a queue; records every command sent.
#[derive(Default)]
struct FakeChannel {
    answers: VecDeque<Result<Vec<u8>, FakeError>>,
    sent: Vec<Vec<u8>>,
    /// When the queue is empty: answer this forever (or fail as mute when None).
    forever: Option<Vec<u8>>,
}

impl FakeChannel {
    fn new(answers: &[&str]) -> Self {
        FakeChannel {
            answers: answers.iter().map(|a| Ok(hex(a))).collect(),
            ..Default::default()
        }
    }
}

impl CardChannel for FakeChannel {
    type Error = FakeError;
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, FakeError> {
        self.sent.push(command.to_vec());
        match self.answers.pop_front() {
            Some(a) => a,
            None => self.forever.clone().ok_or(FakeError(FaultKind::CardMute)),
        }
    }
}

fn select_mastercard() -> Command {
    Command::select_by_name(&hex("A0000000041010"), true)
}

#[test]
fn plain_answer_is_returned_as_is() {
    let mut ch =
        FakeChannel::new(&["6F1C8407A0000000041010A511500F505043204D434420303420207632309000"]);
    let r = apdu::exchange(&mut ch, &select_mastercard()).unwrap();
    assert!(r.is_success());
    assert_eq!(r.data.len(), 0x1E);
    assert_eq!(ch.sent, vec![hex("00A4040007A000000004101000")]);
}

#[test]
fn get_response_loop_concatenates_several_rounds() {
    // Case 4 over T=0: 61 1E, then the data in three pieces (61xx with data, as some
    // readers pass it on), the last with 9000.
    let mut ch = FakeChannel::new(&[
        "611E",
        "6F1C8407A0000000 610E",
        "041010A511500F50 6106",
        "5043204D4344 6108",
        "20303420207632309000",
    ]);
    let r = apdu::exchange(&mut ch, &select_mastercard()).unwrap();
    assert_eq!(
        r.data,
        hex("6F1C8407A0000000041010A511500F505043204D43442030342020763230")
    );
    assert_eq!(r.sw(), 0x9000);
    assert_eq!(
        ch.sent,
        vec![
            hex("00A4040007A000000004101000"),
            hex("00C000001E"),
            hex("00C000000E"),
            hex("00C0000006"),
            hex("00C0000008"),
        ]
    );
}

#[test]
fn sixty_one_zero_asks_for_256_bytes() {
    let mut ch = FakeChannel::new(&["6100", "AABB9000"]);
    let r = apdu::exchange(&mut ch, &Command::get_data(0x9F4F)).unwrap();
    assert_eq!(r.data, hex("AABB"));
    assert_eq!(ch.sent[1], hex("00C0000000"));
}

#[test]
fn wrong_le_is_resent_once_with_the_right_one() {
    // READ RECORD with Le 00 answered 6C1E: resend with Le 1E.
    let mut ch = FakeChannel::new(&[
        "6C1E",
        "701C611A4F08A000000333010102500B55494343204352454449548701019000",
    ]);
    let cmd = Command::read_record(1, 1).unwrap();
    let r = apdu::exchange(&mut ch, &cmd).unwrap();
    assert!(r.is_success());
    assert_eq!(r.data.len(), 0x1E);
    assert_eq!(ch.sent, vec![hex("00B2010C00"), hex("00B2010C1E")]);

    // A card that keeps saying 6Cxx: typed error, not a loop.
    let mut ch = FakeChannel::new(&["6C1E", "6C1F"]);
    let e = apdu::exchange(&mut ch, &cmd).unwrap_err();
    assert!(matches!(e, ExchangeError::Malformed { .. }), "{e}");
    assert_eq!(e.kind(), FaultKind::Protocol);
    assert_eq!(ch.sent.len(), 2);
}

#[test]
fn wrong_le_then_more_data() {
    // 6Cxx then 61xx: both rules in one exchange.
    let mut ch = FakeChannel::new(&["6C04", "6102", "01029000"]);
    let r = apdu::exchange(&mut ch, &Command::get_challenge()).unwrap();
    assert_eq!(r.data, hex("0102"));
    assert_eq!(
        ch.sent,
        vec![hex("0084000000"), hex("0084000004"), hex("00C0000002")]
    );
}

#[test]
fn six_c_to_a_command_without_le_is_just_an_answer() {
    let mut ch = FakeChannel::new(&["6C10"]);
    let r = apdu::exchange(&mut ch, &Command::external_authenticate(&[1; 8])).unwrap();
    assert_eq!(r.sw(), 0x6C10);
    assert_eq!(ch.sent.len(), 1);
}

#[test]
fn case_4_warning_fetches_the_data_and_keeps_the_warning() {
    // EMV Book 1 9.3.1.3 / Annex A7: SELECT of a blocked application answered 6283 with no
    // data; GET RESPONSE (Le 00) gets 6Cxx, then the FCI; the result is the FCI with 6283.
    let fci = "6F1C8407A0000000041010A511500F50504320 4D434420303420207632309000";
    let mut ch = FakeChannel::new(&["6283", "6C1E", fci]);
    let r = apdu::exchange(&mut ch, &select_mastercard()).unwrap();
    assert_eq!((r.sw1, r.sw2), (0x62, 0x83));
    assert!(r.is_warning());
    assert_eq!(r.data.len(), 0x1E);
    assert_eq!(
        ch.sent,
        vec![
            hex("00A4040007A000000004101000"),
            hex("00C0000000"),
            hex("00C000001E"),
        ]
    );

    // The GET RESPONSE answered with 61xx: loop, warning kept.
    let mut ch = FakeChannel::new(&["63C2", "6102", "AABB9000"]);
    let gac = Command::generate_ac(0x80, &[0; 4]);
    let r = apdu::exchange(&mut ch, &gac).unwrap();
    assert_eq!((r.sw(), r.data.clone()), (0x63C2, hex("AABB")));
    assert_eq!(ch.sent[1..], [hex("00C0000000"), hex("00C0000002")]);

    // The card has nothing to give: the warning alone.
    let mut ch = FakeChannel::new(&["6283", "6985"]);
    let r = apdu::exchange(&mut ch, &select_mastercard()).unwrap();
    assert_eq!(r.sw(), 0x6283);
    assert!(r.data.is_empty());
    assert_eq!(ch.sent.len(), 2);
}

#[test]
fn warnings_that_are_not_the_case_4_rule_are_returned_as_they_are() {
    // Case 4 warning that came with its data (APDU-level reader): no GET RESPONSE.
    let mut ch = FakeChannel::new(&["6F00 6283"]);
    let r = apdu::exchange(&mut ch, &select_mastercard()).unwrap();
    assert_eq!((r.sw(), r.data.clone()), (0x6283, hex("6F00")));
    assert_eq!(ch.sent.len(), 1);

    // Case 2 (READ RECORD) answered 6282: no GET RESPONSE.
    let mut ch = FakeChannel::new(&["6282"]);
    let r = apdu::exchange(&mut ch, &Command::read_record(1, 1).unwrap()).unwrap();
    assert_eq!(r.sw(), 0x6282);
    assert_eq!(ch.sent.len(), 1);

    // Case 3 (EXTERNAL AUTHENTICATE) answered 6300 (issuer authentication failed).
    let mut ch = FakeChannel::new(&["6300"]);
    let r = apdu::exchange(&mut ch, &Command::external_authenticate(&[0; 8])).unwrap();
    assert_eq!(r.sw(), 0x6300);
    assert_eq!(ch.sent.len(), 1);
}

#[test]
fn error_status_words_are_answers_not_errors() {
    for sw in ["6A82", "6A81", "6985", "6D00", "6E00", "6700", "6F00"] {
        let mut ch = FakeChannel::new(&[sw]);
        let r = apdu::exchange(&mut ch, &select_mastercard()).unwrap();
        assert_eq!(r.to_bytes(), hex(sw));
        assert_eq!(ch.sent.len(), 1);
    }
}

#[test]
fn endless_61xx_is_bounded() {
    let mut ch = FakeChannel {
        forever: Some(hex("AA6101")),
        ..Default::default()
    };
    let e = apdu::exchange(&mut ch, &select_mastercard()).unwrap_err();
    assert!(matches!(e, ExchangeError::TooManyGetResponses), "{e}");
    assert_eq!(e.kind(), FaultKind::Protocol);
    // The command, then MAX rounds of GET RESPONSE; the last 61xx is not followed.
    assert_eq!(ch.sent.len(), 1 + MAX_GET_RESPONSE_ROUNDS);
    assert!(ch.sent[1..].iter().all(|c| c == &hex("00C0000001")));
}

#[test]
fn channel_errors_come_back_unchanged_with_their_kind() {
    for kind in [
        FaultKind::CardRemoved,
        FaultKind::CardMute,
        FaultKind::Disconnected,
        FaultKind::Timeout,
    ] {
        let mut ch = FakeChannel::default();
        ch.answers.push_back(Err(FakeError(kind)));
        let e = apdu::exchange(&mut ch, &select_mastercard()).unwrap_err();
        match &e {
            ExchangeError::Channel(inner) => assert_eq!(inner, &FakeError(kind)),
            other => panic!("expected a channel error, got {other}"),
        }
        assert_eq!(e.kind(), kind);
        assert_eq!(Fault::kind(&e), kind);
        // The source chain reaches the channel's error.
        let source = std::error::Error::source(&e).expect("source");
        assert_eq!(source.to_string(), FakeError(kind).to_string());
    }

    // Card pulled during the GET RESPONSE loop.
    let mut ch = FakeChannel::new(&["611E"]);
    ch.answers.push_back(Err(FakeError(FaultKind::CardRemoved)));
    let e = apdu::exchange(&mut ch, &select_mastercard()).unwrap_err();
    assert_eq!(e.kind(), FaultKind::CardRemoved);
    assert_eq!(ch.sent.len(), 2);
}

#[test]
fn mute_card_is_card_mute() {
    let mut ch = FakeChannel::default(); // no answers, no `forever`: mute
    let e = apdu::exchange(&mut ch, &Command::get_data(0x9F36)).unwrap_err();
    assert_eq!(e.kind(), FaultKind::CardMute);
}

#[test]
fn short_answers_are_malformed() {
    for answer in ["", "90"] {
        let mut ch = FakeChannel::new(&[answer]);
        let e = apdu::exchange(&mut ch, &select_mastercard()).unwrap_err();
        assert!(matches!(e, ExchangeError::Malformed { .. }), "{e}");
        assert_eq!(e.kind(), FaultKind::Protocol);
    }
}

#[test]
fn commands_too_long_for_short_form_are_refused_before_sending() {
    let mut ch = FakeChannel::new(&["9000"]);
    let cmd = Command::generate_ac(0x80, &[0; 300]);
    let e = apdu::exchange(&mut ch, &cmd).unwrap_err();
    assert!(matches!(e, ExchangeError::Command(_)), "{e}");
    assert_eq!(e.kind(), FaultKind::InvalidInput);
    assert!(ch.sent.is_empty());
}

#[test]
fn response_meaning_is_available() {
    let r = Response::new(Vec::new(), 0x6A82);
    assert_eq!(r.meaning(), "file or application not found");
}
