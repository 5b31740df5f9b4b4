//! CCID readers of other shapes, built in the guest: a USB function written in user space
//! with FunctionFS (`usb_f_fs`), in a configfs gadget on `dummy_hcd`, presenting a real
//! reader's USB ids, strings, interfaces and CCID class descriptors (facts from libccid's
//! descriptor dumps, `readers/<file>`), with our virtual card behind it.
//!
//! The reader side is pos-ccid's own virtual reader ([`VirtualReader`]) driven from raw
//! bytes: each PC_to_RDR message read from the bulk OUT endpoint file goes to its
//! [`CcidTransport::send`] (decoded there with the codec the driver encodes with), and every
//! RDR_to_PC message it answers goes out on bulk IN; its interrupt source (NotifySlotChange)
//! goes out on the interrupt IN endpoint; the class requests on ep0 (ABORT,
//! GET_CLOCK_FREQUENCIES, GET_DATA_RATES) are answered as the reader's dump records, or
//! stalled. So the same CCID message codec is on both sides of a real USB link, and the
//! reader works at the exchange level its descriptor announces (TPDU with T=0 for a TPDU
//! reader and our T=0 card, short or extended APDU with chaining through wLevelParameter for
//! an APDU reader whose messages are short).
//!
//! FunctionFS (Linux `Documentation/usb/functionfs.rst`): mount `functionfs` named as the
//! configfs function's instance, write the descriptors (`FUNCTIONFS_DESCRIPTORS_MAGIC_V2`,
//! full- and high-speed sets) and the strings to `ep0`, then the endpoint files `ep1`..`epN`
//! appear (numbered in the order of the endpoint descriptors) and the gadget can be bound.
//! `ep0` then yields 12-byte events (BIND, UNBIND, ENABLE, DISABLE, SETUP, ...); a SETUP is
//! answered by writing the data (IN) or reading it (OUT), and stalled by doing the other.
//!
//! The kernel's FunctionFS accepts a class-specific descriptor (type 0x21) only under an
//! interface of class HID (3) or CCID (0x0B) (`ffs_do_single_desc` in
//! `drivers/usb/gadget/function/f_fs.c`): a vendor-class (0xFF) reader that carries its CCID
//! descriptor cannot be presented this way: [`FfsReader::start`] fails with the kernel's
//! refusal ([`FfsError::Refused`]), and [`FfsReader::start_gadgetfs`] builds that reader with
//! GadgetFS (the legacy `gadgetfs` module: the whole device in user space, its descriptors
//! unchecked beyond the configuration header), served the same way.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use pos_ccid::CcidTransport;
use pos_ccid::descriptor::{
    CcidDescriptor, Features, Mechanical, Protocols, SynchProtocols, Voltages,
};
use pos_ccid::sim::{ClassAnswer, ReaderModel, SimReaderConfig, SimReaderHandle, VirtualReader};
use pos_link::Deadline;

use crate::gadget::{DeviceSpec, Gadget, GadgetError};

/// `FUNCTIONFS_DESCRIPTORS_MAGIC_V2` (`include/uapi/linux/usb/functionfs.h`).
const DESCRIPTORS_MAGIC_V2: u32 = 3;
/// `FUNCTIONFS_STRINGS_MAGIC`.
const STRINGS_MAGIC: u32 = 2;
/// `FUNCTIONFS_HAS_FS_DESC | FUNCTIONFS_HAS_HS_DESC`.
const HAS_FS_HS: u32 = 1 | 2;
/// `struct usb_functionfs_event`: an 8-byte setup packet, the type, 3 bytes of padding.
const EVENT_LEN: usize = 12;
/// Event types.
const EVENT_ENABLE: u8 = 2;
const EVENT_DISABLE: u8 = 3;
const EVENT_SETUP: u8 = 4;
/// CCID class requests (CCID 1.1, 5.3).
const REQ_ABORT: u8 = 0x01;
const REQ_GET_CLOCK_FREQUENCIES: u8 = 0x02;
const REQ_GET_DATA_RATES: u8 = 0x03;
/// PC_to_RDR_XfrBlock.
const XFR_BLOCK: u8 = 0x6F;
/// Full-speed bulk packets: 64 bytes, the most a full-speed bulk endpoint may have (USB 2.0,
/// 5.8.3), what full-speed readers have. The dumps do not record endpoint sizes.
const FS_BULK: u16 = 64;
/// High-speed bulk packets: 512 bytes (USB 2.0, 5.8.3: the only size allowed).
const HS_BULK: u16 = 512;
/// Interrupt IN packet: 8 bytes (a NotifySlotChange for up to 4 slots is 2 bytes).
const INTERRUPT_PACKET: u16 = 8;

/// One interface of a reader shape.
#[derive(Debug, Clone)]
pub struct ShapeInterface {
    /// bInterfaceClass (0x0B CCID, 0xFF vendor).
    pub class: u8,
    /// iInterface's text, as the dump shows it (`None`: the reader has none).
    pub name: Option<&'static str>,
    /// The CCID class descriptor, the interface number and the class-request answers.
    pub model: ReaderModel,
    /// Whether our virtual card goes into this interface's slot.
    pub card_slot: bool,
}

/// A real reader's USB shape, from its libccid dump.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Short name (case names, the FunctionFS instance).
    pub name: &'static str,
    /// The reader, for people.
    pub title: &'static str,
    /// The libccid dump (`readers/<file>`).
    pub dump: &'static str,
    /// idVendor.
    pub vid: u16,
    /// idProduct.
    pub pid: u16,
    /// bcdDevice.
    pub bcd_device: u16,
    /// iManufacturer's text.
    pub manufacturer: &'static str,
    /// iProduct's text.
    pub product: &'static str,
    /// The interfaces, in bInterfaceNumber order from 0.
    pub interfaces: Vec<ShapeInterface>,
}

impl Shape {
    /// The interface our card goes into.
    pub fn contact(&self) -> Option<&ShapeInterface> {
        self.interfaces.iter().find(|i| i.card_slot)
    }

    /// `usb:vvvv:pppp`.
    pub fn uri(&self) -> String {
        format!("usb:{:04x}:{:04x}", self.vid, self.pid)
    }
}

/// A model of pos-ccid's list (`sim:ccid?model=NAME`), which its tests hold equal to the dump.
fn known(name: &str) -> Option<ReaderModel> {
    pos_ccid::sim::model(name).cloned()
}

/// The HID OMNIKEY 5422's contactless interface (interface 0), field by field from libccid
/// `readers/HID_OMNIKEY_5422.txt` (commit 5de6a9661c371d74d5c1e16fd4d01727ae2d9db3, the
/// commit pos-ccid's models cite). Its class-request lists are not served (stalled): the
/// driver opens the contact interface.
fn omnikey_5422_cl() -> ReaderModel {
    ReaderModel {
        name: "omnikey-5422-cl",
        title: "HID OMNIKEY 5422, contactless interface",
        dump: "HID_OMNIKEY_5422.txt",
        interface: 0,
        vendor_id: 0x076B,
        product_id: 0x5422,
        bcd_device: 0x0101,
        descriptor: CcidDescriptor {
            bcd_ccid: 0x0110,
            max_slot_index: 0,
            voltages: Voltages::from_bits_retain(0x07),
            protocols: Protocols::from_bits_retain(0x0003),
            default_clock_khz: 4800,
            max_clock_khz: 4800,
            num_clocks: 0,
            data_rate_bps: 12903,
            max_data_rate_bps: 825_807,
            num_data_rates: 0,
            max_ifsd: 254,
            synch_protocols: SynchProtocols::from_bits_retain(0),
            mechanical: Mechanical::from_bits_retain(0),
            features: Features::from_bits_retain(0x0004_04BA),
            max_message_length: 520,
            class_get_response: 0xFF,
            class_envelope: 0xFF,
            lcd_layout: 0,
            pin_support: 0,
            max_busy_slots: 1,
        },
        data_rates: ClassAnswer::Stall,
        clocks: ClassAnswer::Stall,
    }
}

/// Elatec TWN4 MultiTech (09d8:0428, fw 2.00): short and extended APDU level with 64-byte
/// messages, no automatic voltage selection. Field by field from libccid
/// `readers/Elatec_TWN4_MULTITECH.txt`; its class requests failed ("Resource temporarily
/// unavailable"), which a device can only show as a stall.
fn twn4_multitech() -> ReaderModel {
    ReaderModel {
        name: "twn4-multitech",
        title: "Elatec TWN4 MultiTech",
        dump: "Elatec_TWN4_MULTITECH.txt",
        interface: 0,
        vendor_id: 0x09D8,
        product_id: 0x0428,
        bcd_device: 0x0200,
        descriptor: CcidDescriptor {
            bcd_ccid: 0x0110,
            max_slot_index: 0,
            voltages: Voltages::from_bits_retain(0x07),
            protocols: Protocols::from_bits_retain(0x0003),
            default_clock_khz: 5000,
            max_clock_khz: 15000,
            num_clocks: 0,
            data_rate_bps: 13441,
            max_data_rate_bps: 625_000,
            num_data_rates: 0,
            max_ifsd: 254,
            synch_protocols: SynchProtocols::from_bits_retain(0x0000_0001),
            mechanical: Mechanical::from_bits_retain(0),
            features: Features::from_bits_retain(0x0004_04B2),
            max_message_length: 64,
            class_get_response: 0xFF,
            class_envelope: 0xFF,
            lcd_layout: 0,
            pin_support: 0,
            max_busy_slots: 1,
        },
        data_rates: ClassAnswer::Stall,
        clocks: ClassAnswer::Stall,
    }
}

/// Cherry SmartTerminal ST-2xxx (046a:003e, fw 6.01): one vendor-class (0xFF) interface
/// carrying a CCID descriptor (type 0x21), TPDU level, 270-byte messages. Field by field
/// from libccid `readers/CherrySmartTerminalST2XXX.txt` (also in pos-ccid's test data); its
/// class requests timed out, shown here as stalls.
fn cherry_st2xxx() -> ReaderModel {
    ReaderModel {
        name: "cherry-st2xxx",
        title: "Cherry SmartTerminal ST-2xxx",
        dump: "CherrySmartTerminalST2XXX.txt",
        interface: 0,
        vendor_id: 0x046A,
        product_id: 0x003E,
        bcd_device: 0x0601,
        descriptor: CcidDescriptor {
            bcd_ccid: 0x0100,
            max_slot_index: 0,
            voltages: Voltages::from_bits_retain(0x01),
            protocols: Protocols::from_bits_retain(0x0003),
            default_clock_khz: 4000,
            max_clock_khz: 8000,
            num_clocks: 0,
            data_rate_bps: 10753,
            max_data_rate_bps: 344_105,
            num_data_rates: 0,
            max_ifsd: 254,
            synch_protocols: SynchProtocols::from_bits_retain(0),
            mechanical: Mechanical::from_bits_retain(0),
            features: Features::from_bits_retain(0x0001_00BA),
            max_message_length: 270,
            class_get_response: 0xFF,
            class_envelope: 0xFF,
            lcd_layout: 0,
            pin_support: 0x03,
            max_busy_slots: 1,
        },
        data_rates: ClassAnswer::Stall,
        clocks: ClassAnswer::Stall,
    }
}

/// Every shape the rig builds, by name: `vendor` (a class 0xFF interface), `dual` (two CCID
/// interfaces, the contact slot second), `small` (64-byte messages), `autovolt` (automatic
/// voltage selection). `None` when pos-ccid's model list lacks one it names.
pub fn shape(name: &str) -> Option<Shape> {
    let ccid = |model: ReaderModel, name: Option<&'static str>, card_slot: bool| ShapeInterface {
        class: 0x0B,
        name,
        model,
        card_slot,
    };
    Some(match name {
        "vendor" => Shape {
            name: "vendor",
            title: "Cherry SmartTerminal ST-2xxx (vendor-class interface)",
            dump: "CherrySmartTerminalST2XXX.txt",
            vid: 0x046A,
            pid: 0x003E,
            bcd_device: 0x0601,
            manufacturer: "Cherry GmbH",
            product: "SmartTerminal ST-2xxx",
            interfaces: vec![ShapeInterface {
                class: 0xFF,
                name: Some("Vendor Interface"),
                model: cherry_st2xxx(),
                card_slot: true,
            }],
        },
        "dual" => Shape {
            name: "dual",
            title: "HID OMNIKEY 5422 (contactless interface 0, contact interface 1)",
            dump: "HID_OMNIKEY_5422.txt",
            vid: 0x076B,
            pid: 0x5422,
            bcd_device: 0x0101,
            manufacturer: "HID Global",
            product: "OMNIKEY 5422 Smartcard Reader",
            interfaces: vec![
                ccid(
                    omnikey_5422_cl(),
                    Some("OMNIKEY 5422CL Smartcard Reader"),
                    false,
                ),
                ccid(
                    known("omnikey-5422")?,
                    Some("OMNIKEY 5422 Smartcard Reader"),
                    true,
                ),
            ],
        },
        "small" => Shape {
            name: "small",
            title: "Elatec TWN4 MultiTech (64-byte messages, extended APDU level)",
            dump: "Elatec_TWN4_MULTITECH.txt",
            vid: 0x09D8,
            pid: 0x0428,
            bcd_device: 0x0200,
            manufacturer: "OEM",
            product: "TWN4/B1.06/CPF3.05/S1SC1.32/P (Beta 3)",
            interfaces: vec![ccid(twn4_multitech(), None, true)],
        },
        "autovolt" => Shape {
            name: "autovolt",
            title: "SCM Microsystems SCR3310 (automatic voltage selection, TPDU level)",
            dump: "SCR3310.txt",
            vid: 0x04E6,
            pid: 0x5116,
            bcd_device: 0x0523,
            manufacturer: "SCM Microsystems Inc.",
            product: "SCR3310 USB Smart Card Reader",
            interfaces: vec![ccid(known("scr3310")?, None, true)],
        },
        _ => return None,
    })
}

fn le32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

/// The descriptors of one speed: per interface, the interface descriptor, the CCID class
/// descriptor, bulk OUT, bulk IN and interrupt IN (endpoint addresses 3k+1, 3k+2, 3k+3).
/// Returns the bytes and the number of descriptors.
fn speed_set(shape: &Shape, high_speed: bool) -> (Vec<u8>, u32) {
    let mut v = Vec::new();
    let mut count = 0;
    let mut string = 0u8;
    for (k, iface) in shape.interfaces.iter().enumerate() {
        let number = u8::try_from(k).unwrap_or(u8::MAX);
        let i_interface = match iface.name {
            Some(_) => {
                string += 1;
                string
            }
            None => 0,
        };
        v.extend_from_slice(&[9, 4, number, 0, 3, iface.class, 0, 0, i_interface]);
        v.extend_from_slice(&iface.model.descriptor.encode());
        let base = number * 3;
        let bulk = if high_speed { HS_BULK } else { FS_BULK };
        let [bl, bh] = bulk.to_le_bytes();
        let [il, ih] = INTERRUPT_PACKET.to_le_bytes();
        // Interrupt interval: 16 ms at full speed (frames), 2^(8-1) x 125 us at high speed.
        let interval = if high_speed { 8 } else { 16 };
        v.extend_from_slice(&[7, 5, base + 1, 0x02, bl, bh, 0]);
        v.extend_from_slice(&[7, 5, 0x80 | (base + 2), 0x02, bl, bh, 0]);
        v.extend_from_slice(&[7, 5, 0x80 | (base + 3), 0x03, il, ih, interval]);
        count += 5;
    }
    (v, count)
}

/// The FunctionFS descriptors blob (V2 header, full-speed and high-speed sets).
pub fn descriptors(shape: &Shape) -> Vec<u8> {
    let (fs, fs_count) = speed_set(shape, false);
    let (hs, hs_count) = speed_set(shape, true);
    let mut body = Vec::new();
    le32(&mut body, fs_count);
    le32(&mut body, hs_count);
    body.extend_from_slice(&fs);
    body.extend_from_slice(&hs);
    let mut v = Vec::new();
    le32(&mut v, DESCRIPTORS_MAGIC_V2);
    le32(&mut v, u32::try_from(12 + body.len()).unwrap_or(u32::MAX));
    le32(&mut v, HAS_FS_HS);
    v.extend_from_slice(&body);
    v
}

/// The FunctionFS strings blob: the interfaces' names (US English), numbered from 1 in
/// interface order, as [`descriptors`] refers to them.
pub fn strings(shape: &Shape) -> Vec<u8> {
    let names: Vec<&str> = shape.interfaces.iter().filter_map(|i| i.name).collect();
    let mut body = Vec::new();
    if !names.is_empty() {
        body.extend_from_slice(&0x0409u16.to_le_bytes());
        for n in &names {
            body.extend_from_slice(n.as_bytes());
            body.push(0);
        }
    }
    let mut v = Vec::new();
    le32(&mut v, STRINGS_MAGIC);
    le32(&mut v, u32::try_from(16 + body.len()).unwrap_or(u32::MAX));
    le32(&mut v, u32::try_from(names.len()).unwrap_or(0));
    le32(&mut v, u32::from(!names.is_empty()));
    v.extend_from_slice(&body);
    v
}

/// Why the reader could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FfsError {
    /// The configfs gadget.
    #[error("gadget: {0}")]
    Gadget(#[from] GadgetError),
    /// A FunctionFS step.
    #[error("{what}: {source}")]
    Io {
        /// The step.
        what: String,
        /// The error.
        source: io::Error,
    },
    /// The kernel refused the descriptors (FunctionFS validates them).
    #[error("the kernel's FunctionFS refused the descriptors: {0}")]
    Refused(io::Error),
}

fn io_step(what: impl Into<String>) -> impl FnOnce(io::Error) -> FfsError {
    let what = what.into();
    move |source| FfsError::Io { what, source }
}

/// How the cable is pulled.
enum Unplug {
    /// Write this text to this file: the configfs gadget's `UDC` (empty line).
    File(PathBuf, &'static str),
    /// Close GadgetFS's ep0 (its driver unregisters and the device leaves the bus): set
    /// here, done by the ep0 thread.
    CloseEp0(AtomicBool),
}

/// What the function's threads share.
struct Shared {
    stop: AtomicBool,
    /// Bulk packet size in use (64 at full speed, 512 at high speed).
    packet: AtomicU16,
    /// Unbind the gadget instead of answering this XfrBlock (1 = the first; 0: never).
    unplug_at: AtomicU32,
    /// XfrBlocks received on the card's interface.
    xfr_blocks: AtomicU32,
    /// Class requests answered or stalled, and aborts.
    class_requests: AtomicU32,
    unplug: Unplug,
    /// Threads started by other threads (GadgetFS's endpoint threads), joined on drop.
    children: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn new(packet: u16, unplug: Unplug) -> Arc<Shared> {
        Arc::new(Shared {
            stop: AtomicBool::new(false),
            packet: AtomicU16::new(packet),
            unplug_at: AtomicU32::new(0),
            xfr_blocks: AtomicU32::new(0),
            class_requests: AtomicU32::new(0),
            unplug,
            children: Mutex::new(Vec::new()),
        })
    }

    fn unplug(&self) {
        match &self.unplug {
            Unplug::File(path, text) => {
                let _ = std::fs::write(path, text);
            }
            Unplug::CloseEp0(flag) => flag.store(true, Ordering::SeqCst),
        }
    }

    fn unplugged(&self) -> bool {
        matches!(&self.unplug, Unplug::CloseEp0(flag) if flag.load(Ordering::SeqCst))
    }

    /// Stopping, or a GadgetFS device about to close ep0: an endpoint thread must not start
    /// another transfer (GadgetFS's unbind takes each endpoint's lock, which a transfer
    /// waiting for a host that is gone would hold forever), and leaves at its next error.
    fn ending(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.unplugged()
    }
}

/// A running CCID reader built in the guest (FunctionFS, or GadgetFS for a vendor-class
/// shape). Dropping it unplugs it and removes the gadget.
pub struct FfsReader {
    shape: Shape,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// The control handle of each interface's virtual reader.
    handles: Vec<SimReaderHandle>,
    mount: PathBuf,
    mounted: bool,
    gadget: Option<Gadget>,
    udc: String,
}

impl std::fmt::Debug for FfsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FfsReader")
            .field("shape", &self.shape.name)
            .finish_non_exhaustive()
    }
}

/// Mount the FunctionFS instance `instance` at `at` (made if missing).
fn mount_functionfs(instance: &str, at: &Path) -> io::Result<()> {
    std::fs::create_dir_all(at)?;
    mount_fs(instance, at, "functionfs")
}

fn umount(at: &Path) {
    if let Ok(target) = std::ffi::CString::new(at.to_string_lossy().as_bytes()) {
        // SAFETY: a NUL-terminated path; MNT_DETACH never blocks.
        unsafe {
            libc::umount2(target.as_ptr(), libc::MNT_DETACH);
        }
    }
}

impl FfsReader {
    /// Build the gadget for `shape` (forced to full speed, as the readers are), write its
    /// FunctionFS descriptors and strings, start serving every interface (our card, from
    /// `card`, in the contact one), bind it and wait until it enumerates.
    ///
    /// Errors: [`FfsError::Refused`] when the kernel refuses the descriptors, the gadget's or
    /// FunctionFS's other errors.
    pub fn start(
        shape: &Shape,
        card: Box<dyn pos_hal::VirtualCard>,
        limit: Duration,
    ) -> Result<FfsReader, FfsError> {
        let instance = format!("ccid{}", shape.name);
        let mut spec = DeviceSpec::new(shape.vid, shape.pid, shape.manufacturer, shape.product);
        spec.bcd_device = shape.bcd_device;
        let mut gadget = Gadget::create(&format!("rig-{instance}"), &spec)?;
        // Full speed, as these readers are: dummy_hcd then connects at full speed and the
        // host sees the full-speed set (64-byte bulk packets).
        let full_speed = gadget.attr("max_speed", "full-speed").is_ok();
        gadget.function("ffs", &instance, &[])?;
        let mount = PathBuf::from(format!("/dev/ffs-{instance}"));
        mount_functionfs(&instance, &mount).map_err(io_step(format!(
            "mount -t functionfs {instance} {}",
            mount.display()
        )))?;
        let mut reader = FfsReader {
            shape: shape.clone(),
            shared: Shared::new(
                if full_speed { FS_BULK } else { HS_BULK },
                Unplug::File(gadget.dir().join("UDC"), "\n"),
            ),
            threads: Vec::new(),
            handles: Vec::new(),
            mount: mount.clone(),
            mounted: true,
            gadget: Some(gadget),
            udc: String::new(),
        };
        let mut ep0 = OpenOptions::new()
            .read(true)
            .write(true)
            .open(mount.join("ep0"))
            .map_err(io_step("open ep0"))?;
        ep0.write_all(&descriptors(shape))
            .map_err(FfsError::Refused)?;
        ep0.write_all(&strings(shape)).map_err(FfsError::Refused)?;
        let mut card = Some(card);
        let mut readers = Vec::new();
        for (k, iface) in shape.interfaces.iter().enumerate() {
            let config = SimReaderConfig::for_model(&iface.model);
            let target = format!("{} interface {k}", shape.name);
            let (mut vr, handle) = VirtualReader::new(config, &target);
            if iface.card_slot {
                if let Some(c) = card.take() {
                    handle.insert(c);
                }
            }
            let interrupt = vr.take_interrupt();
            let vr = Arc::new(Mutex::new(vr));
            let open_ep = |n: usize| {
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(mount.join(format!("ep{n}")))
                    .map_err(io_step(format!("open ep{n}")))
            };
            let out = open_ep(3 * k + 1)?;
            let inn = open_ep(3 * k + 2)?;
            let int = open_ep(3 * k + 3)?;
            let shared = Arc::clone(&reader.shared);
            let counts = iface.card_slot;
            let bulk_vr = Arc::clone(&vr);
            reader.threads.push(std::thread::spawn(move || {
                serve_bulk(&shared, &bulk_vr, out, inn, counts);
            }));
            if let Some(source) = interrupt {
                let shared = Arc::clone(&reader.shared);
                reader.threads.push(std::thread::spawn(move || {
                    serve_interrupt(&shared, source, int);
                }));
            }
            reader.handles.push(handle);
            readers.push((vr, iface.model.clone()));
        }
        let shared = Arc::clone(&reader.shared);
        reader.threads.push(std::thread::spawn(move || {
            serve_ep0(&shared, ep0, &readers);
        }));
        let gadget = reader.gadget.as_mut().ok_or_else(|| FfsError::Io {
            what: "gadget".into(),
            source: io::Error::other("gone"),
        })?;
        reader.udc = gadget.bind()?;
        gadget.wait_enumerated(limit)?;
        if let Ok(speed) =
            std::fs::read_to_string(format!("/sys/class/udc/{}/current_speed", reader.udc))
        {
            let packet = if speed.trim() == "high-speed" {
                HS_BULK
            } else {
                FS_BULK
            };
            reader.shared.packet.store(packet, Ordering::SeqCst);
        }
        Ok(reader)
    }

    /// The device controller it is bound to, and the speed it runs at.
    pub fn connection(&self) -> String {
        let speed = std::fs::read_to_string(format!("/sys/class/udc/{}/current_speed", self.udc))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown speed".into());
        format!("{} at {speed}", self.udc)
    }

    /// The control handle of the contact interface's virtual reader (insert, remove,
    /// faults).
    pub fn card_slot(&self) -> Option<&SimReaderHandle> {
        let k = self.shape.interfaces.iter().position(|i| i.card_slot)?;
        self.handles.get(k)
    }

    /// Unbind the gadget (pull the cable) instead of answering the `n`-th XfrBlock from now
    /// on the card's interface.
    pub fn unplug_at_exchange(&self, n: u32) {
        let seen = self.shared.xfr_blocks.load(Ordering::SeqCst);
        self.shared.unplug_at.store(seen + n, Ordering::SeqCst);
    }

    /// XfrBlocks the card's interface received so far, and class requests (ep0).
    pub fn counts(&self) -> (u32, u32) {
        (
            self.shared.xfr_blocks.load(Ordering::SeqCst),
            self.shared.class_requests.load(Ordering::SeqCst),
        )
    }

    /// The requests the card's interface received, one line each ([`pos_ccid::sim::SeenRequest::summary`]).
    pub fn request_summaries(&self) -> Vec<String> {
        self.card_slot()
            .map(SimReaderHandle::request_summaries)
            .unwrap_or_default()
    }
}

impl Drop for FfsReader {
    fn drop(&mut self) {
        if let Some(g) = self.gadget.as_mut() {
            let _ = g.unbind();
        }
        self.shared.unplug();
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let children: Vec<JoinHandle<()>> = self
            .shared
            .children
            .lock()
            .map(|mut c| c.drain(..).collect())
            .unwrap_or_default();
        for t in children {
            let _ = t.join();
        }
        if self.mounted {
            umount(&self.mount);
            let _ = std::fs::remove_dir(&self.mount);
        }
        // The gadget's own Drop removes the configfs directories.
        self.gadget.take();
    }
}

/// GadgetFS's mount point (`Documentation/usb/gadget_fs.rst`... the legacy `gadgetfs`
/// module's single file system).
const GADGETFS_MOUNT: &str = "/dev/gadget";

/// dummy_hcd's endpoints GadgetFS offers, per interface: bulk OUT, bulk IN, interrupt IN
/// (file name and the address the descriptors give it).
const GADGETFS_ENDPOINTS: [[(&str, u8); 3]; 2] = [
    [
        ("ep2out-bulk", 0x02),
        ("ep1in-bulk", 0x81),
        ("ep5in-int", 0x85),
    ],
    [
        ("ep7out-bulk", 0x07),
        ("ep6in-bulk", 0x86),
        ("ep10in-int", 0x8A),
    ],
];

/// The full-speed configuration descriptor of `shape` for GadgetFS: the configuration, then
/// per interface its descriptor (iInterface 3, 4, ... when named), its CCID class descriptor
/// verbatim and its three endpoints. GadgetFS checks only the configuration header.
pub fn gadgetfs_config(shape: &Shape) -> Vec<u8> {
    let mut body = Vec::new();
    let mut string = 2u8;
    for (k, iface) in shape
        .interfaces
        .iter()
        .enumerate()
        .take(GADGETFS_ENDPOINTS.len())
    {
        let i_interface = match iface.name {
            Some(_) => {
                string += 1;
                string
            }
            None => 0,
        };
        let number = u8::try_from(k).unwrap_or(0);
        body.extend_from_slice(&[9, 4, number, 0, 3, iface.class, 0, 0, i_interface]);
        body.extend_from_slice(&iface.model.descriptor.encode());
        let [(_, out), (_, inn), (_, int)] = GADGETFS_ENDPOINTS[k];
        let [bl, bh] = FS_BULK.to_le_bytes();
        body.extend_from_slice(&[7, 5, out, 0x02, bl, bh, 0]);
        body.extend_from_slice(&[7, 5, inn, 0x02, bl, bh, 0]);
        body.extend_from_slice(&[7, 5, int, 0x03, INTERRUPT_PACKET.to_le_bytes()[0], 0, 16]);
    }
    let total = u16::try_from(9 + body.len())
        .unwrap_or(u16::MAX)
        .to_le_bytes();
    let count = u8::try_from(shape.interfaces.len().min(GADGETFS_ENDPOINTS.len())).unwrap_or(1);
    // bConfigurationValue 1, self-powered off (bit 7 set as USB 2.0 requires), 100 mA.
    let mut v = vec![9, 2, total[0], total[1], count, 1, 0, 0x80, 50];
    v.extend_from_slice(&body);
    v
}

/// What GadgetFS's ep0 takes first: tag 0, the full-speed configuration (no high-speed one:
/// the device runs at full speed, as these readers do), the device descriptor (strings 1 and
/// 2: manufacturer and product; no serial number).
pub fn gadgetfs_setup_blob(shape: &Shape) -> Vec<u8> {
    let mut v = 0u32.to_le_bytes().to_vec();
    v.extend_from_slice(&gadgetfs_config(shape));
    let [vl, vh] = shape.vid.to_le_bytes();
    let [pl, ph] = shape.pid.to_le_bytes();
    let [dl, dh] = shape.bcd_device.to_le_bytes();
    v.extend_from_slice(&[
        18, 1, 0x00, 0x02, 0, 0, 0, 64, vl, vh, pl, ph, dl, dh, 1, 2, 0, 1,
    ]);
    v
}

/// String descriptor `index` of `shape` as GadgetFS numbers them: 0 the languages (US
/// English), 1 manufacturer, 2 product, 3.. the interfaces' names. `None` for others.
pub fn gadgetfs_string(shape: &Shape, index: u8) -> Option<Vec<u8>> {
    let text = match index {
        0 => return Some(vec![4, 3, 0x09, 0x04]),
        1 => shape.manufacturer,
        2 => shape.product,
        n => shape
            .interfaces
            .iter()
            .filter_map(|i| i.name)
            .nth(usize::from(n - 3))?,
    };
    let units: Vec<u16> = text.encode_utf16().take(126).collect();
    let mut v = vec![u8::try_from(2 + 2 * units.len()).unwrap_or(u8::MAX), 3];
    for u in units {
        v.extend_from_slice(&u.to_le_bytes());
    }
    Some(v)
}

/// Everything the GadgetFS ep0 thread serves, per interface.
struct GadgetFsInterface {
    reader: Arc<Mutex<VirtualReader>>,
    model: ReaderModel,
    interrupt: Option<Box<dyn pos_ccid::InterruptSource>>,
    card_slot: bool,
}

impl FfsReader {
    /// Build `shape` as a whole device written in user space with GadgetFS (the legacy
    /// `gadgetfs` module): for the shapes FunctionFS refuses (a class descriptor under a
    /// vendor-class interface). Full speed; our card in the contact interface; waits until it
    /// enumerates.
    ///
    /// Errors: `Io` (mount, ep0, the kernel refusing the configuration), `Gadget` when it does
    /// not enumerate.
    pub fn start_gadgetfs(
        shape: &Shape,
        card: Box<dyn pos_hal::VirtualCard>,
        limit: Duration,
    ) -> Result<FfsReader, FfsError> {
        let mount = PathBuf::from(GADGETFS_MOUNT);
        std::fs::create_dir_all(&mount).map_err(io_step("mkdir /dev/gadget"))?;
        match mount_fs("gadgetfs", &mount, "gadgetfs") {
            Ok(()) => {}
            Err(e) if errno(&e) == libc::EBUSY => {}
            Err(e) => return Err(io_step("mount -t gadgetfs gadgetfs /dev/gadget")(e)),
        }
        let mut reader = FfsReader {
            shape: shape.clone(),
            shared: Shared::new(FS_BULK, Unplug::CloseEp0(AtomicBool::new(false))),
            threads: Vec::new(),
            handles: Vec::new(),
            mount: mount.clone(),
            mounted: true,
            gadget: None,
            udc: crate::gadget::controller()?,
        };
        // The controller's file: the one entry before any endpoint file exists.
        let ep0_path = std::fs::read_dir(&mount)
            .map_err(io_step("list /dev/gadget"))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with("ep"))
            })
            .ok_or_else(|| FfsError::Io {
                what: "/dev/gadget".into(),
                source: io::Error::other("no controller file (is a gadget bound?)"),
            })?;
        let mut ep0 = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&ep0_path)
            .map_err(io_step(format!("open {}", ep0_path.display())))?;
        let mut card = Some(card);
        let mut interfaces = Vec::new();
        for (k, iface) in shape
            .interfaces
            .iter()
            .enumerate()
            .take(GADGETFS_ENDPOINTS.len())
        {
            let (mut vr, handle) = VirtualReader::new(
                SimReaderConfig::for_model(&iface.model),
                &format!("{} interface {k}", shape.name),
            );
            if iface.card_slot {
                if let Some(c) = card.take() {
                    handle.insert(c);
                }
            }
            let interrupt = vr.take_interrupt();
            reader.handles.push(handle);
            interfaces.push(GadgetFsInterface {
                reader: Arc::new(Mutex::new(vr)),
                model: iface.model.clone(),
                interrupt,
                card_slot: iface.card_slot,
            });
        }
        ep0.write_all(&gadgetfs_setup_blob(shape))
            .map_err(FfsError::Refused)?;
        let shared = Arc::clone(&reader.shared);
        let s = shape.clone();
        let dir = mount.clone();
        reader.threads.push(std::thread::spawn(move || {
            serve_gadgetfs_ep0(&shared, ep0, &s, &dir, interfaces);
        }));
        crate::gadget::wait_for_device(shape.vid, shape.pid, limit)?;
        Ok(reader)
    }
}

/// `mount -t FSTYPE SOURCE AT` (no flags, no options).
fn mount_fs(source: &str, at: &Path, fstype: &str) -> io::Result<()> {
    let c = |s: &str| std::ffi::CString::new(s).map_err(io::Error::other);
    let source = c(source)?;
    let target = c(&at.to_string_lossy())?;
    let fstype = c(fstype)?;
    // SAFETY: NUL-terminated strings living across the call; no data argument.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// GadgetFS event types (`enum usb_gadgetfs_event_type`).
const GADGETFS_SETUP: u32 = 3;

/// Open and configure a GadgetFS endpoint file (tag 1, its full-speed descriptor).
fn gadgetfs_endpoint(dir: &Path, name: &str, descriptor: [u8; 7]) -> io::Result<File> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join(name))?;
    let mut config = 1u32.to_le_bytes().to_vec();
    config.extend_from_slice(&descriptor);
    f.write_all(&config)?;
    Ok(f)
}

/// GadgetFS's ep0: string descriptors, SET_CONFIGURATION (the endpoints configured and
/// served from then on), SET_INTERFACE, the CCID class requests; anything else stalled.
/// Returns (closing ep0: the device leaves the bus) when stopped or unplugged.
fn serve_gadgetfs_ep0(
    shared: &Arc<Shared>,
    mut ep0: File,
    shape: &Shape,
    dir: &Path,
    mut interfaces: Vec<GadgetFsInterface>,
) {
    let mut buf = [0u8; EVENT_LEN * 4];
    let mut configured = false;
    let mut empty = [0u8; 0];
    while !shared.stop.load(Ordering::SeqCst) && !shared.unplugged() {
        let mut fds = libc::pollfd {
            fd: ep0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut fds, 1, 50) };
        if ready <= 0 || fds.revents & libc::POLLIN == 0 {
            continue;
        }
        let n = match ep0.read(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                log::debug!("gadgetfs ep0: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        for ev in buf[..n].chunks_exact(EVENT_LEN) {
            if u32::from_le_bytes([ev[8], ev[9], ev[10], ev[11]]) != GADGETFS_SETUP {
                continue;
            }
            let mut setup = [0u8; 8];
            setup.copy_from_slice(&ev[..8]);
            let value = u16::from_le_bytes([setup[2], setup[3]]);
            let length = usize::from(u16::from_le_bytes([setup[6], setup[7]]));
            match (setup[0], setup[1]) {
                // GET_DESCRIPTOR (string): the others GadgetFS answers itself.
                (0x80, 0x06) if value >> 8 == 3 => {
                    match gadgetfs_string(shape, (value & 0xFF) as u8) {
                        Some(mut d) => {
                            d.truncate(length);
                            let _ = ep0.write(&d);
                        }
                        None => {
                            let _ = ep0.read(&mut empty);
                        }
                    }
                }
                // SET_CONFIGURATION: configure and serve the endpoints, then acknowledge.
                (0x00, 0x09) => {
                    if value != 0 && !configured {
                        configured = true;
                        for (k, iface) in interfaces.iter_mut().enumerate() {
                            start_gadgetfs_interface(shared, dir, k, iface);
                        }
                    }
                    let _ = ep0.read(&mut empty);
                }
                // SET_INTERFACE (alternate 0, the only one).
                (0x01, 0x0B) => {
                    let _ = ep0.read(&mut empty);
                }
                _ => {
                    shared.class_requests.fetch_add(1, Ordering::SeqCst);
                    let models: Vec<&ReaderModel> = interfaces.iter().map(|i| &i.model).collect();
                    match setup_answer(&setup, &models) {
                        SetupAnswer::Data(d) => {
                            let _ = ep0.write(&d);
                        }
                        SetupAnswer::Ack(abort) => {
                            let index = usize::from(u16::from_le_bytes([setup[4], setup[5]]));
                            if let (Some((slot, seq)), Some(i)) = (abort, interfaces.get(index)) {
                                let mut r = i.reader.lock().unwrap_or_else(PoisonError::into_inner);
                                let _ = r.abort_request(
                                    slot,
                                    seq,
                                    Deadline::after(Duration::from_secs(1)),
                                );
                            }
                            let _ = ep0.read(&mut empty);
                        }
                        SetupAnswer::Stall => {
                            if setup[0] & 0x80 != 0 {
                                let _ = ep0.read(&mut empty);
                            } else {
                                let _ = ep0.write(&empty);
                            }
                        }
                    }
                }
            }
        }
    }
    // Closing ep0 unregisters GadgetFS's driver: the device leaves the bus. Its unbind takes
    // each endpoint's lock, which a thread waiting in a transfer holds (the controller does
    // not end those transfers when the device disconnects: measured on 6.1, the unbind then
    // waits forever). Interrupt those waits first: the transfers are dequeued, the threads
    // see `ending` and leave.
    interrupt_children(shared);
    drop(ep0);
}

extern "C" fn wake(_: libc::c_int) {}

/// Interrupt the endpoint threads' transfers with SIGUSR1 (a handler that does nothing,
/// without SA_RESTART, so the blocked read or write returns EINTR) until they have left, at
/// most 2 s.
fn interrupt_children(shared: &Shared) {
    use std::os::unix::thread::JoinHandleExt as _;
    // SAFETY: a zeroed sigaction with a handler that does nothing, installed for SIGUSR1
    // (which nothing else in rig-guest uses).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = wake as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut action.sa_mask);
        action.sa_flags = 0;
        libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut());
    }
    let t = std::time::Instant::now();
    loop {
        let children = shared
            .children
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let running: Vec<&JoinHandle<()>> = children.iter().filter(|c| !c.is_finished()).collect();
        if running.is_empty() || t.elapsed() > Duration::from_secs(2) {
            return;
        }
        for c in running {
            // SAFETY: the thread is alive (not finished) and its handle is held, so its
            // pthread_t is valid.
            unsafe {
                libc::pthread_kill(c.as_pthread_t(), libc::SIGUSR1);
            }
        }
        drop(children);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Configure interface `k`'s endpoints and start serving them (bulk, interrupt).
fn start_gadgetfs_interface(
    shared: &Arc<Shared>,
    dir: &Path,
    k: usize,
    iface: &mut GadgetFsInterface,
) {
    let Some(&[(out_name, out), (in_name, inn), (int_name, int)]) = GADGETFS_ENDPOINTS.get(k)
    else {
        return;
    };
    let [bl, bh] = FS_BULK.to_le_bytes();
    let opened = (
        gadgetfs_endpoint(dir, out_name, [7, 5, out, 0x02, bl, bh, 0]),
        gadgetfs_endpoint(dir, in_name, [7, 5, inn, 0x02, bl, bh, 0]),
        gadgetfs_endpoint(
            dir,
            int_name,
            [7, 5, int, 0x03, INTERRUPT_PACKET.to_le_bytes()[0], 0, 16],
        ),
    );
    let (Ok(out_file), Ok(in_file), int_file) = opened else {
        log::warn!("gadgetfs: interface {k}: endpoints could not be configured");
        return;
    };
    let mut children = shared
        .children
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let s = Arc::clone(shared);
    let vr = Arc::clone(&iface.reader);
    let counts = iface.card_slot;
    children.push(std::thread::spawn(move || {
        serve_bulk(&s, &vr, out_file, in_file, counts);
    }));
    if let (Some(source), Ok(int_file)) = (iface.interrupt.take(), int_file) {
        let s = Arc::clone(shared);
        children.push(std::thread::spawn(move || {
            serve_interrupt(&s, source, int_file);
        }));
    }
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// Write `data` to an endpoint file, waiting while the function is not enabled; false when
/// stopped or the endpoint failed (unplugged).
fn write_ep(shared: &Shared, ep: &mut File, data: &[u8]) -> bool {
    loop {
        if shared.ending() {
            return false;
        }
        match ep.write(data) {
            Ok(_) => return true,
            Err(e) if errno(&e) == libc::EAGAIN || errno(&e) == libc::EINTR => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => {
                log::debug!("ffs endpoint write: {e}");
                return false;
            }
        }
    }
}

/// Serve one interface's bulk pipes: read a PC_to_RDR message packet by packet (a message
/// ends when its header's length is reached, or at a short packet), hand it to the virtual
/// reader, write its answers on bulk IN (with a zero-length packet after an answer that
/// fills its last packet, so the host's transfer ends).
fn serve_bulk(
    shared: &Shared,
    vr: &Mutex<VirtualReader>,
    mut out: File,
    mut inn: File,
    card_interface: bool,
) {
    let mut msg: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; usize::from(HS_BULK)];
    while !shared.ending() {
        let packet = usize::from(shared.packet.load(Ordering::SeqCst));
        let n = match out.read(&mut buf[..packet]) {
            Ok(n) => n,
            Err(e) if errno(&e) == libc::EAGAIN || errno(&e) == libc::EINTR => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            Err(e) => {
                // Disabled or unbound (ESHUTDOWN): a partial message is lost with it.
                log::debug!("ffs bulk out: {e}");
                if shared.ending() {
                    return;
                }
                msg.clear();
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
        };
        msg.extend_from_slice(&buf[..n]);
        let want = pos_ccid::message::message_length(&msg);
        let complete = match want {
            Some(total) => msg.len() >= total,
            None => false,
        };
        if !complete && n == packet {
            continue;
        }
        let message = std::mem::take(&mut msg);
        if card_interface && message.first() == Some(&XFR_BLOCK) {
            let nth = shared.xfr_blocks.fetch_add(1, Ordering::SeqCst) + 1;
            if shared.unplug_at.load(Ordering::SeqCst) == nth {
                // The cable pulled with the exchange pending: no answer, the device goes.
                shared.unplug();
                continue;
            }
        }
        let replies = {
            let mut r = vr.lock().unwrap_or_else(PoisonError::into_inner);
            if r.send(&message, Deadline::after(Duration::from_secs(1)))
                .is_err()
            {
                Vec::new()
            } else {
                let mut replies = Vec::new();
                while let Ok(reply) = r.receive(Deadline::after(Duration::ZERO)) {
                    replies.push(reply);
                }
                replies
            }
        };
        for reply in replies {
            if !write_ep(shared, &mut inn, &reply) {
                break;
            }
            if !reply.is_empty() && reply.len() % packet == 0 {
                let _ = write_ep(shared, &mut inn, &[]);
            }
        }
    }
}

/// Pass the virtual reader's notifications (NotifySlotChange) to the interrupt endpoint.
fn serve_interrupt(shared: &Shared, mut source: Box<dyn pos_ccid::InterruptSource>, mut int: File) {
    let mut buf = [0u8; 64];
    while !shared.ending() {
        match source.read(&mut buf, Deadline::after(Duration::from_millis(100))) {
            Ok(n) => {
                let _ = write_ep(shared, &mut int, &buf[..n.min(buf.len())]);
            }
            Err(e) if pos_hal::Fault::kind(&e) == pos_hal::FaultKind::Timeout => {}
            Err(_) => return,
        }
    }
}

/// Answer ep0's events: SETUP requests addressed to an interface (ABORT,
/// GET_CLOCK_FREQUENCIES, GET_DATA_RATES as the model has them; anything else stalled).
fn serve_ep0(shared: &Shared, mut ep0: File, readers: &[(Arc<Mutex<VirtualReader>>, ReaderModel)]) {
    let mut buf = [0u8; EVENT_LEN * 4];
    while !shared.stop.load(Ordering::SeqCst) {
        let mut fds = libc::pollfd {
            fd: ep0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut fds, 1, 100) };
        if ready <= 0 {
            continue;
        }
        let n = match ep0.read(&mut buf) {
            Ok(n) => n,
            Err(e) if errno(&e) == libc::EAGAIN || errno(&e) == libc::EINTR => continue,
            Err(e) => {
                log::debug!("ffs ep0: {e}");
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        for ev in buf[..n].chunks_exact(EVENT_LEN) {
            match ev[8] {
                EVENT_SETUP => {
                    let mut setup = [0u8; 8];
                    setup.copy_from_slice(&ev[..8]);
                    shared.class_requests.fetch_add(1, Ordering::SeqCst);
                    answer_setup(&mut ep0, &setup, readers);
                }
                EVENT_ENABLE => log::debug!("ffs: enabled"),
                EVENT_DISABLE => log::debug!("ffs: disabled"),
                _ => {}
            }
        }
    }
}

/// What a SETUP request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupAnswer {
    /// IN data (possibly empty).
    Data(Vec<u8>),
    /// OUT request acknowledged (its data read); for ABORT, the slot and sequence.
    Ack(Option<(u8, u8)>),
    /// Stalled.
    Stall,
}

/// How the reader answers the 8-byte setup packet `setup` (its wIndex is the function's own
/// interface number, as FunctionFS passes it): pure, for tests.
pub fn setup_answer(setup: &[u8; 8], models: &[&ReaderModel]) -> SetupAnswer {
    let request_type = setup[0];
    let request = setup[1];
    let value = u16::from_le_bytes([setup[2], setup[3]]);
    let index = usize::from(u16::from_le_bytes([setup[4], setup[5]]));
    let length = usize::from(u16::from_le_bytes([setup[6], setup[7]]));
    let Some(model) = models.get(index) else {
        return SetupAnswer::Stall;
    };
    let [slot, seq] = value.to_le_bytes();
    let list = |a: ClassAnswer| match a {
        ClassAnswer::List(l) => {
            let mut v: Vec<u8> = l.iter().flat_map(|x| x.to_le_bytes()).collect();
            v.truncate(length);
            SetupAnswer::Data(v)
        }
        ClassAnswer::Empty => SetupAnswer::Data(Vec::new()),
        ClassAnswer::Stall | ClassAnswer::Fails => SetupAnswer::Stall,
    };
    match (request_type, request) {
        // Class, interface, host to device.
        (0x21, REQ_ABORT) => SetupAnswer::Ack(Some((slot, seq))),
        // Class, interface, device to host.
        (0xA1, REQ_GET_CLOCK_FREQUENCIES) => list(model.clocks),
        (0xA1, REQ_GET_DATA_RATES) => list(model.data_rates),
        _ => SetupAnswer::Stall,
    }
}

fn answer_setup(
    ep0: &mut File,
    setup: &[u8; 8],
    readers: &[(Arc<Mutex<VirtualReader>>, ReaderModel)],
) {
    let models: Vec<&ReaderModel> = readers.iter().map(|(_, m)| m).collect();
    let device_to_host = setup[0] & 0x80 != 0;
    let mut empty = [0u8; 0];
    match setup_answer(setup, &models) {
        SetupAnswer::Data(d) => {
            let _ = ep0.write(&d);
        }
        SetupAnswer::Ack(abort) => {
            if let (Some((slot, seq)), Some((vr, _))) = (
                abort,
                readers.get(usize::from(u16::from_le_bytes([setup[4], setup[5]]))),
            ) {
                let mut r = vr.lock().unwrap_or_else(PoisonError::into_inner);
                let _ = r.abort_request(slot, seq, Deadline::after(Duration::from_secs(1)));
            }
            let _ = ep0.read(&mut empty);
        }
        SetupAnswer::Stall => {
            // The opposite direction's I/O stalls (functionfs.rst).
            if device_to_host {
                let _ = ep0.read(&mut empty);
            } else {
                let _ = ep0.write(&empty);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_shape_is_built_and_its_descriptors_read_back() {
        for name in ["vendor", "dual", "small", "autovolt"] {
            let s = shape(name).unwrap();
            let blob = descriptors(&s);
            assert_eq!(&blob[..4], &3u32.to_le_bytes());
            assert_eq!(
                u32::from_le_bytes(blob[4..8].try_into().unwrap()) as usize,
                blob.len()
            );
            let n = s.interfaces.len() as u32 * 5;
            assert_eq!(&blob[12..20], [n.to_le_bytes(), n.to_le_bytes()].concat());
            // Each interface's bytes hold its class descriptor, read back by the driver's
            // own finder, equal to the model.
            let (fs, _) = speed_set(&s, false);
            let per = fs.len() / s.interfaces.len();
            assert_eq!(per, 9 + 54 + 21);
            for (k, i) in s.interfaces.iter().enumerate() {
                let bytes = &fs[k * per..(k + 1) * per];
                assert_eq!(bytes[2], k as u8);
                assert_eq!(bytes[5], i.class);
                let d = pos_ccid::descriptor::find(&bytes[9..]).unwrap().unwrap();
                assert_eq!(d, i.model.descriptor);
                // Bulk 64 at full speed.
                assert_eq!(&bytes[9 + 54 + 4..9 + 54 + 6], &64u16.to_le_bytes());
            }
            assert!(s.contact().is_some());
            let st = strings(&s);
            assert_eq!(
                u32::from_le_bytes(st[4..8].try_into().unwrap()) as usize,
                st.len()
            );
        }
        assert!(shape("nope").is_none());
    }

    #[test]
    fn the_shapes_differ_as_intended() {
        let dual = shape("dual").unwrap();
        assert_eq!(dual.interfaces.len(), 2);
        assert!(dual.interfaces[1].card_slot);
        assert_eq!(shape("vendor").unwrap().interfaces[0].class, 0xFF);
        assert_eq!(
            shape("small").unwrap().interfaces[0]
                .model
                .descriptor
                .max_message_length,
            64
        );
        assert!(
            shape("autovolt").unwrap().interfaces[0]
                .model
                .descriptor
                .auto_voltage()
        );
        assert!(
            !shape("small").unwrap().interfaces[0]
                .model
                .descriptor
                .auto_voltage()
        );
    }

    #[test]
    fn each_shape_reads_our_card_over_the_driver_as_its_function_serves_it() {
        // The function serves each interface with this virtual reader; here the driver
        // talks to it directly (no USB): the EMV read must work at the shape's level and
        // message size, the card's slot first.
        use pos_emv::profile_card::{Profile, ProfileCard};
        use pos_hal::ChipReader as _;
        for name in ["vendor", "dual", "small", "autovolt"] {
            let s = shape(name).unwrap();
            let iface = s.contact().unwrap();
            let (vr, handle) = VirtualReader::new(SimReaderConfig::for_model(&iface.model), name);
            handle.insert(Box::new(ProfileCard::new(Profile::Mastercard)));
            let mut r = pos_ccid::CcidReader::new(vr, name, pos_ccid::ReaderConfig::default());
            r.power_on(0).unwrap();
            let read = crate::scenarios::emv_read(&mut r, 0).unwrap();
            assert_eq!(
                read.masked_pan.as_deref(),
                Some(pos_hal::mask_pan(Profile::Mastercard.pan()).as_str()),
                "{name}"
            );
            // A command longer than a 64-byte message: chained at the small shape.
            let answer = r.transmit(0, &crate::scenarios::long_command()).unwrap();
            assert!(answer.len() >= 2, "{name}: {answer:02X?}");
            let max = iface.model.descriptor.max_message_length as usize;
            let seen = handle.requests();
            assert!(
                seen.iter().all(|q| q.length <= max && q.error.is_none()),
                "{name}"
            );
            if name == "small" {
                assert!(
                    handle
                        .request_summaries()
                        .iter()
                        .any(|l| l.contains("wLevelParameter 0x0001")),
                    "{:?}",
                    handle.request_summaries()
                );
            }
        }
    }

    #[test]
    fn the_gadgetfs_device_carries_the_vendor_interface_and_its_strings() {
        let s = shape("vendor").unwrap();
        let blob = gadgetfs_setup_blob(&s);
        assert_eq!(&blob[..4], &[0, 0, 0, 0]);
        let config = &blob[4..];
        let total = usize::from(u16::from_le_bytes([config[2], config[3]]));
        assert_eq!(total, 9 + 9 + 54 + 21);
        // Then exactly the 18-byte device descriptor, with the dump's ids and firmware.
        let device = &config[total..];
        assert_eq!(device.len(), 18);
        assert_eq!(&device[8..14], &[0x6A, 0x04, 0x3E, 0x00, 0x01, 0x06]);
        // The interface: class 0xFF, named (string 3), its CCID descriptor found by the
        // driver's own finder.
        let iface = &config[9..18];
        assert_eq!((iface[1], iface[5], iface[8]), (4, 0xFF, 3));
        let d = pos_ccid::descriptor::find(&config[18..total])
            .unwrap()
            .unwrap();
        assert_eq!(d.max_message_length, 270);
        let name = gadgetfs_string(&s, 3).unwrap();
        assert_eq!(name[0] as usize, name.len());
        assert_eq!(name[2], b'V');
        assert_eq!(gadgetfs_string(&s, 0).unwrap(), [4, 3, 0x09, 0x04]);
        assert_eq!(
            gadgetfs_string(&s, 1).unwrap().len(),
            2 + 2 * "Cherry GmbH".len()
        );
        assert!(gadgetfs_string(&s, 4).is_none());
    }

    #[test]
    fn class_requests_are_answered_as_the_dump_says() {
        let dual = shape("dual").unwrap();
        let models: Vec<&ReaderModel> = dual.interfaces.iter().map(|i| &i.model).collect();
        // GET_CLOCK_FREQUENCIES on interface 1: the 5422's four clocks.
        let a = setup_answer(&[0xA1, 2, 0, 0, 1, 0, 0xFF, 0], &models);
        assert_eq!(
            a,
            SetupAnswer::Data(
                [4000u32, 4800, 6000, 8000]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect()
            )
        );
        // Truncated to wLength.
        let a = setup_answer(&[0xA1, 3, 0, 0, 1, 0, 8, 0], &models);
        assert!(matches!(a, SetupAnswer::Data(d) if d.len() == 8));
        // Interface 0 (contactless) stalls; an unknown interface too; ABORT is acked.
        assert_eq!(
            setup_answer(&[0xA1, 3, 0, 0, 0, 0, 8, 0], &models),
            SetupAnswer::Stall
        );
        assert_eq!(
            setup_answer(&[0xA1, 3, 0, 0, 5, 0, 8, 0], &models),
            SetupAnswer::Stall
        );
        assert_eq!(
            setup_answer(&[0x21, 1, 0, 7, 1, 0, 0, 0], &models),
            SetupAnswer::Ack(Some((0, 7)))
        );
        assert_eq!(
            setup_answer(&[0x21, 9, 0, 0, 1, 0, 0, 0], &models),
            SetupAnswer::Stall
        );
    }
}
