//! `posctl`: the command-line tool of the POS device layer.
//!
//! For integrators wiring a lane and technicians checking one: find the devices, see what is
//! wrong, and (in later versions) run self-tests and sales. See `posctl --help`.
#![warn(missing_docs)]

mod card;
mod devices;
mod msr;
mod printer;
mod reader;
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
    /// Chip (EMV contact) readers over USB CCID: list, watch, ATR, APDUs.
    #[command(subcommand)]
    Reader(ReaderCommand),
    /// EMV card data.
    #[command(subcommand)]
    Card(CardCommand),
    /// Magnetic-stripe data.
    #[command(subcommand)]
    Msr(MsrCommand),
    /// Print the udev rules that give group `pos` access to POS devices, or check a rules
    /// file's syntax and policy.
    UdevRules {
        /// Check this rules file (e.g. /etc/udev/rules.d/70-pos-devices.rules) instead of
        /// printing the shipped rules.
        #[arg(long, value_name = "FILE")]
        check: Option<std::path::PathBuf>,
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

fn init_logging(verbose: u8, quiet: bool) {
    let default = if quiet {
        "error"
    } else {
        match verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    // RUST_LOG, when set, wins over -v/-q.
    let env = env_logger::Env::default().default_filter_or(default);
    // Ignore a second initialisation (cannot happen in the binary; harmless anyway).
    let _ = env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .try_init();
}

fn main() -> ExitCode {
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
    init_logging(cli.verbose, cli.quiet);
    let result = match &cli.command {
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
            ReaderCommand::Apdu {
                device,
                slot,
                apdus,
            } => reader::apdu(device, *slot, apdus, cli.json),
        },
        Command::Printer(p) => match p {
            PrinterCommand::Status { device } => printer::status(device, cli.json),
            PrinterCommand::Print { device, file } => printer::print(device, file, cli.json),
            PrinterCommand::Selftest { device } => printer::selftest(device, cli.json),
            PrinterCommand::Watch { device, seconds } => printer::watch(device, *seconds, cli.json),
        },
    };
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
                let mut stderr = std::io::stderr().lock();
                let _ = writeln!(stderr, "posctl: {}", err.message);
                if let Some(h) = &err.hint {
                    let _ = writeln!(stderr, "  hint: {h}");
                }
            }
            err.exit.into()
        }
    }
}
