//! The policy's rules, one by one, and each quirk that changes a decision (each of these
//! tests fails without its row in [`crate::quirks::QUIRKS`]).

use super::*;
use crate::quirks::lookup;

fn tpdu(features: u32) -> CcidDescriptor {
    let mut d = CcidDescriptor::example_tpdu_reader();
    d.features = Features::from_bits_retain(features);
    d
}

/// A T=1 card's ATR with TA1 `ta1` (and TA2 `ta2`: specific mode), IFSC 254, BWI 4 CWI 5.
fn t1_atr(ta1: u8, ta2: Option<u8>) -> ParsedAtr {
    let mut b = vec![0x3B, 0x90, ta1];
    match ta2 {
        Some(ta2) => b.extend([0x91, ta2]),
        None => b.push(0x81),
    }
    b.extend([0x31, 0xFE, 0x45]);
    let tck = b[1..].iter().fold(0u8, |a, x| a ^ x);
    b.push(tck);
    match ParsedAtr::parse(&b) {
        Ok(a) => a,
        Err(e) => panic!("test ATR {b:02X?}: {e}"),
    }
}

fn decide(d: &CcidDescriptor, atr: Option<&ParsedAtr>, quirks: &[Quirk]) -> ReaderPolicy {
    ReaderPolicy::decide(d, None, atr, quirks, &ReaderConfig::default())
}

#[test]
fn set_parameters_unless_the_reader_negotiates_itself() {
    // 0x02 alone (most readers): libccid still sends SetParameters.
    let p = decide(&tpdu(0x0001_00BA), None, &[]);
    assert!(p.set_parameters.value, "{}", p.set_parameters.reason);
    assert!(p.set_parameters.reason.contains("0x02"));
    // 0x40: the reader negotiates; no SetParameters, no PPS.
    let p = decide(&tpdu(0x0001_0040), Some(&t1_atr(0x13, None)), &[]);
    assert!(!p.set_parameters.value);
    assert!(!p.pps.value);
    assert!(p.set_parameters.reason.contains("0x40"));
}

#[test]
fn pps_only_at_tpdu_level_without_automatic_pps_and_ta2() {
    let card = t1_atr(0x13, None);
    let p = decide(&tpdu(0x0001_0038), Some(&card), &[]);
    assert!(p.pps.value, "{}", p.pps.reason);
    assert_eq!(p.fi_di.value, (1, 3));
    // 0x80: the reader makes the PPS from SetParameters.
    let p = decide(&tpdu(0x0001_00B8), Some(&card), &[]);
    assert!(!p.pps.value);
    assert!(p.set_parameters.value);
    assert_eq!(p.fi_di.value, (1, 3));
    // Specific mode: no PPS, TA1's rate set directly.
    let p = decide(&tpdu(0x0001_0038), Some(&t1_atr(0x13, Some(0x01))), &[]);
    assert!(!p.pps.value);
    assert!(p.pps.reason.contains("TA2"));
    // APDU level without automatic PPS: the card stays at the default speed.
    let mut apdu = CcidDescriptor::example_apdu_reader();
    apdu.features = Features::from_bits_retain(0x0002_0038);
    let p = decide(&apdu, Some(&card), &[]);
    assert!(!p.pps.value);
    assert_eq!(p.fi_di.value, (1, 1));
}

#[test]
fn the_rate_is_never_below_the_default() {
    let mut d = tpdu(0x0001_0038);
    d.max_data_rate_bps = 9600;
    // TA1 0x95: Fi 512, Di 16: far beyond 9600 bps; every lower D with Fi 512 is slower
    // than the default 10752 bps or beyond the reader.
    let p = decide(&d, Some(&t1_atr(0x95, None)), &[]);
    assert_eq!(p.fi_di.value, (1, 1), "{}", p.fi_di.reason);
    assert!(!p.pps.value);
    // A card asking for less than the default gets the default.
    let p = decide(&tpdu(0x0001_0038), Some(&t1_atr(0x91, None)), &[]);
    assert_eq!(p.fi_di.value, (1, 1), "{}", p.fi_di.reason);
}

#[test]
fn rates_only_from_the_readers_list() {
    let d = tpdu(0x0001_0038);
    // 4 MHz: Fi 372 Di 4 = 43010 bps; the list has 21505 (Di 2) but not 43010.
    let list = [10752, 21505];
    let p = ReaderPolicy::decide(
        &d,
        Some(&list),
        Some(&t1_atr(0x13, None)),
        &[],
        &ReaderConfig::default(),
    );
    assert_eq!(p.fi_di.value, (1, 2), "{}", p.fi_di.reason);
    assert!(p.fi_di.reason.contains("list"));
    // A card in specific mode at a rate not in the list is refused.
    let p = ReaderPolicy::decide(
        &d,
        Some(&list),
        Some(&t1_atr(0x13, Some(0x01))),
        &[],
        &ReaderConfig::default(),
    );
    assert!(
        p.refused
            .as_deref()
            .is_some_and(|r| r.contains("specific mode"))
    );
}

#[test]
fn voltage_auto_is_the_readers_choice_or_class_a_first() {
    let p = decide(&tpdu(0x0001_0008), None, &[]);
    assert_eq!(p.voltages.value, [PowerSelect::Automatic]);
    let p = decide(&tpdu(0x0001_0004), None, &[]);
    assert_eq!(p.voltages.value, [PowerSelect::Automatic]);
    let p = decide(&tpdu(0x0001_0000), None, &[]);
    assert_eq!(
        p.voltages.value,
        [PowerSelect::V5, PowerSelect::V3, PowerSelect::V1_8]
    );
    // Only the classes the reader has.
    let mut d = tpdu(0x0001_0000);
    d.voltages = Voltages::V3 | Voltages::V1_8;
    let p = decide(&d, None, &[]);
    assert_eq!(p.voltages.value, [PowerSelect::V3, PowerSelect::V1_8]);
}

#[test]
fn voltage_setting_is_honoured() {
    let config = ReaderConfig {
        voltage: VoltageSetting::V1_8,
        ..ReaderConfig::default()
    };
    let p = ReaderPolicy::decide(&tpdu(0x0001_0008), None, None, &[], &config);
    assert_eq!(
        p.voltages.value,
        [PowerSelect::V1_8, PowerSelect::V3, PowerSelect::V5]
    );
    assert_eq!(VoltageSetting::parse("3"), Ok(VoltageSetting::V3));
    assert!(VoltageSetting::parse("12").is_err_and(|e| e.contains("auto|5|3|1.8")));
}

#[test]
fn ifsd_is_the_least_of_254_and_dw_max_ifsd_and_not_asked_with_0x400() {
    let mut d = tpdu(0x0001_0000);
    d.max_ifsd = 252;
    let p = decide(&d, None, &[]);
    assert_eq!(p.ifsd.value, 252, "{}", p.ifsd.reason);
    assert!(p.ifsd_request.value);
    d.features.insert(Features::AUTO_IFSD);
    let p = decide(&d, None, &[]);
    assert!(!p.ifsd_request.value, "{}", p.ifsd_request.reason);
    // A 64-byte reader: a block must fit a message.
    let mut d = tpdu(0x0001_0000);
    d.max_message_length = 64;
    assert_eq!(decide(&d, None, &[]).ifsd.value, 49);
}

#[test]
fn message_length_and_extended_apdus_follow_the_level() {
    let short = CcidDescriptor::example_apdu_reader();
    let p = decide(&short, None, &[]);
    assert_eq!(p.max_message_length.value, 271);
    assert!(!p.extended_apdu.value);
    let p = decide(&CcidDescriptor::example_extended_apdu_reader(), None, &[]);
    assert!(p.extended_apdu.value);
    assert!(is_extended_apdu(&[
        0x00, 0xB0, 0x00, 0x00, 0x00, 0x01, 0x00
    ]));
    assert!(!is_extended_apdu(&[0x00, 0xB0, 0x00, 0x00, 0x00]));
    assert!(!is_extended_apdu(&[
        0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00
    ]));
}

#[test]
fn character_level_readers_are_refused_by_name() {
    let p = decide(&tpdu(0x0000_0000), None, &[]);
    assert!(p.refused.is_some_and(|r| r.contains("character-level")));
}

// Quirks: each test looks the device up in the real table.

#[test]
fn quirk_omnikey_3x21_works_at_extended_apdu_level() {
    let mut d = CcidDescriptor::example_apdu_reader();
    d.features = Features::from_bits_retain(0x0001_00BA); // announces TPDU
    let p = decide(&d, None, &lookup(0x076B, 0x3031, 0x0101));
    assert_eq!(p.exchange_level.value, ExchangeLevel::ExtendedApdu);
    assert!(p.exchange_level.reason.contains("ccid_open_hack_post"));
}

#[test]
fn quirk_kobil_tribank_works_at_short_apdu_level() {
    let d = CcidDescriptor::example_extended_apdu_reader();
    let p = decide(&d, None, &lookup(0x0D46, 0x3010, 0x0100));
    assert_eq!(p.exchange_level.value, ExchangeLevel::ShortApdu);
    assert!(!p.extended_apdu.value);
}

#[test]
fn quirk_cherry_xx33_escapes_and_retries_on_error_bb() {
    let p = decide(&tpdu(0x0001_0000), None, &lookup(0x046A, 0x0005, 0x0100));
    assert_eq!(
        p.power_on_retry.value,
        Some(PowerOnRetry {
            error: 0xBB,
            escape: vec![0x1F, 0x01]
        })
    );
}

#[test]
fn quirk_alcor_au9540_caps_the_rate() {
    let mut d = tpdu(0x0001_0038);
    d.max_data_rate_bps = 600_000;
    // TA1 0x96 (Fi 512, Di 32): 250000 bps at 4 MHz, above the AU9540's 200000; Di 16
    // gives 125000.
    let card = t1_atr(0x96, None);
    let without = decide(&d, Some(&card), &[]);
    assert_eq!(without.fi_di.value, (9, 6));
    let p = decide(&d, Some(&card), &lookup(0x058F, 0x9540, 0x0100));
    assert_eq!(p.fi_di.value, (9, 5), "{}", p.fi_di.reason);
    assert!(p.fi_di.reason.contains("200000"));
}

#[test]
fn quirk_o2micro_oz776_makes_no_pps() {
    let card = t1_atr(0x13, None);
    let p = decide(
        &tpdu(0x0001_0038),
        Some(&card),
        &lookup(0x0B97, 0x7762, 0x0100),
    );
    assert!(!p.pps.value, "{}", p.pps.reason);
    assert_eq!(p.fi_di.value, (1, 1));
    assert!(!p.transport_notes.is_empty());
}

#[test]
fn quirk_scm_263_byte_messages_take_270() {
    let mut d = tpdu(0x0001_00BA);
    d.max_message_length = 263;
    let p = decide(&d, None, &lookup(0x04E6, 0x511F, 0x0522));
    assert_eq!(p.max_message_length.value, 270);
    // Another vendor's 263 stays 263.
    assert_eq!(decide(&d, None, &[]).max_message_length.value, 263);
}

#[test]
fn quirk_old_firmware_is_refused_naming_the_version() {
    let p = decide(&tpdu(0x0001_0000), None, &lookup(0x04E6, 0xE001, 0x0515));
    let why = p.refused.unwrap_or_default();
    assert!(why.contains("5.16") && why.contains("SCR331"), "{why}");
    let p = decide(&tpdu(0x0001_0000), None, &lookup(0x04E6, 0xE001, 0x0516));
    assert!(p.refused.is_none());
}

#[test]
fn quirk_safenet_etoken_5100_gets_no_ifs_request() {
    let p = decide(&tpdu(0x0001_0000), None, &lookup(0x0529, 0x0620, 0x0012));
    assert!(!p.ifsd_request.value, "{}", p.ifsd_request.reason);
    let p = decide(&tpdu(0x0001_0000), None, &lookup(0x0529, 0x0620, 0x0014));
    assert!(p.ifsd_request.value);
}

#[test]
fn the_policy_prints_every_decision_with_its_reason() {
    let text = decide(&tpdu(0x0001_00BA), None, &[]).to_string();
    for name in [
        "exchange level",
        "voltage",
        "SetParameters",
        "IFSD",
        "max message length",
    ] {
        assert!(text.contains(name), "{text}");
    }
    assert!(text.contains("because"));
}
