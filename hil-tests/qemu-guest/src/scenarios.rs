//! The rig's own cases: what only the QEMU rig can check, against QEMU's USB devices and the
//! host's virtual card, printer and typist, through our real code paths (rusb, serialport
//! over `ftdi_sio`, evdev).
//!
//! Names are `group.case` in groups the hil-tests suite does not use (`usb`, `ccid`, `emv`,
//! `escpos`, `wedge`, `apdu`), so the host can tell them from the suite's cases (sent as
//! `suite.NAME`). Every case reports its steps, ends PASS, FAIL or SKIP with a message,
//! and never panics (a panic would still be caught and reported as a FAIL). No full PAN or
//! track data is ever printed or sent: PANs are masked (first 6, last 4).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use pos_ccid::descriptor::CcidDescriptor;
use pos_ccid::{AnyReader, ReaderConfig};
use pos_emv::EmvError;
use pos_emv::profile_card::Profile;
use pos_hal::{
    ChipReader, CutKind, Device as _, DeviceEvent, Document, Fault, FaultKind, PrintOutcome,
    PrinterConditions, ReceiptPrinter as _, SlotChannel, SlotState, Subscription,
};
use pos_link::DeviceUri;

use crate::bench::{Stats, hex};
use crate::control::Control;
use crate::ctl::{Outcome as Verdict, Verb};
use crate::operator::{REQUEST_TIMEOUT, TEST_SWIPE_PAN, swipe_text};
use crate::options::{Pick, input_event_by_name, usb_tty};

/// QEMU's `usb-ccid` reader.
pub const READER_VID: u16 = 0x08e6;
/// QEMU's `usb-ccid` reader.
pub const READER_PID: u16 = 0x4433;
/// The reader's URI.
pub const READER_URI: &str = "usb:08e6:4433";
/// The USB interface class of smart-card readers (CCID).
pub const USB_CLASS_CCID: u8 = 0x0b;
/// The printer's profile: the one `pos_escpos::sim::SimConfig::default()` uses, which the
/// host's virtual printer runs with.
pub const PRINTER_PROFILE: &str = "epson-tm-t20";
/// The tty QEMU's FTDI adapter becomes.
pub const PRINTER_TTY: &str = "/dev/ttyUSB0";
/// A part of the name of QEMU's USB keyboard (`QEMU QEMU USB Keyboard`).
pub const KEYBOARD_NAME: &str = "USB Keyboard";
/// The card the reader cases insert.
pub const CARD: &str = "mastercard";

/// How long a card-inserted event may take after the request.
const EVENT_LIMIT: Duration = Duration::from_secs(10);
/// How long the FTDI adapter's tty may take to appear after `printer-connect`.
const TTY_LIMIT: Duration = Duration::from_secs(15);
/// How long a printer status change may take to show.
const PRINTER_LIMIT: Duration = Duration::from_secs(10);
/// How long pcscd may take to open its socket.
const PCSCD_LIMIT: Duration = Duration::from_secs(10);
/// Warm-up exchanges before a benchmark's timed ones.
pub const WARM_UP: u32 = 20;

/// The printer's URI for the tty at `path`.
pub fn printer_uri(path: &str) -> String {
    format!("serial:{path}?baud=115200&profile={PRINTER_PROFILE}")
}

/// The PAN the host's card `card` carries (`card-insert` names), when known: a profile's
/// test PAN, or the test PAN of a recorded transcript (see its README).
pub fn expected_pan(card: &str) -> Option<&'static str> {
    match card {
        "transcript:contact-mastercard" => Some("5413330089600044"),
        "transcript:contact-upi" => Some("6210948000000011"),
        other => Profile::from_str(other).ok().map(Profile::pan),
    }
}

/// How a case ends early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// An expectation did not hold.
    Fail(String),
    /// The case cannot run here.
    Skip(String),
}

/// What a case returns: a summary when it passed.
pub type Outcome = Result<String, End>;

fn fail(message: impl Into<String>) -> End {
    End::Fail(message.into())
}

/// A device error in words, with its kind.
fn device_fail<E: Fault + std::fmt::Display>(what: &str, e: &E) -> End {
    End::Fail(format!("{what}: {e} [{}]", e.kind()))
}

/// What a case works with.
pub struct Ctx<'a> {
    control: &'a Control,
    case: &'static str,
    bench: u32,
}

impl<'a> Ctx<'a> {
    /// The context of `case`; `bench` APDUs per benchmark.
    pub fn new(control: &'a Control, case: &'static str, bench: u32) -> Self {
        Ctx {
            control,
            case,
            bench,
        }
    }

    /// Report a step to the host and on the console. No card data in `text`.
    fn step(&self, text: impl AsRef<str>) {
        let text = text.as_ref();
        println!("  {}: {text}", self.case);
        if let Err(e) = self.control.step(self.case, text) {
            eprintln!("rig-guest: {e}");
        }
    }

    /// Ask the host for `verb`; a refusal or no answer fails the case.
    fn ask(&self, verb: &Verb) -> Result<String, End> {
        let t = Instant::now();
        let answer = self
            .control
            .request(verb, REQUEST_TIMEOUT)
            .map_err(End::Fail)?;
        self.step(format!(
            "host did `{}` in {} ms{}",
            short(verb),
            t.elapsed().as_millis(),
            if answer.is_empty() {
                String::new()
            } else {
                format!(": {answer}")
            }
        ));
        Ok(answer)
    }

    /// Ask the host for `verb`; a refusal is only a step (`card-remove` with no card in).
    fn ask_lenient(&self, verb: &Verb) {
        if let Err(e) = self.control.request(verb, REQUEST_TIMEOUT) {
            self.step(format!("(ignored) {e}"));
        }
    }
}

/// The verb without its argument when that is card data (the typed swipe).
fn short(verb: &Verb) -> String {
    verb.redacted()
}

/// A rig case.
#[derive(Clone, Copy)]
pub struct RigCase {
    /// `group.case`.
    pub name: &'static str,
    /// What it checks.
    pub about: &'static str,
    run: fn(&mut Ctx<'_>) -> Outcome,
}

impl std::fmt::Debug for RigCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Every rig case, in the order they run. The benchmarks (`apdu.*`) come last.
pub fn cases() -> Vec<RigCase> {
    macro_rules! c {
        ($name:literal, $about:literal, $f:path) => {
            RigCase {
                name: $name,
                about: $about,
                run: $f,
            }
        };
    }
    vec![
        c!(
            "usb.discovery",
            "rusb finds QEMU's reader 08e6:4433 with a CCID interface and its class descriptor",
            usb_discovery
        ),
        c!(
            "usb.gadget",
            "a USB gadget built in the guest (configfs, dummy_hcd) enumerates and goes on unbind",
            usb_gadget
        ),
        c!(
            "ccid.no_card",
            "an empty reader: slot status without card, power-on fails as card_absent",
            no_card
        ),
        c!(
            "ccid.atr_apdu",
            "insertion event, ATR parses, protocol and parameters, SELECT answered 9000",
            atr_apdu
        ),
        c!(
            "emv.read_profile",
            "a full EMV read of the mastercard profile: the masked PAN matches",
            emv_read_profile
        ),
        c!(
            "emv.read_transcript",
            "a full EMV read of the recorded Mastercard session: the masked PAN matches",
            emv_read_transcript
        ),
        c!(
            "emv.removed_mid_read",
            "the card pulled at the 3rd APDU of a read fails as card_removed, and is seen gone",
            removed_mid_read
        ),
        c!(
            "escpos.ftdi",
            "the printer over QEMU's FTDI adapter: print confirmed, paper out, unplugged",
            escpos_ftdi
        ),
        c!(
            "wedge.swipe",
            "a swipe typed on QEMU's USB keyboard reads through evdev; the masked PAN matches",
            wedge_swipe
        ),
        // USB HID magstripe readers built in the guest (usb_f_hid gadgets on dummy_hcd).
        c!(
            "hid.swipe",
            "a MagTek HID reader gadget (0801:0002) swipe read through usb:0801:0002: both tracks, masked PAN",
            hid_swipe
        ),
        c!(
            "hid.track1_bad",
            "the MagTek reader reports a track 1 decode error: track 1 parity, track 2 still reads",
            hid_track1_bad
        ),
        c!(
            "hid.reversed",
            "a reversed swipe, decoded by the reader and reported forwards: both tracks read",
            hid_reversed
        ),
        c!(
            "hid.chip_card",
            "a chip card (service code 201) swiped on the HID reader: insert chip, fallback after a failed chip read",
            hid_chip_card
        ),
        c!(
            "hid.hidraw",
            "the HID reader through usb:0801:0002?via=hidraw (usbhid bound): swipe read; unplugged mid-wait is disconnected",
            hid_hidraw
        ),
        c!(
            "hid.wedge_layout",
            "a keyboard-wedge gadget typing for the German layout, read through evdev with layout=de",
            hid_wedge_layout
        ),
        c!(
            "hid.wedge_wrong_layout",
            "the same German keystrokes read with layout=us: a bad read, never a wrong PAN",
            hid_wedge_wrong_layout
        ),
        c!(
            "pcsc.insert",
            "through pcsc: (pcscd + libccid): empty reader card_absent, insertion event, ATR, SELECT AID",
            pcsc_insert
        ),
        c!(
            "pcsc.emv_read",
            "a full EMV read of the mastercard profile through pcsc:: the masked PAN matches",
            pcsc_emv_read
        ),
        c!(
            "pcsc.removed_mid_read",
            "through pcsc:, the card pulled before the 3rd APDU of a read: card_removed, event, empty slot",
            pcsc_removed_mid_read
        ),
        c!(
            "pcsc.removed_mid_exchange",
            "through pcsc:, the card pulled instead of answering the 3rd APDU: card_removed (as emv.removed_mid_read)",
            pcsc_removed_mid_exchange
        ),
        c!(
            "pcsc.sale",
            "a sale through the terminal service with the lane's reader pcsc: completes",
            pcsc_sale
        ),
        c!(
            "pcsc.unplug",
            "through pcsc:, the reader unplugged with a card session open: disconnected, with an event",
            pcsc_unplug
        ),
        // usbprn: the USB printer gadget relayed to emupos on the host, both printer roads.
        c!(
            "usbprn.usb_detect",
            "usb: road: the gadget printer's IEEE 1284 device ID picks epson-tm-t20iii; emupos ready; port status ready",
            usb_detect
        ),
        c!(
            "usbprn.usb_print",
            "usb: road: a receipt printed (status-verified) and rendered by emupos with its text",
            usb_print
        ),
        c!(
            "usbprn.usb_paper_out",
            "usb: road: emupos out of paper mid-job: the job fails paper_out, nothing rendered, port status paper empty",
            usb_paper_out
        ),
        c!(
            "usbprn.usb_cover_open",
            "usb: road: emupos's cover open: status cover_open, print refused, port status not selected + error",
            usb_cover_open
        ),
        c!(
            "usbprn.usb_unplug",
            "usb: road: the gadget unbound mid-job: the job and the next status are disconnected",
            usb_unplug
        ),
        c!(
            "usbprn.usblp_detect",
            "usblp: road: the device ID through usblp picks epson-tm-t20iii; emupos ready; port status ready",
            usblp_detect
        ),
        c!(
            "usbprn.usblp_print",
            "usblp: road: a receipt printed (status-verified) and rendered by emupos with its text",
            usblp_print
        ),
        c!(
            "usbprn.usblp_paper_out",
            "usblp: road: emupos out of paper mid-job: the job fails paper_out, nothing rendered, port status paper empty",
            usblp_paper_out
        ),
        c!(
            "usbprn.usblp_cover_open",
            "usblp: road: emupos's cover open: status cover_open, print refused, port status not selected + error",
            usblp_cover_open
        ),
        c!(
            "usbprn.usblp_unplug",
            "usblp: road: the gadget unbound mid-job: the job and the next status are disconnected",
            usblp_unplug
        ),
        // ccidshape: CCID readers of other shapes built in the guest (FunctionFS, GadgetFS) from real readers' descriptors.
        c!(
            "ccidshape.dual",
            "OMNIKEY 5422 shape (contactless if 0, contact if 1): policy picks if 1; EMV read",
            ccidshape_dual
        ),
        c!(
            "ccidshape.dual_removed",
            "OMNIKEY 5422 shape: the card pulled at the 3rd exchange: card_removed, event, empty slot",
            ccidshape_dual_removed
        ),
        c!(
            "ccidshape.dual_unplug",
            "OMNIKEY 5422 shape: the gadget unbound at the 3rd exchange: disconnected",
            ccidshape_dual_unplug
        ),
        c!(
            "ccidshape.small",
            "Elatec TWN4 shape (64-byte messages, extended APDU): chained EMV read within 64 bytes",
            ccidshape_small
        ),
        c!(
            "ccidshape.small_removed",
            "Elatec TWN4 shape: the card pulled at the 3rd exchange: card_removed, event, empty slot",
            ccidshape_small_removed
        ),
        c!(
            "ccidshape.small_unplug",
            "Elatec TWN4 shape: the gadget unbound at the 3rd exchange: disconnected",
            ccidshape_small_unplug
        ),
        c!(
            "ccidshape.autovolt",
            "SCR3310 shape (automatic voltage, TPDU level, T=0 card): policy, EMV read",
            ccidshape_autovolt
        ),
        c!(
            "ccidshape.autovolt_removed",
            "SCR3310 shape: the card pulled at the 3rd exchange: card_removed, event, empty slot",
            ccidshape_autovolt_removed
        ),
        c!(
            "ccidshape.autovolt_unplug",
            "SCR3310 shape: the gadget unbound at the 3rd exchange: disconnected",
            ccidshape_autovolt_unplug
        ),
        c!(
            "ccidshape.vendor",
            "Cherry ST-2xxx shape (class 0xFF interface with a CCID descriptor, via GadgetFS): policy, EMV read",
            ccidshape_vendor
        ),
        c!(
            "ccidshape.vendor_removed",
            "Cherry ST-2xxx shape: the card pulled at the 3rd exchange: card_removed, event, empty slot",
            ccidshape_vendor_removed
        ),
        c!(
            "ccidshape.vendor_unplug",
            "Cherry ST-2xxx shape: the device gone (GadgetFS ep0 closed) at the 3rd exchange: disconnected",
            ccidshape_vendor_unplug
        ),
        c!(
            "apdu.direct",
            "benchmark: SELECT AID round trips through our CCID driver",
            bench_direct
        ),
        c!(
            "apdu.pcsc",
            "benchmark: the same APDU through pcscd and libpcsclite",
            bench_pcsc
        ),
        c!(
            "apdu.pcsc_road",
            "benchmark: the same APDU through our pcsc: road (pos-pcsc over pcscd)",
            bench_pcsc_road
        ),
    ]
}

/// The cases `pick` selects, in run order.
///
/// Errors: a name that is neither a case nor a group, in words.
pub fn select(pick: &Pick) -> Result<Vec<RigCase>, String> {
    let all = cases();
    let names = match pick {
        Pick::All => return Ok(all),
        Pick::Nothing => return Ok(Vec::new()),
        Pick::Some(names) => names,
    };
    let matches =
        |c: &RigCase, o: &str| c.name == o || c.name.split_once('.').is_some_and(|(g, _)| g == o);
    for o in names {
        if !all.iter().any(|c| matches(c, o)) {
            return Err(format!(
                "unknown rig case {o:?} (rig cases: {}; `suite.NAME` for the suite's)",
                all.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    Ok(all
        .into_iter()
        .filter(|c| names.iter().any(|o| matches(c, o)))
        .collect())
}

/// How a case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// PASS, FAIL or SKIP.
    pub verdict: Verdict,
    /// How long it took.
    pub millis: u64,
    /// The summary, or why it failed or was skipped.
    pub text: String,
}

impl CaseResult {
    /// The human line: `PASS ccid.atr_apdu (120 ms): T=1 ...`.
    pub fn line(&self) -> String {
        let v = match self.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        };
        format!("{v} {} ({} ms): {}", self.name, self.millis, self.text)
    }
}

/// Run `case`: its steps and its end go to the host (`STEP`, `CASE`) and to standard
/// output. A panic in the case is caught and is a FAIL.
pub fn run_case(control: &Control, case: &RigCase, bench: u32) -> CaseResult {
    println!("RUN  {}: {}", case.name, case.about);
    let t = Instant::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut ctx = Ctx::new(control, case.name, bench);
        (case.run)(&mut ctx)
    }));
    let (verdict, text) = match result {
        Ok(Ok(summary)) => (Verdict::Pass, summary),
        Ok(Err(End::Fail(why))) => (Verdict::Fail, why),
        Ok(Err(End::Skip(why))) => (Verdict::Skip, why),
        Err(_) => (
            Verdict::Fail,
            "the case panicked (a bug in rig-guest)".into(),
        ),
    };
    let millis = u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX);
    let result = CaseResult {
        name: case.name.to_string(),
        verdict,
        millis,
        text,
    };
    println!("{}", result.line());
    if let Err(e) = control.case(&result.name, result.verdict, millis, &result.text) {
        eprintln!("rig-guest: {e}");
    }
    result
}

mod benchmarks;
mod ccid;
mod ccidshape;
mod emv;
mod escpos;
mod hid;
mod hid_feed;
mod pcsc;
mod steps;
mod usb;
mod usbprn;
mod wedge;

use benchmarks::*;
use ccid::*;
use ccidshape::*;
use emv::*;
use escpos::*;
use hid::*;
use pcsc::*;
pub use steps::*;
pub use usb::*;
use usbprn::*;
use wedge::*;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pos_emv::profile_card::ProfileCard;

    fn sim_reader(options: &str, card: Profile) -> AnyReader {
        let uri = DeviceUri::parse(&format!("sim:ccid?{options}")).unwrap();
        let card: Box<dyn pos_hal::VirtualCard> = Box::new(ProfileCard::new(card));
        pos_ccid::open_sim_with_card(&uri, ReaderConfig::default(), Some(card))
            .unwrap()
            .0
    }

    #[test]
    fn names_are_unique_and_apart_from_the_suite() {
        let all = cases();
        let mut names: Vec<_> = all.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        let suite_groups: Vec<String> = hil_tests::scenarios()
            .iter()
            .filter_map(|s| s.name.split_once('.').map(|(g, _)| g.to_string()))
            .collect();
        for c in &all {
            let (group, _) = c.name.split_once('.').unwrap();
            assert!(!suite_groups.iter().any(|g| g == group), "{}", c.name);
            assert_ne!(group, "suite");
            assert_ne!(group, "rig");
        }
        assert_eq!(select(&Pick::All).unwrap().len(), all.len());
        assert!(select(&Pick::Nothing).unwrap().is_empty());
        let some = select(&Pick::Some(vec!["emv".into(), "usb.discovery".into()])).unwrap();
        assert_eq!(
            some.iter().map(|c| c.name).collect::<Vec<_>>(),
            [
                "usb.discovery",
                "emv.read_profile",
                "emv.read_transcript",
                "emv.removed_mid_read"
            ]
        );
        assert!(
            select(&Pick::Some(vec!["emvv".into()]))
                .unwrap_err()
                .contains("emvv")
        );
    }

    #[test]
    fn the_printer_uri_matches_the_virtual_printer() {
        let uri = DeviceUri::parse(&printer_uri(PRINTER_TTY)).unwrap();
        let profile = pos_escpos::profile_for(&uri, "generic-80").unwrap();
        let sim = pos_escpos::sim::SimConfig::default();
        assert_eq!(profile.name, sim.profile.name);
        assert!(DeviceUri::parse(READER_URI).is_ok());
    }

    #[test]
    fn expected_pans() {
        assert_eq!(expected_pan("mastercard"), Some(Profile::Mastercard.pan()));
        assert_eq!(
            expected_pan("transcript:contact-mastercard"),
            Some("5413330089600044")
        );
        assert_eq!(expected_pan("transcript:nope"), None);
    }

    #[test]
    fn the_emv_read_gets_the_masked_pan_over_the_ccid_driver() {
        // The profile cards answer to reset for T=0: the APDU-level and T=0 TPDU readers.
        for level in ["apdu", "t0"] {
            let mut r = sim_reader(&format!("level={level}"), Profile::Mastercard);
            r.power_on(0).unwrap();
            let s = emv_read(&mut r, 0).unwrap();
            assert_eq!(
                s.masked_pan.as_deref(),
                Some(pos_hal::mask_pan(Profile::Mastercard.pan()).as_str()),
                "{level}"
            );
            assert!(s.records > 0 && s.has_expiry);
            assert!(!format!("{s:?}").contains(Profile::Mastercard.pan()));
        }
    }

    #[test]
    fn a_card_pulled_mid_read_is_classified_card_removed() {
        let mut r = sim_reader("level=apdu&remove_at=3", Profile::Mastercard);
        r.power_on(0).unwrap();
        let e = emv_read(&mut r, 0).unwrap_err();
        assert_eq!(e.kind(), FaultKind::CardRemoved, "{e}");
        assert!(!card_present(&mut r).unwrap());
    }

    #[test]
    fn select_aid_is_answered_9000_by_the_profile() {
        let mut r = sim_reader("level=t0", Profile::Mastercard);
        r.power_on(0).unwrap();
        let aid = card_aid().unwrap();
        let cmd = select_aid(&aid);
        assert_eq!(cmd.len(), aid.len() + 6);
        let resp = r.transmit(0, &cmd).unwrap();
        // T=0 through a TPDU reader: 61xx, the FCI waits for GET RESPONSE.
        assert!(sw_of(&resp).is_some_and(sw_ok), "{resp:02x?}");
        assert!(sw_ok(0x9000) && sw_ok(0x612F) && !sw_ok(0x6A82));
        // The absent-card classification the no_card case expects.
        let uri = DeviceUri::parse("sim:ccid?card=none").unwrap();
        let mut empty = pos_ccid::open(&uri, ReaderConfig::default()).unwrap();
        assert_eq!(empty.power_on(0).unwrap_err().kind(), FaultKind::CardAbsent);
    }

    #[test]
    fn descriptor_lines() {
        let lines = describe_ccid(&CcidDescriptor::example_tpdu_reader());
        assert_eq!(lines.len(), 6);
        assert!(lines.iter().any(|l| l.contains("max message length")));
    }

    #[test]
    fn a_case_reports_its_steps_and_end_and_a_panic_is_a_fail() {
        fn steps_then_skip(ctx: &mut Ctx<'_>) -> Outcome {
            ctx.step("one");
            Err(End::Skip("not here".into()))
        }
        fn panics(_: &mut Ctx<'_>) -> Outcome {
            panic!("bug")
        }
        let (control, mut host) = crate::control::tests::pair();
        let skip = RigCase {
            name: "t.skip",
            about: "",
            run: steps_then_skip,
        };
        let r = run_case(&control, &skip, 1);
        assert_eq!((r.verdict, r.text.as_str()), (Verdict::Skip, "not here"));
        assert_eq!(host.read_line(), "STEP t.skip one");
        assert!(host.read_line().starts_with("CASE t.skip SKIP "));
        let bad = RigCase {
            name: "t.panic",
            about: "",
            run: panics,
        };
        let r = run_case(&control, &bad, 1);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(host.read_line().starts_with("CASE t.panic FAIL "));
    }

    #[test]
    fn results_read_as_lines() {
        let r = CaseResult {
            name: "ccid.no_card".into(),
            verdict: Verdict::Skip,
            millis: 3,
            text: "why".into(),
        };
        assert_eq!(r.line(), "SKIP ccid.no_card (3 ms): why");
    }
}
