//! Scenarios: hid. USB HID magstripe readers built in the guest with `usb_f_hid` on
//! `dummy_hcd`: a MagTek vendor-mode reader (0801:0002, MagTek's report descriptor) read
//! through our HID driver on the `usb:0801:0002` road a lane configures, and a
//! keyboard-wedge reader (0801:0001, a boot keyboard) typing for the German layout, read
//! through our evdev wedge driver with `layout=de`, and with the wrong layout.
//!
//! The reader's side (descriptors, reports, key strokes) is in [`super::hid_feed`].

use std::path::{Path, PathBuf};

use pos_hal::{MagstripeReader as _, Swipe, TrackStatus};
use pos_magstripe::serial::MsrError;
use pos_magstripe::{SwipeVerdict, Track, Track1Data, Track2Data, swipe_verdict};

use super::hid_feed::*;
use super::*;
use crate::gadget::{DeviceSpec, Gadget, class_nodes, require_modules, wait_for_path, wait_gone};

/// The test card's PAN (a Mastercard test number, Luhn-valid).
const PAN: &str = crate::operator::TEST_SWIPE_PAN;
/// How long a swipe may take to come through once the reader sent it.
const SWIPE_LIMIT: Duration = Duration::from_secs(5);
/// Track 1 of the test card with service code `service`.
fn track1(service: &str) -> String {
    format!("B{PAN}^RIG/TEST^3012{service}0000000000000")
}
/// Track 2 of the test card with service code `service`.
fn track2(service: &str) -> String {
    format!("{PAN}=3012{service}0000000000000")
}

/// The modules every gadget case needs: a missing one is a SKIP naming it.
fn require_hid_gadget() -> Result<(), End> {
    require_modules(&["libcomposite", "dummy_hcd", "usb_f_hid"]).map_err(End::Skip)
}

/// Wait for `cond` to hold (polled every 20 ms), at most `limit`.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if t.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A bound gadget with one HID function, enumerated: the gadget, its sysfs USB directory
/// and the function's `/dev/hidgN`. Dropping it unplugs the device and waits until the
/// host side has seen it go (its hidraw and input nodes with it), so the next case's gadget
/// at the same USB address is never mistaken for this one.
struct HidGadget {
    gadget: Gadget,
    usb_dir: PathBuf,
    hidg: PathBuf,
}

impl Drop for HidGadget {
    fn drop(&mut self) {
        let (vid, pid) = (self.gadget.spec().vid, self.gadget.spec().pid);
        if self.gadget.unbind().is_ok() {
            if let Err(e) = wait_gone(vid, pid, GADGET_LIMIT) {
                eprintln!("rig-guest: {e}");
            }
        }
    }
}

fn hid_gadget(
    ctx: &Ctx<'_>,
    name: &str,
    spec: &DeviceSpec,
    attrs: &[(&str, &[u8])],
) -> Result<HidGadget, End> {
    let mut gadget = Gadget::create(name, spec).map_err(|e| fail(format!("gadget: {e}")))?;
    let function = gadget
        .function("hid", name, attrs)
        .map_err(|e| fail(format!("hid function: {e}")))?;
    let udc = gadget.bind().map_err(|e| fail(format!("bind: {e}")))?;
    let usb_dir = gadget
        .wait_enumerated(GADGET_LIMIT)
        .map_err(|e| fail(e.to_string()))?;
    let hidg = hidg_node(&function).ok_or_else(|| {
        fail(format!(
            "no /dev/hidgN for {} (no matching /sys/class/hidg entry)",
            function.display()
        ))
    })?;
    wait_for_path(&hidg, GADGET_LIMIT).map_err(|e| fail(e.to_string()))?;
    ctx.step(format!(
        "{:04x}:{:04x} bound to {udc}, enumerated as {}; gadget side {}",
        spec.vid,
        spec.pid,
        usb_dir.display(),
        hidg.display()
    ));
    Ok(HidGadget {
        gadget,
        usb_dir,
        hidg,
    })
}

/// The MagTek vendor-mode reader, enumerated, with usbhid bound (its hidraw node there and
/// holding MagTek's report descriptor).
fn magtek_gadget(ctx: &Ctx<'_>) -> Result<HidGadget, End> {
    require_hid_gadget()?;
    let spec = DeviceSpec::new(MAGTEK_VID, MAGTEK_HID_PID, "Mag-Tek", "USB Swipe Reader");
    let report_len = MAGTEK_REPORT_LEN.to_string();
    let g = hid_gadget(
        ctx,
        "magtek",
        &spec,
        &[
            // Not a boot device: no subclass, no protocol (a vendor usage page).
            ("protocol", b"0"),
            ("subclass", b"0"),
            ("report_length", report_len.as_bytes()),
            ("report_desc", &MAGTEK_REPORT_DESCRIPTOR),
        ],
    )?;
    let mut nodes = Vec::new();
    if !wait_until(GADGET_LIMIT, || {
        nodes = class_nodes(&g.usb_dir, "hidraw");
        !nodes.is_empty()
    }) {
        return Err(fail(format!(
            "usbhid made no hidraw node for {} within {} ms",
            g.usb_dir.display(),
            GADGET_LIMIT.as_millis()
        )));
    }
    let node = &nodes[0];
    let name = node.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let desc_path = Path::new("/sys/class/hidraw")
        .join(name)
        .join("device/report_descriptor");
    let seen =
        std::fs::read(&desc_path).map_err(|e| fail(format!("{}: {e}", desc_path.display())))?;
    if seen != MAGTEK_REPORT_DESCRIPTOR {
        return Err(fail(format!(
            "the kernel holds a {}-byte report descriptor, not MagTek's {} bytes",
            seen.len(),
            MAGTEK_REPORT_DESCRIPTOR.len()
        )));
    }
    ctx.step(format!(
        "usbhid bound: {} with MagTek's {}-byte report descriptor",
        node.display(),
        seen.len()
    ));
    Ok(g)
}

/// Our HID driver opened on `uri_text` as a lane would (`pos_magstripe::hid::open`), with
/// the report layout it took from the reader's own descriptor (anything else fails).
fn open_magtek(
    uri_text: &str,
) -> Result<
    (
        pos_magstripe::hid::HidMsr<pos_magstripe::hid::HidLink>,
        pos_magstripe::hid::MagtekLayout,
    ),
    End,
> {
    let uri = DeviceUri::parse(uri_text).map_err(|e| fail(format!("{uri_text}: {e}")))?;
    let msr =
        pos_magstripe::hid::open(&uri).map_err(|e| device_fail(&format!("open {uri_text}"), &e))?;
    let layout = *msr.layout();
    if layout.source != pos_magstripe::hid::LayoutSource::Descriptor
        || layout.report_len != MAGTEK_REPORT_LEN
    {
        return Err(fail(format!(
            "the driver's layout is {}-byte reports from {:?}, expected {MAGTEK_REPORT_LEN} from the descriptor",
            layout.report_len, layout.source
        )));
    }
    Ok((msr, layout))
}

/// The reader sends `report` (one swipe); our HID driver, opened on `usb:0801:0002` as a
/// lane would (`pos_magstripe::hid::open`, usbhid detached while open), reads it.
fn swipe_through_hid(ctx: &Ctx<'_>, report: &[u8]) -> Result<Result<Swipe, MsrError>, End> {
    let g = magtek_gadget(ctx)?;
    let uri_text = format!("usb:{MAGTEK_VID:04x}:{MAGTEK_HID_PID:04x}");
    let (mut msr, layout) = open_magtek(&uri_text)?;
    ctx.step(format!(
        "{uri_text} open: {}-byte input reports, layout from the device's report descriptor",
        layout.report_len
    ));
    // libusb detached usbhid to claim the interface: the hidraw node is gone while open.
    if !wait_until(GADGET_LIMIT, || {
        class_nodes(&g.usb_dir, "hidraw").is_empty()
    }) {
        return Err(fail(
            "usbhid still holds the reader (a hidraw node) while it is open",
        ));
    }
    ctx.step("usbhid detached while open (no hidraw node)");
    let mut writer = HidgWriter::open(&g.hidg).map_err(fail)?;
    writer
        .send(report, Instant::now() + SWIPE_LIMIT)
        .map_err(fail)?;
    let t = Instant::now();
    let result = msr.wait_for_swipe(SWIPE_LIMIT);
    ctx.step(format!(
        "the driver answered {} ms after the report was queued",
        t.elapsed().as_millis()
    ));
    drop(msr);
    // Closing gives the interface back to usbhid.
    if !wait_until(GADGET_LIMIT, || {
        !class_nodes(&g.usb_dir, "hidraw").is_empty()
    }) {
        return Err(fail(
            "usbhid did not get the reader back after the driver closed it",
        ));
    }
    ctx.step("closed: usbhid bound again (hidraw node back)");
    drop(g);
    Ok(result)
}

/// The masked PAN of track `which` (1 or 2) of `swipe`, and the parsed service code.
fn masked_pan(
    swipe: &Swipe,
    which: usize,
) -> Result<(String, Option<pos_magstripe::ServiceCode>), End> {
    let data = swipe.tracks[which - 1]
        .data
        .as_ref()
        .ok_or_else(|| fail(format!("track {which} has no data")))?;
    let text = std::str::from_utf8(data.expose())
        .map_err(|_| fail(format!("track {which} is not text")))?;
    if which == 1 {
        let t =
            Track1Data::parse(text).map_err(|e| fail(format!("track 1 does not decode: {e}")))?;
        Ok((t.masked_pan().as_str().to_string(), t.service_code))
    } else {
        let t =
            Track2Data::parse(text).map_err(|e| fail(format!("track 2 does not decode: {e}")))?;
        Ok((t.masked_pan().as_str().to_string(), t.service_code))
    }
}

fn expect_statuses(swipe: &Swipe, want: [TrackStatus; 3]) -> Result<(), End> {
    let got = swipe.statuses();
    if got != want {
        return Err(fail(format!("tracks read {got:?}, expected {want:?}")));
    }
    Ok(())
}

fn expect_pan(got: &str, which: usize) -> Result<(), End> {
    let expected = pos_hal::mask_pan(PAN);
    if got != expected {
        return Err(fail(format!(
            "track {which} reads PAN {got}, expected {expected}"
        )));
    }
    Ok(())
}

/// The report of a clean swipe of the test card with service code `sc`: tracks 1 and 2
/// decoded, no track 3, ISO/ABA encoding.
fn clean_report(sc: &str) -> Vec<u8> {
    magtek_report(
        &[
            TrackReport::ok('%', &track1(sc)),
            TrackReport::ok(';', &track2(sc)),
            TrackReport::empty(),
        ],
        ENCODE_ISO_ABA,
    )
}

/// Tracks 1 and 2 read, track 3 empty.
fn expect_clean(swipe: &Swipe) -> Result<(), End> {
    expect_statuses(
        swipe,
        [TrackStatus::Ok, TrackStatus::Ok, TrackStatus::Empty],
    )
}

/// `hid.swipe`: a good swipe, both tracks decoded by the reader.
pub(super) fn hid_swipe(ctx: &mut Ctx<'_>) -> Outcome {
    let report = clean_report("101");
    let swipe =
        swipe_through_hid(ctx, &report)?.map_err(|e| device_fail("wait for the swipe", &e))?;
    expect_clean(&swipe)?;
    let (p1, _) = masked_pan(&swipe, 1)?;
    let (p2, sc) = masked_pan(&swipe, 2)?;
    expect_pan(&p1, 1)?;
    expect_pan(&p2, 2)?;
    let verdict = sc.map(|s| swipe_verdict(s, false));
    if verdict != Some(SwipeVerdict::Proceed) {
        return Err(fail(format!(
            "a magnetic-stripe card (service code 101) gives {verdict:?}, expected Proceed"
        )));
    }
    Ok(format!(
        "tracks 1 and 2 read through usb:0801:0002, PAN {p2}, magstripe card: proceed"
    ))
}

/// `hid.track1_bad`: the reader's decode status says track 1 failed; track 2 still reads.
pub(super) fn hid_track1_bad(ctx: &mut Ctx<'_>) -> Outcome {
    let report = magtek_report(
        &[
            TrackReport::error(),
            TrackReport::ok(';', &track2("101")),
            TrackReport::empty(),
        ],
        ENCODE_ISO_ABA,
    );
    let swipe =
        swipe_through_hid(ctx, &report)?.map_err(|e| device_fail("wait for the swipe", &e))?;
    expect_statuses(
        &swipe,
        [TrackStatus::Parity, TrackStatus::Ok, TrackStatus::Empty],
    )?;
    if swipe.tracks[0].data.is_some() || swipe.is_clean() {
        return Err(fail(
            "a failed track 1 came with data, or the swipe counts as clean",
        ));
    }
    let (p2, _) = masked_pan(&swipe, 2)?;
    expect_pan(&p2, 2)?;
    Ok(format!(
        "track 1 decode error is parity (no data, swipe not clean); track 2 reads PAN {p2}"
    ))
}

/// `hid.reversed`: the card swiped backwards. The reader decodes the reversed stripe bits
/// itself and reports forwards, as MagTek's bidirectional readers do.
pub(super) fn hid_reversed(ctx: &mut Ctx<'_>) -> Outcome {
    let (t1, t2) = (track1("101"), track2("101"));
    let bits1 =
        stripe_bits(Track::One, &t1, true).ok_or_else(|| fail("track 1 does not encode"))?;
    let bits2 =
        stripe_bits(Track::Two, &t2, true).ok_or_else(|| fail("track 2 does not encode"))?;
    let tracks = [
        reader_decodes(Track::One, &bits1),
        reader_decodes(Track::Two, &bits2),
        TrackReport::empty(),
    ];
    if tracks[0].status != 0 || tracks[1].status != 0 {
        return Err(fail(format!(
            "the reader could not decode the reversed swipe: {tracks:?}"
        )));
    }
    ctx.step(format!(
        "reader decoded the reversed stripes ({} and {} bits) forwards",
        bits1.len(),
        bits2.len()
    ));
    let forward = clean_report("101");
    let report = magtek_report(&tracks, ENCODE_ISO_ABA);
    if report != forward {
        return Err(fail(
            "the reversed swipe's report differs from a forward swipe's",
        ));
    }
    let swipe =
        swipe_through_hid(ctx, &report)?.map_err(|e| device_fail("wait for the swipe", &e))?;
    expect_clean(&swipe)?;
    let (p1, _) = masked_pan(&swipe, 1)?;
    let (p2, _) = masked_pan(&swipe, 2)?;
    expect_pan(&p1, 1)?;
    expect_pan(&p2, 2)?;
    Ok(format!(
        "reversed swipe reported forwards by the reader; both tracks read, PAN {p2}"
    ))
}

/// `hid.chip_card`: a chip card swiped (service code 201): the lane must say "insert the
/// chip"; after a failed chip attempt the swipe is allowed as fallback.
pub(super) fn hid_chip_card(ctx: &mut Ctx<'_>) -> Outcome {
    let report = clean_report("201");
    let swipe =
        swipe_through_hid(ctx, &report)?.map_err(|e| device_fail("wait for the swipe", &e))?;
    expect_clean(&swipe)?;
    let (p2, sc) = masked_pan(&swipe, 2)?;
    expect_pan(&p2, 2)?;
    let sc = sc.ok_or_else(|| fail("track 2 has no service code"))?;
    if !sc.chip_card() {
        return Err(fail(format!(
            "service code {sc} is not read as a chip card"
        )));
    }
    let first = swipe_verdict(sc, false);
    let fallback = swipe_verdict(sc, true);
    ctx.step(format!(
        "service code {sc}: swipe verdict {first:?}; after a failed chip read {fallback:?}"
    ));
    if first != SwipeVerdict::InsertChip || fallback != SwipeVerdict::FallbackAllowed {
        return Err(fail(format!(
            "service code {sc} gives {first:?} / {fallback:?}, expected InsertChip / FallbackAllowed"
        )));
    }
    Ok(format!(
        "chip card (service code {sc}, PAN {p2}): insert chip; fallback only after a failed chip read"
    ))
}

/// `hid.hidraw`: the good swipe through the hidraw road (`usb:0801:0002?via=hidraw`):
/// usbhid keeps the reader, the driver reads the node class_nodes finds; then the reader
/// is unplugged while the driver waits: `disconnected`.
pub(super) fn hid_hidraw(ctx: &mut Ctx<'_>) -> Outcome {
    let g = magtek_gadget(ctx)?;
    let nodes = class_nodes(&g.usb_dir, "hidraw");
    let uri_text = format!("usb:{MAGTEK_VID:04x}:{MAGTEK_HID_PID:04x}?via=hidraw");
    let (mut msr, _) = open_magtek(&uri_text)?;
    // usbhid keeps the device: the node is still there while the driver reads it.
    if class_nodes(&g.usb_dir, "hidraw") != nodes {
        return Err(fail("the hidraw node changed when the driver opened it"));
    }
    ctx.step(format!(
        "{uri_text} open on {} (usbhid still bound), layout from the kernel's copy of the descriptor",
        nodes
            .first()
            .map_or_else(|| "-".to_string(), |n| n.display().to_string())
    ));
    let report = clean_report("101");
    let mut writer = HidgWriter::open(&g.hidg).map_err(fail)?;
    writer
        .send(&report, Instant::now() + SWIPE_LIMIT)
        .map_err(fail)?;
    let swipe = msr
        .wait_for_swipe(SWIPE_LIMIT)
        .map_err(|e| device_fail("wait for the swipe", &e))?;
    expect_clean(&swipe)?;
    let (p2, _) = masked_pan(&swipe, 2)?;
    expect_pan(&p2, 2)?;
    ctx.step(format!("swipe read through hidraw: PAN {p2}"));
    // Unplugged while the driver waits for the next swipe.
    let udc = g.gadget.dir().join("UDC");
    let unplug = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        std::fs::write(&udc, "\n")
    });
    let t = Instant::now();
    let gone = msr.wait_for_swipe(SWIPE_LIMIT);
    let waited = t.elapsed();
    unplug
        .join()
        .map_err(|_| fail("the unplug thread panicked"))?
        .map_err(|e| fail(format!("unbind: {e}")))?;
    let kind = match &gone {
        Ok(_) => return Err(fail("a swipe came after the reader was unplugged")),
        Err(e) => pos_hal::Fault::kind(e),
    };
    ctx.step(format!(
        "unplugged while waiting: {kind:?} after {} ms",
        waited.as_millis()
    ));
    if kind != pos_hal::FaultKind::Disconnected {
        return Err(fail(format!(
            "the unplugged reader's wait ended {kind:?}, expected disconnected"
        )));
    }
    drop(msr);
    wait_gone(MAGTEK_VID, MAGTEK_HID_PID, GADGET_LIMIT).map_err(|e| fail(e.to_string()))?;
    drop(g);
    Ok(format!(
        "swipe read through {uri_text} (usbhid bound), PAN {p2}; unplugged mid-wait: disconnected"
    ))
}

// ---------------------------------------------------------------------------------------
// The keyboard wedge with a German layout
// ---------------------------------------------------------------------------------------

/// The wedge swipe: a name with a Z and a Y (they swap on QWERTZ) and both `^` separators
/// (a dead key on German keyboards). Card data: never log it.
fn wedge_text() -> String {
    format!("%B{PAN}^ZAYTSEV/YURI^30121010000000000000?;{PAN}=30121010000000000000?")
}

/// The German-layout wedge reader types the swipe while our evdev wedge driver, opened on
/// `evdev:NODE?layout=LAYOUT`, waits for it.
fn wedge_swipe_with(ctx: &Ctx<'_>, layout: &str) -> Result<Result<Swipe, MsrError>, End> {
    require_hid_gadget()?;
    let product = "USB Swipe Reader (rig wedge)";
    let spec = DeviceSpec::new(MAGTEK_VID, MAGTEK_KBD_PID, "Mag-Tek", product);
    let g = hid_gadget(
        ctx,
        "wedge",
        &spec,
        &[
            // A boot keyboard: subclass 1 (boot interface), protocol 1 (keyboard).
            ("protocol", b"1"),
            ("subclass", b"1"),
            ("report_length", b"8"),
            ("report_desc", &BOOT_KEYBOARD_DESCRIPTOR),
        ],
    )?;
    // The event node of this USB device's keyboard (under its sysfs directory).
    let mut node = None;
    if !wait_until(GADGET_LIMIT, || {
        node = class_nodes(&g.usb_dir, "input")
            .into_iter()
            .filter_map(|p| {
                let name = p.file_name()?.to_str()?.to_string();
                name.starts_with("event")
                    .then(|| Path::new("/dev/input").join(name))
            })
            .next();
        node.as_ref().is_some_and(|p| p.exists())
    }) {
        return Err(fail(format!(
            "no input event node for {product:?} within {} ms",
            GADGET_LIMIT.as_millis()
        )));
    }
    let node = node.ok_or_else(|| fail("no input event node"))?;
    let uri_text = format!("evdev:{}?layout={layout}&gap_ms=1000", node.display());
    let uri = DeviceUri::parse(&uri_text).map_err(|e| fail(format!("{uri_text}: {e}")))?;
    let mut msr = pos_magstripe::readers::open_evdev(&uri)
        .map_err(|e| device_fail(&format!("open {uri_text}"), &e))?;
    ctx.step(format!("wedge reader open at {uri_text} (grabbed)"));
    let reports = german_reports(&wedge_text()).map_err(|i| {
        fail(format!(
            "the German reader cannot type character {i} of the swipe"
        ))
    })?;
    let mut writer = HidgWriter::open(&g.hidg).map_err(fail)?;
    // Typed while the driver reads: evdev keeps only a few dozen events per reader.
    let typist = std::thread::spawn(move || -> Result<(usize, Duration), String> {
        let t = Instant::now();
        for r in &reports {
            writer.send(r, Instant::now() + SWIPE_LIMIT)?;
        }
        writer.drain(SWIPE_LIMIT)?;
        Ok((reports.len(), t.elapsed()))
    });
    let result = msr.wait_for_swipe(SWIPE_LIMIT + SWIPE_LIMIT);
    let typed = typist
        .join()
        .map_err(|_| fail("the typist thread panicked"))?
        .map_err(fail)?;
    ctx.step(format!(
        "the reader sent {} keyboard reports (German layout) in {} ms",
        typed.0,
        typed.1.as_millis()
    ));
    drop(msr);
    drop(g);
    Ok(result)
}

/// `hid.wedge_layout`: a wedge reader set to German types a swipe; our driver set to `de`
/// reads it exactly.
pub(super) fn hid_wedge_layout(ctx: &mut Ctx<'_>) -> Outcome {
    let swipe = wedge_swipe_with(ctx, "de")?.map_err(|e| device_fail("wait for the swipe", &e))?;
    expect_clean(&swipe)?;
    let (p1, _) = masked_pan(&swipe, 1)?;
    let (p2, _) = masked_pan(&swipe, 2)?;
    expect_pan(&p1, 1)?;
    expect_pan(&p2, 2)?;
    // The name has the keys QWERTZ swaps: compared, never printed.
    let t1 = swipe.tracks[0]
        .data
        .as_ref()
        .map(|d| d.expose().to_vec())
        .unwrap_or_default();
    let name_ok = std::str::from_utf8(&t1)
        .ok()
        .and_then(|t| Track1Data::parse(t).ok())
        .is_some_and(|t| t.name.surname == "ZAYTSEV" && t.name.first == "YURI");
    if !name_ok {
        return Err(fail("track 1's name does not read as typed (Y/Z swapped?)"));
    }
    Ok(format!(
        "German-layout keystrokes read with layout=de: both tracks, PAN {p2}, name as typed"
    ))
}

/// `hid.wedge_wrong_layout`: the same German keystrokes read with the US layout: a bad read
/// (no track), never a wrong PAN.
pub(super) fn hid_wedge_wrong_layout(ctx: &mut Ctx<'_>) -> Outcome {
    match wedge_swipe_with(ctx, "us")? {
        Ok(swipe) => Err(fail(format!(
            "German keystrokes read as US gave a swipe with tracks {:?}",
            swipe.statuses()
        ))),
        Err(MsrError::BadRead { tracks }) => {
            if tracks.contains(&TrackStatus::Ok) {
                return Err(fail(format!(
                    "a bad read with a track that read: {tracks:?}"
                )));
            }
            ctx.step(format!("bad read, tracks {tracks:?}"));
            Ok(format!(
                "German keystrokes read with layout=us: bad read ({}, {}, {}), no PAN",
                tracks[0].name(),
                tracks[1].name(),
                tracks[2].name()
            ))
        }
        Err(e) => Err(device_fail(
            "German keystrokes read with layout=us: expected a bad read",
            &e,
        )),
    }
}
