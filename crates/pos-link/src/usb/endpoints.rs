//! Which interface and endpoints a [`UsbLink`](super::UsbLink) uses: interface classes, plain
//! descriptor data ([`InterfaceInfo`], [`EndpointInfo`]) and [`select_endpoints`], a pure
//! function over it, so the choice is testable without hardware.

#[cfg(doc)]
use super::UsbLink;

/// Interface class: communications (CDC control; serial adapters, modems).
pub const CLASS_CDC: u8 = 0x02;
/// Interface class: human interface device (keyboard-wedge and HID card readers).
pub const CLASS_HID: u8 = 0x03;
/// Interface class: printer.
pub const CLASS_PRINTER: u8 = 0x07;
/// Interface class: hub.
pub const CLASS_HUB: u8 = 0x09;
/// Interface class: CDC data.
pub const CLASS_CDC_DATA: u8 = 0x0A;
/// Interface class: smart card (CCID).
pub const CLASS_CCID: u8 = 0x0B;
/// Interface class: vendor specific.
pub const CLASS_VENDOR_SPECIFIC: u8 = 0xFF;

/// A human name for an interface class code, for messages.
pub fn class_name(class: u8) -> &'static str {
    match class {
        0x01 => "audio",
        CLASS_CDC => "CDC",
        CLASS_HID => "HID",
        CLASS_PRINTER => "printer",
        0x08 => "mass storage",
        CLASS_HUB => "hub",
        CLASS_CDC_DATA => "CDC data",
        CLASS_CCID => "smart card (CCID)",
        0x0E => "video",
        0xE0 => "wireless",
        0xEF => "miscellaneous",
        0xFE => "application specific",
        CLASS_VENDOR_SPECIFIC => "vendor specific",
        _ => "other",
    }
}

/// How [`UsbLink`] picks the interface to claim.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsbOpenOptions {
    /// Claim the first interface of this class (e.g. [`CLASS_PRINTER`], [`CLASS_CCID`],
    /// [`CLASS_HID`]). `None`: the first interface that has a bulk OUT endpoint.
    pub interface_class: Option<u8>,
    /// Claim the interface with this number (checked against `interface_class` too, if
    /// that is given).
    pub interface_number: Option<u8>,
}

/// An endpoint's transfer type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// Control transfers.
    Control,
    /// Isochronous transfers.
    Isochronous,
    /// Bulk transfers.
    Bulk,
    /// Interrupt transfers.
    Interrupt,
}

/// One endpoint, as plain data from an endpoint descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointInfo {
    /// `bEndpointAddress`: the number in bits 0-3, the direction in bit 7 (set: IN, device to
    /// host).
    pub address: u8,
    /// The transfer type.
    pub transfer: TransferKind,
    /// `wMaxPacketSize` as in the descriptor (bits 11-12, the high-bandwidth multiplier, are
    /// masked off where the size is used).
    pub max_packet: u16,
}

impl EndpointInfo {
    /// True for an IN (device to host) endpoint.
    pub fn is_in(&self) -> bool {
        self.address & 0x80 != 0
    }

    /// The packet size proper, without the high-bandwidth multiplier bits.
    pub fn packet_size(&self) -> u16 {
        self.max_packet & 0x07FF
    }
}

/// One interface (its default alternate setting), as plain data from the config descriptor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// `bInterfaceNumber`.
    pub number: u8,
    /// `bInterfaceClass`.
    pub class: u8,
    /// `bInterfaceSubClass`.
    pub subclass: u8,
    /// `bInterfaceProtocol` (for class 0x0B: 0 CCID, 1 and 2 ICCD versions A and B).
    pub protocol: u8,
    /// The `iInterface` string (e.g. `OMNIKEY 5422CL Smartcard Reader`), when it was read:
    /// only [`UsbLink::open_uri_choosing`](super::UsbLink::open_uri_choosing) and
    /// [`device_interfaces`](super::device_interfaces) read strings.
    pub name: Option<String>,
    /// The `iInterface` string index (`None`: the interface has no name).
    pub name_index: Option<u8>,
    /// Class-specific descriptor bytes of the interface, then those of its endpoints (where
    /// some readers put their CCID descriptor).
    pub extra: Vec<u8>,
    /// The interface's endpoints, in descriptor order.
    pub endpoints: Vec<EndpointInfo>,
}

impl InterfaceInfo {
    /// Whether the interface has a bulk OUT endpoint (what command pipes need).
    pub fn has_bulk_out(&self) -> bool {
        self.first(TransferKind::Bulk, false).is_some()
    }

    fn first(&self, transfer: TransferKind, input: bool) -> Option<&EndpointInfo> {
        self.endpoints
            .iter()
            .find(|e| e.transfer == transfer && e.is_in() == input)
    }
}

/// The endpoints a [`UsbLink`] uses, from [`select_endpoints`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct UsbEndpoints {
    /// Bulk IN endpoint address (device to host), if the interface has one.
    pub bulk_in: Option<u8>,
    /// Bulk OUT endpoint address (host to device), if the interface has one.
    pub bulk_out: Option<u8>,
    /// Interrupt IN endpoint address (e.g. CCID slot change notifications), if any.
    pub interrupt_in: Option<u8>,
    /// Max packet size of the bulk IN endpoint (0 without one).
    pub max_packet_in: u16,
    /// Max packet size of the bulk OUT endpoint (0 without one).
    pub max_packet_out: u16,
    /// Max packet size of the interrupt IN endpoint (0 without one).
    pub max_packet_interrupt: u16,
    /// The interface number claimed.
    pub interface: u8,
    /// That interface's class.
    pub interface_class: u8,
}

/// Why [`select_endpoints`] found nothing to use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointSelectError {
    /// The configuration has no interfaces at all.
    #[error("the device's configuration has no interfaces")]
    NoInterfaces,
    /// No interface has the class or number asked for.
    #[error("no interface {wanted}; the device has {available}")]
    NoMatchingInterface {
        /// What was asked for, e.g. `of class 0x0b (smart card (CCID))`.
        wanted: String,
        /// The interfaces there are.
        available: String,
    },
    /// No class or number was asked for and no interface has a bulk OUT endpoint.
    #[error("no interface has a bulk OUT endpoint; the device has {available}")]
    NoBulkOut {
        /// The interfaces there are.
        available: String,
    },
    /// The interface asked for has neither bulk nor interrupt IN endpoints.
    #[error("interface {interface} has no bulk or interrupt IN endpoints")]
    NoUsableEndpoints {
        /// The interface number.
        interface: u8,
    },
}

fn describe_interfaces(interfaces: &[InterfaceInfo]) -> String {
    if interfaces.is_empty() {
        return "no interfaces".to_string();
    }
    let parts: Vec<String> = interfaces
        .iter()
        .map(|i| {
            format!(
                "interface {} (class 0x{:02x} {})",
                i.number,
                i.class,
                class_name(i.class)
            )
        })
        .collect();
    parts.join(", ")
}

/// Pick the interface and its endpoints from plain descriptor data.
///
/// - With neither `interface_class` nor `interface_number`: the first interface that has a
///   bulk OUT endpoint; none -> [`EndpointSelectError::NoBulkOut`].
/// - Otherwise among the interfaces that match both filters: the first with a bulk OUT
///   endpoint, else the first with a bulk IN or interrupt IN endpoint (an IN-only interface
///   such as a HID reader or a unidirectional device); no match ->
///   [`EndpointSelectError::NoMatchingInterface`], no usable endpoint ->
///   [`EndpointSelectError::NoUsableEndpoints`].
///
/// On the chosen interface the first bulk IN, bulk OUT and interrupt IN endpoints are taken.
pub fn select_endpoints(
    interfaces: &[InterfaceInfo],
    opts: &UsbOpenOptions,
) -> Result<UsbEndpoints, EndpointSelectError> {
    if interfaces.is_empty() {
        return Err(EndpointSelectError::NoInterfaces);
    }
    let has_bulk_out = |i: &InterfaceInfo| i.first(TransferKind::Bulk, false).is_some();
    let chosen = if opts.interface_class.is_none() && opts.interface_number.is_none() {
        interfaces.iter().find(|i| has_bulk_out(i)).ok_or_else(|| {
            EndpointSelectError::NoBulkOut {
                available: describe_interfaces(interfaces),
            }
        })?
    } else {
        let candidates: Vec<&InterfaceInfo> = interfaces
            .iter()
            .filter(|i| {
                opts.interface_class.is_none_or(|c| i.class == c)
                    && opts.interface_number.is_none_or(|n| i.number == n)
            })
            .collect();
        let Some(first) = candidates.first() else {
            let mut wanted = Vec::new();
            if let Some(n) = opts.interface_number {
                wanted.push(format!("number {n}"));
            }
            if let Some(c) = opts.interface_class {
                wanted.push(format!("of class 0x{c:02x} ({})", class_name(c)));
            }
            return Err(EndpointSelectError::NoMatchingInterface {
                wanted: wanted.join(" "),
                available: describe_interfaces(interfaces),
            });
        };
        candidates
            .iter()
            .find(|i| has_bulk_out(i))
            .or_else(|| {
                candidates.iter().find(|i| {
                    i.first(TransferKind::Bulk, true).is_some()
                        || i.first(TransferKind::Interrupt, true).is_some()
                })
            })
            .copied()
            .ok_or(EndpointSelectError::NoUsableEndpoints {
                interface: first.number,
            })?
    };
    let bulk_in = chosen.first(TransferKind::Bulk, true);
    let bulk_out = chosen.first(TransferKind::Bulk, false);
    let interrupt_in = chosen.first(TransferKind::Interrupt, true);
    Ok(UsbEndpoints {
        bulk_in: bulk_in.map(|e| e.address),
        bulk_out: bulk_out.map(|e| e.address),
        interrupt_in: interrupt_in.map(|e| e.address),
        max_packet_in: bulk_in.map_or(0, EndpointInfo::packet_size),
        max_packet_out: bulk_out.map_or(0, EndpointInfo::packet_size),
        max_packet_interrupt: interrupt_in.map_or(0, EndpointInfo::packet_size),
        interface: chosen.number,
        interface_class: chosen.class,
    })
}

/// The interfaces of a configuration as plain data (the default alternate setting of each,
/// or its first setting when there is no setting 0).
pub(crate) fn interfaces_of(config: &rusb::ConfigDescriptor) -> Vec<InterfaceInfo> {
    let mut out: Vec<InterfaceInfo> = Vec::new();
    for iface in config.interfaces() {
        let settings: Vec<rusb::InterfaceDescriptor<'_>> = iface.descriptors().collect();
        let Some(d) = settings
            .iter()
            .find(|d| d.setting_number() == 0)
            .or_else(|| settings.first())
        else {
            continue;
        };
        if out.iter().any(|i| i.number == d.interface_number()) {
            continue;
        }
        let mut extra = d.extra().to_vec();
        for ep in d.endpoint_descriptors() {
            extra.extend_from_slice(ep.extra().unwrap_or_default());
        }
        out.push(InterfaceInfo {
            number: d.interface_number(),
            class: d.class_code(),
            subclass: d.sub_class_code(),
            protocol: d.protocol_code(),
            name: None,
            name_index: d.description_string_index(),
            extra,
            endpoints: d
                .endpoint_descriptors()
                .map(|e| EndpointInfo {
                    address: e.address(),
                    transfer: match e.transfer_type() {
                        rusb::TransferType::Control => TransferKind::Control,
                        rusb::TransferType::Isochronous => TransferKind::Isochronous,
                        rusb::TransferType::Bulk => TransferKind::Bulk,
                        rusb::TransferType::Interrupt => TransferKind::Interrupt,
                    },
                    max_packet: e.max_packet_size(),
                })
                .collect(),
        });
    }
    out
}
