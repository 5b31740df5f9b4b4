//! Scenarios: shared steps.

use super::*;

pub(super) fn open_reader(ctx: &Ctx<'_>) -> Result<AnyReader, End> {
    let uri = DeviceUri::parse(READER_URI).map_err(|e| fail(format!("{READER_URI}: {e}")))?;
    let reader = pos_ccid::open(&uri, ReaderConfig::default())
        .map_err(|e| device_fail(&format!("open the reader {READER_URI}"), &e))?;
    ctx.step(format!(
        "reader {READER_URI} open: {} slot(s), capabilities {:?}",
        reader.slot_count(),
        reader.capabilities()
    ));
    Ok(reader)
}

pub(super) fn card_present<R: ChipReader + ?Sized>(reader: &mut R) -> Result<bool, End> {
    reader
        .slot_status(0)
        .map(|s| s.contains(SlotState::CARD_PRESENT))
        .map_err(|e| device_fail("slot status", &e))
}

/// Poll the slot until a card is (`want`) or is not there; how long it took.
pub(super) fn wait_presence<R: ChipReader + ?Sized>(
    reader: &mut R,
    want: bool,
    limit: Duration,
) -> Result<Duration, End> {
    let t = Instant::now();
    loop {
        if card_present(reader)? == want {
            return Ok(t.elapsed());
        }
        if t.elapsed() >= limit {
            return Err(fail(format!(
                "the slot still {} a card after {} ms",
                if want { "has no" } else { "has" },
                limit.as_millis()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A new card in the reader: pull whatever is in (a refusal is fine), insert `card`.
pub(super) fn fresh_card(ctx: &Ctx<'_>, card: &str) -> Result<(), End> {
    ctx.ask_lenient(&Verb::CardRemove);
    ctx.ask(&Verb::CardInsert(card.to_string()))?;
    Ok(())
}

/// Wait for `wanted` among `events` until `until`; the other events seen, by name.
pub(super) fn wait_event(
    events: &Subscription,
    until: Instant,
    wanted: &dyn Fn(&DeviceEvent) -> bool,
) -> Result<Instant, Vec<&'static str>> {
    let mut others = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(e) if wanted(&e.event) => return Ok(Instant::now()),
            Ok(e) => others.push(e.event.name()),
            Err(_) => return Err(others),
        }
    }
}

pub(super) fn sw_of(response: &[u8]) -> Option<u16> {
    match response {
        [.., a, b] => Some(u16::from_be_bytes([*a, *b])),
        _ => None,
    }
}

/// Whether `sw` says the command worked: `9000`, or `61xx` (the response waits for GET
/// RESPONSE, what a T=0 card answers a case 4 command through a TPDU-level reader).
pub fn sw_ok(sw: u16) -> bool {
    sw == 0x9000 || sw >> 8 == 0x61
}

/// `00 A4 04 00 Lc AID 00`: SELECT by name, first occurrence.
pub fn select_aid(aid: &[u8]) -> Vec<u8> {
    let mut c = vec![0x00, 0xA4, 0x04, 0x00, u8::try_from(aid.len()).unwrap_or(0)];
    c.extend_from_slice(aid);
    c.push(0x00);
    c
}

/// SELECT by name with a 200-byte name (`00 A4 04 00 C8 ... 00`, 206 bytes): longer than a
/// 64-byte CCID message holds; a card answers it with an error status (no such
/// application), which is all a chaining check needs.
pub fn long_command() -> Vec<u8> {
    let mut c = vec![0x00, 0xA4, 0x04, 0x00, 200];
    c.extend((0..200u8).map(|i| 0xA0 ^ i));
    c.push(0x00);
    c
}

/// The card's first application (the profile's first AID).
pub(super) fn card_aid() -> Result<Vec<u8>, End> {
    Profile::Mastercard
        .aids()
        .into_iter()
        .next()
        .ok_or_else(|| fail("the mastercard profile lists no application"))
}

/// What an EMV read found; no card data but the masked PAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmvSummary {
    /// The selected application's AID, hex.
    pub aid: String,
    /// Its label, when the card gave one.
    pub label: Option<String>,
    /// Records read.
    pub records: usize,
    /// The PAN, masked (first 6, last 4), when the records hold one.
    pub masked_pan: Option<String>,
    /// Whether an expiry date was read.
    pub has_expiry: bool,
}

/// The EMV read of the card in `slot` (powered on): application selection (PSE, else the
/// list of AIDs), GET PROCESSING OPTIONS, READ RECORD of every AFL entry, mandatory-data
/// check. The same steps as the terminal's transaction up to GENERATE AC.
///
/// Errors: the [`EmvError`] (its [`Fault::kind`] says card removed, mute, unsupported...).
pub fn emv_read<R: ChipReader + ?Sized>(reader: &mut R, slot: u8) -> Result<EmvSummary, EmvError>
where
    R::Error: Send + Sync + 'static,
{
    let mut ch = SlotChannel::new(reader, slot);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0x1234_5678);
    let terminal = pos_emv::terminal::TerminalData::new(nanos.to_be_bytes());
    let supported = pos_emv::select::default_supported_aids();
    let (app, processing) =
        pos_emv::read::select_and_initiate(&mut ch, &supported, &terminal, &mut |_| Some(0))?;
    let data = pos_emv::read::read_application_data(&mut ch, &processing.afl)?;
    Ok(EmvSummary {
        aid: hex(&app.candidate.aid),
        label: app.candidate.label.clone(),
        records: data.records.len(),
        masked_pan: data.pan_masked(),
        has_expiry: data.expiry().is_some(),
    })
}

/// The host's card counters (`apdus=N removals=N`), as a step.
pub(super) fn card_stats(ctx: &Ctx<'_>) {
    match ctx.control.request(&Verb::CardStats, REQUEST_TIMEOUT) {
        Ok(text) => ctx.step(format!("card side: {text}")),
        Err(e) => ctx.step(format!("card stats unavailable: {e}")),
    }
}

/// The number of APDUs the host's card has received so far (`apdus=N` of `card-stats`).
pub(super) fn card_apdus(ctx: &Ctx<'_>) -> Option<u64> {
    let text = ctx
        .control
        .request(&Verb::CardStats, REQUEST_TIMEOUT)
        .ok()?;
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("apdus="))
        .and_then(|n| n.parse().ok())
}

/// Report how many exchanges with the card each transmit cost (a T=0 path that fetches
/// the answer with GET RESPONSE costs two), so the two benchmarks are seen to do the same.
pub(super) fn exchanges_per_transmit(ctx: &Ctx<'_>, before: Option<u64>, transmits: u32) {
    match (before, card_apdus(ctx)) {
        (Some(b), Some(a)) if transmits > 0 => ctx.step(format!(
            "the card received {} APDUs for {transmits} transmits ({:.2} per transmit)",
            a.saturating_sub(b),
            a.saturating_sub(b) as f64 / f64::from(transmits)
        )),
        _ => ctx.step("the card's APDU count is unavailable"),
    }
}
