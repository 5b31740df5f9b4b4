//! The EMV read on every real reader model of pos-ccid's virtual reader
//! (`sim:ccid?model=NAME&card=visa`): through the factory (the model's quirk rows applied),
//! the driver and the model's rules, the PAN and AID read as on a plain virtual reader, at
//! the model's own exchange level (TPDU with T=1 cards, or APDU).
#![allow(clippy::unwrap_used)]

use pos_ccid::ReaderConfig;
use pos_ccid::sim::MODELS;
use pos_emv::profile_card::Profile;
use pos_emv::sim::EmvCards;
use pos_emv::{Method, TerminalData, read_card};
use pos_hal::{ChipReader, SlotChannel};
use pos_link::DeviceUri;

#[test]
fn visa_reads_on_every_reader_model() {
    let pan = Profile::VisaPse.pan();
    let masked = format!("{}******{}", &pan[..6], &pan[pan.len() - 4..]);
    for m in MODELS {
        let uri = DeviceUri::parse(&format!("sim:ccid?model={}&card=visa", m.name)).unwrap();
        let config = ReaderConfig {
            cards: Some(EmvCards::shared()),
            ..ReaderConfig::default()
        };
        let (mut reader, handle) = pos_ccid::open_sim_with_handle(&uri, config)
            .unwrap_or_else(|e| panic!("{}: {e}", m.name));
        reader
            .power_on(0)
            .unwrap_or_else(|e| panic!("{}: {e}", m.name));
        let level = reader.policy(0).exchange_level.value;
        let read = read_card(
            &mut SlotChannel::new(&mut reader, 0),
            &TerminalData::new([0x11, 0x22, 0x33, 0x44]),
        )
        .unwrap_or_else(|e| panic!("{} ({level}): {e}", m.name));
        assert_eq!(read.method, Method::Pse, "{}", m.name);
        assert_eq!(read.aid_hex(), "A0000000031010", "{}", m.name);
        assert_eq!(read.pan_masked(), Some(masked.clone()), "{}", m.name);
        // The model's rules held: nothing it received was refused.
        let refused: Vec<String> = handle
            .requests()
            .iter()
            .filter(|r| r.error.is_some())
            .map(|r| r.summary())
            .collect();
        assert!(refused.is_empty(), "{}: {refused:?}", m.name);
        assert!(
            handle.exchanges() > 3,
            "{}: the read went through the reader",
            m.name
        );
    }
}
