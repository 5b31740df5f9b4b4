//! Real reader models in the virtual reader (`sim:ccid?model=NAME`): each model's data
//! equals libccid's dump of that reader (`tests/data/readers`), the factory applies its
//! quirk rows, the policy and the exact message sequence per model, and the rules that
//! make a driver that ignores them fail.

use std::time::Duration;

use pos_ccid::descriptor::{DumpedInterface, ExchangeLevel, Features, from_lsusb_dump};
use pos_ccid::message::{
    CommandStatus, PowerSelect, ProtocolParams, Request, RequestBody, Response, SlotError,
};
use pos_ccid::sim::{
    ClassAnswer, MODELS, ReaderModel, SimReaderConfig, SimReaderHandle, TestCard, VirtualReader,
};
use pos_ccid::{AnyReader, CcidError, CcidReader, CcidTransport, InterruptSource, ReaderConfig};
use pos_hal::{ChipReader, VirtualCard};
use pos_link::{Deadline, DeviceUri, LinkError};

fn model(name: &str) -> &'static ReaderModel {
    pos_ccid::sim::model(name).unwrap_or_else(|| panic!("no model {name}"))
}

fn dump(file: &str) -> Vec<DumpedInterface> {
    let path = format!("{}/tests/data/readers/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    from_lsusb_dump(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn uri(text: &str) -> DeviceUri {
    DeviceUri::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Open `sim:ccid?model=NAME[&more]` through the factory with `card` in the slot (the
/// URI's default card when `None`).
fn open(
    name: &str,
    more: &str,
    card: Option<Box<dyn VirtualCard>>,
) -> (AnyReader, SimReaderHandle) {
    let u = uri(&format!("sim:ccid?model={name}{more}"));
    let opened = match card {
        Some(c) => pos_ccid::open_sim_with_card(&u, ReaderConfig::default(), Some(c)),
        None => pos_ccid::open_sim_with_handle(&u, ReaderConfig::default()),
    };
    opened.unwrap_or_else(|e| panic!("{u}: {e}"))
}

/// A card whose ATR offers T=1 (IFSC 254) with TA1 `ta1`.
fn t1_card_with_ta1(ta1: u8) -> Box<dyn VirtualCard> {
    // TS T0(TA1 TD1, 2 historical) TA1 TD1(TD2, T=1) TD2(TA3 TB3, T=1) IFSC BWI/CWI hist TCK
    let mut atr = vec![0x3B, 0x92, ta1, 0x81, 0x31, 0xFE, 0x45, 0x50, 0x4F];
    let tck = atr[1..].iter().fold(0u8, |a, b| a ^ b);
    atr.push(tck);
    Box::new(TestCard::with_atr(atr))
}

/// A T=0 card with TA1 `ta1`.
fn t0_card_with_ta1(ta1: u8) -> Box<dyn VirtualCard> {
    Box::new(TestCard::with_atr(vec![0x3B, 0x12, ta1, 0x14, 0x50]))
}

/// The 300-byte exchange: an extended case 4 APDU with 300 bytes of data, which the test
/// card echoes (a 302-byte response).
fn apdu_300() -> Vec<u8> {
    let mut cmd = vec![0x80, 0xEE, 0x00, 0x00, 0x00, 0x01, 0x2C];
    cmd.extend((0..300u32).map(|i| i as u8));
    cmd.extend([0x00, 0x00]);
    cmd
}

fn echo_of(cmd: &[u8]) -> Vec<u8> {
    let mut r = cmd[7..307].to_vec();
    r.extend([0x90, 0x00]);
    r
}

/// A transport that hides the reader's data-rate list from the driver: a driver that does
/// not ask GET_DATA_RATES.
struct NoRateList(VirtualReader);

impl CcidTransport for NoRateList {
    fn target(&self) -> &str {
        self.0.target()
    }
    fn descriptor(&self) -> &pos_ccid::descriptor::CcidDescriptor {
        self.0.descriptor()
    }
    fn send(&mut self, message: &[u8], deadline: Deadline) -> Result<(), LinkError> {
        self.0.send(message, deadline)
    }
    fn receive(&mut self, deadline: Deadline) -> Result<Vec<u8>, LinkError> {
        self.0.receive(deadline)
    }
    fn abort_request(&mut self, slot: u8, seq: u8, deadline: Deadline) -> Result<(), LinkError> {
        self.0.abort_request(slot, seq, deadline)
    }
    fn take_interrupt(&mut self) -> Option<Box<dyn InterruptSource>> {
        self.0.take_interrupt()
    }
}

/// The model as a bare virtual reader (no factory: no quirk rows added to `config`).
fn bare(m: &ReaderModel) -> (VirtualReader, SimReaderHandle) {
    VirtualReader::new(
        SimReaderConfig::for_model(m),
        &format!("sim:ccid?model={}", m.name),
    )
}

/// Send one request straight to the virtual reader (as a driver ignoring a rule would) and
/// decode its answer.
fn direct(vr: &mut VirtualReader, body: RequestBody) -> Response {
    let req = Request {
        slot: 0,
        seq: 7,
        body,
    };
    send_raw(vr, &req.encode())
}

fn send_raw(vr: &mut VirtualReader, bytes: &[u8]) -> Response {
    let d = Deadline::after(Duration::from_secs(1));
    vr.send(bytes, d).unwrap_or_else(|e| panic!("send: {e}"));
    let raw = vr.receive(d).unwrap_or_else(|e| panic!("receive: {e}"));
    Response::decode(&raw).unwrap_or_else(|e| panic!("decode: {e}"))
}

fn failed_with(r: &Response) -> Option<u8> {
    (r.status.command() == CommandStatus::Failed).then_some(r.error)
}

#[test]
fn every_model_equals_its_libccid_dump() {
    assert!(MODELS.len() >= 10);
    for m in MODELS {
        let interfaces = dump(m.dump);
        let Some(i) = interfaces
            .iter()
            .find(|i| i.interface_number == m.interface)
        else {
            panic!("{}: {} has no interface {}", m.name, m.dump, m.interface);
        };
        assert_eq!(
            (i.vendor, i.product, i.bcd_device),
            (m.vendor_id, m.product_id, m.bcd_device),
            "{}: USB ids and bcdDevice",
            m.name
        );
        assert_eq!(i.descriptor, m.descriptor, "{}: descriptor", m.name);
        assert_eq!(
            i.data_rates.as_deref(),
            m.data_rates.list(),
            "{}: GET_DATA_RATES list",
            m.name
        );
        assert_eq!(
            i.clocks_khz.as_deref(),
            m.clocks.list(),
            "{}: GET_CLOCK_FREQUENCIES list",
            m.name
        );
    }
    // Names are unique and each one opens.
    let mut names: Vec<&str> = MODELS.iter().map(|m| m.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), MODELS.len());
}

/// What one model must do with its default card: the policy chosen and the exact request
/// sequence of power-on, parameters and the 300-byte exchange.
struct Expect {
    name: &'static str,
    level: ExchangeLevel,
    voltages: &'static [PowerSelect],
    set_parameters: bool,
    ifsd: u8,
    max_message_length: u32,
    data_rates: Option<usize>,
    sequence: &'static [&'static str],
}

/// T=1 at TPDU level: S(IFS request), then the 309-byte APDU in two chained I-blocks (254
/// bytes of INF, then 55), an R-block for the card's chained response.
const TPDU_T1: &[&str] = &[
    "SetParameters T=1 Fi/Di 0x11",
    "XfrBlock 258 bytes [00 20 FE ..]",
    "XfrBlock 59 bytes [00 40 37 ..]",
    "XfrBlock [00 90 00 90]",
];

/// Extended APDU level with a 271-byte message limit: the 309-byte APDU in two messages
/// (261 + 48 bytes, wLevelParameter 1 then 2), then an empty XfrBlock (0x10) for the rest
/// of the 302-byte response.
const EXTENDED_271: &[&str] = &[
    "IccPowerOn auto",
    "SetParameters T=0 Fi/Di 0x11",
    "XfrBlock 261 bytes [80 EE 00 ..] wLevelParameter 0x0001",
    "XfrBlock 48 bytes [FE FF 00 ..] wLevelParameter 0x0002",
    "XfrBlock [] wLevelParameter 0x0010",
];

/// As [`EXTENDED_271`] with a 272-byte limit (262 + 47).
const EXTENDED_272: &[&str] = &[
    "IccPowerOn auto",
    "SetParameters T=0 Fi/Di 0x11",
    "XfrBlock 262 bytes [80 EE 00 ..] wLevelParameter 0x0001",
    "XfrBlock 47 bytes [FF 00 01 ..] wLevelParameter 0x0002",
    "XfrBlock [] wLevelParameter 0x0010",
];

const AUTO: &[PowerSelect] = &[PowerSelect::Automatic];
const CLASSES: &[PowerSelect] = &[PowerSelect::V5, PowerSelect::V3, PowerSelect::V1_8];

fn with_head(head: &[&'static str], tail: &[&'static str]) -> Vec<String> {
    head.iter().chain(tail).map(|s| s.to_string()).collect()
}

#[test]
fn each_model_powers_on_sets_parameters_and_carries_300_bytes() {
    let table = [
        Expect {
            name: "scr3310",
            level: ExchangeLevel::Tpdu,
            voltages: AUTO,
            set_parameters: true,
            ifsd: 252,
            max_message_length: 271,
            data_rates: None,
            sequence: &[],
        },
        Expect {
            name: "utrust-2700r",
            level: ExchangeLevel::ExtendedApdu,
            voltages: AUTO,
            set_parameters: true,
            ifsd: 0,
            max_message_length: 271,
            data_rates: None,
            sequence: EXTENDED_271,
        },
        Expect {
            name: "omnikey-3121",
            level: ExchangeLevel::ExtendedApdu,
            voltages: AUTO,
            set_parameters: true,
            ifsd: 0,
            max_message_length: 271,
            data_rates: Some(106),
            sequence: EXTENDED_271,
        },
        // A 520-byte message limit: the whole 309-byte APDU in one message, and the
        // response in one.
        Expect {
            name: "omnikey-5422",
            level: ExchangeLevel::ExtendedApdu,
            voltages: AUTO,
            set_parameters: true,
            ifsd: 0,
            max_message_length: 520,
            data_rates: Some(106),
            sequence: &[
                "IccPowerOn auto",
                "SetParameters T=0 Fi/Di 0x11",
                "XfrBlock 309 bytes [80 EE 00 ..]",
            ],
        },
        Expect {
            name: "idbridge-ct30",
            level: ExchangeLevel::Tpdu,
            voltages: CLASSES,
            set_parameters: true,
            ifsd: 254,
            max_message_length: 271,
            data_rates: Some(53),
            sequence: &[],
        },
        Expect {
            name: "acr39u",
            level: ExchangeLevel::Tpdu,
            voltages: CLASSES,
            set_parameters: true,
            ifsd: 247,
            max_message_length: 271,
            data_rates: None,
            sequence: &[],
        },
        Expect {
            name: "cherry-st1144",
            level: ExchangeLevel::ExtendedApdu,
            voltages: AUTO,
            set_parameters: true,
            ifsd: 0,
            max_message_length: 271,
            data_rates: Some(96),
            sequence: EXTENDED_271,
        },
        Expect {
            name: "cherry-xx44",
            level: ExchangeLevel::ExtendedApdu,
            voltages: AUTO,
            set_parameters: true,
            ifsd: 0,
            max_message_length: 271,
            data_rates: Some(96),
            sequence: EXTENDED_271,
        },
        Expect {
            name: "br301",
            level: ExchangeLevel::ExtendedApdu,
            voltages: AUTO,
            set_parameters: true,
            ifsd: 0,
            max_message_length: 272,
            data_rates: None,
            sequence: EXTENDED_272,
        },
        Expect {
            name: "au9560",
            level: ExchangeLevel::ExtendedApdu,
            voltages: AUTO,
            set_parameters: true,
            ifsd: 0,
            max_message_length: 272,
            data_rates: Some(138),
            sequence: EXTENDED_272,
        },
    ];
    assert_eq!(table.len(), MODELS.len(), "a row per model");
    for e in &table {
        let (mut r, h) = open(e.name, "", None);
        let ctx = e.name;
        assert_eq!(
            h.class_requests().0,
            1,
            "{ctx}: GET_DATA_RATES once at open"
        );
        assert_eq!(r.data_rates().map(|l| l.len()), e.data_rates, "{ctx}");
        let atr = r.power_on(0).unwrap_or_else(|err| panic!("{ctx}: {err}"));
        let cmd = apdu_300();
        let resp = r
            .transmit(0, &cmd)
            .unwrap_or_else(|err| panic!("{ctx}: {err}"));
        assert_eq!(resp, echo_of(&cmd), "{ctx}: the 300 bytes came back");
        let p = r.policy(0);
        assert_eq!(p.refused, None, "{ctx}");
        assert_eq!(p.exchange_level.value, e.level, "{ctx}");
        assert_eq!(p.voltages.value, e.voltages, "{ctx}");
        assert_eq!(p.set_parameters.value, e.set_parameters, "{ctx}");
        assert!(!p.pps.value, "{ctx}: the default card asks no speed-up");
        assert_eq!(p.fi_di.value, (1, 1), "{ctx}");
        assert_eq!(p.ifsd.value, e.ifsd, "{ctx}");
        assert_eq!(p.max_message_length.value, e.max_message_length, "{ctx}");
        assert!(p.extended_apdu.value, "{ctx}");
        let expected: Vec<String> = if e.level == ExchangeLevel::Tpdu {
            // The T=1 card at TPDU level: 5 V or automatic, then IFSD as the policy says.
            assert_eq!(atr.0[..4], [0x3B, 0x82, 0x81, 0x31], "{ctx}: a T=1 card");
            let power = if e.voltages == AUTO {
                "IccPowerOn auto"
            } else {
                "IccPowerOn 5V"
            };
            let ifs = format!(
                "XfrBlock [00 C1 01 {:02X} {:02X}]",
                e.ifsd,
                0xC1 ^ 0x01 ^ e.ifsd
            );
            let mut v = vec![power.to_string(), TPDU_T1[0].to_string(), ifs];
            v.extend(TPDU_T1[1..].iter().map(|s| s.to_string()));
            v
        } else {
            with_head(&[], e.sequence)
        };
        assert_eq!(h.request_summaries(), expected, "{ctx}: request sequence");
        // No request was longer than the model takes.
        for seen in h.requests() {
            assert!(
                seen.length <= e.max_message_length as usize,
                "{ctx}: {seen}"
            );
        }
    }
}

#[test]
fn the_factory_applies_a_models_quirk_rows() {
    // OMNIKEY 3x21: the forced extended level row; its reason names the model.
    let (r, _h) = open("omnikey-3121", "", None);
    let p = r.policy(0);
    assert!(
        p.exchange_level.reason.contains("OMNIKEY 3x21"),
        "{}",
        p.exchange_level.reason
    );
    // Alcor AU9540 id: the rate cap row. SCM: the message length row (which does not fire
    // on this firmware's 271).
    let (r, _h) = open("au9560", "", Some(t0_card_with_ta1(0x96)));
    let mut r = r;
    r.power_on(0).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        r.policy(0).fi_di.reason.contains("200000"),
        "{}",
        r.policy(0).fi_di.reason
    );
    let (r, _h) = open("scr3310", "", None);
    assert!(
        r.policy(0)
            .max_message_length
            .reason
            .contains("dwMaxCCIDMessageLength")
    );
    // A model without rows: none added.
    let (r, _h) = open("br301", "", None);
    let p = r.policy(0);
    assert!(
        p.exchange_level.reason.starts_with("dwFeatures"),
        "{}",
        p.exchange_level.reason
    );
}

#[test]
fn messages_longer_than_the_model_takes_are_refused_not_processed() {
    for name in ["scr3310", "acr39u", "omnikey-3121", "br301", "omnikey-5422"] {
        let m = model(name);
        let (mut vr, h) = bare(m);
        h.insert(Box::new(TestCard::t0()));
        let limit = m.descriptor.max_message_length as usize;
        // Exactly the limit: processed. One byte more: bError 1 (dwLength), not processed.
        let fits = Request {
            slot: 0,
            seq: 1,
            body: RequestBody::Escape {
                data: vec![0; limit - 10],
            },
        };
        let r = send_raw(&mut vr, &fits.encode());
        assert_eq!(failed_with(&r), None, "{name}");
        let too_long = RequestBody::XfrBlock {
            bwi: 0,
            level: 0,
            data: vec![0x80; limit - 9],
        };
        let r = direct(&mut vr, too_long);
        assert_eq!(
            failed_with(&r),
            Some(1),
            "{name}: bError 1, the offset of dwLength"
        );
        assert_eq!(
            h.exchanges(),
            0,
            "{name}: the long message was not processed"
        );
        let log = h.requests();
        assert_eq!(
            log.last().map(|s| (s.length, s.error)),
            Some((limit + 1, Some(1)))
        );
    }
}

#[test]
fn automatic_voltage_only_where_the_model_selects_it() {
    // 0x08: bPowerSelect 0 accepted.
    for name in ["scr3310", "omnikey-3121", "au9560"] {
        let m = model(name);
        assert!(m.descriptor.features.contains(Features::AUTO_VOLTAGE));
        let (mut vr, h) = bare(m);
        h.insert(Box::new(TestCard::t0()));
        let r = direct(
            &mut vr,
            RequestBody::IccPowerOn {
                power: PowerSelect::Automatic,
            },
        );
        assert_eq!(failed_with(&r), None, "{name}");
    }
    // Without 0x08: bPowerSelect 0 refused with bError 7; the driver sends 5 V.
    for name in ["idbridge-ct30", "acr39u"] {
        let m = model(name);
        let (mut vr, h) = bare(m);
        h.insert(Box::new(TestCard::t1()));
        let r = direct(
            &mut vr,
            RequestBody::IccPowerOn {
                power: PowerSelect::Automatic,
            },
        );
        assert_eq!(failed_with(&r), Some(7), "{name}: bError 7, bPowerSelect");
        let (mut reader, h) = open(name, "", None);
        reader.power_on(0).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(h.request_summaries()[0], "IccPowerOn 5V", "{name}");
    }
    // SCR3310 has 5 V only (bVoltageSupport 0x01): 3 V refused; with voltage=3 the driver
    // asks for the classes the reader has, 5 V.
    let (mut vr, h) = bare(model("scr3310"));
    h.insert(Box::new(TestCard::t1()));
    let r = direct(
        &mut vr,
        RequestBody::IccPowerOn {
            power: PowerSelect::V3,
        },
    );
    assert_eq!(failed_with(&r), Some(7));
    let (mut reader, h) = open("scr3310", "&voltage=3", None);
    reader.power_on(0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.request_summaries()[0], "IccPowerOn 5V");
}

#[test]
fn a_reader_that_negotiates_itself_refuses_set_parameters() {
    // No model of the table has 0x40; an SCR3310 with it: the driver sends no
    // SetParameters, and one sent anyway is "command not supported" (bError 0).
    let mut m = model("scr3310").clone();
    m.descriptor.features |= Features::AUTO_PPS_PROPRIETARY;
    let cfg = SimReaderConfig::for_model(&m);
    let (vr, h) = VirtualReader::new(cfg.clone(), "sim:ccid?model=scr3310-0x40");
    h.insert(Box::new(TestCard::t1()));
    let config = ReaderConfig {
        quirks: m.quirks(),
        ..ReaderConfig::default()
    };
    let mut reader = CcidReader::new(vr, "sim:ccid", config);
    reader.power_on(0).unwrap_or_else(|e| panic!("{e}"));
    let seq = h.request_summaries();
    assert!(
        !seq.iter().any(|s| s.starts_with("SetParameters")),
        "{seq:?}"
    );
    assert!(!reader.policy(0).set_parameters.value);

    let (mut vr, h) = VirtualReader::new(cfg, "sim:ccid");
    h.insert(Box::new(TestCard::t1()));
    direct(
        &mut vr,
        RequestBody::IccPowerOn {
            power: PowerSelect::Automatic,
        },
    );
    let r = direct(
        &mut vr,
        RequestBody::SetParameters {
            params: ProtocolParams::default_t1(),
        },
    );
    assert_eq!(failed_with(&r), Some(SlotError::NotSupported.code()));
    assert!(h.parameters_set().is_empty());
}

#[test]
fn a_pps_to_a_rate_outside_the_list_is_refused_tpdu() {
    // IDBridge CT30 (TPDU, the host makes the PPS): a card with TA1 0x39 (129032 bit/s at
    // 4.8 MHz) is not in its list; the driver that asked for the list picks 0x35 (103226).
    let (mut r, h) = open("idbridge-ct30", "", Some(t1_card_with_ta1(0x39)));
    r.power_on(0).unwrap_or_else(|e| panic!("{e}"));
    let p = r.policy(0);
    assert_eq!(p.fi_di.value, (3, 5), "{}", p.fi_di.reason);
    assert!(p.pps.value);
    assert_eq!(
        h.request_summaries()[..3],
        [
            "IccPowerOn 5V",
            "XfrBlock [FF 11 35 DB]",
            "SetParameters T=1 Fi/Di 0x35"
        ]
    );
    assert_eq!(h.pps_requests(), 1);

    // A driver without the list asks for 0x39: the reader refuses the PPS, the card stays
    // at the default speed.
    let m = model("idbridge-ct30");
    let (vr, h) = bare(m);
    h.insert(t1_card_with_ta1(0x39));
    let config = ReaderConfig {
        quirks: m.quirks(),
        ..ReaderConfig::default()
    };
    let mut r = CcidReader::new(NoRateList(vr), "sim:ccid", config);
    r.power_on(0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.policy(0).fi_di.value, (3, 9));
    assert_eq!(
        h.request_summaries()[..3],
        [
            "IccPowerOn 5V",
            "XfrBlock [FF 11 39 D7] -> bError 0xFE",
            "SetParameters T=1 Fi/Di 0x11"
        ]
    );
}

#[test]
fn set_parameters_at_a_rate_outside_the_list_is_refused_apdu() {
    // OMNIKEY 3121 (the reader makes the PPS from SetParameters, 0x80): TA1 0xA7 (400000
    // bit/s) is not in its list; with the list the driver sets 0xA6 (200000) at once.
    let (mut r, h) = open("omnikey-3121", "", Some(t0_card_with_ta1(0xA7)));
    r.power_on(0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        h.request_summaries(),
        ["IccPowerOn auto", "SetParameters T=0 Fi/Di 0xA6"]
    );
    // Without the list: 0xA7 refused (bError 10, bmFindexDindex), then the defaults.
    let m = model("omnikey-3121");
    let (vr, h) = bare(m);
    h.insert(t0_card_with_ta1(0xA7));
    let config = ReaderConfig {
        quirks: m.quirks(),
        ..ReaderConfig::default()
    };
    let mut r = CcidReader::new(NoRateList(vr), "sim:ccid", config);
    r.power_on(0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        h.request_summaries(),
        [
            "IccPowerOn auto",
            "SetParameters T=0 Fi/Di 0xA7 -> bError 0x0A",
            "SetParameters T=0 Fi/Di 0x11"
        ]
    );
}

#[test]
fn alcor_rate_cap_quirk_fails_without_the_row() {
    let cmd = apdu_300();
    // With the row (the factory adds it): 0x96 (231250 bit/s at 3.7 MHz) is above the
    // 200000 cap, the driver sets 0x95 (115625) and the exchange works.
    let (mut r, h) = open("au9560", "", Some(t0_card_with_ta1(0x96)));
    r.power_on(0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.request_summaries()[1], "SetParameters T=0 Fi/Di 0x95");
    assert_eq!(r.transmit(0, &cmd).ok(), Some(echo_of(&cmd)));
    // Without the row: the reader takes 0x96 (it is in its list) but cannot run the card
    // that fast: the exchange fails.
    let m = model("au9560");
    let (vr, h) = bare(m);
    h.insert(t0_card_with_ta1(0x96));
    let mut r = CcidReader::new(vr, "sim:ccid", ReaderConfig::default());
    r.power_on(0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.request_summaries()[1], "SetParameters T=0 Fi/Di 0x96");
    let err = r
        .transmit(0, &cmd)
        .expect_err("above the cap the transfer fails");
    assert!(
        matches!(
            err,
            CcidError::Slot {
                error: SlotError::XfrParityError,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn cherry_xx44_forced_level_quirk_fails_without_the_row() {
    let cmd = apdu_300();
    let m = model("cherry-xx44");
    assert_eq!(m.descriptor.exchange_level(), ExchangeLevel::ShortApdu);
    // With the row: extended level, the 300-byte APDU chained and answered.
    let (mut r, _h) = open("cherry-xx44", "", None);
    r.power_on(0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.transmit(0, &cmd).ok(), Some(echo_of(&cmd)));
    // Without it: the short APDU level the descriptor announces; the driver refuses the
    // extended APDU and never sends it.
    let (vr, h) = bare(m);
    h.insert(Box::new(TestCard::t0()));
    let mut r = CcidReader::new(vr, "sim:ccid", ReaderConfig::default());
    r.power_on(0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.policy(0).exchange_level.value, ExchangeLevel::ShortApdu);
    assert!(r.transmit(0, &cmd).is_err());
    assert!(
        !h.request_summaries()
            .iter()
            .any(|s| s.starts_with("XfrBlock")),
        "{:?}",
        h.request_summaries()
    );
}

#[test]
fn omnikey_3121_forced_level_row_is_redundant_on_this_firmware() {
    // Firmware 1.06 announces the extended APDU level itself (dwFeatures 0x000407BA), so
    // the row changes the reason, not the level: nothing can fail without it here.
    let m = model("omnikey-3121");
    let (vr, _h) = bare(m);
    let r = CcidReader::new(vr, "sim:ccid", ReaderConfig::default());
    let p = r.policy(0);
    assert_eq!(p.exchange_level.value, ExchangeLevel::ExtendedApdu);
    assert!(p.exchange_level.reason.starts_with("dwFeatures 0x000407BA"));
}

#[test]
fn class_requests_answer_as_the_dumps_record() {
    for m in MODELS {
        let (mut vr, _h) = bare(m);
        let rates = vr.data_rates();
        let clocks = vr.clock_frequencies();
        for (what, got, answer) in [("rates", rates, m.data_rates), ("clocks", clocks, m.clocks)] {
            match answer {
                ClassAnswer::List(l) => {
                    assert_eq!(got.ok().flatten().as_deref(), Some(l), "{} {what}", m.name);
                }
                ClassAnswer::Empty | ClassAnswer::Stall => {
                    assert_eq!(got.ok(), Some(None), "{} {what}", m.name);
                }
                ClassAnswer::Fails => assert!(got.is_err(), "{} {what}", m.name),
            }
        }
    }
}

#[test]
fn model_uris_parse_and_refuse_what_they_fix() {
    let parse = |s: &str| pos_ccid::sim::SimSpec::parse(&uri(s));
    let spec = parse("sim:ccid?model=idbridge-ct30&card=t1&voltage=5&remove_at=3")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        spec.config.model.as_ref().map(|m| m.name),
        Some("idbridge-ct30")
    );
    assert_eq!(
        spec.protocol,
        pos_hal::CardProtocol::T1,
        "a TPDU model: T=1 cards"
    );
    let e = parse("sim:ccid?model=omnikey-9999").unwrap_err();
    for m in MODELS {
        assert!(e.contains(m.name), "{e}");
        assert!(pos_ccid::sim::SIM_OPTIONS.contains(m.name), "{}", m.name);
    }
    for fixed in ["level=apdu", "pps=host"] {
        let e = parse(&format!("sim:ccid?model=acr39u&{fixed}")).unwrap_err();
        assert!(e.contains("cannot be given with model=acr39u"), "{e}");
        let e = parse(&format!("sim:ccid?{fixed}&model=acr39u")).unwrap_err();
        assert!(e.contains("cannot be given with model=acr39u"), "{e}");
    }
    let e = pos_ccid::open(&uri("sim:ccid?model=nope"), ReaderConfig::default()).unwrap_err();
    assert!(e.to_string().contains("scr3310"), "{e}");
}
