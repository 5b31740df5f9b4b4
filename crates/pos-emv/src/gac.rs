//! GENERATE APPLICATION CRYPTOGRAM (EMV 4.3 Book 3 6.5.5 and 9.2; Book 2 6.6 for CDA).
//!
//! - [`cdol_data`]: the data CDOL1 (`8C`) or CDOL2 (`8D`) asks for, built from
//!   [`TerminalData`] with the current TVR (`95`) and TSI (`9B`) put in first.
//! - [`generate_ac`]: sends `80 AE P1 00 Lc data 00` with the reference control parameter
//!   the caller decided (terminal action analysis is not done here: `00` AAC, `40` TC, `80`
//!   ARQC, plus `10` to ask for CDA) and parses the answer.
//! - [`GacResponse::parse`]: response format 1 (`80`: CID, ATC, AC, IAD) and format 2
//!   (template `77` with `9F27`, `9F36`, `9F26`, optional `9F10` and, for CDA, `9F4B`).
//!
//! A card answering a cryptogram of a *higher* type than asked (TC for AAC, ARQC for TC or
//! AAC) breaks EMV Book 3 9.3 and is rejected as malformed.
//!
//! Nothing here logs the cryptogram or the command data: only lengths, the CID and status
//! words.

use std::fmt;

use pos_hal::CardChannel;

use crate::apdu::{Command, exchange};
use crate::dol;
use crate::error::{EmvError, Step};
use crate::record::StepLog;
use crate::tags;
use crate::terminal::{self, TerminalData};
use crate::tlv::{self, Tag};
use crate::tvr::{Tsi, Tvr};

/// Reference control parameter (P1) for an AAC.
pub const P1_AAC: u8 = 0x00;
/// Reference control parameter (P1) for a TC.
pub const P1_TC: u8 = 0x40;
/// Reference control parameter (P1) for an ARQC.
pub const P1_ARQC: u8 = 0x80;
/// P1 bit asking for combined DDA / AC generation (CDA).
pub const P1_CDA: u8 = 0x10;

/// `9F4B` Signed Dynamic Application Data.
pub const SDAD: Tag = Tag::new(0x9F4B);
/// `9F36` Application Transaction Counter.
pub const ATC: Tag = Tag::new(0x9F36);

/// The type of application cryptogram, from bits 8-7 of the CID (`9F27`) or of P1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CryptogramType {
    /// Application Authentication Cryptogram: declined (`00`).
    Aac,
    /// Transaction Certificate: approved (`40`).
    Tc,
    /// Authorisation Request Cryptogram: go online (`80`).
    Arqc,
}

impl CryptogramType {
    /// The type coded in bits 8-7 of `byte` (a CID or a GENERATE AC P1); `None` for the
    /// reserved value `11`.
    pub fn from_bits(byte: u8) -> Option<Self> {
        match byte & 0xC0 {
            0x00 => Some(CryptogramType::Aac),
            0x40 => Some(CryptogramType::Tc),
            0x80 => Some(CryptogramType::Arqc),
            _ => None,
        }
    }

    /// The P1 bits asking for this type (without the CDA bit).
    pub fn p1(self) -> u8 {
        match self {
            CryptogramType::Aac => P1_AAC,
            CryptogramType::Tc => P1_TC,
            CryptogramType::Arqc => P1_ARQC,
        }
    }

    /// AAC < TC < ARQC: the order in which a card may downgrade a request.
    fn rank(self) -> u8 {
        match self {
            CryptogramType::Aac => 0,
            CryptogramType::Tc => 1,
            CryptogramType::Arqc => 2,
        }
    }
}

impl fmt::Display for CryptogramType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CryptogramType::Aac => "AAC",
            CryptogramType::Tc => "TC",
            CryptogramType::Arqc => "ARQC",
        })
    }
}

/// Which response format the card used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseFormat {
    /// Tag `80`: CID, ATC, AC, IAD concatenated.
    Format1,
    /// Template `77`.
    Format2,
}

/// A parsed GENERATE AC response.
///
/// `Debug` shows the CID, the ATC and lengths, never the cryptogram or the IAD.
#[derive(Clone, PartialEq, Eq)]
pub struct GacResponse {
    /// The response format.
    pub format: ResponseFormat,
    /// `9F27` Cryptogram Information Data.
    pub cid: u8,
    /// `9F36` Application Transaction Counter.
    pub atc: [u8; 2],
    /// `9F26` Application Cryptogram; `None` in a CDA response that carries it only inside
    /// `9F4B` (recover it with [`crate::oda::verify_cda`]).
    pub cryptogram: Option<[u8; 8]>,
    /// `9F10` Issuer Application Data (empty when absent).
    pub iad: Vec<u8>,
    /// `9F4B` Signed Dynamic Application Data (CDA), format 2 only.
    pub sdad: Option<Vec<u8>>,
    /// The value of the response template `77` (format 2; empty for format 1): the input
    /// [`crate::oda::verify_cda`] wants.
    pub template: Vec<u8>,
}

impl fmt::Debug for GacResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GacResponse")
            .field("format", &self.format)
            .field("cid", &format_args!("{:02X}", self.cid))
            .field("type", &self.cryptogram_type())
            .field(
                "atc",
                &format_args!("{:02X}{:02X}", self.atc[0], self.atc[1]),
            )
            .field("cryptogram_present", &self.cryptogram.is_some())
            .field("iad_len", &self.iad.len())
            .field("sdad_len", &self.sdad.as_ref().map(Vec::len))
            .finish()
    }
}

impl GacResponse {
    /// Parses GENERATE AC response data (format 1 or 2); errors are reported at `step`.
    ///
    /// # Errors
    /// [`crate::Cause::Tlv`] for malformed TLV; [`crate::Cause::Malformed`] for another
    /// template, a format 1 value shorter than 11 bytes, a missing or wrongly sized
    /// `9F27` / `9F36` / `9F26`, or a format 2 response with neither `9F26` nor `9F4B`.
    pub fn parse(data: &[u8], step: Step) -> Result<GacResponse, EmvError> {
        let top = tlv::parse_single(data).map_err(|e| EmvError::tlv(step, e))?;
        if top.tag == tags::RESPONSE_FORMAT_1 {
            let v = top.value;
            let (&cid, rest) = v
                .split_first()
                .ok_or_else(|| EmvError::malformed(step, "format 1 response is empty"))?;
            let (atc, rest) = rest
                .split_first_chunk::<2>()
                .ok_or_else(|| EmvError::malformed(step, "format 1 response without ATC"))?;
            let (ac, iad) = rest.split_first_chunk::<8>().ok_or_else(|| {
                EmvError::malformed(step, "format 1 response without a full cryptogram")
            })?;
            Ok(GacResponse {
                format: ResponseFormat::Format1,
                cid,
                atc: *atc,
                cryptogram: Some(*ac),
                iad: iad.to_vec(),
                sdad: None,
                template: Vec::new(),
            })
        } else if top.tag == tags::RESPONSE_FORMAT_2 {
            let template = tlv::parse_template(data, tags::RESPONSE_FORMAT_2)
                .map_err(|e| EmvError::tlv(step, e))?;
            let (mut cid, mut atc, mut ac, mut iad, mut sdad) = (None, None, None, None, None);
            for child in template.children() {
                let child = child.map_err(|e| EmvError::tlv(step, e))?;
                if child.tag == tags::CID {
                    cid = Some(child.value);
                } else if child.tag == ATC {
                    atc = Some(child.value);
                } else if child.tag == tags::APP_CRYPTOGRAM {
                    ac = Some(child.value);
                } else if child.tag == tags::ISSUER_APP_DATA {
                    iad = Some(child.value);
                } else if child.tag == SDAD {
                    sdad = Some(child.value);
                }
            }
            let cid = match cid {
                Some(&[c]) => c,
                _ => return Err(EmvError::malformed(step, "9F27 missing or not 1 byte")),
            };
            let atc: [u8; 2] = atc
                .and_then(|a| a.try_into().ok())
                .ok_or_else(|| EmvError::malformed(step, "9F36 missing or not 2 bytes"))?;
            let cryptogram: Option<[u8; 8]> = match ac {
                Some(a) => Some(
                    a.try_into()
                        .map_err(|_| EmvError::malformed(step, "9F26 is not 8 bytes"))?,
                ),
                None if sdad.is_some() => None,
                None => return Err(EmvError::malformed(step, "9F26 missing")),
            };
            Ok(GacResponse {
                format: ResponseFormat::Format2,
                cid,
                atc,
                cryptogram,
                iad: iad.map(<[u8]>::to_vec).unwrap_or_default(),
                sdad: sdad.map(<[u8]>::to_vec),
                template: template.value.to_vec(),
            })
        } else {
            Err(EmvError::malformed(
                step,
                "GENERATE AC response is neither format 1 (80) nor format 2 (77)",
            ))
        }
    }

    /// The cryptogram type from the CID; `None` for the reserved value.
    pub fn cryptogram_type(&self) -> Option<CryptogramType> {
        CryptogramType::from_bits(self.cid)
    }

    /// CID bit 4: the card asks for an advice.
    pub fn advice_required(&self) -> bool {
        self.cid & 0x08 != 0
    }

    /// CID bits 3-1: the reason or advice code (`001` service not allowed, `010` PIN try
    /// limit exceeded, `011` issuer authentication failed).
    pub fn reason_code(&self) -> u8 {
        self.cid & 0x07
    }
}

/// One GENERATE AC as it was sent and answered.
#[derive(Clone, PartialEq, Eq)]
pub struct GacResult {
    /// The reference control parameter sent.
    pub p1: u8,
    /// The CDOL data sent (for CDA: part of the transaction data to hash).
    pub cdol_data: Vec<u8>,
    /// The parsed answer.
    pub response: GacResponse,
}

impl fmt::Debug for GacResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GacResult")
            .field("p1", &format_args!("{:02X}", self.p1))
            .field("cdol_data_len", &self.cdol_data.len())
            .field("response", &self.response)
            .finish()
    }
}

/// The data the CDOL `cdol` (value of `8C` or `8D`) asks for: `terminal`'s values, with
/// `95` set to `tvr`, `9B` to `tsi` and each of `extra` (e.g. `8A`, `91` for CDOL2) put in
/// first.
///
/// # Errors
/// [`crate::Cause::Tlv`] at `step` for a malformed CDOL.
pub fn cdol_data(
    cdol: &[u8],
    terminal: &TerminalData,
    tvr: Tvr,
    tsi: Tsi,
    extra: &[(Tag, &[u8])],
    step: Step,
) -> Result<Vec<u8>, EmvError> {
    let entries = dol::parse_dol(cdol).map_err(|e| EmvError::tlv(step, e))?;
    let mut t = terminal.clone();
    t.set(tags::TVR, tvr.to_bytes().to_vec());
    t.set(terminal::TSI, tsi.to_bytes().to_vec());
    for (tag, value) in extra {
        t.set(*tag, value.to_vec());
    }
    Ok(t.build_dol(&entries))
}

/// Sends GENERATE AC with `p1` and `data` (already built CDOL data) at `step`, parses the
/// answer and records the exchange in `log`.
///
/// # Errors
/// At `step`: channel failures (a removed card keeps [`pos_hal::FaultKind::CardRemoved`]),
/// [`crate::Cause::Status`] for status words other than `9000`, as [`GacResponse::parse`],
/// [`crate::Cause::Malformed`] for a reserved CID or a cryptogram of a higher type than
/// asked.
pub fn generate_ac<C: CardChannel>(
    ch: &mut C,
    step: Step,
    p1: u8,
    data: Vec<u8>,
    log: &mut Vec<StepLog>,
) -> Result<GacResult, EmvError> {
    let cmd = Command::generate_ac(p1, &data);
    let resp = match exchange(ch, &cmd) {
        Ok(r) => r,
        Err(e) => {
            log.push(StepLog::new(step, 1, None, "no answer from the card"));
            return Err(EmvError::exchange(step, e));
        }
    };
    let sw = resp.sw();
    if sw != 0x9000 {
        log.push(StepLog::new(step, 1, Some(sw), "refused"));
        return Err(EmvError::status(step, sw));
    }
    let response = match GacResponse::parse(&resp.data, step) {
        Ok(r) => r,
        Err(e) => {
            log.push(StepLog::new(step, 1, Some(sw), "malformed answer"));
            return Err(e);
        }
    };
    let Some(got) = response.cryptogram_type() else {
        log.push(StepLog::new(step, 1, Some(sw), "reserved cryptogram type"));
        return Err(EmvError::malformed(
            step,
            "CID with the reserved cryptogram type 11",
        ));
    };
    let asked = CryptogramType::from_bits(p1).unwrap_or(CryptogramType::Arqc);
    if got.rank() > asked.rank() {
        log.push(StepLog::new(
            step,
            1,
            Some(sw),
            "cryptogram above the one asked",
        ));
        return Err(EmvError::malformed(
            step,
            "card returned a cryptogram of a higher type than asked",
        ));
    }
    log::debug!(
        "{step}: asked {asked} (P1 {p1:02X}), card gave {got} (CID {:02X}), {:?}",
        response.cid,
        response.format
    );
    log.push(StepLog::new(
        step,
        1,
        Some(sw),
        format!("asked {asked}, card gave {got} (CID {:02X})", response.cid),
    ));
    Ok(GacResult {
        p1,
        cdol_data: data,
        response,
    })
}

/// The first GENERATE AC: CDOL1 (`8C` of `cdol1`) built from `terminal` with `tvr` and
/// `tsi`, sent with `p1` at [`Step::GenerateAc1`].
///
/// # Errors
/// As [`cdol_data`] and [`generate_ac`], at [`Step::GenerateAc1`].
pub fn first_generate_ac<C: CardChannel>(
    ch: &mut C,
    cdol1: &[u8],
    terminal: &TerminalData,
    tvr: Tvr,
    tsi: Tsi,
    p1: u8,
    log: &mut Vec<StepLog>,
) -> Result<GacResult, EmvError> {
    let step = Step::GenerateAc1;
    let data = cdol_data(cdol1, terminal, tvr, tsi, &[], step)?;
    generate_ac(ch, step, p1, data, log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cid_types() {
        assert_eq!(CryptogramType::from_bits(0x80), Some(CryptogramType::Arqc));
        assert_eq!(CryptogramType::from_bits(0x40), Some(CryptogramType::Tc));
        assert_eq!(CryptogramType::from_bits(0x08), Some(CryptogramType::Aac));
        assert_eq!(CryptogramType::from_bits(0xC0), None);
        assert_eq!(CryptogramType::Tc.p1() | P1_CDA, 0x50);
    }

    #[test]
    fn short_or_odd_responses_are_errors() {
        let step = Step::GenerateAc1;
        for bad in [
            &[0x80, 0x00][..],
            &[0x80, 0x03, 0x80, 0x00, 0x01],
            &[0x80, 0x0A, 0x80, 0x00, 0x01, 1, 2, 3, 4, 5, 6, 7],
            &[0x77, 0x03, 0x9F, 0x27, 0x01],
            &[0x77, 0x07, 0x9F, 0x27, 0x01, 0x80, 0x9F, 0x36, 0x00],
            &[0x77, 0x08, 0x9F, 0x27, 0x01, 0x80, 0x9F, 0x36, 0x01, 0x00],
            &[0x70, 0x00],
            &[0x77, 0x81],
        ] {
            assert!(GacResponse::parse(bad, step).is_err(), "{bad:02X?}");
        }
    }
}
