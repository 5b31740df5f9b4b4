//! The virtual ESC/POS printer (feature `sim`).
//!
//! It parses what it receives with the same command table as the encoder
//! ([`command::Parser`](crate::command::Parser)), keeps a text rendering of each receipt so tests can assert what was
//! printed, answers DLE EOT, Automatic Status Back, GS I and GS ( H like an Epson TM printer,
//! and takes faults: paper out (at once or after N lines), paper near end, cover open, cutter
//! jam, offline, silent (answers nothing), slow (a line speed in bytes per second).
//!
//! A cash drawer hangs on its kick-out connector: `ESC p` on the drawer's pin (2 unless
//! told otherwise) is recorded ([`VirtualPrinter::drawer_kicks`], with its pin and times)
//! and opens the drawer, unless it is jammed; the drawer's switch is reported on pin 3 in
//! DLE EOT 1 and ASB, at the level the profile says means open. Tests open and close it
//! with [`VirtualPrinter::set_drawer_open`] (the cashier pushing it shut).
//!
//! It serves any [`Link`]: the master side of a pseudo-terminal (so the driver runs the real
//! serial path) or accepted TCP connections (like a network printer on port 9100).
//!
//! ```
//! use pos_escpos::sim::{SimConfig, SimFault, VirtualPrinter};
//!
//! let (printer, slave_path) = VirtualPrinter::on_pty(SimConfig::default())?;
//! printer.set_fault(SimFault::CoverOpen, true);
//! // open `serial:{slave_path}` with the driver and ask for status ...
//! # drop(slave_path);
//! # Ok::<(), pos_link::LinkError>(())
//! ```

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use pos_hal::{DrawerPin, Fault, FaultKind, PrinterConditions};
use pos_link::{Address, Deadline, DeviceUri, Link, LinkError, PtyPair, TcpLink};

use crate::codepage::{self, CodePage};
use crate::command::{Command, Parser};
use crate::profile::Profile;
use crate::status::{self, IdRequest, PrinterId, StatusRequest};

/// A fault the virtual printer can be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimFault {
    /// No paper.
    PaperOut,
    /// Paper near its end (printing goes on).
    NearEnd,
    /// Cover open.
    CoverOpen,
    /// The cutter jams at the next cut (and stays jammed until the fault is cleared and the
    /// host sends DLE ENQ 1).
    CutterJam,
    /// Offline for no other reason.
    Offline,
    /// Answers nothing at all and prints nothing (some printers go silent with the cover open).
    Silent,
}

impl SimFault {
    /// Parse the name used in `sim:printer?fault=...`.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "paper-out" | "paper_out" => SimFault::PaperOut,
            "near-end" | "paper-near-end" | "paper_near_end" => SimFault::NearEnd,
            "cover-open" | "cover_open" => SimFault::CoverOpen,
            "cutter-jam" | "cutter_jam" | "jam" => SimFault::CutterJam,
            "offline" => SimFault::Offline,
            "silent" => SimFault::Silent,
            _ => return None,
        })
    }
}

/// How the virtual printer starts.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The printer's profile (code pages, cutter, ...). The virtual printer always answers
    /// ASB and GS ( H like an Epson; the driver uses them only when its profile says so.
    pub profile: Profile,
    /// Faults present from the start.
    pub faults: Vec<SimFault>,
    /// Paper runs out after this many printed lines (then printing stops).
    pub paper_out_after_lines: Option<u32>,
    /// Line speed in bytes per second (a slow serial printer); `None` is as fast as possible.
    pub bytes_per_second: Option<u32>,
    /// What GS I reports.
    pub identity: PrinterId,
    /// The cash drawer on the kick-out connector.
    pub drawer: SimDrawer,
}

/// The virtual printer's cash drawer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimDrawer {
    /// The connector pin the drawer's solenoid is wired to: a pulse on the other pin does
    /// nothing.
    pub pin: DrawerPin,
    /// The drawer starts open.
    pub open: bool,
    /// A pulse does not open it (stuck, locked with the key).
    pub jammed: bool,
}

impl Default for SimDrawer {
    fn default() -> Self {
        SimDrawer {
            pin: DrawerPin::Pin2,
            open: false,
            jammed: false,
        }
    }
}

/// One drawer pulse (`ESC p m t1 t2`) the virtual printer received, as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrawerKick {
    /// m: 0 or 48 for pin 2, 1 or 49 for pin 5.
    pub m: u8,
    /// t1: on time in units of 2 ms.
    pub t1: u8,
    /// t2: off time in units of 2 ms.
    pub t2: u8,
}

impl DrawerKick {
    /// The connector pin `m` names (`None` for an m ESC/POS does not define).
    pub fn pin(&self) -> Option<DrawerPin> {
        match self.m {
            0 | 48 => Some(DrawerPin::Pin2),
            1 | 49 => Some(DrawerPin::Pin5),
            _ => None,
        }
    }

    /// The on time.
    pub fn on(&self) -> Duration {
        Duration::from_millis(u64::from(self.t1) * 2)
    }

    /// The off time.
    pub fn off(&self) -> Duration {
        Duration::from_millis(u64::from(self.t2) * 2)
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            // The built-in profiles are compiled in; a test checks that this one exists.
            profile: Profile::builtin("epson-tm-t20").expect("built-in profile epson-tm-t20"),
            faults: Vec::new(),
            paper_out_after_lines: None,
            bytes_per_second: None,
            identity: simulated_identity(),
            drawer: SimDrawer::default(),
        }
    }
}

/// What the virtual printer says about itself through GS I (it does not pretend to be a
/// real model: the maker and model name say it is virtual).
pub fn simulated_identity() -> PrinterId {
    PrinterId {
        model_id: Some(0x20),
        type_id: Some(status::TYPE_ID_AUTOCUTTER),
        autocutter: Some(true),
        rom_version: Some(0x01),
        firmware: Some("sim-1.0".into()),
        maker: Some("pos-escpos".into()),
        model: Some("virtual ESC/POS printer".into()),
        serial: Some("SIM0001".into()),
        fonts: None,
    }
}

impl SimConfig {
    /// Read the options of a `sim:printer` URI: `fault=paper-out,cover-open,...`,
    /// `after=N` (paper out after N lines), `profile=NAME`, `bps=N` (slow printer),
    /// `drawer=closed|open|jammed` (the cash drawer's start; default closed) and
    /// `drawer_pin=2|5` (the pin its solenoid is on; default 2).
    ///
    /// Errors: a message naming the bad option.
    pub fn from_uri(uri: &DeviceUri) -> Result<Self, String> {
        match uri.address() {
            Address::Sim { kind } if kind == "printer" => {}
            _ => return Err(format!("{uri} is not a sim:printer URI")),
        }
        let mut cfg = SimConfig::default();
        for (key, value) in uri.options() {
            match key.as_str() {
                "fault" => {
                    for name in value.split(',').filter(|s| !s.is_empty()) {
                        let f = SimFault::parse(name).ok_or_else(|| {
                            format!(
                                "{uri}: unknown fault {name:?} (paper-out, near-end, cover-open, cutter-jam, offline, silent)"
                            )
                        })?;
                        cfg.faults.push(f);
                    }
                }
                "after" => {
                    cfg.paper_out_after_lines = Some(
                        value
                            .parse()
                            .map_err(|_| format!("{uri}: after={value:?} is not a line count"))?,
                    );
                }
                // Detection on the simulator keeps its own profile.
                "profile" if value == "auto" => {}
                "profile" => {
                    cfg.profile = Profile::builtin(value)
                        .ok_or_else(|| format!("{uri}: unknown profile {value:?}"))?;
                }
                "bps" => {
                    let bps: u32 =
                        value.parse().ok().filter(|&b| b > 0).ok_or_else(|| {
                            format!("{uri}: bps={value:?} is not a positive number")
                        })?;
                    cfg.bytes_per_second = Some(bps);
                }
                "drawer" => match value.as_str() {
                    "closed" => cfg.drawer.open = false,
                    "open" => cfg.drawer.open = true,
                    "jammed" => cfg.drawer.jammed = true,
                    other => {
                        return Err(format!("{uri}: drawer={other:?} (closed, open or jammed)"));
                    }
                },
                "drawer_pin" => {
                    cfg.drawer.pin = value
                        .parse::<u8>()
                        .ok()
                        .and_then(DrawerPin::from_number)
                        .ok_or_else(|| format!("{uri}: drawer_pin={value:?} (2 or 5)"))?;
                }
                other => {
                    return Err(format!(
                        "{uri}: unknown option {other:?} (fault, after, profile, bps, drawer, drawer_pin)"
                    ));
                }
            }
        }
        Ok(cfg)
    }
}

/// One receipt the virtual printer produced (ended by a cut, or still open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The printed lines as text (barcodes, QR codes and images as bracketed notes).
    pub lines: Vec<String>,
    /// Whether a cut ended it.
    pub cut: bool,
}

impl Receipt {
    /// The lines joined with newlines.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

#[derive(Debug)]
struct State {
    profile: Profile,
    faults: Vec<SimFault>,
    paper_out_after_lines: Option<u32>,
    bytes_per_second: Option<u32>,
    identity: PrinterId,
    lines_printed: u32,
    paper_exhausted: bool,
    jammed: bool,
    receipts: Vec<Receipt>,
    current: Vec<String>,
    line: String,
    /// Text bytes of the current line not decoded yet (decoded when the line ends or the
    /// code page changes, so a GB18030 character split across reads stays whole).
    text: Vec<u8>,
    code_page: CodePage,
    chinese: bool,
    asb_mask: u8,
    last_asb: Option<PrinterConditions>,
    qr_data: Vec<u8>,
    confirmed: Vec<[u8; 4]>,
    dropped_bytes: usize,
    bytes_received: usize,
    drawer: SimDrawer,
    kicks: Vec<DrawerKick>,
}

impl State {
    fn new(cfg: SimConfig) -> Self {
        State {
            code_page: CodePage::Cp437,
            profile: cfg.profile,
            faults: cfg.faults,
            paper_out_after_lines: cfg.paper_out_after_lines,
            bytes_per_second: cfg.bytes_per_second,
            identity: cfg.identity,
            lines_printed: 0,
            paper_exhausted: false,
            jammed: false,
            receipts: Vec::new(),
            current: Vec::new(),
            line: String::new(),
            text: Vec::new(),
            chinese: false,
            asb_mask: 0,
            last_asb: None,
            qr_data: Vec::new(),
            confirmed: Vec::new(),
            dropped_bytes: 0,
            bytes_received: 0,
            drawer: cfg.drawer,
            kicks: Vec::new(),
        }
    }

    fn has(&self, f: SimFault) -> bool {
        self.faults.contains(&f)
    }

    fn conditions(&self) -> PrinterConditions {
        let mut c = PrinterConditions::empty();
        if self.has(SimFault::CoverOpen) {
            c |= PrinterConditions::COVER_OPEN | PrinterConditions::OFFLINE;
        }
        if self.has(SimFault::PaperOut) || self.paper_exhausted {
            c |= PrinterConditions::PAPER_OUT
                | PrinterConditions::PAPER_NEAR_END
                | PrinterConditions::PAPER_END_STOP
                | PrinterConditions::OFFLINE;
        }
        if self.has(SimFault::NearEnd) {
            c |= PrinterConditions::PAPER_NEAR_END;
        }
        if self.jammed {
            c |= PrinterConditions::CUTTER_JAM
                | PrinterConditions::ERROR
                | PrinterConditions::OFFLINE;
        }
        if self.has(SimFault::Offline) {
            c |= PrinterConditions::OFFLINE;
        }
        if self.drawer.open {
            c |= PrinterConditions::DRAWER_OPEN;
        }
        c
    }

    /// Printing stops while any stopping condition holds.
    fn stopped(&self) -> bool {
        self.conditions().blocking_fault().is_some()
    }

    fn flush_text(&mut self) {
        if !self.text.is_empty() {
            let page = if self.chinese {
                CodePage::Gb18030
            } else {
                self.code_page
            };
            let bytes = std::mem::take(&mut self.text);
            self.line.push_str(&codepage::decode(&bytes, page));
        }
    }

    fn line_pending(&self) -> bool {
        !self.line.is_empty() || !self.text.is_empty()
    }

    fn emit_line(&mut self) {
        self.flush_text();
        let line = std::mem::take(&mut self.line);
        self.current.push(line);
        self.lines_printed += 1;
        if self
            .paper_out_after_lines
            .is_some_and(|n| self.lines_printed >= n)
        {
            self.paper_exhausted = true;
        }
    }

    fn note(&mut self, text: String) {
        if self.line_pending() {
            self.emit_line();
        }
        self.line = text;
        self.emit_line();
    }

    fn page_for(&self, number: u8) -> Option<CodePage> {
        self.profile
            .code_pages
            .iter()
            .find(|e| e.number == number)
            .map(|e| e.page)
    }

    /// Apply one command; returns the bytes to answer.
    fn apply(&mut self, cmd: Command) -> Vec<u8> {
        let pin3 = self.profile.drawer_open_when_pin3_high;
        // Real-time commands work whatever the printer's state.
        match &cmd {
            Command::RealTimeStatus(n) => {
                return match StatusRequest::from_n(*n) {
                    Some(r) => vec![status::encode_real_time(r, self.conditions(), pin3)],
                    None => Vec::new(),
                };
            }
            Command::RealTimeRequest(1) => {
                if self.jammed && !self.has(SimFault::CutterJam) {
                    self.jammed = false;
                }
                return Vec::new();
            }
            Command::RealTimeRequest(_) | Command::ClearBuffer => return Vec::new(),
            Command::AutoStatusBack(mask) => {
                self.asb_mask = *mask;
                self.last_asb = None;
                return Vec::new();
            }
            Command::TransmitPrinterId(n) => {
                return IdRequest::from_n(*n)
                    .and_then(|r| self.identity.reply_to(r).ok().flatten())
                    .unwrap_or_default();
            }
            Command::Init => {
                self.flush_text();
                self.asb_mask = 0;
                self.last_asb = None;
                self.chinese = false;
                self.code_page = CodePage::Cp437;
                return Vec::new();
            }
            _ => {}
        }
        if self.stopped() {
            // The printer does not print while stopped: this data is lost, and a GS ( H
            // request behind it is never answered.
            return Vec::new();
        }
        match cmd {
            Command::Text(bytes) => self.text.extend_from_slice(&bytes),
            Command::LineFeed => self.emit_line(),
            Command::FeedLines(n) => {
                if self.line_pending() {
                    self.emit_line();
                }
                for _ in 0..n {
                    if self.stopped() {
                        break;
                    }
                    self.emit_line();
                }
            }
            Command::CodeTable(n) => match self.page_for(n) {
                Some(p) => {
                    self.flush_text();
                    self.code_page = p;
                }
                None => log::warn!(
                    "virtual printer: ESC t {n} is not in profile {}",
                    self.profile.name
                ),
            },
            Command::ChineseMode(on) => {
                self.flush_text();
                self.chinese = on;
            }
            Command::Barcode { system, data } => {
                // CODE128 data starts with its code set ({A, {B or {C); show the data only.
                let shown = match (system, data.as_slice()) {
                    (73, [b'{', _, rest @ ..]) => rest,
                    (_, all) => all,
                };
                let name = barcode_name(system);
                self.note(format!(
                    "[BARCODE {name}: {}]",
                    String::from_utf8_lossy(shown)
                ));
            }
            Command::QrStore(data) => self.qr_data = data,
            Command::QrPrint => {
                let data = std::mem::take(&mut self.qr_data);
                self.note(format!("[QR: {}]", String::from_utf8_lossy(&data)));
            }
            Command::RasterImage {
                width_bytes,
                height,
                ..
            } => {
                self.note(format!("[IMAGE {}x{}]", u32::from(width_bytes) * 8, height));
            }
            Command::Cut { .. } => {
                if self.has(SimFault::CutterJam) {
                    self.jammed = true;
                } else {
                    if self.line_pending() {
                        self.emit_line();
                    }
                    let lines = std::mem::take(&mut self.current);
                    self.receipts.push(Receipt { lines, cut: true });
                }
            }
            Command::DrawerPulse { pin, on, off } => {
                let kick = DrawerKick {
                    m: pin,
                    t1: on,
                    t2: off,
                };
                self.kicks.push(kick);
                if kick.pin() == Some(self.drawer.pin) && on > 0 && !self.drawer.jammed {
                    self.drawer.open = true;
                }
            }
            Command::ProcessIdRequest(id) => {
                self.confirmed.push(id);
                return status::process_id_reply(id).unwrap_or_default();
            }
            _ => {}
        }
        Vec::new()
    }

    /// An ASB block when enabled and the conditions changed since the last one.
    fn asb_due(&mut self) -> Option<[u8; 4]> {
        if self.asb_mask == 0 || self.has(SimFault::Silent) {
            return None;
        }
        let now = self.conditions();
        if self.last_asb == Some(now) {
            return None;
        }
        self.last_asb = Some(now);
        Some(status::encode_asb(
            now,
            self.profile.drawer_open_when_pin3_high,
        ))
    }
}

/// The symbology of GS k function B's `m`.
fn barcode_name(m: u8) -> String {
    match m {
        65 => "UPC-A".into(),
        67 => "EAN-13".into(),
        69 => "CODE39".into(),
        70 => "ITF".into(),
        73 => "CODE128".into(),
        other => format!("type {other}"),
    }
}

/// A running virtual printer. Dropping it stops its threads.
pub struct VirtualPrinter {
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for VirtualPrinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualPrinter").finish_non_exhaustive()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Serve one connection until it closes or `stop` is set.
fn serve<L: Link>(mut link: L, state: Arc<Mutex<State>>, stop: Arc<AtomicBool>) {
    let mut parser = Parser::new();
    let mut buf = [0u8; 1024];
    while !stop.load(Ordering::Relaxed) {
        let n = match link.read_available(&mut buf, Deadline::after(Duration::from_millis(20))) {
            Ok(n) => n,
            Err(e) if e.kind() == FaultKind::Timeout => 0,
            Err(e) => {
                log::debug!("virtual printer: {e}");
                return;
            }
        };
        let mut answer = Vec::new();
        let pause = {
            let mut st = lock(&state);
            st.bytes_received += n;
            if st.has(SimFault::Silent) {
                st.dropped_bytes += n;
                continue;
            }
            parser.push(&buf[..n]);
            while let Some(cmd) = parser.next_command() {
                answer.extend(st.apply(cmd));
            }
            if let Some(block) = st.asb_due() {
                answer.extend_from_slice(&block);
            }
            st.bytes_per_second
                .map(|bps| Duration::from_secs_f64(n as f64 / f64::from(bps)))
        };
        if let Some(p) = pause {
            std::thread::sleep(p);
        }
        if !answer.is_empty() {
            if let Err(e) = link.write_all(&answer, Deadline::after(Duration::from_secs(1))) {
                log::debug!("virtual printer: cannot answer: {e}");
                return;
            }
        }
    }
}

impl VirtualPrinter {
    fn with_state(cfg: SimConfig) -> (Arc<Mutex<State>>, Arc<AtomicBool>) {
        (
            Arc::new(Mutex::new(State::new(cfg))),
            Arc::new(AtomicBool::new(false)),
        )
    }

    /// Serve the printer on an existing link (one connection).
    pub fn serve_link<L: Link + 'static>(link: L, cfg: SimConfig) -> Self {
        let (state, stop) = Self::with_state(cfg);
        let t = {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            std::thread::spawn(move || serve(link, state, stop))
        };
        VirtualPrinter {
            state,
            stop,
            threads: Mutex::new(vec![t]),
        }
    }

    /// A virtual serial printer on a new pseudo-terminal. Returns the printer and the path
    /// of the slave side, for the driver to open as `serial:PATH`.
    ///
    /// Errors: when no pty can be allocated.
    pub fn on_pty(cfg: SimConfig) -> Result<(Self, String), LinkError> {
        let (master, slave) = PtyPair::open()?.into_parts();
        Ok((Self::serve_link(master, cfg), slave))
    }

    /// A virtual network printer listening on `bind` (e.g. `127.0.0.1:0`); one client at a
    /// time, like a printer's port 9100.
    ///
    /// Errors: when the address cannot be bound.
    pub fn on_tcp(bind: &str, cfg: SimConfig) -> std::io::Result<(Self, SocketAddr)> {
        let listener = TcpListener::bind(bind)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (state, stop) = Self::with_state(cfg);
        let t = {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            if stream.set_nonblocking(false).is_err() {
                                continue;
                            }
                            match TcpLink::from_stream(stream) {
                                Ok(link) => serve(link, Arc::clone(&state), Arc::clone(&stop)),
                                Err(e) => log::debug!("virtual printer: {e}"),
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        Err(e) => {
                            log::debug!("virtual printer: accept: {e}");
                            return;
                        }
                    }
                }
            })
        };
        Ok((
            VirtualPrinter {
                state,
                stop,
                threads: Mutex::new(vec![t]),
            },
            addr,
        ))
    }

    /// Turn a fault on or off, now.
    pub fn set_fault(&self, fault: SimFault, on: bool) {
        let mut st = lock(&self.state);
        st.faults.retain(|f| *f != fault);
        if on {
            st.faults.push(fault);
        } else if fault == SimFault::PaperOut {
            // A new roll was loaded.
            st.paper_exhausted = false;
            st.paper_out_after_lines = None;
        }
    }

    /// Open or close the cash drawer by hand (a cashier pushing it shut, a key opening it).
    pub fn set_drawer_open(&self, open: bool) {
        lock(&self.state).drawer.open = open;
    }

    /// Jam the cash drawer (a pulse no longer opens it) or free it.
    pub fn set_drawer_jammed(&self, jammed: bool) {
        lock(&self.state).drawer.jammed = jammed;
    }

    /// Whether the cash drawer is open.
    pub fn drawer_open(&self) -> bool {
        lock(&self.state).drawer.open
    }

    /// The drawer pulses (`ESC p`) received so far, in order, whatever pin they named.
    /// Pulses sent while the printer was stopped (offline) are not here: it did not act on
    /// them.
    pub fn drawer_kicks(&self) -> Vec<DrawerKick> {
        lock(&self.state).kicks.clone()
    }

    /// Make paper run out after `lines` more printed lines.
    pub fn paper_out_after(&self, lines: u32) {
        let mut st = lock(&self.state);
        st.paper_out_after_lines = Some(st.lines_printed + lines);
    }

    /// The conditions the printer would report now.
    pub fn conditions(&self) -> PrinterConditions {
        lock(&self.state).conditions()
    }

    /// Receipts ended by a cut.
    pub fn receipts(&self) -> Vec<Receipt> {
        lock(&self.state).receipts.clone()
    }

    /// What has printed since the last cut (not cut off yet).
    pub fn current(&self) -> Receipt {
        let st = lock(&self.state);
        let mut lines = st.current.clone();
        if st.line_pending() {
            let page = if st.chinese {
                CodePage::Gb18030
            } else {
                st.code_page
            };
            lines.push(format!("{}{}", st.line, codepage::decode(&st.text, page)));
        }
        Receipt { lines, cut: false }
    }

    /// Every printed line so far, cut or not.
    pub fn all_text(&self) -> String {
        let mut all: Vec<String> = self.receipts().into_iter().flat_map(|r| r.lines).collect();
        all.extend(self.current().lines);
        all.join("\n")
    }

    /// Lines printed so far.
    pub fn lines_printed(&self) -> u32 {
        lock(&self.state).lines_printed
    }

    /// Process IDs (GS ( H) the printer confirmed.
    pub fn confirmed_jobs(&self) -> Vec<[u8; 4]> {
        lock(&self.state).confirmed.clone()
    }

    /// Bytes received in all.
    pub fn bytes_received(&self) -> usize {
        lock(&self.state).bytes_received
    }

    /// Unplug the printer: stop serving and close its end of the link (the pseudo-terminal's
    /// master side, or the TCP listener and connection), and wait until it is closed. The
    /// driver's next exchange fails with `Disconnected` (on a pty the slave side then reads
    /// and writes `EIO`, a hang-up). What was printed stays readable; there is no plugging
    /// the same printer back in: make a new one.
    pub fn unplug(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let threads: Vec<JoinHandle<()>> = self
            .threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        for t in threads {
            let _ = t.join();
        }
    }

    /// Whether [`unplug`](Self::unplug) was called.
    pub fn is_unplugged(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

impl Drop for VirtualPrinter {
    fn drop(&mut self) {
        self.unplug();
    }
}
