//! Scenarios: benchmarks.

use super::*;

pub(super) fn bench_direct(ctx: &mut Ctx<'_>) -> Outcome {
    fresh_card(ctx, CARD)?;
    let mut reader = open_reader(ctx)?;
    wait_presence(&mut reader, true, Duration::from_secs(5))?;
    reader
        .power_on(0)
        .map_err(|e| device_fail("power on", &e))?;
    let command = select_aid(&card_aid()?);
    ctx.step(format!(
        "APDU {} x ({WARM_UP} warm-up + {}), T={}",
        hex(&command),
        ctx.bench,
        reader.protocol(0).map_or("?".into(), |p| p.to_string())
    ));
    let mut samples = Vec::with_capacity(usize::try_from(ctx.bench).unwrap_or(0));
    let before = card_apdus(ctx);
    let mut last = Vec::new();
    for i in 0..(WARM_UP + ctx.bench) {
        let t = Instant::now();
        let resp = reader
            .transmit(0, &command)
            .map_err(|e| device_fail(&format!("exchange {}", i + 1), &e))?;
        let took = t.elapsed();
        if !sw_of(&resp).is_some_and(sw_ok) {
            return Err(fail(format!(
                "exchange {}: answered {}, not 9000 or 61xx",
                i + 1,
                sw_of(&resp).map_or("no status words".into(), |sw| format!("{sw:04X}"))
            )));
        }
        if i >= WARM_UP {
            samples.push(took);
        }
        last = resp;
    }
    ctx.step(format!(
        "last answer: {} bytes, SW {}",
        last.len(),
        sw_of(&last).map_or("none".into(), |sw| format!("{sw:04X}"))
    ));
    exchanges_per_transmit(ctx, before, WARM_UP + ctx.bench);
    let _ = reader.power_off(0);
    let stats = Stats::from_samples(&samples).ok_or_else(|| fail("no samples"))?;
    ctx.step(stats.describe());
    ctx.control
        .bench("apdu.direct", &stats)
        .map_err(End::Fail)?;
    Ok(stats.describe())
}

/// Where the rig's image puts pcscd and the comparison client.
pub(super) const PCSCD: &str = "/usr/sbin/pcscd";
pub(super) const PCSC_BENCH: &str = "/bin/pcsc-bench";
pub(super) const PCSCD_SOCKET: &str = "/run/pcscd/pcscd.comm";

/// A child process that is killed when dropped.
pub(super) struct Reaped(pub(super) Child, pub(super) &'static str);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.0.try_wait() {
            return;
        }
        if let Ok(pid) = libc::pid_t::try_from(self.0.id()) {
            // SAFETY: kill(2) with the pid of our own child, not yet reaped (try_wait above
            // saw it running), so the pid cannot have been reused.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("rig-guest: {} did not stop on SIGTERM: killing it", self.1);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(super) fn bench_pcsc(ctx: &mut Ctx<'_>) -> Outcome {
    for path in [PCSCD, PCSC_BENCH] {
        if !Path::new(path).exists() {
            return Err(End::Skip(format!(
                "{path} is not in the guest image (the pcsc-lite comparison needs pcscd and \
                 pcsc-bench)"
            )));
        }
    }
    // pcscd must own the reader: none of our cases holds it now (each closes its own).
    fresh_card(ctx, CARD)?;
    let pcscd = super::pcsc::start_pcscd(ctx)?;
    let apdu = hex(&select_aid(&card_aid()?));
    let before = card_apdus(ctx);
    let child = Command::new(PCSC_BENCH)
        .arg(ctx.bench.to_string())
        .arg(&apdu)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot start {PCSC_BENCH}: {e}")))?;
    // pcsc-bench waits up to 10 s for the card, then runs the exchanges.
    let limit = Duration::from_secs(40) + Duration::from_millis(50) * (ctx.bench + WARM_UP);
    let mut bench = Reaped(child, "pcsc-bench");
    let t = Instant::now();
    let status = loop {
        match bench.0.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if t.elapsed() >= limit => {
                return Err(fail(format!(
                    "pcsc-bench did not finish within {} s",
                    limit.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(fail(format!("waiting for pcsc-bench: {e}"))),
        }
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = bench.0.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut s, &mut out);
    }
    if let Some(mut s) = bench.0.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut s, &mut err);
    }
    for line in err.lines().filter(|l| !l.trim().is_empty()).take(10) {
        ctx.step(format!("pcsc-bench: {line}"));
    }
    if !status.success() {
        return Err(fail(format!(
            "pcsc-bench failed ({status}): {}",
            err.lines().last().unwrap_or("no message")
        )));
    }
    let stats = Stats::parse_pcsc_output(&out).map_err(End::Fail)?;
    drop(pcscd);
    exchanges_per_transmit(ctx, before, WARM_UP + ctx.bench);
    ctx.step(stats.describe());
    ctx.control.bench("apdu.pcsc", &stats).map_err(End::Fail)?;
    Ok(stats.describe())
}
