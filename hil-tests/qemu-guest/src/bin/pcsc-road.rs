//! `pcsc-road CASE [ARGS]`: the reader cases through our `pcsc:` road (pos-pcsc over pcscd
//! and libccid), in the rig's guest, for `rig-guest` to compare with the direct road.
//!
//! Cases: `insert` (empty reader is card_absent, insertion event, ATR, SELECT AID),
//! `emv-read MASKED_PAN`, `removed-mid-read` (the host pulls the card before the 3rd APDU),
//! `removed-mid-exchange` (the host pulls it instead of answering the 3rd APDU),
//! `unplug` (the host unplugs the reader), `sale` (a sale through the terminal service
//! with the lane's reader `pcsc:` and a fake host on 127.0.0.1), `bench N APDUHEX`.
//! The lines it writes are [`qemu_rig_guest::road`]'s; no card data is ever written (PANs
//! masked). Exit code 0 when the case passed, 1 otherwise.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pos_hal::{ChipReader, Device, DeviceEvent, Fault, FaultKind, SlotState, Subscription};
use pos_link::DeviceUri;
use pos_pcsc::{PcscConfig, PcscError, PcscReader};
use qemu_rig_guest::bench::{Stats, hex, parse_hex_apdu};
use qemu_rig_guest::scenarios::{WARM_UP, emv_read, select_aid, sw_ok};

/// How long pcscd may take to list the reader after it started.
const READER_WAIT: Duration = Duration::from_secs(10);
/// How long an event may take.
const EVENT_WAIT: Duration = Duration::from_secs(10);

/// How a case ends when it does not pass.
enum CaseEnd {
    /// An expectation did not hold.
    Fail(String),
    /// The case cannot run here (why).
    Skip(String),
}

impl From<String> for CaseEnd {
    fn from(s: String) -> CaseEnd {
        CaseEnd::Fail(s)
    }
}

/// When the helper started: steps say how far into the case they are.
static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn step(text: impl AsRef<str>) {
    let at = STARTED.get_or_init(Instant::now).elapsed();
    let clean: String = text
        .as_ref()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    println!("STEP [{:.1} s] {clean}", at.as_secs_f64());
    let _ = std::io::stdout().flush();
}

fn said<E: Fault + std::fmt::Display>(what: &str, e: &E) -> String {
    format!("{what}: {e} [{}]", e.kind())
}

/// Tell `rig-guest` we wait for the host's action, and wait for `GO`.
fn ready() -> Result<(), String> {
    println!("READY");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("reading GO: {e}"))?;
    match line.trim() {
        "GO" => Ok(()),
        other => Err(format!("rig-guest did not say GO: {other:?}")),
    }
}

/// `pcsc:` (the first reader pcscd lists), waiting for pcscd to list one.
fn open() -> Result<PcscReader, String> {
    let uri = DeviceUri::parse("pcsc:").map_err(|e| e.to_string())?;
    let t = Instant::now();
    loop {
        match pos_pcsc::open(&uri, PcscConfig::default()) {
            Ok(r) => {
                step(format!(
                    "pcsc: opened {:?} after {} ms ({})",
                    r.reader_name(),
                    t.elapsed().as_millis(),
                    r.info().uri
                ));
                return Ok(r);
            }
            Err(PcscError::NoReader { .. }) if t.elapsed() < READER_WAIT => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(said("open pcsc:", &e)),
        }
    }
}

fn present(r: &mut PcscReader) -> Result<bool, String> {
    r.slot_status(0)
        .map(|s| s.contains(SlotState::CARD_PRESENT))
        .map_err(|e| said("slot status", &e))
}

fn wait_present(r: &mut PcscReader, want: bool) -> Result<(), String> {
    let t = Instant::now();
    while present(r)? != want {
        if t.elapsed() > EVENT_WAIT {
            return Err(format!(
                "the slot {} a card after 10 s",
                if want { "has no" } else { "still has" }
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn wait_event(
    sub: &Subscription,
    want: &dyn Fn(&DeviceEvent) -> bool,
) -> Result<Duration, Vec<String>> {
    let t = Instant::now();
    let mut others = Vec::new();
    loop {
        let left = EVENT_WAIT.saturating_sub(t.elapsed());
        match sub.recv_timeout(left) {
            Ok(e) if want(&e.event) => return Ok(t.elapsed()),
            Ok(e) => others.push(e.event.name().to_string()),
            Err(_) => return Err(others),
        }
    }
}

fn card_aid() -> Result<Vec<u8>, String> {
    pos_emv::profile_card::Profile::Mastercard
        .aids()
        .into_iter()
        .next()
        .ok_or_else(|| "the mastercard profile lists no application".to_string())
}

/// Empty reader: card_absent; the host inserts; the event, the ATR and SELECT AID.
fn insert() -> Result<String, String> {
    let mut r = open()?;
    let sub = r.subscribe().map_err(|e| said("subscribe", &e))?;
    wait_present(&mut r, false)?;
    let e = r
        .power_on(0)
        .err()
        .ok_or("power on an empty reader succeeded")?;
    step(format!("empty reader: {}", said("power on", &e)));
    if e.kind() != FaultKind::CardAbsent {
        return Err(format!(
            "an empty reader's power on is {}, not card_absent",
            e.kind()
        ));
    }
    ready()?;
    let took = wait_event(&sub, &|e| {
        matches!(e, DeviceEvent::CardInserted { slot: 0 })
    })
    .map_err(|others| format!("no card_inserted event within 10 s (seen: {others:?})"))?;
    step(format!(
        "card_inserted event {} ms after GO",
        took.as_millis()
    ));
    let atr = r.power_on(0).map_err(|e| said("power on", &e))?;
    step(format!(
        "ATR {} T={}",
        atr.to_hex(),
        r.protocol().map_or("?".to_string(), |p| p.to_string())
    ));
    let cmd = select_aid(&card_aid()?);
    let resp = r.transmit(0, &cmd).map_err(|e| said("SELECT AID", &e))?;
    let sw = match resp.as_slice() {
        [.., a, b] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    step(format!(
        "SELECT AID: {} bytes of data, SW {sw:04X}",
        resp.len().saturating_sub(2)
    ));
    r.power_off(0).map_err(|e| said("power off", &e))?;
    if !sw_ok(sw) {
        return Err(format!("SELECT AID answered {sw:04X}"));
    }
    Ok(format!(
        "card_absent when empty, card_inserted event, ATR {}, SELECT AID {sw:04X}",
        atr.to_hex()
    ))
}

fn emv_read_case(expected: &str) -> Result<String, String> {
    let mut r = open()?;
    wait_present(&mut r, true)?;
    let atr = r.power_on(0).map_err(|e| said("power on", &e))?;
    step(format!("ATR {}", atr.to_hex()));
    let t = Instant::now();
    let read = emv_read(&mut r, 0);
    let took = t.elapsed();
    let _ = r.power_off(0);
    let read = read.map_err(|e| {
        format!(
            "the EMV read failed after {} ms: {e} [{}]",
            took.as_millis(),
            e.kind()
        )
    })?;
    let pan = read.masked_pan.clone().unwrap_or_else(|| "(none)".into());
    step(format!(
        "application {} {}, {} record(s) in {} ms, PAN {pan}",
        read.aid,
        read.label.as_deref().unwrap_or("(no label)"),
        read.records,
        took.as_millis()
    ));
    if pan != expected {
        return Err(format!("the card's PAN reads {pan}, expected {expected}"));
    }
    Ok(format!("{} records, PAN {pan} as expected", read.records))
}

/// A reader that says READY (and waits for GO) before its `at`-th transmit: the host pulls
/// the card between two APDUs of a read.
struct PullBefore<'a> {
    reader: &'a mut PcscReader,
    at: u32,
    sent: u32,
}

impl Device for PullBefore<'_> {
    type Error = PcscError;
    fn info(&self) -> pos_hal::DeviceInfo {
        self.reader.info()
    }
    fn state(&self) -> pos_hal::DeviceState {
        self.reader.state()
    }
    fn check_health(
        &mut self,
        level: pos_hal::HealthLevel,
    ) -> Result<pos_hal::HealthReport, PcscError> {
        self.reader.check_health(level)
    }
    fn subscribe(&mut self) -> Result<Subscription, PcscError> {
        self.reader.subscribe()
    }
}

impl ChipReader for PullBefore<'_> {
    fn slot_count(&self) -> u8 {
        self.reader.slot_count()
    }
    fn capabilities(&self) -> pos_hal::ReaderCapabilities {
        self.reader.capabilities()
    }
    fn slot_status(&mut self, slot: u8) -> Result<SlotState, PcscError> {
        self.reader.slot_status(slot)
    }
    fn power_on(&mut self, slot: u8) -> Result<pos_hal::Atr, PcscError> {
        self.reader.power_on(slot)
    }
    fn power_off(&mut self, slot: u8) -> Result<(), PcscError> {
        self.reader.power_off(slot)
    }
    fn transmit(&mut self, slot: u8, command: &[u8]) -> Result<Vec<u8>, PcscError> {
        self.sent += 1;
        if self.sent == self.at {
            if let Err(e) = ready() {
                step(format!("waiting for the pull: {e}"));
            }
            // Let pcscd see the card go before the next APDU (event-driven, bounded).
            let t = Instant::now();
            while t.elapsed() < EVENT_WAIT {
                match self.reader.slot_status(slot) {
                    Ok(st) if !st.contains(SlotState::CARD_PRESENT) => break,
                    Err(_) => break,
                    Ok(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        self.reader.transmit(slot, command)
    }
}

/// The card pulled during a read: `between` (before the 3rd APDU, the host pulls it while
/// no APDU is pending) or not (the host pulls it instead of answering the 3rd APDU). The
/// read fails as card_removed, with an event and an empty slot.
fn removed_mid_read(between: bool) -> Result<String, CaseEnd> {
    let mut r = open()?;
    wait_present(&mut r, true)?;
    r.power_on(0).map_err(|e| said("power on", &e))?;
    let sub = r.subscribe().map_err(|e| said("subscribe", &e))?;
    if !between {
        ready()?;
    }
    let t = Instant::now();
    let read = if between {
        emv_read(
            &mut PullBefore {
                reader: &mut r,
                at: 3,
                sent: 0,
            },
            0,
        )
    } else {
        emv_read(&mut r, 0)
    };
    let e = match read {
        Ok(read) => {
            return Err(format!(
                "the read completed ({} records) although the card was pulled",
                read.records
            )
            .into());
        }
        Err(e) => e,
    };
    step(format!(
        "the read failed after {} ms: {e} [{}]",
        t.elapsed().as_millis(),
        e.kind()
    ));
    let event = wait_event(&sub, &|e| matches!(e, DeviceEvent::CardRemoved { slot: 0 }));
    match &event {
        Ok(_) => step("card_removed event seen"),
        Err(others) => step(format!("no card_removed event (seen: {others:?})")),
    }
    if e.kind() == FaultKind::Timeout && !between {
        // libccid waits for an answer QEMU dropped and pcscd holds the reader meanwhile:
        // measure how long until pcscd answers again (at most 5 s more), for the report.
        let t = Instant::now();
        let answered = loop {
            match r.slot_status(0) {
                Err(e)
                    if e.kind() == FaultKind::Timeout && t.elapsed() < Duration::from_secs(5) =>
                {
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) if e.kind() == FaultKind::Timeout => break None,
                _ => break Some(t.elapsed()),
            }
        };
        step("pcscd still holds the reader: closing");
        let when = answered.map_or("not within 5 s more".to_string(), |d| {
            format!("after {} s more", d.as_secs())
        });
        return Err(CaseEnd::Skip(format!(
            "pcscd did not answer the exchange the card was pulled from ({when}): libccid keeps \
             waiting for the answer QEMU's reader dropped (the direct road aborts it), so our \
             road could only say `timeout` after its 10 s bound; the pull between two APDUs \
             (pcsc.removed_mid_read) is card_removed"
        )));
    }
    let st = r
        .slot_status(0)
        .map_err(|e| said("slot status after the pull", &e))?;
    step(format!("slot 0 after the pull: {st:?}"));
    if e.kind() != FaultKind::CardRemoved {
        return Err(format!(
            "the pulled card was classified {}, not card_removed: {e}",
            e.kind()
        )
        .into());
    }
    if st.contains(SlotState::CARD_PRESENT) {
        return Err(CaseEnd::Fail(
            "the slot still reports a card after the pull".into(),
        ));
    }
    if event.is_err() {
        return Err(CaseEnd::Fail(
            "classified card_removed, but no card_removed event within 10 s".into(),
        ));
    }
    Ok(format!(
        "classified {}; event and slot status agree",
        e.kind()
    ))
}

/// The host unplugs the reader with a card session open: an exchange is `disconnected`, with
/// a `Disconnected` event.
fn unplug() -> Result<String, CaseEnd> {
    let mut r = open()?;
    wait_present(&mut r, true)?;
    r.power_on(0).map_err(|e| said("power on", &e))?;
    let sub = r.subscribe().map_err(|e| said("subscribe", &e))?;
    ready()?;
    let event = wait_event(&sub, &|e| matches!(e, DeviceEvent::Disconnected { .. }));
    match &event {
        Ok(t) => step(format!("disconnected event {} ms after GO", t.as_millis())),
        Err(others) => step(format!(
            "no disconnected event within 10 s (seen: {others:?})"
        )),
    }
    let cmd = select_aid(&card_aid()?);
    let e = match r.transmit(0, &cmd) {
        Ok(resp) => {
            return Err(CaseEnd::Fail(format!(
                "an exchange after the unplug answered {} bytes",
                resp.len()
            )));
        }
        Err(e) => e,
    };
    step(format!("exchange after the unplug: {e} [{}]", e.kind()));
    if e.kind() == FaultKind::CardRemoved && event.is_err() {
        // pcscd learns of an unplugged USB reader from udev; with no udevd (this guest) it
        // keeps listing the reader and reports the pull as a card removal. The PC/SC road can
        // only say what pcscd says.
        let listed = pos_pcsc::list(Duration::from_secs(3))
            .map(|l| l.iter().any(|x| x.name == r.reader_name()))
            .unwrap_or(false);
        if listed {
            return Err(CaseEnd::Skip(
                "pcscd still lists the unplugged reader (no udevd in this guest to tell it): it \
                 reports the unplug as a card removal, so our road says card_removed; with udev \
                 pcscd drops the reader and the road says disconnected (unit-tested)"
                    .into(),
            ));
        }
    }
    if e.kind() != FaultKind::Disconnected {
        return Err(format!(
            "the unplugged reader's exchange is {}, not disconnected: {e}",
            e.kind()
        )
        .into());
    }
    if event.is_err() {
        return Err(CaseEnd::Fail(
            "classified disconnected, but no disconnected event within 10 s".into(),
        ));
    }
    Ok("exchange disconnected, with a disconnected event".into())
}

/// A sale through the terminal service, the lane's reader being `pcsc:`.
fn sale() -> Result<String, String> {
    use pos_acquirer::TcpAcquirer;
    use pos_acquirer::sim::{FakeHost, HostRules};
    use pos_terminal::config::DeviceConfig;
    use pos_terminal::{Config, NoHook, State, Terminal, TxnRequest};

    let devices = DeviceConfig {
        reader: "pcsc:".into(),
        printer: "none".into(),
        msr: "none".into(),
        ..DeviceConfig::default()
    };
    // pcscd may list the reader a moment after it started.
    let t = Instant::now();
    let lane = loop {
        match pos_lane::open(&devices, None) {
            Ok(l) => break l,
            Err(e) if e.kind() == FaultKind::NotFound && t.elapsed() < READER_WAIT => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(format!("the lane does not open: {e} [{}]", e.kind())),
        }
    };
    step("lane open: reader pcsc:, no printer, no stripe reader");
    let dir = tempfile::tempdir().map_err(|e| format!("temporary journal directory: {e}"))?;
    let host = Arc::new(
        FakeHost::start("127.0.0.1:0", HostRules::default())
            .map_err(|e| format!("fake host on 127.0.0.1: {e}"))?,
    );
    let address = host.addr().to_string();
    let mut config = Config {
        journal: Some(dir.path().join("journal.sqlite")),
        card_timeout_ms: 20_000,
        devices,
        ..Config::default()
    };
    config.acquirer.address = address.clone();
    config.acquirer.connect_timeout_ms = 2_000;
    config.acquirer.response_timeout_ms = 5_000;
    let settings = config
        .acquirer_settings(&address)
        .map_err(|e| format!("acquirer settings: {e}"))?;
    let mut terminal = Terminal::open(config, lane.devices, Box::new(TcpAcquirer::new(settings)))
        .map_err(|e| format!("the terminal service does not open: {e}"))?;
    if let Ok(keys) = pos_emv::profile_card::test_and_sim_ca_keys() {
        terminal.set_ca_keys(keys);
    }
    let t = Instant::now();
    let res = terminal
        .run(&TxnRequest::sale(1250), &mut NoHook)
        .map_err(|e| format!("the terminal service failed: {e}"))?;
    step(format!(
        "txn {}: {} card {} entry {} auth {} in {} ms",
        res.id,
        res.state,
        res.pan_masked.as_deref().unwrap_or("-"),
        res.entry_mode.as_deref().unwrap_or("-"),
        res.auth_code.as_deref().unwrap_or("-"),
        t.elapsed().as_millis()
    ));
    if res.state != State::Completed {
        return Err(format!(
            "the sale ended {}: {}",
            res.state,
            res.reason.as_deref().unwrap_or("no reason given")
        ));
    }
    let approved = host.ledger().approved_not_reversed().len();
    if approved != 1 {
        return Err(format!(
            "the fake host has {approved} approved authorizations, expected 1"
        ));
    }
    Ok(format!(
        "sale EUR 12.50 completed through pcsc:, card {}, auth {}",
        res.pan_masked.as_deref().unwrap_or("-"),
        res.auth_code.as_deref().unwrap_or("-")
    ))
}

/// `bench N APDUHEX`: the APDU through our pcsc: road, WARM_UP + N times.
fn bench(args: &[String]) -> Result<String, String> {
    let n: u32 = args
        .first()
        .and_then(|a| a.parse().ok())
        .filter(|n| *n > 0)
        .ok_or("bench needs a positive count")?;
    let apdu = parse_hex_apdu(args.get(1).map_or("", String::as_str))?;
    let mut r = open()?;
    wait_present(&mut r, true)?;
    r.power_on(0).map_err(|e| said("power on", &e))?;
    step(format!(
        "APDU {} x ({WARM_UP} warm-up + {n}), T={}",
        hex(&apdu),
        r.protocol().map_or("?".to_string(), |p| p.to_string())
    ));
    let mut samples = Vec::new();
    let mut last = Vec::new();
    for i in 0..(WARM_UP + n) {
        let t = Instant::now();
        let resp = r
            .transmit(0, &apdu)
            .map_err(|e| said(&format!("exchange {}", i + 1), &e))?;
        let took = t.elapsed();
        if i >= WARM_UP {
            samples.push(took);
        }
        last = resp;
    }
    let _ = r.power_off(0);
    step(format!(
        "last answer: {} bytes, SW {}",
        last.len(),
        hex(last.get(last.len().saturating_sub(2)..).unwrap_or_default())
    ));
    let stats = Stats::from_samples(&samples).ok_or("no samples")?;
    println!("{}", stats.pcsc_line());
    Ok(stats.describe())
}

fn main() {
    STARTED.get_or_init(Instant::now);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result: Result<String, CaseEnd> = match args.first().map(String::as_str) {
        Some("insert") => insert().map_err(CaseEnd::Fail),
        Some("emv-read") => match args.get(1) {
            Some(pan) => emv_read_case(pan).map_err(CaseEnd::Fail),
            None => Err(CaseEnd::Fail(
                "emv-read needs the expected masked PAN".into(),
            )),
        },
        Some("removed-mid-read") => removed_mid_read(true),
        Some("removed-mid-exchange") => removed_mid_read(false),
        Some("unplug") => unplug(),
        Some("sale") => sale().map_err(CaseEnd::Fail),
        Some("bench") => bench(&args[1..]).map_err(CaseEnd::Fail),
        other => Err(CaseEnd::Fail(format!(
            "unknown case {other:?}: insert, emv-read PAN, removed-mid-read, \
             removed-mid-exchange, unplug, sale, bench N APDU"
        ))),
    };
    step("done");
    let code = match result {
        Ok(text) => {
            println!("RESULT PASS {text}");
            0
        }
        Err(CaseEnd::Skip(why)) => {
            println!("RESULT SKIP {}", why.replace('\n', " "));
            0
        }
        Err(CaseEnd::Fail(why)) => {
            println!("RESULT FAIL {}", why.replace('\n', " "));
            1
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}
