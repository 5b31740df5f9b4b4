//! The rig's own cases: what only the QEMU rig can check, against QEMU's USB devices and the
//! host's virtual card, printer and typist, through our real code paths (rusb, serialport
//! over `ftdi_sio`, evdev).
//!
//! Names are `group.case` in groups the hil-tests suite does not use (`usb`, `ccid`, `emv`,
//! `escpos`, `wedge`, `apdu`), so the host can tell them from the suite's cases (sent as
//! `suite.NAME`). Every case reports its steps, ends PASS, FAIL or SKIP with a message,
//! and never panics (a panic would still be caught and reported as a FAIL). No full PAN or
//! track data is ever printed or sent: PANs are masked (first 6, last 4).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use pos_ccid::descriptor::CcidDescriptor;
use pos_ccid::{AnyReader, ReaderConfig};
use pos_emv::EmvError;
use pos_emv::profile_card::Profile;
use pos_hal::{
    ChipReader, CutKind, Device as _, DeviceEvent, Document, Fault, FaultKind, PrintOutcome,
    PrinterConditions, ReceiptPrinter as _, SlotChannel, SlotState, Subscription,
};
use pos_link::DeviceUri;

use crate::bench::{Stats, hex};
use crate::control::Control;
use crate::ctl::{Outcome as Verdict, Verb};
use crate::operator::{REQUEST_TIMEOUT, TEST_SWIPE_PAN, swipe_text};
use crate::options::{Pick, input_event_by_name, usb_tty};

/// QEMU's `usb-ccid` reader.
pub const READER_VID: u16 = 0x08e6;
/// QEMU's `usb-ccid` reader.
pub const READER_PID: u16 = 0x4433;
/// The reader's URI.
pub const READER_URI: &str = "usb:08e6:4433";
/// The USB interface class of smart-card readers (CCID).
pub const USB_CLASS_CCID: u8 = 0x0b;
/// The printer's profile: the one `pos_escpos::sim::SimConfig::default()` uses, which the
/// host's virtual printer runs with.
pub const PRINTER_PROFILE: &str = "epson-tm-t20";
/// The tty QEMU's FTDI adapter becomes.
pub const PRINTER_TTY: &str = "/dev/ttyUSB0";
/// A part of the name of QEMU's USB keyboard (`QEMU QEMU USB Keyboard`).
pub const KEYBOARD_NAME: &str = "USB Keyboard";
/// The card the reader cases insert.
pub const CARD: &str = "mastercard";

/// How long a card-inserted event may take after the request.
const EVENT_LIMIT: Duration = Duration::from_secs(10);
/// How long the FTDI adapter's tty may take to appear after `printer-connect`.
const TTY_LIMIT: Duration = Duration::from_secs(15);
/// How long a printer status change may take to show.
const PRINTER_LIMIT: Duration = Duration::from_secs(10);
/// How long pcscd may take to open its socket.
const PCSCD_LIMIT: Duration = Duration::from_secs(10);
/// Warm-up exchanges before a benchmark's timed ones.
pub const WARM_UP: u32 = 20;

/// The printer's URI for the tty at `path`.
pub fn printer_uri(path: &str) -> String {
    format!("serial:{path}?baud=115200&profile={PRINTER_PROFILE}")
}

/// The PAN the host's card `card` carries (`card-insert` names), when known: a profile's
/// test PAN, or the test PAN of a recorded transcript (see its README).
pub fn expected_pan(card: &str) -> Option<&'static str> {
    match card {
        "transcript:contact-mastercard" => Some("5413330089600044"),
        "transcript:contact-upi" => Some("6210948000000011"),
        other => Profile::from_str(other).ok().map(Profile::pan),
    }
}

/// How a case ends early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// An expectation did not hold.
    Fail(String),
    /// The case cannot run here.
    Skip(String),
}

/// What a case returns: a summary when it passed.
pub type Outcome = Result<String, End>;

fn fail(message: impl Into<String>) -> End {
    End::Fail(message.into())
}

/// A device error in words, with its kind.
fn device_fail<E: Fault + std::fmt::Display>(what: &str, e: &E) -> End {
    End::Fail(format!("{what}: {e} [{}]", e.kind()))
}

/// What a case works with.
pub struct Ctx<'a> {
    control: &'a Control,
    case: &'static str,
    bench: u32,
}

impl<'a> Ctx<'a> {
    /// The context of `case`; `bench` APDUs per benchmark.
    pub fn new(control: &'a Control, case: &'static str, bench: u32) -> Self {
        Ctx {
            control,
            case,
            bench,
        }
    }

    /// Report a step to the host and on the console. No card data in `text`.
    fn step(&self, text: impl AsRef<str>) {
        let text = text.as_ref();
        println!("  {}: {text}", self.case);
        if let Err(e) = self.control.step(self.case, text) {
            eprintln!("rig-guest: {e}");
        }
    }

    /// Ask the host for `verb`; a refusal or no answer fails the case.
    fn ask(&self, verb: &Verb) -> Result<String, End> {
        let t = Instant::now();
        let answer = self
            .control
            .request(verb, REQUEST_TIMEOUT)
            .map_err(End::Fail)?;
        self.step(format!(
            "host did `{}` in {} ms{}",
            short(verb),
            t.elapsed().as_millis(),
            if answer.is_empty() {
                String::new()
            } else {
                format!(": {answer}")
            }
        ));
        Ok(answer)
    }

    /// Ask the host for `verb`; a refusal is only a step (`card-remove` with no card in).
    fn ask_lenient(&self, verb: &Verb) {
        if let Err(e) = self.control.request(verb, REQUEST_TIMEOUT) {
            self.step(format!("(ignored) {e}"));
        }
    }
}

/// The verb without its argument when that is card data (the typed swipe).
fn short(verb: &Verb) -> String {
    verb.redacted()
}

/// A rig case.
#[derive(Clone, Copy)]
pub struct RigCase {
    /// `group.case`.
    pub name: &'static str,
    /// What it checks.
    pub about: &'static str,
    run: fn(&mut Ctx<'_>) -> Outcome,
}

impl std::fmt::Debug for RigCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Every rig case, in the order they run. The benchmarks (`apdu.*`) come last.
pub fn cases() -> Vec<RigCase> {
    macro_rules! c {
        ($name:literal, $about:literal, $f:path) => {
            RigCase {
                name: $name,
                about: $about,
                run: $f,
            }
        };
    }
    vec![
        c!(
            "usb.discovery",
            "rusb finds QEMU's reader 08e6:4433 with a CCID interface and its class descriptor",
            usb_discovery
        ),
        c!(
            "ccid.no_card",
            "an empty reader: slot status without card, power-on fails as card_absent",
            no_card
        ),
        c!(
            "ccid.atr_apdu",
            "insertion event, ATR parses, protocol and parameters, SELECT answered 9000",
            atr_apdu
        ),
        c!(
            "emv.read_profile",
            "a full EMV read of the mastercard profile: the masked PAN matches",
            emv_read_profile
        ),
        c!(
            "emv.read_transcript",
            "a full EMV read of the recorded Mastercard session: the masked PAN matches",
            emv_read_transcript
        ),
        c!(
            "emv.removed_mid_read",
            "the card pulled at the 3rd APDU of a read fails as card_removed, and is seen gone",
            removed_mid_read
        ),
        c!(
            "escpos.ftdi",
            "the printer over QEMU's FTDI adapter: print confirmed, paper out, unplugged",
            escpos_ftdi
        ),
        c!(
            "wedge.swipe",
            "a swipe typed on QEMU's USB keyboard reads through evdev; the masked PAN matches",
            wedge_swipe
        ),
        c!(
            "apdu.direct",
            "benchmark: SELECT AID round trips through our CCID driver",
            bench_direct
        ),
        c!(
            "apdu.pcsc",
            "benchmark: the same APDU through pcscd and libpcsclite",
            bench_pcsc
        ),
    ]
}

/// The cases `pick` selects, in run order.
///
/// Errors: a name that is neither a case nor a group, in words.
pub fn select(pick: &Pick) -> Result<Vec<RigCase>, String> {
    let all = cases();
    let names = match pick {
        Pick::All => return Ok(all),
        Pick::Nothing => return Ok(Vec::new()),
        Pick::Some(names) => names,
    };
    let matches =
        |c: &RigCase, o: &str| c.name == o || c.name.split_once('.').is_some_and(|(g, _)| g == o);
    for o in names {
        if !all.iter().any(|c| matches(c, o)) {
            return Err(format!(
                "unknown rig case {o:?} (rig cases: {}; `suite.NAME` for the suite's)",
                all.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    Ok(all
        .into_iter()
        .filter(|c| names.iter().any(|o| matches(c, o)))
        .collect())
}

/// How a case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// PASS, FAIL or SKIP.
    pub verdict: Verdict,
    /// How long it took.
    pub millis: u64,
    /// The summary, or why it failed or was skipped.
    pub text: String,
}

impl CaseResult {
    /// The human line: `PASS ccid.atr_apdu (120 ms): T=1 ...`.
    pub fn line(&self) -> String {
        let v = match self.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        };
        format!("{v} {} ({} ms): {}", self.name, self.millis, self.text)
    }
}

/// Run `case`: its steps and its end go to the host (`STEP`, `CASE`) and to standard
/// output. A panic in the case is caught and is a FAIL.
pub fn run_case(control: &Control, case: &RigCase, bench: u32) -> CaseResult {
    println!("RUN  {}: {}", case.name, case.about);
    let t = Instant::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut ctx = Ctx::new(control, case.name, bench);
        (case.run)(&mut ctx)
    }));
    let (verdict, text) = match result {
        Ok(Ok(summary)) => (Verdict::Pass, summary),
        Ok(Err(End::Fail(why))) => (Verdict::Fail, why),
        Ok(Err(End::Skip(why))) => (Verdict::Skip, why),
        Err(_) => (
            Verdict::Fail,
            "the case panicked (a bug in rig-guest)".into(),
        ),
    };
    let millis = u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX);
    let result = CaseResult {
        name: case.name.to_string(),
        verdict,
        millis,
        text,
    };
    println!("{}", result.line());
    if let Err(e) = control.case(&result.name, result.verdict, millis, &result.text) {
        eprintln!("rig-guest: {e}");
    }
    result
}

// ---------------------------------------------------------------------------------------
// shared steps

fn open_reader(ctx: &Ctx<'_>) -> Result<AnyReader, End> {
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

fn card_present<R: ChipReader + ?Sized>(reader: &mut R) -> Result<bool, End> {
    reader
        .slot_status(0)
        .map(|s| s.contains(SlotState::CARD_PRESENT))
        .map_err(|e| device_fail("slot status", &e))
}

/// Poll the slot until a card is (`want`) or is not there; how long it took.
fn wait_presence<R: ChipReader + ?Sized>(
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
fn fresh_card(ctx: &Ctx<'_>, card: &str) -> Result<(), End> {
    ctx.ask_lenient(&Verb::CardRemove);
    ctx.ask(&Verb::CardInsert(card.to_string()))?;
    Ok(())
}

/// Wait for `wanted` among `events` until `until`; the other events seen, by name.
fn wait_event(
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

fn sw_of(response: &[u8]) -> Option<u16> {
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

/// The card's first application (the profile's first AID).
fn card_aid() -> Result<Vec<u8>, End> {
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
fn card_stats(ctx: &Ctx<'_>) {
    match ctx.control.request(&Verb::CardStats, REQUEST_TIMEOUT) {
        Ok(text) => ctx.step(format!("card side: {text}")),
        Err(e) => ctx.step(format!("card stats unavailable: {e}")),
    }
}

/// The number of APDUs the host's card has received so far (`apdus=N` of `card-stats`).
fn card_apdus(ctx: &Ctx<'_>) -> Option<u64> {
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
fn exchanges_per_transmit(ctx: &Ctx<'_>, before: Option<u64>, transmits: u32) {
    match (before, card_apdus(ctx)) {
        (Some(b), Some(a)) if transmits > 0 => ctx.step(format!(
            "the card received {} APDUs for {transmits} transmits ({:.2} per transmit)",
            a.saturating_sub(b),
            a.saturating_sub(b) as f64 / f64::from(transmits)
        )),
        _ => ctx.step("the card's APDU count is unavailable"),
    }
}

// ---------------------------------------------------------------------------------------
// usb

/// One line per field of the CCID class descriptor.
pub fn describe_ccid(d: &CcidDescriptor) -> Vec<String> {
    vec![
        format!(
            "bcdCCID {:X}.{:02X}, {} slot(s), max busy slots {}",
            d.bcd_ccid >> 8,
            d.bcd_ccid & 0xFF,
            d.slot_count(),
            d.max_busy_slots
        ),
        format!(
            "exchange level {}, features {:#010x} {:?}",
            d.exchange_level(),
            d.features.bits(),
            d.features
        ),
        format!("protocols {:?}, voltages {:?}", d.protocols, d.voltages),
        format!(
            "max message length {} bytes (payload {}), max IFSD {}",
            d.max_message_length,
            d.max_payload_len(),
            d.max_ifsd
        ),
        format!(
            "clock {} kHz (max {}), data rate {} bps (max {})",
            d.default_clock_khz, d.max_clock_khz, d.data_rate_bps, d.max_data_rate_bps
        ),
        format!(
            "automatic: parameters {}, PPS {}, voltage {}, clock {}, baud {}, IFSD {}",
            d.auto_parameters(),
            d.auto_pps(),
            d.auto_voltage(),
            d.auto_clock(),
            d.auto_baud(),
            d.auto_ifsd()
        ),
    ]
}

/// The CCID class descriptor of the device `vid:pid`, read through rusb: from its CCID
/// interface's extra bytes, else from an endpoint's (a known reader quirk).
fn ccid_descriptor_via_rusb(vid: u16, pid: u16) -> Result<(u8, CcidDescriptor), End> {
    let devices = rusb::devices().map_err(|e| fail(format!("libusb cannot list devices: {e}")))?;
    let device = devices
        .iter()
        .find(|d| {
            d.device_descriptor()
                .is_ok_and(|dd| dd.vendor_id() == vid && dd.product_id() == pid)
        })
        .ok_or_else(|| fail(format!("libusb does not list {vid:04x}:{pid:04x}")))?;
    let config = device
        .active_config_descriptor()
        .or_else(|_| device.config_descriptor(0))
        .map_err(|e| {
            fail(format!(
                "{vid:04x}:{pid:04x}: no configuration descriptor: {e}"
            ))
        })?;
    for interface in config.interfaces() {
        for alt in interface.descriptors() {
            if alt.class_code() != USB_CLASS_CCID {
                continue;
            }
            let mut extras: Vec<Vec<u8>> = vec![alt.extra().to_vec()];
            extras.extend(
                alt.endpoint_descriptors()
                    .filter_map(|e| e.extra().map(<[u8]>::to_vec)),
            );
            for extra in extras {
                match pos_ccid::descriptor::find(&extra) {
                    Some(Ok(d)) => return Ok((alt.interface_number(), d)),
                    Some(Err(e)) => {
                        return Err(fail(format!(
                            "interface {}: the CCID class descriptor does not parse: {e}",
                            alt.interface_number()
                        )));
                    }
                    None => {}
                }
            }
            return Err(fail(format!(
                "interface {} is class 0x0b but has no CCID class descriptor",
                alt.interface_number()
            )));
        }
    }
    Err(fail(format!(
        "{vid:04x}:{pid:04x} has no interface of class 0x0b (CCID)"
    )))
}

/// How long the guest kernel may take to enumerate QEMU's reader after the modules load.
const ENUMERATION_LIMIT: Duration = Duration::from_secs(20);

fn usb_discovery(ctx: &mut Ctx<'_>) -> Outcome {
    // The xHCI driver enumerates the bus asynchronously after `insmod`: poll (as a
    // technician's `posctl devices` would be re-run) until the reader shows or the limit.
    let started = Instant::now();
    let devices = loop {
        let devices =
            pos_link::enumerate::usb_devices().map_err(|e| device_fail("list USB devices", &e))?;
        let found = devices
            .iter()
            .any(|d| d.vid == READER_VID && d.pid == READER_PID);
        if found || started.elapsed() >= ENUMERATION_LIMIT {
            break devices;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    ctx.step(format!(
        "{} USB device(s) listed {} ms after the start",
        devices.len(),
        started.elapsed().as_millis()
    ));
    for d in &devices {
        ctx.step(format!(
            "bus {} address {}: {:04x}:{:04x} {} classes {:02x?}",
            d.bus,
            d.address,
            d.vid,
            d.pid,
            d.product.as_deref().unwrap_or("-"),
            d.interface_classes
        ));
    }
    let reader = devices
        .iter()
        .find(|d| d.vid == READER_VID && d.pid == READER_PID)
        .ok_or_else(|| {
            fail(format!(
                "no {READER_VID:04x}:{READER_PID:04x} among {} USB device(s)",
                devices.len()
            ))
        })?;
    if !reader.interface_classes.contains(&USB_CLASS_CCID) {
        return Err(fail(format!(
            "{READER_VID:04x}:{READER_PID:04x} has interface classes {:02x?}, no 0x0b (CCID)",
            reader.interface_classes
        )));
    }
    ctx.step(format!(
        "reader at {} (kinds {:?}, access {:?})",
        reader.uri, reader.kinds, reader.access
    ));
    let (interface, d) = ccid_descriptor_via_rusb(READER_VID, READER_PID)?;
    ctx.step(format!("CCID class descriptor on interface {interface}:"));
    for line in describe_ccid(&d) {
        ctx.step(line);
    }
    if d.protocols.is_empty() {
        return Err(fail(
            "the reader announces no protocol (neither T=0 nor T=1)",
        ));
    }
    Ok(format!(
        "{READER_VID:04x}:{READER_PID:04x} CCID, {} level, protocols {:?}, max message {}",
        d.exchange_level(),
        d.protocols,
        d.max_message_length
    ))
}

// ---------------------------------------------------------------------------------------
// ccid

fn no_card(ctx: &mut Ctx<'_>) -> Outcome {
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

fn atr_apdu(ctx: &mut Ctx<'_>) -> Outcome {
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

// ---------------------------------------------------------------------------------------
// emv

fn emv_read_case(ctx: &mut Ctx<'_>, card: &str) -> Outcome {
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

fn emv_read_profile(ctx: &mut Ctx<'_>) -> Outcome {
    emv_read_case(ctx, CARD)
}

fn emv_read_transcript(ctx: &mut Ctx<'_>) -> Outcome {
    emv_read_case(ctx, "transcript:contact-mastercard")
}

fn removed_mid_read(ctx: &mut Ctx<'_>) -> Outcome {
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

// ---------------------------------------------------------------------------------------
// escpos

fn receipt(nonce: &str) -> Document {
    let mut d = Document::new();
    d.text("RIG RECEIPT")
        .text(nonce)
        .text("ESC/POS over QEMU's FTDI adapter")
        .feed(2)
        .cut(CutKind::Full);
    d
}

/// Poll `status` until `want` holds; the last conditions.
fn wait_status(
    printer: &mut dyn pos_hal::ReceiptPrinter<Error = pos_escpos::EscPosError>,
    limit: Duration,
    want: &dyn Fn(PrinterConditions) -> bool,
) -> Result<PrinterConditions, End> {
    let t = Instant::now();
    loop {
        let s = printer
            .status()
            .map_err(|e| device_fail("printer status", &e))?;
        if want(s) {
            return Ok(s);
        }
        if t.elapsed() >= limit {
            return Err(fail(format!(
                "after {} s the printer's status is still {}",
                limit.as_secs(),
                s.names().join(", ")
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn names(s: PrinterConditions) -> String {
    let n = s.names();
    if n.is_empty() {
        "ready".into()
    } else {
        n.join(", ")
    }
}

fn escpos_ftdi(ctx: &mut Ctx<'_>) -> Outcome {
    let result = escpos_ftdi_inner(ctx);
    // Leave the virtual printer without faults, whatever happened.
    for fault in ["paper_out", "cover_open"] {
        ctx.ask_lenient(&Verb::PrinterFault {
            fault: fault.into(),
            on: false,
        });
    }
    result
}

fn escpos_ftdi_inner(ctx: &mut Ctx<'_>) -> Outcome {
    let asked = Instant::now();
    ctx.ask(&Verb::PrinterConnect)?;
    let tty = loop {
        if let Some(p) = usb_tty(Path::new("/sys"), Path::new("/dev")) {
            break p;
        }
        if asked.elapsed() >= TTY_LIMIT {
            return Err(fail(format!(
                "no /dev/ttyUSB* within {} s of printer-connect (ftdi_sio loaded?)",
                TTY_LIMIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let tty = tty.display().to_string();
    ctx.step(format!(
        "{tty} appeared {} ms after the request",
        asked.elapsed().as_millis()
    ));
    if tty != PRINTER_TTY {
        ctx.step(format!("note: the adapter is {tty}, not {PRINTER_TTY}"));
    }
    let uri_text = printer_uri(&tty);
    let uri = DeviceUri::parse(&uri_text).map_err(|e| fail(format!("{uri_text}: {e}")))?;
    let mut printer = pos_escpos::open(&uri, pos_escpos::DriverConfig::default())
        .map_err(|e| device_fail(&format!("open the printer {uri_text}"), &e))?;
    let status = wait_status(&mut printer, PRINTER_LIMIT, &|s| s.is_ready())?;
    ctx.step(format!("status: {}", names(status)));

    let nonce = format!(
        "RIG-{:08X}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let outcome = printer
        .print(&receipt(&nonce))
        .map_err(|e| device_fail("print the receipt", &e))?;
    ctx.step(format!("print outcome: {}", outcome.name()));
    if outcome != PrintOutcome::Confirmed {
        return Err(fail(format!(
            "the receipt was not confirmed by the printer: {}",
            match &outcome {
                PrintOutcome::Unconfirmed { reason } => reason.clone(),
                other => other.name().to_string(),
            }
        )));
    }
    let check = ctx.ask(&Verb::PrinterCheck(nonce.clone()))?;
    if !check.split_whitespace().any(|w| w == "contains=yes") {
        return Err(fail(format!(
            "the host's printer did not print {nonce}: {check}"
        )));
    }

    ctx.ask(&Verb::PrinterFault {
        fault: "paper_out".into(),
        on: true,
    })?;
    let status = wait_status(&mut printer, PRINTER_LIMIT, &|s| {
        s.contains(PrinterConditions::PAPER_OUT)
    })?;
    ctx.step(format!("status: {}", names(status)));
    match printer.print(&receipt("this receipt must not print")) {
        Err(e) if e.kind() == FaultKind::PaperOut => {
            ctx.step(format!("print refused: {e} [{}]", e.kind()));
        }
        Err(e) => {
            return Err(fail(format!(
                "with paper out the print failed as {}, not paper_out: {e}",
                e.kind()
            )));
        }
        Ok(o) => {
            return Err(fail(format!(
                "with paper out the print ended {}: a receipt that did not print would be \
                 reported printed",
                o.name()
            )));
        }
    }
    ctx.ask(&Verb::PrinterFault {
        fault: "paper_out".into(),
        on: false,
    })?;
    let status = wait_status(&mut printer, PRINTER_LIMIT, &|s| s.is_ready())?;
    ctx.step(format!("status after the fix: {}", names(status)));

    ctx.ask(&Verb::PrinterUnplug)?;
    let t = Instant::now();
    let error = loop {
        match printer.status() {
            // A status request in flight when the adapter went may time out; the next one
            // meets the unplugged port.
            Err(e) if e.kind() == FaultKind::Timeout && t.elapsed() < PRINTER_LIMIT => {
                ctx.step(format!(
                    "status {} ms after the unplug timed out: {e}",
                    t.elapsed().as_millis()
                ));
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => break e,
            Ok(s) if t.elapsed() >= PRINTER_LIMIT => {
                return Err(fail(format!(
                    "{} s after printer-unplug the printer still answers status ({})",
                    PRINTER_LIMIT.as_secs(),
                    names(s)
                )));
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    ctx.step(format!(
        "status {} ms after the unplug: {error} [{}]",
        t.elapsed().as_millis(),
        error.kind()
    ));
    if error.kind() != FaultKind::Disconnected {
        return Err(fail(format!(
            "the unplugged printer was classified {}, not disconnected: {error}",
            error.kind()
        )));
    }
    Ok("printed and confirmed; paper out refused as paper_out; unplug seen as disconnected".into())
}

// ---------------------------------------------------------------------------------------
// wedge

fn wedge_swipe(ctx: &mut Ctx<'_>) -> Outcome {
    let path = input_event_by_name(Path::new("/sys"), Path::new("/dev"), KEYBOARD_NAME)
        .ok_or_else(|| {
            fail(format!(
                "no input device named like {KEYBOARD_NAME:?} in /sys/class/input"
            ))
        })?;
    let uri_text = format!("evdev:{}", path.display());
    ctx.step(format!("keyboard at {uri_text}"));
    let uri = DeviceUri::parse(&uri_text).map_err(|e| fail(format!("{uri_text}: {e}")))?;
    // The host types through the monitor's sendkey, key by key: a long gap is allowed; the
    // Enter it types after the text ends the swipe.
    let mut wedge = pos_magstripe::wedge::EvdevWedge::open_with(&uri, Duration::from_secs(3))
        .map_err(|e| device_fail(&format!("open {uri_text}"), &e))?;
    // Typed while we read: the kernel keeps only a few dozen events per reader.
    let control = ctx.control.clone();
    let typist = std::thread::spawn(move || {
        control.request(&Verb::KeyboardType(swipe_text()), REQUEST_TIMEOUT)
    });
    // Read in slices so that a refused request ends the wait (a swipe under way at the
    // end of a slice is still finished by `read_swipe`).
    let started = Instant::now();
    let swipe = loop {
        match wedge.read_swipe(Duration::from_millis(500)) {
            Err(e) if e.kind() == FaultKind::Timeout => {
                if typist.is_finished() || started.elapsed() >= REQUEST_TIMEOUT {
                    // The host is done typing (or failed): a last short wait for the keys.
                    break wedge.read_swipe(Duration::from_secs(1));
                }
            }
            other => break other,
        }
    };
    let typed = typist
        .join()
        .map_err(|_| fail("the keyboard-type request panicked"))?;
    match &typed {
        Ok(_) => ctx.step("host typed the test swipe"),
        Err(e) => return Err(fail(e.clone())),
    }
    let swipe = swipe.map_err(|e| device_fail("read the swipe", &e))?;
    ctx.step(format!(
        "swipe: {} characters, {} unknown key(s), {} dropped",
        swipe.text.len(),
        swipe.unknown_keys,
        swipe.dropped
    ));
    let [t1, t2, t3] = pos_magstripe::parse_ascii(&swipe.text);
    ctx.step(format!(
        "tracks: {:?} / {:?} / {:?}",
        t1.status, t2.status, t3.status
    ));
    let expected = pos_hal::mask_pan(TEST_SWIPE_PAN);
    let t2 = pos_magstripe::Track2Data::parse(t2.data)
        .map_err(|e| fail(format!("track 2 does not decode: {e}")))?;
    let t1 = pos_magstripe::Track1Data::parse(t1.data)
        .map_err(|e| fail(format!("track 1 does not decode: {e}")))?;
    let (p1, p2) = (t1.masked_pan(), t2.masked_pan());
    ctx.step(format!(
        "track 1 PAN {}, track 2 PAN {}, Luhn {}",
        p1.as_str(),
        p2.as_str(),
        if t2.luhn_ok() { "ok" } else { "BAD" }
    ));
    if p1.as_str() != expected || p2.as_str() != expected {
        return Err(fail(format!(
            "the swipe reads PAN {} / {}, expected {expected}",
            p1.as_str(),
            p2.as_str()
        )));
    }
    Ok(format!("both tracks read, PAN {expected}"))
}

// ---------------------------------------------------------------------------------------
// benchmarks

fn bench_direct(ctx: &mut Ctx<'_>) -> Outcome {
    fresh_card(ctx, CARD)?;
    let mut reader = open_reader(ctx)?;
    wait_presence(&mut reader, true, Duration::from_secs(5))?;
    reader
        .power_on(0)
        .map_err(|e| device_fail("power on", &e))?;
    let command = select_aid(&card_aid()?);
    ctx.step(format!(
        "APDU {} x ({WARM_UP} warm-up + {}), T={}",
        hex(&command),
        ctx.bench,
        reader.protocol(0).map_or("?".into(), |p| p.to_string())
    ));
    let mut samples = Vec::with_capacity(usize::try_from(ctx.bench).unwrap_or(0));
    let before = card_apdus(ctx);
    let mut last = Vec::new();
    for i in 0..(WARM_UP + ctx.bench) {
        let t = Instant::now();
        let resp = reader
            .transmit(0, &command)
            .map_err(|e| device_fail(&format!("exchange {}", i + 1), &e))?;
        let took = t.elapsed();
        if !sw_of(&resp).is_some_and(sw_ok) {
            return Err(fail(format!(
                "exchange {}: answered {}, not 9000 or 61xx",
                i + 1,
                sw_of(&resp).map_or("no status words".into(), |sw| format!("{sw:04X}"))
            )));
        }
        if i >= WARM_UP {
            samples.push(took);
        }
        last = resp;
    }
    ctx.step(format!(
        "last answer: {} bytes, SW {}",
        last.len(),
        sw_of(&last).map_or("none".into(), |sw| format!("{sw:04X}"))
    ));
    exchanges_per_transmit(ctx, before, WARM_UP + ctx.bench);
    let _ = reader.power_off(0);
    let stats = Stats::from_samples(&samples).ok_or_else(|| fail("no samples"))?;
    ctx.step(stats.describe());
    ctx.control
        .bench("apdu.direct", &stats)
        .map_err(End::Fail)?;
    Ok(stats.describe())
}

/// Where the rig's image puts pcscd and the comparison client.
const PCSCD: &str = "/usr/sbin/pcscd";
const PCSC_BENCH: &str = "/bin/pcsc-bench";
const PCSCD_SOCKET: &str = "/run/pcscd/pcscd.comm";

/// A child process that is killed when dropped.
struct Reaped(Child, &'static str);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.0.try_wait() {
            return;
        }
        if let Ok(pid) = libc::pid_t::try_from(self.0.id()) {
            // SAFETY: kill(2) with the pid of our own child, not yet reaped (try_wait above
            // saw it running), so the pid cannot have been reused.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("rig-guest: {} did not stop on SIGTERM: killing it", self.1);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bench_pcsc(ctx: &mut Ctx<'_>) -> Outcome {
    for path in [PCSCD, PCSC_BENCH] {
        if !Path::new(path).exists() {
            return Err(End::Skip(format!(
                "{path} is not in the guest image (the pcsc-lite comparison needs pcscd and \
                 pcsc-bench)"
            )));
        }
    }
    // pcscd must own the reader: none of our cases holds it now (each closes its own).
    fresh_card(ctx, CARD)?;
    let _ = std::fs::remove_file(PCSCD_SOCKET);
    let started = Instant::now();
    let pcscd = Command::new(PCSCD)
        .arg("--foreground")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(format!("cannot start {PCSCD}: {e}")))?;
    let mut pcscd = Reaped(pcscd, "pcscd");
    loop {
        if Path::new(PCSCD_SOCKET).exists() {
            break;
        }
        if let Ok(Some(status)) = pcscd.0.try_wait() {
            return Err(fail(format!(
                "pcscd exited before opening its socket: {status}"
            )));
        }
        if started.elapsed() >= PCSCD_LIMIT {
            return Err(fail(format!(
                "no {PCSCD_SOCKET} within {} s of starting pcscd",
                PCSCD_LIMIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ctx.step(format!(
        "pcscd up after {} ms",
        started.elapsed().as_millis()
    ));
    let apdu = hex(&select_aid(&card_aid()?));
    let before = card_apdus(ctx);
    let child = Command::new(PCSC_BENCH)
        .arg(ctx.bench.to_string())
        .arg(&apdu)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot start {PCSC_BENCH}: {e}")))?;
    // pcsc-bench waits up to 10 s for the card, then runs the exchanges.
    let limit = Duration::from_secs(40) + Duration::from_millis(50) * (ctx.bench + WARM_UP);
    let mut bench = Reaped(child, "pcsc-bench");
    let t = Instant::now();
    let status = loop {
        match bench.0.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if t.elapsed() >= limit => {
                return Err(fail(format!(
                    "pcsc-bench did not finish within {} s",
                    limit.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(fail(format!("waiting for pcsc-bench: {e}"))),
        }
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = bench.0.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut s, &mut out);
    }
    if let Some(mut s) = bench.0.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut s, &mut err);
    }
    for line in err.lines().filter(|l| !l.trim().is_empty()).take(10) {
        ctx.step(format!("pcsc-bench: {line}"));
    }
    if !status.success() {
        return Err(fail(format!(
            "pcsc-bench failed ({status}): {}",
            err.lines().last().unwrap_or("no message")
        )));
    }
    let stats = Stats::parse_pcsc_output(&out).map_err(End::Fail)?;
    drop(pcscd);
    exchanges_per_transmit(ctx, before, WARM_UP + ctx.bench);
    ctx.step(stats.describe());
    ctx.control.bench("apdu.pcsc", &stats).map_err(End::Fail)?;
    Ok(stats.describe())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pos_emv::profile_card::ProfileCard;

    fn sim_reader(options: &str, card: Profile) -> AnyReader {
        let uri = DeviceUri::parse(&format!("sim:ccid?{options}")).unwrap();
        let card: Box<dyn pos_hal::VirtualCard> = Box::new(ProfileCard::new(card));
        pos_ccid::open_sim_with_card(&uri, ReaderConfig::default(), Some(card))
            .unwrap()
            .0
    }

    #[test]
    fn names_are_unique_and_apart_from_the_suite() {
        let all = cases();
        let mut names: Vec<_> = all.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        let suite_groups: Vec<String> = hil_tests::scenarios()
            .iter()
            .filter_map(|s| s.name.split_once('.').map(|(g, _)| g.to_string()))
            .collect();
        for c in &all {
            let (group, _) = c.name.split_once('.').unwrap();
            assert!(!suite_groups.iter().any(|g| g == group), "{}", c.name);
            assert_ne!(group, "suite");
            assert_ne!(group, "rig");
        }
        assert_eq!(select(&Pick::All).unwrap().len(), all.len());
        assert!(select(&Pick::Nothing).unwrap().is_empty());
        let some = select(&Pick::Some(vec!["emv".into(), "usb.discovery".into()])).unwrap();
        assert_eq!(
            some.iter().map(|c| c.name).collect::<Vec<_>>(),
            [
                "usb.discovery",
                "emv.read_profile",
                "emv.read_transcript",
                "emv.removed_mid_read"
            ]
        );
        assert!(
            select(&Pick::Some(vec!["emvv".into()]))
                .unwrap_err()
                .contains("emvv")
        );
    }

    #[test]
    fn the_printer_uri_matches_the_virtual_printer() {
        let uri = DeviceUri::parse(&printer_uri(PRINTER_TTY)).unwrap();
        let profile = pos_escpos::profile_for(&uri, "generic-80").unwrap();
        let sim = pos_escpos::sim::SimConfig::default();
        assert_eq!(profile.name, sim.profile.name);
        assert!(DeviceUri::parse(READER_URI).is_ok());
    }

    #[test]
    fn expected_pans() {
        assert_eq!(expected_pan("mastercard"), Some(Profile::Mastercard.pan()));
        assert_eq!(
            expected_pan("transcript:contact-mastercard"),
            Some("5413330089600044")
        );
        assert_eq!(expected_pan("transcript:nope"), None);
    }

    #[test]
    fn the_emv_read_gets_the_masked_pan_over_the_ccid_driver() {
        // The profile cards answer to reset for T=0: the APDU-level and T=0 TPDU readers.
        for level in ["apdu", "t0"] {
            let mut r = sim_reader(&format!("level={level}"), Profile::Mastercard);
            r.power_on(0).unwrap();
            let s = emv_read(&mut r, 0).unwrap();
            assert_eq!(
                s.masked_pan.as_deref(),
                Some(pos_hal::mask_pan(Profile::Mastercard.pan()).as_str()),
                "{level}"
            );
            assert!(s.records > 0 && s.has_expiry);
            assert!(!format!("{s:?}").contains(Profile::Mastercard.pan()));
        }
    }

    #[test]
    fn a_card_pulled_mid_read_is_classified_card_removed() {
        let mut r = sim_reader("level=apdu&remove_at=3", Profile::Mastercard);
        r.power_on(0).unwrap();
        let e = emv_read(&mut r, 0).unwrap_err();
        assert_eq!(e.kind(), FaultKind::CardRemoved, "{e}");
        assert!(!card_present(&mut r).unwrap());
    }

    #[test]
    fn select_aid_is_answered_9000_by_the_profile() {
        let mut r = sim_reader("level=t0", Profile::Mastercard);
        r.power_on(0).unwrap();
        let aid = card_aid().unwrap();
        let cmd = select_aid(&aid);
        assert_eq!(cmd.len(), aid.len() + 6);
        let resp = r.transmit(0, &cmd).unwrap();
        // T=0 through a TPDU reader: 61xx, the FCI waits for GET RESPONSE.
        assert!(sw_of(&resp).is_some_and(sw_ok), "{resp:02x?}");
        assert!(sw_ok(0x9000) && sw_ok(0x612F) && !sw_ok(0x6A82));
        // The absent-card classification the no_card case expects.
        let uri = DeviceUri::parse("sim:ccid?card=none").unwrap();
        let mut empty = pos_ccid::open(&uri, ReaderConfig::default()).unwrap();
        assert_eq!(empty.power_on(0).unwrap_err().kind(), FaultKind::CardAbsent);
    }

    #[test]
    fn descriptor_lines() {
        let lines = describe_ccid(&CcidDescriptor::example_tpdu_reader());
        assert_eq!(lines.len(), 6);
        assert!(lines.iter().any(|l| l.contains("max message length")));
    }

    #[test]
    fn a_case_reports_its_steps_and_end_and_a_panic_is_a_fail() {
        fn steps_then_skip(ctx: &mut Ctx<'_>) -> Outcome {
            ctx.step("one");
            Err(End::Skip("not here".into()))
        }
        fn panics(_: &mut Ctx<'_>) -> Outcome {
            panic!("bug")
        }
        let (control, mut host) = crate::control::tests::pair();
        let skip = RigCase {
            name: "t.skip",
            about: "",
            run: steps_then_skip,
        };
        let r = run_case(&control, &skip, 1);
        assert_eq!((r.verdict, r.text.as_str()), (Verdict::Skip, "not here"));
        assert_eq!(host.read_line(), "STEP t.skip one");
        assert!(host.read_line().starts_with("CASE t.skip SKIP "));
        let bad = RigCase {
            name: "t.panic",
            about: "",
            run: panics,
        };
        let r = run_case(&control, &bad, 1);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(host.read_line().starts_with("CASE t.panic FAIL "));
    }

    #[test]
    fn results_read_as_lines() {
        let r = CaseResult {
            name: "ccid.no_card".into(),
            verdict: Verdict::Skip,
            millis: 3,
            text: "why".into(),
        };
        assert_eq!(r.line(), "SKIP ccid.no_card (3 ms): why");
    }
}
