//! `posctl`: the command-line tool of the POS device layer.
//!
//! For integrators wiring a lane and technicians checking one: find the devices, see what is
//! wrong, and (in later versions) run self-tests and sales. See `posctl --help`.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod card;
mod devices;
mod drawer;
mod host;
mod logging;
mod msr;
mod printer;
mod reader;
mod reader_pcsc;
mod serve;
mod txn;
mod udev_rules;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes, stated in `--help` and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: everything worked and every device checked is fine.
    Ok,
    /// 1: an error: bad input, a device that cannot be reached or opened.
    Error,
    /// 2: the device answered but reports a fault (paper out, cover open, card mute, ...).
    DeviceFault,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(match e {
            Exit::Ok => 0,
            Exit::Error => 1,
            Exit::DeviceFault => 2,
        })
    }
}

/// An error to show a person: what went wrong and, where known, what to do.
#[derive(Debug)]
pub struct CliError {
    /// What went wrong.
    pub message: String,
    /// What to try.
    pub hint: Option<String>,
    /// The exit code it maps to.
    pub exit: Exit,
}

impl CliError {
    /// A driver's error: its message; the hint of the link error behind it (`link`), else
    /// the advice for its fault kind; `exit`.
    pub fn device<E: pos_hal::Fault>(
        e: &E,
        link: Option<&pos_link::LinkError>,
        exit: Exit,
    ) -> Self {
        let hint = match link {
            Some(l) => l.hint().map(str::to_string),
            None => Some(e.kind().advice().to_string()),
        };
        CliError {
            exit,
            message: e.to_string(),
            hint,
        }
    }

    /// A plain error (exit 1).
    pub fn new(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            hint: None,
            exit: Exit::Error,
        }
    }
}

impl From<pos_link::LinkError> for CliError {
    fn from(e: pos_link::LinkError) -> Self {
        CliError {
            hint: e.hint().map(str::to_string),
            message: e.to_string(),
            exit: Exit::Error,
        }
    }
}

const EXIT_CODES: &str = "\
Exit codes:
  0  ok
  1  error: bad input, or a device that cannot be reached or opened
  2  the device answered but reports a fault (e.g. paper out, cover open)

Logging: RUST_LOG=debug (or -v / -vv) for details on standard error.";

/// posctl: find, check and drive POS devices (chip readers, magstripe readers, receipt printers).
#[derive(Debug, Parser)]
#[command(name = "posctl", version, about, after_help = EXIT_CODES)]
struct Cli {
    /// Print machine-readable JSON on standard output instead of text.
    #[arg(long, global = true)]
    json: bool,

    /// More log output on standard error (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// Only errors on standard error.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,

    #[command(flatten)]
    lane: LaneOpts,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List serial ports and USB devices, labelled (chip readers, printers, magstripe
    /// readers, USB-serial adapters), with their URIs and whether this user may open them.
    Devices,
    /// Receipt printers: live status, printing with confirmation, self-test, watch.
    #[command(subcommand)]
    Printer(PrinterCommand),
    /// The cash drawer on a receipt printer's kick-out connector: open it (ESC p), read its
    /// switch (DLE EOT 1).
    #[command(subcommand)]
    Drawer(DrawerCommand),
    /// Chip (EMV contact) readers over USB CCID: list, watch, ATR, APDUs.
    #[command(subcommand)]
    Reader(ReaderCommand),
    /// EMV card data.
    #[command(subcommand)]
    Card(CardCommand),
    /// Magnetic-stripe data.
    #[command(subcommand)]
    Msr(MsrCommand),
    /// Run one sale on the lane: card, host, receipt, each step printed. With no --config,
    /// the built-in simulated lane (virtual reader and card, printer, stripe reader, fake
    /// host). Exit 0 when the sale completed, 2 when it ended otherwise (declined, aborted,
    /// reversed, reversal pending or stuck, receipt owed).
    Sale {
        /// Amount, e.g. 12.50.
        #[arg(value_name = "AMOUNT")]
        amount: String,
        #[command(flatten)]
        card: CardOpts,
    },
    /// Pre-authorize an amount (hotel, car hire); complete it later with `posctl complete`.
    Preauth {
        /// Amount, e.g. 100.00.
        #[arg(value_name = "AMOUNT")]
        amount: String,
        #[command(flatten)]
        card: CardOpts,
    },
    /// Complete a pre-authorization (no card needed) for at most its amount.
    Complete {
        /// The pre-authorization's transaction id.
        #[arg(value_name = "ID")]
        id: i64,
        /// Final amount, e.g. 87.20.
        #[arg(value_name = "AMOUNT")]
        amount: String,
        #[command(flatten)]
        card: CardOpts,
    },
    /// Void an approved sale or completion (no card needed).
    Void {
        /// The transaction id.
        #[arg(value_name = "ID")]
        id: i64,
        #[command(flatten)]
        card: CardOpts,
    },
    /// Refund an amount to the card.
    Refund {
        /// Amount, e.g. 12.50.
        #[arg(value_name = "AMOUNT")]
        amount: String,
        #[command(flatten)]
        card: CardOpts,
    },
    /// The transaction journal: list, show, pending, dispute evidence, online backup.
    Journal {
        #[command(subcommand)]
        action: Option<JournalCommand>,
    },
    /// Run the terminal service with its local API (HTTP+JSON on 127.0.0.1 or a Unix
    /// socket), live events, /metrics and device supervision, until SIGTERM or Ctrl-C.
    /// Without a config: the simulated lane. See docs/integrator.md.
    Serve {
        /// Listen here instead of the config's api.listen (127.0.0.1:PORT or unix:/PATH).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Serve /metrics (and /healthz) on this address too (e.g. 0.0.0.0:9464).
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<String>,
        /// Check the config (API address, device URIs) and exit without serving.
        #[arg(long)]
        check: bool,
        /// The simulated card: visa, mastercard, unionpay, blocked, expired, aid-fallback, cda;
        /// t0, t1, mute (bare test cards); or a recorded session FILE (`> `/`< ` APDU lines).
        #[arg(long, value_name = "PROFILE|FILE")]
        card: Option<String>,
    },
    /// Settle the open batch with the host (end of day): pending reversals first, the
    /// totals in a 0500; out of balance, each transaction uploaded and every difference
    /// named (journaled, in `posctl report`, an alarm). Resumes a settlement a crash or an
    /// outage stopped. Exit 0 balanced, 2 closed with differences or not finished.
    Settle {
        /// Settle past reversals the host keeps rejecting (listed as known differences).
        #[arg(long)]
        force: bool,
        /// Simulated lane only: make the fake host disagree first, repeatable:
        /// drop-reversal, invent-approval[=MINOR_UNITS], lose-completion.
        #[arg(long, value_name = "KIND")]
        disagree: Vec<String>,
    },
    /// Start-up recovery: move transactions interrupted by a crash on, send pending
    /// reversals, print owed receipts. Exit 2 while anything is still outstanding.
    Recover,
    /// A stuck reversal (the host kept rejecting it), after calling the acquirer: send it
    /// again, or record that the acquirer reversed it. While `posctl serve` runs the lane,
    /// use its API instead (POST /v1/reversals/ID/requeue or /resolve).
    #[command(subcommand)]
    Reversal(ReversalCommand),
    /// End-of-day totals, with pending and stuck reversals and owed receipts. Exit 2 when a
    /// reversal is stuck.
    Report {
        /// Every transaction in the journal, not only today's (UTC).
        #[arg(long)]
        all: bool,
    },
    /// The acquirer host link: a fake host to test against, and a connectivity check.
    #[command(subcommand)]
    Host(HostCommand),
    /// Print the udev rules that give group `pos` access to POS devices, or check a rules
    /// file's syntax and policy.
    UdevRules {
        /// Check this rules file (e.g. /etc/udev/rules.d/70-pos-devices.rules) instead of
        /// printing the shipped rules.
        #[arg(long, value_name = "FILE")]
        check: Option<std::path::PathBuf>,
    },
}

/// Which lane: config file and journal.
#[derive(Debug, Clone, clap::Args)]
struct LaneOpts {
    /// The service config (TOML). Without it (and without --lane): the built-in simulated
    /// lane.
    #[arg(long, global = true, value_name = "FILE", env = "POS_CONFIG")]
    config: Option<std::path::PathBuf>,
    /// One of several lanes on this box (the instance of posctl@NAME.service): its config
    /// is /etc/pos/lanes/NAME.toml ($POS_LANES_DIR overrides the directory). NAME: letters,
    /// digits, `-` and `_`. Not together with --config.
    #[arg(long = "lane", global = true, value_name = "NAME", env = "POS_LANE",
          value_parser = parse_lane_name)]
    lane_name: Option<String>,
    /// The journal file (default: the config's, else $POS_JOURNAL, else
    /// ~/.local/state/pos-terminal/journal.sqlite).
    #[arg(long, global = true, value_name = "FILE")]
    journal: Option<std::path::PathBuf>,
}

/// How the card comes, and faults to inject.
#[derive(Debug, Clone, clap::Args)]
struct CardOpts {
    /// The simulated card: visa, mastercard, unionpay, blocked, expired, aid-fallback, cda;
    /// t0, t1, mute (bare test cards); or a recorded session FILE (`> `/`< ` APDU lines).
    #[arg(long, value_name = "PROFILE|FILE")]
    card: Option<String>,
    /// Swipe instead of inserting (a chip card is asked for its chip).
    #[arg(long)]
    swipe: bool,
    /// No receipt (cashier override, recorded): the printer is not required.
    #[arg(long)]
    no_receipt: bool,
    /// Inject a fault at a step (simulated lane only), repeatable: STEP:FAULT. Steps:
    /// card-read, before-send, after-send, after-approve, second-gac, printing, after-print.
    /// Faults: card-removed, card-mute, reader-unplugged, host-timeout, host-down,
    /// host-decline:CODE, host-drop-after-approve, reversal-rejected:N, paper-out,
    /// cover-open, cutter-jam, printer-offline, crash.
    #[arg(long, value_name = "STEP:FAULT")]
    inject: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum JournalCommand {
    /// The latest transactions (the default).
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// The archived transactions instead (the archive files of `posctl journal
        /// archive`, newest first).
        #[arg(long)]
        archive: bool,
    },
    /// One transaction: summary, timeline, events, host messages (looked for in the archive
    /// files too).
    Show {
        /// Transaction id.
        id: i64,
    },
    /// Reversals pending or stuck, receipts owed. Exit 2 when anything is outstanding.
    Pending,
    /// The dispute evidence of a transaction as one JSON document for the bank.
    Evidence {
        /// Transaction id.
        id: i64,
    },
    /// The evidence of a settlement as one JSON document: totals sent, every step and host
    /// message, the batch upload, the differences found.
    Settlement {
        /// Settlement id (printed by `posctl settle`).
        id: i64,
    },
    /// Copy the journal with SQLite's online backup (safe while the service runs).
    Backup {
        /// Destination file.
        path: std::path::PathBuf,
    },
    /// Check the journal: SQLite's integrity check, its identity against the lane's marker,
    /// its counters and what is in flight. Reads only. Exit 2 when it is not sound.
    Check,
    /// Apply the retention policy now: erase sealed card data no reversal can need, move
    /// closed transactions older than `retention.keep_days` to the monthly archive files
    /// (`retention.archive_dir`, default `archive/` beside the journal). Never a reversal
    /// pending or stuck, a receipt owed or an open pre-authorization. `posctl serve` does
    /// this itself when the lane is idle.
    Archive {
        /// Keep this many days instead of the config's `retention.keep_days`.
        #[arg(long, value_name = "DAYS")]
        keep_days: Option<u32>,
    },
    /// Start a new journal after the lane's journal was lost, emptied, damaged or replaced:
    /// the old files are set aside (never deleted), and STANs and ids continue past
    /// everything the old journal may have used. Refused while the journal is healthy.
    Init {
        /// Required: say that a new terminal identity is wanted.
        #[arg(long)]
        new_identity: bool,
    },
}

/// Where `--lane NAME` looks for `NAME.toml`, unless `$POS_LANES_DIR` says otherwise.
const LANES_DIR: &str = "/etc/pos/lanes";

/// A lane name: 1 to 64 ASCII letters, digits, `-` and `_` (so never a path: no `/`, no
/// `..`, no leading `.`), the same set as a systemd instance name needs no escaping for.
fn parse_lane_name(name: &str) -> Result<String, String> {
    if pos_terminal::config::is_lane_name(name) {
        Ok(name.to_string())
    } else {
        Err(
            "a lane name is 1 to 64 letters, digits, '-' or '_' (e.g. lane1, store-0042-lane-1)"
                .into(),
        )
    }
}

/// `--lane NAME` turned into `--config DIR/NAME.toml`; `--lane` with `--config` refused.
fn resolve_lane(lane: &LaneOpts) -> Result<LaneOpts, CliError> {
    let Some(name) = &lane.lane_name else {
        return Ok(lane.clone());
    };
    if let Some(config) = &lane.config {
        return Err(CliError {
            message: format!(
                "--lane {name} and --config {} both name the lane's config: give one \
                 (either may come from $POS_LANE / $POS_CONFIG)",
                config.display()
            ),
            hint: Some(format!(
                "--lane {name} reads {}/{name}.toml",
                lanes_dir().display()
            )),
            exit: Exit::Error,
        });
    }
    let config = lanes_dir().join(format!("{name}.toml"));
    if !config.is_file() {
        return Err(CliError {
            message: format!("lane {name}: no config at {}", config.display()),
            hint: Some(format!(
                "each lane of this box has its config in {}/NAME.toml (see packaging/README.md, \
                 \"Several lanes on one box\")",
                lanes_dir().display()
            )),
            exit: Exit::Error,
        });
    }
    Ok(LaneOpts {
        config: Some(config),
        journal: lane.journal.clone(),
        // Kept: the lane's name becomes the config's `lane` (the metrics' `lane` label).
        lane_name: Some(name.clone()),
    })
}

fn lanes_dir() -> std::path::PathBuf {
    std::env::var_os("POS_LANES_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| LANES_DIR.into(), std::path::PathBuf::from)
}

fn lane_args(lane: &LaneOpts, card: Option<&CardOpts>) -> txn::LaneArgs {
    txn::LaneArgs {
        config: lane.config.clone(),
        journal: lane.journal.clone(),
        lane: lane.lane_name.clone(),
        card: card.and_then(|c| c.card.clone()),
    }
}

fn txn_args(
    operation: pos_acquirer::Operation,
    amount: Option<&String>,
    original: Option<i64>,
    card: &CardOpts,
) -> txn::TxnArgs {
    txn::TxnArgs {
        operation,
        amount: amount.cloned(),
        original,
        swipe: card.swipe,
        no_receipt: card.no_receipt,
        inject: card.inject.clone(),
    }
}

#[derive(Debug, Subcommand)]
enum ReversalCommand {
    /// Send the stuck reversal ID again: back to pending, due now, its rejections counted
    /// from zero; then sent (as `posctl recover` would). Exit 0 when the host took it, 2
    /// when it is still pending or stuck again.
    Requeue {
        /// Transaction id (from `posctl journal pending`).
        id: i64,
        /// Why it may go again (the acquirer's answer), journaled. No card numbers.
        #[arg(long)]
        note: String,
    },
    /// Record that the acquirer reversed ID on its side: it ends reversed with the
    /// acquirer's reference; nothing is sent.
    Resolve {
        /// Transaction id.
        id: i64,
        /// The acquirer's reference for the reversal, journaled.
        #[arg(long)]
        reference: String,
    },
}

#[derive(Debug, Subcommand)]
enum HostCommand {
    /// Run a fake acquirer host (ISO 8583, 2-byte length framing) until interrupted; prints
    /// `listening on ADDR` then one masked line per message. Amounts ending .51 / .05 / .91
    /// are declined 51 / 05 / 91, everything else approved.
    Sim {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:8583")]
        listen: String,
        /// Keep the ledger in this JSON file (loaded at start, saved after every change).
        #[arg(long, value_name = "FILE")]
        ledger: Option<std::path::PathBuf>,
    },
    /// Check the link to the acquirer: resolve, connect, echo test (0800/301), with timings
    /// and a plain diagnosis. Exit 0 when the host answered, 1 otherwise.
    Check {
        /// The host, HOST:PORT (default: the acquirer of the --config file).
        #[arg(long, value_name = "HOST:PORT")]
        address: Option<String>,
        /// Connect timeout, milliseconds (default: the config's).
        #[arg(long, value_name = "MS")]
        connect_timeout_ms: Option<u64>,
        /// Response timeout for the echo, milliseconds (default: the config's).
        #[arg(long, value_name = "MS")]
        response_timeout_ms: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
enum PrinterCommand {
    /// Live status: ready or not, and each condition (paper_out, cover_open, cutter_jam, ...).
    /// Exit 2 when the printer is not ready.
    Status {
        /// The printer: serial:..., tcp:HOST:9100, usb:VID:PID, sim:printer?fault=...
        #[arg(long, value_name = "URI")]
        device: String,
    },
    /// Print a receipt document (JSON, as pos-hal's Document) or plain text; `-` reads
    /// standard input. Exit 0 only when the printer confirmed the job or its status was clean
    /// afterwards.
    Print {
        /// The printer URI.
        #[arg(long, value_name = "URI")]
        device: String,
        /// The file to print, or `-`.
        #[arg(value_name = "FILE")]
        file: String,
    },
    /// Print a test page (profile, code pages with euro and Chinese, barcode, QR code, cut)
    /// and report the print outcome.
    Selftest {
        /// The printer URI.
        #[arg(long, value_name = "URI")]
        device: String,
    },
    /// Identify the printer (IEEE 1284 Device ID on USB/usblp, else GS I), say which
    /// model-database profile fits and what it supports. The URI's `profile` option is
    /// replaced by `profile=auto` unless it names a profile.
    Info {
        /// The printer URI.
        #[arg(long, value_name = "URI")]
        device: String,
    },
    /// List the printer profiles (hand-written and the imported model database) with what
    /// each supports.
    Models,
    /// Show status changes as they happen.
    Watch {
        /// The printer URI.
        #[arg(long, value_name = "URI")]
        device: String,
        /// Stop after this many seconds (default: until interrupted).
        #[arg(long)]
        seconds: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
enum DrawerCommand {
    /// Pulse the drawer pin (50 ms on, 500 ms off) and read the switch after it. Refused
    /// (exit 2, no pulse) while the printer is offline, its cover open or out of paper.
    /// Exit 0 only when the drawer reads open afterwards.
    Open {
        /// The printer the drawer hangs on: serial:..., tcp:HOST:9100, usb:VID:PID,
        /// sim:printer?drawer=closed|open|jammed
        #[arg(long, value_name = "URI")]
        device: String,
        /// The kick-out connector pin the drawer is on.
        #[arg(long, default_value_t = 2)]
        pin: u8,
    },
    /// Read the drawer's switch: open, closed, or unknown (the printer does not report it;
    /// exit 2). Which level means open comes from the printer's profile.
    Status {
        /// The printer the drawer hangs on.
        #[arg(long, value_name = "URI")]
        device: String,
        /// The kick-out connector pin the drawer is on (only shown; the switch is pin 3).
        #[arg(long, default_value_t = 2)]
        pin: u8,
    },
}

#[derive(Debug, Subcommand)]
enum MsrCommand {
    /// Live swipes from a reader (serial:... or sim:msr?...), masked, with per-track status.
    Watch {
        /// The reader URI.
        #[arg(long, value_name = "URI")]
        device: String,
        /// Stop after this many seconds (default: until interrupted).
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Decode a swipe: track text (`%B...?;...?`) or a raw bit string; the PAN is masked.
    /// Exit 2 when no track read.
    Decode {
        /// Track text or bits.
        #[arg(value_name = "DATA")]
        data: String,
    },
}

#[derive(Debug, Subcommand)]
enum CardCommand {
    /// Read the card in the reader: applications, the selected AID and label, masked PAN,
    /// expiry, AIP/AFL, CVM list, ODA. `sim:ccid?script=FILE` replays a transcript;
    /// `sim:ccid?card=visa|mastercard|unionpay|blocked|expired|aid-fallback|cda` inserts a
    /// profile card.
    Read {
        /// The reader URI.
        #[arg(long, value_name = "URI")]
        device: String,
        /// CA public keys for offline data authentication (default: the public EMV test keys
        /// and the profile cards' simulation CA).
        #[arg(long, value_name = "FILE")]
        ca_keys: Option<std::path::PathBuf>,
    },
    /// Decode BER-TLV hex with EMV tag names (the PAN and track data are shown masked).
    Tlv {
        /// The bytes in hex, e.g. 6F1C8407A0000000041010A511500F...
        #[arg(value_name = "HEX")]
        hex: String,
    },
}

#[derive(Debug, Subcommand)]
enum ReaderCommand {
    /// USB CCID readers on this machine: exchange level, slots, card present.
    List,
    /// Card insertions and removals as they happen, with time and the decoded ATR.
    Watch {
        /// The reader: usb:VID:PID, usb:BUS-PORT, or sim:ccid?...
        #[arg(long, value_name = "URI")]
        device: String,
        /// Stop after this many seconds (default: until interrupted).
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// How the driver talks to the reader and why: SetParameters, PPS, voltage, IFSD,
    /// message size, exchange level, each with its reason (and the card's ATR taken into
    /// account when a card is in the slot). `voltage=auto|5|3|1.8` in the URI changes the
    /// voltage choice.
    Info {
        /// The reader URI.
        #[arg(long, value_name = "URI")]
        device: String,
        /// The slot.
        #[arg(long, default_value_t = 0)]
        slot: u8,
    },
    /// Power the card on and show its ATR decoded. Exit 2 when there is no card or it is mute.
    Atr {
        /// The reader URI.
        #[arg(long, value_name = "URI")]
        device: String,
        /// The slot.
        #[arg(long, default_value_t = 0)]
        slot: u8,
    },
    /// Send APDUs (hex) to the card and show each response with its status-word meaning.
    Apdu {
        /// The reader URI.
        #[arg(long, value_name = "URI")]
        device: String,
        /// The slot.
        #[arg(long, default_value_t = 0)]
        slot: u8,
        /// Command APDUs in hex, e.g. 00A404000E315041592E5359532E444446303100
        #[arg(value_name = "HEX", required = true)]
        apdus: Vec<String>,
    },
}

/// The hint of the link error behind `err` (a device that cannot be opened: held by another
/// process, no permission), looked for down its `source()` chain through the drivers'
/// errors; `None` when there is none.
fn link_hint(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(e) = next {
        let link = e
            .downcast_ref::<pos_link::LinkError>()
            .or_else(|| match e.downcast_ref::<pos_ccid::CcidError>() {
                Some(pos_ccid::CcidError::Link(l)) => Some(l),
                _ => None,
            })
            .or_else(|| match e.downcast_ref::<pos_escpos::EscPosError>() {
                Some(pos_escpos::EscPosError::Link(l)) => Some(l),
                _ => None,
            })
            .or_else(
                || match e.downcast_ref::<pos_magstripe::serial::MsrError>() {
                    Some(pos_magstripe::serial::MsrError::Link(l)) => Some(l),
                    _ => None,
                },
            );
        if let Some(l) = link {
            return l.hint().map(str::to_string);
        }
        next = e.source();
    }
    None
}

/// The hint for a lane whose devices did not open: the device link's own hint, else where
/// to look.
fn lane_open_hint(err: &(dyn std::error::Error + 'static)) -> String {
    link_hint(err).unwrap_or_else(|| {
        "check the [devices] URIs in the config (posctl devices lists what is attached)".into()
    })
}

/// An error as `posctl` prints it for people: the message, then the hint on its own line.
fn error_text(err: &CliError) -> String {
    let mut text = format!("posctl: {}\n", err.message);
    if let Some(h) = &err.hint {
        text.push_str(&format!("  hint: {h}\n"));
    }
    text
}

/// Whether a panic is `print!`'s on a closed standard output (`posctl ... | head`).
fn is_stdout_closed(info: &std::panic::PanicHookInfo<'_>) -> bool {
    let payload = info
        .payload()
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| info.payload().downcast_ref::<&str>().copied())
        .unwrap_or("");
    payload.starts_with("failed printing to stdout") && payload.contains("Broken pipe")
}

/// The exit status of a process ended by SIGPIPE (128 + 13), what shells expect when the
/// reader of a pipe went away.
const EXIT_STDOUT_CLOSED: i32 = 141;

fn main() -> ExitCode {
    // The reader of our output went away (`posctl devices | head -1`): stop quietly, as
    // Unix tools do, instead of a panic message. SIGPIPE itself stays ignored (Rust's
    // default), so a peer closing a socket never kills a sale or the service. Everything a
    // sale must keep is journaled before it is printed.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if is_stdout_closed(info) {
            std::process::exit(EXIT_STDOUT_CLOSED);
        }
        default_hook(info);
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; usage errors exit 1 (2 is reserved for
            // device faults, so clap's default of 2 is not used).
            let code = if e.use_stderr() {
                Exit::Error
            } else {
                Exit::Ok
            };
            let _ = e.print();
            return code.into();
        }
    };
    logging::init(logging::level_from_flags(cli.verbose, cli.quiet));
    let result = resolve_lane(&cli.lane).and_then(|lane| run(&cli, &lane));
    report(&cli, result)
}

/// The subcommand, with the lane resolved (`--lane` turned into `--config`).
fn run(cli: &Cli, lane: &LaneOpts) -> Result<Exit, CliError> {
    match &cli.command {
        Command::Devices => devices::run(cli.json),
        Command::UdevRules { check } => udev_rules::run(check.as_deref(), cli.json),
        Command::Msr(MsrCommand::Decode { data }) => msr::decode(data, cli.json),
        Command::Msr(MsrCommand::Watch { device, seconds }) => {
            msr::watch(device, *seconds, cli.json)
        }
        Command::Card(c) => match c {
            CardCommand::Tlv { hex } => card::tlv(hex, cli.json),
            CardCommand::Read { device, ca_keys } => {
                card::read(device, ca_keys.as_deref(), cli.json)
            }
        },
        Command::Reader(r) => match r {
            ReaderCommand::List => reader::list(cli.json),
            ReaderCommand::Watch { device, seconds } => reader::watch(device, *seconds, cli.json),
            ReaderCommand::Atr { device, slot } => reader::atr(device, *slot, cli.json),
            ReaderCommand::Info { device, slot } => reader::info(device, *slot, cli.json),
            ReaderCommand::Apdu {
                device,
                slot,
                apdus,
            } => reader::apdu(device, *slot, apdus, cli.json),
        },
        Command::Sale { amount, card } => txn::run(
            &lane_args(lane, Some(card)),
            &txn_args(pos_acquirer::Operation::Sale, Some(amount), None, card),
            cli.json,
        ),
        Command::Preauth { amount, card } => txn::run(
            &lane_args(lane, Some(card)),
            &txn_args(pos_acquirer::Operation::PreAuth, Some(amount), None, card),
            cli.json,
        ),
        Command::Refund { amount, card } => txn::run(
            &lane_args(lane, Some(card)),
            &txn_args(pos_acquirer::Operation::Refund, Some(amount), None, card),
            cli.json,
        ),
        Command::Complete { id, amount, card } => txn::run(
            &lane_args(lane, Some(card)),
            &txn_args(
                pos_acquirer::Operation::Completion,
                Some(amount),
                Some(*id),
                card,
            ),
            cli.json,
        ),
        Command::Void { id, card } => txn::run(
            &lane_args(lane, Some(card)),
            &txn_args(pos_acquirer::Operation::Void, None, Some(*id), card),
            cli.json,
        ),
        Command::Journal { action } => {
            let action = match action {
                None => txn::JournalAction::List(20, false),
                Some(JournalCommand::List { limit, archive }) => {
                    txn::JournalAction::List(*limit, *archive)
                }
                Some(JournalCommand::Archive { keep_days }) => {
                    txn::JournalAction::Archive(*keep_days)
                }
                Some(JournalCommand::Show { id }) => txn::JournalAction::Show(*id),
                Some(JournalCommand::Pending) => txn::JournalAction::Pending,
                Some(JournalCommand::Evidence { id }) => txn::JournalAction::Evidence(*id),
                Some(JournalCommand::Backup { path }) => txn::JournalAction::Backup(path.clone()),
                Some(JournalCommand::Check) => txn::JournalAction::Check,
                Some(JournalCommand::Settlement { id }) => txn::JournalAction::Settlement(*id),
                Some(JournalCommand::Init { new_identity }) => {
                    txn::JournalAction::Init(*new_identity)
                }
            };
            txn::journal(&lane_args(lane, None), &action, cli.json)
        }
        Command::Recover => txn::recover(&lane_args(lane, None), cli.json),
        Command::Reversal(ReversalCommand::Requeue { id, note }) => txn::stuck_reversal(
            &lane_args(lane, None),
            *id,
            &txn::StuckAction::Requeue(note.clone()),
            cli.json,
        ),
        Command::Reversal(ReversalCommand::Resolve { id, reference }) => txn::stuck_reversal(
            &lane_args(lane, None),
            *id,
            &txn::StuckAction::Resolve(reference.clone()),
            cli.json,
        ),
        Command::Settle { force, disagree } => {
            txn::settle(&lane_args(lane, None), *force, disagree, cli.json)
        }
        Command::Serve {
            listen,
            metrics_listen,
            check,
            card,
        } => serve::serve(
            &txn::LaneArgs {
                card: card.clone(),
                ..lane_args(lane, None)
            },
            &serve::ServeArgs {
                listen: listen.clone(),
                metrics_listen: metrics_listen.clone(),
                check: *check,
            },
            cli.json,
        ),
        Command::Report { all } => txn::report(&lane_args(lane, None), *all, cli.json),
        Command::Host(HostCommand::Sim { listen, ledger }) => {
            host::host_sim(listen, ledger.as_deref(), cli.json)
        }
        Command::Host(HostCommand::Check {
            address,
            connect_timeout_ms,
            response_timeout_ms,
        }) => {
            txn::acquirer_settings(&lane_args(lane, None), address.as_deref()).and_then(|mut s| {
                if let Some(ms) = connect_timeout_ms {
                    s.connect_timeout = std::time::Duration::from_millis(*ms);
                }
                if let Some(ms) = response_timeout_ms {
                    s.response_timeout = std::time::Duration::from_millis(*ms);
                }
                host::host_check(s, cli.json)
            })
        }
        Command::Drawer(d) => match d {
            DrawerCommand::Open { device, pin } => drawer::open_drawer(device, *pin, cli.json),
            DrawerCommand::Status { device, pin } => drawer::status(device, *pin, cli.json),
        },
        Command::Printer(p) => match p {
            PrinterCommand::Status { device } => printer::status(device, cli.json),
            PrinterCommand::Print { device, file } => printer::print(device, file, cli.json),
            PrinterCommand::Selftest { device } => printer::selftest(device, cli.json),
            PrinterCommand::Watch { device, seconds } => printer::watch(device, *seconds, cli.json),
            PrinterCommand::Info { device } => printer::info(device, cli.json),
            PrinterCommand::Models => printer::models(cli.json),
        },
    }
}

/// The exit status, and the error on standard error (or as JSON with --json).
fn report(cli: &Cli, result: Result<Exit, CliError>) -> ExitCode {
    match result {
        Ok(exit) => exit.into(),
        Err(err) => {
            if cli.json {
                let body = serde_json::json!({
                    "error": err.message,
                    "hint": err.hint,
                });
                println!("{body}");
            } else {
                let _ = write!(std::io::stderr().lock(), "{}", error_text(&err));
            }
            err.exit.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pos_link::holders::{Holder, HolderScan, usb_device_node};

    #[test]
    fn lane_names_are_never_paths() {
        for good in ["lane1", "store-0042-lane-1", "L_2", "a"] {
            assert_eq!(parse_lane_name(good).as_deref(), Ok(good));
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "/etc/passwd",
            "lane 1",
            "lane.toml",
            "läne",
            "a\\b",
            &"x".repeat(65),
        ] {
            assert!(parse_lane_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(LANES_DIR, "/etc/pos/lanes");
    }

    #[test]
    fn a_lane_whose_reader_pcscd_holds_gets_the_pcscd_hint_once() {
        let scan = HolderScan {
            holders: vec![Holder {
                pid: 812,
                name: "pcscd".into(),
            }],
            pcscd: Some(812),
            unreadable: 0,
            complete: true,
        };
        let link = pos_link::usb_busy_from_scan("usb:072f:90cc", &usb_device_node(1, 4), &scan);
        let lane = pos_lane::LaneError::new(
            pos_lane::Role::Reader,
            "usb:072f:90cc",
            pos_ccid::CcidError::Link(link),
        );
        let err = pos_serve::ServeError::Lane(lane);
        let cli = CliError {
            message: err.to_string(),
            hint: Some(lane_open_hint(&err)),
            exit: Exit::Error,
        };
        assert_eq!(
            error_text(&cli),
            "posctl: reader \"usb:072f:90cc\": usb:072f:90cc: busy: held by pcscd (pid 812)\n  \
             hint: pcscd holds the reader: stop it (systemctl stop pcscd.socket pcscd.service), then \
             try again; to keep pcscd off the reader for good, disable it (systemctl disable \
             pcscd.socket pcscd.service) or, if it must serve other readers, put this \
             reader's name in PCSCLITE_FILTER_IGNORE_READER_NAMES in pcscd.service's \
             environment (pcscd(8))\n"
        );
        // Anything else keeps the general advice.
        let other = pos_serve::ServeError::Config("bad".into());
        assert!(lane_open_hint(&other).contains("[devices] URIs"));
    }
}
