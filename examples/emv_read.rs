//! Read a chip card with pos-emv, through the public API only: open a reader, power the
//! card, `pos_emv::read_card` (application selection, GET PROCESSING OPTIONS, records), and
//! show the masked card number, the expiry and the application.
//!
//! ```text
//! cargo run --example emv_read                                  # no hardware: virtual reader, Visa test card
//! cargo run --example emv_read -- 'sim:ccid?card=unionpay'       # another EMV test card profile
//! cargo run --example emv_read -- 'sim:ccid?card=visa&remove_at=4'   # the card pulled mid-read
//! cargo run --example emv_read -- usb:08e6:3437                  # a real reader, card in slot 0
//! ```
//!
//! On the virtual reader (`sim:ccid`), `card=PROFILE` inserts one of pos-emv's test card
//! profiles (visa, mastercard, unionpay, blocked, expired, aid-fallback, cda) and
//! `script=FILE` a recorded card session; the other options (`level=apdu|t0|t1`, faults)
//! are the virtual reader's own. The full card number is never printed: only the
//! first 6 and last 4 digits.
//!
//! Exit 0 when the card was read, 1 when the reader cannot be opened or the address is
//! wrong, 2 when the card cannot be read (no card, mute, pulled out, no supported
//! application): the message names the step and what to do.

use std::process::ExitCode;

use pos_ccid::{AnyReader, CcidError, ReaderConfig};
use pos_emv::sim::EmvCards;
use pos_emv::{Fault, Method, TerminalData};
use pos_hal::{ChipReader, SlotChannel};
use pos_link::DeviceUri;

const USAGE: &str = "usage: emv_read [READER-URI]   (default: sim:ccid?card=visa, a virtual reader with a test card)";

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let arg = std::env::args().nth(1);
    if matches!(arg.as_deref(), Some("-h" | "--help")) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let text = arg.unwrap_or_else(|| "sim:ccid?card=visa".to_string());
    let uri = match DeviceUri::parse(&text) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(1);
        }
    };

    println!("opening {uri}");
    let mut reader = match open_reader(&uri) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("FAIL: {e}");
            return ExitCode::from(1);
        }
    };
    let atr = match reader.power_on(0) {
        Ok(atr) => atr,
        Err(e) => return fail_reader(&e),
    };
    println!("card ATR {}", atr.to_hex());

    // The unpredictable number (9F37) the card may ask for: from the OS random source.
    let mut unpredictable = [0u8; 4];
    if let Err(e) = getrandom::fill(&mut unpredictable) {
        eprintln!("FAIL: no random source: {e}");
        return ExitCode::from(1);
    }
    let terminal = TerminalData::new(unpredictable);
    let read = pos_emv::read_card(&mut SlotChannel::new(&mut reader, 0), &terminal);
    // Power the card off whatever happened; a failure here changes nothing for the read.
    let _ = reader.power_off(0);
    let card = match read {
        Ok(card) => card,
        Err(e) => {
            // The step that failed, why, and what the kind of fault means for a person.
            eprintln!("FAIL: {e}");
            eprintln!("[{}] {}", e.kind(), e.kind().advice());
            return ExitCode::from(2);
        }
    };

    let method = match card.method {
        Method::Pse => "the card's PSE directory",
        Method::AidList => "the terminal's list of AIDs",
    };
    println!("applications found through {method}:");
    for c in &card.candidates {
        println!("  {} {}", hex(&c.aid), c.display_name());
    }
    println!("application: {} ({})", card.display_name(), card.aid_hex());
    println!(
        "card number: {}",
        card.pan_masked().as_deref().unwrap_or("(none)")
    );
    println!(
        "expires:     {}",
        card.expiry_mm_yy().as_deref().unwrap_or("(none)")
    );
    ExitCode::SUCCESS
}

/// `usb:` readers through the CCID driver; on the virtual reader, `card=PROFILE` and
/// `script=FILE` come from pos-emv's card catalog (its profile cards plug into pos-ccid's
/// virtual reader through `pos_hal::CardCatalog`, neither crate knowing the other).
fn open_reader(uri: &DeviceUri) -> Result<AnyReader, String> {
    let config = ReaderConfig {
        cards: Some(EmvCards::shared()),
        ..ReaderConfig::default()
    };
    pos_ccid::open(uri, config).map_err(|e| describe(&e))
}

fn describe(e: &CcidError) -> String {
    let mut text = format!("{e}\n[{}] {}", e.kind(), e.kind().advice());
    if let CcidError::Link(l) = e {
        if let Some(h) = l.hint() {
            text.push_str(&format!("\nhint: {h}"));
        }
    }
    text
}

fn fail_reader(e: &CcidError) -> ExitCode {
    eprintln!("FAIL: {}", describe(e));
    ExitCode::from(2)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}
