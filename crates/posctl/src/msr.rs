//! `posctl msr decode`: what a swipe holds, masked.

use pos_magstripe::{
    SwipeVerdict, Track, Track1Data, Track2Data, TrackBuf, TrackStatus, decode_bits, parse_ascii,
    swipe_verdict,
};

use crate::{CliError, Exit};

fn status_name(s: TrackStatus) -> &'static str {
    pos_hal::TrackStatus::from(s).name()
}

/// `posctl msr decode DATA`: DATA is a reader's track text (`%B...^...?;...=...?`) or a raw
/// bit string of 0s and 1s as read from the stripe (track 2, else 1, else 3; either
/// direction). Exit 0 when a track read, 2 when none did (a bad swipe), 1 for bad input.
pub fn decode(data: &str, json: bool) -> Result<Exit, CliError> {
    let data = data.trim();
    if data.is_empty() {
        return Err(CliError::new("no data: give track text or a bit string"));
    }
    // Decoded raw tracks live here so the parsed fields can borrow from them.
    let mut bufs = [TrackBuf::new(), TrackBuf::new(), TrackBuf::new()];
    let mut texts: [(Track, TrackStatus, String); 3] = [
        (Track::One, TrackStatus::Empty, String::new()),
        (Track::Two, TrackStatus::Empty, String::new()),
        (Track::Three, TrackStatus::Empty, String::new()),
    ];
    if data.chars().all(|c| c == '0' || c == '1') {
        let bits: Vec<u8> = data.bytes().map(|b| b - b'0').collect();
        for (i, track) in [Track::One, Track::Two, Track::Three]
            .into_iter()
            .enumerate()
        {
            let status = decode_bits(track, &bits, &mut bufs[i]);
            texts[i].1 = status;
            if status == TrackStatus::Ok {
                texts[i].2 = String::from_utf8_lossy(bufs[i].as_bytes()).into_owned();
            }
        }
        // A bit string is one track: keep the first that read, the others are not there.
        if let Some(found) = texts.iter().position(|t| t.1 == TrackStatus::Ok) {
            for (i, t) in texts.iter_mut().enumerate() {
                if i != found {
                    t.1 = TrackStatus::Empty;
                    t.2.clear();
                }
            }
        }
    } else {
        for (i, t) in parse_ascii(data).into_iter().enumerate() {
            texts[i].1 = t.status;
            texts[i].2 = t.data.to_string();
        }
    }
    let t1 = (texts[0].1 == TrackStatus::Ok)
        .then(|| Track1Data::parse(&texts[0].2).ok())
        .flatten();
    let t2 = (texts[1].1 == TrackStatus::Ok)
        .then(|| Track2Data::parse(&texts[1].2).ok())
        .flatten();
    let pan_masked = t2
        .as_ref()
        .map(|t| t.masked_pan().to_string())
        .or_else(|| t1.as_ref().map(|t| t.masked_pan().to_string()));
    let luhn = t2
        .as_ref()
        .map(|t| t.luhn_ok())
        .or_else(|| t1.as_ref().map(|t| t.luhn_ok()));
    let expiry = t2
        .as_ref()
        .and_then(|t| t.expiry)
        .or_else(|| t1.as_ref().and_then(|t| t.expiry))
        .map(|d| d.iter().map(|x| char::from(b'0' + x)).collect::<String>());
    let service = t2
        .as_ref()
        .and_then(|t| t.service_code)
        .or_else(|| t1.as_ref().and_then(|t| t.service_code));
    let verdict = service.map(|s| match swipe_verdict(s, false) {
        SwipeVerdict::Proceed => "proceed",
        SwipeVerdict::InsertChip => "insert_chip",
        SwipeVerdict::FallbackAllowed => "fallback_allowed",
    });
    let tracks: Vec<serde_json::Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| serde_json::json!({"track": i + 1, "status": status_name(t.1)}))
        .collect();
    let any_read = texts.iter().any(|t| t.1 == TrackStatus::Ok);
    if json {
        let body = serde_json::json!({
            "pan_masked": pan_masked,
            "luhn_ok": luhn,
            "expiry": expiry,
            "service_code": service.map(|s| s.digits().iter().map(|d| char::from(b'0' + d)).collect::<String>()),
            "chip_card": service.map(|s| s.chip_card()),
            "verdict": verdict,
            "tracks": tracks,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    } else {
        for (i, t) in texts.iter().enumerate() {
            println!("track {}: {}", i + 1, status_name(t.1));
        }
        if let Some(p) = &pan_masked {
            println!(
                "PAN: {p}{}",
                if luhn == Some(false) {
                    " (Luhn check fails)"
                } else {
                    ""
                }
            );
        }
        if let Some(e) = &expiry {
            println!("expiry (YYMM): {e}");
        }
        if let Some(s) = service {
            let d = s.digits();
            println!(
                "service code: {}{}{} ({:?}, {:?}, {:?})",
                d[0],
                d[1],
                d[2],
                s.interchange(),
                s.authorization(),
                s.pin_requirement()
            );
        }
        if verdict == Some("insert_chip") {
            println!(
                "CHIP CARD: ask for the card to be inserted (swipe only after a failed chip read)"
            );
        }
    }
    Ok(if any_read {
        Exit::Ok
    } else {
        Exit::DeviceFault
    })
}

/// `posctl msr watch`: live swipes, masked, with per-track status, until `seconds` pass.
pub fn watch(device: &str, seconds: Option<u64>, json: bool) -> Result<Exit, CliError> {
    use pos_hal::{Fault, FaultKind, MagstripeReader};
    let uri = pos_link::DeviceUri::parse(device).map_err(|e| CliError::new(e.to_string()))?;
    let mut reader = pos_magstripe::serial::open(&uri).map_err(|e| CliError {
        exit: Exit::Error,
        hint: e.kind().advice().to_string().into(),
        message: e.to_string(),
    })?;
    let started = std::time::Instant::now();
    let until = seconds.map(|s| started + std::time::Duration::from_secs(s));
    if !json {
        println!("waiting for swipes on {device} (masked output)");
    }
    loop {
        let wait = match until {
            Some(u) => {
                let left = u.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Ok(Exit::Ok);
                }
                left.min(std::time::Duration::from_millis(500))
            }
            None => std::time::Duration::from_millis(500),
        };
        let t = started.elapsed().as_secs_f64();
        match reader.wait_for_swipe(wait) {
            Ok(swipe) => {
                let statuses: Vec<&str> = swipe.statuses().iter().map(|s| s.name()).collect();
                let text = swipe
                    .tracks
                    .get(1)
                    .and_then(|t| t.data.as_ref())
                    .map(|d| String::from_utf8_lossy(d.expose()).into_owned());
                let t2 = text.as_deref().and_then(|t| Track2Data::parse(t).ok());
                let pan = t2.as_ref().map(|t| t.masked_pan().to_string());
                let chip = t2
                    .as_ref()
                    .and_then(|t| t.service_code)
                    .map(|s| s.chip_card());
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"t_ms": (t * 1000.0) as u64, "tracks": statuses, "pan_masked": pan, "chip_card": chip})
                    );
                } else {
                    println!(
                        "[{t:>8.3}s] swipe: tracks {:?}  PAN {}{}",
                        statuses,
                        pan.as_deref().unwrap_or("-"),
                        if chip == Some(true) {
                            "  CHIP CARD: insert it"
                        } else {
                            ""
                        }
                    );
                }
            }
            Err(e) if e.kind() == FaultKind::Timeout => {}
            Err(e) if e.kind() == FaultKind::BadRead => {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"t_ms": (t * 1000.0) as u64, "error": "bad_read"})
                    );
                } else {
                    println!("[{t:>8.3}s] bad swipe: {e}");
                }
            }
            Err(e) => {
                return Err(CliError {
                    exit: Exit::Error,
                    hint: Some(e.kind().advice().to_string()),
                    message: e.to_string(),
                });
            }
        }
    }
}
