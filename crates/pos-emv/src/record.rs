//! The result of a transaction for the host and for technicians: [`TransactionRecord`]
//! (masked PAN, application, cryptogram data, TVR/TSI, the ICC data field for the host
//! message) and the step log ([`StepLog`]).
//!
//! The full PAN is never kept here: the record holds the masked PAN only, and its `Debug`
//! and `Display` show neither the cryptogram nor the ICC data bytes (lengths only). The
//! ICC data field (ISO 8583 field 55) holds the cryptogram because the host needs it; it
//! holds no PAN or track data.

use std::fmt;

use crate::error::Step;
use crate::gac::{self, CryptogramType, GacResponse};
use crate::read::{CardData, Processing, bcd_digits};
use crate::select::SelectedApp;
use crate::tags;
use crate::terminal::{self, TerminalData};
use crate::tlv::{self, Tag};
use crate::tvr::{Tsi, Tvr};
use pos_hal::Sensitive;

/// One step of the flow, for technicians: which step, how many commands, the last status
/// words, a short note (never card data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepLog {
    /// The step.
    pub step: Step,
    /// Commands sent in the step (GET RESPONSE rounds not counted).
    pub commands: usize,
    /// The last status words the card answered, `None` when it did not answer.
    pub sw: Option<u16>,
    /// What happened, in a few words.
    pub note: String,
}

impl StepLog {
    /// A log line.
    pub fn new(step: Step, commands: usize, sw: Option<u16>, note: impl Into<String>) -> Self {
        StepLog {
            step,
            commands,
            sw,
            note: note.into(),
        }
    }
}

impl fmt::Display for StepLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} command(s), ", self.step, self.commands)?;
        match self.sw {
            Some(sw) => write!(f, "SW {sw:04X}")?,
            None => f.write_str("no answer")?,
        }
        if !self.note.is_empty() {
            write!(f, ", {}", self.note)?;
        }
        Ok(())
    }
}

/// The tags of the ICC data field, in the order [`icc_data`] writes them.
pub const ICC_DATA_TAGS: [Tag; 22] = [
    tags::APP_CRYPTOGRAM,
    tags::CID,
    tags::ISSUER_APP_DATA,
    tags::UNPREDICTABLE_NUMBER,
    gac::ATC,
    tags::TVR,
    tags::TRANSACTION_DATE,
    tags::TRANSACTION_TYPE,
    tags::AMOUNT_AUTHORISED,
    tags::TRANSACTION_CURRENCY_CODE,
    tags::AIP,
    tags::TERMINAL_COUNTRY_CODE,
    tags::AMOUNT_OTHER,
    tags::TERMINAL_CAPABILITIES,
    CVM_RESULTS,
    tags::TERMINAL_TYPE,
    tags::DF_NAME,
    tags::APP_VERSION_TERMINAL,
    tags::PAN_SEQUENCE_NUMBER,
    terminal::TSI,
    tags::TRANSACTION_TIME,
    gac::SDAD,
];

/// `9F34` CVM Results.
pub const CVM_RESULTS: Tag = Tag::new(0x9F34);
/// `9F5B` Issuer Script Results (terminal proprietary tag commonly used in field 55).
pub const ISSUER_SCRIPT_RESULTS: Tag = Tag::new(0x9F5B);

/// What [`icc_data`] and [`TransactionRecord::new`] draw from.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    /// The application selected.
    pub app: &'a SelectedApp,
    /// GET PROCESSING OPTIONS' outcome (the AIP).
    pub processing: &'a Processing,
    /// The records read.
    pub card: &'a CardData,
    /// The terminal data the CDOLs were built from.
    pub terminal: &'a TerminalData,
    /// The GENERATE AC answer the record is for (the ARQC for an authorisation request, the
    /// final TC or AAC for clearing).
    pub gac: &'a GacResponse,
    /// TVR as sent.
    pub tvr: Tvr,
    /// TSI.
    pub tsi: Tsi,
}

impl fmt::Debug for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sources")
            .field("gac", self.gac)
            .field("tvr", &self.tvr)
            .field("tsi", &self.tsi)
            .finish_non_exhaustive()
    }
}

/// The value of `tag` for the ICC data field, when the transaction has it.
fn value_of(s: &Sources<'_>, tag: Tag) -> Option<Vec<u8>> {
    let g = s.gac;
    let v = match tag {
        t if t == tags::APP_CRYPTOGRAM => g.cryptogram?.to_vec(),
        t if t == tags::CID => vec![g.cid],
        t if t == tags::ISSUER_APP_DATA => {
            if g.iad.is_empty() {
                return None;
            }
            g.iad.clone()
        }
        t if t == gac::ATC => g.atc.to_vec(),
        t if t == gac::SDAD => g.sdad.clone()?,
        t if t == tags::TVR => s.tvr.to_bytes().to_vec(),
        t if t == terminal::TSI => s.tsi.to_bytes().to_vec(),
        t if t == tags::AIP => s.processing.aip.to_vec(),
        t if t == tags::DF_NAME => s.app.candidate.aid.clone(),
        t if t == tags::PAN_SEQUENCE_NUMBER => s.card.get(tag)?.to_vec(),
        _ => s.terminal.get(tag)?.to_vec(),
    };
    Some(v)
}

/// The ICC data field for the host (ISO 8583 field 55): the [`ICC_DATA_TAGS`] the
/// transaction has, as BER-TLV, in that order.
pub fn icc_data(s: &Sources<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    for tag in ICC_DATA_TAGS {
        if let Some(v) = value_of(s, tag) {
            tlv::encode(tag, &v, &mut out);
        }
    }
    out
}

/// Decimal value of BCD bytes, `None` for a non-decimal nibble.
fn bcd_value(bytes: &[u8]) -> Option<u64> {
    bytes
        .iter()
        .flat_map(|b| [b >> 4, b & 0x0F])
        .try_fold(0u64, |acc, d| {
            (d <= 9).then(|| acc.saturating_mul(10).saturating_add(u64::from(d)))
        })
}

fn bcd_string(bytes: &[u8]) -> Option<String> {
    bytes
        .iter()
        .flat_map(|b| [b >> 4, b & 0x0F])
        .map(|d| (d <= 9).then(|| char::from(b'0' + d)))
        .collect()
}

/// A completed EMV transaction (approved, declined or awaiting the caller's reversal
/// decision). See the [module](self) documentation for what it never shows.
#[derive(Clone, PartialEq, Eq)]
pub struct TransactionRecord {
    /// The PAN masked (first 6, last 4 digits).
    pub pan_masked: Option<String>,
    /// The full PAN (ASCII digits), for the authorisation request only: wiped on drop,
    /// never shown by `Debug` or `Display`. Do not store or log it.
    pub pan: Option<Sensitive>,
    /// `5F34` PAN Sequence Number.
    pub pan_sequence: Option<u8>,
    /// Expiry date `YYMMDD`.
    pub expiry: Option<String>,
    /// The AID (ADF name) selected.
    pub aid: Vec<u8>,
    /// The application label or preferred name.
    pub label: Option<String>,
    /// `9F27` CID of the GENERATE AC answer.
    pub cid: u8,
    /// Cryptogram type from the CID.
    pub cryptogram_type: Option<CryptogramType>,
    /// `9F26` Application Cryptogram (`None` when only inside a CDA signature).
    pub cryptogram: Option<[u8; 8]>,
    /// `9F36` ATC.
    pub atc: [u8; 2],
    /// `9F10` Issuer Application Data.
    pub iad: Vec<u8>,
    /// Terminal Verification Results.
    pub tvr: Tvr,
    /// Transaction Status Information.
    pub tsi: Tsi,
    /// `9F02` Amount, Authorised in minor units.
    pub amount: Option<u64>,
    /// `5F2A` Transaction Currency Code (ISO 4217 numeric).
    pub currency: Option<u16>,
    /// `9A` Transaction Date `YYMMDD`.
    pub date: Option<String>,
    /// `9C` Transaction Type.
    pub transaction_type: Option<u8>,
    /// `9F37` Unpredictable Number.
    pub unpredictable_number: Option<[u8; 4]>,
    /// `8A` Authorisation Response Code from the host, when the transaction went online.
    pub arc: Option<[u8; 2]>,
    /// Issuer script results, 5 bytes per script (as `9F5B`).
    pub script_results: Vec<u8>,
    /// The ICC data field (field 55) ([`icc_data`]).
    pub icc_data: Vec<u8>,
    /// The step log.
    pub steps: Vec<StepLog>,
}

impl TransactionRecord {
    /// A record from the transaction's data and step log.
    pub fn new(s: &Sources<'_>, steps: Vec<StepLog>) -> Self {
        let t = s.terminal;
        TransactionRecord {
            pan_masked: s.card.pan_masked(),
            pan: s
                .card
                .get(tags::PAN)
                .and_then(bcd_digits)
                .map(|d| Sensitive::new(d.into_bytes())),
            pan_sequence: s
                .card
                .get(tags::PAN_SEQUENCE_NUMBER)
                .and_then(bcd_value)
                .and_then(|v| u8::try_from(v).ok()),
            expiry: s.card.expiry(),
            aid: s.app.candidate.aid.clone(),
            label: s
                .app
                .candidate
                .label
                .clone()
                .or_else(|| s.app.candidate.preferred_name.clone()),
            cid: s.gac.cid,
            cryptogram_type: s.gac.cryptogram_type(),
            cryptogram: s.gac.cryptogram,
            atc: s.gac.atc,
            iad: s.gac.iad.clone(),
            tvr: s.tvr,
            tsi: s.tsi,
            amount: t.get(tags::AMOUNT_AUTHORISED).and_then(bcd_value),
            currency: t
                .get(tags::TRANSACTION_CURRENCY_CODE)
                .and_then(bcd_value)
                .and_then(|v| u16::try_from(v).ok()),
            date: t.get(tags::TRANSACTION_DATE).and_then(bcd_string),
            transaction_type: t
                .get(tags::TRANSACTION_TYPE)
                .and_then(|v| v.first().copied()),
            unpredictable_number: t
                .get(tags::UNPREDICTABLE_NUMBER)
                .and_then(|v| v.try_into().ok()),
            arc: t
                .get(tags::AUTH_RESPONSE_CODE)
                .and_then(|v| v.try_into().ok()),
            script_results: Vec::new(),
            icc_data: icc_data(s),
            steps,
        }
    }

    /// The same record with the issuer script results (5 bytes per script), also appended
    /// to the ICC data field as `9F5B` when not empty.
    pub fn with_script_results(mut self, results: Vec<u8>) -> Self {
        if !results.is_empty() {
            tlv::encode(ISSUER_SCRIPT_RESULTS, &results, &mut self.icc_data);
        }
        self.script_results = results;
        self
    }

    /// The ICC data field (field 55).
    pub fn icc_data(&self) -> &[u8] {
        &self.icc_data
    }
}

impl fmt::Debug for TransactionRecord {
    /// Masked PAN; the cryptogram, IAD and ICC data as lengths only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransactionRecord")
            .field("pan_masked", &self.pan_masked)
            .field("expiry", &self.expiry)
            .field("aid", &hex::encode_upper(&self.aid))
            .field("label", &self.label)
            .field("cid", &format_args!("{:02X}", self.cid))
            .field("cryptogram_type", &self.cryptogram_type)
            .field("cryptogram_present", &self.cryptogram.is_some())
            .field("atc", &hex::encode_upper(self.atc))
            .field("iad_len", &self.iad.len())
            .field("tvr", &hex::encode_upper(self.tvr.to_bytes()))
            .field("tsi", &hex::encode_upper(self.tsi.to_bytes()))
            .field("amount", &self.amount)
            .field("currency", &self.currency)
            .field("date", &self.date)
            .field("transaction_type", &self.transaction_type)
            .field("arc", &self.arc.map(hex::encode_upper))
            .field("script_results", &hex::encode_upper(&self.script_results))
            .field("icc_data_len", &self.icc_data.len())
            .field("steps", &self.steps)
            .finish()
    }
}

impl fmt::Display for TransactionRecord {
    /// A technician's summary: one header line, then the step log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} AID {} ({}) ",
            self.pan_masked.as_deref().unwrap_or("(no PAN)"),
            hex::encode_upper(&self.aid),
            self.label.as_deref().unwrap_or("no label"),
        )?;
        match self.cryptogram_type {
            Some(t) => write!(f, "{t}")?,
            None => f.write_str("unknown cryptogram")?,
        }
        write!(
            f,
            " ATC {} TVR {} TSI {}",
            hex::encode_upper(self.atc),
            hex::encode_upper(self.tvr.to_bytes()),
            hex::encode_upper(self.tsi.to_bytes())
        )?;
        if let Some(arc) = self.arc {
            write!(f, " ARC {}", hex::encode_upper(arc))?;
        }
        for s in &self.steps {
            write!(f, "\n  {s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_helpers() {
        assert_eq!(bcd_value(&[0x00, 0x12, 0x34]), Some(1234));
        assert_eq!(bcd_value(&[0x1A]), None);
        assert_eq!(bcd_string(&[0x24, 0x12, 0x31]).as_deref(), Some("241231"));
        assert_eq!(bcd_string(&[0xF0]), None);
    }
}
