//! Reading the text dumps of reader descriptors libccid publishes (`readers/*.txt` in
//! <https://github.com/LudovicRousseau/CCID>, written by its `parse` tool, `lsusb -v` style).
//!
//! Each dump holds one block per interface: the device's ids (`idVendor`, `idProduct`,
//! `bcdDevice`, names), the interface descriptor and the CCID class descriptor decoded field
//! by field, with the data rates and clocks the reader listed when asked. [`from_lsusb_dump`]
//! turns them back into [`CcidDescriptor`]s, so the policy can be run on real readers
//! without the readers.

use std::fmt;

use super::{CcidDescriptor, Features, Mechanical, Protocols, SynchProtocols, Voltages};

/// One interface of a dumped device: the device's ids, the interface's class, and its CCID
/// class descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpedInterface {
    /// idVendor.
    pub vendor: u16,
    /// idProduct.
    pub product: u16,
    /// bcdDevice (the firmware release), as the BCD number (`5.23` is `0x0523`).
    pub bcd_device: u16,
    /// iManufacturer's string, when the dump has it.
    pub manufacturer: Option<String>,
    /// iProduct's string, when the dump has it.
    pub product_name: Option<String>,
    /// bInterfaceNumber.
    pub interface_number: u8,
    /// iInterface's string, when the dump has it (`OMNIKEY 5422CL Smartcard Reader`).
    pub interface_name: Option<String>,
    /// bInterfaceClass (0x0B CCID, 0xFF vendor-specific).
    pub interface_class: u8,
    /// bInterfaceSubClass.
    pub interface_subclass: u8,
    /// bInterfaceProtocol (0 CCID bulk; 1 ICCD version A, 2 ICCD version B: control pipe).
    pub interface_protocol: u8,
    /// bNumEndpoints.
    pub num_endpoints: u8,
    /// Whether the interface has a bulk-OUT endpoint, from the tool's endpoint summary line
    /// (`bulk-IN, bulk-OUT and Interrupt-IN`, `Control only` ...); `None` in older dumps
    /// that have no such line.
    pub bulk_out: Option<bool>,
    /// The CCID class descriptor.
    pub descriptor: CcidDescriptor,
    /// The data rates (bit/s) the reader answered GET_DATA_RATES with, when listed.
    pub data_rates: Option<Vec<u32>>,
    /// The clocks (kHz) the reader answered GET_CLOCK_FREQUENCIES with, when listed.
    pub clocks_khz: Option<Vec<u32>>,
}

impl DumpedInterface {
    /// `VVVV:PPPP` in hex, lower case, as in a `usb:` URI.
    pub fn usb_id(&self) -> String {
        format!("{:04x}:{:04x}", self.vendor, self.product)
    }

    /// Manufacturer and product names joined, or the USB id when the dump has neither.
    pub fn name(&self) -> String {
        match (&self.manufacturer, &self.product_name) {
            (Some(m), Some(p)) => format!("{m} {p}"),
            (None, Some(p)) => p.clone(),
            (Some(m), None) => m.clone(),
            (None, None) => self.usb_id(),
        }
    }
}

/// Why a dump could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpError {
    /// 1-based line number (0 when the error concerns the whole text).
    pub line: usize,
    /// What is wrong.
    pub detail: String,
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "descriptor dump: {}", self.detail)
        } else {
            write!(f, "descriptor dump, line {}: {}", self.line, self.detail)
        }
    }
}

impl std::error::Error for DumpError {}

/// Fields of one interface block, as read.
#[derive(Default)]
struct Block {
    start: usize,
    vendor: Option<u16>,
    product: Option<u16>,
    bcd_device: Option<u16>,
    manufacturer: Option<String>,
    product_name: Option<String>,
    interface_number: Option<u8>,
    interface_name: Option<String>,
    interface_class: Option<u8>,
    interface_subclass: Option<u8>,
    interface_protocol: Option<u8>,
    num_endpoints: Option<u8>,
    bulk_out: Option<bool>,
    in_class: bool,
    class_length: Option<u8>,
    class_type: Option<u8>,
    bcd_ccid: Option<u16>,
    max_slot_index: Option<u8>,
    voltages: Option<u8>,
    protocols: Option<u32>,
    default_clock_khz: Option<u32>,
    max_clock_khz: Option<u32>,
    num_clocks: Option<u8>,
    data_rate_bps: Option<u32>,
    max_data_rate_bps: Option<u32>,
    num_data_rates: Option<u8>,
    max_ifsd: Option<u32>,
    synch_protocols: Option<u32>,
    mechanical: Option<u32>,
    features: Option<u32>,
    max_message_length: Option<u32>,
    class_get_response: Option<u8>,
    class_envelope: Option<u8>,
    lcd_layout: Option<u16>,
    pin_support: Option<u8>,
    max_busy_slots: Option<u8>,
    data_rates: Vec<u32>,
    clocks_khz: Vec<u32>,
    /// Which list `Support ...` lines belong to.
    list: List,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum List {
    #[default]
    None,
    Clocks,
    Rates,
}

/// Read every interface block of a libccid reader dump (`readers/*.txt`).
///
/// A block starts at `idVendor:`; the CCID class descriptor's fields follow `CCID Class
/// Descriptor`. Numbers are read as the tool prints them: BCD versions `5.23`, clocks
/// `4.000 MHz`, rates `10753 bps`, dwProtocols as two 16-bit words `0x0000 0x0003`, sizes
/// `271 bytes`. Lines that are not `field: value` (the tool's explanations) are skipped;
/// `Support N bps` and `Support N kHz` lines fill the data rate and clock lists (those that
/// do not read, such as the negative numbers some readers' garbage answers print as, are
/// dropped).
///
/// Errors: a [`DumpError`] naming the line for a value that does not read, or the block for
/// a missing field; no block at all is an error too. Never panics, whatever the text.
pub fn from_lsusb_dump(text: &str) -> Result<Vec<DumpedInterface>, DumpError> {
    let mut out = Vec::new();
    let mut block: Option<Block> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("Support ") {
            if let Some(b) = block.as_mut() {
                read_support(b, rest);
            }
            continue;
        }
        if line == "CCID Class Descriptor" {
            if let Some(b) = block.as_mut() {
                b.in_class = true;
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            if let Some(b) = block.as_mut() {
                if b.num_endpoints.is_some() && b.interface_class.is_none() && !b.in_class {
                    // The endpoint summary, between bNumEndpoints and bInterfaceClass.
                    b.bulk_out = Some(line.contains("bulk-OUT"));
                }
            }
            continue;
        };
        let key = key.trim();
        let value = value.trim();
        if key == "idVendor" {
            if let Some(b) = block.take() {
                out.push(finish(b)?);
            }
            let vendor = hex_u16(value).ok_or_else(|| bad(line_no, key, value))?;
            block = Some(Block {
                start: line_no,
                vendor: Some(vendor),
                ..Block::default()
            });
            continue;
        }
        let Some(b) = block.as_mut() else {
            continue;
        };
        read_field(b, key, value).ok_or_else(|| bad(line_no, key, value))?;
    }
    if let Some(b) = block.take() {
        out.push(finish(b)?);
    }
    if out.is_empty() {
        return Err(DumpError {
            line: 0,
            detail: "no interface block (no idVendor line)".into(),
        });
    }
    Ok(out)
}

fn bad(line: usize, key: &str, value: &str) -> DumpError {
    DumpError {
        line,
        detail: format!("{key}: {value:?} does not read"),
    }
}

/// A `Support N bps` or `Support N kHz` line: kept in the list it belongs to. Lines that
/// do not read (some readers answer garbage, which the tool prints as negative numbers) or
/// stand outside their list are dropped.
fn read_support(b: &mut Block, rest: &str) {
    let mut words = rest.split_whitespace();
    let number = words.next().and_then(|w| w.parse::<u32>().ok());
    match (number, words.next(), b.list) {
        (Some(n), Some("bps"), List::Rates) => b.data_rates.push(n),
        (Some(n), Some("kHz"), List::Clocks) => b.clocks_khz.push(n),
        _ => {}
    }
}

/// Reads one `key: value` into the block; `None` when the value does not read. Unknown keys
/// are skipped.
fn read_field(b: &mut Block, key: &str, value: &str) -> Option<()> {
    let first = value.split_whitespace().next().unwrap_or("");
    if !b.in_class {
        match key {
            "iManufacturer" => b.manufacturer = Some(value.to_string()),
            "idProduct" => b.product = Some(hex_u16(value)?),
            "iProduct" => b.product_name = Some(value.to_string()),
            "bcdDevice" => b.bcd_device = Some(bcd(first)?),
            "bInterfaceNumber" => b.interface_number = Some(first.parse().ok()?),
            "iInterface" => b.interface_name = Some(value.to_string()),
            "bNumEndpoints" => b.num_endpoints = Some(first.parse().ok()?),
            "bInterfaceClass" => b.interface_class = Some(hex_u8(first)?),
            "bInterfaceSubClass" => b.interface_subclass = Some(first.parse().ok()?),
            "bInterfaceProtocol" => b.interface_protocol = Some(first.parse().ok()?),
            _ => {}
        }
        return Some(());
    }
    // A field (Hungarian-notation name) ends a clock or data rate list; the tool's
    // explanations ("IFD does not support ...: Broken pipe") do not.
    if key.starts_with(['b', 'd', 'w']) && !key.contains(' ') {
        b.list = List::None;
    }
    match key {
        "bLength" => b.class_length = Some(hex_u8(first)?),
        "bDescriptorType" => b.class_type = Some(hex_u8(first)?),
        "bcdCCID" => b.bcd_ccid = Some(bcd(first)?),
        "bMaxSlotIndex" => b.max_slot_index = Some(hex_u8(first)?),
        "bVoltageSupport" => b.voltages = Some(hex_u8(first)?),
        "dwProtocols" => {
            let mut words = value.split_whitespace();
            let high = hex_u16(words.next()?)?;
            let low = hex_u16(words.next()?)?;
            b.protocols = Some((u32::from(high) << 16) | u32::from(low));
        }
        "dwDefaultClock" => b.default_clock_khz = Some(mhz_to_khz(value)?),
        "dwMaximumClock" => b.max_clock_khz = Some(mhz_to_khz(value)?),
        "bNumClockSupported" => {
            b.num_clocks = Some(first.parse().ok()?);
            b.list = List::Clocks;
        }
        "dwDataRate" => b.data_rate_bps = Some(with_unit(value, "bps")?),
        "dwMaxDataRate" => b.max_data_rate_bps = Some(with_unit(value, "bps")?),
        "bNumDataRatesSupported" => {
            b.num_data_rates = Some(first.parse().ok()?);
            b.list = List::Rates;
        }
        "dwMaxIFSD" => b.max_ifsd = Some(first.parse().ok()?),
        "dwSynchProtocols" => b.synch_protocols = Some(hex_u32(first)?),
        "dwMechanical" => b.mechanical = Some(hex_u32(first)?),
        "dwFeatures" => b.features = Some(hex_u32(first)?),
        "dwMaxCCIDMessageLength" => b.max_message_length = Some(with_unit(value, "bytes")?),
        "bClassGetResponse" => b.class_get_response = Some(hex_u8(first)?),
        "bClassEnvelope" => b.class_envelope = Some(hex_u8(first)?),
        "wLcdLayout" => b.lcd_layout = Some(hex_u16(first)?),
        "bPINSupport" => b.pin_support = Some(hex_u8(first)?),
        "bMaxCCIDBusySlots" => b.max_busy_slots = Some(first.parse().ok()?),
        _ => {}
    }
    Some(())
}

fn finish(b: Block) -> Result<DumpedInterface, DumpError> {
    let start = b.start;
    let missing = |field: &str| DumpError {
        line: start,
        detail: format!("the interface block starting here has no {field}"),
    };
    if !b.in_class {
        return Err(missing("CCID Class Descriptor"));
    }
    if let Some(len) = b.class_length {
        if usize::from(len) < super::CCID_DESCRIPTOR_LEN {
            return Err(DumpError {
                line: start,
                detail: format!("CCID class descriptor bLength 0x{len:02X} is below 0x36"),
            });
        }
    }
    macro_rules! need {
        ($field:ident, $name:literal) => {
            b.$field.ok_or_else(|| missing($name))?
        };
    }
    let descriptor = CcidDescriptor {
        bcd_ccid: need!(bcd_ccid, "bcdCCID"),
        max_slot_index: need!(max_slot_index, "bMaxSlotIndex"),
        voltages: Voltages::from_bits_retain(need!(voltages, "bVoltageSupport")),
        protocols: Protocols::from_bits_retain(need!(protocols, "dwProtocols")),
        default_clock_khz: need!(default_clock_khz, "dwDefaultClock"),
        max_clock_khz: need!(max_clock_khz, "dwMaximumClock"),
        num_clocks: need!(num_clocks, "bNumClockSupported"),
        data_rate_bps: need!(data_rate_bps, "dwDataRate"),
        max_data_rate_bps: need!(max_data_rate_bps, "dwMaxDataRate"),
        num_data_rates: need!(num_data_rates, "bNumDataRatesSupported"),
        max_ifsd: need!(max_ifsd, "dwMaxIFSD"),
        synch_protocols: SynchProtocols::from_bits_retain(need!(
            synch_protocols,
            "dwSynchProtocols"
        )),
        mechanical: Mechanical::from_bits_retain(need!(mechanical, "dwMechanical")),
        features: Features::from_bits_retain(need!(features, "dwFeatures")),
        max_message_length: need!(max_message_length, "dwMaxCCIDMessageLength"),
        class_get_response: need!(class_get_response, "bClassGetResponse"),
        class_envelope: need!(class_envelope, "bClassEnvelope"),
        lcd_layout: need!(lcd_layout, "wLcdLayout"),
        pin_support: need!(pin_support, "bPINSupport"),
        max_busy_slots: need!(max_busy_slots, "bMaxCCIDBusySlots"),
    };
    Ok(DumpedInterface {
        vendor: need!(vendor, "idVendor"),
        product: need!(product, "idProduct"),
        bcd_device: need!(bcd_device, "bcdDevice"),
        manufacturer: b.manufacturer,
        product_name: b.product_name,
        interface_number: need!(interface_number, "bInterfaceNumber"),
        interface_name: b.interface_name,
        interface_class: need!(interface_class, "bInterfaceClass"),
        interface_subclass: b.interface_subclass.unwrap_or(0),
        interface_protocol: need!(interface_protocol, "bInterfaceProtocol"),
        num_endpoints: need!(num_endpoints, "bNumEndpoints"),
        bulk_out: b.bulk_out,
        descriptor,
        data_rates: (!b.data_rates.is_empty()).then_some(b.data_rates),
        clocks_khz: (!b.clocks_khz.is_empty()).then_some(b.clocks_khz),
    })
}

fn hex_digits(text: &str) -> Option<&str> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))?;
    (!digits.is_empty() && digits.bytes().all(|c| c.is_ascii_hexdigit())).then_some(digits)
}

fn hex_u8(text: &str) -> Option<u8> {
    u8::from_str_radix(hex_digits(text)?, 16).ok()
}

fn hex_u16(text: &str) -> Option<u16> {
    u16::from_str_radix(hex_digits(text)?, 16).ok()
}

fn hex_u32(text: &str) -> Option<u32> {
    u32::from_str_radix(hex_digits(text)?, 16).ok()
}

/// `5.23` -> 0x0523: the tool prints BCD as `%X.%02X`.
fn bcd(text: &str) -> Option<u16> {
    let (major, minor) = text.split_once('.')?;
    let ok = |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|c| c.is_ascii_hexdigit());
    if !ok(major) || !ok(minor) {
        return None;
    }
    let major = u16::from_str_radix(major, 16).ok()?;
    let minor = u16::from_str_radix(minor, 16).ok()?;
    Some((major << 8) | minor)
}

/// `4.000 MHz` -> 4000 kHz (the tool prints kHz / 1000 with three decimals).
fn mhz_to_khz(value: &str) -> Option<u32> {
    let mut words = value.split_whitespace();
    let number = words.next()?;
    if words.next()? != "MHz" {
        return None;
    }
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if frac.len() > 3 || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let whole: u32 = whole.parse().ok()?;
    let mut frac_khz: u32 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    for _ in frac.len()..3 {
        frac_khz = frac_khz.checked_mul(10)?;
    }
    whole.checked_mul(1000)?.checked_add(frac_khz)
}

/// `271 bytes` -> 271.
fn with_unit(value: &str, unit: &str) -> Option<u32> {
    let mut words = value.split_whitespace();
    let number = words.next()?.parse().ok()?;
    (words.next()? == unit).then_some(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_printed() {
        assert_eq!(bcd("5.23"), Some(0x0523));
        assert_eq!(bcd("F0.F1"), Some(0xF0F1));
        assert_eq!(bcd("1.10"), Some(0x0110));
        assert_eq!(bcd("1"), None);
        assert_eq!(mhz_to_khz("4.000 MHz"), Some(4000));
        assert_eq!(mhz_to_khz("3.685 MHz"), Some(3685));
        assert_eq!(mhz_to_khz("4000.000 MHz"), Some(4_000_000));
        assert_eq!(mhz_to_khz("4.000 kHz"), None);
        assert_eq!(with_unit("271 bytes", "bytes"), Some(271));
        assert_eq!(with_unit("271", "bytes"), None);
        assert_eq!(hex_u8("0x0B"), Some(0x0B));
        assert_eq!(hex_u8("0x"), None);
        assert_eq!(hex_u8("0x+1"), None);
    }

    #[test]
    fn empty_text_is_an_error() {
        assert!(from_lsusb_dump("").is_err());
        assert!(from_lsusb_dump(" idVendor: 0x04E6\n").is_err());
    }
}
