//! The policy on real readers: the descriptor dumps of the models in `tests/data/readers`
//! (copied from libccid's `readers/`, see the README there), parsed with
//! [`from_lsusb_dump`], then [`ReaderPolicy::decide`] with the reader's quirk rows and a
//! T=1 card. One row per model: what the driver decides and which descriptor field or quirk
//! the reason names.

use pos_ccid::descriptor::{DumpedInterface, ExchangeLevel, from_lsusb_dump};
use pos_ccid::message::PowerSelect;
use pos_ccid::quirks::{self, QuirkKind};
use pos_ccid::{ReaderConfig, ReaderPolicy, atr::ParsedAtr};
use proptest::prelude::*;

/// A T=1 card without TA1 (default speed), IFSC 254.
fn t1_card() -> ParsedAtr {
    let mut b = vec![0x3B, 0x80, 0x81, 0x31, 0xFE, 0x45];
    let tck = b[1..].iter().fold(0u8, |a, x| a ^ x);
    b.push(tck);
    match ParsedAtr::parse(&b) {
        Ok(a) => a,
        Err(e) => panic!("test ATR {b:02X?}: {e}"),
    }
}

fn dump(file: &str) -> Vec<DumpedInterface> {
    let path = format!("{}/tests/data/readers/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    from_lsusb_dump(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// What the policy must decide for one model, and the words its reasons must hold.
struct Model {
    file: &'static str,
    interface: usize,
    usb_id: &'static str,
    bcd_device: u16,
    level: ExchangeLevel,
    /// Words the exchange level's reason holds (the dwFeatures value, or the quirk's model).
    level_because: &'static str,
    set_parameters: bool,
    set_parameters_because: &'static str,
    /// `true`: bPowerSelect 0, the reader chooses; `false`: 5 V first.
    automatic_voltage: bool,
    voltage_because: &'static str,
    /// IFSD (0 at APDU level) and the words of its reason.
    ifsd: u8,
    ifsd_because: &'static str,
    /// S(IFS request) sent first.
    ifsd_request: bool,
    max_message_length: u32,
    extended_apdu: bool,
    extended_because: &'static str,
    /// The quirk rows that apply, by kind.
    quirks: &'static [QuirkKind],
}

const SCM_LENGTH: QuirkKind = QuirkKind::MessageLength {
    reported: 263,
    actual: 270,
};
const FORCED_EXTENDED: QuirkKind = QuirkKind::ExchangeLevel(ExchangeLevel::ExtendedApdu);

const MODELS: &[Model] = &[
    Model {
        file: "SCR3310.txt",
        interface: 0,
        usb_id: "04e6:5116",
        bcd_device: 0x0523,
        level: ExchangeLevel::Tpdu,
        level_because: "dwFeatures 0x000100BA",
        set_parameters: true,
        set_parameters_because: "0x02",
        automatic_voltage: true,
        voltage_because: "0x08",
        ifsd: 252,
        ifsd_because: "dwMaxIFSD 252",
        ifsd_request: true,
        // The SCM row is for firmware reporting 263; this one reports 271 and keeps it.
        max_message_length: 271,
        extended_apdu: true,
        extended_because: "T=1 chaining",
        quirks: &[SCM_LENGTH],
    },
    Model {
        file: "Identive_CLOUD_2700_R.txt",
        interface: 0,
        usb_id: "04e6:5810",
        bcd_device: 0x0100,
        level: ExchangeLevel::ExtendedApdu,
        level_because: "dwFeatures 0x000404BA",
        set_parameters: true,
        set_parameters_because: "0x02",
        automatic_voltage: true,
        voltage_because: "0x08",
        ifsd: 0,
        ifsd_because: "APDU level",
        ifsd_request: false,
        max_message_length: 271,
        extended_apdu: true,
        extended_because: "wLevelParameter",
        quirks: &[SCM_LENGTH],
    },
    Model {
        file: "HID_Global_OMNIKEY_3x21_Smart_Card_Reader.txt",
        interface: 0,
        usb_id: "076b:3031",
        bcd_device: 0x0106,
        level: ExchangeLevel::ExtendedApdu,
        level_because: "OMNIKEY 3x21",
        set_parameters: true,
        set_parameters_because: "0x02",
        automatic_voltage: true,
        voltage_because: "0x08",
        ifsd: 0,
        ifsd_because: "APDU level",
        ifsd_request: false,
        max_message_length: 271,
        extended_apdu: true,
        extended_because: "wLevelParameter",
        quirks: &[FORCED_EXTENDED],
    },
    // Interface 0 is the contactless side (iInterface "OMNIKEY 5422CL").
    Model {
        file: "HID_OMNIKEY_5422.txt",
        interface: 0,
        usb_id: "076b:5422",
        bcd_device: 0x0101,
        level: ExchangeLevel::ExtendedApdu,
        level_because: "dwFeatures 0x000404BA",
        set_parameters: true,
        set_parameters_because: "0x02",
        automatic_voltage: true,
        voltage_because: "0x08",
        ifsd: 0,
        ifsd_because: "APDU level",
        ifsd_request: false,
        max_message_length: 520,
        extended_apdu: true,
        extended_because: "wLevelParameter",
        quirks: &[],
    },
    // Interface 1, the contact slot: no 0x02, no 0x40.
    Model {
        file: "HID_OMNIKEY_5422.txt",
        interface: 1,
        usb_id: "076b:5422",
        bcd_device: 0x0101,
        level: ExchangeLevel::ExtendedApdu,
        level_because: "dwFeatures 0x000407B8",
        set_parameters: true,
        set_parameters_because: "no automatic parameter configuration",
        automatic_voltage: true,
        voltage_because: "0x08",
        ifsd: 0,
        ifsd_because: "APDU level",
        ifsd_request: false,
        max_message_length: 520,
        extended_apdu: true,
        extended_because: "wLevelParameter",
        quirks: &[],
    },
    // Gemalto IDBridge CT30 (GemPC Twin's USB id); firmware 2.01, so not the ZLP row (2.00).
    Model {
        file: "Gemalto_IDBridge_CT30.txt",
        interface: 0,
        usb_id: "08e6:3437",
        bcd_device: 0x0201,
        level: ExchangeLevel::Tpdu,
        level_because: "dwFeatures 0x00010230",
        set_parameters: true,
        set_parameters_because: "no automatic parameter configuration",
        automatic_voltage: false,
        voltage_because: "without automatic voltage selection",
        ifsd: 254,
        ifsd_because: "254",
        ifsd_request: true,
        max_message_length: 271,
        extended_apdu: true,
        extended_because: "T=1 chaining",
        quirks: &[],
    },
    Model {
        file: "ACS_ACR39U_ICC_Reader.txt",
        interface: 0,
        usb_id: "072f:b100",
        bcd_device: 0x0216,
        level: ExchangeLevel::Tpdu,
        level_because: "dwFeatures 0x000100B2",
        set_parameters: true,
        set_parameters_because: "0x02",
        automatic_voltage: false,
        voltage_because: "without automatic voltage selection",
        ifsd: 247,
        ifsd_because: "dwMaxIFSD 247",
        ifsd_request: true,
        max_message_length: 271,
        extended_apdu: true,
        extended_because: "T=1 chaining",
        quirks: &[],
    },
    // Cherry SmartTerminal ST-1144: USB id of the "Smart Terminal XX44" family.
    Model {
        file: "Cherry_SmartTerminal_1144.txt",
        interface: 0,
        usb_id: "046a:00a7",
        bcd_device: 0x0103,
        level: ExchangeLevel::ExtendedApdu,
        level_because: "Cherry Smart Terminal xx44",
        set_parameters: true,
        set_parameters_because: "no automatic parameter configuration",
        automatic_voltage: true,
        voltage_because: "0x08",
        ifsd: 0,
        ifsd_because: "APDU level",
        ifsd_request: false,
        max_message_length: 271,
        extended_apdu: true,
        extended_because: "wLevelParameter",
        quirks: &[FORCED_EXTENDED],
    },
    Model {
        file: "Feitian_bR301.txt",
        interface: 0,
        usb_id: "096e:061a",
        bcd_device: 0x0200,
        level: ExchangeLevel::ExtendedApdu,
        level_because: "dwFeatures 0x000404BE",
        set_parameters: true,
        set_parameters_because: "0x02",
        automatic_voltage: true,
        voltage_because: "0x08",
        ifsd: 0,
        ifsd_because: "APDU level",
        ifsd_request: false,
        max_message_length: 272,
        extended_apdu: true,
        extended_because: "wLevelParameter",
        quirks: &[],
    },
    // libccid's dump named AU9560 is USB id 058f:9540: the AU9540 rate cap applies.
    Model {
        file: "AlcorMicro_AU9560.txt",
        interface: 0,
        usb_id: "058f:9540",
        bcd_device: 0x0120,
        level: ExchangeLevel::ExtendedApdu,
        level_because: "dwFeatures 0x000404BE",
        set_parameters: true,
        set_parameters_because: "0x02",
        automatic_voltage: true,
        voltage_because: "0x08",
        ifsd: 0,
        ifsd_because: "APDU level",
        ifsd_request: false,
        max_message_length: 272,
        extended_apdu: true,
        extended_because: "wLevelParameter",
        quirks: &[QuirkKind::MaxDataRate(200_000)],
    },
];

fn because(what: &str, model: &Model, reason: &str, words: &str) {
    assert!(
        reason.contains(words),
        "{} if{}: {what}'s reason {reason:?} does not name {words:?}",
        model.file,
        model.interface
    );
}

#[test]
fn policy_per_reader_model() {
    let card = t1_card();
    for m in MODELS {
        let interfaces = dump(m.file);
        let Some(iface) = interfaces.get(m.interface) else {
            panic!("{}: no interface {}", m.file, m.interface);
        };
        let ctx = format!("{} if{}", m.file, m.interface);
        assert_eq!(iface.usb_id(), m.usb_id, "{ctx}");
        assert_eq!(iface.bcd_device, m.bcd_device, "{ctx}");
        assert_eq!(
            usize::from(iface.interface_number),
            m.interface,
            "{ctx}: bInterfaceNumber"
        );
        let quirks = quirks::lookup(iface.vendor, iface.product, iface.bcd_device);
        let kinds: Vec<QuirkKind> = quirks.iter().map(|q| q.kind).collect();
        assert_eq!(kinds, m.quirks, "{ctx}: quirk rows");

        let p = ReaderPolicy::decide(
            &iface.descriptor,
            iface.data_rates.as_deref(),
            Some(&card),
            &quirks,
            &ReaderConfig::default(),
        );
        assert_eq!(p.refused, None, "{ctx}");
        assert_eq!(p.exchange_level.value, m.level, "{ctx}");
        because(
            "exchange level",
            m,
            &p.exchange_level.reason,
            m.level_because,
        );
        assert_eq!(p.set_parameters.value, m.set_parameters, "{ctx}");
        because(
            "SetParameters",
            m,
            &p.set_parameters.reason,
            m.set_parameters_because,
        );
        let expected_voltages: &[PowerSelect] = if m.automatic_voltage {
            &[PowerSelect::Automatic]
        } else {
            // Every model here has bVoltageSupport 0x07 or is automatic.
            &[PowerSelect::V5, PowerSelect::V3, PowerSelect::V1_8]
        };
        assert_eq!(p.voltages.value, expected_voltages, "{ctx}");
        because("voltage", m, &p.voltages.reason, m.voltage_because);
        assert_eq!(p.ifsd.value, m.ifsd, "{ctx}");
        because("IFSD", m, &p.ifsd.reason, m.ifsd_because);
        assert_eq!(p.ifsd_request.value, m.ifsd_request, "{ctx}");
        assert_eq!(p.max_message_length.value, m.max_message_length, "{ctx}");
        because(
            "max message length",
            m,
            &p.max_message_length.reason,
            "dwMaxCCIDMessageLength",
        );
        assert_eq!(p.extended_apdu.value, m.extended_apdu, "{ctx}");
        because(
            "extended APDUs",
            m,
            &p.extended_apdu.reason,
            m.extended_because,
        );
        // The card asks for no speed-up: no PPS by the host on any of them.
        assert!(!p.pps.value, "{ctx}: {}", p.pps.reason);
    }
}

#[test]
fn the_dumps_read_field_by_field() {
    let scm = dump("SCR3310.txt");
    assert_eq!(scm.len(), 1);
    let s = &scm[0];
    assert_eq!(
        s.name(),
        "SCM Microsystems Inc. SCR3310 USB Smart Card Reader"
    );
    assert_eq!(s.interface_class, 0x0B);
    assert_eq!(s.bulk_out, Some(true));
    let d = &s.descriptor;
    assert_eq!(d.bcd_ccid, 0x0110);
    assert_eq!(d.voltages.bits(), 0x01);
    assert_eq!(d.protocols.bits(), 0x03);
    assert_eq!((d.default_clock_khz, d.max_clock_khz), (4000, 8000));
    assert_eq!((d.data_rate_bps, d.max_data_rate_bps), (10753, 344_105));
    assert_eq!((d.num_clocks, d.num_data_rates), (0, 0));
    assert_eq!(d.max_ifsd, 252);
    assert_eq!(d.features.bits(), 0x0001_00BA);
    assert_eq!(d.max_message_length, 271);
    assert_eq!((d.class_get_response, d.class_envelope), (0xFF, 0xFF));
    assert_eq!(d.max_busy_slots, 1);
    assert_eq!(s.data_rates, None);
    // The descriptor round-trips through its 54 bytes.
    assert_eq!(
        pos_ccid::descriptor::CcidDescriptor::parse(&d.encode()).as_ref(),
        Ok(d)
    );

    // Two CCID interfaces; the contact one (1) lists 106 data rates and 4 clocks.
    let omnikey = dump("HID_OMNIKEY_5422.txt");
    assert_eq!(omnikey.len(), 2);
    let contact = &omnikey[1];
    assert_eq!(contact.descriptor.num_data_rates, 106);
    assert_eq!(contact.data_rates.as_ref().map(Vec::len), Some(106));
    assert_eq!(contact.clocks_khz, Some(vec![4000, 4800, 6000, 8000]));
}

#[test]
fn broken_dumps_are_errors_not_panics() {
    let good = std::fs::read_to_string(format!(
        "{}/tests/data/readers/SCR3310.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_default();
    for (from, to) in [
        ("dwFeatures: 0x000100BA", "dwFeatures: 0xZZ"),
        ("dwMaxIFSD: 252", "dwMaxIFSD: -1"),
        ("dwDefaultClock: 4.000 MHz", "dwDefaultClock: 4.0000 MHz"),
        ("bcdDevice: 5.23", "bcdDevice: 523"),
        (" CCID Class Descriptor", " Class"),
    ] {
        let bad = good.replace(from, to);
        assert_ne!(bad, good, "{from}");
        assert!(from_lsusb_dump(&bad).is_err(), "{to} was accepted");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any text: an error or interfaces, never a panic.
    #[test]
    fn any_text_never_panics(text in "(?s).{0,400}") {
        let _ = from_lsusb_dump(&text);
    }

    /// A real dump with one line replaced by arbitrary text, or cut anywhere.
    #[test]
    fn damaged_dumps_never_panic(line in 0usize..60, junk in ".{0,40}", cut in 0usize..2000) {
        let good = std::fs::read_to_string(format!(
            "{}/tests/data/readers/HID_OMNIKEY_5422.txt",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap_or_default();
        let mut lines: Vec<&str> = good.lines().collect();
        if let Some(l) = lines.get_mut(line) {
            *l = &junk;
        }
        let damaged = lines.join("\n");
        let _ = from_lsusb_dump(&damaged);
        let end = damaged.char_indices().map(|(i, _)| i).nth(cut).unwrap_or(damaged.len());
        let _ = from_lsusb_dump(&damaged[..end]);
    }
}
