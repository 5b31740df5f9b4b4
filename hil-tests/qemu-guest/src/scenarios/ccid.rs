//! Scenarios: ccid.

use super::*;

pub(super) fn no_card(ctx: &mut Ctx<'_>) -> Outcome {
    ctx.ask_lenient(&Verb::CardRemove);
    let mut reader = open_reader(ctx)?;
    let state = reader
        .slot_status(0)
        .map_err(|e| device_fail("slot status", &e))?;
    ctx.step(format!("slot 0: {state:?}"));
    if state.contains(SlotState::CARD_PRESENT) {
        return Err(fail(format!(
            "the slot reports a card after card-remove: {state:?}"
        )));
    }
    match reader.power_on(0) {
        Ok(atr) => Err(fail(format!(
            "power-on of the empty slot answered an ATR ({} bytes)",
            atr.as_bytes().len()
        ))),
        Err(e) if e.kind() == FaultKind::CardAbsent => {
            ctx.step(format!("power-on refused: {e} [{}]", e.kind()));
            Ok(format!("no card; power-on classified {}", e.kind()))
        }
        Err(e) => Err(fail(format!(
            "power-on of the empty slot was classified {}, not card_absent: {e}",
            e.kind()
        ))),
    }
}

pub(super) fn atr_apdu(ctx: &mut Ctx<'_>) -> Outcome {
    ctx.ask_lenient(&Verb::CardRemove);
    let mut reader = open_reader(ctx)?;
    wait_presence(&mut reader, false, Duration::from_secs(3))?;
    let events = reader
        .subscribe()
        .map_err(|e| device_fail("subscribe to the reader's events", &e))?;
    events.drain();
    let asked = Instant::now();
    ctx.ask(&Verb::CardInsert(CARD.into()))?;
    let answered = asked.elapsed();
    let seen = wait_event(&events, asked + EVENT_LIMIT, &|e| {
        matches!(e, DeviceEvent::CardInserted { slot: 0 })
    })
    .map_err(|others| {
        fail(format!(
            "no card_inserted event within {} s of the request (events seen: {others:?}; \
             the reader's capabilities: {:?})",
            EVENT_LIMIT.as_secs(),
            reader.capabilities()
        ))
    })?;
    ctx.step(format!(
        "card_inserted event {} ms after the request (the host answered after {} ms)",
        seen.duration_since(asked).as_millis(),
        answered.as_millis()
    ));
    let _ = crate::logtap::drain();
    let atr = reader
        .power_on(0)
        .map_err(|e| device_fail("power on", &e))?;
    ctx.step(format!("ATR {}", atr.to_hex()));
    let parsed = pos_ccid::atr::ParsedAtr::parse(atr.as_bytes())
        .map_err(|e| fail(format!("the ATR {} does not parse: {e}", atr.to_hex())))?;
    ctx.step(format!(
        "ATR: {:?} convention, protocols offered {:?}, Fi/Di {:?}, {} historical byte(s), TCK {}",
        parsed.convention,
        parsed.protocols(),
        parsed.fi_di(),
        parsed.historical.len(),
        match parsed.tck_valid {
            Some(true) => "valid",
            Some(false) => "INVALID",
            None => "absent",
        }
    ));
    let protocol = reader
        .protocol(0)
        .ok_or_else(|| fail("the driver reports no protocol for the powered card"))?;
    let d = reader.descriptor();
    let wanted = pos_ccid::atr::best_fi_di(
        parsed.fi_di(),
        d.max_data_rate_bps,
        d.default_clock_khz.max(1),
    );
    ctx.step(format!(
        "protocol T={protocol}; reader sets parameters itself: {}, runs PPS itself: {}; \
         Fi/Di the driver aims for: {wanted:?}",
        d.auto_parameters(),
        d.auto_pps()
    ));
    for line in crate::logtap::drain() {
        if line.contains("slot 0") {
            ctx.step(format!("driver: {line}"));
        }
    }
    if !parsed.offers(protocol) {
        return Err(fail(format!(
            "the driver chose T={protocol}, which the ATR does not offer ({:?})",
            parsed.protocols()
        )));
    }
    let pse = reader
        .transmit(0, hil_tests::scenarios::SELECT_PSE)
        .map_err(|e| device_fail("SELECT PSE", &e))?;
    let pse_sw = sw_of(&pse).ok_or_else(|| fail("SELECT PSE: response without status words"))?;
    ctx.step(format!(
        "SELECT 1PAY.SYS.DDF01 -> SW {pse_sw:04X} ({} data bytes)",
        pse.len() - 2
    ));
    let aid = card_aid()?;
    let resp = reader
        .transmit(0, &select_aid(&aid))
        .map_err(|e| device_fail("SELECT AID", &e))?;
    let sw = sw_of(&resp).ok_or_else(|| fail("SELECT AID: response without status words"))?;
    ctx.step(format!(
        "SELECT {} -> SW {sw:04X} ({} data bytes)",
        hex(&aid),
        resp.len() - 2
    ));
    let sw = if sw >> 8 == 0x61 {
        // T=0 behind a TPDU reader: fetch the FCI.
        let get_response = [0x00, 0xC0, 0x00, 0x00, (sw & 0xFF) as u8];
        let resp = reader
            .transmit(0, &get_response)
            .map_err(|e| device_fail("GET RESPONSE", &e))?;
        let sw = sw_of(&resp).ok_or_else(|| fail("GET RESPONSE: no status words"))?;
        ctx.step(format!(
            "GET RESPONSE -> SW {sw:04X} ({} data bytes)",
            resp.len() - 2
        ));
        sw
    } else {
        sw
    };
    let _ = reader.power_off(0);
    if sw != 0x9000 {
        return Err(fail(format!(
            "SELECT {} answered {sw:04X}, not 9000",
            hex(&aid)
        )));
    }
    Ok(format!(
        "T={protocol}, ATR {}, SELECT PSE {pse_sw:04X}, SELECT AID 9000",
        atr.to_hex()
    ))
}
