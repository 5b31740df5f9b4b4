//! Online response processing (EMV 4.3 Book 3 10.9 and 10.10, Book 4 6.3.7): issuer
//! authentication, issuer scripts, and the second GENERATE AC.
//!
//! - [`issuer_authentication`]: when the AIP says the card supports issuer authentication
//!   (byte 1 bit 3) and the host sent `91`, EXTERNAL AUTHENTICATE; any answer but `9000`
//!   sets [`Tvr::ISSUER_AUTHENTICATION_FAILED`]; [`Tsi::ISSUER_AUTHENTICATION_PERFORMED`]
//!   is set either way. Otherwise `91` is left for CDOL2.
//! - [`parse_scripts`] / [`run_scripts`]: issuer script templates `71` (before the final
//!   GENERATE AC) and `72` (after), each with an optional `9F18` script identifier and `86`
//!   commands; a script stops at its first command answered other than `90xx`, `62xx` or
//!   `63xx`; the result of each script is recorded as 5 bytes ([`ScriptResult::to_bytes`]:
//!   result nibble, sequence number, script identifier) and a failure sets
//!   [`Tvr::SCRIPT_FAILED_BEFORE_FINAL_GAC`] or [`Tvr::SCRIPT_FAILED_AFTER_FINAL_GAC`].
//! - [`complete_online`]: the whole sequence: issuer authentication, `71` scripts, the
//!   second GENERATE AC with CDOL2 (`8A`, and `91` when no EXTERNAL AUTHENTICATE was done),
//!   `72` scripts.
//!
//! Script commands and issuer data are never logged: only headers, lengths and status
//! words.

use std::fmt;

use pos_hal::CardChannel;

use crate::apdu::{Command, exchange};
use crate::error::{EmvError, Step};
use crate::gac::{self, GacResult};
use crate::record::StepLog;
use crate::tags;
use crate::terminal::TerminalData;
use crate::tlv::{self, Tag};
use crate::tvr::{Tsi, Tvr};

/// AIP byte 1 bit 3: issuer authentication is supported (EXTERNAL AUTHENTICATE).
pub const AIP_ISSUER_AUTHENTICATION: u8 = 0x04;
/// `71` Issuer Script Template 1 (before the final GENERATE AC).
pub const SCRIPT_TEMPLATE_1: Tag = Tag::new(0x71);
/// `72` Issuer Script Template 2 (after the final GENERATE AC).
pub const SCRIPT_TEMPLATE_2: Tag = Tag::new(0x72);
/// `9F18` Issuer Script Identifier.
pub const SCRIPT_ID: Tag = Tag::new(0x9F18);
/// `86` Issuer Script Command.
pub const SCRIPT_COMMAND: Tag = Tag::new(0x86);

/// What the host answered to the authorisation request.
#[derive(Clone, PartialEq, Eq)]
pub struct HostResponse {
    /// `8A` Authorisation Response Code (two characters, e.g. `3030` "00").
    pub arc: [u8; 2],
    /// `91` Issuer Authentication Data.
    pub issuer_auth_data: Option<Vec<u8>>,
    /// The raw issuer script templates `71` / `72` (other objects are ignored).
    pub scripts: Vec<u8>,
}

impl fmt::Debug for HostResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostResponse")
            .field(
                "arc",
                &format_args!("{:02X}{:02X}", self.arc[0], self.arc[1]),
            )
            .field(
                "issuer_auth_data_len",
                &self.issuer_auth_data.as_ref().map(Vec::len),
            )
            .field("scripts_len", &self.scripts.len())
            .finish()
    }
}

/// How issuer authentication went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssuerAuth {
    /// The host sent no `91`.
    NoData,
    /// The card does not support EXTERNAL AUTHENTICATE: `91` goes into CDOL2 data.
    InCdol2,
    /// EXTERNAL AUTHENTICATE answered `9000`.
    Passed,
    /// EXTERNAL AUTHENTICATE answered something else.
    Failed {
        /// The status words.
        sw: u16,
    },
}

/// Issuer authentication (see the [module](self) documentation); at most one EXTERNAL
/// AUTHENTICATE.
///
/// # Errors
/// Channel failures at [`Step::ExternalAuthenticate`] (a removed card keeps its kind). A
/// refusal by the card is not an error: it is [`IssuerAuth::Failed`] and a TVR bit.
pub fn issuer_authentication<C: CardChannel>(
    ch: &mut C,
    aip: [u8; 2],
    host: &HostResponse,
    tvr: &mut Tvr,
    tsi: &mut Tsi,
    log: &mut Vec<StepLog>,
) -> Result<IssuerAuth, EmvError> {
    let step = Step::ExternalAuthenticate;
    let Some(data) = host.issuer_auth_data.as_deref() else {
        return Ok(IssuerAuth::NoData);
    };
    if aip[0] & AIP_ISSUER_AUTHENTICATION == 0 {
        return Ok(IssuerAuth::InCdol2);
    }
    let resp = match exchange(ch, &Command::external_authenticate(data)) {
        Ok(r) => r,
        Err(e) => {
            log.push(StepLog::new(step, 1, None, "no answer from the card"));
            return Err(EmvError::exchange(step, e));
        }
    };
    tsi.insert(Tsi::ISSUER_AUTHENTICATION_PERFORMED);
    let sw = resp.sw();
    let outcome = if sw == 0x9000 {
        IssuerAuth::Passed
    } else {
        tvr.insert(Tvr::ISSUER_AUTHENTICATION_FAILED);
        IssuerAuth::Failed { sw }
    };
    log::info!("{step}: card answered {sw:04X}");
    log.push(StepLog::new(
        step,
        1,
        Some(sw),
        match outcome {
            IssuerAuth::Passed => "issuer authenticated",
            _ => "issuer authentication failed",
        },
    ));
    Ok(outcome)
}

/// When a script runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScriptTiming {
    /// Template `71`: before the final GENERATE AC.
    BeforeFinalGac,
    /// Template `72`: after the final GENERATE AC.
    AfterFinalGac,
}

/// One issuer script.
///
/// `Debug` shows the identifier and the command count only.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuerScript {
    /// `71` or `72`.
    pub timing: ScriptTiming,
    /// `9F18` Issuer Script Identifier (zeros when absent).
    pub id: [u8; 4],
    /// The `86` commands, each a command APDU as the issuer encoded it.
    pub commands: Vec<Vec<u8>>,
    /// The template could not be decoded (bad TLV, an identifier not 4 bytes): the script
    /// is not run and counts as failed.
    pub malformed: bool,
}

impl fmt::Debug for IssuerScript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerScript")
            .field("timing", &self.timing)
            .field("id", &format_args!("{:02X?}", self.id))
            .field("commands", &self.commands.len())
            .field("malformed", &self.malformed)
            .finish()
    }
}

fn parse_script(timing: ScriptTiming, value: &[u8]) -> IssuerScript {
    let mut script = IssuerScript {
        timing,
        id: [0; 4],
        commands: Vec::new(),
        malformed: false,
    };
    for child in tlv::parse(value) {
        match child {
            Ok(c) if c.tag == SCRIPT_ID => match <[u8; 4]>::try_from(c.value) {
                Ok(id) => script.id = id,
                Err(_) => script.malformed = true,
            },
            Ok(c) if c.tag == SCRIPT_COMMAND => script.commands.push(c.value.to_vec()),
            Ok(_) => {}
            Err(_) => {
                script.malformed = true;
                break;
            }
        }
    }
    script
}

/// The issuer scripts in `raw` (templates `71` and `72`, in order; other objects skipped).
/// Malformed content of a template makes that script [`IssuerScript::malformed`]; a
/// malformed top level ends the list there (what follows cannot be found).
pub fn parse_scripts(raw: &[u8]) -> Vec<IssuerScript> {
    let mut out = Vec::new();
    for item in tlv::parse(raw) {
        let Ok(item) = item else {
            log::warn!("issuer scripts: malformed TLV, the rest is ignored");
            break;
        };
        let timing = if item.tag == SCRIPT_TEMPLATE_1 {
            ScriptTiming::BeforeFinalGac
        } else if item.tag == SCRIPT_TEMPLATE_2 {
            ScriptTiming::AfterFinalGac
        } else {
            continue;
        };
        out.push(parse_script(timing, item.value));
    }
    out
}

/// The result of one issuer script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScriptResult {
    /// `0` not performed, `1` failed, `2` successful.
    pub result: u8,
    /// The sequence number (1-based, `F` for 15 and above) of the command that failed; 0
    /// when none did.
    pub sequence: u8,
    /// `9F18` of the script (zeros when absent).
    pub id: [u8; 4],
    /// The status words of the last command sent, `None` when none was sent.
    pub sw: Option<u16>,
}

impl ScriptResult {
    /// Result nibble "failed".
    pub const FAILED: u8 = 1;
    /// Result nibble "successful".
    pub const SUCCESSFUL: u8 = 2;

    /// The 5 bytes of the Issuer Script Results: result and sequence number, identifier.
    pub fn to_bytes(&self) -> [u8; 5] {
        let [a, b, c, d] = self.id;
        [(self.result << 4) | (self.sequence & 0x0F), a, b, c, d]
    }
}

/// True for the status words after which a script goes on: `90xx`, `62xx`, `63xx`.
pub fn script_sw_ok(sw: u16) -> bool {
    matches!(sw >> 8, 0x90 | 0x62 | 0x63)
}

/// Runs the scripts of `scripts` with `timing`, in order. Sets
/// [`Tsi::SCRIPT_PROCESSING_PERFORMED`] when a script was processed, and the TVR bit of
/// the timing when one failed.
///
/// # Errors
/// Channel failures at [`Step::IssuerScript`] (a removed card keeps its kind). Refusals
/// are results, not errors.
pub fn run_scripts<C: CardChannel>(
    ch: &mut C,
    scripts: &[IssuerScript],
    timing: ScriptTiming,
    tvr: &mut Tvr,
    tsi: &mut Tsi,
    log: &mut Vec<StepLog>,
) -> Result<Vec<ScriptResult>, EmvError> {
    let step = Step::IssuerScript;
    let mut results = Vec::new();
    for script in scripts.iter().filter(|s| s.timing == timing) {
        tsi.insert(Tsi::SCRIPT_PROCESSING_PERFORMED);
        let mut result = ScriptResult {
            result: ScriptResult::SUCCESSFUL,
            sequence: 0,
            id: script.id,
            sw: None,
        };
        let mut sent = 0usize;
        if script.malformed {
            result.result = ScriptResult::FAILED;
        } else {
            for (i, bytes) in script.commands.iter().enumerate() {
                let seq = u8::try_from(i + 1).unwrap_or(0x0F).min(0x0F);
                let Ok(cmd) = Command::parse(bytes) else {
                    result.result = ScriptResult::FAILED;
                    result.sequence = seq;
                    break;
                };
                sent += 1;
                let resp = match exchange(ch, &cmd) {
                    Ok(r) => r,
                    Err(e) => {
                        log.push(StepLog::new(step, sent, None, "no answer from the card"));
                        return Err(EmvError::exchange(step, e));
                    }
                };
                let sw = resp.sw();
                result.sw = Some(sw);
                if !script_sw_ok(sw) {
                    result.result = ScriptResult::FAILED;
                    result.sequence = seq;
                    break;
                }
            }
        }
        if result.result == ScriptResult::FAILED {
            tvr.insert(match timing {
                ScriptTiming::BeforeFinalGac => Tvr::SCRIPT_FAILED_BEFORE_FINAL_GAC,
                ScriptTiming::AfterFinalGac => Tvr::SCRIPT_FAILED_AFTER_FINAL_GAC,
            });
        }
        log.push(StepLog::new(
            step,
            sent,
            result.sw,
            format!(
                "{} script {:02X?}: {}",
                match timing {
                    ScriptTiming::BeforeFinalGac => "71",
                    ScriptTiming::AfterFinalGac => "72",
                },
                script.id,
                if result.result == ScriptResult::FAILED {
                    format!("failed at command {}", result.sequence)
                } else {
                    "successful".to_owned()
                }
            ),
        ));
        results.push(result);
    }
    Ok(results)
}

/// What [`complete_online`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineOutcome {
    /// Issuer authentication.
    pub issuer_auth: IssuerAuth,
    /// The second GENERATE AC.
    pub gac2: GacResult,
    /// The results of the `71` then the `72` scripts.
    pub script_results: Vec<ScriptResult>,
}

impl OnlineOutcome {
    /// The Issuer Script Results bytes (5 per script).
    pub fn script_results_bytes(&self) -> Vec<u8> {
        self.script_results
            .iter()
            .flat_map(ScriptResult::to_bytes)
            .collect()
    }
}

/// Online response processing and completion: [`issuer_authentication`], the `71` scripts,
/// the second GENERATE AC with `p2_ref` (the caller's decision: [`gac::P1_TC`] or
/// [`gac::P1_AAC`], from the ARC and issuer authentication) and CDOL2 (`cdol2`) data
/// built from `terminal` with `8A`, the current TVR and TSI and, when no EXTERNAL
/// AUTHENTICATE was done, `91`; then the `72` scripts. `tvr` and `tsi` are updated.
///
/// # Errors
/// As [`issuer_authentication`], [`run_scripts`], and [`gac::generate_ac`] at
/// [`Step::GenerateAc2`].
#[allow(clippy::too_many_arguments)]
pub fn complete_online<C: CardChannel>(
    ch: &mut C,
    aip: [u8; 2],
    cdol2: &[u8],
    terminal: &TerminalData,
    host: &HostResponse,
    p2_ref: u8,
    tvr: &mut Tvr,
    tsi: &mut Tsi,
    log: &mut Vec<StepLog>,
) -> Result<OnlineOutcome, EmvError> {
    let issuer_auth = issuer_authentication(ch, aip, host, tvr, tsi, log)?;
    let scripts = parse_scripts(&host.scripts);
    let mut script_results =
        run_scripts(ch, &scripts, ScriptTiming::BeforeFinalGac, tvr, tsi, log)?;
    let mut extra: Vec<(Tag, &[u8])> = vec![(tags::AUTH_RESPONSE_CODE, &host.arc[..])];
    if issuer_auth == IssuerAuth::InCdol2 {
        if let Some(iad) = host.issuer_auth_data.as_deref() {
            extra.push((tags::ISSUER_AUTH_DATA, iad));
        }
    }
    let step = Step::GenerateAc2;
    let data = gac::cdol_data(cdol2, terminal, *tvr, *tsi, &extra, step)?;
    let gac2 = gac::generate_ac(ch, step, p2_ref, data, log)?;
    script_results.extend(run_scripts(
        ch,
        &scripts,
        ScriptTiming::AfterFinalGac,
        tvr,
        tsi,
        log,
    )?);
    Ok(OnlineOutcome {
        issuer_auth,
        gac2,
        script_results,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_result_bytes() {
        let r = ScriptResult {
            result: ScriptResult::FAILED,
            sequence: 2,
            id: [1, 2, 3, 4],
            sw: Some(0x6A80),
        };
        assert_eq!(r.to_bytes(), [0x12, 1, 2, 3, 4]);
        assert!(script_sw_ok(0x9000) && script_sw_ok(0x6283) && script_sw_ok(0x63C1));
        assert!(!script_sw_ok(0x6A80) && !script_sw_ok(0x6985));
    }

    #[test]
    fn scripts_parse_and_malformed_ones_are_marked() {
        let raw = [
            0x71, 0x0D, 0x9F, 0x18, 0x04, 1, 2, 3, 4, 0x86, 0x04, 0x84, 0x24, 0x00, 0x00, //
            0x8A, 0x02, 0x30, 0x30, //
            0x72, 0x05, 0x9F, 0x18, 0x02, 1, 2, //
        ];
        let s = parse_scripts(&raw);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].timing, ScriptTiming::BeforeFinalGac);
        assert_eq!(s[0].id, [1, 2, 3, 4]);
        assert_eq!(s[0].commands, [vec![0x84, 0x24, 0x00, 0x00]]);
        assert!(!s[0].malformed);
        assert_eq!(s[1].timing, ScriptTiming::AfterFinalGac);
        assert!(s[1].malformed);
        assert!(parse_scripts(&[0x71, 0x05, 0x00]).len() <= 1);
    }
}
