//! The scenarios that run inside the QEMU rig's guest.
//!
//! The guest is a small Linux (Debian's kernel, busybox) booted by `qemu-rig` with QEMU's
//! USB CCID reader (`usb-ccid` + `ccid-card-passthru`), FTDI adapter (`usb-serial`) and USB
//! keyboard (`usb-kbd`). The binary `rig-guest` drives our real code paths against them:
//! rusb for the reader, serialport over `ftdi_sio` for the printer, evdev for the keyboard
//! wedge. It asks the host (over [`ctl`]) to insert and pull cards, plug and unplug devices,
//! inject printer faults and type swipes, and reports each case back.
//!
//! - [`ctl`]: the protocol's lines; [`control`]: the guest's client of it.
//! - [`operator`]: the suite's technician steps done by the host ([`operator::QemuOperator`]).
//! - [`scenarios`]: the rig's own cases and benchmarks; [`mod@bench`]: their statistics.
//! - [`gadget`]: USB devices built in the guest (configfs gadgets on `dummy_hcd`).
//! - [`printer_gadget`]: the USB printer gadget (an Epson TM-T20III by its device ID) and
//!   the relay carrying its bytes to emupos on the host over `/dev/ttyS2`.
//! - [`ffs_ccid`]: CCID readers of real readers' shapes built with FunctionFS, our card behind.
//! - [`options`]: `rig.only` / `rig.bench` from the kernel command line, devices in `/sys`.
//! - [`logtap`]: the logger (the CCID driver's negotiation lines become steps).
//! - [`road`]: the lines of `pcsc-road`, the dynamic helper running the cases through our
//!   `pcsc:` road (feature `pcsc`).

pub mod bench;
pub mod control;
pub mod ctl;
pub mod ffs_ccid;
pub mod gadget;
pub mod logtap;
pub mod operator;
pub mod options;
pub mod printer_gadget;
pub mod road;
pub mod scenarios;
