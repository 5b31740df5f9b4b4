//! The service configuration (TOML).
//!
//! Every key has a default; an empty file (or no file) is the built-in simulated lane:
//! virtual reader with a profile card, virtual printer, virtual magstripe reader, and a fake
//! host on 127.0.0.1.
//!
//! ```toml
//! journal = "/var/lib/pos/journal.sqlite"   # key file defaults to journal.key beside it
//! terminal_id = "TERM0001"
//! lane = "store-0042-lane-1"                # the lane's name: the `lane` label of its metrics
//! merchant_id = "MERCHANT0000001"
//! currency = 978                             # ISO 4217 numeric
//! ca_keys = "/etc/pos/ca-keys.txt"           # scheme CA public keys (default: the test keys)
//!
//! [devices]
//! reader = "usb:072f:90cc"                   # or "sim:ccid"
//! printer = "serial:/dev/ttyUSB0?baud=19200" # or "sim:printer", or "none"
//! msr = "serial:/dev/ttyACM0"                # or "sim:msr", or "none"
//! drawer = "printer"                         # the cash drawer on the printer's kick-out connector, or "none" (default)
//! drawer_pin = 2                             # the connector pin its solenoid is on: 2 (default) or 5
//!
//! [drawer]
//! require_closed_before_sale = true          # refuse a cash sale while the drawer is open or its state unknown
//!
//! [pin_pad]                                  # absent: no PIN pad, no PIN CVM offered
//! device = "serial:/dev/ttyACM1"             # the PIN pad (no driver yet: see PinPadConfig)
//! methods = ["online_enciphered", "offline_plaintext", "offline_enciphered"]
//!
//! [acquirer]
//! address = "192.0.2.7:5000"                 # or "sim" for the built-in fake host
//! connect_timeout_ms = 3000
//! response_timeout_ms = 15000
//! dialect = "ascii"                          # or "bcd", or a table in [acquirer.dialect_table]
//!
//! [reversal]
//! max_rejections = 3
//! backoff_initial_ms = 1000
//! backoff_max_ms = 300000
//! block_sales_when_stuck = true
//!
//! [receipt]
//! policy = "best_effort"                     # or "required": no receipt -> reverse
//!
//! [limits]
//! min_amount = 1
//! max_amount = 500000                        # minor units
//!
//! [api]                                      # posctl serve
//! listen = "unix:/run/pos/api.sock"          # or "127.0.0.1:8780"
//! socket_mode = 0o660                        # the socket: owner and group pos only
//! token_file = "/var/lib/pos/api.token"      # default: api.token beside the journal
//! metrics_listen = "0.0.0.0:9464"            # /metrics only, for the fleet's Prometheus
//!
//! [supervision]
//! poll_ms = 500                              # card, printer status, re-open checks
//! health_check_s = 60                        # scheduled device health checks
//! reopen_initial_ms = 500                    # re-open backoff after an unplug
//! reopen_max_ms = 30000
//!
//! [settlement]                               # posctl serve; absent: settle by hand only
//! at = "23:30"                               # once a day, between sales (HH:MM, 24 h)
//! utc_offset_minutes = 480                   # `at` is UTC+8 local time (default 0: UTC)
//! retry_s = 60                               # a sale running or the host down: again later
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything the service needs to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The journal (SQLite) file. Default: `$POS_JOURNAL`, else
    /// `$XDG_STATE_HOME/pos-terminal/journal.sqlite`, else
    /// `~/.local/state/pos-terminal/journal.sqlite`.
    pub journal: Option<PathBuf>,
    /// The 0600 key file for card data at rest (created on first start). Default:
    /// `journal.key` beside the journal.
    pub key_file: Option<PathBuf>,
    /// Card acceptor terminal id (field 41), 8 characters. Also the `terminal_id` label of
    /// every metric `posctl serve` exports.
    pub terminal_id: String,
    /// The lane's name, the `lane` label of every metric `posctl serve` exports: letters,
    /// digits, `-` and `_`, at most 64 (as `posctl --lane NAME`, which sets it). Empty (the
    /// default): the metrics carry no `lane` label and the scrape config gives it.
    pub lane: String,
    /// Card acceptor id (field 42), 15 characters.
    pub merchant_id: String,
    /// Merchant name and address lines printed on the receipt.
    pub merchant_name: String,
    /// ISO 4217 numeric currency code.
    pub currency: u16,
    /// ISO 3166 numeric terminal country code (`9F1A`).
    pub country: u16,
    /// The scheme CA public key file for offline data authentication (format:
    /// [`pos_emv::capk`], one key per line). Default: the schemes' public test keys shipped
    /// with pos-emv (and, on a simulated lane, the profile cards' simulation CA): a live
    /// lane names its schemes' production keys here.
    pub ca_keys: Option<PathBuf>,
    /// Devices by URI.
    pub devices: DeviceConfig,
    /// The PIN pad, if the lane has one.
    pub pin_pad: PinPadConfig,
    /// The host link.
    pub acquirer: AcquirerConfig,
    /// Reversal store-and-forward policy.
    pub reversal: ReversalPolicy,
    /// Receipt policy.
    pub receipt: ReceiptPolicy,
    /// Local limits checked before going online.
    pub limits: Limits,
    /// How long to wait for a card (insert or swipe), ms.
    pub card_timeout_ms: u64,
    /// The local API of `posctl serve`.
    pub api: ApiConfig,
    /// Device supervision of `posctl serve`.
    pub supervision: SupervisionConfig,
    /// Cash-drawer rules of cash sales.
    pub drawer: DrawerPolicy,
    /// How long the journal keeps closed transactions before archiving them.
    pub retention: RetentionConfig,
    /// Settlement with the host on a schedule (`posctl serve`); off unless `at` is set.
    pub settlement: SettlementConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            journal: None,
            key_file: None,
            terminal_id: "TERM0001".into(),
            lane: String::new(),
            merchant_id: "MERCHANT0000001".into(),
            merchant_name: "DEMO SHOP\n1 Example Street".into(),
            currency: 978,
            country: 276,
            ca_keys: None,
            devices: DeviceConfig::default(),
            pin_pad: PinPadConfig::default(),
            acquirer: AcquirerConfig::default(),
            reversal: ReversalPolicy::default(),
            receipt: ReceiptPolicy::default(),
            limits: Limits::default(),
            api: ApiConfig::default(),
            supervision: SupervisionConfig::default(),
            drawer: DrawerPolicy::default(),
            retention: RetentionConfig::default(),
            settlement: SettlementConfig::default(),
            card_timeout_ms: 30_000,
        }
    }
}

/// Devices by URI (`none` for a lane without that device).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceConfig {
    /// The chip reader.
    pub reader: String,
    /// The receipt printer, or `none`.
    pub printer: String,
    /// The magnetic stripe reader, or `none`.
    pub msr: String,
    /// The cash drawer: `printer` (on the receipt printer's kick-out connector, opened with
    /// the printer) or `none` (default).
    pub drawer: String,
    /// The kick-out connector pin the drawer's solenoid is on: 2 (default) or 5.
    pub drawer_pin: u8,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            reader: "sim:ccid".into(),
            printer: "sim:printer".into(),
            msr: "sim:msr".into(),
            drawer: "none".into(),
            drawer_pin: 2,
        }
    }
}

impl DeviceConfig {
    /// True when every configured device is a simulator.
    pub fn all_simulated(&self) -> bool {
        [&self.reader, &self.printer, &self.msr]
            .iter()
            .all(|u| u.starts_with("sim:") || u.as_str() == "none")
    }
}

/// The cash-drawer rules of cash sales (`[drawer]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DrawerPolicy {
    /// A cash sale starts only when the drawer reads closed (the last one was shut): an
    /// open drawer, a drawer whose state cannot be read, or a lane without a drawer refuse
    /// the sale, with the reason journaled. Default `false`.
    pub require_closed_before_sale: bool,
}

/// A PIN verification method a PIN pad offers (`9F33` byte 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinMethod {
    /// Enciphered PIN for online verification (the issuer checks it).
    OnlineEnciphered,
    /// Plaintext PIN for ICC verification (the card checks it).
    OfflinePlaintext,
    /// Enciphered PIN for offline verification (the card checks it).
    OfflineEnciphered,
}

/// The lane's PIN pad, named in the configuration so that Terminal Capabilities `9F33`
/// claim the PIN methods it offers, and only then.
///
/// There is no PIN pad driver: nothing opens `device`. When a card's CVM list then asks for
/// a PIN method the PIN pad offers, no PIN is entered or sent: that method fails with TVR
/// "PIN entry required and PIN pad not present or not working" (byte 3 bit 5), the card's
/// next CV rule applies when the rule allows it, and the transaction's journal records the
/// event (`cvm`). Without a PIN pad (the default) no PIN method is offered at all, and the
/// card never sees that bit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PinPadConfig {
    /// The PIN pad's device URI (e.g. `serial:/dev/ttyACM1`), or `none`.
    pub device: String,
    /// The PIN methods it offers. Default: all three.
    pub methods: Vec<PinMethod>,
}

impl Default for PinPadConfig {
    fn default() -> Self {
        PinPadConfig {
            device: "none".into(),
            methods: vec![
                PinMethod::OnlineEnciphered,
                PinMethod::OfflinePlaintext,
                PinMethod::OfflineEnciphered,
            ],
        }
    }
}

impl PinPadConfig {
    /// True when a PIN pad is configured (`device` other than `none`).
    pub fn configured(&self) -> bool {
        self.device.trim() != "none"
    }

    /// The PIN methods to claim in `9F33`: none without a PIN pad.
    pub fn pin_methods(&self) -> pos_emv::terminal::PinMethods {
        let mut m = pos_emv::terminal::PinMethods::NONE;
        if !self.configured() {
            return m;
        }
        for method in &self.methods {
            match method {
                PinMethod::OnlineEnciphered => m.online_enciphered = true,
                PinMethod::OfflinePlaintext => m.offline_plaintext = true,
                PinMethod::OfflineEnciphered => m.offline_enciphered = true,
            }
        }
        m
    }
}

/// True for a lane name: 1 to 64 ASCII letters, digits, `-` and `_` (so never a path, and a
/// systemd instance name that needs no escaping, and a Prometheus label value that needs no
/// quoting).
pub fn is_lane_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// True for `scheme:rest` with a scheme of lower-case letters and digits and a non-empty
/// rest (the shape of a device URI; the drivers check the rest).
fn looks_like_uri(text: &str) -> bool {
    match text.split_once(':') {
        Some((scheme, rest)) => {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && !rest.is_empty()
        }
        None => false,
    }
}

/// The host link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AcquirerConfig {
    /// `HOST:PORT`, or `sim` for the built-in fake host on 127.0.0.1 (an ephemeral port).
    pub address: String,
    /// Connect timeout, ms.
    pub connect_timeout_ms: u64,
    /// Response timeout, ms.
    pub response_timeout_ms: u64,
    /// `ascii` ([`pos_acquirer::Dialect::default_pos`]) or `bcd`
    /// ([`pos_acquirer::Dialect::default_pos_bcd`]).
    pub dialect: String,
    /// A full field table instead of a named dialect.
    pub dialect_table: Option<pos_acquirer::Dialect>,
}

impl Default for AcquirerConfig {
    fn default() -> Self {
        AcquirerConfig {
            address: "sim".into(),
            connect_timeout_ms: 3_000,
            response_timeout_ms: 15_000,
            dialect: "ascii".into(),
            dialect_table: None,
        }
    }
}

impl AcquirerConfig {
    /// The dialect to speak.
    ///
    /// # Errors
    /// A message naming the unknown dialect.
    pub fn dialect(&self) -> Result<pos_acquirer::Dialect, String> {
        if let Some(t) = &self.dialect_table {
            return Ok(t.clone());
        }
        match self.dialect.as_str() {
            "ascii" => Ok(pos_acquirer::Dialect::default_pos()),
            "bcd" => Ok(pos_acquirer::Dialect::default_pos_bcd()),
            other => Err(format!(
                "acquirer.dialect {other:?}: use \"ascii\", \"bcd\" or [acquirer.dialect_table]"
            )),
        }
    }

    /// Connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// Response timeout.
    pub fn response_timeout(&self) -> Duration {
        Duration::from_millis(self.response_timeout_ms)
    }
}

/// Reversal store-and-forward policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReversalPolicy {
    /// Host rejections before a reversal is ReversalStuck (unanswered attempts do not count).
    pub max_rejections: u32,
    /// First retry delay, ms; doubles per attempt.
    pub backoff_initial_ms: u64,
    /// Retry delay cap, ms.
    pub backoff_max_ms: u64,
    /// Refuse new online transactions while a reversal is stuck.
    pub block_sales_when_stuck: bool,
}

impl Default for ReversalPolicy {
    fn default() -> Self {
        ReversalPolicy {
            max_rejections: 3,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 300_000,
            block_sales_when_stuck: true,
        }
    }
}

impl ReversalPolicy {
    /// The delay before attempt `attempt` (1-based; attempt 1 is immediate).
    pub fn backoff(&self, attempt: u32) -> Duration {
        if attempt <= 1 {
            return Duration::ZERO;
        }
        let exp = (attempt - 2).min(32);
        let ms = self
            .backoff_initial_ms
            .saturating_mul(1u64 << exp)
            .min(self.backoff_max_ms);
        Duration::from_millis(ms)
    }
}

/// What to do when the receipt cannot be printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptMode {
    /// The sale stands; the receipt is owed and reprinted when the printer is ready.
    #[default]
    BestEffort,
    /// No receipt, no sale: the authorization is reversed.
    Required,
}

/// Receipt policy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiptPolicy {
    /// Best effort or required.
    pub policy: ReceiptMode,
}

/// Local checks before going online.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Smallest amount, minor units.
    pub min_amount: u64,
    /// Largest amount, minor units.
    pub max_amount: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            min_amount: 1,
            max_amount: 500_000,
        }
    }
}

/// The local API (`posctl serve`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// `unix:/PATH` (a Unix socket: access by file permissions) or `HOST:PORT` (loopback
    /// only; every request needs the bearer token from `token_file`).
    pub listen: String,
    /// Mode of the Unix socket file.
    pub socket_mode: u32,
    /// The bearer token file (created, mode 0640, when missing). Default: `api.token`
    /// beside the journal.
    pub token_file: Option<PathBuf>,
    /// Require the token on the Unix socket too (it is always required over TCP).
    pub token_on_socket: bool,
    /// A second listener serving only `GET /metrics` and `GET /healthz`, e.g.
    /// `0.0.0.0:9464` for the fleet's Prometheus. Empty: none (`/metrics` is still on the
    /// API listener).
    pub metrics_listen: String,
    /// At most this many requests handled at once. Event streams (`GET /v1/events`) have a
    /// pool of this size of their own, and `/healthz`, `/metrics` and the sale's routes a
    /// small reserve beyond it, so neither starves the other (see pos-serve's README).
    pub max_connections: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: "127.0.0.1:8780".into(),
            socket_mode: 0o660,
            token_file: None,
            token_on_socket: false,
            metrics_listen: String::new(),
            max_connections: 64,
        }
    }
}

/// Device supervision (`posctl serve`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisionConfig {
    /// How often an idle lane looks at its devices (card present, printer status, re-open).
    pub poll_ms: u64,
    /// How often the devices' health checks run.
    pub health_check_s: u64,
    /// First wait before re-opening a device that went away; doubled after each failure.
    pub reopen_initial_ms: u64,
    /// Longest wait between re-open attempts.
    pub reopen_max_ms: u64,
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        SupervisionConfig {
            poll_ms: 500,
            health_check_s: 60,
            reopen_initial_ms: 500,
            reopen_max_ms: 30_000,
        }
    }
}

/// The journal's retention policy: closed transactions older than `keep_days` move to
/// monthly archive files (see [`crate::journal::Journal::archive`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Whole days of closed transactions the journal keeps (besides today). Never archived
    /// whatever their age: a reversal pending or stuck, a receipt owed, an open
    /// pre-authorization.
    pub keep_days: u32,
    /// Where archive files (`journal-YYYY-MM.sqlite`) go. Default: `archive/` beside the
    /// journal.
    pub archive_dir: Option<PathBuf>,
    /// How often an idle `posctl serve` lane runs the archiving, seconds; 0: never
    /// automatically (only `posctl journal archive`).
    pub interval_s: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            keep_days: 90,
            archive_dir: None,
            interval_s: 3_600,
        }
    }
}

/// Settlement on a schedule (`[settlement]`): an idle `posctl serve` lane settles its batch
/// with the host once a day at `at` (see [`crate::schedule::SettlementSchedule`]). Off by
/// default: `posctl settle` and `POST /v1/settlement` settle on demand either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SettlementConfig {
    /// The time of day to settle, `HH:MM` (24 h) in the local time `utc_offset_minutes`
    /// describes; `None` (the default): never by itself.
    pub at: Option<String>,
    /// Minutes east of UTC of the local time `at` is in (480 for UTC+8, -300 for UTC-5);
    /// 0, the default: `at` is UTC, like the report's day.
    pub utc_offset_minutes: i32,
    /// When a sale runs at the time, or the settlement could not be done (a host outage, a
    /// stuck reversal), try again after this many seconds (doubling after each failure, up
    /// to an hour), until the day ends.
    pub retry_s: u64,
}

impl Default for SettlementConfig {
    fn default() -> Self {
        SettlementConfig {
            at: None,
            utc_offset_minutes: 0,
            retry_s: 60,
        }
    }
}

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is wrong.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (line and column).
        message: String,
    },
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Parse TOML text; `path` is only used in messages.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] (with line and column), [`ConfigError::Invalid`].
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let c: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        c.validate()?;
        Ok(c)
    }

    /// Load a config file.
    ///
    /// # Errors
    /// As [`Config::from_toml`], plus [`ConfigError::Read`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// The directory archive files go to: `retention.archive_dir`, else `archive/` beside
    /// the journal.
    pub fn archive_dir(&self) -> PathBuf {
        if let Some(dir) = &self.retention.archive_dir {
            return dir.clone();
        }
        self.journal_path().with_file_name("archive")
    }

    /// Check values the types do not.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.terminal_id.len() != 8 || !self.terminal_id.is_ascii() {
            return bad(format!(
                "terminal_id {:?} must be 8 ASCII characters",
                self.terminal_id
            ));
        }
        if !self.lane.is_empty() && !is_lane_name(&self.lane) {
            return bad(format!(
                "lane {:?}: a lane name is 1 to 64 letters, digits, '-' or '_' (e.g. lane1, store-0042-lane-1)",
                self.lane
            ));
        }
        if self.merchant_id.len() != 15 || !self.merchant_id.is_ascii() {
            return bad(format!(
                "merchant_id {:?} must be 15 ASCII characters",
                self.merchant_id
            ));
        }
        if self.currency == 0 || self.currency > 999 {
            return bad(format!(
                "currency {} is not an ISO 4217 numeric code",
                self.currency
            ));
        }
        if self.limits.min_amount > self.limits.max_amount {
            return bad("limits.min_amount is above limits.max_amount".into());
        }
        if self.reversal.max_rejections == 0 {
            return bad("reversal.max_rejections must be at least 1".into());
        }
        if self.acquirer.connect_timeout_ms == 0 || self.acquirer.response_timeout_ms == 0 {
            return bad("acquirer timeouts must be above 0 ms".into());
        }
        self.acquirer.dialect().map_err(ConfigError::Invalid)?;
        if self.pin_pad.configured() {
            if !looks_like_uri(self.pin_pad.device.trim()) {
                return bad(format!(
                    "pin_pad.device {:?} is not a device URI (e.g. \"serial:/dev/ttyACM1\") or \"none\"",
                    self.pin_pad.device
                ));
            }
            if self.pin_pad.methods.is_empty() {
                return bad(
                    "pin_pad.methods is empty: list the PIN methods the PIN pad offers, or set pin_pad.device = \"none\"".into(),
                );
            }
        }
        let sup = &self.supervision;
        if sup.poll_ms == 0 || sup.health_check_s == 0 || sup.reopen_initial_ms == 0 {
            return bad("supervision intervals must be above 0".into());
        }
        if sup.reopen_initial_ms > sup.reopen_max_ms {
            return bad("supervision.reopen_initial_ms is above supervision.reopen_max_ms".into());
        }
        crate::schedule::SettlementSchedule::from_config(&self.settlement)
            .map_err(ConfigError::Invalid)?;
        if self.api.max_connections == 0 {
            return bad("api.max_connections must be at least 1".into());
        }
        if self.api.socket_mode > 0o777 {
            return bad(format!(
                "api.socket_mode {:o} is not a file mode",
                self.api.socket_mode
            ));
        }
        if self.api.socket_mode & 0o007 != 0 && !self.api.token_on_socket {
            return bad(format!(
                "api.socket_mode {:o} lets every local user connect: use 0o660 (group pos), or set api.token_on_socket = true",
                self.api.socket_mode
            ));
        }
        Ok(())
    }

    /// The acquirer client settings: the configured timeouts, dialect, terminal and merchant
    /// ids, and `address` (the configured one, or the built-in host's for `"sim"`).
    ///
    /// # Errors
    /// A message naming an unknown dialect.
    pub fn acquirer_settings(
        &self,
        address: &str,
    ) -> Result<pos_acquirer::AcquirerSettings, String> {
        Ok(pos_acquirer::AcquirerSettings {
            address: address.to_string(),
            connect_timeout: self.acquirer.connect_timeout(),
            response_timeout: self.acquirer.response_timeout(),
            dialect: self.acquirer.dialect()?,
            terminal_id: self.terminal_id.clone(),
            merchant_id: self.merchant_id.clone(),
        })
    }

    /// The journal path: the configured one, else `$POS_JOURNAL`, else the XDG state
    /// directory.
    pub fn journal_path(&self) -> PathBuf {
        if let Some(p) = &self.journal {
            return p.clone();
        }
        if let Some(p) = std::env::var_os("POS_JOURNAL") {
            return PathBuf::from(p);
        }
        let base = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("pos-terminal").join("journal.sqlite")
    }

    /// The API token file: the configured one, else `api.token` beside the journal.
    pub fn token_path(&self) -> PathBuf {
        if let Some(p) = &self.api.token_file {
            return p.clone();
        }
        self.journal_path().with_file_name("api.token")
    }

    /// The key file path: the configured one, else `journal.key` beside the journal.
    pub fn key_path(&self) -> PathBuf {
        if let Some(p) = &self.key_file {
            return p.clone();
        }
        self.journal_path().with_file_name("journal.key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_simulated_lane() {
        let c = Config::from_toml("", Path::new("x.toml")).unwrap();
        assert!(c.devices.all_simulated());
        assert_eq!(c.acquirer.address, "sim");
        assert_eq!(c, Config::default());
    }

    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("config.rs");
        let start = doc.find("//! ```toml").unwrap();
        let end = doc[start + 10..].find("//! ```").unwrap() + start + 10;
        let toml: String = doc[start..end]
            .lines()
            .skip(1)
            .map(|l| l.trim_start_matches("//!").trim_start())
            .collect::<Vec<_>>()
            .join("\n");
        let c = Config::from_toml(&toml, Path::new("doc")).unwrap();
        assert_eq!(c.devices.reader, "usb:072f:90cc");
        assert_eq!(c.acquirer.response_timeout(), Duration::from_secs(15));
        assert!(!c.devices.all_simulated());
        assert_eq!(c.settlement.at.as_deref(), Some("23:30"));
        assert_eq!(c.settlement.utc_offset_minutes, 480);
    }

    #[test]
    fn scheduled_settlement_is_off_by_default_and_checked() {
        assert_eq!(Config::default().settlement.at, None);
        let c = Config::from_toml("[settlement]\nat = \"22:15\"", Path::new("a.toml")).unwrap();
        assert_eq!(c.settlement.at.as_deref(), Some("22:15"));
        assert_eq!(c.settlement.retry_s, 60);
        for bad in [
            "[settlement]\nat = \"25:00\"",
            "[settlement]\nat = \"23:30\"\nretry_s = 0",
            "[settlement]\nat = \"23:30\"\nutc_offset_minutes = 2000",
            "[settlement]\nwhen = \"23:30\"",
        ] {
            let e = Config::from_toml(bad, Path::new("a.toml")).unwrap_err();
            assert!(
                e.to_string().contains("settlement") || e.to_string().contains("when"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn a_lane_name_is_checked() {
        assert_eq!(Config::default().lane, "");
        let c = Config::from_toml("lane = \"store-0042-lane_1\"", Path::new("a.toml")).unwrap();
        assert_eq!(c.lane, "store-0042-lane_1");
        let long = format!("lane = \"{}\"", "a".repeat(65));
        for bad in [
            "lane = \"a b\"",
            "lane = \"../x\"",
            "lane = \"x\\\"y\"",
            long.as_str(),
        ] {
            let e = Config::from_toml(bad, Path::new("a.toml")).unwrap_err();
            assert!(e.to_string().contains("lane"), "{bad}: {e}");
        }
        assert!(is_lane_name(&"a".repeat(64)));
        assert!(!is_lane_name(""));
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::from_toml("terminal_id = \"T1\"", Path::new("a.toml")).unwrap_err();
        assert!(e.to_string().contains("terminal_id"), "{e}");
        let e =
            Config::from_toml("[acquirer]\ndialect = \"ebcdic\"", Path::new("a.toml")).unwrap_err();
        assert!(e.to_string().contains("ebcdic"), "{e}");
        let e = Config::from_toml("jurnal = \"x\"", Path::new("a.toml")).unwrap_err();
        assert!(e.to_string().contains("jurnal"), "{e}");
        let e =
            Config::from_toml("[reversal]\nmax_rejections = 0", Path::new("a.toml")).unwrap_err();
        assert!(e.to_string().contains("max_rejections"), "{e}");
    }

    #[test]
    fn a_pin_pad_is_named_in_the_config() {
        use pos_emv::terminal::PinMethods;
        // None by default: no PIN method.
        let c = Config::default();
        assert!(!c.pin_pad.configured());
        assert_eq!(c.pin_pad.pin_methods(), PinMethods::NONE);
        // Named: all three methods unless told otherwise.
        let c = Config::from_toml(
            "[pin_pad]\ndevice = \"serial:/dev/ttyACM1\"",
            Path::new("a.toml"),
        )
        .unwrap();
        assert!(c.pin_pad.configured());
        assert_eq!(c.pin_pad.pin_methods(), PinMethods::ALL);
        let c = Config::from_toml(
            "[pin_pad]\ndevice = \"usb:0b00:3070\"\nmethods = [\"online_enciphered\"]",
            Path::new("a.toml"),
        )
        .unwrap();
        assert_eq!(
            c.pin_pad.pin_methods(),
            PinMethods {
                online_enciphered: true,
                ..PinMethods::NONE
            }
        );
        // Methods without a device claim nothing.
        let c = Config::from_toml(
            "[pin_pad]\nmethods = [\"offline_plaintext\"]",
            Path::new("a.toml"),
        )
        .unwrap();
        assert_eq!(c.pin_pad.pin_methods(), PinMethods::NONE);
        // Errors name the key.
        for (text, key) in [
            ("[pin_pad]\ndevice = \"ttyACM1\"", "pin_pad.device"),
            (
                "[pin_pad]\ndevice = \"serial:/dev/ttyACM1\"\nmethods = []",
                "pin_pad.methods",
            ),
            (
                "[pin_pad]\ndevice = \"serial:/dev/ttyACM1\"\nmethods = [\"retina\"]",
                "retina",
            ),
        ] {
            let e = Config::from_toml(text, Path::new("a.toml")).unwrap_err();
            assert!(e.to_string().contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = ReversalPolicy {
            backoff_initial_ms: 100,
            backoff_max_ms: 1000,
            ..ReversalPolicy::default()
        };
        let d: Vec<u64> = (1..=7).map(|a| p.backoff(a).as_millis() as u64).collect();
        assert_eq!(d, vec![0, 100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.backoff(u32::MAX), Duration::from_millis(1000));
    }
}
