//! Processing restrictions (EMV 4.3 Book 3 10.4): application version, application usage
//! control and application dates, recorded in the TVR.
//!
//! - Application version: card `9F08` and terminal `9F09` both present and different ->
//!   [`Tvr::DIFFERENT_APPLICATION_VERSIONS`] (either absent: nothing).
//! - Application Usage Control `9F07` (when the card has it, 2 bytes): the terminal kind
//!   (ATM or not, from `9F35` and `9F40`) and the transaction (`9C`, `9F03`) checked against
//!   it, domestic when the issuer country code `5F28` equals the terminal country code
//!   `9F1A`; a service the card does not allow -> [`Tvr::SERVICE_NOT_ALLOWED`].
//! - Dates (today from the terminal's `9A`): effective date `5F25` after today ->
//!   [`Tvr::APPLICATION_NOT_YET_EFFECTIVE`]; expiry date `5F24` before today ->
//!   [`Tvr::EXPIRED_APPLICATION`]. Dates `YYMMDD` compare with their century (`YY` < 50 is
//!   `20YY`, otherwise `19YY`). A card date that is not a valid `YYMMDD` sets its bit (it
//!   cannot be shown to be satisfied); a missing or malformed terminal date skips the date
//!   checks.

use crate::read::CardData;
use crate::tags;
use crate::terminal::TerminalData;
use crate::tvr::Tvr;

/// What the transaction buys, for the goods and services bits of the usage control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purchase {
    /// Goods (the goods bit must be set).
    Goods,
    /// Services (the services bit must be set).
    Services,
    /// Goods and services not told apart (`9C` `00`): either bit allows it.
    GoodsOrServices,
}

/// Application Usage Control byte 1 and byte 2 bits (EMV Book 3 Annex C2).
mod auc {
    pub const DOMESTIC_CASH: u8 = 0x80;
    pub const INTERNATIONAL_CASH: u8 = 0x40;
    pub const DOMESTIC_GOODS: u8 = 0x20;
    pub const INTERNATIONAL_GOODS: u8 = 0x10;
    pub const DOMESTIC_SERVICES: u8 = 0x08;
    pub const INTERNATIONAL_SERVICES: u8 = 0x04;
    pub const ATM: u8 = 0x02;
    pub const NON_ATM: u8 = 0x01;
    pub const DOMESTIC_CASHBACK: u8 = 0x80;
    pub const INTERNATIONAL_CASHBACK: u8 = 0x40;
}

/// Transaction types (`9C`) read as cash: `01` cash, `17` cash disbursement.
const CASH_TYPES: [u8; 2] = [0x01, 0x17];
/// Transaction type (`9C`) purchase with cashback.
const CASHBACK_TYPE: u8 = 0x09;

/// Processing restrictions with the purchase kind taken from the transaction type `9C`
/// (`00` and `09`: [`Purchase::GoodsOrServices`]); see [`processing_restrictions_for`].
pub fn processing_restrictions(card: &CardData, terminal: &TerminalData, tvr: &mut Tvr) {
    processing_restrictions_for(card, terminal, Purchase::GoodsOrServices, tvr);
}

/// Processing restrictions (see the [module](self) documentation); `purchase` tells the
/// goods and services bits apart for a transaction that is not cash (`9C` `01` or `17`).
pub fn processing_restrictions_for(
    card: &CardData,
    terminal: &TerminalData,
    purchase: Purchase,
    tvr: &mut Tvr,
) {
    if let (Some(icc), Some(term)) = (
        card.get(tags::APP_VERSION_ICC),
        terminal.get(tags::APP_VERSION_TERMINAL),
    ) {
        if icc != term {
            *tvr |= Tvr::DIFFERENT_APPLICATION_VERSIONS;
        }
    }
    if let Some(auc) = card.get(tags::AUC) {
        if !usage_allowed(auc, card, terminal, purchase) {
            *tvr |= Tvr::SERVICE_NOT_ALLOWED;
        }
    }
    check_dates(card, terminal, tvr);
}

/// True when the terminal is an ATM: terminal type `9F35` `14`, `15` or `16` (unattended,
/// financial institution) with "cash" in the additional terminal capabilities `9F40`
/// (EMV Book 4 Annex A1).
pub fn is_atm(terminal: &TerminalData) -> bool {
    let unattended_fi = matches!(terminal.get(tags::TERMINAL_TYPE), Some([0x14..=0x16]));
    let cash = terminal
        .get(tags::ADDITIONAL_TERMINAL_CAPABILITIES)
        .and_then(|v| v.first())
        .is_some_and(|b| b & 0x80 != 0);
    unattended_fi && cash
}

fn usage_allowed(auc: &[u8], card: &CardData, terminal: &TerminalData, purchase: Purchase) -> bool {
    // A usage control that is not 2 bytes allows nothing it cannot be read to allow.
    let &[b1, b2] = auc else {
        return false;
    };
    let place = if is_atm(terminal) {
        auc::ATM
    } else {
        auc::NON_ATM
    };
    if b1 & place == 0 {
        return false;
    }
    // Without an issuer country code the domestic/international checks are not made.
    let Some(issuer) = card.get(tags::ISSUER_COUNTRY_CODE) else {
        return true;
    };
    let domestic = terminal.get(tags::TERMINAL_COUNTRY_CODE) == Some(issuer);
    let pick = |d: u8, i: u8| if domestic { d } else { i };
    let ty = terminal
        .get(tags::TRANSACTION_TYPE)
        .and_then(|v| v.first().copied())
        .unwrap_or(0x00);
    if CASH_TYPES.contains(&ty) {
        return b1 & pick(auc::DOMESTIC_CASH, auc::INTERNATIONAL_CASH) != 0;
    }
    let goods = b1 & pick(auc::DOMESTIC_GOODS, auc::INTERNATIONAL_GOODS) != 0;
    let services = b1 & pick(auc::DOMESTIC_SERVICES, auc::INTERNATIONAL_SERVICES) != 0;
    let bought = match purchase {
        Purchase::Goods => goods,
        Purchase::Services => services,
        Purchase::GoodsOrServices => goods || services,
    };
    if !bought {
        return false;
    }
    let cashback = ty == CASHBACK_TYPE
        || terminal
            .get(tags::AMOUNT_OTHER)
            .is_some_and(|v| v.iter().any(|&b| b != 0));
    !cashback || b2 & pick(auc::DOMESTIC_CASHBACK, auc::INTERNATIONAL_CASHBACK) != 0
}

/// A `YYMMDD` BCD date as the number `YYYYMMDD` (century: `YY` < 50 is 20YY), `None` when
/// not 3 bytes of BCD with a month 1-12 and a day 1-31.
pub fn date_value(bytes: &[u8]) -> Option<u32> {
    let &[y, m, d] = bytes else {
        return None;
    };
    let bcd = |b: u8| {
        let (hi, lo) = (b >> 4, b & 0x0F);
        (hi <= 9 && lo <= 9).then_some(u32::from(hi) * 10 + u32::from(lo))
    };
    let (y, m, d) = (bcd(y)?, bcd(m)?, bcd(d)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let year = if y < 50 { 2000 + y } else { 1900 + y };
    Some(year * 10_000 + m * 100 + d)
}

fn check_dates(card: &CardData, terminal: &TerminalData, tvr: &mut Tvr) {
    let Some(today) = terminal.get(tags::TRANSACTION_DATE).and_then(date_value) else {
        return;
    };
    if let Some(effective) = card.get(tags::EFFECTIVE_DATE) {
        if date_value(effective).is_none_or(|d| d > today) {
            *tvr |= Tvr::APPLICATION_NOT_YET_EFFECTIVE;
        }
    }
    if let Some(expiry) = card.get(tags::EXPIRY_DATE) {
        if date_value(expiry).is_none_or(|d| d < today) {
            *tvr |= Tvr::EXPIRED_APPLICATION;
        }
    }
}
