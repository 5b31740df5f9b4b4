//! Initiate application processing (GET PROCESSING OPTIONS, EMV 4.3 Book 3 10.1) and read
//! application data (AFL-driven READ RECORD, Book 3 10.2).
//!
//! - [`initiate`]: the PDOL (if the FCI has one) built from [`TerminalData`], GET PROCESSING
//!   OPTIONS, and the response in format 1 (tag `80`: AIP, then AFL) or format 2 (template
//!   `77` with `82` AIP and `94` AFL). `6985` is an error for which
//!   [`EmvError::is_reselect`] is true: remove the application and select again, which
//!   [`select_and_initiate`] does; when no application is left it reports
//!   [`Cause::GpoRefused`] naming the applications that refused.
//! - [`read_application_data`]: every record the AFL names; records to be used in offline
//!   data authentication collected ([`CardData::oda_input`]: for SFI 1-10 the value of the
//!   record template `70`, for SFI 11-30 the whole record); the primitive data objects of
//!   the records kept by tag, a data object present twice rejected; `5A`, `5F24`, `8C` and
//!   `8D` required.
//!
//! The records hold the PAN and track data: [`CardData`]'s `Debug` shows tags and lengths
//! and the masked PAN only.

use std::collections::BTreeMap;
use std::fmt;

use pos_hal::CardChannel;

use crate::apdu::{Command, Response, exchange};
use crate::dol;
use crate::error::{Cause, EmvError, Step};
use crate::select::{self, Candidate, CandidateList, SelectedApp, SupportedAid};
use crate::tags;
use crate::terminal::TerminalData;
use crate::tlv::{self, Tag};

/// The most GET PROCESSING OPTIONS attempts of [`select_and_initiate`] (each `6985`
/// removes one candidate, so a card with fewer candidates ends earlier).
pub const MAX_SELECTION_ATTEMPTS: usize = 16;

/// The data objects a card must provide in its records (EMV Book 3 7.2): PAN, expiry date,
/// CDOL1, CDOL2.
pub const MANDATORY_TAGS: [Tag; 4] = [tags::PAN, tags::EXPIRY_DATE, tags::CDOL1, tags::CDOL2];

/// One entry of the Application File Locator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AflEntry {
    /// Short file identifier, 1..=30.
    pub sfi: u8,
    /// First record to read (1..).
    pub first: u8,
    /// Last record to read (>= `first`).
    pub last: u8,
    /// How many records, from `first`, take part in offline data authentication.
    pub oda_records: u8,
}

/// Parses an AFL (the value of `94`, or what follows the AIP in format 1): entries of 4
/// bytes `SFI<<3`, first record, last record, records for ODA.
///
/// # Errors
/// [`Cause::Malformed`] at [`Step::Gpo`]: a length not a multiple of 4, an SFI of 0 or 31,
/// a first record 0, a last record before the first, more ODA records than records.
pub fn parse_afl(bytes: &[u8]) -> Result<Vec<AflEntry>, EmvError> {
    let bad = |detail| EmvError::malformed(Step::Gpo, detail);
    if bytes.len() % 4 != 0 {
        return Err(bad("AFL length is not a multiple of 4"));
    }
    let mut out = Vec::with_capacity(bytes.len() / 4);
    for chunk in bytes.chunks_exact(4) {
        let &[b0, first, last, oda_records] = chunk else {
            return Err(bad("AFL length is not a multiple of 4"));
        };
        let sfi = b0 >> 3;
        if b0 & 0x07 != 0 || !(1..=30).contains(&sfi) {
            return Err(bad("AFL entry with an SFI outside 1..=30"));
        }
        if first == 0 || last < first {
            return Err(bad("AFL entry with a bad record range"));
        }
        if u16::from(oda_records) > u16::from(last) - u16::from(first) + 1 {
            return Err(bad("AFL entry with more ODA records than records"));
        }
        out.push(AflEntry {
            sfi,
            first,
            last,
            oda_records,
        });
    }
    Ok(out)
}

/// The outcome of GET PROCESSING OPTIONS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Processing {
    /// `82` Application Interchange Profile.
    pub aip: [u8; 2],
    /// `94` Application File Locator.
    pub afl: Vec<AflEntry>,
}

/// Parses a GET PROCESSING OPTIONS response body, format 1 (`80`) or format 2 (`77`).
///
/// # Errors
/// At [`Step::Gpo`]: [`Cause::Tlv`] for malformed TLV, [`Cause::MissingData`] for a format 2
/// response without `82` or `94`, [`Cause::Malformed`] for another template, an AIP not 2
/// bytes, a bad AFL ([`parse_afl`]).
pub fn parse_gpo_response(data: &[u8]) -> Result<Processing, EmvError> {
    let step = Step::Gpo;
    let top = tlv::parse_single(data).map_err(|e| EmvError::tlv(step, e))?;
    let (aip, afl) = if top.tag == tags::RESPONSE_FORMAT_1 {
        let (aip, afl) = top
            .value
            .split_first_chunk::<2>()
            .ok_or_else(|| EmvError::malformed(step, "format 1 response shorter than the AIP"))?;
        (*aip, afl)
    } else if top.tag == tags::RESPONSE_FORMAT_2 {
        let template = tlv::parse_template(data, tags::RESPONSE_FORMAT_2)
            .map_err(|e| EmvError::tlv(step, e))?;
        let mut aip = None;
        let mut afl = None;
        for child in template.children() {
            let child = child.map_err(|e| EmvError::tlv(step, e))?;
            if child.tag == tags::AIP {
                aip = Some(child.value);
            } else if child.tag == tags::AFL {
                afl = Some(child.value);
            }
        }
        let aip = aip.ok_or_else(|| EmvError::new(step, Cause::MissingData { tag: tags::AIP }))?;
        let afl = afl.ok_or_else(|| EmvError::new(step, Cause::MissingData { tag: tags::AFL }))?;
        let aip: [u8; 2] = aip
            .try_into()
            .map_err(|_| EmvError::malformed(step, "AIP is not 2 bytes"))?;
        (aip, afl)
    } else {
        return Err(EmvError::malformed(
            step,
            "GET PROCESSING OPTIONS response is neither format 1 (80) nor format 2 (77)",
        ));
    };
    Ok(Processing {
        aip,
        afl: parse_afl(afl)?,
    })
}

fn send<C: CardChannel>(ch: &mut C, step: Step, cmd: &Command) -> Result<Response, EmvError> {
    exchange(ch, cmd).map_err(|e| EmvError::exchange(step, e))
}

/// Initiate application processing: GET PROCESSING OPTIONS with the PDOL data built from
/// `terminal` (`83 00` when the application has no PDOL).
///
/// # Errors
/// At [`Step::Gpo`]: [`Cause::ConditionsNotSatisfied`] for `6985` (remove the application,
/// select again: [`EmvError::is_reselect`]), [`Cause::Status`] for other status words,
/// [`Cause::Tlv`] for a malformed PDOL, as [`parse_gpo_response`], channel failures.
pub fn initiate<C: CardChannel>(
    ch: &mut C,
    app: &SelectedApp,
    terminal: &TerminalData,
) -> Result<Processing, EmvError> {
    let step = Step::Gpo;
    let pdol_data = match &app.pdol {
        Some(pdol) => {
            let entries = dol::parse_dol(pdol).map_err(|e| EmvError::tlv(step, e))?;
            terminal.build_dol(&entries)
        }
        None => Vec::new(),
    };
    let resp = send(ch, step, &Command::get_processing_options(&pdol_data))?;
    match resp.sw() {
        0x9000 => parse_gpo_response(&resp.data),
        0x6985 => Err(EmvError::new(step, Cause::ConditionsNotSatisfied)),
        sw => Err(EmvError::status(step, sw)),
    }
}

/// Application selection and initiation with the EMV loop (Book 1 12.4): build the
/// candidate list, choose and select ([`select::final_selection`]), GET PROCESSING OPTIONS;
/// on `6985` the application is already out of the list and final selection runs again, at
/// most [`MAX_SELECTION_ATTEMPTS`] times.
///
/// # Errors
/// As [`select::build_candidate_list`], [`select::final_selection`] and [`initiate`] (other
/// than `6985`). When no candidate is left, or the attempts are used up, after at least one
/// application answered `6985`: [`Cause::GpoRefused`] at [`Step::Gpo`], naming those
/// applications (not [`Cause::NoApplication`], which is kept for a card with no supported
/// application at all).
pub fn select_and_initiate<C: CardChannel>(
    ch: &mut C,
    supported: &[SupportedAid],
    terminal: &TerminalData,
    chooser: &mut dyn FnMut(&[Candidate]) -> Option<usize>,
) -> Result<(SelectedApp, Processing), EmvError> {
    let mut list = select::build_candidate_list(ch, supported)?;
    initiate_from_list(ch, &mut list, terminal, chooser)
}

/// The second half of [`select_and_initiate`], for a caller that built the candidate list
/// itself (to keep it, e.g. to show which applications the card offered): final selection
/// and GET PROCESSING OPTIONS, selecting again on `6985`, at most
/// [`MAX_SELECTION_ATTEMPTS`] times. The candidates tried are removed from `list`.
///
/// # Errors
/// As [`select::final_selection`] and [`initiate`] (other than `6985`);
/// [`Cause::GpoRefused`] naming every application that refused GET PROCESSING OPTIONS when
/// no candidate is left.
pub fn initiate_from_list<C: CardChannel>(
    ch: &mut C,
    list: &mut CandidateList,
    terminal: &TerminalData,
    chooser: &mut dyn FnMut(&[Candidate]) -> Option<usize>,
) -> Result<(SelectedApp, Processing), EmvError> {
    let mut refused: Vec<Vec<u8>> = Vec::new();
    let refused_error =
        |refused: Vec<Vec<u8>>| EmvError::new(Step::Gpo, Cause::GpoRefused { aids: refused });
    for _ in 0..MAX_SELECTION_ATTEMPTS {
        let app = match select::final_selection(ch, list, chooser) {
            Ok(app) => app,
            Err(e) if matches!(e.cause(), Cause::NoApplication) && !refused.is_empty() => {
                return Err(refused_error(refused));
            }
            Err(e) => return Err(e),
        };
        match initiate(ch, &app, terminal) {
            Ok(processing) => return Ok((app, processing)),
            Err(e) if e.is_reselect() => {
                log::info!(
                    "GET PROCESSING OPTIONS of {} answered 6985: selecting another application",
                    app.candidate
                        .aid
                        .iter()
                        .map(|b| format!("{b:02X}"))
                        .collect::<String>()
                );
                refused.push(app.candidate.aid);
            }
            Err(e) => return Err(e),
        }
    }
    Err(refused_error(refused))
}

/// The application data read from the card's records.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CardData {
    /// Every record read, as the card sent it (READ RECORD response data), in AFL order.
    pub records: Vec<Vec<u8>>,
    /// The input to offline data authentication from the records the AFL marks for it.
    pub oda_input: Vec<u8>,
    /// The primitive data objects of the records by tag (each tag appears once).
    pub tags: BTreeMap<Tag, Vec<u8>>,
}

impl fmt::Debug for CardData {
    /// Record lengths, tags with value lengths and the masked PAN; never the data itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardData")
            .field(
                "records",
                &self.records.iter().map(Vec::len).collect::<Vec<_>>(),
            )
            .field("oda_input_len", &self.oda_input.len())
            .field(
                "tags",
                &self
                    .tags
                    .iter()
                    .map(|(t, v)| (*t, v.len()))
                    .collect::<Vec<_>>(),
            )
            .field("pan", &self.pan_masked())
            .finish()
    }
}

/// Decimal digits of BCD `bytes`, stopping at the first `F` nibble (padding); `None` for
/// another non-decimal nibble or a digit after the padding.
pub(crate) fn bcd_digits(bytes: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(bytes.len() * 2);
    let mut padded = false;
    for nibble in bytes.iter().flat_map(|b| [b >> 4, b & 0x0F]) {
        match nibble {
            0..=9 if !padded => out.push(char::from(b'0' + nibble)),
            0x0F => padded = true,
            _ => return None,
        }
    }
    Some(out)
}

impl CardData {
    /// The value of a primitive data object from the records.
    pub fn get(&self, tag: Tag) -> Option<&[u8]> {
        self.tags.get(&tag).map(Vec::as_slice)
    }

    /// The PAN (`5A`) masked with [`pos_hal::mask_pan`] (first 6 and last 4 digits), `None`
    /// when absent or not BCD.
    pub fn pan_masked(&self) -> Option<String> {
        let digits = bcd_digits(self.get(tags::PAN)?)?;
        Some(pos_hal::mask_pan(&digits))
    }

    /// The expiry date (`5F24`) as its six digits `YYMMDD`, `None` when absent or malformed.
    pub fn expiry(&self) -> Option<String> {
        let v = self.get(tags::EXPIRY_DATE)?;
        if v.len() != 3 {
            return None;
        }
        bcd_digits(v).filter(|d| d.len() == 6)
    }

    /// `8C` CDOL1.
    pub fn cdol1(&self) -> Option<&[u8]> {
        self.get(tags::CDOL1)
    }

    /// `8D` CDOL2.
    pub fn cdol2(&self) -> Option<&[u8]> {
        self.get(tags::CDOL2)
    }

    /// Adds the primitive objects of `buf`; a tag already present is an error at `step`.
    fn collect(&mut self, step: Step, buf: &[u8]) -> Result<(), EmvError> {
        let objects = tlv::flatten(buf).map_err(|e| EmvError::tlv(step, e))?;
        for o in objects {
            if self.tags.contains_key(&o.tag) {
                return Err(EmvError::new(step, Cause::DuplicateTag { tag: o.tag }));
            }
            self.tags.insert(o.tag, o.value.to_vec());
        }
        Ok(())
    }
}

/// Reads the records the AFL names and checks the mandatory data (see the
/// [module](self) documentation).
///
/// Records of SFI 1-10 must be one template `70`; records of SFI 11-30 are taken as they are
/// (their data objects are kept only when they are a template `70`).
///
/// # Errors
/// At [`Step::ReadRecord`]: channel failures, [`Cause::Status`] for a record not answered
/// `9000`, [`Cause::Tlv`] for a malformed record, [`Cause::DuplicateTag`]. At
/// [`Step::CheckData`]: [`Cause::MissingData`] naming the first of [`MANDATORY_TAGS`]
/// missing.
pub fn read_application_data<C: CardChannel>(
    ch: &mut C,
    afl: &[AflEntry],
) -> Result<CardData, EmvError> {
    let mut data = CardData::default();
    for entry in afl {
        for record in entry.first..=entry.last {
            let step = Step::ReadRecord {
                sfi: entry.sfi,
                record,
            };
            let cmd = Command::read_record(entry.sfi, record)
                .map_err(|_| EmvError::malformed(step, "AFL entry out of range"))?;
            let resp = send(ch, step, &cmd)?;
            if !resp.is_success() {
                return Err(EmvError::status(step, resp.sw()));
            }
            let for_oda = u16::from(record) - u16::from(entry.first) < u16::from(entry.oda_records);
            if entry.sfi <= 10 {
                let template = tlv::parse_template(&resp.data, tags::RECORD_TEMPLATE)
                    .map_err(|e| EmvError::tlv(step, e))?;
                if for_oda {
                    data.oda_input.extend_from_slice(template.value);
                }
                data.collect(step, template.value)?;
            } else {
                if for_oda {
                    data.oda_input.extend_from_slice(&resp.data);
                }
                if let Ok(template) = tlv::parse_template(&resp.data, tags::RECORD_TEMPLATE) {
                    data.collect(step, template.value)?;
                }
            }
            data.records.push(resp.data);
        }
    }
    if let Some(tag) = MANDATORY_TAGS.iter().find(|t| !data.tags.contains_key(t)) {
        return Err(EmvError::new(
            Step::CheckData,
            Cause::MissingData { tag: *tag },
        ));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn afl_entries_are_checked() {
        let afl = parse_afl(&[0x10, 0x02, 0x02, 0x01, 0x18, 0x01, 0x01, 0x00]).unwrap();
        assert_eq!(
            afl,
            [
                AflEntry {
                    sfi: 2,
                    first: 2,
                    last: 2,
                    oda_records: 1
                },
                AflEntry {
                    sfi: 3,
                    first: 1,
                    last: 1,
                    oda_records: 0
                }
            ]
        );
        for bad in [
            &[0x10, 0x01, 0x01][..],
            &[0x00, 0x01, 0x01, 0x00],
            &[0xF8, 0x01, 0x01, 0x00],
            &[0x11, 0x01, 0x01, 0x00],
            &[0x10, 0x00, 0x01, 0x00],
            &[0x10, 0x02, 0x01, 0x00],
            &[0x10, 0x01, 0x02, 0x03],
        ] {
            assert!(parse_afl(bad).is_err(), "{bad:02X?}");
        }
    }

    #[test]
    fn bcd_digits_stop_at_padding() {
        assert_eq!(bcd_digits(&[0x12, 0x3F]).as_deref(), Some("123"));
        assert_eq!(bcd_digits(&[0x12, 0xFF]).as_deref(), Some("12"));
        assert_eq!(bcd_digits(&[0x1A]), None);
        assert_eq!(bcd_digits(&[0xF1]), None);
    }
}
