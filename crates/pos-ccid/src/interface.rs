//! Which interface of a USB device is the card reader: every interface judged (CCID,
//! vendor-class CCID, ICCD, something else), its role guessed (contact, contactless, SAM),
//! and the one to open chosen, each with its reason.
//!
//! [`assess`] and [`choose`] are pure functions over plain interface data ([`Candidate`]),
//! so the choice is tested on real readers' descriptor dumps; the USB transport calls them
//! with what the device reports, and `posctl reader list` shows every verdict.
//!
//! The rules, from the CCID specification 1.1 (section 4: class 0x0B, bInterfaceProtocol
//! 0 for bulk transfers), ISO/IEC 7816-12 (ICCD, bInterfaceProtocol 1 and 2 on the control
//! pipe) and libccid, the reference driver (<https://github.com/LudovicRousseau/CCID>,
//! `src/ccid_usb.c`, `get_ccid_usb_interface`: a vendor-specific interface, class 0xFF,
//! is a CCID reader when it carries a 54-byte class descriptor):
//!
//! - class 0x0B with protocol 0, or class 0xFF with a CCID class descriptor, and a bulk
//!   OUT endpoint: a reader this driver opens;
//! - class 0x0B with protocol 1 or 2: an ICCD token, refused by name (it talks over the
//!   control pipe, which this driver does not speak);
//! - anything else: not a card reader interface.
//!
//! Without `interface=N`, the driver opens the first usable interface whose role is
//! *contact*, else the first whose role is unknown, else a contactless one, else a SAM slot:
//! the EMV contact lane wants the contact slot of a dual reader (the OMNIKEY 5422's is
//! interface 1, its interface 0 is contactless). The role comes from the interface's name
//! (`iInterface`), as readers announce it: `... Contact Reader`, `... CL Reader`, `... PICC`,
//! `... SAM`, `NFC0`, `SMC0`.

use serde::Serialize;

use crate::descriptor::{self, CCID_INTERFACE_CLASS, CcidDescriptor};

/// bInterfaceClass of vendor-specific interfaces.
pub const VENDOR_CLASS: u8 = 0xFF;

/// One interface of a device, as the chooser sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// bInterfaceNumber.
    pub number: u8,
    /// bInterfaceClass.
    pub class: u8,
    /// bInterfaceProtocol.
    pub protocol: u8,
    /// The `iInterface` string, when the device has one and it could be read.
    pub name: Option<String>,
    /// Whether it has a bulk OUT endpoint; `None` when not known (older descriptor dumps).
    pub bulk_out: Option<bool>,
    /// Its CCID class descriptor: `None` when it has none, `Some(Err(why))` when it is bad.
    pub descriptor: Option<Result<CcidDescriptor, String>>,
}

impl Candidate {
    /// From pos-link's interface data (the descriptor looked for in the interface's
    /// class-specific bytes, then in its endpoints').
    pub fn from_usb(info: &pos_link::usb::InterfaceInfo) -> Candidate {
        Candidate {
            number: info.number,
            class: info.class,
            protocol: info.protocol,
            name: info.name.clone(),
            bulk_out: Some(info.has_bulk_out()),
            descriptor: descriptor::find(&info.extra).map(|r| r.map_err(|e| e.to_string())),
        }
    }

    /// From one interface of a libccid descriptor dump.
    pub fn from_dump(iface: &descriptor::DumpedInterface) -> Candidate {
        Candidate {
            number: iface.interface_number,
            class: iface.interface_class,
            protocol: iface.interface_protocol,
            name: iface.interface_name.clone(),
            bulk_out: iface.bulk_out,
            descriptor: Some(Ok(iface.descriptor.clone())),
        }
    }
}

/// What an interface is for, as its name says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A contact slot (ISO 7816 card, the EMV chip lane).
    Contact,
    /// The name says nothing: a single-interface reader, usually contact.
    Unknown,
    /// A contactless (NFC, ISO 14443 PICC) interface: a customer's card still goes there.
    Contactless,
    /// A SAM slot (a security module inside the terminal, never a customer's card).
    Sam,
}

impl Role {
    /// Lower-case name, as `posctl reader list` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Contact => "contact",
            Role::Unknown => "unknown",
            Role::Sam => "SAM",
            Role::Contactless => "contactless",
        }
    }
}

/// The role an interface name announces, and the word that says so (`None` when no word
/// does).
pub fn role_of(name: Option<&str>) -> (Role, Option<String>) {
    let Some(name) = name else {
        return (Role::Unknown, None);
    };
    let lower = name.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let said = |w: &str| Some(w.to_string());
    // Contactless first: "contactless" holds "contact".
    for w in &words {
        let contactless = matches!(*w, "contactless" | "picc" | "rfid" | "cl")
            || w.starts_with("nfc")
            // "5422CL", "5122CL": a model number with CL appended.
            || w
                .strip_suffix("cl")
                .is_some_and(|model| !model.is_empty() && model.chars().all(|c| c.is_ascii_digit()));
        if contactless {
            return (Role::Contactless, said(w));
        }
    }
    for w in &words {
        // "SAM", "SAM1", "SAMX" (not "sample").
        let sam = w.strip_prefix("sam").is_some_and(|rest| {
            rest.is_empty() || rest == "x" || rest.chars().all(|c| c.is_ascii_digit())
        });
        if sam {
            return (Role::Sam, said(w));
        }
    }
    for w in &words {
        let contact = matches!(*w, "contact" | "contacted" | "icc" | "ct")
            || w.strip_prefix("smc")
                .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit()));
        if contact {
            return (Role::Contact, said(w));
        }
    }
    (Role::Unknown, None)
}

/// The verdict on one interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessed {
    /// bInterfaceNumber.
    pub number: u8,
    /// bInterfaceClass.
    pub class: u8,
    /// The `iInterface` string, if any.
    pub name: Option<String>,
    /// Its role, from its name.
    pub role: Role,
    /// Why that role (the word in the name), or that the name says nothing.
    pub role_reason: String,
    /// `Ok(())`: a CCID reader interface this driver opens (vendor class included);
    /// `Err(why)`: why not.
    pub usable: Result<(), String>,
}

impl Assessed {
    /// Whether this driver can open it.
    pub fn is_usable(&self) -> bool {
        self.usable.is_ok()
    }

    /// Whether it is a smart-card interface at all (CCID, vendor-class CCID or ICCD), usable
    /// or not: what `posctl reader list` lists.
    pub fn is_card_interface(&self) -> bool {
        self.class == CCID_INTERFACE_CLASS || self.is_usable()
    }
}

/// Judge one interface: whether this driver opens it, and its role.
pub fn assess(c: &Candidate) -> Assessed {
    let (role, word) = role_of(c.name.as_deref());
    let role_reason = match (&word, &c.name) {
        (Some(w), Some(n)) => format!("its name {n:?} says {w:?}"),
        (_, Some(n)) => format!("its name {n:?} names no role"),
        _ => "it has no name".to_string(),
    };
    Assessed {
        number: c.number,
        class: c.class,
        name: c.name.clone(),
        role,
        role_reason,
        usable: usable(c),
    }
}

fn usable(c: &Candidate) -> Result<(), String> {
    let class_ok = match (c.class, c.protocol) {
        (CCID_INTERFACE_CLASS, 0) => Ok(()),
        (CCID_INTERFACE_CLASS, p @ (1 | 2)) => Err(format!(
            "an ICCD token (ISO/IEC 7816-12 USB-ICC, version {}, bInterfaceProtocol {p}): ICCD \
             talks over the control pipe, which pos-ccid does not speak (it drives CCID \
             bulk-transfer readers); use a CCID reader, or pcscd's libccid, which drives ICCD",
            if p == 1 { 'A' } else { 'B' }
        )),
        (CCID_INTERFACE_CLASS, p) => Err(format!(
            "bInterfaceProtocol {p} is neither CCID (0) nor ICCD (1, 2)"
        )),
        (VENDOR_CLASS, _) => match &c.descriptor {
            Some(Ok(_)) => Ok(()),
            _ => Err(
                "a vendor-specific interface (class 0xFF) without a CCID class descriptor: \
                      not a card reader interface"
                    .into(),
            ),
        },
        (class, _) => Err(format!(
            "class 0x{class:02X} ({}): not a smart-card interface",
            pos_link::usb::class_name(class)
        )),
    };
    class_ok?;
    match &c.descriptor {
        None => return Err("no CCID class descriptor (type 0x21)".into()),
        Some(Err(e)) => return Err(format!("bad CCID class descriptor: {e}")),
        Some(Ok(_)) => {}
    }
    if c.bulk_out == Some(false) {
        return Err("no bulk OUT endpoint (CCID commands go there)".into());
    }
    Ok(())
}

/// The interface to open, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Choice {
    /// bInterfaceNumber of the interface to open.
    pub number: u8,
    /// Why this one.
    pub reason: String,
    /// Every interface of the device, judged.
    pub interfaces: Vec<Assessed>,
}

/// Choose the interface to open among a device's `interfaces`: `wanted` (from
/// `interface=N`) when given, else by role (contact, unknown, contactless, SAM; the lowest
/// number among equals).
///
/// Errors: a message naming every interface and why it cannot be used, when `wanted` is
/// not usable or none is.
pub fn choose(interfaces: &[Candidate], wanted: Option<u8>) -> Result<Choice, String> {
    let assessed: Vec<Assessed> = interfaces.iter().map(assess).collect();
    let describe = |a: &Assessed| {
        let name = a
            .name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        match &a.usable {
            Ok(()) => format!("interface {}{name}: {} reader", a.number, a.role.name()),
            Err(why) => format!("interface {}{name}: {why}", a.number),
        }
    };
    let all = || assessed.iter().map(describe).collect::<Vec<_>>().join("; ");
    if let Some(n) = wanted {
        return match assessed.iter().find(|a| a.number == n) {
            Some(a) if a.is_usable() => Ok(Choice {
                number: n,
                reason: format!("interface={n} in the address ({})", a.role.name()),
                interfaces: assessed.clone(),
            }),
            Some(a) => Err(format!("interface {n} cannot be used: {}", describe(a))),
            None => Err(format!(
                "the device has no interface {n}; it has: {}",
                all()
            )),
        };
    }
    let best = assessed
        .iter()
        .filter(|a| a.is_usable())
        .min_by_key(|a| (a.role, a.number));
    let Some(best) = best else {
        return Err(format!("no CCID reader interface: {}", all()));
    };
    let usable = assessed.iter().filter(|a| a.is_usable()).count();
    let reason = if usable == 1 {
        format!("the device's only CCID interface ({})", best.role.name())
    } else {
        let why = match best.role {
            Role::Contact => format!("the contact interface: {}", best.role_reason),
            Role::Unknown => {
                format!(
                    "no interface names itself contact; the first that is not contactless or SAM ({})",
                    best.role_reason
                )
            }
            Role::Sam | Role::Contactless => format!(
                "no contact interface: the first {} one ({}); an EMV contact card cannot be read here",
                best.role.name(),
                best.role_reason
            ),
        };
        format!("{why} (of {usable} CCID interfaces; another is opened with interface=N)")
    };
    Ok(Choice {
        number: best.number,
        reason,
        interfaces: assessed.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(number: u8, name: Option<&str>) -> Candidate {
        Candidate {
            number,
            class: CCID_INTERFACE_CLASS,
            protocol: 0,
            name: name.map(str::to_string),
            bulk_out: Some(true),
            descriptor: Some(Ok(CcidDescriptor::example_tpdu_reader())),
        }
    }

    #[test]
    fn roles_from_names_readers_use() {
        let cases = [
            ("OMNIKEY 5422CL Smartcard Reader", Role::Contactless),
            ("OMNIKEY 5422 Smartcard Reader", Role::Unknown),
            ("R502 Contactless Reader", Role::Contactless),
            ("R502 Contact Reader", Role::Contact),
            ("R502 SAM1 Reader", Role::Sam),
            ("ACR1251 Dual Reader PICC", Role::Contactless),
            ("ACR1581 1S Dual Reader ICC", Role::Contact),
            ("uTrust 4701 F CL Reader", Role::Contactless),
            ("Contacted SmartCard", Role::Contact),
            ("NFC0", Role::Contactless),
            ("SMC2", Role::Contact),
            ("DC4 SAMX_Reader", Role::Sam),
            ("SmartCard Reader CT", Role::Contact),
            ("CCID Interface", Role::Unknown),
            // "CLOUD" is not "CL", "Sample" is not a SAM.
            ("CLOUD 2700 R Smart Card Reader", Role::Unknown),
            ("Sample reader", Role::Unknown),
        ];
        for (name, role) in cases {
            assert_eq!(role_of(Some(name)).0, role, "{name}");
        }
        assert_eq!(role_of(None), (Role::Unknown, None));
    }

    #[test]
    fn the_contact_interface_of_a_dual_reader_is_chosen() {
        // OMNIKEY 5422: interface 0 contactless, 1 contact (named without a role word).
        let omnikey = [
            reader(0, Some("OMNIKEY 5422CL Smartcard Reader")),
            reader(1, Some("OMNIKEY 5422 Smartcard Reader")),
        ];
        let c = choose(&omnikey, None).unwrap();
        assert_eq!(c.number, 1);
        assert!(c.reason.contains("not contactless"), "{}", c.reason);
        // Feitian R502: contactless, contact, SAM, SAM.
        let r502 = [
            reader(0, Some("R502 Contactless Reader")),
            reader(1, Some("R502 Contact Reader")),
            reader(2, Some("R502 SAM1 Reader")),
            reader(3, Some("R502 SAM2 Reader")),
        ];
        let c = choose(&r502, None).unwrap();
        assert_eq!(c.number, 1);
        assert!(c.reason.contains("contact interface"), "{}", c.reason);
        // PICC + SAM: the contactless one (a customer's card goes there, never into the
        // SAM slot), said plainly.
        let acr = [
            reader(0, Some("ACR1251 Dual Reader SAM")),
            reader(1, Some("ACR1251 Dual Reader PICC")),
        ];
        let c = choose(&acr, None).unwrap();
        assert_eq!(c.number, 1);
        assert!(c.reason.contains("no contact interface"), "{}", c.reason);
        // interface=N wins.
        assert_eq!(choose(&omnikey, Some(0)).unwrap().number, 0);
    }

    #[test]
    fn vendor_class_with_a_ccid_descriptor_is_a_reader() {
        let mut vendor = reader(0, None);
        vendor.class = VENDOR_CLASS;
        assert!(assess(&vendor).is_usable());
        assert_eq!(choose(&[vendor.clone()], None).unwrap().number, 0);
        vendor.descriptor = None;
        let a = assess(&vendor);
        assert!(
            a.usable
                .unwrap_err()
                .contains("without a CCID class descriptor")
        );
    }

    #[test]
    fn a_descriptor_after_the_endpoints_is_found() {
        // O2Micro OZ776 (libccid quirk row DescriptorOnEndpoint): the interface has no
        // class bytes; the CCID descriptor follows the last endpoint descriptor, whose class
        // bytes pos-link appends to the interface's.
        let info = pos_link::usb::InterfaceInfo {
            number: 0,
            class: CCID_INTERFACE_CLASS,
            extra: CcidDescriptor::example_tpdu_reader().encode(),
            endpoints: vec![pos_link::usb::EndpointInfo {
                address: 0x01,
                transfer: pos_link::usb::TransferKind::Bulk,
                max_packet: 64,
            }],
            ..Default::default()
        };
        let c = Candidate::from_usb(&info);
        assert!(matches!(c.descriptor, Some(Ok(_))));
        assert_eq!(choose(&[c], None).unwrap().number, 0);
        // And with no descriptor anywhere, the interface is refused saying so.
        let bare = pos_link::usb::InterfaceInfo {
            extra: Vec::new(),
            ..info
        };
        let err = choose(&[Candidate::from_usb(&bare)], None).unwrap_err();
        assert!(err.contains("no CCID class descriptor"), "{err}");
    }

    #[test]
    fn iccd_and_other_classes_are_refused_by_name() {
        let mut iccd = reader(0, Some("eToken"));
        iccd.protocol = 2;
        let err = choose(&[iccd.clone()], None).unwrap_err();
        assert!(err.contains("ICCD") && err.contains("version B"), "{err}");
        iccd.protocol = 1;
        assert!(assess(&iccd).usable.unwrap_err().contains("version A"));
        let mut hid = reader(1, None);
        hid.class = 0x03;
        let err = choose(&[hid], None).unwrap_err();
        assert!(err.contains("class 0x03"), "{err}");
        let mut no_out = reader(0, None);
        no_out.bulk_out = Some(false);
        assert!(choose(&[no_out], None).unwrap_err().contains("bulk OUT"));
    }

    #[test]
    fn a_wanted_interface_that_is_not_usable_or_absent_is_an_error() {
        let mut hid = reader(0, Some("Keyboard"));
        hid.class = 0x03;
        let both = [hid, reader(1, Some("Contact"))];
        let err = choose(&both, Some(0)).unwrap_err();
        assert!(err.contains("interface 0 cannot be used"), "{err}");
        let err = choose(&both, Some(5)).unwrap_err();
        assert!(
            err.contains("no interface 5") && err.contains("interface 1"),
            "{err}"
        );
    }
}
