//! Application selection (EMV 4.3 Book 1 clause 12): building the candidate list, by the
//! Payment System Environment directory or by the terminal's list of AIDs, and final
//! selection.
//!
//! - [`build_candidate_list`]: SELECT `1PAY.SYS.DDF01`. `9000`: the directory records of
//!   the SFI named in its FCI are read (record 1, 2, ... until `6A83`) and every entry
//!   (template `61`) whose ADF name the terminal supports becomes a candidate. `6A81` (card
//!   blocked, or SELECT not supported) ends the session. Any other answer, a malformed
//!   directory, or a directory with no supported application: the list-of-AIDs method, for
//!   each supported AID a SELECT with P2 `00`, and, while the card answers `9000`/`6283`
//!   with a longer DF name (partial name selection), SELECT "next" (P2 `02`). An application
//!   answering `6283` (selected file invalidated: the application is blocked) is never a
//!   candidate. The list is ordered by priority (tag `87` bits 4-1, 1 highest; no priority
//!   last; equal priorities keep the order found).
//! - [`final_selection`]: one candidate alone that needs no confirmation is taken; else the
//!   chooser (the cardholder's choice, or [`first_without_confirmation`] for a terminal that
//!   offers no choice) picks one. It is removed from the list and SELECTed; an answer other
//!   than `9000` with its FCI (e.g. `6283`, blocked) sends selection back to the choice.
//!   Directory Definition File entries (tag `9D`, nested directories) are not followed.
//!
//! With the list-of-AIDs method the last application the card selected successfully is
//! already the card's current application (ISO/IEC 7816-4: an unsuccessful SELECT leaves the
//! current selection unchanged); when final selection chooses exactly that one, its FCI is
//! used without a second SELECT.

use std::fmt;

use pos_hal::CardChannel;

use crate::apdu::{Command, Response, exchange};
use crate::error::{Cause, EmvError, Step};
use crate::tags;
use crate::tlv::{self, Tag, Tlv, TlvError};

/// The DF name of the Payment System Environment.
pub const PSE_NAME: &[u8] = b"1PAY.SYS.DDF01";

/// `9D` Directory Definition File (DDF) Name.
const DDF_NAME: Tag = Tag::new(0x9D);

/// The most SELECT "next" commands sent for one supported AID (partial name selection).
pub const MAX_NEXT_SELECTIONS: usize = 16;

/// An AID the terminal supports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SupportedAid {
    /// The AID (RID + PIX), 5 to 16 bytes.
    pub aid: Vec<u8>,
    /// Whether an application whose name only starts with [`aid`](Self::aid) is accepted
    /// (partial name selection, EMV Book 1 12.3.1).
    pub partial: bool,
}

impl SupportedAid {
    /// A supported AID.
    pub fn new(aid: &[u8], partial: bool) -> Self {
        SupportedAid {
            aid: aid.to_vec(),
            partial,
        }
    }

    /// Whether the card's application name `adf` matches this AID: equal, or (partial
    /// selection allowed) longer and starting with it.
    pub fn matches(&self, adf: &[u8]) -> bool {
        adf == self.aid.as_slice()
            || (self.partial && adf.len() > self.aid.len() && adf.starts_with(&self.aid))
    }
}

/// The terminal's default list of supported AIDs, all with partial selection allowed: Visa
/// credit/debit, Visa Electron, V PAY, Mastercard, Maestro, American Express, JCB, Discover,
/// UnionPay debit, credit and quasi-credit.
pub fn default_supported_aids() -> Vec<SupportedAid> {
    const AIDS: &[&[u8]] = &[
        &[0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10],
        &[0xA0, 0x00, 0x00, 0x00, 0x03, 0x20, 0x10],
        &[0xA0, 0x00, 0x00, 0x00, 0x03, 0x20, 0x20],
        &[0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10],
        &[0xA0, 0x00, 0x00, 0x00, 0x04, 0x30, 0x60],
        &[0xA0, 0x00, 0x00, 0x00, 0x25, 0x01],
        &[0xA0, 0x00, 0x00, 0x00, 0x65, 0x10, 0x10],
        &[0xA0, 0x00, 0x00, 0x01, 0x52, 0x30, 0x10],
        &[0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x01],
        &[0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x02],
        &[0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x03],
    ];
    AIDS.iter().map(|a| SupportedAid::new(a, true)).collect()
}

/// An application that can be chosen.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Candidate {
    /// The application's name (ADF name from the directory, or DF name from its FCI).
    pub aid: Vec<u8>,
    /// `50` Application Label.
    pub label: Option<String>,
    /// `9F12` Application Preferred Name (read as ISO 8859-1).
    pub preferred_name: Option<String>,
    /// `87` priority (1 highest .. 15), `None` when absent or 0 (no priority).
    pub priority: Option<u8>,
    /// `87` bit 8: the cardholder must confirm the application before it is used.
    pub confirmation_required: bool,
}

impl fmt::Debug for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Candidate")
            .field("aid", &hex::encode_upper(&self.aid))
            .field("label", &self.label)
            .field("preferred_name", &self.preferred_name)
            .field("priority", &self.priority)
            .field("confirmation_required", &self.confirmation_required)
            .finish()
    }
}

impl Candidate {
    /// A candidate named `aid`, its label, preferred name and priority taken from `fields`
    /// (the children of a directory entry `61` or of an FCI proprietary template `A5`).
    fn from_fields(aid: &[u8], fields: &[Tlv<'_>]) -> Self {
        let mut c = Candidate {
            aid: aid.to_vec(),
            label: None,
            preferred_name: None,
            priority: None,
            confirmation_required: false,
        };
        for t in fields {
            if t.tag == tags::APP_LABEL {
                c.label = Some(text(t.value));
            } else if t.tag == tags::APP_PREFERRED_NAME {
                c.preferred_name = Some(text(t.value));
            } else if t.tag == tags::APP_PRIORITY {
                if let Some(&p) = t.value.first() {
                    c.confirmation_required = p & 0x80 != 0;
                    c.priority = Some(p & 0x0F).filter(|p| *p != 0);
                }
            }
        }
        c
    }

    /// What to show a cardholder: the preferred name, else the label, else the AID in hex.
    pub fn display_name(&self) -> String {
        self.preferred_name
            .clone()
            .or_else(|| self.label.clone())
            .unwrap_or_else(|| hex::encode_upper(&self.aid))
    }
}

/// Bytes as ISO 8859-1 text, control characters replaced by `?`.
fn text(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            let c = char::from(b);
            if c.is_control() { '?' } else { c }
        })
        .collect()
}

/// Orders candidates by priority: 1 first, no priority last; equal priorities keep their
/// order.
pub fn order_candidates(candidates: &mut [Candidate]) {
    candidates.sort_by_key(|c| (c.priority.is_none(), c.priority));
}

/// A chooser for a terminal without cardholder selection (EMV Book 1 12.4): the first
/// (highest priority) candidate that needs no confirmation, if any.
pub fn first_without_confirmation(candidates: &[Candidate]) -> Option<usize> {
    candidates.iter().position(|c| !c.confirmation_required)
}

/// The candidates in PSE directory records (each a READ RECORD response body, template
/// `70` holding entries `61`): the entries whose ADF name (`4F`) the terminal supports, in
/// directory order (not yet ordered by priority). Entries without `4F` (DDF entries, `9D`)
/// are skipped.
///
/// # Errors
/// A record that is not one well-formed template `70`.
pub fn candidates_from_directory(
    records: &[Vec<u8>],
    supported: &[SupportedAid],
) -> Result<Vec<Candidate>, TlvError> {
    let mut out: Vec<Candidate> = Vec::new();
    for record in records {
        let template = tlv::parse_template(record, tags::RECORD_TEMPLATE)?;
        for entry in template.children() {
            let entry = entry?;
            if entry.tag != tags::APP_TEMPLATE {
                continue;
            }
            let fields = entry.children().collect::<Result<Vec<_>, _>>()?;
            let Some(adf) = fields.iter().find(|t| t.tag == tags::ADF_NAME) else {
                if fields.iter().any(|t| t.tag == DDF_NAME) {
                    log::debug!("PSE directory: DDF entry not followed");
                }
                continue;
            };
            if !supported.iter().any(|s| s.matches(adf.value)) {
                log::debug!(
                    "PSE directory: {} not supported",
                    hex::encode_upper(adf.value)
                );
                continue;
            }
            if out.iter().any(|c| c.aid == adf.value) {
                continue;
            }
            out.push(Candidate::from_fields(adf.value, &fields));
        }
    }
    Ok(out)
}

/// What an FCI (template `6F`) says.
struct Fci<'a> {
    df_name: &'a [u8],
    /// Children of the proprietary template `A5`.
    proprietary: Vec<Tlv<'a>>,
}

impl Fci<'_> {
    fn get(&self, tag: Tag) -> Option<&[u8]> {
        self.proprietary
            .iter()
            .find(|t| t.tag == tag)
            .map(|t| t.value)
    }
}

fn parse_fci(data: &[u8]) -> Result<Fci<'_>, EmvParseError> {
    let fci = tlv::parse_template(data, tags::FCI_TEMPLATE)?;
    let mut df_name = None;
    let mut proprietary = Vec::new();
    for child in fci.children() {
        let child = child?;
        if child.tag == tags::DF_NAME {
            df_name = Some(child.value);
        } else if child.tag == tags::FCI_PROPRIETARY {
            proprietary = child.children().collect::<Result<Vec<_>, _>>()?;
        }
    }
    let df_name = df_name.ok_or(EmvParseError::Missing("FCI without DF name (84)"))?;
    Ok(Fci {
        df_name,
        proprietary,
    })
}

enum EmvParseError {
    Tlv(TlvError),
    Missing(&'static str),
}

impl From<TlvError> for EmvParseError {
    fn from(e: TlvError) -> Self {
        EmvParseError::Tlv(e)
    }
}

impl fmt::Display for EmvParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmvParseError::Tlv(e) => write!(f, "{e}"),
            EmvParseError::Missing(m) => f.write_str(m),
        }
    }
}

/// How the candidate list was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// From the PSE directory.
    Pse,
    /// By selecting the terminal's AIDs one by one.
    AidList,
}

/// The candidate list, ordered by priority, and what final selection needs to know.
#[derive(Debug, Clone)]
pub struct CandidateList {
    /// The candidates, highest priority first.
    pub candidates: Vec<Candidate>,
    /// How the list was built.
    pub method: Method,
    /// The application currently selected on the card, with its FCI (list-of-AIDs method).
    current: Option<(Vec<u8>, Vec<u8>)>,
}

/// The application chosen and selected.
#[derive(Clone, PartialEq, Eq)]
pub struct SelectedApp {
    /// The candidate chosen.
    pub candidate: Candidate,
    /// The SELECT response data: the FCI template `6F`.
    pub fci: Vec<u8>,
    /// `9F38` PDOL from the FCI, when the card asks for one.
    pub pdol: Option<Vec<u8>>,
}

impl fmt::Debug for SelectedApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectedApp")
            .field("candidate", &self.candidate)
            .field("fci_len", &self.fci.len())
            .field("pdol", &self.pdol.as_deref().map(hex::encode_upper))
            .finish()
    }
}

fn send<C: CardChannel>(ch: &mut C, step: Step, cmd: &Command) -> Result<Response, EmvError> {
    exchange(ch, cmd).map_err(|e| EmvError::exchange(step, e))
}

/// Builds the candidate list: the PSE directory first, the list of AIDs when the card has no
/// usable PSE (see the [module](self) documentation). The list is ordered by priority and may
/// be empty.
///
/// # Errors
/// Channel failures (with the step: [`Step::SelectPse`], [`Step::ReadDirectory`],
/// [`Step::ListApplications`]); `6A81` to SELECT PSE, or to the first SELECT of the list
/// of AIDs: [`Cause::CardBlocked`].
pub fn build_candidate_list<C: CardChannel>(
    ch: &mut C,
    supported: &[SupportedAid],
) -> Result<CandidateList, EmvError> {
    let resp = send(
        ch,
        Step::SelectPse,
        &Command::select_by_name(PSE_NAME, true),
    )?;
    match resp.sw() {
        0x9000 => {
            if let Some(mut candidates) = read_pse(ch, &resp.data, supported)? {
                if !candidates.is_empty() {
                    order_candidates(&mut candidates);
                    return Ok(CandidateList {
                        candidates,
                        method: Method::Pse,
                        current: None,
                    });
                }
                log::debug!("PSE lists no supported application: list of AIDs");
            }
        }
        0x6A81 => return Err(EmvError::new(Step::SelectPse, Cause::CardBlocked)),
        sw => log::debug!("no PSE (SW {sw:04X}): list of AIDs"),
    }
    list_of_aids(ch, supported)
}

/// Reads the PSE directory. `Ok(None)` when the PSE is unusable (malformed FCI or records, an
/// error status): the caller falls back to the list of AIDs.
fn read_pse<C: CardChannel>(
    ch: &mut C,
    fci: &[u8],
    supported: &[SupportedAid],
) -> Result<Option<Vec<Candidate>>, EmvError> {
    let sfi = match parse_fci(fci) {
        Ok(f) => f.get(tags::SFI).and_then(|v| v.first().copied()),
        Err(e) => {
            log::debug!("PSE FCI malformed ({e}): list of AIDs");
            return Ok(None);
        }
    };
    let Some(sfi) = sfi.filter(|s| (1..=30).contains(s)) else {
        log::debug!("PSE FCI without a valid SFI: list of AIDs");
        return Ok(None);
    };
    let mut records = Vec::new();
    for record in 1..=u8::MAX {
        let step = Step::ReadDirectory { sfi, record };
        let cmd = Command::read_record(sfi, record)
            .map_err(|_| EmvError::malformed(step, "directory SFI out of range"))?;
        let resp = send(ch, step, &cmd)?;
        match resp.sw() {
            0x9000 => records.push(resp.data),
            0x6A83 => break,
            sw => {
                log::debug!("PSE directory record {record}: SW {sw:04X}: list of AIDs");
                return Ok(None);
            }
        }
    }
    match candidates_from_directory(&records, supported) {
        Ok(c) => Ok(Some(c)),
        Err(e) => {
            log::debug!("PSE directory malformed ({e}): list of AIDs");
            Ok(None)
        }
    }
}

fn list_of_aids<C: CardChannel>(
    ch: &mut C,
    supported: &[SupportedAid],
) -> Result<CandidateList, EmvError> {
    let step = Step::ListApplications;
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut current = None;
    for s in supported {
        let mut first = true;
        for _ in 0..=MAX_NEXT_SELECTIONS {
            let resp = send(ch, step, &Command::select_by_name(&s.aid, first))?;
            let sw = resp.sw();
            if first && sw == 0x6A81 {
                return Err(EmvError::new(step, Cause::CardBlocked));
            }
            first = false;
            if sw != 0x9000 && sw != 0x6283 {
                break;
            }
            let fci = match parse_fci(&resp.data) {
                Ok(f) => f,
                Err(e) => {
                    log::debug!("SELECT {}: FCI malformed ({e})", hex::encode_upper(&s.aid));
                    current = None;
                    break;
                }
            };
            let exact = fci.df_name == s.aid.as_slice();
            let usable = sw == 0x9000 && s.matches(fci.df_name);
            if usable && !candidates.iter().any(|c| c.aid == fci.df_name) {
                candidates.push(Candidate::from_fields(fci.df_name, &fci.proprietary));
            } else if sw == 0x6283 {
                log::debug!(
                    "application {} blocked (6283): skipped",
                    hex::encode_upper(fci.df_name)
                );
            }
            current = (sw == 0x9000).then(|| (fci.df_name.to_vec(), resp.data.clone()));
            if exact || !fci.df_name.starts_with(&s.aid) {
                break;
            }
        }
    }
    order_candidates(&mut candidates);
    Ok(CandidateList {
        candidates,
        method: Method::AidList,
        current,
    })
}

/// Final selection: chooses a candidate (alone and needing no confirmation: taken; else
/// `chooser`, given the ordered list, returns the index chosen, `None` for none), removes it
/// from the list and selects it; a candidate the card does not select with `9000` and a
/// matching FCI is dropped and the choice made again.
///
/// # Errors
/// At [`Step::SelectApplication`]: [`Cause::NoApplication`] when no candidate is left,
/// [`Cause::NotChosen`] when the chooser returns `None` or an index out of range, channel
/// failures.
pub fn final_selection<C: CardChannel>(
    ch: &mut C,
    list: &mut CandidateList,
    chooser: &mut dyn FnMut(&[Candidate]) -> Option<usize>,
) -> Result<SelectedApp, EmvError> {
    let step = Step::SelectApplication;
    loop {
        let index = match list.candidates.as_slice() {
            [] => return Err(EmvError::new(step, Cause::NoApplication)),
            [only] if !only.confirmation_required => 0,
            all => chooser(all).ok_or_else(|| EmvError::new(step, Cause::NotChosen))?,
        };
        if index >= list.candidates.len() {
            return Err(EmvError::new(step, Cause::NotChosen));
        }
        let candidate = list.candidates.remove(index);
        let reuse = list.current.take().filter(|(aid, _)| *aid == candidate.aid);
        let (sw, data) = match reuse {
            Some((_, fci)) => (0x9000, fci),
            None => {
                let resp = send(ch, step, &Command::select_by_name(&candidate.aid, true))?;
                (resp.sw(), resp.data)
            }
        };
        if sw != 0x9000 {
            log::debug!(
                "SELECT {} answered {sw:04X}: removed from the candidates",
                hex::encode_upper(&candidate.aid)
            );
            continue;
        }
        let pdol = match parse_fci(&data) {
            Ok(fci) if fci.df_name == candidate.aid.as_slice() => {
                fci.get(tags::PDOL).map(<[u8]>::to_vec)
            }
            Ok(_) => {
                log::debug!(
                    "SELECT {}: other DF name in FCI",
                    hex::encode_upper(&candidate.aid)
                );
                continue;
            }
            Err(e) => {
                log::debug!(
                    "SELECT {}: FCI malformed ({e})",
                    hex::encode_upper(&candidate.aid)
                );
                continue;
            }
        };
        return Ok(SelectedApp {
            candidate,
            fci: data,
            pdol,
        });
    }
}

/// Application selection from start to end: [`build_candidate_list`] then
/// [`final_selection`].
///
/// # Errors
/// As those two functions.
pub fn select_application<C: CardChannel>(
    ch: &mut C,
    supported: &[SupportedAid],
    chooser: &mut dyn FnMut(&[Candidate]) -> Option<usize>,
) -> Result<SelectedApp, EmvError> {
    let mut list = build_candidate_list(ch, supported)?;
    final_selection(ch, &mut list, chooser)
}
