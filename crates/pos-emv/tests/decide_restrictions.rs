//! Processing restrictions (EMV Book 3 10.4): application versions, usage control, dates.

use pos_emv::read::CardData;
use pos_emv::restrictions::{self, Purchase};
use pos_emv::tags;
use pos_emv::terminal::TerminalData;
use pos_emv::transcript::Transcript;
use pos_emv::tvr::Tvr;

const MASTERCARD: &str = include_str!("data/contact-mastercard.apdu");
const UPI: &str = include_str!("data/contact-upi.apdu");

fn card_from(text: &str) -> CardData {
    let t = Transcript::parse(text).expect("transcript");
    t.record_data().expect("record TLV")
}

/// A terminal in `country` on `date` (YYMMDD BCD), transaction type `ty`.
fn terminal(country: [u8; 2], date: [u8; 3], ty: u8) -> TerminalData {
    let mut t = TerminalData::new([1, 2, 3, 4]);
    t.set(tags::TERMINAL_COUNTRY_CODE, country.to_vec());
    t.set(tags::TRANSACTION_DATE, date.to_vec());
    t.set(tags::TRANSACTION_TYPE, vec![ty]);
    t
}

fn run(card: &CardData, t: &TerminalData) -> [u8; 5] {
    let mut tvr = Tvr::empty();
    restrictions::processing_restrictions(card, t, &mut tvr);
    tvr.to_bytes()
}

fn run_for(card: &CardData, t: &TerminalData, p: Purchase) -> [u8; 5] {
    let mut tvr = Tvr::empty();
    restrictions::processing_restrictions_for(card, t, p, &mut tvr);
    tvr.to_bytes()
}

/// A card with usage control `auc`, issuer country 0826, valid 2020-01-01 to 2030-12-31.
fn card(auc: [u8; 2]) -> CardData {
    let mut c = CardData::default();
    c.tags.insert(tags::AUC, auc.to_vec());
    c.tags.insert(tags::ISSUER_COUNTRY_CODE, vec![0x08, 0x26]);
    c.tags.insert(tags::EFFECTIVE_DATE, vec![0x20, 0x01, 0x01]);
    c.tags.insert(tags::EXPIRY_DATE, vec![0x30, 0x12, 0x31]);
    c
}

const UK: [u8; 2] = [0x08, 0x26];
const FR: [u8; 2] = [0x02, 0x50];
const TODAY: [u8; 3] = [0x25, 0x06, 0x15];

#[test]
fn dates_of_the_transcript_cards() {
    // Mastercard test card: effective 2004-01-01, expiry 2014-12-31.
    let mc = card_from(MASTERCARD);
    assert_eq!(run(&mc, &terminal(UK, [0x14, 0x12, 0x31], 0x00)), [0; 5]);
    assert_eq!(
        run(&mc, &terminal(UK, [0x15, 0x01, 0x01], 0x00)),
        [0, 0x40, 0, 0, 0]
    );
    assert_eq!(run(&mc, &terminal(UK, [0x04, 0x01, 0x01], 0x00)), [0; 5]);
    assert_eq!(
        run(&mc, &terminal(UK, [0x03, 0x12, 0x31], 0x00)),
        [0, 0x20, 0, 0, 0]
    );
    // UnionPay: effective 2011-09-01, expiry 2030-10-31 (century: 30 -> 2030, not 1930).
    let upi = card_from(UPI);
    assert_eq!(run(&upi, &terminal(UK, TODAY, 0x00)), [0; 5]);
    assert_eq!(
        run(&upi, &terminal(UK, [0x30, 0x11, 0x01], 0x00)),
        [0, 0x40, 0, 0, 0]
    );
    assert_eq!(
        run(&upi, &terminal(UK, [0x11, 0x08, 0x31], 0x00)),
        [0, 0x20, 0, 0, 0]
    );
    // 1999 (YY >= 50) is before 2011.
    assert_eq!(
        run(&upi, &terminal(UK, [0x99, 0x12, 0x31], 0x00)),
        [0, 0x20, 0, 0, 0]
    );
}

#[test]
fn date_values() {
    assert_eq!(
        restrictions::date_value(&[0x49, 0x12, 0x31]),
        Some(20_491_231)
    );
    assert_eq!(
        restrictions::date_value(&[0x50, 0x01, 0x01]),
        Some(19_500_101)
    );
    assert_eq!(restrictions::date_value(&[0x25, 0x13, 0x01]), None);
    assert_eq!(restrictions::date_value(&[0x25, 0x01, 0x00]), None);
    assert_eq!(restrictions::date_value(&[0x2A, 0x01, 0x01]), None);
    assert_eq!(restrictions::date_value(&[0x25, 0x01]), None);
    // Malformed card dates fail their check; a malformed terminal date skips them.
    let mut c = card([0xFF, 0xFF]);
    c.tags.insert(tags::EXPIRY_DATE, vec![0x30, 0xFF]);
    c.tags.insert(tags::EFFECTIVE_DATE, vec![0x20, 0x13, 0x01]);
    assert_eq!(run(&c, &terminal(UK, TODAY, 0x00)), [0, 0x60, 0, 0, 0]);
    assert_eq!(
        run(&c, &terminal(UK, [0x25, 0x00, 0x00], 0x00)),
        [0, 0, 0, 0, 0]
    );
}

#[test]
fn application_versions() {
    let mc = card_from(MASTERCARD); // 9F08 00 02
    let mut t = terminal(UK, [0x14, 0x01, 0x01], 0x00);
    assert_eq!(run(&mc, &t), [0; 5], "terminal without 9F09");
    t.set(tags::APP_VERSION_TERMINAL, vec![0x00, 0x02]);
    assert_eq!(run(&mc, &t), [0; 5]);
    t.set(tags::APP_VERSION_TERMINAL, vec![0x00, 0x8C]);
    assert_eq!(run(&mc, &t), [0, 0x80, 0, 0, 0]);
    let mut no_version = mc.clone();
    no_version.tags.remove(&tags::APP_VERSION_ICC);
    assert_eq!(run(&no_version, &t), [0; 5], "card without 9F08");
}

#[test]
fn usage_control_of_the_transcript_cards_allows_everything_but_cashback_and_atm() {
    // Both test cards: 9F07 FF 00.
    for text in [MASTERCARD, UPI] {
        let c = card_from(text);
        let date = [0x10, 0x01, 0x01];
        let date = if text == UPI { TODAY } else { date };
        assert_eq!(run(&c, &terminal(UK, date, 0x00)), [0; 5]);
        assert_eq!(run(&c, &terminal(UK, date, 0x01)), [0; 5]);
        assert_eq!(
            run(&c, &terminal(UK, date, 0x09)),
            [0, 0x10, 0, 0, 0],
            "cashback"
        );
    }
}

#[test]
fn usage_control_cash() {
    // Domestic cash not allowed, international cash allowed, non-ATM.
    let c = card([0x40 | 0x20 | 0x10 | 0x08 | 0x04 | 0x01, 0x00]);
    assert_eq!(run(&c, &terminal(UK, TODAY, 0x01)), [0, 0x10, 0, 0, 0]);
    assert_eq!(run(&c, &terminal(FR, TODAY, 0x01)), [0; 5]);
    assert_eq!(
        run(&c, &terminal(UK, TODAY, 0x17)),
        [0, 0x10, 0, 0, 0],
        "cash disbursement"
    );
    // Domestic cash only.
    let c = card([0x80 | 0x01, 0x00]);
    assert_eq!(run(&c, &terminal(UK, TODAY, 0x01)), [0; 5]);
    assert_eq!(run(&c, &terminal(FR, TODAY, 0x01)), [0, 0x10, 0, 0, 0]);
    // Without an issuer country code only the ATM / non-ATM bit is checked.
    let mut c = card([0x01, 0x00]);
    c.tags.remove(&tags::ISSUER_COUNTRY_CODE);
    assert_eq!(run(&c, &terminal(UK, TODAY, 0x01)), [0; 5]);
}

#[test]
fn usage_control_goods_services_cashback() {
    // Domestic goods only.
    let c = card([0x20 | 0x01, 0x00]);
    assert_eq!(
        run_for(&c, &terminal(UK, TODAY, 0x00), Purchase::Goods),
        [0; 5]
    );
    assert_eq!(
        run_for(&c, &terminal(UK, TODAY, 0x00), Purchase::Services),
        [0, 0x10, 0, 0, 0]
    );
    assert_eq!(
        run(&c, &terminal(UK, TODAY, 0x00)),
        [0; 5],
        "goods or services"
    );
    assert_eq!(
        run(&c, &terminal(FR, TODAY, 0x00)),
        [0, 0x10, 0, 0, 0],
        "international"
    );
    // International services only.
    let c = card([0x04 | 0x01, 0x00]);
    assert_eq!(
        run_for(&c, &terminal(FR, TODAY, 0x00), Purchase::Services),
        [0; 5]
    );
    assert_eq!(
        run_for(&c, &terminal(FR, TODAY, 0x00), Purchase::Goods),
        [0, 0x10, 0, 0, 0]
    );
    // Cashback: domestic allowed (byte 2 b8), international not.
    let c = card([0x20 | 0x10 | 0x01, 0x80]);
    assert_eq!(run(&c, &terminal(UK, TODAY, 0x09)), [0; 5]);
    assert_eq!(run(&c, &terminal(FR, TODAY, 0x09)), [0, 0x10, 0, 0, 0]);
    // A non-zero Amount, Other is cashback too.
    let mut t = terminal(FR, TODAY, 0x00);
    t.set(tags::AMOUNT_OTHER, vec![0, 0, 0, 0, 0x05, 0x00]);
    assert_eq!(run(&c, &t), [0, 0x10, 0, 0, 0]);
    // A usage control of the wrong length allows nothing.
    let mut c = card([0xFF, 0xFF]);
    c.tags.insert(tags::AUC, vec![0xFF]);
    assert_eq!(run(&c, &terminal(UK, TODAY, 0x00)), [0, 0x10, 0, 0, 0]);
}

#[test]
fn usage_control_atm() {
    let mut atm = terminal(UK, TODAY, 0x01);
    atm.set(tags::TERMINAL_TYPE, vec![0x14]);
    atm.set(
        tags::ADDITIONAL_TERMINAL_CAPABILITIES,
        vec![0x80, 0, 0, 0, 0],
    );
    assert!(restrictions::is_atm(&atm));
    assert!(!restrictions::is_atm(&terminal(UK, TODAY, 0x01)));
    // Valid everywhere but at ATMs.
    let c = card([0xFD, 0x00]);
    assert_eq!(run(&c, &atm), [0, 0x10, 0, 0, 0]);
    assert_eq!(run(&c, &terminal(UK, TODAY, 0x01)), [0; 5]);
    // Valid at ATMs only.
    let c = card([0xFE, 0x00]);
    assert_eq!(run(&c, &atm), [0; 5]);
    assert_eq!(run(&c, &terminal(UK, TODAY, 0x01)), [0, 0x10, 0, 0, 0]);
    // Unattended type 14 without "cash" is not an ATM.
    let mut kiosk = atm.clone();
    kiosk.set(
        tags::ADDITIONAL_TERMINAL_CAPABILITIES,
        vec![0x60, 0, 0, 0, 0],
    );
    assert!(!restrictions::is_atm(&kiosk));
}

#[test]
fn several_bits_at_once() {
    let mut c = card([0x01, 0x00]); // non-ATM, nothing else
    c.tags.insert(tags::APP_VERSION_ICC, vec![0x00, 0x01]);
    c.tags.insert(tags::EXPIRY_DATE, vec![0x25, 0x06, 0x14]);
    let mut t = terminal(UK, TODAY, 0x00);
    t.set(tags::APP_VERSION_TERMINAL, vec![0x00, 0x02]);
    assert_eq!(run(&c, &t), [0, 0x80 | 0x40 | 0x10, 0, 0, 0]);
}
