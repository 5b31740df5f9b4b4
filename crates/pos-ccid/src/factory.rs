//! Opening readers from device URIs.

use pos_link::{Address, DeviceUri};

use crate::error::CcidError;
use crate::reader::{CcidReader, ReaderConfig};
use crate::transport::{CcidTransport, UsbTransport};

/// A reader behind any transport, as [`open`] returns it.
pub type AnyReader = CcidReader<Box<dyn CcidTransport>>;

/// Open the reader at `uri`:
///
/// - `usb:VID:PID[?serial=S]` or `usb:BUS-PORT`: its CCID interface, through rusb;
/// - `sim:ccid?level=apdu|t1|t0&interrupt=on|off&pps=reader|host&card=t0|t1|mute|none&remove_at=N`
///   (feature `sim`): the virtual reader with a test card inserted.
///
/// Errors: `BadAddress` (not a reader URI, bad `sim:` options), `Link` (not found,
/// permission with its udev hint, busy when pcscd holds the reader, no CCID descriptor).
pub fn open(uri: &DeviceUri, config: ReaderConfig) -> Result<AnyReader, CcidError> {
    let text = uri.to_string();
    match uri.address() {
        Address::Usb(_) => {
            let t: Box<dyn CcidTransport> = Box::new(UsbTransport::open(uri)?);
            Ok(CcidReader::new(t, &text, config))
        }
        Address::Sim { kind } if kind == "ccid" => open_sim(uri, config),
        _ => Err(CcidError::BadAddress(format!(
            "{text}: a chip reader is a usb: device (or sim:ccid)"
        ))),
    }
}

#[cfg(feature = "sim")]
fn open_sim(uri: &DeviceUri, config: ReaderConfig) -> Result<AnyReader, CcidError> {
    let (_, _, card) = crate::sim::from_uri(uri).map_err(CcidError::BadAddress)?;
    let card = card.map(|c| Box::new(c) as Box<dyn pos_hal::VirtualCard>);
    open_sim_with_card(uri, config, card)
}

/// Open a `sim:ccid?...` virtual reader with `card` inserted instead of the URI's test card
/// (e.g. a scripted EMV card from a layer above this crate). The URI's `card` option is
/// ignored; its other options apply.
///
/// Errors: `BadAddress` for a URI that is not `sim:ccid` or has bad options.
#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub fn open_sim_with_card(
    uri: &DeviceUri,
    config: ReaderConfig,
    card: Option<Box<dyn pos_hal::VirtualCard>>,
) -> Result<AnyReader, CcidError> {
    open_sim_with_handle(uri, config, card).map(|(reader, _)| reader)
}

/// As [`open_sim_with_card`], and also return the virtual reader's control handle, to
/// insert and remove cards, unplug the reader or inject faults while the driver runs.
///
/// Errors: `BadAddress` for a URI that is not `sim:ccid` or has bad options.
#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub fn open_sim_with_handle(
    uri: &DeviceUri,
    config: ReaderConfig,
    card: Option<Box<dyn pos_hal::VirtualCard>>,
) -> Result<(AnyReader, crate::sim::SimReaderHandle), CcidError> {
    if !matches!(uri.address(), Address::Sim { kind } if kind == "ccid") {
        return Err(CcidError::BadAddress(format!(
            "{uri} is not a sim:ccid URI"
        )));
    }
    let (cfg, faults, _) = crate::sim::from_uri(uri).map_err(CcidError::BadAddress)?;
    let (vr, handle) = crate::sim::VirtualReader::new(cfg, &uri.to_string());
    handle.set_faults(faults);
    if let Some(card) = card {
        handle.insert(card);
    }
    let t: Box<dyn CcidTransport> = Box::new(vr);
    Ok((CcidReader::new(t, &uri.to_string(), config), handle))
}

#[cfg(not(feature = "sim"))]
fn open_sim(uri: &DeviceUri, _config: ReaderConfig) -> Result<AnyReader, CcidError> {
    Err(CcidError::BadAddress(format!(
        "{uri}: this build has no virtual reader (enable the `sim` feature of pos-ccid)"
    )))
}
