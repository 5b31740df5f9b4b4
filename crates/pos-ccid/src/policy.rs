//! How the driver talks to one reader: every choice the CCID class descriptor, the card's
//! ATR and the reader's known quirks call for, each with its reason.
//!
//! [`ReaderPolicy::decide`] is a pure function (no USB), so it is tested against real
//! readers' descriptors; the driver asks it at open and at each power-on and does what it
//! says. The rules follow the CCID specification 1.1 (dwFeatures, section 5.1) and, where
//! the specification leaves room, what libccid (the reference driver,
//! <https://github.com/LudovicRousseau/CCID>) does; the reasons name the rule.

use std::fmt;

use serde::Serialize;

use crate::atr::{self, ParsedAtr};
use crate::descriptor::{CcidDescriptor, ExchangeLevel, Features, Voltages};
use crate::message::{HEADER_LEN, PowerSelect};
use crate::quirks::{Quirk, QuirkKind};
use crate::reader::ReaderConfig;

/// The `voltage=` setting: which card voltage to apply first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum VoltageSetting {
    /// The reader's automatic selection when it has one (dwFeatures 0x08 or 0x04), else
    /// class A (5 V) first, as EMV cards are, then 3 V and 1.8 V.
    #[default]
    Auto,
    /// 5 V (class A) only, or the next class the reader has.
    V5,
    /// 3 V (class B) first, then 5 V.
    V3,
    /// 1.8 V (class C) first, then 3 V and 5 V (ISO/IEC 7816-3 6.2.4: lowest class first).
    V1_8,
}

impl VoltageSetting {
    /// Every accepted value, for help texts and errors.
    pub const ACCEPTED: &'static str = "auto|5|3|1.8";

    /// Reads `auto`, `5`, `3` or `1.8`.
    ///
    /// Errors: a message naming the value and the accepted ones.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "auto" => Ok(VoltageSetting::Auto),
            "5" => Ok(VoltageSetting::V5),
            "3" => Ok(VoltageSetting::V3),
            "1.8" => Ok(VoltageSetting::V1_8),
            other => Err(format!(
                "voltage={other:?}: accepted voltage={}",
                Self::ACCEPTED
            )),
        }
    }

    /// As written in a URI.
    pub fn name(self) -> &'static str {
        match self {
            VoltageSetting::Auto => "auto",
            VoltageSetting::V5 => "5",
            VoltageSetting::V3 => "3",
            VoltageSetting::V1_8 => "1.8",
        }
    }
}

/// One choice and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision<T> {
    /// What was chosen.
    pub value: T,
    /// Why: the descriptor field, ATR byte, setting or quirk (with its source) behind it.
    pub reason: String,
}

fn decision<T>(value: T, reason: impl Into<String>) -> Decision<T> {
    Decision {
        value,
        reason: reason.into(),
    }
}

/// The escape-and-retry of a power-on a quirk calls for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PowerOnRetry {
    /// The bError of the failed IccPowerOn that calls for it.
    pub error: u8,
    /// The Escape command to send before powering on once more.
    pub escape: Vec<u8>,
}

/// Every choice for one reader (and, after power-on, one card).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReaderPolicy {
    /// Why the reader (or the card in it) cannot be used, if so.
    pub refused: Option<String>,
    /// The exchange level the driver works at.
    pub exchange_level: Decision<ExchangeLevel>,
    /// bPowerSelect values to try in turn at power-on.
    pub voltages: Decision<Vec<PowerSelect>>,
    /// An Escape to send when power-on fails with a given error, then power on again.
    pub power_on_retry: Decision<Option<PowerOnRetry>>,
    /// Whether the host sends SetParameters after power-on.
    pub set_parameters: Decision<bool>,
    /// Whether the host sends a PPS request to the card (through XfrBlock).
    pub pps: Decision<bool>,
    /// The Fi/Di indices the host sets (in the PPS request and in SetParameters).
    pub fi_di: Decision<(u8, u8)>,
    /// The IFSD the host announces and takes (T=1 at TPDU level).
    pub ifsd: Decision<u8>,
    /// Whether the host sends S(IFS request) first (T=1 at TPDU level).
    pub ifsd_request: Decision<bool>,
    /// The longest message the driver sends, header included.
    pub max_message_length: Decision<u32>,
    /// The most INF bytes the host puts in one T=1 block it sends (TPDU level, T=1): the
    /// card's IFSC, or less when a block of IFSC bytes would not fit in one message; longer
    /// commands are chained in blocks this size. 0 when the host runs no T=1.
    pub t1_send_block: Decision<u8>,
    /// Whether extended-length APDUs can be sent.
    pub extended_apdu: Decision<bool>,
    /// What the USB transport must know (zero-length packets, where the descriptor is).
    pub transport_notes: Vec<String>,
}

impl ReaderPolicy {
    /// Decide everything for the reader with `descriptor`, the data rates its
    /// GET_DATA_RATES request listed (`None` when it has no list), the card's `atr` (`None`
    /// before power-on), the reader's `quirks` ([`crate::quirks::lookup`]) and the driver's
    /// `config` (voltage, IFSD).
    pub fn decide(
        descriptor: &CcidDescriptor,
        data_rates: Option<&[u32]>,
        atr: Option<&ParsedAtr>,
        quirks: &[Quirk],
        config: &ReaderConfig,
    ) -> ReaderPolicy {
        let d = descriptor;
        let f = d.features;
        let exchange_level = exchange_level(d, quirks);
        let level = exchange_level.value;
        let protocol = atr.map(ParsedAtr::first_protocol);
        let mut refused = refusal(level, quirks);

        let set_parameters = if f.contains(Features::AUTO_PPS_PROPRIETARY) {
            decision(
                false,
                "dwFeatures 0x40: the reader negotiates the card's parameters itself (CCID 1.1 \
                 5.1; libccid IFDHSetProtocolParameters() skips SetParameters)",
            )
        } else if f.contains(Features::AUTO_PARAMETERS) {
            decision(
                true,
                "dwFeatures 0x02 (automatic parameter configuration) without 0x40: the host \
                 still sets the parameters it negotiated (libccid IFDHSetProtocolParameters() \
                 sends SetParameters unless 0x40)",
            )
        } else {
            decision(
                true,
                "no automatic parameter configuration (dwFeatures 0x02, 0x40): the host sets \
                 the parameters from the ATR",
            )
        };

        let (rate, card_refusal) = match atr {
            Some(atr) => choose_rate(d, data_rates, atr, quirks),
            None => (
                decision(
                    atr::DEFAULT_FI_DI,
                    "no card yet: the default Fi/Di 1/1 (372/1)",
                ),
                None,
            ),
        };
        if refused.is_none() {
            refused = card_refusal;
        }
        let (pps, fi_di) = pps_decision(d, level, atr, quirks, rate);

        let voltages = voltages(d, config);
        let power_on_retry = quirks
            .iter()
            .find_map(|q| match q.kind {
                QuirkKind::PowerOnEscapeRetry { error, escape } => Some(decision(
                    Some(PowerOnRetry {
                        error,
                        escape: escape.to_vec(),
                    }),
                    format!(
                        "{}: on power-on error 0x{error:02X}, Escape {:02X?} and power on once \
                         more ({})",
                        q.model, escape, q.source
                    ),
                )),
                _ => None,
            })
            .unwrap_or_else(|| {
                decision(None, "no quirk: a failed power-on tries the next voltage")
            });

        let max_message_length = max_message_length(d, quirks);
        let payload = usize::try_from(max_message_length.value)
            .unwrap_or(usize::MAX)
            .saturating_sub(HEADER_LEN);
        let (ifsd, ifsd_request) = ifsd(d, level, protocol, payload, quirks, config);
        let extended_apdu = extended_apdu(level, protocol);
        let t1_send_block = t1_send_block(level, protocol, atr, payload, max_message_length.value);

        let transport_notes = quirks
            .iter()
            .filter_map(|q| match q.kind {
                QuirkKind::ZeroLengthPacket => Some(format!(
                    "{}: may send zero-length packets; drop one before each command ({})",
                    q.model, q.source
                )),
                QuirkKind::DescriptorOnEndpoint => Some(format!(
                    "{}: the CCID descriptor follows the last endpoint ({})",
                    q.model, q.source
                )),
                _ => None,
            })
            .collect();

        ReaderPolicy {
            refused,
            exchange_level,
            voltages,
            power_on_retry,
            set_parameters,
            pps,
            fi_di,
            ifsd,
            ifsd_request,
            max_message_length,
            t1_send_block,
            extended_apdu,
            transport_notes,
        }
    }

    /// The largest abData a message may carry: the max message length less the header.
    pub fn max_payload(&self) -> usize {
        usize::try_from(self.max_message_length.value)
            .unwrap_or(usize::MAX)
            .saturating_sub(HEADER_LEN)
    }

    /// Every decision as (name, value, reason), in the order `posctl reader info` prints.
    pub fn rows(&self) -> Vec<(&'static str, String, &str)> {
        let volts = self
            .voltages
            .value
            .iter()
            .map(|v| power_name(*v))
            .collect::<Vec<_>>()
            .join(", then ");
        let retry = match &self.power_on_retry.value {
            Some(r) => format!("escape {:02X?} on error 0x{:02X}", r.escape, r.error),
            None => "no".into(),
        };
        let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
        vec![
            (
                "exchange level",
                self.exchange_level.value.name().to_string(),
                self.exchange_level.reason.as_str(),
            ),
            ("voltage", volts, self.voltages.reason.as_str()),
            ("power-on retry", retry, self.power_on_retry.reason.as_str()),
            (
                "SetParameters",
                yes(self.set_parameters.value),
                self.set_parameters.reason.as_str(),
            ),
            (
                "PPS by the host",
                yes(self.pps.value),
                self.pps.reason.as_str(),
            ),
            (
                "Fi/Di",
                format!("{}/{}", self.fi_di.value.0, self.fi_di.value.1),
                self.fi_di.reason.as_str(),
            ),
            (
                "IFSD",
                self.ifsd.value.to_string(),
                self.ifsd.reason.as_str(),
            ),
            (
                "S(IFS request)",
                yes(self.ifsd_request.value),
                self.ifsd_request.reason.as_str(),
            ),
            (
                "max message length",
                self.max_message_length.value.to_string(),
                self.max_message_length.reason.as_str(),
            ),
            (
                "T=1 block sent",
                self.t1_send_block.value.to_string(),
                self.t1_send_block.reason.as_str(),
            ),
            (
                "extended APDUs",
                yes(self.extended_apdu.value),
                self.extended_apdu.reason.as_str(),
            ),
        ]
    }
}

impl fmt::Display for ReaderPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(r) = &self.refused {
            writeln!(f, "refused: {r}")?;
        }
        for (name, value, reason) in self.rows() {
            writeln!(f, "{name}: {value}\n  because {reason}")?;
        }
        for n in &self.transport_notes {
            writeln!(f, "transport: {n}")?;
        }
        Ok(())
    }
}

/// `5 V`, `3 V`, `1.8 V` or `automatic`.
pub fn power_name(p: PowerSelect) -> &'static str {
    match p {
        PowerSelect::Automatic => "automatic",
        PowerSelect::V5 => "5 V",
        PowerSelect::V3 => "3 V",
        PowerSelect::V1_8 => "1.8 V",
    }
}

fn exchange_level(d: &CcidDescriptor, quirks: &[Quirk]) -> Decision<ExchangeLevel> {
    let announced = d.exchange_level();
    for q in quirks {
        if let QuirkKind::ExchangeLevel(level) = q.kind {
            return decision(
                level,
                format!(
                    "{}: the firmware works at {} level although dwFeatures says {} ({})",
                    q.model,
                    level.name(),
                    announced.name(),
                    q.source
                ),
            );
        }
    }
    decision(
        announced,
        format!(
            "dwFeatures 0x{:08X}: {} level",
            d.features.bits(),
            announced.name()
        ),
    )
}

fn refusal(level: ExchangeLevel, quirks: &[Quirk]) -> Option<String> {
    for q in quirks {
        if let QuirkKind::MinimumFirmware(min) = q.kind {
            return Some(format!(
                "{}: firmware older than {:X}.{:02X} is known broken; update the reader's \
                 firmware or use another reader ({})",
                q.model,
                min >> 8,
                min & 0xFF,
                q.source
            ));
        }
    }
    (level == ExchangeLevel::Character).then(|| {
        "character-level reader (dwFeatures has no TPDU or APDU level bit): not supported, \
         the driver needs TPDU or APDU level"
            .to_string()
    })
}

/// Rates within 2 bit/s are the same rate (the card's is computed with integer division;
/// libccid's find_baud_rate() allows the same).
fn same_rate(a: u64, b: u64) -> bool {
    a.abs_diff(b) < 2
}

/// The fastest Fi/Di the card and reader share, never below the default rate, only from the
/// reader's list when it has one; and, for a card in specific mode (TA2) at a rate the reader
/// cannot do, why the card is refused.
fn choose_rate(
    d: &CcidDescriptor,
    data_rates: Option<&[u32]>,
    atr: &ParsedAtr,
    quirks: &[Quirk],
) -> (Decision<(u8, u8)>, Option<String>) {
    let default = atr::DEFAULT_FI_DI;
    let Some(ta1) = atr.ta1() else {
        return (
            decision(default, "no TA1: the card's default Fi/Di 1/1"),
            None,
        );
    };
    let clock = d.default_clock_khz.max(1);
    let default_rate = atr::data_rate_bps(372, 1, clock);
    let cap_quirk = quirks.iter().find_map(|q| match q.kind {
        QuirkKind::MaxDataRate(r) => Some((r, q)),
        _ => None,
    });
    let mut max = u64::from(d.max_data_rate_bps);
    let mut limit = format!("dwMaxDataRate {} bps", d.max_data_rate_bps);
    if let Some((cap, q)) = cap_quirk {
        if u64::from(cap) < max {
            max = u64::from(cap);
            limit = format!("{} caps the rate at {cap} bps ({})", q.model, q.source);
        }
    }
    let list: Option<Vec<u64>> = data_rates.map(|l| {
        l.iter()
            .map(|&r| u64::from(r))
            .filter(|&r| r <= max + 1)
            .collect()
    });
    let fits = |rate: u64| {
        rate > default_rate
            && rate <= max + 2
            && list
                .as_ref()
                .is_none_or(|l| l.iter().any(|&r| same_rate(r, rate)))
    };
    let card = (ta1 >> 4, ta1 & 0x0F);
    let specific = atr.specific_mode().is_some();
    let (Some(f), Some(card_d), Some(fmax)) = (
        atr::fi_value(card.0),
        atr::di_value(card.1),
        atr::fmax_khz(card.0),
    ) else {
        return (
            decision(
                default,
                format!("TA1 0x{ta1:02X} has reserved indices: the defaults"),
            ),
            None,
        );
    };
    let card_rate = atr::data_rate_bps(f, card_d, clock);
    let listed = match &list {
        Some(l) => format!(", the reader's data rate list {l:?}"),
        None => String::new(),
    };
    if card_rate <= default_rate || card == default {
        return (
            decision(
                default,
                format!(
                    "the card's TA1 0x{ta1:02X} ({card_rate} bps) is not faster than the default \
                     {default_rate} bps: the driver never goes below the default"
                ),
            ),
            None,
        );
    }
    if clock > fmax {
        return (
            decision(
                default,
                format!(
                    "the reader's clock {clock} kHz exceeds the card's fmax {fmax} kHz for Fi \
                     {f}: the defaults"
                ),
            ),
            None,
        );
    }
    if fits(card_rate) {
        return (
            decision(
                card,
                format!(
                    "the card's TA1 0x{ta1:02X}: {card_rate} bps at {clock} kHz, within {limit}{listed}"
                ),
            ),
            None,
        );
    }
    if specific {
        // TA2: the card works only at TA1's rate; no PPS can lower it.
        return (
            decision(
                default,
                format!(
                    "the card is in specific mode (TA2) at {card_rate} bps, which the reader \
                     cannot do ({limit}{listed})"
                ),
            ),
            Some(format!(
                "the card is in specific mode (TA2) at {card_rate} bps (TA1 0x{ta1:02X}), \
                 beyond this reader ({limit}{listed}); libccid refuses such a card too \
                 (IFDHSetProtocolParameters())"
            )),
        );
    }
    // Slower power-of-two D (indices 1 to 7) with the card's F, fastest first: what libccid
    // reaches by lowering TA1's Di.
    let mut smaller: Vec<(u8, u64)> = (1..=7u8)
        .filter_map(|i| {
            let di = atr::di_value(i)?;
            (di < card_d).then(|| (i, atr::data_rate_bps(f, di, clock)))
        })
        .collect();
    smaller.sort_by_key(|s| std::cmp::Reverse(s.1));
    if let Some(&(di, rate)) = smaller.iter().find(|(_, r)| fits(*r)) {
        return (
            decision(
                (card.0, di),
                format!(
                    "the card's TA1 0x{ta1:02X} ({card_rate} bps) is beyond {limit}{listed}: \
                     the fastest rate both can do, {rate} bps (libccid lowers TA1 the same way)"
                ),
            ),
            None,
        );
    }
    (
        decision(
            default,
            format!(
                "no rate above the default {default_rate} bps both the card (TA1 \
                 0x{ta1:02X}) and the reader ({limit}{listed}) can do: the defaults"
            ),
        ),
        None,
    )
}

/// Whether the host sends PPS, and the Fi/Di it sets in the end.
fn pps_decision(
    d: &CcidDescriptor,
    level: ExchangeLevel,
    atr: Option<&ParsedAtr>,
    quirks: &[Quirk],
    rate: Decision<(u8, u8)>,
) -> (Decision<bool>, Decision<(u8, u8)>) {
    let f = d.features;
    let default = atr::DEFAULT_FI_DI;
    if f.contains(Features::AUTO_PPS_PROPRIETARY) {
        return (
            decision(
                false,
                "dwFeatures 0x40: the reader negotiates with the card itself (libccid skips PPS \
                 and SetParameters)",
            ),
            rate,
        );
    }
    if f.contains(Features::AUTO_PPS_CURRENT) {
        return (
            decision(
                false,
                "dwFeatures 0x80: the reader makes the PPS from the parameters the host sets \
                 with SetParameters",
            ),
            rate,
        );
    }
    if let Some(q) = quirks.iter().find(|q| q.kind == QuirkKind::NoPps) {
        return (
            decision(
                false,
                format!("{}: PPS is not supported ({})", q.model, q.source),
            ),
            decision(
                default,
                format!("{}: no PPS, the card keeps its default speed", q.model),
            ),
        );
    }
    let Some(atr) = atr else {
        return (decision(false, "no card yet"), rate);
    };
    if atr.specific_mode().is_some() {
        return (
            decision(
                false,
                "TA2 present: the card is in specific mode, PPS is not allowed (ISO/IEC \
                 7816-3 6.3.1)",
            ),
            rate,
        );
    }
    if level.is_apdu() {
        return (
            decision(
                false,
                "APDU level without automatic PPS (0x40, 0x80): the host cannot reach the card \
                 for a PPS, the card stays at its default speed",
            ),
            decision(
                default,
                "APDU level reader that does not make the PPS: the default speed",
            ),
        );
    }
    if rate.value == default {
        return (decision(false, "the default speed: no PPS needed"), rate);
    }
    (
        decision(
            true,
            "TPDU level, no automatic PPS (dwFeatures lacks 0x40 and 0x80), TA2 absent and a \
             faster speed to ask for: the host sends the PPS request (libccid PPS_Exchange())",
        ),
        rate,
    )
}

fn voltages(d: &CcidDescriptor, config: &ReaderConfig) -> Decision<Vec<PowerSelect>> {
    let automatic = d.features.contains(Features::AUTO_VOLTAGE)
        || d.features.contains(Features::AUTO_ACTIVATION);
    let has = |p: PowerSelect| {
        d.voltages.is_empty()
            || match p {
                PowerSelect::V5 => d.voltages.contains(Voltages::V5),
                PowerSelect::V3 => d.voltages.contains(Voltages::V3),
                PowerSelect::V1_8 => d.voltages.contains(Voltages::V1_8),
                PowerSelect::Automatic => true,
            }
    };
    let (order, why): (&[PowerSelect], &str) = match config.voltage {
        VoltageSetting::Auto if automatic => {
            let bit = if d.features.contains(Features::AUTO_VOLTAGE) {
                "0x08 automatic voltage selection"
            } else {
                "0x04 automatic activation"
            };
            return decision(
                vec![PowerSelect::Automatic],
                format!(
                    "voltage=auto and dwFeatures {bit}: the reader chooses (bPowerSelect 0, as \
                     libccid CmdPowerOn() does)"
                ),
            );
        }
        VoltageSetting::Auto => (
            &[PowerSelect::V5, PowerSelect::V3, PowerSelect::V1_8],
            "voltage=auto on a reader without automatic voltage selection: class A (5 V) \
             first, as EMV cards are and as libccid starts by default, then the lower classes",
        ),
        VoltageSetting::V5 => (
            &[PowerSelect::V5, PowerSelect::V3, PowerSelect::V1_8],
            "voltage=5: class A (5 V), then the lower classes if the reader lacks it or the card \
             does not answer",
        ),
        VoltageSetting::V3 => (
            &[PowerSelect::V3, PowerSelect::V5],
            "voltage=3: class B (3 V), then class A",
        ),
        VoltageSetting::V1_8 => (
            &[PowerSelect::V1_8, PowerSelect::V3, PowerSelect::V5],
            "voltage=1.8: class C first, then B and A (ISO/IEC 7816-3 6.2.4: lowest class first)",
        ),
    };
    let mut seq: Vec<PowerSelect> = order.iter().copied().filter(|p| has(*p)).collect();
    if seq.is_empty() {
        seq.push(PowerSelect::Automatic);
    }
    let extra = if d.voltages.is_empty() {
        " (bVoltageSupport is 0: every class tried)".to_string()
    } else if seq.len() < order.len() {
        format!(
            " (bVoltageSupport 0x{:02X}: only the classes the reader has)",
            d.voltages.bits()
        )
    } else {
        String::new()
    };
    let explicit = if automatic && config.voltage != VoltageSetting::Auto {
        "; the reader could choose itself but the setting asks for a class"
    } else {
        ""
    };
    decision(seq, format!("{why}{extra}{explicit}"))
}

fn max_message_length(d: &CcidDescriptor, quirks: &[Quirk]) -> Decision<u32> {
    for q in quirks {
        if let QuirkKind::MessageLength { reported, actual } = q.kind {
            if d.max_message_length == reported {
                return decision(
                    actual,
                    format!(
                        "{}: dwMaxCCIDMessageLength says {reported} but the reader takes {actual} \
                         ({})",
                        q.model, q.source
                    ),
                );
            }
        }
    }
    decision(
        d.max_message_length,
        format!(
            "dwMaxCCIDMessageLength: every message, header included, within {} bytes",
            d.max_message_length
        ),
    )
}

/// The largest INF of a T=1 block the host sends: what fits in one message (10-byte
/// header, 3-byte prologue, 1-byte LRC or 2-byte CRC), and not more than the card's IFSC.
fn t1_send_block(
    level: ExchangeLevel,
    protocol: Option<u8>,
    atr: Option<&ParsedAtr>,
    payload: usize,
    max_message_length: u32,
) -> Decision<u8> {
    if level.is_apdu() {
        return decision(0, "APDU level: the reader runs T=1");
    }
    if protocol == Some(0) {
        return decision(0, "a T=0 card: no T=1 blocks");
    }
    let epilogue = match atr.map(ParsedAtr::t1_checksum) {
        Some(crate::t1::Checksum::Crc) => 2,
        Some(crate::t1::Checksum::Lrc) => 1,
        // No card yet: room for the longer one.
        None => 2,
    };
    let room = payload.saturating_sub(3 + epilogue);
    let ifsc = atr.map(ParsedAtr::ifsc);
    let room_u8 = u8::try_from(room.min(254)).unwrap_or(254).max(1);
    match ifsc {
        Some(ifsc) if ifsc <= room_u8 => decision(
            ifsc,
            format!(
                "the card's IFSC {ifsc} (a block that size fits in {max_message_length}-byte messages)"
            ),
        ),
        Some(ifsc) => decision(
            room_u8,
            format!(
                "the card's IFSC is {ifsc}, but dwMaxCCIDMessageLength {max_message_length} leaves                  {room_u8} bytes of INF in a block (10-byte header, 3-byte prologue, {epilogue}-byte                  epilogue): longer commands are chained in blocks of {room_u8}"
            ),
        ),
        None => decision(
            room_u8,
            format!(
                "no card yet: at most {room_u8} bytes of INF fit in a {max_message_length}-byte                  message, and at most the card's IFSC"
            ),
        ),
    }
}

fn ifsd(
    d: &CcidDescriptor,
    level: ExchangeLevel,
    protocol: Option<u8>,
    payload: usize,
    quirks: &[Quirk],
    config: &ReaderConfig,
) -> (Decision<u8>, Decision<bool>) {
    if level.is_apdu() {
        return (
            decision(
                0,
                "APDU level: the reader runs T=1 and chooses the IFSD itself",
            ),
            decision(false, "APDU level: the reader runs T=1"),
        );
    }
    if protocol == Some(0) {
        return (
            decision(0, "a T=0 card: no IFSD"),
            decision(false, "a T=0 card: no S(IFS request)"),
        );
    }
    // A block is the prologue (3 bytes), INF (at most IFSD) and LRC or CRC (up to 2).
    let block_room = payload.saturating_sub(5);
    let mut value = 254u32;
    let mut why = vec!["254 (ISO/IEC 7816-3 11.4.2 maximum)".to_string()];
    if d.max_ifsd == 0 {
        value = u32::from(atr::DEFAULT_IFSC);
        why = vec![format!(
            "dwMaxIFSD is 0: the ISO default {}",
            atr::DEFAULT_IFSC
        )];
    } else if d.max_ifsd < value {
        value = d.max_ifsd;
        why.push(format!("dwMaxIFSD {}", d.max_ifsd));
    }
    if u32::from(config.ifsd) < value {
        value = u32::from(config.ifsd.max(1));
        why.push(format!("the configured IFSD {}", config.ifsd));
    }
    if let Ok(room) = u32::try_from(block_room) {
        if room > 0 && room < value {
            value = room;
            why.push(format!(
                "a block within dwMaxCCIDMessageLength leaves {room} bytes of INF"
            ));
        }
    }
    let value = u8::try_from(value).unwrap_or(254);
    let ifsd = decision(value, format!("the least of {}", why.join(", ")));
    let request = if d.features.contains(Features::AUTO_IFSD) {
        decision(
            false,
            "dwFeatures 0x400: the reader exchanges the IFSD itself as the first T=1 block",
        )
    } else if let Some(q) = quirks.iter().find(|q| q.kind == QuirkKind::NoIfsdRequest) {
        decision(
            false,
            format!("{}: does not take S(IFS request) ({})", q.model, q.source),
        )
    } else {
        decision(
            true,
            format!(
                "TPDU level without dwFeatures 0x400: the host announces IFSD {value} with \
                 S(IFS request) first"
            ),
        )
    };
    (ifsd, request)
}

fn extended_apdu(level: ExchangeLevel, protocol: Option<u8>) -> Decision<bool> {
    match level {
        ExchangeLevel::ExtendedApdu => decision(
            true,
            "extended APDU level: chained through wLevelParameter when longer than a message",
        ),
        ExchangeLevel::ShortApdu => decision(
            false,
            "short APDU level: the reader takes short APDUs only (wLevelParameter chaining is \
             defined for extended-APDU readers); extended APDUs are refused",
        ),
        ExchangeLevel::Tpdu if protocol == Some(0) => decision(
            false,
            "TPDU level with a T=0 card: an extended APDU needs ENVELOPE, which the driver \
             does not do; refused",
        ),
        ExchangeLevel::Tpdu => decision(
            true,
            "TPDU level: with a T=1 card, carried by T=1 chaining (a T=0 card refuses them)",
        ),
        ExchangeLevel::Character => decision(false, "character level: not supported"),
    }
}

/// Whether `apdu` is an extended-length command APDU (ISO/IEC 7816-4 5.1: byte 5 is 0 and
/// more bytes follow).
pub fn is_extended_apdu(apdu: &[u8]) -> bool {
    apdu.len() > 5 && apdu.get(4) == Some(&0)
}

#[cfg(test)]
mod tests;
