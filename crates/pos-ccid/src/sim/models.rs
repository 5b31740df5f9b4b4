//! Real reader models for the virtual reader: `sim:ccid?model=NAME`.
//!
//! Each [`ReaderModel`] carries a real reader's USB ids and firmware (bcdDevice), the CCID
//! class descriptor of its interface, and how it answers the class requests
//! GET_DATA_RATES and GET_CLOCK_FREQUENCIES. The values are facts read from the descriptor
//! dumps libccid publishes (<https://github.com/LudovicRousseau/CCID>, `readers/<file>`,
//! commit 5de6a9661c371d74d5c1e16fd4d01727ae2d9db3), written here as Rust data; each model
//! names its file. No dump text is part of the crate: the tests compare every model with
//! the dump in `tests/data/readers`, parsed with `from_lsusb_dump`, so the two cannot drift.
//!
//! How a model behaves (see the README's "Reader models" section and [`VirtualReader`]):
//! it works at the exchange level its dwFeatures announce (or the level a quirk row of
//! [`crate::quirks`] says its firmware really works at), refuses messages longer than its
//! dwMaxCCIDMessageLength (bError 1, the offset of dwLength), refuses bPowerSelect 0 unless
//! it selects the voltage itself (dwFeatures 0x08) and voltages outside bVoltageSupport
//! (bError 7), refuses SetParameters when it negotiates itself (dwFeatures 0x40) and
//! SetParameters or a PPS at a data rate it cannot do (not in its GET_DATA_RATES list, or
//! outside dwDataRate..dwMaxDataRate when it has none), and follows the quirk rows for its
//! ids (a rate cap makes exchanges above the cap fail).
//!
//! [`VirtualReader`]: super::VirtualReader

use crate::descriptor::{
    CcidDescriptor, Features, Mechanical, Protocols, SynchProtocols, Voltages,
};

/// How a model answers a class request for a list (GET_DATA_RATES, GET_CLOCK_FREQUENCIES),
/// as the libccid dump records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassAnswer {
    /// The list, little-endian u32 values (bit/s or kHz).
    List(&'static [u32]),
    /// A reply of zero bytes (the dump: "IFD does not support ... request: Success").
    Empty,
    /// The request is stalled (the dump: "... request: Broken pipe").
    Stall,
    /// The transfer fails otherwise (the dump: "... request: Resource temporarily
    /// unavailable").
    Fails,
}

impl ClassAnswer {
    /// The list, when the model answers one.
    pub fn list(&self) -> Option<&'static [u32]> {
        match self {
            ClassAnswer::List(l) => Some(l),
            _ => None,
        }
    }
}

/// A real reader model the virtual reader can be (`sim:ccid?model=NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderModel {
    /// The name in `model=NAME`.
    pub name: &'static str,
    /// The reader, for people.
    pub title: &'static str,
    /// The libccid dump the data comes from (`readers/<file>`, also in this crate's
    /// `tests/data/readers`).
    pub dump: &'static str,
    /// bInterfaceNumber of the CCID interface modelled (the OMNIKEY 5422's contact slot is
    /// interface 1).
    pub interface: u8,
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct.
    pub product_id: u16,
    /// bcdDevice: the firmware release.
    pub bcd_device: u16,
    /// The CCID class descriptor of that interface.
    pub descriptor: CcidDescriptor,
    /// The answer to GET_DATA_RATES (bit/s).
    pub data_rates: ClassAnswer,
    /// The answer to GET_CLOCK_FREQUENCIES (kHz).
    pub clocks: ClassAnswer,
}

impl ReaderModel {
    /// The USB ids and firmware, as a USB reader reports them (what
    /// [`crate::quirks::lookup`] is keyed by).
    pub fn ids(&self) -> pos_link::usb::UsbIds {
        pos_link::usb::UsbIds {
            vendor_id: self.vendor_id,
            product_id: self.product_id,
            bcd_device: self.bcd_device,
        }
    }

    /// The quirk rows of [`crate::quirks::QUIRKS`] for this model's ids and firmware.
    pub fn quirks(&self) -> Vec<crate::quirks::Quirk> {
        crate::quirks::lookup(self.vendor_id, self.product_id, self.bcd_device)
    }
}

/// The model named `name` (as in `model=NAME`).
pub fn model(name: &str) -> Option<&'static ReaderModel> {
    MODELS.iter().find(|m| m.name == name)
}

/// Every model's name, `|`-separated (for help texts and errors).
pub fn model_names() -> String {
    MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join("|")
}

/// Every reader model.
pub const MODELS: &[ReaderModel] = &[
    ReaderModel {
        name: "scr3310",
        title: "SCM Microsystems SCR3310",
        dump: "SCR3310.txt",
        interface: 0,
        vendor_id: 0x04E6,
        product_id: 0x5116,
        bcd_device: 0x0523,
        descriptor: SCR3310,
        data_rates: ClassAnswer::Stall,
        clocks: ClassAnswer::Stall,
    },
    ReaderModel {
        name: "utrust-2700r",
        title: "Identiv uTrust 2700 R (CLOUD 2700 R)",
        dump: "Identive_CLOUD_2700_R.txt",
        interface: 0,
        vendor_id: 0x04E6,
        product_id: 0x5810,
        bcd_device: 0x0100,
        descriptor: UTRUST_2700R,
        data_rates: ClassAnswer::Empty,
        clocks: ClassAnswer::Empty,
    },
    ReaderModel {
        name: "omnikey-3121",
        title: "HID OMNIKEY 3121 (3x21)",
        dump: "HID_Global_OMNIKEY_3x21_Smart_Card_Reader.txt",
        interface: 0,
        vendor_id: 0x076B,
        product_id: 0x3031,
        bcd_device: 0x0106,
        descriptor: OMNIKEY_3121,
        data_rates: ClassAnswer::List(OMNIKEY_3121_DATA_RATES),
        clocks: ClassAnswer::List(OMNIKEY_3121_CLOCKS),
    },
    ReaderModel {
        name: "omnikey-5422",
        title: "HID OMNIKEY 5422, contact interface",
        dump: "HID_OMNIKEY_5422.txt",
        interface: 1,
        vendor_id: 0x076B,
        product_id: 0x5422,
        bcd_device: 0x0101,
        descriptor: OMNIKEY_5422,
        data_rates: ClassAnswer::List(OMNIKEY_5422_DATA_RATES),
        clocks: ClassAnswer::List(OMNIKEY_5422_CLOCKS),
    },
    ReaderModel {
        name: "idbridge-ct30",
        title: "Thales (Gemalto) IDBridge CT30",
        dump: "Gemalto_IDBridge_CT30.txt",
        interface: 0,
        vendor_id: 0x08E6,
        product_id: 0x3437,
        bcd_device: 0x0201,
        descriptor: IDBRIDGE_CT30,
        data_rates: ClassAnswer::List(IDBRIDGE_CT30_DATA_RATES),
        clocks: ClassAnswer::Empty,
    },
    ReaderModel {
        name: "acr39u",
        title: "ACS ACR39U",
        dump: "ACS_ACR39U_ICC_Reader.txt",
        interface: 0,
        vendor_id: 0x072F,
        product_id: 0xB100,
        bcd_device: 0x0216,
        descriptor: ACR39U,
        data_rates: ClassAnswer::Fails,
        clocks: ClassAnswer::Fails,
    },
    ReaderModel {
        name: "cherry-st1144",
        title: "Cherry SmartTerminal ST-1144",
        dump: "Cherry_SmartTerminal_1144.txt",
        interface: 0,
        vendor_id: 0x046A,
        product_id: 0x00A7,
        bcd_device: 0x0103,
        descriptor: CHERRY_ST1144,
        data_rates: ClassAnswer::List(CHERRY_ST1144_DATA_RATES),
        clocks: ClassAnswer::List(CHERRY_ST1144_CLOCKS),
    },
    // Same USB ids and firmware as the ST-1144, dumped announcing the short APDU level:
    // the firmware libccid's "Firmware uses chaining" row (ccid_open_hack_post()) is for.
    ReaderModel {
        name: "cherry-xx44",
        title: "Cherry SmartTerminal XX44 (short APDU level announced)",
        dump: "Cherry_SmartTerminal_XX44.txt",
        interface: 0,
        vendor_id: 0x046A,
        product_id: 0x00A7,
        bcd_device: 0x0103,
        descriptor: CHERRY_XX44,
        data_rates: ClassAnswer::List(CHERRY_XX44_DATA_RATES),
        clocks: ClassAnswer::List(CHERRY_XX44_CLOCKS),
    },
    ReaderModel {
        name: "br301",
        title: "Feitian bR301",
        dump: "Feitian_bR301.txt",
        interface: 0,
        vendor_id: 0x096E,
        product_id: 0x061A,
        bcd_device: 0x0200,
        descriptor: BR301,
        data_rates: ClassAnswer::Fails,
        clocks: ClassAnswer::Fails,
    },
    ReaderModel {
        name: "au9560",
        title: "Alcor Micro AU9560 (USB id of the AU9540)",
        dump: "AlcorMicro_AU9560.txt",
        interface: 0,
        vendor_id: 0x058F,
        product_id: 0x9540,
        bcd_device: 0x0120,
        descriptor: AU9560,
        data_rates: ClassAnswer::List(AU9560_DATA_RATES),
        clocks: ClassAnswer::List(AU9560_CLOCKS),
    },
];

// The descriptors and lists, field by field from libccid's `readers/<file>` at commit
// 5de6a9661c371d74d5c1e16fd4d01727ae2d9db3 (the file each model above names; for the
// OMNIKEY 5422, its second interface). Data rates in bit/s, clocks in kHz, in the order the
// reader answered them.

// libccid readers/SCR3310.txt
const SCR3310: CcidDescriptor = CcidDescriptor {
    bcd_ccid: 0x0110,
    max_slot_index: 0,
    voltages: Voltages::from_bits_retain(0x01),
    protocols: Protocols::from_bits_retain(0x0003),
    default_clock_khz: 4000,
    max_clock_khz: 8000,
    num_clocks: 0,
    data_rate_bps: 10753,
    max_data_rate_bps: 344105,
    num_data_rates: 0,
    max_ifsd: 252,
    synch_protocols: SynchProtocols::from_bits_retain(0x0000),
    mechanical: Mechanical::from_bits_retain(0x0000),
    features: Features::from_bits_retain(0x000100BA),
    max_message_length: 271,
    class_get_response: 0xFF,
    class_envelope: 0xFF,
    lcd_layout: 0x0000,
    pin_support: 0x00,
    max_busy_slots: 1,
};
// Identive_CLOUD_2700_R.txt iface 0: 04e6:5810 bcd 0100 name "Identive CLOUD 2700 R Smart Card Reader"
// libccid readers/Identive_CLOUD_2700_R.txt
const UTRUST_2700R: CcidDescriptor = CcidDescriptor {
    bcd_ccid: 0x0110,
    max_slot_index: 0,
    voltages: Voltages::from_bits_retain(0x07),
    protocols: Protocols::from_bits_retain(0x0003),
    default_clock_khz: 4800,
    max_clock_khz: 16000,
    num_clocks: 0,
    data_rate_bps: 12903,
    max_data_rate_bps: 600000,
    num_data_rates: 0,
    max_ifsd: 254,
    synch_protocols: SynchProtocols::from_bits_retain(0x0000),
    mechanical: Mechanical::from_bits_retain(0x0000),
    features: Features::from_bits_retain(0x000404BA),
    max_message_length: 271,
    class_get_response: 0xFF,
    class_envelope: 0xFF,
    lcd_layout: 0x0000,
    pin_support: 0x00,
    max_busy_slots: 1,
};
// HID_Global_OMNIKEY_3x21_Smart_Card_Reader.txt iface 0: 076b:3031 bcd 0106 name "HID Global OMNIKEY 3x21 Smart Card Reader"
// libccid readers/HID_Global_OMNIKEY_3x21_Smart_Card_Reader.txt
const OMNIKEY_3121: CcidDescriptor = CcidDescriptor {
    bcd_ccid: 0x0110,
    max_slot_index: 0,
    voltages: Voltages::from_bits_retain(0x07),
    protocols: Protocols::from_bits_retain(0x0003),
    default_clock_khz: 4800,
    max_clock_khz: 4800,
    num_clocks: 1,
    data_rate_bps: 10752,
    max_data_rate_bps: 412903,
    num_data_rates: 106,
    max_ifsd: 254,
    synch_protocols: SynchProtocols::from_bits_retain(0x0007),
    mechanical: Mechanical::from_bits_retain(0x0000),
    features: Features::from_bits_retain(0x000407BA),
    max_message_length: 271,
    class_get_response: 0xFF,
    class_envelope: 0xFF,
    lcd_layout: 0x0000,
    pin_support: 0x00,
    max_busy_slots: 1,
};
const OMNIKEY_3121_DATA_RATES: &[u32] = &[
    10752, 21505, 43010, 86021, 172043, 344086, 129032, 215053, 12903, 25806, 51612, 103225,
    206451, 412903, 154838, 258064, 7168, 14336, 28673, 57347, 114695, 229390, 143369, 8602, 17204,
    34408, 68817, 137634, 275268, 5376, 64516, 107526, 6451, 77419, 8064, 16129, 32258, 96774,
    161290, 3584, 4301, 2688, 53763, 3225, 38709, 4032, 48387, 80645, 2150, 2580, 5161, 10322,
    20645, 41290, 82580, 30967, 7812, 15625, 31250, 62500, 125000, 250000, 93750, 156250, 9375,
    18750, 37500, 75000, 150000, 300000, 600000, 112500, 187500, 5208, 10416, 20833, 41666, 83333,
    166666, 104166, 6250, 12500, 25000, 50000, 100000, 200000, 3906, 46875, 78125, 4687, 56250,
    5859, 11718, 23437, 70312, 117187, 2604, 52083, 3125, 1953, 39062, 2343, 28125, 2929, 35156,
    58593,
];
const OMNIKEY_3121_CLOCKS: &[u32] = &[4800];
// HID_OMNIKEY_5422.txt iface 1: 076b:5422 bcd 0101 name "HID Global OMNIKEY 5422 Smartcard Reader"
// libccid readers/HID_OMNIKEY_5422.txt (interface 1)
const OMNIKEY_5422: CcidDescriptor = CcidDescriptor {
    bcd_ccid: 0x0110,
    max_slot_index: 0,
    voltages: Voltages::from_bits_retain(0x07),
    protocols: Protocols::from_bits_retain(0x0003),
    default_clock_khz: 4800,
    max_clock_khz: 8000,
    num_clocks: 4,
    data_rate_bps: 10752,
    max_data_rate_bps: 412903,
    num_data_rates: 106,
    max_ifsd: 254,
    synch_protocols: SynchProtocols::from_bits_retain(0x0000),
    mechanical: Mechanical::from_bits_retain(0x0000),
    features: Features::from_bits_retain(0x000407B8),
    max_message_length: 520,
    class_get_response: 0xFF,
    class_envelope: 0xFF,
    lcd_layout: 0x0000,
    pin_support: 0x00,
    max_busy_slots: 1,
};
const OMNIKEY_5422_DATA_RATES: &[u32] = &[
    10752, 21505, 43010, 86021, 172043, 344086, 129032, 215053, 12903, 25806, 51612, 103225,
    206451, 412903, 154838, 258064, 7168, 14336, 28673, 57347, 114695, 229390, 143369, 8602, 17204,
    34408, 68817, 137634, 275268, 5376, 64516, 107526, 6451, 77419, 8064, 16129, 32258, 96774,
    161290, 3584, 4301, 2688, 53763, 3225, 38709, 4032, 48387, 80645, 2150, 2580, 5161, 10322,
    20645, 41290, 82580, 30967, 7812, 15625, 31250, 62500, 125000, 250000, 93750, 156250, 9375,
    18750, 37500, 75000, 150000, 300000, 600000, 112500, 187500, 5208, 10416, 20833, 41666, 83333,
    166666, 104166, 6250, 12500, 25000, 50000, 100000, 200000, 3906, 46875, 78125, 4687, 56250,
    5859, 11718, 23437, 70312, 117187, 2604, 52083, 3125, 1953, 39062, 2343, 28125, 2929, 35156,
    58593,
];
const OMNIKEY_5422_CLOCKS: &[u32] = &[4000, 4800, 6000, 8000];
// Gemalto_IDBridge_CT30.txt iface 0: 08e6:3437 bcd 0201 name "Gemalto USB SmartCard Reader"
// libccid readers/Gemalto_IDBridge_CT30.txt
const IDBRIDGE_CT30: CcidDescriptor = CcidDescriptor {
    bcd_ccid: 0x0101,
    max_slot_index: 0,
    voltages: Voltages::from_bits_retain(0x07),
    protocols: Protocols::from_bits_retain(0x0003),
    default_clock_khz: 4800,
    max_clock_khz: 4800,
    num_clocks: 0,
    data_rate_bps: 12903,
    max_data_rate_bps: 825806,
    num_data_rates: 53,
    max_ifsd: 254,
    synch_protocols: SynchProtocols::from_bits_retain(0x0000),
    mechanical: Mechanical::from_bits_retain(0x0000),
    features: Features::from_bits_retain(0x00010230),
    max_message_length: 271,
    class_get_response: 0x00,
    class_envelope: 0x00,
    lcd_layout: 0x0000,
    pin_support: 0x00,
    max_busy_slots: 1,
};
const IDBRIDGE_CT30_DATA_RATES: &[u32] = &[
    12903, 25806, 51613, 103226, 206452, 412903, 825806, 154839, 258065, 17204, 34409, 68817,
    137634, 275269, 550538, 172043, 12403, 24806, 49612, 99225, 198450, 396899, 74419, 124031,
    86022, 38710, 64516, 10323, 20645, 41290, 82581, 165161, 30968, 18750, 37500, 75000, 150000,
    300000, 600000, 112500, 187500, 12500, 25000, 50000, 100000, 200000, 400000, 125000, 56250,
    93750, 62500, 28125, 46875,
];
// ACS_ACR39U_ICC_Reader.txt iface 0: 072f:b100 bcd 0216 name "ACS ACR39U ICC Reader"
// libccid readers/ACS_ACR39U_ICC_Reader.txt
const ACR39U: CcidDescriptor = CcidDescriptor {
    bcd_ccid: 0x0110,
    max_slot_index: 0,
    voltages: Voltages::from_bits_retain(0x07),
    protocols: Protocols::from_bits_retain(0x0003),
    default_clock_khz: 4800,
    max_clock_khz: 16000,
    num_clocks: 0,
    data_rate_bps: 12903,
    max_data_rate_bps: 826000,
    num_data_rates: 0,
    max_ifsd: 247,
    synch_protocols: SynchProtocols::from_bits_retain(0x0000),
    mechanical: Mechanical::from_bits_retain(0x0000),
    features: Features::from_bits_retain(0x000100B2),
    max_message_length: 271,
    class_get_response: 0xFF,
    class_envelope: 0xFF,
    lcd_layout: 0x0000,
    pin_support: 0x00,
    max_busy_slots: 1,
};
// Cherry_SmartTerminal_1144.txt iface 0: 046a:00a7 bcd 0103 name "CHERRY Smart Terminal XX44"
// libccid readers/Cherry_SmartTerminal_1144.txt
const CHERRY_ST1144: CcidDescriptor = CcidDescriptor {
    bcd_ccid: 0x0110,
    max_slot_index: 0,
    voltages: Voltages::from_bits_retain(0x07),
    protocols: Protocols::from_bits_retain(0x0003),
    default_clock_khz: 4800,
    max_clock_khz: 8000,
    num_clocks: 4,
    data_rate_bps: 10752,
    max_data_rate_bps: 412903,
    num_data_rates: 96,
    max_ifsd: 254,
    synch_protocols: SynchProtocols::from_bits_retain(0x0007),
    mechanical: Mechanical::from_bits_retain(0x0000),
    features: Features::from_bits_retain(0x000407B8),
    max_message_length: 271,
    class_get_response: 0xFF,
    class_envelope: 0xFF,
    lcd_layout: 0x0000,
    pin_support: 0x03,
    max_busy_slots: 1,
};
const CHERRY_ST1144_DATA_RATES: &[u32] = &[
    10752, 21505, 43010, 86021, 172043, 344086, 129032, 215053, 12903, 25806, 51612, 103225,
    206451, 412903, 154838, 258064, 7168, 14336, 28673, 57347, 114695, 229390, 143369, 8602, 17204,
    34408, 68817, 137634, 275268, 5376, 64516, 107526, 6451, 77419, 8064, 16129, 32258, 96774,
    161290, 3584, 4301, 2688, 53763, 3225, 38709, 4032, 48387, 80645, 2150, 2580, 5161, 10322,
    20645, 41290, 82580, 30967, 7812, 15625, 31250, 62500, 125000, 250000, 93750, 156250, 9375,
    18750, 37500, 75000, 150000, 300000, 112500, 187500, 5208, 10416, 20833, 41666, 83333, 166666,
    104166, 6250, 12500, 25000, 50000, 100000, 200000, 3906, 46875, 78125, 4687, 56250, 5859,
    11718, 23437, 70312, 117187, 2604,
];
const CHERRY_ST1144_CLOCKS: &[u32] = &[4000, 4800, 6000, 8000];
// Feitian_bR301.txt iface 0: 096e:061a bcd 0200 name "FEITIAN bR301"
// libccid readers/Feitian_bR301.txt
const BR301: CcidDescriptor = CcidDescriptor {
    bcd_ccid: 0x0100,
    max_slot_index: 0,
    voltages: Voltages::from_bits_retain(0x07),
    protocols: Protocols::from_bits_retain(0x0003),
    default_clock_khz: 3700,
    max_clock_khz: 3700,
    num_clocks: 0,
    data_rate_bps: 9946,
    max_data_rate_bps: 318280,
    num_data_rates: 0,
    max_ifsd: 272,
    synch_protocols: SynchProtocols::from_bits_retain(0x0007),
    mechanical: Mechanical::from_bits_retain(0x0000),
    features: Features::from_bits_retain(0x000404BE),
    max_message_length: 272,
    class_get_response: 0xFF,
    class_envelope: 0xFF,
    lcd_layout: 0x0000,
    pin_support: 0x00,
    max_busy_slots: 1,
};
// AlcorMicro_AU9560.txt iface 0: 058f:9540 bcd 0120 name "Generic EMV Smartcard Reader"
// libccid readers/AlcorMicro_AU9560.txt
const AU9560: CcidDescriptor = CcidDescriptor {
    bcd_ccid: 0x0110,
    max_slot_index: 0,
    voltages: Voltages::from_bits_retain(0x07),
    protocols: Protocols::from_bits_retain(0x0003),
    default_clock_khz: 3700,
    max_clock_khz: 12000,
    num_clocks: 3,
    data_rate_bps: 9946,
    max_data_rate_bps: 688172,
    num_data_rates: 138,
    max_ifsd: 254,
    synch_protocols: SynchProtocols::from_bits_retain(0x0007),
    mechanical: Mechanical::from_bits_retain(0x0000),
    features: Features::from_bits_retain(0x000404BE),
    max_message_length: 272,
    class_get_response: 0xFF,
    class_envelope: 0xFF,
    lcd_layout: 0x0000,
    pin_support: 0x00,
    max_busy_slots: 1,
};
const AU9560_DATA_RATES: &[u32] = &[
    1807, 1989, 2409, 2487, 3315, 3613, 3978, 4818, 4973, 6631, 7227, 7957, 9635, 9946, 13262,
    14453, 15914, 19271, 19892, 21680, 23871, 26523, 28906, 29839, 31828, 36133, 38542, 39785,
    43359, 48177, 49731, 53047, 57813, 59677, 63656, 66308, 72266, 77083, 79570, 86719, 96354,
    99462, 106093, 115625, 119355, 132616, 144531, 154167, 159140, 198925, 212186, 231250, 318280,
    2344, 2581, 3125, 3226, 4301, 4688, 5161, 5859, 6250, 6452, 7813, 8065, 8602, 9375, 10323,
    10753, 11719, 12500, 12903, 15625, 16129, 17204, 18750, 20645, 21505, 23438, 25000, 25806,
    28125, 30968, 31250, 32258, 34409, 37500, 38710, 41290, 43011, 46875, 50000, 51613, 56250,
    62500, 64516, 68817, 70313, 75000, 77419, 82581, 86022, 93750, 96774, 100000, 103226, 112500,
    117188, 125000, 127312, 129032, 137634, 150000, 156250, 161290, 165161, 172043, 187500, 200000,
    206452, 215054, 250000, 258065, 275269, 300000, 308333, 344086, 375000, 400000, 412903, 424373,
    462500, 500000, 516129, 550538, 600000, 636559, 688172,
];
const AU9560_CLOCKS: &[u32] = &[3700, 4800, 12000];
// /tmp/gen/Cherry_SmartTerminal_XX44.txt iface 0: 046a:00a7 bcd 0103 name "Cherry SmartTerminal XX44"
// libccid readers/Cherry_SmartTerminal_XX44.txt
const CHERRY_XX44: CcidDescriptor = CcidDescriptor {
    bcd_ccid: 0x0110,
    max_slot_index: 0,
    voltages: Voltages::from_bits_retain(0x07),
    protocols: Protocols::from_bits_retain(0x0003),
    default_clock_khz: 4800,
    max_clock_khz: 8000,
    num_clocks: 4,
    data_rate_bps: 10752,
    max_data_rate_bps: 412903,
    num_data_rates: 96,
    max_ifsd: 254,
    synch_protocols: SynchProtocols::from_bits_retain(0x0007),
    mechanical: Mechanical::from_bits_retain(0x0000),
    features: Features::from_bits_retain(0x000207B8),
    max_message_length: 271,
    class_get_response: 0xFF,
    class_envelope: 0xFF,
    lcd_layout: 0x0000,
    pin_support: 0x03,
    max_busy_slots: 1,
};
const CHERRY_XX44_DATA_RATES: &[u32] = &[
    10752, 21505, 43010, 86021, 172043, 344086, 129032, 215053, 12903, 25806, 51612, 103225,
    206451, 412903, 154838, 258064, 7168, 14336, 28673, 57347, 114695, 229390, 143369, 8602, 17204,
    34408, 68817, 137634, 275268, 5376, 64516, 107526, 6451, 77419, 8064, 16129, 32258, 96774,
    161290, 3584, 4301, 2688, 53763, 3225, 38709, 4032, 48387, 80645, 2150, 2580, 5161, 10322,
    20645, 41290, 82580, 30967, 7812, 15625, 31250, 62500, 125000, 250000, 93750, 156250, 9375,
    18750, 37500, 75000, 150000, 300000, 112500, 187500, 5208, 10416, 20833, 41666, 83333, 166666,
    104166, 6250, 12500, 25000, 50000, 100000, 200000, 3906, 46875, 78125, 4687, 56250, 5859,
    11718, 23437, 70312, 117187, 2604,
];
const CHERRY_XX44_CLOCKS: &[u32] = &[4000, 4800, 6000, 8000];
