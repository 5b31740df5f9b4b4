//! Prometheus metrics of one lane, served at `/metrics` in the OpenMetrics text format.
//!
//! A fleet's Prometheus scrapes every lane and aggregates there; nothing is summed here.
//! Labels are small closed sets (device role, fault kind name, operation, final state), so
//! the series count stays bounded.
//!
//! Every series also carries the lane's identity as constant labels (see
//! [`Metrics::for_lane`]): `lane` (the config's `lane`, set by `posctl --lane NAME`; left
//! out when the lane has no name, the scrape config then gives it) and `terminal_id` (the
//! config's card acceptor terminal id). One value each per process: they add no series.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::borrow::Cow;

type Labels = Vec<(&'static str, String)>;

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The printer conditions exported as `pos_printer_condition{condition=...}`.
pub const PRINTER_CONDITIONS: [&str; 5] = [
    "paper_near_end",
    "paper_out",
    "cover_open",
    "cutter_jam",
    "offline",
];

/// Why the API refused a connection or request before a handler ran, as
/// `pos_api_refused_total{reason=...}`.
pub const API_REFUSALS: [&str; 5] = [
    "head_timeout",
    "too_large",
    "bad_request",
    "overloaded",
    "evicted",
];

/// The local API's own figures: connections, event streams and what its limits refused.
pub struct ApiMetrics {
    /// Connections open now (both listeners).
    pub connections: Gauge,
    /// Event streams (`GET /v1/events`) open now.
    pub event_streams: Gauge,
    /// Connections or requests refused by a limit, by reason (see [`API_REFUSALS`]).
    pub refused: Family<Labels, Counter>,
    /// Event streams closed because their client fell behind or stopped reading.
    pub event_streams_dropped: Counter,
    /// Long polls (`wait`) that found their transaction final only when their safety timer
    /// fired, i.e. a missed change notification. Always 0 unless there is a bug.
    pub wait_missed_wakeups: Counter,
}

impl ApiMetrics {
    fn register(registry: &mut Registry) -> Self {
        let connections = Gauge::default();
        registry.register(
            "api_connections",
            "Connections to the local API open now",
            connections.clone(),
        );
        let event_streams = Gauge::default();
        registry.register(
            "api_event_streams",
            "Event streams (GET /v1/events) open now",
            event_streams.clone(),
        );
        let refused = Family::<Labels, Counter>::default();
        registry.register(
            "api_refused",
            "Connections or requests the API refused by a limit (408, 414/431, 400, 503), by reason",
            refused.clone(),
        );
        let event_streams_dropped = Counter::default();
        registry.register(
            "api_event_streams_dropped",
            "Event streams closed because the client fell behind or stopped reading",
            event_streams_dropped.clone(),
        );
        let wait_missed_wakeups = Counter::default();
        registry.register(
            "api_wait_missed_wakeups",
            "Long polls that saw their transaction final only on their safety timer (a missed notification)",
            wait_missed_wakeups.clone(),
        );
        for r in API_REFUSALS {
            let _ = refused.get_or_create(&label("reason", r));
        }
        ApiMetrics {
            connections,
            event_streams,
            refused,
            event_streams_dropped,
            wait_missed_wakeups,
        }
    }

    /// Count a refusal for `reason` (one of [`API_REFUSALS`]).
    pub fn refuse(&self, reason: &'static str) {
        self.refused.get_or_create(&label("reason", reason)).inc();
    }
}

/// Every metric of the lane.
pub struct Metrics {
    registry: Registry,
    /// The local API's figures.
    pub api: ApiMetrics,
    /// 1 when the device is open and answering, 0 when missing or faulted.
    pub device_up: Family<Labels, Gauge>,
    /// Faults seen, by device and kind.
    pub device_faults: Family<Labels, Counter>,
    /// Times the supervisor re-opened a device after it went away.
    pub device_reconnects: Family<Labels, Counter>,
    /// 1 while the printer reports the condition.
    pub printer_condition: Family<Labels, Gauge>,
    /// 1 while a card is in the chip reader.
    pub card_present: Gauge,
    /// Transactions ended, by operation and final state.
    pub transactions: Family<Labels, Counter>,
    /// 1 while a transaction runs.
    pub busy: Gauge,
    /// 1 while the lane takes no sales because its journal cannot be written.
    pub sales_blocked: Gauge,
    /// Reversals waiting to be sent again.
    pub reversals_pending: Gauge,
    /// Reversals the host keeps rejecting (an alarm).
    pub reversals_stuck: Gauge,
    /// Receipts owed to customers.
    pub receipts_owed: Gauge,
    /// 1 when `/healthz` says ok (set at each scrape), 0 otherwise.
    pub healthy: Gauge,
    /// Journal errors: a write outage that began, or a journal read that failed.
    pub journal_errors: Counter,
    /// Differences with the host found by the last settlement closed since start (0 when
    /// it balanced).
    pub settlement_differences: Gauge,
    /// Time of one APDU exchange with the card, through the reader.
    pub apdu_seconds: Histogram,
    /// Time of one receipt print, until the printer confirmed it.
    pub print_seconds: Histogram,
    /// Time of one transaction, from the request to its resting state.
    pub transaction_seconds: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// One label.
pub fn label(key: &'static str, value: impl Into<String>) -> Labels {
    vec![(key, value.into())]
}

/// A label value as the text exposition writes it between quotes: `\`, `"` and line feeds
/// escaped (prometheus-client writes constant label values as given).
fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

impl Metrics {
    /// Every metric registered, at zero, without identity labels.
    pub fn new() -> Self {
        Metrics::with_registry(Registry::with_prefix("pos"))
    }

    /// Every metric registered, at zero, each series labelled with the lane's identity:
    /// `lane="<lane>"` (unless `lane` is empty) and `terminal_id="<terminal_id>"`.
    pub fn for_lane(lane: &str, terminal_id: &str) -> Self {
        let mut labels: Vec<(Cow<'static, str>, Cow<'static, str>)> = Vec::new();
        if !lane.is_empty() {
            labels.push(("lane".into(), escape_label_value(lane).into()));
        }
        labels.push(("terminal_id".into(), escape_label_value(terminal_id).into()));
        Metrics::with_registry(Registry::with_prefix_and_labels("pos", labels.into_iter()))
    }

    fn with_registry(mut registry: Registry) -> Self {
        let api = ApiMetrics::register(&mut registry);
        let device_up = Family::<Labels, Gauge>::default();
        registry.register(
            "device_up",
            "1 when the device is open and answering, 0 when missing or faulted",
            device_up.clone(),
        );
        let device_faults = Family::<Labels, Counter>::default();
        registry.register(
            "device_faults",
            "Device faults seen, by device and fault kind",
            device_faults.clone(),
        );
        let device_reconnects = Family::<Labels, Counter>::default();
        registry.register(
            "device_reconnects",
            "Times a device was re-opened after it went away",
            device_reconnects.clone(),
        );
        let printer_condition = Family::<Labels, Gauge>::default();
        registry.register(
            "printer_condition",
            "1 while the printer reports the condition",
            printer_condition.clone(),
        );
        let card_present = Gauge::default();
        registry.register(
            "card_present",
            "1 while a card is in the chip reader",
            card_present.clone(),
        );
        let transactions = Family::<Labels, Counter>::default();
        registry.register(
            "transactions",
            "Transactions ended, by operation and final state",
            transactions.clone(),
        );
        let busy = Gauge::default();
        registry.register("busy", "1 while a transaction runs", busy.clone());
        let sales_blocked = Gauge::default();
        registry.register(
            "sales_blocked",
            "1 while the lane takes no sales: its journal cannot be written (the sales_blocked event says why)",
            sales_blocked.clone(),
        );
        let reversals_pending = Gauge::default();
        registry.register(
            "reversals_pending",
            "Reversals waiting to be sent again",
            reversals_pending.clone(),
        );
        let reversals_stuck = Gauge::default();
        registry.register(
            "reversals_stuck",
            "Reversals the host keeps rejecting: call the acquirer",
            reversals_stuck.clone(),
        );
        let receipts_owed = Gauge::default();
        registry.register(
            "receipts_owed",
            "Receipts owed to customers (printed when the printer is ready)",
            receipts_owed.clone(),
        );
        let healthy = Gauge::default();
        registry.register(
            "healthy",
            "1 when /healthz says ok (the worker runs, sales are not blocked, not shutting down), set at each scrape",
            healthy.clone(),
        );
        let journal_errors = Counter::default();
        registry.register(
            "journal_errors",
            "Journal errors: write outages that began, and journal reads that failed",
            journal_errors.clone(),
        );
        let settlement_differences = Gauge::default();
        registry.register(
            "settlement_differences",
            "Differences with the host found by the last settlement closed since start (0: balanced)",
            settlement_differences.clone(),
        );
        // 0.25 ms .. ~4 s.
        let apdu_seconds = Histogram::new(exponential_buckets(0.000_25, 2.0, 15));
        registry.register(
            "apdu_duration_seconds",
            "Time of one APDU exchange through the chip reader",
            apdu_seconds.clone(),
        );
        // 5 ms .. ~40 s.
        let print_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "print_duration_seconds",
            "Time of one receipt print until the printer confirmed it",
            print_seconds.clone(),
        );
        // 10 ms .. ~80 s.
        let transaction_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        registry.register(
            "transaction_duration_seconds",
            "Time of one transaction from the request to its resting state",
            transaction_seconds.clone(),
        );
        let m = Metrics {
            registry,
            api,
            device_up,
            device_faults,
            device_reconnects,
            printer_condition,
            card_present,
            transactions,
            busy,
            sales_blocked,
            reversals_pending,
            reversals_stuck,
            receipts_owed,
            healthy,
            journal_errors,
            settlement_differences,
            apdu_seconds,
            print_seconds,
            transaction_seconds,
        };
        for c in PRINTER_CONDITIONS {
            m.printer_condition
                .get_or_create(&label("condition", c))
                .set(0);
        }
        m
    }

    /// Count a fault of `kind` on `device`.
    pub fn fault(&self, device: &'static str, kind: pos_hal::FaultKind) {
        self.device_faults
            .get_or_create(&vec![
                ("device", device.to_string()),
                ("kind", kind.name().to_string()),
            ])
            .inc();
    }

    /// Set whether `device` is up.
    pub fn set_up(&self, device: &'static str, up: bool) {
        self.device_up
            .get_or_create(&label("device", device))
            .set(i64::from(up));
    }

    /// Count a transaction that ended.
    pub fn ended(&self, operation: &str, state: &str) {
        self.transactions
            .get_or_create(&vec![
                ("operation", operation.to_string()),
                ("state", state.to_string()),
            ])
            .inc();
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_every_family_and_parses() {
        let m = Metrics::new();
        m.set_up("reader", true);
        m.fault("printer", pos_hal::FaultKind::PaperOut);
        m.ended("sale", "completed");
        m.apdu_seconds.observe(0.002);
        let text = m.encode();
        for name in [
            "pos_device_up",
            "pos_device_faults_total",
            "pos_transactions_total",
            "pos_reversals_pending",
            "pos_reversals_stuck",
            "pos_receipts_owed",
            "pos_healthy",
            "pos_journal_errors_total",
            "pos_settlement_differences",
            "pos_apdu_duration_seconds_bucket",
            "pos_print_duration_seconds_count",
            "pos_printer_condition",
            "pos_api_connections",
            "pos_api_refused_total",
            "pos_api_wait_missed_wakeups_total",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
        let faults = scrape
            .samples
            .iter()
            .find(|s| s.metric == "pos_device_faults_total")
            .unwrap();
        assert_eq!(faults.labels.get("kind"), Some("paper_out"));
        assert_eq!(faults.labels.get("lane"), None);
    }

    #[test]
    fn every_series_carries_the_lane_and_terminal_id() {
        let m = Metrics::for_lane("store-0042-lane-1", "TERM0001");
        m.set_up("reader", true);
        m.fault("printer", pos_hal::FaultKind::PaperOut);
        m.ended("sale", "completed");
        m.transaction_seconds.observe(0.5);
        let text = m.encode();
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
        assert!(scrape.samples.len() > 20, "{text}");
        for s in &scrape.samples {
            assert_eq!(s.labels.get("lane"), Some("store-0042-lane-1"), "{s:?}");
            assert_eq!(s.labels.get("terminal_id"), Some("TERM0001"), "{s:?}");
        }
        // No name: no `lane` label (the scrape config gives it), the terminal id still.
        let text = Metrics::for_lane("", "TERM0002").encode();
        assert!(!text.contains("lane="), "{text}");
        assert!(
            text.contains("pos_busy{terminal_id=\"TERM0002\"} 0"),
            "{text}"
        );
    }

    #[test]
    fn a_terminal_id_with_quotes_is_escaped() {
        assert_eq!(escape_label_value("A\"B\\C\nD"), "A\\\"B\\\\C\\nD");
        let text = Metrics::for_lane("lane1", "T\"RM\\001").encode();
        let line = text.lines().find(|l| l.starts_with("pos_busy")).unwrap();
        assert_eq!(
            line,
            "pos_busy{lane=\"lane1\",terminal_id=\"T\\\"RM\\\\001\"} 0"
        );
    }
}
