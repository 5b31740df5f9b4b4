//! Cardholder verification: CVM list parsing and evaluation (EMV Book 3 10.5) against a
//! terminal without PIN pad, with the CVM lists of the transcripts' test cards.

use pos_emv::cvm::{
    self, CvMethod, CvmCondition, CvmList, CvmListError, CvmOutcome, CvmResults, CvmRule,
    CvmTransaction, TerminalCvmCapabilities,
};
use pos_emv::read::CardData;
use pos_emv::tags;
use pos_emv::terminal::{Capabilities, PinMethods};
use pos_emv::transcript::Transcript;
use pos_emv::tvr::{Tsi, Tvr};

const MASTERCARD: &str = include_str!("data/contact-mastercard.apdu");
const UPI: &str = include_str!("data/contact-upi.apdu");

fn card_from(text: &str) -> CardData {
    let t = Transcript::parse(text).expect("transcript");
    t.record_data().expect("record TLV")
}

fn caps(b2: u8) -> TerminalCvmCapabilities {
    TerminalCvmCapabilities::from_terminal_capabilities(&[0xE0, b2, 0xC8]).expect("3 bytes")
}

fn purchase(amount: u64) -> CvmTransaction {
    CvmTransaction {
        amount,
        in_application_currency: true,
        ..CvmTransaction::default()
    }
}

fn run(
    list: &CvmList,
    caps: TerminalCvmCapabilities,
    tx: &CvmTransaction,
) -> (CvmOutcome, Tvr, Tsi) {
    let (mut tvr, mut tsi) = (Tvr::empty(), Tsi::empty());
    let out = cvm::evaluate(list, caps, tx, &mut tvr, &mut tsi);
    (out, tvr, tsi)
}

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).expect("test hex")
}

#[test]
fn terminal_capabilities_byte_2() {
    // Byte 2 F8: every CVM.
    let all = caps(0xF8);
    assert!(all.plaintext_pin && all.enciphered_pin_online && all.signature);
    assert!(all.enciphered_pin_offline && all.no_cvm);
    let c = caps(0x20);
    assert_eq!(
        c,
        TerminalCvmCapabilities {
            signature: true,
            ..TerminalCvmCapabilities::default()
        }
    );
    assert!(caps(0x80).plaintext_pin);
    assert!(caps(0x40).enciphered_pin_online);
    assert!(caps(0x10).enciphered_pin_offline);
    assert!(caps(0x08).no_cvm);
    assert_eq!(
        TerminalCvmCapabilities::from_terminal_capabilities(&[0xE0, 0xF8]),
        None
    );
}

#[test]
fn parse_rules_and_errors() {
    let list = CvmList::parse(&hex("000003E8000007D0410342041E031F02")).expect("list");
    assert_eq!(list.amount_x, 1000);
    assert_eq!(list.amount_y, 2000);
    assert_eq!(
        list.rules,
        [
            CvmRule {
                method: CvMethod::PlaintextPinIcc,
                apply_next_if_unsuccessful: true,
                condition: CvmCondition::TerminalSupports
            },
            CvmRule {
                method: CvMethod::EncipheredPinOnline,
                apply_next_if_unsuccessful: true,
                condition: CvmCondition::ManualCash
            },
            CvmRule {
                method: CvMethod::Signature,
                apply_next_if_unsuccessful: false,
                condition: CvmCondition::TerminalSupports
            },
            CvmRule {
                method: CvMethod::NoCvmRequired,
                apply_next_if_unsuccessful: false,
                condition: CvmCondition::NotUnattendedCashNotManualCashNotCashback
            },
        ]
    );
    assert_eq!(list.rules[0].to_bytes(), [0x41, 0x03]);
    assert_eq!(CvmList::parse(&[]), Err(CvmListError::TooShort(0)));
    assert_eq!(CvmList::parse(&[0; 7]), Err(CvmListError::TooShort(7)));
    assert_eq!(CvmList::parse(&[0; 9]), Err(CvmListError::OddLength(9)));
    assert_eq!(CvmList::parse(&[0; 8]).expect("no rules").rules, []);
    // Codes round-trip, unknown ones as Other.
    for b in 0..=0x3F {
        assert_eq!(CvMethod::from_code(b).code(), b);
        assert_eq!(CvMethod::from_code(b | 0x40).code(), b);
    }
    for b in 0..=0xFF {
        assert_eq!(CvmCondition::from_code(b).code(), b);
    }
    assert_eq!(CvMethod::from_code(0x06), CvMethod::Other(0x06));
    assert_eq!(CvmCondition::from_code(0x0A), CvmCondition::Other(0x0A));
}

#[test]
fn parse_never_panics_on_any_length() {
    for len in 0..64 {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 37) as u8).collect();
        let r = CvmList::parse(&bytes);
        assert_eq!(r.is_ok(), len >= 8 && len % 2 == 0, "{len}");
    }
}

#[test]
fn mastercard_card_list_without_pin_pad() {
    let card = card_from(MASTERCARD);
    let value = card.get(tags::CVM_LIST).expect("8E in the records");
    assert_eq!(value, hex("00000000000000005E031F03"));
    let list = CvmList::parse(value).expect("list");
    assert_eq!(list.rules.len(), 2);

    // Terminal with signature: the card asks for signature, result "unknown" (5E 03 00).
    let (out, tvr, tsi) = run(&list, caps(0x68), &purchase(1000));
    assert_eq!(out.method_asked, Some(CvMethod::Signature));
    assert_eq!(out.performed, Some(CvMethod::Signature));
    assert_eq!(out.result.to_bytes(), [0x5E, 0x03, 0x00]);
    assert_eq!(tvr.to_bytes(), [0; 5]);
    assert_eq!(tsi.to_bytes(), [0x40, 0x00]);

    // Terminal with No CVM only: signature not supported (condition 03 not satisfied).
    let (out, tvr, _) = run(&list, caps(0x08), &purchase(1000));
    assert_eq!(out.method_asked, Some(CvMethod::NoCvmRequired));
    assert_eq!(out.result.to_bytes(), [0x1F, 0x03, 0x02]);
    assert_eq!(tvr.to_bytes(), [0; 5]);

    // Terminal with PIN only (but no PIN pad): nothing applies -> 3F 00 01, failed.
    let (out, tvr, tsi) = run(&list, caps(0x80), &purchase(1000));
    assert_eq!(out.method_asked, None);
    assert_eq!(out.performed, None);
    assert_eq!(out.result.to_bytes(), [0x3F, 0x00, 0x01]);
    assert_eq!(tvr.to_bytes(), [0, 0, 0x80, 0, 0]);
    assert_eq!(tsi.to_bytes(), [0x40, 0x00]);
}

#[test]
fn unionpay_card_list_without_pin_pad() {
    let card = card_from(UPI);
    let value = card.get(tags::CVM_LIST).expect("8E in the records");
    assert_eq!(value, hex("00000000000000005E0342031F00"));
    let list = CvmList::parse(value).expect("list");

    // Default capabilities (F8): signature first.
    let (out, tvr, _) = run(&list, caps(0xF8), &purchase(500));
    assert_eq!(out.result.to_bytes(), [0x5E, 0x03, 0x00]);
    assert_eq!(tvr, Tvr::empty());

    // Online PIN claimed, no signature: the card asks for online PIN, there is no PIN pad
    // (B3 b5), the rule says apply next: No CVM required (always) succeeds.
    let (out, tvr, tsi) = run(&list, caps(0x48), &purchase(500));
    assert_eq!(out.method_asked, Some(CvMethod::EncipheredPinOnline));
    assert_eq!(out.performed, Some(CvMethod::NoCvmRequired));
    assert_eq!(out.result.to_bytes(), [0x1F, 0x00, 0x02]);
    assert_eq!(tvr.to_bytes(), [0, 0, 0x10, 0, 0]);
    assert_eq!(tsi.to_bytes(), [0x40, 0x00]);

    // No CVM support at all: 1F 00 is "always" but not supported -> failed, last rule.
    let (out, tvr, _) = run(&list, caps(0x00), &purchase(500));
    assert_eq!(out.method_asked, Some(CvMethod::NoCvmRequired));
    assert_eq!(out.result.to_bytes(), [0x1F, 0x00, 0x01]);
    assert_eq!(tvr.to_bytes(), [0, 0, 0x80, 0, 0]);
}

#[test]
fn online_pin_then_signature_on_lanes_with_and_without_pin_pad() {
    // 42 00: online PIN, always, apply next; 1E 00 signature; 1F 00 no CVM.
    let list = CvmList::parse(&hex("000000000000000042001E001F00")).expect("list");
    let lane = |pin| {
        let c = Capabilities {
            magstripe: true,
            signature: true,
            printer: true,
            pin,
            ..Capabilities::CHIP_ONLY
        };
        TerminalCvmCapabilities::from_terminal_capabilities(&c.terminal_capabilities())
            .expect("3 bytes")
    };
    // No PIN pad: online PIN is not supported, it fails without a PIN pad complaint and
    // signature follows.
    let (out, tvr, _) = run(&list, lane(PinMethods::NONE), &purchase(1000));
    assert_eq!(out.method_asked, Some(CvMethod::EncipheredPinOnline));
    assert_eq!(out.performed, Some(CvMethod::Signature));
    assert_eq!(out.result.to_bytes(), [0x1E, 0x00, 0x00]);
    assert_eq!(tvr, Tvr::empty());
    // A PIN pad in the configuration: online PIN is supported but cannot be entered here:
    // "PIN pad not present or not working", then signature.
    let (out, tvr, _) = run(&list, lane(PinMethods::ALL), &purchase(1000));
    assert_eq!(out.method_asked, Some(CvMethod::EncipheredPinOnline));
    assert_eq!(out.performed, Some(CvMethod::Signature));
    assert_eq!(out.result.to_bytes(), [0x1E, 0x00, 0x00]);
    assert_eq!(tvr, Tvr::PIN_PAD_NOT_PRESENT);
    // A chip reader alone: no signature either, and the signature rule does not say
    // "apply next": cardholder verification fails (honestly) at 1E 00.
    let chip = TerminalCvmCapabilities::from_terminal_capabilities(
        &Capabilities::CHIP_ONLY.terminal_capabilities(),
    )
    .expect("3 bytes");
    let (out, tvr, _) = run(&list, chip, &purchase(1000));
    assert_eq!(out.performed, None);
    assert_eq!(out.result.to_bytes(), [0x1E, 0x00, 0x01]);
    assert_eq!(tvr, Tvr::CARDHOLDER_VERIFICATION_FAILED);
}

#[test]
fn pin_without_pin_pad_stops_without_apply_next() {
    // 01 00: plaintext PIN always, no apply-next; then 1F 00.
    let list = CvmList::parse(&hex("0000000000000000" /* X Y */)).expect("empty");
    assert!(list.rules.is_empty());
    let list = CvmList::parse(&hex("000000000000000001001F00")).expect("list");
    let (out, tvr, _) = run(&list, caps(0xF8), &purchase(1));
    assert_eq!(out.method_asked, Some(CvMethod::PlaintextPinIcc));
    assert_eq!(out.performed, None);
    assert_eq!(out.result.to_bytes(), [0x01, 0x00, 0x01]);
    assert_eq!(tvr.to_bytes(), [0, 0, 0x80 | 0x10, 0, 0]);
    // PIN not claimed by the terminal: fails without the PIN pad bit.
    let (out, tvr, _) = run(&list, caps(0x28), &purchase(1));
    assert_eq!(out.result.to_bytes(), [0x01, 0x00, 0x01]);
    assert_eq!(tvr.to_bytes(), [0, 0, 0x80, 0, 0]);
}

#[test]
fn apply_next_chain_and_fail_cvm() {
    // 44 00 enciphered offline PIN (apply next), 43 00 PIN+signature (apply next),
    // 40 00 Fail CVM (apply next), 1E 00 signature.
    let list = CvmList::parse(&hex("00000000000000004400430040001E00")).expect("list");
    let (out, tvr, _) = run(&list, caps(0xF8), &purchase(1));
    assert_eq!(out.method_asked, Some(CvMethod::EncipheredPinIcc));
    assert_eq!(out.performed, Some(CvMethod::Signature));
    assert_eq!(out.result.to_bytes(), [0x1E, 0x00, 0x00]);
    assert_eq!(tvr.to_bytes(), [0, 0, 0x10, 0, 0]);
    // 00 00: Fail CVM without apply next stops there.
    let list = CvmList::parse(&hex("000000000000000000001F00")).expect("list");
    let (out, tvr, _) = run(&list, caps(0xF8), &purchase(1));
    assert_eq!(out.method_asked, Some(CvMethod::FailCvm));
    assert_eq!(out.result.to_bytes(), [0x00, 0x00, 0x01]);
    assert_eq!(tvr.to_bytes(), [0, 0, 0x80, 0, 0]);
}

#[test]
fn unknown_cvm_codes() {
    // 4A 00: unrecognised method (apply next) -> B3 b7, then signature.
    let list = CvmList::parse(&hex("00000000000000004A001E00")).expect("list");
    let (out, tvr, _) = run(&list, caps(0xF8), &purchase(1));
    assert_eq!(out.method_asked, Some(CvMethod::Other(0x0A)));
    assert_eq!(out.result.to_bytes(), [0x1E, 0x00, 0x00]);
    assert_eq!(tvr.to_bytes(), [0, 0, 0x40, 0, 0]);
    // Without apply next: unrecognised and failed.
    let list = CvmList::parse(&hex("00000000000000000A001E00")).expect("list");
    let (out, tvr, _) = run(&list, caps(0xF8), &purchase(1));
    assert_eq!(out.result.to_bytes(), [0x0A, 0x00, 0x01]);
    assert_eq!(tvr.to_bytes(), [0, 0, 0xC0, 0, 0]);
    // Unrecognised method with "if terminal supports": skipped silently.
    let list = CvmList::parse(&hex("00000000000000000A031E00")).expect("list");
    let (out, tvr, _) = run(&list, caps(0xF8), &purchase(1));
    assert_eq!(out.result.to_bytes(), [0x1E, 0x00, 0x00]);
    assert_eq!(tvr, Tvr::empty());
    // Unknown condition code 0A: never satisfied.
    let list = CvmList::parse(&hex("00000000000000001E0A1F00")).expect("list");
    let (out, _, _) = run(&list, caps(0xF8), &purchase(1));
    assert_eq!(out.result.to_bytes(), [0x1F, 0x00, 0x02]);
}

#[test]
fn amount_conditions_x_and_y() {
    // X = 10.00, Y = 50.00; 1E 06 signature under X, 1F 07 no CVM over X (apply...),
    // 5E 08 under Y, 1F 09 over Y.
    let list = CvmList::parse(&hex("000003E8000013881E061E071F081F09")).expect("list");
    let code = |tx: &CvmTransaction| run(&list, caps(0xF8), tx).0.result.to_bytes();
    assert_eq!(code(&purchase(999)), [0x1E, 0x06, 0x00]);
    assert_eq!(code(&purchase(1001)), [0x1E, 0x07, 0x00]);
    // Exactly X: neither under nor over X; under Y.
    assert_eq!(code(&purchase(1000)), [0x1F, 0x08, 0x02]);
    // Exactly Y: not under/over anything -> nothing applies.
    let y_only = CvmList::parse(&hex("000003E8000013881F081F09")).expect("list");
    let (out, tvr, _) = run(&y_only, caps(0xF8), &purchase(5000));
    assert_eq!(out.result.to_bytes(), [0x3F, 0x00, 0x01]);
    assert_eq!(tvr.to_bytes(), [0, 0, 0x80, 0, 0]);
    let (out, _, _) = run(&y_only, caps(0xF8), &purchase(5001));
    assert_eq!(out.result.to_bytes(), [0x1F, 0x09, 0x02]);
    let (out, _, _) = run(&y_only, caps(0xF8), &purchase(4999));
    assert_eq!(out.result.to_bytes(), [0x1F, 0x08, 0x02]);
    // Not in the application currency: amount conditions never satisfied.
    let foreign = CvmTransaction {
        in_application_currency: false,
        ..purchase(1)
    };
    assert_eq!(code(&foreign), [0x3F, 0x00, 0x01]);
}

#[test]
fn cash_and_cashback_conditions() {
    // 1E 01 unattended cash, 1E 04 manual cash, 1E 05 cashback, 1F 02 otherwise.
    let list = CvmList::parse(&hex("00000000000000001E011E041E051F02")).expect("list");
    let code = |tx: CvmTransaction| run(&list, caps(0xF8), &tx).0.result.to_bytes();
    let base = purchase(100);
    assert_eq!(
        code(CvmTransaction {
            cash: true,
            unattended: true,
            ..base
        }),
        [0x1E, 0x01, 0x00]
    );
    assert_eq!(
        code(CvmTransaction { cash: true, ..base }),
        [0x1E, 0x04, 0x00]
    );
    assert_eq!(
        code(CvmTransaction {
            cashback: true,
            ..base
        }),
        [0x1E, 0x05, 0x00]
    );
    assert_eq!(code(base), [0x1F, 0x02, 0x02]);
    assert_eq!(
        code(CvmTransaction {
            unattended: true,
            ..base
        }),
        [0x1F, 0x02, 0x02]
    );
}

#[test]
fn aip_and_missing_list() {
    let card = card_from(MASTERCARD);
    let tx = purchase(100);
    let (mut tvr, mut tsi) = (Tvr::empty(), Tsi::empty());
    // AIP without "cardholder verification supported": skipped, nothing set.
    assert_eq!(
        cvm::cardholder_verification([0x49, 0x00], &card, caps(0xF8), &tx, &mut tvr, &mut tsi),
        None
    );
    assert_eq!((tvr, tsi), (Tvr::empty(), Tsi::empty()));
    assert_eq!(CvmResults::NOT_PERFORMED.to_bytes(), [0x3F, 0x00, 0x00]);
    // The card's AIP 59 00 has it.
    let out =
        cvm::cardholder_verification([0x59, 0x00], &card, caps(0xF8), &tx, &mut tvr, &mut tsi)
            .expect("performed");
    assert_eq!(out.result.to_bytes(), [0x5E, 0x03, 0x00]);
    assert_eq!(tsi.to_bytes(), [0x40, 0x00]);
    // CVM list absent (or malformed): ICC data missing, 3F 00 00, TSI untouched.
    for value in [None, Some(vec![0u8; 5])] {
        let mut card = card.clone();
        match &value {
            None => card.tags.remove(&tags::CVM_LIST),
            Some(v) => card.tags.insert(tags::CVM_LIST, v.clone()),
        };
        let (mut tvr, mut tsi) = (Tvr::empty(), Tsi::empty());
        let out =
            cvm::cardholder_verification([0x59, 0x00], &card, caps(0xF8), &tx, &mut tvr, &mut tsi)
                .expect("performed");
        assert_eq!(out.result.to_bytes(), [0x3F, 0x00, 0x00]);
        assert_eq!(out.method_asked, None);
        assert_eq!(tvr.to_bytes(), [0x20, 0, 0, 0, 0]);
        assert_eq!(tsi, Tsi::empty());
    }
}
