//! Scenarios: emv.

use super::*;

pub(super) fn emv_read_case(ctx: &mut Ctx<'_>, card: &str) -> Outcome {
    let expected = expected_pan(card)
        .ok_or_else(|| fail(format!("no expected PAN known for card {card:?}")))?;
    let expected = pos_hal::mask_pan(expected);
    fresh_card(ctx, card)?;
    let mut reader = open_reader(ctx)?;
    wait_presence(&mut reader, true, Duration::from_secs(5))?;
    let atr = reader
        .power_on(0)
        .map_err(|e| device_fail("power on", &e))?;
    ctx.step(format!("ATR {}", atr.to_hex()));
    let t = Instant::now();
    let read = emv_read(&mut reader, 0);
    let took = t.elapsed();
    let _ = reader.power_off(0);
    card_stats(ctx);
    let read = read.map_err(|e| {
        fail(format!(
            "the EMV read failed after {} ms: {e} [{}]",
            took.as_millis(),
            e.kind()
        ))
    })?;
    let pan = read.masked_pan.clone().unwrap_or_else(|| "(none)".into());
    ctx.step(format!(
        "application {} {}, {} record(s) in {} ms, PAN {pan}, expiry {}",
        read.aid,
        read.label.as_deref().unwrap_or("(no label)"),
        read.records,
        took.as_millis(),
        if read.has_expiry { "read" } else { "missing" }
    ));
    if read.masked_pan.as_deref() != Some(expected.as_str()) {
        return Err(fail(format!(
            "the card's PAN reads {pan}, expected {expected}"
        )));
    }
    Ok(format!(
        "{card}: {} records, PAN {pan} as expected",
        read.records
    ))
}

pub(super) fn emv_read_profile(ctx: &mut Ctx<'_>) -> Outcome {
    emv_read_case(ctx, CARD)
}

pub(super) fn emv_read_transcript(ctx: &mut Ctx<'_>) -> Outcome {
    emv_read_case(ctx, "transcript:contact-mastercard")
}

pub(super) fn removed_mid_read(ctx: &mut Ctx<'_>) -> Outcome {
    fresh_card(ctx, CARD)?;
    let mut reader = open_reader(ctx)?;
    wait_presence(&mut reader, true, Duration::from_secs(5))?;
    reader
        .power_on(0)
        .map_err(|e| device_fail("power on", &e))?;
    let events = reader
        .subscribe()
        .map_err(|e| device_fail("subscribe to the reader's events", &e))?;
    events.drain();
    ctx.ask(&Verb::CardRemoveOnApdu(3))?;
    let t = Instant::now();
    let read = emv_read(&mut reader, 0);
    let took = t.elapsed();
    let classified = match read {
        Ok(r) => {
            card_stats(ctx);
            return Err(fail(format!(
                "the read completed ({} records) although the card was to be pulled at APDU 3",
                r.records
            )));
        }
        Err(e) => {
            ctx.step(format!(
                "the read failed after {} ms: {e} [{}]",
                took.as_millis(),
                e.kind()
            ));
            (e.kind(), e.to_string())
        }
    };
    let event = wait_event(&events, Instant::now() + Duration::from_secs(5), &|e| {
        matches!(e, DeviceEvent::CardRemoved { slot: 0 })
    });
    let event_seen = match &event {
        Ok(_) => {
            ctx.step("card_removed event seen");
            true
        }
        Err(others) => {
            ctx.step(format!("no card_removed event (events seen: {others:?})"));
            false
        }
    };
    let state = reader
        .slot_status(0)
        .map_err(|e| device_fail("slot status after the pull", &e))?;
    ctx.step(format!("slot 0 after the pull: {state:?}"));
    card_stats(ctx);
    if classified.0 != FaultKind::CardRemoved {
        return Err(fail(format!(
            "the pulled card was classified {}, not card_removed: {}",
            classified.0, classified.1
        )));
    }
    if state.contains(SlotState::CARD_PRESENT) {
        return Err(fail("the slot still reports a card after the pull"));
    }
    if !event_seen {
        return Err(fail(
            "classified card_removed, but no card_removed event came within 5 s",
        ));
    }
    Ok(format!(
        "classified {}; event and slot status agree",
        classified.0
    ))
}
