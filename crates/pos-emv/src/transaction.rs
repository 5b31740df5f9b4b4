//! The EMV contact transaction, end to end (EMV 4.3 Book 3 chapter 10): [`run`].
//!
//! The steps, in order:
//!
//! 1. application selection and GET PROCESSING OPTIONS ([`read::select_and_initiate`] with
//!    [`TransactionConfig::supported_aids`] and [`TransactionConfig::chooser`]);
//! 2. reading the application data ([`read::read_application_data`]);
//! 3. offline data authentication, the method chosen from the AIP and the terminal
//!    capabilities `9F33` byte 3, CDA before DDA before SDA ([`OdaMethod`]):
//!    - SDA: [`Tvr::SDA_SELECTED`], the issuer key recovered, [`oda::verify_sda`]; a failure
//!      sets [`Tvr::SDA_FAILED`];
//!    - DDA: the issuer and ICC keys recovered, INTERNAL AUTHENTICATE with the card's DDOL
//!      (`9F49`) or [`TransactionConfig::default_ddol`], [`oda::verify_dda`]; a failure sets
//!      [`Tvr::DDA_FAILED`];
//!    - CDA: the keys recovered now; the GENERATE AC asks for a CDA signature (P1 bit
//!      [`gac::P1_CDA`]) and [`oda::verify_cda`] checks it; a failure sets
//!      [`Tvr::CDA_FAILED`]. When the keys cannot be recovered, `CDA failed` is set before
//!      the first GENERATE AC and no CDA signature is asked for;
//!    - none possible: [`Tvr::ODA_NOT_PERFORMED`].
//!
//!    A data object of the card that ODA needs (`8F`, `90`, `9F32`, `93`, `9F46`, `9F47`)
//!    missing also sets [`Tvr::ICC_DATA_MISSING`]; a CA key the terminal lacks does not
//!    (it is not card data). [`Tsi::ODA_PERFORMED`] is set whenever ODA was attempted. An
//!    ODA failure never stops the transaction: it only sets bits, which terminal action
//!    analysis then weighs.
//! 4. processing restrictions ([`restrictions::processing_restrictions`]);
//! 5. cardholder verification ([`cvm::cardholder_verification`]; the CVM the card asked for
//!    is reported in [`TransactionOutcome::cvm`]; the methods offered are those `9F33`
//!    claims ([`crate::terminal::Capabilities`]), and a PIN method is never performed
//!    here: claimed, it fails with "PIN pad not present or not working");
//! 6. terminal risk management when the AIP asks for it ([`risk::terminal_risk_management`],
//!    with GET DATA `9F36` / `9F13` when the card has velocity limits `9F14` / `9F23`, and
//!    [`TransactionConfig::random`] for random selection);
//! 7. terminal action analysis ([`action::terminal_action_analysis`]) -> the P1 of the first
//!    GENERATE AC;
//! 8. the first GENERATE AC; an ARQC calls the `host` callback with the authorisation
//!    request ([`TransactionRecord`] of the ARQC, its ICC data field for field 55), then
//!    [`online::complete_online`] asks for a TC (host approved) or an AAC (host declined);
//!    when the host cannot be reached ([`OnlineDecision::Unreachable`]), "unable to go
//!    online" (Book 3 10.7): the default action codes decide, through
//!    [`action::terminal_action_analysis`] with `online_capable = false`, between a TC
//!    (ARC `Y3`) and an AAC (ARC `Z3`).
//!
//! # Errors and reversals
//! A failure of the card or the channel (card removed, mute card, reader gone) ends the
//! transaction with the [`EmvError`] of the step it happened in, its kind unchanged,
//! wrapped in [`TransactionError::Card`] **while nothing has been sent to the host** (or
//! when the host was unreachable: the caller knows it produced that answer and holds the
//! request it was given).
//!
//! Once the host has answered (approved or declined), any error (EXTERNAL AUTHENTICATE,
//! issuer scripts, the second GENERATE AC) is [`TransactionError::AfterHostResponse`]: the
//! card's error, what the host answered, and the authorisation request record. When the
//! host had approved, [`TransactionError::needs_reversal`] is true: the issuer has
//! authorised an amount the terminal will not capture, so the terminal service must send a
//! reversal. A transaction that completes with a card declining after the host approved
//! ([`TransactionDecision::DeclinedAfterHostApproval`]) needs one too
//! ([`TransactionOutcome::needs_reversal`]).
//!
//! Nothing here logs card data: the PAN is never logged and the records hold it masked.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};

use pos_hal::{CardChannel, Fault, FaultKind};

use crate::action::{self, ActionCodes, Decision};
use crate::apdu::{Command, Response, exchange};
use crate::capk::CaKeys;
use crate::cvm::{self, CvMethod, CvmOutcome, CvmResults, CvmTransaction, TerminalCvmCapabilities};
use crate::dol;
use crate::error::{EmvError, Step};
use crate::gac::{self, CryptogramType, GacResponse, GacResult};
use crate::oda::{self, OdaError, RsaKey};
use crate::online::{self, HostResponse, OnlineOutcome};
use crate::read::{self, CardData, Processing};
use crate::record::{self, Sources, StepLog, TransactionRecord};
use crate::restrictions;
use crate::risk::{self, Counters, RiskParams};
use crate::select::{self, Candidate, SelectedApp, SupportedAid};
use crate::tags;
use crate::terminal::TerminalData;
use crate::tlv::{self, Tag};
use crate::tvr::{Tsi, Tvr};

mod outcome;

pub use outcome::*;

/// The default DDOL (`9F37 04`: the unpredictable number), for a card without `9F49`.
pub const DEFAULT_DDOL: [u8; 3] = [0x9F, 0x37, 0x04];
/// ARC `Y3`: unable to go online, approved offline.
pub const ARC_UNABLE_ONLINE_APPROVED: [u8; 2] = *b"Y3";
/// ARC `Z3`: unable to go online, declined offline.
pub const ARC_UNABLE_ONLINE_DECLINED: [u8; 2] = *b"Z3";
/// ARC `Z1`: declined offline (used in CDOL2 when CDA failed on an ARQC).
pub const ARC_OFFLINE_DECLINED: [u8; 2] = *b"Z1";

/// Terminal capabilities `9F33` byte 3: SDA.
const CAP_SDA: u8 = 0x80;
/// Terminal capabilities `9F33` byte 3: DDA.
const CAP_DDA: u8 = 0x40;
/// Terminal capabilities `9F33` byte 3: CDA.
const CAP_CDA: u8 = 0x08;
/// AIP byte 1: SDA supported.
const AIP_SDA: u8 = 0x40;
/// AIP byte 1: DDA supported.
const AIP_DDA: u8 = 0x20;
/// AIP byte 1: CDA supported.
const AIP_CDA: u8 = 0x01;
/// `9F4B` Signed Dynamic Application Data.
const SDAD: Tag = Tag::new(0x9F4B);
/// `9F14` Lower Consecutive Offline Limit.
const LCOL: Tag = Tag::new(0x9F14);
/// `9F23` Upper Consecutive Offline Limit.
const UCOL: Tag = Tag::new(0x9F23);

/// The terminal's configuration for one transaction.
#[derive(Debug, Clone)]
pub struct TransactionConfig {
    /// The terminal data (country, currency, date and time, capabilities `9F33`, and a
    /// fresh unpredictable number `9F37` for this transaction). The amount is set from
    /// [`TransactionConfig::amount`].
    pub terminal: TerminalData,
    /// Amount, authorised, in minor units (`9F02`).
    pub amount: u64,
    /// The AIDs the terminal supports.
    pub supported_aids: Vec<SupportedAid>,
    /// Chooses among the candidate applications (`None`: cancelled).
    pub chooser: fn(&[Candidate]) -> Option<usize>,
    /// The scheme CA public keys.
    pub ca_keys: CaKeys,
    /// Terminal action codes.
    pub tac: ActionCodes,
    /// Terminal risk management parameters.
    pub risk: RiskParams,
    /// The random source of random transaction selection: a number in 1..=99.
    pub random: fn() -> u8,
    /// The DDOL used when the card has none (`9F49`).
    pub default_ddol: Vec<u8>,
    /// False for a terminal that cannot go online at all (offline-only).
    pub online_capable: bool,
}

/// The default chooser: the highest-priority candidate that needs no confirmation, else
/// the first one.
pub fn default_chooser(candidates: &[Candidate]) -> Option<usize> {
    select::first_without_confirmation(candidates).or(if candidates.is_empty() {
        None
    } else {
        Some(0)
    })
}

/// The default random source: 1..=99 from the standard library's per-process random hash
/// keys (not for cryptography; random transaction selection only needs it unbiased enough).
pub fn default_random() -> u8 {
    let h = RandomState::new().build_hasher().finish();
    u8::try_from(h % 99).unwrap_or(0) + 1
}

impl TransactionConfig {
    /// A configuration with the default supported AIDs, [`default_chooser`], no terminal
    /// action codes, floor limit 0 without random selection, [`default_random`],
    /// [`DEFAULT_DDOL`], online capable.
    pub fn new(terminal: TerminalData, amount: u64, ca_keys: CaKeys) -> Self {
        TransactionConfig {
            terminal,
            amount,
            supported_aids: select::default_supported_aids(),
            chooser: default_chooser,
            ca_keys,
            tac: ActionCodes::ZERO,
            risk: RiskParams {
                floor_limit: 0,
                random_selection: None,
            },
            random: default_random,
            default_ddol: DEFAULT_DDOL.to_vec(),
            online_capable: true,
        }
    }
}

/// The transaction state shared by the steps.
struct Ctx<'a> {
    config: &'a TransactionConfig,
    terminal: TerminalData,
    app: SelectedApp,
    processing: Processing,
    card: CardData,
    tvr: Tvr,
    tsi: Tsi,
    steps: Vec<StepLog>,
}

impl Ctx<'_> {
    fn record(&self, gac: &GacResponse) -> TransactionRecord {
        TransactionRecord::new(
            &Sources {
                app: &self.app,
                processing: &self.processing,
                card: &self.card,
                terminal: &self.terminal,
                gac,
                tvr: self.tvr,
                tsi: self.tsi,
            },
            self.steps.clone(),
        )
    }
}

/// A failed ODA check: the error and whether card data was missing.
struct OdaFail {
    error: OdaError,
    icc_data_missing: bool,
}

impl From<OdaError> for OdaFail {
    fn from(error: OdaError) -> Self {
        OdaFail {
            error,
            icc_data_missing: false,
        }
    }
}

fn missing(what: &'static str) -> OdaFail {
    OdaFail {
        error: OdaError::MissingData(what),
        icc_data_missing: true,
    }
}

/// The ODA method: CDA, then DDA, then SDA, each needing the AIP and `9F33` byte 3.
pub fn choose_oda(aip: [u8; 2], terminal_capabilities: Option<&[u8]>) -> OdaMethod {
    let caps = terminal_capabilities
        .and_then(|c| c.get(2).copied())
        .unwrap_or(0);
    if aip[0] & AIP_CDA != 0 && caps & CAP_CDA != 0 {
        OdaMethod::Cda
    } else if aip[0] & AIP_DDA != 0 && caps & CAP_DDA != 0 {
        OdaMethod::Dda
    } else if aip[0] & AIP_SDA != 0 && caps & CAP_SDA != 0 {
        OdaMethod::Sda
    } else {
        OdaMethod::None
    }
}

fn bcd_byte(b: u8) -> Option<u8> {
    ((b >> 4) < 10 && (b & 0x0F) < 10).then(|| (b >> 4) * 10 + (b & 0x0F))
}

/// `(yy, mm)` from the terminal's transaction date `9A`.
fn today(terminal: &TerminalData) -> Result<(u8, u8), OdaFail> {
    match terminal.get(tags::TRANSACTION_DATE) {
        Some(&[y, m, _]) => match (bcd_byte(y), bcd_byte(m)) {
            (Some(y), Some(m)) => Ok((y, m)),
            _ => Err(OdaError::MissingData("terminal transaction date 9A not BCD").into()),
        },
        _ => Err(OdaError::MissingData("terminal transaction date 9A").into()),
    }
}

/// The static data to be authenticated: the ODA records, then the AIP when `9F4A` names it.
fn static_input(card: &CardData, aip: [u8; 2]) -> Result<Vec<u8>, OdaFail> {
    let mut out = card.oda_input.clone();
    match card.get(tags::SDA_TAG_LIST) {
        None | Some([]) => {}
        Some([0x82]) => out.extend_from_slice(&aip),
        Some(_) => return Err(OdaError::MissingData("9F4A naming tags other than 82").into()),
    }
    Ok(out)
}

fn issuer_key(ctx: &Ctx<'_>, pan: &str, today: (u8, u8)) -> Result<RsaKey, OdaFail> {
    let card = &ctx.card;
    let index = match card.get(tags::CA_PK_INDEX) {
        Some(&[i]) => i,
        _ => return Err(missing("8F CA public key index")),
    };
    let rid: [u8; 5] = ctx
        .app
        .candidate
        .aid
        .get(..5)
        .and_then(|r| r.try_into().ok())
        .ok_or_else(|| OdaFail::from(OdaError::MissingData("AID shorter than a RID")))?;
    let ca = oda::find_ca_key(&ctx.config.ca_keys, rid, index)?;
    let cert = card
        .get(tags::ISSUER_PK_CERT)
        .ok_or_else(|| missing("90 issuer public key certificate"))?;
    let exp = card
        .get(tags::ISSUER_PK_EXPONENT)
        .ok_or_else(|| missing("9F32 issuer public key exponent"))?;
    Ok(oda::recover_issuer_key(
        ca,
        cert,
        card.get(tags::ISSUER_PK_REMAINDER),
        exp,
        pan,
        today,
    )?)
}

fn icc_key(ctx: &Ctx<'_>) -> Result<RsaKey, OdaFail> {
    let card = &ctx.card;
    let pan = oda::pan_digits(card.get(tags::PAN).unwrap_or_default())?;
    let today = today(&ctx.terminal)?;
    let issuer = issuer_key(ctx, &pan, today)?;
    let cert = card
        .get(tags::ICC_PK_CERT)
        .ok_or_else(|| missing("9F46 ICC public key certificate"))?;
    let exp = card
        .get(tags::ICC_PK_EXPONENT)
        .ok_or_else(|| missing("9F47 ICC public key exponent"))?;
    let sd = static_input(card, ctx.processing.aip)?;
    Ok(oda::recover_icc_key(
        &issuer,
        cert,
        card.get(tags::ICC_PK_REMAINDER),
        exp,
        &sd,
        &pan,
        today,
    )?)
}

fn sda(ctx: &Ctx<'_>) -> Result<(), OdaFail> {
    let card = &ctx.card;
    let pan = oda::pan_digits(card.get(tags::PAN).unwrap_or_default())?;
    let today = today(&ctx.terminal)?;
    let issuer = issuer_key(ctx, &pan, today)?;
    let ssad = card
        .get(tags::SSAD)
        .ok_or_else(|| missing("93 signed static application data"))?;
    let sd = static_input(card, ctx.processing.aip)?;
    oda::verify_sda(&issuer, ssad, &sd)?;
    Ok(())
}

fn send<C: CardChannel>(ch: &mut C, step: Step, cmd: &Command) -> Result<Response, EmvError> {
    exchange(ch, cmd).map_err(|e| EmvError::exchange(step, e))
}

/// DDA: keys, INTERNAL AUTHENTICATE, signature. A channel failure is the outer error.
fn dda<C: CardChannel>(ch: &mut C, ctx: &Ctx<'_>) -> Result<Result<(), OdaFail>, EmvError> {
    let icc = match icc_key(ctx) {
        Ok(k) => k,
        Err(f) => return Ok(Err(f)),
    };
    let ddol = ctx.card.get(tags::DDOL).unwrap_or(&ctx.config.default_ddol);
    let Ok(entries) = dol::parse_dol(ddol) else {
        return Ok(Err(OdaError::MissingData("DDOL malformed").into()));
    };
    let ddol_data = ctx.terminal.build_dol(&entries);
    let resp = send(
        ch,
        Step::InternalAuthenticate,
        &Command::internal_authenticate(&ddol_data),
    )?;
    if !resp.is_success() {
        return Ok(Err(
            OdaError::MissingData("INTERNAL AUTHENTICATE refused").into()
        ));
    }
    let sdad = match tlv::parse_single(&resp.data) {
        Ok(t) if t.tag == tags::RESPONSE_FORMAT_1 => Some(t.value.to_vec()),
        Ok(t) if t.tag == tags::RESPONSE_FORMAT_2 => tlv::parse_all(t.value).ok().and_then(|v| {
            v.into_iter()
                .find(|o| o.tag == SDAD)
                .map(|o| o.value.to_vec())
        }),
        _ => None,
    };
    let Some(sdad) = sdad else {
        return Ok(Err(OdaError::MissingData(
            "9F4B in the INTERNAL AUTHENTICATE response",
        )
        .into()));
    };
    Ok(oda::verify_dda(&icc, &sdad, &ddol_data)
        .map(|_| ())
        .map_err(OdaFail::from))
}

fn fail_bit(method: OdaMethod) -> Tvr {
    match method {
        OdaMethod::Sda => Tvr::SDA_FAILED,
        OdaMethod::Dda => Tvr::DDA_FAILED,
        OdaMethod::Cda => Tvr::CDA_FAILED,
        OdaMethod::None => Tvr::empty(),
    }
}

/// Offline data authentication before GENERATE AC; for CDA, the ICC key for later.
fn offline_data_authentication<C: CardChannel>(
    ch: &mut C,
    ctx: &mut Ctx<'_>,
) -> Result<(OdaResult, Option<RsaKey>), EmvError> {
    let method = choose_oda(
        ctx.processing.aip,
        ctx.terminal.get(tags::TERMINAL_CAPABILITIES),
    );
    if method == OdaMethod::None {
        ctx.tvr |= Tvr::ODA_NOT_PERFORMED;
        return Ok((
            OdaResult {
                method,
                ok: false,
                detail: None,
            },
            None,
        ));
    }
    ctx.tsi |= Tsi::ODA_PERFORMED;
    let (outcome, key) = match method {
        OdaMethod::Sda => {
            ctx.tvr |= Tvr::SDA_SELECTED;
            (sda(ctx), None)
        }
        OdaMethod::Dda => (dda(ch, ctx)?, None),
        _ => match icc_key(ctx) {
            Ok(k) => (Ok(()), Some(k)),
            Err(f) => (Err(f), None),
        },
    };
    let result = match outcome {
        Ok(()) => OdaResult {
            method,
            ok: true,
            detail: None,
        },
        Err(f) => {
            ctx.tvr |= fail_bit(method);
            if f.icc_data_missing {
                ctx.tvr |= Tvr::ICC_DATA_MISSING;
            }
            log::info!("offline data authentication {method:?} failed: {}", f.error);
            OdaResult {
                method,
                ok: false,
                detail: Some(f.error),
            }
        }
    };
    Ok((result, key))
}

/// GET DATA of a 2-byte counter; `None` when the card does not give it.
fn get_counter<C: CardChannel>(ch: &mut C, tag: Tag, p1p2: u16) -> Result<Option<u16>, EmvError> {
    // No step of its own in `Step` yet: reported as the application data check.
    let resp = send(ch, Step::GetData, &Command::get_data(p1p2))?;
    if !resp.is_success() {
        return Ok(None);
    }
    Ok(tlv::parse_single(&resp.data)
        .ok()
        .filter(|t| t.tag == tag)
        .and_then(|t| <[u8; 2]>::try_from(t.value).ok())
        .map(u16::from_be_bytes))
}

fn cvm_transaction(ctx: &Ctx<'_>) -> CvmTransaction {
    let t = &ctx.terminal;
    let kind = t
        .get(tags::TRANSACTION_TYPE)
        .and_then(|v| v.first().copied());
    let terminal_type = t.get(tags::TERMINAL_TYPE).and_then(|v| v.first().copied());
    CvmTransaction {
        amount: ctx.config.amount,
        in_application_currency: match (
            t.get(tags::TRANSACTION_CURRENCY_CODE),
            ctx.card.get(tags::APP_CURRENCY_CODE),
        ) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
        cash: matches!(kind, Some(0x01 | 0x17)),
        cashback: kind == Some(0x09),
        unattended: matches!(terminal_type.map(|b| b & 0x0F), Some(4..=6)),
    }
}

/// CDA: checks the signature of a GENERATE AC answer asked with the CDA bit; the
/// cryptogram recovered from it fills a response that carried it only inside `9F4B`.
fn check_cda(
    icc: &RsaKey,
    terminal: &TerminalData,
    response: &mut GacResponse,
    transaction_data: &[u8],
) -> Result<(), OdaError> {
    let un = terminal.get(tags::UNPREDICTABLE_NUMBER).unwrap_or_default();
    let r = oda::verify_cda(icc, &response.template, un, transaction_data)?;
    if let Some(ac) = response.cryptogram {
        if ac != r.cryptogram {
            return Err(OdaError::MissingData(
                "9F26 differs from the cryptogram in the CDA signature",
            ));
        }
    }
    response.cryptogram = Some(r.cryptogram);
    Ok(())
}

/// Runs the EMV contact transaction on `ch` (see the [module](self) documentation).
///
/// `host` is called at most once, after a first GENERATE AC answered with an ARQC, with the
/// authorisation request record (masked PAN, cryptogram data, ICC data field).
///
/// # Errors
/// [`TransactionError::Card`] with the [`EmvError`] of the failed step while nothing was
/// authorised; [`TransactionError::AfterHostResponse`] once the host has answered.
pub fn run<C: CardChannel>(
    ch: &mut C,
    config: &TransactionConfig,
    host: &mut dyn FnMut(&TransactionRecord) -> OnlineDecision,
) -> Result<TransactionOutcome, TransactionError> {
    let mut terminal = config.terminal.clone();
    terminal.set_amount(config.amount);
    let mut chooser = |c: &[Candidate]| (config.chooser)(c);
    let (app, processing) =
        read::select_and_initiate(ch, &config.supported_aids, &terminal, &mut chooser)?;
    let mut steps = vec![StepLog::new(
        Step::Gpo,
        1,
        Some(0x9000),
        format!(
            "AIP {:02X}{:02X}, {} AFL entries",
            processing.aip[0],
            processing.aip[1],
            processing.afl.len()
        ),
    )];
    let card = read::read_application_data(ch, &processing.afl)?;
    steps.push(StepLog::new(
        Step::CheckData,
        card.records.len(),
        Some(0x9000),
        format!("{} records read", card.records.len()),
    ));
    let pdol_data = match app.pdol.as_deref().map(dol::parse_dol) {
        Some(Ok(entries)) => terminal.build_dol(&entries),
        _ => Vec::new(),
    };
    let mut ctx = Ctx {
        config,
        terminal,
        app,
        processing,
        card,
        tvr: Tvr::empty(),
        tsi: Tsi::empty(),
        steps,
    };

    // 3. Offline data authentication.
    let (mut oda_result, cda_key) = offline_data_authentication(ch, &mut ctx)?;

    // 4. Processing restrictions.
    restrictions::processing_restrictions(&ctx.card, &ctx.terminal, &mut ctx.tvr);

    // 5. Cardholder verification.
    let caps = ctx
        .terminal
        .get(tags::TERMINAL_CAPABILITIES)
        .and_then(TerminalCvmCapabilities::from_terminal_capabilities)
        .unwrap_or_default();
    let cvm_tx = cvm_transaction(&ctx);
    let cvm = cvm::cardholder_verification(
        ctx.processing.aip,
        &ctx.card,
        caps,
        &cvm_tx,
        &mut ctx.tvr,
        &mut ctx.tsi,
    );
    let cvm_results = cvm.map_or(CvmResults::NOT_PERFORMED, |c| c.result);
    ctx.terminal
        .set(record::CVM_RESULTS, cvm_results.to_bytes().to_vec());

    // 6. Terminal risk management.
    if risk::required_by_aip(ctx.processing.aip) {
        let mut counters = Counters::default();
        if ctx.card.get(LCOL).is_some() && ctx.card.get(UCOL).is_some() {
            counters.atc = get_counter(ch, tags::ATC, 0x9F36)?;
            counters.last_online_atc = get_counter(ch, tags::LAST_ONLINE_ATC, 0x9F13)?;
        }
        let mut random = || (config.random)();
        risk::terminal_risk_management(
            config.amount,
            &config.risk,
            &ctx.card,
            counters,
            &mut random,
            &mut ctx.tvr,
            &mut ctx.tsi,
        );
    }

    // 7. Terminal action analysis.
    let iac = ActionCodes::from_card(&ctx.card);
    let decision =
        action::terminal_action_analysis(ctx.tvr, config.tac, iac, config.online_capable);
    let p1 = action::reference_control(decision, cda_key.is_some());

    // 8. First GENERATE AC.
    let cdol1 = ctx.card.cdol1().map(<[u8]>::to_vec).unwrap_or_default();
    let mut g1: GacResult = gac::first_generate_ac(
        ch,
        &cdol1,
        &ctx.terminal,
        ctx.tvr,
        ctx.tsi,
        p1,
        &mut ctx.steps,
    )?;
    ctx.tsi |= Tsi::CARD_RISK_MANAGEMENT_PERFORMED;
    let g1_type = g1.response.cryptogram_type();
    let mut cda_ok = cda_key.is_some();
    if let Some(icc) = &cda_key {
        if g1.p1 & gac::P1_CDA != 0 && g1_type != Some(CryptogramType::Aac) {
            let mut data = pdol_data.clone();
            data.extend_from_slice(&g1.cdol_data);
            if let Err(e) = check_cda(icc, &ctx.terminal, &mut g1.response, &data) {
                ctx.tvr |= Tvr::CDA_FAILED;
                oda_result.ok = false;
                oda_result.detail = Some(e);
                cda_ok = false;
            }
        }
    }
    let first_ac = ctx.record(&g1.response);

    let finish = |ctx: &Ctx<'_>,
                  gac: &GacResponse,
                  scripts: Vec<u8>,
                  decision: TransactionDecision,
                  host: HostAnswer,
                  first_ac: TransactionRecord,
                  cvm: Option<CvmOutcome>,
                  oda: OdaResult| TransactionOutcome {
        record: ctx.record(gac).with_script_results(scripts),
        first_ac,
        decision,
        host,
        tvr: ctx.tvr,
        tsi: ctx.tsi,
        cvm,
        oda,
        steps: ctx.steps.clone(),
    };

    match g1_type {
        Some(CryptogramType::Tc) => {
            let d = if oda_result.method == OdaMethod::Cda && !cda_ok {
                TransactionDecision::DeclinedOffline
            } else {
                TransactionDecision::ApprovedOffline
            };
            return Ok(finish(
                &ctx,
                &g1.response,
                Vec::new(),
                d,
                HostAnswer::NotAsked,
                first_ac,
                cvm,
                oda_result,
            ));
        }
        Some(CryptogramType::Arqc) => {}
        _ => {
            return Ok(finish(
                &ctx,
                &g1.response,
                Vec::new(),
                TransactionDecision::DeclinedOffline,
                HostAnswer::NotAsked,
                first_ac,
                cvm,
                oda_result,
            ));
        }
    }

    // ARQC. A CDA failure on it declines without going online.
    let (host_response, want_tc, answer) =
        if oda_result.method == OdaMethod::Cda && cda_key.is_some() && !cda_ok {
            (
                HostResponse {
                    arc: ARC_OFFLINE_DECLINED,
                    issuer_auth_data: None,
                    scripts: Vec::new(),
                },
                false,
                HostAnswer::NotAsked,
            )
        } else {
            match host(&first_ac) {
                OnlineDecision::Approved {
                    arc,
                    issuer_auth_data,
                    scripts,
                } => (
                    HostResponse {
                        arc,
                        issuer_auth_data,
                        scripts,
                    },
                    true,
                    HostAnswer::Approved(arc),
                ),
                OnlineDecision::Declined {
                    arc,
                    issuer_auth_data,
                    scripts,
                } => (
                    HostResponse {
                        arc,
                        issuer_auth_data,
                        scripts,
                    },
                    false,
                    HostAnswer::Declined(arc),
                ),
                OnlineDecision::Unreachable => {
                    let d = action::terminal_action_analysis(ctx.tvr, config.tac, iac, false);
                    let tc = d == Decision::Approve;
                    (
                        HostResponse {
                            arc: if tc {
                                ARC_UNABLE_ONLINE_APPROVED
                            } else {
                                ARC_UNABLE_ONLINE_DECLINED
                            },
                            issuer_auth_data: None,
                            scripts: Vec::new(),
                        },
                        tc,
                        HostAnswer::Unreachable,
                    )
                }
            }
        };
    ctx.terminal
        .set(tags::AUTH_RESPONSE_CODE, host_response.arc.to_vec());
    let mut request = first_ac.clone();
    request.arc = Some(host_response.arc);

    let p2 = if want_tc {
        if cda_ok {
            gac::P1_TC | gac::P1_CDA
        } else {
            gac::P1_TC
        }
    } else {
        gac::P1_AAC
    };
    let cdol2 = ctx.card.cdol2().map(<[u8]>::to_vec).unwrap_or_default();
    let completed: Result<OnlineOutcome, EmvError> = online::complete_online(
        ch,
        ctx.processing.aip,
        &cdol2,
        &ctx.terminal,
        &host_response,
        p2,
        &mut ctx.tvr,
        &mut ctx.tsi,
        &mut ctx.steps,
    );
    let mut done = match completed {
        Ok(o) => o,
        Err(error) => {
            return Err(match answer {
                HostAnswer::Approved(_) | HostAnswer::Declined(_) => {
                    request.steps = ctx.steps.clone();
                    TransactionError::AfterHostResponse {
                        error,
                        host: answer,
                        record: Box::new(request),
                    }
                }
                _ => TransactionError::Card(error),
            });
        }
    };
    let g2_type = done.gac2.response.cryptogram_type();
    let mut approved = g2_type == Some(CryptogramType::Tc);
    if approved && done.gac2.p1 & gac::P1_CDA != 0 {
        if let Some(icc) = &cda_key {
            let mut data = pdol_data;
            data.extend_from_slice(&g1.cdol_data);
            data.extend_from_slice(&done.gac2.cdol_data);
            if let Err(e) = check_cda(icc, &ctx.terminal, &mut done.gac2.response, &data) {
                ctx.tvr |= Tvr::CDA_FAILED;
                oda_result.ok = false;
                oda_result.detail = Some(e);
                approved = false;
            }
        }
    }
    let decision = match (answer, approved) {
        (HostAnswer::Approved(_), true) => TransactionDecision::ApprovedOnline,
        (HostAnswer::Approved(_), false) => TransactionDecision::DeclinedAfterHostApproval,
        (HostAnswer::Declined(_), _) => TransactionDecision::DeclinedOnline,
        (HostAnswer::Unreachable, true) => TransactionDecision::ApprovedUnableOnline,
        (HostAnswer::Unreachable, false) => TransactionDecision::DeclinedUnableOnline,
        (HostAnswer::NotAsked, _) => TransactionDecision::DeclinedOffline,
    };
    let scripts = done.script_results_bytes();
    Ok(finish(
        &ctx,
        &done.gac2.response,
        scripts,
        decision,
        answer,
        first_ac,
        cvm,
        oda_result,
    ))
}
