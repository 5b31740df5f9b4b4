//! A virtual hardware rig: the real USB and serial code paths against device emulations
//! nobody here wrote.
//!
//! `qemu-rig` boots a small Linux guest under QEMU (software emulation) with QEMU's USB
//! CCID reader (`usb-ccid` + `ccid-card-passthru`), its FTDI USB-serial adapter
//! (`usb-serial`) and a USB keyboard (`usb-kbd`), all on an xHCI controller, driven by the
//! guest kernel's own USB stack. On the host it plays:
//! - the card behind the reader ([`card`]: our EMV virtual cards over QEMU's VSCard
//!   protocol, `pos-vscard`), including a card pulled mid-exchange;
//! - the printer behind the adapter ([`printer`]: our virtual ESC/POS printer on the
//!   adapter's socket; connecting is plugging in);
//! - the typist ([`monitor`]: a keyboard-wedge swipe typed through QEMU's monitor);
//! - emupos behind the guest's USB printer gadget ([`emupos`], over the printer channel of
//!   [`channel`]: QEMU's third serial port piped to emupos's raw TCP port).
//!
//! The guest's scenarios (crate `qemu-rig-guest`) run our drivers through rusb,
//! serialport/ftdi_sio and evdev and drive the host over a control port ([`run`]).
//! Everything QEMU needs is unpacked from Debian's packages by `prepare.sh` ([`files`]);
//! the guest's initramfs is built here ([`initramfs`], [`cpio`]).

pub mod card;
pub mod channel;
pub mod cpio;
pub mod emupos;
pub mod files;
pub mod initramfs;
pub mod monitor;
pub mod printer;
pub mod run;
