//! Honest terminal data on the simulated lane: the Terminal Capabilities `9F33` the service
//! sends are what the lane has, with and without a configured PIN pad, and the Visa
//! profile card (CVM list: online PIN if supported, else next; signature if supported; no
//! CVM) ends with what the lane can really do. What the card and the issuer see is read
//! from the ICC data (field 55) of the authorisation request.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pos_acquirer::{Acquirer, AcquirerError, Approval, Outcome, Request, Reversal, WireEvent};
use pos_emv::profile_card::Profile;
use pos_emv::tlv;
use pos_terminal::config::PinPadConfig;
use pos_terminal::{Config, NoHook, State, Terminal, TxnRequest};

/// A host that approves every authorisation (with this issuer data in field 55) and keeps
/// the ICC data it was sent.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Vec<u8>>>>, Vec<u8>);

impl Capture {
    fn icc(&self) -> Vec<Vec<u8>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
    fn approve(&self, r: &Request, observe: &mut dyn FnMut(&WireEvent)) -> Outcome {
        observe(&WireEvent::Sent {
            mti: r.operation.mti(),
            stan: r.stan,
            summary: "captured".into(),
        });
        if let Some(icc) = r.card.as_ref().and_then(|c| c.icc_data.as_ref()) {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(icc.clone());
        }
        Outcome::Approved(Approval {
            response_code: "00".into(),
            auth_code: "A1B2C3".into(),
            rrn: "000000000001".into(),
            issuer_data: self.1.clone(),
            elapsed: Duration::from_millis(1),
        })
    }
}

impl Acquirer for Capture {
    fn authorize(&mut self, r: &Request, o: &mut dyn FnMut(&WireEvent)) -> Outcome {
        self.approve(r, o)
    }
    fn pre_authorize(&mut self, r: &Request, o: &mut dyn FnMut(&WireEvent)) -> Outcome {
        self.approve(r, o)
    }
    fn complete(&mut self, r: &Request, o: &mut dyn FnMut(&WireEvent)) -> Outcome {
        self.approve(r, o)
    }
    fn void(&mut self, r: &Request, o: &mut dyn FnMut(&WireEvent)) -> Outcome {
        self.approve(r, o)
    }
    fn refund(&mut self, r: &Request, o: &mut dyn FnMut(&WireEvent)) -> Outcome {
        self.approve(r, o)
    }
    fn reverse(&mut self, _: &Reversal, _: &mut dyn FnMut(&WireEvent)) -> Outcome {
        Outcome::NotSent(AcquirerError::Refused {
            address: "nowhere".into(),
        })
    }
    fn echo(&mut self) -> Result<Duration, AcquirerError> {
        Ok(Duration::from_millis(1))
    }
}

/// What one chip sale of 12.50 sent: `9F33`, `95` (TVR) and `9F34` (CVM results); and the
/// journal's `cvm` and `oda` events.
struct Sent {
    capabilities: Vec<u8>,
    tvr: Vec<u8>,
    cvm_results: Vec<u8>,
    cvm_events: Vec<String>,
    oda_events: Vec<String>,
}

fn sale(tweak: impl FnOnce(&mut Config)) -> Sent {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        journal: Some(dir.path().join("journal.sqlite")),
        card_timeout_ms: 2_000,
        ..Config::default()
    };
    tweak(&mut config);
    let lane = pos_lane::open(&config.devices, Some(Profile::VisaPse.into())).unwrap();
    let host = Capture::default();
    let configured_keys = config.ca_keys.is_some();
    let mut terminal = Terminal::open(config, lane.devices, Box::new(host.clone())).unwrap();
    if !configured_keys {
        terminal.set_ca_keys(pos_emv::profile_card::test_and_sim_ca_keys().unwrap());
    }
    let r = terminal.run(&TxnRequest::sale(1250), &mut NoHook).unwrap();
    assert_eq!(r.state, State::Completed, "{r:?}");
    let icc = host.icc();
    assert_eq!(icc.len(), 1, "one authorisation request");
    let objects = tlv::parse_all(&icc[0]).unwrap();
    let value = |tag: u32| {
        objects
            .iter()
            .find(|o| o.tag == tlv::Tag::new(tag))
            .map(|o| o.value.to_vec())
            .unwrap_or_else(|| panic!("{tag:X} in the ICC data"))
    };
    let events = terminal.journal().events(Some(r.id)).unwrap();
    let of_kind = |kind: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.detail.clone())
            .collect()
    };
    Sent {
        capabilities: value(0x9F33),
        tvr: value(0x95),
        cvm_results: value(0x9F34),
        cvm_events: of_kind("cvm"),
        oda_events: of_kind("oda"),
    }
}

/// TVR byte 3 bit 5: "PIN entry required and PIN pad not present or not working".
const PIN_PAD_NOT_PRESENT: u8 = 0x10;

#[test]
fn without_pin_pad_no_pin_is_offered_and_the_card_ends_with_signature() {
    let sent = sale(|_| {});
    // Stripe reader and printer, no PIN pad: magnetic stripe + IC; signature + no CVM;
    // SDA, DDA, CDA. (Before: E0 F8 C8, keyed entry and every PIN method.)
    assert_eq!(sent.capabilities, [0x60, 0x28, 0xC8]);
    assert_eq!(sent.cvm_results, [0x1E, 0x03, 0x00], "signature, unknown");
    assert_eq!(
        sent.tvr[2] & PIN_PAD_NOT_PRESENT,
        0,
        "TVR {:02X?}",
        sent.tvr
    );
    assert_eq!(sent.tvr[2] & 0x80, 0, "cardholder verification succeeded");
    assert!(sent.cvm_events.is_empty(), "{:?}", sent.cvm_events);
}

#[test]
fn without_a_printer_or_stripe_reader_neither_is_claimed() {
    let sent = sale(|c| {
        c.devices.printer = "none".into();
        c.devices.msr = "none".into();
    });
    assert_eq!(sent.capabilities, [0x20, 0x08, 0xC8]);
    // No signature without paper: no CVM required.
    assert_eq!(sent.cvm_results, [0x1F, 0x00, 0x02]);
    assert_eq!(sent.tvr[2] & PIN_PAD_NOT_PRESENT, 0);
}

#[test]
fn a_configured_pin_pad_claims_pin_and_says_no_pin_was_entered() {
    let sent = sale(|c| {
        c.pin_pad = PinPadConfig {
            device: "serial:/dev/ttyACM1".into(),
            ..PinPadConfig::default()
        };
    });
    assert_eq!(sent.capabilities, [0x60, 0xF8, 0xC8]);
    // The card asks for online PIN; there is no PIN pad driver: the card is told the PIN
    // pad is not working, and its next rule (signature) verifies the cardholder.
    assert_eq!(
        sent.tvr[2] & PIN_PAD_NOT_PRESENT,
        PIN_PAD_NOT_PRESENT,
        "TVR {:02X?}",
        sent.tvr
    );
    assert_eq!(sent.tvr[2] & 0x04, 0, "online PIN never reported entered");
    assert_eq!(sent.cvm_results, [0x1E, 0x03, 0x00]);
    assert_eq!(sent.cvm_events.len(), 1, "{:?}", sent.cvm_events);
    let e = &sent.cvm_events[0];
    assert!(e.contains("EncipheredPinOnline"), "{e}");
    assert!(e.contains("serial:/dev/ttyACM1 has no driver"), "{e}");
    assert!(e.contains("no PIN entered"), "{e}");
    assert!(e.contains("Signature"), "{e}");

    // Online PIN only.
    let sent = sale(|c| {
        c.pin_pad = PinPadConfig {
            device: "serial:/dev/ttyACM1".into(),
            methods: vec![pos_terminal::config::PinMethod::OnlineEnciphered],
        };
    });
    assert_eq!(sent.capabilities, [0x60, 0x68, 0xC8]);
}

#[test]
fn a_missing_ca_key_is_named_in_the_journal_with_how_to_add_it() {
    // A key file with the public test keys only: the Visa profile card's simulation CA
    // (A000000003 / 7E) is not in it.
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("ca-keys.txt");
    std::fs::write(&keys, pos_emv::capk::TEST_CA_KEYS).unwrap();
    let sent = sale(|c| c.ca_keys = Some(keys.clone()));
    // SDA failed (TVR byte 1 bit 7), and the journal says why.
    assert_eq!(sent.tvr[0] & 0x40, 0x40, "TVR {:02X?}", sent.tvr);
    assert_eq!(sent.oda_events.len(), 1, "{:?}", sent.oda_events);
    let e = &sent.oda_events[0];
    assert!(
        e.contains("no CA public key for RID A000000003 index 7E"),
        "{e}"
    );
    assert!(e.contains(&keys.display().to_string()), "{e}");
    assert!(e.contains("`A000000003 7E EXPONENT MODULUS`"), "{e}");
    // With the keys it needs, nothing to say.
    let sent = sale(|_| {});
    assert!(sent.oda_events.is_empty(), "{:?}", sent.oda_events);
    // A key file that does not load stops the lane from opening, naming the file.
    let d2 = tempfile::tempdir().unwrap();
    let config = Config {
        journal: Some(d2.path().join("journal.sqlite")),
        ca_keys: Some(d2.path().join("missing.txt")),
        ..Config::default()
    };
    let lane = pos_lane::open(&config.devices, Some(Profile::VisaPse.into())).unwrap();
    let Err(err) = Terminal::open(config, lane.devices, Box::new(Capture::default())) else {
        panic!("the lane opened without its CA key file");
    };
    assert!(err.to_string().contains("missing.txt"), "{err}");
}

/// A host whose field 55 is malformed (a script template cut short after good issuer
/// authentication data): the sale goes on with what was well formed, and the journal says
/// what was wrong instead of dropping it silently.
#[test]
fn a_malformed_field_55_from_the_host_is_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        journal: Some(dir.path().join("journal.sqlite")),
        card_timeout_ms: 2_000,
        ..Config::default()
    };
    let lane = pos_lane::open(&config.devices, Some(Profile::VisaPse.into())).unwrap();
    let host = Capture(Arc::default(), vec![0x72, 0x09, 0x9F, 0x18, 0x04, 0x00]);
    let mut terminal = Terminal::open(config, lane.devices, Box::new(host)).unwrap();
    terminal.set_ca_keys(pos_emv::profile_card::test_and_sim_ca_keys().unwrap());
    let r = terminal.run(&TxnRequest::sale(1250), &mut NoHook).unwrap();
    assert!(r.state.is_resting(), "{r:?}");
    let events = terminal.journal().events(Some(r.id)).unwrap();
    let host: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "host")
        .map(|e| e.detail.as_str())
        .collect();
    assert_eq!(host.len(), 1, "{events:?}");
    assert!(host[0].contains("field 55) is malformed"), "{}", host[0]);
}
