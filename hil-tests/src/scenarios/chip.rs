//! Scenarios: reader.

use super::*;

/// SELECT the contact Payment System Environment, `1PAY.SYS.DDF01` (the contact card's
/// directory; `2PAY.SYS.DDF01`, the PPSE, is contactless only).
pub const SELECT_PSE: &[u8] = b"\x00\xA4\x04\x00\x0E1PAY.SYS.DDF01\x00";

pub(super) fn reader(devices: &mut Devices) -> Result<&mut Reader, End> {
    devices
        .reader
        .as_mut()
        .ok_or_else(|| End::Skip("no chip reader on this lane ([reader] not in the rig)".into()))
}

pub(super) fn msr(devices: &mut Devices) -> Result<&mut Msr, End> {
    devices
        .msr
        .as_mut()
        .ok_or_else(|| End::Skip("no stripe reader on this lane ([msr] not in the rig)".into()))
}

pub(super) fn printer(devices: &mut Devices) -> Result<&mut Printer, End> {
    devices
        .printer
        .as_mut()
        .ok_or_else(|| End::Skip("no printer on this lane ([printer] not in the rig)".into()))
}

pub(super) fn card_present(r: &mut Reader) -> Result<bool, String> {
    r.slot_status(0)
        .map(|s| s.contains(SlotState::CARD_PRESENT))
        .map_err(|e| format!("slot status: {e} [{}]", e.kind()))
}

/// Once a card insertion was seen on `events`, wait until the driver is quiet (a removal
/// notification from before may still come), at most 600 ms.
pub(super) fn settle(events: Option<Subscription>) {
    let Some(events) = events else { return };
    let end = Instant::now() + Duration::from_millis(600);
    let mut seen = false;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let wait = if seen {
            left.min(Duration::from_millis(50))
        } else {
            left
        };
        match events.recv_timeout(wait) {
            Ok(e) => seen |= matches!(e.event, DeviceEvent::CardInserted { slot: 0 }),
            Err(RecvError::Timeout | RecvError::Closed) => return,
        }
    }
}

/// Make sure a card is in the reader: ask for it when it is not.
pub(super) fn ensure_card(ctx: &mut Ctx<'_>) -> Outcome {
    let r = reader(ctx.devices)?;
    if card_present(r).map_err(fail)? {
        return Ok(());
    }
    let events = r.subscribe().ok();
    ask(
        ctx.operator,
        &mut ctx.steps,
        ctx.limit,
        Action::InsertCard,
        "insert the test card in the chip reader now",
        &mut || card_present(r),
    )?;
    settle(events);
    Ok(())
}

/// Power the card on and SELECT the PSE; the response's status words.
pub(super) fn select_pse(r: &mut Reader) -> Result<[u8; 2], End> {
    r.power_on(0).map_err(|e| device_fail("power on", &e))?;
    let resp = r
        .transmit(0, SELECT_PSE)
        .map_err(|e| device_fail("SELECT PSE", &e))?;
    match resp.as_slice() {
        [.., a, b] => Ok([*a, *b]),
        _ => Err(fail(format!(
            "SELECT PSE: response of {} bytes, no status words",
            resp.len()
        ))),
    }
}

pub(super) fn sw_ok(sw: [u8; 2]) -> bool {
    sw == [0x90, 0x00] || sw[0] == 0x61
}

pub(super) fn card_inserted(ctx: &mut Ctx<'_>) -> Outcome {
    let r = reader(ctx.devices)?;
    if card_present(r).map_err(fail)? {
        ask(
            ctx.operator,
            &mut ctx.steps,
            ctx.limit,
            Action::RemoveCard,
            "take the card out of the chip reader",
            &mut || card_present(r).map(|p| !p),
        )?;
    }
    let events = r.subscribe().ok();
    ask(
        ctx.operator,
        &mut ctx.steps,
        ctx.limit,
        Action::InsertCard,
        "insert the test card in the chip reader now",
        &mut || card_present(r),
    )?;
    settle(events);
    ctx.note("card present in slot 0");
    Ok(())
}

pub(super) fn atr(ctx: &mut Ctx<'_>) -> Outcome {
    ensure_card(ctx)?;
    let r = reader(ctx.devices)?;
    let atr = r.power_on(0).map_err(|e| device_fail("power on", &e))?;
    let bytes = atr.as_bytes().to_vec();
    ctx.note(format!("ATR {}", atr.to_hex()));
    if bytes.len() < 2 || !matches!(bytes[0], 0x3B | 0x3F) {
        return Err(fail(format!(
            "ATR {} is not an ISO 7816-3 ATR (TS must be 3B or 3F)",
            atr.to_hex()
        )));
    }
    Ok(())
}

pub(super) fn apdu_exchange(ctx: &mut Ctx<'_>) -> Outcome {
    ensure_card(ctx)?;
    let r = reader(ctx.devices)?;
    let sw = select_pse(r)?;
    let _ = r.power_off(0);
    ctx.note(format!(
        "SELECT 1PAY.SYS.DDF01 -> SW {:02X}{:02X}",
        sw[0], sw[1]
    ));
    if !sw_ok(sw) {
        return Err(End::Fail {
            message: format!(
                "SELECT PSE answered {:02X}{:02X}, not 9000 or 61xx",
                sw[0], sw[1]
            ),
            hint: Some("use an EMV test card with a PSE (6A82: the card has none)".into()),
        });
    }
    Ok(())
}

pub(super) fn card_removed(ctx: &mut Ctx<'_>) -> Outcome {
    ensure_card(ctx)?;
    let r = reader(ctx.devices)?;
    ask(
        ctx.operator,
        &mut ctx.steps,
        ctx.limit,
        Action::RemoveCard,
        "pull the card out of the chip reader now",
        &mut || card_present(r).map(|p| !p),
    )?;
    ctx.note("slot 0 empty");
    Ok(())
}

pub(super) fn removed_mid_exchange(ctx: &mut Ctx<'_>) -> Outcome {
    ensure_card(ctx)?;
    let r = reader(ctx.devices)?;
    let sw = select_pse(r)?;
    if !sw_ok(sw) {
        return Err(fail(format!(
            "SELECT PSE answered {:02X}{:02X} before the pull",
            sw[0], sw[1]
        )));
    }
    let mut exchanges = 0u32;
    let mut kind = None;
    let mut message = String::new();
    ask(
        ctx.operator,
        &mut ctx.steps,
        ctx.limit,
        Action::RemoveCard,
        "pull the card out of the chip reader now (it is being read)",
        &mut || match r.transmit(0, SELECT_PSE) {
            Ok(_) => {
                exchanges += 1;
                Ok(false)
            }
            Err(e) => {
                kind = Some(e.kind());
                message = e.to_string();
                Ok(true)
            }
        },
    )?;
    ctx.note(format!("{exchanges} exchanges answered, then: {message}"));
    match kind {
        Some(FaultKind::CardRemoved) => Ok(()),
        Some(k) => Err(fail(format!(
            "the pulled card was classified {k}, not card_removed: {message}"
        ))),
        None => Err(fail("no exchange failed")),
    }
}

pub(super) fn card_mute(ctx: &mut Ctx<'_>) -> Outcome {
    let Some(sim) = ctx.sim_for("reader") else {
        reader(ctx.devices)?;
        return Err(End::Skip(
            "virtual lane only: a real card cannot be made mute on demand".into(),
        ));
    };
    ensure_card(ctx)?;
    let r = reader(ctx.devices)?;
    let sw = select_pse(r)?;
    if !sw_ok(sw) {
        return Err(fail(format!(
            "SELECT PSE answered {:02X}{:02X}",
            sw[0], sw[1]
        )));
    }
    sim.mute_card()
        .map_err(|e| device_fail("mute the card", &e))?;
    ctx.steps.push("card muted".into());
    match r.transmit(0, SELECT_PSE) {
        Err(e) if e.kind() == FaultKind::CardMute => {
            ctx.steps.push(format!("classified: {e}"));
            Ok(())
        }
        Err(e) => Err(fail(format!(
            "the mute card was classified {}, not card_mute: {e}",
            e.kind()
        ))),
        Ok(_) => Err(fail("the mute card answered")),
    }
}

pub(super) fn unplugged(ctx: &mut Ctx<'_>) -> Outcome {
    let r = reader(ctx.devices)?;
    let mut kind = None;
    let mut message = String::new();
    ask(
        ctx.operator,
        &mut ctx.steps,
        ctx.limit,
        Action::UnplugReader,
        "unplug the chip reader's cable now",
        &mut || match r.slot_status(0) {
            Ok(_) => Ok(false),
            Err(e) => {
                kind = Some(e.kind());
                message = e.to_string();
                Ok(true)
            }
        },
    )?;
    ctx.note(format!("reader: {message}"));
    if kind != Some(FaultKind::Disconnected) {
        return Err(fail(format!(
            "the unplugged reader was classified {}, not disconnected: {message}",
            kind.map_or("nothing".to_string(), |k| k.to_string())
        )));
    }
    // Back to a working reader for the cases after this one.
    if let Some(sim) = ctx.sim_for("reader") {
        sim.reset(ctx.devices)
            .map_err(|e| device_fail("re-plugging the virtual reader", &e))?;
        ctx.note("virtual reader re-plugged");
        return Ok(());
    }
    let uri = ctx.target.device_config().reader;
    let config = DeviceConfig {
        reader: uri,
        printer: "none".into(),
        msr: "none".into(),
        ..DeviceConfig::default()
    };
    let mut fresh = None;
    ask(
        ctx.operator,
        &mut ctx.steps,
        ctx.limit,
        Action::PlugReader,
        "plug the chip reader back in",
        &mut || match pos_lane::open(&config, None) {
            Ok(lane) => {
                fresh = lane.devices.reader;
                Ok(fresh.is_some())
            }
            Err(_) => Ok(false),
        },
    )?;
    ctx.devices.reader = fresh;
    Ok(())
}
