//! The interface the USB transport opens on real readers: their descriptor dumps (see
//! `tests/data/readers/README.md`) judged by `pos_ccid::interface`, the function the
//! transport calls with what the device reports.

use pos_ccid::descriptor::from_lsusb_dump;
use pos_ccid::interface::{self, Candidate, Role};

fn candidates(file: &str) -> Vec<Candidate> {
    let path = format!("{}/tests/data/readers/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    from_lsusb_dump(&text)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .iter()
        .map(Candidate::from_dump)
        .collect()
}

#[test]
fn the_omnikey_5422_opens_its_contact_slot_not_its_contactless_one() {
    let c = candidates("HID_OMNIKEY_5422.txt");
    assert_eq!(c.len(), 2);
    let choice = interface::choose(&c, None).unwrap();
    assert_eq!(choice.number, 1, "{}", choice.reason);
    assert_eq!(choice.interfaces[0].role, Role::Contactless);
    assert!(choice.interfaces[0].role_reason.contains("5422cl"));
    assert!(
        choice.reason.contains("of 2 CCID interfaces"),
        "{}",
        choice.reason
    );
    // The contactless one stays reachable by number.
    assert_eq!(interface::choose(&c, Some(0)).unwrap().number, 0);
}

#[test]
fn single_interface_readers_open_their_only_interface() {
    for file in [
        "SCR3310.txt",
        "Identive_CLOUD_2700_R.txt",
        "HID_Global_OMNIKEY_3x21_Smart_Card_Reader.txt",
        "Gemalto_IDBridge_CT30.txt",
        "ACS_ACR39U_ICC_Reader.txt",
        "Cherry_SmartTerminal_1144.txt",
        "Feitian_bR301.txt",
        "AlcorMicro_AU9560.txt",
    ] {
        let c = candidates(file);
        let choice = interface::choose(&c, None).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(choice.number, c[0].number, "{file}");
        assert!(
            choice.reason.contains("only CCID interface"),
            "{file}: {}",
            choice.reason
        );
        assert!(choice.interfaces.iter().all(|a| a.is_usable()), "{file}");
    }
}

#[test]
fn vendor_class_readers_with_a_ccid_descriptor_are_opened() {
    // Cherry ST-2xxx (046a:003e) and the Dell SK-3106 keyboard (413c:2100): class 0xFF, a
    // CCID descriptor; libccid lists both in its udev rules and drives them.
    for file in ["CherrySmartTerminalST2XXX.txt", "DellSK-3106.txt"] {
        let c = candidates(file);
        assert_eq!(c[0].class, 0xFF, "{file}");
        let choice = interface::choose(&c, None).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(choice.number, c[0].number, "{file}");
    }
}

#[test]
fn an_iccd_token_is_refused_by_name() {
    // G&D StarSign Card Token 350: class 0x0B, bInterfaceProtocol 2 (ICCD version B).
    let c = candidates("GnD_StarSignCardToken350.txt");
    let err = interface::choose(&c, None).unwrap_err();
    assert!(err.contains("ICCD") && err.contains("version B"), "{err}");
    assert!(err.contains("control pipe"), "{err}");
}
