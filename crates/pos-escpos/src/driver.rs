//! The ESC/POS printer driver: live status, print jobs with confirmation, events.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pos_hal::{
    CutKind, Device, DeviceEvent, DeviceInfo, DeviceKind, DeviceState, Document, EventHub, Fault,
    FaultKind, HealthLevel, HealthReport, PrintOutcome, PrinterConditions, ReceiptPrinter,
    Subscription,
};
use pos_link::{Deadline, Link, LinkError};

use crate::command::{self, Command};
use crate::detect::{Detection, DeviceId};
use crate::encode::{EncodedJob, Substitution, encode_document};
use crate::error::{EscPosError, JobProgress};
use crate::profile::Profile;
use crate::status::{self, AsbEnable, IdRequest, PrinterId, Reply, ReplyReader, StatusRequest};

/// Timeouts and pacing of the driver. The defaults suit receipt printers on serial, USB and
/// TCP; every wait is bounded by one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverConfig {
    /// How long to wait for each real-time status reply (DLE EOT). Default 1 s.
    pub status_timeout: Duration,
    /// After the last byte of a job, how long to wait for the printer's process-ID reply
    /// (GS ( H), i.e. for the printer to finish printing. Default 15 s.
    pub confirm_timeout: Duration,
    /// The least time one chunk of a job may take to be accepted (the wire time at the
    /// link's speed is added). A printer that stops taking data for this long is asked for its
    /// status. Default 3 s.
    pub write_timeout: Duration,
    /// For printers that cannot confirm jobs: the pause after the last byte before the final
    /// status check. Default 300 ms.
    pub settle: Duration,
    /// Ask for real-time status after every this many bytes of a job when the printer does
    /// not send Automatic Status Back. Default 2048.
    pub status_every_bytes: usize,
    /// Interval of the monitor thread that polls status for subscribers. Default 500 ms.
    pub monitor_interval: Duration,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            status_timeout: Duration::from_secs(1),
            confirm_timeout: Duration::from_secs(15),
            write_timeout: Duration::from_secs(3),
            settle: Duration::from_millis(300),
            status_every_bytes: 2048,
            monitor_interval: Duration::from_millis(500),
        }
    }
}

/// What is known after a print job, and what was printed differently from what the
/// document asked because the printer lacks a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintReport {
    /// Confirmed, status-verified or unconfirmed.
    pub outcome: PrintOutcome,
    /// The profile the job was encoded for.
    pub profile: String,
    /// What was substituted, in document order (empty when the job printed as asked).
    pub substitutions: Vec<Substitution>,
    /// Characters printed as `?` (no code page of the printer has them), one per occurrence.
    pub replaced: Vec<char>,
}

impl PrintReport {
    /// One line per substitution, plus one for replaced characters: for logs and the CLI.
    pub fn notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = self.substitutions.iter().map(|s| s.to_string()).collect();
        if !self.replaced.is_empty() {
            let mut distinct: Vec<char> = self.replaced.clone();
            distinct.sort_unstable();
            distinct.dedup();
            notes.push(format!(
                "{} character(s) not in the printer's code pages printed as '?': {}",
                self.replaced.len(),
                distinct.iter().collect::<String>()
            ));
        }
        notes
    }
}

pub(crate) struct Inner<L> {
    link: L,
    pub(crate) uri: String,
    pub(crate) profile: Profile,
    pub(crate) config: DriverConfig,
    reader: ReplyReader,
    pub(crate) hub: EventHub,
    pub(crate) state: DeviceState,
    /// Conditions from the last full status read or ASB block.
    last: Option<PrinterConditions>,
    /// The latest Automatic Status Back block, since the last time it was looked at.
    asb: Option<PrinterConditions>,
    jobs: u32,
    identity: PrinterId,
    gone: bool,
}

/// An ESC/POS receipt printer over any [`Link`] (serial, USB printer class, TCP 9100, pty).
///
/// Implements [`ReceiptPrinter`]: `status` asks the printer (DLE EOT 1-4), `print` refuses
/// to start on a stopping condition, watches status during the job and confirms the job
/// with a process-ID request (GS ( H) where the profile says the printer supports it.
pub struct EscPosPrinter<L: Link + 'static> {
    inner: Arc<Mutex<Inner<L>>>,
    hub: EventHub,
    monitor: Option<JoinHandle<()>>,
    /// The virtual printer at the other end, when opened from `sim:printer`.
    #[cfg(feature = "sim")]
    sim: Option<Arc<crate::sim::VirtualPrinter>>,
    /// What `profile=auto` found.
    detection: Option<Detection>,
    /// The IEEE 1284 Device ID read at open (USB printer class, usblp).
    device_id: Option<DeviceId>,
}

impl<L: Link + 'static> std::fmt::Debug for EscPosPrinter<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("EscPosPrinter")
            .field("uri", &inner.uri)
            .field("profile", &inner.profile.name)
            .field("state", &inner.state)
            .finish()
    }
}

fn block_at(job: &EncodedJob, sent: usize) -> usize {
    job.block_offsets
        .iter()
        .rposition(|&off| off <= sent)
        .unwrap_or(0)
}

impl<L: Link + 'static> Inner<L> {
    fn observe(&mut self, now: PrinterConditions) {
        let before = self.last.replace(now);
        if let Some(old) = before.filter(|old| *old != now) {
            self.hub
                .publish(DeviceEvent::PrinterStatusChanged { old, new: now });
        }
        self.state = if now.blocking_fault().is_some() {
            DeviceState::Error
        } else if self.state == DeviceState::Error {
            DeviceState::Idle
        } else {
            self.state
        };
    }

    fn link_failed(&mut self, e: &LinkError) {
        if e.kind() == FaultKind::Disconnected && !self.gone {
            self.gone = true;
            self.state = DeviceState::Error;
            self.hub.publish(DeviceEvent::Disconnected {
                detail: e.to_string(),
            });
        }
    }

    pub(crate) fn write(&mut self, bytes: &[u8], deadline: Deadline) -> Result<(), LinkError> {
        let r = self.link.write_all(bytes, deadline);
        if let Err(e) = &r {
            self.link_failed(e);
        }
        r
    }

    /// Read once (waiting up to the deadline) and feed the reply reader.
    /// Ok(false) when nothing arrived in time.
    fn pump(&mut self, deadline: Deadline) -> Result<bool, LinkError> {
        let mut buf = [0u8; 256];
        match self.link.read_available(&mut buf, deadline) {
            Ok(n) => {
                self.reader.push(&buf[..n]);
                Ok(true)
            }
            Err(e) if e.kind() == FaultKind::Timeout => Ok(false),
            Err(e) => {
                self.link_failed(&e);
                Err(e)
            }
        }
    }

    /// Take a reply `pick` wants; ASB blocks are recorded on the way, other replies logged.
    fn next_matching<T>(&mut self, pick: &mut impl FnMut(&Reply) -> Option<T>) -> Option<T> {
        while let Some(reply) = self.reader.next_reply() {
            if let Some(t) = pick(&reply) {
                return Some(t);
            }
            match reply {
                Reply::Asb(block) => {
                    match status::parse_asb(block, self.profile.drawer_open_when_pin3_high) {
                        Ok(c) => {
                            self.asb = Some(c);
                            self.observe(c);
                        }
                        Err(e) => log::warn!("{}: bad ASB block: {e}", self.uri),
                    }
                }
                other => log::debug!("{}: reply not waited for: {other:?}", self.uri),
            }
        }
        None
    }

    /// Wait until `pick` accepts a reply or the deadline passes (Ok(None)).
    fn wait_for<T>(
        &mut self,
        deadline: Deadline,
        mut pick: impl FnMut(&Reply) -> Option<T>,
    ) -> Result<Option<T>, LinkError> {
        loop {
            if let Some(t) = self.next_matching(&mut pick) {
                return Ok(Some(t));
            }
            if deadline.passed() {
                return Ok(None);
            }
            self.pump(deadline)?;
        }
    }

    /// Take in whatever the printer has sent, without waiting.
    pub(crate) fn poll_replies(&mut self) -> Result<(), LinkError> {
        while self.pump(Deadline::now())? {}
        self.next_matching(&mut |_| None::<()>);
        Ok(())
    }

    pub(crate) fn real_time(
        &mut self,
        request: StatusRequest,
    ) -> Result<PrinterConditions, EscPosError> {
        // A status byte already waiting answers something else (e.g. a DLE EOT sequence the
        // printer found inside image data): take it out first so it is not read as ours.
        self.poll_replies()?;
        self.write(
            &request.bytes(),
            Deadline::after(self.config.status_timeout),
        )?;
        let deadline = Deadline::after(self.config.status_timeout);
        let pin3 = self.profile.drawer_open_when_pin3_high;
        let mut garbage = 0usize;
        let got = self.wait_for(deadline, |r| match r {
            Reply::RealTime(b) => Some(*b),
            Reply::Garbage(_) => {
                garbage += 1;
                None
            }
            _ => None,
        })?;
        match got {
            Some(byte) => Ok(status::parse_real_time(request, byte, pin3)?),
            None if garbage > 0 => Err(EscPosError::Garbled {
                garbage_bytes: garbage,
            }),
            None => Err(EscPosError::Silent {
                timeout_ms: self.config.status_timeout.as_millis() as u64,
            }),
        }
    }

    /// The printer's full live status (DLE EOT 1-4).
    pub(crate) fn status(&mut self) -> Result<PrinterConditions, EscPosError> {
        self.poll_replies()?;
        let mut c = PrinterConditions::empty();
        for request in [
            StatusRequest::Printer,
            StatusRequest::OfflineCause,
            StatusRequest::ErrorCause,
            StatusRequest::RollPaper,
        ] {
            c |= self.real_time(request)?;
        }
        self.asb = None;
        self.observe(c);
        Ok(c)
    }

    fn job_error(
        &mut self,
        kind: FaultKind,
        conditions: PrinterConditions,
        progress: JobProgress,
    ) -> EscPosError {
        self.state = DeviceState::Error;
        self.hub.publish(DeviceEvent::Fault {
            kind,
            detail: format!("print job stopped: {progress}"),
        });
        EscPosError::JobFailed {
            kind,
            conditions,
            progress,
        }
    }

    /// The printer stopped taking data or went quiet mid-job: find out why.
    fn diagnose(&mut self, progress: JobProgress) -> EscPosError {
        match self.status() {
            Ok(c) => {
                let kind = c.blocking_fault().unwrap_or(FaultKind::PrinterOffline);
                self.job_error(kind, c, progress)
            }
            Err(e) if e.kind() == FaultKind::Disconnected => self.job_error(
                FaultKind::Disconnected,
                PrinterConditions::empty(),
                progress,
            ),
            Err(_) => self.job_error(
                FaultKind::PrinterOffline,
                PrinterConditions::empty(),
                progress,
            ),
        }
    }

    fn check_mid_job(&mut self, progress: JobProgress, ask: bool) -> Result<(), EscPosError> {
        if let Err(e) = self.poll_replies() {
            return Err(self.job_error(e.kind(), PrinterConditions::empty(), progress));
        }
        if let Some(c) = self.asb.take() {
            if let Some(kind) = c.blocking_fault() {
                return Err(self.job_error(kind, c, progress));
            }
        }
        if ask {
            match self.status() {
                Ok(c) => {
                    if let Some(kind) = c.blocking_fault() {
                        return Err(self.job_error(kind, c, progress));
                    }
                }
                Err(EscPosError::Silent { .. }) => {
                    return Err(self.job_error(
                        FaultKind::PrinterOffline,
                        PrinterConditions::empty(),
                        progress,
                    ));
                }
                Err(e) => {
                    return Err(self.job_error(e.kind(), PrinterConditions::empty(), progress));
                }
            }
        }
        Ok(())
    }

    fn print(&mut self, doc: &Document) -> Result<PrintReport, EscPosError> {
        let job = encode_document(doc, &self.profile)?;
        for s in &job.substitutions {
            log::warn!("{}: {s}", self.uri);
        }
        if !job.replaced.is_empty() {
            log::warn!(
                "{}: {} character(s) not in the printer's code pages were printed as '?': {:?}",
                self.uri,
                job.replaced.len(),
                job.replaced
            );
        }
        let before = match self.status() {
            Ok(c) => c,
            Err(EscPosError::Silent { .. }) => {
                return Err(EscPosError::NotReady {
                    kind: FaultKind::PrinterOffline,
                    conditions: PrinterConditions::empty(),
                });
            }
            Err(e) => return Err(e),
        };
        if let Some(kind) = before.blocking_fault() {
            return Err(EscPosError::NotReady {
                kind,
                conditions: before,
            });
        }
        self.state = DeviceState::Busy;
        let total = job.bytes.len();
        let blocks = job.block_offsets.len();
        let progress = |sent: usize| JobProgress {
            bytes_sent: sent,
            bytes_total: total,
            block: block_at(&job, sent),
            blocks,
        };
        let pacing = self.link.pacing();
        let chunk = pacing.max_chunk.clamp(64, 4096);
        let mut sent = 0usize;
        let mut since_check = 0usize;
        for piece in job.bytes.chunks(chunk) {
            let wire = pacing.wire_time(piece.len()).unwrap_or(Duration::ZERO);
            match self.write(piece, Deadline::after(self.config.write_timeout + wire * 2)) {
                Ok(()) => sent += piece.len(),
                Err(LinkError::Timeout { done, .. }) => {
                    sent += done;
                    return Err(self.diagnose(progress(sent)));
                }
                Err(e) => {
                    return Err(self.job_error(
                        e.kind(),
                        PrinterConditions::empty(),
                        progress(sent),
                    ));
                }
            }
            since_check += piece.len();
            let ask =
                !self.profile.asb && since_check >= self.config.status_every_bytes && sent < total;
            if ask {
                since_check = 0;
            }
            self.check_mid_job(progress(sent), ask)?;
        }
        let wire_all = pacing.wire_time(total).unwrap_or(Duration::ZERO);
        if let Err(e) = self
            .link
            .flush(Deadline::after(self.config.write_timeout + wire_all))
        {
            self.link_failed(&e);
            return Err(if e.kind() == FaultKind::Timeout {
                self.diagnose(progress(sent))
            } else {
                self.job_error(e.kind(), PrinterConditions::empty(), progress(sent))
            });
        }
        let outcome = if self.profile.process_id {
            self.confirm(progress(sent))?
        } else {
            std::thread::sleep(self.config.settle);
            self.verify(progress(sent))?
        };
        self.state = DeviceState::Idle;
        Ok(PrintReport {
            outcome,
            profile: self.profile.name.clone(),
            substitutions: job.substitutions,
            replaced: job.replaced,
        })
    }

    /// Ask the printer to say when everything before the request has printed (GS ( H).
    fn confirm(&mut self, progress: JobProgress) -> Result<PrintOutcome, EscPosError> {
        self.jobs = self.jobs.wrapping_add(1);
        let id = status::job_id(self.jobs);
        let request = status::process_id_request(id)?;
        if let Err(e) = self.write(&request, Deadline::after(self.config.write_timeout)) {
            return Err(self.job_error(e.kind(), PrinterConditions::empty(), progress));
        }
        let until = Instant::now() + self.config.confirm_timeout;
        while Instant::now() < until {
            let slice = Deadline::after(
                until
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(500)),
            );
            let got = match self.wait_for(slice, |r| match r {
                Reply::ProcessId(reply) if *reply == id => Some(()),
                _ => None,
            }) {
                Ok(g) => g,
                Err(e) => {
                    return Err(self.job_error(e.kind(), PrinterConditions::empty(), progress));
                }
            };
            if got.is_some() {
                return Ok(PrintOutcome::Confirmed);
            }
            // Still printing, or stopped: a stopping condition ends the wait.
            self.check_mid_job(progress, true)?;
        }
        log::info!(
            "{}: no process-ID reply within {:?}; checking status instead",
            self.uri,
            self.config.confirm_timeout
        );
        self.verify(progress)
    }

    /// Final status check for printers that do not confirm jobs.
    fn verify(&mut self, progress: JobProgress) -> Result<PrintOutcome, EscPosError> {
        match self.status() {
            Ok(c) => match c.blocking_fault() {
                Some(kind) => Err(self.job_error(kind, c, progress)),
                None => Ok(PrintOutcome::StatusVerified),
            },
            Err(EscPosError::Silent { .. }) => Err(self.job_error(
                FaultKind::PrinterOffline,
                PrinterConditions::empty(),
                progress,
            )),
            Err(e) if e.kind() == FaultKind::Disconnected => Err(self.job_error(
                FaultKind::Disconnected,
                PrinterConditions::empty(),
                progress,
            )),
            Err(e) => Ok(PrintOutcome::Unconfirmed {
                reason: format!("status after the job could not be read: {e}"),
            }),
        }
    }

    fn cut(&mut self, kind: CutKind) -> Result<(), EscPosError> {
        if !self.profile.cutter {
            return Err(EscPosError::Unsupported(format!(
                "profile {} has no cutter",
                self.profile.name
            )));
        }
        let c = self.status()?;
        if let Some(k) = c.blocking_fault() {
            return Err(EscPosError::NotReady {
                kind: k,
                conditions: c,
            });
        }
        let cmd = match kind {
            CutKind::Full => Command::Cut {
                mode: 0,
                feed: None,
            },
            CutKind::Partial => Command::Cut {
                mode: 1,
                feed: None,
            },
            CutKind::FeedAndFull => Command::Cut {
                mode: 65,
                feed: Some(3),
            },
            CutKind::FeedAndPartial => Command::Cut {
                mode: 66,
                feed: Some(3),
            },
        };
        self.write(
            &command::to_bytes(&[cmd]),
            Deadline::after(self.config.write_timeout),
        )?;
        std::thread::sleep(self.config.settle);
        let after = self.status()?;
        match after.blocking_fault() {
            Some(k) => Err(self.job_error(
                k,
                after,
                JobProgress {
                    bytes_sent: 0,
                    bytes_total: 0,
                    block: 0,
                    blocks: 1,
                },
            )),
            None => Ok(()),
        }
    }

    /// ESC @ resets the printer and turns Automatic Status Back off: send both, in order.
    fn initialise(&mut self) -> Result<(), EscPosError> {
        let bytes = if self.profile.asb {
            status::initialize_keeping_asb(AsbEnable::ALL)
        } else {
            command::to_bytes(&[Command::Init])
        };
        self.write(&bytes, Deadline::after(self.config.write_timeout))?;
        Ok(())
    }

    fn identify(&mut self) -> Result<PrinterId, EscPosError> {
        let mut id = PrinterId::default();
        for request in IdRequest::ALL {
            self.poll_replies()?;
            if request.is_single_byte() {
                self.reader.expect_id_byte();
            }
            self.write(
                &request.bytes(),
                Deadline::after(self.config.status_timeout),
            )?;
            let single = request.is_single_byte();
            let reply =
                self.wait_for(Deadline::after(self.config.status_timeout), |r| match r {
                    Reply::IdByte(_) if single => Some(r.clone()),
                    Reply::Block(_) if !single => Some(r.clone()),
                    _ => None,
                })?;
            if single {
                // An unanswered request must not leave the reader expecting a byte.
                self.reader.cancel_id_expectations();
            }
            match reply {
                Some(r) => {
                    if let Err(e) = id.apply(request, &r) {
                        log::debug!("{}: GS I {}: {e}", self.uri, request.n());
                    }
                }
                None => log::debug!("{}: no answer to GS I {}", self.uri, request.n()),
            }
        }
        self.identity = id.clone();
        Ok(id)
    }

    fn recover(&mut self) -> Result<PrinterConditions, EscPosError> {
        let mut cmds = vec![Command::RealTimeRequest(1)];
        if self.profile.buffer_clear {
            cmds.push(Command::ClearBuffer);
        }
        self.write(
            &command::to_bytes(&cmds),
            Deadline::after(self.config.write_timeout),
        )?;
        std::thread::sleep(self.config.settle);
        self.initialise()?;
        self.status()
    }
}

impl<L: Link + 'static> EscPosPrinter<L> {
    /// Drive the printer on `link` (opened from `uri`) with `profile`.
    ///
    /// Resets the printer (ESC @) and, when the profile supports it, turns Automatic Status
    /// Back on. Does not wait for the printer to answer: a printer that is off is found by the
    /// first `status`.
    ///
    /// Errors: `Link` when the reset cannot be written (unplugged, permission, timeout).
    pub fn new(
        link: L,
        uri: &str,
        profile: Profile,
        config: DriverConfig,
    ) -> Result<Self, EscPosError> {
        let hub = EventHub::new(uri);
        let mut inner = Inner {
            link,
            uri: uri.to_string(),
            profile,
            config,
            reader: ReplyReader::new(),
            hub: hub.clone(),
            state: DeviceState::Idle,
            last: None,
            asb: None,
            jobs: 0,
            identity: PrinterId::default(),
            gone: false,
        };
        inner.initialise()?;
        Ok(EscPosPrinter {
            inner: Arc::new(Mutex::new(inner)),
            hub,
            monitor: None,
            #[cfg(feature = "sim")]
            sim: None,
            detection: None,
            device_id: None,
        })
    }

    /// Attach the virtual printer serving the other end of the link, kept alive as long as
    /// the driver and reachable through [`simulator`](Self::simulator).
    #[cfg(feature = "sim")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
    pub fn with_simulator(mut self, sim: Arc<crate::sim::VirtualPrinter>) -> Self {
        self.sim = Some(sim);
        self
    }

    /// The virtual printer at the other end, when this printer was opened from `sim:printer`
    /// (to read what it printed, or to inject faults).
    #[cfg(feature = "sim")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
    pub fn simulator(&self) -> Option<Arc<crate::sim::VirtualPrinter>> {
        self.sim.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Inner<L>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cash drawer on this printer's kick-out connector, released with `pulse`: a
    /// handle on the same driver (one link, one lock), usable from another owner while this
    /// printer lives. The drawer keeps the printer's link open after the printer is dropped.
    pub fn drawer(&self, pulse: pos_hal::DrawerPulse) -> crate::drawer::EscPosDrawer<L> {
        crate::drawer::EscPosDrawer::new(
            Arc::clone(&self.inner),
            self.hub.clone(),
            pulse,
            #[cfg(feature = "sim")]
            self.sim.clone(),
        )
    }

    /// The profile in use.
    pub fn profile(&self) -> Profile {
        self.lock().profile.clone()
    }

    /// What `profile=auto` detection found and chose (`None` when the profile was given).
    pub fn detection(&self) -> Option<&Detection> {
        self.detection.as_ref()
    }

    /// Record what detection found (done by [`open`](crate::open)).
    pub fn set_detection(&mut self, detection: Detection) {
        self.detection = Some(detection);
    }

    /// The IEEE 1284 Device ID read at open, on USB printer-class and usblp links.
    pub fn device_id(&self) -> Option<&DeviceId> {
        self.device_id.as_ref()
    }

    /// Record the device ID read at open (done by [`open`](crate::open)).
    pub fn set_device_id(&mut self, id: Option<DeviceId>) {
        self.device_id = id;
    }

    /// Use `profile` from now on (after detection picked a better one): re-initialises the
    /// printer as [`new`](Self::new) does.
    ///
    /// Errors: `Link` when the reset cannot be written.
    pub fn set_profile(&mut self, profile: Profile) -> Result<(), EscPosError> {
        let mut inner = self.lock();
        inner.profile = profile;
        inner.initialise()
    }

    /// Print `document` as [`ReceiptPrinter::print`] does, and say what the printer's
    /// profile made the encoder substitute (a QR code as an image, a cut as a feed, ...)
    /// and which characters printed as `?`.
    ///
    /// Errors: as [`ReceiptPrinter::print`].
    pub fn print_report(&mut self, document: &Document) -> Result<PrintReport, EscPosError> {
        self.lock().print(document)
    }

    /// Ask the printer who it is (GS I: model, type, firmware, maker, model name, serial).
    /// Parts it does not answer stay `None`.
    ///
    /// Errors: `Link` (disconnected), `Status` (garbled replies). Each request waits at most
    /// the status timeout.
    pub fn identify(&mut self) -> Result<PrinterId, EscPosError> {
        self.lock().identify()
    }

    /// Recover from a recoverable error (DLE ENQ 1: e.g. after a cutter jam was cleared),
    /// clear the receive buffer where the profile supports it, re-initialise, and return the
    /// status after.
    ///
    /// Errors: as [`ReceiptPrinter::status`].
    pub fn recover(&mut self) -> Result<PrinterConditions, EscPosError> {
        self.lock().recover()
    }

    fn start_monitor(&mut self) {
        if self.monitor.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        self.monitor = Some(spawn_monitor(&self.inner, &self.hub));
    }
}

/// Start the status monitor of the driver behind `inner`, publishing on `hub`.
pub(crate) fn spawn_monitor<L: Link + 'static>(
    inner: &Arc<Mutex<Inner<L>>>,
    hub: &EventHub,
) -> JoinHandle<()> {
    let weak: Weak<Mutex<Inner<L>>> = Arc::downgrade(inner);
    let hub = hub.clone();
    let interval = inner
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .config
        .monitor_interval;
    std::thread::spawn(move || monitor(weak, hub, interval))
}

/// Poll status for subscribers while anyone listens and the printer exists.
fn monitor<L: Link + 'static>(weak: Weak<Mutex<Inner<L>>>, hub: EventHub, interval: Duration) {
    let mut silent = false;
    loop {
        std::thread::sleep(interval);
        let Some(inner) = weak.upgrade() else { return };
        if hub.subscriber_count() == 0 {
            return;
        }
        let Ok(mut guard) = inner.try_lock() else {
            continue; // a job or request is running; it reports what it sees
        };
        if guard.gone {
            return;
        }
        match guard.status() {
            Ok(_) => {
                if silent {
                    silent = false;
                    hub.publish(DeviceEvent::Reconnected);
                }
            }
            Err(e) if e.kind() == FaultKind::Disconnected => return,
            Err(e) => {
                if !silent {
                    silent = true;
                    hub.publish(DeviceEvent::Fault {
                        kind: e.kind(),
                        detail: e.to_string(),
                    });
                }
            }
        }
    }
}

/// What GS I told, in words.
fn describe_id(id: &PrinterId) -> String {
    let parts: Vec<String> = [
        id.maker.clone(),
        id.model.clone(),
        id.firmware.as_ref().map(|f| format!("firmware {f}")),
        id.serial.as_ref().map(|s| format!("serial {s}")),
        id.autocutter.map(|c| {
            if c {
                "autocutter".to_string()
            } else {
                "no autocutter".to_string()
            }
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        "the printer did not identify itself (GS I unanswered)".to_string()
    } else {
        parts.join(", ")
    }
}

impl<L: Link + 'static> Device for EscPosPrinter<L> {
    type Error = EscPosError;

    fn info(&self) -> DeviceInfo {
        let inner = self.lock();
        let mut info = DeviceInfo::new(DeviceKind::ReceiptPrinter, inner.uri.clone());
        info.vendor = inner.identity.maker.clone();
        info.model = inner
            .identity
            .model
            .clone()
            .or_else(|| Some(inner.profile.name.clone()));
        info.serial = inner.identity.serial.clone();
        info.firmware = inner.identity.firmware.clone();
        info
    }

    fn state(&self) -> DeviceState {
        self.lock().state
    }

    /// Internal: live status. External: also identification. Interactive: also prints a
    /// short test page and reports its outcome (look at the paper).
    fn check_health(&mut self, level: HealthLevel) -> Result<HealthReport, EscPosError> {
        let mut inner = self.lock();
        let mut report = HealthReport::new(inner.uri.clone(), level);
        match inner.status() {
            Ok(c) => {
                match c.blocking_fault() {
                    Some(k) => report.fail(
                        "status",
                        k,
                        format!("printer reports {}", c.names().join(", ")),
                    ),
                    None => report.pass("status", "ready"),
                };
                if let Some(w) = c.warning() {
                    report.warn("paper", w, "paper near end");
                }
            }
            Err(e) if e.kind() == FaultKind::Disconnected => return Err(e),
            Err(e) => {
                report.fail("status", e.kind(), e.to_string());
            }
        }
        if level >= HealthLevel::External {
            match inner.identify() {
                Ok(id) => report.pass("identify", describe_id(&id)),
                Err(e) => report.warn("identify", e.kind(), e.to_string()),
            };
        }
        if level >= HealthLevel::Interactive {
            let mut doc = Document::new();
            doc.text("posctl health check: this line must be printed")
                .feed(2);
            if inner.profile.cutter {
                doc.cut(CutKind::FeedAndPartial);
            }
            match inner.print(&doc) {
                Ok(o) => report.pass(
                    "print",
                    format!("test lines sent: {}; check the paper", o.outcome.name()),
                ),
                Err(e) => report.fail("print", e.kind(), e.to_string()),
            };
        }
        Ok(report)
    }

    fn subscribe(&mut self) -> Result<Subscription, EscPosError> {
        let sub = self.hub.subscribe();
        self.start_monitor();
        Ok(sub)
    }
}

impl<L: Link + 'static> ReceiptPrinter for EscPosPrinter<L> {
    /// DLE EOT 1-4, each reply waited for up to the status timeout. A printer that does not
    /// answer is `Silent` (kind `PrinterOffline`).
    fn status(&mut self) -> Result<PrinterConditions, EscPosError> {
        self.lock().status()
    }

    /// As [`print_report`](EscPosPrinter::print_report), keeping only the outcome (what
    /// was substituted is logged as a warning).
    fn print(&mut self, document: &Document) -> Result<PrintOutcome, EscPosError> {
        self.lock().print(document).map(|r| r.outcome)
    }

    fn cut(&mut self, kind: CutKind) -> Result<(), EscPosError> {
        self.lock().cut(kind)
    }

    /// As the inherent [`recover`](EscPosPrinter::recover): DLE ENQ 1, clear the buffer
    /// where the profile supports it, re-initialise, then DLE EOT 1-4.
    fn recover(&mut self) -> Result<PrinterConditions, EscPosError> {
        self.lock().recover()
    }
}
