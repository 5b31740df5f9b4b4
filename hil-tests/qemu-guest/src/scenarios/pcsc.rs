//! Scenarios: the reader cases through our `pcsc:` road (pos-pcsc over pcscd + libccid),
//! run by the dynamic helper `pcsc-road` (see [`crate::road`]) while pcscd owns the reader.
//! Each case starts pcscd and stops it at its end, so the direct road's cases find the
//! reader free.

use std::io::{BufRead, BufReader, Write};
use std::sync::mpsc;

use super::*;
use crate::road::RoadLine;

/// Where the rig's image puts the helper.
pub(super) const PCSC_ROAD: &str = "/bin/pcsc-road";

/// The longest a helper case may run (it waits 10 s at most for each event).
const ROAD_LIMIT: Duration = Duration::from_secs(90);

/// Start pcscd and wait for its socket.
pub(super) fn start_pcscd(ctx: &Ctx<'_>) -> Result<Reaped, End> {
    if !Path::new(PCSCD).exists() {
        return Err(End::Skip(format!("{PCSCD} is not in the guest image")));
    }
    let _ = std::fs::remove_file(PCSCD_SOCKET);
    let started = Instant::now();
    let pcscd = Command::new(PCSCD)
        .arg("--foreground")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(format!("cannot start {PCSCD}: {e}")))?;
    let mut pcscd = Reaped(pcscd, "pcscd");
    loop {
        if Path::new(PCSCD_SOCKET).exists() {
            break;
        }
        if let Ok(Some(status)) = pcscd.0.try_wait() {
            return Err(fail(format!(
                "pcscd exited before opening its socket: {status}"
            )));
        }
        if started.elapsed() >= PCSCD_LIMIT {
            return Err(fail(format!(
                "no {PCSCD_SOCKET} within {} s of starting pcscd",
                PCSCD_LIMIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ctx.step(format!(
        "pcscd up after {} ms",
        started.elapsed().as_millis()
    ));
    Ok(pcscd)
}

/// What a helper run gave.
pub(super) struct RoadRun {
    /// The summary when it passed.
    pub(super) summary: String,
    /// Its `PCSC-BENCH` line, if it printed one.
    pub(super) bench: Option<String>,
}

/// Run `pcsc-road ARGS` with pcscd up: its steps become the case's, each `READY` is
/// answered by `on_ready` (the host's action) then `GO`.
pub(super) fn run_road(
    ctx: &Ctx<'_>,
    args: &[&str],
    on_ready: &mut dyn FnMut(&Ctx<'_>) -> Result<(), End>,
) -> Result<RoadRun, End> {
    if !Path::new(PCSC_ROAD).exists() {
        return Err(End::Skip(format!(
            "{PCSC_ROAD} is not in the guest image (built by run.sh with feature pcsc)"
        )));
    }
    let pcscd = start_pcscd(ctx)?;
    let child = Command::new(PCSC_ROAD)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot start {PCSC_ROAD}: {e}")))?;
    let mut helper = Reaped(child, "pcsc-road");
    let mut stdin = helper.0.stdin.take();
    let (tx, rx) = mpsc::channel::<String>();
    if let Some(out) = helper.0.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let (etx, erx) = mpsc::channel::<String>();
    if let Some(err) = helper.0.stderr.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = etx.send(line);
            }
        });
    }
    let t = Instant::now();
    let mut bench = None;
    let result = loop {
        let left = ROAD_LIMIT.saturating_sub(t.elapsed());
        if left.is_zero() {
            break Err(fail(format!(
                "pcsc-road did not finish within {} s",
                ROAD_LIMIT.as_secs()
            )));
        }
        let line = match rx.recv_timeout(left) {
            Ok(l) => l,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Err(fail("pcsc-road ended without a RESULT line"));
            }
        };
        match RoadLine::parse(&line) {
            RoadLine::Step(s) => ctx.step(format!("pcsc: {s}")),
            RoadLine::Ready => {
                let acted = on_ready(ctx);
                let answer = match &acted {
                    Ok(()) => "GO".to_string(),
                    Err(_) => "ABORT".to_string(),
                };
                if let Some(w) = stdin.as_mut() {
                    let _ = writeln!(w, "{answer}");
                    let _ = w.flush();
                }
                if let Err(e) = acted {
                    break Err(e);
                }
            }
            RoadLine::Bench(b) => bench = Some(b),
            RoadLine::Result(Verdict::Pass, text) => {
                break Ok(RoadRun {
                    summary: text,
                    bench: bench.take(),
                });
            }
            RoadLine::Result(Verdict::Skip, text) => break Err(End::Skip(text)),
            RoadLine::Result(Verdict::Fail, text) => break Err(fail(text)),
            RoadLine::Other(_) => {}
        }
    };
    drop(stdin);
    for line in erx.try_iter().filter(|l| !l.trim().is_empty()).take(10) {
        ctx.step(format!("pcsc-road: {line}"));
    }
    let t = Instant::now();
    drop(helper);
    let helper_ms = t.elapsed().as_millis();
    drop(pcscd);
    if t.elapsed() > Duration::from_secs(1) {
        ctx.step(format!(
            "pcsc-road ended {helper_ms} ms after its result, pcscd {} ms after",
            t.elapsed().as_millis()
        ));
    }
    result
}

/// Nothing to do when the helper is ready.
fn no_action(_: &Ctx<'_>) -> Result<(), End> {
    Ok(())
}

pub(super) fn pcsc_insert(ctx: &mut Ctx<'_>) -> Outcome {
    ctx.ask_lenient(&Verb::CardRemove);
    let run = run_road(ctx, &["insert"], &mut |ctx| {
        ctx.ask(&Verb::CardInsert(CARD.into())).map(|_| ())
    })?;
    Ok(run.summary)
}

pub(super) fn pcsc_emv_read(ctx: &mut Ctx<'_>) -> Outcome {
    let expected = expected_pan(CARD).ok_or_else(|| fail("no expected PAN"))?;
    let expected = pos_hal::mask_pan(expected);
    fresh_card(ctx, CARD)?;
    let run = run_road(ctx, &["emv-read", &expected], &mut no_action)?;
    card_stats(ctx);
    Ok(run.summary)
}

pub(super) fn pcsc_removed_mid_read(ctx: &mut Ctx<'_>) -> Outcome {
    fresh_card(ctx, CARD)?;
    let run = run_road(ctx, &["removed-mid-read"], &mut |ctx| {
        ctx.ask(&Verb::CardRemove).map(|_| ())
    })?;
    card_stats(ctx);
    Ok(run.summary)
}

pub(super) fn pcsc_removed_mid_exchange(ctx: &mut Ctx<'_>) -> Outcome {
    fresh_card(ctx, CARD)?;
    let run = run_road(ctx, &["removed-mid-exchange"], &mut |ctx| {
        ctx.ask(&Verb::CardRemoveOnApdu(3)).map(|_| ())
    });
    card_stats(ctx);
    Ok(run?.summary)
}

pub(super) fn pcsc_sale(ctx: &mut Ctx<'_>) -> Outcome {
    fresh_card(ctx, CARD)?;
    let run = run_road(ctx, &["sale"], &mut no_action)?;
    Ok(run.summary)
}

/// udevd's control socket: pcscd hears of USB readers coming and going through udev.
const UDEV_CONTROL: &str = "/run/udev/control";

pub(super) fn pcsc_unplug(ctx: &mut Ctx<'_>) -> Outcome {
    if !Path::new(UDEV_CONTROL).exists() {
        // Measured in this guest: pcscd keeps listing the unplugged reader and reports the
        // unplug as a card removal, so the road can only say card_removed; unplugging here
        // would only cost the later cases a re-plugged reader.
        return Err(End::Skip(format!(
            "no udevd in this guest ({UDEV_CONTROL} absent): pcscd never hears of the unplug \
             and reports it as a card removal; with udev it drops the reader and our road says \
             disconnected with an event (pos-pcsc's unit tests)"
        )));
    }
    fresh_card(ctx, CARD)?;
    let result = run_road(ctx, &["unplug"], &mut |ctx| {
        ctx.ask(&Verb::ReaderUnplug).map(|_| ())
    });
    // Back in for the cases that follow, whatever happened, and enumerated again.
    ctx.ask_lenient(&Verb::ReaderPlug);
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        if usb_reader_present() {
            ctx.step(format!(
                "reader enumerated again after {} ms",
                t.elapsed().as_millis()
            ));
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(result?.summary)
}

/// Whether QEMU's reader is on the guest's USB bus (sysfs).
fn usb_reader_present() -> bool {
    let Ok(dir) = std::fs::read_dir("/sys/bus/usb/devices") else {
        return false;
    };
    dir.flatten().any(|d| {
        std::fs::read_to_string(d.path().join("idVendor"))
            .is_ok_and(|v| v.trim() == format!("{READER_VID:04x}"))
    })
}

pub(super) fn bench_pcsc_road(ctx: &mut Ctx<'_>) -> Outcome {
    fresh_card(ctx, CARD)?;
    let apdu = hex(&select_aid(&card_aid()?)).replace(' ', "");
    let before = card_apdus(ctx);
    let run = run_road(
        ctx,
        &["bench", &ctx.bench.to_string(), &apdu],
        &mut no_action,
    )?;
    let line = run
        .bench
        .ok_or_else(|| fail("pcsc-road printed no PCSC-BENCH line"))?;
    let stats = Stats::parse_pcsc_output(&line).map_err(End::Fail)?;
    exchanges_per_transmit(ctx, before, WARM_UP + ctx.bench);
    ctx.step(stats.describe());
    ctx.control
        .bench("apdu.pcsc_road", &stats)
        .map_err(End::Fail)?;
    Ok(stats.describe())
}
