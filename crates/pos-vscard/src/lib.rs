//! The card side of QEMU's `ccid-card-passthru` device: the VSCard protocol over the
//! device's chardev (a Unix socket), playing any [`pos_hal::VirtualCard`] to the guest.
//!
//! QEMU runs with
//! `-chardev socket,id=card,path=CARD.sock,server=on,wait=off -device usb-ccid,id=ccid0
//! -device ccid-card-passthru,chardev=card,bus=ccid0.0`; [`CardClient::connect`] connects
//! to `CARD.sock` and plays the card.
//!
//! - [`codec`]: message model, [`encode`], streaming [`Decoder`] (length cap, never panics).
//! - [`CardClient`]: connect (with retry), handshake, and the protocol on its own threads;
//!   insert / remove / "removed mid-exchange" / stats; [`CardClient::sync`] to wait until
//!   queued commands are carried out and acknowledged by QEMU.
//!
//! # The protocol as QEMU implements it
//!
//! Read from QEMU's `hw/usb/ccid-card-passthru.c` and `hw/usb/dev-smartcard-reader.c`,
//! libcacard's `src/vscard_common.h` and its reference client `src/vscclient.c`:
//!
//! - **Framing**: header of three big-endian `u32` (type, reader id, payload length), then
//!   the payload. Init's magic is the four bytes `"VSCD"` in that order (QEMU compares raw
//!   memory), version and capabilities are big-endian; Error's code is big-endian `u32`.
//! - **QEMU's receive buffer is 64 KiB** (header included). A message that does not fit
//!   makes QEMU *drop the connection*; the client never sends one.
//! - **Init**: QEMU writes its own Init when the device is realized, but with
//!   `server=on,wait=off` nobody is connected yet, so that one is normally lost. QEMU answers
//!   every Init it receives with an Init (reader id `0xFFFFFFFF`, version 2, one zero
//!   capability). It only *logs* a wrong magic or version. QEMU assumes at least one
//!   capability word (unsigned `length - 12`), so our Init is always 12 bytes.
//! - **Readers**: as vscclient does after the host's Init, we send ReaderRemove (reader 0, to
//!   clear what an earlier client may have left — QEMU then empties the slot) and ReaderAdd.
//!   QEMU answers ReaderAdd with Error(success) on reader id **0** (`VSCARD_MINIMAL_READER_ID`;
//!   it has exactly one reader) or Error(cannot add more readers) on `0xFFFFFFFF`. QEMU
//!   ignores the reader id of what it receives, only echoing it back; it sends APDUs on
//!   reader 0. (vscclient in fact writes 0 in every header it sends.)
//! - **ATR = card inserted**: QEMU checks it (at most 40 bytes, TS `3B`/`3F`, consistent
//!   length), stores it, marks the slot present, notifies the guest, and answers
//!   Error(success); a bad ATR gets Error(general error) and the slot is unchanged.
//! - **The guest's IccPowerOn/IccPowerOff never reach the card**: QEMU answers PowerOn from
//!   the stored ATR and PowerOff by clearing a `powered` flag (true from the start). Only
//!   XfrBlock APDUs are forwarded, and only while the slot is present and powered (else QEMU
//!   answers with an empty DataBlock itself). QEMU matches card answers to guest commands
//!   first-in first-out. Versions differ here: the current QEMU source rejects a second
//!   XfrBlock while one is pending (`CMD_SLOT_BUSY`); older ones (the QEMU 7.x
//!   `ccid_on_apdu_from_guest` as found) queue it as another pending answer.
//! - **An accepted ATR** also flushes any pending answers (empty DataBlocks) before marking
//!   the slot present.
//! - **APDU**: QEMU forwards the guest's APDU as an APDU message; the card answers with an
//!   APDU message, which QEMU returns as the guest's DataBlock. An answer with nothing
//!   pending is dropped by QEMU.
//! - **CardRemove**: QEMU marks the slot empty, notifies the guest, flushes any pending APDU
//!   answer as an *empty DataBlock* (this is what "card removed mid-exchange" looks like to
//!   the guest), resets the reader state, and answers Error(success).
//! - **Error from the card**: QEMU sets the command status to Failed and, if an APDU is
//!   pending, answers it with an empty DataBlock. QEMU reads the code without byte-swapping
//!   and only logs it; there is no way to tell the guest *why* (no `ICC_MUTE` from the card
//!   side). QEMU does not answer it.
//! - **Flush / FlushComplete**: defined for the host to ask the card side to finish
//!   outstanding APDUs; QEMU never sends Flush, and answers a Flush or FlushComplete it
//!   receives (like any unknown type) with Error(general error). vscclient answers Flush with
//!   FlushComplete at once; so do we (APDUs are answered synchronously).
//! - **Disconnect**: QEMU closing the socket ends the link ([`CloseReason::Eof`]).
//!
//! Our choices where the protocol has no exact equivalent:
//!
//! - **Mute card** (`power_on` returns `None`): nothing is sent. QEMU's slot only becomes
//!   present on an ATR, so the guest sees an empty slot — "present but mute" cannot be
//!   expressed. Counted in [`Stats::mute_insertions`].
//! - **Silent card** (`transmit` returns `None`): by default an Error(general error) message,
//!   which fails the guest's XfrBlock at once, like a reader reporting a mute card;
//!   [`SilentPolicy::NoAnswer`] instead leaves it pending (QEMU has no timeout; in current
//!   QEMU the guest's next commands get `CMD_SLOT_BUSY`, in older ones the next answer is
//!   paired with the silent command — until CardRemove flushes the queue).
//!
//! # Card data
//!
//! APDU bytes are never logged (not even at debug level: only types and lengths) and never
//! appear in `Debug` output of [`Body`]; buffers holding them in the client are wiped on
//! drop ([`pos_hal::Sensitive`]) where the client owns them.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use pos_vscard::CardClient;
//!
//! struct Echo;
//! impl pos_hal::VirtualCard for Echo {
//!     fn power_on(&mut self) -> Option<Vec<u8>> { Some(vec![0x3B, 0x00]) }
//!     fn transmit(&mut self, _cmd: &[u8]) -> Option<Vec<u8>> { Some(vec![0x90, 0x00]) }
//! }
//!
//! let client = CardClient::connect("/tmp/rig/CARD.sock", Duration::from_secs(10))?;
//! client.wait_connected(Duration::from_secs(5))?;
//! client.insert(Box::new(Echo))?;
//! client.sync(Duration::from_secs(5))?; // QEMU has accepted the ATR
//! // ... the guest talks to the card ...
//! client.remove()?;
//! client.shutdown()?;
//! # Ok::<(), pos_vscard::Error>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod codec;

mod client;
mod error;

pub use client::{CardClient, ClientConfig, CloseReason, LinkState, SilentPolicy, Stats};
pub use codec::{Body, DecodeError, Decoder, Message, MessageType, encode};
pub use error::Error;

/// The README's example, compiled as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
