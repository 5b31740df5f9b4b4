//! A `pcsc:` reader URI goes to pos-pcsc: on a box without pcsc-lite, pcscd or a reader the
//! lane says why in one line, with the PC/SC road's fault kind.

use pos_hal::{Fault, FaultKind};
use pos_terminal::config::DeviceConfig;

#[test]
fn a_pcsc_reader_is_opened_through_pcscd_or_refused_in_one_line() {
    let config = DeviceConfig {
        reader: "pcsc:".into(),
        printer: "none".into(),
        msr: "none".into(),
        ..DeviceConfig::default()
    };
    match pos_lane::open(&config, None) {
        // A box with pcscd and a reader (the QEMU rig's guest): opened.
        Ok(lane) => assert!(lane.devices.reader.is_some()),
        Err(e) => {
            let text = e.to_string();
            assert!(text.contains("pcsc"), "{text}");
            assert!(!text.contains('\n'), "{text}");
            assert!(
                matches!(e.kind(), FaultKind::NotFound | FaultKind::Disconnected),
                "{:?}: {text}",
                e.kind()
            );
            if e.kind() == FaultKind::Disconnected {
                assert!(text.contains("pcscd is not running"), "{text}");
            }
        }
    }
}
