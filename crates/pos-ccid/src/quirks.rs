//! Known behaviours of particular reader models, as data: one row per model (USB vendor and
//! product id, a firmware range from bcdDevice), each with what the reader does wrong or
//! differently and where that is documented.
//!
//! [`lookup`] gives the rows that apply to a device; [`ReaderPolicy::decide`] takes them
//! into account. Adding a reader is adding a row to [`QUIRKS`].
//!
//! The facts come from libccid, the reference CCID driver (Ludovic Rousseau,
//! <https://github.com/LudovicRousseau/CCID>, LGPL-2.1-or-later): each row's `source` names
//! the file and function where libccid applies the same rule. No code is taken from it.
//!
//! [`ReaderPolicy::decide`]: crate::policy::ReaderPolicy::decide

use serde::Serialize;

use crate::descriptor::ExchangeLevel;

/// What a quirk changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum QuirkKind {
    /// The firmware works at this exchange level whatever its descriptor says.
    ExchangeLevel(ExchangeLevel),
    /// When IccPowerOn fails with bError `error`, send the Escape command `escape` (which
    /// switches the reader out of its EMV-only mode) and power on once more.
    PowerOnEscapeRetry {
        /// The bError that calls for the escape.
        error: u8,
        /// The Escape command's data.
        escape: &'static [u8],
    },
    /// The reader cannot run the card faster than this many bit/s, whatever its
    /// dwMaxDataRate and data rate list say (rates above it are dropped from the list).
    MaxDataRate(u32),
    /// The reader does not carry a PPS exchange: the card stays at its default speed.
    NoPps,
    /// The firmware reports dwMaxCCIDMessageLength `reported` where it handles `actual`.
    MessageLength {
        /// The value in the descriptor.
        reported: u32,
        /// The length the reader really accepts.
        actual: u32,
    },
    /// Firmware older than this bcdDevice is known broken: the reader is refused.
    MinimumFirmware(u16),
    /// The reader may send zero-length packets on the bulk-in pipe (read and drop one before
    /// each command).
    ZeroLengthPacket,
    /// The CCID class descriptor follows the last endpoint descriptor instead of the
    /// interface descriptor.
    DescriptorOnEndpoint,
    /// The host must not send S(IFS request): the card or reader does not take it.
    NoIfsdRequest,
}

/// One documented behaviour of a reader model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Quirk {
    /// The model, for people.
    pub model: &'static str,
    /// What it changes.
    pub kind: QuirkKind,
    /// Where the behaviour is documented (file and function of the public source).
    pub source: &'static str,
}

/// A row of [`QUIRKS`]: which devices a [`Quirk`] applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuirkRow {
    /// USB idVendor.
    pub vendor: u16,
    /// USB idProduct; `None` for every product of the vendor.
    pub product: Option<u16>,
    /// bcdDevice range (inclusive) the row applies to.
    pub firmware: (u16, u16),
    /// The behaviour.
    pub quirk: Quirk,
}

const ANY_FIRMWARE: (u16, u16) = (0x0000, 0xFFFF);

/// Source citations, shared by several rows.
const HACK_POST: &str = "libccid src/ccid.c, ccid_open_hack_post()";
const HACK_PRE: &str = "libccid src/ccid.c, ccid_open_hack_pre()";
const POWER_ON: &str =
    "libccid src/commands.c, CmdPowerOn() (bError 0xBB: protocol error in EMV mode)";
const BOGUS: &str = "libccid src/ccid_usb.c, Bogus_firmwares[] and ccid_check_firmware()";

const fn row(
    vendor: u16,
    product: u16,
    model: &'static str,
    kind: QuirkKind,
    source: &'static str,
) -> QuirkRow {
    QuirkRow {
        vendor,
        product: Some(product),
        firmware: ANY_FIRMWARE,
        quirk: Quirk {
            model,
            kind,
            source,
        },
    }
}

/// A reader refused below firmware `minimum`: the row matches bcdDevice 0 to `minimum - 1`.
const fn old_firmware(vendor: u16, product: u16, model: &'static str, minimum: u16) -> QuirkRow {
    QuirkRow {
        vendor,
        product: Some(product),
        firmware: (0, minimum.saturating_sub(1)),
        quirk: Quirk {
            model,
            kind: QuirkKind::MinimumFirmware(minimum),
            source: BOGUS,
        },
    }
}

const EXTENDED: QuirkKind = QuirkKind::ExchangeLevel(ExchangeLevel::ExtendedApdu);
const ESCAPE_ISO_MODE: QuirkKind = QuirkKind::PowerOnEscapeRetry {
    error: 0xBB,
    escape: &[0x1F, 0x01],
};

/// Every known reader quirk.
pub const QUIRKS: &[QuirkRow] = &[
    // Firmware that chains like an extended-APDU reader whatever it announces.
    row(
        0x076B,
        0x3031,
        "HID OMNIKEY 3x21 (3121, 3021, 1021)",
        EXTENDED,
        HACK_POST,
    ),
    row(
        0x076B,
        0x3A21,
        "HID Aviator (OMNIKEY generic)",
        EXTENDED,
        HACK_POST,
    ),
    row(0x076B, 0x6632, "HID OMNIKEY 6121", EXTENDED, HACK_POST),
    row(
        0x046A,
        0x00A7,
        "Cherry Smart Terminal xx44",
        EXTENDED,
        HACK_POST,
    ),
    row(
        0x0BF8,
        0x1024,
        "Fujitsu Smartcard Reader D323",
        EXTENDED,
        HACK_POST,
    ),
    row(
        0x2F7C,
        0x6007,
        "Diebold Nixdorf PN7362AU",
        EXTENDED,
        HACK_POST,
    ),
    // Announces extended APDUs, handles short ones only.
    row(
        0x0D46,
        0x3010,
        "KOBIL TriB@nk",
        QuirkKind::ExchangeLevel(ExchangeLevel::ShortApdu),
        HACK_POST,
    ),
    // EMV mode refuses some cards at power-on; an escape switches to ISO mode.
    row(0x046A, 0x0005, "Cherry XX33", ESCAPE_ISO_MODE, POWER_ON),
    row(
        0x08E6,
        0x4433,
        "Gemplus GemPC433",
        ESCAPE_ISO_MODE,
        POWER_ON,
    ),
    // Speed limits.
    row(
        0x058F,
        0x9540,
        "Alcor Micro AU9540",
        QuirkKind::MaxDataRate(200_000),
        HACK_PRE,
    ),
    row(
        0x0B97,
        0x7762,
        "O2Micro OZ776",
        QuirkKind::MaxDataRate(9600),
        HACK_PRE,
    ),
    row(
        0x0B97,
        0x7772,
        "O2Micro OZ776",
        QuirkKind::MaxDataRate(9600),
        HACK_PRE,
    ),
    row(
        0x0B97,
        0x7762,
        "O2Micro OZ776",
        QuirkKind::NoPps,
        "libccid src/ifdhandler.c, IFDHSetProtocolParameters() (O2MICRO_OZ776_PATCH)",
    ),
    row(
        0x0B97,
        0x7772,
        "O2Micro OZ776",
        QuirkKind::NoPps,
        "libccid src/ifdhandler.c, IFDHSetProtocolParameters() (O2MICRO_OZ776_PATCH)",
    ),
    row(
        0x0B97,
        0x7762,
        "O2Micro OZ776",
        QuirkKind::DescriptorOnEndpoint,
        "libccid src/ccid_usb.c, get_ccid_device_descriptor() (O2MICRO_OZ776_PATCH)",
    ),
    row(
        0x0B97,
        0x7772,
        "O2Micro OZ776",
        QuirkKind::DescriptorOnEndpoint,
        "libccid src/ccid_usb.c, get_ccid_device_descriptor() (O2MICRO_OZ776_PATCH)",
    ),
    // SCM firmware reports 263 where it takes 270 (a full 260-byte APDU and the header).
    QuirkRow {
        vendor: 0x04E6,
        product: None,
        firmware: ANY_FIRMWARE,
        quirk: Quirk {
            model: "SCM Microsystems readers",
            kind: QuirkKind::MessageLength {
                reported: 263,
                actual: 270,
            },
            source: "libccid src/commands.c, BOGUS_SCM_FIRMWARE_FOR_dwMaxCCIDMessageLength in CmdXfrBlockTPDU_T0()",
        },
    },
    // Zero-length packets on USB 3 ports, firmware 2.00 only.
    QuirkRow {
        vendor: 0x08E6,
        product: Some(0x3437),
        firmware: (0x0200, 0x0200),
        quirk: Quirk {
            model: "Gemalto GemPC Twin",
            kind: QuirkKind::ZeroLengthPacket,
            source: "libccid src/ccid.c, ccid_open_hack_pre() (ENABLE_ZLP)",
        },
    },
    QuirkRow {
        vendor: 0x08E6,
        product: Some(0x3438),
        firmware: (0x0200, 0x0200),
        quirk: Quirk {
            model: "Gemalto GemPC Key",
            kind: QuirkKind::ZeroLengthPacket,
            source: "libccid src/ccid.c, ccid_open_hack_pre() (ENABLE_ZLP)",
        },
    },
    QuirkRow {
        vendor: 0x413C,
        product: Some(0x2101),
        firmware: (0x0200, 0x0200),
        quirk: Quirk {
            model: "Dell smart card reader keyboard",
            kind: QuirkKind::ZeroLengthPacket,
            source: "libccid src/ccid.c, ccid_open_hack_pre() (ENABLE_ZLP)",
        },
    },
    // Firmware 0.12 and 0.13 do not take the IFSD negotiation.
    QuirkRow {
        vendor: 0x0529,
        product: Some(0x0620),
        firmware: (0x0012, 0x0013),
        quirk: Quirk {
            model: "SafeNet eToken 5100",
            kind: QuirkKind::NoIfsdRequest,
            source: HACK_POST,
        },
    },
    // Firmware below which libccid refuses the reader.
    old_firmware(0x04E6, 0xE001, "SCM SCR331", 0x0516),
    old_firmware(0x04E6, 0x5111, "SCM SCR331-DI", 0x0620),
    old_firmware(0x04E6, 0xE003, "SCM SPR532", 0x0510),
    old_firmware(0x0D46, 0x3001, "KOBIL KAAN Base", 0x0037),
    old_firmware(0x0D46, 0x3002, "KOBIL KAAN Advanced", 0x0037),
    old_firmware(0x09C3, 0x0008, "ActivCard V2", 0x0203),
    old_firmware(0x0DC3, 0x1004, "Athena ASE IIIe USB v2", 0x0502),
    old_firmware(0x0DC3, 0x1102, "Athena ASE IIIe KB USB", 0x0607),
    old_firmware(0x058F, 0x9520, "Alcor Micro AU9520-G", 0x0102),
    old_firmware(0x072F, 0x2200, "ACS ACR122U-WB-R", 0x0206),
    old_firmware(0x08C3, 0x0402, "Precise Biometrics Precise 200 MC", 0x5000),
    old_firmware(0x08C3, 0x0401, "Precise Biometrics Precise 250 MC", 0x5000),
    old_firmware(0x0B0C, 0x0050, "Todos Argos Mini II", 0x0101),
    old_firmware(0x0DC3, 0x0900, "Athena IDProtect Key v2", 0x0200),
    old_firmware(0x03F0, 0x0036, "HP USB CCID Smartcard Keyboard", 0x0124),
    old_firmware(0x062D, 0x0001, "THRC Smart Card Reader", 0x0102),
    old_firmware(0x04E6, 0x5291, "SCM SCL010 Contactless Reader", 0x0112),
];

/// The quirks of the device `vendor:product` with firmware `bcd_device`, in table order.
pub fn lookup(vendor: u16, product: u16, bcd_device: u16) -> Vec<Quirk> {
    lookup_in(QUIRKS, vendor, product, bcd_device)
}

/// As [`lookup`], in another table (for tests, or a site's own rows).
pub fn lookup_in(table: &[QuirkRow], vendor: u16, product: u16, bcd_device: u16) -> Vec<Quirk> {
    table
        .iter()
        .filter(|r| {
            r.vendor == vendor
                && r.product.is_none_or(|p| p == product)
                && (r.firmware.0..=r.firmware.1).contains(&bcd_device)
        })
        .map(|r| r.quirk)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_match_by_ids_and_firmware() {
        let omnikey = lookup(0x076B, 0x3031, 0x0101);
        assert_eq!(omnikey.len(), 1);
        assert_eq!(omnikey[0].kind, EXTENDED);
        assert!(lookup(0x076B, 0x3032, 0x0101).is_empty());
        // SCR331 below 5.16 refused, from 5.16 on fine.
        assert_eq!(
            lookup(0x04E6, 0xE001, 0x0515)
                .iter()
                .map(|q| q.kind)
                .collect::<Vec<_>>(),
            [
                QuirkKind::MessageLength {
                    reported: 263,
                    actual: 270
                },
                QuirkKind::MinimumFirmware(0x0516)
            ]
        );
        assert!(
            !lookup(0x04E6, 0xE001, 0x0516)
                .iter()
                .any(|q| matches!(q.kind, QuirkKind::MinimumFirmware(_)))
        );
        // Zero-length packets on firmware 2.00 only.
        assert_eq!(lookup(0x08E6, 0x3437, 0x0200).len(), 1);
        assert!(lookup(0x08E6, 0x3437, 0x0201).is_empty());
    }

    #[test]
    fn every_row_cites_its_source() {
        for r in QUIRKS {
            assert!(r.quirk.source.starts_with("libccid src/"), "{r:?}");
            assert!(r.firmware.0 <= r.firmware.1, "{r:?}");
        }
    }
}
