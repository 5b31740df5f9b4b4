//! Crash tests: `posctl sale` killed at every journal edge, at every injectable step and at
//! random moments, then `posctl recover`; after each run the journal must agree with the
//! acquirer's ledger (nothing charged without a completed sale, no completed sale without a
//! charge), nothing may be left in flight, and no file may hold the full test PAN.
//!
//! A plain `fn main()` (`harness = false`): the fake host lives in this process, so its
//! ledger survives the deaths of the posctl children.
//!
//! Environment: `POS_CRASH_RUNS` (total runs, default 110), `POS_CRASH_SEED` (the PRNG seed
//! of the random kills).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use pos_acquirer::sim::{FakeHost, HostRules, LedgerEntry};
use pos_terminal::{Journal, State, Txn};

const TERMINAL_ID: &str = "TERM0001";
/// The default simulated card (Visa, PSE).
const TEST_PAN: &str = "4761739001010010";
const TEST_PAN_BCD: [u8; 8] = [0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x00, 0x10];
const DEFAULT_RUNS: usize = 110;
const DEFAULT_SEED: u64 = 0x5EED_C0FF_EE15_2026;
/// Longest a child may take before the test calls it hung.
const CHILD_LIMIT: Duration = Duration::from_secs(30);

const STEPS: [&str; 7] = [
    "card-read",
    "before-send",
    "after-send",
    "after-approve",
    "second-gac",
    "printing",
    "after-print",
];

/// xorshift64*: small, deterministic, good enough to pick kill moments.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// How a run is killed.
#[derive(Debug, Clone)]
enum Kill {
    /// `POS_TEST_CRASH_AFTER_COMMITS=N`.
    Commits(u64),
    /// `POS_TEST_POWER_LOSS_AFTER_COMMITS=N`: after the Nth commit the journal goes back to
    /// its last durable commit (every non-flushed write since is lost), then SIGKILL.
    PowerLoss(u64),
    /// `--inject STEP:crash`.
    Step(&'static str),
    /// SIGKILL from here after this long.
    After(Duration),
}

/// Extra options of the sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Plain,
    /// `--swipe` with the chip card.
    Swipe,
    /// `--inject printing:paper-out`.
    PaperOut,
}

struct Ctx {
    dir: PathBuf,
    config: PathBuf,
    journal: PathBuf,
    host: FakeHost,
    bin: PathBuf,
}

fn fail(msg: &str) -> ! {
    eprintln!("\nCRASH TEST FAILED: {msg}");
    std::process::exit(1);
}

fn posctl(ctx: &Ctx) -> Command {
    let mut c = Command::new(&ctx.bin);
    c.env_remove("POS_CONFIG")
        .env_remove("POS_JOURNAL")
        .env_remove("POS_TEST_CRASH_AFTER_COMMITS")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn sale_command(ctx: &Ctx, kill: &Kill, variant: Variant) -> Command {
    let mut c = posctl(ctx);
    c.arg("sale").arg("12.50").arg("--config").arg(&ctx.config);
    match variant {
        Variant::Plain => {}
        Variant::Swipe => {
            c.arg("--swipe");
        }
        Variant::PaperOut => {
            c.arg("--inject").arg("printing:paper-out");
        }
    }
    match kill {
        Kill::Commits(n) => {
            c.env("POS_TEST_CRASH_AFTER_COMMITS", n.to_string());
        }
        Kill::PowerLoss(n) => {
            c.env("POS_TEST_POWER_LOSS_AFTER_COMMITS", n.to_string());
        }
        Kill::Step(step) => {
            c.arg("--inject").arg(format!("{step}:crash"));
        }
        Kill::After(_) => {}
    }
    c
}

/// Wait for `child` (reading its output), killing it and failing past [`CHILD_LIMIT`].
fn wait_limited(mut child: Child, what: &str) -> Output {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().unwrap(),
            Ok(None) if start.elapsed() < CHILD_LIMIT => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(None) => {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                fail(&format!(
                    "{what} still running after {CHILD_LIMIT:?}; stderr:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            Err(e) => fail(&format!("{what}: wait failed: {e}")),
        }
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (_, Some(9)) => "killed".into(),
        (_, Some(sig)) => format!("signal {sig}"),
        (Some(c), None) => format!("exit {c}"),
        (None, None) => "?".into(),
    }
}

/// Run one sale as told; returns how it ended and how long it ran.
fn run_sale(ctx: &Ctx, kill: &Kill, variant: Variant) -> (ExitStatus, Duration) {
    let start = Instant::now();
    let child = sale_command(ctx, kill, variant).spawn().unwrap();
    if let Kill::After(d) = kill {
        std::thread::sleep(*d);
        // The child may have ended already; kill then fails or hits the zombie, both fine.
        let mut child = child;
        let _ = child.kill();
        let out = wait_limited(child, "posctl sale");
        check_no_panic(&out, "posctl sale");
        return (out.status, start.elapsed());
    }
    let out = wait_limited(child, "posctl sale");
    check_no_panic(&out, "posctl sale");
    if out.status.signal().is_some_and(|s| s != 9) {
        fail(&format!(
            "posctl sale died of {}; stderr:\n{}",
            describe(out.status),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    (out.status, start.elapsed())
}

fn check_no_panic(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("panicked") {
        fail(&format!("{what} panicked; stderr:\n{stderr}"));
    }
}

/// `posctl recover`: exit 0 or 2, no panic.
fn recover(ctx: &Ctx) {
    let mut c = posctl(ctx);
    c.arg("recover").arg("--config").arg(&ctx.config);
    let out = wait_limited(c.spawn().unwrap(), "posctl recover");
    check_no_panic(&out, "posctl recover");
    match out.status.code() {
        Some(0 | 2) => {}
        _ => fail(&format!(
            "posctl recover ended with {} (0 or 2 expected); stdout:\n{}\nstderr:\n{}",
            describe(out.status),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

fn dump(txns: &[Txn], ledger: &[LedgerEntry]) -> String {
    let mut s = String::from("journal:\n");
    for t in txns {
        s.push_str(&format!(
            "  txn {} {} stan {:?} time {:?} rc {:?} reason {:?}\n",
            t.id, t.state, t.stan, t.transmission_time, t.response_code, t.reason
        ));
    }
    s.push_str("ledger:\n");
    for e in ledger {
        s.push_str(&format!(
            "  stan {} time {} {} {} rc {} {:?}\n",
            e.stan,
            e.transmission_time,
            e.operation.name(),
            e.amount,
            e.response_code,
            e.state
        ));
    }
    s
}

/// The invariant; returns the number of journal transactions.
fn check_invariant(ctx: &Ctx) -> Result<usize, String> {
    let journal = Journal::open_read_only(&ctx.journal).map_err(|e| format!("journal: {e}"))?;
    let txns = journal.all().map_err(|e| format!("journal: {e}"))?;
    drop(journal);
    let ledger = ctx.host.ledger();
    let ours: Vec<LedgerEntry> = ledger
        .entries
        .iter()
        .filter(|e| e.terminal_id == TERMINAL_ID)
        .cloned()
        .collect();
    let standing: Vec<LedgerEntry> = ledger
        .approved_not_reversed()
        .into_iter()
        .filter(|e| e.terminal_id == TERMINAL_ID)
        .collect();
    let by_stan: BTreeMap<u32, &Txn> = txns.iter().filter_map(|t| t.stan.map(|s| (s, t))).collect();
    let charged = |t: &Txn| matches!(t.state, State::Completed | State::ReceiptOwed);
    let same_time = |t: &Txn, e: &LedgerEntry| {
        t.transmission_time
            .as_deref()
            .is_none_or(|tt| tt == e.transmission_time)
    };

    for t in &txns {
        if !t.state.is_resting() {
            return Err(format!(
                "txn {} left in flight ({}) after recovery\n{}",
                t.id,
                t.state,
                dump(&txns, &ours)
            ));
        }
        if matches!(t.state, State::ReversalPending | State::ReversalStuck) {
            return Err(format!(
                "txn {} still {} although the host accepts reversals\n{}",
                t.id,
                t.state,
                dump(&txns, &ours)
            ));
        }
    }
    for e in &standing {
        let Some(t) = by_stan.get(&e.stan) else {
            return Err(format!(
                "the host charged STAN {} ({} {}) but the journal has no such transaction\n{}",
                e.stan,
                e.operation.name(),
                e.amount,
                dump(&txns, &ours)
            ));
        };
        if !same_time(t, e) {
            return Err(format!(
                "STAN {}: journal time {:?} but ledger time {}\n{}",
                e.stan,
                t.transmission_time,
                e.transmission_time,
                dump(&txns, &ours)
            ));
        }
        if !charged(t) {
            return Err(format!(
                "the host charged STAN {} (approved, not reversed) but journal txn {} is {} \
                 (reason {:?})\n{}",
                e.stan,
                t.id,
                t.state,
                t.reason,
                dump(&txns, &ours)
            ));
        }
    }
    for t in txns.iter().filter(|t| charged(t)) {
        let ok = t.stan.is_some_and(|s| {
            standing
                .iter()
                .any(|e| e.stan == s && same_time(t, e) && e.amount == t.amount)
        });
        if !ok {
            return Err(format!(
                "journal txn {} is {} but the host holds no standing approval for STAN {:?}\n{}",
                t.id,
                t.state,
                t.stan,
                dump(&txns, &ours)
            ));
        }
    }
    Ok(txns.len())
}

/// No file in the lane's directory holds the full PAN (ASCII or packed BCD).
fn check_no_pan(dir: &Path) -> Result<(), String> {
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let found = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        if found(TEST_PAN.as_bytes()) {
            return Err(format!("{} holds the full PAN in clear", path.display()));
        }
        if found(&TEST_PAN_BCD) {
            return Err(format!(
                "{} holds the full PAN as packed BCD",
                path.display()
            ));
        }
    }
    Ok(())
}

/// The newest journal transaction.
fn last_txn(ctx: &Ctx) -> Option<Txn> {
    let journal = Journal::open_read_only(&ctx.journal).ok()?;
    journal.all().ok()?.into_iter().max_by_key(|t| t.id)
}

fn env_num(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

fn main() {
    let started = Instant::now();
    let total = env_num("POS_CRASH_RUNS").map_or(DEFAULT_RUNS, |n| n as usize);
    let seed = env_num("POS_CRASH_SEED").unwrap_or(DEFAULT_SEED);
    println!("crash test: {total} runs, seed {seed:#x} (POS_CRASH_RUNS, POS_CRASH_SEED)");
    let mut rng = Rng::new(seed);

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let host = FakeHost::start("127.0.0.1:0", HostRules::default()).unwrap();
    let journal = dir.join("journal.sqlite");
    let config = dir.join("lane.toml");
    let toml = format!(
        "journal = {journal:?}\n\n[devices]\nreader = \"sim:ccid\"\nprinter = \"sim:printer\"\n\
         msr = \"sim:msr\"\n\n[acquirer]\naddress = \"{}\"\nresponse_timeout_ms = 2000\n",
        host.addr()
    );
    std::fs::write(&config, toml).unwrap();
    let ctx = Ctx {
        dir,
        config,
        journal,
        host,
        bin: PathBuf::from(env!("CARGO_BIN_EXE_posctl")),
    };

    // A typical sale's duration, from three undisturbed sales.
    let mut times = Vec::new();
    for _ in 0..3 {
        let (status, took) = run_sale(&ctx, &Kill::Commits(u64::MAX), Variant::Plain);
        if status.code() != Some(0) {
            fail(&format!("an undisturbed sale ended {}", describe(status)));
        }
        times.push(took);
    }
    times.sort();
    let typical = times[1];
    if let Err(e) = check_invariant(&ctx) {
        fail(&format!("after the undisturbed sales: {e}"));
    }
    println!(
        "typical sale: {} ms (kills at random in 0..{} ms)",
        typical.as_millis(),
        typical.as_millis()
    );

    // The plan: journal edges, steps, one of each with --swipe and with paper out, then
    // random kills to make up the total.
    let mut plan: Vec<(Kill, Variant)> = Vec::new();
    for n in 1..=13 {
        plan.push((Kill::Commits(n), Variant::Plain));
    }
    // A power loss between each non-flushed write and the next flush: what was not flushed
    // is gone, and recovery must reach the same outcome.
    for n in 1..=13 {
        plan.push((Kill::PowerLoss(n), Variant::Plain));
    }
    for n in [3, 7, 11] {
        plan.push((Kill::PowerLoss(n), Variant::PaperOut));
    }
    for step in STEPS {
        plan.push((Kill::Step(step), Variant::Plain));
    }
    for variant in [Variant::Swipe, Variant::PaperOut] {
        let n = 1 + rng.below(12);
        plan.push((Kill::Commits(n), variant));
        let step = STEPS[rng.below(STEPS.len() as u64) as usize];
        plan.push((Kill::Step(step), variant));
        let ms = rng.below(typical.as_millis() as u64);
        plan.push((Kill::After(Duration::from_millis(ms)), variant));
    }
    while plan.len() < total {
        let ms = rng.below(typical.as_millis().max(1) as u64);
        plan.push((Kill::After(Duration::from_millis(ms)), Variant::Plain));
    }

    let mut killed = 0usize;
    let mut survived = 0usize;
    let mut ended: BTreeMap<String, usize> = BTreeMap::new();
    for (i, (kill, variant)) in plan.iter().enumerate() {
        let run = i + 1;
        let before = last_txn(&ctx).map_or(0, |t| t.id);
        let (status, _) = run_sale(&ctx, kill, *variant);
        let how = match kill {
            Kill::Commits(n) => format!("crash after commit {n}"),
            Kill::PowerLoss(n) => format!("power loss after commit {n}"),
            Kill::Step(s) => format!("crash at {s}"),
            Kill::After(d) => format!("kill after {} ms", d.as_millis()),
        };
        let how = match variant {
            Variant::Plain => how,
            Variant::Swipe => format!("{how} (swipe)"),
            Variant::PaperOut => format!("{how} (paper out)"),
        };
        let outcome = describe(status);
        if status.signal() == Some(9) {
            killed += 1;
        } else {
            survived += 1;
        }
        recover(&ctx);
        let n = match check_invariant(&ctx) {
            Ok(n) => n,
            Err(e) => fail(&format!("run {run} ({how}, sale {outcome}): {e}")),
        };
        if let Err(e) = check_no_pan(&ctx.dir) {
            fail(&format!("run {run} ({how}): {e}"));
        }
        // What the run's transaction rested in.
        let last = match last_txn(&ctx) {
            Some(t) if t.id > before => t.state.to_string(),
            _ => "none created".to_string(),
        };
        *ended.entry(last.clone()).or_default() += 1;
        println!(
            "run {run}: {how} -> sale {outcome}, recovered, {n} txns, txn {last}, invariant ok"
        );
    }

    let ledger = ctx.host.ledger();
    println!(
        "\ncrash test passed: {} runs ({killed} killed, {survived} finished before the kill), \
         seed {seed:#x}, {:.1} s",
        plan.len(),
        started.elapsed().as_secs_f64()
    );
    println!("where each run transaction rested: {ended:?}");
    println!(
        "ledger: {} entries, {} approved and standing, net charged {}",
        ledger.entries.len(),
        ledger.approved_not_reversed().len(),
        ledger.net_charged()
    );
}
