//! `sim:ccid` URIs: [`SimSpec`] and the cards they name.

use pos_hal::{CardCatalog, CardProtocol, CardSpec, VirtualCard};

use super::{SimFaults, SimLevel, SimReaderConfig, TestCard, descriptor_for};
use crate::descriptor::ExchangeLevel;

/// The `sim:ccid` options, for help texts and error messages: every accepted value.
pub const SIM_OPTIONS: &str = "model=NAME (a real reader: scr3310, utrust-2700r, omnikey-3121, \
omnikey-5422, idbridge-ct30, acr39u, cherry-st1144, cherry-xx44, br301, au9560; not with level= or pps=), \
level=apdu|t0|t1, interrupt=on|off, pps=reader|host, \
voltage=auto|5|3|1.8, \
card=NAME|none, script=FILE, remove_at=N, parity_error_at=N, wtx=N, time_extensions=N, \
fault=mute-after-atr|refuse-pps|removal-answers-empty (several: comma-separated)";

/// The bare test cards of this crate, by name (`card=t0`, `card=t1`, `card=mute`).
pub const TEST_CARDS: [&str; 3] = ["t0", "t1", "mute"];

/// The card a `sim:ccid` URI asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimCard {
    /// No `card` or `script` option: the opener's default card ([`TestCard`], or the
    /// default of the [`CardCatalog`] it was given).
    Default,
    /// `card=none`: the reader starts empty.
    None,
    /// `card=NAME` or `script=FILE`.
    Spec(CardSpec),
}

/// A `sim:ccid` URI, read: the virtual reader's build, its faults, and its card.
#[derive(Debug, Clone)]
pub struct SimSpec {
    /// How the reader is built (`level`, `interrupt`, `pps`).
    pub config: SimReaderConfig,
    /// Faults (`remove_at`, `parity_error_at`, `wtx`, `time_extensions`, `fault`).
    pub faults: SimFaults,
    /// The card it starts with (`card`, `script`).
    pub card: SimCard,
    /// The protocol cards made for it offer: T=1 for `level=t1`, else T=0. Bare test cards
    /// named `t0` or `t1` keep their own.
    pub protocol: CardProtocol,
}

impl SimSpec {
    /// Read a `sim:ccid` URI's options ([`SIM_OPTIONS`]).
    ///
    /// Errors: a message naming the bad option and listing every accepted one.
    pub fn parse(uri: &pos_link::DeviceUri) -> Result<SimSpec, String> {
        let mut spec = SimSpec {
            config: SimReaderConfig::default(),
            faults: SimFaults::default(),
            card: SimCard::Default,
            protocol: CardProtocol::T0,
        };
        let number = |k: &str, v: &str| -> Result<u32, String> {
            v.parse()
                .map_err(|_| format!("{uri}: {k}={v:?} is not a number (accepted: {SIM_OPTIONS})"))
        };
        let small = |k: &str, v: &str| -> Result<u8, String> {
            v.parse().map_err(|_| {
                format!("{uri}: {k}={v:?} is not a number from 0 to 255 (accepted: {SIM_OPTIONS})")
            })
        };
        let mut card_given = false;
        let mut built: Option<&str> = None;
        for (k, v) in uri.options() {
            if matches!(k.as_str(), "level" | "pps") && built.is_none() {
                built = Some(k.as_str());
            }
            match (k.as_str(), v.as_str()) {
                ("model", name) => match super::model(name) {
                    Some(m) => spec.config.model = Some(m.clone()),
                    None => {
                        return Err(format!(
                            "{uri}: unknown reader model {name:?}: accepted model={}",
                            super::model_names()
                        ));
                    }
                },
                ("level", "apdu") => spec.config.level = SimLevel::Apdu,
                ("level", "t1") => spec.config.level = SimLevel::TpduT1,
                ("level", "t0") => spec.config.level = SimLevel::TpduT0,
                ("interrupt", "on") => spec.config.interrupt = true,
                ("interrupt", "off") => spec.config.interrupt = false,
                ("pps", "reader") => spec.config.auto_pps = true,
                ("pps", "host") => spec.config.auto_pps = false,
                // The driver's setting (ReaderConfig::voltage), read by the opener.
                ("voltage", v) => {
                    crate::policy::VoltageSetting::parse(v).map_err(|e| format!("{uri}: {e}"))?;
                }
                ("card" | "script", v) if card_given => {
                    return Err(format!(
                        "{uri}: {k}={v}: the card is already given (one card= or script= option)"
                    ));
                }
                ("card", "") | ("script", "") => {
                    return Err(format!(
                        "{uri}: {k}= needs a value (accepted: {SIM_OPTIONS})"
                    ));
                }
                ("card", "none") => {
                    card_given = true;
                    spec.card = SimCard::None;
                }
                ("card", name) => {
                    card_given = true;
                    spec.card = SimCard::Spec(CardSpec::Named(name.to_string()));
                }
                ("script", path) => {
                    card_given = true;
                    spec.card = SimCard::Spec(CardSpec::Script(path.into()));
                }
                ("remove_at", n) => spec.faults.remove_at_exchange = Some(number(k, n)?),
                ("parity_error_at", n) => {
                    spec.faults.parity_error_at_exchange = Some(number(k, n)?)
                }
                ("wtx", n) => spec.faults.wtx_storm = small(k, n)?,
                ("time_extensions", n) => spec.faults.time_extensions = small(k, n)?,
                ("fault", list) => {
                    for fault in list.split(',') {
                        match fault.trim() {
                            "mute-after-atr" => spec.faults.mute_after_atr = true,
                            "refuse-pps" => spec.faults.refuse_pps = true,
                            "removal-answers-empty" => spec.faults.removal_answers_empty = true,
                            other => {
                                return Err(format!(
                                    "{uri}: unknown fault {other:?} (fault=mute-after-atr|refuse-pps|removal-answers-empty)"
                                ));
                            }
                        }
                    }
                }
                (k, v) => {
                    return Err(format!(
                        "{uri}: unknown option {k}={v} (accepted: {SIM_OPTIONS})"
                    ));
                }
            }
        }
        if let (Some(m), Some(k)) = (&spec.config.model, built) {
            return Err(format!(
                "{uri}: {k}= cannot be given with model={}: the model's descriptor fixes its \
                 level and PPS (drop {k}=)",
                m.name
            ));
        }
        if spec.config.model.is_some() {
            spec.config = spec.config.resolved();
        }
        if spec.config.level == SimLevel::TpduT1 {
            spec.protocol = CardProtocol::T1;
        }
        Ok(spec)
    }

    /// The card to insert at start, made fresh: this crate's test cards by name, the rest
    /// from `catalog` (e.g. pos-emv's EMV cards); `None` for `card=none`.
    ///
    /// Errors: a message naming the card and listing every accepted name, or the catalog's
    /// message (a script file that cannot be read).
    pub fn make_card(
        &self,
        catalog: Option<&dyn CardCatalog>,
    ) -> Result<Option<Box<dyn VirtualCard>>, String> {
        match &self.card {
            SimCard::None => Ok(None),
            SimCard::Spec(spec) => make_card(spec, self.protocol, catalog).map(Some),
            SimCard::Default => match catalog.and_then(|c| c.default_card()) {
                Some(name) => make_card(&CardSpec::Named(name), self.protocol, catalog).map(Some),
                None => Ok(Some(Box::new(match self.protocol {
                    CardProtocol::T0 => TestCard::t0(),
                    CardProtocol::T1 => TestCard::t1(),
                }))),
            },
        }
    }
}

/// A fresh card for `spec`: this crate's bare test cards ([`TEST_CARDS`]) by name, anything
/// else from `catalog`.
///
/// Errors: a message naming the card and listing every accepted name (this crate's and the
/// catalog's), or saying which catalog a script or a named card needs when there is none.
pub fn make_card(
    spec: &CardSpec,
    protocol: CardProtocol,
    catalog: Option<&dyn CardCatalog>,
) -> Result<Box<dyn VirtualCard>, String> {
    if let CardSpec::Named(name) = spec {
        match name.as_str() {
            "t0" => return Ok(Box::new(TestCard::t0())),
            "t1" => return Ok(Box::new(TestCard::t1())),
            "mute" => {
                let mut c = match protocol {
                    CardProtocol::T0 => TestCard::t0(),
                    CardProtocol::T1 => TestCard::t1(),
                };
                c.mute = true;
                return Ok(Box::new(c));
            }
            _ => {}
        }
    }
    if let Some(made) = catalog.and_then(|c| c.make(spec, protocol)) {
        return made;
    }
    let mut names: Vec<String> = TEST_CARDS.iter().map(|n| n.to_string()).collect();
    names.extend(catalog.map(|c| c.names()).unwrap_or_default());
    names.push("none".into());
    match (spec, catalog) {
        (CardSpec::Script(path), Some(c)) if c.plays_scripts() => Err(format!(
            "script={}: the card catalog could not play it",
            path.display()
        )),
        (CardSpec::Script(path), _) => Err(format!(
            "script={}: recorded sessions are played by an EMV card catalog, which this \
             reader was not given (pos_ccid::ReaderConfig::cards = pos_emv::sim::EmvCards)",
            path.display()
        )),
        (CardSpec::Named(name), None) => Err(format!(
            "unknown card {name:?}: accepted card={} (EMV cards such as visa come with an \
             EMV card catalog: pos_ccid::ReaderConfig::cards = pos_emv::sim::EmvCards), or script=FILE",
            names.join("|")
        )),
        (CardSpec::Named(name), Some(_)) => Err(format!(
            "unknown card {name:?}: accepted card={}, or script=FILE",
            names.join("|")
        )),
    }
}

/// Level as the descriptor states it, for tests.
pub fn level_of(cfg: &SimReaderConfig) -> ExchangeLevel {
    descriptor_for(cfg).exchange_level()
}
