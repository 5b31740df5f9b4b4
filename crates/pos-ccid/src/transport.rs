//! The pipes a CCID reader is driven through: bulk OUT for commands, bulk IN for replies,
//! interrupt IN for card-presence notifications, and the class control request ABORT.
//!
//! [`UsbTransport`] implements them over rusb; the virtual reader (feature `sim`) implements
//! the same trait, so the driver's whole path (codec, T=1 engine, PPS, notifications) runs
//! against it.

use std::time::Duration;

use pos_hal::{Fault, FaultKind};
use pos_link::usb::{UsbInterruptReader, UsbLink};
use pos_link::{Deadline, DeviceUri, Link, LinkError};

use crate::descriptor::CcidDescriptor;
use crate::interface::{Candidate, Choice};
use crate::message;

/// USB interface class of CCID readers.
pub const USB_CLASS_CCID: u8 = 0x0B;

/// The longest reply we accept: dwMaxCCIDMessageLength is at most this on real readers.
const MAX_MESSAGE: usize = 65_546;

/// A source of interrupt IN transfers, read on the driver's monitor thread.
pub trait InterruptSource: Send {
    /// Read one interrupt transfer (a NotifySlotChange or HardwareError message).
    ///
    /// Errors: `Timeout` when nothing came by the deadline, `Disconnected` when the reader
    /// went away.
    fn read(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError>;
}

/// The bulk and control pipes of a CCID interface.
pub trait CcidTransport: Send {
    /// What the transport talks to (for messages).
    fn target(&self) -> &str;

    /// The reader's CCID class descriptor.
    fn descriptor(&self) -> &CcidDescriptor;

    /// Send one PC_to_RDR message on bulk OUT.
    ///
    /// Errors: `Timeout`, `Disconnected` (unplugged), `Io`.
    fn send(&mut self, message: &[u8], deadline: Deadline) -> Result<(), LinkError>;

    /// Receive one whole RDR_to_PC message from bulk IN (a message may span several USB
    /// packets; its header says how long it is).
    ///
    /// Errors: `Timeout` when no (complete) message came by the deadline, `Disconnected`,
    /// `Io`.
    fn receive(&mut self, deadline: Deadline) -> Result<Vec<u8>, LinkError>;

    /// The class request ABORT for `slot` and `seq` (the first half of the CCID abort
    /// sequence; the bulk Abort message is the second).
    ///
    /// Errors: `Disconnected`, `Timeout`, `Io` (a reader that stalls the request).
    fn abort_request(&mut self, slot: u8, seq: u8, deadline: Deadline) -> Result<(), LinkError>;

    /// The interrupt endpoint, handed to the monitor thread (once). `None` when the reader
    /// has none (the driver polls slot status instead).
    fn take_interrupt(&mut self) -> Option<Box<dyn InterruptSource>>;

    /// Which interface of the device this is and why it was chosen, with every interface of
    /// the device judged ([`crate::interface::choose`]); `None` for transports that have no
    /// choice to make (the virtual reader). Never fails, never blocks.
    fn interface_choice(&self) -> Option<Choice> {
        None
    }

    /// The data rates (bit/s) the reader can run the card at: the class request
    /// GET_DATA_RATES (CCID 5.3.3). `Ok(None)` when the reader does not support it (it
    /// stalls the request or answers nothing: any rate between dwDataRate and
    /// dwMaxDataRate then), and by default for transports that have no such request.
    ///
    /// Errors: `Timeout` when no answer came within 1 s, `Disconnected`, `Io` or `Usb` for
    /// a failed transfer or a reply that is not a list of 32-bit values.
    fn data_rates(&mut self) -> Result<Option<Vec<u32>>, LinkError> {
        Ok(None)
    }

    /// The card clocks (kHz) the reader can give: the class request GET_CLOCK_FREQUENCIES
    /// (CCID 5.3.2). `Ok(None)` as for [`data_rates`](Self::data_rates).
    ///
    /// Errors: as [`data_rates`](Self::data_rates).
    fn clock_frequencies(&mut self) -> Result<Option<Vec<u32>>, LinkError> {
        Ok(None)
    }
}

impl InterruptSource for UsbInterruptReader {
    fn read(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError> {
        UsbInterruptReader::read(self, buf, deadline)
    }
}

/// A CCID reader's interface claimed through rusb.
#[derive(Debug)]
pub struct UsbTransport {
    link: UsbLink,
    descriptor: CcidDescriptor,
    interrupt: Option<UsbInterruptReader>,
    choice: Option<Choice>,
}

impl UsbTransport {
    /// Open the CCID interface of the USB device a `usb:` URI names.
    ///
    /// Errors: as [`UsbLink::open_uri`] (not found, permission with the udev hint, busy when
    /// pcscd or another process holds the reader); `Unsupported` when the interface carries
    /// no valid CCID class descriptor.
    pub fn open(uri: &DeviceUri) -> Result<Self, LinkError> {
        Self::open_interface(uri, None)
    }

    /// As [`UsbTransport::open`], on interface `number` of the device (a reader with several
    /// CCID interfaces: contactless and contact, or two slots), or, when `None`, the one
    /// [`crate::interface::choose`] picks: the contact interface of a dual reader, a
    /// vendor-class (0xFF) interface carrying a CCID descriptor included.
    ///
    /// Errors: as [`UsbTransport::open`]; `Unsupported` naming every interface of the device
    /// and why it cannot be used (an ICCD token is named so), when the device has no usable
    /// CCID interface or interface `number` is not one.
    pub fn open_interface(uri: &DeviceUri, number: Option<u8>) -> Result<Self, LinkError> {
        let choice = std::cell::RefCell::new(None);
        let choose = |_: &pos_link::usb::UsbIds, interfaces: &[pos_link::usb::InterfaceInfo]| {
            let candidates: Vec<Candidate> = interfaces.iter().map(Candidate::from_usb).collect();
            let c = crate::interface::choose(&candidates, number)?;
            let n = c.number;
            *choice.borrow_mut() = Some(c);
            Ok(n)
        };
        let link = UsbLink::open_uri_choosing(uri, &choose)?;
        let choice = choice.into_inner();
        if let Some(c) = &choice {
            log::info!("{uri}: interface {}: {}", c.number, c.reason);
        }
        let descriptor = match crate::descriptor::find(link.class_descriptors()) {
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                return Err(LinkError::Unsupported {
                    target: uri.to_string(),
                    detail: format!("bad CCID class descriptor: {e}"),
                });
            }
            None => {
                return Err(LinkError::Unsupported {
                    target: uri.to_string(),
                    detail: "the interface has no CCID class descriptor (0x21)".into(),
                });
            }
        };
        let interrupt = link.interrupt_reader();
        Ok(UsbTransport {
            link,
            descriptor,
            interrupt,
            choice,
        })
    }

    /// The reader's USB vendor and product ids and firmware version (bcdDevice): what the
    /// reader quirks ([`crate::quirks::lookup`]) are keyed by.
    pub fn ids(&self) -> pos_link::usb::UsbIds {
        self.link.ids()
    }

    /// A class control-IN request for a list of u32 (GET_DATA_RATES, GET_CLOCK_FREQUENCIES)
    /// to the interface: at most `count` values (256 when the descriptor says 0, "any":
    /// libccid reads up to its buffer then).
    fn class_list(
        &mut self,
        request: u8,
        count: u8,
        what: &str,
    ) -> Result<Option<Vec<u32>>, LinkError> {
        let values = if count == 0 { 256 } else { usize::from(count) };
        let mut buf = vec![0u8; values * 4];
        let interface = u16::from(self.link.endpoints().interface);
        let deadline = Deadline::after(CONTROL_TIMEOUT);
        let result = self.link.control_in(
            message::CLASS_REQUEST_IN,
            request,
            0,
            interface,
            &mut buf,
            deadline,
        );
        match result {
            Ok(n) => parse_class_list(self.link.target(), what, buf.get(..n).unwrap_or(&buf)),
            // A stalled request: the reader does not support it.
            Err(LinkError::Usb {
                source: rusb::Error::Pipe,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A GET_DATA_RATES or GET_CLOCK_FREQUENCIES reply: `None` when empty, the values when a
/// whole number of little-endian u32; otherwise an `Io` error (never a panic).
pub fn parse_class_list(
    target: &str,
    what: &str,
    reply: &[u8],
) -> Result<Option<Vec<u32>>, LinkError> {
    if reply.is_empty() {
        return Ok(None);
    }
    if reply.len() % 4 != 0 {
        return Err(LinkError::Io {
            target: target.to_string(),
            operation: pos_link::Operation::Read,
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{what} answered {} bytes: not a list of 32-bit values",
                    reply.len()
                ),
            ),
        });
    }
    Ok(Some(message::parse_u32_list(reply)))
}

impl CcidTransport for UsbTransport {
    fn target(&self) -> &str {
        self.link.target()
    }

    fn descriptor(&self) -> &CcidDescriptor {
        &self.descriptor
    }

    fn send(&mut self, message: &[u8], deadline: Deadline) -> Result<(), LinkError> {
        self.link.write_all(message, deadline)
    }

    fn receive(&mut self, deadline: Deadline) -> Result<Vec<u8>, LinkError> {
        receive_framed(&mut self.link, deadline)
    }

    fn abort_request(&mut self, slot: u8, seq: u8, deadline: Deadline) -> Result<(), LinkError> {
        let interface = u16::from(self.link.endpoints().interface);
        self.link
            .control_out(
                message::CLASS_REQUEST_OUT,
                message::ABORT_REQUEST,
                message::abort_value(slot, seq),
                interface,
                &[],
                deadline,
            )
            .map(|_| ())
    }

    fn take_interrupt(&mut self) -> Option<Box<dyn InterruptSource>> {
        self.interrupt
            .take()
            .map(|r| Box::new(r) as Box<dyn InterruptSource>)
    }
    fn interface_choice(&self) -> Option<Choice> {
        self.choice.clone()
    }

    fn data_rates(&mut self) -> Result<Option<Vec<u32>>, LinkError> {
        let count = self.descriptor.num_data_rates;
        self.class_list(message::GET_DATA_RATES_REQUEST, count, "GET_DATA_RATES")
    }

    fn clock_frequencies(&mut self) -> Result<Option<Vec<u32>>, LinkError> {
        let count = self.descriptor.num_clocks;
        self.class_list(
            message::GET_CLOCK_FREQUENCIES_REQUEST,
            count,
            "GET_CLOCK_FREQUENCIES",
        )
    }
}

/// Read one CCID message from a byte link: the 10-byte header, then `dwLength` bytes.
///
/// Errors: as the link's; `Io` for a header announcing a message longer than any reader
/// sends (the stream is then out of step).
pub fn receive_framed(link: &mut dyn Link, deadline: Deadline) -> Result<Vec<u8>, LinkError> {
    let mut msg = vec![0u8; message::HEADER_LEN];
    link.read_exact(&mut msg, deadline)?;
    let total = message::message_length(&msg).unwrap_or(message::HEADER_LEN);
    if total > MAX_MESSAGE {
        return Err(LinkError::Io {
            target: link.target().to_string(),
            operation: pos_link::Operation::Read,
            source: std::io::Error::other(format!("reply announces {total} bytes: out of step")),
        });
    }
    msg.resize(total, 0);
    link.read_exact(&mut msg[message::HEADER_LEN..], deadline)?;
    Ok(msg)
}

/// True for link errors that mean the reader is gone.
pub(crate) fn is_gone(e: &LinkError) -> bool {
    e.kind() == FaultKind::Disconnected
}

/// The timeout for a class control request.
pub(crate) const CONTROL_TIMEOUT: Duration = Duration::from_secs(1);

impl<T: CcidTransport + ?Sized> CcidTransport for Box<T> {
    fn target(&self) -> &str {
        (**self).target()
    }
    fn descriptor(&self) -> &CcidDescriptor {
        (**self).descriptor()
    }
    fn send(&mut self, message: &[u8], deadline: Deadline) -> Result<(), LinkError> {
        (**self).send(message, deadline)
    }
    fn receive(&mut self, deadline: Deadline) -> Result<Vec<u8>, LinkError> {
        (**self).receive(deadline)
    }
    fn abort_request(&mut self, slot: u8, seq: u8, deadline: Deadline) -> Result<(), LinkError> {
        (**self).abort_request(slot, seq, deadline)
    }
    fn take_interrupt(&mut self) -> Option<Box<dyn InterruptSource>> {
        (**self).take_interrupt()
    }
    fn interface_choice(&self) -> Option<Choice> {
        (**self).interface_choice()
    }
    fn data_rates(&mut self) -> Result<Option<Vec<u32>>, LinkError> {
        (**self).data_rates()
    }
    fn clock_frequencies(&mut self) -> Result<Option<Vec<u32>>, LinkError> {
        (**self).clock_frequencies()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_lists_parse_or_fail_cleanly() {
        assert_eq!(
            parse_class_list("t", "GET_DATA_RATES", &[]).ok(),
            Some(None)
        );
        let two = message::encode_u32_list(&[9600, 115_200]);
        assert_eq!(
            parse_class_list("t", "GET_DATA_RATES", &two).ok(),
            Some(Some(vec![9600, 115_200]))
        );
        for bad in [&two[..3], &two[..7]] {
            let e = parse_class_list("t", "GET_DATA_RATES", bad).unwrap_err();
            assert!(e.to_string().contains("not a list of 32-bit values"), "{e}");
        }
    }
}
