//! Scenarios: ccidshape. CCID readers of real readers' shapes, built in the guest with
//! FunctionFS ([`crate::ffs_ccid`]), our virtual card behind them, opened by our driver as
//! `usb:VID:PID` through the guest's own USB stack (dummy_hcd, usbfs, libusb).

use super::*;
use crate::ffs_ccid::{FfsError, FfsReader, Shape, shape};
use pos_ccid::message::PowerSelect;
use pos_ccid::sim::SimFaults;
use pos_emv::profile_card::ProfileCard;

/// The modules a FunctionFS reader needs.
const MODULES: &[&str] = &["libcomposite", "dummy_hcd", "usb_f_fs"];

/// What a shape's policy must say (as `posctl reader info` prints it).
struct Expect {
    interface: u8,
    level: pos_ccid::descriptor::ExchangeLevel,
    first_voltage: PowerSelect,
}

fn expect(name: &str) -> Option<Expect> {
    use pos_ccid::descriptor::ExchangeLevel as L;
    Some(match name {
        // Contact slot is interface 1; dwFeatures 0x000407B8: extended APDU, 0x08 automatic
        // voltage.
        "dual" => Expect {
            interface: 1,
            level: L::ExtendedApdu,
            first_voltage: PowerSelect::Automatic,
        },
        // dwFeatures 0x000404B2: extended APDU, no 0x08: 5 V first.
        "small" => Expect {
            interface: 0,
            level: L::ExtendedApdu,
            first_voltage: PowerSelect::V5,
        },
        // dwFeatures 0x000100BA: TPDU, 0x08 automatic voltage.
        "autovolt" | "vendor" => Expect {
            interface: 0,
            level: L::Tpdu,
            first_voltage: PowerSelect::Automatic,
        },
        _ => return None,
    })
}

fn our_card() -> Box<dyn pos_hal::VirtualCard> {
    Box::new(ProfileCard::new(Profile::Mastercard))
}

/// Build the shape's reader with our mastercard card in its contact slot: with FunctionFS;
/// for a vendor-class shape, FunctionFS is tried first (the kernel refuses it, a step says
/// so) and the reader is built with GadgetFS instead.
fn start(ctx: &Ctx<'_>, name: &str) -> Result<(Shape, FfsReader), End> {
    let s = shape(name).ok_or_else(|| fail(format!("no reader shape {name:?}")))?;
    let vendor = s.interfaces.iter().any(|i| i.class != USB_CLASS_CCID);
    require_modules(MODULES)?;
    if vendor {
        require_modules(&["gadgetfs"])?;
    }
    ctx.step(format!(
        "{}: {:04x}:{:04x} fw {:x}.{:02x}, {} interface(s), from libccid readers/{}",
        s.title,
        s.vid,
        s.pid,
        s.bcd_device >> 8,
        s.bcd_device & 0xFF,
        s.interfaces.len(),
        s.dump
    ));
    let t = Instant::now();
    let reader = match FfsReader::start(&s, our_card(), gadget_limit()) {
        Ok(r) => r,
        Err(FfsError::Refused(why)) if vendor => {
            ctx.step(format!(
                "FunctionFS refuses the descriptors ({why}): it takes a class descriptor (0x21) \
                 only under a HID or CCID interface (f_fs.c ffs_do_single_desc); built with \
                 GadgetFS instead"
            ));
            FfsReader::start_gadgetfs(&s, our_card(), gadget_limit())
                .map_err(|e| fail(format!("the GadgetFS reader: {e}")))?
        }
        Err(other) => return Err(fail(format!("the FunctionFS reader: {other}"))),
    };
    ctx.step(format!(
        "{} reader on {}, enumerated in {} ms",
        if vendor { "GadgetFS" } else { "FunctionFS" },
        reader.connection(),
        t.elapsed().as_millis()
    ));
    Ok((s, reader))
}

fn require_modules(names: &[&str]) -> Result<(), End> {
    crate::gadget::require_modules(names).map_err(End::Skip)
}

fn gadget_limit() -> Duration {
    super::usb::GADGET_LIMIT
}

/// Open `usb:VID:PID` with our driver and wait for the card.
fn open(ctx: &Ctx<'_>, s: &Shape) -> Result<AnyReader, End> {
    let uri_text = s.uri();
    let uri = DeviceUri::parse(&uri_text).map_err(|e| fail(format!("{uri_text}: {e}")))?;
    let t = Instant::now();
    let mut reader = loop {
        match pos_ccid::open(&uri, ReaderConfig::default()) {
            Ok(r) => break r,
            // usbfs nodes may lag the sysfs device a little.
            Err(e) if t.elapsed() < Duration::from_secs(3) => {
                log::debug!("{uri_text}: {e}; retrying");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(device_fail(&format!("open {uri_text}"), &e)),
        }
    };
    ctx.step(format!(
        "{uri_text} open: {} slot(s), capabilities {:?}",
        reader.slot_count(),
        reader.capabilities()
    ));
    wait_presence(&mut reader, true, Duration::from_secs(5))?;
    Ok(reader)
}

/// The policy as `posctl reader info` derives and prints it (the same library calls:
/// `interface_choice`, `policy` after power-on), as steps; the key fields checked.
fn check_policy(ctx: &Ctx<'_>, name: &str, reader: &AnyReader) -> Result<String, End> {
    let want = expect(name).ok_or_else(|| fail(format!("no expectation for {name}")))?;
    let choice = reader
        .interface_choice()
        .ok_or_else(|| fail("the USB reader reports no interface choice"))?;
    ctx.step(format!(
        "interface: {} because {}",
        choice.number, choice.reason
    ));
    let policy = reader.policy(0);
    if let Some(why) = &policy.refused {
        return Err(fail(format!("the policy refuses the reader: {why}")));
    }
    for (field, value, reason) in policy.rows() {
        ctx.step(format!("{field}: {value} (because {reason})"));
    }
    if choice.number != want.interface {
        return Err(fail(format!(
            "the driver chose interface {}, expected {}",
            choice.number, want.interface
        )));
    }
    if policy.exchange_level.value != want.level {
        return Err(fail(format!(
            "exchange level {}, expected {}",
            policy.exchange_level.value.name(),
            want.level.name()
        )));
    }
    let first = policy.voltages.value.first().copied();
    if first != Some(want.first_voltage) {
        return Err(fail(format!(
            "first voltage {:?}, expected {}",
            first.map(pos_ccid::policy::power_name),
            pos_ccid::policy::power_name(want.first_voltage)
        )));
    }
    Ok(format!(
        "interface {}, {} level, voltage {}, max message {}",
        choice.number,
        policy.exchange_level.value.name(),
        pos_ccid::policy::power_name(want.first_voltage),
        policy.max_message_length.value
    ))
}

/// `ccidshape.NAME`: open, the policy, a full EMV read (masked PAN), and the messages kept
/// within the reader's dwMaxCCIDMessageLength.
fn shape_read(ctx: &mut Ctx<'_>, name: &str) -> Outcome {
    let (s, ffs) = start(ctx, name)?;
    let mut reader = open(ctx, &s)?;
    let atr = reader
        .power_on(0)
        .map_err(|e| device_fail("power on", &e))?;
    ctx.step(format!("ATR {}", atr.to_hex()));
    let policy = check_policy(ctx, name, &reader)?;
    let t = Instant::now();
    let read = emv_read(&mut reader, 0);
    let took = t.elapsed();
    let read = read.map_err(|e| {
        fail(format!(
            "the EMV read failed after {} ms: {e} [{}]",
            took.as_millis(),
            e.kind()
        ))
    })?;
    // A command with 200 data bytes: more than a 64-byte message holds, so the small
    // shape's driver chains it (wLevelParameter 1, 3, 2) and the function puts it together.
    let long = long_command();
    let answer = reader
        .transmit(0, &long)
        .map_err(|e| device_fail("a 206-byte command", &e))?;
    ctx.step(format!(
        "a {}-byte command answered SW {:04X}",
        long.len(),
        sw_of(&answer).unwrap_or(0)
    ));
    if sw_of(&answer).is_none() {
        return Err(fail("the 206-byte command got no status word"));
    }
    let _ = reader.power_off(0);
    let expected = pos_hal::mask_pan(Profile::Mastercard.pan());
    let pan = read.masked_pan.clone().unwrap_or_else(|| "(none)".into());
    let (xfr, class) = ffs.counts();
    ctx.step(format!(
        "EMV read: {} records in {} ms, PAN {pan}; the reader got {xfr} XfrBlocks, {class} control request(s)",
        read.records,
        took.as_millis()
    ));
    if read.masked_pan.as_deref() != Some(expected.as_str()) {
        return Err(fail(format!("PAN reads {pan}, expected {expected}")));
    }
    // What the function received, by its own decoding: no message over the reader's
    // maximum, none refused for its length; chained messages counted.
    let max = s
        .contact()
        .map(|i| i.model.descriptor.max_message_length)
        .unwrap_or(0);
    let seen = ffs.card_slot().map(|h| h.requests()).unwrap_or_default();
    let longest = seen.iter().map(|r| r.length).max().unwrap_or(0);
    let summaries = ffs.request_summaries();
    let chained = summaries
        .iter()
        .filter(|l| l.contains("wLevelParameter"))
        .count();
    let chains_begun = summaries
        .iter()
        .filter(|l| l.contains("wLevelParameter 0x0001"))
        .count();
    ctx.step(format!(
        "{} messages received, longest {longest} bytes (max {max}), {chained} chained ({chains_begun} command chain(s) begun)",
        seen.len()
    ));
    if longest > max as usize || seen.iter().any(|r| r.error == Some(1)) {
        return Err(fail(format!(
            "a message of {longest} bytes went to a reader whose maximum is {max}"
        )));
    }
    drop(reader);
    if name == "small" && (chained == 0 || chains_begun == 0) {
        return Err(fail(
            "64-byte messages, yet the long command or the responses were not chained (wLevelParameter)",
        ));
    }
    Ok(format!(
        "{}: {policy}; EMV read {} records, PAN {pan}, longest message {longest}/{max}",
        s.title, read.records
    ))
}

/// The shape `name` built and opened, the card powered, and a fresh subscription to the
/// reader's events (nothing pending in it).
fn powered_and_listening(
    ctx: &Ctx<'_>,
    name: &str,
) -> Result<(Shape, FfsReader, AnyReader, Subscription), End> {
    let (s, ffs) = start(ctx, name)?;
    let mut reader = open(ctx, &s)?;
    reader
        .power_on(0)
        .map_err(|e| device_fail("power on", &e))?;
    let events = reader
        .subscribe()
        .map_err(|e| device_fail("subscribe", &e))?;
    events.drain();
    Ok((s, ffs, reader, events))
}

/// `ccidshape.NAME_removed`: the card pulled at the 3rd exchange of a read: card_removed,
/// a card-removed event (the function's NotifySlotChange), an empty slot.
fn shape_removed(ctx: &mut Ctx<'_>, name: &str) -> Outcome {
    let (s, ffs, mut reader, events) = powered_and_listening(ctx, name)?;
    let handle = ffs
        .card_slot()
        .ok_or_else(|| fail("the shape has no card slot"))?;
    handle.set_faults(SimFaults {
        remove_at_exchange: Some(handle.exchanges() + 3),
        ..SimFaults::default()
    });
    let kind = read_fails(ctx, &mut reader, "card")?;
    let event = wait_event(&events, Instant::now() + Duration::from_secs(5), &|e| {
        matches!(e, DeviceEvent::CardRemoved { slot: 0 })
    });
    let state = reader
        .slot_status(0)
        .map_err(|e| device_fail("slot status after the pull", &e))?;
    ctx.step(format!("slot 0 after the pull: {state:?}"));
    if kind != FaultKind::CardRemoved {
        return Err(fail(format!("classified {kind}, not card_removed")));
    }
    if let Err(others) = event {
        return Err(fail(format!(
            "no card_removed event within 5 s (seen: {others:?})"
        )));
    }
    if state.contains(SlotState::CARD_PRESENT) {
        return Err(fail("the slot still reports a card"));
    }
    Ok(format!(
        "{}: card_removed, with the event and an empty slot",
        s.title
    ))
}

/// `ccidshape.NAME_unplug`: the gadget unbound instead of answering the 3rd exchange of a
/// read: the read fails `disconnected` and the device is gone.
fn shape_unplug(ctx: &mut Ctx<'_>, name: &str) -> Outcome {
    let (s, ffs, mut reader, events) = powered_and_listening(ctx, name)?;
    ffs.unplug_at_exchange(3);
    let kind = read_fails(ctx, &mut reader, "reader")?;
    crate::gadget::wait_gone(s.vid, s.pid, gadget_limit()).map_err(|e| fail(e.to_string()))?;
    match wait_event(&events, Instant::now() + Duration::from_secs(3), &|e| {
        matches!(e, DeviceEvent::Disconnected { .. })
    }) {
        Ok(_) => ctx.step("disconnected event seen"),
        Err(others) => ctx.step(format!("no disconnected event (seen: {others:?})")),
    }
    if kind != FaultKind::Disconnected {
        return Err(fail(format!("classified {kind}, not disconnected")));
    }
    Ok(format!(
        "{}: unplugged mid-read, classified disconnected; device gone",
        s.title
    ))
}

/// An EMV read that must fail because the `what` (card, reader) goes at exchange 3: the
/// error's kind, with the time it took as a step.
fn read_fails(ctx: &Ctx<'_>, reader: &mut AnyReader, what: &str) -> Result<FaultKind, End> {
    let t = Instant::now();
    match emv_read(reader, 0) {
        Ok(r) => Err(fail(format!(
            "the read completed ({} records) although the {what} went at exchange 3",
            r.records
        ))),
        Err(e) => {
            ctx.step(format!(
                "the read failed after {} ms: {e} [{}]",
                t.elapsed().as_millis(),
                e.kind()
            ));
            Ok(e.kind())
        }
    }
}

pub(super) fn ccidshape_vendor(ctx: &mut Ctx<'_>) -> Outcome {
    shape_read(ctx, "vendor")
}
pub(super) fn ccidshape_vendor_removed(ctx: &mut Ctx<'_>) -> Outcome {
    shape_removed(ctx, "vendor")
}
pub(super) fn ccidshape_vendor_unplug(ctx: &mut Ctx<'_>) -> Outcome {
    shape_unplug(ctx, "vendor")
}
pub(super) fn ccidshape_dual(ctx: &mut Ctx<'_>) -> Outcome {
    shape_read(ctx, "dual")
}
pub(super) fn ccidshape_dual_removed(ctx: &mut Ctx<'_>) -> Outcome {
    shape_removed(ctx, "dual")
}
pub(super) fn ccidshape_dual_unplug(ctx: &mut Ctx<'_>) -> Outcome {
    shape_unplug(ctx, "dual")
}
pub(super) fn ccidshape_small(ctx: &mut Ctx<'_>) -> Outcome {
    shape_read(ctx, "small")
}
pub(super) fn ccidshape_small_removed(ctx: &mut Ctx<'_>) -> Outcome {
    shape_removed(ctx, "small")
}
pub(super) fn ccidshape_small_unplug(ctx: &mut Ctx<'_>) -> Outcome {
    shape_unplug(ctx, "small")
}
pub(super) fn ccidshape_autovolt(ctx: &mut Ctx<'_>) -> Outcome {
    shape_read(ctx, "autovolt")
}
pub(super) fn ccidshape_autovolt_removed(ctx: &mut Ctx<'_>) -> Outcome {
    shape_removed(ctx, "autovolt")
}
pub(super) fn ccidshape_autovolt_unplug(ctx: &mut Ctx<'_>) -> Outcome {
    shape_unplug(ctx, "autovolt")
}
