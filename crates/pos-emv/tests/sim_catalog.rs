//! The library road to a simulated card: `pos_ccid::open` with pos-emv's card catalog in
//! `ReaderConfig::cards` opens `sim:ccid?card=PROFILE` (every profile, every exchange level)
//! and `sim:ccid?script=FILE` (a recorded session), and the EMV read runs on them. Recorded
//! sessions whose GET PROCESSING OPTIONS data is the terminal's date and unpredictable
//! number still replay.

use std::io::Write;

use pos_ccid::ReaderConfig;
use pos_emv::read::{self, select_and_initiate};
use pos_emv::select;
use pos_emv::sim::EmvCards;
use pos_emv::terminal::TerminalData;
use pos_hal::{ChipReader, SlotChannel};
use pos_link::DeviceUri;

fn config() -> ReaderConfig {
    ReaderConfig {
        cards: Some(EmvCards::shared()),
        ..ReaderConfig::default()
    }
}

/// Open `uri`, read the card, return its masked PAN.
fn read_pan(uri: &str) -> String {
    let uri = DeviceUri::parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
    let mut reader = pos_ccid::open(&uri, config()).unwrap_or_else(|e| panic!("{uri}: {e}"));
    reader.power_on(0).unwrap_or_else(|e| panic!("{uri}: {e}"));
    let mut ch = SlotChannel::new(&mut reader, 0);
    let terminal = TerminalData::new([1, 2, 3, 4]);
    let mut chooser = |c: &[select::Candidate]| select::first_without_confirmation(c).or(Some(0));
    let (_, processing) = select_and_initiate(
        &mut ch,
        &select::default_supported_aids(),
        &terminal,
        &mut chooser,
    )
    .unwrap_or_else(|e| panic!("{uri}: {e}"));
    let data = read::read_application_data(&mut ch, &processing.afl)
        .unwrap_or_else(|e| panic!("{uri}: {e}"));
    data.pan_masked().unwrap_or_else(|| panic!("{uri}: no PAN"))
}

#[test]
fn every_profile_opens_by_name_at_every_level() {
    for profile in pos_emv::profile_card::Profile::ALL {
        let pan = profile.pan();
        let masked = format!("{}******{}", &pan[..6], &pan[pan.len() - 4..]);
        for level in ["apdu", "t0", "t1"] {
            let uri = format!("sim:ccid?card={profile}&level={level}");
            assert_eq!(read_pan(&uri), masked, "{uri}");
        }
    }
    // No card option: the catalog's default, visa.
    assert_eq!(read_pan("sim:ccid"), "476173******0010");
}

#[test]
fn a_recorded_session_opens_from_a_file() {
    let dir = env!("CARGO_MANIFEST_DIR");
    for level in ["apdu", "t0", "t1"] {
        let uri = format!("sim:ccid?script={dir}/tests/data/contact-upi.apdu&level={level}");
        assert_eq!(read_pan(&uri), "621094******0011", "{uri}");
        let uri = format!("sim:ccid?script={dir}/tests/data/contact-mastercard.apdu&level={level}");
        assert_eq!(read_pan(&uri), "541333******0044", "{uri}");
    }
}

#[test]
fn a_script_that_cannot_be_read_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.apdu");
    std::fs::File::create(&bad)
        .and_then(|mut f| f.write_all(b"> 00A4\n< zz\n"))
        .expect("written");
    for (path, needle) in [
        (dir.path().join("missing.apdu"), "missing.apdu"),
        (bad.clone(), "line 1"),
    ] {
        let uri = DeviceUri::parse(&format!("sim:ccid?script={}", path.display())).expect("uri");
        let e = pos_ccid::open(&uri, config()).expect_err("no card from a bad script");
        assert_eq!(pos_hal::Fault::kind(&e), pos_hal::FaultKind::InvalidInput);
        assert!(e.to_string().contains(needle), "{e}");
        assert!(e.to_string().contains("script"), "{e}");
    }
}

/// A recorded card with a PDOL asking for the date and the unpredictable number: the GPO of
/// the recording carries that day's values, the replaying terminal sends today's.
#[test]
fn gpo_data_that_depends_on_the_date_still_replays() {
    let recorded = "\
> 00A404000E315041592E5359532E444446303100
< 6A82
> 00A4040007A000000003101000
< 6F108407A0000000031010A5059F38029A039000
> 80A8000005830324011500
< 80067C00080101009000
> 00B2010C00
< 70195A0847617390010100105F24033112318C039F02068D028A029000
";
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pdol.apdu");
    std::fs::write(&path, recorded).expect("written");
    let uri = format!("sim:ccid?script={}", path.display());
    // TerminalData dates the GPO today, not 2024-01-15 as recorded.
    assert_eq!(read_pan(&uri), "476173******0010");

    // A GPO whose PDOL data has another length is not the recorded one.
    use pos_emv::script_card::{MISMATCH_SW, Matching, ScriptedCard};
    use pos_hal::VirtualCard;
    let t = pos_emv::transcript::Transcript::parse(recorded).expect("parses");
    let mut card = ScriptedCard::new(t, Matching::Lenient);
    card.power_on();
    assert_eq!(
        card.transmit(&[
            0x80, 0xA8, 0x00, 0x00, 0x05, 0x83, 0x03, 0x26, 0x12, 0x07, 0x00
        ]),
        Some(vec![
            0x80, 0x06, 0x7C, 0x00, 0x08, 0x01, 0x01, 0x00, 0x90, 0x00
        ])
    );
    card.power_on();
    assert_eq!(
        card.transmit(&[0x80, 0xA8, 0x00, 0x00, 0x04, 0x83, 0x02, 0x26, 0x12, 0x00]),
        Some(MISMATCH_SW.to_vec())
    );
}
