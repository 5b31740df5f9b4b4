//! Device decorators that time each exchange and count faults into [`Metrics`], and tell
//! the supervisor when a device went away. They change nothing else: every call is passed
//! through, every error returned as it came.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use pos_hal::{
    Atr, ChipReader, CutKind, Device, DeviceError, DeviceInfo, DeviceState, Document, Fault,
    FaultKind, HealthLevel, HealthReport, PrintOutcome, PrinterConditions, ReaderCapabilities,
    ReceiptPrinter, SlotState, Subscription,
};
use pos_terminal::devices::{Printer, Reader};

use crate::metrics::Metrics;

/// Set when a call failed because the device is gone (the supervisor re-opens it).
#[derive(Debug, Clone, Default)]
pub struct Lost(Arc<AtomicBool>);

impl Lost {
    /// Whether the device was seen gone since the last [`take`](Self::take).
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::SeqCst)
    }

    /// Note the outcome of an operation: its fault is counted (status polls are not: the
    /// supervisor counts a condition once, when it appears).
    fn see<T>(&self, metrics: &Metrics, device: &'static str, r: &Result<T, DeviceError>) {
        if let Err(e) = r {
            metrics.fault(device, e.kind());
        }
        self.poll(r);
    }

    fn poll<T>(&self, r: &Result<T, DeviceError>) {
        if let Err(e) = r {
            let kind = e.kind();
            if gone(kind) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// Whether an error of this kind means the device is gone and must be re-opened.
pub fn gone(kind: FaultKind) -> bool {
    matches!(kind, FaultKind::Disconnected | FaultKind::NotFound)
}

/// A chip reader whose APDU exchanges are timed.
pub struct TimedReader {
    inner: Reader,
    metrics: Arc<Metrics>,
    lost: Lost,
}

impl TimedReader {
    /// Wrap `inner`; `lost` is raised when it turns out to be gone.
    pub fn new(inner: Reader, metrics: Arc<Metrics>, lost: Lost) -> Self {
        TimedReader {
            inner,
            metrics,
            lost,
        }
    }
}

impl Device for TimedReader {
    type Error = DeviceError;
    fn info(&self) -> DeviceInfo {
        self.inner.info()
    }
    fn state(&self) -> DeviceState {
        self.inner.state()
    }
    fn check_health(&mut self, level: HealthLevel) -> Result<HealthReport, DeviceError> {
        let r = self.inner.check_health(level);
        self.lost.poll(&r);
        r
    }
    fn subscribe(&mut self) -> Result<Subscription, DeviceError> {
        self.inner.subscribe()
    }
}

impl ChipReader for TimedReader {
    fn slot_count(&self) -> u8 {
        self.inner.slot_count()
    }
    fn capabilities(&self) -> ReaderCapabilities {
        self.inner.capabilities()
    }
    fn slot_status(&mut self, slot: u8) -> Result<SlotState, DeviceError> {
        let r = self.inner.slot_status(slot);
        self.lost.poll(&r);
        r
    }
    fn power_on(&mut self, slot: u8) -> Result<Atr, DeviceError> {
        let r = self.inner.power_on(slot);
        self.lost.see(&self.metrics, "reader", &r);
        r
    }
    fn power_off(&mut self, slot: u8) -> Result<(), DeviceError> {
        let r = self.inner.power_off(slot);
        self.lost.see(&self.metrics, "reader", &r);
        r
    }
    fn transmit(&mut self, slot: u8, command: &[u8]) -> Result<Vec<u8>, DeviceError> {
        let start = Instant::now();
        let r = self.inner.transmit(slot, command);
        if r.is_ok() {
            self.metrics
                .apdu_seconds
                .observe(start.elapsed().as_secs_f64());
        }
        self.lost.see(&self.metrics, "reader", &r);
        r
    }
}

/// A receipt printer whose prints are timed.
pub struct TimedPrinter {
    inner: Printer,
    metrics: Arc<Metrics>,
    lost: Lost,
}

impl TimedPrinter {
    /// Wrap `inner`; `lost` is raised when it turns out to be gone.
    pub fn new(inner: Printer, metrics: Arc<Metrics>, lost: Lost) -> Self {
        TimedPrinter {
            inner,
            metrics,
            lost,
        }
    }
}

impl Device for TimedPrinter {
    type Error = DeviceError;
    fn info(&self) -> DeviceInfo {
        self.inner.info()
    }
    fn state(&self) -> DeviceState {
        self.inner.state()
    }
    fn check_health(&mut self, level: HealthLevel) -> Result<HealthReport, DeviceError> {
        let r = self.inner.check_health(level);
        self.lost.poll(&r);
        r
    }
    fn subscribe(&mut self) -> Result<Subscription, DeviceError> {
        self.inner.subscribe()
    }
}

impl ReceiptPrinter for TimedPrinter {
    fn status(&mut self) -> Result<PrinterConditions, DeviceError> {
        let r = self.inner.status();
        self.lost.poll(&r);
        r
    }
    fn print(&mut self, document: &Document) -> Result<PrintOutcome, DeviceError> {
        let start = Instant::now();
        let r = self.inner.print(document);
        if r.is_ok() {
            self.metrics
                .print_seconds
                .observe(start.elapsed().as_secs_f64());
        }
        self.lost.see(&self.metrics, "printer", &r);
        r
    }
    fn cut(&mut self, kind: CutKind) -> Result<(), DeviceError> {
        let r = self.inner.cut(kind);
        self.lost.see(&self.metrics, "printer", &r);
        r
    }
    fn recover(&mut self) -> Result<PrinterConditions, DeviceError> {
        let r = self.inner.recover();
        self.lost.see(&self.metrics, "printer", &r);
        r
    }
}
