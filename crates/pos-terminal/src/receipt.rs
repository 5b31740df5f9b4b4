//! The receipt, composed from the journal row (so a reprint is the same receipt): masked
//! PAN only, never track data.

use pos_acquirer::Operation;
use pos_hal::{Align, CutKind, Document, TextStyle};

use crate::config::Config;
use crate::journal::Txn;
use crate::time;

/// An amount in minor units as `12.50`.
pub fn money(minor: u64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// The currency's letters for the common ISO 4217 numeric codes, else the number.
pub fn currency_name(code: u16) -> String {
    match code {
        978 => "EUR".into(),
        840 => "USD".into(),
        826 => "GBP".into(),
        756 => "CHF".into(),
        156 => "CNY".into(),
        392 => "JPY".into(),
        752 => "SEK".into(),
        985 => "PLN".into(),
        _ => format!("{code:03}"),
    }
}

fn title(op: Operation) -> &'static str {
    match op {
        Operation::Sale => "SALE",
        Operation::PreAuth => "PRE-AUTHORIZATION",
        Operation::Completion => "COMPLETION",
        Operation::Void => "VOID",
        Operation::Refund => "REFUND",
    }
}

fn lines(config: &Config, t: &Txn, duplicate: bool) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    for l in config.merchant_name.lines() {
        out.push((l.to_string(), true));
    }
    out.push((
        format!("TID {}  MID {}", config.terminal_id, config.merchant_id),
        false,
    ));
    out.push((time::human(t.created_ms), false));
    if duplicate {
        out.push(("*** DUPLICATE ***".into(), true));
    }
    out.push((title(t.kind).to_string(), true));
    if let Some(p) = &t.pan_masked {
        out.push((format!("CARD {p}"), false));
    }
    if let Some(label) = &t.label {
        out.push((label.clone(), false));
    }
    if let Some(aid) = &t.aid {
        out.push((format!("AID {aid}"), false));
    }
    if let Some(m) = &t.entry_mode {
        out.push((format!("ENTRY {}", m.to_uppercase()), false));
    }
    out.push((
        format!("AMOUNT {} {}", currency_name(t.currency), money(t.amount)),
        true,
    ));
    out.push((
        format!(
            "AUTH {}  RRN {}",
            t.auth_code.as_deref().unwrap_or("-"),
            t.rrn.as_deref().unwrap_or("-")
        ),
        false,
    ));
    out.push((
        format!(
            "TXN {}  STAN {}",
            t.id,
            t.stan
                .map(|s| format!("{s:06}"))
                .unwrap_or_else(|| "-".into())
        ),
        false,
    ));
    out.push(("APPROVED".into(), true));
    out.push(("CARDHOLDER COPY".into(), false));
    out
}

/// The receipt as a printable document.
pub fn document(config: &Config, t: &Txn, duplicate: bool) -> Document {
    let mut doc = Document::new();
    for (line, strong) in lines(config, t, duplicate) {
        if strong {
            doc.text_styled(line, TextStyle::new().bold().align(Align::Center));
        } else {
            doc.text(line);
        }
    }
    doc.feed(2).cut(CutKind::Partial);
    doc
}

/// The receipt as plain text (what `posctl` shows).
pub fn text(config: &Config, t: &Txn, duplicate: bool) -> String {
    lines(config, t, duplicate)
        .into_iter()
        .map(|(l, _)| l)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_currency() {
        assert_eq!(money(1250), "12.50");
        assert_eq!(money(5), "0.05");
        assert_eq!(currency_name(978), "EUR");
        assert_eq!(currency_name(4), "004");
    }
}
