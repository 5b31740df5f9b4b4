//! Opening readers from device URIs.

use pos_link::{Address, DeviceUri};

use crate::error::CcidError;
use crate::policy::VoltageSetting;
use crate::reader::{CcidReader, ReaderConfig};
use crate::transport::{CcidTransport, UsbTransport};

/// A reader behind any transport, as [`open`] returns it.
pub type AnyReader = CcidReader<Box<dyn CcidTransport>>;

/// Open the reader at `uri`:
///
/// - `usb:VID:PID[?serial=S][&interface=N]` or `usb:BUS-PORT`: through rusb, interface `N`,
///   or the CCID interface [`crate::interface::choose`] picks (the contact slot of a dual
///   reader, e.g. interface 1 of an OMNIKEY 5422; vendor-class interfaces with a CCID
///   descriptor included; ICCD tokens refused by name);
/// - `sim:ccid?OPTIONS` (feature `sim`): the virtual reader, options
///   [`sim::SIM_OPTIONS`](crate::sim::SIM_OPTIONS): `model=NAME` (a real reader model,
///   [`sim::MODELS`](crate::sim::MODELS), whose quirk rows apply as for that reader on
///   USB), `level=apdu|t0|t1`, `interrupt=on|off`,
///   `pps=reader|host`, the card (`card=t0|t1|mute|none`, and with an EMV card catalog in
///   [`ReaderConfig::cards`] `card=visa|mastercard|...` or `script=FILE`), and faults
///   (`remove_at=N`, `parity_error_at=N`, `wtx=N`, `time_extensions=N`, `fault=...`).
///
/// Every reader URI also takes `voltage=auto|5|3|1.8` ([`ReaderConfig::voltage`]).
///
/// Errors: `BadAddress` (not a reader URI, a bad `voltage=`, bad `sim:` options, naming every accepted
/// value; an unknown card; a script that cannot be read), `Link` (not found, permission with
/// its udev hint, busy when pcscd holds the reader, no CCID descriptor).
pub fn open(uri: &DeviceUri, config: ReaderConfig) -> Result<AnyReader, CcidError> {
    let text = uri.to_string();
    let config = with_uri_settings(uri, config)?;
    match uri.address() {
        Address::Usb(_) => {
            let usb = UsbTransport::open_interface(uri, usb_interface(uri)?)?;
            let config = with_quirks_of(&text, usb.ids(), config);
            let t: Box<dyn CcidTransport> = Box::new(usb);
            Ok(CcidReader::new(t, &text, config))
        }
        Address::Sim { kind } if kind == "ccid" => open_sim(uri, config),
        _ => Err(CcidError::BadAddress(format!(
            "{text}: a chip reader is a usb: device (or sim:ccid)"
        ))),
    }
}

/// `config` with the settings the URI gives (`voltage=`).
fn with_uri_settings(uri: &DeviceUri, mut config: ReaderConfig) -> Result<ReaderConfig, CcidError> {
    if let Some(v) = uri.option("voltage") {
        config.voltage =
            VoltageSetting::parse(v).map_err(|e| CcidError::BadAddress(format!("{uri}: {e}")))?;
    }
    Ok(config)
}

/// The `interface=N` of a `usb:` reader URI (0-255), if given.
fn usb_interface(uri: &DeviceUri) -> Result<Option<u8>, CcidError> {
    uri.option("interface")
        .map(|v| {
            v.parse::<u8>().map_err(|_| {
                CcidError::BadAddress(format!(
                    "{uri}: interface={v} is not a USB interface number (0-255)"
                ))
            })
        })
        .transpose()
}

#[cfg(feature = "sim")]
fn open_sim(uri: &DeviceUri, config: ReaderConfig) -> Result<AnyReader, CcidError> {
    open_sim_with_handle(uri, config).map(|(reader, _)| reader)
}

/// Open a `sim:ccid?...` virtual reader as [`open`] does, and also return its control
/// handle, to insert and remove cards, unplug the reader or inject faults while the driver
/// runs.
///
/// Errors: `BadAddress` for a URI that is not `sim:ccid`, has bad options, or names a card
/// that cannot be made (see [`open`]).
#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub fn open_sim_with_handle(
    uri: &DeviceUri,
    config: ReaderConfig,
) -> Result<(AnyReader, crate::sim::SimReaderHandle), CcidError> {
    let spec = sim_spec(uri)?;
    let config = with_uri_settings(uri, config)?;
    let card = spec
        .make_card(config.cards.as_deref())
        .map_err(|e| CcidError::BadAddress(format!("{uri}: {e}")))?;
    Ok(build_sim(uri, &spec, config, card))
}

/// Open a `sim:ccid?...` virtual reader with `card` inserted (or none) instead of the card
/// its URI names (e.g. a card made by the caller, with faults of its own); the URI's other
/// options apply. Also returns the reader's control handle.
///
/// Errors: `BadAddress` for a URI that is not `sim:ccid` or has bad options.
#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub fn open_sim_with_card(
    uri: &DeviceUri,
    config: ReaderConfig,
    card: Option<Box<dyn pos_hal::VirtualCard>>,
) -> Result<(AnyReader, crate::sim::SimReaderHandle), CcidError> {
    let spec = sim_spec(uri)?;
    let config = with_uri_settings(uri, config)?;
    Ok(build_sim(uri, &spec, config, card))
}

#[cfg(feature = "sim")]
fn sim_spec(uri: &DeviceUri) -> Result<crate::sim::SimSpec, CcidError> {
    if !matches!(uri.address(), Address::Sim { kind } if kind == "ccid") {
        return Err(CcidError::BadAddress(format!(
            "{uri} is not a sim:ccid URI"
        )));
    }
    crate::sim::SimSpec::parse(uri).map_err(CcidError::BadAddress)
}

#[cfg(feature = "sim")]
fn build_sim(
    uri: &DeviceUri,
    spec: &crate::sim::SimSpec,
    config: ReaderConfig,
    card: Option<Box<dyn pos_hal::VirtualCard>>,
) -> (AnyReader, crate::sim::SimReaderHandle) {
    // A reader model gets its quirk rows exactly as a USB reader with its ids does.
    let config = match &spec.config.model {
        Some(m) => with_quirks_of(&uri.to_string(), m.ids(), config),
        None => config,
    };
    let (vr, handle) = crate::sim::VirtualReader::new(spec.config.clone(), &uri.to_string());
    handle.set_faults(spec.faults.clone());
    if let Some(card) = card {
        handle.insert(card);
    }
    let t: Box<dyn CcidTransport> = Box::new(vr);
    (CcidReader::new(t, &uri.to_string(), config), handle)
}

#[cfg(not(feature = "sim"))]
fn open_sim(uri: &DeviceUri, _config: ReaderConfig) -> Result<AnyReader, CcidError> {
    Err(CcidError::BadAddress(format!(
        "{uri}: this build has no virtual reader (enable the `sim` feature of pos-ccid)"
    )))
}

/// The reader model's documented quirks ([`crate::quirks::lookup`] by its USB ids and
/// firmware) added to `config`, and logged: the policy then follows them.
fn with_quirks_of(
    target: &str,
    ids: pos_link::usb::UsbIds,
    mut config: ReaderConfig,
) -> ReaderConfig {
    let found = crate::quirks::lookup(ids.vendor_id, ids.product_id, ids.bcd_device);
    for q in &found {
        log::info!(
            "{target}: {:04x}:{:04x} firmware {:x}.{:02x}: {} quirk {:?} ({})",
            ids.vendor_id,
            ids.product_id,
            ids.bcd_device >> 8,
            ids.bcd_device & 0xFF,
            q.model,
            q.kind,
            q.source
        );
    }
    for q in found {
        if !config.quirks.contains(&q) {
            config.quirks.push(q);
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quirks::QuirkKind;

    fn ids(vendor_id: u16, product_id: u16, bcd_device: u16) -> pos_link::usb::UsbIds {
        pos_link::usb::UsbIds {
            vendor_id,
            product_id,
            bcd_device,
        }
    }

    #[test]
    fn a_usb_reader_uri_names_its_interface() {
        let uri = |s: &str| DeviceUri::parse(s).unwrap();
        assert_eq!(usb_interface(&uri("usb:076b:5422")).unwrap(), None);
        assert_eq!(
            usb_interface(&uri("usb:076b:5422?interface=1")).unwrap(),
            Some(1)
        );
        for bad in ["usb:076b:5422?interface=x", "usb:076b:5422?interface=256"] {
            let e = usb_interface(&uri(bad)).unwrap_err();
            assert!(e.to_string().contains("not a USB interface number"), "{e}");
        }
    }

    #[test]
    fn a_usb_reader_gets_its_models_quirks_once() {
        // SCM SCR3310 (04e6:5116, firmware 5.23): SCM's message length quirk.
        let config = with_quirks_of(
            "usb:04e6:5116",
            ids(0x04E6, 0x5116, 0x0523),
            ReaderConfig::default(),
        );
        assert!(
            config
                .quirks
                .iter()
                .any(|q| matches!(q.kind, QuirkKind::MessageLength { reported: 263, .. })),
            "{:?}",
            config.quirks
        );
        let n = config.quirks.len();
        // Opened again with the same config: nothing doubled.
        let again = with_quirks_of("usb:04e6:5116", ids(0x04E6, 0x5116, 0x0523), config);
        assert_eq!(again.quirks.len(), n);
        // A reader no row names: no quirks.
        let plain = with_quirks_of(
            "usb:1234:5678",
            ids(0x1234, 0x5678, 0x0100),
            ReaderConfig::default(),
        );
        assert!(plain.quirks.is_empty());
    }
}
