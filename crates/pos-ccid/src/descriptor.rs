//! The CCID class descriptor (USB CCID rev 1.1, section 5.1) and the reader's endpoints.
//!
//! A CCID interface carries one 54-byte class descriptor (type 0x21) next to its standard
//! interface descriptor. It says how the host must talk to the reader:
//!
//! - the **exchange level** ([`ExchangeLevel`]): characters, TPDUs (the host runs T=0/T=1),
//!   or whole short / extended APDUs (the reader runs the card protocol);
//! - what the reader does **by itself** ([`Features`]): voltage selection, clock and baud
//!   changes, PPS, IFSD exchange, parameters from the ATR;
//! - the largest message it accepts (`dwMaxCCIDMessageLength`), its slots, voltages,
//!   protocols, clocks and data rates.
//!
//! [`CcidDescriptor::parse`] reads it from device bytes and never panics;
//! [`CcidDescriptor::encode`] writes it back (the virtual reader serves it). [`find`] picks
//! it out of the interface's "extra" descriptor bytes. [`CcidEndpoints::select`] picks the
//! bulk-in, bulk-out and optional interrupt-in endpoints. [`from_lsusb_dump`] reads the
//! text dumps of real readers libccid publishes, for tests and the reader census.

use pos_hal::{Fault, FaultKind, ReaderCapabilities};

mod lsusb;
pub use lsusb::{DumpError, DumpedInterface, from_lsusb_dump};

/// bDescriptorType of the CCID class descriptor (CCID rev 1.1, table 5.1-1).
pub const CCID_DESCRIPTOR_TYPE: u8 = 0x21;

/// bDescriptorType some pre-1.0 readers use for the same descriptor (accepted by [`find`]
/// and [`CcidDescriptor::parse`] only when bLength is [`CCID_DESCRIPTOR_LEN`]).
pub const CCID_DESCRIPTOR_TYPE_LEGACY: u8 = 0xFF;

/// bLength of the CCID class descriptor: 0x36 = 54 bytes.
pub const CCID_DESCRIPTOR_LEN: usize = 0x36;

/// USB interface class of CCID readers (bInterfaceClass 0x0B, "Smart Card").
pub const CCID_INTERFACE_CLASS: u8 = 0x0B;

bitflags::bitflags! {
    /// bVoltageSupport: the card supply voltages the reader can give.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    #[derive(serde::Serialize, serde::Deserialize)]
    pub struct Voltages: u8 {
        /// 5.0 V (class A).
        const V5 = 0x01;
        /// 3.0 V (class B).
        const V3 = 0x02;
        /// 1.8 V (class C).
        const V1_8 = 0x04;
    }
}

bitflags::bitflags! {
    /// dwProtocols: the asynchronous card protocols the reader supports.
    ///
    /// Bits other than T=0 and T=1 are reserved; they are kept as read.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    #[derive(serde::Serialize, serde::Deserialize)]
    pub struct Protocols: u32 {
        /// T=0 (character-oriented, ISO 7816-3).
        const T0 = 0x0001;
        /// T=1 (block-oriented, ISO 7816-3).
        const T1 = 0x0002;
    }
}

bitflags::bitflags! {
    /// dwSynchProtocols: synchronous (memory card) protocols. Kept for completeness; EMV
    /// cards are asynchronous.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    #[derive(serde::Serialize, serde::Deserialize)]
    pub struct SynchProtocols: u32 {
        /// 2-wire protocol.
        const TWO_WIRE = 0x0001;
        /// 3-wire protocol.
        const THREE_WIRE = 0x0002;
        /// I2C protocol.
        const I2C = 0x0004;
    }
}

bitflags::bitflags! {
    /// dwMechanical: what the slot can do with the card mechanically.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    #[derive(serde::Serialize, serde::Deserialize)]
    pub struct Mechanical: u32 {
        /// Card accept mechanism.
        const ACCEPT = 0x0001;
        /// Card ejection mechanism.
        const EJECT = 0x0002;
        /// Card capture mechanism.
        const CAPTURE = 0x0004;
        /// Card lock/unlock mechanism.
        const LOCK = 0x0008;
    }
}

bitflags::bitflags! {
    /// dwFeatures: what the reader does by itself, and its exchange level.
    ///
    /// Unknown bits are kept as read (so [`CcidDescriptor::encode`] gives them back).
    /// The exchange level is the field `0x0007_0000` (see [`CcidDescriptor::exchange_level`]).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    #[derive(serde::Serialize, serde::Deserialize)]
    pub struct Features: u32 {
        /// 0x2: automatic parameter configuration based on the ATR.
        const AUTO_PARAMETERS = 0x0000_0002;
        /// 0x4: automatic activation of the card on insertion.
        const AUTO_ACTIVATION = 0x0000_0004;
        /// 0x8: automatic card voltage selection.
        const AUTO_VOLTAGE = 0x0000_0008;
        /// 0x10: automatic card clock frequency change.
        const AUTO_CLOCK = 0x0000_0010;
        /// 0x20: automatic baud rate change.
        const AUTO_BAUD = 0x0000_0020;
        /// 0x40: automatic parameter negotiation by the reader (proprietary algorithm:
        /// warm/cold resets or PPS).
        const AUTO_PPS_PROPRIETARY = 0x0000_0040;
        /// 0x80: automatic PPS by the reader according to the current parameters.
        const AUTO_PPS_CURRENT = 0x0000_0080;
        /// 0x100: the reader can stop the card clock.
        const CLOCK_STOP = 0x0000_0100;
        /// 0x200: NAD values other than 0 accepted (T=1).
        const NAD_OTHER_THAN_ZERO = 0x0000_0200;
        /// 0x400: automatic IFSD exchange as the first T=1 exchange.
        const AUTO_IFSD = 0x0000_0400;
        /// 0x10000: TPDU-level exchanges.
        const LEVEL_TPDU = 0x0001_0000;
        /// 0x20000: short APDU-level exchanges.
        const LEVEL_SHORT_APDU = 0x0002_0000;
        /// 0x40000: short and extended APDU-level exchanges.
        const LEVEL_EXTENDED_APDU = 0x0004_0000;
        /// 0x100000: USB wake-up signalling on card insertion and removal.
        const USB_WAKE_UP = 0x0010_0000;
    }
}

/// bPINSupport bit: PIN verification supported (PIN pad readers).
pub const PIN_VERIFICATION: u8 = 0x01;
/// bPINSupport bit: PIN modification supported (PIN pad readers).
pub const PIN_MODIFICATION: u8 = 0x02;

/// The level at which the host and the reader exchange card data (dwFeatures bits 16-18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ExchangeLevel {
    /// No level bit: character level, the host drives every byte. Not supported by the
    /// driver (no reader in the field needs it), but recognised.
    Character,
    /// TPDU level: the host runs T=0 procedure bytes or T=1 blocks, and PPS unless the
    /// reader does it.
    Tpdu,
    /// Short APDU level: the reader runs the card protocol; APDUs up to 255/256 bytes.
    ShortApdu,
    /// Short and extended APDU level: as short, plus extended-length APDUs (chained in
    /// several messages when longer than dwMaxCCIDMessageLength allows).
    ExtendedApdu,
}

impl ExchangeLevel {
    /// True for the two APDU levels (the reader runs T=0/T=1 itself).
    pub fn is_apdu(self) -> bool {
        matches!(self, ExchangeLevel::ShortApdu | ExchangeLevel::ExtendedApdu)
    }

    /// A short name for logs: `character`, `TPDU`, `short APDU`, `extended APDU`.
    pub fn name(self) -> &'static str {
        match self {
            ExchangeLevel::Character => "character",
            ExchangeLevel::Tpdu => "TPDU",
            ExchangeLevel::ShortApdu => "short APDU",
            ExchangeLevel::ExtendedApdu => "extended APDU",
        }
    }
}

impl std::fmt::Display for ExchangeLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a class descriptor (or the endpoint set) could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DescriptorError {
    /// Fewer bytes than a CCID class descriptor needs.
    #[error("CCID class descriptor too short: {len} bytes, need {needed}")]
    TooShort {
        /// Bytes available.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// bLength (offset 0) is smaller than the 54 bytes of a CCID class descriptor.
    #[error("CCID class descriptor bLength 0x{b_length:02X} at offset 0 is less than 0x36")]
    BadLength {
        /// The bLength read.
        b_length: u8,
    },
    /// bDescriptorType (offset 1) is not 0x21 (nor 0xFF with bLength 0x36).
    #[error(
        "descriptor type 0x{descriptor_type:02X} at offset 1 is not a CCID class descriptor (0x21)"
    )]
    WrongType {
        /// The bDescriptorType read.
        descriptor_type: u8,
    },
    /// The interface lacks an endpoint every CCID reader must have.
    #[error("CCID interface has no {0} endpoint")]
    MissingEndpoint(&'static str),
}

impl Fault for DescriptorError {
    fn kind(&self) -> FaultKind {
        FaultKind::Protocol
    }
}

/// The CCID class descriptor, every field decoded (CCID rev 1.1, table 5.1-1).
///
/// Clocks are in kHz, data rates in bits per second, sizes in bytes, as in the descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CcidDescriptor {
    /// bcdCCID: the CCID release the reader follows, BCD (0x0110 = 1.10).
    pub bcd_ccid: u16,
    /// bMaxSlotIndex: index of the highest slot (slots are 0..=max_slot_index).
    pub max_slot_index: u8,
    /// bVoltageSupport.
    pub voltages: Voltages,
    /// dwProtocols.
    pub protocols: Protocols,
    /// dwDefaultClock: default card clock, kHz.
    pub default_clock_khz: u32,
    /// dwMaximumClock: highest card clock, kHz.
    pub max_clock_khz: u32,
    /// bNumClockSupported: number of discrete clocks (0: default and maximum only, or any
    /// between; ask GET_CLOCK_FREQUENCIES for the list).
    pub num_clocks: u8,
    /// dwDataRate: default data rate, bits per second.
    pub data_rate_bps: u32,
    /// dwMaxDataRate: highest data rate, bits per second.
    pub max_data_rate_bps: u32,
    /// bNumDataRatesSupported: number of discrete rates (0: any between default and max;
    /// ask GET_DATA_RATES for the list).
    pub num_data_rates: u8,
    /// dwMaxIFSD: the largest T=1 information field the reader takes from the card, bytes.
    pub max_ifsd: u32,
    /// dwSynchProtocols.
    pub synch_protocols: SynchProtocols,
    /// dwMechanical.
    pub mechanical: Mechanical,
    /// dwFeatures.
    pub features: Features,
    /// dwMaxCCIDMessageLength: the longest message (10-byte header included), bytes.
    pub max_message_length: u32,
    /// bClassGetResponse: class byte of the GET RESPONSE the reader sends at APDU level
    /// (0xFF: echoes the command's class).
    pub class_get_response: u8,
    /// bClassEnvelope: class byte of the ENVELOPE the reader sends at extended APDU level
    /// (0xFF: echoes the command's class).
    pub class_envelope: u8,
    /// wLcdLayout: 0xXXYY = XX lines of YY characters; 0 = no LCD.
    pub lcd_layout: u16,
    /// bPINSupport: [`PIN_VERIFICATION`] | [`PIN_MODIFICATION`].
    pub pin_support: u8,
    /// bMaxCCIDBusySlots: how many slots may run commands at the same time.
    pub max_busy_slots: u8,
}

fn le16(b: &[u8; CCID_DESCRIPTOR_LEN], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u16::from_le_bytes([x, y]),
        _ => 0,
    }
}

fn le32(b: &[u8; CCID_DESCRIPTOR_LEN], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, c, d, e]) => u32::from_le_bytes([a, c, d, e]),
        _ => 0,
    }
}

impl CcidDescriptor {
    /// Parse a CCID class descriptor from its bytes (starting at bLength).
    ///
    /// Accepts bDescriptorType 0x21, and 0xFF when bLength is 0x36 (pre-1.0 readers).
    /// bLength may be larger than 0x36 (bytes after the 54th are ignored); extra bytes
    /// after the descriptor are ignored too.
    ///
    /// Errors: [`DescriptorError::TooShort`], [`DescriptorError::WrongType`],
    /// [`DescriptorError::BadLength`]. Never panics.
    pub fn parse(bytes: &[u8]) -> Result<Self, DescriptorError> {
        let (b_length, descriptor_type) = match bytes {
            [l, t, ..] => (*l, *t),
            _ => {
                return Err(DescriptorError::TooShort {
                    len: bytes.len(),
                    needed: CCID_DESCRIPTOR_LEN,
                });
            }
        };
        let legacy_ok = descriptor_type == CCID_DESCRIPTOR_TYPE_LEGACY
            && usize::from(b_length) == CCID_DESCRIPTOR_LEN;
        if descriptor_type != CCID_DESCRIPTOR_TYPE && !legacy_ok {
            return Err(DescriptorError::WrongType { descriptor_type });
        }
        if usize::from(b_length) < CCID_DESCRIPTOR_LEN {
            return Err(DescriptorError::BadLength { b_length });
        }
        let d: &[u8; CCID_DESCRIPTOR_LEN] = bytes
            .get(..CCID_DESCRIPTOR_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(DescriptorError::TooShort {
                len: bytes.len(),
                needed: CCID_DESCRIPTOR_LEN,
            })?;
        Ok(CcidDescriptor {
            bcd_ccid: le16(d, 2),
            max_slot_index: d[4],
            voltages: Voltages::from_bits_retain(d[5]),
            protocols: Protocols::from_bits_retain(le32(d, 6)),
            default_clock_khz: le32(d, 10),
            max_clock_khz: le32(d, 14),
            num_clocks: d[18],
            data_rate_bps: le32(d, 19),
            max_data_rate_bps: le32(d, 23),
            num_data_rates: d[27],
            max_ifsd: le32(d, 28),
            synch_protocols: SynchProtocols::from_bits_retain(le32(d, 32)),
            mechanical: Mechanical::from_bits_retain(le32(d, 36)),
            features: Features::from_bits_retain(le32(d, 40)),
            max_message_length: le32(d, 44),
            class_get_response: d[48],
            class_envelope: d[49],
            lcd_layout: le16(d, 50),
            pin_support: d[52],
            max_busy_slots: d[53],
        })
    }

    /// The 54 bytes of the descriptor (bLength 0x36, bDescriptorType 0x21), as a reader
    /// sends it. `parse(&d.encode()) == Ok(d)` for every descriptor.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(CCID_DESCRIPTOR_LEN);
        v.push(CCID_DESCRIPTOR_LEN as u8);
        v.push(CCID_DESCRIPTOR_TYPE);
        v.extend_from_slice(&self.bcd_ccid.to_le_bytes());
        v.push(self.max_slot_index);
        v.push(self.voltages.bits());
        v.extend_from_slice(&self.protocols.bits().to_le_bytes());
        v.extend_from_slice(&self.default_clock_khz.to_le_bytes());
        v.extend_from_slice(&self.max_clock_khz.to_le_bytes());
        v.push(self.num_clocks);
        v.extend_from_slice(&self.data_rate_bps.to_le_bytes());
        v.extend_from_slice(&self.max_data_rate_bps.to_le_bytes());
        v.push(self.num_data_rates);
        v.extend_from_slice(&self.max_ifsd.to_le_bytes());
        v.extend_from_slice(&self.synch_protocols.bits().to_le_bytes());
        v.extend_from_slice(&self.mechanical.bits().to_le_bytes());
        v.extend_from_slice(&self.features.bits().to_le_bytes());
        v.extend_from_slice(&self.max_message_length.to_le_bytes());
        v.push(self.class_get_response);
        v.push(self.class_envelope);
        v.extend_from_slice(&self.lcd_layout.to_le_bytes());
        v.push(self.pin_support);
        v.push(self.max_busy_slots);
        v
    }

    /// The exchange level from dwFeatures.
    ///
    /// The spec allows one level bit; should a reader set several, the most capable wins
    /// (extended APDU, then short APDU, then TPDU). No level bit means character level.
    pub fn exchange_level(&self) -> ExchangeLevel {
        let f = self.features;
        if f.contains(Features::LEVEL_EXTENDED_APDU) {
            ExchangeLevel::ExtendedApdu
        } else if f.contains(Features::LEVEL_SHORT_APDU) {
            ExchangeLevel::ShortApdu
        } else if f.contains(Features::LEVEL_TPDU) {
            ExchangeLevel::Tpdu
        } else {
            ExchangeLevel::Character
        }
    }

    /// Number of slots: bMaxSlotIndex + 1 (saturating at 255: a reader with 256 slots is
    /// reported as 255).
    pub fn slot_count(&self) -> u8 {
        self.max_slot_index.saturating_add(1)
    }

    /// The reader negotiates the card's speed itself: either automatic PPS bit (0x40
    /// proprietary, 0x80 according to the current parameters). When false at TPDU level,
    /// the host sends the PPS request.
    pub fn auto_pps(&self) -> bool {
        self.features
            .intersects(Features::AUTO_PPS_PROPRIETARY | Features::AUTO_PPS_CURRENT)
    }

    /// Turn automatic PPS on (sets 0x80, "according to the current parameters") or off
    /// (clears both 0x40 and 0x80). For the virtual reader's profiles.
    pub fn set_auto_pps(&mut self, on: bool) {
        self.features.remove(Features::AUTO_PPS_PROPRIETARY);
        self.features.set(Features::AUTO_PPS_CURRENT, on);
    }

    /// Set the exchange level (clears the other level bits). For the virtual reader's
    /// profiles.
    pub fn set_exchange_level(&mut self, level: ExchangeLevel) {
        self.features.remove(
            Features::LEVEL_TPDU | Features::LEVEL_SHORT_APDU | Features::LEVEL_EXTENDED_APDU,
        );
        match level {
            ExchangeLevel::Character => {}
            ExchangeLevel::Tpdu => self.features.insert(Features::LEVEL_TPDU),
            ExchangeLevel::ShortApdu => self.features.insert(Features::LEVEL_SHORT_APDU),
            ExchangeLevel::ExtendedApdu => self.features.insert(Features::LEVEL_EXTENDED_APDU),
        }
    }

    /// The reader selects the card voltage itself (0x8): power on with
    /// `PowerSelect::Automatic`.
    pub fn auto_voltage(&self) -> bool {
        self.features.contains(Features::AUTO_VOLTAGE)
    }

    /// The reader does the T=1 IFSD exchange itself (0x400); otherwise the host sends
    /// S(IFS request) first.
    pub fn auto_ifsd(&self) -> bool {
        self.features.contains(Features::AUTO_IFSD)
    }

    /// The reader configures the protocol parameters from the ATR itself (0x2); otherwise
    /// the host sends SetParameters.
    pub fn auto_parameters(&self) -> bool {
        self.features.contains(Features::AUTO_PARAMETERS)
    }

    /// The reader activates a card as soon as it is inserted (0x4).
    pub fn auto_activation(&self) -> bool {
        self.features.contains(Features::AUTO_ACTIVATION)
    }

    /// The reader changes the card clock itself (0x10).
    pub fn auto_clock(&self) -> bool {
        self.features.contains(Features::AUTO_CLOCK)
    }

    /// The reader changes the baud rate itself (0x20).
    pub fn auto_baud(&self) -> bool {
        self.features.contains(Features::AUTO_BAUD)
    }

    /// The largest abData a message may carry: dwMaxCCIDMessageLength - 10 (0 when the
    /// reader advertises less than a header).
    pub fn max_payload_len(&self) -> usize {
        usize::try_from(self.max_message_length)
            .unwrap_or(usize::MAX)
            .saturating_sub(crate::message::HEADER_LEN)
    }

    /// The reader has a PIN pad that can verify a PIN (bPINSupport bit 0).
    pub fn pin_verification(&self) -> bool {
        self.pin_support & PIN_VERIFICATION != 0
    }

    /// The reader has a PIN pad that can change a PIN (bPINSupport bit 1).
    pub fn pin_modification(&self) -> bool {
        self.pin_support & PIN_MODIFICATION != 0
    }

    /// The LCD as (lines, characters per line), or `None` when there is none.
    pub fn lcd_size(&self) -> Option<(u8, u8)> {
        let [chars, lines] = self.lcd_layout.to_le_bytes();
        (self.lcd_layout != 0).then_some((lines, chars))
    }

    /// The HAL's view of what the reader can do. `has_interrupt`: the interface has an
    /// interrupt-in endpoint (presence is then reported by NotifySlotChange).
    ///
    /// `EXTENDED_APDU` is set for the extended-APDU level only (a TPDU reader running T=1
    /// could carry them, but that is the driver's business, not the descriptor's).
    pub fn to_capabilities(&self, has_interrupt: bool) -> ReaderCapabilities {
        let mut c = ReaderCapabilities::empty();
        let level = self.exchange_level();
        c.set(ReaderCapabilities::PRESENCE_INTERRUPT, has_interrupt);
        c.set(
            ReaderCapabilities::T0,
            self.protocols.contains(Protocols::T0),
        );
        c.set(
            ReaderCapabilities::T1,
            self.protocols.contains(Protocols::T1),
        );
        c.set(ReaderCapabilities::APDU_LEVEL, level.is_apdu());
        c.set(
            ReaderCapabilities::EXTENDED_APDU,
            level == ExchangeLevel::ExtendedApdu,
        );
        c.set(ReaderCapabilities::AUTO_PPS, self.auto_pps());
        c.set(ReaderCapabilities::AUTO_VOLTAGE, self.auto_voltage());
        c.set(ReaderCapabilities::MULTI_SLOT, self.max_slot_index > 0);
        c
    }

    /// A single-slot short-APDU reader, for the virtual reader. The reader does
    /// everything itself, like most desktop EMV readers:
    ///
    /// | field | value |
    /// |---|---|
    /// | bcdCCID | 1.10 |
    /// | slots | 1 |
    /// | voltages | 5 V, 3 V, 1.8 V |
    /// | protocols | T=0, T=1 |
    /// | clock | 4000 kHz default, 12000 kHz max, no list |
    /// | data rate | 10752 bps default (4 MHz / 372), 344086 bps max, no list |
    /// | dwMaxIFSD | 254 |
    /// | dwFeatures | 0x0002_04BA: auto parameters, voltage, clock, baud, PPS by current parameters, IFSD; short APDU level |
    /// | dwMaxCCIDMessageLength | 271 (261 + 10: a short APDU and its header) |
    /// | bClassGetResponse / bClassEnvelope | 0xFF (echo) |
    /// | LCD, PIN pad | none |
    /// | bMaxCCIDBusySlots | 1 |
    pub fn example_apdu_reader() -> Self {
        CcidDescriptor {
            bcd_ccid: 0x0110,
            max_slot_index: 0,
            voltages: Voltages::V5 | Voltages::V3 | Voltages::V1_8,
            protocols: Protocols::T0 | Protocols::T1,
            default_clock_khz: 4000,
            max_clock_khz: 12000,
            num_clocks: 0,
            data_rate_bps: 10752,
            max_data_rate_bps: 344_086,
            num_data_rates: 0,
            max_ifsd: 254,
            synch_protocols: SynchProtocols::empty(),
            mechanical: Mechanical::empty(),
            features: Features::AUTO_PARAMETERS
                | Features::AUTO_VOLTAGE
                | Features::AUTO_CLOCK
                | Features::AUTO_BAUD
                | Features::AUTO_PPS_CURRENT
                | Features::AUTO_IFSD
                | Features::LEVEL_SHORT_APDU,
            max_message_length: 271,
            class_get_response: 0xFF,
            class_envelope: 0xFF,
            lcd_layout: 0,
            pin_support: 0,
            max_busy_slots: 1,
        }
    }

    /// As [`example_apdu_reader`](Self::example_apdu_reader) but at the short and
    /// extended APDU level (dwFeatures 0x0004_04BA) with dwMaxCCIDMessageLength 65554
    /// (65544 + 10: the largest extended APDU and its header, the spec's upper bound).
    pub fn example_extended_apdu_reader() -> Self {
        let mut d = Self::example_apdu_reader();
        d.features.remove(Features::LEVEL_SHORT_APDU);
        d.features.insert(Features::LEVEL_EXTENDED_APDU);
        d.max_message_length = 65_554;
        d
    }

    /// A single-slot TPDU reader that leaves the card protocol to the host, for the
    /// virtual reader (exercises the driver's PPS, SetParameters, T=0 and T=1 code):
    ///
    /// | field | value |
    /// |---|---|
    /// | bcdCCID | 1.10 |
    /// | slots | 1 |
    /// | voltages | 5 V, 3 V, 1.8 V |
    /// | protocols | T=0, T=1 |
    /// | clock | 4000 kHz default, 4000 kHz max, no list |
    /// | data rate | 10752 bps default, 344086 bps max, no list |
    /// | dwMaxIFSD | 254 |
    /// | dwFeatures | 0x0001_0038: auto voltage, clock, baud; TPDU level. No automatic PPS, parameters or IFSD: the host sends PPS, SetParameters and S(IFS request) |
    /// | dwMaxCCIDMessageLength | 271 |
    /// | bClassGetResponse / bClassEnvelope | 0xFF |
    /// | LCD, PIN pad | none |
    /// | bMaxCCIDBusySlots | 1 |
    pub fn example_tpdu_reader() -> Self {
        CcidDescriptor {
            bcd_ccid: 0x0110,
            max_slot_index: 0,
            voltages: Voltages::V5 | Voltages::V3 | Voltages::V1_8,
            protocols: Protocols::T0 | Protocols::T1,
            default_clock_khz: 4000,
            max_clock_khz: 4000,
            num_clocks: 0,
            data_rate_bps: 10752,
            max_data_rate_bps: 344_086,
            num_data_rates: 0,
            max_ifsd: 254,
            synch_protocols: SynchProtocols::empty(),
            mechanical: Mechanical::empty(),
            features: Features::AUTO_VOLTAGE
                | Features::AUTO_CLOCK
                | Features::AUTO_BAUD
                | Features::LEVEL_TPDU,
            max_message_length: 271,
            class_get_response: 0xFF,
            class_envelope: 0xFF,
            lcd_layout: 0,
            pin_support: 0,
            max_busy_slots: 1,
        }
    }
}

/// Find and parse the CCID class descriptor in a run of descriptors (each starting with
/// bLength, bDescriptorType), such as the interface's "extra" bytes from libusb.
///
/// Takes the first descriptor of type 0x21, or of type 0xFF with bLength 0x36 (pre-1.0
/// readers). Returns `None` when there is none; `Some(Err(..))` when one is there but
/// malformed (e.g. truncated). Stops at a bLength of 0 or 1 (which would not advance) and
/// at a descriptor running past the end (parsed as far as it goes when it is the CCID
/// one). Never panics.
///
/// Some readers put the class descriptor after the endpoint descriptors instead: pass
/// the endpoints' extra bytes too when the interface's have none.
pub fn find(extra: &[u8]) -> Option<Result<CcidDescriptor, DescriptorError>> {
    let mut rest = extra;
    while let [len, ty, ..] = rest {
        let len = usize::from(*len);
        let ty = *ty;
        let is_ccid = ty == CCID_DESCRIPTOR_TYPE
            || (ty == CCID_DESCRIPTOR_TYPE_LEGACY && len == CCID_DESCRIPTOR_LEN);
        if is_ccid {
            let end = len.min(rest.len());
            return Some(CcidDescriptor::parse(rest.get(..end).unwrap_or(rest)));
        }
        if len < 2 {
            return None;
        }
        rest = rest.get(len..)?;
    }
    None
}

/// USB transfer type of an endpoint (bmAttributes bits 0-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferType {
    /// Control.
    Control,
    /// Isochronous.
    Isochronous,
    /// Bulk.
    Bulk,
    /// Interrupt.
    Interrupt,
}

/// One endpoint of the CCID interface, as the USB stack reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndpointInfo {
    /// bEndpointAddress (bit 7 set: IN).
    pub address: u8,
    /// bmAttributes (bits 0-1: transfer type).
    pub attributes: u8,
    /// wMaxPacketSize (bits 0-10: bytes per packet).
    pub max_packet_size: u16,
    /// bInterval (polling interval of interrupt endpoints).
    pub interval: u8,
}

/// bDescriptorType of a standard endpoint descriptor.
pub const ENDPOINT_DESCRIPTOR_TYPE: u8 = 0x05;

impl EndpointInfo {
    /// Parse a standard endpoint descriptor (7 bytes: bLength, 0x05, bEndpointAddress,
    /// bmAttributes, wMaxPacketSize, bInterval). `None` when it is not one.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [
                len,
                ENDPOINT_DESCRIPTOR_TYPE,
                address,
                attributes,
                p0,
                p1,
                interval,
                ..,
            ] if *len >= 7 => Some(EndpointInfo {
                address: *address,
                attributes: *attributes,
                max_packet_size: u16::from_le_bytes([*p0, *p1]),
                interval: *interval,
            }),
            _ => None,
        }
    }

    /// True for IN endpoints (device to host).
    pub fn is_in(&self) -> bool {
        self.address & 0x80 != 0
    }

    /// The transfer type.
    pub fn transfer_type(&self) -> TransferType {
        match self.attributes & 0x03 {
            0 => TransferType::Control,
            1 => TransferType::Isochronous,
            2 => TransferType::Bulk,
            _ => TransferType::Interrupt,
        }
    }

    /// Bytes per packet (wMaxPacketSize bits 0-10).
    pub fn packet_size(&self) -> usize {
        usize::from(self.max_packet_size & 0x07FF)
    }
}

/// The endpoints a CCID reader is driven through (CCID rev 1.1, section 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CcidEndpoints {
    /// Bulk IN: RDR_to_PC replies.
    pub bulk_in: EndpointInfo,
    /// Bulk OUT: PC_to_RDR commands.
    pub bulk_out: EndpointInfo,
    /// Interrupt IN: NotifySlotChange and HardwareError, when the reader has it.
    pub interrupt_in: Option<EndpointInfo>,
}

impl CcidEndpoints {
    /// Pick the first bulk IN, the first bulk OUT and the first interrupt IN endpoint.
    ///
    /// Errors: [`DescriptorError::MissingEndpoint`] without a bulk IN or bulk OUT endpoint.
    pub fn select(endpoints: &[EndpointInfo]) -> Result<Self, DescriptorError> {
        let find = |ty: TransferType, input: bool| {
            endpoints
                .iter()
                .copied()
                .find(|e| e.transfer_type() == ty && e.is_in() == input)
        };
        Ok(CcidEndpoints {
            bulk_in: find(TransferType::Bulk, true)
                .ok_or(DescriptorError::MissingEndpoint("bulk IN"))?,
            bulk_out: find(TransferType::Bulk, false)
                .ok_or(DescriptorError::MissingEndpoint("bulk OUT"))?,
            interrupt_in: find(TransferType::Interrupt, true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_round_trip_and_have_their_level() {
        for (d, level) in [
            (
                CcidDescriptor::example_apdu_reader(),
                ExchangeLevel::ShortApdu,
            ),
            (
                CcidDescriptor::example_extended_apdu_reader(),
                ExchangeLevel::ExtendedApdu,
            ),
            (CcidDescriptor::example_tpdu_reader(), ExchangeLevel::Tpdu),
        ] {
            let bytes = d.encode();
            assert_eq!(bytes.len(), CCID_DESCRIPTOR_LEN);
            assert_eq!(CcidDescriptor::parse(&bytes), Ok(d.clone()));
            assert_eq!(d.exchange_level(), level);
        }
        assert_eq!(
            CcidDescriptor::example_apdu_reader().features.bits(),
            0x0002_04BA
        );
        assert_eq!(
            CcidDescriptor::example_extended_apdu_reader()
                .features
                .bits(),
            0x0004_04BA
        );
        assert_eq!(
            CcidDescriptor::example_tpdu_reader().features.bits(),
            0x0001_0038
        );
    }

    #[test]
    fn setters_change_only_their_bits() {
        let mut d = CcidDescriptor::example_tpdu_reader();
        d.set_auto_pps(true);
        assert!(d.auto_pps());
        assert_eq!(d.features.bits(), 0x0001_00B8);
        d.set_auto_pps(false);
        assert!(!d.auto_pps());
        for level in [
            ExchangeLevel::Character,
            ExchangeLevel::Tpdu,
            ExchangeLevel::ShortApdu,
            ExchangeLevel::ExtendedApdu,
        ] {
            d.set_exchange_level(level);
            assert_eq!(d.exchange_level(), level);
            assert_eq!(d.features.bits() & 0xFFFF, 0x0038);
        }
    }

    #[test]
    fn lcd_size_reads_lines_then_columns() {
        let mut d = CcidDescriptor::example_apdu_reader();
        assert_eq!(d.lcd_size(), None);
        d.lcd_layout = 0x0210;
        assert_eq!(d.lcd_size(), Some((2, 16)));
    }
}
