//! `sim:ccid` URIs: every option read once ([`SimSpec`]), errors listing what is accepted,
//! cards from a [`CardCatalog`] given in [`ReaderConfig::cards`], a TPDU reader carrying the
//! protocol the card's ATR offers, and the driver refusing an answer that is no response
//! APDU.

use std::sync::Arc;

use pos_ccid::sim::{SIM_OPTIONS, SimCard, SimLevel, SimSpec, TestCard};
use pos_ccid::{CcidError, ReaderConfig};
use pos_hal::{CardCatalog, CardProtocol, CardSpec, ChipReader, Fault, FaultKind, VirtualCard};
use pos_link::DeviceUri;

fn uri(text: &str) -> DeviceUri {
    DeviceUri::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

const SELECT_PSE: &[u8] = b"\x00\xA4\x04\x00\x0E1PAY.SYS.DDF01\x00";

/// Send `apdu`; a T=0 card's `61xx` is followed by GET RESPONSE, as the application layer
/// (pos-emv's APDU handling) does above the driver.
fn exchange(r: &mut pos_ccid::AnyReader, apdu: &[u8]) -> Result<Vec<u8>, CcidError> {
    let mut resp = r.transmit(0, apdu)?;
    while resp.len() >= 2 && resp[resp.len() - 2] == 0x61 {
        let le = resp[resp.len() - 1];
        resp = r.transmit(0, &[0x00, 0xC0, 0x00, 0x00, le])?;
    }
    Ok(resp)
}

#[test]
fn every_option_is_read() {
    let s = SimSpec::parse(&uri(
        "sim:ccid?level=t1&interrupt=off&pps=host&card=t0&remove_at=3&parity_error_at=2&wtx=4\
         &time_extensions=5&fault=mute-after-atr,refuse-pps,removal-answers-empty",
    ))
    .expect("parses");
    assert_eq!(s.config.level, SimLevel::TpduT1);
    assert!(!s.config.interrupt);
    assert!(!s.config.auto_pps);
    assert_eq!(s.card, SimCard::Spec(CardSpec::Named("t0".into())));
    assert_eq!(s.protocol, CardProtocol::T1);
    assert_eq!(s.faults.remove_at_exchange, Some(3));
    assert_eq!(s.faults.parity_error_at_exchange, Some(2));
    assert_eq!(s.faults.wtx_storm, 4);
    assert_eq!(s.faults.time_extensions, 5);
    assert!(s.faults.mute_after_atr && s.faults.refuse_pps && s.faults.removal_answers_empty);

    let s = SimSpec::parse(&uri("sim:ccid?script=cards/upi.apdu")).expect("parses");
    assert_eq!(
        s.card,
        SimCard::Spec(CardSpec::Script("cards/upi.apdu".into()))
    );
    assert_eq!(s.protocol, CardProtocol::T0);
    let s = SimSpec::parse(&uri("sim:ccid?card=none")).expect("parses");
    assert_eq!(s.card, SimCard::None);
    let s = SimSpec::parse(&uri("sim:ccid")).expect("parses");
    assert_eq!(s.card, SimCard::Default);
    assert_eq!(s.config.level, SimLevel::Apdu);
}

#[test]
fn bad_options_are_errors_listing_every_accepted_value() {
    for (text, names) in [
        ("sim:ccid?level=t2", "level=t2"),
        ("sim:ccid?colour=red", "colour=red"),
        ("sim:ccid?remove_at=soon", "remove_at"),
        ("sim:ccid?wtx=300", "wtx"),
        ("sim:ccid?card=", "card="),
        ("sim:ccid?card=visa&script=x.apdu", "already given"),
    ] {
        let e = SimSpec::parse(&uri(text)).expect_err(text);
        assert!(e.contains(names), "{text}: {e}");
        if !e.contains("already given") {
            assert!(e.contains(SIM_OPTIONS), "{text}: {e}");
        }
    }
    let e = SimSpec::parse(&uri("sim:ccid?fault=jam")).expect_err("unknown fault");
    assert!(
        e.contains("mute-after-atr|refuse-pps|removal-answers-empty"),
        "{e}"
    );
}

#[test]
fn without_a_catalog_an_emv_card_or_script_says_where_cards_come_from() {
    for text in ["sim:ccid?card=visa", "sim:ccid?script=card.apdu"] {
        let e = pos_ccid::open(&uri(text), ReaderConfig::default()).expect_err(text);
        assert_eq!(e.kind(), FaultKind::InvalidInput, "{text}: {e}");
        let msg = e.to_string();
        assert!(msg.contains("ReaderConfig::cards"), "{text}: {msg}");
        assert!(msg.contains("pos_emv::sim::EmvCards"), "{text}: {msg}");
    }
    let e = pos_ccid::open(&uri("sim:ccid?card=vsa"), ReaderConfig::default())
        .expect_err("unknown card");
    assert!(e.to_string().contains("t0|t1|mute|none"), "{e}");
}

/// A catalog of one card, as an application layer would give one.
#[derive(Debug)]
struct OneCard;

impl CardCatalog for OneCard {
    fn names(&self) -> Vec<String> {
        vec!["echo".into()]
    }
    fn plays_scripts(&self) -> bool {
        false
    }
    fn default_card(&self) -> Option<String> {
        Some("echo".into())
    }
    fn make(
        &self,
        spec: &CardSpec,
        protocol: CardProtocol,
    ) -> Option<Result<Box<dyn VirtualCard>, String>> {
        match spec {
            CardSpec::Named(n) if n == "echo" => Some(Ok(Box::new(match protocol {
                CardProtocol::T0 => TestCard::t0(),
                CardProtocol::T1 => TestCard::t1(),
            }))),
            _ => None,
        }
    }
}

fn with_catalog() -> ReaderConfig {
    ReaderConfig {
        cards: Some(Arc::new(OneCard)),
        ..ReaderConfig::default()
    }
}

#[test]
fn catalog_cards_are_made_by_name_and_by_default_in_the_protocol_the_level_asks() {
    for (text, t1) in [
        ("sim:ccid?card=echo", false),
        ("sim:ccid?card=echo&level=t0", false),
        ("sim:ccid?card=echo&level=t1", true),
        ("sim:ccid?level=t1", true),
        ("sim:ccid", false),
    ] {
        let mut r = pos_ccid::open(&uri(text), with_catalog()).unwrap_or_else(|e| panic!("{e}"));
        let atr = r.power_on(0).unwrap_or_else(|e| panic!("{text}: {e}"));
        let offers_t1 = atr.0.windows(2).any(|w| w == [0x81, 0x31]);
        assert_eq!(offers_t1, t1, "{text}: {:02X?}", atr.0);
        let resp = exchange(&mut r, SELECT_PSE).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(&resp[resp.len() - 2..], [0x90, 0x00], "{text}");
    }
    let e = pos_ccid::open(&uri("sim:ccid?card=nope"), with_catalog()).expect_err("unknown");
    assert!(e.to_string().contains("t0|t1|mute|echo|none"), "{e}");
    let e = pos_ccid::open(&uri("sim:ccid?script=x.apdu"), with_catalog()).expect_err("script");
    assert!(e.to_string().contains("script=x.apdu"), "{e}");
}

/// A TPDU reader carries what the card speaks: a T=0 card in a `level=t1` reader, and a T=1
/// card in a `level=t0` reader, both answer (the reader used to run T=1 framing over a T=0
/// card and hand back its garbage as an answer).
#[test]
fn a_tpdu_reader_carries_the_protocol_the_card_offers() {
    for (text, card) in [
        ("sim:ccid?level=t1&card=t0", "t0"),
        ("sim:ccid?level=t0&card=t1", "t1"),
        ("sim:ccid?level=t1&card=echo", "t1"),
        ("sim:ccid?level=t0&card=echo", "t0"),
    ] {
        let mut r = pos_ccid::open(&uri(text), with_catalog()).unwrap_or_else(|e| panic!("{e}"));
        r.power_on(0).unwrap_or_else(|e| panic!("{text}: {e}"));
        let resp = exchange(&mut r, SELECT_PSE).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert!(resp.starts_with(&[0x6F]), "{text} ({card}): {resp:02X?}");
        assert_eq!(&resp[resp.len() - 2..], [0x90, 0x00], "{text}");
        // Case 4 with data back (T=0: through GET RESPONSE).
        let echo = exchange(&mut r, &[0x80, 0xEE, 0x00, 0x00, 0x03, 1, 2, 3, 0x00])
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(echo, [1, 2, 3, 0x90, 0x00], "{text}");
    }
}

/// A card whose answers are not response APDUs (SW1 neither 6X nor 9X).
struct Garbage;

impl VirtualCard for Garbage {
    fn power_on(&mut self) -> Option<Vec<u8>> {
        TestCard::t0().power_on()
    }
    fn transmit(&mut self, _command: &[u8]) -> Option<Vec<u8>> {
        Some(vec![0x00, 0x82, 0x00, 0x82])
    }
}

#[test]
fn an_answer_that_is_no_response_apdu_is_a_protocol_error_not_success() {
    for level in ["apdu", "t0"] {
        let (mut r, _h) = pos_ccid::open_sim_with_card(
            &uri(&format!("sim:ccid?level={level}")),
            ReaderConfig::default(),
            Some(Box::new(Garbage)),
        )
        .expect("opens");
        r.power_on(0).expect("powers");
        // READ RECORD (case 2): at T=0 too the card's answer comes straight back.
        let e = r
            .transmit(0, &[0x00, 0xB2, 0x01, 0x0C, 0x00])
            .expect_err("garbage is no answer");
        assert!(matches!(e, CcidError::Protocol(_)), "{level}: {e:?}");
        assert_eq!(e.kind(), FaultKind::Protocol);
        assert!(e.to_string().contains("not a response APDU"), "{e}");
    }
}

#[test]
fn uri_faults_reach_the_virtual_reader() {
    // remove_at=1: the first exchange finds the card gone.
    let mut r =
        pos_ccid::open(&uri("sim:ccid?remove_at=1"), ReaderConfig::default()).expect("opens");
    r.power_on(0).expect("powers");
    let e = r.transmit(0, SELECT_PSE).expect_err("removed");
    assert_eq!(e.kind(), FaultKind::CardRemoved, "{e}");
    // Said once, not wrapped in itself.
    assert_eq!(
        e.to_string().matches("the card was removed").count(),
        1,
        "{e}"
    );
    // fault=mute-after-atr: reset answered, commands not.
    let mut r = pos_ccid::open(
        &uri("sim:ccid?fault=mute-after-atr"),
        ReaderConfig {
            exchange_cap: std::time::Duration::from_millis(500),
            ..ReaderConfig::default()
        },
    )
    .expect("opens");
    r.power_on(0).expect("powers");
    let e = r.transmit(0, SELECT_PSE).expect_err("mute");
    assert_eq!(e.kind(), FaultKind::CardMute, "{e}");
    // card=mute: no answer to reset.
    let mut r = pos_ccid::open(&uri("sim:ccid?card=mute"), ReaderConfig::default()).expect("opens");
    assert_eq!(r.power_on(0).expect_err("mute").kind(), FaultKind::CardMute);
    // card=none: an empty reader.
    let mut r = pos_ccid::open(&uri("sim:ccid?card=none"), ReaderConfig::default()).expect("opens");
    assert_eq!(
        r.power_on(0).expect_err("absent").kind(),
        FaultKind::CardAbsent
    );
}
