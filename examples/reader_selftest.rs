//! Chip reader self-test for technicians.
//!
//! ```text
//! cargo run --example reader_selftest -- usb:08e6:3437
//! cargo run --example reader_selftest                 # no hardware: the virtual reader
//! ```
//!
//! Steps: the reader's descriptor (exchange level, slots, presence notifications), a power
//! cycle of the card with its ATR, the protocol in use, a SELECT of the payment directory
//! (1PAY.SYS.DDF01), then it asks you to pull the card and reports how long the driver took
//! to notice. Exit 0 when every step passed, 1 when the reader cannot be opened, 2 when a
//! step failed.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use pos_ccid::{CcidError, ReaderConfig};
use pos_hal::{ChipReader, Device, DeviceEvent, Fault, SlotState};
use pos_link::DeviceUri;

const SELECT_PSE: &[u8] = b"\x00\xA4\x04\x00\x0E1PAY.SYS.DDF01\x00";

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let arg = std::env::args().nth(1);
    let simulated = arg.is_none();
    let text = arg.unwrap_or_else(|| "sim:ccid?level=t1&interrupt=on".to_string());
    let uri = match DeviceUri::parse(&text) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    println!("1. opening {uri}");
    let mut r = match pos_ccid::open(&uri, ReaderConfig::default()) {
        Ok(r) => r,
        Err(e) => return fail(&e, 1),
    };
    let d = r.descriptor();
    println!(
        "   {:?} level, {} slot(s), max message {} bytes, {}",
        d.exchange_level(),
        r.slot_count(),
        d.max_message_length,
        if r.capabilities()
            .contains(pos_hal::ReaderCapabilities::PRESENCE_INTERRUPT)
        {
            "presence by interrupt"
        } else {
            "presence by polling"
        }
    );
    let events = match r.subscribe() {
        Ok(s) => s,
        Err(e) => return fail(&e, 1),
    };

    println!("2. card in slot 0?");
    match r.slot_status(0) {
        Ok(s) if s.contains(SlotState::CARD_PRESENT) => println!("   yes"),
        Ok(_) => {
            println!("   no card: insert one and run again");
            return ExitCode::from(2);
        }
        Err(e) => return fail(&e, 2),
    }

    println!("3. power cycle and ATR");
    let _ = r.power_off(0);
    let atr = match r.power_on(0) {
        Ok(a) => a,
        Err(e) => return fail(&e, 2),
    };
    println!("   ATR {}", atr.to_hex());
    if let Some(p) = r.atr(0) {
        println!(
            "   offers T={:?}, Fi/Di {:?}, IFSC {}; in use: T={}",
            p.protocols(),
            p.fi_di(),
            p.ifsc(),
            r.protocol(0).unwrap_or(0)
        );
    }

    println!("4. SELECT 1PAY.SYS.DDF01");
    let started = Instant::now();
    match r.transmit(0, SELECT_PSE) {
        Ok(resp) => {
            let sw = &resp[resp.len().saturating_sub(2)..];
            println!(
                "   answered {sw:02X?} in {:.1} ms ({} bytes)",
                started.elapsed().as_secs_f64() * 1e3,
                resp.len()
            );
        }
        Err(e) => return fail(&e, 2),
    }

    println!("5. pull the card out now (30 s)");
    let pulled = Instant::now();
    if simulated {
        // No hands here: the virtual reader has no card to pull, so this step shows the
        // event path only.
        println!("   (virtual reader: nothing to pull; step skipped)");
        return ExitCode::SUCCESS;
    }
    loop {
        match events.recv_timeout(Duration::from_secs(30).saturating_sub(pulled.elapsed())) {
            Ok(ev) if matches!(ev.event, DeviceEvent::CardRemoved { slot: 0 }) => {
                println!(
                    "   removal seen {:.0} ms after the prompt (includes your hand)",
                    pulled.elapsed().as_secs_f64() * 1e3
                );
                return ExitCode::SUCCESS;
            }
            Ok(_) => {}
            Err(_) => {
                println!("   FAIL: no removal event within 30 s");
                return ExitCode::from(2);
            }
        }
    }
}

fn fail(e: &CcidError, code: u8) -> ExitCode {
    eprintln!("   FAIL: {e}");
    eprintln!("   [{}] {}", e.kind(), e.kind().advice());
    if let CcidError::Link(l) = e {
        if let Some(h) = l.hint() {
            eprintln!("   hint: {h}");
        }
    }
    ExitCode::from(code)
}
