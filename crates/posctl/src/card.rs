//! `posctl card ...`: EMV card data.

use crate::{CliError, Exit};

/// `posctl card tlv HEX`: decode BER-TLV with EMV tag names (PAN and track data masked).
/// Exit 1 when the bytes are not hex or not valid TLV (the error names the offset).
pub fn tlv(hex: &str, json: bool) -> Result<Exit, CliError> {
    let clean: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
    if clean.len() % 2 != 0 || !clean.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(CliError::new(format!("{hex:?} is not hex bytes")));
    }
    let bytes: Vec<u8> = (0..clean.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&clean[i..i + 2], 16).ok())
        .collect();
    // Check the whole buffer first so that an error exits 1 with its offset.
    if let Err(e) = pos_emv::tlv::parse_all(&bytes) {
        return Err(CliError::new(format!("not valid BER-TLV: {e}")));
    }
    let text = pos_emv::tags::describe(&bytes);
    if json {
        let lines: Vec<&str> = text.lines().collect();
        println!("{}", serde_json::json!({ "tlv": lines }));
    } else {
        print!("{text}");
        if !text.ends_with('\n') {
            println!();
        }
    }
    Ok(Exit::Ok)
}

use pos_emv::{CardData, CardRead, EmvError, Method, TerminalData, tags};
use pos_hal::{ChipReader, Fault, FaultKind, SlotChannel};
use pos_link::DeviceUri;

/// Open the reader as the lane does: `sim:ccid?card=visa` (every EMV profile),
/// `sim:ccid?script=FILE` (a recorded session) and every other `sim:ccid` option work here
/// exactly as in the lane config.
fn open_reader(device: &str) -> Result<pos_ccid::AnyReader, CliError> {
    let uri = DeviceUri::parse(device).map_err(|e| CliError::new(e.to_string()))?;
    pos_ccid::open(&uri, pos_lane::reader_config()).map_err(reader_error)
}

fn reader_error(e: pos_ccid::CcidError) -> CliError {
    let exit = match e.kind() {
        FaultKind::CardAbsent
        | FaultKind::CardMute
        | FaultKind::CardRemoved
        | FaultKind::CardUnsupported => Exit::DeviceFault,
        _ => Exit::Error,
    };
    // The link's own hint where it has one (busy: who holds the reader and what to do).
    let hint = match &e {
        pos_ccid::CcidError::Link(l) => l.hint().map(str::to_string),
        _ => None,
    };
    CliError {
        exit,
        hint: Some(hint.unwrap_or_else(|| e.kind().advice().to_string())),
        message: e.to_string(),
    }
}

fn emv_error(e: EmvError) -> CliError {
    CliError {
        exit: Exit::DeviceFault,
        hint: Some(e.kind().advice().to_string()),
        message: e.to_string(),
    }
}

/// The CVM list's rules in words, in the card's order.
fn cvm_rules(value: Option<&[u8]>) -> Vec<String> {
    let Some(v) = value else { return Vec::new() };
    match pos_emv::cvm::CvmList::parse(v) {
        Ok(list) => list
            .rules
            .iter()
            .map(|r| {
                format!(
                    "{:?} if {:?}{}",
                    r.method,
                    r.condition,
                    if r.apply_next_if_unsuccessful {
                        ", else next rule"
                    } else {
                        ""
                    }
                )
            })
            .collect(),
        Err(e) => vec![format!("(does not parse: {e})")],
    }
}

fn bcd(b: u8) -> Option<u8> {
    let (hi, lo) = (b >> 4, b & 0x0F);
    (hi < 10 && lo < 10).then_some(hi * 10 + lo)
}

/// AIP bits people ask about (EMV Book 3, Annex C1).
fn aip_features(aip: [u8; 2]) -> Vec<&'static str> {
    let mut v = Vec::new();
    for (bit, name) in [
        (0x40, "sda"),
        (0x20, "dda"),
        (0x10, "cardholder_verification"),
        (0x08, "terminal_risk_management"),
        (0x04, "issuer_authentication"),
        (0x01, "cda"),
    ] {
        if aip[0] & bit != 0 {
            v.push(name);
        }
    }
    v
}

/// `posctl card read`: select the application, initiate processing, read its records, and
/// show what a technician needs (never the full PAN).
pub fn read(
    device: &str,
    ca_keys_file: Option<&std::path::Path>,
    json: bool,
) -> Result<Exit, CliError> {
    let ca_keys = match ca_keys_file {
        Some(path) => pos_emv::capk::CaKeys::load(path),
        // The public EMV test keys, and the simulation CA of the profile cards.
        None => pos_emv::profile_card::test_and_sim_ca_keys(),
    }
    .map_err(|e| CliError::new(format!("CA public keys: {e}")))?;
    let mut reader = open_reader(device)?;
    let atr = reader.power_on(0).map_err(reader_error)?;
    let mut unpredictable = [0u8; 4];
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    unpredictable.copy_from_slice(&nanos.to_be_bytes());
    let terminal = TerminalData::new(unpredictable);
    // Today as the terminal dates the transaction (9A, YYMMDD): certificates expire by month.
    let today = terminal
        .get(tags::TRANSACTION_DATE)
        .and_then(|d| Some((bcd(*d.first()?)?, bcd(*d.get(1)?)?)))
        .unwrap_or((0, 1));
    // Selection (the candidates as the PSE or the list of AIDs found them), GPO, records.
    let card =
        pos_emv::read_card(&mut SlotChannel::new(&mut reader, 0), &terminal).map_err(emv_error)?;
    let _ = reader.power_off(0);
    let CardRead {
        method,
        candidates,
        app,
        processing,
        data,
    } = &card;
    let candidates_from = match method {
        Method::Pse => "pse",
        Method::AidList => "aid_list",
    };
    let afl: Vec<serde_json::Value> = processing
        .afl
        .iter()
        .map(|e| serde_json::json!({"sfi": e.sfi, "first": e.first, "last": e.last, "oda_records": e.oda_records}))
        .collect();
    let body = serde_json::json!({
        "device": device,
        "atr": atr.to_hex(),
        "candidates_from": candidates_from,
        "candidates": candidates.iter().map(|c| serde_json::json!({
            "aid": hex::encode_upper(&c.aid),
            "label": c.label,
            "priority": c.priority,
            "confirmation_required": c.confirmation_required,
        })).collect::<Vec<_>>(),
        "aid": hex::encode_upper(&app.candidate.aid),
        "label": app.candidate.label,
        "pan_masked": data.pan_masked(),
        "expiry": data.expiry(),
        "aip": hex::encode_upper(processing.aip),
        "aip_features": aip_features(processing.aip),
        "afl": afl,
        "cvm_list": data.get(tags::CVM_LIST).map(hex::encode_upper),
        "cvm_rules": cvm_rules(data.get(tags::CVM_LIST)),
        "records": data.records.len(),
        "oda": oda_summary(data, &app.candidate.aid, processing.aip, &ca_keys, ca_keys_file, today),
    });
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    } else {
        println!("{device}: ATR {}", body["atr"].as_str().unwrap_or(""));
        println!(
            "  candidates from {}:",
            match method {
                Method::Pse => "the PSE directory",
                Method::AidList => "the list of AIDs",
            }
        );
        for c in candidates {
            println!(
                "    {} {} (priority {})",
                hex::encode_upper(&c.aid),
                c.label.as_deref().unwrap_or(""),
                c.priority.map_or("none".to_string(), |p| p.to_string())
            );
        }
        println!(
            "  selected: {} {}",
            body["aid"].as_str().unwrap_or(""),
            app.candidate.label.as_deref().unwrap_or("")
        );
        println!(
            "  PAN: {}",
            data.pan_masked().unwrap_or_else(|| "(none)".into())
        );
        println!(
            "  expiry (YYMMDD): {}",
            data.expiry().unwrap_or_else(|| "(none)".into())
        );
        println!(
            "  AIP: {} {:?}",
            body["aip"].as_str().unwrap_or(""),
            aip_features(processing.aip)
        );
        for e in &processing.afl {
            println!(
                "  AFL: SFI {} records {}-{} ({} for ODA)",
                e.sfi, e.first, e.last, e.oda_records
            );
        }
        if let Some(c) = body["cvm_list"].as_str() {
            println!("  CVM list: {c}");
            for r in cvm_rules(data.get(tags::CVM_LIST)) {
                println!("    {r}");
            }
        }
        println!("  ODA: {}", body["oda"].as_str().unwrap_or(""));
    }
    Ok(Exit::Ok)
}

/// How to give `card read` the CA key it lacks (RID `rid`, index `index`).
fn add_ca_key(rid: [u8; 5], index: u8, ca_keys_file: Option<&std::path::Path>) -> String {
    let line = format!("{} {index:02X} EXPONENT MODULUS", hex::encode_upper(rid));
    match ca_keys_file {
        Some(path) => format!(
            "add the scheme's key to {} as a line `{line}` ({})",
            path.display(),
            pos_emv::capk::LINE_FORMAT
        ),
        None => format!(
            "only the public test keys are built in: put the scheme's key in a CA key file as a line `{line}` ({}) and pass --ca-keys FILE (it replaces the built-in keys)",
            pos_emv::capk::LINE_FORMAT
        ),
    }
}

/// Offline data authentication as far as a read-only session can take it: recover the
/// issuer and ICC public keys through the CA key, and check SDA where the card uses it.
/// DDA and CDA need a transaction (INTERNAL AUTHENTICATE / GENERATE AC) and are reported
/// as such. Returns a sentence for people.
fn oda_summary(
    data: &CardData,
    aid: &[u8],
    aip: [u8; 2],
    ca_keys: &pos_emv::capk::CaKeys,
    ca_keys_file: Option<&std::path::Path>,
    today: (u8, u8),
) -> String {
    use pos_emv::oda;
    let Some(index) = data.get(tags::CA_PK_INDEX).and_then(|v| v.first().copied()) else {
        return "not possible: the card has no CA public key index (8F)".into();
    };
    let Some(rid) = aid.get(..5).and_then(|r| <[u8; 5]>::try_from(r).ok()) else {
        return "not possible: AID shorter than a RID".into();
    };
    let Some(pan) = data.get(tags::PAN).and_then(|p| oda::pan_digits(p).ok()) else {
        return "not possible: no PAN".into();
    };
    let ca = match oda::find_ca_key(ca_keys, rid, index) {
        Ok(ca) => ca,
        Err(e) => return format!("failed: {e}; {}", add_ca_key(rid, index, ca_keys_file)),
    };
    let (Some(cert), Some(exp)) = (
        data.get(tags::ISSUER_PK_CERT),
        data.get(tags::ISSUER_PK_EXPONENT),
    ) else {
        return "failed: issuer public key certificate (90/9F32) missing".into();
    };
    let issuer = match oda::recover_issuer_key(
        ca,
        cert,
        data.get(tags::ISSUER_PK_REMAINDER),
        exp,
        &pan,
        today,
    ) {
        Ok(k) => k,
        Err(e) => return format!("failed: {e}"),
    };
    let mut static_data = data.oda_input.clone();
    if data.get(tags::SDA_TAG_LIST) == Some(&[0x82][..]) {
        static_data.extend_from_slice(&aip);
    }
    let ca_name = format!("CA {}/{index:02X}", hex::encode_upper(rid));
    if let (Some(cert), Some(exp)) = (data.get(tags::ICC_PK_CERT), data.get(tags::ICC_PK_EXPONENT))
    {
        return match oda::recover_icc_key(
            &issuer,
            cert,
            data.get(tags::ICC_PK_REMAINDER),
            exp,
            &static_data,
            &pan,
            today,
        ) {
            Ok(k) => format!(
                "issuer and ICC certificates verified with {ca_name} (ICC key {} bits); DDA/CDA are checked in a transaction",
                k.len() * 8
            ),
            Err(e) => format!("failed: {e}"),
        };
    }
    match data.get(tags::SSAD) {
        Some(ssad) if aip[0] & 0x40 != 0 => match oda::verify_sda(&issuer, ssad, &static_data) {
            Ok(dac) => format!(
                "SDA verified with {ca_name} (data authentication code {})",
                hex::encode_upper(dac)
            ),
            Err(e) => format!("failed: {e}"),
        },
        _ => format!(
            "issuer certificate verified with {ca_name}; no ICC certificate or SDA data to check"
        ),
    }
}
