//! Device scenarios: against the rig's printer and reader when `POS_HIL_RIG` names them,
//! else against the virtual printer and the virtual reader.

use std::time::Duration;

use hil_tests::Rig;
use pos_hal::{
    CardChannel, ChipReader, Fault, PrintOutcome, ReceiptPrinter, SlotChannel, SlotState,
};

fn rig() -> Rig {
    Rig::from_env()
        .unwrap_or_else(|e| {
            panic!(
                "the rig named by {} cannot be used: {e}",
                hil_tests::RIG_ENV
            )
        })
        .unwrap_or_else(|| Rig::parse("", "virtual").expect("an empty rig"))
}

#[test]
fn the_printer_is_ready_and_prints_a_confirmed_test_page() {
    let uri = rig().printer_uri();
    println!("printer: {uri}");
    let mut p = pos_escpos::open(&uri, pos_escpos::DriverConfig::default())
        .unwrap_or_else(|e| panic!("{uri}: cannot open: {e} [{}]", e.kind()));
    let status = p.status().unwrap_or_else(|e| panic!("{uri}: status: {e}"));
    assert!(status.is_ready(), "{uri}: not ready: {:?}", status.names());
    let page = pos_escpos::selftest::test_page(&p.profile());
    let outcome = p
        .print(&page)
        .unwrap_or_else(|e| panic!("{uri}: print: {e}"));
    assert!(
        matches!(
            outcome,
            PrintOutcome::Confirmed | PrintOutcome::StatusVerified
        ),
        "{uri}: {outcome:?}"
    );
    if let Some(sim) = p.simulator() {
        assert!(
            sim.all_text()
                .contains(pos_escpos::selftest::TEST_PAGE_TITLE)
        );
    }
}

#[test]
fn the_reader_powers_the_card_and_exchanges_an_apdu() {
    let uri = rig().reader_uri();
    println!("reader: {uri}");
    let mut r = pos_ccid::open(&uri, pos_ccid::ReaderConfig::default())
        .unwrap_or_else(|e| panic!("{uri}: cannot open: {e} [{}]", e.kind()));
    // The virtual card is inserted as the reader opens; a real one is already in.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !r
        .slot_status(0)
        .map(|s| s.contains(SlotState::CARD_PRESENT))
        .unwrap_or(false)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{uri}: no card in slot 0"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let atr = r
        .power_on(0)
        .unwrap_or_else(|e| panic!("{uri}: power on: {e}"));
    assert!(atr.as_bytes().len() >= 2, "{uri}: ATR {atr:?}");
    let resp = SlotChannel::new(&mut r, 0)
        .transmit(b"\x00\xA4\x04\x00\x0E1PAY.SYS.DDF01\x00")
        .unwrap_or_else(|e| panic!("{uri}: SELECT: {e}"));
    // Any status word is a valid answer (a card may have no PSE); it must be one.
    assert!(resp.len() >= 2, "{uri}: {resp:02x?}");
    r.power_off(0)
        .unwrap_or_else(|e| panic!("{uri}: power off: {e}"));
}
