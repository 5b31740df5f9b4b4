//! One run of the rig: build the initramfs, boot the guest under QEMU, play the card, the
//! printer and the typist as the guest's scenarios ask, and collect what they report.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use qemu_rig_guest::ctl::{Line, Outcome, Verb};

use crate::card::CardSide;
use crate::channel::Channel;
use crate::emupos::EmuposSide;
use crate::files::{FilesError, RigFiles};
use crate::initramfs::{self, ImageError, ImageInputs};
use crate::monitor::Monitor;
use crate::printer::PrinterSide;

/// How long each key of a typed swipe is held (QEMU's `sendkey` hold time).
const KEY_HOLD: Duration = Duration::from_millis(10);
/// How long answering the guest on the control port may take.
const CONTROL_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Console lines kept for the report when something goes wrong.
const CONSOLE_TAIL: usize = 60;

/// What a run needs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The cache directory `prepare.sh` filled.
    pub cache: PathBuf,
    /// The static `rig-guest` binary.
    pub guest: PathBuf,
    /// The `pcsc-bench` client, when built (the pcsc-lite comparison is skipped otherwise).
    pub pcsc_bench: Option<PathBuf>,
    /// The `pcsc-road` helper (our pcsc: road), when built (its cases are skipped otherwise).
    pub pcsc_road: Option<PathBuf>,
    /// The EMV transcripts (`NAME.apdu`) the card side can replay.
    pub transcripts: PathBuf,
    /// Only these guest cases or groups; empty: all.
    pub only: Vec<String>,
    /// APDUs per benchmark.
    pub bench: u32,
    /// The whole run's time limit (boot to power-off).
    pub timeout: Duration,
    /// Where the guest's console goes (a file), if anywhere.
    pub console_log: Option<PathBuf>,
    /// Also print the console as it comes.
    pub echo_console: bool,
}

/// One case the guest reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// `group.case`.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took in the guest.
    pub duration: Duration,
    /// Its message.
    pub text: String,
    /// The steps it reported.
    pub steps: Vec<String>,
}

/// One benchmark the guest reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchResult {
    /// What was measured.
    pub name: String,
    /// Operations.
    pub count: u32,
    /// Median, ns.
    pub p50_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
    /// Mean, ns.
    pub mean_ns: u64,
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The cases, in the order they ended.
    pub cases: Vec<CaseResult>,
    /// The benchmarks.
    pub benches: Vec<BenchResult>,
    /// Whether the guest said `END` (a run that did not is a failure).
    pub ended: bool,
    /// Boot to power-off.
    pub duration: Duration,
    /// The console's last lines.
    pub console_tail: Vec<String>,
    /// Boot time: QEMU start to the guest's first control message.
    pub boot: Option<Duration>,
    /// The cases the guest announced (its `PLAN` line), if it did.
    pub plan: Option<Vec<String>>,
}

impl RunReport {
    /// Cases that failed.
    pub fn failed(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .count()
    }

    /// The benchmark named `name`.
    pub fn bench(&self, name: &str) -> Option<&BenchResult> {
        self.benches.iter().find(|b| b.name == name)
    }

    /// Hold the cases reported against the plan: a planned case that never reported, a
    /// case reported twice, or no plan at all each becomes a failed case of its own. A lost
    /// `CASE` line on the control port thus fails the run instead of vanishing from it.
    /// Cases reported without being planned (the guest's own `rig.options`, `suite.rig`
    /// failures) are kept as they are.
    pub fn reconcile(&mut self) {
        let failed = |name: String, text: String| CaseResult {
            name,
            outcome: Outcome::Fail,
            duration: Duration::ZERO,
            text,
            steps: Vec::new(),
        };
        let Some(plan) = &self.plan else {
            self.cases.push(failed(
                "rig.plan".into(),
                "the guest announced no plan (PLAN line missing or garbled): whether every \
                 case reported cannot be told"
                    .into(),
            ));
            return;
        };
        let mut extra = Vec::new();
        for name in plan {
            match self.cases.iter().filter(|c| c.name == *name).count() {
                1 => {}
                0 => extra.push(failed(
                    name.clone(),
                    "planned by the guest but never reported: its CASE line was lost on the \
                     control port, or the guest stopped before it"
                        .into(),
                )),
                n => extra.push(failed(
                    format!("{name}.reported"),
                    format!("reported {n} times; each case reports once"),
                )),
            }
        }
        self.cases.extend(extra);
    }
}

/// Why a run could not happen or finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The rig is not prepared.
    #[error(transparent)]
    Files(#[from] FilesError),
    /// The initramfs could not be built.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// QEMU did not start, or a socket failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// QEMU exited before the guest said END.
    #[error("QEMU exited ({status}) before the guest finished; console tail:\n{tail}")]
    QemuExited {
        /// QEMU's exit status.
        status: String,
        /// The console's last lines.
        tail: String,
    },
    /// The run's time limit passed.
    #[error("the guest did not finish within {limit:?}; console tail:\n{tail}")]
    Timeout {
        /// The limit.
        limit: Duration,
        /// The console's last lines.
        tail: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// The console's lines as they come, with a tail kept for reports.
#[derive(Debug, Clone, Default)]
struct Console {
    tail: Arc<Mutex<Vec<String>>>,
}

impl Console {
    fn push(&self, line: String) {
        let mut t = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        t.push(line);
        let excess = t.len().saturating_sub(CONSOLE_TAIL);
        t.drain(..excess);
    }

    fn tail(&self) -> Vec<String> {
        self.tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Strip terminal escapes and carriage returns from a console line.
fn plain(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ params final-byte; other escapes: ESC + one char.
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c != '\r' {
            out.push(c);
        }
    }
    out
}

fn spawn_console(
    child: &mut Child,
    console: Console,
    log: Option<PathBuf>,
    echo: bool,
) -> Result<(), RunError> {
    let Some(stdout) = child.stdout.take() else {
        return Ok(());
    };
    let mut file = match log {
        Some(p) => {
            Some(std::fs::File::create(&p).map_err(io(format!("creating {}", p.display())))?)
        }
        None => None,
    };
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            let text = plain(&String::from_utf8_lossy(&line));
            if let Some(f) = file.as_mut() {
                let _ = writeln!(f, "{text}");
            }
            if echo {
                println!("  guest| {text}");
            }
            console.push(text);
        }
    });
    Ok(())
}

fn qemu_command(files: &RigFiles, dir: &Path, initrd: &Path, cmdline: &str) -> Command {
    let mut c = Command::new(&files.qemu);
    c.env("LD_LIBRARY_PATH", files.library_path());
    for d in files.firmware_dirs() {
        c.arg("-L").arg(d);
    }
    let sock = |name: &str| dir.join(name).display().to_string();
    c.args(["-accel", "tcg", "-machine", "q35", "-m", "384", "-smp", "1"])
        .args(["-nographic", "-nodefaults", "-no-reboot"])
        .args(["-serial", "stdio"])
        .arg("-chardev")
        .arg(format!(
            "socket,id=ctl,path={},server=on,wait=off",
            sock("ctl.sock")
        ))
        .args(["-serial", "chardev:ctl"])
        .arg("-monitor")
        .arg(format!("unix:{},server=on,wait=off", sock("mon.sock")))
        .arg("-kernel")
        .arg(&files.kernel)
        .arg("-initrd")
        .arg(initrd)
        .arg("-append")
        .arg(cmdline)
        .args(["-device", "qemu-xhci,id=xhci"])
        .args(["-device", "usb-ccid,id=ccid0,bus=xhci.0"])
        .arg("-chardev")
        .arg(format!(
            "socket,id=card,path={},server=on,wait=off",
            sock("card.sock")
        ))
        .args([
            "-device",
            "ccid-card-passthru,id=card0,chardev=card,bus=ccid0.0",
        ])
        .arg("-chardev")
        .arg(format!(
            "socket,id=ftdi,path={},server=on,wait=off",
            sock("ftdi.sock")
        ))
        .args(["-device", "usb-serial,id=ftdi0,chardev=ftdi,bus=xhci.0"])
        .args(["-device", "usb-kbd,id=kbd0,bus=xhci.0"])
        // The printer channel: the guest's ttyS2, where rig-guest relays the USB printer
        // gadget's /dev/g_printer0; the host pipes it to emupos (crate::channel).
        .arg("-chardev")
        .arg(format!(
            "socket,id=prn,path={},server=on,wait=off",
            sock("prn.sock")
        ))
        .args(["-serial", "chardev:prn"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn connect_retry(path: &Path, limit: Duration) -> std::io::Result<UnixStream> {
    let deadline = Instant::now() + limit;
    loop {
        match UnixStream::connect(path) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The host's devices, as the guest's commands drive them.
struct Host {
    card: CardSide,
    printer: PrinterSide,
    monitor: Monitor,
    emupos: EmuposSide,
}

impl Host {
    fn handle(&mut self, verb: &Verb) -> Result<String, String> {
        match verb {
            Verb::CardInsert(name) => self.card.insert(name).map(|()| String::new()),
            Verb::CardRemove => self.card.remove().map(|()| String::new()),
            Verb::CardRemoveOnApdu(n) => self.card.remove_on_apdu(*n).map(|()| String::new()),
            Verb::CardStats => Ok(self.card.stats()),
            Verb::ReaderUnplug => {
                self.card.disconnect();
                let out = self
                    .monitor
                    .command("device_del ccid0")
                    .map_err(|e| format!("monitor: {e}"))?;
                if out.is_empty() {
                    Ok(String::new())
                } else {
                    Err(format!("device_del ccid0: {out}"))
                }
            }
            Verb::ReaderPlug => {
                for cmd in [
                    "device_add usb-ccid,id=ccid0,bus=xhci.0",
                    "device_add ccid-card-passthru,id=card0,chardev=card,bus=ccid0.0",
                ] {
                    // QEMU frees the unplugged card's chardev a moment after device_del
                    // returns: "Device 'card' is in use" is worth a few short retries.
                    let mut tries = 0;
                    loop {
                        let out = self
                            .monitor
                            .command(cmd)
                            .map_err(|e| format!("monitor: {e}"))?;
                        if out.is_empty() {
                            break;
                        }
                        tries += 1;
                        if !out.contains("is in use") || tries >= 10 {
                            return Err(format!("{cmd}: {out}"));
                        }
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                }
                self.card.reconnect().map(|()| String::new())
            }
            Verb::PrinterConnect => self.printer.connect().map(|()| String::new()),
            Verb::PrinterUnplug => self.printer.unplug().map(|()| String::new()),
            Verb::PrinterFault { fault, on } => {
                self.printer.fault(fault, *on).map(|()| String::new())
            }
            Verb::PrinterCheck(text) => self.printer.check(text),
            Verb::EmuposReset => self.emupos.reset(),
            Verb::EmuposFault { fault, on } => self.emupos.fault(fault, *on),
            Verb::EmuposFaultAfter { bytes, fault } => self.emupos.fault_after(*bytes, fault),
            Verb::EmuposState => self.emupos.state(),
            Verb::EmuposCheck(text) => self.emupos.check(text),
            Verb::KeyboardType(text) => self
                .monitor
                .type_text(&format!("{text}\n"), KEY_HOLD)
                .map(|()| String::new())
                .map_err(|e| format!("typing: {e}")),
        }
    }
}

/// The kernel command line: a quiet console on the first serial port, and the run's
/// options for the guest.
pub fn kernel_cmdline(only: &[String], bench: u32) -> String {
    let mut s = String::from("console=ttyS0 quiet panic=-1");
    if !only.is_empty() {
        s.push_str(&format!(" rig.only={}", only.join(",")));
    }
    s.push_str(&format!(" rig.bench={bench}"));
    s
}

/// Boot the guest and serve it until it says `END` or powers off. `progress` sees each
/// control line as it arrives.
///
/// Errors: the rig is not prepared, QEMU does not start or exits early, the time limit.
pub fn run(options: &RunOptions, progress: &mut dyn FnMut(&Line)) -> Result<RunReport, RunError> {
    let files = RigFiles::discover(&options.cache)?;
    let image = initramfs::build(
        &files,
        &ImageInputs {
            guest: options.guest.clone(),
            pcsc_bench: options.pcsc_bench.clone(),
            pcsc_road: options.pcsc_road.clone(),
        },
    )?;
    // Socket paths must stay short (108 bytes): a fresh directory under /tmp.
    let dir = tempfile::Builder::new()
        .prefix("qemu-rig-")
        .tempdir_in(std::env::temp_dir())
        .map_err(io("creating the run directory"))?;
    let initrd = dir.path().join("initrd.cpio");
    std::fs::write(&initrd, &image).map_err(io("writing the initramfs"))?;
    let cmdline = kernel_cmdline(&options.only, options.bench);

    let started = Instant::now();
    let mut qemu = Qemu(
        qemu_command(&files, dir.path(), &initrd, &cmdline)
            .spawn()
            .map_err(io(format!("starting {}", files.qemu.display())))?,
    );
    let console = Console::default();
    // QEMU's stderr is read as it comes (a full pipe would stall the guest).
    let errors = Console::default();
    if let Some(stderr) = qemu.0.stderr.take() {
        let errors = errors.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).split(b'\n') {
                let Ok(line) = line else { break };
                errors.push(String::from_utf8_lossy(&line).into_owned());
            }
        });
    }
    spawn_console(
        &mut qemu.0,
        console.clone(),
        options.console_log.clone(),
        options.echo_console,
    )?;
    let result = serve(
        options,
        &mut qemu.0,
        dir.path(),
        (&console, &errors),
        started,
        progress,
    );
    // The guest powers off by itself after END; give it a moment before the guard kills.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && matches!(qemu.0.try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(qemu);
    let mut report = result?;
    report.duration = started.elapsed();
    report.console_tail = console.tail();
    Ok(report)
}

/// QEMU, killed and reaped when dropped: it never outlives the run, whatever path (error,
/// panic) leaves it.
struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn serve(
    options: &RunOptions,
    child: &mut Child,
    dir: &Path,
    (console, errors): (&Console, &Console),
    started: Instant,
    progress: &mut dyn FnMut(&Line),
) -> Result<RunReport, RunError> {
    let early_exit = |child: &mut Child| -> Option<RunError> {
        match child.try_wait() {
            Ok(Some(status)) => Some(RunError::QemuExited {
                status: format!("{status}; stderr: {}", errors.tail().join(" | ").trim()),
                tail: console.tail().join("\n"),
            }),
            _ => None,
        }
    };
    let ctl = connect_retry(&dir.join("ctl.sock"), Duration::from_secs(10)).map_err(|e| {
        early_exit(child).unwrap_or(RunError::Io {
            what: "connecting to the guest's control port".into(),
            source: e,
        })
    })?;
    let monitor = Monitor::connect(&dir.join("mon.sock"), Duration::from_secs(10))
        .map_err(io("connecting to QEMU's monitor"))?;
    let card = CardSide::connect(&dir.join("card.sock"), &options.transcripts).map_err(|e| {
        RunError::Io {
            what: "connecting the card to QEMU's reader".into(),
            source: std::io::Error::other(e),
        }
    })?;
    let prn = connect_retry(&dir.join("prn.sock"), Duration::from_secs(10))
        .map_err(io("connecting to QEMU's printer channel"))?;
    let channel = Channel::start(prn.try_clone().map_err(io("printer channel"))?, prn);
    let emupos_bin = crate::emupos::locate_from_env();
    if let Err(why) = &emupos_bin {
        // Said once, loudly, before any case: the usbprn cases will SKIP (or FAIL under CI).
        println!("qemu-rig: {why}");
    }
    let mut host = Host {
        card,
        printer: PrinterSide::new(&dir.join("ftdi.sock")),
        monitor,
        emupos: EmuposSide::new(channel, emupos_bin),
    };

    let lines = read_lines(ctl.try_clone().map_err(io("control port"))?);
    let mut writer = ctl;
    // A guest that stops reading must not wedge the host past the run's time limit.
    writer
        .set_write_timeout(Some(CONTROL_WRITE_TIMEOUT))
        .map_err(io("control port"))?;
    let mut report = RunReport {
        cases: Vec::new(),
        benches: Vec::new(),
        ended: false,
        duration: Duration::ZERO,
        console_tail: Vec::new(),
        boot: None,
        plan: None,
    };
    let mut steps: Vec<(String, String)> = Vec::new();
    let deadline = started + options.timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(RunError::Timeout {
                limit: options.timeout,
                tail: console.tail().join("\n"),
            });
        }
        let text = match lines.recv_timeout(left.min(Duration::from_millis(500))) {
            Ok(t) => t,
            Err(RecvTimeoutError::Timeout) => {
                if let Some(e) = early_exit(child) {
                    return Err(e);
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                // The control port closed: QEMU is going away.
                std::thread::sleep(Duration::from_millis(200));
                return Err(early_exit(child).unwrap_or(RunError::QemuExited {
                    status: "control port closed".into(),
                    tail: console.tail().join("\n"),
                }));
            }
        };
        let Ok(line) = Line::parse(&text) else {
            if text.starts_with("PLAN ") {
                // Its loss fails the run (rig.plan); say why here.
                log::warn!("a garbled PLAN line from the guest: {text:?}");
            } else {
                log::debug!("control port noise: {text:?}");
            }
            continue;
        };
        if report.boot.is_none() {
            report.boot = Some(started.elapsed());
        }
        progress(&line);
        match line {
            Line::Cmd { seq, verb } => {
                let answer = match host.handle(&verb) {
                    Ok(text) => Line::Ok { seq, text },
                    Err(text) => Line::Err { seq, text },
                };
                progress(&answer);
                writer
                    .write_all(format!("{answer}\n").as_bytes())
                    .map_err(io("answering the guest"))?;
            }
            Line::Step { case, text } => steps.push((case, text)),
            Line::Case {
                case,
                outcome,
                millis,
                text,
            } => {
                let mine = steps
                    .iter()
                    .filter(|(c, _)| *c == case)
                    .map(|(_, t)| t.clone())
                    .collect();
                steps.retain(|(c, _)| *c != case);
                report.cases.push(CaseResult {
                    name: case,
                    outcome,
                    duration: Duration::from_millis(millis),
                    text,
                    steps: mine,
                });
            }
            Line::Bench {
                name,
                count,
                p50_ns,
                p99_ns,
                mean_ns,
            } => report.benches.push(BenchResult {
                name,
                count,
                p50_ns,
                p99_ns,
                mean_ns,
            }),
            Line::Plan { cases } => {
                if report.plan.is_some() {
                    log::warn!("the guest sent a second PLAN line; keeping the first");
                } else {
                    report.plan = Some(cases);
                }
            }
            Line::End => {
                report.ended = true;
                report.reconcile();
                return Ok(report);
            }
            Line::Ok { .. } | Line::Err { .. } => {
                log::debug!("unexpected answer from the guest: {text}");
            }
        }
    }
}

/// Read the control port's lines on a thread.
fn read_lines(stream: UnixStream) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_string();
            if tx.send(text).is_err() {
                break;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn console_escapes_are_stripped() {
        assert_eq!(
            plain("\u{1b}c\u{1b}[?7l\u{1b}[2J\u{1b}[0mSeaBIOS (version 1.16)\r"),
            "SeaBIOS (version 1.16)"
        );
        assert_eq!(plain("rig: guest up"), "rig: guest up");
    }

    fn report(plan: Option<&[&str]>, reported: &[&str]) -> RunReport {
        RunReport {
            cases: reported
                .iter()
                .map(|n| CaseResult {
                    name: n.to_string(),
                    outcome: Outcome::Pass,
                    duration: Duration::ZERO,
                    text: String::new(),
                    steps: Vec::new(),
                })
                .collect(),
            benches: Vec::new(),
            ended: true,
            duration: Duration::ZERO,
            console_tail: Vec::new(),
            boot: None,
            plan: plan.map(|p| p.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn every_planned_case_must_report_once() {
        let mut all_there = report(Some(&["a.x", "b.y"]), &["b.y", "a.x", "rig.options"]);
        all_there.reconcile();
        assert_eq!(all_there.failed(), 0);
        assert_eq!(all_there.cases.len(), 3);

        let mut lost = report(Some(&["a.x", "b.y", "c.z"]), &["a.x", "c.z"]);
        lost.reconcile();
        assert_eq!(lost.failed(), 1);
        let f = lost
            .cases
            .iter()
            .find(|c| c.outcome == Outcome::Fail)
            .unwrap();
        assert_eq!(f.name, "b.y");
        assert!(f.text.contains("never reported"), "{}", f.text);

        let mut twice = report(Some(&["a.x"]), &["a.x", "a.x"]);
        twice.reconcile();
        assert_eq!(twice.failed(), 1);
        assert!(twice.cases.iter().any(|c| c.name == "a.x.reported"));

        let mut no_plan = report(None, &["a.x"]);
        no_plan.reconcile();
        assert_eq!(no_plan.failed(), 1);
        assert!(no_plan.cases.iter().any(|c| c.name == "rig.plan"));
    }

    #[test]
    fn the_command_line_carries_the_options() {
        assert_eq!(
            kernel_cmdline(&[], 300),
            "console=ttyS0 quiet panic=-1 rig.bench=300"
        );
        assert_eq!(
            kernel_cmdline(&["reader".into(), "printer.status".into()], 50),
            "console=ttyS0 quiet panic=-1 rig.only=reader,printer.status rig.bench=50"
        );
    }
}
